//! The Tollgate service: the HTTP API under `/v1`, authentication, and the enforcement engine
//! that answers checks from memory.
//!
//! Layout: `api/` has one file per resource (handlers and their request/response types),
//! `engine/` the in-memory hot path, `error` the problem+json edge, `auth` keys and principals.

pub mod api;
pub mod app;
pub mod auth;
pub mod billing;
pub mod clock;
pub mod counters;
pub mod engine;
pub mod error;
pub mod gateway;
pub mod ids;
pub mod jobs;
pub mod notify;
pub mod providers;
pub mod sealing;
pub mod state;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use jiff::Timestamp;
use tollgate_store::{AdminKeyRecord, PostgresStore, SqliteStore, Store, WorkspaceRecord};

use crate::clock::{Clock, SystemClock};
use crate::engine::Engine;
use crate::state::AppState;

/// The workspace the bootstrap admin key belongs to.
pub const DEFAULT_WORKSPACE: &str = "ws_default";

/// How to run the server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Where the SQLite file lives when no database URL is given.
    pub data_dir: PathBuf,
    /// `postgres://...` to use PostgreSQL instead of the embedded SQLite file.
    pub database_url: Option<String>,
    /// The bootstrap admin key of the default workspace (`TOLLGATE_ADMIN_KEY`).
    pub admin_key: Option<String>,
    /// `redis://...` to share limit counters and invalidations with other nodes (see
    /// `docs/SCALING.md`); without it this node's memory decides alone.
    pub redis_url: Option<String>,
    /// What checks do while Redis is unreachable.
    pub redis_failure_mode: RedisFailureMode,
    /// The job worker of this node (renewals, trial ends, reminders; see `jobs`); `None` for a
    /// node that runs no jobs (test clocks still run theirs when advanced).
    pub jobs: Option<jobs::JobsConfig>,
    /// How webhooks are delivered (docs/WEBHOOKS.md).
    pub webhooks: notify::NotifyConfig,
    /// How email is sent (docs/EMAIL.md); `None`: this deployment sends no email.
    pub email: Option<notify::email::EmailConfig>,
    /// The master key that seals license signing keys (`TOLLGATE_MASTER_KEY`); without it the
    /// license features answer `master_key_missing`.
    pub master_key: Option<sealing::MasterKey>,
    /// How often the ledger seals new records and signs a checkpoint (docs/TRUST.md, "The
    /// ledger"); `None`: only on `POST /v1/ledger/seal`.
    pub ledger_interval: Option<std::time::Duration>,
    /// How long a customer's loaded state may go unused before this node forgets it (reloaded
    /// from the store on its next use; docs/SCALING.md, "Memory"); `None`: never.
    pub evict_idle_after: Option<std::time::Duration>,
    /// How payment providers are called (docs/PAYMENTS.md): Stripe's base URL, retries.
    pub payments: providers::PaymentsConfig,
    /// Where this deployment is reached from outside (`--public-url https://billing.example.com`):
    /// the origin of the portal sign-in links sent by email for requests that came through no
    /// custom domain. `None`: only custom domains' sign-in pages send links (a Host header alone
    /// is never trusted to say where a link should point).
    pub public_url: Option<String>,
    /// How often the public forms (hosted signup, portal sign-in) may be posted.
    pub public_limits: app::public::limits::PublicLimits,
    /// How `POST /v1/bill_runs` runs (its workers on PostgreSQL; docs/OPERATIONS.md).
    pub bill_run: app::bill_run::BillRunOptions,
}

pub use counters::FailureMode as RedisFailureMode;

