//! Textbook cases worked on paper, every refused input with its message, and seeded
//! random sequences that check the invariants of the module docs.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use time::Date;
use time::macros::date;

use super::*;
use crate::{Account, AccountType, Chart, JournalEntry, PostedEntry, small_firm_accounts};

const USD: Currency = Currency::USD;
const DAY: Date = date!(2024 - 03 - 01);
const MAIN: u64 = 1;
const SHOP: u64 = 2;
const DEPOT: u64 = 3;
const WIDGET: u64 = 7;
const FLOUR: u64 = 8;

fn q(text: &str) -> Quantity {
    Quantity::parse(text).unwrap()
}

fn usd(text: &str) -> Money {
    Money::parse(text, USD).unwrap()
}

/// Main warehouse, Shop and Depot; ITEM-7 Widget counted in whole pcs (box = 12 pcs),
/// FLOUR Flour in kg with 3 decimals (bag = 25 kg, whole bags only).
fn stock(method: ValuationMethod) -> Stock {
    let mut stock = Stock::new(USD);
    for (id, code, name) in [
        (MAIN, "MAIN", "Main warehouse"),
        (SHOP, "SHOP", "Shop"),
        (DEPOT, "DEP", "Depot"),
    ] {
        stock.add_warehouse(Warehouse::new(id, code, name)).unwrap();
    }
    let widget = Item::new(WIDGET, "ITEM-7", "Widget", Unit::new("pcs", 0), method)
        .with_unit(Unit::new("box", 0), 12);
    let flour = Item::new(FLOUR, "FLOUR", "Flour", Unit::new("kg", 3), method)
        .with_unit(Unit::new("bag", 0), 25);
    stock.add_item(widget).unwrap();
    stock.add_item(flour).unwrap();
    stock
}

fn receipt(item: u64, warehouse: u64, qty: &str, unit: &str, cost: &str) -> Receipt {
    Receipt {
        id: 0,
        date: DAY,
        item,
        warehouse,
        qty: q(qty),
        unit: unit.to_owned(),
        cost: usd(cost),
        reference: "GRN-1".to_owned(),
    }
}

fn delivery(item: u64, warehouse: u64, qty: &str, unit: &str) -> Delivery {
    Delivery {
        id: 0,
        date: DAY,
        item,
        warehouse,
        qty: q(qty),
        unit: unit.to_owned(),
        reference: "DN-1".to_owned(),
    }
}

fn transfer(item: u64, from: u64, to: u64, qty: &str, unit: &str) -> Transfer {
    Transfer {
        id: 0,
        date: DAY,
        item,
        from,
        to,
        qty: q(qty),
        unit: unit.to_owned(),
        reference: "TR-1".to_owned(),
    }
}

fn adjustment(item: u64, warehouse: u64, qty: &str, unit: &str, cost: Option<&str>) -> Adjustment {
    Adjustment {
        id: 0,
        date: DAY,
        item,
        warehouse,
        qty: q(qty),
        unit: unit.to_owned(),
        unit_cost: cost.map(usd),
        reference: "COUNT-1".to_owned(),
    }
}

/// `(qty, value)` of a position, as text.
fn held(stock: &Stock, item: u64, warehouse: u64) -> (String, String) {
    let position = stock.position(item, warehouse).unwrap();
    (position.qty.to_string(), position.value.decimal())
}

fn layers(stock: &Stock, item: u64, warehouse: u64) -> Vec<(String, String)> {
    let position = stock.position(item, warehouse).unwrap();
    position
        .layers
        .iter()
        .map(|layer| (layer.qty.to_string(), layer.value.decimal()))
        .collect()
}

fn pair(qty: &str, value: &str) -> (String, String) {
    (qty.to_owned(), value.to_owned())
}

/// The move's entry, posted on the small-firm template; its lines as `(code, minor)`.
fn posted(stock: &Stock, record: &StockMove) -> Vec<(String, i64)> {
    let chart = Chart::small_firm_template(USD);
    let accounts = StockAccounts::small_firm(&chart).unwrap();
    match stock.journal_entry(record, &accounts, 1).unwrap() {
        None => Vec::new(),
        Some(entry) => entry_lines(
            &chart,
            PostedEntry::post(entry, &chart, None).unwrap().entry(),
        ),
    }
}

fn entry_lines(chart: &Chart, entry: &JournalEntry) -> Vec<(String, i64)> {
    entry
        .lines
        .iter()
        .map(|line| (chart.get(line.account).unwrap().code.clone(), line.amount))
        .collect()
}

fn lines(expected: &[(&str, i64)]) -> Vec<(String, i64)> {
    expected
        .iter()
        .map(|&(code, minor)| (code.to_owned(), minor))
        .collect()
}

// ---- textbook cases ----

#[test]
fn fifo_issues_cross_layers() {
    // Buy 10 @ 1.00 = 10.00, 10 @ 1.20 = 12.00, 5 @ 1.50 = 7.50: 25 pcs worth 29.50.
    // Sell 15: all of layer 1 (10.00) + 5 of layer 2 (5 × 1.20 = 6.00) = 16.00.
    // Left: 5 @ 1.20 = 6.00 and 5 @ 1.50 = 7.50, 10 pcs worth 13.50.
    // Sell 8: 5 @ 1.20 = 6.00 + 3 @ 1.50 = 4.50 → 10.50. Left 2 @ 1.50 = 3.00.
    let mut stock = stock(ValuationMethod::Fifo);
    let first = stock
        .receive(&receipt(WIDGET, MAIN, "10", "pcs", "10.00"))
        .unwrap();
    assert_eq!(
        posted(&stock, &first),
        lines(&[("1300", 1000), ("2110", -1000)])
    );
    stock
        .receive(&receipt(WIDGET, MAIN, "10", "pcs", "12.00"))
        .unwrap();
    stock
        .receive(&receipt(WIDGET, MAIN, "5", "pcs", "7.50"))
        .unwrap();
    assert_eq!(held(&stock, WIDGET, MAIN), pair("25", "29.50"));

    let sale = stock.deliver(&delivery(WIDGET, MAIN, "15", "pcs")).unwrap();
    assert_eq!(
        sale.valuation,
        Valuation {
            qty: q("15"),
            value: usd("16.00")
        }
    );
    assert_eq!(held(&stock, WIDGET, MAIN), pair("10", "13.50"));
    assert_eq!(
        layers(&stock, WIDGET, MAIN),
        vec![pair("5", "6.00"), pair("5", "7.50")]
    );
    assert_eq!(
        posted(&stock, &sale),
        lines(&[("5100", 1600), ("1300", -1600)])
    );

    let sale = stock.deliver(&delivery(WIDGET, MAIN, "8", "pcs")).unwrap();
    assert_eq!(sale.valuation.value, usd("10.50"));
    assert_eq!(layers(&stock, WIDGET, MAIN), vec![pair("2", "3.00")]);
    let entry = stock
        .journal_entry(
            &sale,
            &StockAccounts::small_firm(&Chart::small_firm_template(USD)).unwrap(),
            9,
        )
        .unwrap()
        .unwrap();
    assert_eq!(
        entry.narration,
        "Delivery of 8 pcs ITEM-7 Widget from Main warehouse"
    );
    assert_eq!(
        (entry.id, entry.reference.as_str(), entry.date),
        (9, "DN-1", DAY)
    );
}

