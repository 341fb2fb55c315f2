//! Live updates: the first event-log tailer, and the SSE endpoint browsers follow.
//!
//! [`LiveFeed`] follows the event log (see `nexus_kernel::run_tailer`) and publishes
//! each event on a broadcast channel. `GET /events` streams the events a user may see;
//! a browser that reconnects sends `Last-Event-ID` and first gets what it missed,
//! straight from the durable event log.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream, StreamExt};
use std::sync::Arc;

use nexus_kernel::{Action, CommandEvents, Event as LogEvent, Principal, TailError, Tailer};
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;

use crate::AppState;
use crate::error::WebError;
use crate::session::Auth;

/// How many missed changes a reconnecting browser is sent at most.
const REPLAY_LIMIT: usize = 1000;

/// Publishes every committed event to the live channel. It builds nothing durable, so
/// it starts at the head: a browser that was away catches up from the log itself.
pub struct LiveFeed {
    pub tx: broadcast::Sender<Arc<LogEvent>>,
}

impl Tailer for LiveFeed {
    fn name(&self) -> &'static str {
        "live"
    }

    fn position(&mut self, head: u64) -> Result<u64, TailError> {
        Ok(head)
    }

    fn apply(&mut self, commands: &[CommandEvents]) -> Result<(), TailError> {
        for e in commands.iter().flat_map(|c| &c.events) {
            // No subscriber is not an error: nobody is looking.
            let _ = self.tx.send(Arc::new(e.clone()));
        }
        Ok(())
    }
}

fn visible(who: &Principal, e: &LogEvent) -> bool {
    e.company == who.company && who.can(&e.entity, Action::Read)
}

fn event(e: &LogEvent) -> Event {
    let data = serde_json::json!({ "entity": e.entity, "id": e.record, "op": e.op.as_str(), "version": e.version, "actor": e.actor });
    Event::default()
        .id(e.seq.to_string())
        .event("change")
        .data(data.to_string())
}

pub async fn events(
    State(state): State<AppState>,
    auth: Auth,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, WebError> {
    let who = auth.session.principal.clone();
    // Subscribe before reading the backlog, so nothing falls between the two.
    let live = BroadcastStream::new(state.live.subscribe());
    let last: Option<u64> = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let (backlog, mut sent) = match last {
        Some(after) => {
            let missed = state.kernel.events_since(after, REPLAY_LIMIT)?;
            let upto = missed.last().map_or(after, |e| e.seq);
            (missed, upto)
        }
        None => (Vec::new(), state.kernel.log_head()),
    };
    state
        .metrics
        .sse_clients
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let guard = ClientGuard(state.metrics.clone());
    let who_backlog = who.clone();
    let replay = stream::iter(
        backlog
            .into_iter()
            .filter(move |e| visible(&who_backlog, e))
            .map(|e| Ok(event(&e))),
    );
    // A stream lives only as long as its session, in the company it was opened for:
    // each event about to be sent asks who the session acts as now (signing out, a
    // password reset, a deactivation or a lost membership ends it; a switch to another
    // company ends it too, and the page opens a new one), and sends only what that
    // principal may read.
    let token = auth.session_token("follow live updates")?.to_string();
    let kernel = state.kernel.clone();
    let follow = live
        .map(move |item| {
            let _keep = &guard;
            match item {
                Ok(e) if e.seq > sent => {
                    sent = e.seq;
                    if !visible(&who, &e) {
                        Next::Skip
                    } else {
                        match kernel.acting(&token) {
                            Ok(now) if now.company != who.company => Next::End,
                            Ok(now) if visible(&now, &e) => Next::Send(event(&e)),
                            Ok(_) => Next::Skip,
                            Err(_) => Next::End,
                        }
                    }
                }
                Ok(_) => Next::Skip,
                // The browser fell behind the channel; tell it to reload what it shows.
                Err(_) => Next::Send(Event::default().event("lagged").data("{}")),
            }
        })
        .take_while(|next| std::future::ready(!matches!(next, Next::End)))
        .filter_map(|next| {
            std::future::ready(match next {
                Next::Send(e) => Some(Ok(e)),
                Next::Skip | Next::End => None,
            })
        });
    Ok(Sse::new(replay.chain(follow))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// What the follow stream does with one item.
enum Next {
    Send(Event),
    Skip,
    End,
}

struct ClientGuard(std::sync::Arc<crate::metrics::Metrics>);

impl Drop for ClientGuard {
    fn drop(&mut self) {
        self.0
            .sse_clients
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}
