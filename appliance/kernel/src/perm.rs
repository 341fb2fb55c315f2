//! Role permissions: per-entity actions, written `customer:rcwdx, contact:r`.

use std::collections::BTreeMap;
use std::fmt;

/// What a person may do with records of an entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Read,
    Create,
    Write,
    Delete,
    Export,
}

impl Action {
    pub const ALL: [Action; 5] = [
        Action::Read,
        Action::Create,
        Action::Write,
        Action::Delete,
        Action::Export,
    ];

    fn letter(self) -> char {
        match self {
            Action::Read => 'r',
            Action::Create => 'c',
            Action::Write => 'w',
            Action::Delete => 'd',
            Action::Export => 'x',
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }

    pub fn verb(self) -> &'static str {
        match self {
            Action::Read => "view",
            Action::Create => "create",
            Action::Write => "edit",
            Action::Delete => "delete",
            Action::Export => "export",
        }
    }
}

/// The actions a role grants, per entity name; `*` stands for every entity.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    by_entity: BTreeMap<String, u8>,
}

impl Grants {
    /// Everything on every entity (the Administrator role, the system).
    pub fn all() -> Grants {
        let mut g = Grants::default();
        g.by_entity.insert("*".into(), 0b1_1111);
        g
    }

    pub fn allows(&self, entity: &str, action: Action) -> bool {
        let mask = self.by_entity.get(entity).copied().unwrap_or(0)
            | self.by_entity.get("*").copied().unwrap_or(0);
        mask & action.bit() != 0
    }

    /// What `other` grants beyond these grants, as `entity:letters` (empty when these
    /// cover it): granting is bounded by what the granter holds.
    pub fn excess(&self, other: &Grants) -> Vec<String> {
        let star = self.by_entity.get("*").copied().unwrap_or(0);
        other
            .by_entity
            .iter()
            .filter_map(|(entity, mask)| {
                let have = if entity == "*" {
                    star
                } else {
                    self.by_entity.get(entity).copied().unwrap_or(0) | star
                };
                let beyond = mask & !have;
                (beyond != 0).then(|| {
                    let letters: String = Action::ALL
                        .iter()
                        .filter(|a| beyond & a.bit() != 0)
                        .map(|a| a.letter())
                        .collect();
                    format!("{entity}:{letters}")
                })
            })
            .collect()
    }

    /// Parses `entity:letters` pairs separated by commas or spaces. Letters: r(ead),
    /// c(reate), w(rite), d(elete), x (export). Unknown entities and letters are refused.
    pub fn parse(input: &str) -> Result<Grants, String> {
        let known: Vec<&str> = crate::registry::entities().map(|e| e.name).collect();
        Grants::parse_over(input, &known)
    }

    /// [`Grants::parse`] over the given entity names (the registry checks modules'
    /// roles this way before it is installed).
    pub(crate) fn parse_over(input: &str, known: &[&str]) -> Result<Grants, String> {
        let mut g = Grants::default();
        for part in input
            .split(|c: char| c == ',' || c == ';' || c.is_whitespace())
            .filter(|p| !p.is_empty())
        {
            let Some((entity, letters)) = part.split_once(':') else {
                return Err(format!(
                    "\"{part}\" should look like entity:letters, e.g. customer:rcw"
                ));
            };
            let entity = entity.trim().to_ascii_lowercase();
            if entity != "*" && !known.contains(&entity.as_str()) {
                return Err(format!(
                    "\"{entity}\" is not an entity; known: *, {}",
                    known.join(", ")
                ));
            }
            let mut mask = 0u8;
            for c in letters.trim().chars() {
                let action = Action::ALL
                    .iter()
                    .find(|a| a.letter() == c.to_ascii_lowercase())
                    .ok_or_else(|| format!("\"{c}\" is not an action letter (r, c, w, d, x)"))?;
                mask |= action.bit();
            }
            *g.by_entity.entry(entity).or_default() |= mask;
        }
        Ok(g)
    }
}

impl fmt::Display for Grants {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (entity, mask) in &self.by_entity {
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            write!(f, "{entity}:")?;
            for a in Action::ALL {
                if mask & a.bit() != 0 {
                    write!(f, "{}", a.letter())?;
                }
            }
        }
        Ok(())
    }
}

/// Who is acting: the capability every kernel call takes. Built only by the kernel
/// (from a session, or for the system itself), so a handler cannot make one up.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: u64,
    pub username: String,
    pub display_name: String,
    pub company: u64,
    pub company_name: String,
    /// The company the user belongs to (where their record is); `company` differs
    /// when they act as a member of another one.
    pub home_company: u64,
    pub role_name: String,
    grants: Grants,
    /// Whether they administer the box itself (the first company, where the box's
    /// administrators are): its certificate, schedules, metrics, transparency log.
    box_admin: bool,
    pub(crate) system: bool,
}

impl Principal {
    pub(crate) fn new(
        user_id: u64,
        username: String,
        display_name: String,
        company: (u64, String),
        home_company: u64,
        (role_name, grants): (String, Grants),
        box_admin: bool,
    ) -> Principal {
        Principal {
            user_id,
            username,
            display_name,
            company: company.0,
            company_name: company.1,
            home_company,
            role_name,
            grants,
            box_admin,
            system: false,
        }
    }

    /// The appliance itself acting for a company (CLI, setup, demo seeding).
    pub fn system(company: u64) -> Principal {
        Principal {
            user_id: 0,
            username: "system".into(),
            display_name: "System".into(),
            company,
            company_name: String::new(),
            home_company: company,
            role_name: "System".into(),
            grants: Grants::all(),
            box_admin: true,
            system: true,
        }
    }

    pub fn can(&self, entity: &str, action: Action) -> bool {
        self.grants.allows(entity, action)
    }

    /// What this principal's role grants.
    pub(crate) fn grants(&self) -> &Grants {
        &self.grants
    }

    pub fn is_admin(&self) -> bool {
        crate::access::administers(&self.grants)
    }

    /// Whether this principal administers the box, not only the company it works in:
    /// an administrator of the first company (the box's own), wherever they work now.
    pub fn administers_box(&self) -> bool {
        self.box_admin
    }

    /// Whether this principal holds every permission (may create companies).
    pub fn holds_everything(&self) -> bool {
        self.grants.excess(&Grants::all()).is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_round_trip_and_explain_mistakes() {
        crate::test_entities::install();
        let g = Grants::parse("customer:rcw contact:r, *:r").expect("parse");
        assert!(g.allows("customer", Action::Write));
        assert!(!g.allows("customer", Action::Delete));
        assert!(g.allows("user", Action::Read));
        assert_eq!(g.to_string(), "*:r, contact:r, customer:rcw");
        assert_eq!(Grants::parse(&g.to_string()), Ok(g));
        let e = Grants::parse("custmer:r").expect_err("unknown entity");
        assert!(e.contains("\"custmer\" is not an entity"), "{e}");
        let e = Grants::parse("customer:rq").expect_err("bad letter");
        assert!(e.contains("\"q\" is not an action letter"), "{e}");
        let e = Grants::parse("customer").expect_err("no colon");
        assert!(e.contains("entity:letters"), "{e}");
    }
}
