//! Receivables' and payables' records: taxes, exchange rates, invoices and credit
//! notes with their lines, payments and their allocations. Taxes and exchange rates are
//! kept by people through the generic pages; documents and payments only by the
//! commands of [`super::books`], which post their journal entries.

use crate::entities::text;
use nexus_kernel::{Creation, EntityDef, FieldDef, FieldKind, Unique};

/// The document kinds, as stored ([`super::DocumentKind::label`]).
pub const DOCUMENT_KINDS: &[&str] = &[
    "Sales invoice",
    "Sales credit note",
    "Purchase invoice",
    "Purchase credit note",
];

/// The payment kinds, as stored ([`super::PaymentKind::label`]).
pub const PAYMENT_KINDS: &[&str] = &[
    "Customer receipt",
    "Customer refund",
    "Supplier payment",
    "Supplier refund",
];

pub static TAX: EntityDef = EntityDef {
    name: "tax",
    code: 24,
    label: "Tax",
    plural: "Taxes",
    module: "ledger",
    fields: &[
        text("code", "Code", 20)
            .required()
            .indexed()
            .unique(Unique::PerCompany)
            .list()
            .help("Short and unique, e.g. VAT20."),
        text("name", "Name", 80).required().list(),
        text("percent", "Percent", 12)
            .required()
            .list()
            .help("The rate in percent, e.g. 20 or 7.7."),
        FieldDef::new("sales_account", "Sales account", FieldKind::Ref("account"))
            .list()
            .help("Where tax charged on sales goes (output tax, a liability)."),
        FieldDef::new(
            "purchase_account",
            "Purchase account",
            FieldKind::Ref("account"),
        )
        .list()
        .help("Where tax paid on purchases goes (input tax, an asset)."),
    ],
    title_field: "code",
    search_fields: &["code", "name"],
    creation: Creation::ByRole,
};

pub static EXCHANGE_RATE: EntityDef = EntityDef {
    name: "exchange_rate",
    code: 29,
    label: "Exchange rate",
    plural: "Exchange rates",
    module: "ledger",
    fields: &[
        text("currency", "Currency", 3)
            .required()
            .indexed()
            .list()
            .help("The foreign currency, e.g. EUR."),
        FieldDef::new("date", "Date", FieldKind::Date)
            .required()
            .indexed()
            .list()
            .help("Valid from this day until the next rate of the currency."),
        text("rate", "Rate", 24)
            .required()
            .list()
            .help("Company currency per unit of the foreign currency, e.g. 1.0825."),
    ],
    title_field: "currency",
    search_fields: &["currency"],
    creation: Creation::ByRole,
};

pub static INVOICE: EntityDef = EntityDef {
    name: "invoice",
    code: 25,
    label: "Invoice",
    plural: "Invoices",
    module: "ledger",
    fields: &[
        text("number", "Number", 24)
            .required()
            .indexed()
            .unique(Unique::PerCompany)
            .list(),
        FieldDef::new("kind", "Kind", FieldKind::Choice(DOCUMENT_KINDS))
            .required()
            .indexed()
            .list(),
        FieldDef::new("customer", "Customer", FieldKind::Ref("customer"))
            .indexed()
            .list(),
        FieldDef::new("supplier", "Supplier", FieldKind::Ref("supplier"))
            .indexed()
            .list(),
        FieldDef::new("date", "Date", FieldKind::Date)
            .required()
            .indexed()
            .list(),
        FieldDef::new("due", "Due", FieldKind::Date)
            .indexed()
            .list(),
        text("currency", "Currency", 3).required().list(),
        text("rate", "Rate", 24),
        text("terms", "Terms", 40),
        FieldDef::new("prices_include_tax", "Prices include tax", FieldKind::Bool),
        text("reference", "Reference", 60)
            .indexed()
            .help("The supplier's invoice number, or the customer's order."),
        FieldDef::new("net", "Net", FieldKind::Money),
        FieldDef::new("tax", "Tax", FieldKind::Money),
        FieldDef::new("total", "Total", FieldKind::Money)
            .required()
            .indexed()
            .list(),
        FieldDef::new("open", "Open", FieldKind::Money)
            .indexed()
            .list(),
        FieldDef::new(
            "status",
            "Status",
            FieldKind::Choice(&["Open", "Partly paid", "Paid"]),
        )
        .required()
        .indexed()
        .list(),
        FieldDef::new(
            "journal_entry",
            "Journal entry",
            FieldKind::Ref("journal_entry"),
        ),
    ],
    title_field: "number",
    search_fields: &["number", "reference"],
    creation: Creation::Module(
        "invoices and credit notes are issued from Ledger → Invoices (or the ledger API) and \
         are never edited or deleted; to correct one, issue a credit note",
    ),
};

