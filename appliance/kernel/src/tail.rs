//! Reading the event log, and the tailer contract for everything derived from it.
//!
//! A tailer is anything built from the event log: live updates and the search index
//! (`nexus-search`) now; webhooks, rollups and the PostgreSQL mirror later. The
//! contract:
//!
//! * it is given **whole commands**, in order (never half of one);
//! * it keeps its **position** (the last sequence it applied) in the same place and the
//!   same commit as what it built — for an index, in the index's own commit — and says
//!   where it is when it starts ([`Tailer::position`]), so after a crash it resumes
//!   exactly where its state ends;
//! * a failed apply ([`TailError::Retry`]) is **retried with backoff, never skipped**;
//! * an entry that cannot be applied — it cannot be read, or the tailer answers
//!   [`TailError::Stop`] — **stops that tailer, visibly** (its [`TailerStatus`] on the
//!   admin page and in `/metrics`), and no other;
//! * its lag (head − position) is published the same way.
//!
//! The log is never pruned today: it is also the audit trail (kept for years). When
//! pruning comes, it stops at the lowest position of every registered tailer.

use std::collections::BTreeMap;
use std::ops::{Bound, ControlFlow};
use std::time::Duration;

use nexus_store::{Table, decode_u64, u64_key};

use crate::Kernel;
use crate::entity::EntityDef;
use crate::error::KernelError;
use crate::event::{Event, Image};

/// One command's events, in order (contiguous in the log).
#[derive(Debug, Clone, PartialEq)]
pub struct CommandEvents {
    /// The command's id: the `seq` of its first event.
    pub command: u64,
    pub events: Vec<Event>,
}

impl CommandEvents {
    /// The `seq` of the command's last event.
    pub fn last_seq(&self) -> u64 {
        self.events.last().map_or(self.command, |e| e.seq)
    }
}

/// Why a tailer could not apply what it was given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TailError {
    /// Worth trying again (a busy disk, a peer that is down): retried with backoff.
    #[error("{0}")]
    Retry(String),
    /// This command can never be applied: the tailer stops here, visibly.
    #[error("{0}")]
    Stop(String),
}

/// Something derived from the event log (see the module documentation).
pub trait Tailer: Send + 'static {
    /// Stable name: how the admin page and `/metrics` show it.
    fn name(&self) -> &'static str;

    /// The last sequence the tailer's own state holds, read from where it keeps that
    /// state. `head` is the log's head now: a tailer that builds nothing durable (live
    /// updates) starts there.
    fn position(&mut self, head: u64) -> Result<u64, TailError>;

    /// Applies whole commands, in order, and makes the result and the new position
    /// (`commands.last().last_seq()`) durable together. Called again with the same
    /// commands after a [`TailError::Retry`].
    fn apply(&mut self, commands: &[CommandEvents]) -> Result<(), TailError>;
}

/// What a tailer is doing, for the admin page and `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TailerState {
    /// Applying, or caught up and waiting for the next commit.
    Running,
    /// The last apply failed; it is tried again after a pause.
    Retrying { attempt: u32, error: String },
    /// Stopped at the command after `position`; nothing after it is applied until the
    /// appliance restarts with a fix.
    Stopped { at: u64, error: String },
}

/// One tailer's published state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TailerStatus {
    pub name: &'static str,
    pub position: u64,
    pub state: TailerState,
    /// Failed applies since start.
    pub retries: u64,
}

impl TailerStatus {
    /// How far behind the given head this tailer is.
    pub fn lag(&self, head: u64) -> u64 {
        head.saturating_sub(self.position)
    }
}

