//! Hand-worked textbook cases: each posts a few entries and compares the statements,
//! rendered as text, with figures worked out on paper.

use std::fmt::Write as _;

use time::Date;
use time::macros::date;

use crate::money::format_minor;
use crate::{
    Account, AccountId, Chart, Currency, EntryKind, EntryStatus, FiscalYear, JournalEntry,
    LedgerError, Line, LockDate, Money, PeriodKey, PostedEntry, Rate, StatementLine, Totals,
    balance_sheet, closing_entry, profit_and_loss, reverse, small_firm_accounts, trial_balance,
};

const USD: Currency = Currency::USD;

/// A company's books: a chart, the posted journal and its totals.
struct Books {
    chart: Chart,
    totals: Totals,
    journal: Vec<PostedEntry>,
}

impl Books {
    /// The small-firm chart in USD, plus `1140 Bank account EUR` kept in euros.
    fn new() -> Books {
        let mut accounts = small_firm_accounts();
        let bank = accounts.iter().find(|a| a.code == "1120").unwrap().clone();
        accounts.push(Account {
            id: 1000,
            code: "1140".to_owned(),
            name: "Bank account EUR".to_owned(),
            currency: Some(Currency::EUR),
            ..bank
        });
        let chart = Chart::new(USD, accounts).unwrap();
        Books {
            totals: Totals::new(USD),
            chart,
            journal: Vec::new(),
        }
    }

    fn id(&self, code: &str) -> AccountId {
        self.chart.by_code(code).unwrap().id
    }

    fn draft(&self, date: Date, narration: &str, lines: &[(&str, i64)]) -> JournalEntry {
        JournalEntry {
            id: self.journal.len() as u64 + 1,
            currency: USD,
            date,
            narration: narration.to_owned(),
            reference: String::new(),
            kind: EntryKind::Regular,
            lines: lines
                .iter()
                .map(|&(code, minor)| Line::debit(self.id(code), minor))
                .collect(),
        }
    }

    fn post_entry(&mut self, entry: JournalEntry) -> Result<&PostedEntry, LedgerError> {
        let posted = PostedEntry::post(entry, &self.chart, None)?;
        self.totals.apply(&posted)?;
        self.journal.push(posted);
        Ok(self.journal.last().unwrap())
    }

    /// Posts `lines` of (account code, amount in cents, debit positive).
    fn post(&mut self, date: Date, narration: &str, lines: &[(&str, i64)]) {
        let entry = self.draft(date, narration, lines);
        self.post_entry(entry).unwrap();
    }

    /// A line of `eur` cents at `rate` to the account with `code`.
    fn eur(&self, code: &str, eur: i64, rate: &str) -> Line {
        let rate = Rate::parse(rate).unwrap();
        Line::foreign(self.id(code), Money::new(eur, Currency::EUR), rate, USD).unwrap()
    }

    fn trial_balance(&self, from: u32, to: u32) -> String {
        let rows = trial_balance(&self.chart, &self.totals, key(from), key(to)).unwrap();
        let mut out = String::new();
        for row in rows {
            if [row.opening, row.debit, row.credit, row.closing] == [0; 4] {
                continue;
            }
            let account = self.chart.get(row.account).unwrap();
            let indent = "  ".repeat(self.chart.ancestors(account.id).count());
            let name = format!("{indent}{}", account.label());
            let _ = writeln!(
                out,
                "{name:<32}{:>10}{:>10}{:>10}{:>10}",
                cents(row.opening),
                cents(row.debit),
                cents(row.credit),
                cents(row.closing)
            );
        }
        out
    }

    fn profit_and_loss(&self, from: u32, to: u32) -> String {
        let pl = profit_and_loss(&self.chart, &self.totals, key(from), key(to)).unwrap();
        let mut out = String::new();
        self.section(&mut out, "Income", &pl.income, pl.total_income);
        self.section(&mut out, "Expenses", &pl.expenses, pl.total_expenses);
        let _ = writeln!(out, "{:<32}{:>10}", "Net profit", cents(pl.net_profit));
        out
    }

