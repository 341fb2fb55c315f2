//! Text from documents, for search: PDF (per page), DOCX (per heading, tables by row),
//! XLSX (per sheet, by rows), CSV (by rows, with the header), HTML and Markdown (per
//! heading) and plain text — each passage with where it came from (`page 3`, `Prices,
//! rows 1–40`, a heading), then cut into overlapping chunks by [`chunk`].
//!
//! Every input is hostile: archives are opened only when their entry count and the
//! sizes they declare are within [`Limits`], and the bytes actually inflated are
//! counted as they come (a zip bomb is refused, not unpacked); the text kept is
//! bounded; a parser that panics is caught and its document reported as damaged. An
//! error says in words what is wrong with the file, never which library failed.

mod chunk;
mod markup;
mod office;

use std::panic::{AssertUnwindSafe, catch_unwind};

pub use chunk::{Chunk, OVERLAP, TARGET, chunk};

/// Where a passage came from and its text.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Passage {
    /// `page 3`, `Prices, rows 1–40`, a heading, or empty for a file without parts.
    pub locator: String,
    /// The page number, for documents that have pages (a link opens the PDF there).
    pub page: Option<u32>,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtractError {
    #[error("{0} files hold no text that can be searched")]
    Unsupported(String),
    #[error("the PDF is encrypted; its text cannot be read without its password")]
    Encrypted,
    #[error("the file is damaged or not what it claims: {0}")]
    Damaged(String),
    #[error("the file unpacks to more than the {0} allowed; it was not unpacked")]
    TooLarge(String),
}

/// Bounds on what one document may cost.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Characters of text kept (the rest is not indexed).
    pub max_chars: usize,
    /// Bytes an archive (DOCX, XLSX) may unpack to, in all.
    pub max_unpacked: u64,
    /// Entries an archive may hold.
    pub max_entries: usize,
    /// Spreadsheet cells read, in all.
    pub max_cells: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_chars: 2_000_000,
            max_unpacked: 200 * 1024 * 1024,
            max_entries: 10_000,
            max_cells: 2_000_000,
        }
    }
}

/// Rows of a table (CSV, a sheet) per passage.
const ROWS_PER_PASSAGE: usize = 40;

/// The kinds of document text is taken from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Pdf,
    Docx,
    Xlsx,
    Csv,
    Html,
    Markdown,
    Text,
}

fn kind(mime: &str, name: &str) -> Option<Kind> {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    let zip = mime == "application/zip";
    match mime {
        "application/pdf" => Some(Kind::Pdf),
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => {
            Some(Kind::Docx)
        }
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => Some(Kind::Xlsx),
        _ if zip && ext == "docx" => Some(Kind::Docx),
        _ if zip && ext == "xlsx" => Some(Kind::Xlsx),
        "text/plain" | "text/html" | "text/xml" => Some(match ext.as_str() {
            "csv" => Kind::Csv,
            "html" | "htm" => Kind::Html,
            "md" | "markdown" => Kind::Markdown,
            _ => Kind::Text,
        }),
        _ => None,
    }
}

/// The passages of a document whose content (`bytes`) was detected as `mime` and
/// which is called `name`.
pub fn extract(
    bytes: &[u8],
    mime: &str,
    name: &str,
    limits: Limits,
) -> Result<Vec<Passage>, ExtractError> {
    let kind = kind(mime, name).ok_or_else(|| ExtractError::Unsupported(describe(mime)))?;
    let run = AssertUnwindSafe(|| match kind {
        Kind::Pdf => pdf(bytes),
        Kind::Docx => office::docx(bytes, limits),
        Kind::Xlsx => office::xlsx(bytes, limits),
        Kind::Csv => csv_rows(bytes, limits),
        Kind::Html => Ok(markup::html(&text_of(bytes))),
        Kind::Markdown => Ok(markup::markdown(&text_of(bytes))),
        Kind::Text => Ok(vec![Passage {
            locator: String::new(),
            page: None,
            text: text_of(bytes),
        }]),
    });
    let passages = catch_unwind(run)
        .map_err(|_| ExtractError::Damaged("its structure could not be read".into()))??;
    Ok(bounded(passages, limits.max_chars))
}

fn describe(mime: &str) -> String {
    match mime.split('/').next() {
        Some("image") => "Images".into(),
        _ => mime.to_owned(),
    }
}

