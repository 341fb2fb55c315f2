//! Inventory valuation, pure: items and their units, warehouses, stock moves valued by
//! FIFO or moving average, the journal entries those moves post, and stock reports.
//!
//! The caller (the store) owns the state: [`Stock`] is a plain struct of plain structs
//! (items, warehouses and one [`Position`] per item × warehouse) that can be encoded and
//! restored field by field. Each move ([`Stock::receive`], [`Stock::deliver`],
//! [`Stock::transfer`], [`Stock::adjust`]) either fails and leaves the stock exactly as
//! it was, or updates the one or two positions it touches and returns a [`StockMove`]:
//! the record to keep, with its [`Valuation`]. [`Stock::journal_entry`] turns a move
//! into a balanced [`JournalEntry`](crate::JournalEntry) draft; [`Stock::stock_card`] lists an item's moves
//! with running quantity and value.
//!
//! # Valuation
//! * Quantities are exact ([`Quantity`], thousandths); each item has a base unit and
//!   other units that convert by an integer factor (a box of 12 pieces). A quantity with
//!   more decimals than its unit allows is refused. Positions are kept in base units.
//! * Values are [`Money`] in the company currency, in minor units. An issue of `q` from
//!   a stock (a FIFO layer, or the whole moving-average stock) of `Q` worth `V` takes
//!   `round(V × q / Q)`, halves away from zero, and the stock keeps the rest; taking the
//!   last unit takes exactly what is left. So a layer (or stock) that reaches zero
//!   quantity reaches exactly zero value: nothing drifts.
//! * **FIFO**: each incoming quantity is a layer; issues consume the oldest layers first.
//!   A transfer carries the layers it takes, at their cost, to the other warehouse.
//! * **Moving average**: one pool per item × warehouse; an issue takes its share of the
//!   pool's value, so the unit cost changes only on receipts.
//!
//! # Negative stock
//! [`NegativeStockPolicy::Refuse`] (the default, per company with a per-item override)
//! refuses any delivery or decrease beyond what is on hand, with a message such as
//! "only 3 pcs of ITEM-7 Widget on hand in Main warehouse; cannot deliver 5 pcs".
//!
//! Under [`NegativeStockPolicy::Allow`]:
//! * the part of an issue beyond what is on hand is valued at the **last known unit
//!   cost** of the item in that warehouse (the last incoming quantity and value, as an
//!   exact ratio), or at zero if the item was never received there; the position is
//!   then a negative quantity with a negative value (and no FIFO layers);
//! * the next incoming quantity (receipt, transfer in, positive adjustment) first
//!   settles the negative stock: the settled part's share of the incoming value replaces
//!   its carried value, and the difference is the move's
//!   [`StockMove::price_difference`], posted to cost of goods sold (positive: the goods
//!   cost more than they were issued at);
//! * transfers never go beyond what is on hand, whatever the policy: there is no cost to
//!   carry to the other warehouse.
//!
//! # Invariants
//! * For every item × warehouse: Σ incoming values − Σ outgoing values − Σ price
//!   differences == the position's value, exactly (under `Refuse` there are no price
//!   differences). [`StockMove::effects`] gives each move's net change.
//! * Zero quantity ⇒ zero value. (The converse does not hold: goods received free, or a
//!   last unit whose share of a few cents rounded to zero, have quantity but no value.)
//! * Under `Refuse` no quantity is ever negative; a FIFO position with a quantity of zero
//!   or more is the exact sum of its layers; layer quantities are above zero.
//!
//! # Journal entries
//! [`StockAccounts`] names the stock, cost-of-goods-sold, adjustment (an expense) and
//! goods-received-not-invoiced (or trade creditors) accounts. A receipt posts Dr stock /
//! Cr GRNI; a delivery Dr COGS / Cr stock; an adjustment Dr or Cr stock against the
//! adjustment account. A warehouse may keep its own stock account
//! ([`Warehouse::stock_account`]); a transfer between two warehouses that use one stock
//! account needs no entry (its value leaves and enters the same account), so
//! [`Stock::journal_entry`] returns `None` for it, as for any move of zero value.
//!
//! ```
//! use nexus_ledger::stock::{
//!     Delivery, Item, Quantity, Receipt, Stock, Unit, ValuationMethod, Warehouse,
//! };
//! use nexus_ledger::{Currency, Money};
//! use time::macros::date;
//!
//! let mut stock = Stock::new(Currency::USD);
//! stock.add_warehouse(Warehouse::new(1, "MAIN", "Main warehouse"))?;
//! stock.add_item(Item::new(7, "ITEM-7", "Widget", Unit::new("pcs", 0), ValuationMethod::Fifo))?;
//! for (id, qty, cost) in [(1, "10", "10.00"), (2, "10", "12.00"), (3, "5", "7.50")] {
//!     stock.receive(&Receipt {
//!         id,
//!         date: date!(2024 - 03 - 01),
//!         item: 7,
//!         warehouse: 1,
//!         qty: Quantity::parse(qty)?,
//!         unit: "pcs".to_owned(),
//!         cost: Money::parse(cost, Currency::USD)?,
//!         reference: format!("PO-{id}"),
//!     })?;
//! }
//! let sale = stock.deliver(&Delivery {
//!     id: 4,
//!     date: date!(2024 - 03 - 05),
//!     item: 7,
//!     warehouse: 1,
//!     qty: Quantity::parse("15")?,
//!     unit: "pcs".to_owned(),
//!     reference: "DN-1".to_owned(),
//! })?;
//! assert_eq!(sale.valuation.value.decimal(), "16.00");
//! assert_eq!(stock.position(7, 1).map(|p| p.value.decimal()), Some("13.50".to_owned()));
//! # Ok::<(), nexus_ledger::stock::StockError>(())
//! ```

