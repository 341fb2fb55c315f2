//! Every module and entity the appliance serves: the kernel's own entities
//! ([`crate::builtin::ENTITIES`]) and the modules', installed once at start
//! ([`install`]).
//!
//! Modules sit above the kernel, so the kernel cannot name their entities; the binary
//! that links them installs them before it builds a [`crate::Kernel`]. Lists, forms, the
//! API, permissions and reference checks then treat them like the kernel's own.

use std::sync::OnceLock;

use crate::builtin::ENTITIES;
use crate::entity::{EntityDef, FieldKind};

/// A role every new company gets: name, grants (`entity:letters, …`), description.
pub type RoleDef = (&'static str, &'static str, &'static str);

/// What a module contributes to the kernel, declared once in the module's crate (the
/// web kit adds its pages, routes and navigation on top).
pub struct Module {
    /// Stable name (`ledger`, `crm`); the `module` of each of its entities.
    pub name: &'static str,
    pub label: &'static str,
    /// Prefixes every key of the module's own state (see [`crate::Command::put`]): an
    /// on-disk name, never reused or changed.
    pub code: u16,
    pub entities: &'static [&'static EntityDef],
    /// Default roles every company created afterwards gets.
    pub roles: &'static [RoleDef],
    /// Seeds the module's demo data into a company (`nexus demo`); idempotent: a
    /// second run adds nothing. Returns how many records it made. Modules seed in
    /// installation order, so one may build on an earlier one's demo records.
    pub demo: Option<DemoFn>,
    /// Read-only questions it answers for the assistant and the API (`/api/v1/tools`).
    pub tools: &'static [crate::tools::Tool],
    /// Its job kinds, registered when the job workers start.
    pub jobs: &'static [&'static dyn crate::jobs::JobHandler],
    /// Its recurring jobs, created on first start (an administrator may change them).
    pub schedules: &'static [crate::jobs::ScheduleDef],
}

