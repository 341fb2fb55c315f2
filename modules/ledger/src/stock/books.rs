//! Inventory on the store: items, the company's negative-stock setting, and stock moves
//! as module commands that value the move, keep the positions and post the journal
//! entry in ONE store command.
//!
//! * [`save_item`] creates or edits an item ([`STOCK_ITEM`]). Once the item has moves,
//!   its valuation method, base unit (code and decimals) and stock account are fixed:
//!   changing them would re-value, re-count or strand the stock already booked.
//! * [`record_move`] runs a receipt, delivery, transfer or count adjustment: it loads
//!   the item × warehouse positions the move touches, applies the domain move
//!   ([`Stock::receive`] and friends, which refuse negative stock by default with the
//!   domain's message), writes the positions back, posts the move's journal entry with
//!   [`books::post_draft`] and writes the [`STOCK_MOVE`] record, all or nothing.
//! * [`cancel_move`] undoes a receipt or a delivery by the reverse move (see there);
//!   transfers are undone by a transfer back, adjustments by another count.
//! * [`stock`], [`moves`] and [`valuation`] read: the whole stock, an item's moves for
//!   its stock card, and the valuation reconciled against the stock accounts' balances.
//!
//! # Invariants
//! * A position changes only inside a move command, together with the move's record and
//!   its journal entry; a refused move writes nothing.
//! * For every item × warehouse, the position is the sum of the effects of its moves
//!   (the domain's invariant), and the moves' entries are what moved the stock account:
//!   when every posting to an item's stock account comes from moves, the account's
//!   balance equals the value of the positions of the items kept in it.
//! * Moves are valued in the order they are entered (the store's sequence), not by
//!   date: a back-dated receipt joins the FIFO queue behind the goods already there.
//!   The stock card lists moves in that order.
//! * A move is never edited or deleted.
//!
//! # The `ledger` table (tags `s` and `v`)
//! * `s | company | item | warehouse` → the position: version `1` (`u8`), quantity in
//!   thousandths and value in minor units (`i64`), whether a last cost is known (`u8`)
//!   and its quantity and value (`i64` each, zero when unknown), the number of FIFO
//!   layers (`u32`) and each layer's quantity and value (`i64` each, oldest first); all
//!   little endian. Ids are big endian, so one item's positions are adjacent.
//! * `v | company` → the company's settings: version `1`, then the negative-stock
//!   policy (`0` refuse, `1` allow). Missing: refuse.
//! * `v | company | n` → the last stock-move number given out (`u64`, big endian).
//!
//! Every key carries the company, taken from the principal.

use crate::entities::LEDGER;
use std::collections::{BTreeMap, VecDeque};
use std::ops::ControlFlow;

use nexus_kernel::builtin::Company;
use nexus_kernel::bytes::{decode_u64, prefix_end, u64_key};
use nexus_kernel::typed::Options;
use nexus_kernel::{Action, Command, Kernel, KernelError, ListQuery, Principal, Row};
use time::Date;

use super::entities::{
    MoveStatus, STOCK_ITEM, STOCK_MOVE, StockItemRecord, StockMoveRecord, WAREHOUSE,
    WarehouseRecord,
};
use super::{
    Adjustment, Delivery, Item, Layer, MoveKind, NegativeStockPolicy, Position, Quantity, Receipt,
    Stock, StockAccounts, StockError, StockMove, Transfer, Unit, UnitConversion, Valuation,
    ValuationMethod, Warehouse,
};
use crate::books::{self, company_currency, company_key, lock_date};
use crate::codec::{Reader, Writer};
use crate::entities::{ACCOUNT, AccountRecord, JOURNAL_ENTRY, JournalEntryRecord};
use crate::{Account, AccountClass, Currency, EntryKind, JournalEntry, Line, Money, PeriodKey};

// ---------------------------------------------------------------- keys and encodings

fn position_prefix(company: u64, item: u64) -> Vec<u8> {
    let mut k = company_key(b's', company);
    k.extend_from_slice(&u64_key(item));
    k
}

fn position_key(company: u64, item: u64, warehouse: u64) -> Vec<u8> {
    let mut k = position_prefix(company, item);
    k.extend_from_slice(&u64_key(warehouse));
    k
}

fn counter_key(company: u64) -> Vec<u8> {
    let mut k = company_key(b'v', company);
    k.push(b'n');
    k
}

/// `qty | value | last cost? | layers…` (thousandths and minor units), in the ledger's
/// [`crate::codec`] layout.
fn encode_position(p: &Position) -> Vec<u8> {
    let mut w = Writer::default();
    w.i64(p.qty.thousandths()).i64(p.value.minor());
    match p.last_cost {
        Some(l) => w.u8(1).i64(l.qty.thousandths()).i64(l.value.minor()),
        None => w.u8(0),
    };
    let n = w.count(p.layers.len());
    for l in p.layers.iter().take(n) {
        w.i64(l.qty.thousandths()).i64(l.value.minor());
    }
    w.finish()
}

fn decode_position(
    bytes: &[u8],
    item: u64,
    warehouse: u64,
    currency: Currency,
) -> Result<Position, KernelError> {
    let mut r = Reader::new(bytes, "a stock position");
    let layer = |r: &mut Reader<'_>| -> Result<Layer, KernelError> {
        Ok(Layer {
            qty: Quantity::from_thousandths(r.i64()?),
            value: Money::new(r.i64()?, currency),
        })
    };
    let qty = Quantity::from_thousandths(r.i64()?);
    let value = Money::new(r.i64()?, currency);
    let last_cost = match r.u8()? {
        1 => Some(layer(&mut r)?),
        0 => None,
        _ => return Err(r.damaged()),
    };
    let n = r.count()?;
    let mut layers = VecDeque::with_capacity(n.min(1024));
    for _ in 0..n {
        layers.push_back(layer(&mut r)?);
    }
    if !r.is_empty() {
        return Err(r.damaged());
    }
    Ok(Position {
        item,
        warehouse,
        qty,
        value,
        layers,
        last_cost,
    })
}

