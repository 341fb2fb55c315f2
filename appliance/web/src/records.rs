//! The HTML side of every entity: list (grid), new/create, record page/update,
//! inline cell edits, delete, history and CSV export. Thin: parse, call the kernel,
//! render.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use nexus_kernel::{Action, EntityDef, Input, KernelError, ListQuery, Record, builtin};
use nexus_ui::{Grid, RowMode, Toast};

use crate::AppState;
use crate::body::field;
use crate::error::WebError;
use crate::session::{Auth, FormSubmit};
use crate::views::{self, FormSpec};

/// The most rows one page may ask for.
pub const MAX_PAGE: usize = 500;
/// The longest quick search or column filter a list takes.
pub const MAX_SEARCH: usize = 200;

pub fn is_htmx(headers: &HeaderMap) -> bool {
    headers.contains_key("hx-request") && !headers.contains_key("hx-boosted")
}

pub(crate) fn parse_id(raw: &str) -> Result<u64, WebError> {
    raw.parse::<u64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| WebError::Malformed(format!("\"{raw}\" is not a record id")))
}

/// Reads list state from a query string: `sort`, `desc`, `q`, `f.<field>`, `offset`, `limit`.
pub fn list_query(raw: Option<&str>) -> Result<ListQuery, WebError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or(""))
        .map_err(|e| WebError::Malformed(format!("the address could not be read: {e}")))?;
    let mut q = ListQuery {
        limit: 50,
        ..ListQuery::default()
    };
    for (k, v) in pairs {
        if (k == "q" || k.starts_with("f.")) && v.chars().count() > MAX_SEARCH {
            return Err(WebError::Malformed(format!(
                "{k} is limited to {MAX_SEARCH} characters"
            )));
        }
        match k.as_str() {
            "sort" if !v.is_empty() => q.sort = Some(v),
            "desc" => {
                q.descending = match v.as_str() {
                    "1" | "true" => true,
                    "" | "0" | "false" => false,
                    _ => {
                        return Err(WebError::Malformed(format!(
                            "desc \"{v}\" should be true or false"
                        )));
                    }
                }
            }
            "q" => q.search = Some(v),
            "offset" => {
                q.offset = v
                    .parse()
                    .map_err(|_| WebError::Malformed(format!("offset \"{v}\" is not a number")))?;
            }
            "limit" => {
                let n: usize = v
                    .parse()
                    .map_err(|_| WebError::Malformed(format!("limit \"{v}\" is not a number")))?;
                if n == 0 || n > MAX_PAGE {
                    return Err(WebError::Malformed(format!(
                        "limit must be between 1 and {MAX_PAGE}"
                    )));
                }
                q.limit = n;
            }
            _ => {
                if let Some(name) = k.strip_prefix("f.") {
                    q.filters.push((name.to_string(), v));
                }
            }
        }
    }
    Ok(q)
}

fn grid(
    state: &AppState,
    auth: &Auth,
    def: &'static EntityDef,
    q: &ListQuery,
) -> Result<Grid, WebError> {
    let who = auth.who();
    let page = state.kernel.list(who, def, q)?;
    let titles = views::ref_titles(&state.kernel, who, def, &page.rows)?;
    let mut g = views::grid_shell(def, who);
    g.rows = page
        .rows
        .iter()
        .map(|r| views::grid_row(def, who, r, &titles))
        .collect();
    g.sort = q.sort.clone();
    g.descending = q.descending;
    g.search = q.search.clone().unwrap_or_default();
    g.filters = q.filters.clone();
    g.offset = q.offset;
    g.limit = q.limit;
    g.total = page.total;
    g.csrf = auth.csrf().to_owned();
    Ok(g)
}

pub async fn list(
    State(state): State<AppState>,
    auth: Auth,
    Path(entity): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let def = state.kernel.entity(&entity)?;
    let q = list_query(raw.as_deref())?;
    let g = grid(&state, &auth, def, &q)?;
    if is_htmx(&headers) {
        return Ok(g.partial().into_response());
    }
    let body = maud::Render::render(&g);
    Ok(views::page(&auth, def.plural, views::module_of(def), body, Vec::new()).into_response())
}

