//! A small layout layer over `pdf-writer`: pages of drawing operations, a flow that
//! breaks pages, and a table that wraps its cells and repeats its header on every page.

use std::io::Write as _;

use flate2::Compression;
use flate2::write::ZlibEncoder;
use pdf_writer::types::FontFlags;
use pdf_writer::{Content, Filter, Finish as _, Name, Pdf, Rect, Ref, Str, TextStr};

use crate::ExportError;
use crate::model::Align;
use crate::text::{Font, width, wrap};

/// A page size in points (1/72 inch).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct PageSize {
    /// Width.
    pub w: f32,
    /// Height.
    pub h: f32,
}

/// ISO A4, portrait.
pub(crate) const A4: PageSize = PageSize {
    w: 595.276,
    h: 841.89,
};

impl PageSize {
    /// The same size turned on its side.
    pub(crate) fn landscape(self) -> PageSize {
        PageSize {
            w: self.h,
            h: self.w,
        }
    }
}

/// Millimetres in points, rounded up, for messages.
pub(crate) fn mm(points: f32) -> u32 {
    (points * 25.4 / 72.0).ceil() as u32
}

/// What goes into the document information dictionary.
pub(crate) struct Meta<'a> {
    /// The document's title.
    pub title: &'a str,
    /// Who it is from (the company).
    pub author: &'a str,
    /// When it was made.
    pub created: Option<time::OffsetDateTime>,
}

/// A document being drawn: one content stream per page.
pub(crate) struct Doc {
    size: PageSize,
    pages: Vec<Content>,
    current: usize,
}

impl Doc {
    /// An empty document of pages of `size`.
    pub(crate) fn new(size: PageSize) -> Doc {
        Doc {
            size,
            pages: Vec::new(),
            current: 0,
        }
    }

    /// The page size.
    pub(crate) fn size(&self) -> PageSize {
        self.size
    }

    /// Starts a new page; drawing goes to it.
    pub(crate) fn add_page(&mut self) {
        self.pages.push(Content::new());
        self.current = self.pages.len() - 1;
    }

    /// Number of pages so far.
    pub(crate) fn page_count(&self) -> usize {
        self.pages.len()
    }

    /// Directs drawing to page `index` (from 0), to add footers once the count is known.
    pub(crate) fn select(&mut self, index: usize) {
        self.current = index.min(self.pages.len().saturating_sub(1));
    }

    fn content(&mut self) -> &mut Content {
        if self.pages.is_empty() {
            self.add_page();
        }
        let i = self.current.min(self.pages.len() - 1);
        &mut self.pages[i]
    }

    /// Draws encoded text with its baseline starting at (`x`, `y`); `gray` 0 is black.
    pub(crate) fn text(&mut self, x: f32, y: f32, font: Font, size: f32, text: &[u8], gray: f32) {
        if text.is_empty() {
            return;
        }
        let c = self.content();
        c.begin_text();
        if gray > 0.0 {
            c.set_fill_gray(gray);
        }
        c.set_font(Name(font.resource()), size);
        c.next_line(x, y);
        c.show(Str(text));
        c.end_text();
        if gray > 0.0 {
            c.set_fill_gray(0.0);
        }
    }

    /// Draws encoded text ending exactly at `right`.
    pub(crate) fn text_right(
        &mut self,
        right: f32,
        y: f32,
        font: Font,
        size: f32,
        text: &[u8],
        gray: f32,
    ) {
        let x = right - width(text, font, size);
        self.text(x, y, font, size, text, gray);
    }

    /// Draws a horizontal line.
    pub(crate) fn rule(&mut self, x1: f32, x2: f32, y: f32, line_width: f32, gray: f32) {
        let c = self.content();
        c.save_state();
        c.set_line_width(line_width);
        c.set_stroke_gray(gray);
        c.move_to(x1, y);
        c.line_to(x2, y);
        c.stroke();
        c.restore_state();
    }

    /// Fills a rectangle (`x`, `y` its lower left corner).
    pub(crate) fn fill(&mut self, x: f32, y: f32, w: f32, h: f32, gray: f32) {
        let c = self.content();
        c.save_state();
        c.set_fill_gray(gray);
        c.rect(x, y, w, h);
        c.fill_nonzero();
        c.restore_state();
    }

