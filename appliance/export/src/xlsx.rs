//! A [`Report`] as an XLSX workbook.

use rust_xlsxwriter::{
    ColNum, DocProperties, ExcelDateTime, Format, FormatAlign, FormatBorder, RowNum, Workbook,
    XlsxError,
};

use crate::ExportError;
use crate::format::{cell_text, format_money};
use crate::model::{Align, Cell, ColumnKind, Report, Row, RowAt};

/// The largest amount, in minor units either side of zero, that [`to_xlsx`] writes: 15
/// significant digits, the most an IEEE double (and Excel's display) holds exactly for
/// every exponent.
pub const XLSX_MAX_MINOR: i64 = 999_999_999_999_999;

/// Excel's limit on the characters in one cell.
const MAX_CELL_CHARS: usize = 32_767;
/// Excel's limit on rows in a sheet.
const MAX_ROWS: usize = 1_048_576;
/// Rows above the header: title, subtitle, a blank row.
const HEADER_ROW: RowNum = 3;
/// Widest a column is fitted to, in characters.
const MAX_WIDTH: f64 = 80.0;

/// Writes a report as an XLSX workbook with one sheet, named from the title by
/// [`sheet_name`]. Row 1 holds the title, row 2 the subtitle, row 4 the header (bold,
/// frozen so it stays in view) and the rows follow; the footer row is bold with a rule
/// above. Text cells carry the row's indent as a cell indent, bold rows are bold, and
/// column widths fit their content.
///
/// Money is written as the number `minor / 10^exponent` with the number format
/// `#,##0.00` (as many decimals as the exponent); integers as `#,##0`; dates as real
/// dates formatted `yyyy-mm-dd`. `generated` becomes the workbook's creation time.
///
/// # Errors
/// [`ExportError`] when the report is malformed (see [`to_pdf`](crate::to_pdf)), holds
/// an amount beyond ±[`XLSX_MAX_MINOR`] minor units (a spreadsheet number would round
/// it), a date before 1900 or after 9999, a text longer than 32,767 characters, or more
/// rows than a sheet holds.
pub fn to_xlsx(report: &Report, generated: time::OffsetDateTime) -> Result<Vec<u8>, ExportError> {
    report.validate()?;
    check_spreadsheet_limits(report)?;

    let mut workbook = Workbook::new();
    let created = ExcelDateTime::from_timestamp(generated.unix_timestamp()).map_err(xlsx_err)?;
    let properties = DocProperties::new()
        .set_title(report.title.trim())
        .set_company(report.subtitle.company.trim())
        .set_creation_datetime(&created);
    workbook.set_properties(&properties);

    let sheet = workbook.add_worksheet();
    sheet
        .set_name(sheet_name(&report.title))
        .map_err(xlsx_err)?;
    sheet
        .write_string_with_format(
            0,
            0,
            report.title.trim(),
            &Format::new().set_bold().set_font_size(14),
        )
        .map_err(xlsx_err)?;
    let subtitle = report.subtitle.line();
    if !subtitle.is_empty() {
        sheet.write_string(1, 0, subtitle).map_err(xlsx_err)?;
    }

    let mut widths: Vec<f64> = vec![0.0; report.columns.len()];
    for (j, col) in report.columns.iter().enumerate() {
        let mut format = Format::new()
            .set_bold()
            .set_border_bottom(FormatBorder::Thin);
        if col.align == Align::Right {
            format = format.set_align(FormatAlign::Right);
        }
        sheet
            .write_string_with_format(HEADER_ROW, col_num(j)?, &col.header, &format)
            .map_err(xlsx_err)?;
        widths[j] = display_width(&col.header, 0, true);
    }
    sheet
        .set_freeze_panes(HEADER_ROW + 1, 0)
        .map_err(xlsx_err)?;

    for ((at, row), r) in report.all_rows().zip(HEADER_ROW + 1..) {
        let footer = at == RowAt::Footer;
        for (j, (cell, col)) in row.cells.iter().zip(&report.columns).enumerate() {
            let format = cell_format(col.kind, col.align, row, footer);
            let c = col_num(j)?;
            match cell {
                Cell::Text(s) => sheet.write_string_with_format(r, c, s, &format),
                Cell::Money(m) => {
                    let exponent = match col.kind {
                        ColumnKind::Money { exponent } => exponent,
                        _ => 0,
                    };
                    sheet.write_number_with_format(r, c, money_f64(*m, exponent), &format)
                }
                Cell::Integer(n) => sheet.write_number_with_format(r, c, *n as f64, &format),
                Cell::Date(d) => {
                    let date = ExcelDateTime::from_ymd(
                        u16::try_from(d.year()).map_err(|_| xlsx_err_text("date year"))?,
                        u8::from(d.month()),
                        d.day(),
                    )
                    .map_err(xlsx_err)?;
                    sheet.write_datetime_with_format(r, c, &date, &format)
                }
                Cell::Empty if footer => sheet.write_blank(r, c, &format),
                Cell::Empty => Ok(&mut *sheet),
            }
            .map_err(xlsx_err)?;
            let indent = if matches!(cell, Cell::Text(_)) {
                row.indent
            } else {
                0
            };
            let w = display_width(&cell_text(cell, col.kind), indent, row.bold || footer);
            widths[j] = widths[j].max(w);
        }
    }
    for (j, w) in widths.iter().enumerate() {
        sheet
            .set_column_width(col_num(j)?, (w + 2.0).clamp(8.0, MAX_WIDTH))
            .map_err(xlsx_err)?;
    }
    workbook.save_to_buffer().map_err(xlsx_err)
}

