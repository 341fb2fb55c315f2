//! Section `crash-open`: how long the real `nexus` binary takes to serve again after
//! being killed (SIGKILL) under write load, on a store of more than a gigabyte.
//!
//! 1. A data directory is built in-process, through the kernel: customers with long
//!    notes, created from many tasks at once so group commit batches them, until
//!    `nexus.redb` is `--store-mib` large; and an administrator to sign in with.
//! 2. The release binary is started on it (`nexus serve`), once cleanly; then, per
//!    round, signed-in HTTPS clients create customers (`POST /api/v1/customer`), the
//!    process is killed in the middle of that, and a new one is spawned on the same
//!    directory. Open-to-green is the time from spawning it until `GET /healthz` first
//!    answers 200, polled every 10 ms. `/metrics` then says how many logged batches the
//!    store applied, and the customer count must hold every acknowledged create.

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nexus_crm::CUSTOMER;
use nexus_kernel::{Input, Kernel, Principal, SystemClock};
use nexus_store::Store;
use serde::Serialize;
use tokio::runtime::Runtime;
use tokio::task::JoinSet;

use crate::error::{Context, Error, Result};
use crate::interrupt;
use crate::list;
use crate::load::{self, Latency};
use crate::machine::Disk;
use crate::pg;
use crate::writes::nexus::kernel_error;

/// Options of the `crash-open` section.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Size to grow the data file (`nexus.redb`) to before the rounds, in MiB.
    #[arg(long = "store-mib", default_value_t = 1100, value_parser = clap::value_parser!(u64).range(1..=1_048_576))]
    pub store_mib: u64,

    /// Kill-and-reopen rounds.
    #[arg(long = "crash-rounds", default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=100))]
    pub rounds: u64,

    /// Signed-in HTTPS clients creating customers while the appliance is killed.
    #[arg(long = "crash-clients", default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub clients: u64,

    /// Seconds of write load before each kill.
    #[arg(long = "crash-load-seconds", default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub load_seconds: u64,
}

/// The target: serving again within two seconds of being started.
const TARGET_MS: f64 = 2000.0;
/// Tasks creating the customers that fill the store.
const FILL_TASKS: usize = 64;
/// Characters of each filling customer's notes (the most a long text may hold).
const NOTES_CHARS: usize = 20_000;
/// How often `/healthz` is asked while the appliance starts.
const POLL_EVERY: Duration = Duration::from_millis(10);
/// How long a start may take before the benchmark gives up.
const START_WITHIN: Duration = Duration::from_secs(300);
const USER: &str = "crashbench";
const PASSWORD: &str = "crash bench password 1";

/// What the section measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub disk: Disk,
    pub fill: Fill,
    /// The first start, after the in-process kernel closed the store cleanly (it also
    /// creates the TLS certificates); not a crash, not in the statistics.
    pub first_start_ms: f64,
    pub rounds: Vec<Round>,
    /// Open-to-green over the rounds.
    pub open_to_green: Latency,
    pub target_ms: f64,
    pub target_met: bool,
    pub notes: Vec<String>,
}

/// How the store was filled.
#[derive(Debug, Clone, Serialize)]
pub struct Fill {
    pub customers: u64,
    pub notes_chars: usize,
    /// The notes text of all customers (each kept in its record and again in its create
    /// event's after-image).
    pub notes_mib: f64,
    pub seconds: f64,
    pub store_mib: f64,
    pub wal_mib: f64,
}

/// One kill and reopen.
#[derive(Debug, Clone, Serialize)]
pub struct Round {
    pub round: u64,
    /// `nexus.redb` when the new process was spawned.
    pub store_mib: f64,
    pub wal_mib: f64,
    /// Creates acknowledged (201) to the clients before the kill.
    pub acknowledged: u64,
    /// From spawning until the process printed its `listening` line.
    pub open_to_listening_ms: Option<f64>,
    /// From spawning until `/healthz` first answered 200.
    pub open_to_green_ms: f64,
    /// `nexus_store_replayed_batches` after the reopen.
    pub replayed_batches: u64,
    /// Customers the company had after the reopen, and at least how many it must have.
    pub customers: u64,
    pub customers_expected_at_least: u64,
}

