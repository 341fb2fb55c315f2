//! Receivables and payables, pure: invoices and credit notes, payments and their
//! allocation, open items, aging and dunning. No storage, no clock: the store persists
//! the plain structs here (ids are `u64`) and passes dates in.
//!
//! * [`invoice`]: [`Document`] (sales/purchase invoice or credit note) with
//!   [`DocumentLine`]s, [`Tax`]es, [`PaymentTerms`]; [`Document::totals`],
//!   [`Document::journal_entry`], [`Document::open_item`].
//! * [`settlement`]: [`OpenItem`], [`Payment`] with [`Allocation`]s
//!   ([`Payment::settle`]), credit notes and credits on account set against invoices
//!   ([`allocate_credit`]), with realised exchange gains and losses.
//! * [`mod@aging`]: [`aging()`](fn@aging::aging) buckets and dunning [`reminders`] with a
//!   plain-text [`Reminder::letter`].
//!
//! ```
//! use nexus_ledger::receivables::{Document, DocumentKind, DocumentLine, PaymentTerms};
//! use nexus_ledger::receivables::{PostingAccounts, Quantity, Tax, Percent};
//! use nexus_ledger::{Chart, Currency, PostedEntry};
//! use time::macros::date;
//!
//! let chart = Chart::small_firm_template(Currency::USD);
//! let accounts = PostingAccounts::from_chart(&chart)?;
//! let id = |code| chart.by_code(code).unwrap().id;
//! let invoice = Document {
//!     id: 1,
//!     kind: DocumentKind::SalesInvoice,
//!     party: 7,
//!     number: "INV-1".to_owned(),
//!     date: date!(2024 - 03 - 01),
//!     currency: Currency::USD,
//!     rate: None,
//!     terms: PaymentTerms::parse("net30")?,
//!     prices_include_tax: false,
//!     lines: vec![DocumentLine {
//!         description: "Consulting".to_owned(),
//!         quantity: Quantity::parse("2.5")?,
//!         unit_price: 10_000,
//!         discount: None,
//!         account: id("4200"),
//!         taxes: vec!["VAT20".to_owned()],
//!     }],
//!     taxes: vec![Tax {
//!         code: "VAT20".to_owned(),
//!         name: "VAT 20%".to_owned(),
//!         percent: Percent::parse("20")?,
//!         account: id("2210"),
//!     }],
//! };
//! let totals = invoice.totals()?;
//! assert_eq!((totals.net, totals.taxes[0].tax, totals.total), (25_000, 5_000, 30_000));
//! PostedEntry::post(invoice.journal_entry(&accounts)?, &chart, None)?;
//! let item = invoice.open_item(&accounts)?;
//! assert_eq!(item.due, vec![(date!(2024 - 03 - 31), 30_000)]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Sign conventions, the same everywhere:
//! * documents show positive amounts; the [`DocumentKind`] gives the direction;
//! * an [`OpenItem`]'s amounts are signed within its [`Ledger`]: positive is what the
//!   party owes us (receivables) or what we owe the party (payables); credit notes and
//!   credits on account are negative;
//! * journal lines are debit-positive, as in [`crate::Line`].
//!
//! Invariants the store can rely on:
//! * every generated journal entry balances in the company currency and passes
//!   [`crate::PostedEntry::post`] against a chart holding the accounts used;
//! * an item's `booked_open` is always exactly what is left of it on the control account
//!   (receivable or payable): the control account's balance equals the sum of the open
//!   items' `booked_open`, to the minor unit;
//! * no input panics; amounts are exact integers, never floats.

pub mod aging;
pub mod books;
pub mod demo;
pub mod entities;
pub mod invoice;
pub mod settlement;

pub use aging::{
    Aging, AgingRow, DEFAULT_BUCKETS, DunningLevel, DunningPolicy, Reminder, ReminderItem, aging,
    reminders,
};
pub use invoice::{
    Document, DocumentKind, DocumentLine, Instalment, PaymentTerms, Percent, Quantity, Tax, TaxRow,
    Totals,
};
pub use settlement::{
    Allocation, Applied, ItemId, OpenItem, Payment, PaymentKind, Settlement, allocate_credit,
};

