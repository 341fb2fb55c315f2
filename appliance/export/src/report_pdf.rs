//! A [`Report`] as a PDF.

use crate::ExportError;
use crate::format::cell_text;
use crate::model::{ColumnKind, Report};
use crate::pdf::{A4, Doc, Flow, INDENT_STEP, Meta, PAD_X, Table, TableCol, TableRow, mm};
use crate::text::{Font, encode, encode_paragraphs, units, wrap};

/// Page margin, left, right and top.
const MARGIN: f32 = 36.0;
/// The footer's baseline.
const FOOTER_Y: f32 = 22.0;
/// The lowest the table may reach.
const BODY_BOTTOM: f32 = 42.0;
/// The type size the table starts from, and the smallest it may shrink to.
const SIZE: f32 = 9.0;
const MIN_SIZE: f32 = 5.0;
/// A text column is never squeezed below this (it wraps instead).
const MIN_TEXT_WIDTH: f32 = 60.0;
/// More columns than this turn the page to landscape.
const PORTRAIT_MAX_COLUMNS: usize = 6;

/// Renders a report as an A4 PDF: portrait, or landscape when it has more than six
/// columns. Every page carries the title, the subtitle and the table's header row; the
/// footer shows `generated` on the left and "Page 2 of 5" on the right. Amounts are
/// right-aligned with thousands separators and a leading minus sign; long text wraps
/// inside its column. Type shrinks from 9 pt (to 5 pt at the least) when the columns
/// would not fit otherwise. See the crate docs for which characters print.
///
/// # Errors
/// [`ExportError`] when the report is malformed (no title, a row with the wrong number
/// of cells, a cell that does not match its column) or too wide for a landscape page.
pub fn to_pdf(report: &Report, generated: time::OffsetDateTime) -> Result<Vec<u8>, ExportError> {
    report.validate()?;
    let size = if report.columns.len() > PORTRAIT_MAX_COLUMNS {
        A4.landscape()
    } else {
        A4
    };
    let avail = size.w - 2.0 * MARGIN;
    let (font_size, widths) = fit_columns(report, avail)?;
    let table = Table {
        x: MARGIN,
        cols: report
            .columns
            .iter()
            .zip(&widths)
            .map(|(c, &width)| TableCol {
                width,
                align: c.align,
                indents: c.kind == ColumnKind::Text,
            })
            .collect(),
        header: report
            .columns
            .iter()
            .map(|c| encode_paragraphs(&c.header))
            .collect(),
        size: font_size,
    };
    let rows: Vec<TableRow> = report
        .all_rows()
        .map(|(at, row)| TableRow {
            cells: row
                .cells
                .iter()
                .zip(&report.columns)
                .map(|(cell, col)| encode_paragraphs(&cell_text(cell, col.kind)))
                .collect(),
            font: Font::bold_if(row.bold || at == crate::model::RowAt::Footer),
            indent: row.indent,
            rule_above: at == crate::model::RowAt::Footer,
        })
        .collect();

    let title = encode_paragraphs(report.title.trim());
    let subtitle = encode(&report.subtitle.line());
    let start = move |doc: &mut Doc| -> f32 {
        let page = doc.size();
        let mut y = page.h - MARGIN - 14.0;
        for line in wrap(&title, Font::Bold, 14.0, avail) {
            doc.text(MARGIN, y, Font::Bold, 14.0, &line, 0.0);
            y -= 17.0;
        }
        if !subtitle.is_empty() {
            y -= 1.0;
            for line in wrap(&subtitle, Font::Regular, 9.0, avail) {
                doc.text(MARGIN, y, Font::Regular, 9.0, &line, 0.3);
                y -= 11.0;
            }
        }
        y - 8.0
    };
    let mut flow = Flow::new(Doc::new(size), BODY_BOTTOM, Box::new(start));
    table.draw(&mut flow, &rows);

    let mut doc = flow.doc;
    let pages = doc.page_count();
    let stamp = encode(&format!("Generated {}", stamp(generated)));
    for i in 0..pages {
        doc.select(i);
        doc.rule(MARGIN, size.w - MARGIN, FOOTER_Y + 10.0, 0.4, 0.6);
        doc.text(MARGIN, FOOTER_Y, Font::Regular, 7.5, &stamp, 0.35);
        let page = encode(&format!("Page {} of {pages}", i + 1));
        doc.text_right(size.w - MARGIN, FOOTER_Y, Font::Regular, 7.5, &page, 0.35);
    }
    doc.finish(&Meta {
        title: report.title.trim(),
        author: report.subtitle.company.trim(),
        created: Some(generated),
    })
}

