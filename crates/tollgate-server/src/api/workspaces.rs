//! Workspaces: each holds its own catalog, customers and keys. The default workspace's admin
//! creates others (an agency's white-label workspace, a demo business).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use tollgate_core::code::Code;
use tollgate_store::{AdminKeyRecord, WorkspaceRecord};

use super::{new_id, valid_id};
use crate::api::error::{ApiError, ApiResult};
use crate::auth::{ADMIN_KEY_PREFIX, Principal, generate_secret, hash_secret};
use crate::state::AppState;

#[derive(Deserialize, utoipa::ToSchema)]
pub struct WorkspaceIn {
    pub id: Option<String>,
    pub name: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct WorkspaceOut {
    pub id: String,
    pub name: String,
    /// The new workspace's admin key. Shown once; only its hash is stored.
    pub admin_key: String,
}

#[utoipa::path(post, path = "/v1/workspaces", operation_id = "workspaces_create", request_body = WorkspaceIn,
    responses((status = 201, description = "Created", body = WorkspaceOut), (status = 403, description = "The key may not do this", body = crate::api::error::Problem, content_type = "application/problem+json")))]
pub async fn create(
    State(state): State<AppState>,
    caller: Principal,
    body: crate::api::body::JsonBody<WorkspaceIn>,
) -> ApiResult<(StatusCode, Json<WorkspaceOut>)> {
    let ws = caller.require_admin()?;
    if ws != crate::DEFAULT_WORKSPACE {
        return Err(ApiError::forbidden(
            "only the default workspace's admin creates workspaces",
        ));
    }
    let crate::api::body::JsonBody(body) = body;
    let id = body.id.unwrap_or_else(|| new_id("ws"));
    if !valid_id(&id) {
        return Err(ApiError::bad_request(
            Code::InvalidId,
            format!("workspace id {id:?} is not valid"),
        ));
    }
    let now = state.engine.now();
    let store = state.engine.store();
    store
        .create_workspace(&WorkspaceRecord {
            id: id.clone(),
            name: body.name.clone(),
            created_at: now,
        })
        .await?;
    let admin_key = generate_secret(ADMIN_KEY_PREFIX);
    store
        .put_admin_key(&AdminKeyRecord {
            workspace: id.clone(),
            id: new_id("ak"),
            secret_hash: hash_secret(&admin_key),
            created_at: now,
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(WorkspaceOut {
            id,
            name: body.name,
            admin_key,
        }),
    ))
}
