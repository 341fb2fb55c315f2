//! Documents for people: tabular reports as XLSX and PDF, and invoices as PDF.
//!
//! The crate is pure: it turns plain values into bytes and knows nothing of the kernel,
//! the store or the web layer. Time is a parameter (the generation stamp is passed in);
//! nothing here reads the clock.
//!
//! * [`Report`] is a titled table: typed [`Column`]s and [`Row`]s of [`Cell`]s, with an
//!   optional footer row. [`to_xlsx`] writes it as a one-sheet workbook, [`to_pdf`] as an
//!   A4 document with the header row repeated on every page.
//! * [`Invoice`] is an invoice or credit note; [`invoice_pdf`] lays it out on A4.
//!
//! # Money is exact
//!
//! Amounts are `i64` minor units; the column (or the invoice) names the exponent: 2 for
//! USD and EUR, 0 for JPY, 3 for KWD. PDF text is formatted from the integer, never
//! through a float, so any `i64` prints exactly. An XLSX number is necessarily an IEEE
//! double: [`to_xlsx`] writes `minor / 10^exponent` with a number format showing
//! `exponent` decimals and a thousands separator. That double reads back as the exact
//! decimal, and Excel shows it exactly, when the amount has at most 15 significant
//! digits, so [`to_xlsx`] accepts money up to [`XLSX_MAX_MINOR`] (±999,999,999,999,999
//! minor units, below 2^53) and refuses larger amounts with
//! [`ExportError::InexactInSpreadsheet`] instead of rounding them.
//!
//! # Text in PDFs
//!
//! PDFs use the standard Helvetica and Helvetica-Bold fonts (not embedded, so files stay
//! small) in WinAnsiEncoding (Windows-1252). Latin-1 letters (é, ü, ß, ñ, ...), €, the
//! dashes – and —, curly quotes “ ” ‘ ’, •, … and ™ print as themselves; a few others are
//! approximated (− as -, non-breaking and thin spaces as a space, ‐ and ‑ as -); every
//! other character (Greek, Cyrillic, CJK, emoji, control characters) prints as `?`.
//! Tabs and line breaks in table cells are wrapping points. Text is measured with
//! Adobe's Helvetica metrics, so right-aligned amounts line up exactly.
//!
//! # Example
//!
//! ```
//! use nexus_export::{Align, Cell, Column, ColumnKind, Report, Row, Subtitle, to_pdf, to_xlsx};
//! use time::macros::datetime;
//!
//! let report = Report {
//!     title: "Trial balance".into(),
//!     subtitle: Subtitle {
//!         company: "Müller & Söhne GmbH".into(),
//!         period: "2026-01-01 to 2026-03-31".into(),
//!         currency: "EUR".into(),
//!     },
//!     columns: vec![
//!         Column { header: "Account".into(), align: Align::Left, kind: ColumnKind::Text },
//!         Column {
//!             header: "Balance".into(),
//!             align: Align::Right,
//!             kind: ColumnKind::Money { exponent: 2 },
//!         },
//!     ],
//!     rows: vec![
//!         Row::new(vec![Cell::Text("Assets".into()), Cell::Money(1_234_567)]).bold(),
//!         Row::new(vec![Cell::Text("Bank".into()), Cell::Money(1_234_567)]).indent(1),
//!     ],
//!     footer: Some(Row::new(vec![Cell::Text("Total".into()), Cell::Money(1_234_567)])),
//! };
//! let generated = datetime!(2026-04-01 09:30 UTC);
//! let pdf = to_pdf(&report, generated)?;
//! assert!(pdf.starts_with(b"%PDF-"));
//! let xlsx = to_xlsx(&report, generated)?;
//! assert!(xlsx.starts_with(b"PK"));
//! # Ok::<(), nexus_export::ExportError>(())
//! ```

mod format;
mod invoice;
mod model;
mod pdf;
mod report_pdf;
mod text;
mod widths;
mod xlsx;

