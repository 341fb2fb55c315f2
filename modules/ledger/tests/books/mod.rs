//! The books on a real store: posting through the kernel, the maintained totals, the
//! refusals that must leave them untouched, and the export checked by beancount.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;

use nexus_kernel::{Input, Kernel, KernelError, ManualClock, Principal};
use nexus_ledger::books::{self, EntryInput, LineInput};
use nexus_ledger::entities::{FISCAL_YEAR, JOURNAL_ENTRY, JournalKind, JournalStatus, YearStatus};
use nexus_ledger::years;
use nexus_ledger::{Chart, PeriodKey, TrialBalanceRow};
use nexus_store::Store;
use time::Date;
use time::macros::{date, datetime};

use super::{beancount_venv, beancount_views};

mod bank;

const TODAY: Date = date!(2026 - 11 - 23);

async fn open() -> (tempfile::TempDir, Kernel, u64) {
    nexus_kernel::registry::install(&[&nexus_crm::CRM, &nexus_ledger::entities::LEDGER])
        .expect("install the ledger");
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("nexus.redb")).expect("store");
    let clock = Arc::new(ManualClock::new(datetime!(2026-11-23 09:00 UTC)));
    let kernel = Kernel::new(store, clock);
    let company = kernel
        .create_company("Demo Trading", "USD")
        .await
        .expect("company");
    (dir, kernel, company)
}

fn tb(kernel: &Kernel, who: &Principal) -> (Chart, Vec<TrialBalanceRow>) {
    let from = PeriodKey::of(date!(2025 - 01 - 01)).expect("from");
    let to = PeriodKey::of(TODAY).expect("to");
    books::trial_balance(kernel, who, from, to).expect("trial balance")
}

fn id(chart: &Chart, code: &str) -> u64 {
    chart.by_code(code).expect(code).id
}

fn line(account: u64, debit: i64, credit: i64) -> LineInput {
    LineInput {
        account,
        debit,
        credit,
        memo: String::new(),
        foreign: None,
    }
}

fn entry(date: Date, lines: Vec<LineInput>) -> EntryInput {
    EntryInput {
        date,
        narration: "test".into(),
        reference: String::new(),
        lines,
    }
}

fn message(e: &KernelError) -> String {
    match e {
        KernelError::Invalid(fields) => fields
            .0
            .iter()
            .map(|(f, m)| format!("{f}: {m}"))
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    }
}

