//! Documents on records: the panel on every record's page (drop files on it), a
//! document's page with its versions, uploads streamed into the blob store, downloads
//! with ranges, and the same as JSON under `/api/v1`.
//!
//! Every check is the kernel's (`Kernel::documents`, `attach`, …): reading the record
//! a document is attached to lets one see and download it, writing the record lets one
//! add, replace and remove. An upload is checked *before* its body is read, so a
//! caller who may not attach cannot fill the disk; its content is streamed into the
//! blob store under the size limit, typed from its bytes, and refused when its name
//! lies about it. A blob left unreferenced by a refused or failed upload is removed by
//! the sweep job after its grace period.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::TryStreamExt;
use maud::{Markup, html};
use nexus_blobs::{BlobError, BlobId, BlobStore};
use nexus_kernel::documents::{DocumentInfo, DocumentVersion, StoredBlob};
use nexus_kernel::{Action, EntityDef, JobContext, JobFuture, JobHandler, Kernel, KernelError};
use serde_json::json;

use crate::AppState;
use crate::body::field;
use crate::error::WebError;
use crate::records::parse_id;
use crate::session::{ApiWrite, Auth, FormSubmit};
use crate::views;

/// The job that removes blobs no document version names any more.
pub const SWEEP_KIND: &str = nexus_kernel::jobs::SWEEP_DOCUMENTS;

/// The documents' files, their text, and the largest upload accepted.
#[derive(Clone)]
pub struct DocumentStore {
    pub blobs: BlobStore,
    pub text: Arc<DocumentText>,
    pub max_upload: u64,
}

/// How long an upload waits for its text to be extracted before it is answered (the
/// index extracts what is not ready when it gets there).
const EXTRACT_WAIT: std::time::Duration = std::time::Duration::from_secs(20);

/// The largest file whose text is extracted (larger ones are found by name).
const MAX_EXTRACTED: usize = 100 * 1024 * 1024;

/// The layout of a cached extraction; another is extracted again.
const TEXT_FORMAT: u32 = 1;

#[derive(serde::Serialize, serde::Deserialize)]
struct CachedText {
    format: u32,
    chunks: Vec<nexus_extract::Chunk>,
    /// Why the text could not be read, in words.
    error: Option<String>,
    /// Written before extraction begins and replaced by its result: found still set by
    /// the next extraction (they run one at a time), it means the last one never
    /// ended — the appliance stopped during it — and the file is not tried again.
    #[serde(default)]
    started: bool,
}

/// What a document whose extraction once stopped the appliance is told.
const STOPPED_BEFORE: &str = "reading its text stopped the appliance once, so it is not read again";

/// Documents' text for the search index: extracted once per content (and kind) and
/// kept under `data/text/` — derived, so deleting it costs only extracting again. It
/// holds no kernel: the kernel's job handlers hold it.
pub struct DocumentText {
    blobs: BlobStore,
    dir: std::path::PathBuf,
    /// One extraction at a time: memory stays bounded by one document's, and a
    /// `started` mark seen under it belongs to a run that is over.
    one_at_a_time: std::sync::Mutex<()>,
}

impl DocumentText {
    pub fn new(blobs: BlobStore, dir: std::path::PathBuf) -> DocumentText {
        DocumentText {
            blobs,
            dir,
            one_at_a_time: std::sync::Mutex::new(()),
        }
    }

    /// Removes what was extracted from blob `id` (its file is gone).
    fn forget(&self, id: BlobId) {
        let hex = id.to_hex();
        let Ok(entries) = std::fs::read_dir(self.dir.join(&hex[..2])) else {
            return;
        };
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(&hex) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }

    /// Where the text of `sha256` read as a `name` file is kept: the extension picks
    /// the reader (a `.csv` and a `.txt` of the same bytes differ).
    fn path(&self, sha256: &str, name: &str) -> Option<std::path::PathBuf> {
        let id: BlobId = sha256.parse().ok()?;
        let ext: String = name
            .rsplit_once('.')
            .map(|(_, e)| e.to_ascii_lowercase())
            .filter(|e| e.len() <= 10 && e.bytes().all(|b| b.is_ascii_alphanumeric()))
            .unwrap_or_else(|| "none".into());
        let hex = id.to_hex();
        Some(self.dir.join(&hex[..2]).join(format!("{hex}.{ext}.json")))
    }

