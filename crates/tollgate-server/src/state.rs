//! What every handler shares.

use std::sync::Arc;

use crate::engine::Engine;

#[derive(Clone)]
pub struct AppState {
    pub engine: Arc<Engine>,
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
}
