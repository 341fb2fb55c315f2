//! Section `ledger`: posted journal entries per second against PostgreSQL doing the
//! equivalent transaction, side by side at several client counts; then the trial
//! balance's latency over a million journal lines on both sides, with the two trial
//! balances checked equal account by account.
//!
//! Shares `--seconds`, `--clients`, `--dir` and `--pg-bin` with `writes`; its own
//! options are `--ledger-lines` and `--tb-runs`.

mod nexus;
mod postgres;
mod sample;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use nexus_kernel::{Clock, SystemClock};
use nexus_ledger::PeriodKey;
use serde::Serialize;
use time::{Date, Month};
use tokio::runtime::Runtime;

use crate::error::{Error, Result};
use crate::interrupt;
use crate::load::{Latency, Run};
use crate::machine::Disk;
use crate::pg;
use crate::writes;

/// The options only this section has.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Journal lines to load (four per entry) for the trial-balance latency.
    #[arg(
        long = "ledger-lines",
        default_value_t = 1_000_000,
        value_parser = clap::value_parser!(u64).range(4..=100_000_000)
    )]
    pub lines: u64,

    /// Trial balances to read on each side.
    #[arg(long = "tb-runs", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub tb_runs: u64,
}

/// Clients that load the trial-balance books on the nexus side.
const LOAD_CLIENTS: usize = 64;

/// What the section measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub seconds_per_level: u64,
    pub disk: Disk,
    pub postgres: pg::Server,
    pub posting: Vec<Level>,
    pub trial_balance: TrialBalance,
    pub notes: Vec<String>,
}

/// One concurrency level of posting, both sides.
#[derive(Debug, Clone, Serialize)]
pub struct Level {
    pub clients: usize,
    pub nexus: nexus::Outcome,
    pub postgres: Run,
    /// nexus entries/s divided by PostgreSQL entries/s.
    pub ratio: f64,
}

/// The trial balance over the loaded books.
#[derive(Debug, Clone, Serialize)]
pub struct TrialBalance {
    pub entries: u64,
    pub lines: u64,
    /// The months read: `YYYY-MM..=YYYY-MM` (earlier months make the opening balances).
    pub months: String,
    pub nexus_load_s: f64,
    pub postgres_load_s: f64,
    pub nexus_bytes: u64,
    pub postgres_bytes: u64,
    pub nexus: Latency,
    /// From PostgreSQL's maintained per-account, per-month balances.
    pub postgres_balances: Latency,
    /// Summed from PostgreSQL's journal lines.
    pub postgres_lines: Latency,
    /// Accounts whose opening, debit and credit were compared across the three.
    pub accounts_checked: usize,
    /// One account's general ledger over the last month read (its lines, entries and
    /// running balance): the account, how many lines it listed, and the latency.
    pub general_ledger_account: String,
    pub general_ledger_lines: usize,
    pub general_ledger: Latency,
}

/// Runs the section.
pub fn run(rt: &Runtime, base: &writes::Args, args: &Args) -> Result<Report> {
    writes::check(base)?;
    let budget = Duration::from_secs(base.seconds);
    let scratch = pg::scratch_dir(&base.dir)?;
    let disk = Disk::of(scratch.path());
    eprintln!("ledger: starting a throwaway postgres cluster…");
    let cluster = pg::Cluster::start(&scratch.path().join("pg"), base.pg_bin.as_deref())?;
    let server = rt.block_on(cluster.server())?;
    let pg_accounts: BTreeMap<&'static str, u64> =
        sample::codes().into_iter().zip(1u64..).collect();
    let today = SystemClock.now().date();

    let mut posting = Vec::with_capacity(base.clients.len());
    for &clients in &base.clients {
        interrupt::check()?;
        eprintln!("ledger: clients={clients}: nexus posting…");
        let dir = scratch.path().join(format!("nexus-post-{clients}"));
        let nexus = nexus::measure(rt, &dir, clients, budget, today)?;
        interrupt::check()?;
        eprintln!("ledger: clients={clients}: postgres posting…");
        let postgres = postgres::measure(rt, &cluster, &pg_accounts, clients, budget, today)?;
        let ratio = ratio(nexus.run.ops_per_s, postgres.ops_per_s);
        posting.push(Level {
            clients,
            nexus,
            postgres,
            ratio,
        });
    }

    interrupt::check()?;
    let trial_balance = trial_balance(rt, scratch.path(), &cluster, &pg_accounts, args, today)?;
    drop(cluster);
    let report = Report {
        seconds_per_level: base.seconds,
        disk,
        postgres: server,
        posting,
        trial_balance,
        notes: notes(),
    };
    report.print();
    Ok(report)
}

