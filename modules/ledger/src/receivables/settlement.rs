//! Open items and their settlement: payments with allocations, credits on account,
//! credit notes set against invoices, and realised exchange gains and losses.
//!
//! One [`OpenItem`] per document (instalments are its due schedule, consumed earliest
//! first) and one per unallocated payment rest (a credit on account). Amounts are signed
//! within the item's [`Ledger`]: positive is owed to us (receivables) or by us
//! (payables); credit notes and credits on account are negative.
//!
//! Settling clears an item in its own currency and removes its **booked** company
//! amount from the control account: all of `booked_open` when the item is cleared in
//! full, else `booked_open × cleared / open`, rounded half away from zero. So the
//! control account always equals `Σ booked_open`, and a fully settled item leaves
//! nothing behind. What a payment is worth at its own rate beyond (or short of) the
//! booked amounts it clears is a realised exchange gain (or loss), posted to
//! [`PostingAccounts::fx_gain`] (or `fx_loss`); one net line per settlement.
//!
//! Payments settle items in their own currency only (an EUR invoice is paid in EUR,
//! at the rate of the payment date).

use std::fmt;

use time::Date;

use super::{
    Ledger, PostingAccounts, ReceivablesError, add, control_lines, div_round, finish_lines, to_i64,
};
use crate::{AccountId, Currency, EntryKind, JournalEntry, LedgerError, Line, Money, Rate};

/// What an open item comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ItemId {
    /// A document, by its id.
    Document(u64),
    /// The unallocated rest of a payment (a credit on account), by the payment's id.
    Payment(u64),
}

/// `"document #5"`, `"payment #9"`.
impl fmt::Display for ItemId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ItemId::Document(id) => write!(f, "document #{id}"),
            ItemId::Payment(id) => write!(f, "payment #{id}"),
        }
    }
}

/// What is left to settle of a document or a credit on account.
///
/// Invariants (kept by this module): `open` has the sign of `amount` (or is zero) and
/// is no larger; `booked_open` is zero exactly when `open` is, except for items worth
/// less than a minor unit of the company currency; the `due` amounts add up to `amount`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenItem {
    /// The document or payment it comes from.
    pub id: ItemId,
    /// Customers or suppliers.
    pub ledger: Ledger,
    /// The customer or supplier.
    pub party: u64,
    /// The document number or payment reference, for people.
    pub number: String,
    /// The document or payment date.
    pub date: Date,
    /// The item's currency.
    pub currency: Currency,
    /// The rate it was booked at (`None` in the company currency).
    pub rate: Option<Rate>,
    /// The original amount, minor units of `currency`, signed.
    pub amount: i64,
    /// What is still open, minor units of `currency`, signed.
    pub open: i64,
    /// The original amount as booked on the control account, company minor units.
    pub booked: i64,
    /// What of `booked` is still on the control account.
    pub booked_open: i64,
    /// The due dates and the amount due on each, signed, adding up to `amount`.
    pub due: Vec<(Date, i64)>,
}

impl OpenItem {
    /// Whether nothing is left open.
    pub const fn is_settled(&self) -> bool {
        self.open == 0
    }

    /// The open amount as money.
    pub const fn open_money(&self) -> Money {
        Money::new(self.open, self.currency)
    }

    /// What is open per due date: `(due date, open in the item currency, open in company
    /// minor units)`. Settlements are taken to pay the earliest instalments first, so
    /// what is open is the latest. The company amounts split `booked_open` in proportion,
    /// rounded half away from zero, the last taking the rest.
    pub fn open_by_due_date(&self) -> Vec<(Date, i64, i64)> {
        let fallback = || {
            let last = self.due.last().map_or(self.date, |d| d.0);
            vec![(last, self.open, self.booked_open)]
        };
        if self.open == 0 {
            return Vec::new();
        }
        let mut paid = self.amount.saturating_sub(self.open);
        let mut parts = Vec::with_capacity(self.due.len());
        for &(date, due) in &self.due {
            let consumed = if self.amount > 0 {
                paid.clamp(0, due.max(0))
            } else {
                paid.clamp(due.min(0), 0)
            };
            paid -= consumed;
            let left = due - consumed;
            if left != 0 {
                parts.push((date, left));
            }
        }
        if parts.iter().map(|p| i128::from(p.1)).sum::<i128>() != i128::from(self.open) {
            return fallback();
        }
        let mut rest = self.booked_open;
        let count = parts.len();
        let mut out = Vec::with_capacity(count);
        for (index, (date, left)) in parts.into_iter().enumerate() {
            let company = if index + 1 == count {
                rest
            } else {
                let share = div_round(
                    i128::from(self.booked_open) * i128::from(left),
                    i128::from(self.open),
                )
                .and_then(|v| i64::try_from(v).ok())
                .unwrap_or(0);
                rest -= share;
                share
            };
            out.push((date, left, company));
        }
        out
    }

    fn label(&self) -> String {
        match self.id {
            ItemId::Document(_) => self.number.clone(),
            ItemId::Payment(_) => format!("the credit on account from payment {}", self.number),
        }
    }

    /// Clears `signed` (the item's sign) of it: checks it fits and returns the item as
    /// left and the booked company amount cleared.
    fn clear(&self, signed: i64) -> Result<(OpenItem, i64), ReceivablesError> {
        let label = self.label();
        if signed == 0 || signed.signum() != self.open.signum() || signed.abs() > self.open.abs() {
            return Err(ReceivablesError::AllocationExceedsOpen {
                document: label,
                open: Money::new(self.open.abs(), self.currency),
                attempted: Money::new(signed.abs(), self.currency),
            });
        }
        let cleared = if signed == self.open {
            self.booked_open
        } else {
            let value = div_round(
                i128::from(self.booked_open) * i128::from(signed),
                i128::from(self.open),
            )
            .ok_or_else(|| LedgerError::Overflow {
                what: format!("clearing {label}"),
            })?;
            to_i64(value, || format!("clearing {label}"))?
        };
        let mut left = self.clone();
        left.open -= signed;
        left.booked_open -= cleared;
        Ok((left, cleared))
    }
}

