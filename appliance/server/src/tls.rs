//! HTTPS: the box CA and server certificate (generated on first boot), certificates
//! installed by an administrator, and live reloading.
//!
//! Files in `<data_dir>/tls/` (keys are 0600):
//! * `box-ca.crt`, `box-ca.key` — the appliance's own CA; devices trust it once.
//! * `server.crt`, `server.key` — issued by the box CA for the hostname, `nexus.local`,
//!   `localhost` and the box's addresses; re-issued when those change or expiry nears.
//! * `custom.crt`, `custom.key` — an administrator's certificate; used when present.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum_server::tls_rustls::RustlsConfig;
use nexus_kernel::Clock;
use nexus_web::{BoxFuture, TlsControl, TlsInfo};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("generating a certificate failed: {0}")]
    Generate(String),
    #[error("{0}")]
    Invalid(String),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> TlsError + '_ {
    move |source| TlsError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Server certificates are valid this long (from a day before they are made: 365 days
/// in all, within the 366 that Mozilla's "intermediate" configuration allows);
/// re-issued when less than 30 days remain.
const SERVER_VALIDITY_DAYS: i64 = 364;
/// The longest life of a generated certificate kept at boot (older boxes made them
/// for 398 days, without an authority key identifier: those are re-issued).
const MAX_LIFESPAN_DAYS: i64 = 366;
const RENEW_BEFORE_DAYS: i64 = 30;

pub struct Tls {
    dir: PathBuf,
    clock: Arc<dyn Clock>,
    config: RustlsConfig,
    current: Mutex<TlsInfo>,
}

impl Tls {
    /// Makes sure a usable certificate exists and loads it.
    pub fn load_or_create(
        data_dir: &Path,
        names: &[String],
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<Tls>, TlsError> {
        let now = clock.now();
        let dir = data_dir.join("tls");
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).map_err(io_err(&dir))?;
        let custom = dir.join("custom.crt").exists() && dir.join("custom.key").exists();
        if !custom {
            ensure_box_certificates(&dir, names, now)?;
        }
        let (cert, key) = if custom {
            ("custom.crt", "custom.key")
        } else {
            ("server.crt", "server.key")
        };
        let cert_pem = read(&dir.join(cert))?;
        let key_pem = read(&dir.join(key))?;
        let (server_config, info) = server_config(&cert_pem, &key_pem, custom)?;
        Ok(Arc::new(Tls {
            dir,
            clock,
            config: RustlsConfig::from_config(server_config),
            current: Mutex::new(info.info),
        }))
    }

    pub fn rustls(&self) -> RustlsConfig {
        self.config.clone()
    }

    pub fn ca_path(&self) -> PathBuf {
        self.dir.join("box-ca.crt")
    }

    fn install_now(&self, cert_pem: &str, key_pem: &str) -> Result<TlsInfo, String> {
        let (config, info) = server_config(cert_pem, key_pem, true).map_err(|e| e.to_string())?;
        if let Some(not_after) = &info.expires
            && *not_after < self.clock.now()
        {
            return Err(format!(
                "this certificate expired on {}",
                info.info.not_after
            ));
        }
        write_file(&self.dir.join("custom.crt"), cert_pem.as_bytes(), 0o644)
            .map_err(|e| e.to_string())?;
        write_file(&self.dir.join("custom.key"), key_pem.as_bytes(), 0o600)
            .map_err(|e| e.to_string())?;
        self.config.reload_from_config(config);
        if let Ok(mut cur) = self.current.lock() {
            *cur = info.info.clone();
        }
        Ok(info.info)
    }
}

impl TlsControl for Tls {
    fn describe(&self) -> TlsInfo {
        self.current
            .lock()
            .map(|c| c.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    fn install(&self, cert_pem: String, key_pem: String) -> BoxFuture<'_, Result<TlsInfo, String>> {
        Box::pin(async move { self.install_now(&cert_pem, &key_pem) })
    }

    fn ca_pem(&self) -> Option<String> {
        fs::read_to_string(self.ca_path()).ok()
    }
}

/// What a parsed certificate says, plus its expiry for checks.
struct Parsed {
    info: TlsInfo,
    expires: Option<OffsetDateTime>,
    /// not_after − not_before.
    lifespan: Duration,
}

fn read(path: &Path) -> Result<String, TlsError> {
    fs::read_to_string(path).map_err(io_err(path))
}

/// Writes a file atomically with the given mode (keys: 0600).
fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), TlsError> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)
            .map_err(io_err(&tmp))?;
        f.write_all(bytes).map_err(io_err(&tmp))?;
        f.sync_all().map_err(io_err(&tmp))?;
    }
    fs::set_permissions(&tmp, fs::Permissions::from_mode(mode)).map_err(io_err(&tmp))?;
    fs::rename(&tmp, path).map_err(io_err(path))
}

fn gen_err(e: rcgen::Error) -> TlsError {
    TlsError::Generate(e.to_string())
}

