//! The built-in entities: the tenant, its people and access, and module settings.
//! Business records (customers, suppliers, accounts) belong to the modules.

use crate::entity::{Creation, EntityDef, FieldDef, FieldKind, Unique};

const fn text(name: &'static str, label: &'static str, max: usize) -> FieldDef {
    FieldDef::new(name, label, FieldKind::Text { max })
}

pub static COMPANY: EntityDef = EntityDef {
    name: "company",
    code: 1,
    label: "Company",
    plural: "Companies",
    module: "admin",
    fields: &[
        text("name", "Name", 120).required().indexed().list(),
        text("legal_name", "Legal name", 200).list(),
        text("tax_id", "Tax ID", 40).list(),
        FieldDef::new(
            "currency",
            "Currency",
            FieldKind::Choice(&["USD", "EUR", "GBP", "CHF", "CAD", "AUD", "JPY"]),
        )
        .required()
        .list()
        .help("The currency the books are kept in."),
        FieldDef::new("address", "Address", FieldKind::LongText),
    ],
    title_field: "name",
    search_fields: &["name", "legal_name", "tax_id"],
    creation: Creation::SystemOnly,
};

pub static ROLE: EntityDef = EntityDef {
    name: "role",
    code: 2,
    label: "Role",
    plural: "Roles",
    module: "admin",
    fields: &[
        text("name", "Name", 60)
            .required()
            .indexed()
            .unique(Unique::PerCompany)
            .list(),
        FieldDef::new("permissions", "Permissions", FieldKind::Grants)
            .required()
            .list()
            .help("entity:letters, comma separated. Letters: r read, c create, w write, d delete, x export. * means every entity, e.g. customer:rcw, contact:r"),
        FieldDef::new("description", "Description", FieldKind::LongText),
    ],
    title_field: "name",
    search_fields: &["name", "permissions"],
    creation: Creation::ByRole,
};

pub static USER: EntityDef = EntityDef {
    name: "user",
    code: 3,
    label: "User",
    plural: "Users",
    module: "admin",
    fields: &[
        text("username", "Login name", 64)
            .required()
            .indexed()
            .unique(Unique::Global)
            .list()
            .help("Used to sign in; unique on this appliance."),
        text("full_name", "Full name", 120)
            .required()
            .indexed()
            .list(),
        FieldDef::new("email", "E-mail", FieldKind::Email).list(),
        FieldDef::new("role", "Role", FieldKind::Ref("role"))
            .required()
            .indexed()
            .list(),
        FieldDef::new("active", "Active", FieldKind::Bool)
            .list()
            .help("Inactive users cannot sign in."),
        FieldDef::new("password", "Password", FieldKind::Password).help("At least 10 characters."),
        text("password_changed", "Password changed", 40)
            .help("When the password was last set (the history shows each change)."),
    ],
    title_field: "full_name",
    search_fields: &["username", "full_name", "email"],
    creation: Creation::ByRole,
};

/// A module's setting for one company (the ledger's lock date, its negative-stock
/// policy): a record, so that every change has its event, its before and after, and
/// its place in the record's history. Written only through
/// [`crate::Command::set_setting`], read through [`crate::Command::setting`].
pub static SETTING: EntityDef = EntityDef {
    name: "setting",
    code: 13,
    label: "Setting",
    plural: "Settings",
    module: "admin",
    fields: &[
        text("name", "Name", 80)
            .required()
            .indexed()
            .unique(Unique::PerCompany)
            .list()
            .help("module.setting, e.g. ledger.lock_date"),
        text("value", "Value", 200).list(),
    ],
    title_field: "name",
    search_fields: &["name"],
    creation: Creation::Module(
        "settings are changed on their module's pages (e.g. the lock date under Ledger)",
    ),
};

/// The kernel's own entities. A module's entities join them through
/// [`crate::registry::install`] (a module's `entities`); ask [`crate::registry`] for every entity.
pub static ENTITIES: &[&EntityDef] = &[&COMPANY, &ROLE, &USER, &SETTING];

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
