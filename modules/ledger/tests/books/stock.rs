//! Inventory on a real store: moves valued by FIFO and moving average through the
//! store commands, their journal entries and the stock account's balance, refusals that
//! change nothing, the valuation method locked by moves, and positions that survive a
//! restart.

use std::sync::Arc;

use nexus_kernel::{Input, Kernel, KernelError, ListQuery, ManualClock, Principal, Row};
use nexus_ledger::books;
use nexus_ledger::entities::{JOURNAL_LINE, JournalLineRecord};
use nexus_ledger::stock::books::{
    self as stock_books, ItemInput, MoveInput, MoveType, Reconciliation, cancel_move, record_move,
    save_item,
};
use nexus_ledger::stock::entities::{STOCK_ITEM, STOCK_MOVE, WAREHOUSE};
use nexus_ledger::stock::{NegativeStockPolicy, Quantity, ValuationMethod};
use nexus_store::Store;
use time::Date;
use time::macros::{date, datetime};

use super::{message, open, tb};

const DAY: Date = date!(2026 - 10 - 05);

struct Shop {
    main: u64,
    west: u64,
    stock_account: u64,
    cogs: u64,
    goods_received: u64,
}

async fn shop(kernel: &Kernel, who: &Principal) -> Shop {
    books::install_chart(kernel, who).await.expect("chart");
    let chart = books::chart(kernel, who).expect("chart");
    let warehouse = |code: &str, name: &str| {
        Input::Form(vec![
            ("code".into(), code.into()),
            ("name".into(), name.into()),
        ])
    };
    let main = kernel
        .create(who, &WAREHOUSE, warehouse("MAIN", "Main warehouse"))
        .await
        .expect("main")
        .id;
    let west = kernel
        .create(who, &WAREHOUSE, warehouse("WEST", "West depot"))
        .await
        .expect("west")
        .id;
    let id = |code: &str| chart.by_code(code).expect(code).id;
    Shop {
        main,
        west,
        stock_account: id("1300"),
        cogs: id("5100"),
        goods_received: id("2130"),
    }
}

fn item(code: &str, name: &str, method: ValuationMethod) -> ItemInput {
    ItemInput {
        code: code.into(),
        name: name.into(),
        base_unit: "pcs".into(),
        decimals: 0,
        units: "box=12".into(),
        method,
        negative_stock: None,
        stock_account: None,
        cogs_account: None,
    }
}

fn qty(text: &str) -> Quantity {
    Quantity::parse(text).expect("quantity")
}

fn mv(kind: MoveType, item: u64, warehouse: u64, q: &str, unit: &str) -> MoveInput {
    MoveInput {
        kind,
        date: DAY,
        item,
        warehouse,
        to_warehouse: None,
        qty: qty(q),
        unit: unit.into(),
        cost: None,
        account: None,
        reference: String::new(),
        document: None,
    }
}

fn receipt(item: u64, warehouse: u64, q: &str, unit: &str, cost: i64) -> MoveInput {
    MoveInput {
        cost: Some(cost),
        reference: "PO-1".into(),
        ..mv(MoveType::Receipt, item, warehouse, q, unit)
    }
}

/// The entry's lines as (account, debit − credit), in order.
fn lines(kernel: &Kernel, who: &Principal, entry: u64) -> Vec<(u64, i64)> {
    let rows = kernel
        .list(
            who,
            &JOURNAL_LINE,
            &ListQuery {
                filters: vec![("entry".into(), entry.to_string())],
                limit: 100,
                ..Default::default()
            },
        )
        .expect("lines")
        .rows;
    let mut rows = Row::<JournalLineRecord>::all(&rows).expect("typed lines");
    rows.sort_by_key(|r| r.line);
    rows.iter()
        .map(|r| (r.account, r.debit.unwrap_or(0) - r.credit.unwrap_or(0)))
        .collect()
}

/// The one stock account's reconciliation.
fn reconciliation(kernel: &Kernel, who: &Principal) -> Reconciliation {
    let (_, rows) = stock_books::valuation(kernel, who).expect("valuation");
    assert_eq!(rows.len(), 1, "{rows:?}");
    rows.into_iter().next().expect("one")
}

fn on_hand(kernel: &Kernel, who: &Principal, item: u64, warehouse: u64) -> (i64, i64) {
    let stock = stock_books::stock(kernel, who).expect("stock");
    stock
        .position(item, warehouse)
        .map_or((0, 0), |p| (p.qty.thousandths() / 1000, p.value.minor()))
}