/// Creates the box CA once, and (re-)issues the server certificate when it is missing,
/// near expiry, or lacks one of `names`.
fn ensure_box_certificates(
    dir: &Path,
    names: &[String],
    now: OffsetDateTime,
) -> Result<(), TlsError> {
    let ca_crt = dir.join("box-ca.crt");
    let ca_key = dir.join("box-ca.key");
    if !ca_crt.exists() || !ca_key.exists() {
        let key = KeyPair::generate().map_err(gen_err)?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(gen_err)?;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.distinguished_name.push(
            DnType::CommonName,
            format!(
                "NexusAI box CA ({})",
                names.first().map_or("nexus", String::as_str)
            ),
        );
        params
            .distinguished_name
            .push(DnType::OrganizationName, "NexusAI appliance");
        params.not_before = now - Duration::days(1);
        params.not_after = now + Duration::days(3650);
        let cert = params.self_signed(&key).map_err(gen_err)?;
        write_file(&ca_key, key.serialize_pem().as_bytes(), 0o600)?;
        write_file(&ca_crt, cert.pem().as_bytes(), 0o644)?;
        // A new CA invalidates any server certificate from an old one.
        let _ = fs::remove_file(dir.join("server.crt"));
    }
    let server_crt = dir.join("server.crt");
    let server_key = dir.join("server.key");
    if server_crt.exists() && server_key.exists() {
        let pem = read(&server_crt)?;
        let (_, parsed) = server_config(&pem, &read(&server_key)?, false)?;
        let fresh = parsed
            .expires
            .is_some_and(|t| t > now + Duration::days(RENEW_BEFORE_DAYS));
        let covers = names.iter().all(|n| {
            parsed
                .info
                .names
                .iter()
                .any(|have| have.eq_ignore_ascii_case(n))
        });
        let current = parsed.lifespan <= Duration::days(MAX_LIFESPAN_DAYS);
        if fresh && covers && current {
            return Ok(());
        }
        tracing::info!(
            "re-issuing the server certificate (names changed, expiry near, or made by an older release)"
        );
    }
    let ca_key_pair = KeyPair::from_pem(&read(&ca_key)?).map_err(gen_err)?;
    let issuer = Issuer::from_ca_cert_pem(&read(&ca_crt)?, ca_key_pair).map_err(gen_err)?;
    let key = KeyPair::generate().map_err(gen_err)?;
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(gen_err)?;
    params.distinguished_name.push(
        DnType::CommonName,
        names
            .first()
            .cloned()
            .unwrap_or_else(|| "nexus.local".into()),
    );
    params.subject_alt_names = names
        .iter()
        .filter_map(|n| match n.parse::<std::net::IpAddr>() {
            Ok(ip) => Some(SanType::IpAddress(ip)),
            Err(_) => n.clone().try_into().ok().map(SanType::DnsName),
        })
        .collect();
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    // Strict path validation (RFC 5280, as Python's and Go's verifiers do) needs it.
    params.use_authority_key_identifier_extension = true;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.not_before = now - Duration::days(1);
    params.not_after = now + Duration::days(SERVER_VALIDITY_DAYS);
    let cert = params.signed_by(&key, &issuer).map_err(gen_err)?;
    write_file(&server_key, key.serialize_pem().as_bytes(), 0o600)?;
    let chain = format!("{}{}", cert.pem(), read(&ca_crt)?);
    write_file(&server_crt, chain.as_bytes(), 0o644)
}

/// Builds the rustls config for a PEM chain and key, refusing what will not work.
fn server_config(
    cert_pem: &str,
    key_pem: &str,
    custom: bool,
) -> Result<(Arc<ServerConfig>, Parsed), TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Invalid(format!("the certificate is not valid PEM: {e}")))?;
    let leaf = certs
        .first()
        .ok_or_else(|| TlsError::Invalid("no certificate found: paste the PEM block that starts with -----BEGIN CERTIFICATE-----".into()))?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|_| TlsError::Invalid("no private key found: paste the PEM block that starts with -----BEGIN PRIVATE KEY-----".into()))?;
    let parsed = describe(leaf, custom)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Invalid(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            TlsError::Invalid(format!(
                "the key does not fit the certificate or is not supported: {e}"
            ))
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok((Arc::new(config), parsed))
}

fn describe(der: &CertificateDer<'_>, custom: bool) -> Result<Parsed, TlsError> {
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref())
        .map_err(|e| TlsError::Invalid(format!("the certificate cannot be read: {e}")))?;
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            match n {
                x509_parser::extensions::GeneralName::DNSName(d) => names.push((*d).to_string()),
                x509_parser::extensions::GeneralName::IPAddress(ip) => match ip.len() {
                    4 => {
                        names.push(std::net::Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3]).to_string())
                    }
                    16 => {
                        let mut b = [0u8; 16];
                        b.copy_from_slice(ip);
                        names.push(std::net::Ipv6Addr::from(b).to_string());
                    }
                    _ => {}
                },
                _ => {}
            }
        }
    }
    let expires = OffsetDateTime::from_unix_timestamp(cert.validity().not_after.timestamp()).ok();
    let lifespan = Duration::seconds(
        cert.validity().not_after.timestamp() - cert.validity().not_before.timestamp(),
    );
    let fingerprint = Sha256::digest(der.as_ref())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":");
    Ok(Parsed {
        info: TlsInfo {
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            names,
            not_after: cert.validity().not_after.to_string(),
            fingerprint,
            custom,
        },
        expires,
        lifespan,
    })
}

/// The names the generated certificate should carry: configured names, the hostname,
/// `nexus.local`, `localhost` and every address of the box.
pub fn certificate_names(extra: &[String]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let mut add = |n: String| {
        if !n.is_empty() && !names.iter().any(|h| h.eq_ignore_ascii_case(&n)) {
            names.push(n);
        }
    };
    if let Ok(h) = hostname::get() {
        add(h.to_string_lossy().into_owned());
    }
    add("nexus.local".into());
    add("localhost".into());
    for n in extra {
        add(n.clone());
    }
    if let Ok(ifaces) = if_addrs::get_if_addrs() {
        for i in ifaces {
            add(i.ip().to_string());
        }
    }
    add("127.0.0.1".into());
    add("::1".into());
    names
}
