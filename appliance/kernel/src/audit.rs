//! The audit log: one entry per record change (who, when, before/after), each entry
//! carrying the hash of the one before it, so a rewritten entry breaks every hash
//! after it. Entries are appended inside the same transaction as the change itself.

use std::ops::ControlFlow;

use nexus_store::{ReadTxn, Table, Txn, decode_u64, u64_key};
use serde::{Deserialize, Serialize};

use crate::error::KernelError;

/// Domain separation for the entry hash; bump the suffix if the encoding changes.
const HASH_CONTEXT: &[u8] = b"nexus-audit-v1\0";
/// Meta key of the chain head: sequence (8 bytes, big-endian) ‖ hash (32 bytes).
const META_HEAD: &[u8] = b"audit_head";
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub seq: u64,
    /// Unix time in milliseconds.
    pub at_ms: i64,
    pub actor: u64,
    pub actor_name: String,
    pub company: u64,
    pub entity: String,
    pub record: u64,
    pub action: String,
    /// The record version after the change (before it, for a delete).
    pub version: u64,
    pub before: Option<serde_json::Map<String, serde_json::Value>>,
    pub after: Option<serde_json::Map<String, serde_json::Value>>,
    /// The change-log sequence of the same change.
    pub change_seq: u64,
    pub prev_hash: String,
    pub hash: String,
}

impl AuditEntry {
    fn compute_hash(&self) -> Result<String, KernelError> {
        let mut unsigned = self.clone();
        unsigned.hash = String::new();
        let mut bytes = Vec::with_capacity(512);
        ciborium::into_writer(&unsigned, &mut bytes)
            .map_err(|e| KernelError::Internal(format!("encoding an audit entry: {e}")))?;
        let mut h = blake3::Hasher::new();
        h.update(HASH_CONTEXT);
        h.update(&bytes);
        Ok(h.finalize().to_hex().to_string())
    }

    fn encode(&self) -> Result<Vec<u8>, KernelError> {
        let mut out = Vec::with_capacity(512);
        ciborium::into_writer(self, &mut out)
            .map_err(|e| KernelError::Internal(format!("encoding an audit entry: {e}")))?;
        Ok(out)
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<AuditEntry, KernelError> {
        ciborium::from_reader(bytes)
            .map_err(|e| KernelError::Internal(format!("an audit entry is damaged: {e}")))
    }

    /// The fields whose value differs between before and after.
    pub fn changed_fields(&self) -> Vec<String> {
        let empty = serde_json::Map::new();
        let before = self.before.as_ref().unwrap_or(&empty);
        let after = self.after.as_ref().unwrap_or(&empty);
        let mut names: Vec<String> = before.keys().chain(after.keys()).cloned().collect();
        names.sort();
        names.dedup();
        names.retain(|k| before.get(k) != after.get(k));
        names
    }
}

/// What the caller knows of a change; the chain fields are filled in by [`append`].
pub(crate) struct NewEntry {
    pub at_ms: i64,
    pub actor: u64,
    pub actor_name: String,
    pub company: u64,
    pub entity: &'static str,
    pub record: u64,
    pub action: &'static str,
    pub version: u64,
    pub before: Option<serde_json::Map<String, serde_json::Value>>,
    pub after: Option<serde_json::Map<String, serde_json::Value>>,
    pub change_seq: u64,
}

/// Appends an entry chained to the current head; returns its sequence.
pub(crate) fn append(txn: &mut Txn<'_, '_>, new: NewEntry) -> Result<u64, KernelError> {
    let (prev_seq, prev_hash) = match txn.get(Table::Meta, META_HEAD)? {
        Some(head) => decode_head(&head)?,
        None => (0, GENESIS.to_string()),
    };
    let mut entry = AuditEntry {
        seq: prev_seq + 1,
        at_ms: new.at_ms,
        actor: new.actor,
        actor_name: new.actor_name,
        company: new.company,
        entity: new.entity.to_string(),
        record: new.record,
        action: new.action.to_string(),
        version: new.version,
        before: new.before,
        after: new.after,
        change_seq: new.change_seq,
        prev_hash,
        hash: String::new(),
    };
    entry.hash = entry.compute_hash()?;
    txn.put(Table::Audit, u64_key(entry.seq).to_vec(), entry.encode()?);
    let mut head = u64_key(entry.seq).to_vec();
    head.extend(hex::decode(&entry.hash).map_err(|e| KernelError::Internal(e.to_string()))?);
    txn.put(Table::Meta, META_HEAD.to_vec(), head);
    Ok(entry.seq)
}

fn decode_head(head: &[u8]) -> Result<(u64, String), KernelError> {
    match (head.get(..8).and_then(decode_u64), head.get(8..)) {
        (Some(seq), Some(hash)) if hash.len() == 32 => Ok((seq, hex::encode(hash))),
        _ => Err(KernelError::Internal(
            "the audit chain head is damaged".into(),
        )),
    }
}

/// The outcome of checking the whole chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    pub entries: u64,
    /// The hash of the last entry: an auditor who noted it earlier can tell that
    /// nothing before it changed.
    pub head: String,
}

/// Walks the chain from the first entry and checks every link and hash.
pub fn verify(read: &ReadTxn) -> Result<ChainReport, KernelError> {
    let mut expected_prev = GENESIS.to_string();
    let mut expected_seq = 1u64;
    let mut failure: Option<String> = None;
    let mut count = 0u64;
    read.scan(Table::Audit, .., false, |k, v| {
        let entry = match AuditEntry::decode(v) {
            Ok(e) => e,
            Err(e) => {
                failure = Some(e.to_string());
                return ControlFlow::Break(());
            }
        };
        let problem = if decode_u64(k) != Some(entry.seq) {
            Some(format!(
                "entry stored under key {:?} claims sequence {}",
                decode_u64(k),
                entry.seq
            ))
        } else if entry.seq != expected_seq {
            Some(format!(
                "expected entry {expected_seq}, found {}",
                entry.seq
            ))
        } else if entry.prev_hash != expected_prev {
            Some(format!(
                "entry {} does not link to the entry before it",
                entry.seq
            ))
        } else {
            match entry.compute_hash() {
                Ok(h) if h == entry.hash => None,
                Ok(_) => Some(format!(
                    "entry {} was altered (its hash does not match)",
                    entry.seq
                )),
                Err(e) => Some(e.to_string()),
            }
        };
        if let Some(p) = problem {
            failure = Some(p);
            return ControlFlow::Break(());
        }
        expected_prev = entry.hash;
        expected_seq += 1;
        count += 1;
        ControlFlow::Continue(())
    })?;
    // The head is written with every entry: a log shorter than its head lost entries.
    if failure.is_none()
        && let Some(head) = read.get(Table::Meta, META_HEAD)?
    {
        let (seq, hash) = decode_head(&head)?;
        if seq != count || hash != expected_prev {
            failure = Some(format!(
                "the log ends at entry {count} but its recorded head is entry {seq}: entries were removed or replaced"
            ));
        }
    }
    match failure {
        Some(reason) => Err(KernelError::Conflict(format!(
            "the audit chain is broken: {reason}"
        ))),
        None => Ok(ChainReport {
            entries: count,
            head: expected_prev,
        }),
    }
}
