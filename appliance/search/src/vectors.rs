//! The vector index: one embedding per entry of the full-text index (a record, or a
//! passage of a document), found by meaning rather than by words.
//!
//! * **Durable where it is expensive**: every embedding is kept in a redb file of its
//!   own (`data/vectors/vectors.redb`), with the event it has applied up to in the
//!   same transaction (the tailer contract), and the identity of the model that made
//!   them. The HNSW graph (hnsw_rs) is saved beside them and read back when the index
//!   opens (see `saved`), or built from the vectors where no usable save is there; a
//!   build costs minutes, the embeddings it would otherwise take cost hours. A file that is damaged, of another [`VECTOR_FORMAT`] or made by another
//!   model is set aside and the index rebuilt from the store.
//! * **Deletions are tombstones**: hnsw_rs cannot remove a point, so a replaced or
//!   removed entry's point stays in the graph, marked dead, and is filtered out of
//!   every search. When the dead are a quarter of the graph it is rebuilt from the
//!   live points ([`VectorIndex::compact`]).
//! * **Searched through a compact copy**: hnsw_rs builds the graph, a [`Walk`] holds
//!   its links as flat arrays and searches them (hnsw_rs's own search is a fifth as
//!   fast). The points inserted since the copy was made are compared one by one, and
//!   the copy is made again when they are more than [`FREEZE_AFTER`] or an eighth of
//!   those it holds. The vectors are kept once, as rows in insertion order (a node of
//!   the graph is its row), beside hnsw_rs's own copy.
//! * **Permissions inside the search**: the reader's company, readable entities,
//!   owner rule and date range are a filter that hnsw_rs applies while it walks the
//!   graph, so no point they may not read is ever a candidate. Small indexes (and so
//!   every small company's reading) are searched exactly instead.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use hnsw_rs::prelude::{DistDot, Hnsw};
use nexus_ai::Embedder;
use redb::{
    ReadableDatabase as _, ReadableTable as _, ReadableTableMetadata as _, TableDefinition,
};

use crate::saved;
use crate::schema::Entry;
use crate::walk::{Walk, dot};
use crate::{SearchError, io, lock};

/// The layout of the vector file. Another one is set aside and rebuilt.
pub const VECTOR_FORMAT: u32 = 1;

/// Graph parameters, as hnswlib names them: links per node (M) and the candidates
/// kept while inserting (ef_construction) and while searching (ef, at least).
pub const M: usize = 16;
pub const EF_CONSTRUCTION: usize = 200;
pub const EF_SEARCH: usize = 64;

/// At most this many live points, a search compares with every one (exact, and
/// faster than the graph at this size).
const EXACT_BELOW: usize = 5_000;

/// Points inserted since the compact copy of the graph was made, beyond which it is made
/// again (until then they are compared one by one).
pub const FREEZE_AFTER: usize = 1_024;

/// Rows added since the graph was last saved beyond which it is saved again (when they
/// are also an eighth of all): an open after a crash inserts at most about this many.
pub const SAVE_AFTER: usize = 4_096;

/// Texts embedded per call to the engine: a search's query waits at most this long
/// behind the indexer.
const EMBED_CHUNK: usize = 32;

const ITEMS: TableDefinition<u64, &[u8]> = TableDefinition::new("items");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

/// What the filter of a search needs of a point, kept in memory beside the graph.
#[derive(Debug, Clone)]
pub(crate) struct Point {
    pub key: String,
    pub part: u32,
    pub company: u64,
    pub entity: u16,
    pub owner: u64,
    pub day: Option<i64>,
}

/// The points of one graph, numbered by row: the order they were inserted in, which is
/// their data id in hnsw_rs and their node in the [`Walk`].
struct Graph {
    hnsw: Hnsw<'static, f32, DistDot>,
    dimension: usize,
    /// Row `r`'s vector at `r * dimension` (hnsw_rs keeps its own copy, but iterating
    /// its points while another thread inserts deadlocks: its iterator takes a read
    /// lock it already holds).
    rows: Vec<f32>,
    /// By row; `None`: a tombstone.
    points: Vec<Option<Point>>,
    /// By row: its key in the vector file (tombstones too, for the saved graph).
    slots: Vec<u64>,
    /// The live rows of each key.
    keys: HashMap<String, Vec<usize>>,
    /// The live rows of each company: a company small enough is searched exactly,
    /// however large the whole index.
    companies: HashMap<u64, HashSet<usize>>,
    live: usize,
    /// The graph's links, for the rows before `walk.nodes()`.
    walk: Walk,
}

impl Graph {
    fn new(capacity: usize, dimension: usize) -> Graph {
        Graph {
            hnsw: new_hnsw(capacity),
            dimension,
            rows: Vec::new(),
            points: Vec::new(),
            slots: Vec::new(),
            keys: HashMap::new(),
            companies: HashMap::new(),
            live: 0,
            walk: Walk::default(),
        }
    }

