//! Search quality on a labelled set nobody here wrote: nDCG@10, recall@100 and MRR@10
//! of the appliance's search by words (BM25), by meaning (vectors) and hybrid, beside
//! BM25 by bm25s (PyPI) on the same passages and questions.
//!
//! The set is the Python FAQ (`scripts/retrieval-set.py`, installed by
//! `scripts/install-retrieval-set.sh` from Debian's `python3.11-doc`): each question is a
//! query whose one relevant passage is the answer under it, among the tutorial's and the
//! HOWTOs' passages. No registry package ships a public labelled set with a published
//! BM25 figure (BEIR's are downloaded at run time), so the published figure's place is
//! taken by a peer run in the same benchmark.
//!
//! The passages go in as records of a module of the benchmark's own, through the kernel's
//! write path; both indexes are built by their own rebuilds, and every query goes
//! through [`nexus_search::SearchIndex::search`] as the search page's does, with every
//! error counted as a query that found nothing.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use nexus_kernel::registry::Module;
use nexus_kernel::{Creation, EntityDef, FieldDef, FieldKind, Input, Kernel, Principal};
use nexus_search::{Retrieval, SearchIndex, SearchRequest, VectorIndex};
use nexus_store::Store;
use serde::{Deserialize, Serialize};
use tokio::runtime::Runtime;

use crate::error::{Context, Error, Result};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The labelled set (passages.jsonl, queries.jsonl).
    #[arg(
        long,
        default_value = "/var/cache/nexus-tools/retrieval/python-faq",
        value_name = "DIR"
    )]
    pub set: PathBuf,
    /// The Python with bm25s (scripts/install-retrieval-set.sh).
    #[arg(long, default_value = "/var/cache/nexus-tools/ann-venv/bin/python")]
    pub python: PathBuf,
    /// The GGUF embedding model [default: the installed all-MiniLM-L6-v2].
    #[arg(long, value_name = "PATH")]
    pub model: Option<PathBuf>,
    /// Where to put the temporary store and indexes.
    #[arg(long, env = "NEXUS_BENCH_DIR", default_value = "/var/tmp")]
    pub dir: PathBuf,
}

/// A passage of the set, as a record: its page's title and its text.
static PASSAGE: EntityDef = EntityDef {
    name: "passage",
    code: 990,
    label: "Passage",
    plural: "Passages",
    module: "reference",
    fields: &[
        FieldDef::new("title", "Title", FieldKind::Text { max: 200 }).required(),
        FieldDef::new("text", "Text", FieldKind::LongText),
    ],
    title_field: "title",
    search_fields: &["title", "text"],
    creation: Creation::ByRole,
};

static REFERENCE: Module = Module {
    name: "reference",
    label: "Reference",
    code: 990,
    entities: &[&PASSAGE],
    roles: &[],
    demo: None,
    tools: &[],
    jobs: &[],
    schedules: &[],
};

#[derive(Debug, Deserialize)]
struct Passage {
    id: String,
    title: String,
    text: String,
}

