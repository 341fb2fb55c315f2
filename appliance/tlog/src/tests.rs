//! Bundles built the way the appliance builds them, then attacked: every flipped bit,
//! dropped, reordered, duplicated or inserted entry, forged or re-signed checkpoint and
//! fork must be refused.

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};
use serde::Serialize;

use super::*;

#[derive(Serialize)]
struct FakeEvent {
    seq: u64,
    company: u64,
    entity: &'static str,
    after: BTreeMap<&'static str, String>,
    prev_hash: String,
    hash: String,
}

const ORIGIN: &str = "nexus.local/log/test";

fn key(seed: u8) -> LogKey {
    LogKey::from_seed(ORIGIN, &[seed; 32]).expect("key")
}

/// `n` events alternating between companies 1 and 2, chained.
fn log(n: u64) -> Vec<Vec<u8>> {
    log_rewritten(n, None)
}

/// The same log with entry `rewritten` saying something else (history rewritten).
fn log_rewritten(n: u64, rewritten: Option<u64>) -> Vec<Vec<u8>> {
    let mut prev = "0".repeat(64);
    (1..=n)
        .map(|seq| {
            let hash = hex::encode(merkle::leaf_hash(&seq.to_be_bytes()));
            let mut after = BTreeMap::new();
            let city = if rewritten == Some(seq) {
                "Basel"
            } else {
                "Zürich"
            };
            after.insert("name", format!("Customer {seq} — {city}"));
            let e = FakeEvent {
                seq,
                company: 1 + seq % 2,
                entity: "customer",
                after,
                prev_hash: prev.clone(),
                hash: hash.clone(),
            };
            prev = hash;
            let mut bytes = Vec::new();
            ciborium::into_writer(&e, &mut bytes).expect("cbor");
            bytes
        })
        .collect()
}

fn tree(leaves: &[Vec<u8>]) -> MemoryTree {
    let mut t = MemoryTree::new();
    for l in leaves {
        t.push(merkle::leaf_hash(l));
    }
    t
}

/// A bundle of the whole log, or of one company's entries with proofs; `earlier` are
/// sizes of checkpoints published before.
fn bundle(leaves: &[Vec<u8>], company: Option<u64>, earlier: &[u64], k: &LogKey) -> Bundle {
    let t = tree(leaves);
    let size = leaves.len() as u64;
    let cp = Checkpoint {
        origin: ORIGIN.into(),
        size,
        root: t.root_at(size).expect("root"),
    };
    let entries: Vec<Entry> = leaves
        .iter()
        .enumerate()
        .map(|(i, l)| (i as u64 + 1, l))
        .filter(|(seq, _)| company.is_none_or(|c| 1 + seq % 2 == c))
        .map(|(seq, l)| {
            let proof = match company {
                None => Vec::new(),
                Some(_) => merkle::inclusion_proof(&t, seq - 1, size).expect("proof"),
            };
            entry(seq, l, &proof).expect("entry")
        })
        .collect();
    let mut filter = BTreeMap::new();
    if let Some(c) = company {
        filter.insert("company".to_string(), serde_json::json!(c));
    }
    let consistency = earlier
        .iter()
        .map(|&m| Consistency {
            checkpoint: Checkpoint {
                origin: ORIGIN.into(),
                size: m,
                root: t.root_at(m).expect("root"),
            }
            .sign(k)
            .expect("sign"),
            proof: merkle::consistency_proof(&t, m, size)
                .expect("proof")
                .iter()
                .map(hex::encode)
                .collect(),
        })
        .collect();
    let v = k.verifier();
    Bundle {
        manifest: Manifest {
            format: FORMAT.into(),
            origin: ORIGIN.into(),
            key: v.encode(),
            fingerprint: v.fingerprint(),
            size,
            first: entries.first().map_or(0, |e| e.seq),
            last: entries.last().map_or(0, |e| e.seq),
            complete: company.is_none(),
            filter,
        },
        checkpoint: cp.sign(k).expect("sign"),
        entries,
        consistency,
        key_copy: Some(format!("{}\n", v.encode())),
    }
}