    fn vector(&self, row: usize) -> &[f32] {
        let start = row * self.dimension;
        self.rows.get(start..start + self.dimension).unwrap_or(&[])
    }
}

fn new_hnsw(capacity: usize) -> Hnsw<'static, f32, DistDot> {
    let capacity = capacity.max(1_000);
    // hnswlib's level multiplier 1/ln(M) gives about log_M(n) layers.
    let layers = 16;
    let mut h = Hnsw::new(M, capacity, layers, EF_CONSTRUCTION, DistDot {});
    h.set_searching_mode(true);
    h
}

struct Writer {
    position: u64,
    next_slot: u64,
    built: bool,
    /// Names this vector file's numbering of slots: a new one when the file is made
    /// again, so that a graph saved for the old one is not taken for it.
    generation: u64,
    /// The rows of the graph last saved (0: none).
    saved: usize,
}

/// The vector index in one directory, with the model that fills it.
pub struct VectorIndex {
    dir: PathBuf,
    db: redb::Database,
    embedder: Arc<Embedder>,
    model: String,
    graph: RwLock<Graph>,
    writer: Mutex<Writer>,
    /// Rows of the graph read from its save at open (0: built from the vectors).
    read_at_open: usize,
    /// At most this many live points, a search compares with every one.
    exact_below: std::sync::atomic::AtomicUsize,
    /// Searches that compared with every candidate (tests check the path taken).
    #[cfg(test)]
    exact_searches: std::sync::atomic::AtomicUsize,
}

impl std::fmt::Debug for VectorIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VectorIndex")
            .field("dir", &self.dir)
            .field("model", &self.model)
            .finish_non_exhaustive()
    }
}

/// One neighbour of a query: an entry and how close it is (cosine similarity).
#[derive(Debug, Clone)]
pub(crate) struct Near {
    pub key: String,
    pub part: u32,
    pub similarity: f32,
}

impl VectorIndex {
    /// Opens (or creates) the index in `dir` for vectors made by `embedder`. A file
    /// that is damaged, or holds another format or another model's vectors, is set
    /// aside as `dir.damaged` and the index starts empty: [`VectorIndex::needs_rebuild`]
    /// then says so. A file that cannot be opened now — another process holds it, the
    /// disk refuses — is left as it is, and the error says why.
    pub fn open(
        dir: impl Into<PathBuf>,
        embedder: Arc<Embedder>,
    ) -> Result<VectorIndex, SearchError> {
        let dir = dir.into();
        let info = embedder.info();
        let model = format!(
            "{} ({} dimensions, {} bytes)",
            info.name, info.dimension, info.bytes
        );
        match Self::try_open(&dir, &embedder, &model) {
            Ok(v) => Ok(v),
            // Held by another process, or the disk refusing now: the file is kept.
            Err(Unopened::Unavailable(e)) => Err(e),
            Err(Unopened::Unusable(e)) => {
                tracing::warn!(dir = %dir.display(), error = %e, "vector index unusable; rebuilding it from the store");
                let aside = dir.with_extension("damaged");
                if aside.exists() {
                    std::fs::remove_dir_all(&aside).map_err(|e| io(&aside, e))?;
                }
                if dir.exists() {
                    std::fs::rename(&dir, &aside).map_err(|e| io(&dir, e))?;
                }
                Self::try_open(&dir, &embedder, &model).map_err(Unopened::into_error)
            }
        }
    }