/// Runs the section.
pub fn run(rt: &Runtime, args: &Args, nexus_bin: Option<&Path>, dir: &Path) -> Result<Report> {
    let bin = list::locate_nexus(nexus_bin)?;
    let scratch = pg::scratch_dir(dir)?;
    let disk = Disk::of(scratch.path());
    let data = scratch.path().join("data");
    eprintln!(
        "crash-open: filling {} to {} MiB…",
        data.display(),
        args.store_mib
    );
    let fill = fill(rt, &data, args.store_mib)?;
    eprintln!(
        "crash-open: {} customers, {:.0} MiB in {:.1} s",
        fill.customers, fill.store_mib, fill.seconds
    );
    interrupt::check()?;
    let log = scratch.path().join("nexus.log");
    let (rounds, first_start_ms) = rt.block_on(run_rounds(&bin, &data, &log, args))?;
    let scratch_path = scratch.path().to_path_buf();
    scratch
        .close()
        .context(|| format!("removing {}", scratch_path.display()))?;
    let green: Vec<Duration> = rounds
        .iter()
        .map(|r| Duration::from_secs_f64(r.open_to_green_ms / 1000.0))
        .collect();
    let open_to_green = load::latency_of(green);
    let report = Report {
        disk,
        fill,
        first_start_ms,
        target_met: open_to_green.max_ms <= TARGET_MS,
        open_to_green,
        target_ms: TARGET_MS,
        rounds,
        notes: notes(args),
    };
    report.print();
    let lost: Vec<String> = report
        .rounds
        .iter()
        .filter(|r| r.customers < r.customers_expected_at_least)
        .map(|r| {
            format!(
                "round {}: {} customers after the reopen, at least {} acknowledged",
                r.round, r.customers, r.customers_expected_at_least
            )
        })
        .collect();
    if !lost.is_empty() {
        return Err(Error::msg(format!(
            "acknowledged creates were lost in the crash: {}",
            lost.join("; ")
        )));
    }
    Ok(report)
}

// ---- filling the store --------------------------------------------------------------

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// How many times the store is reopened to top it up before the benchmark gives up.
const FILL_PASSES: u32 = 8;

/// When a filling pass stops.
#[derive(Debug, Clone, Copy)]
enum Until {
    /// Once the data file is this long (while open: redb grows it ahead of the data).
    FileLen(u64),
    /// After this many more customers.
    Customers(u64),
}

/// Builds the data directory in-process: the company, the administrator, and
/// customers with long notes until the data file, closed, is `store_mib` large. redb
/// grows the file ahead of its data and gives the tail back when it closes, so the
/// first pass fills until the open file reaches the size and later passes add as many
/// customers as the closed file says are still missing. The store is closed (cleanly)
/// when this returns.
fn fill(rt: &Runtime, data: &Path, store_mib: u64) -> Result<Fill> {
    nexus_kernel::registry::install(&[&nexus_crm::CRM, &nexus_ledger::entities::LEDGER])
        .map_err(|e| Error::msg(format!("installing the ledger: {e}")))?;
    std::fs::create_dir(data).context(|| format!("creating {}", data.display()))?;
    let path = data.join("nexus.redb");
    let target = store_mib.saturating_mul(1024 * 1024);
    let began = Instant::now();
    let mut company = None;
    let mut customers = 0u64;
    let mut until = Until::FileLen(target);
    for pass in 0..FILL_PASSES {
        let store =
            Store::open(&path).context(|| format!("opening the store {}", path.display()))?;
        let kernel = Kernel::new(store, Arc::new(SystemClock));
        let filled = rt.block_on(fill_pass(&kernel, &path, pass, company, until));
        // Closing the store joins its writer thread (and checkpoints): outside the
        // runtime.
        drop(kernel);
        let (id, made) = filled?;
        company = Some(id);
        customers += made;
        let len = file_len(&path);
        if len >= target {
            break;
        }
        let per_customer = (len / customers.max(1)).max(1);
        let more = (target - len) / per_customer * 11 / 10 + FILL_TASKS as u64;
        eprintln!(
            "crash-open: closed, nexus.redb is {:.0} MiB; adding about {more} customers",
            mib(len)
        );
        until = Until::Customers(more);
    }
    let len = file_len(&path);
    if len < target {
        return Err(Error::msg(format!(
            "nexus.redb is {:.0} MiB after {FILL_PASSES} passes, short of {store_mib} MiB",
            mib(len)
        )));
    }
    Ok(Fill {
        customers,
        notes_chars: NOTES_CHARS,
        notes_mib: mib(customers.saturating_mul(NOTES_CHARS as u64)),
        seconds: began.elapsed().as_secs_f64(),
        store_mib: mib(len),
        wal_mib: mib(file_len(&path.with_extension("wal"))),
    })
}