    fn cached_at(path: &std::path::Path) -> Option<CachedText> {
        let bytes = std::fs::read(path).ok()?;
        serde_json::from_slice::<CachedText>(&bytes)
            .ok()
            .filter(|c| c.format == TEXT_FORMAT)
    }

    /// What extraction found for this content, if it has run: the number of passages,
    /// or why there is no text.
    pub fn status(&self, sha256: &str, name: &str) -> Option<Result<usize, String>> {
        let c = Self::cached_at(&self.path(sha256, name)?)?;
        Some(match c.error {
            Some(e) => Err(e),
            None if c.started => return None,
            None => Ok(c.chunks.len()),
        })
    }

    /// The chunks of a document's text, extracted now unless kept from before.
    /// Blocking: call it where blocking is fine.
    pub fn chunks(
        &self,
        sha256: &str,
        mime: &str,
        name: &str,
    ) -> Result<Vec<nexus_extract::Chunk>, String> {
        let path = self
            .path(sha256, name)
            .ok_or_else(|| format!("\"{sha256}\" is not a document's content"))?;
        let done = |c: CachedText| c.error.map_or(Ok(c.chunks), Err);
        if let Some(c) = Self::cached_at(&path).filter(|c| !c.started) {
            return done(c);
        }
        let _one = self
            .one_at_a_time
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match Self::cached_at(&path) {
            // Another extraction finished it while this one waited.
            Some(c) if !c.started => return done(c),
            // Marked as started, yet nothing is extracting it now.
            Some(_) => {
                let failed = CachedText {
                    format: TEXT_FORMAT,
                    chunks: Vec::new(),
                    error: Some(STOPPED_BEFORE.into()),
                    started: false,
                };
                let _ = write_atomically(&path, &failed);
                return Err(STOPPED_BEFORE.into());
            }
            None => {}
        }
        let id: BlobId = sha256.parse().map_err(|e: BlobError| e.to_string())?;
        let bytes = match self.blobs.read_blocking(id, MAX_EXTRACTED as u64) {
            Ok(bytes) => Ok(bytes),
            Err(BlobError::TooLarge { .. }) => Err(format!(
                "the file is over {} MiB; it is found by its name only",
                MAX_EXTRACTED / (1024 * 1024)
            )),
            // A missing file is not cached: it may be a fault that is mended.
            Err(e) => return Err(e.to_string()),
        };
        let started = CachedText {
            format: TEXT_FORMAT,
            chunks: Vec::new(),
            error: None,
            started: true,
        };
        if let Err(e) = write_atomically(&path, &started) {
            tracing::warn!(path = %path.display(), error = %e, "could not mark a document's text as being read");
        }
        let result = bytes.and_then(|bytes| {
            nexus_extract::extract(&bytes, mime, name, nexus_extract::Limits::default())
                .map(|p| nexus_extract::chunk(&p))
                .map_err(|e| e.to_string())
        });
        let cached = CachedText {
            format: TEXT_FORMAT,
            chunks: result.clone().unwrap_or_default(),
            error: result.clone().err(),
            started: false,
        };
        if let Err(e) = write_atomically(&path, &cached) {
            tracing::warn!(path = %path.display(), error = %e, "could not keep a document's text");
        }
        result
    }
}

fn write_atomically(path: &std::path::Path, value: &CachedText) -> std::io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| std::io::Error::other("no directory"))?;
    std::fs::create_dir_all(dir)?;
    let bytes = serde_json::to_vec(value).map_err(std::io::Error::other)?;
    let mut suffix = [0u8; 8];
    rand::fill(&mut suffix);
    let tmp = dir.join(format!(".{}.tmp", hex::encode(suffix)));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

