//! Sales and purchase invoices and credit notes: lines, taxes, totals, payment terms,
//! and the journal entry and open item each document books.
//!
//! Arithmetic, all exact and rounded half away from zero to the document currency's
//! minor unit:
//! * a line's amount is `quantity × unit price × (1 − discount)`, rounded once;
//! * **tax is rounded per document per tax code on the summed bases**: one tax row per
//!   code, as European VAT invoices show one row per rate. With prices *exclusive* of
//!   tax, a code's tax is `Σ line nets × rate`; a line with two taxes (GST and PST) pays
//!   both on its net. The total is `Σ nets + Σ tax rows`, exactly.
//! * with prices *inclusive* of tax, the line amounts are gross and the total is
//!   `Σ gross`. A code's tax is `Σ gross × r / (1 + R)` over its lines, where `R` is the
//!   sum of the rates on each line, summed exactly before the one rounding. The net is
//!   `gross − tax`; per line it is the line's gross `/ (1 + R)` rounded, and the few minor
//!   units of rounding rest go to the largest line, so that `Σ nets + Σ tax = Σ gross`.
//!
//! Documents always show positive amounts; negative quantities and prices are refused
//! (a credit note is the way to take something back).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use time::{Date, Duration};

use super::settlement::{ItemId, OpenItem};
use super::{
    Ledger, PostingAccounts, ReceivablesError, add, control_lines, div_round, finish_lines, to_i64,
};
use crate::{AccountId, Currency, EntryKind, JournalEntry, LedgerError, Line, Money, Rate};

/// Percent units: a [`Percent`] is counted in ten-thousandths of a percent.
const PERCENT_SCALE: i64 = 10_000;
/// 100% in [`Percent`] units: the denominator of a ratio.
const WHOLE: i64 = 100 * PERCENT_SCALE;

/// An exact percentage from 0 to 100 with up to four decimals (`"7.7"`, `"20"`,
/// `"8.875"`), counted in ten-thousandths of a percent: 7.7% is `Percent(77_000)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Percent(pub i64);

impl Percent {
    /// Nothing.
    pub const ZERO: Percent = Percent(0);
    /// All of it.
    pub const HUNDRED: Percent = Percent(WHOLE);

    /// Parses `"20"`, `"7.7"`, `"8.875%"`: a plain decimal from 0 to 100 with at most
    /// four decimals and an optional `%`.
    pub fn parse(input: &str) -> Result<Percent, ReceivablesError> {
        let bad = |reason| ReceivablesError::MalformedPercent {
            input: input.to_owned(),
            reason,
        };
        let text = input.trim();
        let text = text.strip_suffix('%').unwrap_or(text).trim_end();
        if text.starts_with('-') {
            return Err(bad("a percentage cannot be negative"));
        }
        let scaled = parse_decimal(text, 4).ok_or_else(|| {
            bad("write a number from 0 to 100 with at most 4 decimals, such as 7.7")
        })?;
        if scaled > WHOLE {
            return Err(bad("a percentage cannot be more than 100"));
        }
        Ok(Percent(scaled))
    }
}

/// `"7.7"`, `"20"`: the shortest exact decimal, without the `%` sign.
impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_decimal(self.0, 4))
    }
}

impl FromStr for Percent {
    type Err = ReceivablesError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        Percent::parse(input)
    }
}

/// An exact quantity in thousandths of a unit: `"2.5"` is `Quantity(2500)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Quantity(pub i64);

impl Quantity {
    /// `units` whole units.
    pub const fn units(units: i64) -> Quantity {
        Quantity(units.saturating_mul(1000))
    }

    /// Parses a decimal with at most three decimals, such as `"2.5"`, `"12"` or `"-1"`
    /// (a negative quantity parses, and is refused on a document).
    pub fn parse(input: &str) -> Result<Quantity, ReceivablesError> {
        let bad = |reason| ReceivablesError::MalformedQuantity {
            input: input.to_owned(),
            reason,
        };
        let text = input.trim();
        let (negative, unsigned) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let milli = parse_decimal(unsigned, 3).ok_or_else(|| {
            bad("write a number with at most 3 decimals, such as 2.5 (no separators)")
        })?;
        Ok(Quantity(if negative { -milli } else { milli }))
    }
}

/// `"2.5"`, `"-1"`.
impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_decimal(self.0, 3))
    }
}

/// Parses an unsigned plain decimal with at most `decimals` decimals, scaled by
/// `10^decimals`. `None` for anything else or beyond `i64`.
fn parse_decimal(text: &str, decimals: usize) -> Option<i64> {
    let (whole, fraction) = match text.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (text, None),
    };
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || fraction.is_some_and(|f| !digits(f)) {
        return None;
    }
    let fraction = fraction.unwrap_or("");
    if fraction.len() > decimals {
        return None;
    }
    let padding = std::iter::repeat_n(b'0', decimals - fraction.len());
    let mut value: i64 = 0;
    for digit in whole.bytes().chain(fraction.bytes()).chain(padding) {
        value = value
            .checked_mul(10)?
            .checked_add(i64::from(digit - b'0'))?;
    }
    Some(value)
}

/// `value / 10^decimals` as the shortest exact decimal.
fn format_decimal(value: i64, decimals: u8) -> String {
    let text = crate::money::format_minor(value, decimals);
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

/// Which document: the ledger it books to and its direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DocumentKind {
    /// We bill a customer: Dr receivable, Cr income and output tax.
    SalesInvoice,
    /// We credit a customer: the mirror image of a sales invoice.
    SalesCreditNote,
    /// A supplier bills us: Dr expense or stock and input tax, Cr payable.
    PurchaseInvoice,
    /// A supplier credits us: the mirror image of a purchase invoice.
    PurchaseCreditNote,
}

impl DocumentKind {
    /// Receivable for sales documents, payable for purchase documents.
    pub const fn ledger(self) -> Ledger {
        match self {
            DocumentKind::SalesInvoice | DocumentKind::SalesCreditNote => Ledger::Receivable,
            DocumentKind::PurchaseInvoice | DocumentKind::PurchaseCreditNote => Ledger::Payable,
        }
    }

