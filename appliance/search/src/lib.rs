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
pub mod saved;
mod schema;
mod vectors;
mod walk;

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
pub use query::{ANY_WORD_FROM, Fragment, MAX_QUERY_CHARS, MAX_QUERY_WORDS};
use schema::{Entry, Fields};
pub use vectors::{
    EF_CONSTRUCTION, EF_SEARCH, FREEZE_AFTER, M, SAVE_AFTER, VECTOR_FORMAT, VectorIndex,
};
pub use walk::Walk;

/// What one event changes in the indexes: the entries under `key` are replaced by
/// `entries` (none: the record or document is gone).
#[derive(Debug)]
pub(crate) struct Change {
    pub key: String,
    pub entries: Vec<Entry>,
}

/// The index's layout. An index written with another one is rebuilt from the store
/// (it is derived: nothing is lost).
pub const FORMAT: u32 = 5;

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
    /// By words, by meaning, or both (the default).
    pub retrieval: Retrieval,
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
    /// Which index found it.
    pub found_by: FoundBy,
    /// How alike in meaning (cosine), when the vector index found it.
    pub similarity: Option<f32>,
}

/// Which index found a hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FoundBy {
    /// Its words match the reader's.
    #[default]
    Words,
    /// It means something close (the vector index), though its words differ.
    Meaning,
    Both,
}

/// How hits are found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Retrieval {
    /// By words alone (BM25 with typos and prefixes).
    Text,
    /// By meaning alone (the vector index), when there is one.
    Vector,
    /// Both, fused by reciprocal rank (words alone when there is no vector index).
    #[default]
    Hybrid,
}

impl Retrieval {
    pub fn parse(s: &str) -> Option<Retrieval> {
        match s {
            "text" => Some(Retrieval::Text),
            "vector" => Some(Retrieval::Vector),
            "hybrid" => Some(Retrieval::Hybrid),
            _ => None,
        }
    }
}

/// How many of each index's best a hybrid search fuses.
const FUSED: usize = 50;

/// Reciprocal rank fusion's constant (Cormack et al.: 60).
const RRF_K: f32 = 60.0;

/// The least cosine similarity at which a vector neighbour is a hit at all (unrelated
/// texts score about 0 to 0.2 with all-MiniLM-L6-v2).
pub const MIN_SIMILARITY: f32 = 0.3;

/// A candidate of a search, with its rank in each index that found it.
struct Ranked {
    id: (String, u32),
    address: DocAddress,
    words: Option<(usize, f32)>,
    meaning: Option<(usize, f32)>,
}

impl Ranked {
    fn fused(&self) -> f32 {
        let rrf =
            |r: Option<(usize, f32)>| r.map_or(0.0, |(rank, _)| 1.0 / (RRF_K + rank as f32 + 1.0));
        rrf(self.words) + rrf(self.meaning)
    }

    /// What the hit reports as its score: the fused rank when both indexes ranked,
    /// else the one index's own score.
    fn score(&self) -> f32 {
        match (self.words, self.meaning) {
            (Some((_, s)), None) => s,
            (None, Some((_, s))) => s,
            _ => self.fused(),
        }
    }

    fn found_by(&self) -> FoundBy {
        match (self.words.is_some(), self.meaning.is_some()) {
            (true, true) => FoundBy::Both,
            (false, true) => FoundBy::Meaning,
            _ => FoundBy::Words,
        }
    }
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
    /// Records whose words match (by meaning alone: the hits).
    pub total: u64,
    /// Whether the words' hits may have only some of the words: a search of
    /// [`ANY_WORD_FROM`] words or more is read as a question, and keywords that no
    /// record has together match, by words alone, those with any of them, best first
    /// (beside meaning they find nothing by words).
    pub some_words: bool,
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
    vectors: OnceLock<Arc<VectorIndex>>,
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
            vectors: OnceLock::new(),
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

    /// The entries of document `id` (its image `doc`) in `company`: a passage each,
    /// or its name alone.
    fn document_entries(
        &self,
        kernel: &Kernel,
        company: u64,
        id: u64,
        doc: &Image,
    ) -> Result<Vec<Entry>, SearchError> {
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
        Ok((0u32..)
            .zip(&passages)
            .map(|(part, p)| Entry::passage(parent, company, record, owner, id, name, part, p))
            .collect())
    }

