//! The audit bundle: what the box hands an auditor, and what [`verify`] checks with
//! nothing of the box at hand. `docs/auditor-guide.md` describes the format precisely
//! enough to write another verifier; in short, a directory with
//!
//! * `manifest.json` — format, the log's origin, its verifier key and fingerprint, the
//!   tree size the bundle proves against, the range of entries and any filter;
//! * `checkpoint.txt` — the signed checkpoint (C2SP signed note) at that size;
//! * `entries.jsonl` — one entry per line: its sequence number, its bytes exactly as
//!   they are leaves of the tree (base64 of the event's CBOR), its inclusion proof
//!   (unless the bundle holds the whole log), and a readable copy of the event;
//! * `consistency.jsonl` — earlier checkpoints the box published, each with the proof
//!   that it is a prefix of this bundle's tree.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};

use crate::merkle::{self, Hash, MemoryTree};
use crate::note::{Checkpoint, Verifier};

/// The format this code writes and reads.
pub const FORMAT: &str = "nexus-audit-bundle/1";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: String,
    /// The log's name: the checkpoint's origin and the key's name.
    pub origin: String,
    /// The verifier key (`name+hash+base64`).
    pub key: String,
    /// SHA-256 of the public key, hex: compare it with the one on the admin page.
    pub fingerprint: String,
    /// The tree size of `checkpoint.txt`.
    pub size: u64,
    /// The first and last sequence numbers of the entries (0 and 0 when none).
    pub first: u64,
    pub last: u64,
    /// Whether the entries are the whole log, 1..=size: the verifier rebuilds the tree.
    pub complete: bool,
    /// Filters that left entries out (a company, a record): then missing sequence
    /// numbers in the range are expected, and each entry must match the filter.
    #[serde(default)]
    pub filter: BTreeMap<String, serde_json::Value>,
}

/// One entry of the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub seq: u64,
    /// The leaf's bytes (the event's CBOR), base64.
    pub leaf: String,
    /// The inclusion proof (hex hashes, leaf side first); empty in a complete bundle.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub proof: Vec<String>,
    /// The event, readable; must say what the leaf says.
    pub event: serde_json::Value,
}

/// An earlier checkpoint and the proof that this bundle's tree extends it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Consistency {
    pub checkpoint: String,
    pub proof: Vec<String>,
}

/// A whole bundle in memory.
#[derive(Debug, Clone, PartialEq)]
pub struct Bundle {
    pub manifest: Manifest,
    pub checkpoint: String,
    pub entries: Vec<Entry>,
    pub consistency: Vec<Consistency>,
    /// `key.txt`, a copy of the manifest's key for the auditor to pin; must match it.
    pub key_copy: Option<String>,
}

/// Why a bundle could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    #[error("{file} line {line}: {message}")]
    Json {
        file: String,
        line: usize,
        message: String,
    },
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> ReadError + '_ {
    move |e| ReadError::Io(path.display().to_string(), e)
}

impl Bundle {
    /// Writes the bundle's files into `dir` (made if missing).
    pub fn write_to(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let json = |v: &dyn erased::Json| v.line();
        std::fs::write(
            dir.join("manifest.json"),
            serde_json::to_string_pretty(&self.manifest).map_err(std::io::Error::other)? + "\n",
        )?;
        std::fs::write(dir.join("checkpoint.txt"), &self.checkpoint)?;
        let mut entries = String::new();
        for e in &self.entries {
            entries.push_str(&json(e)?);
        }
        std::fs::write(dir.join("entries.jsonl"), entries)?;
        let mut consistency = String::new();
        for c in &self.consistency {
            consistency.push_str(&json(c)?);
        }
        std::fs::write(dir.join("consistency.jsonl"), consistency)?;
        if let Some(copy) = &self.key_copy {
            std::fs::write(dir.join("key.txt"), copy)?;
        }
        Ok(())
    }