/// One filling pass; creates the company and the administrator first when `company`
/// is `None`. Returns the company and how many customers the pass created.
async fn fill_pass(
    kernel: &Kernel,
    path: &Path,
    pass: u32,
    company: Option<u64>,
    until: Until,
) -> Result<(u64, u64)> {
    let company = match company {
        Some(c) => c,
        None => {
            let company = kernel
                .create_company("Crash Bench Co", "CHF")
                .await
                .map_err(|e| kernel_error("creating the company", &e))?;
            let role = kernel
                .role_by_name(company, "Administrator")
                .map_err(|e| kernel_error("finding the Administrator role", &e))?;
            kernel
                .create_user(company, USER, "Crash Bench", PASSWORD, role)
                .await
                .map_err(|e| kernel_error("creating the benchmark's user", &e))?;
            company
        }
    };
    let who = Principal::system(company);
    let (target_len, quota) = match until {
        Until::FileLen(len) => (len, u64::MAX),
        Until::Customers(n) => (u64::MAX, n),
    };
    let full = Arc::new(AtomicBool::new(false));
    let claimed = Arc::new(AtomicU64::new(0));
    let created = Arc::new(AtomicU64::new(0));
    let began = Instant::now();
    let mut tasks = JoinSet::new();
    for task in 0..FILL_TASKS {
        let (kernel, who, full, claimed, created) = (
            kernel.clone(),
            who.clone(),
            full.clone(),
            claimed.clone(),
            created.clone(),
        );
        tasks.spawn(async move {
            let mut seq = 0u64;
            while !full.load(Ordering::Relaxed)
                && !interrupt::requested()
                && claimed.fetch_add(1, Ordering::Relaxed) < quota
            {
                let input = Input::Form(vec![
                    ("name".into(), format!("Fill {pass} {task} {seq}")),
                    ("status".into(), "Active".into()),
                    (
                        "email".into(),
                        format!("fill{pass}.{task}.{seq}@example.com"),
                    ),
                    ("city".into(), "Zurich".into()),
                    ("notes".into(), long_notes(task, seq)),
                ]);
                kernel
                    .create(&who, &CUSTOMER, input)
                    .await
                    .map_err(|e| kernel_error(&format!("filler {task}: create #{seq}"), &e))?;
                created.fetch_add(1, Ordering::Relaxed);
                seq += 1;
            }
            Ok::<_, Error>(())
        });
    }
    let step = match until {
        Until::FileLen(len) => len / 10,
        Until::Customers(_) => u64::MAX,
    };
    let mut reported = 0u64;
    let mut failure = None;
    loop {
        let len = file_len(path);
        if len >= target_len || interrupt::requested() {
            full.store(true, Ordering::Relaxed);
            break;
        }
        if tasks.is_empty() {
            break;
        }
        if len >= reported.saturating_add(step) {
            reported = len;
            eprintln!(
                "crash-open: {:.0} MiB, {} customers, {:.0} s",
                mib(len),
                created.load(Ordering::Relaxed),
                began.elapsed().as_secs_f64()
            );
        }
        tokio::select! {
            joined = tasks.join_next() => {
                let error = match joined {
                    Some(Ok(Err(e))) => e,
                    Some(Err(e)) => Error::msg(format!("a filler died: {e}")),
                    Some(Ok(Ok(()))) | None => continue,
                };
                failure.get_or_insert(error);
                full.store(true, Ordering::Relaxed);
                break;
            }
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                failure.get_or_insert(e);
            }
            Err(e) => {
                failure.get_or_insert(Error::msg(format!("a filler died: {e}")));
            }
        }
    }
    if let Some(e) = failure {
        return Err(e);
    }
    interrupt::check()?;
    Ok((company, created.load(Ordering::Relaxed)))
}

