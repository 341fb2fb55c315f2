//! Live updates: the first change-log tailer, and the SSE endpoint browsers follow.
//!
//! [`LiveFeed`] follows the change log (see `nexus_kernel::run_tailer`) and publishes
//! each change on a broadcast channel. `GET /events` streams the changes a user may
//! see; a browser that reconnects sends `Last-Event-ID` and first gets what it missed,
//! straight from the durable change log.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream, StreamExt};
use nexus_kernel::{Action, Change, KernelError, Principal, Tailer};
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;

use crate::AppState;
use crate::error::WebError;
use crate::session::Auth;

/// How many missed changes a reconnecting browser is sent at most.
const REPLAY_LIMIT: usize = 1000;

/// Publishes every committed change to the live channel.
pub struct LiveFeed {
    pub tx: broadcast::Sender<(u64, Change)>,
}

impl Tailer for LiveFeed {
    fn name(&self) -> &'static str {
        "live"
    }

    fn apply(&mut self, seq: u64, change: &Change) -> Result<(), KernelError> {
        // No subscriber is not an error: nobody is looking.
        let _ = self.tx.send((seq, change.clone()));
        Ok(())
    }
}

fn visible(who: &Principal, c: &Change) -> bool {
    c.company == who.company && who.can(&c.entity, Action::Read)
}

fn event(seq: u64, c: &Change) -> Event {
    let data = serde_json::json!({ "entity": c.entity, "id": c.id, "op": c.op.as_str(), "version": c.version, "actor": c.actor });
    Event::default()
        .id(seq.to_string())
        .event("change")
        .data(data.to_string())
}

pub async fn events(
    State(state): State<AppState>,
    auth: Auth,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, WebError> {
    let who = auth.session.principal;
    // Subscribe before reading the backlog, so nothing falls between the two.
    let live = BroadcastStream::new(state.live.subscribe());
    let last: Option<u64> = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let (backlog, mut sent) = match last {
        Some(after) => {
            let missed = state.kernel.changes_since(after, REPLAY_LIMIT)?;
            let upto = missed.last().map_or(after, |(s, _)| *s);
            (missed, upto)
        }
        None => (Vec::new(), state.kernel.store().head()),
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
            .filter(move |(_, c)| visible(&who_backlog, c))
            .map(|(seq, c)| Ok(event(seq, &c))),
    );
    let follow = live.filter_map(move |item| {
        let _keep = &guard;
        let out = match item {
            Ok((seq, c)) if seq > sent => {
                sent = seq;
                visible(&who, &c).then(|| Ok(event(seq, &c)))
            }
            Ok(_) => None,
            // The browser fell behind the channel; tell it to reload what it shows.
            Err(_) => Some(Ok(Event::default().event("lagged").data("{}"))),
        };
        std::future::ready(out)
    });
    Ok(Sse::new(replay.chain(follow))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

struct ClientGuard(std::sync::Arc<crate::metrics::Metrics>);

impl Drop for ClientGuard {
    fn drop(&mut self) {
        self.0
            .sse_clients
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}