pub async fn export_csv(
    State(state): State<AppState>,
    auth: Auth,
    Path(entity): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, WebError> {
    let def = state.kernel.entity(&entity)?;
    let q = list_query(raw.as_deref())?;
    let rows = state.kernel.export(auth.who(), def, &q)?;
    state
        .kernel
        .log_export(
            auth.who(),
            def.name,
            serde_json::json!({ "format": "CSV", "query": raw.as_deref().unwrap_or(""), "rows": rows.len() }),
        )
        .await?;
    let mut out = String::new();
    csv_header(&mut out, def, auth.who());
    for r in &rows {
        csv_record(&mut out, def, auth.who(), r);
    }
    let disposition = format!("attachment; filename=\"{}.csv\"", def.name);
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_str(&disposition)
                    .unwrap_or(HeaderValue::from_static("attachment")),
            ),
        ],
        out,
    )
        .into_response())
}

/// The CSV header of `def`'s export for `who`: id, every stored field they see, version.
pub fn csv_header(out: &mut String, def: &EntityDef, who: &nexus_kernel::Principal) {
    let header_row: Vec<String> = std::iter::once("id".to_string())
        .chain(
            def.fields
                .iter()
                .filter(|f| f.stored() && who.sees(def, f))
                .map(|f| f.name.to_string()),
        )
        .chain(["version".to_string()])
        .collect();
    push_csv_row(out, &header_row);
}

/// One record as a CSV line, in [`csv_header`]'s columns.
pub fn csv_record(
    out: &mut String,
    def: &EntityDef,
    who: &nexus_kernel::Principal,
    r: &nexus_kernel::Record,
) {
    let row: Vec<String> = std::iter::once(r.id.to_string())
        .chain(
            def.fields
                .iter()
                .filter(|f| f.stored() && who.sees(def, f))
                .map(|f| r.get(f.name).display()),
        )
        .chain([r.version.to_string()])
        .collect();
    push_csv_row(out, &row);
}

/// One CSV line: RFC 4180 quoting; a leading `= + - @` is prefixed with `'` so a
/// spreadsheet does not run it as a formula (CSV injection).
pub fn push_csv_row(out: &mut String, cells: &[String]) {
    for (i, c) in cells.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let guarded = if c.starts_with(['=', '+', '-', '@']) && c.parse::<f64>().is_err() {
            format!("'{c}")
        } else {
            c.clone()
        };
        if guarded.contains([',', '"', '\n', '\r']) {
            out.push('"');
            out.push_str(&guarded.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(&guarded);
        }
    }
    out.push_str("\r\n");
}

pub async fn new_form(
    State(state): State<AppState>,
    auth: Auth,
    Path(entity): Path<String>,
) -> Result<Markup, WebError> {
    let def = state.kernel.entity(&entity)?;
    if !auth.who().can(def.name, Action::Create) || def.creation != nexus_kernel::Creation::ByRole {
        return Err(KernelError::Forbidden {
            action: "create",
            entity: def.plural.to_lowercase(),
        }
        .into());
    }
    let form = views::record_form(
        &state.kernel,
        &auth,
        def,
        FormSpec {
            record: None,
            submitted: None,
            errors: None,
            message: None,
        },
    )?;
    let body = html! {
        header .page-head { h1 { "New " (def.label.to_lowercase()) } }
        div .card { (form) }
    };
    Ok(views::page(
        &auth,
        &format!("New {}", def.label.to_lowercase()),
        views::module_of(def),
        body,
        Vec::new(),
    ))
}

