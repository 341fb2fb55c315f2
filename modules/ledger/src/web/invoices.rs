//! Receivables and payables in the browser and the API: issuing invoices and credit
//! notes, a document's page with its payments, registering payments with their
//! allocations, the aging reports and the reminder letters. Thin: parse, call
//! `crate::receivables::books`, render.

use crate::entities::SUPPLIER;
use crate::parties::customer;
use crate::receivables::books::{self as ar, DocumentInput, LineInput, PaymentInput};
use crate::receivables::entities::{
    AllocationRecord, InvoiceLineRecord, InvoiceRecord, InvoiceStatus, PaymentRecord, TaxRecord,
};
use crate::receivables::{DocumentKind, Ledger, PaymentKind};
use crate::stock::entities::StockMoveRecord;
use crate::{Currency, Rate};
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use nexus_kernel::builtin::Company;
use nexus_kernel::typed::Options;
use nexus_kernel::{EntityDef, KernelError, ListQuery, Principal, Record, Row, parse_money};
use serde_json::{Value as J, json};
use time::Date;

use super::reports::{Align, Cell, Sheet, SheetRow, now, respond};
use super::{
    account_options, format_date, money, opt_money, options, parse_date, parse_id, query_pairs,
    rows, select, show, today,
};
use nexus_web::AppState;
use nexus_web::body::field;
use nexus_web::error::WebError;
use nexus_web::session::{Auth, FormSubmit, JsonSubmit};
use nexus_web::views;

/// Line rows on the document form.
const DOC_ROWS: usize = 6;
/// Allocation rows on the payment form.
const ALLOC_ROWS: usize = 4;

fn kind_from_slug(slug: &str) -> Option<DocumentKind> {
    Some(match slug {
        "sales" => DocumentKind::SalesInvoice,
        "sales-credit" => DocumentKind::SalesCreditNote,
        "purchase" => DocumentKind::PurchaseInvoice,
        "purchase-credit" => DocumentKind::PurchaseCreditNote,
        _ => return None,
    })
}

fn slug(kind: DocumentKind) -> &'static str {
    match kind {
        DocumentKind::SalesInvoice => "sales",
        DocumentKind::SalesCreditNote => "sales-credit",
        DocumentKind::PurchaseInvoice => "purchase",
        DocumentKind::PurchaseCreditNote => "purchase-credit",
    }
}

/// The field of a document that names its party.
const fn party_field(ledger: Ledger) -> &'static str {
    match ledger {
        Ledger::Receivable => "customer",
        Ledger::Payable => "supplier",
    }
}

/// The customer or supplier an invoice names.
fn party_of(rec: &InvoiceRecord) -> Option<u64> {
    match rec.kind.ledger() {
        Ledger::Receivable => rec.customer,
        Ledger::Payable => rec.supplier,
    }
}

fn party_def(ledger: Ledger) -> Result<(&'static EntityDef, &'static str), KernelError> {
    match ledger {
        Ledger::Receivable => Ok((customer()?, "customer")),
        Ledger::Payable => Ok((&SUPPLIER, "supplier")),
    }
}

fn all(
    def: &'static EntityDef,
    state: &AppState,
    who: &Principal,
    sort: &str,
) -> Result<Vec<Record>, WebError> {
    Ok(state
        .kernel
        .list(
            who,
            def,
            &ListQuery {
                sort: Some(sort.into()),
                limit: usize::MAX,
                ..Default::default()
            },
        )?
        .rows)
}

/// The company's postable accounts that `keep` accepts, as options.
fn accounts_where(
    state: &AppState,
    who: &Principal,
    keep: impl Fn(&crate::Account) -> bool,
) -> Result<Vec<(String, String)>, WebError> {
    let chart = crate::books::chart(&state.kernel, who)?;
    Ok(account_options(&chart, keep))
}

fn typed<'a>(pairs: &'a [(String, String)], name: &str) -> &'a str {
    field(pairs, name).unwrap_or("")
}

fn error_box(errors: &[String]) -> Markup {
    html! {
        @if !errors.is_empty() {
            div .form-error role="alert" {
                "Nothing was saved. Please correct:"
                ul { @for e in errors { li { (e) } } }
            }
        }
    }
}

fn kernel_messages(e: &WebError) -> Vec<String> {
    match e {
        WebError::Kernel(KernelError::Invalid(fields)) => {
            fields.0.iter().map(|(f, m)| format!("{f}: {m}")).collect()
        }
        other => vec![other.message()],
    }
}

// ---------------------------------------------------------------- documents