#[test]
fn moving_average_recomputes_cost_on_each_receipt() {
    // Receive 10 @ 1.00 = 10.00: average 1.00.
    // Sell 4 → 4 × 1.00 = 4.00; left 6 worth 6.00.
    // Receive 6 @ 1.50 = 9.00 → 12 worth 15.00: average 1.25.
    // Sell 5 → 15.00 × 5/12 = 6.25; left 7 worth 8.75 (still 1.25).
    // Receive 3 @ 2.00 = 6.00 → 10 worth 14.75: average 1.475.
    // Sell 3 → 14.75 × 3/10 = 4.425 → 4.43 (half away from zero); left 7 worth 10.32.
    // Sell 7 → everything left: 10.32; 0 pcs worth exactly 0.00.
    let mut stock = stock(ValuationMethod::MovingAverage);
    let unit_cost = |stock: &Stock| stock.on_hand().unwrap()[0].unit_cost.map(Money::decimal);
    stock
        .receive(&receipt(WIDGET, MAIN, "10", "pcs", "10.00"))
        .unwrap();
    assert_eq!(unit_cost(&stock).as_deref(), Some("1.00"));
    let sale = stock.deliver(&delivery(WIDGET, MAIN, "4", "pcs")).unwrap();
    assert_eq!(sale.valuation.value, usd("4.00"));
    stock
        .receive(&receipt(WIDGET, MAIN, "6", "pcs", "9.00"))
        .unwrap();
    assert_eq!(held(&stock, WIDGET, MAIN), pair("12", "15.00"));
    assert_eq!(unit_cost(&stock).as_deref(), Some("1.25"));
    let sale = stock.deliver(&delivery(WIDGET, MAIN, "5", "pcs")).unwrap();
    assert_eq!(sale.valuation.value, usd("6.25"));
    assert_eq!(held(&stock, WIDGET, MAIN), pair("7", "8.75"));
    stock
        .receive(&receipt(WIDGET, MAIN, "3", "pcs", "6.00"))
        .unwrap();
    assert_eq!(held(&stock, WIDGET, MAIN), pair("10", "14.75"));
    assert_eq!(unit_cost(&stock).as_deref(), Some("1.48"));
    let sale = stock.deliver(&delivery(WIDGET, MAIN, "3", "pcs")).unwrap();
    assert_eq!(sale.valuation.value, usd("4.43"));
    assert_eq!(held(&stock, WIDGET, MAIN), pair("7", "10.32"));
    let sale = stock.deliver(&delivery(WIDGET, MAIN, "7", "pcs")).unwrap();
    assert_eq!(sale.valuation.value, usd("10.32"));
    assert_eq!(held(&stock, WIDGET, MAIN), pair("0", "0.00"));
    assert!(stock.position(WIDGET, MAIN).unwrap().layers.is_empty());
    assert_eq!(
        posted(&stock, &sale),
        lines(&[("5100", 1032), ("1300", -1032)])
    );
}

#[test]
fn transfer_then_issue_from_the_new_warehouse() {
    // FIFO. Main: 10 @ 1.00 = 10.00, 10 @ 1.20 = 12.00 (20 worth 22.00).
    // Transfer 15 to Shop: layer 1 whole (10.00) + 5 of layer 2 (6.00) = 16.00; the
    // layers travel: Shop holds 10 @ 1.00 and 5 @ 1.20; Main keeps 5 worth 6.00.
    // Total value 22.00 before and after.
    // Shop sells 12: 10.00 + 2 × 1.20 = 12.40; Shop keeps 3 worth 3.60.
    let mut stock = stock(ValuationMethod::Fifo);
    stock
        .receive(&receipt(WIDGET, MAIN, "10", "pcs", "10.00"))
        .unwrap();
    stock
        .receive(&receipt(WIDGET, MAIN, "10", "pcs", "12.00"))
        .unwrap();
    let moved = stock
        .transfer(&transfer(WIDGET, MAIN, SHOP, "15", "pcs"))
        .unwrap();
    assert_eq!(
        moved.valuation,
        Valuation {
            qty: q("15"),
            value: usd("16.00")
        }
    );
    assert_eq!(held(&stock, WIDGET, MAIN), pair("5", "6.00"));
    assert_eq!(
        layers(&stock, WIDGET, SHOP),
        vec![pair("10", "10.00"), pair("5", "6.00")]
    );
    assert_eq!(stock.totals().unwrap().value, usd("22.00"));
    // One stock account for both warehouses: nothing to post.
    assert_eq!(posted(&stock, &moved), Vec::new());
    let sale = stock.deliver(&delivery(WIDGET, SHOP, "12", "pcs")).unwrap();
    assert_eq!(sale.valuation.value, usd("12.40"));
    assert_eq!(held(&stock, WIDGET, SHOP), pair("3", "3.60"));

    // Moving average. Main: 10 @ 1.00 + 5 @ 1.30 = 15 worth 16.50 (1.10 each).
    // Transfer 6 → 6.60; Main keeps 9 worth 9.90. Shop receives 4 @ 1.50 = 6.00, so
    // 10 worth 12.60; Shop sells 5 → 6.30.
    let mut stock = self::stock(ValuationMethod::MovingAverage);
    stock
        .receive(&receipt(WIDGET, MAIN, "10", "pcs", "10.00"))
        .unwrap();
    stock
        .receive(&receipt(WIDGET, MAIN, "5", "pcs", "6.50"))
        .unwrap();
    let moved = stock
        .transfer(&transfer(WIDGET, MAIN, SHOP, "6", "pcs"))
        .unwrap();
    assert_eq!(moved.valuation.value, usd("6.60"));
    assert_eq!(held(&stock, WIDGET, MAIN), pair("9", "9.90"));
    stock
        .receive(&receipt(WIDGET, SHOP, "4", "pcs", "6.00"))
        .unwrap();
    let sale = stock.deliver(&delivery(WIDGET, SHOP, "5", "pcs")).unwrap();
    assert_eq!(sale.valuation.value, usd("6.30"));
    assert_eq!(held(&stock, WIDGET, SHOP), pair("5", "6.30"));
}

