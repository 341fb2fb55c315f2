//! Documents attached to records: a contract scanned into a customer, a receipt into a
//! journal entry, any file on any record of any module.
//!
//! A document is a record of [`DOCUMENT`], written through the one write path (its
//! events are the audit trail; its history is its versions), but it is **not** an
//! entity of the registry: no role names it, no generic page or API route serves it.
//! Every access goes through the record it is attached to — reading that record lets
//! one list and download its documents, writing it lets one attach, replace and remove
//! them — so a document is never seen by someone who may not see its record, whatever
//! their grants say. The file itself is a blob (the server's `nexus-blobs` store) named
//! by the SHA-256 of its content; the kernel keeps its id, size and type.
//!
//! Invariants:
//! * `Table::Blobs` counts, per blob, the document versions that name it — changed in
//!   the same command as the versions. A blob whose count is gone is no longer
//!   referenced, and only then may the blob store's sweep remove it.
//! * A new version is an update of the document (its history lists every version with
//!   the blob it had); removing a document releases every version's blob.
//! * Deleting a record deletes its documents in the same command.

use std::collections::BTreeMap;

use nexus_store::{Reader, Table, Txn, decode_u64, u64_key};
use serde::Serialize;

use crate::entity::{Creation, EntityDef};
use crate::error::KernelError;
use crate::event::{Event, Op};
use crate::perm::{Action, Principal};
use crate::record::{Record, keys, rfc3339, to_stored_precision};
use crate::service::{load, next_id, not_found, require, rule_existing, write_record};
use crate::typed::field::{Int, Text};
use crate::typed::{Row, Typed};
use crate::value::Value;
use crate::{Kernel, registry};

crate::entity! {
    /// A file attached to a record: its current version (earlier ones are its history).
    pub struct Document in DOCUMENT {
        name: "document", code: 5, module: "admin", label: "Document", plural: "Documents",
        title: name, search: [name],
        creation: Creation::Module("documents are attached on the page of the record they belong to"),
    }
    fields {
        name: Text<200> = "File name",
        /// `entity/id` of the record it is attached to.
        attached: Text<80> = "Attached to" .indexed(),
        /// The SHA-256 of the content (the blob's name), 64 hexadecimal digits.
        blob: Text<64> = "Content",
        size: Int<0, { i64::MAX }> = "Size",
        mime: Text<100> = "Type",
        revision: Int<1, { i64::MAX }> = "Version",
    }
}

/// The most documents one record may hold.
pub const MAX_PER_RECORD: usize = 500;

/// The longest file name kept (longer ones are shortened, keeping the extension).
pub const MAX_NAME_CHARS: usize = 200;

/// A blob the server stored, to be named by a document version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBlob {
    /// The SHA-256 of the content, 64 lowercase hexadecimal digits.
    pub id: String,
    pub size: u64,
    /// The media type detected from the content.
    pub mime: String,
}

/// A document as its record's page and the API show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DocumentInfo {
    pub id: u64,
    pub name: String,
    /// The entity and id of the record it is attached to.
    pub entity: &'static str,
    pub record: u64,
    pub size: u64,
    pub mime: String,
    pub revision: u64,
    /// The content's SHA-256.
    pub sha256: String,
    pub updated_at: String,
    pub updated_by: String,
    /// The record's version, for a change based on what one saw.
    pub version: u64,
}

/// One version of a document, from its history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DocumentVersion {
    pub revision: u64,
    pub name: String,
    pub size: u64,
    pub mime: String,
    pub sha256: String,
    pub at: String,
    pub by: String,
}

/// A file name as a document keeps it: its last path component, without control
/// characters, spaces collapsed, no leading or trailing dots, at most
/// [`MAX_NAME_CHARS`] (a longer one keeps its extension), `document` when nothing is
/// left.
pub fn clean_file_name(raw: &str) -> String {
    let base = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let printable: String = base.chars().filter(|c| !c.is_control()).collect();
    let spaced = printable.split_whitespace().collect::<Vec<_>>().join(" ");
    let name = spaced.trim_matches(|c: char| c == '.' || c.is_whitespace());
    if name.is_empty() {
        return "document".into();
    }
    if name.chars().count() <= MAX_NAME_CHARS {
        return name.to_owned();
    }
    let ext = name
        .rfind('.')
        .map(|i| &name[i..])
        .filter(|e| e.chars().count() <= 12)
        .unwrap_or("");
    let keep = MAX_NAME_CHARS - ext.chars().count();
    let stem: String = name.chars().take(keep).collect();
    format!("{}{ext}", stem.trim_end())
}

