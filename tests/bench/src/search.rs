//! `search`: full-text search against the real `nexus` binary over real HTTPS — query
//! latency at 1 and 16 concurrent searchers over `nexus demo`'s customers (and their
//! contacts), how soon a saved record is found while others are written at a steady
//! rate, how fast the index is built — and, in-process on the same index once the
//! server is stopped, what the reader's permissions inside the query cost against the
//! same query without them.
//!
//! The searcher is a Viewer (customers, contacts and the company: the scope is their
//! company and three entities); the writer a Sales user. Queries cycle through four
//! kinds drawn from the demo's own names: a common word ("alpine", a few thousand
//! hits), two words that must both match, a word and the prefix being typed
//! ("alpine cof"), and a customer's unique running number (one hit). Search by
//! meaning is off (the benchmark's data directory has no model): this is words alone.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::runtime::Runtime;

use crate::error::{Error, Result};
use crate::list::{self, PASSWORD, USER};
use crate::load::{self, Client, Latency};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Demo customers (each also gets one or two contacts, indexed too).
    #[arg(long = "search-records", default_value_t = 1_000_000)]
    pub records: u64,
    /// Concurrent searchers, one run per value.
    #[arg(long = "search-clients", value_delimiter = ',', default_value = "1,16")]
    pub clients: Vec<usize>,
    /// Seconds per run.
    #[arg(long = "search-seconds", default_value_t = 10)]
    pub seconds: u64,
    /// Records written per second during the freshness run.
    #[arg(long = "write-rate", default_value_t = 1_000)]
    pub write_rate: u64,
    /// Queries per kind in the in-process permission-overhead comparison.
    #[arg(long = "overhead-queries", default_value_t = 500)]
    pub overhead_queries: usize,
    /// The nexus binary (default: `nexus` beside this benchmark binary).
    #[arg(long = "nexus-bin")]
    pub nexus_bin: Option<PathBuf>,
}

const WRITER: &str = "bench-writer";

#[derive(Debug, Serialize)]
pub struct Report {
    pub records: u64,
    pub seed_seconds: f64,
    /// From listening until the last customer seeded was found.
    pub index_seconds: f64,
    pub runs: Vec<SearchRun>,
    pub freshness: Freshness,
    pub overhead: Vec<Overhead>,
}

#[derive(Debug, Serialize)]
pub struct SearchRun {
    pub clients: usize,
    pub run: load::Run,
}

#[derive(Debug, Serialize)]
pub struct Freshness {
    pub target_writes_per_s: u64,
    pub writes_per_s: f64,
    pub probes: usize,
    /// From a save's acknowledgement until a search finds it.
    pub lag: Latency,
}

#[derive(Debug, Serialize)]
pub struct Overhead {
    pub kind: &'static str,
    pub raw_p50_ms: f64,
    pub scoped_p50_ms: f64,
    pub raw_mean_ms: f64,
    pub scoped_mean_ms: f64,
    pub ratio: f64,
}

/// The four kinds of query, as the `seq`-th query of a run.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Word,
    TwoWords,
    Prefix,
    Number,
}

const KINDS: [(Kind, &str); 4] = [
    (Kind::Word, "one common word"),
    (Kind::TwoWords, "two words"),
    (Kind::Prefix, "a word and a prefix"),
    (Kind::Number, "a unique number"),
];

/// A query of `kind` from the name of a demo customer chosen by `seq`.
fn query(kind: Kind, seq: u64, records: u64) -> String {
    let n = seq.wrapping_mul(2_654_435_761) % records.max(1);
    let name = nexus_crm::demo_customer(n, 42).name;
    let words: Vec<&str> = name.split_whitespace().collect();
    let first = words.first().copied().unwrap_or("alpine");
    let second = words.get(1).copied().unwrap_or(first);
    match kind {
        Kind::Word => first.to_owned(),
        Kind::TwoWords => format!("{first} {second}"),
        Kind::Prefix => {
            let cut: String = second.chars().take(3).collect();
            format!("{first} {cut}")
        }
        Kind::Number => format!("{n:05}"),
    }
}

fn encode(q: &str) -> String {
    q.replace('&', "%26").replace(' ', "+")
}

struct Searcher {
    http: reqwest::Client,
    base: String,
    records: u64,
}

