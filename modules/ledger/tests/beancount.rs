//! The oracle test: random balanced books, exported to beancount, checked by the real
//! `bean-check`, and their balances recomputed by beancount itself and compared with
//! ours, account by account and month by month, to the minor unit.
//!
//! Beancount lives in a Python venv: `$NEXUS_BEANCOUNT_VENV`, by default
//! `/var/cache/nexus-tools/beancount-venv`. When it is missing the test installs it with
//! `scripts/install-beancount.sh`; if that fails, the test fails. It never skips.
//!
//! `NEXUS_LEDGER_SEED` replays another run; `NEXUS_LEDGER_CASES` changes the number of
//! cases (40). A failing case's journal stays in the target directory for a look.

// Test support code panics on the unexpected, like the tests themselves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use nexus_ledger::beancount::{account_name, export};
use nexus_ledger::{
    Account, AccountId, Chart, Currency, EntryKind, FiscalYear, JournalEntry, Line, Money,
    PeriodKey, PeriodTotals, PostedEntry, Rate, Totals, Turnover, balance_sheet, closing_entry,
    profit_and_loss, reverse, small_firm_accounts, trial_balance,
};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use time::{Date, Duration, Month};

mod books;

const DEFAULT_SEED: u64 = 0x1ed9_e2b0_0c0a_5e55;
const DEFAULT_CASES: u64 = 40;
/// The largest generated line, so that a balancing line of six stays within the limit.
const LINE_CAP: i64 = nexus_ledger::MAX_LINE_MINOR / 10;

/// Sums beancount's view of each journal: per account and month, debit and credit
/// weights (in the operating currency) of regular and of closing transactions; per
/// account and currency, units; per transaction, the narration (hex of its UTF-8).
const ORACLE: &str = r#"
import sys
from decimal import Decimal
from beancount import loader
from beancount.core import convert, data

exponents = dict(arg.split("=") for arg in sys.argv[1].split(","))
quantum = lambda currency: Decimal(1).scaleb(-int(exponents[currency]))
for path in sys.argv[2:]:
    entries, errors, options = loader.load_file(path)
    for error in errors:
        print("E", path, str(error.message).replace("\n", " "), sep="\t")
    operating = options["operating_currency"][0]
    turnover, units = {}, {}
    for entry in entries:
        if not isinstance(entry, data.Transaction):
            continue
        print("N", path, entry.meta.get("entry"), entry.narration.encode().hex(), sep="\t")
        kind = "closing" if "year-end-close" in entry.tags else "regular"
        month = entry.date.year * 100 + entry.date.month
        for posting in entry.postings:
            weight = convert.get_weight(posting)
            if weight.currency != operating:
                print("E", path, f"a weight in {weight.currency}", sep="\t")
            key = (posting.account, month, kind)
            debit, credit = turnover.get(key, (Decimal(0), Decimal(0)))
            if weight.number >= 0:
                debit += weight.number
            else:
                credit -= weight.number
            turnover[key] = (debit, credit)
            key = (posting.account, posting.units.currency)
            units[key] = units.get(key, Decimal(0)) + posting.units.number
    for (account, month, kind), (debit, credit) in sorted(turnover.items()):
        q = quantum(operating)
        print("T", path, account, month, kind, format(debit.quantize(q), "f"),
              format(credit.quantize(q), "f"), sep="\t")
    for (account, currency), number in sorted(units.items()):
        print("U", path, account, currency, format(number.quantize(quantum(currency)), "f"),
              sep="\t")
"#;

const CURRENCIES: [Currency; 5] = [
    Currency::USD,
    Currency::EUR,
    Currency::GBP,
    Currency::JPY,
    Currency::KWD,
];

/// Pieces of narrations that a careless exporter would break.
const NARRATION_PARTS: &[&str] = &[
    "Invoice 1042",
    "payment",
    "\"quoted\"",
    "back\\slash",
    "line\nbreak",
    "tab\there",
    "café ünïcödé",
    "🎉",
    "; not a comment",
    "2024-01-01 open Assets:Fake",
    "  spaces  ",
    "carriage\rreturn",
    "",
];

