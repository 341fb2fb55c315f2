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

use crate::entities::SupplierRecord;
use crate::parties::customer;
use nexus_kernel::builtin::Company;
use nexus_kernel::bytes::{decode_u64, prefix_end, u64_key};
use nexus_kernel::{Action, Command, Kernel, KernelError, ListQuery, Principal, Row};
use time::Date;

use super::entities::{
    AllocationRecord, EXCHANGE_RATE, ExchangeRateRecord, INVOICE, InvoiceLineRecord, InvoiceRecord,
    InvoiceStatus, PAYMENT, PaymentRecord, TaxRecord,
};
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

/// The record field naming a ledger's party.
const fn party_field(ledger: Ledger) -> &'static str {
    match ledger {
        Ledger::Receivable => "customer",
        Ledger::Payable => "supplier",
    }
}

/// A ledger's party as a command sees it: its name, and its payment terms if it has
/// any. Customers are CRM's records, read by entity name (the ledger does not depend
/// on CRM); suppliers are the ledger's own.
fn party_in(
    cmd: &Command<'_, '_, '_>,
    ledger: Ledger,
    id: u64,
) -> Result<(String, Option<String>), KernelError> {
    let missing = || {
        let field = party_field(ledger);
        KernelError::invalid(field, format!("there is no {field} #{id} in your company"))
    };
    match ledger {
        Ledger::Receivable => {
            let def = customer()?;
            let rec = cmd.load(def, id)?.ok_or_else(missing)?;
            Ok((rec.title(def), None))
        }
        Ledger::Payable => {
            let rec = cmd.find::<SupplierRecord>(id)?.ok_or_else(missing)?;
            let terms = rec.payment_terms.clone().filter(|t| !t.trim().is_empty());
            Ok((rec.fields.name, terms))
        }
    }
}

