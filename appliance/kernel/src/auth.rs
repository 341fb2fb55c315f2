//! Sign-in, sessions, login throttling and the first-boot setup token.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use nexus_store::{Table, decode_u64, u64_key};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use time::{Duration, OffsetDateTime};

use crate::builtin::{COMPANY, ROLE, Role, USER, User};
use crate::error::{FieldErrors, KernelError};
use crate::perm::{Grants, Principal};
use crate::record::{Record, keys};
use crate::service::{find_unique, insert_as, insert_as_system};
use crate::typed::Typed;
use crate::value::Value;
use crate::{Kernel, access, password};

/// How long a session lasts after sign-in.
pub const SESSION_LIFETIME: Duration = Duration::hours(12);
/// Failures allowed for one login name before it is locked for a while.
const USER_FAILURES: u32 = 5;
/// Failures allowed from one address (across names) before it is locked.
const IP_FAILURES: u32 = 20;
const FIRST_LOCK_SECS: i64 = 30;
const MAX_LOCK_SECS: i64 = 15 * 60;
const META_DEFAULT_COMPANY: &[u8] = b"default_company";

/// A signed-in session as stored (the token itself is never stored, only its hash).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredSession {
    user: u64,
    company: u64,
    csrf: String,
    expires: i64,
    /// When it was signed in (Unix seconds; 0 for sessions from before this was kept).
    #[serde(default)]
    created: i64,
    /// The address it signed in from, when known.
    #[serde(default)]
    address: Option<String>,
}

/// One of a user's sessions, as they may see it (never its token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// A handle to revoke it by: the first 8 bytes of the token's hash, in hex.
    pub id: String,
    pub created: Option<OffsetDateTime>,
    pub expires: OffsetDateTime,
    pub company: u64,
    pub address: Option<String>,
    /// Whether it is the session asking.
    pub current: bool,
}

/// A live session: who, and the CSRF token its forms must echo.
#[derive(Clone)]
pub struct Session {
    pub principal: Principal,
    pub csrf: String,
    pub expires: OffsetDateTime,
    /// The companies the user may switch to, read the first time a page asks (an API
    /// request never does: it is built for every request).
    companies: Arc<OnceLock<Vec<(u64, String)>>>,
    kernel: Kernel,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("principal", &self.principal)
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

impl Session {
    pub(crate) fn new(
        principal: Principal,
        csrf: String,
        expires: OffsetDateTime,
        kernel: Kernel,
    ) -> Session {
        Session {
            principal,
            csrf,
            expires,
            companies: Arc::default(),
            kernel,
        }
    }

    /// The companies the user may switch to, (id, name), the current one included.
    /// Should the store fail to answer, just the current one.
    pub fn companies(&self) -> &[(u64, String)] {
        self.companies.get_or_init(|| {
            let read = self.kernel.store().read().map_err(KernelError::from);
            match read.and_then(|r| access::companies_of(&r, self.principal.user_id)) {
                Ok(list) => list,
                Err(e) => {
                    tracing::warn!(error = %e, "could not list the user's companies");
                    vec![(self.principal.company, self.principal.company_name.clone())]
                }
            }
        })
    }
}

/// How long the second step of a sign-in may wait for its code.
const TICKET_LIFETIME: Duration = Duration::minutes(5);
/// Codes one ticket may try.
const TICKET_ATTEMPTS: u32 = 5;
/// Sign-ins that may wait for one user's code at once.
const TICKETS_PER_USER: usize = 3;

/// The outcome of a correct password.
#[derive(Debug)]
pub enum SignIn {
    /// Signed in: the session token (for the cookie) and the session.
    Done(String, Box<Session>),
    /// The user has a second factor: a ticket for [`Kernel::sign_in_with_code`].
    NeedsCode(String),
}

/// A sign-in whose password was right, waiting for its second factor's code.
#[derive(Debug, Clone)]
pub(crate) struct PendingSignIn {
    company: u64,
    user: u64,
    username: String,
    from: Option<IpAddr>,
    expires: OffsetDateTime,
    attempts: u32,
}

#[derive(Debug, Default)]
pub(crate) struct Throttle {
    failures: HashMap<String, (u32, OffsetDateTime)>,
    /// `blake3(ticket)` → a sign-in waiting for its code.
    pending: HashMap<Vec<u8>, PendingSignIn>,
}

fn user_key(username: &str) -> String {
    format!("user:{}", username.trim().to_lowercase())
}

impl Throttle {
    fn check(&self, key: &str, now: OffsetDateTime) -> Result<(), KernelError> {
        match self.failures.get(key) {
            Some((_, until)) if *until > now => Err(KernelError::Throttled {
                retry_after_secs: (*until - now).whole_seconds().max(1) as u64,
            }),
            _ => Ok(()),
        }
    }