fn move_count(kernel: &Kernel, who: &Principal) -> u64 {
    kernel
        .list(who, &STOCK_MOVE, &ListQuery::default())
        .expect("moves")
        .total
}

#[tokio::test]
async fn fifo_through_the_store_posts_its_entries_and_survives_a_restart() {
    let (dir, kernel, company) = open().await;
    let who = Principal::system(company);
    let s = shop(&kernel, &who).await;
    let widget = save_item(
        &kernel,
        &who,
        None,
        item("W-100", "Widget", ValuationMethod::Fifo),
    )
    .await
    .expect("item")
    .id;

    // The textbook: 100 pcs at 10.00, five boxes of 12 at 12.00 a piece, then 120 out:
    // all of the first layer and 20 of the second.
    let first = record_move(
        &kernel,
        &who,
        receipt(widget, s.main, "100", "pcs", 100_000),
    )
    .await
    .expect("receipt");
    let entry = first.entry.as_ref().expect("an entry").id;
    assert_eq!(
        lines(&kernel, &who, entry),
        vec![(s.stock_account, 100_000), (s.goods_received, -100_000)],
        "Dr stock / Cr goods received not invoiced"
    );
    assert_eq!(first.record.entry, Some(entry), "the move names its entry");
    record_move(&kernel, &who, receipt(widget, s.main, "5", "box", 72_000))
        .await
        .expect("receipt in boxes");
    let sale = record_move(
        &kernel,
        &who,
        MoveInput {
            reference: "DN-1".into(),
            ..mv(MoveType::Delivery, widget, s.main, "120", "pcs")
        },
    )
    .await
    .expect("delivery");
    assert_eq!(
        sale.valuation.value.minor(),
        124_000,
        "100 × 10.00 + 20 × 12.00"
    );
    assert_eq!(sale.record.qty, "120");
    let entry = sale.entry.as_ref().expect("an entry").id;
    assert_eq!(
        lines(&kernel, &who, entry),
        vec![(s.cogs, 124_000), (s.stock_account, -124_000)],
        "Dr cost of goods sold / Cr stock"
    );
    assert_eq!(on_hand(&kernel, &who, widget, s.main), (40, 48_000));
    let r = reconciliation(&kernel, &who);
    assert_eq!(r.account.code, "1300");
    assert_eq!(
        (r.valuation, r.ledger),
        (48_000, 48_000),
        "the stock account agrees"
    );

    // Restart: the positions (with their FIFO layers) come back from the file.
    let before = stock_books::stock(&kernel, &who).expect("stock");
    drop(kernel);
    let store = Store::open(&dir.path().join("nexus.redb")).expect("reopen");
    let kernel = Kernel::new(
        store,
        Arc::new(ManualClock::new(datetime!(2026-11-23 09:00 UTC))),
    );
    assert_eq!(stock_books::stock(&kernel, &who).expect("stock"), before);
    let rest = record_move(
        &kernel,
        &who,
        mv(MoveType::Delivery, widget, s.main, "40", "pcs"),
    )
    .await
    .expect("the rest");
    assert_eq!(
        rest.valuation.value.minor(),
        48_000,
        "the remaining layer at 12.00"
    );
    assert_eq!(on_hand(&kernel, &who, widget, s.main), (0, 0));
    let r = reconciliation(&kernel, &who);
    assert_eq!((r.valuation, r.ledger), (0, 0));

    // Cancelling the delivery brings the goods back at the value they left with.
    let back = cancel_move(&kernel, &who, rest.record.id, DAY)
        .await
        .expect("cancel");
    assert_eq!(back.record.kind, MoveType::Receipt);
    assert_eq!(back.valuation.value.minor(), 48_000);
    assert_eq!(
        lines(&kernel, &who, back.entry.as_ref().expect("entry").id),
        vec![(s.stock_account, 48_000), (s.cogs, -48_000)]
    );
    let again = cancel_move(&kernel, &who, rest.record.id, DAY)
        .await
        .expect_err("once");
    assert!(
        message(&again).contains("already cancelled"),
        "{}",
        message(&again)
    );
    let r = reconciliation(&kernel, &who);
    assert_eq!((r.valuation, r.ledger), (48_000, 48_000));
}

