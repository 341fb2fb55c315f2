//! Section `writes`: durable kernel commands per second against PostgreSQL doing the
//! same work, side by side in the same run, at several client counts.
//!
//! Both sides keep their data under one temporary directory, so they fsync to the
//! same filesystem. Each concurrency level starts from a fresh nexus store and a
//! fresh PostgreSQL schema.

pub(crate) mod nexus;
mod postgres;
mod sample;
mod tailer;

use std::path::PathBuf;
use std::time::Duration;

use nexus_crm::CUSTOMER;
use nexus_kernel::Unique;
use serde::Serialize;
use tokio::runtime::Runtime;

use crate::error::{Context, Error, Result};
use crate::interrupt;
use crate::load::Run;
use crate::machine::Disk;
use crate::pg;

/// Options of the `writes` section.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Wall-clock seconds per side and concurrency level.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub seconds: u64,

    /// Concurrent clients, one level per value.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    pub clients: Vec<usize>,

    /// Where to put the temporary nexus stores and PostgreSQL cluster (both on the
    /// same filesystem, so their fsyncs cost the same).
    #[arg(long, env = "NEXUS_BENCH_DIR", default_value = "/var/tmp")]
    pub dir: PathBuf,

    /// Directory of the PostgreSQL server binaries [default: the newest
    /// /usr/lib/postgresql/*/bin].
    #[arg(long, value_name = "DIR")]
    pub pg_bin: Option<PathBuf>,

    /// Leave out the tailer that `writes` runs beside the nexus load (its lag is
    /// reported with the writer's counters).
    #[arg(long)]
    pub no_tailer: bool,
}

/// The most clients a level may have: PostgreSQL runs with `max_connections = 200`,
/// and the benchmark holds one more connection for checks.
const MAX_CLIENTS: usize = 190;

/// What the section measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub seconds_per_level: u64,
    pub disk: Disk,
    pub postgres: pg::Server,
    pub levels: Vec<Level>,
    pub notes: Vec<String>,
}

/// One concurrency level, both sides.
#[derive(Debug, Clone, Serialize)]
pub struct Level {
    pub clients: usize,
    pub nexus: nexus::Outcome,
    pub postgres: Run,
    /// nexus ops/s divided by PostgreSQL ops/s.
    pub ratio: f64,
}

/// Runs the section: for every client count, nexus and then PostgreSQL.
pub fn run(rt: &Runtime, args: &Args) -> Result<Report> {
    check(args)?;
    let budget = Duration::from_secs(args.seconds);
    let scratch = pg::scratch_dir(&args.dir)?;
    let disk = Disk::of(scratch.path());
    eprintln!("writes: starting a throwaway postgres cluster…");
    let cluster = pg::Cluster::start(&scratch.path().join("pg"), args.pg_bin.as_deref())?;
    let server = rt.block_on(cluster.server())?;
    let mut levels = Vec::with_capacity(args.clients.len());
    for &clients in &args.clients {
        interrupt::check()?;
        eprintln!("writes: clients={clients}: nexus…");
        let store_dir = scratch.path().join(format!("nexus-{clients}"));
        let nexus = nexus::measure(rt, &store_dir, clients, budget, !args.no_tailer)?;
        interrupt::check()?;
        eprintln!("writes: clients={clients}: postgres…");
        let postgres = postgres::measure(rt, &cluster, clients, budget)?;
        levels.push(Level::new(clients, nexus, postgres));
    }
    drop(cluster);
    let scratch_path = scratch.path().to_path_buf();
    scratch
        .close()
        .context(|| format!("removing {}", scratch_path.display()))?;
    let report = Report {
        seconds_per_level: args.seconds,
        disk,
        postgres: server,
        levels,
        notes: notes(),
    };
    report.print();
    Ok(report)
}

pub(crate) fn check(args: &Args) -> Result<()> {
    if args.clients.is_empty() || args.clients.iter().any(|&c| c == 0 || c > MAX_CLIENTS) {
        return Err(Error::msg(format!(
            "--clients needs one or more counts between 1 and {MAX_CLIENTS}"
        )));
    }
    Ok(())
}

impl Level {
    fn new(clients: usize, nexus: nexus::Outcome, postgres: Run) -> Level {
        let ratio = if postgres.ops_per_s > 0.0 {
            nexus.run.ops_per_s / postgres.ops_per_s
        } else {
            f64::INFINITY
        };
        Level {
            clients,
            nexus,
            postgres,
            ratio,
        }
    }
}