#[test]
fn transfer_between_two_stock_accounts_posts_an_entry() {
    // The shop keeps its stock in its own account 1310; the transfer of 16.00 moves it.
    let mut accounts = small_firm_accounts();
    let stock_account = accounts.iter().find(|a| a.code == "1300").unwrap().clone();
    accounts.push(Account {
        id: 500,
        code: "1310".to_owned(),
        name: "Stock in shop".to_owned(),
        ..stock_account
    });
    let chart = Chart::new(USD, accounts).unwrap();
    let mut stock = stock(ValuationMethod::Fifo);
    stock.warehouses.get_mut(&SHOP).unwrap().stock_account = Some(500);
    stock
        .receive(&receipt(WIDGET, MAIN, "10", "pcs", "10.00"))
        .unwrap();
    stock
        .receive(&receipt(WIDGET, MAIN, "10", "pcs", "12.00"))
        .unwrap();
    let moved = stock
        .transfer(&transfer(WIDGET, MAIN, SHOP, "15", "pcs"))
        .unwrap();
    let accounts = StockAccounts::small_firm(&chart).unwrap();
    let entry = stock.journal_entry(&moved, &accounts, 3).unwrap().unwrap();
    assert_eq!(
        entry.narration,
        "Transfer of 15 pcs ITEM-7 Widget from Main warehouse to Shop"
    );
    let entry = PostedEntry::post(entry, &chart, None).unwrap();
    assert_eq!(
        entry_lines(&chart, &entry),
        lines(&[("1310", 1600), ("1300", -1600)])
    );
    assert_eq!(chart.get(500).unwrap().kind, AccountType::Stock);
}

#[test]
fn count_adjustments() {
    // FIFO: 10 @ 1.00 and 10 @ 1.20 (20 worth 22.00). The count finds 17: adjust −3,
    // valued like an issue from the oldest layer: 3.00. Left 17 worth 19.00.
    // Then 2 more found, at the current unit cost: 19.00 × 2/17 = 2.2353 → 2.24.
    // Then 1 box found at 13.20 a box: 12 pcs worth 13.20. 31 pcs worth 34.44.
    let mut stock = stock(ValuationMethod::Fifo);
    stock
        .receive(&receipt(WIDGET, MAIN, "10", "pcs", "10.00"))
        .unwrap();
    stock
        .receive(&receipt(WIDGET, MAIN, "10", "pcs", "12.00"))
        .unwrap();
    let lost = stock
        .adjust(&adjustment(WIDGET, MAIN, "-3", "pcs", None))
        .unwrap();
    assert_eq!(
        lost.valuation,
        Valuation {
            qty: q("-3"),
            value: usd("-3.00")
        }
    );
    assert_eq!(held(&stock, WIDGET, MAIN), pair("17", "19.00"));
    assert_eq!(
        posted(&stock, &lost),
        lines(&[("1300", -300), ("5100", 300)])
    );

    let found = stock
        .adjust(&adjustment(WIDGET, MAIN, "2", "pcs", None))
        .unwrap();
    assert_eq!(
        found.valuation,
        Valuation {
            qty: q("2"),
            value: usd("2.24")
        }
    );
    assert_eq!(
        posted(&stock, &found),
        lines(&[("1300", 224), ("5100", -224)])
    );
    let boxed = stock
        .adjust(&adjustment(WIDGET, MAIN, "1", "box", Some("13.20")))
        .unwrap();
    assert_eq!(
        boxed.valuation,
        Valuation {
            qty: q("12"),
            value: usd("13.20")
        }
    );
    assert_eq!(held(&stock, WIDGET, MAIN), pair("31", "34.44"));
    // Layers: 7 @ 1.00 left of the first, 10 @ 1.20, 2 found, 1 box found.
    assert_eq!(layers(&stock, WIDGET, MAIN).len(), 4);

    // A warehouse emptied keeps its last known cost: 3 found after selling all 31 are
    // valued at the last incoming cost, 13.20 for 12 → 3.30.
    stock.deliver(&delivery(WIDGET, MAIN, "31", "pcs")).unwrap();
    assert_eq!(held(&stock, WIDGET, MAIN), pair("0", "0.00"));
    let found = stock
        .adjust(&adjustment(WIDGET, MAIN, "3", "pcs", None))
        .unwrap();
    assert_eq!(found.valuation.value, usd("3.30"));

    // Moving average: 8 kg of flour worth 10.00; count finds 7.5 kg: −0.5 kg →
    // 10.00 × 0.5/8 = 0.625 → 0.63; left 7.5 kg worth 9.37.
    let mut stock = self::stock(ValuationMethod::MovingAverage);
    stock
        .receive(&receipt(FLOUR, MAIN, "8", "kg", "10.00"))
        .unwrap();
    let lost = stock
        .adjust(&adjustment(FLOUR, MAIN, "-0.5", "kg", None))
        .unwrap();
    assert_eq!(lost.valuation.value, usd("-0.63"));
    assert_eq!(held(&stock, FLOUR, MAIN), pair("7.5", "9.37"));
}