pub mod books;
pub mod entities;
mod error;
mod journal;
mod quantity;
mod report;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, VecDeque};

use time::Date;

use crate::{AccountId, Currency, Money};

pub use error::StockError;
pub use journal::StockAccounts;
pub use quantity::Quantity;
pub use report::{CardRow, ItemTotal, OnHand, ValuationTotals, WarehouseTotal};

/// A unit goods are counted in, such as `pcs` (whole) or `kg` (three decimals).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Unit {
    /// What people write, such as `"pcs"`; compared without regard to case.
    pub code: String,
    /// How many decimals a quantity in this unit may have: 0 to 3.
    pub decimals: u8,
}

impl Unit {
    /// A unit (checked when its item is added to the stock).
    pub fn new(code: &str, decimals: u8) -> Unit {
        Unit {
            code: code.to_owned(),
            decimals,
        }
    }
}

/// Another unit an item is counted in, and how many base units one of it holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UnitConversion {
    /// The unit, such as `box`.
    pub unit: Unit,
    /// Base units in one of `unit`: 12 for a box of 12 pieces. At least 1.
    pub factor: i64,
}

/// How an item's issues are valued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValuationMethod {
    /// First in, first out: issues take the oldest layers first.
    Fifo,
    /// Moving (weighted) average, recomputed on every receipt.
    MovingAverage,
}

impl ValuationMethod {
    /// `"FIFO"` or `"moving average"`, for messages.
    pub const fn label(self) -> &'static str {
        match self {
            ValuationMethod::Fifo => "FIFO",
            ValuationMethod::MovingAverage => "moving average",
        }
    }
}

/// What happens to an issue beyond the quantity on hand (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum NegativeStockPolicy {
    /// Refuse it, leaving the stock unchanged.
    #[default]
    Refuse,
    /// Allow it, valued at the last known unit cost; the next receipt settles it.
    Allow,
}

/// A stocked item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// Stable id.
    pub id: u64,
    /// What people call it, such as `"ITEM-7"`; not empty.
    pub code: String,
    /// Such as `"Widget"`; not empty.
    pub name: String,
    /// The unit stock is kept in.
    pub base_unit: Unit,
    /// Other units, each a whole number of base units.
    pub conversions: Vec<UnitConversion>,
    /// FIFO or moving average; fixed once the item has moves.
    pub method: ValuationMethod,
    /// Overrides the company's [`Stock::negative_stock`] policy when set.
    pub negative_stock: Option<NegativeStockPolicy>,
}

impl Item {
    /// An item with only its base unit and the company's negative-stock policy.
    pub fn new(id: u64, code: &str, name: &str, base_unit: Unit, method: ValuationMethod) -> Item {
        Item {
            id,
            code: code.to_owned(),
            name: name.to_owned(),
            base_unit,
            conversions: Vec::new(),
            method,
            negative_stock: None,
        }
    }

