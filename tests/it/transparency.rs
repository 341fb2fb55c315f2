//! The transparency log end to end: every change is a leaf of the Merkle tree, the box
//! signs checkpoints and serves proofs over HTTPS, and an audit bundle verifies with
//! the stand-alone `nexus-verify` — and stops verifying when anything in it changes.

use std::process::Command;

use nexus_tlog::merkle::{leaf_hash, verify_consistency, verify_inclusion};
use nexus_tlog::{Checkpoint, Verifier};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{ADMIN, Api, api_error, boot};

async fn signed_checkpoint(api: &Api, key: &Verifier) -> (Checkpoint, String) {
    let res = api.get("/api/v1/audit/checkpoint").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .expect("type")
            .starts_with("text/plain")
    );
    let note = res.text().await.expect("note");
    (
        Checkpoint::open(&note, key).expect("signed by the box's key"),
        note,
    )
}

fn hashes(v: &Value) -> Vec<[u8; 32]> {
    v.as_array()
        .expect("hashes")
        .iter()
        .map(|h| {
            hex::decode(h.as_str().expect("hex"))
                .expect("hex")
                .try_into()
                .expect("32 bytes")
        })
        .collect()
}

fn verify_with(dir: &std::path::Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_nexus-verify"))
        .arg(dir)
        .args(args)
        .output()
        .expect("run nexus-verify");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_and_proofs_over_https_and_a_bundle_that_verifies_offline() {
    let s = boot(3).await;
    let admin = s.admin().await;
    let key_json = admin.json("/api/v1/audit/key").await;
    let key = Verifier::parse(key_json["key"].as_str().expect("key")).expect("vkey");
    assert_eq!(key_json["fingerprint"], key.fingerprint());
    let key_mode = std::fs::metadata(s.dir.path().join("data/log.key")).map(|m| {
        use std::os::unix::fs::PermissionsExt;
        m.permissions().mode() & 0o777
    });
    assert_eq!(
        key_mode.ok(),
        Some(0o600),
        "the signing key is the service's alone"
    );

    let (early, early_note) = signed_checkpoint(&admin, &key).await;
    assert_eq!(early.size, s.running.kernel.log_head());
    // Changes in a second company too: one log, one tree.
    let beta = admin
        .post(
            "/api/v1/company",
            &json!({ "name": "Beta GmbH", "currency": "EUR", "current_password": ADMIN.1 }),
        )
        .await;
    assert_eq!(beta.status(), StatusCode::CREATED);
    let beta: u64 = beta.json::<Value>().await.expect("json")["id"]
        .as_u64()
        .expect("id");
    for name in ["Tree One", "Tree Two"] {
        admin.customer(name).await;
    }
    let (now, _) = signed_checkpoint(&admin, &key).await;
    assert_eq!(now.size, s.running.kernel.log_head());
    assert!(now.size > early.size);

    // Inclusion of every entry since the early checkpoint, in the tree now.
    for (seq, bytes) in s
        .running
        .kernel
        .log_leaves(early.size.saturating_sub(2).max(1), now.size)
        .expect("leaves")
    {
        let p = admin
            .json(&format!(
                "/api/v1/audit/inclusion?seq={seq}&size={}",
                now.size
            ))
            .await;
        assert_eq!(p["root"], hex::encode(now.root));
        assert_eq!(p["leaf_hash"], hex::encode(leaf_hash(&bytes)));
        verify_inclusion(
            &leaf_hash(&bytes),
            seq - 1,
            now.size,
            &hashes(&p["proof"]),
            &now.root,
        )
        .expect("inclusion");
    }
    // The tree now extends the early one.
    let c = admin
        .json(&format!(
            "/api/v1/audit/consistency?from={}&to={}",
            early.size, now.size
        ))
        .await;
    verify_consistency(
        early.size,
        now.size,
        &early.root,
        &now.root,
        &hashes(&c["proof"]),
    )
    .expect("consistent");
    // Bad requests get reasons; a seller may not read the log's proofs.
    let res = admin
        .get(&format!(
            "/api/v1/audit/inclusion?seq=1&size={}",
            now.size + 5
        ))
        .await;
    api_error(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid").await;
    let res = admin.get("/api/v1/audit/inclusion?seq=x&size=1").await;
    api_error(res, StatusCode::BAD_REQUEST, "malformed").await;
    let res = admin
        .get(&format!("/api/v1/audit/consistency?from={}&to=1", now.size))
        .await;
    api_error(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid").await;
    let sales_pw = s.add_user("sam", "Sales").await;
    let sam = s.api("sam", &sales_pw).await;
    for path in ["/api/v1/audit/checkpoint", "/api/v1/audit/key"] {
        api_error(sam.get(path).await, StatusCode::FORBIDDEN, "forbidden").await;
    }

    // A bundle of the whole log and one of Beta's entries, checked by nexus-verify.
    let notary = nexus_web::audit::Notary::new(
        nexus::serve::log_key(&s.dir.path().join("data")).expect("key"),
    );
    let out = tempfile::tempdir().expect("out");
    let pinned = out.path().join("pinned.txt");
    std::fs::write(&pinned, &early_note).expect("pin");
    let whole = out.path().join("whole");
    notary
        .bundle(&s.running.kernel, &Default::default())
        .await
        .expect("bundle")
        .write_to(&whole)
        .expect("write");
    let key_file = whole.join("key.txt");
    let (ok, said) = verify_with(
        &whole,
        &[
            "--key",
            key_file.to_str().expect("path"),
            "--pinned",
            pinned.to_str().expect("path"),
        ],
    );
    assert!(ok, "{said}");
    assert!(
        said.contains("VERIFIED") && said.contains("the whole log"),
        "{said}"
    );
    assert!(
        said.contains(&format!("your pinned checkpoint of {} entries", early.size)),
        "{said}"
    );
    let theirs = out.path().join("beta");
    let bundle = notary
        .bundle(
            &s.running.kernel,
            &nexus_web::audit::Selection {
                company: Some(beta),
                ..Default::default()
            },
        )
        .await
        .expect("bundle");
    assert!(!bundle.entries.is_empty());
    assert!(bundle.entries.iter().all(|e| e.event["company"] == beta));
    bundle.write_to(&theirs).expect("write");
    let (ok, said) = verify_with(&theirs, &["--pinned", pinned.to_str().expect("path")]);
    assert!(ok, "{said}");
    assert!(said.contains("each proven in the tree"), "{said}");

    // One changed letter in an entry's readable copy: it no longer says what the
    // signed bytes say.
    let entries = std::fs::read_to_string(whole.join("entries.jsonl")).expect("entries");
    let tampered = entries.replacen("Tree One", "Tree Oen", 1);
    assert_ne!(tampered, entries);
    std::fs::write(whole.join("entries.jsonl"), tampered).expect("tamper");
    let (ok, said) = verify_with(&whole, &[]);
    assert!(!ok);
    assert!(said.starts_with("NOT VERIFIED"), "{said}");
    // Another box's key is not this one.
    let other = nexus_tlog::LogKey::from_seed("nexus.local/log/elsewhere", &[7; 32])
        .expect("key")
        .verifier()
        .encode();
    let (ok, said) = verify_with(&theirs, &["--key", &other]);
    assert!(!ok);
    assert!(said.contains("another key"), "{said}");
}

/// IT's path with the appliance stopped: `nexus audit export`, then `nexus audit
/// verify BUNDLE` (the same verifier as `nexus-verify`).
#[test]
fn the_command_line_exports_and_verifies_a_bundle() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let run = |args: &[&str]| {
        let out = crate::crash::nexus(&data)
            .args(args)
            .output()
            .expect("nexus");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (ok, said) = run(&[
        "admin",
        "create-company",
        "--name",
        "Audit AG",
        "--currency",
        "CHF",
    ]);
    assert!(ok, "{said}");
    let bundle = dir.path().join("bundle");
    let bundle_arg = bundle.to_str().expect("path");
    let (ok, said) = run(&["audit", "export", "--out", bundle_arg]);
    assert!(ok, "{said}");
    assert!(said.contains("key fingerprint"), "{said}");
    let (ok, said) = run(&["audit", "verify", bundle_arg]);
    assert!(ok, "{said}");
    assert!(said.contains("VERIFIED"), "{said}");
    let (ok, key) = run(&["audit", "key"]);
    assert!(ok);
    assert!(key.contains(&std::fs::read_to_string(bundle.join("key.txt")).expect("key")));
    // Never over an earlier bundle.
    let (ok, said) = run(&["audit", "export", "--out", bundle_arg]);
    assert!(!ok);
    assert!(said.contains("is not empty"), "{said}");
    let (ok, said) = run(&[
        "audit",
        "export",
        "--out",
        "/tmp/never-made",
        "--company",
        "Nope",
    ]);
    assert!(!ok);
    assert!(said.contains("there is no company"), "{said}");
}
