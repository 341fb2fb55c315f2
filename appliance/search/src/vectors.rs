//! The vector index: one embedding per entry of the full-text index (a record, or a
//! passage of a document), found by meaning rather than by words.
//!
//! * **Durable where it is expensive**: every embedding is kept in a redb file of its
//!   own (`data/vectors/vectors.redb`), with the event it has applied up to in the
//!   same transaction (the tailer contract), and the identity of the model that made
//!   them. The HNSW graph (hnsw_rs) is built in memory from those vectors when the
//!   index opens; it costs seconds, the embeddings it would otherwise take cost
//!   minutes. A file that is damaged, of another [`VECTOR_FORMAT`] or made by another
//!   model is set aside and the index rebuilt from the store.
//! * **Deletions are tombstones**: hnsw_rs cannot remove a point, so a replaced or
//!   removed entry's point stays in the graph, marked dead, and is filtered out of
//!   every search. When the dead are a quarter of the graph it is rebuilt from the
//!   live points ([`VectorIndex::compact`]).
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

use crate::schema::Entry;
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
    /// Its vector, for the exact comparison of small indexes (hnsw_rs keeps its own
    /// copy, but iterating its points while another thread inserts deadlocks: its
    /// iterator takes a read lock it already holds).
    pub vector: Vec<f32>,
}

struct Graph {
    hnsw: Hnsw<'static, f32, DistDot>,
    /// By slot (the graph's data id); `None`: a tombstone (or never used).
    points: Vec<Option<Point>>,
    /// The live slots of each key.
    keys: HashMap<String, Vec<u64>>,
    /// The live slots of each company: a company small enough is searched exactly,
    /// however large the whole index.
    companies: HashMap<u64, HashSet<usize>>,
    live: usize,
    /// Points in the graph, dead ones included.
    inserted: usize,
}

