//! What every handler shares.

use std::sync::Arc;

use crate::engine::Engine;

#[derive(Clone)]
pub struct AppState {
    pub engine: Arc<Engine>,
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// Bill runs started on this node, by id, for polling.
    pub bill_runs:
        Arc<dashmap::DashMap<String, Arc<std::sync::Mutex<crate::api::billing::BillRunOut>>>>,
    /// How those runs are run (`ServerConfig::bill_run`).
    pub bill_run: crate::app::bill_run::BillRunOptions,
    /// How webhooks are delivered (the endpoints' checks read it too).
    pub notify: Arc<crate::notify::NotifyConfig>,
    /// Failed dashboard sign-ins on this node (bounded attempts, docs/DASHBOARD.md).
    pub sign_in_throttle: Arc<crate::app::users::sign_in::Throttle>,
    /// The public pages' deployment settings and their forms' limiter (docs/DASHBOARD.md).
    pub public: Arc<PublicConfig>,
}

/// What the public pages need of the deployment.
pub struct PublicConfig {
    /// `ServerConfig::public_url`.
    pub url: Option<String>,
    pub limits: crate::app::public::limits::PublicLimits,
    pub limiter: crate::app::public::limits::Limiter,
}
