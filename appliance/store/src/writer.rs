//! The single writer: one OS thread that owns every redb write transaction.
//!
//! Commands queue on a channel. The thread takes everything queued (up to
//! [`MAX_BATCH`]), runs each command against its own overlay, and merges the overlay of
//! each command that succeeded into one write transaction. It then appends the batch's
//! effects to the write-ahead log and syncs it, commits the transaction without making
//! redb durable, and only then answers the callers. While it waits on the disk, the
//! next batch queues up: that is the group commit. A checkpoint (a durable redb commit,
//! after which the log starts over) follows when the log has grown or a second has
//! passed since the first batch it holds.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use redb::{Database, Durability, ReadableTable, WriteTransaction};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tokio::sync::{oneshot, watch};

use crate::wal::{Effects, Wal};
use crate::{MAX_BATCH, StoreError, Table, WAL_LSN, decode_u64, u64_key};

type ByteTable<'t> = redb::Table<'t, &'static [u8], &'static [u8]>;
type Job = Box<dyn FnOnce(&mut Txn<'_, '_>) -> (bool, Completion) + Send>;

/// How a command that ran learns whether its batch committed. One that is dropped
/// unanswered — a panic while its batch was being logged or committed — tells its
/// caller the truth: the write may or may not have been saved (the log may hold it and
/// the next open would replay it). A command that never ran has no completion; its
/// caller hears that nothing was saved.
struct Completion(Option<Answerer>);

type Answerer = Box<dyn FnOnce(Result<(), StoreError>) + Send>;

impl Completion {
    fn new(f: impl FnOnce(Result<(), StoreError>) + Send + 'static) -> Completion {
        Completion(Some(Box::new(f)))
    }

    fn answer(mut self, result: Result<(), StoreError>) {
        if let Some(f) = self.0.take() {
            f(result);
        }
    }
}

impl Drop for Completion {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f(Err(StoreError::Halted(
                "the writer was interrupted while saving this batch".into(),
            )));
        }
    }
}

/// Why the writer stopped, once it has, and why the last batch failed while the
/// writer goes on (a full disk): `/healthz` reports both.
#[derive(Debug, Default)]
pub(crate) struct WriterHealth {
    pub(crate) halted: Option<String>,
    pub(crate) failing: Option<String>,
}

pub(crate) type HaltReason = Arc<Mutex<WriterHealth>>;

/// Counters of the writer since the store was opened.
#[derive(Debug, Clone, Copy, Default)]
pub struct WriterStats {
    /// Commands that committed.
    pub commands: u64,
    /// Commands that returned an error (and wrote nothing).
    pub rejected: u64,
    /// Durable commits: batches synced to the write-ahead log.
    pub commits: u64,
    /// Checkpoints: durable redb commits after which the log started over.
    pub checkpoints: u64,
    /// Batches replayed from the write-ahead log when the store was opened (non-zero
    /// after a crash).
    pub replayed: u64,
}

#[derive(Default)]
struct Counters {
    commands: AtomicU64,
    rejected: AtomicU64,
    commits: AtomicU64,
    checkpoints: AtomicU64,
    replayed: AtomicU64,
}

pub(crate) struct Handle {
    tx: Option<mpsc::Sender<Job>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    counters: Arc<Counters>,
    halted: HaltReason,
}

