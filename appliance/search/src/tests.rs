//! The index over a real store and a real index directory.

use std::sync::Arc;

use nexus_kernel::registry::Module;
use nexus_kernel::{Creation, FieldDef, FieldKind, Input, ManualClock, Record};
use nexus_store::Store;
use time::macros::{date, datetime};

use super::*;

pub static NOTE: EntityDef = EntityDef {
    name: "note",
    code: 950,
    label: "Note",
    plural: "Notes",
    module: "notes",
    fields: &[
        FieldDef::new("subject", "Subject", FieldKind::Text { max: 120 }).required(),
        FieldDef::new("city", "City", FieldKind::Text { max: 80 }),
        FieldDef::new("text", "Text", FieldKind::LongText),
        FieldDef::new("day", "Day", FieldKind::Date),
        FieldDef::new("secret", "Secret", FieldKind::Text { max: 80 }).guarded(),
        FieldDef::new("owner", "Owner", FieldKind::Ref("user")),
    ],
    title_field: "subject",
    search_fields: &["subject", "city", "text"],
    creation: Creation::ByRole,
};

static NOTES: Module = Module {
    name: "notes",
    label: "Notes",
    code: 950,
    entities: &[&NOTE],
    roles: &[
        ("Note reader", "note:r", "Reads notes."),
        ("Note rep", "note:rcw@own", "Their own notes."),
        ("Outsider", "company:r", "Reads the company only."),
    ],
    demo: None,
    tools: &[],
    jobs: &[],
    schedules: &[],
};

struct Fixture {
    dir: tempfile::TempDir,
    kernel: Kernel,
    company: u64,
    admin: Principal,
}

async fn fixture() -> Fixture {
    registry::install(&[&NOTES]).expect("install");
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("nexus.redb")).expect("store");
    let clock = Arc::new(ManualClock::new(datetime!(2026-03-01 09:00 UTC)));
    let kernel = Kernel::new(store, clock);
    let company = kernel.create_company("Acme", "CHF").await.expect("company");
    let admin = sign_in(&kernel, company, "ada", "Administrator").await;
    Fixture {
        dir,
        kernel,
        company,
        admin,
    }
}

async fn sign_in(kernel: &Kernel, company: u64, name: &str, role: &str) -> Principal {
    let role = kernel.role_by_name(company, role).expect("role");
    let password = "correct horse battery staple";
    kernel
        .create_user(company, name, name, password, role)
        .await
        .expect("user");
    kernel
        .login(name, password, None)
        .await
        .expect("login")
        .1
        .principal
}

