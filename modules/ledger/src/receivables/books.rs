//! Receivables and payables on the store: issuing invoices and credit notes, registering
//! payments with their allocations, and reading open items, aging and reminders.
//!
//! Each command is one store transaction: the document (or payment) record and its
//! lines, its journal entry (posted through [`crate::books::post_draft`], with the
//! maintained totals), and the open items it creates or settles.
//!
//! # Keys in the `ledger` table
//! * `r | company | ledger | party | source | id` → an [`OpenItem`] ([`encode_item`]):
//!   `ledger` is 0 for receivables, 1 for payables; `source` 0 for a document, 1 for a
//!   payment's credit on account. Settled items are removed; the document records keep
//!   their history (`open`, `status`, allocations).
//! * `i | company | kind` → the last number given to documents of `kind` (0..=3); `i |
//!   company | 9` → the last payment number.
//! * `d | company | document` → the document's tax rows as issued (name, base, tax),
//!   so it prints as it was whatever later happens to the tax table.
//!
//! Invariant: for each ledger, the control account's balance equals the sum of the open
//! items' `booked_open` (the domain keeps it per settlement; the commands write the
//! items and the entry together, so it holds after every command).

use crate::entities::LEDGER;
use std::collections::BTreeMap;
use std::ops::ControlFlow;

use crate::entities::SUPPLIER;
use crate::parties::customer;
use nexus_kernel::bytes::{decode_u64, prefix_end, u64_key};
use nexus_kernel::{
    Action, Command, EntityDef, Kernel, KernelError, ListQuery, Principal, Record, Value,
};
use time::Date;

use super::entities::{ALLOCATION, EXCHANGE_RATE, INVOICE, INVOICE_LINE, PAYMENT, TAX};
use super::{
    Aging, Allocation, Document, DocumentKind, DocumentLine, ItemId, Ledger, OpenItem, Payment,
    PaymentKind, PaymentTerms, Percent, PostingAccounts, Quantity, ReceivablesError, Reminder, Tax,
};
use crate::books::{company_currency, company_key, post_draft};
use crate::codec::{Reader, Writer};
use crate::{Currency, Rate};

fn refuse(e: ReceivablesError) -> KernelError {
    KernelError::invalid("lines", e.to_string())
}

fn damaged() -> KernelError {
    KernelError::Internal("an open item is damaged".into())
}

// ---------------------------------------------------------------- open items

const fn ledger_byte(ledger: Ledger) -> u8 {
    match ledger {
        Ledger::Receivable => 0,
        Ledger::Payable => 1,
    }
}

fn ledger_prefix(company: u64, ledger: Ledger) -> Vec<u8> {
    let mut k = company_key(b'r', company);
    k.push(ledger_byte(ledger));
    k
}

fn party_prefix(company: u64, ledger: Ledger, party: u64) -> Vec<u8> {
    let mut k = ledger_prefix(company, ledger);
    k.extend_from_slice(&u64_key(party));
    k
}

fn item_key(company: u64, item: &OpenItem) -> Vec<u8> {
    let mut k = party_prefix(company, item.ledger, item.party);
    let (source, id) = match item.id {
        ItemId::Document(id) => (0, id),
        ItemId::Payment(id) => (1, id),
    };
    k.push(source);
    k.extend_from_slice(&u64_key(id));
    k
}

/// `number | date | currency | exponent | rate | amount | open | booked | booked_open |
/// due…`, in the ledger's [`crate::codec`] layout.
fn encode_item(item: &OpenItem) -> Vec<u8> {
    let mut w = Writer::default();
    w.str(&item.number)
        .date(item.date)
        .str(item.currency.code())
        .u8(item.currency.exponent())
        .str(&item.rate.map(|r| r.to_string()).unwrap_or_default());
    for n in [item.amount, item.open, item.booked, item.booked_open] {
        w.i64(n);
    }
    let n = w.count(item.due.len());
    for (date, amount) in item.due.iter().take(n) {
        w.date(*date).i64(*amount);
    }
    w.finish()
}

