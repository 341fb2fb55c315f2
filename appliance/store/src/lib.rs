//! The durable store: the only crate that knows redb.
//!
//! * [`Table`] is the one registry of tables.
//! * [`Store::write`] sends a command to the single writer thread, which runs many
//!   commands in one redb write transaction and acknowledges them once the batch is
//!   synced to the write-ahead log (group commit; see `wal`). A command that fails leaves no trace: its writes live in an
//!   overlay that is merged into the transaction only when the command succeeds.
//! * [`Store::read`] gives a snapshot that never blocks and is never blocked by writes.
//! * The change log: a command calls [`Txn::emit`]; the writer assigns gap-free,
//!   monotonic sequence numbers and publishes the committed head through
//!   [`Store::subscribe`].

mod tables;
mod wal;
mod writer;

use std::hash::{BuildHasher, Hasher};
use std::ops::{Bound, ControlFlow, RangeBounds};
use std::path::Path;
use std::sync::Arc;

use redb::{Database, ReadableDatabase, ReadableTable};
use tokio::sync::watch;

pub use tables::Table;
pub use writer::{KeyValue, Txn, WriterStats};

/// What can go wrong inside the store. Callers see messages, never redb types.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("the data file could not be opened: {0}")]
    Open(String),
    #[error("the data file is already in use by another nexus process ({0})")]
    Locked(String),
    #[error("storage failure: {0}")]
    Io(String),
    #[error("the store's writer has stopped, so nothing was saved; restart the appliance")]
    WriterGone,
    #[error("the write could not be completed and nothing was saved; see the server log")]
    CommandFailed,
    #[error(
        "this data file is in on-disk format {0}, written by a development build before \
         the first release; this build reads format {FORMAT} only. Move the data directory \
         aside and start again (pre-release formats are not migrated)"
    )]
    Format(u64),
    #[error("stored data is damaged: {0}")]
    Corrupt(String),
    #[error(
        "the store stopped after a storage failure ({0}); writes acknowledged before it \
         are safe, this one may or may not have been saved; restart the appliance"
    )]
    Halted(String),
}

impl StoreError {
    fn io(e: impl std::fmt::Display) -> Self {
        StoreError::Io(e.to_string())
    }
}

/// How many commands one transaction may carry at most.
const MAX_BATCH: usize = 4096;

/// [`Table::Store`] key: this data file's random id, which its log must carry.
const STORE_ID: &[u8] = b"id";
/// [`Table::Store`] key: the on-disk format this data file is written in.
const FORMAT_KEY: &[u8] = b"format";
/// The on-disk format this build writes and reads. 2: the change log is the one event
/// log (hash-chained events with before/after images; `Table::Audit` is retired).
pub const FORMAT: u64 = 2;

/// [`Table::Store`] key: the LSN of the last logged batch the data file holds.
pub(crate) const WAL_LSN: &[u8] = b"wal_lsn";

/// A handle to the store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    db: Arc<Database>,
    writer: writer::Handle,
    head: watch::Receiver<u64>,
}

