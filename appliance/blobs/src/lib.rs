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
//!   says is referenced and every blob an upload still *pins*: [`BlobStore::put`]
//!   returns a [`Pin`] that the caller holds until the record naming the blob is
//!   committed (or refused). Pinning (with the check whether the content exists and
//!   the rename into place) and the sweep's check-and-remove of one blob happen under
//!   one lock, so a sweep never removes a blob that an upload is about to name, and
//!   it asks whether a blob is referenced at the moment it would remove it.
//!
//! The records that refer to blobs live in the kernel's store; this crate knows files
//! only: the sweep asks its caller whether a blob is referenced. No time is read.

use std::collections::HashMap;
use std::fmt;
use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};

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

    /// The 32 bytes of the SHA-256.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
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

/// What an upload stored. Its [`Pin`] keeps the sweep from removing it until dropped.
#[derive(Debug)]
pub struct Blob {
    pub id: BlobId,
    pub size: u64,
    /// The media type detected from the content (never from a file name or a header
    /// the uploader sent): `application/pdf`, `image/png`, `text/plain`, … and
    /// `application/octet-stream` when nothing is recognised.
    pub mime: &'static str,
    /// Whether the same content was stored already (nothing new was written).
    pub existed: bool,
    /// Hold it until the record naming the blob is committed (or refused).
    pub pin: Pin,
}

/// Blobs pinned by uploads in flight: id → how many uploads hold it.
type Pins = Arc<Mutex<HashMap<BlobId, usize>>>;

fn lock_pins(pins: &Mutex<HashMap<BlobId, usize>>) -> MutexGuard<'_, HashMap<BlobId, usize>> {
    // A panic while the lock was held leaves whole counts behind.
    pins.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// An upload's hold on its blob: while it lives, a sweep keeps the blob.
#[derive(Debug)]
pub struct Pin {
    id: BlobId,
    pins: Pins,
}

impl Drop for Pin {
    fn drop(&mut self) {
        let mut pins = lock_pins(&self.pins);
        if let Some(n) = pins.get_mut(&self.id) {
            *n -= 1;
            if *n == 0 {
                pins.remove(&self.id);
            }
        }
    }
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
    /// Unreferenced blobs kept because an upload still pins them.
    pub pinned: usize,
    /// Blobs removed, and their bytes.
    pub removed: usize,
    pub removed_bytes: u64,
    /// Which they were (so what was derived from them can go too).
    pub gone: Vec<BlobId>,
}

/// The blob store under one directory. Open it once per process and share the clones:
/// they share the pins between uploads and the sweep.
#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
    /// Locked while an upload pins its blob and puts it in place, and while the sweep
    /// checks and removes one.
    pins: Pins,
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
        Ok(BlobStore {
            root,
            pins: Pins::default(),
        })
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
        // Removes the temp file however this ends — an error, or the upload dropped
        // half-way (a client gone, a time limit) — unless it was put in place.
        let mut guard = TempGuard(Some(tmp.clone()));
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
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        // Pinned, checked and put in place under the sweep's lock (quick, local file
        // operations). The pin is made only once the lock is let go: its drop takes
        // the lock too.
        let placed = {
            let mut pins = lock_pins(&self.pins);
            let placed = if path.is_file() {
                Ok(None)
            } else {
                // The root's entry for a new prefix directory must be durable too; an
                // existing prefix needs only its own directory synced.
                let new_prefix = !dir.is_dir();
                std::fs::create_dir_all(&dir)
                    .and_then(|()| std::fs::rename(&tmp, &path))
                    .map(|()| Some(new_prefix))
                    .map_err(io(&path))
            };
            if let Ok(fresh) = &placed {
                *pins.entry(id).or_default() += 1;
                if fresh.is_some() {
                    guard.0 = None;
                }
            }
            placed
        };
        let new_prefix = match placed {
            Ok(p) => p,
            Err(e) => {
                let _ = tokio::fs::remove_file(&tmp).await;
                return Err(e);
            }
        };
        let pin = Pin {
            id,
            pins: self.pins.clone(),
        };
        let Some(new_prefix) = new_prefix else {
            tokio::fs::remove_file(&tmp).await.map_err(io(&tmp))?;
            return Ok(Blob {
                id,
                size,
                mime,
                existed: true,
                pin,
            });
        };
        sync_dir(&dir).await?;
        if new_prefix {
            sync_dir(&self.root).await?;
        }
        Ok(Blob {
            id,
            size,
            mime,
            existed: false,
            pin,
        })
    }

    /// Bytes `start..=end` of blob `id` (or all of it) as a file positioned at `start`
    /// and the number of bytes to read from it, for streaming a download.
    pub async fn open_range(
        &self,
        id: BlobId,
        range: Option<(u64, u64)>,
    ) -> Result<(tokio::fs::File, u64), BlobError> {
        let path = self.path(id);
        let size = self.size(id).await?;
        let (start, len) = match range {
            None => (0, size),
            Some((start, end)) if start <= end && end < size => (start, end - start + 1),
            Some((start, end)) => return Err(BlobError::BadRange { start, end, size }),
        };
        let mut file = match tokio::fs::File::open(&path).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(BlobError::NotFound(id));
            }
            Err(e) => return Err(io(&path)(e)),
        };
        file.seek(SeekFrom::Start(start)).await.map_err(io(&path))?;
        Ok((file, len))
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

    /// Blob `id` whole, read on the calling thread (for work that is blocking anyway:
    /// text extraction for the index), if it is at most `limit` bytes (its size is
    /// looked at before anything is read).
    pub fn read_blocking(&self, id: BlobId, limit: u64) -> Result<Vec<u8>, BlobError> {
        let path = self.path(id);
        match std::fs::metadata(&path) {
            Ok(m) if m.len() > limit => return Err(BlobError::TooLarge { limit }),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(BlobError::NotFound(id));
            }
            Err(e) => return Err(io(&path)(e)),
        }
        match std::fs::read(&path) {
            Ok(bytes) => Ok(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(BlobError::NotFound(id)),
            Err(e) => Err(io(&path)(e)),
        }
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

    /// Removes every blob that no upload pins and that `referenced` says nothing names,
    /// asked for each blob at the moment it would be removed (under the pins' lock, so
    /// an upload cannot pin it in between). An error of `referenced` stops the sweep.
    pub fn sweep<E: fmt::Display>(
        &self,
        mut referenced: impl FnMut(BlobId) -> Result<bool, E>,
    ) -> Result<Sweep, BlobError> {
        let mut report = Sweep::default();
        for id in self.list()? {
            let path = self.path(id);
            let pins = lock_pins(&self.pins);
            if pins.contains_key(&id) {
                report.pinned += 1;
                continue;
            }
            let named = referenced(id).map_err(|e| BlobError::Io {
                path: path.display().to_string(),
                source: std::io::Error::other(format!(
                    "could not tell whether a document names it: {e}"
                )),
            })?;
            if named {
                report.referenced += 1;
                continue;
            }
            let meta = match std::fs::metadata(&path) {
                Ok(m) => m,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io(&path)(e)),
            };
            std::fs::remove_file(&path).map_err(io(&path))?;
            drop(pins);
            report.removed += 1;
            report.removed_bytes += meta.len();
            report.gone.push(id);
        }
        Ok(report)
    }
}

