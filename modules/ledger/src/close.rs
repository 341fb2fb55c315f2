//! Year-end close: moving the year's income and expenses into retained earnings.

use time::Date;

use crate::totals::{add, check_currency};
use crate::{
    AccountClass, AccountId, Chart, EntryKind, FiscalYear, JournalEntry, LedgerError, Line, Money,
    Side, Totals,
};

/// The draft closing entry of `year`, dated `date` (in the year, usually its last day),
/// with id `id`: one line per income or expense account that zeroes its balance for the
/// year, and one line to `retained_earnings` for the result (a credit for a profit).
///
/// Posting it (as any entry, through [`crate::PostedEntry::post`]) leaves every income
/// and expense account at zero at the end of the year. The entry has
/// [`EntryKind::Closing`], so the year's profit and loss account still shows the year.
///
/// Refused: a `retained_earnings` account that is not a postable equity account, a
/// date outside the year, income or expense balances left from an earlier year that was
/// not closed, and a year with nothing to close.
pub fn closing_entry(
    chart: &Chart,
    totals: &Totals,
    year: FiscalYear,
    retained_earnings: AccountId,
    date: Date,
    id: u64,
) -> Result<JournalEntry, LedgerError> {
    check_currency(chart, totals)?;
    let target = chart.account(retained_earnings)?;
    let refuse = |reason| LedgerError::NotRetainedEarnings {
        account: target.label(),
        reason,
    };
    if target.class != AccountClass::Equity {
        return Err(refuse("choose an equity account"));
    }
    if target.is_group {
        return Err(refuse("it is a group; choose an account under it"));
    }
    if !year.contains(date) {
        return Err(LedgerError::DateOutsideYear {
            date,
            start: year.start(),
            end: year.end(),
        });
    }
    let summary = totals.summarise(year.first_period(), year.last_period(), true)?;
    let mut lines = Vec::new();
    let mut result = 0i64;
    for account in chart.accounts().filter(|a| !a.class.is_balance_sheet()) {
        let Some(&(opening, movement)) = summary.get(&account.id) else {
            continue;
        };
        if opening != 0 {
            let side = if opening > 0 {
                Side::Debit
            } else {
                Side::Credit
            };
            return Err(LedgerError::PriorYearNotClosed {
                account: account.label(),
                side,
                balance: Money::new(opening.saturating_abs(), chart.currency()),
                date: year.start(),
            });
        }
        let balance = movement.net()?;
        if balance != 0 {
            lines.push(Line::debit(account.id, balance.saturating_neg()));
            result = add(result, balance)?;
        }
    }
    if lines.is_empty() {
        return Err(LedgerError::NothingToClose {
            start: year.start(),
            end: year.end(),
        });
    }
    if result != 0 {
        lines.push(Line::debit(retained_earnings, result));
    }
    Ok(JournalEntry {
        id,
        currency: chart.currency(),
        date,
        narration: format!(
            "Year-end close {} to {}: result to {}",
            year.start(),
            year.end(),
            target.label()
        ),
        reference: String::new(),
        kind: EntryKind::Closing,
        lines,
    })
}
