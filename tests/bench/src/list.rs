//! `list`: list-page latency over real HTTPS against the real `nexus` binary, with a
//! 100,000-record entity and 64 concurrent signed-in users.
//!
//! The appliance is started as a child process (`nexus demo --customers N`, so the data
//! is seeded by the same code a customer runs), each simulated user signs in with its
//! own connection, and every request renders a 50-row page of customers.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::load::{self, Client};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Customers in the list (each also gets one or two contacts).
    #[arg(long = "list-records", default_value_t = 100_000)]
    pub records: u64,
    /// Concurrent signed-in users.
    #[arg(long = "list-clients", default_value_t = 64)]
    pub clients: usize,
    /// Seconds per workload.
    #[arg(long = "list-seconds", default_value_t = 10)]
    pub seconds: u64,
    /// The nexus binary (default: `nexus` beside this benchmark binary).
    #[arg(long = "nexus-bin")]
    pub nexus_bin: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub records: u64,
    pub clients: usize,
    pub seed_seconds: f64,
    pub workloads: Vec<Workload>,
}

#[derive(Debug, Serialize)]
pub struct Workload {
    pub name: &'static str,
    pub request: &'static str,
    pub run: load::Run,
}

/// Stops the appliance when the benchmark ends, however it ends.
pub(crate) struct Appliance {
    child: Child,
    dir: tempfile::TempDir,
}

impl Appliance {
    /// Stops the process and keeps its data directory (until this is dropped).
    pub(crate) fn stop(&mut self) -> PathBuf {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.dir.path().join("data")
    }
}

impl Drop for Appliance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) const USER: &str = "bench";
pub(crate) const PASSWORD: &str = "bench password 1";

fn nexus_binary(args: &Args) -> Result<PathBuf> {
    locate_nexus(args.nexus_bin.as_deref())
}

/// The `nexus` binary: `given`, or `nexus` beside this benchmark binary.
pub(crate) fn locate_nexus(given: Option<&Path>) -> Result<PathBuf> {
    let path = match given {
        Some(p) => p.to_path_buf(),
        None => std::env::current_exe()
            .map_err(|e| Error::msg(format!("cannot locate this binary: {e}")))?
            .with_file_name("nexus"),
    };
    if path.exists() {
        Ok(path)
    } else {
        Err(Error::msg(format!(
            "{} not found: build it with `cargo build --release -p nexus` or pass --nexus-bin",
            path.display()
        )))
    }
}

pub(crate) fn nexus(bin: &Path, data: &Path) -> Command {
    let mut cmd = Command::new(bin);
    cmd.env("NEXUS_DATA_DIR", data)
        .env("NEXUS_BIND", "127.0.0.1")
        .env("NEXUS_HTTPS_PORT", "0")
        .env("NEXUS_HTTP_PORT", "0")
        .env("NEXUS_LOG", "warn");
    cmd
}

