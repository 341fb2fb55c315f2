//! The built-in entities: the tenant, its people and access, and module settings.
//! Business records (customers, suppliers, accounts) belong to the modules.

use crate::entity::{Creation, EntityDef, Unique};
use crate::typed::field::{self, Bool, Choice, Email, Int, LongText, Password, Ref, Text};

crate::choice! {
    /// The currencies a company may keep its books in.
    pub enum BookCurrency { USD, EUR, GBP, CHF, CAD, AUD, JPY }
}

crate::entity! {
    /// A company: the tenant every other record belongs to.
    pub struct Company in COMPANY {
        name: "company", code: 1, module: "admin", label: "Company", plural: "Companies",
        title: name, search: [name, legal_name, tax_id], creation: Creation::ByRole,
    }
    fields {
        name: Text<120> = "Name" .indexed().list(),
        legal_name: Option<Text<200>> = "Legal name" .list(),
        tax_id: Option<Text<40>> = "Tax ID" .list(),
        currency: Choice<BookCurrency> = "Currency"
            .list()
            .help("The currency the books are kept in."),
        address: Option<LongText> = "Address",
    }
}

crate::entity! {
    /// A role: a named set of grants that users hold.
    pub struct Role in ROLE {
        name: "role", code: 2, module: "admin", label: "Role", plural: "Roles",
        title: name, search: [name, permissions], creation: Creation::ByRole,
    }
    fields {
        name: Text<60> = "Name" .indexed().unique(Unique::PerCompany).list(),
        permissions: field::Grants = "Permissions"
            .list()
            .help("entity:letters, comma separated. Letters: r read, c create, w write, d delete, x export. * means every entity, e.g. customer:rcw, contact:r"),
        description: Option<LongText> = "Description",
        require_mfa: Bool = "Requires a second factor"
            .help("Its holders must set up an authenticator app before they can work."),
    }
}

crate::entity! {
    /// A person who signs in.
    pub struct User in USER {
        name: "user", code: 3, module: "admin", label: "User", plural: "Users",
        title: full_name, search: [username, full_name, email], creation: Creation::ByRole,
    }
    fields {
        username: Text<64> = "Login name"
            .indexed()
            .unique(Unique::Global)
            .list()
            .help("Used to sign in; unique on this appliance."),
        full_name: Text<120> = "Full name" .indexed().list(),
        email: Option<Email> = "E-mail" .list(),
        role: Ref<Role> = "Role" .indexed().list(),
        active: Bool = "Active" .list().help("Inactive users cannot sign in."),
        password: Password = "Password" .help("At least 10 characters."),
        password_changed: Option<Text<40>> = "Password changed"
            .by_appliance()
            .help("When the password was last set (the history shows each change)."),
    }
}

crate::entity! {
    /// A user of another company on this appliance who may work in this one, with a
    /// role of this company. The user's own record stays in their home company, which
    /// alone sets their password and may deactivate them.
    pub struct Membership in MEMBERSHIP {
        name: "membership", code: 4, module: "admin", label: "Member from another company",
        plural: "Members from other companies",
        title: username, search: [username, home], creation: Creation::ByRole,
    }
    fields {
        username: Text<64> = "Login name"
            .indexed()
            .list()
            .help("The login name of a user of another company on this appliance."),
        role: Ref<Role> = "Role" .indexed().list().help("What they may do in this company."),
        user: Int<1, { i64::MAX }> = "User id"
            .unique(Unique::PerCompany)
            .by_appliance()
            .help("The user this membership names (fixed when it is made)."),
        home: Option<Text<120>> = "Home company" .list().by_appliance(),
    }
}

crate::entity! {
    /// A module's setting for one company (the ledger's lock date, its negative-stock
    /// policy): a record, so that every change has its event, its before and after, and
    /// its place in the record's history. Written only through
    /// [`crate::Command::set_setting`], read through [`crate::Command::setting`].
    pub struct Setting in SETTING {
        name: "setting", code: 13, module: "admin", label: "Setting", plural: "Settings",
        title: name, search: [name],
        creation: Creation::Module(
            "settings are changed on their module's pages (e.g. the lock date under Ledger)",
        ),
    }
    fields {
        name: Text<80> = "Name"
            .indexed()
            .unique(Unique::PerCompany)
            .list()
            .help("module.setting, e.g. ledger.lock_date"),
        value: Option<Text<200>> = "Value" .list(),
    }
}

/// The kernel's own entities. A module's entities join them through
/// [`crate::registry::install`] (a module's `entities`); ask [`crate::registry`] for every entity.
pub static ENTITIES: &[&EntityDef] = &[&COMPANY, &ROLE, &USER, &MEMBERSHIP, &SETTING];

pub fn entity(name: &str) -> Option<&'static EntityDef> {
    crate::registry::entity(name)
}

/// The roles every new company starts with.
pub const DEFAULT_ROLES: &[(&str, &str, &str)] = &[(
    "Administrator",
    "*:rcwdx",
    "Everything, including users, roles and the company.",
)];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entity::FieldKind;

    #[test]
    fn entity_codes_names_and_titles_are_consistent() {
        let mut codes: Vec<u16> = ENTITIES.iter().map(|e| e.code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), ENTITIES.len(), "entity codes must be unique");
        for e in ENTITIES {
            assert!(e.field(e.title_field).is_some(), "{}: title field", e.name);
            for s in e.search_fields {
                assert!(e.field(s).is_some(), "{}: search field {s}", e.name);
            }
            assert!(
                e.fields.len() < 128,
                "{}: field index must fit 7 bits",
                e.name
            );
            for f in e.fields {
                if let FieldKind::Ref(target) = f.kind {
                    assert!(
                        entity(target).is_some(),
                        "{}.{}: unknown ref target",
                        e.name,
                        f.name
                    );
                }
            }
        }
    }

    #[test]
    fn default_roles_parse() {
        for (name, grants, _) in DEFAULT_ROLES {
            assert!(crate::perm::Grants::parse(grants).is_ok(), "{name}");
        }
    }
}