    fn balance_sheet(&self, at: u32) -> String {
        let bs = balance_sheet(&self.chart, &self.totals, key(at)).unwrap();
        let mut out = String::new();
        self.section(&mut out, "Assets", &bs.assets, bs.total_assets);
        self.section(
            &mut out,
            "Liabilities",
            &bs.liabilities,
            bs.total_liabilities,
        );
        self.section(&mut out, "Equity", &bs.equity, bs.total_equity);
        let _ = writeln!(
            out,
            "{:<32}{:>10}",
            "Unclosed result",
            cents(bs.unclosed_result)
        );
        out
    }

    fn section(&self, out: &mut String, title: &str, lines: &[StatementLine], total: i64) {
        let _ = writeln!(out, "{title}");
        for line in lines {
            let label = self.chart.get(line.account).unwrap().label();
            let _ = writeln!(out, "  {label:<30}{:>10}", cents(line.amount));
        }
        let _ = writeln!(
            out,
            "{:<32}{:>10}",
            format!("Total {}", title.to_lowercase()),
            cents(total)
        );
    }
}

fn key(yyyymm: u32) -> PeriodKey {
    PeriodKey::from_u32(yyyymm).unwrap()
}

fn cents(minor: i64) -> String {
    format_minor(minor, 2)
}

/// Buying and selling goods with VAT, in January and February 2024.
fn trading_books() -> Books {
    let mut books = Books::new();
    books.post(
        date!(2024 - 01 - 02),
        "Owner invests",
        &[("1120", 1_000_000), ("3100", -1_000_000)],
    );
    books.post(
        date!(2024 - 01 - 05),
        "Goods bought on credit, VAT 20%",
        &[("1300", 400_000), ("1400", 80_000), ("2110", -480_000)],
    );
    books.post(
        date!(2024 - 01 - 10),
        "Goods sold on credit, VAT 20%",
        &[("1210", 360_000), ("4100", -300_000), ("2210", -60_000)],
    );
    books.post(
        date!(2024 - 01 - 10),
        "Cost of the goods sold",
        &[("5100", 180_000), ("1300", -180_000)],
    );
    books.post(
        date!(2024 - 01 - 20),
        "Customer pays",
        &[("1120", 360_000), ("1210", -360_000)],
    );
    books.post(
        date!(2024 - 02 - 03),
        "Supplier paid",
        &[("2110", 480_000), ("1120", -480_000)],
    );
    books.post(
        date!(2024 - 02 - 28),
        "February rent",
        &[("6200", 100_000), ("1120", -100_000)],
    );
    books
}

#[test]
fn a_sales_and_purchase_cycle() {
    let books = trading_books();
    assert_eq!(
        books.trial_balance(202_402, 202_402),
        "\
1000 Assets                       16600.00      0.00   5800.00  10800.00
  1100 Cash and bank              13600.00      0.00   5800.00   7800.00
    1120 Bank account             13600.00      0.00   5800.00   7800.00
  1300 Stock                       2200.00      0.00      0.00   2200.00
  1400 VAT receivable               800.00      0.00      0.00    800.00
2000 Liabilities                  -5400.00   4800.00      0.00   -600.00
  2100 Payables                   -4800.00   4800.00      0.00      0.00
    2110 Trade creditors          -4800.00   4800.00      0.00      0.00
  2200 Taxes                       -600.00      0.00      0.00   -600.00
    2210 VAT payable               -600.00      0.00      0.00   -600.00
3000 Equity                      -10000.00      0.00      0.00 -10000.00
  3100 Share capital             -10000.00      0.00      0.00 -10000.00
4000 Income                       -3000.00      0.00      0.00  -3000.00
  4100 Sales of goods             -3000.00      0.00      0.00  -3000.00
5000 Cost of sales                 1800.00      0.00      0.00   1800.00
  5100 Cost of goods sold          1800.00      0.00      0.00   1800.00
6000 Operating expenses               0.00   1000.00      0.00   1000.00
  6200 Rent                           0.00   1000.00      0.00   1000.00
"
    );
    assert_eq!(
        books.profit_and_loss(202_401, 202_402),
        "\
Income
  4100 Sales of goods              3000.00
Total income                       3000.00
Expenses
  5100 Cost of goods sold          1800.00
  6200 Rent                        1000.00
Total expenses                     2800.00
Net profit                          200.00
"
    );
    assert_eq!(
        books.balance_sheet(202_402),
        "\
Assets
  1120 Bank account                7800.00
  1300 Stock                       2200.00
  1400 VAT receivable               800.00
Total assets                      10800.00
Liabilities
  2210 VAT payable                  600.00
Total liabilities                   600.00
Equity
  3100 Share capital              10000.00
Total equity                      10000.00
Unclosed result                     200.00
"
    );
}