/// Creates the users (`username`, role; each with [`PASSWORD`]), seeds `records`
/// demo customers and starts serving; returns the HTTPS port, the box CA and the
/// seconds it took until it listened.
pub(crate) fn start(
    bin: &Path,
    records: u64,
    users: &[(&str, &str)],
) -> Result<(Appliance, u16, String, f64)> {
    let base = std::env::var_os("NEXUS_BENCH_DIR")
        .map_or_else(|| PathBuf::from("/var/tmp"), PathBuf::from);
    let dir = tempfile::Builder::new()
        .prefix("nexus-bench-list-")
        .tempdir_in(&base)
        .map_err(|e| {
            Error::msg(format!(
                "cannot make a directory in {}: {e}",
                base.display()
            ))
        })?;
    let data = dir.path().join("data");
    for (username, role) in users {
        let mut create = nexus(bin, &data)
            .args([
                "admin",
                "create-user",
                "--username",
                username,
                "--full-name",
                "Bench User",
                "--role",
                role,
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| Error::msg(format!("cannot run {}: {e}", bin.display())))?;
        if let Some(mut stdin) = create.stdin.take() {
            writeln!(stdin, "{PASSWORD}")
                .map_err(|e| Error::msg(format!("writing the password: {e}")))?;
        }
        let status = create.wait().map_err(|e| Error::msg(e.to_string()))?;
        if !status.success() {
            return Err(Error::msg(format!(
                "`nexus admin create-user --username {username}` failed"
            )));
        }
    }
    let started = Instant::now();
    let mut child = nexus(bin, &data)
        .args(["demo", "--customers", &records.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| Error::msg(format!("cannot start nexus: {e}")))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| Error::msg("no stdout from nexus"))?;
    let mut reader = BufReader::new(stdout);
    let mut first = String::new();
    reader
        .read_line(&mut first)
        .map_err(|e| Error::msg(format!("reading nexus's output: {e}")))?;
    let seed_seconds = started.elapsed().as_secs_f64();
    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    let port = first
        .split_whitespace()
        .find_map(|w| w.strip_prefix("https="))
        .and_then(|a| a.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| Error::msg(format!("nexus did not say where it listens: {first:?}")))?;
    let ca = std::fs::read_to_string(data.join("tls/box-ca.crt"))
        .map_err(|e| Error::msg(format!("reading the box CA: {e}")))?;
    Ok((Appliance { child, dir }, port, ca, seed_seconds))
}

pub(crate) fn client(ca_pem: &str) -> Result<reqwest::Client> {
    client_builder(ca_pem)?
        .build()
        .map_err(|e| Error::msg(format!("HTTP client: {e}")))
}

/// An HTTP client builder that trusts the box CA (and nothing else), keeps cookies.
pub(crate) fn client_builder(ca_pem: &str) -> Result<reqwest::ClientBuilder> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        let cert = cert.map_err(|e| Error::msg(format!("box CA: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| Error::msg(format!("box CA: {e}")))?;
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| Error::msg(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .cookie_store(true))
}

/// One signed-in user, with its own connection.
struct User {
    http: reqwest::Client,
    base: String,
    kind: Kind,
    pages: u64,
}

#[derive(Clone, Copy)]
enum Kind {
    /// The list as a person opens it: the full page, first 50 rows.
    FirstPage,
    /// What the grid fetches when sorting by name and paging: the table fragment of a
    /// page anywhere in the list.
    SortedPage,
}

impl Client for User {
    async fn op(&mut self, seq: u64) -> Result<()> {
        let url = match self.kind {
            Kind::FirstPage => format!("{}/e/customer", self.base),
            Kind::SortedPage => {
                // Spread over the whole list, deterministically.
                let page = (seq.wrapping_mul(2_654_435_761)) % self.pages;
                format!("{}/e/customer?sort=name&offset={}", self.base, page * 50)
            }
        };
        let mut req = self.http.get(&url);
        if matches!(self.kind, Kind::SortedPage) {
            req = req.header("hx-request", "true");
        }
        let res = req
            .send()
            .await
            .map_err(|e| Error::msg(format!("GET {url}: {e}")))?;
        let status = res.status();
        let body = res
            .text()
            .await
            .map_err(|e| Error::msg(format!("GET {url}: {e}")))?;
        if !status.is_success() || body.matches("<tr id=\"row-").count() != 50 {
            return Err(Error::msg(format!("GET {url}: {status}, expected 50 rows")));
        }
        Ok(())
    }
}

/// Signs `username` in (with [`PASSWORD`]) on this client's cookie jar; returns the
/// session's CSRF token, which every write must send as `x-csrf-token`.
pub(crate) async fn sign_in(http: &reqwest::Client, base: &str, username: &str) -> Result<String> {
    let res = http
        .post(format!("{base}/api/v1/session"))
        .json(&serde_json::json!({ "username": username, "password": PASSWORD }))
        .send()
        .await
        .map_err(|e| Error::msg(format!("sign-in: {e}")))?;
    if !res.status().is_success() {
        return Err(Error::msg(format!("sign-in refused: {}", res.status())));
    }
    let body: serde_json::Value = res
        .json()
        .await
        .map_err(|e| Error::msg(format!("sign-in: {e}")))?;
    body["csrf_token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| Error::msg("sign-in: no csrf_token in the answer"))
}

pub async fn run(args: &Args) -> Result<Report> {
    let bin = nexus_binary(args)?;
    println!(
        "\n## List pages over HTTPS: {} customers, {} concurrent users",
        args.records, args.clients
    );
    println!("seeding {} customers with `nexus demo` …", args.records);
    let (_appliance, port, ca, seed_seconds) = tokio::task::spawn_blocking({
        let bin = bin.clone();
        let records = args.records;
        move || start(&bin, records, &[(USER, "Viewer")])
    })
    .await
    .map_err(|e| Error::msg(e.to_string()))??;
    println!("seeded and listening in {seed_seconds:.1} s");
    let base = format!("https://localhost:{port}");
    let mut workloads = Vec::new();
    for (name, request, kind) in [
        (
            "first page (full HTML page)",
            "GET /e/customer",
            Kind::FirstPage,
        ),
        (
            "sorted page anywhere (htmx fragment)",
            "GET /e/customer?sort=name&offset=…",
            Kind::SortedPage,
        ),
    ] {
        let mut users = Vec::with_capacity(args.clients);
        for _ in 0..args.clients {
            let http = client(&ca)?;
            sign_in(&http, &base, USER).await?;
            users.push(User {
                http,
                base: base.clone(),
                kind,
                pages: (args.records / 50).max(1),
            });
        }
        let run = load::drive(users, Duration::from_secs(args.seconds)).await?;
        workloads.push(Workload { name, request, run });
    }
    println!();
    println!("| workload | requests/s | p50 ms | p99 ms | max ms |");
    println!("|---|---:|---:|---:|---:|");
    for w in &workloads {
        println!(
            "| {} | {:.0} | {:.1} | {:.1} | {:.1} |",
            w.name,
            w.run.ops_per_s,
            w.run.latency.p50_ms,
            w.run.latency.p99_ms,
            w.run.latency.max_ms
        );
    }
    Ok(Report {
        records: args.records,
        clients: args.clients,
        seed_seconds,
        workloads,
    })
}