pub use format::{format_integer, format_money};
pub use invoice::{Invoice, InvoiceLine, InvoiceTotals, Party, TaxRow, invoice_pdf};
pub use model::{Align, Cell, Column, ColumnKind, MAX_EXPONENT, Report, Row, Subtitle};
pub use report_pdf::to_pdf;
pub use xlsx::{XLSX_MAX_MINOR, sheet_name, to_xlsx};

/// Why a document could not be made. Every message says what is wrong and, where it
/// helps, what to do about it; row and column numbers count from 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExportError {
    /// The report or invoice lacks a required text.
    #[error("the {what} is empty; {hint}")]
    Missing {
        /// What is missing ("report title", "invoice number", ...).
        what: &'static str,
        /// What to do.
        hint: &'static str,
    },
    /// The report has no columns.
    #[error("the report has no columns; a report needs at least one")]
    NoColumns,
    /// A row does not have one cell per column.
    #[error(
        "{row} has {cells} cells but the report has {columns} columns; give every row one cell per column (Cell::Empty for a blank)"
    )]
    CellCount {
        /// "row 3" or "the footer row".
        row: String,
        /// Cells in that row.
        cells: usize,
        /// Columns of the report.
        columns: usize,
    },
    /// A cell's kind does not match its column's kind.
    #[error(
        "{row}, column {column} (\"{header}\"): a {cell} cell cannot go in a {kind} column; put {cell} values in a {cell} column, or use Cell::Empty"
    )]
    CellKind {
        /// "row 3" or "the footer row".
        row: String,
        /// The column, counting from 1.
        column: usize,
        /// The column's header.
        header: String,
        /// The cell's kind ("money", "text", ...).
        cell: &'static str,
        /// The column's kind.
        kind: &'static str,
    },
    /// A money exponent beyond [`MAX_EXPONENT`].
    #[error("{what}: a money exponent of {exponent} is not supported (0 to {max}; 2 for USD or EUR, 0 for JPY, 3 for KWD)", max = MAX_EXPONENT)]
    Exponent {
        /// Which column or document.
        what: String,
        /// The exponent given.
        exponent: u8,
    },
    /// An amount too large for a spreadsheet number to hold exactly.
    #[error(
        "{row}, column {column}: the amount {amount} has more than 15 significant digits, which a spreadsheet number cannot hold exactly (at most ±999,999,999,999,999 minor units); export this report as PDF instead"
    )]
    InexactInSpreadsheet {
        /// "row 3" or "the footer row".
        row: String,
        /// The column, counting from 1.
        column: usize,
        /// The amount, formatted.
        amount: String,
    },
    /// A value a spreadsheet cannot hold at all (a date before 1900, a text over 32,767
    /// characters, more than a million rows).
    #[error("{0}")]
    NotInSpreadsheet(String),
    /// The report's columns do not fit across a page even in the smallest type.
    #[error(
        "the report's {columns} columns need {needed_mm} mm but a landscape A4 page has {available_mm} mm even at the smallest type size; split the report or drop columns"
    )]
    TooWide {
        /// Number of columns.
        columns: usize,
        /// Width the columns need at the smallest type size, in millimetres.
        needed_mm: u32,
        /// Width available, in millimetres.
        available_mm: u32,
    },
    /// The invoice's amounts do not add up.
    #[error("the invoice's amounts do not add up: {0}")]
    InvoiceTotals(String),
    /// An invoice's due date lies before its issue date.
    #[error("the due date {due} is before the issue date {issued}")]
    DueBeforeIssue {
        /// The issue date.
        issued: time::Date,
        /// The due date.
        due: time::Date,
    },
    /// The spreadsheet writer failed (a bug here, not bad input, unless its message
    /// says otherwise).
    #[error("could not write the spreadsheet: {0}")]
    Xlsx(String),
    /// Compressing a PDF page failed (out of memory).
    #[error("could not compress a PDF page: {0}")]
    Compress(String),
}
