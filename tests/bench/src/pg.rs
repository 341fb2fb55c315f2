//! A throwaway PostgreSQL cluster from Debian's `postgresql` package, for the sections
//! that run PostgreSQL side by side with nexus: started in a scratch directory, durable
//! settings checked, stopped when dropped.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Serialize;
use tokio_postgres::{Client as PgClient, Config, NoTls};

use crate::error::{Context, Error, Result, chain};

/// Where Debian installs the server binaries: `/usr/lib/postgresql/<major>/bin`.
const DEBIAN_ROOT: &str = "/usr/lib/postgresql";
/// The system user that owns the cluster (initdb refuses to run as root).
const SYSTEM_USER: &str = "postgres";
/// The database superuser, and the one the benchmark connects as.
const SUPERUSER: &str = "postgres";
/// Only names the socket file; the server listens on no TCP port.
const PORT: u16 = 5432;
/// `sun_path` holds 108 bytes including the terminating NUL.
const SOCKET_PATH_MAX: usize = 107;

/// The settings that make a commit durable; the benchmark refuses to run without them.
const DURABILITY: &[(&str, &str)] = &[
    ("fsync", "on"),
    ("synchronous_commit", "on"),
    ("full_page_writes", "on"),
];

/// Settings reported with the results.
const REPORTED: &[&str] = &[
    "fsync",
    "synchronous_commit",
    "full_page_writes",
    "wal_sync_method",
    "wal_level",
    "shared_buffers",
    "max_connections",
];

/// The server as it reported itself.
#[derive(Debug, Clone, Serialize)]
pub struct Server {
    pub version: String,
    pub bin: PathBuf,
    /// Setting name → value, as `SHOW` prints it.
    pub settings: Vec<(String, String)>,
}