/// A customer's notes: [`NOTES_CHARS`] characters of text that differs per customer.
fn long_notes(task: usize, seq: u64) -> String {
    let mut out = String::with_capacity(NOTES_CHARS + 64);
    let mut line = 0u64;
    while out.len() < NOTES_CHARS {
        out.push_str(&format!(
            "Call {task}.{seq} #{line}: discussed the order, delivery dates and the invoice.\n"
        ));
        line += 1;
    }
    out.truncate(NOTES_CHARS);
    out
}

// ---- the rounds ---------------------------------------------------------------------

/// A running `nexus serve`; killed (SIGKILL) when dropped.
struct Appliance {
    child: Child,
    /// Receives the instant the `listening` line was read.
    listening: mpsc::Receiver<Instant>,
    port: u16,
}

impl Appliance {
    /// Spawns `nexus serve` on `data`, serving HTTPS on `port`, its log appended to
    /// `log`.
    fn spawn(bin: &Path, data: &Path, log: &Path) -> Result<(Appliance, Instant)> {
        let port = free_port()?;
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .context(|| format!("opening {}", log.display()))?;
        let mut cmd = list::nexus(bin, data);
        cmd.env("NEXUS_HTTPS_PORT", port.to_string())
            .arg("serve")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file);
        let spawned = Instant::now();
        let mut child = cmd
            .spawn()
            .context(|| format!("starting {}", bin.display()))?;
        let (tx, listening) = mpsc::channel();
        if let Some(stdout) = child.stdout.take() {
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stdout);
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                    if line.starts_with("listening ") {
                        let _ = tx.send(Instant::now());
                    }
                    line.clear();
                }
            });
        }
        Ok((
            Appliance {
                child,
                listening,
                port,
            },
            spawned,
        ))
    }

    fn base(&self) -> String {
        format!("https://localhost:{}", self.port)
    }

    /// SIGKILL, and wait for the process to be gone.
    fn kill(&mut self) -> Result<()> {
        self.child.kill().context(|| "killing nexus")?;
        self.child.wait().context(|| "waiting for nexus")?;
        Ok(())
    }
}

impl Drop for Appliance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port that was free a moment ago (the appliance binds it right away).
fn free_port() -> Result<u16> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .context(|| "finding a free port")
}

/// An HTTPS client for the appliance on `port` that trusts its CA, with `localhost`
/// pinned to 127.0.0.1 (where it listens).
fn http(ca: &str, port: u16) -> Result<reqwest::Client> {
    list::client_builder(ca)?
        .resolve("localhost", SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| Error::msg(format!("HTTP client: {e}")))
}

