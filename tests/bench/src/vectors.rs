//! Vector search: the graph hnsw_rs builds at the parameters the appliance's vector
//! index uses (`nexus_search::M`, `EF_CONSTRUCTION`, and `EF_SEARCH` upwards), searched
//! as the index searches it (its compact copy, `nexus_search::Walk`, with and without a
//! per-point filter as permissions are checked) and by hnsw_rs itself, side by side with
//! hnswlib and faiss (`HNSWFlat`) from PyPI on the same vectors, the same parameters and
//! the same threads (every core to build, one to search), all scored against exact brute
//! force; and how fast the engine embeds (all-MiniLM-L6-v2 through llama.cpp).
//!
//! The vectors are 384-dimensional (MiniLM's width), unit length, drawn around 1,000
//! random centres so that they have neighbourhoods as embeddings do (uniform random
//! vectors have none, and every index looks bad on them). The queries are drawn the
//! same way and are not in the base set.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use hnsw_rs::prelude::{DistDot, Hnsw};
use serde::Serialize;

use crate::error::{Context, Error, Result};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Vectors in the index, one run per value.
    #[arg(long, value_delimiter = ',', default_value = "100000")]
    pub vectors: Vec<usize>,
    /// Queries measured (each against exact brute force).
    #[arg(long, default_value_t = 1_000)]
    pub queries: usize,
    /// Search widths (ef), one measurement per value.
    #[arg(long, value_delimiter = ',', default_value = "64,128")]
    pub ef: Vec<usize>,
    /// Texts embedded to measure the engine (0: skip).
    #[arg(long, default_value_t = 256)]
    pub texts: usize,
    /// Where to put the vectors the peers read.
    #[arg(long, env = "NEXUS_BENCH_DIR", default_value = "/var/tmp")]
    pub dir: PathBuf,
    /// The Python with hnswlib and faiss (scripts/install-ann-peers.sh).
    #[arg(long, default_value = "/var/cache/nexus-tools/ann-venv/bin/python")]
    pub python: PathBuf,
}

