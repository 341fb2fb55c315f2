//! A tailer beside the write load: how far behind the event log's head a tailer runs
//! while clients create as fast as they can.
//!
//! The tailer ([`LagTailer`]) builds nothing: it counts what it is given and keeps its
//! position in memory. A sampler looks every [`SAMPLE_EVERY`] at the log's head and at
//! the tailer's published position ([`Kernel::tailers`]): head − position is the lag in
//! events. Each sample also marks the head it saw; the tailer notes when its position
//! first reaches a marked head, which gives the lag in milliseconds (zero when the
//! tailer was already there).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use nexus_kernel::{CommandEvents, Kernel, TailError, Tailer, TailerState, run_tailer};
use serde::Serialize;
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;

use crate::error::{Error, Result};
use crate::load::{self, Latency};

/// The tailer's name, as [`Kernel::tailers`] shows it.
const NAME: &str = "bench.lag";
/// How often the sampler looks.
const SAMPLE_EVERY: Duration = Duration::from_millis(10);
/// How long the tailer may take to start, and to catch up once the load has ended.
const START_WITHIN: Duration = Duration::from_secs(10);
const CATCH_UP_WITHIN: Duration = Duration::from_secs(60);

/// How far behind the head the tailer ran during the load.
#[derive(Debug, Clone, Serialize)]
pub struct Lag {
    /// Samples taken (one every 10 ms).
    pub samples: usize,
    /// Head − published position, in events.
    pub events_p50: u64,
    pub events_p99: u64,
    pub events_max: u64,
    /// From a sample until the tailer's position reached the head that sample saw.
    pub ms: Latency,
    /// Commands and events the tailer applied (every event the load committed).
    pub commands: u64,
    pub events: u64,
    /// After the load stopped, how long the tailer took to reach the head.
    pub catch_up_ms: f64,
    /// Failed applies (must be zero: this tailer never fails).
    pub retries: u64,
}

/// What the tailer and the sampler share; one lock, so a mark is never left behind a
/// position that has already passed it.
#[derive(Default)]
struct Shared {
    /// The tailer's position, as of its last apply.
    position: u64,
    /// Heads seen by the sampler that the tailer had not reached yet, oldest first.
    marks: VecDeque<(Instant, u64)>,
    /// How long each mark waited (zero for a head already reached when sampled).
    waits: Vec<Duration>,
    commands: u64,
    events: u64,
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    // Nothing panics while holding the lock; a poisoned one still holds good data.
    shared
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Counts what it is given; starts at the head.
struct LagTailer {
    shared: Arc<Mutex<Shared>>,
}

impl Tailer for LagTailer {
    fn name(&self) -> &'static str {
        NAME
    }

    fn position(&mut self, head: u64) -> Result<u64, TailError> {
        lock(&self.shared).position = head;
        Ok(head)
    }

    fn apply(&mut self, commands: &[CommandEvents]) -> Result<(), TailError> {
        let now = Instant::now();
        let mut s = lock(&self.shared);
        for c in commands {
            s.commands += 1;
            s.events += c.events.len() as u64;
        }
        if let Some(last) = commands.last().map(CommandEvents::last_seq) {
            s.position = last;
            while let Some(&(at, head)) = s.marks.front() {
                if head > last {
                    break;
                }
                s.marks.pop_front();
                s.waits.push(now.saturating_duration_since(at));
            }
        }
        Ok(())
    }
}

/// A tailer and its sampler, running beside the load.
pub struct Watch {
    shared: Arc<Mutex<Shared>>,
    stop: Arc<AtomicBool>,
    tailer: JoinHandle<std::result::Result<(), nexus_kernel::KernelError>>,
    sampler: JoinHandle<Vec<u64>>,
    head_at_start: u64,
}