/// The setting that holds the company's negative-stock policy (`allow` or `refuse`).
const NEGATIVE_STOCK: &str = "negative_stock";

fn decode_policy(text: Option<String>) -> Result<NegativeStockPolicy, KernelError> {
    match text.as_deref() {
        None | Some("refuse") => Ok(NegativeStockPolicy::Refuse),
        Some("allow") => Ok(NegativeStockPolicy::Allow),
        Some(other) => Err(KernelError::Internal(format!(
            "the company's negative-stock setting \"{other}\" is damaged"
        ))),
    }
}

// ---------------------------------------------------------------- records ↔ domain

/// A domain refusal as a message on the form field it is about.
fn refuse(e: StockError) -> KernelError {
    let field = match &e {
        StockError::UnknownUnit { .. } => "unit",
        StockError::NegativeCost { .. }
        | StockError::CostCurrency { .. }
        | StockError::CostOnDecrease { .. }
        | StockError::NoUnitCost { .. } => "cost",
        StockError::SameWarehouse { .. } => "to_warehouse",
        StockError::UnknownItem { .. } => "item",
        StockError::UnknownWarehouse { .. } => "warehouse",
        StockError::InvalidDefinition { .. } => "units",
        StockError::StockAccount { .. } => "stock_account",
        _ => "qty",
    };
    KernelError::invalid(field, e.to_string())
}