    /// The item with one more unit: `factor` base units in one `unit`.
    pub fn with_unit(mut self, unit: Unit, factor: i64) -> Item {
        self.conversions.push(UnitConversion { unit, factor });
        self
    }

    /// `"ITEM-7 Widget"`, for messages and reports.
    pub fn label(&self) -> String {
        format!("{} {}", self.code, self.name)
    }

    /// `quantity` in `unit`, in base units. Refused: a unit the item is not counted in,
    /// and a quantity with more decimals than its unit (or the result more than the base
    /// unit) allows.
    pub fn to_base(&self, quantity: Quantity, unit: &str) -> Result<Quantity, StockError> {
        let (found, factor) = if self.base_unit.code.eq_ignore_ascii_case(unit.trim()) {
            (&self.base_unit, 1)
        } else {
            self.conversions
                .iter()
                .find(|c| c.unit.code.eq_ignore_ascii_case(unit.trim()))
                .map(|c| (&c.unit, c.factor))
                .ok_or_else(|| StockError::UnknownUnit {
                    item: self.label(),
                    unit: unit.to_owned(),
                    known: self.unit_codes(),
                })?
        };
        self.check_decimals(quantity, found)?;
        let base = quantity.checked_mul(factor)?;
        self.check_decimals(base, &self.base_unit)?;
        Ok(base)
    }

    fn check_decimals(&self, quantity: Quantity, unit: &Unit) -> Result<(), StockError> {
        if quantity.decimals() > unit.decimals {
            Err(StockError::TooManyDecimals {
                quantity,
                unit: unit.code.clone(),
                allowed: unit.decimals,
                item: self.label(),
            })
        } else {
            Ok(())
        }
    }

    fn unit_codes(&self) -> String {
        std::iter::once(&self.base_unit)
            .chain(self.conversions.iter().map(|c| &c.unit))
            .map(|u| u.code.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn validate(&self) -> Result<(), StockError> {
        let invalid = |reason: String| StockError::InvalidDefinition {
            what: format!("item {}", self.label()),
            reason,
        };
        if self.code.trim().is_empty() || self.name.trim().is_empty() {
            return Err(invalid("an item needs a code and a name".to_owned()));
        }
        let mut seen: Vec<String> = Vec::new();
        let units = std::iter::once((&self.base_unit, 1))
            .chain(self.conversions.iter().map(|c| (&c.unit, c.factor)));
        for (unit, factor) in units {
            let code = unit.code.trim();
            if code.is_empty() {
                return Err(invalid("a unit needs a code, such as pcs".to_owned()));
            }
            if unit.decimals > Quantity::DECIMALS {
                return Err(invalid(format!(
                    "unit {code} has {} decimals; at most 3 are possible",
                    unit.decimals
                )));
            }
            if factor < 1 {
                return Err(invalid(format!(
                    "unit {code} holds {factor} {}; it must hold at least 1",
                    self.base_unit.code
                )));
            }
            let key = code.to_ascii_lowercase();
            if seen.contains(&key) {
                return Err(invalid(format!("unit {code} is listed twice")));
            }
            seen.push(key);
        }
        Ok(())
    }
}

/// A place stock is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warehouse {
    /// Stable id.
    pub id: u64,
    /// Short code, such as `"MAIN"`.
    pub code: String,
    /// Such as `"Main warehouse"`: how messages name it.
    pub name: String,
    /// The stock account its value is kept in; `None` is [`StockAccounts::stock`].
    pub stock_account: Option<AccountId>,
}

impl Warehouse {
    /// A warehouse using the company's stock account.
    pub fn new(id: u64, code: &str, name: &str) -> Warehouse {
        Warehouse {
            id,
            code: code.to_owned(),
            name: name.to_owned(),
            stock_account: None,
        }
    }
}

/// A quantity and its value: a FIFO layer, or what a move took or brought.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layer {
    /// In base units.
    pub qty: Quantity,
    /// In the company currency.
    pub value: Money,
}

/// The stock of one item in one warehouse.
///
/// Invariants (kept by the moves): `qty == 0 ⇒ value == 0`; for FIFO with `qty >= 0`,
/// `layers` (oldest first, each above zero) sum to `qty` and `value`; with `qty < 0`
/// (only under [`NegativeStockPolicy::Allow`]) `layers` is empty; moving average keeps
/// no layers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// The item's id.
    pub item: u64,
    /// The warehouse's id.
    pub warehouse: u64,
    /// On hand, in base units.
    pub qty: Quantity,
    /// Its value.
    pub value: Money,
    /// FIFO layers, oldest first.
    pub layers: VecDeque<Layer>,
    /// The last incoming quantity and value: the last known unit cost.
    pub last_cost: Option<Layer>,
}

