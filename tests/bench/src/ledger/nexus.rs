//! The nexus side: journal entries posted through the ledger's command, in-process,
//! on a real store; the trial balance read from the maintained totals.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nexus_kernel::{Kernel, ListQuery, Principal, SystemClock};
use nexus_ledger::books::{self, EntryInput, LineInput};
use nexus_ledger::entities::JOURNAL_ENTRY;
use nexus_ledger::{PeriodKey, TrialBalanceRow};
use nexus_store::Store;
use serde::Serialize;
use time::Date;
use tokio::runtime::Runtime;
use tokio::task::JoinSet;

use super::sample;
use crate::error::{Context, Error, Result};
use crate::load::{self, Client, Latency, Run};
use crate::writes::nexus::{Writer, kernel_error};

/// The store file inside each run's directory.
const STORE_FILE: &str = "nexus.redb";

/// A fresh store with one company and the small-firm chart.
pub struct Books {
    pub kernel: Kernel,
    pub who: Principal,
    /// Account code → record id.
    accounts: Arc<BTreeMap<&'static str, u64>>,
}

impl Books {
    /// Opens a new store in `dir` (which must not exist yet).
    pub fn open(rt: &Runtime, dir: &Path) -> Result<Books> {
        nexus_kernel::registry::install(&[&nexus_crm::CRM, &nexus_ledger::entities::LEDGER])
            .map_err(|e| Error::msg(format!("installing the ledger: {e}")))?;
        std::fs::create_dir(dir).context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(STORE_FILE);
        let store =
            Store::open(&path).context(|| format!("opening the store {}", path.display()))?;
        let kernel = Kernel::new(store, Arc::new(SystemClock));
        let company = rt
            .block_on(kernel.create_company("Bench Co", "USD"))
            .map_err(|e| kernel_error("creating the company", &e))?;
        let who = Principal::system(company);
        rt.block_on(books::install_chart(&kernel, &who))
            .map_err(|e| kernel_error("installing the chart of accounts", &e))?;
        let chart = books::chart(&kernel, &who)
            .map_err(|e| kernel_error("reading the chart of accounts", &e))?;
        let mut accounts = BTreeMap::new();
        for code in sample::codes() {
            let account = chart
                .by_code(code)
                .ok_or_else(|| Error::msg(format!("the template has no account {code}")))?;
            accounts.insert(code, account.id);
        }
        Ok(Books {
            kernel,
            who,
            accounts: Arc::new(accounts),
        })
    }

    fn poster(&self, task: usize, date: Dated) -> Poster {
        Poster {
            kernel: self.kernel.clone(),
            who: self.who.clone(),
            accounts: self.accounts.clone(),
            task,
            date,
        }
    }

    /// How many journal entries the company has.
    pub fn entries(&self) -> Result<u64> {
        let one = ListQuery {
            limit: 1,
            ..Default::default()
        };
        self.kernel
            .list(&self.who, &JOURNAL_ENTRY, &one)
            .map(|page| page.total)
            .map_err(|e| kernel_error("counting journal entries", &e))
    }

    /// The trial balance of `from..=to`, with its account codes.
    pub fn trial_balance(
        &self,
        from: PeriodKey,
        to: PeriodKey,
    ) -> Result<Vec<(String, TrialBalanceRow)>> {
        let (chart, rows) = books::trial_balance(&self.kernel, &self.who, from, to)
            .map_err(|e| kernel_error("reading the trial balance", &e))?;
        Ok(rows
            .into_iter()
            .filter_map(|row| chart.get(row.account).map(|a| (a.code.clone(), row)))
            .collect())
    }
}

/// Times the general ledger (each line, its entry and the running balance) from `from`
/// to `to` of the busiest account the load posted to, by the trial balance `rows`;
/// returns the account's code, the latency and how many lines it listed.
pub fn time_general_ledger(
    books: &Books,
    rows: &[(String, TrialBalanceRow)],
    (from, to): (Date, Date),
    runs: usize,
) -> Result<(String, Latency, usize)> {
    let (code, account) = rows
        .iter()
        .filter_map(|(code, row)| {
            let id = *books.accounts.get(code.as_str())?;
            Some((row.debit.saturating_add(row.credit), code.clone(), id))
        })
        .max()
        .map(|(_, code, id)| (code, id))
        .ok_or_else(|| Error::msg("the load posted to no account"))?;
    let mut samples = Vec::with_capacity(runs);
    let mut lines = 0;
    for _ in 0..runs {
        let began = Instant::now();
        let gl = books::general_ledger(&books.kernel, &books.who, account, from, to)
            .map_err(|e| kernel_error("reading the general ledger", &e))?;
        samples.push(began.elapsed());
        lines = gl.lines.len();
    }
    Ok((code, load::latency_of(samples), lines))
}

/// Which date an entry gets.
#[derive(Debug, Clone, Copy)]
enum Dated {
    /// Every entry on this day.
    On(Date),
    /// Spread over this year ([`sample::load_date`]).
    Over(i32),
}

/// One client: posts entry after entry.
struct Poster {
    kernel: Kernel,
    who: Principal,
    accounts: Arc<BTreeMap<&'static str, u64>>,
    task: usize,
    date: Dated,
}

