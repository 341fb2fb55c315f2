//! The full-text index of the appliance (what Elasticsearch did), built on tantivy.
//!
//! * **One index** under `data/search/` holds a document per record of every entity
//!   that has search fields, in every company: its title, its search fields, its
//!   company, entity, owner and date.
//! * It is **derived**: a [`Tailer`] of the event log ([`Indexer`]) keeps it, under the
//!   kernel's tailer contract — the position it has applied is the payload of the
//!   index's own commit, so the index and its position are durable together. An index
//!   that is missing, damaged or of another [`FORMAT`] is rebuilt from a snapshot of
//!   the store ([`SearchIndex::rebuild`]), which then follows the log from that
//!   snapshot's head.
//! * **Permissions are inside the query** ([`SearchIndex::search`]): the reader's
//!   company, the entities their role may read and, under a record rule, only the
//!   records they own are clauses of the one query that finds, counts and groups the
//!   hits, so no hit, count or snippet they may not read ever leaves the index. A
//!   guarded field is never a search field (the kernel's registry refuses it), so no
//!   role-hidden value is in the index at all.
//! * **Documents** attached to records are in the same index: one entry per passage
//!   of their text (from a [`DocumentSource`]: the server extracts and caches it), or
//!   one for the file name alone when it has none, under the key of the document and
//!   with the company, entity, id and owner of the record it is attached to — so a
//!   passage is found exactly by those who may read that record. When a record's
//!   owner changes, its documents are indexed again with the new one.
//! * The reader's words are never tantivy's query language: they are split into
//!   terms by the same analyzer that indexed the text, each matched exactly, by
//!   prefix (the word being typed) and within one or two typos.

mod query;
mod schema;

use std::fmt::Write as _;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use nexus_kernel::{
    CommandEvents, EntityDef, FieldKind, Image, Kernel, KernelError, Principal, TailError, Tailer,
    registry,
};
use tantivy::collector::{Count, TopDocs};
use tantivy::directory::MmapDirectory;
use tantivy::schema::Value as _;
use tantivy::{DocAddress, Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};
use time::Date;

use nexus_kernel::documents::DOCUMENT;
pub use query::{Fragment, MAX_QUERY_CHARS, MAX_QUERY_WORDS};
use schema::Fields;

/// The index's layout. An index written with another one is rebuilt from the store
/// (it is derived: nothing is lost).
pub const FORMAT: u32 = 2;

/// One passage of a document's text, where it came from in the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocPassage {
    pub locator: String,
    pub page: Option<u32>,
    pub text: String,
}

/// What the index needs to know of documents and records beyond the event log.
pub trait DocumentSource: Send + Sync {
    /// The passages of a document's content (`sha256`, typed `mime`, named `name`);
    /// none when it holds no text or cannot be read (its name is indexed all the same).
    fn passages(&self, sha256: &str, mime: &str, name: &str) -> Vec<DocPassage>;
}

/// The most characters of a passage shown under its hit.
const SNIPPET_CHARS: usize = 240;

/// The writer's memory budget (tantivy needs at least 15 MB per thread).
const WRITER_BUDGET: usize = 32 * 1024 * 1024;

/// Why a search could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// The reader's words are more than the index takes (a pasted document, say).
    #[error("{0}")]
    Query(String),
    /// The index could not be read or written (a full disk, damage); it is rebuilt
    /// from the store, which holds everything it holds.
    #[error("the search index is not available: {0}")]
    Index(String),
    #[error(transparent)]
    Kernel(#[from] KernelError),
}

impl From<tantivy::TantivyError> for SearchError {
    fn from(e: tantivy::TantivyError) -> Self {
        SearchError::Index(e.to_string())
    }
}

/// What to look for, and where.
#[derive(Debug, Clone, Default)]
pub struct SearchRequest {
    /// The reader's words, as typed.
    pub text: String,
    /// Only these entities (by name); empty: every entity the reader may read.
    pub entities: Vec<String>,
    /// Only records dated on or after / on or before (a record's first date field).
    pub from: Option<Date>,
    pub to: Option<Date>,
    /// How many hits to return (at most 100).
    pub limit: usize,
}