impl Position {
    fn empty(item: u64, warehouse: u64, currency: Currency) -> Position {
        Position {
            item,
            warehouse,
            qty: Quantity::ZERO,
            value: Money::zero(currency),
            layers: VecDeque::new(),
            last_cost: None,
        }
    }

    /// Brings in `qty` (above zero) worth `value`: settles negative stock first, then
    /// adds a layer (FIFO) or adds to the pool. Returns the price difference.
    fn receive(
        &mut self,
        method: ValuationMethod,
        qty: Quantity,
        value: Money,
    ) -> Result<Money, StockError> {
        let mut difference = Money::zero(value.currency());
        let (mut qty_left, mut value_left) = (qty, value);
        if self.qty.is_negative() {
            let short = self.qty.checked_neg()?;
            let settled = qty.min(short);
            let carried = if settled == short {
                self.value
            } else {
                share(self.value, settled, short)?
            };
            let actual = if settled == qty {
                value
            } else {
                share(value, settled, qty)?
            };
            difference = actual.checked_add(carried)?;
            self.qty = self.qty.checked_add(settled)?;
            self.value = self.value.checked_sub(carried)?;
            qty_left = qty_left.checked_sub(settled)?;
            value_left = value_left.checked_sub(actual)?;
        }
        if qty_left.is_positive() {
            self.qty = self.qty.checked_add(qty_left)?;
            self.value = self.value.checked_add(value_left)?;
            if method == ValuationMethod::Fifo {
                self.layers.push_back(Layer {
                    qty: qty_left,
                    value: value_left,
                });
            }
        }
        self.last_cost = Some(Layer { qty, value });
        Ok(difference)
    }

    /// Takes out `qty` (above zero): oldest layers first (FIFO) or a share of the pool;
    /// anything beyond what is on hand at the last known unit cost (the caller has
    /// checked the policy). Returns the slices taken.
    fn take(&mut self, method: ValuationMethod, qty: Quantity) -> Result<Vec<Layer>, StockError> {
        let mut slices = Vec::new();
        let mut left = qty;
        while left.is_positive() {
            let (taken, value) = match method {
                ValuationMethod::Fifo => {
                    let Some(front) = self.layers.front_mut() else {
                        break;
                    };
                    let taken = left.min(front.qty);
                    let value = if taken == front.qty {
                        front.value
                    } else {
                        share(front.value, taken, front.qty)?
                    };
                    front.qty = front.qty.checked_sub(taken)?;
                    front.value = front.value.checked_sub(value)?;
                    if front.qty.is_zero() {
                        self.layers.pop_front();
                    }
                    (taken, value)
                }
                ValuationMethod::MovingAverage => {
                    if !self.qty.is_positive() {
                        break;
                    }
                    let taken = left.min(self.qty);
                    let value = if taken == self.qty {
                        self.value
                    } else {
                        share(self.value, taken, self.qty)?
                    };
                    (taken, value)
                }
            };
            self.qty = self.qty.checked_sub(taken)?;
            self.value = self.value.checked_sub(value)?;
            left = left.checked_sub(taken)?;
            slices.push(Layer { qty: taken, value });
        }
        if left.is_positive() {
            let value = match self.last_cost {
                Some(last) if last.qty.is_positive() => share(last.value, left, last.qty)?,
                _ => Money::zero(self.value.currency()),
            };
            self.qty = self.qty.checked_sub(left)?;
            self.value = self.value.checked_sub(value)?;
            slices.push(Layer { qty: left, value });
        }
        Ok(slices)
    }
}

/// `round(value × part / whole)`, halves away from zero; `whole` is above zero.
fn share(value: Money, part: Quantity, whole: Quantity) -> Result<Money, StockError> {
    let overflow = || StockError::Overflow {
        what: format!("the share {part}/{whole} of {value}"),
    };
    let numerator = i128::from(value.minor()) * i128::from(part.thousandths());
    let denominator = i128::from(whole.thousandths());
    if denominator <= 0 {
        return Err(overflow());
    }
    let (quotient, remainder) = (numerator / denominator, numerator % denominator);
    let rounded = if remainder.abs() * 2 >= denominator {
        quotient + remainder.signum()
    } else {
        quotient
    };
    i64::try_from(rounded)
        .map(|minor| Money::new(minor, value.currency()))
        .map_err(|_| overflow())
}