use time::Date;

use crate::{AccountClass, AccountId, AccountType, Chart, Currency, LedgerError, Line, Money};

/// Which side of the business an item belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Ledger {
    /// Customers owe us: sales invoices and sales credit notes.
    Receivable,
    /// We owe suppliers: purchase invoices and purchase credit notes.
    Payable,
}

impl Ledger {
    /// `+1` for receivables (an asset, debit balance), `-1` for payables (credit).
    pub const fn sign(self) -> i64 {
        match self {
            Ledger::Receivable => 1,
            Ledger::Payable => -1,
        }
    }

    /// `"customer"` or `"supplier"`, for messages.
    pub const fn party_label(self) -> &'static str {
        match self {
            Ledger::Receivable => "customer",
            Ledger::Payable => "supplier",
        }
    }
}

/// The accounts receivables and payables post to, and the company currency. Tax
/// accounts come with each [`Tax`]; income and expense accounts with each line; the
/// bank account with each [`Payment`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PostingAccounts {
    /// The currency the books are kept in.
    pub company: Currency,
    /// Trade debtors: the control account of sales documents.
    pub receivable: AccountId,
    /// Trade creditors: the control account of purchase documents.
    pub payable: AccountId,
    /// Realised exchange gains (income).
    pub fx_gain: AccountId,
    /// Realised exchange losses (expense).
    pub fx_loss: AccountId,
}

impl PostingAccounts {
    /// The first non-group account of each needed type in `chart` (in code order):
    /// receivable, payable, exchange gain/loss as income, and as expense.
    pub fn from_chart(chart: &Chart) -> Result<PostingAccounts, ReceivablesError> {
        let find = |kind: AccountType, class: Option<AccountClass>, what: &'static str| {
            chart
                .accounts()
                .find(|a| !a.is_group && a.kind == kind && class.is_none_or(|c| a.class == c))
                .map(|a| a.id)
                .ok_or(ReceivablesError::MissingAccount { what })
        };
        Ok(PostingAccounts {
            company: chart.currency(),
            receivable: find(AccountType::Receivable, None, "a receivable account")?,
            payable: find(AccountType::Payable, None, "a payable account")?,
            fx_gain: find(
                AccountType::FxGainLoss,
                Some(AccountClass::Income),
                "an exchange gains account (income)",
            )?,
            fx_loss: find(
                AccountType::FxGainLoss,
                Some(AccountClass::Expense),
                "an exchange losses account (expense)",
            )?,
        })
    }

    /// The control account of `ledger`.
    pub const fn control(&self, ledger: Ledger) -> AccountId {
        match ledger {
            Ledger::Receivable => self.receivable,
            Ledger::Payable => self.payable,
        }
    }
}

