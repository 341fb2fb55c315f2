//! Aging of open items and dunning reminders.
//!
//! Aging sorts what is open per party into buckets by days past the due date (not yet
//! due, 1–30, 31–60, 61–90, over 90 with the default buckets), in the company currency.
//! An item's company amount is its `booked_open`: the open amount at the booked rate,
//! exact, because settlements take proportional, half-away-from-zero rounded shares off
//! it and the last settlement takes the rest. An item with instalments is split by due
//! date ([`OpenItem::open_by_due_date`]); credits (credit notes, credits on account) are
//! aged by their date, as negative amounts.
//!
//! Dunning looks at customers' overdue items only: a party is reminded at the highest
//! [`DunningLevel`] its oldest overdue amount has reached, in the item currency, with its
//! open credits netted in; nothing is sent when the net is not positive. The store keeps
//! which level was last sent, if it wants to avoid sending one level twice.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use time::Date;

use super::settlement::OpenItem;
use super::{Ledger, ReceivablesError, add};
use crate::{Currency, Money};

/// The usual bucket limits: 1–30, 31–60, 61–90 and over 90 days past due.
pub const DEFAULT_BUCKETS: [u32; 3] = [30, 60, 90];

/// An aging report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aging {
    /// Customers or suppliers.
    pub ledger: Ledger,
    /// The date it was aged at.
    pub as_of: Date,
    /// The column titles: `"Not yet due"`, `"1–30"`, …, `"over 90"`.
    pub labels: Vec<String>,
    /// One row per party with anything open, by party id.
    pub rows: Vec<AgingRow>,
    /// Column totals, company minor units.
    pub totals: Vec<i64>,
    /// The grand total, company minor units.
    pub total: i64,
}

/// One party's row of an [`Aging`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgingRow {
    /// The customer or supplier.
    pub party: u64,
    /// One amount per column of [`Aging::labels`], company minor units.
    pub buckets: Vec<i64>,
    /// The row total.
    pub total: i64,
}

/// The `ledger` items of `items` aged at `as_of` into `buckets` (increasing day limits,
/// such as [`DEFAULT_BUCKETS`]): column 0 is not yet due (due today or later), then one
/// column per limit (days past due up to and including it), then one for the rest.
/// Items dated after `as_of` are left out; the open amounts are those of `items` (the
/// store passes the items as they stood, for a report of an earlier date).
pub fn aging(
    items: &[OpenItem],
    ledger: Ledger,
    as_of: Date,
    buckets: &[u32],
) -> Result<Aging, ReceivablesError> {
    if buckets.is_empty() || buckets[0] == 0 || buckets.windows(2).any(|w| w[0] >= w[1]) {
        return Err(ReceivablesError::InvalidBuckets {
            buckets: buckets.to_vec(),
        });
    }
    let mut labels = vec!["Not yet due".to_owned()];
    let mut from = 1;
    for &limit in buckets {
        labels.push(format!("{from}–{limit}"));
        from = limit.saturating_add(1);
    }
    labels.push(format!("over {}", buckets[buckets.len() - 1]));
    let columns = labels.len();
    let mut rows: BTreeMap<u64, Vec<i64>> = BTreeMap::new();
    for item in items
        .iter()
        .filter(|i| i.ledger == ledger && !i.is_settled() && i.date <= as_of)
    {
        let row = rows.entry(item.party).or_insert_with(|| vec![0; columns]);
        for (due, _, company) in item.open_by_due_date() {
            let days = (as_of - due).whole_days();
            let column = if days <= 0 {
                0
            } else {
                buckets
                    .iter()
                    .position(|&limit| days <= i64::from(limit))
                    .map_or(columns - 1, |p| p + 1)
            };
            row[column] = add(row[column], company)?;
        }
    }
    let mut totals = vec![0; columns];
    let mut out = Vec::with_capacity(rows.len());
    for (party, amounts) in rows {
        for (total, &amount) in totals.iter_mut().zip(&amounts) {
            *total = add(*total, amount)?;
        }
        out.push(AgingRow {
            party,
            total: amounts.iter().try_fold(0, |s, &a| add(s, a))?,
            buckets: amounts,
        });
    }
    Ok(Aging {
        ledger,
        as_of,
        labels,
        rows: out,
        total: totals.iter().try_fold(0, |s, &a| add(s, a))?,
        totals,
    })
}

