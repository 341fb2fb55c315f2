//! Inventory: the Stock page (receive, deliver, transfer and adjust forms, the latest
//! moves, the company's negative-stock setting), an item's page (on hand per warehouse,
//! its stock card, its form), the stock valuation report (a [`Sheet`], reconciled
//! against the stock accounts) and `POST /api/v1/ledger/stock/moves`.
//! Items, warehouses and moves are listed by the generic pages (`/e/stock_item`, …).
//! Thin: parse, call `crate::stock::books`, render.

use std::collections::BTreeMap;

use crate::books as ledger_books;
use crate::receivables::entities::InvoiceRecord;
use crate::stock::books::{self as stock, ItemInput, MoveInput, MoveType};
use crate::stock::entities::{
    MoveStatus, STOCK_ITEM, STOCK_MOVE, StockItemRecord, StockMoveRecord, WarehouseRecord,
};
use crate::stock::{NegativeStockPolicy, Quantity, ValuationMethod};
use crate::{Chart, Currency};
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use nexus_kernel::typed::Options;
use nexus_kernel::{
    Action, FieldErrors, KernelError, ListQuery, Row, Typed, format_money, parse_money,
};
use nexus_ui::Toast;
use serde_json::{Value as J, json};
use time::Date;

use super::reports::{Align, Cell, Sheet, SheetRow, amount, now, respond};
use super::{
    account_options, format_date, options, parse_date, parse_id, query_pairs, rows, select, show,
    today,
};
use nexus_web::AppState;
use nexus_web::body::field;
use nexus_web::error::WebError;
use nexus_web::records::{is_htmx, redirect};
use nexus_web::session::{Auth, FormSubmit, JsonSubmit};
use nexus_web::views;

/// How many moves the Stock page lists.
const RECENT: usize = 15;

fn all() -> ListQuery {
    ListQuery {
        limit: usize::MAX,
        ..Default::default()
    }
}

fn urlencode(s: &str) -> String {
    serde_urlencoded::to_string([("v", s)])
        .map(|q| q.trim_start_matches("v=").to_owned())
        .unwrap_or_default()
}

/// Every message of a refusal, one per field.
fn messages(errors: &FieldErrors) -> Vec<String> {
    errors.0.iter().map(|(_, m)| m.clone()).collect()
}

// ---------------------------------------------------------------- the Stock page

struct Lists {
    items: Vec<Row<StockItemRecord>>,
    warehouses: Vec<Row<WarehouseRecord>>,
    /// The latest invoices, to link a move to.
    invoices: Vec<Row<InvoiceRecord>>,
    chart: Chart,
}

fn lists(state: &AppState, auth: &Auth) -> Result<Lists, WebError> {
    let who = auth.who();
    Ok(Lists {
        items: rows(state, who, &all())?,
        warehouses: rows(state, who, &all())?,
        invoices: rows(
            state,
            who,
            &ListQuery {
                descending: true,
                limit: 200,
                ..Default::default()
            },
        )?,
        chart: ledger_books::chart(&state.kernel, who)?,
    })
}

fn item_label(r: &Row<StockItemRecord>) -> String {
    match &r.units {
        Some(units) => format!("{} {} ({}; {units})", r.code, r.name, r.base_unit),
        None => format!("{} {} ({})", r.code, r.name, r.base_unit),
    }
}