/// Asks `/healthz` every [`POLL_EVERY`] until it answers 200; returns when it did.
async fn wait_green(app: &mut Appliance, client: &reqwest::Client, log: &Path) -> Result<Instant> {
    let url = format!("{}/healthz", app.base());
    let began = Instant::now();
    loop {
        if let Ok(res) = client
            .get(&url)
            .timeout(Duration::from_secs(5))
            .send()
            .await
            && res.status() == reqwest::StatusCode::OK
        {
            return Ok(Instant::now());
        }
        if let Ok(Some(status)) = app.child.try_wait() {
            return Err(Error::msg(format!(
                "nexus exited while starting ({status}); see {}",
                log.display()
            )));
        }
        if began.elapsed() > START_WITHIN {
            return Err(Error::msg(format!(
                "nexus did not answer /healthz within {} s",
                START_WITHIN.as_secs()
            )));
        }
        interrupt::check()?;
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// Waits for the appliance's `listening` line (after its first start there is no CA to
/// check `/healthz` with until then).
fn wait_listening(app: &mut Appliance, log: &Path) -> Result<Instant> {
    let began = Instant::now();
    loop {
        match app.listening.recv_timeout(Duration::from_millis(10)) {
            Ok(at) => return Ok(at),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(Error::msg(format!(
                    "nexus stopped before it listened; see {}",
                    log.display()
                )));
            }
        }
        if began.elapsed() > START_WITHIN {
            return Err(Error::msg("nexus did not start listening"));
        }
        interrupt::check()?;
    }
}

/// Signs in; returns the CSRF token that writes must carry.
async fn sign_in(client: &reqwest::Client, base: &str) -> Result<String> {
    let res = client
        .post(format!("{base}/api/v1/session"))
        .json(&serde_json::json!({ "username": USER, "password": PASSWORD }))
        .send()
        .await
        .map_err(|e| Error::msg(format!("sign-in: {e}")))?;
    let status = res.status();
    if !status.is_success() {
        return Err(Error::msg(format!("sign-in refused: {status}")));
    }
    let body: serde_json::Value = res
        .json()
        .await
        .map_err(|e| Error::msg(format!("sign-in: {e}")))?;
    body.get("csrf_token")
        .and_then(serde_json::Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| Error::msg("sign-in: no csrf_token in the answer"))
}

/// The company's customer count.
async fn customers(client: &reqwest::Client, base: &str) -> Result<u64> {
    let url = format!("{base}/api/v1/customer?limit=1");
    let res = client
        .get(&url)
        .send()
        .await
        .map_err(|e| Error::msg(format!("GET {url}: {e}")))?;
    let status = res.status();
    let body: serde_json::Value = res
        .json()
        .await
        .map_err(|e| Error::msg(format!("GET {url}: {status}: {e}")))?;
    body.get("total")
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(|| Error::msg(format!("GET {url}: {status}, no total in {body}")))
}

/// `nexus_store_replayed_batches` from `/metrics`.
async fn replayed(client: &reqwest::Client, base: &str) -> Result<u64> {
    let url = format!("{base}/metrics");
    let text = client
        .get(&url)
        .send()
        .await
        .map_err(|e| Error::msg(format!("GET {url}: {e}")))?
        .text()
        .await
        .map_err(|e| Error::msg(format!("GET {url}: {e}")))?;
    text.lines()
        .find_map(|l| l.strip_prefix("nexus_store_replayed_batches "))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| Error::msg("/metrics has no nexus_store_replayed_batches"))
}

/// One client of the load: creates customers until the appliance is gone.
async fn create_until_killed(
    client: reqwest::Client,
    base: String,
    csrf: String,
    round: u64,
    task: u64,
    killed: Arc<AtomicBool>,
    acknowledged: Arc<AtomicU64>,
) -> Result<()> {
    let url = format!("{base}/api/v1/customer");
    let mut seq = 0u64;
    loop {
        let body = serde_json::json!({
            "name": format!("Crash {round} {task} {seq}"),
            "status": "Active",
            "email": "crash@example.com",
            "city": "Basel",
        });
        let sent = client
            .post(&url)
            .header("x-csrf-token", &csrf)
            .json(&body)
            .send()
            .await;
        match sent {
            Ok(res) if res.status() == reqwest::StatusCode::CREATED => {
                acknowledged.fetch_add(1, Ordering::Relaxed);
            }
            _ if killed.load(Ordering::Relaxed) => return Ok(()),
            Ok(res) => {
                let status = res.status();
                let text = res.text().await.unwrap_or_default();
                return Err(Error::msg(format!(
                    "client {task}: POST {url}: {status}: {text}"
                )));
            }
            Err(e) => return Err(Error::msg(format!("client {task}: POST {url}: {e}"))),
        }
        seq += 1;
    }
}

