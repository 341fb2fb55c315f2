//! CRM's records: customers and the people at them.

use nexus_kernel::{Creation, EntityDef, FieldDef, FieldKind, Module, Unique};

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

/// CRM's entities.
pub static ENTITIES: &[&EntityDef] = &[&CUSTOMER, &CONTACT];

/// CRM's default roles.
pub static ROLES: &[nexus_kernel::RoleDef] = &[
    (
        "Sales",
        "customer:rcwdx, contact:rcwdx, company:r, role:r, user:r",
        "Works with customers and contacts.",
    ),
    (
        "Viewer",
        "customer:r, contact:r, company:r",
        "Reads customers and contacts.",
    ),
];

/// CRM, as the kernel knows it. Its entity codes (10, 11) and state code (2) are
/// on-disk names: never reuse them.
pub static CRM: Module = Module {
    name: "crm",
    label: "CRM",
    code: 2,
    entities: ENTITIES,
    roles: ROLES,
    demo: Some(|kernel, company, _today, size| {
        Box::pin(async move { crate::demo::seed(&kernel, company, size).await })
    }),
};
