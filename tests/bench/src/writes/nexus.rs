//! The nexus side: durable customer creates through the kernel, in-process.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use nexus_crm::CUSTOMER;
use nexus_kernel::{Input, Kernel, KernelError, Principal, SystemClock};
use nexus_store::{Store, WriterStats};
use serde::Serialize;
use tokio::runtime::Runtime;

use super::sample;
use super::tailer::{self, Lag};
use crate::error::{Context, Error, Result, chain};
use crate::load::{self, Client, Run};

/// The store file inside each level's directory.
const STORE_FILE: &str = "nexus.redb";

/// The outcome of one concurrency level.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub run: Run,
    pub writer: Writer,
    /// Entries in the audit chain after the run, all verified.
    pub audit_entries: u64,
    /// How far behind the head a tailer ran beside the load (absent with
    /// `--no-tailer`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tailer: Option<Lag>,
}

/// What the store's single writer did during the run.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Writer {
    /// Commands (creates) committed.
    pub commands: u64,
    /// Durable transactions, i.e. fsyncs.
    pub commits: u64,
    /// Commands that were rejected (must be zero).
    pub rejected: u64,
    /// Commands per commit: how well group commit batched the clients.
    pub average_batch: f64,
}

impl Writer {
    pub(crate) fn between(before: WriterStats, after: WriterStats) -> Writer {
        let commands = after.commands.saturating_sub(before.commands);
        let commits = after.commits.saturating_sub(before.commits);
        Writer {
            commands,
            commits,
            rejected: after.rejected.saturating_sub(before.rejected),
            average_batch: if commits == 0 {
                0.0
            } else {
                commands as f64 / commits as f64
            },
        }
    }
}

/// Creates customers from `clients` concurrent tasks for `budget` against a fresh store
/// in `dir` (which must not exist yet; it is removed afterwards), with a tailer
/// following the event log beside the load when `with_tailer`.
///
/// Setup and teardown run outside the runtime (closing the store joins its writer
/// thread); only the load itself runs on it.
pub fn measure(
    rt: &Runtime,
    dir: &Path,
    clients: usize,
    budget: Duration,
    with_tailer: bool,
) -> Result<Outcome> {
    std::fs::create_dir(dir).context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(STORE_FILE);
    nexus_kernel::registry::install(&[&nexus_crm::CRM, &nexus_ledger::entities::LEDGER])
        .map_err(|e| crate::error::Error::msg(format!("installing the modules: {e}")))?;
    let store = Store::open(&path).context(|| format!("opening the store {}", path.display()))?;
    let kernel = Kernel::new(store, Arc::new(SystemClock));
    let company = rt
        .block_on(kernel.create_company("Bench Co", "CHF"))
        .map_err(|e| kernel_error("creating the company", &e))?;
    let audit_before = verify_audit(&kernel)?;
    let before = kernel.writer_stats();
    let creators = (0..clients)
        .map(|task| Creator {
            kernel: kernel.clone(),
            who: Principal::system(company),
            task,
        })
        .collect();
    let watch = with_tailer
        .then(|| tailer::start(rt, &kernel))
        .transpose()?;
    let run = rt.block_on(load::drive(creators, budget));
    let tailer = watch.map(|w| w.finish(rt, &kernel)).transpose();
    let run = run?;
    let tailer = tailer?;
    let writer = Writer::between(before, kernel.writer_stats());
    let audit_entries = verify_audit(&kernel)?;
    check_accounting(&run, &writer, audit_entries.saturating_sub(audit_before))?;
    drop(kernel);
    std::fs::remove_dir_all(dir).context(|| format!("removing {}", dir.display()))?;
    Ok(Outcome {
        run,
        writer,
        audit_entries,
        tailer,
    })
}

/// Checks the whole audit chain; returns its length.
fn verify_audit(kernel: &Kernel) -> Result<u64> {
    kernel
        .verify_audit()
        .map(|report| report.entries)
        .map_err(|e| kernel_error("verifying the audit chain", &e))
}

/// Every acknowledged create must be one committed command and one new audit entry,
/// and nothing may be rejected.
fn check_accounting(run: &Run, writer: &Writer, new_audit_entries: u64) -> Result<()> {
    if writer.commands != run.ops || writer.rejected != 0 || new_audit_entries != run.ops {
        return Err(Error::msg(format!(
            "the clients saw {} creates succeed, but the writer committed {} commands and \
             rejected {}, and the audit chain grew by {new_audit_entries} entries",
            run.ops, writer.commands, writer.rejected
        )));
    }
    Ok(())
}

/// One client: creates customers named "Bench {task} {seq}".
struct Creator {
    kernel: Kernel,
    who: Principal,
    task: usize,
}

impl Client for Creator {
    async fn op(&mut self, seq: u64) -> Result<()> {
        let input = Input::Form(sample::form(&sample::name(self.task, seq)));
        self.kernel
            .create(&self.who, &CUSTOMER, input)
            .await
            .map(drop)
            .map_err(|e| kernel_error(&format!("client {}: create #{seq}", self.task), &e))
    }
}

/// A kernel error with its field messages, which its `Display` leaves out.
pub(crate) fn kernel_error(what: &str, e: &KernelError) -> Error {
    match e {
        KernelError::Invalid(fields) => {
            let details: Vec<String> = fields.0.iter().map(|(f, m)| format!("{f}: {m}")).collect();
            Error::msg(format!("{what}: {e} ({})", details.join("; ")))
        }
        other => Error::msg(format!("{what}: {}", chain(other))),
    }
}
