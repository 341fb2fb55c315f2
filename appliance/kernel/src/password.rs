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

/// Known-breached passwords (lower-cased, sorted; see `scripts/make-breached-passwords.sh`
/// for where they come from), shipped inside the binary so the check works offline.
static BREACHED: &str = include_str!("../data/breached-passwords.txt");

fn breached_list() -> &'static [&'static str] {
    static LIST: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    LIST.get_or_init(|| BREACHED.lines().filter(|l| !l.is_empty()).collect())
}

fn listed(word: &str) -> bool {
    breached_list()
        .binary_search_by(|p| p.as_bytes().cmp(word.as_bytes()))
        .is_ok()
}

/// Why `password` would be guessed from the lists of breached passwords, if it would:
/// it is on the list (in any case, with or without its spaces), or it is a listed word
/// with digits or symbols added before or after (`Summer2026!`, `!!password`).
pub(crate) fn breached(password: &str) -> Option<&'static str> {
    let lower = password.to_lowercase();
    let joined: String = lower.split_whitespace().collect();
    for word in [lower.trim(), joined.as_str()] {
        if listed(word) {
            return Some(
                "this password is on lists of passwords leaked in breaches, which guessers try first; choose another (a few unrelated words make a good one)",
            );
        }
    }
    for word in [lower.trim(), joined.as_str()] {
        let base = word.trim_matches(|c: char| c.is_ascii_digit() || c.is_ascii_punctuation());
        if base.len() != word.len() && base.chars().count() >= 4 && listed(base) {
            return Some(
                "this is a password leaked in breaches with digits or symbols added, which guessers try early; choose another (a few unrelated words make a good one)",
            );
        }
    }
    None
}

#[cfg(test)]
mod breached_tests {
    use super::*;

    #[test]
    fn the_list_is_sorted_and_catches_common_and_decorated_passwords() {
        let list = breached_list();
        assert!(list.len() > 70_000, "{}", list.len());
        assert!(
            list.windows(2).all(|w| w[0].as_bytes() < w[1].as_bytes()),
            "sorted and unique, for the binary search"
        );
        for weak in [
            "password123",
            "Password123",
            "qwertyuiop",
            "1234567890",
            "iloveyou12",
            "Summer2026!",
            "football!!!!",
            "  password123  ",
            "pass word 123",
            "!!password",
            "2026sunshine",
        ] {
            assert!(breached(weak).is_some(), "{weak}");
        }
        for fine in [
            "correct horse battery",
            "tram-lavender-cobalt",
            "sam password 123",
            "Zürich Bahnhof 7",
        ] {
            assert_eq!(breached(fine), None, "{fine}");
        }
    }
}
