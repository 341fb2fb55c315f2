//! A compact copy of an hnsw_rs graph, to search it fast.
//!
//! hnsw_rs builds the graph (on every core, with its own neighbour selection) and keeps
//! each link as an `Arc` behind a lock: a search through it clones and allocates at
//! every step, takes a lock per node and marks the visited in a hash map, and so
//! answers at a fifth of hnswlib's rate on the same graph. A [`Walk`] holds the same
//! links as flat arrays of node numbers, and searches them as hnswlib does: a greedy
//! descent through the upper layers (each layer until no neighbour is nearer), then a
//! best-first search of the ground layer keeping `ef` results, the visited marked in an
//! array of stamps reused from one search to the next.
//!
//! A node is the data id it was inserted into hnsw_rs with; the ids must be `0..nodes`
//! and the vectors are rows of one slice, node `i` at `i * dimension`. The filter is
//! asked of each node as it would become a result: a node it refuses still leads on to
//! its neighbours (as in hnswlib), so a filter that lets few through costs more steps,
//! never wrong answers.
//!
//! The copy does not follow later inserts: whoever inserts makes a new one (see the
//! vector index, which searches the points inserted since exactly).

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};
use std::sync::Mutex;

use hnsw_rs::prelude::{DistDot, Hnsw};

/// Stamp arrays kept for later searches (one per concurrent search, up to this many).
const POOLED: usize = 64;

/// The links of an hnsw_rs graph as flat arrays.
#[derive(Debug, Default)]
pub struct Walk {
    nodes: usize,
    /// The ground layer: node `i`'s links are `links[offsets[i]..offsets[i + 1]]`.
    offsets: Vec<u32>,
    links: Vec<u32>,
    /// Of each node's ground links as hnsw_rs held them (see [`Walk::after`]).
    fingerprints: Vec<u64>,
    /// The links of a node in layers 1 ..= its level, for the nodes above the ground.
    upper: HashMap<u32, Vec<Vec<u32>>>,
    /// Where every search starts: a node of the top layer, and that layer.
    entry: Option<(u32, u8)>,
    visited: Mutex<Vec<Visited>>,
}

impl Walk {
    /// A copy of the links among the first `nodes` data ids of `hnsw` (points and links
    /// with ids beyond are left out), its full ground-layer lists thinned as hnswlib
    /// thins them (see [`diverse`]). No other thread may insert into `hnsw` meanwhile:
    /// hnsw_rs's iterator holds a read lock that a waiting insert would deadlock.
    pub fn of(hnsw: &Hnsw<'_, f32, DistDot>, nodes: usize) -> Walk {
        Walk::after(hnsw, nodes, &Walk::default())
    }

    /// Like [`Walk::of`], taking from `before` (an earlier copy of the same graph) the
    /// thinned list of every node whose links hnsw_rs has not changed since: only the
    /// nodes an insert touched are thinned again.
    pub fn after(hnsw: &Hnsw<'_, f32, DistDot>, nodes: usize, before: &Walk) -> Walk {
        // hnsw_rs's iterator unwraps the entry point an empty graph lacks.
        if hnsw.get_nb_point() == 0 || nodes == 0 {
            return Walk::default();
        }
        let Ok(max) = u32::try_from(nodes) else {
            return Walk::default();
        };
        let full = 2 * usize::from(hnsw.get_max_nb_connection());
        let mut ground: Vec<List> = vec![List::Kept(Vec::new()); nodes];
        let mut fingerprints = vec![0u64; nodes];
        let mut points = vec![None; nodes];
        let mut upper = HashMap::new();
        let mut entry: Option<(u32, u8)> = None;
        for point in hnsw.get_point_indexation() {
            let Some(node) = u32::try_from(point.get_origin_id())
                .ok()
                .filter(|n| *n < max)
            else {
                continue;
            };
            let level = point.get_point_id().0;
            let mut layers = point.get_neighborhood_id();
            layers.truncate(usize::from(level) + 1);
            let within = |n: &hnsw_rs::prelude::Neighbour| {
                u32::try_from(n.d_id)
                    .ok()
                    .filter(|id| *id < max)
                    .map(|id| (id, n.distance))
            };
            if let Some(first) = layers.first() {
                let raw: Vec<(u32, f32)> = first.iter().filter_map(within).collect();
                let print = fingerprint(&raw);
                let i = node as usize;
                fingerprints[i] = print;
                ground[i] = match before.fingerprints.get(i) {
                    Some(&old) if old == print => List::Kept(before.ground(node).to_vec()),
                    _ => List::Raw(raw),
                };
            }
            if level > 0 {
                let above = layers
                    .iter()
                    .skip(1)
                    .map(|l| l.iter().filter_map(within).map(|(id, _)| id).collect())
                    .collect();
                upper.insert(node, above);
            }
            if entry.is_none_or(|(_, top)| level > top) {
                entry = Some((node, level));
            }
            points[node as usize] = Some(point);
        }
        let vector = |id: u32| points.get(id as usize)?.as_ref().map(|p| p.get_v());
        let ground = thin(ground, full, &vector);
        let mut offsets = Vec::with_capacity(nodes + 1);
        let mut links = Vec::with_capacity(ground.iter().map(Vec::len).sum());
        offsets.push(0);
        for list in ground {
            links.extend(list);
            offsets.push(u32::try_from(links.len()).unwrap_or(u32::MAX));
        }
        Walk {
            nodes,
            offsets,
            links,
            fingerprints,
            upper,
            entry,
            visited: Mutex::new(Vec::new()),
        }
    }

