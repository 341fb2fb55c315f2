//! Durable jobs and schedules (what BullMQ and cron did).
//!
//! * A job is **enqueued inside a command** ([`crate::Command::enqueue`]) — with the
//!   change that asks for it, atomically — or on its own ([`Kernel::enqueue`]).
//! * It **runs outside the writer**, on a pool of workers ([`start`]), as the user who
//!   asked for it (permissions are read again when it runs), through the
//!   [`JobHandler`] registered for its kind.
//! * It **reports progress** ([`JobContext::progress`]), can be **cancelled**
//!   ([`Kernel::cancel_job`]), and is limited in time ([`JobHandler::timeout`]).
//! * A failed attempt (an error, a panic, a timeout) is **retried with backoff** up to
//!   its `max_attempts`; then it lands in the failed list with its error.
//!   [`JobError::Fail`] fails it at once (its record is gone, say).
//! * It **survives a restart**: a job that was running when the appliance stopped is
//!   queued again (job bodies are idempotent), anything queued stays queued.
//! * **Schedules** ([`Schedule`]) enqueue a job every so often; an administrator edits
//!   their interval and turns them on or off.
//!
//! Jobs live in `Table::Jobs`, apart from the event log: they are the appliance's
//! work list, like sessions, not business state. What a job changes in the books goes
//! through commands like everything else, with its events.
//!
//! Keys: `j | id` → job; `q | run after (ms) | id` → empty while queued; `s | name` →
//! schedule; `n` → the last job id.

use std::collections::BTreeMap;
use std::future::Future;
use std::ops::ControlFlow;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nexus_store::{Table, Txn, decode_u64, prefix_end, u64_key};
use serde::{Deserialize, Serialize};

use crate::Kernel;
use crate::error::KernelError;
use crate::perm::Principal;
use crate::record::unix_ms;

/// What a job is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Queued,
    Running,
    Done,
    Failed,
    Cancelled,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    /// Whether the job will not change any more.
    pub fn finished(self) -> bool {
        matches!(
            self,
            JobState::Done | JobState::Failed | JobState::Cancelled
        )
    }
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub id: u64,
    pub company: u64,
    /// Who asked for it (0: the system, for scheduled jobs).
    pub user: u64,
    /// The handler that runs it, `module.job` (e.g. `web.export_csv`).
    pub kind: String,
    /// What a person reads in the job lists ("Export customers as CSV").
    pub title: String,
    pub payload: serde_json::Value,
    pub state: JobState,
    /// Attempts started so far.
    pub attempts: u32,
    pub max_attempts: u32,
    /// Not run before this time (Unix ms): the backoff after a failed attempt.
    pub run_after_ms: i64,
    pub created_ms: i64,
    pub updated_ms: i64,
    /// Work done of the total, as the handler last reported it.
    pub progress: Option<(u64, u64)>,
    /// The last attempt's error.
    pub error: Option<String>,
    /// What the handler returned (e.g. the file it wrote).
    pub result: Option<serde_json::Value>,
    /// The run of the appliance that runs it now (while `Running`).
    pub boot: Option<u64>,
    /// A cancel was asked for while it ran.
    pub cancel_requested: bool,
}

/// A job to enqueue.
#[derive(Debug, Clone)]
pub struct JobSpec {
    pub kind: &'static str,
    pub title: String,
    pub payload: serde_json::Value,
    pub max_attempts: u32,
    /// For a job that takes data out of the box: what it exports (an entity name) and
    /// how (format, query), written as an `export` entry of the log with the job.
    pub export: Option<(String, serde_json::Value)>,
}

impl JobSpec {
    pub fn new(kind: &'static str, title: impl Into<String>, payload: serde_json::Value) -> Self {
        JobSpec {
            kind,
            title: title.into(),
            payload,
            max_attempts: 3,
            export: None,
        }
    }
}

/// Why an attempt did not finish.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    /// Worth another attempt (after a backoff), while attempts remain.
    #[error("{0}")]
    Retry(String),
    /// Will never work (its record was deleted, its input is bad): failed at once.
    #[error("{0}")]
    Fail(String),
    /// The job saw that it was cancelled and stopped.
    #[error("cancelled")]
    Cancelled,
}