    /// Whether this is a credit note.
    pub const fn is_credit_note(self) -> bool {
        matches!(
            self,
            DocumentKind::SalesCreditNote | DocumentKind::PurchaseCreditNote
        )
    }

    /// `+1` for invoices, `-1` for credit notes: the sign of the document's open item.
    pub const fn sign(self) -> i64 {
        if self.is_credit_note() { -1 } else { 1 }
    }

    /// `"Sales invoice"` and so on.
    pub const fn label(self) -> &'static str {
        match self {
            DocumentKind::SalesInvoice => "Sales invoice",
            DocumentKind::SalesCreditNote => "Sales credit note",
            DocumentKind::PurchaseInvoice => "Purchase invoice",
            DocumentKind::PurchaseCreditNote => "Purchase credit note",
        }
    }
}

/// A tax a document charges, as it stood on the document's date (the document keeps
/// its own copy, so later changes to the tax table do not change issued documents).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tax {
    /// What lines name it by, such as `"VAT20"`; unique on a document.
    pub code: String,
    /// As printed on the tax row, such as `"VAT 20%"`.
    pub name: String,
    /// The rate.
    pub percent: Percent,
    /// Output tax (a liability) for sales, input tax (an asset) for purchases.
    pub account: AccountId,
}

/// One line of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentLine {
    /// What was sold or bought.
    pub description: String,
    /// How many; not negative.
    pub quantity: Quantity,
    /// Minor units of the document currency per unit; not negative. Net of tax, or gross
    /// when the document's prices include tax.
    pub unit_price: i64,
    /// A discount off the line, if any.
    pub discount: Option<Percent>,
    /// The income account (sales) or expense or stock account (purchases).
    pub account: AccountId,
    /// The codes of the taxes charged on the line, each on the line's net.
    pub taxes: Vec<String>,
}

/// One instalment of [`PaymentTerms::Instalments`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Instalment {
    /// The share of the total.
    pub percent: Percent,
    /// Due this many days after the document date.
    pub days: u32,
}

/// When a document is due.
///
/// The compact form ([`PaymentTerms::parse`], and what [`fmt::Display`] writes):
/// `now` (due on receipt), `net30` (30 days after the document date), `eom30` (30 days
/// after the end of the document's month; `eom` alone is `eom0`), and instalments
/// `30%:0,70%:60` (30% now, 70% in 60 days; shares must add up to 100).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentTerms {
    /// Due on the document date.
    DueOnReceipt,
    /// Due this many days after the document date.
    Net(u32),
    /// Due this many days after the last day of the document's month.
    EndOfMonth(u32),
    /// Several due dates; the last instalment takes the rounding rest.
    Instalments(Vec<Instalment>),
}

/// The longest term accepted, in days (ten years).
const MAX_DAYS: u32 = 3660;

impl PaymentTerms {
    /// Parses the compact form described on [`PaymentTerms`] (case and spaces ignored).
    pub fn parse(input: &str) -> Result<PaymentTerms, ReceivablesError> {
        let bad = |reason: &str| ReceivablesError::MalformedTerms {
            input: input.to_owned(),
            reason: reason.to_owned(),
        };
        let text: String = input
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_ascii_lowercase();
        let days = |digits: &str| -> Result<u32, ReceivablesError> {
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad("give the days as a whole number, such as net30"));
            }
            digits
                .parse::<u32>()
                .ok()
                .filter(|&d| d <= MAX_DAYS)
                .ok_or_else(|| bad("terms longer than 3660 days are not accepted"))
        };
        if text.is_empty() {
            return Err(bad(
                "it is empty; write now, net30, eom30 or instalments such as 30%:0,70%:60",
            ));
        }
        if text == "now" {
            return Ok(PaymentTerms::DueOnReceipt);
        }
        if let Some(rest) = text.strip_prefix("net") {
            return Ok(PaymentTerms::Net(days(rest)?));
        }
        if let Some(rest) = text.strip_prefix("eom") {
            return Ok(PaymentTerms::EndOfMonth(if rest.is_empty() {
                0
            } else {
                days(rest)?
            }));
        }
        if text.contains(':') {
            let mut instalments = Vec::new();
            for part in text.split(',') {
                let (percent, after) = part.split_once(':').ok_or_else(|| {
                    bad("write each instalment as percent:days, such as 30%:0,70%:60")
                })?;
                let percent = Percent::parse(percent).map_err(|e| bad(&e.to_string()))?;
                instalments.push(Instalment {
                    percent,
                    days: days(after)?,
                });
            }
            let terms = PaymentTerms::Instalments(instalments);
            terms.check()?;
            return Ok(terms);
        }
        Err(bad(
            "write now, net30, eom30 or instalments such as 30%:0,70%:60",
        ))
    }

    /// Checks instalments: at least one, each share above 0%, adding up to exactly 100%.
    pub fn check(&self) -> Result<(), ReceivablesError> {
        if let PaymentTerms::Instalments(instalments) = self {
            if let Some(bad) = instalments
                .iter()
                .find(|i| !(1..=WHOLE).contains(&i.percent.0))
            {
                return Err(ReceivablesError::MalformedTerms {
                    input: self.to_string(),
                    reason: format!(
                        "an instalment's share must be more than 0% and at most 100%, not {}%",
                        bad.percent
                    ),
                });
            }
            let total = instalments.iter().map(|i| i.percent.0).sum::<i64>();
            if instalments.is_empty() || total != WHOLE {
                return Err(ReceivablesError::InstalmentsNot100 {
                    total: Percent(total),
                });
            }
        }
        Ok(())
    }

    /// For people: `"Due on receipt"`, `"Net 30"`, `"End of month + 30"`,
    /// `"30% in 0 days, 70% in 60 days"`.
    pub fn label(&self) -> String {
        match self {
            PaymentTerms::DueOnReceipt => "Due on receipt".to_owned(),
            PaymentTerms::Net(days) => format!("Net {days}"),
            PaymentTerms::EndOfMonth(days) => format!("End of month + {days}"),
            PaymentTerms::Instalments(list) => list
                .iter()
                .map(|i| format!("{}% in {} days", i.percent, i.days))
                .collect::<Vec<_>>()
                .join(", "),
        }
    }

    /// The due dates of `total` for a document dated `date`, with the amount due on
    /// each; the amounts add up to `total` exactly (instalments are rounded half away
    /// from zero, the last takes the rest).
    pub fn due_dates(
        &self,
        date: Date,
        total: Money,
    ) -> Result<Vec<(Date, Money)>, ReceivablesError> {
        let after = |from: Date, days: u32| {
            from.checked_add(Duration::days(i64::from(days)))
                .ok_or(ReceivablesError::DueDateOutOfRange { date: from, days })
        };
        match self {
            PaymentTerms::DueOnReceipt => Ok(vec![(date, total)]),
            PaymentTerms::Net(days) => Ok(vec![(after(date, *days)?, total)]),
            PaymentTerms::EndOfMonth(days) => {
                let last = date
                    .replace_day(date.month().length(date.year()))
                    .unwrap_or(date);
                Ok(vec![(after(last, *days)?, total)])
            }
            PaymentTerms::Instalments(instalments) => {
                self.check()?;
                let mut rest = total.minor();
                let mut dates = Vec::with_capacity(instalments.len());
                for (index, instalment) in instalments.iter().enumerate() {
                    let amount = if index + 1 == instalments.len() {
                        rest
                    } else {
                        let share = ratio(total.minor(), instalment.percent.0, WHOLE)?;
                        rest -= share;
                        share
                    };
                    dates.push((
                        after(date, instalment.days)?,
                        Money::new(amount, total.currency()),
                    ));
                }
                Ok(dates)
            }
        }
    }
}

