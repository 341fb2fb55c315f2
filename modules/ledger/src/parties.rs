//! The parties the ledger books against: its own suppliers
//! ([`crate::entities::SUPPLIER`]) and CRM's customers, which it names by entity — a
//! module never links another's crate; the registry refuses to install the ledger
//! without a `customer` entity (its invoices refer to one).

use nexus_kernel::{EntityDef, KernelError};

/// CRM's customer entity, as installed.
pub fn customer() -> Result<&'static EntityDef, KernelError> {
    nexus_kernel::registry::entity("customer").ok_or_else(|| {
        KernelError::Internal("the ledger needs the CRM module's customers installed".into())
    })
}
