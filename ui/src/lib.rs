//! The UI toolkit: maud components, the page layout and the embedded assets.
//!
//! Components are plain data types implementing [`maud::Render`]; this crate knows
//! nothing of entities, the store or HTTP. The web layer fills the models and serves
//! the result. Fragments for htmx are named `*_partial`.

pub mod assets;
pub mod form;
pub mod grid;
pub mod layout;
pub mod toast;

pub use form::{Form, FormField, Input};
pub use grid::{Cell, Column, ColumnFilter, Grid, GridRow, RowMode};
pub use layout::{NavItem, Page, UserBadge};
pub use toast::{Toast, ToastKind};

/// Custom htmx events the UI uses, in one place (sent in `HX-Trigger`, listened for
/// in templates and `app.js`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HxEvent {
    /// The record or list shown changed elsewhere; refresh from the server.
    Changed,
}

impl HxEvent {
    pub const fn name(self) -> &'static str {
        match self {
            HxEvent::Changed => "nexus:changed",
        }
    }
}
