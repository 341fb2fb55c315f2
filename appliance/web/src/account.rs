//! The signed-in user's own security: the second factor (set up with a QR code,
//! recovery codes, turning it off) and API tokens (made, shown once, revoked), at
//! `/account/security`, and the token routes of the API. What is shown once (a new
//! secret, recovery codes, a token) is rendered in the answer to the POST that made it
//! and never stored readable.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use nexus_kernel::{
    Action, CONFIRM_PASSWORD, DEFAULT_PER_MINUTE, Enrolment, KernelError, MAX_DAYS, TokenInfo,
    TokenRequest, rfc3339,
};
use serde::Deserialize;
use serde_json::{Value as J, json};

use crate::AppState;
use crate::body::field;
use crate::error::WebError;
use crate::session::{ApiWrite, Auth, FormSubmit, JsonSubmit};
use crate::views;

/// What the security page shows once, above its sections.
enum Flash {
    None,
    Enrolment(Enrolment),
    RecoveryCodes(Vec<String>),
    NewToken(String, TokenInfo),
    Error(String),
}

/// `GET /account/security`.
pub async fn security(State(state): State<AppState>, auth: Auth) -> Result<Markup, WebError> {
    security_page(&state, &auth, Flash::None, &[])
}

fn when(t: Option<time::OffsetDateTime>) -> String {
    t.map(rfc3339).unwrap_or_else(|| "—".into())
}

fn qr_data_uri(text: &str) -> Option<String> {
    use qrcode::render::svg;
    let code = qrcode::QrCode::new(text.as_bytes()).ok()?;
    let image = code
        .render::<svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build();
    // A `data:` address, which the page's content policy allows for images.
    Some(format!(
        "data:image/svg+xml;base64,{}",
        data_encoding::BASE64.encode(image.as_bytes())
    ))
}