/// One step of a dunning policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DunningLevel {
    /// Sent once the oldest overdue amount is at least this many days past due.
    pub days: u32,
    /// The letter's title, such as `"Friendly reminder"`.
    pub title: String,
    /// A fee charged with the letter, if any.
    pub fee: Option<Money>,
}

/// The levels of reminders, by increasing days overdue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DunningPolicy {
    /// At least one; increasing `days`, each at least 1.
    pub levels: Vec<DunningLevel>,
}

impl DunningPolicy {
    /// 7 days: "Friendly reminder"; 30: "Second reminder"; 60: "Final notice", the
    /// last two with `fee` if given.
    pub fn standard(fee: Option<Money>) -> DunningPolicy {
        let level = |days, title: &str, fee| DunningLevel {
            days,
            title: title.to_owned(),
            fee,
        };
        DunningPolicy {
            levels: vec![
                level(7, "Friendly reminder", None),
                level(30, "Second reminder", fee),
                level(60, "Final notice", fee),
            ],
        }
    }

    /// Checks the levels: at least one, days increasing from at least 1, titles given.
    pub fn check(&self) -> Result<(), ReceivablesError> {
        let invalid = |reason| Err(ReceivablesError::InvalidPolicy { reason });
        if self.levels.is_empty() {
            return invalid("it has no levels");
        }
        if self.levels.iter().any(|l| l.days == 0) {
            return invalid("a level starts at 1 day overdue or later");
        }
        if self.levels.windows(2).any(|w| w[0].days >= w[1].days) {
            return invalid("the levels must be in order of increasing days overdue");
        }
        if self.levels.iter().any(|l| l.title.trim().is_empty()) {
            return invalid("every level needs a title");
        }
        Ok(())
    }
}

/// One document on a reminder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReminderItem {
    /// The document number (or payment reference, for a credit on account).
    pub number: String,
    /// The document date.
    pub date: Date,
    /// The due date (of the instalment, for documents paid in instalments).
    pub due: Date,
    /// Days past the due date; 0 or less for credits not yet due.
    pub days_overdue: i64,
    /// What is open, in the document currency; negative for credits.
    pub open: Money,
}

/// A reminder to one customer, in one currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reminder {
    /// The customer.
    pub party: u64,
    /// The date of the letter.
    pub as_of: Date,
    /// The level reached, counting from 1.
    pub level: usize,
    /// The level's title.
    pub title: String,
    /// The overdue amounts, oldest due first, then open credits.
    pub items: Vec<ReminderItem>,
    /// `Σ items`: what the customer should pay, more than zero.
    pub total: Money,
    /// The level's fee, if any.
    pub fee: Option<Money>,
}

