//! Boots the appliance for a test and talks to it like a client would.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use nexus::Config;
use nexus::serve::{self, Running};
use nexus_kernel::ManualClock;
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};
use time::{Date, OffsetDateTime, Time};

pub const ADMIN: (&str, &str) = ("admin", "correct horse battery");

pub struct TestServer {
    pub running: Running,
    /// The server's business clock; tests read "today" from it and may advance it.
    pub clock: Arc<ManualClock>,
    pub base: String,
    pub ca_pem: String,
    pub dir: tempfile::TempDir,
}

pub fn config(dir: &std::path::Path) -> Config {
    Config {
        data_dir: dir.join("data"),
        bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
        https_port: 0,
        http_port: 0,
        hostnames: Vec::new(),
        company_name: "Test Company".into(),
        currency: "CHF".into(),
        log_format: "text".into(),
        max_upload_mib: 2,
        // Search by meaning embeds every record: only the tests of it turn it on.
        embedding_model: String::new(),
    }
}

/// The day every test server starts on: `NEXUS_TEST_TODAY` (`YYYY-MM-DD`), else the
/// first of a month — the day main's suite once failed on. `make test` runs the
/// integration suite again on 31 December and on 29 February. Nothing in the suite
/// reads the wall clock.
pub fn test_today() -> Date {
    const DEFAULT: &str = "2026-12-01";
    let text = std::env::var("NEXUS_TEST_TODAY").unwrap_or_else(|_| DEFAULT.into());
    let format = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(&text, &format)
        .unwrap_or_else(|e| panic!("NEXUS_TEST_TODAY={text} is not a YYYY-MM-DD date: {e}"))
}

/// 09:30 UTC on [`test_today`].
pub fn test_clock() -> Arc<ManualClock> {
    let at = OffsetDateTime::new_utc(test_today(), Time::from_hms(9, 30, 0).expect("time"));
    Arc::new(ManualClock::new(at))
}

/// Starts an appliance with `customers` demo customers; nobody can sign in yet.
pub async fn boot_fresh(customers: u64) -> TestServer {
    boot_fresh_in(tempfile::tempdir().expect("tempdir"), customers).await
}

/// Like [`boot_fresh`], with the data under `dir`.
pub async fn boot_fresh_in(dir: tempfile::TempDir, customers: u64) -> TestServer {
    let clock = test_clock();
    let running = serve::start(&config(dir.path()), Some(customers), clock.clone())
        .await
        .expect("boot");
    serving(running, clock, dir)
}

fn serving(running: Running, clock: Arc<ManualClock>, dir: tempfile::TempDir) -> TestServer {
    let ca_pem = std::fs::read_to_string(&running.ca_path).expect("box CA");
    let base = format!("https://localhost:{}", running.https.port());
    TestServer {
        running,
        clock,
        base,
        ca_pem,
        dir,
    }
}

/// The embedding model `scripts/install-embedding-model.sh` makes (`make test` runs it).
pub fn embedding_model() -> String {
    let model = nexus_ai::installed_model();
    assert!(
        model.is_file(),
        "{} is missing: run scripts/install-embedding-model.sh",
        model.display()
    );
    model.display().to_string()
}

/// Like [`boot_fresh`], searching by meaning too.
pub async fn boot_fresh_with_vectors(customers: u64) -> TestServer {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = config(dir.path());
    config.embedding_model = embedding_model();
    let clock = test_clock();
    let running = serve::start(&config, Some(customers), clock.clone())
        .await
        .expect("boot");
    serving(running, clock, dir)
}

/// Like [`boot`], searching by meaning too.
pub async fn boot_with_vectors(customers: u64) -> TestServer {
    with_admin(boot_fresh_with_vectors(customers).await).await
}

/// Starts again on the data under `dir` once a stopped server's last connections
/// have let go of the store.
pub async fn restart(dir: tempfile::TempDir) -> TestServer {
    let config = config(dir.path());
    restart_as(config, dir).await
}

/// Like [`restart`], searching by meaning too.
pub async fn restart_with_vectors(dir: tempfile::TempDir) -> TestServer {
    let mut config = config(dir.path());
    config.embedding_model = embedding_model();
    restart_as(config, dir).await
}

async fn restart_as(config: Config, dir: tempfile::TempDir) -> TestServer {
    for _ in 0..100 {
        let clock = test_clock();
        match serve::start(&config, None, clock.clone()).await {
            Ok(running) => return serving(running, clock, dir),
            Err(serve::BootError::Store(nexus_kernel::StoreError::Locked(_))) => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(e) => panic!("restart: {e}"),
        }
    }
    panic!("the store stayed locked after shutdown");
}

/// Starts an appliance whose administrator `admin` exists.
pub async fn boot(customers: u64) -> TestServer {
    boot_in(tempfile::tempdir().expect("tempdir"), customers).await
}