fn attached_key(def: &EntityDef, id: u64) -> String {
    format!("{}/{id}", def.name)
}

fn blob_key(hex_id: &str) -> Result<Vec<u8>, KernelError> {
    let mut id = [0u8; 32];
    if hex_id.len() != 64
        || !hex_id
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        || hex::decode_to_slice(hex_id, &mut id).is_err()
    {
        return Err(KernelError::Internal(format!(
            "\"{hex_id}\" is not a blob id (64 lowercase hexadecimal digits)"
        )));
    }
    Ok(id.to_vec())
}

/// Adds `delta` to the count of versions naming blob `hex_id`; a count that reaches
/// zero is removed (the blob is then unreferenced).
fn count_blob(txn: &mut Txn<'_, '_>, hex_id: &str, delta: i64) -> Result<(), KernelError> {
    let key = blob_key(hex_id)?;
    let now = txn
        .get(Table::Blobs, &key)?
        .and_then(|b| decode_u64(&b))
        .unwrap_or(0);
    let next = now.saturating_add_signed(delta);
    if next == 0 {
        txn.delete(Table::Blobs, key);
    } else {
        txn.put(Table::Blobs, key, u64_key(next).to_vec());
    }
    Ok(())
}

fn info(doc: &Row<Document>, by: &BTreeMap<u64, String>) -> Result<DocumentInfo, KernelError> {
    let (entity, record) = parse_attached(&doc.attached)?;
    Ok(DocumentInfo {
        id: doc.id,
        name: doc.name.clone(),
        entity: entity.name,
        record,
        size: doc.size as u64,
        mime: doc.mime.clone(),
        revision: doc.revision as u64,
        sha256: doc.blob.clone(),
        updated_at: rfc3339(doc.updated_at),
        updated_by: by.get(&doc.id).cloned().unwrap_or_default(),
        version: doc.version,
    })
}

fn parse_attached(attached: &str) -> Result<(&'static EntityDef, u64), KernelError> {
    let damaged =
        || KernelError::Internal(format!("a document names \"{attached}\" as its record"));
    let (name, id) = attached.split_once('/').ok_or_else(damaged)?;
    let def = registry::entity(name).ok_or_else(damaged)?;
    Ok((def, id.parse().map_err(|_| damaged())?))
}

fn entity(name: &str) -> Result<&'static EntityDef, KernelError> {
    registry::entity(name).ok_or_else(|| KernelError::NotFound(format!("no such entity: {name}")))
}

/// The documents attached to `def`'s record `id` in `company`, oldest first.
fn attached_records(
    r: &impl Reader,
    company: u64,
    def: &EntityDef,
    id: u64,
) -> Result<Vec<Record>, KernelError> {
    let i = DOCUMENT
        .field_index("attached")
        .ok_or_else(|| KernelError::Internal("documents lack their attached field".into()))?;
    let mut prefix = keys::index_prefix(&DOCUMENT, company, i);
    Value::Text(attached_key(def, id)).index_key(&mut prefix);
    let mut out = Vec::new();
    for (key, _) in r.scan_prefix(Table::Index, &prefix)? {
        if let Some(doc_id) = keys::id_suffix(&key)
            && let Some(rec) = load(r, &DOCUMENT, company, doc_id)?
        {
            out.push(rec);
        }
    }
    Ok(out)
}

fn attached_in(
    r: &impl Reader,
    company: u64,
    def: &EntityDef,
    id: u64,
) -> Result<Vec<Row<Document>>, KernelError> {
    attached_records(r, company, def, id)?
        .iter()
        .map(Row::of)
        .collect()
}

/// Every version of document `id` in `company`, newest first.
fn versions_in(
    r: &impl Reader,
    company: u64,
    id: u64,
) -> Result<Vec<DocumentVersion>, KernelError> {
    let prefix = keys::record(&DOCUMENT, company, id);
    let mut out = Vec::new();
    for (key, _) in r.scan_prefix(Table::History, &prefix)? {
        let Some(seq) = keys::id_suffix(&key) else {
            continue;
        };
        let Some(bytes) = r.get(Table::ChangeLog, &u64_key(seq))? else {
            continue;
        };
        let event = Event::decode(&bytes)?;
        let Some(after) = &event.after else {
            continue;
        };
        let revision = after.get("revision").and_then(serde_json::Value::as_u64);
        let before = event
            .before
            .as_ref()
            .and_then(|b| b.get("revision"))
            .and_then(serde_json::Value::as_u64);
        let Some(revision) = revision.filter(|r| Some(*r) != before) else {
            continue;
        };
        let text = |k: &str| {
            after
                .get(k)
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        out.push(DocumentVersion {
            revision,
            name: text("name"),
            size: after
                .get("size")
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0),
            mime: text("mime"),
            sha256: text("blob"),
            at: crate::record::rfc3339_ms(event.at_ms),
            by: event.actor_name.clone(),
        });
    }
    out.reverse();
    Ok(out)
}

