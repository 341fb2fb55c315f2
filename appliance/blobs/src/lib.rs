//! The blob store: documents and attachments as files in the data directory, named by
//! the SHA-256 of their content (`blobs/ab/cdef…`), so the same file uploaded twice is
//! stored once and a name cannot be guessed from anything but the content.
//!
//! Invariants:
//! * A blob file is whole or absent: an upload is streamed into `blobs/tmp/`, synced,
//!   renamed into place and its directory synced; a crash leaves at most a temp file,
//!   which [`BlobStore::open`] removes.
//! * A blob's name is the SHA-256 of its bytes ([`BlobStore::verify`] checks it).
//! * An upload over its size limit is refused while it streams, and leaves nothing.
//! * A blob is removed only by [`BlobStore::sweep`], which keeps every blob the caller
//!   names as referenced and every blob newer than the grace cutoff (an upload whose
//!   record is not committed yet is not garbage).
//!
//! The records that refer to blobs live in the kernel's store; this crate knows files
//! only. Time is a parameter: the sweep's cutoff is given by the caller.

use std::collections::HashSet;
use std::fmt;
use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::SystemTime;

use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

/// How much of the start of a file type detection looks at.
const SNIFF_BYTES: usize = 8192;

/// A blob's name: the SHA-256 of its content.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlobId([u8; 32]);

impl BlobId {
    /// The SHA-256 of `bytes`.
    pub fn of(bytes: &[u8]) -> BlobId {
        BlobId(Sha256::digest(bytes).into())
    }

    pub fn to_hex(self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for BlobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for BlobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlobId({})", self.to_hex())
    }
}

impl FromStr for BlobId {
    type Err = BlobError;

    /// 64 lowercase hexadecimal digits.
    fn from_str(s: &str) -> Result<BlobId, BlobError> {
        let bad = || BlobError::BadId(s.chars().take(80).collect());
        if s.len() != 64 || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(bad());
        }
        let mut id = [0u8; 32];
        hex::decode_to_slice(s, &mut id).map_err(|_| bad())?;
        Ok(BlobId(id))
    }
}

/// What an upload stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    pub id: BlobId,
    pub size: u64,
    /// The media type detected from the content (never from a file name or a header
    /// the uploader sent): `application/pdf`, `image/png`, `text/plain`, … and
    /// `application/octet-stream` when nothing is recognised.
    pub mime: &'static str,
    /// Whether the same content was stored already (nothing new was written).
    pub existed: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("the file is larger than the limit of {limit} bytes; nothing was stored")]
    TooLarge { limit: u64 },
    #[error("there is no document {0}")]
    NotFound(BlobId),
    #[error("document {0} is damaged: its content no longer matches its name")]
    Damaged(BlobId),
    #[error("\"{0}\" is not a document id (64 hexadecimal digits)")]
    BadId(String),
    #[error("the range {start}-{end} is outside the document's {size} bytes")]
    BadRange { start: u64, end: u64, size: u64 },
    #[error("the blob store at {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BlobError + '_ {
    move |source| BlobError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// What a sweep found and removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sweep {
    /// Blobs kept because something refers to them.
    pub referenced: usize,
    /// Unreferenced blobs kept because they are newer than the cutoff.
    pub young: usize,
    /// Blobs removed, and their bytes.
    pub removed: usize,
    pub removed_bytes: u64,
}

/// The blob store under one directory.
#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
}

impl BlobStore {
    /// Opens (creating if needed) the store under `root` and removes what an
    /// interrupted upload left in its temp directory.
    pub fn open(root: impl Into<PathBuf>) -> Result<BlobStore, BlobError> {
        let root = root.into();
        let tmp = root.join("tmp");
        std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
        for entry in std::fs::read_dir(&tmp).map_err(io(&tmp))? {
            let path = entry.map_err(io(&tmp))?.path();
            std::fs::remove_file(&path).map_err(io(&path))?;
        }
        Ok(BlobStore { root })
    }

    /// Where blob `id` lives: `ab/cd…` (two levels keep directories small).
    fn path(&self, id: BlobId) -> PathBuf {
        let hex = id.to_hex();
        self.root.join(&hex[..2]).join(&hex[2..])
    }

    /// Whether blob `id` is stored.
    pub fn contains(&self, id: BlobId) -> bool {
        self.path(id).is_file()
    }

