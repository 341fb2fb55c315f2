//! The ledger over real HTTPS: the demo books, posting from the form and the API, the
//! refusals, the trial balance, cancel by reversal, and the beancount download.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Api, TestServer, api_error, boot};

/// The first day of the server's current month (`YYYY-MM-01`) and the month (`YYYY-MM`).
pub fn this_month(s: &TestServer) -> (String, String) {
    let today = s.today();
    let month = format!("{:04}-{:02}", today.year(), u8::from(today.month()));
    (format!("{month}-01"), month)
}

pub async fn form(api: &Api, path: &str, fields: &[(&str, &str)]) -> (StatusCode, String, String) {
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

pub async fn page(api: &Api, path: &str) -> (StatusCode, String) {
    let res = api.get(path).await;
    (res.status(), res.text().await.expect("body"))
}

/// The id of the postable account with `code`, from the API.
pub async fn account(api: &Api, code: &str) -> u64 {
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
    // The demo's fiscal years follow the server's clock: post in this month, which is
    // always in the open year.
    let (day, month) = this_month(&s);
    let (day2, month_range) = (
        day.replace("-01", "-02"),
        format!("from={month}&to={month}"),
    );

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
        ("date", day.as_str()),
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
    let (status, tb_page) = page(&api, &format!("/ledger/trial-balance?{month_range}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        tb_page.contains("/ledger/accounts/"),
        "rows drill down to the account's general ledger"
    );
    let (status, body) = page(&api, "/ledger/trial-balance?from=2026-13&to=2026-03").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // The API: post, refusals with their status, and the entry is never edited.
    let res = api
        .post(
            "/api/v1/ledger/journal",
            &json!({ "date": day2, "narration": "Fees", "lines": [
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
    // A line in euros keeps both amounts; a company amount that is not the foreign
    // amount at the rate is refused.
    let euro_line = |debit: &str| {
        json!({ "date": day2, "narration": "Paris hotel", "lines": [
            { "account": rent, "debit": debit, "currency": "EUR", "amount": "100.00", "rate": "1.10" },
            { "account": bank, "credit": debit } ] })
    };
    let res = api
        .post("/api/v1/ledger/journal", &euro_line("110.00"))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let euro: Value = res.json().await.expect("json");
    let lines = api
        .json(&format!("/api/v1/journal_line?f.entry={}", euro["id"]))
        .await;
    let foreign = lines["data"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["currency"] == "EUR"))
        .unwrap_or_else(|| panic!("a line in euros: {lines}"));
    assert_eq!(
        (foreign["amount_fx"].as_str(), foreign["debit"].as_str()),
        (Some("100.00"), Some("110.00")),
        "{foreign}"
    );
    let res = api
        .post("/api/v1/ledger/journal", &euro_line("111.00"))
        .await;
    api_error(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid").await;
    let unbalanced = api
        .post(
            "/api/v1/ledger/journal",
            &json!({ "date": day2, "narration": "x", "lines": [
                { "account": rent, "debit": "10.00" }, { "account": bank, "credit": "9.99" } ] }),
        )
        .await;
    api_error(unbalanced, StatusCode::UNPROCESSABLE_ENTITY, "invalid").await;
    let wrong_type = api
        .post(
            "/api/v1/ledger/journal",
            &json!({ "date": day2, "lines": "none" }),
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

    // Any number of lines: "More lines" adds rows, and a line typed in row 8 posts.
    let (status, _, more) = form(
        &api,
        "/ledger/journal",
        &[
            ("action", "more"),
            ("narration", "Split"),
            ("account_7", rent_s.as_str()),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        more.contains("name=\"account_13\"") && more.contains("Split"),
        "{more}"
    );
    let (status, _, body) = form(
        &api,
        "/ledger/journal",
        &[
            ("date", day.as_str()),
            ("narration", "Eight lines down"),
            ("account_0", rent_s.as_str()),
            ("debit_0", "1.00"),
            ("account_7", bank_s.as_str()),
            ("credit_7", "1.00"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");

    // A draft: saved unbalanced, shown as a draft, posting refused, then fixed and posted.
    let draft_fields = [
        ("date", day.as_str()),
        ("narration", "Office chairs"),
        ("account_0", rent_s.as_str()),
        ("debit_0", "80.00"),
        ("account_1", bank_s.as_str()),
        ("credit_1", "8.00"),
        ("action", "draft"),
    ];
    let (status, location, body) = form(&api, "/ledger/journal", &draft_fields).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    assert!(location.ends_with("?saved=1"), "{location}");
    let draft_path = location.trim_end_matches("?saved=1").to_owned();
    let draft_id = draft_path.rsplit('/').next().expect("id").to_owned();
    let (status, draft_page) = page(&api, &location).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        draft_page.contains("DRAFT-") && draft_page.contains("differ by 72.00"),
        "{draft_page}"
    );
    let (status, _, body) = form(&api, &format!("{draft_path}/post"), &[]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, edit) = page(&api, &format!("/ledger/journal/new?draft={draft_id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        edit.contains("Office chairs") && edit.contains("80.00"),
        "the draft is prefilled"
    );
    let mut fixed = draft_fields.to_vec();
    fixed[5] = ("credit_1", "80.00");
    fixed[6] = ("action", "post");
    fixed.push(("draft", draft_id.as_str()));
    let (status, location, body) = form(&api, "/ledger/journal", &fixed).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    assert_eq!(location, draft_path, "the draft itself became the entry");
    let posted = api.json(&format!("/api/v1/journal_entry/{draft_id}")).await;
    assert_eq!(posted["status"], "Posted", "{posted}");

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

/// The money cell of a JSON report row, in minor units.
fn minor(cell: &Value) -> i64 {
    cell["minor"]
        .as_i64()
        .unwrap_or_else(|| panic!("no amount in {cell}"))
}

/// The row of a JSON report whose second cell is `label`.
fn row<'a>(report: &'a Value, label: &str) -> &'a Value {
    report["rows"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["cells"][1] == label))
        .unwrap_or_else(|| panic!("no row {label:?} in {report}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accountant_reads_the_statements_and_closes_the_year() {
    let s = boot(0).await;
    let api = s.admin().await;
    let (day, month) = this_month(&s);
    let year = &month[..4];
    let last_year = year.parse::<i32>().expect("year") - 1;

    // Profit and loss for the year so far: income less expenses, drill-down links.
    let range = format!("from={year}-01&to={month}");
    let (status, pl_page) = page(&api, &format!("/ledger/profit-and-loss?{range}")).await;
    assert_eq!(status, StatusCode::OK, "{pl_page}");
    assert!(pl_page.contains("Total income") && pl_page.contains("/ledger/accounts/"));
    let pl = api
        .json(&format!("/ledger/profit-and-loss?{range}&format=json"))
        .await;
    let income = minor(&row(&pl, "Total income")["cells"][2]);
    let expenses = minor(&row(&pl, "Total expenses")["cells"][2]);
    assert!(income > 0 && expenses > 0, "{pl}");
    assert_eq!(minor(&pl["footer"]["cells"][2]), income - expenses, "{pl}");

    // The balance sheet balances, and last year's result sits in retained earnings.
    let bs = api
        .json(&format!("/ledger/balance-sheet?at={month}&format=json"))
        .await;
    let assets = minor(&row(&bs, "Total assets")["cells"][2]);
    assert!(assets > 0, "{bs}");
    assert_eq!(minor(&bs["footer"]["cells"][2]), assets, "{bs}");
    assert!(
        bs.to_string().contains("Retained earnings"),
        "the closed year's result: {bs}"
    );
    let unclosed = minor(&row(&bs, "Result not yet closed (current year)")["cells"][2]);
    let (status, body) = page(&api, "/ledger/balance-sheet?at=2026-13").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = page(&api, "/ledger/profit-and-loss?format=docx").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // An account's general ledger: opening + debits - credits = closing, line by line.
    let bank = account(&api, "1120").await;
    let gl = api
        .json(&format!(
            "/ledger/accounts/{bank}?from={last_year}-01-01&to={day}&format=json"
        ))
        .await;
    let rows = gl["rows"].as_array().expect("rows");
    assert!(rows.len() > 50, "a year of bank lines: {}", rows.len());
    let mut balance = minor(&rows[0]["cells"][5]);
    for r in &rows[1..] {
        let amount = |i: usize| r["cells"][i]["minor"].as_i64().unwrap_or(0);
        balance += amount(3) - amount(4);
        assert_eq!(amount(5), balance, "running balance at {r}");
        assert!(
            r["link"]
                .as_str()
                .is_some_and(|l| l.starts_with("/ledger/journal/")),
            "{r}"
        );
    }
    assert_eq!(minor(&gl["footer"]["cells"][5]), balance);
    let (status, gl_page) = page(&api, &format!("/ledger/accounts/{bank}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(gl_page.contains("Opening balance") && gl_page.contains("Closing balance"));
    let assets_group = account(&api, "1000").await;
    let (status, body) = page(&api, &format!("/ledger/accounts/{assets_group}")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("is a group"), "{body}");

    // Fiscal years: last year closed by the demo, this year open and closable.
    let (status, years) = page(&api, "/ledger/years").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        years.contains(&format!("FY {last_year}")) && years.contains(&format!("FY {year}")),
        "{years}"
    );
    assert!(years.contains("Closed") && years.contains("Close year"));
    let overlapping = [
        ("start", format!("{year}-06-01")),
        ("end", format!("{}-05-31", last_year + 2)),
    ];
    let fields: Vec<(&str, &str)> = overlapping.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, _, body) = form(&api, "/ledger/years", &fields).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.contains("overlaps the fiscal year"), "{body}");
    let next = last_year + 2;
    let (next_start, next_end) = (format!("{next}-01-01"), format!("{next}-12-31"));
    let (status, location, body) = form(
        &api,
        "/ledger/years",
        &[("start", &next_start), ("end", &next_end)],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    assert!(location.contains(&format!("FY+{next}")), "{location}");

    // Closing this year: its result moves to retained earnings and it is locked.
    let this_year = api
        .json(&format!("/api/v1/fiscal_year?f.name=FY%20{year}"))
        .await;
    let id = this_year["data"][0]["id"].as_u64().expect("this year's id");
    let res = api
        .htmx_form(&format!("/ledger/years/{id}/close"), &[])
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let target = res
        .headers()
        .get("hx-redirect")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(target.contains("closed="), "{target}");
    let bs_after = api
        .json(&format!("/ledger/balance-sheet?at={year}-12&format=json"))
        .await;
    assert_eq!(
        minor(&row(&bs_after, "Result not yet closed (current year)")["cells"][2]),
        0,
        "{bs_after}"
    );
    assert_ne!(unclosed, 0, "the demo year made a result to close");
    let refused = api
        .post(
            "/api/v1/ledger/journal",
            &json!({ "date": day, "narration": "late", "lines": [
                { "account": bank, "debit": "1.00" },
                { "account": account(&api, "4100").await, "credit": "1.00" } ] }),
        )
        .await;
    let e = api_error(refused, StatusCode::UNPROCESSABLE_ENTITY, "invalid").await;
    assert!(e.to_string().contains("is closed"), "{e}");
    let res = api
        .htmx_form(&format!("/ledger/years/{id}/close"), &[])
        .await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
}
