//! The one table from errors to HTTP statuses and messages, and the middleware that
//! renders an error as the caller needs it: JSON for the API, a plain message for
//! htmx (shown as a toast), a page for a browser.

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use nexus_kernel::{KernelError, StoreError};

use crate::views;

/// Every way a request can fail.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WebError {
    #[error(transparent)]
    Kernel(#[from] KernelError),
    #[error("this form has expired or came from another site; reload the page and try again")]
    Csrf,
    #[error("the request is too large (the limit is {limit_kib} KiB)")]
    TooLarge { limit_kib: usize },
    #[error("the file is larger than the limit of {limit_mib} MiB; nothing was stored")]
    FileTooLarge { limit_mib: u64 },
    #[error("{0}")]
    FileRefused(String),
    #[error("{0}")]
    Malformed(String),
    #[error("send this request as {expected}")]
    UnsupportedMediaType { expected: &'static str },
    #[error("there is no page at this address")]
    NoRoute,
    #[error("this address does not accept {0} requests")]
    MethodNotAllowed(String),
    #[error("only administrators can open this page")]
    AdminOnly,
    #[error(
        "the appliance took too long to answer (over {0} s); a change you sent may or may not have been saved: check before sending it again"
    )]
    TimedOut(u64),
    #[error(
        "your role requires a second factor: set up an authenticator app at /account/security before you go on"
    )]
    MustEnrolMfa,
    #[error(
        "the Idempotency-Key \"{0}\" was already used for a different request; use a new \
         key for a new request"
    )]
    IdempotencyKeyReused(String),
    #[error(
        "a request with the Idempotency-Key \"{0}\" is still being processed; ask again in \
         a moment"
    )]
    IdempotencyInFlight(String),
    #[error(
        "the request with the Idempotency-Key \"{0}\" was interrupted when the appliance \
         restarted: it may or may not have been saved. Check, then send it again with a \
         new key if it is missing"
    )]
    IdempotencyInterrupted(String),
    #[error(
        "search is not available just now ({0}); the index is rebuilt from the records by \
         itself: try again in a moment"
    )]
    SearchUnavailable(String),
}

impl WebError {
    /// Status, stable machine-readable code.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            WebError::Kernel(k) => match k {
                KernelError::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthenticated"),
                KernelError::BadCredentials => (StatusCode::UNAUTHORIZED, "bad_credentials"),
                KernelError::Throttled { .. } => (StatusCode::TOO_MANY_REQUESTS, "throttled"),
                KernelError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
                KernelError::CodeRequired => (StatusCode::UNAUTHORIZED, "code_required"),
                KernelError::TokenNotAllowed(_) => (StatusCode::FORBIDDEN, "token_not_allowed"),
                KernelError::Forbidden { .. } => (StatusCode::FORBIDDEN, "forbidden"),
                KernelError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
                KernelError::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
                KernelError::Stale { .. } => (StatusCode::CONFLICT, "stale"),
                KernelError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
                KernelError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
                KernelError::BadSetupToken => (StatusCode::FORBIDDEN, "bad_setup_token"),
                KernelError::Store(StoreError::Halted(_)) => {
                    (StatusCode::SERVICE_UNAVAILABLE, "writer_halted")
                }
                KernelError::Store(StoreError::WriterGone) => {
                    (StatusCode::SERVICE_UNAVAILABLE, "writer_stopped")
                }
                KernelError::Store(_) => (StatusCode::SERVICE_UNAVAILABLE, "storage"),
                KernelError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            },
            WebError::Csrf => (StatusCode::FORBIDDEN, "csrf"),
            WebError::TooLarge { .. } | WebError::FileTooLarge { .. } => {
                (StatusCode::PAYLOAD_TOO_LARGE, "too_large")
            }
            WebError::FileRefused(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "file_refused"),
            WebError::Malformed(_) => (StatusCode::BAD_REQUEST, "malformed"),
            WebError::UnsupportedMediaType { .. } => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            WebError::NoRoute => (StatusCode::NOT_FOUND, "no_route"),
            WebError::MethodNotAllowed(_) => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            WebError::AdminOnly => (StatusCode::FORBIDDEN, "admin_only"),
            WebError::TimedOut(_) => (StatusCode::SERVICE_UNAVAILABLE, "timed_out"),
            WebError::MustEnrolMfa => (StatusCode::FORBIDDEN, "mfa_required"),
            WebError::IdempotencyKeyReused(_) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused")
            }
            WebError::IdempotencyInFlight(_) => (StatusCode::CONFLICT, "idempotency_in_flight"),
            WebError::IdempotencyInterrupted(_) => {
                (StatusCode::CONFLICT, "idempotency_interrupted")
            }
            WebError::SearchUnavailable(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, "search_unavailable")
            }
        }
    }

    /// The message a person reads. Internal details stay in the log.
    pub fn message(&self) -> String {
        match self {
            // The truth about a write the writer was saving when it stopped: the log may
            // hold it, and the next start would replay it.
            WebError::Kernel(KernelError::Store(StoreError::Halted(_))) => {
                "The appliance stopped saving after a storage failure while this change was \
                 being saved: it may or may not have been saved. Check before repeating it. \
                 An administrator must restart the appliance."
                    .into()
            }
            WebError::Kernel(KernelError::Store(StoreError::WriterGone)) => {
                "The appliance has stopped saving after a storage failure, so nothing was \
                 saved. An administrator must restart the appliance."
                    .into()
            }
            WebError::Kernel(KernelError::Internal(_)) | WebError::Kernel(KernelError::Store(_)) => {
                "something went wrong on the appliance; nothing was changed. The details are in the server log.".into()
            }
            // Where no form shows the fields (a module's own action, an error page),
            // the message carries them.
            WebError::Kernel(KernelError::Invalid(fields)) if !fields.0.is_empty() => {
                let each: Vec<String> = fields.0.iter().map(|(f, m)| format!("{f}: {m}")).collect();
                format!("Please correct: {}", each.join("; "))
            }
            other => {
                let m = other.to_string();
                let mut chars = m.chars();
                match chars.next() {
                    Some(c) => c.to_uppercase().chain(chars).collect(),
                    None => m,
                }
            }
        }
    }

    fn json(&self) -> serde_json::Value {
        let (_, code) = self.status_and_code();
        let mut body = serde_json::json!({ "error": { "code": code, "message": self.message() } });
        if let WebError::Kernel(KernelError::Invalid(fields)) = self {
            let map: serde_json::Map<String, serde_json::Value> = fields
                .0
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                .collect();
            body["error"]["fields"] = serde_json::Value::Object(map);
        }
        body
    }
}

