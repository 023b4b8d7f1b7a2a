//! `tollgate serve`: runs the server until Ctrl-C or SIGTERM, then shuts down gracefully. With a
//! `[gateway]` section in its config file (or as `tollgate gateway`), the metering gateway runs
//! beside it on its own port, sharing the server's engine: one process, one set of counters.
//!
//! Graceful means: stop accepting, let in-flight requests finish (an acknowledged event is
//! already durable, so nothing is lost either way). A second signal during the drain exits at
//! once, for the operator whose client holds a connection open forever.

use std::io::ErrorKind;

use anyhow::Context;
use tollgate_server::gateway::{GatewayConfig, GatewayError, RunningGateway, start_gateway};
use tollgate_server::{RunningServer, ServerConfig, ServerError};

/// Starts the server (and the gateway, when configured) and serves until a shutdown signal.
pub async fn run(config: ServerConfig, gateway: Option<GatewayConfig>) -> anyhow::Result<()> {
    let store = match &config.database_url {
        Some(_) => "PostgreSQL".to_string(),
        None => format!("SQLite in {}", config.data_dir.display()),
    };
    if config.admin_key.is_none() {
        tracing::warn!(
            "no TOLLGATE_ADMIN_KEY set: admin keys already in the store still work, but a new store has none"
        );
    }
    let server = start(config).await?;
    let Some(gateway) = gateway else {
        tracing::info!("serving http://{} ({store}); Ctrl-C to stop", server.addr);
        shutdown_signal().await?;
        stop(server).await?;
        tracing::info!("stopped");
        return Ok(());
    };
    let upstream = gateway
        .upstream
        .uri
        .to_string()
        .trim_end_matches('/')
        .to_owned();
    let routes = gateway.routes.len();
    let gateway = match start_gateway(server.state.engine.clone(), gateway).await {
        Ok(gateway) => gateway,
        Err(e) => {
            let _ = server.stop().await;
            return Err(explain_gateway(e));
        }
    };
    // On stdout, not in the log: the two addresses are what the operator (or a script) needs,
    // and with port 0 in the config this is the only place they show.
    println!("API      http://{} ({store})", server.addr);
    println!(
        "gateway  http://{} -> {upstream} ({routes} route{})",
        gateway.addr,
        if routes == 1 { "" } else { "s" }
    );
    println!("Ctrl-C to stop");
    shutdown_signal().await?;
    stop_both(gateway, server).await?;
    tracing::info!("stopped");
    Ok(())
}

/// Stops the gateway first (no new proxied requests; those in flight finish and their usage is
/// written through the still-open engine), then the API; a second signal exits at once.
async fn stop_both(gateway: RunningGateway, server: RunningServer) -> anyhow::Result<()> {
    tracing::info!("shutting down: finishing in-flight requests (signal again to exit now)");
    let both = async {
        let gateway = gateway.stop().await;
        let server = server.stop().await;
        gateway.context("the gateway stopped with an error")?;
        server.context("the server stopped with an error")
    };
    tokio::select! {
        result = both => result,
        _ = shutdown_signal() => {
            tracing::warn!("second signal: exiting without waiting");
            Ok(())
        }
    }
}

/// A gateway start failure, worded like the server's.
fn explain_gateway(error: GatewayError) -> anyhow::Error {
    match &error {
        GatewayError::Bind { addr, source } if source.kind() == ErrorKind::AddrInUse => {
            anyhow::anyhow!(
                "the gateway's port {} on {} is already in use; change `listen` in the [gateway] section",
                addr.port(),
                addr.ip()
            )
        }
        _ => anyhow::Error::new(error).context("cannot start the gateway"),
    }
}

/// [`tollgate_server::start`] with errors a user can act on.
pub async fn start(config: ServerConfig) -> anyhow::Result<RunningServer> {
    tollgate_server::start(config).await.map_err(explain)
}

/// Turns a start failure into a message that says what to do about it.
fn explain(error: ServerError) -> anyhow::Error {
    match &error {
        ServerError::Bind { addr, source } if source.kind() == ErrorKind::AddrInUse => {
            anyhow::anyhow!(
                "port {} on {} is already in use (is another tollgate running?); choose another with --listen",
                addr.port(),
                addr.ip()
            )
        }
        ServerError::Bind { addr, source } if source.kind() == ErrorKind::PermissionDenied => {
            anyhow::anyhow!(
                "not allowed to listen on {addr} (ports below 1024 need privileges); choose another with --listen"
            )
        }
        _ => anyhow::Error::new(error).context("cannot start the server"),
    }
}

/// Stops the server, draining in-flight requests, unless a second signal says not to wait.
pub async fn stop(server: RunningServer) -> anyhow::Result<()> {
    tracing::info!("shutting down: finishing in-flight requests (signal again to exit now)");
    tokio::select! {
        result = server.stop() => result.context("the server stopped with an error"),
        _ = shutdown_signal() => {
            tracing::warn!("second signal: exiting without waiting");
            Ok(())
        }
    }
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM (what `docker stop` and systemd send).
#[cfg(unix)]
pub async fn shutdown_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.context("cannot listen for Ctrl-C"),
        _ = term.recv() => Ok(()),
    }
}

/// Resolves on Ctrl-C.
#[cfg(not(unix))]
pub async fn shutdown_signal() -> anyhow::Result<()> {
    tokio::signal::ctrl_c()
        .await
        .context("cannot listen for Ctrl-C")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_taken_port_is_named_with_a_way_out() {
        let error = ServerError::Bind {
            addr: "127.0.0.1:8080".parse().unwrap(),
            source: std::io::Error::from(ErrorKind::AddrInUse),
        };
        let message = format!("{:#}", explain(error));
        assert!(message.contains("port 8080"), "{message}");
        assert!(message.contains("--listen"), "{message}");
    }
}
