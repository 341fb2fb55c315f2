//! The HNSW graph saved beside the vector file, so that opening the index reads the
//! graph instead of building it again (building costs minutes at 100k vectors on a
//! small box; reading it, seconds).
//!
//! A save is a directory, `graph/`, beside `vectors.redb`:
//!
//! * `nodes.hnsw.graph` and `nodes.hnsw.data`: hnsw_rs's own dump of the graph and of
//!   the vectors it holds, by row;
//! * `rows`: the slot in the vector file of each row, 8 bytes little-endian each;
//! * `manifest.json`: the save's format, the vector file's generation, the dimension,
//!   the rows, and the SHA-256 of each file above.
//!
//! It is written whole into `graph.new/`, synced, and renamed into place; a save that
//! is missing, half written, damaged, of another generation (the vector file was made
//! again: slots number entries afresh) or another dimension is not used, and the graph
//! is built from the vectors as before. The save is checked before hnsw_rs reads it:
//! hnsw_rs's reader trusts the file (it asserts, unwraps and allocates whatever
//! lengths the file gives), so a file whose digest differs is never handed to it.
//!
//! The vector file stays the truth: a row whose slot the file no longer holds is a
//! tombstone, and the file's entries that no row names (written after the save) are
//! inserted again.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use hnsw_rs::api::AnnT;
use hnsw_rs::hnswio::HnswIo;
use hnsw_rs::prelude::{DistDot, Hnsw};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The layout of a save. Another one is not used.
const SAVE_FORMAT: u32 = 1;
const BASENAME: &str = "nodes";
const GRAPH: &str = "nodes.hnsw.graph";
const DATA: &str = "nodes.hnsw.data";
const ROWS: &str = "rows";
const MANIFEST: &str = "manifest.json";

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
struct Manifest {
    format: u32,
    generation: u64,
    dimension: usize,
    rows: usize,
    graph_sha256: String,
    data_sha256: String,
    rows_sha256: String,
}

/// A graph read back: hnsw_rs's graph, the slot of each row and each row's vector.
pub struct Saved {
    pub hnsw: Hnsw<'static, f32, DistDot>,
    pub slots: Vec<u64>,
    pub vectors: Vec<f32>,
}

/// The directory a save of the index in `dir` lives in.
pub fn path(dir: &Path) -> PathBuf {
    dir.join("graph")
}

/// Saves `hnsw` (whose data ids are rows `0..slots.len()`, row `r` holding the entry at
/// `slots[r]`) for the vector file of `generation`. No other thread may insert into
/// `hnsw` meanwhile (hnsw_rs's dump walks it under its own locks).
pub fn save(
    dir: &Path,
    generation: u64,
    dimension: usize,
    hnsw: &Hnsw<'_, f32, DistDot>,
    slots: &[u64],
) -> Result<(), String> {
    let rows = slots.len();
    if hnsw.get_nb_point() != rows {
        return Err(format!(
            "the graph holds {} points for {rows} rows",
            hnsw.get_nb_point()
        ));
    }
    let fresh = dir.join("graph.new");
    let old = dir.join("graph.old");
    let target = path(dir);
    for stale in [&fresh, &old] {
        if stale.exists() {
            std::fs::remove_dir_all(stale).map_err(|e| at(stale, &e))?;
        }
    }
    std::fs::create_dir_all(&fresh).map_err(|e| at(&fresh, &e))?;
    // hnsw_rs panics where it cannot create a file: that is an error here, not a crash.
    let dumped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        hnsw.file_dump(&fresh, BASENAME)
    }))
    .map_err(|_| format!("{}: hnsw_rs could not write the graph", fresh.display()))?
    .map_err(|e| format!("{}: {e}", fresh.display()))?;
    if dumped != BASENAME {
        return Err(format!(
            "hnsw_rs wrote the graph as {dumped}, not {BASENAME}"
        ));
    }
    let bytes: Vec<u8> = slots.iter().flat_map(|s| s.to_le_bytes()).collect();
    write_synced(&fresh.join(ROWS), &bytes)?;
    let manifest = Manifest {
        format: SAVE_FORMAT,
        generation,
        dimension,
        rows,
        graph_sha256: digest(&fresh.join(GRAPH))?,
        data_sha256: digest(&fresh.join(DATA))?,
        rows_sha256: hex(&Sha256::digest(&bytes)),
    };
    for name in [GRAPH, DATA] {
        sync(&fresh.join(name))?;
    }
    let json = serde_json::to_vec(&manifest).map_err(|e| e.to_string())?;
    write_synced(&fresh.join(MANIFEST), &json)?;
    sync(&fresh)?;
    if target.exists() {
        std::fs::rename(&target, &old).map_err(|e| at(&target, &e))?;
    }
    std::fs::rename(&fresh, &target).map_err(|e| at(&fresh, &e))?;
    sync(dir)?;
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(|e| at(&old, &e))?;
    }
    Ok(())
}