impl Client for Searcher {
    async fn op(&mut self, seq: u64) -> Result<()> {
        let (kind, _) = KINDS[(seq % 4) as usize];
        let q = query(kind, seq / 4, self.records);
        let url = format!(
            "{}/api/v1/search?q={}&mode=text&limit=20",
            self.base,
            encode(&q)
        );
        let res = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| Error::msg(format!("GET {url}: {e}")))?;
        let status = res.status();
        let body = res
            .text()
            .await
            .map_err(|e| Error::msg(format!("GET {url}: {e}")))?;
        if !status.is_success() || !body.contains("\"hits\":[{") {
            return Err(Error::msg(format!(
                "GET {url}: {status}, expected hits: {}",
                body.chars().take(300).collect::<String>()
            )));
        }
        Ok(())
    }
}

async fn total(http: &reqwest::Client, base: &str, q: &str) -> Result<u64> {
    let url = format!("{base}/api/v1/search?q={}&mode=text", encode(q));
    let res = http
        .get(&url)
        .send()
        .await
        .map_err(|e| Error::msg(format!("GET {url}: {e}")))?;
    if !res.status().is_success() {
        return Err(Error::msg(format!("GET {url}: {}", res.status())));
    }
    let body: serde_json::Value = res
        .json()
        .await
        .map_err(|e| Error::msg(format!("GET {url}: {e}")))?;
    Ok(body["total"].as_u64().unwrap_or(0))
}

