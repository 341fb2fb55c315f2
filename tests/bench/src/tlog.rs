//! The transparency log's costs: durable creates per second with the Merkle tree
//! against without it (same kernel, same run, alternating), inclusion- and
//! consistency-proof latency on a tree of many entries, and how fast an auditor's
//! verifier checks a bundle.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nexus_kernel::{Kernel, SystemClock};
use nexus_store::{Store, Table};
use nexus_tlog::merkle::{self, Hash};
use serde::Serialize;
use tokio::runtime::Runtime;

use crate::error::{Context, Error, Result};
use crate::load::{Latency, latency_of};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Wall-clock seconds per side and concurrency level of the write comparison.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub seconds: u64,
    /// Concurrent clients of the write comparison, one level per value.
    #[arg(long, value_delimiter = ',', default_value = "16,64")]
    pub clients: Vec<usize>,
    /// Entries of the tree the proofs are measured on.
    #[arg(long, default_value_t = 10_000_000)]
    pub tree_entries: u64,
    /// Proofs measured (each of a random entry).
    #[arg(long, default_value_t = 2_000)]
    pub proofs: usize,
    /// Entries of the bundle the verifier checks.
    #[arg(long, default_value_t = 200_000)]
    pub bundle_entries: u64,
    /// Where to put the temporary stores.
    #[arg(long, env = "NEXUS_BENCH_DIR", default_value = "/var/tmp")]
    pub dir: PathBuf,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub writes: Vec<WriteLevel>,
    pub proofs: Proofs,
    pub verify: Verify,
}

