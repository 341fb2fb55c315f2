use std::io::Write;

use super::*;

const DOCX: &str = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

fn get(bytes: &[u8], mime: &str, name: &str) -> Vec<Passage> {
    extract(bytes, mime, name, Limits::default()).expect("extract")
}

/// A PDF of `pages`, each page's text in Helvetica, as `nexus-export` writes them.
fn pdf(pages: &[&str]) -> Vec<u8> {
    use pdf_writer::{Content, Finish as _, Name, Pdf, Rect, Ref, Str};
    let mut pdf = Pdf::new();
    let (catalog, tree, font) = (Ref::new(1), Ref::new(2), Ref::new(3));
    let ids: Vec<(Ref, Ref)> = (0..pages.len() as i32)
        .map(|i| (Ref::new(10 + 2 * i), Ref::new(11 + 2 * i)))
        .collect();
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree)
        .kids(ids.iter().map(|(p, _)| *p))
        .count(pages.len() as i32);
    pdf.type1_font(font).base_font(Name(b"Helvetica"));
    for ((page_id, content_id), text) in ids.iter().zip(pages) {
        let mut c = Content::new();
        c.begin_text();
        c.set_font(Name(b"F1"), 12.0);
        c.next_line(72.0, 720.0);
        c.show(Str(text.as_bytes()));
        c.end_text();
        pdf.stream(*content_id, &c.finish());
        let mut page = pdf.page(*page_id);
        page.media_box(Rect::new(0.0, 0.0, 595.0, 842.0))
            .parent(tree)
            .contents(*content_id);
        page.resources().fonts().pair(Name(b"F1"), font);
        page.finish();
    }
    pdf.finish()
}

/// A ZIP of `(name, content)` entries, deflated.
fn zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    let mut w = zip::ZipWriter::new(&mut out);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, content) in entries {
        w.start_file(*name, options).expect("entry");
        w.write_all(content).expect("write");
    }
    w.finish().expect("zip");
    out.into_inner()
}

fn docx(body: &str) -> Vec<u8> {
    let xml = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>{body}</w:body></w:document>"#
    );
    zip(&[
        ("[Content_Types].xml", b"<Types/>"),
        ("word/document.xml", xml.as_bytes()),
    ])
}

