//! Bank over real HTTPS: the demo's statement and its suggestions, accepting one, a bank
//! account added from the form, a statement pasted into the import form (and a bad one
//! refused with every problem), create entry, undo, and the raw-file API with CSV and
//! camt.053 bodies.

use reqwest::StatusCode;
use serde_json::Value;

use crate::common::{Api, TestServer, api_error, boot};

const BAD: &str = include_str!("../../modules/ledger/tests/fixtures/bank/bad.csv");
const ENGLISH: &str = include_str!("../../modules/ledger/tests/fixtures/bank/english.csv");
const CAMT_V08: &str = include_str!("../../modules/ledger/tests/fixtures/bank/camt053_v08.xml");

/// The server's today, `YYYY-MM-DD`.
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

async fn page(api: &Api, path: &str) -> (StatusCode, String) {
    let res = api.get(path).await;
    (res.status(), res.text().await.expect("body"))
}

async fn raw(api: &Api, path: &str, content_type: &str, body: &str) -> reqwest::Response {
    api.client
        .post(api.url(path))
        .header("x-csrf-token", &api.csrf)
        .header("content-type", content_type)
        .body(body.to_owned())
        .send()
        .await
        .expect("raw POST")
}

async fn rows(api: &Api, path: &str) -> Vec<Value> {
    api.json(path).await["data"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

async fn account(api: &Api, code: &str) -> u64 {
    rows(api, &format!("/api/v1/account?f.code={code}"))
        .await
        .iter()
        .find(|r| r["code"] == code)
        .and_then(|r| r["id"].as_u64())
        .unwrap_or_else(|| panic!("account {code}"))
}

/// The first accept form on a reconciliation page: its action and journal line.
fn first_accept(html: &str) -> (String, String) {
    let at = html.find("/accept\"").expect("an accept form");
    let start = html[..at].rfind("action=\"").expect("action") + "action=\"".len();
    let action = html[start..at + "/accept".len()].to_owned();
    let rest = &html[at..];
    let v = rest
        .find("name=\"journal_line\" value=\"")
        .expect("journal line")
        + "name=\"journal_line\" value=\"".len();
    let end = rest[v..].find('"').expect("end") + v;
    (action, rest[v..end].to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bookkeeper_imports_statements_and_reconciles() {
    let s = boot(0).await;
    let api = s.admin().await;

    // The demo: a bank account with last month's statement and real suggestions.
    let (status, body) = page(&api, "/ledger/bank").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("Operating account"), "{body}");
    let demo = rows(&api, "/api/v1/bank_account").await;
    let demo_id = demo
        .iter()
        .find(|r| r["name"] == "Operating account")
        .and_then(|r| r["id"].as_u64())
        .expect("the demo bank account");
    let screen = format!("/ledger/bank/{demo_id}");
    let (status, body) = page(&api, &screen).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("data-shortcut=\"accept\""), "{body}");
    assert!(body.contains("Statement closing balance"), "{body}");
    assert!(
        body.contains("Create entry"),
        "the charge and interest have no match"
    );
    let open_before = rows(
        &api,
        &format!("/api/v1/bank_line?f.bank_account={demo_id}&f.status=Unreconciled&limit=500"),
    )
    .await
    .len();

    // Accept the first suggestion, as the button (or the `a` key) does.
    let (action, journal_line) = first_accept(&body);
    let (status, location, body) =
        form(&api, &action, &[("journal_line", journal_line.as_str())]).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    assert!(location.contains("accepted=JE-"), "{location}");
    let open_after = rows(
        &api,
        &format!("/api/v1/bank_line?f.bank_account={demo_id}&f.status=Unreconciled&limit=500"),
    )
    .await
    .len();
    assert_eq!(open_after + 1, open_before);
    let (status, _, body) = form(&api, &action, &[("journal_line", journal_line.as_str())]).await;
    assert_eq!(status, StatusCode::CONFLICT, "reconciled twice: {body}");
    assert!(body.contains("already reconciled"), "{body}");

    // A bank account from the form: the refusal says why, then it is added.
    let savings = account(&api, "1130").await.to_string();
    let mut fields = vec![
        ("name", "Savings"),
        ("number", "CH93 0076 2011 6238 5295 7"),
        ("currency", "EUR"),
        ("account", savings.as_str()),
    ];
    let (status, _, body) = form(&api, "/ledger/bank", &fields).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.contains("not supported yet"), "{body}");
    fields[2] = ("currency", "CHF");
    let (status, location, body) = form(&api, "/ledger/bank", &fields).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let id: u64 = location
        .trim_start_matches("/ledger/bank/")
        .split('?')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("the new bank account's page");
    let import = format!("/ledger/bank/{id}/import");
    let lines_path = format!("/api/v1/bank_line?f.bank_account={id}&limit=500");

    // A bad file pasted into the form: nothing imported, every problem listed.
    let (status, _, body) = form(&api, &import, &[("file", BAD)]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    for n in [3, 4, 5, 6, 8, 9, 10] {
        assert!(body.contains(&format!("line {n}: ")), "line {n} in {body}");
    }
    assert!(body.contains("Nothing was imported"), "{body}");
    assert!(rows(&api, &lines_path).await.is_empty());

    // A good one, dated today; create the entry for its fee; undo; accept again.
    let day = today(&s);
    let csv = format!("Date,Payee,Description,Amount\n{day},Bank,Card fee,-4.20\n");
    let (status, location, body) = form(
        &api,
        &import,
        &[("file", csv.as_str()), ("closing", "-4.20")],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    assert!(location.contains("imported="), "{location}");
    let (status, _, _) = form(&api, &import, &[("file", csv.as_str())]).await;
    assert_eq!(
        status,
        StatusCode::SEE_OTHER,
        "the same file again is skipped"
    );
    let got = rows(&api, &lines_path).await;
    assert_eq!(got.len(), 1, "{got:?}");
    let line = got[0]["id"].as_u64().expect("line id");
    let fees = account(&api, "6700").await.to_string();
    let (status, location, body) = form(
        &api,
        &format!("/ledger/bank/{id}/lines/{line}/entry"),
        &[("account", fees.as_str())],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    assert!(location.contains("posted=JE-"), "{location}");
    let rec = api.json(&format!("/api/v1/bank_line/{line}")).await;
    assert_eq!(rec["status"], "Reconciled", "{rec}");
    let (_, body) = page(&api, &format!("/ledger/bank/{id}")).await;
    assert!(
        body.contains("id=\"bank-difference\">0.00<"),
        "the statement agrees with the books: {body}"
    );
    let (status, _, body) = form(&api, &format!("/ledger/bank/{id}/lines/{line}/undo"), &[]).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let (_, body) = page(&api, &format!("/ledger/bank/{id}")).await;
    let (action, _) = first_accept(&body);
    assert!(action.contains(&format!("/lines/{line}/")), "{action}");

    // The API: CSV and camt.053 bodies, a 422 listing problems, the wrong media type.
    let path = format!("/api/v1/ledger/bank-accounts/{id}/statements");
    let res = raw(&api, &path, "text/csv", ENGLISH).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let body: Value = res.json().await.expect("json");
    assert_eq!(
        (body["imported"].as_u64(), body["skipped"].as_u64()),
        (Some(4), Some(0)),
        "{body}"
    );
    let res = raw(&api, &path, "text/csv; charset=utf-8", ENGLISH).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["skipped"].as_u64(), Some(4), "{body}");
    let res = raw(&api, &path, "application/xml", CAMT_V08).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["imported"].as_u64(), Some(2), "{body}");
    let before = rows(&api, &lines_path).await.len();
    let res = raw(&api, &path, "text/csv", BAD).await;
    let body = api_error(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_statement").await;
    let problem_lines: Vec<u64> = body["error"]["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .filter_map(|p| p["line"].as_u64())
        .collect();
    assert_eq!(problem_lines, [3, 4, 5, 6, 6, 8, 9, 10], "{body}");
    let res = raw(
        &api,
        &format!("/api/v1/ledger/bank-accounts/{demo_id}/statements"),
        "application/xml",
        CAMT_V08,
    )
    .await;
    let body = api_error(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_statement").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("CH9300762011623852957")),
        "another account's statement: {body}"
    );
    let res = raw(&api, &path, "application/json", "{}").await;
    api_error(
        res,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    assert_eq!(
        rows(&api, &lines_path).await.len(),
        before,
        "refusals imported nothing"
    );
}
