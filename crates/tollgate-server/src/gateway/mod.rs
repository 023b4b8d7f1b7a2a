//! The metering gateway: a reverse proxy in front of the operator's app that authenticates the
//! customer's key, enforces its plan, forwards, and meters each request (and the LLM tokens of
//! OpenAI-compatible answers), so the app needs no code for any of it.
//!
//! It runs on its own port next to the API and shares the API's [`Engine`], so its checks are
//! the same in-memory decisions and its usage lands in the same counters and store.
//!
//! - `config`: the `[gateway]` section (routes, upstream, timeouts, token metering);
//! - `routes`: path patterns and first-match routing;
//! - `proxy`: one request, from the key to the streamed answer;
//! - `refusal`: the problem+json answers (401, 402, 403, 429, 502, 504);
//! - `openai`: reading token usage from JSON and SSE answers as they stream past.
//!
//! See `docs/GATEWAY.md` for the operator's view.

pub mod config;
pub mod openai;
pub mod proxy;
pub mod refusal;
pub mod routes;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::serve::ListenerExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

pub use config::{GatewayConfig, OpenAiMetering, Route, Unmatched, Upstream};

use crate::engine::Engine;
use crate::engine::gateway_support::InFlight;
use proxy::Gateway;

/// How long an idle pooled connection to the upstream is kept.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("invalid gateway config: {0}")]
    Config(String),
    #[error("gateway cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("gateway: {0}")]
    Serve(std::io::Error),
}

/// A gateway bound to its port and serving in the background.
pub struct RunningGateway {
    pub addr: SocketAddr,
    shutdown: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), GatewayError>>,
}

impl RunningGateway {
    /// Stops accepting, lets in-flight requests (and their streams) finish, and returns.
    pub async fn stop(self) -> Result<(), GatewayError> {
        let _ = self.shutdown.send(());
        self.task.await.unwrap_or(Ok(()))
    }

    /// Waits until the gateway stops (it only stops on error or `stop`).
    pub async fn wait(self) -> Result<(), GatewayError> {
        let _keep_open = self.shutdown;
        self.task.await.unwrap_or(Ok(()))
    }
}

/// Validates the config, binds `config.listen` and serves in the background.
pub async fn start_gateway(
    engine: Arc<Engine>,
    config: GatewayConfig,
) -> Result<RunningGateway, GatewayError> {
    config.validate()?;
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(config.upstream_timeout));
    let client = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .build(connector);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| GatewayError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(GatewayError::Serve)?;
    // Answers are small and written as they come: Nagle's delay would only hold them back.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "gateway: TCP_NODELAY not set");
        }
    });
    let upstream = config.upstream.uri.clone();
    let usage = crate::engine::gateway_support::UsageWriter::start(engine.clone());
    let gateway = Arc::new(Gateway {
        usage,
        engine,
        openai: Arc::new(config.openai()),
        config,
        client,
        inflight: Arc::new(InFlight::default()),
        counters: proxy::Counters::register(),
    });
    let app = Router::new().fallback(proxy::handle).with_state(gateway);
    let (shutdown, signal) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = signal.await;
        })
        .await
        .map_err(GatewayError::Serve)
    });
    tracing::info!(%addr, %upstream, "tollgate gateway listening");
    Ok(RunningGateway {
        addr,
        shutdown,
        task,
    })
}