/// The save of the index in `dir` if there is a usable one for the vector file of
/// `generation`; `Ok(None)` if there is none, `Err` (why) if one is there but cannot be
/// used.
pub fn load(dir: &Path, generation: u64, dimension: usize) -> Result<Option<Saved>, String> {
    let saved = path(dir);
    let manifest = match std::fs::read(saved.join(MANIFEST)) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(at(&saved.join(MANIFEST), &e)),
    };
    let manifest: Manifest = serde_json::from_slice(&manifest)
        .map_err(|e| format!("{}: {e}", saved.join(MANIFEST).display()))?;
    if manifest.format != SAVE_FORMAT {
        return Err(format!(
            "the saved graph has format {}, this binary reads {SAVE_FORMAT}",
            manifest.format
        ));
    }
    if manifest.generation != generation {
        return Err("the saved graph is of an earlier vector file".into());
    }
    if manifest.dimension != dimension {
        return Err(format!(
            "the saved graph has {} dimensions, the model {dimension}",
            manifest.dimension
        ));
    }
    for (name, want) in [
        (GRAPH, &manifest.graph_sha256),
        (DATA, &manifest.data_sha256),
    ] {
        if digest(&saved.join(name))? != *want {
            return Err(format!(
                "{}: damaged (its digest differs)",
                saved.join(name).display()
            ));
        }
    }
    let bytes = std::fs::read(saved.join(ROWS)).map_err(|e| at(&saved.join(ROWS), &e))?;
    if hex(&Sha256::digest(&bytes)) != manifest.rows_sha256 || bytes.len() != manifest.rows * 8 {
        return Err(format!("{}: damaged", saved.join(ROWS).display()));
    }
    let slots: Vec<u64> = bytes
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap_or_default()))
        .collect();
    // The graph borrows its reader for as long as it lives (hnsw_rs can map the data
    // file): the reader, a few paths, is kept for the life of the process.
    let reader: &'static mut HnswIo = Box::leak(Box::new(HnswIo::new(&saved, BASENAME)));
    let hnsw = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let reader = reader;
        reader.load_hnsw::<f32, DistDot>()
    }))
    .map_err(|_| format!("{}: hnsw_rs could not read the graph", saved.display()))?
    .map_err(|e| format!("{}: {e}", saved.display()))?;
    let mut hnsw = hnsw;
    hnsw.set_extend_candidates(false);
    hnsw.set_searching_mode(true);
    if hnsw.get_nb_point() != slots.len() {
        return Err(format!(
            "the saved graph holds {} points for {} rows",
            hnsw.get_nb_point(),
            slots.len()
        ));
    }
    let vectors = vectors_of(&hnsw, slots.len(), dimension)?;
    Ok(Some(Saved {
        hnsw,
        slots,
        vectors,
    }))
}

/// Each row's vector as hnsw_rs holds it (every row exactly once, of `dimension`).
fn vectors_of(
    hnsw: &Hnsw<'_, f32, DistDot>,
    rows: usize,
    dimension: usize,
) -> Result<Vec<f32>, String> {
    let mut vectors = vec![0f32; rows * dimension];
    let mut seen = vec![false; rows];
    for point in hnsw.get_point_indexation() {
        let row = point.get_origin_id();
        let v = point.get_v();
        match seen.get_mut(row) {
            Some(s) if !*s && v.len() == dimension => {
                *s = true;
                vectors[row * dimension..(row + 1) * dimension].copy_from_slice(v);
            }
            _ => return Err(format!("the saved graph's row {row} is not as written")),
        }
    }
    if seen.iter().all(|s| *s) {
        Ok(vectors)
    } else {
        Err("the saved graph lacks rows".into())
    }
}