fn decode_item(key: &[u8], value: &[u8]) -> Result<OpenItem, KernelError> {
    // key: tag, company (8), ledger (1), party (8), source (1), id (8)
    let ledger = match key.get(9) {
        Some(0) => Ledger::Receivable,
        Some(1) => Ledger::Payable,
        _ => return Err(damaged()),
    };
    let party = key.get(10..18).and_then(decode_u64).ok_or_else(damaged)?;
    let id = key.get(19..27).and_then(decode_u64).ok_or_else(damaged)?;
    let id = match key.get(18) {
        Some(0) => ItemId::Document(id),
        Some(1) => ItemId::Payment(id),
        _ => return Err(damaged()),
    };
    let mut r = Reader::new(value, "an open item");
    let number = r.str()?;
    let date = r.date()?;
    let code = r.str()?;
    let exponent = r.u8()?;
    let currency = Currency::with_exponent(&code, exponent).map_err(|_| damaged())?;
    let rate = match r.str()? {
        s if s.is_empty() => None,
        s => Some(Rate::parse(&s).map_err(|_| damaged())?),
    };
    let (amount, open, booked, booked_open) = (r.i64()?, r.i64()?, r.i64()?, r.i64()?);
    let n = r.count()?;
    let mut due = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        due.push((r.date()?, r.i64()?));
    }
    Ok(OpenItem {
        id,
        ledger,
        party,
        number,
        date,
        currency,
        rate,
        amount,
        open,
        booked,
        booked_open,
        due,
    })
}

fn items_in(cmd: &Command<'_, '_, '_>, prefix: &[u8]) -> Result<Vec<OpenItem>, KernelError> {
    cmd.scan_prefix(prefix)?
        .iter()
        .map(|(k, v)| decode_item(k, v))
        .collect()
}

fn write_item(cmd: &mut Command<'_, '_, '_>, item: &OpenItem) {
    let key = item_key(cmd.who().company, item);
    if item.is_settled() {
        cmd.delete(key);
    } else {
        cmd.put(key, encode_item(item));
    }
}

/// The company's open items of `ledger`, as committed.
pub fn open_items(
    kernel: &Kernel,
    who: &Principal,
    ledger: Ledger,
) -> Result<Vec<OpenItem>, KernelError> {
    kernel.authorize(who, &INVOICE, Action::Read)?;
    let prefix = ledger_prefix(who.company, ledger);
    let end = prefix_end(&prefix).unwrap_or_default();
    let mut items = Vec::new();
    let mut failed = None;
    kernel
        .module_state(&LEDGER)?
        .scan(
            prefix.as_slice()..end.as_slice(),
            false,
            |k, v| match decode_item(k, v) {
                Ok(item) => {
                    items.push(item);
                    ControlFlow::Continue(())
                }
                Err(e) => {
                    failed = Some(e);
                    ControlFlow::Break(())
                }
            },
        )?;
    match failed {
        Some(e) => Err(e),
        None => Ok(items),
    }
}

// ---------------------------------------------------------------- numbers and lookups

fn next_number(
    cmd: &mut Command<'_, '_, '_>,
    slot: u8,
    prefix: &str,
) -> Result<String, KernelError> {
    let mut key = company_key(b'i', cmd.who().company);
    key.push(slot);
    let n = cmd.get(&key)?.and_then(|b| decode_u64(&b)).unwrap_or(0) + 1;
    cmd.put(key, u64_key(n).to_vec());
    Ok(format!("{prefix}-{n:06}"))
}

fn kind_slot(kind: DocumentKind) -> (u8, &'static str) {
    match kind {
        DocumentKind::SalesInvoice => (0, "INV"),
        DocumentKind::SalesCreditNote => (1, "CN"),
        DocumentKind::PurchaseInvoice => (2, "BILL"),
        DocumentKind::PurchaseCreditNote => (3, "DN"),
    }
}