/// Removes its temp file when dropped, unless disarmed (`None`).
struct TempGuard(Option<PathBuf>);

impl Drop for TempGuard {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
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

/// Media types whose content is recognised and whose usual file extensions are
/// known: a file named with one of these extensions must have that content.
const CLAIMS: &[(&[&str], &[&str])] = &[
    (&["pdf"], &["application/pdf"]),
    (&["png"], &["image/png"]),
    (&["jpg", "jpeg"], &["image/jpeg"]),
    (&["gif"], &["image/gif"]),
    (&["webp"], &["image/webp"]),
    (&["tif", "tiff"], &["image/tiff"]),
    (
        &["docx"],
        &[
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "application/zip",
        ],
    ),
    (
        &["xlsx"],
        &[
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "application/zip",
        ],
    ),
    (&["zip"], &["application/zip"]),
    (&["gz"], &["application/gzip"]),
    (
        &[
            "txt", "csv", "md", "markdown", "html", "htm", "xml", "json", "eml",
        ],
        &["text/plain", "text/xml", "text/html"],
    ),
];

/// Media types a business document store does not take: programs.
const REFUSED: &[&str] = &[
    "application/x-executable",
    "application/x-elf",
    "application/vnd.microsoft.portable-executable",
    "application/x-msdownload",
    "application/x-mach-binary",
    "application/x-sharedlib",
    "application/vnd.android.package-archive",
];

/// Whether content of type `mime` may be kept under the file name `name`: refused,
/// with the reason in words, when it is a program, or when the name's extension
/// claims a type the content is not (a PNG named `invoice.pdf`).
pub fn admissible(name: &str, mime: &str) -> Result<(), String> {
    if REFUSED.contains(&mime) {
        return Err(format!(
            "{name} is a program ({mime}); programs are not kept as documents"
        ));
    }
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match CLAIMS.iter().find(|(exts, _)| exts.contains(&ext.as_str())) {
        Some((_, types)) if !types.contains(&mime) => Err(format!(
            "{name} is not what its name says: its content is {} ({mime}), not a .{ext} file; rename it or upload the real file",
            describe(mime)
        )),
        _ => Ok(()),
    }
}

/// A media type in words, for messages and document lists.
pub fn describe(mime: &str) -> &'static str {
    match mime {
        "application/pdf" => "a PDF",
        "image/png" => "a PNG image",
        "image/jpeg" => "a JPEG image",
        "image/gif" => "a GIF image",
        "image/webp" => "a WebP image",
        "image/tiff" => "a TIFF image",
        "text/plain" | "text/xml" | "text/html" => "text",
        "application/zip" => "a ZIP archive",
        "application/gzip" => "a gzip archive",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => {
            "a Word document"
        }
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => "an Excel workbook",
        "application/octet-stream" => "unrecognised binary data",
        _ => "a file of another kind",
    }
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
