//! Boot: open the store, make sure a company exists, seed the demo, print how to sign
//! in, load TLS, start the tailers and the HTTPS and HTTP-redirect listeners.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Request;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum_server::Handle;
use nexus_kernel::{Clock, Kernel, KernelError, SystemClock, run_tailer};
use nexus_store::{Store, StoreError};
use nexus_web::{AppState, ApplianceInfo};

use crate::config::Config;
use crate::tls::{Tls, TlsError, certificate_names};

#[derive(Debug, thiserror::Error)]
pub enum BootError {
    #[error("cannot create the data directory {0}: {1}")]
    DataDir(String, std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Kernel(#[from] KernelError),
    #[error("TLS: {0}")]
    Tls(#[from] TlsError),
    #[error(
        "cannot listen on {0}: {1} (is another program using the port? set NEXUS_HTTPS_PORT / NEXUS_HTTP_PORT)"
    )]
    Listen(SocketAddr, std::io::Error),
    #[error("the modules' entities do not fit together: {0}")]
    Modules(String),
    #[error("the search index in {0}: {1}")]
    Search(String, nexus_search::SearchError),
    #[error("the documents' files: {0}")]
    Blobs(#[from] nexus_blobs::BlobError),
}

/// How many jobs run at once (the box has few cores; the writer needs one).
const JOB_WORKERS: usize = 2;

/// How often the box signs a checkpoint of its transparency log.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(10 * 60);

/// How many customers `nexus demo` seeds.
pub const DEMO_CUSTOMERS: u64 = 300;

/// A running appliance.
pub struct Running {
    pub https: SocketAddr,
    pub http: SocketAddr,
    /// Present until the first administrator exists.
    pub setup_url: Option<String>,
    pub ca_path: std::path::PathBuf,
    pub kernel: Kernel,
    /// The documents' files (`data_dir/blobs`).
    pub blobs: nexus_blobs::BlobStore,
    handle: Handle<SocketAddr>,
    redirect_handle: Handle<SocketAddr>,
    /// Saved as the appliance stops, so that the next start reads its graph.
    vectors: Option<Arc<nexus_search::VectorIndex>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Stops accepting, lets requests in flight finish (up to 5 s), stops the tailers,
    /// and saves the vector graph (the next start reads it instead of building it).
    pub async fn shutdown(self) {
        self.handle.graceful_shutdown(Some(Duration::from_secs(5)));
        self.redirect_handle
            .graceful_shutdown(Some(Duration::from_secs(1)));
        // The servers end once their connections have (each holds the kernel and the
        // search index); only then does the store let go of its file.
        let mut tasks = self.tasks.into_iter();
        for mut server in tasks.by_ref().take(2) {
            if tokio::time::timeout(Duration::from_secs(6), &mut server)
                .await
                .is_err()
            {
                tracing::warn!("a server did not stop within its grace period");
                server.abort();
                let _ = server.await;
            }
        }
        for t in tasks {
            t.abort();
            let _ = t.await;
        }
        if let Some(vectors) = self.vectors {
            // Waits for a batch the vector indexer was applying: the save holds its lock.
            match tokio::task::spawn_blocking(move || vectors.save()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "the vector graph was not saved; the next start builds what it lacks");
                }
                Err(e) => tracing::warn!(error = %e, "the vector graph was not saved"),
            }
        }
    }

    /// Waits until the servers stop.
    pub async fn wait(&mut self) {
        for t in self.tasks.iter_mut().take(2) {
            let _ = t.await;
        }
    }
}