#[test]
fn rounding_a_three_for_one_dollar_layer() {
    // 3 pcs for 1.00. Each issue takes round(layer value × qty / layer qty), halves away
    // from zero, and the layer keeps the rest:
    //   issue 1: 1.00 × 1/3 = 0.333 → 0.33; the layer keeps 2 worth 0.67;
    //   issue 1: 0.67 × 1/2 = 0.335 → 0.34; the layer keeps 1 worth 0.33;
    //   issue 1: the last unit takes what is left, 0.33.
    // Together exactly 1.00, and the empty layer is worth exactly 0.00. (Truncating the
    // unit cost would give 0.33, 0.33, 0.34 instead; the rule here rounds each share.)
    for method in [ValuationMethod::Fifo, ValuationMethod::MovingAverage] {
        let mut stock = stock(method);
        stock
            .receive(&receipt(WIDGET, MAIN, "3", "pcs", "1.00"))
            .unwrap();
        let mut issued = Vec::new();
        for _ in 0..3 {
            let sale = stock.deliver(&delivery(WIDGET, MAIN, "1", "pcs")).unwrap();
            issued.push(sale.valuation.value.decimal());
        }
        assert_eq!(issued, ["0.33", "0.34", "0.33"], "{method:?}");
        assert_eq!(held(&stock, WIDGET, MAIN), pair("0", "0.00"));

        // Two at once: 1.00 × 2/3 = 0.667 → 0.67, then the last one 0.33.
        stock
            .receive(&receipt(WIDGET, MAIN, "3", "pcs", "1.00"))
            .unwrap();
        let two = stock.deliver(&delivery(WIDGET, MAIN, "2", "pcs")).unwrap();
        let one = stock.deliver(&delivery(WIDGET, MAIN, "1", "pcs")).unwrap();
        assert_eq!(
            (two.valuation.value.decimal(), one.valuation.value.decimal()),
            ("0.67".to_owned(), "0.33".to_owned())
        );
    }
}

#[test]
fn units_convert_by_whole_factors() {
    // 2 boxes of 12 for 24.00 are 24 pcs; a delivery of 1 box takes 12.00.
    // 1 bag of flour (25 kg) for 20.00; 2.5 kg take 20.00 × 2.5/25 = 2.00.
    let mut stock = stock(ValuationMethod::Fifo);
    let boxes = stock
        .receive(&receipt(WIDGET, MAIN, "2", "BOX", "24.00"))
        .unwrap();
    assert_eq!(boxes.valuation.qty, q("24"));
    let sale = stock.deliver(&delivery(WIDGET, MAIN, "1", "box")).unwrap();
    assert_eq!(
        sale.valuation,
        Valuation {
            qty: q("12"),
            value: usd("12.00")
        }
    );
    stock
        .receive(&receipt(FLOUR, DEPOT, "1", "bag", "20.00"))
        .unwrap();
    let sale = stock.deliver(&delivery(FLOUR, DEPOT, "2.5", "kg")).unwrap();
    assert_eq!(sale.valuation.value, usd("2.00"));
    let sale = stock
        .deliver(&delivery(FLOUR, DEPOT, "0.125", "kg"))
        .unwrap();
    // 18.00 × 0.125/22.5 = 0.1
    assert_eq!(sale.valuation.value, usd("0.10"));
    assert_eq!(held(&stock, FLOUR, DEPOT), pair("22.375", "17.90"));
}

#[test]
fn negative_stock_allowed_is_settled_by_the_next_receipt() {
    // Allowed: receive 10 @ 1.00; deliver 15 → 10.00 on hand + 5 at the last known
    // cost 1.00 = 15.00; the position is −5 pcs worth −5.00.
    // Receive 10 for 12.00 (1.20 each): 5 settle the shortage; their share of the
    // receipt is 6.00 against 5.00 issued, a price difference of 1.00 to COGS; 5 pcs
    // worth 6.00 remain. Entry: Dr stock 12.00 − 1.00 = 11.00, Dr COGS 1.00,
    // Cr creditors 12.00.
    for method in [ValuationMethod::Fifo, ValuationMethod::MovingAverage] {
        let mut stock = stock(method);
        stock.items.get_mut(&WIDGET).unwrap().negative_stock = Some(NegativeStockPolicy::Allow);
        stock
            .receive(&receipt(WIDGET, MAIN, "10", "pcs", "10.00"))
            .unwrap();
        let sale = stock.deliver(&delivery(WIDGET, MAIN, "15", "pcs")).unwrap();
        assert_eq!(sale.valuation.value, usd("15.00"));
        assert_eq!(held(&stock, WIDGET, MAIN), pair("-5", "-5.00"));
        assert!(stock.position(WIDGET, MAIN).unwrap().layers.is_empty());
        let settled = stock
            .receive(&receipt(WIDGET, MAIN, "10", "pcs", "12.00"))
            .unwrap();
        assert_eq!(settled.price_difference, usd("1.00"));
        assert_eq!(held(&stock, WIDGET, MAIN), pair("5", "6.00"));
        let entry = posted(&stock, &settled);
        assert_eq!(
            entry,
            lines(&[("1300", 1100), ("2110", -1200), ("5100", 100)]),
            "{method:?}"
        );

        // Never received in the shop: 2 delivered at zero; 4 received for 8.00 settle
        // them at 4.00, all of it a price difference; 2 pcs worth 4.00 remain.
        let sale = stock.deliver(&delivery(WIDGET, SHOP, "2", "pcs")).unwrap();
        assert_eq!(sale.valuation.value, usd("0.00"));
        assert_eq!(posted(&stock, &sale), Vec::new());
        let settled = stock
            .receive(&receipt(WIDGET, SHOP, "4", "pcs", "8.00"))
            .unwrap();
        assert_eq!(settled.price_difference, usd("4.00"));
        assert_eq!(held(&stock, WIDGET, SHOP), pair("2", "4.00"));

        // A receipt smaller than the shortage settles part of it. The shop holds 2 pcs
        // worth 4.00, last cost 8.00 for 4. Deliver 7: 4.00 for the 2 on hand + 5 at
        // 8.00 × 5/4 = 10.00 → 14.00; −5 pcs worth −10.00. Receive 2 for 2.80: their
        // carried share 10.00 × 2/5 = 4.00, actual 2.80, price difference −1.20;
        // −3 pcs worth −6.00 remain. Entry: Dr stock 2.80 + 1.20 = 4.00,
        // Cr creditors 2.80, Cr COGS 1.20.
        let sale = stock.deliver(&delivery(WIDGET, SHOP, "7", "pcs")).unwrap();
        assert_eq!(sale.valuation.value, usd("14.00"));
        let part = stock
            .receive(&receipt(WIDGET, SHOP, "2", "pcs", "2.80"))
            .unwrap();
        assert_eq!(part.price_difference, usd("-1.20"));
        assert_eq!(held(&stock, WIDGET, SHOP), pair("-3", "-6.00"));
        assert_eq!(
            posted(&stock, &part),
            lines(&[("1300", 400), ("2110", -280), ("5100", -120)])
        );
        // Transfers never go below zero, even under Allow.
        let refused = stock
            .transfer(&transfer(WIDGET, SHOP, MAIN, "1", "pcs"))
            .unwrap_err();
        assert_eq!(
            refused.to_string(),
            "no ITEM-7 Widget on hand in Shop; cannot transfer 1 pcs"
        );
    }
}