fn ratio(nexus: f64, postgres: f64) -> f64 {
    if postgres > 0.0 {
        nexus / postgres
    } else {
        f64::INFINITY
    }
}

/// Loads the same books into both sides and times their trial balances.
fn trial_balance(
    rt: &Runtime,
    scratch: &Path,
    cluster: &pg::Cluster,
    pg_accounts: &BTreeMap<&'static str, u64>,
    args: &Args,
    today: Date,
) -> Result<TrialBalance> {
    let entries = args.lines / 4;
    let year = today.year() - 1;
    let month = |m: Month| {
        Date::from_calendar_date(year, m, 1)
            .map_err(|e| Error::msg(format!("the first of {m} {year}: {e}")))
    };
    let (from, to) = (month(Month::April)?, month(Month::September)?);
    let to_last = PeriodKey::of(to)
        .map(PeriodKey::last_day)
        .map_err(|e| Error::msg(e.to_string()))?;
    let periods = PeriodKey::of(from)
        .and_then(|f| Ok((f, PeriodKey::of(to)?)))
        .map_err(|e| Error::msg(e.to_string()))?;

    eprintln!("ledger: loading {entries} entries into nexus ({LOAD_CLIENTS} clients)…");
    let dir = scratch.join("nexus-tb");
    let books = nexus::Books::open(rt, &dir)?;
    let nexus_load = nexus::load(rt, &books, entries, LOAD_CLIENTS, year)?;
    if books.entries()? != entries {
        return Err(Error::msg("the nexus books do not hold every loaded entry"));
    }
    eprintln!("ledger: timing the nexus trial balance…");
    let runs = args.tb_runs as usize;
    let (nexus_latency, nexus_rows) =
        nexus::time_trial_balance(&books, periods.0, periods.1, runs)?;
    nexus::check_balanced(&nexus_rows)?;
    // The busiest account posted to, for one month: what "open the account" costs.
    eprintln!("ledger: timing the general ledger of the busiest account…");
    let (gl_account, gl_latency, gl_lines) =
        nexus::time_general_ledger(&books, &nexus_rows, (to, to_last), runs)?;
    drop(books);
    let nexus_bytes = dir_bytes(&dir);
    std::fs::remove_dir_all(&dir)
        .map_err(|e| Error::msg(format!("removing {}: {e}", dir.display())))?;

    eprintln!("ledger: loading {entries} entries into postgres…");
    let postgres_load = postgres::load(rt, cluster, pg_accounts, entries, year)?;
    eprintln!("ledger: timing the postgres trial balances…");
    let (pg_balances, by_balances) =
        postgres::time_trial_balance(rt, cluster, postgres::Source::Balances, (from, to), runs)?;
    let (pg_lines, by_lines) =
        postgres::time_trial_balance(rt, cluster, postgres::Source::Lines, (from, to_last), runs)?;
    let postgres_bytes = rt.block_on(database_bytes(cluster))?;

    let mut checked = 0;
    for (code, row) in &nexus_rows {
        let Some(balances) = by_balances.get(code.as_str()) else {
            continue;
        };
        let ours = (row.opening, row.debit, row.credit);
        let lines = by_lines.get(code.as_str());
        if ours != *balances || Some(balances) != lines {
            return Err(Error::msg(format!(
                "account {code}: nexus has (opening, debit, credit) {ours:?}, postgres's \
                 balances {balances:?}, its lines {lines:?}"
            )));
        }
        checked += 1;
    }
    if checked != pg_accounts.len() {
        return Err(Error::msg(format!(
            "only {checked} of {} accounts could be compared",
            pg_accounts.len()
        )));
    }
    Ok(TrialBalance {
        entries,
        lines: entries * 4,
        months: format!("{}..={}", periods.0, periods.1),
        nexus_load_s: nexus_load.as_secs_f64(),
        postgres_load_s: postgres_load.as_secs_f64(),
        nexus_bytes,
        postgres_bytes,
        nexus: nexus_latency,
        postgres_balances: pg_balances,
        postgres_lines: pg_lines,
        accounts_checked: checked,
        general_ledger_account: gl_account,
        general_ledger_lines: gl_lines,
        general_ledger: gl_latency,
    })
}

/// The bytes of the files directly in `dir`.
fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

async fn database_bytes(cluster: &pg::Cluster) -> Result<u64> {
    let client = cluster.connect().await?;
    let bytes: i64 = client
        .query_one("SELECT pg_database_size(current_database())", &[])
        .await
        .and_then(|row| row.try_get(0))
        .map_err(|e| Error::msg(format!("asking postgres for its size: {e}")))?;
    Ok(u64::try_from(bytes).unwrap_or(0))
}

