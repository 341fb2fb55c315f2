//! Bank accounts, statement import and reconciliation on a real store: the fixtures
//! imported whole or not at all, duplicates skipped, accept / undo / create entry with
//! the books checked, and every refusal leaving the books and the lines as they were.

use nexus_kernel::{Kernel, KernelError, ListQuery, Principal, Row};
use nexus_ledger::bank::books::{
    self as bank, BankAccountInput, FileFormat, ImportError, Reconciliation,
};
use nexus_ledger::bank::entities::{BANK_LINE, BANK_STATEMENT, BankLineRecord, LineStatus};
use nexus_ledger::books;
use nexus_ledger::entities::JournalEntryRecord;
use nexus_ledger::{PeriodKey, TrialBalanceRow};
use time::macros::date;

use super::{TODAY, entry, id, line, message, open};

const GERMAN: &[u8] = include_bytes!("../fixtures/bank/german.csv");
const ENGLISH: &[u8] = include_bytes!("../fixtures/bank/english.csv");
const BAD: &[u8] = include_bytes!("../fixtures/bank/bad.csv");
const CAMT_V02: &[u8] = include_bytes!("../fixtures/bank/camt053_v02.xml");
const CAMT_V08: &[u8] = include_bytes!("../fixtures/bank/camt053_v08.xml");

const CSV: FileFormat = FileFormat::Csv {
    date_format: None,
    decimal: None,
};

fn count(kernel: &Kernel, who: &Principal, def: &'static nexus_kernel::EntityDef) -> u64 {
    let q = ListQuery {
        limit: 1,
        ..Default::default()
    };
    kernel.list(who, def, &q).expect("list").total
}

fn lines_of(kernel: &Kernel, who: &Principal, bank_id: u64) -> Vec<Row<BankLineRecord>> {
    let q = ListQuery {
        filters: vec![("bank_account".into(), bank_id.to_string())],
        limit: usize::MAX,
        ..Default::default()
    };
    Row::all(&kernel.list(who, &BANK_LINE, &q).expect("lines").rows).expect("typed")
}

fn amount(rec: &Row<BankLineRecord>) -> i64 {
    rec.amount
}

fn err_text(e: &ImportError) -> String {
    match e {
        ImportError::Kernel(k) => message(k),
        other => other.to_string(),
    }
}

/// The trial balance from 2024 (the fixtures' year) to today.
fn tb(kernel: &Kernel, who: &Principal) -> (nexus_ledger::Chart, Vec<TrialBalanceRow>) {
    let from = PeriodKey::of(date!(2024 - 01 - 01)).expect("from");
    let to = PeriodKey::of(TODAY).expect("to");
    books::trial_balance(kernel, who, from, to).expect("trial balance")
}

fn screen(kernel: &Kernel, who: &Principal, bank_id: u64) -> Reconciliation {
    bank::reconciliation(kernel, who, bank_id, 50).expect("reconciliation")
}

/// A euro company with the small-firm chart.
async fn euro_company(kernel: &Kernel) -> (Principal, nexus_ledger::Chart) {
    let company = kernel
        .create_company("Nexus Demo GmbH", "EUR")
        .await
        .expect("company");
    let who = Principal::system(company);
    books::install_chart(kernel, &who).await.expect("chart");
    let chart = books::chart(kernel, &who).expect("chart");
    (who, chart)
}

fn account_input(name: &str, number: &str, currency: &str, account: u64) -> BankAccountInput {
    BankAccountInput {
        name: name.into(),
        number: number.into(),
        currency: currency.into(),
        account,
    }
}

