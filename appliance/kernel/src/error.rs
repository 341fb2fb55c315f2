//! Kernel errors: values with messages a person understands. The web layer maps each
//! variant to an HTTP status in one table.

use nexus_store::StoreError;

/// Per-field validation messages, in the order of the entity's fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldErrors(pub Vec<(String, String)>);

impl FieldErrors {
    pub fn push(&mut self, field: &str, message: impl Into<String>) {
        self.0.push((field.to_string(), message.into()));
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn get(&self, field: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, m)| m.as_str())
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum KernelError {
    #[error("please sign in")]
    Unauthenticated,
    #[error("wrong login name or password")]
    BadCredentials,
    #[error(
        "this account has a second factor: give the 6-digit code from the authenticator app (or a recovery code) as \"code\""
    )]
    CodeRequired,
    #[error("too many failed sign-ins; try again in {retry_after_secs} seconds")]
    Throttled { retry_after_secs: u64 },
    #[error("too many requests with this API token; try again in {retry_after_secs} seconds")]
    RateLimited { retry_after_secs: u64 },
    #[error("an API token cannot {0}; sign in to do that")]
    TokenNotAllowed(&'static str),
    #[error("you are not allowed to {action} {entity}")]
    Forbidden {
        action: &'static str,
        entity: String,
    },
    #[error("{0}")]
    NotFound(String),
    #[error("please correct the highlighted fields")]
    Invalid(FieldErrors),
    #[error(
        "this {entity} was changed by {by} since you opened it (you had version {yours}, it is now version {current}); reload to see their change, then make yours again"
    )]
    Stale {
        entity: String,
        by: String,
        yours: u64,
        current: u64,
    },
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("the setup link is invalid or was already used; restart nexus to print a new one")]
    BadSetupToken,
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl KernelError {
    pub fn invalid(field: &str, message: impl Into<String>) -> KernelError {
        let mut e = FieldErrors::default();
        e.push(field, message);
        KernelError::Invalid(e)
    }
}