impl Poster {
    async fn post(&self, seq: u64) -> Result<()> {
        let date = match self.date {
            Dated::On(day) => day,
            Dated::Over(year) => sample::load_date(year, seq),
        };
        let entry = sample::entry(self.task, seq, date);
        let mut lines = Vec::with_capacity(4);
        for l in entry.lines {
            let account = *self
                .accounts
                .get(l.code)
                .ok_or_else(|| Error::msg(format!("no account {}", l.code)))?;
            lines.push(LineInput {
                account,
                debit: l.debit,
                credit: l.credit,
                memo: String::new(),
                foreign: None,
            });
        }
        let input = EntryInput {
            date: entry.date,
            narration: entry.narration,
            reference: String::new(),
            lines,
        };
        books::post(&self.kernel, &self.who, input)
            .await
            .map(drop)
            .map_err(|e| kernel_error(&format!("client {}: entry #{seq}", self.task), &e))
    }
}

impl Client for Poster {
    async fn op(&mut self, seq: u64) -> Result<()> {
        self.post(seq).await
    }
}

/// The outcome of one concurrency level.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub run: Run,
    pub writer: Writer,
    /// Entries in the audit chain after the run, all verified.
    pub audit_entries: u64,
}

/// Posts entries dated `day` from `clients` concurrent tasks for `budget` against a
/// fresh store in `dir`, then checks that every acknowledged entry is there, audited
/// and in the totals.
pub fn measure(
    rt: &Runtime,
    dir: &Path,
    clients: usize,
    budget: Duration,
    day: Date,
) -> Result<Outcome> {
    let books = Books::open(rt, dir)?;
    let audit_before = verify_audit(&books.kernel)?;
    let before = books.kernel.writer_stats();
    let posters = (0..clients)
        .map(|task| books.poster(task, Dated::On(day)))
        .collect();
    let run = rt.block_on(load::drive(posters, budget))?;
    let writer = Writer::between(before, books.kernel.writer_stats());
    let audit_entries = verify_audit(&books.kernel)?;
    // One command per entry; five audited records per entry (the entry, four lines).
    let new_audit = audit_entries.saturating_sub(audit_before);
    if writer.commands != run.ops || writer.rejected != 0 || new_audit != 5 * run.ops {
        return Err(Error::msg(format!(
            "the clients saw {} entries posted, but the writer committed {} commands and \
             rejected {}, and the audit chain grew by {new_audit} entries (expected {})",
            run.ops,
            writer.commands,
            writer.rejected,
            5 * run.ops
        )));
    }
    let entries = books.entries()?;
    if entries != run.ops {
        return Err(Error::msg(format!(
            "the clients saw {} entries posted, but the books hold {entries}",
            run.ops
        )));
    }
    let month = PeriodKey::of(day).map_err(|e| Error::msg(e.to_string()))?;
    check_balanced(&books.trial_balance(month, month)?)?;
    drop(books);
    std::fs::remove_dir_all(dir).context(|| format!("removing {}", dir.display()))?;
    Ok(Outcome {
        run,
        writer,
        audit_entries,
    })
}

/// The top-level rows' debits equal their credits.
pub fn check_balanced(rows: &[(String, TrialBalanceRow)]) -> Result<()> {
    let top: Vec<_> = rows
        .iter()
        .filter(|(code, _)| code.ends_with("000"))
        .collect();
    let debit: i64 = top.iter().map(|(_, r)| r.debit).sum();
    let credit: i64 = top.iter().map(|(_, r)| r.credit).sum();
    if debit != credit || debit == 0 {
        return Err(Error::msg(format!(
            "the trial balance does not balance: debits {debit}, credits {credit}"
        )));
    }
    Ok(())
}

fn verify_audit(kernel: &Kernel) -> Result<u64> {
    kernel
        .verify_audit()
        .map(|report| report.entries)
        .map_err(|e| kernel_error("verifying the audit chain", &e))
}

/// Posts `entries` entries spread over `year` from `clients` tasks; returns how long
/// it took. Task `t` posts sequence numbers `t, t + clients, …` of one shared
/// numbering, so the books are the same whatever the client count.
pub fn load(
    rt: &Runtime,
    books: &Books,
    entries: u64,
    clients: usize,
    year: i32,
) -> Result<Duration> {
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    rt.block_on(async {
        let mut tasks = JoinSet::new();
        for _ in 0..clients {
            let poster = books.poster(0, Dated::Over(year));
            let next = next.clone();
            tasks.spawn(async move {
                loop {
                    let seq = next.fetch_add(1, Ordering::Relaxed);
                    if seq >= entries {
                        return Ok::<(), Error>(());
                    }
                    crate::interrupt::check()?;
                    poster.post(seq).await?;
                }
            });
        }
        while let Some(joined) = tasks.join_next().await {
            joined.map_err(|e| Error::msg(format!("a loading task died: {e}")))??;
        }
        Ok::<(), Error>(())
    })?;
    Ok(started.elapsed())
}

/// Reads the trial balance of `from..=to` `runs` times; the latency of each read.
pub fn time_trial_balance(
    books: &Books,
    from: PeriodKey,
    to: PeriodKey,
    runs: usize,
) -> Result<(Latency, Vec<(String, TrialBalanceRow)>)> {
    let mut samples = Vec::with_capacity(runs);
    let mut last = Vec::new();
    for _ in 0..runs {
        let began = Instant::now();
        last = books.trial_balance(from, to)?;
        samples.push(began.elapsed());
    }
    Ok((load::latency_of(samples), last))
}
