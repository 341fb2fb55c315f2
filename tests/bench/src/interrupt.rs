//! Ctrl-C: the first one asks the benchmark to stop at the next safe point, so the
//! PostgreSQL cluster is stopped and the temporary directories are removed; a second
//! one exits at once.

use std::sync::atomic::{AtomicBool, Ordering};

use tokio::runtime::Runtime;

use crate::error::{Error, Result};

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Exit status of a process ended by SIGINT, by shell convention.
const EXIT_INTERRUPTED: i32 = 130;

/// Starts listening for Ctrl-C on `runtime`.
pub fn watch(runtime: &Runtime) {
    runtime.spawn(async {
        while tokio::signal::ctrl_c().await.is_ok() {
            if REQUESTED.swap(true, Ordering::Relaxed) {
                eprintln!("nexus-bench: interrupted again; exiting without cleaning up");
                std::process::exit(EXIT_INTERRUPTED);
            }
            eprintln!(
                "nexus-bench: interrupted; stopping and cleaning up (Ctrl-C again to exit at once)"
            );
        }
    });
}

/// Whether Ctrl-C was pressed.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::Relaxed)
}

/// An error once Ctrl-C was pressed: call it between steps.
pub fn check() -> Result<()> {
    if requested() {
        Err(Error::msg("interrupted"))
    } else {
        Ok(())
    }
}
