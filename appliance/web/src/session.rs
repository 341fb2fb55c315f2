//! Who is asking: session cookies, CSRF checks, and the extractors handlers use.
//!
//! * [`Auth`]: a signed-in session (safe methods).
//! * [`FormSubmit`]: session + form body; the CSRF token must come back in the
//!   `X-CSRF-Token` header (htmx) or the `_csrf` field (plain forms).
//! * [`JsonSubmit`] / [`ApiWrite`]: session + the token in the header (API clients read
//!   it from `POST /api/v1/session`).
//! * [`AnonForm`]: forms before sign-in (login, setup) use a double-submit cookie.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use nexus_kernel::{KernelError, Principal, Session};
pub(crate) use subtle_eq::ct_eq;

use crate::AppState;
use crate::body::{field, parse_form, parse_json_object, read_limited};
use crate::error::WebError;

pub const SESSION_COOKIE: &str = "nexus_session";
pub const PRE_COOKIE: &str = "nexus_pre";
pub const CSRF_HEADER: &str = "x-csrf-token";

pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// `Set-Cookie` for a session; `None` clears it.
pub fn session_cookie(token: Option<&str>) -> HeaderValue {
    let v = match token {
        Some(t) => format!(
            "{SESSION_COOKIE}={t}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age={}",
            nexus_kernel::SESSION_LIFETIME.whole_seconds()
        ),
        None => format!("{SESSION_COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0"),
    };
    HeaderValue::from_str(&v).unwrap_or(HeaderValue::from_static("nexus_session=; Max-Age=0"))
}

pub fn pre_cookie(value: &str) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{PRE_COOKIE}={value}; Path=/; Secure; HttpOnly; SameSite=Strict"
    ))
    .unwrap_or(HeaderValue::from_static("nexus_pre=; Max-Age=0"))
}

/// A signed-in request: a session (cookie) or an API token (bearer).
#[derive(Clone)]
pub struct Auth {
    pub session: Session,
    /// The session cookie's token; empty for a request with an API token.
    pub token: String,
    /// Whether it came with an API token (`Authorization: Bearer nexus_tok_…`), which
    /// a browser never sends by itself, so it needs no CSRF token.
    pub bearer: bool,
}

impl Auth {
    pub fn who(&self) -> &Principal {
        &self.session.principal
    }
    pub fn csrf(&self) -> &str {
        &self.session.csrf
    }

    /// The session's token, for what only a session may do (sign out, switch company,
    /// list sessions); refused for an API token.
    pub fn session_token(&self, what: &'static str) -> Result<&str, WebError> {
        if self.bearer {
            return Err(KernelError::TokenNotAllowed(what).into());
        }
        Ok(&self.token)
    }

    fn csrf_ok(&self, sent: Option<&str>) -> bool {
        self.bearer || sent.is_some_and(|t| ct_eq(t, self.csrf()))
    }
}

/// Paths a user whose role requires a second factor may reach before setting it up.
const ENROLMENT_PATHS: &[&str] = &[
    "/account/security",
    "/account/mfa/",
    "/logout",
    "/api/v1/me",
];

pub fn authenticate(parts: &Parts, state: &AppState) -> Result<Auth, WebError> {
    // A layer that ran before already authenticated this request (once: a token's
    // request rate counts each request once).
    if let Some(auth) = parts.extensions.get::<Auth>() {
        return Ok(auth.clone());
    }
    let auth = if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
        // The scheme is case-insensitive (RFC 7235).
        let secret = value
            .to_str()
            .ok()
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .ok_or(KernelError::Unauthenticated)?;
        Auth {
            session: state.kernel.token_session(secret)?,
            token: String::new(),
            bearer: true,
        }
    } else {
        let token = cookie(&parts.headers, SESSION_COOKIE)
            .filter(|t| !t.is_empty())
            .ok_or(KernelError::Unauthenticated)?;
        Auth {
            session: state.kernel.session(token)?,
            token: token.to_string(),
            bearer: false,
        }
    };
    let path = parts.uri.path();
    if auth.who().must_enrol_mfa()
        && !ENROLMENT_PATHS
            .iter()
            .any(|p| path == *p || (p.ends_with('/') && path.starts_with(p)))
        && !(path == "/api/v1/session" && parts.method == axum::http::Method::DELETE)
    {
        return Err(WebError::MustEnrolMfa);
    }
    Ok(auth)
}

fn header_token(headers: &HeaderMap) -> Option<&str> {
    headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok())
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = WebError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        authenticate(parts, state)
    }
}

/// A signed-in request whose CSRF token came in the header (API writes without a body).
pub struct ApiWrite(pub Auth);

impl FromRequestParts<AppState> for ApiWrite {
    type Rejection = WebError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let auth = authenticate(parts, state)?;
        if auth.csrf_ok(header_token(&parts.headers)) {
            Ok(ApiWrite(auth))
        } else {
            Err(WebError::Csrf)
        }
    }
}

/// A signed-in form submission with a valid CSRF token.
pub struct FormSubmit {
    pub auth: Auth,
    pub pairs: Vec<(String, String)>,
    pub htmx: bool,
}

impl FromRequest<AppState> for FormSubmit {
    type Rejection = WebError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let auth = authenticate(&parts, state)?;
        let bytes = read_limited(body).await?;
        let pairs = parse_form(&parts.headers, &bytes)?;
        let sent = header_token(&parts.headers).or_else(|| field(&pairs, "_csrf"));
        if auth.csrf_ok(sent) {
            Ok(FormSubmit {
                auth,
                pairs,
                htmx: parts.headers.contains_key("hx-request"),
            })
        } else {
            Err(WebError::Csrf)
        }
    }
}

/// A signed-in JSON submission with a valid CSRF header.
pub struct JsonSubmit {
    pub auth: Auth,
    pub object: serde_json::Map<String, serde_json::Value>,
}

impl FromRequest<AppState> for JsonSubmit {
    type Rejection = WebError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let auth = authenticate(&parts, state)?;
        if !auth.csrf_ok(header_token(&parts.headers)) {
            return Err(WebError::Csrf);
        }
        let bytes = read_limited(body).await?;
        let object = parse_json_object(&parts.headers, &bytes)?;
        Ok(JsonSubmit { auth, object })
    }
}

/// A form sent before sign-in, protected by the double-submit cookie.
pub struct AnonForm {
    pub pairs: Vec<(String, String)>,
    pub client: Option<std::net::IpAddr>,
}

impl FromRequest<AppState> for AnonForm {
    type Rejection = WebError;

    async fn from_request(req: Request, _state: &AppState) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let bytes = read_limited(body).await?;
        let pairs = parse_form(&parts.headers, &bytes)?;
        let expected = cookie(&parts.headers, PRE_COOKIE).unwrap_or("");
        match field(&pairs, "_csrf") {
            Some(t) if !expected.is_empty() && ct_eq(t, expected) => {}
            _ => return Err(WebError::Csrf),
        }
        let client = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip());
        Ok(AnonForm { pairs, client })
    }
}

mod subtle_eq {
    /// Constant-time string comparison for tokens.
    pub fn ct_eq(a: &str, b: &str) -> bool {
        use subtle::ConstantTimeEq;
        a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
    }
}