/// The compact form: `now`, `net30`, `eom30`, `30%:0,70%:60`.
impl fmt::Display for PaymentTerms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PaymentTerms::DueOnReceipt => f.write_str("now"),
            PaymentTerms::Net(days) => write!(f, "net{days}"),
            PaymentTerms::EndOfMonth(days) => write!(f, "eom{days}"),
            PaymentTerms::Instalments(list) => {
                let parts: Vec<String> = list
                    .iter()
                    .map(|i| format!("{}%:{}", i.percent, i.days))
                    .collect();
                f.write_str(&parts.join(","))
            }
        }
    }
}

impl FromStr for PaymentTerms {
    type Err = ReceivablesError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        PaymentTerms::parse(input)
    }
}

/// `amount × numerator / denominator`, rounded half away from zero.
fn ratio(amount: i64, numerator: i64, denominator: i64) -> Result<i64, ReceivablesError> {
    let overflow = || format!("{amount} × {numerator} / {denominator}");
    let product = i128::from(amount)
        .checked_mul(i128::from(numerator))
        .ok_or_else(|| LedgerError::Overflow { what: overflow() })?;
    let value = div_round(product, i128::from(denominator))
        .ok_or_else(|| LedgerError::Overflow { what: overflow() })?;
    to_i64(value, overflow)
}

/// A sales or purchase invoice or credit note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// Stable id, assigned by the store.
    pub id: u64,
    /// Which document.
    pub kind: DocumentKind,
    /// The customer or supplier.
    pub party: u64,
    /// The document number, such as `"INV-1042"`.
    pub number: String,
    /// The document (and accounting) date.
    pub date: Date,
    /// The document currency.
    pub currency: Currency,
    /// Company currency per unit of `currency` on `date`; required exactly when
    /// `currency` is not the company currency.
    pub rate: Option<Rate>,
    /// When it is due (credit notes are due at once, whatever their terms).
    pub terms: PaymentTerms,
    /// Whether unit prices include tax (gross) rather than exclude it (net).
    pub prices_include_tax: bool,
    /// At least one line.
    pub lines: Vec<DocumentLine>,
    /// The taxes the lines name, by code.
    pub taxes: Vec<Tax>,
}

/// One tax row of a document: a code, the base it is charged on, and the tax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaxRow {
    /// The tax code.
    pub code: String,
    /// Its name.
    pub name: String,
    /// Its rate.
    pub percent: Percent,
    /// The account the tax posts to.
    pub account: AccountId,
    /// The sum of the nets of the lines it is charged on, in minor units.
    pub base: i64,
    /// The tax, in minor units.
    pub tax: i64,
}

/// A document's figures, in minor units of its currency, all positive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Totals {
    /// The document currency.
    pub currency: Currency,
    /// The net of each line, in line order.
    pub lines: Vec<i64>,
    /// `Σ lines`.
    pub net: i64,
    /// One row per tax code, in the order of the document's taxes (codes no line uses
    /// are left out).
    pub taxes: Vec<TaxRow>,
    /// `net + Σ taxes`.
    pub total: i64,
}

impl Totals {
    /// The total as money.
    pub const fn total_money(&self) -> Money {
        Money::new(self.total, self.currency)
    }
}

/// A running exact sum of fractions `Σ n/d` with positive denominators.
struct Fraction {
    numerator: i128,
    denominator: i128,
}

impl Fraction {
    fn add(&mut self, numerator: i128, denominator: i128) -> Option<()> {
        let g = gcd(self.denominator, denominator);
        let lcm = self.denominator.checked_div(g)?.checked_mul(denominator)?;
        let left = self
            .numerator
            .checked_mul(lcm.checked_div(self.denominator)?)?;
        let right = numerator.checked_mul(lcm.checked_div(denominator)?)?;
        self.numerator = left.checked_add(right)?;
        self.denominator = lcm;
        Some(())
    }
}

fn gcd(mut a: i128, mut b: i128) -> i128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.abs().max(1)
}

impl Document {
    /// `"Sales invoice INV-1042"`, for messages.
    pub fn label(&self) -> String {
        format!("{} {}", self.kind.label(), self.number)
    }

