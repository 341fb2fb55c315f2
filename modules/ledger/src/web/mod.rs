//! The ledger's own pages and API: the ledger home, the journal-entry form, an entry
//! with its lines (and its cancellation), the reports ([`reports`]), fiscal years
//! ([`years`]) and the beancount export.
//! Accounts, entries and lines are listed by the generic entity pages (`/e/…`).
//! Thin: parse, call `crate::books`, render.

use crate::books::{self, EntryInput, LineInput};
use crate::drafts;
use crate::entities::{
    ACCOUNT, JOURNAL_ENTRY, JournalEntryRecord, JournalKind, JournalLineRecord, JournalStatus,
};
use crate::{Chart, Currency, Foreign, Money, Rate};
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use nexus_kernel::{
    Action, FieldErrors, KernelError, ListQuery, Principal, Record, Row, format_money, parse_money,
};
use nexus_ui::Toast;
use serde_json::{Value as J, json};
use time::Date;

use nexus_web::AppState;
use nexus_web::body::field;
use nexus_web::error::WebError;
use nexus_web::session::{Auth, FormSubmit, JsonSubmit};
use nexus_web::views;

mod api_doc;
mod bank;
mod cli;
mod invoices;
mod reports;
mod stock;
mod years;

pub use bank::{
    accept_line, api_import, bank_page, create_bank_account, create_entry, import_pasted,
    reconcile_page, undo_line,
};
pub use invoices::{
    aging_page, api_issue, api_pay, document_pdf, documents_page, issue_document, new_document,
    new_payment, register_payment, reminders_page, show_document,
};
pub use reports::{
    api_trial_balance, balance_sheet_page, general_ledger_page, profit_and_loss_page,
    trial_balance_page,
};
pub use stock::{
    api_post_move, cancel_move, create_item, item_page, new_item, post_move, set_policy,
    stock_page, update_item, valuation_page,
};
pub use years::{close_year, open_year, years_page};

/// The ledger on the web: its routes, navigation and subcommand, registered by the
/// server with one line.
pub static MODULE: nexus_web::WebModule = nexus_web::WebModule {
    module: &crate::entities::LEDGER,
    glyph: "L",
    home: "/m/ledger",
    nav: &[
        nav(
            "Journal entries",
            "/e/journal_entry",
            "journal_entry",
            Action::Read,
        ),
        nav(
            "New entry",
            "/ledger/journal/new",
            "journal_entry",
            Action::Create,
        ),
        nav("Invoices", "/ledger/invoices", "invoice", Action::Read),
        nav("Bank", "/ledger/bank", "bank_account", Action::Read),
        nav("Stock", "/ledger/stock", "stock_item", Action::Read),
        nav(
            "Trial balance",
            "/ledger/trial-balance",
            "account",
            Action::Read,
        ),
        nav(
            "Profit and loss",
            "/ledger/profit-and-loss",
            "account",
            Action::Read,
        ),
        nav(
            "Balance sheet",
            "/ledger/balance-sheet",
            "account",
            Action::Read,
        ),
        nav("Accounts", "/e/account", "account", Action::Read),
        nav("Fiscal years", "/ledger/years", "fiscal_year", Action::Read),
        nav("Suppliers", "/e/supplier", "supplier", Action::Read),
    ],
    routes,
    api: api_doc::API,
    cli: Some(nexus_web::ModuleCli {
        command: cli::command,
        run: cli::run,
    }),
};

const fn nav(
    label: &'static str,
    href: &'static str,
    entity: &'static str,
    needs: Action,
) -> nexus_web::NavEntry {
    nexus_web::NavEntry {
        label,
        href,
        entity,
        needs,
    }
}

/// Every page and API route of the ledger.
fn routes() -> axum::Router<AppState> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/m/ledger", get(home))
        .route("/ledger/chart", post(install_chart))
        .route("/ledger/lock", post(set_lock))
        .route("/ledger/journal", post(post_journal))
        .route("/ledger/journal/new", get(new_journal))
        .route("/ledger/journal/{id}", get(show_journal))
        .route("/ledger/journal/{id}/cancel", post(cancel_journal))
        .route("/ledger/journal/{id}/post", post(post_saved_draft))
        .route("/ledger/journal/{id}/discard", post(discard_draft))
        .route("/ledger/trial-balance", get(trial_balance_page))
        .route("/ledger/checks/totals", post(reports::check_totals))
        .route("/ledger/profit-and-loss", get(profit_and_loss_page))
        .route("/ledger/balance-sheet", get(balance_sheet_page))
        .route("/ledger/accounts/{id}", get(general_ledger_page))
        .route("/ledger/years", get(years_page).post(open_year))
        .route("/ledger/years/{id}/close", post(close_year))
        .route("/ledger/invoices", get(documents_page).post(issue_document))
        .route("/ledger/invoices/new", get(new_document))
        .route("/ledger/invoices/{id}", get(show_document))
        .route("/ledger/invoices/{id}/pdf", get(document_pdf))
        .route("/ledger/payments", post(register_payment))
        .route("/ledger/payments/new", get(new_payment))
        .route("/ledger/aging", get(aging_page))
        .route("/ledger/reminders", get(reminders_page))
        .route("/ledger/bank", get(bank_page).post(create_bank_account))
        .route("/ledger/bank/{id}", get(reconcile_page))
        .route("/ledger/bank/{id}/import", post(import_pasted))
        .route("/ledger/bank/{id}/lines/{line}/accept", post(accept_line))
        .route("/ledger/bank/{id}/lines/{line}/entry", post(create_entry))
        .route("/ledger/bank/{id}/lines/{line}/undo", post(undo_line))
        .route(
            "/api/v1/ledger/bank-accounts/{id}/statements",
            post(api_import),
        )
        .route("/ledger/export.beancount", get(export_beancount))
        .route("/ledger/stock", get(stock_page))
        .route("/ledger/stock/moves", post(post_move))
        .route("/ledger/stock/moves/{id}/cancel", post(cancel_move))
        .route("/ledger/stock/settings", post(set_policy))
        .route("/ledger/stock/valuation", get(valuation_page))
        .route("/ledger/stock/items", post(create_item))
        .route("/ledger/stock/items/new", get(new_item))
        .route("/ledger/stock/items/{id}", get(item_page).post(update_item))
        .route("/api/v1/ledger/journal", post(api_post_journal))
        .route("/api/v1/ledger/invoices", post(api_issue))
        .route("/api/v1/ledger/payments", post(api_pay))
        .route("/api/v1/ledger/trial-balance", get(api_trial_balance))
        .route("/api/v1/ledger/stock/moves", post(api_post_move))
}

