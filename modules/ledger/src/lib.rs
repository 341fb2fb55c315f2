//! The ledger's double-entry domain, pure: no storage, no web, no clock.
//!
//! * [`Money`], [`Currency`], [`Rate`]: exact amounts in minor units, checked arithmetic.
//! * [`Chart`] of [`Account`]s: a validated tree; [`Chart::small_firm_template`].
//! * [`FiscalYear`], [`PeriodKey`] (a month, `YYYYMM`), [`LockDate`].
//! * [`JournalEntry`] and its [`Line`]s; [`validate`], [`PostedEntry::post`],
//!   [`reverse`], [`EntryStatus`].
//! * [`Totals`] per account and month; [`trial_balance`], [`profit_and_loss`],
//!   [`balance_sheet`] from the totals alone.
//! * [`closing_entry`] for the year end.
//! * [`beancount::export`] to a journal that `bean-check` accepts.
//!
//! ```
//! use nexus_ledger::{Chart, Currency, EntryKind, JournalEntry, Line, PeriodKey};
//! use nexus_ledger::{PostedEntry, Totals, trial_balance};
//! use time::macros::date;
//!
//! let chart = Chart::small_firm_template(Currency::USD);
//! let (rent, bank) = (chart.by_code("6200").unwrap().id, chart.by_code("1120").unwrap().id);
//! let entry = JournalEntry {
//!     id: 1,
//!     currency: Currency::USD,
//!     date: date!(2024 - 03 - 01),
//!     narration: "March rent".to_owned(),
//!     reference: String::new(),
//!     kind: EntryKind::Regular,
//!     lines: vec![Line::debit(rent, 100_000), Line::credit(bank, 100_000)],
//! };
//! let posted = PostedEntry::post(entry, &chart, None)?;
//! let mut totals = Totals::new(Currency::USD);
//! totals.apply(&posted)?;
//! let march = PeriodKey::of(date!(2024 - 03 - 01))?;
//! let rows = trial_balance(&chart, &totals, march, march)?;
//! let bank_row = rows.iter().find(|row| row.account == bank).unwrap();
//! assert_eq!((bank_row.credit, bank_row.closing), (100_000, -100_000));
//! # Ok::<(), nexus_ledger::LedgerError>(())
//! ```
//!
//! Invariants the rest of the appliance can rely on:
//! * amounts never touch floating point, and no arithmetic wraps or panics;
//! * a [`PostedEntry`] balances to the minor unit in the company currency and posts
//!   only to non-group accounts of its chart, dated after the lock date;
//! * [`Totals`] change only by whole posted entries, so the trial balance balances;
//! * time is always a parameter: nothing here reads the clock.

pub mod bank;
pub mod beancount;
pub mod books;
mod chart;
pub mod checks;
mod close;
mod codec;
pub mod demo;
pub mod drafts;
pub mod entities;
mod entry;
mod error;
mod money;
pub mod parties;
mod period;
pub mod receivables;
mod statements;
pub mod stock;
mod template;
pub mod tools;
mod totals;
pub mod web;
pub mod years;

#[cfg(test)]
mod textbook;

pub use chart::{Account, AccountClass, AccountId, AccountType, Chart, Side};
pub use close::closing_entry;
pub use entry::{
    EntryKind, EntryStatus, Foreign, JournalEntry, Line, MAX_LINE_MINOR, PostedEntry, reverse,
    validate,
};
pub use error::LedgerError;
pub use money::{Currency, Money, Rate};
pub use period::{FiscalYear, LockDate, Period, PeriodKey};
pub use statements::{BalanceSheet, ProfitAndLoss, StatementLine, balance_sheet, profit_and_loss};
pub use template::small_firm_accounts;
pub use totals::{PeriodTotals, Totals, TrialBalanceRow, Turnover, trial_balance};
