//! The transparency log's signed face: the box's log key (made at first boot by the
//! server, readable only by the service), checkpoints signed with it, proofs over the
//! JSON API for administrators, and the audit bundle an auditor verifies offline with
//! `nexus-verify` (see `docs/auditor-guide.md`).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use nexus_kernel::{Kernel, KernelError, Principal};
use nexus_tlog::{Bundle, Checkpoint, Consistency, FORMAT, LogKey, Manifest, Verifier};
use serde::Deserialize;
use serde_json::{Value as J, json};

use crate::AppState;
use crate::error::WebError;
use crate::session::Auth;

/// Signs checkpoints for this box's log.
pub struct Notary {
    key: LogKey,
}

/// What an audit bundle holds.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Entries from this sequence number on (default: the first).
    pub from: Option<u64>,
    /// Entries up to this one (default: the last).
    pub to: Option<u64>,
    /// Only this company's entries (each with its inclusion proof).
    pub company: Option<u64>,
}

impl Notary {
    pub fn new(key: LogKey) -> Notary {
        Notary { key }
    }

    pub fn verifier(&self) -> Verifier {
        self.key.verifier()
    }

    /// Signs a checkpoint of the log as it is now and keeps it (once per size);
    /// returns the signed note.
    pub async fn publish(&self, kernel: &Kernel) -> Result<(Checkpoint, String), KernelError> {
        let head = kernel.tree_head()?;
        let cp = Checkpoint {
            origin: self.key.name().to_string(),
            size: head.size,
            root: head.root,
        };
        let note = cp
            .sign(&self.key)
            .map_err(|e| KernelError::Internal(format!("signing a checkpoint: {e}")))?;
        // ed25519 signatures are deterministic: publishing one size twice keeps one note.
        if !kernel.has_checkpoint(head.size)? {
            kernel.keep_checkpoint(head.size, note.clone()).await?;
        }
        Ok((cp, note))
    }

    /// An audit bundle of the log now: a fresh checkpoint, the selected entries, and
    /// the proofs that the tree extends every checkpoint published before.
    pub async fn bundle(&self, kernel: &Kernel, sel: &Selection) -> Result<Bundle, KernelError> {
        let (cp, note) = self.publish(kernel).await?;
        let from = sel.from.unwrap_or(1).max(1);
        let to = sel.to.unwrap_or(cp.size).min(cp.size);
        let complete = from == 1 && to == cp.size && sel.company.is_none();
        let mut entries = Vec::new();
        for (seq, bytes) in kernel.log_leaves(from, to)? {
            let event = nexus_kernel::Event::decode(&bytes)?;
            if sel.company.is_some_and(|c| c != event.company) {
                continue;
            }
            let proof = match complete {
                true => Vec::new(),
                false => kernel.inclusion_proof(seq, cp.size)?,
            };
            entries.push(
                nexus_tlog::entry(seq, &bytes, &proof)
                    .ok_or_else(|| KernelError::Internal(format!("event {seq} is not CBOR")))?,
            );
        }
        let mut consistency = Vec::new();
        for (size, earlier) in kernel.checkpoints()? {
            if size < cp.size {
                consistency.push(Consistency {
                    checkpoint: earlier,
                    proof: kernel
                        .consistency_proof(size, cp.size)?
                        .iter()
                        .map(hex::encode)
                        .collect(),
                });
            }
        }
        let mut filter = BTreeMap::new();
        if let Some(c) = sel.company {
            filter.insert("company".to_string(), json!(c));
        }
        let v = self.verifier();
        Ok(Bundle {
            manifest: Manifest {
                format: FORMAT.into(),
                origin: cp.origin.clone(),
                key: v.encode(),
                fingerprint: v.fingerprint(),
                size: cp.size,
                first: entries.first().map_or(0, |e| e.seq),
                last: entries.last().map_or(0, |e| e.seq),
                complete,
                filter,
            },
            checkpoint: note,
            entries,
            consistency,
            key_copy: Some(format!("{}\n", v.encode())),
        })
    }
}

fn query<T: for<'de> Deserialize<'de>>(raw: Option<String>, shape: &str) -> Result<T, WebError> {
    serde_urlencoded::from_str(raw.as_deref().unwrap_or(""))
        .map_err(|e| WebError::Malformed(format!("give ?{shape} with whole numbers ({e})")))
}

fn admin_only(who: &Principal) -> Result<(), WebError> {
    // One log for the whole box: its administrators (of the first company) only.
    if who.administers_box() {
        Ok(())
    } else {
        Err(KernelError::Forbidden {
            action: "read",
            entity: "the transparency log (the box's administrators only)".into(),
        }
        .into())
    }
}

/// `GET /api/v1/audit/checkpoint`: a checkpoint of the log now, signed (text/plain,
/// a C2SP signed note).
pub async fn checkpoint(State(state): State<AppState>, auth: Auth) -> Result<Response, WebError> {
    admin_only(auth.who())?;
    let (_, note) = state.notary.publish(&state.kernel).await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], note).into_response())
}

/// `GET /api/v1/audit/key`: the key checkpoints are signed with.
pub async fn key(State(state): State<AppState>, auth: Auth) -> Result<Json<J>, WebError> {
    admin_only(auth.who())?;
    let v = state.notary.verifier();
    Ok(Json(json!({
        "origin": v.name(),
        "key": v.encode(),
        "fingerprint": v.fingerprint(),
    })))
}

#[derive(Deserialize)]
pub struct InclusionQuery {
    seq: u64,
    size: u64,
}

/// `GET /api/v1/audit/inclusion?seq=N&size=M`: entry N's proof in the tree of M.
pub async fn inclusion(
    State(state): State<AppState>,
    auth: Auth,
    RawQuery(raw): RawQuery,
) -> Result<Json<J>, WebError> {
    admin_only(auth.who())?;
    let q: InclusionQuery = query(raw, "seq=N&size=M")?;
    let proof = state.kernel.inclusion_proof(q.seq, q.size)?;
    let leaf = state
        .kernel
        .log_leaves(q.seq, q.seq)?
        .pop()
        .map(|(_, bytes)| nexus_tlog::merkle::leaf_hash(&bytes));
    Ok(Json(json!({
        "seq": q.seq,
        "index": q.seq - 1,
        "size": q.size,
        "leaf_hash": leaf.map(hex::encode),
        "root": hex::encode(state.kernel.tree_root(q.size)?),
        "proof": proof.iter().map(hex::encode).collect::<Vec<_>>(),
    })))
}

#[derive(Deserialize)]
pub struct ConsistencyQuery {
    from: u64,
    to: u64,
}

/// `GET /api/v1/audit/consistency?from=N&to=M`: the tree of N is a prefix of M's.
pub async fn consistency(
    State(state): State<AppState>,
    auth: Auth,
    RawQuery(raw): RawQuery,
) -> Result<Json<J>, WebError> {
    admin_only(auth.who())?;
    let q: ConsistencyQuery = query(raw, "from=N&to=M")?;
    let proof = state.kernel.consistency_proof(q.from, q.to)?;
    Ok(Json(json!({
        "from": q.from,
        "to": q.to,
        "from_root": hex::encode(state.kernel.tree_root(q.from)?),
        "to_root": hex::encode(state.kernel.tree_root(q.to)?),
        "proof": proof.iter().map(hex::encode).collect::<Vec<_>>(),
    })))
}