fn move_forms(
    auth: &Auth,
    lists: &Lists,
    typed: &[(String, String)],
    default_date: &str,
) -> Markup {
    let items = options(&lists.items, item_label);
    let warehouses = options(&lists.warehouses, |r| r.name.clone());
    let accounts = account_options(&lists.chart, |_| true);
    let documents = options(&lists.invoices, |r| {
        format!("{} · {}", r.number, r.kind.name())
    });
    let kind_typed = field(typed, "kind").unwrap_or("");
    let get = |kind: &str, name: &str| -> String {
        if kind_typed.eq_ignore_ascii_case(kind) {
            field(typed, name).unwrap_or("").to_owned()
        } else if name == "date" {
            default_date.to_owned()
        } else {
            String::new()
        }
    };
    let form = |kind: &str, title: &str, help: &str, button: &str| {
        let k = kind.to_lowercase();
        let id = |f: &str| format!("{k}-{f}");
        html! {
            div .card .spaced {
                h2 { (title) }
                p { (help) }
                form .record-form method="post" action="/ledger/stock/moves" {
                    input type="hidden" name="_csrf" value=(auth.csrf());
                    input type="hidden" name="kind" value=(kind);
                    div .fields {
                        div .field { label for=(id("date")) { "Date" } input id=(id("date")) type="date" name="date" required value=(get(kind, "date")); }
                        div .field { label for=(id("item")) { "Item" } (select("item", &id("item"), "Item", &items, &get(kind, "item"), None)) }
                        div .field {
                            label for=(id("warehouse")) { @if kind == "Transfer" { "From" } @else { "Warehouse" } }
                            (select("warehouse", &id("warehouse"), "Warehouse", &warehouses, &get(kind, "warehouse"), None))
                        }
                        @if kind == "Transfer" {
                            div .field { label for=(id("to")) { "To" } (select("to_warehouse", &id("to"), "To", &warehouses, &get(kind, "to_warehouse"), None)) }
                        }
                        div .field {
                            label for=(id("qty")) { @if kind == "Adjustment" { "Quantity (+ found, − missing)" } @else { "Quantity" } }
                            input id=(id("qty")) type="text" inputmode="decimal" name="qty" required value=(get(kind, "qty"));
                        }
                        div .field { label for=(id("unit")) { "Unit (empty: base unit)" } input id=(id("unit")) type="text" name="unit" value=(get(kind, "unit")); }
                        @if kind == "Receipt" {
                            div .field { label for=(id("cost")) { "Total cost" } input id=(id("cost")) type="text" inputmode="decimal" name="cost" required value=(get(kind, "cost")); }
                            div .field { label for=(id("account")) { "Credit account" } (select("account", &id("account"), "Credit account", &accounts, &get(kind, "account"), Some("2130 Goods received not invoiced (default)"))) }
                        }
                        @if kind == "Adjustment" {
                            div .field { label for=(id("cost")) { "Unit cost of an increase (optional)" } input id=(id("cost")) type="text" inputmode="decimal" name="cost" value=(get(kind, "cost")); }
                            div .field { label for=(id("account")) { "Other side" } (select("account", &id("account"), "Other side", &accounts, &get(kind, "account"), Some("The item's cost of goods sold (default)"))) }
                        }
                        div .field { label for=(id("reference")) { "Reference" } input id=(id("reference")) type="text" name="reference" maxlength="40" value=(get(kind, "reference")); }
                        div .field { label for=(id("document")) { "Invoice" } (select("document", &id("document"), "Invoice", &documents, &get(kind, "document"), Some("—"))) }
                    }
                    div .form-actions { button .primary type="submit" { (button) } }
                }
            }
        }
    };
    html! {
        (form("Receipt", "Receive goods", "Dr stock / Cr goods received not invoiced (2130 by default), at the total cost.", "Receive"))
        (form("Delivery", "Deliver goods", "Issued at cost (FIFO or moving average): Dr cost of goods sold / Cr stock.", "Deliver"))
        (form("Transfer", "Transfer between warehouses", "At cost; the items' stock account is the same in both, so nothing is posted.", "Transfer"))
        (form("Adjustment", "Count adjustment", "Found more (+) or less (−) than the books say; an increase without a unit cost is valued at the current cost.", "Adjust"))
    }
}

