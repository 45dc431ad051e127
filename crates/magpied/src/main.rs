//! `magpied`: the Magpie reference server.
//!
//! With no arguments it starts on 127.0.0.1:7878 with data under ./magpie-data and a demo app
//! whose secret is created once and kept in the data directory.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use magpied::{AppConfig, DevicePolicy, DurabilityMode, Server, Settings};

/// mimalloc (its 2.x line): with glibc's allocator, malloc and free were a fifth of the server's
/// CPU under load. The 2.x line gives freed pages back sooner than 3.x (10 ms purge delay against
/// 1 s), which kept idle sessions at 3.2-3.4 KiB of RSS against 3.6-4.1 KiB after a burst of
/// logins, at the same throughput (`benches/`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(name = "magpied", version, about = "The Magpie reference server")]
struct Args {
    /// TOML settings file (every field optional; flags override it).
    #[arg(long)]
    config: Option<PathBuf>,
    /// TCP listen address [default: 127.0.0.1:7878].
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// WebSocket listen address (same frames in binary messages).
    #[arg(long)]
    ws_listen: Option<SocketAddr>,
    /// Admin HTTP API listen address (token revocation).
    #[arg(long)]
    admin_listen: Option<SocketAddr>,
    /// Data directory [default: ./magpie-data].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// An app as ID:SECRET (repeatable). Without any, a demo app is created.
    #[arg(long = "app", value_name = "ID:SECRET")]
    apps: Vec<String>,
    /// Store durability: immediate (fsync before ack) or relaxed.
    #[arg(long, value_parser = ["immediate", "relaxed"])]
    durability: Option<String>,
    /// Largest SEND content in bytes [default: 16384].
    #[arg(long)]
    max_content_size: Option<u32>,
    /// Message retention in seconds [default: 604800, 7 days].
    #[arg(long)]
    retention_secs: Option<u64>,
    /// Messages kept per conversation at most [default: 0, no count limit].
    #[arg(long)]
    max_messages_per_conversation: Option<u64>,
    /// Members of one group at most [default: 3000].
    #[arg(long)]
    max_group_members: Option<usize>,
}

fn demo_app(data_dir: &std::path::Path) -> std::io::Result<AppConfig> {
    let path = data_dir.join("demo-app-secret");
    let secret = match std::fs::read_to_string(&path) {
        Ok(s) if s.trim().len() >= 16 => s.trim().to_owned(),
        _ => {
            let secret = format!(
                "demo-{}",
                magpie_auth::random_nonce().map_err(std::io::Error::other)?
            );
            std::fs::create_dir_all(data_dir)?;
            std::fs::write(&path, &secret)?;
            secret
        }
    };
    Ok(AppConfig {
        id: "demo".into(),
        secret,
        devices: DevicePolicy::default(),
    })
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let mut settings = match &args.config {
        Some(path) => match std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|t| Settings::from_toml(&t))
        {
            Ok(s) => s,
            Err(e) => {
                eprintln!("magpied: {}: {e}", path.display());
                return ExitCode::from(2);
            }
        },
        None => Settings::default(),
    };
    if let Some(a) = args.listen {
        settings.listen = a;
    }
    if args.ws_listen.is_some() {
        settings.ws_listen = args.ws_listen;
    }
    if args.admin_listen.is_some() {
        settings.admin_listen = args.admin_listen;
    }
    if let Some(d) = args.data_dir {
        settings.data_dir = d;
    }
    if let Some(d) = args.durability.as_deref() {
        settings.durability = if d == "relaxed" {
            DurabilityMode::Relaxed
        } else {
            DurabilityMode::Immediate
        };
    }
    if let Some(n) = args.max_content_size {
        settings.max_content_size = n;
    }
    if let Some(n) = args.retention_secs {
        settings.retention_secs = n;
    }
    if let Some(n) = args.max_messages_per_conversation {
        settings.max_messages_per_conversation = n;
    }
    if let Some(n) = args.max_group_members {
        settings.max_group_members = n;
    }
    for spec in &args.apps {
        let Some((id, secret)) = spec.split_once(':') else {
            eprintln!("magpied: --app wants ID:SECRET, got {spec:?}");
            return ExitCode::from(2);
        };
        settings.apps.push(AppConfig {
            id: id.into(),
            secret: secret.into(),
            devices: DevicePolicy::default(),
        });
    }
    if settings.apps.is_empty() {
        match demo_app(&settings.data_dir) {
            Ok(app) => {
                println!("demo app: id={} secret={}", app.id, app.secret);
                println!(
                    "try: magpie token --app {} --secret {} --user alice",
                    app.id, app.secret
                );
                settings.apps.push(app);
            }
            Err(e) => {
                eprintln!("magpied: cannot create the demo app: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let workers = settings.runtime_workers();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("magpied: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(serve(settings))
}

/// Runs the server until SIGINT or SIGTERM.
async fn serve(settings: Settings) -> ExitCode {
    let server = match Server::start(settings).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("magpied: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("magpied listening on {}", server.local_addr());
    if let Some(admin) = server.admin_addr() {
        println!("magpied admin API on http://{admin}");
    }
    if let Some(ws) = server.ws_addr() {
        println!("magpied websocket on ws://{ws}");
    }
    wait_for_signal().await;
    tracing::info!("shutting down");
    server.shutdown().await;
    ExitCode::SUCCESS
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