    fn fail(&mut self, key: String, limit: u32, now: OffsetDateTime) {
        if self.failures.len() > 100_000 {
            self.failures.retain(|_, (_, until)| *until > now);
        }
        let entry = self.failures.entry(key).or_insert((0, now));
        entry.0 += 1;
        if entry.0 >= limit {
            let over = (entry.0 - limit).min(10);
            let secs = (FIRST_LOCK_SECS << over).min(MAX_LOCK_SECS);
            entry.1 = now + Duration::seconds(secs);
        }
    }
}

pub(crate) fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    hex::encode(bytes)
}

fn session_key(token: &str) -> Vec<u8> {
    blake3::hash(token.as_bytes()).as_bytes().to_vec()
}

impl Kernel {
    /// Signs in a user without a second factor; returns the session token (for the
    /// cookie) and the session. A user with one is refused with
    /// [`KernelError::CodeRequired`]: use [`Kernel::sign_in`].
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        from: Option<IpAddr>,
    ) -> Result<(String, Session), KernelError> {
        match self.sign_in(username, password, None, from).await? {
            SignIn::Done(token, session) => Ok((token, *session)),
            SignIn::NeedsCode(_) => Err(KernelError::CodeRequired),
        }
    }

    /// Signs in. A user with a second factor needs its code too: given here, it is
    /// checked at once (the API); not given, the answer is a ticket for
    /// [`Kernel::sign_in_with_code`] (the sign-in form's second step), valid five
    /// minutes, so the password is not sent again.
    pub async fn sign_in(
        &self,
        username: &str,
        password: &str,
        code: Option<&str>,
        from: Option<IpAddr>,
    ) -> Result<SignIn, KernelError> {
        let (company, user) = self.check_password(username, password, from).await?;
        let has_factor = crate::mfa::enabled(&self.store().read()?, user)?;
        if !has_factor {
            let (token, session) = self
                .open_session(company, user, username, from, None)
                .await?;
            return Ok(SignIn::Done(token, Box::new(session)));
        }
        match code {
            Some(code) => {
                let (token, session) = self
                    .open_session(company, user, username, from, Some(code))
                    .await?;
                Ok(SignIn::Done(token, Box::new(session)))
            }
            None => {
                let ticket = random_token();
                let now = self.clock().now();
                let mut throttle = self.throttle();
                throttle.pending.retain(|_, p| p.expires > now);
                // A few sign-ins may wait for one user's code at once (two browsers);
                // more are the password's guesser multiplying its tries: the oldest go.
                let mut waiting: Vec<(Vec<u8>, OffsetDateTime)> = throttle
                    .pending
                    .iter()
                    .filter(|(_, p)| p.user == user)
                    .map(|(k, p)| (k.clone(), p.expires))
                    .collect();
                if waiting.len() >= TICKETS_PER_USER {
                    waiting.sort_by_key(|(_, expires)| *expires);
                    for (k, _) in &waiting[..=waiting.len() - TICKETS_PER_USER] {
                        throttle.pending.remove(k);
                    }
                }
                throttle.pending.insert(
                    session_key(&ticket),
                    PendingSignIn {
                        company,
                        user,
                        username: username.trim().to_string(),
                        from,
                        expires: now + TICKET_LIFETIME,
                        attempts: 0,
                    },
                );
                Ok(SignIn::NeedsCode(ticket))
            }
        }
    }

    /// The second step of a sign-in with a second factor: the ticket from
    /// [`Kernel::sign_in`] and a code from the app (or a recovery code).
    pub async fn sign_in_with_code(
        &self,
        ticket: &str,
        code: &str,
        from: Option<IpAddr>,
    ) -> Result<(String, Session), KernelError> {
        let key = session_key(ticket);
        let now = self.clock().now();
        let pending = {
            let mut throttle = self.throttle();
            let Some(p) = throttle.pending.get_mut(&key).filter(|p| p.expires > now) else {
                throttle.pending.remove(&key);
                return Err(KernelError::BadRequest(
                    "the sign-in has expired; sign in again with your password".into(),
                ));
            };
            p.attempts += 1;
            let pending = p.clone();
            if pending.attempts >= TICKET_ATTEMPTS {
                throttle.pending.remove(&key);
            }
            pending
        };
        let result = self
            .open_session(
                pending.company,
                pending.user,
                &pending.username,
                from.or(pending.from),
                Some(code),
            )
            .await;
        if result.is_ok() {
            self.throttle().pending.remove(&key);
        }
        result
    }

    /// Checks a login name and password (throttled per name and per address; a
    /// refusal is a security event of the log); returns (home company, user).
    async fn check_password(
        &self,
        username: &str,
        password: &str,
        from: Option<IpAddr>,
    ) -> Result<(u64, u64), KernelError> {
        let now = self.clock().now();
        let user_key = user_key(username);
        let ip_key = from.map(|ip| format!("ip:{ip}"));
        {
            let throttle = self.throttle();
            throttle.check(&user_key, now)?;
            if let Some(k) = &ip_key {
                throttle.check(k, now)?;
            }
        }
        let found = {
            let read = self.store().read()?;
            match find_unique(
                &read,
                &USER,
                "username",
                &Value::Text(username.trim().to_string()),
            )? {
                Some((company, id)) => {
                    let hash = read
                        .get(Table::Credentials, &u64_key(id))?
                        .and_then(|b| String::from_utf8(b).ok());
                    let rec = read.get(Table::Records, &keys::record(&USER, company, id))?;
                    let active = match rec {
                        Some(b) => User::from_record(&Record::decode(&USER, &b)?)?.active,
                        None => false,
                    };
                    Some((company, id, hash, active))
                }
                None => None,
            }
        };
        let stored_hash = found.as_ref().and_then(|(_, _, h, _)| h.clone());
        let ok = password::verify(password.to_string(), stored_hash).await;
        match found {
            Some((company, id, _, true)) if ok => Ok((company, id)),
            _ => {
                let who = found.map_or((0, 0), |(c, id, _, _)| (c, id));
                self.refuse_sign_in(who, username, from, "password").await?;
                Err(KernelError::BadCredentials)
            }
        }
    }

    /// Counts a failed sign-in against the name and the address, and logs it (the
    /// throttle bounds how fast a guesser can grow the log).
    async fn refuse_sign_in(
        &self,
        (company, user): (u64, u64),
        username: &str,
        from: Option<IpAddr>,
        reason: &'static str,
    ) -> Result<(), KernelError> {
        let now = self.clock().now();
        {
            let mut throttle = self.throttle();
            throttle.fail(user_key(username), USER_FAILURES, now);
            if let Some(ip) = from {
                throttle.fail(format!("ip:{ip}"), IP_FAILURES, now);
            }
        }
        tracing::info!(username, ?from, reason, "sign-in refused");
        let clock = self.shared_clock();
        let mut event = security_event(SIGN_IN_REFUSED, (company, user), username, from);
        if let Some(after) = event.after.as_mut() {
            after.insert("reason".into(), serde_json::Value::String(reason.into()));
        }
        self.store()
            .write(move |txn| {
                crate::event::append(txn, stamped(event, clock.as_ref()))?;
                Ok::<_, KernelError>(())
            })
            .await
    }

    /// Counts an attempt at a secret (a code, a password given again) before it is
    /// checked, so concurrent guesses cannot all slip in before the first failure is
    /// recorded; refused while `key` is locked. A right answer calls
    /// [`Kernel::clear_attempts`].
    pub(crate) fn count_attempt(&self, key: &str, now: OffsetDateTime) -> Result<(), KernelError> {
        let mut throttle = self.throttle();
        throttle.check(key, now)?;
        throttle.fail(key.to_string(), USER_FAILURES, now);
        Ok(())
    }

    /// Forgets the attempts counted against `key` (its secret was given right).
    pub(crate) fn clear_attempts(&self, key: &str) {
        self.throttle().failures.remove(key);
    }

    /// Stores a new session for `user` (their second factor's code used up in the same
    /// command, when one is given) and logs the sign-in.
    async fn open_session(
        &self,
        company: u64,
        user: u64,
        username: &str,
        from: Option<IpAddr>,
        code: Option<&str>,
    ) -> Result<(String, Session), KernelError> {
        let now = self.clock().now();
        let name_key = user_key(username);
        // A code is counted against the name before it is tried (a right one clears
        // the count), so parallel guesses on many tickets meet the lock together.
        let code_key = format!("code:{user}");
        if code.is_some() {
            self.count_attempt(&code_key, now)?;
        }
        self.throttle().check(&name_key, now)?;
        let token = random_token();
        let stored = StoredSession {
            user,
            company,
            csrf: random_token(),
            expires: (now + SESSION_LIFETIME).unix_timestamp(),
            created: now.unix_timestamp(),
            address: from.map(|a| a.to_string()),
        };
        let mut bytes = Vec::new();
        ciborium::into_writer(&stored, &mut bytes)
            .map_err(|e| KernelError::Internal(format!("encoding a session: {e}")))?;
        let key = session_key(&token);
        let event = security_event(SIGN_IN, (company, user), username, from);
        let recovery_event = security_event(
            crate::mfa::RECOVERY_CODE_USED,
            (company, user),
            username,
            from,
        );
        let clock = self.shared_clock();
        let code = code.map(str::to_string);
        let written = self
            .store()
            .write(move |txn| {
                if let Some(code) = &code
                    && crate::mfa::consume(txn, user, code, clock.now())?
                {
                    crate::event::append(txn, stamped(recovery_event, clock.as_ref()))?;
                }
                txn.put(Table::Sessions, key, bytes);
                crate::review::note_sign_in(txn, user, clock.now().unix_timestamp());
                crate::event::append(txn, stamped(event, clock.as_ref()))?;
                Ok::<_, KernelError>(())
            })
            .await;
        match written {
            Ok(()) => {}
            Err(e @ KernelError::Invalid(_)) => {
                self.refuse_sign_in((company, user), username, from, "second factor")
                    .await?;
                return Err(e);
            }
            Err(e) => return Err(e),
        }
        self.clear_attempts(&name_key);
        self.clear_attempts(&code_key);
        let session = self.session(&token)?;
        tracing::info!(username, ?from, "signed in");
        Ok((token, session))
    }

    /// The live session for a cookie token.
    pub fn session(&self, token: &str) -> Result<Session, KernelError> {
        let read = self.store().read()?;
        let (stored, expires) = self.live_session(&read, token)?;
        let principal = self.principal_in(&read, stored.company, stored.user)?;
        Ok(Session {
            principal,
            csrf: stored.csrf,
            expires,
            companies: Arc::default(),
            kernel: self.clone(),
        })
    }

    /// Who the session of `token` acts as now (role, grants and company read again),
    /// without the list of companies: for long-lived streams that check it often
    /// (signing out, a password reset, a deactivation or a lost membership ends it).
    pub fn acting(&self, token: &str) -> Result<Principal, KernelError> {
        let read = self.store().read()?;
        let (stored, _) = self.live_session(&read, token)?;
        self.principal_in(&read, stored.company, stored.user)
    }

    fn live_session(
        &self,
        read: &nexus_store::ReadTxn,
        token: &str,
    ) -> Result<(StoredSession, OffsetDateTime), KernelError> {
        let bytes = read
            .get(Table::Sessions, &session_key(token))?
            .ok_or(KernelError::Unauthenticated)?;
        let stored: StoredSession =
            ciborium::from_reader(bytes.as_slice()).map_err(|_| KernelError::Unauthenticated)?;
        let expires = OffsetDateTime::from_unix_timestamp(stored.expires)
            .map_err(|_| KernelError::Unauthenticated)?;
        if expires <= self.clock().now() {
            return Err(KernelError::Unauthenticated);
        }
        Ok((stored, expires))
    }

    /// The principal of `user` in `company` as they are now (role and grants read
    /// again); an inactive or missing user cannot act.
    pub(crate) fn principal_of(&self, company: u64, user: u64) -> Result<Principal, KernelError> {
        let read = self.store().read()?;
        self.principal_in(&read, company, user)
    }

    pub(crate) fn principal_in(
        &self,
        read: &nexus_store::ReadTxn,
        company: u64,
        user: u64,
    ) -> Result<Principal, KernelError> {
        let standing =
            access::standing(read, company, user)?.ok_or(KernelError::Unauthenticated)?;
        let role = access::role(read, company, standing.role)?;
        let (role_name, grants) = match &role {
            Some(r) => (r.name.clone(), access::grants_of(Some(r))),
            None => ("(no role)".to_string(), Grants::default()),
        };
        // A role that requires a second factor grants nothing until its holder has one.
        let must_enrol =
            role.as_ref().is_some_and(|r| r.require_mfa) && !crate::mfa::enabled(read, user)?;
        let grants = if must_enrol {
            Grants::default()
        } else {
            grants
        };
        let box_admin = match read
            .get(Table::Meta, META_DEFAULT_COMPANY)?
            .and_then(|b| decode_u64(&b))
        {
            Some(first) if first == company => access::administers(&grants),
            // Administering the box through the first company's role needs what that
            // role needs: its second factor too.
            Some(first) => {
                access::administers(&access::grants_in(read, first, user)?)
                    && (!crate::mfa::mfa_required(read, first, user)?
                        || crate::mfa::enabled(read, user)?)
            }
            None => false,
        };
        let principal = Principal::new(
            user,
            standing.user.username,
            standing.user.full_name,
            (company, access::company_name(read, company)?),
            standing.home,
            (role_name, grants),
            box_admin && !must_enrol,
        );
        Ok(if must_enrol {
            principal.until_enrolled()
        } else {
            principal
        })
    }

    /// Moves a session to another company its user may act in (their home company or
    /// one they are a member of); another company is "not found", as if it did not
    /// exist. The session keeps its token and CSRF token.
    pub async fn switch_company(&self, token: &str, company: u64) -> Result<Session, KernelError> {
        let (mut stored, username) = {
            let read = self.store().read()?;
            let (stored, _) = self.live_session(&read, token)?;
            let Some(standing) = access::standing(&read, company, stored.user)? else {
                return Err(KernelError::NotFound(format!(
                    "there is no company with id {company} that you may work in"
                )));
            };
            (stored, standing.user.username)
        };
        stored.company = company;
        let mut bytes = Vec::new();
        ciborium::into_writer(&stored, &mut bytes)
            .map_err(|e| KernelError::Internal(format!("encoding a session: {e}")))?;
        let key = session_key(token);
        let user = stored.user;
        let clock = self.shared_clock();
        let event = security_event(SWITCH_COMPANY, (company, user), &username, None);
        self.store()
            .write(move |txn| {
                // Signed out meanwhile: do not bring the session back.
                if txn.get(Table::Sessions, &key)?.is_none() {
                    return Err(KernelError::Unauthenticated);
                }
                txn.put(Table::Sessions, key, bytes);
                crate::event::append(txn, stamped(event, clock.as_ref()))?;
                Ok::<_, KernelError>(())
            })
            .await?;
        tracing::info!(user, company, "switched company");
        self.session(token)
    }

    /// Checks the acting user's own password, given again to confirm a change of
    /// access: `Ok(false)` when none was given, `Ok(true)` when it is theirs, refused
    /// (and counted like a failed sign-in, so it cannot be guessed) when it is not.
    pub(crate) async fn confirm_actor(
        &self,
        who: &Principal,
        given: Option<String>,
    ) -> Result<bool, KernelError> {
        let Some(given) = given else {
            return Ok(false);
        };
        if who.via_token().is_some() {
            return Err(KernelError::TokenNotAllowed(
                "confirm a change with a password",
            ));
        }
        let now = self.clock().now();
        let key = format!("confirm:{}:{}", who.company, who.user_id);
        self.count_attempt(&key, now)?;
        let stored = self
            .store()
            .read()?
            .get(Table::Credentials, &u64_key(who.user_id))?
            .and_then(|b| String::from_utf8(b).ok());
        if password::verify(given, stored).await {
            self.clear_attempts(&key);
            Ok(true)
        } else {
            Err(KernelError::invalid(
                crate::service::CONFIRM_PASSWORD,
                "that is not your password",
            ))
        }
    }

    /// Ends a session.
    pub async fn logout(&self, token: &str) -> Result<(), KernelError> {
        let key = session_key(token);
        let who = self.session(token).ok().map(|s| s.principal);
        let clock = self.shared_clock();
        self.store()
            .write(move |txn| {
                if txn.get(Table::Sessions, &key)?.is_some()
                    && let Some(who) = who
                {
                    let event =
                        security_event(SIGN_OUT, (who.company, who.user_id), &who.username, None);
                    crate::event::append(txn, stamped(event, clock.as_ref()))?;
                }
                txn.delete(Table::Sessions, key);
                Ok::<_, KernelError>(())
            })
            .await
    }

    /// The live sessions of the user signed in with `token`, newest first.
    pub fn sessions_of(&self, token: &str) -> Result<Vec<SessionInfo>, KernelError> {
        let read = self.store().read()?;
        let (me, _) = self.live_session(&read, token)?;
        let mine = session_key(token);
        let now = self.clock().now().unix_timestamp();
        let mut out = Vec::new();
        for (key, bytes) in nexus_store::Reader::scan_prefix(&read, Table::Sessions, &[])? {
            let Ok(s) = ciborium::from_reader::<StoredSession, _>(bytes.as_slice()) else {
                continue;
            };
            if s.user != me.user || s.expires <= now {
                continue;
            }
            out.push(SessionInfo {
                id: hex::encode(key.get(..8).unwrap_or(&key)),
                created: (s.created > 0)
                    .then(|| OffsetDateTime::from_unix_timestamp(s.created).ok())
                    .flatten(),
                expires: OffsetDateTime::from_unix_timestamp(s.expires)
                    .map_err(|_| KernelError::Internal("a session's expiry is damaged".into()))?,
                company: s.company,
                address: s.address,
                current: key == mine,
            });
        }
        out.sort_by_key(|s| std::cmp::Reverse(s.created));
        Ok(out)
    }

    /// Ends one of the signed-in user's own sessions (`id` from [`Kernel::sessions_of`]);
    /// another user's, or one that is gone, is "not found". A security event of the log.
    pub async fn revoke_session(&self, token: &str, id: &str) -> Result<(), KernelError> {
        let who = self.session(token)?.principal;
        let clock = self.shared_clock();
        let id = id.to_ascii_lowercase();
        let message = format!("there is no session {id} of yours to end");
        let not_found = move || KernelError::NotFound(message.clone());
        if id.len() != 16 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(not_found());
        }
        let prefix = hex::decode(&id).map_err(|_| not_found())?;
        self.store()
            .write(move |txn| {
                let mut found = None;
                for (key, bytes) in txn.scan_prefix(Table::Sessions, &prefix)? {
                    if let Ok(s) = ciborium::from_reader::<StoredSession, _>(bytes.as_slice())
                        && s.user == who.user_id
                    {
                        found = Some(key);
                    }
                }
                let key = found.ok_or_else(not_found)?;
                txn.delete(Table::Sessions, key);
                let event = security_event(
                    SESSION_REVOKED,
                    (who.company, who.user_id),
                    &who.username,
                    None,
                );
                crate::event::append(txn, stamped(event, clock.as_ref()))?;
                Ok::<_, KernelError>(())
            })
            .await
    }

    /// Whether no one can sign in yet (no user has a password).
    pub fn setup_needed(&self) -> Result<bool, KernelError> {
        let read = self.store().read()?;
        let mut any = false;
        read.scan(Table::Credentials, .., false, |_, _| {
            any = true;
            std::ops::ControlFlow::Break(())
        })?;
        Ok(!any)
    }

    /// Makes (and remembers) the one-time token for the first administrator.
    pub fn issue_setup_token(&self) -> String {
        let token = random_token();
        if let Ok(mut slot) = self.setup_slot().lock() {
            *slot = Some(token.clone());
        }
        token
    }

    pub fn setup_token_valid(&self, token: &str) -> bool {
        self.setup_slot()
            .lock()
            .ok()
            .and_then(|slot| slot.clone())
            .is_some_and(|t| bool::from(t.as_bytes().ct_eq(token.as_bytes())))
    }

    /// Creates the first administrator with the one-time token, then forgets the token.
    pub async fn complete_setup(
        &self,
        token: &str,
        username: &str,
        full_name: &str,
        password: &str,
    ) -> Result<Record, KernelError> {
        if !self.setup_token_valid(token) || !self.setup_needed()? {
            return Err(KernelError::BadSetupToken);
        }
        let company = self.default_company()?.ok_or_else(|| {
            KernelError::Internal("no company exists yet; start nexus once to create it".into())
        })?;
        let admin_role = self.role_by_name(company, "Administrator")?;
        let rec = self
            .create_user(company, username, full_name, password, admin_role)
            .await?;
        if let Ok(mut slot) = self.setup_slot().lock() {
            *slot = None;
        }
        Ok(rec)
    }

    /// Creates a user as the system (setup, `nexus admin create-user`).
    pub async fn create_user(
        &self,
        company: u64,
        username: &str,
        full_name: &str,
        password: &str,
        role: u64,
    ) -> Result<Record, KernelError> {
        let input = crate::Input::Form(vec![
            ("username".into(), username.into()),
            ("full_name".into(), full_name.into()),
            ("role".into(), role.to_string()),
            ("active".into(), "true".into()),
            ("password".into(), password.into()),
        ]);
        self.create(&Principal::system(company), &USER, input).await
    }

    /// The id of a role by name in a company.
    pub fn role_by_name(&self, company: u64, name: &str) -> Result<u64, KernelError> {
        let page = self.list_unchecked(
            company,
            &ROLE,
            &crate::ListQuery {
                filters: vec![("name".into(), name.into())],
                limit: 100,
                ..Default::default()
            },
        )?;
        crate::Row::<Role>::all(&page.rows)?
            .iter()
            .find(|r| r.name.eq_ignore_ascii_case(name))
            .map(|r| r.id)
            .ok_or_else(|| KernelError::NotFound(format!("there is no role called \"{name}\"")))
    }

    /// Every company on the box: (id, name), in creation order. For the CLI, which
    /// acts for the system, not for a signed-in user.
    pub fn companies(&self) -> Result<Vec<(u64, String)>, KernelError> {
        access::companies(&self.store().read()?)
    }

    /// The company the appliance was first set up with.
    pub fn default_company(&self) -> Result<Option<u64>, KernelError> {
        let read = self.store().read()?;
        Ok(read
            .get(Table::Meta, META_DEFAULT_COMPANY)?
            .and_then(|b| decode_u64(&b)))
    }

    /// Creates a company (a tenant) with the default roles, in one transaction. The
    /// first company created becomes the default one.
    pub async fn create_company(&self, name: &str, currency: &str) -> Result<u64, KernelError> {
        let mut errors = FieldErrors::default();
        let name_v = COMPANY.field("name").map(|f| f.parse_text(name));
        let cur_v = COMPANY.field("currency").map(|f| f.parse_text(currency));
        let mut values = BTreeMap::new();
        for (field, parsed) in [("name", name_v), ("currency", cur_v)] {
            match parsed {
                Some(Ok(v)) if !v.is_empty() => {
                    values.insert(field, v);
                }
                Some(Ok(_)) => errors.push(field, format!("{field} is required")),
                Some(Err(m)) => errors.push(field, m),
                None => {}
            }
        }
        if !errors.is_empty() {
            return Err(KernelError::Invalid(errors));
        }
        let now = self.clock().now();
        self.store()
            .write(move |txn| {
                let company = insert_as_system(txn, &COMPANY, None, values, now)?;
                seed_company(txn, &Principal::system(company.id), company.id, now)?;
                Ok::<_, KernelError>(company.id)
            })
            .await
    }
}

