//! CRM's records: customers and the people at them.

use nexus_kernel::builtin::User;
use nexus_kernel::typed::field::{Choice, Date, Email, LongText, Money, Phone, Ref, Text};
use nexus_kernel::{Creation, EntityDef, Module, Unique};

nexus_kernel::choice! {
    /// Where a customer stands with the firm.
    pub enum CustomerStatus { Lead, Active, OnHold = "On hold", Former }
}

nexus_kernel::entity! {
    /// A firm the company sells to.
    pub struct Customer in CUSTOMER {
        name: "customer", code: 10, module: "crm", label: "Customer", plural: "Customers",
        title: name, search: [name, email, city, country], creation: Creation::ByRole,
    }
    fields {
        name: Text<120> = "Name" .indexed().unique(Unique::PerCompany).list(),
        email: Option<Email> = "E-mail" .indexed().list(),
        phone: Option<Phone> = "Phone" .list(),
        city: Option<Text<80>> = "City" .indexed().list(),
        country: Option<Text<80>> = "Country" .indexed().list(),
        status: Choice<CustomerStatus> = "Status" .indexed().list(),
        credit_limit: Option<Money> = "Credit limit"
            .indexed()
            .list()
            .guarded()
            .help("In the company currency; empty means no limit. Seen and set only by roles granted customer.credit_limit (the Accountant)."),
        customer_since: Option<Date> = "Customer since" .indexed(),
        tax_id: Option<Text<40>> = "Tax ID",
        notes: Option<LongText> = "Notes",
        // Not indexed: stores written before it have no index entries for it.
        owner: Option<Ref<User>> = "Owner"
            .list()
            .help("The salesperson it belongs to: a Sales rep sees and changes only their own."),
    }
}

nexus_kernel::entity! {
    /// A person at a customer.
    pub struct Contact in CONTACT {
        name: "contact", code: 11, module: "crm", label: "Contact", plural: "Contacts",
        title: name, search: [name, email, job_title], creation: Creation::ByRole,
    }
    fields {
        name: Text<120> = "Name" .indexed().list(),
        customer: Option<Ref<Customer>> = "Customer" .indexed().list(),
        job_title: Option<Text<80>> = "Job title" .list(),
        email: Option<Email> = "E-mail" .indexed().list(),
        phone: Option<Phone> = "Phone" .list(),
    }
}

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
        "Sales rep",
        "customer:rcw@own, contact:rcw, company:r",
        "Works with the customers they own (the customer's Owner), and their contacts.",
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
    tools: crate::tools::TOOLS,
    jobs: &[],
    schedules: &[],
};
