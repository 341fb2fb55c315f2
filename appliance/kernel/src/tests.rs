//! Kernel behaviour over a real store file.

use std::sync::Arc;

use nexus_store::{Store, Table};
use time::macros::datetime;

use super::*;
use crate::builtin::{ROLE, USER};
use crate::test_entities::{CONTACT, CUSTOMER};

pub(crate) struct Fixture {
    pub(crate) _dir: tempfile::TempDir,
    pub(crate) kernel: Kernel,
    pub(crate) company: u64,
    pub(crate) admin: Principal,
}

pub(crate) async fn fixture() -> Fixture {
    fixture_with_clock().await.0
}

/// A fixture and the clock it runs on, for tests that move time.
pub(crate) async fn fixture_with_clock() -> (Fixture, Arc<ManualClock>) {
    crate::test_entities::install();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("nexus.redb")).expect("store");
    let clock = Arc::new(ManualClock::new(datetime!(2026-03-01 09:00 UTC)));
    let kernel = Kernel::new(store, clock.clone());
    let company = kernel.create_company("Acme", "CHF").await.expect("company");
    let role = kernel.role_by_name(company, "Administrator").expect("role");
    kernel
        .create_user(company, "ada", "Ada Admin", "correct horse battery", role)
        .await
        .expect("user");
    let (_, session) = kernel
        .login("ada", "correct horse battery", None)
        .await
        .expect("login");
    let f = Fixture {
        _dir: dir,
        kernel,
        company,
        admin: session.principal,
    };
    (f, clock)
}