fn para(style: Option<&str>, text: &str) -> String {
    let style = style.map_or(String::new(), |s| {
        format!(r#"<w:pPr><w:pStyle w:val="{s}"/></w:pPr>"#)
    });
    format!("<w:p>{style}<w:r><w:t>{text}</w:t></w:r></w:p>")
}

#[test]
fn a_pdf_gives_its_text_page_by_page() {
    let bytes = pdf(&["Offer for Initech", "Delivery within 30 days"]);
    let passages = get(&bytes, "application/pdf", "offer.pdf");
    let seen: Vec<(&str, Option<u32>, bool)> = passages
        .iter()
        .map(|p| (p.locator.as_str(), p.page, p.text.contains("Initech")))
        .collect();
    assert_eq!(
        seen,
        [("page 1", Some(1), true), ("page 2", Some(2), false)],
        "{passages:?}"
    );
    assert!(
        passages[1].text.contains("Delivery within 30 days"),
        "{passages:?}"
    );
}

#[test]
fn a_broken_or_encrypted_pdf_is_refused_in_words() {
    let mut cut = pdf(&["Offer"]);
    cut.truncate(cut.len() / 3);
    let e = extract(&cut, "application/pdf", "cut.pdf", Limits::default()).expect_err("cut");
    assert!(matches!(e, ExtractError::Damaged(_)), "{e:?}");
    assert!(e.to_string().starts_with("the file is damaged"), "{e}");
    // An encryption dictionary this reader cannot open.
    let mut locked =
        b"%PDF-1.4\n1 0 obj << /Filter /Standard /V 5 /R 6 /O <00> /U <00> >> endobj\n".to_vec();
    locked.extend_from_slice(b"trailer << /Root 2 0 R /Encrypt 1 0 R >>\n%%EOF\n");
    let e =
        extract(&locked, "application/pdf", "locked.pdf", Limits::default()).expect_err("locked");
    assert_eq!(e, ExtractError::Encrypted);
}

#[test]
fn a_word_document_gives_sections_by_heading_and_tables_by_row() {
    let body = [
        para(None, "Before any heading"),
        para(Some("Title"), "Service agreement"),
        para(None, "Between Initech and us &amp; our partners"),
        para(Some("Heading1"), "Prices"),
        "<w:tbl><w:tr><w:tc>".to_owned()
            + &para(None, "Support")
            + "</w:tc><w:tc>"
            + &para(None, "120 CHF")
            + "</w:tc></w:tr></w:tbl>",
    ]
    .concat();
    let passages = get(&docx(&body), DOCX, "agreement.docx");
    let locators: Vec<&str> = passages.iter().map(|p| p.locator.as_str()).collect();
    assert_eq!(
        locators,
        ["", "Service agreement", "Prices"],
        "{passages:?}"
    );
    assert!(
        passages[1].text.contains("Initech and us & our partners"),
        "{passages:?}"
    );
    assert!(
        passages[2].text.contains("Support | 120 CHF"),
        "{passages:?}"
    );
    // Detected as a plain ZIP, a .docx is read as Word all the same.
    assert_eq!(get(&docx(&body), "application/zip", "a.docx").len(), 3);
}

#[test]
fn a_zip_bomb_is_refused_before_it_is_unpacked() {
    let zeros = vec![0u8; 3 * 1024 * 1024];
    let bomb = zip(&[("word/document.xml", &zeros)]);
    assert!(bomb.len() < 100_000, "it packs small: {}", bomb.len());
    let limits = Limits {
        max_unpacked: 1024 * 1024,
        ..Limits::default()
    };
    let e = extract(&bomb, DOCX, "bomb.docx", limits).expect_err("bomb");
    assert_eq!(e, ExtractError::TooLarge("1 MiB".into()));
    let e = extract(&bomb, XLSX, "bomb.xlsx", limits).expect_err("bomb");
    assert_eq!(e, ExtractError::TooLarge("1 MiB".into()));
    let many: Vec<(String, Vec<u8>)> = (0..20).map(|i| (format!("f{i}"), vec![1u8])).collect();
    let refs: Vec<(&str, &[u8])> = many
        .iter()
        .map(|(n, c)| (n.as_str(), c.as_slice()))
        .collect();
    let limits = Limits {
        max_entries: 10,
        ..Limits::default()
    };
    let e = extract(&zip(&refs), DOCX, "many.docx", limits).expect_err("entries");
    assert!(e.to_string().contains("10 entries (it holds 20)"), "{e}");
    let e = extract(b"PK\x03\x04 not really", DOCX, "x.docx", Limits::default()).expect_err("junk");
    assert!(matches!(e, ExtractError::Damaged(_)), "{e:?}");
}

#[test]
fn a_workbook_gives_each_sheet_by_rows_with_its_header() {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet().set_name("Prices").expect("name");
    for (c, h) in ["Item", "Price"].iter().enumerate() {
        sheet.write_string(0, c as u16, *h).expect("header");
    }
    for r in 1..=45u32 {
        sheet
            .write_string(r, 0, format!("Widget {r}"))
            .expect("item");
        sheet.write_number(r, 1, f64::from(r) * 2.5).expect("price");
    }
    let bytes = book.save_to_buffer().expect("xlsx");
    let passages = get(&bytes, XLSX, "prices.xlsx");
    let locators: Vec<&str> = passages.iter().map(|p| p.locator.as_str()).collect();
    assert_eq!(
        locators,
        ["Prices, rows 2–41", "Prices, rows 42–46"],
        "{passages:?}"
    );
    assert!(
        passages[0].text.starts_with("Item: Widget 1; Price: 2.5"),
        "{passages:?}"
    );
    let limits = Limits {
        max_cells: 50,
        ..Limits::default()
    };
    let e = extract(&bytes, XLSX, "prices.xlsx", limits).expect_err("cells");
    assert_eq!(e, ExtractError::TooLarge("50 cells".into()));
}

#[test]
fn csv_html_markdown_and_text_keep_their_parts() {
    let csv = "name,city\nInitech,Austin\n,\nHooli,\"Palo Alto\"\n";
    let passages = get(csv.as_bytes(), "text/plain", "customers.csv");
    assert_eq!(passages.len(), 1);
    assert_eq!(passages[0].locator, "rows 2–4");
    assert_eq!(
        passages[0].text,
        "name: Initech; city: Austin\nname: Hooli; city: Palo Alto"
    );

    let html = "<html><head><title>x</title><style>p{}</style></head><body><p>Intro &amp; more</p>\
        <h2>Terms</h2><p>Pay within <b>30</b>&nbsp;days</p><script>alert(1)</script><!-- hidden --></body></html>";
    let passages = get(html.as_bytes(), "text/plain", "terms.html");
    let seen: Vec<(&str, &str)> = passages
        .iter()
        .map(|p| (p.locator.as_str(), p.text.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            ("", "Intro & more"),
            ("Terms", "Terms\n\nPay within 30 days")
        ]
    );

    let md =
        "Preface\n\n# Setup\nInstall it.\n\n```\n# not a heading\n```\nSecond\n======\nMore text\n";
    let passages = get(md.as_bytes(), "text/plain", "README.md");
    let locators: Vec<&str> = passages.iter().map(|p| p.locator.as_str()).collect();
    assert_eq!(locators, ["", "Setup", "Second"], "{passages:?}");
    assert!(
        passages[1].text.contains("# not a heading"),
        "code stays text: {passages:?}"
    );

    let passages = get(
        b"line one\r\n\r\n\r\nline\t two\x07",
        "text/plain",
        "notes.txt",
    );
    assert_eq!(passages[0].text, "line one\n\nline two");
    let e = extract(b"\x89PNG", "image/png", "scan.png", Limits::default()).expect_err("image");
    assert_eq!(
        e.to_string(),
        "Images files hold no text that can be searched"
    );
}

#[test]
fn the_text_kept_is_bounded() {
    let text = "word ".repeat(10_000);
    let limits = Limits {
        max_chars: 1_000,
        ..Limits::default()
    };
    let passages = extract(text.as_bytes(), "text/plain", "long.txt", limits).expect("extract");
    assert_eq!(passages[0].text.chars().count(), 1_000);
}

#[test]
fn chunks_cut_at_boundaries_and_overlap() {
    let paragraphs: Vec<String> = (0..30)
        .map(|i| format!("Paragraph {i} says {}", "something useful ".repeat(8)))
        .collect();
    let passage = Passage {
        locator: "page 4".into(),
        page: Some(4),
        text: paragraphs.join("\n\n"),
    };
    let chunks = chunk(std::slice::from_ref(&passage));
    assert!(chunks.len() >= 3, "{}", chunks.len());
    for (i, c) in chunks.iter().enumerate() {
        assert_eq!((c.locator.as_str(), c.page), ("page 4", Some(4)));
        assert!(
            c.text.chars().count() <= TARGET + OVERLAP + 2,
            "chunk {i}: {}",
            c.text.len()
        );
        if i > 0 {
            // It starts with words the previous chunk ended with.
            let first_words: String = c
                .text
                .split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ");
            assert!(
                chunks[i - 1].text.contains(&first_words),
                "chunk {i} overlaps: {first_words}"
            );
        }
    }
    // Every paragraph is whole in some chunk.
    for p in &paragraphs {
        assert!(chunks.iter().any(|c| c.text.contains(p.as_str())), "{p}");
    }
    // A word longer than a chunk is cut, not lost.
    let long = Passage {
        locator: String::new(),
        page: None,
        text: "x".repeat(3 * TARGET),
    };
    let chunks = chunk(&[long]);
    assert_eq!(
        chunks
            .iter()
            .map(|c| c.text.matches('x').count())
            .sum::<usize>(),
        3 * TARGET
    );
}

#[test]
fn two_cells_far_apart_do_not_make_a_workbook_of_billions() {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    sheet.write_string(0, 0, "top left").expect("A1");
    sheet
        .write_string(1_048_575, 16_383, "bottom right")
        .expect("XFD1048576");
    let bytes = book.save_to_buffer().expect("xlsx");
    assert!(bytes.len() < 20_000, "it is tiny: {}", bytes.len());
    let e = extract(&bytes, XLSX, "sparse.xlsx", Limits::default()).expect_err("too wide");
    assert_eq!(e, ExtractError::TooLarge("2000000 cells".into()));
}

#[test]
fn an_archive_whose_headers_lie_is_cut_at_the_limit_as_it_unpacks() {
    // A real entry of 3 MiB of zeros, whose local and central headers then claim 10 bytes.
    let mut bytes = zip(&[("word/document.xml", &vec![0u8; 3 * 1024 * 1024])]);
    let size = (3u32 * 1024 * 1024).to_le_bytes();
    let mut patched = 0;
    for at in 0..bytes.len().saturating_sub(4) {
        if bytes[at..at + 4] == size {
            bytes[at..at + 4].copy_from_slice(&10u32.to_le_bytes());
            patched += 1;
        }
    }
    assert!(patched >= 1, "the sizes were found");
    let limits = Limits {
        max_unpacked: 1024 * 1024,
        ..Limits::default()
    };
    let e = extract(&bytes, DOCX, "liar.docx", limits).expect_err("a liar");
    assert!(
        matches!(&e, ExtractError::TooLarge(_) | ExtractError::Damaged(_)),
        "never unpacked past the limit: {e:?}"
    );
}

/// Found by `scripts/fuzz.sh extract` (2026-12-04) in its first seconds: a font whose
/// name is not a name makes pdf-extract panic ("deref"); the panic is caught and the
/// document reported as damaged, in words.
#[test]
fn a_pdf_that_makes_the_parser_panic_is_damaged_not_a_crash() {
    let bytes = include_bytes!("../testdata/fuzz-font-name-not-a-name.pdf");
    let e = extract(bytes, "application/pdf", "font.pdf", Limits::default()).expect_err("damaged");
    assert!(matches!(e, ExtractError::Damaged(_)), "{e:?}");
    assert!(e.to_string().starts_with("the file is damaged"), "{e}");
}
