//! `magpied`, the Magpie reference server: sessions (`spec/session.md`) over TCP and WebSocket,
//! tokens (`spec/auth.md`), and loss-free push-pull delivery (`spec/sync.md`) on the embedded
//! durable store.
//!
//! The protocol lives in the sans-IO `magpie-session` crate; this crate is the driver: sockets,
//! the store, the registry of who is online, and the request handlers.

mod admin;
mod auth;
pub mod config;
mod conn;
mod groups;
mod handlers;
mod hub;
mod mailbox;
mod rates;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use magpie_auth::{AppSecret, VerifyPolicy};
use magpie_store::{GroupCommitter, Store};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::task::TaskTracker;

pub use admin::signature as admin_signature;
#[cfg(feature = "faults")]
pub use config::Faults;
pub use config::{AppConfig, DevicePolicy, DurabilityMode, OverflowRule, Settings};

use crate::hub::Hub;

/// Unix time in seconds.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Unix time in milliseconds.
pub(crate) fn unix_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

pub(crate) struct App {
    pub(crate) secret: AppSecret,
    pub(crate) policy: DevicePolicy,
}

/// What every connection shares.
pub(crate) struct Shared {
    pub(crate) settings: Settings,
    /// The session layer's settings, made once and shared by every connection.
    pub(crate) session_config: Arc<magpie_session::ServerConfig>,
    pub(crate) apps: HashMap<String, App>,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) committer: GroupCommitter,
    pub(crate) hub: Hub,
    /// [SESSION-6.4]: each user's SENDs.
    pub(crate) send_rates: rates::SendRates,
    pub(crate) verify_policy: VerifyPolicy,
    /// Connection and worker tasks, so shutdown can wait for them.
    pub(crate) tracker: TaskTracker,
    /// Flips to `true` at shutdown.
    pub(crate) stopping: watch::Receiver<bool>,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// An app in the settings is not valid ([AUTH-1.1]).
    #[error("app {id:?}: {reason}")]
    App {
        /// The app id.
        id: String,
        /// What is wrong.
        reason: String,
    },
    /// The store could not be opened.
    #[error("store at {path}: {reason}")]
    Store {
        /// The data directory.
        path: String,
        /// What failed.
        reason: String,
    },
    /// Settings that cannot work together.
    #[error("settings: {0}")]
    Settings(String),
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
}