impl Server {
    /// `name=value` pairs on one line.
    pub fn describe_settings(&self) -> String {
        self.settings
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// A running throwaway cluster. Dropping it stops the server (fast shutdown); the
/// caller removes the directory afterwards.
pub struct Cluster {
    bin: PathBuf,
    /// Owned by the cluster's user: holds `data/`, the socket and the server log.
    root: PathBuf,
    /// Whether server commands run as [`SYSTEM_USER`] through `runuser` (we are root).
    as_system_user: bool,
    /// Set once `pg_ctl start` was attempted: from then on, dropping stops the server.
    started: bool,
}

impl Cluster {
    /// Creates a cluster in the new directory `root` and starts it. `bin` is the
    /// directory of the server binaries; by default the newest Debian one.
    pub fn start(root: &Path, bin: Option<&Path>) -> Result<Cluster> {
        let bin = match bin {
            Some(b) => b.to_path_buf(),
            None => newest_debian_bin()?,
        };
        check_socket_path(root)?;
        let as_system_user = running_as_root()?;
        fs::create_dir(root).context(|| format!("creating {}", root.display()))?;
        let mut cluster = Cluster {
            bin,
            root: root.to_path_buf(),
            as_system_user,
            started: false,
        };
        if as_system_user {
            cluster.hand_to_system_user()?;
        }
        cluster.initdb()?;
        cluster.configure()?;
        cluster.started = true;
        cluster.pg_ctl_start()?;
        Ok(cluster)
    }

    fn data(&self) -> PathBuf {
        self.root.join("data")
    }

    fn log(&self) -> PathBuf {
        self.root.join("server.log")
    }

    /// Gives `root` to the cluster's user and checks that it can write there (it
    /// cannot if a parent directory is closed to other users).
    fn hand_to_system_user(&self) -> Result<()> {
        let (uid, gid) = system_user_ids()?;
        std::os::unix::fs::chown(&self.root, Some(uid), Some(gid))
            .context(|| format!("giving {} to the {SYSTEM_USER} user", self.root.display()))?;
        let mut probe = self.as_cluster_user(Path::new("test"));
        probe.arg("-w").arg(&self.root);
        if !probe.status().is_ok_and(|s| s.success()) {
            return Err(Error::msg(format!(
                "the {SYSTEM_USER} user cannot write to {}; choose a --dir (NEXUS_BENCH_DIR) \
                 that every user can reach, such as /var/tmp",
                self.root.display()
            )));
        }
        Ok(())
    }

    fn initdb(&self) -> Result<()> {
        let mut initdb = self.server_command("initdb");
        initdb
            .arg("--pgdata")
            .arg(self.data())
            .args(["--username", SUPERUSER, "--auth=trust", "--encoding=UTF8"])
            .args(["--no-locale", "--no-sync"]);
        run(initdb, "initdb")
    }

    /// Appends the benchmark's settings to `postgresql.conf` (later lines win).
    fn configure(&self) -> Result<()> {
        let conf = self.data().join("postgresql.conf");
        let socket_dir = self.root.display().to_string().replace('\'', "''");
        let mut settings = format!(
            "\n# nexus-bench\nlisten_addresses = ''\nunix_socket_directories = '{socket_dir}'\n\
             port = {PORT}\nmax_connections = 200\n"
        );
        for (name, value) in DURABILITY {
            settings.push_str(&format!("{name} = {value}\n"));
        }
        OpenOptions::new()
            .append(true)
            .open(&conf)
            .and_then(|mut f| f.write_all(settings.as_bytes()))
            .context(|| format!("writing {}", conf.display()))
    }

    fn pg_ctl_start(&self) -> Result<()> {
        let mut start = self.server_command("pg_ctl");
        start
            .arg("--pgdata")
            .arg(self.data())
            .arg("--log")
            .arg(self.log())
            .args(["--wait", "--timeout=60", "--silent", "start"]);
        run(start, "starting postgres").map_err(|e| {
            Error::msg(format!(
                "{e}\nlast lines of {}:\n{}",
                self.log().display(),
                tail(&self.log(), 15)
            ))
        })
    }

    fn pg_ctl_stop(&self) -> Result<()> {
        let mut stop = self.server_command("pg_ctl");
        stop.arg("--pgdata").arg(self.data()).args([
            "--mode=fast",
            "--wait",
            "--timeout=60",
            "--silent",
            "stop",
        ]);
        run(stop, "stopping postgres")
    }

    /// A command running one of the server binaries as the cluster's user.
    fn server_command(&self, program: &str) -> Command {
        self.as_cluster_user(&self.bin.join(program))
    }

    fn as_cluster_user(&self, program: &Path) -> Command {
        let mut cmd = if self.as_system_user {
            let mut runuser = Command::new("runuser");
            runuser.args(["-u", SYSTEM_USER, "--"]).arg(program);
            runuser
        } else {
            Command::new(program)
        };
        // The cluster's user may not be allowed into our working directory.
        cmd.current_dir(&self.root);
        cmd
    }

    /// A new connection over the unix socket; its connection task runs on the
    /// current runtime.
    pub async fn connect(&self) -> Result<PgClient> {
        let (client, connection) = Config::new()
            .host_path(&self.root)
            .port(PORT)
            .user(SUPERUSER)
            .dbname("postgres")
            .application_name("nexus-bench")
            .connect(NoTls)
            .await
            .context(|| format!("connecting to postgres in {}", self.root.display()))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                eprintln!("nexus-bench: a postgres connection failed: {}", chain(&e));
            }
        });
        Ok(client)
    }

    /// The server's version and settings; fails unless commits are durable.
    pub async fn server(&self) -> Result<Server> {
        let client = self.connect().await?;
        let version: String = client
            .query_one("SHOW server_version", &[])
            .await
            .and_then(|row| row.try_get(0))
            .context(|| "asking postgres for its version")?;
        let names: Vec<String> = REPORTED.iter().map(|s| s.to_string()).collect();
        let rows = client
            .query(
                "SELECT name, current_setting(name) FROM pg_settings \
                 WHERE name = ANY($1) ORDER BY name",
                &[&names],
            )
            .await
            .context(|| "reading postgres's settings")?;
        let mut settings = Vec::with_capacity(rows.len());
        for row in rows {
            let name: String = row.try_get(0).context(|| "reading a setting's name")?;
            let value: String = row.try_get(1).context(|| format!("reading {name}"))?;
            settings.push((name, value));
        }
        check_durable(&settings)?;
        Ok(Server {
            version,
            bin: self.bin.clone(),
            settings,
        })
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.started
            && let Err(e) = self.pg_ctl_stop()
        {
            eprintln!(
                "nexus-bench: warning: {e}; the server in {} may still be running",
                self.data().display()
            );
        }
    }
}

/// A directory for one run's data (nexus stores and the PostgreSQL cluster, on the same
/// filesystem, so their fsyncs cost the same), removed when dropped (also on error).
/// It must be traversable by the `postgres` user, which owns the cluster's
/// subdirectory, so it is opened up to 0755 whatever the umask.
pub fn scratch_dir(base: &Path) -> Result<tempfile::TempDir> {
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::Builder::new()
        .prefix("nexus-bench-")
        .tempdir_in(base)
        .context(|| format!("creating a temporary directory in {}", base.display()))?;
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755))
        .context(|| format!("opening up {}", dir.path().display()))?;
    Ok(dir)
}