impl Store {
    /// Opens (or creates) the store file at `path` and its write-ahead log beside it
    /// (same name, extension `wal`), applies the batches the log holds beyond the
    /// file's last checkpoint, and starts the writer thread.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let db = Database::builder().create(path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => {
                StoreError::Locked(path.display().to_string())
            }
            other => StoreError::Open(format!("{}: {other}", path.display())),
        })?;
        let db = Arc::new(db);
        let (id, applied) = prepare(&db)?;
        let (mut wal, recovered) = wal::Wal::open(&path.with_extension("wal"), id, applied)?;
        let mut lsn = applied;
        if let Some(last) = recovered.last() {
            lsn = last.lsn;
            replay(&db, &recovered)?;
            tracing::info!(
                batches = recovered.len(),
                up_to = lsn,
                "the store applied batches from its write-ahead log"
            );
        }
        // Everything logged is now durable in the data file.
        wal.rewind();
        let last_seq = last_key_u64(&db, Table::ChangeLog)?;
        let (head_tx, head) = watch::channel(last_seq);
        let start = writer::Start {
            wal,
            lsn,
            seq: last_seq,
            replayed: recovered.len() as u64,
        };
        let writer = writer::spawn(db.clone(), start, head_tx)?;
        Ok(Store {
            inner: Arc::new(Inner { db, writer, head }),
        })
    }

    /// Runs `command` inside the writer's transaction and returns its result once the
    /// transaction holding it is durably committed. If the command returns an error,
    /// none of its writes or change-log entries happen.
    pub async fn write<R, E, F>(&self, command: F) -> Result<R, E>
    where
        F: FnOnce(&mut Txn<'_, '_>) -> Result<R, E> + Send + 'static,
        R: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.inner.writer.submit(command).await
    }

    /// A consistent snapshot for reading.
    pub fn read(&self) -> Result<ReadTxn, StoreError> {
        let txn = self.inner.db.begin_read().map_err(StoreError::io)?;
        Ok(ReadTxn { txn })
    }

    /// The last committed change-log sequence, updated after every durable commit.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.inner.head.clone()
    }

    /// The last committed change-log sequence now.
    pub fn head(&self) -> u64 {
        *self.inner.head.borrow()
    }

    /// Why the writer stopped, if it has: no write can succeed until a restart, and
    /// `/healthz` says so.
    pub fn halted(&self) -> Option<String> {
        self.inner.writer.halted()
    }

    /// Why the last batch failed (nothing of it was saved), while no batch has
    /// committed since: the writer goes on, but writes fail (a full disk, say).
    pub fn failing(&self) -> Option<String> {
        self.inner.writer.failing()
    }

    /// Counters of the writer since start (for `/metrics`).
    pub fn writer_stats(&self) -> WriterStats {
        self.inner.writer.stats()
    }
}

/// Creates every table and the store's id; returns the id and the last logged batch
/// the data file holds.
fn prepare(db: &Database) -> Result<(u64, u64), StoreError> {
    let mut wtxn = db.begin_write().map_err(StoreError::io)?;
    wtxn.set_quick_repair(true);
    for t in Table::ALL {
        wtxn.open_table(t.def()).map_err(StoreError::io)?;
    }
    let (id, applied) = {
        let mut t = wtxn
            .open_table(Table::Store.def())
            .map_err(StoreError::io)?;
        let read = |t: &redb::Table<&[u8], &[u8]>, key: &[u8]| -> Result<Option<u64>, StoreError> {
            match t.get(key).map_err(StoreError::io)? {
                None => Ok(None),
                Some(v) => decode_u64(v.value()).map(Some).ok_or_else(|| {
                    StoreError::Corrupt(format!(
                        "the store's {} is damaged",
                        String::from_utf8_lossy(key)
                    ))
                }),
            }
        };
        let id = match read(&t, STORE_ID)? {
            Some(id) => {
                // A file from before formats were recorded is format 1.
                let format = read(&t, FORMAT_KEY)?.unwrap_or(1);
                if format != FORMAT {
                    return Err(StoreError::Format(format));
                }
                id
            }
            None => {
                let id = new_id();
                t.insert(STORE_ID, u64_key(id).as_slice())
                    .map_err(StoreError::io)?;
                t.insert(FORMAT_KEY, u64_key(FORMAT).as_slice())
                    .map_err(StoreError::io)?;
                id
            }
        };
        (id, read(&t, WAL_LSN)?.unwrap_or(0))
    };
    wtxn.commit().map_err(StoreError::io)?;
    Ok((id, applied))
}

/// A random non-zero id for a new data file (the standard library seeds
/// `RandomState` from the operating system's random source).
fn new_id() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.finish().max(1)
}

/// Applies logged batches to the data file in one durable transaction.
fn replay(db: &Database, batches: &[wal::Recovered]) -> Result<(), StoreError> {
    let mut wtxn = db.begin_write().map_err(StoreError::io)?;
    wtxn.set_quick_repair(true);
    {
        let mut tables = Table::ALL
            .iter()
            .map(|t| wtxn.open_table(t.def()).map_err(StoreError::io))
            .collect::<Result<Vec<_>, _>>()?;
        let mut last = 0;
        for batch in batches {
            for effect in wal::decode(&batch.payload)? {
                match effect {
                    wal::Effect::Put(t, k, v) => {
                        tables[t.index()].insert(k, v).map_err(StoreError::io)?;
                    }
                    wal::Effect::Delete(t, k) => {
                        tables[t.index()].remove(k).map_err(StoreError::io)?;
                    }
                }
            }
            last = batch.lsn;
        }
        tables[Table::Store.index()]
            .insert(WAL_LSN, u64_key(last).as_slice())
            .map_err(StoreError::io)?;
    }
    wtxn.commit().map_err(StoreError::io)
}