/// `"box=12, pallet=480"` → the conversions (each unit whole: no decimals).
pub fn parse_units(text: &str) -> Result<Vec<UnitConversion>, KernelError> {
    let mut out = Vec::new();
    for part in text
        .split([',', ';'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let bad = || {
            KernelError::invalid(
                "units",
                format!("\"{part}\" is not a unit like box=12 (a name, =, whole base units)"),
            )
        };
        let (code, factor) = part.split_once('=').ok_or_else(bad)?;
        let factor: i64 = factor.trim().parse().map_err(|_| bad())?;
        out.push(UnitConversion {
            unit: Unit::new(code.trim(), 0),
            factor,
        });
    }
    Ok(out)
}

fn format_units(conversions: &[UnitConversion]) -> String {
    conversions
        .iter()
        .map(|c| format!("{}={}", c.unit.code, c.factor))
        .collect::<Vec<_>>()
        .join(", ")
}

/// An item record as the domain sees it.
pub fn item_of(rec: &Row<StockItemRecord>) -> Result<Item, KernelError> {
    let decimals = u8::try_from(rec.decimals.unwrap_or(0))
        .map_err(|_| KernelError::Internal(format!("item #{} has no valid decimals", rec.id)))?;
    Ok(Item {
        id: rec.id,
        code: rec.code.clone(),
        name: rec.name.clone(),
        base_unit: Unit::new(&rec.base_unit, decimals),
        conversions: parse_units(rec.units.as_deref().unwrap_or_default())?,
        method: rec.method,
        negative_stock: rec.negative_stock,
    })
}

/// A warehouse record as the domain sees it.
pub fn warehouse_of(rec: &Row<WarehouseRecord>) -> Warehouse {
    Warehouse::new(rec.id, &rec.code, &rec.name)
}

/// A stock-move record as the domain's [`StockMove`] (its id is the record's).
pub fn move_of(rec: &Row<StockMoveRecord>, currency: Currency) -> Result<StockMove, KernelError> {
    let damaged = |what: &str| {
        KernelError::Internal(format!("stock move {} has no valid {what}", rec.number))
    };
    let money = |minor: Option<i64>| Money::new(minor.unwrap_or(0), currency);
    let warehouse = rec.warehouse;
    let kind = match rec.kind {
        MoveType::Receipt => MoveKind::Receipt { warehouse },
        MoveType::Delivery => MoveKind::Delivery { warehouse },
        MoveType::Adjustment => MoveKind::Adjustment { warehouse },
        MoveType::Transfer => MoveKind::Transfer {
            from: warehouse,
            to: rec.to_warehouse.ok_or_else(|| damaged("destination"))?,
        },
    };
    let qty = Quantity::parse(&rec.qty).map_err(|_| damaged("quantity"))?;
    Ok(StockMove {
        id: rec.id,
        date: rec.date,
        item: rec.item,
        reference: rec.reference.clone().unwrap_or_default(),
        kind,
        valuation: Valuation {
            qty,
            value: money(Some(rec.value)),
        },
        price_difference: money(rec.price_difference),
    })
}

fn all() -> ListQuery {
    ListQuery {
        limit: usize::MAX,
        ..Default::default()
    }
}

/// The id of the principal's company's account with exactly this code.
pub fn account_by_code(
    kernel: &Kernel,
    who: &Principal,
    code: &str,
) -> Result<Option<u64>, KernelError> {
    let query = ListQuery {
        filters: vec![("code".into(), code.to_owned())],
        limit: 100,
        ..Default::default()
    };
    Ok(
        Row::<AccountRecord>::all(&kernel.list(who, &ACCOUNT, &query)?.rows)?
            .iter()
            .find(|r| r.code == code)
            .map(|r| r.id),
    )
}

fn default_account(
    kernel: &Kernel,
    who: &Principal,
    code: &str,
    field: &str,
) -> Result<u64, KernelError> {
    account_by_code(kernel, who, code)?.ok_or_else(|| {
        KernelError::invalid(
            field,
            format!("choose an account: the chart has no account {code} to use by default"),
        )
    })
}

// ---------------------------------------------------------------- settings

/// The company's negative-stock policy (items may override it).
pub fn negative_stock(
    kernel: &Kernel,
    who: &Principal,
) -> Result<NegativeStockPolicy, KernelError> {
    kernel.authorize(who, &STOCK_ITEM, Action::Read)?;
    decode_policy(kernel.setting(&LEDGER, who.company, NEGATIVE_STOCK)?)
}

/// Sets the company's negative-stock policy.
pub async fn set_negative_stock(
    kernel: &Kernel,
    who: &Principal,
    policy: NegativeStockPolicy,
) -> Result<(), KernelError> {
    kernel.authorize(who, &STOCK_ITEM, Action::Write)?;
    kernel
        .command(&LEDGER, who, move |cmd| {
            let text = match policy {
                NegativeStockPolicy::Allow => "allow",
                NegativeStockPolicy::Refuse => "refuse",
            };
            cmd.set_setting(NEGATIVE_STOCK, Some(text.into()))
        })
        .await
}

// ---------------------------------------------------------------- items

/// An item as a person submits it.
#[derive(Debug, Clone)]
pub struct ItemInput {
    /// Short and unique, such as `W-100`.
    pub code: String,
    /// Such as `Widget`.
    pub name: String,
    /// The unit stock is kept in, such as `pcs`.
    pub base_unit: String,
    /// Decimals a quantity in the base unit may have (0 to 3).
    pub decimals: u8,
    /// Other units, such as `box=12, pallet=480`.
    pub units: String,
    /// FIFO or moving average.
    pub method: ValuationMethod,
    /// The item's own negative-stock policy; `None` follows the company.
    pub negative_stock: Option<NegativeStockPolicy>,
    /// The stock account; `None` is 1300.
    pub stock_account: Option<u64>,
    /// The cost-of-goods-sold account; `None` is 5100.
    pub cogs_account: Option<u64>,
}

/// Whether the item has any stock position, i.e. any move.
fn has_moves(cmd: &Command<'_, '_, '_>, item: u64) -> Result<bool, KernelError> {
    Ok(!cmd
        .scan_prefix(&position_prefix(cmd.who().company, item))?
        .is_empty())
}

fn check_account(
    cmd: &Command<'_, '_, '_>,
    id: u64,
    field: &str,
    role: &str,
    class: AccountClass,
) -> Result<(), KernelError> {
    let Some(rec) = cmd.find::<AccountRecord>(id)? else {
        return Err(KernelError::invalid(
            field,
            format!("there is no account with id {id} in your company"),
        ));
    };
    let account: Account = books::account_of(&rec);
    if account.is_group {
        return Err(KernelError::invalid(
            field,
            format!(
                "{} is a group account; choose one of the accounts under it",
                account.label()
            ),
        ));
    }
    if account.class != class {
        return Err(KernelError::invalid(
            field,
            format!(
                "{} cannot be the {role} account: choose an {} account",
                account.label(),
                class.name().to_lowercase()
            ),
        ));
    }
    Ok(())
}

/// Creates an item (`id` `None`) or edits item `id`. Stock and cost-of-goods-sold
/// accounts default to 1300 and 5100. Refused: units that do not make sense, accounts
/// that are missing, groups or of the wrong class (stock: an asset; cost of goods sold:
/// an expense), and — once the item has moves — a change of valuation method, base
/// unit or stock account.
pub async fn save_item(
    kernel: &Kernel,
    who: &Principal,
    id: Option<u64>,
    input: ItemInput,
) -> Result<Row<StockItemRecord>, KernelError> {
    kernel.authorize(
        who,
        &STOCK_ITEM,
        if id.is_some() {
            Action::Write
        } else {
            Action::Create
        },
    )?;
    let stock_account = match input.stock_account {
        Some(a) => a,
        None => default_account(kernel, who, "1300", "stock_account")?,
    };
    let cogs_account = match input.cogs_account {
        Some(a) => a,
        None => default_account(kernel, who, "5100", "cogs_account")?,
    };
    let conversions = parse_units(&input.units)?;
    let item = Item {
        id: id.unwrap_or(0),
        code: input.code.trim().to_owned(),
        name: input.name.trim().to_owned(),
        base_unit: Unit::new(input.base_unit.trim(), input.decimals),
        conversions,
        method: input.method,
        negative_stock: input.negative_stock,
    };
    // The domain checks the units (codes, decimals, factors) when an item is added.
    Stock::new(Currency::USD)
        .add_item(item.clone())
        .map_err(refuse)?;
    let fields = StockItemRecord {
        code: item.code.clone(),
        name: item.name.clone(),
        base_unit: item.base_unit.code.clone(),
        decimals: Some(i64::from(item.base_unit.decimals)),
        units: Some(format_units(&item.conversions)).filter(|u| !u.is_empty()),
        method: item.method,
        negative_stock: item.negative_stock,
        stock_account,
        cogs_account,
    };
    kernel
        .command(&LEDGER, who, move |cmd| {
            check_account(
                cmd,
                stock_account,
                "stock_account",
                "stock",
                AccountClass::Asset,
            )?;
            check_account(
                cmd,
                cogs_account,
                "cogs_account",
                "cost-of-goods-sold",
                AccountClass::Expense,
            )?;
            let Some(id) = id else {
                return cmd.insert(&fields);
            };
            let old = cmd.fetch::<StockItemRecord>(id)?;
            if has_moves(cmd, id)? {
                let before = item_of(&old)?;
                let label = before.label();
                if before.method != item.method {
                    return Err(KernelError::invalid(
                        "method",
                        format!(
                            "{label} already has stock moves valued by {}; its valuation \
                             method cannot change (create a new item for the other method)",
                            before.method.label()
                        ),
                    ));
                }
                if !before
                    .base_unit
                    .code
                    .eq_ignore_ascii_case(&item.base_unit.code)
                    || before.base_unit.decimals != item.base_unit.decimals
                {
                    return Err(KernelError::invalid(
                        "base_unit",
                        format!(
                            "{label} already has stock moves counted in {}; its base unit \
                             cannot change",
                            before.base_unit.code
                        ),
                    ));
                }
                if old.stock_account != stock_account {
                    return Err(KernelError::invalid(
                        "stock_account",
                        format!(
                            "{label} already has stock moves booked to its stock account; \
                             the account cannot change"
                        ),
                    ));
                }
            }
            cmd.modify(id, |i: &mut StockItemRecord| *i = fields)
        })
        .await
}

// ---------------------------------------------------------------- moves

/// Which move a [`MoveInput`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoveType {
    /// Goods in, at a total cost: Dr stock / Cr the counter account (2130 Goods received
    /// not invoiced by default; the supplier's bill then debits 2130).
    Receipt,
    /// Goods out at cost: Dr cost of goods sold / Cr stock.
    Delivery,
    /// Goods between two warehouses at cost (no entry: one stock account per item).
    Transfer,
    /// A count correction (signed quantity) against the counter account (the item's
    /// cost-of-goods-sold account by default).
    Adjustment,
}