    /// Links in the ground layer, per node on average.
    pub fn degree(&self) -> f64 {
        self.links.len() as f64 / self.nodes.max(1) as f64
    }

    /// The nodes it holds (`0..nodes`).
    pub fn nodes(&self) -> usize {
        self.nodes
    }

    /// The `k` nodes nearest `query` (by dot product: the vectors are unit length) that
    /// `allow` lets through, as `(node, similarity)`, nearest first, searching with `ef`
    /// candidates (at least `k`). `rows` holds node `i`'s vector at `i * query.len()`; a
    /// node without a row is never a result.
    pub fn search(
        &self,
        rows: &[f32],
        query: &[f32],
        k: usize,
        ef: usize,
        allow: impl Fn(usize) -> bool,
    ) -> Vec<(usize, f32)> {
        let Some((mut at, top)) = self.entry else {
            return Vec::new();
        };
        if k == 0 || query.is_empty() {
            return Vec::new();
        }
        let ef = ef.max(k);
        let dimension = query.len();
        let distance = |node: u32| {
            let start = node as usize * dimension;
            rows.get(start..start + dimension)
                .map_or(f32::INFINITY, |v| 1.0 - dot(query, v))
        };
        let mut at_distance = distance(at);
        for layer in (1..=usize::from(top)).rev() {
            loop {
                let mut moved = false;
                let links = self
                    .upper
                    .get(&at)
                    .and_then(|layers| layers.get(layer - 1))
                    .map_or(&[][..], Vec::as_slice);
                for &n in links {
                    let d = distance(n);
                    if d < at_distance {
                        (at, at_distance) = (n, d);
                        moved = true;
                    }
                }
                if !moved {
                    break;
                }
            }
        }

        let mut visited = self.take_visited();
        visited.start(self.nodes);
        visited.first(at);
        // The nearest unexplored first; the results with the farthest on top.
        let mut candidates = BinaryHeap::with_capacity(ef * 4);
        let mut results: BinaryHeap<Near> = BinaryHeap::with_capacity(ef + 1);
        candidates.push(Reverse(Near(at_distance, at)));
        if at_distance.is_finite() && allow(at as usize) {
            results.push(Near(at_distance, at));
        }
        let mut bound = results.peek().map_or(f32::INFINITY, |n| n.0);
        let mut fresh: Vec<u32> = Vec::with_capacity(64);
        while let Some(Reverse(Near(d, node))) = candidates.pop() {
            if d > bound && results.len() >= ef {
                break;
            }
            // The neighbours not seen yet, their vectors asked of memory all at once
            // (a vector is far from the last one read: fetching them one by one is
            // what a graph search mostly waits for).
            fresh.clear();
            for &n in self.ground(node) {
                if visited.first(n) {
                    prefetch(rows, n as usize * dimension);
                    fresh.push(n);
                }
            }
            for &n in &fresh {
                let dn = distance(n);
                if !dn.is_finite() || (results.len() >= ef && dn >= bound) {
                    continue;
                }
                candidates.push(Reverse(Near(dn, n)));
                if allow(n as usize) {
                    results.push(Near(dn, n));
                    if results.len() > ef {
                        results.pop();
                    }
                    bound = results.peek().map_or(f32::INFINITY, |n| n.0);
                }
            }
        }
        self.give_back(visited);
        let mut found = results.into_sorted_vec();
        found.truncate(k);
        found
            .into_iter()
            .map(|Near(d, n)| (n as usize, 1.0 - d))
            .collect()
    }

