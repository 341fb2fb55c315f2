//! The ledger's reports: trial balance, profit and loss, balance sheet and an
//! account's general ledger, each for a range the reader picks, with drill-down from
//! every account to its lines and from every line to its entry.
//!
//! Each report is built once as a [`Sheet`] (title, columns, rows with exact money in
//! minor units) and rendered from it, so the page and its downloads show the same
//! figures.

use crate::books;
use crate::{Chart, Currency, PeriodKey, StatementLine, TrialBalanceRow};
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use nexus_kernel::{KernelError, Principal};
use serde_json::{Value as J, json};
use time::{Date, OffsetDateTime};

use super::{format_date, money, parse_date, parse_id, query_pairs, today};
use nexus_web::AppState;
use nexus_web::error::WebError;
use nexus_web::session::Auth;
use nexus_web::views;

// ---------------------------------------------------------------- sheets

/// How a column's cells line up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Align {
    Left,
    Right,
}

/// One cell of a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Cell {
    Text(String),
    /// Minor units of the sheet's currency.
    Money(i64),
    Date(Date),
    Empty,
}

/// One row: its cells, where its first cell links to, how deep it sits in the tree,
/// and whether it is a heading or subtotal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SheetRow {
    pub cells: Vec<Cell>,
    pub link: Option<String>,
    pub indent: u8,
    pub bold: bool,
}

impl SheetRow {
    pub(crate) fn new(cells: Vec<Cell>) -> SheetRow {
        SheetRow {
            cells,
            link: None,
            indent: 0,
            bold: false,
        }
    }

    pub(crate) fn link(mut self, href: String) -> SheetRow {
        self.link = Some(href);
        self
    }

    pub(crate) fn indent(mut self, depth: usize) -> SheetRow {
        self.indent = u8::try_from(depth).unwrap_or(u8::MAX);
        self
    }

    pub(crate) fn bold(mut self) -> SheetRow {
        self.bold = true;
        self
    }
}

/// A report, as one table.
#[derive(Debug, Clone)]
pub(crate) struct Sheet {
    pub title: String,
    /// Company, range, currency.
    pub subtitle: String,
    pub currency: Currency,
    pub columns: Vec<(String, Align)>,
    pub rows: Vec<SheetRow>,
    pub footer: Option<SheetRow>,
}

/// `1,234,567.89` with the currency's decimals (none for JPY, three for KWD): the
/// same text the PDFs print.
pub(crate) fn amount(minor: i64, currency: Currency) -> String {
    nexus_export::format_money(minor, currency.exponent())
}

fn cell_text(cell: &Cell, currency: Currency) -> String {
    match cell {
        Cell::Text(t) => t.clone(),
        Cell::Money(m) => amount(*m, currency),
        Cell::Date(d) => format_date(*d),
        Cell::Empty => String::new(),
    }
}

fn render_row(row: &SheetRow, sheet: &Sheet, head: bool) -> Markup {
    let indent = "\u{2003}".repeat(usize::from(row.indent));
    html! {
        tr {
            @for (i, (cell, (_, align))) in row.cells.iter().zip(&sheet.columns).enumerate() {
                @let text = cell_text(cell, sheet.currency);
                @let class = if *align == Align::Right { "num" } else { "" };
                @let body = html! {
                    @if i == 1 || (i == 0 && sheet.columns.len() == 1) { (indent) }
                    @if let (Some(href), true) = (&row.link, i == link_column(sheet)) {
                        a href=(href) { (text) }
                    } @else { (text) }
                };
                @if head || row.bold {
                    th class=(class) scope=[head.then_some("row")] { (body) }
                } @else {
                    td class=(class) { (body) }
                }
            }
        }
    }
}

/// The column whose cell carries the row's link: the account name when there is one.
fn link_column(sheet: &Sheet) -> usize {
    sheet
        .columns
        .iter()
        .position(|(h, _)| h == "Account" || h == "Narration")
        .unwrap_or(0)
}

/// This report's address in another format: the same query, `format` replaced.
fn download(query: &[(String, String)], format: &str) -> String {
    let mut pairs: Vec<(&str, &str)> = query
        .iter()
        .filter(|(k, _)| k != "format")
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    pairs.push(("format", format));
    format!(
        "?{}",
        serde_urlencoded::to_string(pairs).unwrap_or_default()
    )
}