#[test]
fn closing_the_year_moves_the_result_to_retained_earnings() {
    let mut books = trading_books();
    let year = FiscalYear::calendar(2024).unwrap();
    let retained = books.id("3200");
    let closing = closing_entry(
        &books.chart,
        &books.totals,
        year,
        retained,
        date!(2024 - 12 - 31),
        99,
    )
    .unwrap();
    let lines: Vec<(String, i64)> = closing
        .lines
        .iter()
        .map(|line| {
            (
                books.chart.get(line.account).unwrap().code.clone(),
                line.amount,
            )
        })
        .collect();
    let expected = [
        ("4100", 300_000),
        ("5100", -180_000),
        ("6200", -100_000),
        ("3200", -20_000),
    ];
    assert_eq!(
        lines,
        expected.map(|(code, amount)| (code.to_owned(), amount))
    );
    assert_eq!(closing.kind, EntryKind::Closing);
    books.post_entry(closing).unwrap();

    // The year's profit and loss still shows the year; the balance sheet now holds the
    // result in retained earnings, and nothing is left unclosed.
    assert!(
        books
            .profit_and_loss(202_401, 202_412)
            .ends_with("Net profit                          200.00\n")
    );
    assert!(books.balance_sheet(202_412).ends_with(
        "\
Equity
  3100 Share capital              10000.00
  3200 Retained earnings            200.00
Total equity                      10200.00
Unclosed result                       0.00
"
    ));
    // Income and expenses start 2025 at zero; retained earnings carries over.
    assert_eq!(
        books.trial_balance(202_501, 202_501),
        "\
1000 Assets                       10800.00      0.00      0.00  10800.00
  1100 Cash and bank               7800.00      0.00      0.00   7800.00
    1120 Bank account              7800.00      0.00      0.00   7800.00
  1300 Stock                       2200.00      0.00      0.00   2200.00
  1400 VAT receivable               800.00      0.00      0.00    800.00
2000 Liabilities                   -600.00      0.00      0.00   -600.00
  2200 Taxes                       -600.00      0.00      0.00   -600.00
    2210 VAT payable               -600.00      0.00      0.00   -600.00
3000 Equity                      -10200.00      0.00      0.00 -10200.00
  3100 Share capital             -10000.00      0.00      0.00 -10000.00
  3200 Retained earnings           -200.00      0.00      0.00   -200.00
"
    );

    // Closing twice finds nothing to close.
    let again = closing_entry(
        &books.chart,
        &books.totals,
        year,
        retained,
        date!(2024 - 12 - 31),
        100,
    );
    assert_eq!(
        again.unwrap_err().to_string(),
        "the fiscal year 2024-01-01 to 2024-12-31 has no income or expense balances to close"
    );
}

#[test]
fn closing_refuses_an_unclosed_earlier_year_and_a_wrong_target() {
    let books = trading_books();
    let retained = books.id("3200");
    let next = FiscalYear::calendar(2025).unwrap();
    let err = closing_entry(
        &books.chart,
        &books.totals,
        next,
        retained,
        date!(2025 - 12 - 31),
        9,
    );
    assert_eq!(
        err.unwrap_err().to_string(),
        "the previous year is not closed: 4100 Sales of goods has a credit balance of 3000.00 USD \
         on 2025-01-01; close the earlier year first"
    );
    let year = FiscalYear::calendar(2024).unwrap();
    let err = closing_entry(
        &books.chart,
        &books.totals,
        year,
        books.id("1120"),
        date!(2024 - 12 - 31),
        9,
    );
    assert_eq!(
        err.unwrap_err().to_string(),
        "1120 Bank account cannot take the year's result: choose an equity account"
    );
    let err = closing_entry(
        &books.chart,
        &books.totals,
        year,
        retained,
        date!(2025 - 01 - 01),
        9,
    );
    assert_eq!(
        err.unwrap_err().to_string(),
        "2025-01-01 is outside the fiscal year 2024-01-01 to 2024-12-31"
    );
}

