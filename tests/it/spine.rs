//! The spine over real HTTPS: safe retries with `Idempotency-Key`, and a store that
//! fails (a full disk, on a real tmpfs) saying so truthfully.

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