/// The party a document or payment names, for its ledger.
fn party_of_document(doc: &InvoiceRecord) -> Option<u64> {
    match doc.kind.ledger() {
        Ledger::Receivable => doc.customer,
        Ledger::Payable => doc.supplier,
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
    let rates = Row::<ExchangeRateRecord>::all(&kernel.list(who, &EXCHANGE_RATE, &query)?.rows)?;
    let found = rates
        .iter()
        .find(|r| r.currency == currency.code() && r.date <= date);
    let Some(rec) = found else {
        return Err(KernelError::invalid(
            "currency",
            format!(
                "there is no exchange rate for {currency} on or before {date}; add one under \
                 Ledger → Exchange rates or give the rate"
            ),
        ));
    };
    Rate::parse(&rec.rate).map_err(|e| {
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

fn tax_of(rec: &TaxRecord, ledger: Ledger) -> Result<Tax, KernelError> {
    let code = rec.code.clone();
    let percent = Percent::parse(&rec.percent)
        .map_err(|e| KernelError::invalid("lines", format!("tax {code}: {e}")))?;
    let (account, what) = match ledger {
        Ledger::Receivable => (rec.sales_account, "sales"),
        Ledger::Payable => (rec.purchase_account, "purchase"),
    };
    let account = account.ok_or_else(|| {
        KernelError::invalid(
            "lines",
            format!("tax {code} has no {what} account; set one under Ledger → Taxes"),
        )
    })?;
    Ok(Tax {
        name: rec.name.clone(),
        code,
        percent,
        account,
    })
}

/// Issues a sales or purchase invoice or credit note: its number, record and lines, its
/// journal entry and its open item, in one command. Returns the document's record.
pub async fn issue(
    kernel: &Kernel,
    who: &Principal,
    input: DocumentInput,
) -> Result<Row<InvoiceRecord>, KernelError> {
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
            let (party_name, party_terms) = party_in(cmd, ledger, input.party)?;
            let terms_text = match input.terms.trim() {
                "" => party_terms.unwrap_or_else(|| "net30".to_owned()),
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
                        let rec = cmd.find::<TaxRecord>(t)?.ok_or_else(|| {
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
            entry.narration = format!("{} {number} — {party_name}", input.kind.label());
            entry.reference = number.clone();
            let posted = post_draft(cmd, &entry, &format!("invoice {number}"))?;
            let tax_total: i64 = totals.taxes.iter().map(|t| t.tax).sum();
            let rec = cmd.insert(&InvoiceRecord {
                number: number.clone(),
                kind: input.kind,
                customer: (ledger == Ledger::Receivable).then_some(input.party),
                supplier: (ledger == Ledger::Payable).then_some(input.party),
                date: input.date,
                due: None,
                currency: currency.code().into(),
                rate: rate.map(|r| r.to_string()),
                terms: Some(terms_text),
                prices_include_tax: input.prices_include_tax,
                reference: Some(input.reference.clone()).filter(|r| !r.is_empty()),
                net: Some(totals.net),
                tax: Some(tax_total),
                total: totals.total,
                open: Some(totals.total),
                status: InvoiceStatus::Open,
                journal_entry: Some(posted.id),
            })?;
            doc.id = rec.id;
            let item = doc.open_item(&accounts).map_err(refuse)?;
            let mut rec = rec;
            if let Some(due) = item.due.iter().map(|d| d.0).max() {
                rec = cmd.modify(rec.id, |i: &mut InvoiceRecord| i.due = Some(due))?;
            }
            for (i, (l, (input_line, net))) in doc
                .lines
                .iter()
                .zip(input.lines.iter().zip(&totals.lines))
                .enumerate()
            {
                cmd.insert(&InvoiceLineRecord {
                    invoice: rec.id,
                    line: i as i64 + 1,
                    description: l.description.clone(),
                    quantity: l.quantity.to_string(),
                    unit_price: Some(l.unit_price),
                    discount: Some(input_line.discount.trim().to_owned()).filter(|d| !d.is_empty()),
                    account: l.account,
                    taxes: Some(l.taxes.join(" ")).filter(|t| !t.is_empty()),
                    net: Some(*net),
                })?;
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
            Ok(rec)
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
) -> Result<Row<PaymentRecord>, KernelError> {
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
            let (party_name, _) = party_in(cmd, ledger, input.party)?;
            let company_rec = cmd.fetch::<Company>(company)?;
            if company_currency(&company_rec)? != accounts.company {
                return Err(KernelError::Conflict(
                    "the company's currency changed; try again".into(),
                ));
            }
            let items = items_in(cmd, &party_prefix(company, ledger, input.party))?;
            let mut allocations = Vec::with_capacity(input.allocations.len());
            for &(document, amount) in &input.allocations {
                let Some(doc) = cmd.find::<InvoiceRecord>(document)? else {
                    return Err(KernelError::invalid(
                        "allocations",
                        format!("there is no invoice #{document} in your company"),
                    ));
                };
                if doc.kind.ledger() != ledger || party_of_document(&doc) != Some(input.party) {
                    return Err(KernelError::invalid(
                        "allocations",
                        format!(
                            "{} belongs to another {}, not to {party_name}",
                            doc.number,
                            party_field(ledger)
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
            entry.narration = format!("{} {number} — {party_name}", input.kind.label());
            let posted = post_draft(cmd, &entry, &format!("payment {number}"))?;
            let unallocated = settlement
                .items
                .iter()
                .find(|i| i.id == ItemId::Payment(0))
                .map_or(0, |i| i.open.abs());
            let rec = cmd.insert(&PaymentRecord {
                number,
                kind: input.kind,
                customer: (ledger == Ledger::Receivable).then_some(input.party),
                supplier: (ledger == Ledger::Payable).then_some(input.party),
                date: input.date,
                currency: currency.code().into(),
                amount: input.amount,
                rate: rate.map(|r| r.to_string()),
                bank_account: input.bank_account,
                reference: Some(payment.reference.clone()).filter(|r| !r.is_empty()),
                unallocated: Some(unallocated),
                fx_gain: Some(settlement.fx_gain),
                journal_entry: Some(posted.id),
            })?;
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
                InvoiceStatus::Paid
            } else if item.open == item.amount {
                InvoiceStatus::Open
            } else {
                InvoiceStatus::PartlyPaid
            };
            cmd.modify(doc, |i: &mut InvoiceRecord| {
                i.open = Some(item.open.abs());
                i.status = status;
            })?;
        }
    }
    for a in &settlement.applied {
        if let ItemId::Document(doc) = a.item {
            cmd.insert(&AllocationRecord {
                payment,
                invoice: doc,
                date,
                amount: a.amount.abs(),
                fx_gain: Some(a.fx_gain),
            })?;
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
            let credit_rec = cmd.fetch::<InvoiceRecord>(credit)?;
            let kind = credit_rec.kind;
            let party = party_of_document(&credit_rec)
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
                post_draft(cmd, entry, &format!("credit note {}", credit_rec.number))?;
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
    Ok(match ledger {
        Ledger::Receivable => {
            let def = customer()?;
            kernel.get(who, def, party)?.title(def)
        }
        Ledger::Payable => kernel.read::<SupplierRecord>(who, party)?.fields.name,
    })
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