/// Gives a new company its default roles (written as `who`), and makes it the
/// default company when it is the first; returns the id of its Administrator role.
pub(crate) fn seed_company(
    txn: &mut nexus_store::Txn<'_, '_>,
    who: &Principal,
    company: u64,
    now: OffsetDateTime,
) -> Result<u64, KernelError> {
    let mut admin = None;
    for (role, grants, description) in crate::registry::default_roles() {
        let mut v = BTreeMap::new();
        v.insert("name", Value::Text((*role).into()));
        v.insert("permissions", Value::Text((*grants).into()));
        v.insert("description", Value::Text((*description).into()));
        let rec = insert_as(txn, &ROLE, who, company, v, now)?;
        if access::grants_of(Some(&Role::from_record(&rec)?))
            .excess(&Grants::all())
            .is_empty()
        {
            admin.get_or_insert(rec.id);
        }
    }
    if txn.get(Table::Meta, META_DEFAULT_COMPANY)?.is_none() {
        txn.put(
            Table::Meta,
            META_DEFAULT_COMPANY.to_vec(),
            u64_key(company).to_vec(),
        );
    }
    admin.ok_or_else(|| KernelError::Internal("no default role grants everything".into()))
}

/// Security events' entity names in the event log (not entities of records: no record
/// carries them; the log, the transparency tree and audit bundles do).
pub const SIGN_IN: &str = "sign_in";
pub const SIGN_IN_REFUSED: &str = "sign_in_refused";
pub const SIGN_OUT: &str = "sign_out";
pub const SWITCH_COMPANY: &str = "switch_company";
pub const SESSION_REVOKED: &str = "session_revoked";
pub const EXPORT: &str = "export";