#[test]
fn beancount_agrees_with_the_ledger() {
    let venv = beancount_venv();
    let seed = env_u64("NEXUS_LEDGER_SEED").unwrap_or(DEFAULT_SEED);
    let cases = env_u64("NEXUS_LEDGER_CASES").unwrap_or(DEFAULT_CASES);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ledger-beancount");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();

    let books: Vec<Books> = (0..cases)
        .map(|case| {
            let mut rng = StdRng::seed_from_u64(seed.wrapping_add(case));
            let books = Books::random(&mut rng);
            let path = dir.join(format!("case-{case}.beancount"));
            let journal = export("Oracle & \"Sons\" Ltd", &books.chart, &books.journal)
                .unwrap_or_else(|e| panic!("case {case} (seed {seed}): export refused: {e}"));
            std::fs::write(&path, journal).unwrap();
            books
        })
        .collect();

    if cases >= DEFAULT_CASES {
        assert_coverage(&books);
    }

    for case in 0..cases {
        let path = dir.join(format!("case-{case}.beancount"));
        let output = Command::new(venv.join("bin/bean-check"))
            .arg(&path)
            .output()
            .unwrap_or_else(|e| panic!("cannot run bean-check from {}: {e}", venv.display()));
        assert!(
            output.status.success() && output.stdout.is_empty() && output.stderr.is_empty(),
            "bean-check refused {} (seed {seed}):\n{}{}",
            path.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
        );
    }

    let views = beancount_views(&venv, &dir, cases);
    for (case, books) in books.iter().enumerate() {
        let path = dir.join(format!("case-{case}.beancount"));
        let view = views
            .get(&path.display().to_string())
            .cloned()
            .unwrap_or_default();
        let context = format!("{} (seed {seed})", path.display());
        books.compare(
            &view,
            &context,
            &mut StdRng::seed_from_u64(seed ^ case as u64),
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
    eprintln!("beancount agreed on {cases} random books (seed {seed})");
}

/// Checks that the generator still makes the kinds of books worth checking, so that a
/// change to it cannot quietly make the test weaker.
fn assert_coverage(books: &[Books]) {
    let entries = || books.iter().flat_map(|b| b.journal.iter());
    let companies: std::collections::BTreeSet<Currency> =
        books.iter().map(|b| b.chart.currency()).collect();
    let reversals = entries()
        .filter(|e| matches!(e.kind, EntryKind::Reversal { .. }))
        .count();
    let closings = entries().filter(|e| e.kind == EntryKind::Closing).count();
    let in_one_foreign_currency = entries()
        .filter(|e| {
            let currencies: Vec<Option<Currency>> = e
                .lines
                .iter()
                .map(|l| l.foreign.map(|f| f.amount.currency()))
                .collect();
            currencies[0].is_some() && currencies.iter().all(|c| *c == currencies[0])
        })
        .count();
    let mixed = entries()
        .filter(|e| {
            e.lines.iter().any(|l| l.foreign.is_some())
                && e.lines.iter().any(|l| l.foreign.is_none())
        })
        .count();
    let summary = format!(
        "companies {companies:?}, reversals {reversals}, closings {closings}, \
         in one foreign currency {in_one_foreign_currency}, mixed {mixed}"
    );
    assert!(
        companies.len() == 3
            && reversals >= 5
            && closings >= 5
            && in_one_foreign_currency >= 5
            && mixed >= 20,
        "the generator no longer covers enough: {summary}"
    );
    eprintln!("generated: {summary}");
}

/// Random books over the small-firm chart plus two accounts kept in foreign currencies.
struct Books {
    chart: Chart,
    totals: Totals,
    journal: Vec<PostedEntry>,
}

impl Books {
    fn random(rng: &mut StdRng) -> Books {
        let company = *[Currency::USD, Currency::EUR, Currency::JPY]
            .choose(rng)
            .unwrap();
        let mut accounts = small_firm_accounts();
        let bank = accounts.iter().find(|a| a.code == "1120").unwrap().clone();
        for (id, code, currency) in [(900, "1140", Currency::EUR), (901, "1150", Currency::KWD)] {
            accounts.push(Account {
                id,
                code: code.to_owned(),
                name: format!("Bank account {currency}"),
                currency: Some(currency),
                ..bank.clone()
            });
        }
        let chart = Chart::new(company, accounts).unwrap();
        let mut books = Books {
            totals: Totals::new(company),
            chart,
            journal: Vec::new(),
        };
        let postable: Vec<Account> = books
            .chart
            .accounts()
            .filter(|a| !a.is_group)
            .cloned()
            .collect();
        let first_day = Date::from_calendar_date(2023, Month::November, 1).unwrap();
        let count = rng.random_range(5..=25);
        for id in 1..=count {
            let date = first_day + Duration::days(rng.random_range(0..=480));
            if id > 1 && rng.random_bool(0.1) {
                let original = books.journal.choose(rng).unwrap().clone();
                let later = original.date + Duration::days(rng.random_range(0..=40));
                let reversal = reverse(&original, later, id).unwrap();
                books.post(reversal);
                continue;
            }
            let lines = random_lines(rng, &postable, company);
            let narration: Vec<&str> = (0..rng.random_range(1..=3))
                .map(|_| *NARRATION_PARTS.choose(rng).unwrap())
                .collect();
            books.post(JournalEntry {
                id,
                currency: company,
                date,
                narration: narration.join(" "),
                reference: if rng.random_bool(0.5) {
                    format!("INV-{id} \"x\"")
                } else {
                    String::new()
                },
                kind: EntryKind::Regular,
                lines,
            });
        }
        // Close 2023 and 2024, usually.
        let retained = books.chart.by_code("3200").unwrap().id;
        for (year, id) in [(2023, 1001), (2024, 1002)] {
            if rng.random_bool(0.8) {
                let fiscal = FiscalYear::calendar(year).unwrap();
                match closing_entry(
                    &books.chart,
                    &books.totals,
                    fiscal,
                    retained,
                    fiscal.end(),
                    id,
                ) {
                    Ok(entry) => books.post(entry),
                    Err(nexus_ledger::LedgerError::NothingToClose { .. }) => {}
                    Err(e) => panic!("closing {year}: {e}"),
                }
            } else {
                break;
            }
        }
        books
    }

    fn post(&mut self, entry: JournalEntry) {
        let posted = PostedEntry::post(entry.clone(), &self.chart, None)
            .unwrap_or_else(|e| panic!("the generator made an invalid entry ({e}): {entry:#?}"));
        self.totals.apply(&posted).unwrap();
        self.journal.push(posted);
    }

    /// Compares everything beancount computed with the ledger's own figures.
    fn compare(&self, view: &View, context: &str, rng: &mut StdRng) {
        assert!(
            view.errors.is_empty(),
            "{context}: beancount reported {:?}",
            view.errors
        );
        let company = self.chart.currency();
        let ids: BTreeMap<String, AccountId> = self
            .chart
            .accounts()
            .map(|account| (account_name(account), account.id))
            .collect();
        let money = |text: &str, currency: Currency| Money::parse(text, currency).unwrap().minor();

        // Totals, per account, month and kind, exactly.
        let mut theirs: BTreeMap<(AccountId, PeriodKey), PeriodTotals> = BTreeMap::new();
        for (account, month, kind, debit, credit) in &view.turnover {
            let id = *ids
                .get(account)
                .unwrap_or_else(|| panic!("{context}: unknown {account}"));
            let period = PeriodKey::from_u32(*month).unwrap();
            let turnover = Turnover {
                debit: money(debit, company),
                credit: money(credit, company),
            };
            let slot = theirs.entry((id, period)).or_default();
            match kind.as_str() {
                "closing" => slot.closing = turnover,
                _ => slot.regular = turnover,
            }
        }
        let ours: BTreeMap<(AccountId, PeriodKey), PeriodTotals> = self
            .totals
            .iter()
            .map(|(account, period, totals)| ((account, period), totals))
            .collect();
        assert_same(
            &ours,
            &theirs,
            &format!("{context}: totals per (account, month)"),
        );

        // Units per account and currency, against the journal's lines.
        let mut units: BTreeMap<(AccountId, Currency), i64> = BTreeMap::new();
        for entry in &self.journal {
            for line in &entry.lines {
                let amount = line
                    .foreign
                    .map_or(Money::new(line.amount, company), |f| f.amount);
                *units.entry((line.account, amount.currency())).or_default() += amount.minor();
            }
        }
        let theirs_units: BTreeMap<(AccountId, Currency), i64> = view
            .units
            .iter()
            .map(|(account, code, number)| {
                let currency = Currency::new(code).unwrap();
                ((ids[account], currency), money(number, currency))
            })
            .collect();
        assert_same(
            &units,
            &theirs_units,
            &format!("{context}: units per (account, currency)"),
        );

        // Narrations survive the quoting (control characters other than newline and
        // tab become spaces).
        for entry in &self.journal {
            let expected: String = entry
                .narration
                .chars()
                .map(|c| {
                    if c.is_control() && c != '\n' && c != '\t' {
                        ' '
                    } else {
                        c
                    }
                })
                .collect();
            let got = view.narrations.get(&entry.id.to_string());
            assert_eq!(
                got,
                Some(&expected),
                "{context}: narration of entry {}",
                entry.id
            );
        }

        // The trial balance of a random range, every row, from beancount's months.
        let months: Vec<PeriodKey> = theirs.keys().map(|&(_, period)| period).collect();
        let (mut from, mut to) = (*months.choose(rng).unwrap(), *months.choose(rng).unwrap());
        if to < from {
            std::mem::swap(&mut from, &mut to);
        }
        let mut expected: BTreeMap<AccountId, [i64; 4]> = BTreeMap::new();
        for (&(account, period), totals) in &theirs {
            let both = totals.all().unwrap();
            let targets =
                std::iter::once(account).chain(self.chart.ancestors(account).map(|a| a.id));
            for target in targets.collect::<Vec<_>>() {
                let row = expected.entry(target).or_default();
                if period < from {
                    row[0] += both.debit - both.credit;
                    row[3] += both.debit - both.credit;
                } else if period <= to {
                    row[1] += both.debit;
                    row[2] += both.credit;
                    row[3] += both.debit - both.credit;
                }
            }
        }
        let rows = trial_balance(&self.chart, &self.totals, from, to).unwrap();
        assert_eq!(rows.len(), self.chart.len());
        for row in rows {
            let want = expected.get(&row.account).copied().unwrap_or_default();
            let got = [row.opening, row.debit, row.credit, row.closing];
            let account = self.chart.get(row.account).unwrap().label();
            assert_eq!(
                got, want,
                "{context}: trial balance {from}..{to}, {account}"
            );
        }

        // The profit and loss of the same range leaves closing entries out; the balance
        // sheet at its end balances.
        let pl = profit_and_loss(&self.chart, &self.totals, from, to).unwrap();
        let mut net = 0;
        for (&(account, period), totals) in &theirs {
            let class = self.chart.get(account).unwrap().class;
            if !class.is_balance_sheet() && from <= period && period <= to {
                net += totals.regular.credit - totals.regular.debit;
            }
        }
        assert_eq!(pl.net_profit, net, "{context}: net profit {from}..{to}");
        let sheet = balance_sheet(&self.chart, &self.totals, to).unwrap();
        assert_eq!(
            sheet.total_assets,
            sheet.total_liabilities + sheet.total_equity + sheet.unclosed_result
        );
    }
}

/// Fails naming the first few keys where `ours` and `theirs` (beancount's) differ.
fn assert_same<K: Ord + std::fmt::Debug, V: PartialEq + std::fmt::Debug>(
    ours: &BTreeMap<K, V>,
    theirs: &BTreeMap<K, V>,
    context: &str,
) {
    let differences: Vec<String> = ours
        .keys()
        .chain(theirs.keys().filter(|key| !ours.contains_key(key)))
        .filter(|key| ours.get(key) != theirs.get(key))
        .take(5)
        .map(|key| {
            format!(
                "  {key:?}: ours {:?}, beancount {:?}",
                ours.get(key),
                theirs.get(key)
            )
        })
        .collect();
    assert!(
        differences.is_empty(),
        "{context} differ:\n{}",
        differences.join("\n")
    );
}

/// Two to six lines, in the company currency or a foreign one, balanced in the company
/// currency (and, when all are in one foreign currency and the rounding allows, in it).
fn random_lines(rng: &mut StdRng, postable: &[Account], company: Currency) -> Vec<Line> {
    let foreign: Vec<Currency> = CURRENCIES.into_iter().filter(|&c| c != company).collect();
    // A quarter of the entries are in one foreign currency at one rate, like an invoice.
    let all_in = if rng.random_bool(0.25) {
        foreign.choose(rng).copied()
    } else {
        None
    };
    let entry_rate = random_rate(rng);
    let mut lines = Vec::new();
    let mut sum = 0i64;
    let mut foreign_sum = 0i64;
    let wanted = rng.random_range(1..=5);
    while lines.len() < wanted {
        let account = postable.choose(rng).unwrap();
        let kept = account.currency.filter(|&c| c != company);
        let currency = match (kept, all_in) {
            (Some(kept), Some(all)) if kept != all => continue,
            (Some(kept), _) => Some(kept),
            (None, Some(all)) => Some(all),
            (None, None) if rng.random_bool(0.3) => foreign.choose(rng).copied(),
            (None, None) => None,
        };
        if account.currency == Some(company) && currency.is_some() {
            continue;
        }
        let minor = random_amount(rng);
        let line = match currency {
            None => Line::debit(account.id, minor),
            Some(currency) => {
                let rate = if all_in.is_some() {
                    entry_rate
                } else {
                    random_rate(rng)
                };
                let line =
                    Line::foreign(account.id, Money::new(minor, currency), rate, company).unwrap();
                if line.amount == 0 || line.amount.abs() > LINE_CAP {
                    continue;
                }
                foreign_sum += minor;
                line
            }
        };
        sum += line.amount;
        lines.push(line);
    }
    // Balance: in the single foreign currency when all lines are in it, else in the
    // company currency, to an account kept in the company currency.
    if let (Some(currency), true) = (all_in, foreign_sum != 0) {
        let account = loop {
            let account = postable.choose(rng).unwrap();
            if account.currency.is_none_or(|c| c == currency) {
                break account;
            }
        };
        let last = lines.last().unwrap().foreign.unwrap();
        let line = Line::foreign(
            account.id,
            Money::new(-foreign_sum, currency),
            last.rate,
            company,
        )
        .unwrap();
        if line.amount != 0 && line.amount.abs() <= LINE_CAP {
            sum += line.amount;
            lines.push(line);
        }
    }
    if sum != 0 || lines.len() < 2 {
        let account = loop {
            let account = postable.choose(rng).unwrap();
            if account.currency.is_none_or(|c| c == company) {
                break account;
            }
        };
        if sum == 0 {
            // One more pair, so the entry has two lines.
            lines.push(Line::debit(account.id, 1));
            sum = 1;
        }
        lines.push(Line::debit(account.id, -sum));
    }
    lines
}

/// A rate from 0.000001 to 2000.
fn random_rate(rng: &mut StdRng) -> Rate {
    Rate::new(rng.random_range(1..=200_000), rng.random_range(2..=6)).unwrap()
}

/// Mostly everyday amounts, sometimes tiny or large; either sign.
fn random_amount(rng: &mut StdRng) -> i64 {
    let size = match rng.random_range(0..10) {
        0 => rng.random_range(1..=9),
        1 => rng.random_range(1_000_000_000..=9_000_000_000),
        _ => rng.random_range(100..=5_000_000),
    };
    if rng.random_bool(0.5) { size } else { -size }
}

/// Beancount's view of one journal, from the oracle script.
#[derive(Debug, Clone, Default)]
struct View {
    errors: Vec<String>,
    /// (account, YYYYMM, "regular" | "closing", debit, credit).
    turnover: Vec<(String, u32, String, String, String)>,
    /// (account, currency, units).
    units: Vec<(String, String, String)>,
    /// Entry id to narration.
    narrations: BTreeMap<String, String>,
}

/// Runs the oracle once over all journals; keyed by journal path.
fn beancount_views(venv: &Path, dir: &Path, cases: u64) -> BTreeMap<String, View> {
    let script = dir.join("oracle.py");
    std::fs::write(&script, ORACLE).unwrap();
    let exponents: Vec<String> = CURRENCIES
        .iter()
        .map(|c| format!("{c}={}", c.exponent()))
        .collect();
    let output = Command::new(venv.join("bin/python"))
        .arg(&script)
        .arg(exponents.join(","))
        .args((0..cases).map(|case| dir.join(format!("case-{case}.beancount"))))
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success(),
        "the beancount oracle failed:\n{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut views: BTreeMap<String, View> = BTreeMap::new();
    for line in stdout.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        let view = views.entry(fields[1].to_owned()).or_default();
        match fields[..] {
            ["E", _, message] => view.errors.push(message.to_owned()),
            ["N", _, id, hex] => {
                let bytes: Vec<u8> = (0..hex.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                    .collect();
                view.narrations
                    .insert(id.to_owned(), String::from_utf8(bytes).unwrap());
            }
            ["T", _, account, month, kind, debit, credit] => view.turnover.push((
                account.to_owned(),
                month.parse().unwrap(),
                kind.to_owned(),
                debit.to_owned(),
                credit.to_owned(),
            )),
            ["U", _, account, currency, number] => {
                view.units
                    .push((account.to_owned(), currency.to_owned(), number.to_owned()));
            }
            _ => panic!("unexpected oracle output: {line:?}"),
        }
    }
    views
}

/// The beancount venv, installed by `scripts/install-beancount.sh` when missing.
fn beancount_venv() -> PathBuf {
    let venv = std::env::var_os("NEXUS_BEANCOUNT_VENV").map_or_else(
        || PathBuf::from("/var/cache/nexus-tools/beancount-venv"),
        PathBuf::from,
    );
    if !venv.join("bin/bean-check").exists() {
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/install-beancount.sh");
        let status = Command::new("bash")
            .arg(&script)
            .env("NEXUS_BEANCOUNT_VENV", &venv)
            .status()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        assert!(
            status.success(),
            "{} failed; beancount is needed for this test (it is never skipped)",
            script.display()
        );
    }
    assert!(
        venv.join("bin/bean-check").exists() && venv.join("bin/python").exists(),
        "{} has no bin/bean-check after installing; set NEXUS_BEANCOUNT_VENV to a beancount venv",
        venv.display()
    );
    venv
}

fn env_u64(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value:?} is not a number")),
    )
}
