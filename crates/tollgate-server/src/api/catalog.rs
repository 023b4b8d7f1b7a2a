//! The catalog as code: apply a new version, read the current one.
//!
//! Applying never changes what existing subscriptions pay: they keep the version they were
//! created on until they are moved.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use tollgate_core::catalog::{self, CatalogErrors};
use tollgate_core::code::Code;

use crate::api::error::{ApiError, ApiResult, FieldError};
use crate::auth::Principal;
use crate::state::AppState;

#[derive(Serialize, utoipa::ToSchema)]
pub struct CatalogOut {
    pub version: i64,
    /// The catalog in the file's shape (plans resolved, `extends` written out): `PUT` it back
    /// as it is and the same catalog is applied.
    #[schema(value_type = Object)]
    pub catalog: serde_json::Value,
    /// What changed against the previous version (on apply).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<String>,
}

pub(crate) fn invalid(errors: CatalogErrors) -> ApiError {
    let fields: Vec<FieldError> = errors
        .0
        .iter()
        .map(|e| FieldError {
            path: e.path.clone(),
            message: e.message.clone(),
        })
        .collect();
    ApiError::validation(format!("the catalog has {} error(s)", fields.len()), fields)
        .with_code(Code::InvalidCatalog)
}

/// Applies a catalog: a JSON catalog in the file's shape, or `{"yaml": "<file text>"}`.
#[utoipa::path(put, path = "/v1/catalog", operation_id = "catalog_apply", request_body(description = "A catalog in the file's shape as JSON, or {\"yaml\": text}, or the YAML file itself with Content-Type: application/yaml", content(
        (Object = "application/json"),
        (String = "application/yaml"),
    )),
    responses((status = 200, description = "OK", body = CatalogOut), (status = 422, description = "Validation failed, with every mistake and its path", body = crate::api::error::Problem, content_type = "application/problem+json")))]
pub async fn apply(
    State(state): State<AppState>,
    caller: Principal,
    body: crate::api::body::CatalogBody,
) -> ApiResult<Json<CatalogOut>> {
    let workspace = caller.require_admin()?;
    // Parsing is CPU work bounded by size and depth (`catalog::MAX_CATALOG_BYTES`, `..._DEPTH`);
    // it runs off the async workers so one tenant's large file never stalls other requests.
    let parsed = tokio::task::spawn_blocking(move || match body {
        crate::api::body::CatalogBody::Yaml(text) => catalog::parse_yaml(&text),
        crate::api::body::CatalogBody::Json(body) => {
            match body.get("yaml").and_then(|y| y.as_str()) {
                Some(text) if body.as_object().is_some_and(|o| o.len() == 1) => {
                    catalog::parse_yaml(text)
                }
                _ => catalog::from_json_value(body),
            }
        }
    })
    .await
    .map_err(ApiError::internal)?;
    let new = parsed.map_err(invalid)?;
    let previous = state.engine.latest_catalog(workspace).await?;
    let changes = match &previous {
        Some(old) => catalog::diff(&old.catalog, &new)
            .iter()
            .map(ToString::to_string)
            .collect(),
        None => Vec::new(),
    };
    let compiled = state.engine.apply_catalog(workspace, new).await?;
    Ok(Json(CatalogOut {
        version: compiled.version,
        catalog: catalog::to_json(&compiled.catalog),
        changes,
    }))
}

#[utoipa::path(get, path = "/v1/catalog", operation_id = "catalog_current", responses((status = 200, description = "OK", body = CatalogOut), (status = 404, description = "Not found", body = crate::api::error::Problem, content_type = "application/problem+json")))]
pub async fn current(
    State(state): State<AppState>,
    caller: Principal,
) -> ApiResult<Json<CatalogOut>> {
    let workspace = caller.require_admin()?;
    let compiled = state
        .engine
        .latest_catalog(workspace)
        .await?
        .ok_or_else(|| ApiError::not_found("catalog", workspace).with_code(Code::NoCatalog))?;
    Ok(Json(CatalogOut {
        version: compiled.version,
        catalog: catalog::to_json(&compiled.catalog),
        changes: Vec::new(),
    }))
}