#[derive(Debug, Deserialize)]
struct Query {
    id: String,
    text: String,
    gold: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub set: String,
    pub queries: usize,
    pub passages: usize,
    pub model: String,
    /// Records indexed by words per second (the full-text rebuild).
    pub text_index_per_s: f64,
    /// Records embedded and put into the vector index per second.
    pub vector_index_per_s: f64,
    pub runs: Vec<Scored>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Scored {
    pub system: String,
    pub ndcg_10: f64,
    pub recall_100: f64,
    pub mrr_10: f64,
    /// Queries answered with an error (counted as finding nothing).
    pub errors: usize,
    /// Mean milliseconds per query (ours only).
    pub ms_per_query: Option<f64>,
}

pub fn run(rt: &Runtime, args: &Args) -> Result<Report> {
    let passages: Vec<Passage> = read_jsonl(&args.set.join("passages.jsonl"))?;
    let queries: Vec<Query> = read_jsonl(&args.set.join("queries.jsonl"))?;
    if queries.is_empty() || passages.is_empty() {
        return Err(Error::msg(format!(
            "{}: the set is empty (scripts/install-retrieval-set.sh builds it)",
            args.set.display()
        )));
    }
    println!(
        "\nquality: {} questions, {} passages ({})",
        queries.len(),
        passages.len(),
        args.set.display()
    );
    let peer = peer(args)?;

    nexus_kernel::registry::install(&[&REFERENCE])
        .map_err(|e| Error::msg(format!("installing the module: {e}")))?;
    let scratch = tempfile::Builder::new()
        .prefix("nexus-quality-")
        .tempdir_in(&args.dir)
        .context(|| format!("creating a directory in {}", args.dir.display()))?;
    let store_path = scratch.path().join("nexus.redb");
    let store = Store::open(&store_path).context(|| format!("opening {}", store_path.display()))?;
    let kernel = Kernel::new(store, Arc::new(nexus_kernel::SystemClock));
    let company = rt
        .block_on(kernel.create_company("Quality Co", "CHF"))
        .map_err(|e| Error::msg(format!("creating the company: {e}")))?;
    let who = Principal::system(company);
    let mut by_record: HashMap<u64, String> = HashMap::new();
    for p in &passages {
        let form = Input::Form(vec![
            ("title".into(), p.title.clone()),
            ("text".into(), p.text.clone()),
        ]);
        let record = rt
            .block_on(kernel.create(&who, &PASSAGE, form))
            .map_err(|e| Error::msg(format!("passage {}: {e}", p.id)))?;
        by_record.insert(record.id, p.id.clone());
    }

    let index = SearchIndex::open(scratch.path().join("search"))
        .map_err(|e| Error::msg(format!("opening the full-text index: {e}")))?;
    let t = Instant::now();
    index
        .rebuild(&kernel, |_| {})
        .map_err(|e| Error::msg(format!("indexing by words: {e}")))?;
    let text_index_per_s = passages.len() as f64 / t.elapsed().as_secs_f64();

    let model = args.model.clone().unwrap_or_else(nexus_ai::installed_model);
    let embedder =
        nexus_ai::Embedder::load(&model, nexus_ai::EmbedderOptions::default()).map_err(|e| {
            Error::msg(format!(
                "{e} (scripts/install-embedding-model.sh installs it)"
            ))
        })?;
    let vectors = VectorIndex::open(scratch.path().join("vectors"), Arc::new(embedder))
        .map_err(|e| Error::msg(format!("opening the vector index: {e}")))?;
    let t = Instant::now();
    vectors
        .rebuild(&index, &kernel, |_| {})
        .map_err(|e| Error::msg(format!("indexing by meaning: {e}")))?;
    let vector_index_per_s = passages.len() as f64 / t.elapsed().as_secs_f64();
    let model_name = vectors.model().to_owned();
    index.set_vectors(Arc::new(vectors));
    println!(
        "  indexed {text_index_per_s:.0} records/s by words, {vector_index_per_s:.1} records/s by meaning ({model_name})"
    );

    let mut runs = Vec::new();
    for (name, retrieval) in [
        ("nexus words (BM25)", Retrieval::Text),
        ("nexus meaning (vectors)", Retrieval::Vector),
        ("nexus hybrid (RRF)", Retrieval::Hybrid),
    ] {
        let mut ranked: HashMap<&str, Vec<String>> = HashMap::new();
        let mut errors = 0;
        let t = Instant::now();
        for q in &queries {
            let request = SearchRequest {
                text: q.text.clone(),
                limit: 100,
                retrieval,
                ..Default::default()
            };
            let ids = match index.search(&who, &request) {
                Ok(results) => results
                    .hits
                    .iter()
                    .filter_map(|h| by_record.get(&h.record).cloned())
                    .collect(),
                Err(_) => {
                    errors += 1;
                    Vec::new()
                }
            };
            ranked.insert(q.id.as_str(), ids);
        }
        let ms = t.elapsed().as_secs_f64() * 1000.0 / queries.len() as f64;
        runs.push(score(name, &queries, &ranked, errors, Some(ms)));
    }
    for (name, run) in &peer {
        let ranked: HashMap<&str, Vec<String>> = run
            .iter()
            .map(|(q, ids)| (q.as_str(), ids.clone()))
            .collect();
        runs.push(score(name, &queries, &ranked, 0, None));
    }
    print(&runs);
    drop(index);
    drop(kernel);
    Ok(Report {
        set: args.set.display().to_string(),
        queries: queries.len(),
        passages: passages.len(),
        model: model_name,
        text_index_per_s,
        vector_index_per_s,
        runs,
    })
}

/// One system's answers: query id → passage ids, best first.
type Run = HashMap<String, Vec<String>>;

/// bm25s's runs, by configuration.
fn peer(args: &Args) -> Result<Vec<(String, Run)>> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/bm25.py");
    let out = tempfile::NamedTempFile::new().context(|| "creating a temporary file")?;
    let status = Command::new(&args.python)
        .arg(&script)
        .arg(&args.set)
        .arg(out.path())
        .status()
        .context(|| {
            format!(
                "running {} (scripts/install-retrieval-set.sh installs bm25s)",
                args.python.display()
            )
        })?;
    if !status.success() {
        return Err(Error::msg(format!(
            "{} failed ({status}); scripts/install-retrieval-set.sh installs bm25s",
            script.display()
        )));
    }
    let text = std::fs::read_to_string(out.path()).context(|| "reading bm25s's runs")?;
    let runs: HashMap<String, HashMap<String, Vec<String>>> =
        serde_json::from_str(&text).map_err(|e| Error::msg(format!("bm25s's runs: {e}")))?;
    let mut named: Vec<(String, Run)> = runs
        .into_iter()
        .map(|(config, run)| (format!("bm25s ({config})"), run))
        .collect();
    named.sort_by(|a, b| b.0.cmp(&a.0));
    Ok(named)
}

