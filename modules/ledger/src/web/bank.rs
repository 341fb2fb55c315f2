//! Bank: the company's bank accounts, statement import (a pasted CSV or camt.053 file, or
//! the raw file over the API) and the reconciliation screen (accept a suggestion with a
//! button or the `a` key, create an entry for a line the books lack, undo).
//! Thin: parse, call `crate::bank::books`, render.

use crate::bank::books::{
    self as bank, BankAccountInput, FileFormat, ImportError, Imported, OpenLine, Reconciliation,
};
use crate::bank::entities::{BANK_ACCOUNT, BANK_LINE};
use crate::bank::{DateFormat, DecimalSeparator};
use crate::books;
use crate::entities::{JOURNAL_ENTRY, JournalEntryRecord};
use crate::{AccountType, Chart};
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use nexus_kernel::{Action, KernelError, ListQuery, format_money, parse_money};
use nexus_ui::Toast;
use serde_json::json;

use super::{format_date, money, parse_id, query_pairs, show};
use nexus_web::AppState;
use nexus_web::body::{field, read_limited};
use nexus_web::error::WebError;
use nexus_web::records::{is_htmx, redirect};
use nexus_web::session::{ApiWrite, Auth, FormSubmit};
use nexus_web::views;

/// How many reconciled lines the screen lists under the open ones.
const RECENT: usize = 20;

fn urlencode(s: &str) -> String {
    serde_urlencoded::to_string([("v", s)])
        .map(|q| q.trim_start_matches("v=").to_owned())
        .unwrap_or_default()
}

// ---------------------------------------------------------------- bank accounts

/// Postable Bank-type accounts not yet used by a bank account.
fn free_bank_accounts(chart: &Chart, used: &[u64]) -> Vec<(u64, String)> {
    chart
        .accounts()
        .filter(|a| !a.is_group && a.kind == AccountType::Bank && !used.contains(&a.id))
        .map(|a| (a.id, a.label()))
        .collect()
}

fn open_count(state: &AppState, auth: &Auth, bank_id: u64) -> Result<u64, WebError> {
    let q = ListQuery {
        filters: vec![
            ("bank_account".into(), bank_id.to_string()),
            ("status".into(), "Unreconciled".into()),
        ],
        limit: 1,
        ..Default::default()
    };
    Ok(state.kernel.list(auth.who(), &BANK_LINE, &q)?.total)
}

/// `GET /ledger/bank`: the bank accounts and the form to add one.
pub async fn bank_page(
    State(state): State<AppState>,
    auth: Auth,
    RawQuery(raw): RawQuery,
) -> Result<Response, WebError> {
    let mut toasts = Vec::new();
    for (k, v) in query_pairs(raw.as_deref())? {
        if k == "added" {
            toasts.push(Toast::success(format!("{v} added")));
        }
    }
    Ok(render_bank_page(&state, &auth, &[], None, toasts)?.into_response())
}

