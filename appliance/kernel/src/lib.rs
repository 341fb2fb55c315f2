//! The record kernel: typed, metadata-driven entities over the store.
//!
//! One [`EntityDef`] per entity drives validation, storage and indexes, lists, the
//! audit chain, the change log and permissions. Every call takes a [`Principal`]: the
//! kernel checks permissions and scopes every read and write to the principal's
//! company, so no caller can forget to.

mod access;
mod auth;
pub mod builtin;
mod clock;
pub mod documents;
mod entity;
mod error;
mod event;
mod idempotency;
pub mod jobs;
pub mod mfa;
mod module;
mod password;
mod perm;
mod record;
pub mod registry;
mod review;
mod service;
mod tail;
mod tlog;
mod tokens;
pub mod tools;
pub mod typed;
mod value;

use std::sync::{Arc, Mutex, MutexGuard};

use nexus_store::Store;

pub use auth::{SESSION_LIFETIME, Session, SessionInfo, SignIn};
pub use clock::{Clock, ManualClock, SystemClock};
pub use entity::{Creation, EntityDef, FieldDef, FieldKind, Unique};
pub use error::{FieldErrors, KernelError};
pub use event::{ChainReport, Event, Image, Op, verify as verify_audit_chain};
pub use idempotency::{
    Claim, KEY_LIFETIME_MS, StoredResponse, check_key as check_idempotency_key,
    fingerprint as request_fingerprint,
};
pub use jobs::{
    Job, JobContext, JobError, JobFuture, JobHandler, JobSpec, JobState, Schedule, ScheduleDef,
};
pub use mfa::{Enrolment, MfaStatus};
pub use module::{Command, KeyValue, ModuleState};
pub use nexus_store::StoreError;
pub use perm::{Action, Grants, Principal};
pub use record::{Record, rfc3339, rfc3339_ms};
pub use registry::{DemoFn, Module, RoleDef};
pub use review::AccessEntry;
pub use service::{CONFIRM_PASSWORD, Input, ListPage, ListQuery};
pub use tail::{CommandEvents, TailError, Tailer, TailerState, TailerStatus, run_tailer};
pub use tlog::TreeHead;
pub use tokens::{DEFAULT_PER_MINUTE, MAX_DAYS, TOKEN_PREFIX, TokenInfo, TokenRequest};
pub use tools::{Param, ParamKind, Tool};
pub use typed::{Row, Typed};
pub use value::{Value, format_date, format_money, parse_date, parse_money};

/// Order-preserving key helpers for modules' own state.
pub mod bytes {
    pub use nexus_store::{decode_u64, prefix_end, u64_key};
}

/// The kernel's services over one store; cheap to clone.
#[derive(Clone)]
pub struct Kernel {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    clock: Arc<dyn Clock>,
    throttle: Mutex<auth::Throttle>,
    token_use: Mutex<tokens::TokenUse>,
    setup_token: Mutex<Option<String>>,
    tailers: Mutex<tail::Tailers>,
    jobs: jobs::JobRuntime,
    /// This run of the appliance (random per kernel), so an idempotency key claimed by
    /// an earlier run and never answered is told apart from one still in flight.
    boot: u64,
}

impl Kernel {
    pub fn new(store: Store, clock: Arc<dyn Clock>) -> Kernel {
        Kernel {
            inner: Arc::new(Inner {
                store,
                clock,
                throttle: Mutex::new(auth::Throttle::default()),
                token_use: Mutex::new(tokens::TokenUse::default()),
                setup_token: Mutex::new(None),
                tailers: Mutex::new(tail::Tailers::default()),
                jobs: jobs::JobRuntime::default(),
                boot: boot_id(),
            }),
        }
    }

    pub(crate) fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Whether the kernel can serve: the store reads and its writer runs. `Err` says
    /// why not, in words for `/healthz` and the admin page.
    pub fn health(&self) -> Result<(), String> {
        if let Some(reason) = self.store().halted() {
            return Err(format!("the store's writer has stopped: {reason}"));
        }
        if let Some(reason) = self.store().failing() {
            return Err(format!(
                "writes are failing (nothing of them was saved): {reason}"
            ));
        }
        self.store()
            .read()
            .map(|_| ())
            .map_err(|e| format!("the store cannot be read: {e}"))
    }

    /// The store writer's counters since start (for `/metrics` and the admin page).
    pub fn writer_stats(&self) -> nexus_store::WriterStats {
        self.store().writer_stats()
    }

    pub fn clock(&self) -> &dyn Clock {
        self.inner.clock.as_ref()
    }

    /// The clock, to share with services outside the kernel (TLS renewal checks).
    pub fn shared_clock(&self) -> Arc<dyn Clock> {
        self.inner.clock.clone()
    }

    fn throttle(&self) -> MutexGuard<'_, auth::Throttle> {
        // A poisoned throttle only means a panic elsewhere while it was held; its
        // counters are still usable.
        self.inner
            .throttle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn token_use(&self) -> MutexGuard<'_, tokens::TokenUse> {
        self.inner
            .token_use
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn jobs_runtime(&self) -> &jobs::JobRuntime {
        &self.inner.jobs
    }

    fn boot_id(&self) -> u64 {
        self.inner.boot
    }

    fn tailer_registry(&self) -> MutexGuard<'_, tail::Tailers> {
        // Statuses are replaced whole: a poisoned lock still holds whole ones.
        self.inner
            .tailers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn setup_slot(&self) -> &Mutex<Option<String>> {
        &self.inner.setup_token
    }

    /// Checks the whole audit chain.
    pub fn verify_audit(&self) -> Result<ChainReport, KernelError> {
        event::verify(&self.store().read()?)
    }
}

/// A random id for this run (the standard library seeds `RandomState` from the
/// operating system's random source).
fn boot_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.finish()
}

/// For `nexus-bench` only: what it needs to compare the write path with and without a
/// part of it. Nothing in the appliance calls these.
#[doc(hidden)]
pub mod bench_support {
    /// Leaves new events out of the transparency log's tree (`true`) or puts them in
    /// (`false`, the default). A tree left behind takes the events it lacks on the next
    /// write made with it on, so a store is never left without them for good.
    pub fn skip_transparency_log(skip: bool) {
        crate::tlog::SKIP_FOR_BENCHMARK.store(skip, std::sync::atomic::Ordering::Relaxed);
    }
}

#[cfg(test)]
mod companies_tests;
#[cfg(test)]
mod documents_tests;
#[cfg(test)]
mod spine_tests;
#[cfg(test)]
mod test_entities;
#[cfg(test)]
mod tests;