    /// Reads a bundle written by [`Bundle::write_to`].
    pub fn read_from(dir: &Path) -> Result<Bundle, ReadError> {
        let path = dir.join("manifest.json");
        let text = std::fs::read_to_string(&path).map_err(io(&path))?;
        let manifest = serde_json::from_str(&text).map_err(|e| ReadError::Json {
            file: "manifest.json".into(),
            line: e.line(),
            message: e.to_string(),
        })?;
        let path = dir.join("checkpoint.txt");
        let checkpoint = std::fs::read_to_string(&path).map_err(io(&path))?;
        let entries = lines(dir, "entries.jsonl")?;
        let consistency = match dir.join("consistency.jsonl").exists() {
            true => lines(dir, "consistency.jsonl")?,
            false => Vec::new(),
        };
        let path = dir.join("key.txt");
        let key_copy = match path.exists() {
            true => Some(std::fs::read_to_string(&path).map_err(io(&path))?),
            false => None,
        };
        Ok(Bundle {
            manifest,
            checkpoint,
            entries,
            consistency,
            key_copy,
        })
    }
}

fn lines<T: for<'de> Deserialize<'de>>(dir: &Path, name: &str) -> Result<Vec<T>, ReadError> {
    let path = dir.join(name);
    let text = std::fs::read_to_string(&path).map_err(io(&path))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| ReadError::Json {
                file: name.into(),
                line: i + 1,
                message: e.to_string(),
            })
        })
        .collect()
}

mod erased {
    /// One JSON line.
    pub trait Json {
        fn line(&self) -> std::io::Result<String>;
    }
    impl<T: serde::Serialize> Json for T {
        fn line(&self) -> std::io::Result<String> {
            Ok(serde_json::to_string(self).map_err(std::io::Error::other)? + "\n")
        }
    }
}

/// What an auditor brings: the key they trust (pinned from an earlier visit or the
/// vendor's letter), and an earlier checkpoint they kept.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    pub key: Option<Verifier>,
    pub pinned: Option<String>,
}

/// A bundle that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub origin: String,
    pub fingerprint: String,
    pub size: u64,
    pub root: String,
    pub entries: u64,
    pub first: u64,
    pub last: u64,
    pub complete: bool,
    /// The pinned checkpoint's size, when one was given and the tree extends it.
    pub extends_pinned: Option<u64>,
    /// Whether the key was pinned by the auditor (else taken from the bundle).
    pub key_pinned: bool,
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "VERIFIED: the bundle is intact and signed by the log's key."
        )?;
        writeln!(f, "  log:         {}", self.origin)?;
        writeln!(
            f,
            "  key:         {} ({})",
            self.fingerprint,
            if self.key_pinned {
                "the key you pinned"
            } else {
                "taken from the bundle: compare it with the fingerprint you know"
            }
        )?;
        writeln!(
            f,
            "  tree:        {} entries, root {}",
            self.size, self.root
        )?;
        writeln!(
            f,
            "  entries:     {} ({}..{}){}",
            self.entries,
            self.first,
            self.last,
            if self.complete {
                ", the whole log: nothing was left out"
            } else {
                ", each proven in the tree"
            }
        )?;
        match self.extends_pinned {
            Some(size) => writeln!(
                f,
                "  consistency: the tree extends your pinned checkpoint of {size} entries: nothing before it was rewritten"
            ),
            None => writeln!(f, "  consistency: no pinned checkpoint given"),
        }
    }
}

/// Why a bundle failed; the message is the verdict an auditor reads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("NOT VERIFIED: {0}")]
pub struct Failure(pub String);

fn fail<T>(message: impl Into<String>) -> Result<T, Failure> {
    Err(Failure(message.into()))
}

