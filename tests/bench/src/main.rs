//! `nexus-bench`: benchmarks of the nexus appliance, printed as tables and optionally
//! written as JSON.
//!
//! The benchmark is split into sections, each a subcommand:
//!
//! * `writes` — durable kernel commands per second against PostgreSQL doing the same
//!   work ([`writes`]).
//! * `ledger` — posted journal entries per second against PostgreSQL, and the trial
//!   balance's latency over a million lines on both sides ([`ledger`]).
//! * `list` — list-page latency over HTTPS against the real `nexus` binary ([`list`]).
//! * `crash-open` — how soon the real binary serves again after SIGKILL under write load
//!   on a store of more than a gigabyte ([`crash_open`]).
//! * `jobs` — durable job-queue throughput against PostgreSQL doing it the pg-boss way
//!   ([`jobs`]).
//! * `vectors` — hnsw_rs at the vector index's parameters against hnswlib and faiss,
//!   with exact ground truth, and the embedding engine's speed ([`vectors`]).
//! * `search` — full-text search over HTTPS against the real binary at 1 and 16
//!   searchers, freshness under writes, and the permissions' cost in the query
//!   ([`search`]).
//! * `quality` — nDCG@10 and recall@100 of search by words, by meaning and hybrid on a
//!   labelled set (the Python FAQ), beside bm25s's BM25 on the same set ([`quality`]).
//! * `all` — every section in turn (but `tlog`, `vectors`, `search` and `quality`).
//!
//! Adding a section takes four steps: a module with its `Args` (a `clap::Args` struct), a
//! `run(&Runtime, &Args) -> Result<Report>` that prints its own tables and returns a
//! serialisable report, a variant of [`Section`] plus a flattened field of [`AllArgs`],
//! and an optional field of [`Report`]. [`load::drive`] is the shared closed-loop load
//! generator: implement [`load::Client`] for one client's operation.

mod crash_open;
mod error;
mod interrupt;
mod jobs;
mod ledger;
mod list;
mod load;
mod machine;
mod pg;
mod quality;
mod search;
mod tlog;
mod vectors;
mod writes;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde::Serialize;

use crate::error::{Context, Result};
use crate::machine::Machine;

/// Benchmarks of the nexus appliance.
#[derive(Debug, Parser)]
#[command(name = "nexus-bench", version, about)]
struct Cli {
    /// Also write the results as JSON to this file.
    #[arg(long, global = true, value_name = "PATH")]
    json: Option<PathBuf>,

    #[command(subcommand)]
    section: Section,
}

/// What to measure.
#[derive(Debug, Subcommand)]
enum Section {
    /// Durable creates per second: the kernel against PostgreSQL, side by side.
    Writes(writes::Args),
    /// Posted journal entries per second against PostgreSQL, and trial-balance latency
    /// over a million journal lines.
    Ledger(LedgerArgs),
    /// List-page latency over HTTPS against the real binary (100,000 customers, 64 users).
    List(list::Args),
    /// Open time of the real binary after SIGKILL under write load, on a store of more
    /// than a gigabyte.
    CrashOpen(CrashOpenArgs),
    /// Durable job-queue throughput: enqueue and completion rates of kernel jobs against
    /// PostgreSQL's SKIP LOCKED queue.
    Jobs(JobsArgs),
    /// The transparency log: creates/s with its Merkle tree against without, proof
    /// latency on a tree of ten million entries, and bundle verification speed.
    Tlog(tlog::Args),
    /// Vector search: recall@10 and queries/s of hnsw_rs against hnswlib and faiss at
    /// equal M, ef and threads, and embeddings per second.
    Vectors(vectors::Args),
    /// Full-text search over HTTPS (1M customers and their contacts): latency at 1 and
    /// 16 searchers, freshness at 1,000 writes/s, and the permissions' cost in the query.
    Search(search::Args),
    /// Search quality: nDCG@10 and recall@100 by words, by meaning and hybrid on the
    /// Python FAQ, beside bm25s's BM25.
    Quality(quality::Args),
    /// Every section in turn (but `tlog`, `vectors`, `search` and `quality`, which run on
    /// their own).
    All(AllArgs),
}

/// The options of the `ledger` section: the side-by-side options of `writes`, and its own.
#[derive(Debug, clap::Args)]
struct LedgerArgs {
    #[command(flatten)]
    base: writes::Args,
    #[command(flatten)]
    ledger: ledger::Args,
}

/// The options of the `crash-open` section. In `all`, `--nexus-bin` is the one of
/// `list` and `--dir` the one of `writes`.
#[derive(Debug, clap::Args)]
struct CrashOpenArgs {
    #[command(flatten)]
    crash: crash_open::Args,
    /// The nexus binary (default: `nexus` beside this benchmark binary).
    #[arg(long = "nexus-bin")]
    nexus_bin: Option<PathBuf>,
    /// Where to put the temporary data directory.
    #[arg(long, env = "NEXUS_BENCH_DIR", default_value = "/var/tmp")]
    dir: PathBuf,
}

