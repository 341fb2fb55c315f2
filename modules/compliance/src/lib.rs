//! Compliance: the access review today (who may act in the company, with which role
//! and grants, active or not, last sign-in, second factor, API tokens), as a page, a
//! CSV download and JSON (`web`). GDPR requests and retention come next. The module
//! keeps no records of its own: it reads the kernel's (`Kernel::access_review`).

pub mod web;

use nexus_kernel::Module;

/// Compliance, as the kernel knows it. Its code (3) is an on-disk name: never reuse it.
pub static COMPLIANCE: Module = Module {
    name: "compliance",
    label: "Compliance",
    code: 3,
    entities: &[],
    roles: &[(
        "Compliance officer",
        "user:r, role:r, membership:r, company:r",
        "Reviews who may do what (the access review); changes nothing.",
    )],
    demo: None,
    tools: &[],
    jobs: &[],
    schedules: &[],
};
