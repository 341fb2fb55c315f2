//! A year of plausible books for the demo company: opening capital, sales on credit
//! with VAT and their receipts, rent, wages, utilities, insurance, bank fees; the stock
//! moves (receipts, deliveries with their cost of goods sold, a transfer, a count);
//! calendar fiscal years, those already over closed into retained earnings; then this
//! year's invoices and payments, and a bank statement. Deterministic (fixed seeds), so
//! every demo box shows the same figures.

use std::collections::BTreeMap;

use nexus_kernel::{Kernel, KernelError, Principal};
use time::{Date, Duration, Month};

use crate::FiscalYear;
use crate::books::{self, EntryInput, LineInput};
use crate::years;

/// Installs the chart and posts twelve months of entries ending with the month before
/// `today`, unless the company already has accounts. Returns how many entries were
/// posted.
pub async fn seed(kernel: &Kernel, company: u64, today: Date) -> Result<usize, KernelError> {
    let who = Principal::system(company);
    let has_accounts = books::account_count(kernel, &who)? > 0;
    if has_accounts {
        return Ok(0);
    }
    books::install_chart(kernel, &who).await?;
    let chart = books::chart(kernel, &who)?;
    let id = |code: &str| -> Result<u64, KernelError> {
        chart
            .by_code(code)
            .map(|a| a.id)
            .ok_or_else(|| KernelError::Internal(format!("the template lacks account {code}")))
    };
    let codes = [
        "1120", "1210", "2210", "2310", "3100", "4100", "4200", "6100", "6200", "6300", "6500",
        "6700",
    ];
    let a: BTreeMap<&str, u64> = codes
        .iter()
        .map(|c| id(c).map(|i| (*c, i)))
        .collect::<Result<_, _>>()?;
    let mut entries = Vec::new();
    let first = first_of_month(today, -12)?;
    entries.push(entry(
        first,
        "Opening capital",
        "",
        &[(a["1120"], 5_000_000), (a["3100"], -5_000_000)],
    ));
    let mut rng = Rng(0x5EED_1ED6);
    for m in 0..12 {
        let start = first_of_month(today, m - 12)?;
        let day = |d: i64| start + Duration::days(d);
        // Sales on credit through the month, paid ten days later. Goods bought and
        // their cost of sales come from the stock moves (`stock::books`), bills and
        // open receivables from the invoices (`receivables::demo`).
        for s in 0..8 {
            let net = 60_000 + rng.below(140_000) as i64;
            let (income, what) = if s % 3 == 2 {
                ("4200", "Services")
            } else {
                ("4100", "Goods")
            };
            let vat = net / 5;
            let invoice = format!("INV-{:02}{:02}", m + 1, s + 1);
            let d = day(2 + s * 3);
            entries.push(entry(
                d,
                &format!("{what} sold on credit"),
                &invoice,
                &[(a["1210"], net + vat), (a[income], -net), (a["2210"], -vat)],
            ));
            entries.push(entry(
                d + Duration::days(10),
                "Customer payment",
                &invoice,
                &[(a["1120"], net + vat), (a["1210"], -(net + vat))],
            ));
        }
        entries.push(entry(
            day(0),
            "Rent",
            "",
            &[(a["6200"], 250_000), (a["1120"], -250_000)],
        ));
        entries.push(entry(
            day(24),
            "Wages",
            "",
            &[
                (a["6100"], 900_000),
                (a["1120"], -720_000),
                (a["2310"], -180_000),
            ],
        ));
        entries.push(entry(
            day(26),
            "Payroll withholding paid",
            "",
            &[(a["2310"], 180_000), (a["1120"], -180_000)],
        ));
        let utilities = 30_000 + rng.below(20_000) as i64;
        entries.push(entry(
            day(14),
            "Electricity and water",
            "",
            &[(a["6300"], utilities), (a["1120"], -utilities)],
        ));
        entries.push(entry(
            day(20),
            "Bank fees",
            "",
            &[(a["6700"], 1_500), (a["1120"], -1_500)],
        ));
        if m % 3 == 0 {
            entries.push(entry(
                day(5),
                "Insurance, quarter",
                "",
                &[(a["6500"], 90_000), (a["1120"], -90_000)],
            ));
        }
    }
    let n = entries.len();
    for e in entries {
        books::post(kernel, &who, e).await?;
    }
    crate::stock::books::seed_demo(kernel, &who, first).await?; // before the years close
    keep_years(kernel, &who, first.year(), today).await?;
    crate::receivables::demo::seed(kernel, &who, today).await?;
    crate::bank::books::seed_demo(kernel, &who, today).await?;
    Ok(n)
}

/// Opens calendar fiscal years from `first_year` to `today`'s, and closes those that
/// ended before `today`: the books then show a year-end close into retained earnings.
async fn keep_years(
    kernel: &Kernel,
    who: &Principal,
    first_year: i32,
    today: Date,
) -> Result<(), KernelError> {
    let retained = years::retained_earnings(kernel, who)?;
    for y in first_year..=today.year() {
        let fy = FiscalYear::calendar(y).map_err(|e| KernelError::Internal(e.to_string()))?;
        let rec = years::open_year(kernel, who, fy.start(), fy.end(), None).await?;
        if fy.end() < today {
            years::close_year(kernel, who, rec.id, retained).await?;
        }
    }
    Ok(())
}

fn entry(date: Date, narration: &str, reference: &str, lines: &[(u64, i64)]) -> EntryInput {
    EntryInput {
        date,
        narration: narration.to_owned(),
        reference: reference.to_owned(),
        lines: lines
            .iter()
            .map(|&(account, amount)| LineInput {
                account,
                debit: amount.max(0),
                credit: (-amount).max(0),
                memo: String::new(),
                foreign: None,
            })
            .collect(),
    }
}

/// The first day of the month `offset` months from `today`'s month.
fn first_of_month(today: Date, offset: i32) -> Result<Date, KernelError> {
    let months = today.year() * 12 + i32::from(u8::from(today.month())) - 1 + offset;
    let (year, month) = (months.div_euclid(12), months.rem_euclid(12) as u8 + 1);
    Month::try_from(month)
        .ok()
        .and_then(|m| Date::from_calendar_date(year, m, 1).ok())
        .ok_or_else(|| KernelError::Internal(format!("no month {offset} from {today}")))
}

/// A small deterministic generator (xorshift), so demo figures are the same everywhere.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}
