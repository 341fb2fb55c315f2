//! End to end in a real headless Chromium (Debian's package) driven by Playwright's
//! `playwright-core`: setup, grid, forms, inline edit, live updates between two
//! users, the bank reconciliation's `a` key, the ledger's reports and an invoice, a
//! second company made from the form and the top bar's switcher, screenshots. `scripts/install-test-deps.sh` installs what it needs.

use std::path::PathBuf;
use std::process::Command;

use crate::common::boot_fresh_with_vectors;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_sets_up_the_box_and_works_with_customers_in_chromium() {
    let root = repo_root();
    let script = root.join("tests/e2e/e2e.mjs");
    let playwright = root.join("tests/e2e/node_modules/playwright-core");
    assert!(
        playwright.exists() && PathBuf::from("/usr/bin/chromium").exists(),
        "the browser test needs Chromium and playwright-core: run scripts/install-test-deps.sh"
    );
    let s = boot_fresh_with_vectors(300).await;
    let out_dir = root.join("target/e2e");
    let _ = std::fs::remove_dir_all(&out_dir);
    let setup = s.running.setup_url.clone().expect("setup url");
    let base = s.base.clone();
    let out = out_dir.clone();
    let now = {
        use nexus_kernel::Clock;
        s.clock.now().unix_timestamp().to_string()
    };
    let status = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(script)
            .env("NEXUS_E2E_BASE", base)
            .env("NEXUS_E2E_SETUP_URL", setup)
            .env("NEXUS_E2E_OUT", out)
            .env("NEXUS_E2E_NOW", now)
            .status()
    })
    .await
    .expect("join")
    .expect("run node");
    assert!(
        status.success(),
        "the browser test failed; see its output above and target/e2e/failure.png"
    );
    for shot in ["customers.png", "record.png", "tablet.png"] {
        let meta = std::fs::metadata(out_dir.join(shot))
            .unwrap_or_else(|_| panic!("{shot} was not written"));
        assert!(
            meta.len() > 10_000,
            "{shot} is too small to be a real screenshot"
        );
    }
    // What the browser did is in the store: the customer and the second user exist.
    let k = &s.running.kernel;
    let company = k.default_company().expect("company").expect("exists");
    let admin = nexus_kernel::Principal::system(company);
    let found = k
        .list(
            &admin,
            &nexus_crm::CUSTOMER,
            &nexus_kernel::ListQuery {
                search: Some("E2E Bakery".into()),
                limit: 5,
                ..Default::default()
            },
        )
        .expect("list");
    assert_eq!(found.total, 1);
    assert_eq!(found.rows[0].get("city").display(), "Geneva");
    k.verify_audit().expect("chain verifies");
}