fn form(pairs: &[(&str, &str)]) -> Input {
    Input::Form(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

async fn note(kernel: &Kernel, who: &Principal, pairs: &[(&str, &str)]) -> Record {
    kernel.create(who, &NOTE, form(pairs)).await.expect("note")
}

/// Applies everything the log holds after the index's position.
fn catch_up(kernel: &Kernel, index: &SearchIndex) {
    loop {
        let batch = kernel
            .commands_since(index.position(), 1000)
            .expect("commands");
        if batch.is_empty() {
            return;
        }
        index.apply(kernel, &batch).expect("apply");
    }
}

fn find(index: &SearchIndex, who: &Principal, text: &str) -> SearchResults {
    index
        .search(
            who,
            &SearchRequest {
                text: text.into(),
                limit: 20,
                ..Default::default()
            },
        )
        .expect("search")
}

fn titles(results: &SearchResults) -> Vec<String> {
    let mut t: Vec<String> = results.hits.iter().map(Hit::title_text).collect();
    t.sort();
    t
}

#[tokio::test]
async fn records_are_found_by_word_prefix_and_typo_and_changes_follow_the_log() {
    let f = fixture().await;
    let index = SearchIndex::open(f.dir.path().join("search")).expect("open");
    assert!(index.needs_rebuild());
    index.rebuild(&f.kernel, |_| {}).expect("rebuild");
    let zurich = note(
        &f.kernel,
        &f.admin,
        &[("subject", "Quarterly review"), ("city", "Zürich")],
    )
    .await;
    note(
        &f.kernel,
        &f.admin,
        &[("subject", "Hamburg visit"), ("text", "Met the buyers")],
    )
    .await;
    catch_up(&f.kernel, &index);

    assert_eq!(
        titles(&find(&index, &f.admin, "zurich")),
        ["Quarterly review"],
        "accents folded"
    );
    assert_eq!(
        titles(&find(&index, &f.admin, "ZÜRICH")),
        ["Quarterly review"]
    );
    assert_eq!(
        titles(&find(&index, &f.admin, "hamb")),
        ["Hamburg visit"],
        "prefix as typed"
    );
    assert!(
        find(&index, &f.admin, "hamb ").hits.is_empty(),
        "a finished word is not a prefix"
    );
    assert_eq!(
        titles(&find(&index, &f.admin, "quartely")),
        ["Quarterly review"],
        "one typo"
    );
    assert_eq!(
        titles(&find(&index, &f.admin, "buyers hamburg")),
        ["Hamburg visit"]
    );
    assert!(
        find(&index, &f.admin, "buyers zurich").hits.is_empty(),
        "every word must match"
    );

    let hit = &find(&index, &f.admin, "zurich").hits[0];
    assert_eq!(hit.url(), format!("/e/note/{}", zurich.id));
    assert_eq!(
        hit.snippet,
        [Fragment {
            text: "Zürich".into(),
            hit: true
        }]
    );

    // An update replaces the document; a delete removes it.
    f.kernel
        .update(
            &f.admin,
            &NOTE,
            zurich.id,
            zurich.version,
            form(&[("city", "Basel")]),
        )
        .await
        .expect("update");
    catch_up(&f.kernel, &index);
    assert!(find(&index, &f.admin, "zurich").hits.is_empty());
    assert_eq!(
        titles(&find(&index, &f.admin, "basel")),
        ["Quarterly review"]
    );
    f.kernel
        .delete(&f.admin, &NOTE, zurich.id, None)
        .await
        .expect("delete");
    catch_up(&f.kernel, &index);
    assert!(find(&index, &f.admin, "quarterly").hits.is_empty());

    // Applying what is already held changes nothing.
    let all = f.kernel.commands_since(0, 10_000).expect("all");
    index.apply(&f.kernel, &all).expect("again");
    assert!(find(&index, &f.admin, "quarterly").hits.is_empty());
    assert_eq!(
        titles(&find(&index, &f.admin, "hamburg")),
        ["Hamburg visit"]
    );
}

#[tokio::test]
async fn a_reader_never_sees_a_hit_or_a_count_they_may_not_read() {
    let f = fixture().await;
    let index = SearchIndex::open(f.dir.path().join("search")).expect("open");
    let rep = sign_in(&f.kernel, f.company, "rita", "Note rep").await;
    let reader = sign_in(&f.kernel, f.company, "rolf", "Note reader").await;
    let nobody = sign_in(&f.kernel, f.company, "nina", "Outsider").await;
    note(&f.kernel, &rep, &[("subject", "Alpine pitch")]).await;
    note(
        &f.kernel,
        &f.admin,
        &[("subject", "Alpine budget"), ("secret", "margin")],
    )
    .await;
    let other = f
        .kernel
        .create_company("Other AG", "CHF")
        .await
        .expect("company");
    let stranger = sign_in(&f.kernel, other, "otto", "Administrator").await;
    note(&f.kernel, &stranger, &[("subject", "Alpine secrets")]).await;
    index.rebuild(&f.kernel, |_| {}).expect("rebuild");

    let all = find(&index, &f.admin, "alpine");
    assert_eq!(
        titles(&all),
        ["Alpine budget", "Alpine pitch"],
        "one company only"
    );
    assert_eq!(all.total, 2);
    assert_eq!(
        titles(&find(&index, &reader, "alpine")),
        ["Alpine budget", "Alpine pitch"]
    );
    let own = find(&index, &rep, "alpine");
    assert_eq!(
        titles(&own),
        ["Alpine pitch"],
        "a record rule: their own only"
    );
    assert_eq!(own.total, 1, "counted inside the rule");
    assert_eq!(own.by_entity.len(), 1);
    assert_eq!(own.by_entity[0].1, 1);
    let none = find(&index, &nobody, "alpine");
    assert!(none.hits.is_empty() && none.total == 0 && none.by_entity.is_empty());
    assert_eq!(
        titles(&find(&index, &stranger, "alpine")),
        ["Alpine secrets"]
    );
    assert!(
        find(&index, &f.admin, "margin").hits.is_empty(),
        "a guarded field is not indexed"
    );
}

#[tokio::test]
async fn filters_bad_words_and_a_damaged_index() {
    let f = fixture().await;
    let dir = f.dir.path().join("search");
    let index = SearchIndex::open(&dir).expect("open");
    note(
        &f.kernel,
        &f.admin,
        &[("subject", "Audit plan"), ("day", "2026-02-28")],
    )
    .await;
    note(
        &f.kernel,
        &f.admin,
        &[("subject", "Audit fieldwork"), ("day", "2026-03-15")],
    )
    .await;
    note(&f.kernel, &f.admin, &[("subject", "Audit undated")]).await;
    index.rebuild(&f.kernel, |_| {}).expect("rebuild");

    let in_march = index
        .search(
            &f.admin,
            &SearchRequest {
                text: "audit".into(),
                from: Some(date!(2026 - 03 - 01)),
                to: Some(date!(2026 - 03 - 31)),
                limit: 10,
                ..Default::default()
            },
        )
        .expect("search");
    assert_eq!(titles(&in_march), ["Audit fieldwork"]);
    assert_eq!(in_march.hits[0].date, Some(date!(2026 - 03 - 15)));
    let only_users = index
        .search(
            &f.admin,
            &SearchRequest {
                text: "audit".into(),
                entities: vec!["user".into()],
                limit: 10,
                ..Default::default()
            },
        )
        .expect("search");
    assert!(only_users.hits.is_empty());

    // Operators, quotes and garbage are words or nothing, never syntax.
    for q in [
        "audit AND OR",
        "\"audit",
        "audit)(*",
        "title:audit",
        "%%%",
        "",
        "  ",
    ] {
        index
            .search(
                &f.admin,
                &SearchRequest {
                    text: q.into(),
                    limit: 5,
                    ..Default::default()
                },
            )
            .unwrap_or_else(|e| panic!("{q:?}: {e}"));
    }
    assert_eq!(find(&index, &f.admin, "(audit)*").total, 3);
    assert_eq!(find(&index, &f.admin, "\"audit").total, 3);
    assert_eq!(
        find(&index, &f.admin, "title:audit").total,
        0,
        "`title` is a word, not a field"
    );
    let long = "a".repeat(10_000);
    let e = index
        .search(
            &f.admin,
            &SearchRequest {
                text: long,
                limit: 5,
                ..Default::default()
            },
        )
        .expect_err("too long");
    assert!(e.to_string().contains("at most 500 characters"), "{e}");
    let many = (0..20)
        .map(|i| format!("w{i}"))
        .collect::<Vec<_>>()
        .join(" ");
    let e = index
        .search(
            &f.admin,
            &SearchRequest {
                text: many,
                limit: 5,
                ..Default::default()
            },
        )
        .expect_err("too many words");
    assert!(e.to_string().contains("at most 16 different words"), "{e}");

    // Reopening keeps the position; a damaged index is set aside and rebuilt.
    let position = index.position();
    assert!(position > 0);
    let held = index.len().expect("len");
    assert!(
        held >= 3,
        "the notes, and the company, its roles and its user"
    );
    drop(index);
    let again = SearchIndex::open(&dir).expect("reopen");
    assert!(!again.needs_rebuild());
    assert_eq!(again.position(), position);
    assert_eq!(again.len().expect("len"), held);
    drop(again);
    std::fs::write(dir.join("meta.json"), b"{ not json").expect("damage");
    let rebuilt = SearchIndex::open(&dir).expect("open a damaged index");
    assert!(rebuilt.needs_rebuild());
    assert!(
        dir.with_extension("damaged").exists(),
        "kept aside for a look"
    );
    let added = rebuilt.rebuild(&f.kernel, |_| {}).expect("rebuild");
    assert_eq!(added, held, "{:?}", rebuilt.len());
    assert_eq!(find(&rebuilt, &f.admin, "audit").total, 3);
}
