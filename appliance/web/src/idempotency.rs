//! `Idempotency-Key` on API creates: a retried POST gets the first answer back instead
//! of creating a second record (see `nexus_kernel`'s idempotency module for what a
//! retry meets). Applies to every `POST /api/v1/…` except signing in.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use nexus_kernel::{Claim, StoredResponse, check_idempotency_key, request_fingerprint};

use crate::AppState;
use crate::body::read_limited;
use crate::error::WebError;
use crate::session::authenticate;

pub const HEADER: &str = "idempotency-key";

/// Keys whose values are secrets (a new password, the actor's own): the fingerprint
/// kept for a day must not be a fast hash of them.
const SECRET_KEYS: &[&str] = &["password", nexus_kernel::CONFIRM_PASSWORD];

/// The body as the fingerprint sees it: a JSON object or a form with its secrets'
/// values blanked (a retry that changes only a password is the same request), any
/// other body as it came.
fn without_secrets(content_type: &str, bytes: &[u8]) -> Vec<u8> {
    if content_type.starts_with("application/json") {
        if let Ok(serde_json::Value::Object(mut map)) = serde_json::from_slice(bytes) {
            for k in SECRET_KEYS {
                if let Some(v) = map.get_mut(*k) {
                    *v = serde_json::Value::Null;
                }
            }
            return serde_json::to_vec(&map).unwrap_or_default();
        }
    } else if content_type.starts_with("application/x-www-form-urlencoded")
        && let Ok(mut pairs) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(bytes)
    {
        for (k, v) in &mut pairs {
            if SECRET_KEYS.contains(&k.as_str()) {
                v.clear();
            }
        }
        return serde_urlencoded::to_string(&pairs)
            .map(String::into_bytes)
            .unwrap_or_default();
    }
    bytes.to_vec()
}

/// Set on an answer that is a replay of the first one.
pub const REPLAYED: &str = "idempotent-replayed";
/// Answers larger than this are not kept (creates answer with one record).
const MAX_STORED: usize = 1 << 20;

/// Whether `path` takes a file as its body (a document or a new version of one).
fn is_upload(path: &str) -> bool {
    path.ends_with("/documents") || path.ends_with("/versions")
}

pub async fn layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let applies = req.method() == Method::POST
        && req.uri().path().starts_with("/api/")
        // Sessions are not resources: a replayed sign-in or company switch would
        // report a state the session is not in. A new token's answer carries its
        // secret, which must be shown once and never kept.
        && !req.uri().path().starts_with("/api/v1/session")
        && !req.uri().path().starts_with("/api/v1/tokens")
        // An upload streams its file: it is never held in memory to be fingerprinted.
        && !is_upload(req.uri().path());
    let Some(key) = req.headers().get(HEADER).filter(|_| applies) else {
        return next.run(req).await;
    };
    let key = match key.to_str().map_err(|e| e.to_string()).and_then(|k| {
        check_idempotency_key(k)?;
        Ok(k.to_owned())
    }) {
        Ok(k) => k,
        Err(m) => return WebError::Malformed(m).api_response(),
    };
    let (mut parts, body) = req.into_parts();
    // Not signed in: the handler answers that, and there is nobody to keep a key for.
    let Ok(auth) = authenticate(&parts, &state) else {
        return next.run(Request::from_parts(parts, body)).await;
    };
    // The request is authenticated once (a token's rate counts it once).
    parts.extensions.insert(auth.clone());
    let bytes = match read_limited(body).await {
        Ok(b) => b,
        Err(e) => return e.api_response(),
    };
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let target = parts
        .uri
        .path_and_query()
        .map_or(parts.uri.path(), |p| p.as_str());
    // The credential is part of the request: a replay answers only the session or
    // token that sent the first one (a narrower token must not read what it made).
    let credential = auth.who().via_token().unwrap_or("session").to_owned();
    let fingerprint = request_fingerprint(&[
        credential.as_bytes(),
        parts.method.as_str().as_bytes(),
        target.as_bytes(),
        content_type.as_bytes(),
        &without_secrets(content_type, &bytes),
    ]);
    let who = auth.who().clone();
    let claim = match state.kernel.claim_idempotent(&who, &key, fingerprint).await {
        Ok(c) => c,
        Err(e) => return WebError::from(e).api_response(),
    };
    match claim {
        Claim::Fresh => {}
        Claim::Replay(stored) => return replay(stored),
        Claim::Mismatch => return WebError::IdempotencyKeyReused(key).api_response(),
        Claim::InFlight => return WebError::IdempotencyInFlight(key).api_response(),
        Claim::Interrupted => return WebError::IdempotencyInterrupted(key).api_response(),
    }
    let res = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    let (res_parts, res_body) = res.into_parts();
    let body = match axum::body::to_bytes(res_body, MAX_STORED).await {
        Ok(b) => b,
        Err(_) => {
            // Too large to keep: the key is released, and the answer cannot be sent
            // whole either.
            let _ = state.kernel.finish_idempotent(&who, &key, None).await;
            return WebError::Malformed("the answer was too large to keep for retries".into())
                .api_response();
        }
    };
    // Only a success changed anything. Any refusal (validation, CSRF, permissions) or
    // failure on the appliance's side changed nothing — a halted writer cannot store a
    // key anyway — so the key is released and a retry runs again.
    let keep = res_parts.status.is_success().then(|| StoredResponse {
        status: res_parts.status.as_u16(),
        content_type: res_parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
        body: body.to_vec(),
    });
    if let Err(e) = state.kernel.finish_idempotent(&who, &key, keep).await {
        tracing::warn!(error = %e, "could not store the answer for an idempotency key");
    }
    Response::from_parts(res_parts, Body::from(body))
}

fn replay(stored: StoredResponse) -> Response {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let mut res = (status, stored.body).into_response();
    if let Ok(ct) = HeaderValue::from_str(&stored.content_type) {
        res.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    res.headers_mut()
        .insert(REPLAYED, HeaderValue::from_static("true"));
    res
}

#[cfg(test)]
mod tests {
    use super::without_secrets;

    #[test]
    fn secrets_never_reach_the_fingerprint() {
        let a = without_secrets(
            "application/json",
            br#"{"username":"bo","password":"one secret 12","current_password":"mine 1234567"}"#,
        );
        let b = without_secrets(
            "application/json",
            br#"{"username":"bo","password":"another one 12","current_password":"x"}"#,
        );
        assert_eq!(a, b);
        assert!(!String::from_utf8_lossy(&a).contains("secret"));
        let other = without_secrets("application/json", br#"{"username":"al","password":"x"}"#);
        assert_ne!(a, other, "the rest of the request still counts");
        let f = without_secrets(
            "application/x-www-form-urlencoded",
            b"username=bo&password=one+secret&current_password=mine",
        );
        assert!(!String::from_utf8_lossy(&f).contains("secret"));
        assert!(String::from_utf8_lossy(&f).contains("username=bo"));
        assert_eq!(without_secrets("text/csv", b"a,b"), b"a,b");
    }
}
