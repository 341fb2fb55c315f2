//! The bank records in the kernel: bank accounts, statement imports and statement lines.
//! All three are written only by [`super::books`] (`Creation::Module`), which checks what
//! the generic form cannot (the ledger account is a postable Bank account, the currency
//! is the company's, a line is reconciled once); the kernel still gives each a list, a
//! read-only view, the REST API, audit and history.

use crate::entities::text;
use nexus_kernel::{Creation, EntityDef, FieldDef, FieldKind, Unique};

/// The statuses of a statement line, as stored in its `status` field.
pub const LINE_STATUSES: &[&str] = &["Unreconciled", "Reconciled"];

/// A bank account of the company and the ledger account it posts to.
pub static BANK_ACCOUNT: EntityDef = EntityDef {
    name: "bank_account",
    code: 30,
    label: "Bank account",
    plural: "Bank accounts",
    module: "ledger",
    fields: &[
        text("name", "Name", 120)
            .required()
            .indexed()
            .unique(Unique::PerCompany)
            .list(),
        text("number", "IBAN / account number", 64)
            .required()
            .indexed()
            .list()
            .help("As the bank writes it; spaces are ignored."),
        text("currency", "Currency", 3)
            .required()
            .list()
            .help("The company currency."),
        FieldDef::new("account", "Ledger account", FieldKind::Ref("account"))
            .required()
            .indexed()
            .unique(Unique::PerCompany)
            .list()
            .help("A postable account of type Bank; one bank account per ledger account."),
    ],
    title_field: "name",
    search_fields: &["name", "number"],
    creation: Creation::Module(
        "bank accounts are added under Ledger → Bank, which checks the ledger account and \
         the currency",
    ),
};

/// One imported statement file: what it held and what was skipped.
pub static BANK_STATEMENT: EntityDef = EntityDef {
    name: "bank_statement",
    code: 31,
    label: "Bank statement",
    plural: "Bank statements",
    module: "ledger",
    fields: &[
        FieldDef::new(
            "bank_account",
            "Bank account",
            FieldKind::Ref("bank_account"),
        )
        .required()
        .indexed()
        .list(),
        FieldDef::new("format", "Format", FieldKind::Choice(&["CSV", "camt.053"]))
            .required()
            .list(),
        FieldDef::new("to", "Last booking", FieldKind::Date)
            .indexed()
            .list(),
        FieldDef::new(
            "imported",
            "Lines imported",
            FieldKind::Int {
                min: 0,
                max: i64::MAX,
            },
        )
        .required()
        .list(),
        FieldDef::new(
            "skipped",
            "Already imported",
            FieldKind::Int {
                min: 0,
                max: i64::MAX,
            },
        )
        .required()
        .list(),
        FieldDef::new("opening", "Opening balance", FieldKind::Money),
        FieldDef::new("closing", "Closing balance", FieldKind::Money).list(),
    ],
    title_field: "format",
    search_fields: &[],
    creation: Creation::Module(
        "statements are imported under Ledger → Bank (or the ledger API) and never edited",
    ),
};

/// One booked movement from an imported statement, and what it was reconciled with.
pub static BANK_LINE: EntityDef = EntityDef {
    name: "bank_line",
    code: 32,
    label: "Statement line",
    plural: "Statement lines",
    module: "ledger",
    fields: &[
        FieldDef::new(
            "bank_account",
            "Bank account",
            FieldKind::Ref("bank_account"),
        )
        .required()
        .indexed()
        .list(),
        FieldDef::new("statement", "Statement", FieldKind::Ref("bank_statement")).indexed(),
        FieldDef::new("date", "Booking date", FieldKind::Date)
            .required()
            .indexed()
            .list(),
        FieldDef::new("value_date", "Value date", FieldKind::Date),
        FieldDef::new("amount", "Amount", FieldKind::Money)
            .required()
            .indexed()
            .list()
            .help("Positive for money into the account."),
        text("counterparty", "Counterparty", 200).indexed().list(),
        text("reference", "Reference", 200).list(),
        text("description", "Description", 500).list(),
        text("bank_reference", "Bank reference", 120),
        FieldDef::new("status", "Status", FieldKind::Choice(LINE_STATUSES))
            .required()
            .indexed()
            .list(),
        FieldDef::new(
            "journal_entry",
            "Journal entry",
            FieldKind::Ref("journal_entry"),
        )
        .list(),
        FieldDef::new(
            "journal_line",
            "Journal line",
            FieldKind::Ref("journal_line"),
        ),
    ],
    title_field: "description",
    search_fields: &["counterparty", "reference", "description"],
    creation: Creation::Module(
        "statement lines come from importing a statement under Ledger → Bank; they are \
         reconciled there, never edited",
    ),
};