#[tokio::test]
async fn statements_import_whole_or_not_at_all_and_once() {
    let (_dir, kernel, _) = open().await;
    let (who, chart) = euro_company(&kernel).await;
    let (main, savings, cash, group) = (
        id(&chart, "1120"),
        id(&chart, "1130"),
        id(&chart, "1110"),
        id(&chart, "1100"),
    );

    // Bank accounts: the refusals say why and add nothing.
    let refusals = [
        (
            account_input("Giro", "DE89", "USD", main),
            "not supported yet",
        ),
        (
            account_input("Giro", "DE89", "", cash),
            "choose an account of type Bank",
        ),
        (account_input("Giro", "DE89", "", group), "is a group"),
        (account_input("  ", "DE89", "", main), "Name is required"),
        (account_input("Giro", " ", "", main), "account number"),
        (
            account_input("Giro", "DE89", "", 999_999),
            "no account with id",
        ),
    ];
    for (input, expected) in refusals {
        let e = bank::create_bank_account(&kernel, &who, input)
            .await
            .expect_err("refused");
        assert!(message(&e).contains(expected), "{expected:?} in {e:?}");
    }
    let giro = bank::create_bank_account(
        &kernel,
        &who,
        account_input("Giro", "DE89 3704 0044 0532 0130 00", "eur", main),
    )
    .await
    .expect("bank account");
    let e = bank::create_bank_account(&kernel, &who, account_input("Giro 2", "DE02", "", main))
        .await
        .expect_err("one bank account per ledger account");
    assert!(message(&e).contains("already has"), "{e:?}");
    let savings = bank::create_bank_account(
        &kernel,
        &who,
        account_input("Savings", "CH93 0076 2011 6238 5295 7", "", savings),
    )
    .await
    .expect("second bank account");
    assert_eq!(bank::bank_accounts(&kernel, &who).expect("list").len(), 2);

    // A file with bad rows: nothing imported, every problem with its line.
    let e = bank::import_statement(&kernel, &who, giro.id, BAD, CSV, None)
        .await
        .expect_err("bad file");
    let lines: Vec<usize> = e.problems().iter().map(|p| p.line).collect();
    assert_eq!(lines, [3, 4, 5, 6, 6, 8, 9, 10], "{e}");
    assert!(e.to_string().contains("nothing was imported"), "{e}");
    assert_eq!(count(&kernel, &who, &BANK_LINE), 0);
    assert_eq!(count(&kernel, &who, &BANK_STATEMENT), 0);

    // A good CSV, then the same again: nothing added the second time.
    let first = bank::import_statement(&kernel, &who, giro.id, GERMAN, CSV, Some(12_345))
        .await
        .expect("german csv");
    assert_eq!((first.imported, first.skipped), (4, 0));
    let statement = first.statement.expect("statement record");
    assert_eq!(statement.closing, Some(12_345));
    let amounts: Vec<i64> = lines_of(&kernel, &who, giro.id)
        .iter()
        .map(amount)
        .collect();
    assert_eq!(amounts, [-123_456, 50_000, 123_456_789, -995]);
    let again = bank::import_statement(&kernel, &who, giro.id, GERMAN, CSV, None)
        .await
        .expect("again");
    assert_eq!(
        (again.imported, again.skipped, again.statement.is_none()),
        (0, 4, true)
    );
    assert_eq!(count(&kernel, &who, &BANK_LINE), 4);

    // Overrides: the same German file read as ISO dates fails on every row.
    let iso = FileFormat::Csv {
        date_format: Some(nexus_ledger::bank::DateFormat::Iso),
        decimal: None,
    };
    let e = bank::import_statement(&kernel, &who, savings.id, GERMAN, iso, None)
        .await
        .expect_err("wrong date format");
    let mut rows: Vec<usize> = e.problems().iter().map(|p| p.line).collect();
    rows.dedup();
    assert_eq!(rows, [2, 3, 4, 5], "{e}");

    // camt.053: the IBAN must be the bank account's; the currency the company's.
    let e = bank::import_statement(
        &kernel,
        &who,
        savings.id,
        CAMT_V02,
        FileFormat::Camt053,
        None,
    )
    .await
    .expect_err("another account's statement");
    assert!(err_text(&e).contains("DE89370400440532013000"), "{e}");
    let e = bank::import_statement(
        &kernel,
        &who,
        savings.id,
        CAMT_V08,
        FileFormat::Camt053,
        None,
    )
    .await
    .expect_err("francs into a euro company");
    assert!(err_text(&e).contains("in CHF"), "{e}");
    assert_eq!(
        count(&kernel, &who, &BANK_LINE),
        4,
        "refusals imported nothing"
    );

    let camt = bank::import_statement(&kernel, &who, giro.id, CAMT_V02, FileFormat::Camt053, None)
        .await
        .expect("camt v02");
    assert_eq!(
        (camt.imported, camt.skipped),
        (4, 0),
        "the pending entry is left out"
    );
    let statement = camt.statement.expect("statement");
    assert_eq!(statement.closing, Some(729_750));
    assert_eq!(statement.opening, Some(1_000_000));
    let again = bank::import_statement(&kernel, &who, giro.id, CAMT_V02, FileFormat::Camt053, None)
        .await
        .expect("camt again");
    assert_eq!((again.imported, again.skipped), (0, 4));
    assert_eq!(
        FileFormat::detect(CAMT_V02),
        FileFormat::Camt053,
        "XML is told from CSV"
    );
    assert_eq!(FileFormat::detect(ENGLISH), CSV);

    // Equal lines within one file are both kept; the file twice still adds nothing.
    let twice = b"Date,Amount,Description\n2024-03-01,-5.00,Coffee\n2024-03-01,-5.00,Coffee\n";
    let r = bank::import_statement(&kernel, &who, savings.id, twice, CSV, None)
        .await
        .expect("two coffees");
    assert_eq!((r.imported, r.skipped), (2, 0));
    let r = bank::import_statement(&kernel, &who, savings.id, twice, CSV, None)
        .await
        .expect("two coffees again");
    assert_eq!((r.imported, r.skipped), (0, 2));

    // Another company sees none of it and cannot import into it.
    let other = kernel
        .create_company("Other GmbH", "EUR")
        .await
        .expect("other");
    let other_who = Principal::system(other);
    let e = bank::import_statement(&kernel, &other_who, giro.id, GERMAN, CSV, None)
        .await
        .expect_err("not theirs");
    assert!(
        matches!(e, ImportError::Kernel(KernelError::NotFound(_))),
        "{e:?}"
    );
    assert_eq!(count(&kernel, &other_who, &BANK_LINE), 0);
}

