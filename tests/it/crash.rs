//! Crash safety: the real `nexus` binary, writing under load and running export jobs,
//! is killed with SIGKILL again and again. After every restart each acknowledged write
//! is there, the store opens and the audit chain verifies; at the end every
//! acknowledged job has run to completion (jobs cut short by a kill run again).

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use reqwest::StatusCode;
use serde_json::json;

use crate::common::client_trusting;

const ROUNDS: usize = 12;
const WRITERS: usize = 16;

pub(crate) fn nexus(data: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nexus"));
    cmd.env("NEXUS_DATA_DIR", data)
        .env("NEXUS_BIND", "127.0.0.1")
        .env("NEXUS_HTTPS_PORT", "0")
        .env("NEXUS_HTTP_PORT", "0")
        .env("NEXUS_LOG", "warn");
    cmd
}

/// Starts `nexus serve`; returns the child and its HTTPS port.
fn start(data: &Path) -> (Child, u16) {
    let mut child = nexus(data)
        .arg("serve")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn nexus");
    let stdout = child.stdout.take().expect("stdout");
    let mut reader = BufReader::new(stdout);
    let mut first = String::new();
    reader
        .read_line(&mut first)
        .expect("read the listening line");
    // Keep draining, as a terminal or the journal would.
    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    let port = first
        .split_whitespace()
        .find_map(|w| w.strip_prefix("https="))
        .and_then(|a| a.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {first:?}"));
    (child, port)
}

async fn all_names(client: &reqwest::Client, base: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut offset = 0;
    loop {
        let page: serde_json::Value = client
            .get(format!("{base}/api/v1/customer?limit=500&offset={offset}"))
            .send()
            .await
            .expect("list")
            .json()
            .await
            .expect("json");
        let rows = page["data"].as_array().expect("rows");
        names.extend(
            rows.iter()
                .filter_map(|r| r["name"].as_str().map(str::to_string)),
        );
        offset += rows.len();
        if rows.is_empty() || offset as u64 >= page["total"].as_u64().unwrap_or(0) {
            return names;
        }
    }
}

/// `nexus_store_replayed_batches` from `/metrics`.
async fn replayed_batches(client: &reqwest::Client, base: &str) -> u64 {
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics body");
    text.lines()
        .find_map(|l| l.strip_prefix("nexus_store_replayed_batches "))
        .and_then(|v| v.trim().parse().ok())
        .expect("nexus_store_replayed_batches in /metrics")
}

async fn sign_in(client: &reqwest::Client, base: &str) -> String {
    for _ in 0..50 {
        if let Ok(res) = client
            .post(format!("{base}/api/v1/session"))
            .json(&json!({ "username": "crash", "password": "crash test password" }))
            .send()
            .await
            && res.status() == StatusCode::OK
        {
            let body: serde_json::Value = res.json().await.expect("json");
            return body["csrf_token"].as_str().expect("csrf").to_string();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("could not sign in");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let mut create_user = nexus(&data)
        .args([
            "admin",
            "create-user",
            "--username",
            "crash",
            "--full-name",
            "Crash Test",
            "--role",
            "Administrator",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn create-user");
    create_user
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"crash test password\n")
        .expect("password");
    assert!(create_user.wait().expect("wait").success());

    let acked: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));
    let jobs: Arc<Mutex<Vec<u64>>> = Arc::new(Mutex::new(Vec::new()));
    let mut replayed = 0;
    for round in 0..ROUNDS {
        let (mut child, port) = start(&data);
        let ca = std::fs::read_to_string(data.join("tls/box-ca.crt")).expect("CA");
        let client = client_trusting(&ca);
        let base = format!("https://localhost:{port}");
        let csrf = sign_in(&client, &base).await;
        replayed += replayed_batches(&client, &base).await;

        // Everything acknowledged in earlier rounds must be here after the crash.
        let present = all_names(&client, &base).await;
        let missing: Vec<String> = acked
            .lock()
            .expect("lock")
            .iter()
            .filter(|n| !present.contains(*n))
            .cloned()
            .collect();
        assert!(
            missing.is_empty(),
            "round {round}: {} acknowledged writes lost, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(5)]
        );

        let mut writers = Vec::new();
        for w in 0..WRITERS {
            let (client, base, csrf, acked) =
                (client.clone(), base.clone(), csrf.clone(), acked.clone());
            writers.push(tokio::spawn(async move {
                for i in 0.. {
                    let name = format!("crash r{round} w{w} n{i}");
                    let res = client
                        .post(format!("{base}/api/v1/customer"))
                        .header("x-csrf-token", &csrf)
                        .json(&json!({ "name": name, "status": "Active" }))
                        .send()
                        .await;
                    match res {
                        Ok(r) if r.status() == StatusCode::CREATED => {
                            acked.lock().expect("lock").push(name)
                        }
                        _ => return,
                    }
                }
            }));
        }
        // One more client asks for exports (jobs) while the writers write.
        {
            let (client, base, csrf, jobs) =
                (client.clone(), base.clone(), csrf.clone(), jobs.clone());
            writers.push(tokio::spawn(async move {
                loop {
                    let res = client
                        .post(format!("{base}/api/v1/customer/export"))
                        .header("x-csrf-token", &csrf)
                        .send()
                        .await;
                    let Ok(r) = res else { return };
                    if r.status() != StatusCode::ACCEPTED {
                        return;
                    }
                    let Ok(job) = r.json::<serde_json::Value>().await else {
                        return;
                    };
                    if let Some(id) = job["id"].as_u64() {
                        jobs.lock().expect("lock").push(id);
                    }
                    tokio::time::sleep(Duration::from_millis(40)).await;
                }
            }));
        }
        let delay = rand::rng().random_range(200..700);
        tokio::time::sleep(Duration::from_millis(delay)).await;
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        for w in writers {
            let _ = w.await;
        }
    }
    let total = acked.lock().expect("lock").len();
    // Writes are acknowledged once in the write-ahead log; the data file catches up at
    // checkpoints. A kill between the two must have left batches that the next start
    // applied from the log — otherwise this test never exercised recovery.
    assert!(
        replayed > 0,
        "no restart recovered batches from the write-ahead log"
    );
    assert!(
        total > ROUNDS * 10,
        "the load was real: {total} acknowledged writes"
    );

    // Final check with the server down: the store opens and the chain verifies.
    let verify = nexus(&data)
        .args(["audit", "verify"])
        .output()
        .expect("audit verify");
    let out = String::from_utf8_lossy(&verify.stdout);
    assert!(
        verify.status.success(),
        "audit verify failed: {out} {}",
        String::from_utf8_lossy(&verify.stderr)
    );
    let entries: usize = out
        .split_whitespace()
        .nth(3)
        .and_then(|n| n.parse().ok())
        .expect("entry count");
    assert!(
        entries >= total,
        "{entries} audit entries for {total} acknowledged creates"
    );
    let (mut child, port) = start(&data);
    let ca = std::fs::read_to_string(data.join("tls/box-ca.crt")).expect("CA");
    let client = client_trusting(&ca);
    let base = format!("https://localhost:{port}");
    sign_in(&client, &base).await;
    let present = all_names(&client, &base).await;
    let lost = acked
        .lock()
        .expect("lock")
        .iter()
        .filter(|n| !present.contains(*n))
        .count();
    // Every acknowledged job ran to the end, although kills cut some short.
    let jobs = jobs.lock().expect("lock").clone();
    assert!(!jobs.is_empty(), "the load asked for jobs");
    let mut unfinished = jobs.clone();
    for _ in 0..600 {
        let mut still = Vec::new();
        for id in unfinished {
            let job: serde_json::Value = client
                .get(format!("{base}/api/v1/jobs/{id}"))
                .send()
                .await
                .expect("job")
                .json()
                .await
                .expect("json");
            match job["state"].as_str() {
                Some("done") => {}
                Some("queued" | "running") => still.push(id),
                other => panic!("job {id} ended {other:?}: {job}"),
            }
        }
        unfinished = still;
        if unfinished.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    child.kill().expect("kill");
    let _ = child.wait();
    assert_eq!(lost, 0, "acknowledged writes lost after the last crash");
    assert!(
        unfinished.is_empty(),
        "{} of {} acknowledged jobs never finished: {unfinished:?}",
        unfinished.len(),
        jobs.len()
    );
}