/// The stored name of a document kind, and back.
pub fn document_kind(label: &str) -> Option<DocumentKind> {
    [
        DocumentKind::SalesInvoice,
        DocumentKind::SalesCreditNote,
        DocumentKind::PurchaseInvoice,
        DocumentKind::PurchaseCreditNote,
    ]
    .into_iter()
    .find(|k| k.label() == label)
}

/// The stored name of a payment kind ([`super::entities::PAYMENT_KINDS`]), and back.
pub const fn payment_kind_name(kind: PaymentKind) -> &'static str {
    match kind {
        PaymentKind::CustomerReceipt => "Customer receipt",
        PaymentKind::CustomerRefund => "Customer refund",
        PaymentKind::SupplierPayment => "Supplier payment",
        PaymentKind::SupplierRefund => "Supplier refund",
    }
}

/// The payment kind stored as `name`.
pub fn payment_kind(name: &str) -> Option<PaymentKind> {
    [
        PaymentKind::CustomerReceipt,
        PaymentKind::CustomerRefund,
        PaymentKind::SupplierPayment,
        PaymentKind::SupplierRefund,
    ]
    .into_iter()
    .find(|k| payment_kind_name(*k) == name)
}

/// The party entity and the record field naming it, for a ledger.
fn party_of(ledger: Ledger) -> Result<(&'static EntityDef, &'static str), KernelError> {
    match ledger {
        Ledger::Receivable => Ok((customer()?, "customer")),
        Ledger::Payable => Ok((&SUPPLIER, "supplier")),
    }
}

/// The rate of `currency` on `date`: the latest exchange-rate record on or before it.
pub fn rate_on(
    kernel: &Kernel,
    who: &Principal,
    currency: Currency,
    date: Date,
) -> Result<Rate, KernelError> {
    let query = ListQuery {
        sort: Some("date".into()),
        descending: true,
        filters: vec![("currency".into(), currency.code().to_owned())],
        limit: usize::MAX,
        ..Default::default()
    };
    let page = kernel.list(who, &EXCHANGE_RATE, &query)?;
    let found = page.rows.iter().find(|r| {
        r.get("currency").as_text() == Some(currency.code())
            && matches!(r.get("date"), Value::Date(d) if *d <= date)
    });
    let Some(rec) = found else {
        return Err(KernelError::invalid(
            "currency",
            format!(
                "there is no exchange rate for {currency} on or before {date}; add one under \
                 Ledger → Exchange rates or give the rate"
            ),
        ));
    };
    let text = rec.get("rate").as_text().unwrap_or_default();
    Rate::parse(text).map_err(|e| {
        KernelError::invalid(
            "currency",
            format!("the exchange rate record of {currency} for {date}: {e}"),
        )
    })
}

/// The company's currency and the accounts receivables post to.
pub fn posting_accounts(kernel: &Kernel, who: &Principal) -> Result<PostingAccounts, KernelError> {
    let chart = crate::books::chart(kernel, who)?;
    PostingAccounts::from_chart(&chart).map_err(|e| KernelError::Conflict(e.to_string()))
}

// ---------------------------------------------------------------- documents

/// A document line as a person or program enters it.
#[derive(Debug, Clone)]
pub struct LineInput {
    pub description: String,
    /// A decimal such as `2.5`.
    pub quantity: String,
    /// Minor units of the document currency.
    pub unit_price: i64,
    /// A percentage such as `10`, or empty.
    pub discount: String,
    /// The income (sales) or expense/stock (purchases) account.
    pub account: u64,
    /// The tax records charged on the line.
    pub taxes: Vec<u64>,
}