impl Handle {
    pub(crate) async fn submit<R, E, F>(&self, command: F) -> Result<R, E>
    where
        F: FnOnce(&mut Txn<'_, '_>) -> Result<R, E> + Send + 'static,
        R: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (done_tx, done_rx) = oneshot::channel::<Result<R, E>>();
        let job: Job = Box::new(move |txn: &mut Txn<'_, '_>| {
            let result = command(txn);
            let ok = result.is_ok();
            let completion = Completion::new(move |commit: Result<(), StoreError>| {
                let out = match (result, commit) {
                    (Ok(v), Ok(())) => Ok(v),
                    (Ok(_), Err(e)) => Err(E::from(e)),
                    (Err(e), _) => Err(e),
                };
                // The caller may have gone away (request cancelled); the write stands.
                let _ = done_tx.send(out);
            });
            (ok, completion)
        });
        let tx = self.tx.as_ref().ok_or(StoreError::WriterGone)?;
        // Unbounded, so sending never blocks an async thread; every sender waits for
        // its answer, so the queue is bounded by the commands in flight.
        tx.send(job).map_err(|_| StoreError::WriterGone)?;
        done_rx
            .await
            .map_err(|_| E::from(StoreError::CommandFailed))?
    }

    /// Why the writer stopped, if it has (after a storage failure or a panic).
    pub(crate) fn halted(&self) -> Option<String> {
        self.halted.lock().ok().and_then(|h| h.halted.clone())
    }

    /// Why the last batch failed, while no batch has committed since.
    pub(crate) fn failing(&self) -> Option<String> {
        self.halted.lock().ok().and_then(|h| h.failing.clone())
    }

    pub(crate) fn stats(&self) -> WriterStats {
        let c = &self.counters;
        WriterStats {
            commands: c.commands.load(Ordering::Relaxed),
            rejected: c.rejected.load(Ordering::Relaxed),
            commits: c.commits.load(Ordering::Relaxed),
            checkpoints: c.checkpoints.load(Ordering::Relaxed),
            replayed: c.replayed.load(Ordering::Relaxed),
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        // Closing the channel lets the thread finish the queue, checkpoint and exit;
        // joining it releases the database file before the store is reported closed.
        self.tx = None;
        if let Ok(mut guard) = self.thread.lock()
            && let Some(thread) = guard.take()
        {
            let _ = thread.join();
        }
    }
}

/// Where the writer starts: the log, the last batch in it and the change-log head.
pub(crate) struct Start {
    pub(crate) wal: Wal,
    pub(crate) lsn: u64,
    pub(crate) seq: u64,
    pub(crate) replayed: u64,
}

pub(crate) fn spawn(
    db: Arc<Database>,
    start: Start,
    head: watch::Sender<u64>,
) -> Result<Handle, StoreError> {
    let (tx, rx) = mpsc::channel::<Job>();
    let counters = Arc::new(Counters::default());
    counters.replayed.store(start.replayed, Ordering::Relaxed);
    let thread_counters = counters.clone();
    let halted: HaltReason = Arc::default();
    let thread_halted = halted.clone();
    let thread = std::thread::Builder::new()
        .name("nexus-writer".into())
        .spawn(move || {
            let mut writer = Writer {
                db: &db,
                wal: start.wal,
                health: thread_halted.clone(),
                lsn: start.lsn,
                seq: start.seq,
                unsaved_since: None,
                effects: Effects::default(),
                counters: &thread_counters,
            };
            if let Err(reason) = writer.run(&rx, &head)
                && let Ok(mut h) = thread_halted.lock()
            {
                h.halted = Some(reason);
            }
        })
        .map_err(|e| StoreError::Io(format!("cannot start the writer thread: {e}")))?;
    Ok(Handle {
        tx: Some(tx),
        thread: Mutex::new(Some(thread)),
        counters,
        halted,
    })
}

/// How long the writer waits, after answering a commit, for those callers' next
/// commands, so that they share the next fsync instead of splitting into two groups
/// that alternate (PostgreSQL's `commit_delay`, but adaptive: it waits only for callers
/// it just answered, and never longer than this).
const GATHER: Duration = Duration::from_micros(300);

/// A checkpoint follows at the latest this long after the first batch it will cover…
const CHECKPOINT_AFTER: Duration = Duration::from_secs(1);
/// …or as soon as the log holds this many bytes of batches.
const CHECKPOINT_BYTES: u64 = 16 << 20;

/// A completion and the commit outcome to give it.
type Answer = (Completion, Result<(), StoreError>);

/// What one batch came to.
struct Outcome {
    answers: Vec<Answer>,
    /// Set when the log and the database may disagree: the writer must stop, and the
    /// next open replays the log.
    halt: Option<StoreError>,
}

struct Writer<'a> {
    db: &'a Database,
    wal: Wal,
    health: HaltReason,
    /// The last batch appended to the log.
    lsn: u64,
    /// The change-log head.
    seq: u64,
    /// When the first batch since the last checkpoint was logged.
    unsaved_since: Option<Instant>,
    /// The effects of the batch being built (the buffer is reused).
    effects: Effects,
    counters: &'a Counters,
}

