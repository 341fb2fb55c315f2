//! The record service: every entity's create, update, delete, get, list and history,
//! driven by its definition. Each write is one store command: validate, write the
//! record and its indexes, append the change-log entry and the audit entry — all or
//! nothing.

use std::collections::BTreeMap;
use std::ops::ControlFlow;

use nexus_store::{Reader, Table, Txn, decode_u64, prefix_end, u64_key};

use crate::access;
use crate::builtin::{COMPANY, MEMBERSHIP, Membership, ROLE, Role, SETTING, USER, User};
use crate::entity::{Creation, EntityDef, FieldKind, Unique};
use crate::error::{FieldErrors, KernelError};
use crate::event::{self, Event, NewEvent, Op};
use crate::perm::{Action, Grants, Principal};
use crate::record::{Record, keys, rfc3339, to_stored_precision, unix_ms};
use crate::typed::Typed;
use crate::value::Value;
use crate::{Kernel, password};

const META_NEXT_ID: &[u8] = b"next_id";

/// Input for a write, as it arrived.
#[derive(Debug, Clone)]
pub enum Input {
    /// Form fields (`name=value` pairs; for repeated names the last wins).
    Form(Vec<(String, String)>),
    /// A JSON object.
    Json(serde_json::Map<String, serde_json::Value>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Create,
    Update,
}

/// Parsed input: stored values, and secrets still to be hashed.
struct Parsed {
    values: BTreeMap<&'static str, Value>,
    secrets: Vec<(&'static str, String)>,
}

/// Keys an input may carry beside the entity's fields.
const ENVELOPE_KEYS: &[&str] = &["id", "version", "created_at", "updated_at"];

/// The input key under which the acting user gives their own password again, to
/// confirm a change of access (see [`guard_confirmation`]). Not a field of any entity.
pub const CONFIRM_PASSWORD: &str = "current_password";

/// Takes the acting user's confirmation out of `input` (every occurrence).
fn take_confirmation(input: &mut Input) -> Option<String> {
    match input {
        Input::Form(pairs) => {
            let given = pairs
                .iter()
                .rev()
                .find(|(k, _)| k == CONFIRM_PASSWORD)
                .map(|(_, v)| v.clone());
            pairs.retain(|(k, _)| k != CONFIRM_PASSWORD);
            given.filter(|v| !v.is_empty())
        }
        Input::Json(map) => match map.remove(CONFIRM_PASSWORD) {
            Some(serde_json::Value::String(v)) if !v.is_empty() => Some(v),
            Some(serde_json::Value::Null | serde_json::Value::String(_)) | None => None,
            // Not a string: it cannot be the password; verify it anyway so it fails.
            Some(other) => Some(other.to_string()),
        },
    }
}

fn parse_input(def: &'static EntityDef, input: &Input, mode: Mode) -> Result<Parsed, KernelError> {
    let mut errors = FieldErrors::default();
    let mut values = BTreeMap::new();
    let mut secrets = Vec::new();
    let mut seen: Vec<&'static str> = Vec::new();
    let mut accept = |name: &str, parsed: Result<Value, String>, errors: &mut FieldErrors| {
        let Some(field) = def.field(name) else {
            errors.push(
                name,
                format!(
                    "{} has no field \"{name}\"; its fields are: {}",
                    def.label,
                    def.fields
                        .iter()
                        .map(|f| f.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
            return;
        };
        seen.retain(|s| *s != field.name);
        seen.push(field.name);
        match parsed {
            Ok(v) if field.kind == FieldKind::Password => {
                if let Value::Text(secret) = v {
                    secrets.retain(|(n, _)| *n != field.name);
                    secrets.push((field.name, secret));
                }
            }
            Ok(v) => {
                values.insert(field.name, v);
            }
            Err(m) => errors.push(field.name, m),
        }
    };
    match input {
        Input::Form(pairs) => {
            // Last value wins, so a hidden "false" before a checkbox works.
            let mut last: BTreeMap<&str, &str> = BTreeMap::new();
            for (k, v) in pairs {
                if k.starts_with('_') || ENVELOPE_KEYS.contains(&k.as_str()) {
                    continue;
                }
                last.insert(k, v);
            }
            for (k, v) in last {
                if def.field(k).is_some_and(|f| f.by_appliance) {
                    continue;
                }
                let parsed = match def.field(k) {
                    Some(f) => f.parse_text(v),
                    None => Ok(Value::Empty),
                };
                accept(k, parsed, &mut errors);
            }
        }
        Input::Json(map) => {
            for (k, v) in map {
                if ENVELOPE_KEYS.contains(&k.as_str())
                    || def.field(k).is_some_and(|f| f.by_appliance)
                {
                    continue;
                }
                let parsed = match def.field(k) {
                    Some(f) => f.parse_json(v),
                    None => Ok(Value::Empty),
                };
                accept(k, parsed, &mut errors);
            }
        }
    }
    for f in def.fields.iter().filter(|f| f.required && !f.by_appliance) {
        if errors.get(f.name).is_some() {
            continue;
        }
        let missing = match f.kind {
            FieldKind::Password => {
                mode == Mode::Create && !secrets.iter().any(|(n, _)| *n == f.name)
            }
            _ => match values.get(f.name) {
                Some(v) => v.is_empty(),
                None => mode == Mode::Create,
            },
        };
        if missing {
            errors.push(f.name, format!("{} is required", f.label));
        }
    }
    // A password is required when a user is created, even though editing may leave it.
    if mode == Mode::Create {
        for f in def.fields.iter().filter(|f| f.kind == FieldKind::Password) {
            if errors.get(f.name).is_none() && !secrets.iter().any(|(n, _)| *n == f.name) {
                errors.push(f.name, format!("{} is required", f.label));
            }
        }
    }
    if !errors.is_empty() {
        // Report in the order of the form.
        errors
            .0
            .sort_by_key(|(name, _)| def.field_index(name).map_or(u8::MAX, |i| i));
        return Err(KernelError::Invalid(errors));
    }
    Ok(Parsed { values, secrets })
}

/// A list request: server-side sort, filter and paging.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// An indexed field to sort by; `None` sorts by id (creation order).
    pub sort: Option<String>,
    pub descending: bool,
    /// Quick search: case-insensitive substring over the entity's search fields.
    pub search: Option<String>,
    /// Per-field filters: substring for text, equality for choices, booleans and refs.
    pub filters: Vec<(String, String)>,
    pub offset: usize,
    pub limit: usize,
}

#[derive(Debug, Clone)]
pub struct ListPage {
    pub rows: Vec<Record>,
    /// Records matching the query.
    pub total: u64,
}

pub(crate) fn require(who: &Principal, def: &EntityDef, action: Action) -> Result<(), KernelError> {
    if who.can(def.name, action) {
        Ok(())
    } else {
        Err(KernelError::Forbidden {
            action: action.verb(),
            entity: def.plural.to_lowercase(),
        })
    }
}

/// Refuses generic writes to records only their module may write.
fn module_only(def: &EntityDef) -> Result<(), KernelError> {
    match def.creation {
        Creation::Module(how) => Err(KernelError::Conflict(how.to_string())),
        _ => Ok(()),
    }
}

/// The owner of `rec`, by its entity's owner field.
fn owner_of(def: &EntityDef, rec: &Record) -> Option<u64> {
    def.owner().and_then(|f| rec.get(f.name).as_ref_id())
}

/// Whether a record rule hides `rec` from `who` for `action` (another's record when
/// they may act only on their own).
fn ruled_out(who: &Principal, def: &EntityDef, rec: &Record, action: Action) -> bool {
    who.own_only(def, action)
        .is_some_and(|me| owner_of(def, rec) != Some(me))
}

/// A list as `who` may see it: with the record rule's filter on the owner.
fn ruled_query(who: &Principal, def: &EntityDef, q: &ListQuery) -> ListQuery {
    let mut q = q.clone();
    if let (Some(me), Some(f)) = (who.own_only(def, Action::Read), def.owner()) {
        q.filters.push((f.name.to_string(), me.to_string()));
    }
    q
}

/// Refuses `action` on a stored record the record rule keeps from `who`: "not found"
/// when they may not even read it, else "not allowed".
pub(crate) fn rule_existing(
    who: &Principal,
    def: &EntityDef,
    rec: &Record,
    action: Action,
) -> Result<(), KernelError> {
    if ruled_out(who, def, rec, Action::Read) {
        return Err(not_found(def, rec.id));
    }
    if ruled_out(who, def, rec, action) {
        return Err(KernelError::Forbidden {
            action: action.verb(),
            entity: format!("{} you do not own", def.plural.to_lowercase()),
        });
    }
    Ok(())
}

/// Checks a record about to be written against the record rule for `action`: its
/// owner must be `who` (set to them when empty), or they would lose it from sight.
fn rule_new_owner(
    who: &Principal,
    def: &EntityDef,
    rec: &mut Record,
    action: Action,
) -> Result<(), KernelError> {
    let (Some(me), Some(f)) = (who.own_only(def, action), def.owner()) else {
        return Ok(());
    };
    match rec.get(f.name).as_ref_id() {
        None => {
            rec.values.insert(f.name, Value::Ref(me));
            Ok(())
        }
        Some(owner) if owner == me => Ok(()),
        Some(_) => Err(KernelError::invalid(
            f.name,
            format!(
                "you may {} only {} you own: the owner must stay you (someone who may change every one can hand it over)",
                action.verb(),
                def.plural.to_lowercase()
            ),
        )),
    }
}

/// Leaves out of `rec` the guarded fields `who` may not see (see [`FieldDef::guarded`]).
pub(crate) fn redact(who: &Principal, def: &EntityDef, rec: &mut Record) {
    for f in def.fields.iter().filter(|f| f.guarded && !who.sees(def, f)) {
        rec.values.remove(f.name);
    }
}

/// Leaves the hidden guarded fields out of an event's images.
fn redact_event(who: &Principal, def: &EntityDef, e: &mut Event) {
    for f in def.fields.iter().filter(|f| f.guarded && !who.sees(def, f)) {
        for image in [e.before.as_mut(), e.after.as_mut()].into_iter().flatten() {
            image.remove(f.name);
        }
    }
}

/// Refuses a list that filters or sorts by a field `who` may not see.
fn check_query(who: &Principal, def: &EntityDef, q: &ListQuery) -> Result<(), KernelError> {
    let named = q
        .filters
        .iter()
        .filter(|(_, v)| !v.trim().is_empty())
        .map(|(k, _)| k.as_str())
        .chain(q.sort.as_deref());
    for name in named {
        if let Some(f) = def.field(name).filter(|f| !who.sees(def, f)) {
            return Err(KernelError::Forbidden {
                action: "filter or sort by",
                entity: format!(
                    "{} of {}",
                    f.label.to_lowercase(),
                    def.plural.to_lowercase()
                ),
            });
        }
    }
    Ok(())
}

/// Refuses input that sets a guarded field `who` may not set.
fn check_settable(who: &Principal, def: &EntityDef, parsed: &Parsed) -> Result<(), KernelError> {
    let mut errors = FieldErrors::default();
    for f in def
        .fields
        .iter()
        .filter(|f| f.guarded && !who.may_set(def, f))
    {
        if parsed.values.contains_key(f.name) {
            errors.push(
                f.name,
                format!("you may not set the {}", f.label.to_lowercase()),
            );
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(KernelError::Invalid(errors))
    }
}

/// Access itself — users, roles, memberships, companies, settings — is not changed
/// through an API token: a script's credential must not be a way to more access.
fn refuse_token_for_access(who: &Principal, def: &EntityDef) -> Result<(), KernelError> {
    let access = [
        USER.code,
        ROLE.code,
        MEMBERSHIP.code,
        COMPANY.code,
        SETTING.code,
    ];
    if who.via_token().is_some() && access.contains(&def.code) {
        return Err(KernelError::TokenNotAllowed(
            "change users, roles, memberships, companies or settings",
        ));
    }
    Ok(())
}

pub(crate) fn not_found(def: &EntityDef, id: u64) -> KernelError {
    KernelError::NotFound(format!(
        "there is no {} with id {id} in your company",
        def.label.to_lowercase()
    ))
}

impl Kernel {
    pub fn entity(&self, name: &str) -> Result<&'static EntityDef, KernelError> {
        crate::builtin::entity(name).ok_or_else(|| {
            KernelError::NotFound(format!("there is no kind of record called \"{name}\""))
        })
    }

    /// Creates a record in the principal's company.
    pub async fn create(
        &self,
        who: &Principal,
        def: &'static EntityDef,
        input: Input,
    ) -> Result<Record, KernelError> {
        require(who, def, Action::Create)?;
        refuse_token_for_access(who, def)?;
        module_only(def)?;
        if def.creation == Creation::SystemOnly && !who.system {
            return Err(KernelError::Forbidden {
                action: "create",
                entity: def.plural.to_lowercase(),
            });
        }
        // A new company is administered by whoever makes it: only someone who holds
        // every permission where they are may, or making one would be a way up.
        if def.code == COMPANY.code
            && !who.system
            && !(who.holds_everything() && who.administers_box())
        {
            return Err(KernelError::Forbidden {
                action: "create",
                entity: "companies (only an administrator of the box's first company who \
                         holds every permission where they work may)"
                    .into(),
            });
        }
        let mut input = input;
        let confirmation = take_confirmation(&mut input);
        let parsed = parse_input(def, &input, Mode::Create)?;
        check_settable(who, def, &parsed)?;
        let confirmed = self.confirm_actor(who, confirmation).await?;
        let hashes = password::hash_all(parsed.secrets).await?;
        let clock = self.shared_clock();
        let reader = who.clone();
        let who = who.clone();
        self.store()
            .write(move |txn| {
                // Read on the writer thread, so audit times follow sequence order.
                let now = to_stored_precision(clock.now());
                let id = next_id(txn)?;
                let company = if def.code == COMPANY.code {
                    id
                } else {
                    who.company
                };
                let mut values = parsed.values;
                if def.code == USER.code && !hashes.is_empty() {
                    values.insert("password_changed", Value::Text(rfc3339(now)));
                }
                let rec = Record {
                    id,
                    company,
                    version: 1,
                    created_at: now,
                    updated_at: now,
                    created_by: who.user_id,
                    updated_by: who.user_id,
                    values,
                    unknown: Vec::new(),
                };
                let mut rec = rec;
                if def.code == MEMBERSHIP.code {
                    // Confirmed first: who exists on the box is for confirmed eyes.
                    guard_confirmation(def, &who, None, &rec, false, confirmed)?;
                    resolve_member(txn, None, &mut rec)?;
                }
                rule_new_owner(&who, def, &mut rec, Action::Create)?;
                guard_grants(txn, def, &who, None, Some(&rec), false)?;
                guard_confirmation(def, &who, None, &rec, false, confirmed)?;
                write_record(txn, def, &who, None, &rec, Op::Create)?;
                for (_, hash) in hashes {
                    txn.put(Table::Credentials, u64_key(id).to_vec(), hash.into_bytes());
                }
                if def.code == COMPANY.code && !who.system {
                    admit_founder(txn, &who, rec.id, now)?;
                }
                Ok(rec)
            })
            .await
            .map(|mut rec| {
                redact(&reader, def, &mut rec);
                rec
            })
    }

    /// Changes the given fields of a record, if it is still at `base_version`.
    pub async fn update(
        &self,
        who: &Principal,
        def: &'static EntityDef,
        id: u64,
        base_version: u64,
        input: Input,
    ) -> Result<Record, KernelError> {
        require(who, def, Action::Write)?;
        refuse_token_for_access(who, def)?;
        module_only(def)?;
        let mut input = input;
        let confirmation = take_confirmation(&mut input);
        let parsed = parse_input(def, &input, Mode::Update)?;
        check_settable(who, def, &parsed)?;
        let confirmed = self.confirm_actor(who, confirmation).await?;
        let hashes = password::hash_all(parsed.secrets).await?;
        let clock = self.shared_clock();
        let reader = who.clone();
        let who = who.clone();
        self.store()
            .write(move |txn| {
                let now = to_stored_precision(clock.now());
                let old = load(txn, def, who.company, id)?.ok_or_else(|| not_found(def, id))?;
                rule_existing(&who, def, &old, Action::Write)?;
                check_version(txn, def, &old, base_version)?;
                let mut new = old.clone();
                for (k, v) in parsed.values {
                    new.values.insert(k, v);
                }
                new.values.retain(|_, v| !v.is_empty());
                rule_new_owner(&who, def, &mut new, Action::Write)?;
                if def.code == MEMBERSHIP.code {
                    resolve_member(txn, Some(&old), &mut new)?;
                }
                guard_self(def, &who, &old, Some(&new))?;
                if new.values == old.values && hashes.is_empty() {
                    return Ok(old);
                }
                // A new password is a change the history shows (never the hash), and
                // it ends every session of that user; so does a deactivation.
                let password_set = def.code == USER.code && !hashes.is_empty();
                if password_set {
                    let mut user = User::from_record(&new)?;
                    user.password_changed = Some(rfc3339(now));
                    new.values.extend(user.to_values());
                    new.values.retain(|_, v| !v.is_empty());
                }
                new.version = old.version + 1;
                new.updated_at = now;
                new.updated_by = who.user_id;
                guard_grants(txn, def, &who, Some(&old), Some(&new), password_set)?;
                guard_confirmation(def, &who, Some(&old), &new, password_set, confirmed)?;
                write_record(txn, def, &who, Some(&old), &new, Op::Update)?;
                for (_, hash) in hashes {
                    txn.put(Table::Credentials, u64_key(id).to_vec(), hash.into_bytes());
                }
                let deactivated = def.code == USER.code
                    && User::from_record(&old)?.active
                    && !User::from_record(&new)?.active;
                if password_set || deactivated {
                    // Whoever knew the old password may have made tokens with it.
                    crate::auth::end_sessions_in(txn, id)?;
                    crate::tokens::revoke_all_in(txn, id)?;
                }
                Ok(new)
            })
            .await
            .map(|mut rec| {
                redact(&reader, def, &mut rec);
                rec
            })
    }

    /// Deletes a record (at `base_version`, when given) unless others refer to it.
    pub async fn delete(
        &self,
        who: &Principal,
        def: &'static EntityDef,
        id: u64,
        base_version: Option<u64>,
    ) -> Result<(), KernelError> {
        require(who, def, Action::Delete)?;
        refuse_token_for_access(who, def)?;
        module_only(def)?;
        if def.code == COMPANY.code {
            // Another company is "not found", as everywhere.
            if id != who.company {
                return Err(not_found(def, id));
            }
            return Err(KernelError::Conflict(
                "a company cannot be deleted from here; it holds the books".into(),
            ));
        }
        let clock = self.shared_clock();
        let who = who.clone();
        self.store()
            .write(move |txn| {
                let now = to_stored_precision(clock.now());
                let old = load(txn, def, who.company, id)?.ok_or_else(|| not_found(def, id))?;
                rule_existing(&who, def, &old, Action::Delete)?;
                if let Some(v) = base_version {
                    check_version(txn, def, &old, v)?;
                }
                for referrer in crate::registry::entities() {
                    for (i, f) in referrer.fields.iter().enumerate() {
                        if f.kind != FieldKind::Ref(def.name) || !f.indexed {
                            continue;
                        }
                        let mut prefix = keys::index_prefix(referrer, who.company, i as u8);
                        Value::Ref(id).index_key(&mut prefix);
                        if txn.any_with_prefix(Table::Index, &prefix)? {
                            return Err(KernelError::Conflict(format!(
                                "{} still refer to this {}; change or delete them first",
                                referrer.plural.to_lowercase(),
                                def.label.to_lowercase()
                            )));
                        }
                    }
                }
                guard_self(def, &who, &old, None)?;
                guard_grants(txn, def, &who, Some(&old), None, false)?;
                delete_record(txn, def, &who, &old, now)?;
                if def.code == USER.code {
                    crate::auth::end_sessions_in(txn, id)?;
                    crate::tokens::revoke_all_in(txn, id)?;
                    crate::mfa::forget_in(txn, id);
                    // Their memberships go with them (the grant check above covered
                    // their rights in those companies).
                    for (_, m) in access::memberships_of(txn, id)? {
                        delete_record(txn, &MEMBERSHIP, &who, &m, now)?;
                    }
                    txn.delete(Table::Credentials, u64_key(id).to_vec());
                }
                if def.code == MEMBERSHIP.code {
                    let m = Membership::from_record(&old)?;
                    crate::auth::send_sessions_home(txn, m.user as u64, old.company)?;
                }
                Ok(())
            })
            .await
    }

    /// One record of the principal's company.
    pub fn get(
        &self,
        who: &Principal,
        def: &'static EntityDef,
        id: u64,
    ) -> Result<Record, KernelError> {
        require(who, def, Action::Read)?;
        let read = self.store().read()?;
        match read.get(Table::Records, &keys::record(def, who.company, id))? {
            Some(bytes) => {
                let mut rec = Record::decode(def, &bytes)?;
                if ruled_out(who, def, &rec, Action::Read) {
                    return Err(not_found(def, id));
                }
                redact(who, def, &mut rec);
                Ok(rec)
            }
            None => Err(not_found(def, id)),
        }
    }

    /// One record of the principal's company, read as its entity's struct.
    pub fn read<T: crate::Typed>(
        &self,
        who: &Principal,
        id: u64,
    ) -> Result<crate::Row<T>, KernelError> {
        crate::Row::of(&self.get(who, T::def(), id)?)
    }

    /// A page of the principal's company's records.
    pub fn list(
        &self,
        who: &Principal,
        def: &'static EntityDef,
        q: &ListQuery,
    ) -> Result<ListPage, KernelError> {
        require(who, def, Action::Read)?;
        check_query(who, def, q)?;
        let mut page = self.list_unchecked(who.company, def, &ruled_query(who, def, q))?;
        for rec in &mut page.rows {
            redact(who, def, rec);
        }
        Ok(page)
    }

    /// Exports every matching record (the CSV export).
    pub fn export(
        &self,
        who: &Principal,
        def: &'static EntityDef,
        q: &ListQuery,
    ) -> Result<Vec<Record>, KernelError> {
        require(who, def, Action::Read)?;
        require(who, def, Action::Export)?;
        check_query(who, def, q)?;
        let mut all = ruled_query(who, def, q);
        all.offset = 0;
        all.limit = usize::MAX;
        let mut rows = self.list_unchecked(who.company, def, &all)?.rows;
        for rec in &mut rows {
            redact(who, def, rec);
        }
        Ok(rows)
    }

    pub(crate) fn list_unchecked(
        &self,
        company: u64,
        def: &'static EntityDef,
        q: &ListQuery,
    ) -> Result<ListPage, KernelError> {
        let filter = Filter::new(def, q)?;
        let read = self.store().read()?;
        let (table, prefix) = match &q.sort {
            // An exact filter on an indexed field reads only its index entries: the
            // entries of one value are in id order, as the records are.
            None if let Some((i, value)) = exact_indexed(def, q) => {
                let mut prefix = keys::index_prefix(def, company, i);
                value.index_key(&mut prefix);
                (Table::Index, prefix)
            }
            None => (Table::Records, keys::scope(def, company)),
            Some(name) => {
                let (i, f) = def
                    .fields
                    .iter()
                    .enumerate()
                    .find(|(_, f)| f.name == name)
                    .ok_or_else(|| {
                        KernelError::BadRequest(format!(
                            "{} has no field \"{name}\" to sort by",
                            def.label
                        ))
                    })?;
                if !f.indexed {
                    return Err(KernelError::BadRequest(format!(
                        "{} cannot be sorted by {}",
                        def.plural,
                        f.label.to_lowercase()
                    )));
                }
                (Table::Index, keys::index_prefix(def, company, i as u8))
            }
        };
        let end = prefix_end(&prefix);
        let range = match &end {
            Some(end) => (
                std::ops::Bound::Included(prefix.as_slice()),
                std::ops::Bound::Excluded(end.as_slice()),
            ),
            None => (
                std::ops::Bound::Included(prefix.as_slice()),
                std::ops::Bound::Unbounded,
            ),
        };
        let mut rows = Vec::new();
        let mut matched = 0u64;
        let mut failure = None;
        let want_until = q.offset.saturating_add(q.limit);
        read.scan(table, range, q.descending, |k, v| {
            if filter.is_none() {
                // Without a filter only the page's rows need decoding.
                let pos = matched as usize;
                matched += 1;
                if pos < q.offset {
                    return ControlFlow::Continue(());
                }
                if pos >= want_until {
                    return ControlFlow::Break(());
                }
            }
            let bytes = if table == Table::Records {
                Some(v.to_vec())
            } else {
                match keys::id_suffix(k)
                    .map(|id| read.get(Table::Records, &keys::record(def, company, id)))
                {
                    Some(Ok(b)) => b,
                    Some(Err(e)) => {
                        failure = Some(KernelError::from(e));
                        return ControlFlow::Break(());
                    }
                    None => None,
                }
            };
            let Some(bytes) = bytes else {
                return ControlFlow::Continue(());
            };
            let rec = match Record::decode(def, &bytes) {
                Ok(r) => r,
                Err(e) => {
                    failure = Some(e);
                    return ControlFlow::Break(());
                }
            };
            match &filter {
                None => rows.push(rec),
                Some(f) => {
                    if f.matches(&rec) {
                        let pos = matched as usize;
                        matched += 1;
                        if pos >= q.offset && pos < want_until {
                            rows.push(rec);
                        }
                    }
                }
            }
            ControlFlow::Continue(())
        })?;
        if let Some(e) = failure {
            return Err(e);
        }
        let total = if filter.is_none() {
            self.count(company, def)?
        } else {
            matched
        };
        Ok(ListPage { rows, total })
    }

    fn count(&self, company: u64, def: &EntityDef) -> Result<u64, KernelError> {
        let read = self.store().read()?;
        Ok(read
            .get(Table::Counts, &keys::scope(def, company))?
            .and_then(|b| decode_u64(&b))
            .unwrap_or(0))
    }

    /// The audit entries of one record, newest first.
    pub fn history(
        &self,
        who: &Principal,
        def: &'static EntityDef,
        id: u64,
    ) -> Result<Vec<Event>, KernelError> {
        require(who, def, Action::Read)?;
        let read = self.store().read()?;
        let prefix = keys::record(def, who.company, id);
        let end = prefix_end(&prefix).unwrap_or_default();
        let mut seqs = Vec::new();
        read.scan(
            Table::History,
            prefix.as_slice()..end.as_slice(),
            true,
            |k, _| {
                if let Some(seq) = keys::id_suffix(k) {
                    seqs.push(seq);
                }
                ControlFlow::Continue(())
            },
        )?;
        let current = read.get(Table::Records, &prefix)?;
        if seqs.is_empty() && current.is_none() {
            return Err(not_found(def, id));
        }
        // A record rule: only the history of a record they may read now.
        if who.own_only(def, Action::Read).is_some() {
            match current {
                Some(bytes)
                    if !ruled_out(who, def, &Record::decode(def, &bytes)?, Action::Read) => {}
                _ => return Err(not_found(def, id)),
            }
        }
        let mut out = Vec::with_capacity(seqs.len());
        for seq in seqs {
            if let Some(bytes) = read.get(Table::ChangeLog, &u64_key(seq))? {
                let mut event = Event::decode(&bytes)?;
                redact_event(who, def, &mut event);
                out.push(event);
            }
        }
        Ok(out)
    }

    /// Titles of records of `def` by id, for showing references (missing ids are left out).
    pub fn titles(
        &self,
        who: &Principal,
        def: &'static EntityDef,
        ids: impl IntoIterator<Item = u64>,
    ) -> Result<BTreeMap<u64, String>, KernelError> {
        if !who.can(def.name, Action::Read) {
            return Ok(BTreeMap::new());
        }
        let read = self.store().read()?;
        let mut out = BTreeMap::new();
        for id in ids {
            if out.contains_key(&id) {
                continue;
            }
            if let Some(bytes) = read.get(Table::Records, &keys::record(def, who.company, id))? {
                let rec = Record::decode(def, &bytes)?;
                if !ruled_out(who, def, &rec, Action::Read) {
                    out.insert(id, rec.title(def));
                }
            }
        }
        Ok(out)
    }

    /// Choices for a reference field: (id, title), sorted by title, at most `limit`.
    pub fn ref_options(
        &self,
        who: &Principal,
        def: &'static EntityDef,
        limit: usize,
    ) -> Result<Vec<(u64, String)>, KernelError> {
        if !who.can(def.name, Action::Read) {
            return Ok(Vec::new());
        }
        let sort = def
            .field(def.title_field)
            .filter(|f| f.indexed)
            .map(|f| f.name.to_string());
        let page = self.list_unchecked(
            who.company,
            def,
            &ruled_query(
                who,
                def,
                &ListQuery {
                    sort,
                    limit,
                    ..ListQuery::default()
                },
            ),
        )?;
        Ok(page.rows.iter().map(|r| (r.id, r.title(def))).collect())
    }
}

/// A compiled list filter.
/// The first filter of `q` that is an exact match on an indexed field (a reference, a
/// flag, a number, an amount, a date or a choice), as the field's index position and
/// the value: its index entries are exactly the records that match it. Text filters
/// match substrings, which an index of whole values cannot answer.
fn exact_indexed(def: &'static EntityDef, q: &ListQuery) -> Option<(u8, Value)> {
    q.filters.iter().find_map(|(name, raw)| {
        let i = def.field_index(name)?;
        let f = def.field(name)?;
        let exact = matches!(
            f.kind,
            FieldKind::Ref(_)
                | FieldKind::Bool
                | FieldKind::Int { .. }
                | FieldKind::Money
                | FieldKind::Date
                | FieldKind::Choice(_)
        );
        if !f.indexed || !exact || raw.trim().is_empty() {
            return None;
        }
        // A value that does not parse matches nothing; the filter says why.
        f.parse_text(raw)
            .ok()
            .filter(|v| !v.is_empty())
            .map(|v| (i, v))
    })
}

struct Filter {
    search: Option<(Vec<&'static str>, String)>,
    fields: Vec<(&'static str, FieldKind, String)>,
}

impl Filter {
    fn new(def: &'static EntityDef, q: &ListQuery) -> Result<Option<Filter>, KernelError> {
        let search = q
            .search
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| (def.search_fields.to_vec(), s.to_lowercase()));
        let mut fields = Vec::new();
        for (name, value) in &q.filters {
            if value.trim().is_empty() {
                continue;
            }
            let f = def.field(name).filter(|f| f.stored()).ok_or_else(|| {
                KernelError::BadRequest(format!(
                    "{} has no field \"{name}\" to filter on",
                    def.label
                ))
            })?;
            let needle = match f.kind {
                FieldKind::Bool
                | FieldKind::Ref(_)
                | FieldKind::Money
                | FieldKind::Date
                | FieldKind::Int { .. } => f
                    .parse_text(value)
                    .map_err(|m| {
                        KernelError::BadRequest(format!(
                            "filter on {}: {m}",
                            f.label.to_lowercase()
                        ))
                    })?
                    .display(),
                _ => value.trim().to_lowercase(),
            };
            fields.push((f.name, f.kind, needle));
        }
        if search.is_none() && fields.is_empty() {
            Ok(None)
        } else {
            Ok(Some(Filter { search, fields }))
        }
    }

    fn matches(&self, rec: &Record) -> bool {
        if let Some((fields, needle)) = &self.search {
            let hit = fields.iter().any(|f| {
                rec.get(f)
                    .display()
                    .to_lowercase()
                    .contains(needle.as_str())
            });
            if !hit {
                return false;
            }
        }
        self.fields.iter().all(|(name, kind, needle)| {
            let v = rec.get(name);
            match kind {
                FieldKind::Choice(_) => v.display().eq_ignore_ascii_case(needle),
                FieldKind::Bool
                | FieldKind::Ref(_)
                | FieldKind::Money
                | FieldKind::Date
                | FieldKind::Int { .. } => v.display() == *needle,
                _ => v.display().to_lowercase().contains(needle.as_str()),
            }
        })
    }
}

pub(crate) fn next_id(txn: &mut Txn<'_, '_>) -> Result<u64, KernelError> {
    let current = txn
        .get(Table::Meta, META_NEXT_ID)?
        .and_then(|b| decode_u64(&b))
        .unwrap_or(1);
    txn.put(
        Table::Meta,
        META_NEXT_ID.to_vec(),
        u64_key(current + 1).to_vec(),
    );
    Ok(current)
}

pub(crate) use crate::access::load;

fn check_version(
    txn: &Txn<'_, '_>,
    def: &'static EntityDef,
    current: &Record,
    base: u64,
) -> Result<(), KernelError> {
    if current.version == base {
        return Ok(());
    }
    let by = match access::home_of(txn, current.updated_by, current.company)? {
        Some((_, u)) => u.full_name,
        None if current.updated_by == 0 => "the system".into(),
        None => "another user".into(),
    };
    Err(KernelError::Stale {
        entity: def.label.to_lowercase(),
        by,
        yours: base,
        current: current.version,
    })
}

/// Refuses a change of access that the acting user did not confirm with their own
/// password: creating a user, setting a user's password, changing a user's role,
/// reactivating a user, changing a role's permissions. The system (CLI, setup) needs no confirmation.
fn guard_confirmation(
    def: &EntityDef,
    who: &Principal,
    old: Option<&Record>,
    new: &Record,
    password_set: bool,
    confirmed: bool,
) -> Result<(), KernelError> {
    if who.system || confirmed {
        return Ok(());
    }
    let what = if def.code == USER.code {
        match old {
            None => Some("Creating a user"),
            Some(_) if password_set => Some("Setting a password"),
            Some(o) => {
                let (before, after) = (User::from_record(o)?, User::from_record(new)?);
                if before.role != after.role {
                    Some("Changing a user's role")
                } else if !before.active && after.active {
                    Some("Reactivating a user")
                } else {
                    None
                }
            }
        }
    } else if def.code == ROLE.code {
        match old {
            Some(o) if Role::from_record(o)?.permissions != Role::from_record(new)?.permissions => {
                Some("Changing a role's permissions")
            }
            Some(o) if Role::from_record(o)?.require_mfa != Role::from_record(new)?.require_mfa => {
                Some("Changing whether a role requires a second factor")
            }
            _ => None,
        }
    } else if def.code == MEMBERSHIP.code {
        match old {
            None => Some("Giving a user of another company access to this one"),
            Some(o) if Membership::from_record(o)?.role != Membership::from_record(new)?.role => {
                Some("Changing a member's role")
            }
            _ => None,
        }
    } else if def.code == COMPANY.code && old.is_none() {
        Some("Creating a company")
    } else {
        None
    };
    match what {
        Some(what) => Err(KernelError::invalid(
            CONFIRM_PASSWORD,
            format!(
                "{what} needs your own password: enter it under \"Your password\" on the \
                 record's form (current_password in the API)"
            ),
        )),
        None => Ok(()),
    }
}

/// Refuses changes that would lock the acting user out: of their account, of their
/// role, of their access to this company. `new` is `None` for a delete.
fn guard_self(
    def: &EntityDef,
    who: &Principal,
    old: &Record,
    new: Option<&Record>,
) -> Result<(), KernelError> {
    if def.code == USER.code && old.id == who.user_id {
        let Some(new) = new else {
            return Err(KernelError::Conflict(
                "you cannot delete your own account".into(),
            ));
        };
        let (before, after) = (User::from_record(old)?, User::from_record(new)?);
        if before.active && !after.active {
            return Err(KernelError::invalid(
                "active",
                "you cannot deactivate your own account",
            ));
        }
        if before.role != after.role {
            return Err(KernelError::invalid(
                "role",
                "ask another administrator to change your own role",
            ));
        }
    }
    if def.code == MEMBERSHIP.code && Membership::from_record(old)?.user as u64 == who.user_id {
        match new {
            None => {
                return Err(KernelError::Conflict(
                    "you cannot remove your own access to this company; ask another administrator"
                        .into(),
                ));
            }
            Some(n) if Membership::from_record(n)?.role != Membership::from_record(old)?.role => {
                return Err(KernelError::invalid(
                    "role",
                    "ask another administrator to change your own role",
                ));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// Fills in the user a membership names, from its login name: a user of another
/// company on this box, not yet a member of this one. The user is fixed once made (a
/// later change of login name must not hand the access to someone else).
fn resolve_member(
    txn: &Txn<'_, '_>,
    old: Option<&Record>,
    rec: &mut Record,
) -> Result<(), KernelError> {
    if let Some(old) = old {
        if old.get("username") == rec.get("username") {
            return Ok(());
        }
        return Err(KernelError::invalid(
            "username",
            "a membership names one user for good; remove it and add one for the other user",
        ));
    }
    let name = rec.get("username").display();
    let Some((home, user)) = find_unique(txn, &USER, "username", rec.get("username"))? else {
        return Err(KernelError::invalid(
            "username",
            format!("there is no user with the login name \"{name}\" on this appliance"),
        ));
    };
    if home == rec.company {
        return Err(KernelError::invalid(
            "username",
            format!("{name} is a user of this company already; their role is on their user record"),
        ));
    }
    if access::membership(txn, rec.company, user)?.is_some() {
        return Err(KernelError::invalid(
            "username",
            format!("{name} is a member of this company already"),
        ));
    }
    if let Some(found) = access::load(txn, &USER, home, user)? {
        // The login name as the user's record spells it.
        rec.values.insert("username", found.get("username").clone());
    }
    rec.values.insert("user", Value::Int(user as i64));
    rec.values
        .insert("home", Value::Text(access::company_name(txn, home)?));
    Ok(())
}

/// Makes whoever created company `company` its first administrator: a membership
/// with its Administrator role (their own record stays in their home company).
fn admit_founder(
    txn: &mut Txn<'_, '_>,
    who: &Principal,
    company: u64,
    now: time::OffsetDateTime,
) -> Result<(), KernelError> {
    let admin = crate::auth::seed_company(txn, who, company, now)?;
    let mut values = BTreeMap::new();
    values.insert("username", Value::Text(who.username.clone()));
    values.insert("role", Value::Ref(admin));
    values.insert("user", Value::Int(who.user_id as i64));
    values.insert(
        "home",
        Value::Text(access::company_name(txn, who.home_company)?),
    );
    insert_as(txn, &MEMBERSHIP, who, company, values, now)?;
    Ok(())
}

/// Deletes `old` as `who`: a delete is a new version too (tailers order by version).
fn delete_record(
    txn: &mut Txn<'_, '_>,
    def: &'static EntityDef,
    who: &Principal,
    old: &Record,
    now: time::OffsetDateTime,
) -> Result<(), KernelError> {
    let mut gone = old.clone();
    gone.version = old.version + 1;
    gone.updated_at = now;
    gone.updated_by = who.user_id;
    write_record(txn, def, who, Some(old), &gone, Op::Delete)?;
    // Its documents go with it.
    crate::documents::drop_attached_in(txn, who, def, old.id, now)?;
    Ok(())
}

/// Refuses changes to users, roles and memberships that would give more than the
/// actor holds — granting is bounded by the granter's own grants, in every company the
/// change reaches — or that would leave a company without an administrator. `old`/`new`
/// are the record before and after (`None` for a create or a delete); `password_set`
/// says the change sets a user's password.
fn guard_grants(
    txn: &Txn<'_, '_>,
    def: &EntityDef,
    who: &Principal,
    old: Option<&Record>,
    new: Option<&Record>,
    password_set: bool,
) -> Result<(), KernelError> {
    if who.system || ![USER.code, ROLE.code, MEMBERSHIP.code].contains(&def.code) {
        return Ok(());
    }
    let mine = who.grants();
    let beyond = |g: &Grants| -> Option<String> {
        let excess = mine.excess(g);
        (!excess.is_empty()).then(|| excess.join(", "))
    };
    let here = |role: u64| access::role_grants(txn, who.company, role);
    if def.code == ROLE.code {
        if let Some(old) = old
            && let Some(x) = beyond(&access::grants_of(Some(&Role::from_record(old)?)))
        {
            return Err(KernelError::invalid(
                "permissions",
                format!(
                    "the role {} allows more than yours ({x}); only someone who holds that may change it",
                    old.title(&ROLE)
                ),
            ));
        }
        if let Some(new) = new
            && let Some(x) = beyond(&access::grants_of(Some(&Role::from_record(new)?)))
        {
            return Err(KernelError::invalid(
                "permissions",
                format!("you can grant only what your own role allows; {x} is beyond it"),
            ));
        }
    } else {
        let role_of = |r: &Record| -> Result<u64, KernelError> {
            Ok(if def.code == USER.code {
                User::from_record(r)?.role
            } else {
                Membership::from_record(r)?.role
            })
        };
        let subject = |r: &Record| -> Result<u64, KernelError> {
            Ok(if def.code == USER.code {
                r.id
            } else {
                Membership::from_record(r)?.user as u64
            })
        };
        if let Some(old) = old
            && subject(old)? != who.user_id
        {
            if let Some(x) = beyond(&here(role_of(old)?)?) {
                return Err(KernelError::invalid(
                    "role",
                    format!(
                        "{} holds more rights than you ({x}); ask someone who holds them",
                        old.title(def)
                    ),
                ));
            }
            // A new password opens every company the user is a member of: whoever sets
            // it must hold their rights there too. (Deactivating or deleting them only
            // takes access away: their home company's administrators always may.)
            if def.code == USER.code && password_set {
                for (company, m) in access::memberships_of(txn, old.id)? {
                    let theirs =
                        access::role_grants(txn, company, Membership::from_record(&m)?.role)?;
                    let excess = access::grants_in(txn, company, who.user_id)?.excess(&theirs);
                    if !excess.is_empty() {
                        return Err(KernelError::invalid(
                            "role",
                            format!(
                                "{} also works in {} with more rights than you hold there ({}); \
                                 ask someone who holds them",
                                old.title(def),
                                access::company_name(txn, company)?,
                                excess.join(", ")
                            ),
                        ));
                    }
                }
            }
        }
        if let Some(new) = new
            && let Some(x) = beyond(&here(role_of(new)?)?)
        {
            return Err(KernelError::invalid(
                "role",
                format!("you can give only a role within your own rights; it also allows {x}"),
            ));
        }
        // Linking a user into this company, or giving them another role here, changes
        // what their password opens (see above): only someone who may manage them at
        // home already may do it.
        let role_set = match (old, new) {
            (None, Some(_)) => true,
            (Some(o), Some(n)) => role_of(o)? != role_of(n)?,
            _ => false,
        };
        if def.code == MEMBERSHIP.code
            && role_set
            && let Some(new) = new
        {
            let user = Membership::from_record(new)?.user as u64;
            if let Some((home, record)) = access::home_of(txn, user, new.company)? {
                let mine_there = access::grants_in(txn, home, who.user_id)?;
                let theirs = access::role_grants(txn, home, record.role)?;
                if !mine_there.allows("user", Action::Write)
                    || !mine_there.excess(&theirs).is_empty()
                {
                    return Err(KernelError::invalid(
                        "username",
                        format!(
                            "giving {} access here, or another role, needs the right to manage \
                             them in their own company (user:w and their rights there); ask an \
                             administrator of both",
                            record.username
                        ),
                    ));
                }
            }
        }
    }
    // A user's deactivation or delete cannot leave a company they are a member of
    // without an administrator: whoever makes it holds their rights there (above), so
    // is an administrator of it too.
    keep_an_administrator(txn, def, who.company, old, new)
}

/// A change not yet written, as [`has_administrator`] must see it: record `id` of
/// `def` becomes `new` (`None`: deleted).
struct Pending<'a> {
    def: &'a EntityDef,
    id: u64,
    new: Option<&'a Record>,
}

impl Pending<'_> {
    /// The record as it will be, if `rec` is the one changing; `None` when it goes.
    fn apply<'r>(&self, def: &EntityDef, rec: &'r Record) -> Option<std::borrow::Cow<'r, Record>> {
        if def.code == self.def.code && rec.id == self.id {
            self.new.map(|n| std::borrow::Cow::Owned(n.clone()))
        } else {
            Some(std::borrow::Cow::Borrowed(rec))
        }
    }
}

/// Refuses a change after which no active user of the company — its own or a member
/// from another company — holds an administrator's grants (users and roles).
fn keep_an_administrator(
    txn: &Txn<'_, '_>,
    def: &EntityDef,
    company: u64,
    old: Option<&Record>,
    new: Option<&Record>,
) -> Result<(), KernelError> {
    // Only a change to a role's grants, a user's or member's role, a user's active
    // flag, or a delete can take administration away.
    let touches = match (old, new) {
        (Some(_), None) => true,
        (Some(o), Some(n)) if def.code == ROLE.code => {
            Role::from_record(o)?.permissions != Role::from_record(n)?.permissions
        }
        (Some(o), Some(n)) if def.code == USER.code => {
            let (o, n) = (User::from_record(o)?, User::from_record(n)?);
            o.role != n.role || o.active != n.active
        }
        (Some(o), Some(n)) => Membership::from_record(o)?.role != Membership::from_record(n)?.role,
        _ => false,
    };
    let Some(o) = old.filter(|_| touches) else {
        return Ok(());
    };
    if has_administrator(txn, company, &Pending { def, id: o.id, new })? {
        return Ok(());
    }
    Err(KernelError::Conflict(
        "this would leave the company without an administrator; give another active user \
         an administrator's role first"
            .into(),
    ))
}

/// Whether, after `change`, an active user of `company` or a member of it from another
/// company holds an administrator's grants there.
fn has_administrator(
    txn: &Txn<'_, '_>,
    company: u64,
    change: &Pending<'_>,
) -> Result<bool, KernelError> {
    let grants = |role: u64| -> Result<Grants, KernelError> {
        if change.def.code == ROLE.code && change.id == role {
            return Ok(match change.new {
                Some(n) => access::grants_of(Some(&Role::from_record(n)?)),
                None => Grants::default(),
            });
        }
        access::role_grants(txn, company, role)
    };
    let user_as_changed = |user: Record| -> Result<Option<User>, KernelError> {
        match change.apply(&USER, &user) {
            Some(u) => Ok(Some(User::from_record(&u)?)),
            None => Ok(None),
        }
    };
    for (_, bytes) in txn.scan_prefix(Table::Records, &keys::scope(&USER, company))? {
        let Some(user) = user_as_changed(Record::decode(&USER, &bytes)?)? else {
            continue;
        };
        if user.active && access::administers(&grants(user.role)?) {
            return Ok(true);
        }
    }
    for (_, bytes) in txn.scan_prefix(Table::Records, &keys::scope(&MEMBERSHIP, company))? {
        let rec = Record::decode(&MEMBERSHIP, &bytes)?;
        let Some(m) = change.apply(&MEMBERSHIP, &rec) else {
            continue;
        };
        let m = Membership::from_record(&m)?;
        let active = match access::home_record(txn, m.user as u64, company)? {
            Some((_, record)) => user_as_changed(record)?.is_some_and(|u| u.active),
            None => false,
        };
        if active && access::administers(&grants(m.role)?) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Writes `new` (replacing `old`), maintaining indexes, unique keys, counts, the
/// change log, the audit chain and the record's history.
pub(crate) fn write_record(
    txn: &mut Txn<'_, '_>,
    def: &'static EntityDef,
    who: &Principal,
    old: Option<&Record>,
    new: &Record,
    op: Op,
) -> Result<(), KernelError> {
    let company = new.company;
    if op != Op::Delete {
        check_refs(txn, def, new)?;
        check_unique(txn, def, new)?;
    }
    for (i, f) in def.fields.iter().enumerate() {
        let i = i as u8;
        let before = old.map(|o| o.get(f.name));
        let after = (op != Op::Delete).then(|| new.get(f.name));
        if before == after {
            continue;
        }
        if f.indexed {
            if let Some(b) = before {
                txn.delete(Table::Index, keys::index(def, company, i, b, new.id));
            }
            if let Some(a) = after {
                txn.put(
                    Table::Index,
                    keys::index(def, company, i, a, new.id),
                    Vec::new(),
                );
            }
        }
        if f.unique != Unique::No {
            let scope = if f.unique == Unique::Global {
                0
            } else {
                company
            };
            if let Some(b) = before.filter(|b| !b.is_empty()) {
                txn.delete(Table::Index, keys::unique(def, scope, i, b));
            }
            if let Some(a) = after.filter(|a| !a.is_empty()) {
                let mut owner = company.to_be_bytes().to_vec();
                owner.extend(new.id.to_be_bytes());
                txn.put(Table::Index, keys::unique(def, scope, i, a), owner);
            }
        }
    }
    let key = keys::record(def, company, new.id);
    let count_key = keys::scope(def, company);
    let count = txn
        .get(Table::Counts, &count_key)?
        .and_then(|b| decode_u64(&b))
        .unwrap_or(0);
    match op {
        Op::Create => {
            txn.put(Table::Records, key, new.encode()?);
            txn.put(Table::Counts, count_key, u64_key(count + 1).to_vec());
        }
        Op::Update => txn.put(Table::Records, key, new.encode()?),
        Op::Delete => {
            txn.delete(Table::Records, key);
            txn.put(
                Table::Counts,
                count_key,
                u64_key(count.saturating_sub(1)).to_vec(),
            );
        }
    }
    let seq = event::append(
        txn,
        NewEvent {
            at_ms: unix_ms(new.updated_at),
            actor: who.user_id,
            actor_name: who.display_name.clone(),
            company,
            entity: def.name,
            record: new.id,
            op,
            version: new.version,
            before: old.map(|o| o.audit_image(def)),
            after: (op != Op::Delete).then(|| new.audit_image(def)),
        },
    )?;
    txn.put(
        Table::History,
        keys::history(def, company, new.id, seq),
        Vec::new(),
    );
    Ok(())
}

fn check_refs(txn: &Txn<'_, '_>, def: &'static EntityDef, rec: &Record) -> Result<(), KernelError> {
    let mut errors = FieldErrors::default();
    for f in def.fields {
        let FieldKind::Ref(target) = f.kind else {
            continue;
        };
        let Some(id) = rec.get(f.name).as_ref_id() else {
            continue;
        };
        let Some(target_def) = crate::builtin::entity(target) else {
            continue;
        };
        if txn
            .get(Table::Records, &keys::record(target_def, rec.company, id))?
            .is_none()
        {
            errors.push(
                f.name,
                format!(
                    "there is no {} with id {id} in your company",
                    target_def.label.to_lowercase()
                ),
            );
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(KernelError::Invalid(errors))
    }
}

fn check_unique(
    txn: &Txn<'_, '_>,
    def: &'static EntityDef,
    rec: &Record,
) -> Result<(), KernelError> {
    let mut errors = FieldErrors::default();
    for (i, f) in def.fields.iter().enumerate() {
        if f.unique == Unique::No {
            continue;
        }
        let v = rec.get(f.name);
        if v.is_empty() {
            continue;
        }
        let scope = if f.unique == Unique::Global {
            0
        } else {
            rec.company
        };
        if let Some(owner) = txn.get(Table::Index, &keys::unique(def, scope, i as u8, v))?
            && keys::id_suffix(&owner) != Some(rec.id)
        {
            let place = if f.unique == Unique::Global {
                "on this appliance"
            } else {
                "in your company"
            };
            errors.push(
                f.name,
                format!(
                    "another {} {place} already has this {}",
                    def.label.to_lowercase(),
                    f.label.to_lowercase()
                ),
            );
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(KernelError::Invalid(errors))
    }
}

/// Looks up a globally unique value (e.g. a login name): (company, id).
pub(crate) fn find_unique(
    read: &impl Reader,
    def: &'static EntityDef,
    field: &str,
    value: &Value,
) -> Result<Option<(u64, u64)>, KernelError> {
    let Some(i) = def.field_index(field) else {
        return Ok(None);
    };
    let Some(owner) = read.get(Table::Index, &keys::unique(def, 0, i, value))? else {
        return Ok(None);
    };
    let company = owner.get(..8).and_then(decode_u64);
    let id = owner.get(8..16).and_then(decode_u64);
    Ok(company.zip(id))
}

/// Inserts a record as the system inside an existing command (bootstrap, seeding);
/// `company: None` makes a company, which is its own tenant.
pub(crate) fn insert_as_system(
    txn: &mut Txn<'_, '_>,
    def: &'static EntityDef,
    company: Option<u64>,
    values: BTreeMap<&'static str, Value>,
    now: time::OffsetDateTime,
) -> Result<Record, KernelError> {
    let id = next_id(txn)?;
    let company = company.unwrap_or(id);
    insert_with_id(
        txn,
        def,
        &Principal::system(company),
        (company, id),
        values,
        now,
    )
}

/// Inserts a record into `company` as `who` inside an existing command, without the
/// checks of a person's create (the caller made them): seeding a new company.
pub(crate) fn insert_as(
    txn: &mut Txn<'_, '_>,
    def: &'static EntityDef,
    who: &Principal,
    company: u64,
    values: BTreeMap<&'static str, Value>,
    now: time::OffsetDateTime,
) -> Result<Record, KernelError> {
    let id = next_id(txn)?;
    insert_with_id(txn, def, who, (company, id), values, now)
}

fn insert_with_id(
    txn: &mut Txn<'_, '_>,
    def: &'static EntityDef,
    who: &Principal,
    (company, id): (u64, u64),
    values: BTreeMap<&'static str, Value>,
    now: time::OffsetDateTime,
) -> Result<Record, KernelError> {
    let now = to_stored_precision(now);
    let rec = Record {
        id,
        company,
        version: 1,
        created_at: now,
        updated_at: now,
        created_by: who.user_id,
        updated_by: who.user_id,
        values,
        unknown: Vec::new(),
    };
    write_record(txn, def, who, None, &rec, Op::Create)?;
    Ok(rec)
}