fn pinned_at(leaves: &[Vec<u8>], size: u64, k: &LogKey) -> String {
    Checkpoint {
        origin: ORIGIN.into(),
        size,
        root: tree(leaves).root_at(size).expect("root"),
    }
    .sign(k)
    .expect("sign")
}

fn trust(k: &LogKey, pinned: Option<String>) -> Trust {
    Trust {
        key: Some(k.verifier()),
        pinned,
    }
}

#[test]
fn a_whole_log_and_one_companys_entries_verify() {
    let k = key(1);
    let leaves = log(37);
    let whole = bundle(&leaves, None, &[], &k);
    let v = bundle::verify(&whole, &trust(&k, Some(pinned_at(&leaves, 20, &k)))).expect("whole");
    assert_eq!((v.entries, v.size, v.complete), (37, 37, true));
    assert_eq!(v.extends_pinned, Some(20));
    let theirs = bundle(&leaves, Some(2), &[5, 20, 36], &k);
    let v =
        bundle::verify(&theirs, &trust(&k, Some(pinned_at(&leaves, 20, &k)))).expect("company 2");
    assert_eq!((v.entries, v.first, v.last, v.complete), (19, 1, 37, false));
    assert_eq!(v.extends_pinned, Some(20));
    assert!(v.to_string().starts_with("VERIFIED"));
    // Without the auditor's key, the bundle's own key is used and said so.
    let v = bundle::verify(&whole, &Trust::default()).expect("unpinned");
    assert!(v.to_string().contains("compare it with the fingerprint"));
    // The files round-trip.
    let dir = tempfile::tempdir().expect("dir");
    theirs.write_to(dir.path()).expect("write");
    assert_eq!(Bundle::read_from(dir.path()).expect("read"), theirs);
}

/// Reads and verifies a bundle from its files: `Err` with the verdict when refused.
fn check_files(dir: &std::path::Path, t: &Trust) -> Result<Verdict, String> {
    let b = Bundle::read_from(dir).map_err(|e| e.to_string())?;
    bundle::verify(&b, t).map_err(|e| e.to_string())
}

#[test]
fn every_flipped_bit_in_a_bundle_is_refused() {
    let k = key(2);
    let leaves = log(12);
    let pinned = pinned_at(&leaves, 7, &k);
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x6e65_7875);
    for company in [None, Some(1)] {
        let good = bundle(&leaves, company, &[3, 7], &k);
        let src = tempfile::tempdir().expect("dir");
        good.write_to(src.path()).expect("write");
        check_files(src.path(), &trust(&k, Some(pinned.clone()))).expect("the original verifies");
        for file in [
            "manifest.json",
            "checkpoint.txt",
            "entries.jsonl",
            "consistency.jsonl",
            "key.txt",
        ] {
            let original = std::fs::read(src.path().join(file)).expect("read");
            for _ in 0..150 {
                let at = rng.random_range(0..original.len());
                let bit = 1u8 << rng.random_range(0..8);
                let mut bytes = original.clone();
                bytes[at] ^= bit;
                let dir = tempfile::tempdir().expect("dir");
                good.write_to(dir.path()).expect("write");
                std::fs::write(dir.path().join(file), &bytes).expect("mutate");
                for t in [trust(&k, Some(pinned.clone())), trust(&k, None)] {
                    if let Ok(v) = check_files(dir.path(), &t) {
                        panic!("{file} byte {at} bit {bit:#x} flipped, still verified: {v}");
                    }
                }
            }
        }
    }
}

