//! Receivables and payables over real HTTPS: an invoice issued from the API and the
//! form, its page and its PDF (read back by pdftotext), a payment refused and then
//! registered, the aging report in every format, and the reminder letters.

use std::process::Command;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Api, api_error, boot};
use crate::ledger::{account, form, page, this_month};

/// The text of a PDF, by pdftotext (installed by `make deps`).
fn pdf_text(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("doc.pdf");
    std::fs::write(&path, bytes).expect("write pdf");
    let out = Command::new("pdftotext")
        .args(["-layout"])
        .arg(&path)
        .arg("-")
        .output()
        .unwrap_or_else(|e| panic!("pdftotext is missing ({e}): run `make deps`"));
    assert!(out.status.success(), "pdftotext failed on the document");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn first_id(api: &Api, path: &str) -> u64 {
    let list = api.json(path).await;
    list["data"][0]["id"]
        .as_u64()
        .unwrap_or_else(|| panic!("no record at {path}: {list}"))
}

async fn download(api: &Api, path: &str) -> (String, Vec<u8>) {
    let res = api.get(path).await;
    assert_eq!(res.status(), StatusCode::OK, "{path}");
    let mime = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (mime, res.bytes().await.expect("body").to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bookkeeper_invoices_gets_paid_and_chases_the_rest() {
    let s = boot(0).await;
    let api = s.admin().await;
    let (day, _) = this_month(&s);
    let customer = first_id(&api, "/api/v1/customer?q=Alder").await;
    let other = first_id(&api, "/api/v1/customer?q=Birch").await;
    let vat20 = first_id(&api, "/api/v1/tax?f.code=VAT20").await;
    let (sales, bank) = (account(&api, "4100").await, account(&api, "1120").await);

    // The demo shows invoices, and the API issues one: 2 × 100.00 + 20% VAT.
    let (status, list) = page(&api, "/ledger/invoices").await;
    assert_eq!(status, StatusCode::OK);
    assert!(list.contains("INV-0") && list.contains("BILL-0"), "{list}");
    let res = api
        .post(
            "/api/v1/ledger/invoices",
            &json!({ "kind": "sales", "customer": customer, "date": day, "terms": "net30",
                     "lines": [{ "description": "Consulting, day rate", "quantity": "2",
                                 "unit_price": "100.00", "account": sales, "taxes": [vat20] }] }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let created: Value = res.json().await.expect("json");
    let id = created["id"].as_u64().expect("id");
    let number = created["number"].as_str().expect("number").to_owned();
    let invoice = api.json(&format!("/api/v1/invoice/{id}")).await;
    assert_eq!(
        (invoice["total"].as_str(), invoice["status"].as_str()),
        (Some("240.00"), Some("Open")),
        "{invoice}"
    );

    // Bad input through the form: the message names the line, and what was typed stays.
    let customer_s = customer.to_string();
    let sales_s = sales.to_string();
    let (status, _, body) = form(
        &api,
        "/ledger/invoices",
        &[
            ("kind", "sales"),
            ("customer", &customer_s),
            ("date", &day),
            ("description_0", "Widgets"),
            ("quantity_0", "3"),
            ("price_0", "12,3x"),
            ("account_0", &sales_s),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body.contains("line 1, unit price") && body.contains("12,3x"),
        "{body}"
    );
    let res = api
        .post(
            "/api/v1/ledger/invoices",
            &json!({ "kind": "sales", "customer": customer, "date": day, "currency": "GBP",
                     "lines": [{ "description": "x", "unit_price": "1.00", "account": sales }] }),
        )
        .await;
    let e = api_error(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid").await;
    assert!(e.to_string().contains("no exchange rate for GBP"), "{e}");

    // Its page, and its PDF as the customer will read it.
    let (status, doc_page) = page(&api, &format!("/ledger/invoices/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc_page.contains("Register payment") && doc_page.contains("Consulting, day rate"));
    let (mime, pdf) = download(&api, &format!("/ledger/invoices/{id}/pdf")).await;
    assert_eq!(mime, "application/pdf");
    let text = pdf_text(&pdf);
    for expected in [
        number.as_str(),
        "Alder & Co",
        "Consulting, day rate",
        "240.00",
        "VAT 20%",
    ] {
        assert!(text.contains(expected), "{expected:?} in the PDF:\n{text}");
    }

    // Paying: more than is open, or another customer's invoice, is refused.
    let pay = |party: u64, amount: &str, allocate: &str| {
        json!({ "kind": "receipt", "customer": party, "date": day, "amount": amount,
                "bank_account": bank, "allocations": [{ "invoice": id, "amount": allocate }] })
    };
    let res = api
        .post(
            "/api/v1/ledger/payments",
            &pay(customer, "300.00", "300.00"),
        )
        .await;
    let e = api_error(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid").await;
    assert!(e.to_string().contains("240.00 CHF open"), "{e}");
    let res = api
        .post("/api/v1/ledger/payments", &pay(other, "10.00", "10.00"))
        .await;
    let e = api_error(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid").await;
    assert!(e.to_string().contains("belongs to another customer"), "{e}");
    let (status, prefilled) = page(&api, &format!("/ledger/payments/new?invoice={id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        prefilled.contains("value=\"240.00\""),
        "the open amount is offered"
    );
    let res = api
        .post(
            "/api/v1/ledger/payments",
            &pay(customer, "240.00", "240.00"),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let invoice = api.json(&format!("/api/v1/invoice/{id}")).await;
    assert_eq!(invoice["status"], "Paid", "{invoice}");

    // Aging: the rows add up, and the downloads are real files.
    let aging = api
        .json("/ledger/aging?ledger=receivable&format=json")
        .await;
    let rows = aging["rows"].as_array().expect("rows");
    assert!(!rows.is_empty(), "{aging}");
    assert!(
        rows[0]["link"]
            .as_str()
            .is_some_and(|l| l.starts_with("/e/invoice?f.customer=")),
        "rows drill down to the customer's invoices: {aging}"
    );
    let last = aging["columns"].as_array().expect("columns").len() - 1;
    let sum: i64 = rows
        .iter()
        .map(|r| r["cells"][last]["minor"].as_i64().expect("total"))
        .sum();
    assert_eq!(
        aging["footer"]["cells"][last]["minor"].as_i64(),
        Some(sum),
        "{aging}"
    );
    let (mime, xlsx) = download(&api, "/ledger/aging?ledger=payable&format=xlsx").await;
    assert!(
        mime.contains("spreadsheetml") && xlsx.starts_with(b"PK"),
        "{mime}"
    );
    let (mime, pdf) = download(&api, "/ledger/aging?ledger=receivable&format=pdf").await;
    assert_eq!(mime, "application/pdf");
    assert!(pdf_text(&pdf).contains("Receivables aging"));
    let (_, tb) = download(&api, "/ledger/trial-balance?format=pdf").await;
    let tb_text = pdf_text(&tb);
    assert!(
        tb_text.contains("Trial balance") && tb_text.contains("Page 1 of"),
        "{tb_text}"
    );
    let (status, body) = page(&api, "/ledger/aging?ledger=sideways").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // The demo's first sale shows the goods that left the warehouse for it.
    let first = first_id(&api, "/api/v1/invoice?f.number=INV-000001").await;
    let (status, first_page) = page(&api, &format!("/ledger/invoices/{first}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(first_page.contains("Goods moved for it"), "{first_page}");

    // Reminder letters for what is overdue.
    let (status, letters) = page(&api, "/ledger/reminders").await;
    assert_eq!(status, StatusCode::OK);
    assert!(letters.contains("Reminder letters"), "{letters}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accountant_keeps_the_books_but_not_the_users() {
    let s = boot(0).await;
    let password = s.add_user("alma", "Accountant").await;
    let alma = s.api("alma", &password).await;
    let (day, _) = this_month(&s);
    let customer = first_id(&alma, "/api/v1/customer?q=Alder").await;
    let (sales, vat20) = (
        account(&alma, "4100").await,
        first_id(&alma, "/api/v1/tax?f.code=VAT20").await,
    );
    let res = alma
        .post(
            "/api/v1/ledger/invoices",
            &json!({ "kind": "sales", "customer": customer, "date": day,
                     "lines": [{ "description": "Audit support", "unit_price": "80.00",
                                 "account": sales, "taxes": [vat20] }] }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let id = res.json::<Value>().await.expect("json")["id"]
        .as_u64()
        .expect("id");
    let (mime, pdf) = download(&alma, &format!("/ledger/invoices/{id}/pdf")).await;
    assert_eq!(mime, "application/pdf");
    assert!(pdf_text(&pdf).contains("Audit support"));
    let (status, _) = page(&alma, "/ledger/trial-balance").await;
    assert_eq!(status, StatusCode::OK);
    let res = alma
        .post(
            "/api/v1/user",
            &json!({ "username": "mallory", "full_name": "M" }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
}
