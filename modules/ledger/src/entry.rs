//! Journal entries: lines, validation, posting, reversal, and the entry life cycle.

use std::fmt;
use std::ops::Deref;

use time::Date;

use crate::{AccountId, Chart, Currency, LedgerError, LockDate, Money, PeriodKey, Rate};

/// The largest amount one line may carry, either way, in minor units of its currency:
/// 10^15 (ten trillion dollars). Far beyond any real line, and small enough that sums
/// of thousands of lines cannot overflow an `i64`.
pub const MAX_LINE_MINOR: i64 = 1_000_000_000_000_000;

/// An amount in a transaction (foreign) currency, and the rate that turned it into the
/// line's company-currency amount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Foreign {
    /// The amount in the transaction currency; same sign as the line.
    pub amount: Money,
    /// Company currency per unit of the transaction currency.
    pub rate: Rate,
}

/// One line of a journal entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The account posted to: a non-group account of the chart.
    pub account: AccountId,
    /// Minor units of the entry's (company) currency: positive is a debit, negative a
    /// credit, never zero.
    pub amount: i64,
    /// The transaction-currency amount, for lines in a foreign currency. The company
    /// amount must be `foreign.amount` at `foreign.rate`, rounded to the company
    /// currency's minor unit, halves away from zero ([`Rate::convert`]).
    pub foreign: Option<Foreign>,
}

impl Line {
    /// A debit of `minor` company-currency units.
    pub const fn debit(account: AccountId, minor: i64) -> Line {
        Line {
            account,
            amount: minor,
            foreign: None,
        }
    }

    /// A credit of `minor` company-currency units (`minor` is given positive).
    pub const fn credit(account: AccountId, minor: i64) -> Line {
        Line {
            account,
            amount: minor.saturating_neg(),
            foreign: None,
        }
    }

    /// A line of `amount` in a transaction currency at `rate`: debit if positive. Its
    /// company amount is computed here; it fails only on overflow.
    pub fn foreign(
        account: AccountId,
        amount: Money,
        rate: Rate,
        company: Currency,
    ) -> Result<Line, LedgerError> {
        Ok(Line {
            account,
            amount: rate.convert(amount, company)?.minor(),
            foreign: Some(Foreign { amount, rate }),
        })
    }

    /// Whether this line is on the debit side.
    pub const fn is_debit(&self) -> bool {
        self.amount > 0
    }
}

/// Why an entry exists, beyond its narration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// An ordinary entry.
    Regular,
    /// The reversal that cancels entry `of`.
    Reversal {
        /// The id of the entry reversed.
        of: u64,
    },
    /// A year-end closing entry ([`crate::closing_entry`]): it moves the year's income
    /// and expenses to retained earnings, so the profit and loss account leaves it out.
    Closing,
}

/// A journal entry: a dated set of lines whose debits equal its credits.
///
/// This type is the draft form, freely edited; [`PostedEntry::post`] validates it and
/// from then on it cannot change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEntry {
    /// Stable id, assigned by the store.
    pub id: u64,
    /// The company currency, in which every line's `amount` is counted.
    pub currency: Currency,
    /// The accounting date: the period the entry counts in.
    pub date: Date,
    /// What happened, for people: "Invoice 1042 to Acme".
    pub narration: String,
    /// The outside document, such as an invoice number; may be empty.
    pub reference: String,
    /// Ordinary, reversal or closing.
    pub kind: EntryKind,
    /// At least two lines.
    pub lines: Vec<Line>,
}

