//! The write-ahead log: what makes a batch durable.
//!
//! redb writes every page a transaction dirtied when it commits durably, which costs
//! several random writes per record. So the writer commits each batch to redb without
//! durability and instead appends the batch's physical effects — every key it put or
//! deleted — to this log, as one record, and syncs it. That is one sequential write
//! and one `fdatasync` per batch. Every so often the writer makes redb durable (a
//! checkpoint) and starts the log over.
//!
//! # Format
//! A 64-byte header (`NEXUSWAL`, format version, the id of the database file it belongs
//! to), then records, each `len u32 | crc32 u32 | lsn u64 | payload` (little
//! endian; the CRC covers the LSN and the payload). LSNs count batches, one per record,
//! with no gaps. The file is preallocated with zeros and reused from the start after a
//! checkpoint, so syncing it does not have to update file metadata.
//!
//! # Recovery
//! redb remembers, in the same transaction as the batch, the LSN of the last batch it
//! holds. After a crash redb is back at its last checkpoint; [`Wal::open`] returns the
//! records after that LSN, which the store applies again. Reading stops at the first
//! record that is torn, fails its CRC, or does not carry the next LSN: that is either
//! the zero-filled tail, a record the crash cut short (never acknowledged), or a
//! record left over from before the last rewind.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::{StoreError, Table};

/// Bytes before each payload.
const HEADER: usize = 16;
/// Bytes of the file header; the first record starts here.
const START: u64 = 64;
const MAGIC: &[u8; 8] = b"NEXUSWAL";
const VERSION: u32 = 1;
/// The log grows by this much at a time, zero-filled.
const SEGMENT: u64 = 8 << 20;
/// Zero-filling writes at most this much per call.
const ZEROS: usize = 1 << 20;

/// The write-ahead log file of a store.
pub(crate) struct Wal {
    file: File,
    path: PathBuf,
    /// Where the next record goes.
    pos: u64,
    /// Bytes allocated (zero-filled or written) in the file.
    allocated: u64,
}

/// One batch found in the log at recovery.
#[derive(Debug)]
pub(crate) struct Recovered {
    pub(crate) lsn: u64,
    pub(crate) payload: Vec<u8>,
}