#[test]
fn reports_and_stock_card() {
    // Main: receive 10 for 10.00, receive 10 for 12.00, transfer 5 to the shop (5.00),
    // deliver 8 from main (5.00 + 3.60 = 8.60); main keeps 7 worth 8.40, the shop 5
    // worth 5.00; in all 12 worth 13.40.
    let mut stock = stock(ValuationMethod::Fifo);
    let mut moves = Vec::new();
    let mut id = 0;
    let mut keep = |record: StockMove| {
        id += 1;
        moves.push(StockMove { id, ..record });
    };
    keep(
        stock
            .receive(&receipt(WIDGET, MAIN, "10", "pcs", "10.00"))
            .unwrap(),
    );
    keep(
        stock
            .receive(&receipt(WIDGET, MAIN, "10", "pcs", "12.00"))
            .unwrap(),
    );
    keep(
        stock
            .receive(&receipt(FLOUR, MAIN, "1", "bag", "20.00"))
            .unwrap(),
    );
    keep(
        stock
            .transfer(&transfer(WIDGET, MAIN, SHOP, "5", "pcs"))
            .unwrap(),
    );
    keep(stock.deliver(&delivery(WIDGET, MAIN, "8", "pcs")).unwrap());

    let on_hand: Vec<_> = stock
        .on_hand()
        .unwrap()
        .into_iter()
        .map(|row| {
            format!(
                "{} | {} | {} {} | {} | {}",
                row.item_label,
                row.warehouse_name,
                row.qty,
                row.unit,
                row.value.decimal(),
                row.unit_cost.map(Money::decimal).unwrap_or_default()
            )
        })
        .collect();
    assert_eq!(
        on_hand,
        [
            "ITEM-7 Widget | Main warehouse | 7 pcs | 8.40 | 1.20",
            "ITEM-7 Widget | Shop | 5 pcs | 5.00 | 1.00",
            "FLOUR Flour | Main warehouse | 25 kg | 20.00 | 0.80",
        ]
    );
    let totals = stock.totals().unwrap();
    assert_eq!(totals.value, usd("33.40"));
    assert_eq!(
        totals.items,
        [
            ItemTotal {
                item: WIDGET,
                qty: q("12"),
                value: usd("13.40")
            },
            ItemTotal {
                item: FLOUR,
                qty: q("25"),
                value: usd("20.00")
            },
        ]
    );
    assert_eq!(
        totals.warehouses,
        [
            WarehouseTotal {
                warehouse: MAIN,
                value: usd("28.40")
            },
            WarehouseTotal {
                warehouse: SHOP,
                value: usd("5.00")
            },
        ]
    );

    let card = |warehouse| -> Vec<String> {
        stock
            .stock_card(&moves, WIDGET, warehouse)
            .unwrap()
            .into_iter()
            .map(|row| {
                format!(
                    "{} {} {} {} {} → {} {}",
                    row.move_id,
                    row.what,
                    row.warehouse,
                    row.qty,
                    row.value.decimal(),
                    row.running_qty,
                    row.running_value.decimal()
                )
            })
            .collect()
    };
    assert_eq!(
        card(None),
        [
            "1 receipt 1 10 10.00 → 10 10.00",
            "2 receipt 1 10 12.00 → 20 22.00",
            "4 transfer out 1 -5 -5.00 → 15 17.00",
            "4 transfer in 2 5 5.00 → 20 22.00",
            "5 delivery 1 -8 -8.60 → 12 13.40",
        ]
    );
    assert_eq!(
        card(Some(MAIN)),
        [
            "1 receipt 1 10 10.00 → 10 10.00",
            "2 receipt 1 10 12.00 → 20 22.00",
            "4 transfer out 1 -5 -5.00 → 15 17.00",
            "5 delivery 1 -8 -8.60 → 7 8.40",
        ]
    );
    assert_eq!(card(Some(SHOP)), ["4 transfer in 2 5 5.00 → 5 5.00"]);
}

// ---- refused inputs ----

/// Applies `attempt` to a stock holding 3 widgets in the main warehouse and 1 bag of
/// flour; checks that it fails, that the stock is unchanged, and returns the message.
fn refused(
    method: ValuationMethod,
    attempt: impl FnOnce(&mut Stock) -> Result<StockMove, StockError>,
) -> String {
    let mut stock = stock(method);
    stock
        .receive(&receipt(WIDGET, MAIN, "3", "pcs", "3.00"))
        .unwrap();
    stock
        .receive(&receipt(FLOUR, MAIN, "1", "bag", "20.00"))
        .unwrap();
    let before = stock.clone();
    let error = attempt(&mut stock).unwrap_err();
    assert_eq!(stock, before, "a refused move changed the stock: {error}");
    error.to_string()
}