/// One record that matched.
#[derive(Debug, Clone)]
pub struct Hit {
    pub entity: &'static EntityDef,
    pub record: u64,
    pub title: Vec<Fragment>,
    /// The search fields' text, with the matched words marked.
    pub snippet: Vec<Fragment>,
    pub date: Option<Date>,
    pub score: f32,
    /// Set when the hit is a passage of a document attached to the record.
    pub document: Option<DocumentHit>,
}

/// The document a passage hit is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentHit {
    pub id: u64,
    /// Where in it (`page 3`, a heading; empty for the file name alone).
    pub locator: String,
    pub page: Option<u32>,
}

impl Hit {
    /// Where the hit opens in the web UI: the record, the document's page, or a PDF
    /// at the page the passage is on.
    pub fn url(&self) -> String {
        match &self.document {
            Some(DocumentHit {
                id, page: Some(p), ..
            }) => {
                format!("/documents/{id}/content?inline=1#page={p}")
            }
            Some(d) => format!("/documents/{}", d.id),
            None => format!("/e/{}/{}", self.entity.name, self.record),
        }
    }

    pub fn title_text(&self) -> String {
        query::plain(&self.title)
    }
}

/// The answer to a search: the best hits, and how many the reader may see in all
/// and per entity (counted by the same query, so inside their permissions).
#[derive(Debug, Clone, Default)]
pub struct SearchResults {
    pub hits: Vec<Hit>,
    pub total: u64,
    pub by_entity: Vec<(&'static EntityDef, u64)>,
}

struct Writer {
    writer: IndexWriter,
    /// The last event applied (what the last commit's payload says).
    position: u64,
    /// Whether the index holds a commit of this format (else it must be rebuilt).
    built: bool,
}

/// The full-text index in one directory; shared by the indexer and the searchers.
pub struct SearchIndex {
    dir: PathBuf,
    fields: Fields,
    reader: IndexReader,
    writer: Mutex<Writer>,
    documents: OnceLock<Arc<dyn DocumentSource>>,
}

impl std::fmt::Debug for SearchIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchIndex")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// The payload of every commit: the format and the position it holds.
#[derive(serde::Serialize, serde::Deserialize)]
struct Payload {
    format: u32,
    position: u64,
}

impl SearchIndex {
    /// Opens the index in `dir`, creating it if needed. An index that cannot be opened
    /// (damaged, or another format) is set aside as `dir.damaged` and a fresh one is
    /// made: [`SearchIndex::needs_rebuild`] then says so, and the indexer rebuilds it.
    pub fn open(dir: impl Into<PathBuf>) -> Result<SearchIndex, SearchError> {
        let dir = dir.into();
        match Self::try_open(&dir) {
            Ok(index) => Ok(index),
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "search index unusable; rebuilding it from the store");
                Self::set_aside(&dir)?;
                Self::try_open(&dir)
            }
        }
    }

    fn try_open(dir: &Path) -> Result<SearchIndex, SearchError> {
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        let fields = Fields::new();
        let mmap = MmapDirectory::open(dir).map_err(|e| SearchError::Index(e.to_string()))?;
        let index = Index::open_or_create(mmap, fields.schema.clone())?;
        schema::register(&index);
        let metas = index.load_metas()?;
        let payload = match metas.payload.as_deref() {
            None => None,
            Some(p) => Some(
                serde_json::from_str::<Payload>(p)
                    .map_err(|e| SearchError::Index(format!("unreadable commit payload: {e}")))?,
            ),
        };
        if let Some(p) = &payload
            && p.format != FORMAT
        {
            return Err(SearchError::Index(format!(
                "the index has format {}, this binary writes {FORMAT}",
                p.format
            )));
        }
        let writer = index.writer_with_num_threads(1, WRITER_BUDGET)?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        // Reading one searcher proves the segments open.
        let searcher: tantivy::Searcher = IndexReader::searcher(&reader);
        searcher.search(&tantivy::query::AllQuery, &Count)?;
        Ok(SearchIndex {
            dir: dir.to_path_buf(),
            fields,
            reader,
            writer: Mutex::new(Writer {
                writer,
                position: payload.as_ref().map_or(0, |p| p.position),
                built: payload.is_some(),
            }),
            documents: OnceLock::new(),
        })
    }

    fn set_aside(dir: &Path) -> Result<(), SearchError> {
        let aside = dir.with_extension("damaged");
        if aside.exists() {
            std::fs::remove_dir_all(&aside).map_err(|e| io(&aside, e))?;
        }
        if dir.exists() {
            std::fs::rename(dir, &aside).map_err(|e| io(dir, e))?;
        }
        Ok(())
    }

    /// Where documents' text comes from (once, at start; without one, documents are
    /// indexed by file name only).
    pub fn set_documents(&self, source: Arc<dyn DocumentSource>) {
        let _ = self.documents.set(source);
    }

    /// The index entries of document `id` (its image `doc`) in `company`: a passage
    /// each, or its name alone.
    fn document_entries(
        &self,
        kernel: &Kernel,
        company: u64,
        id: u64,
        doc: &Image,
    ) -> Result<Vec<TantivyDocument>, SearchError> {
        let text = |k: &str| {
            doc.get(k)
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default()
        };
        let Some((parent, record)) = text("attached")
            .split_once('/')
            .and_then(|(e, r)| Some((registry::entity(e)?, r.parse::<u64>().ok()?)))
        else {
            return Ok(Vec::new());
        };
        let name = text("name");
        let source = self.documents.get();
        let owner = kernel.record_owner(company, parent, record)?;
        let mut passages =
            source.map_or_else(Vec::new, |s| s.passages(text("blob"), text("mime"), name));
        if passages.is_empty() {
            passages.push(DocPassage {
                locator: String::new(),
                page: None,
                text: String::new(),
            });
        }
        Ok(passages
            .iter()
            .map(|p| {
                self.fields
                    .passage(parent, company, record, owner, id, name, p)
            })
            .collect())
    }

    /// The directory it lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether the index has never been built from the store (new, or set aside).
    pub fn needs_rebuild(&self) -> bool {
        !lock(&self.writer).built
    }

    /// The last event the index holds.
    pub fn position(&self) -> u64 {
        lock(&self.writer).position
    }

    /// How many records the index holds, in every company.
    pub fn len(&self) -> Result<u64, SearchError> {
        let searcher = self.reader.searcher();
        Ok(searcher.num_docs())
    }

    pub fn is_empty(&self) -> Result<bool, SearchError> {
        Ok(self.len()? == 0)
    }

    /// Empties the index and fills it from one snapshot of the store; the index then
    /// holds the snapshot's head as its position. `progress(records)` is called every
    /// thousand records visited and at the end; the answer is the entries added (a
    /// document adds one per passage). Searches see the old entries until it commits.
    pub fn rebuild(
        &self,
        kernel: &Kernel,
        mut progress: impl FnMut(u64),
    ) -> Result<u64, SearchError> {
        let mut w = lock(&self.writer);
        w.writer.delete_all_documents()?;
        let mut added = 0u64;
        let mut visited = 0u64;
        let mut failed = None;
        let head = kernel.snapshot_records(|def, company, id, image| {
            visited += 1;
            if visited.is_multiple_of(1000) {
                progress(visited);
            }
            let docs = if def.code == DOCUMENT.code {
                match self.document_entries(kernel, company, id, image) {
                    Ok(d) => d,
                    Err(e) => {
                        failed = Some(e);
                        return ControlFlow::Break(());
                    }
                }
            } else if def.search_fields.is_empty() {
                return ControlFlow::Continue(());
            } else {
                vec![self.fields.document(def, company, id, image)]
            };
            for doc in docs {
                if let Err(e) = w.writer.add_document(doc) {
                    failed = Some(e.into());
                    return ControlFlow::Break(());
                }
                added += 1;
            }
            ControlFlow::Continue(())
        })?;
        if let Some(e) = failed {
            w.writer.rollback()?;
            return Err(e);
        }
        self.commit(&mut w, head)?;
        progress(visited);
        Ok(added)
    }

    /// Applies whole commands of the event log, in order, and commits them with the
    /// new position. Events at or before the position already held are skipped, so a
    /// command given twice (after a rebuild, a retry) changes nothing.
    pub fn apply(&self, kernel: &Kernel, commands: &[CommandEvents]) -> Result<(), SearchError> {
        let Some(last) = commands.last().map(CommandEvents::last_seq) else {
            return Ok(());
        };
        let mut w = lock(&self.writer);
        if last <= w.position {
            return Ok(());
        }
        let held = w.position;
        for event in commands
            .iter()
            .flat_map(|c| &c.events)
            .filter(|e| e.seq > held)
        {
            if event.entity == DOCUMENT.name {
                self.replace_document(
                    kernel,
                    &mut w,
                    event.company,
                    event.record,
                    event.after.as_ref(),
                )?;
                continue;
            }
            let Some(def) = registry::entity(&event.entity) else {
                continue;
            };
            // A new owner: the record's documents are found by the new one only.
            if let Some(f) = def.owner() {
                let owner = |i: Option<&Image>| i.and_then(|i| i.get(f.name)).cloned();
                if event.after.is_some()
                    && owner(event.before.as_ref()) != owner(event.after.as_ref())
                {
                    for (doc, image) in
                        kernel.attached_documents(event.company, def, event.record)?
                    {
                        self.replace_document(kernel, &mut w, event.company, doc, Some(&image))?;
                    }
                }
            }
            if def.search_fields.is_empty() {
                continue;
            }
            w.writer.delete_term(Term::from_field_text(
                self.fields.key,
                &schema::key(event.company, def, event.record),
            ));
            if let Some(after) = &event.after {
                w.writer.add_document(self.fields.document(
                    def,
                    event.company,
                    event.record,
                    after,
                ))?;
            }
        }
        self.commit(&mut w, last)
    }

    /// Replaces document `id`'s entries with those of `image` (none: it was removed).
    fn replace_document(
        &self,
        kernel: &Kernel,
        w: &mut MutexGuard<'_, Writer>,
        company: u64,
        id: u64,
        image: Option<&Image>,
    ) -> Result<(), SearchError> {
        w.writer.delete_term(Term::from_field_text(
            self.fields.key,
            &schema::key(company, &DOCUMENT, id),
        ));
        if let Some(image) = image {
            for entry in self.document_entries(kernel, company, id, image)? {
                w.writer.add_document(entry)?;
            }
        }
        Ok(())
    }

    fn commit(&self, w: &mut MutexGuard<'_, Writer>, position: u64) -> Result<(), SearchError> {
        let payload = serde_json::to_string(&Payload {
            format: FORMAT,
            position,
        })
        .map_err(|e| SearchError::Index(e.to_string()))?;
        let mut prepared = w.writer.prepare_commit()?;
        prepared.set_payload(&payload);
        prepared.commit()?;
        w.position = position;
        w.built = true;
        self.reader.reload()?;
        Ok(())
    }

    /// The hits `who` may read for `request`, best first, with counts.
    pub fn search(
        &self,
        who: &Principal,
        request: &SearchRequest,
    ) -> Result<SearchResults, SearchError> {
        let words = query::words(&request.text)?;
        if words.terms.is_empty() {
            return Ok(SearchResults::default());
        }
        let readable: Vec<&'static EntityDef> = registry::entities()
            .filter(|d| !d.search_fields.is_empty())
            .filter(|d| who.can(d.name, nexus_kernel::Action::Read))
            .filter(|d| request.entities.is_empty() || request.entities.iter().any(|e| e == d.name))
            .collect();
        if readable.is_empty() {
            return Ok(SearchResults::default());
        }
        let q = query::build(&self.fields, who, &readable, &words, request);
        let searcher = self.reader.searcher();
        let limit = request.limit.clamp(1, 100);
        let (top, total, counts) = searcher.search(
            &q,
            &(
                TopDocs::with_limit(limit).order_by_score(),
                Count,
                schema::EntityCounts,
            ),
        )?;
        let mut hits = Vec::with_capacity(top.len());
        for (score, address) in top {
            if let Some(hit) = self.hit(&searcher, address, score, &words)? {
                hits.push(hit);
            }
        }
        let mut by_entity: Vec<(&'static EntityDef, u64)> = counts
            .into_iter()
            .filter_map(|(code, n)| {
                registry::entities()
                    .find(|d| u64::from(d.code) == code)
                    .map(|d| (d, n))
            })
            .collect();
        by_entity.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.plural.cmp(b.0.plural)));
        Ok(SearchResults {
            hits,
            total: total as u64,
            by_entity,
        })
    }

    fn hit(
        &self,
        searcher: &tantivy::Searcher,
        address: DocAddress,
        score: f32,
        words: &query::Words,
    ) -> Result<Option<Hit>, SearchError> {
        let doc: TantivyDocument = searcher.doc(address)?;
        let code = doc
            .get_first(self.fields.entity)
            .and_then(|v| v.as_u64())
            .unwrap_or(u64::MAX);
        let Some(entity) = registry::entities().find(|d| u64::from(d.code) == code) else {
            return Ok(None);
        };
        let record = doc
            .get_first(self.fields.record)
            .and_then(|v| v.as_u64())
            .unwrap_or(0);
        let text = |f| {
            doc.get_first(f)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string()
        };
        let date = doc
            .get_first(self.fields.day)
            .and_then(|v| v.as_i64())
            .and_then(schema::date_of_day);
        let number = |f| doc.get_first(f).and_then(|v| v.as_u64()).unwrap_or(0);
        let document = match number(self.fields.doc) {
            0 => None,
            id => Some(DocumentHit {
                id,
                locator: text(self.fields.locator),
                page: u32::try_from(number(self.fields.page))
                    .ok()
                    .filter(|p| *p > 0),
            }),
        };
        let mut snippet = query::highlight(&text(self.fields.body), words);
        if document.is_some() {
            snippet = query::around_first_hit(snippet, SNIPPET_CHARS);
        }
        Ok(Some(Hit {
            entity,
            record,
            title: query::highlight(&text(self.fields.title), words),
            snippet,
            date,
            score,
            document,
        }))
    }
}

