//! Section `jobs`: durable job-queue throughput — the kernel's jobs against PostgreSQL
//! doing the same work the way pg-boss and graphile-worker do it.
//!
//! Each side runs two phases on a fresh queue: `--jobs` no-op jobs are enqueued from
//! `--job-enqueuers` concurrent tasks (each enqueue durable on its own: one kernel
//! command, one PostgreSQL `INSERT` commit), then `--job-workers` workers drain the
//! queue; a job is claimed in one durable commit and marked done in another, on both
//! sides. PostgreSQL drains twice, on a fresh table each time: with the explicit
//! transaction (`BEGIN; SELECT … FOR UPDATE SKIP LOCKED LIMIT 1; UPDATE; COMMIT`) and
//! with pg-boss's single-statement claim (`WITH next AS (SELECT … FOR UPDATE SKIP
//! LOCKED LIMIT 1) UPDATE … RETURNING`), which saves three round trips per job.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nexus_kernel::{
    JobContext, JobFuture, JobHandler, JobSpec, JobState, Kernel, Principal, SystemClock,
};
use nexus_store::Store;
use serde::Serialize;
use tokio::runtime::Runtime;
use tokio::task::JoinSet;
use tokio_postgres::Client as PgClient;

use crate::error::{Context, Error, Result};
use crate::interrupt;
use crate::load::{self, Latency};
use crate::machine::Disk;
use crate::pg::{self, Cluster};
use crate::writes::nexus::kernel_error;

/// Options of the `jobs` section.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// No-op jobs to enqueue and run on each side.
    #[arg(long = "jobs", default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub jobs: u64,

    /// Workers draining the queue (the appliance runs 2).
    #[arg(long = "job-workers", default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub workers: u64,

    /// Concurrent tasks enqueueing (one connection each on PostgreSQL).
    #[arg(long = "job-enqueuers", default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub enqueuers: u64,
}

/// The kind of the benchmark's no-op job.
const KIND: &str = "bench.noop";
/// How long a drain may take before the benchmark gives up.
const DRAIN_WITHIN: Duration = Duration::from_secs(900);

/// What the section measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub jobs: u64,
    pub workers: u64,
    pub enqueuers: u64,
    pub disk: Disk,
    pub postgres: pg::Server,
    pub nexus: Side,
    /// Claim in an explicit transaction: BEGIN; SELECT … FOR UPDATE SKIP LOCKED; UPDATE;
    /// COMMIT.
    pub postgres_explicit: Side,
    /// Claim in one statement, as pg-boss does.
    pub postgres_pgboss: Side,
    pub notes: Vec<String>,
}

/// One side's two phases.
#[derive(Debug, Clone, Serialize)]
pub struct Side {
    pub enqueue_s: f64,
    pub enqueued_per_s: f64,
    pub enqueue_latency: Latency,
    /// From starting the workers until the last job was recorded done.
    pub drain_s: f64,
    pub completed_per_s: f64,
    /// Durable commits per completed job during the drain (nexus: store commits; for
    /// PostgreSQL it is two by construction).
    pub commits_per_job: f64,
}

/// Runs the section: nexus, then PostgreSQL's two claim styles.
pub fn run(rt: &Runtime, args: &Args, dir: &Path, pg_bin: Option<&Path>) -> Result<Report> {
    let scratch = pg::scratch_dir(dir)?;
    let disk = Disk::of(scratch.path());
    eprintln!("jobs: nexus: enqueueing and draining {} jobs…", args.jobs);
    let nexus = nexus_side(rt, &scratch.path().join("nexus"), args)?;
    interrupt::check()?;
    eprintln!("jobs: starting a throwaway postgres cluster…");
    let cluster = Cluster::start(&scratch.path().join("pg"), pg_bin)?;
    let server = rt.block_on(cluster.server())?;
    eprintln!("jobs: postgres (explicit transaction claim)…");
    let postgres_explicit = rt.block_on(postgres_side(&cluster, args, Claim::Explicit))?;
    interrupt::check()?;
    eprintln!("jobs: postgres (pg-boss single-statement claim)…");
    let postgres_pgboss = rt.block_on(postgres_side(&cluster, args, Claim::PgBoss))?;
    drop(cluster);
    let scratch_path = scratch.path().to_path_buf();
    scratch
        .close()
        .context(|| format!("removing {}", scratch_path.display()))?;
    let report = Report {
        jobs: args.jobs,
        workers: args.workers,
        enqueuers: args.enqueuers,
        disk,
        postgres: server,
        nexus,
        postgres_explicit,
        postgres_pgboss,
        notes: notes(),
    };
    report.print();
    Ok(report)
}

