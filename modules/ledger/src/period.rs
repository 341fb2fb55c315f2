//! Fiscal years, their monthly periods, and the lock date.

use std::fmt;

use time::{Date, Month};

use crate::LedgerError;

/// A calendar month, the unit totals are kept by, as the number `YYYYMM` (`202403` for
/// March 2024). Keys order as the months do.
///
/// Invariant: the year is 1 to 9999 and the month 1 to 12.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeriodKey(u32);

impl PeriodKey {
    /// January of year 1, the first period there is.
    pub const MIN: PeriodKey = PeriodKey(101);

    /// The month `date` falls in. Dates before year 1 have no period.
    pub fn of(date: Date) -> Result<PeriodKey, LedgerError> {
        let year = u32::try_from(date.year())
            .ok()
            .filter(|&year| year >= 1)
            .ok_or(LedgerError::DateOutOfRange { date })?;
        Ok(PeriodKey(year * 100 + u32::from(u8::from(date.month()))))
    }

    /// The key as `YYYYMM`.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// The key for `YYYYMM`, if that is a month of years 1 to 9999.
    pub fn from_u32(yyyymm: u32) -> Option<PeriodKey> {
        let (year, month) = (yyyymm / 100, yyyymm % 100);
        ((1..=9999).contains(&year) && (1..=12).contains(&month)).then_some(PeriodKey(yyyymm))
    }

    /// The year.
    pub const fn year(self) -> i32 {
        // At most 9999 by the invariant, so the cast is exact.
        (self.0 / 100) as i32
    }

    /// The month.
    pub fn month(self) -> Month {
        // The invariant keeps the remainder in 1..=12.
        Month::try_from((self.0 % 100) as u8).unwrap_or(Month::January)
    }

    /// The first day of the month.
    pub fn first_day(self) -> Date {
        // Year 1..=9999 and day 1 always make a valid date.
        Date::from_calendar_date(self.year(), self.month(), 1).unwrap_or(Date::MIN)
    }

    /// The last day of the month.
    pub fn last_day(self) -> Date {
        let days = self.month().length(self.year());
        Date::from_calendar_date(self.year(), self.month(), days).unwrap_or(Date::MIN)
    }
}

/// `"2024-03"`.
impl fmt::Display for PeriodKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.0 / 100, self.0 % 100)
    }
}

/// One monthly period of a fiscal year.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    /// The month's key.
    pub key: PeriodKey,
    /// Its first day.
    pub start: Date,
    /// Its last day.
    pub end: Date,
}

/// A fiscal year: whole calendar months, from the first day of one month to the last day
/// of another, 1 to 24 months long (a first or last year may be longer or shorter than
/// twelve months).
///
/// Invariant: checked by [`FiscalYear::new`]; fields are private so it stays so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FiscalYear {
    start: Date,
    end: Date,
}

impl FiscalYear {
    /// The longest fiscal year, in months.
    pub const MAX_MONTHS: u32 = 24;

    /// The fiscal year from `start` (a first of the month) to `end` (a last of the month).
    pub fn new(start: Date, end: Date) -> Result<FiscalYear, LedgerError> {
        let invalid = |reason| LedgerError::InvalidFiscalYear { start, end, reason };
        let first = PeriodKey::of(start).map_err(|_| invalid("it starts before year 1"))?;
        let last = PeriodKey::of(end).map_err(|_| invalid("it ends before year 1"))?;
        if start.day() != 1 {
            return Err(invalid("it must start on the first day of a month"));
        }
        if end != last.last_day() {
            return Err(invalid("it must end on the last day of a month"));
        }
        if end < start {
            return Err(invalid("it ends before it starts"));
        }
        let months = months_between(first, last) + 1;
        if months > Self::MAX_MONTHS {
            return Err(invalid("a fiscal year is at most 24 months long"));
        }
        Ok(FiscalYear { start, end })
    }

    /// The calendar year `year`, January to December.
    pub fn calendar(year: i32) -> Result<FiscalYear, LedgerError> {
        let day = |month, day| {
            Date::from_calendar_date(year, month, day)
                .map_err(|_| LedgerError::YearOutOfRange { year })
        };
        FiscalYear::new(day(Month::January, 1)?, day(Month::December, 31)?)
    }

    /// The first day.
    pub const fn start(self) -> Date {
        self.start
    }

    /// The last day.
    pub const fn end(self) -> Date {
        self.end
    }

    /// Whether `date` is in the year.
    pub fn contains(self, date: Date) -> bool {
        self.start <= date && date <= self.end
    }

