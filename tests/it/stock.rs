//! Inventory over real HTTPS: an item of its own stock account, a receipt and a
//! delivery through the Stock page's forms, a refused delivery that shows the domain's
//! message and changes nothing, a delivery through the API, the item's stock card, and
//! the valuation report's JSON equal to the stock account's balance.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Api, TestServer, api_error, boot};

/// Today on the server's clock (always in the demo's open fiscal year).
fn today(s: &TestServer) -> String {
    let d = s.today();
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

async fn form(api: &Api, path: &str, fields: &[(&str, &str)]) -> (StatusCode, String, String) {
    let res = api
        .client
        .post(api.url(path))
        .header("x-csrf-token", &api.csrf)
        .form(fields)
        .send()
        .await
        .expect("form POST");
    let status = res.status();
    let location = res
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, location, res.text().await.expect("body"))
}

/// The report's row whose first two cells are `first` and `second`: its last cell.
fn row_minor(report: &Value, first: &str, second: &str) -> Option<i64> {
    report["rows"].as_array()?.iter().find_map(|r| {
        let cells = r["cells"].as_array()?;
        (cells.first()?.as_str()? == first && cells.get(1)?.as_str()? == second)
            .then(|| cells.last()?["minor"].as_i64())
            .flatten()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storekeeper_receives_delivers_and_the_report_agrees_with_the_books() {
    let s = boot(0).await;
    let api = s.admin().await;
    let day = today(&s);

    // The demo company has stock: the report shows it, with the demo's own
    // journal entries to 1300 as a difference.
    let demo = api.json("/ledger/stock/valuation?format=json").await;
    assert_eq!(demo["title"], "Stock valuation", "{demo}");
    assert!(
        row_minor(&demo, "Main warehouse", "Total").is_some_and(|v| v > 0),
        "{demo}"
    );
    assert!(
        row_minor(&demo, "West depot", "Total").is_some_and(|v| v > 0),
        "{demo}"
    );
    assert_eq!(api.get("/ledger/stock").await.status(), StatusCode::OK);

    // An item kept in a stock account of its own, so every posting to it is a move.
    let created = api
        .post(
            "/api/v1/account",
            &json!({ "code": "1310", "name": "Test stock", "class": "Asset", "type": "Stock" }),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let account = created.json::<Value>().await.expect("json")["id"]
        .as_u64()
        .expect("id");
    let (status, location, body) = form(
        &api,
        "/ledger/stock/items",
        &[
            ("code", "T-1"),
            ("name", "Test item"),
            ("base_unit", "pcs"),
            ("decimals", "0"),
            ("units", "box=10"),
            ("method", "FIFO"),
            ("stock_account", &account.to_string()),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let item: u64 = location
        .trim_start_matches("/ledger/stock/items/")
        .split('?')
        .next()
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("item page in {location}"));
    let main = api.json("/api/v1/warehouse?f.code=MAIN").await["data"][0]["id"]
        .as_u64()
        .expect("the demo's main warehouse");
    let (item_s, main_s) = (item.to_string(), main.to_string());

    // A receipt of a box at 100.00, then 4 pieces out, through the forms.
    let receipt = [
        ("kind", "Receipt"),
        ("date", day.as_str()),
        ("item", item_s.as_str()),
        ("warehouse", main_s.as_str()),
        ("qty", "1"),
        ("unit", "box"),
        ("cost", "100.00"),
        ("reference", "PO-T1"),
    ];
    let (status, location, body) = form(&api, "/ledger/stock/moves", &receipt).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    assert!(location.starts_with("/ledger/stock?done=SM-"), "{location}");
    let delivery = |qty: &'static str| {
        [
            ("kind", "Delivery"),
            ("date", day.as_str()),
            ("item", item_s.as_str()),
            ("warehouse", main_s.as_str()),
            ("qty", qty),
            ("unit", "pcs"),
            ("reference", "DN-T1"),
        ]
    };
    let (status, _, body) = form(&api, "/ledger/stock/moves", &delivery("4")).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");

    // More than is on hand: the page comes back with the domain's message.
    let before = api.json("/ledger/stock/valuation?format=json").await;
    let (status, _, body) = form(&api, "/ledger/stock/moves", &delivery("50")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body.contains(
            "only 6 pcs of T-1 Test item on hand in Main warehouse; cannot deliver 50 pcs"
        ),
        "{body}"
    );
    assert!(body.contains("value=\"50\""), "what was typed comes back");
    assert_eq!(
        api.json("/ledger/stock/valuation?format=json").await,
        before,
        "the refusal changed the stock"
    );

    // The report: 6 pieces at 10.00, and the account's balance agrees.
    let label = "Account 1310 Test stock";
    let report = api.json("/ledger/stock/valuation?format=json").await;
    assert_eq!(
        row_minor(&report, label, "stock value (moves)"),
        Some(6_000),
        "{report}"
    );
    assert_eq!(
        row_minor(&report, label, "ledger balance"),
        Some(6_000),
        "{report}"
    );
    assert_eq!(row_minor(&report, label, "difference"), Some(0), "{report}");
    let item_row = report["rows"]
        .as_array()
        .and_then(|rows| {
            rows.iter()
                .find(|r| r["cells"][1] == "T-1 Test item" && r["cells"][0] == "Main warehouse")
        })
        .cloned()
        .unwrap_or_else(|| panic!("the item's row in {report}"));
    assert_eq!(item_row["cells"][2], "6");
    assert_eq!(item_row["cells"][4]["amount"], "10.00");
    assert_eq!(item_row["cells"][5]["amount"], "60.00");
    let tb = api
        .json("/api/v1/ledger/trial-balance?from=2000-01&to=2100-12")
        .await;
    let closing = tb["data"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["code"] == "1310"))
        .map(|r| r["closing"].clone());
    assert_eq!(closing, Some(json!("60.00")), "{tb}");

    // The API: one more piece out.
    let res = api
        .post(
            "/api/v1/ledger/stock/moves",
            &json!({ "kind": "delivery", "date": day, "item": item, "warehouse": main, "qty": "1", "reference": "API-1" }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let moved: Value = res.json().await.expect("json");
    assert_eq!(moved["value"], "10.00", "{moved}");
    assert!(moved["entry"].as_u64().is_some(), "{moved}");
    // A move names the invoice it was for; an unknown one is refused.
    let res = api
        .post(
            "/api/v1/ledger/stock/moves",
            &json!({ "kind": "delivery", "date": day, "item": item, "warehouse": main, "qty": "1", "document": 999_999 }),
        )
        .await;
    let e = api_error(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid").await;
    assert!(e.to_string().contains("no invoice #999999"), "{e}");
    let res = api
        .post(
            "/api/v1/ledger/stock/moves",
            &json!({ "kind": "delivery", "date": day, "item": item, "warehouse": main, "qty": "9" }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let e: Value = res.json().await.expect("json");
    assert!(e.to_string().contains("only 5 pcs of T-1 Test item"), "{e}");
    let report = api.json("/ledger/stock/valuation?format=json").await;
    assert_eq!(
        row_minor(&report, label, "ledger balance"),
        Some(5_000),
        "{report}"
    );
    assert_eq!(
        row_minor(&report, label, "stock value (moves)"),
        Some(5_000),
        "{report}"
    );

    // The item's page: on hand, the stock card with its entries.
    let res = api.get(&format!("/ledger/stock/items/{item}")).await;
    assert_eq!(res.status(), StatusCode::OK);
    let page = res.text().await.expect("body");
    for expected in [
        "Stock card",
        "PO-T1",
        "DN-T1",
        "API-1",
        "/ledger/journal/",
        "50.00",
    ] {
        assert!(page.contains(expected), "{expected} in the item page");
    }

    // The valuation at an earlier day, and a bad day refused.
    let then = api
        .json("/ledger/stock/valuation?as_of=2000-01-31&format=json")
        .await;
    assert!(
        then["subtitle"]
            .as_str()
            .is_some_and(|t| t.contains("at the end of 2000-01-31")),
        "{then}"
    );
    assert!(
        then["rows"]
            .as_array()
            .is_some_and(|r| r.iter().all(|row| row["bold"] == true)),
        "nothing was on hand in 2000: {then}"
    );
    let res = api.get("/ledger/stock/valuation?as_of=2000-02-31").await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
}
