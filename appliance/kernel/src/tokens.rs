//! API tokens: long-lived credentials for the firm's scripts and tools.
//!
//! A token is `nexus_tok_` and 64 hex digits (256 random bits), shown once when it is
//! made. The store keeps only its BLAKE3 hash (a fast hash suffices for a secret that
//! cannot be guessed), with its user, company, scopes, expiry and request rate. A
//! request that brings it acts as its user in its company with the user's grants as
//! they are *now* narrowed to the token's scopes, so lowering a role lowers every token
//! its holders made, and a deactivated user's tokens stop at once. Through a token
//! nothing that changes access can be done: no password is confirmed, no token made,
//! no session or company switched (see [`Principal::via_token`]). Making and revoking
//! one are security events of the log.

use std::collections::HashMap;

use nexus_store::{Reader, Table};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::auth::{Session, security_event, stamped};
use crate::error::KernelError;
use crate::perm::{Action, Grants, Principal};
use crate::{Kernel, access};

/// What every token starts with (so secret scanners and people recognise one).
pub const TOKEN_PREFIX: &str = "nexus_tok_";
/// The longest a token may live.
pub const MAX_DAYS: u32 = 366;
/// Requests per minute when the maker does not say.
pub const DEFAULT_PER_MINUTE: u32 = 600;
const MAX_PER_MINUTE: u32 = 60_000;
/// Live tokens one user may hold.
const MAX_PER_USER: usize = 50;
const MAX_NAME: usize = 80;
/// How often the last use of a token is written to the store (it is kept in memory
/// between writes, and shown from there).
const LAST_USE_EVERY_SECS: i64 = 3600;

/// Security events' entity names for tokens.
pub const TOKEN_CREATED: &str = "token_created";
pub const TOKEN_REVOKED: &str = "token_revoked";

/// A token as stored (never its secret).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredToken {
    user: u64,
    company: u64,
    name: String,
    scopes: String,
    created: i64,
    expires: i64,
    per_minute: u32,
    #[serde(default)]
    last_used: i64,
}

/// What a new token should be.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    /// What it is for ("nightly bank import"): 1 to 80 characters.
    pub name: String,
    /// The actions it may take, as a role's grants are written (`invoice:r, customer:rc`);
    /// never more than its maker holds.
    pub scopes: String,
    /// Days until it stops working, 1 to 366.
    pub days: u32,
    /// Requests per minute it may make (1 to 60,000); more are answered 429.
    pub per_minute: u32,
}

/// A token as its holder, or an administrator reviewing access, sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// Its handle: the first 8 bytes of the secret's hash, in hex.
    pub id: String,
    pub user: u64,
    /// The user's login name ("" if the user is gone).
    pub username: String,
    pub company: u64,
    pub name: String,
    pub scopes: String,
    pub created: OffsetDateTime,
    pub expires: OffsetDateTime,
    pub per_minute: u32,
    pub last_used: Option<OffsetDateTime>,
    pub expired: bool,
}

/// Per-token request rates and last uses, in memory.
#[derive(Debug, Default)]
pub(crate) struct TokenUse {
    /// Token id → (theoretical arrival time of the next request in ms, last use in s,
    /// the last use written to the store in s).
    by_id: HashMap<String, (i64, i64, i64)>,
}

impl TokenUse {
    /// Admits one request at `now_ms` for a token allowed `per_minute` requests per
    /// minute (GCRA: a burst of a tenth of a minute's allowance, then the steady rate),
    /// or says how many seconds to wait.
    /// Says whether the last use should be written to the store now (`stored` is
    /// the one it holds).
    fn admit(&mut self, id: &str, per_minute: u32, now_ms: i64, stored: i64) -> Result<bool, u64> {
        if self.by_id.len() > 100_000 {
            self.by_id.retain(|_, (tat, _, _)| *tat > now_ms);
        }
        let interval = 60_000 / i64::from(per_minute.max(1));
        let burst = (i64::from(per_minute) / 10).max(1) * interval;
        let entry = self
            .by_id
            .entry(id.to_string())
            .or_insert((now_ms, 0, stored));
        let tat = entry.0.max(now_ms) + interval;
        if tat - now_ms > burst {
            let wait_ms = tat - now_ms - burst;
            return Err(((wait_ms + 999) / 1000).max(1) as u64);
        }
        entry.0 = tat;
        entry.1 = now_ms / 1000;
        let write = entry.1 - entry.2.max(stored) >= LAST_USE_EVERY_SECS;
        if write {
            entry.2 = entry.1;
        }
        Ok(write)
    }