impl Graph {
    fn new(capacity: usize) -> Graph {
        Graph {
            hnsw: new_hnsw(capacity),
            points: Vec::new(),
            keys: HashMap::new(),
            companies: HashMap::new(),
            live: 0,
            inserted: 0,
        }
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
}

/// The vector index in one directory, with the model that fills it.
pub struct VectorIndex {
    dir: PathBuf,
    db: redb::Database,
    embedder: Arc<Embedder>,
    model: String,
    graph: RwLock<Graph>,
    writer: Mutex<Writer>,
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
            let graph = if position.is_some() {
                let items = read.open_table(ITEMS).map_err(table)?;
                load_graph(&items, dimension).map_err(|e| unusable(&e))?
            } else {
                Graph::new(0)
            };
            (
                Writer {
                    position: position.unwrap_or(0),
                    next_slot,
                    built: position.is_some(),
                },
                graph,
            )
        };
        Ok(VectorIndex {
            dir: dir.to_path_buf(),
            db,
            embedder: Arc::clone(embedder),
            model: model.to_owned(),
            graph: RwLock::new(graph),
            writer: Mutex::new(writer),
            exact_below: std::sync::atomic::AtomicUsize::new(EXACT_BELOW),
            #[cfg(test)]
            exact_searches: std::sync::atomic::AtomicUsize::new(0),
        })
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
        (g.live, g.inserted)
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
        let mut graph = Graph::new(0);
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
                        graph.add(slot, point_of(&entry, vector.clone()));
                        batch.push((vector, slot_id(slot)));
                        slot += 1;
                    }
                    graph.insert(&batch);
                    embedded += batch.len() as u64;
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
        self.write_meta(&txn, head, slot)?;
        txn.commit().map_err(|e| self.error(e))?;
        *write(&self.graph) = graph;
        w.position = head;
        w.next_slot = slot;
        w.built = true;
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
        // What goes: every live slot of a changed key.
        let gone: Vec<u64> = {
            let g = read(&self.graph);
            kept.iter()
                .filter_map(|c| g.keys.get(&c.key))
                .flatten()
                .copied()
                .collect()
        };
        let mut slot = w.next_slot;
        let mut added = Vec::with_capacity(entries.len());
        let txn = self.db.begin_write().map_err(|e| self.error(e))?;
        {
            let mut items = txn.open_table(ITEMS).map_err(|e| self.error(e))?;
            for s in &gone {
                items.remove(*s).map_err(|e| self.error(e))?;
            }
            for (entry, vector) in entries.iter().zip(vectors) {
                let Some(vector) = vector else { continue };
                items
                    .insert(slot, encode(entry, &vector).as_slice())
                    .map_err(|e| self.error(e))?;
                added.push((slot, point_of(entry, vector.clone()), vector));
                slot += 1;
            }
        }
        self.write_meta(&txn, last, slot)?;
        txn.commit().map_err(|e| self.error(e))?;
        // Into the graph first (not yet searchable: no point is recorded for them),
        // then the points swapped in one step.
        let batch: Vec<(Vec<f32>, usize)> = added
            .iter()
            .map(|(s, _, v)| (v.clone(), slot_id(*s)))
            .collect();
        read(&self.graph).insert_shared(&batch);
        {
            let mut g = write(&self.graph);
            for s in gone {
                g.remove(s);
            }
            for (s, point, _) in added {
                g.add(s, point);
            }
            g.inserted += batch.len();
        }
        w.position = last;
        w.next_slot = slot;
        w.built = true;
        drop(w);
        if self.wants_compaction() {
            self.compact()?;
        }
        Ok(())
    }

    fn wants_compaction(&self) -> bool {
        let g = read(&self.graph);
        g.inserted > 10_000 && (g.inserted - g.live) * 4 > g.inserted
    }

    /// Rebuilds the graph from the live vectors alone (the stored vectors, not new
    /// embeddings), dropping every tombstone; searches use the old graph until the new
    /// one is ready.
    pub fn compact(&self) -> Result<(), SearchError> {
        let w = lock(&self.writer);
        let dimension = self.embedder.dimension();
        let read_txn = self.db.begin_read().map_err(|e| self.error(e))?;
        let items = read_txn.open_table(ITEMS).map_err(|e| self.error(e))?;
        let graph = load_graph(&items, dimension).map_err(|e| self.error(e))?;
        *write(&self.graph) = graph;
        drop(w);
        Ok(())
    }

    fn write_meta(
        &self,
        txn: &redb::WriteTransaction,
        position: u64,
        next_slot: u64,
    ) -> Result<(), SearchError> {
        let mut meta = txn.open_table(META).map_err(|e| self.error(e))?;
        for (k, v) in [
            ("format", u64::from(VECTOR_FORMAT)),
            ("position", position),
            ("next_slot", next_slot),
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
    /// make a scan of); beyond, it walks the graph through the filter.
    pub(crate) fn nearest(
        &self,
        query: &[f32],
        k: usize,
        company: u64,
        allow: impl Fn(&Point) -> bool,
    ) -> Vec<Near> {
        let g = read(&self.graph);
        // An empty graph has no entry point to start a search from.
        if g.inserted == 0 {
            return Vec::new();
        }
        let visible = |slot: usize| {
            g.points
                .get(slot)
                .and_then(Option::as_ref)
                .filter(|p| allow(p))
        };
        let exact_below = self.exact_below.load(std::sync::atomic::Ordering::Relaxed);
        let exact = |slots: &mut dyn Iterator<Item = usize>| {
            #[cfg(test)]
            self.exact_searches
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let mut all: Vec<(usize, f32)> = slots
                .filter_map(|slot| visible(slot).map(|p| (slot, dot(query, &p.vector))))
                .collect();
            all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            all.truncate(k);
            all
        };
        let own = g.companies.get(&company);
        let mut found: Vec<(usize, f32)> = if g.live <= exact_below {
            exact(&mut (0..g.points.len()))
        } else if own.is_none_or(|slots| slots.len() <= exact_below) {
            exact(&mut own.into_iter().flatten().copied())
        } else {
            let filter = |id: &usize| visible(*id).is_some();
            g.hnsw
                .search_filter(query, k, EF_SEARCH.max(k), Some(&filter))
                .into_iter()
                .map(|n| (n.d_id, 1.0 - n.distance))
                .collect()
        };
        found.truncate(k);
        found
            .into_iter()
            .filter_map(|(slot, similarity)| {
                visible(slot).map(|p| Near {
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
    fn add(&mut self, slot: u64, point: Point) {
        let i = slot_id(slot);
        if self.points.len() <= i {
            self.points.resize(i + 1, None);
        }
        self.keys.entry(point.key.clone()).or_default().push(slot);
        let company = point.company;
        match self.points[i].replace(point) {
            Some(old) if old.company != company => {
                if let Some(slots) = self.companies.get_mut(&old.company) {
                    slots.remove(&i);
                }
            }
            Some(_) => {}
            None => self.live += 1,
        }
        self.companies.entry(company).or_default().insert(i);
    }

    fn remove(&mut self, slot: u64) {
        let i = slot_id(slot);
        if let Some(point) = self.points.get_mut(i).and_then(Option::take) {
            self.live -= 1;
            if let Some(slots) = self.companies.get_mut(&point.company) {
                slots.remove(&i);
                if slots.is_empty() {
                    self.companies.remove(&point.company);
                }
            }
            if let Some(slots) = self.keys.get_mut(&point.key) {
                slots.retain(|s| *s != slot);
                if slots.is_empty() {
                    self.keys.remove(&point.key);
                }
            }
        }
    }

    /// Points into the graph of a graph being built.
    fn insert(&mut self, batch: &[(Vec<f32>, usize)]) {
        self.insert_shared(batch);
        self.inserted += batch.len();
    }

    /// Points into a graph searches are using (hnsw_rs locks inside).
    fn insert_shared(&self, batch: &[(Vec<f32>, usize)]) {
        if batch.is_empty() {
            return;
        }
        let refs: Vec<(&Vec<f32>, usize)> = batch.iter().map(|(v, s)| (v, *s)).collect();
        if refs.len() > 64 {
            self.hnsw.parallel_insert(&refs);
        } else {
            for (v, s) in refs {
                self.hnsw.insert((v.as_slice(), s));
            }
        }
    }
}

/// The graph of every vector in `items` (at open, and when compacting).
fn load_graph(items: &redb::ReadOnlyTable<u64, &[u8]>, dimension: usize) -> Result<Graph, String> {
    let count = items.len().map_err(|e| e.to_string())?;
    let mut graph = Graph::new(usize::try_from(count).unwrap_or(usize::MAX));
    let mut batch: Vec<(Vec<f32>, usize)> = Vec::new();
    for row in items.iter().map_err(|e| e.to_string())? {
        let (slot, value) = row.map_err(|e| e.to_string())?;
        let (point, vector) = decode(value.value(), dimension)
            .ok_or_else(|| format!("damaged vector {}", slot.value()))?;
        graph.add(slot.value(), point);
        batch.push((vector, slot_id(slot.value())));
        if batch.len() == 10_000 {
            graph.insert(&batch);
            batch.clear();
        }
    }
    graph.insert(&batch);
    Ok(graph)
}

fn slot_id(slot: u64) -> usize {
    usize::try_from(slot).unwrap_or(usize::MAX)
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn point_of(e: &Entry, vector: Vec<f32>) -> Point {
    Point {
        vector,
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
            vector: vector.clone(),
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