fn sum(slices: &[Layer], currency: Currency) -> Result<Money, StockError> {
    slices
        .iter()
        .try_fold(Money::zero(currency), |total, slice| {
            total.checked_add(slice.value)
        })
        .map_err(StockError::from)
}

/// A quantity and its value: what a move brought in or took out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Valuation {
    /// In base units. Above zero, except for an adjustment, where it is signed (a
    /// decrease is below zero).
    pub qty: Quantity,
    /// At cost, in the company currency; same sign as `qty` (or zero).
    pub value: Money,
}

/// What a move did, and where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoveKind {
    /// Goods received into `warehouse`.
    Receipt {
        /// Where they arrived.
        warehouse: u64,
    },
    /// Goods issued (sold, used) from `warehouse`.
    Delivery {
        /// Where they left.
        warehouse: u64,
    },
    /// Goods moved between warehouses at cost.
    Transfer {
        /// Where they left.
        from: u64,
        /// Where they arrived.
        to: u64,
    },
    /// A count correction in `warehouse`.
    Adjustment {
        /// Where the count was.
        warehouse: u64,
    },
}

/// The record of one applied move: keep it for the stock card and the journal entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockMove {
    /// The id the caller gave the move.
    pub id: u64,
    /// Its date.
    pub date: Date,
    /// The item's id.
    pub item: u64,
    /// The outside document (order, delivery note, count sheet); may be empty.
    pub reference: String,
    /// Receipt, delivery, transfer or adjustment, with its warehouses.
    pub kind: MoveKind,
    /// The quantity in base units and its value at cost.
    pub valuation: Valuation,
    /// Only where incoming goods settled negative stock
    /// ([`NegativeStockPolicy::Allow`]): what they cost beyond (positive) or below
    /// (negative) the value the negative stock was issued at. Charged to cost of goods
    /// sold; zero otherwise.
    pub price_difference: Money,
}

/// A move's net change to one item × warehouse position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Effect {
    /// The warehouse.
    pub warehouse: u64,
    /// The change in quantity, in base units.
    pub qty: Quantity,
    /// The change in value (incoming value less any price difference).
    pub value: Money,
}

impl StockMove {
    /// The net change to each position the move touched: for a receipt or an increase
    /// `(qty, value − price difference)`, for a delivery or decrease `(−qty, −value)`,
    /// for a transfer both. Summing the effects of all moves gives the stock, exactly.
    pub fn effects(&self) -> Result<Vec<Effect>, StockError> {
        let Valuation { qty, value } = self.valuation;
        let incoming = |warehouse| -> Result<Effect, StockError> {
            Ok(Effect {
                warehouse,
                qty,
                value: value.checked_sub(self.price_difference)?,
            })
        };
        let outgoing = |warehouse| -> Result<Effect, StockError> {
            Ok(Effect {
                warehouse,
                qty: qty.checked_neg()?,
                value: value.checked_neg()?,
            })
        };
        Ok(match self.kind {
            MoveKind::Receipt { warehouse } | MoveKind::Adjustment { warehouse } => {
                vec![incoming(warehouse)?]
            }
            MoveKind::Delivery { warehouse } => vec![outgoing(warehouse)?],
            MoveKind::Transfer { from, to } => vec![outgoing(from)?, incoming(to)?],
        })
    }
}

/// A receipt: `qty` `unit` of `item` into `warehouse`, costing `cost` in all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The move's id, chosen by the caller.
    pub id: u64,
    /// Its date.
    pub date: Date,
    /// The item's id.
    pub item: u64,
    /// The warehouse's id.
    pub warehouse: u64,
    /// Above zero.
    pub qty: Quantity,
    /// One of the item's units.
    pub unit: String,
    /// The total cost, in the company currency, zero or more.
    pub cost: Money,
    /// The linked document, such as a purchase order or goods-received note.
    pub reference: String,
}