    fn last_used(&self, id: &str) -> Option<i64> {
        self.by_id
            .get(id)
            .map(|(_, at, _)| *at)
            .filter(|at| *at > 0)
    }
}

fn token_key(secret: &str) -> Vec<u8> {
    blake3::hash(secret.as_bytes()).as_bytes().to_vec()
}

fn token_id(key: &[u8]) -> String {
    hex::encode(key.get(..8).unwrap_or(key))
}

fn encode(t: &StoredToken) -> Result<Vec<u8>, KernelError> {
    let mut bytes = Vec::new();
    ciborium::into_writer(t, &mut bytes)
        .map_err(|e| KernelError::Internal(format!("encoding a token: {e}")))?;
    Ok(bytes)
}

fn decode(bytes: &[u8]) -> Option<StoredToken> {
    ciborium::from_reader(bytes).ok()
}

fn time_of(secs: i64) -> Result<OffsetDateTime, KernelError> {
    OffsetDateTime::from_unix_timestamp(secs)
        .map_err(|_| KernelError::Internal("a token's time is damaged".into()))
}

/// Whether `given` has the shape of a token (so a wrong header is told apart from a
/// wrong token only by its shape, never by a lookup).
fn well_formed(given: &str) -> bool {
    given
        .strip_prefix(TOKEN_PREFIX)
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

impl TokenRequest {
    /// Checks the request against the limits and the maker's own grants.
    fn check(&self, holder: &Grants) -> Result<(String, Grants), KernelError> {
        let mut errors = crate::FieldErrors::default();
        let name = self.name.trim().to_string();
        if name.is_empty() {
            errors.push(
                "name",
                "say what the token is for (e.g. \"nightly bank import\")",
            );
        } else if name.chars().count() > MAX_NAME {
            errors.push("name", format!("at most {MAX_NAME} characters"));
        } else if name.chars().any(char::is_control) {
            errors.push("name", "no control characters");
        }
        let scopes = match Grants::parse(&self.scopes) {
            Ok(g) if g.is_empty() => {
                errors.push("scopes", "give at least one, e.g. invoice:r");
                None
            }
            Ok(g) => {
                let beyond = holder.excess(&g);
                if beyond.is_empty() {
                    Some(g)
                } else {
                    errors.push(
                        "scopes",
                        format!(
                            "a token cannot do more than you may: you do not hold {}",
                            beyond.join(", ")
                        ),
                    );
                    None
                }
            }
            Err(m) => {
                errors.push("scopes", m);
                None
            }
        };
        if !(1..=MAX_DAYS).contains(&self.days) {
            errors.push("days", format!("from 1 to {MAX_DAYS} days"));
        }
        if !(1..=MAX_PER_MINUTE).contains(&self.per_minute) {
            errors.push(
                "per_minute",
                format!("from 1 to {MAX_PER_MINUTE} requests a minute"),
            );
        }
        match scopes {
            Some(g) if errors.is_empty() => Ok((name, g)),
            _ => Err(KernelError::Invalid(errors)),
        }
    }
}

impl Kernel {
    /// Makes an API token for the signed-in user in the company they work in, after
    /// their password was given again; returns the secret (shown once) and the token.
    pub async fn create_token(
        &self,
        who: &Principal,
        request: TokenRequest,
        confirm: Option<String>,
    ) -> Result<(String, TokenInfo), KernelError> {
        if who.via_token().is_some() {
            return Err(KernelError::TokenNotAllowed("make another token"));
        }
        let (name, scopes) = request.check(who.grants())?;
        if !self.confirm_actor(who, confirm).await? {
            return Err(KernelError::invalid(
                crate::service::CONFIRM_PASSWORD,
                "give your password to make a token",
            ));
        }
        self.issue_token(who, who.company, who.user_id, (name, scopes), &request)
            .await
    }

    /// Makes a token for `username` in `company` as the system (the CLI, for IT's
    /// scripts); the scopes are bounded by the user's grants there.
    pub async fn create_token_for(
        &self,
        company: u64,
        username: &str,
        request: TokenRequest,
    ) -> Result<(String, TokenInfo), KernelError> {
        let missing = || {
            KernelError::NotFound(format!(
                "there is no active user \"{username}\" who may work in company {company}"
            ))
        };
        let user = {
            let read = self.store().read()?;
            let name = crate::Value::Text(username.trim().to_string());
            let (_, user) =
                crate::service::find_unique(&read, &crate::builtin::USER, "username", &name)?
                    .ok_or_else(missing)?;
            access::standing(&read, company, user)?.ok_or_else(missing)?;
            user
        };
        let holder = self.principal_of(company, user)?;
        let checked = request.check(holder.grants())?;
        self.issue_token(
            &Principal::system(company),
            company,
            user,
            checked,
            &request,
        )
        .await
    }

    async fn issue_token(
        &self,
        actor: &Principal,
        company: u64,
        user: u64,
        (name, scopes): (String, Grants),
        request: &TokenRequest,
    ) -> Result<(String, TokenInfo), KernelError> {
        let now = self.clock().now().unix_timestamp();
        let secret = format!("{TOKEN_PREFIX}{}", crate::auth::random_token());
        let key = token_key(&secret);
        let id = token_id(&key);
        let stored = StoredToken {
            user,
            company,
            name,
            scopes: scopes.to_string(),
            created: now,
            expires: now + i64::from(request.days) * 86_400,
            per_minute: request.per_minute,
            last_used: 0,
        };
        let mut info = self.info_of(&id, &stored)?;
        if let Some((_, holder)) = access::home_of(&self.store().read()?, user, company)? {
            info.username = holder.username;
        }
        let bytes = encode(&stored)?;
        let mut event = security_event(
            TOKEN_CREATED,
            (company, actor.user_id),
            &actor.username,
            None,
        );
        event.record = user;
        if let Some(after) = event.after.as_mut() {
            after.insert("token".into(), serde_json::json!(id));
            after.insert("user".into(), serde_json::json!(user));
            after.insert("name".into(), serde_json::json!(stored.name));
            after.insert("scopes".into(), serde_json::json!(stored.scopes));
            after.insert(
                "expires".into(),
                serde_json::json!(crate::rfc3339(info.expires)),
            );
        }
        let clock = self.shared_clock();
        self.store()
            .write(move |txn| {
                let live = txn
                    .scan_prefix(Table::Tokens, &[])?
                    .iter()
                    .filter_map(|(_, b)| decode(b))
                    .filter(|t| t.user == user && t.expires > now)
                    .count();
                if live >= MAX_PER_USER {
                    return Err(KernelError::Conflict(format!(
                        "this user already holds {MAX_PER_USER} live tokens; revoke one first"
                    )));
                }
                txn.put(Table::Tokens, key, bytes);
                crate::event::append(txn, stamped(event, clock.as_ref()))?;
                Ok::<_, KernelError>(())
            })
            .await?;
        tracing::info!(user, company, token = %info.id, "API token made");
        Ok((secret, info))
    }

    /// The session a request bringing `secret` acts in: the token's user in its
    /// company, narrowed to its scopes, within its request rate.
    pub fn token_session(&self, secret: &str) -> Result<Session, KernelError> {
        if !well_formed(secret) {
            return Err(KernelError::Unauthenticated);
        }
        let key = token_key(secret);
        let read = self.store().read()?;
        let stored = read
            .get(Table::Tokens, &key)?
            .and_then(|b| decode(&b))
            .ok_or(KernelError::Unauthenticated)?;
        let now = self.clock().now();
        if stored.expires <= now.unix_timestamp() {
            return Err(KernelError::Unauthenticated);
        }
        let scopes = Grants::parse(&stored.scopes)
            .map_err(|e| KernelError::Internal(format!("a token's scopes are damaged: {e}")))?;
        let principal = self
            .principal_in(&read, stored.company, stored.user)?
            .through_token(token_id(&key), &scopes);
        let id = token_id(&key);
        let now_ms = (now.unix_timestamp_nanos() / 1_000_000) as i64;
        let write = self
            .token_use()
            .admit(&id, stored.per_minute, now_ms, stored.last_used)
            .map_err(|retry_after_secs| KernelError::RateLimited { retry_after_secs })?;
        if write {
            self.remember_use(key, now.unix_timestamp());
        }
        Session::for_token(principal, stored.expires, self.clone())
    }

    /// Writes a token's last use, in the background (a request does not wait for it).
    fn remember_use(&self, key: Vec<u8>, at: i64) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let store = self.store().clone();
        runtime.spawn(async move {
            let written = store
                .write(move |txn| {
                    if let Some(mut t) = txn.get(Table::Tokens, &key)?.and_then(|b| decode(&b)) {
                        t.last_used = at;
                        txn.put(Table::Tokens, key, encode(&t)?);
                    }
                    Ok::<_, KernelError>(())
                })
                .await;
            if let Err(e) = written {
                tracing::warn!(error = %e, "could not record a token's last use");
            }
        });
    }

    /// The signed-in user's tokens (in every company), newest first.
    pub fn tokens_of(&self, who: &Principal) -> Result<Vec<TokenInfo>, KernelError> {
        self.tokens_where(|t| t.user == who.user_id)
    }

    /// Every token that acts in the company `who` works in, to revoke one (needs
    /// permission to edit users).
    pub fn company_tokens(&self, who: &Principal) -> Result<Vec<TokenInfo>, KernelError> {
        if !who.can("user", Action::Write) {
            return Err(KernelError::Forbidden {
                action: Action::Read.verb(),
                entity: "users' tokens (those who may edit users may)".into(),
            });
        }
        self.tokens_in(who.company)
    }

    /// Every token acting in `company`, unchecked (the access review checks its own).
    pub(crate) fn tokens_in(&self, company: u64) -> Result<Vec<TokenInfo>, KernelError> {
        self.tokens_where(|t| t.company == company)
    }

    fn tokens_where(
        &self,
        keep: impl Fn(&StoredToken) -> bool,
    ) -> Result<Vec<TokenInfo>, KernelError> {
        let read = self.store().read()?;
        let mut out = Vec::new();
        for (key, bytes) in read.scan_prefix(Table::Tokens, &[])? {
            if let Some(t) = decode(&bytes).filter(|t| keep(t)) {
                let mut info = self.info_of(&token_id(&key), &t)?;
                if let Some((_, user)) = access::home_of(&read, t.user, t.company)? {
                    info.username = user.username;
                }
                out.push(info);
            }
        }
        out.sort_by_key(|t| std::cmp::Reverse(t.created));
        Ok(out)
    }

    fn info_of(&self, id: &str, t: &StoredToken) -> Result<TokenInfo, KernelError> {
        let last = self.token_use().last_used(id).unwrap_or(0).max(t.last_used);
        Ok(TokenInfo {
            id: id.to_string(),
            user: t.user,
            username: String::new(),
            company: t.company,
            name: t.name.clone(),
            scopes: t.scopes.clone(),
            created: time_of(t.created)?,
            expires: time_of(t.expires)?,
            per_minute: t.per_minute,
            last_used: (last > 0).then(|| time_of(last)).transpose()?,
            expired: t.expires <= self.clock().now().unix_timestamp(),
        })
    }

    /// Revokes a token: the user's own, or (with permission to edit users) any that
    /// acts in the company `who` works in. It stops working at once.
    pub async fn revoke_token(&self, who: &Principal, id: &str) -> Result<(), KernelError> {
        if who.via_token().is_some() {
            return Err(KernelError::TokenNotAllowed("revoke tokens"));
        }
        let id = id.to_ascii_lowercase();
        let message = format!("there is no token {id} that you may revoke");
        let not_found = move || KernelError::NotFound(message.clone());
        if id.len() != 16 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(not_found());
        }
        let prefix = hex::decode(&id).map_err(|_| not_found())?;
        let who = who.clone();
        let clock = self.shared_clock();
        self.store()
            .write(move |txn| {
                let mut found = None;
                for (key, bytes) in txn.scan_prefix(Table::Tokens, &prefix)? {
                    if let Some(t) = decode(&bytes) {
                        let mine = t.user == who.user_id;
                        let administered =
                            t.company == who.company && who.can("user", Action::Write);
                        if mine || administered {
                            found = Some((key, t));
                        }
                    }
                }
                let (key, t) = found.ok_or_else(not_found)?;
                txn.delete(Table::Tokens, key);
                let mut event = security_event(
                    TOKEN_REVOKED,
                    (who.company, who.user_id),
                    &who.username,
                    None,
                );
                event.record = t.user;
                if let Some(after) = event.after.as_mut() {
                    after.insert("token".into(), serde_json::json!(id));
                    after.insert("user".into(), serde_json::json!(t.user));
                    after.insert("name".into(), serde_json::json!(t.name));
                }
                crate::event::append(txn, stamped(event, clock.as_ref()))?;
                Ok::<_, KernelError>(())
            })
            .await
    }
}

/// Removes every token of `user` in this command (the user is deleted).
pub(crate) fn revoke_all_in(
    txn: &mut nexus_store::Txn<'_, '_>,
    user: u64,
) -> Result<usize, KernelError> {
    let mut revoked = 0;
    for (key, bytes) in txn.scan_prefix(Table::Tokens, &[])? {
        if decode(&bytes).is_some_and(|t| t.user == user) {
            txn.delete(Table::Tokens, key);
            revoked += 1;
        }
    }
    Ok(revoked)
}

impl Session {
    fn for_token(
        principal: Principal,
        expires: i64,
        kernel: Kernel,
    ) -> Result<Session, KernelError> {
        let expires = time_of(expires)?;
        Ok(Session::new(principal, String::new(), expires, kernel))
    }
}