#[tokio::test]
async fn moving_average_transfer_and_count_adjustment_keep_the_books_in_step() {
    let (_dir, kernel, company) = open().await;
    let who = Principal::system(company);
    let s = shop(&kernel, &who).await;
    let gadget = save_item(
        &kernel,
        &who,
        None,
        item("G-200", "Gadget", ValuationMethod::MovingAverage),
    )
    .await
    .expect("item")
    .id;
    record_move(&kernel, &who, receipt(gadget, s.main, "10", "pcs", 10_000))
        .await
        .expect("receipt");
    record_move(&kernel, &who, receipt(gadget, s.main, "10", "pcs", 13_000))
        .await
        .expect("receipt");
    let out = record_move(
        &kernel,
        &who,
        mv(MoveType::Delivery, gadget, s.main, "5", "pcs"),
    )
    .await
    .expect("delivery");
    assert_eq!(
        out.valuation.value.minor(),
        5_750,
        "5 at the average of 11.50"
    );

    let transfer = record_move(
        &kernel,
        &who,
        MoveInput {
            to_warehouse: Some(s.west),
            ..mv(MoveType::Transfer, gadget, s.main, "5", "pcs")
        },
    )
    .await
    .expect("transfer");
    assert!(
        transfer.entry.is_none(),
        "one stock account: nothing to post"
    );
    assert_eq!(on_hand(&kernel, &who, gadget, s.main), (10, 11_500));
    assert_eq!(on_hand(&kernel, &who, gadget, s.west), (5, 5_750));

    // The count finds one missing in the west, and two more in the main warehouse.
    let short = record_move(
        &kernel,
        &who,
        mv(MoveType::Adjustment, gadget, s.west, "-1", "pcs"),
    )
    .await
    .expect("decrease");
    assert_eq!(
        lines(&kernel, &who, short.entry.as_ref().expect("entry").id),
        vec![(s.stock_account, -1_150), (s.cogs, 1_150)]
    );
    let found = record_move(
        &kernel,
        &who,
        MoveInput {
            cost: Some(1_200),
            ..mv(MoveType::Adjustment, gadget, s.main, "2", "pcs")
        },
    )
    .await
    .expect("increase");
    assert_eq!(found.valuation.value.minor(), 2_400);
    assert_eq!(on_hand(&kernel, &who, gadget, s.main), (12, 13_900));
    assert_eq!(on_hand(&kernel, &who, gadget, s.west), (4, 4_600));
    let r = reconciliation(&kernel, &who);
    assert_eq!((r.valuation, r.ledger), (18_500, 18_500));

    // The stock card runs over both warehouses in the order the moves were entered.
    let stock = stock_books::stock(&kernel, &who).expect("stock");
    let moves: Vec<_> = stock_books::moves(&kernel, &who, gadget, stock.currency)
        .expect("moves")
        .into_iter()
        .map(|(_, m)| m)
        .collect();
    let card = stock.stock_card(&moves, gadget, None).expect("card");
    let last = card.last().expect("rows");
    assert_eq!(
        (last.running_qty, last.running_value.minor()),
        (qty("16"), 18_500)
    );
    assert_eq!(card.len(), 7, "a transfer shows out and in");
}