impl std::fmt::Debug for Module {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Module")
            .field("name", &self.name)
            .field("code", &self.code)
            .field("entities", &self.entities.len())
            .field("tools", &self.tools.len())
            .field(
                "jobs",
                &self.jobs.iter().map(|j| j.kind()).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// A module's demo seeder: the kernel, the company, today, and the demo's size (how
/// many of its main records: customers for CRM, `nexus demo --customers N`).
pub type DemoFn = fn(
    crate::Kernel,
    u64,
    time::Date,
    u64,
) -> std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<usize, crate::KernelError>> + Send>,
>;

static MODULES: OnceLock<Vec<&'static Module>> = OnceLock::new();

/// Installs the modules: their entities join the kernel's, their roles the default
/// roles. Called once per process, before a kernel serves anything; calling it again
/// with the same modules does nothing, with others is refused.
///
/// Refuses a module registered twice, two modules with one name or state code,
/// entities whose names or storage codes collide, an entity that names another module,
/// references to entities that do not exist, and roles that clash or do not parse.
pub fn install(modules: &[&'static Module]) -> Result<(), String> {
    check_modules(modules)?;
    install_once(&MODULES, modules)
}

/// Keeps `modules` in `cell` the first time; later calls must name the same modules
/// (by address) in the same order. Shared by the kernel's and the web kit's registries.
pub fn install_once<T>(
    cell: &'static OnceLock<Vec<&'static T>>,
    modules: &[&'static T],
) -> Result<(), String> {
    let installed = cell.get_or_init(|| modules.to_vec());
    let same = installed.len() == modules.len()
        && installed
            .iter()
            .zip(modules)
            .all(|(a, b)| std::ptr::eq(*a, *b));
    if same {
        Ok(())
    } else {
        Err("modules were already installed with a different set".into())
    }
}

/// The installed modules, in installation order.
pub fn modules() -> &'static [&'static Module] {
    MODULES.get().map_or(&[][..], Vec::as_slice)
}

/// Whether `module` is the one installed under its name.
pub(crate) fn is_installed(module: &'static Module) -> bool {
    modules().iter().any(|m| std::ptr::eq(*m, module))
}

/// Checks that `modules` fit together and with the kernel (see [`install`]).
pub(crate) fn check_modules(modules: &[&'static Module]) -> Result<(), String> {
    for (i, a) in modules.iter().enumerate() {
        for b in &modules[i + 1..] {
            if std::ptr::eq(*a, *b) {
                return Err(format!("module {} is registered twice", a.name));
            }
            if a.name == b.name || a.code == b.code {
                return Err(format!(
                    "modules {} and {} share a name or a state code ({})",
                    a.name, b.name, a.code
                ));
            }
        }
        if a.name == "admin" || a.name.is_empty() {
            return Err(format!("\"{}\" cannot name a module", a.name));
        }
        for e in a.entities {
            if e.module != a.name {
                return Err(format!(
                    "entity {} says it belongs to {}, but module {} declares it",
                    e.name, e.module, a.name
                ));
            }
        }
    }
    let all: Vec<&EntityDef> = ENTITIES
        .iter()
        .copied()
        .chain(modules.iter().flat_map(|m| m.entities.iter().copied()))
        .collect();
    // Documents are the kernel's, outside the registry (see `documents`): no module's
    // entity may take their name or storage code.
    let doc = &crate::documents::DOCUMENT;
    if let Some(e) = all
        .iter()
        .find(|e| e.name == doc.name || e.code == doc.code)
    {
        return Err(format!(
            "entity {} takes the name or storage code ({}) of the kernel's documents",
            e.name, doc.code
        ));
    }
    let mut tools = Vec::new();
    let mut kinds: Vec<&str> = Vec::new();
    for m in modules {
        crate::tools::check_module(m, &mut tools)?;
        for t in m.tools {
            if let Some(e) = t
                .reads
                .iter()
                .find(|e| !all.iter().any(|a| a.name == e.name))
            {
                return Err(format!(
                    "the tool {} reads {}, which is not installed",
                    t.name, e.name
                ));
            }
        }
        for j in m.jobs {
            let prefix = format!("{}.", m.name);
            if !j.kind().starts_with(&prefix) || kinds.contains(&j.kind()) {
                return Err(format!(
                    "the job kind \"{}\" of {} must be unique and named {prefix}<something>",
                    j.kind(),
                    m.name
                ));
            }
            kinds.push(j.kind());
        }
        for (name, kind, _, every) in m.schedules {
            if !m.jobs.iter().any(|j| j.kind() == *kind) {
                return Err(format!(
                    "the schedule {name} of {} runs {kind}, which is not one of its jobs",
                    m.name
                ));
            }
            if !(crate::jobs::SCHEDULE_MIN_SECS..=crate::jobs::SCHEDULE_MAX_SECS).contains(every) {
                return Err(format!(
                    "the schedule {name} of {} runs too often or too rarely",
                    m.name
                ));
            }
        }
    }
    for (i, a) in all.iter().enumerate() {
        for b in &all[i + 1..] {
            if a.name == b.name || a.code == b.code {
                return Err(format!(
                    "entities {} and {} share a name or a storage code ({})",
                    a.name,
                    b.name,
                    if a.code == b.code {
                        a.code.to_string()
                    } else {
                        a.name.to_string()
                    }
                ));
            }
        }
        for f in a.fields {
            if f.guarded
                && (f.required
                    || f.unique != crate::Unique::No
                    || a.title_field == f.name
                    || a.search_fields.contains(&f.name)
                    || !f.stored())
            {
                return Err(format!(
                    "{}.{} is guarded, so it must be optional, not unique, not the title \
                     and not a search field (hiding it must hide all of it)",
                    a.name, f.name
                ));
            }
            if let FieldKind::Ref(target) = f.kind
                && !all.iter().any(|e| e.name == target)
            {
                return Err(format!(
                    "{}.{} refers to an unknown entity {target}",
                    a.name, f.name
                ));
            }
        }
    }
    let mut roles: Vec<&str> = crate::builtin::DEFAULT_ROLES
        .iter()
        .map(|(n, _, _)| *n)
        .collect();
    for m in modules {
        for (name, grants, _) in m.roles {
            if roles.contains(name) {
                return Err(format!("module {}: the role {name} exists already", m.name));
            }
            roles.push(name);
            // The registry is not installed yet, so grants are checked against `all`.
            crate::perm::Grants::parse_over(grants, &all)
                .map_err(|e| format!("module {}: role {name}: {e}", m.name))?;
        }
    }
    Ok(())
}

/// Every default role: the kernel's own, then the modules'.
pub fn default_roles() -> impl Iterator<Item = &'static RoleDef> {
    crate::builtin::DEFAULT_ROLES
        .iter()
        .chain(modules().iter().flat_map(|m| m.roles.iter()))
}

/// Every entity: the kernel's own first, then the modules' in installation order.
pub fn entities() -> impl Iterator<Item = &'static EntityDef> {
    ENTITIES
        .iter()
        .copied()
        .chain(modules().iter().flat_map(|m| m.entities.iter().copied()))
}

/// The entity called `name`.
pub fn entity(name: &str) -> Option<&'static EntityDef> {
    entities().find(|e| e.name == name)
}