    /// Every entry of one snapshot of the store, given to `visit` with the number of
    /// records visited so far; the answer is the snapshot's head. Documents are read
    /// through the [`DocumentSource`].
    pub(crate) fn snapshot_entries(
        &self,
        kernel: &Kernel,
        mut visit: impl FnMut(u64, Entry) -> Result<(), SearchError>,
    ) -> Result<u64, SearchError> {
        let mut visited = 0u64;
        let mut failed = None;
        let head = kernel.snapshot_records(|def, company, id, image| {
            visited += 1;
            let entries = if def.code == DOCUMENT.code {
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
                vec![Entry::record(def, company, id, image)]
            };
            for entry in entries {
                if let Err(e) = visit(visited, entry) {
                    failed = Some(e);
                    return ControlFlow::Break(());
                }
            }
            ControlFlow::Continue(())
        })?;
        match failed {
            Some(e) => Err(e),
            None => Ok(head),
        }
    }

    /// What the events after `held` in `commands` change in the indexes, in order.
    pub(crate) fn changes(
        &self,
        kernel: &Kernel,
        commands: &[CommandEvents],
        held: u64,
    ) -> Result<Vec<Change>, SearchError> {
        let mut changes = Vec::new();
        for event in commands
            .iter()
            .flat_map(|c| &c.events)
            .filter(|e| e.seq > held)
        {
            if event.entity == DOCUMENT.name {
                changes.push(self.document_change(
                    kernel,
                    event.company,
                    event.record,
                    event.after.as_ref(),
                )?);
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
                        changes.push(self.document_change(
                            kernel,
                            event.company,
                            doc,
                            Some(&image),
                        )?);
                    }
                }
            }
            if def.search_fields.is_empty() {
                continue;
            }
            changes.push(Change {
                key: schema::key(event.company, def, event.record),
                entries: event
                    .after
                    .iter()
                    .map(|after| Entry::record(def, event.company, event.record, after))
                    .collect(),
            });
        }
        Ok(changes)
    }

    /// Document `id`'s entries replaced by those of `image` (none: it was removed).
    fn document_change(
        &self,
        kernel: &Kernel,
        company: u64,
        id: u64,
        image: Option<&Image>,
    ) -> Result<Change, SearchError> {
        Ok(Change {
            key: schema::key(company, &DOCUMENT, id),
            entries: match image {
                Some(image) => self.document_entries(kernel, company, id, image)?,
                None => Vec::new(),
            },
        })
    }

    /// The vector index searches also look in (once, at start; without one, search is
    /// by words alone).
    pub fn set_vectors(&self, vectors: Arc<VectorIndex>) {
        let _ = self.vectors.set(vectors);
    }

    pub fn vectors(&self) -> Option<&Arc<VectorIndex>> {
        self.vectors.get()
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
        let built = self.snapshot_entries(kernel, |n, entry| {
            if n != visited {
                visited = n;
                if visited.is_multiple_of(1000) {
                    progress(visited);
                }
            }
            w.writer.add_document(self.fields.document(&entry))?;
            added += 1;
            Ok(())
        });
        let head = match built {
            Ok(head) => head,
            Err(e) => {
                w.writer.rollback()?;
                return Err(e);
            }
        };
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
        for change in self.changes(kernel, commands, w.position)? {
            w.writer
                .delete_term(Term::from_field_text(self.fields.key, &change.key));
            for entry in &change.entries {
                w.writer.add_document(self.fields.document(entry))?;
            }
        }
        self.commit(&mut w, last)
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
    ///
    /// By [`Retrieval::Hybrid`] (with a vector index) the hits are the words' best and
    /// the meaning's nearest, fused by reciprocal rank; every one of them — those the
    /// vectors found too — is read back through the full-text index under the reader's
    /// [`query::scope`], so a hit they may not read is never shown whichever index
    /// found it. The counts are of the records whose words match.
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
        let limit = request.limit.clamp(1, 100);
        let vectors = match request.retrieval {
            Retrieval::Text => None,
            Retrieval::Vector | Retrieval::Hybrid => self.vectors.get(),
        };
        let by_words = vectors.is_none() || request.retrieval != Retrieval::Vector;
        let pool = if vectors.is_some() {
            FUSED.max(limit)
        } else {
            limit
        };
        let searcher = self.reader.searcher();
        // By words: the ranking, and the counts inside the reader's permissions.
        // Keywords match every word; a question, or keywords no record has together
        // (by words alone), any of them.
        let mut some_words = words.terms.len() >= query::ANY_WORD_FROM;
        let question = words.content();
        let (top, total, counts) = if by_words {
            let reader = query::reader(who, &readable);
            let run = |every_word: bool| {
                let mut clauses = query::matching(
                    &self.fields,
                    if every_word { &words } else { &question },
                    every_word,
                    &searcher,
                );
                clauses.extend(query::dated(&self.fields, request));
                searcher.search(
                    &tantivy::query::BooleanQuery::new(clauses),
                    &schema::Scoped {
                        reader: reader.clone(),
                        inner: (
                            TopDocs::with_limit(pool).order_by_score(),
                            Count,
                            schema::EntityCounts,
                        ),
                    },
                )
            };
            let mut found = run(!some_words)?;
            // With meaning beside them, keywords that match nothing together are left
            // to it: their single words' hits would only crowd its nearest out.
            if !some_words && found.1 == 0 && words.terms.len() > 1 && vectors.is_none() {
                some_words = true;
                found = run(false)?;
            }
            found
        } else {
            (Vec::new(), 0, Default::default())
        };
        let mut ranked: Vec<Ranked> = Vec::new();
        for (rank, (score, address)) in top.into_iter().enumerate() {
            let id = self.identity(&searcher, address)?;
            ranked.push(Ranked {
                id,
                address,
                words: Some((rank, score)),
                meaning: None,
            });
        }
        // By meaning: the nearest the reader may see, found again by words' index.
        if let Some(vectors) = vectors {
            // The engine failing costs meaning, never words: a hybrid search falls back.
            let near = match self.nearest(vectors, who, &readable, request, pool) {
                Ok(near) => near,
                Err(e) if request.retrieval == Retrieval::Hybrid => {
                    tracing::warn!(error = %e, "search by meaning failed; answering by words alone");
                    Vec::new()
                }
                Err(e) => return Err(e),
            };
            for (rank, n) in near.into_iter().enumerate() {
                let id = (n.key, n.part);
                if let Some(r) = ranked.iter_mut().find(|r| r.id == id) {
                    r.meaning = Some((rank, n.similarity));
                    continue;
                }
                let scope = query::scope(&self.fields, who, &readable, request);
                let q = query::entry(&self.fields, &id.0, id.1, scope);
                if let Some((_, address)) = searcher
                    .search(&q, &TopDocs::with_limit(1).order_by_score())?
                    .into_iter()
                    .next()
                {
                    ranked.push(Ranked {
                        id,
                        address,
                        words: None,
                        meaning: Some((rank, n.similarity)),
                    });
                }
            }
        }
        ranked.sort_by(|a, b| b.fused().total_cmp(&a.fused()));
        ranked.truncate(limit);
        let mut hits = Vec::with_capacity(ranked.len());
        for r in ranked {
            let marked = if some_words { &question } else { &words };
            if let Some(mut hit) = self.hit(&searcher, r.address, r.score(), marked)? {
                hit.found_by = r.found_by();
                hit.similarity = r.meaning.map(|m| m.1);
                hits.push(hit);
            }
        }
        let mut by_entity: Vec<(&'static EntityDef, u64)> = if by_words {
            counts
                .into_iter()
                .filter_map(|(code, n)| {
                    registry::entities()
                        .find(|d| u64::from(d.code) == code)
                        .map(|d| (d, n))
                })
                .collect()
        } else {
            let mut counted: Vec<(&'static EntityDef, u64)> = Vec::new();
            for h in &hits {
                match counted.iter_mut().find(|(d, _)| d.code == h.entity.code) {
                    Some(c) => c.1 += 1,
                    None => counted.push((h.entity, 1)),
                }
            }
            counted
        };
        by_entity.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.plural.cmp(b.0.plural)));
        Ok(SearchResults {
            some_words: by_words && some_words,
            total: if by_words {
                total as u64
            } else {
                hits.len() as u64
            },
            hits,
            by_entity,
        })
    }

    /// What the words' query of [`SearchIndex::search`] costs, alone: the best
    /// `request.limit` and the count, collected inside the reader's scope or —
    /// `scoped: false` — not (the raw query the benchmark compares with). Returns the
    /// count. Not for serving: without the scope it sees every company.
    #[doc(hidden)]
    pub fn words_only(
        &self,
        who: &Principal,
        request: &SearchRequest,
        scoped: bool,
    ) -> Result<u64, SearchError> {
        let words = query::words(&request.text)?;
        let readable: Vec<&'static EntityDef> = registry::entities()
            .filter(|d| !d.search_fields.is_empty())
            .filter(|d| who.can(d.name, nexus_kernel::Action::Read))
            .collect();
        let searcher = self.reader.searcher();
        let every_word = words.terms.len() < query::ANY_WORD_FROM;
        let mut clauses = query::matching(&self.fields, &words, every_word, &searcher);
        clauses.extend(query::dated(&self.fields, request));
        let q = tantivy::query::BooleanQuery::new(clauses);
        let top = TopDocs::with_limit(request.limit.clamp(1, 100)).order_by_score();
        let count = if scoped {
            let reader = query::reader(who, &readable);
            searcher
                .search(
                    &q,
                    &schema::Scoped {
                        reader,
                        inner: (top, Count),
                    },
                )?
                .1
        } else {
            searcher.search(&q, &(top, Count))?.1
        };
        Ok(count as u64)
    }

    /// The entries nearest `request`'s words in meaning that `who` may read, at least
    /// [`MIN_SIMILARITY`] alike.
    fn nearest(
        &self,
        vectors: &VectorIndex,
        who: &Principal,
        readable: &[&'static EntityDef],
        request: &SearchRequest,
        k: usize,
    ) -> Result<Vec<vectors::Near>, SearchError> {
        // The engine may be busy with the indexer's batch: wait off the runtime.
        let query = blocking(|| vectors.embedder().embed(&[request.text.as_str()]))
            .map_err(|e| SearchError::Index(e.to_string()))?;
        let Some(query) = query.into_iter().next() else {
            return Ok(Vec::new());
        };
        // The same scope as the words' query, as a test of each point.
        let allowed: Vec<(u16, Option<u64>)> = readable
            .iter()
            .map(|d| (d.code, who.own_only(d, nexus_kernel::Action::Read)))
            .collect();
        let from = request.from.map(schema::day_of);
        let to = request.to.map(schema::day_of);
        let dated = from.is_some() || to.is_some();
        let allow = |p: &vectors::Point| {
            p.company == who.company
                && allowed
                    .iter()
                    .any(|(code, own)| *code == p.entity && own.is_none_or(|u| u == p.owner))
                && (!dated
                    || p.day
                        .is_some_and(|d| from.is_none_or(|f| d >= f) && to.is_none_or(|t| d <= t)))
        };
        Ok(vectors
            .nearest(&query, k, who.company, allow)
            .into_iter()
            .filter(|n| n.similarity >= MIN_SIMILARITY)
            .collect())
    }

    /// The `(key, part)` of a stored entry.
    fn identity(
        &self,
        searcher: &tantivy::Searcher,
        address: DocAddress,
    ) -> Result<(String, u32), SearchError> {
        let doc: TantivyDocument = searcher.doc(address)?;
        let key = doc
            .get_first(self.fields.key)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned();
        let part = doc
            .get_first(self.fields.part)
            .and_then(|v| v.as_u64())
            .and_then(|p| u32::try_from(p).ok())
            .unwrap_or(0);
        Ok((key, part))
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
            found_by: FoundBy::Words,
            similarity: None,
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

/// The tailer that keeps a [`VectorIndex`]: a tailer of its own, so that the time
/// embeddings take holds up only the vectors, never the full-text index's freshness.
pub struct VectorIndexer {
    kernel: Kernel,
    search: Arc<SearchIndex>,
    vectors: Arc<VectorIndex>,
}

impl VectorIndexer {
    pub fn new(
        kernel: Kernel,
        search: Arc<SearchIndex>,
        vectors: Arc<VectorIndex>,
    ) -> VectorIndexer {
        VectorIndexer {
            kernel,
            search,
            vectors,
        }
    }
}

impl Tailer for VectorIndexer {
    fn name(&self) -> &'static str {
        "vectors"
    }

    fn position(&mut self, _head: u64) -> Result<u64, TailError> {
        if self.vectors.needs_rebuild() {
            let added = blocking(|| self.vectors.rebuild(&self.search, &self.kernel, |_| {}))
                .map_err(|e| TailError::Retry(e.to_string()))?;
            tracing::info!(
                vectors = added,
                model = self.vectors.model(),
                "vector index rebuilt from the store"
            );
        }
        Ok(self.vectors.position())
    }

    fn apply(&mut self, commands: &[CommandEvents]) -> Result<(), TailError> {
        blocking(|| self.vectors.apply(&self.search, &self.kernel, commands))
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
