//! Fiscal years: the list, opening a year, and closing one (the year-end closing entry
//! into retained earnings, which also locks the year).

use crate::entities::{FISCAL_YEAR, FiscalYearRecord};
use crate::years;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use nexus_kernel::{Action, KernelError};
use nexus_ui::Toast;

use super::{format_date, parse_date, parse_id, query_pairs};
use nexus_web::AppState;
use nexus_web::body::field;
use nexus_web::error::WebError;
use nexus_web::records::{is_htmx, redirect};
use nexus_web::session::{Auth, FormSubmit};
use nexus_web::views;

pub async fn years_page(
    State(state): State<AppState>,
    auth: Auth,
    RawQuery(raw): RawQuery,
) -> Result<Markup, WebError> {
    let who = auth.who();
    let list = years::years(&state.kernel, who)?;
    let mut records = Vec::with_capacity(list.len());
    for y in &list {
        records.push((y, state.kernel.read::<FiscalYearRecord>(who, y.id)?));
    }
    let first_open = list.iter().find(|y| !y.closed).map(|y| y.id);
    let can_close = who.can(FISCAL_YEAR.name, Action::Write);
    let mut toasts = Vec::new();
    for (k, v) in query_pairs(raw.as_deref())? {
        match k.as_str() {
            "opened" => toasts.push(Toast::success(format!("{v} opened"))),
            "closed" => toasts.push(Toast::success(format!(
                "{v} closed: its result is in retained earnings and the year is locked"
            ))),
            _ => {}
        }
    }
    // A sensible next year: the day after the last one, twelve months long.
    let next_start = list
        .last()
        .and_then(|y| y.year.end().next_day())
        .map(format_date)
        .unwrap_or_default();
    let body = html! {
        header .page-head {
            div { a href="/m/ledger" { "← Ledger" } h1 { "Fiscal years" } div .meta { (who.company_name) } }
        }
        div .card .spaced {
            p {
                "Once a company keeps fiscal years, every entry must be dated in an open one. "
                "Closing a year posts its closing entry (income and expenses into retained "
                "earnings), marks it closed and locks the books up to its last day. Close "
                "years in order."
            }
            div .table-wrap {
                table {
                    thead { tr { th { "Name" } th { "Start" } th { "End" } th { "Status" } th { "Closing entry" } th {} } }
                    tbody {
                        @for (y, rec) in &records {
                            tr {
                                td { (rec.name) }
                                td { (format_date(y.year.start())) }
                                td { (format_date(y.year.end())) }
                                td { @if y.closed { "Closed" } @else { "Open" } }
                                td {
                                    @if let Some(e) = rec.closing_entry {
                                        a href={ "/ledger/journal/" (e) } { "#" (e) }
                                    }
                                }
                                td {
                                    @if can_close && Some(y.id) == first_open {
                                        form method="post" action={ "/ledger/years/" (y.id) "/close" }
                                            hx-post={ "/ledger/years/" (y.id) "/close" }
                                            hx-confirm={ "Close " (rec.name) "? Nothing more can be posted in it." } {
                                            input type="hidden" name="_csrf" value=(auth.csrf());
                                            button .danger type="submit" { "Close year" }
                                        }
                                    }
                                }
                            }
                        }
                        @if records.is_empty() {
                            tr .empty { td colspan="6" { "No fiscal years yet: entries may be dated any day." } }
                        }
                    }
                }
            }
        }
        @if who.can(FISCAL_YEAR.name, Action::Create) {
            div .card .spaced {
                h2 { "Open a fiscal year" }
                form .inline method="post" action="/ledger/years" {
                    input type="hidden" name="_csrf" value=(auth.csrf());
                    label for="fy-start" { "Start" }
                    input #fy-start type="date" name="start" required value=(next_start);
                    label for="fy-end" { "End" }
                    input #fy-end type="date" name="end" required;
                    label for="fy-name" { "Name (optional)" }
                    input #fy-name type="text" name="name" placeholder="FY 2027" maxlength="40";
                    button .primary type="submit" { "Open year" }
                }
            }
        }
    };
    Ok(views::page(&auth, "Fiscal years", "ledger", body, toasts))
}

pub async fn open_year(
    State(state): State<AppState>,
    submit: FormSubmit,
) -> Result<Response, WebError> {
    let date = |name: &'static str| {
        parse_date(field(&submit.pairs, name).unwrap_or(""))
            .map_err(|m| KernelError::invalid(name, m))
    };
    let (start, end) = (date("start")?, date("end")?);
    let name = field(&submit.pairs, "name").map(str::to_owned);
    let rec = years::open_year(&state.kernel, submit.auth.who(), start, end, name).await?;
    let title = rec.fields.name;
    Ok(Redirect::to(&format!("/ledger/years?opened={}", urlencode(&title))).into_response())
}

pub async fn close_year(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    submit: FormSubmit,
) -> Result<Response, WebError> {
    let id = parse_id(&id)?;
    let who = submit.auth.who();
    let retained = years::retained_earnings(&state.kernel, who)?;
    let closed = years::close_year(&state.kernel, who, id, retained).await?;
    let title = closed.year.fields.name;
    Ok(redirect(
        is_htmx(&headers),
        &format!("/ledger/years?closed={}", urlencode(&title)),
    ))
}

fn urlencode(s: &str) -> String {
    serde_urlencoded::to_string([("v", s)])
        .map(|q| q.trim_start_matches("v=").to_owned())
        .unwrap_or_default()
}