#[test]
fn dropped_reordered_duplicated_and_inserted_entries_are_refused() {
    let k = key(3);
    let leaves = log(16);
    for company in [None, Some(2)] {
        let good = bundle(&leaves, company, &[], &k);
        let t = trust(&k, None);
        bundle::verify(&good, &t).expect("original");
        let n = good.entries.len();
        let mut attacks: Vec<(String, Bundle)> = Vec::new();
        for i in 0..n {
            let mut b = good.clone();
            b.entries.remove(i);
            attacks.push((format!("drop {i}"), b));
            let mut b = good.clone();
            let e = b.entries[i].clone();
            b.entries.insert(i, e);
            attacks.push((format!("duplicate {i}"), b));
            if i + 1 < n {
                let mut b = good.clone();
                b.entries.swap(i, i + 1);
                attacks.push((format!("swap {i}"), b));
            }
        }
        // An entry that was never in the log, made to look like one.
        let mut forged = log(16);
        forged[4] = {
            let mut bytes = Vec::new();
            let e = FakeEvent {
                seq: 5,
                company: company.unwrap_or(2),
                entity: "customer",
                after: BTreeMap::from([("name", "Invented".to_string())]),
                prev_hash: "0".repeat(64),
                hash: "1".repeat(64),
            };
            ciborium::into_writer(&e, &mut bytes).expect("cbor");
            bytes
        };
        let proof = match company {
            None => Vec::new(),
            Some(_) => merkle::inclusion_proof(&tree(&leaves), 4, 16).expect("proof"),
        };
        let fake = entry(5, &forged[4], &proof).expect("entry");
        let mut b = good.clone();
        let at = b
            .entries
            .iter()
            .position(|e| e.seq > 5)
            .unwrap_or(b.entries.len());
        b.entries.retain(|e| e.seq != 5);
        b.entries.insert(at.min(b.entries.len()), fake);
        attacks.push(("forged entry 5".into(), b));
        for (what, b) in attacks {
            let mut b = b;
            b.manifest.first = b.entries.first().map_or(0, |e| e.seq);
            b.manifest.last = b.entries.last().map_or(0, |e| e.seq);
            // A filtered bundle may leave entries out; anything else is refused.
            let allowed = company.is_some() && what.starts_with("drop");
            match (bundle::verify(&b, &t), allowed) {
                (Err(f), _) => assert!(f.to_string().starts_with("NOT VERIFIED"), "{what}"),
                (Ok(_), true) => {}
                (Ok(v), false) => panic!("{what} ({company:?}) still verified: {v}"),
            }
        }
    }
}

#[test]
fn another_key_a_re_signed_checkpoint_and_a_fork_are_refused() {
    let k = key(4);
    let leaves = log(10);
    let good = bundle(&leaves, None, &[], &k);
    // The whole bundle re-made with another key: the auditor's pinned key refuses it.
    let mallory = key(5);
    let resigned = bundle(&leaves, None, &[], &mallory);
    let f = bundle::verify(&resigned, &trust(&k, None)).expect_err("other key");
    assert!(f.to_string().contains("another key"), "{f}");
    // Only the checkpoint re-signed: its signature is not the manifest key's.
    let mut b = good.clone();
    b.checkpoint = Checkpoint::open(&resigned.checkpoint, &mallory.verifier())
        .expect("open")
        .sign(&mallory)
        .expect("sign");
    assert!(bundle::verify(&b, &trust(&k, None)).is_err());
    // History rewritten and re-signed by the box's own key: the auditor's pinned
    // checkpoint exposes the fork, at the same size or an earlier one.
    let rewritten = log_rewritten(10, Some(3));
    let pinned_same = pinned_at(&leaves, 10, &k);
    let pinned_earlier = pinned_at(&leaves, 6, &k);
    let honest = bundle(&rewritten, None, &[], &k);
    for pinned in [pinned_same, pinned_earlier] {
        let f = bundle::verify(&honest, &trust(&k, Some(pinned))).expect_err("fork");
        assert!(f.to_string().contains("FORK"), "{f}");
    }
    // A checkpoint from another log (another box) is not taken as pinned.
    let other_box = LogKey::from_seed("nexus.local/log/other", &[4; 32]).expect("key");
    let foreign = Checkpoint {
        origin: "nexus.local/log/other".into(),
        size: 5,
        root: [0; 32],
    }
    .sign(&other_box)
    .expect("sign");
    let f = bundle::verify(&good, &trust(&k, Some(foreign))).expect_err("foreign");
    assert!(f.to_string().contains("pinned checkpoint"), "{f}");
    // The log may not shrink below what was pinned.
    let f =
        bundle::verify(&good, &trust(&k, Some(pinned_at(&log(12), 12, &k)))).expect_err("shrink");
    assert!(f.to_string().contains("shrank"), "{f}");
}
