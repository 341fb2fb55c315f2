//! Compliance on the web: the access review's page, CSV and JSON.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use maud::{Markup, html};
use nexus_kernel::{AccessEntry, Action, rfc3339};
use nexus_web::openapi::{Access, ApiOp};
use nexus_web::session::Auth;
use nexus_web::{AppState, NavEntry, WebError, WebModule, views};
use serde_json::{Value as J, json};

/// The Compliance module's web part.
pub static MODULE: WebModule = WebModule {
    module: &crate::COMPLIANCE,
    glyph: "✓",
    home: "/compliance/access",
    nav: &[NavEntry {
        label: "Access review",
        href: "/compliance/access",
        entity: "membership",
        needs: Action::Read,
    }],
    routes,
    api: API,
    cli: None,
};

fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/compliance/access", get(page))
        .route("/compliance/access.csv", get(csv))
        .route("/api/v1/compliance/access", get(api))
}

static API: &[ApiOp] = &[ApiOp {
    method: "get",
    route: "/api/v1/compliance/access",
    operation: || {
        json!({ "summary": "The access review: everyone who may act in this company, their role and grants, last sign-in, second factor and API tokens",
            "responses": { "200": { "description": "the review", "content": { "application/json": { "schema": { "type": "object", "required": ["company", "data"],
                "properties": { "company": { "type": "string" }, "data": { "type": "array", "items": { "type": "object",
                    "required": ["user", "username", "full_name", "role", "grants", "active", "mfa", "tokens"],
                    "properties": { "user": { "type": "integer" }, "username": { "type": "string" }, "full_name": { "type": "string" },
                        "member_from": { "type": ["string", "null"] }, "role": { "type": "string" }, "grants": { "type": "string" },
                        "role_requires_mfa": { "type": "boolean" }, "active": { "type": "boolean" },
                        "last_sign_in": { "type": ["string", "null"] }, "mfa": { "type": "boolean" },
                        "tokens": { "type": "array", "items": { "type": "object" } } } } } } } } } } } })
    },
    errors: &[],
    access: Access::Needs("user:r, role:r, membership:r"),
}];

fn entry_json(e: &AccessEntry) -> J {
    json!({
        "user": e.user,
        "username": e.username,
        "full_name": e.full_name,
        "member_from": e.member_from,
        "role": e.role,
        "grants": e.grants,
        "role_requires_mfa": e.role_requires_mfa,
        "active": e.active,
        "last_sign_in": e.last_sign_in.map(rfc3339),
        "mfa": e.mfa,
        "tokens": e.tokens.iter().map(|(name, scopes, expires)| json!({ "name": name, "scopes": scopes, "expires_at": rfc3339(*expires) })).collect::<Vec<_>>(),
    })
}

/// `GET /compliance/access`.
async fn page(State(state): State<AppState>, auth: Auth) -> Result<Markup, WebError> {
    let who = auth.who();
    let rows = state.kernel.access_review(who)?;
    let body = html! {
        header .page-head {
            h1 { "Access review" }
            a .button href="/compliance/access.csv" { "Export CSV" }
        }
        div .card {
            p .muted { "Everyone who may act in " (who.company_name) ": its own users and members from other companies, with what their role allows. Review it regularly; export it for the auditors." }
            table .facts-table #access-review {
                thead { tr { th { "Login name" } th { "Name" } th { "Role" } th { "Grants" } th { "Active" } th { "Last sign-in" } th { "Second factor" } th { "API tokens" } } }
                tbody {
                    @for e in &rows {
                        tr {
                            td { (e.username) @if let Some(home) = &e.member_from { br; small .muted { "member from " (home) } } }
                            td { (e.full_name) }
                            td { (e.role) }
                            td { code { (e.grants) } }
                            td { @if e.active { "yes" } @else { "no" } }
                            td { (e.last_sign_in.map(rfc3339).unwrap_or_else(|| "never".into())) }
                            td {
                                @if e.mfa { "on" } @else { "off" }
                                @if e.role_requires_mfa && !e.mfa { " (required by the role)" }
                            }
                            td {
                                @if e.tokens.is_empty() { "—" }
                                @for (name, scopes, _) in &e.tokens { div { (name) ": " code { (scopes) } } }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(views::page(
        &auth,
        "Access review",
        "compliance",
        body,
        Vec::new(),
    ))
}

/// `GET /compliance/access.csv`: the review as a spreadsheet (an `export` entry of the log).
async fn csv(State(state): State<AppState>, auth: Auth) -> Result<Response, WebError> {
    let rows = state.kernel.access_review(auth.who())?;
    let mut out = String::new();
    let header_row: Vec<String> = [
        "user",
        "username",
        "full_name",
        "member_from",
        "role",
        "grants",
        "role_requires_mfa",
        "active",
        "last_sign_in",
        "mfa",
        "tokens",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    nexus_web::records::push_csv_row(&mut out, &header_row);
    for e in &rows {
        let tokens: Vec<String> = e
            .tokens
            .iter()
            .map(|(name, scopes, expires)| format!("{name} [{scopes}] until {}", rfc3339(*expires)))
            .collect();
        nexus_web::records::push_csv_row(
            &mut out,
            &[
                e.user.to_string(),
                e.username.clone(),
                e.full_name.clone(),
                e.member_from.clone().unwrap_or_default(),
                e.role.clone(),
                e.grants.clone(),
                e.role_requires_mfa.to_string(),
                e.active.to_string(),
                e.last_sign_in.map(rfc3339).unwrap_or_default(),
                e.mfa.to_string(),
                tokens.join("; "),
            ],
        );
    }
    state
        .kernel
        .log_export(
            auth.who(),
            "access review",
            json!({ "format": "CSV", "rows": rows.len() }),
        )
        .await?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static("attachment; filename=\"access-review.csv\""),
            ),
        ],
        out,
    )
        .into_response())
}

/// `GET /api/v1/compliance/access`.
async fn api(State(state): State<AppState>, auth: Auth) -> Result<Json<J>, WebError> {
    let rows = state.kernel.access_review(auth.who())?;
    Ok(Json(json!({
        "company": auth.who().company_name,
        "data": rows.iter().map(entry_json).collect::<Vec<_>>(),
    })))
}