fn digest(path: &Path) -> Result<String, String> {
    let mut file = std::fs::File::open(path).map_err(|e| at(path, &e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(|e| at(path, &e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let mut file = std::fs::File::create(path).map_err(|e| at(path, &e))?;
    file.write_all(bytes).map_err(|e| at(path, &e))?;
    file.sync_all().map_err(|e| at(path, &e))
}

/// fsync of a file or a directory.
fn sync(path: &Path) -> Result<(), String> {
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| at(path, &e))
}

fn at(path: &Path, e: &std::io::Error) -> String {
    format!("{}: {e}", path.display())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::walk::Walk;

    const DIM: usize = 16;

    fn rows(n: usize) -> Vec<f32> {
        let mut seed = 5u64;
        let mut out = Vec::with_capacity(n * DIM);
        for _ in 0..n {
            let v: Vec<f32> = (0..DIM)
                .map(|_| {
                    seed = seed
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1_442_695_040_888_963_407);
                    (seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5
                })
                .collect();
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            out.extend(v.iter().map(|x| x / norm));
        }
        out
    }

    fn graph(rows: &[f32]) -> Hnsw<'static, f32, DistDot> {
        let hnsw = Hnsw::new(16, rows.len() / DIM, 16, 100, DistDot {});
        for (v, row) in rows.chunks(DIM).zip(0..) {
            hnsw.insert_slice((v, row));
        }
        hnsw
    }

    fn flip_a_byte(path: &Path) {
        let mut bytes = std::fs::read(path).expect("read");
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x5a;
        std::fs::write(path, bytes).expect("write");
    }

    #[test]
    fn a_saved_graph_reads_back_whole_and_takes_inserts() {
        let dir = tempfile::tempdir().expect("dir");
        let all = rows(600);
        let hnsw = graph(&all);
        let slots: Vec<u64> = (0..600).map(|r| 1_000 + r * 3).collect();
        assert!(matches!(load(dir.path(), 7, DIM), Ok(None)), "none yet");
        save(dir.path(), 7, DIM, &hnsw, &slots).expect("save");
        // Saving again replaces the save, leaving nothing half done beside it.
        save(dir.path(), 7, DIM, &hnsw, &slots).expect("save again");
        assert!(!dir.path().join("graph.new").exists());
        assert!(!dir.path().join("graph.old").exists());

        let back = load(dir.path(), 7, DIM).expect("load").expect("a save");
        assert_eq!(back.slots, slots);
        assert_eq!(back.vectors, all, "every row's vector");
        // The links too: the walk over the loaded graph finds what it finds over the
        // original.
        let before = Walk::of(&hnsw, 600);
        let after = Walk::of(&back.hnsw, 600);
        for q in all.chunks(DIM).take(20) {
            assert_eq!(
                before.search(&all, q, 10, 64, |_| true),
                after.search(&back.vectors, q, 10, 64, |_| true)
            );
        }
        // It takes inserts as a graph built here does.
        let more = rows(650);
        for (v, row) in more[600 * DIM..].chunks(DIM).zip(600..) {
            back.hnsw.insert_slice((v, row));
        }
        let walk = Walk::of(&back.hnsw, 650);
        let q = &more[640 * DIM..641 * DIM];
        assert_eq!(walk.search(&more, q, 1, 64, |_| true)[0].0, 640);
    }

    #[test]
    fn a_save_that_is_damaged_foreign_or_half_written_is_refused_with_the_reason() {
        let dir = tempfile::tempdir().expect("dir");
        let all = rows(300);
        let hnsw = graph(&all);
        let slots: Vec<u64> = (1..=300).collect();
        let saved = path(dir.path());
        let fresh = || {
            save(dir.path(), 7, DIM, &hnsw, &slots).expect("save");
        };
        let refused = |why: &str| match load(dir.path(), 7, DIM) {
            Err(e) => assert!(e.contains(why), "{e} (wanted {why})"),
            Ok(s) => panic!("used: {:?}", s.map(|s| s.slots.len())),
        };

        fresh();
        assert!(matches!(load(dir.path(), 8, DIM), Err(e) if e.contains("earlier vector file")));
        assert!(matches!(load(dir.path(), 7, DIM + 1), Err(e) if e.contains("dimensions")));
        for name in [GRAPH, DATA] {
            fresh();
            flip_a_byte(&saved.join(name));
            refused("digest differs");
        }
        fresh();
        std::fs::write(saved.join(ROWS), [0u8; 12]).expect("write");
        refused("damaged");
        fresh();
        std::fs::remove_file(saved.join(DATA)).expect("remove");
        refused(DATA);
        fresh();
        std::fs::write(saved.join(MANIFEST), b"{\"format\": 1").expect("write");
        refused(MANIFEST);
        fresh();
        let manifest = std::fs::read_to_string(saved.join(MANIFEST)).expect("read");
        std::fs::write(
            saved.join(MANIFEST),
            manifest.replace("\"format\":1", "\"format\":99"),
        )
        .expect("write");
        refused("format 99");
        // A save interrupted before its rename: the one in place is still used.
        fresh();
        std::fs::create_dir_all(dir.path().join("graph.new")).expect("dir");
        std::fs::write(dir.path().join("graph.new").join(GRAPH), b"half").expect("write");
        assert!(load(dir.path(), 7, DIM).expect("load").is_some());
        // A graph that does not hold the rows it is said to is not saved.
        let e = save(dir.path(), 7, DIM, &hnsw, &slots[..10]).expect_err("refused");
        assert!(e.contains("300 points for 10 rows"), "{e}");
    }
}
