//! CRM on the web: its records are served by the generic entity pages (`/e/customer`,
//! `/e/contact`, `/api/v1/customer`, …), so it adds navigation only.

use nexus_kernel::Action;
use nexus_web::{AppState, NavEntry, WebModule};

/// The CRM module's web part.
pub static MODULE: WebModule = WebModule {
    module: &crate::entities::CRM,
    glyph: "C",
    home: "/e/customer",
    nav: &[
        NavEntry {
            label: "Customers",
            href: "/e/customer",
            entity: "customer",
            needs: Action::Read,
        },
        NavEntry {
            label: "Contacts",
            href: "/e/contact",
            entity: "contact",
            needs: Action::Read,
        },
    ],
    routes: axum::Router::<AppState>::new,
    api: &[],
    cli: None,
};