/// The tailers of one kernel, by name.
#[derive(Default)]
pub(crate) struct Tailers(BTreeMap<&'static str, TailerStatus>);

impl Kernel {
    /// Every tailer that has started, by name.
    pub fn tailers(&self) -> Vec<TailerStatus> {
        self.tailer_registry().0.values().cloned().collect()
    }

    fn publish(&self, status: &TailerStatus) {
        self.tailer_registry().0.insert(status.name, status.clone());
    }

    /// The last sequence in the event log.
    pub fn log_head(&self) -> u64 {
        self.store().head()
    }

    /// Up to about `limit` events after `after`, as whole commands: a command is never
    /// cut, so the last one may take the count past `limit`. An event that cannot be
    /// read is an error naming its sequence, once the commands before it (but the one
    /// it may belong to) have been given.
    pub fn commands_since(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<CommandEvents>, (u64, KernelError)> {
        let read = self.store().read().map_err(|e| (after + 1, e.into()))?;
        let start = u64_key(after.saturating_add(1));
        let mut out: Vec<CommandEvents> = Vec::new();
        let mut count = 0usize;
        let mut err = None;
        let scanned = read.scan(Table::ChangeLog, start.as_slice().., false, |k, v| {
            let seq = decode_u64(k).unwrap_or(0);
            let event = match Event::decode(v) {
                Ok(e) if e.seq == seq => e,
                Ok(e) => {
                    err = Some((
                        seq,
                        KernelError::Internal(format!("event {seq} claims to be event {}", e.seq)),
                    ));
                    return ControlFlow::Break(());
                }
                Err(e) => {
                    err = Some((seq, e));
                    return ControlFlow::Break(());
                }
            };
            match out.last_mut() {
                Some(c) if c.command == event.command => c.events.push(event),
                _ if count >= limit => return ControlFlow::Break(()),
                _ => out.push(CommandEvents {
                    command: event.command,
                    events: vec![event],
                }),
            }
            count += 1;
            ControlFlow::Continue(())
        });
        scanned.map_err(|e| (after + 1, e.into()))?;
        match err {
            None => Ok(out),
            // What came before a damaged event is given first, less the last command:
            // the damaged event may belong to it, and half a command is never given.
            // The next call starts there and meets the damage at once.
            Some(e) => {
                out.pop();
                if out.is_empty() { Err(e) } else { Ok(out) }
            }
        }
    }

    /// Every stored record of every entity in every company, from one snapshot, with
    /// the log's head in that snapshot: what a derived index rebuilt from the store
    /// holds at that position (it then follows the log from there). `visit` gets each
    /// record's image as its events carry it; it breaks to stop early.
    pub fn snapshot_records(
        &self,
        mut visit: impl FnMut(&'static EntityDef, u64, u64, &Image) -> ControlFlow<()>,
    ) -> Result<u64, KernelError> {
        let read = self.store().read()?;
        let mut head = 0;
        read.scan(Table::ChangeLog, .., true, |k, _| {
            head = decode_u64(k).unwrap_or(0);
            ControlFlow::Break(())
        })?;
        // Documents are records too, though not the registry's.
        let documents: &'static EntityDef = &crate::documents::DOCUMENT;
        for def in crate::registry::entities().chain([documents]) {
            let mut failed = None;
            let mut stopped = false;
            let scope = def.code.to_be_bytes();
            let end = nexus_store::prefix_end(&scope);
            let range = (
                Bound::Included(scope.as_slice()),
                end.as_deref().map_or(Bound::Unbounded, Bound::Excluded),
            );
            read.scan(
                Table::Records,
                range,
                false,
                |_, v| match crate::record::Record::decode(def, v) {
                    Ok(rec) => {
                        let flow = visit(def, rec.company, rec.id, &rec.audit_image(def));
                        stopped = flow.is_break();
                        flow
                    }
                    Err(e) => {
                        failed = Some(e);
                        ControlFlow::Break(())
                    }
                },
            )?;
            if let Some(e) = failed {
                return Err(e);
            }
            if stopped {
                break;
            }
        }
        Ok(head)
    }

    /// Up to `limit` events after `after`, in order (for replaying to a browser).
    pub fn events_since(&self, after: u64, limit: usize) -> Result<Vec<Event>, KernelError> {
        let commands = self.commands_since(after, limit).map_err(|(_, e)| e)?;
        Ok(commands
            .into_iter()
            .flat_map(|c| c.events)
            .take(limit)
            .collect())
    }
}

/// How many events a tailer is given at most in one apply (a command is never cut).
const TAIL_CHUNK: usize = 1000;
/// The first pause after a failed apply; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Follows the event log under the tailer contract until the store goes away (`Ok`)
/// or the tailer stops on an entry it cannot apply (`Err`, also published as
/// [`TailerState::Stopped`]).
pub async fn run_tailer(kernel: Kernel, mut tailer: impl Tailer) -> Result<(), KernelError> {
    let mut head = kernel.store().subscribe();
    let name = tailer.name();
    let mut status = TailerStatus {
        name,
        position: 0,
        state: TailerState::Running,
        retries: 0,
    };
    let stop = |kernel: &Kernel, status: &mut TailerStatus, at: u64, error: String| {
        tracing::error!(tailer = status.name, at, error = %error, "tailer stopped");
        status.state = TailerState::Stopped {
            at,
            error: error.clone(),
        };
        kernel.publish(status);
        KernelError::Internal(format!(
            "tailer {} stopped at event {at}: {error}",
            status.name
        ))
    };
    let mut backoff = FIRST_BACKOFF;
    let mut attempt = 0u32;
    loop {
        match tailer.position(kernel.log_head()) {
            Ok(p) => {
                status.position = p;
                break;
            }
            Err(TailError::Stop(e)) => return Err(stop(&kernel, &mut status, 0, e)),
            Err(TailError::Retry(e)) => {
                attempt += 1;
                status.retries += 1;
                status.state = TailerState::Retrying { attempt, error: e };
                kernel.publish(&status);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
    status.state = TailerState::Running;
    kernel.publish(&status);
    loop {
        loop {
            let batch = match kernel.commands_since(status.position, TAIL_CHUNK) {
                Ok(b) => b,
                Err((at, e)) => return Err(stop(&kernel, &mut status, at, e.to_string())),
            };
            let Some(last) = batch.last().map(CommandEvents::last_seq) else {
                break;
            };
            let mut backoff = FIRST_BACKOFF;
            let mut attempt = 0u32;
            loop {
                match tailer.apply(&batch) {
                    Ok(()) => break,
                    Err(TailError::Stop(e)) => {
                        let at = batch.first().map_or(status.position + 1, |c| c.command);
                        return Err(stop(&kernel, &mut status, at, e));
                    }
                    Err(TailError::Retry(e)) => {
                        attempt += 1;
                        status.retries += 1;
                        tracing::warn!(tailer = name, attempt, error = %e, "tailer apply failed; retrying");
                        status.state = TailerState::Retrying { attempt, error: e };
                        kernel.publish(&status);
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                    }
                }
            }
            status.position = last;
            status.state = TailerState::Running;
            kernel.publish(&status);
        }
        if head.changed().await.is_err() {
            return Ok(());
        }
    }
}
