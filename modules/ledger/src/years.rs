//! Fiscal years on the store: opening them, the rule that postings fall into an open
//! year, and the year-end close.
//!
//! A fiscal year is a kernel record ([`FISCAL_YEAR`]: list, history, audit), and the
//! company's years are also kept, compactly, under `y | company` in the `ledger` table,
//! so that every posting can check its date without a list query. Both are written in
//! the same command.
//!
//! Rules:
//! * years do not overlap, and each is at most 24 months ([`FiscalYear::new`]);
//! * once a company has fiscal years, every posting date must fall into an open one;
//! * a year is closed by [`close_year`]: the closing entry moves its income and
//!   expenses to retained earnings, the year is marked closed, and the lock date moves
//!   to its last day (never back), all in one command. Earlier years must be closed
//!   first. A closed year accepts nothing more.

use crate::entities::LEDGER;

use nexus_kernel::builtin::Company;
use nexus_kernel::{Action, Command, Kernel, KernelError, ListQuery, Principal, Row};
use time::Date;

use crate::books::{self, EntryInput, chart_for, company_currency, company_key, lock_date, refuse};
use crate::codec::{Reader, Writer};
use crate::entities::{
    ACCOUNT, AccountRecord, FISCAL_YEAR, FiscalYearRecord, JournalEntryRecord, YearStatus,
};
use crate::{EntryKind, FiscalYear, LedgerError};

/// One of the company's fiscal years.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Year {
    /// The fiscal year's record.
    pub id: u64,
    pub year: FiscalYear,
    pub closed: bool,
}

/// `(start, end, closed, record id)…` under `y | company`, in the ledger's
/// [`crate::codec`] layout.
fn encode(years: &[Year]) -> Vec<u8> {
    let mut w = Writer::default();
    for y in years {
        w.date(y.year.start())
            .date(y.year.end())
            .u8(u8::from(y.closed))
            .u64(y.id);
    }
    w.finish()
}

fn decode(bytes: &[u8]) -> Result<Vec<Year>, KernelError> {
    let mut r = Reader::new(bytes, "the list of fiscal years");
    let mut years = Vec::new();
    while !r.is_empty() {
        let (start, end) = (r.date()?, r.date()?);
        let closed = match r.u8()? {
            0 => false,
            1 => true,
            _ => return Err(r.damaged()),
        };
        years.push(Year {
            year: FiscalYear::new(start, end).map_err(|_| r.damaged())?,
            closed,
            id: r.u64()?,
        });
    }
    Ok(years)
}

/// The company's years as the command sees them, in date order.
pub(crate) fn read(cmd: &Command<'_, '_, '_>) -> Result<Vec<Year>, KernelError> {
    match cmd.get(&company_key(b'y', cmd.who().company))? {
        Some(b) => decode(&b),
        None => Ok(Vec::new()),
    }
}

fn write(cmd: &mut Command<'_, '_, '_>, years: &mut [Year]) {
    years.sort_by_key(|y| y.year.start());
    let key = company_key(b'y', cmd.who().company);
    cmd.put(key, encode(years));
}

/// The principal's company's fiscal years, in date order.
pub fn years(kernel: &Kernel, who: &Principal) -> Result<Vec<Year>, KernelError> {
    kernel.authorize(who, &FISCAL_YEAR, Action::Read)?;
    match kernel
        .module_state(&LEDGER)?
        .get(&company_key(b'y', who.company))?
    {
        Some(b) => decode(&b),
        None => Ok(Vec::new()),
    }
}

/// Refuses `date` unless it falls into an open year (when the company keeps years).
pub(crate) fn check_open(years: &[Year], date: Date) -> Result<(), KernelError> {
    if years.is_empty() {
        return Ok(());
    }
    match years.iter().find(|y| y.year.contains(date)) {
        Some(y) if y.closed => Err(KernelError::invalid(
            "date",
            format!(
                "the fiscal year {} to {} is closed; nothing can be posted on {date}",
                y.year.start(),
                y.year.end()
            ),
        )),
        Some(_) => Ok(()),
        None => Err(KernelError::invalid(
            "date",
            format!("no fiscal year covers {date}; open one under Ledger → Fiscal years first"),
        )),
    }
}

/// The conventional name: "FY 2025" for a calendar year, "FY 2025/26" otherwise.
pub fn default_name(year: FiscalYear) -> String {
    let (a, b) = (year.start().year(), year.end().year());
    if a == b {
        format!("FY {a}")
    } else {
        format!("FY {a}/{:02}", b.rem_euclid(100))
    }
}

/// Opens a fiscal year from `start` to `end` (inclusive), named `name` or
/// [`default_name`]. Refused when it overlaps another year of the company.
pub async fn open_year(
    kernel: &Kernel,
    who: &Principal,
    start: Date,
    end: Date,
    name: Option<String>,
) -> Result<Row<FiscalYearRecord>, KernelError> {
    kernel.authorize(who, &FISCAL_YEAR, Action::Create)?;
    let year =
        FiscalYear::new(start, end).map_err(|e| KernelError::invalid("end", e.to_string()))?;
    let name = name
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| default_name(year));
    kernel
        .command(&LEDGER, who, move |cmd| {
            let mut years = read(cmd)?;
            if let Some(other) = years
                .iter()
                .find(|y| y.year.start() <= end && start <= y.year.end())
            {
                return Err(KernelError::invalid(
                    "start",
                    format!(
                        "it overlaps the fiscal year {} to {}",
                        other.year.start(),
                        other.year.end()
                    ),
                ));
            }
            let rec = cmd.insert(&FiscalYearRecord {
                name,
                start,
                end,
                status: YearStatus::Open,
                closing_entry: None,
            })?;
            years.push(Year {
                id: rec.id,
                year,
                closed: false,
            });
            write(cmd, &mut years);
            Ok(rec)
        })
        .await
}