/// The bearer token for `/metrics`: `data_dir/metrics.token`, made on first start
/// (32 random bytes as hex, readable by the service user only). IT gives it to the
/// Prometheus scraper (`authorization: { credentials_file: … }`); replacing the file and
/// restarting changes it.
fn metrics_token(dir: &Path) -> Result<String, BootError> {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("metrics.token");
    let io = |e: std::io::Error| BootError::DataDir(path.display().to_string(), e);
    match std::fs::read_to_string(&path) {
        Ok(token) if token.trim().len() >= 32 => {
            // Whoever edited it, it stays readable by the service user only.
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
            return Ok(token.trim().to_owned());
        }
        Ok(_) => tracing::warn!(
            path = %path.display(),
            "the metrics token is shorter than 32 characters; making a new one"
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    let token = hex::encode(bytes);
    write_secret(&path, &token)?;
    tracing::info!(path = %path.display(), "made the metrics scraper's token");
    Ok(token)
}

/// Writes a secret the service alone may read (0600), atomically.
fn write_secret(path: &Path, contents: &str) -> Result<(), BootError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let io = |e: std::io::Error| BootError::DataDir(path.display().to_string(), e);
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io)?;
    f.write_all(contents.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// The transparency log's signing key, `data_dir/log.key` (0600): the log's origin
/// (`nexus.local/log/` and 16 random hex digits, fixed for the box's life) and the
/// ed25519 seed, one per line. Made at first boot.
pub fn log_key(dir: &Path) -> Result<nexus_tlog::LogKey, BootError> {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("log.key");
    let io = |e: std::io::Error| BootError::DataDir(path.display().to_string(), e);
    let damaged = |why: &str| {
        BootError::DataDir(
            path.display().to_string(),
            std::io::Error::other(format!(
                "the log key is damaged ({why}); restore it from a backup: auditors hold its fingerprint"
            )),
        )
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
            text
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut id = [0u8; 8];
            rand::fill(&mut id);
            let mut seed = [0u8; 32];
            rand::fill(&mut seed);
            let text = format!(
                "nexus.local/log/{}\n{}\n",
                hex::encode(id),
                hex::encode(seed)
            );
            write_secret(&path, &text)?;
            tracing::info!(path = %path.display(), "made the transparency log's signing key");
            text
        }
        Err(e) => return Err(io(e)),
    };
    let mut lines = text.lines();
    let origin = lines.next().ok_or_else(|| damaged("no origin"))?;
    let seed: [u8; 32] = lines
        .next()
        .and_then(|l| hex::decode(l.trim()).ok())
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| damaged("no 32-byte seed"))?;
    nexus_tlog::LogKey::from_seed(origin.trim(), &seed).map_err(|e| damaged(&e.to_string()))
}

fn create_data_dir(dir: &Path) -> Result<(), BootError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).map_err(|e| BootError::DataDir(dir.display().to_string(), e))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| BootError::DataDir(dir.display().to_string(), e))
}

/// The appliance's modules, one line each (the boundaries test holds the server to
/// naming a module nowhere else). Order matters: a module's demo may build on an
/// earlier one's (the ledger invoices CRM's demo customers).
#[rustfmt::skip]
pub static MODULES: &[&nexus_web::WebModule] = &[
    &nexus_crm::web::MODULE,
    &nexus_ledger::web::MODULE,
    &nexus_compliance::web::MODULE,
];

/// Documents' text for the search index, kept under `data_dir/text`.
pub fn document_text(
    blobs: &nexus_blobs::BlobStore,
    data_dir: &Path,
) -> nexus_web::documents::DocumentText {
    nexus_web::documents::DocumentText::new(blobs.clone(), data_dir.join("text"))
}

/// Installs the modules (once per process).
pub fn install_modules() -> Result<(), BootError> {
    nexus_web::module::install(MODULES).map_err(BootError::Modules)
}

/// Opens the store and prepares the first company (and the demo data when asked).
///
/// `clock` is the business clock: the dates of entries, audit and session times, the
/// demo's fiscal years. The binary passes [`SystemClock`]; tests pass a clock they set.
pub async fn prepare(
    config: &Config,
    demo_customers: Option<u64>,
    clock: Arc<dyn Clock>,
) -> Result<Kernel, BootError> {
    create_data_dir(&config.data_dir)?;
    install_modules()?;
    let store = Store::open(&config.data_dir.join("nexus.redb"))?;
    let kernel = Kernel::new(store, clock);
    // A store from before the transparency log gets its tree before anything is written.
    let added = kernel.catch_up_transparency_log().await?;
    if added > 0 {
        tracing::info!(
            entries = added,
            "added the earlier events to the transparency log"
        );
    }
    let company = match kernel.default_company()? {
        Some(c) => c,
        None => {
            let c = kernel
                .create_company(&config.company_name, &config.currency)
                .await?;
            tracing::info!(company = %config.company_name, "created the first company");
            c
        }
    };
    if let Some(size) = demo_customers {
        let today = kernel.clock().now().date();
        for m in nexus_kernel::registry::modules() {
            if let Some(seed) = m.demo {
                let made = seed(kernel.clone(), company, today, size).await?;
                if made > 0 {
                    tracing::info!(module = m.name, records = made, "seeded the demo company");
                }
            }
        }
    }
    Ok(kernel)
}

fn bind(addr: SocketAddr) -> Result<TcpListener, BootError> {
    let l = TcpListener::bind(addr).map_err(|e| BootError::Listen(addr, e))?;
    l.set_nonblocking(true)
        .map_err(|e| BootError::Listen(addr, e))?;
    Ok(l)
}

