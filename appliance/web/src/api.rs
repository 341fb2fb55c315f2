//! The JSON REST API under `/api/v1/`, generated from the entity definitions.
//!
//! Sign in with `POST /api/v1/session` (`{"username", "password"}`): the answer sets
//! the session cookie and returns the CSRF token to send as `X-CSRF-Token` on every
//! write. Money travels as decimal strings, ids as numbers; an update names the
//! `version` it is based on.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use nexus_kernel::{Action, Input, registry, rfc3339};
use serde_json::{Value as J, json};

use crate::AppState;
use crate::body::{parse_json_object, read_limited};
use crate::error::WebError;
use crate::records::list_query;
use crate::session::{ApiWrite, Auth, JsonSubmit, session_cookie};

fn parse_id(raw: &str) -> Result<u64, WebError> {
    raw.parse::<u64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| WebError::Malformed(format!("\"{raw}\" is not a record id")))
}

pub async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    body: axum::body::Body,
) -> Result<Response, WebError> {
    let bytes = read_limited(body).await?;
    let obj = parse_json_object(&headers, &bytes)?;
    let text = |k: &str| obj.get(k).and_then(J::as_str).unwrap_or("").to_string();
    // The same per-name and per-address lockout as the form.
    let address = client.map(|c| c.0.0.ip());
    let code = obj
        .get("code")
        .and_then(J::as_str)
        .filter(|c| !c.trim().is_empty());
    let signed = state
        .kernel
        .sign_in(&text("username"), &text("password"), code, address)
        .await?;
    let (token, session) = match signed {
        nexus_kernel::SignIn::Done(token, session) => (token, *session),
        nexus_kernel::SignIn::NeedsCode(_) => {
            return Err(nexus_kernel::KernelError::CodeRequired.into());
        }
    };
    let mut res = Json(json!({
        "csrf_token": session.csrf,
        "expires_at": rfc3339(session.expires),
        "user": me_json(&session),
    }))
    .into_response();
    res.headers_mut()
        .insert(header::SET_COOKIE, session_cookie(Some(&token)));
    Ok(res)
}

pub async fn logout(
    State(state): State<AppState>,
    ApiWrite(auth): ApiWrite,
) -> Result<Response, WebError> {
    state.kernel.logout(auth.session_token("sign out")?).await?;
    let mut res = StatusCode::NO_CONTENT.into_response();
    res.headers_mut()
        .insert(header::SET_COOKIE, session_cookie(None));
    Ok(res)
}

fn me_json(session: &nexus_kernel::Session) -> J {
    let who = &session.principal;
    json!({
        "id": who.user_id,
        "username": who.username,
        "name": who.display_name,
        "company": { "id": who.company, "name": who.company_name },
        "home_company": who.home_company,
        "companies": session
            .companies()
            .iter()
            .map(|(id, name)| json!({ "id": id, "name": name }))
            .collect::<Vec<_>>(),
        "role": who.role_name,
        "mfa_required": who.must_enrol_mfa(),
        "via_token": who.via_token(),
    })
}

pub async fn me(auth: Auth) -> Json<J> {
    Json(me_json(&auth.session))
}

fn session_json(s: &nexus_kernel::SessionInfo) -> J {
    json!({
        "id": s.id,
        "created_at": s.created.map(rfc3339),
        "expires_at": rfc3339(s.expires),
        "company": s.company,
        "address": s.address,
        "current": s.current,
    })
}

/// `GET /api/v1/sessions`: the signed-in user's live sessions (never their tokens).
pub async fn sessions(State(state): State<AppState>, auth: Auth) -> Result<Json<J>, WebError> {
    let list = state
        .kernel
        .sessions_of(auth.session_token("list sessions")?)?;
    Ok(Json(
        json!({ "data": list.iter().map(session_json).collect::<Vec<_>>() }),
    ))
}