/// How many line rows the journal-entry form shows at least; "More lines" adds as many.
const LINE_ROWS: usize = 6;

/// The most line rows a form may carry (an entry through the API may have more).
const MAX_LINE_ROWS: usize = 500;

/// How many line rows to show for what was typed: every typed row, then room for more.
fn line_rows(typed: &Typed<'_>, more: bool) -> usize {
    let last_typed = typed
        .0
        .iter()
        .filter(|(_, v)| !v.trim().is_empty())
        .filter_map(|(k, _)| {
            k.rsplit_once('_')
                .and_then(|(_, n)| n.parse::<usize>().ok())
        })
        .max()
        .map_or(0, |n| n + 1);
    let rows = last_typed.max(LINE_ROWS);
    if more { rows + LINE_ROWS } else { rows }.min(MAX_LINE_ROWS)
}

/// How many recent entries the ledger home lists.
const RECENT: usize = 20;

fn today(state: &AppState) -> Date {
    state.kernel.clock().now().date()
}

/// The reversal date a cancel offers: the later of today and the entry's own date (an
/// entry dated ahead cannot be reversed before it happened).
fn reversal_default(today: Date, entry_date: Date) -> Date {
    entry_date.max(today)
}

/// A date as every write takes one (years 0001 to 9999, `YYYY-MM-DD`).
fn parse_date(raw: &str) -> Result<Date, String> {
    nexus_kernel::parse_date(raw)
}

fn format_date(d: Date) -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    d.format(&fmt).unwrap_or_default()
}

fn parse_id(raw: &str) -> Result<u64, WebError> {
    raw.parse::<u64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| WebError::Malformed(format!("\"{raw}\" is not a record id")))
}

fn query_pairs(raw: Option<&str>) -> Result<Vec<(String, String)>, WebError> {
    serde_urlencoded::from_str(raw.unwrap_or(""))
        .map_err(|e| WebError::Malformed(format!("the address could not be read: {e}")))
}

fn money(minor: i64) -> String {
    format_money(minor)
}

/// An amount a record may leave empty, as a page shows it.
fn opt_money(minor: Option<i64>) -> String {
    minor.map(format_money).unwrap_or_default()
}

/// A value a record may leave empty, as a page shows it.
fn show<T: std::fmt::Display>(value: &Option<T>) -> String {
    value.as_ref().map(T::to_string).unwrap_or_default()
}

/// Every record of `T`'s entity the principal's query finds, as rows.
fn rows<T: nexus_kernel::Typed>(
    state: &AppState,
    who: &Principal,
    query: &ListQuery,
) -> Result<Vec<Row<T>>, WebError> {
    Ok(Row::all(&state.kernel.list(who, T::def(), query)?.rows)?)
}

// ---------------------------------------------------------------- home

