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

    pub fn letter(self) -> char {
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

/// The actions a role grants, per entity name; `*` stands for every entity. A key
/// `customer@own` (written `customer:rw@own`) grants the actions only on the records
/// the user owns (a record rule: the entity's `owner` field is them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    by_entity: BTreeMap<String, u8>,
}

/// The suffix of an own-records key.
const OWN: &str = "@own";

impl Grants {
    /// Everything on every entity (the Administrator role, the system).
    pub fn all() -> Grants {
        let mut g = Grants::default();
        g.by_entity.insert("*".into(), 0b1_1111);
        g
    }

    /// Whether `action` is granted on some records of `entity` (every record, or the
    /// ones the user owns).
    pub fn allows(&self, entity: &str, action: Action) -> bool {
        (self.have(entity) | self.have(&format!("{entity}{OWN}"))) & action.bit() != 0
    }

    /// Whether `action` is granted on every record of `entity`, not only the user's own.
    pub fn allows_every(&self, entity: &str, action: Action) -> bool {
        self.have(entity) & action.bit() != 0
    }

    /// What a key grants with everything that covers it: `*`, and for an own-records
    /// key the entity's grant on every record too.
    fn have(&self, key: &str) -> u8 {
        let get = |k: &str| self.by_entity.get(k).copied().unwrap_or(0);
        let star = get("*");
        match key.strip_suffix(OWN) {
            _ if key == "*" => star,
            Some(base) => get(key) | get(base) | star,
            None => get(key) | star,
        }
    }

    /// What `other` grants beyond these grants, as `entity:letters` (empty when these
    /// cover it): granting is bounded by what the granter holds.
    pub fn excess(&self, other: &Grants) -> Vec<String> {
        other
            .by_entity
            .iter()
            .filter_map(|(entity, mask)| {
                let beyond = mask & !self.have(entity);
                (beyond != 0).then(|| {
                    let letters: String = Action::ALL
                        .iter()
                        .filter(|a| beyond & a.bit() != 0)
                        .map(|a| a.letter())
                        .collect();
                    match entity.strip_suffix(OWN) {
                        Some(base) => format!("{base}:{letters}{OWN}"),
                        None => format!("{entity}:{letters}"),
                    }
                })
            })
            .collect()
    }

    /// What both grant: an API token acts with its user's grants narrowed to its scopes,
    /// so lowering the user's role lowers every token they made.
    pub fn intersect(&self, other: &Grants) -> Grants {
        let mut out = Grants::default();
        for entity in self.by_entity.keys().chain(other.by_entity.keys()) {
            let m = self.have(entity) & other.have(entity);
            if m != 0 {
                out.by_entity.insert(entity.clone(), m);
            }
        }
        out
    }

    /// Whether nothing is granted.
    pub fn is_empty(&self) -> bool {
        self.by_entity.values().all(|m| *m == 0)
    }

    /// Parses `entity:letters` pairs separated by commas or spaces. Letters: r(ead),
    /// c(reate), w(rite), d(elete), x (export). Unknown entities and letters are refused.
    pub fn parse(input: &str) -> Result<Grants, String> {
        let known: Vec<&crate::EntityDef> = crate::registry::entities().collect();
        Grants::parse_over(input, &known)
    }

    /// Whether `action` is granted on the guarded field `field` of `entity`: only by a
    /// grant of that field itself (`customer.credit_limit:r`) or `*`, never by the
    /// entity's grant.
    pub fn allows_field(&self, entity: &str, field: &str, action: Action) -> bool {
        let key = format!("{entity}.{field}");
        let mask = self.by_entity.get(&key).copied().unwrap_or(0)
            | self.by_entity.get("*").copied().unwrap_or(0);
        mask & action.bit() != 0
    }

    /// [`Grants::parse`] over the given entities (the registry checks modules' roles
    /// this way before it is installed). A key is an entity (`customer`), `*`, or a
    /// guarded field of an entity (`customer.credit_limit`).
    pub(crate) fn parse_over(input: &str, known: &[&crate::EntityDef]) -> Result<Grants, String> {
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
            let mut entity = entity.trim().to_ascii_lowercase();
            let (letters, own) = match letters.trim().strip_suffix(OWN) {
                Some(l) => (l, true),
                None => (letters.trim(), false),
            };
            let (name, field) = match entity.split_once('.') {
                Some((name, field)) => (name, Some(field)),
                None => (entity.as_str(), None),
            };
            let def = known.iter().find(|e| e.name == name);
            if entity != "*" && def.is_none() {
                let names: Vec<&str> = known.iter().map(|e| e.name).collect();
                return Err(format!(
                    "\"{name}\" is not an entity; known: *, {}",
                    names.join(", ")
                ));
            }
            if let (Some(def), Some(field)) = (def, field) {
                match def.fields.iter().find(|f| f.name == field) {
                    Some(f) if f.guarded => {}
                    Some(_) => {
                        return Err(format!(
                            "{name}.{field} is not a guarded field: {name}:r already shows it"
                        ));
                    }
                    None => return Err(format!("{name} has no field \"{field}\"")),
                }
            }
            if own {
                match def {
                    Some(def) if field.is_none() && def.owner().is_some() => {}
                    _ => {
                        return Err(format!(
                            "{entity}:…@own needs an entity whose records have an owner (an \"owner\" field naming a user)"
                        ));
                    }
                }
            }
            if own {
                entity.push_str(OWN);
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
            let (base, own) = match entity.strip_suffix(OWN) {
                Some(base) => (base, OWN),
                None => (entity.as_str(), ""),
            };
            write!(f, "{base}:")?;
            for a in Action::ALL {
                if mask & a.bit() != 0 {
                    write!(f, "{}", a.letter())?;
                }
            }
            f.write_str(own)?;
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
    /// The API token this principal acts through (its id), if it is not a session.
    token: Option<String>,
    /// Their role requires a second factor they have not set up: they hold no grants
    /// until they do.
    must_enrol: bool,
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
            token: None,
            must_enrol: false,
        }
    }