    /// Writes the PDF: Helvetica and Helvetica-Bold (standard fonts, WinAnsiEncoding,
    /// not embedded), one compressed content stream per page.
    pub(crate) fn finish(self, meta: &Meta) -> Result<Vec<u8>, ExportError> {
        let mut pdf = Pdf::new();
        pdf.set_version(1, 4);
        let catalog = Ref::new(1);
        let tree = Ref::new(2);
        let regular = Ref::new(3);
        let bold = Ref::new(4);
        let info = Ref::new(5);
        let first = 8;
        let ids: Vec<(Ref, Ref)> = (first..)
            .step_by(2)
            .take(self.pages.len())
            .map(|n| (Ref::new(n), Ref::new(n + 1)))
            .collect();

        pdf.catalog(catalog).pages(tree);
        pdf.pages(tree)
            .kids(ids.iter().map(|(page, _)| *page))
            .count(i32::try_from(ids.len()).unwrap_or(i32::MAX));
        write_font(&mut pdf, regular, Ref::new(6), Font::Regular);
        write_font(&mut pdf, bold, Ref::new(7), Font::Bold);
        {
            let mut di = pdf.document_info(info);
            di.title(TextStr(meta.title));
            if !meta.author.is_empty() {
                di.author(TextStr(meta.author));
            }
            di.producer(TextStr("nexus-export"));
            if let Some(t) = meta.created {
                di.creation_date(pdf_date(t));
            }
            di.finish();
        }
        let streams = self
            .pages
            .into_iter()
            .map(|c| deflate(&c.finish()))
            .collect::<Result<Vec<_>, _>>()?;
        let id = file_id(meta.title, &streams);
        pdf.set_file_id((id.clone(), id));

        let media = Rect::new(0.0, 0.0, self.size.w, self.size.h);
        for ((page_id, content_id), packed) in ids.iter().zip(&streams) {
            pdf.stream(*content_id, packed).filter(Filter::FlateDecode);
            let mut page = pdf.page(*page_id);
            page.media_box(media).parent(tree).contents(*content_id);
            page.resources()
                .fonts()
                .pair(Name(Font::Regular.resource()), regular)
                .pair(Name(Font::Bold.resource()), bold);
            page.finish();
        }
        Ok(pdf.finish())
    }
}

/// A standard font, not embedded, with its widths and descriptor spelled out (what
/// PDF 1.5 and later ask of every font): viewers that substitute another font still
/// place each character exactly where it was measured.
fn write_font(pdf: &mut Pdf, id: Ref, descriptor: Ref, font: Font) {
    pdf.type1_font(id)
        .base_font(Name(font.base_name()))
        .encoding_predefined(Name(b"WinAnsiEncoding"))
        .first_char(32)
        .last_char(255)
        .widths(font.widths().iter().map(|&w| f32::from(w)))
        .font_descriptor(descriptor);
    // From Adobe's AFM files.
    let (bbox, x_height, stem_v) = match font {
        Font::Regular => (Rect::new(-166.0, -225.0, 1000.0, 931.0), 523.0, 88.0),
        Font::Bold => (Rect::new(-170.0, -228.0, 1003.0, 962.0), 532.0, 140.0),
    };
    pdf.font_descriptor(descriptor)
        .name(Name(font.base_name()))
        .flags(FontFlags::NON_SYMBOLIC)
        .bbox(bbox)
        .italic_angle(0.0)
        .ascent(718.0)
        .descent(-207.0)
        .cap_height(718.0)
        .x_height(x_height)
        .stem_v(stem_v);
}

