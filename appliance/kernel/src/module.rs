//! The write path for modules: a module's typed command (post a journal entry, settle
//! an invoice) runs as one store command, writes its records through the same code as
//! the generic service — indexes, event log (the audit trail), history — and may keep
//! its own state (totals, counters, caches) in the same transaction.
//!
//! A module reaches only its own state: every key it reads or writes through a
//! [`Command`] or a [`ModuleState`] is prefixed with its [`Module::code`] in
//! `Table::ModuleState`; it cannot name a table, and so cannot reach records,
//! indexes, the event log, credentials or sessions except through the kernel. And a
//! command that changes module state must leave an event in the same command (a
//! record it wrote, or a [`Command::set_setting`]): a state change without its trace
//! is refused.

use std::collections::BTreeMap;
use std::ops::{Bound, ControlFlow, RangeBounds};

use nexus_store::{ReadTxn, Table, Txn, decode_u64, prefix_end};
use time::OffsetDateTime;

use crate::Kernel;
use crate::builtin::{SETTING, Setting};
use crate::entity::EntityDef;
use crate::error::{FieldErrors, KernelError};
use crate::event::Op;
use crate::perm::{Action, Principal};
use crate::record::{Record, keys, to_stored_precision};
use crate::registry::Module;
use crate::service::{load, next_id, not_found, require, write_record};
use crate::typed::{Row, Typed};
use crate::value::Value;

/// A key and its value from a module's own state (the key without the module prefix).
pub type KeyValue = (Vec<u8>, Vec<u8>);

/// One module command's view of the write transaction.
pub struct Command<'c, 'a, 't> {
    txn: &'c mut Txn<'a, 't>,
    who: &'c Principal,
    now: OffsetDateTime,
    module: &'static Module,
    /// Whether the command wrote module state (then it must also leave an event).
    state_written: bool,
    /// Whether it enqueued a job (the workers are woken once it commits).
    enqueued: bool,
}

fn state_key(module: &Module, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(2 + key.len());
    k.extend_from_slice(&module.code.to_be_bytes());
    k.extend_from_slice(key);
    k
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

    /// A record of the principal's company read as its entity's struct.
    pub fn find<T: Typed>(&self, id: u64) -> Result<Option<Row<T>>, KernelError> {
        self.load(T::def(), id)?.as_ref().map(Row::of).transpose()
    }

    /// Like [`Command::find`], but a missing record is an error.
    pub fn fetch<T: Typed>(&self, id: u64) -> Result<Row<T>, KernelError> {
        Row::of(&self.require(T::def(), id)?)
    }

    /// Creates a record from its struct (checked as [`Command::create`] checks).
    pub fn insert<T: Typed>(&mut self, fields: &T) -> Result<Row<T>, KernelError> {
        Row::of(&self.create(T::def(), fields.to_values())?)
    }

    /// Changes a record through its struct: `change` edits the fields as they are now,
    /// and the result is saved as a new version (nothing is written if nothing
    /// changed). Fields the struct does not know are kept as they were.
    pub fn modify<T: Typed>(
        &mut self,
        id: u64,
        change: impl FnOnce(&mut T),
    ) -> Result<Row<T>, KernelError> {
        let mut fields = self.fetch::<T>(id)?.fields;
        change(&mut fields);
        Row::of(&self.update(T::def(), id, fields.to_values())?)
    }

    /// The value at `key` of the module's own state, as this command sees it.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, KernelError> {
        Ok(self
            .txn
            .get(Table::ModuleState, &state_key(self.module, key))?)
    }

    /// Stages the removal of `key` from the module's own state.
    pub fn delete(&mut self, key: Vec<u8>) {
        self.state_written = true;
        self.txn
            .delete(Table::ModuleState, state_key(self.module, &key));
    }

    /// Every entry of the module's own state whose key starts with `prefix`, in key
    /// order, as this command sees it (small ranges only: it is collected whole).
    pub fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<KeyValue>, KernelError> {
        let full = self
            .txn
            .scan_prefix(Table::ModuleState, &state_key(self.module, prefix))?;
        Ok(full
            .into_iter()
            .map(|(mut k, v)| {
                k.drain(..2);
                (k, v)
            })
            .collect())
    }

    /// Stages `key` → `value` in the module's own state.
    pub fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.state_written = true;
        self.txn
            .put(Table::ModuleState, state_key(self.module, &key), value);
    }

    /// Enqueues a job in this command: it exists exactly when the change that asked for
    /// it commits, and runs after (see [`crate::jobs`]). Returns its id.
    pub fn enqueue(&mut self, spec: crate::jobs::JobSpec) -> Result<u64, KernelError> {
        self.enqueued = true;
        crate::jobs::enqueue_in(self.txn, self.who, spec, crate::record::unix_ms(self.now))
    }

    /// The module's setting `name` for the principal's company (`None` if never set).
    pub fn setting(&self, name: &str) -> Result<Option<String>, KernelError> {
        Ok(self.setting_record(name)?.and_then(|r| r.fields.value))
    }

    /// Sets (or, with `None`, clears) the module's setting `name` for the principal's
    /// company: a `setting` record named `module.name`, so the change has its event,
    /// its before and after, and its history.
    pub fn set_setting(&mut self, name: &str, value: Option<String>) -> Result<(), KernelError> {
        let value = value.filter(|v| !v.is_empty());
        match self.setting_record(name)? {
            Some(rec) => {
                self.modify(rec.id, |s: &mut Setting| s.value = value)?;
            }
            None => {
                let name = format!("{}.{name}", self.module.name);
                self.insert(&Setting { name, value })?;
            }
        }
        Ok(())
    }

    fn setting_record(&self, name: &str) -> Result<Option<Row<Setting>>, KernelError> {
        let key = setting_index_key(self.module, self.who.company, name);
        match self.txn.get(Table::Index, &key)? {
            Some(owner) => self.find::<Setting>(setting_id(&owner)?),
            None => Ok(None),
        }
    }
}