#[test]
fn bad_moves_are_refused_with_clear_messages() {
    for method in [ValuationMethod::Fifo, ValuationMethod::MovingAverage] {
        let check =
            |expected: &str, attempt: &dyn Fn(&mut Stock) -> Result<StockMove, StockError>| {
                assert_eq!(refused(method, attempt), expected, "{method:?}");
            };
        check(
            "only 3 pcs of ITEM-7 Widget on hand in Main warehouse; cannot deliver 5 pcs",
            &|s| s.deliver(&delivery(WIDGET, MAIN, "5", "pcs")),
        );
        check(
            "no ITEM-7 Widget on hand in Shop; cannot deliver 1 pcs",
            &|s| s.deliver(&delivery(WIDGET, SHOP, "1", "pcs")),
        );
        check(
            "only 3 pcs of ITEM-7 Widget on hand in Main warehouse; cannot deliver 12 pcs",
            &|s| s.deliver(&delivery(WIDGET, MAIN, "1", "box")),
        );
        check(
            "only 3 pcs of ITEM-7 Widget on hand in Main warehouse; cannot write off 4 pcs",
            &|s| s.adjust(&adjustment(WIDGET, MAIN, "-4", "pcs", None)),
        );
        check(
            "only 3 pcs of ITEM-7 Widget on hand in Main warehouse; cannot transfer 4 pcs",
            &|s| s.transfer(&transfer(WIDGET, MAIN, SHOP, "4", "pcs")),
        );
        check(
            "2.5 pcs of ITEM-7 Widget has too many decimals: a quantity in pcs is a whole number",
            &|s| s.receive(&receipt(WIDGET, MAIN, "2.5", "pcs", "1.00")),
        );
        check(
            "0.5 box of ITEM-7 Widget has too many decimals: a quantity in box is a whole number",
            &|s| s.deliver(&delivery(WIDGET, MAIN, "0.5", "box")),
        );
        check(
            "a receipt of ITEM-7 Widget needs a quantity above zero, not 0 pcs",
            &|s| s.receive(&receipt(WIDGET, MAIN, "0", "pcs", "0.00")),
        );
        check(
            "a receipt of ITEM-7 Widget needs a quantity above zero, not -2 pcs",
            &|s| s.receive(&receipt(WIDGET, MAIN, "-2", "pcs", "1.00")),
        );
        check(
            "a delivery of ITEM-7 Widget needs a quantity above zero, not 0 box",
            &|s| s.deliver(&delivery(WIDGET, MAIN, "0", "box")),
        );
        check(
            "a transfer of ITEM-7 Widget needs a quantity above zero, not -1 pcs",
            &|s| s.transfer(&transfer(WIDGET, MAIN, SHOP, "-1", "pcs")),
        );
        check(
            "the cost of ITEM-7 Widget cannot be negative (-1.00 USD); enter returns as deliveries or adjustments",
            &|s| s.receive(&receipt(WIDGET, MAIN, "1", "pcs", "-1.00")),
        );
        check(
            "the cost of ITEM-7 Widget cannot be negative (-0.10 USD); enter returns as deliveries or adjustments",
            &|s| s.adjust(&adjustment(WIDGET, MAIN, "1", "pcs", Some("-0.10"))),
        );
        check(
            "the cost 5.00 EUR of ITEM-7 Widget is not in the company currency USD; convert it at the day's rate first",
            &|s| {
                let mut euro = receipt(WIDGET, MAIN, "1", "pcs", "5.00");
                euro.cost = Money::new(500, Currency::EUR);
                s.receive(&euro)
            },
        );
        check(
            "ITEM-7 Widget is not counted in \"crate\"; use one of its units: pcs, box",
            &|s| s.receive(&receipt(WIDGET, MAIN, "1", "crate", "1.00")),
        );
        check(
            "FLOUR Flour is not counted in \"pcs\"; use one of its units: kg, bag",
            &|s| s.adjust(&adjustment(FLOUR, MAIN, "-1", "pcs", None)),
        );
        check(
            "a transfer of ITEM-7 Widget needs two different warehouses; both are Main warehouse",
            &|s| s.transfer(&transfer(WIDGET, MAIN, MAIN, "1", "pcs")),
        );
        check(
            "an adjustment of ITEM-7 Widget needs a quantity other than zero; nothing to adjust",
            &|s| s.adjust(&adjustment(WIDGET, MAIN, "0", "pcs", None)),
        );
        check(
            &format!(
                "a decrease of ITEM-7 Widget is valued at the stock's cost ({}); leave the unit cost out",
                method.label()
            ),
            &|s| s.adjust(&adjustment(WIDGET, MAIN, "-1", "pcs", Some("1.00"))),
        );
        check(
            "ITEM-7 Widget has no known cost in Shop (nothing on hand and never received); give the adjustment a unit cost",
            &|s| s.adjust(&adjustment(WIDGET, SHOP, "1", "pcs", None)),
        );
        check("item #42 is not in the item list", &|s| {
            s.receive(&receipt(42, MAIN, "1", "pcs", "1.00"))
        });
        check("warehouse #9 is not in the warehouse list", &|s| {
            s.deliver(&delivery(WIDGET, 9, "1", "pcs"))
        });
        check("warehouse #9 is not in the warehouse list", &|s| {
            s.transfer(&transfer(WIDGET, MAIN, 9, "1", "pcs"))
        });
    }
}