/// How many of `total` jobs enqueuer `task` of `tasks` enqueues.
fn share(total: u64, tasks: u64, task: u64) -> u64 {
    total / tasks + u64::from(task < total % tasks)
}

// ---- nexus ------------------------------------------------------------------------

/// The no-op job: counts its runs and remembers the latest job ids it ran.
struct Noop {
    runs: Arc<AtomicU64>,
    recent: Arc<Mutex<VecDeque<u64>>>,
    keep: usize,
}

impl JobHandler for Noop {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn run(&self, ctx: JobContext) -> JobFuture<'_> {
        let id = ctx.job.id;
        Box::pin(async move {
            if let Ok(mut recent) = self.recent.lock() {
                recent.push_back(id);
                while recent.len() > self.keep {
                    recent.pop_front();
                }
            }
            self.runs.fetch_add(1, Ordering::Relaxed);
            Ok(serde_json::Value::Null)
        })
    }
}

fn nexus_side(rt: &Runtime, dir: &Path, args: &Args) -> Result<Side> {
    std::fs::create_dir(dir).context(|| format!("creating {}", dir.display()))?;
    let path = dir.join("nexus.redb");
    nexus_kernel::registry::install(&[&nexus_crm::CRM, &nexus_ledger::entities::LEDGER])
        .map_err(|e| crate::error::Error::msg(format!("installing the modules: {e}")))?;
    let store = Store::open(&path).context(|| format!("opening the store {}", path.display()))?;
    let kernel = Kernel::new(store, Arc::new(SystemClock));
    let side = rt.block_on(nexus_phases(&kernel, args));
    // Closing the store joins its writer thread: outside the runtime.
    drop(kernel);
    let side = side?;
    std::fs::remove_dir_all(dir).context(|| format!("removing {}", dir.display()))?;
    Ok(side)
}

async fn nexus_phases(kernel: &Kernel, args: &Args) -> Result<Side> {
    let company = kernel
        .create_company("Bench Co", "CHF")
        .await
        .map_err(|e| kernel_error("creating the company", &e))?;
    let who = Principal::system(company);
    let runs = Arc::new(AtomicU64::new(0));
    let recent = Arc::new(Mutex::new(VecDeque::new()));
    let keep = usize::try_from(args.workers * 2).unwrap_or(usize::MAX);
    kernel
        .register_job(Arc::new(Noop {
            runs: runs.clone(),
            recent: recent.clone(),
            keep,
        }))
        .map_err(|e| kernel_error("registering the no-op job", &e))?;

    // Enqueue, with no worker running.
    let began = Instant::now();
    let mut tasks = JoinSet::new();
    for task in 0..args.enqueuers {
        let (kernel, who) = (kernel.clone(), who.clone());
        let n = share(args.jobs, args.enqueuers, task);
        tasks.spawn(async move {
            let mut samples = Vec::with_capacity(usize::try_from(n).unwrap_or(0));
            for i in 0..n {
                let at = Instant::now();
                kernel
                    .enqueue(
                        &who,
                        JobSpec::new(KIND, format!("no-op {task}.{i}"), serde_json::Value::Null),
                    )
                    .await
                    .map_err(|e| kernel_error(&format!("enqueuer {task}: enqueue #{i}"), &e))?;
                samples.push(at.elapsed());
            }
            Ok::<_, Error>(samples)
        });
    }
    let samples = join_all(tasks).await?;
    let enqueue_s = began.elapsed().as_secs_f64();
    interrupt::check()?;

    // Drain.
    let before = kernel.writer_stats();
    let began = Instant::now();
    let workers = nexus_kernel::jobs::start(kernel, usize::try_from(args.workers).unwrap_or(2))
        .await
        .map_err(|e| kernel_error("starting the job workers", &e))?;
    let drained = wait_drained(kernel, &who, &runs, &recent, args.jobs, began).await;
    let drain_s = began.elapsed().as_secs_f64();
    let after = kernel.writer_stats();
    for w in &workers {
        w.abort();
    }
    for w in workers {
        let _ = w.await;
    }
    drained?;
    check_done(kernel, &who, args.jobs, runs.load(Ordering::Relaxed))?;
    let commits = after.commits.saturating_sub(before.commits);
    Ok(Side {
        enqueue_s,
        enqueued_per_s: per_s(args.jobs, enqueue_s),
        enqueue_latency: load::latency_of(samples),
        drain_s,
        completed_per_s: per_s(args.jobs, drain_s),
        commits_per_job: commits as f64 / args.jobs as f64,
    })
}