impl ServerConfig {
    /// One node on SQLite in `data_dir`, no admin key, no Redis: set the other fields as needed
    /// (`ServerConfig { database_url, ..ServerConfig::new(listen, dir) }`).
    pub fn new(listen: SocketAddr, data_dir: impl Into<PathBuf>) -> Self {
        ServerConfig {
            listen,
            data_dir: data_dir.into(),
            database_url: None,
            admin_key: None,
            redis_url: None,
            redis_failure_mode: RedisFailureMode::default(),
            jobs: Some(jobs::JobsConfig::default()),
            webhooks: notify::NotifyConfig::default(),
            email: None,
            master_key: None,
            ledger_interval: Some(std::time::Duration::from_secs(10)),
            evict_idle_after: Some(std::time::Duration::from_secs(3_600)),
            payments: providers::PaymentsConfig::default(),
            public_url: None,
            public_limits: Default::default(),
            bill_run: Default::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("store: {0}")]
    Store(#[from] tollgate_store::StoreError),
    #[error("cannot create data dir {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("server: {0}")]
    Serve(std::io::Error),
    #[error("the admin key must start with `{prefix}` and be at least 24 characters")]
    BadAdminKey { prefix: &'static str },
    #[error("invalid Redis URL: {0}")]
    Redis(counters::CounterError),
}

/// A server bound to its port and serving in the background.
pub struct RunningServer {
    pub addr: SocketAddr,
    pub state: AppState,
    shutdown: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), ServerError>>,
    jobs: Option<tokio::task::JoinHandle<()>>,
    /// The webhook worker, stopped with the server.
    notifier: Option<tokio::task::JoinHandle<()>>,
    /// The ledger's sealing loop, stopped with the server.
    sealer: Option<tokio::task::JoinHandle<()>>,
    /// The email worker, stopped with the server.
    mailer: Option<tokio::task::JoinHandle<()>>,
    /// The loop that forgets idle customers' state, stopped with the server.
    evictor: Option<tokio::task::JoinHandle<()>>,
}

impl RunningServer {
    /// Stops accepting, finishes in-flight requests, and returns.
    pub async fn stop(self) -> Result<(), ServerError> {
        for worker in [
            &self.jobs,
            &self.notifier,
            &self.sealer,
            &self.mailer,
            &self.evictor,
        ]
        .into_iter()
        .flatten()
        {
            worker.abort();
        }
        let _ = self.shutdown.send(());
        self.task.await.unwrap_or(Ok(()))
    }

    /// Waits until the server stops (it only stops on error or `stop`).
    pub async fn wait(self) -> Result<(), ServerError> {
        let _keep_open = self.shutdown;
        self.task.await.unwrap_or(Ok(()))
    }
}

/// Opens the configured store (running migrations).
pub async fn open_store(config: &ServerConfig) -> Result<Arc<dyn Store>, ServerError> {
    Ok(match &config.database_url {
        Some(url) => Arc::new(PostgresStore::connect(url).await?),
        None => {
            std::fs::create_dir_all(&config.data_dir).map_err(|source| ServerError::DataDir {
                path: config.data_dir.clone(),
                source,
            })?;
            Arc::new(SqliteStore::open(&config.data_dir.join("tollgate.db")).await?)
        }
    })
}

/// Makes sure the default workspace exists and the bootstrap admin key opens it.
pub async fn bootstrap(
    store: &dyn Store,
    admin_key: Option<&str>,
    now: Timestamp,
) -> Result<(), ServerError> {
    if store.get_workspace(DEFAULT_WORKSPACE).await?.is_none() {
        let ws = WorkspaceRecord {
            id: DEFAULT_WORKSPACE.into(),
            name: "Default".into(),
            created_at: now,
        };
        match store.create_workspace(&ws).await {
            Ok(()) | Err(tollgate_store::StoreError::AlreadyExists { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    if let Some(key) = admin_key {
        if !key.starts_with(auth::ADMIN_KEY_PREFIX) || key.len() < 24 {
            return Err(ServerError::BadAdminKey {
                prefix: auth::ADMIN_KEY_PREFIX,
            });
        }
        let record = AdminKeyRecord {
            workspace: DEFAULT_WORKSPACE.into(),
            id: "ak_bootstrap".into(),
            secret_hash: auth::hash_secret(key),
            created_at: now,
        };
        store.put_admin_key(&record).await?;
    }
    Ok(())
}

/// Opens the store, bootstraps, binds and serves in the background.
pub async fn start(config: ServerConfig) -> Result<RunningServer, ServerError> {
    start_with_clock(config, Arc::new(SystemClock)).await
}

/// [`start`] with an injected clock (tests move time with it).
pub async fn start_with_clock(
    config: ServerConfig,
    clock: Arc<dyn Clock>,
) -> Result<RunningServer, ServerError> {
    let store = open_store(&config).await?;
    bootstrap(store.as_ref(), config.admin_key.as_deref(), clock.now()).await?;
    let mut engine = Engine::new(store, clock);
    if let Some(url) = &config.redis_url {
        let counters = counters::RedisCounters::new(url, config.redis_failure_mode)
            .map_err(ServerError::Redis)?;
        engine = engine.with_shared_counters(counters);
        tracing::info!(failure_mode = %config.redis_failure_mode, "limit counters and invalidations shared through Redis");
    }
    if let Some(key) = config.master_key.clone() {
        engine = engine.with_master_key(key);
    }
    engine = engine.with_payments(config.payments.clone());
    let engine = Arc::new(engine);
    engine.start_propagation();
    let state = AppState {
        engine,
        metrics: api::metrics::install_recorder(),
        bill_runs: Default::default(),
        bill_run: config.bill_run,
        notify: Arc::new(config.webhooks.clone()),
        sign_in_throttle: Default::default(),
        public: Arc::new(state::PublicConfig {
            url: config.public_url.clone(),
            limits: config.public_limits,
            limiter: Default::default(),
        }),
    };
    let notifier = config.webhooks.poll_interval.map(|interval| {
        tokio::spawn(notify::run_forever(
            state.engine.clone(),
            config.webhooks.clone(),
            interval,
        ))
    });
    let sealer = config
        .ledger_interval
        .map(|interval| tokio::spawn(jobs::ledger::run_forever(state.engine.clone(), interval)));
    let evictor = config.evict_idle_after.map(|idle| {
        // Looked at a few times per idle time, at most once a minute.
        let every = (idle / 4).min(std::time::Duration::from_secs(60));
        tokio::spawn(state.engine.clone().evict_idle_forever(idle, every))
    });
    let mailer = config.email.clone().and_then(|email| {
        let interval = email.poll_interval?;
        Some(tokio::spawn(notify::email::run_forever(
            state.engine.clone(),
            email,
            interval,
        )))
    });
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServerError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(ServerError::Serve)?;
    let app = api::router(state.clone());
    let (shutdown, signal) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        // The peer's address bounds the public forms per client (app/public/limits.rs).
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = signal.await;
        })
        .await
        .map_err(ServerError::Serve)
    });
    tracing::info!(%addr, backend = state.engine.store().backend(), "tollgate listening");
    let jobs = config
        .jobs
        .clone()
        .map(|jobs| jobs::spawn(state.engine.clone(), jobs));
    Ok(RunningServer {
        addr,
        state,
        shutdown,
        task,
        jobs,
        notifier,
        sealer,
        mailer,
        evictor,
    })
}