    fn ground(&self, node: u32) -> &[u32] {
        let i = node as usize;
        match (self.offsets.get(i), self.offsets.get(i + 1)) {
            (Some(&a), Some(&b)) => self.links.get(a as usize..b as usize).unwrap_or(&[]),
            _ => &[],
        }
    }

    fn take_visited(&self) -> Visited {
        self.visited
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop()
            .unwrap_or_default()
    }

    fn give_back(&self, v: Visited) {
        let mut pool = self
            .visited
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if pool.len() < POOLED {
            pool.push(v);
        }
    }
}

/// Every node's ground links, nearest first; a full list (`full` links: hnsw_rs kept
/// the nearest when it overflowed) thinned by [`diverse`] — on every core.
fn thin<'v>(
    ground: Vec<List>,
    full: usize,
    vector: &(dyn Fn(u32) -> Option<&'v [f32]> + Sync),
) -> Vec<Vec<u32>> {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let per = ground.len().div_ceil(threads).max(1);
    let one = |list: List| -> Vec<u32> {
        let mut list = match list {
            List::Kept(ids) => return ids,
            List::Raw(raw) => raw,
        };
        list.sort_by(|a, b| a.1.total_cmp(&b.1));
        if list.len() >= full {
            diverse(&list, vector)
        } else {
            list.into_iter().map(|(id, _)| id).collect()
        }
    };
    let mut chunks: Vec<Vec<List>> = Vec::new();
    let mut rest = ground.into_iter();
    loop {
        let chunk: Vec<_> = rest.by_ref().take(per).collect();
        if chunk.is_empty() {
            break;
        }
        chunks.push(chunk);
    }
    std::thread::scope(|scope| {
        let running: Vec<_> = chunks
            .into_iter()
            .map(|chunk| scope.spawn(move || chunk.into_iter().map(one).collect::<Vec<_>>()))
            .collect();
        running
            .into_iter()
            .flat_map(|t| t.join().unwrap_or_default())
            .collect()
    })
}

/// A node's ground links: thinned already (an earlier copy's), or as hnsw_rs holds them
/// with their distances.
#[derive(Debug, Clone)]
enum List {
    Kept(Vec<u32>),
    Raw(Vec<(u32, f32)>),
}

/// Which links a list holds, in its order (hnsw_rs keeps a list sorted, so a change of
/// its links changes this).
fn fingerprint(raw: &[(u32, f32)]) -> u64 {
    raw.iter().fold(raw.len() as u64, |h, (id, _)| {
        (h.rotate_left(5) ^ u64::from(*id)).wrapping_mul(0x517c_c1b7_2722_0a95)
    })
}

/// The neighbours of a node that hnswlib keeps when a list overflows (its
/// `getNeighborsByHeuristic2`, the HNSW paper's heuristic): nearest first, a neighbour
/// stays only if it is nearer the node than it is to every neighbour kept before it —
/// one that a kept neighbour already leads to is left to that one. hnsw_rs keeps the
/// nearest instead, so its lists are full of near-duplicates in one direction, and a
/// search computes twice the distances for the same answers.
fn diverse<'v>(list: &[(u32, f32)], vector: &dyn Fn(u32) -> Option<&'v [f32]>) -> Vec<u32> {
    let mut kept: Vec<(u32, &[f32])> = Vec::with_capacity(list.len());
    for &(id, to_node) in list {
        let Some(v) = vector(id) else { continue };
        if kept.iter().all(|(_, k)| 1.0 - dot(v, k) >= to_node) {
            kept.push((id, v));
        }
    }
    kept.into_iter().map(|(id, _)| id).collect()
}

/// A node and its distance, ordered by distance (then node, so that ties are stable).
#[derive(Debug, Clone, Copy)]
struct Near(f32, u32);

impl PartialEq for Near {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Near {}

impl PartialOrd for Near {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Near {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0).then(self.1.cmp(&other.1))
    }
}

/// Which nodes a search has seen: a node is seen when its mark is the search's stamp,
/// so starting a search is one increment, not a clearing of the array.
#[derive(Debug, Default)]
struct Visited {
    marks: Vec<u16>,
    stamp: u16,
}