#[test]
fn a_converted_quantity_must_fit_the_base_unit() {
    // Rice in kg with 1 decimal, sold in bags of 25 kg counted to 2 decimals:
    // 0.04 bag = 1 kg is fine, 0.05 bag = 1.25 kg is not.
    let mut stock = stock(ValuationMethod::Fifo);
    let rice = Item::new(9, "RICE", "Rice", Unit::new("kg", 1), ValuationMethod::Fifo)
        .with_unit(Unit::new("bag", 2), 25);
    stock.add_item(rice).unwrap();
    let one_kg = stock
        .receive(&receipt(9, MAIN, "0.04", "bag", "2.00"))
        .unwrap();
    assert_eq!(one_kg.valuation.qty, q("1"));
    let before = stock.clone();
    let error = stock
        .receive(&receipt(9, MAIN, "0.05", "bag", "2.00"))
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "1.25 kg of RICE Rice has too many decimals: a quantity in kg has at most 1 decimal"
    );
    assert_eq!(stock, before);
    let error = stock
        .receive(&receipt(9, MAIN, "0.125", "bag", "2.00"))
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "0.125 bag of RICE Rice has too many decimals: a quantity in bag has at most 2 decimals"
    );
}

#[test]
fn bad_definitions_are_refused() {
    let mut stock = stock(ValuationMethod::Fifo);
    let widget = || {
        Item::new(
            70,
            "ITEM-70",
            "Gadget",
            Unit::new("pcs", 0),
            ValuationMethod::Fifo,
        )
    };
    let cases = [
        (
            widget().with_unit(Unit::new("box", 0), 0),
            "item ITEM-70 Gadget cannot be used: unit box holds 0 pcs; it must hold at least 1",
        ),
        (
            widget().with_unit(Unit::new("PCS", 0), 1),
            "item ITEM-70 Gadget cannot be used: unit PCS is listed twice",
        ),
        (
            Item::new(
                70,
                "ITEM-70",
                "Gadget",
                Unit::new("g", 4),
                ValuationMethod::Fifo,
            ),
            "item ITEM-70 Gadget cannot be used: unit g has 4 decimals; at most 3 are possible",
        ),
        (
            Item::new(
                70,
                "ITEM-70",
                "Gadget",
                Unit::new(" ", 0),
                ValuationMethod::Fifo,
            ),
            "item ITEM-70 Gadget cannot be used: a unit needs a code, such as pcs",
        ),
        (
            Item::new(70, "", "Gadget", Unit::new("pcs", 0), ValuationMethod::Fifo),
            "item  Gadget cannot be used: an item needs a code and a name",
        ),
        (
            Item::new(
                WIDGET,
                "ITEM-70",
                "Gadget",
                Unit::new("pcs", 0),
                ValuationMethod::Fifo,
            ),
            "item #7 already exists (ITEM-7 Widget)",
        ),
    ];
    for (item, expected) in cases {
        assert_eq!(stock.add_item(item).unwrap_err().to_string(), expected);
    }
    assert_eq!(
        stock
            .add_warehouse(Warehouse::new(MAIN, "X", "Elsewhere"))
            .unwrap_err()
            .to_string(),
        "warehouse #1 already exists (Main warehouse)"
    );
    assert_eq!(
        stock
            .add_warehouse(Warehouse::new(5, "X", ""))
            .unwrap_err()
            .to_string(),
        "warehouse X cannot be used: a warehouse needs a name"
    );
    let chart = Chart::small_firm_template(USD);
    assert_eq!(
        StockAccounts::from_codes(&chart, "1000", "5100", "5100", "2110")
            .unwrap_err()
            .to_string(),
        "the stock account 1000 Assets is a group account; choose one of the accounts under it"
    );
    assert_eq!(
        StockAccounts::from_codes(&chart, "1300", "5100", "5999", "2110")
            .unwrap_err()
            .to_string(),
        "the stock adjustment account 5999 is not in the chart of accounts"
    );
}

// ---- property tests ----

/// One random move on `stock`, of a random kind, item and warehouse, with quantities
/// that sometimes exceed what is on hand.
fn random_move(rng: &mut StdRng, stock: &mut Stock, id: u64) -> Result<StockMove, StockError> {
    let item = if rng.random_bool(0.5) { WIDGET } else { FLOUR };
    let warehouse = rng.random_range(1..=3);
    let (qty, unit) = match (item, rng.random_range(0..4)) {
        (WIDGET, 0) => (Quantity::whole(rng.random_range(1..=2)).unwrap(), "box"),
        (WIDGET, _) => (Quantity::whole(rng.random_range(1..=15)).unwrap(), "pcs"),
        (_, 0) => (Quantity::whole(1).unwrap(), "bag"),
        (_, _) => (
            Quantity::from_thousandths(rng.random_range(1..=20_000)),
            "kg",
        ),
    };
    let date = DAY;
    let reference = format!("DOC-{id}");
    let unit = unit.to_owned();
    match rng.random_range(0..10) {
        0..=2 => stock.receive(&Receipt {
            id,
            date,
            item,
            warehouse,
            qty,
            unit,
            cost: Money::new(rng.random_range(0..=5_000), USD),
            reference,
        }),
        3..=5 => stock.deliver(&Delivery {
            id,
            date,
            item,
            warehouse,
            qty,
            unit,
            reference,
        }),
        6 | 7 => stock.transfer(&Transfer {
            id,
            date,
            item,
            from: warehouse,
            to: rng.random_range(1..=3),
            qty,
            unit,
            reference,
        }),
        _ => {
            let decrease = rng.random_bool(0.5);
            stock.adjust(&Adjustment {
                id,
                date,
                item,
                warehouse,
                qty: if decrease {
                    qty.checked_neg().unwrap()
                } else {
                    qty
                },
                unit,
                unit_cost: (!decrease && rng.random_bool(0.5))
                    .then(|| Money::new(rng.random_range(0..=500), USD)),
                reference,
            })
        }
    }
}

