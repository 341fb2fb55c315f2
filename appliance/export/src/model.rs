//! The report model: a titled table of typed columns, and its checks.

use crate::ExportError;

/// The largest money exponent accepted (decimals after the point).
pub const MAX_EXPONENT: u8 = 9;

/// A tabular report: what the trial balance, an aged-receivables list or a journal
/// listing become when they leave the appliance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The report's name ("Trial balance"); names the spreadsheet and heads every PDF
    /// page. Must not be blank.
    pub title: String,
    /// The line under the title.
    pub subtitle: Subtitle,
    /// The columns, left to right.
    pub columns: Vec<Column>,
    /// The body rows, top to bottom; each has one cell per column.
    pub rows: Vec<Row>,
    /// A totals row, set off in bold under a rule.
    pub footer: Option<Row>,
}

/// Whose report, for when, in what currency. Blank parts are left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subtitle {
    /// The company's name.
    pub company: String,
    /// The period, as the caller wants it shown ("2026-01-01 to 2026-03-31", "Q1 2026").
    pub period: String,
    /// The currency code of the amounts ("EUR").
    pub currency: String,
}

impl Subtitle {
    /// The parts that are not blank, joined with " · ".
    pub fn line(&self) -> String {
        [&self.company, &self.period, &self.currency]
            .into_iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" · ")
    }
}

/// One column of a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// The header text.
    pub header: String,
    /// Where the column's header and cells sit.
    pub align: Align,
    /// What the column holds; every cell must match it (or be [`Cell::Empty`]).
    pub kind: ColumnKind,
}

/// Horizontal alignment of a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    /// Flush left (text).
    Left,
    /// Flush right (numbers, so that their digits line up).
    Right,
}

/// What a column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// [`Cell::Text`].
    Text,
    /// [`Cell::Money`] in minor units; `exponent` is the number of decimals (2 for USD,
    /// 0 for JPY, 3 for KWD), at most [`MAX_EXPONENT`].
    Money {
        /// Decimals after the point.
        exponent: u8,
    },
    /// [`Cell::Integer`] (counts, quantities), shown with thousands separators.
    Integer,
    /// [`Cell::Date`], shown as `YYYY-MM-DD`.
    Date,
}

impl ColumnKind {
    fn name(self) -> &'static str {
        match self {
            ColumnKind::Text => "text",
            ColumnKind::Money { .. } => "money",
            ColumnKind::Integer => "integer",
            ColumnKind::Date => "date",
        }
    }
}

/// One row of a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// One cell per column.
    pub cells: Vec<Cell>,
    /// Indent level of the row's text cells (a sub-account under its group); each level
    /// is one spreadsheet indent step and 8 points in a PDF.
    pub indent: u8,
    /// Set the row in bold (a group or subtotal row).
    pub bold: bool,
}

impl Row {
    /// A plain row: no indent, not bold.
    pub fn new(cells: Vec<Cell>) -> Row {
        Row {
            cells,
            indent: 0,
            bold: false,
        }
    }

    /// The same row in bold.
    #[must_use]
    pub fn bold(mut self) -> Row {
        self.bold = true;
        self
    }

    /// The same row indented `levels` steps.
    #[must_use]
    pub fn indent(mut self, levels: u8) -> Row {
        self.indent = levels;
        self
    }
}

/// One cell's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    /// Text, for a [`ColumnKind::Text`] column.
    Text(String),
    /// An amount in minor units (cents), for a [`ColumnKind::Money`] column.
    Money(i64),
    /// A whole number, for a [`ColumnKind::Integer`] column.
    Integer(i64),
    /// A calendar date, for a [`ColumnKind::Date`] column.
    Date(time::Date),
    /// Nothing; fits any column.
    Empty,
}

impl Cell {
    fn kind_name(&self) -> &'static str {
        match self {
            Cell::Text(_) => "text",
            Cell::Money(_) => "money",
            Cell::Integer(_) => "integer",
            Cell::Date(_) => "date",
            Cell::Empty => "empty",
        }
    }

    fn fits(&self, kind: ColumnKind) -> bool {
        matches!(
            (self, kind),
            (Cell::Empty, _)
                | (Cell::Text(_), ColumnKind::Text)
                | (Cell::Money(_), ColumnKind::Money { .. })
                | (Cell::Integer(_), ColumnKind::Integer)
                | (Cell::Date(_), ColumnKind::Date)
        )
    }
}

/// Where a row sits, for messages and for the renderers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RowAt {
    /// Body row, counting from 0.
    Body(usize),
    /// The footer row.
    Footer,
}

impl RowAt {
    pub(crate) fn label(self) -> String {
        match self {
            RowAt::Body(i) => format!("row {}", i + 1),
            RowAt::Footer => "the footer row".to_string(),
        }
    }
}

impl Report {
    /// Checks what both renderers rely on: a title, at least one column, supported
    /// exponents, one cell per column in every row, each cell matching its column.
    pub(crate) fn validate(&self) -> Result<(), ExportError> {
        if self.title.trim().is_empty() {
            return Err(ExportError::Missing {
                what: "report title",
                hint: "give the report a title (it names the sheet and heads every page)",
            });
        }
        if self.columns.is_empty() {
            return Err(ExportError::NoColumns);
        }
        for (i, c) in self.columns.iter().enumerate() {
            if let ColumnKind::Money { exponent } = c.kind
                && exponent > MAX_EXPONENT
            {
                return Err(ExportError::Exponent {
                    what: format!("column {} (\"{}\")", i + 1, c.header),
                    exponent,
                });
            }
        }
        for (at, row) in self.all_rows() {
            if row.cells.len() != self.columns.len() {
                return Err(ExportError::CellCount {
                    row: at.label(),
                    cells: row.cells.len(),
                    columns: self.columns.len(),
                });
            }
            for (j, (cell, col)) in row.cells.iter().zip(&self.columns).enumerate() {
                if !cell.fits(col.kind) {
                    return Err(ExportError::CellKind {
                        row: at.label(),
                        column: j + 1,
                        header: col.header.clone(),
                        cell: cell.kind_name(),
                        kind: col.kind.name(),
                    });
                }
            }
        }
        Ok(())
    }

    /// Body rows then the footer, each with where it sits.
    pub(crate) fn all_rows(&self) -> impl Iterator<Item = (RowAt, &Row)> {
        self.rows
            .iter()
            .enumerate()
            .map(|(i, r)| (RowAt::Body(i), r))
            .chain(self.footer.iter().map(|r| (RowAt::Footer, r)))
    }
}