/// Deletes every document attached to `def`'s record `id` (the record is being
/// deleted in the same command), releasing their blobs.
pub(crate) fn drop_attached_in(
    txn: &mut Txn<'_, '_>,
    who: &Principal,
    def: &EntityDef,
    id: u64,
    now: time::OffsetDateTime,
) -> Result<usize, KernelError> {
    let docs = attached_in(txn, who.company, def, id)?;
    for doc in &docs {
        remove_in(txn, who, doc, now)?;
    }
    Ok(docs.len())
}

fn remove_in(
    txn: &mut Txn<'_, '_>,
    who: &Principal,
    doc: &Row<Document>,
    now: time::OffsetDateTime,
) -> Result<(), KernelError> {
    for v in versions_in(txn, who.company, doc.id)? {
        count_blob(txn, &v.sha256, -1)?;
    }
    let old =
        load(txn, &DOCUMENT, who.company, doc.id)?.ok_or_else(|| not_found(&DOCUMENT, doc.id))?;
    let mut gone = old.clone();
    gone.version = old.version + 1;
    gone.updated_at = now;
    gone.updated_by = who.user_id;
    write_record(txn, &DOCUMENT, who, Some(&old), &gone, Op::Delete)
}

/// The record a document change is about, checked for `action` by `who`: their
/// company's, visible to them under a record rule, and `action` allowed on it.
fn target(
    r: &impl Reader,
    who: &Principal,
    def: &'static EntityDef,
    id: u64,
    action: Action,
) -> Result<Record, KernelError> {
    // The grants first, so a caller without them learns nothing of which records exist.
    require(who, def, Action::Read)?;
    require(who, def, action)?;
    let rec = load(r, def, who.company, id)?.ok_or_else(|| not_found(def, id))?;
    rule_existing(who, def, &rec, action)?;
    Ok(rec)
}

/// Who last changed each of `docs`, as their events name them.
fn last_actors(
    r: &impl Reader,
    company: u64,
    docs: &[Row<Document>],
) -> Result<BTreeMap<u64, String>, KernelError> {
    let mut out = BTreeMap::new();
    for doc in docs {
        let prefix = keys::record(&DOCUMENT, company, doc.id);
        let last = r.scan_prefix(Table::History, &prefix)?.pop();
        if let Some(seq) = last.and_then(|(k, _)| keys::id_suffix(&k))
            && let Some(bytes) = r.get(Table::ChangeLog, &u64_key(seq))?
        {
            out.insert(doc.id, Event::decode(&bytes)?.actor_name);
        }
    }
    Ok(out)
}

impl Kernel {
    /// The documents attached to `entity`'s record `id`, oldest first, for whoever may
    /// read that record.
    pub fn documents(
        &self,
        who: &Principal,
        entity_name: &str,
        id: u64,
    ) -> Result<Vec<DocumentInfo>, KernelError> {
        let def = entity(entity_name)?;
        let read = self.store().read()?;
        target(&read, who, def, id, Action::Read)?;
        let docs = attached_in(&read, who.company, def, id)?;
        let by = last_actors(&read, who.company, &docs)?;
        docs.iter().map(|d| info(d, &by)).collect()
    }

    /// Document `id` and its versions (newest first), for whoever may read the record
    /// it is attached to; anyone else hears "not found".
    pub fn document(
        &self,
        who: &Principal,
        id: u64,
    ) -> Result<(DocumentInfo, Vec<DocumentVersion>), KernelError> {
        let read = self.store().read()?;
        let rec =
            load(&read, &DOCUMENT, who.company, id)?.ok_or_else(|| not_found(&DOCUMENT, id))?;
        let doc = Row::<Document>::of(&rec)?;
        let (def, record) = parse_attached(&doc.attached)?;
        if !who.can(def.name, Action::Read) {
            return Err(not_found(&DOCUMENT, id));
        }
        target(&read, who, def, record, Action::Read).map_err(|_| not_found(&DOCUMENT, id))?;
        let by = last_actors(&read, who.company, std::slice::from_ref(&doc))?;
        Ok((info(&doc, &by)?, versions_in(&read, who.company, id)?))
    }