fn render_bank_page(
    state: &AppState,
    auth: &Auth,
    typed: &[(String, String)],
    error: Option<String>,
    toasts: Vec<Toast>,
) -> Result<Markup, WebError> {
    let who = auth.who();
    let accounts = bank::bank_accounts(&state.kernel, who)?;
    let chart = books::chart(&state.kernel, who)?;
    let used: Vec<u64> = accounts.iter().map(|a| a.account).collect();
    let free = free_bank_accounts(&chart, &used);
    let mut rows = Vec::with_capacity(accounts.len());
    for a in &accounts {
        let label = chart
            .get(a.account)
            .map(|acc| acc.label())
            .unwrap_or_default();
        rows.push((a, label, open_count(state, auth, a.id)?));
    }
    let get = |k: &str| field(typed, k).unwrap_or("").to_owned();
    let currency = match get("currency") {
        c if c.is_empty() => chart.currency().code().to_owned(),
        c => c,
    };
    let body = html! {
        header .page-head {
            div { a href="/m/ledger" { "← Ledger" } h1 { "Bank" } div .meta { (who.company_name) } }
        }
        div .card .spaced {
            p { "Each bank account posts to a ledger account of type Bank. Open one to import its statements and reconcile them with the books." }
            div .table-wrap {
                table {
                    thead { tr { th { "Name" } th { "IBAN / account number" } th { "Currency" } th { "Ledger account" } th .num { "To reconcile" } } }
                    tbody {
                        @for (a, label, open) in &rows {
                            tr {
                                td { a href={ "/ledger/bank/" (a.id) } { (a.name) } }
                                td { (a.number) }
                                td { (a.currency) }
                                td { (label) }
                                td .num { (open) }
                            }
                        }
                        @if rows.is_empty() {
                            tr .empty { td colspan="5" { "No bank accounts yet." } }
                        }
                    }
                }
            }
        }
        @if who.can(BANK_ACCOUNT.name, Action::Create) {
            div .card .spaced {
                h2 { "Add a bank account" }
                @if let Some(e) = &error { div .form-error role="alert" { (e) } }
                @if free.is_empty() {
                    p { "Every ledger account of type Bank has its bank account. Add an account of type Bank to the chart first." }
                } @else {
                    form #bank-account-form .inline method="post" action="/ledger/bank" {
                        input type="hidden" name="_csrf" value=(auth.csrf());
                        label for="ba-name" { "Name" }
                        input #ba-name type="text" name="name" required maxlength="120" value=(get("name")) placeholder="Operating account";
                        label for="ba-number" { "IBAN / account number" }
                        input #ba-number type="text" name="number" required maxlength="64" value=(get("number"));
                        label for="ba-currency" { "Currency" }
                        input #ba-currency type="text" name="currency" maxlength="3" size="4" value=(currency);
                        label for="ba-account" { "Ledger account" }
                        select #ba-account name="account" required {
                            @for (id, label) in &free {
                                option value=(id) selected[get("account") == id.to_string()] { (label) }
                            }
                        }
                        button .primary type="submit" { "Add bank account" }
                    }
                }
            }
        }
    };
    Ok(views::page(auth, "Bank", "ledger", body, toasts))
}

