//! The write path for modules: a module's typed command (post a journal entry, settle
//! an invoice) runs as one store command, writes its records through the same code as
//! the generic service — indexes, change log, audit chain, history — and may keep
//! module-owned tables (totals, counters) in the same transaction.

use std::collections::BTreeMap;

use nexus_store::{KeyValue, Table, Txn};
use time::OffsetDateTime;

use crate::Kernel;
use crate::changes::Op;
use crate::entity::EntityDef;
use crate::error::{FieldErrors, KernelError};
use crate::perm::{Action, Principal};
use crate::record::{Record, to_stored_precision};
use crate::service::{load, next_id, not_found, require, write_record};
use crate::value::Value;

/// One module command's view of the write transaction.
pub struct Command<'c, 'a, 't> {
    txn: &'c mut Txn<'a, 't>,
    who: &'c Principal,
    now: OffsetDateTime,
}

impl Command<'_, '_, '_> {
    /// Who is acting; every record the command writes belongs to their company.
    pub fn who(&self) -> &Principal {
        self.who
    }

    /// The time of this command, read on the writer thread (so it follows sequence
    /// order), at stored precision.
    pub fn now(&self) -> OffsetDateTime {
        self.now
    }

    /// A record of the principal's company, as this command sees it.
    pub fn load(&self, def: &'static EntityDef, id: u64) -> Result<Option<Record>, KernelError> {
        load(self.txn, def, self.who.company, id)
    }

    /// Like [`Command::load`], but a missing record is an error.
    pub fn require(&self, def: &'static EntityDef, id: u64) -> Result<Record, KernelError> {
        self.load(def, id)?.ok_or_else(|| not_found(def, id))
    }

    /// Creates a record with already-typed values. Required fields, references and
    /// unique fields are checked as for the generic create.
    pub fn create(
        &mut self,
        def: &'static EntityDef,
        mut values: BTreeMap<&'static str, Value>,
    ) -> Result<Record, KernelError> {
        values.retain(|_, v| !v.is_empty());
        check_required(def, &values)?;
        let id = next_id(self.txn)?;
        let rec = Record {
            id,
            company: self.who.company,
            version: 1,
            created_at: self.now,
            updated_at: self.now,
            created_by: self.who.user_id,
            updated_by: self.who.user_id,
            values,
            unknown: Vec::new(),
        };
        write_record(self.txn, def, self.who, None, &rec, Op::Create)?;
        Ok(rec)
    }

    /// Sets the given fields of a record (a module's own state change, e.g. posted →
    /// cancelled); a new version with its audit entry.
    pub fn update(
        &mut self,
        def: &'static EntityDef,
        id: u64,
        changes: BTreeMap<&'static str, Value>,
    ) -> Result<Record, KernelError> {
        let old = self.require(def, id)?;
        let mut new = old.clone();
        new.values.extend(changes);
        new.values.retain(|_, v| !v.is_empty());
        if new.values == old.values {
            return Ok(old);
        }
        check_required(def, &new.values)?;
        new.version = old.version + 1;
        new.updated_at = self.now;
        new.updated_by = self.who.user_id;
        write_record(self.txn, def, self.who, Some(&old), &new, Op::Update)?;
        Ok(new)
    }

    /// The raw value at `key` of a module-owned table.
    pub fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, KernelError> {
        Ok(self.txn.get(table, key)?)
    }

    /// Stages the removal of `key` from a module-owned table.
    pub fn delete(&mut self, table: Table, key: Vec<u8>) {
        self.txn.delete(table, key);
    }

    /// Every entry of a module-owned table whose key starts with `prefix`, in key
    /// order, as this command sees it (small ranges only: it is collected whole).
    pub fn scan_prefix(&self, table: Table, prefix: &[u8]) -> Result<Vec<KeyValue>, KernelError> {
        Ok(self.txn.scan_prefix(table, prefix)?)
    }

    /// Stages `key` → `value` in a module-owned table.
    pub fn put(&mut self, table: Table, key: Vec<u8>, value: Vec<u8>) {
        self.txn.put(table, key, value);
    }
}

fn check_required(
    def: &'static EntityDef,
    values: &BTreeMap<&'static str, Value>,
) -> Result<(), KernelError> {
    let mut errors = FieldErrors::default();
    for f in def.fields.iter().filter(|f| f.required && f.stored()) {
        if !values.contains_key(f.name) {
            errors.push(f.name, format!("{} is required", f.label));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(KernelError::Invalid(errors))
    }
}

impl Kernel {
    /// Checks that `who` may do `action` on `def`'s records.
    pub fn authorize(
        &self,
        who: &Principal,
        def: &EntityDef,
        action: Action,
    ) -> Result<(), KernelError> {
        require(who, def, action)
    }

    /// Runs a module's command as one store command: all of its writes, change-log
    /// entries and audit entries commit together once durable, or none do.
    /// Permissions are the module's to check (with [`Kernel::authorize`]) before.
    pub async fn command<R, F>(&self, who: &Principal, command: F) -> Result<R, KernelError>
    where
        F: FnOnce(&mut Command<'_, '_, '_>) -> Result<R, KernelError> + Send + 'static,
        R: Send + 'static,
    {
        let clock = self.shared_clock();
        let who = who.clone();
        self.store()
            .write(move |txn| {
                let now = to_stored_precision(clock.now());
                let mut cmd = Command {
                    txn,
                    who: &who,
                    now,
                };
                command(&mut cmd)
            })
            .await
    }
}
