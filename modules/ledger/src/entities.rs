//! The ledger's records in the kernel: accounts, journal entries and their lines. The
//! kernel gives each a list, a form or a read-only view, the REST API, permissions,
//! audit and history; the ledger adds what is special (`books`).

use nexus_kernel::typed::field::{
    Bool, Choice, Date, Email, Int, LongText, Money, Phone, Ref, Text,
};
use nexus_kernel::{Creation, EntityDef, Unique};

use crate::{AccountClass, AccountType};

nexus_kernel::options! {
    AccountClass { Asset, Liability, Equity, Income, Expense }
}

nexus_kernel::options! {
    AccountType {
        General, Cash, Bank, Receivable, Stock, FixedAsset, Payable, Payroll, Tax,
        RetainedEarnings, CostOfGoodsSold, FxGainLoss,
    }
}

nexus_kernel::entity_name!(
    /// CRM's customers, which invoices and payments refer to by name (the ledger does
    /// not depend on CRM).
    pub Customer = "customer"
);

nexus_kernel::choice! {
    /// Where a journal entry stands.
    pub enum JournalStatus {
        /// Being prepared; counts nowhere.
        Draft,
        /// In the books.
        Posted,
        /// In the books together with its reversal.
        Cancelled,
        /// A draft thrown away.
        Discarded,
    }
}

nexus_kernel::choice! {
    /// Why a journal entry was posted.
    pub enum JournalKind { Regular, Reversal, Closing }
}

nexus_kernel::choice! {
    /// Whether a fiscal year takes postings.
    pub enum YearStatus { Open, Closed }
}

nexus_kernel::entity! {
    /// The stored form of an account.
    pub struct AccountRecord in ACCOUNT {
        name: "account", code: 20, module: "ledger", label: "Account", plural: "Accounts",
        title: name, search: [code, name],
        creation: Creation::ByRole,
    }
    fields {
        code: Text<20> = "Code"
            .indexed()
            .unique(Unique::PerCompany)
            .list()
            .help("Letters and digits, e.g. 1120. Reports sort by code."),
        name: Text<120> = "Name" .indexed().list(),
        class: Choice<AccountClass> = "Class" .indexed().list(),
        r#type: Choice<AccountType> = "Type"
            .list()
            .help("What the account is for: bank, receivable, tax… General otherwise."),
        parent: Option<Ref<AccountRecord>> = "Parent"
            .indexed()
            .list()
            .help("The group it rolls up into; a group of the same class."),
        group: Bool = "Group"
            .list()
            .help("A group only sums its children; entries post to the others."),
    }
}

nexus_kernel::entity! {
    /// The stored form of a journal entry.
    pub struct JournalEntryRecord in JOURNAL_ENTRY {
        name: "journal_entry", code: 21, module: "ledger",
        label: "Journal entry", plural: "Journal entries",
        title: number, search: [number, narration, reference],
        creation: Creation::Module(
            "journal entries are drafted and posted from Ledger → New journal entry (or the \
             ledger API); a posted entry is never edited or deleted: to undo one, cancel it, \
             which posts its reversal",
        ),
    }
    fields {
        number: Text<20> = "Number" .indexed().unique(Unique::PerCompany).list(),
        date: Date = "Date" .indexed().list(),
        narration: Text<200> = "Narration" .indexed().list(),
        reference: Option<Text<60>> = "Reference" .indexed().list(),
        total: Money = "Total"
            .indexed()
            .list()
            .help("The sum of the debits, in the company currency."),
        status: Choice<JournalStatus> = "Status" .indexed().list(),
        kind: Choice<JournalKind> = "Kind",
        reverses: Option<Ref<JournalEntryRecord>> = "Reverses" .indexed(),
        reversed_by: Option<Ref<JournalEntryRecord>> = "Reversed by",
        source: Option<Text<60>> = "Posted by"
            .list()
            .help("The document that posted it (an invoice, a payment, a stock move)."),
        draft_lines: Option<LongText> = "Draft lines"
            .help("A draft's lines as saved (account, debit or credit, memo); empty once posted."),
    }
}