impl Visited {
    fn start(&mut self, nodes: usize) {
        if self.marks.len() < nodes {
            self.marks.resize(nodes, 0);
        }
        self.stamp = self.stamp.wrapping_add(1);
        if self.stamp == 0 {
            self.marks.fill(0);
            self.stamp = 1;
        }
    }

    /// Whether `node` is seen for the first time (a node beyond the array never is).
    fn first(&mut self, node: u32) -> bool {
        match self.marks.get_mut(node as usize) {
            Some(m) if *m != self.stamp => {
                *m = self.stamp;
                true
            }
            _ => false,
        }
    }
}

/// Asks the processor to bring `rows[at..]`'s first cache lines in (a hint: nothing is
/// read, no address faults).
#[inline]
fn prefetch(rows: &[f32], at: usize) {
    #[cfg(target_arch = "x86_64")]
    if let Some(row) = rows.get(at..) {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // Two lines of 64 bytes: the hardware prefetcher follows on from there.
        for line in [0, 16] {
            if let Some(f) = row.get(line) {
                #[allow(unsafe_code)]
                // SAFETY: SSE is part of every x86-64; a prefetch reads nothing into
                // the program and cannot fault, whatever the address.
                unsafe {
                    _mm_prefetch::<_MM_HINT_T0>(std::ptr::from_ref(f).cast());
                }
            }
        }
    }
}

/// The dot product, on the widest instructions the processor has: AVX2 with fused
/// multiply-add where it has them (every x86-64 server since 2013), else eight lanes
/// of whatever the build targets. The choice is made by the processor's answer, not
/// at build time, so one binary runs on any x86-64 and is fast where it can be.
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        #[allow(unsafe_code)]
        // SAFETY: `dot_fma` needs AVX2 and FMA, which the processor was just found to
        // have; it reads its slices as slices (no pointer arithmetic of its own).
        return unsafe { dot_fma(a, b) };
    }
    dot_lanes(a, b)
}

/// Eight lanes the compiler turns into the vector instructions the build targets.
fn dot_lanes(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            lanes[i] += x[i] * y[i];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// Thirty-two lanes in four AVX2 registers (four fused multiply-adds in flight at
/// once). Written with the intrinsics: over plain arrays the compiler vectorised two
/// lanes at a time. Every intrinsic here takes values, not pointers (the loads are
/// `_mm256_set_ps` of eight floats, which the compiler turns into one load).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn dot_fma(a: &[f32], b: &[f32]) -> f32 {
    use std::arch::x86_64::{
        __m256, _mm_add_ps, _mm_add_ss, _mm_cvtss_f32, _mm_movehl_ps, _mm_shuffle_ps,
        _mm256_add_ps, _mm256_castps256_ps128, _mm256_extractf128_ps, _mm256_fmadd_ps,
        _mm256_set_ps, _mm256_setzero_ps,
    };
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn load(x: &[f32]) -> __m256 {
        match x {
            [x0, x1, x2, x3, x4, x5, x6, x7, ..] => {
                _mm256_set_ps(*x7, *x6, *x5, *x4, *x3, *x2, *x1, *x0)
            }
            _ => _mm256_setzero_ps(),
        }
    }
    let n = a.len().min(b.len());
    let (ca, ra) = a[..n].as_chunks::<32>();
    let (cb, rb) = b[..n].as_chunks::<32>();
    let mut acc = [_mm256_setzero_ps(); 4];
    for (x, y) in ca.iter().zip(cb) {
        for (j, sum) in acc.iter_mut().enumerate() {
            let at = j * 8;
            *sum = _mm256_fmadd_ps(load(&x[at..]), load(&y[at..]), *sum);
        }
    }
    let all = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
    let four = _mm_add_ps(_mm256_castps256_ps128(all), _mm256_extractf128_ps::<1>(all));
    let two = _mm_add_ps(four, _mm_movehl_ps(four, four));
    let one = _mm_add_ss(two, _mm_shuffle_ps::<1>(two, two));
    _mm_cvtss_f32(one) + dot_lanes(ra, rb)
}

#[cfg(test)]
mod tests {
    use hnsw_rs::prelude::DistDot;

    use super::*;

    const DIM: usize = 32;

    /// splitmix64, so that every run sees the same vectors.
    fn random(seed: &mut u64) -> f32 {
        *seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = *seed;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    }