pub async fn create(
    State(state): State<AppState>,
    Path(entity): Path<String>,
    submit: FormSubmit,
) -> Result<Response, WebError> {
    let def = state.kernel.entity(&entity)?;
    let FormSubmit { auth, pairs, htmx } = submit;
    match state
        .kernel
        .create(auth.who(), def, Input::Form(pairs.clone()))
        .await
    {
        Ok(rec) => {
            // A new company is worked in at once: its creator administers it.
            if def.code == builtin::COMPANY.code && !auth.bearer {
                state.kernel.switch_company(&auth.token, rec.id).await?;
            }
            let target = format!("/e/{}/{}?created=1", def.name, rec.id);
            Ok(redirect(htmx, &target))
        }
        Err(KernelError::Invalid(errors)) => {
            let form = views::record_form(
                &state.kernel,
                &auth,
                def,
                FormSpec {
                    record: None,
                    submitted: Some(&pairs),
                    errors: Some(&errors),
                    message: Some("Please correct the highlighted fields.".into()),
                },
            )?;
            let form = maud::Render::render(&form);
            if htmx {
                return Ok((StatusCode::UNPROCESSABLE_ENTITY, form).into_response());
            }
            let body = html! { header .page-head { h1 { "New " (def.label.to_lowercase()) } } div .card { (form) } };
            Ok((
                StatusCode::UNPROCESSABLE_ENTITY,
                views::page(&auth, def.label, views::module_of(def), body, Vec::new()),
            )
                .into_response())
        }
        Err(e) => Err(e.into()),
    }
}

/// A redirect an htmx request follows too (`HX-Redirect`), or a plain 303 otherwise.
pub fn redirect(htmx: bool, target: &str) -> Response {
    if htmx {
        let mut r = StatusCode::OK.into_response();
        if let Ok(v) = HeaderValue::from_str(target) {
            r.headers_mut().insert("hx-redirect", v);
        }
        r
    } else {
        Redirect::to(target).into_response()
    }
}

fn record_body(
    state: &AppState,
    auth: &Auth,
    def: &'static EntityDef,
    rec: &Record,
    form: Markup,
) -> Result<Markup, WebError> {
    let history = state.kernel.history(auth.who(), def, rec.id)?;
    let can_delete = auth.who().can(def.name, Action::Delete);
    Ok(html! {
        header .page-head {
            div {
                a href={ "/e/" (def.name) } { "← " (def.plural) }
                h1 { (rec.title(def)) }
                div .meta { (def.label) " #" (rec.id) " · version " (rec.version) }
            }
            div .actions {
                @if can_delete {
                    form method="post" action={ "/e/" (def.name) "/" (rec.id) "/delete" }
                        hx-post={ "/e/" (def.name) "/" (rec.id) "/delete" }
                        hx-confirm={ "Delete " (rec.title(def)) "? This cannot be undone." } {
                        input type="hidden" name="_csrf" value=(auth.csrf());
                        input type="hidden" name="version" value=(rec.version);
                        button .danger type="submit" { "Delete" }
                    }
                }
            }
        }
        div .record {
            div {
                div .card { (form) }
                (crate::documents::panel(state, auth, def, rec.id)?)
            }
            (views::history_partial(def, rec.id, rec.version, &history, None))
        }
    })
}