/// Checks that `entry` may be posted to `chart` with the books locked at `lock`:
///
/// * the entry is in the chart's currency and dated after the lock date;
/// * it has at least two lines; no line is zero or larger than [`MAX_LINE_MINOR`];
/// * every line posts to an account of the chart that is not a group;
/// * a line with a transaction amount is not in the company currency and its company
///   amount is the transaction amount at the rate; a line to an account kept in a
///   foreign currency has its amount in that currency;
/// * debits equal credits to the minor unit in the company currency, and, when all
///   lines are in the same transaction currency, in that currency too. (An entry that
///   mixes currencies, such as a payment with an exchange difference, balances in the
///   company currency only.)
///
/// The first problem found is returned.
pub fn validate(
    entry: &JournalEntry,
    chart: &Chart,
    lock: Option<LockDate>,
) -> Result<(), LedgerError> {
    let company = chart.currency();
    if entry.currency != company {
        return Err(LedgerError::WrongCurrency {
            entry: entry.currency,
            company,
        });
    }
    if let Some(lock) = lock {
        lock.check(entry.date)?;
    }
    PeriodKey::of(entry.date)?;
    if entry.lines.len() < 2 {
        return Err(LedgerError::TooFewLines {
            count: entry.lines.len(),
        });
    }
    for (index, line) in entry.lines.iter().enumerate() {
        validate_line(index + 1, line, chart)?;
    }
    check_balance(sides(company, entry.lines.iter().map(|line| line.amount))?)?;
    if let Some((currency, amounts)) = single_foreign_currency(&entry.lines) {
        check_balance(sides(currency, amounts)?)?;
    }
    Ok(())
}

fn validate_line(line_no: usize, line: &Line, chart: &Chart) -> Result<(), LedgerError> {
    let company = chart.currency();
    let account = chart.get(line.account).ok_or(LedgerError::UnknownAccount {
        line: line_no,
        account: line.account,
    })?;
    if account.is_group {
        return Err(LedgerError::GroupAccount {
            line: line_no,
            account: account.label(),
        });
    }
    if line.amount == 0 {
        return Err(LedgerError::ZeroLine { line: line_no });
    }
    within_limit(line_no, Money::new(line.amount, company))?;
    let kept_in = account.currency.unwrap_or(company);
    match line.foreign {
        None if kept_in != company => Err(LedgerError::AccountCurrency {
            line: line_no,
            account: account.label(),
            currency: kept_in,
        }),
        None => Ok(()),
        Some(Foreign { amount, .. }) if amount.currency() == company => {
            Err(LedgerError::ForeignInCompanyCurrency {
                line: line_no,
                currency: company,
            })
        }
        Some(Foreign { amount, .. })
            if account.currency.is_some() && amount.currency() != kept_in =>
        {
            Err(LedgerError::AccountCurrency {
                line: line_no,
                account: account.label(),
                currency: kept_in,
            })
        }
        Some(Foreign { amount, rate }) => {
            within_limit(line_no, amount)?;
            let expected = rate.convert(amount, company)?;
            if expected.minor() == line.amount {
                Ok(())
            } else {
                Err(LedgerError::RateMismatch {
                    line: line_no,
                    foreign: amount,
                    rate,
                    expected,
                    actual: Money::new(line.amount, company),
                })
            }
        }
    }
}

/// The transaction currency of `lines` and their amounts in it, when every line has
/// an amount in the same transaction currency.
fn single_foreign_currency(lines: &[Line]) -> Option<(Currency, Vec<i64>)> {
    let currency = lines.first()?.foreign?.amount.currency();
    let amounts = lines
        .iter()
        .map(|line| {
            line.foreign
                .filter(|foreign| foreign.amount.currency() == currency)
                .map(|foreign| foreign.amount.minor())
        })
        .collect::<Option<Vec<i64>>>()?;
    Some((currency, amounts))
}

fn within_limit(line_no: usize, amount: Money) -> Result<(), LedgerError> {
    if amount.minor().unsigned_abs() > MAX_LINE_MINOR.unsigned_abs() {
        return Err(LedgerError::LineTooLarge {
            line: line_no,
            amount,
            max: Money::new(MAX_LINE_MINOR, amount.currency()),
        });
    }
    Ok(())
}

/// The debit and credit totals of `amounts` (credits as a positive sum).
fn sides(
    currency: Currency,
    amounts: impl IntoIterator<Item = i64>,
) -> Result<(Money, Money), LedgerError> {
    let (mut debits, mut credits) = (0i128, 0i128);
    for amount in amounts {
        if amount > 0 {
            debits += i128::from(amount);
        } else {
            credits -= i128::from(amount);
        }
    }
    let money = |sum: i128, side: &str| {
        i64::try_from(sum)
            .map(|minor| Money::new(minor, currency))
            .map_err(|_| LedgerError::Overflow {
                what: format!("the entry's {side} in {currency}"),
            })
    };
    Ok((money(debits, "debits")?, money(credits, "credits")?))
}