/// Puts write load on `app` for `seconds`, kills it in the middle of that, and waits
/// for the clients to notice. Returns how many creates were acknowledged.
async fn load_and_kill(app: &mut Appliance, ca: &str, round: u64, args: &Args) -> Result<u64> {
    let killed = Arc::new(AtomicBool::new(false));
    let acknowledged = Arc::new(AtomicU64::new(0));
    let mut tasks = JoinSet::new();
    for task in 0..args.clients {
        let client = http(ca, app.port)?;
        let csrf = sign_in(&client, &app.base()).await?;
        tasks.spawn(create_until_killed(
            client,
            app.base(),
            csrf,
            round,
            task,
            killed.clone(),
            acknowledged.clone(),
        ));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(args.load_seconds);
    let mut failure = None;
    // Stop early if a client fails before the kill.
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => break,
            joined = tasks.join_next() => match joined {
                Some(Ok(Ok(()))) | None => {}
                Some(Ok(Err(e))) => { failure = Some(e); break; }
                Some(Err(e)) => { failure = Some(Error::msg(format!("a client died: {e}"))); break; }
            },
        }
        if tasks.is_empty() {
            break;
        }
    }
    killed.store(true, Ordering::Relaxed);
    app.kill()?;
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                failure.get_or_insert(e);
            }
            Err(e) => {
                failure.get_or_insert(Error::msg(format!("a client died: {e}")));
            }
        }
    }
    if let Some(e) = failure {
        return Err(e);
    }
    Ok(acknowledged.load(Ordering::Relaxed))
}

/// The first start, then `rounds` kills and reopens. Returns the rounds and the first
/// start's time to green.
async fn run_rounds(bin: &Path, data: &Path, log: &Path, args: &Args) -> Result<(Vec<Round>, f64)> {
    let store = data.join("nexus.redb");
    let wal = data.join("nexus.wal");
    eprintln!("crash-open: first start of {}…", bin.display());
    let (mut app, spawned) = Appliance::spawn(bin, data, log)?;
    wait_listening(&mut app, log)?;
    let ca_path: PathBuf = data.join("tls/box-ca.crt");
    let ca = std::fs::read_to_string(&ca_path)
        .context(|| format!("reading the box CA {}", ca_path.display()))?;
    let health = http(&ca, app.port)?;
    let green = wait_green(&mut app, &health, log).await?;
    let first_start_ms = green.duration_since(spawned).as_secs_f64() * 1000.0;
    let mut out = Vec::new();
    for round in 1..=args.rounds {
        let admin = http(&ca, app.port)?;
        sign_in(&admin, &app.base()).await?;
        let before = customers(&admin, &app.base()).await?;
        eprintln!("crash-open: round {round}: write load, then SIGKILL…");
        let acknowledged = load_and_kill(&mut app, &ca, round, args).await?;
        drop(app);
        let store_mib = mib(file_len(&store));
        let wal_mib = mib(file_len(&wal));
        let (mut next, spawned) = Appliance::spawn(bin, data, log)?;
        let health = http(&ca, next.port)?;
        let green = wait_green(&mut next, &health, log).await?;
        let open_to_green_ms = green.duration_since(spawned).as_secs_f64() * 1000.0;
        let open_to_listening_ms = next
            .listening
            .recv_timeout(Duration::from_secs(1))
            .ok()
            .map(|at| at.duration_since(spawned).as_secs_f64() * 1000.0);
        let replayed_batches = replayed(&health, &next.base()).await?;
        let admin = http(&ca, next.port)?;
        sign_in(&admin, &next.base()).await?;
        let after = customers(&admin, &next.base()).await?;
        eprintln!(
            "crash-open: round {round}: green after {open_to_green_ms:.0} ms, \
             {replayed_batches} batches replayed"
        );
        out.push(Round {
            round,
            store_mib,
            wal_mib,
            acknowledged,
            open_to_listening_ms,
            open_to_green_ms,
            replayed_batches,
            customers: after,
            customers_expected_at_least: before + acknowledged,
        });
        app = next;
        interrupt::check()?;
    }
    drop(app);
    Ok((out, first_start_ms))
}

// ---- report -------------------------------------------------------------------------

