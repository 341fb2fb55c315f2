//! Journal entries for stock moves.

use crate::{AccountId, Chart, EntryKind, JournalEntry, Line};

use super::{MoveKind, Stock, StockError, StockMove};

/// The accounts stock moves post to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StockAccounts {
    /// Stock (an asset), for warehouses without their own
    /// ([`super::Warehouse::stock_account`]).
    pub stock: AccountId,
    /// Cost of goods sold (an expense): deliveries and price differences.
    pub cogs: AccountId,
    /// Stock adjustments (an expense): count corrections.
    pub adjustment: AccountId,
    /// Goods received not invoiced, or trade creditors: the other side of receipts.
    pub grni_or_payable: AccountId,
}

impl StockAccounts {
    /// The accounts with these codes in `chart`, each existing and not a group.
    pub fn from_codes(
        chart: &Chart,
        stock: &str,
        cogs: &str,
        adjustment: &str,
        grni_or_payable: &str,
    ) -> Result<StockAccounts, StockError> {
        let find = |role: &'static str, code: &str| match chart.by_code(code) {
            None => Err(StockError::StockAccount {
                role,
                code: code.to_owned(),
                problem: "is not in the chart of accounts",
            }),
            Some(account) if account.is_group => Err(StockError::StockAccount {
                role,
                code: account.label(),
                problem: "is a group account; choose one of the accounts under it",
            }),
            Some(account) => Ok(account.id),
        };
        Ok(StockAccounts {
            stock: find("stock", stock)?,
            cogs: find("cost of goods sold", cogs)?,
            adjustment: find("stock adjustment", adjustment)?,
            grni_or_payable: find("goods received", grni_or_payable)?,
        })
    }

    /// The small-firm template's accounts ([`Chart::small_firm_template`]): 1300 Stock,
    /// 5100 Cost of goods sold, 2110 Trade creditors. The template has no account of its
    /// own for count corrections, so adjustments also go to 5100 (shrinkage is a cost of
    /// sales); a firm that wants them apart adds one (say 5300 Stock adjustments) and
    /// uses [`StockAccounts::from_codes`].
    pub fn small_firm(chart: &Chart) -> Result<StockAccounts, StockError> {
        Self::from_codes(chart, "1300", "5100", "5100", "2110")
    }
}

impl Stock {
    /// The journal entry draft (id `entry_id`, dated and referenced as the move) that
    /// puts `record` in the books:
    ///
    /// * receipt: Dr stock / Cr GRNI (or payable), the receipt's value;
    /// * delivery: Dr COGS / Cr stock, the cost of goods issued;
    /// * adjustment: Dr stock / Cr adjustment for an increase, the other way round for a
    ///   decrease;
    /// * transfer: Dr the destination's stock account / Cr the source's; nothing when
    ///   both warehouses use one stock account;
    /// * a price difference (negative stock settled) adds Dr COGS / Cr stock (or the
    ///   reverse when negative).
    ///
    /// Lines to one account are netted. `None` when nothing remains to post (a move of
    /// zero value, a transfer within one stock account).
    pub fn journal_entry(
        &self,
        record: &StockMove,
        accounts: &StockAccounts,
        entry_id: u64,
    ) -> Result<Option<JournalEntry>, StockError> {
        let item = self.item(record.item)?;
        let stock_of = |warehouse: u64| -> Result<AccountId, StockError> {
            Ok(self
                .warehouse(warehouse)?
                .stock_account
                .unwrap_or(accounts.stock))
        };
        let name_of = |warehouse: u64| -> Result<String, StockError> {
            Ok(self.warehouse(warehouse)?.name.clone())
        };
        let value = record.valuation.value.minor();
        let difference = record.price_difference.minor();
        let quantity = format!("{} {}", record.valuation.qty, item.base_unit.code);
        let (mut debits, narration) = match record.kind {
            MoveKind::Receipt { warehouse } => {
                let stock = stock_of(warehouse)?;
                (
                    vec![
                        (stock, value),
                        (accounts.grni_or_payable, neg(value)?),
                        (accounts.cogs, difference),
                        (stock, neg(difference)?),
                    ],
                    format!(
                        "Receipt of {quantity} {} into {}",
                        item.label(),
                        name_of(warehouse)?
                    ),
                )
            }
            MoveKind::Delivery { warehouse } => (
                vec![(accounts.cogs, value), (stock_of(warehouse)?, neg(value)?)],
                format!(
                    "Delivery of {quantity} {} from {}",
                    item.label(),
                    name_of(warehouse)?
                ),
            ),
            MoveKind::Transfer { from, to } => {
                let target = stock_of(to)?;
                (
                    vec![
                        (target, value),
                        (stock_of(from)?, neg(value)?),
                        (accounts.cogs, difference),
                        (target, neg(difference)?),
                    ],
                    format!(
                        "Transfer of {quantity} {} from {} to {}",
                        item.label(),
                        name_of(from)?,
                        name_of(to)?
                    ),
                )
            }
            MoveKind::Adjustment { warehouse } => {
                let stock = stock_of(warehouse)?;
                (
                    vec![
                        (stock, value),
                        (accounts.adjustment, neg(value)?),
                        (accounts.cogs, difference),
                        (stock, neg(difference)?),
                    ],
                    format!(
                        "Stock adjustment of {quantity} {} in {}",
                        item.label(),
                        name_of(warehouse)?
                    ),
                )
            }
        };
        let narration = if difference == 0 {
            narration
        } else {
            format!(
                "{narration} (price difference on negative stock {})",
                record.price_difference
            )
        };
        // Net the lines per account, keeping the order of first appearance.
        let mut netted: Vec<(AccountId, i64)> = Vec::new();
        for (account, amount) in debits.drain(..) {
            match netted.iter_mut().find(|(seen, _)| *seen == account) {
                Some((_, total)) => {
                    *total = total
                        .checked_add(amount)
                        .ok_or_else(|| StockError::Overflow {
                            what: format!("the entry for move {}", record.id),
                        })?;
                }
                None => netted.push((account, amount)),
            }
        }
        let lines: Vec<Line> = netted
            .into_iter()
            .filter(|&(_, amount)| amount != 0)
            .map(|(account, amount)| Line::debit(account, amount))
            .collect();
        if lines.is_empty() {
            return Ok(None);
        }
        Ok(Some(JournalEntry {
            id: entry_id,
            currency: self.currency,
            date: record.date,
            narration,
            reference: record.reference.clone(),
            kind: EntryKind::Regular,
            lines,
        }))
    }
}

fn neg(minor: i64) -> Result<i64, StockError> {
    minor.checked_neg().ok_or_else(|| StockError::Overflow {
        what: format!("-({minor})"),
    })
}