/// A document as a person or program enters it.
#[derive(Debug, Clone)]
pub struct DocumentInput {
    pub kind: DocumentKind,
    /// The customer (sales) or supplier (purchases).
    pub party: u64,
    pub date: Date,
    /// The document currency; the company currency when `None`.
    pub currency: Option<Currency>,
    /// The rate; looked up in the exchange rates when `None` for a foreign document.
    pub rate: Option<Rate>,
    /// `net30`, `eom30`, `now`, `30%:0,70%:60`; the supplier's terms or net 30 when empty.
    pub terms: String,
    pub prices_include_tax: bool,
    /// The supplier's invoice number or the customer's order, for people.
    pub reference: String,
    pub lines: Vec<LineInput>,
}

fn tax_of(rec: &Record, ledger: Ledger) -> Result<Tax, KernelError> {
    let code = rec.get("code").as_text().unwrap_or_default().to_owned();
    let percent = Percent::parse(rec.get("percent").as_text().unwrap_or_default())
        .map_err(|e| KernelError::invalid("lines", format!("tax {code}: {e}")))?;
    let (field, what) = match ledger {
        Ledger::Receivable => ("sales_account", "sales"),
        Ledger::Payable => ("purchase_account", "purchase"),
    };
    let account = rec.get(field).as_ref_id().ok_or_else(|| {
        KernelError::invalid(
            "lines",
            format!("tax {code} has no {what} account; set one under Ledger → Taxes"),
        )
    })?;
    Ok(Tax {
        name: rec.get("name").as_text().unwrap_or(&code).to_owned(),
        code,
        percent,
        account,
    })
}

fn money(minor: i64) -> Value {
    Value::Money(minor)
}

