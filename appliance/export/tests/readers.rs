//! The exports read back by real readers, never mocks: XLSX by Python's `openpyxl` and
//! the `calamine` crate, PDF by poppler's `pdftotext` (text, layout and word boxes),
//! `pdfinfo` and `qpdf --check`.
//!
//! The readers are installed by `scripts/install-export-checkers.sh` (run by `make
//! deps`). When one is missing these tests fail and say so; they never skip.
//! `NEXUS_EXPORT_VENV` points at another venv (default
//! `/var/cache/nexus-tools/export-venv`); `NEXUS_EXPORT_SEED` replays another random
//! run, `NEXUS_EXPORT_CASES` changes the number of random reports (30).
//! `NEXUS_EXPORT_KEEP=dir` keeps the sample documents there, to look at.

// Test support code panics on the unexpected, like the tests themselves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use nexus_export::{
    Align, Cell, Column, ColumnKind, ExportError, Invoice, InvoiceLine, InvoiceTotals, Party,
    Report, Row, Subtitle, TaxRow, XLSX_MAX_MINOR, format_money, invoice_pdf, sheet_name, to_pdf,
    to_xlsx,
};
use serde_json::Value;
use time::macros::{date, datetime};
use time::{Date, OffsetDateTime};

const GENERATED: OffsetDateTime = datetime!(2026-04-01 09:30 UTC);

// ------------------------------------------------------------------ the readers

struct Tools {
    python: PathBuf,
}

/// The readers, checked once; a missing one fails the test with what to run.
fn tools() -> &'static Tools {
    static TOOLS: OnceLock<Result<Tools, String>> = OnceLock::new();
    let found = TOOLS.get_or_init(|| {
        let venv = std::env::var_os("NEXUS_EXPORT_VENV")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/var/cache/nexus-tools/export-venv"));
        let python = venv.join("bin/python");
        let mut missing = Vec::new();
        for (cmd, arg, what) in [
            ("pdftotext", "-v", "pdftotext (Debian poppler-utils)"),
            ("pdfinfo", "-v", "pdfinfo (Debian poppler-utils)"),
            ("qpdf", "--version", "qpdf (Debian qpdf)"),
        ] {
            if Command::new(cmd).arg(arg).output().is_err() {
                missing.push(what.to_string());
            }
        }
        let imports = Command::new(&python)
            .args(["-c", "import openpyxl, pypdf"])
            .output();
        if !imports.is_ok_and(|o| o.status.success()) {
            missing.push(format!("openpyxl and pypdf in {}", venv.display()));
        }
        if missing.is_empty() {
            Ok(Tools { python })
        } else {
            Err(format!(
                "the export checkers are missing: {}. Run `make deps` (or, as root, scripts/install-export-checkers.sh) and test again",
                missing.join(", ")
            ))
        }
    });
    match found {
        Ok(t) => t,
        Err(m) => panic!("{m}"),
    }
}

/// Keeps a sample document in `$NEXUS_EXPORT_KEEP`, when set.
fn keep(name: &str, bytes: &[u8]) {
    if let Some(dir) = std::env::var_os("NEXUS_EXPORT_KEEP") {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(Path::new(&dir).join(name), bytes).unwrap();
    }
}

fn temp_file(bytes: &[u8], suffix: &str) -> tempfile::TempPath {
    let file = tempfile::Builder::new()
        .prefix("nexus-export-")
        .suffix(suffix)
        .tempfile()
        .unwrap();
    std::fs::write(file.path(), bytes).unwrap();
    file.into_temp_path()
}

fn run(cmd: &Path, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", cmd.display()));
    assert!(
        out.status.success(),
        "{} {args:?} failed: {}{}",
        cmd.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `pdftotext -layout`, pages separated by form feeds.
fn pdftotext(pdf: &[u8]) -> String {
    tools();
    let f = temp_file(pdf, ".pdf");
    run(
        Path::new("pdftotext"),
        &["-layout", "-enc", "UTF-8", f.to_str().unwrap(), "-"],
    )
}

/// `pdftotext -raw`: text in content-stream order.
fn pdftotext_raw(pdf: &[u8]) -> String {
    tools();
    let f = temp_file(pdf, ".pdf");
    run(
        Path::new("pdftotext"),
        &["-raw", "-enc", "UTF-8", f.to_str().unwrap(), "-"],
    )
}

/// The text of each page.
fn pages(pdf: &[u8]) -> Vec<String> {
    let text = pdftotext(pdf);
    let mut pages: Vec<String> = text.split('\u{c}').map(str::to_string).collect();
    if pages.last().is_some_and(|p| p.trim().is_empty()) {
        pages.pop();
    }
    pages
}

fn qpdf_check(pdf: &[u8]) {
    tools();
    let f = temp_file(pdf, ".pdf");
    let out = run(Path::new("qpdf"), &["--check", f.to_str().unwrap()]);
    assert!(
        out.contains("No syntax or stream encoding errors found"),
        "qpdf --check: {out}"
    );
}

/// `pdfinfo`'s "Page size" and "Pages".
fn pdfinfo(pdf: &[u8]) -> (String, usize) {
    tools();
    let f = temp_file(pdf, ".pdf");
    let out = run(Path::new("pdfinfo"), &[f.to_str().unwrap()]);
    let field = |name: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|| panic!("pdfinfo has no {name}: {out}"))
    };
    (field("Page size:"), field("Pages:").parse().unwrap())
}

#[derive(Debug)]
struct Word {
    page: usize,
    x_min: f64,
    x_max: f64,
    y_min: f64,
    text: String,
}

