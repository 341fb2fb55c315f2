//! A second factor: TOTP (RFC 6238: HMAC-SHA1, 6 digits, 30-second steps, what every
//! authenticator app speaks) with one-use recovery codes.
//!
//! Enrolment is two steps: [`Kernel::begin_mfa`] makes a secret kept *pending* (the
//! user's current factor, if any, keeps working), and [`Kernel::confirm_mfa`] switches
//! to it once a code from the app proves it was scanned, returning ten recovery codes
//! shown once (the store keeps their BLAKE3 hashes: 80 random bits each). A code is
//! accepted from the step before to the step after now, and only for a step later
//! than the last one used, so a code seen over a shoulder cannot be replayed. Failed
//! codes count like failed passwords. A role may require a second factor
//! (`require_mfa`): its holders act with no grants until they have one, and the web
//! sends them to set it up. Turning it on or off and using a recovery code are
//! security events of the log.

use hmac::{Hmac, Mac};
use nexus_store::{Reader, Table, u64_key};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::auth::{security_event, stamped};
use crate::error::KernelError;
use crate::perm::Principal;
use crate::{Kernel, access};

const STEP_SECS: i64 = 30;
const RECOVERY_CODES: usize = 10;
/// The issuer authenticator apps show beside the account.
const ISSUER: &str = "NexusAI";

pub const MFA_ENABLED: &str = "mfa_enabled";
pub const MFA_DISABLED: &str = "mfa_disabled";
pub const RECOVERY_CODE_USED: &str = "recovery_code_used";
pub const RECOVERY_CODES_RENEWED: &str = "recovery_codes_renewed";

/// A user's second factor as stored.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct StoredMfa {
    /// The confirmed secret; empty while only a pending one exists.
    #[serde(default)]
    secret: Vec<u8>,
    /// A secret made by `begin_mfa`, waiting for its first code.
    #[serde(default)]
    pending: Vec<u8>,
    /// The last step a code was accepted for.
    #[serde(default)]
    last_step: i64,
    /// BLAKE3 hashes of the unused recovery codes.
    #[serde(default)]
    recovery: Vec<Vec<u8>>,
    /// When it was confirmed (Unix seconds).
    #[serde(default)]
    since: i64,
}

/// What the user needs to add the account to an authenticator app.
#[derive(Debug, Clone)]
pub struct Enrolment {
    /// The secret in base32, for typing in.
    pub secret: String,
    /// The `otpauth://` address a QR code carries.
    pub uri: String,
}

/// Where a user stands with their second factor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MfaStatus {
    pub enabled: bool,
    pub since: Option<OffsetDateTime>,
    pub recovery_codes_left: usize,
    /// Whether a role they hold here requires one.
    pub required: bool,
}

/// A TOTP or HOTP code: RFC 4226's dynamic truncation of HMAC-SHA1(secret, counter).
pub fn hotp(secret: &[u8], counter: u64, digits: u32) -> u32 {
    let Ok(mut mac) = Hmac::<sha1::Sha1>::new_from_slice(secret) else {
        // HMAC takes a key of any length; this cannot happen.
        return u32::MAX;
    };
    mac.update(&counter.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest[19] & 0x0f);
    let word = u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]);
    word % 10u32.pow(digits)
}

fn step_at(at: OffsetDateTime) -> i64 {
    at.unix_timestamp().div_euclid(STEP_SECS)
}

/// The step within one of now whose code is `code` and that is later than `after`.
fn matching_step(secret: &[u8], code: u32, now: i64, after: i64) -> Option<i64> {
    (now - 1..=now + 1)
        .filter(|s| *s > after && *s >= 0)
        .find(|s| hotp(secret, *s as u64, 6) == code)
}

fn load(r: &impl Reader, user: u64) -> Result<Option<StoredMfa>, KernelError> {
    Ok(r.get(Table::Mfa, &u64_key(user))?
        .and_then(|b| ciborium::from_reader(b.as_slice()).ok()))
}

fn store(txn: &mut nexus_store::Txn<'_, '_>, user: u64, m: &StoredMfa) -> Result<(), KernelError> {
    let mut bytes = Vec::new();
    ciborium::into_writer(m, &mut bytes)
        .map_err(|e| KernelError::Internal(format!("encoding a second factor: {e}")))?;
    txn.put(Table::Mfa, u64_key(user).to_vec(), bytes);
    Ok(())
}

/// Whether `user` has a confirmed second factor.
pub(crate) fn enabled(r: &impl Reader, user: u64) -> Result<bool, KernelError> {
    Ok(load(r, user)?.is_some_and(|m| !m.secret.is_empty()))
}

