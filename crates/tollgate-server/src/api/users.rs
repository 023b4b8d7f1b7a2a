//! Operators of the dashboard: an admin key mints them (docs/DASHBOARD.md).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tollgate_core::ids::WorkspaceId;
use tollgate_store::users::OperatorUserRecord;

use crate::api::body::JsonBody;
use crate::api::error::ApiResult;
use crate::app::users::create as app;
use crate::auth::Principal;
use crate::state::AppState;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserIn {
    /// Signs in with it; unique per workspace, compared lower-cased.
    pub email: String,
    /// 12 to 256 characters; stored as an Argon2id hash only.
    pub password: String,
    /// `admin`, `billing` or `read_only`.
    pub role: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct UserOut {
    pub id: String,
    pub email: String,
    pub role: String,
    #[schema(value_type = String)]
    pub created_at: Timestamp,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct UserList {
    pub data: Vec<UserOut>,
}

fn out(user: OperatorUserRecord) -> UserOut {
    UserOut {
        id: user.id,
        email: user.email,
        role: user.role,
        created_at: user.created_at,
    }
}

/// Creates an operator
///
/// A person who signs in to the dashboard at `/admin/login` with the workspace id, this email
/// and password. Roles: `admin` (everything), `billing` (also pays, voids and credits invoices),
/// `read_only` (looks only).
#[utoipa::path(post, path = "/v1/users", operation_id = "users_create", request_body = UserIn,
    responses(
        (status = 201, description = "Created", body = UserOut),
        (status = 400, description = "`invalid_role`, `invalid_password` or `invalid_email`", body = crate::api::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin key", body = crate::api::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "The workspace has a user with this email (`already_exists`)", body = crate::api::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn create(
    State(state): State<AppState>,
    caller: Principal,
    body: JsonBody<UserIn>,
) -> ApiResult<(StatusCode, Json<UserOut>)> {
    let workspace = caller.require_admin()?;
    let JsonBody(input) = body;
    let user = app::create_user(
        &state.engine,
        workspace,
        app::NewUser {
            email: input.email,
            password: input.password,
            role: input.role,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(out(user))))
}

/// Lists the operators
///
/// The workspace's operators, by email (never their password hashes).
#[utoipa::path(get, path = "/v1/users", operation_id = "users_list",
    responses((status = 200, description = "OK", body = UserList)))]
pub async fn list(State(state): State<AppState>, caller: Principal) -> ApiResult<Json<UserList>> {
    let workspace = WorkspaceId::from(caller.require_admin()?);
    let users = state.engine.store().list_operator_users(&workspace).await?;
    Ok(Json(UserList {
        data: users.into_iter().map(out).collect(),
    }))
}