#[derive(Debug, Clone, Serialize)]
pub struct WriteLevel {
    pub clients: usize,
    pub with_tree_per_s: f64,
    pub without_tree_per_s: f64,
    pub ratio: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Proofs {
    pub tree_entries: u64,
    pub build_s: f64,
    pub inclusion: Latency,
    pub consistency: Latency,
}

#[derive(Debug, Clone, Serialize)]
pub struct Verify {
    pub entries: u64,
    pub seconds: f64,
    pub entries_per_s: f64,
}

pub fn run(rt: &Runtime, args: &Args) -> Result<Report> {
    let budget = Duration::from_secs(args.seconds);
    let mut writes = Vec::new();
    println!("\n== transparency log: durable creates/s with the Merkle tree and without ==");
    for (i, &clients) in args.clients.iter().enumerate() {
        let rate = |tree: bool| -> Result<f64> {
            nexus_kernel::bench_support::skip_transparency_log(!tree);
            let dir = args.dir.join(format!(
                "nexus-bench-tlog-{}-{clients}-{tree}",
                std::process::id()
            ));
            let out = crate::writes::nexus::measure(rt, &dir, clients, budget, false);
            nexus_kernel::bench_support::skip_transparency_log(false);
            Ok(out?.run.ops_per_s)
        };
        // Alternate which side goes first, so drift in the disk does not favour one.
        let (with, without) = if i % 2 == 0 {
            let w = rate(true)?;
            (w, rate(false)?)
        } else {
            let wo = rate(false)?;
            (rate(true)?, wo)
        };
        let ratio = with / without.max(f64::MIN_POSITIVE);
        println!(
            "{clients:>3} clients: with the tree {with:>8.0}/s, without {without:>8.0}/s, ratio {ratio:.2}×"
        );
        writes.push(WriteLevel {
            clients,
            with_tree_per_s: with,
            without_tree_per_s: without,
            ratio,
        });
    }
    let proofs = proofs(rt, args)?;
    let verify = verify(args.bundle_entries)?;
    Ok(Report {
        writes,
        proofs,
        verify,
    })
}

/// The synthetic entry of leaf `i`: 64 bytes (the tree hashes it; its size matters little).
fn leaf_bytes(i: u64) -> Vec<u8> {
    let mut b = format!("entry {i:012} ").into_bytes();
    b.resize(64, b'.');
    b
}

fn node_key(level: u8, index: u64) -> Vec<u8> {
    let mut k = vec![b'n', level];
    k.extend(index.to_be_bytes());
    k
}

/// A tree of `entries` synthetic leaves written straight into a store's Merkle table
/// (the layout `nexus-kernel` keeps), then proofs of random entries through the kernel.
fn proofs(rt: &Runtime, args: &Args) -> Result<Proofs> {
    let dir = args
        .dir
        .join(format!("nexus-bench-tlog-tree-{}", std::process::id()));
    std::fs::create_dir(&dir).context(|| format!("creating {}", dir.display()))?;
    let store = Store::open(&dir.join("nexus.redb")).context(|| "opening the store")?;
    let started = Instant::now();
    let n = args.tree_entries;
    const BATCH: u64 = 100_000;
    let mut right_edge: Vec<Hash> = Vec::new();
    let mut done = 0;
    while done < n {
        let upto = (done + BATCH).min(n);
        // The leaves are change-log entries (what the kernel hashes); the inner nodes
        // are computed here, as the kernel would (a left sibling of an earlier batch is
        // on the right edge kept between batches).
        let mut puts = Vec::new();
        for i in done..upto {
            let leaf = merkle::leaf_hash(&leaf_bytes(i));
            let made = merkle::append_nodes(i, leaf, |level, _| {
                right_edge
                    .get(level as usize)
                    .copied()
                    .ok_or(merkle::ProofError::Missing(format!("level {level}")))
            })
            .map_err(|e| Error::msg(e.to_string()))?;
            for (level, idx, h) in made {
                let level_us = level as usize;
                if right_edge.len() <= level_us {
                    right_edge.resize(level_us + 1, [0; 32]);
                }
                right_edge[level_us] = h;
                if level > 0 {
                    puts.push((node_key(level, idx), h.to_vec()));
                }
            }
        }
        let (from, to) = (done, upto);
        rt.block_on(store.write(move |txn| {
            for i in from..to {
                txn.emit(leaf_bytes(i));
            }
            for (k, v) in puts {
                txn.put(Table::Merkle, k, v);
            }
            Ok::<_, nexus_store::StoreError>(())
        }))
        .map_err(|e| Error::msg(e.to_string()))?;
        done = upto;
    }
    let build_s = started.elapsed().as_secs_f64();
    let kernel = Kernel::new(store, Arc::new(SystemClock));
    let head = kernel.tree_head().map_err(|e| Error::msg(e.to_string()))?;
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut inclusion = Vec::with_capacity(args.proofs);
    let mut consistency = Vec::with_capacity(args.proofs);
    for _ in 0..args.proofs {
        let seq = 1 + next() % n;
        let t = Instant::now();
        let proof = kernel
            .inclusion_proof(seq, n)
            .map_err(|e| Error::msg(e.to_string()))?;
        inclusion.push(t.elapsed());
        let leaf = merkle::leaf_hash(&leaf_bytes(seq - 1));
        merkle::verify_inclusion(&leaf, seq - 1, n, &proof, &head.root)
            .map_err(|e| Error::msg(format!("a proof did not verify: {e}")))?;
        let from = 1 + next() % n;
        let t = Instant::now();
        kernel
            .consistency_proof(from, n)
            .map_err(|e| Error::msg(e.to_string()))?;
        consistency.push(t.elapsed());
    }
    drop(kernel);
    remove(&dir)?;
    let out = Proofs {
        tree_entries: n,
        build_s,
        inclusion: latency_of(inclusion),
        consistency: latency_of(consistency),
    };
    println!(
        "tree of {n} entries (written in {build_s:.1} s): inclusion proof p50 {:.3} ms, p99 {:.3} ms; consistency proof p50 {:.3} ms, p99 {:.3} ms",
        out.inclusion.p50_ms, out.inclusion.p99_ms, out.consistency.p50_ms, out.consistency.p99_ms
    );
    Ok(out)
}

fn remove(dir: &Path) -> Result<()> {
    std::fs::remove_dir_all(dir).context(|| format!("removing {}", dir.display()))
}

/// A complete bundle of `entries` event-shaped entries, verified as `nexus-verify` does.
fn verify(entries: u64) -> Result<Verify> {
    #[derive(Serialize)]
    struct Ev<'a> {
        seq: u64,
        company: u64,
        entity: &'a str,
        name: String,
        prev_hash: String,
        hash: String,
    }
    let key = nexus_tlog::LogKey::from_seed("nexus.local/log/bench", &[3; 32])
        .map_err(|e| Error::msg(e.to_string()))?;
    let mut tree = nexus_tlog::MemoryTree::new();
    let mut list = Vec::with_capacity(entries as usize);
    let mut prev = "0".repeat(64);
    for seq in 1..=entries {
        let hash = format!("{seq:064x}");
        let mut bytes = Vec::with_capacity(200);
        ciborium::into_writer(
            &Ev {
                seq,
                company: 1,
                entity: "customer",
                name: format!("Customer {seq}"),
                prev_hash: prev.clone(),
                hash: hash.clone(),
            },
            &mut bytes,
        )
        .map_err(|e| Error::msg(e.to_string()))?;
        prev = hash;
        tree.push(merkle::leaf_hash(&bytes));
        list.push(nexus_tlog::entry(seq, &bytes, &[]).ok_or_else(|| Error::msg("cbor"))?);
    }
    let root = tree
        .root_at(entries)
        .map_err(|e| Error::msg(e.to_string()))?;
    let checkpoint = nexus_tlog::Checkpoint {
        origin: "nexus.local/log/bench".into(),
        size: entries,
        root,
    }
    .sign(&key)
    .map_err(|e| Error::msg(e.to_string()))?;
    let v = key.verifier();
    let bundle = nexus_tlog::Bundle {
        manifest: nexus_tlog::Manifest {
            format: nexus_tlog::FORMAT.into(),
            origin: "nexus.local/log/bench".into(),
            key: v.encode(),
            fingerprint: v.fingerprint(),
            size: entries,
            first: 1,
            last: entries,
            complete: true,
            filter: Default::default(),
        },
        checkpoint,
        entries: list,
        consistency: Vec::new(),
        key_copy: None,
    };
    let trust = nexus_tlog::Trust {
        key: Some(v),
        pinned: None,
    };
    let t = Instant::now();
    nexus_tlog::bundle::verify(&bundle, &trust).map_err(|f| Error::msg(f.to_string()))?;
    let seconds = t.elapsed().as_secs_f64();
    let out = Verify {
        entries,
        seconds,
        entries_per_s: entries as f64 / seconds,
    };
    println!(
        "verifying a complete bundle of {entries} entries: {seconds:.2} s, {:.0} entries/s",
        out.entries_per_s
    );
    Ok(out)
}
