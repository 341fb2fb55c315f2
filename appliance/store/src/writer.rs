//! The single writer: one OS thread that owns every redb write transaction.
//!
//! Commands queue on a channel. The thread takes everything queued (up to
//! [`MAX_BATCH`]), runs each command against its own overlay, merges the overlay of each
//! command that succeeded into one write transaction, commits it durably, and only then
//! answers the callers. While it waits on the disk, the next batch queues up: that is
//! the group commit.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use redb::{Database, Durability, ReadableTable, WriteTransaction};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tokio::sync::{oneshot, watch};

use crate::{MAX_BATCH, StoreError, Table, u64_key};

type ByteTable<'t> = redb::Table<'t, &'static [u8], &'static [u8]>;
type Completion = Box<dyn FnOnce(Result<(), StoreError>) + Send>;
type Job = Box<dyn FnOnce(&mut Txn<'_, '_>) -> (bool, Completion) + Send>;

/// Counters of the writer since the store was opened.
#[derive(Debug, Clone, Copy, Default)]
pub struct WriterStats {
    /// Commands that committed.
    pub commands: u64,
    /// Commands that returned an error (and wrote nothing).
    pub rejected: u64,
    /// Durable transactions (fsyncs).
    pub commits: u64,
}

#[derive(Default)]
struct Counters {
    commands: AtomicU64,
    rejected: AtomicU64,
    commits: AtomicU64,
}