    /// The lines' nets, one tax row per code and the total (see the module notes for
    /// the rounding). Refuses a document without lines, negative quantities or prices,
    /// discounts over 100%, unknown or repeated tax codes, and a zero total.
    pub fn totals(&self) -> Result<Totals, ReceivablesError> {
        let label = self.label();
        let overflow = |what: &str| LedgerError::Overflow {
            what: format!("{what} of {label}"),
        };
        if self.lines.is_empty() {
            return Err(ReceivablesError::NoLines { document: label });
        }
        for (index, tax) in self.taxes.iter().enumerate() {
            if !(0..=WHOLE).contains(&tax.percent.0) {
                return Err(ReceivablesError::MalformedPercent {
                    input: tax.percent.to_string(),
                    reason: "a tax rate is from 0 to 100",
                });
            }
            if self.taxes[..index].iter().any(|t| t.code == tax.code) {
                return Err(ReceivablesError::DuplicateTaxCode {
                    document: label,
                    code: tax.code.clone(),
                });
            }
        }
        // Per line: its amount (net, or gross when prices include tax) and the indexes
        // of its taxes in `self.taxes`.
        let mut amounts = Vec::with_capacity(self.lines.len());
        let mut line_taxes: Vec<Vec<usize>> = Vec::with_capacity(self.lines.len());
        for (index, line) in self.lines.iter().enumerate() {
            let line_no = index + 1;
            if line.quantity.0 < 0 {
                return Err(ReceivablesError::NegativeQuantity {
                    document: label,
                    line: line_no,
                    quantity: line.quantity,
                });
            }
            if line.unit_price < 0 {
                return Err(ReceivablesError::NegativePrice {
                    document: label,
                    line: line_no,
                    price: Money::new(line.unit_price, self.currency),
                });
            }
            let discount = line.discount.unwrap_or(Percent::ZERO);
            if !(0..=WHOLE).contains(&discount.0) {
                return Err(ReceivablesError::DiscountOver100 {
                    document: label,
                    line: line_no,
                    discount,
                });
            }
            let mut taxes = Vec::with_capacity(line.taxes.len());
            for code in &line.taxes {
                let position =
                    self.taxes
                        .iter()
                        .position(|t| &t.code == code)
                        .ok_or_else(|| ReceivablesError::UnknownTaxCode {
                            document: label.clone(),
                            line: line_no,
                            code: code.clone(),
                        })?;
                if taxes.contains(&position) {
                    return Err(ReceivablesError::TaxTwiceOnLine {
                        document: label,
                        line: line_no,
                        code: code.clone(),
                    });
                }
                taxes.push(position);
            }
            // quantity (thousandths) × price × (100% − discount) / (1000 × 100%).
            let product = i128::from(line.quantity.0)
                .checked_mul(i128::from(line.unit_price))
                .and_then(|p| p.checked_mul(i128::from(WHOLE - discount.0)))
                .ok_or_else(|| overflow(&format!("line {line_no}")))?;
            let amount = div_round(product, 1000 * i128::from(WHOLE))
                .ok_or_else(|| overflow(&format!("line {line_no}")))?;
            amounts.push(to_i64(amount, || format!("line {line_no} of {label}"))?);
            line_taxes.push(taxes);
        }
        let mut rates_sum = Vec::with_capacity(self.lines.len());
        for taxes in &line_taxes {
            rates_sum.push(
                taxes
                    .iter()
                    .map(|&t| self.taxes[t].percent.0.max(0))
                    .sum::<i64>(),
            );
        }
        let used: Vec<usize> = (0..self.taxes.len())
            .filter(|t| line_taxes.iter().any(|taxes| taxes.contains(t)))
            .collect();
        let mut nets = amounts.clone();
        let mut tax_amounts = Vec::with_capacity(used.len());
        if self.prices_include_tax {
            // Tax per code: Σ over lines gross × r / (1 + R), summed exactly.
            for &t in &used {
                let percent = i128::from(self.taxes[t].percent.0);
                let mut sum = Fraction {
                    numerator: 0,
                    denominator: 1,
                };
                for (index, taxes) in line_taxes.iter().enumerate() {
                    if taxes.contains(&t) {
                        let numerator = i128::from(amounts[index]) * percent;
                        let denominator = i128::from(WHOLE) + i128::from(rates_sum[index]);
                        sum.add(numerator, denominator)
                            .ok_or_else(|| overflow("the tax"))?;
                    }
                }
                let tax =
                    div_round(sum.numerator, sum.denominator).ok_or_else(|| overflow("the tax"))?;
                tax_amounts.push(to_i64(tax, || format!("the tax of {label}"))?);
            }
            let gross = amounts.iter().try_fold(0i64, |s, &a| add(s, a))?;
            let tax_total = tax_amounts.iter().try_fold(0i64, |s, &a| add(s, a))?;
            let net_total = gross - tax_total;
            for (index, net) in nets.iter_mut().enumerate() {
                let exact = i128::from(amounts[index]) * i128::from(WHOLE);
                let denominator = i128::from(WHOLE) + i128::from(rates_sum[index]);
                let value = div_round(exact, denominator).ok_or_else(|| overflow("a net"))?;
                *net = to_i64(value, || format!("a net of {label}"))?;
            }
            let rest = net_total - nets.iter().try_fold(0i64, |s, &a| add(s, a))?;
            if let Some(largest) = (0..nets.len()).max_by_key(|&i| (nets[i], std::cmp::Reverse(i)))
            {
                nets[largest] = add(nets[largest], rest)?;
            }
        }
        let mut rows = Vec::with_capacity(used.len());
        for (position, &t) in used.iter().enumerate() {
            let tax = &self.taxes[t];
            let base = line_taxes
                .iter()
                .zip(&nets)
                .filter(|(taxes, _)| taxes.contains(&t))
                .try_fold(0i64, |s, (_, &n)| add(s, n))?;
            let amount = if self.prices_include_tax {
                tax_amounts.get(position).copied().unwrap_or(0)
            } else {
                ratio(base, tax.percent.0, WHOLE)?
            };
            rows.push(TaxRow {
                code: tax.code.clone(),
                name: tax.name.clone(),
                percent: tax.percent,
                account: tax.account,
                base,
                tax: amount,
            });
        }
        let net = nets.iter().try_fold(0i64, |s, &a| add(s, a))?;
        let total = rows.iter().try_fold(net, |s, r| add(s, r.tax))?;
        if total == 0 {
            return Err(ReceivablesError::ZeroTotal { document: label });
        }
        Ok(Totals {
            currency: self.currency,
            lines: nets,
            net,
            taxes: rows,
            total,
        })
    }