/// An `export` entry of the log: `who` took `what` (an entity, "audit log", "personal
/// data") out of the box, `how` (format, query, range).
pub(crate) fn export_event(
    who: &Principal,
    what: &str,
    how: &serde_json::Value,
    at_ms: i64,
) -> crate::event::NewEvent {
    let mut event = security_event(EXPORT, (who.company, who.user_id), &who.username, None);
    event.at_ms = at_ms;
    if let Some(after) = event.after.as_mut() {
        after.remove("address");
        after.insert("what".into(), serde_json::Value::String(what.into()));
        after.insert("how".into(), how.clone());
    }
    event
}

impl Kernel {
    /// Writes an `export` entry of the log (see [`export_event`]): for exports that
    /// are not jobs (a CSV download, the CLI's audit bundle).
    pub async fn log_export(
        &self,
        who: &Principal,
        what: &str,
        how: serde_json::Value,
    ) -> Result<(), KernelError> {
        let who = who.clone();
        let what = what.to_string();
        let clock = self.shared_clock();
        self.store()
            .write(move |txn| {
                let at = crate::record::unix_ms(crate::record::to_stored_precision(clock.now()));
                crate::event::append(txn, export_event(&who, &what, &how, at))?;
                Ok::<_, KernelError>(())
            })
            .await
    }
}