/// Issues a sales or purchase invoice or credit note: its number, record and lines, its
/// journal entry and its open item, in one command. Returns the document's record.
pub async fn issue(
    kernel: &Kernel,
    who: &Principal,
    input: DocumentInput,
) -> Result<Record, KernelError> {
    kernel.authorize(who, &INVOICE, Action::Create)?;
    let accounts = posting_accounts(kernel, who)?;
    let currency = input.currency.unwrap_or(accounts.company);
    let rate = match (input.rate, currency == accounts.company) {
        (None, false) => Some(rate_on(kernel, who, currency, input.date)?),
        (rate, _) => rate,
    };
    if input.lines.is_empty() {
        return Err(KernelError::invalid(
            "lines",
            "a document needs at least one line",
        ));
    }
    let ledger = input.kind.ledger();
    kernel
        .command(&LEDGER, who, move |cmd| {
            let (party_def, party_field) = party_of(ledger)?;
            let party = cmd.load(party_def, input.party)?.ok_or_else(|| {
                KernelError::invalid(
                    party_field,
                    format!("there is no {party_field} #{} in your company", input.party),
                )
            })?;
            let terms_text = match input.terms.trim() {
                "" => party
                    .get("payment_terms")
                    .as_text()
                    .filter(|t| !t.trim().is_empty())
                    .unwrap_or("net30")
                    .to_owned(),
                t => t.to_owned(),
            };
            let terms = PaymentTerms::parse(&terms_text)
                .map_err(|e| KernelError::invalid("terms", e.to_string()))?;
            let mut taxes: BTreeMap<u64, Tax> = BTreeMap::new();
            let mut lines = Vec::with_capacity(input.lines.len());
            for (i, l) in input.lines.iter().enumerate() {
                let quantity = Quantity::parse(&l.quantity)
                    .map_err(|e| KernelError::invalid("lines", format!("line {}: {e}", i + 1)))?;
                let discount = match l.discount.trim() {
                    "" => None,
                    d => Some(Percent::parse(d).map_err(|e| {
                        KernelError::invalid("lines", format!("line {}: {e}", i + 1))
                    })?),
                };
                let mut codes = Vec::with_capacity(l.taxes.len());
                for &t in &l.taxes {
                    if let std::collections::btree_map::Entry::Vacant(slot) = taxes.entry(t) {
                        let rec = cmd.load(&TAX, t)?.ok_or_else(|| {
                            KernelError::invalid(
                                "lines",
                                format!("line {}: there is no tax #{t} in your company", i + 1),
                            )
                        })?;
                        slot.insert(tax_of(&rec, ledger)?);
                    }
                    if let Some(tax) = taxes.get(&t) {
                        codes.push(tax.code.clone());
                    }
                }
                lines.push(DocumentLine {
                    description: l.description.trim().to_owned(),
                    quantity,
                    unit_price: l.unit_price,
                    discount,
                    account: l.account,
                    taxes: codes,
                });
            }
            let (slot, prefix) = kind_slot(input.kind);
            let number = next_number(cmd, slot, prefix)?;
            let mut doc = Document {
                id: 0,
                kind: input.kind,
                party: input.party,
                number: number.clone(),
                date: input.date,
                currency,
                rate,
                terms,
                prices_include_tax: input.prices_include_tax,
                lines,
                taxes: taxes.into_values().collect(),
            };
            let totals = doc.totals().map_err(refuse)?;
            let (mut entry, _) = doc.book(&accounts).map_err(refuse)?;
            entry.narration = format!(
                "{} {number} — {}",
                input.kind.label(),
                party.title(party_def)
            );
            entry.reference = number.clone();
            let posted = post_draft(cmd, &entry, &format!("invoice {number}"))?;
            let tax_total: i64 = totals.taxes.iter().map(|t| t.tax).sum();
            let mut values = BTreeMap::from([
                ("number", Value::Text(number.clone())),
                ("kind", Value::Text(input.kind.label().into())),
                (party_field, Value::Ref(input.party)),
                ("date", Value::Date(input.date)),
                ("currency", Value::Text(currency.code().into())),
                ("terms", Value::Text(terms_text)),
                ("prices_include_tax", Value::Bool(input.prices_include_tax)),
                ("reference", Value::Text(input.reference.clone())),
                ("net", money(totals.net)),
                ("tax", money(tax_total)),
                ("total", money(totals.total)),
                ("open", money(totals.total)),
                ("status", Value::Text("Open".into())),
                ("journal_entry", Value::Ref(posted.id)),
            ]);
            if let Some(r) = rate {
                values.insert("rate", Value::Text(r.to_string()));
            }
            let rec = cmd.create(&INVOICE, values)?;
            doc.id = rec.id;
            let item = doc.open_item(&accounts).map_err(refuse)?;
            if let Some(due) = item.due.iter().map(|d| d.0).max() {
                cmd.update(
                    &INVOICE,
                    rec.id,
                    BTreeMap::from([("due", Value::Date(due))]),
                )?;
            }
            for (i, (l, (input_line, net))) in doc
                .lines
                .iter()
                .zip(input.lines.iter().zip(&totals.lines))
                .enumerate()
            {
                cmd.create(
                    &INVOICE_LINE,
                    BTreeMap::from([
                        ("invoice", Value::Ref(rec.id)),
                        ("line", Value::Int(i as i64 + 1)),
                        ("description", Value::Text(l.description.clone())),
                        ("quantity", Value::Text(l.quantity.to_string())),
                        ("unit_price", money(l.unit_price)),
                        (
                            "discount",
                            Value::Text(input_line.discount.trim().to_owned()),
                        ),
                        ("account", Value::Ref(l.account)),
                        ("taxes", Value::Text(l.taxes.join(" "))),
                        ("net", money(*net)),
                    ]),
                )?;
            }
            write_item(cmd, &item);
            let mut key = company_key(b'd', cmd.who().company);
            key.extend_from_slice(&u64_key(rec.id));
            let rows: Vec<(String, i64, i64)> = totals
                .taxes
                .iter()
                .map(|t| (t.name.clone(), t.base, t.tax))
                .collect();
            cmd.put(key, encode_tax_rows(&rows));
            cmd.require(&INVOICE, rec.id)
        })
        .await
}