impl MoveType {
    /// The type called `name` (any case), as a person types it.
    pub fn parse(name: &str) -> Option<MoveType> {
        <MoveType as Options>::ALL
            .iter()
            .copied()
            .find(|t| t.name().eq_ignore_ascii_case(name.trim()))
    }
}

/// A stock move as a person or program submits it.
#[derive(Debug, Clone)]
pub struct MoveInput {
    /// Receipt, delivery, transfer or adjustment.
    pub kind: MoveType,
    /// The move's date: in an open fiscal year, after the lock date.
    pub date: Date,
    /// The item's record id.
    pub item: u64,
    /// The warehouse (a transfer's source).
    pub warehouse: u64,
    /// A transfer's destination.
    pub to_warehouse: Option<u64>,
    /// The quantity in `unit` (signed for an adjustment).
    pub qty: Quantity,
    /// One of the item's units; empty is the base unit.
    pub unit: String,
    /// A receipt's total cost, or an increase's cost per `unit` (minor units); `None`
    /// for other moves (an increase without one is valued at the current unit cost).
    pub cost: Option<i64>,
    /// A receipt's credit account (default 2130) or an adjustment's other side (default
    /// the item's cost-of-goods-sold account).
    pub account: Option<u64>,
    /// The outside document: order, delivery note, count sheet.
    pub reference: String,
    /// The sales or purchase invoice the goods moved for, if any.
    pub document: Option<u64>,
}

/// What a move command wrote.
#[derive(Debug, Clone)]
pub struct Moved {
    /// The stock-move record.
    pub record: Row<StockMoveRecord>,
    /// Its journal entry (none for a transfer or a move of zero value).
    pub entry: Option<Row<JournalEntryRecord>>,
    /// The move as the domain valued it.
    pub valuation: Valuation,
}

/// How the command books the move: the accounts, and whether the entry is the reverse
/// of a receipt at the receipt's value (see [`cancel_move`]).
struct Booking {
    counter: Option<u64>,
    undo_receipt: Option<(u64, i64)>,
    reverses: Option<u64>,
}

/// Enters a stock move; see the module docs. Refused (changing nothing): a date in a
/// closed year or on or before the lock date, an unknown item, warehouse or unit, a
/// quantity that is not right for the move, and — unless negative stock is allowed —
/// more than is on hand, with the domain's message.
pub async fn record_move(
    kernel: &Kernel,
    who: &Principal,
    input: MoveInput,
) -> Result<Moved, KernelError> {
    kernel.authorize(who, &STOCK_MOVE, Action::Create)?;
    kernel.authorize(who, &JOURNAL_ENTRY, Action::Create)?;
    let counter = match (input.kind, input.account) {
        (MoveType::Receipt, None) => Some(default_account(kernel, who, "2130", "account")?),
        (MoveType::Receipt | MoveType::Adjustment, Some(a)) => Some(a),
        _ => None,
    };
    let booking = Booking {
        counter,
        undo_receipt: None,
        reverses: None,
    };
    kernel
        .command(&LEDGER, who, move |cmd| apply(cmd, &input, &booking))
        .await
}

fn load_warehouse(
    cmd: &Command<'_, '_, '_>,
    id: u64,
    field: &str,
) -> Result<Warehouse, KernelError> {
    match cmd.find::<WarehouseRecord>(id)? {
        Some(rec) => Ok(warehouse_of(&rec)),
        None => Err(KernelError::invalid(
            field,
            format!("choose a warehouse: there is no warehouse #{id} in your company"),
        )),
    }
}

fn check_date(cmd: &Command<'_, '_, '_>, date: Date) -> Result<(), KernelError> {
    crate::years::check_open(&crate::years::read(cmd)?, date)?;
    if let Some(lock) = lock_date(cmd)?
        && date <= lock.0
    {
        return Err(KernelError::invalid(
            "date",
            format!(
                "the books are locked up to {}; date the move after it",
                lock.0
            ),
        ));
    }
    Ok(())
}

