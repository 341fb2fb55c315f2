//! Safe retries: an API request sent with an `Idempotency-Key` is done once; a retry
//! with the same key and the same request gets the first answer back.
//!
//! The key is claimed (durably) before the request runs and its answer stored after,
//! per user: `company | user | key` in `Table::Idempotency`. What a retry meets:
//! * the stored answer, when the first request was answered ([`Claim::Replay`]);
//! * [`Claim::Mismatch`] when the key was used for a different request (method, path,
//!   content type or body differ);
//! * [`Claim::InFlight`] while the first request is still running;
//! * [`Claim::Interrupted`] when the first request was claimed by an earlier run of
//!   the appliance and never answered: it may or may not have been applied, and the
//!   kernel will not guess (a retry under a new key is the caller's decision).
//!
//! Keys are kept for [`KEY_LIFETIME_MS`]; an older claim counts as absent.

use nexus_store::Table;
use serde::{Deserialize, Serialize};

use crate::Kernel;
use crate::error::KernelError;
use crate::perm::Principal;
use crate::record::unix_ms;

/// How long a key protects against a duplicate: one day.
pub const KEY_LIFETIME_MS: i64 = 24 * 3600 * 1000;

/// The longest key accepted (printable ASCII).
pub const MAX_KEY_LEN: usize = 255;

/// An answer as it was sent, to send again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredResponse {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    fingerprint: Vec<u8>,
    at_ms: i64,
    /// The run of the appliance that claimed it.
    boot: u64,
    response: Option<StoredResponse>,
}

/// What claiming a key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Nobody used the key: run the request, then [`Kernel::finish_idempotent`].
    Fresh,
    Replay(StoredResponse),
    Mismatch,
    InFlight,
    Interrupted,
}

/// Checks a key's shape: 1 to [`MAX_KEY_LEN`] printable ASCII characters.
pub fn check_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
        Err(format!(
            "the Idempotency-Key header must be 1 to {MAX_KEY_LEN} printable ASCII characters \
             without spaces"
        ))
    } else {
        Ok(())
    }
}

fn slot(who: &Principal, key: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(16 + key.len());
    k.extend_from_slice(&who.company.to_be_bytes());
    k.extend_from_slice(&who.user_id.to_be_bytes());
    k.extend_from_slice(key.as_bytes());
    k
}

fn encode(e: &Entry) -> Result<Vec<u8>, KernelError> {
    let mut out = Vec::new();
    ciborium::into_writer(e, &mut out)
        .map_err(|e| KernelError::Internal(format!("encoding an idempotency key: {e}")))?;
    Ok(out)
}

fn decode(bytes: &[u8]) -> Result<Entry, KernelError> {
    ciborium::from_reader(bytes)
        .map_err(|e| KernelError::Internal(format!("an idempotency key is damaged: {e}")))
}

impl Kernel {
    /// Forgets the keys older than [`KEY_LIFETIME_MS`] (a scheduled job); returns how
    /// many.
    pub(crate) async fn prune_idempotency(&self) -> Result<u64, KernelError> {
        let clock = self.shared_clock();
        self.store()
            .write(move |txn| {
                let now = unix_ms(clock.now());
                let mut n = 0;
                for (key, bytes) in txn.scan_prefix(Table::Idempotency, &[])? {
                    if now.saturating_sub(decode(&bytes)?.at_ms) >= KEY_LIFETIME_MS {
                        txn.delete(Table::Idempotency, key);
                        n += 1;
                    }
                }
                Ok(n)
            })
            .await
    }

    /// Claims `key` for the request whose fingerprint (a hash of method, path, content
    /// type and body) is given; see [`Claim`].
    pub async fn claim_idempotent(
        &self,
        who: &Principal,
        key: &str,
        fingerprint: [u8; 32],
    ) -> Result<Claim, KernelError> {
        check_key(key).map_err(KernelError::BadRequest)?;
        let slot = slot(who, key);
        let now = unix_ms(self.clock().now());
        let boot = self.boot_id();
        self.store()
            .write(move |txn| {
                if let Some(bytes) = txn.get(Table::Idempotency, &slot)? {
                    let old = decode(&bytes)?;
                    if now.saturating_sub(old.at_ms) < KEY_LIFETIME_MS {
                        return Ok(if old.fingerprint != fingerprint {
                            Claim::Mismatch
                        } else if let Some(r) = old.response {
                            Claim::Replay(r)
                        } else if old.boot == boot {
                            Claim::InFlight
                        } else {
                            Claim::Interrupted
                        });
                    }
                }
                let entry = Entry {
                    fingerprint: fingerprint.to_vec(),
                    at_ms: now,
                    boot,
                    response: None,
                };
                txn.put(Table::Idempotency, slot, encode(&entry)?);
                Ok(Claim::Fresh)
            })
            .await
    }

    /// Stores the answer to a [`Claim::Fresh`] request, for retries; `None` releases
    /// the key instead (the request failed on the appliance's side and changed
    /// nothing, so a retry may run it again).
    pub async fn finish_idempotent(
        &self,
        who: &Principal,
        key: &str,
        response: Option<StoredResponse>,
    ) -> Result<(), KernelError> {
        let slot = slot(who, key);
        self.store()
            .write(move |txn| {
                let Some(bytes) = txn.get(Table::Idempotency, &slot)? else {
                    return Ok(());
                };
                let mut entry = decode(&bytes)?;
                match response {
                    Some(r) => {
                        entry.response = Some(r);
                        txn.put(Table::Idempotency, slot, encode(&entry)?);
                    }
                    None => txn.delete(Table::Idempotency, slot),
                }
                Ok(())
            })
            .await
    }
}

/// The fingerprint of a request: its parts, each length-prefixed, hashed.
pub fn fingerprint(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(b"nexus-idempotency-v1\0");
    for p in parts {
        h.update(&(p.len() as u64).to_be_bytes());
        h.update(p);
    }
    *h.finalize().as_bytes()
}