/// A file identifier made from the content, so that the same document gives the same
/// bytes. FNV-1a, 2 × 64 bits with different seeds: an identifier, not a checksum.
fn file_id(title: &str, streams: &[Vec<u8>]) -> Vec<u8> {
    let mut a: u64 = 0xcbf2_9ce4_8422_2325;
    let mut b: u64 = 0x8422_2325_cbf2_9ce4;
    for bytes in std::iter::once(title.as_bytes()).chain(streams.iter().map(Vec::as_slice)) {
        for &x in bytes {
            a = (a ^ u64::from(x)).wrapping_mul(0x0000_0100_0000_01b3);
            b = (b ^ u64::from(x)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    let mut out = a.to_be_bytes().to_vec();
    out.extend_from_slice(&b.to_be_bytes());
    out
}

fn deflate(raw: &[u8]) -> Result<Vec<u8>, ExportError> {
    let mut enc = ZlibEncoder::new(Vec::with_capacity(raw.len() / 3), Compression::new(6));
    enc.write_all(raw)
        .map_err(|e| ExportError::Compress(e.to_string()))?;
    enc.finish()
        .map_err(|e| ExportError::Compress(e.to_string()))
}

fn pdf_date(t: time::OffsetDateTime) -> pdf_writer::Date {
    let offset = t.offset();
    let year = u16::try_from(t.year().clamp(0, 9999)).unwrap_or(0);
    let mut d = pdf_writer::Date::new(year)
        .month(u8::from(t.month()))
        .day(t.day())
        .hour(t.hour())
        .minute(t.minute())
        .second(t.second())
        .utc_offset_hour(offset.whole_hours());
    let minutes = offset.minutes_past_hour().unsigned_abs();
    if minutes != 0 {
        d = d.utc_offset_minute(minutes);
    }
    d
}

/// Where drawing stands on the current page, and how to start the next one.
pub(crate) struct Flow<'a> {
    /// The document.
    pub doc: Doc,
    /// The top of the free space on the current page.
    pub y: f32,
    /// The lowest y the body may reach (above the footer).
    pub bottom: f32,
    start: Box<dyn FnMut(&mut Doc) -> f32 + 'a>,
}

impl<'a> Flow<'a> {
    /// A flow whose pages are begun by `start` (which draws the page's head and returns
    /// where the body starts); starts the first page.
    pub(crate) fn new(
        mut doc: Doc,
        bottom: f32,
        mut start: Box<dyn FnMut(&mut Doc) -> f32 + 'a>,
    ) -> Flow<'a> {
        doc.add_page();
        let y = start(&mut doc);
        Flow {
            doc,
            y,
            bottom,
            start,
        }
    }

    /// Space left on this page.
    pub(crate) fn room(&self) -> f32 {
        self.y - self.bottom
    }

    /// Starts a new page.
    pub(crate) fn break_page(&mut self) {
        self.doc.add_page();
        self.y = (self.start)(&mut self.doc);
    }

    /// Starts a new page unless `height` fits on this one.
    pub(crate) fn keep(&mut self, height: f32) {
        if self.room() < height {
            self.break_page();
        }
    }
}

/// A column of a [`Table`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct TableCol {
    /// Width in points, padding included.
    pub width: f32,
    /// Alignment of header and cells.
    pub align: Align,
    /// Whether a row's indent applies to this column.
    pub indents: bool,
}

/// A row of a [`Table`]: encoded cell texts (line breaks kept).
#[derive(Debug, Clone)]
pub(crate) struct TableRow {
    /// One encoded text per column.
    pub cells: Vec<Vec<u8>>,
    /// Bold or regular.
    pub font: Font,
    /// Indent level, for the columns that indent.
    pub indent: u8,
    /// A rule above the row (a totals row).
    pub rule_above: bool,
}

/// A table that wraps cells to their column's width and repeats its header row at the
/// top of every page it reaches.
pub(crate) struct Table {
    /// Left edge.
    pub x: f32,
    /// The columns.
    pub cols: Vec<TableCol>,
    /// Encoded header texts, one per column.
    pub header: Vec<Vec<u8>>,
    /// Type size.
    pub size: f32,
}

/// Horizontal padding inside a cell, each side.
pub(crate) const PAD_X: f32 = 4.0;
/// Points per indent level.
pub(crate) const INDENT_STEP: f32 = 8.0;

impl Table {
    fn leading(&self) -> f32 {
        self.size * 1.22
    }

    fn pad_y(&self) -> f32 {
        self.size * 0.28
    }

    /// Total width.
    pub(crate) fn width(&self) -> f32 {
        self.cols.iter().map(|c| c.width).sum()
    }