pub(crate) fn form(pairs: &[(&str, &str)]) -> Input {
    Input::Form(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

fn field_errors(e: KernelError) -> Vec<(String, String)> {
    match e {
        KernelError::Invalid(f) => f.0,
        other => panic!("expected field errors, got {other:?}"),
    }
}

#[tokio::test]
async fn create_update_and_history_with_a_verifiable_audit_chain() {
    let f = fixture().await;
    let c = f
        .kernel
        .create(
            &f.admin,
            &CUSTOMER,
            form(&[
                ("name", "Globex"),
                ("status", "active"),
                ("credit_limit", "1,500.5"),
            ]),
        )
        .await
        .expect("create");
    assert_eq!(c.version, 1);
    assert_eq!(
        c.get("status"),
        &Value::Text("Active".into()),
        "choices are normalised"
    );
    assert_eq!(c.get("credit_limit"), &Value::Money(150_050));
    let c2 = f
        .kernel
        .update(&f.admin, &CUSTOMER, c.id, 1, form(&[("city", "Basel")]))
        .await
        .expect("update");
    assert_eq!(c2.version, 2);
    assert_eq!(
        c2.get("name"),
        &Value::Text("Globex".into()),
        "a partial update keeps other fields"
    );
    let history = f
        .kernel
        .history(&f.admin, &CUSTOMER, c.id)
        .expect("history");
    assert_eq!(history.len(), 2);
    assert_eq!(history[0].op, Op::Update);
    assert_eq!(history[0].changed_fields(), vec!["city".to_string()]);
    assert_eq!(history[0].actor_name, "Ada Admin");
    assert_eq!(history[1].op, Op::Create);
    let report = f.kernel.verify_audit().expect("chain verifies");
    assert!(
        report.entries >= 6,
        "company, roles, user and customer changes are audited"
    );
}

#[tokio::test]
async fn a_stale_write_is_refused_and_names_who_changed_it() {
    let f = fixture().await;
    let c = f
        .kernel
        .create(
            &f.admin,
            &CUSTOMER,
            form(&[("name", "Initech"), ("status", "Lead")]),
        )
        .await
        .expect("create");
    f.kernel
        .update(&f.admin, &CUSTOMER, c.id, 1, form(&[("city", "Austin")]))
        .await
        .expect("first edit");
    let stale = f
        .kernel
        .update(&f.admin, &CUSTOMER, c.id, 1, form(&[("city", "Dallas")]))
        .await
        .expect_err("stale edit");
    let msg = stale.to_string();
    assert!(
        msg.contains("changed by Ada Admin")
            && msg.contains("version 1")
            && msg.contains("version 2"),
        "{msg}"
    );
    let now = f.kernel.get(&f.admin, &CUSTOMER, c.id).expect("get");
    assert_eq!(
        now.get("city"),
        &Value::Text("Austin".into()),
        "the stale write changed nothing"
    );
}

#[tokio::test]
async fn validation_reports_every_bad_field_and_stores_nothing() {
    let f = fixture().await;
    let before = f.kernel.store().head();
    let e = f
        .kernel
        .create(
            &f.admin,
            &CUSTOMER,
            form(&[
                ("email", "not-an-email"),
                ("credit_limit", "12.345"),
                ("status", "Sleeping"),
                ("bogus", "1"),
            ]),
        )
        .await
        .expect_err("invalid");
    let fields: Vec<String> = field_errors(e).into_iter().map(|(f, _)| f).collect();
    assert_eq!(
        fields,
        vec!["name", "email", "status", "credit_limit", "bogus"]
    );
    assert_eq!(
        f.kernel.store().head(),
        before,
        "no change-log entry for a refused write"
    );

    let json: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(r#"{"name": "X", "status": "Lead", "credit_limit": 12.5}"#)
            .expect("json");
    let e = f
        .kernel
        .create(&f.admin, &CUSTOMER, Input::Json(json))
        .await
        .expect_err("float money");
    let errs = field_errors(e);
    assert!(errs[0].1.contains("decimal string"), "{errs:?}");
}

#[tokio::test]
async fn unique_names_refs_and_deletes_keep_the_data_consistent() {
    let f = fixture().await;
    let c = f
        .kernel
        .create(
            &f.admin,
            &CUSTOMER,
            form(&[("name", "Umbrella"), ("status", "Lead")]),
        )
        .await
        .expect("create");
    let dup = f
        .kernel
        .create(
            &f.admin,
            &CUSTOMER,
            form(&[("name", "UMBRELLA"), ("status", "Lead")]),
        )
        .await
        .expect_err("duplicate");
    assert_eq!(field_errors(dup)[0].0, "name");
    let bad_ref = f
        .kernel
        .create(
            &f.admin,
            &CONTACT,
            form(&[("name", "Jill"), ("customer", "999999")]),
        )
        .await
        .expect_err("missing ref");
    assert!(
        field_errors(bad_ref)[0]
            .1
            .contains("no customer with id 999999")
    );
    let contact = f
        .kernel
        .create(
            &f.admin,
            &CONTACT,
            form(&[("name", "Jill"), ("customer", &c.id.to_string())]),
        )
        .await
        .expect("contact");
    let refused = f
        .kernel
        .delete(&f.admin, &CUSTOMER, c.id, None)
        .await
        .expect_err("referenced");
    assert!(
        refused.to_string().contains("contacts still refer"),
        "{refused}"
    );
    f.kernel
        .delete(&f.admin, &CONTACT, contact.id, Some(1))
        .await
        .expect("delete contact");
    f.kernel
        .delete(&f.admin, &CUSTOMER, c.id, Some(1))
        .await
        .expect("delete customer");
    assert!(matches!(
        f.kernel.get(&f.admin, &CUSTOMER, c.id),
        Err(KernelError::NotFound(_))
    ));
    // The name is free again once the record is gone.
    f.kernel
        .create(
            &f.admin,
            &CUSTOMER,
            form(&[("name", "Umbrella"), ("status", "Lead")]),
        )
        .await
        .expect("name reusable");
    f.kernel.verify_audit().expect("chain verifies");
}

#[tokio::test]
async fn companies_never_see_each_other() {
    let f = fixture().await;
    let other = f
        .kernel
        .create_company("Other Co", "EUR")
        .await
        .expect("company");
    let role = f.kernel.role_by_name(other, "Administrator").expect("role");
    f.kernel
        .create_user(other, "otto", "Otto Other", "another long password", role)
        .await
        .expect("user");
    let (_, s) = f
        .kernel
        .login("otto", "another long password", None)
        .await
        .expect("login");
    let mine = f
        .kernel
        .create(
            &f.admin,
            &CUSTOMER,
            form(&[("name", "Secret Customer"), ("status", "Active")]),
        )
        .await
        .expect("create");
    assert!(matches!(
        f.kernel.get(&s.principal, &CUSTOMER, mine.id),
        Err(KernelError::NotFound(_))
    ));
    let e = f
        .kernel
        .update(&s.principal, &CUSTOMER, mine.id, 1, form(&[("city", "X")]))
        .await
        .expect_err("other tenant");
    assert!(matches!(e, KernelError::NotFound(_)));
    let list = f
        .kernel
        .list(
            &s.principal,
            &CUSTOMER,
            &ListQuery {
                limit: 50,
                ..Default::default()
            },
        )
        .expect("list");
    assert_eq!(list.total, 0);
    // A reference to another company's record is refused too.
    let e = f
        .kernel
        .create(
            &s.principal,
            &CONTACT,
            form(&[("name", "Spy"), ("customer", &mine.id.to_string())]),
        )
        .await
        .expect_err("cross-tenant ref");
    assert_eq!(field_errors(e)[0].0, "customer");
    assert_eq!(f.company, f.admin.company);
}

#[tokio::test]
async fn roles_limit_actions() {
    let f = fixture().await;
    let viewer = f.kernel.role_by_name(f.company, "Viewer").expect("role");
    f.kernel
        .create_user(f.company, "vic", "Vic Viewer", "viewer password 1", viewer)
        .await
        .expect("user");
    let (_, s) = f
        .kernel
        .login("vic", "viewer password 1", None)
        .await
        .expect("login");
    let e = f
        .kernel
        .create(
            &s.principal,
            &CUSTOMER,
            form(&[("name", "Nope"), ("status", "Lead")]),
        )
        .await
        .expect_err("viewer cannot create");
    assert_eq!(e.to_string(), "you are not allowed to create customers");
    assert!(
        f.kernel
            .list(&s.principal, &USER, &ListQuery::default())
            .is_err()
    );
    assert!(
        f.kernel
            .list(&s.principal, &CUSTOMER, &ListQuery::default())
            .is_ok()
    );
    // Only an administrator with every permission creates companies (companies_tests).
    let e = f
        .kernel
        .create(
            &s.principal,
            &builtin::COMPANY,
            form(&[("name", "Sneaky"), ("currency", "USD")]),
        )
        .await
        .expect_err("company creation");
    assert!(matches!(e, KernelError::Forbidden { .. }), "{e:?}");
    // A role with a bad permission string is refused with the reason.
    let e = f
        .kernel
        .create(
            &f.admin,
            &ROLE,
            form(&[("name", "Odd"), ("permissions", "customers:r")]),
        )
        .await
        .expect_err("bad grants");
    assert!(field_errors(e)[0].1.contains("is not an entity"));
}

#[tokio::test]
async fn lists_sort_filter_and_page_on_the_server() {
    let f = fixture().await;
    // 120 customers, created out of name order, every fifth in Zurich.
    const WORDS: [&str; 10] = [
        "Umbra", "Acme", "Kite", "Orbit", "Delta", "Zephyr", "Birch", "Nimbus", "Quill", "Fjord",
    ];
    for i in 0..120u64 {
        let name = format!("{} {i:03}", WORDS[(i * 7 % 10) as usize]);
        let city = if i % 5 == 0 { "Zurich" } else { "Basel" };
        let limit = format!("{}.00", (i * 37) % 100 * 100 + 100);
        f.kernel
            .create(
                &f.admin,
                &CUSTOMER,
                form(&[
                    ("name", &name),
                    ("status", "Active"),
                    ("city", city),
                    ("credit_limit", &limit),
                ]),
            )
            .await
            .expect("create");
    }
    let page = f
        .kernel
        .list(
            &f.admin,
            &CUSTOMER,
            &ListQuery {
                sort: Some("name".into()),
                limit: 50,
                offset: 50,
                ..Default::default()
            },
        )
        .expect("list");
    assert_eq!(page.total, 120);
    assert_eq!(page.rows.len(), 50);
    let names: Vec<String> = page
        .rows
        .iter()
        .map(|r| r.get("name").display().to_lowercase())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    let desc = f
        .kernel
        .list(
            &f.admin,
            &CUSTOMER,
            &ListQuery {
                sort: Some("credit_limit".into()),
                descending: true,
                limit: 120,
                ..Default::default()
            },
        )
        .expect("list");
    let limits: Vec<i64> = desc
        .rows
        .iter()
        .map(|r| match r.get("credit_limit") {
            Value::Money(m) => *m,
            _ => 0,
        })
        .collect();
    assert!(limits.windows(2).all(|w| w[0] >= w[1]));
    let zurich = f
        .kernel
        .list(
            &f.admin,
            &CUSTOMER,
            &ListQuery {
                filters: vec![("city".into(), "zur".into())],
                limit: 500,
                ..Default::default()
            },
        )
        .expect("filter");
    assert!(zurich.total > 0 && zurich.total < 120);
    assert!(
        zurich
            .rows
            .iter()
            .all(|r| r.get("city").display() == "Zurich")
    );
    let e = f
        .kernel
        .list(
            &f.admin,
            &CUSTOMER,
            &ListQuery {
                sort: Some("notes".into()),
                ..Default::default()
            },
        )
        .expect_err("unsortable");
    assert!(e.to_string().contains("cannot be sorted by notes"));
}

#[tokio::test]
async fn sign_in_is_throttled_and_sessions_expire() {
    let f = fixture().await;
    for _ in 0..5 {
        let e = f
            .kernel
            .login("ada", "wrong password!", None)
            .await
            .expect_err("wrong");
        assert!(matches!(e, KernelError::BadCredentials));
    }
    let e = f
        .kernel
        .login("ada", "correct horse battery", None)
        .await
        .expect_err("locked");
    assert!(
        matches!(
            e,
            KernelError::Throttled {
                retry_after_secs: 30
            }
        ),
        "{e:?}"
    );
    let unknown = f
        .kernel
        .login("nobody", "whatever password", None)
        .await
        .expect_err("unknown");
    assert!(
        matches!(unknown, KernelError::BadCredentials),
        "unknown users get the same answer"
    );
    // Two minutes later the lock has passed.
    let later = Kernel::new(
        f.kernel.store().clone(),
        Arc::new(ManualClock::new(datetime!(2026-03-01 09:02 UTC))),
    );
    let (token, _) = later
        .login("ada", "correct horse battery", None)
        .await
        .expect("after the lock");
    assert!(f.kernel.session(&token).is_ok());
    let much_later = Kernel::new(
        f.kernel.store().clone(),
        Arc::new(ManualClock::new(datetime!(2026-03-01 21:03 UTC))),
    );
    assert!(
        matches!(
            much_later.session(&token),
            Err(KernelError::Unauthenticated)
        ),
        "12 hours later the session is over"
    );
    f.kernel.logout(&token).await.expect("logout");
    assert!(matches!(
        f.kernel.session(&token),
        Err(KernelError::Unauthenticated)
    ));
}

#[tokio::test]
async fn a_tampered_audit_entry_is_detected() {
    let f = fixture().await;
    f.kernel
        .create(
            &f.admin,
            &CUSTOMER,
            form(&[("name", "Hooli"), ("status", "Lead")]),
        )
        .await
        .expect("create");
    // Rewrite entry 2 behind the kernel's back, as an attacker with the file would.
    let read = f.kernel.store().read().expect("read");
    let bytes = read
        .get(Table::ChangeLog, &2u64.to_be_bytes())
        .expect("get")
        .expect("entry 2");
    let mut entry = Event::decode(&bytes).expect("decode");
    entry.actor_name = "Mallory".into();
    let mut forged = Vec::new();
    ciborium::into_writer(&entry, &mut forged).expect("encode");
    f.kernel
        .store()
        .write(move |txn| {
            txn.put(Table::ChangeLog, 2u64.to_be_bytes().to_vec(), forged);
            Ok::<_, KernelError>(())
        })
        .await
        .expect("forge");
    let e = f.kernel.verify_audit().expect_err("tampering detected");
    assert!(e.to_string().contains("entry 2 was altered"), "{e}");
}

#[tokio::test]
async fn removing_the_newest_audit_entries_is_detected() {
    let f = fixture().await;
    let c = f
        .kernel
        .create(
            &f.admin,
            &CUSTOMER,
            form(&[("name", "Truncated"), ("status", "Lead")]),
        )
        .await
        .expect("create");
    let last = f
        .kernel
        .history(&f.admin, &CUSTOMER, c.id)
        .expect("history")[0]
        .seq;
    f.kernel
        .store()
        .write(move |txn| {
            txn.delete(Table::ChangeLog, last.to_be_bytes().to_vec());
            Ok::<_, KernelError>(())
        })
        .await
        .expect("truncate");
    let e = f.kernel.verify_audit().expect_err("truncation detected");
    assert!(e.to_string().contains("entries were removed"), "{e}");
}

#[tokio::test]
async fn a_returned_record_equals_the_stored_one_and_audit_times_follow_the_sequence() {
    let f = fixture().await;
    let c = f
        .kernel
        .create(
            &f.admin,
            &CUSTOMER,
            form(&[("name", "Precise"), ("status", "Lead")]),
        )
        .await
        .expect("create");
    assert_eq!(f.kernel.get(&f.admin, &CUSTOMER, c.id).expect("get"), c);
    let read = f.kernel.store().read().expect("read");
    let mut last = i64::MIN;
    read.scan(Table::ChangeLog, .., false, |_, v| {
        let e = Event::decode(v).expect("entry");
        assert!(
            e.at_ms >= last,
            "audit times go backwards at entry {}",
            e.seq
        );
        last = e.at_ms;
        std::ops::ControlFlow::Continue(())
    })
    .expect("scan");
}

#[tokio::test]
async fn a_password_must_not_be_guessed_at_once() {
    let f = fixture().await;
    let role = f
        .kernel
        .role_by_name(f.company, "Administrator")
        .expect("role");
    for weak in ["aaaaaaaaaa", "abababababab", "short"] {
        let e = f
            .kernel
            .create_user(f.company, "weak", "Weak", weak, role)
            .await
            .expect_err(weak);
        assert_eq!(field_errors(e)[0].0, "password", "{weak}");
    }
    f.kernel
        .create_user(f.company, "strong", "Strong", "five distinct chars", role)
        .await
        .expect("a reasonable password");
}

#[tokio::test]
async fn an_exact_filter_on_an_indexed_field_answers_from_the_index_like_a_scan() {
    let f = fixture().await;
    let statuses = ["Lead", "Active", "On hold"];
    for i in 0..60u64 {
        let limit = format!("{}.00", (i % 4) * 100 + 100);
        let status = statuses[(i % 3) as usize];
        f.kernel
            .create(
                &f.admin,
                &CUSTOMER,
                form(&[
                    ("name", &format!("Firm {i:02}")),
                    ("status", status),
                    ("credit_limit", &limit),
                    ("city", if i % 2 == 0 { "Bern" } else { "Chur" }),
                ]),
            )
            .await
            .expect("create");
    }
    let list = |filters: Vec<(&str, &str)>, descending: bool, offset: usize| {
        f.kernel
            .list(
                &f.admin,
                &CUSTOMER,
                &ListQuery {
                    filters: filters
                        .into_iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                    descending,
                    offset,
                    limit: 7,
                    ..Default::default()
                },
            )
            .expect("list")
    };
    // The expected answer, from the records themselves.
    let all = f
        .kernel
        .list(
            &f.admin,
            &CUSTOMER,
            &ListQuery {
                limit: usize::MAX,
                ..Default::default()
            },
        )
        .expect("all")
        .rows;
    let expected = |keep: &dyn Fn(&Record) -> bool, descending: bool, offset: usize| {
        let mut ids: Vec<u64> = all.iter().filter(|r| keep(r)).map(|r| r.id).collect();
        if descending {
            ids.reverse();
        }
        let total = ids.len() as u64;
        (
            total,
            ids.into_iter().skip(offset).take(7).collect::<Vec<_>>(),
        )
    };
    let ids = |p: &ListPage| (p.total, p.rows.iter().map(|r| r.id).collect::<Vec<_>>());
    let on_hold = |r: &Record| r.get("status") == &Value::Text("On hold".into());
    // A choice, in any case; forwards and backwards; a later page.
    assert_eq!(
        ids(&list(vec![("status", "on hold")], false, 0)),
        expected(&on_hold, false, 0)
    );
    assert_eq!(
        ids(&list(vec![("status", "On hold")], true, 7)),
        expected(&on_hold, true, 7)
    );
    // An amount, with a text filter on top.
    let two_hundred_in_bern = |r: &Record| {
        r.get("credit_limit") == &Value::Money(20_000) && r.get("city").display() == "Bern"
    };
    assert_eq!(
        ids(&list(
            vec![("credit_limit", "200"), ("city", "ber")],
            false,
            0
        )),
        expected(&two_hundred_in_bern, false, 0)
    );
    // A value nobody has, and one that is not an option, find nothing.
    assert_eq!(list(vec![("credit_limit", "999")], false, 0).total, 0);
    assert_eq!(list(vec![("status", "Gone")], false, 0).total, 0);
}