/// `count | (name, base, tax)…`, in the ledger's [`crate::codec`] layout.
fn encode_tax_rows(rows: &[(String, i64, i64)]) -> Vec<u8> {
    let mut w = Writer::default();
    let n = w.count(rows.len());
    for (name, base, tax) in rows.iter().take(n) {
        w.str(name).i64(*base).i64(*tax);
    }
    w.finish()
}

/// A document's tax rows as issued: `(name, base, tax)` in minor units.
pub fn tax_rows(
    kernel: &Kernel,
    who: &Principal,
    document: u64,
) -> Result<Vec<(String, i64, i64)>, KernelError> {
    kernel.authorize(who, &INVOICE, Action::Read)?;
    let mut key = company_key(b'd', who.company);
    key.extend_from_slice(&u64_key(document));
    let Some(bytes) = kernel.module_state(&LEDGER)?.get(&key)? else {
        return Ok(Vec::new());
    };
    let mut r = Reader::new(&bytes, "a document's tax rows");
    let n = r.count()?;
    let mut rows = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        rows.push((r.str()?, r.i64()?, r.i64()?));
    }
    Ok(rows)
}

// ---------------------------------------------------------------- payments

/// A payment as a person or program enters it.
#[derive(Debug, Clone)]
pub struct PaymentInput {
    pub kind: PaymentKind,
    pub party: u64,
    pub date: Date,
    /// The company currency when `None`.
    pub currency: Option<Currency>,
    /// Minor units of the payment currency, more than zero.
    pub amount: i64,
    /// Looked up in the exchange rates when `None` for a foreign payment.
    pub rate: Option<Rate>,
    /// The bank or cash account the money moves through.
    pub bank_account: u64,
    pub reference: String,
    /// `(invoice or credit note record, amount in its currency)`.
    pub allocations: Vec<(u64, i64)>,
}