impl nexus_search::DocumentSource for DocumentText {
    fn passages(&self, sha256: &str, mime: &str, name: &str) -> Vec<nexus_search::DocPassage> {
        self.chunks(sha256, mime, name)
            .unwrap_or_default()
            .into_iter()
            .map(|c| nexus_search::DocPassage {
                locator: c.locator,
                page: c.page,
                text: c.text,
            })
            .collect()
    }
}

/// A `version` given (a number, 1 or more), or none.
fn parse_version(raw: Option<&str>) -> Result<Option<u64>, WebError> {
    raw.map(|v| {
        v.parse::<u64>().ok().filter(|n| *n >= 1).ok_or_else(|| {
            WebError::Malformed(format!("\"{v}\" is not a version (a number, 1 or more)"))
        })
    })
    .transpose()
}

fn query_param(raw: Option<&str>, name: &str) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or("")).ok()?;
    field(&pairs, name).map(str::to_owned)
}

/// The file name an upload gives: `?name=` or the `X-File-Name` header.
fn upload_name(raw: Option<&str>, headers: &HeaderMap) -> Result<String, WebError> {
    query_param(raw, "name")
        .or_else(|| {
            headers
                .get("x-file-name")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        })
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| {
            WebError::Malformed(
                "say the file's name: ?name=contract.pdf (the body is the file itself)".into(),
            )
        })
        .and_then(|n| {
            if n.chars().count() > MAX_GIVEN_NAME {
                Err(WebError::Malformed(format!(
                    "the file's name is over {MAX_GIVEN_NAME} characters; shorten it"
                )))
            } else {
                Ok(n)
            }
        })
}

/// The longest file name an upload may give (with its path, which is dropped).
pub const MAX_GIVEN_NAME: usize = 1000;

fn blob_error(e: BlobError) -> WebError {
    match e {
        BlobError::TooLarge { limit } => WebError::FileTooLarge {
            limit_mib: limit.div_ceil(1024 * 1024),
        },
        BlobError::NotFound(id) => WebError::Kernel(KernelError::Internal(format!(
            "the content {id} of a document is missing from the blob store"
        ))),
        other => WebError::Kernel(KernelError::Internal(other.to_string())),
    }
}

/// Streams `body` into the blob store and checks that `name` fits what it holds. The
/// pin keeps the sweep off the blob: hold it until the document naming it is written.
async fn store_upload(
    docs: &DocumentStore,
    name: &str,
    body: Body,
) -> Result<(StoredBlob, nexus_blobs::Pin), WebError> {
    let stream = body
        .into_data_stream()
        .map_err(|e| std::io::Error::other(e.to_string()));
    let reader = tokio_util::io::StreamReader::new(stream);
    let blob = docs
        .blobs
        .put(reader, docs.max_upload)
        .await
        .map_err(blob_error)?;
    let name = nexus_kernel::documents::clean_file_name(name);
    nexus_blobs::admissible(&name, blob.mime).map_err(WebError::FileRefused)?;
    // Its text is read now, off the runtime, so the index finds it ready; a file
    // without readable text is kept all the same (its page says why).
    let (text, sha, mime, file) = (docs.text.clone(), blob.id.to_hex(), blob.mime, name.clone());
    let extraction = tokio::task::spawn_blocking(move || {
        let _ = text.chunks(&sha, mime, &file);
    });
    let _ = tokio::time::timeout(EXTRACT_WAIT, extraction).await;
    Ok((
        StoredBlob {
            id: blob.id.to_hex(),
            size: blob.size,
            mime: blob.mime.to_owned(),
        },
        blob.pin,
    ))
}

/// A size in words: `812 B`, `12.5 kB`, `3.2 MB`.
pub fn size_text(bytes: u64) -> String {
    match bytes {
        0..1_000 => format!("{bytes} B"),
        1_000..1_000_000 => format!("{:.1} kB", bytes as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1} MB", bytes as f64 / 1e6),
        _ => format!("{:.1} GB", bytes as f64 / 1e9),
    }
}

