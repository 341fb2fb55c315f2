//! Per-account, per-period debit and credit totals, and the trial balance built from
//! them alone.
//!
//! The store keeps one [`PeriodTotals`] per (account, month) and adds an entry's
//! [`Totals::deltas`] to them in the transaction that posts the entry, so reports never
//! scan journal lines.

use std::collections::BTreeMap;

use crate::{AccountId, Chart, Currency, EntryKind, LedgerError, PeriodKey, PostedEntry};

/// Debit and credit sums, each in minor units of the company currency and never
/// negative (a credit line adds its size to `credit`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Turnover {
    /// Sum of debit lines.
    pub debit: i64,
    /// Sum of credit lines, as a positive number.
    pub credit: i64,
}

impl Turnover {
    /// `debit - credit`: the balance this turnover adds, positive on the debit side.
    pub fn net(self) -> Result<i64, LedgerError> {
        self.debit
            .checked_sub(self.credit)
            .ok_or_else(|| overflow("a balance"))
    }

    /// The sum of two turnovers.
    pub fn checked_add(self, other: Turnover) -> Result<Turnover, LedgerError> {
        Ok(Turnover {
            debit: add(self.debit, other.debit)?,
            credit: add(self.credit, other.credit)?,
        })
    }

    fn line(amount: i64) -> Turnover {
        if amount >= 0 {
            Turnover {
                debit: amount,
                credit: 0,
            }
        } else {
            Turnover {
                debit: 0,
                credit: amount.saturating_neg(),
            }
        }
    }
}

/// The totals of one account in one month, with year-end closing entries kept apart so
/// that the profit and loss account can leave them out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeriodTotals {
    /// Regular entries and reversals.
    pub regular: Turnover,
    /// Closing entries ([`EntryKind::Closing`]).
    pub closing: Turnover,
}

impl PeriodTotals {
    /// Both kinds together.
    pub fn all(self) -> Result<Turnover, LedgerError> {
        self.regular.checked_add(self.closing)
    }

    /// The sum of two period totals.
    pub fn checked_add(self, other: PeriodTotals) -> Result<PeriodTotals, LedgerError> {
        Ok(PeriodTotals {
            regular: self.regular.checked_add(other.regular)?,
            closing: self.closing.checked_add(other.closing)?,
        })
    }
}

/// The totals of a company's books: [`PeriodTotals`] per (account, month).
///
/// Invariant, when built only by [`Totals::apply`]: the debits of all accounts in any
/// month equal their credits, since only posted (balanced) entries are applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Totals {
    currency: Currency,
    by_account: BTreeMap<(AccountId, PeriodKey), PeriodTotals>,
}

impl Totals {
    /// No totals yet, for books kept in `currency`.
    pub const fn new(currency: Currency) -> Totals {
        Totals {
            currency,
            by_account: BTreeMap::new(),
        }
    }

    /// The currency the totals are counted in.
    pub const fn currency(&self) -> Currency {
        self.currency
    }

    /// What posting `entry` adds, per (account, month): the store adds these to its
    /// stored totals in the posting transaction.
    pub fn deltas(
        entry: &PostedEntry,
    ) -> Result<BTreeMap<(AccountId, PeriodKey), PeriodTotals>, LedgerError> {
        let period = PeriodKey::of(entry.date)?;
        let mut deltas: BTreeMap<(AccountId, PeriodKey), PeriodTotals> = BTreeMap::new();
        for line in &entry.lines {
            let turnover = Turnover::line(line.amount);
            let delta = match entry.kind {
                EntryKind::Closing => PeriodTotals {
                    closing: turnover,
                    ..PeriodTotals::default()
                },
                EntryKind::Regular | EntryKind::Reversal { .. } => PeriodTotals {
                    regular: turnover,
                    ..PeriodTotals::default()
                },
            };
            let slot = deltas.entry((line.account, period)).or_default();
            *slot = slot.checked_add(delta)?;
        }
        Ok(deltas)
    }

    /// Adds a posted entry. All or nothing: on error (overflow, wrong currency) the
    /// totals are unchanged.
    pub fn apply(&mut self, entry: &PostedEntry) -> Result<(), LedgerError> {
        if entry.currency != self.currency {
            return Err(LedgerError::WrongCurrency {
                entry: entry.currency,
                company: self.currency,
            });
        }
        let updated = Totals::deltas(entry)?
            .into_iter()
            .map(|(key, delta)| Ok((key, self.get(key.0, key.1).checked_add(delta)?)))
            .collect::<Result<Vec<_>, LedgerError>>()?;
        self.by_account.extend(updated);
        Ok(())
    }