impl Wal {
    /// Opens or creates the log at `path` for the database whose id is `db`, and
    /// returns the records after `applied`, the LSN of the last batch the database
    /// already holds. The log is positioned to write after the returned records (the
    /// caller checkpoints and rewinds).
    pub(crate) fn open(
        path: &Path,
        db: u64,
        applied: u64,
    ) -> Result<(Wal, Vec<Recovered>), StoreError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| StoreError::Open(format!("{}: {e}", path.display())))?;
        let allocated = file
            .metadata()
            .map_err(|e| StoreError::Open(format!("{}: {e}", path.display())))?
            .len();
        let mut wal = Wal {
            file,
            path: path.to_path_buf(),
            pos: START,
            allocated,
        };
        wal.check_header(db)?;
        let records = wal.recover(applied)?;
        Ok((wal, records))
    }

    /// Writes the header of a new log, or checks that an old one is ours.
    fn check_header(&mut self, db: u64) -> Result<(), StoreError> {
        let mut header = [0u8; START as usize];
        // A shorter file is read as far as it goes: anything but zeros in it is not
        // a log of ours, and must not be overwritten.
        let present = self.allocated.min(START) as usize;
        self.file
            .read_exact_at(&mut header[..present], 0)
            .map_err(|e| self.error("reading", &e))?;
        if header.iter().all(|b| *b == 0) {
            header[..8].copy_from_slice(MAGIC);
            header[8..12].copy_from_slice(&VERSION.to_le_bytes());
            header[12..20].copy_from_slice(&db.to_le_bytes());
            self.file
                .write_all_at(&header, 0)
                .map_err(|e| self.error("writing", &e))?;
            self.allocated = self.allocated.max(START);
            return self.file.sync_all().map_err(|e| self.error("syncing", &e));
        }
        let (magic, rest) = header.split_at(8);
        if magic != MAGIC {
            return Err(StoreError::Corrupt(format!(
                "{} is not a nexus write-ahead log",
                self.path.display()
            )));
        }
        let version = u32::from_le_bytes(word(rest, 0));
        if version != VERSION {
            return Err(StoreError::Corrupt(format!(
                "{} is a write-ahead log of format {version}; this nexus reads format {VERSION}",
                self.path.display()
            )));
        }
        let owner = u64::from_le_bytes(dword(rest, 4));
        if owner != db {
            return Err(StoreError::Corrupt(format!(
                "{} belongs to another data file; it may hold writes that data file lacks. \
                 Put that data file back, or move the log away to start without them",
                self.path.display()
            )));
        }
        Ok(())
    }

    fn recover(&mut self, applied: u64) -> Result<Vec<Recovered>, StoreError> {
        let mut out = Vec::new();
        let mut pos = START;
        let mut last: Option<u64> = None;
        while let Some((lsn, payload, next)) = self.read_at(pos)? {
            let expected = match last {
                Some(prev) => prev + 1,
                // The first record is the oldest one since the last rewind.
                None => lsn,
            };
            if lsn != expected {
                break;
            }
            if lsn > applied {
                out.push(Recovered { lsn, payload });
            }
            last = Some(lsn);
            pos = next;
        }
        if let Some(first) = out.first()
            && first.lsn != applied + 1
        {
            return Err(StoreError::Corrupt(format!(
                "{}: the log continues at batch {} but the database holds batches up to \
                 {applied}; batches in between are missing",
                self.path.display(),
                first.lsn
            )));
        }
        self.pos = pos;
        Ok(out)
    }

    /// The record at `pos`, if a whole valid one is there, and where the next begins.
    fn read_at(&self, pos: u64) -> Result<Option<(u64, Vec<u8>, u64)>, StoreError> {
        if pos + HEADER as u64 > self.allocated {
            return Ok(None);
        }
        let mut header = [0u8; HEADER];
        self.file
            .read_exact_at(&mut header, pos)
            .map_err(|e| self.error("reading", &e))?;
        let len = u64::from(u32::from_le_bytes(word(&header, 0)));
        let crc = u32::from_le_bytes(word(&header, 4));
        let lsn = u64::from_le_bytes(dword(&header, 8));
        let next = pos + HEADER as u64 + len;
        if len == 0 || next > self.allocated {
            return Ok(None);
        }
        let mut payload = vec![0u8; len as usize];
        self.file
            .read_exact_at(&mut payload, pos + HEADER as u64)
            .map_err(|e| self.error("reading", &e))?;
        if checksum(lsn, &payload) != crc {
            return Ok(None);
        }
        Ok(Some((lsn, payload, next)))
    }

    /// Appends batch `lsn` and waits until it is on disk.
    pub(crate) fn append(&mut self, lsn: u64, payload: &[u8]) -> Result<(), StoreError> {
        let len = u32::try_from(payload.len())
            .map_err(|_| StoreError::Io("one batch is larger than 4 GiB".into()))?;
        let end = self.pos + HEADER as u64 + payload.len() as u64;
        let grew = end > self.allocated;
        if grew {
            self.allocate(end)?;
        }
        let mut record = Vec::with_capacity(HEADER + payload.len());
        record.extend_from_slice(&len.to_le_bytes());
        record.extend_from_slice(&checksum(lsn, payload).to_le_bytes());
        record.extend_from_slice(&lsn.to_le_bytes());
        record.extend_from_slice(payload);
        self.file
            .write_all_at(&record, self.pos)
            .map_err(|e| self.error("writing", &e))?;
        // A grown file has new metadata (its size) that must reach the disk too.
        let synced = if grew {
            self.file.sync_all()
        } else {
            self.file.sync_data()
        };
        synced.map_err(|e| self.error("syncing", &e))?;
        self.pos = end;
        Ok(())
    }

    /// Zero-fills the file up to at least `end`, a whole number of segments.
    fn allocate(&mut self, end: u64) -> Result<(), StoreError> {
        let target = end.div_ceil(SEGMENT) * SEGMENT;
        let zeros = vec![0u8; ZEROS];
        let mut at = self.allocated;
        while at < target {
            let n = (target - at).min(ZEROS as u64) as usize;
            self.file
                .write_all_at(&zeros[..n], at)
                .map_err(|e| self.error("growing", &e))?;
            at += n as u64;
        }
        self.allocated = target;
        Ok(())
    }

    /// Starts the log over; only after a checkpoint made every logged batch durable in
    /// the database.
    pub(crate) fn rewind(&mut self) {
        self.pos = START;
    }

    /// Bytes of records written since the last rewind.
    pub(crate) fn written(&self) -> u64 {
        self.pos - START
    }

    fn error(&self, what: &str, e: &std::io::Error) -> StoreError {
        StoreError::Io(format!(
            "{what} the write-ahead log {}: {e}",
            self.path.display()
        ))
    }
}