impl Writer<'_> {
    /// Runs until every sender is gone (`Ok`) or the writer must stop (`Err` with the
    /// reason, for `/healthz`).
    fn run(&mut self, rx: &mpsc::Receiver<Job>, head: &watch::Sender<u64>) -> Result<(), String> {
        let mut batch: Vec<Job> = Vec::with_capacity(64);
        // Callers answered by the last commit, whose next commands are worth waiting for.
        let mut expected = 0usize;
        loop {
            if batch.is_empty() {
                match self.next_job(rx)? {
                    Some(job) => batch.push(job),
                    None => break,
                }
            }
            drain(rx, &mut batch);
            if expected > 1 {
                gather(rx, &mut batch, expected);
            }
            // A panic anywhere in a batch (redb, a completion) loses that batch — its
            // callers are answered `CommandFailed` — and stops the writer, since the
            // log may hold a batch the database lacks: the next open replays it.
            let outcome = match catch_unwind(AssertUnwindSafe(|| self.run_batch(&mut batch))) {
                Ok(outcome) => outcome,
                Err(_) => {
                    tracing::error!("a store batch panicked; the writer stops");
                    return Err("a store batch panicked".into());
                }
            };
            head.send_if_modified(|h| {
                let moved = *h != self.seq;
                *h = self.seq;
                moved
            });
            // What queued during the commit goes into the next batch; the callers
            // answered now will come back, and the next batch waits a moment for them.
            drain(rx, &mut batch);
            expected = outcome.answers.len();
            for (completion, result) in outcome.answers {
                completion.answer(result);
            }
            if let Some(e) = outcome.halt {
                tracing::error!(error = %e, "the store's writer stopped after a storage failure");
                return Err(e.to_string());
            }
            if self.checkpoint_due() {
                self.checkpoint()?;
            }
        }
        // The queue is closed: make everything durable in the database, so the next
        // open has nothing to replay.
        if self.unsaved_since.is_some() {
            self.checkpoint()?;
        }
        Ok(())
    }

    /// Waits for the next command; checkpoints when the wait outlasts the checkpoint
    /// deadline. `None` once every sender is gone.
    fn next_job(&mut self, rx: &mpsc::Receiver<Job>) -> Result<Option<Job>, String> {
        loop {
            let Some(since) = self.unsaved_since else {
                return Ok(rx.recv().ok());
            };
            let left = (since + CHECKPOINT_AFTER).saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(job) => return Ok(Some(job)),
                Err(mpsc::RecvTimeoutError::Timeout) => self.checkpoint()?,
                Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(None),
            }
        }
    }

    fn checkpoint_due(&self) -> bool {
        self.wal.written() >= CHECKPOINT_BYTES
            || self
                .unsaved_since
                .is_some_and(|since| since.elapsed() >= CHECKPOINT_AFTER)
    }

    /// Makes the database durable up to the last logged batch, then starts the log
    /// over. On failure the log simply keeps growing and the next checkpoint retries.
    fn checkpoint(&mut self) -> Result<(), String> {
        let durable = (|| -> Result<(), StoreError> {
            let mut wtxn = self.db.begin_write().map_err(StoreError::io)?;
            wtxn.set_durability(Durability::Immediate)
                .map_err(StoreError::io)?;
            // The durable commit records redb's allocator state, so opening after a
            // crash (which rolls back to this commit) loads it instead of walking the
            // whole file.
            wtxn.set_quick_repair(true);
            wtxn.commit().map_err(StoreError::io)
        })();
        match durable {
            Ok(()) => {
                self.wal.rewind();
                self.unsaved_since = None;
                self.counters.checkpoints.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            // redb wants to be closed and opened again after a failed commit; the log
            // still holds every acknowledged batch, and the next open replays them.
            Err(e) => {
                tracing::error!(error = %e, "store checkpoint failed; the writer stops");
                Err(format!("a checkpoint failed ({e})"))
            }
        }
    }

    /// Runs one batch in one transaction and logs it.
    fn run_batch(&mut self, batch: &mut Vec<Job>) -> Outcome {
        // Without a transaction no command runs (its caller hears nothing was saved),
        // and redb may need reopening: the writer stops; a restart replays the log.
        let wtxn = match begin(self.db) {
            Ok(t) => t,
            Err(e) => {
                fail_all(batch, &e);
                return Outcome {
                    answers: Vec::new(),
                    halt: Some(e),
                };
            }
        };
        let mut open = match Open::new(&wtxn, std::mem::take(&mut self.effects)) {
            Ok(open) => open,
            Err(e) => {
                fail_all(batch, &e);
                return Outcome {
                    answers: Vec::new(),
                    halt: Some(e),
                };
            }
        };
        let (waiting, next, failure) = run_commands(&mut open, batch, self.seq, self.counters);
        let lsn = self.lsn + 1;
        // The data file remembers the last batch it holds, in the batch's own
        // transaction: recovery replays the log from there.
        let marked = if failure.is_none() && !open.effects.is_empty() {
            open.table_mut(Table::Store).and_then(|t| {
                t.insert(WAL_LSN, u64_key(lsn).as_slice())
                    .map(|_| ())
                    .map_err(StoreError::io)
            })
        } else {
            Ok(())
        };
        let mut effects = std::mem::take(&mut open.effects);
        drop(open);
        let n = waiting.len() as u64;
        let (outcome, halt) = match (failure, marked) {
            (Some(e), _) | (None, Err(e)) => {
                let _ = wtxn.abort();
                tracing::error!(error = %e, commands = n, "store batch failed");
                self.set_failing(Some(e.to_string()));
                (Err(e), None)
            }
            // Nothing to write (every command was refused or read only).
            _ if effects.is_empty() => {
                let _ = wtxn.abort();
                (Ok(()), None)
            }
            (None, Ok(())) => match self.log_and_commit(wtxn, lsn, &effects) {
                Ok(()) => {
                    self.set_failing(None);
                    self.lsn = lsn;
                    self.seq = next;
                    self.counters.commits.fetch_add(1, Ordering::Relaxed);
                    self.counters.commands.fetch_add(n, Ordering::Relaxed);
                    self.unsaved_since.get_or_insert_with(Instant::now);
                    (Ok(()), None)
                }
                Err(e) => {
                    let halt = StoreError::Halted(e.to_string());
                    (Err(halt.clone()), Some(halt))
                }
            },
        };
        effects.clear();
        self.effects = effects;
        Outcome {
            answers: waiting.into_iter().map(|c| (c, outcome.clone())).collect(),
            halt,
        }
    }

    fn set_failing(&self, reason: Option<String>) {
        if let Ok(mut h) = self.health.lock() {
            h.failing = reason;
        }
    }

    /// Makes the batch durable in the log, then visible in the database.
    fn log_and_commit(
        &mut self,
        wtxn: WriteTransaction,
        lsn: u64,
        effects: &Effects,
    ) -> Result<(), StoreError> {
        if let Err(e) = self.wal.append(lsn, effects.as_bytes()) {
            let _ = wtxn.abort();
            return Err(e);
        }
        wtxn.commit().map_err(StoreError::io)
    }
}