    fn try_open(
        dir: &Path,
        embedder: &Arc<Embedder>,
        model: &str,
    ) -> Result<VectorIndex, Unopened> {
        std::fs::create_dir_all(dir).map_err(|e| Unopened::Unavailable(io(dir, e)))?;
        let file = dir.join("vectors.redb");
        let unusable = |e: &dyn std::fmt::Display| Unopened::Unusable(index_error(&file, e));
        let storage = |e: redb::StorageError| Unopened::of_storage(&file, e);
        let db = redb::Database::create(&file).map_err(|e| match e {
            redb::DatabaseError::Storage(e) => storage(e),
            redb::DatabaseError::RepairAborted | redb::DatabaseError::UpgradeRequired(_) => {
                unusable(&e)
            }
            // Already open (another process: `nexus reindex` beside the server, say),
            // another locking protocol, a transaction in progress.
            e => Unopened::Unavailable(index_error(&file, e)),
        })?;
        let table = |e: redb::TableError| match e {
            redb::TableError::Storage(e) => storage(e),
            e => unusable(&e),
        };
        let dimension = embedder.dimension();
        let (writer, graph) = {
            let read = db.begin_read().map_err(|e| match e {
                redb::TransactionError::Storage(e) => storage(e),
                e => Unopened::Unavailable(index_error(&file, e)),
            })?;
            let meta = match read.open_table(META) {
                Ok(t) => Some(t),
                Err(redb::TableError::TableDoesNotExist(_)) => None,
                Err(e) => return Err(table(e)),
            };
            let get = |k: &str| -> Result<Option<Vec<u8>>, Unopened> {
                match &meta {
                    None => Ok(None),
                    Some(t) => Ok(t.get(k).map_err(storage)?.map(|v| v.value().to_vec())),
                }
            };
            let number = |k: &str| -> Result<Option<u64>, Unopened> {
                get(k)?
                    .map(|v| {
                        <[u8; 8]>::try_from(v.as_slice())
                            .map(u64::from_le_bytes)
                            .map_err(|_| unusable(&format!("bad {k}")))
                    })
                    .transpose()
            };
            match number("format")? {
                None => {}
                Some(f) if f == u64::from(VECTOR_FORMAT) => {}
                Some(f) => {
                    return Err(Unopened::Unusable(SearchError::Index(format!(
                        "the vector index has format {f}, this binary writes {VECTOR_FORMAT}"
                    ))));
                }
            }
            let made_by = get("model")?.map(|m| String::from_utf8_lossy(&m).into_owned());
            if made_by.as_deref().is_some_and(|m| m != model) {
                return Err(Unopened::Unusable(SearchError::Index(format!(
                    "the vectors were made by {}, the model now is {model}",
                    made_by.unwrap_or_default()
                ))));
            }
            let position = number("position")?;
            let next_slot = number("next_slot")?.unwrap_or(1);
            let generation = number("generation")?;
            let (graph, saved) = match (position, generation) {
                (None, _) => (Graph::new(0, dimension), 0),
                (Some(_), Some(generation)) => {
                    let items = read.open_table(ITEMS).map_err(table)?;
                    open_graph(dir, &items, dimension, generation).map_err(|e| unusable(&e))?
                }
                // Written before graphs were saved: no save can be of it.
                (Some(_), None) => {
                    let items = read.open_table(ITEMS).map_err(table)?;
                    (load_graph(&items, dimension).map_err(|e| unusable(&e))?, 0)
                }
            };
            (
                Writer {
                    position: position.unwrap_or(0),
                    next_slot,
                    built: position.is_some(),
                    generation: generation.unwrap_or_else(rand::random),
                    saved,
                },
                graph,
            )
        };
        let index = VectorIndex {
            dir: dir.to_path_buf(),
            db,
            embedder: Arc::clone(embedder),
            model: model.to_owned(),
            graph: RwLock::new(graph),
            read_at_open: writer.saved,
            writer: Mutex::new(writer),
            exact_below: std::sync::atomic::AtomicUsize::new(EXACT_BELOW),
            #[cfg(test)]
            exact_searches: std::sync::atomic::AtomicUsize::new(0),
        };
        {
            let mut w = lock(&index.writer);
            if w.built {
                // A file of an earlier binary gets its generation now, before any save.
                index
                    .write_generation(w.generation)
                    .map_err(Unopened::Unavailable)?;
                let built_here = w.saved == 0 && index.unsaved(&w) > 0;
                if built_here || index.save_due(&w) {
                    index.save_graph(&mut w);
                }
            }
        }
        Ok(index)
    }

    /// Saves the graph if rows were added since it was last saved, so that the next
    /// open reads it instead of building it (the server does this as it stops). An
    /// error leaves the last save, and the next open builds what it lacks.
    pub fn save(&self) -> Result<(), SearchError> {
        let mut w = lock(&self.writer);
        if !w.built || self.unsaved(&w) == 0 {
            return Ok(());
        }
        self.save_graph_or_err(&mut w)
    }

    /// Rows of the graph read from its save when the index opened (0: it was built from
    /// the vectors).
    pub fn read_at_open(&self) -> usize {
        self.read_at_open
    }

    /// Rows added since the graph was last saved.
    fn unsaved(&self, w: &Writer) -> usize {
        read(&self.graph).points.len().saturating_sub(w.saved)
    }

    /// Whether so many rows were added since the last save that an open after a crash
    /// would spend long inserting them: more than [`SAVE_AFTER`] and an eighth of all.
    fn save_due(&self, w: &Writer) -> bool {
        let all = read(&self.graph).points.len();
        let unsaved = all.saturating_sub(w.saved);
        unsaved > SAVE_AFTER && unsaved * 8 > all
    }

    /// Saves the graph (the writer held: nobody inserts meanwhile), or says in the log
    /// why not.
    fn save_graph(&self, w: &mut Writer) {
        if let Err(e) = self.save_graph_or_err(w) {
            tracing::warn!(dir = %self.dir.display(), error = %e, "the vector graph could not be saved; the next start builds what it lacks");
        }
    }

    fn save_graph_or_err(&self, w: &mut Writer) -> Result<(), SearchError> {
        let g = read(&self.graph);
        if g.points.is_empty() {
            return Ok(());
        }
        saved::save(&self.dir, w.generation, g.dimension, &g.hnsw, &g.slots)
            .map_err(SearchError::Index)?;
        w.saved = g.points.len();
        Ok(())
    }