impl From<KernelError> for JobError {
    fn from(e: KernelError) -> Self {
        match e {
            KernelError::Store(_) | KernelError::Internal(_) => JobError::Retry(e.to_string()),
            other => JobError::Fail(other.to_string()),
        }
    }
}

/// A boxed future, as [`JobHandler::run`] returns it.
pub type JobFuture<'a> =
    Pin<Box<dyn Future<Output = Result<serde_json::Value, JobError>> + Send + 'a>>;

/// Runs the jobs of one kind. Bodies must be idempotent: an attempt cut short by a
/// restart runs again from the start.
pub trait JobHandler: Send + Sync + 'static {
    fn kind(&self) -> &'static str;

    /// The longest one attempt may run; then it is stopped and counts as failed.
    fn timeout(&self) -> Duration {
        Duration::from_secs(600)
    }

    fn run(&self, ctx: JobContext) -> JobFuture<'_>;
}

/// What a running job sees.
pub struct JobContext {
    pub kernel: Kernel,
    pub job: Job,
    /// The user who asked for it, as they are now.
    pub who: Principal,
    cancel: Arc<AtomicBool>,
    last_progress: Mutex<Option<Instant>>,
}

impl JobContext {
    /// Whether a cancel was asked for: a long body checks between steps and returns
    /// [`JobError::Cancelled`].
    pub fn is_cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    /// Reports `done` of `total`. Written at most every 200 ms (and always at the
    /// end), so a tight loop may call it freely.
    pub async fn progress(&self, done: u64, total: u64) -> Result<(), JobError> {
        if self.is_cancelled() {
            return Err(JobError::Cancelled);
        }
        let due = {
            let mut last = self
                .last_progress
                .lock()
                .map_err(|_| JobError::Retry("progress lock".into()))?;
            let due = done >= total || last.is_none_or(|t| t.elapsed() >= PROGRESS_EVERY);
            if due {
                *last = Some(Instant::now());
            }
            due
        };
        if due {
            let id = self.job.id;
            self.kernel
                .update_job(id, move |job, _| {
                    if job.state == JobState::Running {
                        job.progress = Some((done, total));
                    }
                })
                .await?;
        }
        Ok(())
    }
}

const PROGRESS_EVERY: Duration = Duration::from_millis(200);
/// The pause before the second attempt; it doubles per attempt up to [`MAX_BACKOFF_MS`].
const FIRST_BACKOFF_MS: i64 = 2_000;
const MAX_BACKOFF_MS: i64 = 10 * 60 * 1000;
/// How often an idle worker looks for due work (also woken at once by an enqueue).
const IDLE_POLL: Duration = Duration::from_millis(250);

/// A recurring job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    pub name: String,
    pub kind: String,
    pub title: String,
    pub every_secs: u64,
    pub enabled: bool,
    pub next_run_ms: i64,
}

/// The shortest and longest interval a schedule may have.
pub const SCHEDULE_MIN_SECS: u64 = 60;
pub const SCHEDULE_MAX_SECS: u64 = 31 * 24 * 3600;

/// The entity name of a schedule change in the event log (schedules are the box's,
/// not records: the event names the schedule in its images, with record 0).
pub const SCHEDULE_ENTITY: &str = "schedule";

/// A schedule's settings as an event image.
fn schedule_image(s: &Schedule) -> crate::event::Image {
    let mut image = crate::event::Image::new();
    image.insert("name".into(), s.name.clone().into());
    image.insert("kind".into(), s.kind.clone().into());
    image.insert("every_secs".into(), s.every_secs.into());
    image.insert("enabled".into(), s.enabled.into());
    image
}