fn truncate(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// The move inside a command: load, apply, post, write.
fn apply(
    cmd: &mut Command<'_, '_, '_>,
    input: &MoveInput,
    booking: &Booking,
) -> Result<Moved, KernelError> {
    let company = cmd.who().company;
    let company_rec = cmd.fetch::<Company>(company)?;
    let currency = company_currency(&company_rec)?;
    check_date(cmd, input.date)?;
    let Some(item_rec) = cmd.find::<StockItemRecord>(input.item)? else {
        return Err(KernelError::invalid(
            "item",
            format!(
                "choose an item: there is no item #{} in your company",
                input.item
            ),
        ));
    };
    let item = item_of(&item_rec)?;
    let (stock_account, cogs_account) = (item_rec.stock_account, item_rec.cogs_account);
    let unit = if input.unit.trim().is_empty() {
        item.base_unit.code.clone()
    } else {
        input.unit.trim().to_owned()
    };
    let mut warehouses = vec![load_warehouse(cmd, input.warehouse, "warehouse")?];
    if input.kind == MoveType::Transfer {
        let to = input.to_warehouse.ok_or_else(|| {
            KernelError::invalid("to_warehouse", "choose the warehouse the goods go to")
        })?;
        if to != input.warehouse {
            warehouses.push(load_warehouse(cmd, to, "to_warehouse")?);
        }
    }
    let mut stock = Stock::new(currency);
    stock.negative_stock = decode_policy(cmd.setting(NEGATIVE_STOCK)?)?;
    for w in warehouses {
        if let Some(b) = cmd.get(&position_key(company, item.id, w.id))? {
            let p = decode_position(&b, item.id, w.id, currency)?;
            stock.positions.insert((item.id, w.id), p);
        }
        stock.add_warehouse(w).map_err(refuse)?;
    }
    let item_id = item.id;
    stock.add_item(item).map_err(refuse)?;
    let reference = truncate(input.reference.trim(), 40);
    let money = |minor: i64| Money::new(minor, currency);
    let mv =
        match input.kind {
            MoveType::Receipt => stock.receive(&Receipt {
                id: 0,
                date: input.date,
                item: item_id,
                warehouse: input.warehouse,
                qty: input.qty,
                unit,
                cost: money(input.cost.ok_or_else(|| {
                    KernelError::invalid("cost", "enter what the goods cost in all")
                })?),
                reference: reference.clone(),
            }),
            MoveType::Delivery => stock.deliver(&Delivery {
                id: 0,
                date: input.date,
                item: item_id,
                warehouse: input.warehouse,
                qty: input.qty,
                unit,
                reference: reference.clone(),
            }),
            MoveType::Transfer => stock.transfer(&Transfer {
                id: 0,
                date: input.date,
                item: item_id,
                from: input.warehouse,
                to: input.to_warehouse.unwrap_or(input.warehouse),
                qty: input.qty,
                unit,
                reference: reference.clone(),
            }),
            MoveType::Adjustment => stock.adjust(&Adjustment {
                id: 0,
                date: input.date,
                item: item_id,
                warehouse: input.warehouse,
                qty: input.qty,
                unit,
                unit_cost: input.cost.map(money),
                reference: reference.clone(),
            }),
        }
        .map_err(refuse)?;

    let counter_key = counter_key(company);
    let number = cmd
        .get(&counter_key)?
        .and_then(|b| decode_u64(&b))
        .unwrap_or(0)
        + 1;
    cmd.put(counter_key, u64_key(number).to_vec());
    let number = format!("SM-{number:06}");

    let counter = booking.counter.unwrap_or(cogs_account);
    let accounts = StockAccounts {
        stock: stock_account,
        cogs: cogs_account,
        adjustment: counter,
        grni_or_payable: counter,
    };
    let draft = match booking.undo_receipt {
        Some((credit_account, receipt_value)) => {
            undo_receipt_entry(&mv, &accounts, credit_account, receipt_value)
        }
        None => stock.journal_entry(&mv, &accounts, 0).map_err(refuse)?,
    };
    let entry = match draft {
        Some(mut je) => {
            je.narration = truncate(&je.narration, 200);
            je.reference = if reference.is_empty() {
                number.clone()
            } else {
                truncate(&format!("{number} {reference}"), 60)
            };
            Some(books::post_draft(
                cmd,
                &je,
                &format!("stock move {number}"),
            )?)
        }
        None => None,
    };
    for ((i, w), p) in &stock.positions {
        cmd.put(position_key(company, *i, *w), encode_position(p));
    }
    let (warehouse, to_warehouse) = match mv.kind {
        MoveKind::Transfer { from, to } => (from, Some(to)),
        MoveKind::Receipt { warehouse }
        | MoveKind::Delivery { warehouse }
        | MoveKind::Adjustment { warehouse } => (warehouse, None),
    };
    let base_unit = stock
        .item(item_id)
        .map(|i| i.base_unit.code.clone())
        .unwrap_or_default();
    if let Some(doc) = input.document
        && cmd
            .find::<crate::receivables::entities::InvoiceRecord>(doc)?
            .is_none()
    {
        return Err(KernelError::invalid(
            "document",
            format!("there is no invoice #{doc} in your company"),
        ));
    }
    let books_counter = matches!(input.kind, MoveType::Receipt | MoveType::Adjustment)
        || booking.reverses.is_some();
    let record = cmd.insert(&StockMoveRecord {
        number,
        kind: input.kind,
        date: input.date,
        item: item_id,
        warehouse,
        to_warehouse,
        qty: mv.valuation.qty.to_string(),
        unit: Some(base_unit).filter(|u| !u.is_empty()),
        value: mv.valuation.value.minor(),
        price_difference: (!mv.price_difference.is_zero()).then(|| mv.price_difference.minor()),
        reference: Some(reference).filter(|r| !r.is_empty()),
        account: books_counter.then_some(counter),
        entry: entry.as_ref().map(|e| e.id),
        status: MoveStatus::Done,
        reverses: booking.reverses,
        reversed_by: None,
        document: input.document,
    })?;
    Ok(Moved {
        record,
        entry,
        valuation: mv.valuation,
    })
}

/// The entry that undoes a receipt by the delivery `mv`: Dr the receipt's credit
/// account at the receipt's value, Cr stock at what the delivery took, and the
/// difference (the goods' cost having moved on) to cost of goods sold.
fn undo_receipt_entry(
    mv: &StockMove,
    accounts: &StockAccounts,
    credit_account: u64,
    receipt_value: i64,
) -> Option<JournalEntry> {
    let taken = mv.valuation.value.minor();
    let mut lines: Vec<(u64, i64)> = Vec::new();
    for (account, amount) in [
        (credit_account, receipt_value),
        (accounts.stock, taken.saturating_neg()),
        (accounts.cogs, taken.saturating_sub(receipt_value)),
    ] {
        match lines.iter_mut().find(|(a, _)| *a == account) {
            Some((_, total)) => *total = total.saturating_add(amount),
            None => lines.push((account, amount)),
        }
    }
    let lines: Vec<Line> = lines
        .into_iter()
        .filter(|(_, amount)| *amount != 0)
        .map(|(account, amount)| Line::debit(account, amount))
        .collect();
    if lines.is_empty() {
        return None;
    }
    Some(JournalEntry {
        id: 0,
        currency: mv.valuation.value.currency(),
        date: mv.date,
        narration: format!(
            "Return of {} received (cancelled receipt)",
            mv.valuation.qty
        ),
        reference: mv.reference.clone(),
        kind: EntryKind::Regular,
        lines,
    })
}

/// Cancels move `id` by the reverse move, dated `date`, in one command, and marks both.
///
/// * A **delivery** is undone by a receipt of the same quantity at the delivery's value
///   (Dr stock / Cr cost of goods sold): exact.
/// * A **receipt** is undone by a delivery of the same quantity from the same warehouse,
///   valued like any delivery (FIFO: the oldest layers; moving average: the average).
///   Its entry debits the receipt's credit account at the receipt's value, so goods
///   received not invoiced (or the supplier) is cleared exactly, credits stock at what
///   the delivery took, and charges any difference to cost of goods sold. This is a
///   first version: returning the very layer received would need the domain to issue a
///   chosen layer.
/// * Transfers and adjustments are refused here: enter a transfer back or another
///   count adjustment.
pub async fn cancel_move(
    kernel: &Kernel,
    who: &Principal,
    id: u64,
    date: Date,
) -> Result<Moved, KernelError> {
    kernel.authorize(who, &STOCK_MOVE, Action::Create)?;
    kernel.authorize(who, &JOURNAL_ENTRY, Action::Create)?;
    kernel
        .command(&LEDGER, who, move |cmd| {
            let original = cmd.fetch::<StockMoveRecord>(id)?;
            let number = original.number.clone();
            if original.status == MoveStatus::Cancelled {
                return Err(KernelError::Conflict(format!(
                    "{number} is already cancelled"
                )));
            }
            if original.reverses.is_some() {
                return Err(KernelError::Conflict(format!(
                    "{number} is itself a reverse move; enter a new move instead"
                )));
            }
            if date < original.date {
                return Err(KernelError::invalid(
                    "date",
                    format!(
                        "the reverse move cannot be dated before {number} ({})",
                        original.date
                    ),
                ));
            }
            let (item, warehouse, value) = (original.item, original.warehouse, original.value);
            let qty = Quantity::parse(&original.qty).map_err(refuse)?;
            let (kind, booking) = match original.kind {
                MoveType::Delivery => {
                    let cogs = cmd.fetch::<StockItemRecord>(item)?.cogs_account;
                    let booking = Booking {
                        counter: Some(cogs),
                        undo_receipt: None,
                        reverses: Some(id),
                    };
                    (MoveType::Receipt, booking)
                }
                MoveType::Receipt => {
                    let credit = original.account.ok_or_else(|| {
                        KernelError::Internal(format!("{number} has no credit account"))
                    })?;
                    let booking = Booking {
                        counter: Some(credit),
                        undo_receipt: Some((credit, value)),
                        reverses: Some(id),
                    };
                    (MoveType::Delivery, booking)
                }
                MoveType::Transfer | MoveType::Adjustment => {
                    return Err(KernelError::Conflict(format!(
                        "{number} is a {}: undo it with a transfer back or another count \
                         adjustment",
                        original.kind.name().to_lowercase()
                    )));
                }
            };
            let input = MoveInput {
                kind,
                date,
                item,
                warehouse,
                to_warehouse: None,
                qty,
                unit: String::new(),
                cost: (kind == MoveType::Receipt).then_some(value),
                account: None,
                reference: format!("Cancels {number}"),
                document: None,
            };
            let moved = apply(cmd, &input, &booking)?;
            cmd.modify(id, |m: &mut StockMoveRecord| {
                m.status = MoveStatus::Cancelled;
                m.reversed_by = Some(moved.record.id);
            })?;
            Ok(moved)
        })
        .await
}

// ---------------------------------------------------------------- reads

/// The principal's company's whole stock: items, warehouses, positions and policy.
pub fn stock(kernel: &Kernel, who: &Principal) -> Result<Stock, KernelError> {
    kernel.authorize(who, &STOCK_ITEM, Action::Read)?;
    let company = kernel.read::<Company>(who, who.company)?;
    let currency = company_currency(&company)?;
    let mut stock = Stock::new(currency);
    stock.negative_stock = negative_stock(kernel, who)?;
    for rec in Row::<StockItemRecord>::all(&kernel.list(who, &STOCK_ITEM, &all())?.rows)? {
        stock
            .add_item(item_of(&rec)?)
            .map_err(|e| KernelError::Internal(e.to_string()))?;
    }
    for rec in Row::<WarehouseRecord>::all(&kernel.list(who, &WAREHOUSE, &all())?.rows)? {
        stock
            .add_warehouse(warehouse_of(&rec))
            .map_err(|e| KernelError::Internal(e.to_string()))?;
    }
    let prefix = company_key(b's', who.company);
    let end = prefix_end(&prefix).unwrap_or_default();
    let mut damaged = None;
    kernel
        .module_state(&LEDGER)?
        .scan(prefix.as_slice()..end.as_slice(), false, |k, v| {
            let ids = (
                k.get(9..17).and_then(decode_u64),
                k.get(17..25).and_then(decode_u64),
            );
            let decoded = match ids {
                (Some(i), Some(w)) => decode_position(v, i, w, currency),
                _ => Err(KernelError::Internal(
                    "a stock position key is damaged".into(),
                )),
            };
            match decoded {
                Ok(p) => {
                    stock.positions.insert((p.item, p.warehouse), p);
                    ControlFlow::Continue(())
                }
                Err(e) => {
                    damaged = Some(e);
                    ControlFlow::Break(())
                }
            }
        })?;
    match damaged {
        Some(e) => Err(e),
        None => Ok(stock),
    }
}

/// Item `item`'s moves in the order they were entered, as records and as the domain's
/// moves (for [`Stock::stock_card`]).
pub fn moves(
    kernel: &Kernel,
    who: &Principal,
    item: u64,
    currency: Currency,
) -> Result<Vec<(Row<StockMoveRecord>, StockMove)>, KernelError> {
    let query = ListQuery {
        filters: vec![("item".into(), item.to_string())],
        limit: usize::MAX,
        ..Default::default()
    };
    let mut rows = Row::<StockMoveRecord>::all(&kernel.list(who, &STOCK_MOVE, &query)?.rows)?;
    rows.sort_by_key(|r| r.id);
    rows.into_iter()
        .map(|r| {
            let m = move_of(&r, currency)?;
            Ok((r, m))
        })
        .collect()
}

/// One stock account: the value of the positions of the items kept in it, and its
/// balance in the books (all postings, debit positive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reconciliation {
    /// The stock account.
    pub account: Account,
    /// The value of the stock kept in it, from the positions.
    pub valuation: i64,
    /// Its balance from the maintained totals.
    pub ledger: i64,
}