/// Waits until the handler has run `jobs` times and the jobs it ran last (the only
/// ones that can still be finishing) are recorded done.
async fn wait_drained(
    kernel: &Kernel,
    who: &Principal,
    runs: &AtomicU64,
    recent: &Mutex<VecDeque<u64>>,
    jobs: u64,
    began: Instant,
) -> Result<()> {
    let timed_out = || {
        Error::msg(format!(
            "the nexus workers ran {} of {jobs} jobs in {} s",
            runs.load(Ordering::Relaxed),
            DRAIN_WITHIN.as_secs()
        ))
    };
    while runs.load(Ordering::Relaxed) < jobs {
        if began.elapsed() > DRAIN_WITHIN {
            return Err(timed_out());
        }
        interrupt::check()?;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let last: Vec<u64> = recent
        .lock()
        .map(|r| r.iter().copied().collect())
        .map_err(|_| Error::msg("the no-op job's list of recent ids is poisoned"))?;
    for id in last {
        loop {
            let job = kernel
                .job(who, id)
                .map_err(|e| kernel_error(&format!("reading job {id}"), &e))?;
            if job.state == JobState::Done {
                break;
            }
            if job.state.finished() {
                return Err(Error::msg(format!("job {id} ended {:?}", job.state)));
            }
            if began.elapsed() > DRAIN_WITHIN {
                return Err(timed_out());
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    Ok(())
}

/// Every job of the benchmark's kind must be done, after exactly one attempt, and the
/// handler must have run once per job.
fn check_done(kernel: &Kernel, who: &Principal, jobs: u64, runs: u64) -> Result<()> {
    let limit = usize::try_from(jobs)
        .unwrap_or(usize::MAX)
        .saturating_add(100);
    let all = kernel
        .jobs(who, limit)
        .map_err(|e| kernel_error("listing the jobs", &e))?;
    let ours: Vec<_> = all.iter().filter(|j| j.kind == KIND).collect();
    let done = ours
        .iter()
        .filter(|j| j.state == JobState::Done && j.attempts == 1)
        .count() as u64;
    if ours.len() as u64 != jobs || done != jobs || runs != jobs {
        let other = ours.iter().find(|j| j.state != JobState::Done);
        return Err(Error::msg(format!(
            "nexus: {} jobs of {jobs} are stored, {done} done after one attempt, the handler \
             ran {runs} times{}",
            ours.len(),
            other.map_or(String::new(), |j| format!(
                "; job {} is {:?} after {} attempts ({})",
                j.id,
                j.state,
                j.attempts,
                j.error.as_deref().unwrap_or("no error")
            ))
        )));
    }
    Ok(())
}

async fn join_all(mut tasks: JoinSet<Result<Vec<Duration>>>) -> Result<Vec<Duration>> {
    let mut samples = Vec::new();
    let mut failure = None;
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(mut s)) => samples.append(&mut s),
            Ok(Err(e)) => {
                failure.get_or_insert(e);
            }
            Err(e) => {
                failure.get_or_insert(Error::msg(format!("a task died: {e}")));
            }
        }
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(samples),
    }
}

fn per_s(n: u64, secs: f64) -> f64 {
    if secs > 0.0 { n as f64 / secs } else { 0.0 }
}

// ---- PostgreSQL ---------------------------------------------------------------------

/// A fresh queue table: what pg-boss and graphile-worker keep per job, and the partial
/// index their claim query runs on.
const SCHEMA: &str = "
DROP TABLE IF EXISTS jobs;
CREATE TABLE jobs (
    id bigserial PRIMARY KEY,
    kind text NOT NULL,
    title text NOT NULL,
    state text NOT NULL DEFAULT 'queued',
    payload jsonb,
    attempts int NOT NULL DEFAULT 0,
    run_after timestamptz NOT NULL DEFAULT now(),
    created timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX jobs_queued ON jobs (id) WHERE state = 'queued';
";

const ENQUEUE: &str = "INSERT INTO jobs (kind, title, payload) VALUES ($1, $2, 'null'::jsonb)";
const SELECT_NEXT: &str = "SELECT id FROM jobs WHERE state = 'queued' AND run_after <= now() \
    ORDER BY id FOR UPDATE SKIP LOCKED LIMIT 1";
const MARK_RUNNING: &str =
    "UPDATE jobs SET state = 'running', attempts = attempts + 1 WHERE id = $1";
const CLAIM_PGBOSS: &str = "WITH next AS (SELECT id FROM jobs WHERE state = 'queued' \
    AND run_after <= now() ORDER BY id FOR UPDATE SKIP LOCKED LIMIT 1) \
    UPDATE jobs j SET state = 'running', attempts = j.attempts + 1 FROM next \
    WHERE j.id = next.id RETURNING j.id";
const MARK_DONE: &str = "UPDATE jobs SET state = 'done' WHERE id = $1";

/// How a PostgreSQL worker claims a job.
#[derive(Debug, Clone, Copy)]
enum Claim {
    /// `BEGIN; SELECT … FOR UPDATE SKIP LOCKED LIMIT 1; UPDATE …; COMMIT` (four round
    /// trips).
    Explicit,
    /// One statement (pg-boss's fetch).
    PgBoss,
}

async fn postgres_side(cluster: &Cluster, args: &Args, claim: Claim) -> Result<Side> {
    let admin = cluster.connect().await?;
    admin
        .batch_execute(SCHEMA)
        .await
        .context(|| "creating the jobs table")?;
    admin
        .batch_execute("CHECKPOINT")
        .await
        .context(|| "checkpointing")?;

    // Enqueue, with no worker running.
    let mut clients = Vec::new();
    for _ in 0..args.enqueuers {
        clients.push(cluster.connect().await?);
    }
    let began = Instant::now();
    let mut tasks = JoinSet::new();
    for (task, client) in (0u64..).zip(clients) {
        let n = share(args.jobs, args.enqueuers, task);
        tasks.spawn(async move {
            let insert = client
                .prepare(ENQUEUE)
                .await
                .context(|| format!("preparing {ENQUEUE}"))?;
            let mut samples = Vec::with_capacity(usize::try_from(n).unwrap_or(0));
            for i in 0..n {
                let at = Instant::now();
                let title = format!("no-op {task}.{i}");
                client
                    .execute(&insert, &[&KIND, &title])
                    .await
                    .context(|| format!("enqueuer {task}: insert #{i}"))?;
                samples.push(at.elapsed());
            }
            Ok::<_, Error>(samples)
        });
    }
    let samples = join_all(tasks).await?;
    let enqueue_s = began.elapsed().as_secs_f64();
    interrupt::check()?;

    // Drain.
    let mut workers = Vec::new();
    for _ in 0..args.workers {
        workers.push(cluster.connect().await?);
    }
    let completed = Arc::new(AtomicU64::new(0));
    let began = Instant::now();
    let mut tasks = JoinSet::new();
    for (task, client) in (0u64..).zip(workers) {
        let completed = completed.clone();
        tasks.spawn(async move { pg_worker(client, claim, task, &completed).await });
    }
    let mut failure = None;
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                failure.get_or_insert(e);
            }
            Err(e) => {
                failure.get_or_insert(Error::msg(format!("a worker died: {e}")));
            }
        }
    }
    let drain_s = began.elapsed().as_secs_f64();
    if let Some(e) = failure {
        return Err(e);
    }
    check_pg_done(&admin, args.jobs, completed.load(Ordering::Relaxed)).await?;
    Ok(Side {
        enqueue_s,
        enqueued_per_s: per_s(args.jobs, enqueue_s),
        enqueue_latency: load::latency_of(samples),
        drain_s,
        completed_per_s: per_s(args.jobs, drain_s),
        commits_per_job: 2.0,
    })
}