    fn text_width(&self, col: &TableCol, indent: u8) -> f32 {
        let indent = if col.indents {
            f32::from(indent) * INDENT_STEP
        } else {
            0.0
        };
        (col.width - 2.0 * PAD_X - indent).max(self.size)
    }

    fn lines(&self, cells: &[Vec<u8>], font: Font, indent: u8) -> Vec<Vec<Vec<u8>>> {
        self.cols
            .iter()
            .enumerate()
            .map(|(j, col)| {
                let text = cells.get(j).map_or(&[][..], |c| c.as_slice());
                wrap(text, font, self.size, self.text_width(col, indent))
            })
            .collect()
    }

    fn height(&self, lines: &[Vec<Vec<u8>>]) -> f32 {
        let n = lines.iter().map(Vec::len).max().unwrap_or(1).max(1);
        n as f32 * self.leading() + 2.0 * self.pad_y()
    }

    /// Draws lines `from..to` of a row whose top is at `top`; returns the new top.
    fn draw_lines(
        &self,
        doc: &mut Doc,
        top: f32,
        lines: &[Vec<Vec<u8>>],
        range: std::ops::Range<usize>,
        font: Font,
        indent: u8,
    ) -> f32 {
        let mut x = self.x;
        let ascent = self.size * 0.82;
        for (col, cell) in self.cols.iter().zip(lines) {
            for (k, line) in cell.iter().enumerate().take(range.end).skip(range.start) {
                let baseline =
                    top - self.pad_y() - ascent - (k - range.start) as f32 * self.leading();
                match col.align {
                    Align::Left => {
                        let shift = if col.indents {
                            f32::from(indent) * INDENT_STEP
                        } else {
                            0.0
                        };
                        doc.text(x + PAD_X + shift, baseline, font, self.size, line, 0.0);
                    }
                    Align::Right => {
                        doc.text_right(x + col.width - PAD_X, baseline, font, self.size, line, 0.0);
                    }
                }
            }
            x += col.width;
        }
        top - (range.end - range.start) as f32 * self.leading() - 2.0 * self.pad_y()
    }

    fn draw_header(&self, flow: &mut Flow, lines: &[Vec<Vec<u8>>]) {
        let h = self.height(lines);
        flow.doc.fill(self.x, flow.y - h, self.width(), h, 0.9);
        let n = lines.iter().map(Vec::len).max().unwrap_or(1);
        flow.y = self.draw_lines(&mut flow.doc, flow.y, lines, 0..n, Font::Bold, 0);
        flow.doc
            .rule(self.x, self.x + self.width(), flow.y, 0.6, 0.3);
    }

    /// Draws the header and the rows from `flow.y` down, breaking pages as needed; a row
    /// taller than a whole page is split between lines.
    pub(crate) fn draw(&self, flow: &mut Flow, rows: &[TableRow]) {
        let header = self.lines(&self.header, Font::Bold, 0);
        let header_h = self.height(&header);
        let first_h = rows.first().map_or(0.0, |r| {
            self.height(&self.lines(&r.cells, r.font, r.indent))
        });
        if flow.room() < header_h + first_h.min(self.leading() * 3.0) {
            flow.break_page();
        }
        self.draw_header(flow, &header);
        let mut at_top = true;
        for row in rows {
            let lines = self.lines(&row.cells, row.font, row.indent);
            let h = self.height(&lines);
            if h > flow.room() && !at_top {
                flow.break_page();
                self.draw_header(flow, &header);
            }
            if row.rule_above {
                flow.doc
                    .rule(self.x, self.x + self.width(), flow.y, 0.8, 0.0);
            }
            let n = lines.iter().map(Vec::len).max().unwrap_or(1);
            let mut k = 0;
            while k < n {
                // As many lines as fit (at least one, so that a tiny page still ends).
                let fit = ((flow.room() - 2.0 * self.pad_y()) / self.leading()).floor();
                let take = (fit.max(1.0) as usize).min(n - k);
                flow.y = self.draw_lines(
                    &mut flow.doc,
                    flow.y,
                    &lines,
                    k..k + take,
                    row.font,
                    row.indent,
                );
                k += take;
                if k < n {
                    flow.break_page();
                    self.draw_header(flow, &header);
                }
            }
            at_top = false;
        }
    }
}