/// Every word with its box, as poppler measures it (`pdftotext -bbox`).
fn words(pdf: &[u8]) -> Vec<Word> {
    tools();
    let f = temp_file(pdf, ".pdf");
    let html = run(
        Path::new("pdftotext"),
        &["-bbox", "-enc", "UTF-8", f.to_str().unwrap(), "-"],
    );
    let attr = |tag: &str, name: &str| -> f64 {
        let start = tag.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
        let end = start + tag[start..].find('"').unwrap();
        tag[start..end].parse().unwrap()
    };
    let mut out = Vec::new();
    let mut page = 0;
    for line in html.lines() {
        let line = line.trim();
        if line.starts_with("<page ") {
            page += 1;
        } else if let Some(rest) = line.strip_prefix("<word ") {
            let close = rest.find('>').unwrap();
            let tag = &rest[..close];
            let text = rest[close + 1..].trim_end_matches("</word>");
            let text = text
                .replace("&amp;", "&")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&apos;", "'");
            out.push(Word {
                page,
                x_min: attr(tag, "xMin"),
                x_max: attr(tag, "xMax"),
                y_min: attr(tag, "yMin"),
                text,
            });
        }
    }
    out
}

const OPENPYXL_DUMP: &str = r#"
import datetime, decimal, json, sys
import openpyxl
wb = openpyxl.load_workbook(sys.argv[1])
ws = wb.worksheets[0]
cells = {}
for row in ws.iter_rows():
    for c in row:
        v = c.value
        if isinstance(v, bool):
            raise SystemExit("unexpected bool in " + c.coordinate)
        if isinstance(v, (int, float)):
            v = {"n": format(decimal.Decimal(repr(v)), "f")}
        elif isinstance(v, datetime.datetime):
            v = {"d": v.date().isoformat(), "time": v.time().isoformat()}
        elif isinstance(v, str):
            v = {"s": v}
        elif v is not None:
            raise SystemExit("unexpected %r in %s" % (v, c.coordinate))
        if v is None and not c.font.b and c.border.top.style is None:
            continue
        cells[c.coordinate] = {
            "v": v, "fmt": c.number_format, "bold": bool(c.font.b),
            "indent": c.alignment.indent, "top": c.border.top.style,
            "align": c.alignment.horizontal, "size": c.font.sz,
        }
widths = {k: d.width for k, d in ws.column_dimensions.items()}
print(json.dumps({"sheets": wb.sheetnames, "freeze": ws.freeze_panes,
                  "max_row": ws.max_row, "cells": cells, "widths": widths,
                  "created": wb.properties.created.isoformat() if wb.properties.created else None,
                  "title": wb.properties.title}))
"#;

/// The first sheet as openpyxl sees it.
fn openpyxl(xlsx: &[u8]) -> Value {
    let t = tools();
    let f = temp_file(xlsx, ".xlsx");
    let out = run(&t.python, &["-c", OPENPYXL_DUMP, f.to_str().unwrap()]);
    serde_json::from_str(&out).unwrap()
}

fn col_letter(j: usize) -> String {
    let mut n = j + 1;
    let mut s = Vec::new();
    while n > 0 {
        s.push(b'A' + ((n - 1) % 26) as u8);
        n = (n - 1) / 26;
    }
    s.reverse();
    String::from_utf8(s).unwrap()
}

/// `minor / 10^exponent` as a plain decimal with no trailing zeros ("-1234.5", "0").
fn plain_decimal(minor: i64, exponent: u8) -> String {
    normalise(&format_money(minor, exponent).replace(',', ""))
}

fn normalise(s: &str) -> String {
    if !s.contains('.') {
        return if s == "-0" { "0".into() } else { s.into() };
    }
    let t = s.trim_end_matches('0').trim_end_matches('.');
    if t == "-0" || t.is_empty() {
        "0".into()
    } else {
        t.into()
    }
}

// ------------------------------------------------------------------ fixtures

fn text(s: &str) -> Cell {
    Cell::Text(s.to_string())
}

fn col(header: &str, kind: ColumnKind) -> Column {
    let align = if kind == ColumnKind::Text {
        Align::Left
    } else {
        Align::Right
    };
    Column {
        header: header.into(),
        align,
        kind,
    }
}

const EUR: ColumnKind = ColumnKind::Money { exponent: 2 };

fn trial_balance() -> Report {
    let row = |code: &str, name: &str, o: i64, d: i64, c: i64| {
        Row::new(vec![
            text(code),
            text(name),
            Cell::Money(o),
            Cell::Money(d),
            Cell::Money(c),
            Cell::Money(o + d - c),
        ])
    };
    Report {
        title: "Trial balance".into(),
        subtitle: Subtitle {
            company: "Müller & Söhne GmbH".into(),
            period: "2026-01-01 – 2026-03-31".into(),
            currency: "EUR".into(),
        },
        columns: vec![
            col("Code", ColumnKind::Text),
            col("Account", ColumnKind::Text),
            col("Opening", EUR),
            col("Debit", EUR),
            col("Credit", EUR),
            col("Closing", EUR),
        ],
        rows: vec![
            row("1", "Assets", 1_000_000, 523_456, 12_345).bold(),
            row("1200", "Bank – “Sparkasse”", 1_000_000, 523_456, 12_345).indent(1),
            row("2", "Liabilities", -1_000_000, 0, 511_111).bold(),
            row("1600", "Creditors (Café Zoë)", -1_000_000, 0, 511_111).indent(2),
        ],
        footer: Some(Row::new(vec![
            Cell::Empty,
            text("Total"),
            Cell::Money(0),
            Cell::Money(523_456),
            Cell::Money(523_456),
            Cell::Money(0),
        ])),
    }
}

// ------------------------------------------------------------------ XLSX