pub async fn home(
    State(state): State<AppState>,
    auth: Auth,
    RawQuery(raw): RawQuery,
) -> Result<Markup, WebError> {
    let who = auth.who();
    let can = |def: &nexus_kernel::EntityDef, a| who.can(def.name, a);
    let accounts = if can(&ACCOUNT, Action::Read) {
        Some(books::account_count(&state.kernel, who)?)
    } else {
        None
    };
    let recent = if can(&JOURNAL_ENTRY, Action::Read) {
        rows::<JournalEntryRecord>(
            &state,
            who,
            &ListQuery {
                descending: true,
                limit: RECENT,
                ..Default::default()
            },
        )?
    } else {
        Vec::new()
    };
    let mut toasts = Vec::new();
    for (k, v) in query_pairs(raw.as_deref())? {
        match k.as_str() {
            "installed" => toasts.push(Toast::success(format!(
                "Chart of accounts installed ({v} accounts)"
            ))),
            "locked" => toasts.push(Toast::success(format!(
                "Lock date set to {v}: nothing can be posted on or before it"
            ))),
            _ => {}
        }
    }
    let body = html! {
        header .page-head { h1 { "Ledger" } div .meta { (who.company_name) } }
        @if accounts == Some(0) && can(&ACCOUNT, Action::Create) {
            div .notice {
                p { "This company has no chart of accounts yet." }
                form method="post" action="/ledger/chart" {
                    input type="hidden" name="_csrf" value=(auth.csrf());
                    button .primary type="submit" { "Install the small-firm chart of accounts" }
                }
            }
        }
        div .tiles {
            a .card .tile href="/e/account" {
                div .big { @if let Some(n) = accounts { (n) } @else { "Accounts" } }
                div { "Accounts" }
            }
            a .card .tile href="/e/journal_entry" { div .big { "JE" } div { "Journal entries" } }
            a .card .tile href="/e/journal_line" { div .big { "JL" } div { "Journal lines" } }
            a .card .tile href="/ledger/journal/new" { div .big { "+" } div { "New journal entry" } }
            a .card .tile href="/ledger/trial-balance" { div .big { "TB" } div { "Trial balance" } }
            a .card .tile href="/ledger/bank" { div .big { "⇄" } div { "Bank: import & reconcile" } }
            a .card .tile href="/ledger/stock" { div .big { "▦" } div { "Stock" } }
            a .card .tile href="/ledger/export.beancount" { div .big { "↓" } div { "Export (beancount)" } }
        }
        div .card .spaced {
            h2 { "Latest journal entries" }
            @if recent.is_empty() {
                p { "No entries yet. " a href="/ledger/journal/new" { "Post the first one" } "." }
            } @else {
                div .table-wrap {
                    table {
                        thead { tr { th { "Number" } th { "Date" } th { "Narration" } th .num { "Total" } th { "Status" } } }
                        tbody {
                            @for e in &recent {
                                tr {
                                    td { a href={ "/ledger/journal/" (e.id) } { (e.number) } }
                                    td { (e.date) }
                                    td { (e.narration) }
                                    td .num { (money(e.total)) }
                                    td { (e.status) }
                                }
                            }
                        }
                    }
                }
                p { "To cancel an entry, open it: cancelling posts its reversal." }
            }
        }
        @if can(&ACCOUNT, Action::Write) {
            div .card .spaced {
                h2 { "Lock date" }
                p { "Nothing can be posted on or before the lock date." }
                form .inline method="post" action="/ledger/lock" {
                    input type="hidden" name="_csrf" value=(auth.csrf());
                    label for="lock-date" { "Lock the books up to and including" }
                    input #lock-date type="date" name="date" required;
                    button type="submit" { "Set lock date" }
                }
            }
        }
    };
    Ok(views::page(&auth, "Ledger", "ledger", body, toasts))
}

pub async fn install_chart(
    State(state): State<AppState>,
    submit: FormSubmit,
) -> Result<Response, WebError> {
    let n = books::install_chart(&state.kernel, submit.auth.who()).await?;
    Ok(Redirect::to(&format!("/m/ledger?installed={n}")).into_response())
}

pub async fn set_lock(
    State(state): State<AppState>,
    submit: FormSubmit,
) -> Result<Response, WebError> {
    let raw = field(&submit.pairs, "date").unwrap_or("");
    let date = parse_date(raw).map_err(|m| KernelError::invalid("date", m))?;
    books::set_lock_date(&state.kernel, submit.auth.who(), date).await?;
    Ok(Redirect::to(&format!("/m/ledger?locked={}", format_date(date))).into_response())
}

// ---------------------------------------------------------------- journal form

/// Postable (non-group) accounts that `keep` accepts, as select options: (id, "code
/// name"), by code.
fn account_options(chart: &Chart, keep: impl Fn(&crate::Account) -> bool) -> Vec<(String, String)> {
    chart
        .accounts()
        .filter(|a| !a.is_group && keep(a))
        .map(|a| (a.id.to_string(), a.label()))
        .collect()
}

/// Records as select options: (id, label).
fn options<R: Identified>(records: &[R], label: impl Fn(&R) -> String) -> Vec<(String, String)> {
    records
        .iter()
        .map(|r| (r.record_id().to_string(), label(r)))
        .collect()
}

/// A stored record, typed ([`Row`]) or not ([`Record`]: another module's, read by
/// entity name): what a select offers by id.
trait Identified {
    fn record_id(&self) -> u64;
}

impl Identified for Record {
    fn record_id(&self) -> u64 {
        self.id
    }
}

impl<T> Identified for Row<T> {
    fn record_id(&self) -> u64 {
        self.id
    }
}

/// A select named `name` (element id `id`, accessible name `label`) with `chosen`
/// selected and, when `blank` is given, an empty first choice saying it.
fn select(
    name: &str,
    id: &str,
    label: &str,
    opts: &[(String, String)],
    chosen: &str,
    blank: Option<&str>,
) -> Markup {
    html! {
        select id=(id) name=(name) aria-label=(label) {
            @if let Some(b) = blank { option value="" { (b) } }
            @for (v, l) in opts { option value=(v) selected[v == chosen] { (l) } }
        }
    }
}