/// "2026-04-01 09:30 UTC", or with the offset ("2026-04-01 11:30 +02:00").
pub(crate) fn stamp(t: time::OffsetDateTime) -> String {
    let date = crate::format::format_date(t.date());
    let offset = t.offset();
    let zone = if offset.is_utc() {
        "UTC".to_string()
    } else {
        let sign = if offset.is_negative() { '-' } else { '+' };
        format!(
            "{sign}{:02}:{:02}",
            offset.whole_hours().unsigned_abs(),
            offset.minutes_past_hour().unsigned_abs()
        )
    };
    format!("{date} {:02}:{:02} {zone}", t.hour(), t.minute())
}

/// Picks the type size and column widths: numbers, dates and headers of number columns
/// keep their natural width; text columns share the rest (wrapping as needed), the
/// widest text column taking any slack so the table spans the page.
fn fit_columns(report: &Report, avail: f32) -> Result<(f32, Vec<f32>), ExportError> {
    // Natural width of each column in thousandths of the type size, plus fixed points
    // (padding and indents), which do not scale with the type.
    let mut natural: Vec<(u32, f32)> = report
        .columns
        .iter()
        .map(|c| {
            let header = encode_paragraphs(&c.header);
            let u = header
                .split(|&b| b == b'\n')
                .map(|l| units(l, Font::Bold))
                .max()
                .unwrap_or(0);
            (u, 2.0 * PAD_X)
        })
        .collect();
    for (at, row) in report.all_rows() {
        let font = Font::bold_if(row.bold || at == crate::model::RowAt::Footer);
        for (j, (cell, col)) in row.cells.iter().zip(&report.columns).enumerate() {
            let text = encode_paragraphs(&cell_text(cell, col.kind));
            let u = text
                .split(|&b| b == b'\n')
                .map(|l| units(l, font))
                .max()
                .unwrap_or(0);
            let indent = if col.kind == ColumnKind::Text {
                f32::from(row.indent) * INDENT_STEP
            } else {
                0.0
            };
            if let Some(n) = natural.get_mut(j) {
                n.0 = n.0.max(u);
                n.1 = n.1.max(2.0 * PAD_X + indent);
            }
        }
    }
    let is_text: Vec<bool> = report
        .columns
        .iter()
        .map(|c| c.kind == ColumnKind::Text)
        .collect();
    let at = |size: f32, (u, fixed): (u32, f32)| u as f32 * size / 1000.0 + fixed;
    let needed = |size: f32| -> f32 {
        natural
            .iter()
            .zip(&is_text)
            .map(|(&n, &text)| {
                let w = at(size, n);
                if text { w.min(MIN_TEXT_WIDTH) } else { w }
            })
            .sum()
    };
    let mut size = SIZE;
    while needed(size) > avail {
        if size <= MIN_SIZE {
            return Err(ExportError::TooWide {
                columns: report.columns.len(),
                needed_mm: mm(needed(MIN_SIZE)),
                available_mm: mm(avail),
            });
        }
        size = (size - 0.25).max(MIN_SIZE);
    }

    let mut widths: Vec<f32> = natural.iter().map(|&n| at(size, n)).collect();
    let fixed: f32 = widths
        .iter()
        .zip(&is_text)
        .filter(|(_, t)| !**t)
        .map(|(w, _)| w)
        .sum();
    let text_cols: Vec<usize> = (0..widths.len()).filter(|&j| is_text[j]).collect();
    if text_cols.is_empty() {
        return Ok((size, widths));
    }
    // Max-min fair shares of the room left for the text columns.
    let mut room = avail - fixed;
    let mut open: Vec<usize> = text_cols.clone();
    open.sort_by(|&a, &b| widths[a].total_cmp(&widths[b]));
    let mut given = vec![0.0_f32; widths.len()];
    let mut left = open.len();
    for &j in &open {
        let share = room / left as f32;
        let w = widths[j].min(share);
        given[j] = w;
        room -= w;
        left -= 1;
    }
    for &j in &text_cols {
        widths[j] = given[j];
    }
    // Slack goes to the widest text column.
    if room > 0.0
        && let Some(&j) = text_cols
            .iter()
            .max_by(|&&a, &&b| widths[a].total_cmp(&widths[b]))
    {
        widths[j] += room;
    }
    Ok((size, widths))
}
