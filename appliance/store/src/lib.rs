//! The durable store: the only crate that knows redb.
//!
//! * [`Table`] is the one registry of tables.
//! * [`Store::write`] sends a command to the single writer thread, which runs many
//!   commands in one redb write transaction and acknowledges them after one durable
//!   commit (group commit). A command that fails leaves no trace: its writes live in an
//!   overlay that is merged into the transaction only when the command succeeds.
//! * [`Store::read`] gives a snapshot that never blocks and is never blocked by writes.
//! * The change log: a command calls [`Txn::emit`]; the writer assigns gap-free,
//!   monotonic sequence numbers and publishes the committed head through
//!   [`Store::subscribe`].

mod tables;
mod writer;

use std::ops::{Bound, ControlFlow, RangeBounds};
use std::path::Path;
use std::sync::Arc;

use redb::{Database, ReadableDatabase, ReadableTable};
use tokio::sync::watch;

pub use tables::Table;
pub use writer::{Txn, WriterStats};

/// What can go wrong inside the store. Callers see messages, never redb types.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("the data file could not be opened: {0}")]
    Open(String),
    #[error("the data file is already in use by another nexus process ({0})")]
    Locked(String),
    #[error("storage failure: {0}")]
    Io(String),
    #[error("the store's writer has stopped; restart the appliance")]
    WriterGone,
    #[error("the write could not be completed and nothing was saved; see the server log")]
    CommandFailed,
    #[error("stored data is damaged: {0}")]
    Corrupt(String),
}

impl StoreError {
    fn io(e: impl std::fmt::Display) -> Self {
        StoreError::Io(e.to_string())
    }
}

/// How many commands one transaction may carry at most.
const MAX_BATCH: usize = 4096;

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
    /// Opens (or creates) the store file at `path` and starts its writer thread.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let db = Database::builder().create(path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => {
                StoreError::Locked(path.display().to_string())
            }
            other => StoreError::Open(format!("{}: {other}", path.display())),
        })?;
        let db = Arc::new(db);
        {
            let wtxn = db.begin_write().map_err(StoreError::io)?;
            for t in Table::ALL {
                wtxn.open_table(t.def()).map_err(StoreError::io)?;
            }
            wtxn.commit().map_err(StoreError::io)?;
        }
        let last_seq = last_key_u64(&db, Table::ChangeLog)?;
        let (head_tx, head) = watch::channel(last_seq);
        let writer = writer::spawn(db.clone(), last_seq, head_tx)?;
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

    /// Counters of the writer since start (for `/metrics`).
    pub fn writer_stats(&self) -> WriterStats {
        self.inner.writer.stats()
    }
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