/// Waits up to [`GATHER`] for the `expected` callers just answered to come back.
fn gather(rx: &mpsc::Receiver<Job>, batch: &mut Vec<Job>, expected: usize) {
    let want = (batch.len() + expected).min(MAX_BATCH);
    let deadline = Instant::now() + GATHER;
    while batch.len() < want {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(job) => {
                batch.push(job);
                drain(rx, batch);
            }
            Err(_) => break,
        }
    }
}

fn drain(rx: &mpsc::Receiver<Job>, batch: &mut Vec<Job>) {
    while batch.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(job) => batch.push(job),
            Err(_) => break,
        }
    }
}

/// Every table, opened once per batch (opening a table per read is not free).
struct Open<'t> {
    tables: Vec<ByteTable<'t>>,
    /// Every put and delete merged into the transaction, for the log.
    effects: Effects,
}

impl<'t> Open<'t> {
    fn new(wtxn: &'t WriteTransaction, effects: Effects) -> Result<Open<'t>, StoreError> {
        let tables = Table::ALL
            .iter()
            .map(|t| wtxn.open_table(t.def()).map_err(StoreError::io))
            .collect::<Result<_, _>>()?;
        Ok(Open { tables, effects })
    }

    fn table(&self, t: Table) -> Result<&ByteTable<'t>, StoreError> {
        self.tables
            .get(t.index())
            .ok_or_else(|| StoreError::Io(format!("table {} is not open", t.name())))
    }