/// An invoice in EUR at 1.10 USD, paid at 1.05 (a realised loss of 50.00 USD); another
/// at 1.10, paid at 1.12 (a realised gain of 20.00 USD).
#[test]
fn foreign_currency_invoices_paid_at_another_rate() {
    let mut books = Books::new();
    let invoice = |books: &Books, id: u64, date: Date| JournalEntry {
        lines: vec![
            books.eur("1210", 100_000, "1.10"),
            books.eur("4200", -100_000, "1.10"),
        ],
        id,
        ..books.draft(date, "Consulting invoice, EUR 1000.00 at 1.10", &[])
    };
    let first = invoice(&books, 1, date!(2024 - 01 - 10));
    assert_eq!(first.lines[0].amount, 110_000);
    books.post_entry(first).unwrap();

    // Paid at 1.05: the bank receives 1050.00 USD for a receivable of 1100.00 USD. On its
    // own the payment does not balance in USD...
    let mut payment = JournalEntry {
        lines: vec![
            books.eur("1140", 100_000, "1.05"),
            books.eur("1210", -100_000, "1.10"),
        ],
        ..books.draft(
            date!(2024 - 02 - 15),
            "Payment of the invoice, EUR 1000.00 at 1.05",
            &[],
        )
    };
    assert_eq!(
        PostedEntry::post(payment.clone(), &books.chart, None)
            .unwrap_err()
            .to_string(),
        "the entry does not balance in USD: debits 1050.00 USD, credits 1100.00 USD; \
         credits exceed debits by 50.00 USD"
    );
    // ...until the realised loss is booked.
    payment.lines.push(Line::debit(books.id("6900"), 5_000));
    books.post_entry(payment).unwrap();

    let second = invoice(&books, 3, date!(2024 - 02 - 20));
    books.post_entry(second).unwrap();
    let mut payment = JournalEntry {
        lines: vec![
            books.eur("1140", 100_000, "1.12"),
            books.eur("1210", -100_000, "1.10"),
        ],
        ..books.draft(
            date!(2024 - 02 - 25),
            "Payment of the invoice, EUR 1000.00 at 1.12",
            &[],
        )
    };
    payment.lines.push(Line::credit(books.id("4400"), 2_000));
    books.post_entry(payment).unwrap();

    assert_eq!(
        books.profit_and_loss(202_401, 202_402),
        "\
Income
  4200 Services                    2200.00
  4400 Exchange gains                20.00
Total income                       2220.00
Expenses
  6900 Exchange losses               50.00
Total expenses                       50.00
Net profit                         2170.00
"
    );
    assert_eq!(
        books.balance_sheet(202_402),
        "\
Assets
  1140 Bank account EUR            2170.00
Total assets                       2170.00
Liabilities
Total liabilities                     0.00
Equity
Total equity                          0.00
Unclosed result                    2170.00
"
    );
}

#[test]
fn foreign_lines_must_agree_with_their_rate_and_account() {
    let books = Books::new();
    let mut entry = JournalEntry {
        lines: vec![
            books.eur("1210", 100_000, "1.10"),
            books.eur("4200", -100_000, "1.10"),
        ],
        ..books.draft(date!(2024 - 01 - 10), "Invoice", &[])
    };
    entry.lines[0].amount = 109_999;
    entry.lines[1].amount = -109_999;
    assert_eq!(
        crate::validate(&entry, &books.chart, None)
            .unwrap_err()
            .to_string(),
        "line 1: 1000.00 EUR at 1.1 is 1100.00 USD, not 1099.99 USD"
    );
    // The EUR account takes only EUR.
    let entry = books.draft(
        date!(2024 - 01 - 10),
        "Transfer",
        &[("1140", 100), ("1120", -100)],
    );
    assert_eq!(
        crate::validate(&entry, &books.chart, None)
            .unwrap_err()
            .to_string(),
        "line 1: 1140 Bank account EUR is kept in EUR; give the line's amount in EUR"
    );
    // An all-EUR entry must balance in EUR too, not just in USD after rounding.
    let entry = JournalEntry {
        lines: vec![
            books.eur("1210", 1, "1.4"),
            books.eur("1210", 1, "1.4"),
            books.eur("4200", -1, "2"),
        ],
        ..books.draft(date!(2024 - 01 - 10), "Rounding", &[])
    };
    assert_eq!(
        crate::validate(&entry, &books.chart, None)
            .unwrap_err()
            .to_string(),
        "the entry does not balance in EUR: debits 0.02 EUR, credits 0.01 EUR; \
         debits exceed credits by 0.01 EUR"
    );
    let usd_as_foreign = JournalEntry {
        lines: vec![
            Line::foreign(
                books.id("1210"),
                Money::new(100, USD),
                Rate::parse("1").unwrap(),
                USD,
            )
            .unwrap(),
            Line::credit(books.id("4200"), 100),
        ],
        ..books.draft(date!(2024 - 01 - 10), "Odd", &[])
    };
    assert_eq!(
        crate::validate(&usd_as_foreign, &books.chart, None)
            .unwrap_err()
            .to_string(),
        "line 1: USD is the company currency; give the amount without a transaction currency"
    );
}

