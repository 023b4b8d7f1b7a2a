//! The dashboard's operators page (`/admin/users`, admins only): the workspace's operators, a
//! form to add one (email, role, initial password), and per operator a role change and a removal.
//! Each form calls a use case of `app/users/`; a refusal (a bad email, a short password, the last
//! admin) re-renders the page with its message and what was typed, success redirects (303).

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};
use tollgate_core::ids::WorkspaceId;

use super::admin::{base, error_page, merge, refuse_csrf, signed_in};
use super::{page, see_other};
use crate::api::error::ApiError;
use crate::app::users::{Role, create, remove, set_role};
use crate::error::Error;
use crate::state::AppState;

/// The roles as the forms offer them.
const ROLES: [&str; 3] = ["admin", "billing", "read_only"];

fn forbidden() -> Response {
    error_page(&Error::forbidden(
        "only admins manage the workspace's operators",
    ))
}

/// What the page shows beside the list: a done message, a refusal and the add form's values.
#[derive(Default)]
struct Shown {
    status: Option<StatusCode>,
    done: Option<String>,
    error: Option<String>,
    email: String,
    role: String,
}

async fn users_page(state: &AppState, headers: &HeaderMap, shown: Shown) -> Response {
    let operator = match signed_in(state, headers).await {
        Ok(o) => o,
        Err(r) => return r,
    };
    if operator.role != Role::Admin {
        return forbidden();
    }
    let ws = WorkspaceId::from(operator.user.workspace.as_str());
    let users = match state.engine.store().list_operator_users(&ws).await {
        Ok(u) => u,
        Err(e) => return error_page(&e.into()),
    };
    let rows: Vec<Value> = users
        .iter()
        .map(|u| {
            json!({
                "id": u.id, "email": u.email, "role": u.role,
                "created_at": u.created_at.strftime("%Y-%m-%d %H:%M UTC").to_string(),
                "me": u.id == operator.user.id,
            })
        })
        .collect();
    let role = if shown.role.is_empty() {
        "read_only".to_owned()
    } else {
        shown.role
    };
    page(
        shown.status.unwrap_or(StatusCode::OK),
        "users.html",
        merge(
            base(&operator, "users"),
            json!({
                "users": rows, "roles": ROLES, "done": shown.done, "error": shown.error,
                "email": shown.email, "role": role,
                "admins": users.iter().filter(|u| u.role == "admin").count().to_string(),
            }),
        ),
    )
}

#[derive(Deserialize, Default)]
pub struct DoneQuery {
    done: Option<String>,
}

/// `GET /admin/users`.
pub async fn users(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<DoneQuery>,
) -> Response {
    // The message after a redirect names what was done, never anything typed.
    let done = match query.done.as_deref() {
        Some("added") => Some("The operator was added: it signs in with the password you set."),
        Some("role") => Some("The role was changed."),
        Some("removed") => Some("The operator was removed and signed out."),
        _ => None,
    };
    let shown = Shown {
        done: done.map(str::to_owned),
        ..Shown::default()
    };
    users_page(&state, &headers, shown).await
}

/// A refusal as the page again, with the status of its kind.
async fn refused(
    state: &AppState,
    headers: &HeaderMap,
    e: Error,
    email: &str,
    role: &str,
) -> Response {
    let api = ApiError::from(Error::new(e.kind, e.code, e.detail.clone()));
    if api.status.is_server_error() {
        return error_page(&e);
    }
    let shown = Shown {
        status: Some(api.status),
        error: Some(e.detail),
        email: email.to_owned(),
        role: role.to_owned(),
        ..Shown::default()
    };
    users_page(state, headers, shown).await
}

#[derive(Deserialize)]
pub struct AddForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    password: String,
}

/// `POST /admin/users`: adds an operator (`app::users::create`, as `POST /v1/users`).
pub async fn add(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<AddForm>,
) -> Response {
    let operator = match signed_in(&state, &headers).await {
        Ok(o) => o,
        Err(r) => return r,
    };
    if let Some(r) = refuse_csrf(&operator, &form.csrf) {
        return r;
    }
    if operator.role != Role::Admin {
        return forbidden();
    }
    let input = create::NewUser {
        email: form.email.clone(),
        password: form.password,
        role: form.role.clone(),
    };
    match create::create_user(&state.engine, &operator.user.workspace, input).await {
        Ok(_) => see_other("/admin/users?done=added"),
        Err(e) => refused(&state, &headers, e, &form.email, &form.role).await,
    }
}

#[derive(Deserialize)]
pub struct RoleForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    role: String,
}

/// `POST /admin/users/{id}/role`: changes a role (`app::users::set_role`).
pub async fn change_role(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<RoleForm>,
) -> Response {
    let operator = match signed_in(&state, &headers).await {
        Ok(o) => o,
        Err(r) => return r,
    };
    if let Some(r) = refuse_csrf(&operator, &form.csrf) {
        return r;
    }
    if operator.role != Role::Admin {
        return forbidden();
    }
    let workspace = operator.user.workspace.as_str();
    match set_role::set_role(&state.engine, workspace, &id, &form.role).await {
        // An admin who demoted itself may no longer see this page.
        Ok(_) if id == operator.user.id && form.role != "admin" => see_other("/admin"),
        Ok(_) => see_other("/admin/users?done=role"),
        Err(e) => refused(&state, &headers, e, "", "").await,
    }
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

/// `POST /admin/users/{id}/remove`: removes an operator and its sessions (`app::users::remove`).
pub async fn remove_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<CsrfOnly>,
) -> Response {
    let operator = match signed_in(&state, &headers).await {
        Ok(o) => o,
        Err(r) => return r,
    };
    if let Some(r) = refuse_csrf(&operator, &form.csrf) {
        return r;
    }
    if operator.role != Role::Admin {
        return forbidden();
    }
    match remove::remove(&state.engine, &operator.user.workspace, &id).await {
        // Removing oneself ends one's own session too.
        Ok(_) if id == operator.user.id => see_other("/admin/login"),
        Ok(_) => see_other("/admin/users?done=removed"),
        Err(e) => refused(&state, &headers, e, "", "").await,
    }
}