fn record_path(d: &DocumentInfo) -> String {
    format!("/e/{}/{}", d.entity, d.record)
}

/// The documents panel of a record's page: its documents and, for whoever may write
/// the record, the drop zone. Modules put it on their own record pages too.
pub fn panel(state: &AppState, auth: &Auth, def: &EntityDef, id: u64) -> Result<Markup, WebError> {
    let docs = state.kernel.documents(auth.who(), def.name, id)?;
    let writable = auth.who().can(def.name, Action::Write);
    let upload = format!("/e/{}/{id}/documents", def.name);
    Ok(html! {
        section .card .documents #documents data-documents=(upload) {
            h2 { "Documents" @if !docs.is_empty() { " (" (docs.len()) ")" } }
            @if docs.is_empty() {
                p .muted { "No documents yet." }
            } @else {
                table .doc-list {
                    thead { tr { th { "File" } th { "Type" } th .num { "Size" } th { "Version" } th { "Changed" } th {} } }
                    tbody {
                        @for d in &docs {
                            tr {
                                td { a href={ "/documents/" (d.id) } { (d.name) } }
                                td { (nexus_blobs::describe(&d.mime)) }
                                td .num { (size_text(d.size)) }
                                td { (d.revision) }
                                td { (d.updated_at.get(..10).unwrap_or_default()) " · " (d.updated_by) }
                                td { a href={ "/documents/" (d.id) "/content" } download { "Download" } }
                            }
                        }
                    }
                }
            }
            @if writable {
                label .dropzone data-upload=(upload) {
                    input type="file" multiple name="file";
                    span { "Drop files here or choose them (at most " (state.documents.max_upload / (1024 * 1024)) " MiB each)" }
                }
            }
        }
    })
}

/// `GET /e/{entity}/{id}/documents`: the panel alone (after an upload).
pub async fn panel_page(
    State(state): State<AppState>,
    auth: Auth,
    Path((entity, id)): Path<(String, String)>,
) -> Result<Markup, WebError> {
    let def = state.kernel.entity(&entity)?;
    panel(&state, &auth, def, parse_id(&id)?)
}

