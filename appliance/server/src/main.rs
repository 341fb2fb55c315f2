//! `nexus`: the whole business system in one binary.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use nexus::Config;
use nexus::serve::{self, DEMO_CUSTOMERS};
use nexus_kernel::{Kernel, SystemClock};

#[derive(Parser)]
#[command(
    name = "nexus",
    version,
    about = "NexusAI appliance: ERP, CRM, HR, EPM, Projects and Compliance in one binary"
)]
struct Cli {
    /// A TOML configuration file (see `nexus config example`).
    #[arg(long, short, global = true, env = "NEXUS_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the appliance.
    Serve,
    /// Run the appliance with a demo company (a few hundred customers) on first start.
    Demo {
        /// How many demo customers to create.
        #[arg(long, default_value_t = DEMO_CUSTOMERS)]
        customers: u64,
    },
    /// Administration tasks (run while the appliance is stopped).
    Admin {
        #[command(subcommand)]
        task: AdminTask,
    },
    /// The audit log.
    Audit {
        #[command(subcommand)]
        task: AuditTask,
    },
    /// Rebuild the search index from the records (while the appliance is stopped; a
    /// running appliance rebuilds a missing or damaged index by itself at start).
    Reindex,
    /// Configuration.
    Config {
        #[command(subcommand)]
        task: ConfigTask,
    },
}

#[derive(Subcommand)]
enum AdminTask {
    /// Create a user; the password is read from standard input.
    CreateUser {
        #[arg(long)]
        username: String,
        #[arg(long)]
        full_name: String,
        /// The role's name (Administrator, Sales, Viewer, or one you made).
        #[arg(long, default_value = "Administrator")]
        role: String,
        /// The company the user belongs to, by name or id (default: the first one).
        #[arg(long)]
        company: Option<String>,
    },
    /// Create another company (with the default roles); then give it a user with
    /// `create-user --company`, or give users of other companies access from its Admin
    /// pages.
    CreateCompany {
        #[arg(long)]
        name: String,
        /// The currency its books are kept in (USD, EUR, GBP, CHF, CAD, AUD, JPY).
        #[arg(long, default_value = "EUR")]
        currency: String,
    },
    /// List the companies on this appliance.
    Companies,
    /// Make an API token for a user's scripts; prints the token once (it is stored
    /// only hashed). The scopes cannot exceed what the user's role allows.
    CreateToken {
        #[arg(long)]
        user: String,
        /// What it is for ("nightly bank import").
        #[arg(long)]
        name: String,
        /// The actions it may take, as a role's permissions (`invoice:r, customer:rc`).
        #[arg(long)]
        scopes: String,
        #[arg(long, default_value_t = 90)]
        days: u32,
        #[arg(long, default_value_t = nexus_kernel::DEFAULT_PER_MINUTE)]
        per_minute: u32,
        /// The company it acts in, by name or id (default: the first one).
        #[arg(long)]
        company: Option<String>,
    },
    /// Remove a user's second factor (a lost phone and lost recovery codes); they
    /// set up a new one when they next sign in.
    ResetMfa {
        #[arg(long)]
        user: String,
    },
}

#[derive(Subcommand)]
enum AuditTask {
    /// Without a bundle: check every link and hash of this box's event log. With one:
    /// verify an audit bundle offline, as `nexus-verify` does.
    Verify {
        /// An audit bundle directory (from `nexus audit export`).
        bundle: Option<PathBuf>,
        /// The log key you trust (a key.txt from an earlier bundle, or its text).
        #[arg(long)]
        key: Option<String>,
        /// A checkpoint you kept earlier: the bundle's tree must extend it.
        #[arg(long)]
        pinned: Option<PathBuf>,
    },
    /// Write an audit bundle for auditors (see docs/auditor-guide.md): a fresh signed
    /// checkpoint, the entries with their proofs, and the box's public key.
    Export {
        /// The directory to write (made if missing; must be empty if it exists).
        #[arg(long)]
        out: PathBuf,
        /// Only this company's entries (by name or id).
        #[arg(long)]
        company: Option<String>,
        /// Entries from this sequence number on.
        #[arg(long)]
        from: Option<u64>,
        /// Entries up to this sequence number.
        #[arg(long)]
        to: Option<u64>,
    },
    /// Print the log key and its fingerprint, to give auditors.
    Key,
}

