//! The event log: one entry per change of state, and it is also the audit trail.
//!
//! An [`Event`] carries the command it belongs to (the sequence of that command's first
//! event, so a tailer applies whole commands), the entity and record, the operation,
//! the version after the change (a delete bumps it too), the actor, the time, and the
//! before and after images (`after` is `None` for a delete: the tombstone). Each event
//! carries the hash of the one before it, so a rewritten event breaks every hash after
//! it; the head (sequence ‖ hash) is kept in `Meta` in the same transaction, so a
//! removed tail is detected too. Events are appended inside the command that makes the
//! change, under the change log's gap-free sequence: the event's `seq` is its key.

use std::ops::ControlFlow;

use nexus_store::{ReadTxn, Table, Txn, decode_u64, u64_key};
use serde::{Deserialize, Serialize};

use crate::error::KernelError;

/// Domain separation for the event hash; bump the suffix if the encoding changes.
const HASH_CONTEXT: &[u8] = b"nexus-event-v1\0";
/// Meta key of the chain head: sequence (8 bytes, big-endian) ‖ hash (32 bytes).
const META_HEAD: &[u8] = b"event_head";
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

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

/// A JSON object: a record's image as the audit trail and the API show it.
pub type Image = serde_json::Map<String, serde_json::Value>;

/// One entry of the event log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Position in the log (gap-free, from 1).
    pub seq: u64,
    /// The command this event belongs to: the `seq` of that command's first event.
    /// Events of one command are contiguous.
    pub command: u64,
    /// Unix time in milliseconds, read on the writer thread (so it follows `seq`).
    pub at_ms: i64,
    pub actor: u64,
    pub actor_name: String,
    pub company: u64,
    pub entity: String,
    pub record: u64,
    pub op: Op,
    /// The record's version after the change; a delete bumps it as well.
    pub version: u64,
    pub before: Option<Image>,
    /// The after-image; `None` for a delete (the tombstone).
    pub after: Option<Image>,
    pub prev_hash: String,
    pub hash: String,
}

impl Event {
    fn compute_hash(&self) -> Result<String, KernelError> {
        let mut unsigned = self.clone();
        unsigned.hash = String::new();
        let mut bytes = Vec::with_capacity(512);
        ciborium::into_writer(&unsigned, &mut bytes)
            .map_err(|e| KernelError::Internal(format!("encoding an event: {e}")))?;
        let mut h = blake3::Hasher::new();
        h.update(HASH_CONTEXT);
        h.update(&bytes);
        Ok(h.finalize().to_hex().to_string())
    }

    fn encode(&self) -> Result<Vec<u8>, KernelError> {
        let mut out = Vec::with_capacity(512);
        ciborium::into_writer(self, &mut out)
            .map_err(|e| KernelError::Internal(format!("encoding an event: {e}")))?;
        Ok(out)
    }

    /// Reads a stored event; a damaged one is an error naming what failed.
    pub fn decode(bytes: &[u8]) -> Result<Event, KernelError> {
        ciborium::from_reader(bytes)
            .map_err(|e| KernelError::Internal(format!("an event is damaged: {e}")))
    }

    /// The fields whose value differs between before and after.
    pub fn changed_fields(&self) -> Vec<String> {
        let empty = Image::new();
        let before = self.before.as_ref().unwrap_or(&empty);
        let after = self.after.as_ref().unwrap_or(&empty);
        let mut names: Vec<String> = before.keys().chain(after.keys()).cloned().collect();
        names.sort();
        names.dedup();
        names.retain(|k| before.get(k) != after.get(k));
        names
    }
}

/// What the caller knows of a change; the log fields are filled in by [`append`].
pub(crate) struct NewEvent {
    pub at_ms: i64,
    pub actor: u64,
    pub actor_name: String,
    pub company: u64,
    pub entity: &'static str,
    pub record: u64,
    pub op: Op,
    pub version: u64,
    pub before: Option<Image>,
    pub after: Option<Image>,
}

/// Appends an event chained to the current head, in this command; returns its `seq`.
pub(crate) fn append(txn: &mut Txn<'_, '_>, new: NewEvent) -> Result<u64, KernelError> {
    let (prev_seq, prev_hash) = match txn.get(Table::Meta, META_HEAD)? {
        Some(head) => decode_head(&head)?,
        None => (0, GENESIS.to_string()),
    };
    // Only the kernel appends, so `seq` is `prev_seq + 1`; should anything else ever
    // have written into the log, the new event still links to the last real one, and
    // `verify` names the foreign entry rather than every write failing from then on.
    let _ = prev_seq;
    let seq = txn.next_seq();
    let mut event = Event {
        seq,
        command: txn.command_seq(),
        at_ms: new.at_ms,
        actor: new.actor,
        actor_name: new.actor_name,
        company: new.company,
        entity: new.entity.to_string(),
        record: new.record,
        op: new.op,
        version: new.version,
        before: new.before,
        after: new.after,
        prev_hash,
        hash: String::new(),
    };
    event.hash = event.compute_hash()?;
    let bytes = event.encode()?;
    crate::tlog::append(txn, seq, &bytes)?;
    let emitted = txn.emit(bytes);
    debug_assert_eq!(emitted, seq);
    let mut head = u64_key(seq).to_vec();
    head.extend(hex::decode(&event.hash).map_err(|e| KernelError::Internal(e.to_string()))?);
    txn.put(Table::Meta, META_HEAD.to_vec(), head);
    Ok(seq)
}

fn decode_head(head: &[u8]) -> Result<(u64, String), KernelError> {
    match (head.get(..8).and_then(decode_u64), head.get(8..)) {
        (Some(seq), Some(hash)) if hash.len() == 32 => Ok((seq, hex::encode(hash))),
        _ => Err(KernelError::Internal(
            "the event log's head is damaged".into(),
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
    read.scan(Table::ChangeLog, .., false, |k, v| {
        let entry = match Event::decode(v) {
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
            "the audit chain (the event log) is broken: {reason}"
        ))),
        None => Ok(ChainReport {
            entries: count,
            head: expected_prev,
        }),
    }
}