/// `POST /e/{entity}/{id}/documents?name=…`: the body is the file; answers the panel.
pub async fn upload(
    State(state): State<AppState>,
    ApiWrite(auth): ApiWrite,
    Path((entity, id)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Markup, WebError> {
    let def = state.kernel.entity(&entity)?;
    let id = parse_id(&id)?;
    attach(&state, &auth, &entity, id, raw.as_deref(), &headers, body).await?;
    panel(&state, &auth, def, id)
}

async fn attach(
    state: &AppState,
    auth: &Auth,
    entity: &str,
    id: u64,
    raw: Option<&str>,
    headers: &HeaderMap,
    body: Body,
) -> Result<DocumentInfo, WebError> {
    // Who may attach is asked first: a caller who may not learns nothing more.
    state.kernel.may_attach(auth.who(), entity, id)?;
    let name = upload_name(raw, headers)?;
    let (blob, pin) = store_upload(&state.documents, &name, body).await?;
    let (kernel, who, entity) = (state.kernel.clone(), auth.who().clone(), entity.to_owned());
    committed(pin, async move {
        kernel.attach(&who, &entity, id, &name, blob).await
    })
    .await
}

/// Runs a document write on a task of its own that holds the blob's pin until the
/// write has committed (or failed), even if the request is given up meanwhile.
async fn committed(
    pin: nexus_blobs::Pin,
    write: impl std::future::Future<Output = Result<DocumentInfo, KernelError>> + Send + 'static,
) -> Result<DocumentInfo, WebError> {
    let task = tokio::spawn(async move {
        let out = write.await;
        drop(pin);
        out
    });
    match task.await {
        Ok(out) => Ok(out?),
        Err(e) => Err(WebError::Kernel(KernelError::Internal(format!(
            "a document write stopped: {e}"
        )))),
    }
}

async fn new_version(
    state: &AppState,
    auth: &Auth,
    id: u64,
    raw: Option<&str>,
    headers: &HeaderMap,
    body: Body,
) -> Result<DocumentInfo, WebError> {
    let base = parse_version(query_param(raw, "version").as_deref())?;
    let doc = state.kernel.may_change_document(auth.who(), id, base)?;
    let name = upload_name(raw, headers).unwrap_or(doc.name);
    let (blob, pin) = store_upload(&state.documents, &name, body).await?;
    let (kernel, who) = (state.kernel.clone(), auth.who().clone());
    committed(pin, async move {
        kernel.add_version(&who, id, base, Some(&name), blob).await
    })
    .await
}

/// `GET /documents/{id}`: the document, its record and its versions.
pub async fn page(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Markup, WebError> {
    let id = parse_id(&id)?;
    let (doc, versions) = state.kernel.document(auth.who(), id)?;
    let def = state.kernel.entity(doc.entity)?;
    let title = state
        .kernel
        .titles(auth.who(), def, [doc.record])?
        .remove(&doc.record)
        .unwrap_or_else(|| format!("{} #{}", def.label, doc.record));
    let writable = auth.who().can(def.name, Action::Write);
    let body = html! {
        header .page-head {
            div {
                a href=(record_path(&doc)) { "← " (title) }
                h1 { (doc.name) }
                div .meta { (nexus_blobs::describe(&doc.mime)) " · " (size_text(doc.size)) " · version " (doc.revision) }
                div .meta .text-status {
                    @match state.documents.text.status(&doc.sha256, &doc.name) {
                        Some(Ok(n)) => { "Its text is searchable (" (n) " passages)." }
                        Some(Err(why)) => { "Its text is not searchable: " (why) ". Its name is." }
                        None => { "Its text is being read for search." }
                    }
                }
            }
            div .actions {
                a .button href={ "/documents/" (doc.id) "/content" } download { "Download" }
                @if inline_type(&doc.mime).is_some() {
                    a .button href={ "/documents/" (doc.id) "/content?inline=1" } target="_blank" rel="noopener" { "Open" }
                }
                @if writable {
                    form method="post" action={ "/documents/" (doc.id) "/delete" }
                        hx-post={ "/documents/" (doc.id) "/delete" }
                        hx-confirm={ "Remove " (doc.name) " with all its versions?" } {
                        input type="hidden" name="_csrf" value=(auth.csrf());
                        input type="hidden" name="version" value=(doc.version);
                        button .danger type="submit" { "Remove" }
                    }
                }
            }
        }
        section .card {
            h2 { "Versions" }
            (versions_table(&doc, &versions))
            @if writable {
                label .dropzone data-upload={ "/documents/" (doc.id) "/versions?version=" (doc.version) } data-reload="1" {
                    input type="file" name="file";
                    span { "Drop a new version here or choose it" }
                }
            }
        }
    };
    Ok(views::page(
        &auth,
        &doc.name,
        views::module_of(def),
        body,
        Vec::new(),
    ))
}

fn versions_table(doc: &DocumentInfo, versions: &[DocumentVersion]) -> Markup {
    html! {
        table .doc-list {
            thead { tr { th { "Version" } th { "File" } th .num { "Size" } th { "When" } th { "Who" } th { "SHA-256" } th {} } }
            tbody {
                @for v in versions {
                    tr {
                        td { (v.revision) }
                        td { (v.name) }
                        td .num { (size_text(v.size)) }
                        td { (v.at.get(..16).unwrap_or_default().replace('T', " ")) }
                        td { (v.by) }
                        td { code title=(v.sha256) { (v.sha256.get(..12).unwrap_or_default()) "…" } }
                        td { a href={ "/documents/" (doc.id) "/versions/" (v.revision) "/content" } download { "Download" } }
                    }
                }
            }
        }
    }
}

/// `POST /documents/{id}/versions?name=…&version=…`: the body is the new version.
pub async fn upload_version(
    State(state): State<AppState>,
    ApiWrite(auth): ApiWrite,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, WebError> {
    let id = parse_id(&id)?;
    new_version(&state, &auth, id, raw.as_deref(), &headers, body).await?;
    Ok(crate::records::redirect(true, &format!("/documents/{id}")))
}

/// `POST /documents/{id}/delete`: removes it, back to its record.
pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: FormSubmit,
) -> Result<Response, WebError> {
    let id = parse_id(&id)?;
    let version = parse_version(field(&form.pairs, "version"))?;
    let doc = state
        .kernel
        .may_change_document(form.auth.who(), id, version)?;
    state
        .kernel
        .remove_document(form.auth.who(), id, version)
        .await?;
    Ok(crate::records::redirect(form.htmx, &record_path(&doc)))
}

/// The type a download may be shown as in the browser (never HTML or SVG, which
/// could run script in the appliance's origin); `None`: download only.
fn inline_type(mime: &str) -> Option<&'static str> {
    [
        "application/pdf",
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "text/plain",
    ]
    .into_iter()
    .find(|t| *t == mime)
}

/// An HTTP `Range` header as one range `(start, end)` within `size` bytes: `Ok(None)`
/// for the whole file (no header, or several ranges, which are answered whole),
/// `Err` when it cannot be satisfied.
fn range(headers: &HeaderMap, size: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(value) = headers.get(header::RANGE).and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let (a, b) = spec.split_once('-').ok_or(())?;
    let (a, b) = (a.trim(), b.trim());
    let parsed = match (a.is_empty(), b.is_empty()) {
        // The last `b` bytes.
        (true, false) => {
            let n: u64 = b.parse().map_err(|_| ())?;
            if n == 0 {
                return Err(());
            }
            (size.saturating_sub(n), size.checked_sub(1).ok_or(())?)
        }
        (false, true) => (a.parse().map_err(|_| ())?, size.checked_sub(1).ok_or(())?),
        (false, false) => {
            let start: u64 = a.parse().map_err(|_| ())?;
            let end: u64 = b.parse().map_err(|_| ())?;
            (start, end.min(size.saturating_sub(1)))
        }
        (true, true) => return Err(()),
    };
    if parsed.0 > parsed.1 || parsed.0 >= size {
        return Err(());
    }
    Ok(Some(parsed))
}

/// `Content-Disposition` for `name`: an ASCII fallback and the name itself (RFC 6266).
fn disposition(inline: bool, name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!(
        "{}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}",
        if inline { "inline" } else { "attachment" }
    )
}

/// The bytes of `version` (or the current one) of document `id`, with ranges.
async fn content(
    state: &AppState,
    auth: &Auth,
    id: u64,
    revision: Option<u64>,
    raw: Option<&str>,
    headers: &HeaderMap,
) -> Result<Response, WebError> {
    let (doc, versions) = state.kernel.document(auth.who(), id)?;
    let (name, mime, sha) = match revision {
        None => (doc.name.clone(), doc.mime.clone(), doc.sha256.clone()),
        Some(r) => {
            let v = versions.iter().find(|v| v.revision == r).ok_or_else(|| {
                KernelError::NotFound(format!("document {id} has no version {r}"))
            })?;
            (v.name.clone(), v.mime.clone(), v.sha256.clone())
        }
    };
    let blob: BlobId = sha.parse().map_err(blob_error)?;
    let size = state.documents.blobs.size(blob).await.map_err(blob_error)?;
    let wanted = match range(headers, size) {
        Ok(r) => r,
        Err(()) => {
            let message = format!("The range asked for is outside the file's {size} bytes");
            return Ok((
                StatusCode::RANGE_NOT_SATISFIABLE,
                [(header::CONTENT_RANGE, format!("bytes */{size}"))],
                axum::Json(
                    json!({ "error": { "code": "range_not_satisfiable", "message": message } }),
                ),
            )
                .into_response());
        }
    };
    let (file, len) = state
        .documents
        .blobs
        .open_range(blob, wanted)
        .await
        .map_err(blob_error)?;
    let inline = query_param(raw, "inline").is_some_and(|v| v == "1");
    let shown = inline_type(&mime);
    let stream = tokio_util::io::ReaderStream::new(tokio::io::AsyncReadExt::take(file, len));
    let mut res = Response::new(Body::from_stream(stream));
    *res.status_mut() = if wanted.is_some() {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    let h = res.headers_mut();
    let set = |h: &mut HeaderMap, k: header::HeaderName, v: String| {
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.insert(k, v);
        }
    };
    set(
        h,
        header::CONTENT_TYPE,
        shown.unwrap_or("application/octet-stream").into(),
    );
    set(h, header::CONTENT_LENGTH, len.to_string());
    set(h, header::ACCEPT_RANGES, "bytes".into());
    set(h, header::ETAG, format!("\"{sha}\""));
    set(
        h,
        header::CONTENT_DISPOSITION,
        disposition(inline && shown.is_some(), &name),
    );
    if let Some((start, end)) = wanted {
        set(
            h,
            header::CONTENT_RANGE,
            format!("bytes {start}-{end}/{size}"),
        );
    }
    Ok(res)
}

/// `GET /documents/{id}/content` (`?inline=1` to show a PDF, an image or text).
pub async fn download(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    content(
        &state,
        &auth,
        parse_id(&id)?,
        None,
        raw.as_deref(),
        &headers,
    )
    .await
}

/// `GET /documents/{id}/versions/{revision}/content`.
pub async fn download_version(
    State(state): State<AppState>,
    auth: Auth,
    Path((id, revision)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let revision = revision
        .parse()
        .map_err(|_| WebError::Malformed(format!("\"{revision}\" is not a version")))?;
    content(
        &state,
        &auth,
        parse_id(&id)?,
        Some(revision),
        raw.as_deref(),
        &headers,
    )
    .await
}

// The JSON API.

/// `GET /api/v1/{entity}/{id}/documents`.
pub async fn api_list(
    State(state): State<AppState>,
    auth: Auth,
    Path((entity, id)): Path<(String, String)>,
) -> Result<Response, WebError> {
    let docs = state
        .kernel
        .documents(auth.who(), &entity, parse_id(&id)?)?;
    Ok(axum::Json(json!({ "data": docs })).into_response())
}

/// `POST /api/v1/{entity}/{id}/documents?name=…`: the body is the file.
pub async fn api_upload(
    State(state): State<AppState>,
    ApiWrite(auth): ApiWrite,
    Path((entity, id)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, WebError> {
    let id = parse_id(&id)?;
    let doc = attach(&state, &auth, &entity, id, raw.as_deref(), &headers, body).await?;
    Ok((StatusCode::CREATED, axum::Json(doc)).into_response())
}

/// `GET /api/v1/documents/{id}`: the document and its versions.
pub async fn api_get(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let (doc, versions) = state.kernel.document(auth.who(), parse_id(&id)?)?;
    let mut out = serde_json::to_value(&doc)
        .map_err(|e| WebError::Kernel(KernelError::Internal(e.to_string())))?;
    out["versions"] = json!(versions);
    Ok(axum::Json(out).into_response())
}

/// `POST /api/v1/documents/{id}/versions?name=…&version=…`: the body is the new version.
pub async fn api_upload_version(
    State(state): State<AppState>,
    ApiWrite(auth): ApiWrite,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, WebError> {
    let doc = new_version(
        &state,
        &auth,
        parse_id(&id)?,
        raw.as_deref(),
        &headers,
        body,
    )
    .await?;
    Ok((StatusCode::CREATED, axum::Json(doc)).into_response())
}

/// `DELETE /api/v1/documents/{id}` (`?version=` to remove only what one saw).
pub async fn api_delete(
    State(state): State<AppState>,
    ApiWrite(auth): ApiWrite,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, WebError> {
    let version = parse_version(query_param(raw.as_deref(), "version").as_deref())?;
    state
        .kernel
        .remove_document(auth.who(), parse_id(&id)?, version)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The sweep job: removes the blobs no document version names and no upload pins,
/// and the text extracted from them.
struct Sweep(BlobStore, Option<Arc<DocumentText>>);

impl JobHandler for Sweep {
    fn kind(&self) -> &'static str {
        SWEEP_KIND
    }

    fn run(&self, ctx: JobContext) -> JobFuture<'_> {
        Box::pin(async move {
            let (kernel, blobs, text) = (ctx.kernel.clone(), self.0.clone(), self.1.clone());
            let report = tokio::task::spawn_blocking(move || {
                let report = sweep(&kernel, &blobs)?;
                if let Some(text) = text {
                    for id in &report.gone {
                        text.forget(*id);
                    }
                }
                Ok::<_, WebError>(report)
            })
            .await
            .map_err(|e| nexus_kernel::JobError::Retry(e.to_string()))?
            .map_err(|e| nexus_kernel::JobError::Retry(e.to_string()))?;
            Ok(json!({
                "referenced": report.referenced,
                "pinned": report.pinned,
                "removed": report.removed,
                "removed_bytes": report.removed_bytes,
            }))
        })
    }
}

/// Removes every blob that no document version names and no upload in flight pins
/// (each asked of the store at the moment it would go).
pub fn sweep(kernel: &Kernel, blobs: &BlobStore) -> Result<nexus_blobs::Sweep, WebError> {
    blobs
        .sweep(|id| kernel.blob_referenced(id.as_bytes()))
        .map_err(blob_error)
}

/// Registers the sweep job over `blobs` (and the text kept from them).
pub fn register(
    kernel: &Kernel,
    blobs: &BlobStore,
    text: Option<Arc<DocumentText>>,
) -> Result<(), KernelError> {
    kernel.register_job(Arc::new(Sweep(blobs.clone(), text)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(range: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::RANGE, HeaderValue::from_str(range).expect("header"));
        h
    }

    #[test]
    fn ranges_are_read_as_rfc_9110_says_or_refused() {
        assert_eq!(range(&HeaderMap::new(), 10), Ok(None));
        assert_eq!(range(&headers("bytes=2-5"), 10), Ok(Some((2, 5))));
        assert_eq!(range(&headers("bytes=2-"), 10), Ok(Some((2, 9))));
        assert_eq!(range(&headers("bytes=-3"), 10), Ok(Some((7, 9))));
        assert_eq!(range(&headers("bytes=-30"), 10), Ok(Some((0, 9))));
        // An end past the file is cut to it; several ranges are answered whole.
        assert_eq!(range(&headers("bytes=5-100"), 10), Ok(Some((5, 9))));
        assert_eq!(range(&headers("bytes=0-1,4-5"), 10), Ok(None));
        assert_eq!(range(&headers("items=0-1"), 10), Ok(None));
        for bad in [
            "bytes=10-",
            "bytes=5-2",
            "bytes=-0",
            "bytes=-",
            "bytes=a-b",
            "bytes=3",
        ] {
            assert_eq!(range(&headers(bad), 10), Err(()), "{bad}");
        }
        assert_eq!(range(&headers("bytes=0-"), 0), Err(()));
    }

    #[test]
    fn a_download_names_its_file_safely() {
        assert_eq!(
            disposition(false, "Offer \"final\".pdf"),
            "attachment; filename=\"Offer _final_.pdf\"; filename*=UTF-8''Offer%20%22final%22.pdf"
        );
        assert_eq!(
            disposition(true, "Zürich.txt"),
            "inline; filename=\"Z_rich.txt\"; filename*=UTF-8''Z%C3%BCrich.txt"
        );
        assert_eq!(inline_type("text/html"), None);
        assert_eq!(inline_type("image/svg+xml"), None);
        assert_eq!(inline_type("application/pdf"), Some("application/pdf"));
    }

    #[test]
    fn sizes_read_in_words() {
        assert_eq!(size_text(812), "812 B");
        assert_eq!(size_text(12_500), "12.5 kB");
        assert_eq!(size_text(26_214_400), "26.2 MB");
    }
}