/// Claims and finishes jobs until the queue is empty (nothing is enqueued while the
/// workers run, so an empty claim means the work is done or held by another worker).
async fn pg_worker(
    mut client: PgClient,
    claim: Claim,
    task: u64,
    completed: &AtomicU64,
) -> Result<()> {
    let what = |step: &str| format!("worker {task}: {step}");
    let select = client
        .prepare(SELECT_NEXT)
        .await
        .context(|| what("preparing the claim"))?;
    let running = client
        .prepare(MARK_RUNNING)
        .await
        .context(|| what("preparing the claim"))?;
    let pgboss = client
        .prepare(CLAIM_PGBOSS)
        .await
        .context(|| what("preparing the claim"))?;
    let done = client
        .prepare(MARK_DONE)
        .await
        .context(|| what("preparing the finish"))?;
    loop {
        if interrupt::requested() {
            return Err(Error::msg("interrupted"));
        }
        let id: Option<i64> = match claim {
            Claim::Explicit => {
                let tx = client.transaction().await.context(|| what("BEGIN"))?;
                let row = tx
                    .query_opt(&select, &[])
                    .await
                    .context(|| what("selecting the next job"))?;
                let id = match row {
                    Some(row) => {
                        let id: i64 = row.try_get(0).context(|| what("reading the job id"))?;
                        tx.execute(&running, &[&id])
                            .await
                            .context(|| what("marking the job running"))?;
                        Some(id)
                    }
                    None => None,
                };
                tx.commit().await.context(|| what("COMMIT"))?;
                id
            }
            Claim::PgBoss => client
                .query_opt(&pgboss, &[])
                .await
                .context(|| what("claiming the next job"))?
                .map(|row| row.try_get(0))
                .transpose()
                .context(|| what("reading the job id"))?,
        };
        let Some(id) = id else {
            return Ok(());
        };
        // The no-op job body runs here.
        client
            .execute(&done, &[&id])
            .await
            .context(|| what("marking the job done"))?;
        completed.fetch_add(1, Ordering::Relaxed);
    }
}