/// nDCG@10, recall@100 and MRR@10 with one relevant passage per query (binary gain,
/// so the ideal DCG is 1).
fn score(
    system: &str,
    queries: &[Query],
    ranked: &HashMap<&str, Vec<String>>,
    errors: usize,
    ms_per_query: Option<f64>,
) -> Scored {
    let (mut ndcg, mut recall, mut mrr) = (0.0, 0.0, 0.0);
    for q in queries {
        let rank = ranked
            .get(q.id.as_str())
            .and_then(|ids| ids.iter().position(|id| *id == q.gold));
        if let Some(r) = rank {
            if r < 10 {
                ndcg += 1.0 / ((r + 2) as f64).log2();
                mrr += 1.0 / (r + 1) as f64;
            }
            if r < 100 {
                recall += 1.0;
            }
        }
    }
    let n = queries.len() as f64;
    Scored {
        system: system.to_owned(),
        ndcg_10: ndcg / n,
        recall_100: recall / n,
        mrr_10: mrr / n,
        errors,
        ms_per_query,
    }
}

fn print(runs: &[Scored]) {
    let base = runs
        .iter()
        .find(|r| r.system == "bm25s (plain)")
        .map_or(f64::NAN, |r| r.ndcg_10);
    println!(
        "  {:<26} {:>8} {:>10} {:>7} {:>7} {:>8} {:>13}",
        "system", "nDCG@10", "recall@100", "MRR@10", "errors", "ms/query", "× bm25s plain"
    );
    for r in runs {
        println!(
            "  {:<26} {:>8.3} {:>10.3} {:>7.3} {:>7} {:>8} {:>12.2}×",
            r.system,
            r.ndcg_10,
            r.recall_100,
            r.mrr_10,
            r.errors,
            r.ms_per_query.map_or("-".into(), |m| format!("{m:.1}")),
            r.ndcg_10 / base
        );
    }
}

fn read_jsonl<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    let text = std::fs::read_to_string(path).context(|| {
        format!(
            "reading {} (scripts/install-retrieval-set.sh builds the set)",
            path.display()
        )
    })?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(n, l)| {
            serde_json::from_str(l)
                .map_err(|e| Error::msg(format!("{} line {}: {e}", path.display(), n + 1)))
        })
        .collect()
}