/// Starts the appliance on the business `clock` (see [`prepare`]). Returns once it
/// listens.
pub async fn start(
    config: &Config,
    demo_customers: Option<u64>,
    clock: Arc<dyn Clock>,
) -> Result<Running, BootError> {
    let kernel = prepare(config, demo_customers, clock).await?;
    let names = certificate_names(&config.hostnames);
    // Certificates are judged by the clients' clocks, not the business clock: a test
    // that sets the books to 31 December must still get a certificate valid today.
    let tls = Tls::load_or_create(&config.data_dir, &names, Arc::new(SystemClock))?;
    let https_listener = bind(SocketAddr::new(config.bind, config.https_port))?;
    let http_listener = bind(SocketAddr::new(config.bind, config.http_port))?;
    let https = https_listener
        .local_addr()
        .map_err(|e| BootError::Listen(SocketAddr::new(config.bind, config.https_port), e))?;
    let http = http_listener
        .local_addr()
        .map_err(|e| BootError::Listen(SocketAddr::new(config.bind, config.http_port), e))?;

    let info = ApplianceInfo {
        version: env!("CARGO_PKG_VERSION"),
        hostname: names.first().cloned().unwrap_or_default(),
        data_dir: config.data_dir.display().to_string(),
        started_at: nexus_kernel::rfc3339(kernel.clock().now()),
        started: Instant::now(),
        metrics_token: metrics_token(&config.data_dir)?,
    };
    nexus_web::jobs::register(&kernel, &config.data_dir)?;
    let blobs = nexus_blobs::BlobStore::open(config.data_dir.join("blobs"))?;
    let search_dir = config.data_dir.join("search");
    let search = Arc::new(
        nexus_search::SearchIndex::open(&search_dir)
            .map_err(|e| BootError::Search(search_dir.display().to_string(), e))?,
    );
    let text = Arc::new(document_text(&blobs, &config.data_dir));
    search.set_documents(text.clone());
    nexus_web::documents::register(&kernel, &blobs, Some(text.clone()))?;
    nexus_web::search::register(&kernel, &search)?;
    let job_tasks = nexus_kernel::jobs::start(&kernel, JOB_WORKERS).await?;
    let notary = Arc::new(nexus_web::audit::Notary::new(log_key(&config.data_dir)?));
    let state = AppState::new(
        kernel.clone(),
        tls.clone(),
        info,
        notary.clone(),
        search.clone(),
        nexus_web::documents::DocumentStore {
            blobs: blobs.clone(),
            text,
            max_upload: config.max_upload_mib.saturating_mul(1024 * 1024),
        },
    );
    let app = nexus_web::router(state.clone());

    let handle: Handle<SocketAddr> = Handle::new();
    let server = axum_server::from_tcp_rustls(https_listener, tls.rustls())
        .map_err(|e| BootError::Listen(https, e))?
        .handle(handle.clone());
    let https_task = tokio::spawn(async move {
        if let Err(e) = server
            .serve(app.into_make_service_with_connect_info::<SocketAddr>())
            .await
        {
            tracing::error!(error = %e, "the HTTPS server stopped");
        }
    });

    let redirect_handle: Handle<SocketAddr> = Handle::new();
    let https_port = https.port();
    // The redirect names only this box: its certificate's names and addresses, never
    // whatever Host a request claims.
    let known: Arc<Vec<String>> = Arc::new(names.iter().map(|n| n.to_ascii_lowercase()).collect());
    let redirect = Router::new()
        .fallback(move |req: Request| redirect_to_https(req, https_port, known.clone()));
    let redirect_server = axum_server::from_tcp(http_listener)
        .map_err(|e| BootError::Listen(http, e))?
        .handle(redirect_handle.clone());
    let http_task = tokio::spawn(async move {
        if let Err(e) = redirect_server.serve(redirect.into_make_service()).await {
            tracing::error!(error = %e, "the HTTP redirect server stopped");
        }
    });

    let tail_kernel = kernel.clone();
    let feed = state.live_feed();
    let tail_task = tokio::spawn(async move {
        if let Err(e) = run_tailer(tail_kernel, feed).await {
            tracing::error!(error = %e, "the live-updates tailer stopped");
        }
    });

    let indexer = nexus_search::Indexer::new(kernel.clone(), search.clone());
    let index_kernel = kernel.clone();
    let index_task = tokio::spawn(async move {
        if let Err(e) = run_tailer(index_kernel, indexer).await {
            tracing::error!(error = %e, "the search indexer stopped");
        }
    });

    // Loading the model and the vectors does not hold up the full-text indexer.
    let vectors = open_vectors(config, &search).await;
    let vector_task = match vectors.clone() {
        Some(vectors) => {
            let indexer = nexus_search::VectorIndexer::new(kernel.clone(), search.clone(), vectors);
            let vector_kernel = kernel.clone();
            tokio::spawn(async move {
                if let Err(e) = run_tailer(vector_kernel, indexer).await {
                    tracing::error!(error = %e, "the vector indexer stopped");
                }
            })
        }
        None => tokio::spawn(async {}),
    };
    // Checkpoints at a fixed cadence (and on demand: the API, every bundle).
    let cp_kernel = kernel.clone();
    let checkpoint_task = tokio::spawn(async move {
        let mut every = tokio::time::interval(CHECKPOINT_EVERY);
        loop {
            every.tick().await;
            if let Err(e) = notary.publish(&cp_kernel).await {
                tracing::warn!(error = %e, "could not publish a checkpoint");
            }
        }
    });

    let setup_url = if kernel.setup_needed()? {
        let token = kernel.issue_setup_token();
        Some(format!(
            "https://{}/setup?token={token}",
            display_host(https)
        ))
    } else {
        None
    };
    Ok(Running {
        https,
        http,
        setup_url,
        ca_path: tls.ca_path(),
        kernel,
        blobs,
        handle,
        redirect_handle,
        vectors,
        tasks: [
            https_task,
            http_task,
            tail_task,
            index_task,
            vector_task,
            checkpoint_task,
        ]
        .into_iter()
        .chain(job_tasks)
        .collect(),
    })
}