fn check_positions(stock: &Stock, refuse: bool) {
    for position in stock.positions.values() {
        let method = stock.item(position.item).unwrap().method;
        let (qty, value) = (position.qty, position.value.minor());
        assert!(
            !qty.is_zero() || value == 0,
            "zero qty with value: {position:?}"
        );
        assert!(
            !refuse || !qty.is_negative(),
            "negative under Refuse: {position:?}"
        );
        assert!(!qty.is_positive() || value >= 0, "{position:?}");
        assert!(!qty.is_negative() || value <= 0, "{position:?}");
        match method {
            ValuationMethod::MovingAverage => assert!(position.layers.is_empty()),
            ValuationMethod::Fifo if qty.is_negative() => assert!(position.layers.is_empty()),
            ValuationMethod::Fifo => {
                let layer_qty: i64 = position.layers.iter().map(|l| l.qty.thousandths()).sum();
                let layer_value: i64 = position.layers.iter().map(|l| l.value.minor()).sum();
                assert_eq!(
                    (layer_qty, layer_value),
                    (qty.thousandths(), value),
                    "{position:?}"
                );
                assert!(
                    position
                        .layers
                        .iter()
                        .all(|l| l.qty.is_positive() && l.value.minor() >= 0)
                );
            }
        }
    }
}

#[test]
fn random_sequences_keep_the_invariants() {
    let chart = Chart::small_firm_template(USD);
    let accounts = StockAccounts::small_firm(&chart).unwrap();
    let stock_account = accounts.stock;
    let (mut went_negative, mut settled) = (0, 0);
    for seed in 0..48u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let method = if seed % 2 == 0 {
            ValuationMethod::Fifo
        } else {
            ValuationMethod::MovingAverage
        };
        let refuse = seed % 4 < 2;
        let mut stock = stock(method);
        if !refuse {
            stock.negative_stock = NegativeStockPolicy::Allow;
        }
        if seed % 8 == 3 {
            // The flour refuses even where the company allows.
            stock.items.get_mut(&FLOUR).unwrap().negative_stock = Some(NegativeStockPolicy::Refuse);
        }
        let mut moves: Vec<StockMove> = Vec::new();
        let (mut value_in, mut value_out, mut differences) = (0i64, 0i64, 0i64);
        let mut stock_account_balance = 0i64;
        let mut refusals = 0;
        for id in 1..=250u64 {
            let before = stock.clone();
            match random_move(&mut rng, &mut stock, id) {
                Err(error) => {
                    assert_eq!(stock, before, "seed {seed}, move {id}: {error}");
                    refusals += 1;
                }
                Ok(record) => {
                    let Valuation { qty, value } = record.valuation;
                    match record.kind {
                        MoveKind::Receipt { .. } => value_in += value.minor(),
                        MoveKind::Delivery { .. } => value_out += value.minor(),
                        MoveKind::Adjustment { .. } if qty.is_positive() => {
                            value_in += value.minor()
                        }
                        MoveKind::Adjustment { .. } => value_out -= value.minor(),
                        MoveKind::Transfer { .. } => {}
                    }
                    differences += record.price_difference.minor();
                    settled += usize::from(!record.price_difference.is_zero());
                    if refuse {
                        assert!(record.price_difference.is_zero(), "seed {seed}: {record:?}");
                    }
                    if let Some(entry) = stock.journal_entry(&record, &accounts, id).unwrap() {
                        let entry = PostedEntry::post(entry, &chart, None)
                            .unwrap_or_else(|e| panic!("seed {seed}, move {id}: {e}"));
                        stock_account_balance += entry
                            .lines
                            .iter()
                            .filter(|line| line.account == stock_account)
                            .map(|line| line.amount)
                            .sum::<i64>();
                    }
                    moves.push(record);
                }
            }
            check_positions(&stock, refuse);
            went_negative += stock
                .positions
                .values()
                .filter(|p| p.qty.is_negative())
                .count();
            let total = stock.totals().unwrap().value.minor();
            // Σ receipts − Σ issues (− price differences) == stock value, exactly.
            assert_eq!(
                value_in - value_out - differences,
                total,
                "seed {seed}, move {id}"
            );
            assert_eq!(stock_account_balance, total, "seed {seed}, move {id}");
        }
        assert!(
            refusals > 0 && moves.len() > 100,
            "seed {seed}: {refusals} refused"
        );
        // Each position is the sum of its moves' effects, and the card's last row is it.
        for ((item, warehouse), position) in &stock.positions {
            let card = stock.stock_card(&moves, *item, Some(*warehouse)).unwrap();
            let last = card.last().unwrap();
            assert_eq!(
                (last.running_qty, last.running_value),
                (position.qty, position.value)
            );
        }
        for total in stock.totals().unwrap().items {
            let card = stock.stock_card(&moves, total.item, None).unwrap();
            let last = card.last().unwrap();
            assert_eq!(
                (last.running_qty, last.running_value),
                (total.qty, total.value)
            );
        }
    }
    // Under Allow the sequences did go negative and were settled.
    assert!(
        went_negative > 100 && settled > 20,
        "{went_negative} {settled}"
    );
}

#[test]
fn restored_state_continues_identically() {
    // The state is plain data: rebuilt field by field, it values the next moves alike.
    let mut rng = StdRng::seed_from_u64(7);
    let mut stock = stock(ValuationMethod::Fifo);
    for id in 1..=60 {
        let _ = random_move(&mut rng, &mut stock, id);
    }
    let mut restored = Stock {
        currency: stock.currency,
        negative_stock: stock.negative_stock,
        items: stock.items.clone(),
        warehouses: stock.warehouses.clone(),
        positions: stock
            .positions
            .iter()
            .map(|(key, p)| {
                let position = Position {
                    item: p.item,
                    warehouse: p.warehouse,
                    qty: Quantity::from_thousandths(p.qty.thousandths()),
                    value: Money::new(
                        p.value.minor(),
                        Currency::new(p.value.currency().code()).unwrap(),
                    ),
                    layers: p.layers.iter().copied().collect(),
                    last_cost: p.last_cost,
                };
                (*key, position)
            })
            .collect(),
    };
    assert_eq!(restored, stock);
    for id in 61..=120 {
        let seed_state = rng.clone();
        let mine = random_move(&mut rng, &mut stock, id);
        let mut same = seed_state;
        let theirs = random_move(&mut same, &mut restored, id);
        assert_eq!(mine, theirs);
    }
    assert_eq!(restored, stock);
}
