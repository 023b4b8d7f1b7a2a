//! Customer API keys: created with the secret shown once, listed by prefix, revoked at once.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tollgate_core::ids::{CustomerId, KeyId, WorkspaceId};
use tollgate_store::ApiKeyRecord;

use crate::api::error::ApiResult;
use crate::app::customers as app;
use crate::auth::Principal;
use crate::state::AppState;

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyIn {
    pub name: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct KeyOut {
    pub id: String,
    pub customer: String,
    pub name: Option<String>,
    /// The first characters of the secret, to recognise the key.
    pub prefix: String,
    /// The secret: present only in the answer that created the key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[schema(value_type = String)]
    pub created_at: Timestamp,
    #[schema(value_type = Option<String>)]
    pub revoked_at: Option<Timestamp>,
}

/// The key as answered; `secret` only in the answer that made it.
pub fn key_out(key: ApiKeyRecord, secret: Option<String>) -> KeyOut {
    out(key, secret)
}

fn out(key: ApiKeyRecord, secret: Option<String>) -> KeyOut {
    KeyOut {
        id: key.id,
        customer: key.customer,
        name: key.name,
        prefix: key.prefix,
        secret,
        created_at: key.created_at,
        revoked_at: key.revoked_at,
    }
}

#[utoipa::path(post, path = "/v1/customers/{id}/keys", operation_id = "keys_create", params(("id" = String, Path)), request_body = KeyIn,
    responses((status = 201, description = "Created", body = KeyOut)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Principal,
    Path(customer): Path<String>,
    body: crate::api::body::OptionalJsonBody<KeyIn>,
) -> ApiResult<(StatusCode, Json<KeyOut>)> {
    let workspace = caller.require_admin()?;
    let name = body.0.and_then(|b| b.name);
    let key = app::create_key(&state.engine, workspace, &customer, name).await?;
    Ok((StatusCode::CREATED, Json(out(key.record, Some(key.secret)))))
}

#[utoipa::path(get, path = "/v1/customers/{id}/keys", operation_id = "keys_list", params(("id" = String, Path), crate::api::page::PageQuery),
    responses((status = 200, description = "A page of the customer's keys, oldest first", body = crate::api::page::Page<KeyOut>), (status = 400, description = "Bad `limit` or `starting_after`", body = crate::api::error::Problem, content_type = "application/problem+json")))]
pub async fn list(
    State(state): State<AppState>,
    caller: Principal,
    Path(customer): Path<String>,
    crate::api::page::Params(page): crate::api::page::Params<crate::api::page::PageQuery>,
) -> ApiResult<Json<crate::api::page::Page<KeyOut>>> {
    let workspace = caller.require_customer(&customer)?;
    super::customers::must_exist(&state, workspace, &customer).await?;
    let keys = state
        .engine
        .store()
        .list_api_keys(&WorkspaceId::from(workspace), &CustomerId::from(&customer))
        .await?;
    let keys = crate::api::page::page_of(keys, |k| k.id.as_str(), &page)?;
    Ok(Json(keys.map(|k| out(k, None))))
}

/// Revokes a key; it is refused from the next request on.
#[utoipa::path(post, path = "/v1/customers/{id}/keys/{key}/revoke", operation_id = "keys_revoke", params(("id" = String, Path), ("key" = String, Path)),
    responses((status = 200, description = "OK", body = KeyOut)))]
pub async fn revoke(
    State(state): State<AppState>,
    caller: Principal,
    Path((customer, key)): Path<(String, String)>,
) -> ApiResult<Json<KeyOut>> {
    let workspace = WorkspaceId::from(caller.require_admin()?);
    let record = app::revoke_key(
        &state.engine,
        &workspace,
        &CustomerId::from(customer),
        &KeyId::from(key),
    )
    .await?;
    Ok(Json(out(record, None)))
}