pub async fn show(
    State(state): State<AppState>,
    auth: Auth,
    Path((entity, id)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Markup, WebError> {
    let def = state.kernel.entity(&entity)?;
    let rec = state.kernel.get(auth.who(), def, parse_id(&id)?)?;
    let form = views::record_form(
        &state.kernel,
        &auth,
        def,
        FormSpec {
            record: Some(&rec),
            submitted: None,
            errors: None,
            message: None,
        },
    )?;
    let body = record_body(&state, &auth, def, &rec, maud::Render::render(&form))?;
    let mut toasts = Vec::new();
    match raw.as_deref() {
        Some("created=1") => toasts.push(Toast::success(format!("{} created", def.label))),
        Some("saved=1") => toasts.push(Toast::success("Saved")),
        _ => {}
    }
    Ok(views::page(
        &auth,
        &rec.title(def),
        views::module_of(def),
        body,
        toasts,
    ))
}

fn form_version(pairs: &[(String, String)]) -> Result<u64, WebError> {
    field(pairs, "version")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| {
            WebError::Malformed(
                "the form lacks the version it was based on; reload the page".into(),
            )
        })
}

pub async fn update(
    State(state): State<AppState>,
    Path((entity, id)): Path<(String, String)>,
    submit: FormSubmit,
) -> Result<Response, WebError> {
    let def = state.kernel.entity(&entity)?;
    let id = parse_id(&id)?;
    let FormSubmit { auth, pairs, htmx } = submit;
    let version = form_version(&pairs)?;
    let result = state
        .kernel
        .update(auth.who(), def, id, version, Input::Form(pairs.clone()))
        .await;
    let (status, rec, errors, message, toast) = match result {
        Ok(rec) => (
            StatusCode::OK,
            rec,
            None,
            None,
            Some(Toast::success("Saved")),
        ),
        Err(KernelError::Invalid(errors)) => {
            let current = state.kernel.get(auth.who(), def, id)?;
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                current,
                Some(errors),
                Some("Please correct the highlighted fields.".to_string()),
                None,
            )
        }
        Err(e @ KernelError::Stale { .. }) => {
            let current = state.kernel.get(auth.who(), def, id)?;
            (
                StatusCode::CONFLICT,
                current,
                None,
                Some(WebError::from(e).message()),
                None,
            )
        }
        Err(e) => return Err(e.into()),
    };
    if !htmx && status == StatusCode::OK {
        return Ok(Redirect::to(&format!("/e/{}/{}?saved=1", def.name, id)).into_response());
    }
    // On a refusal the form keeps what the person typed; the version stays theirs so
    // a stale edit is not silently rebased.
    let mut shown = rec.clone();
    if status == StatusCode::CONFLICT || status == StatusCode::UNPROCESSABLE_ENTITY {
        shown.version = version;
    }
    let submitted = (status != StatusCode::OK).then_some(pairs.as_slice());
    let form = views::record_form(
        &state.kernel,
        &auth,
        def,
        FormSpec {
            record: Some(&shown),
            submitted,
            errors: errors.as_ref(),
            message,
        },
    )?;
    let form = maud::Render::render(&form);
    if !htmx {
        let body = record_body(&state, &auth, def, &rec, form)?;
        return Ok((
            status,
            views::page(
                &auth,
                &rec.title(def),
                views::module_of(def),
                body,
                Vec::new(),
            ),
        )
            .into_response());
    }
    let history = state.kernel.history(auth.who(), def, id)?;
    let body = html! {
        (form)
        @if status == StatusCode::OK {
            (views::history_partial(def, id, rec.version, &history, None))
        }
        @if let Some(t) = toast { (t.oob_partial()) }
    };
    Ok((status, body).into_response())
}

pub async fn delete(
    State(state): State<AppState>,
    Path((entity, id)): Path<(String, String)>,
    submit: FormSubmit,
) -> Result<Response, WebError> {
    let def = state.kernel.entity(&entity)?;
    let id = parse_id(&id)?;
    let version = field(&submit.pairs, "version").and_then(|v| v.parse().ok());
    state
        .kernel
        .delete(submit.auth.who(), def, id, version)
        .await?;
    Ok(redirect(submit.htmx, &format!("/e/{}", def.name)))
}