    fn write_generation(&self, generation: u64) -> Result<(), SearchError> {
        let read_txn = self.db.begin_read().map_err(|e| self.error(e))?;
        let stored = read_txn
            .open_table(META)
            .map_err(|e| self.error(e))?
            .get("generation")
            .map_err(|e| self.error(e))?
            .map(|v| v.value().to_vec());
        drop(read_txn);
        if stored.as_deref() == Some(generation.to_le_bytes().as_slice()) {
            return Ok(());
        }
        let txn = self.db.begin_write().map_err(|e| self.error(e))?;
        txn.open_table(META)
            .map_err(|e| self.error(e))?
            .insert("generation", generation.to_le_bytes().as_slice())
            .map_err(|e| self.error(e))?;
        txn.commit().map_err(|e| self.error(e))
    }

    /// The directory it lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The model that makes its vectors, as it names itself.
    pub fn model(&self) -> &str {
        &self.model
    }

    pub(crate) fn embedder(&self) -> &Embedder {
        &self.embedder
    }

    /// Whether the index has never been built from the store.
    pub fn needs_rebuild(&self) -> bool {
        !lock(&self.writer).built
    }

    /// The last event the index holds.
    pub fn position(&self) -> u64 {
        lock(&self.writer).position
    }

    /// Live vectors, and points in the graph (tombstones included).
    pub fn len(&self) -> (usize, usize) {
        let g = read(&self.graph);
        (g.live, g.points.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len().0 == 0
    }

    /// Empties the index and embeds every entry of one snapshot of the store (read as
    /// `search` reads it: documents through its source); the index then holds the
    /// snapshot's head. `progress(entries embedded)` is called as it goes. Searches use
    /// the old vectors until it is done.
    pub fn rebuild(
        &self,
        search: &crate::SearchIndex,
        kernel: &nexus_kernel::Kernel,
        mut progress: impl FnMut(u64),
    ) -> Result<u64, SearchError> {
        let mut w = lock(&self.writer);
        let txn = self.db.begin_write().map_err(|e| self.error(e))?;
        txn.delete_table(ITEMS).map_err(|e| self.error(e))?;
        let mut graph = Graph::new(0, self.embedder.dimension());
        let mut slot = 1u64;
        let mut pending: Vec<Entry> = Vec::new();
        let mut embedded = 0u64;
        let head = {
            let mut items = txn.open_table(ITEMS).map_err(|e| self.error(e))?;
            let mut flush =
                |pending: &mut Vec<Entry>, graph: &mut Graph| -> Result<(), SearchError> {
                    let vectors = self.embed(pending)?;
                    let mut batch = Vec::with_capacity(pending.len());
                    for (entry, vector) in pending.drain(..).zip(vectors) {
                        let Some(vector) = vector else { continue };
                        items
                            .insert(slot, encode(&entry, &vector).as_slice())
                            .map_err(|e| self.error(e))?;
                        batch.push((point_of(&entry), slot, vector));
                        slot += 1;
                    }
                    embedded += batch.len() as u64;
                    graph.extend(batch);
                    progress(embedded);
                    Ok(())
                };
            let head = search.snapshot_entries(kernel, |_, entry| {
                pending.push(entry);
                if pending.len() >= 256 {
                    flush(&mut pending, &mut graph)?;
                }
                Ok(())
            })?;
            flush(&mut pending, &mut graph)?;
            head
        };
        // Slots number the entries afresh: a graph saved for the old file is not of it.
        let generation = rand::random();
        self.write_meta(&txn, head, slot, generation)?;
        txn.commit().map_err(|e| self.error(e))?;
        graph.freeze();
        *write(&self.graph) = graph;
        w.position = head;
        w.next_slot = slot;
        w.built = true;
        w.generation = generation;
        w.saved = 0;
        self.save_graph(&mut w);
        Ok(embedded)
    }

    /// Applies the changes of the events after the index's position up to `last`,
    /// and commits them with `last` as its position.
    pub(crate) fn apply(
        &self,
        search: &crate::SearchIndex,
        kernel: &nexus_kernel::Kernel,
        commands: &[nexus_kernel::CommandEvents],
    ) -> Result<(), SearchError> {
        let Some(last) = commands.last().map(nexus_kernel::CommandEvents::last_seq) else {
            return Ok(());
        };
        let mut w = lock(&self.writer);
        if last <= w.position {
            return Ok(());
        }
        let changes = search.changes(kernel, commands, w.position)?;
        // A key changed twice in these commands: only its last entries count.
        let mut last_of: HashMap<&str, usize> = HashMap::new();
        for (i, c) in changes.iter().enumerate() {
            last_of.insert(&c.key, i);
        }
        let kept: Vec<&crate::Change> = changes
            .iter()
            .enumerate()
            .filter(|(i, c)| last_of.get(c.key.as_str()) == Some(i))
            .map(|(_, c)| c)
            .collect();
        let entries: Vec<Entry> = kept
            .iter()
            .flat_map(|c| c.entries.iter().cloned())
            .collect();
        let vectors = self.embed(&entries)?;
        // What goes: every live row of a changed key, and its slot in the file.
        let gone: Vec<(usize, u64)> = {
            let g = read(&self.graph);
            kept.iter()
                .filter_map(|c| g.keys.get(&c.key))
                .flatten()
                .filter(|&&row| g.points.get(row).is_some_and(Option::is_some))
                .filter_map(|&row| Some((row, *g.slots.get(row)?)))
                .collect()
        };
        let mut slot = w.next_slot;
        let mut added = Vec::with_capacity(entries.len());
        let txn = self.db.begin_write().map_err(|e| self.error(e))?;
        {
            let mut items = txn.open_table(ITEMS).map_err(|e| self.error(e))?;
            for (_, s) in &gone {
                items.remove(*s).map_err(|e| self.error(e))?;
            }
            for (entry, vector) in entries.iter().zip(vectors) {
                let Some(vector) = vector else { continue };
                items
                    .insert(slot, encode(entry, &vector).as_slice())
                    .map_err(|e| self.error(e))?;
                added.push((point_of(entry), slot, vector));
                slot += 1;
            }
        }
        self.write_meta(&txn, last, slot, w.generation)?;
        txn.commit().map_err(|e| self.error(e))?;
        // Into hnsw_rs first (not yet searchable: no point is recorded for those rows;
        // only this writer adds rows, so they are the next ones), then the points
        // swapped in one step, then a new compact copy if the one searched is behind.
        read(&self.graph).insert_next(&added);
        let stale = {
            let mut g = write(&self.graph);
            for (row, _) in gone {
                g.remove(row);
            }
            for (point, slot, vector) in added {
                g.add(point, slot, &vector);
            }
            g.stale()
        };
        if stale {
            let walk = {
                let g = read(&self.graph);
                Walk::after(&g.hnsw, g.points.len(), &g.walk)
            };
            write(&self.graph).walk = walk;
        }
        w.position = last;
        w.next_slot = slot;
        w.built = true;
        if self.save_due(&w) {
            self.save_graph(&mut w);
        }
        drop(w);
        if self.wants_compaction() {
            self.compact()?;
        }
        Ok(())
    }

    fn wants_compaction(&self) -> bool {
        let g = read(&self.graph);
        let all = g.points.len();
        all > 10_000 && (all - g.live) * 4 > all
    }

    /// Rebuilds the graph from the live vectors alone (the stored vectors, not new
    /// embeddings), dropping every tombstone; searches use the old graph until the new
    /// one is ready.
    pub fn compact(&self) -> Result<(), SearchError> {
        let mut w = lock(&self.writer);
        let dimension = self.embedder.dimension();
        let read_txn = self.db.begin_read().map_err(|e| self.error(e))?;
        let items = read_txn.open_table(ITEMS).map_err(|e| self.error(e))?;
        let graph = load_graph(&items, dimension).map_err(|e| self.error(e))?;
        *write(&self.graph) = graph;
        // The rows are numbered afresh: the last save no longer matches them.
        w.saved = 0;
        self.save_graph(&mut w);
        drop(w);
        Ok(())
    }

    fn write_meta(
        &self,
        txn: &redb::WriteTransaction,
        position: u64,
        next_slot: u64,
        generation: u64,
    ) -> Result<(), SearchError> {
        let mut meta = txn.open_table(META).map_err(|e| self.error(e))?;
        for (k, v) in [
            ("format", u64::from(VECTOR_FORMAT)),
            ("position", position),
            ("next_slot", next_slot),
            ("generation", generation),
        ] {
            meta.insert(k, v.to_le_bytes().as_slice())
                .map_err(|e| self.error(e))?;
        }
        meta.insert("model", self.model.as_bytes())
            .map_err(|e| self.error(e))?;
        Ok(())
    }

    /// The vectors of `entries` (see [`embed_each`]).
    fn embed(&self, entries: &[Entry]) -> Result<Vec<Option<Vec<f32>>>, SearchError> {
        embed_each(entries, |texts| self.embedder.embed(texts))
    }

    /// The `k` live points nearest `query` that `allow` lets through, nearest first.
    ///
    /// Every point `allow` admits is of `company`. Up to [`EXACT_BELOW`] live points in
    /// the whole index, or in that company, the search compares with each of them
    /// (exact, and no slower than a graph walk that a filter few points pass would
    /// make a scan of); beyond, it walks the compact copy of the graph through the
    /// filter, and compares with each of the points inserted since the copy.
    pub(crate) fn nearest(
        &self,
        query: &[f32],
        k: usize,
        company: u64,
        allow: impl Fn(&Point) -> bool,
    ) -> Vec<Near> {
        let g = read(&self.graph);
        if g.live == 0 || query.len() != g.dimension {
            return Vec::new();
        }
        let visible = |row: usize| {
            g.points
                .get(row)
                .and_then(Option::as_ref)
                .filter(|p| allow(p))
        };
        let scan = |rows: &mut dyn Iterator<Item = usize>| {
            let mut all: Vec<(usize, f32)> = rows
                .filter(|&row| visible(row).is_some())
                .map(|row| (row, dot(query, g.vector(row))))
                .collect();
            all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            all.truncate(k);
            all
        };
        let exact = |rows: &mut dyn Iterator<Item = usize>| {
            #[cfg(test)]
            self.exact_searches
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            scan(rows)
        };
        let exact_below = self.exact_below.load(std::sync::atomic::Ordering::Relaxed);
        let own = g.companies.get(&company);
        let found: Vec<(usize, f32)> = if g.live <= exact_below {
            exact(&mut (0..g.points.len()))
        } else if own.is_none_or(|rows| rows.len() <= exact_below) {
            exact(&mut own.into_iter().flatten().copied())
        } else {
            let mut found = g.walk.search(&g.rows, query, k, EF_SEARCH.max(k), |row| {
                visible(row).is_some()
            });
            found.extend(scan(&mut (g.walk.nodes()..g.points.len())));
            found.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            found.truncate(k);
            found
        };
        found
            .into_iter()
            .filter_map(|(row, similarity)| {
                visible(row).map(|p| Near {
                    key: p.key.clone(),
                    part: p.part,
                    similarity,
                })
            })
            .collect()
    }

    /// Searches compare with every point up to `n` live ones (tests walk the graph
    /// with 0).
    #[cfg(test)]
    pub(crate) fn set_exact_below(&self, n: usize) {
        self.exact_below
            .store(n, std::sync::atomic::Ordering::Relaxed);
    }

    /// The live points of `company`, and how many searches compared exactly so far.
    #[cfg(test)]
    pub(crate) fn exactly(&self, company: u64) -> (usize, usize) {
        let g = read(&self.graph);
        (
            g.companies.get(&company).map_or(0, HashSet::len),
            self.exact_searches
                .load(std::sync::atomic::Ordering::Relaxed),
        )
    }

    fn error(&self, e: impl std::fmt::Display) -> SearchError {
        SearchError::Index(format!("{}: {e}", self.dir.display()))
    }
}

impl Graph {
    /// A point as the next row (its vector already in hnsw_rs under that row, or to be
    /// inserted by the caller).
    fn add(&mut self, point: Point, slot: u64, vector: &[f32]) {
        let row = self.points.len();
        self.slots.push(slot);
        self.rows.extend_from_slice(vector);
        // A vector of another width (never from one engine) keeps the rows aligned.
        self.rows.resize((row + 1) * self.dimension, 0.0);
        self.keys.entry(point.key.clone()).or_default().push(row);
        self.companies.entry(point.company).or_default().insert(row);
        self.points.push(Some(point));
        self.live += 1;
    }