/// A delivery (issue): `qty` `unit` of `item` out of `warehouse`, valued at cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The move's id.
    pub id: u64,
    /// Its date.
    pub date: Date,
    /// The item's id.
    pub item: u64,
    /// The warehouse's id.
    pub warehouse: u64,
    /// Above zero.
    pub qty: Quantity,
    /// One of the item's units.
    pub unit: String,
    /// The linked document, such as a delivery note.
    pub reference: String,
}

/// A transfer: `qty` `unit` of `item` from one warehouse to another, at cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    /// The move's id.
    pub id: u64,
    /// Its date.
    pub date: Date,
    /// The item's id.
    pub item: u64,
    /// Where the goods leave; never beyond what is on hand there.
    pub from: u64,
    /// Where they arrive; another warehouse.
    pub to: u64,
    /// Above zero.
    pub qty: Quantity,
    /// One of the item's units.
    pub unit: String,
    /// The linked document.
    pub reference: String,
}

/// A count correction: `qty` (signed) `unit` of `item` in `warehouse`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adjustment {
    /// The move's id.
    pub id: u64,
    /// Its date.
    pub date: Date,
    /// The item's id.
    pub item: u64,
    /// The warehouse's id.
    pub warehouse: u64,
    /// Found more (above zero) or less (below zero); not zero.
    pub qty: Quantity,
    /// One of the item's units.
    pub unit: String,
    /// For an increase: the cost of one `unit`; `None` values it at the current unit
    /// cost (or the last known one). A decrease is valued like a delivery and takes none.
    pub unit_cost: Option<Money>,
    /// The linked document, such as a count sheet.
    pub reference: String,
}

/// The stock of a company: items, warehouses and a position per item × warehouse.
///
/// Plain data: every field is public so the store can encode and restore it; change it
/// only through the moves, which keep the invariants of the module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stock {
    /// The company currency: every cost and value is in it.
    pub currency: Currency,
    /// The company's policy; an item may override it.
    pub negative_stock: NegativeStockPolicy,
    /// Items by id.
    pub items: BTreeMap<u64, Item>,
    /// Warehouses by id.
    pub warehouses: BTreeMap<u64, Warehouse>,
    /// Positions by `(item, warehouse)`; a missing one is empty.
    pub positions: BTreeMap<(u64, u64), Position>,
}

impl Stock {
    /// No items, no warehouses, negative stock refused.
    pub fn new(currency: Currency) -> Stock {
        Stock {
            currency,
            negative_stock: NegativeStockPolicy::Refuse,
            items: BTreeMap::new(),
            warehouses: BTreeMap::new(),
            positions: BTreeMap::new(),
        }
    }

    /// Adds an item after checking its units (codes present and distinct, 0 to 3
    /// decimals, factors of at least 1) and that its id is free.
    pub fn add_item(&mut self, item: Item) -> Result<(), StockError> {
        item.validate()?;
        if let Some(existing) = self.items.get(&item.id) {
            return Err(StockError::DuplicateItem {
                id: item.id,
                existing: existing.label(),
            });
        }
        self.items.insert(item.id, item);
        Ok(())
    }

    /// Adds a warehouse whose id is free and which has a name.
    pub fn add_warehouse(&mut self, warehouse: Warehouse) -> Result<(), StockError> {
        if warehouse.name.trim().is_empty() {
            return Err(StockError::InvalidDefinition {
                what: format!("warehouse {}", warehouse.code),
                reason: "a warehouse needs a name".to_owned(),
            });
        }
        if let Some(existing) = self.warehouses.get(&warehouse.id) {
            return Err(StockError::DuplicateWarehouse {
                id: warehouse.id,
                existing: existing.name.clone(),
            });
        }
        self.warehouses.insert(warehouse.id, warehouse);
        Ok(())
    }

    /// The item with this id.
    pub fn item(&self, id: u64) -> Result<&Item, StockError> {
        self.items.get(&id).ok_or(StockError::UnknownItem { id })
    }

    /// The warehouse with this id.
    pub fn warehouse(&self, id: u64) -> Result<&Warehouse, StockError> {
        self.warehouses
            .get(&id)
            .ok_or(StockError::UnknownWarehouse { id })
    }

    /// The position of `item` in `warehouse`, if it ever had a move.
    pub fn position(&self, item: u64, warehouse: u64) -> Option<&Position> {
        self.positions.get(&(item, warehouse))
    }