/// The options of the `jobs` section. In `all`, `--dir` and `--pg-bin` are the ones
/// of `writes`.
#[derive(Debug, clap::Args)]
struct JobsArgs {
    #[command(flatten)]
    jobs: jobs::Args,
    /// Where to put the temporary nexus store and PostgreSQL cluster (the same
    /// filesystem for both).
    #[arg(long, env = "NEXUS_BENCH_DIR", default_value = "/var/tmp")]
    dir: PathBuf,
    /// Directory of the PostgreSQL server binaries [default: the newest
    /// /usr/lib/postgresql/*/bin].
    #[arg(long, value_name = "DIR")]
    pg_bin: Option<PathBuf>,
}

/// The options of every section (each section's options are its own).
#[derive(Debug, clap::Args)]
struct AllArgs {
    #[command(flatten)]
    writes: writes::Args,
    #[command(flatten)]
    ledger: ledger::Args,
    #[command(flatten)]
    list: list::Args,
    #[command(flatten)]
    jobs: jobs::Args,
    #[command(flatten)]
    crash: crash_open::Args,
}

/// Everything one invocation measured, as written to `--json`.
#[derive(Debug, Serialize)]
struct Report {
    machine: Machine,
    #[serde(skip_serializing_if = "Option::is_none")]
    writes: Option<writes::Report>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ledger: Option<ledger::Report>,
    #[serde(skip_serializing_if = "Option::is_none")]
    list: Option<list::Report>,
    #[serde(skip_serializing_if = "Option::is_none")]
    jobs: Option<jobs::Report>,
    #[serde(skip_serializing_if = "Option::is_none")]
    crash_open: Option<crash_open::Report>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tlog: Option<tlog::Report>,
    #[serde(skip_serializing_if = "Option::is_none")]
    vectors: Option<vectors::Report>,
    #[serde(skip_serializing_if = "Option::is_none")]
    quality: Option<quality::Report>,
    #[serde(skip_serializing_if = "Option::is_none")]
    search: Option<search::Report>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nexus-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> Result<()> {
    // Open the JSON file first: a typo in its path should not cost a whole run.
    let json = cli.json.as_deref().map(create_json).transpose()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context(|| "starting the async runtime")?;
    interrupt::watch(&runtime);
    let mut report = Report {
        machine: Machine::probe(),
        writes: None,
        ledger: None,
        list: None,
        jobs: None,
        crash_open: None,
        tlog: None,
        vectors: None,
        quality: None,
        search: None,
    };
    report.machine.print();
    match &cli.section {
        Section::Writes(args) => report.writes = Some(writes::run(&runtime, args)?),
        Section::Ledger(args) => {
            report.ledger = Some(ledger::run(&runtime, &args.base, &args.ledger)?);
        }
        Section::List(args) => report.list = Some(runtime.block_on(list::run(args))?),
        Section::Tlog(args) => report.tlog = Some(tlog::run(&runtime, args)?),
        Section::Vectors(args) => report.vectors = Some(vectors::run(args)?),
        Section::Search(args) => report.search = Some(search::run(&runtime, args)?),
        Section::Quality(args) => report.quality = Some(quality::run(&runtime, args)?),
        Section::CrashOpen(args) => {
            report.crash_open = Some(crash_open::run(
                &runtime,
                &args.crash,
                args.nexus_bin.as_deref(),
                &args.dir,
            )?);
        }
        Section::Jobs(args) => {
            report.jobs = Some(jobs::run(
                &runtime,
                &args.jobs,
                &args.dir,
                args.pg_bin.as_deref(),
            )?);
        }
        Section::All(all) => {
            report.writes = Some(writes::run(&runtime, &all.writes)?);
            report.ledger = Some(ledger::run(&runtime, &all.writes, &all.ledger)?);
            report.list = Some(runtime.block_on(list::run(&all.list))?);
            report.jobs = Some(jobs::run(
                &runtime,
                &all.jobs,
                &all.writes.dir,
                all.writes.pg_bin.as_deref(),
            )?);
            report.crash_open = Some(crash_open::run(
                &runtime,
                &all.crash,
                all.list.nexus_bin.as_deref(),
                &all.writes.dir,
            )?);
        }
    }
    report.machine.finish();
    println!();
    println!(
        "load average at end: {}",
        report.machine.load_at_end.as_deref().unwrap_or("unknown")
    );
    if let Some((path, file)) = json {
        write_json(file, &report).context(|| format!("writing {}", path.display()))?;
        println!("results written to {}", path.display());
    }
    Ok(())
}

fn create_json(path: &Path) -> Result<(PathBuf, File)> {
    let file = File::create(path).context(|| format!("creating {}", path.display()))?;
    Ok((path.to_path_buf(), file))
}

fn write_json(file: File, report: &Report) -> std::io::Result<()> {
    let mut out = BufWriter::new(file);
    serde_json::to_writer_pretty(&mut out, report)?;
    out.write_all(b"\n")?;
    out.flush()
}