/// Text as UTF-8, with what is not replaced.
fn text_of(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Keeps passages with text, whitespace tidied, until `max_chars` in all.
fn bounded(passages: Vec<Passage>, max_chars: usize) -> Vec<Passage> {
    let mut left = max_chars;
    let mut out = Vec::new();
    for mut p in passages {
        p.text = tidy(&p.text);
        if p.text.is_empty() {
            continue;
        }
        let n = p.text.chars().count();
        if n > left {
            p.text = p.text.chars().take(left).collect();
            out.push(p);
            break;
        }
        left -= n;
        out.push(p);
    }
    out
}

/// Spaces collapsed within lines, runs of blank lines to one, no control characters.
fn tidy(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank = 0;
    for line in text.lines() {
        let line: String = line
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect::<String>()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        if line.is_empty() {
            blank += 1;
            continue;
        }
        if !out.is_empty() {
            out.push_str(if blank > 0 { "\n\n" } else { "\n" });
        }
        blank = 0;
        out.push_str(&line);
    }
    out
}

fn pdf(bytes: &[u8]) -> Result<Vec<Passage>, ExtractError> {
    let pages = pdf_extract::extract_text_from_mem_by_pages(bytes).map_err(|e| {
        if is_encrypted(bytes) {
            ExtractError::Encrypted
        } else {
            ExtractError::Damaged(format!("the PDF could not be read ({e})"))
        }
    })?;
    Ok(pages
        .into_iter()
        .enumerate()
        .map(|(i, text)| {
            let page = u32::try_from(i + 1).unwrap_or(u32::MAX);
            Passage {
                locator: format!("page {page}"),
                page: Some(page),
                text,
            }
        })
        .collect())
}

/// Whether a PDF's trailer names an encryption dictionary.
fn is_encrypted(bytes: &[u8]) -> bool {
    bytes.windows(8).any(|w| w == b"/Encrypt")
}

/// A table's rows as passages of [`ROWS_PER_PASSAGE`], each row `header: value; …`
/// (rows numbered from `first_row`; empty rows are skipped but keep their number).
pub(crate) fn table_passages(
    title: &str,
    header: &[String],
    rows: impl Iterator<Item = Vec<String>>,
    first_row: usize,
) -> Vec<Passage> {
    let passage = |start: usize, end: usize, lines: &mut Vec<String>| {
        let place = if end > start {
            format!("rows {start}–{end}")
        } else {
            format!("row {start}")
        };
        Passage {
            locator: if title.is_empty() {
                place
            } else {
                format!("{title}, {place}")
            },
            page: None,
            text: std::mem::take(lines).join("\n"),
        }
    };
    let mut out = Vec::new();
    let mut lines = Vec::new();
    let (mut start, mut last) = (first_row, first_row);
    for (i, row) in rows.enumerate() {
        let n = first_row + i;
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .filter(|(_, v)| !v.trim().is_empty())
            .map(
                |(i, v)| match header.get(i).filter(|h| !h.trim().is_empty()) {
                    Some(h) => format!("{}: {}", h.trim(), v.trim()),
                    None => v.trim().to_owned(),
                },
            )
            .collect();
        if cells.is_empty() {
            continue;
        }
        if lines.is_empty() {
            start = n;
        }
        lines.push(cells.join("; "));
        last = n;
        if lines.len() == ROWS_PER_PASSAGE {
            out.push(passage(start, last, &mut lines));
        }
    }
    if !lines.is_empty() {
        out.push(passage(start, last, &mut lines));
    }
    out
}

fn csv_rows(bytes: &[u8], limits: Limits) -> Result<Vec<Passage>, ExtractError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut records = reader.records();
    let header: Vec<String> = match records.next() {
        Some(Ok(r)) => r.iter().map(str::to_owned).collect(),
        Some(Err(e)) => {
            return Err(ExtractError::Damaged(format!(
                "the CSV could not be read ({e})"
            )));
        }
        None => return Ok(Vec::new()),
    };
    let mut cells = 0;
    let rows = records
        .map_while(Result::ok)
        .map(|r| r.iter().map(str::to_owned).collect::<Vec<_>>())
        .take_while(|r| {
            cells += r.len();
            cells <= limits.max_cells
        });
    // Row 1 is the header; the first data row is row 2, as a spreadsheet numbers it.
    Ok(table_passages("", &header, rows, 2))
}

#[cfg(test)]
mod tests;