fn checksum(lsn: u64, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&lsn.to_le_bytes());
    h.update(payload);
    h.finalize()
}

fn word(b: &[u8], at: usize) -> [u8; 4] {
    [b[at], b[at + 1], b[at + 2], b[at + 3]]
}

fn dword(b: &[u8], at: usize) -> [u8; 8] {
    let mut out = [0u8; 8];
    out.copy_from_slice(&b[at..at + 8]);
    out
}

/// The effects of one batch, as the log stores them: `op u8 | table u8 | key len u32 |
/// key [| value len u32 | value]`, where op is [`PUT`] or [`DELETE`] and table is the
/// position in [`Table::ALL`].
#[derive(Default)]
pub(crate) struct Effects {
    bytes: Vec<u8>,
}

const PUT: u8 = 1;
const DELETE: u8 = 2;

/// One effect read back from a payload.
pub(crate) enum Effect<'a> {
    Put(Table, &'a [u8], &'a [u8]),
    Delete(Table, &'a [u8]),
}

impl Effects {
    pub(crate) fn put(&mut self, table: Table, key: &[u8], value: &[u8]) {
        self.head(PUT, table, key);
        self.chunk(value);
    }

    pub(crate) fn delete(&mut self, table: Table, key: &[u8]) {
        self.head(DELETE, table, key);
    }

    fn head(&mut self, op: u8, table: Table, key: &[u8]) {
        self.bytes.push(op);
        // Fits: the registry has far fewer than 256 tables (a test checks).
        self.bytes.push(table.index() as u8);
        self.chunk(key);
    }

    fn chunk(&mut self, b: &[u8]) {
        // Keys and values are far below 4 GiB: the web layer caps bodies at 1 MiB.
        self.bytes
            .extend_from_slice(&(b.len() as u32).to_le_bytes());
        self.bytes.extend_from_slice(b);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub(crate) fn clear(&mut self) {
        self.bytes.clear();
    }
}

/// Reads the effects in a payload, in order.
pub(crate) fn decode(payload: &[u8]) -> Result<Vec<Effect<'_>>, StoreError> {
    let mut out = Vec::new();
    let mut rest = payload;
    while !rest.is_empty() {
        let [op, table, tail @ ..] = rest else {
            return Err(bad("an effect is cut short"));
        };
        let table = Table::ALL
            .get(usize::from(*table))
            .copied()
            .ok_or_else(|| bad("an effect names an unknown table"))?;
        let (key, tail) = take_chunk(tail)?;
        rest = match *op {
            PUT => {
                let (value, tail) = take_chunk(tail)?;
                out.push(Effect::Put(table, key, value));
                tail
            }
            DELETE => {
                out.push(Effect::Delete(table, key));
                tail
            }
            _ => return Err(bad("an effect has an unknown kind")),
        };
    }
    Ok(out)
}

fn take_chunk(b: &[u8]) -> Result<(&[u8], &[u8]), StoreError> {
    let (len, rest) = b
        .split_first_chunk::<4>()
        .ok_or_else(|| bad("a length is cut short"))?;
    let len = u32::from_le_bytes(*len) as usize;
    if rest.len() < len {
        return Err(bad("a key or value is cut short"));
    }
    Ok(rest.split_at(len))
}