/// The stock and, for each stock account its items use, the valuation beside the
/// account's balance. They agree when every posting to the account came from moves.
pub fn valuation(
    kernel: &Kernel,
    who: &Principal,
) -> Result<(Stock, Vec<Reconciliation>), KernelError> {
    valuation_at(kernel, who, None)
}

/// The stock as it stood at the end of `as_of` (now, when `None`), and each stock
/// account's balance then. A past date sums the moves dated up to it (each at the value
/// it was entered with, as its journal entry was), so it agrees with the ledger at that
/// date when every posting to the account came from moves.
pub fn valuation_at(
    kernel: &Kernel,
    who: &Principal,
    as_of: Option<Date>,
) -> Result<(Stock, Vec<Reconciliation>), KernelError> {
    let mut stock = stock(kernel, who)?;
    let chart = books::chart(kernel, who)?;
    let totals = books::totals(kernel, who, chart.currency())?;
    if let Some(day) = as_of {
        stock.positions.clear();
        let overflow = || KernelError::Internal("the stock value is too large".into());
        for rec in Row::<StockMoveRecord>::all(&kernel.list(who, &STOCK_MOVE, &all())?.rows)? {
            if rec.date > day {
                continue;
            }
            let mv = move_of(&rec, stock.currency)?;
            for effect in mv
                .effects()
                .map_err(|e| KernelError::Internal(e.to_string()))?
            {
                let position = stock
                    .positions
                    .entry((mv.item, effect.warehouse))
                    .or_insert_with(|| Position {
                        item: mv.item,
                        warehouse: effect.warehouse,
                        qty: Quantity::ZERO,
                        value: Money::zero(stock.currency),
                        layers: Default::default(),
                        last_cost: None,
                    });
                position.qty = position
                    .qty
                    .checked_add(effect.qty)
                    .map_err(|_| overflow())?;
                position.value = position
                    .value
                    .checked_add(effect.value)
                    .map_err(|_| overflow())?;
            }
        }
    }
    let mut by_account: BTreeMap<u64, i64> = BTreeMap::new();
    for rec in Row::<StockItemRecord>::all(&kernel.list(who, &STOCK_ITEM, &all())?.rows)? {
        let account = rec.stock_account;
        let value = stock
            .positions
            .values()
            .filter(|p| p.item == rec.id)
            .try_fold(0i64, |sum, p| sum.checked_add(p.value.minor()))
            .ok_or_else(|| KernelError::Internal("the stock value is too large".into()))?;
        let entry = by_account.entry(account).or_insert(0);
        *entry = entry.saturating_add(value);
    }
    let mut out = Vec::with_capacity(by_account.len());
    for (account, valuation) in by_account {
        let Some(acc) = chart.get(account).cloned() else {
            continue;
        };
        let ledger = match as_of {
            Some(day) => {
                books::general_ledger(kernel, who, account, PeriodKey::MIN.first_day(), day)?
                    .closing
            }
            None => {
                let mut balance: i64 = 0;
                for (a, _, t) in totals.iter() {
                    if a == account {
                        let all = t.all().map_err(|e| KernelError::Internal(e.to_string()))?;
                        balance = balance.saturating_add(all.debit).saturating_sub(all.credit);
                    }
                }
                balance
            }
        };
        out.push(Reconciliation {
            account: acc,
            valuation,
            ledger,
        });
    }
    Ok((stock, out))
}