    /// This principal until they set up the second factor their role requires.
    pub(crate) fn until_enrolled(mut self) -> Principal {
        self.must_enrol = true;
        self
    }

    /// Whether their role requires a second factor they have not set up yet (they may
    /// do nothing but set it up and sign out).
    pub fn must_enrol_mfa(&self) -> bool {
        self.must_enrol
    }

    /// This principal acting through an API token: its grants narrowed to the token's
    /// scopes; it administers the box only if the scopes hold everything.
    pub(crate) fn through_token(mut self, id: String, scopes: &Grants) -> Principal {
        self.box_admin = self.box_admin && scopes.excess(&Grants::all()).is_empty();
        self.grants = self.grants.intersect(scopes);
        self.token = Some(id);
        self
    }

    /// The id of the API token this principal acts through; `None` for a session or
    /// the system. What changes access (passwords, second factors, tokens, companies)
    /// is refused through a token.
    pub fn via_token(&self) -> Option<&str> {
        self.token.as_deref()
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
            token: None,
            must_enrol: false,
        }
    }

    pub fn can(&self, entity: &str, action: Action) -> bool {
        self.grants.allows(entity, action)
    }

    /// When `action` on `def` is granted only on the records this principal owns (a
    /// record rule, `customer:rw@own`): their user id, which the record's owner must be.
    pub fn own_only(&self, def: &crate::EntityDef, action: Action) -> Option<u64> {
        (def.owner().is_some()
            && !self.grants.allows_every(def.name, action)
            && self.grants.allows(def.name, action))
        .then_some(self.user_id)
    }

    /// Whether this principal sees field `f` of `def`'s records (any field but a
    /// guarded one, which needs its own grant).
    pub fn sees(&self, def: &crate::EntityDef, f: &crate::FieldDef) -> bool {
        !f.guarded || self.grants.allows_field(def.name, f.name, Action::Read)
    }

    /// Whether this principal may set field `f` of `def`'s records.
    pub fn may_set(&self, def: &crate::EntityDef, f: &crate::FieldDef) -> bool {
        !f.guarded || self.grants.allows_field(def.name, f.name, Action::Write)
    }

    /// What this principal's role grants.
    pub(crate) fn grants(&self) -> &Grants {
        &self.grants
    }

    /// What this principal may do, written as a role's grants are (`customer:rcw, …`).
    pub fn grants_text(&self) -> String {
        self.grants.to_string()
    }

    pub fn is_admin(&self) -> bool {
        crate::access::administers(&self.grants)
    }

    /// Whether this principal administers the box, not only the company it works in:
    /// an administrator of the first company (the box's own), wherever they work now.
    pub fn administers_box(&self) -> bool {
        self.box_admin
    }

    /// Whether this principal holds everything `needed` grants; if not, the first
    /// missing grant (`invoice:c`).
    pub fn lacks(&self, needed: &Grants) -> Option<String> {
        self.grants.excess(needed).into_iter().next()
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

    #[test]
    fn an_intersection_grants_only_what_both_grant() {
        crate::test_entities::install();
        let role = Grants::parse("customer:rcwd, contact:r, *:r").expect("role");
        let scopes = Grants::parse("customer:rw, contact:rcw, user:r").expect("scopes");
        let both = role.intersect(&scopes);
        assert_eq!(both.to_string(), "contact:r, customer:rw, user:r");
        assert!(
            !both.allows("contact", Action::Create),
            "the role does not create contacts"
        );
        assert!(
            !both.allows("role", Action::Read),
            "the scopes do not read roles"
        );
        assert_eq!(Grants::all().intersect(&scopes), scopes);
        assert_eq!(scopes.intersect(&Grants::all()), scopes);
        assert!(
            Grants::parse("customer:r")
                .expect("g")
                .intersect(&Grants::parse("contact:r").expect("g"))
                .is_empty()
        );
    }
}