fn check_balance((debits, credits): (Money, Money)) -> Result<(), LedgerError> {
    if debits == credits {
        Ok(())
    } else {
        Err(LedgerError::Unbalanced { debits, credits })
    }
}

/// An entry that passed [`validate`] and was posted. It derefs to the entry for reading
/// and offers no way to change it: a posted entry is corrected only by reversing it.
///
/// Invariant: the entry was valid against the chart it was posted to, so its lines are
/// balanced, non-zero, within [`MAX_LINE_MINOR`], in the company currency, and dated in
/// a period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostedEntry(JournalEntry);

impl PostedEntry {
    /// Validates `entry` ([`validate`]) and marks it posted.
    pub fn post(
        entry: JournalEntry,
        chart: &Chart,
        lock: Option<LockDate>,
    ) -> Result<PostedEntry, LedgerError> {
        validate(&entry, chart, lock)?;
        Ok(PostedEntry(entry))
    }

    /// The entry.
    pub const fn entry(&self) -> &JournalEntry {
        &self.0
    }

    /// The entry, given back as a draft (for example to copy it).
    pub fn into_entry(self) -> JournalEntry {
        self.0
    }
}

impl Deref for PostedEntry {
    type Target = JournalEntry;

    fn deref(&self) -> &JournalEntry {
        &self.0
    }
}

/// The draft reversal of `entry`, dated `date`, with id `id`: every line on the other
/// side (transaction amounts too, at the same rates), so that posting both leaves every
/// account as it was. The original stays posted; the store marks it cancelled.
pub fn reverse(entry: &PostedEntry, date: Date, id: u64) -> Result<JournalEntry, LedgerError> {
    if date < entry.date {
        return Err(LedgerError::ReversalBeforeEntry {
            entry: entry.id,
            entry_date: entry.date,
            date,
        });
    }
    let lines = entry
        .lines
        .iter()
        .map(|line| {
            let amount = Money::new(line.amount, entry.currency)
                .checked_neg()?
                .minor();
            let foreign = match line.foreign {
                Some(Foreign { amount, rate }) => Some(Foreign {
                    amount: amount.checked_neg()?,
                    rate,
                }),
                None => None,
            };
            Ok(Line {
                account: line.account,
                amount,
                foreign,
            })
        })
        .collect::<Result<_, LedgerError>>()?;
    Ok(JournalEntry {
        id,
        currency: entry.currency,
        date,
        narration: format!("Reversal of entry {}: {}", entry.id, entry.narration),
        reference: entry.reference.clone(),
        kind: EntryKind::Reversal { of: entry.id },
        lines,
    })
}

/// Where an entry is in its life: `Draft → Posted → Cancelled`.
///
/// A draft may be edited or deleted. A posted entry counts in the totals and is never
/// edited. Cancelling posts a reversal ([`reverse`]); the cancelled entry and its
/// reversal both stay in the journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryStatus {
    /// Being prepared; counts nowhere.
    Draft,
    /// In the books.
    Posted,
    /// In the books together with its reversal.
    Cancelled,
}

impl EntryStatus {
    /// The status after moving to `next`, if the life cycle allows it.
    pub fn transition(self, next: EntryStatus) -> Result<EntryStatus, LedgerError> {
        match (self, next) {
            (EntryStatus::Draft, EntryStatus::Posted)
            | (EntryStatus::Posted, EntryStatus::Cancelled) => Ok(next),
            (from, to) => Err(LedgerError::InvalidTransition { from, to }),
        }
    }
}

impl fmt::Display for EntryStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EntryStatus::Draft => "a draft",
            EntryStatus::Posted => "posted",
            EntryStatus::Cancelled => "cancelled",
        })
    }
}
