//! Liveness.

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use crate::state::AppState;

#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    pub status: &'static str,
    pub store: &'static str,
    pub version: &'static str,
}

#[utoipa::path(get, path = "/healthz", operation_id = "health_healthz", responses((status = 200, description = "OK", body = Health)))]
pub async fn healthz(State(state): State<AppState>) -> Json<Health> {
    Json(Health {
        status: "ok",
        store: state.engine.store().backend(),
        version: env!("CARGO_PKG_VERSION"),
    })
}
