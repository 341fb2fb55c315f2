//! The one error type of the ledger. Every message is written for the person keeping the
//! books: it names the line, the account (code and name), the amount and the currency.

use time::Date;

use crate::{
    AccountClass, AccountId, AccountType, Currency, EntryStatus, Money, PeriodKey, Rate, Side,
};

/// Everything the ledger can refuse. Errors are values: no input makes the ledger panic.
///
/// Line numbers in messages count from 1, as a person reads an entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    // ---- money ----
    /// Not a currency code the ledger accepts.
    #[error("{code:?} is not a currency: {reason}")]
    InvalidCurrency { code: String, reason: &'static str },

    /// Not a decimal amount.
    #[error("{input:?} is not an amount: {reason}")]
    MalformedAmount { input: String, reason: &'static str },

    /// More decimals than the currency's minor unit.
    #[error(
        "{input:?} has more decimals than {currency} allows ({}); {}",
        currency.exponent(),
        round_hint(*currency)
    )]
    TooManyDecimals { input: String, currency: Currency },

    /// A parsed amount beyond what an `i64` of minor units holds.
    #[error("{input:?} is too large for an amount")]
    AmountTooLarge { input: String },

    /// Arithmetic left the range of an `i64` of minor units.
    #[error("the amounts are too large to compute {what}")]
    Overflow { what: String },

    /// Two currencies were combined.
    #[error("{left} and {right} amounts cannot be added together")]
    CurrencyMismatch { left: Currency, right: Currency },

    /// Not an exchange rate.
    #[error("{input:?} is not an exchange rate: {reason}")]
    InvalidRate { input: String, reason: &'static str },

    // ---- chart of accounts ----
    /// Two accounts with one id.
    #[error("two accounts have the id #{id}; ids must be unique")]
    DuplicateAccountId { id: AccountId },

    /// Two accounts with one code (codes compare without regard to case).
    #[error("two accounts have the code {code}; codes must be unique")]
    DuplicateCode { code: String },

    /// A code that is empty, too long, or not letters and digits.
    #[error("account code {code:?} is not valid: use 1 to 20 letters and digits, such as 1200")]
    InvalidCode { code: String },

    /// An account without a name.
    #[error("account {code} has no name")]
    EmptyName { code: String },

    /// A parent id that is not in the chart.
    #[error("account {account} is filed under account #{parent}, which is not in the chart")]
    UnknownParent { account: String, parent: AccountId },

    /// A parent that is a postable account rather than a group.
    #[error("account {account} is filed under {parent}, which is not a group account")]
    ParentNotGroup { account: String, parent: String },

    /// A parent of another class (an expense under an asset group).
    #[error("account {account} is {} but its group {parent} is {}", class.label(), parent_class.label())]
    ParentClassMismatch {
        account: String,
        class: AccountClass,
        parent: String,
        parent_class: AccountClass,
    },

    /// Groups that contain themselves.
    #[error("account {account} is filed under itself: its groups form a loop")]
    ParentCycle { account: String },

    /// A type that does not fit the class (a receivable that is not an asset).
    #[error("account {account} is a {} account, so it cannot be {}", kind.label(), class.label())]
    TypeClassMismatch {
        account: String,
        kind: AccountType,
        class: AccountClass,
    },

    /// An account id not in the chart, outside a journal line.
    #[error("account #{account} is not in the chart of accounts")]
    NoSuchAccount { account: AccountId },

    // ---- periods ----
    /// A fiscal year with impossible bounds.
    #[error("a fiscal year from {start} to {end} is not possible: {reason}")]
    InvalidFiscalYear {
        start: Date,
        end: Date,
        reason: &'static str,
    },

    /// A date the ledger cannot file into a period.
    #[error("{date} is outside the dates the ledger keeps (years 1 to 9999)")]
    DateOutOfRange { date: Date },

    /// A year the ledger cannot keep.
    #[error("year {year} is outside the years the ledger keeps (1 to 9999)")]
    YearOutOfRange { year: i32 },

    /// A period range that ends before it starts.
    #[error("the periods {from} to {to} are in the wrong order: the range ends before it starts")]
    InvalidRange { from: PeriodKey, to: PeriodKey },

    /// A date on or before the lock date.
    #[error(
        "the books are locked up to and including {lock}: an entry dated {date} cannot be posted; \
         date it after {lock} or ask for the lock date to be moved"
    )]
    Locked { date: Date, lock: Date },

    // ---- journal entries ----
    /// An entry whose currency is not the company's.
    #[error(
        "the entry is in {entry} but the company keeps its books in {company}; \
         give foreign amounts as transaction amounts on the lines"
    )]
    WrongCurrency { entry: Currency, company: Currency },

    /// Fewer than two lines.
    #[error("a journal entry needs at least two lines, a debit and a credit; this one has {count}")]
    TooFewLines { count: usize },

    /// A line of zero.
    #[error("line {line} has a zero amount; remove the line or give it an amount")]
    ZeroLine { line: usize },

    /// A line to an account id not in the chart.
    #[error("line {line}: account #{account} is not in the chart of accounts")]
    UnknownAccount { line: usize, account: AccountId },

    /// A line to a group account.
    #[error("line {line}: {account} is a group account; post to one of the accounts under it")]
    GroupAccount { line: usize, account: String },

    /// A line larger than [`crate::MAX_LINE_MINOR`] minor units.
    #[error("line {line}: {amount} is more than one line may carry (at most {max} either way)")]
    LineTooLarge {
        line: usize,
        amount: Money,
        max: Money,
    },

    /// Debits and credits differ.
    #[error("{}", unbalanced_message(*debits, *credits))]
    Unbalanced { debits: Money, credits: Money },

    /// A transaction amount in the company currency.
    #[error(
        "line {line}: {currency} is the company currency; give the amount without a transaction currency"
    )]
    ForeignInCompanyCurrency { line: usize, currency: Currency },

    /// A line whose company amount is not its transaction amount at its rate.
    #[error("line {line}: {foreign} at {rate} is {expected}, not {actual}")]
    RateMismatch {
        line: usize,
        foreign: Money,
        rate: Rate,
        expected: Money,
        actual: Money,
    },

    /// A line to a foreign-currency account without an amount in that currency.
    #[error("line {line}: {account} is kept in {currency}; give the line's amount in {currency}")]
    AccountCurrency {
        line: usize,
        account: String,
        currency: Currency,
    },

    /// A reversal dated before the entry it reverses.
    #[error("entry {entry} is dated {entry_date}; its reversal cannot be dated earlier ({date})")]
    ReversalBeforeEntry {
        entry: u64,
        entry_date: Date,
        date: Date,
    },

    /// A status change the life cycle does not allow.
    #[error("{}", transition_message(*from, *to))]
    InvalidTransition { from: EntryStatus, to: EntryStatus },

    /// A problem with one entry among many (as in an export).
    #[error("entry {entry}: {problem}")]
    InEntry {
        entry: u64,
        problem: Box<LedgerError>,
    },

    // ---- statements and closing ----
    /// Totals whose debits and credits differ: they were damaged outside the ledger.
    #[error(
        "the books are out of balance by {difference}: the stored totals are damaged; \
         rebuild them from the posted entries"
    )]
    OutOfBalance { difference: Money },

    /// A retained-earnings account that cannot take the year's result.
    #[error("{account} cannot take the year's result: {reason}")]
    NotRetainedEarnings {
        account: String,
        reason: &'static str,
    },

    /// Income or expense balances left from an earlier year.
    #[error(
        "the previous year is not closed: {account} has a {side} balance of {balance} on {date}; \
         close the earlier year first"
    )]
    PriorYearNotClosed {
        account: String,
        side: Side,
        balance: Money,
        date: Date,
    },

    /// A closing entry dated outside its year.
    #[error("{date} is outside the fiscal year {start} to {end}")]
    DateOutsideYear { date: Date, start: Date, end: Date },

    /// A year without income or expense balances.
    #[error("the fiscal year {start} to {end} has no income or expense balances to close")]
    NothingToClose { start: Date, end: Date },
}