#[test]
fn a_reversal_cancels_an_entry() {
    let mut books = trading_books();
    books.post(
        date!(2024 - 03 - 01),
        "March rent (posted twice by mistake)",
        &[("6200", 100_000), ("1120", -100_000)],
    );
    let mistake = books.journal.last().unwrap().clone();
    let status = EntryStatus::Posted;

    let err = reverse(&mistake, date!(2024 - 02 - 29), 50).unwrap_err();
    assert_eq!(
        err.to_string(),
        "entry 8 is dated 2024-03-01; its reversal cannot be dated earlier (2024-02-29)"
    );
    let reversal = reverse(&mistake, date!(2024 - 03 - 02), 50).unwrap();
    assert_eq!(reversal.kind, EntryKind::Reversal { of: 8 });
    assert_eq!(
        reversal.narration,
        "Reversal of entry 8: March rent (posted twice by mistake)"
    );
    books.post_entry(reversal).unwrap();
    assert_eq!(
        status.transition(EntryStatus::Cancelled).unwrap(),
        EntryStatus::Cancelled
    );

    // Both entries stay in the books and cancel out.
    assert_eq!(
        books.trial_balance(202_403, 202_403),
        "\
1000 Assets                       10800.00   1000.00   1000.00  10800.00
  1100 Cash and bank               7800.00   1000.00   1000.00   7800.00
    1120 Bank account              7800.00   1000.00   1000.00   7800.00
  1300 Stock                       2200.00      0.00      0.00   2200.00
  1400 VAT receivable               800.00      0.00      0.00    800.00
2000 Liabilities                   -600.00      0.00      0.00   -600.00
  2200 Taxes                       -600.00      0.00      0.00   -600.00
    2210 VAT payable               -600.00      0.00      0.00   -600.00
3000 Equity                      -10000.00      0.00      0.00 -10000.00
  3100 Share capital             -10000.00      0.00      0.00 -10000.00
4000 Income                       -3000.00      0.00      0.00  -3000.00
  4100 Sales of goods             -3000.00      0.00      0.00  -3000.00
5000 Cost of sales                 1800.00      0.00      0.00   1800.00
  5100 Cost of goods sold          1800.00      0.00      0.00   1800.00
6000 Operating expenses            1000.00   1000.00   1000.00   1000.00
  6200 Rent                        1000.00   1000.00   1000.00   1000.00
"
    );

    // The life cycle.
    let cases = [
        (
            EntryStatus::Posted,
            EntryStatus::Draft,
            "a posted entry is never edited: cancel it (which posts a reversal) and enter it again",
        ),
        (
            EntryStatus::Cancelled,
            EntryStatus::Posted,
            "the entry is cancelled; it cannot change again",
        ),
        (
            EntryStatus::Draft,
            EntryStatus::Cancelled,
            "a draft was never posted, so there is nothing to cancel: delete the draft",
        ),
        (
            EntryStatus::Posted,
            EntryStatus::Posted,
            "the entry is already posted",
        ),
    ];
    for (from, to, message) in cases {
        assert_eq!(from.transition(to).unwrap_err().to_string(), message);
    }
    assert_eq!(
        EntryStatus::Draft.transition(EntryStatus::Posted).unwrap(),
        EntryStatus::Posted
    );
}

