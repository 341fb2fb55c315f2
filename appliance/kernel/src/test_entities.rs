//! Test fixtures: two party entities shaped like CRM's (the kernel's tests cannot
//! depend on a module) and small modules, installed once for every kernel test.

use crate::entity::{Creation, EntityDef, FieldDef, FieldKind, Unique};
use crate::registry::{self, Module};

const fn text(name: &'static str, label: &'static str, max: usize) -> FieldDef {
    FieldDef::new(name, label, FieldKind::Text { max })
}

pub const CUSTOMER_STATUS: &[&str] = &["Lead", "Active", "On hold", "Former"];

pub static CUSTOMER: EntityDef = EntityDef {
    name: "customer",
    code: 10,
    label: "Customer",
    plural: "Customers",
    module: "crm",
    fields: &[
        text("name", "Name", 120)
            .required()
            .indexed()
            .unique(Unique::PerCompany)
            .list(),
        FieldDef::new("email", "E-mail", FieldKind::Email)
            .indexed()
            .list(),
        FieldDef::new("phone", "Phone", FieldKind::Phone).list(),
        text("city", "City", 80).indexed().list(),
        text("country", "Country", 80).indexed().list(),
        FieldDef::new("status", "Status", FieldKind::Choice(CUSTOMER_STATUS))
            .required()
            .indexed()
            .list(),
        FieldDef::new("credit_limit", "Credit limit", FieldKind::Money)
            .indexed()
            .list()
            .help("In the company currency; empty means no limit."),
        FieldDef::new("customer_since", "Customer since", FieldKind::Date).indexed(),
        text("tax_id", "Tax ID", 40),
        FieldDef::new("notes", "Notes", FieldKind::LongText),
    ],
    title_field: "name",
    search_fields: &["name", "email", "city", "country"],
    creation: Creation::ByRole,
};

pub static CONTACT: EntityDef = EntityDef {
    name: "contact",
    code: 11,
    label: "Contact",
    plural: "Contacts",
    module: "crm",
    fields: &[
        text("name", "Name", 120).required().indexed().list(),
        FieldDef::new("customer", "Customer", FieldKind::Ref("customer"))
            .indexed()
            .list(),
        text("job_title", "Job title", 80).list(),
        FieldDef::new("email", "E-mail", FieldKind::Email)
            .indexed()
            .list(),
        FieldDef::new("phone", "Phone", FieldKind::Phone).list(),
    ],
    title_field: "name",
    search_fields: &["name", "email", "job_title"],
    creation: Creation::ByRole,
};

/// The parties, as a module of the tests (with a Viewer role).
pub static PARTIES: Module = Module {
    name: "crm",
    label: "Parties",
    code: 900,
    entities: &[&CUSTOMER, &CONTACT],
    roles: &[(
        "Viewer",
        "customer:r, contact:r, company:r",
        "Reads parties.",
    )],
    demo: None,
    tools: &[],
    jobs: &[],
    schedules: &[],
};

/// Two modules with no entities of their own, for the module write path.
pub static ALPHA: Module = Module {
    name: "alpha",
    label: "Alpha",
    code: 901,
    entities: &[],
    roles: &[],
    demo: None,
    tools: &[],
    jobs: &[],
    schedules: &[],
};
pub static BETA: Module = Module {
    name: "beta",
    label: "Beta",
    code: 902,
    entities: &[],
    roles: &[],
    demo: None,
    tools: &[],
    jobs: &[],
    schedules: &[],
};

/// Installs the test modules (the same set every time, as the registry requires).
pub fn install() {
    registry::install(&[&PARTIES, &ALPHA, &BETA]).expect("install the test modules");
}