#[tokio::test]
async fn lines_are_accepted_undone_and_booked_once() {
    let (_dir, kernel, _) = open().await;
    let (who, chart) = euro_company(&kernel).await;
    let (main, debtors, rent, fees) = (
        id(&chart, "1120"),
        id(&chart, "1210"),
        id(&chart, "6200"),
        id(&chart, "6700"),
    );
    let giro = bank::create_bank_account(
        &kernel,
        &who,
        account_input("Giro", "DE89370400440532013000", "", main),
    )
    .await
    .expect("bank account");
    // The books: a customer's payment and the rent, as the statement shows them.
    let mut paid = entry(
        date!(2024 - 04 - 01),
        vec![line(main, 119_000, 0), line(debtors, 0, 119_000)],
    );
    paid.narration = "Kunde & Söhne GmbH".into();
    paid.reference = "INV-000042".into();
    books::post(&kernel, &who, paid).await.expect("receipt");
    let mut rent_paid = entry(
        date!(2024 - 04 - 03),
        vec![line(rent, 150_000, 0), line(main, 0, 150_000)],
    );
    rent_paid.narration = "Müller Immobilien GmbH".into();
    books::post(&kernel, &who, rent_paid).await.expect("rent");
    bank::import_statement(&kernel, &who, giro.id, CAMT_V02, FileFormat::Camt053, None)
        .await
        .expect("statement");

    let s = screen(&kernel, &who, giro.id);
    assert_eq!(s.open.len(), 4);
    assert_eq!(
        s.statement_closing,
        Some((Some(date!(2024 - 04 - 05)), 729_750))
    );
    assert_eq!(s.ledger_balance, 119_000 - 150_000);
    let by_amount = |s: &Reconciliation, m: i64| {
        s.open
            .iter()
            .find(|l| amount(&l.record) == m)
            .cloned()
            .expect("line")
    };
    let receipt = by_amount(&s, 119_000);
    let best = receipt.best.expect("the receipt matches the payment");
    assert!(
        receipt.suggestions[0].score >= 80,
        "{:?}",
        receipt.suggestions
    );
    let rent_line = by_amount(&s, -150_000);
    let rent_jl = rent_line.best.expect("the rent matches");
    let fee = by_amount(&s, -1_250);
    assert_eq!(fee.best, None, "nothing in the books for the fee yet");

    // Accept; the journal line is no longer offered; a second accept is refused.
    let before = tb(&kernel, &who);
    let rec = bank::reconcile(&kernel, &who, receipt.record.id, best)
        .await
        .expect("accept");
    assert_eq!(rec.status, LineStatus::Reconciled);
    assert_eq!(rec.journal_line, Some(best));
    let s = screen(&kernel, &who, giro.id);
    assert_eq!(s.open.len(), 3);
    assert!(
        !s.items.contains_key(&best),
        "a reconciled line is not offered again"
    );
    assert_eq!(s.reconciled.len(), 1);
    let e = bank::reconcile(&kernel, &who, receipt.record.id, best)
        .await
        .expect_err("twice");
    assert!(message(&e).contains("already reconciled with JE-"), "{e:?}");
    let e = bank::reconcile(&kernel, &who, rent_line.record.id, best)
        .await
        .expect_err("another line, the same journal line");
    assert!(
        message(&e).contains("already reconciled with another statement line"),
        "{e:?}"
    );
    let e = bank::reconcile(&kernel, &who, fee.record.id, rent_jl)
        .await
        .expect_err("different amounts");
    assert!(message(&e).contains("amounts differ"), "{e:?}");
    let e = bank::create_entry(&kernel, &who, receipt.record.id, fees, None)
        .await
        .expect_err("reconciled already");
    assert!(message(&e).contains("already reconciled"), "{e:?}");
    let e = bank::create_entry(&kernel, &who, fee.record.id, main, None)
        .await
        .expect_err("the bank against itself");
    assert!(message(&e).contains("not the bank account itself"), "{e:?}");
    assert_eq!(tb(&kernel, &who).1, before.1, "refusals posted nothing");

    // Undo, and the journal line is offered again; accept it again.
    let rec = bank::unreconcile(&kernel, &who, receipt.record.id)
        .await
        .expect("undo");
    assert_eq!(rec.status, LineStatus::Unreconciled);
    assert!(rec.journal_line.is_none());
    let e = bank::unreconcile(&kernel, &who, receipt.record.id)
        .await
        .expect_err("nothing to undo");
    assert!(message(&e).contains("not reconciled"), "{e:?}");
    let s = screen(&kernel, &who, giro.id);
    assert_eq!(s.open.len(), 4);
    assert_eq!(by_amount(&s, 119_000).best, Some(best));
    bank::reconcile(&kernel, &who, receipt.record.id, best)
        .await
        .expect("accept again");
    bank::reconcile(&kernel, &who, rent_line.record.id, rent_jl)
        .await
        .expect("accept the rent");

    // Create entry: the fee is posted (bank credited, fees debited) and reconciled.
    let rec = bank::create_entry(&kernel, &who, fee.record.id, fees, None)
        .await
        .expect("create entry");
    assert_eq!(rec.status, LineStatus::Reconciled);
    let entry_id = rec.journal_entry.expect("entry");
    let posted = kernel
        .read::<JournalEntryRecord>(&who, entry_id)
        .expect("entry");
    assert_eq!(posted.date, date!(2024 - 04 - 05));
    assert_eq!(posted.total, 1_250);
    let (chart_after, after) = tb(&kernel, &who);
    let row = |rows: &[TrialBalanceRow], a: u64| {
        rows.iter()
            .find(|r| r.account == a)
            .map(|r| (r.debit, r.credit))
            .unwrap_or_default()
    };
    let (bank_before, fees_before) = (row(&before.1, main), row(&before.1, fees));
    assert_eq!(row(&after, main), (bank_before.0, bank_before.1 + 1_250));
    assert_eq!(row(&after, fees), (fees_before.0 + 1_250, fees_before.1));
    assert!(chart_after.get(fees).is_some());
    let s = screen(&kernel, &who, giro.id);
    assert_eq!(s.open.len(), 1, "only the batch payment is left");
    assert_eq!(s.ledger_balance, 119_000 - 150_000 - 1_250);
    // Undoing a created entry's reconciliation leaves the entry posted and offers it.
    bank::unreconcile(&kernel, &who, fee.record.id)
        .await
        .expect("undo the fee");
    let s = screen(&kernel, &who, giro.id);
    assert!(by_amount(&s, -1_250).best.is_some());
    assert_eq!(tb(&kernel, &who).1, after, "undo posts nothing");

    // Another company cannot touch these lines.
    let other = kernel
        .create_company("Other GmbH", "EUR")
        .await
        .expect("other");
    let other_who = Principal::system(other);
    books::install_chart(&kernel, &other_who)
        .await
        .expect("chart");
    let other_fees = id(&books::chart(&kernel, &other_who).expect("chart"), "6700");
    for e in [
        bank::reconcile(&kernel, &other_who, fee.record.id, best)
            .await
            .expect_err("not theirs"),
        bank::create_entry(&kernel, &other_who, fee.record.id, other_fees, None)
            .await
            .expect_err("not theirs"),
        bank::unreconcile(&kernel, &other_who, receipt.record.id)
            .await
            .expect_err("not theirs"),
    ] {
        assert!(matches!(e, KernelError::NotFound(_)), "{e:?}");
    }
    assert!(bank::reconciliation(&kernel, &other_who, giro.id, 10).is_err());
}

