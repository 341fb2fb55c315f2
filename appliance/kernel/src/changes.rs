//! The change log as the kernel writes it, and the tailer pattern that follows it.
//!
//! A tailer is anything derived from the change log (live updates now; the search
//! indexer, replication shipper and webhooks later). It keeps the last sequence it
//! applied in the cursors table, so after a restart it catches up from there.

use std::ops::ControlFlow;

use nexus_store::{Table, decode_u64, u64_key};
use serde::{Deserialize, Serialize};

use crate::Kernel;
use crate::error::KernelError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    Create,
    Update,
    Delete,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Create => "create",
            Op::Update => "update",
            Op::Delete => "delete",
        }
    }
}

/// One entry of the change log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub entity: String,
    pub company: u64,
    pub id: u64,
    pub op: Op,
    pub version: u64,
    pub actor: u64,
    pub at_ms: i64,
}

impl Change {
    pub(crate) fn encode(&self) -> Result<Vec<u8>, KernelError> {
        let mut out = Vec::with_capacity(96);
        ciborium::into_writer(self, &mut out)
            .map_err(|e| KernelError::Internal(format!("encoding a change: {e}")))?;
        Ok(out)
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Change, KernelError> {
        ciborium::from_reader(bytes)
            .map_err(|e| KernelError::Internal(format!("a change-log entry is damaged: {e}")))
    }
}

impl Kernel {
    /// Up to `limit` changes with a sequence greater than `after`, in order.
    pub fn changes_since(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Change)>, KernelError> {
        let read = self.store().read()?;
        let start = u64_key(after.saturating_add(1));
        let mut out = Vec::new();
        let mut err = None;
        read.scan(Table::ChangeLog, start.as_slice().., false, |k, v| {
            match (decode_u64(k), Change::decode(v)) {
                (Some(seq), Ok(c)) => out.push((seq, c)),
                (_, Err(e)) => {
                    err = Some(e);
                    return ControlFlow::Break(());
                }
                (None, _) => {}
            }
            if out.len() >= limit {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })?;
        match err {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    /// The last sequence the named tailer applied.
    pub fn cursor(&self, tailer: &str) -> Result<u64, KernelError> {
        let read = self.store().read()?;
        Ok(read
            .get(Table::Cursors, tailer.as_bytes())?
            .and_then(|b| decode_u64(&b))
            .unwrap_or(0))
    }

    async fn save_cursor(&self, tailer: &'static str, seq: u64) -> Result<(), KernelError> {
        self.store()
            .write(move |txn| {
                txn.put(
                    Table::Cursors,
                    tailer.as_bytes().to_vec(),
                    u64_key(seq).to_vec(),
                );
                Ok::<_, KernelError>(())
            })
            .await
    }
}

/// Something derived from the change log.
pub trait Tailer: Send + 'static {
    /// Stable name; the key of its cursor.
    fn name(&self) -> &'static str;
    /// Applies one change. Called in sequence order, exactly once per sequence unless
    /// the process dies between applying and saving the cursor (then again after
    /// restart: appliers must be idempotent).
    fn apply(&mut self, seq: u64, change: &Change) -> Result<(), KernelError>;
}

/// How many changes a tailer applies before saving its cursor.
const TAIL_CHUNK: usize = 1000;

/// Follows the change log forever: catches up from the saved cursor, then applies
/// each new commit as it lands. Returns only if the store goes away.
pub async fn run_tailer(kernel: Kernel, mut tailer: impl Tailer) -> Result<(), KernelError> {
    let mut head = kernel.store().subscribe();
    let mut cursor = kernel.cursor(tailer.name())?;
    loop {
        loop {
            let batch = kernel.changes_since(cursor, TAIL_CHUNK)?;
            let Some(&(last, _)) = batch.last() else {
                break;
            };
            for (seq, change) in &batch {
                if let Err(e) = tailer.apply(*seq, change) {
                    tracing::warn!(tailer = tailer.name(), seq, error = %e, "tailer could not apply a change");
                }
            }
            cursor = last;
            kernel.save_cursor(tailer.name(), cursor).await?;
        }
        if head.changed().await.is_err() {
            return Ok(());
        }
    }
}