/// Starts the tailer and, once it has said where it starts, the sampler.
pub fn start(rt: &Runtime, kernel: &Kernel) -> Result<Watch> {
    let shared = Arc::new(Mutex::new(Shared::default()));
    let tailer = rt.spawn(run_tailer(
        kernel.clone(),
        LagTailer {
            shared: shared.clone(),
        },
    ));
    // The tailer starts at the head it is shown: wait for it before any load, so it
    // sees every command of the run.
    let began = Instant::now();
    while !kernel.tailers().iter().any(|t| t.name == NAME) {
        if began.elapsed() > START_WITHIN || tailer.is_finished() {
            tailer.abort();
            return Err(Error::msg("the lag tailer did not start"));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let head_at_start = lock(&shared).position;
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = rt.spawn(sample(kernel.clone(), shared.clone(), stop.clone()));
    Ok(Watch {
        shared,
        stop,
        tailer,
        sampler,
        head_at_start,
    })
}

/// Samples the lag until told to stop; returns the lag in events of each sample.
async fn sample(kernel: Kernel, shared: Arc<Mutex<Shared>>, stop: Arc<AtomicBool>) -> Vec<u64> {
    let mut lags = Vec::with_capacity(4096);
    let mut tick = tokio::time::interval(SAMPLE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let head = kernel.log_head();
        let now = Instant::now();
        if let Some(status) = kernel.tailers().into_iter().find(|t| t.name == NAME) {
            lags.push(status.lag(head));
        }
        let mut s = lock(&shared);
        if s.position >= head {
            s.waits.push(Duration::ZERO);
        } else {
            s.marks.push_back((now, head));
        }
    }
    lags
}

impl Watch {
    /// Stops sampling, waits for the tailer to reach the head, stops it and checks
    /// that it applied every event committed since it started.
    pub fn finish(self, rt: &Runtime, kernel: &Kernel) -> Result<Lag> {
        self.stop.store(true, Ordering::Relaxed);
        let lags = rt
            .block_on(self.sampler)
            .map_err(|e| Error::msg(format!("the lag sampler died: {e}")));
        let head = kernel.log_head();
        let began = Instant::now();
        while lock(&self.shared).position < head {
            if began.elapsed() > CATCH_UP_WITHIN || self.tailer.is_finished() {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let catch_up_ms = began.elapsed().as_secs_f64() * 1000.0;
        let status = kernel.tailers().into_iter().find(|t| t.name == NAME);
        self.tailer.abort();
        // Wait for the task to go, so its kernel handle is dropped before the store is.
        let _ = rt.block_on(self.tailer);
        let (position, commands, events, waits) = {
            let s = lock(&self.shared);
            (s.position, s.commands, s.events, s.waits.clone())
        };
        let lags = lags?;
        let Some(status) = status else {
            return Err(Error::msg(
                "the lag tailer is not among the kernel's tailers",
            ));
        };
        if status.state != TailerState::Running {
            return Err(Error::msg(format!(
                "the lag tailer ended in state {:?}",
                status.state
            )));
        }
        let expected = head.saturating_sub(self.head_at_start);
        if position < head || events != expected {
            return Err(Error::msg(format!(
                "the lag tailer reached {position} of head {head} and applied {events} events, \
                 but {expected} were committed while it ran"
            )));
        }
        let mut sorted = lags;
        sorted.sort_unstable();
        Ok(Lag {
            samples: sorted.len(),
            events_p50: percentile(&sorted, 0.50),
            events_p99: percentile(&sorted, 0.99),
            events_max: sorted.last().copied().unwrap_or(0),
            ms: load::latency_of(waits),
            commands,
            events,
            catch_up_ms,
            retries: status.retries,
        })
    }
}

/// The nearest-rank percentile `p` (0..=1) of sorted values.
fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted
        .get(rank.clamp(1, sorted.len()) - 1)
        .copied()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.5), 50);
        assert_eq!(percentile(&v, 0.99), 99);
        assert_eq!(percentile(&[], 0.5), 0);
    }
}
