//! Inventory's records in the kernel: items, warehouses and stock moves (codes 40–42).
//!
//! * [`WAREHOUSE`] is an ordinary record: create, edit and delete it on the generic
//!   pages (a warehouse that stock moves refer to cannot be deleted).
//! * [`STOCK_ITEM`] is written only by [`super::books::save_item`], which keeps the
//!   valuation method, the base unit and the stock account fixed once the item has
//!   moves; the generic pages list and show items.
//! * [`STOCK_MOVE`] is written only by the move commands of [`super::books`]; a move is
//!   never edited: it is cancelled by a reverse move.

use crate::entities::text;
use nexus_kernel::{Creation, EntityDef, FieldDef, FieldKind, Unique};

/// The valuation methods, as stored in an item's `method` field.
pub const METHODS: &[&str] = &["FIFO", "Moving average"];

/// The negative-stock overrides, as stored in an item's `negative_stock` field (empty:
/// the company's setting).
pub const POLICIES: &[&str] = &["Refuse", "Allow"];

/// The kinds of move, as stored in a move's `kind` field.
pub const MOVE_KINDS: &[&str] = &["Receipt", "Delivery", "Transfer", "Adjustment"];

/// A stocked item: its units, valuation method and accounts.
pub static STOCK_ITEM: EntityDef = EntityDef {
    name: "stock_item",
    code: 40,
    label: "Item",
    plural: "Items",
    module: "ledger",
    fields: &[
        text("code", "Code", 20)
            .required()
            .indexed()
            .unique(Unique::PerCompany)
            .list()
            .help("Short and unique, e.g. W-100."),
        text("name", "Name", 120).required().indexed().list(),
        text("base_unit", "Base unit", 10)
            .required()
            .list()
            .help("The unit stock is kept in, e.g. pcs or kg."),
        FieldDef::new("decimals", "Decimals", FieldKind::Int { min: 0, max: 3 })
            .help("How many decimals a quantity in the base unit may have: 0 for pieces."),
        text("units", "Other units", 200)
            .list()
            .help("Other units and how many base units each holds, e.g. box=12, pallet=480."),
        FieldDef::new("method", "Valuation", FieldKind::Choice(METHODS))
            .required()
            .indexed()
            .list()
            .help("Fixed once the item has stock moves."),
        FieldDef::new(
            "negative_stock",
            "Negative stock",
            FieldKind::Choice(POLICIES),
        )
        .help("Empty: the company's setting (refuse unless changed on the Stock page)."),
        FieldDef::new("stock_account", "Stock account", FieldKind::Ref("account"))
            .required()
            .indexed()
            .help("Where the item's value is kept (1300 Stock by default)."),
        FieldDef::new(
            "cogs_account",
            "Cost of goods sold",
            FieldKind::Ref("account"),
        )
        .required()
        .indexed()
        .help("Where deliveries and count differences are charged (5100 by default)."),
    ],
    title_field: "code",
    search_fields: &["code", "name"],
    creation: Creation::Module(
        "items are created and edited under Ledger → Stock → Items, which keeps the \
         valuation method, base unit and stock account fixed once an item has stock moves",
    ),
};

/// A place stock is kept.
pub static WAREHOUSE: EntityDef = EntityDef {
    name: "warehouse",
    code: 41,
    label: "Warehouse",
    plural: "Warehouses",
    module: "ledger",
    fields: &[
        text("code", "Code", 20)
            .required()
            .indexed()
            .unique(Unique::PerCompany)
            .list(),
        text("name", "Name", 120).required().indexed().list(),
    ],
    title_field: "name",
    search_fields: &["code", "name"],
    creation: Creation::ByRole,
};

/// One applied stock move, with its valuation and journal entry.
pub static STOCK_MOVE: EntityDef = EntityDef {
    name: "stock_move",
    code: 42,
    label: "Stock move",
    plural: "Stock moves",
    module: "ledger",
    fields: &[
        text("number", "Number", 20)
            .required()
            .indexed()
            .unique(Unique::PerCompany)
            .list(),
        FieldDef::new("kind", "Kind", FieldKind::Choice(MOVE_KINDS))
            .required()
            .indexed()
            .list(),
        FieldDef::new("date", "Date", FieldKind::Date)
            .required()
            .indexed()
            .list(),
        FieldDef::new("item", "Item", FieldKind::Ref("stock_item"))
            .required()
            .indexed()
            .list(),
        FieldDef::new("warehouse", "Warehouse", FieldKind::Ref("warehouse"))
            .required()
            .indexed()
            .list()
            .help("For a transfer: where the goods left."),
        FieldDef::new("to_warehouse", "To warehouse", FieldKind::Ref("warehouse"))
            .indexed()
            .list(),
        text("qty", "Quantity", 30)
            .required()
            .list()
            .help("In the item's base unit; an adjustment's is signed."),
        text("unit", "Unit", 10).list(),
        FieldDef::new("value", "Value", FieldKind::Money)
            .required()
            .list()
            .help("At cost, in the company currency."),
        FieldDef::new("price_difference", "Price difference", FieldKind::Money)
            .help("Negative stock settled at another cost; charged to cost of goods sold."),
        text("reference", "Reference", 40).indexed().list(),
        FieldDef::new("account", "Counter account", FieldKind::Ref("account")).help(
            "A receipt's credit (goods received not invoiced or the supplier), \
             an adjustment's other side.",
        ),
        FieldDef::new("entry", "Journal entry", FieldKind::Ref("journal_entry"))
            .indexed()
            .list(),
        FieldDef::new(
            "status",
            "Status",
            FieldKind::Choice(&["Done", "Cancelled"]),
        )
        .required()
        .indexed()
        .list(),
        FieldDef::new("reverses", "Reverses", FieldKind::Ref("stock_move")).indexed(),
        FieldDef::new("reversed_by", "Reversed by", FieldKind::Ref("stock_move")),
        FieldDef::new("document", "Document", FieldKind::Ref("invoice"))
            .indexed()
            .list()
            .help("The sales or purchase invoice the goods moved for."),
    ],
    title_field: "number",
    search_fields: &["number", "reference"],
    creation: Creation::Module(
        "stock moves are entered under Ledger → Stock and are never edited or deleted; \
         to undo a receipt or a delivery, cancel it there, which enters the reverse move",
    ),
};
