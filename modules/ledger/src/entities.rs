//! The ledger's records in the kernel: accounts, journal entries and their lines. The
//! kernel gives each a list, a form or a read-only view, the REST API, permissions,
//! audit and history; the ledger adds what is special (`books`).

use nexus_kernel::{Creation, EntityDef, FieldDef, FieldKind, Unique};

use crate::{AccountClass, AccountType};

/// A text field of at most `max` characters (shared by the ledger's entity files).
pub(crate) const fn text(name: &'static str, label: &'static str, max: usize) -> FieldDef {
    FieldDef::new(name, label, FieldKind::Text { max })
}

/// The classes, as stored in an account's `class` field.
pub const CLASSES: &[&str] = &["Asset", "Liability", "Equity", "Income", "Expense"];

/// The account types, as stored in an account's `type` field ([`AccountType::name`]).
pub const TYPES: &[&str] = &[
    "General",
    "Cash",
    "Bank",
    "Receivable",
    "Stock",
    "FixedAsset",
    "Payable",
    "Payroll",
    "Tax",
    "RetainedEarnings",
    "CostOfGoodsSold",
    "FxGainLoss",
];

pub(crate) fn class_name(class: AccountClass) -> &'static str {
    match class {
        AccountClass::Asset => "Asset",
        AccountClass::Liability => "Liability",
        AccountClass::Equity => "Equity",
        AccountClass::Income => "Income",
        AccountClass::Expense => "Expense",
    }
}

pub(crate) fn class_of(name: &str) -> Option<AccountClass> {
    AccountClass::ALL
        .into_iter()
        .find(|c| class_name(*c) == name)
}

pub(crate) fn type_of(name: &str) -> Option<AccountType> {
    const ALL: [AccountType; 12] = [
        AccountType::General,
        AccountType::Cash,
        AccountType::Bank,
        AccountType::Receivable,
        AccountType::Stock,
        AccountType::FixedAsset,
        AccountType::Payable,
        AccountType::Payroll,
        AccountType::Tax,
        AccountType::RetainedEarnings,
        AccountType::CostOfGoodsSold,
        AccountType::FxGainLoss,
    ];
    ALL.into_iter().find(|t| t.name() == name)
}

pub static ACCOUNT: EntityDef = EntityDef {
    name: "account",
    code: 20,
    label: "Account",
    plural: "Accounts",
    module: "ledger",
    fields: &[
        text("code", "Code", 20)
            .required()
            .indexed()
            .unique(Unique::PerCompany)
            .list()
            .help("Letters and digits, e.g. 1120. Reports sort by code."),
        text("name", "Name", 120).required().indexed().list(),
        FieldDef::new("class", "Class", FieldKind::Choice(CLASSES))
            .required()
            .indexed()
            .list(),
        FieldDef::new("type", "Type", FieldKind::Choice(TYPES))
            .required()
            .list()
            .help("What the account is for: bank, receivable, tax… General otherwise."),
        FieldDef::new("parent", "Parent", FieldKind::Ref("account"))
            .indexed()
            .list()
            .help("The group it rolls up into; a group of the same class."),
        FieldDef::new("group", "Group", FieldKind::Bool)
            .list()
            .help("A group only sums its children; entries post to the others."),
    ],
    title_field: "name",
    search_fields: &["code", "name"],
    creation: Creation::ByRole,
};

pub static JOURNAL_ENTRY: EntityDef = EntityDef {
    name: "journal_entry",
    code: 21,
    label: "Journal entry",
    plural: "Journal entries",
    module: "ledger",
    fields: &[
        text("number", "Number", 20)
            .required()
            .indexed()
            .unique(Unique::PerCompany)
            .list(),
        FieldDef::new("date", "Date", FieldKind::Date)
            .required()
            .indexed()
            .list(),
        text("narration", "Narration", 200)
            .required()
            .indexed()
            .list(),
        text("reference", "Reference", 60).indexed().list(),
        FieldDef::new("total", "Total", FieldKind::Money)
            .required()
            .indexed()
            .list()
            .help("The sum of the debits, in the company currency."),
        FieldDef::new(
            "status",
            "Status",
            FieldKind::Choice(&["Draft", "Posted", "Cancelled", "Discarded"]),
        )
        .required()
        .indexed()
        .list(),
        FieldDef::new(
            "kind",
            "Kind",
            FieldKind::Choice(&["Regular", "Reversal", "Closing"]),
        )
        .required(),
        FieldDef::new("reverses", "Reverses", FieldKind::Ref("journal_entry")).indexed(),
        FieldDef::new(
            "reversed_by",
            "Reversed by",
            FieldKind::Ref("journal_entry"),
        ),
        text("source", "Posted by", 60)
            .list()
            .help("The document that posted it (an invoice, a payment, a stock move)."),
        FieldDef::new("draft_lines", "Draft lines", FieldKind::LongText)
            .help("A draft's lines as saved (account, debit or credit, memo); empty once posted."),
    ],
    title_field: "number",
    search_fields: &["number", "narration", "reference"],
    creation: Creation::Module(
        "journal entries are drafted and posted from Ledger → New journal entry (or the \
         ledger API); a posted entry is never edited or deleted: to undo one, cancel it, \
         which posts its reversal",
    ),
};