/// A security event: who (company, user; 0 when unknown), the login name as given
/// (at most 64 characters, never a password), and the address it came from.
pub(crate) fn security_event(
    kind: &'static str,
    (company, user): (u64, u64),
    username: &str,
    from: Option<IpAddr>,
) -> crate::event::NewEvent {
    let name: String = username
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(64)
        .collect();
    let mut after = crate::event::Image::new();
    after.insert("username".into(), serde_json::Value::String(name.clone()));
    after.insert(
        "address".into(),
        from.map_or(serde_json::Value::Null, |a| {
            serde_json::Value::String(a.to_string())
        }),
    );
    crate::event::NewEvent {
        at_ms: 0,
        actor: user,
        actor_name: name,
        company,
        entity: kind,
        record: user,
        op: crate::event::Op::Create,
        version: 1,
        before: None,
        after: Some(after),
    }
}

/// The event with its time read now, on the writer thread (times follow sequence order).
pub(crate) fn stamped(
    mut event: crate::event::NewEvent,
    clock: &dyn crate::Clock,
) -> crate::event::NewEvent {
    event.at_ms = crate::record::unix_ms(crate::record::to_stored_precision(clock.now()));
    event
}

/// Ends every session of `user` in this command (a password reset, a deactivation).
pub(crate) fn end_sessions_in(
    txn: &mut nexus_store::Txn<'_, '_>,
    user: u64,
) -> Result<usize, KernelError> {
    let mut ended = 0;
    for (key, bytes) in txn.scan_prefix(Table::Sessions, &[])? {
        if let Ok(s) = ciborium::from_reader::<StoredSession, _>(bytes.as_slice())
            && s.user == user
        {
            txn.delete(Table::Sessions, key);
            ended += 1;
        }
    }
    Ok(ended)
}

/// Sends `user`'s sessions that work in `company` back to their home company, in this
/// command (their access to `company` was removed).
pub(crate) fn send_sessions_home(
    txn: &mut nexus_store::Txn<'_, '_>,
    user: u64,
    company: u64,
) -> Result<usize, KernelError> {
    let Some((home, _)) = access::home_record(txn, user, company)? else {
        return end_sessions_in(txn, user);
    };
    let mut moved = 0;
    for (key, bytes) in txn.scan_prefix(Table::Sessions, &[])? {
        if let Ok(mut s) = ciborium::from_reader::<StoredSession, _>(bytes.as_slice())
            && s.user == user
            && s.company == company
        {
            s.company = home;
            let mut bytes = Vec::new();
            ciborium::into_writer(&s, &mut bytes)
                .map_err(|e| KernelError::Internal(format!("encoding a session: {e}")))?;
            txn.put(Table::Sessions, key, bytes);
            moved += 1;
        }
    }
    Ok(moved)
}