/// The page around a sheet: back link, title, the range form, download links, table.
fn page(
    auth: &Auth,
    sheet: &Sheet,
    query: &[(String, String)],
    form: Markup,
    warning: Option<String>,
) -> Markup {
    let body = html! {
        header .page-head {
            div { a href="/m/ledger" { "← Ledger" } h1 { (sheet.title) } div .meta { (sheet.subtitle) } }
        }
        (form)
        p .downloads {
            "Download: "
            a href=(download(query, "pdf")) { "PDF" } " · "
            a href=(download(query, "xlsx")) { "Excel" } " · "
            a href=(download(query, "json")) { "JSON" } " · "
            a href="/ledger/export.beancount" { "All books (beancount)" }
        }
        @if let Some(w) = warning {
            div .form-error role="alert" { (w) }
        }
        div .grid .table-wrap {
            table {
                thead { tr { @for (h, align) in &sheet.columns {
                    th class=[(*align == Align::Right).then_some("num")] { (h) }
                } } }
                tbody {
                    @for row in &sheet.rows { (render_row(row, sheet, false)) }
                    @if sheet.rows.is_empty() {
                        tr .empty { td colspan=(sheet.columns.len()) { "Nothing posted in this range." } }
                    }
                }
                @if let Some(f) = &sheet.footer {
                    tfoot { (render_row(f, sheet, true)) }
                }
            }
        }
    };
    views::page(auth, &sheet.title, "ledger", body, Vec::new())
}

/// How a report is asked for: `?format=html` (the page, the default), `json`, `xlsx`
/// or `pdf`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Html,
    Json,
    Xlsx,
    Pdf,
}

fn format_of(raw: Option<&str>) -> Result<Format, WebError> {
    for (k, v) in query_pairs(raw)? {
        if k == "format" {
            return match v.as_str() {
                "" | "html" => Ok(Format::Html),
                "json" => Ok(Format::Json),
                "xlsx" => Ok(Format::Xlsx),
                "pdf" => Ok(Format::Pdf),
                other => Err(WebError::Malformed(format!(
                    "\"{other}\" is not a report format: use html, json, xlsx or pdf"
                ))),
            };
        }
    }
    Ok(Format::Html)
}

fn cell_json(cell: &Cell, currency: Currency) -> J {
    match cell {
        Cell::Text(t) => J::String(t.clone()),
        Cell::Money(m) => json!({ "minor": m, "amount": amount(*m, currency).replace(',', "") }),
        Cell::Date(d) => J::String(format_date(*d)),
        Cell::Empty => J::Null,
    }
}

fn row_json(row: &SheetRow, currency: Currency) -> J {
    json!({
        "cells": row.cells.iter().map(|c| cell_json(c, currency)).collect::<Vec<_>>(),
        "link": row.link,
        "indent": row.indent,
        "bold": row.bold,
    })
}

/// The sheet as JSON: money as exact minor units and as a decimal string.
fn sheet_json(sheet: &Sheet) -> J {
    json!({
        "title": sheet.title,
        "subtitle": sheet.subtitle,
        "currency": sheet.currency.code(),
        "columns": sheet.columns.iter().map(|(h, _)| h.as_str()).collect::<Vec<_>>(),
        "rows": sheet.rows.iter().map(|r| row_json(r, sheet.currency)).collect::<Vec<_>>(),
        "footer": sheet.footer.as_ref().map(|r| row_json(r, sheet.currency)),
    })
}