    /// Streams `content` into the store, refusing it once it passes `limit` bytes.
    pub async fn put(
        &self,
        mut content: impl AsyncRead + Unpin,
        limit: u64,
    ) -> Result<Blob, BlobError> {
        let tmp = self.root.join("tmp").join(temp_name());
        let written = async {
            let mut file = tokio::fs::File::create(&tmp).await.map_err(io(&tmp))?;
            let mut hasher = Sha256::new();
            let mut head = Vec::with_capacity(SNIFF_BYTES);
            let mut size: u64 = 0;
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = content.read(&mut buf).await.map_err(io(&tmp))?;
                if n == 0 {
                    break;
                }
                size += n as u64;
                if size > limit {
                    return Err(BlobError::TooLarge { limit });
                }
                let chunk = &buf[..n];
                if head.len() < SNIFF_BYTES {
                    let take = (SNIFF_BYTES - head.len()).min(n);
                    head.extend_from_slice(&chunk[..take]);
                }
                hasher.update(chunk);
                file.write_all(chunk).await.map_err(io(&tmp))?;
            }
            file.sync_all().await.map_err(io(&tmp))?;
            Ok((BlobId(hasher.finalize().into()), size, detect(&head)))
        }
        .await;
        let (id, size, mime) = match written {
            Ok(w) => w,
            Err(e) => {
                let _ = tokio::fs::remove_file(&tmp).await;
                return Err(e);
            }
        };
        let path = self.path(id);
        if path.is_file() {
            tokio::fs::remove_file(&tmp).await.map_err(io(&tmp))?;
            return Ok(Blob {
                id,
                size,
                mime,
                existed: true,
            });
        }
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        // The root's entry for a new prefix directory must be durable too; an existing
        // prefix needs only its own directory synced.
        let new_prefix = !dir.is_dir();
        tokio::fs::create_dir_all(&dir).await.map_err(io(&dir))?;
        tokio::fs::rename(&tmp, &path).await.map_err(io(&path))?;
        sync_dir(&dir).await?;
        if new_prefix {
            sync_dir(&self.root).await?;
        }
        Ok(Blob {
            id,
            size,
            mime,
            existed: false,
        })
    }

    /// The size of blob `id`.
    pub async fn size(&self, id: BlobId) -> Result<u64, BlobError> {
        match tokio::fs::metadata(self.path(id)).await {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(BlobError::NotFound(id)),
            Err(e) => Err(io(&self.path(id))(e)),
        }
    }

    /// Bytes `start..=end` of blob `id` (an HTTP range), or all of it.
    pub async fn read(&self, id: BlobId, range: Option<(u64, u64)>) -> Result<Vec<u8>, BlobError> {
        let path = self.path(id);
        let size = self.size(id).await?;
        let (start, end) = match range {
            None if size == 0 => return Ok(Vec::new()),
            None => (0, size - 1),
            Some((start, end)) if start <= end && end < size => (start, end),
            Some((start, end)) => return Err(BlobError::BadRange { start, end, size }),
        };
        let mut file = tokio::fs::File::open(&path).await.map_err(io(&path))?;
        file.seek(SeekFrom::Start(start)).await.map_err(io(&path))?;
        let len = usize::try_from(end - start + 1).map_err(|_| BlobError::BadRange {
            start,
            end,
            size,
        })?;
        let mut out = vec![0u8; len];
        file.read_exact(&mut out).await.map_err(io(&path))?;
        Ok(out)
    }

    /// Reads blob `id` whole and checks that its content still has its name.
    pub async fn verify(&self, id: BlobId) -> Result<(), BlobError> {
        let path = self.path(id);
        let mut file = match tokio::fs::File::open(&path).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(BlobError::NotFound(id));
            }
            Err(e) => return Err(io(&path)(e)),
        };
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = file.read(&mut buf).await.map_err(io(&path))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        if BlobId(hasher.finalize().into()) == id {
            Ok(())
        } else {
            Err(BlobError::Damaged(id))
        }
    }

    /// Every stored blob.
    pub fn list(&self) -> Result<Vec<BlobId>, BlobError> {
        let mut out = Vec::new();
        for top in std::fs::read_dir(&self.root).map_err(io(&self.root))? {
            let top = top.map_err(io(&self.root))?;
            let prefix = top.file_name().to_string_lossy().into_owned();
            if prefix.len() != 2 || !top.path().is_dir() {
                continue;
            }
            for entry in std::fs::read_dir(top.path()).map_err(io(&top.path()))? {
                let name = entry.map_err(io(&top.path()))?.file_name();
                if let Ok(id) = format!("{prefix}{}", name.to_string_lossy()).parse() {
                    out.push(id);
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Removes every blob that is neither in `referenced` nor modified after `cutoff`.
    pub fn sweep(
        &self,
        referenced: &HashSet<BlobId>,
        cutoff: SystemTime,
    ) -> Result<Sweep, BlobError> {
        let mut report = Sweep::default();
        for id in self.list()? {
            if referenced.contains(&id) {
                report.referenced += 1;
                continue;
            }
            let path = self.path(id);
            let meta = std::fs::metadata(&path).map_err(io(&path))?;
            let modified = meta.modified().map_err(io(&path))?;
            if modified > cutoff {
                report.young += 1;
                continue;
            }
            std::fs::remove_file(&path).map_err(io(&path))?;
            report.removed += 1;
            report.removed_bytes += meta.len();
        }
        Ok(report)
    }
}

/// A temp file name no other upload uses.
fn temp_name() -> String {
    let mut bytes = [0u8; 16];
    rand::fill(&mut bytes);
    format!("upload-{}", hex::encode(bytes))
}

async fn sync_dir(dir: &Path) -> Result<(), BlobError> {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || std::fs::File::open(&dir).and_then(|f| f.sync_all()))
        .await
        .map_err(|e| BlobError::Io {
            path: "a directory sync".into(),
            source: std::io::Error::other(e),
        })?
        .map_err(|source| BlobError::Io {
            path: "a directory sync".into(),
            source,
        })
}

/// The media type of content starting with `head`, from its magic numbers; text when
/// it is UTF-8 without control characters; octet-stream otherwise.
pub fn detect(head: &[u8]) -> &'static str {
    if let Some(kind) = infer::get(head) {
        return kind.mime_type();
    }
    // A cut may split a character at the end of the sniffed bytes.
    let text = match std::str::from_utf8(head) {
        Ok(t) => Some(t),
        Err(e) if e.error_len().is_none() => std::str::from_utf8(&head[..e.valid_up_to()]).ok(),
        Err(_) => None,
    };
    match text {
        Some(t)
            if !t
                .chars()
                .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) =>
        {
            "text/plain"
        }
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests;