fn document_form(
    state: &AppState,
    auth: &Auth,
    kind: DocumentKind,
    pairs: &[(String, String)],
    errors: &[String],
) -> Result<Markup, WebError> {
    let who = auth.who();
    let ledger = kind.ledger();
    let (pdef, pfield) = party_def(ledger)?;
    let parties = options(&all(pdef, state, who, "name")?, |r| r.title(pdef));
    let accounts = accounts_where(state, who, |a| match ledger {
        Ledger::Receivable => a.class == crate::AccountClass::Income,
        Ledger::Payable => matches!(
            a.class,
            crate::AccountClass::Expense | crate::AccountClass::Asset
        ),
    })?;
    let by_code = ListQuery {
        sort: Some("code".into()),
        limit: usize::MAX,
        ..Default::default()
    };
    let taxes = options(&rows::<TaxRecord>(state, who, &by_code)?, |r| {
        r.code.clone()
    });
    let date = match typed(pairs, "date") {
        "" => format_date(today(state)),
        d => d.to_owned(),
    };
    let title = kind.label();
    Ok(html! {
        header .page-head { div { a href="/ledger/invoices" { "← Invoices" } h1 { "New " (title.to_lowercase()) } } }
        (error_box(errors))
        form .record-form method="post" action="/ledger/invoices" novalidate {
            input type="hidden" name="_csrf" value=(auth.csrf());
            input type="hidden" name="kind" value=(slug(kind));
            div .fields {
                div .field { label { (pdef.label) span .req { " *" } } (select(pfield, pfield, pdef.label, &parties, typed(pairs, pfield), Some("—"))) }
                div .field { label for="d-date" { "Date" span .req { " *" } } input #d-date type="date" name="date" value=(date) required; }
                div .field { label for="d-currency" { "Currency" } input #d-currency type="text" name="currency" maxlength="3" value=(typed(pairs, "currency")) placeholder="company currency"; }
                div .field { label for="d-rate" { "Exchange rate" } input #d-rate type="text" inputmode="decimal" name="rate" value=(typed(pairs, "rate")) placeholder="from Exchange rates"; }
                div .field { label for="d-terms" { "Payment terms" } input #d-terms type="text" name="terms" value=(typed(pairs, "terms")) placeholder="net30, eom30, now, 30%:0,70%:60"; }
                div .field { label for="d-ref" { "Reference" } input #d-ref type="text" name="reference" value=(typed(pairs, "reference")); }
                div .field { label { input type="checkbox" name="prices_include_tax" value="on" checked[typed(pairs, "prices_include_tax") == "on"]; " Prices include tax" } }
            }
            h2 { "Lines" }
            div .table-wrap {
                table .lines {
                    thead { tr { th { "#" } th { "Description" } th .num { "Quantity" } th .num { "Unit price" } th .num { "Discount %" } th { "Account" } th { "Tax" } } }
                    tbody {
                        @for i in 0..DOC_ROWS {
                            @let n = |f: &str| format!("{f}_{i}");
                            tr {
                                td { (i + 1) }
                                td { input type="text" name=(n("description")) value=(typed(pairs, &n("description"))) aria-label={ "Description, line " (i + 1) }; }
                                td .num { input type="text" inputmode="decimal" name=(n("quantity")) value=(typed(pairs, &n("quantity"))) aria-label={ "Quantity, line " (i + 1) }; }
                                td .num { input type="text" inputmode="decimal" name=(n("price")) value=(typed(pairs, &n("price"))) aria-label={ "Unit price, line " (i + 1) }; }
                                td .num { input type="text" inputmode="decimal" name=(n("discount")) value=(typed(pairs, &n("discount"))) aria-label={ "Discount, line " (i + 1) }; }
                                td { (select(&n("account"), &n("account"), "Account", &accounts, typed(pairs, &n("account")), Some("—"))) }
                                td { (select(&n("tax"), &n("tax"), "Tax", &taxes, typed(pairs, &n("tax")), Some("—"))) }
                            }
                        }
                    }
                }
            }
            div .form-actions {
                button .primary type="submit" { "Issue " (title.to_lowercase()) }
                a .button href="/ledger/invoices" { "Cancel" }
            }
        }
    })
}

pub async fn new_document(
    State(state): State<AppState>,
    auth: Auth,
    RawQuery(raw): RawQuery,
) -> Result<Markup, WebError> {
    let pairs = query_pairs(raw.as_deref())?;
    let kind = kind_from_slug(typed(&pairs, "kind")).unwrap_or(DocumentKind::SalesInvoice);
    let body = document_form(&state, &auth, kind, &pairs, &[])?;
    Ok(views::page(&auth, kind.label(), "ledger", body, Vec::new()))
}

fn parse_currency(raw: &str) -> Result<Option<Currency>, String> {
    match raw.trim() {
        "" => Ok(None),
        code => Currency::new(&code.to_uppercase())
            .map(Some)
            .map_err(|e| e.to_string()),
    }
}

fn parse_rate(raw: &str) -> Result<Option<Rate>, String> {
    match raw.trim() {
        "" => Ok(None),
        r => Rate::parse(r).map(Some).map_err(|e| e.to_string()),
    }
}

fn parse_id_field(raw: &str, what: &str) -> Result<u64, String> {
    raw.trim()
        .parse::<u64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("choose {what}"))
}

/// The fields documents and payments share: the party, the date, the currency and rate.
struct Common {
    party: u64,
    date: Option<Date>,
    currency: Option<Currency>,
    rate: Option<Rate>,
}

/// Reads the shared fields; each problem is added to `errors`.
fn common_fields(pairs: &[(String, String)], ledger: Ledger, errors: &mut Vec<String>) -> Common {
    let pfield = party_field(ledger);
    Common {
        party: parse_id_field(typed(pairs, pfield), &format!("the {pfield}"))
            .map_err(|e| errors.push(e))
            .unwrap_or(0),
        date: parse_date(typed(pairs, "date"))
            .map_err(|e| errors.push(format!("date: {e}")))
            .ok(),
        currency: parse_currency(typed(pairs, "currency"))
            .map_err(|e| errors.push(format!("currency: {e}")))
            .unwrap_or(None),
        rate: parse_rate(typed(pairs, "rate"))
            .map_err(|e| errors.push(format!("exchange rate: {e}")))
            .unwrap_or(None),
    }
}

/// The document the form describes, or every problem found.
fn document_from_form(pairs: &[(String, String)]) -> Result<DocumentInput, Vec<String>> {
    let mut errors = Vec::new();
    let kind = kind_from_slug(typed(pairs, "kind")).unwrap_or(DocumentKind::SalesInvoice);
    let Common {
        party,
        date,
        currency,
        rate,
    } = common_fields(pairs, kind.ledger(), &mut errors);
    let mut lines = Vec::new();
    for i in 0..DOC_ROWS {
        let get = |f: &str| typed(pairs, &format!("{f}_{i}")).trim().to_owned();
        let (description, quantity, price, account) = (
            get("description"),
            get("quantity"),
            get("price"),
            get("account"),
        );
        if description.is_empty() && quantity.is_empty() && price.is_empty() {
            continue;
        }
        let n = i + 1;
        if description.is_empty() {
            errors.push(format!("line {n}: a description is required"));
        }
        let unit_price = parse_money(&price)
            .map_err(|e| errors.push(format!("line {n}, unit price: {e}")))
            .unwrap_or(0);
        let account = parse_id_field(&account, "an account")
            .map_err(|e| errors.push(format!("line {n}: {e}")))
            .unwrap_or(0);
        let tax = get("tax");
        lines.push(LineInput {
            description,
            quantity: if quantity.is_empty() {
                "1".into()
            } else {
                quantity
            },
            unit_price,
            discount: get("discount"),
            account,
            taxes: tax.parse::<u64>().ok().into_iter().collect(),
        });
    }
    if lines.is_empty() {
        errors.push("enter at least one line".into());
    }
    match (errors.is_empty(), date) {
        (true, Some(date)) => Ok(DocumentInput {
            kind,
            party,
            date,
            currency,
            rate,
            terms: typed(pairs, "terms").to_owned(),
            prices_include_tax: typed(pairs, "prices_include_tax") == "on",
            reference: typed(pairs, "reference").trim().to_owned(),
            lines,
        }),
        _ => Err(errors),
    }
}

pub async fn issue_document(
    State(state): State<AppState>,
    submit: FormSubmit,
) -> Result<Response, WebError> {
    let kind = kind_from_slug(typed(&submit.pairs, "kind")).unwrap_or(DocumentKind::SalesInvoice);
    let errors = match document_from_form(&submit.pairs) {
        Ok(input) => match ar::issue(&state.kernel, submit.auth.who(), input).await {
            Ok(rec) => {
                return Ok(Redirect::to(&format!("/ledger/invoices/{}", rec.id)).into_response());
            }
            Err(e) => kernel_messages(&WebError::from(e)),
        },
        Err(errors) => errors,
    };
    let body = document_form(&state, &submit.auth, kind, &submit.pairs, &errors)?;
    Ok((
        StatusCode::UNPROCESSABLE_ENTITY,
        views::page(&submit.auth, kind.label(), "ledger", body, Vec::new()),
    )
        .into_response())
}

pub async fn show_document(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Markup, WebError> {
    let who = auth.who();
    let id = parse_id(&id)?;
    let rec = state.kernel.read::<InvoiceRecord>(who, id)?;
    let of_this = |f: &str| ListQuery {
        filters: vec![(f.into(), id.to_string())],
        limit: usize::MAX,
        ..Default::default()
    };
    let mut lines = rows::<InvoiceLineRecord>(&state, who, &of_this("invoice"))?;
    lines.sort_by_key(|l| l.line);
    let allocations = rows::<AllocationRecord>(&state, who, &of_this("invoice"))?;
    let moves = rows::<StockMoveRecord>(&state, who, &of_this("document"))?;
    let (pdef, _) = party_def(rec.kind.ledger())?;
    let party_link = party_of(&rec).map(|p| {
        let name = state
            .kernel
            .get(who, pdef, p)
            .map(|r| r.title(pdef))
            .unwrap_or_else(|_| format!("#{p}"));
        html! { a href={ "/e/" (pdef.name) "/" (p) } { (name) } }
    });
    let number = rec.number.clone();
    let open = rec.status != InvoiceStatus::Paid;
    let currency = rec.currency.clone();
    let body = html! {
        header .page-head {
            div {
                a href="/ledger/invoices" { "← Invoices" }
                h1 { (rec.kind.name()) " " (number) }
                div .meta { (rec.date) " · " (rec.status) " · " (currency) }
            }
            div .actions {
                @if open {
                    a .button .primary href={ "/ledger/payments/new?invoice=" (id) } { "Register payment" }
                }
                a .button href={ "/ledger/invoices/" (id) "/pdf" } { "PDF" }
                a .button href={ "/e/invoice/" (id) } { "Record & history" }
            }
        }
        div .card .spaced {
            dl .facts {
                @if let Some(p) = party_link { dt { (pdef.label) } dd { (p) } }
                dt { "Date" } dd { (rec.date) }
                dt { "Due" } dd { (show(&rec.due)) }
                dt { "Terms" } dd { (show(&rec.terms)) }
                @if let Some(rate) = &rec.rate { dt { "Exchange rate" } dd { (rate) } }
                dt { "Reference" } dd { (show(&rec.reference)) }
                dt { "Journal entry" } dd {
                    @if let Some(e) = rec.journal_entry { a href={ "/ledger/journal/" (e) } { "#" (e) } }
                }
            }
        }
        div .card .spaced {
            h2 { "Lines" }
            div .table-wrap {
                table {
                    thead { tr { th { "#" } th { "Description" } th .num { "Quantity" } th .num { "Unit price" } th .num { "Discount %" } th { "Taxes" } th .num { "Net" } } }
                    tbody {
                        @for l in &lines {
                            tr {
                                td { (l.line) }
                                td { (l.description) }
                                td .num { (l.quantity) }
                                td .num { (opt_money(l.unit_price)) }
                                td .num { (show(&l.discount)) }
                                td { (show(&l.taxes)) }
                                td .num { (opt_money(l.net)) }
                            }
                        }
                    }
                    tfoot {
                        tr { th colspan="6" { "Net" } th .num { (opt_money(rec.net)) } }
                        tr { th colspan="6" { "Tax" } th .num { (opt_money(rec.tax)) } }
                        tr { th colspan="6" { "Total " (currency) } th .num { (money(rec.total)) } }
                        tr { th colspan="6" { "Open" } th .num { (opt_money(rec.open)) } }
                    }
                }
            }
        }
        @if !moves.is_empty() {
            div .card .spaced {
                h2 { "Goods moved for it" }
                table {
                    thead { tr { th { "Move" } th { "Kind" } th { "Date" } th .num { "Quantity" } th .num { "Value" } } }
                    tbody {
                        @for m in &moves {
                            tr {
                                td { a href={ "/e/stock_move/" (m.id) } { (m.number) } }
                                td { (m.kind.name()) }
                                td { (m.date) }
                                td .num { (m.qty) " " (show(&m.unit)) }
                                td .num { (money(m.value)) }
                            }
                        }
                    }
                }
            }
        }
        div .card .spaced {
            h2 { "Payments and credits" }
            @if allocations.is_empty() {
                p { "Nothing has been paid or credited yet." }
            } @else {
                table {
                    thead { tr { th { "Date" } th { "Payment" } th .num { "Amount" } th .num { "Exchange result" } } }
                    tbody {
                        @for a in &allocations {
                            tr {
                                td { (a.date) }
                                td { @if let Some(p) = a.payment { a href={ "/e/payment/" (p) } { "#" (p) } } @else { "credit note" } }
                                td .num { (money(a.amount)) }
                                td .num { (opt_money(a.fx_gain)) }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(views::page(&auth, &number, "ledger", body, Vec::new()))
}

/// `GET /ledger/invoices/{id}/pdf`: the document as the firm sends it.
pub async fn document_pdf(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let who = auth.who();
    let id = parse_id(&id)?;
    let rec = state.kernel.read::<InvoiceRecord>(who, id)?;
    let kind = rec.kind;
    let (pdef, _) = party_def(kind.ledger())?;
    let party = match party_of(&rec) {
        Some(p) => Some(state.kernel.get(who, pdef, p)?),
        None => None,
    };
    let company = state.kernel.read::<Company>(who, who.company)?;
    let lines_of = |text: &Option<String>| -> Vec<String> {
        text.iter()
            .flat_map(|t| t.lines())
            .filter(|l| !l.trim().is_empty())
            .map(str::to_owned)
            .collect()
    };
    let us = nexus_export::Party {
        name: company
            .legal_name
            .clone()
            .unwrap_or_else(|| company.name.clone()),
        address: lines_of(&company.address),
        tax_id: show(&company.tax_id),
        email: String::new(),
        phone: String::new(),
    };
    // A customer is CRM's record and a supplier the ledger's; both have these fields,
    // read by name because the ledger does not depend on CRM's types.
    let text = |r: &Record, f: &str| r.get(f).as_text().unwrap_or_default().to_owned();
    let them = party.as_ref().map_or_else(
        || nexus_export::Party {
            name: "—".into(),
            address: Vec::new(),
            tax_id: String::new(),
            email: String::new(),
            phone: String::new(),
        },
        |p| nexus_export::Party {
            name: p.title(pdef),
            address: ["city", "country"]
                .iter()
                .map(|f| text(p, f))
                .filter(|l| !l.trim().is_empty())
                .collect(),
            tax_id: text(p, "tax_id"),
            email: text(p, "email"),
            phone: text(p, "phone"),
        },
    );
    let (seller, buyer) = match kind.ledger() {
        Ledger::Receivable => (us, them),
        Ledger::Payable => (them, us),
    };
    let mut lines = rows::<InvoiceLineRecord>(
        &state,
        who,
        &ListQuery {
            filters: vec![("invoice".into(), id.to_string())],
            limit: usize::MAX,
            ..Default::default()
        },
    )?;
    lines.sort_by_key(|l| l.line);
    let currency =
        Currency::new(&rec.currency).map_err(|e| KernelError::Internal(e.to_string()))?;
    let issue_date = rec.date;
    let (total, open) = (rec.total, rec.open.unwrap_or(0));
    let doc = nexus_export::Invoice {
        seller,
        buyer,
        number: rec.number.clone(),
        kind: kind.label().to_owned(),
        issue_date,
        due_date: rec.due.unwrap_or(issue_date),
        currency: currency.code().to_owned(),
        exponent: currency.exponent(),
        lines: lines
            .iter()
            .map(|l| nexus_export::InvoiceLine {
                description: l.description.clone(),
                quantity: l.quantity.clone(),
                unit_price: l.unit_price.unwrap_or(0),
                discount: l
                    .discount
                    .as_ref()
                    .map(|d| format!("{d}%"))
                    .unwrap_or_default(),
                tax: show(&l.taxes),
                net: l.net.unwrap_or(0),
            })
            .collect(),
        tax_rows: ar::tax_rows(&state.kernel, who, id)?
            .into_iter()
            .map(|(label, base, tax)| nexus_export::TaxRow { label, base, tax })
            .collect(),
        totals: nexus_export::InvoiceTotals {
            net: rec.net.unwrap_or(0),
            tax: rec.tax.unwrap_or(0),
            total,
            paid: total - open,
            due: open,
        },
        payment_terms: rec
            .terms
            .as_deref()
            .and_then(|t| crate::receivables::PaymentTerms::parse(t).ok())
            .map(|t| t.label())
            .unwrap_or_default(),
        bank_details: Vec::new(),
        notes: show(&rec.reference),
    };
    let pdf = nexus_export::invoice_pdf(&doc)
        .map_err(|e| KernelError::BadRequest(format!("{} cannot be printed: {e}", doc.number)))?;
    let disposition = format!("inline; filename=\"{}.pdf\"", doc.number);
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/pdf"),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_str(&disposition).unwrap_or(HeaderValue::from_static("inline")),
            ),
        ],
        pdf,
    )
        .into_response())
}

pub async fn documents_page(State(state): State<AppState>, auth: Auth) -> Result<Markup, WebError> {
    let who = auth.who();
    let recent = rows::<InvoiceRecord>(
        &state,
        who,
        &ListQuery {
            descending: true,
            limit: 30,
            ..Default::default()
        },
    )?;
    let body = html! {
        header .page-head { div { a href="/m/ledger" { "← Ledger" } h1 { "Invoices and payments" } } }
        div .actions .spaced {
            a .button .primary href="/ledger/invoices/new?kind=sales" { "New sales invoice" }
            a .button href="/ledger/invoices/new?kind=sales-credit" { "New credit note" }
            a .button href="/ledger/invoices/new?kind=purchase" { "New purchase invoice" }
            a .button href="/ledger/invoices/new?kind=purchase-credit" { "New supplier credit note" }
            a .button href="/ledger/payments/new" { "Register payment" }
        }
        div .actions .spaced {
            a href="/e/invoice" { "All invoices" } " · "
            a href="/e/payment" { "All payments" } " · "
            a href="/ledger/aging?ledger=receivable" { "Receivables aging" } " · "
            a href="/ledger/aging?ledger=payable" { "Payables aging" } " · "
            a href="/ledger/reminders" { "Reminder letters" } " · "
            a href="/e/tax" { "Taxes" } " · "
            a href="/e/exchange_rate" { "Exchange rates" } " · "
            a href="/e/supplier" { "Suppliers" }
        }
        div .card .spaced {
            h2 { "Latest documents" }
            table {
                thead { tr { th { "Number" } th { "Kind" } th { "Date" } th { "Due" } th .num { "Total" } th .num { "Open" } th { "Status" } } }
                tbody {
                    @for r in &recent {
                        tr {
                            td { a href={ "/ledger/invoices/" (r.id) } { (r.number) } }
                            td { (r.kind.name()) }
                            td { (r.date) }
                            td { (show(&r.due)) }
                            td .num { (money(r.total)) }
                            td .num { (opt_money(r.open)) }
                            td { (r.status) }
                        }
                    }
                    @if recent.is_empty() { tr .empty { td colspan="7" { "No invoices yet." } } }
                }
            }
        }
    };
    Ok(views::page(&auth, "Invoices", "ledger", body, Vec::new()))
}

// ---------------------------------------------------------------- payments

fn payment_kind_from_slug(slug: &str) -> Option<PaymentKind> {
    Some(match slug {
        "receipt" => PaymentKind::CustomerReceipt,
        "customer-refund" => PaymentKind::CustomerRefund,
        "supplier-payment" => PaymentKind::SupplierPayment,
        "supplier-refund" => PaymentKind::SupplierRefund,
        _ => return None,
    })
}

fn payment_form(
    state: &AppState,
    auth: &Auth,
    pairs: &[(String, String)],
    errors: &[String],
) -> Result<Markup, WebError> {
    let who = auth.who();
    let banks = accounts_where(state, who, |a| {
        matches!(a.kind, crate::AccountType::Bank | crate::AccountType::Cash)
    })?;
    let mut open_docs: Vec<(String, String)> = Vec::new();
    for ledger in [Ledger::Receivable, Ledger::Payable] {
        for item in ar::open_items(&state.kernel, who, ledger)? {
            if let crate::receivables::ItemId::Document(doc) = item.id {
                let party = ar::party_name(&state.kernel, who, ledger, item.party)?;
                open_docs.push((
                    doc.to_string(),
                    format!("{} · {party} · open {}", item.number, item.open_money()),
                ));
            }
        }
    }
    let kinds = [
        ("receipt", "Payment from a customer"),
        ("supplier-payment", "Payment to a supplier"),
        ("customer-refund", "Refund to a customer"),
        ("supplier-refund", "Refund from a supplier"),
    ];
    let kind = typed(pairs, "kind");
    let customer_def = customer()?;
    let customers = options(&all(customer_def, state, who, "name")?, |r| {
        r.title(customer_def)
    });
    let suppliers = options(&all(&SUPPLIER, state, who, "name")?, |r| r.title(&SUPPLIER));
    let date = match typed(pairs, "date") {
        "" => format_date(today(state)),
        d => d.to_owned(),
    };
    Ok(html! {
        header .page-head { div { a href="/ledger/invoices" { "← Invoices" } h1 { "Register a payment" } } }
        (error_box(errors))
        form .record-form method="post" action="/ledger/payments" novalidate {
            input type="hidden" name="_csrf" value=(auth.csrf());
            div .fields {
                div .field { label { "Kind" } select name="kind" aria-label="Kind" {
                    @for (v, l) in kinds { option value=(v) selected[v == kind] { (l) } }
                } }
                div .field { label { "Customer" } (select("customer", "customer", "Customer", &customers, typed(pairs, "customer"), Some("—"))) }
                div .field { label { "Supplier" } (select("supplier", "supplier", "Supplier", &suppliers, typed(pairs, "supplier"), Some("—"))) }
                div .field { label for="p-date" { "Date" } input #p-date type="date" name="date" value=(date); }
                div .field { label for="p-amount" { "Amount" span .req { " *" } } input #p-amount type="text" inputmode="decimal" name="amount" value=(typed(pairs, "amount")); }
                div .field { label for="p-currency" { "Currency" } input #p-currency type="text" maxlength="3" name="currency" value=(typed(pairs, "currency")) placeholder="company currency"; }
                div .field { label for="p-rate" { "Exchange rate" } input #p-rate type="text" name="rate" value=(typed(pairs, "rate")) placeholder="from Exchange rates"; }
                div .field { label { "Bank account" } (select("bank_account", "bank_account", "Bank account", &banks, typed(pairs, "bank_account"), None)) }
                div .field { label for="p-ref" { "Reference" } input #p-ref type="text" name="reference" value=(typed(pairs, "reference")); }
            }
            h2 { "Allocate to" }
            p { "What is not allocated stays on the party's account as a credit." }
            table .lines {
                thead { tr { th { "Document" } th .num { "Amount" } } }
                tbody {
                    @for i in 0..ALLOC_ROWS {
                        tr {
                            td { (select(&format!("invoice_{i}"), &format!("invoice_{i}"), "Document", &open_docs, typed(pairs, &format!("invoice_{i}")), Some("—"))) }
                            td .num { input type="text" inputmode="decimal" name={ "allocate_" (i) } value=(typed(pairs, &format!("allocate_{i}"))) aria-label="Amount allocated"; }
                        }
                    }
                }
            }
            div .form-actions {
                button .primary type="submit" { "Register payment" }
                a .button href="/ledger/invoices" { "Cancel" }
            }
        }
    })
}

pub async fn new_payment(
    State(state): State<AppState>,
    auth: Auth,
    RawQuery(raw): RawQuery,
) -> Result<Markup, WebError> {
    let mut pairs = query_pairs(raw.as_deref())?;
    // From an invoice: its party, its open amount, allocated to it.
    if let Some(id) = field(&pairs, "invoice").and_then(|v| v.parse::<u64>().ok()) {
        let rec = state.kernel.read::<InvoiceRecord>(auth.who(), id)?;
        {
            let kind = rec.kind;
            let pfield = party_field(kind.ledger());
            let pkind = match kind {
                DocumentKind::SalesInvoice => "receipt",
                DocumentKind::SalesCreditNote => "customer-refund",
                DocumentKind::PurchaseInvoice => "supplier-payment",
                DocumentKind::PurchaseCreditNote => "supplier-refund",
            };
            let open = opt_money(rec.open);
            pairs.extend([
                ("kind".to_owned(), pkind.to_owned()),
                (pfield.to_owned(), party_of(&rec).unwrap_or(0).to_string()),
                ("amount".to_owned(), open.clone()),
                ("currency".to_owned(), rec.currency.clone()),
                ("invoice_0".to_owned(), id.to_string()),
                ("allocate_0".to_owned(), open),
            ]);
        }
    }
    let body = payment_form(&state, &auth, &pairs, &[])?;
    Ok(views::page(
        &auth,
        "Register payment",
        "ledger",
        body,
        Vec::new(),
    ))
}

fn payment_from_form(pairs: &[(String, String)]) -> Result<PaymentInput, Vec<String>> {
    let mut errors = Vec::new();
    let kind = payment_kind_from_slug(typed(pairs, "kind")).unwrap_or(PaymentKind::CustomerReceipt);
    let Common {
        party,
        date,
        currency,
        rate,
    } = common_fields(pairs, kind.ledger(), &mut errors);
    let amount = parse_money(typed(pairs, "amount"))
        .map_err(|e| errors.push(format!("amount: {e}")))
        .unwrap_or(0);
    let bank_account = parse_id_field(typed(pairs, "bank_account"), "a bank account")
        .map_err(|e| errors.push(e))
        .unwrap_or(0);
    let mut allocations = Vec::new();
    for i in 0..ALLOC_ROWS {
        let (doc, amt) = (
            typed(pairs, &format!("invoice_{i}")).trim(),
            typed(pairs, &format!("allocate_{i}")).trim(),
        );
        if doc.is_empty() && amt.is_empty() {
            continue;
        }
        let n = i + 1;
        let doc = parse_id_field(doc, "a document")
            .map_err(|e| errors.push(format!("allocation {n}: {e}")))
            .unwrap_or(0);
        let amt = parse_money(amt)
            .map_err(|e| errors.push(format!("allocation {n}: {e}")))
            .unwrap_or(0);
        allocations.push((doc, amt));
    }
    match (errors.is_empty(), date) {
        (true, Some(date)) => Ok(PaymentInput {
            kind,
            party,
            date,
            currency,
            amount,
            rate,
            bank_account,
            reference: typed(pairs, "reference").trim().to_owned(),
            allocations,
        }),
        _ => Err(errors),
    }
}

pub async fn register_payment(
    State(state): State<AppState>,
    submit: FormSubmit,
) -> Result<Response, WebError> {
    let errors = match payment_from_form(&submit.pairs) {
        Ok(input) => {
            let allocated = input.allocations.first().map(|a| a.0);
            match ar::pay(&state.kernel, submit.auth.who(), input).await {
                Ok(rec) => {
                    let target = match allocated {
                        Some(doc) => format!("/ledger/invoices/{doc}"),
                        None => format!("/e/payment/{}", rec.id),
                    };
                    return Ok(Redirect::to(&target).into_response());
                }
                Err(e) => kernel_messages(&WebError::from(e)),
            }
        }
        Err(errors) => errors,
    };
    let body = payment_form(&state, &submit.auth, &submit.pairs, &errors)?;
    Ok((
        StatusCode::UNPROCESSABLE_ENTITY,
        views::page(&submit.auth, "Register payment", "ledger", body, Vec::new()),
    )
        .into_response())
}

// ---------------------------------------------------------------- aging and reminders

fn as_of(state: &AppState, pairs: &[(String, String)]) -> Result<Date, WebError> {
    match typed(pairs, "as_of").trim() {
        "" => Ok(today(state)),
        d => parse_date(d).map_err(|m| WebError::Malformed(format!("as_of: {m}"))),
    }
}

pub async fn aging_page(
    State(state): State<AppState>,
    auth: Auth,
    RawQuery(raw): RawQuery,
) -> Result<Response, WebError> {
    let who = auth.who();
    let pairs = query_pairs(raw.as_deref())?;
    let ledger = match typed(&pairs, "ledger") {
        "" | "receivable" => Ledger::Receivable,
        "payable" => Ledger::Payable,
        other => {
            return Err(WebError::Malformed(format!(
                "\"{other}\" is not a ledger: use receivable or payable"
            )));
        }
    };
    let date = as_of(&state, &pairs)?;
    let report = ar::aging(&state.kernel, who, ledger, date)?;
    let chart = crate::books::chart(&state.kernel, who)?;
    let (pdef, _) = party_def(ledger)?;
    let mut rows = Vec::with_capacity(report.rows.len());
    for r in &report.rows {
        let mut cells = vec![Cell::Text(ar::party_name(
            &state.kernel,
            who,
            ledger,
            r.party,
        )?)];
        cells.extend(r.buckets.iter().map(|b| Cell::Money(*b)));
        cells.push(Cell::Money(r.total));
        // Drill down to the party's documents.
        let field = match ledger {
            Ledger::Receivable => "customer",
            Ledger::Payable => "supplier",
        };
        rows.push(SheetRow::new(cells).link(format!("/e/invoice?f.{field}={}", r.party)));
    }
    let mut footer = vec![Cell::Text("Total".into())];
    footer.extend(report.totals.iter().map(|t| Cell::Money(*t)));
    footer.push(Cell::Money(report.total));
    let mut columns: Vec<(String, Align)> = vec![(pdef.label.to_owned(), Align::Left)];
    columns.extend(report.labels.iter().map(|l| (l.clone(), Align::Right)));
    columns.push(("Total".to_owned(), Align::Right));
    let title = match ledger {
        Ledger::Receivable => "Receivables aging",
        Ledger::Payable => "Payables aging",
    };
    let sheet = Sheet {
        title: title.into(),
        subtitle: format!(
            "{} · at {} · {}",
            who.company_name,
            format_date(date),
            chart.currency().code()
        ),
        currency: chart.currency(),
        columns,
        rows,
        footer: Some(SheetRow::new(footer).bold()),
    };
    let form = html! {
        form .filters method="get" action="/ledger/aging" {
            input type="hidden" name="ledger" value=(match ledger { Ledger::Receivable => "receivable", Ledger::Payable => "payable" });
            label for="a-asof" { "At" }
            input #a-asof type="date" name="as_of" value=(format_date(date));
            button type="submit" { "Show" }
        }
    };
    respond(&auth, &sheet, raw.as_deref(), form, None, now(&state))
}

pub async fn reminders_page(
    State(state): State<AppState>,
    auth: Auth,
    RawQuery(raw): RawQuery,
) -> Result<Markup, WebError> {
    let who = auth.who();
    let pairs = query_pairs(raw.as_deref())?;
    let date = as_of(&state, &pairs)?;
    let reminders = ar::reminders(&state.kernel, who, date)?;
    let mut letters = Vec::with_capacity(reminders.len());
    for r in &reminders {
        let party = ar::party_name(&state.kernel, who, Ledger::Receivable, r.party)?;
        letters.push((r, r.letter(&who.company_name, &party), party));
    }
    let body = html! {
        header .page-head { div { a href="/ledger/invoices" { "← Invoices" } h1 { "Reminder letters" } div .meta { "Overdue at " (format_date(date)) } } }
        form .filters method="get" action="/ledger/reminders" {
            label for="r-asof" { "At" }
            input #r-asof type="date" name="as_of" value=(format_date(date));
            button type="submit" { "Show" }
        }
        @if letters.is_empty() { p { "No customer is overdue." } }
        @for (r, letter, party) in &letters {
            div .card .spaced {
                h2 { (party) " — " (r.title) }
                pre .letter { (letter) }
            }
        }
    };
    Ok(views::page(
        &auth,
        "Reminder letters",
        "ledger",
        body,
        Vec::new(),
    ))
}

// ---------------------------------------------------------------- API

fn bad(m: impl Into<String>) -> WebError {
    WebError::Malformed(m.into())
}

fn text<'a>(obj: &'a serde_json::Map<String, J>, key: &str) -> Result<&'a str, WebError> {
    match obj.get(key) {
        None | Some(J::Null) => Ok(""),
        Some(J::String(s)) => Ok(s),
        Some(_) => Err(bad(format!("\"{key}\" must be a string"))),
    }
}

fn id_of(obj: &serde_json::Map<String, J>, key: &str) -> Result<u64, WebError> {
    obj.get(key)
        .and_then(J::as_u64)
        .ok_or_else(|| bad(format!("\"{key}\" must be a record id")))
}

fn amount_of(obj: &serde_json::Map<String, J>, key: &str) -> Result<i64, WebError> {
    let raw = text(obj, key)?;
    parse_money(raw)
        .map_err(|e| WebError::Kernel(KernelError::invalid(key, format!("\"{raw}\": {e}"))))
}

fn created<T: nexus_kernel::Typed>(rec: &Row<T>) -> Response {
    let mut res = (
        StatusCode::CREATED,
        Json(json!({ "id": rec.id, "number": rec.title() })),
    )
        .into_response();
    let def = T::def();
    if let Ok(loc) = HeaderValue::from_str(&format!("/api/v1/{}/{}", def.name, rec.id)) {
        res.headers_mut().insert(header::LOCATION, loc);
    }
    res
}

/// `POST /api/v1/ledger/invoices`: `{kind: sales|sales-credit|purchase|purchase-credit,
/// customer|supplier, date, currency?, rate?, terms?, prices_include_tax?, reference?,
/// lines: [{description, quantity, unit_price, discount?, account, taxes: [id]}]}`.
pub async fn api_issue(
    State(state): State<AppState>,
    submit: JsonSubmit,
) -> Result<Response, WebError> {
    let obj = &submit.object;
    let kind = kind_from_slug(text(obj, "kind")?)
        .ok_or_else(|| bad("\"kind\" must be sales, sales-credit, purchase or purchase-credit"))?;
    let pfield = party_field(kind.ledger());
    let date = parse_date(text(obj, "date")?)
        .map_err(|m| WebError::Kernel(KernelError::invalid("date", m)))?;
    let lines_json = obj
        .get("lines")
        .and_then(J::as_array)
        .ok_or_else(|| bad("\"lines\" must be a list"))?;
    let mut lines = Vec::with_capacity(lines_json.len());
    for l in lines_json {
        let l = l
            .as_object()
            .ok_or_else(|| bad("each line must be an object"))?;
        let taxes = match l.get("taxes") {
            None | Some(J::Null) => Vec::new(),
            Some(J::Array(ids)) => ids
                .iter()
                .map(|t| t.as_u64().ok_or_else(|| bad("\"taxes\" must list tax ids")))
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(bad("\"taxes\" must be a list of tax ids")),
        };
        let quantity = match l.get("quantity") {
            Some(J::Number(n)) => n.to_string(),
            _ => text(l, "quantity")?.to_owned(),
        };
        lines.push(LineInput {
            description: text(l, "description")?.to_owned(),
            quantity: if quantity.is_empty() {
                "1".into()
            } else {
                quantity
            },
            unit_price: amount_of(l, "unit_price")?,
            discount: text(l, "discount")?.to_owned(),
            account: id_of(l, "account")?,
            taxes,
        });
    }
    let input = DocumentInput {
        kind,
        party: id_of(obj, pfield)?,
        date,
        currency: parse_currency(text(obj, "currency")?)
            .map_err(|m| WebError::Kernel(KernelError::invalid("currency", m)))?,
        rate: parse_rate(text(obj, "rate")?)
            .map_err(|m| WebError::Kernel(KernelError::invalid("rate", m)))?,
        terms: text(obj, "terms")?.to_owned(),
        prices_include_tax: obj
            .get("prices_include_tax")
            .and_then(J::as_bool)
            .unwrap_or(false),
        reference: text(obj, "reference")?.to_owned(),
        lines,
    };
    let rec = ar::issue(&state.kernel, submit.auth.who(), input).await?;
    Ok(created::<InvoiceRecord>(&rec))
}

/// `POST /api/v1/ledger/payments`: `{kind: receipt|customer-refund|supplier-payment|
/// supplier-refund, customer|supplier, date, amount, currency?, rate?, bank_account,
/// reference?, allocations: [{invoice, amount}]}`.
pub async fn api_pay(
    State(state): State<AppState>,
    submit: JsonSubmit,
) -> Result<Response, WebError> {
    let obj = &submit.object;
    let kind = payment_kind_from_slug(text(obj, "kind")?).ok_or_else(|| {
        bad("\"kind\" must be receipt, customer-refund, supplier-payment or supplier-refund")
    })?;
    let pfield = party_field(kind.ledger());
    let date = parse_date(text(obj, "date")?)
        .map_err(|m| WebError::Kernel(KernelError::invalid("date", m)))?;
    let mut allocations = Vec::new();
    if let Some(list) = obj.get("allocations") {
        let list = list
            .as_array()
            .ok_or_else(|| bad("\"allocations\" must be a list"))?;
        for a in list {
            let a = a
                .as_object()
                .ok_or_else(|| bad("each allocation must be an object"))?;
            allocations.push((id_of(a, "invoice")?, amount_of(a, "amount")?));
        }
    }
    let input = PaymentInput {
        kind,
        party: id_of(obj, pfield)?,
        date,
        currency: parse_currency(text(obj, "currency")?)
            .map_err(|m| WebError::Kernel(KernelError::invalid("currency", m)))?,
        amount: amount_of(obj, "amount")?,
        rate: parse_rate(text(obj, "rate")?)
            .map_err(|m| WebError::Kernel(KernelError::invalid("rate", m)))?,
        bank_account: id_of(obj, "bank_account")?,
        reference: text(obj, "reference")?.to_owned(),
        allocations,
    };
    let rec = ar::pay(&state.kernel, submit.auth.who(), input).await?;
    Ok(created::<PaymentRecord>(&rec))
}