    /// Sets the totals of one account and month, as the store loads them.
    pub fn insert(&mut self, account: AccountId, period: PeriodKey, totals: PeriodTotals) {
        self.by_account.insert((account, period), totals);
    }

    /// The totals of `account` in `period` (zero if nothing was posted).
    pub fn get(&self, account: AccountId, period: PeriodKey) -> PeriodTotals {
        self.by_account
            .get(&(account, period))
            .copied()
            .unwrap_or_default()
    }

    /// Every account with totals, each once, in id order.
    pub fn accounts(&self) -> impl Iterator<Item = AccountId> + '_ {
        let mut last = None;
        self.by_account.keys().filter_map(move |&(account, _)| {
            if last == Some(account) {
                return None;
            }
            last = Some(account);
            Some(account)
        })
    }

    /// Every (account, month) with totals, by account then month.
    pub fn iter(&self) -> impl Iterator<Item = (AccountId, PeriodKey, PeriodTotals)> + '_ {
        self.by_account
            .iter()
            .map(|(&(account, period), &totals)| (account, period, totals))
    }

    /// Per account: the balance before `from` (debit positive), and the turnover from
    /// `from` to `to` inclusive. `closing` says whether closing entries count.
    pub(crate) fn summarise(
        &self,
        from: PeriodKey,
        to: PeriodKey,
        closing: bool,
    ) -> Result<BTreeMap<AccountId, (i64, Turnover)>, LedgerError> {
        if to < from {
            return Err(LedgerError::InvalidRange { from, to });
        }
        let mut summary: BTreeMap<AccountId, (i64, Turnover)> = BTreeMap::new();
        for (account, period, totals) in self.iter() {
            if period > to {
                continue;
            }
            let turnover = if closing {
                totals.all()?
            } else {
                totals.regular
            };
            let (opening, movement) = summary.entry(account).or_default();
            if period < from {
                *opening = add(*opening, turnover.net()?)?;
            } else {
                *movement = movement.checked_add(turnover)?;
            }
        }
        Ok(summary)
    }
}

/// One account's line in the trial balance, in minor units of the company currency.
/// Balances are positive on the debit side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrialBalanceRow {
    /// The account; a group's row sums the accounts under it.
    pub account: AccountId,
    /// The balance before the first period.
    pub opening: i64,
    /// Debits in the periods.
    pub debit: i64,
    /// Credits in the periods, as a positive number.
    pub credit: i64,
    /// `opening + debit - credit`.
    pub closing: i64,
}

/// The trial balance of the months `from` to `to` (inclusive): one row per account of
/// the chart, in code order, group rows summing the accounts under them. Built from
/// `totals` only; closing entries count.
///
/// When the totals come from posted entries, the top-level rows' debits equal their
/// credits, and their opening and closing balances each add up to zero.
pub fn trial_balance(
    chart: &Chart,
    totals: &Totals,
    from: PeriodKey,
    to: PeriodKey,
) -> Result<Vec<TrialBalanceRow>, LedgerError> {
    check_currency(chart, totals)?;
    let summary = totals.summarise(from, to, true)?;
    let mut rows: BTreeMap<AccountId, TrialBalanceRow> = chart
        .accounts()
        .map(|account| {
            let row = TrialBalanceRow {
                account: account.id,
                opening: 0,
                debit: 0,
                credit: 0,
                closing: 0,
            };
            (account.id, row)
        })
        .collect();
    for (&account, &(opening, turnover)) in &summary {
        chart.account(account)?;
        let closing = add(opening, turnover.net()?)?;
        let targets = std::iter::once(account).chain(chart.ancestors(account).map(|a| a.id));
        for target in targets {
            if let Some(row) = rows.get_mut(&target) {
                row.opening = add(row.opening, opening)?;
                row.debit = add(row.debit, turnover.debit)?;
                row.credit = add(row.credit, turnover.credit)?;
                row.closing = add(row.closing, closing)?;
            }
        }
    }
    Ok(chart
        .accounts()
        .filter_map(|account| rows.get(&account.id).copied())
        .collect())
}

pub(crate) fn check_currency(chart: &Chart, totals: &Totals) -> Result<(), LedgerError> {
    if chart.currency() == totals.currency() {
        Ok(())
    } else {
        Err(LedgerError::WrongCurrency {
            entry: totals.currency(),
            company: chart.currency(),
        })
    }
}

pub(crate) fn add(a: i64, b: i64) -> Result<i64, LedgerError> {
    a.checked_add(b).ok_or_else(|| overflow("a total"))
}

fn overflow(what: &str) -> LedgerError {
    LedgerError::Overflow {
        what: what.to_owned(),
    }
}