#[tokio::test]
async fn the_demo_statement_mostly_matches_the_demo_books() {
    let (_dir, kernel, company) = open().await;
    let who = Principal::system(company);
    nexus_ledger::demo::seed(&kernel, company, TODAY)
        .await
        .expect("demo");
    let accounts = bank::bank_accounts(&kernel, &who).expect("bank accounts");
    assert_eq!(accounts.len(), 1);
    let giro = accounts[0].id;
    let s = screen(&kernel, &who, giro);
    let matched = s.open.iter().filter(|l| l.best.is_some()).count();
    assert!(s.open.len() > 10, "a month of lines: {}", s.open.len());
    assert_eq!(
        matched,
        s.open.len() - 2,
        "all but the charge and the interest"
    );
    let (closing_date, closing) = s.statement_closing.expect("closing balance");
    assert_eq!(closing_date, Some(date!(2026 - 10 - 31)));
    assert_eq!(closing - s.ledger_balance, 123 - 750);

    for l in s.open.iter().filter(|l| l.best.is_some()) {
        bank::reconcile(&kernel, &who, l.record.id, l.best.expect("best"))
            .await
            .expect("accept");
    }
    let chart = books::chart(&kernel, &who).expect("chart");
    let s = screen(&kernel, &who, giro);
    assert_eq!(s.open.len(), 2);
    for l in &s.open {
        let counter = if amount(&l.record) > 0 {
            "4300"
        } else {
            "6700"
        };
        bank::create_entry(&kernel, &who, l.record.id, id(&chart, counter), None)
            .await
            .expect("book it");
    }
    let s = screen(&kernel, &who, giro);
    assert!(s.open.is_empty());
    assert_eq!(
        s.statement_closing.map(|(_, c)| c),
        Some(s.ledger_balance),
        "reconciled: the books agree with the bank"
    );
}
