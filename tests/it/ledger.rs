//! The ledger over real HTTPS: the demo books, posting from the form and the API, the
//! refusals, the trial balance, cancel by reversal, and the beancount download.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Api, api_error, boot};

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

async fn page(api: &Api, path: &str) -> (StatusCode, String) {
    let res = api.get(path).await;
    (res.status(), res.text().await.expect("body"))
}

/// The id of the postable account with `code`, from the API.
async fn account(api: &Api, code: &str) -> u64 {
    let list = api.json(&format!("/api/v1/account?f.code={code}")).await;
    list["data"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["code"] == code))
        .and_then(|r| r["id"].as_u64())
        .unwrap_or_else(|| panic!("account {code} in {list}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accountant_posts_checks_and_exports_the_books() {
    let s = boot(0).await;
    let api = s.admin().await;

    // The demo company comes with a chart and a year of books.
    let (status, home) = page(&api, "/m/ledger").await;
    assert_eq!(status, StatusCode::OK, "{home}");
    assert!(
        home.contains("/ledger/journal/") && home.contains("JE-0"),
        "the latest entries are listed"
    );
    let (rent, bank) = (account(&api, "6200").await, account(&api, "1120").await);
    let tb = api
        .json("/api/v1/ledger/trial-balance?from=2000-01&to=2100-12")
        .await;
    let totals = &tb["totals"];
    assert_eq!(totals["debit"], totals["credit"], "{tb}");
    assert_ne!(totals["debit"], "0.00", "{tb}");

    // The form: an unbalanced entry comes back with the message and what was typed.
    let (rent_s, bank_s) = (rent.to_string(), bank.to_string());
    let mut fields = vec![
        ("date", "2026-03-01"),
        ("narration", "March rent"),
        ("reference", "R-3"),
        ("account_0", rent_s.as_str()),
        ("debit_0", "100"),
        ("account_1", bank_s.as_str()),
        ("credit_1", "90.50"),
    ];
    let (status, _, body) = form(&api, "/ledger/journal", &fields).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body.contains("90.50") && body.contains("field-error"),
        "{body}"
    );
    fields[6] = ("credit_1", "abc");
    let (status, _, body) = form(&api, "/ledger/journal", &fields).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("line 2, credit"), "{body}");
    let after_refusals = api
        .json("/api/v1/ledger/trial-balance?from=2000-01&to=2100-12")
        .await;
    assert_eq!(after_refusals, tb, "refused entries changed the books");

    fields[6] = ("credit_1", "100.00");
    let (status, location, body) = form(&api, "/ledger/journal", &fields).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    assert!(location.starts_with("/e/journal_entry/"), "{location}");
    let (status, tb_page) = page(&api, "/ledger/trial-balance?from=2026-03&to=2026-03").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        tb_page.contains("f.account="),
        "rows drill down to the lines"
    );
    let (status, body) = page(&api, "/ledger/trial-balance?from=2026-13&to=2026-03").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // The API: post, refusals with their status, and the entry is never edited.
    let res = api
        .post(
            "/api/v1/ledger/journal",
            &json!({ "date": "2026-03-02", "narration": "Fees", "lines": [
                { "account": rent, "debit": "10.00" },
                { "account": bank, "credit": "10.00", "memo": "card" } ] }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let created: Value = res.json().await.expect("json");
    assert!(
        created["number"]
            .as_str()
            .is_some_and(|n| n.starts_with("JE-")),
        "{created}"
    );
    let id = created["id"].as_u64().expect("id");
    let unbalanced = api
        .post(
            "/api/v1/ledger/journal",
            &json!({ "date": "2026-03-02", "narration": "x", "lines": [
                { "account": rent, "debit": "10.00" }, { "account": bank, "credit": "9.99" } ] }),
        )
        .await;
    api_error(unbalanced, StatusCode::UNPROCESSABLE_ENTITY, "invalid").await;
    let wrong_type = api
        .post(
            "/api/v1/ledger/journal",
            &json!({ "date": "2026-03-02", "lines": "none" }),
        )
        .await;
    assert_eq!(wrong_type.status(), StatusCode::BAD_REQUEST);
    let edit = api
        .patch(
            &format!("/api/v1/journal_entry/{id}"),
            &json!({ "narration": "changed", "version": 1 }),
        )
        .await;
    assert_eq!(edit.status(), StatusCode::CONFLICT);

    // Cancel by reversal, from the entry's page.
    let (status, entry_page) = page(&api, &format!("/ledger/journal/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(entry_page.contains("Cancel (post reversal)"));
    let (status, location, _) = form(&api, &format!("/ledger/journal/{id}/cancel"), &[]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(location.contains("reversal"), "{location}");
    let entry = api.json(&format!("/api/v1/journal_entry/{id}")).await;
    assert_eq!(entry["status"], "Cancelled", "{entry}");

    // The download is a beancount journal holding the entries.
    let res = api.get("/ledger/export.beancount").await;
    assert_eq!(res.status(), StatusCode::OK);
    let disposition = res
        .headers()
        .get("content-disposition")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(disposition.contains(".beancount"), "{disposition}");
    let journal = res.text().await.expect("journal");
    assert!(journal.contains("option \"operating_currency\""));
    assert!(journal.contains("March rent") && journal.contains("Reversal of"));
}