/// Loads the embedding model and opens the vector index beside the full-text one, which
/// then searches by meaning too. No model (or one that does not load) leaves search by
/// words alone, and says why in the log; it never stops the appliance from starting.
async fn open_vectors(
    config: &Config,
    search: &Arc<nexus_search::SearchIndex>,
) -> Option<Arc<nexus_search::VectorIndex>> {
    let path = config.embedding_model_path()?;
    if !path.exists() {
        tracing::info!(
            model = %path.display(),
            "search by meaning is off: no embedding model there (scripts/install-embedding-model.sh DATA_DIR/models installs one)"
        );
        return None;
    }
    let dir = config.data_dir.join("vectors");
    let opened = tokio::task::spawn_blocking(move || {
        let embedder = nexus_ai::Embedder::load(&path, nexus_ai::EmbedderOptions::default())
            .map_err(|e| e.to_string())?;
        nexus_search::VectorIndex::open(&dir, Arc::new(embedder)).map_err(|e| e.to_string())
    })
    .await;
    match opened {
        Ok(Ok(vectors)) => {
            tracing::info!(model = vectors.model(), "search by meaning is on");
            let vectors = Arc::new(vectors);
            search.set_vectors(vectors.clone());
            Some(vectors)
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "search by meaning is off: the embedding model cannot be used");
            None
        }
        Err(e) => {
            tracing::warn!(error = %e, "search by meaning is off");
            None
        }
    }
}

/// `localhost:PORT` for a wildcard or loopback bind, else the address.
pub fn display_host(addr: SocketAddr) -> String {
    if addr.ip().is_unspecified() || addr.ip().is_loopback() {
        format!("localhost:{}", addr.port())
    } else {
        addr.to_string()
    }
}

async fn redirect_to_https(req: Request, https_port: u16, known: Arc<Vec<String>>) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(strip_port);
    let is_known = |h: &str| {
        let bare = h
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        known.contains(&bare)
    };
    let Some(host) =
        host.filter(|h| !h.is_empty() && !h.contains(['/', '\\', '@', ' ']) && is_known(h))
    else {
        return (
            StatusCode::BAD_REQUEST,
            "Use https:// and the appliance's name.\n",
        )
            .into_response();
    };
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let port = if https_port == 443 {
        String::new()
    } else {
        format!(":{https_port}")
    };
    let target = format!("https://{host}{port}{path}");
    match target.parse::<Uri>() {
        Ok(_) => Redirect::permanent(&target).into_response(),
        Err(_) => (
            StatusCode::BAD_REQUEST,
            "Use https:// and the appliance's name.\n",
        )
            .into_response(),
    }
}

/// `name:8080` → `name`, `[::1]:8080` → `[::1]`.
fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |i| &host[..=i]);
    }
    host.split(':').next().unwrap_or(host)
}
