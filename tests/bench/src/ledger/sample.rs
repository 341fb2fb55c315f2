//! The journal entries both sides post, so they store the same books.
//!
//! Every entry has four lines on four different accounts (PostgreSQL's balance upsert
//! may touch a row only once per statement) and balances to the cent. The kinds of
//! entry rotate through a small firm's everyday business; the amounts and, for the
//! trial-balance load, the dates vary deterministically with the client and sequence.

use time::{Date, Duration, Month};

/// One line: an account code of the small-firm chart, a debit or a credit in cents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line {
    pub code: &'static str,
    pub debit: i64,
    pub credit: i64,
}

/// One journal entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub date: Date,
    pub narration: String,
    pub lines: [Line; 4],
}

/// The account codes an entry kind posts to: one debit, then three credits; or two
/// debits, then two credits.
const KINDS: [(&str, [&str; 4], usize); 6] = [
    // narration, accounts, how many of them are debits
    (
        "Sale of goods and services",
        ["1210", "4100", "4200", "2210"],
        1,
    ),
    ("Stock purchase", ["1300", "1400", "2110", "2400"], 2),
    ("Payroll", ["6100", "6150", "2310", "2320"], 2),
    (
        "Customer receipt less bank fees",
        ["1120", "6700", "1210", "4300"],
        2,
    ),
    ("Office costs", ["6300", "6400", "1120", "2120"], 2),
    ("Supplier payment", ["2110", "2120", "1120", "1130"], 2),
];

/// Entry `seq` of client `task`, dated `date`.
pub fn entry(task: usize, seq: u64, date: Date) -> Entry {
    let mix = (seq.wrapping_mul(31) ^ (task as u64).wrapping_mul(7919)) % 997;
    let (narration, codes, debits) = KINDS[((seq + task as u64) % KINDS.len() as u64) as usize];
    // Amounts: a in 10.00..=1006.99, b and c smaller; the balancing line takes the rest.
    let a = 1_000 + (mix as i64) * 101;
    let b = 500 + (mix as i64 % 89) * 37;
    let c = 100 + (mix as i64 % 13) * 11;
    let amounts: [i64; 4] = if debits == 1 {
        [a + b + c, a, b, c]
    } else {
        [a, b + c, a + b, c]
    };
    let line = |i: usize| {
        let (debit, credit) = if i < debits {
            (amounts[i], 0)
        } else {
            (0, amounts[i])
        };
        Line {
            code: codes[i],
            debit,
            credit,
        }
    };
    Entry {
        date,
        narration: format!("{narration} {task}-{seq}"),
        lines: [line(0), line(1), line(2), line(3)],
    }
}

/// The date of load entry `n`: spread over the twelve months of `year`.
pub fn load_date(year: i32, n: u64) -> Date {
    let start = Date::from_calendar_date(year, Month::January, 1).unwrap_or(Date::MIN);
    start + Duration::days((n.wrapping_mul(7) % 365) as i64)
}

/// Every code some entry posts to.
pub fn codes() -> Vec<&'static str> {
    let mut all: Vec<&str> = KINDS
        .iter()
        .flat_map(|(_, c, _)| c.iter().copied())
        .collect();
    all.sort_unstable();
    all.dedup();
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entry_balances_on_four_accounts() {
        let day = load_date(2025, 3);
        for task in 0..5 {
            for seq in 0..500 {
                let e = entry(task, seq, day);
                let debits: i64 = e.lines.iter().map(|l| l.debit).sum();
                let credits: i64 = e.lines.iter().map(|l| l.credit).sum();
                assert_eq!(debits, credits, "{e:?}");
                assert!(
                    e.lines.iter().all(|l| (l.debit > 0) != (l.credit > 0)),
                    "{e:?}"
                );
                let mut codes: Vec<_> = e.lines.iter().map(|l| l.code).collect();
                codes.sort_unstable();
                codes.dedup();
                assert_eq!(codes.len(), 4, "{e:?}");
            }
        }
    }

    #[test]
    fn load_dates_cover_the_year() {
        let months: std::collections::BTreeSet<_> =
            (0..400).map(|n| load_date(2025, n).month()).collect();
        assert_eq!(months.len(), 12);
        assert!((0..1000).all(|n| load_date(2025, n).year() == 2025));
    }
}