    /// Checks the exchange rate against the company currency: required for a foreign
    /// document, refused for one in the company currency.
    fn rate_for(&self, company: Currency) -> Result<Option<Rate>, ReceivablesError> {
        match (self.currency == company, self.rate) {
            (true, None) => Ok(None),
            (true, Some(_)) => Err(ReceivablesError::RateInCompanyCurrency {
                what: self.label(),
                currency: self.currency,
            }),
            (false, Some(rate)) => Ok(Some(rate)),
            (false, None) => Err(ReceivablesError::MissingRate {
                what: self.label(),
                currency: self.currency,
                company,
                date: self.date,
            }),
        }
    }

    /// The draft journal entry of the document, in the company currency (`id` 0: the
    /// store assigns it; the reference is the document number). A sales invoice debits
    /// the receivable with the total and credits each line account (lines on one
    /// account are summed) and each tax row's account; a purchase invoice debits the
    /// line accounts and input tax and credits the payable; credit notes are the mirror
    /// images.
    ///
    /// A foreign document converts each income/expense and tax line separately at the
    /// document rate ([`Line::foreign`]); the control (receivable/payable) account takes
    /// the exact sum of those, so the entry balances. It carries the total at the rate
    /// as one line and, when the separately rounded lines differ from that by a minor
    /// unit or so, the difference as a second, company-currency-only line on the same
    /// account.
    pub fn journal_entry(
        &self,
        accounts: &PostingAccounts,
    ) -> Result<JournalEntry, ReceivablesError> {
        Ok(self.book(accounts)?.0)
    }

    /// The open item the document leaves: signed (credit notes negative), due per its
    /// terms (credit notes on their date), booked at what the journal entry puts on the
    /// control account. One item per document; instalments are its due schedule.
    pub fn open_item(&self, accounts: &PostingAccounts) -> Result<OpenItem, ReceivablesError> {
        Ok(self.book(accounts)?.1)
    }

    /// The journal entry and the open item together (see [`Document::journal_entry`]
    /// and [`Document::open_item`]).
    pub fn book(
        &self,
        accounts: &PostingAccounts,
    ) -> Result<(JournalEntry, OpenItem), ReceivablesError> {
        let company = accounts.company;
        let rate = self.rate_for(company)?;
        let totals = self.totals()?;
        let ledger = self.kind.ledger();
        let control = accounts.control(ledger);
        // Debit-positive sign of the income/expense and tax lines.
        let side = -ledger.sign() * self.kind.sign();
        let money = |minor: i64| Money::new(minor.saturating_mul(side), self.currency);
        let line = |account: AccountId, minor: i64| -> Result<Line, ReceivablesError> {
            Ok(match rate {
                Some(rate) => Line::foreign(account, money(minor), rate, company)?,
                None => Line::debit(account, money(minor).minor()),
            })
        };
        let mut by_account: BTreeMap<AccountId, (usize, i64)> = BTreeMap::new();
        for (index, (doc_line, &net)) in self.lines.iter().zip(&totals.lines).enumerate() {
            let entry = by_account.entry(doc_line.account).or_insert((index, 0));
            entry.1 = add(entry.1, net)?;
        }
        let mut grouped: Vec<(usize, AccountId, i64)> = by_account
            .into_iter()
            .map(|(a, (i, n))| (i, a, n))
            .collect();
        grouped.sort_unstable();
        let mut lines = Vec::with_capacity(grouped.len() + totals.taxes.len() + 2);
        for (_, account, net) in grouped {
            lines.push(line(account, net)?);
        }
        for row in &totals.taxes {
            lines.push(line(row.account, row.tax)?);
        }
        let others = lines.iter().try_fold(0i64, |s, l| add(s, l.amount))?;
        let booked_control = -others;
        let total_signed = Money::new(totals.total.saturating_mul(-side), self.currency);
        let mut all = control_lines(
            control,
            total_signed,
            rate,
            Money::new(booked_control, company),
        )?;
        all.extend(lines);
        let lines = finish_lines(all, control);
        if booked_control == 0 || lines.len() < 2 {
            return Err(ReceivablesError::WorthNothing {
                what: self.label(),
                amount: totals.total_money(),
                rate: rate.unwrap_or(Rate::new(1, 0)?),
                company,
            });
        }
        let entry = JournalEntry {
            id: 0,
            currency: company,
            date: self.date,
            narration: format!(
                "{} {} {} {} #{}",
                self.kind.label(),
                self.number,
                match ledger {
                    Ledger::Receivable => "to",
                    Ledger::Payable => "from",
                },
                ledger.party_label(),
                self.party
            ),
            reference: self.number.clone(),
            kind: EntryKind::Regular,
            lines,
        };
        let sign = self.kind.sign();
        let due = if self.kind.is_credit_note() {
            vec![(self.date, totals.total_money())]
        } else {
            self.terms.due_dates(self.date, totals.total_money())?
        };
        let item = OpenItem {
            id: ItemId::Document(self.id),
            ledger,
            party: self.party,
            number: self.number.clone(),
            date: self.date,
            currency: self.currency,
            rate,
            amount: totals.total * sign,
            open: totals.total * sign,
            booked: booked_control * ledger.sign(),
            booked_open: booked_control * ledger.sign(),
            due: due
                .into_iter()
                .map(|(d, m)| (d, m.minor() * sign))
                .collect(),
        };
        Ok((entry, item))
    }
}

#[cfg(test)]
mod tests {
    use time::macros::date;

    use super::*;
    use crate::receivables::testkit::Fixture;

    const USD: Currency = Currency::USD;
    const EUR: Currency = Currency::EUR;

    fn tax(f: &Fixture, code: &str, percent: &str, account: &str) -> Tax {
        Tax {
            code: code.to_owned(),
            name: format!("{code} {percent}%"),
            percent: Percent::parse(percent).unwrap(),
            account: f.id(account),
        }
    }

    fn line(f: &Fixture, qty: &str, price: i64, account: &str, taxes: &[&str]) -> DocumentLine {
        DocumentLine {
            description: format!("{qty} at {price}"),
            quantity: Quantity::parse(qty).unwrap(),
            unit_price: price,
            discount: None,
            account: f.id(account),
            taxes: taxes.iter().map(|t| (*t).to_owned()).collect(),
        }
    }