/// The sheet in the format asked for; `now` stamps the downloads.
pub(crate) fn respond(
    auth: &Auth,
    sheet: &Sheet,
    raw: Option<&str>,
    form: Markup,
    warning: Option<String>,
    now: OffsetDateTime,
) -> Result<Response, WebError> {
    let format = format_of(raw)?;
    let file = |bytes: Vec<u8>, mime: &'static str, ext: &str| {
        let name = format!(
            "{}-{}.{ext}",
            file_stem(&sheet.title),
            format_date(now.date())
        );
        let disposition = format!("attachment; filename=\"{name}\"");
        (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static(mime)),
                (
                    header::CONTENT_DISPOSITION,
                    HeaderValue::from_str(&disposition)
                        .unwrap_or(HeaderValue::from_static("attachment")),
                ),
            ],
            bytes,
        )
            .into_response()
    };
    Ok(match format {
        Format::Html => page(auth, sheet, &query_pairs(raw)?, form, warning).into_response(),
        Format::Json => Json(sheet_json(sheet)).into_response(),
        Format::Xlsx => file(
            nexus_export::to_xlsx(&export_report(sheet, auth), now).map_err(export_failed)?,
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "xlsx",
        ),
        Format::Pdf => file(
            nexus_export::to_pdf(&export_report(sheet, auth), now).map_err(export_failed)?,
            "application/pdf",
            "pdf",
        ),
    })
}

fn export_failed(e: nexus_export::ExportError) -> WebError {
    WebError::Kernel(KernelError::BadRequest(format!(
        "the report could not be exported: {e}"
    )))
}

/// `Trial balance` → `trial-balance`.
fn file_stem(title: &str) -> String {
    let mut out = String::with_capacity(title.len());
    for c in title.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_owned()
}

/// The sheet as the export crate's report: each column's kind is what its cells hold.
fn export_report(sheet: &Sheet, auth: &Auth) -> nexus_export::Report {
    use nexus_export::{Column, ColumnKind};
    let rows = sheet.rows.iter().chain(sheet.footer.iter());
    let kinds: Vec<ColumnKind> = (0..sheet.columns.len())
        .map(|i| {
            let mut kind = ColumnKind::Text;
            for row in rows.clone() {
                match row.cells.get(i) {
                    Some(Cell::Money(_)) => {
                        kind = ColumnKind::Money {
                            exponent: sheet.currency.exponent(),
                        };
                        break;
                    }
                    Some(Cell::Date(_)) => {
                        kind = ColumnKind::Date;
                        break;
                    }
                    _ => {}
                }
            }
            kind
        })
        .collect();
    let row = |r: &SheetRow| {
        let cells = r
            .cells
            .iter()
            .map(|c| match c {
                Cell::Text(t) => nexus_export::Cell::Text(t.clone()),
                Cell::Money(m) => nexus_export::Cell::Money(*m),
                Cell::Date(d) => nexus_export::Cell::Date(*d),
                Cell::Empty => nexus_export::Cell::Empty,
            })
            .collect();
        let mut out = nexus_export::Row::new(cells).indent(r.indent);
        if r.bold {
            out = out.bold();
        }
        out
    };
    let period = sheet
        .subtitle
        .split(" · ")
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    nexus_export::Report {
        title: sheet.title.clone(),
        subtitle: nexus_export::Subtitle {
            company: auth.who().company_name.clone(),
            period,
            currency: sheet.currency.code().to_owned(),
        },
        columns: sheet
            .columns
            .iter()
            .zip(kinds)
            .map(|((header, align), kind)| Column {
                header: header.clone(),
                align: match align {
                    Align::Left => nexus_export::Align::Left,
                    Align::Right => nexus_export::Align::Right,
                },
                kind,
            })
            .collect(),
        rows: sheet.rows.iter().map(row).collect(),
        footer: sheet.footer.as_ref().map(row),
    }
}

// ---------------------------------------------------------------- ranges