    fn table_mut(&mut self, t: Table) -> Result<&mut ByteTable<'t>, StoreError> {
        self.tables
            .get_mut(t.index())
            .ok_or_else(|| StoreError::Io(format!("table {} is not open", t.name())))
    }
}

/// Runs each command against its own overlay and merges the successful ones. Returns
/// the completions waiting for the commit, the next sequence, and the failure that
/// spoils the whole batch, if any.
fn run_commands(
    open: &mut Open<'_>,
    batch: &mut Vec<Job>,
    seq: u64,
    counters: &Counters,
) -> (Vec<Completion>, u64, Option<StoreError>) {
    let mut next = seq;
    let mut waiting: Vec<Completion> = Vec::with_capacity(batch.len());
    let mut failure: Option<StoreError> = None;
    for job in batch.drain(..) {
        let mut txn = Txn::new(open, next);
        let ran = catch_unwind(AssertUnwindSafe(|| job(&mut txn)));
        match ran {
            // After a failed merge the batch is lost; later commands still run, so
            // their own validation errors reach their callers, but nothing is merged.
            Ok((true, completion)) if failure.is_some() => waiting.push(completion),
            Ok((true, completion)) => {
                match txn.apply() {
                    Ok(emitted) => next += emitted,
                    // The transaction may hold part of this command: nothing in it
                    // may commit.
                    Err(e) => failure = Some(e),
                }
                waiting.push(completion);
            }
            Ok((false, completion)) => {
                counters.rejected.fetch_add(1, Ordering::Relaxed);
                completion.answer(Ok(()));
            }
            Err(_) => {
                counters.rejected.fetch_add(1, Ordering::Relaxed);
                tracing::error!("a store command panicked; its writes were discarded");
            }
        }
    }
    (waiting, next, failure)
}

fn begin(db: &Database) -> Result<WriteTransaction, StoreError> {
    let mut wtxn = db.begin_write().map_err(StoreError::io)?;
    // The log makes the batch durable; redb catches up at the next checkpoint.
    wtxn.set_durability(Durability::None)
        .map_err(StoreError::io)?;
    Ok(wtxn)
}

fn fail_all(batch: &mut Vec<Job>, e: &StoreError) {
    // Without a transaction no command can run; dropping a job answers its caller
    // with `CommandFailed`, and nothing was written.
    tracing::error!(error = %e, commands = batch.len(), "could not begin a write transaction");
    batch.clear();
}

/// A key and its value, as [`Txn::scan_prefix`] returns them.
pub type KeyValue = (Vec<u8>, Vec<u8>);

/// One command's view of the write transaction: reads see the committed state, the
/// batch's earlier commands and this command's own writes; writes stay in an overlay
/// until the command succeeds.
pub struct Txn<'a, 't> {
    open: &'a mut Open<'t>,
    overlay: BTreeMap<(Table, Vec<u8>), Option<Vec<u8>>>,
    emitted: Vec<Vec<u8>>,
    first_seq: u64,
}

impl<'a, 't> Txn<'a, 't> {
    fn new(open: &'a mut Open<'t>, last_seq: u64) -> Txn<'a, 't> {
        Txn {
            open,
            overlay: BTreeMap::new(),
            emitted: Vec::new(),
            first_seq: last_seq + 1,
        }
    }