/// What the form shows: the values as typed, by field name.
struct Typed<'a>(&'a [(String, String)]);

impl Typed<'_> {
    fn get(&self, name: &str) -> &str {
        field(self.0, name).unwrap_or("")
    }
}

fn journal_form(
    auth: &Auth,
    chart: &Chart,
    typed: &Typed<'_>,
    default_date: Date,
    errors: Option<&FieldErrors>,
) -> Markup {
    let options = account_options(chart, |_| true);
    let err = |f: &str| errors.and_then(|e| e.get(f)).map(str::to_string);
    let date = match typed.get("date") {
        "" if typed.0.is_empty() => format_date(default_date),
        d => d.to_string(),
    };
    let (date_err, narration_err, reference_err, lines_err) = (
        err("date"),
        err("narration"),
        err("reference"),
        err("lines"),
    );
    let others: Vec<&(String, String)> = errors
        .map(|e| {
            e.0.iter()
                .filter(|(f, _)| {
                    !matches!(f.as_str(), "date" | "narration" | "reference" | "lines")
                })
                .collect()
        })
        .unwrap_or_default();
    html! {
        form #journal-form .record-form method="post" action="/ledger/journal" novalidate {
            @if errors.is_some() {
                div .form-error role="alert" { "Please correct the highlighted fields." }
            }
            @for (f, m) in &others { div .form-error role="alert" { (f) ": " (m) } }
            input type="hidden" name="_csrf" value=(auth.csrf());
            div .fields {
                div .field .invalid[date_err.is_some()] {
                    label for="je-date" { "Date" span .req title="required" { " *" } }
                    input #je-date type="date" name="date" value=(date) required;
                    @if let Some(e) = &date_err { div .field-error { (e) } }
                }
                div .field .invalid[narration_err.is_some()] {
                    label for="je-narration" { "Narration" span .req title="required" { " *" } }
                    input #je-narration type="text" name="narration" value=(typed.get("narration")) required;
                    @if let Some(e) = &narration_err { div .field-error { (e) } }
                }
                div .field .invalid[reference_err.is_some()] {
                    label for="je-reference" { "Reference" }
                    input #je-reference type="text" name="reference" value=(typed.get("reference"));
                    @if let Some(e) = &reference_err { div .field-error { (e) } }
                }
            }
            h2 { "Lines" }
            @if let Some(e) = &lines_err { div .form-error .field-error role="alert" { (e) } }
            @if options.is_empty() {
                div .notice { "There are no accounts to post to yet: install a chart of accounts from the " a href="/m/ledger" { "ledger home" } "." }
            }
            div .table-wrap {
                table .lines {
                    thead { tr { th { "#" } th { "Account" } th .num { "Debit" } th .num { "Credit" } th { "Memo" } } }
                    tbody {
                        @for i in 0..line_rows(typed, typed.get("action") == "more") {
                            @let account = typed.get(&format!("account_{i}")).to_string();
                            tr {
                                td { (i + 1) }
                                td {
                                    select name={ "account_" (i) } aria-label={ "Account, line " (i + 1) } {
                                        option value="" { "—" }
                                        @for (v, label) in &options {
                                            option value=(v) selected[*v == account] { (label) }
                                        }
                                    }
                                }
                                td .num { input type="text" inputmode="decimal" name={ "debit_" (i) } value=(typed.get(&format!("debit_{i}"))) aria-label={ "Debit, line " (i + 1) }; }
                                td .num { input type="text" inputmode="decimal" name={ "credit_" (i) } value=(typed.get(&format!("credit_{i}"))) aria-label={ "Credit, line " (i + 1) }; }
                                td { input type="text" name={ "memo_" (i) } value=(typed.get(&format!("memo_{i}"))) aria-label={ "Memo, line " (i + 1) }; }
                            }
                        }
                    }
                }
            }
            @if !typed.get("draft").is_empty() {
                input type="hidden" name="draft" value=(typed.get("draft"));
            }
            div .form-actions {
                button .primary type="submit" name="action" value="post" { "Post entry" }
                button type="submit" name="action" value="draft" { "Save as draft" }
                button type="submit" name="action" value="more" formnovalidate { "More lines" }
                a .button href="/m/ledger" { "Cancel" }
            }
        }
    }
}

fn journal_page(auth: &Auth, form: Markup) -> Markup {
    let body = html! {
        header .page-head { div { a href="/m/ledger" { "← Ledger" } h1 { "New journal entry" } } }
        div .card { (form) }
    };
    views::page(auth, "New journal entry", "ledger", body, Vec::new())
}

pub async fn new_journal(
    State(state): State<AppState>,
    auth: Auth,
    RawQuery(raw): RawQuery,
) -> Result<Markup, WebError> {
    if !auth.who().can(JOURNAL_ENTRY.name, Action::Create) {
        return Err(KernelError::Forbidden {
            action: "post",
            entity: "journal entries".into(),
        }
        .into());
    }
    let chart = books::chart(&state.kernel, auth.who())?;
    // `?draft=ID` opens a saved draft for editing.
    let draft = query_pairs(raw.as_deref())?
        .into_iter()
        .find(|(k, _)| k == "draft")
        .map(|(_, v)| parse_id(&v))
        .transpose()?;
    let pairs = match draft {
        Some(id) => draft_pairs(&state, auth.who(), id)?,
        None => Vec::new(),
    };
    let form = journal_form(&auth, &chart, &Typed(&pairs), today(&state), None);
    Ok(journal_page(&auth, form))
}