    /// Whether `who` may attach documents to `entity`'s record `id` (checked again when
    /// they do): asked before an upload's body is read.
    pub fn may_attach(
        &self,
        who: &Principal,
        entity_name: &str,
        id: u64,
    ) -> Result<(), KernelError> {
        let def = entity(entity_name)?;
        target(&self.store().read()?, who, def, id, Action::Write).map(|_| ())
    }

    /// Document `id`, if `who` may replace or remove it (write its record; still at
    /// `base_version`, when given): asked before an upload's body is read. Checked
    /// again by the change itself.
    pub fn may_change_document(
        &self,
        who: &Principal,
        id: u64,
        base_version: Option<u64>,
    ) -> Result<DocumentInfo, KernelError> {
        let read = self.store().read()?;
        let doc = Row::<Document>::of(&writable(&read, who, id, base_version)?)?;
        let by = last_actors(&read, who.company, std::slice::from_ref(&doc))?;
        info(&doc, &by)
    }

    /// Attaches a stored blob to `entity`'s record `id` as a new document (version 1),
    /// for whoever may write that record.
    pub async fn attach(
        &self,
        who: &Principal,
        entity_name: &str,
        id: u64,
        file_name: &str,
        blob: StoredBlob,
    ) -> Result<DocumentInfo, KernelError> {
        let def = entity(entity_name)?;
        blob_key(&blob.id)?;
        let name = clean_file_name(file_name);
        let clock = self.shared_clock();
        let actor = who.clone();
        self.store()
            .write(move |txn| {
                let now = to_stored_precision(clock.now());
                target(txn, &actor, def, id, Action::Write)?;
                if attached_in(txn, actor.company, def, id)?.len() >= MAX_PER_RECORD {
                    return Err(KernelError::Conflict(format!(
                        "this {} holds {MAX_PER_RECORD} documents already, the most one record may hold; remove some first",
                        def.label.to_lowercase()
                    )));
                }
                let fields = Document {
                    name,
                    attached: attached_key(def, id),
                    blob: blob.id.clone(),
                    size: i64::try_from(blob.size).unwrap_or(i64::MAX),
                    mime: blob.mime.clone(),
                    revision: 1,
                };
                let mut values = fields.to_values();
                values.retain(|_, v| !v.is_empty());
                let rec = Record {
                    id: next_id(txn)?,
                    company: actor.company,
                    version: 1,
                    created_at: now,
                    updated_at: now,
                    created_by: actor.user_id,
                    updated_by: actor.user_id,
                    values,
                    unknown: Vec::new(),
                };
                write_record(txn, &DOCUMENT, &actor, None, &rec, Op::Create)?;
                count_blob(txn, &blob.id, 1)?;
                let doc = Row::<Document>::of(&rec)?;
                info(&doc, &BTreeMap::from([(doc.id, actor.display_name.clone())]))
            })
            .await
    }

    /// Makes a stored blob the next version of document `id` (keeping the file name
    /// unless `file_name` gives one), for whoever may write its record. With
    /// `base_version`, refused when the document changed since.
    pub async fn add_version(
        &self,
        who: &Principal,
        id: u64,
        base_version: Option<u64>,
        file_name: Option<&str>,
        blob: StoredBlob,
    ) -> Result<DocumentInfo, KernelError> {
        blob_key(&blob.id)?;
        let name = file_name.map(clean_file_name);
        let clock = self.shared_clock();
        let actor = who.clone();
        self.store()
            .write(move |txn| {
                let now = to_stored_precision(clock.now());
                let old = writable(txn, &actor, id, base_version)?;
                let mut doc = Row::<Document>::of(&old)?;
                if let Some(name) = name {
                    doc.name = name;
                }
                doc.blob = blob.id.clone();
                doc.size = i64::try_from(blob.size).unwrap_or(i64::MAX);
                doc.mime = blob.mime.clone();
                doc.revision += 1;
                let mut new = old.clone();
                new.values = doc.to_values();
                new.values.retain(|_, v| !v.is_empty());
                new.version = old.version + 1;
                new.updated_at = now;
                new.updated_by = actor.user_id;
                write_record(txn, &DOCUMENT, &actor, Some(&old), &new, Op::Update)?;
                count_blob(txn, &blob.id, 1)?;
                let doc = Row::<Document>::of(&new)?;
                info(
                    &doc,
                    &BTreeMap::from([(doc.id, actor.display_name.clone())]),
                )
            })
            .await
    }