/// The company's retained-earnings account: the first postable account of type
/// RetainedEarnings, in code order.
pub fn retained_earnings(kernel: &Kernel, who: &Principal) -> Result<u64, KernelError> {
    let query = ListQuery {
        sort: Some("code".into()),
        filters: vec![("type".into(), "RetainedEarnings".into())],
        limit: 100,
        ..Default::default()
    };
    Row::<AccountRecord>::all(&kernel.list(who, &ACCOUNT, &query)?.rows)?
        .iter()
        .find(|r| !r.group)
        .map(|r| r.id)
        .ok_or_else(|| {
            KernelError::Conflict(
                "the chart has no retained-earnings account (type RetainedEarnings) to close \
                 the year into"
                    .into(),
            )
        })
}

/// What closing a year did.
#[derive(Debug, Clone)]
pub struct Closed {
    /// The fiscal year's record, now closed.
    pub year: Row<FiscalYearRecord>,
    /// The closing entry, unless the year had no income or expenses.
    pub entry: Option<Row<JournalEntryRecord>>,
}

/// Closes fiscal year `id`: posts the closing entry on its last day (income and
/// expenses to `retained` earnings), marks it closed and moves the lock date to its
/// last day, in one command. Refused when the year is already closed or an earlier
/// year is still open.
pub async fn close_year(
    kernel: &Kernel,
    who: &Principal,
    id: u64,
    retained: u64,
) -> Result<Closed, KernelError> {
    kernel.authorize(who, &FISCAL_YEAR, Action::Write)?;
    kernel.authorize(who, &crate::entities::JOURNAL_ENTRY, Action::Create)?;
    kernel
        .command(&LEDGER, who, move |cmd| {
            let mut years = read(cmd)?;
            let name = cmd.fetch::<FiscalYearRecord>(id)?.fields.name;
            let Some(index) = years.iter().position(|y| y.id == id) else {
                return Err(KernelError::Internal(format!(
                    "{name} is missing from the ledger's list of years"
                )));
            };
            let this = years[index];
            if this.closed {
                return Err(KernelError::Conflict(format!("{name} is already closed")));
            }
            if let Some(open) = years
                .iter()
                .find(|y| !y.closed && y.year.start() < this.year.start())
            {
                return Err(KernelError::Conflict(format!(
                    "close the fiscal year {} to {} first",
                    open.year.start(),
                    open.year.end()
                )));
            }
            let company = cmd.fetch::<Company>(cmd.who().company)?;
            let currency = company_currency(&company)?;
            let totals = books::totals_in(cmd, currency)?;
            let accounts: Vec<u64> = totals.accounts().chain(std::iter::once(retained)).collect();
            let chart = chart_for(cmd, currency, accounts)?;
            let end = this.year.end();
            let entry = match crate::closing_entry(&chart, &totals, this.year, retained, end, 0) {
                Ok(draft) => {
                    let input = EntryInput {
                        date: end,
                        narration: format!("Year-end close of {name}"),
                        reference: name.clone(),
                        lines: books::line_inputs(&draft.lines),
                    };
                    Some(books::post_in(cmd, input, EntryKind::Closing, None)?)
                }
                Err(LedgerError::NothingToClose { .. }) => None,
                Err(e) => return Err(refuse(e)),
            };
            let year = cmd.modify(id, |y: &mut FiscalYearRecord| {
                y.status = YearStatus::Closed;
                y.closing_entry = entry.as_ref().map(|e| e.id);
            })?;
            years[index].closed = true;
            write(cmd, &mut years);
            if lock_date(cmd)?.is_none_or(|lock| lock.0 < end) {
                books::put_lock_date(cmd, end)?;
            }
            Ok(Closed { year, entry })
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn year(id: u64, start: Date, end: Date, closed: bool) -> Year {
        Year {
            id,
            year: FiscalYear::new(start, end).unwrap(),
            closed,
        }
    }

    #[test]
    fn years_round_trip_through_their_encoding() {
        let years = vec![
            year(7, date!(2024 - 01 - 01), date!(2024 - 12 - 31), true),
            year(9, date!(2025 - 01 - 01), date!(2025 - 12 - 31), false),
        ];
        assert_eq!(decode(&encode(&years)).unwrap(), years);
        assert!(decode(&[1, 2, 3]).is_err());
    }

    #[test]
    fn postings_must_fall_into_an_open_year() {
        assert!(check_open(&[], date!(1999 - 01 - 01)).is_ok());
        let years = [
            year(1, date!(2024 - 07 - 01), date!(2025 - 06 - 30), true),
            year(2, date!(2025 - 07 - 01), date!(2026 - 06 - 30), false),
        ];
        assert!(check_open(&years, date!(2025 - 07 - 01)).is_ok());
        let closed = format!("{:?}", check_open(&years, date!(2025 - 06 - 30)));
        assert!(closed.contains("is closed"), "{closed}");
        let none = format!("{:?}", check_open(&years, date!(2026 - 07 - 01)));
        assert!(none.contains("no fiscal year covers 2026-07-01"), "{none}");
    }

    #[test]
    fn default_names_follow_the_years() {
        let fy = |a, b| FiscalYear::new(a, b).unwrap();
        assert_eq!(
            default_name(fy(date!(2025 - 01 - 01), date!(2025 - 12 - 31))),
            "FY 2025"
        );
        assert_eq!(
            default_name(fy(date!(2025 - 07 - 01), date!(2026 - 06 - 30))),
            "FY 2025/26"
        );
    }
}