// ---------------------------------------------------------------- demo

/// The demo company's stock: three items (FIFO and moving average), a main and a
/// second warehouse, and a year of receipts and deliveries from `first` with one
/// transfer and one count adjustment, all through [`record_move`]. Posts before the
/// demo's fiscal years are closed. Returns how many moves it entered.
pub async fn seed_demo(
    kernel: &Kernel,
    who: &Principal,
    first: Date,
) -> Result<usize, KernelError> {
    let warehouse = |code: &str, name: &str| {
        nexus_kernel::Input::Form(vec![
            ("code".to_owned(), code.to_owned()),
            ("name".to_owned(), name.to_owned()),
        ])
    };
    let main = kernel
        .create(who, &WAREHOUSE, warehouse("MAIN", "Main warehouse"))
        .await?
        .id;
    let west = kernel
        .create(who, &WAREHOUSE, warehouse("WEST", "West depot"))
        .await?
        .id;
    let item = |code: &str, name: &str, unit: &str, decimals: u8, units: &str, method| ItemInput {
        code: code.to_owned(),
        name: name.to_owned(),
        base_unit: unit.to_owned(),
        decimals,
        units: units.to_owned(),
        method,
        negative_stock: None,
        stock_account: None,
        cogs_account: None,
    };
    let widget = save_item(
        kernel,
        who,
        None,
        item("W-100", "Widget", "pcs", 0, "box=12", ValuationMethod::Fifo),
    )
    .await?
    .id;
    let gadget = save_item(
        kernel,
        who,
        None,
        item(
            "G-200",
            "Gadget",
            "pcs",
            0,
            "",
            ValuationMethod::MovingAverage,
        ),
    )
    .await?
    .id;
    let cable = save_item(
        kernel,
        who,
        None,
        item(
            "C-300",
            "Copper cable",
            "m",
            1,
            "reel=100",
            ValuationMethod::Fifo,
        ),
    )
    .await?
    .id;
    let mut n = 0;
    let mut go = |kind, date, item, warehouse, qty: i64, unit: &str, cost, reference: String| {
        n += 1;
        MoveInput {
            kind,
            date,
            item,
            warehouse,
            to_warehouse: (kind == MoveType::Transfer).then_some(west),
            qty: Quantity::from_thousandths(qty * 1000),
            unit: unit.to_owned(),
            cost,
            account: None,
            reference,
            document: None,
        }
    };
    let mut moves = Vec::new();
    for m in 0..12i64 {
        let start = month_after(first, m)?;
        let day = |d: i64| start + time::Duration::days(d);
        let po = format!("PO-{:04}", m + 1);
        // Prices creep up through the year, so FIFO and the average differ.
        moves.push(go(
            MoveType::Receipt,
            day(1),
            widget,
            main,
            12,
            "box",
            Some(144 * (1000 + 10 * m)),
            po.clone(),
        ));
        moves.push(go(
            MoveType::Receipt,
            day(1),
            gadget,
            main,
            40,
            "pcs",
            Some(40 * (2500 + 50 * m)),
            po.clone(),
        ));
        if m % 3 == 0 {
            moves.push(go(
                MoveType::Receipt,
                day(2),
                cable,
                main,
                5,
                "reel",
                Some(500 * (180 + 3 * m)),
                po.clone(),
            ));
        }
        for (s, d) in [(1, 8), (2, 16), (3, 24)] {
            let dn = format!("DN-{:02}{s:02}", m + 1);
            moves.push(go(
                MoveType::Delivery,
                day(d),
                widget,
                main,
                30 + 5 * s,
                "pcs",
                None,
                dn.clone(),
            ));
            moves.push(go(
                MoveType::Delivery,
                day(d),
                gadget,
                main,
                10 + s,
                "pcs",
                None,
                dn.clone(),
            ));
            if m % 3 == s - 1 {
                moves.push(go(
                    MoveType::Delivery,
                    day(d),
                    cable,
                    main,
                    120,
                    "m",
                    None,
                    dn,
                ));
            }
        }
        if m == 5 {
            moves.push(go(
                MoveType::Transfer,
                day(20),
                widget,
                main,
                4,
                "box",
                None,
                "TR-0001".into(),
            ));
        }
        if m == 9 {
            moves.push(go(
                MoveType::Adjustment,
                day(27),
                gadget,
                main,
                -3,
                "pcs",
                None,
                "COUNT-0001".into(),
            ));
        }
    }
    let count = n;
    for mv in moves {
        record_move(kernel, who, mv).await?;
    }
    Ok(count)
}