/// Registers a payment: its journal entry (bank, control account, exchange result), its
/// allocations to the party's open documents, and any unallocated rest as a credit on
/// account, in one command. Refused with a message — and nothing changes — when an
/// allocation exceeds what is open, names another party's document, or the allocations
/// exceed the payment.
pub async fn pay(
    kernel: &Kernel,
    who: &Principal,
    input: PaymentInput,
) -> Result<Record, KernelError> {
    kernel.authorize(who, &PAYMENT, Action::Create)?;
    let accounts = posting_accounts(kernel, who)?;
    let currency = input.currency.unwrap_or(accounts.company);
    let rate = match (input.rate, currency == accounts.company) {
        (None, false) => Some(rate_on(kernel, who, currency, input.date)?),
        (rate, _) => rate,
    };
    let ledger = input.kind.ledger();
    kernel
        .command(&LEDGER, who, move |cmd| {
            let company = cmd.who().company;
            let (party_def, party_field) = party_of(ledger)?;
            let party = cmd.load(party_def, input.party)?.ok_or_else(|| {
                KernelError::invalid(
                    party_field,
                    format!("there is no {party_field} #{} in your company", input.party),
                )
            })?;
            let company_rec = cmd.require(&nexus_kernel::builtin::COMPANY, company)?;
            if company_currency(&company_rec)? != accounts.company {
                return Err(KernelError::Conflict(
                    "the company's currency changed; try again".into(),
                ));
            }
            let items = items_in(cmd, &party_prefix(company, ledger, input.party))?;
            let mut allocations = Vec::with_capacity(input.allocations.len());
            for &(document, amount) in &input.allocations {
                let Some(doc) = cmd.load(&INVOICE, document)? else {
                    return Err(KernelError::invalid(
                        "allocations",
                        format!("there is no invoice #{document} in your company"),
                    ));
                };
                if doc.get(party_field).as_ref_id() != Some(input.party) {
                    return Err(KernelError::invalid(
                        "allocations",
                        format!(
                            "{} belongs to another {party_field}, not to {}",
                            doc.title(&INVOICE),
                            party.title(party_def)
                        ),
                    ));
                }
                allocations.push(Allocation {
                    item: ItemId::Document(document),
                    amount,
                });
            }
            let (slot, prefix) = (9, "PAY");
            let number = next_number(cmd, slot, prefix)?;
            let payment = Payment {
                id: 0,
                kind: input.kind,
                party: input.party,
                date: input.date,
                currency,
                amount: input.amount,
                rate,
                bank_account: input.bank_account,
                reference: if input.reference.trim().is_empty() {
                    number.clone()
                } else {
                    input.reference.trim().to_owned()
                },
            };
            let settlement = payment
                .settle(&items, &allocations, &accounts)
                .map_err(|e| KernelError::invalid("allocations", e.to_string()))?;
            let Some(mut entry) = settlement.entry.clone() else {
                return Err(KernelError::Internal("a payment without an entry".into()));
            };
            entry.narration = format!(
                "{} {number} — {}",
                input.kind.label(),
                party.title(party_def)
            );
            let posted = post_draft(cmd, &entry, &format!("payment {number}"))?;
            let unallocated = settlement
                .items
                .iter()
                .find(|i| i.id == ItemId::Payment(0))
                .map_or(0, |i| i.open.abs());
            let mut values = BTreeMap::from([
                ("number", Value::Text(number)),
                ("kind", Value::Text(payment_kind_name(input.kind).into())),
                (party_field, Value::Ref(input.party)),
                ("date", Value::Date(input.date)),
                ("currency", Value::Text(currency.code().into())),
                ("amount", money(input.amount)),
                ("bank_account", Value::Ref(input.bank_account)),
                ("reference", Value::Text(payment.reference.clone())),
                ("unallocated", money(unallocated)),
                ("fx_gain", money(settlement.fx_gain)),
                ("journal_entry", Value::Ref(posted.id)),
            ]);
            if let Some(r) = rate {
                values.insert("rate", Value::Text(r.to_string()));
            }
            let rec = cmd.create(&PAYMENT, values)?;
            apply(cmd, &settlement, Some(rec.id), input.date)?;
            Ok(rec)
        })
        .await
}

/// Writes a settlement's items (a new credit on account gets `payment`'s id) and, for
/// each document settled, its allocation record and its `open` and `status`.
fn apply(
    cmd: &mut Command<'_, '_, '_>,
    settlement: &super::Settlement,
    payment: Option<u64>,
    date: Date,
) -> Result<(), KernelError> {
    for item in &settlement.items {
        let mut item = item.clone();
        if let (ItemId::Payment(0), Some(id)) = (item.id, payment) {
            item.id = ItemId::Payment(id);
        }
        write_item(cmd, &item);
        if let ItemId::Document(doc) = item.id {
            let status = if item.open == 0 {
                "Paid"
            } else if item.open == item.amount {
                "Open"
            } else {
                "Partly paid"
            };
            cmd.update(
                &INVOICE,
                doc,
                BTreeMap::from([
                    ("open", money(item.open.abs())),
                    ("status", Value::Text(status.into())),
                ]),
            )?;
        }
    }
    for a in &settlement.applied {
        if let ItemId::Document(doc) = a.item {
            let mut values = BTreeMap::from([
                ("invoice", Value::Ref(doc)),
                ("date", Value::Date(date)),
                ("amount", money(a.amount.abs())),
                ("fx_gain", money(a.fx_gain)),
            ]);
            if let Some(p) = payment {
                values.insert("payment", Value::Ref(p));
            }
            cmd.create(&ALLOCATION, values)?;
        }
    }
    Ok(())
}

