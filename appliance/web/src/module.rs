//! The module contract on the web side: what a module adds to the appliance beyond
//! its kernel part ([`nexus_kernel::Module`]: entities, roles, state, demo data) — its
//! pages and API routes, its navigation (each entry with the grant it needs), and its
//! command-line subcommands. The server registers each module with one line; nothing
//! in the platform names a module's types.

use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;

use axum::Router;
use nexus_kernel::{Action, Kernel, Principal};

use crate::AppState;

/// One entry of a module's navigation, shown to those who hold `needs` on `entity`.
#[derive(Debug)]
pub struct NavEntry {
    pub label: &'static str,
    pub href: &'static str,
    pub entity: &'static str,
    pub needs: Action,
}

/// A boxed future, as a module's CLI runner returns it.
pub type CliFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// A module's subcommand of `nexus` (e.g. `nexus ledger export`).
pub struct ModuleCli {
    /// The subcommand with its arguments; its name must be the module's name.
    pub command: fn() -> clap::Command,
    /// Runs it against the opened kernel (the appliance stopped).
    pub run: fn(Kernel, clap::ArgMatches) -> CliFuture,
}

/// Everything a module contributes, declared once in the module's crate.
pub struct WebModule {
    pub module: &'static nexus_kernel::Module,
    /// One letter for the navigation (no icon font).
    pub glyph: &'static str,
    /// The module's home page.
    pub home: &'static str,
    pub nav: &'static [NavEntry],
    /// Its pages and API routes. Routes under `/api/` are JSON.
    pub routes: fn() -> Router<AppState>,
    /// Its JSON routes as the OpenAPI document describes them; a route under `/api/`
    /// that is not here answers 500 (see [`crate::openapi`]).
    pub api: &'static [crate::openapi::ApiOp],
    pub cli: Option<ModuleCli>,
}

impl WebModule {
    /// The navigation entries `who` may open.
    pub fn nav_for<'m>(&'m self, who: &Principal) -> impl Iterator<Item = &'m NavEntry> {
        self.nav.iter().filter(move |e| who.can(e.entity, e.needs))
    }
}

static INSTALLED: OnceLock<Vec<&'static WebModule>> = OnceLock::new();

/// Installs the modules: their kernel parts in the kernel's registry, the rest here.
/// Once per process; again with the same modules does nothing; refused otherwise (a
/// module twice, two with one name or code, clashing entities or roles, a CLI
/// subcommand not named after its module).
pub fn install(modules: &[&'static WebModule]) -> Result<(), String> {
    let kernel_parts: Vec<&'static nexus_kernel::Module> =
        modules.iter().map(|m| m.module).collect();
    nexus_kernel::registry::install(&kernel_parts)?;
    for m in modules {
        if let Some(cli) = &m.cli {
            let name = (cli.command)().get_name().to_owned();
            if name != m.module.name {
                return Err(format!(
                    "module {}'s subcommand is called {name}; it must carry the module's name",
                    m.module.name
                ));
            }
        }
    }
    nexus_kernel::registry::install_once(&INSTALLED, modules)
}

/// The installed modules, in installation order.
pub fn installed() -> &'static [&'static WebModule] {
    INSTALLED.get().map_or(&[][..], Vec::as_slice)
}