async fn check_pg_done(admin: &PgClient, jobs: u64, completed: u64) -> Result<()> {
    let row = admin
        .query_one(
            "SELECT count(*), count(*) FILTER (WHERE state = 'done' AND attempts = 1) FROM jobs",
            &[],
        )
        .await
        .context(|| "counting the jobs")?;
    let total: i64 = row.try_get(0).context(|| "counting the jobs")?;
    let done: i64 = row.try_get(1).context(|| "counting the jobs")?;
    let want = i64::try_from(jobs).unwrap_or(i64::MAX);
    if total != want || done != want || completed != jobs {
        return Err(Error::msg(format!(
            "postgres: {total} jobs of {jobs} are stored, {done} done after one attempt, the \
             workers finished {completed}"
        )));
    }
    Ok(())
}

// ---- report -------------------------------------------------------------------------

fn notes() -> Vec<String> {
    vec![
        "Both sides: enqueue first (no worker running), each enqueue its own durable commit \
         from concurrent tasks; then the workers drain the queue, a no-op job claimed in one \
         durable commit and recorded done in another. Completed/s is jobs over the time from \
         starting the workers until the last job was recorded done."
            .to_string(),
        "nexus: Kernel::enqueue (a store command: the job, its queue entry, the id counter; \
         group commit batches concurrent enqueues) and nexus_kernel::jobs::start workers \
         (a busy worker records how a job ended and claims the next in one store command, \
         so it pays one commit per job, and the two workers share fsyncs; each attempt runs \
         on its own task with a timeout). Jobs are kept apart from the event log, without audit entries."
            .to_string(),
        "postgres: table jobs (bigserial id, kind, title, state, jsonb payload, attempts, \
         run_after, created) with a partial index on id WHERE state = 'queued'; enqueue = \
         INSERT (autocommit, synchronous_commit=on); one connection per enqueuer and per \
         worker over a unix socket, prepared statements. 'explicit' claims with BEGIN; \
         SELECT … FOR UPDATE SKIP LOCKED LIMIT 1; UPDATE … state='running', \
         attempts+1; COMMIT; 'pg-boss' claims with one WITH … UPDATE … RETURNING statement. \
         The finish is UPDATE … state='done' (autocommit) in both."
            .to_string(),
        "nexus runs in-process; postgres pays client/server round trips over a unix socket. \
         Both write to the same filesystem, one after the other."
            .to_string(),
    ]
}