/// Like [`boot`], with the data under `dir`.
pub async fn boot_in(dir: tempfile::TempDir, customers: u64) -> TestServer {
    with_admin(boot_fresh_in(dir, customers).await).await
}

/// The server with its administrator `admin` made.
async fn with_admin(s: TestServer) -> TestServer {
    let k = &s.running.kernel;
    let company = k.default_company().expect("company").expect("exists");
    let role = k.role_by_name(company, "Administrator").expect("role");
    k.create_user(company, ADMIN.0, "Ada Admin", ADMIN.1, role)
        .await
        .expect("admin");
    s
}

impl TestServer {
    /// Today on the server's clock.
    pub fn today(&self) -> Date {
        use nexus_kernel::Clock;
        self.clock.now().date()
    }

    pub fn company(&self) -> u64 {
        self.running
            .kernel
            .default_company()
            .expect("company")
            .expect("exists")
    }

    /// A user in the default company with the given role.
    pub async fn add_user(&self, username: &str, role: &str) -> String {
        let k = &self.running.kernel;
        let role = k.role_by_name(self.company(), role).expect("role");
        let password = format!("{username} password 123");
        k.create_user(self.company(), username, username, &password, role)
            .await
            .expect("user");
        password
    }

    /// A browser-like client that trusts the box CA and keeps cookies.
    pub fn client(&self) -> Client {
        client_trusting(&self.ca_pem)
    }

    /// Signs in through the API; returns a client with the session and its CSRF token.
    pub async fn api(&self, username: &str, password: &str) -> Api {
        let client = self.client();
        let res = client
            .post(format!("{}/api/v1/session", self.base))
            .json(&json!({ "username": username, "password": password }))
            .send()
            .await
            .expect("login request");
        assert_eq!(res.status(), StatusCode::OK, "login as {username}");
        let body: Value = res.json().await.expect("json");
        let csrf = body["csrf_token"].as_str().expect("csrf token").to_string();
        Api {
            client,
            csrf,
            base: self.base.clone(),
        }
    }

    pub async fn admin(&self) -> Api {
        self.api(ADMIN.0, ADMIN.1).await
    }
}

pub fn client_trusting(ca_pem: &str) -> Client {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.expect("pem")).expect("root");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Client::builder()
        .use_preconfigured_tls(tls)
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// A signed-in API client.
pub struct Api {
    pub client: Client,
    pub csrf: String,
    pub base: String,
}

impl Api {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().await.expect("GET")
    }

    pub async fn post(&self, path: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .header("x-csrf-token", &self.csrf)
            .json(body)
            .send()
            .await
            .expect("POST")
    }

    pub async fn patch(&self, path: &str, body: &Value) -> Response {
        self.client
            .patch(self.url(path))
            .header("x-csrf-token", &self.csrf)
            .json(body)
            .send()
            .await
            .expect("PATCH")
    }

    pub async fn delete(&self, path: &str) -> Response {
        self.client
            .delete(self.url(path))
            .header("x-csrf-token", &self.csrf)
            .send()
            .await
            .expect("DELETE")
    }

    /// Posts a form the way htmx does (CSRF in the header).
    pub async fn htmx_form(&self, path: &str, form: &[(&str, &str)]) -> Response {
        self.client
            .post(self.url(path))
            .header("x-csrf-token", &self.csrf)
            .header("hx-request", "true")
            .form(form)
            .send()
            .await
            .expect("form POST")
    }

    /// The body of a page that must answer 200.
    pub async fn text(&self, path: &str) -> String {
        let res = self.get(path).await;
        assert_eq!(res.status(), StatusCode::OK, "GET {path}");
        res.text().await.expect("text")
    }

    pub async fn json(&self, path: &str) -> Value {
        let res = self.get(path).await;
        assert_eq!(res.status(), StatusCode::OK, "GET {path}");
        res.json().await.expect("json")
    }

    /// Creates a customer and returns its JSON.
    pub async fn customer(&self, name: &str) -> Value {
        let res = self
            .post(
                "/api/v1/customer",
                &json!({ "name": name, "status": "Active" }),
            )
            .await;
        assert_eq!(res.status(), StatusCode::CREATED, "create {name}");
        res.json().await.expect("json")
    }
}

/// The error body of an API response, checked for status and code.
pub async fn api_error(res: Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(res.status(), status, "status");
    let body: Value = res.json().await.expect("error json");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    body
}

/// Reads an SSE stream until an event of `kind` arrives; returns its text (what was
/// left, when the stream ends first).
pub async fn next_event(res: &mut Response, kind: &str) -> String {
    let mut buf = String::new();
    loop {
        let Ok(Some(chunk)) = res.chunk().await else {
            return buf;
        };
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let event: String = buf.drain(..end + 2).collect();
            if event.lines().any(|l| l == format!("event: {kind}")) {
                return event;
            }
        }
    }
}
