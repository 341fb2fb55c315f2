//! The stock module's errors: every message names the item, the warehouse, the unit and
//! the quantity, as a storekeeper would say it.

use crate::{Currency, LedgerError, Money};

use super::Quantity;

/// Everything the stock module can refuse. A refused move leaves the stock unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StockError {
    /// A money or ledger problem (overflow, currency mismatch, ...).
    #[error(transparent)]
    Ledger(#[from] LedgerError),

    /// Arithmetic left the range the module counts in.
    #[error("the quantities or amounts are too large to compute {what}")]
    Overflow { what: String },

    /// Not a decimal quantity.
    #[error("{input:?} is not a quantity: {reason}")]
    MalformedQuantity { input: String, reason: &'static str },

    /// A unit, item or warehouse definition that cannot be used.
    #[error("{what} cannot be used: {reason}")]
    InvalidDefinition { what: String, reason: String },

    /// An item id that is already taken.
    #[error("item #{id} already exists ({existing})")]
    DuplicateItem { id: u64, existing: String },

    /// A warehouse id that is already taken.
    #[error("warehouse #{id} already exists ({existing})")]
    DuplicateWarehouse { id: u64, existing: String },

    /// An item id that is not in the stock.
    #[error("item #{id} is not in the item list")]
    UnknownItem { id: u64 },

    /// A warehouse id that is not in the stock.
    #[error("warehouse #{id} is not in the warehouse list")]
    UnknownWarehouse { id: u64 },

    /// A unit the item is not counted in.
    #[error("{item} is not counted in {unit:?}; use one of its units: {known}")]
    UnknownUnit {
        item: String,
        unit: String,
        known: String,
    },

    /// More decimals than the unit allows.
    #[error("{}", too_many_decimals(quantity, unit, *allowed, item))]
    TooManyDecimals {
        quantity: Quantity,
        unit: String,
        allowed: u8,
        item: String,
    },

    /// A zero or negative quantity where one above zero is needed.
    #[error("{what} of {item} needs a quantity above zero, not {quantity} {unit}")]
    NotPositive {
        what: &'static str,
        quantity: Quantity,
        unit: String,
        item: String,
    },

    /// An adjustment of zero.
    #[error("an adjustment of {item} needs a quantity other than zero; nothing to adjust")]
    ZeroAdjustment { item: String },

    /// A cost below zero.
    #[error(
        "the cost of {item} cannot be negative ({cost}); enter returns as deliveries or adjustments"
    )]
    NegativeCost { item: String, cost: Money },

    /// A cost in a currency other than the company's.
    #[error(
        "the cost {cost} of {item} is not in the company currency {company}; \
         convert it at the day's rate first"
    )]
    CostCurrency {
        item: String,
        cost: Money,
        company: Currency,
    },

    /// A unit cost given for a decrease, which is valued at the stock's own cost.
    #[error(
        "a decrease of {item} is valued at the stock's cost ({method}); leave the unit cost out"
    )]
    CostOnDecrease { item: String, method: &'static str },

    /// Not enough on hand (under [`super::NegativeStockPolicy::Refuse`], or for a
    /// transfer).
    #[error("{}", insufficient(*on_hand, unit, item, warehouse, verb, *requested))]
    InsufficientStock {
        item: String,
        warehouse: String,
        unit: String,
        on_hand: Quantity,
        requested: Quantity,
        verb: &'static str,
    },

    /// A transfer whose two warehouses are one.
    #[error("a transfer of {item} needs two different warehouses; both are {warehouse}")]
    SameWarehouse { item: String, warehouse: String },

    /// A positive adjustment without a unit cost, where none is known.
    #[error(
        "{item} has no known cost in {warehouse} (nothing on hand and never received); \
         give the adjustment a unit cost"
    )]
    NoUnitCost { item: String, warehouse: String },

    /// An account code the chart does not have or that cannot take postings.
    #[error("the {role} account {code} {problem}")]
    StockAccount {
        role: &'static str,
        code: String,
        problem: &'static str,
    },
}

fn too_many_decimals(quantity: &Quantity, unit: &str, allowed: u8, item: &str) -> String {
    let rule = match allowed {
        0 => "is a whole number".to_owned(),
        1 => "has at most 1 decimal".to_owned(),
        n => format!("has at most {n} decimals"),
    };
    format!("{quantity} {unit} of {item} has too many decimals: a quantity in {unit} {rule}")
}

fn insufficient(
    on_hand: Quantity,
    unit: &str,
    item: &str,
    warehouse: &str,
    verb: &str,
    requested: Quantity,
) -> String {
    if on_hand.is_positive() {
        format!(
            "only {on_hand} {unit} of {item} on hand in {warehouse}; cannot {verb} {requested} {unit}"
        )
    } else {
        format!("no {item} on hand in {warehouse}; cannot {verb} {requested} {unit}")
    }
}