/// Forgets `user`'s second factor in this command (the user is deleted).
pub(crate) fn forget_in(txn: &mut nexus_store::Txn<'_, '_>, user: u64) {
    txn.delete(Table::Mfa, u64_key(user).to_vec());
}

/// What a code given at sign-in turned out to be.
pub(crate) enum Checked {
    /// A TOTP code for this step.
    Totp(i64),
    /// A recovery code (its index among the unused ones).
    Recovery(usize),
}

/// Normalises what a person typed: digits of a TOTP code, or a recovery code without
/// its dashes and spaces, lower-cased.
fn normalise(given: &str) -> String {
    given
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect::<String>()
        .to_ascii_lowercase()
}

fn recovery_hash(code: &str) -> Vec<u8> {
    blake3::hash(normalise(code).as_bytes()).as_bytes().to_vec()
}

fn new_recovery_codes() -> (Vec<String>, Vec<Vec<u8>>) {
    let codes: Vec<String> = (0..RECOVERY_CODES)
        .map(|_| {
            let mut bytes = [0u8; 10];
            rand::fill(&mut bytes);
            let raw = data_encoding::BASE32_NOPAD
                .encode(&bytes)
                .to_ascii_lowercase();
            raw.as_bytes()
                .chunks(4)
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect::<Vec<_>>()
                .join("-")
        })
        .collect();
    let hashes = codes.iter().map(|c| recovery_hash(c)).collect();
    (codes, hashes)
}

/// Checks a code for `user` at `now` against what is stored (without writing).
pub(crate) fn check(
    r: &impl Reader,
    user: u64,
    given: &str,
    now: OffsetDateTime,
) -> Result<Checked, KernelError> {
    let m = load(r, user)?
        .filter(|m| !m.secret.is_empty())
        .ok_or_else(|| KernelError::invalid("code", "this account has no second factor"))?;
    let code = normalise(given);
    if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
        let value: u32 = code.parse().unwrap_or(u32::MAX);
        let now = step_at(now);
        return match matching_step(&m.secret, value, now, m.last_step) {
            Some(step) => Ok(Checked::Totp(step)),
            None if matching_step(&m.secret, value, now, i64::MIN).is_some() => Err(
                KernelError::invalid("code", "this code was already used; wait for the next one"),
            ),
            None => Err(KernelError::invalid(
                "code",
                "that code is wrong or has expired; check the phone's clock",
            )),
        };
    }
    let hash = recovery_hash(&code);
    m.recovery
        .iter()
        .position(|h| h.as_slice() == hash.as_slice())
        .map(Checked::Recovery)
        .ok_or_else(|| {
            KernelError::invalid(
                "code",
                "give the 6-digit code from the authenticator app, or one recovery code",
            )
        })
}

/// Uses up what [`check`] accepted, in this command; says whether it was a recovery
/// code. Checked again here, so two sign-ins racing with one code cannot both pass.
pub(crate) fn consume(
    txn: &mut nexus_store::Txn<'_, '_>,
    user: u64,
    given: &str,
    now: OffsetDateTime,
) -> Result<bool, KernelError> {
    let checked = check(txn, user, given, now)?;
    let Some(mut m) = load(txn, user)? else {
        return Err(KernelError::invalid(
            "code",
            "this account has no second factor",
        ));
    };
    let recovery = match checked {
        Checked::Totp(step) => {
            m.last_step = step;
            false
        }
        Checked::Recovery(i) => {
            m.recovery.remove(i);
            true
        }
    };
    store(txn, user, &m)?;
    Ok(recovery)
}

fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Kernel {
    /// Where the user stands with their second factor, in the company they work in.
    pub fn mfa_status(&self, who: &Principal) -> Result<MfaStatus, KernelError> {
        let read = self.store().read()?;
        let m = load(&read, who.user_id)?.filter(|m| !m.secret.is_empty());
        Ok(MfaStatus {
            enabled: m.is_some(),
            since: m
                .as_ref()
                .and_then(|m| OffsetDateTime::from_unix_timestamp(m.since).ok()),
            recovery_codes_left: m.as_ref().map_or(0, |m| m.recovery.len()),
            required: mfa_required(&read, who.company, who.user_id)?,
        })
    }

    /// Starts setting up a second factor, after the password is given again (a
    /// borrowed session must not tie the account to someone else's phone): a new
    /// secret, pending until a code from the app confirms it (a second factor already on
    /// keeps working meanwhile).
    pub async fn begin_mfa(
        &self,
        who: &Principal,
        confirm: Option<String>,
    ) -> Result<Enrolment, KernelError> {
        refuse_token(who, "set up a second factor")?;
        if !self.confirm_actor(who, confirm).await? {
            return Err(KernelError::invalid(
                crate::service::CONFIRM_PASSWORD,
                "give your password to set up a second factor",
            ));
        }
        let mut secret = vec![0u8; 20];
        rand::fill(secret.as_mut_slice());
        let encoded = data_encoding::BASE32_NOPAD.encode(&secret);
        let user = who.user_id;
        self.store()
            .write(move |txn| {
                let mut m = load(txn, user)?.unwrap_or_default();
                m.pending = secret;
                store(txn, user, &m)
            })
            .await?;
        let label = percent(&format!("{ISSUER}:{}", who.username));
        Ok(Enrolment {
            uri: format!(
                "otpauth://totp/{label}?secret={encoded}&issuer={ISSUER}&algorithm=SHA1&digits=6&period=30"
            ),
            secret: encoded,
        })
    }

    /// Confirms the pending secret with a code from the app; the second factor is on
    /// from now. Returns the recovery codes (shown once).
    pub async fn confirm_mfa(
        &self,
        who: &Principal,
        code: &str,
    ) -> Result<Vec<String>, KernelError> {
        refuse_token(who, "set up a second factor")?;
        let user = who.user_id;
        let value = normalise(code);
        if value.len() != 6 || !value.bytes().all(|b| b.is_ascii_digit()) {
            return Err(KernelError::invalid(
                "code",
                "give the 6-digit code the app shows",
            ));
        }
        let value: u32 = value.parse().unwrap_or(u32::MAX);
        // Guessing the code would bind a secret the guesser does not know; it is
        // throttled like every secret.
        let attempts = format!("mfa-confirm:{user}");
        self.count_attempt(&attempts, self.clock().now())?;
        let (codes, hashes) = new_recovery_codes();
        let clock = self.shared_clock();
        let event = security_event(MFA_ENABLED, (who.company, user), &who.username, None);
        self.store()
            .write(move |txn| {
                let now = clock.now();
                let mut m = load(txn, user)?.unwrap_or_default();
                if m.pending.is_empty() {
                    return Err(KernelError::Conflict(
                        "start the set-up again: no new secret is waiting".into(),
                    ));
                }
                let step = matching_step(&m.pending, value, step_at(now), i64::MIN)
                    .ok_or_else(|| {
                        KernelError::invalid(
                            "code",
                            "that code does not match; scan the code again and check the phone's clock",
                        )
                    })?;
                m.secret = std::mem::take(&mut m.pending);
                m.last_step = step;
                m.recovery = hashes;
                m.since = now.unix_timestamp();
                store(txn, user, &m)?;
                crate::event::append(txn, stamped(event, clock.as_ref()))?;
                Ok::<_, KernelError>(())
            })
            .await?;
        self.clear_attempts(&attempts);
        tracing::info!(user, "second factor on");
        Ok(codes)
    }

    /// New recovery codes (the old ones stop working), after the password is given again.
    pub async fn renew_recovery_codes(
        &self,
        who: &Principal,
        confirm: Option<String>,
    ) -> Result<Vec<String>, KernelError> {
        refuse_token(who, "renew recovery codes")?;
        if !self.confirm_actor(who, confirm).await? {
            return Err(KernelError::invalid(
                crate::service::CONFIRM_PASSWORD,
                "give your password to renew the recovery codes",
            ));
        }
        let user = who.user_id;
        let (codes, hashes) = new_recovery_codes();
        let clock = self.shared_clock();
        let event = security_event(
            RECOVERY_CODES_RENEWED,
            (who.company, user),
            &who.username,
            None,
        );
        self.store()
            .write(move |txn| {
                let mut m = load(txn, user)?
                    .filter(|m| !m.secret.is_empty())
                    .ok_or_else(|| KernelError::Conflict("you have no second factor yet".into()))?;
                m.recovery = hashes;
                store(txn, user, &m)?;
                crate::event::append(txn, stamped(event, clock.as_ref()))?;
                Ok::<_, KernelError>(())
            })
            .await?;
        Ok(codes)
    }

    /// Turns the user's own second factor off, after their password is given again;
    /// refused while a role of theirs requires one (set up a new phone instead).
    pub async fn disable_mfa(
        &self,
        who: &Principal,
        confirm: Option<String>,
    ) -> Result<(), KernelError> {
        refuse_token(who, "turn off a second factor")?;
        if mfa_required_anywhere(&self.store().read()?, who.user_id)? {
            return Err(KernelError::Conflict(
                "a role you hold requires a second factor; to move to a new phone, set it up again instead".into(),
            ));
        }
        if !self.confirm_actor(who, confirm).await? {
            return Err(KernelError::invalid(
                crate::service::CONFIRM_PASSWORD,
                "give your password to turn the second factor off",
            ));
        }
        self.remove_mfa(who, who.user_id).await
    }

    /// Removes `username`'s second factor as the system (`nexus admin reset-mfa`: a
    /// lost phone and lost recovery codes); they set up a new one at next sign-in.
    pub async fn reset_mfa(&self, username: &str) -> Result<(), KernelError> {
        let (company, user) = {
            let read = self.store().read()?;
            let name = crate::Value::Text(username.trim().to_string());
            crate::service::find_unique(&read, &crate::builtin::USER, "username", &name)?
                .ok_or_else(|| KernelError::NotFound(format!("there is no user \"{username}\"")))?
        };
        self.remove_mfa(&Principal::system(company), user).await
    }

    async fn remove_mfa(&self, who: &Principal, user: u64) -> Result<(), KernelError> {
        let clock = self.shared_clock();
        let mut event = security_event(
            MFA_DISABLED,
            (who.company, who.user_id),
            &who.username,
            None,
        );
        event.record = user;
        self.store()
            .write(move |txn| {
                if !enabled(txn, user)? {
                    return Err(KernelError::Conflict(
                        "there is no second factor to turn off".into(),
                    ));
                }
                forget_in(txn, user);
                crate::event::append(txn, stamped(event, clock.as_ref()))?;
                Ok::<_, KernelError>(())
            })
            .await?;
        tracing::info!(user, "second factor off");
        Ok(())
    }
}