    /// Removes document `id` with every version, for whoever may write its record.
    pub async fn remove_document(
        &self,
        who: &Principal,
        id: u64,
        base_version: Option<u64>,
    ) -> Result<(), KernelError> {
        let clock = self.shared_clock();
        let actor = who.clone();
        self.store()
            .write(move |txn| {
                let now = to_stored_precision(clock.now());
                let old = writable(txn, &actor, id, base_version)?;
                remove_in(txn, &actor, &Row::<Document>::of(&old)?, now)
            })
            .await
    }

    /// The owner (0: none) of `def`'s record `id` in `company` as committed, for the
    /// indexes that apply record rules to what is attached to it. No permission is
    /// checked: it is for the derived indexes, which check at search time.
    pub fn record_owner(
        &self,
        company: u64,
        def: &'static EntityDef,
        id: u64,
    ) -> Result<u64, KernelError> {
        let Some(field) = def.owner() else {
            return Ok(0);
        };
        Ok(load(&self.store().read()?, def, company, id)?
            .and_then(|r| r.get(field.name).as_ref_id())
            .unwrap_or(0))
    }

    /// The documents attached to `def`'s record `id` in `company`, as (id, audit
    /// image), for the derived indexes (no permission is checked).
    pub fn attached_documents(
        &self,
        company: u64,
        def: &EntityDef,
        id: u64,
    ) -> Result<Vec<(u64, crate::event::Image)>, KernelError> {
        Ok(attached_records(&self.store().read()?, company, def, id)?
            .into_iter()
            .map(|rec| (rec.id, rec.audit_image(&DOCUMENT)))
            .collect())
    }

    /// How many records the store holds, of every entity in every company, documents
    /// included (what a rebuild of the index visits).
    pub fn record_total(&self) -> Result<u64, KernelError> {
        Ok(self
            .store()
            .read()?
            .scan_prefix(Table::Counts, &[])?
            .iter()
            .filter_map(|(_, v)| decode_u64(v))
            .sum())
    }

    /// Whether some document version, as committed now, names the blob with this
    /// SHA-256: what the blob store's sweep asks before it removes one.
    pub fn blob_referenced(&self, sha256: &[u8; 32]) -> Result<bool, KernelError> {
        Ok(self.store().read()?.get(Table::Blobs, sha256)?.is_some())
    }
}

/// Document `id` as stored, once `who` may write the record it is attached to (and
/// it is still at `base_version`, when given). Someone who may not read that record
/// hears "not found".
fn writable(
    txn: &impl Reader,
    who: &Principal,
    id: u64,
    base_version: Option<u64>,
) -> Result<Record, KernelError> {
    let old = load(txn, &DOCUMENT, who.company, id)?.ok_or_else(|| not_found(&DOCUMENT, id))?;
    let (def, record) = parse_attached(Row::<Document>::of(&old)?.attached.as_str())?;
    if !who.can(def.name, Action::Read) {
        return Err(not_found(&DOCUMENT, id));
    }
    target(txn, who, def, record, Action::Write).map_err(|e| match e {
        KernelError::NotFound(_) => not_found(&DOCUMENT, id),
        other => other,
    })?;
    if let Some(v) = base_version
        && v != old.version
    {
        return Err(KernelError::Conflict(format!(
            "this document was changed since you opened it (you had version {v}, it is now version {}); reload to see the change",
            old.version
        )));
    }
    Ok(old)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_lose_paths_control_characters_and_excess_but_keep_their_extension() {
        assert_eq!(clean_file_name("../../etc/passwd"), "passwd");
        assert_eq!(
            clean_file_name("C:\\Users\\a\\Invoice 7.pdf"),
            "Invoice 7.pdf"
        );
        assert_eq!(clean_file_name("a\u{0}b\r\n.txt"), "ab.txt");
        assert_eq!(clean_file_name("  two   spaces .pdf "), "two spaces .pdf");
        assert_eq!(clean_file_name("..."), "document");
        assert_eq!(clean_file_name(""), "document");
        assert_eq!(clean_file_name("dir/"), "document");
        let long = format!("{}.xlsx", "x".repeat(400));
        let kept = clean_file_name(&long);
        assert_eq!(kept.chars().count(), MAX_NAME_CHARS);
        assert!(kept.ends_with(".xlsx"), "{kept}");
    }

    #[test]
    fn blob_ids_are_64_lowercase_hex_digits() {
        assert!(blob_key(&"ab".repeat(32)).is_ok());
        assert!(blob_key(&"AB".repeat(32)).is_err());
        assert!(blob_key("abc").is_err());
        assert!(blob_key(&"zz".repeat(32)).is_err());
    }
}