/// A saved draft as the journal form's fields.
fn draft_pairs(
    state: &AppState,
    who: &Principal,
    id: u64,
) -> Result<Vec<(String, String)>, WebError> {
    let rec = state.kernel.read::<JournalEntryRecord>(who, id)?;
    let mut pairs = vec![
        ("draft".to_owned(), id.to_string()),
        ("date".to_owned(), format_date(rec.date)),
        ("narration".to_owned(), rec.narration.clone()),
        ("reference".to_owned(), show(&rec.reference)),
    ];
    for (i, l) in drafts::lines(&state.kernel, who, id)?.iter().enumerate() {
        let amount = |m: i64| if m == 0 { String::new() } else { money(m) };
        pairs.extend([
            (format!("account_{i}"), l.account.to_string()),
            (format!("debit_{i}"), amount(l.debit)),
            (format!("credit_{i}"), amount(l.credit)),
            (format!("memo_{i}"), l.memo.clone()),
        ]);
    }
    Ok(pairs)
}

/// An amount field: empty is zero.
fn amount(raw: &str) -> Result<i64, String> {
    if raw.trim().is_empty() {
        Ok(0)
    } else {
        parse_money(raw)
    }
}

/// Reads the journal form into an entry, or the messages for its fields.
fn entry_from_form(pairs: &[(String, String)]) -> Result<EntryInput, FieldErrors> {
    let get = |k: &str| field(pairs, k).unwrap_or("");
    let mut errors = FieldErrors::default();
    let date = parse_date(get("date"))
        .map_err(|m| errors.push("date", m))
        .ok();
    let mut lines = Vec::new();
    let mut line_errors = Vec::new();
    for i in 0..MAX_LINE_ROWS {
        let (account, debit, credit, memo) = (
            get(&format!("account_{i}")).trim(),
            get(&format!("debit_{i}")),
            get(&format!("credit_{i}")),
            get(&format!("memo_{i}")),
        );
        if account.is_empty()
            && debit.trim().is_empty()
            && credit.trim().is_empty()
            && memo.trim().is_empty()
        {
            continue;
        }
        let n = i + 1;
        let account = match account.parse::<u64>() {
            Ok(id) if id > 0 => Some(id),
            _ if account.is_empty() => {
                line_errors.push(format!("line {n}: choose an account"));
                None
            }
            _ => {
                line_errors.push(format!("line {n}: \"{account}\" is not an account"));
                None
            }
        };
        let debit = amount(debit)
            .map_err(|m| line_errors.push(format!("line {n}, debit: {m}")))
            .ok();
        let credit = amount(credit)
            .map_err(|m| line_errors.push(format!("line {n}, credit: {m}")))
            .ok();
        if let (Some(account), Some(debit), Some(credit)) = (account, debit, credit) {
            lines.push(LineInput {
                account,
                debit,
                credit,
                memo: memo.trim().to_string(),
                foreign: None,
            });
        }
    }
    if !line_errors.is_empty() {
        errors.push("lines", line_errors.join("; "));
    }
    match date {
        Some(date) if errors.is_empty() => Ok(EntryInput {
            date,
            narration: get("narration").trim().to_string(),
            reference: get("reference").trim().to_string(),
            lines,
        }),
        _ => Err(errors),
    }
}