    fn remove(&mut self, row: usize) {
        if let Some(point) = self.points.get_mut(row).and_then(Option::take) {
            self.live -= 1;
            if let Some(rows) = self.companies.get_mut(&point.company) {
                rows.remove(&row);
                if rows.is_empty() {
                    self.companies.remove(&point.company);
                }
            }
            if let Some(rows) = self.keys.get_mut(&point.key) {
                rows.retain(|r| *r != row);
                if rows.is_empty() {
                    self.keys.remove(&point.key);
                }
            }
        }
    }

    /// Points as the next rows, into hnsw_rs and recorded, in a graph nobody searches
    /// yet (at open, while rebuilding or compacting).
    fn extend(&mut self, batch: Vec<(Point, u64, Vec<f32>)>) {
        self.insert_next(&batch);
        for (point, slot, vector) in batch {
            self.add(point, slot, &vector);
        }
    }

    /// A row of a saved graph found live in the vector file.
    fn revive(&mut self, row: usize, point: Point) {
        self.keys.entry(point.key.clone()).or_default().push(row);
        self.companies.entry(point.company).or_default().insert(row);
        if let Some(p) = self.points.get_mut(row)
            && p.replace(point).is_none()
        {
            self.live += 1;
        }
    }

    /// The batch's vectors into hnsw_rs as the next rows (not yet recorded: no search
    /// finds them until [`Graph::add`]), in a graph searches may be using (hnsw_rs
    /// locks inside).
    fn insert_next(&self, batch: &[(Point, u64, Vec<f32>)]) {
        let refs: Vec<(&[f32], usize)> = batch
            .iter()
            .zip(self.points.len()..)
            .map(|((_, _, v), row)| (v.as_slice(), row))
            .collect();
        if refs.len() > 64 {
            self.hnsw.parallel_insert_slice(&refs);
        } else {
            for &(v, row) in &refs {
                self.hnsw.insert_slice((v, row));
            }
        }
    }