/// A running server.
pub struct Server {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    ws_addr: Option<SocketAddr>,
    admin_addr: Option<SocketAddr>,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl Server {
    /// Opens the store, binds the listeners and starts serving.
    pub async fn start(settings: Settings) -> Result<Server, StartError> {
        settings.check().map_err(StartError::Settings)?;
        let send_rate = settings.send_rate().map_err(StartError::Settings)?;
        let mut apps = HashMap::new();
        for app in &settings.apps {
            magpie_auth::validate_app_id(&app.id).map_err(|e| StartError::App {
                id: app.id.clone(),
                reason: e.to_string(),
            })?;
            let secret = AppSecret::new(app.secret.clone()).map_err(|e| StartError::App {
                id: app.id.clone(),
                reason: e.to_string(),
            })?;
            apps.insert(
                app.id.clone(),
                App {
                    secret,
                    policy: app.devices.clone(),
                },
            );
        }
        let store_error = |e: &dyn std::fmt::Display| StartError::Store {
            path: settings.data_dir.display().to_string(),
            reason: e.to_string(),
        };
        std::fs::create_dir_all(&settings.data_dir).map_err(|e| store_error(&e))?;
        let durability = match settings.durability {
            DurabilityMode::Immediate => magpie_store::Durability::Immediate,
            DurabilityMode::Relaxed => magpie_store::Durability::Relaxed,
        };
        let store_config = magpie_store::StoreConfig {
            durability,
            flush_interval: Duration::from_millis(settings.flush_interval_ms.max(1)),
            ..magpie_store::StoreConfig::new(settings.data_dir.join("store"))
        };
        let store: Arc<dyn Store> =
            magpie_store::open(&store_config).map_err(|e| store_error(&e))?;
        let committer = GroupCommitter::start(store.clone(), settings.max_commit_batch);
        let listener =
            TcpListener::bind(settings.listen)
                .await
                .map_err(|source| StartError::Listen {
                    addr: settings.listen,
                    source,
                })?;
        let local_addr = listener.local_addr().map_err(|source| StartError::Listen {
            addr: settings.listen,
            source,
        })?;
        let ws_listener = match settings.ws_listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| StartError::Listen { addr, source })?,
            ),
            None => None,
        };
        let ws_addr = ws_listener.as_ref().and_then(|l| l.local_addr().ok());
        let admin_listener = match settings.admin_listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| StartError::Listen { addr, source })?,
            ),
            None => None,
        };
        let admin_addr = admin_listener.as_ref().and_then(|l| l.local_addr().ok());
        #[allow(unused_mut)]
        let mut verify_policy = VerifyPolicy {
            clock_skew: settings.clock_skew_secs,
            max_ttl: Some(settings.max_token_ttl_secs),
        };
        #[cfg(feature = "faults")]
        if settings.faults.skip_token_time_check {
            verify_policy = VerifyPolicy {
                clock_skew: 1 << 40,
                max_ttl: None,
            };
        }
        let (stop, stopped) = watch::channel(false);
        let shared = Arc::new(Shared {
            session_config: Arc::new(settings.session_config()),
            settings,
            apps,
            store,
            committer,
            hub: Hub::default(),
            send_rates: rates::SendRates::new(send_rate),
            verify_policy,
            tracker: TaskTracker::new(),
            stopping: stopped.clone(),
        });
        let mut tasks = JoinSet::new();
        tasks.spawn(accept_loop(
            shared.clone(),
            listener,
            stopped.clone(),
            false,
        ));
        if let Some(l) = ws_listener {
            tasks.spawn(accept_loop(shared.clone(), l, stopped.clone(), true));
        }
        if let Some(l) = admin_listener {
            let app = admin::router(shared.clone());
            let mut stopped = stopped.clone();
            tasks.spawn(async move {
                let serve = axum::serve(l, app).with_graceful_shutdown(async move {
                    let _ = stopped.changed().await;
                });
                if let Err(e) = serve.await {
                    tracing::warn!("admin API stopped: {e}");
                }
            });
        }
        tasks.spawn(retention_loop(shared.clone(), stopped));
        tracing::info!(%local_addr, ?ws_addr, "magpied listening");
        Ok(Server {
            shared,
            local_addr,
            ws_addr,
            admin_addr,
            stop,
            tasks,
        })
    }

    /// The TCP address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The WebSocket address, if enabled.
    pub fn ws_addr(&self) -> Option<SocketAddr> {
        self.ws_addr
    }

    /// The admin API address, if enabled.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// Open sessions now.
    pub fn session_count(&self) -> usize {
        self.shared.hub.session_count()
    }

    /// Graceful shutdown ([SESSION-6.3]): stop accepting, close every connection with GOING_AWAY,
    /// wait for the connections to write their CLOSE, then let the committer finish what it has
    /// and release the store (so the same data directory can be opened again at once).
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
        self.shared.tracker.close();
        if tokio::time::timeout(Duration::from_secs(3), self.shared.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("connections still open after 3 s; closing anyway");
        }
        match Arc::try_unwrap(self.shared) {
            Ok(shared) => {
                let Shared {
                    committer, store, ..
                } = shared;
                drop(store);
                committer.close().await;
            }
            Err(_) => tracing::warn!("server state still shared at shutdown"),
        }
    }
}

async fn accept_loop(
    shared: Arc<Shared>,
    listener: TcpListener,
    mut stopped: watch::Receiver<bool>,
    ws: bool,
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                // The task is `serve` itself, not a block around it: a wrapper future would
                // keep its own copy of the arguments in every idle connection's task.
                shared
                    .tracker
                    .spawn(conn::serve(shared.clone(), stream, ws));
            }
            _ = stopped.changed() => return,
        }
    }
}

/// Applies retention ([SYNC-8.1]) every `retention_interval_secs`.
async fn retention_loop(shared: Arc<Shared>, mut stopped: watch::Receiver<bool>) {
    let every = Duration::from_secs(shared.settings.retention_interval_secs.max(1));
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let s = &shared.settings;
                let result = shared.store.apply_retention(
                    unix_now_ms(),
                    s.retention_secs.saturating_mul(1000),
                    s.max_messages_per_conversation,
                );
                if let Err(e) = result {
                    tracing::warn!("retention failed: {e}");
                }
            }
            _ = stopped.changed() => return,
        }
    }
}
