//! Reading request bodies: size-limited, with errors people understand.

use axum::body::Body;
use axum::http::HeaderMap;

use crate::error::WebError;

/// The largest body accepted (forms, JSON, certificate uploads).
pub const BODY_LIMIT: usize = 1024 * 1024;

pub async fn read_limited(body: Body) -> Result<axum::body::Bytes, WebError> {
    axum::body::to_bytes(body, BODY_LIMIT)
        .await
        .map_err(|_| WebError::TooLarge {
            limit_kib: BODY_LIMIT / 1024,
        })
}

/// `application/x-www-form-urlencoded` pairs.
pub fn parse_form(headers: &HeaderMap, bytes: &[u8]) -> Result<Vec<(String, String)>, WebError> {
    let ct = content_type(headers);
    if !ct.is_empty() && !ct.starts_with("application/x-www-form-urlencoded") {
        return Err(WebError::UnsupportedMediaType {
            expected: "a form (application/x-www-form-urlencoded)",
        });
    }
    serde_urlencoded::from_bytes(bytes)
        .map_err(|e| WebError::Malformed(format!("the form could not be read: {e}")))
}

/// A JSON object body.
pub fn parse_json_object(
    headers: &HeaderMap,
    bytes: &[u8],
) -> Result<serde_json::Map<String, serde_json::Value>, WebError> {
    if !content_type(headers).starts_with("application/json") {
        return Err(WebError::UnsupportedMediaType {
            expected: "JSON (Content-Type: application/json)",
        });
    }
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| WebError::Malformed(format!("the body is not valid JSON ({e})")))?;
    match value {
        serde_json::Value::Object(map) => Ok(map),
        other => Err(WebError::Malformed(format!(
            "expected a JSON object like {{\"name\": \"…\"}}, got {}",
            json_kind(&other)
        ))),
    }
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase()
}

/// The last value of a form field.
pub fn field<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}
