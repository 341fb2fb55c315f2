//! The spine over real HTTPS: safe retries with `Idempotency-Key`, and a store that
//! fails (a full disk, on a real tmpfs) saying so truthfully.

use calamine::DataType;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Api, api_error, boot, boot_in};
use crate::ledger::account;

async fn post_with_key(api: &Api, path: &str, key: &str, body: &Value) -> reqwest::Response {
    api.client
        .post(api.url(path))
        .header("x-csrf-token", &api.csrf)
        .header("idempotency-key", key)
        .json(body)
        .send()
        .await
        .expect("POST")
}

async fn customers_named(api: &Api, name: &str) -> u64 {
    let list = api
        .json(&format!(
            "/api/v1/customer?f.name={}",
            name.replace(' ', "%20")
        ))
        .await;
    list["data"].as_array().map_or(0, |rows| {
        rows.iter().filter(|r| r["name"] == name).count() as u64
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_create_with_an_idempotency_key_creates_one_record() {
    let s = boot(0).await;
    let api = s.admin().await;
    let body = json!({ "name": "Idem AG", "status": "Lead" });
    let first = post_with_key(&api, "/api/v1/customer", "order-1", &body).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().await.expect("json");
    let again = post_with_key(&api, "/api/v1/customer", "order-1", &body).await;
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(
        again.json::<Value>().await.expect("json"),
        first,
        "the first answer, again"
    );
    assert_eq!(customers_named(&api, "Idem AG").await, 1);

    // The same key for another request: refused, naming the key; nothing created.
    let other = json!({ "name": "Other AG", "status": "Lead" });
    let res = post_with_key(&api, "/api/v1/customer", "order-1", &other).await;
    let err = api_error(
        res,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
    )
    .await;
    assert!(
        err["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("\"order-1\"")),
        "{err}"
    );
    assert_eq!(customers_named(&api, "Other AG").await, 0);

    // A key that is not one.
    for bad in ["has space", &"k".repeat(256)] {
        let res = post_with_key(&api, "/api/v1/customer", bad, &other).await;
        api_error(res, StatusCode::BAD_REQUEST, "malformed").await;
    }
    assert_eq!(customers_named(&api, "Other AG").await, 0);

    // A refused request changed nothing, so its key is free for the corrected one.
    let res = post_with_key(
        &api,
        "/api/v1/customer",
        "order-2",
        &json!({ "status": "Lead" }),
    )
    .await;
    api_error(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid").await;
    let fixed = json!({ "name": "Fixed AG", "status": "Lead" });
    let res = post_with_key(&api, "/api/v1/customer", "order-2", &fixed).await;
    assert_eq!(res.status(), StatusCode::CREATED);

    // Keys are per user: another user's "order-1" is their own.
    let password = s.add_user("sam", "Sales").await;
    let sam = s.api("sam", &password).await;
    let res = post_with_key(&sam, "/api/v1/customer", "order-1", &other).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(customers_named(&api, "Other AG").await, 1);

    // Module routes too: a retried journal entry is posted once.
    let (rent, bank) = (account(&api, "6200").await, account(&api, "1120").await);
    let day = s.today().to_string();
    let entry = json!({ "date": day, "narration": "Retried rent", "lines": [
        { "account": rent, "debit": "10.00" }, { "account": bank, "credit": "10.00" }
    ]});
    let a = post_with_key(&api, "/api/v1/ledger/journal", "je-1", &entry).await;
    assert_eq!(a.status(), StatusCode::CREATED);
    let a: Value = a.json().await.expect("json");
    let b = post_with_key(&api, "/api/v1/ledger/journal", "je-1", &entry).await;
    assert_eq!(b.status(), StatusCode::CREATED);
    assert_eq!(b.json::<Value>().await.expect("json"), a);
    let list = api
        .json("/api/v1/journal_entry?f.narration=Retried%20rent")
        .await;
    assert_eq!(list["data"].as_array().map(Vec::len), Some(1), "{list}");
}

/// Mounts a tmpfs of `mib` MiB on `dir` (the tests run as root, as CI does).
fn mount_tmpfs(dir: &std::path::Path, mib: u32) {
    let status = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
        .arg(dir)
        .status()
        .expect("run mount");
    assert!(
        status.success(),
        "mounting a tmpfs needs root (the suite runs as root)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_halts_the_writer_and_every_answer_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mount = dir.path().to_path_buf();
    mount_tmpfs(&mount, 64);
    let s = boot_in(dir, 0).await;
    let api = s.admin().await;
    // Fill what is left of the disk.
    {
        use std::io::Write;
        let mut filler = std::fs::File::create(mount.join("filler")).expect("filler");
        let chunk = vec![0u8; 1 << 20];
        while filler.write_all(&chunk).is_ok() {}
        let _ = filler.sync_all();
    }
    let notes = "n".repeat(19_000);
    let mut acknowledged = 0u64;
    let mut failure = None;
    for i in 0..5000 {
        let res = api
            .post(
                "/api/v1/customer",
                &json!({ "name": format!("Filler {i}"), "status": "Lead", "notes": notes }),
            )
            .await;
        if res.status() != StatusCode::CREATED {
            failure = Some(res);
            break;
        }
        acknowledged += 1;
    }
    let res = failure.expect("the disk filled up within 5000 creates");
    // Whichever step met the full disk, the answer is the truth about this write.
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = res.json().await.expect("error json");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    match body["error"]["code"].as_str() {
        // The batch was being logged or committed: the log may hold it.
        Some("writer_halted") => {
            assert!(message.contains("may or may not have been saved"), "{body}")
        }
        // The writer had stopped before this write (a checkpoint met the full disk).
        Some("writer_stopped") => assert!(message.contains("nothing was saved"), "{body}"),
        // The batch failed before it was logged.
        Some("storage") => assert!(message.contains("nothing was changed"), "{body}"),
        _ => panic!("unexpected answer {body}"),
    }
    let health = s
        .client()
        .get(format!("{}/healthz", s.base))
        .send()
        .await
        .expect("healthz");
    assert_eq!(health.status(), StatusCode::SERVICE_UNAVAILABLE);
    let reason = health.text().await.expect("body");
    assert!(
        reason.contains("writer has stopped") || reason.contains("writes are failing"),
        "{reason}"
    );
    let metrics = api.get("/metrics").await.text().await.expect("metrics");
    assert!(metrics.contains("nexus_store_writer_up 0"), "{metrics}");

    // Free the disk and start again on the same data: every acknowledged create is there.
    let data = s.dir.path().to_path_buf();
    s.running.shutdown().await;
    std::fs::remove_file(mount.join("filler")).expect("free the disk");
    let config = crate::common::config(&data);
    let running = nexus::serve::start(&config, None, crate::common::test_clock())
        .await
        .expect("the store opens again after the full disk");
    let restarted = crate::common::TestServer {
        base: format!("https://localhost:{}", running.https.port()),
        ca_pem: std::fs::read_to_string(&running.ca_path).expect("CA"),
        running,
        clock: crate::common::test_clock(),
        dir: tempfile::tempdir().expect("tempdir"),
    };
    assert!(restarted.running.kernel.health().is_ok());
    assert!(
        restarted.running.kernel.verify_audit().is_ok(),
        "the event log verifies"
    );
    let api = restarted.admin().await;
    let list = api.json("/api/v1/customer?f.name=Filler&limit=1").await;
    let total = list["total"].as_u64().expect("total");
    // An answer of "may or may not" covers one batch more than was acknowledged.
    assert!(
        total >= acknowledged,
        "{total} customers, {acknowledged} acknowledged"
    );
    let res = api
        .post(
            "/api/v1/customer",
            &json!({ "name": "After", "status": "Lead" }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED, "writes work again");
    restarted.running.shutdown().await;
    let _ = std::process::Command::new("umount")
        .arg("-l")
        .arg(&mount)
        .status();
}

/// Polls job `location` (an API path) until it is finished; returns its JSON.
pub async fn finished_job(api: &Api, location: &str) -> Value {
    for _ in 0..600 {
        let job = api.json(location).await;
        if ["done", "failed", "cancelled"].contains(&job["state"].as_str().unwrap_or_default()) {
            return job;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("job {location} did not finish within 30 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_export_runs_as_a_job_with_progress_and_a_download() {
    let s = boot(2500).await;
    let api = s.admin().await;
    // Over the API: 202, a Location to follow, progress, then the file.
    let res = api
        .post("/api/v1/customer/export?sort=name", &json!({}))
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let location = res.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    let job: Value = res.json().await.expect("json");
    assert_eq!(job["kind"], "web.export_csv");
    let done = finished_job(&api, &location).await;
    assert_eq!(done["state"], "done", "{done}");
    assert_eq!(
        done["progress"],
        json!({ "done": 2500, "total": 2500 }),
        "{done}"
    );
    assert_eq!(done["result"]["rows"], 2500);
    let download = done["download"].as_str().expect("a download link");
    let file = api.get(download).await;
    assert_eq!(file.status(), StatusCode::OK);
    assert_eq!(file.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = file.text().await.expect("csv");
    assert_eq!(csv.lines().count(), 2501, "a header and every customer");
    assert!(csv.starts_with("id,name,"));

    // From the list page: the button posts, the job's page shows its progress bar.
    let list = api.get("/e/customer").await.text().await.expect("page");
    assert!(
        list.contains("action=\"/e/customer/export\""),
        "the export button posts"
    );
    let res = api
        .client
        .post(api.url("/e/customer/export?f.city=Zurich"))
        .form(&[("_csrf", api.csrf.as_str())])
        .send()
        .await
        .expect("POST");
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let page_path = res.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    let id = page_path.trim_start_matches("/jobs/").to_owned();
    let done = finished_job(&api, &format!("/api/v1/jobs/{id}")).await;
    assert_eq!(done["state"], "done", "{done}");
    let page = api.get(&page_path).await.text().await.expect("job page");
    assert!(page.contains("Download CSV"), "{page}");
    let zurich = api
        .get(&format!("/jobs/{id}/download"))
        .await
        .text()
        .await
        .expect("csv");
    assert!(
        zurich.lines().skip(1).all(|l| l.contains("Zurich")),
        "the filter applies"
    );

    // The same list as a spreadsheet: typed cells that a spreadsheet reader reads back.
    let res = api
        .post("/api/v1/customer/export?format=xlsx&sort=name", &json!({}))
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let job: Value = res.json().await.expect("json");
    assert_eq!(job["kind"], "web.export_xlsx");
    let done = finished_job(&api, &format!("/api/v1/jobs/{}", job["id"])).await;
    assert_eq!(done["state"], "done", "{done}");
    let file = api
        .get(done["download"].as_str().expect("a download link"))
        .await;
    assert_eq!(
        file.headers()["content-type"],
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    );
    assert!(
        file.headers()["content-disposition"]
            .to_str()
            .is_ok_and(|d| d.ends_with(".xlsx\"")),
        "{:?}",
        file.headers()
    );
    let bytes = file.bytes().await.expect("xlsx");
    let mut book: calamine::Xlsx<_> =
        calamine::open_workbook_from_rs(std::io::Cursor::new(bytes.to_vec())).expect("an XLSX");
    let sheet = calamine::Reader::worksheet_range_at(&mut book, 0)
        .expect("a sheet")
        .expect("readable");
    let rows: Vec<_> = sheet.rows().collect();
    let header = rows
        .iter()
        .position(|r| r.first().is_some_and(|c| c.get_string() == Some("id")))
        .expect("a header row");
    assert_eq!(rows[header][1].get_string(), Some("name"));
    let body = &rows[header + 1..];
    assert!(body.len() >= 2500, "every customer: {}", body.len());
    let limit = rows[header]
        .iter()
        .position(|c| c.get_string() == Some("credit_limit"))
        .expect("a credit limit column");
    assert!(
        body.iter()
            .any(|r| matches!(r[limit], calamine::Data::Float(f) if f > 0.0)),
        "money is a number in the spreadsheet"
    );
    let bad = api
        .post("/api/v1/customer/export?format=pdf", &json!({}))
        .await;
    api_error(bad, StatusCode::BAD_REQUEST, "malformed").await;
    let list = api.get("/e/customer").await.text().await.expect("page");
    assert!(
        list.contains("Export XLSX"),
        "the list offers the spreadsheet"
    );

    // Who may: a viewer cannot export; another user's job is not found to them.
    let password = s.add_user("vera", "Viewer").await;
    let vera = s.api("vera", &password).await;
    let res = vera.post("/api/v1/customer/export", &json!({})).await;
    api_error(res, StatusCode::FORBIDDEN, "forbidden").await;
    api_error(
        vera.get(&location).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_eq!(vera.get(download).await.status(), StatusCode::NOT_FOUND);
    // Bad input: an unknown entity, a bad id, a finished job cancelled.
    api_error(
        api.post("/api/v1/nothing/export", &json!({})).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    api_error(
        api.get("/api/v1/jobs/abc").await,
        StatusCode::BAD_REQUEST,
        "malformed",
    )
    .await;
    let res = api.post(&format!("{location}/cancel"), &json!({})).await;
    api_error(res, StatusCode::CONFLICT, "conflict").await;
    // The administrator's list shows them, and the schedules.
    let jobs = api.get("/jobs").await.text().await.expect("jobs page");
    assert!(
        jobs.contains("Export customers as CSV") && jobs.contains("prune-idempotency-keys"),
        "{jobs}"
    );
}

/// The sidebar's links (`nav .sidebar … a href`), from a page's HTML.
fn nav_links(html: &str) -> Vec<String> {
    let nav = html
        .split("<nav class=\"sidebar\"")
        .nth(1)
        .and_then(|rest| rest.split("</nav>").next())
        .unwrap_or_default();
    nav.split("href=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_navigation_shows_only_what_the_user_may_open() {
    let s = boot(0).await;
    let admin = s.admin().await;
    let links = |api: Api, page: &'static str| async move {
        nav_links(&api.get(page).await.text().await.expect("page"))
    };
    // On the ledger's pages the ledger's entries are listed.
    let all = links(s.admin().await, "/m/ledger").await;
    for href in [
        "/m/ledger",
        "/ledger/journal/new",
        "/ledger/trial-balance",
        "/admin",
    ] {
        assert!(
            all.iter().any(|l| l == href),
            "administrator: {href} in {all:?}"
        );
    }
    drop(admin);
    let password = s.add_user("acc", "Accountant").await;
    let acc = links(s.api("acc", &password).await, "/m/ledger").await;
    assert!(acc.iter().any(|l| l == "/ledger/journal/new"), "{acc:?}");
    assert!(
        !acc.iter().any(|l| l == "/admin"),
        "an accountant has no admin link: {acc:?}"
    );
    let password = s.add_user("sally", "Sales").await;
    let sales = links(s.api("sally", &password).await, "/").await;
    assert!(sales.iter().any(|l| l == "/e/customer"), "{sales:?}");
    assert!(
        !sales
            .iter()
            .any(|l| l == "/m/ledger" || l.starts_with("/ledger/") || l == "/admin"),
        "sales sees no ledger and no admin: {sales:?}"
    );
    let password = s.add_user("vic", "Viewer").await;
    let viewer = links(s.api("vic", &password).await, "/").await;
    assert!(
        !viewer.iter().any(|l| l == "/m/ledger" || l == "/admin"),
        "{viewer:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_module_brings_its_own_subcommand() {
    let s = boot(0).await;
    let data = s.dir.path().join("data");
    s.running.shutdown().await;
    let nexus = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_nexus"))
            .env("NEXUS_DATA_DIR", &data)
            .env("NEXUS_LOG", "warn")
            .args(args)
            .output()
            .expect("run nexus")
    };
    let out = nexus(&["ledger", "export", "--company", "Test Company"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let journal = String::from_utf8_lossy(&out.stdout);
    assert!(
        journal.contains(" open Assets:") && journal.contains(" * \""),
        "{journal}"
    );
    let out = nexus(&["ledger", "export", "--company", "Nobody Ltd"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("there is no company \"Nobody Ltd\"; there are: Test Company"),
        "{err}"
    );
    let out = nexus(&["ledger", "export", "--format", "csv"]);
    assert!(!out.status.success(), "an unknown format is refused");
    let help = nexus(&["--help"]);
    assert!(
        String::from_utf8_lossy(&help.stdout).contains("ledger"),
        "the module's subcommand is listed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_keeps_its_openapi_contract_under_schemathesis() {
    let s = boot(20).await;
    let api = s.admin().await;
    // Every JSON route is in the document, with its path parameters declared.
    let doc = api.json("/api/v1/openapi.json").await;
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().expect("paths");
    for route in [
        "/api/v1/customer/{id}",
        "/api/v1/ledger/journal",
        "/api/v1/ledger/bank-accounts/{id}/statements",
        "/api/v1/jobs/{id}",
        "/api/v1/customer/export",
    ] {
        assert!(paths.contains_key(route), "{route} is in the document");
    }
    let statements = &paths["/api/v1/ledger/bank-accounts/{id}/statements"]["post"];
    assert_eq!(
        statements["parameters"]
            .as_array()
            .map(|p| p.iter().any(|p| p["name"] == "id" && p["in"] == "path")),
        Some(true)
    );
    assert!(
        statements["responses"]["422"].is_object() && statements["responses"]["503"].is_object()
    );
    // The independent client: schemathesis, with the contract checks, over every
    // operation but signing in and out and changing users and roles.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let install = std::process::Command::new(root.join("scripts/install-schemathesis.sh"))
        .status()
        .expect("run install-schemathesis.sh");
    assert!(
        install.success(),
        "schemathesis is needed for this test (it is never skipped)"
    );
    let ca = s.running.ca_path.display().to_string();
    let base = s.base.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(root.join("scripts/schemathesis.sh"))
            .args([
                base.as_str(),
                ca.as_str(),
                crate::common::ADMIN.0,
                crate::common::ADMIN.1,
                "3",
            ])
            .output()
            .expect("run schemathesis")
    })
    .await
    .expect("join");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found contract failures:\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        report.contains("openapi.json: valid OpenAPI 3.1.0"),
        "{report}"
    );
    assert!(report.contains(" passed"), "{report}");
}

/// The names in a `GET /api/v1/tools` answer.
fn tool_names(listed: &Value) -> Vec<String> {
    listed["data"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(|t| t["function"]["name"].as_str().map(str::to_owned))
        .collect()
}

/// Every installed tool with arguments that fit it, as a model would call it.
fn tool_args(name: &str, today: &str, first: &str) -> Value {
    match name {
        "crm.find_customers" => json!({ "query": "Bakery", "limit": 3 }),
        "ledger.trial_balance" => json!({ "from": first, "to": today }),
        "ledger.account_ledger" => json!({ "account": "1120", "from": first, "to": today }),
        "ledger.open_items" => json!({ "ledger": "receivable" }),
        other => panic!("no arguments for the tool {other}: add them here"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modules_tools_answer_as_the_caller_and_change_nothing() {
    let s = boot(40).await;
    let today = s.today();
    let first = format!("{}-01-01", today.year());
    let today = today.to_string();
    let admin = s.admin().await;
    let listed = admin.json("/api/v1/tools").await;
    let names = tool_names(&listed);
    assert_eq!(
        names,
        [
            "crm.find_customers",
            "ledger.trial_balance",
            "ledger.account_ledger",
            "ledger.open_items"
        ]
    );
    assert_eq!(
        listed["data"][1]["function"]["parameters"]["required"],
        json!(["from", "to"])
    );

    // Every tool answers, and none of them writes: the event log does not move.
    let head = s.running.kernel.log_head();
    for name in &names {
        let res = admin
            .post(
                &format!("/api/v1/tools/{name}"),
                &tool_args(name, &today, &first),
            )
            .await;
        assert_eq!(res.status(), StatusCode::OK, "{name}");
        let body: Value = res.json().await.expect("json");
        assert_eq!(body["tool"], *name);
        assert!(body["result"].is_object(), "{name}: {body}");
    }
    assert_eq!(s.running.kernel.log_head(), head, "a tool wrote something");

    // What the answers say agrees with the pages' own API.
    let tb = admin
        .post(
            "/api/v1/tools/ledger.trial_balance",
            &json!({ "from": first, "to": today }),
        )
        .await
        .json::<Value>()
        .await
        .expect("json");
    let debits: i64 = tb["result"]["accounts"]
        .as_array()
        .expect("accounts")
        .iter()
        .filter(|a| a["group"] == false)
        .map(|a| cents(&a["debit"]))
        .sum();
    let credits: i64 = tb["result"]["accounts"]
        .as_array()
        .expect("accounts")
        .iter()
        .filter(|a| a["group"] == false)
        .map(|a| cents(&a["credit"]))
        .sum();
    assert!(debits > 0, "the demo books have postings: {tb}");
    assert_eq!(debits, credits, "the trial balance balances");
    let some = admin.json("/api/v1/customer?limit=1").await;
    let word = some["data"][0]["name"]
        .as_str()
        .and_then(|n| n.split(' ').next())
        .expect("a demo customer")
        .to_owned();
    let found = admin
        .post(
            "/api/v1/tools/crm.find_customers",
            &json!({ "query": word, "limit": 2 }),
        )
        .await
        .json::<Value>()
        .await
        .expect("json");
    let customers = found["result"]["customers"].as_array().expect("customers");
    assert!(!customers.is_empty() && customers.len() <= 2, "{found}");
    assert!(
        customers.iter().all(|c| c["name"]
            .as_str()
            .is_some_and(|n| n.to_lowercase().contains(&word.to_lowercase()))),
        "{found}"
    );

    // Bad calls: a clear refusal naming what is wrong.
    let res = admin.post("/api/v1/tools/ledger.nothing", &json!({})).await;
    api_error(res, StatusCode::NOT_FOUND, "not_found").await;
    let res = admin
        .post(
            "/api/v1/tools/ledger.trial_balance",
            &json!({ "from": first }),
        )
        .await;
    let body = api_error(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid").await;
    assert!(body.to_string().contains("to"), "{body}");
    let res = admin
        .post(
            "/api/v1/tools/ledger.trial_balance",
            &json!({ "from": today, "to": first, "extra": 1 }),
        )
        .await;
    let body = api_error(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid").await;
    assert!(body.to_string().contains("extra"), "{body}");
    let res = admin
        .post(
            "/api/v1/tools/ledger.open_items",
            &json!({ "ledger": "sideways" }),
        )
        .await;
    api_error(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid").await;

    // A viewer of customers sees and may call only CRM's tool.
    let password = s.add_user("vera", "Viewer").await;
    let viewer = s.api("vera", &password).await;
    assert_eq!(
        tool_names(&viewer.json("/api/v1/tools").await),
        ["crm.find_customers"]
    );
    let res = viewer
        .post(
            "/api/v1/tools/ledger.trial_balance",
            &json!({ "from": first, "to": today }),
        )
        .await;
    api_error(res, StatusCode::FORBIDDEN, "forbidden").await;
    let res = viewer
        .post(
            "/api/v1/tools/crm.find_customers",
            &json!({ "query": "Bakery" }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
}

/// `"1234.50"` as cents.
fn cents(v: &Value) -> i64 {
    nexus_kernel::parse_money(v.as_str().expect("an amount")).expect("money")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ledger_checks_its_totals_as_a_job_on_demand_and_weekly() {
    let s = boot(20).await;
    let schedules = s.running.kernel.schedules().expect("schedules");
    assert!(
        schedules
            .iter()
            .any(|sc| sc.kind == "ledger.verify_totals" && sc.enabled),
        "the ledger's weekly check is scheduled: {schedules:?}"
    );
    let admin = s.admin().await;
    let res = admin.htmx_form("/ledger/checks/totals", &[]).await;
    assert!(res.status().is_success() || res.status().is_redirection());
    let jobs = admin.json("/api/v1/jobs").await;
    let job = jobs["data"]
        .as_array()
        .expect("jobs")
        .iter()
        .find(|j| j["kind"] == "ledger.verify_totals")
        .cloned()
        .expect("the check was queued");
    let done = crate::spine::finished_job(&admin, &format!("/api/v1/jobs/{}", job["id"])).await;
    assert_eq!(done["state"], "done", "{done}");
    assert_eq!(done["result"]["agree"], true, "{done}");
    assert!(
        done["result"]["lines"].as_u64().is_some_and(|n| n > 0),
        "{done}"
    );

    // Someone who may not read journal lines cannot ask for it.
    let password = s.add_user("vince", "Viewer").await;
    let viewer = s.api("vince", &password).await;
    let res = viewer.htmx_form("/ledger/checks/totals", &[]).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
}