/// The reminders due at `as_of` under `policy`: one per customer and currency whose
/// overdue amounts (less open credits) are more than zero and whose oldest overdue
/// amount has reached a level. Supplier items and items dated after `as_of` are left
/// out.
pub fn reminders(
    items: &[OpenItem],
    as_of: Date,
    policy: &DunningPolicy,
) -> Result<Vec<Reminder>, ReceivablesError> {
    policy.check()?;
    let mut groups: BTreeMap<(u64, Currency), Vec<ReminderItem>> = BTreeMap::new();
    for item in items
        .iter()
        .filter(|i| i.ledger == Ledger::Receivable && !i.is_settled() && i.date <= as_of)
    {
        for (due, open, _) in item.open_by_due_date() {
            let days_overdue = (as_of - due).whole_days();
            if open < 0 || days_overdue > 0 {
                groups
                    .entry((item.party, item.currency))
                    .or_default()
                    .push(ReminderItem {
                        number: item.number.clone(),
                        date: item.date,
                        due,
                        days_overdue,
                        open: Money::new(open, item.currency),
                    });
            }
        }
    }
    let mut out = Vec::new();
    for ((party, currency), mut lines) in groups {
        let oldest = lines
            .iter()
            .filter(|l| l.open.minor() > 0)
            .map(|l| l.days_overdue)
            .max()
            .unwrap_or(0);
        let reached = policy
            .levels
            .iter()
            .enumerate()
            .rev()
            .find(|(_, l)| i64::from(l.days) <= oldest);
        let total = lines.iter().try_fold(0, |s, l| add(s, l.open.minor()))?;
        let Some((index, level)) = reached else {
            continue;
        };
        if total <= 0 {
            continue;
        }
        lines.sort_by_key(|l| (l.open.minor() < 0, l.due, l.number.clone()));
        out.push(Reminder {
            party,
            as_of,
            level: index + 1,
            title: level.title.clone(),
            items: lines,
            total: Money::new(total, currency),
            fee: level.fee,
        });
    }
    Ok(out)
}

impl Reminder {
    /// The letter, plain text: `company` writes to `party` (names as printed), listing
    /// each document with its date, due date, days overdue and open amount, the total,
    /// and the fee if any.
    pub fn letter(&self, company: &str, party: &str) -> String {
        let mut text = String::new();
        let _ = writeln!(text, "{company}");
        let _ = writeln!(text);
        let _ = writeln!(text, "To: {party}");
        let _ = writeln!(text, "Date: {}", self.as_of);
        let _ = writeln!(text);
        let _ = writeln!(text, "{}", self.title);
        let _ = writeln!(text);
        let _ = writeln!(
            text,
            "According to our records the following amounts are overdue:"
        );
        let _ = writeln!(text);
        let _ = writeln!(
            text,
            "{:<14} {:<10}  {:<10}  {:>5}  {:>16}",
            "Document", "Date", "Due", "Days", "Open"
        );
        for item in &self.items {
            let days = if item.days_overdue > 0 && item.open.minor() > 0 {
                item.days_overdue.to_string()
            } else {
                String::new()
            };
            let _ = writeln!(
                text,
                "{:<14} {:<10}  {:<10}  {:>5}  {:>16}",
                item.number,
                item.date.to_string(),
                item.due.to_string(),
                days,
                item.open.to_string()
            );
        }
        let _ = writeln!(text, "{:<44}  {:>16}", "Total due", self.total.to_string());
        if let Some(fee) = self.fee {
            let _ = writeln!(text, "{:<44}  {:>16}", "Reminder fee", fee.to_string());
        }
        let _ = writeln!(text);
        let _ = writeln!(
            text,
            "Please pay the total due promptly. If you have paid in the meantime, \
             please disregard this letter."
        );
        let _ = writeln!(text);
        let _ = write!(text, "{company}");
        text
    }
}

#[cfg(test)]
mod tests {
    use time::macros::date;

    use super::*;
    use crate::Rate;
    use crate::receivables::testkit::Fixture;
    use crate::receivables::{
        Allocation, DocumentKind, ItemId, Payment, PaymentKind, PaymentTerms, Settlement,
    };

    const USD: Currency = Currency::USD;

    fn apply(items: &mut [OpenItem], settlement: &Settlement) {
        for changed in &settlement.items {
            if let Some(item) = items.iter_mut().find(|i| i.id == changed.id) {
                *item = changed.clone();
            }
        }
    }