/// Sets `amount` of credit note `credit` against invoice `invoice` of the same party,
/// dated `date`: no cash moves; an exchange difference is posted.
pub async fn allocate_credit_note(
    kernel: &Kernel,
    who: &Principal,
    credit: u64,
    invoice: u64,
    amount: i64,
    date: Date,
) -> Result<(), KernelError> {
    kernel.authorize(who, &PAYMENT, Action::Create)?;
    let accounts = posting_accounts(kernel, who)?;
    kernel
        .command(&LEDGER, who, move |cmd| {
            let company = cmd.who().company;
            let credit_rec = cmd.require(&INVOICE, credit)?;
            let kind = credit_rec
                .get("kind")
                .as_text()
                .and_then(document_kind)
                .ok_or_else(|| KernelError::Internal("an invoice without a kind".into()))?;
            let (_, party_field) = party_of(kind.ledger())?;
            let party = credit_rec
                .get(party_field)
                .as_ref_id()
                .ok_or_else(|| KernelError::Internal("an invoice without a party".into()))?;
            let items = items_in(cmd, &party_prefix(company, kind.ledger(), party))?;
            let settlement = super::allocate_credit(
                &items,
                ItemId::Document(credit),
                ItemId::Document(invoice),
                amount,
                date,
                &accounts,
            )
            .map_err(|e| KernelError::invalid("allocations", e.to_string()))?;
            if let Some(entry) = &settlement.entry {
                post_draft(
                    cmd,
                    entry,
                    &format!("credit note {}", credit_rec.title(&INVOICE)),
                )?;
            }
            apply(cmd, &settlement, None, date)
        })
        .await
}

// ---------------------------------------------------------------- reports

/// The aging of `ledger`'s open items at `as_of`.
pub fn aging(
    kernel: &Kernel,
    who: &Principal,
    ledger: Ledger,
    as_of: Date,
) -> Result<Aging, KernelError> {
    let items = open_items(kernel, who, ledger)?;
    super::aging(&items, ledger, as_of, &super::DEFAULT_BUCKETS)
        .map_err(|e| KernelError::BadRequest(e.to_string()))
}

/// The reminders due at `as_of` under the standard policy (no fees).
pub fn reminders(
    kernel: &Kernel,
    who: &Principal,
    as_of: Date,
) -> Result<Vec<Reminder>, KernelError> {
    let items = open_items(kernel, who, Ledger::Receivable)?;
    super::reminders(&items, as_of, &super::DunningPolicy::standard(None))
        .map_err(|e| KernelError::BadRequest(e.to_string()))
}

/// The name of a customer or supplier, for reports.
pub fn party_name(
    kernel: &Kernel,
    who: &Principal,
    ledger: Ledger,
    party: u64,
) -> Result<String, KernelError> {
    let (def, _) = party_of(ledger)?;
    Ok(kernel.get(who, def, party)?.title(def))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn open_items_round_trip_through_their_encoding() {
        let item = OpenItem {
            id: ItemId::Document(42),
            ledger: Ledger::Payable,
            party: 7,
            number: "BILL-000003".into(),
            date: date!(2026 - 03 - 01),
            currency: Currency::EUR,
            rate: Some(Rate::parse("1.0825").unwrap()),
            amount: -12_345,
            open: -345,
            booked: -13_363,
            booked_open: -373,
            due: vec![
                (date!(2026 - 03 - 31), -6_000),
                (date!(2026 - 04 - 30), -6_345),
            ],
        };
        let key = item_key(3, &item);
        assert_eq!(decode_item(&key, &encode_item(&item)).unwrap(), item);
        let credit = OpenItem {
            id: ItemId::Payment(9),
            ledger: Ledger::Receivable,
            rate: None,
            currency: Currency::JPY,
            due: Vec::new(),
            ..item
        };
        let key = item_key(3, &credit);
        assert_eq!(decode_item(&key, &encode_item(&credit)).unwrap(), credit);
        assert!(decode_item(&key, &[0, 5, b'x']).is_err());
    }
}
