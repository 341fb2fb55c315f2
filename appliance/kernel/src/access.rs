//! Who may act in which company. A user belongs to one company — their record, and so
//! their password and their active flag, live there (their *home*) — and may be a
//! member of other companies on the same box, with a role of that company
//! ([`MEMBERSHIP`] records, kept by that company's administrators). The same rules
//! answer inside a write (a [`Txn`](nexus_store::Txn)) and outside it (a snapshot):
//! every function here takes a [`Reader`].

use nexus_store::{Reader, Table};

use crate::builtin::{COMPANY, Company, MEMBERSHIP, Membership, ROLE, Role, USER, User};
use crate::error::KernelError;
use crate::perm::{Action, Grants};
use crate::record::{Record, keys};
use crate::typed::Typed;
use crate::value::Value;

/// How a user stands in a company they may act in.
#[derive(Debug, Clone)]
pub(crate) struct Standing {
    /// Their home company (where their user record is).
    pub home: u64,
    pub user: User,
    /// The role they act with here: their own in their home company, their
    /// membership's elsewhere.
    pub role: u64,
}

/// A record of `def` in `company`, if it exists.
pub(crate) fn load(
    r: &impl Reader,
    def: &'static crate::EntityDef,
    company: u64,
    id: u64,
) -> Result<Option<Record>, KernelError> {
    match r.get(Table::Records, &keys::record(def, company, id))? {
        Some(bytes) => Ok(Some(Record::decode(def, &bytes)?)),
        None => Ok(None),
    }
}

/// Every company on the box: (id, name), in creation order.
pub(crate) fn companies(r: &impl Reader) -> Result<Vec<(u64, String)>, KernelError> {
    r.scan_prefix(Table::Records, &COMPANY.code.to_be_bytes())?
        .into_iter()
        .map(|(_, bytes)| {
            let rec = Record::decode(&COMPANY, &bytes)?;
            Ok((rec.id, Company::from_record(&rec)?.name))
        })
        .collect()
}

/// The name of `company` (empty when it is gone).
pub(crate) fn company_name(r: &impl Reader, company: u64) -> Result<String, KernelError> {
    Ok(load(r, &COMPANY, company, company)?
        .map(|rec| Company::from_record(&rec))
        .transpose()?
        .map(|c| c.name)
        .unwrap_or_default())
}

/// The home company of `user` and their record there; `hint` is looked at first
/// (usually the company asked about).
pub(crate) fn home_record(
    r: &impl Reader,
    user: u64,
    hint: u64,
) -> Result<Option<(u64, Record)>, KernelError> {
    if let Some(rec) = load(r, &USER, hint, user)? {
        return Ok(Some((hint, rec)));
    }
    for (company, _) in companies(r)? {
        if company != hint
            && let Some(rec) = load(r, &USER, company, user)?
        {
            return Ok(Some((company, rec)));
        }
    }
    Ok(None)
}

/// [`home_record`], read as a [`User`].
pub(crate) fn home_of(
    r: &impl Reader,
    user: u64,
    hint: u64,
) -> Result<Option<(u64, User)>, KernelError> {
    home_record(r, user, hint)?
        .map(|(company, rec)| Ok((company, User::from_record(&rec)?)))
        .transpose()
}

/// The unique key that finds the membership of `user` in `company`.
pub(crate) fn membership_key(company: u64, user: u64) -> Vec<u8> {
    let field = MEMBERSHIP.field_index("user").unwrap_or(u8::MAX);
    keys::unique(&MEMBERSHIP, company, field, &Value::Int(user as i64))
}

/// The membership of `user` in `company`, if they have one.
pub(crate) fn membership(
    r: &impl Reader,
    company: u64,
    user: u64,
) -> Result<Option<Record>, KernelError> {
    let Some(owner) = r.get(Table::Index, &membership_key(company, user))? else {
        return Ok(None);
    };
    match keys::id_suffix(&owner) {
        Some(id) => load(r, &MEMBERSHIP, company, id),
        None => Ok(None),
    }
}

/// How `user` stands in `company`: `None` when they may not act there (no such user,
/// an inactive one, or neither their home nor a company they are a member of).
pub(crate) fn standing(
    r: &impl Reader,
    company: u64,
    user: u64,
) -> Result<Option<Standing>, KernelError> {
    let Some((home, record)) = home_of(r, user, company)? else {
        return Ok(None);
    };
    if !record.active {
        return Ok(None);
    }
    let role = if home == company {
        record.role
    } else {
        match membership(r, company, user)? {
            Some(m) => Membership::from_record(&m)?.role,
            None => return Ok(None),
        }
    };
    Ok(Some(Standing {
        home,
        user: record,
        role,
    }))
}

/// The role `id` of `company`, if it exists.
pub(crate) fn role(r: &impl Reader, company: u64, id: u64) -> Result<Option<Role>, KernelError> {
    load(r, &ROLE, company, id)?
        .map(|rec| Role::from_record(&rec))
        .transpose()
}

/// What a role grants (nothing, for no role or grants that no longer parse).
pub(crate) fn grants_of(role: Option<&Role>) -> Grants {
    role.and_then(|r| Grants::parse(&r.permissions).ok())
        .unwrap_or_default()
}

/// What role `id` of `company` grants (nothing when it is gone).
pub(crate) fn role_grants(r: &impl Reader, company: u64, id: u64) -> Result<Grants, KernelError> {
    Ok(grants_of(role(r, company, id)?.as_ref()))
}

/// What `user` may do in `company` (nothing where they may not act).
pub(crate) fn grants_in(r: &impl Reader, company: u64, user: u64) -> Result<Grants, KernelError> {
    match standing(r, company, user)? {
        Some(s) => role_grants(r, company, s.role),
        None => Ok(Grants::default()),
    }
}

/// Whether these grants administer a company (users and roles).
pub(crate) fn administers(g: &Grants) -> bool {
    g.allows("user", Action::Write) && g.allows("role", Action::Write)
}

/// The companies `user` may act in, (id, name), in creation order.
pub(crate) fn companies_of(r: &impl Reader, user: u64) -> Result<Vec<(u64, String)>, KernelError> {
    let all = companies(r)?;
    let Some(first) = all.first().map(|(id, _)| *id) else {
        return Ok(Vec::new());
    };
    let Some((home, record)) = home_of(r, user, first)? else {
        return Ok(Vec::new());
    };
    if !record.active {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for (company, name) in all {
        if company == home
            || r.get(Table::Index, &membership_key(company, user))?
                .is_some()
        {
            out.push((company, name));
        }
    }
    Ok(out)
}

/// The companies other than its home where `user` is a member: (company, membership).
pub(crate) fn memberships_of(
    r: &impl Reader,
    user: u64,
) -> Result<Vec<(u64, Record)>, KernelError> {
    let mut out = Vec::new();
    for (company, _) in companies(r)? {
        if let Some(m) = membership(r, company, user)? {
            out.push((company, m));
        }
    }
    Ok(out)
}
