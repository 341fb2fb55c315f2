//! Pages that are not an entity: start page, sign-in, first-boot setup, modules still
//! to come, search, and the appliance admin page.

use axum::extract::{Query, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use nexus_kernel::{KernelError, ListQuery, SignIn};
use nexus_ui::Toast;
use serde::Deserialize;

use crate::body::field;
use crate::error::WebError;
use crate::session::{AnonForm, Auth, FormSubmit, PRE_COOKIE, cookie, pre_cookie, session_cookie};
use crate::{AppState, views};

pub async fn home(State(state): State<AppState>, auth: Auth) -> Result<Markup, WebError> {
    let who = auth.who();
    // One tile per list the user may read in each module's navigation, with its count.
    let mut tiles = Vec::new();
    for m in crate::module::installed() {
        for entry in m
            .nav_for(who)
            .filter(|e| e.href == format!("/e/{}", e.entity))
        {
            let def = state.kernel.entity(entry.entity)?;
            let total = state
                .kernel
                .list(
                    who,
                    def,
                    &ListQuery {
                        limit: 1,
                        ..Default::default()
                    },
                )?
                .total;
            tiles.push((entry.href, total, entry.label));
        }
    }
    let body = html! {
        header .page-head { h1 { "Good day, " (who.display_name) } div .meta { (who.company_name) " · " (who.role_name) } }
        div .tiles {
            @for (href, n, label) in &tiles { a .card .tile href=(href) { div .big { (n) } div { (label) } } }
            @for m in views::navigation(who).iter().filter(|m| !m.ready) {
                a .card .tile href=(m.href) { div .big { (m.glyph) } div { (m.label) } div .soon { "coming" } }
            }
        }
    };
    Ok(views::page(&auth, "Home", "home", body, Vec::new()))
}

/// What each module will hold, for its "coming" page.
fn module_plan(key: &str) -> Option<(&'static str, &'static str)> {
    Some(match key {
        // "ledger" is ready: `/m/ledger` is the ledger home (`ledger::home`).
        "hr" => ("HR", "Employees, contracts, leave and payroll preparation."),
        "epm" => ("EPM", "Budgets, forecasts and actuals by period."),
        "projects" => ("Projects", "Projects, tasks, time sheets and billing."),
        "assistant" => (
            "Assistant",
            "Questions answered from your own records, with citations, by a model running on this box.",
        ),
        _ => return None,
    })
}

pub async fn module(
    auth: Auth,
    axum::extract::Path(key): axum::extract::Path<String>,
) -> Result<Markup, WebError> {
    let (label, plan) = module_plan(&key).ok_or(WebError::NoRoute)?;
    let body = html! {
        header .page-head { h1 { (label) } }
        div .card { p { strong { "Coming in a later update." } } p { (plan) } p { "Meanwhile, the modules in the navigation are ready." } }
    };
    Ok(views::page(
        &auth,
        label,
        views::COMING
            .iter()
            .find(|m| m.0 == key)
            .map_or("", |m| m.0),
        body,
        Vec::new(),
    ))
}

fn random_hex() -> String {
    let mut b = [0u8; 16];
    rand::fill(&mut b);
    hex::encode(b)
}

/// The sign-in form, with a fresh double-submit token when the browser has none.
fn login_page(
    headers: &HeaderMap,
    state: &AppState,
    next: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let pre = cookie(headers, PRE_COOKIE)
        .filter(|v| v.len() == 32)
        .map(str::to_string);
    let token = pre.clone().unwrap_or_else(random_hex);
    let setup = state.kernel.setup_needed().unwrap_or(false);
    let body = html! {
        div .card .login {
            h1 { "Sign in to NexusAI" }
            @if setup {
                div .notice { "No administrator exists yet. Open the setup link that nexus printed when it started (console or " code { "journalctl -u nexus" } ")." }
            }
            @if let Some(e) = error { div .form-error role="alert" { (e) } }
            form method="post" action="/login" {
                input type="hidden" name="_csrf" value=(token);
                input type="hidden" name="next" value=(next);
                div .field { label for="username" { "Login name" } input #username name="username" autocomplete="username" autofocus required; }
                div .field { label for="password" { "Password" } input #password type="password" name="password" autocomplete="current-password" required; }
                button .primary type="submit" { "Sign in" }
            }
        }
    };
    let mut res = (status, views::bare_page("Sign in", body)).into_response();
    if pre.is_none() {
        res.headers_mut()
            .insert(header::SET_COOKIE, pre_cookie(&token));
    }
    res
}

/// Only same-site paths may be a sign-in's destination: a path starting with one `/`,
/// without control characters (a tab or a line break, raw or percent-encoded, would
/// let a browser read `/\t/evil.example` as another site, or break the redirect),
/// without backslashes and without `//` once decoded.
fn safe_next(next: &str) -> &str {
    let decoded = percent_decoded(next);
    let bad = |s: &str| {
        !s.starts_with('/')
            || s.starts_with("//")
            || s.contains('\\')
            || s.chars().any(|c| c.is_control() || c.is_whitespace())
    };
    if bad(next) || bad(&decoded) {
        "/"
    } else {
        next
    }
}

/// `%XX` escapes decoded (bytes that are not UTF-8 become U+FFFD).
fn percent_decoded(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).and_then(|b| hex(*b)),
            bytes.get(i + 2).and_then(|b| hex(*b)),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub async fn login_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let next: String = raw
        .as_deref()
        .and_then(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(q).ok())
        .and_then(|pairs| pairs.into_iter().find(|(k, _)| k == "next").map(|(_, v)| v))
        .unwrap_or_else(|| "/".into());
    login_page(&headers, &state, safe_next(&next), None, StatusCode::OK)
}

pub async fn login(State(state): State<AppState>, headers: HeaderMap, form: AnonForm) -> Response {
    let username = field(&form.pairs, "username").unwrap_or("");
    let password = field(&form.pairs, "password").unwrap_or("");
    let next = safe_next(field(&form.pairs, "next").unwrap_or("/")).to_string();
    match state
        .kernel
        .sign_in(username, password, None, form.client)
        .await
    {
        Ok(SignIn::Done(token, _)) => signed_in(&token, &next),
        Ok(SignIn::NeedsCode(ticket)) => code_page(&headers, &ticket, &next, None, StatusCode::OK),
        Err(e) => login_refused(&headers, &state, &next, e),
    }
}

fn signed_in(token: &str, next: &str) -> Response {
    let mut res = Redirect::to(next).into_response();
    res.headers_mut()
        .insert(header::SET_COOKIE, session_cookie(Some(token)));
    res
}

/// `POST /login/code`: the second step of a sign-in with a second factor.
pub async fn login_code(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: AnonForm,
) -> Response {
    let ticket = field(&form.pairs, "ticket").unwrap_or("");
    let code = field(&form.pairs, "code").unwrap_or("");
    let next = safe_next(field(&form.pairs, "next").unwrap_or("/")).to_string();
    match state
        .kernel
        .sign_in_with_code(ticket, code, form.client)
        .await
    {
        Ok((token, _)) => signed_in(&token, &next),
        // A wrong code: the same ticket may try again (a few times).
        Err(KernelError::Invalid(errors)) => {
            let message = errors.0.first().map(|(_, m)| m.clone()).unwrap_or_default();
            code_page(
                &headers,
                ticket,
                &next,
                Some(&message),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
        }
        Err(e) => login_refused(&headers, &state, &next, e),
    }
}

/// The sign-in's second step: the code from the authenticator app.
fn code_page(
    headers: &HeaderMap,
    ticket: &str,
    next: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let pre = cookie(headers, PRE_COOKIE)
        .filter(|v| v.len() == 32)
        .map(str::to_string);
    let token = pre.clone().unwrap_or_else(random_hex);
    let body = html! {
        div .card .login {
            h1 { "Your second factor" }
            p { "Open the authenticator app and give the 6-digit code for NexusAI, or one of your recovery codes." }
            @if let Some(e) = error { div .form-error role="alert" { (e) } }
            form method="post" action="/login/code" {
                input type="hidden" name="_csrf" value=(token);
                input type="hidden" name="ticket" value=(ticket);
                input type="hidden" name="next" value=(next);
                div .field { label for="code" { "Code" } input #code name="code" inputmode="numeric" autocomplete="one-time-code" autofocus required maxlength="40"; }
                button .primary type="submit" { "Sign in" }
            }
        }
    };
    let mut res = (status, views::bare_page("Sign in", body)).into_response();
    if pre.is_none() {
        res.headers_mut()
            .insert(header::SET_COOKIE, pre_cookie(&token));
    }
    res
}

fn login_refused(headers: &HeaderMap, state: &AppState, next: &str, e: KernelError) -> Response {
    let retry = match &e {
        KernelError::Throttled { retry_after_secs } => Some(*retry_after_secs),
        _ => None,
    };
    let web = WebError::from(e);
    let (status, _) = web.status_and_code();
    let mut res = login_page(headers, state, next, Some(&web.message()), status);
    // As the API does: a locked-out form says when to try again.
    if let Some(secs) = retry
        && let Ok(v) = header::HeaderValue::from_str(&secs.to_string())
    {
        res.headers_mut().insert(header::RETRY_AFTER, v);
    }
    res
}

pub async fn logout(
    State(state): State<AppState>,
    submit: FormSubmit,
) -> Result<Response, WebError> {
    state
        .kernel
        .logout(submit.auth.session_token("sign out")?)
        .await?;
    let mut res = Redirect::to("/login").into_response();
    res.headers_mut()
        .insert(header::SET_COOKIE, session_cookie(None));
    Ok(res)
}

/// The company switcher in the top bar: work in another company the user may act in,
/// then start from its home page.
pub async fn switch_company(
    State(state): State<AppState>,
    submit: FormSubmit,
) -> Result<Response, WebError> {
    let company = field(&submit.pairs, "company")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .ok_or_else(|| WebError::Malformed("choose a company to work in".into()))?;
    state
        .kernel
        .switch_company(submit.auth.session_token("switch company")?, company)
        .await?;
    Ok(crate::records::redirect(submit.htmx, "/"))
}

/// `GET /sessions`: where the user is signed in, each session endable (a lost laptop).
pub async fn sessions(State(state): State<AppState>, auth: Auth) -> Result<Markup, WebError> {
    let list = state
        .kernel
        .sessions_of(auth.session_token("list sessions")?)?;
    let names: std::collections::BTreeMap<u64, String> =
        auth.session.companies().iter().cloned().collect();
    let when = |t: Option<time::OffsetDateTime>| {
        t.map(nexus_kernel::rfc3339).unwrap_or_else(|| "—".into())
    };
    let body = html! {
        header .page-head { h1 { "Your sessions" } }
        div .card {
            p .muted { "Every browser or program signed in as you. End any you do not recognise; then change your password." }
            table .facts-table {
                thead { tr { th { "Signed in" } th { "From" } th { "Company" } th { "Expires" } th {} } }
                tbody {
                    @for s in &list {
                        tr {
                            td { (when(s.created)) }
                            td { (s.address.clone().unwrap_or_else(|| "—".into())) }
                            td { (names.get(&s.company).cloned().unwrap_or_else(|| format!("#{}", s.company))) }
                            td { (nexus_kernel::rfc3339(s.expires)) }
                            td {
                                @if s.current {
                                    "this session"
                                } @else {
                                    form method="post" action={ "/sessions/" (s.id) "/end" } {
                                        input type="hidden" name="_csrf" value=(auth.csrf());
                                        button .link type="submit" { "End" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(views::page(&auth, "Your sessions", "", body, Vec::new()))
}

/// `POST /sessions/{id}/end`: ends one of the user's other sessions.
pub async fn end_session(
    State(state): State<AppState>,
    axum::extract::Path(id): axum::extract::Path<String>,
    submit: FormSubmit,
) -> Result<Response, WebError> {
    state
        .kernel
        .revoke_session(submit.auth.session_token("end sessions")?, &id)
        .await?;
    Ok(crate::records::redirect(submit.htmx, "/sessions"))
}

fn setup_page(token: &str, pre: &str, values: &[(String, String)], error: Option<&str>) -> Markup {
    let v = |k: &str| field(values, k).unwrap_or("").to_string();
    views::bare_page(
        "Set up",
        html! {
            div .card .login {
                h1 { "Create the administrator" }
                p { "This link works once. The administrator can then add users and roles." }
                @if let Some(e) = error { div .form-error role="alert" { (e) } }
                form method="post" action="/setup" {
                    input type="hidden" name="_csrf" value=(pre);
                    input type="hidden" name="token" value=(token);
                    div .field { label for="username" { "Login name" } input #username name="username" value=(v("username")) required autofocus; }
                    div .field { label for="full_name" { "Full name" } input #full_name name="full_name" value=(v("full_name")) required; }
                    div .field { label for="password" { "Password (at least 10 characters)" } input #password type="password" name="password" autocomplete="new-password" required; }
                    div .field { label for="confirm" { "Repeat the password" } input #confirm type="password" name="confirm" autocomplete="new-password" required; }
                    button .primary type="submit" { "Create administrator" }
                }
            }
        },
    )
}

#[derive(Deserialize)]
pub struct SetupQuery {
    #[serde(default)]
    token: String,
}

pub async fn setup_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<SetupQuery>,
) -> Result<Response, WebError> {
    if !state.kernel.setup_token_valid(&q.token) || !state.kernel.setup_needed()? {
        return Err(KernelError::BadSetupToken.into());
    }
    let pre = cookie(&headers, PRE_COOKIE)
        .filter(|v| v.len() == 32)
        .map(str::to_string);
    let token = pre.clone().unwrap_or_else(random_hex);
    let mut res = setup_page(&q.token, &token, &[], None).into_response();
    if pre.is_none() {
        res.headers_mut()
            .insert(header::SET_COOKIE, pre_cookie(&token));
    }
    Ok(res)
}

pub async fn setup(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: AnonForm,
) -> Result<Response, WebError> {
    let get = |k| field(&form.pairs, k).unwrap_or("");
    let pre = cookie(&headers, PRE_COOKIE).unwrap_or("").to_string();
    let again = |msg: &str, status| {
        (
            status,
            setup_page(get("token"), &pre, &form.pairs, Some(msg)),
        )
            .into_response()
    };
    if get("password") != get("confirm") {
        return Ok(again(
            "The two passwords differ.",
            StatusCode::UNPROCESSABLE_ENTITY,
        ));
    }
    match state
        .kernel
        .complete_setup(
            get("token"),
            get("username"),
            get("full_name"),
            get("password"),
        )
        .await
    {
        Ok(_) => {
            let (token, _) = state
                .kernel
                .login(get("username"), get("password"), form.client)
                .await?;
            let mut res = Redirect::to("/").into_response();
            res.headers_mut()
                .insert(header::SET_COOKIE, session_cookie(Some(&token)));
            Ok(res)
        }
        Err(KernelError::Invalid(errors)) => {
            let msg: Vec<String> = errors.0.iter().map(|(f, m)| format!("{f}: {m}")).collect();
            Ok(again(&msg.join("; "), StatusCode::UNPROCESSABLE_ENTITY))
        }
        Err(e) => Err(e.into()),
    }
}

/// The overview, the certificate and the audit chain are the box's, not a company's:
/// for the administrators of its first company.
fn require_admin(auth: &Auth) -> Result<(), WebError> {
    if auth.who().administers_box() {
        Ok(())
    } else {
        Err(WebError::AdminOnly)
    }
}

/// The box's administration changes (its certificate, its checks) are for a signed-in
/// administrator, never a script's token.
pub(crate) fn require_admin_session(auth: &Auth) -> Result<(), WebError> {
    require_admin(auth)?;
    auth.session_token("administer the box").map(drop)
}

fn admin_body(state: &AppState, auth: &Auth, tls_error: Option<&str>) -> Markup {
    let tls = state.tls.describe();
    let stats = state.kernel.writer_stats();
    let info = &state.info;
    html! {
        header .page-head { h1 { "Appliance" } div .meta { "nexus " (info.version) } }
        div .tiles {
            a .card .tile href="/e/user" { div .big { "Users" } div { "People who can sign in" } }
            a .card .tile href="/e/role" { div .big { "Roles" } div { "What each role may do" } }
            a .card .tile href="/e/company" { div .big { "Company" } div { (auth.who().company_name) } }
            a .card .tile href="/jobs" { div .big { "Jobs" } div { "Queued, running, failed and scheduled work" } }
        }
        div .card .spaced {
            h2 { "System" }
            dl .facts {
                dt { "Version" } dd { (info.version) }
                dt { "Host" } dd { (info.hostname) }
                dt { "Data directory" } dd { (info.data_dir) }
                dt { "Started" } dd { (info.started_at) }
                dt { "Event log head" } dd { (state.kernel.log_head()) }
                dt { "Store writer" } dd {
                    @match state.kernel.health() {
                        Ok(()) => "running",
                        Err(reason) => strong .error { (reason) },
                    }
                }
                dt { "Commands committed" } dd { (stats.commands) " in " (stats.commits) " durable commits" }
                dt { "Checkpoints" } dd { (stats.checkpoints) " since start; " (stats.replayed) " batches recovered from the log at start" }
                dt { "Metrics" } dd { a href="/metrics" { "/metrics" } " (Prometheus)" }
            }
            form .spaced method="post" action="/admin/audit/verify" hx-post="/admin/audit/verify" hx-swap="none" {
                input type="hidden" name="_csrf" value=(auth.csrf());
                button type="submit" { "Verify the audit chain" }
            }
        }
        (transparency_card(state))
        (tailers_card(state))
        (crate::search::admin_card(state, auth))
        div .card .spaced {
            h2 { "HTTPS certificate" }
            dl .facts {
                dt { "Subject" } dd { (tls.subject) }
                dt { "Issuer" } dd { (tls.issuer) }
                dt { "Names" } dd { (tls.names.join(", ")) }
                dt { "Valid until" } dd { (tls.not_after) }
                dt { "SHA-256" } dd { code { (tls.fingerprint) } }
                dt { "Source" } dd { @if tls.custom { "installed by an administrator" } @else { "generated by this appliance (box CA)" } }
            }
            @if !tls.custom {
                p { "Browsers trust this box after its CA certificate is installed on each device: " a href="/ca.crt" download { "download the box CA" } "." }
            }
            h2 { "Install your own certificate" }
            @if let Some(e) = tls_error { div .form-error role="alert" { (e) } }
            form method="post" action="/admin/tls" {
                input type="hidden" name="_csrf" value=(auth.csrf());
                div .field .wide { label for="cert" { "Certificate chain (PEM)" } textarea #cert name="cert" rows="6" placeholder="-----BEGIN CERTIFICATE-----" {} }
                div .field .wide { label for="key" { "Private key (PEM)" } textarea #key name="key" rows="6" placeholder="-----BEGIN PRIVATE KEY-----" {} }
                div .form-actions { button .primary type="submit" { "Install certificate" } }
            }
        }
    }
}

pub async fn admin(State(state): State<AppState>, auth: Auth) -> Result<Markup, WebError> {
    require_admin(&auth)?;
    Ok(views::page(
        &auth,
        "Admin",
        "admin",
        admin_body(&state, &auth, None),
        Vec::new(),
    ))
}

/// The transparency log: the key auditors pin, the tree, the last checkpoint.
fn transparency_card(state: &AppState) -> Markup {
    let v = state.notary.verifier();
    let head = state.kernel.tree_head();
    let last = state
        .kernel
        .checkpoints()
        .ok()
        .and_then(|c| c.last().cloned());
    html! {
        div .card .spaced {
            h2 { "Transparency log" }
            p .muted { "Every change is a leaf of a Merkle tree (RFC 6962); the box signs checkpoints of it. Auditors pin the key's fingerprint and verify exported bundles offline with nexus-verify (docs/auditor-guide.md)." }
            dl .facts {
                dt { "Log" } dd { code { (v.name()) } }
                dt { "Key fingerprint" } dd { code { (v.fingerprint()) } }
                @match &head {
                    Ok(h) => {
                        dt { "Tree" } dd { (h.size) " entries, root " code { (hex::encode(h.root)) } }
                    }
                    Err(e) => { dt { "Tree" } dd { strong .error { (e.to_string()) } } }
                }
                dt { "Last checkpoint" } dd {
                    @match &last {
                        Some((size, _)) => { (size) " entries " }
                        None => "none yet ",
                        }
                    a href="/api/v1/audit/checkpoint" { "sign one now" }
                }
                dt { "Bundle" } dd { code { "nexus audit export --out DIR [--company C]" } }
            }
        }
    }
}

pub async fn verify_audit(
    State(state): State<AppState>,
    submit: FormSubmit,
) -> Result<Response, WebError> {
    require_admin_session(&submit.auth)?;
    let toast = match state.kernel.verify_audit() {
        Ok(r) => Toast::success(format!(
            "Audit chain intact: {} entries, head {}…",
            r.entries,
            &r.head[..12.min(r.head.len())]
        )),
        Err(e) => Toast::error(e.to_string()),
    };
    if submit.htmx {
        return Ok(toast.oob_partial().into_response());
    }
    Ok(views::page(
        &submit.auth,
        "Admin",
        "admin",
        admin_body(&state, &submit.auth, None),
        vec![toast],
    )
    .into_response())
}

pub async fn install_tls(
    State(state): State<AppState>,
    submit: FormSubmit,
) -> Result<Response, WebError> {
    require_admin_session(&submit.auth)?;
    let cert = field(&submit.pairs, "cert").unwrap_or("");
    let key = field(&submit.pairs, "key").unwrap_or("");
    match state.tls.install(cert.to_string(), key.to_string()).await {
        Ok(info) => {
            tracing::info!(subject = %info.subject, by = %submit.auth.who().username, "certificate installed");
            let toast = Toast::success(format!(
                "Certificate for {} installed; new connections use it now.",
                info.names.join(", ")
            ));
            Ok(views::page(
                &submit.auth,
                "Admin",
                "admin",
                admin_body(&state, &submit.auth, None),
                vec![toast],
            )
            .into_response())
        }
        Err(message) => Ok((
            StatusCode::UNPROCESSABLE_ENTITY,
            views::page(
                &submit.auth,
                "Admin",
                "admin",
                admin_body(&state, &submit.auth, Some(&message)),
                Vec::new(),
            ),
        )
            .into_response()),
    }
}

pub async fn ca_cert(State(state): State<AppState>) -> Result<Response, WebError> {
    let pem = state.tls.ca_pem().ok_or(WebError::NoRoute)?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-pem-file"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"nexus-box-ca.crt\"",
            ),
        ],
        pem,
    )
        .into_response())
}

/// What follows the event log, how far behind it is, and whether it stopped.
fn tailers_card(state: &AppState) -> Markup {
    use nexus_kernel::TailerState;
    let head = state.kernel.log_head();
    html! {
        div .card .spaced #tailers {
            h2 { "Event-log followers" }
            table .report {
                thead { tr { th { "Follower" } th .num { "Position" } th .num { "Behind" } th { "State" } th .num { "Retries" } } }
                tbody {
                    @for t in state.kernel.tailers() {
                        tr {
                            td { (t.name) }
                            td .num { (t.position) }
                            td .num { (t.lag(head)) }
                            td {
                                @match &t.state {
                                    TailerState::Running => "running",
                                    TailerState::Retrying { attempt, error } => {
                                        "retrying (attempt " (attempt) "): " (error)
                                    }
                                    TailerState::Stopped { at, error } => {
                                        strong .error { "stopped at event " (at) ": " (error) }
                                    }
                                }
                            }
                            td .num { (t.retries) }
                        }
                    }
                }
            }
        }
    }
}