/// The tailer that keeps a [`SearchIndex`] (see the crate documentation).
pub struct Indexer {
    kernel: Kernel,
    index: std::sync::Arc<SearchIndex>,
}

impl Indexer {
    pub fn new(kernel: Kernel, index: std::sync::Arc<SearchIndex>) -> Indexer {
        Indexer { kernel, index }
    }
}

impl Tailer for Indexer {
    fn name(&self) -> &'static str {
        "search"
    }

    fn position(&mut self, _head: u64) -> Result<u64, TailError> {
        if self.index.needs_rebuild() {
            let added = blocking(|| self.index.rebuild(&self.kernel, |_| {}))
                .map_err(|e| TailError::Retry(e.to_string()))?;
            tracing::info!(records = added, "search index rebuilt from the store");
        }
        Ok(self.index.position())
    }

    fn apply(&mut self, commands: &[CommandEvents]) -> Result<(), TailError> {
        blocking(|| self.index.apply(&self.kernel, commands))
            .map_err(|e| TailError::Retry(e.to_string()))
    }
}

/// Runs index work that waits on the disk without holding up the runtime's other
/// tasks (where the runtime has other threads to give them).
fn blocking<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn io(path: &Path, e: std::io::Error) -> SearchError {
    SearchError::Index(format!("{}: {e}", path.display()))
}

/// The text a JSON value of an image contributes to the index.
fn text_of(value: &serde_json::Value, out: &mut String) {
    match value {
        serde_json::Value::String(s) => out.push_str(s),
        serde_json::Value::Number(n) => {
            let _ = write!(out, "{n}");
        }
        _ => {}
    }
}

/// The first date field of a record, as its image holds it.
fn date_of(def: &EntityDef, image: &Image) -> Option<Date> {
    def.fields
        .iter()
        .filter(|f| f.kind == FieldKind::Date)
        .find_map(|f| image.get(f.name).and_then(|v| v.as_str()))
        .and_then(|s| nexus_kernel::parse_date(s).ok())
}

#[cfg(test)]
mod tests;
