//! The bank records in the kernel: bank accounts, statement imports and statement lines.
//! All three are written only by [`super::books`] (`Creation::Module`), which checks what
//! the generic form cannot (the ledger account is a postable Bank account, the currency
//! is the company's, a line is reconciled once); the kernel still gives each a list, a
//! read-only view, the REST API, audit and history.

use nexus_kernel::typed::field::{Choice, Date, Int, Money, Ref, Text};
use nexus_kernel::{Creation, Unique};

use crate::entities::{AccountRecord, JournalEntryRecord, JournalLineRecord};

nexus_kernel::choice! {
    /// The file a statement was imported from.
    pub enum StatementFormat { Csv = "CSV", Camt053 = "camt.053" }
}

nexus_kernel::choice! {
    /// Whether a statement line is matched with the books.
    pub enum LineStatus { Unreconciled, Reconciled }
}

nexus_kernel::entity! {
    /// A bank account of the company and the ledger account it posts to.
    pub struct BankAccountRecord in BANK_ACCOUNT {
        name: "bank_account", code: 30, module: "ledger",
        label: "Bank account", plural: "Bank accounts",
        title: name, search: [name, number],
        creation: Creation::Module(
            "bank accounts are added under Ledger → Bank, which checks the ledger account and \
             the currency",
        ),
    }
    fields {
        name: Text<120> = "Name" .indexed().unique(Unique::PerCompany).list(),
        number: Text<64> = "IBAN / account number"
            .indexed()
            .list()
            .help("As the bank writes it; spaces are ignored."),
        currency: Text<3> = "Currency" .list().help("The company currency."),
        account: Ref<AccountRecord> = "Ledger account"
            .indexed()
            .unique(Unique::PerCompany)
            .list()
            .help("A postable account of type Bank; one bank account per ledger account."),
    }
}

nexus_kernel::entity! {
    /// One imported statement file: what it held and what was skipped.
    pub struct BankStatementRecord in BANK_STATEMENT {
        name: "bank_statement", code: 31, module: "ledger",
        label: "Bank statement", plural: "Bank statements",
        title: format, search: [],
        creation: Creation::Module(
            "statements are imported under Ledger → Bank (or the ledger API) and never edited",
        ),
    }
    fields {
        bank_account: Ref<BankAccountRecord> = "Bank account" .indexed().list(),
        format: Choice<StatementFormat> = "Format" .list(),
        to: Option<Date> = "Last booking" .indexed().list(),
        imported: Int<0, { i64::MAX }> = "Lines imported" .list(),
        skipped: Int<0, { i64::MAX }> = "Already imported" .list(),
        opening: Option<Money> = "Opening balance",
        closing: Option<Money> = "Closing balance" .list(),
    }
}

nexus_kernel::entity! {
    /// One booked movement from an imported statement, and what it was reconciled with.
    pub struct BankLineRecord in BANK_LINE {
        name: "bank_line", code: 32, module: "ledger",
        label: "Statement line", plural: "Statement lines",
        title: description, search: [counterparty, reference, description],
        creation: Creation::Module(
            "statement lines come from importing a statement under Ledger → Bank; they are \
             reconciled there, never edited",
        ),
    }
    fields {
        bank_account: Ref<BankAccountRecord> = "Bank account" .indexed().list(),
        statement: Option<Ref<BankStatementRecord>> = "Statement" .indexed(),
        date: Date = "Booking date" .indexed().list(),
        value_date: Option<Date> = "Value date",
        amount: Money = "Amount" .indexed().list().help("Positive for money into the account."),
        counterparty: Option<Text<200>> = "Counterparty" .indexed().list(),
        reference: Option<Text<200>> = "Reference" .list(),
        description: Option<Text<500>> = "Description" .list(),
        bank_reference: Option<Text<120>> = "Bank reference",
        status: Choice<LineStatus> = "Status" .indexed().list(),
        journal_entry: Option<Ref<JournalEntryRecord>> = "Journal entry" .list(),
        journal_line: Option<Ref<JournalLineRecord>> = "Journal line",
    }
}