impl WebError {
    /// The error as the API renders it, for layers outside [`render_errors`].
    pub(crate) fn api_response(&self) -> Response {
        let (status, _) = self.status_and_code();
        (status, axum::Json(self.json())).into_response()
    }
}

/// Carried in the response extensions until [`render_errors`] renders it.
#[derive(Clone)]
struct Pending(WebError);

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let (status, _) = self.status_and_code();
        let mut res = status.into_response();
        res.extensions_mut().insert(Pending(self));
        res
    }
}

/// How the caller wants errors: decided from the request before the handler runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Audience {
    Api,
    Htmx,
    Browser,
}

/// Middleware: renders a [`WebError`] for its audience.
pub async fn render_errors(req: Request, next: Next) -> Response {
    let audience = if req.uri().path().starts_with("/api/") {
        Audience::Api
    } else if req.headers().contains_key("hx-request") {
        Audience::Htmx
    } else {
        Audience::Browser
    };
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    let res = next.run(req).await;
    let Some(Pending(err)) = res.extensions().get::<Pending>().cloned() else {
        return res;
    };
    let (status, code) = err.status_and_code();
    if status.is_server_error() {
        tracing::error!(error = %err, code, "request failed");
    }
    let mut out = match (audience, &err) {
        (Audience::Api, _) => (status, axum::Json(err.json())).into_response(),
        (Audience::Htmx, WebError::Kernel(KernelError::Unauthenticated)) => {
            let mut r = status.into_response();
            r.headers_mut()
                .insert("hx-redirect", HeaderValue::from_static("/login"));
            r
        }
        (Audience::Htmx, WebError::MustEnrolMfa) => {
            let mut r = status.into_response();
            r.headers_mut()
                .insert("hx-redirect", HeaderValue::from_static("/account/security"));
            r
        }
        (Audience::Htmx, _) => (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            err.message(),
        )
            .into_response(),
        (Audience::Browser, WebError::MustEnrolMfa) => {
            axum::response::Redirect::to("/account/security").into_response()
        }
        (Audience::Browser, WebError::Kernel(KernelError::Unauthenticated)) => {
            let target = format!("/login?next={}", nexus_ui::grid::encode(&path));
            axum::response::Redirect::to(&target).into_response()
        }
        (Audience::Browser, _) => {
            (status, views::error_page(status, &err.message())).into_response()
        }
    };
    if let WebError::Kernel(
        KernelError::Throttled { retry_after_secs } | KernelError::RateLimited { retry_after_secs },
    ) = err
        && let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string())
    {
        out.headers_mut().insert(header::RETRY_AFTER, v);
    }
    out
}

/// Fallback for unknown addresses.
pub async fn no_route() -> WebError {
    WebError::NoRoute
}