#[test]
fn xlsx_reads_back_in_openpyxl_with_formats() {
    let report = trial_balance();
    let xlsx = to_xlsx(&report, GENERATED).unwrap();
    keep("trial-balance.xlsx", &xlsx);
    let book = openpyxl(&xlsx);
    assert_eq!(book["sheets"], serde_json::json!(["Trial balance"]));
    assert_eq!(book["freeze"], "A5", "the header row (4) is frozen");
    assert_eq!(book["title"], "Trial balance");
    assert_eq!(book["created"], "2026-04-01T09:30:00");
    let cells = &book["cells"];
    assert_eq!(cells["A1"]["v"]["s"], "Trial balance");
    assert_eq!(cells["A1"]["bold"], true);
    assert_eq!(
        cells["A2"]["v"]["s"],
        "Müller & Söhne GmbH · 2026-01-01 – 2026-03-31 · EUR"
    );
    for (j, c) in report.columns.iter().enumerate() {
        let h = &cells[format!("{}4", col_letter(j))];
        assert_eq!(h["v"]["s"], c.header.as_str());
        assert_eq!(h["bold"], true, "header {} is bold", c.header);
    }
    for (i, (row, is_footer)) in report
        .rows
        .iter()
        .map(|r| (r, false))
        .chain(report.footer.iter().map(|r| (r, true)))
        .enumerate()
    {
        let r = i + 5;
        for (j, (cell, column)) in row.cells.iter().zip(&report.columns).enumerate() {
            let key = format!("{}{r}", col_letter(j));
            let got = &cells[&key];
            match cell {
                Cell::Text(s) => {
                    assert_eq!(got["v"]["s"], s.as_str(), "{key}");
                    assert_eq!(got["indent"], f64::from(row.indent), "{key} indent");
                }
                Cell::Money(m) => {
                    assert_eq!(got["v"]["n"], plain_decimal(*m, 2).as_str(), "{key}");
                    assert_eq!(got["fmt"], "#,##0.00", "{key}");
                    assert_eq!(got["align"], "right", "{key}");
                }
                Cell::Empty => assert!(got["v"].is_null(), "{key}"),
                _ => unreachable!(),
            }
            if !matches!(cell, Cell::Empty) || is_footer {
                assert_eq!(got["bold"], row.bold || is_footer, "{key} bold");
            }
            assert_eq!(
                got["top"].as_str(),
                is_footer.then_some("thin"),
                "{key} top border"
            );
            let _ = column;
        }
    }
    assert_eq!(book["max_row"], 9);
    // Widths fit the content: "Creditors (Café Zoë)" is 20 characters plus 2 indents.
    let b = book["widths"]["B"].as_f64().unwrap();
    assert!((20.0..40.0).contains(&b), "column B width {b}");
    let a = book["widths"]["A"].as_f64().unwrap();
    assert!(a < b, "column A ({a}) is narrower than B ({b})");
}

#[test]
fn xlsx_number_formats_follow_the_exponent() {
    let report = Report {
        title: "Kinds".into(),
        subtitle: Subtitle::default(),
        columns: vec![
            col("JPY", ColumnKind::Money { exponent: 0 }),
            col("KWD", ColumnKind::Money { exponent: 3 }),
            col("Count", ColumnKind::Integer),
            col("Date", ColumnKind::Date),
        ],
        rows: vec![Row::new(vec![
            Cell::Money(-1_234_567),
            Cell::Money(1_234_567),
            Cell::Integer(42_000),
            Cell::Date(date!(2026 - 02 - 28)),
        ])],
        footer: None,
    };
    let book = openpyxl(&to_xlsx(&report, GENERATED).unwrap());
    let cells = &book["cells"];
    assert_eq!(cells["A5"]["v"]["n"], "-1234567");
    assert_eq!(cells["A5"]["fmt"], "#,##0");
    assert_eq!(cells["B5"]["v"]["n"], "1234.567");
    assert_eq!(cells["B5"]["fmt"], "#,##0.000");
    assert_eq!(cells["C5"]["v"]["n"], "42000");
    assert_eq!(cells["C5"]["fmt"], "#,##0");
    assert_eq!(cells["D5"]["v"]["d"], "2026-02-28");
    assert_eq!(cells["D5"]["fmt"], "yyyy-mm-dd");
    assert!(
        cells.get("A2").is_none(),
        "a blank subtitle leaves row 2 empty"
    );
}

#[test]
fn xlsx_reads_back_in_calamine() {
    use calamine::{Data, Reader, Xlsx};
    let report = trial_balance();
    let bytes = to_xlsx(&report, GENERATED).unwrap();
    let mut book: Xlsx<_> = calamine::open_workbook_from_rs(std::io::Cursor::new(bytes)).unwrap();
    assert_eq!(book.sheet_names(), vec!["Trial balance".to_string()]);
    let range = book.worksheet_range("Trial balance").unwrap();
    assert_eq!(
        range.get_value((0, 0)),
        Some(&Data::String("Trial balance".into()))
    );
    for (i, row) in report.rows.iter().chain(report.footer.iter()).enumerate() {
        for (j, cell) in row.cells.iter().enumerate() {
            let got = range.get_value(((i + 4) as u32, j as u32));
            match cell {
                Cell::Text(s) => assert_eq!(got, Some(&Data::String(s.clone()))),
                Cell::Money(m) => assert_eq!(got, Some(&Data::Float(*m as f64 / 100.0))),
                Cell::Empty => assert!(matches!(got, None | Some(Data::Empty))),
                _ => unreachable!(),
            }
        }
    }
}

#[test]
fn sheet_names_are_sanitised() {
    let cases = [
        ("Trial balance", "Trial balance"),
        ("P&L: 2026/Q1 [draft]?", "P&L- 2026-Q1 -draft--"),
        ("'quoted'", "quoted"),
        ("   ", "Report"),
        ("history", "history-"),
        (
            "Aged receivables by customer and due date",
            "Aged receivables by customer an",
        ),
        (
            "Bilanz für Müller & Söhne GmbH 2026",
            "Bilanz für Müller & Söhne GmbH",
        ),
        (
            "😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀",
            "😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀",
        ),
    ];
    for (title, want) in cases {
        assert_eq!(sheet_name(title), want, "{title:?}");
    }
    // Excel's rules, checked by a real reader on a real file.
    let mut report = trial_balance();
    report.title = "P&L: 2026/Q1 [draft]? of a very long company name".into();
    let book = openpyxl(&to_xlsx(&report, GENERATED).unwrap());
    assert_eq!(
        book["sheets"],
        serde_json::json!(["P&L- 2026-Q1 -draft-- of a very"])
    );
    assert_eq!(book["cells"]["A1"]["v"]["s"], report.title.as_str());
}

