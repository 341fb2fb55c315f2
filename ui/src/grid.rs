//! The grid: a server-side sorted, filtered and paged table with inline editing and
//! CSV export. State lives in the URL, so every view can be bookmarked, reloaded and
//! works without JavaScript (htmx only swaps the table instead of the page).

use maud::{Markup, Render, html};

use crate::HxEvent;
use crate::form::Input;

#[derive(Debug, Clone)]
pub enum ColumnFilter {
    None,
    /// Substring match.
    Text,
    /// One of the options.
    Choice(Vec<String>),
    /// Yes / no.
    Bool,
}

#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    pub label: String,
    pub sortable: bool,
    /// Right-aligned (amounts, numbers).
    pub numeric: bool,
    pub filter: ColumnFilter,
    /// Can be edited in place.
    pub editable: bool,
}

#[derive(Debug, Clone)]
pub enum Cell {
    Text(String),
    Link { text: String, href: String },
}

impl Cell {
    fn text(&self) -> &str {
        match self {
            Cell::Text(t) | Cell::Link { text: t, .. } => t,
        }
    }
}

/// How a row is shown.
#[derive(Debug, Clone)]
pub enum RowMode {
    View,
    /// One cell is being edited in place.
    Edit {
        column: String,
        input: Input,
        value: String,
        error: Option<String>,
    },
}

#[derive(Debug, Clone)]
pub struct GridRow {
    pub id: u64,
    pub version: u64,
    /// The record's page.
    pub href: String,
    pub cells: Vec<Cell>,
    pub mode: RowMode,
}

/// A grid and its state (sort, search, filters, page).
#[derive(Debug, Clone)]
pub struct Grid {
    /// The entity name (for live updates and keyboard shortcuts).
    pub entity: String,
    pub title: String,
    /// Where the grid lives, e.g. `/e/customer`.
    pub base: String,
    pub columns: Vec<Column>,
    pub rows: Vec<GridRow>,
    pub sort: Option<String>,
    pub descending: bool,
    pub search: String,
    pub filters: Vec<(String, String)>,
    pub offset: usize,
    pub limit: usize,
    pub total: u64,
    pub can_create: bool,
    pub can_export: bool,
    pub can_edit: bool,
    /// The form token for the export button (exports run as jobs, started by a POST).
    pub csrf: String,
}

impl Grid {
    /// The query string for this state with some parts changed.
    /// `query` (as [`Grid::query`] writes it, `?…` or empty) asking for `format`.
    fn with_format(&self, query: &str, format: &str) -> String {
        if query.is_empty() {
            format!("?format={format}")
        } else {
            format!("{query}&format={format}")
        }
    }

    fn query(&self, sort: Option<(&str, bool)>, offset: usize) -> String {
        let mut pairs: Vec<(String, String)> = Vec::new();
        if let Some((s, desc)) = sort.or(self.sort.as_deref().map(|s| (s, self.descending))) {
            pairs.push(("sort".into(), s.to_string()));
            if desc {
                pairs.push(("desc".into(), "1".into()));
            }
        }
        if !self.search.is_empty() {
            pairs.push(("q".into(), self.search.clone()));
        }
        for (k, v) in &self.filters {
            if !v.is_empty() {
                pairs.push((format!("f.{k}"), v.clone()));
            }
        }
        if offset > 0 {
            pairs.push(("offset".into(), offset.to_string()));
        }
        if self.limit != 50 {
            pairs.push(("limit".into(), self.limit.to_string()));
        }
        let encoded: Vec<String> = pairs
            .iter()
            .map(|(k, v)| format!("{k}={}", encode(v)))
            .collect();
        if encoded.is_empty() {
            String::new()
        } else {
            format!("?{}", encoded.join("&"))
        }
    }

    fn filter_value(&self, column: &str) -> &str {
        self.filters
            .iter()
            .find(|(k, _)| k == column)
            .map_or("", |(_, v)| v.as_str())
    }

    /// What htmx swaps when sort, filters or page change: the table, and out-of-band
    /// copies of the filter form's hidden sort fields so the next filter keeps the sort.
    pub fn partial(&self) -> Markup {
        html! {
            (self.table())
            (self.sort_fields(true))
        }
    }

    /// The filter form's hidden sort fields (or their out-of-band replacements).
    fn sort_fields(&self, oob: bool) -> Markup {
        let oob = oob.then_some("true");
        html! {
            input #grid-sort type="hidden" name="sort" value=[self.sort.as_deref()] hx-swap-oob=[oob];
            input #grid-desc type="hidden" name="desc" value=(if self.descending { "1" } else { "" }) hx-swap-oob=[oob];
        }
    }