/// Who pays whom.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PaymentKind {
    /// A customer pays us: settles sales invoices.
    CustomerReceipt,
    /// We pay a customer back: settles sales credit notes and credits on account.
    CustomerRefund,
    /// We pay a supplier: settles purchase invoices.
    SupplierPayment,
    /// A supplier pays us back: settles purchase credit notes and credits on account.
    SupplierRefund,
}

impl PaymentKind {
    /// The ledger whose items it settles.
    pub const fn ledger(self) -> Ledger {
        match self {
            PaymentKind::CustomerReceipt | PaymentKind::CustomerRefund => Ledger::Receivable,
            PaymentKind::SupplierPayment | PaymentKind::SupplierRefund => Ledger::Payable,
        }
    }

    /// Whether money comes into the bank.
    pub const fn is_inflow(self) -> bool {
        matches!(
            self,
            PaymentKind::CustomerReceipt | PaymentKind::SupplierRefund
        )
    }

    /// `+1` when it settles invoices, `-1` when it settles credits (refunds).
    const fn direction(self) -> i64 {
        match self {
            PaymentKind::CustomerReceipt | PaymentKind::SupplierPayment => 1,
            PaymentKind::CustomerRefund | PaymentKind::SupplierRefund => -1,
        }
    }

    /// `"Payment from customer"` and so on.
    pub const fn label(self) -> &'static str {
        match self {
            PaymentKind::CustomerReceipt => "Payment from customer",
            PaymentKind::CustomerRefund => "Refund to customer",
            PaymentKind::SupplierPayment => "Payment to supplier",
            PaymentKind::SupplierRefund => "Refund from supplier",
        }
    }
}

/// Money received or paid through a bank account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    /// Stable id, assigned by the store; names the credit on account it may leave.
    pub id: u64,
    /// Who pays whom.
    pub kind: PaymentKind,
    /// The customer or supplier.
    pub party: u64,
    /// The value date, and the date of the journal entry.
    pub date: Date,
    /// The payment's currency.
    pub currency: Currency,
    /// The amount, minor units of `currency`, more than zero.
    pub amount: i64,
    /// Company currency per unit of `currency` on `date`; required exactly when the
    /// payment is not in the company currency.
    pub rate: Option<Rate>,
    /// The bank (or cash) account the money moves through.
    pub bank_account: AccountId,
    /// The bank's reference, for people; may be empty.
    pub reference: String,
}

/// How much of an item a payment settles: a positive amount in the item's (and the
/// payment's) currency, minor units. For a customer receipt an allocation to a credit
/// note reduces what the customer pays (invoice 150, credit note 50, payment 100).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allocation {
    /// The item settled.
    pub item: ItemId,
    /// How much of it, positive.
    pub amount: i64,
}

/// One allocation as applied: what the store records against the item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// The item settled.
    pub item: ItemId,
    /// What of it was settled, minor units of its currency, signed like the item.
    pub amount: i64,
    /// The booked company amount taken off the control account, signed like the item.
    pub cleared: i64,
    /// The realised exchange result, company minor units: positive a gain.
    pub fx_gain: i64,
}

/// What a settlement changes: the journal entry, the items as they are now, and the
/// allocations applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settlement {
    /// The draft entry (`id` 0: the store assigns it). Always present for payments;
    /// `None` for a credit allocation without an exchange difference, which moves
    /// nothing in the general ledger.
    pub entry: Option<JournalEntry>,
    /// Every item touched, as it is after the settlement, plus a new credit on account
    /// for an unallocated payment rest.
    pub items: Vec<OpenItem>,
    /// The allocations, as applied.
    pub applied: Vec<Applied>,
    /// The net realised exchange result, company minor units: positive a gain.
    pub fx_gain: i64,
}

/// Sum of `amounts` as a checked `i64`.
fn sum(amounts: impl IntoIterator<Item = i64>) -> Result<i64, ReceivablesError> {
    amounts.into_iter().try_fold(0i64, add)
}

/// The line that balances `lines` to zero: a credit to `fx_gain` or a debit to
/// `fx_loss`, or nothing.
fn fx_line(lines: &[Line], accounts: &PostingAccounts) -> Result<Option<Line>, ReceivablesError> {
    let balance = -sum(lines.iter().map(|l| l.amount))?;
    Ok(match balance {
        0 => None,
        b if b > 0 => Some(Line::debit(accounts.fx_loss, b)),
        b => Some(Line::debit(accounts.fx_gain, b)),
    })
}

/// Checks that `item` may be settled with `party`'s `ledger` items in `currency`.
fn check_item(
    item: &OpenItem,
    ledger: Ledger,
    party: u64,
    currency: Currency,
) -> Result<(), ReceivablesError> {
    if item.ledger != ledger {
        return Err(ReceivablesError::WrongLedger {
            document: item.label(),
            item_ledger: item.ledger.party_label(),
            ledger: ledger.party_label(),
        });
    }
    if item.party != party {
        return Err(ReceivablesError::WrongParty {
            document: item.label(),
            ledger: item.ledger.party_label(),
            owner: item.party,
            party,
        });
    }
    if item.currency != currency {
        return Err(ReceivablesError::WrongCurrency {
            document: item.label(),
            document_currency: item.currency,
            currency,
        });
    }
    Ok(())
}