#[test]
fn xlsx_refuses_what_it_cannot_hold_exactly() {
    let mut report = trial_balance();
    report.rows[1].cells[3] = Cell::Money(XLSX_MAX_MINOR);
    report.rows[1].cells[4] = Cell::Money(-XLSX_MAX_MINOR);
    let book = openpyxl(&to_xlsx(&report, GENERATED).unwrap());
    assert_eq!(book["cells"]["D6"]["v"]["n"], "9999999999999.99");
    assert_eq!(book["cells"]["E6"]["v"]["n"], "-9999999999999.99");

    report.rows[1].cells[3] = Cell::Money(XLSX_MAX_MINOR + 1);
    let err = to_xlsx(&report, GENERATED).unwrap_err();
    assert!(
        matches!(err, ExportError::InexactInSpreadsheet { column: 4, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("row 2, column 4"), "{err}");
    assert!(err.to_string().contains("10,000,000,000,000.00"), "{err}");
    // The PDF prints it exactly.
    report.rows[1].cells[3] = Cell::Money(i64::MIN);
    let shown_text = pdftotext(&to_pdf(&report, GENERATED).unwrap());
    assert!(
        shown_text.contains("-92,233,720,368,547,758.08"),
        "{shown_text}"
    );

    let mut report = trial_balance();
    report.columns[0].kind = ColumnKind::Date;
    report.rows = vec![Row::new(vec![
        Cell::Date(date!(1899 - 12 - 31)),
        text("x"),
        Cell::Empty,
        Cell::Empty,
        Cell::Empty,
        Cell::Empty,
    ])];
    report.footer = None;
    let err = to_xlsx(&report, GENERATED).unwrap_err();
    assert!(
        err.to_string()
            .contains("1899-12-31 is outside the years 1900 to 9999"),
        "{err}"
    );
}

// ------------------------------------------------------------------ PDF

/// The rows of `report` as pdftotext shows them, each on one line, in order.
fn assert_rows_in_order(
    report: &Report,
    text: &str,
    mut expect_cell: impl FnMut(&Cell, ColumnKind) -> String,
) {
    let lines: Vec<String> = text
        .lines()
        .map(|l| l.chars().filter(|c| !c.is_whitespace()).collect())
        .collect();
    let mut at = 0;
    for (i, row) in report.rows.iter().chain(report.footer.iter()).enumerate() {
        let want: String = row
            .cells
            .iter()
            .zip(&report.columns)
            .map(|(c, col)| expect_cell(c, col.kind))
            .collect::<String>()
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        if want.is_empty() {
            continue;
        }
        match lines[at..].iter().position(|l| *l == want) {
            Some(k) => at += k + 1,
            None => panic!(
                "row {} ({want:?}) is not on a line of its own after line {at}:\n{text}",
                i + 1
            ),
        }
    }
}

fn shown(cell: &Cell, kind: ColumnKind) -> String {
    match (cell, kind) {
        (Cell::Text(s), _) => s.clone(),
        (Cell::Money(m), ColumnKind::Money { exponent }) => format_money(*m, exponent),
        (Cell::Integer(n), _) => format_money(*n, 0),
        (Cell::Date(d), _) => d.to_string(),
        _ => String::new(),
    }
}

#[test]
fn pdf_report_reads_back_with_exact_right_alignment() {
    let report = trial_balance();
    let pdf = to_pdf(&report, GENERATED).unwrap();
    keep("trial-balance.pdf", &pdf);
    qpdf_check(&pdf);
    assert_eq!(pdfinfo(&pdf), ("595.276 x 841.89 pts (A4)".to_string(), 1));
    let text = pdftotext(&pdf);
    assert!(text.contains("Trial balance"), "{text}");
    assert!(
        text.contains("Müller & Söhne GmbH · 2026-01-01 – 2026-03-31 · EUR"),
        "{text}"
    );
    assert!(text.contains("Page 1 of 1"), "{text}");
    assert!(text.contains("Generated 2026-04-01 09:30 UTC"), "{text}");
    assert!(text.contains("Bank – “Sparkasse”"), "{text}");
    assert!(
        text.contains("-10,000.00") && text.contains("-15,111.11"),
        "{text}"
    );
    assert_rows_in_order(&report, &text, shown);

    // Amounts in a column end at the same x, as poppler measures them.
    let words = words(&pdf);
    let amounts: Vec<&Word> = words
        .iter()
        .filter(|w| w.text.contains('.') && w.text.chars().all(|c| "-0123456789,.".contains(c)))
        .collect();
    assert!(amounts.len() >= 20, "{amounts:?}");
    let mut ends: Vec<f64> = amounts.iter().map(|w| w.x_max).collect();
    ends.sort_by(f64::total_cmp);
    ends.dedup_by(|a, b| (*a - *b).abs() < 0.02);
    assert_eq!(
        ends.len(),
        4,
        "four money columns, four right edges: {ends:?}"
    );
    // Indents: "Bank" sits 8 pt right of "Assets", "Creditors" 16 pt right of "Liabilities".
    let x = |t: &str| words.iter().find(|w| w.text == t).unwrap().x_min;
    assert!((x("Bank") - x("Assets") - 8.0).abs() < 0.02);
    assert!((x("Creditors") - x("Liabilities") - 16.0).abs() < 0.02);
}

#[test]
fn long_pdf_report_repeats_title_and_header_on_every_page() {
    let mut report = trial_balance();
    report.rows = (0..300)
        .map(|i| {
            Row::new(vec![
                text(&format!("{}", 1000 + i)),
                text(&format!("Account number {i}")),
                Cell::Money(i * 1_000_001 - 150_000_000),
                Cell::Money(i * 37),
                Cell::Empty,
                Cell::Money(-i),
            ])
        })
        .collect();
    let pdf = to_pdf(&report, GENERATED).unwrap();
    keep("long-report.pdf", &pdf);
    qpdf_check(&pdf);
    let pages = pages(&pdf);
    let n = pages.len();
    assert!(n >= 5, "300 rows take several pages, not {n}");
    assert_eq!(pdfinfo(&pdf).1, n);
    for (i, page) in pages.iter().enumerate() {
        assert!(page.contains("Trial balance"), "page {}", i + 1);
        let header = page
            .lines()
            .find(|l| l.contains("Code"))
            .unwrap_or_else(|| panic!("page {} has no header row:\n{page}", i + 1));
        let h: Vec<&str> = header.split_whitespace().collect();
        assert_eq!(
            h,
            ["Code", "Account", "Opening", "Debit", "Credit", "Closing"],
            "page {}",
            i + 1
        );
        assert!(
            page.contains(&format!("Page {} of {n}", i + 1)),
            "page {}:\n{page}",
            i + 1
        );
    }
    assert_rows_in_order(&report, &pages.join("\n"), shown);
    // The footer row comes once, at the end.
    assert_eq!(pages.concat().matches("Total").count(), 1);
    assert!(pages[n - 1].contains("Total"));
}

#[test]
fn wide_report_turns_landscape_and_shrinks_type_to_fit() {
    let columns: Vec<Column> = std::iter::once(col("Name", ColumnKind::Text))
        .chain((1..=12).map(|m| col(&format!("Month {m}"), EUR)))
        .collect();
    let rows: Vec<Row> = (0..5)
        .map(|i| {
            let mut cells = vec![text(&format!("Line {i}"))];
            cells.extend((1..=12).map(|m| Cell::Money(-(m * 1_000_000_007 + i))));
            Row::new(cells)
        })
        .collect();
    let report = Report {
        title: "Monthly".into(),
        subtitle: Subtitle::default(),
        columns,
        rows,
        footer: None,
    };
    let pdf = to_pdf(&report, GENERATED).unwrap();
    keep("wide-report.pdf", &pdf);
    qpdf_check(&pdf);
    assert_eq!(pdfinfo(&pdf).0, "841.89 x 595.276 pts (A4)");
    assert_rows_in_order(&report, &pdftotext(&pdf), shown);

    // Far too many columns: a clear error, not an unreadable page.
    let mut wide = report.clone();
    wide.columns = (0..60).map(|m| col(&format!("Month {m}"), EUR)).collect();
    wide.rows = vec![Row::new((0..60).map(|_| Cell::Money(i64::MIN)).collect())];
    let err = to_pdf(&wide, GENERATED).unwrap_err();
    assert!(
        matches!(err, ExportError::TooWide { columns: 60, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("landscape A4"), "{err}");
}

#[test]
fn long_text_wraps_inside_its_column() {
    let mut report = trial_balance();
    let long = "A very long account description that cannot possibly fit into the column \
                of a portrait page and must wrap onto several lines of its own";
    report.rows[1].cells[1] = text(long);
    let pdf = to_pdf(&report, GENERATED).unwrap();
    let text = pdftotext(&pdf);
    let words_out: Vec<&str> = text.split_whitespace().collect();
    let words_in: Vec<&str> = long.split_whitespace().collect();
    let mut at = 0;
    for w in &words_in {
        at += words_out[at..]
            .iter()
            .position(|o| o == w)
            .unwrap_or_else(|| panic!("{w} missing:\n{text}"))
            + 1;
    }
    let boxes = words(&pdf);
    let lines: std::collections::BTreeSet<i64> = boxes
        .iter()
        .filter(|w| words_in.contains(&w.text.as_str()) && w.page == 1)
        .map(|w| (w.y_min * 10.0) as i64)
        .collect();
    assert!(lines.len() >= 2, "the description wraps");
    let opening = boxes.iter().find(|w| w.text == "Opening").unwrap();
    // (Above the page footer, whose "of" is one of the words.)
    let x_max = boxes
        .iter()
        .filter(|w| words_in.contains(&w.text.as_str()) && w.y_min < opening.y_min + 100.0)
        .map(|w| w.x_max)
        .fold(0.0, f64::max);
    assert!(
        x_max < opening.x_min,
        "wrapped text ({x_max}) stays left of the Opening column ({}):\n{text}",
        opening.x_min
    );
}

// ------------------------------------------------------------------ invoices

fn party(name: &str, city: &str) -> Party {
    Party {
        name: name.into(),
        address: vec![
            "Hauptstraße 5".into(),
            format!("10115 {city}"),
            "Germany".into(),
        ],
        tax_id: "DE123456789".into(),
        email: "billing@example.com".into(),
        phone: "+49 30 1234567".into(),
    }
}

fn invoice(lines: usize) -> Invoice {
    let lines: Vec<InvoiceLine> = (0..lines)
        .map(|i| {
            let i = i as i64;
            InvoiceLine {
                description: if i == 0 {
                    "Espresso beans for Café Zoë, 10 € per kilogram, roasted to order and \
                     delivered in recyclable bags"
                        .into()
                } else {
                    format!("Consulting, item {}", i + 1)
                },
                quantity: format!("{} h", i + 1),
                unit_price: 10_000 + i,
                discount: if i % 3 == 0 {
                    "10 %".into()
                } else {
                    String::new()
                },
                tax: if i % 2 == 0 {
                    "VAT 19 %".into()
                } else {
                    "VAT 7 %".into()
                },
                net: 10_000 * (i + 1) + i,
            }
        })
        .collect();
    let base19: i64 = lines
        .iter()
        .filter(|l| l.tax == "VAT 19 %")
        .map(|l| l.net)
        .sum();
    let base7: i64 = lines
        .iter()
        .filter(|l| l.tax == "VAT 7 %")
        .map(|l| l.net)
        .sum();
    let tax_rows = vec![
        TaxRow {
            label: "VAT 19 %".into(),
            base: base19,
            tax: base19 * 19 / 100,
        },
        TaxRow {
            label: "VAT 7 %".into(),
            base: base7,
            tax: base7 * 7 / 100,
        },
    ];
    let net = base19 + base7;
    let tax = tax_rows.iter().map(|t| t.tax).sum::<i64>();
    Invoice {
        seller: party("Müller & Söhne GmbH", "Berlin"),
        buyer: party("Café Zoë SARL", "Hamburg"),
        number: "INV-2026-0042".into(),
        kind: "Invoice".into(),
        issue_date: date!(2026 - 03 - 31),
        due_date: date!(2026 - 04 - 14),
        currency: "EUR".into(),
        exponent: 2,
        lines,
        tax_rows,
        totals: InvoiceTotals {
            net,
            tax,
            total: net + tax,
            paid: 5_000,
            due: net + tax - 5_000,
        },
        payment_terms: "Payable within 14 days without deduction.".into(),
        bank_details: vec![
            "IBAN DE89 3704 0044 0532 0130 00".into(),
            "BIC COBADEFFXXX".into(),
        ],
        notes: "Thank you for your business — “Danke”!".into(),
    }
}

#[test]
fn invoice_shows_parties_lines_taxes_and_amount_due() {
    let inv = invoice(4);
    let pdf = invoice_pdf(&inv).unwrap();
    keep("invoice.pdf", &pdf);
    qpdf_check(&pdf);
    assert_eq!(pdfinfo(&pdf), ("595.276 x 841.89 pts (A4)".to_string(), 1));
    let text = pdftotext(&pdf);
    for want in [
        "INVOICE",
        "Müller & Söhne GmbH",
        "Café Zoë SARL",
        "Hauptstraße 5",
        "10115 Hamburg",
        "Tax ID DE123456789",
        "INV-2026-0042",
        "2026-03-31",
        "2026-04-14",
        "Consulting, item 2",
        "VAT 19 %",
        "VAT 7 %",
        "IBAN DE89 3704 0044 0532 0130 00",
        "Payable within 14 days without deduction.",
        "Thank you for your business — “Danke”!",
        "Page 1 of 1",
    ] {
        assert!(text.contains(want), "{want:?} missing:\n{text}");
    }
    // The first description wraps, and "10 €" survives.
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(flat.contains("10 €"), "{text}");
    for w in inv.lines[0].description.split_whitespace() {
        assert!(text.contains(w), "{w} missing:\n{text}");
    }
    // Each line: description, quantity, unit price, discount, tax and net in order on
    // one line, as read in content order (`-layout` squeezes the narrow space in "2 h").
    let raw = pdftotext_raw(&pdf);
    for l in &inv.lines[1..] {
        let want = [
            l.description.as_str(),
            &l.quantity,
            &format_money(l.unit_price, 2),
            &l.discount,
            &l.tax,
            &format_money(l.net, 2),
        ]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
        assert!(raw.lines().any(|r| r == want), "{want:?} missing:\n{raw}");
    }
    let t = inv.totals;
    let due_line = text
        .lines()
        .find(|l| l.contains("Amount due (EUR)"))
        .unwrap();
    assert!(
        due_line.trim_end().ends_with(&format_money(t.due, 2)),
        "{due_line}"
    );
    let total_line = text.lines().find(|l| l.contains("Total (EUR)")).unwrap();
    assert!(
        total_line.trim_end().ends_with(&format_money(t.total, 2)),
        "{total_line}"
    );
    assert!(text.contains("Paid"));
}

#[test]
fn long_invoice_spans_pages_with_header_on_each_and_totals_once() {
    let inv = invoice(80);
    let pdf = invoice_pdf(&inv).unwrap();
    keep("long-invoice.pdf", &pdf);
    qpdf_check(&pdf);
    let pages = pages(&pdf);
    let n = pages.len();
    assert!(n >= 2, "80 lines need more than one page");
    for (i, page) in pages.iter().enumerate() {
        assert!(
            page.contains("Description"),
            "page {} lacks the table header",
            i + 1
        );
        assert!(
            page.contains(&format!("Page {} of {n}", i + 1)),
            "page {}",
            i + 1
        );
        assert!(
            page.contains("Müller & Söhne GmbH"),
            "page {} names the seller",
            i + 1
        );
        if i > 0 {
            assert!(
                page.contains("Invoice INV-2026-0042 (continued)"),
                "page {}",
                i + 1
            );
        }
    }
    let all = pages.concat();
    assert_eq!(all.matches("Amount due (EUR)").count(), 1);
    assert!(pages[n - 1].contains("Amount due (EUR)"));
    assert_eq!(all.matches("Net total").count(), 1);
    // Every line once, in order.
    let mut at = 0;
    for l in &inv.lines[1..] {
        let key = format!("{} ", l.description);
        let k = all[at..]
            .find(&key)
            .unwrap_or_else(|| panic!("{key:?} missing or out of order"));
        at += k + key.len();
    }
}

#[test]
fn credit_note_and_yen() {
    let mut inv = invoice(2);
    inv.kind = "Credit note".into();
    inv.exponent = 0;
    inv.currency = "JPY".into();
    let pdf = invoice_pdf(&inv).unwrap();
    let text = pdftotext(&pdf);
    assert!(
        text.contains("CREDIT NOTE") && text.contains("Credit note no."),
        "{text}"
    );
    assert!(text.contains(&format_money(inv.totals.due, 0)), "{text}");
    assert!(text.contains("Amount due (JPY)"), "{text}");
}

#[test]
fn invoices_that_do_not_add_up_are_refused() {
    let mut inv = invoice(3);
    inv.totals.total += 1;
    let err = invoice_pdf(&inv).unwrap_err();
    assert!(
        err.to_string().contains("do not add up") && err.to_string().contains("but the total is"),
        "{err}"
    );

    let mut inv = invoice(3);
    inv.lines[0].net += 1;
    let err = invoice_pdf(&inv).unwrap_err();
    assert!(
        err.to_string().contains("the lines' net amounts sum to"),
        "{err}"
    );

    let mut inv = invoice(3);
    inv.tax_rows[0].tax += 1;
    assert!(
        invoice_pdf(&inv)
            .unwrap_err()
            .to_string()
            .contains("the tax rows sum to")
    );

    let mut inv = invoice(3);
    inv.totals.due -= 1;
    assert!(
        invoice_pdf(&inv)
            .unwrap_err()
            .to_string()
            .contains("less paid")
    );

    let mut inv = invoice(3);
    inv.due_date = date!(2026 - 01 - 01);
    assert_eq!(
        invoice_pdf(&inv).unwrap_err().to_string(),
        "the due date 2026-01-01 is before the issue date 2026-03-31"
    );

    let mut inv = invoice(3);
    inv.number = "  ".into();
    assert_eq!(
        invoice_pdf(&inv).unwrap_err().to_string(),
        "the invoice number is empty; give the invoice its number"
    );
}

// ------------------------------------------------------------------ bad input

#[test]
fn malformed_reports_are_refused_with_clear_errors() {
    let check = |report: &Report, want: &str| {
        for err in [
            to_pdf(report, GENERATED).unwrap_err(),
            to_xlsx(report, GENERATED).unwrap_err(),
        ] {
            assert_eq!(err.to_string(), want);
        }
    };
    let mut r = trial_balance();
    r.rows[2].cells.pop();
    check(
        &r,
        "row 3 has 5 cells but the report has 6 columns; give every row one cell per column (Cell::Empty for a blank)",
    );

    let mut r = trial_balance();
    r.footer.as_mut().unwrap().cells.push(Cell::Empty);
    check(
        &r,
        "the footer row has 7 cells but the report has 6 columns; give every row one cell per column (Cell::Empty for a blank)",
    );

    let mut r = trial_balance();
    r.rows[0].cells[1] = Cell::Money(5);
    check(
        &r,
        "row 1, column 2 (\"Account\"): a money cell cannot go in a text column; put money values in a money column, or use Cell::Empty",
    );

    let mut r = trial_balance();
    r.rows[3].cells[2] = text("n/a");
    check(
        &r,
        "row 4, column 3 (\"Opening\"): a text cell cannot go in a money column; put text values in a text column, or use Cell::Empty",
    );

    let mut r = trial_balance();
    r.title = " \n ".into();
    check(
        &r,
        "the report title is empty; give the report a title (it names the sheet and heads every page)",
    );

    let mut r = trial_balance();
    r.columns[2].kind = ColumnKind::Money { exponent: 10 };
    check(
        &r,
        "column 3 (\"Opening\"): a money exponent of 10 is not supported (0 to 9; 2 for USD or EUR, 0 for JPY, 3 for KWD)",
    );

    let r = Report {
        columns: vec![],
        rows: vec![],
        footer: None,
        ..trial_balance()
    };
    check(&r, "the report has no columns; a report needs at least one");
}

#[test]
fn empty_report_still_makes_documents() {
    let r = Report {
        rows: vec![],
        footer: None,
        ..trial_balance()
    };
    let pdf = to_pdf(&r, GENERATED).unwrap();
    qpdf_check(&pdf);
    let text = pdftotext(&pdf);
    assert!(
        text.contains("Trial balance") && text.contains("Closing") && text.contains("Page 1 of 1")
    );
    let book = openpyxl(&to_xlsx(&r, GENERATED).unwrap());
    assert_eq!(book["cells"]["F4"]["v"]["s"], "Closing");
}

// ------------------------------------------------------------------ random reports

/// xorshift64*: small, seedable, good enough to pick test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }
}

/// Characters that print as themselves, and ones that print as '?'.
const PRINTABLE: &[char] = &[
    'a', 'b', 'c', 'x', 'y', 'z', 'A', 'M', 'W', '0', '7', '&', '(', ')', '\\', '%', '/', '-', '.',
    'é', 'ü', 'ß', 'Ø', 'ñ', '€', '–', '—', '“', '”', '‘', '’', '…', '•', '£', '©', '½',
];
const UNPRINTABLE: &[char] = &['Ω', 'ж', '日', '😀', 'ł', 'ő'];

fn random_text(rng: &mut Rng) -> (String, String) {
    let words = 1 + rng.below(2);
    let (mut input, mut shown) = (String::new(), String::new());
    for w in 0..words {
        if w > 0 {
            input.push(' ');
            shown.push(' ');
        }
        for _ in 0..1 + rng.below(5) {
            if rng.below(8) == 0 {
                input.push(*rng.pick(UNPRINTABLE));
                shown.push('?');
            } else {
                let c = *rng.pick(PRINTABLE);
                input.push(c);
                shown.push(c);
            }
        }
    }
    (input, shown)
}

fn random_money(rng: &mut Rng, pdf_only: bool) -> i64 {
    let m = match rng.below(6) {
        0 => rng.below(100) as i64,
        1 => rng.below(1_000_000_000) as i64,
        2 => (rng.below(XLSX_MAX_MINOR as u64 + 1)) as i64,
        3 => *rng.pick(&[0, 1, 999, 1000, XLSX_MAX_MINOR]),
        _ if pdf_only => *rng.pick(&[i64::MAX, i64::MIN + 1, 1 << 53, (1 << 53) + 1]),
        _ => rng.below(10_000_000) as i64,
    };
    if rng.below(2) == 0 { -m } else { m }
}

#[test]
fn random_reports_read_back_exactly() {
    let seed = std::env::var("NEXUS_EXPORT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_e490_2700_0001_u64);
    let cases: u64 = std::env::var("NEXUS_EXPORT_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let mut rng = Rng(seed | 1);
    for case in 0..cases {
        let pdf_only = case % 4 == 3;
        let ncols = 1 + rng.below(4) as usize;
        let mut columns = vec![col("Label", ColumnKind::Text)];
        for j in 1..ncols {
            let kind = *rng.pick(&[
                ColumnKind::Text,
                ColumnKind::Money { exponent: 0 },
                ColumnKind::Money { exponent: 2 },
                ColumnKind::Money { exponent: 3 },
                ColumnKind::Integer,
                ColumnKind::Date,
            ]);
            columns.push(col(&format!("C{j}"), kind));
        }
        let mut shown_rows: Vec<Vec<String>> = Vec::new();
        let mut make_row = |rng: &mut Rng| {
            let mut cells = Vec::new();
            let mut shown = Vec::new();
            for c in &columns {
                let (cell, s) = match (rng.below(7), c.kind) {
                    (0, _) => (Cell::Empty, String::new()),
                    (_, ColumnKind::Text) => {
                        let (t, s) = random_text(rng);
                        (Cell::Text(t), s)
                    }
                    (_, ColumnKind::Money { exponent }) => {
                        let m = random_money(rng, pdf_only);
                        (Cell::Money(m), format_money(m, exponent))
                    }
                    (_, ColumnKind::Integer) => {
                        let n = random_money(rng, false);
                        (Cell::Integer(n), format_money(n, 0))
                    }
                    (_, ColumnKind::Date) => {
                        let d =
                            Date::from_julian_day(2_415_021 + rng.below(73_000) as i32).unwrap();
                        (Cell::Date(d), d.to_string())
                    }
                };
                cells.push(cell);
                shown.push(s);
            }
            let mut row = Row::new(cells);
            row.bold = rng.below(5) == 0;
            row.indent = rng.below(3) as u8;
            shown_rows.push(shown);
            row
        };
        let rows: Vec<Row> = (0..rng.below(40)).map(|_| make_row(&mut rng)).collect();
        let footer = (rng.below(2) == 0).then(|| make_row(&mut rng));
        let (title, title_shown) = random_text(&mut rng);
        let report = Report {
            title: format!("Report {case} {title}"),
            subtitle: Subtitle {
                company: "Zoë & Co".into(),
                period: "2026".into(),
                currency: "EUR".into(),
            },
            columns,
            rows,
            footer,
        };
        let ctx = format!("case {case} (NEXUS_EXPORT_SEED={seed})");

        // PDF: every row on its own line, in order, as shown.
        let pdf = to_pdf(&report, GENERATED).unwrap_or_else(|e| panic!("{ctx}: {e}"));
        let text = pdftotext(&pdf);
        assert!(
            text.split_whitespace().collect::<String>().contains(
                &format!("Report {case} {title_shown}")
                    .split_whitespace()
                    .collect::<String>()
            ),
            "{ctx}: title\n{text}"
        );
        let mut i = 0;
        assert_rows_in_order(&report, &text, |_, _| {
            // Called once per cell, row by row.
            let row = i / report.columns.len();
            let j = i % report.columns.len();
            i += 1;
            shown_rows[row][j].clone()
        });

        // XLSX: every cell's value exact, or a refusal for amounts it cannot hold.
        let xlsx = to_xlsx(&report, GENERATED);
        let too_big = report.all_cells().any(|c| matches!(c, Cell::Money(m) | Cell::Integer(m) if m.unsigned_abs() > XLSX_MAX_MINOR as u64));
        if too_big {
            assert!(
                matches!(xlsx, Err(ExportError::InexactInSpreadsheet { .. })),
                "{ctx}: {xlsx:?}"
            );
            continue;
        }
        let book = openpyxl(&xlsx.unwrap_or_else(|e| panic!("{ctx}: {e}")));
        let cells = &book["cells"];
        for (r, row) in report.rows.iter().chain(report.footer.iter()).enumerate() {
            for (j, (cell, c)) in row.cells.iter().zip(&report.columns).enumerate() {
                let key = format!("{}{}", col_letter(j), r + 5);
                let got = &cells[&key]["v"];
                let want = match (cell, c.kind) {
                    (Cell::Text(s), _) => serde_json::json!({ "s": s }),
                    (Cell::Money(m), ColumnKind::Money { exponent }) => {
                        serde_json::json!({ "n": plain_decimal(*m, exponent) })
                    }
                    (Cell::Integer(n), _) => serde_json::json!({ "n": plain_decimal(*n, 0) }),
                    (Cell::Date(d), _) => {
                        serde_json::json!({ "d": d.to_string(), "time": "00:00:00" })
                    }
                    _ => Value::Null,
                };
                assert_eq!(got, &want, "{ctx}: {key}");
            }
        }
    }
}

trait AllCells {
    fn all_cells(&self) -> Box<dyn Iterator<Item = &Cell> + '_>;
}

impl AllCells for Report {
    fn all_cells(&self) -> Box<dyn Iterator<Item = &Cell> + '_> {
        Box::new(
            self.rows
                .iter()
                .chain(self.footer.iter())
                .flat_map(|r| r.cells.iter()),
        )
    }
}

#[test]
fn same_input_same_bytes() {
    let r = trial_balance();
    assert_eq!(
        to_pdf(&r, GENERATED).unwrap(),
        to_pdf(&r, GENERATED).unwrap()
    );
    assert_eq!(
        invoice_pdf(&invoice(5)).unwrap(),
        invoice_pdf(&invoice(5)).unwrap()
    );
    assert_eq!(
        to_xlsx(&r, GENERATED).unwrap(),
        to_xlsx(&r, GENERATED).unwrap()
    );
}