fn round_hint(currency: Currency) -> String {
    match currency.exponent() {
        0 => format!("round it to whole {currency}"),
        1 => "round it to 1 decimal".to_owned(),
        n => format!("round it to {n} decimals"),
    }
}

fn unbalanced_message(debits: Money, credits: Money) -> String {
    let currency = debits.currency();
    let (larger, smaller, excess) = if debits.minor() > credits.minor() {
        (debits, credits, "debits exceed credits")
    } else {
        (credits, debits, "credits exceed debits")
    };
    let by = match larger.checked_sub(smaller) {
        Ok(difference) => difference.to_string(),
        Err(_) => "more than the ledger can count".to_owned(),
    };
    format!(
        "the entry does not balance in {currency}: debits {debits}, credits {credits}; {excess} by {by}"
    )
}

fn transition_message(from: EntryStatus, to: EntryStatus) -> String {
    match (from, to) {
        (EntryStatus::Posted, EntryStatus::Draft) => {
            "a posted entry is never edited: cancel it (which posts a reversal) and enter it again"
                .to_owned()
        }
        (EntryStatus::Cancelled, _) => "the entry is cancelled; it cannot change again".to_owned(),
        (EntryStatus::Draft, EntryStatus::Cancelled) => {
            "a draft was never posted, so there is nothing to cancel: delete the draft".to_owned()
        }
        (from, _) => format!("the entry is already {from}"),
    }
}
