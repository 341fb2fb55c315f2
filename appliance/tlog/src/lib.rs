//! The transparency log's verifiable parts, with no store and no server inside: the
//! appliance appends to and proves from it, and `nexus-verify` checks what it exported
//! on an auditor's machine.
//!
//! * [`merkle`]: RFC 6962 / RFC 9162 Merkle trees — leaf and node hashes, roots,
//!   inclusion and consistency proofs and their verification.
//! * [`note`]: C2SP `tlog-checkpoint` bodies signed as C2SP `signed-note`s (ed25519).
//! * [`bundle`]: the audit bundle's format and its offline verification.

pub mod bundle;
pub mod merkle;
pub mod note;

pub use bundle::{Bundle, Consistency, Entry, FORMAT, Failure, Manifest, Trust, Verdict};
pub use merkle::{Hash, MemoryTree, Nodes, ProofError};
pub use note::{Checkpoint, LogKey, NoteError, Verifier};

/// An entry of a bundle from an event's stored bytes and its inclusion proof (empty
/// for a complete bundle). `None` when the bytes are not CBOR.
pub fn entry(seq: u64, leaf: &[u8], proof: &[Hash]) -> Option<Entry> {
    use base64::Engine;
    let event: serde_json::Value = ciborium::from_reader(leaf).ok()?;
    Some(Entry {
        seq,
        leaf: base64::engine::general_purpose::STANDARD.encode(leaf),
        proof: proof.iter().map(hex::encode).collect(),
        event,
    })
}

#[cfg(test)]
mod tests;