    /// Whether the compact copy is far enough behind to be made again.
    fn stale(&self) -> bool {
        let behind = self.points.len() - self.walk.nodes().min(self.points.len());
        behind > FREEZE_AFTER || behind * 8 > self.walk.nodes()
    }

    /// A compact copy of every row's links (no one inserts meanwhile).
    fn freeze(&mut self) {
        self.walk = Walk::of(&self.hnsw, self.points.len());
    }
}

/// The graph of every vector in `items` (at open, and when compacting).
fn load_graph(items: &redb::ReadOnlyTable<u64, &[u8]>, dimension: usize) -> Result<Graph, String> {
    let count = items.len().map_err(|e| e.to_string())?;
    let mut graph = Graph::new(usize::try_from(count).unwrap_or(usize::MAX), dimension);
    let mut batch: Vec<(Point, u64, Vec<f32>)> = Vec::new();
    for row in items.iter().map_err(|e| e.to_string())? {
        let (slot, value) = row.map_err(|e| e.to_string())?;
        let (point, vector) = decode(value.value(), dimension)
            .ok_or_else(|| format!("damaged vector {}", slot.value()))?;
        batch.push((point, slot.value(), vector));
        if batch.len() == 10_000 {
            graph.extend(std::mem::take(&mut batch));
        }
    }
    graph.extend(batch);
    graph.freeze();
    Ok(graph)
}

/// The graph of the vectors in `items` at open: the saved graph where there is a usable
/// one (the entries written since inserted into it), else built from the vectors. With
/// the rows of the save it came from (0: built).
fn open_graph(
    dir: &Path,
    items: &redb::ReadOnlyTable<u64, &[u8]>,
    dimension: usize,
    generation: u64,
) -> Result<(Graph, usize), String> {
    let why = match saved::load(dir, generation, dimension) {
        Ok(None) => None,
        Ok(Some(save)) => {
            let rows = save.slots.len();
            match graph_of_save(items, save, dimension) {
                Ok(graph) => {
                    tracing::info!(dir = %dir.display(), rows, inserted = graph.points.len() - rows, "vector graph read from its save");
                    return Ok((graph, rows));
                }
                Err(e) => Some(e),
            }
        }
        Err(e) => Some(e),
    };
    if let Some(why) = why {
        tracing::warn!(dir = %dir.display(), error = %why, "the saved vector graph is not used; building it from the vectors");
    }
    Ok((load_graph(items, dimension)?, 0))
}

/// A saved graph brought up to `items`: a row whose slot `items` no longer holds is a
/// tombstone, an entry no row names is inserted. A row whose vector differs from its
/// entry's makes the save unusable.
fn graph_of_save(
    items: &redb::ReadOnlyTable<u64, &[u8]>,
    save: saved::Saved,
    dimension: usize,
) -> Result<Graph, String> {
    let rows = save.slots.len();
    let row_of: HashMap<u64, usize> = save.slots.iter().zip(0..).map(|(s, r)| (*s, r)).collect();
    let mut graph = Graph {
        hnsw: save.hnsw,
        dimension,
        rows: save.vectors,
        points: vec![None; rows],
        slots: save.slots,
        keys: HashMap::new(),
        companies: HashMap::new(),
        live: 0,
        walk: Walk::default(),
    };
    let mut unsaved: Vec<(Point, u64, Vec<f32>)> = Vec::new();
    for item in items.iter().map_err(|e| e.to_string())? {
        let (slot, value) = item.map_err(|e| e.to_string())?;
        let slot = slot.value();
        let (point, vector) =
            decode(value.value(), dimension).ok_or_else(|| format!("damaged vector {slot}"))?;
        match row_of.get(&slot) {
            Some(&row) if graph.vector(row) == vector.as_slice() => graph.revive(row, point),
            Some(&row) => {
                return Err(format!(
                    "the saved graph's row {row} is not the vector of slot {slot}"
                ));
            }
            None => unsaved.push((point, slot, vector)),
        }
    }
    graph.extend(unsaved);
    graph.freeze();
    Ok(graph)
}

fn point_of(e: &Entry) -> Point {
    Point {
        key: e.key.clone(),
        part: e.part,
        company: e.company,
        entity: e.entity,
        owner: e.owner,
        day: e.day,
    }
}

/// `key len (u16) · key · part (u32) · company · entity (u16) · owner · day (i64,
/// i64::MIN for none) · the vector (f32s)`, little-endian.
fn encode(e: &Entry, vector: &[f32]) -> Vec<u8> {
    let key = e.key.as_bytes();
    let mut out = Vec::with_capacity(2 + key.len() + 4 + 8 + 2 + 8 + 8 + 4 * vector.len());
    out.extend_from_slice(&u16::try_from(key.len()).unwrap_or(u16::MAX).to_le_bytes());
    out.extend_from_slice(&key[..key.len().min(usize::from(u16::MAX))]);
    out.extend_from_slice(&e.part.to_le_bytes());
    out.extend_from_slice(&e.company.to_le_bytes());
    out.extend_from_slice(&e.entity.to_le_bytes());
    out.extend_from_slice(&e.owner.to_le_bytes());
    out.extend_from_slice(&e.day.unwrap_or(i64::MIN).to_le_bytes());
    for x in vector {
        out.extend_from_slice(&x.to_le_bytes());
    }
    out
}

fn decode(bytes: &[u8], dimension: usize) -> Option<(Point, Vec<f32>)> {
    let mut at = 0usize;
    let mut take = |n: usize| -> Option<&[u8]> {
        let s = bytes.get(at..at.checked_add(n)?)?;
        at += n;
        Some(s)
    };
    let key_len = usize::from(u16::from_le_bytes(take(2)?.try_into().ok()?));
    let key = String::from_utf8(take(key_len)?.to_vec()).ok()?;
    let part = u32::from_le_bytes(take(4)?.try_into().ok()?);
    let company = u64::from_le_bytes(take(8)?.try_into().ok()?);
    let entity = u16::from_le_bytes(take(2)?.try_into().ok()?);
    let owner = u64::from_le_bytes(take(8)?.try_into().ok()?);
    let day = i64::from_le_bytes(take(8)?.try_into().ok()?);
    let mut vector = Vec::with_capacity(dimension);
    for _ in 0..dimension {
        vector.push(f32::from_le_bytes(take(4)?.try_into().ok()?));
    }
    if take(1).is_some() {
        return None;
    }
    Some((
        Point {
            key,
            part,
            company,
            entity,
            owner,
            day: (day != i64::MIN).then_some(day),
        },
        vector,
    ))
}

/// The vectors of `entries`, a chunk at a time, from `engine`. A chunk the engine
/// refuses is tried again one text at a time, and a text it refuses alone gets `None`:
/// that entry is found by its words only (and logged), so one text can neither hold
/// up the others nor stop the tailer for good. An engine that stopped or cannot start
/// fails the whole call, to be retried.
pub(crate) fn embed_each(
    entries: &[Entry],
    engine: impl Fn(&[String]) -> Result<Vec<Vec<f32>>, nexus_ai::AiError>,
) -> Result<Vec<Option<Vec<f32>>>, SearchError> {
    let failed = |e: nexus_ai::AiError| SearchError::Index(e.to_string());
    let mut out = Vec::with_capacity(entries.len());
    for chunk in entries.chunks(EMBED_CHUNK) {
        let texts: Vec<String> = chunk.iter().map(Entry::text).collect();
        match engine(&texts) {
            Ok(vectors) => out.extend(vectors.into_iter().map(Some)),
            Err(nexus_ai::AiError::Embed(_)) => {
                for (entry, text) in chunk.iter().zip(&texts) {
                    match engine(std::slice::from_ref(text)) {
                        Ok(mut v) => out.push(v.pop()),
                        Err(nexus_ai::AiError::Embed(e)) => {
                            tracing::warn!(
                                key = %entry.key,
                                part = entry.part,
                                error = %e,
                                "the embedding engine refuses this entry; it is found by its words only"
                            );
                            out.push(None);
                        }
                        Err(e) => return Err(failed(e)),
                    }
                }
            }
            Err(e) => return Err(failed(e)),
        }
    }
    Ok(out)
}

/// Why a vector file did not open: it is unusable (damaged, of another format or
/// model: set it aside and rebuild), or unavailable now (held by another process, a
/// disk that refuses: keep it, and report).
enum Unopened {
    Unusable(SearchError),
    Unavailable(SearchError),
}

impl Unopened {
    /// A storage error is the file's fault when it says its bytes are wrong; any other
    /// (permissions, a full or failing disk, a closed database) is the moment's.
    fn of_storage(file: &Path, e: redb::StorageError) -> Unopened {
        let damaged = match &e {
            redb::StorageError::Corrupted(_) | redb::StorageError::ValueTooLarge(_) => true,
            redb::StorageError::Io(io) => matches!(
                io.kind(),
                std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::InvalidData
            ),
            _ => false,
        };
        let e = index_error(file, e);
        if damaged {
            Unopened::Unusable(e)
        } else {
            Unopened::Unavailable(e)
        }
    }

    fn into_error(self) -> SearchError {
        match self {
            Unopened::Unusable(e) | Unopened::Unavailable(e) => e,
        }
    }
}

fn index_error(file: &Path, e: impl std::fmt::Display) -> SearchError {
    SearchError::Index(format!("{}: {e}", file.display()))
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}
