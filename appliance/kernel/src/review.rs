//! The access review: who may act in a company, with which role and grants, whether
//! they are active, when they last signed in, whether they have a second factor, and
//! which API tokens act there — for the Compliance module's page and export.

use nexus_store::{Reader, Table, u64_key};
use time::OffsetDateTime;

use crate::builtin::{MEMBERSHIP, Membership, USER, User};
use crate::error::KernelError;
use crate::perm::{Action, Principal};
use crate::record::{Record, keys};
use crate::typed::Typed;
use crate::{Kernel, access};

/// One person who may act in the company reviewed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessEntry {
    pub user: u64,
    pub username: String,
    pub full_name: String,
    /// Their home company's name, when they act here as a member of another one.
    pub member_from: Option<String>,
    pub role: String,
    /// What the role grants, as written on the role.
    pub grants: String,
    /// Whether the role requires a second factor.
    pub role_requires_mfa: bool,
    pub active: bool,
    pub last_sign_in: Option<OffsetDateTime>,
    pub mfa: bool,
    /// Live (unexpired) API tokens acting here: (name, scopes, expires).
    pub tokens: Vec<(String, String, OffsetDateTime)>,
}

fn last_sign_in_key(user: u64) -> Vec<u8> {
    let mut key = b"last_sign_in|".to_vec();
    key.extend_from_slice(&u64_key(user));
    key
}

/// Records `user`'s sign-in at `at` (Unix seconds), in the command that stores the session.
pub(crate) fn note_sign_in(txn: &mut nexus_store::Txn<'_, '_>, user: u64, at: i64) {
    txn.put(
        Table::Meta,
        last_sign_in_key(user),
        at.to_be_bytes().to_vec(),
    );
}

fn last_sign_in(r: &impl Reader, user: u64) -> Result<Option<OffsetDateTime>, KernelError> {
    Ok(r.get(Table::Meta, &last_sign_in_key(user))?
        .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
        .and_then(|b| OffsetDateTime::from_unix_timestamp(i64::from_be_bytes(b)).ok()))
}

impl Kernel {
    /// Everyone who may act in the company `who` works in (its own users, then members
    /// from other companies), by login name. Needs permission to view users; through
    /// an API token it needs to view roles and memberships too, as the page does.
    pub fn access_review(&self, who: &Principal) -> Result<Vec<AccessEntry>, KernelError> {
        for entity in ["user", "role", "membership"] {
            if !who.can(entity, Action::Read) {
                return Err(KernelError::Forbidden {
                    action: Action::Read.verb(),
                    entity: format!("{entity}s (the access review shows them)"),
                });
            }
        }
        let company = who.company;
        let read = self.store().read()?;
        let now = self.clock().now();
        let tokens = self.tokens_in(company)?;
        let mut people: Vec<(u64, User, Option<u64>, u64)> = Vec::new();
        for (_, bytes) in read.scan_prefix(Table::Records, &keys::scope(&USER, company))? {
            let record = Record::decode(&USER, &bytes)?;
            let user = User::from_record(&record)?;
            let role = user.role;
            people.push((record.id, user, None, role));
        }
        for (_, bytes) in read.scan_prefix(Table::Records, &keys::scope(&MEMBERSHIP, company))? {
            let m = Membership::from_record(&Record::decode(&MEMBERSHIP, &bytes)?)?;
            let user_id = m.user as u64;
            if let Some((home, user)) = access::home_of(&read, user_id, company)? {
                people.push((user_id, user, Some(home), m.role));
            }
        }
        let mut out = Vec::new();
        for (id, user, home, role_id) in people {
            let role = access::role(&read, company, role_id)?;
            out.push(AccessEntry {
                user: id,
                username: user.username.clone(),
                full_name: user.full_name.clone(),
                member_from: home.map(|h| access::company_name(&read, h)).transpose()?,
                role: role
                    .as_ref()
                    .map_or_else(|| "(no role)".into(), |r| r.name.clone()),
                grants: role
                    .as_ref()
                    .map(|r| r.permissions.clone())
                    .unwrap_or_default(),
                role_requires_mfa: role.as_ref().is_some_and(|r| r.require_mfa),
                active: user.active,
                last_sign_in: last_sign_in(&read, id)?,
                mfa: crate::mfa::enabled(&read, id)?,
                tokens: tokens
                    .iter()
                    .filter(|t| t.user == id && t.expires > now)
                    .map(|t| (t.name.clone(), t.scopes.clone(), t.expires))
                    .collect(),
            });
        }
        out.sort_by(|a, b| a.username.cmp(&b.username));
        Ok(out)
    }
}