pub(crate) struct Handle {
    tx: Option<mpsc::Sender<Job>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    counters: Arc<Counters>,
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
            let completion: Completion = Box::new(move |commit: Result<(), StoreError>| {
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

    pub(crate) fn stats(&self) -> WriterStats {
        WriterStats {
            commands: self.counters.commands.load(Ordering::Relaxed),
            rejected: self.counters.rejected.load(Ordering::Relaxed),
            commits: self.counters.commits.load(Ordering::Relaxed),
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        // Closing the channel lets the thread finish the queue and exit; joining it
        // releases the database file before the store is reported closed.
        self.tx = None;
        if let Ok(mut guard) = self.thread.lock()
            && let Some(thread) = guard.take()
        {
            let _ = thread.join();
        }
    }
}

pub(crate) fn spawn(
    db: Arc<Database>,
    last_seq: u64,
    head: watch::Sender<u64>,
) -> Result<Handle, StoreError> {
    let (tx, rx) = mpsc::channel::<Job>();
    let counters = Arc::new(Counters::default());
    let thread_counters = counters.clone();
    let thread = std::thread::Builder::new()
        .name("nexus-writer".into())
        .spawn(move || run(&db, rx, last_seq, &head, &thread_counters))
        .map_err(|e| StoreError::Io(format!("cannot start the writer thread: {e}")))?;
    Ok(Handle {
        tx: Some(tx),
        thread: Mutex::new(Some(thread)),
        counters,
    })
}

/// How long the writer waits, after answering a commit, for those callers' next
/// commands, so that they share the next fsync instead of splitting into two groups
/// that alternate (PostgreSQL's `commit_delay`, but adaptive: it waits only for callers
/// it just answered, and never longer than this).
const GATHER: Duration = Duration::from_micros(300);

fn run(
    db: &Database,
    rx: mpsc::Receiver<Job>,
    mut seq: u64,
    head: &watch::Sender<u64>,
    counters: &Counters,
) {
    let mut batch: Vec<Job> = Vec::with_capacity(64);
    // Callers answered by the last commit, whose next commands are worth waiting for.
    let mut expected = 0usize;
    loop {
        if batch.is_empty() {
            match rx.recv() {
                Ok(job) => batch.push(job),
                Err(_) => return,
            }
        }
        drain(&rx, &mut batch);
        if expected > 1 {
            let want = (batch.len() + expected).min(MAX_BATCH);
            let deadline = Instant::now() + GATHER;
            while batch.len() < want {
                let left = deadline.saturating_duration_since(Instant::now());
                match rx.recv_timeout(left) {
                    Ok(job) => {
                        batch.push(job);
                        drain(&rx, &mut batch);
                    }
                    Err(_) => break,
                }
            }
        }
        // A panic anywhere in a batch (a command, redb, a completion) loses that batch
        // — its callers are answered `CommandFailed` — but never the writer.
        let ran = catch_unwind(AssertUnwindSafe(|| {
            run_batch(db, &mut batch, seq, counters)
        }));
        let answer = match ran {
            Ok((next, answer)) => {
                seq = next;
                answer
            }
            Err(_) => {
                batch.clear();
                tracing::error!("a store batch panicked; it was not committed");
                Vec::new()
            }
        };
        head.send_if_modified(|h| {
            let moved = *h != seq;
            *h = seq;
            moved
        });
        // What queued during the commit goes into the next batch; the callers answered
        // now will come back, and the next batch waits a moment for them.
        drain(&rx, &mut batch);
        expected = answer.len();
        for c in answer {
            c.0(c.1);
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
}

impl<'t> Open<'t> {
    fn new(wtxn: &'t WriteTransaction) -> Result<Open<'t>, StoreError> {
        let tables = Table::ALL
            .iter()
            .map(|t| wtxn.open_table(t.def()).map_err(StoreError::io))
            .collect::<Result<_, _>>()?;
        Ok(Open { tables })
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

/// A completion and the commit outcome to give it.
type Answer = (Completion, Result<(), StoreError>);

/// Runs one batch in one transaction; returns the change-log head after it and the
/// answers to give once the head is published.
fn run_batch(
    db: &Database,
    batch: &mut Vec<Job>,
    seq: u64,
    counters: &Counters,
) -> (u64, Vec<Answer>) {
    let wtxn = match begin(db) {
        Ok(t) => t,
        Err(e) => {
            fail_all(batch, &e);
            return (seq, Vec::new());
        }
    };
    let (waiting, next, failure) = match Open::new(&wtxn) {
        Ok(mut open) => run_commands(&mut open, batch, seq, counters),
        Err(e) => {
            fail_all(batch, &e);
            return (seq, Vec::new());
        }
    };
    let n = waiting.len() as u64;
    let outcome = match failure {
        Some(e) => {
            let _ = wtxn.abort();
            Err(e)
        }
        None => wtxn.commit().map_err(StoreError::io),
    };
    match &outcome {
        Ok(()) => {
            counters.commits.fetch_add(1, Ordering::Relaxed);
            counters.commands.fetch_add(n, Ordering::Relaxed);
        }
        Err(e) => tracing::error!(error = %e, commands = n, "store commit failed"),
    }
    let next = if outcome.is_ok() { next } else { seq };
    (
        next,
        waiting.into_iter().map(|c| (c, outcome.clone())).collect(),
    )
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
                completion(Ok(()));
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
    wtxn.set_durability(Durability::Immediate)
        .map_err(StoreError::io)?;
    Ok(wtxn)
}

fn fail_all(batch: &mut Vec<Job>, e: &StoreError) {
    // Without a transaction no command can run; dropping a job answers its caller
    // with `CommandFailed`, and nothing was written.
    tracing::error!(error = %e, commands = batch.len(), "could not begin a write transaction");
    batch.clear();
}

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

    /// The value at `key`, as this command would see it.
    pub fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(v) = self.overlay.get(&(table, key.to_vec())) {
            return Ok(v.clone());
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
                }
                None => {
                    t.remove(key.as_slice()).map_err(StoreError::io)?;
                }
            }
        }
        let n = self.emitted.len() as u64;
        let log = self.open.table_mut(Table::ChangeLog)?;
        for (i, payload) in self.emitted.iter().enumerate() {
            let key = u64_key(self.first_seq + i as u64);
            log.insert(key.as_slice(), payload.as_slice())
                .map_err(StoreError::io)?;
        }
        Ok(n)
    }
}