/// `YYYY-MM` → a period.
fn parse_period(name: &str, raw: &str) -> Result<PeriodKey, WebError> {
    let bad = || {
        WebError::Malformed(format!(
            "\"{raw}\" is not a month like 2026-01 (the \"{name}\" of the range)"
        ))
    };
    let (y, m) = raw.trim().split_once('-').ok_or_else(bad)?;
    if y.len() != 4 || m.is_empty() || m.len() > 2 {
        return Err(bad());
    }
    let (y, m): (u32, u32) = (y.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    PeriodKey::from_u32(y * 100 + m).ok_or_else(bad)
}

/// The time downloads are stamped with.
pub(crate) fn now(state: &AppState) -> OffsetDateTime {
    state.kernel.clock().now()
}

fn this_month(state: &AppState) -> Result<PeriodKey, WebError> {
    Ok(PeriodKey::of(today(state)).map_err(|e| KernelError::Internal(e.to_string()))?)
}

/// The range of months asked for; January of this year to this month by default.
pub(super) fn range(
    state: &AppState,
    raw: Option<&str>,
) -> Result<(PeriodKey, PeriodKey), WebError> {
    let now = this_month(state)?;
    let jan = PeriodKey::from_u32(now.get() / 100 * 100 + 1).unwrap_or(now);
    let (mut from, mut to) = (jan, now);
    for (k, v) in query_pairs(raw)? {
        match k.as_str() {
            "from" if !v.trim().is_empty() => from = parse_period("from", &v)?,
            "to" if !v.trim().is_empty() => to = parse_period("to", &v)?,
            _ => {}
        }
    }
    if from > to {
        return Err(WebError::Malformed(format!(
            "the range starts ({from}) after it ends ({to})"
        )));
    }
    Ok((from, to))
}

fn month_form(action: &str, from: PeriodKey, to: PeriodKey) -> Markup {
    html! {
        form .filters method="get" action=(action) {
            label for="r-from" { "From" }
            input #r-from type="month" name="from" value=(from) placeholder="2026-01";
            label for="r-to" { "To" }
            input #r-to type="month" name="to" value=(to) placeholder="2026-12";
            button type="submit" { "Show" }
        }
    }
}

fn subtitle(who: &Principal, range: &str, currency: Currency) -> String {
    format!("{} · {range} · {}", who.company_name, currency.code())
}

fn depth(chart: &Chart, account: u64) -> usize {
    chart.ancestors(account).count()
}

// ---------------------------------------------------------------- trial balance

struct Tb {
    chart: Chart,
    rows: Vec<TrialBalanceRow>,
    /// Sums of the postable accounts: opening, debit, credit, closing.
    totals: [i64; 4],
}

fn trial_balance(
    state: &AppState,
    who: &Principal,
    from: PeriodKey,
    to: PeriodKey,
) -> Result<Tb, WebError> {
    let (chart, rows) = books::trial_balance(&state.kernel, who, from, to)?;
    let mut totals = [0i64; 4];
    for r in rows
        .iter()
        .filter(|r| chart.get(r.account).is_some_and(|a| !a.is_group))
    {
        for (t, v) in totals
            .iter_mut()
            .zip([r.opening, r.debit, r.credit, r.closing])
        {
            *t = t.saturating_add(v);
        }
    }
    Ok(Tb {
        chart,
        rows,
        totals,
    })
}

fn gl_link(account: u64, from: Date, to: Date) -> String {
    format!(
        "/ledger/accounts/{account}?from={}&to={}",
        format_date(from),
        format_date(to)
    )
}

fn tb_sheet(who: &Principal, tb: &Tb, from: PeriodKey, to: PeriodKey) -> Sheet {
    let mut rows = Vec::with_capacity(tb.rows.len());
    for r in &tb.rows {
        let Some(a) = tb.chart.get(r.account) else {
            continue;
        };
        let cells = vec![
            Cell::Text(a.code.clone()),
            Cell::Text(a.name.clone()),
            Cell::Money(r.opening),
            Cell::Money(r.debit),
            Cell::Money(r.credit),
            Cell::Money(r.closing),
        ];
        let row = SheetRow::new(cells).indent(depth(&tb.chart, a.id));
        rows.push(if a.is_group {
            row.bold()
        } else {
            row.link(gl_link(a.id, from.first_day(), to.last_day()))
        });
    }
    let [o, d, c, cl] = tb.totals;
    Sheet {
        title: "Trial balance".into(),
        subtitle: subtitle(who, &format!("{from} to {to}"), tb.chart.currency()),
        currency: tb.chart.currency(),
        columns: columns(&[
            ("Code", Align::Left),
            ("Account", Align::Left),
            ("Opening", Align::Right),
            ("Debit", Align::Right),
            ("Credit", Align::Right),
            ("Closing", Align::Right),
        ]),
        rows,
        footer: Some(SheetRow::new(vec![
            Cell::Empty,
            Cell::Text("Total".into()),
            Cell::Money(o),
            Cell::Money(d),
            Cell::Money(c),
            Cell::Money(cl),
        ])),
    }
}

pub async fn trial_balance_page(
    State(state): State<AppState>,
    auth: Auth,
    RawQuery(raw): RawQuery,
) -> Result<Response, WebError> {
    let (from, to) = range(&state, raw.as_deref())?;
    let tb = trial_balance(&state, auth.who(), from, to)?;
    let warning = (tb.totals[1] != tb.totals[2])
        .then(|| "The debits and credits differ: the totals need checking.".to_owned());
    let sheet = tb_sheet(auth.who(), &tb, from, to);
    let can_check = auth.who().can(
        crate::entities::JOURNAL_LINE.name,
        nexus_kernel::Action::Read,
    );
    let form = html! {
        (month_form("/ledger/trial-balance", from, to))
        @if can_check {
            form .inline method="post" action="/ledger/checks/totals" {
                input type="hidden" name="_csrf" value=(auth.csrf());
                button type="submit" title="Sums every journal line again and compares with the totals the reports read" {
                    "Check the totals against the lines"
                }
            }
        }
    };
    respond(&auth, &sheet, raw.as_deref(), form, warning, now(&state))
}

/// `POST /ledger/checks/totals`: checks the company's totals against its journal
/// lines as a job; the job's page shows how it went.
pub async fn check_totals(
    State(state): State<AppState>,
    submit: nexus_web::session::FormSubmit,
) -> Result<Response, WebError> {
    let who = submit.auth.who();
    state.kernel.authorize(
        who,
        &crate::entities::JOURNAL_LINE,
        nexus_kernel::Action::Read,
    )?;
    let id = state
        .kernel
        .enqueue(who, crate::checks::job_for_company())
        .await?;
    Ok(axum::response::Redirect::to(&format!("/jobs/{id}")).into_response())
}

pub async fn api_trial_balance(
    State(state): State<AppState>,
    auth: Auth,
    RawQuery(raw): RawQuery,
) -> Result<Json<J>, WebError> {
    let (from, to) = range(&state, raw.as_deref())?;
    let tb = trial_balance(&state, auth.who(), from, to)?;
    let rows: Vec<J> = tb
        .rows
        .iter()
        .filter_map(|r| {
            let a = tb.chart.get(r.account)?;
            Some(json!({
                "account": a.id,
                "code": a.code,
                "name": a.name,
                "group": a.is_group,
                "parent": a.parent,
                "depth": depth(&tb.chart, a.id),
                "opening": money(r.opening),
                "debit": money(r.debit),
                "credit": money(r.credit),
                "closing": money(r.closing),
            }))
        })
        .collect();
    let [o, d, c, cl] = tb.totals;
    Ok(Json(json!({
        "from": from.to_string(),
        "to": to.to_string(),
        "currency": tb.chart.currency().code(),
        "data": rows,
        "totals": { "opening": money(o), "debit": money(d), "credit": money(c), "closing": money(cl) },
    })))
}

// ---------------------------------------------------------------- statements

/// Statement lines under a heading, each linked to its general ledger, then a total.
fn statement_section(
    rows: &mut Vec<SheetRow>,
    chart: &Chart,
    heading: &str,
    lines: &[StatementLine],
    total: (&str, i64),
    days: (Date, Date),
) {
    rows.push(SheetRow::new(vec![Cell::Empty, Cell::Text(heading.into()), Cell::Empty]).bold());
    for l in lines {
        let Some(a) = chart.get(l.account) else {
            continue;
        };
        rows.push(
            SheetRow::new(vec![
                Cell::Text(a.code.clone()),
                Cell::Text(a.name.clone()),
                Cell::Money(l.amount),
            ])
            .indent(1)
            .link(gl_link(a.id, days.0, days.1)),
        );
    }
    rows.push(
        SheetRow::new(vec![
            Cell::Empty,
            Cell::Text(total.0.into()),
            Cell::Money(total.1),
        ])
        .bold(),
    );
}

fn statement_columns() -> Vec<(String, Align)> {
    columns(&[
        ("Code", Align::Left),
        ("Account", Align::Left),
        ("Amount", Align::Right),
    ])
}

fn columns(cols: &[(&str, Align)]) -> Vec<(String, Align)> {
    cols.iter().map(|(h, a)| ((*h).to_owned(), *a)).collect()
}

fn pl_sheet(
    state: &AppState,
    who: &Principal,
    from: PeriodKey,
    to: PeriodKey,
) -> Result<Sheet, WebError> {
    let (chart, pl) = books::profit_and_loss(&state.kernel, who, from, to)?;
    let days = (from.first_day(), to.last_day());
    let mut rows = Vec::new();
    statement_section(
        &mut rows,
        &chart,
        "Income",
        &pl.income,
        ("Total income", pl.total_income),
        days,
    );
    statement_section(
        &mut rows,
        &chart,
        "Expenses",
        &pl.expenses,
        ("Total expenses", pl.total_expenses),
        days,
    );
    let result = if pl.net_profit < 0 {
        "Net loss"
    } else {
        "Net profit"
    };
    Ok(Sheet {
        title: "Profit and loss".into(),
        subtitle: subtitle(who, &format!("{from} to {to}"), chart.currency()),
        currency: chart.currency(),
        columns: statement_columns(),
        rows,
        footer: Some(SheetRow::new(vec![
            Cell::Empty,
            Cell::Text(result.into()),
            Cell::Money(pl.net_profit),
        ])),
    })
}

pub async fn profit_and_loss_page(
    State(state): State<AppState>,
    auth: Auth,
    RawQuery(raw): RawQuery,
) -> Result<Response, WebError> {
    let (from, to) = range(&state, raw.as_deref())?;
    let sheet = pl_sheet(&state, auth.who(), from, to)?;
    let form = month_form("/ledger/profit-and-loss", from, to);
    respond(&auth, &sheet, raw.as_deref(), form, None, now(&state))
}

/// The month asked for as `at`; this month by default.
fn at_month(state: &AppState, raw: Option<&str>) -> Result<PeriodKey, WebError> {
    let mut at = this_month(state)?;
    for (k, v) in query_pairs(raw)? {
        if k == "at" && !v.trim().is_empty() {
            at = parse_period("at", &v)?;
        }
    }
    Ok(at)
}

fn bs_sheet(state: &AppState, who: &Principal, at: PeriodKey) -> Result<Sheet, WebError> {
    let (chart, bs) = books::balance_sheet(&state.kernel, who, at)?;
    let days = (PeriodKey::MIN.first_day(), at.last_day());
    let mut rows = Vec::new();
    statement_section(
        &mut rows,
        &chart,
        "Assets",
        &bs.assets,
        ("Total assets", bs.total_assets),
        days,
    );
    statement_section(
        &mut rows,
        &chart,
        "Liabilities",
        &bs.liabilities,
        ("Total liabilities", bs.total_liabilities),
        days,
    );
    statement_section(
        &mut rows,
        &chart,
        "Equity",
        &bs.equity,
        ("Total equity", bs.total_equity),
        days,
    );
    rows.push(
        SheetRow::new(vec![
            Cell::Empty,
            Cell::Text("Result not yet closed (current year)".into()),
            Cell::Money(bs.unclosed_result),
        ])
        .bold(),
    );
    let right = bs
        .total_liabilities
        .saturating_add(bs.total_equity)
        .saturating_add(bs.unclosed_result);
    Ok(Sheet {
        title: "Balance sheet".into(),
        subtitle: subtitle(who, &format!("at the end of {at}"), chart.currency()),
        currency: chart.currency(),
        columns: statement_columns(),
        rows,
        footer: Some(SheetRow::new(vec![
            Cell::Empty,
            Cell::Text("Total liabilities and equity".into()),
            Cell::Money(right),
        ])),
    })
}

pub async fn balance_sheet_page(
    State(state): State<AppState>,
    auth: Auth,
    RawQuery(raw): RawQuery,
) -> Result<Response, WebError> {
    let at = at_month(&state, raw.as_deref())?;
    let sheet = bs_sheet(&state, auth.who(), at)?;
    let form = html! {
        form .filters method="get" action="/ledger/balance-sheet" {
            label for="r-at" { "At the end of" }
            input #r-at type="month" name="at" value=(at) placeholder="2026-12";
            button type="submit" { "Show" }
        }
    };
    respond(&auth, &sheet, raw.as_deref(), form, None, now(&state))
}

// ---------------------------------------------------------------- general ledger

/// The days asked for as `from` and `to`; this year so far by default.
fn day_range(state: &AppState, raw: Option<&str>) -> Result<(Date, Date), WebError> {
    let now = today(state);
    let mut from = Date::from_ordinal_date(now.year(), 1).unwrap_or(now);
    let mut to = now;
    for (k, v) in query_pairs(raw)? {
        match k.as_str() {
            "from" if !v.trim().is_empty() => {
                from = parse_date(&v).map_err(|m| KernelError::invalid("from", m))?;
            }
            "to" if !v.trim().is_empty() => {
                to = parse_date(&v).map_err(|m| KernelError::invalid("to", m))?;
            }
            _ => {}
        }
    }
    Ok((from, to))
}

fn gl_sheet(
    state: &AppState,
    who: &Principal,
    account: u64,
    (from, to): (Date, Date),
) -> Result<Sheet, WebError> {
    let gl = books::general_ledger(&state.kernel, who, account, from, to)?;
    let mut rows = vec![
        SheetRow::new(vec![
            Cell::Date(from),
            Cell::Empty,
            Cell::Text("Opening balance".into()),
            Cell::Empty,
            Cell::Empty,
            Cell::Money(gl.opening),
        ])
        .bold(),
    ];
    for l in &gl.lines {
        let narration = if l.memo.is_empty() {
            l.narration.clone()
        } else {
            format!("{} — {}", l.narration, l.memo)
        };
        rows.push(
            SheetRow::new(vec![
                Cell::Date(l.date),
                Cell::Text(l.number.clone()),
                Cell::Text(narration),
                if l.debit == 0 {
                    Cell::Empty
                } else {
                    Cell::Money(l.debit)
                },
                if l.credit == 0 {
                    Cell::Empty
                } else {
                    Cell::Money(l.credit)
                },
                Cell::Money(l.balance),
            ])
            .link(format!("/ledger/journal/{}", l.entry)),
        );
    }
    Ok(Sheet {
        title: format!("General ledger: {}", gl.account.label()),
        subtitle: subtitle(
            who,
            &format!("{} to {}", format_date(from), format_date(to)),
            gl.currency,
        ),
        currency: gl.currency,
        columns: columns(&[
            ("Date", Align::Left),
            ("Entry", Align::Left),
            ("Narration", Align::Left),
            ("Debit", Align::Right),
            ("Credit", Align::Right),
            ("Balance", Align::Right),
        ]),
        rows,
        footer: Some(SheetRow::new(vec![
            Cell::Date(to),
            Cell::Empty,
            Cell::Text("Closing balance".into()),
            Cell::Money(gl.debit),
            Cell::Money(gl.credit),
            Cell::Money(gl.closing),
        ])),
    })
}

pub async fn general_ledger_page(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, WebError> {
    let id = parse_id(&id)?;
    let days = day_range(&state, raw.as_deref())?;
    let sheet = gl_sheet(&state, auth.who(), id, days)?;
    let form = html! {
        form .filters method="get" action={ "/ledger/accounts/" (id) } {
            label for="r-from" { "From" }
            input #r-from type="date" name="from" value=(format_date(days.0));
            label for="r-to" { "To" }
            input #r-to type="date" name="to" value=(format_date(days.1));
            button type="submit" { "Show" }
        }
    };
    respond(&auth, &sheet, raw.as_deref(), form, None, now(&state))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_have_thousands_separators_and_the_currency_decimals() {
        assert_eq!(amount(123_456_789, Currency::USD), "1,234,567.89");
        assert_eq!(amount(-5, Currency::USD), "-0.05");
        assert_eq!(amount(0, Currency::EUR), "0.00");
        assert_eq!(amount(1_234_567, Currency::JPY), "1,234,567");
        assert_eq!(amount(-1_234_567, Currency::KWD), "-1,234.567");
        assert_eq!(
            amount(i64::MIN, Currency::USD),
            "-92,233,720,368,547,758.08"
        );
    }
}
