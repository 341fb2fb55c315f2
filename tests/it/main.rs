//! The one integration-test binary: the real server over real HTTPS on ephemeral
//! ports with a temporary data directory, driven by a real HTTP client; the real
//! binary killed with SIGKILL under load; and a real headless Chromium.

// Test support code panics on the unexpected, like the tests themselves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

mod access;
mod api;
mod authorization;
mod bank;
mod companies;
mod crash;
mod documents;
mod e2e;
mod invoices;
mod ledger;
mod pages;
mod search;
mod security;
mod spine;
mod stock;
mod tls_scan;
mod transparency;