const DIM: usize = 384;
const K: usize = 10;
const CENTRES: usize = 1_000;

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub runs: Vec<Run>,
    pub embedding: Option<Embedding>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Run {
    pub vectors: usize,
    pub queries: usize,
    pub results: Vec<Measured>,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Measured {
    pub engine: String,
    pub ef: usize,
    pub build_s: f64,
    pub qps: f64,
    pub recall: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Embedding {
    pub model: String,
    pub threads: usize,
    pub short_per_s: f64,
    pub passages_per_s: f64,
    pub query_ms: f64,
}

pub fn run(args: &Args) -> Result<Report> {
    let mut runs = Vec::new();
    for &n in &args.vectors {
        runs.push(one(args, n)?);
    }
    let embedding = if args.texts > 0 {
        Some(embedding(args.texts)?)
    } else {
        None
    };
    Ok(Report { runs, embedding })
}

/// splitmix64: the same vectors on every run and every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A standard normal (Box–Muller).
    fn normal(&mut self) -> f32 {
        let u = ((self.next() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
        let v = ((self.next() >> 11) as f64) / (1u64 << 53) as f64;
        ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
    }
}

fn unit(mut v: Vec<f32>) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    for x in &mut v {
        *x /= n;
    }
    v
}

fn points(rng: &mut Rng, centres: &[Vec<f32>], n: usize) -> Vec<Vec<f32>> {
    (0..n)
        .map(|_| {
            let c = &centres[(rng.next() % centres.len() as u64) as usize];
            unit(
                c.iter()
                    .map(|x| x + rng.normal() / (DIM as f32).sqrt())
                    .collect(),
            )
        })
        .collect()
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The exact `K` nearest of each query, on every core.
fn truth(base: &[Vec<f32>], queries: &[Vec<f32>]) -> Vec<Vec<u32>> {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let chunk = queries.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = queries
            .chunks(chunk)
            .map(|qs| {
                s.spawn(move || {
                    qs.iter()
                        .map(|q| {
                            let mut best: Vec<(f32, u32)> = Vec::with_capacity(K + 1);
                            for (i, v) in base.iter().enumerate() {
                                let d = dot(q, v);
                                if best.len() < K || d > best[K - 1].0 {
                                    let at = best.partition_point(|(x, _)| *x >= d);
                                    best.insert(at, (d, u32::try_from(i).unwrap_or(u32::MAX)));
                                    best.truncate(K);
                                }
                            }
                            best.into_iter().map(|(_, i)| i).collect::<Vec<u32>>()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    })
}

fn write_f32(path: &Path, rows: &[Vec<f32>]) -> Result<()> {
    let mut bytes = Vec::with_capacity(rows.len() * DIM * 4);
    for r in rows {
        for x in r {
            bytes.extend_from_slice(&x.to_le_bytes());
        }
    }
    std::fs::write(path, bytes).context(|| format!("writing {}", path.display()))
}

fn one(args: &Args, n: usize) -> Result<Run> {
    let mut rng = Rng(42);
    let centres: Vec<Vec<f32>> = (0..CENTRES)
        .map(|_| unit((0..DIM).map(|_| rng.normal()).collect()))
        .collect();
    println!(
        "\nvectors: {n} × {DIM} around {CENTRES} centres, {} queries, k = {K}",
        args.queries
    );
    let base = points(&mut rng, &centres, n);
    let queries = points(&mut rng, &centres, args.queries);
    let t = Instant::now();
    let truth = truth(&base, &queries);
    println!("  exact ground truth in {:.1} s", t.elapsed().as_secs_f64());

    let mut results = Vec::new();
    // Ours: hnsw_rs as the vector index builds it, searched as the index searches it
    // (the compact copy, with a filter that looks each candidate up as the reader's
    // permissions do) and as hnsw_rs searches it.
    let hnsw: Hnsw<'static, f32, DistDot> = Hnsw::new(
        nexus_search::M,
        n,
        16,
        nexus_search::EF_CONSTRUCTION,
        DistDot {},
    );
    // The last FREEZE_AFTER points inserted after a first copy, as the index inserts
    // them: the copy made again then reuses the lists those inserts did not touch.
    let last = nexus_search::FREEZE_AFTER.min(n / 2);
    let refs: Vec<(&Vec<f32>, usize)> = base.iter().enumerate().map(|(i, v)| (v, i)).collect();
    let t = Instant::now();
    hnsw.parallel_insert(&refs[..n - last]);
    let mut build = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let first = nexus_search::Walk::of(&hnsw, n - last);
    let whole_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    hnsw.parallel_insert(&refs[n - last..]);
    build += t.elapsed().as_secs_f64();
    let allowed: Vec<bool> = vec![true; n];
    let t = Instant::now();
    let walk = nexus_search::Walk::after(&hnsw, n, &first);
    let again_s = t.elapsed().as_secs_f64();
    drop(first);
    println!(
        "  compact copy of the graph in {whole_s:.2} s ({:.1} ground links per node after thinning); made again after {last} inserts in {again_s:.2} s",
        walk.degree()
    );
    let rows: Vec<f32> = base.concat();
    // What opening the index costs with the graph saved (read back) against without
    // (the build above).
    {
        let base = std::env::var_os("NEXUS_BENCH_DIR")
            .map_or_else(|| PathBuf::from("/var/tmp"), PathBuf::from);
        let dir = tempfile::Builder::new()
            .prefix("nexus-bench-graph-")
            .tempdir_in(&base)
            .context(|| format!("a scratch directory in {}", base.display()))?;
        let slots: Vec<u64> = (1..=n as u64).collect();
        let t = Instant::now();
        nexus_search::saved::save(dir.path(), 1, DIM, &hnsw, &slots).map_err(Error::msg)?;
        let saved_s = t.elapsed().as_secs_f64();
        let bytes: u64 = std::fs::read_dir(nexus_search::saved::path(dir.path()))
            .context(|| "the save")?
            .filter_map(|e| e.ok()?.metadata().ok())
            .map(|m| m.len())
            .sum();
        let t = Instant::now();
        let back = nexus_search::saved::load(dir.path(), 1, DIM)
            .map_err(Error::msg)?
            .ok_or_else(|| Error::msg("the save just written is not there"))?;
        let walk_back = nexus_search::Walk::of(&back.hnsw, n);
        let read_s = t.elapsed().as_secs_f64();
        println!(
            "  graph saved in {saved_s:.2} s ({:.0} MiB), read back with its compact copy in {read_s:.2} s ({:.0}x faster than building it)",
            bytes as f64 / (1 << 20) as f64,
            build / read_s.max(1e-9),
        );
        drop((walk_back, back));
    }
    let recall_of = |found: &[Vec<usize>]| -> f64 {
        found
            .iter()
            .zip(&truth)
            .map(|(f, t)| f.iter().filter(|i| t.contains(&(**i as u32))).count() as f64 / K as f64)
            .sum::<f64>()
            / truth.len() as f64
    };
    for &ef in &args.ef {
        let allow = |id: usize| allowed.get(id).copied().unwrap_or(false);
        // Each engine's k nearest of a query, with or without the filter.
        type Nearest<'a> = &'a dyn Fn(&[f32], bool) -> Vec<usize>;
        let engines: [(&str, Nearest); 2] = [
            ("nexus", &|q, filtered| {
                let hits = if filtered {
                    walk.search(&rows, q, K, ef, allow)
                } else {
                    walk.search(&rows, q, K, ef, |_| true)
                };
                hits.into_iter().map(|(id, _)| id).collect()
            }),
            ("hnsw_rs", &|q, filtered| {
                let filter = |id: &usize| allow(*id);
                let hits = if filtered {
                    hnsw.search_filter(q, K, ef, Some(&filter))
                } else {
                    hnsw.search(q, K, ef)
                };
                hits.into_iter().map(|h| h.d_id).collect()
            }),
        ];
        for (name, nearest) in engines {
            for filtered in [false, true] {
                let t = Instant::now();
                let found: Vec<Vec<usize>> = queries.iter().map(|q| nearest(q, filtered)).collect();
                let took = t.elapsed().as_secs_f64();
                results.push(Measured {
                    engine: if filtered {
                        format!("{name} + filter")
                    } else {
                        name.into()
                    },
                    ef,
                    build_s: build,
                    qps: queries.len() as f64 / took,
                    recall: recall_of(&found),
                });
            }
        }
    }
    drop(walk);
    drop(rows);
    drop(hnsw);

    // The peers, on the same files.
    let dir = tempfile::Builder::new()
        .prefix("nexus-bench-vectors-")
        .tempdir_in(&args.dir)
        .context(|| format!("a scratch directory in {}", args.dir.display()))?;
    write_f32(&dir.path().join("base.f32"), &base)?;
    write_f32(&dir.path().join("queries.f32"), &queries)?;
    let truth_bytes: Vec<u8> = truth
        .iter()
        .flatten()
        .flat_map(|i| i.to_le_bytes())
        .collect();
    std::fs::write(dir.path().join("truth.u32"), truth_bytes).context(|| "writing truth.u32")?;
    std::fs::write(
        dir.path().join("dims.txt"),
        format!("{n} {DIM} {}", queries.len()),
    )
    .context(|| "writing dims.txt")?;
    drop(base);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/ann.py");
    let efs: Vec<String> = args.ef.iter().map(usize::to_string).collect();
    let out = Command::new(&args.python)
        .arg(&script)
        .arg(dir.path())
        .arg(nexus_search::M.to_string())
        .arg(nexus_search::EF_CONSTRUCTION.to_string())
        .arg(efs.join(","))
        .arg(K.to_string())
        .output()
        .context(|| {
            format!(
                "{} (scripts/install-ann-peers.sh installs it)",
                args.python.display()
            )
        })?;
    if !out.status.success() {
        return Err(Error::msg(format!(
            "the peers failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let m: Measured =
            serde_json::from_str(line).context(|| format!("the peers said {line:?}"))?;
        results.push(m);
    }

    println!(
        "  {:<18} {:>4} {:>9} {:>10} {:>8} {:>10} {:>10}",
        "engine", "ef", "build s", "queries/s", "recall", "vs hnswlib", "vs faiss"
    );
    let peer = |engine: &str, ef: usize| {
        results
            .iter()
            .find(|r| r.engine == engine && r.ef == ef)
            .map(|r| r.qps)
    };
    for r in &results {
        let ratio = |p: Option<f64>| p.map_or("-".into(), |p| format!("{:.2}×", r.qps / p));
        println!(
            "  {:<18} {:>4} {:>9.1} {:>10.0} {:>8.3} {:>10} {:>10}",
            r.engine,
            r.ef,
            r.build_s,
            r.qps,
            r.recall,
            ratio(peer("hnswlib", r.ef)),
            ratio(peer("faiss", r.ef)),
        );
    }
    Ok(Run {
        vectors: n,
        queries: queries.len(),
        results,
    })
}

/// Texts per second through the engine: short ones (a record's title and fields) and
/// passages of about 1,200 characters (a document chunk), and one query's latency.
fn embedding(texts: usize) -> Result<Embedding> {
    let path = nexus_ai::installed_model();
    let embedder =
        nexus_ai::Embedder::load(&path, nexus_ai::EmbedderOptions::default()).map_err(|e| {
            Error::msg(format!(
                "{e} (scripts/install-embedding-model.sh installs it)"
            ))
        })?;
    let short: Vec<String> = (0..texts)
        .map(|i| format!("Customer {i} · Alpine Coffee Roasters · Zurich · espresso and beans"))
        .collect();
    let passage = "The reconciliation of the bank statement with the general ledger shows \
        a small difference that comes from rounding on foreign-currency payments. "
        .repeat(8);
    let passages: Vec<String> = (0..texts).map(|i| format!("{i} {passage}")).collect();
    let rate = |t: &[String]| -> Result<f64> {
        let start = Instant::now();
        embedder.embed(t).map_err(|e| Error::msg(e.to_string()))?;
        Ok(t.len() as f64 / start.elapsed().as_secs_f64())
    };
    let short_per_s = rate(&short)?;
    let passages_per_s = rate(&passages)?;
    let start = Instant::now();
    for _ in 0..20 {
        embedder
            .embed(&["late payment of the bill"])
            .map_err(|e| Error::msg(e.to_string()))?;
    }
    let query_ms = start.elapsed().as_secs_f64() * 1000.0 / 20.0;
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    println!(
        "\nembedding ({}, {threads} threads): {short_per_s:.0} short texts/s, {passages_per_s:.1} passages of {} characters/s, one query {query_ms:.1} ms",
        embedder.info().name,
        passage.len()
    );
    Ok(Embedding {
        model: embedder.info().name.clone(),
        threads,
        short_per_s,
        passages_per_s,
        query_ms,
    })
}