fn stock_body(
    state: &AppState,
    auth: &Auth,
    typed: &[(String, String)],
    errors: &[String],
) -> Result<Markup, WebError> {
    let who = auth.who();
    let lists = lists(state, auth)?;
    let policy = stock::negative_stock(&state.kernel, who)?;
    let recent = rows::<StockMoveRecord>(
        state,
        who,
        &ListQuery {
            descending: true,
            limit: RECENT,
            ..Default::default()
        },
    )?;
    let item_titles: BTreeMap<u64, String> =
        lists.items.iter().map(|r| (r.id, r.code.clone())).collect();
    let can_move = who.can(STOCK_MOVE.name, Action::Create);
    let today = format_date(today(state));
    Ok(html! {
        header .page-head {
            div { a href="/m/ledger" { "← Ledger" } h1 { "Stock" } div .meta { (who.company_name) } }
            div .actions {
                a .button href="/ledger/stock/valuation" { "Stock valuation" }
                a .button href="/e/stock_item" { "Items" }
                a .button href="/ledger/stock/items/new" { "New item" }
                a .button href="/e/warehouse" { "Warehouses" }
                a .button href="/e/stock_move" { "All moves" }
            }
        }
        @for e in errors { div .form-error role="alert" { (e) } }
        @if lists.items.is_empty() || lists.warehouses.is_empty() {
            div .notice {
                "Moves need an item and a warehouse: "
                a href="/ledger/stock/items/new" { "add an item" } " and "
                a href="/e/warehouse/new" { "a warehouse" } "."
            }
        }
        div .card .spaced {
            h2 { "Latest moves" }
            div .table-wrap {
                table {
                    thead { tr { th { "Number" } th { "Date" } th { "Kind" } th { "Item" } th .num { "Quantity" } th .num { "Value" } th { "Reference" } th { "Entry" } th { "Status" } } }
                    tbody {
                        @for m in &recent {
                            @let item = m.item;
                            tr {
                                td { a href={ "/e/stock_move/" (m.id) } { (m.number) } }
                                td { (m.date) }
                                td { (m.kind.name()) }
                                td { a href={ "/ledger/stock/items/" (item) } { (item_titles.get(&item).cloned().unwrap_or_default()) } }
                                td .num { (m.qty) " " (show(&m.unit)) }
                                td .num { (format_money(m.value)) }
                                td { (show(&m.reference)) }
                                td { @if let Some(e) = m.entry { a href={ "/ledger/journal/" (e) } { "#" (e) } } }
                                td { (m.status) }
                            }
                        }
                        @if recent.is_empty() { tr .empty { td colspan="9" { "No stock moves yet." } } }
                    }
                }
            }
            p { "A move is never edited: open its item to cancel a receipt or a delivery by the reverse move." }
        }
        @if can_move { (move_forms(auth, &lists, typed, &today)) }
        @if who.can(STOCK_ITEM.name, Action::Write) {
            div .card .spaced {
                h2 { "Negative stock" }
                p { "Refused by default: a delivery beyond what is on hand is refused with a message. Allowed, it is issued at the last known cost and the next receipt settles it. An item may override this." }
                form .inline method="post" action="/ledger/stock/settings" {
                    input type="hidden" name="_csrf" value=(auth.csrf());
                    label for="neg-policy" { "Company setting" }
                    select #neg-policy name="negative_stock" {
                        option value="Refuse" selected[policy == NegativeStockPolicy::Refuse] { "Refuse" }
                        option value="Allow" selected[policy == NegativeStockPolicy::Allow] { "Allow" }
                    }
                    button type="submit" { "Save" }
                }
            }
        }
    })
}

/// `GET /ledger/stock`
pub async fn stock_page(
    State(state): State<AppState>,
    auth: Auth,
    RawQuery(raw): RawQuery,
) -> Result<Markup, WebError> {
    let mut toasts = Vec::new();
    for (k, v) in query_pairs(raw.as_deref())? {
        match k.as_str() {
            "done" => toasts.push(Toast::success(format!("{v} entered"))),
            "saved" => toasts.push(Toast::success("Negative-stock setting saved")),
            _ => {}
        }
    }
    let body = stock_body(&state, &auth, &[], &[])?;
    Ok(views::page(&auth, "Stock", "ledger", body, toasts))
}

fn optional_id(raw: &str, field_name: &str, errors: &mut FieldErrors) -> Option<u64> {
    let raw = raw.trim();
    if raw.is_empty() {
        return None;
    }
    match raw.parse::<u64>() {
        Ok(id) if id > 0 => Some(id),
        _ => {
            errors.push(field_name, format!("\"{raw}\" is not a record id"));
            None
        }
    }
}

/// Reads a move from text fields (the form, or the API's strings).
fn move_from(get: &dyn Fn(&str) -> String) -> Result<MoveInput, FieldErrors> {
    let mut errors = FieldErrors::default();
    let kind = MoveType::parse(&get("kind"));
    if kind.is_none() {
        errors.push("kind", "choose receipt, delivery, transfer or adjustment");
    }
    let date = parse_date(&get("date"))
        .map_err(|m| errors.push("date", m))
        .ok();
    let item = optional_id(&get("item"), "item", &mut errors);
    let warehouse = optional_id(&get("warehouse"), "warehouse", &mut errors);
    if item.is_none() {
        errors.push("item", "choose an item");
    }
    if warehouse.is_none() {
        errors.push("warehouse", "choose a warehouse");
    }
    let to_warehouse = optional_id(&get("to_warehouse"), "to_warehouse", &mut errors);
    let qty = Quantity::parse(&get("qty"))
        .map_err(|e| errors.push("qty", e.to_string()))
        .ok();
    let cost = match get("cost").trim() {
        "" => None,
        raw => parse_money(raw).map_err(|m| errors.push("cost", m)).ok(),
    };
    let account = optional_id(&get("account"), "account", &mut errors);
    let document = optional_id(&get("document"), "document", &mut errors);
    match (kind, date, item, warehouse, qty) {
        (Some(kind), Some(date), Some(item), Some(warehouse), Some(qty)) if errors.is_empty() => {
            Ok(MoveInput {
                kind,
                date,
                item,
                warehouse,
                to_warehouse,
                qty,
                unit: get("unit").trim().to_owned(),
                cost,
                account,
                reference: get("reference").trim().to_owned(),
                document,
            })
        }
        _ => Err(errors),
    }
}