pub static INVOICE_LINE: EntityDef = EntityDef {
    name: "invoice_line",
    code: 26,
    label: "Invoice line",
    plural: "Invoice lines",
    module: "ledger",
    fields: &[
        FieldDef::new("invoice", "Invoice", FieldKind::Ref("invoice"))
            .required()
            .indexed()
            .list(),
        FieldDef::new(
            "line",
            "Line",
            FieldKind::Int {
                min: 1,
                max: 10_000,
            },
        )
        .required(),
        text("description", "Description", 200).required().list(),
        text("quantity", "Quantity", 24).required().list(),
        FieldDef::new("unit_price", "Unit price", FieldKind::Money).list(),
        text("discount", "Discount %", 12).list(),
        FieldDef::new("account", "Account", FieldKind::Ref("account"))
            .required()
            .indexed()
            .list(),
        text("taxes", "Taxes", 80).list(),
        FieldDef::new("net", "Net", FieldKind::Money).list(),
    ],
    title_field: "description",
    search_fields: &["description"],
    creation: Creation::Module("invoice lines are written with their invoice"),
};

pub static PAYMENT: EntityDef = EntityDef {
    name: "payment",
    code: 27,
    label: "Payment",
    plural: "Payments",
    module: "ledger",
    fields: &[
        text("number", "Number", 24)
            .required()
            .indexed()
            .unique(Unique::PerCompany)
            .list(),
        FieldDef::new("kind", "Kind", FieldKind::Choice(PAYMENT_KINDS))
            .required()
            .indexed()
            .list(),
        FieldDef::new("customer", "Customer", FieldKind::Ref("customer"))
            .indexed()
            .list(),
        FieldDef::new("supplier", "Supplier", FieldKind::Ref("supplier"))
            .indexed()
            .list(),
        FieldDef::new("date", "Date", FieldKind::Date)
            .required()
            .indexed()
            .list(),
        text("currency", "Currency", 3).required().list(),
        FieldDef::new("amount", "Amount", FieldKind::Money)
            .required()
            .indexed()
            .list(),
        text("rate", "Rate", 24),
        FieldDef::new("bank_account", "Bank account", FieldKind::Ref("account"))
            .required()
            .list(),
        text("reference", "Reference", 60).indexed(),
        FieldDef::new("unallocated", "Unallocated", FieldKind::Money)
            .list()
            .help("Left on the party's account as a credit, to allocate later."),
        FieldDef::new("fx_gain", "Exchange result", FieldKind::Money)
            .help("Realised exchange gain (positive) or loss (negative)."),
        FieldDef::new(
            "journal_entry",
            "Journal entry",
            FieldKind::Ref("journal_entry"),
        ),
    ],
    title_field: "number",
    search_fields: &["number", "reference"],
    creation: Creation::Module(
        "payments are registered from Ledger → Payments (or the ledger API) and are never \
         edited or deleted",
    ),
};

pub static ALLOCATION: EntityDef = EntityDef {
    name: "allocation",
    code: 28,
    label: "Allocation",
    plural: "Allocations",
    module: "ledger",
    fields: &[
        FieldDef::new("payment", "Payment", FieldKind::Ref("payment"))
            .indexed()
            .list(),
        FieldDef::new("invoice", "Invoice", FieldKind::Ref("invoice"))
            .required()
            .indexed()
            .list(),
        FieldDef::new("date", "Date", FieldKind::Date)
            .required()
            .indexed()
            .list(),
        FieldDef::new("amount", "Amount", FieldKind::Money)
            .required()
            .list()
            .help("In the invoice's currency."),
        FieldDef::new("fx_gain", "Exchange result", FieldKind::Money).list(),
    ],
    title_field: "date",
    search_fields: &[],
    creation: Creation::Module("allocations are written by payments"),
};
