//! Export to [beancount](https://beancount.github.io/) plain-text journals, so that the
//! books can be checked and queried by an independent tool (`bean-check`, Fava).
//!
//! Accounts map to beancount's five roots by class, then the account type, then code
//! and name: `1120 Bank account` (an asset of type Bank) is
//! `Assets:Bank:1120-Bank-Account`. Lines in a transaction currency carry their company
//! amount as a total price (`100.00 EUR @@ 108.25 USD`), so beancount weighs each line
//! exactly as the ledger does and the transaction balances in the company currency
//! (within half a minor unit: beancount turns the total into a per-unit price, whose
//! rounding leaves residues far below that).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use time::Date;

use crate::money::format_minor;
use crate::{
    Account, AccountClass, AccountId, Chart, EntryKind, LedgerError, Money, PostedEntry, validate,
};

/// The beancount name of `account`: `Root:Type:CODE-Name-Words`. Names keep only ASCII
/// letters and digits; codes are unique in a chart, so names are too.
pub fn account_name(account: &Account) -> String {
    let root = match account.class {
        AccountClass::Asset => "Assets",
        AccountClass::Liability => "Liabilities",
        AccountClass::Equity => "Equity",
        AccountClass::Income => "Income",
        AccountClass::Expense => "Expenses",
    };
    // Components start with a capital or a digit and hold letters, digits and dashes.
    let mut leaf = account.code.to_ascii_uppercase();
    for word in account
        .name
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|word| !word.is_empty())
    {
        leaf.push('-');
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            leaf.push(first.to_ascii_uppercase());
            leaf.extend(chars);
        }
    }
    format!("{root}:{}:{leaf}", account.kind.name())
}

/// The beancount journal of `entries` (every posted entry, cancelled ones and their
/// reversals included) for the company `company_name` with chart `chart`.
///
/// The journal opens each account used, on the date of its first entry, and holds one
/// transaction per entry, in date order, with the entry's id (and reference, and the
/// entry it reverses) as metadata; closing entries carry the tag `#year-end-close`.
/// Each entry is validated against `chart` again, so the journal always balances; an
/// entry that does not fit the chart is refused, naming the entry.
pub fn export(
    company_name: &str,
    chart: &Chart,
    entries: &[PostedEntry],
) -> Result<String, LedgerError> {
    let company = chart.currency();
    let mut sorted: Vec<&PostedEntry> = entries.iter().collect();
    sorted.sort_by_key(|entry| (entry.date, entry.id));

    let mut first_use: BTreeMap<AccountId, Date> = BTreeMap::new();
    for entry in &sorted {
        validate(entry, chart, None).map_err(|problem| LedgerError::InEntry {
            entry: entry.id,
            problem: Box::new(problem),
        })?;
        for line in &entry.lines {
            first_use.entry(line.account).or_insert(entry.date);
        }
    }

    let mut out = String::new();
    // Writing to a String cannot fail; the results are ignored for that reason.
    let _ = writeln!(
        out,
        "; {} — exported by nexus-ledger",
        one_line(company_name)
    );
    let _ = writeln!(out, "option \"title\" {}", quote(company_name));
    let _ = writeln!(out, "option \"operating_currency\" \"{company}\"");
    // A `@@` total becomes a per-unit price in beancount, which can leave a residue of
    // 1e-20 in a transaction's weights; for a currency without decimals (JPY) beancount's
    // default tolerance is zero and it would refuse the transaction. Real differences are
    // whole minor units, so half a minor unit tells them apart exactly.
    let half_minor_unit = format_minor(5, company.exponent() + 1);
    let _ = writeln!(
        out,
        "option \"inferred_tolerance_default\" \"{company}:{half_minor_unit}\""
    );
    let _ = writeln!(out);
    for account in chart.accounts() {
        let Some(date) = first_use.get(&account.id) else {
            continue;
        };
        let _ = write!(out, "{date} open {}", account_name(account));
        if let Some(currency) = account.currency {
            let _ = write!(out, " {currency}");
        }
        let _ = writeln!(out);
    }
    for entry in sorted {
        let _ = writeln!(out);
        let _ = write!(out, "{} * {}", entry.date, quote(&entry.narration));
        if entry.kind == EntryKind::Closing {
            let _ = write!(out, " #year-end-close");
        }
        let _ = writeln!(out);
        let _ = writeln!(out, "  entry: \"{}\"", entry.id);
        if !entry.reference.is_empty() {
            let _ = writeln!(out, "  reference: {}", quote(&entry.reference));
        }
        if let EntryKind::Reversal { of } = entry.kind {
            let _ = writeln!(out, "  reverses: \"{of}\"");
        }
        for line in &entry.lines {
            let account = chart.account(line.account)?;
            let amount = Money::new(line.amount, company);
            let _ = match line.foreign {
                None => writeln!(out, "  {}  {amount}", account_name(account)),
                Some(foreign) => {
                    let total = Money::new(line.amount.saturating_abs(), company);
                    writeln!(
                        out,
                        "  {}  {} @@ {total}",
                        account_name(account),
                        foreign.amount
                    )
                }
            };
        }
    }
    Ok(out)
}