    /// The policy that applies to `item`: its own, or the company's.
    pub fn policy(&self, item: &Item) -> NegativeStockPolicy {
        item.negative_stock.unwrap_or(self.negative_stock)
    }

    fn position_or_empty(&self, item: u64, warehouse: u64) -> Position {
        self.position(item, warehouse)
            .cloned()
            .unwrap_or_else(|| Position::empty(item, warehouse, self.currency))
    }

    /// `qty` `unit` in base units, refusing zero and below.
    fn positive_base(
        item: &Item,
        qty: Quantity,
        unit: &str,
        what: &'static str,
    ) -> Result<Quantity, StockError> {
        if !qty.is_positive() {
            return Err(StockError::NotPositive {
                what,
                quantity: qty,
                unit: unit.to_owned(),
                item: item.label(),
            });
        }
        item.to_base(qty, unit)
    }

    fn check_cost(&self, item: &Item, cost: Money) -> Result<(), StockError> {
        if cost.currency() != self.currency {
            return Err(StockError::CostCurrency {
                item: item.label(),
                cost,
                company: self.currency,
            });
        }
        if cost.minor() < 0 {
            return Err(StockError::NegativeCost {
                item: item.label(),
                cost,
            });
        }
        Ok(())
    }

    fn check_on_hand(
        &self,
        item: &Item,
        position: &Position,
        qty: Quantity,
        verb: &'static str,
        refuse: bool,
    ) -> Result<(), StockError> {
        if refuse && qty > position.qty {
            return Err(StockError::InsufficientStock {
                item: item.label(),
                warehouse: self.warehouse(position.warehouse)?.name.clone(),
                unit: item.base_unit.code.clone(),
                on_hand: position.qty,
                requested: qty,
                verb,
            });
        }
        Ok(())
    }

    /// Receives goods: a new FIFO layer or a new moving average, after settling any
    /// negative stock. Refused: unknown item, warehouse or unit, a quantity of zero or
    /// less or with too many decimals, a cost below zero or in another currency.
    pub fn receive(&mut self, receipt: &Receipt) -> Result<StockMove, StockError> {
        let item = self.item(receipt.item)?;
        self.warehouse(receipt.warehouse)?;
        let qty = Self::positive_base(item, receipt.qty, &receipt.unit, "a receipt")?;
        self.check_cost(item, receipt.cost)?;
        let mut position = self.position_or_empty(receipt.item, receipt.warehouse);
        let price_difference = position.receive(item.method, qty, receipt.cost)?;
        let record = StockMove {
            id: receipt.id,
            date: receipt.date,
            item: receipt.item,
            reference: receipt.reference.clone(),
            kind: MoveKind::Receipt {
                warehouse: receipt.warehouse,
            },
            valuation: Valuation {
                qty,
                value: receipt.cost,
            },
            price_difference,
        };
        self.positions
            .insert((receipt.item, receipt.warehouse), position);
        Ok(record)
    }

    /// Issues goods at cost; the move's value is the cost of goods issued. Refused
    /// beyond what is on hand under [`NegativeStockPolicy::Refuse`].
    pub fn deliver(&mut self, delivery: &Delivery) -> Result<StockMove, StockError> {
        let item = self.item(delivery.item)?;
        self.warehouse(delivery.warehouse)?;
        let qty = Self::positive_base(item, delivery.qty, &delivery.unit, "a delivery")?;
        let mut position = self.position_or_empty(delivery.item, delivery.warehouse);
        let refuse = self.policy(item) == NegativeStockPolicy::Refuse;
        self.check_on_hand(item, &position, qty, "deliver", refuse)?;
        let slices = position.take(item.method, qty)?;
        let value = sum(&slices, self.currency)?;
        let record = StockMove {
            id: delivery.id,
            date: delivery.date,
            item: delivery.item,
            reference: delivery.reference.clone(),
            kind: MoveKind::Delivery {
                warehouse: delivery.warehouse,
            },
            valuation: Valuation { qty, value },
            price_difference: Money::zero(self.currency),
        };
        self.positions
            .insert((delivery.item, delivery.warehouse), position);
        Ok(record)
    }