fn security_page(
    state: &AppState,
    auth: &Auth,
    flash: Flash,
    values: &[(String, String)],
) -> Result<Markup, WebError> {
    let who = auth.who();
    let status = state.kernel.mfa_status(who)?;
    let tokens = state.kernel.tokens_of(who)?;
    let company_tokens = if who.can("user", Action::Write) && !who.must_enrol_mfa() {
        Some(state.kernel.company_tokens(who)?)
    } else {
        None
    };
    let names: std::collections::BTreeMap<u64, String> =
        auth.session.companies().iter().cloned().collect();
    let company_name = |id: u64| names.get(&id).cloned().unwrap_or_else(|| format!("#{id}"));
    let v = |k: &str| field(values, k).unwrap_or("").to_string();
    let csrf = auth.csrf();
    let body = html! {
        header .page-head { h1 { "Security" } }
        @match &flash {
            Flash::Error(message) => { div .form-error role="alert" { (message) } }
            Flash::Enrolment(e) => {
                div .card #mfa-enrolment {
                    h2 { "Scan this with your authenticator app" }
                    @if let Some(src) = qr_data_uri(&e.uri) {
                        img .qr src=(src) alt="QR code of the authenticator secret" width="200" height="200";
                    }
                    p { "Or type this secret in: " code #mfa-secret { (e.secret) } }
                    form method="post" action="/account/mfa/confirm" {
                        input type="hidden" name="_csrf" value=(csrf);
                        div .field {
                            label for="mfa-code" { "The 6-digit code the app shows" }
                            input #mfa-code name="code" inputmode="numeric" autocomplete="one-time-code" required maxlength="10" autofocus;
                        }
                        button .primary type="submit" { "Turn it on" }
                    }
                }
            }
            Flash::RecoveryCodes(codes) => {
                div .card .notice #recovery-codes {
                    h2 { "Your recovery codes" }
                    p { "Each one signs you in once if the phone is lost. Print them or keep them in a password manager now: they are not shown again." }
                    ol .codes { @for c in codes { li { code { (c) } } } }
                }
            }
            Flash::NewToken(secret, info) => {
                div .card .notice #new-token {
                    h2 { "Your new token \u{201c}" (info.name) "\u{201d}" }
                    p { "Copy it now: it is not shown again. Send it as " code { "Authorization: Bearer …" } "." }
                    p { code #token-secret { (secret) } }
                }
            }
            Flash::None => {}
        }
        div .card #second-factor {
            h2 { "Second factor" }
            @if who.must_enrol_mfa() {
                div .notice role="alert" { "Your role requires a second factor. Set up an authenticator app to go on." }
            }
            @if status.enabled {
                p { "On since " (when(status.since)) ". Recovery codes left: " (status.recovery_codes_left) "." }
            } @else {
                p .muted { "Off. With it on, signing in needs a code from an authenticator app on your phone as well as your password." }
            }
            form method="post" action="/account/mfa/begin" {
                input type="hidden" name="_csrf" value=(csrf);
                div .field { label for="mfa-password" { "Your password" } input #mfa-password type="password" name=(CONFIRM_PASSWORD) autocomplete="current-password" required; }
                button .primary type="submit" {
                    @if status.enabled { "Move to a new phone" } @else { "Set up an authenticator app" }
                }
            }
            @if status.enabled {
                form method="post" action="/account/mfa/recovery" {
                    input type="hidden" name="_csrf" value=(csrf);
                    div .field { label for="recovery-password" { "Your password" } input #recovery-password type="password" name=(CONFIRM_PASSWORD) autocomplete="current-password" required; }
                    button type="submit" { "New recovery codes" }
                }
                @if !status.required {
                    form method="post" action="/account/mfa/off" {
                        input type="hidden" name="_csrf" value=(csrf);
                        div .field { label for="off-password" { "Your password" } input #off-password type="password" name=(CONFIRM_PASSWORD) autocomplete="current-password" required; }
                        button .danger type="submit" { "Turn it off" }
                    }
                }
            }
        }
        div .card #api-tokens {
            h2 { "API tokens" }
            p .muted { "For scripts and other programs. A token acts as you in " (who.company_name) ", never beyond the scopes you give it nor beyond what your role allows when it is used." }
            @if tokens.is_empty() {
                p .muted { "You have no tokens." }
            } @else {
                table .facts-table {
                    thead { tr { th { "Name" } th { "Scopes" } th { "Company" } th { "Expires" } th { "Last used" } th {} } }
                    tbody {
                        @for t in &tokens {
                            tr {
                                td { (t.name) }
                                td { code { (t.scopes) } }
                                td { (company_name(t.company)) }
                                td { (rfc3339(t.expires)) @if t.expired { " (expired)" } }
                                td { (when(t.last_used)) }
                                td { (revoke_button(csrf, &t.id)) }
                            }
                        }
                    }
                }
            }
            @if !who.must_enrol_mfa() {
                h3 { "Make a token" }
                form method="post" action="/account/tokens" {
                    input type="hidden" name="_csrf" value=(csrf);
                    div .field { label for="token-name" { "What it is for" } input #token-name name="name" maxlength="80" required value=(v("name")) placeholder="nightly bank import"; }
                    div .field {
                        label for="token-scopes" { "Scopes" }
                        input #token-scopes name="scopes" required value=(v("scopes")) placeholder="invoice:r, customer:r";
                        small .help { "entity:letters, as in a role (r read, c create, w write, d delete, x export). You hold: " code { (who.grants_text()) } }
                    }
                    div .field { label for="token-days" { "Days until it expires" } input #token-days name="days" type="number" min="1" max=(MAX_DAYS) value=(if v("days").is_empty() { "90".to_string() } else { v("days") }); }
                    div .field { label for="token-rate" { "Requests per minute" } input #token-rate name="per_minute" type="number" min="1" max="60000" value=(if v("per_minute").is_empty() { DEFAULT_PER_MINUTE.to_string() } else { v("per_minute") }); }
                    div .field { label for="token-password" { "Your password" } input #token-password type="password" name=(CONFIRM_PASSWORD) autocomplete="current-password" required; }
                    button .primary type="submit" { "Make the token" }
                }
            }
        }
        @if let Some(all) = &company_tokens {
            div .card #company-tokens {
                h2 { "Every token in " (who.company_name) }
                @if all.is_empty() {
                    p .muted { "No one here has a token." }
                } @else {
                    table .facts-table {
                        thead { tr { th { "User" } th { "Name" } th { "Scopes" } th { "Expires" } th { "Last used" } th {} } }
                        tbody {
                            @for t in all {
                                tr {
                                    td { (t.username) }
                                    td { (t.name) }
                                    td { code { (t.scopes) } }
                                    td { (rfc3339(t.expires)) @if t.expired { " (expired)" } }
                                    td { (when(t.last_used)) }
                                    td { @if who.can("user", Action::Write) { (revoke_button(csrf, &t.id)) } }
                                }
                            }
                        }
                    }
                }
            }
        }
        p { a href="/sessions" { "Your sessions" } " — where you are signed in." }
    };
    Ok(views::page(auth, "Security", "", body, Vec::new()))
}

fn revoke_button(csrf: &str, id: &str) -> Markup {
    html! {
        form method="post" action={ "/account/tokens/" (id) "/revoke" } {
            input type="hidden" name="_csrf" value=(csrf);
            button .link type="submit" { "Revoke" }
        }
    }
}

/// Renders a refused form as the page with the error on top (nothing was changed).
fn refused(
    state: &AppState,
    auth: &Auth,
    e: KernelError,
    values: &[(String, String)],
) -> Result<Response, WebError> {
    let status = WebError::from(e);
    let (code, _) = status.status_and_code();
    if code.is_server_error() {
        return Err(status);
    }
    let page = security_page(state, auth, Flash::Error(status.message()), values)?;
    Ok((code, page).into_response())
}

fn password_of(pairs: &[(String, String)]) -> Option<String> {
    field(pairs, CONFIRM_PASSWORD)
        .filter(|p| !p.is_empty())
        .map(str::to_string)
}

/// `POST /account/mfa/begin`: a new secret and its QR code.
pub async fn mfa_begin(
    State(state): State<AppState>,
    submit: FormSubmit,
) -> Result<Response, WebError> {
    let confirm = password_of(&submit.pairs);
    match state.kernel.begin_mfa(submit.auth.who(), confirm).await {
        Ok(e) => Ok(security_page(&state, &submit.auth, Flash::Enrolment(e), &[])?.into_response()),
        Err(e) => refused(&state, &submit.auth, e, &[]),
    }
}

/// `POST /account/mfa/confirm`: the first code turns it on; the recovery codes, once.
pub async fn mfa_confirm(
    State(state): State<AppState>,
    submit: FormSubmit,
) -> Result<Response, WebError> {
    let code = field(&submit.pairs, "code").unwrap_or("");
    match state.kernel.confirm_mfa(submit.auth.who(), code).await {
        Ok(codes) => {
            // The principal changed (a required factor now set up): read it again.
            let auth = Auth {
                session: state.kernel.session(&submit.auth.token)?,
                token: submit.auth.token.clone(),
                bearer: false,
            };
            Ok(security_page(&state, &auth, Flash::RecoveryCodes(codes), &[])?.into_response())
        }
        Err(e) => refused(&state, &submit.auth, e, &[]),
    }
}

/// `POST /account/mfa/recovery`: new recovery codes, once.
pub async fn mfa_recovery(
    State(state): State<AppState>,
    submit: FormSubmit,
) -> Result<Response, WebError> {
    let confirm = password_of(&submit.pairs);
    match state
        .kernel
        .renew_recovery_codes(submit.auth.who(), confirm)
        .await
    {
        Ok(codes) => Ok(
            security_page(&state, &submit.auth, Flash::RecoveryCodes(codes), &[])?.into_response(),
        ),
        Err(e) => refused(&state, &submit.auth, e, &[]),
    }
}

/// `POST /account/mfa/off`.
pub async fn mfa_off(
    State(state): State<AppState>,
    submit: FormSubmit,
) -> Result<Response, WebError> {
    let confirm = password_of(&submit.pairs);
    match state.kernel.disable_mfa(submit.auth.who(), confirm).await {
        Ok(()) => Ok(crate::records::redirect(submit.htmx, "/account/security")),
        Err(e) => refused(&state, &submit.auth, e, &[]),
    }
}

fn number(pairs: &[(String, String)], key: &str, default: u32) -> Result<u32, KernelError> {
    match field(pairs, key).map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(default),
        Some(v) => v
            .parse::<u32>()
            .map_err(|_| KernelError::invalid(key, format!("\"{v}\" is not a whole number"))),
    }
}

fn token_request(pairs: &[(String, String)]) -> Result<TokenRequest, KernelError> {
    Ok(TokenRequest {
        name: field(pairs, "name").unwrap_or("").to_string(),
        scopes: field(pairs, "scopes").unwrap_or("").to_string(),
        days: number(pairs, "days", 90)?,
        per_minute: number(pairs, "per_minute", DEFAULT_PER_MINUTE)?,
    })
}

/// `POST /account/tokens`: makes a token and shows it once.
pub async fn create_token(
    State(state): State<AppState>,
    submit: FormSubmit,
) -> Result<Response, WebError> {
    let confirm = password_of(&submit.pairs);
    let made = match token_request(&submit.pairs) {
        Ok(request) => {
            state
                .kernel
                .create_token(submit.auth.who(), request, confirm)
                .await
        }
        Err(e) => Err(e),
    };
    let mut values = submit.pairs.clone();
    values.retain(|(k, _)| k != CONFIRM_PASSWORD);
    match made {
        Ok((secret, info)) => {
            Ok(
                security_page(&state, &submit.auth, Flash::NewToken(secret, info), &[])?
                    .into_response(),
            )
        }
        Err(e) => refused(&state, &submit.auth, e, &values),
    }
}

/// `POST /account/tokens/{id}/revoke`.
pub async fn revoke_token(
    State(state): State<AppState>,
    Path(id): Path<String>,
    submit: FormSubmit,
) -> Result<Response, WebError> {
    state.kernel.revoke_token(submit.auth.who(), &id).await?;
    Ok(crate::records::redirect(submit.htmx, "/account/security"))
}

fn token_json(t: &TokenInfo) -> J {
    json!({
        "id": t.id,
        "user": t.user,
        "username": t.username,
        "company": t.company,
        "name": t.name,
        "scopes": t.scopes,
        "created_at": rfc3339(t.created),
        "expires_at": rfc3339(t.expires),
        "requests_per_minute": t.per_minute,
        "last_used_at": t.last_used.map(rfc3339),
        "expired": t.expired,
    })
}

#[derive(Deserialize)]
pub struct TokensQuery {
    #[serde(default)]
    all: Option<String>,
}

/// `GET /api/v1/tokens`: your tokens; `?all=true`, every token of the company (with
/// permission to edit users).
pub async fn api_tokens(
    State(state): State<AppState>,
    Query(q): Query<TokensQuery>,
    auth: Auth,
) -> Result<Json<J>, WebError> {
    let all = match q.all.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(WebError::Malformed(format!(
                "all is true or false, not \"{other}\""
            )));
        }
    };
    let list = if all {
        state.kernel.company_tokens(auth.who())?
    } else {
        state.kernel.tokens_of(auth.who())?
    };
    Ok(Json(
        json!({ "data": list.iter().map(token_json).collect::<Vec<_>>() }),
    ))
}