/// `DELETE /api/v1/sessions/{id}`: ends one of the user's own sessions.
pub async fn revoke_session(
    State(state): State<AppState>,
    ApiWrite(auth): ApiWrite,
    Path(id): Path<String>,
) -> Result<StatusCode, WebError> {
    state
        .kernel
        .revoke_session(auth.session_token("end sessions")?, &id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/session/company` `{"company": id}`: work in another company the user
/// may act in; answers like `GET /api/v1/me`.
pub async fn switch_company(
    State(state): State<AppState>,
    submit: JsonSubmit,
) -> Result<Json<J>, WebError> {
    let company = match submit.object.get("company") {
        Some(J::Number(n)) => n.as_u64(),
        _ => None,
    }
    .ok_or_else(|| {
        WebError::Malformed("send {\"company\": id}, the id of a company you may work in".into())
    })?;
    let session = state
        .kernel
        .switch_company(submit.auth.session_token("switch company")?, company)
        .await?;
    Ok(Json(me_json(&session)))
}

pub async fn list(
    State(state): State<AppState>,
    auth: Auth,
    Path(entity): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<J>, WebError> {
    let def = state.kernel.entity(&entity)?;
    let q = list_query(raw.as_deref())?;
    let page = state.kernel.list(auth.who(), def, &q)?;
    Ok(Json(json!({
        "data": page.rows.iter().map(|r| r.to_json_for(def, auth.who())).collect::<Vec<_>>(),
        "total": page.total,
        "offset": q.offset,
        "limit": q.limit,
    })))
}

pub async fn create(
    State(state): State<AppState>,
    Path(entity): Path<String>,
    submit: JsonSubmit,
) -> Result<Response, WebError> {
    let def = state.kernel.entity(&entity)?;
    let rec = state
        .kernel
        .create(submit.auth.who(), def, Input::Json(submit.object))
        .await?;
    let mut res = (
        StatusCode::CREATED,
        Json(rec.to_json_for(def, submit.auth.who())),
    )
        .into_response();
    if let Ok(loc) = HeaderValue::from_str(&format!("/api/v1/{}/{}", def.name, rec.id)) {
        res.headers_mut().insert(header::LOCATION, loc);
    }
    Ok(res)
}

pub async fn get(
    State(state): State<AppState>,
    auth: Auth,
    Path((entity, id)): Path<(String, String)>,
) -> Result<Json<J>, WebError> {
    let def = state.kernel.entity(&entity)?;
    let rec = state.kernel.get(auth.who(), def, parse_id(&id)?)?;
    Ok(Json(rec.to_json_for(def, auth.who())))
}

fn required_version(obj: &serde_json::Map<String, J>) -> Result<u64, WebError> {
    match obj.get("version") {
        Some(J::Number(n)) => n.as_u64().ok_or_else(|| {
            WebError::Malformed("\"version\" must be a positive whole number".into())
        }),
        Some(_) => Err(WebError::Malformed("\"version\" must be a number".into())),
        None => Err(WebError::Malformed(
            "include the \"version\" you last read, so a change made in between is not overwritten"
                .into(),
        )),
    }
}

pub async fn update(
    State(state): State<AppState>,
    Path((entity, id)): Path<(String, String)>,
    submit: JsonSubmit,
) -> Result<Json<J>, WebError> {
    let def = state.kernel.entity(&entity)?;
    let id = parse_id(&id)?;
    let version = required_version(&submit.object)?;
    let who = submit.auth.who().clone();
    let rec = state
        .kernel
        .update(&who, def, id, version, Input::Json(submit.object))
        .await?;
    Ok(Json(rec.to_json_for(def, &who)))
}

pub async fn delete(
    State(state): State<AppState>,
    Path((entity, id)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
    ApiWrite(auth): ApiWrite,
) -> Result<StatusCode, WebError> {
    let def = state.kernel.entity(&entity)?;
    let version = match raw.as_deref().and_then(|q| q.strip_prefix("version=")) {
        Some(v) => Some(
            v.parse()
                .map_err(|_| WebError::Malformed(format!("version \"{v}\" is not a number")))?,
        ),
        None => None,
    };
    state
        .kernel
        .delete(auth.who(), def, parse_id(&id)?, version)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn history(
    State(state): State<AppState>,
    auth: Auth,
    Path((entity, id)): Path<(String, String)>,
) -> Result<Json<J>, WebError> {
    let def = state.kernel.entity(&entity)?;
    let entries = state.kernel.history(auth.who(), def, parse_id(&id)?)?;
    Ok(Json(json!({ "data": entries })))
}

/// The OpenAPI 3.1 document (see [`crate::openapi`]).
pub async fn openapi() -> Json<J> {
    Json(crate::openapi::document())
}

/// Whether the principal may use an entity at all (for the API index).
pub async fn entities(auth: Auth) -> Json<J> {
    let list: Vec<J> = registry::entities()
        .filter(|d| auth.who().can(d.name, Action::Read))
        .map(|d| json!({ "name": d.name, "label": d.label, "url": format!("/api/v1/{}", d.name) }))
        .collect();
    Json(json!({ "data": list }))
}