nexus_kernel::entity! {
    /// The stored form of a journal line.
    pub struct JournalLineRecord in JOURNAL_LINE {
        name: "journal_line", code: 22, module: "ledger",
        label: "Journal line", plural: "Journal lines",
        title: memo, search: [memo],
        creation: Creation::Module(
            "journal lines are written with their entry, from Ledger → New journal entry, \
             and are never edited or deleted",
        ),
    }
    fields {
        entry: Ref<JournalEntryRecord> = "Entry" .indexed().list(),
        date: Date = "Date" .indexed().list(),
        account: Ref<AccountRecord> = "Account" .indexed().list(),
        debit: Option<Money> = "Debit" .indexed().list(),
        credit: Option<Money> = "Credit" .indexed().list(),
        memo: Option<Text<200>> = "Memo" .list(),
        line: Int<1, 10_000> = "Line",
        currency: Option<Text<3>> = "Currency"
            .list()
            .help("For a line in a foreign currency: that currency."),
        amount_fx: Option<Money> = "Foreign amount"
            .list()
            .help("The line's amount in its foreign currency."),
        rate: Option<Text<24>> = "Rate" .help("Company currency per unit of the foreign currency."),
    }
}

nexus_kernel::entity! {
    /// The stored form of a fiscal year.
    pub struct FiscalYearRecord in FISCAL_YEAR {
        name: "fiscal_year", code: 23, module: "ledger",
        label: "Fiscal year", plural: "Fiscal years",
        title: name, search: [name],
        creation: Creation::Module(
            "fiscal years are opened and closed under Ledger → Fiscal years; a closed year \
             stays closed",
        ),
    }
    fields {
        name: Text<40> = "Name" .indexed().unique(Unique::PerCompany).list(),
        start: Date = "Start" .indexed().list(),
        end: Date = "End" .list(),
        status: Choice<YearStatus> = "Status" .indexed().list(),
        closing_entry: Option<Ref<JournalEntryRecord>> = "Closing entry" .list(),
    }
}

nexus_kernel::entity! {
    /// The stored form of a supplier.
    pub struct SupplierRecord in SUPPLIER {
        name: "supplier", code: 12, module: "ledger", label: "Supplier", plural: "Suppliers",
        title: name, search: [name, email, city, country],
        creation: Creation::ByRole,
    }
    fields {
        name: Text<120> = "Name" .indexed().unique(Unique::PerCompany).list(),
        email: Option<Email> = "E-mail" .indexed().list(),
        phone: Option<Phone> = "Phone" .list(),
        city: Option<Text<80>> = "City" .indexed().list(),
        country: Option<Text<80>> = "Country" .indexed().list(),
        tax_id: Option<Text<40>> = "Tax ID" .list(),
        iban: Option<Text<34>> = "IBAN" .help("Where payments to this supplier go."),
        payment_terms: Option<Text<40>> = "Payment terms"
            .help("net30, eom30, now, or instalments such as 30%:0,70%:60."),
        notes: Option<LongText> = "Notes",
    }
}

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
    tools: crate::tools::TOOLS,
    jobs: &[&crate::checks::VERIFY],
    schedules: crate::checks::SCHEDULES,
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
     warehouse:rcwdx, stock_move:rcwx, supplier:rcwdx, customer:rcwx, \
     customer.credit_limit:rw, contact:r, company:r, user:r, role:r",
    "Keeps the books: entries, invoices, payments, bank, stock, reports, year-end close.",
)];

#[cfg(test)]
mod tests {
    use nexus_kernel::typed::Options;

    use super::*;

    #[test]
    fn every_class_and_type_is_an_option_by_its_name() {
        for class in AccountClass::ALL {
            assert_eq!(AccountClass::from_name(class.name()), Some(class));
        }
        for kind in <AccountType as Options>::ALL {
            assert_eq!(kind.name(), AccountType::name(*kind));
        }
        assert_eq!(AccountClass::from_name("Nonsense"), None);
        assert_eq!(AccountType::from_name("Nonsense"), None);
    }
}
