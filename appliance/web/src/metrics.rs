//! Prometheus metrics in the text exposition format, and the request counter.

use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::AppState;

#[derive(Debug, Default)]
pub struct Metrics {
    /// Responses by status class: 1xx..5xx.
    pub responses: [AtomicU64; 5],
    /// Sum of request durations, in microseconds.
    pub request_micros: AtomicU64,
    pub sse_clients: AtomicU64,
}

pub async fn count(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let res = next.run(req).await;
    let class = (res.status().as_u16() / 100).clamp(1, 5) as usize - 1;
    metrics.responses[class].fetch_add(1, Ordering::Relaxed);
    metrics
        .request_micros
        .fetch_add(start.elapsed().as_micros() as u64, Ordering::Relaxed);
    res
}

/// `GET /metrics`: to a scraper sending `Authorization: Bearer <data_dir/metrics.token>`,
/// or to a signed-in administrator; anyone else is refused (401, or 403 signed in).
/// The figures say how busy the box is and whether its writer and tailers are up:
/// not for everyone on the LAN.
pub async fn render(State(state): State<AppState>, request: axum::extract::Request) -> Response {
    let (parts, _) = request.into_parts();
    let bearer = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    // A scraper reads plain answers: 401 with how to authenticate, or 403.
    let refuse = |status: StatusCode, why: &'static str| {
        (
            status,
            [
                (header::WWW_AUTHENTICATE, "Bearer realm=\"nexus metrics\""),
                (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            ],
            why,
        )
            .into_response()
    };
    let allowed = match bearer {
        Some(token) => crate::session::ct_eq(token.trim(), &state.info.metrics_token),
        None => match crate::session::authenticate(&parts, &state) {
            Ok(auth) if auth.who().administers_box() => true,
            Ok(_) => {
                return refuse(
                    StatusCode::FORBIDDEN,
                    "the metrics are for administrators and the metrics scraper\n",
                );
            }
            Err(_) => false,
        },
    };
    if !allowed {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "send the token in <data dir>/metrics.token as a bearer token, or sign in as an administrator\n",
        );
    }
    let m = &state.metrics;
    let stats = state.kernel.writer_stats();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP nexus_http_responses_total HTTP responses by status class."
    );
    let _ = writeln!(out, "# TYPE nexus_http_responses_total counter");
    for (i, c) in m.responses.iter().enumerate() {
        let _ = writeln!(
            out,
            "nexus_http_responses_total{{class=\"{}xx\"}} {}",
            i + 1,
            c.load(Ordering::Relaxed)
        );
    }
    let _ = writeln!(
        out,
        "# HELP nexus_http_request_seconds_total Time spent serving requests."
    );
    let _ = writeln!(out, "# TYPE nexus_http_request_seconds_total counter");
    let _ = writeln!(
        out,
        "nexus_http_request_seconds_total {:.6}",
        m.request_micros.load(Ordering::Relaxed) as f64 / 1e6
    );
    let gauges: [(&str, &str, u64); 7] = [
        (
            "nexus_event_log_head",
            "Last committed event-log sequence.",
            state.kernel.log_head(),
        ),
        (
            "nexus_store_commands_total",
            "Store commands committed.",
            stats.commands,
        ),
        (
            "nexus_store_commits_total",
            "Durable store commits (batches synced to the write-ahead log).",
            stats.commits,
        ),
        (
            "nexus_store_checkpoints_total",
            "Checkpoints (durable data-file commits after which the log starts over).",
            stats.checkpoints,
        ),
        (
            "nexus_store_replayed_batches",
            "Batches applied from the write-ahead log when the store opened (after a crash).",
            stats.replayed,
        ),
        (
            "nexus_store_rejected_total",
            "Store commands refused (validation, conflicts).",
            stats.rejected,
        ),
        (
            "nexus_sse_clients",
            "Browsers following live updates.",
            m.sse_clients.load(Ordering::Relaxed),
        ),
    ];
    for (name, help, value) in gauges {
        let kind = if name.ends_with("_total") {
            "counter"
        } else {
            "gauge"
        };
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    }
    let _ = writeln!(
        out,
        "# HELP nexus_store_writer_up 1 while the store's writer accepts writes, 0 once it halted.\n# TYPE nexus_store_writer_up gauge\nnexus_store_writer_up {}",
        u8::from(state.kernel.health().is_ok())
    );
    tailer_metrics(&mut out, &state.kernel);
    let _ = writeln!(
        out,
        "# HELP nexus_uptime_seconds Seconds since start.\n# TYPE nexus_uptime_seconds gauge\nnexus_uptime_seconds {}",
        state.info.started.elapsed().as_secs()
    );
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response()
}

/// Each tailer's position, lag, state and retries (the tailer contract's visibility).
fn tailer_metrics(out: &mut String, kernel: &nexus_kernel::Kernel) {
    use nexus_kernel::TailerState;
    let head = kernel.log_head();
    let tailers = kernel.tailers();
    let series: [(&str, &str, &str); 4] = [
        (
            "nexus_tailer_position",
            "gauge",
            "Last event-log sequence a tailer applied.",
        ),
        (
            "nexus_tailer_lag",
            "gauge",
            "Events a tailer is behind the log's head.",
        ),
        (
            "nexus_tailer_up",
            "gauge",
            "1 while a tailer runs (or retries), 0 once it stopped.",
        ),
        (
            "nexus_tailer_retries_total",
            "counter",
            "Failed applies a tailer retried.",
        ),
    ];
    for (name, kind, help) in series {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for t in &tailers {
            let value = match name {
                "nexus_tailer_position" => t.position,
                "nexus_tailer_lag" => t.lag(head),
                "nexus_tailer_up" => u64::from(!matches!(t.state, TailerState::Stopped { .. })),
                _ => t.retries,
            };
            let _ = writeln!(out, "{name}{{tailer=\"{}\"}} {value}", t.name);
        }
    }
}