    fn unit_rows(n: usize, seed: &mut u64) -> Vec<f32> {
        let mut rows = Vec::with_capacity(n * DIM);
        for _ in 0..n {
            let v: Vec<f32> = (0..DIM).map(|_| random(seed)).collect();
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            rows.extend(v.iter().map(|x| x / norm));
        }
        rows
    }

    fn graph(rows: &[f32]) -> Hnsw<'static, f32, DistDot> {
        let n = rows.len() / DIM;
        let hnsw = Hnsw::new(16, n.max(1), 16, 100, DistDot {});
        let data: Vec<(&[f32], usize)> = rows.chunks(DIM).zip(0..).collect();
        for d in data {
            hnsw.insert_slice(d);
        }
        hnsw
    }

    fn exact(rows: &[f32], q: &[f32], k: usize, allow: impl Fn(usize) -> bool) -> Vec<usize> {
        let mut all: Vec<(usize, f32)> = rows
            .chunks(DIM)
            .enumerate()
            .filter(|(i, _)| allow(*i))
            .map(|(i, v)| (i, dot(q, v)))
            .collect();
        all.sort_by(|a, b| b.1.total_cmp(&a.1));
        all.into_iter().take(k).map(|(i, _)| i).collect()
    }

    #[test]
    fn the_walk_finds_what_brute_force_finds() {
        let mut seed = 7;
        let rows = unit_rows(3_000, &mut seed);
        let queries = unit_rows(100, &mut seed);
        let walk = Walk::of(&graph(&rows), 3_000);
        assert_eq!(walk.nodes(), 3_000);
        let mut hit = 0;
        for q in queries.chunks(DIM) {
            let found = walk.search(&rows, q, 10, 64, |_| true);
            assert_eq!(found.len(), 10);
            assert!(
                found.windows(2).all(|w| w[0].1 >= w[1].1),
                "nearest first: {found:?}"
            );
            for (node, similarity) in &found {
                let v = &rows[node * DIM..(node + 1) * DIM];
                assert!((dot(q, v) - similarity).abs() < 1e-5, "its own similarity");
            }
            let truth = exact(&rows, q, 10, |_| true);
            hit += found.iter().filter(|(n, _)| truth.contains(n)).count();
        }
        let recall = hit as f64 / 1_000.0;
        assert!(recall >= 0.95, "recall@10 {recall}");
    }

    #[test]
    fn a_copy_after_inserts_is_the_copy_made_afresh() {
        let mut seed = 13;
        let rows = unit_rows(2_400, &mut seed);
        let hnsw = graph(&rows[..2_000 * DIM]);
        let first = Walk::of(&hnsw, 2_000);
        for (v, row) in rows[2_000 * DIM..].chunks(DIM).zip(2_000..) {
            hnsw.insert_slice((v, row));
        }
        let again = Walk::after(&hnsw, 2_400, &first);
        let afresh = Walk::of(&hnsw, 2_400);
        assert_eq!(again.offsets, afresh.offsets);
        assert_eq!(again.links, afresh.links);
        assert_eq!(again.fingerprints, afresh.fingerprints);
        // Some lists were taken from the first copy, some changed.
        let same = (0..2_000)
            .filter(|&i| first.fingerprints[i] == again.fingerprints[i])
            .count();
        assert!(same > 0 && same < 2_000, "{same} of 2,000 unchanged");
    }

    #[test]
    fn a_refused_node_is_never_a_result_but_leads_on() {
        let mut seed = 11;
        let rows = unit_rows(2_000, &mut seed);
        let walk = Walk::of(&graph(&rows), 2_000);
        let q = &rows[..DIM];
        // The query is node 0 itself: refused, it is not found, its neighbours are.
        let even = |n: usize| n.is_multiple_of(2) && n != 0;
        let found = walk.search(&rows, q, 10, 200, even);
        assert_eq!(found.len(), 10);
        assert!(found.iter().all(|(n, _)| even(*n)), "{found:?}");
        let truth = exact(&rows, q, 10, even);
        let hit = found.iter().filter(|(n, _)| truth.contains(n)).count();
        assert!(hit >= 9, "{hit} of the 10 nearest allowed");
        // Nothing allowed: nothing found, and the search ends.
        assert!(walk.search(&rows, q, 10, 64, |_| false).is_empty());
    }

    #[test]
    fn an_empty_graph_a_short_copy_and_missing_rows_answer_without_panicking() {
        let empty: Hnsw<'static, f32, DistDot> = Hnsw::new(16, 10, 16, 100, DistDot {});
        let walk = Walk::of(&empty, 10);
        assert!(walk.search(&[], &[1.0; DIM], 5, 64, |_| true).is_empty());

        let mut seed = 3;
        let rows = unit_rows(500, &mut seed);
        let hnsw = graph(&rows);
        // A copy of the first 100 nodes: links to the others are left out.
        let walk = Walk::of(&hnsw, 100);
        let found = walk.search(&rows, &rows[..DIM], 500, 500, |_| true);
        assert!(found.iter().all(|(n, _)| *n < 100), "{found:?}");
        assert!(found.len() <= 100);
        // Rows missing for most nodes: those are never results.
        let found = walk.search(&rows[..10 * DIM], &rows[..DIM], 50, 64, |_| true);
        assert!(found.iter().all(|(n, _)| *n < 10), "{found:?}");
        assert_eq!(found.first().map(|f| f.0), Some(0), "the query's own node");
        // More asked than held, and nothing asked.
        let all = Walk::of(&hnsw, 500).search(&rows, &rows[..DIM], 600, 10, |_| true);
        let mut nodes: Vec<usize> = all.iter().map(|(n, _)| *n).collect();
        nodes.sort_unstable();
        nodes.dedup();
        assert_eq!(nodes.len(), all.len(), "each node once");
        assert!(
            (490..=500).contains(&all.len()),
            "about all 500: {}",
            all.len()
        );
        assert!(walk.search(&rows, &rows[..DIM], 0, 64, |_| true).is_empty());
    }

    #[test]
    fn a_neighbour_a_kept_one_leads_to_is_left_to_it() {
        let unit = |x: f32, y: f32| {
            let n = (x * x + y * y).sqrt();
            vec![x / n, y / n]
        };
        // The node points east; a is a little north of east, b a little further north
        // (nearer a than the node), c points south-east (nearer the node than a).
        let (node, a, b, c) = (
            unit(1.0, 0.0),
            unit(1.0, 0.3),
            unit(1.0, 0.45),
            unit(1.0, -0.5),
        );
        let vectors = [a, b, c];
        let vector = |id: u32| vectors.get(id as usize).map(Vec::as_slice);
        let mut list: Vec<(u32, f32)> = (0..3u32)
            .map(|id| (id, 1.0 - dot(&node, &vectors[id as usize])))
            .collect();
        list.sort_by(|x, y| x.1.total_cmp(&y.1));
        assert_eq!(diverse(&list, &vector), [0, 2], "b is left to a");
        // A list that is not full is kept whole, nearest first.
        let kept = thin(vec![List::Raw(list.clone()), List::Raw(vec![])], 4, &vector);
        assert_eq!(kept, [vec![0, 1, 2], vec![]]);
        assert_eq!(thin(vec![List::Raw(list)], 3, &vector), [vec![0, 2]]);
        // An earlier copy's list is taken as it is.
        let earlier = List::Kept(vec![2, 0, 1]);
        assert_eq!(thin(vec![earlier], 3, &vector), [vec![2, 0, 1]]);
    }

    #[test]
    fn stamps_wrap_without_forgetting_a_search() {
        let mut v = Visited::default();
        for _ in 0..70_000 {
            v.start(4);
            assert!(v.first(1));
            assert!(!v.first(1));
            assert!(!v.first(9), "beyond the array");
        }
    }

    #[test]
    fn dot_is_the_dot_product_at_any_length_on_either_path() {
        for n in [0, 1, 7, 8, 9, 31, 32, 33, 64, 384, 385] {
            let a: Vec<f32> = (0..n).map(|i| i as f32 * 0.5).collect();
            let b: Vec<f32> = (0..n).map(|i| 1.0 - i as f32 * 0.25).collect();
            let plain: f64 = a
                .iter()
                .zip(&b)
                .map(|(x, y)| f64::from(*x) * f64::from(*y))
                .sum();
            let close = |v: f32| (f64::from(v) - plain).abs() <= plain.abs() * 1e-5 + 1e-5;
            assert!(close(dot(&a, &b)), "{n}: {} vs {plain}", dot(&a, &b));
            assert!(close(dot_lanes(&a, &b)), "{n}: portable");
        }
    }
}