/// The sheet name Excel accepts for a title: `[ ] : * ? / \` and control characters
/// become `-` (a space for control characters), apostrophes and spaces are trimmed from
/// both ends, the name is cut to Excel's 31 characters (UTF-16 units), a blank name
/// becomes `Report` and the reserved `History` becomes `History-`.
pub fn sheet_name(title: &str) -> String {
    let cleaned: String = title
        .chars()
        .map(|c| match c {
            '[' | ']' | ':' | '*' | '?' | '/' | '\\' => '-',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect();
    let trim = |s: &str| {
        s.trim_matches(|c: char| c == '\'' || c.is_whitespace())
            .to_string()
    };
    let mut name = String::new();
    let mut units = 0;
    for c in trim(&cleaned).chars() {
        units += c.len_utf16();
        if units > 31 {
            break;
        }
        name.push(c);
    }
    let name = trim(&name);
    if name.is_empty() {
        "Report".to_string()
    } else if name.eq_ignore_ascii_case("history") {
        format!("{name}-")
    } else {
        name
    }
}

/// The number a spreadsheet stores for an amount: the double nearest to
/// `minor / 10^exponent`. For amounts within ±[`XLSX_MAX_MINOR`] it reads back as the
/// same decimal.
fn money_f64(minor: i64, exponent: u8) -> f64 {
    // minor is exact as f64 (|minor| < 2^53) and so is 10^exponent (exponent <= 9), so
    // the division is correctly rounded.
    minor as f64 / 10f64.powi(i32::from(exponent))
}

fn number_format(kind: ColumnKind) -> Option<String> {
    match kind {
        ColumnKind::Money { exponent: 0 } | ColumnKind::Integer => Some("#,##0".to_string()),
        ColumnKind::Money { exponent } => Some(format!("#,##0.{}", "0".repeat(exponent.into()))),
        ColumnKind::Date => Some("yyyy-mm-dd".to_string()),
        ColumnKind::Text => None,
    }
}

fn cell_format(kind: ColumnKind, align: Align, row: &Row, footer: bool) -> Format {
    let mut f = Format::new();
    if let Some(n) = number_format(kind) {
        f = f.set_num_format(n);
    }
    if row.bold || footer {
        f = f.set_bold();
    }
    if footer {
        f = f.set_border_top(FormatBorder::Thin);
    }
    match align {
        Align::Right => f = f.set_align(FormatAlign::Right),
        Align::Left => {
            f = f.set_align(FormatAlign::Left);
            if kind == ColumnKind::Text && row.indent > 0 {
                f = f.set_indent(row.indent);
            }
        }
    }
    f
}

/// Roughly how many characters wide a text shows (bold is wider; an indent level is
/// about three characters).
fn display_width(text: &str, indent: u8, bold: bool) -> f64 {
    let longest = text.lines().map(|l| l.chars().count()).max().unwrap_or(0);
    let w = longest as f64 * if bold { 1.1 } else { 1.0 };
    w + 3.0 * f64::from(indent)
}

fn check_spreadsheet_limits(report: &Report) -> Result<(), ExportError> {
    let rows = report.rows.len() + usize::from(report.footer.is_some());
    if rows + HEADER_ROW as usize + 1 > MAX_ROWS {
        return Err(ExportError::NotInSpreadsheet(format!(
            "the report has {rows} rows but a spreadsheet holds at most {} below its header; export it as PDF or split it",
            MAX_ROWS - HEADER_ROW as usize - 1
        )));
    }
    if report.columns.len() > usize::from(ColNum::MAX) {
        return Err(ExportError::NotInSpreadsheet(format!(
            "the report has {} columns, more than a spreadsheet holds",
            report.columns.len()
        )));
    }
    let long_text = |what: String, s: &str| -> Result<(), ExportError> {
        let n = s.chars().count();
        if n > MAX_CELL_CHARS {
            Err(ExportError::NotInSpreadsheet(format!(
                "{what} holds {n} characters but a spreadsheet cell holds at most {MAX_CELL_CHARS}"
            )))
        } else {
            Ok(())
        }
    };
    long_text("the title".to_string(), &report.title)?;
    for (j, col) in report.columns.iter().enumerate() {
        long_text(format!("the header of column {}", j + 1), &col.header)?;
    }
    for (at, row) in report.all_rows() {
        for (j, (cell, col)) in row.cells.iter().zip(&report.columns).enumerate() {
            match cell {
                Cell::Text(s) => long_text(format!("{}, column {}", at.label(), j + 1), s)?,
                Cell::Money(m) if m.unsigned_abs() > XLSX_MAX_MINOR.unsigned_abs() => {
                    let exponent = match col.kind {
                        ColumnKind::Money { exponent } => exponent,
                        _ => 0,
                    };
                    return Err(ExportError::InexactInSpreadsheet {
                        row: at.label(),
                        column: j + 1,
                        amount: format_money(*m, exponent),
                    });
                }
                Cell::Integer(n) if n.unsigned_abs() > XLSX_MAX_MINOR.unsigned_abs() => {
                    return Err(ExportError::InexactInSpreadsheet {
                        row: at.label(),
                        column: j + 1,
                        amount: format_money(*n, 0),
                    });
                }
                Cell::Date(d) if !(1900..=9999).contains(&d.year()) => {
                    return Err(ExportError::NotInSpreadsheet(format!(
                        "{}, column {}: the date {} is outside the years 1900 to 9999 that a spreadsheet date covers",
                        at.label(),
                        j + 1,
                        crate::format::format_date(*d)
                    )));
                }
                _ => {}
            }
        }
    }
    Ok(())
}

fn col_num(j: usize) -> Result<ColNum, ExportError> {
    ColNum::try_from(j).map_err(|_| xlsx_err_text("column number"))
}

fn xlsx_err(e: XlsxError) -> ExportError {
    ExportError::Xlsx(e.to_string())
}

fn xlsx_err_text(what: &str) -> ExportError {
    ExportError::Xlsx(format!("{what} out of range"))
}