/// Everything receivables and payables refuse, with messages for the bookkeeper.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReceivablesError {
    /// A money, rate or posting problem from the ledger.
    #[error(transparent)]
    Ledger(#[from] LedgerError),

    /// Not a quantity.
    #[error("{input:?} is not a quantity: {reason}")]
    MalformedQuantity { input: String, reason: &'static str },

    /// Not a percentage.
    #[error("{input:?} is not a percentage: {reason}")]
    MalformedPercent { input: String, reason: &'static str },

    /// Payment terms that cannot be read.
    #[error("{input:?} are not payment terms: {reason}")]
    MalformedTerms { input: String, reason: String },

    /// Instalments whose shares do not add up to 100%.
    #[error("the instalments add up to {total}%, not 100%")]
    InstalmentsNot100 { total: Percent },

    /// A due date beyond the calendar the ledger keeps.
    #[error("{days} days after {date} is beyond the dates the ledger keeps")]
    DueDateOutOfRange { date: Date, days: u32 },

    /// A document without lines.
    #[error("{document} has no lines")]
    NoLines { document: String },

    /// A negative quantity on a document.
    #[error(
        "{document}, line {line}: the quantity {quantity} is negative; \
         issue a credit note to take goods or services back"
    )]
    NegativeQuantity {
        document: String,
        line: usize,
        quantity: Quantity,
    },

    /// A negative unit price.
    #[error(
        "{document}, line {line}: the unit price {price} is negative; \
         give a discount or issue a credit note"
    )]
    NegativePrice {
        document: String,
        line: usize,
        price: Money,
    },

    /// A discount over 100%.
    #[error("{document}, line {line}: a discount of {discount}% is more than the whole price")]
    DiscountOver100 {
        document: String,
        line: usize,
        discount: Percent,
    },

    /// A line naming a tax the document does not list.
    #[error("{document}, line {line}: there is no tax with the code {code:?}")]
    UnknownTaxCode {
        document: String,
        line: usize,
        code: String,
    },

    /// A line naming one tax twice.
    #[error("{document}, line {line}: the tax {code:?} is listed twice")]
    TaxTwiceOnLine {
        document: String,
        line: usize,
        code: String,
    },

    /// Two taxes with one code on a document.
    #[error("{document}: two taxes have the code {code:?}")]
    DuplicateTaxCode { document: String, code: String },

    /// A document whose total is zero.
    #[error("{document} comes to a total of zero; there is nothing to invoice")]
    ZeroTotal { document: String },

    /// A foreign-currency document or payment without an exchange rate.
    #[error(
        "{what} is in {currency} but the books are kept in {company}: give the exchange rate \
         ({company} per {currency}) of {date}"
    )]
    MissingRate {
        what: String,
        currency: Currency,
        company: Currency,
        date: Date,
    },

    /// An exchange rate on something in the company currency.
    #[error("{what} is in {currency}, the company currency: leave the exchange rate out")]
    RateInCompanyCurrency { what: String, currency: Currency },

    /// An amount that is worth nothing in the company currency at its rate.
    #[error(
        "{what}: {amount} is worth nothing in {company} at {rate}; check the amount and the rate"
    )]
    WorthNothing {
        what: String,
        amount: Money,
        rate: crate::Rate,
        company: Currency,
    },

    /// A payment of zero or less.
    #[error("a payment must be more than zero, not {amount}; record refunds as refunds")]
    PaymentNotPositive { amount: Money },

    /// An allocation of zero or less.
    #[error("the allocation to {document} must be more than zero, not {amount}")]
    AllocationNotPositive { document: String, amount: Money },

    /// An allocation naming an item that is not open.
    #[error("there is no open item {item} to allocate to")]
    UnknownItem { item: ItemId },

    /// One item allocated twice in one payment.
    #[error("{document} is allocated twice; give it one allocation")]
    AllocatedTwice { document: String },

    /// An allocation above what is open on the item.
    #[error("{document} has {open} open; {attempted} cannot be allocated to it")]
    AllocationExceedsOpen {
        document: String,
        open: Money,
        attempted: Money,
    },

    /// An allocation to another party's item.
    #[error("{document} belongs to {ledger} #{owner}, not to #{party}")]
    WrongParty {
        document: String,
        ledger: &'static str,
        owner: u64,
        party: u64,
    },

    /// An allocation between a customer's and a supplier's item.
    #[error("{document} is a {item_ledger} item; it cannot be settled by a {ledger} payment")]
    WrongLedger {
        document: String,
        item_ledger: &'static str,
        ledger: &'static str,
    },

    /// An allocation in another currency than the item's.
    #[error("{document} is in {document_currency}; it cannot be settled in {currency}")]
    WrongCurrency {
        document: String,
        document_currency: Currency,
        currency: Currency,
    },

    /// An allocation that does not fit the item's direction (a payment against a
    /// credit note where an invoice is needed, say).
    #[error("{document} {reason}")]
    WrongDirection {
        document: String,
        reason: &'static str,
    },

    /// Allocations that add up to more than the payment.
    #[error(
        "the allocations add up to {allocated}, more than the payment of {payment}; \
         reduce them or record the payment in full"
    )]
    AllocationsExceedPayment { allocated: Money, payment: Money },

    /// Allocations that net to the other direction than the payment's.
    #[error(
        "{payment} settles {settles}, but its allocations net to {allocated} owed the other way"
    )]
    AllocationsWrongWay {
        payment: String,
        settles: &'static str,
        allocated: Money,
    },

    /// Aging buckets that are not increasing day counts.
    #[error(
        "aging buckets must be increasing day counts from 1, such as 30, 60, 90; not {buckets:?}"
    )]
    InvalidBuckets { buckets: Vec<u32> },

    /// A dunning policy that cannot be used.
    #[error("the dunning policy is not valid: {reason}")]
    InvalidPolicy { reason: &'static str },

    /// A chart without an account this module needs.
    #[error("the chart of accounts has no {what}")]
    MissingAccount { what: &'static str },
}

/// `numerator / denominator` rounded to the nearest integer, halves away from zero.
/// `None` for a zero denominator.
pub(crate) fn div_round(numerator: i128, denominator: i128) -> Option<i128> {
    let quotient = numerator.checked_div(denominator)?;
    let remainder = numerator.checked_rem(denominator)?;
    if remainder.unsigned_abs() * 2 >= denominator.unsigned_abs() {
        Some(quotient + remainder.signum() * denominator.signum())
    } else {
        Some(quotient)
    }
}

/// `value` as an `i64`, or an overflow error naming `what`.
pub(crate) fn to_i64(value: i128, what: impl FnOnce() -> String) -> Result<i64, ReceivablesError> {
    i64::try_from(value).map_err(|_| LedgerError::Overflow { what: what() }.into())
}

/// `a + b` on minor units, or an overflow error.
pub(crate) fn add(a: i64, b: i64) -> Result<i64, ReceivablesError> {
    a.checked_add(b).ok_or_else(|| {
        LedgerError::Overflow {
            what: format!("{a} + {b} minor units"),
        }
        .into()
    })
}

/// The lines for `company` minor units on a control (receivable, payable) account.
///
/// In the company currency: one line. In a foreign currency: a line with the
/// transaction amount `foreign` at `rate` ([`Line::foreign`]), plus, when the booked
/// company amount differs from that conversion (rounding of separately converted lines,
/// proportional clearing), a company-currency-only line with the difference on the same
/// account. The two together carry exactly `company`.
pub(crate) fn control_lines(
    account: AccountId,
    foreign: Money,
    rate: Option<crate::Rate>,
    company: Money,
) -> Result<Vec<Line>, ReceivablesError> {
    let mut lines = Vec::with_capacity(2);
    let mut rest = company.minor();
    if let Some(rate) = rate.filter(|_| foreign.currency() != company.currency()) {
        let line = Line::foreign(account, foreign, rate, company.currency())?;
        rest = rest
            .checked_sub(line.amount)
            .ok_or_else(|| LedgerError::Overflow {
                what: format!("{company} less {foreign} at {rate}"),
            })?;
        lines.push(line);
    }
    lines.push(Line::debit(account, rest));
    Ok(lines)
}

/// Tidies generated lines: leaves out zero lines (a 0% tax row, a tiny foreign amount
/// worth nothing in the company currency). When a left-out line carried a transaction
/// amount and all remaining lines are in that one transaction currency, the entry would
/// no longer balance in it, so the `anchor` account's lines lose their transaction
/// amount (they stay exact in the company currency).
pub(crate) fn finish_lines(lines: Vec<Line>, anchor: AccountId) -> Vec<Line> {
    let dropped_foreign = lines
        .iter()
        .any(|l| l.amount == 0 && l.foreign.is_some_and(|f| !f.amount.is_zero()));
    let mut lines: Vec<Line> = lines.into_iter().filter(|l| l.amount != 0).collect();
    if dropped_foreign {
        let first = lines
            .first()
            .and_then(|l| l.foreign)
            .map(|f| f.amount.currency());
        let all_one = first.is_some_and(|c| {
            lines
                .iter()
                .all(|l| l.foreign.is_some_and(|f| f.amount.currency() == c))
        });
        if all_one {
            for line in lines.iter_mut().filter(|l| l.account == anchor) {
                line.foreign = None;
            }
        }
    }
    lines
}

#[cfg(test)]
pub(crate) mod testkit {
    //! Shared fixtures: the template chart in USD and its posting accounts.
    use time::Date;

    use super::{
        Document, DocumentKind, DocumentLine, Ledger, PaymentTerms, PostingAccounts, Quantity,
    };
    use crate::{AccountId, Chart, Currency, JournalEntry, PostedEntry};

    pub(crate) struct Fixture {
        pub chart: Chart,
        pub accounts: PostingAccounts,
    }

    impl Fixture {
        pub fn usd() -> Fixture {
            let chart = Chart::small_firm_template(Currency::USD);
            let accounts = PostingAccounts::from_chart(&chart).unwrap();
            Fixture { chart, accounts }
        }

        pub fn id(&self, code: &str) -> AccountId {
            self.chart.by_code(code).unwrap().id
        }

        /// Posts `entry` against the template chart (panics with the reason if refused).
        pub fn post(&self, entry: JournalEntry) -> PostedEntry {
            match PostedEntry::post(entry.clone(), &self.chart, None) {
                Ok(posted) => posted,
                Err(err) => panic!("{err}: {entry:#?}"),
            }
        }

        /// A document of one untaxed line of `net` minor units, Net 30, in `currency`
        /// at `rate` (`None` for the company currency).
        #[allow(clippy::too_many_arguments)]
        pub fn document(
            &self,
            kind: DocumentKind,
            id: u64,
            party: u64,
            date: Date,
            currency: Currency,
            rate: Option<&str>,
            net: i64,
        ) -> Document {
            let account = match kind.ledger() {
                Ledger::Receivable => "4100",
                Ledger::Payable => "6400",
            };
            Document {
                id,
                kind,
                party,
                number: format!("D-{id}"),
                date,
                currency,
                rate: rate.map(|r| crate::Rate::parse(r).unwrap()),
                terms: PaymentTerms::Net(30),
                prices_include_tax: false,
                lines: vec![DocumentLine {
                    description: "Goods".to_owned(),
                    quantity: Quantity::units(1),
                    unit_price: net,
                    discount: None,
                    account: self.id(account),
                    taxes: vec![],
                }],
                taxes: vec![],
            }
        }

        /// `(account code, debit-positive company amount, foreign minor)` per line.
        pub fn lines(&self, entry: &JournalEntry) -> Vec<(String, i64, Option<i64>)> {
            entry
                .lines
                .iter()
                .map(|l| {
                    let code = self.chart.get(l.account).unwrap().code.clone();
                    (code, l.amount, l.foreign.map(|f| f.amount.minor()))
                })
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_is_half_away_from_zero() {
        assert_eq!(div_round(5, 2), Some(3));
        assert_eq!(div_round(-5, 2), Some(-3));
        assert_eq!(div_round(4, 3), Some(1));
        assert_eq!(div_round(-4, 3), Some(-1));
        assert_eq!(div_round(1, 0), None);
    }

    #[test]
    fn posting_accounts_come_from_the_template() {
        let chart = Chart::small_firm_template(Currency::USD);
        let accounts = PostingAccounts::from_chart(&chart).unwrap();
        let code = |id| chart.get(id).unwrap().code.as_str();
        assert_eq!(code(accounts.receivable), "1210");
        assert_eq!(code(accounts.payable), "2110");
        assert_eq!(code(accounts.fx_gain), "4400");
        assert_eq!(code(accounts.fx_loss), "6900");
    }
}