/// A recurring job as declared: its name, job kind, title and interval in seconds.
pub type ScheduleDef = (&'static str, &'static str, &'static str, u64);

/// Built-in schedules, created on first start (an administrator may change them).
const DEFAULT_SCHEDULES: &[ScheduleDef] = &[
    (
        "prune-idempotency-keys",
        PRUNE_IDEMPOTENCY,
        "Forget idempotency keys older than a day",
        3600,
    ),
    (
        "prune-finished-jobs",
        PRUNE_JOBS,
        "Forget finished jobs older than 30 days",
        24 * 3600,
    ),
    (
        "sweep-documents",
        SWEEP_DOCUMENTS,
        "Remove the files of deleted documents",
        24 * 3600,
    ),
];

pub const PRUNE_IDEMPOTENCY: &str = "kernel.prune_idempotency";
/// Removes the documents' files that nothing names any more; its handler is the
/// server's, which owns the files (a schedule without a handler never runs).
pub const SWEEP_DOCUMENTS: &str = "kernel.sweep_documents";
pub const PRUNE_JOBS: &str = "kernel.prune_jobs";
/// How long finished jobs are kept.
const KEEP_FINISHED_MS: i64 = 30 * 24 * 3600 * 1000;

fn job_key(id: u64) -> Vec<u8> {
    let mut k = vec![b'j'];
    k.extend_from_slice(&u64_key(id));
    k
}

/// Unix ms as an order-preserving key (times before 1970 sort first).
fn time_key(ms: i64) -> [u8; 8] {
    u64_key((ms as u64) ^ (1 << 63))
}

fn queue_key(run_after_ms: i64, id: u64) -> Vec<u8> {
    let mut k = vec![b'q'];
    k.extend_from_slice(&time_key(run_after_ms));
    k.extend_from_slice(&u64_key(id));
    k
}

fn schedule_key(name: &str) -> Vec<u8> {
    let mut k = vec![b's'];
    k.extend_from_slice(name.as_bytes());
    k
}

fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>, KernelError> {
    let mut out = Vec::new();
    ciborium::into_writer(v, &mut out)
        .map_err(|e| KernelError::Internal(format!("encoding a job: {e}")))?;
    Ok(out)
}

fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, KernelError> {
    ciborium::from_reader(bytes)
        .map_err(|e| KernelError::Internal(format!("a job is damaged: {e}")))
}

fn backoff_ms(attempts: u32) -> i64 {
    let shift = attempts.saturating_sub(1).min(20);
    (FIRST_BACKOFF_MS << shift).min(MAX_BACKOFF_MS)
}

/// Writes a new queued job in `txn`; returns its id.
pub(crate) fn enqueue_in(
    txn: &mut Txn<'_, '_>,
    who: &Principal,
    spec: JobSpec,
    now_ms: i64,
) -> Result<u64, KernelError> {
    let last = txn
        .get(Table::Jobs, b"n")?
        .and_then(|b| decode_u64(&b))
        .unwrap_or(0);
    let id = last + 1;
    txn.put(Table::Jobs, b"n".to_vec(), u64_key(id).to_vec());
    if let Some((what, how)) = &spec.export {
        crate::event::append(txn, crate::auth::export_event(who, what, how, now_ms))?;
    }
    let job = Job {
        id,
        company: who.company,
        user: who.user_id,
        kind: spec.kind.to_owned(),
        title: spec.title,
        payload: spec.payload,
        state: JobState::Queued,
        attempts: 0,
        max_attempts: spec.max_attempts.clamp(1, 100),
        run_after_ms: now_ms,
        created_ms: now_ms,
        updated_ms: now_ms,
        progress: None,
        error: None,
        result: None,
        boot: None,
        cancel_requested: false,
    };
    txn.put(Table::Jobs, job_key(id), encode(&job)?);
    txn.put(Table::Jobs, queue_key(now_ms, id), Vec::new());
    Ok(id)
}

/// In-memory side of the jobs: handlers, the cancel flags of running jobs, the bell
/// that wakes idle workers.
#[derive(Default)]
pub(crate) struct JobRuntime {
    handlers: Mutex<BTreeMap<&'static str, Arc<dyn JobHandler>>>,
    running: Mutex<BTreeMap<u64, Arc<AtomicBool>>>,
    pub(crate) bell: tokio::sync::Notify,
}

impl Kernel {
    /// Registers the handler for its kind (at boot, before [`start`]). A second
    /// handler for one kind is refused.
    pub fn register_job(&self, handler: Arc<dyn JobHandler>) -> Result<(), KernelError> {
        let mut handlers = self
            .jobs_runtime()
            .handlers
            .lock()
            .map_err(|_| KernelError::Internal("job handlers lock".into()))?;
        let kind = handler.kind();
        if handlers.contains_key(kind) {
            return Err(KernelError::Internal(format!(
                "two handlers for the job kind {kind}"
            )));
        }
        handlers.insert(kind, handler);
        Ok(())
    }

    /// Enqueues a job on its own (not with a change of state).
    pub async fn enqueue(&self, who: &Principal, spec: JobSpec) -> Result<u64, KernelError> {
        let who = who.clone();
        let clock = self.shared_clock();
        let id = self
            .store()
            .write(move |txn| enqueue_in(txn, &who, spec, unix_ms(clock.now())))
            .await?;
        self.jobs_runtime().bell.notify_waiters();
        Ok(id)
    }

    /// Job `id` if `who` may see it: their own, or any of their company's for an
    /// administrator. Another company's job is "not found".
    pub fn job(&self, who: &Principal, id: u64) -> Result<Job, KernelError> {
        let read = self.store().read()?;
        let job: Job = match read.get(Table::Jobs, &job_key(id))? {
            Some(b) => decode(&b)?,
            None => return Err(KernelError::NotFound(format!("job {id}"))),
        };
        if job.company != who.company || (job.user != who.user_id && !who.is_admin()) {
            return Err(KernelError::NotFound(format!("job {id}")));
        }
        Ok(job)
    }

    /// The newest jobs `who` may see (all of the company's for an administrator),
    /// newest first, at most `limit`.
    pub fn jobs(&self, who: &Principal, limit: usize) -> Result<Vec<Job>, KernelError> {
        let read = self.store().read()?;
        let start = job_key(0);
        let end = prefix_end(b"j").unwrap_or_default();
        let mut out = Vec::new();
        let mut err = None;
        read.scan(
            Table::Jobs,
            start.as_slice()..end.as_slice(),
            true,
            |_, v| {
                match decode::<Job>(v) {
                    Ok(j)
                        if j.company == who.company
                            && (who.is_admin() || j.user == who.user_id) =>
                    {
                        out.push(j)
                    }
                    Ok(_) => {}
                    Err(e) => {
                        err = Some(e);
                        return ControlFlow::Break(());
                    }
                }
                if out.len() >= limit {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            },
        )?;
        match err {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    /// Cancels job `id`: a queued job at once, a running one as soon as it looks. A
    /// finished job stays as it is (refused with a message).
    pub async fn cancel_job(&self, who: &Principal, id: u64) -> Result<Job, KernelError> {
        self.job(who, id)?;
        let job = self
            .update_job(id, |job, _| match job.state {
                JobState::Queued => {
                    job.state = JobState::Cancelled;
                    job.error = Some("cancelled before it ran".into());
                }
                JobState::Running => job.cancel_requested = true,
                _ => {}
            })
            .await?;
        if job.state.finished() && job.state != JobState::Cancelled {
            return Err(KernelError::Conflict(format!(
                "job {id} has already {}",
                if job.state == JobState::Done {
                    "finished"
                } else {
                    "failed"
                }
            )));
        }
        if let Ok(running) = self.jobs_runtime().running.lock()
            && let Some(flag) = running.get(&id)
        {
            flag.store(true, Ordering::Relaxed);
        }
        Ok(job)
    }

    /// Reads job `id`, lets `change` edit it, writes it back with its queue entry
    /// kept in step; returns the new job.
    pub(crate) async fn update_job(
        &self,
        id: u64,
        change: impl FnOnce(&mut Job, i64) + Send + 'static,
    ) -> Result<Job, KernelError> {
        let clock = self.shared_clock();
        self.store()
            .write(move |txn| {
                let now = unix_ms(clock.now());
                let mut job: Job = match txn.get(Table::Jobs, &job_key(id))? {
                    Some(b) => decode(&b)?,
                    None => return Err(KernelError::NotFound(format!("job {id}"))),
                };
                let before = (job.state, job.run_after_ms);
                change(&mut job, now);
                if before.0 == JobState::Queued {
                    txn.delete(Table::Jobs, queue_key(before.1, id));
                }
                if job.state == JobState::Queued {
                    txn.put(Table::Jobs, queue_key(job.run_after_ms, id), Vec::new());
                }
                job.updated_ms = now;
                txn.put(Table::Jobs, job_key(id), encode(&job)?);
                Ok(job)
            })
            .await
    }

    /// Takes the first due queued job and marks it running for this run.
    pub(crate) async fn claim_job(&self) -> Result<Option<Job>, KernelError> {
        let clock = self.shared_clock();
        let boot = self.boot_id();
        self.store()
            .write(move |txn| claim_in(txn, unix_ms(clock.now()), boot))
            .await
    }

    /// Records how job `id` ended and takes the next due job, in one store command:
    /// a busy worker costs one commit per job.
    async fn finish_and_claim(
        &self,
        id: u64,
        outcome: Outcome,
    ) -> Result<Option<Job>, KernelError> {
        let clock = self.shared_clock();
        let boot = self.boot_id();
        self.store()
            .write(move |txn| {
                let now = unix_ms(clock.now());
                finish_in(txn, id, outcome, now, boot)?;
                claim_in(txn, now, boot)
            })
            .await
    }

    /// Queues again every job left running by an earlier run of the appliance.
    pub(crate) async fn requeue_interrupted(&self) -> Result<usize, KernelError> {
        let boot = self.boot_id();
        let read = self.store().read()?;
        let mut stale = Vec::new();
        let end = prefix_end(b"j").unwrap_or_default();
        read.scan(
            Table::Jobs,
            job_key(0).as_slice()..end.as_slice(),
            false,
            |_, v| {
                if let Ok(j) = decode::<Job>(v)
                    && j.state == JobState::Running
                    && j.boot != Some(boot)
                {
                    stale.push(j.id);
                }
                ControlFlow::Continue(())
            },
        )?;
        for id in &stale {
            self.update_job(*id, move |job, now| {
                if job.state == JobState::Running && job.boot != Some(boot) {
                    job.state = JobState::Queued;
                    job.boot = None;
                    job.run_after_ms = now;
                    job.error = Some("the appliance stopped while it ran; run again".into());
                }
            })
            .await?;
        }
        Ok(stale.len())
    }

    fn handler(&self, kind: &str) -> Option<Arc<dyn JobHandler>> {
        self.jobs_runtime()
            .handlers
            .lock()
            .ok()
            .and_then(|h| h.get(kind).cloned())
    }

    /// Runs one claimed job's body (or finds why it cannot run).
    async fn execute(&self, job: &Job) -> Outcome {
        match self.handler(&job.kind) {
            None => Err(JobError::Fail(format!(
                "this version of the appliance has no handler for jobs of kind {}",
                job.kind
            ))),
            Some(handler) => match self.job_principal(job) {
                Err(e) => Err(JobError::Fail(format!(
                    "the user who asked for it cannot act any more: {e}"
                ))),
                Ok(who) => self.attempt(handler, job.clone(), who).await,
            },
        }
    }

    /// One attempt: the body on its own task (a panic is an error, not a crash),
    /// limited by the handler's timeout.
    async fn attempt(
        &self,
        handler: Arc<dyn JobHandler>,
        job: Job,
        who: Principal,
    ) -> Result<serde_json::Value, JobError> {
        let id = job.id;
        let cancel = Arc::new(AtomicBool::new(job.cancel_requested));
        if let Ok(mut running) = self.jobs_runtime().running.lock() {
            running.insert(id, cancel.clone());
        }
        let timeout = handler.timeout();
        let ctx = JobContext {
            kernel: self.clone(),
            job,
            who,
            cancel,
            last_progress: Mutex::new(None),
        };
        let task = tokio::spawn(async move { handler.run(ctx).await });
        let abort = task.abort_handle();
        let out = match tokio::time::timeout(timeout, task).await {
            Ok(Ok(result)) => result,
            Ok(Err(join)) if join.is_panic() => Err(JobError::Retry(
                "the job stopped with an internal error (a panic)".into(),
            )),
            Ok(Err(_)) => Err(JobError::Retry("the job was stopped".into())),
            Err(_) => {
                abort.abort();
                Err(JobError::Retry(format!(
                    "the job did not finish within {} s and was stopped",
                    timeout.as_secs()
                )))
            }
        };
        if let Ok(mut running) = self.jobs_runtime().running.lock() {
            running.remove(&id);
        }
        out
    }

    fn job_principal(&self, job: &Job) -> Result<Principal, KernelError> {
        if job.user == 0 {
            return Ok(Principal::system(job.company));
        }
        self.principal_of(job.company, job.user)
    }

    /// The schedules, by name.
    pub fn schedules(&self) -> Result<Vec<Schedule>, KernelError> {
        let read = self.store().read()?;
        let end = prefix_end(b"s").unwrap_or_default();
        let mut out = Vec::new();
        let mut err = None;
        read.scan(
            Table::Jobs,
            b"s".as_slice()..end.as_slice(),
            false,
            |_, v| {
                match decode::<Schedule>(v) {
                    Ok(s) => out.push(s),
                    Err(e) => {
                        err = Some(e);
                        return ControlFlow::Break(());
                    }
                }
                ControlFlow::Continue(())
            },
        )?;
        match err {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    /// Changes schedule `name` (administrators only): its interval (between
    /// [`SCHEDULE_MIN_SECS`] and [`SCHEDULE_MAX_SECS`]) and whether it runs.
    pub async fn set_schedule(
        &self,
        who: &Principal,
        name: &str,
        every_secs: u64,
        enabled: bool,
    ) -> Result<Schedule, KernelError> {
        if !who.administers_box() {
            return Err(KernelError::Forbidden {
                action: "change",
                entity: "schedules".into(),
            });
        }
        if !(SCHEDULE_MIN_SECS..=SCHEDULE_MAX_SECS).contains(&every_secs) {
            return Err(KernelError::invalid(
                "every_secs",
                format!(
                    "a schedule runs every {SCHEDULE_MIN_SECS} s at the most often and every \
                     {} days at the least",
                    SCHEDULE_MAX_SECS / 86_400
                ),
            ));
        }
        let key = schedule_key(name);
        let name = name.to_owned();
        let clock = self.shared_clock();
        let who = who.clone();
        self.store()
            .write(move |txn| {
                let mut s: Schedule = match txn.get(Table::Jobs, &key)? {
                    Some(b) => decode(&b)?,
                    None => return Err(KernelError::NotFound(format!("schedule {name}"))),
                };
                let before = schedule_image(&s);
                let now = unix_ms(clock.now());
                s.every_secs = every_secs;
                s.enabled = enabled;
                s.next_run_ms = s.next_run_ms.min(now + (every_secs as i64) * 1000);
                let after = schedule_image(&s);
                if before != after {
                    // An administrator's change of what the box does by itself is in
                    // the audit trail like any record's, with its before and after.
                    crate::event::append(
                        txn,
                        crate::event::NewEvent {
                            at_ms: now,
                            actor: who.user_id,
                            actor_name: who.display_name.clone(),
                            company: who.company,
                            entity: SCHEDULE_ENTITY,
                            record: 0,
                            op: crate::event::Op::Update,
                            version: 0,
                            before: Some(before),
                            after: Some(after),
                        },
                    )?;
                }
                txn.put(Table::Jobs, key, encode(&s)?);
                Ok(s)
            })
            .await
    }

    /// Creates the built-in schedules that do not exist yet, and the built-in handlers.
    async fn install_schedules(&self) -> Result<(), KernelError> {
        let clock = self.shared_clock();
        self.store()
            .write(move |txn| {
                let now = unix_ms(clock.now());
                let modules = crate::registry::modules().iter().flat_map(|m| m.schedules);
                for (name, kind, title, every) in DEFAULT_SCHEDULES.iter().chain(modules) {
                    let key = schedule_key(name);
                    if txn.get(Table::Jobs, &key)?.is_none() {
                        let s = Schedule {
                            name: (*name).into(),
                            kind: (*kind).into(),
                            title: (*title).into(),
                            every_secs: *every,
                            enabled: true,
                            next_run_ms: now + (*every as i64) * 1000,
                        };
                        txn.put(Table::Jobs, key, encode(&s)?);
                    }
                }
                Ok(())
            })
            .await
    }

    /// Enqueues the job of every enabled schedule that is due and moves it to its next
    /// run, in one command (so a restart neither loses nor repeats a run). Returns how
    /// many jobs were enqueued.
    pub async fn run_due_schedules(&self) -> Result<usize, KernelError> {
        let clock = self.shared_clock();
        let kinds: Vec<&'static str> = self
            .jobs_runtime()
            .handlers
            .lock()
            .map(|h| h.values().map(|h| h.kind()).collect())
            .unwrap_or_default();
        let n = self
            .store()
            .write(move |txn| {
                let now = unix_ms(clock.now());
                let mut n = 0;
                for (key, bytes) in txn.scan_prefix(Table::Jobs, b"s")? {
                    let mut s: Schedule = decode(&bytes)?;
                    if !s.enabled || s.next_run_ms > now {
                        continue;
                    }
                    // A schedule whose job kind is no longer installed waits.
                    let Some(kind) = kinds.iter().copied().find(|k| *k == s.kind) else {
                        continue;
                    };
                    let system = Principal::system(0);
                    enqueue_in(
                        txn,
                        &system,
                        JobSpec::new(kind, s.title.clone(), serde_json::Value::Null),
                        now,
                    )?;
                    s.next_run_ms = now + (s.every_secs as i64) * 1000;
                    txn.put(Table::Jobs, key, encode(&s)?);
                    n += 1;
                }
                Ok::<_, KernelError>(n)
            })
            .await?;
        if n > 0 {
            self.jobs_runtime().bell.notify_waiters();
        }
        Ok(n)
    }

    /// Removes finished jobs older than 30 days; returns how many.
    async fn prune_jobs(&self) -> Result<u64, KernelError> {
        let clock = self.shared_clock();
        self.store()
            .write(move |txn| {
                let now = unix_ms(clock.now());
                let mut n = 0;
                for (key, bytes) in txn.scan_prefix(Table::Jobs, b"j")? {
                    let j: Job = decode(&bytes)?;
                    if j.state.finished() && now - j.updated_ms > KEEP_FINISHED_MS {
                        txn.delete(Table::Jobs, key);
                        n += 1;
                    }
                }
                Ok(n)
            })
            .await
    }
}

/// A module's job handler, declared as a `static` in its [`crate::Module`].
struct Declared(&'static dyn JobHandler);

impl JobHandler for Declared {
    fn kind(&self) -> &'static str {
        self.0.kind()
    }
    fn timeout(&self) -> Duration {
        self.0.timeout()
    }
    fn run(&self, ctx: JobContext) -> JobFuture<'_> {
        self.0.run(ctx)
    }
}

/// How an attempt ended.
type Outcome = Result<serde_json::Value, JobError>;

/// Takes the first due queued job in `txn` and marks it running for run `boot`.
fn claim_in(txn: &mut Txn<'_, '_>, now: i64, boot: u64) -> Result<Option<Job>, KernelError> {
    let Some(key) = txn.scan_prefix_first(Table::Jobs, b"q")? else {
        return Ok(None);
    };
    let run_after = key
        .get(1..9)
        .and_then(decode_u64)
        .map(|t| (t ^ (1 << 63)) as i64);
    let id = key.get(9..17).and_then(decode_u64);
    let (Some(run_after), Some(id)) = (run_after, id) else {
        return Err(KernelError::Internal("a job queue entry is damaged".into()));
    };
    if run_after > now {
        return Ok(None);
    }
    txn.delete(Table::Jobs, key);
    let Some(bytes) = txn.get(Table::Jobs, &job_key(id))? else {
        return Ok(None);
    };
    let mut job: Job = decode(&bytes)?;
    if job.state != JobState::Queued {
        return Ok(None);
    }
    job.state = JobState::Running;
    job.attempts += 1;
    job.boot = Some(boot);
    job.updated_ms = now;
    txn.put(Table::Jobs, job_key(id), encode(&job)?);
    Ok(Some(job))
}

/// Records in `txn` how job `id`, run by `boot`, ended: done, cancelled, queued again
/// after a backoff, or failed. A job no longer running for this run is left alone.
fn finish_in(
    txn: &mut Txn<'_, '_>,
    id: u64,
    outcome: Outcome,
    now: i64,
    boot: u64,
) -> Result<(), KernelError> {
    let Some(bytes) = txn.get(Table::Jobs, &job_key(id))? else {
        return Ok(());
    };
    let mut job: Job = decode(&bytes)?;
    if job.state != JobState::Running || job.boot != Some(boot) {
        return Ok(());
    }
    job.boot = None;
    match outcome {
        Ok(value) => {
            job.state = JobState::Done;
            job.result = Some(value);
            job.error = None;
            if let Some((_, total)) = job.progress {
                job.progress = Some((total, total));
            }
        }
        Err(JobError::Cancelled) => {
            job.state = JobState::Cancelled;
            job.error = Some("cancelled while it ran".into());
        }
        Err(JobError::Retry(e)) if job.attempts < job.max_attempts => {
            job.state = JobState::Queued;
            job.run_after_ms = now + backoff_ms(job.attempts);
            job.error = Some(e);
            txn.put(Table::Jobs, queue_key(job.run_after_ms, id), Vec::new());
        }
        Err(JobError::Retry(e) | JobError::Fail(e)) => {
            job.state = JobState::Failed;
            job.error = Some(e);
        }
    }
    job.updated_ms = now;
    txn.put(Table::Jobs, job_key(id), encode(&job)?);
    Ok(())
}

/// The kernel's own recurring work.
struct Builtin(&'static str);

impl JobHandler for Builtin {
    fn kind(&self) -> &'static str {
        self.0
    }

    fn run(&self, ctx: JobContext) -> JobFuture<'_> {
        Box::pin(async move {
            let removed = match self.0 {
                PRUNE_IDEMPOTENCY => ctx.kernel.prune_idempotency().await?,
                _ => ctx.kernel.prune_jobs().await?,
            };
            Ok(serde_json::json!({ "removed": removed }))
        })
    }
}

/// Starts the job workers and the scheduler: queues again what an earlier run left
/// running, creates the built-in schedules, then runs `workers` jobs at a time until
/// the returned tasks are aborted.
pub async fn start(
    kernel: &Kernel,
    workers: usize,
) -> Result<Vec<tokio::task::JoinHandle<()>>, KernelError> {
    for kind in [PRUNE_IDEMPOTENCY, PRUNE_JOBS] {
        if kernel.handler(kind).is_none() {
            kernel.register_job(Arc::new(Builtin(kind)))?;
        }
    }
    for handler in crate::registry::modules().iter().flat_map(|m| m.jobs) {
        if kernel.handler(handler.kind()).is_none() {
            kernel.register_job(Arc::new(Declared(*handler)))?;
        }
    }
    let requeued = kernel.requeue_interrupted().await?;
    if requeued > 0 {
        tracing::info!(
            jobs = requeued,
            "queued again the jobs an earlier run left running"
        );
    }
    kernel.install_schedules().await?;
    let mut tasks = Vec::new();
    for _ in 0..workers.max(1) {
        let k = kernel.clone();
        tasks.push(tokio::spawn(async move { worker(k).await }));
    }
    let k = kernel.clone();
    tasks.push(tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            if let Err(e) = k.run_due_schedules().await {
                tracing::warn!(error = %e, "could not run the due schedules");
            }
        }
    }));
    Ok(tasks)
}

async fn worker(kernel: Kernel) {
    let mut next: Option<Job> = None;
    loop {
        let job = match next.take() {
            Some(job) => job,
            None => {
                // Subscribe before looking, so an enqueue between the two is not missed.
                let bell = kernel.jobs_runtime().bell.notified();
                match kernel.claim_job().await {
                    Ok(Some(job)) => job,
                    Ok(None) => {
                        let _ = tokio::time::timeout(IDLE_POLL, bell).await;
                        continue;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "could not take the next job");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                }
            }
        };
        let id = job.id;
        let outcome = kernel.execute(&job).await;
        match kernel.finish_and_claim(id, outcome).await {
            Ok(claimed) => next = claimed,
            Err(e) => {
                // The job stays running for this run; the next start queues it again.
                tracing::error!(job = id, error = %e, "could not record how a job ended");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}