    /// The first month's key.
    pub fn first_period(self) -> PeriodKey {
        // `new` checked that the year's dates have periods.
        PeriodKey::of(self.start).unwrap_or(PeriodKey::MIN)
    }

    /// The last month's key.
    pub fn last_period(self) -> PeriodKey {
        PeriodKey::of(self.end).unwrap_or(PeriodKey::MIN)
    }

    /// The year's months, in order.
    pub fn periods(self) -> Vec<Period> {
        let mut periods = Vec::new();
        let mut key = self.first_period();
        loop {
            periods.push(Period {
                key,
                start: key.first_day(),
                end: key.last_day(),
            });
            if key >= self.last_period() {
                return periods;
            }
            let (year, month) = (key.0 / 100, key.0 % 100);
            key = if month == 12 {
                PeriodKey((year + 1) * 100 + 1)
            } else {
                PeriodKey(key.0 + 1)
            };
        }
    }
}

fn months_between(from: PeriodKey, to: PeriodKey) -> u32 {
    let index = |key: PeriodKey| (key.0 / 100) * 12 + key.0 % 100;
    index(to).saturating_sub(index(from))
}

/// The lock date: nothing may be posted on or before it (the books up to it are final,
/// for example because a VAT return or the annual accounts were filed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct LockDate(pub Date);

impl LockDate {
    /// Refuses `date` if it is on or before the lock date.
    pub fn check(self, date: Date) -> Result<(), LedgerError> {
        if date <= self.0 {
            Err(LedgerError::Locked { date, lock: self.0 })
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use time::macros::date;

    use super::*;

    #[test]
    fn period_keys_are_yyyymm() {
        let key = PeriodKey::of(date!(2024 - 03 - 15)).unwrap();
        assert_eq!(key.get(), 202_403);
        assert_eq!(key.to_string(), "2024-03");
        assert_eq!(key.first_day(), date!(2024 - 03 - 01));
        assert_eq!(key.last_day(), date!(2024 - 03 - 31));
        assert_eq!(
            PeriodKey::from_u32(202_402).unwrap().last_day(),
            date!(2024 - 02 - 29)
        );
        assert_eq!(PeriodKey::from_u32(202_413), None);
        assert_eq!(PeriodKey::from_u32(202_400), None);
        assert!(PeriodKey::of(date!(-0001 - 01 - 01)).is_err());
    }

    #[test]
    fn a_fiscal_year_splits_into_months() {
        let year = FiscalYear::new(date!(2024 - 07 - 01), date!(2025 - 06 - 30)).unwrap();
        let keys: Vec<u32> = year.periods().iter().map(|p| p.key.get()).collect();
        assert_eq!(
            keys,
            [
                202_407, 202_408, 202_409, 202_410, 202_411, 202_412, 202_501, 202_502, 202_503,
                202_504, 202_505, 202_506
            ]
        );
        assert_eq!(year.periods()[7].end, date!(2025 - 02 - 28));
        assert!(year.contains(date!(2025 - 06 - 30)));
        assert!(!year.contains(date!(2025 - 07 - 01)));
        assert_eq!(FiscalYear::calendar(2024).unwrap().periods().len(), 12);
    }

    #[test]
    fn refuses_impossible_years() {
        let cases = [
            (
                date!(2024 - 01 - 02),
                date!(2024 - 12 - 31),
                "it must start on the first day of a month",
            ),
            (
                date!(2024 - 01 - 01),
                date!(2024 - 12 - 30),
                "it must end on the last day of a month",
            ),
            (
                date!(2024 - 01 - 01),
                date!(2023 - 12 - 31),
                "it ends before it starts",
            ),
            (
                date!(2024 - 01 - 01),
                date!(2026 - 01 - 31),
                "a fiscal year is at most 24 months long",
            ),
        ];
        for (start, end, reason) in cases {
            let err = FiscalYear::new(start, end).unwrap_err().to_string();
            assert_eq!(
                err,
                format!("a fiscal year from {start} to {end} is not possible: {reason}")
            );
        }
        assert!(FiscalYear::new(date!(2024 - 01 - 01), date!(2025 - 12 - 31)).is_ok());
    }

    #[test]
    fn the_lock_date_itself_is_locked() {
        let lock = LockDate(date!(2024 - 12 - 31));
        assert_eq!(
            lock.check(date!(2024 - 12 - 31)).unwrap_err().to_string(),
            "the books are locked up to and including 2024-12-31: an entry dated 2024-12-31 \
             cannot be posted; date it after 2024-12-31 or ask for the lock date to be moved"
        );
        assert!(lock.check(date!(2025 - 01 - 01)).is_ok());
    }
}
