//! A closed-loop load generator shared by every section: N clients, each issuing one
//! operation after the other until the wall-clock budget is spent.
//!
//! Throughput is every completed operation divided by the time from the start until the
//! last client finished its last operation, so operations still in flight at the
//! deadline are neither lost nor counted for free.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::task::JoinSet;

use crate::error::{Error, Result};
use crate::interrupt;

/// One simulated client: its own connection or handle, driven by one task.
pub trait Client: Send + 'static {
    /// Performs this client's operation number `seq` (0, 1, 2, … per client) and
    /// fails on any error: a benchmark that skips failures measures nothing.
    fn op(&mut self, seq: u64) -> impl Future<Output = Result<()>> + Send;
}

/// The outcome of one timed run.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    /// Operations that completed successfully.
    pub ops: u64,
    /// Seconds from the start until the last client stopped.
    pub elapsed_s: f64,
    pub ops_per_s: f64,
    pub latency: Latency,
}

/// Per-operation latency in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Latency {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// Runs every client until `budget` has passed, or until one fails or the user
/// presses Ctrl-C (then the others stop after their current operation and the run is
/// an error).
pub async fn drive<C: Client>(clients: Vec<C>, budget: Duration) -> Result<Run> {
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let deadline = start + budget;
    let mut tasks = JoinSet::new();
    for client in clients {
        tasks.spawn(run_client(client, deadline, stop.clone()));
    }
    let mut samples: Vec<Duration> = Vec::new();
    let mut failure: Option<Error> = None;
    while let Some(joined) = tasks.join_next().await {
        let error = match joined {
            Ok(Ok(mut s)) => {
                samples.append(&mut s);
                continue;
            }
            Ok(Err(e)) => e,
            Err(e) => Error::msg(format!("a client task died: {e}")),
        };
        stop.store(true, Ordering::Relaxed);
        failure.get_or_insert(error);
    }
    let elapsed = start.elapsed();
    if let Some(e) = failure {
        return Err(e);
    }
    interrupt::check()?;
    Ok(summarise(samples, elapsed))
}

/// One client's loop; returns the latency of each operation.
async fn run_client<C: Client>(
    mut client: C,
    deadline: Instant,
    stop: Arc<AtomicBool>,
) -> Result<Vec<Duration>> {
    let mut samples = Vec::with_capacity(4096);
    let mut seq = 0u64;
    while Instant::now() < deadline && !stop.load(Ordering::Relaxed) && !interrupt::requested() {
        let began = Instant::now();
        client.op(seq).await?;
        samples.push(began.elapsed());
        seq += 1;
    }
    Ok(samples)
}

fn summarise(samples: Vec<Duration>, elapsed: Duration) -> Run {
    let ops = samples.len() as u64;
    let secs = elapsed.as_secs_f64();
    Run {
        ops,
        elapsed_s: secs,
        ops_per_s: if secs > 0.0 { ops as f64 / secs } else { 0.0 },
        latency: latency_of(samples),
    }
}

/// The median, 99th percentile and maximum of `samples`.
pub fn latency_of(mut samples: Vec<Duration>) -> Latency {
    samples.sort_unstable();
    Latency {
        p50_ms: percentile_ms(&samples, 0.50),
        p99_ms: percentile_ms(&samples, 0.99),
        max_ms: samples.last().map_or(0.0, millis),
    }
}

/// The nearest-rank percentile `p` (0..=1) of sorted samples, in milliseconds.
fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    let index = rank.clamp(1, sorted.len()) - 1;
    sorted.get(index).map_or(0.0, millis)
}

fn millis(d: &Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let ms = |n: u64| Duration::from_millis(n);
        let samples: Vec<Duration> = (1..=100).map(ms).collect();
        assert!((percentile_ms(&samples, 0.50) - 50.0).abs() < 1e-9);
        assert!((percentile_ms(&samples, 0.99) - 99.0).abs() < 1e-9);
        assert!((percentile_ms(&[ms(7)], 0.99) - 7.0).abs() < 1e-9);
        assert!(percentile_ms(&[], 0.5).abs() < 1e-9);
    }

    struct Counter;

    impl Client for Counter {
        async fn op(&mut self, _seq: u64) -> Result<()> {
            tokio::time::sleep(Duration::from_millis(1)).await;
            Ok(())
        }
    }

    struct Failing;

    impl Client for Failing {
        async fn op(&mut self, seq: u64) -> Result<()> {
            if seq == 3 {
                return Err(Error::msg("boom"));
            }
            Ok(())
        }
    }

    #[tokio::test]
    async fn counts_every_completed_operation() -> Result<()> {
        let run = drive(vec![Counter, Counter], Duration::from_millis(50)).await?;
        assert!(run.ops > 2, "{run:?}");
        assert!(run.elapsed_s >= 0.05, "{run:?}");
        Ok(())
    }

    #[tokio::test]
    async fn one_failing_client_fails_the_run() {
        let outcome = drive(vec![Failing], Duration::from_secs(5)).await;
        assert!(matches!(outcome, Err(e) if e.to_string() == "boom"));
    }
}