fn notes(args: &Args) -> Vec<String> {
    vec![
        format!(
            "Filled in-process through the kernel: customers with {NOTES_CHARS}-character \
             notes from {FILL_TASKS} tasks (group commit), until nexus.redb, closed \
             cleanly, was at least {} MiB. While the appliance runs, redb keeps the file \
             grown ahead of its data (the store MiB column).",
            args.store_mib
        ),
        format!(
            "Per round: {} signed-in HTTPS clients create customers for {} s \
             (POST /api/v1/customer), the process gets SIGKILL while they do, and a new \
             `nexus serve` is spawned on the same directory. Open-to-green: from spawning \
             it until GET /healthz first answers 200, asked every 10 ms (each answer costs \
             a TLS handshake). Open-to-listening: until it printed its `listening` line.",
            args.clients, args.load_seconds
        ),
        "A process crash, not a power cut: the data file stays in the page cache. \
         'customers >= expected' checks that every acknowledged create survived the kill."
            .to_string(),
    ]
}

impl Report {
    pub fn print(&self) {
        println!();
        println!(
            "== crash-open: open time after SIGKILL under write load, {:.0} MiB store ==",
            self.fill.store_mib
        );
        println!("disk    : {}", self.disk.describe());
        println!(
            "fill    : {} customers with {}-char notes ({:.0} MiB of notes text, in the \
             records and again in their events) in {:.1} s; nexus.redb {:.0} MiB closed",
            self.fill.customers,
            self.fill.notes_chars,
            self.fill.notes_mib,
            self.fill.seconds,
            self.fill.store_mib
        );
        println!(
            "first start (clean close before it, creates TLS): green after {:.0} ms",
            self.first_start_ms
        );
        println!();
        println!(
            "{:>5} | {:>9} | {:>7} | {:>12} | {:>15} | {:>16} | {:>16} | {:>21}",
            "round",
            "store MiB",
            "WAL MiB",
            "acked writes",
            "to listening ms",
            "open-to-green ms",
            "batches replayed",
            "customers / expected"
        );
        println!(
            "{:->5}-+-{:->9}-+-{:->7}-+-{:->12}-+-{:->15}-+-{:->16}-+-{:->16}-+-{:->21}",
            "", "", "", "", "", "", "", ""
        );
        for r in &self.rounds {
            println!(
                "{:>5} | {:>9.0} | {:>7.1} | {:>12} | {:>15} | {:>16.0} | {:>16} | {:>21}",
                r.round,
                r.store_mib,
                r.wal_mib,
                r.acknowledged,
                r.open_to_listening_ms
                    .map_or_else(|| "-".to_string(), |ms| format!("{ms:.0}")),
                r.open_to_green_ms,
                r.replayed_batches,
                format!(
                    "{} {} {}",
                    r.customers,
                    if r.customers >= r.customers_expected_at_least {
                        ">="
                    } else {
                        "<"
                    },
                    r.customers_expected_at_least
                )
            );
        }
        println!();
        let store_mib = self
            .rounds
            .iter()
            .map(|r| r.store_mib)
            .fold(self.fill.store_mib, f64::max);
        let replayed: Vec<String> = self
            .rounds
            .iter()
            .map(|r| r.replayed_batches.to_string())
            .collect();
        println!(
            "{:>9} | {:>6} | {:>26} | {:>16} | {:>6}",
            "store MiB", "rounds", "open-to-green p50 / max ms", "batches replayed", "target"
        );
        println!(
            "{:->9}-+-{:->6}-+-{:->26}-+-{:->16}-+-{:->6}",
            "", "", "", "", ""
        );
        println!(
            "{:>9.0} | {:>6} | {:>26} | {:>16} | {:>6}",
            store_mib,
            self.rounds.len(),
            format!(
                "{:.0} / {:.0}",
                self.open_to_green.p50_ms, self.open_to_green.max_ms
            ),
            replayed.join(", "),
            format!(
                "{} {:.0} s",
                if self.target_met { "<=" } else { ">" },
                self.target_ms / 1000.0
            )
        );
        println!();
        println!("notes:");
        for note in &self.notes {
            println!("  * {note}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_are_as_long_as_a_long_text_may_be() {
        let n = long_notes(3, 7);
        assert_eq!(n.chars().count(), NOTES_CHARS);
        assert_ne!(n, long_notes(3, 8));
    }
}