/// What each side does per operation, and where the comparison is not equal.
fn notes() -> Vec<String> {
    let indexed = CUSTOMER.fields.iter().filter(|f| f.indexed).count();
    let unique = CUSTOMER
        .fields
        .iter()
        .filter(|f| f.unique != Unique::No)
        .count();
    vec![
        format!(
            "nexus: one kernel create = one store command: the record, {indexed} sort-index \
             entries, {unique} unique-name entry, the company's count, the id counter, a \
             change-log entry, a hash-chained audit entry and its history link; it is \
             acknowledged once its batch is synced to the write-ahead log (one write and \
             one fdatasync per batch; redb itself commits without sync and is made durable \
             by a checkpoint at most a second later)."
        ),
        "postgres: BEGIN; INSERT customer (primary key, unique (company, name), 4 more \
         indexes) RETURNING id; INSERT audit; INSERT outbox; COMMIT - prepared statements, \
         one connection per client over a unix socket, fsync=on, synchronous_commit=on, \
         full_page_writes=on."
            .to_string(),
        "postgres's audit row is NOT hash-chained: chaining needs a serialising read of the \
         previous row's hash, which the benchmark leaves out. This favours postgres."
            .to_string(),
        "nexus runs in-process; postgres pays five client/server round trips per operation \
         over a unix socket. This favours nexus - it is the point of the design."
            .to_string(),
        "Both sides run on the same machine and the same filesystem, one after the other; \
         the nexus store and postgres tables start empty at every level."
            .to_string(),
        "nexus tailer lag: a tailer (run_tailer, as the live-updates feed and later the \
         indexers use it) follows the event log beside the load and only counts what it is \
         given; its throughput cost is included in the nexus ops/s. Lag in events is \
         log head minus the tailer's published position, sampled every 10 ms; lag in ms \
         is how long after each sample the tailer's position reached the head that sample \
         saw (0 when it was already there). --no-tailer leaves it out."
            .to_string(),
    ]
}

impl Report {
    /// Prints the results as tables.
    pub fn print(&self) {
        println!();
        println!(
            "== writes: durable creates per second, {} s per side and level ==",
            self.seconds_per_level
        );
        println!("disk    : {}", self.disk.describe());
        println!(
            "postgres: {} ({}), {}",
            self.postgres.version,
            self.postgres.bin.display(),
            self.postgres.describe_settings()
        );
        println!();
        self.print_throughput();
        println!();
        self.print_writer();
        println!();
        println!("notes:");
        for note in &self.notes {
            println!("  * {note}");
        }
    }

    fn print_throughput(&self) {
        println!(
            "{:>7} | {:>11} | {:>14} | {:>16} | {:>20} | {:>20}",
            "clients",
            "nexus ops/s",
            "postgres ops/s",
            "ratio (nexus/pg)",
            "nexus p50/p99 ms",
            "postgres p50/p99 ms"
        );
        println!(
            "{:->7}-+-{:->11}-+-{:->14}-+-{:->16}-+-{:->20}-+-{:->20}",
            "", "", "", "", "", ""
        );
        for l in &self.levels {
            println!(
                "{:>7} | {:>11.0} | {:>14.0} | {:>15.2}x | {:>20} | {:>20}",
                l.clients,
                l.nexus.run.ops_per_s,
                l.postgres.ops_per_s,
                l.ratio,
                latency(&l.nexus.run),
                latency(&l.postgres),
            );
        }
    }

    fn print_writer(&self) {
        println!(
            "nexus writer (group commit): commands / commits = average batch; \
             tailer lag beside the load"
        );
        println!(
            "{:>7} | {:>9} | {:>9} | {:>13} | {:>13} | {:>27} | {:>24}",
            "clients",
            "commands",
            "commits",
            "average batch",
            "audit entries",
            "tailer lag p50/p99/max ev",
            "tailer lag p50/p99/max ms"
        );
        println!(
            "{:->7}-+-{:->9}-+-{:->9}-+-{:->13}-+-{:->13}-+-{:->27}-+-{:->24}",
            "", "", "", "", "", "", ""
        );
        for l in &self.levels {
            let w = &l.nexus.writer;
            let (events, ms) = match &l.nexus.tailer {
                Some(t) => (
                    format!("{} / {} / {}", t.events_p50, t.events_p99, t.events_max),
                    format!(
                        "{:.1} / {:.1} / {:.1}",
                        t.ms.p50_ms, t.ms.p99_ms, t.ms.max_ms
                    ),
                ),
                None => ("-".to_string(), "-".to_string()),
            };
            println!(
                "{:>7} | {:>9} | {:>9} | {:>13.1} | {:>13} | {:>27} | {:>24}",
                l.clients,
                w.commands,
                w.commits,
                w.average_batch,
                l.nexus.audit_entries,
                events,
                ms
            );
        }
    }
}

fn latency(run: &Run) -> String {
    format!("{:.2} / {:.2}", run.latency.p50_ms, run.latency.p99_ms)
}