fn notes() -> Vec<String> {
    vec![
        "nexus: one ledger post = one store command: the chart's accounts checked, the entry \
         and its four lines as records (each with sort-index entries, a change-log entry and \
         a hash-chained audit entry: five of each per entry), the gapless entry number, the \
         line list, and four per-account, per-month totals updated; acknowledged once its \
         batch is synced to the write-ahead log."
            .to_string(),
        "postgres: BEGIN; INSERT header (number from a sequence: not gapless, which favours \
         postgres) RETURNING id; INSERT the four lines (one statement); upsert the four \
         per-account, per-month balances (one statement, in account order); INSERT one audit \
         row (not hash-chained) and one outbox row; COMMIT - prepared statements, one \
         connection per client over a unix socket, fsync=on, synchronous_commit=on."
            .to_string(),
        "postgres writes one audit and one outbox row per entry where nexus writes five of \
         each (one per record): this favours postgres."
            .to_string(),
        "trial balance: nexus reads the chart of accounts and its maintained totals and \
         returns every account with group roll-ups; postgres's first query reads its \
         maintained balances, the second sums the journal lines (what a ledger without \
         maintained totals does). The postgres books are bulk-loaded with the same entries; \
         the three results are compared account by account."
            .to_string(),
    ]
}

impl Report {
    /// Prints the results as tables.
    pub fn print(&self) {
        println!();
        println!(
            "== ledger: posted journal entries (4 lines) per second, {} s per side and level ==",
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
        println!(
            "{:>7} | {:>13} | {:>16} | {:>16} | {:>20} | {:>20}",
            "clients",
            "nexus JEs/s",
            "postgres JEs/s",
            "ratio (nexus/pg)",
            "nexus p50/p99 ms",
            "postgres p50/p99 ms"
        );
        println!(
            "{:->7}-+-{:->13}-+-{:->16}-+-{:->16}-+-{:->20}-+-{:->20}",
            "", "", "", "", "", ""
        );
        for l in &self.posting {
            println!(
                "{:>7} | {:>13.0} | {:>16.0} | {:>15.2}x | {:>20} | {:>20}",
                l.clients,
                l.nexus.run.ops_per_s,
                l.postgres.ops_per_s,
                l.ratio,
                latency(&l.nexus.run.latency),
                latency(&l.postgres.latency),
            );
        }
        let tb = &self.trial_balance;
        println!();
        println!(
            "== ledger: trial balance over {} journal lines ({} entries), months {} ==",
            tb.lines, tb.entries, tb.months
        );
        println!(
            "load: nexus {:.1} s ({LOAD_CLIENTS} clients posting, {:.0} entries/s), \
             postgres {:.1} s (bulk INSERT)",
            tb.nexus_load_s,
            tb.entries as f64 / tb.nexus_load_s.max(1e-9),
            tb.postgres_load_s
        );
        println!(
            "size: nexus {:.0} MiB (store and log), postgres {:.0} MiB (database)",
            tb.nexus_bytes as f64 / 1048576.0,
            tb.postgres_bytes as f64 / 1048576.0
        );
        println!();
        println!(
            "{:>34} | {:>8} | {:>8} | {:>8} | {:>14}",
            "trial balance", "p50 ms", "p99 ms", "max ms", "nexus speed-up"
        );
        println!(
            "{:->34}-+-{:->8}-+-{:->8}-+-{:->8}-+-{:->14}",
            "", "", "", "", ""
        );
        for (name, l) in [
            ("nexus (maintained totals)", tb.nexus),
            ("postgres (maintained balances)", tb.postgres_balances),
            ("postgres (sum of lines)", tb.postgres_lines),
        ] {
            println!(
                "{name:>34} | {:>8.2} | {:>8.2} | {:>8.2} | {:>13.1}x",
                l.p50_ms,
                l.p99_ms,
                l.max_ms,
                ratio(l.p50_ms, tb.nexus.p50_ms)
            );
        }
        println!(
            "the three trial balances agree on all {} accounts posted to",
            tb.accounts_checked
        );
        println!(
            "general ledger of account {} for {}: {} lines, p50 {:.2} ms, p99 {:.2} ms",
            tb.general_ledger_account,
            tb.months.split("..=").last().unwrap_or_default(),
            tb.general_ledger_lines,
            tb.general_ledger.p50_ms,
            tb.general_ledger.p99_ms
        );
        println!();
        println!("notes:");
        for note in &self.notes {
            println!("  * {note}");
        }
    }
}

fn latency(l: &Latency) -> String {
    format!("{:.2} / {:.2}", l.p50_ms, l.p99_ms)
}