fn hash_of(hex_hash: &str) -> Result<Hash, Failure> {
    // Lowercase only: one hash, one spelling.
    Some(hex_hash)
        .filter(|h| {
            h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
        .and_then(|h| hex::decode(h).ok())
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| Failure(format!("{hex_hash:?} is not a SHA-256 hash in hex")))
}

fn hashes(list: &[String]) -> Result<Vec<Hash>, Failure> {
    list.iter().map(|h| hash_of(h)).collect()
}

/// Checks a bundle: the checkpoint's signature, every entry's bytes against the tree
/// (rebuilding it for a complete bundle, each inclusion proof otherwise), the order
/// and continuity of sequence numbers, the readable copies, the filter, and — when the
/// auditor pinned an earlier checkpoint — that this tree extends it.
pub fn verify(bundle: &Bundle, trust: &Trust) -> Result<Verdict, Failure> {
    let m = &bundle.manifest;
    if m.format != FORMAT {
        return fail(format!(
            "the bundle's format is {:?}; this verifier reads {FORMAT}",
            m.format
        ));
    }
    let bundled = Verifier::parse(&m.key).map_err(|e| Failure(format!("the bundle's key: {e}")))?;
    let key = match &trust.key {
        Some(pinned) => {
            if *pinned != bundled {
                return fail(format!(
                    "the bundle is signed with another key ({}) than the one you pinned ({}): it is not from the box you know, or its key was replaced",
                    bundled.fingerprint(),
                    pinned.fingerprint()
                ));
            }
            pinned.clone()
        }
        None => bundled,
    };
    if key.fingerprint() != m.fingerprint {
        return fail("the manifest's fingerprint is not its key's");
    }
    if let Some(copy) = &bundle.key_copy
        && copy != &format!("{}\n", m.key)
    {
        return fail("key.txt is not the manifest's key");
    }
    let cp = Checkpoint::open(&bundle.checkpoint, &key)
        .map_err(|e| Failure(format!("the checkpoint: {e}")))?;
    if cp.origin != m.origin || cp.size != m.size {
        return fail("the manifest does not describe the checkpoint (origin or size differ)");
    }
    // Entries: in strictly increasing order, each leaf saying what the line says.
    let mut leaves = Vec::with_capacity(bundle.entries.len());
    let mut previous: Option<(u64, String)> = None;
    for e in &bundle.entries {
        if e.seq == 0 || e.seq > cp.size {
            return fail(format!(
                "entry {} is outside the tree of {} entries",
                e.seq, cp.size
            ));
        }
        if let Some((p, _)) = &previous
            && e.seq <= *p
        {
            return fail(format!(
                "entry {} comes after entry {p}: entries are duplicated or out of order",
                e.seq
            ));
        }
        let bytes = B64
            .decode(&e.leaf)
            .map_err(|_| Failure(format!("entry {}: its leaf is not base64", e.seq)))?;
        let decoded: serde_json::Value = ciborium::from_reader(bytes.as_slice())
            .map_err(|_| Failure(format!("entry {}: its leaf is not a CBOR event", e.seq)))?;
        if decoded != e.event {
            return fail(format!(
                "entry {}: the readable copy differs from the signed bytes",
                e.seq
            ));
        }
        if decoded.get("seq").and_then(serde_json::Value::as_u64) != Some(e.seq) {
            return fail(format!(
                "entry {}: its bytes are those of another entry",
                e.seq
            ));
        }
        for (field, wanted) in &m.filter {
            if decoded.get(field) != Some(wanted) {
                return fail(format!(
                    "entry {} does not match the bundle's filter {field} = {wanted}",
                    e.seq
                ));
            }
        }
        // Without a filter the range is contiguous, and each event links to the one
        // before it: a dropped entry leaves a gap.
        if m.filter.is_empty()
            && let Some((p, prev_hash)) = &previous
        {
            if e.seq != p + 1 {
                return fail(format!("entries {} to {} are missing", p + 1, e.seq - 1));
            }
            if decoded.get("prev_hash").and_then(serde_json::Value::as_str) != Some(prev_hash) {
                return fail(format!("entry {} does not link to entry {p}", e.seq));
            }
        }
        let hash = decoded
            .get("hash")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_string();
        previous = Some((e.seq, hash));
        leaves.push(merkle::leaf_hash(&bytes));
    }
    let first = bundle.entries.first().map_or(0, |e| e.seq);
    let last = bundle.entries.last().map_or(0, |e| e.seq);
    if (first, last) != (m.first, m.last) {
        return fail(format!(
            "the manifest announces entries {}..{}, the bundle holds {first}..{last}",
            m.first, m.last
        ));
    }
    let mut tree = None;
    if m.complete {
        if !m.filter.is_empty() || leaves.len() as u64 != cp.size || (cp.size > 0 && first != 1) {
            return fail(format!(
                "the bundle claims the whole log of {} entries but holds {}",
                cp.size,
                leaves.len()
            ));
        }
        let mut t = MemoryTree::new();
        for l in &leaves {
            t.push(*l);
        }
        if t.root_at(cp.size).map_err(|e| Failure(e.to_string()))? != cp.root {
            return fail(
                "the entries do not make the signed tree: an entry was altered, added or removed",
            );
        }
        tree = Some(t);
    } else {
        for (e, leaf) in bundle.entries.iter().zip(&leaves) {
            merkle::verify_inclusion(leaf, e.seq - 1, cp.size, &hashes(&e.proof)?, &cp.root)
                .map_err(|why| {
                    Failure(format!("entry {} is not in the signed tree: {why}", e.seq))
                })?;
        }
    }
    // Every earlier checkpoint the bundle carries is the log's and is extended by this
    // tree (what an auditor pins later can then be checked against it).
    for c in &bundle.consistency {
        let earlier = Checkpoint::open(&c.checkpoint, &key)
            .map_err(|e| Failure(format!("an earlier checkpoint in the bundle: {e}")))?;
        merkle::verify_consistency(
            earlier.size,
            cp.size,
            &earlier.root,
            &cp.root,
            &hashes(&c.proof)?,
        )
        .map_err(|why| {
            Failure(format!(
                "the tree does not extend the box's own checkpoint of {} entries: {why}",
                earlier.size
            ))
        })?;
    }
    let extends_pinned = match &trust.pinned {
        None => None,
        Some(note) => Some(extends(bundle, &key, &cp, tree.as_ref(), note)?),
    };
    Ok(Verdict {
        origin: cp.origin,
        fingerprint: key.fingerprint(),
        size: cp.size,
        root: hex::encode(cp.root),
        entries: leaves.len() as u64,
        first,
        last,
        complete: m.complete,
        extends_pinned,
        key_pinned: trust.key.is_some(),
    })
}

/// Checks that the bundle's tree extends the auditor's pinned checkpoint; its size.
fn extends(
    bundle: &Bundle,
    key: &Verifier,
    cp: &Checkpoint,
    tree: Option<&MemoryTree>,
    pinned_note: &str,
) -> Result<u64, Failure> {
    let pinned = Checkpoint::open(pinned_note, key)
        .map_err(|e| Failure(format!("your pinned checkpoint: {e}")))?;
    if pinned.size > cp.size {
        return fail(format!(
            "the log shrank: you pinned {} entries, the bundle's tree has {}",
            pinned.size, cp.size
        ));
    }
    if pinned.size == cp.size {
        if pinned.root != cp.root {
            return fail(format!(
                "FORK: two checkpoints of {} entries with different roots, both signed by the log's key",
                cp.size
            ));
        }
        return Ok(pinned.size);
    }
    if let Some(tree) = tree {
        let then = tree
            .root_at(pinned.size)
            .map_err(|e| Failure(e.to_string()))?;
        return if then == pinned.root {
            Ok(pinned.size)
        } else {
            fail(format!(
                "FORK: the log's first {} entries are not the ones you pinned: history was rewritten",
                pinned.size
            ))
        };
    }
    for c in &bundle.consistency {
        let Ok(earlier) = Checkpoint::open(&c.checkpoint, key) else {
            continue;
        };
        if earlier.size != pinned.size {
            continue;
        }
        if earlier.root != pinned.root {
            return fail(format!(
                "FORK: the box published another checkpoint of {} entries than the one you pinned",
                pinned.size
            ));
        }
        return merkle::verify_consistency(
            pinned.size,
            cp.size,
            &pinned.root,
            &cp.root,
            &hashes(&c.proof)?,
        )
        .map(|()| pinned.size)
        .map_err(|why| {
            Failure(format!(
                "the tree does not extend your pinned checkpoint of {} entries: {why}",
                pinned.size
            ))
        });
    }
    fail(format!(
        "the bundle holds no proof that its tree extends your pinned checkpoint of {} entries; ask for a bundle of the whole log",
        pinned.size
    ))
}