/// `text` as a beancount string literal.
fn quote(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            '\t' => quoted.push_str("\\t"),
            c if c.is_control() => quoted.push(' '),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// `text` on one line, for a comment.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use time::macros::date;

    use super::*;
    use crate::{Currency, JournalEntry, Line, Rate};

    #[test]
    fn account_names_are_valid_components() {
        let chart = Chart::small_firm_template(Currency::USD);
        let name = |code: &str| account_name(chart.by_code(code).unwrap());
        assert_eq!(name("1120"), "Assets:Bank:1120-Bank-Account");
        assert_eq!(
            name("5100"),
            "Expenses:CostOfGoodsSold:5100-Cost-Of-Goods-Sold"
        );
        assert_eq!(
            name("3200"),
            "Equity:RetainedEarnings:3200-Retained-Earnings"
        );
        let odd = Account {
            code: "x1".to_owned(),
            name: "côté  \"office\" / 2nd".to_owned(),
            ..chart.by_code("6400").unwrap().clone()
        };
        assert_eq!(account_name(&odd), "Expenses:General:X1-C-T-Office-2nd");
    }

    #[test]
    fn exports_entries_as_transactions() {
        let mut accounts = crate::small_firm_accounts();
        accounts.push(Account {
            id: 100,
            code: "1140".to_owned(),
            name: "Bank account EUR".to_owned(),
            currency: Some(Currency::EUR),
            ..accounts[3].clone()
        });
        let chart = Chart::new(Currency::USD, accounts).unwrap();
        let id = |code: &str| chart.by_code(code).unwrap().id;
        let eur = Money::new(10_000, Currency::EUR);
        let rate = Rate::parse("1.0825").unwrap();
        let entry = JournalEntry {
            id: 7,
            currency: Currency::USD,
            date: date!(2024 - 03 - 05),
            narration: "Sale \"A\"\\B\nnext".to_owned(),
            reference: "INV-1".to_owned(),
            kind: EntryKind::Regular,
            lines: vec![
                Line::foreign(100, eur, rate, Currency::USD).unwrap(),
                Line::credit(id("4100"), 10_825),
            ],
        };
        let posted = PostedEntry::post(entry, &chart, None).unwrap();
        let journal = export("Acme \"Ltd\"", &chart, &[posted]).unwrap();
        assert_eq!(
            journal,
            r#"; Acme "Ltd" — exported by nexus-ledger
option "title" "Acme \"Ltd\""
option "operating_currency" "USD"
option "inferred_tolerance_default" "USD:0.005"

2024-03-05 open Assets:Bank:1140-Bank-Account-EUR EUR
2024-03-05 open Income:General:4100-Sales-Of-Goods

2024-03-05 * "Sale \"A\"\\B\nnext"
  entry: "7"
  reference: "INV-1"
  Assets:Bank:1140-Bank-Account-EUR  100.00 EUR @@ 108.25 USD
  Income:General:4100-Sales-Of-Goods  -108.25 USD
"#
        );
        let other_chart = Chart::small_firm_template(Currency::USD);
        let posted = PostedEntry::post(
            JournalEntry {
                id: 8,
                currency: Currency::USD,
                date: date!(2024 - 03 - 06),
                narration: "Rent".to_owned(),
                reference: String::new(),
                kind: EntryKind::Regular,
                lines: vec![Line::debit(100, 5), Line::credit(id("1120"), 5)],
            },
            &chart,
            None,
        );
        let posted = posted.unwrap_err();
        assert_eq!(
            posted.to_string(),
            "line 1: 1140 Bank account EUR is kept in EUR; give the line's amount in EUR"
        );
        let rent = PostedEntry::post(
            JournalEntry {
                id: 8,
                currency: Currency::USD,
                date: date!(2024 - 03 - 06),
                narration: "Rent".to_owned(),
                reference: String::new(),
                kind: EntryKind::Regular,
                lines: vec![
                    Line::foreign(100, eur, rate, Currency::USD).unwrap(),
                    Line::credit(id("1120"), 10_825),
                ],
            },
            &chart,
            None,
        )
        .unwrap();
        let err = export("Acme", &other_chart, &[rent]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "entry 8: line 1: account #100 is not in the chart of accounts"
        );
    }
}
