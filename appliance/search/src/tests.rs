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
    let found = find(&index, &f.admin, "buyers hamburg");
    assert!(!found.some_words, "keywords a record has together");
    let found = find(&index, &f.admin, "buyers zurich");
    assert!(
        found.some_words,
        "no record has both: those with either, and the results say so"
    );
    assert_eq!(titles(&found), ["Hamburg visit", "Quarterly review"]);

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
    // The benchmark's raw query is the same words without the scope: it sees the
    // other company's note too.
    let alpine = SearchRequest {
        text: "alpine".into(),
        limit: 20,
        ..Default::default()
    };
    assert_eq!(
        index.words_only(&f.admin, &alpine, true).expect("scoped"),
        2
    );
    assert_eq!(index.words_only(&rep, &alpine, true).expect("own"), 1);
    assert_eq!(index.words_only(&f.admin, &alpine, false).expect("raw"), 3);
}

#[tokio::test]
async fn a_question_finds_records_with_some_of_its_words_rarest_first_inside_the_scope() {
    let f = fixture().await;
    let index = SearchIndex::open(f.dir.path().join("search")).expect("open");
    let rep = sign_in(&f.kernel, f.company, "rita", "Note rep").await;
    // Three notes share their title, as passages of one manual do: the title's words
    // must not outweigh the rare word of the text.
    for (subject, text) in [
        (
            "Office handbook",
            "How the coffee machine is descaled every month",
        ),
        ("Office handbook", "How the printer toner is ordered"),
        ("Office handbook", "How holidays are booked in the calendar"),
        (
            "Printer contract",
            "The lease of the office printer with Canon",
        ),
    ] {
        note(&f.kernel, &f.admin, &[("subject", subject), ("text", text)]).await;
    }
    note(
        &f.kernel,
        &rep,
        &[
            ("subject", "Rita's notes"),
            ("text", "How the toner order goes wrong"),
        ],
    )
    .await;
    let other = f
        .kernel
        .create_company("Other AG", "CHF")
        .await
        .expect("company");
    let stranger = sign_in(&f.kernel, other, "otto", "Administrator").await;
    note(
        &f.kernel,
        &stranger,
        &[
            ("subject", "Toner"),
            ("text", "How is toner ordered for the office?"),
        ],
    )
    .await;
    index.rebuild(&f.kernel, |_| {}).expect("rebuild");

    let q = "How is new toner for the office printer ordered?";
    assert!(query::words(q).expect("words").terms.len() >= ANY_WORD_FROM);
    let found = find(&index, &f.admin, q);
    assert!(found.some_words, "a question");
    let first: Vec<String> = found.hits.iter().map(Hit::title_text).collect();
    assert_eq!(
        first.first().map(String::as_str),
        Some("Office handbook"),
        "{first:?}"
    );
    assert!(
        found.hits[0]
            .snippet
            .iter()
            .any(|s| s.hit && s.text == "toner"),
        "the toner passage first: {:?}",
        found.hits[0].snippet
    );
    assert!(
        found.hits.len() >= 4 && found.total >= 4,
        "any of the words: {first:?}"
    );
    assert!(
        !first.iter().any(|t| t == "Toner"),
        "never the other company's: {first:?}"
    );
    // A record rule holds for questions too.
    let own = find(&index, &rep, q);
    assert_eq!(titles(&own), ["Rita's notes"]);
    assert_eq!(own.total, 1);

    // The question's known words are taken as written; an unknown one may be a typo.
    let typo = find(
        &index,
        &f.admin,
        "how is the tonner for our printer ordered",
    );
    assert!(
        typo.hits[0]
            .snippet
            .iter()
            .any(|s| s.hit && s.text == "toner"),
        "a typo of a word the index lacks: {:?}",
        typo.hits[0].snippet
    );
    let exact = find(&index, &f.admin, "how are the holidays booked now");
    assert!(
        exact.hits[0]
            .snippet
            .iter()
            .any(|s| s.hit && s.text == "holidays"),
        "{:?}",
        exact.hits[0].snippet
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
    let field = find(&index, &f.admin, "title:audit");
    assert!(
        field.some_words && field.total == 3,
        "`title` is a word, not a field: no record has it beside `audit`"
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
    let many = (0..40)
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
    assert!(e.to_string().contains("at most 32 different words"), "{e}");

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

/// The vector index with the real model (all-MiniLM-L6-v2 through llama.cpp), loaded
/// once for all the tests of this binary.
fn embedder() -> Arc<nexus_ai::Embedder> {
    static MODEL: std::sync::OnceLock<Arc<nexus_ai::Embedder>> = std::sync::OnceLock::new();
    MODEL
        .get_or_init(|| {
            let path = nexus_ai::installed_model();
            match nexus_ai::Embedder::load(&path, nexus_ai::EmbedderOptions::default()) {
                Ok(e) => Arc::new(e),
                Err(e) => {
                    panic!("{e} (scripts/install-embedding-model.sh makes it; make test runs it)")
                }
            }
        })
        .clone()
}

struct Both {
    text: Arc<SearchIndex>,
    vectors: Arc<VectorIndex>,
}

fn both(f: &Fixture, name: &str) -> Both {
    let text =
        Arc::new(SearchIndex::open(f.dir.path().join(format!("{name}-search"))).expect("index"));
    let vectors = Arc::new(
        VectorIndex::open(f.dir.path().join(format!("{name}-vectors")), embedder())
            .expect("vectors"),
    );
    text.set_vectors(vectors.clone());
    Both { text, vectors }
}

fn catch_up_both(kernel: &Kernel, b: &Both) {
    catch_up(kernel, &b.text);
    loop {
        let batch = kernel
            .commands_since(b.vectors.position(), 1000)
            .expect("commands");
        if batch.is_empty() {
            return;
        }
        b.vectors
            .apply(&b.text, kernel, &batch)
            .expect("apply vectors");
    }
}

fn by(index: &SearchIndex, who: &Principal, text: &str, retrieval: Retrieval) -> SearchResults {
    index
        .search(
            who,
            &SearchRequest {
                text: text.into(),
                limit: 10,
                retrieval,
                ..Default::default()
            },
        )
        .expect("search")
}

fn first_title(r: &SearchResults) -> String {
    r.hits.first().map(Hit::title_text).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meaning_finds_what_the_words_miss() {
    let f = fixture().await;
    let b = both(&f, "meaning");
    // The fixture's users are entries too.
    catch_up_both(&f.kernel, &b);
    let (users, _) = b.vectors.len();
    note(
        &f.kernel,
        &f.admin,
        &[
            ("subject", "Invoice for March is overdue"),
            ("text", "The customer has not settled it yet."),
        ],
    )
    .await;
    note(
        &f.kernel,
        &f.admin,
        &[
            ("subject", "Warehouse delivery"),
            ("text", "Forty pallets of steel arrived in Zurich."),
        ],
    )
    .await;
    note(
        &f.kernel,
        &f.admin,
        &[
            ("subject", "Office cat"),
            ("text", "The cat sat on the mat all afternoon."),
        ],
    )
    .await;
    catch_up_both(&f.kernel, &b);
    assert_eq!(b.vectors.len(), (users + 3, users + 3));

    // No word of the question is in any note.
    let q = "late payment of the bill";
    assert!(by(&b.text, &f.admin, q, Retrieval::Text).hits.is_empty());
    let meaning = by(&b.text, &f.admin, q, Retrieval::Vector);
    assert_eq!(first_title(&meaning), "Invoice for March is overdue");
    assert_eq!(meaning.hits[0].found_by, FoundBy::Meaning);
    assert!(
        meaning.hits[0]
            .similarity
            .is_some_and(|s| s >= MIN_SIMILARITY)
    );
    let hybrid = by(&b.text, &f.admin, q, Retrieval::Hybrid);
    assert_eq!(first_title(&hybrid), "Invoice for March is overdue");
    // An unrelated neighbour is not a hit at all.
    assert!(
        hybrid.hits.iter().all(|h| h.title_text() != "Office cat"),
        "{:?}",
        titles(&hybrid)
    );

    // Words and meaning agree: found by both, ranked first.
    let both = by(&b.text, &f.admin, "steel pallets", Retrieval::Hybrid);
    assert_eq!(first_title(&both), "Warehouse delivery");
    assert_eq!(both.hits[0].found_by, FoundBy::Both);
    // Without a vector index, hybrid is words alone.
    let words_only = SearchIndex::open(f.dir.path().join("words-only")).expect("index");
    catch_up(&f.kernel, &words_only);
    assert!(
        by(&words_only, &f.admin, q, Retrieval::Hybrid)
            .hits
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meaning_stays_inside_the_readers_permissions() {
    let f = fixture().await;
    let b = both(&f, "perm");
    let rep = sign_in(&f.kernel, f.company, "rita", "Note rep").await;
    let outsider = sign_in(&f.kernel, f.company, "otto", "Outsider").await;
    note(&f.kernel, &rep, &[("subject", "My overdue invoice")]).await;
    note(
        &f.kernel,
        &f.admin,
        &[("subject", "Someone else's unpaid bill")],
    )
    .await;
    let other = f
        .kernel
        .create_company("Beta", "EUR")
        .await
        .expect("company");
    let beta = sign_in(&f.kernel, other, "bert", "Administrator").await;
    note(&f.kernel, &beta, &[("subject", "Beta's late payment")]).await;
    catch_up_both(&f.kernel, &b);

    let q = "late payment of the bill";
    for exact_below in [usize::MAX, 0] {
        // Both ways of searching: every point compared, and the graph walked.
        b.vectors.set_exact_below(exact_below);
        let admin = titles(&by(&b.text, &f.admin, q, Retrieval::Vector));
        assert_eq!(
            admin,
            ["My overdue invoice", "Someone else's unpaid bill"],
            "{exact_below}"
        );
        let own = titles(&by(&b.text, &rep, q, Retrieval::Vector));
        assert_eq!(own, ["My overdue invoice"], "{exact_below}");
        assert!(by(&b.text, &outsider, q, Retrieval::Hybrid).hits.is_empty());
        let beta_sees = titles(&by(&b.text, &beta, q, Retrieval::Hybrid));
        assert_eq!(beta_sees, ["Beta's late payment"], "{exact_below}");
    }

    // A small company is searched exactly, however large the whole index: Beta has
    // fewer points than Acme, and the bound lies between them.
    let (acme_points, _) = b.vectors.exactly(f.company);
    let (beta_points, before) = b.vectors.exactly(other);
    assert!(beta_points < acme_points, "{beta_points} < {acme_points}");
    b.vectors.set_exact_below(beta_points);
    let beta_sees = titles(&by(&b.text, &beta, q, Retrieval::Vector));
    assert_eq!(beta_sees, ["Beta's late payment"]);
    let (_, after) = b.vectors.exactly(other);
    assert_eq!(after, before + 1, "Beta compared exactly");
    let admin = titles(&by(&b.text, &f.admin, q, Retrieval::Vector));
    assert_eq!(admin, ["My overdue invoice", "Someone else's unpaid bill"]);
    assert_eq!(b.vectors.exactly(other).1, after, "Acme walked the graph");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_and_removals_are_followed_and_survive_a_restart() {
    let f = fixture().await;
    let b = both(&f, "changes");
    catch_up_both(&f.kernel, &b);
    let (users, _) = b.vectors.len();
    let n = note(&f.kernel, &f.admin, &[("subject", "Broken coffee machine")]).await;
    note(&f.kernel, &f.admin, &[("subject", "Quarterly tax return")]).await;
    catch_up_both(&f.kernel, &b);
    let q = "the espresso maker does not work";
    assert_eq!(
        first_title(&by(&b.text, &f.admin, q, Retrieval::Vector)),
        "Broken coffee machine"
    );

    f.kernel
        .update(
            &f.admin,
            &NOTE,
            n.id,
            n.version,
            form(&[("subject", "Holiday schedule for December")]),
        )
        .await
        .expect("update");
    catch_up_both(&f.kernel, &b);
    // One live vector per note; the old one a tombstone in the graph.
    assert_eq!(b.vectors.len(), (users + 2, users + 3));
    let after = by(&b.text, &f.admin, q, Retrieval::Vector);
    assert!(
        after
            .hits
            .iter()
            .all(|h| h.title_text() != "Broken coffee machine")
    );
    assert_eq!(
        first_title(&by(
            &b.text,
            &f.admin,
            "when are the christmas holidays",
            Retrieval::Vector
        )),
        "Holiday schedule for December"
    );

    // Reopened: the vectors come back from their file, nothing embedded again.
    let position = b.vectors.position();
    drop(b);
    let b = both(&f, "changes");
    assert!(!b.vectors.needs_rebuild());
    assert_eq!(b.vectors.position(), position);
    assert_eq!(b.vectors.len(), (users + 2, users + 2));
    assert_eq!(
        first_title(&by(
            &b.text,
            &f.admin,
            "when are the christmas holidays",
            Retrieval::Vector
        )),
        "Holiday schedule for December"
    );

    f.kernel
        .delete(&f.admin, &NOTE, n.id, None)
        .await
        .expect("delete");
    catch_up_both(&f.kernel, &b);
    assert_eq!(b.vectors.len(), (users + 1, users + 2));
    b.vectors.compact().expect("compact");
    assert_eq!(b.vectors.len(), (users + 1, users + 1));
    let left = titles(&by(
        &b.text,
        &f.admin,
        "holidays in december",
        Retrieval::Vector,
    ));
    assert!(
        !left.contains(&"Holiday schedule for December".to_string()),
        "{left:?}"
    );
}

/// What the graph (not the exact comparison) answers to a few questions.
fn walked(b: &Both, who: &Principal) -> Vec<Vec<String>> {
    b.vectors.set_exact_below(0);
    [
        "the espresso maker does not work",
        "when are the christmas holidays",
        "paying the tax office",
        "a new laptop for the intern",
    ]
    .iter()
    .map(|q| titles(&by(&b.text, who, q, Retrieval::Vector)))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_graph_is_saved_read_back_at_open_and_built_again_when_its_save_is_bad() {
    let f = fixture().await;
    let b = both(&f, "saved");
    let coffee = note(&f.kernel, &f.admin, &[("subject", "Broken coffee machine")]).await;
    for subject in [
        "Quarterly tax return",
        "Holiday schedule for December",
        "Laptop order for the new intern",
    ] {
        note(&f.kernel, &f.admin, &[("subject", subject)]).await;
    }
    catch_up_both(&f.kernel, &b);
    assert_eq!(
        b.vectors.read_at_open(),
        0,
        "a new index has nothing to read"
    );
    b.vectors.save().expect("save");
    let saved = b.vectors.dir().join("graph");
    assert!(saved.join("manifest.json").exists());
    let (_, rows) = b.vectors.len();

    // Changed after the save: a note removed, one added; the save is not redone.
    f.kernel
        .delete(&f.admin, &NOTE, coffee.id, None)
        .await
        .expect("delete");
    note(
        &f.kernel,
        &f.admin,
        &[("subject", "Espresso maker repaired")],
    )
    .await;
    catch_up_both(&f.kernel, &b);
    let answers = walked(&b, &f.admin);
    assert!(
        answers[0].contains(&"Espresso maker repaired".to_string()),
        "{answers:?}"
    );
    assert!(
        !answers
            .concat()
            .contains(&"Broken coffee machine".to_string())
    );
    let len = b.vectors.len();
    drop(b);

    // Reopened: the graph is read, the removal found in the vector file, the added note
    // inserted again; the same questions get the same answers.
    let b = both(&f, "saved");
    assert_eq!(b.vectors.read_at_open(), rows);
    assert_eq!(b.vectors.len(), len);
    assert_eq!(walked(&b, &f.admin), answers);
    b.vectors.save().expect("save the added row");
    drop(b);

    // A save with a byte changed, half of it gone, or a manifest that is not one: the
    // graph is built from the vectors, answers the same, and is saved anew.
    type Spoil<'a> = &'a dyn Fn(&std::path::Path);
    let damage: [(&str, Spoil); 3] = [
        ("nodes.hnsw.graph", &|p| {
            let mut bytes = std::fs::read(p).expect("read");
            let middle = bytes.len() / 2;
            bytes[middle] ^= 0x5a;
            std::fs::write(p, bytes).expect("write");
        }),
        ("nodes.hnsw.data", &|p| {
            std::fs::remove_file(p).expect("remove")
        }),
        ("manifest.json", &|p| {
            std::fs::write(p, b"{").expect("write")
        }),
    ];
    for (name, spoil) in damage {
        spoil(&saved.join(name));
        let b = both(&f, "saved");
        assert_eq!(b.vectors.read_at_open(), 0, "{name}: built");
        assert_eq!(walked(&b, &f.admin), answers, "{name}");
        drop(b);
        let b = both(&f, "saved");
        assert_eq!(
            b.vectors.read_at_open(),
            len.0,
            "{name}: saved anew, live rows only"
        );
        drop(b);
    }

    // The vector file made again numbers its entries afresh: a save of the old one is
    // not read into it.
    let old = copy_dir(&saved);
    let b = both(&f, "saved");
    b.vectors
        .rebuild(&b.text, &f.kernel, |_| {})
        .expect("rebuild");
    drop(b);
    std::fs::remove_dir_all(&saved).expect("remove");
    std::fs::rename(&old, &saved).expect("restore the old save");
    let b = both(&f, "saved");
    assert_eq!(
        b.vectors.read_at_open(),
        0,
        "an earlier file's save is not used"
    );
    assert_eq!(walked(&b, &f.admin), answers);
}

/// A copy of a save's directory beside it.
fn copy_dir(saved: &std::path::Path) -> std::path::PathBuf {
    let copy = saved.with_extension("copy");
    std::fs::create_dir_all(&copy).expect("dir");
    for entry in std::fs::read_dir(saved).expect("list") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), copy.join(entry.file_name())).expect("copy");
    }
    copy
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_or_foreign_vector_file_is_rebuilt_from_the_store() {
    let f = fixture().await;
    note(&f.kernel, &f.admin, &[("subject", "Broken coffee machine")]).await;
    let b = both(&f, "damaged");
    assert!(b.vectors.needs_rebuild());
    // An empty graph answers nothing (hnsw_rs itself would panic without a point).
    assert!(
        by(&b.text, &f.admin, "coffee", Retrieval::Vector)
            .hits
            .is_empty()
    );
    assert!(
        by(&b.text, &f.admin, "coffee", Retrieval::Hybrid)
            .hits
            .is_empty()
    );
    b.text.rebuild(&f.kernel, |_| {}).expect("rebuild text");
    let mut seen = 0;
    let embedded = b
        .vectors
        .rebuild(&b.text, &f.kernel, |n| seen = n)
        .expect("rebuild");
    // The note and the fixture's user.
    assert!(embedded >= 2, "{embedded}");
    assert_eq!(seen, embedded);
    assert_eq!(b.vectors.len(), (embedded as usize, embedded as usize));
    assert!(!b.vectors.needs_rebuild());
    let dir = b.vectors.dir().to_path_buf();
    drop(b);

    // A file another process holds (`nexus reindex` beside the server) is left alone:
    // the error says so, and every vector is there once it lets go.
    {
        let holder = redb::Database::create(dir.join("vectors.redb")).expect("hold");
        let Err(e) = VectorIndex::open(&dir, embedder()) else {
            panic!("opened a file another process holds");
        };
        assert!(e.to_string().contains("vectors.redb"), "{e}");
        assert!(!dir.with_extension("damaged").exists(), "nothing set aside");
        drop(holder);
    }
    let again = VectorIndex::open(&dir, embedder()).expect("reopen");
    assert!(!again.needs_rebuild(), "kept");
    assert_eq!(again.len(), (embedded as usize, embedded as usize));
    drop(again);

    std::fs::write(dir.join("vectors.redb"), b"not a database at all").expect("write");
    let b = both(&f, "damaged");
    assert!(b.vectors.needs_rebuild(), "a damaged file starts over");
    assert!(
        dir.with_extension("damaged").join("vectors.redb").exists(),
        "and is kept aside"
    );
    b.vectors
        .rebuild(&b.text, &f.kernel, |_| {})
        .expect("rebuild");
    assert_eq!(
        first_title(&by(
            &b.text,
            &f.admin,
            "the espresso maker does not work",
            Retrieval::Vector
        )),
        "Broken coffee machine"
    );
    drop(b);

    // Vectors another model made mean nothing to this one.
    {
        let db = redb::Database::open(dir.join("vectors.redb")).expect("open");
        let txn = redb::Database::begin_write(&db).expect("txn");
        {
            let mut meta = txn
                .open_table(redb::TableDefinition::<&str, &[u8]>::new("meta"))
                .expect("meta");
            meta.insert("model", b"another-model (768 dimensions)".as_slice())
                .expect("insert");
        }
        txn.commit().expect("commit");
    }
    let b = both(&f, "damaged");
    assert!(b.vectors.needs_rebuild());
    assert!(b.vectors.is_empty());
}

#[test]
fn a_text_the_engine_refuses_is_left_to_words_and_a_stopped_engine_is_retried() {
    let entry = |record: u64, body: &str| schema::Entry {
        key: format!("1/950/{record}"),
        part: 0,
        company: 1,
        entity: 950,
        record,
        owner: 0,
        title: format!("Note {record}"),
        body: body.into(),
        day: None,
        doc: 0,
        locator: String::new(),
        page: 0,
    };
    // More entries than one chunk, one of them poison in each of two chunks.
    let entries: Vec<schema::Entry> = (1..=40)
        .map(|i| entry(i, if i == 3 || i == 37 { "poison" } else { "fine" }))
        .collect();
    let calls = std::sync::atomic::AtomicUsize::new(0);
    let engine = |texts: &[String]| {
        calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if texts.iter().any(|t| t.contains("poison")) {
            Err(nexus_ai::AiError::Embed("llama_decode returned -1".into()))
        } else {
            Ok(texts.iter().map(|t| vec![t.len() as f32]).collect())
        }
    };
    let vectors = vectors::embed_each(&entries, engine).expect("the others are embedded");
    assert_eq!(
        vectors.len(),
        entries.len(),
        "one answer per entry, in order"
    );
    for (i, v) in vectors.iter().enumerate() {
        let record = i as u64 + 1;
        match v {
            None => assert!(record == 3 || record == 37, "record {record} refused"),
            Some(v) => {
                assert!(record != 3 && record != 37, "record {record} embedded");
                assert_eq!(v, &vec![entries[i].text().len() as f32], "its own vector");
            }
        }
    }
    assert_eq!(vectors.iter().filter(|v| v.is_none()).count(), 2);
    // The two refused chunks were tried text by text; the clean one once.
    let chunks = entries.len().div_ceil(32);
    assert!(calls.into_inner() > chunks);

    // An engine that stopped fails the call: the tailer retries it later, nothing skipped.
    let stopped = |_: &[String]| -> Result<Vec<Vec<f32>>, nexus_ai::AiError> {
        Err(nexus_ai::AiError::Stopped)
    };
    let e = vectors::embed_each(&entries, stopped).expect_err("stopped");
    assert!(e.to_string().contains("stopped"), "{e}");
}