pub fn run(rt: &Runtime, args: &Args) -> Result<Report> {
    let bin = list::locate_nexus(args.nexus_bin.as_deref())?;
    println!(
        "\n## Full-text search over HTTPS: {} customers and their contacts",
        args.records
    );
    println!("seeding {} customers with `nexus demo` …", args.records);
    let (mut appliance, port, ca, seed_seconds) =
        list::start(&bin, args.records, &[(USER, "Viewer"), (WRITER, "Sales")])?;
    println!("seeded and listening in {seed_seconds:.1} s");
    let base = format!("https://localhost:{port}");
    let (index_seconds, runs, freshness) = rt.block_on(async {
        let viewer = list::client(&ca)?;
        list::sign_in(&viewer, &base, USER).await?;
        // Indexed once the last customer seeded is found.
        let last = format!("{:05}", args.records.saturating_sub(1));
        let started = Instant::now();
        while total(&viewer, &base, &last).await? == 0 {
            if started.elapsed() > Duration::from_secs(3_600) {
                return Err(Error::msg("the index did not catch up within an hour"));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let index_seconds = started.elapsed().as_secs_f64();
        // The indexer follows the log while `nexus demo` seeds: what is left is its lag.
        println!("the index had caught up {index_seconds:.1} s after seeding ended");
        let mut runs = Vec::new();
        for &clients in &args.clients {
            let mut searchers = Vec::with_capacity(clients);
            for _ in 0..clients {
                let http = list::client(&ca)?;
                list::sign_in(&http, &base, USER).await?;
                searchers.push(Searcher {
                    http,
                    base: base.clone(),
                    records: args.records,
                });
            }
            let run = load::drive(searchers, Duration::from_secs(args.seconds)).await?;
            runs.push(SearchRun { clients, run });
        }
        let freshness = freshness(&ca, &base, args).await?;
        Ok::<_, Error>((index_seconds, runs, freshness))
    })?;
    let data = appliance.stop();
    let overhead = overhead(rt, &data, args)?;
    drop(appliance);

    println!();
    println!("| searchers | queries/s | p50 ms | p99 ms | max ms |");
    println!("|---:|---:|---:|---:|---:|");
    for r in &runs {
        println!(
            "| {} | {:.0} | {:.1} | {:.1} | {:.1} |",
            r.clients,
            r.run.ops_per_s,
            r.run.latency.p50_ms,
            r.run.latency.p99_ms,
            r.run.latency.max_ms
        );
    }
    println!(
        "\nfreshness at {:.0} writes/s (target {}): {} probes found after p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        freshness.writes_per_s,
        freshness.target_writes_per_s,
        freshness.probes,
        freshness.lag.p50_ms,
        freshness.lag.p99_ms,
        freshness.lag.max_ms
    );
    println!("\npermissions in the query, in-process on the same index (one searcher):");
    println!(
        "| query | raw p50 ms | scoped p50 ms | raw mean ms | scoped mean ms | scoped / raw |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for o in &overhead {
        println!(
            "| {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2}× |",
            o.kind, o.raw_p50_ms, o.scoped_p50_ms, o.raw_mean_ms, o.scoped_mean_ms, o.ratio
        );
    }
    Ok(Report {
        records: args.records,
        seed_seconds,
        index_seconds,
        runs,
        freshness,
        overhead,
    })
}

/// Writers create customers at `write_rate` in all while a probe saves one of its own
/// every 100 ms and searches for it until found.
async fn freshness(ca: &str, base: &str, args: &Args) -> Result<Freshness> {
    const WRITERS: u64 = 16;
    let budget = Duration::from_secs(args.seconds);
    let deadline = Instant::now() + budget;
    let period = Duration::from_secs_f64(WRITERS as f64 / args.write_rate.max(1) as f64);
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..WRITERS {
        let http = list::client(ca)?;
        let csrf = list::sign_in(&http, base, WRITER).await?;
        let base = base.to_owned();
        tasks.spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            let mut written = 0u64;
            while Instant::now() < deadline {
                tick.tick().await;
                let name = format!("Load writer {w} record {written}");
                create(&http, &base, &csrf, &name).await?;
                written += 1;
            }
            Ok::<u64, Error>(written)
        });
    }
    let probe = list::client(ca)?;
    let csrf = list::sign_in(&probe, base, WRITER).await?;
    let started = Instant::now();
    let mut lags = Vec::new();
    let mut k = 0u64;
    while Instant::now() < deadline {
        let token = format!("probe{k}x");
        create(&probe, base, &csrf, &format!("Freshness {token}")).await?;
        let saved = Instant::now();
        loop {
            if total(&probe, base, &token).await? > 0 {
                lags.push(saved.elapsed());
                break;
            }
            if saved.elapsed() > Duration::from_secs(60) {
                return Err(Error::msg(format!("{token} was not found within a minute")));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        k += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut written = k;
    while let Some(joined) = tasks.join_next().await {
        written += joined.map_err(|e| Error::msg(e.to_string()))??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    Ok(Freshness {
        target_writes_per_s: args.write_rate,
        writes_per_s: written as f64 / elapsed,
        probes: lags.len(),
        lag: load::latency_of(lags),
    })
}

async fn create(http: &reqwest::Client, base: &str, csrf: &str, name: &str) -> Result<()> {
    let res = http
        .post(format!("{base}/api/v1/customer"))
        .header("x-csrf-token", csrf)
        .json(&serde_json::json!({ "name": name, "status": "Active" }))
        .send()
        .await
        .map_err(|e| Error::msg(format!("creating {name}: {e}")))?;
    if res.status() == reqwest::StatusCode::CREATED {
        Ok(())
    } else {
        Err(Error::msg(format!("creating {name}: {}", res.status())))
    }
}

/// The same queries through the index with and without the Viewer's scope, one after
/// the other, in this process on the stopped server's index.
fn overhead(rt: &Runtime, data: &std::path::Path, args: &Args) -> Result<Vec<Overhead>> {
    nexus_kernel::registry::install(&[&nexus_crm::CRM, &nexus_ledger::entities::LEDGER])
        .map_err(|e| Error::msg(format!("installing the modules: {e}")))?;
    let store = nexus_store::Store::open(&data.join("nexus.redb"))
        .map_err(|e| Error::msg(format!("opening the store: {e}")))?;
    let kernel = nexus_kernel::Kernel::new(store, Arc::new(nexus_kernel::SystemClock));
    let who = rt
        .block_on(kernel.login(USER, PASSWORD, None))
        .map_err(|e| Error::msg(format!("signing in: {e}")))?
        .1
        .principal;
    let index = nexus_search::SearchIndex::open(data.join("search"))
        .map_err(|e| Error::msg(format!("opening the index: {e}")))?;
    let mut out = Vec::new();
    for (kind, label) in KINDS {
        let mut raw = Vec::with_capacity(args.overhead_queries);
        let mut scoped = Vec::with_capacity(args.overhead_queries);
        for i in 0..args.overhead_queries as u64 {
            let request = nexus_search::SearchRequest {
                text: query(kind, i, args.records),
                limit: 20,
                ..Default::default()
            };
            for (with_scope, into) in [(false, &mut raw), (true, &mut scoped)] {
                let t = Instant::now();
                let n = index
                    .words_only(&who, &request, with_scope)
                    .map_err(|e| Error::msg(format!("{:?}: {e}", request.text)))?;
                into.push(t.elapsed());
                if n == 0 {
                    return Err(Error::msg(format!("{:?} found nothing", request.text)));
                }
            }
        }
        let mean = |v: &[Duration]| {
            v.iter().map(Duration::as_secs_f64).sum::<f64>() * 1000.0 / v.len().max(1) as f64
        };
        let (raw_mean_ms, scoped_mean_ms) = (mean(&raw), mean(&scoped));
        out.push(Overhead {
            kind: label,
            raw_p50_ms: load::latency_of(raw).p50_ms,
            scoped_p50_ms: load::latency_of(scoped).p50_ms,
            raw_mean_ms,
            scoped_mean_ms,
            ratio: scoped_mean_ms / raw_mean_ms.max(1e-9),
        });
    }
    drop(index);
    drop(kernel);
    Ok(out)
}