#[test]
fn bad_entries_are_refused_with_reasons() {
    let books = trading_books();
    let on = date!(2024 - 03 - 01);
    let check = |entry: &JournalEntry, lock: Option<LockDate>| {
        crate::validate(entry, &books.chart, lock)
            .unwrap_err()
            .to_string()
    };
    let cases: [(&[(&str, i64)], &str); 6] = [
        (
            &[("6200", 100_000), ("1120", -99_999)],
            "the entry does not balance in USD: debits 1000.00 USD, credits 999.99 USD; \
             debits exceed credits by 0.01 USD",
        ),
        (
            &[("6000", 100), ("1120", -100)],
            "line 1: 6000 Operating expenses is a group account; post to one of the accounts under it",
        ),
        (
            &[("6200", 100), ("1120", -100), ("1130", 0)],
            "line 3 has a zero amount; remove the line or give it an amount",
        ),
        (
            &[("6200", 100)],
            "a journal entry needs at least two lines, a debit and a credit; this one has 1",
        ),
        (
            &[],
            "a journal entry needs at least two lines, a debit and a credit; this one has 0",
        ),
        (
            &[
                ("6200", 1_000_000_000_000_001),
                ("1120", -1_000_000_000_000_001),
            ],
            "line 1: 10000000000000.01 USD is more than one line may carry (at most 10000000000000.00 USD either way)",
        ),
    ];
    for (lines, message) in cases {
        assert_eq!(check(&books.draft(on, "Bad", lines), None), message);
    }

    let mut unknown = books.draft(on, "Bad", &[("6200", 100), ("1120", -100)]);
    unknown.lines[1].account = 999;
    assert_eq!(
        check(&unknown, None),
        "line 2: account #999 is not in the chart of accounts"
    );

    let rent = books.draft(on, "Rent", &[("6200", 100), ("1120", -100)]);
    assert_eq!(
        check(&rent, Some(LockDate(on))),
        "the books are locked up to and including 2024-03-01: an entry dated 2024-03-01 cannot \
         be posted; date it after 2024-03-01 or ask for the lock date to be moved"
    );
    assert!(crate::validate(&rent, &books.chart, Some(LockDate(date!(2024 - 02 - 29)))).is_ok());

    let in_euros = JournalEntry {
        currency: Currency::EUR,
        ..rent.clone()
    };
    assert_eq!(
        check(&in_euros, None),
        "the entry is in EUR but the company keeps its books in USD; give foreign amounts as \
         transaction amounts on the lines"
    );

    // Sums beyond i64 are an error, never a wrap or a panic.
    let huge = books.draft(
        on,
        "Huge",
        &[
            ("6200", i64::MAX),
            ("6200", i64::MAX),
            ("1120", i64::MIN),
            ("1120", i64::MIN),
        ],
    );
    assert!(
        check(&huge, None)
            .starts_with("line 1: 92233720368547758.07 USD is more than one line may carry")
    );
    let mut totals = Totals::new(USD);
    totals.insert(
        books.id("6200"),
        key(202_403),
        crate::PeriodTotals {
            regular: crate::Turnover {
                debit: i64::MAX,
                credit: 0,
            },
            closing: crate::Turnover::default(),
        },
    );
    let posted = PostedEntry::post(rent, &books.chart, None).unwrap();
    let before = totals.clone();
    let err = totals.apply(&posted).unwrap_err();
    assert!(matches!(err, LedgerError::Overflow { .. }), "{err}");
    assert_eq!(totals, before, "a failed apply changes nothing");
}

#[test]
fn damaged_totals_are_reported_not_balanced() {
    let books = trading_books();
    let mut totals = books.totals.clone();
    totals.insert(
        books.id("1120"),
        key(202_402),
        crate::PeriodTotals::default(),
    );
    let err = balance_sheet(&books.chart, &totals, key(202_402)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the books are out of balance by 5800.00 USD: the stored totals are damaged; rebuild \
         them from the posted entries"
    );
    let err = trial_balance(&books.chart, &totals, key(202_403), key(202_401)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the periods 2024-03 to 2024-01 are in the wrong order: the range ends before it starts"
    );
}