fn last_key_u64(db: &Database, table: Table) -> Result<u64, StoreError> {
    let rtxn = db.begin_read().map_err(StoreError::io)?;
    let t = rtxn.open_table(table.def()).map_err(StoreError::io)?;
    let last = t.last().map_err(StoreError::io)?;
    match last {
        None => Ok(0),
        Some((k, _)) => decode_u64(k.value())
            .ok_or_else(|| StoreError::Corrupt(format!("bad key in {}", table.name()))),
    }
}

/// Big-endian `u64` key bytes; they sort as the numbers do.
pub fn u64_key(n: u64) -> [u8; 8] {
    n.to_be_bytes()
}

/// Reads a big-endian `u64` from exactly eight bytes.
pub fn decode_u64(b: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(b.try_into().ok()?))
}

/// A read-only snapshot.
pub struct ReadTxn {
    txn: redb::ReadTransaction,
}

impl ReadTxn {
    /// The value at `key`, if any.
    pub fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let t = self.txn.open_table(table.def()).map_err(StoreError::io)?;
        Ok(t.get(key)
            .map_err(StoreError::io)?
            .map(|v| v.value().to_vec()))
    }

    /// Visits the entries whose keys fall in `range`, in key order (or reverse order),
    /// until `visit` breaks.
    pub fn scan<'r>(
        &self,
        table: Table,
        range: impl RangeBounds<&'r [u8]>,
        reverse: bool,
        mut visit: impl FnMut(&[u8], &[u8]) -> ControlFlow<()>,
    ) -> Result<(), StoreError> {
        let t = self.txn.open_table(table.def()).map_err(StoreError::io)?;
        let range = (
            clone_bound(range.start_bound()),
            clone_bound(range.end_bound()),
        );
        let iter = t.range::<&[u8]>(range).map_err(StoreError::io)?;
        if reverse {
            drive(iter.rev(), &mut visit)
        } else {
            drive(iter, &mut visit)
        }
    }
}

/// What both a snapshot ([`ReadTxn`]) and a command's transaction ([`Txn`]) can read,
/// for code that must see the same facts inside and outside a write (who may act in
/// which company, say).
pub trait Reader {
    /// The value at `key`, if any.
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// Every entry whose key starts with `prefix`, in key order (small ranges only:
    /// the whole range is collected).
    fn scan_prefix(&self, table: Table, prefix: &[u8]) -> Result<Vec<KeyValue>, StoreError>;
}

impl Reader for ReadTxn {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        ReadTxn::get(self, table, key)
    }

    fn scan_prefix(&self, table: Table, prefix: &[u8]) -> Result<Vec<KeyValue>, StoreError> {
        let mut out = Vec::new();
        let end = prefix_end(prefix);
        let visit = |k: &[u8], v: &[u8]| {
            out.push((k.to_vec(), v.to_vec()));
            ControlFlow::Continue(())
        };
        match &end {
            Some(end) => self.scan(table, prefix..end.as_slice(), false, visit)?,
            None => self.scan(table, prefix.., false, visit)?,
        }
        Ok(out)
    }
}

impl Reader for Txn<'_, '_> {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Txn::get(self, table, key)
    }

    fn scan_prefix(&self, table: Table, prefix: &[u8]) -> Result<Vec<KeyValue>, StoreError> {
        Txn::scan_prefix(self, table, prefix)
    }
}

/// One item of a redb range over byte tables.
type RangeItem<'a> = Result<
    (
        redb::AccessGuard<'a, &'static [u8]>,
        redb::AccessGuard<'a, &'static [u8]>,
    ),
    redb::StorageError,
>;

fn drive<'a>(
    iter: impl Iterator<Item = RangeItem<'a>>,
    visit: &mut impl FnMut(&[u8], &[u8]) -> ControlFlow<()>,
) -> Result<(), StoreError> {
    for item in iter {
        let (k, v) = item.map_err(StoreError::io)?;
        if visit(k.value(), v.value()).is_break() {
            break;
        }
    }
    Ok(())
}

fn clone_bound<'a>(b: Bound<&&'a [u8]>) -> Bound<&'a [u8]> {
    match b {
        Bound::Included(k) => Bound::Included(*k),
        Bound::Excluded(k) => Bound::Excluded(*k),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// The smallest key greater than every key starting with `prefix` (for prefix scans).
/// `None` when no such key exists (the prefix is all `0xff`).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests;