/// `POST /ledger/bank`: adds a bank account.
pub async fn create_bank_account(
    State(state): State<AppState>,
    submit: FormSubmit,
) -> Result<Response, WebError> {
    let FormSubmit { auth, pairs, .. } = submit;
    let get = |k: &str| field(&pairs, k).unwrap_or("").to_owned();
    let account = get("account").trim().parse::<u64>().unwrap_or(0);
    let input = BankAccountInput {
        name: get("name"),
        number: get("number"),
        currency: get("currency"),
        account,
    };
    match bank::create_bank_account(&state.kernel, auth.who(), input).await {
        Ok(rec) => Ok(axum::response::Redirect::to(&format!(
            "/ledger/bank/{}?added={}",
            rec.id,
            urlencode(&rec.name)
        ))
        .into_response()),
        Err(e @ (KernelError::Invalid(_) | KernelError::Conflict(_))) => {
            let message = WebError::from(e).message();
            let page = render_bank_page(&state, &auth, &pairs, Some(message), Vec::new())?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

// ---------------------------------------------------------------- reconciliation screen

/// What the import form had in it, to show it again with the problems.
#[derive(Default)]
struct ImportForm {
    file: String,
    date_format: String,
    decimal: String,
    closing: String,
    error: Option<String>,
    problems: Vec<String>,
}

/// `GET /ledger/bank/{id}`: the reconciliation screen, with the import form.
pub async fn reconcile_page(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Markup, WebError> {
    let id = parse_id(&id)?;
    let mut toasts = Vec::new();
    for (k, v) in query_pairs(raw.as_deref())? {
        match k.as_str() {
            "added" => toasts.push(Toast::success(format!("{v} added: import a statement"))),
            "imported" => toasts.push(Toast::success(v)),
            "accepted" => toasts.push(Toast::success(format!("Reconciled with {v}"))),
            "posted" => toasts.push(Toast::success(format!("{v} posted and reconciled"))),
            "undone" => toasts.push(Toast::success("Reconciliation undone")),
            _ => {}
        }
    }
    render_screen(&state, &auth, id, &ImportForm::default(), toasts)
}

fn render_screen(
    state: &AppState,
    auth: &Auth,
    id: u64,
    form: &ImportForm,
    toasts: Vec<Toast>,
) -> Result<Markup, WebError> {
    let who = auth.who();
    let r = bank::reconciliation(&state.kernel, who, id, RECENT)?;
    let chart = books::chart(&state.kernel, who)?;
    let ledger = r.bank.account;
    let counters: Vec<(u64, String)> = chart
        .accounts()
        .filter(|a| !a.is_group && a.id != ledger)
        .map(|a| (a.id, a.label()))
        .collect();
    let can_write = who.can(BANK_LINE.name, Action::Write);
    let can_post = can_write && who.can(JOURNAL_ENTRY.name, Action::Create);
    let can_import = who.can(BANK_LINE.name, Action::Create);
    let name = r.bank.name.clone();
    let body = html! {
        header .page-head {
            div {
                a href="/ledger/bank" { "← Bank" }
                h1 { (name) }
                div .meta { (r.bank.number) " · " (r.account_label) " · " (r.currency.code()) }
            }
            div .actions {
                a .button href={ "/e/bank_line?f.bank_account=" (id) } { "All statement lines" }
                a .button href={ "/e/bank_statement?f.bank_account=" (id) } { "Imports" }
            }
        }
        (balances(&r))
        div .card .spaced {
            h2 { "To reconcile (" (r.open.len()) ")" }
            @if r.open.is_empty() {
                p { "Every imported line is reconciled. Import the next statement below." }
            } @else {
                p .meta { "Press " kbd { "a" } " to accept the best suggestion of the selected line (or the first line); " kbd { "j" } "/" kbd { "k" } " move between lines." }
                div .table-wrap {
                    table #bank-open {
                        thead { tr { th { "Date" } th { "Counterparty" } th { "Description" } th .num { "Amount" } th { "Suggestions" } th { "Create entry" } } }
                        tbody {
                            @for line in &r.open {
                                (open_row(auth, &r, id, line, &counters, can_write, can_post))
                            }
                        }
                    }
                }
            }
        }
        @if can_import { (import_form(auth, id, form)) }
        div .card .spaced {
            h2 { "Recently reconciled" }
            @if r.reconciled.is_empty() {
                p { "Nothing reconciled yet." }
            } @else {
                div .table-wrap {
                    table {
                        thead { tr { th { "Date" } th { "Counterparty" } th { "Description" } th .num { "Amount" } th { "Journal entry" } th {} } }
                        tbody {
                            @for l in &r.reconciled {
                                tr {
                                    td { (l.date) }
                                    td { (show(&l.counterparty)) }
                                    td { (show(&l.description)) }
                                    td .num { (format_money(l.amount)) }
                                    td {
                                        @if let Some(e) = l.journal_entry {
                                            a href={ "/ledger/journal/" (e) } { (entry_number(state, auth, e)) }
                                        }
                                    }
                                    td {
                                        @if can_write {
                                            form method="post" action={ "/ledger/bank/" (id) "/lines/" (l.id) "/undo" } {
                                                input type="hidden" name="_csrf" value=(auth.csrf());
                                                button .link type="submit" { "Undo" }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(views::page(auth, &name, "ledger", body, toasts))
}

fn entry_number(state: &AppState, auth: &Auth, entry: u64) -> String {
    state
        .kernel
        .read::<JournalEntryRecord>(auth.who(), entry)
        .map(|e| e.fields.number)
        .unwrap_or_else(|_| format!("#{entry}"))
}

fn balances(r: &Reconciliation) -> Markup {
    let on = r
        .statement_closing
        .and_then(|(d, _)| d)
        .map(format_date)
        .unwrap_or_else(|| "today".into());
    html! {
        div .card .spaced #bank-balances {
            dl .facts {
                dt { "Statement closing balance" }
                dd .num {
                    @match r.statement_closing {
                        Some((_, c)) => { (money(c)) " (on " (on) ")" }
                        None => { "— (import a camt.053 statement, or give the closing balance with a CSV)" }
                    }
                }
                dt { "Ledger balance on " (on) } dd .num { (money(r.ledger_balance)) }
                @if let Some((_, c)) = r.statement_closing {
                    dt { "Difference" } dd .num #bank-difference { (money(c.saturating_sub(r.ledger_balance))) }
                }
                dt { "Unreconciled statement lines" } dd .num { (money(r.unreconciled_total)) " in " (r.open.len()) " lines" }
            }
        }
    }
}

fn open_row(
    auth: &Auth,
    r: &Reconciliation,
    bank_id: u64,
    line: &OpenLine,
    counters: &[(u64, String)],
    can_write: bool,
    can_post: bool,
) -> Markup {
    let rec = &line.record;
    let base = format!("/ledger/bank/{bank_id}/lines/{}", rec.id);
    let description = [&rec.description, &rec.reference]
        .into_iter()
        .flatten()
        .map(String::as_str)
        .filter(|s| !s.trim().is_empty())
        .collect::<Vec<_>>()
        .join(" · ");
    html! {
        tr tabindex="0" data-href={ "/e/bank_line/" (rec.id) } data-line=(rec.id) {
            td { (rec.date) }
            td { (show(&rec.counterparty)) }
            td { (description) }
            td .num { (format_money(rec.amount)) }
            td {
                @if line.suggestions.is_empty() { span .meta { "No match in the books" } }
                @for s in &line.suggestions {
                    @if let Some(item) = r.items.get(&s.candidate) {
                        div .suggestion {
                            @if can_write && Some(s.candidate) == line.best {
                                form .inline method="post" action={ (base) "/accept" } {
                                    input type="hidden" name="_csrf" value=(auth.csrf());
                                    input type="hidden" name="journal_line" value=(s.candidate);
                                    button .primary type="submit" data-shortcut="accept" title="Accept (a)" { "Accept" }
                                }
                            } @else if can_write && item.candidate.amount.minor() == rec.amount {
                                form .inline method="post" action={ (base) "/accept" } {
                                    input type="hidden" name="_csrf" value=(auth.csrf());
                                    input type="hidden" name="journal_line" value=(s.candidate);
                                    button type="submit" { "Match" }
                                }
                            }
                            " "
                            a href={ "/ledger/journal/" (item.entry) } { (item.number) }
                            " " (item.narration) " · " (item.candidate.date.to_string()) " · " (money(item.candidate.amount.minor()))
                            " · score " (s.score)
                            div .meta { (s.reasons.join("; ")) }
                        }
                    }
                }
            }
            td {
                @if can_post && line.best.is_none() {
                    form .inline method="post" action={ (base) "/entry" } {
                        input type="hidden" name="_csrf" value=(auth.csrf());
                        select name="account" aria-label="Counter account" {
                            @for (id, label) in counters {
                                option value=(id) { (label) }
                            }
                        }
                        button type="submit" { "Create entry" }
                    }
                }
            }
        }
    }
}

fn import_form(auth: &Auth, id: u64, form: &ImportForm) -> Markup {
    let opt = |v: &str, label: &str, current: &str| {
        html! { option value=(v) selected[v == current] { (label) } }
    };
    html! {
        div .card .spaced #import {
            h2 { "Import a statement" }
            @if let Some(e) = &form.error {
                div .form-error role="alert" {
                    p { (e) }
                    @if !form.problems.is_empty() {
                        ul #import-problems { @for p in &form.problems { li { (p) } } }
                    }
                }
            }
            p { "Choose (or paste) the file your bank gives out: a CSV export (the columns are read from its header row) or a camt.053 statement (XML). Lines imported before are skipped; a file with any bad row imports nothing." }
            form .record-form method="post" action={ "/ledger/bank/" (id) "/import" } {
                input type="hidden" name="_csrf" value=(auth.csrf());
                div .fields {
                    div .field {
                        label for="st-file" { "Statement file" span .req title="required" { " *" } }
                        input #st-pick type="file" accept=".csv,.txt,.xml,text/csv,application/xml,text/xml" data-fill="st-file" aria-label="Choose the statement file";
                        textarea #st-file name="file" rows="10" required spellcheck="false" placeholder="Choose the file above, or paste its contents here" { (form.file) }
                    }
                    div .field {
                        label for="st-date" { "Dates (CSV)" }
                        select #st-date name="date_format" {
                            (opt("", "As the header suggests", &form.date_format))
                            (opt("iso", "2024-03-31", &form.date_format))
                            (opt("dmy.", "31.03.2024", &form.date_format))
                            (opt("dmy/", "31/03/2024", &form.date_format))
                            (opt("mdy/", "03/31/2024", &form.date_format))
                        }
                    }
                    div .field {
                        label for="st-decimal" { "Decimal separator (CSV)" }
                        select #st-decimal name="decimal" {
                            (opt("", "As the header suggests", &form.decimal))
                            (opt("point", "Point: 1,234.56", &form.decimal))
                            (opt("comma", "Comma: 1.234,56", &form.decimal))
                        }
                    }
                    div .field {
                        label for="st-closing" { "Closing balance (CSV, optional)" }
                        input #st-closing type="text" inputmode="decimal" name="closing" value=(form.closing) placeholder="12345.67";
                    }
                }
                div .form-actions { button .primary type="submit" { "Import" } }
            }
        }
    }
}

fn csv_format(date_format: &str, decimal: &str) -> Result<FileFormat, String> {
    let date_format = match date_format.trim() {
        "" => None,
        "iso" => Some(DateFormat::Iso),
        "dmy." => Some(DateFormat::DayMonthYearDots),
        "dmy/" => Some(DateFormat::DayMonthYearSlashes),
        "mdy/" => Some(DateFormat::MonthDayYearSlashes),
        other => {
            return Err(format!(
                "\"{other}\" is not a date format this import knows"
            ));
        }
    };
    let decimal = match decimal.trim() {
        "" => None,
        "point" => Some(DecimalSeparator::Point),
        "comma" => Some(DecimalSeparator::Comma),
        other => {
            return Err(format!(
                "\"{other}\" is not a decimal separator (point or comma)"
            ));
        }
    };
    Ok(FileFormat::Csv {
        date_format,
        decimal,
    })
}

fn closing_of(raw: &str) -> Result<Option<i64>, String> {
    if raw.trim().is_empty() {
        Ok(None)
    } else {
        parse_money(raw)
            .map(Some)
            .map_err(|m| format!("closing balance: {m}"))
    }
}

fn imported_message(i: &Imported) -> String {
    match (i.imported, i.skipped) {
        (0, s) => format!("Nothing new: all {s} lines were imported before"),
        (n, 0) => format!("{n} lines imported"),
        (n, s) => format!("{n} lines imported; {s} imported before were skipped"),
    }
}

/// `POST /ledger/bank/{id}/import`: the pasted file.
pub async fn import_pasted(
    State(state): State<AppState>,
    Path(id): Path<String>,
    submit: FormSubmit,
) -> Result<Response, WebError> {
    let id = parse_id(&id)?;
    let FormSubmit { auth, pairs, .. } = submit;
    let get = |k: &str| field(&pairs, k).unwrap_or("").to_owned();
    let mut form = ImportForm {
        file: get("file"),
        date_format: get("date_format"),
        decimal: get("decimal"),
        closing: get("closing"),
        ..Default::default()
    };
    let options = match FileFormat::detect(form.file.as_bytes()) {
        FileFormat::Camt053 => Ok(FileFormat::Camt053),
        FileFormat::Csv { .. } => csv_format(&form.date_format, &form.decimal),
    }
    .and_then(|f| closing_of(&form.closing).map(|c| (f, c)));
    let result = match options {
        Ok((format, closing)) => {
            bank::import_statement(
                &state.kernel,
                auth.who(),
                id,
                form.file.as_bytes(),
                format,
                closing,
            )
            .await
        }
        Err(m) => Err(ImportError::Kernel(KernelError::invalid("file", m))),
    };
    match result {
        Ok(done) => Ok(axum::response::Redirect::to(&format!(
            "/ledger/bank/{id}?imported={}",
            urlencode(&imported_message(&done))
        ))
        .into_response()),
        Err(ImportError::Kernel(e @ (KernelError::Invalid(_) | KernelError::Conflict(_))))
        | Err(ImportError::Kernel(e @ KernelError::BadRequest(_))) => {
            form.error = Some(WebError::from(e).message());
            let page = render_screen(&state, &auth, id, &form, Vec::new())?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
        Err(ImportError::Kernel(e)) => Err(e.into()),
        Err(e) => {
            form.problems = e.problems().iter().map(|p| p.to_string()).collect();
            form.error = Some(match e {
                ImportError::File(crate::bank::BankError::Invalid { ref problems }) => {
                    format!(
                        "Nothing was imported: fix {} and import the file again.",
                        match problems.len() {
                            1 => "this problem".to_owned(),
                            n => format!("these {n} problems"),
                        }
                    )
                }
                other => format!("Nothing was imported: {other}."),
            });
            let page = render_screen(&state, &auth, id, &form, Vec::new())?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
    }
}

/// `POST /ledger/bank/{id}/lines/{line}/accept`: reconciles with `journal_line`.
pub async fn accept_line(
    State(state): State<AppState>,
    Path((id, line)): Path<(String, String)>,
    headers: HeaderMap,
    submit: FormSubmit,
) -> Result<Response, WebError> {
    let (id, line) = (parse_id(&id)?, parse_id(&line)?);
    let journal_line = parse_id(field(&submit.pairs, "journal_line").unwrap_or(""))?;
    let rec = bank::reconcile(&state.kernel, submit.auth.who(), line, journal_line).await?;
    let number = rec
        .journal_entry
        .map(|e| entry_number(&state, &submit.auth, e))
        .unwrap_or_default();
    Ok(redirect(
        is_htmx(&headers),
        &format!("/ledger/bank/{id}?accepted={}", urlencode(&number)),
    ))
}

/// `POST /ledger/bank/{id}/lines/{line}/entry`: posts an entry against `account` and
/// reconciles.
pub async fn create_entry(
    State(state): State<AppState>,
    Path((id, line)): Path<(String, String)>,
    headers: HeaderMap,
    submit: FormSubmit,
) -> Result<Response, WebError> {
    let (id, line) = (parse_id(&id)?, parse_id(&line)?);
    let raw = field(&submit.pairs, "account").unwrap_or("");
    let account = raw
        .trim()
        .parse::<u64>()
        .ok()
        .filter(|a| *a > 0)
        .ok_or_else(|| KernelError::invalid("account", "choose the counter account"))?;
    let narration = field(&submit.pairs, "narration").map(str::to_owned);
    let rec =
        bank::create_entry(&state.kernel, submit.auth.who(), line, account, narration).await?;
    let number = rec
        .journal_entry
        .map(|e| entry_number(&state, &submit.auth, e))
        .unwrap_or_default();
    Ok(redirect(
        is_htmx(&headers),
        &format!("/ledger/bank/{id}?posted={}", urlencode(&number)),
    ))
}

/// `POST /ledger/bank/{id}/lines/{line}/undo`: undoes a reconciliation.
pub async fn undo_line(
    State(state): State<AppState>,
    Path((id, line)): Path<(String, String)>,
    headers: HeaderMap,
    submit: FormSubmit,
) -> Result<Response, WebError> {
    let (id, line) = (parse_id(&id)?, parse_id(&line)?);
    bank::unreconcile(&state.kernel, submit.auth.who(), line).await?;
    Ok(redirect(
        is_htmx(&headers),
        &format!("/ledger/bank/{id}?undone=1"),
    ))
}

// ---------------------------------------------------------------- API

/// `POST /api/v1/ledger/bank-accounts/{id}/statements`: the raw file, `text/csv` (query
/// `date_format`, `decimal`, `closing` as on the form) or `application/xml` (camt.053).
/// 201 with what was imported; 422 with every problem and its line.
pub async fn api_import(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    ApiWrite(auth): ApiWrite,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, WebError> {
    let id = parse_id(&id)?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let media = content_type.split(';').next().unwrap_or("").trim();
    let query = query_pairs(raw.as_deref())?;
    let q = |k: &str| field(&query, k).unwrap_or("").to_owned();
    let format = match media {
        "text/csv" => csv_format(&q("date_format"), &q("decimal")).map_err(WebError::Malformed)?,
        "application/xml" | "text/xml" => FileFormat::Camt053,
        _ => {
            return Err(WebError::UnsupportedMediaType {
                expected: "a statement file: Content-Type text/csv or application/xml (camt.053)",
            });
        }
    };
    let closing = closing_of(&q("closing")).map_err(WebError::Malformed)?;
    let bytes = read_limited(body).await?;
    match bank::import_statement(&state.kernel, auth.who(), id, &bytes, format, closing).await {
        Ok(done) => {
            let status = if done.statement.is_some() {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Ok((
                status,
                Json(json!({
                    "statement": done.statement.as_ref().map(|s| s.id),
                    "imported": done.imported,
                    "skipped": done.skipped,
                    "message": imported_message(&done),
                })),
            )
                .into_response())
        }
        Err(ImportError::Kernel(e)) => Err(e.into()),
        Err(e) => {
            let problems: Vec<serde_json::Value> = e
                .problems()
                .iter()
                .map(|p| json!({ "line": p.line, "message": p.message }))
                .collect();
            let message = e.to_string();
            Ok((
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(json!({ "error": {
                    "code": "invalid_statement",
                    "message": message,
                    "problems": problems,
                } })),
            )
                .into_response())
        }
    }
}