fn find(items: &[OpenItem], id: ItemId) -> Result<&OpenItem, ReceivablesError> {
    items
        .iter()
        .find(|i| i.id == id)
        .ok_or(ReceivablesError::UnknownItem { item: id })
}

impl Payment {
    fn label(&self) -> String {
        let reference = if self.reference.is_empty() {
            format!("#{}", self.id)
        } else {
            self.reference.clone()
        };
        format!("{} {reference}", self.kind.label())
    }

    /// Applies the payment to `items` (the party's open items; others may be there too)
    /// with `allocations`, and drafts its journal entry.
    ///
    /// Refused: a payment of zero or less; a foreign payment without a rate (or a rate
    /// on a company-currency payment); an allocation to an unknown item, to another
    /// party's or ledger's item, in another currency, twice to one item, of zero or
    /// less, or beyond the item's open amount; allocations adding up to more than the
    /// payment. An unallocated rest becomes a credit on account (a new item with the
    /// payment's id, at the payment's rate) to allocate later with [`allocate_credit`].
    ///
    /// The entry: the bank line (debit for money in), the control account cleared at the
    /// booked amounts (per allocation; for a foreign item a line with the item amount at
    /// its booked rate, plus a company-currency-only line with any rounding difference),
    /// the credit on account at the payment rate, and the exchange result.
    pub fn settle(
        &self,
        items: &[OpenItem],
        allocations: &[Allocation],
        accounts: &PostingAccounts,
    ) -> Result<Settlement, ReceivablesError> {
        let company = accounts.company;
        let label = self.label();
        let money = |minor: i64| Money::new(minor, self.currency);
        if self.amount <= 0 {
            return Err(ReceivablesError::PaymentNotPositive {
                amount: money(self.amount),
            });
        }
        let rate = match (self.currency == company, self.rate) {
            (true, None) => None,
            (true, Some(_)) => {
                return Err(ReceivablesError::RateInCompanyCurrency {
                    what: label,
                    currency: self.currency,
                });
            }
            (false, Some(rate)) => Some(rate),
            (false, None) => {
                return Err(ReceivablesError::MissingRate {
                    what: label,
                    currency: self.currency,
                    company,
                    date: self.date,
                });
            }
        };
        let at_rate = |minor: i64| -> Result<i64, ReceivablesError> {
            Ok(match rate {
                Some(rate) => rate.convert(money(minor), company)?.minor(),
                None => minor,
            })
        };
        let bank = at_rate(self.amount)?;
        if bank == 0 {
            return Err(ReceivablesError::WorthNothing {
                what: label,
                amount: money(self.amount),
                rate: rate.unwrap_or(Rate::new(1, 0)?),
                company,
            });
        }
        let ledger = self.kind.ledger();
        let control = accounts.control(ledger);
        let mut lines = Vec::with_capacity(allocations.len() * 2 + 4);
        let bank_sign = if self.kind.is_inflow() { 1 } else { -1 };
        lines.push(match rate {
            Some(rate) => Line::foreign(
                self.bank_account,
                money(self.amount * bank_sign),
                rate,
                company,
            )?,
            None => Line::debit(self.bank_account, self.amount * bank_sign),
        });
        let mut touched = Vec::with_capacity(allocations.len() + 1);
        let mut applied = Vec::with_capacity(allocations.len());
        let mut allocated = 0i64;
        let mut allocated_at_rate = 0i64;
        for (index, allocation) in allocations.iter().enumerate() {
            let item = find(items, allocation.item)?;
            check_item(item, ledger, self.party, self.currency)?;
            if allocations[..index]
                .iter()
                .any(|a| a.item == allocation.item)
            {
                return Err(ReceivablesError::AllocatedTwice {
                    document: item.label(),
                });
            }
            if allocation.amount <= 0 {
                return Err(ReceivablesError::AllocationNotPositive {
                    document: item.label(),
                    amount: money(allocation.amount),
                });
            }
            let signed = if item.open < 0 {
                -allocation.amount
            } else {
                allocation.amount
            };
            let (left, cleared) = item.clear(signed)?;
            let worth = at_rate(signed)?;
            allocated = add(allocated, signed)?;
            allocated_at_rate = add(allocated_at_rate, worth)?;
            lines.extend(control_lines(
                control,
                money(-ledger.sign() * signed),
                item.rate,
                Money::new(-ledger.sign() * cleared, company),
            )?);
            applied.push(Applied {
                item: item.id,
                amount: signed,
                cleared,
                fx_gain: ledger.sign() * (worth - cleared),
            });
            touched.push(left);
        }
        // What the payment settles, signed within the ledger, and its unallocated rest.
        let settles = self.kind.direction() * self.amount;
        let rest = settles - allocated;
        if allocated != 0 && allocated.signum() != settles.signum() {
            return Err(ReceivablesError::AllocationsWrongWay {
                payment: label,
                settles: if settles > 0 {
                    "invoices"
                } else {
                    "credit notes and credits on account"
                },
                allocated: money(allocated.abs()),
            });
        }
        if rest != 0 && rest.signum() != settles.signum() {
            return Err(ReceivablesError::AllocationsExceedPayment {
                allocated: money(allocated.abs()),
                payment: money(self.amount),
            });
        }
        if rest != 0 {
            let booked = allocated_at_rate
                .checked_sub(self.kind.direction() * bank)
                .ok_or_else(|| LedgerError::Overflow {
                    what: format!("the credit on account of {label}"),
                })?;
            lines.extend(control_lines(
                control,
                money(-ledger.sign() * rest),
                rate,
                Money::new(-ledger.sign() * -booked, company),
            )?);
            touched.push(OpenItem {
                id: ItemId::Payment(self.id),
                ledger,
                party: self.party,
                number: if self.reference.is_empty() {
                    format!("#{}", self.id)
                } else {
                    self.reference.clone()
                },
                date: self.date,
                currency: self.currency,
                rate,
                amount: -rest,
                open: -rest,
                booked,
                booked_open: booked,
                due: vec![(self.date, -rest)],
            });
        }
        let fx = fx_line(&lines, accounts)?;
        let fx_gain = fx.as_ref().map_or(0, |line| -line.amount);
        lines.extend(fx);
        let lines = finish_lines(lines, control);
        let entry = JournalEntry {
            id: 0,
            currency: company,
            date: self.date,
            narration: format!("{label}, {} #{}", ledger.party_label(), self.party),
            reference: self.reference.clone(),
            kind: EntryKind::Regular,
            lines,
        };
        Ok(Settlement {
            entry: Some(entry),
            items: touched,
            applied,
            fx_gain,
        })
    }

