//! The record kernel: typed, metadata-driven entities over the store.
//!
//! One [`EntityDef`] per entity drives validation, storage and indexes, lists, the
//! audit chain, the change log and permissions. Every call takes a [`Principal`]: the
//! kernel checks permissions and scopes every read and write to the principal's
//! company, so no caller can forget to.

mod audit;
mod auth;
pub mod builtin;
mod changes;
mod clock;
mod demo;
mod entity;
mod error;
mod module;
mod password;
mod perm;
mod record;
pub mod registry;
mod service;
mod value;

use std::sync::{Arc, Mutex, MutexGuard};

use nexus_store::Store;

pub use audit::{AuditEntry, ChainReport, verify as verify_audit_chain};
pub use auth::{SESSION_LIFETIME, Session};
pub use changes::{Change, Op, Tailer, run_tailer};
pub use clock::{Clock, ManualClock, SystemClock};
pub use demo::customer_values;
pub use entity::{Creation, EntityDef, FieldDef, FieldKind, Unique};
pub use error::{FieldErrors, KernelError};
pub use module::Command;
pub use perm::{Action, Grants, Principal};
pub use record::{Record, rfc3339};
pub use service::{Input, ListPage, ListQuery};
pub use value::{Value, format_money, parse_money};

/// The kernel's services over one store; cheap to clone.
#[derive(Clone)]
pub struct Kernel {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    clock: Arc<dyn Clock>,
    throttle: Mutex<auth::Throttle>,
    setup_token: Mutex<Option<String>>,
}

impl Kernel {
    pub fn new(store: Store, clock: Arc<dyn Clock>) -> Kernel {
        Kernel {
            inner: Arc::new(Inner {
                store,
                clock,
                throttle: Mutex::new(auth::Throttle::default()),
                setup_token: Mutex::new(None),
            }),
        }
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
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

    fn setup_slot(&self) -> &Mutex<Option<String>> {
        &self.inner.setup_token
    }

    /// Checks the whole audit chain.
    pub fn verify_audit(&self) -> Result<ChainReport, KernelError> {
        audit::verify(&self.store().read()?)
    }
}

#[cfg(test)]
mod tests;