    fn doc(kind: DocumentKind, lines: Vec<DocumentLine>, taxes: Vec<Tax>) -> Document {
        Document {
            id: 1,
            kind,
            party: 7,
            number: "INV-1".to_owned(),
            date: date!(2024 - 03 - 15),
            currency: USD,
            rate: None,
            terms: PaymentTerms::Net(30),
            prices_include_tax: false,
            lines,
            taxes,
        }
    }

    /// A sales invoice with VAT at 20% and 7.7%, prices exclusive of tax.
    fn two_rates(f: &Fixture) -> Document {
        let taxes = vec![tax(f, "S", "20", "2210"), tax(f, "R", "7.7", "2210")];
        let mut discounted = line(f, "1", 3_333, "4200", &["R"]);
        discounted.discount = Some(Percent::parse("10").unwrap());
        doc(
            DocumentKind::SalesInvoice,
            vec![
                line(f, "2.5", 1_999, "4100", &["S"]),
                line(f, "3", 1_001, "4100", &["S"]),
                line(f, "1", 10_000, "4200", &["R"]),
                discounted,
            ],
            taxes,
        )
    }

    #[test]
    fn vat_invoice_with_two_rates_exclusive() {
        let f = Fixture::usd();
        let invoice = two_rates(&f);
        // Line 1: 2.5 × 19.99 = 49.975 -> 49.98. Line 2: 3 × 10.01 = 30.03.
        // Line 3: 100.00. Line 4: 33.33 less 10% = 29.997 -> 30.00.
        // S 20% on 49.98 + 30.03 = 80.01: 16.002 -> 16.00 (per line it would be
        //   10.00 + 6.01 = 16.01: rounding per code on the summed base gives 16.00).
        // R 7.7% on 100.00 + 30.00 = 130.00: 10.01.
        // Total 80.01 + 130.00 + 16.00 + 10.01 = 236.02.
        let totals = invoice.totals().unwrap();
        assert_eq!(totals.lines, vec![4_998, 3_003, 10_000, 3_000]);
        assert_eq!(totals.net, 21_001);
        let rows: Vec<_> = totals
            .taxes
            .iter()
            .map(|r| (r.code.as_str(), r.base, r.tax))
            .collect();
        assert_eq!(rows, vec![("S", 8_001, 1_600), ("R", 13_000, 1_001)]);
        assert_eq!(totals.total, 23_602);
        let entry = invoice.journal_entry(&f.accounts).unwrap();
        assert_eq!(
            f.lines(&entry),
            vec![
                ("1210".to_owned(), 23_602, None),
                ("4100".to_owned(), -8_001, None),
                ("4200".to_owned(), -13_000, None),
                ("2210".to_owned(), -1_600, None),
                ("2210".to_owned(), -1_001, None),
            ]
        );
        f.post(entry);
    }

    #[test]
    fn vat_invoice_with_two_rates_inclusive() {
        let f = Fixture::usd();
        let mut invoice = two_rates(&f);
        invoice.prices_include_tax = true;
        // Gross: 49.98 + 30.03 = 80.01 at 20%, 100.00 + 30.00 = 130.00 at 7.7%.
        // S: 80.01 × 20/120 = 13.335 -> 13.34. R: 130.00 × 7.7/107.7 = 9.2943... -> 9.29.
        // Total = Σ gross = 210.01; nets = 210.01 - 13.34 - 9.29 = 187.38.
        // Per line: 49.98/1.2 = 41.65; 30.03/1.2 = 25.025 -> 25.03; 100/1.077 = 92.850...
        //   -> 92.85; 30/1.077 = 27.855... -> 27.86; Σ 187.39, so the largest line
        //   (92.85) takes the rest of -0.01: 92.84.
        let totals = invoice.totals().unwrap();
        assert_eq!(totals.lines, vec![4_165, 2_503, 9_284, 2_786]);
        let rows: Vec<_> = totals.taxes.iter().map(|r| (r.base, r.tax)).collect();
        assert_eq!(rows, vec![(6_668, 1_334), (12_070, 929)]);
        assert_eq!((totals.net, totals.total), (18_738, 21_001));
        assert_eq!(totals.net + 1_334 + 929, totals.total);
        f.post(invoice.journal_entry(&f.accounts).unwrap());
    }

    #[test]
    fn a_line_with_two_taxes() {
        let f = Fixture::usd();
        // GST 5% and PST 7%, both on the net of 200.00 (2 × 100.00) and on 10.00.
        // GST: 210.00 × 5% = 10.50; PST: 200.00 × 7% = 14.00 (the second line has GST only).
        // Total 210.00 + 10.50 + 14.00 = 234.50.
        let taxes = vec![tax(&f, "GST", "5", "2210"), tax(&f, "PST", "7", "2220")];
        let mut invoice = doc(
            DocumentKind::SalesInvoice,
            vec![
                line(&f, "2", 10_000, "4100", &["GST", "PST"]),
                line(&f, "1", 1_000, "4100", &["GST"]),
            ],
            taxes,
        );
        let totals = invoice.totals().unwrap();
        let rows: Vec<_> = totals.taxes.iter().map(|r| (r.base, r.tax)).collect();
        assert_eq!(rows, vec![(21_000, 1_050), (20_000, 1_400)]);
        assert_eq!(totals.total, 23_450);
        f.post(invoice.journal_entry(&f.accounts).unwrap());
        // Inclusive: 200.00 gross holds 12%: GST 200 × 5/112 = 8.928... and 10.00 × 5/105
        // = 0.476...: exactly 8.9285714 + 0.4761905 = 9.4047619 -> 9.40 (rounded once).
        // PST 200 × 7/112 = 12.50. Nets: 200/1.12 = 178.571 -> 178.57; 10/1.05 = 9.52;
        // total net 210.00 - 9.40 - 12.50 = 188.10 = 178.57 + 9.52 + 0.01 rest.
        invoice.prices_include_tax = true;
        let totals = invoice.totals().unwrap();
        let rows: Vec<_> = totals.taxes.iter().map(|r| r.tax).collect();
        assert_eq!(rows, vec![940, 1_250]);
        assert_eq!(totals.lines, vec![17_858, 952]);
        assert_eq!(totals.total, 21_000);
        f.post(invoice.journal_entry(&f.accounts).unwrap());
    }

