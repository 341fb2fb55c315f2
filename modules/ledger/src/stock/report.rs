//! Stock reports: on hand per item × warehouse, valuation totals, the stock card.

use time::Date;

use crate::Money;

use super::{MoveKind, Quantity, Stock, StockError, StockMove, share};

/// One line of the stock-on-hand report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnHand {
    /// The item's id.
    pub item: u64,
    /// `"ITEM-7 Widget"`.
    pub item_label: String,
    /// The warehouse's id.
    pub warehouse: u64,
    /// The warehouse's name.
    pub warehouse_name: String,
    /// On hand, in base units.
    pub qty: Quantity,
    /// The base unit's code.
    pub unit: String,
    /// Its value.
    pub value: Money,
    /// Value per base unit, rounded half away from zero to the minor unit; `None` when
    /// nothing is on hand.
    pub unit_cost: Option<Money>,
}

/// One item's totals over all warehouses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ItemTotal {
    /// The item's id.
    pub item: u64,
    /// On hand, in base units.
    pub qty: Quantity,
    /// Its value.
    pub value: Money,
}

/// One warehouse's value over all items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WarehouseTotal {
    /// The warehouse's id.
    pub warehouse: u64,
    /// The value of everything in it.
    pub value: Money,
}

/// The stock's value: in all, per item, per warehouse (each ordered by id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValuationTotals {
    /// Everything; what the stock accounts should hold.
    pub value: Money,
    /// Per item.
    pub items: Vec<ItemTotal>,
    /// Per warehouse.
    pub warehouses: Vec<WarehouseTotal>,
}

/// One line of a stock card: a move's effect on one warehouse, and the running totals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardRow {
    /// The move's id.
    pub move_id: u64,
    /// The move's date.
    pub date: Date,
    /// The warehouse affected.
    pub warehouse: u64,
    /// `"receipt"`, `"delivery"`, `"transfer out"`, `"transfer in"` or `"adjustment"`.
    pub what: &'static str,
    /// The move's document.
    pub reference: String,
    /// Change in quantity (base units): in above zero, out below.
    pub qty: Quantity,
    /// Change in value, net of any price difference.
    pub value: Money,
    /// The move's price difference (negative stock settled), on the incoming row.
    pub price_difference: Money,
    /// Quantity after the move.
    pub running_qty: Quantity,
    /// Value after the move.
    pub running_value: Money,
}

impl Stock {
    /// Every position with a quantity or a value, ordered by item then warehouse.
    pub fn on_hand(&self) -> Result<Vec<OnHand>, StockError> {
        self.positions
            .values()
            .filter(|p| !p.qty.is_zero() || !p.value.is_zero())
            .map(|p| {
                let item = self.item(p.item)?;
                let unit_cost = if p.qty.is_positive() {
                    Some(share(p.value, Quantity::from_thousandths(1000), p.qty)?)
                } else {
                    None
                };
                Ok(OnHand {
                    item: p.item,
                    item_label: item.label(),
                    warehouse: p.warehouse,
                    warehouse_name: self.warehouse(p.warehouse)?.name.clone(),
                    qty: p.qty,
                    unit: item.base_unit.code.clone(),
                    value: p.value,
                    unit_cost,
                })
            })
            .collect()
    }

    /// The value of the stock, in all, per item and per warehouse.
    pub fn totals(&self) -> Result<ValuationTotals, StockError> {
        let zero = Money::zero(self.currency);
        let mut totals = ValuationTotals {
            value: zero,
            items: Vec::new(),
            warehouses: Vec::new(),
        };
        for position in self.positions.values() {
            totals.value = totals.value.checked_add(position.value)?;
            // Positions are ordered by item, so an item's rows are adjacent.
            match totals.items.last_mut() {
                Some(last) if last.item == position.item => {
                    last.qty = last.qty.checked_add(position.qty)?;
                    last.value = last.value.checked_add(position.value)?;
                }
                _ => totals.items.push(ItemTotal {
                    item: position.item,
                    qty: position.qty,
                    value: position.value,
                }),
            }
            match totals
                .warehouses
                .iter_mut()
                .find(|w| w.warehouse == position.warehouse)
            {
                Some(found) => found.value = found.value.checked_add(position.value)?,
                None => totals.warehouses.push(WarehouseTotal {
                    warehouse: position.warehouse,
                    value: position.value,
                }),
            }
        }
        totals.warehouses.sort_by_key(|w| w.warehouse);
        Ok(totals)
    }

    /// The stock card of `item`: its `moves` (in the order given, which should be the
    /// order they were applied), one row per warehouse affected, with running quantity
    /// and value over `warehouse` (or over all warehouses for `None`, where a transfer
    /// shows as a row out and a row in). Moves of other items are skipped.
    pub fn stock_card(
        &self,
        moves: &[StockMove],
        item: u64,
        warehouse: Option<u64>,
    ) -> Result<Vec<CardRow>, StockError> {
        self.item(item)?;
        if let Some(id) = warehouse {
            self.warehouse(id)?;
        }
        let mut running_qty = Quantity::ZERO;
        let mut running_value = Money::zero(self.currency);
        let mut rows = Vec::new();
        for record in moves.iter().filter(|m| m.item == item) {
            for effect in record.effects()? {
                if warehouse.is_some_and(|id| id != effect.warehouse) {
                    continue;
                }
                let what = match record.kind {
                    MoveKind::Receipt { .. } => "receipt",
                    MoveKind::Delivery { .. } => "delivery",
                    MoveKind::Transfer { from, .. } if from == effect.warehouse => "transfer out",
                    MoveKind::Transfer { .. } => "transfer in",
                    MoveKind::Adjustment { .. } => "adjustment",
                };
                running_qty = running_qty.checked_add(effect.qty)?;
                running_value = running_value.checked_add(effect.value)?;
                rows.push(CardRow {
                    move_id: record.id,
                    date: record.date,
                    warehouse: effect.warehouse,
                    what,
                    reference: record.reference.clone(),
                    qty: effect.qty,
                    value: effect.value,
                    price_difference: if effect.qty.is_positive() {
                        record.price_difference
                    } else {
                        Money::zero(self.currency)
                    },
                    running_qty,
                    running_value,
                });
            }
        }
        Ok(rows)
    }
}