impl Report {
    pub fn print(&self) {
        println!();
        println!(
            "== jobs: durable job queue, {} no-op jobs, {} workers, {} enqueuing tasks ==",
            self.jobs, self.workers, self.enqueuers
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
            "{:<28} | {:>10} | {:>19} | {:>11} | {:>8} | {:>11}",
            "side", "enqueue/s", "enqueue p50/p99 ms", "completed/s", "drain s", "commits/job"
        );
        println!(
            "{:-<28}-+-{:->10}-+-{:->19}-+-{:->11}-+-{:->8}-+-{:->11}",
            "", "", "", "", "", ""
        );
        for (name, side) in [
            ("nexus (kernel jobs)", &self.nexus),
            ("postgres, explicit claim tx", &self.postgres_explicit),
            ("postgres, pg-boss claim", &self.postgres_pgboss),
        ] {
            println!(
                "{:<28} | {:>10.0} | {:>19} | {:>11.0} | {:>8.2} | {:>11.2}",
                name,
                side.enqueued_per_s,
                format!(
                    "{:.2} / {:.2}",
                    side.enqueue_latency.p50_ms, side.enqueue_latency.p99_ms
                ),
                side.completed_per_s,
                side.drain_s,
                side.commits_per_job
            );
        }
        println!();
        for (name, pg) in [
            ("explicit claim tx", &self.postgres_explicit),
            ("pg-boss claim", &self.postgres_pgboss),
        ] {
            println!(
                "ratio nexus / postgres ({name}): enqueue {:.2}x, completed {:.2}x",
                ratio(self.nexus.enqueued_per_s, pg.enqueued_per_s),
                ratio(self.nexus.completed_per_s, pg.completed_per_s)
            );
        }
        println!();
        println!("notes:");
        for note in &self.notes {
            println!("  * {note}");
        }
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { f64::INFINITY }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up() {
        for (total, tasks) in [(20_000, 8), (7, 3), (1, 8), (5, 5)] {
            let sum: u64 = (0..tasks).map(|t| share(total, tasks, t)).sum();
            assert_eq!(sum, total);
        }
    }
}