fn refuse_token(who: &Principal, what: &'static str) -> Result<(), KernelError> {
    if who.via_token().is_some() {
        return Err(KernelError::TokenNotAllowed(what));
    }
    if who.system {
        return Err(KernelError::BadRequest(
            "the system has no second factor; sign in as a person".into(),
        ));
    }
    Ok(())
}

/// Whether the role `user` holds in `company` requires a second factor.
pub(crate) fn mfa_required(r: &impl Reader, company: u64, user: u64) -> Result<bool, KernelError> {
    let Some(standing) = access::standing(r, company, user)? else {
        return Ok(false);
    };
    Ok(access::role(r, company, standing.role)?.is_some_and(|role| role.require_mfa))
}

/// Whether any role `user` holds, in any company they may act in, requires one.
fn mfa_required_anywhere(r: &impl Reader, user: u64) -> Result<bool, KernelError> {
    for (company, _) in access::companies_of(r, user)? {
        if mfa_required(r, company, user)? {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238, appendix B (SHA-1), truncated to six digits as apps show them.
    #[test]
    fn codes_match_the_rfc_vectors() {
        let secret = b"12345678901234567890";
        for (t, code) in [
            (59i64, 94_287_082u32),
            (1_111_111_109, 7_081_804),
            (1_111_111_111, 14_050_471),
            (1_234_567_890, 89_005_924),
            (2_000_000_000, 69_279_037),
            (20_000_000_000, 65_353_130),
        ] {
            let step = t.div_euclid(STEP_SECS) as u64;
            assert_eq!(hotp(secret, step, 8), code, "t = {t}");
            assert_eq!(hotp(secret, step, 6), code % 1_000_000, "t = {t}");
        }
    }

    #[test]
    fn a_code_is_accepted_a_step_either_side_and_only_after_the_last_one() {
        let secret = b"12345678901234567890";
        let code = hotp(secret, 100, 6);
        assert_eq!(matching_step(secret, code, 100, 0), Some(100));
        assert_eq!(matching_step(secret, code, 101, 0), Some(100));
        assert_eq!(matching_step(secret, code, 99, 0), Some(100));
        assert_eq!(matching_step(secret, code, 102, 0), None, "too old");
        assert_eq!(matching_step(secret, code, 100, 100), None, "replayed");
    }

    #[test]
    fn recovery_codes_are_distinct_and_read_with_or_without_dashes() {
        let (codes, hashes) = new_recovery_codes();
        assert_eq!(codes.len(), RECOVERY_CODES);
        let unique: std::collections::BTreeSet<_> = codes.iter().collect();
        assert_eq!(unique.len(), RECOVERY_CODES);
        assert_eq!(codes[0].len(), 19, "{}", codes[0]);
        let typed = codes[0].replace('-', " ").to_uppercase();
        assert_eq!(recovery_hash(&typed), hashes[0]);
    }
}
