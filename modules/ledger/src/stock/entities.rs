//! Inventory's records in the kernel: items, warehouses and stock moves (codes 40–42).
//!
//! * [`WAREHOUSE`] is an ordinary record: create, edit and delete it on the generic
//!   pages (a warehouse that stock moves refer to cannot be deleted).
//! * [`STOCK_ITEM`] is written only by [`super::books::save_item`], which keeps the
//!   valuation method, the base unit and the stock account fixed once the item has
//!   moves; the generic pages list and show items.
//! * [`STOCK_MOVE`] is written only by the move commands of [`super::books`]; a move is
//!   never edited: it is cancelled by a reverse move.

use nexus_kernel::typed::field::{Choice, Date, Int, Money, Ref, Text};
use nexus_kernel::{Creation, Unique};

use super::books::MoveType;
use super::{NegativeStockPolicy, ValuationMethod};
use crate::entities::{AccountRecord, JournalEntryRecord};
use crate::receivables::entities::InvoiceRecord;

nexus_kernel::options! {
    ValuationMethod { Fifo = "FIFO", MovingAverage = "Moving average" }
}

nexus_kernel::options! {
    NegativeStockPolicy { Refuse, Allow }
}

nexus_kernel::options! {
    MoveType { Receipt, Delivery, Transfer, Adjustment }
}

nexus_kernel::choice! {
    /// Whether a stock move stands or was undone by its reverse move.
    pub enum MoveStatus { Done, Cancelled }
}

nexus_kernel::entity! {
    /// A stocked item: its units, valuation method and accounts.
    pub struct StockItemRecord in STOCK_ITEM {
        name: "stock_item", code: 40, module: "ledger", label: "Item", plural: "Items",
        title: code, search: [code, name],
        creation: Creation::Module(
            "items are created and edited under Ledger → Stock → Items, which keeps the \
             valuation method, base unit and stock account fixed once an item has stock moves",
        ),
    }
    fields {
        code: Text<20> = "Code"
            .indexed()
            .unique(Unique::PerCompany)
            .list()
            .help("Short and unique, e.g. W-100."),
        name: Text<120> = "Name" .indexed().list(),
        base_unit: Text<10> = "Base unit"
            .list()
            .help("The unit stock is kept in, e.g. pcs or kg."),
        decimals: Option<Int<0, 3>> = "Decimals"
            .help("How many decimals a quantity in the base unit may have: 0 for pieces."),
        units: Option<Text<200>> = "Other units"
            .list()
            .help("Other units and how many base units each holds, e.g. box=12, pallet=480."),
        method: Choice<ValuationMethod> = "Valuation"
            .indexed()
            .list()
            .help("Fixed once the item has stock moves."),
        negative_stock: Option<Choice<NegativeStockPolicy>> = "Negative stock"
            .help("Empty: the company's setting (refuse unless changed on the Stock page)."),
        stock_account: Ref<AccountRecord> = "Stock account"
            .indexed()
            .help("Where the item's value is kept (1300 Stock by default)."),
        cogs_account: Ref<AccountRecord> = "Cost of goods sold"
            .indexed()
            .help("Where deliveries and count differences are charged (5100 by default)."),
    }
}

nexus_kernel::entity! {
    /// A place stock is kept.
    pub struct WarehouseRecord in WAREHOUSE {
        name: "warehouse", code: 41, module: "ledger", label: "Warehouse", plural: "Warehouses",
        title: name, search: [code, name],
        creation: Creation::ByRole,
    }
    fields {
        code: Text<20> = "Code" .indexed().unique(Unique::PerCompany).list(),
        name: Text<120> = "Name" .indexed().list(),
    }
}

nexus_kernel::entity! {
    /// One applied stock move, with its valuation and journal entry.
    pub struct StockMoveRecord in STOCK_MOVE {
        name: "stock_move", code: 42, module: "ledger", label: "Stock move", plural: "Stock moves",
        title: number, search: [number, reference],
        creation: Creation::Module(
            "stock moves are entered under Ledger → Stock and are never edited or deleted; \
             to undo a receipt or a delivery, cancel it there, which enters the reverse move",
        ),
    }
    fields {
        number: Text<20> = "Number" .indexed().unique(Unique::PerCompany).list(),
        kind: Choice<MoveType> = "Kind" .indexed().list(),
        date: Date = "Date" .indexed().list(),
        item: Ref<StockItemRecord> = "Item" .indexed().list(),
        warehouse: Ref<WarehouseRecord> = "Warehouse"
            .indexed()
            .list()
            .help("For a transfer: where the goods left."),
        to_warehouse: Option<Ref<WarehouseRecord>> = "To warehouse" .indexed().list(),
        qty: Text<30> = "Quantity"
            .list()
            .help("In the item's base unit; an adjustment's is signed."),
        unit: Option<Text<10>> = "Unit" .list(),
        value: Money = "Value" .list().help("At cost, in the company currency."),
        price_difference: Option<Money> = "Price difference"
            .help("Negative stock settled at another cost; charged to cost of goods sold."),
        reference: Option<Text<40>> = "Reference" .indexed().list(),
        account: Option<Ref<AccountRecord>> = "Counter account"
            .help(
                "A receipt's credit (goods received not invoiced or the supplier), \
                 an adjustment's other side."
            ),
        entry: Option<Ref<JournalEntryRecord>> = "Journal entry" .indexed().list(),
        status: Choice<MoveStatus> = "Status" .indexed().list(),
        reverses: Option<Ref<StockMoveRecord>> = "Reverses" .indexed(),
        reversed_by: Option<Ref<StockMoveRecord>> = "Reversed by",
        document: Option<Ref<InvoiceRecord>> = "Document"
            .indexed()
            .list()
            .help("The sales or purchase invoice the goods moved for."),
    }
}