#[tokio::test]
async fn refusals_change_nothing_and_moves_lock_the_valuation_method() {
    let (_dir, kernel, company) = open().await;
    let who = Principal::system(company);
    let s = shop(&kernel, &who).await;
    let widget = save_item(
        &kernel,
        &who,
        None,
        item("W-100", "Widget", ValuationMethod::Fifo),
    )
    .await
    .expect("item")
    .id;
    // Before any move the method may still change.
    save_item(
        &kernel,
        &who,
        Some(widget),
        item("W-100", "Widget", ValuationMethod::MovingAverage),
    )
    .await
    .expect("no moves yet");
    save_item(
        &kernel,
        &who,
        Some(widget),
        item("W-100", "Widget", ValuationMethod::Fifo),
    )
    .await
    .expect("and back");
    record_move(&kernel, &who, receipt(widget, s.main, "3", "pcs", 3_000))
        .await
        .expect("receipt");

    let stock_before = stock_books::stock(&kernel, &who).expect("stock");
    let (_, tb_before) = tb(&kernel, &who);
    let moves_before = move_count(&kernel, &who);
    let cases: Vec<(MoveInput, &str)> = vec![
        (
            mv(MoveType::Delivery, widget, s.main, "5", "pcs"),
            "only 3 pcs of W-100 Widget on hand in Main warehouse; cannot deliver 5 pcs",
        ),
        (
            mv(MoveType::Delivery, widget, s.west, "1", "box"),
            "no W-100 Widget on hand in West depot; cannot deliver 12 pcs",
        ),
        (
            MoveInput {
                to_warehouse: Some(s.west),
                ..mv(MoveType::Transfer, widget, s.main, "4", "pcs")
            },
            "cannot transfer 4 pcs",
        ),
        (
            mv(MoveType::Adjustment, widget, s.main, "-4", "pcs"),
            "cannot write off 4 pcs",
        ),
        (
            mv(MoveType::Delivery, widget, s.main, "1.5", "pcs"),
            "too many decimals",
        ),
        (
            mv(MoveType::Delivery, widget, s.main, "1", "crate"),
            "use one of its units",
        ),
        (
            mv(MoveType::Delivery, widget, s.main, "0", "pcs"),
            "above zero",
        ),
        (mv(MoveType::Receipt, widget, s.main, "1", "pcs"), "cost"),
        (
            mv(MoveType::Delivery, 999_999, s.main, "1", "pcs"),
            "no item",
        ),
        (
            mv(MoveType::Delivery, widget, 999_999, "1", "pcs"),
            "no warehouse",
        ),
        (
            MoveInput {
                to_warehouse: Some(s.main),
                ..mv(MoveType::Transfer, widget, s.main, "1", "pcs")
            },
            "two different warehouses",
        ),
    ];
    for (input, expected) in cases {
        let e = record_move(&kernel, &who, input)
            .await
            .expect_err("refused");
        let m = message(&e);
        assert!(m.contains(expected), "expected {expected:?} in: {m}");
    }
    // A date the books are locked on is refused too, even for a move without an entry.
    books::set_lock_date(&kernel, &who, date!(2026 - 10 - 31))
        .await
        .expect("lock");
    let e = record_move(
        &kernel,
        &who,
        MoveInput {
            to_warehouse: Some(s.west),
            ..mv(MoveType::Transfer, widget, s.main, "1", "pcs")
        },
    )
    .await
    .expect_err("locked");
    assert!(
        message(&e).contains("locked up to 2026-10-31"),
        "{}",
        message(&e)
    );
    assert_eq!(
        stock_books::stock(&kernel, &who).expect("stock"),
        stock_before,
        "refusals changed the positions"
    );
    assert_eq!(
        tb(&kernel, &who).1,
        tb_before,
        "refusals changed the totals"
    );
    assert_eq!(
        move_count(&kernel, &who),
        moves_before,
        "refusals wrote moves"
    );

    // With moves, the method, the base unit and the stock account are fixed; the name
    // is not.
    let e = save_item(
        &kernel,
        &who,
        Some(widget),
        item("W-100", "Widget", ValuationMethod::MovingAverage),
    )
    .await
    .expect_err("locked method");
    assert!(
        message(&e).contains("method: W-100 Widget already has stock moves valued by FIFO"),
        "{}",
        message(&e)
    );
    let e = save_item(
        &kernel,
        &who,
        Some(widget),
        ItemInput {
            base_unit: "kg".into(),
            ..item("W-100", "Widget", ValuationMethod::Fifo)
        },
    )
    .await
    .expect_err("locked unit");
    assert!(
        message(&e).contains("base unit cannot change"),
        "{}",
        message(&e)
    );
    let renamed = save_item(
        &kernel,
        &who,
        Some(widget),
        item("W-100", "Blue widget", ValuationMethod::Fifo),
    )
    .await
    .expect("rename");
    assert_eq!(renamed.name, "Blue widget");
    // The generic record service cannot touch items or moves.
    let e = kernel
        .update(
            &who,
            &STOCK_ITEM,
            widget,
            renamed.version,
            Input::Form(vec![("method".into(), "Moving average".into())]),
        )
        .await
        .expect_err("module only");
    assert!(matches!(e, KernelError::Conflict(_)), "{e}");
    assert!(e.to_string().contains("Ledger → Stock"), "{e}");
    // A warehouse with moves cannot be deleted.
    let e = kernel
        .delete(&who, &WAREHOUSE, s.main, None)
        .await
        .expect_err("in use");
    assert!(e.to_string().contains("stock moves still refer"), "{e}");

    // The company may allow negative stock; it is then issued at the last cost.
    stock_books::set_negative_stock(&kernel, &who, NegativeStockPolicy::Allow)
        .await
        .expect("allow");
    let mut over = mv(MoveType::Delivery, widget, s.main, "5", "pcs");
    over.date = date!(2026 - 11 - 02);
    let out = record_move(&kernel, &who, over).await.expect("allowed");
    assert_eq!(out.valuation.value.minor(), 5_000);
    assert_eq!(on_hand(&kernel, &who, widget, s.main), (-2, -2_000));
    let r = reconciliation(&kernel, &who);
    assert_eq!((r.valuation, r.ledger), (-2_000, -2_000));
}