    #[test]
    fn a_credit_note_mirrors_the_invoice() {
        let f = Fixture::usd();
        let mut note = doc(
            DocumentKind::SalesCreditNote,
            vec![line(&f, "1", 5_000, "4100", &["S"])],
            vec![tax(&f, "S", "20", "2210")],
        );
        note.number = "CN-1".to_owned();
        // 50.00 + 20% = 60.00: Dr sales 50.00, Dr VAT 10.00, Cr receivable 60.00.
        let entry = note.journal_entry(&f.accounts).unwrap();
        assert_eq!(
            f.lines(&entry),
            vec![
                ("1210".to_owned(), -6_000, None),
                ("4100".to_owned(), 5_000, None),
                ("2210".to_owned(), 1_000, None),
            ]
        );
        f.post(entry);
        let item = note.open_item(&f.accounts).unwrap();
        assert_eq!((item.open, item.booked_open), (-6_000, -6_000));
        assert_eq!(item.due, vec![(date!(2024 - 03 - 15), -6_000)]);
        // A purchase invoice: Dr expense 50.00, Dr input VAT 10.00, Cr payable 60.00;
        // its credit note the other way round.
        let mut bill = note.clone();
        bill.kind = DocumentKind::PurchaseInvoice;
        bill.lines[0].account = f.id("6400");
        bill.taxes[0].account = f.id("1400");
        let entry = bill.journal_entry(&f.accounts).unwrap();
        assert_eq!(
            f.lines(&entry),
            vec![
                ("2110".to_owned(), -6_000, None),
                ("6400".to_owned(), 5_000, None),
                ("1400".to_owned(), 1_000, None),
            ]
        );
        f.post(entry);
        assert_eq!(bill.open_item(&f.accounts).unwrap().booked_open, 6_000);
        bill.kind = DocumentKind::PurchaseCreditNote;
        let entry = bill.journal_entry(&f.accounts).unwrap();
        assert_eq!(entry.lines[0].amount, 6_000);
        f.post(entry);
        assert_eq!(bill.open_item(&f.accounts).unwrap().booked_open, -6_000);
    }

    #[test]
    fn a_foreign_invoice_books_each_line_at_the_rate() {
        let f = Fixture::usd();
        // Three lines of 33.33 EUR at 1.1: each 36.663 -> 36.66 USD, Σ 109.98 USD; the
        // total 99.99 EUR at 1.1 is 109.989 -> 109.99. The receivable takes 109.98: the
        // line for 99.99 EUR (109.99 USD) and a rounding line of -0.01 USD.
        let mut invoice = doc(
            DocumentKind::SalesInvoice,
            vec![
                line(&f, "1", 3_333, "4100", &[]),
                line(&f, "1", 3_333, "4200", &[]),
                line(&f, "1", 3_333, "4300", &[]),
            ],
            vec![],
        );
        invoice.currency = EUR;
        invoice.rate = Some(Rate::parse("1.1").unwrap());
        let entry = invoice.journal_entry(&f.accounts).unwrap();
        assert_eq!(
            f.lines(&entry),
            vec![
                ("1210".to_owned(), 10_999, Some(9_999)),
                ("1210".to_owned(), -1, None),
                ("4100".to_owned(), -3_666, Some(-3_333)),
                ("4200".to_owned(), -3_666, Some(-3_333)),
                ("4300".to_owned(), -3_666, Some(-3_333)),
            ]
        );
        f.post(entry);
        let item = invoice.open_item(&f.accounts).unwrap();
        assert_eq!((item.open, item.booked_open), (9_999, 10_998));
    }

    #[test]
    fn due_dates_follow_the_terms() {
        let usd = |minor| Money::new(minor, USD);
        let one = |terms: &str, d: Date| {
            let dates = PaymentTerms::parse(terms)
                .unwrap()
                .due_dates(d, usd(100))
                .unwrap();
            assert_eq!(dates.len(), 1);
            dates[0].0
        };
        assert_eq!(one("now", date!(2024 - 02 - 29)), date!(2024 - 02 - 29));
        // Net 30 from 31 Jan: 29 days of February 2024 (leap) + 1 = 1 March; 2 March in 2023.
        assert_eq!(one("net30", date!(2024 - 01 - 31)), date!(2024 - 03 - 01));
        assert_eq!(one("Net 30", date!(2023 - 01 - 31)), date!(2023 - 03 - 02));
        assert_eq!(one("net30", date!(2024 - 12 - 15)), date!(2025 - 01 - 14));
        // End of month + 30 from 10 Feb: 29 Feb 2024 + 30 = 30 March; 28 Feb 2023 + 30 = 30 March.
        assert_eq!(one("eom30", date!(2024 - 02 - 10)), date!(2024 - 03 - 30));
        assert_eq!(one("eom30", date!(2023 - 02 - 10)), date!(2023 - 03 - 30));
        assert_eq!(one("eom", date!(2024 - 04 - 01)), date!(2024 - 04 - 30));
        assert_eq!(one("eom30", date!(2024 - 01 - 15)), date!(2024 - 03 - 01));
        // 30% now, 70% in 60 days of 100.01: 30.003 -> 30.00, the last takes 70.01.
        let terms = PaymentTerms::parse("30%:0, 70%:60").unwrap();
        assert_eq!(terms.to_string(), "30%:0,70%:60");
        assert_eq!(terms.label(), "30% in 0 days, 70% in 60 days");
        let dates = terms.due_dates(date!(2024 - 01 - 01), usd(10_001)).unwrap();
        assert_eq!(
            dates,
            vec![
                (date!(2024 - 01 - 01), usd(3_000)),
                (date!(2024 - 03 - 01), usd(7_001))
            ]
        );
        // Thirds of 100.00: 33.33, 33.33, 33.34.
        let thirds = PaymentTerms::parse("33.3333%:0,33.3333%:30,33.3334%:60").unwrap();
        let amounts: Vec<i64> = thirds
            .due_dates(date!(2024 - 01 - 01), usd(10_000))
            .unwrap()
            .iter()
            .map(|(_, m)| m.minor())
            .collect();
        assert_eq!(amounts, vec![3_333, 3_333, 3_334]);
        for text in ["now", "net0", "net30", "eom0", "eom30", "50%:0,50%:30"] {
            let terms = PaymentTerms::parse(text).unwrap();
            assert_eq!(PaymentTerms::parse(&terms.to_string()).unwrap(), terms);
        }
        assert_eq!(PaymentTerms::EndOfMonth(30).label(), "End of month + 30");
        let far = PaymentTerms::Net(30)
            .due_dates(Date::MAX, usd(1))
            .unwrap_err();
        assert!(far.to_string().starts_with("30 days after"), "{far}");
    }

