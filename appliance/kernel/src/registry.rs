//! Every entity the appliance serves: the kernel's own ([`crate::builtin::ENTITIES`])
//! and those of the modules, installed once at start ([`install`]).
//!
//! Modules sit above the kernel, so the kernel cannot name their entities; the binary
//! that links them installs them before it builds a [`crate::Kernel`]. Lists, forms, the
//! API, permissions and reference checks then treat them like the kernel's own.

use std::sync::OnceLock;

use crate::builtin::ENTITIES;
use crate::entity::{EntityDef, FieldKind};

static MODULES: OnceLock<Vec<&'static EntityDef>> = OnceLock::new();

/// A role every new company gets: name, grants (`entity:letters, …`), description.
pub type RoleDef = (&'static str, &'static str, &'static str);

static MODULE_ROLES: OnceLock<&'static [RoleDef]> = OnceLock::new();

/// Adds the modules' default roles (such as the ledger's Accountant), given to every
/// company created afterwards. Called once, after [`install`], since the grants name
/// the modules' entities; calling it again with the same roles does nothing.
pub fn install_roles(roles: &'static [RoleDef]) -> Result<(), String> {
    for (name, grants, _) in roles {
        if crate::builtin::DEFAULT_ROLES
            .iter()
            .any(|(n, _, _)| n == name)
        {
            return Err(format!("the role {name} is one of the kernel's own"));
        }
        crate::perm::Grants::parse(grants).map_err(|e| format!("role {name}: {e}"))?;
    }
    let installed = MODULE_ROLES.get_or_init(|| roles);
    if std::ptr::eq(*installed, roles) {
        Ok(())
    } else {
        Err("module roles were already installed with a different set".into())
    }
}

/// Every default role: the kernel's own, then the modules'.
pub fn default_roles() -> impl Iterator<Item = &'static RoleDef> {
    crate::builtin::DEFAULT_ROLES
        .iter()
        .chain(MODULE_ROLES.get().copied().unwrap_or_default())
}

/// Adds the modules' entities to the registry. Called once per process, before the
/// kernel serves anything; calling it again with the same entities does nothing.
///
/// Refuses entities whose names or storage codes collide with another's, and
/// references to entities that do not exist.
pub fn install(modules: &[&'static EntityDef]) -> Result<(), String> {
    check(modules)?;
    let installed = MODULES.get_or_init(|| modules.to_vec());
    let same = installed.len() == modules.len()
        && installed
            .iter()
            .zip(modules)
            .all(|(a, b)| std::ptr::eq(*a, *b));
    if same {
        Ok(())
    } else {
        Err("module entities were already installed with a different set".into())
    }
}

fn check(modules: &[&'static EntityDef]) -> Result<(), String> {
    let all: Vec<&EntityDef> = ENTITIES.iter().chain(modules).copied().collect();
    for (i, a) in all.iter().enumerate() {
        for b in &all[i + 1..] {
            if a.name == b.name || a.code == b.code {
                return Err(format!(
                    "entities {} and {} share a name or a storage code",
                    a.name, b.name
                ));
            }
        }
        for f in a.fields {
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
    Ok(())
}

/// Every entity: the kernel's own first, then the modules' in installation order.
pub fn entities() -> impl Iterator<Item = &'static EntityDef> {
    ENTITIES
        .iter()
        .chain(MODULES.get().map_or(&[][..], Vec::as_slice))
        .copied()
}

/// The entity called `name`.
pub fn entity(name: &str) -> Option<&'static EntityDef> {
    entities().find(|e| e.name == name)
}