    /// The table and pager.
    fn table(&self) -> Markup {
        let first = if self.total == 0 { 0 } else { self.offset + 1 };
        let last = (self.offset + self.rows.len()).min(self.total as usize);
        let prev = self.offset.saturating_sub(self.limit);
        let next = self.offset + self.limit;
        html! {
            div #grid .grid data-live-list=(self.entity)
                hx-get={ (self.base) (self.query(None, self.offset)) }
                hx-trigger={ (HxEvent::Changed.name()) " delay:300ms" }
                hx-swap="outerHTML" {
                div .table-wrap {
                    table {
                        thead {
                            tr {
                                @for c in &self.columns {
                                    th .num[c.numeric] scope="col" aria-sort=[self.aria_sort(c)] {
                                        @if c.sortable {
                                            @let desc = self.sort.as_deref() == Some(c.name.as_str()) && !self.descending;
                                            @let href = format!("{}{}", self.base, self.query(Some((&c.name, desc)), 0));
                                            a href=(href) hx-get=(href) hx-target="#grid" hx-push-url="true" {
                                                (c.label)
                                                @if self.sort.as_deref() == Some(c.name.as_str()) {
                                                    span .sort-mark aria-hidden="true" { @if self.descending { " ▼" } @else { " ▲" } }
                                                }
                                            }
                                        } @else {
                                            (c.label)
                                        }
                                    }
                                }
                            }
                        }
                        tbody {
                            @for row in &self.rows { (self.row_partial(row)) }
                            @if self.rows.is_empty() {
                                tr .empty { td colspan=(self.columns.len()) { "Nothing matches. Clear the filters or create one." } }
                            }
                        }
                    }
                }
                div .pager {
                    span .count { (first) "–" (last) " of " (self.total) }
                    @if self.offset > 0 {
                        @let href = format!("{}{}", self.base, self.query(None, prev));
                        a .button href=(href) hx-get=(href) hx-target="#grid" hx-push-url="true" rel="prev" { "← Previous" }
                    }
                    @if (next as u64) < self.total {
                        @let href = format!("{}{}", self.base, self.query(None, next));
                        a .button href=(href) hx-get=(href) hx-target="#grid" hx-push-url="true" rel="next" { "Next →" }
                    }
                }
            }
        }
    }

    fn aria_sort(&self, c: &Column) -> Option<&'static str> {
        (self.sort.as_deref() == Some(c.name.as_str())).then_some(if self.descending {
            "descending"
        } else {
            "ascending"
        })
    }

    /// One row, in view or edit mode.
    pub fn row_partial(&self, row: &GridRow) -> Markup {
        let row_url = format!("{}/{}/row", self.base, row.id);
        html! {
            tr #{ "row-" (row.id) } tabindex="0" data-href=(row.href)
                data-live-entity=(self.entity) data-live-id=(row.id) data-version=(row.version)
                hx-get=(row_url) hx-trigger=(HxEvent::Changed.name()) hx-swap="outerHTML" {
                @for (i, (c, cell)) in self.columns.iter().zip(&row.cells).enumerate() {
                    @match &row.mode {
                        RowMode::Edit { column, input, value, error } if *column == c.name => {
                            td .editing {
                                form .inline hx-post={ (self.base) "/" (row.id) "/cell/" (c.name) } hx-target="closest tr" hx-swap="outerHTML" {
                                    input type="hidden" name="version" value=(row.version);
                                    (input.control(&c.name, value, &format!("cell-{}-{}", row.id, c.name), error.is_some(), true))
                                    button type="submit" { "Save" }
                                    button type="button" .link data-cancel=(row_url) { "Cancel" }
                                    @if let Some(e) = error { div .field-error role="alert" { (e) } }
                                }
                            }
                        }
                        _ => {
                            @let editable = self.can_edit && c.editable;
                            td .num[c.numeric] .editable[editable]
                                title=[editable.then_some("Double-click to edit")]
                                hx-get=[editable.then(|| format!("{}/{}/cell/{}", self.base, row.id, c.name))]
                                hx-trigger=[editable.then_some("dblclick")]
                                hx-target=[editable.then_some("closest tr")] {
                                @match cell {
                                    Cell::Link { text, href } => a href=(href) { (text) },
                                    Cell::Text(t) if i == 0 => a href=(row.href) { (t) },
                                    Cell::Text(_) => (cell.text()),
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

impl Render for Grid {
    /// The whole grid page body: title, actions, filter bar and table.
    fn render(&self) -> Markup {
        html! {
            section .grid-page {
                header .page-head {
                    h1 { (self.title) }
                    div .actions {
                        @if self.can_export {
                            form .inline method="post" action={ (self.base) "/export" (self.query(None, 0)) } {
                                input type="hidden" name="_csrf" value=(self.csrf);
                                button type="submit" { "Export CSV" }
                            }
                            form .inline method="post" action={ (self.base) "/export" (self.with_format(&self.query(None, 0), "xlsx")) } {
                                input type="hidden" name="_csrf" value=(self.csrf);
                                button type="submit" { "Export XLSX" }
                            }
                        }
                        @if self.can_create {
                            a .button .primary href={ (self.base) "/new" } data-shortcut="new" { "New " kbd { "n" } }
                        }
                    }
                }
                form #grid-filters .filters method="get" action=(self.base)
                    hx-get=(self.base) hx-target="#grid" hx-push-url="true"
                    hx-trigger="input changed delay:250ms from:input, change from:select, submit" {
                    input type="search" name="q" value=(self.search) placeholder="Filter…   ( / )" aria-label={ "Filter " (self.title) } data-shortcut="search";
                    @for c in &self.columns {
                        @match &c.filter {
                            ColumnFilter::None => {},
                            ColumnFilter::Text => {
                                input type="text" name={ "f." (c.name) } value=(self.filter_value(&c.name)) placeholder=(c.label) aria-label={ "Filter by " (c.label) };
                            },
                            ColumnFilter::Choice(options) => {
                                select name={ "f." (c.name) } aria-label={ "Filter by " (c.label) } {
                                    option value="" { "Any " (c.label.to_lowercase()) }
                                    @for o in options { option value=(o) selected[self.filter_value(&c.name) == o] { (o) } }
                                }
                            },
                            ColumnFilter::Bool => {
                                select name={ "f." (c.name) } aria-label={ "Filter by " (c.label) } {
                                    option value="" { (c.label) ": any" }
                                    option value="yes" selected[self.filter_value(&c.name) == "yes"] { (c.label) ": yes" }
                                    option value="no" selected[self.filter_value(&c.name) == "no"] { (c.label) ": no" }
                                }
                            },
                        }
                    }
                    (self.sort_fields(false))
                    noscript { button type="submit" { "Apply" } }
                }
                (self.table())
            }
        }
    }
}

/// Percent-encodes a query value.
pub fn encode(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