pub static JOURNAL_LINE: EntityDef = EntityDef {
    name: "journal_line",
    code: 22,
    label: "Journal line",
    plural: "Journal lines",
    module: "ledger",
    fields: &[
        FieldDef::new("entry", "Entry", FieldKind::Ref("journal_entry"))
            .required()
            .indexed()
            .list(),
        FieldDef::new("date", "Date", FieldKind::Date)
            .required()
            .indexed()
            .list(),
        FieldDef::new("account", "Account", FieldKind::Ref("account"))
            .required()
            .indexed()
            .list(),
        FieldDef::new("debit", "Debit", FieldKind::Money)
            .indexed()
            .list(),
        FieldDef::new("credit", "Credit", FieldKind::Money)
            .indexed()
            .list(),
        text("memo", "Memo", 200).list(),
        FieldDef::new(
            "line",
            "Line",
            FieldKind::Int {
                min: 1,
                max: 10_000,
            },
        )
        .required(),
        text("currency", "Currency", 3)
            .list()
            .help("For a line in a foreign currency: that currency."),
        FieldDef::new("amount_fx", "Foreign amount", FieldKind::Money)
            .list()
            .help("The line's amount in its foreign currency."),
        text("rate", "Rate", 24).help("Company currency per unit of the foreign currency."),
    ],
    title_field: "memo",
    search_fields: &["memo"],
    creation: Creation::Module(
        "journal lines are written with their entry, from Ledger → New journal entry, \
         and are never edited or deleted",
    ),
};

pub static FISCAL_YEAR: EntityDef = EntityDef {
    name: "fiscal_year",
    code: 23,
    label: "Fiscal year",
    plural: "Fiscal years",
    module: "ledger",
    fields: &[
        text("name", "Name", 40)
            .required()
            .indexed()
            .unique(Unique::PerCompany)
            .list(),
        FieldDef::new("start", "Start", FieldKind::Date)
            .required()
            .indexed()
            .list(),
        FieldDef::new("end", "End", FieldKind::Date)
            .required()
            .list(),
        FieldDef::new("status", "Status", FieldKind::Choice(&["Open", "Closed"]))
            .required()
            .indexed()
            .list(),
        FieldDef::new(
            "closing_entry",
            "Closing entry",
            FieldKind::Ref("journal_entry"),
        )
        .list(),
    ],
    title_field: "name",
    search_fields: &["name"],
    creation: Creation::Module(
        "fiscal years are opened and closed under Ledger → Fiscal years; a closed year \
         stays closed",
    ),
};

pub static SUPPLIER: EntityDef = EntityDef {
    name: "supplier",
    code: 12,
    label: "Supplier",
    plural: "Suppliers",
    module: "ledger",
    fields: &[
        text("name", "Name", 120)
            .required()
            .indexed()
            .unique(Unique::PerCompany)
            .list(),
        FieldDef::new("email", "E-mail", FieldKind::Email)
            .indexed()
            .list(),
        FieldDef::new("phone", "Phone", FieldKind::Phone).list(),
        text("city", "City", 80).indexed().list(),
        text("country", "Country", 80).indexed().list(),
        text("tax_id", "Tax ID", 40).list(),
        text("iban", "IBAN", 34).help("Where payments to this supplier go."),
        text("payment_terms", "Payment terms", 40)
            .help("net30, eom30, now, or instalments such as 30%:0,70%:60."),
        FieldDef::new("notes", "Notes", FieldKind::LongText),
    ],
    title_field: "name",
    search_fields: &["name", "email", "city", "country"],
    creation: Creation::ByRole,
};

/// The ledger, as the kernel knows it: its entities, its default role, and the code
/// that prefixes its own state (totals, counters, open items).
pub static LEDGER: nexus_kernel::Module = nexus_kernel::Module {
    name: "ledger",
    label: "Ledger",
    code: 1,
    entities: ENTITIES,
    roles: ROLES,
    demo: Some(|kernel, company, today, _size| {
        Box::pin(async move { crate::demo::seed(&kernel, company, today).await })
    }),
};

/// The ledger's entities.
pub static ENTITIES: &[&EntityDef] = &[
    &SUPPLIER,
    &ACCOUNT,
    &JOURNAL_ENTRY,
    &JOURNAL_LINE,
    &FISCAL_YEAR,
    &crate::receivables::entities::TAX,
    &crate::receivables::entities::EXCHANGE_RATE,
    &crate::receivables::entities::INVOICE,
    &crate::receivables::entities::INVOICE_LINE,
    &crate::receivables::entities::PAYMENT,
    &crate::receivables::entities::ALLOCATION,
    &crate::bank::entities::BANK_ACCOUNT,
    &crate::bank::entities::BANK_STATEMENT,
    &crate::bank::entities::BANK_LINE,
    &crate::stock::entities::STOCK_ITEM,
    &crate::stock::entities::WAREHOUSE,
    &crate::stock::entities::STOCK_MOVE,
];

/// The ledger's default role.
pub static ROLES: &[nexus_kernel::registry::RoleDef] = &[(
    "Accountant",
    "account:rcwdx, journal_entry:rcwx, journal_line:rx, fiscal_year:rcwx, tax:rcwdx, \
     exchange_rate:rcwdx, invoice:rcwx, invoice_line:rx, payment:rcwx, allocation:rx, \
     bank_account:rcwx, bank_statement:rcx, bank_line:rcwx, stock_item:rcwx, \
     warehouse:rcwdx, stock_move:rcwx, supplier:rcwdx, customer:rcwx, contact:r, \
     company:r, user:r, role:r",
    "Keeps the books: entries, invoices, payments, bank, stock, reports, year-end close.",
)];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_class_and_type_maps_both_ways() {
        for name in CLASSES {
            let class = class_of(name).expect("class");
            assert_eq!(class_name(class), *name);
        }
        for name in TYPES {
            assert_eq!(type_of(name).expect("type").name(), *name);
        }
        assert_eq!(class_of("Nonsense"), None);
        assert_eq!(type_of("Nonsense"), None);
    }
}