/// `POST /ledger/stock/moves`: a refused move comes back with its message.
pub async fn post_move(
    State(state): State<AppState>,
    submit: FormSubmit,
) -> Result<Response, WebError> {
    let FormSubmit { auth, pairs, .. } = submit;
    let get = |k: &str| field(&pairs, k).unwrap_or("").to_owned();
    let result = match move_from(&get) {
        Ok(input) => stock::record_move(&state.kernel, auth.who(), input).await,
        Err(errors) => Err(KernelError::Invalid(errors)),
    };
    match result {
        Ok(moved) => Ok(Redirect::to(&format!(
            "/ledger/stock?done={}",
            urlencode(&moved.record.number)
        ))
        .into_response()),
        Err(KernelError::Invalid(errors)) => {
            let body = stock_body(&state, &auth, &pairs, &messages(&errors))?;
            let page = views::page(&auth, "Stock", "ledger", body, Vec::new());
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /ledger/stock/moves/{id}/cancel`
pub async fn cancel_move(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    submit: FormSubmit,
) -> Result<Response, WebError> {
    let id = parse_id(&id)?;
    let moved = stock::cancel_move(&state.kernel, submit.auth.who(), id, today(&state)).await?;
    let item = moved.record.item;
    Ok(redirect(
        is_htmx(&headers),
        &format!(
            "/ledger/stock/items/{item}?done={}",
            urlencode(&moved.record.number)
        ),
    ))
}

/// `POST /ledger/stock/settings`
pub async fn set_policy(
    State(state): State<AppState>,
    submit: FormSubmit,
) -> Result<Response, WebError> {
    let policy = match field(&submit.pairs, "negative_stock").unwrap_or("") {
        "Allow" => NegativeStockPolicy::Allow,
        "Refuse" => NegativeStockPolicy::Refuse,
        other => {
            return Err(KernelError::invalid(
                "negative_stock",
                format!("\"{other}\" is not a setting: choose Refuse or Allow"),
            )
            .into());
        }
    };
    stock::set_negative_stock(&state.kernel, submit.auth.who(), policy).await?;
    Ok(Redirect::to("/ledger/stock?saved=1").into_response())
}

// ---------------------------------------------------------------- items

fn item_form(
    auth: &Auth,
    chart: &Chart,
    action: &str,
    typed: &dyn Fn(&str) -> String,
    errors: Option<&FieldErrors>,
) -> Markup {
    let accounts = account_options(chart, |_| true);
    let err = |f: &str| errors.and_then(|e| e.get(f)).map(str::to_owned);
    let text = |name: &str, label: &str, help: &str| {
        let e = err(name);
        html! {
            div .field .invalid[e.is_some()] {
                label for={ "item-" (name) } { (label) }
                input id={ "item-" (name) } type="text" name=(name) value=(typed(name));
                @if !help.is_empty() { div .help { (help) } }
                @if let Some(e) = &e { div .field-error { (e) } }
            }
        }
    };
    let choice = |name: &str, label: &str, opts: &[(String, String)], blank: Option<&str>| {
        let e = err(name);
        html! {
            div .field .invalid[e.is_some()] {
                label for={ "item-" (name) } { (label) }
                (select(name, &format!("item-{name}"), label, opts, &typed(name), blank))
                @if let Some(e) = &e { div .field-error { (e) } }
            }
        }
    };
    let choices = |options: &[&str]| -> Vec<(String, String)> {
        options
            .iter()
            .map(|m| ((*m).to_owned(), (*m).to_owned()))
            .collect()
    };
    let methods = choices(ValuationMethod::OPTIONS);
    let policies = choices(NegativeStockPolicy::OPTIONS);
    let decimals: Vec<(String, String)> = (0..=3).map(|d| (d.to_string(), d.to_string())).collect();
    html! {
        form .record-form method="post" action=(action) novalidate {
            @if let Some(e) = errors {
                div .form-error role="alert" { "Please correct the highlighted fields." }
                @for (f, m) in &e.0 {
                    @if !["code", "name", "base_unit", "decimals", "units", "method", "negative_stock", "stock_account", "cogs_account"].contains(&f.as_str()) {
                        div .form-error role="alert" { (m) }
                    }
                }
            }
            input type="hidden" name="_csrf" value=(auth.csrf());
            div .fields {
                (text("code", "Code", "Short and unique, e.g. W-100."))
                (text("name", "Name", ""))
                (text("base_unit", "Base unit", "The unit stock is kept in, e.g. pcs or kg."))
                (choice("decimals", "Decimals of the base unit", &decimals, None))
                (text("units", "Other units", "e.g. box=12, pallet=480"))
                (choice("method", "Valuation", &methods, None))
                (choice("negative_stock", "Negative stock", &policies, Some("Company setting")))
                (choice("stock_account", "Stock account", &accounts, Some("1300 (default)")))
                (choice("cogs_account", "Cost of goods sold", &accounts, Some("5100 (default)")))
            }
            div .form-actions {
                button .primary type="submit" { "Save item" }
                a .button href="/ledger/stock" { "Cancel" }
            }
        }
    }
}

fn item_from(pairs: &[(String, String)]) -> Result<ItemInput, FieldErrors> {
    let get = |k: &str| field(pairs, k).unwrap_or("").trim().to_owned();
    let mut errors = FieldErrors::default();
    let decimals = match get("decimals").as_str() {
        "" => 0,
        raw => raw
            .parse::<u8>()
            .ok()
            .filter(|d| *d <= 3)
            .unwrap_or_else(|| {
                errors.push("decimals", "choose 0 to 3 decimals");
                0
            }),
    };
    let method = match get("method").as_str() {
        "" => ValuationMethod::Fifo,
        other => ValuationMethod::from_name(other).unwrap_or_else(|| {
            errors.push(
                "method",
                format!(
                    "\"{other}\" is not one of {}",
                    ValuationMethod::OPTIONS.join(", ")
                ),
            );
            ValuationMethod::Fifo
        }),
    };
    let negative_stock = match get("negative_stock").as_str() {
        "" => None,
        other => {
            let policy = NegativeStockPolicy::from_name(other);
            if policy.is_none() {
                errors.push(
                    "negative_stock",
                    format!(
                        "\"{other}\" is not one of {}",
                        NegativeStockPolicy::OPTIONS.join(", ")
                    ),
                );
            }
            policy
        }
    };
    let stock_account = optional_id(&get("stock_account"), "stock_account", &mut errors);
    let cogs_account = optional_id(&get("cogs_account"), "cogs_account", &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(ItemInput {
        code: get("code"),
        name: get("name"),
        base_unit: get("base_unit"),
        decimals,
        units: get("units"),
        method,
        negative_stock,
        stock_account,
        cogs_account,
    })
}

fn item_form_page(auth: &Auth, title: &str, form: Markup) -> Markup {
    let body = html! {
        header .page-head { div { a href="/ledger/stock" { "← Stock" } h1 { (title) } } }
        div .card { (form) }
    };
    views::page(auth, title, "ledger", body, Vec::new())
}

/// `GET /ledger/stock/items/new`
pub async fn new_item(State(state): State<AppState>, auth: Auth) -> Result<Markup, WebError> {
    state
        .kernel
        .authorize(auth.who(), &STOCK_ITEM, Action::Create)?;
    let chart = ledger_books::chart(&state.kernel, auth.who())?;
    let typed = |k: &str| match k {
        "base_unit" => "pcs".to_owned(),
        "decimals" => "0".to_owned(),
        _ => String::new(),
    };
    let form = item_form(&auth, &chart, "/ledger/stock/items", &typed, None);
    Ok(item_form_page(&auth, "New item", form))
}

async fn save_item(
    state: &AppState,
    submit: FormSubmit,
    id: Option<u64>,
) -> Result<Response, WebError> {
    let FormSubmit { auth, pairs, .. } = submit;
    let result = match item_from(&pairs) {
        Ok(input) => stock::save_item(&state.kernel, auth.who(), id, input).await,
        Err(errors) => Err(KernelError::Invalid(errors)),
    };
    match result {
        Ok(rec) => {
            Ok(Redirect::to(&format!("/ledger/stock/items/{}?saved=1", rec.id)).into_response())
        }
        Err(KernelError::Invalid(errors)) => {
            let chart = ledger_books::chart(&state.kernel, auth.who())?;
            let typed = |k: &str| field(&pairs, k).unwrap_or("").to_owned();
            let action = match id {
                Some(id) => format!("/ledger/stock/items/{id}"),
                None => "/ledger/stock/items".to_owned(),
            };
            let form = item_form(&auth, &chart, &action, &typed, Some(&errors));
            let title = if id.is_some() {
                "Edit item"
            } else {
                "New item"
            };
            Ok((
                StatusCode::UNPROCESSABLE_ENTITY,
                item_form_page(&auth, title, form),
            )
                .into_response())
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /ledger/stock/items`
pub async fn create_item(
    State(state): State<AppState>,
    submit: FormSubmit,
) -> Result<Response, WebError> {
    save_item(&state, submit, None).await
}

/// `POST /ledger/stock/items/{id}`
pub async fn update_item(
    State(state): State<AppState>,
    Path(id): Path<String>,
    submit: FormSubmit,
) -> Result<Response, WebError> {
    let id = parse_id(&id)?;
    save_item(&state, submit, Some(id)).await
}

fn qty_cell(q: Quantity, unit: &str) -> String {
    format!("{q} {unit}")
}

/// `GET /ledger/stock/items/{id}`: on hand per warehouse, the stock card, the form.
pub async fn item_page(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Markup, WebError> {
    let who = auth.who();
    let id = parse_id(&id)?;
    let rec = state.kernel.read::<StockItemRecord>(who, id)?;
    let stock_now = stock::stock(&state.kernel, who)?;
    let currency = stock_now.currency;
    let moves = stock::moves(&state.kernel, who, id, currency)?;
    let domain: Vec<_> = moves.iter().map(|(_, m)| m.clone()).collect();
    let card = stock_now
        .stock_card(&domain, id, None)
        .map_err(|e| KernelError::Internal(e.to_string()))?;
    let records: BTreeMap<u64, &Row<StockMoveRecord>> =
        moves.iter().map(|(r, _)| (r.id, r)).collect();
    let on_hand: Vec<_> = stock_now
        .on_hand()
        .map_err(|e| KernelError::Internal(e.to_string()))?
        .into_iter()
        .filter(|o| o.item == id)
        .collect();
    let warehouse_name = |w: u64| {
        stock_now
            .warehouse(w)
            .map(|w| w.name.clone())
            .unwrap_or_else(|_| format!("#{w}"))
    };
    let unit = rec.base_unit.clone();
    let money = |m: i64| amount(m, currency);
    let can_cancel = who.can(STOCK_MOVE.name, Action::Create);
    let mut toasts = Vec::new();
    for (k, v) in query_pairs(raw.as_deref())? {
        match k.as_str() {
            "saved" => toasts.push(Toast::success("Item saved")),
            "done" => toasts.push(Toast::success(format!("{v} entered as the reverse move"))),
            _ => {}
        }
    }
    let chart = ledger_books::chart(&state.kernel, who)?;
    // The form shows the item's fields as stored, by field name.
    let values = rec.to_values();
    let typed = |k: &str| -> String {
        match values.get(k) {
            Some(nexus_kernel::Value::Ref(r)) => r.to_string(),
            Some(nexus_kernel::Value::Int(n)) => n.to_string(),
            Some(v) => v.as_text().unwrap_or_default().to_owned(),
            None => String::new(),
        }
    };
    let form = item_form(
        &auth,
        &chart,
        &format!("/ledger/stock/items/{id}"),
        &typed,
        None,
    );
    let title = format!("{} {}", rec.code, rec.name);
    let (total_qty, total_value) = on_hand.iter().fold((Quantity::ZERO, 0i64), |(q, v), o| {
        (
            q.checked_add(o.qty).unwrap_or(q),
            v.saturating_add(o.value.minor()),
        )
    });
    let body = html! {
        header .page-head {
            div {
                a href="/ledger/stock" { "← Stock" }
                h1 { (title) }
                div .meta { (rec.method.name()) " · base unit " (unit) }
            }
            div .actions { a .button href={ "/e/stock_item/" (id) } { "Record & history" } }
        }
        div .card .spaced {
            h2 { "On hand" }
            div .table-wrap {
                table {
                    thead { tr { th { "Warehouse" } th .num { "Quantity" } th .num { "Unit cost" } th .num { "Value" } } }
                    tbody {
                        @for o in &on_hand {
                            tr {
                                td { (o.warehouse_name) }
                                td .num { (qty_cell(o.qty, &o.unit)) }
                                td .num { @if let Some(c) = o.unit_cost { (money(c.minor())) } }
                                td .num { (money(o.value.minor())) }
                            }
                        }
                        @if on_hand.is_empty() { tr .empty { td colspan="4" { "Nothing on hand." } } }
                    }
                    tfoot { tr { th { "Total" } th .num { (qty_cell(total_qty, &unit)) } th {} th .num { (money(total_value)) } } }
                }
            }
        }
        div .card .spaced {
            h2 { "Stock card" }
            div .table-wrap {
                table {
                    thead { tr {
                        th { "Date" } th { "Move" } th { "What" } th { "Warehouse" } th { "Reference" }
                        th .num { "Quantity" } th .num { "Value" } th .num { "Running qty" } th .num { "Running value" } th { "Entry" } th {}
                    } }
                    tbody {
                        @for row in &card {
                            @let r = records.get(&row.move_id);
                            tr {
                                td { (format_date(row.date)) }
                                td { @if let Some(r) = r { a href={ "/e/stock_move/" (r.id) } { (r.number) } } }
                                td { (row.what) }
                                td { (warehouse_name(row.warehouse)) }
                                td { (row.reference) }
                                td .num { (row.qty) }
                                td .num { (money(row.value.minor())) }
                                td .num { (row.running_qty) }
                                td .num { (money(row.running_value.minor())) }
                                td { @if let Some(e) = r.and_then(|r| r.entry) { a href={ "/ledger/journal/" (e) } { "#" (e) } } }
                                td {
                                    @if let Some(r) = r {
                                        @if r.status == MoveStatus::Cancelled {
                                            "cancelled"
                                        } @else if can_cancel && r.reverses.is_none() && matches!(r.kind, MoveType::Receipt | MoveType::Delivery) && row.what != "transfer in" {
                                            form method="post" action={ "/ledger/stock/moves/" (r.id) "/cancel" }
                                                hx-post={ "/ledger/stock/moves/" (r.id) "/cancel" }
                                                hx-confirm={ "Cancel " (r.number) " by the reverse move, dated today?" } {
                                                input type="hidden" name="_csrf" value=(auth.csrf());
                                                button .danger type="submit" { "Cancel" }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                        @if card.is_empty() { tr .empty { td colspan="11" { "No moves yet." } } }
                    }
                }
            }
            p { "Moves are valued in the order they were entered. A receipt or delivery is cancelled by the reverse move; a transfer by a transfer back; an adjustment by another count." }
        }
        @if who.can(STOCK_ITEM.name, Action::Write) {
            div .card .spaced {
                h2 { "Edit" }
                p { "The valuation method, base unit and stock account are fixed once the item has moves." }
                (form)
            }
        }
    };
    Ok(views::page(&auth, &title, "ledger", body, toasts))
}

// ---------------------------------------------------------------- valuation report

fn valuation_sheet(
    state: &AppState,
    auth: &Auth,
    as_of: Option<Date>,
) -> Result<(Sheet, Option<String>), WebError> {
    let who = auth.who();
    let (stock_now, reconciliation) = stock::valuation_at(&state.kernel, who, as_of)?;
    let currency: Currency = stock_now.currency;
    let lines = stock_now
        .on_hand()
        .map_err(|e| KernelError::Internal(e.to_string()))?;
    let mut rows = Vec::new();
    let mut total = 0i64;
    for (warehouse_id, warehouse) in &stock_now.warehouses {
        let here: Vec<_> = lines
            .iter()
            .filter(|l| l.warehouse == *warehouse_id)
            .collect();
        if here.is_empty() {
            continue;
        }
        let mut sum = 0i64;
        for l in here {
            sum = sum.saturating_add(l.value.minor());
            rows.push(
                SheetRow::new(vec![
                    Cell::Text(warehouse.name.clone()),
                    Cell::Text(l.item_label.clone()),
                    Cell::Text(l.qty.to_string()),
                    Cell::Text(l.unit.clone()),
                    l.unit_cost.map_or(Cell::Empty, |c| Cell::Money(c.minor())),
                    Cell::Money(l.value.minor()),
                ])
                .link(format!("/ledger/stock/items/{}", l.item)),
            );
        }
        total = total.saturating_add(sum);
        rows.push(
            SheetRow::new(vec![
                Cell::Text(warehouse.name.clone()),
                Cell::Text("Total".into()),
                Cell::Empty,
                Cell::Empty,
                Cell::Empty,
                Cell::Money(sum),
            ])
            .bold(),
        );
    }
    let mut warning = None;
    for r in &reconciliation {
        let label = r.account.label();
        for (what, minor) in [
            ("stock value (moves)", r.valuation),
            ("ledger balance", r.ledger),
            ("difference", r.ledger.saturating_sub(r.valuation)),
        ] {
            rows.push(
                SheetRow::new(vec![
                    Cell::Text(format!("Account {label}")),
                    Cell::Text(what.into()),
                    Cell::Empty,
                    Cell::Empty,
                    Cell::Empty,
                    Cell::Money(minor),
                ])
                .link(format!("/ledger/accounts/{}", r.account.id))
                .bold(),
            );
        }
        if r.valuation != r.ledger {
            warning = Some(format!(
                "The balance of {label} ({}) differs from the stock value ({}) by {}: \
                 postings to the account that did not come from stock moves (journal \
                 entries, invoices) are not in the stock.",
                amount(r.ledger, currency),
                amount(r.valuation, currency),
                amount(r.ledger.saturating_sub(r.valuation), currency)
            ));
        }
    }
    let sheet = Sheet {
        title: "Stock valuation".into(),
        subtitle: format!(
            "{} · {} · {}",
            who.company_name,
            as_of.map_or_else(
                || "on hand now".to_owned(),
                |d| format!("at the end of {}", format_date(d))
            ),
            currency.code()
        ),
        currency,
        columns: vec![
            ("Warehouse".into(), Align::Left),
            ("Item".into(), Align::Left),
            ("Quantity".into(), Align::Right),
            ("Unit".into(), Align::Left),
            ("Unit cost".into(), Align::Right),
            ("Value".into(), Align::Right),
        ],
        rows,
        footer: Some(SheetRow::new(vec![
            Cell::Text("Total".into()),
            Cell::Empty,
            Cell::Empty,
            Cell::Empty,
            Cell::Empty,
            Cell::Money(total),
        ])),
    };
    Ok((sheet, warning))
}

/// `GET /ledger/stock/valuation` (`?format=json|xlsx|pdf`): stock on hand and its value
/// per item × warehouse, totals per warehouse, and each stock account's balance beside
/// the stock value kept in it.
pub async fn valuation_page(
    State(state): State<AppState>,
    auth: Auth,
    RawQuery(raw): RawQuery,
) -> Result<Response, WebError> {
    let mut as_of = None;
    for (k, v) in query_pairs(raw.as_deref())? {
        if k == "as_of" && !v.trim().is_empty() {
            as_of = Some(parse_date(&v).map_err(|m| WebError::Malformed(format!("as_of: {m}")))?);
        }
    }
    let (sheet, warning) = valuation_sheet(&state, &auth, as_of)?;
    let form = html! {
        p { a href="/ledger/stock" { "← Stock" } " · Values at cost (FIFO or moving average) from the positions kept by the stock moves." }
        form .filters method="get" action="/ledger/stock/valuation" {
            label for="v-asof" { "At the end of" }
            input #v-asof type="date" name="as_of" value=(as_of.map(format_date).unwrap_or_default());
            button type="submit" { "Show" }
        }
    };
    respond(&auth, &sheet, raw.as_deref(), form, warning, now(&state))
}

// ---------------------------------------------------------------- JSON API

/// `POST /api/v1/ledger/stock/moves`: `{"kind": "receipt", "date": "2026-01-31",
/// "item": 12, "warehouse": 3, "qty": "10", "unit": "pcs", "cost": "100.00",
/// "reference": "PO-1"}` (`to_warehouse` for a transfer; `account` optional).
pub async fn api_post_move(
    State(state): State<AppState>,
    submit: JsonSubmit,
) -> Result<Response, WebError> {
    let obj = &submit.object;
    let mut text: BTreeMap<&str, String> = BTreeMap::new();
    for key in [
        "kind",
        "date",
        "item",
        "warehouse",
        "to_warehouse",
        "qty",
        "unit",
        "cost",
        "account",
        "reference",
        "document",
    ] {
        let value = match obj.get(key) {
            None | Some(J::Null) => String::new(),
            Some(J::String(s)) => s.clone(),
            Some(J::Number(n)) => n.to_string(),
            Some(_) => {
                return Err(WebError::Malformed(format!(
                    "\"{key}\" must be a string or a number"
                )));
            }
        };
        text.insert(key, value);
    }
    let get = |k: &str| text.get(k).cloned().unwrap_or_default();
    let input = move_from(&get).map_err(KernelError::Invalid)?;
    let moved = stock::record_move(&state.kernel, submit.auth.who(), input).await?;
    let rec = &moved.record;
    let mut res = (
        StatusCode::CREATED,
        Json(json!({
            "id": rec.id,
            "number": rec.number,
            "qty": moved.valuation.qty.to_string(),
            "value": moved.valuation.value.decimal(),
            "entry": moved.entry.as_ref().map(|e| e.id),
        })),
    )
        .into_response();
    if let Ok(loc) = HeaderValue::from_str(&format!("/api/v1/stock_move/{}", rec.id)) {
        res.headers_mut().insert(header::LOCATION, loc);
    }
    Ok(res)
}