/// The server binaries of the newest PostgreSQL Debian has installed.
fn newest_debian_bin() -> Result<PathBuf> {
    let missing = || {
        Error::msg(format!(
            "no PostgreSQL server found under {DEBIAN_ROOT}/*/bin; install Debian's \
             postgresql package (scripts/bench.sh does) or pass --pg-bin"
        ))
    };
    let entries = fs::read_dir(DEBIAN_ROOT).map_err(|_| missing())?;
    entries
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.path().join("bin/initdb").is_file())
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let version: Option<Vec<u32>> = name.split('.').map(|p| p.parse().ok()).collect();
            Some((version?, entry.path().join("bin")))
        })
        .max()
        .map(|(_, bin)| bin)
        .ok_or_else(missing)
}

/// The socket file lives in `root`; a path the kernel cannot bind is better reported
/// now than as a failed start.
fn check_socket_path(root: &Path) -> Result<()> {
    let socket = root.join(format!(".s.PGSQL.{PORT}"));
    if socket.as_os_str().len() > SOCKET_PATH_MAX {
        return Err(Error::msg(format!(
            "the postgres socket path {} is longer than {SOCKET_PATH_MAX} bytes; choose a \
             shorter --dir (NEXUS_BENCH_DIR)",
            socket.display()
        )));
    }
    Ok(())
}

/// Whether this process runs as root (effective user id 0).
fn running_as_root() -> Result<bool> {
    let status = fs::read_to_string("/proc/self/status").context(|| "reading /proc/self/status")?;
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .ok_or_else(|| Error::msg("/proc/self/status has no Uid line"))?;
    Ok(euid == "0")
}

/// The user and group ids of [`SYSTEM_USER`].
fn system_user_ids() -> Result<(u32, u32)> {
    let out = Command::new("getent")
        .args(["passwd", SYSTEM_USER])
        .output()
        .context(|| "running getent")?;
    let entry = String::from_utf8_lossy(&out.stdout);
    let mut fields = entry.trim().split(':').skip(2);
    let ids = fields
        .next()
        .and_then(|u| u.parse().ok())
        .zip(fields.next().and_then(|g| g.parse().ok()));
    ids.ok_or_else(|| {
        Error::msg(format!(
            "there is no {SYSTEM_USER} system user; install Debian's postgresql package \
             (scripts/bench.sh does)"
        ))
    })
}

/// Fails unless every [`DURABILITY`] setting has its required value.
fn check_durable(settings: &[(String, String)]) -> Result<()> {
    for (name, wanted) in DURABILITY {
        let actual = settings.iter().find(|(n, _)| n == name).map(|(_, v)| v);
        if actual.map(String::as_str) != Some(*wanted) {
            return Err(Error::msg(format!(
                "postgres runs with {name}={}, not {wanted}; the comparison would be unfair",
                actual.map_or("unknown", String::as_str)
            )));
        }
    }
    Ok(())
}

/// Runs `cmd`; on failure, the error carries its output.
fn run(mut cmd: Command, what: &str) -> Result<()> {
    let out = cmd
        .output()
        .context(|| format!("{what}: cannot run {}", cmd.get_program().display()))?;
    if out.status.success() {
        return Ok(());
    }
    let mut output = String::from_utf8_lossy(&out.stderr).trim().to_string();
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !stdout.trim().is_empty() {
        output.push('\n');
        output.push_str(stdout.trim());
    }
    Err(Error::msg(format!(
        "{what} failed ({}): {output}",
        out.status
    )))
}

/// The last `lines` lines of a text file, or a note that it cannot be read.
fn tail(path: &Path, lines: usize) -> String {
    match fs::read_to_string(path) {
        Ok(text) => {
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("({e})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durability_must_be_on() {
        let on: Vec<(String, String)> = DURABILITY
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        assert!(check_durable(&on).is_ok());
        let mut off = on.clone();
        off[1].1 = "off".into();
        let e = check_durable(&off).map_err(|e| e.to_string());
        assert_eq!(
            e,
            Err(
                "postgres runs with synchronous_commit=off, not on; the comparison would be unfair"
                    .into()
            )
        );
        assert!(check_durable(&[]).is_err());
    }

    #[test]
    fn long_socket_paths_are_refused_early() {
        assert!(check_socket_path(Path::new("/var/tmp/x")).is_ok());
        assert!(check_socket_path(&Path::new("/var/tmp").join("d".repeat(120))).is_err());
    }
}
