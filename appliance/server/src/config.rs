//! Configuration: defaults → TOML file → `NEXUS_*` environment variables.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// Everything IT can set. Each field is also `NEXUS_<FIELD>` in the environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the appliance keeps its data: the store, certificates and keys.
    pub data_dir: PathBuf,
    /// The address to listen on (0.0.0.0 for every interface).
    pub bind: IpAddr,
    /// The HTTPS port (0 picks a free one).
    pub https_port: u16,
    /// The plain-HTTP port, which only redirects to HTTPS (0 picks a free one).
    pub http_port: u16,
    /// Extra names for the generated certificate (beside the hostname, nexus.local and the box's addresses).
    pub hostnames: Vec<String>,
    /// The name of the first company, created on first boot.
    pub company_name: String,
    /// Its currency (USD, EUR, GBP, CHF, CAD, AUD or JPY).
    pub currency: String,
    /// Log format: "text" or "json".
    pub log_format: String,
    /// The largest document accepted as an upload, in MiB (1 to 10240).
    pub max_upload_mib: u64,
    /// The GGUF embedding model of search by meaning (relative: inside the data
    /// directory); none there, or "": search by words alone.
    pub embedding_model: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("nexus-data"),
            bind: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            https_port: 8443,
            http_port: 8080,
            hostnames: Vec::new(),
            company_name: "Demo Company".into(),
            currency: "CHF".into(),
            log_format: "text".into(),
            max_upload_mib: 25,
            embedding_model: "models/all-MiniLM-L6-v2.gguf".into(),
        }
    }
}

/// The doc line of each field, for `nexus config example` (checked by a test).
const DOCS: &[(&str, &str)] = &[
    (
        "data_dir",
        "Where the appliance keeps its data: the store, certificates and keys.",
    ),
    (
        "bind",
        "The address to listen on (0.0.0.0 for every interface).",
    ),
    ("https_port", "The HTTPS port (0 picks a free one)."),
    (
        "http_port",
        "The plain-HTTP port, which only redirects to HTTPS (0 picks a free one).",
    ),
    (
        "hostnames",
        "Extra names for the generated certificate (beside the hostname, nexus.local and the box's addresses).",
    ),
    (
        "company_name",
        "The name of the first company, created on first boot.",
    ),
    (
        "currency",
        "Its currency (USD, EUR, GBP, CHF, CAD, AUD or JPY).",
    ),
    ("log_format", "Log format: \"text\" or \"json\"."),
    (
        "max_upload_mib",
        "The largest document accepted as an upload, in MiB (1 to 10240).",
    ),
    (
        "embedding_model",
        "The GGUF embedding model of search by meaning (relative: inside data_dir); \"\" or none there: search by words alone.",
    ),
];

#[derive(Debug, thiserror::Error)]
#[error("the configuration is not valid: {0}")]
pub struct ConfigError(String);

impl Config {
    /// Layers the defaults, the TOML file (if given; it must exist) and the environment.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError(format!("{} does not exist", path.display())));
            }
            fig = fig.merge(Toml::file(path));
        }
        // Only known names: other NEXUS_* variables (tests, tools) are not settings.
        let known: Vec<&str> = DOCS.iter().map(|(k, _)| *k).collect();
        fig = fig.merge(Env::prefixed("NEXUS_").only(&known));
        let config: Config = fig.extract().map_err(|e| ConfigError(e.to_string()))?;
        if !(1..=10_240).contains(&config.max_upload_mib) {
            return Err(ConfigError(format!(
                "max_upload_mib is {}; it must be between 1 and 10240",
                config.max_upload_mib
            )));
        }
        Ok(config)
    }

    /// Where the embedding model is (none: search by words alone).
    pub fn embedding_model_path(&self) -> Option<PathBuf> {
        let p = self.embedding_model.trim();
        (!p.is_empty()).then(|| self.data_dir.join(p))
    }

    /// A commented example file with every setting at its default.
    pub fn example() -> String {
        let mut out = String::from(
            "# nexus configuration. Every setting can also be given as an environment\n# variable: NEXUS_<NAME IN CAPITALS>, e.g. NEXUS_HTTPS_PORT=443.\n\n",
        );
        let defaults = toml::to_string(&Config::default()).unwrap_or_default();
        for line in defaults.lines() {
            let key = line.split('=').next().unwrap_or("").trim();
            if let Some((_, doc)) = DOCS.iter().find(|(k, _)| *k == key) {
                out.push_str(&format!("# {doc}\n"));
            }
            out.push_str(line);
            out.push_str("\n\n");
        }
        out
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's error type
mod tests {
    use super::*;

    #[test]
    fn every_setting_is_documented_in_the_example() {
        let example = Config::example();
        let defaults = toml::to_string(&Config::default()).expect("toml");
        for line in defaults.lines().filter(|l| l.contains('=')) {
            let key = line.split('=').next().unwrap_or("").trim();
            assert!(DOCS.iter().any(|(k, _)| *k == key), "{key} has no doc line");
        }
        let parsed: Config = toml::from_str(&example).expect("the example parses");
        assert_eq!(parsed, Config::default());
    }

    #[test]
    fn file_then_environment_override_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "nexus.toml",
                "https_port = 9443\ndata_dir = \"/srv/nexus\"\n",
            )?;
            jail.set_env("NEXUS_HTTPS_PORT", "10443");
            jail.set_env("NEXUS_BIND", "127.0.0.1");
            let c = Config::load(Some(Path::new("nexus.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(c.https_port, 10443);
            assert_eq!(c.data_dir, PathBuf::from("/srv/nexus"));
            assert_eq!(c.bind.to_string(), "127.0.0.1");
            assert_eq!(c.http_port, 8080);
            Ok(())
        });
    }

    #[test]
    fn mistakes_are_reported_by_name() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("bad.toml", "htps_port = 1\n")?;
            let e = Config::load(Some(Path::new("bad.toml"))).expect_err("unknown key");
            assert!(e.to_string().contains("htps_port"), "{e}");
            for (value, ok) in [("0", false), ("10241", false), ("1", true), ("10240", true)] {
                jail.set_env("NEXUS_MAX_UPLOAD_MIB", value);
                match Config::load(None) {
                    Ok(c) => assert!(ok && c.max_upload_mib.to_string() == value, "{value}"),
                    Err(e) => assert!(!ok && e.to_string().contains("between 1 and 10240"), "{e}"),
                }
            }
            jail.set_env("NEXUS_MAX_UPLOAD_MIB", "25");
            jail.set_env("NEXUS_HTTPS_PORT", "many");
            let e = Config::load(None).expect_err("bad number");
            assert!(
                e.to_string().contains("https_port") || e.to_string().contains("many"),
                "{e}"
            );
            Ok(())
        });
    }
}