    /// Party 7: invoices in USD due on various dates and a credit note; party 8: an EUR
    /// invoice in two instalments, partly paid; party 9: an invoice 5 days overdue.
    fn book() -> (Fixture, Vec<OpenItem>) {
        let f = Fixture::usd();
        let mut items = Vec::new();
        // (id, party, date, net, terms): net30 from the date gives the due date.
        let usd = [
            (1, 7, date!(2024 - 06 - 15), 10_000), // due 07-15: not yet due
            (2, 7, date!(2024 - 05 - 11), 20_000), // due 06-10: 20 days
            (3, 7, date!(2024 - 04 - 01), 30_000), // due 05-01: 60 days
            (4, 7, date!(2024 - 03 - 01), 50_000), // due 03-31: 91 days
            (5, 7, date!(2024 - 03 - 31), 40_000), // due 04-30: 61 days
            (6, 9, date!(2024 - 05 - 26), 9_900),  // due 06-25: 5 days
        ];
        for (id, party, date, net) in usd {
            let document = f.document(DocumentKind::SalesInvoice, id, party, date, USD, None, net);
            let (entry, item) = document.book(&f.accounts).unwrap();
            f.post(entry);
            items.push(item);
        }
        let note = f.document(
            DocumentKind::SalesCreditNote,
            7,
            7,
            date!(2024 - 06 - 20),
            USD,
            None,
            5_000,
        );
        items.push(note.open_item(&f.accounts).unwrap());
        // 1000.00 EUR at 1.10 (1100.00 USD), 30% due 04-01, 70% due 05-31; 200.00 EUR
        // paid pays the first instalment in part.
        let mut euro = f.document(
            DocumentKind::SalesInvoice,
            8,
            8,
            date!(2024 - 04 - 01),
            Currency::EUR,
            Some("1.1"),
            100_000,
        );
        euro.terms = PaymentTerms::parse("30%:0,70%:60").unwrap();
        items.push(euro.open_item(&f.accounts).unwrap());
        let pay = Payment {
            id: 20,
            kind: PaymentKind::CustomerReceipt,
            party: 8,
            date: date!(2024 - 04 - 10),
            currency: Currency::EUR,
            amount: 20_000,
            rate: Some(Rate::parse("1.12").unwrap()),
            bank_account: f.id("1120"),
            reference: String::new(),
        };
        let settled = pay
            .settle(
                &items,
                &[Allocation {
                    item: ItemId::Document(8),
                    amount: 20_000,
                }],
                &f.accounts,
            )
            .unwrap();
        apply(&mut items, &settled);
        (f, items)
    }