pub async fn history(
    State(state): State<AppState>,
    auth: Auth,
    Path((entity, id)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Markup, WebError> {
    let def = state.kernel.entity(&entity)?;
    let id = parse_id(&id)?;
    let seen: Option<u64> = raw
        .as_deref()
        .and_then(|q| q.strip_prefix("version="))
        .and_then(|v| v.parse().ok());
    let entries = state.kernel.history(auth.who(), def, id)?;
    let latest = entries.first();
    let version = latest.map_or(0, |e| e.version);
    let notice = match (seen, latest) {
        (Some(seen), Some(e)) if e.version > seen && e.actor != auth.who().user_id => {
            Some(if e.op == nexus_kernel::Op::Delete {
                format!(
                    "{} deleted this {}.",
                    e.actor_name,
                    def.label.to_lowercase()
                )
            } else {
                format!(
                    "{} saved a newer version (v{}) while you had v{seen} open.",
                    e.actor_name, e.version
                )
            })
        }
        _ => None,
    };
    // While the notice shows, keep the version the page was opened at, so the notice
    // stays until the person reloads.
    let shown = match (&notice, seen) {
        (Some(_), Some(seen)) => seen,
        _ => version,
    };
    Ok(views::history_partial(
        def,
        id,
        shown,
        &entries,
        notice.as_deref(),
    ))
}

fn row_markup(
    state: &AppState,
    auth: &Auth,
    def: &'static EntityDef,
    rec: &Record,
    mode: RowMode,
) -> Result<Markup, WebError> {
    let titles = views::ref_titles(&state.kernel, auth.who(), def, std::slice::from_ref(rec))?;
    let mut row = views::grid_row(def, auth.who(), rec, &titles);
    row.mode = mode;
    Ok(views::grid_shell(def, auth.who()).row_partial(&row))
}

/// A row with one cell in edit mode: the stored value, or what the person typed.
fn edit_row(
    state: &AppState,
    auth: &Auth,
    def: &'static EntityDef,
    rec: &Record,
    column: String,
    typed: Option<String>,
    error: Option<String>,
) -> Result<Markup, WebError> {
    let (input, stored) = views::cell_input(&state.kernel, auth.who(), def, &column, rec)?;
    let value = typed.unwrap_or(stored);
    row_markup(
        state,
        auth,
        def,
        rec,
        RowMode::Edit {
            column,
            input,
            value,
            error,
        },
    )
}

pub async fn row(
    State(state): State<AppState>,
    auth: Auth,
    Path((entity, id)): Path<(String, String)>,
) -> Result<Markup, WebError> {
    let def = state.kernel.entity(&entity)?;
    let rec = state.kernel.get(auth.who(), def, parse_id(&id)?)?;
    row_markup(&state, &auth, def, &rec, RowMode::View)
}

pub async fn cell_edit(
    State(state): State<AppState>,
    auth: Auth,
    Path((entity, id, field_name)): Path<(String, String, String)>,
) -> Result<Markup, WebError> {
    let def = state.kernel.entity(&entity)?;
    if !auth.who().can(def.name, Action::Write) {
        return Err(KernelError::Forbidden {
            action: "edit",
            entity: def.plural.to_lowercase(),
        }
        .into());
    }
    let rec = state.kernel.get(auth.who(), def, parse_id(&id)?)?;
    edit_row(&state, &auth, def, &rec, field_name, None, None)
}

pub async fn cell_save(
    State(state): State<AppState>,
    Path((entity, id, field_name)): Path<(String, String, String)>,
    submit: FormSubmit,
) -> Result<Response, WebError> {
    let def = state.kernel.entity(&entity)?;
    let id = parse_id(&id)?;
    let FormSubmit { auth, pairs, .. } = submit;
    let version = form_version(&pairs)?;
    let value = field(&pairs, &field_name).unwrap_or("").to_string();
    let input = Input::Form(vec![(field_name.clone(), value.clone())]);
    match state
        .kernel
        .update(auth.who(), def, id, version, input)
        .await
    {
        Ok(rec) => {
            let row = row_markup(&state, &auth, def, &rec, RowMode::View)?;
            let label = def.field(&field_name).map_or("Field", |f| f.label);
            Ok(
                html! { (row) (Toast::success(format!("{label} saved")).oob_partial()) }
                    .into_response(),
            )
        }
        Err(e @ (KernelError::Invalid(_) | KernelError::Stale { .. })) => {
            let status = if matches!(e, KernelError::Stale { .. }) {
                StatusCode::CONFLICT
            } else {
                StatusCode::UNPROCESSABLE_ENTITY
            };
            let message = match &e {
                KernelError::Invalid(fe) => fe
                    .get(&field_name)
                    .map_or_else(|| WebError::from(e.clone()).message(), str::to_string),
                other => WebError::from(other.clone()).message(),
            };
            let mut rec = state.kernel.get(auth.who(), def, id)?;
            // Keep the version the person edited, so saving again is refused again
            // until they have seen the newer value.
            rec.version = version;
            let markup = edit_row(
                &state,
                &auth,
                def,
                &rec,
                field_name,
                Some(value),
                Some(message),
            )?;
            Ok((status, markup).into_response())
        }
        Err(e) => Err(e.into()),
    }
}