pub async fn post_journal(
    State(state): State<AppState>,
    submit: FormSubmit,
) -> Result<Response, WebError> {
    let FormSubmit { auth, pairs, .. } = submit;
    let draft = match field(&pairs, "draft").filter(|d| !d.is_empty()) {
        Some(d) => Some(parse_id(d)?),
        None => None,
    };
    if field(&pairs, "action") == Some("more") {
        let chart = books::chart(&state.kernel, auth.who())?;
        let form = journal_form(&auth, &chart, &Typed(&pairs), today(&state), None);
        return Ok(journal_page(&auth, form).into_response());
    }
    let save_only = field(&pairs, "action") == Some("draft");
    let who = auth.who();
    let result = match entry_from_form(&pairs) {
        Ok(input) if save_only => drafts::save(&state.kernel, who, draft, input)
            .await
            .map(|rec| format!("/ledger/journal/{}?saved=1", rec.id)),
        // Editing a draft and posting it: the edits are kept even if posting is refused.
        Ok(input) => match draft {
            Some(id) => match drafts::save(&state.kernel, who, Some(id), input).await {
                Ok(_) => drafts::post(&state.kernel, who, id)
                    .await
                    .map(|rec| format!("/ledger/journal/{}", rec.id)),
                Err(e) => Err(e),
            },
            None => books::post(&state.kernel, who, input)
                .await
                .map(|rec| format!("/e/journal_entry/{}?created=1", rec.id)),
        },
        Err(errors) => Err(KernelError::Invalid(errors)),
    };
    match result {
        Ok(target) => Ok(Redirect::to(&target).into_response()),
        Err(KernelError::Invalid(errors)) => {
            let chart = books::chart(&state.kernel, auth.who())?;
            let form = journal_form(&auth, &chart, &Typed(&pairs), today(&state), Some(&errors));
            Ok((StatusCode::UNPROCESSABLE_ENTITY, journal_page(&auth, form)).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

// ---------------------------------------------------------------- one entry

/// The entry's lines, in order.
fn entry_lines(
    state: &AppState,
    who: &Principal,
    entry: u64,
) -> Result<Vec<Row<JournalLineRecord>>, WebError> {
    let mut lines = rows::<JournalLineRecord>(
        state,
        who,
        &ListQuery {
            filters: vec![("entry".into(), entry.to_string())],
            limit: usize::MAX,
            ..Default::default()
        },
    )?;
    lines.sort_by_key(|r| r.line);
    Ok(lines)
}

pub async fn show_journal(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Markup, WebError> {
    let who = auth.who();
    let id = parse_id(&id)?;
    let rec = state.kernel.read::<JournalEntryRecord>(who, id)?;
    if rec.status == JournalStatus::Draft {
        return show_draft(&state, &auth, &rec, raw.as_deref() == Some("saved=1"));
    }
    let lines = entry_lines(&state, who, id)?;
    let chart = books::chart(&state.kernel, who)?;
    let account_label = |a: u64| {
        chart
            .get(a)
            .map_or_else(|| format!("#{a}"), |acc| acc.label())
    };
    let number = rec.number.clone();
    let cancellable = rec.status == JournalStatus::Posted
        && rec.kind != JournalKind::Reversal
        && rec.source.is_none()
        && who.can(JOURNAL_ENTRY.name, Action::Create);
    let (debits, credits) = lines.iter().fold((0i64, 0i64), |(d, c), l| {
        (
            d.saturating_add(l.debit.unwrap_or(0)),
            c.saturating_add(l.credit.unwrap_or(0)),
        )
    });
    let mut toasts = Vec::new();
    if raw.as_deref() == Some("reversal=1") {
        toasts.push(Toast::success(format!("{number} posted as the reversal")));
    }
    let link =
        |id: Option<u64>| id.map(|r| html! { a href={ "/ledger/journal/" (r) } { "#" (r) } });
    let body = html! {
        header .page-head {
            div {
                a href="/m/ledger" { "← Ledger" }
                h1 { (number) }
                div .meta { (rec.date) " · " (rec.status) " · " (rec.kind) }
            }
            div .actions {
                a .button href={ "/e/journal_entry/" (id) } { "Record & history" }
                @if cancellable {
                    form .inline method="post" action={ "/ledger/journal/" (id) "/cancel" } {
                        input type="hidden" name="_csrf" value=(auth.csrf());
                        label {
                            "Reversal date "
                            input type="date" name="date" required
                                value=(format_date(reversal_default(today(&state), rec.date)));
                        }
                        button .danger type="submit" { "Cancel (post reversal)" }
                    }
                }
            }
        }
        div .card .spaced {
            dl .facts {
                dt { "Number" } dd { (number) }
                dt { "Date" } dd { (rec.date) }
                dt { "Narration" } dd { (rec.narration) }
                dt { "Reference" } dd { (show(&rec.reference)) }
                dt { "Status" } dd { (rec.status) }
                @if let Some(source) = &rec.source { dt { "Posted by" } dd { (source) } }
                @if let Some(l) = link(rec.reverses) { dt { "Reverses" } dd { (l) } }
                @if let Some(l) = link(rec.reversed_by) { dt { "Reversed by" } dd { (l) } }
            }
        }
        div .card .spaced {
            h2 { "Lines" }
            div .table-wrap {
                table {
                    thead { tr { th { "#" } th { "Account" } th .num { "Debit" } th .num { "Credit" } th { "Memo" } } }
                    tbody {
                        @for l in &lines {
                            tr {
                                td { (l.line) }
                                td {
                                    a href={ "/e/journal_line?f.account=" (l.account) } { (account_label(l.account)) }
                                }
                                td .num { (opt_money(l.debit)) }
                                td .num { (opt_money(l.credit)) }
                                td { (show(&l.memo)) }
                            }
                        }
                    }
                    tfoot {
                        tr { th {} th { "Total" } th .num { (money(debits)) } th .num { (money(credits)) } th {} }
                    }
                }
            }
        }
    };
    Ok(views::page(&auth, &number, "ledger", body, toasts))
}

/// A draft: its lines as saved, and the buttons to edit, post or discard it.
fn show_draft(
    state: &AppState,
    auth: &Auth,
    rec: &Row<JournalEntryRecord>,
    saved: bool,
) -> Result<Markup, WebError> {
    let who = auth.who();
    let lines = drafts::lines(&state.kernel, who, rec.id)?;
    let chart = books::chart(&state.kernel, who)?;
    let number = rec.number.clone();
    let (debits, credits) = lines.iter().fold((0i64, 0i64), |(d, c), l| {
        (d.saturating_add(l.debit), c.saturating_add(l.credit))
    });
    let mut toasts = Vec::new();
    if saved {
        toasts.push(Toast::success(format!("{number} saved as a draft")));
    }
    let can = who.can(JOURNAL_ENTRY.name, Action::Create);
    let id = rec.id;
    let body = html! {
        header .page-head {
            div {
                a href="/m/ledger" { "← Ledger" }
                h1 { (number) }
                div .meta { (rec.date) " · Draft: not in the books until posted" }
            }
            @if can {
                div .actions {
                    a .button href={ "/ledger/journal/new?draft=" (id) } { "Edit" }
                    form method="post" action={ "/ledger/journal/" (id) "/post" } {
                        input type="hidden" name="_csrf" value=(auth.csrf());
                        button .primary type="submit" { "Post" }
                    }
                    form method="post" action={ "/ledger/journal/" (id) "/discard" }
                        hx-post={ "/ledger/journal/" (id) "/discard" }
                        hx-confirm={ "Discard " (number) "?" } {
                        input type="hidden" name="_csrf" value=(auth.csrf());
                        button .danger type="submit" { "Discard" }
                    }
                }
            }
        }
        div .card .spaced {
            dl .facts {
                dt { "Narration" } dd { (rec.narration) }
                dt { "Reference" } dd { (show(&rec.reference)) }
            }
            @if debits != credits {
                div .notice { "Debits and credits differ by " (money((debits - credits).abs())) ": it cannot be posted until they balance." }
            }
            table {
                thead { tr { th { "#" } th { "Account" } th .num { "Debit" } th .num { "Credit" } th { "Memo" } } }
                tbody {
                    @for (i, l) in lines.iter().enumerate() {
                        tr {
                            td { (i + 1) }
                            td { (chart.get(l.account).map_or_else(|| format!("#{}", l.account), |a| a.label())) }
                            td .num { @if l.debit != 0 { (money(l.debit)) } }
                            td .num { @if l.credit != 0 { (money(l.credit)) } }
                            td { (l.memo) }
                        }
                    }
                }
                tfoot { tr { th {} th { "Total" } th .num { (money(debits)) } th .num { (money(credits)) } th {} } }
            }
        }
    };
    Ok(views::page(auth, &number, "ledger", body, toasts))
}

pub async fn post_saved_draft(
    State(state): State<AppState>,
    Path(id): Path<String>,
    submit: FormSubmit,
) -> Result<Response, WebError> {
    let id = parse_id(&id)?;
    let rec = drafts::post(&state.kernel, submit.auth.who(), id).await?;
    Ok(Redirect::to(&format!("/ledger/journal/{}", rec.id)).into_response())
}

pub async fn discard_draft(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
    submit: FormSubmit,
) -> Result<Response, WebError> {
    let id = parse_id(&id)?;
    drafts::discard(&state.kernel, submit.auth.who(), id).await?;
    Ok(nexus_web::records::redirect(
        nexus_web::records::is_htmx(&headers),
        "/m/ledger",
    ))
}

pub async fn cancel_journal(
    State(state): State<AppState>,
    Path(id): Path<String>,
    submit: FormSubmit,
) -> Result<Response, WebError> {
    let id = parse_id(&id)?;
    // The form offers the date; a client that sends none gets the same default.
    let date = match field(&submit.pairs, "date").filter(|d| !d.trim().is_empty()) {
        Some(raw) => parse_date(raw).map_err(|m| KernelError::invalid("date", m))?,
        None => {
            let entry = state
                .kernel
                .read::<JournalEntryRecord>(submit.auth.who(), id)?;
            reversal_default(today(&state), entry.date)
        }
    };
    let reversal = books::cancel(&state.kernel, submit.auth.who(), id, date).await?;
    Ok(Redirect::to(&format!("/ledger/journal/{}?reversal=1", reversal.id)).into_response())
}

// ---------------------------------------------------------------- export

pub async fn export_beancount(
    State(state): State<AppState>,
    auth: Auth,
) -> Result<Response, WebError> {
    let text = books::export_beancount(&state.kernel, auth.who())?;
    let name: String = auth
        .who()
        .company_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let name = if name.trim_matches('_').is_empty() {
        "ledger".to_string()
    } else {
        name
    };
    let disposition = format!("attachment; filename=\"{name}.beancount\"");
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_str(&disposition)
                    .unwrap_or(HeaderValue::from_static("attachment")),
            ),
        ],
        text,
    )
        .into_response())
}

// ---------------------------------------------------------------- JSON API

fn malformed(m: impl Into<String>) -> WebError {
    WebError::Malformed(m.into())
}

fn json_text(obj: &serde_json::Map<String, J>, key: &str, what: &str) -> Result<String, WebError> {
    match obj.get(key) {
        None | Some(J::Null) => Ok(String::new()),
        Some(J::String(s)) => Ok(s.clone()),
        Some(_) => Err(malformed(format!("\"{key}\" must be a string ({what})"))),
    }
}

/// A JSON amount: a decimal string; absent is zero.
fn json_amount(v: Option<&J>, n: usize, key: &str) -> Result<Result<i64, String>, WebError> {
    match v {
        None | Some(J::Null) => Ok(Ok(0)),
        Some(J::String(s)) => Ok(amount(s).map_err(|m| format!("line {n}, {key}: {m}"))),
        // As everywhere in the API: money is a decimal string, so nothing is lost.
        Some(J::Number(x)) => Ok(Err(format!(
            "line {n}, {key}: send money as a decimal string like \"{x}\", so no precision is lost"
        ))),
        Some(_) => Err(malformed(format!(
            "lines[{}].{key} must be a decimal string like \"100.00\"",
            n - 1
        ))),
    }
}

/// A line's optional foreign part: `"currency": "EUR", "amount": "100.00", "rate":
/// "1.0825"` (the amount positive, in that currency; the line's debit or credit is its
/// company amount, which must be the amount at the rate).
fn json_foreign(
    l: &serde_json::Map<String, J>,
    n: usize,
) -> Result<Result<Option<Foreign>, String>, WebError> {
    let text = |key: &str| -> Result<Option<String>, WebError> {
        match l.get(key) {
            None | Some(J::Null) => Ok(None),
            Some(J::String(s)) => Ok(Some(s.trim().to_owned())),
            Some(_) => Err(malformed(format!(
                "lines[{}].{key} must be a string",
                n - 1
            ))),
        }
    };
    let (currency, amount, rate) = (text("currency")?, text("amount")?, text("rate")?);
    let Some(code) = currency else {
        if amount.is_some() || rate.is_some() {
            return Ok(Err(format!(
                "line {n}: a foreign amount or rate needs its \"currency\""
            )));
        }
        return Ok(Ok(None));
    };
    let parsed = Currency::new(&code.to_uppercase()).and_then(|currency| {
        let amount = Money::parse(amount.as_deref().unwrap_or(""), currency)?;
        let rate = Rate::parse(rate.as_deref().unwrap_or(""))?;
        Ok(Foreign { amount, rate })
    });
    Ok(parsed.map(Some).map_err(|e| format!("line {n}: {e}")))
}

fn entry_from_json(obj: &serde_json::Map<String, J>) -> Result<EntryInput, WebError> {
    let mut errors = FieldErrors::default();
    let date = json_text(obj, "date", "like \"2026-01-31\"")?;
    let date = parse_date(&date).map_err(|m| errors.push("date", m)).ok();
    let narration = json_text(obj, "narration", "what the entry is for")?;
    let reference = json_text(obj, "reference", "an invoice number or similar")?;
    let raw_lines = match obj.get("lines") {
        Some(J::Array(a)) => a,
        None => return Err(malformed("include \"lines\": an array of lines")),
        Some(_) => return Err(malformed("\"lines\" must be an array of objects")),
    };
    let mut lines = Vec::with_capacity(raw_lines.len());
    let mut line_errors = Vec::new();
    for (i, l) in raw_lines.iter().enumerate() {
        let n = i + 1;
        let J::Object(l) = l else {
            return Err(malformed(format!("lines[{i}] must be an object")));
        };
        let account = match l.get("account") {
            Some(J::Number(x)) => x
                .as_u64()
                .filter(|id| *id > 0)
                .ok_or_else(|| malformed(format!("lines[{i}].account must be an account id")))?,
            None => return Err(malformed(format!("lines[{i}] lacks \"account\" (an id)"))),
            Some(_) => {
                return Err(malformed(format!(
                    "lines[{i}].account must be a number (an account id)"
                )));
            }
        };
        let debit = json_amount(l.get("debit"), n, "debit")?;
        let credit = json_amount(l.get("credit"), n, "credit")?;
        let memo = match l.get("memo") {
            None | Some(J::Null) => String::new(),
            Some(J::String(s)) => s.clone(),
            Some(_) => return Err(malformed(format!("lines[{i}].memo must be a string"))),
        };
        match (debit, credit, json_foreign(l, n)?) {
            (Ok(debit), Ok(credit), Ok(foreign)) => {
                // The foreign amount carries the line's side.
                let foreign = match foreign {
                    Some(f) if credit > 0 => match f.amount.checked_neg() {
                        Ok(amount) => Some(Foreign { amount, ..f }),
                        Err(e) => {
                            line_errors.push(format!("line {n}: {e}"));
                            None
                        }
                    },
                    other => other,
                };
                lines.push(LineInput {
                    account,
                    debit,
                    credit,
                    memo,
                    foreign,
                });
            }
            (d, c, f) => line_errors.extend(d.err().into_iter().chain(c.err()).chain(f.err())),
        }
    }
    if !line_errors.is_empty() {
        errors.push("lines", line_errors.join("; "));
    }
    match date {
        Some(date) if errors.is_empty() => Ok(EntryInput {
            date,
            narration,
            reference,
            lines,
        }),
        _ => Err(KernelError::Invalid(errors).into()),
    }
}

pub async fn api_post_journal(
    State(state): State<AppState>,
    submit: JsonSubmit,
) -> Result<Response, WebError> {
    let input = entry_from_json(&submit.object)?;
    let rec = books::post(&state.kernel, submit.auth.who(), input).await?;
    let mut res = (
        StatusCode::CREATED,
        Json(json!({ "id": rec.id, "number": rec.number })),
    )
        .into_response();
    if let Ok(loc) = HeaderValue::from_str(&format!("/api/v1/journal_entry/{}", rec.id)) {
        res.headers_mut().insert(header::LOCATION, loc);
    }
    Ok(res)
}