    #[test]
    fn malformed_terms_and_percents_are_refused() {
        let cases = [
            ("", "\"\" are not payment terms: it is empty"),
            (
                "net",
                "\"net\" are not payment terms: give the days as a whole number",
            ),
            (
                "net-5",
                "\"net-5\" are not payment terms: give the days as a whole number",
            ),
            (
                "net99999",
                "\"net99999\" are not payment terms: terms longer than 3660 days",
            ),
            (
                "soon",
                "\"soon\" are not payment terms: write now, net30, eom30",
            ),
            ("30%:0,60%:30", "the instalments add up to 90%, not 100%"),
            (
                "0%:0,100%:30",
                "\"0%:0,100%:30\" are not payment terms: an instalment's share must be more than 0%",
            ),
            ("30%0", "\"30%0\" are not payment terms: write now, net30"),
            ("30:0;70:60", "\"30:0;70:60\" are not payment terms"),
            (
                "abc%:0",
                "\"abc%:0\" are not payment terms: \"abc%\" is not a percentage",
            ),
        ];
        for (text, message) in cases {
            let err = PaymentTerms::parse(text).unwrap_err().to_string();
            assert!(err.starts_with(message), "{text}: {err}");
        }
        let percents = [
            ("-5", "a percentage cannot be negative"),
            ("100.5", "a percentage cannot be more than 100"),
            (
                "7.77777",
                "write a number from 0 to 100 with at most 4 decimals",
            ),
            ("seven", "write a number from 0 to 100"),
            ("", "write a number"),
        ];
        for (text, reason) in percents {
            let err = Percent::parse(text).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("{text:?} is not a percentage: {reason}")),
                "{err}"
            );
        }
        assert_eq!(Percent::parse("7.7").unwrap(), Percent(77_000));
        assert_eq!(Percent::parse("8.875 %").unwrap().to_string(), "8.875");
        assert_eq!(Quantity::parse("2.5").unwrap(), Quantity(2_500));
        assert_eq!(Quantity::parse("-1").unwrap().to_string(), "-1");
        let err = Quantity::parse("2.5555").unwrap_err().to_string();
        assert_eq!(
            err,
            "\"2.5555\" is not a quantity: write a number with at most 3 decimals, such as 2.5 (no separators)"
        );
    }

    #[test]
    fn bad_documents_are_refused_with_reasons() {
        let f = Fixture::usd();
        let base = doc(
            DocumentKind::SalesInvoice,
            vec![line(&f, "1", 1_000, "4100", &["S"])],
            vec![tax(&f, "S", "20", "2210")],
        );
        let refused = |d: &Document| d.journal_entry(&f.accounts).unwrap_err().to_string();

        let mut negative = base.clone();
        negative.lines[0].quantity = Quantity::parse("-2").unwrap();
        assert_eq!(
            refused(&negative),
            "Sales invoice INV-1, line 1: the quantity -2 is negative; \
             issue a credit note to take goods or services back"
        );
        let mut price = base.clone();
        price.lines[0].unit_price = -5;
        assert_eq!(
            refused(&price),
            "Sales invoice INV-1, line 1: the unit price -0.05 USD is negative; \
             give a discount or issue a credit note"
        );
        let mut unknown = base.clone();
        unknown.lines[0].taxes = vec!["VAT99".to_owned()];
        assert_eq!(
            refused(&unknown),
            "Sales invoice INV-1, line 1: there is no tax with the code \"VAT99\""
        );
        let mut twice = base.clone();
        twice.lines[0].taxes = vec!["S".to_owned(), "S".to_owned()];
        assert_eq!(
            refused(&twice),
            "Sales invoice INV-1, line 1: the tax \"S\" is listed twice"
        );
        let mut duplicate = base.clone();
        duplicate.taxes.push(duplicate.taxes[0].clone());
        assert_eq!(
            refused(&duplicate),
            "Sales invoice INV-1: two taxes have the code \"S\""
        );
        let mut zero = base.clone();
        zero.lines[0].unit_price = 0;
        assert_eq!(
            refused(&zero),
            "Sales invoice INV-1 comes to a total of zero; there is nothing to invoice"
        );
        let mut free = base.clone();
        free.lines[0].discount = Some(Percent::HUNDRED);
        assert_eq!(refused(&free), refused(&zero));
        let mut empty = base.clone();
        empty.lines.clear();
        assert_eq!(refused(&empty), "Sales invoice INV-1 has no lines");
        let mut foreign = base.clone();
        foreign.currency = EUR;
        assert_eq!(
            refused(&foreign),
            "Sales invoice INV-1 is in EUR but the books are kept in USD: give the exchange \
             rate (USD per EUR) of 2024-03-15"
        );
        let mut needless = base.clone();
        needless.rate = Some(Rate::parse("1.1").unwrap());
        assert_eq!(
            refused(&needless),
            "Sales invoice INV-1 is in USD, the company currency: leave the exchange rate out"
        );
        let mut discount = base.clone();
        discount.lines[0].discount = Some(Percent(WHOLE + 1));
        assert_eq!(
            refused(&discount),
            "Sales invoice INV-1, line 1: a discount of 100.0001% is more than the whole price"
        );
        let mut tiny = base;
        tiny.currency = Currency::JPY;
        tiny.rate = Some(Rate::parse("0.004").unwrap());
        tiny.lines[0].unit_price = 1;
        tiny.taxes[0].percent = Percent::ZERO;
        assert_eq!(
            refused(&tiny),
            "Sales invoice INV-1: 1 JPY is worth nothing in USD at 0.004; check the amount and the rate"
        );
    }
}