fn bad(what: &str) -> StoreError {
    StoreError::Corrupt(format!(
        "a write-ahead log record passed its checksum but {what}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: u64 = 0x5eed;

    fn effects(n: u8) -> Vec<u8> {
        let mut e = Effects::default();
        e.put(Table::Records, &[n], &[n, n]);
        e.delete(Table::Index, &[n, 1]);
        e.as_bytes().to_vec()
    }

    fn lsns(records: &[Recovered]) -> Vec<u64> {
        records.iter().map(|r| r.lsn).collect()
    }

    #[test]
    fn effects_round_trip() {
        let bytes = effects(7);
        let decoded = decode(&bytes).expect("decode");
        assert!(matches!(
            decoded.as_slice(),
            [
                Effect::Put(Table::Records, [7], [7, 7]),
                Effect::Delete(Table::Index, [7, 1])
            ]
        ));
        assert!(decode(&bytes[..bytes.len() - 1]).is_err());
        assert!(decode(&[9, 0, 0, 0, 0, 0]).is_err());
        assert!(decode(&[PUT, 200, 0, 0, 0, 0]).is_err());
    }

    #[test]
    fn the_registry_fits_in_one_byte() {
        assert!(Table::ALL.len() < 256);
    }

    #[test]
    fn records_come_back_after_the_applied_lsn() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.wal");
        let (mut wal, found) = Wal::open(&path, ID, 0).expect("open");
        assert!(found.is_empty());
        for lsn in 1..=5 {
            wal.append(lsn, &effects(lsn as u8)).expect("append");
        }
        drop(wal);
        let (_, found) = Wal::open(&path, ID, 2).expect("reopen");
        assert_eq!(lsns(&found), [3, 4, 5]);
        assert_eq!(found[0].payload, effects(3));
    }

    #[test]
    fn a_torn_or_damaged_tail_ends_the_log() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.wal");
        let (mut wal, _) = Wal::open(&path, ID, 0).expect("open");
        for lsn in 1..=3 {
            wal.append(lsn, &effects(lsn as u8)).expect("append");
        }
        let third = START + wal.written() - (HEADER + effects(3).len()) as u64;
        drop(wal);
        // Flip one payload byte of the last record: its CRC no longer matches.
        let file = OpenOptions::new().write(true).open(&path).expect("file");
        file.write_all_at(&[0xee], third + HEADER as u64)
            .expect("damage");
        let (mut wal, found) = Wal::open(&path, ID, 0).expect("reopen");
        assert_eq!(lsns(&found), [1, 2]);
        // The next append replaces the damaged record.
        wal.append(3, &effects(30)).expect("append");
        drop(wal);
        let (_, found) = Wal::open(&path, ID, 0).expect("reopen");
        assert_eq!(lsns(&found), [1, 2, 3]);
        assert_eq!(found[2].payload, effects(30));
    }

    #[test]
    fn records_from_before_a_rewind_are_not_replayed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.wal");
        let (mut wal, _) = Wal::open(&path, ID, 0).expect("open");
        for lsn in 1..=6 {
            wal.append(lsn, &effects(lsn as u8)).expect("append");
        }
        // A checkpoint made 1..=6 durable; the log starts over and holds 7 and 8,
        // followed by the leftovers 3..=6 of the previous round.
        wal.rewind();
        wal.append(7, &effects(7)).expect("append");
        wal.append(8, &effects(8)).expect("append");
        drop(wal);
        let (_, found) = Wal::open(&path, ID, 6).expect("reopen");
        assert_eq!(lsns(&found), [7, 8]);
        // Nothing newer than the checkpoint: nothing to replay.
        let (_, found) = Wal::open(&path, ID, 8).expect("reopen");
        assert!(found.is_empty());
    }

    #[test]
    fn a_gap_between_the_database_and_the_log_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.wal");
        let (mut wal, _) = Wal::open(&path, ID, 0).expect("open");
        wal.append(5, &effects(5)).expect("append");
        drop(wal);
        let err = Wal::open(&path, ID, 2).err().expect("a gap");
        assert!(err.to_string().contains("missing"), "{err}");
    }

    #[test]
    fn a_log_of_another_data_file_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.wal");
        let (mut wal, _) = Wal::open(&path, ID, 0).expect("open");
        wal.append(1, &effects(1)).expect("append");
        drop(wal);
        let err = Wal::open(&path, ID + 1, 0).err().expect("another owner");
        assert!(err.to_string().contains("another data file"), "{err}");
        std::fs::write(
            &path,
            b"something else entirely, long enough to have a header ...",
        )
        .expect("write");
        let err = Wal::open(&path, ID, 0).err().expect("not a log");
        assert!(err.to_string().contains("not a nexus"), "{err}");
    }
}