    /// The payment's draft journal entry ([`Payment::settle`]'s).
    pub fn journal_entry(
        &self,
        items: &[OpenItem],
        allocations: &[Allocation],
        accounts: &PostingAccounts,
    ) -> Result<JournalEntry, ReceivablesError> {
        let settlement = self.settle(items, allocations, accounts)?;
        settlement
            .entry
            .ok_or_else(|| LedgerError::TooFewLines { count: 0 }.into())
    }
}

/// Sets `amount` (positive, minor units) of a credit — a credit note or a credit on
/// account — against an invoice of the same party, ledger and currency, without cash.
///
/// Each item is cleared at its booked amount; when they were booked at different rates
/// the difference is a realised exchange gain or loss, and the entry (dated `date`)
/// clears the control account and books it. Without a difference the general ledger
/// does not change and `entry` is `None`.
pub fn allocate_credit(
    items: &[OpenItem],
    credit: ItemId,
    invoice: ItemId,
    amount: i64,
    date: Date,
    accounts: &PostingAccounts,
) -> Result<Settlement, ReceivablesError> {
    let credit_item = find(items, credit)?;
    let invoice_item = find(items, invoice)?;
    if credit_item.open >= 0 {
        return Err(ReceivablesError::WrongDirection {
            document: credit_item.label(),
            reason: "is not an open credit: only credit notes and credits on account can be set against an invoice",
        });
    }
    if invoice_item.open <= 0 {
        return Err(ReceivablesError::WrongDirection {
            document: invoice_item.label(),
            reason: "is not an open invoice: a credit is set against an invoice",
        });
    }
    check_item(
        invoice_item,
        credit_item.ledger,
        credit_item.party,
        credit_item.currency,
    )?;
    if amount <= 0 {
        return Err(ReceivablesError::AllocationNotPositive {
            document: invoice_item.label(),
            amount: Money::new(amount, invoice_item.currency),
        });
    }
    let (invoice_left, invoice_cleared) = invoice_item.clear(amount)?;
    let (credit_left, credit_cleared) = credit_item.clear(-amount)?;
    let ledger = invoice_item.ledger;
    let control = accounts.control(ledger);
    let currency = invoice_item.currency;
    let difference = add(invoice_cleared, credit_cleared)?;
    let fx_gain = -ledger.sign() * difference;
    let entry = if difference == 0 {
        None
    } else {
        let mut lines = control_lines(
            control,
            Money::new(-ledger.sign() * amount, currency),
            invoice_item.rate,
            Money::new(-ledger.sign() * invoice_cleared, accounts.company),
        )?;
        lines.extend(control_lines(
            control,
            Money::new(ledger.sign() * amount, currency),
            credit_item.rate,
            Money::new(-ledger.sign() * credit_cleared, accounts.company),
        )?);
        if let Some(line) = fx_line(&lines, accounts)? {
            lines.push(line);
        }
        Some(JournalEntry {
            id: 0,
            currency: accounts.company,
            date,
            narration: format!(
                "{} set against {}, {} #{}",
                credit_item.label(),
                invoice_item.label(),
                ledger.party_label(),
                invoice_item.party
            ),
            reference: invoice_item.number.clone(),
            kind: EntryKind::Regular,
            lines: finish_lines(lines, control),
        })
    };
    Ok(Settlement {
        entry,
        items: vec![invoice_left, credit_left],
        applied: vec![
            Applied {
                item: invoice,
                amount,
                cleared: invoice_cleared,
                fx_gain,
            },
            Applied {
                item: credit,
                amount: -amount,
                cleared: credit_cleared,
                fx_gain: 0,
            },
        ],
        fx_gain,
    })
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use time::macros::date;

    use super::*;
    use crate::receivables::testkit::Fixture;
    use crate::receivables::{Document, DocumentKind};

    const USD: Currency = Currency::USD;
    const EUR: Currency = Currency::EUR;

    fn payment(kind: PaymentKind, id: u64, party: u64, currency: Currency, amount: i64) -> Payment {
        Payment {
            id,
            kind,
            party,
            date: date!(2024 - 04 - 20),
            currency,
            amount,
            rate: None,
            bank_account: 0,
            reference: format!("P-{id}"),
        }
    }

    /// The items with `settlement`'s changes applied (replaced or added).
    fn apply(items: &mut Vec<OpenItem>, settlement: &Settlement) {
        for changed in &settlement.items {
            match items.iter_mut().find(|i| i.id == changed.id) {
                Some(item) => *item = changed.clone(),
                None => items.push(changed.clone()),
            }
        }
    }

    fn book(f: &Fixture, document: &Document) -> OpenItem {
        let (entry, item) = document.book(&f.accounts).unwrap();
        f.post(entry);
        item
    }

    #[test]
    fn a_partial_payment_then_the_rest() {
        let f = Fixture::usd();
        let invoice = f.document(
            DocumentKind::SalesInvoice,
            1,
            7,
            date!(2024 - 03 - 01),
            USD,
            None,
            120_000,
        );
        let mut items = vec![book(&f, &invoice)];
        let mut pay = payment(PaymentKind::CustomerReceipt, 10, 7, USD, 50_000);
        pay.bank_account = f.id("1120");
        // 500.00 of 1200.00: Dr bank 500.00, Cr debtors 500.00; 700.00 stays open.
        let first = pay
            .settle(
                &items,
                &[Allocation {
                    item: ItemId::Document(1),
                    amount: 50_000,
                }],
                &f.accounts,
            )
            .unwrap();
        let entry = first.entry.clone().unwrap();
        assert_eq!(
            f.lines(&entry),
            vec![
                ("1120".to_owned(), 50_000, None),
                ("1210".to_owned(), -50_000, None)
            ]
        );
        f.post(entry);
        apply(&mut items, &first);
        assert_eq!((items[0].open, items[0].booked_open), (70_000, 70_000));
        assert_eq!(first.fx_gain, 0);
        // The rest, 700.00, settles it.
        pay.id = 11;
        pay.amount = 70_000;
        let second = pay
            .settle(
                &items,
                &[Allocation {
                    item: ItemId::Document(1),
                    amount: 70_000,
                }],
                &f.accounts,
            )
            .unwrap();
        f.post(second.entry.clone().unwrap());
        apply(&mut items, &second);
        assert!(items[0].is_settled());
        assert_eq!(items[0].booked_open, 0);
        assert_eq!(items.len(), 1);
    }

    #[test]
    fn an_over_payment_is_a_credit_on_account_allocated_later() {
        let f = Fixture::usd();
        let a = f.document(
            DocumentKind::SalesInvoice,
            1,
            7,
            date!(2024 - 03 - 01),
            USD,
            None,
            30_000,
        );
        let mut items = vec![book(&f, &a)];
        let mut pay = payment(PaymentKind::CustomerReceipt, 10, 7, USD, 50_000);
        pay.bank_account = f.id("1120");
        // 500.00 received for an invoice of 300.00: Dr bank 500.00; Cr debtors 300.00
        // (the invoice) and 200.00 (a credit on account).
        let settled = pay
            .settle(
                &items,
                &[Allocation {
                    item: ItemId::Document(1),
                    amount: 30_000,
                }],
                &f.accounts,
            )
            .unwrap();
        let entry = settled.entry.clone().unwrap();
        assert_eq!(
            f.lines(&entry),
            vec![
                ("1120".to_owned(), 50_000, None),
                ("1210".to_owned(), -30_000, None),
                ("1210".to_owned(), -20_000, None),
            ]
        );
        f.post(entry);
        apply(&mut items, &settled);
        let credit = &items[1];
        assert_eq!(credit.id, ItemId::Payment(10));
        assert_eq!((credit.open, credit.booked_open), (-20_000, -20_000));
        // A new invoice of 450.00 takes the 200.00 credit: 250.00 stays open, and the
        // general ledger does not move (same currency, so no entry).
        let b = f.document(
            DocumentKind::SalesInvoice,
            2,
            7,
            date!(2024 - 05 - 01),
            USD,
            None,
            45_000,
        );
        items.push(book(&f, &b));
        let used = allocate_credit(
            &items,
            ItemId::Payment(10),
            ItemId::Document(2),
            20_000,
            date!(2024 - 05 - 02),
            &f.accounts,
        )
        .unwrap();
        assert_eq!(used.entry, None);
        apply(&mut items, &used);
        let open: Vec<i64> = items.iter().map(|i| i.open).collect();
        assert_eq!(open, vec![0, 0, 25_000]);
    }

    /// 1000.00 EUR invoiced at 1.10 (booked 1100.00 USD), paid in full at `rate`.
    fn eur_invoice_paid_at(rate: &str, kind: DocumentKind) -> (Fixture, Settlement) {
        let f = Fixture::usd();
        let invoice = f.document(
            kind,
            1,
            7,
            date!(2024 - 03 - 01),
            EUR,
            Some("1.10"),
            100_000,
        );
        let items = vec![book(&f, &invoice)];
        assert_eq!(items[0].booked_open, 110_000);
        let kind = match kind.ledger() {
            Ledger::Receivable => PaymentKind::CustomerReceipt,
            Ledger::Payable => PaymentKind::SupplierPayment,
        };
        let mut pay = payment(kind, 10, 7, EUR, 100_000);
        pay.rate = Some(Rate::parse(rate).unwrap());
        pay.bank_account = f.id("1120");
        let settled = pay
            .settle(
                &items,
                &[Allocation {
                    item: ItemId::Document(1),
                    amount: 100_000,
                }],
                &f.accounts,
            )
            .unwrap();
        f.post(settled.entry.clone().unwrap());
        assert_eq!(
            (settled.items[0].open, settled.items[0].booked_open),
            (0, 0)
        );
        (f, settled)
    }

    #[test]
    fn a_foreign_invoice_paid_at_a_higher_rate_realises_a_gain() {
        // 1000.00 EUR at 1.12 = 1120.00 USD in the bank; the receivable is cleared at its
        // booked 1100.00; the 20.00 difference is an exchange gain.
        let (f, settled) = eur_invoice_paid_at("1.12", DocumentKind::SalesInvoice);
        assert_eq!(
            f.lines(settled.entry.as_ref().unwrap()),
            vec![
                ("1120".to_owned(), 112_000, Some(100_000)),
                ("1210".to_owned(), -110_000, Some(-100_000)),
                ("4400".to_owned(), -2_000, None),
            ]
        );
        assert_eq!(settled.fx_gain, 2_000);
        assert_eq!(settled.applied[0].fx_gain, 2_000);
        // For a supplier the same rates are a loss: we pay 1120.00 for 1100.00 owed.
        let (f, settled) = eur_invoice_paid_at("1.12", DocumentKind::PurchaseInvoice);
        assert_eq!(
            f.lines(settled.entry.as_ref().unwrap()),
            vec![
                ("1120".to_owned(), -112_000, Some(-100_000)),
                ("2110".to_owned(), 110_000, Some(100_000)),
                ("6900".to_owned(), 2_000, None),
            ]
        );
        assert_eq!(settled.fx_gain, -2_000);
    }

    #[test]
    fn a_foreign_invoice_paid_at_a_lower_rate_realises_a_loss() {
        // 1000.00 EUR at 1.05 = 1050.00 USD; 1100.00 cleared; 50.00 exchange loss.
        let (f, settled) = eur_invoice_paid_at("1.05", DocumentKind::SalesInvoice);
        assert_eq!(
            f.lines(settled.entry.as_ref().unwrap()),
            vec![
                ("1120".to_owned(), 105_000, Some(100_000)),
                ("1210".to_owned(), -110_000, Some(-100_000)),
                ("6900".to_owned(), 5_000, None),
            ]
        );
        assert_eq!(settled.fx_gain, -5_000);
    }

    #[test]
    fn a_partial_foreign_payment_clears_its_share_of_the_booked_amount() {
        let f = Fixture::usd();
        let invoice = f.document(
            DocumentKind::SalesInvoice,
            1,
            7,
            date!(2024 - 03 - 01),
            EUR,
            Some("1.10"),
            100_000,
        );
        let mut items = vec![book(&f, &invoice)];
        let mut pay = payment(PaymentKind::CustomerReceipt, 10, 7, EUR, 33_333);
        pay.rate = Some(Rate::parse("1.12").unwrap());
        pay.bank_account = f.id("1120");
        // 333.33 EUR: worth 373.3296 -> 373.33 USD; clears 1100.00 × 333.33/1000 =
        // 366.663 -> 366.66 of the booked amount; gain 6.67. Left: 666.67 EUR, 733.34 USD.
        let settled = pay
            .settle(
                &items,
                &[Allocation {
                    item: ItemId::Document(1),
                    amount: 33_333,
                }],
                &f.accounts,
            )
            .unwrap();
        assert_eq!(
            f.lines(settled.entry.as_ref().unwrap()),
            vec![
                ("1120".to_owned(), 37_333, Some(33_333)),
                ("1210".to_owned(), -36_666, Some(-33_333)),
                ("4400".to_owned(), -667, None),
            ]
        );
        f.post(settled.entry.clone().unwrap());
        apply(&mut items, &settled);
        assert_eq!((items[0].open, items[0].booked_open), (66_667, 73_334));
        // The rest, 666.67 EUR at 1.05 = 700.0035 -> 700.00, clears the remaining 733.34
        // (which is also 666.67 at 1.10 = 733.337 -> 733.34, so no rounding line): loss 33.34.
        pay.id = 11;
        pay.amount = 66_667;
        pay.rate = Some(Rate::parse("1.05").unwrap());
        let settled = pay
            .settle(
                &items,
                &[Allocation {
                    item: ItemId::Document(1),
                    amount: 66_667,
                }],
                &f.accounts,
            )
            .unwrap();
        assert_eq!(
            f.lines(settled.entry.as_ref().unwrap()),
            vec![
                ("1120".to_owned(), 70_000, Some(66_667)),
                ("1210".to_owned(), -73_334, Some(-66_667)),
                ("6900".to_owned(), 3_334, None),
            ]
        );
        f.post(settled.entry.clone().unwrap());
    }

    #[test]
    fn credit_notes_are_set_against_invoices_and_refunded() {
        let f = Fixture::usd();
        let invoice = f.document(
            DocumentKind::SalesInvoice,
            1,
            7,
            date!(2024 - 03 - 01),
            EUR,
            Some("1.10"),
            100_000,
        );
        let mut note = f.document(
            DocumentKind::SalesCreditNote,
            2,
            7,
            date!(2024 - 03 - 10),
            EUR,
            Some("1.20"),
            30_000,
        );
        note.number = "CN-2".to_owned();
        let mut items = vec![book(&f, &invoice), book(&f, &note)];
        assert_eq!(items[1].booked_open, -36_000);
        // 200.00 EUR of the credit note (booked at 1.20: 240.00 USD) against the invoice
        // (booked at 1.10: 220.00 USD): the receivable is credited 220.00 and debited
        // 240.00. A credit worth 240.00 USD is extinguished by a receivable worth 220.00:
        // the 20.00 difference is a gain.
        let used = allocate_credit(
            &items,
            ItemId::Document(2),
            ItemId::Document(1),
            20_000,
            date!(2024 - 03 - 31),
            &f.accounts,
        )
        .unwrap();
        let entry = used.entry.clone().unwrap();
        assert_eq!(
            f.lines(&entry),
            vec![
                ("1210".to_owned(), -22_000, Some(-20_000)),
                ("1210".to_owned(), 24_000, Some(20_000)),
                ("4400".to_owned(), -2_000, None),
            ]
        );
        assert_eq!(used.fx_gain, 2_000);
        f.post(entry);
        apply(&mut items, &used);
        assert_eq!((items[0].open, items[0].booked_open), (80_000, 88_000));
        assert_eq!((items[1].open, items[1].booked_open), (-10_000, -12_000));
        // The rest of the credit note, 100.00 EUR, is refunded at 1.15 (115.00 USD):
        // Dr debtors 120.00 (booked), Cr bank 115.00, Cr exchange gain 5.00.
        let mut refund = payment(PaymentKind::CustomerRefund, 10, 7, EUR, 10_000);
        refund.rate = Some(Rate::parse("1.15").unwrap());
        refund.bank_account = f.id("1120");
        let settled = refund
            .settle(
                &items,
                &[Allocation {
                    item: ItemId::Document(2),
                    amount: 10_000,
                }],
                &f.accounts,
            )
            .unwrap();
        assert_eq!(
            f.lines(settled.entry.as_ref().unwrap()),
            vec![
                ("1120".to_owned(), -11_500, Some(-10_000)),
                ("1210".to_owned(), 12_000, Some(10_000)),
                ("4400".to_owned(), -500, None),
            ]
        );
        f.post(settled.entry.clone().unwrap());
        // A customer paying 700.00 EUR against the invoice (800.00 open) having a credit
        // is ordinary; paying an invoice of 150 with a credit note of 50 nets to 100.
        let usd_invoice = f.document(
            DocumentKind::SalesInvoice,
            3,
            8,
            date!(2024 - 03 - 01),
            USD,
            None,
            15_000,
        );
        let usd_note = f.document(
            DocumentKind::SalesCreditNote,
            4,
            8,
            date!(2024 - 03 - 01),
            USD,
            None,
            5_000,
        );
        let items = vec![book(&f, &usd_invoice), book(&f, &usd_note)];
        let mut pay = payment(PaymentKind::CustomerReceipt, 11, 8, USD, 10_000);
        pay.bank_account = f.id("1120");
        let settled = pay
            .settle(
                &items,
                &[
                    Allocation {
                        item: ItemId::Document(3),
                        amount: 15_000,
                    },
                    Allocation {
                        item: ItemId::Document(4),
                        amount: 5_000,
                    },
                ],
                &f.accounts,
            )
            .unwrap();
        assert!(settled.items.iter().all(OpenItem::is_settled));
        assert_eq!(settled.items.len(), 2);
        f.post(settled.entry.unwrap());
    }

    #[test]
    fn bad_allocations_are_refused_with_reasons() {
        let f = Fixture::usd();
        let mine = f.document(
            DocumentKind::SalesInvoice,
            1,
            7,
            date!(2024 - 03 - 01),
            USD,
            None,
            30_000,
        );
        let theirs = f.document(
            DocumentKind::SalesInvoice,
            2,
            8,
            date!(2024 - 03 - 01),
            USD,
            None,
            10_000,
        );
        let bill = f.document(
            DocumentKind::PurchaseInvoice,
            3,
            7,
            date!(2024 - 03 - 01),
            USD,
            None,
            10_000,
        );
        let euro = f.document(
            DocumentKind::SalesInvoice,
            4,
            7,
            date!(2024 - 03 - 01),
            EUR,
            Some("1.1"),
            10_000,
        );
        let items: Vec<OpenItem> = [mine, theirs, bill, euro]
            .iter()
            .map(|d| book(&f, d))
            .collect();
        let mut pay = payment(PaymentKind::CustomerReceipt, 10, 7, USD, 20_000);
        pay.bank_account = f.id("1120");
        let refused = |pay: &Payment, allocations: &[(ItemId, i64)]| {
            let allocations: Vec<Allocation> = allocations
                .iter()
                .map(|&(item, amount)| Allocation { item, amount })
                .collect();
            pay.settle(&items, &allocations, &f.accounts)
                .unwrap_err()
                .to_string()
        };
        let d = ItemId::Document;
        assert_eq!(
            refused(&pay, &[(d(1), 30_001)]),
            "D-1 has 300.00 USD open; 300.01 USD cannot be allocated to it"
        );
        assert_eq!(
            refused(&pay, &[(d(2), 5_000)]),
            "D-2 belongs to customer #8, not to #7"
        );
        assert_eq!(
            refused(&pay, &[(d(1), 25_000)]),
            "the allocations add up to 250.00 USD, more than the payment of 200.00 USD; \
             reduce them or record the payment in full"
        );
        assert_eq!(
            refused(&pay, &[(d(3), 5_000)]),
            "D-3 is a supplier item; it cannot be settled by a customer payment"
        );
        assert_eq!(
            refused(&pay, &[(d(4), 5_000)]),
            "D-4 is in EUR; it cannot be settled in USD"
        );
        assert_eq!(
            refused(&pay, &[(d(9), 5_000)]),
            "there is no open item document #9 to allocate to"
        );
        assert_eq!(
            refused(&pay, &[(d(1), 5_000), (d(1), 5_000)]),
            "D-1 is allocated twice; give it one allocation"
        );
        assert_eq!(
            refused(&pay, &[(d(1), 0)]),
            "the allocation to D-1 must be more than zero, not 0.00 USD"
        );
        let mut zero = pay.clone();
        zero.amount = 0;
        assert_eq!(
            refused(&zero, &[]),
            "a payment must be more than zero, not 0.00 USD; record refunds as refunds"
        );
        let mut foreign = pay.clone();
        foreign.currency = EUR;
        assert_eq!(
            refused(&foreign, &[(d(4), 5_000)]),
            "Payment from customer P-10 is in EUR but the books are kept in USD: give the \
             exchange rate (USD per EUR) of 2024-04-20"
        );
        // A refund cannot go to an invoice (it would pay it out twice).
        let mut refund = pay.clone();
        refund.kind = PaymentKind::CustomerRefund;
        assert_eq!(
            refused(&refund, &[(d(1), 5_000)]),
            "Refund to customer P-10 settles credit notes and credits on account, but its \
             allocations net to 50.00 USD owed the other way"
        );
        let err = allocate_credit(&items, d(1), d(1), 100, date!(2024 - 04 - 01), &f.accounts)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "D-1 is not an open credit: only credit notes and credits on account can be set against an invoice"
        );
    }

    /// Random documents and random partial payments: the control accounts always equal
    /// the open items at their booked amounts, every entry posts, nothing panics.
    #[test]
    fn random_documents_and_payments_keep_the_books_in_step() {
        let f = Fixture::usd();
        let mut rng = StdRng::seed_from_u64(20240420);
        let rates = ["1.1", "1.0825", "0.9", "1.3333", "0.5", "2"];
        let kinds = [
            DocumentKind::SalesInvoice,
            DocumentKind::SalesCreditNote,
            DocumentKind::PurchaseInvoice,
            DocumentKind::PurchaseCreditNote,
        ];
        let mut items: Vec<OpenItem> = Vec::new();
        let (mut receivable, mut payable) = (0i64, 0i64);
        let mut credit_entries = 0;
        let post = |entry: JournalEntry, receivable: &mut i64, payable: &mut i64| {
            let posted = f.post(entry);
            for line in &posted.lines {
                if line.account == f.accounts.receivable {
                    *receivable += line.amount;
                }
                if line.account == f.accounts.payable {
                    *payable += line.amount;
                }
            }
        };
        for round in 0..400u64 {
            let party = rng.random_range(1..4u64);
            let foreign = rng.random_bool(0.5);
            let (currency, rate) = if foreign {
                (EUR, Some(rates[rng.random_range(0..rates.len())]))
            } else {
                (USD, None)
            };
            if rng.random_bool(0.4) || items.is_empty() {
                let kind = kinds[rng.random_range(0..kinds.len())];
                let mut document =
                    f.document(kind, round, party, date!(2024 - 03 - 01), currency, rate, 0);
                document.lines.clear();
                for _ in 0..rng.random_range(1..4) {
                    let mut line = f
                        .document(kind, round, party, date!(2024 - 03 - 01), currency, rate, 0)
                        .lines[0]
                        .clone();
                    line.quantity = crate::receivables::Quantity(rng.random_range(1..5_000));
                    line.unit_price = rng.random_range(1..50_000);
                    document.lines.push(line);
                }
                let (entry, item) = document.book(&f.accounts).unwrap();
                post(entry, &mut receivable, &mut payable);
                items.push(item);
                continue;
            }
            // Pay (or refund) part of some open items of one party and currency.
            let ledger = if rng.random_bool(0.5) {
                Ledger::Receivable
            } else {
                Ledger::Payable
            };
            let candidates: Vec<&OpenItem> = items
                .iter()
                .filter(|i| {
                    i.ledger == ledger
                        && i.party == party
                        && i.currency == currency
                        && !i.is_settled()
                })
                .collect();
            let mut allocations = Vec::new();
            let mut net = 0i64;
            for item in candidates.iter().take(3) {
                let amount = rng.random_range(1..=item.open.abs());
                allocations.push(Allocation {
                    item: item.id,
                    amount,
                });
                net += amount * item.open.signum();
            }
            let refund = net < 0;
            let extra = if rng.random_bool(0.3) {
                rng.random_range(0..10_000)
            } else {
                0
            };
            let amount = net.abs() + extra;
            if amount == 0 {
                continue;
            }
            let kind = match (ledger, refund) {
                (Ledger::Receivable, false) => PaymentKind::CustomerReceipt,
                (Ledger::Receivable, true) => PaymentKind::CustomerRefund,
                (Ledger::Payable, false) => PaymentKind::SupplierPayment,
                (Ledger::Payable, true) => PaymentKind::SupplierRefund,
            };
            let mut pay = payment(kind, 1_000 + round, party, currency, amount);
            pay.bank_account = f.id("1120");
            pay.rate = rate.map(|_| Rate::parse(rates[rng.random_range(0..rates.len())]).unwrap());
            let settled = pay.settle(&items, &allocations, &f.accounts).unwrap();
            post(
                settled.entry.clone().unwrap(),
                &mut receivable,
                &mut payable,
            );
            apply(&mut items, &settled);
            // Sometimes set a credit against an invoice of the same party.
            let pair = items
                .iter()
                .filter(|c| c.open < 0 && c.ledger == ledger && c.party == party)
                .find_map(|c| {
                    items
                        .iter()
                        .find(|i| {
                            i.open > 0
                                && i.ledger == ledger
                                && i.party == party
                                && i.currency == c.currency
                        })
                        .map(|i| (c.id, i.id, c.open.abs().min(i.open)))
                });
            if let Some((credit, invoice, most)) = pair {
                let amount = rng.random_range(1..=most);
                let used = allocate_credit(
                    &items,
                    credit,
                    invoice,
                    amount,
                    date!(2024 - 05 - 01),
                    &f.accounts,
                )
                .unwrap();
                if let Some(entry) = used.entry.clone() {
                    credit_entries += 1;
                    post(entry, &mut receivable, &mut payable);
                }
                apply(&mut items, &used);
            }
            let booked = |ledger| {
                items
                    .iter()
                    .filter(|i| i.ledger == ledger)
                    .map(|i| i.booked_open)
                    .sum::<i64>()
            };
            assert_eq!(receivable, booked(Ledger::Receivable), "round {round}");
            assert_eq!(-payable, booked(Ledger::Payable), "round {round}");
            for item in &items {
                assert!(
                    item.open == 0 || item.open.signum() == item.amount.signum(),
                    "{item:?}"
                );
                assert!(item.open.abs() <= item.amount.abs(), "{item:?}");
                if item.open == 0 {
                    assert_eq!(item.booked_open, 0, "{item:?}");
                }
            }
        }
        assert!(
            credit_entries > 0,
            "no credit allocation had an exchange difference"
        );
        assert!(items.iter().any(OpenItem::is_settled));
        assert!(items.iter().any(|i| matches!(i.id, ItemId::Payment(_))));
    }
}
