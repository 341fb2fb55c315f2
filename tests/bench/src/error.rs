//! One error type for the whole benchmark: a message that says what was being done and
//! why it failed, including every cause in the chain.

use std::fmt;

/// A benchmark failure, as a readable message.
#[derive(Debug)]
pub struct Error(String);

/// The benchmark's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error with just this message.
    pub fn msg(message: impl Into<String>) -> Error {
        Error(message.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

/// Renders an error with all of its causes: `outer: cause: root cause`.
///
/// Some libraries (tokio-postgres among them) keep the useful part of the message in
/// the cause, so printing only the outer error would hide it.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

/// Adds what was being done to an error.
pub trait Context<T> {
    /// Prefixes the error with `what` (computed only on failure).
    fn context<D: fmt::Display>(self, what: impl FnOnce() -> D) -> Result<T>;
}

impl<T, E: std::error::Error> Context<T> for Result<T, E> {
    fn context<D: fmt::Display>(self, what: impl FnOnce() -> D) -> Result<T> {
        self.map_err(|e| Error(format!("{}: {}", what(), chain(&e))))
    }
}