/// The unique-index key of `module`'s setting `name` in `company`.
fn setting_index_key(module: &Module, company: u64, name: &str) -> Vec<u8> {
    let full = Value::Text(format!("{}.{name}", module.name));
    let field = SETTING.field_index("name").unwrap_or(0);
    keys::unique(&SETTING, company, field, &full)
}

/// The setting's id from its unique-index entry (`company ‖ id`).
fn setting_id(owner: &[u8]) -> Result<u64, KernelError> {
    owner
        .get(8..16)
        .and_then(decode_u64)
        .ok_or_else(|| KernelError::Internal("a setting's index entry is damaged".into()))
}

/// A snapshot of one module's own state, for its reads outside commands.
pub struct ModuleState {
    read: ReadTxn,
    module: &'static Module,
}

impl ModuleState {
    /// The value at `key`, if any.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, KernelError> {
        Ok(self
            .read
            .get(Table::ModuleState, &state_key(self.module, key))?)
    }

    /// Visits the entries whose keys fall in `range` (keys without the module prefix),
    /// in key order or in reverse, until `visit` breaks.
    pub fn scan<'r>(
        &self,
        range: impl RangeBounds<&'r [u8]>,
        reverse: bool,
        mut visit: impl FnMut(&[u8], &[u8]) -> ControlFlow<()>,
    ) -> Result<(), KernelError> {
        let m = self.module;
        let start = match range.start_bound() {
            Bound::Included(k) => Bound::Included(state_key(m, k)),
            Bound::Excluded(k) => Bound::Excluded(state_key(m, k)),
            Bound::Unbounded => Bound::Included(state_key(m, &[])),
        };
        let end = match range.end_bound() {
            Bound::Included(k) => Bound::Included(state_key(m, k)),
            Bound::Excluded(k) => Bound::Excluded(state_key(m, k)),
            Bound::Unbounded => match prefix_end(&state_key(m, &[])) {
                Some(e) => Bound::Excluded(e),
                None => Bound::Unbounded,
            },
        };
        let range = (borrow(&start), borrow(&end));
        self.read.scan(Table::ModuleState, range, reverse, |k, v| {
            visit(k.get(2..).unwrap_or_default(), v)
        })?;
        Ok(())
    }
}

/// The required fields are there, and every value meets its field's rules (lengths,
/// control characters, choices, ranges) — as for the generic create.
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
    for (name, value) in values {
        match def.field(name) {
            Some(f) => {
                if let Err(m) = f.check(value) {
                    errors.push(f.name, m);
                }
            }
            None => errors.push(name, format!("{} has no field \"{name}\"", def.label)),
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

    /// `module`'s setting `name` for `company`, as committed (`None` if never set).
    /// Settings are not secret; the module decides who may see the page showing one.
    pub fn setting(
        &self,
        module: &'static Module,
        company: u64,
        name: &str,
    ) -> Result<Option<String>, KernelError> {
        installed(module)?;
        let read = self.store().read()?;
        let Some(owner) = read.get(Table::Index, &setting_index_key(module, company, name))? else {
            return Ok(None);
        };
        let id = setting_id(&owner)?;
        match read.get(Table::Records, &keys::record(&SETTING, company, id))? {
            Some(bytes) => Ok(Setting::from_record(&Record::decode(&SETTING, &bytes)?)?.value),
            None => Ok(None),
        }
    }

    /// A snapshot of `module`'s own state.
    pub fn module_state(&self, module: &'static Module) -> Result<ModuleState, KernelError> {
        installed(module)?;
        Ok(ModuleState {
            read: self.store().read()?,
            module,
        })
    }

    /// Runs `module`'s command as one store command: all of its writes and events
    /// commit together once durable, or none do. Permissions are the module's to check
    /// (with [`Kernel::authorize`]) before. A command that changed the module's state
    /// without leaving an event is refused, and writes nothing.
    pub async fn command<R, F>(
        &self,
        module: &'static Module,
        who: &Principal,
        command: F,
    ) -> Result<R, KernelError>
    where
        F: FnOnce(&mut Command<'_, '_, '_>) -> Result<R, KernelError> + Send + 'static,
        R: Send + 'static,
    {
        installed(module)?;
        let clock = self.shared_clock();
        let who = who.clone();
        self.store()
            .write(move |txn| {
                let now = to_stored_precision(clock.now());
                let mut cmd = Command {
                    txn,
                    who: &who,
                    now,
                    module,
                    state_written: false,
                    enqueued: false,
                };
                let out = command(&mut cmd)?;
                if cmd.state_written && cmd.txn.next_seq() == cmd.txn.command_seq() {
                    return Err(KernelError::Internal(format!(
                        "a {} command changed the module's state without leaving an \
                         event; nothing was saved",
                        module.name
                    )));
                }
                Ok((out, cmd.enqueued))
            })
            .await
            .map(|(out, enqueued)| {
                if enqueued {
                    self.jobs_runtime().bell.notify_waiters();
                }
                out
            })
    }
}

fn installed(module: &'static Module) -> Result<(), KernelError> {
    if crate::registry::is_installed(module) {
        Ok(())
    } else {
        Err(KernelError::Internal(format!(
            "module {} is not installed",
            module.name
        )))
    }
}

fn borrow(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match b {
        Bound::Included(k) => Bound::Included(k.as_slice()),
        Bound::Excluded(k) => Bound::Excluded(k.as_slice()),
        Bound::Unbounded => Bound::Unbounded,
    }
}