#[tokio::test]
async fn the_books_refuse_bad_entries_keep_their_totals_and_agree_with_beancount() {
    let (_dir, kernel, company) = open().await;
    let who = Principal::system(company);
    let posted = nexus_ledger::demo::seed(&kernel, company, TODAY)
        .await
        .expect("demo books");
    assert!(posted > 200, "a year of activity: {posted} entries");
    // The demo's stock accounts hold exactly the value of the stock.
    let (_, checks) = nexus_ledger::stock::books::valuation(&kernel, &Principal::system(company))
        .expect("valuation");
    assert!(!checks.is_empty());
    for c in &checks {
        assert!(c.valuation > 0, "{} holds stock", c.account.label());
        assert_eq!(
            c.valuation,
            c.ledger,
            "{} against the stock",
            c.account.label()
        );
    }
    // And at earlier days: the moves up to each against the ledger up to it.
    for day in [date!(2026 - 03 - 15), date!(2026 - 07 - 31)] {
        let (_, past) = nexus_ledger::stock::books::valuation_at(
            &kernel,
            &Principal::system(company),
            Some(day),
        )
        .expect("valuation then");
        for c in &past {
            assert_eq!(c.valuation, c.ledger, "{} on {day}", c.account.label());
        }
    }
    let (_, replayed) =
        nexus_ledger::stock::books::valuation_at(&kernel, &Principal::system(company), Some(TODAY))
            .expect("valuation today");
    assert_eq!(
        replayed.iter().map(|c| c.valuation).collect::<Vec<_>>(),
        checks.iter().map(|c| c.valuation).collect::<Vec<_>>(),
        "replaying the moves gives the kept positions"
    );
    assert_eq!(
        nexus_ledger::demo::seed(&kernel, company, TODAY)
            .await
            .expect("again"),
        0,
        "seeding twice adds nothing"
    );

    let (chart, before) = tb(&kernel, &who);
    let leaves = || {
        before
            .iter()
            .filter(|r| chart.get(r.account).is_some_and(|a| !a.is_group))
    };
    let debits: i64 = leaves().map(|r| r.debit).sum();
    let credits: i64 = leaves().map(|r| r.credit).sum();
    assert_eq!(debits, credits, "the trial balance balances");
    assert!(debits > 0);
    let (bank, rent, assets) = (id(&chart, "1120"), id(&chart, "6200"), id(&chart, "1000"));

    // Each refusal says why and changes nothing.
    let other = kernel
        .create_company("Other Ltd", "USD")
        .await
        .expect("other company");
    let other_who = Principal::system(other);
    books::install_chart(&kernel, &other_who)
        .await
        .expect("other chart");
    let foreign_bank = id(&books::chart(&kernel, &other_who).expect("chart"), "1120");
    let cases: Vec<(EntryInput, &str)> = vec![
        (
            entry(TODAY, vec![line(rent, 100, 0), line(bank, 0, 99)]),
            "balance",
        ),
        (entry(TODAY, vec![line(rent, 100, 0)]), "line"),
        (
            entry(TODAY, vec![line(assets, 100, 0), line(bank, 0, 100)]),
            "group account",
        ),
        (
            entry(TODAY, vec![line(rent, 100, 0), line(foreign_bank, 0, 100)]),
            "no account with id",
        ),
        (
            entry(TODAY, vec![line(rent, 100, 100), line(bank, 0, 0)]),
            "not both",
        ),
        (
            entry(TODAY, vec![line(rent, -5, 0), line(bank, 0, -5)]),
            "positive",
        ),
        (
            entry(TODAY, vec![line(rent, 100, 0), line(999_999, 0, 100)]),
            "no account with id",
        ),
    ];
    for (input, expected) in cases {
        let e = books::post(&kernel, &who, input)
            .await
            .expect_err("refused");
        let m = message(&e);
        assert!(m.contains(expected), "expected {expected:?} in: {m}");
    }
    books::set_lock_date(&kernel, &who, date!(2026 - 06 - 30))
        .await
        .expect("lock");
    let e = books::post(
        &kernel,
        &who,
        entry(
            date!(2026 - 06 - 30),
            vec![line(rent, 100, 0), line(bank, 0, 100)],
        ),
    )
    .await
    .expect_err("locked");
    assert!(
        message(&e).contains("locked up to and including 2026-06-30"),
        "{}",
        message(&e)
    );
    // The generic record service cannot touch a posted entry.
    let first = kernel
        .list(
            &who,
            &JOURNAL_ENTRY,
            &nexus_kernel::ListQuery {
                limit: 1,
                ..Default::default()
            },
        )
        .expect("entries")
        .rows
        .remove(0);
    let e = kernel
        .update(
            &who,
            &JOURNAL_ENTRY,
            first.id,
            first.version,
            Input::Json(serde_json::from_str(r#"{"narration":"rewritten"}"#).expect("json")),
        )
        .await
        .expect_err("posted entries are never edited");
    assert!(e.to_string().contains("never edited"), "{e}");
    let e = kernel
        .delete(&who, &JOURNAL_ENTRY, first.id, None)
        .await
        .expect_err("nor deleted");
    assert!(e.to_string().contains("never edited or deleted"), "{e}");
    assert_eq!(tb(&kernel, &who).1, before, "refusals changed the totals");

    // A posted entry, then its cancellation: the totals come back.
    let posted = books::post(
        &kernel,
        &who,
        entry(TODAY, vec![line(rent, 12_345, 0), line(bank, 0, 12_345)]),
    )
    .await
    .expect("post");
    assert_ne!(tb(&kernel, &who).1, before);
    let reversal = books::cancel(&kernel, &who, posted.id, TODAY)
        .await
        .expect("cancel");
    assert_eq!(reversal.reverses, Some(posted.id));
    let again = books::cancel(&kernel, &who, posted.id, TODAY)
        .await
        .expect_err("twice");
    assert!(again.to_string().contains("already cancelled"), "{again}");
    let (_, after) = tb(&kernel, &who);
    let rent_row = |rows: &[TrialBalanceRow]| rows.iter().find(|r| r.account == rent).cloned();
    let (b, a) = (
        rent_row(&before).expect("rent"),
        rent_row(&after).expect("rent"),
    );
    assert_eq!(a.closing, b.closing, "the reversal undid the entry");
    assert_eq!(
        a.debit,
        b.debit + 12_345,
        "both entries stay in the turnover"
    );

    // The export: bean-check accepts it, and beancount's sums are ours.
    assert_beancount_agrees(&kernel, &who);
}

/// The company's books exported: the real `bean-check` accepts them, and beancount's
/// turnover per account equals our trial balance to the cent.
fn assert_beancount_agrees(kernel: &Kernel, who: &Principal) {
    let journal = books::export_beancount(kernel, who).expect("export");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("case-0.beancount"), &journal).expect("write");
    let venv = beancount_venv();
    let check = Command::new(venv.join("bin/bean-check"))
        .arg(dir.path().join("case-0.beancount"))
        .output()
        .expect("bean-check");
    assert!(
        check.status.success() && check.stdout.is_empty() && check.stderr.is_empty(),
        "bean-check refused the export:\n{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    let views = beancount_views(&venv, dir.path(), 1);
    let view = views.values().next().expect("one view");
    assert!(view.errors.is_empty(), "{:?}", view.errors);
    let mut theirs: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for (account, _month, _kind, debit, credit) in &view.turnover {
        let e = theirs.entry(account.clone()).or_default();
        e.0 += cents(debit);
        e.1 += cents(credit);
    }
    let (chart, rows) = tb(kernel, who);
    let ours: BTreeMap<String, (i64, i64)> = rows
        .iter()
        .filter_map(|r| chart.get(r.account).filter(|a| !a.is_group).map(|a| (a, r)))
        .filter(|(_, r)| r.debit != 0 || r.credit != 0)
        .map(|(a, r)| {
            (
                nexus_ledger::beancount::account_name(a),
                (r.debit, r.credit),
            )
        })
        .collect();
    assert_eq!(theirs, ours, "beancount and the trial balance disagree");
}

fn cents(decimal: &str) -> i64 {
    let (units, frac) = decimal.split_once('.').unwrap_or((decimal, "00"));
    let sign = if units.starts_with('-') { -1 } else { 1 };
    let units: i64 = units.trim_start_matches('-').parse().expect("units");
    let frac: i64 = format!("{frac:0<2}")[..2].parse().expect("cents");
    sign * (units * 100 + frac)
}

#[tokio::test]
async fn fiscal_years_guard_postings_and_close_into_retained_earnings() {
    let (_dir, kernel, company) = open().await;
    let who = Principal::system(company);
    books::install_chart(&kernel, &who).await.expect("chart");
    let chart = books::chart(&kernel, &who).expect("chart");
    let (bank, sales, rent, retained) = (
        id(&chart, "1120"),
        id(&chart, "4100"),
        id(&chart, "6200"),
        id(&chart, "3200"),
    );
    // Without fiscal years any date may be posted.
    books::post(
        &kernel,
        &who,
        entry(
            date!(2025 - 03 - 10),
            vec![line(bank, 100_000, 0), line(sales, 0, 100_000)],
        ),
    )
    .await
    .expect("a sale before any year exists");

    let fy2025 = years::open_year(
        &kernel,
        &who,
        date!(2025 - 01 - 01),
        date!(2025 - 12 - 31),
        None,
    )
    .await
    .expect("FY 2025");
    assert_eq!(fy2025.name, "FY 2025");
    let fy2026 = years::open_year(
        &kernel,
        &who,
        date!(2026 - 01 - 01),
        date!(2026 - 12 - 31),
        None,
    )
    .await
    .expect("FY 2026");
    let refusals = [
        (
            date!(2025 - 07 - 01),
            date!(2026 - 06 - 30),
            "overlaps the fiscal year 2025-01-01",
        ),
        (date!(2027 - 01 - 01), date!(2029 - 06 - 30), "24 months"),
        (date!(2027 - 06 - 30), date!(2027 - 01 - 01), "fiscal year"),
    ];
    for (start, end, expected) in refusals {
        let e = years::open_year(&kernel, &who, start, end, None)
            .await
            .expect_err("refused");
        assert!(
            message(&e).contains(expected),
            "{expected:?} in {}",
            message(&e)
        );
    }
    let e = kernel
        .create(
            &who,
            &FISCAL_YEAR,
            Input::Json(serde_json::from_str(r#"{"name":"FY X"}"#).expect("json")),
        )
        .await
        .expect_err("only the ledger opens years");
    assert!(e.to_string().contains("Ledger → Fiscal years"), "{e}");

    let e = books::post(
        &kernel,
        &who,
        entry(
            date!(2027 - 01 - 05),
            vec![line(rent, 100, 0), line(bank, 0, 100)],
        ),
    )
    .await
    .expect_err("no year covers 2027");
    assert!(
        message(&e).contains("no fiscal year covers 2027-01-05"),
        "{}",
        message(&e)
    );

    books::post(
        &kernel,
        &who,
        entry(
            date!(2025 - 04 - 01),
            vec![line(rent, 40_000, 0), line(bank, 0, 40_000)],
        ),
    )
    .await
    .expect("rent");
    books::post(
        &kernel,
        &who,
        entry(
            date!(2026 - 02 - 01),
            vec![line(rent, 40_000, 0), line(bank, 0, 40_000)],
        ),
    )
    .await
    .expect("rent in 2026");

    let e = years::close_year(&kernel, &who, fy2026.id, retained)
        .await
        .expect_err("2025 first");
    assert!(
        e.to_string()
            .contains("close the fiscal year 2025-01-01 to 2025-12-31 first"),
        "{e}"
    );
    let e = years::close_year(&kernel, &who, fy2025.id, sales)
        .await
        .expect_err("not an equity account");
    assert!(message(&e).contains("equity"), "{}", message(&e));

    let closed = years::close_year(&kernel, &who, fy2025.id, retained)
        .await
        .expect("close 2025");
    assert_eq!(closed.year.status, YearStatus::Closed);
    let entry_rec = closed.entry.expect("a closing entry");
    assert_eq!(entry_rec.kind, JournalKind::Closing);
    assert_eq!(closed.year.closing_entry, Some(entry_rec.id));
    // 1,000.00 of sales less 400.00 of rent: 600.00 profit to retained earnings.
    let dec = PeriodKey::of(date!(2025 - 12 - 01)).expect("december");
    let (_, rows) = books::trial_balance(&kernel, &who, dec, dec).expect("tb");
    let closing = |account| {
        rows.iter()
            .find(|r| r.account == account)
            .map(|r| r.closing)
    };
    assert_eq!(closing(sales), Some(0));
    assert_eq!(closing(rent), Some(0));
    assert_eq!(closing(retained), Some(-60_000));
    assert_eq!(closing(bank), Some(60_000));

    let e = books::post(
        &kernel,
        &who,
        entry(
            date!(2025 - 12 - 31),
            vec![line(rent, 100, 0), line(bank, 0, 100)],
        ),
    )
    .await
    .expect_err("closed year");
    assert!(message(&e).contains("is closed"), "{}", message(&e));
    let e = years::close_year(&kernel, &who, fy2025.id, retained)
        .await
        .expect_err("twice");
    assert!(e.to_string().contains("already closed"), "{e}");
    let listed = years::years(&kernel, &who).expect("years");
    assert_eq!(
        listed.iter().map(|y| y.closed).collect::<Vec<_>>(),
        vec![true, false]
    );
    // 2026 opens with the retained earnings and closes with its own result.
    let closed = years::close_year(&kernel, &who, fy2026.id, retained)
        .await
        .expect("close 2026");
    assert!(closed.entry.is_some());
    let dec = PeriodKey::of(date!(2026 - 12 - 01)).expect("december");
    let (_, rows) = books::trial_balance(&kernel, &who, dec, dec).expect("tb");
    let closing = |account| {
        rows.iter()
            .find(|r| r.account == account)
            .map(|r| r.closing)
    };
    assert_eq!(
        closing(retained),
        Some(-20_000),
        "600.00 profit, then 400.00 loss"
    );
    assert_eq!(closing(rent), Some(0));
}

mod receivables;

mod stock;

#[tokio::test]
async fn drafts_stay_out_of_the_books_until_posted() {
    let (_dir, kernel, company) = open().await;
    let who = Principal::system(company);
    books::install_chart(&kernel, &who).await.expect("chart");
    let chart = books::chart(&kernel, &who).expect("chart");
    let (bank, rent) = (id(&chart, "1120"), id(&chart, "6200"));
    let before = tb(&kernel, &who).1;

    // An unbalanced draft can be saved, but not posted; the books do not change.
    let draft = nexus_ledger::drafts::save(
        &kernel,
        &who,
        None,
        entry(TODAY, vec![line(rent, 50_000, 0), line(bank, 0, 5_000)]),
    )
    .await
    .expect("draft");
    assert_eq!(draft.status, JournalStatus::Draft);
    assert!(draft.number.starts_with("DRAFT-"));
    let e = nexus_ledger::drafts::post(&kernel, &who, draft.id)
        .await
        .expect_err("unbalanced");
    assert!(message(&e).contains("balance"), "{}", message(&e));
    assert_eq!(tb(&kernel, &who).1, before, "a draft is not in the totals");
    let still = kernel
        .read::<nexus_ledger::entities::JournalEntryRecord>(&who, draft.id)
        .expect("draft");
    assert_eq!(still.status, JournalStatus::Draft);

    // Edited, then posted: the same record becomes a numbered entry in the totals.
    nexus_ledger::drafts::save(
        &kernel,
        &who,
        Some(draft.id),
        entry(TODAY, vec![line(rent, 50_000, 0), line(bank, 0, 50_000)]),
    )
    .await
    .expect("edit");
    assert_eq!(
        nexus_ledger::drafts::lines(&kernel, &who, draft.id)
            .expect("lines")
            .len(),
        2
    );
    let posted = nexus_ledger::drafts::post(&kernel, &who, draft.id)
        .await
        .expect("post");
    assert_eq!(posted.id, draft.id);
    assert_eq!(posted.status, JournalStatus::Posted);
    assert!(posted.number.starts_with("JE-"));
    assert_ne!(tb(&kernel, &who).1, before);
    assert!(
        nexus_ledger::drafts::lines(&kernel, &who, draft.id)
            .expect("lines")
            .is_empty()
    );

    // A posted entry is no longer a draft: it cannot be edited, posted or discarded.
    let e = nexus_ledger::drafts::save(
        &kernel,
        &who,
        Some(draft.id),
        entry(TODAY, vec![line(rent, 1, 0), line(bank, 0, 1)]),
    )
    .await
    .expect_err("posted");
    assert!(e.to_string().contains("not a draft"), "{e}");
    let e = nexus_ledger::drafts::discard(&kernel, &who, draft.id)
        .await
        .expect_err("posted");
    assert!(e.to_string().contains("not a draft"), "{e}");

    // A discarded draft stays as a record, out of the books and the export.
    let other = nexus_ledger::drafts::save(
        &kernel,
        &who,
        None,
        entry(TODAY, vec![line(rent, 7, 0), line(bank, 0, 7)]),
    )
    .await
    .expect("second draft");
    let gone = nexus_ledger::drafts::discard(&kernel, &who, other.id)
        .await
        .expect("discard");
    assert_eq!(gone.status, JournalStatus::Discarded);
    let journal = books::export_beancount(&kernel, &who).expect("export");
    assert!(!journal.contains("DRAFT-"), "{journal}");
}