    /// Moves goods between two warehouses at cost: FIFO layers travel as they are, a
    /// moving average brings its share of value; the total value is unchanged (unless
    /// the goods settle negative stock at the destination). Refused: the same warehouse
    /// twice, and more than is on hand, whatever the policy.
    pub fn transfer(&mut self, transfer: &Transfer) -> Result<StockMove, StockError> {
        let item = self.item(transfer.item)?;
        let from = self.warehouse(transfer.from)?;
        self.warehouse(transfer.to)?;
        if transfer.from == transfer.to {
            return Err(StockError::SameWarehouse {
                item: item.label(),
                warehouse: from.name.clone(),
            });
        }
        let qty = Self::positive_base(item, transfer.qty, &transfer.unit, "a transfer")?;
        let mut source = self.position_or_empty(transfer.item, transfer.from);
        let mut target = self.position_or_empty(transfer.item, transfer.to);
        self.check_on_hand(item, &source, qty, "transfer", true)?;
        let slices = source.take(item.method, qty)?;
        let value = sum(&slices, self.currency)?;
        let mut price_difference = Money::zero(self.currency);
        let incoming = match item.method {
            ValuationMethod::Fifo => slices,
            ValuationMethod::MovingAverage => vec![Layer { qty, value }],
        };
        for slice in incoming {
            let difference = target.receive(item.method, slice.qty, slice.value)?;
            price_difference = price_difference.checked_add(difference)?;
        }
        let record = StockMove {
            id: transfer.id,
            date: transfer.date,
            item: transfer.item,
            reference: transfer.reference.clone(),
            kind: MoveKind::Transfer {
                from: transfer.from,
                to: transfer.to,
            },
            valuation: Valuation { qty, value },
            price_difference,
        };
        self.positions
            .insert((transfer.item, transfer.from), source);
        self.positions.insert((transfer.item, transfer.to), target);
        Ok(record)
    }

    /// Corrects a count. An increase is valued at the given cost per unit (rounded half
    /// away from zero to the minor unit) or, without one, at the current unit cost of
    /// the position, else its last known unit cost; a decrease is valued like a
    /// delivery and obeys the negative-stock policy. The move's quantity and value are
    /// signed.
    pub fn adjust(&mut self, adjustment: &Adjustment) -> Result<StockMove, StockError> {
        let item = self.item(adjustment.item)?;
        let warehouse = self.warehouse(adjustment.warehouse)?;
        let mut position = self.position_or_empty(adjustment.item, adjustment.warehouse);
        let (valuation, price_difference) = if adjustment.qty.is_positive() {
            let qty = item.to_base(adjustment.qty, &adjustment.unit)?;
            let value = match adjustment.unit_cost {
                Some(unit_cost) => {
                    self.check_cost(item, unit_cost)?;
                    share(unit_cost, adjustment.qty, Quantity::from_thousandths(1000))?
                }
                None => match (position.qty, position.last_cost) {
                    (on_hand, _) if on_hand.is_positive() => share(position.value, qty, on_hand)?,
                    (_, Some(last)) if last.qty.is_positive() => share(last.value, qty, last.qty)?,
                    _ => {
                        return Err(StockError::NoUnitCost {
                            item: item.label(),
                            warehouse: warehouse.name.clone(),
                        });
                    }
                },
            };
            let difference = position.receive(item.method, qty, value)?;
            (Valuation { qty, value }, difference)
        } else if adjustment.qty.is_negative() {
            if adjustment.unit_cost.is_some() {
                return Err(StockError::CostOnDecrease {
                    item: item.label(),
                    method: item.method.label(),
                });
            }
            let qty = item.to_base(adjustment.qty.checked_neg()?, &adjustment.unit)?;
            let refuse = self.policy(item) == NegativeStockPolicy::Refuse;
            self.check_on_hand(item, &position, qty, "write off", refuse)?;
            let slices = position.take(item.method, qty)?;
            let value = sum(&slices, self.currency)?;
            let valuation = Valuation {
                qty: qty.checked_neg()?,
                value: value.checked_neg()?,
            };
            (valuation, Money::zero(self.currency))
        } else {
            return Err(StockError::ZeroAdjustment { item: item.label() });
        };
        let record = StockMove {
            id: adjustment.id,
            date: adjustment.date,
            item: adjustment.item,
            reference: adjustment.reference.clone(),
            kind: MoveKind::Adjustment {
                warehouse: adjustment.warehouse,
            },
            valuation,
            price_difference,
        };
        self.positions
            .insert((adjustment.item, adjustment.warehouse), position);
        Ok(record)
    }
}