/// `POST /api/v1/tokens`: makes a token; the answer carries its secret, once.
pub async fn api_create_token(
    State(state): State<AppState>,
    submit: JsonSubmit,
) -> Result<Response, WebError> {
    let o = &submit.object;
    for key in o.keys() {
        if ![
            "name",
            "scopes",
            "days",
            "requests_per_minute",
            CONFIRM_PASSWORD,
        ]
        .contains(&key.as_str())
        {
            return Err(KernelError::invalid(key, "unknown field").into());
        }
    }
    let text = |k: &str| -> Result<String, WebError> {
        match o.get(k) {
            None | Some(J::Null) => Ok(String::new()),
            Some(J::String(s)) => Ok(s.clone()),
            Some(_) => Err(KernelError::invalid(k, "give text").into()),
        }
    };
    let whole = |k: &str, default: u32| -> Result<u32, WebError> {
        match o.get(k) {
            None | Some(J::Null) => Ok(default),
            Some(J::Number(n)) => n
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| KernelError::invalid(k, "give a whole number").into()),
            Some(_) => Err(KernelError::invalid(k, "give a whole number").into()),
        }
    };
    let request = TokenRequest {
        name: text("name")?,
        scopes: text("scopes")?,
        days: whole("days", 90)?,
        per_minute: whole("requests_per_minute", DEFAULT_PER_MINUTE)?,
    };
    let confirm = Some(text(CONFIRM_PASSWORD)?).filter(|p| !p.is_empty());
    let (secret, info) = state
        .kernel
        .create_token(submit.auth.who(), request, confirm)
        .await?;
    let mut body = token_json(&info);
    body["token"] = J::String(secret);
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// `DELETE /api/v1/tokens/{id}`.
pub async fn api_revoke_token(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiWrite(auth): ApiWrite,
) -> Result<Response, WebError> {
    state.kernel.revoke_token(auth.who(), &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