    #[test]
    fn aging_buckets_at_an_as_of_date() {
        let (_, items) = book();
        let report = aging(
            &items,
            Ledger::Receivable,
            date!(2024 - 06 - 30),
            &DEFAULT_BUCKETS,
        )
        .unwrap();
        assert_eq!(
            report.labels,
            ["Not yet due", "1–30", "31–60", "61–90", "over 90"]
        );
        // Party 7: 100.00 not yet due; 200.00 at 20 days less the 50.00 credit note of
        // 06-20 (10 days): 150.00; 300.00 at 60 days; 400.00 at 61; 500.00 at 91.
        // Party 8: 800.00 EUR open of 1000.00, booked 1100.00 - 1100 × 200/1000 = 880.00
        // USD. The payment took 200.00 of the first instalment (300.00, due 04-01, 90 days):
        // 100.00 EUR is left there, 110.00 USD (880 × 100/800); 700.00 EUR due 05-31
        // (30 days) takes the rest, 770.00 USD.
        // Party 9: 99.00 at 5 days.
        let rows: Vec<(u64, Vec<i64>, i64)> = report
            .rows
            .iter()
            .map(|r| (r.party, r.buckets.clone(), r.total))
            .collect();
        assert_eq!(
            rows,
            vec![
                (7, vec![10_000, 15_000, 30_000, 40_000, 50_000], 145_000),
                (8, vec![0, 77_000, 0, 11_000, 0], 88_000),
                (9, vec![0, 9_900, 0, 0, 0], 9_900),
            ]
        );
        assert_eq!(report.totals, vec![10_000, 101_900, 30_000, 51_000, 50_000]);
        assert_eq!(report.total, 242_900);
        // Other buckets: up to 15 days, 16 to 45, over 45.
        let report = aging(&items, Ledger::Receivable, date!(2024 - 06 - 30), &[15, 45]).unwrap();
        assert_eq!(report.labels, ["Not yet due", "1–15", "16–45", "over 45"]);
        assert_eq!(
            report.rows[0].buckets,
            vec![10_000, -5_000, 20_000, 120_000]
        );
        // Nothing on the payables side.
        let payables = aging(
            &items,
            Ledger::Payable,
            date!(2024 - 06 - 30),
            &DEFAULT_BUCKETS,
        )
        .unwrap();
        assert!(payables.rows.is_empty());
        for bad in [&[][..], &[0, 30], &[60, 30], &[30, 30]] {
            let err = aging(&items, Ledger::Receivable, date!(2024 - 06 - 30), bad).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "aging buckets must be increasing day counts from 1, such as 30, 60, 90; not {bad:?}"
                )
            );
        }
    }

    #[test]
    fn a_dunning_letter() {
        let (_, items) = book();
        let policy = DunningPolicy::standard(Some(Money::new(1_000, USD)));
        let sent = reminders(&items, date!(2024 - 06 - 30), &policy).unwrap();
        // Party 7's oldest amount is 91 days overdue: final notice. Party 8's is 90 days:
        // final notice too. Party 9's is 5 days: below the first level (7), no letter.
        let summary: Vec<(u64, usize, &str, String)> = sent
            .iter()
            .map(|r| (r.party, r.level, r.title.as_str(), r.total.to_string()))
            .collect();
        assert_eq!(
            summary,
            vec![
                (7, 3, "Final notice", "1350.00 USD".to_owned()),
                (8, 3, "Final notice", "800.00 EUR".to_owned()),
            ]
        );
        let letter = sent[0].letter("Nexus Trading Ltd", "Acme Corp");
        let expected = "\
Nexus Trading Ltd

To: Acme Corp
Date: 2024-06-30

Final notice

According to our records the following amounts are overdue:

Document       Date        Due          Days              Open
D-4            2024-03-01  2024-03-31     91        500.00 USD
D-5            2024-03-31  2024-04-30     61        400.00 USD
D-3            2024-04-01  2024-05-01     60        300.00 USD
D-2            2024-05-11  2024-06-10     20        200.00 USD
D-7            2024-06-20  2024-06-20               -50.00 USD
Total due                                          1350.00 USD
Reminder fee                                         10.00 USD

Please pay the total due promptly. If you have paid in the meantime, please disregard this letter.

Nexus Trading Ltd";
        assert_eq!(letter, expected, "\n{letter}");
        // At 2024-06-12 party 7's oldest is 73 days: second reminder; party 8's (72 days)
        // too; a policy that starts later sends nothing.
        let sent = reminders(&items, date!(2024 - 06 - 12), &policy).unwrap();
        assert_eq!(sent.iter().map(|r| r.level).collect::<Vec<_>>(), vec![3, 3]);
        let sent = reminders(&items, date!(2024 - 05 - 10), &policy).unwrap();
        assert_eq!(
            sent.iter().map(|r| (r.party, r.level)).collect::<Vec<_>>(),
            vec![(7, 2), (8, 2)]
        );
        let late = DunningPolicy {
            levels: vec![DunningLevel {
                days: 100,
                title: "Late".to_owned(),
                fee: None,
            }],
        };
        assert!(
            reminders(&items, date!(2024 - 06 - 30), &late)
                .unwrap()
                .is_empty()
        );
        let unordered = DunningPolicy {
            levels: vec![policy.levels[1].clone(), policy.levels[0].clone()],
        };
        assert_eq!(
            reminders(&items, date!(2024 - 06 - 30), &unordered)
                .unwrap_err()
                .to_string(),
            "the dunning policy is not valid: the levels must be in order of increasing days overdue"
        );
    }
}
