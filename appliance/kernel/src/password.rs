//! argon2id password hashing, off the async threads and off the writer thread.

use std::sync::OnceLock;

use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};

use crate::error::KernelError;

fn hash_one(secret: &str) -> Result<String, KernelError> {
    let mut salt_bytes = [0u8; 16];
    rand::fill(&mut salt_bytes);
    Argon2::default()
        .hash_password_with_salt(secret.as_bytes(), &salt_bytes)
        .map(|h| h.to_string())
        .map_err(|e| KernelError::Internal(format!("password hashing: {e}")))
}

/// Hashes every secret (argon2id, default parameters) on the blocking pool.
pub(crate) async fn hash_all(
    secrets: Vec<(&'static str, String)>,
) -> Result<Vec<(&'static str, String)>, KernelError> {
    if secrets.is_empty() {
        return Ok(Vec::new());
    }
    tokio::task::spawn_blocking(move || {
        secrets
            .into_iter()
            .map(|(name, s)| hash_one(&s).map(|h| (name, h)))
            .collect()
    })
    .await
    .map_err(|e| KernelError::Internal(format!("password hashing stopped: {e}")))?
}

/// Verifies on the blocking pool. A missing hash still costs one verification, so a
/// wrong login name takes as long as a wrong password.
pub(crate) async fn verify(secret: String, stored: Option<String>) -> bool {
    tokio::task::spawn_blocking(move || {
        static DUMMY: OnceLock<String> = OnceLock::new();
        let (hash, real) = match &stored {
            Some(h) => (h.as_str(), true),
            None => (
                DUMMY
                    .get_or_init(|| hash_one("not a password of anyone").unwrap_or_default())
                    .as_str(),
                false,
            ),
        };
        let ok = hash
            .parse::<PasswordHash>()
            .map(|parsed| {
                Argon2::default()
                    .verify_password(secret.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false);
        ok && real
    })
    .await
    .unwrap_or(false)
}