#[derive(Subcommand)]
enum ConfigTask {
    /// Print a commented configuration file with every default.
    Example,
    /// Print the configuration in effect (file and environment applied).
    Show,
}

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("NEXUS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// The command line: the platform's subcommands and each module's.
fn command_line() -> clap::Command {
    serve::MODULES
        .iter()
        .filter_map(|m| m.cli.as_ref())
        .fold(Cli::command(), |cmd, cli| cmd.subcommand((cli.command)()))
}

#[tokio::main]
async fn main() -> ExitCode {
    let matches = command_line().get_matches();
    let config_path = matches.get_one::<PathBuf>("config").cloned();
    let config = match Config::load(config_path.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("nexus: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(&config.log_format);
    let module_cli = matches.subcommand().and_then(|(name, sub)| {
        serve::MODULES
            .iter()
            .filter_map(|m| m.cli.as_ref())
            .find(|cli| (cli.command)().get_name() == name)
            .map(|cli| (cli, sub.clone()))
    });
    if let Some((cli, sub)) = module_cli {
        let result = match open(&config).await {
            Ok(kernel) => (cli.run)(kernel, sub).await,
            Err(e) => Err(e),
        };
        return finish(result);
    }
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let result = match cli.command {
        Command::Serve => run(&config, None).await,
        Command::Demo { customers } => run(&config, Some(customers)).await,
        Command::Admin {
            task:
                AdminTask::CreateUser {
                    username,
                    full_name,
                    role,
                    company,
                },
        } => create_user(&config, &username, &full_name, &role, company.as_deref()).await,
        Command::Admin {
            task: AdminTask::CreateCompany { name, currency },
        } => create_company(&config, &name, &currency).await,
        Command::Admin {
            task: AdminTask::Companies,
        } => companies(&config).await,
        Command::Admin {
            task:
                AdminTask::CreateToken {
                    user,
                    name,
                    scopes,
                    days,
                    per_minute,
                    company,
                },
        } => {
            let request = nexus_kernel::TokenRequest {
                name,
                scopes,
                days,
                per_minute,
            };
            create_token(&config, &user, request, company.as_deref()).await
        }
        Command::Admin {
            task: AdminTask::ResetMfa { user },
        } => reset_mfa(&config, &user).await,
        Command::Audit {
            task: AuditTask::Verify { bundle: None, .. },
        } => verify(&config).await,
        Command::Audit {
            task:
                AuditTask::Verify {
                    bundle: Some(dir),
                    key,
                    pinned,
                },
        } => verify_bundle(&dir, key.as_deref(), pinned.as_deref()),
        Command::Audit {
            task:
                AuditTask::Export {
                    out,
                    company,
                    from,
                    to,
                },
        } => export_bundle(&config, &out, company.as_deref(), from, to).await,
        Command::Audit {
            task: AuditTask::Key,
        } => serve::log_key(&config.data_dir)
            .map(|k| {
                let v = k.verifier();
                println!("{}\nfingerprint {}", v.encode(), v.fingerprint());
            })
            .map_err(|e| e.to_string()),
        Command::Reindex => reindex(&config).await,
        Command::Config {
            task: ConfigTask::Example,
        } => {
            print!("{}", Config::example());
            Ok(())
        }
        Command::Config {
            task: ConfigTask::Show,
        } => toml::to_string(&config)
            .map(|s| print!("{s}"))
            .map_err(|e| e.to_string()),
    };
    finish(result)
}

fn finish(result: Result<(), String>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nexus: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: &Config, demo: Option<u64>) -> Result<(), String> {
    let mut running = serve::start(config, demo, Arc::new(SystemClock))
        .await
        .map_err(|e| e.to_string())?;
    print_banner(&running);
    tokio::select! {
        _ = shutdown_signal() => {
            tracing::info!("stopping");
            running.shutdown().await;
        }
        _ = running.wait() => {}
    }
    Ok(())
}

/// What the person starting nexus needs to know. Written with `writeln!` so a closed
/// stdout (a detached pipe) cannot stop the appliance.
fn print_banner(running: &serve::Running) {
    use std::io::Write;
    let host = serve::display_host(running.https);
    let ca = running.ca_path.display();
    let mut lines = vec![
        // One machine-readable line first (tests and scripts read it).
        format!("listening https={} http={}", running.https, running.http),
        String::new(),
        format!(
            "  NexusAI is running: https://{host}/   (also https://nexus.local:{}/ on the LAN)",
            running.https.port()
        ),
    ];
    match &running.setup_url {
        Some(url) => {
            lines.push("  No administrator yet. Create one (this link works once):".into());
            lines.push(format!("    {url}"));
        }
        None => lines.push(
            "  Sign in with your user. New users: Admin → Users, or `nexus admin create-user`."
                .into(),
        ),
    }
    lines.push(format!("  Browsers warn until they trust the box CA: {ca}"));
    lines.push(format!(
        "  (download it from the admin page, or use `curl --cacert {ca}`)"
    ));
    lines.push(String::new());
    let mut out = std::io::stdout().lock();
    for line in lines {
        let _ = writeln!(out, "{line}");
    }
    let _ = out.flush();
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

async fn open(config: &Config) -> Result<Kernel, String> {
    serve::prepare(config, None, Arc::new(SystemClock))
        .await
        .map_err(|e| e.to_string())
}

/// Field errors as one line for the terminal.
fn explain(e: nexus_kernel::KernelError) -> String {
    match e {
        nexus_kernel::KernelError::Invalid(fields) => fields
            .0
            .iter()
            .map(|(f, m)| format!("{f}: {m}"))
            .collect::<Vec<_>>()
            .join("; "),
        e => e.to_string(),
    }
}

/// The company named `wanted` (a name, case-insensitive, or an id), or the default one.
fn company_of(kernel: &Kernel, wanted: Option<&str>) -> Result<u64, String> {
    let Some(wanted) = wanted else {
        return kernel
            .default_company()
            .map_err(|e| e.to_string())?
            .ok_or_else(|| "no company exists yet".to_string());
    };
    let all = kernel.companies().map_err(|e| e.to_string())?;
    all.iter()
        .find(|(id, name)| {
            name.eq_ignore_ascii_case(wanted.trim()) || id.to_string() == wanted.trim()
        })
        .map(|(id, _)| *id)
        .ok_or_else(|| {
            let names: Vec<&str> = all.iter().map(|(_, n)| n.as_str()).collect();
            format!(
                "there is no company \"{wanted}\"; there are: {}",
                names.join(", ")
            )
        })
}

fn verify_bundle(
    dir: &std::path::Path,
    key: Option<&str>,
    pinned: Option<&std::path::Path>,
) -> Result<(), String> {
    let mut trust = nexus_tlog::Trust::default();
    if let Some(k) = key {
        let text = match std::path::Path::new(k).exists() {
            true => std::fs::read_to_string(k).map_err(|e| format!("--key {k}: {e}"))?,
            false => k.to_string(),
        };
        trust.key = Some(nexus_tlog::Verifier::parse(&text).map_err(|e| format!("--key: {e}"))?);
    }
    if let Some(p) = pinned {
        trust.pinned =
            Some(std::fs::read_to_string(p).map_err(|e| format!("--pinned {}: {e}", p.display()))?);
    }
    let bundle = nexus_tlog::Bundle::read_from(dir)
        .map_err(|e| format!("NOT VERIFIED: the bundle cannot be read: {e}"))?;
    let verdict = nexus_tlog::bundle::verify(&bundle, &trust).map_err(|f| f.to_string())?;
    print!("{verdict}");
    Ok(())
}

async fn export_bundle(
    config: &Config,
    out: &std::path::Path,
    company: Option<&str>,
    from: Option<u64>,
    to: Option<u64>,
) -> Result<(), String> {
    if out.exists()
        && std::fs::read_dir(out)
            .map_err(|e| format!("{}: {e}", out.display()))?
            .next()
            .is_some()
    {
        return Err(format!(
            "{} is not empty; give a new directory for the bundle",
            out.display()
        ));
    }
    let kernel = open(config).await?;
    let company = match company {
        Some(c) => Some(company_of(&kernel, Some(c))?),
        None => None,
    };
    let notary =
        nexus_web::audit::Notary::new(serve::log_key(&config.data_dir).map_err(|e| e.to_string())?);
    let selection = nexus_web::audit::Selection { from, to, company };
    let bundle = notary
        .bundle(&kernel, &selection)
        .await
        .map_err(|e| e.to_string())?;
    bundle
        .write_to(out)
        .map_err(|e| format!("writing {}: {e}", out.display()))?;
    // Taking the log out is itself an entry of it (after the bundle's last one).
    let first = kernel
        .default_company()
        .map_err(|e| e.to_string())?
        .unwrap_or(0);
    kernel
        .log_export(
            &nexus_kernel::Principal::system(company.unwrap_or(first)),
            "audit log",
            serde_json::json!({ "from": from, "to": to, "company": company,
                "entries": bundle.entries.len(), "out": out.display().to_string() }),
        )
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "wrote {} entries of {} to {}\nkey fingerprint {}",
        bundle.entries.len(),
        bundle.manifest.size,
        out.display(),
        bundle.manifest.fingerprint
    );
    Ok(())
}

async fn create_company(config: &Config, name: &str, currency: &str) -> Result<(), String> {
    let kernel = open(config).await?;
    let id = kernel
        .create_company(name, currency)
        .await
        .map_err(explain)?;
    println!(
        "created company {name} (id {id}); give it a user with `nexus admin create-user --company {id}`"
    );
    Ok(())
}

async fn reindex(config: &Config) -> Result<(), String> {
    let kernel = open(config).await?;
    let dir = config.data_dir.join("search");
    let index = nexus_search::SearchIndex::open(&dir).map_err(|e| e.to_string())?;
    let blobs =
        nexus_blobs::BlobStore::open(config.data_dir.join("blobs")).map_err(|e| e.to_string())?;
    index.set_documents(std::sync::Arc::new(nexus::serve::document_text(
        &blobs,
        &config.data_dir,
    )));
    let added = index
        .rebuild(&kernel, |n| eprint!("\rindexing: {n} records"))
        .map_err(|e| e.to_string())?;
    eprintln!();
    println!(
        "the search index in {} holds {added} entries (records and document passages), up to event {}",
        dir.display(),
        index.position()
    );
    let Some(model) = config.embedding_model_path().filter(|p| p.exists()) else {
        println!("search by meaning is off (no embedding model): no vectors to rebuild");
        return Ok(());
    };
    let embedder = nexus_ai::Embedder::load(&model, nexus_ai::EmbedderOptions::default())
        .map_err(|e| e.to_string())?;
    let dir = config.data_dir.join("vectors");
    let vectors = nexus_search::VectorIndex::open(&dir, std::sync::Arc::new(embedder))
        .map_err(|e| e.to_string())?;
    let embedded = vectors
        .rebuild(&index, &kernel, |n| eprint!("\rembedding: {n} entries"))
        .map_err(|e| e.to_string())?;
    eprintln!();
    println!(
        "the vector index in {} holds {embedded} vectors by {}, up to event {}",
        dir.display(),
        vectors.model(),
        vectors.position()
    );
    Ok(())
}

async fn companies(config: &Config) -> Result<(), String> {
    let kernel = open(config).await?;
    for (id, name) in kernel.companies().map_err(|e| e.to_string())? {
        println!("{id}\t{name}");
    }
    Ok(())
}

async fn create_token(
    config: &Config,
    user: &str,
    request: nexus_kernel::TokenRequest,
    company: Option<&str>,
) -> Result<(), String> {
    let kernel = open(config).await?;
    let company = company_of(&kernel, company)?;
    let (secret, info) = kernel
        .create_token_for(company, user, request)
        .await
        .map_err(explain)?;
    eprintln!(
        "made token {} for {user} (scopes {}; expires {}); it is not shown again:",
        info.id,
        info.scopes,
        nexus_kernel::rfc3339(info.expires)
    );
    println!("{secret}");
    Ok(())
}

async fn reset_mfa(config: &Config, user: &str) -> Result<(), String> {
    let kernel = open(config).await?;
    kernel.reset_mfa(user).await.map_err(explain)?;
    println!("removed the second factor of {user}; they set up a new one when they next sign in");
    Ok(())
}

async fn create_user(
    config: &Config,
    username: &str,
    full_name: &str,
    role: &str,
    company: Option<&str>,
) -> Result<(), String> {
    let kernel = open(config).await?;
    let company = company_of(&kernel, company)?;
    let role_id = kernel
        .role_by_name(company, role)
        .map_err(|e| e.to_string())?;
    if std::io::stdin().is_terminal() {
        eprint!("Password for {username} (at least 10 characters): ");
    }
    let mut password = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut password)
        .map_err(|e| format!("reading the password: {e}"))?;
    let password = password.trim_end_matches(['\n', '\r']);
    match kernel
        .create_user(company, username, full_name, password, role_id)
        .await
    {
        Ok(rec) => {
            println!("created user {username} (id {}) with role {role}", rec.id);
            Ok(())
        }
        Err(e) => Err(explain(e)),
    }
}

async fn verify(config: &Config) -> Result<(), String> {
    let kernel = open(config).await?;
    let report = kernel.verify_audit().map_err(|e| e.to_string())?;
    println!(
        "audit chain intact: {} entries, head {}",
        report.entries, report.head
    );
    Ok(())
}