/// The first day of the month `months` after `first`'s.
fn month_after(first: Date, months: i64) -> Result<Date, KernelError> {
    let index = i64::from(first.year()) * 12 + i64::from(u8::from(first.month())) - 1 + months;
    let (year, month) = (index.div_euclid(12), index.rem_euclid(12) + 1);
    i32::try_from(year)
        .ok()
        .zip(
            u8::try_from(month)
                .ok()
                .and_then(|m| time::Month::try_from(m).ok()),
        )
        .and_then(|(y, m)| Date::from_calendar_date(y, m, 1).ok())
        .ok_or_else(|| KernelError::Internal(format!("no month {months} after {first}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_round_trip_through_their_encoding() {
        let usd = Currency::USD;
        let layer = |q: i64, v: i64| Layer {
            qty: Quantity::from_thousandths(q),
            value: Money::new(v, usd),
        };
        let p = Position {
            item: 7,
            warehouse: 9,
            qty: Quantity::from_thousandths(15_500),
            value: Money::new(16_050, usd),
            layers: VecDeque::from([layer(10_000, 10_000), layer(5_500, 6_050)]),
            last_cost: Some(layer(5_500, 6_050)),
        };
        assert_eq!(decode_position(&encode_position(&p), 7, 9, usd).unwrap(), p);
        let empty = Position {
            layers: VecDeque::new(),
            last_cost: None,
            ..p.clone()
        };
        assert_eq!(
            decode_position(&encode_position(&empty), 7, 9, usd).unwrap(),
            empty
        );
        assert!(decode_position(&[1, 2, 3], 7, 9, usd).is_err());
        let mut long = encode_position(&p);
        long.push(0);
        assert!(decode_position(&long, 7, 9, usd).is_err());
    }

    #[test]
    fn units_parse_and_print() {
        let units = parse_units(" box = 12, pallet=480 ").unwrap();
        assert_eq!(format_units(&units), "box=12, pallet=480");
        assert!(parse_units("").unwrap().is_empty());
        let bad = format!("{:?}", parse_units("box 12"));
        assert!(bad.contains("box=12"), "{bad}");
    }

    #[test]
    fn move_types_have_stored_names() {
        for t in [
            MoveType::Receipt,
            MoveType::Delivery,
            MoveType::Transfer,
            MoveType::Adjustment,
        ] {
            assert_eq!(MoveType::parse(&t.name().to_lowercase()), Some(t));
        }
        assert_eq!(MoveType::parse("gift"), None);
    }
}