    /// The value at `key`, as this command would see it (a change-log entry this
    /// command emitted included).
    pub fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(v) = self.overlay.get(&(table, key.to_vec())) {
            return Ok(v.clone());
        }
        if table == Table::ChangeLog
            && let Some(seq) = decode_u64(key)
            && let Some(i) = seq.checked_sub(self.first_seq)
            && let Some(payload) = self.emitted.get(i as usize)
        {
            return Ok(Some(payload.clone()));
        }
        let t = self.open.table(table)?;
        Ok(t.get(key)
            .map_err(StoreError::io)?
            .map(|v| v.value().to_vec()))
    }

    /// Whether any key starting with `prefix` exists, as this command would see it.
    pub fn any_with_prefix(&self, table: Table, prefix: &[u8]) -> Result<bool, StoreError> {
        let staged = self
            .overlay
            .range((table, prefix.to_vec())..)
            .take_while(|((t, k), _)| *t == table && k.starts_with(prefix))
            .any(|(_, v)| v.is_some());
        if staged {
            return Ok(true);
        }
        let t = self.open.table(table)?;
        for item in t.range::<&[u8]>(prefix..).map_err(StoreError::io)? {
            let (k, _) = item.map_err(StoreError::io)?;
            let k = k.value();
            if !k.starts_with(prefix) {
                return Ok(false);
            }
            if !self.overlay.contains_key(&(table, k.to_vec())) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Every entry whose key starts with `prefix`, in key order, as this command would
    /// see it. For small key ranges (a company's ledger totals, its fiscal years): the
    /// whole range is collected.
    pub fn scan_prefix(&self, table: Table, prefix: &[u8]) -> Result<Vec<KeyValue>, StoreError> {
        let mut found: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        let t = self.open.table(table)?;
        for item in t.range::<&[u8]>(prefix..).map_err(StoreError::io)? {
            let (k, v) = item.map_err(StoreError::io)?;
            if !k.value().starts_with(prefix) {
                break;
            }
            found.insert(k.value().to_vec(), v.value().to_vec());
        }
        let staged = self
            .overlay
            .range((table, prefix.to_vec())..)
            .take_while(|((t, k), _)| *t == table && k.starts_with(prefix));
        for ((_, k), v) in staged {
            match v {
                Some(v) => found.insert(k.clone(), v.clone()),
                None => found.remove(k),
            };
        }
        Ok(found.into_iter().collect())
    }

    /// The first key starting with `prefix`, as this command would see it.
    pub fn scan_prefix_first(
        &self,
        table: Table,
        prefix: &[u8],
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let t = self.open.table(table)?;
        let mut committed = None;
        for item in t.range::<&[u8]>(prefix..).map_err(StoreError::io)? {
            let (k, _) = item.map_err(StoreError::io)?;
            let k = k.value();
            if !k.starts_with(prefix) {
                break;
            }
            // Skip what this command deleted.
            if matches!(self.overlay.get(&(table, k.to_vec())), Some(None)) {
                continue;
            }
            committed = Some(k.to_vec());
            break;
        }
        let staged = self
            .overlay
            .range((table, prefix.to_vec())..)
            .take_while(|((t, k), _)| *t == table && k.starts_with(prefix))
            .find(|(_, v)| v.is_some())
            .map(|((_, k), _)| k.clone());
        Ok(match (committed, staged) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        })
    }

    /// Stages `key` → `value`.
    pub fn put(&mut self, table: Table, key: impl Into<Vec<u8>>, value: Vec<u8>) {
        self.overlay.insert((table, key.into()), Some(value));
    }

    /// Stages the removal of `key`.
    pub fn delete(&mut self, table: Table, key: impl Into<Vec<u8>>) {
        self.overlay.insert((table, key.into()), None);
    }

    /// Appends a change-log entry and returns the sequence number it will have.
    pub fn emit(&mut self, payload: Vec<u8>) -> u64 {
        let seq = self.first_seq + self.emitted.len() as u64;
        self.emitted.push(payload);
        seq
    }

    /// The sequence of this command's first change-log entry (whether or not it emits
    /// one): the command's id in the event log.
    pub fn command_seq(&self) -> u64 {
        self.first_seq
    }

    /// The sequence number the next [`Txn::emit`] will return.
    pub fn next_seq(&self) -> u64 {
        self.first_seq + self.emitted.len() as u64
    }

    /// Merges the overlay and the emitted changes into the write transaction; returns
    /// how many change-log entries were appended.
    fn apply(self) -> Result<u64, StoreError> {
        for ((table, key), value) in &self.overlay {
            let t = self.open.table_mut(*table)?;
            match value {
                Some(v) => {
                    t.insert(key.as_slice(), v.as_slice())
                        .map_err(StoreError::io)?;
                    self.open.effects.put(*table, key, v);
                }
                None => {
                    t.remove(key.as_slice()).map_err(StoreError::io)?;
                    self.open.effects.delete(*table, key);
                }
            }
        }
        let n = self.emitted.len() as u64;
        for (i, payload) in self.emitted.iter().enumerate() {
            let key = u64_key(self.first_seq + i as u64);
            self.open
                .table_mut(Table::ChangeLog)?
                .insert(key.as_slice(), payload.as_slice())
                .map_err(StoreError::io)?;
            self.open.effects.put(Table::ChangeLog, &key, payload);
        }
        Ok(n)
    }
}
