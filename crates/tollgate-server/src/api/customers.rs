//! Customers: create, read, update, archive, suspend, and their usage.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tollgate_core::code::Code;
use tollgate_core::ids::WorkspaceId;
use tollgate_store::CustomerRecord;

use super::{new_id, valid_id};
use crate::api::error::{ApiError, ApiResult};
use crate::app::customers::profile::{Address, TaxId};
use crate::auth::Principal;
use crate::engine::UsageReport;
use crate::state::AppState;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerIn {
    /// Your id for the customer (events name it); generated (`cus_...`) if absent.
    pub id: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    /// A test clock the customer follows instead of the wall clock.
    pub test_clock: Option<String>,
    #[serde(default)]
    pub has_payment_method: bool,
    /// Your own key/value data; a JSON object.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CustomerOut {
    pub id: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub suspended: bool,
    pub has_payment_method: bool,
    pub test_clock: Option<String>,
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
    #[schema(value_type = String)]
    pub created_at: Timestamp,
    /// Postal address, `null` when none.
    #[schema(value_type = Option<Address>)]
    pub address: serde_json::Value,
    #[schema(value_type = Vec<TaxId>)]
    pub tax_ids: serde_json::Value,
    /// When the customer was archived (`DELETE /v1/customers/{id}`); `null` while it is not.
    #[schema(value_type = Option<String>)]
    pub archived_at: Option<Timestamp>,
}

impl From<CustomerRecord> for CustomerOut {
    fn from(c: CustomerRecord) -> Self {
        CustomerOut {
            id: c.id,
            name: c.name,
            email: c.email,
            suspended: c.suspended,
            has_payment_method: c.has_payment_method,
            test_clock: c.test_clock,
            metadata: c.metadata,
            created_at: c.created_at,
            address: c.address,
            tax_ids: c.tax_ids,
            archived_at: c.archived_at,
        }
    }
}

#[utoipa::path(post, path = "/v1/customers", operation_id = "customers_create", request_body = CustomerIn,
    responses((status = 201, description = "Created", body = CustomerOut), (status = 409, description = "Conflicts with the stored state", body = crate::api::error::Problem, content_type = "application/problem+json")))]
pub async fn create(
    State(state): State<AppState>,
    caller: Principal,
    body: crate::api::body::JsonBody<CustomerIn>,
) -> ApiResult<(StatusCode, Json<CustomerOut>)> {
    let workspace = caller.require_admin()?;
    let crate::api::body::JsonBody(body) = body;
    let id = body.id.unwrap_or_else(|| new_id("cus"));
    if !valid_id(&id) {
        return Err(ApiError::bad_request(
            Code::InvalidId,
            format!("customer id {id:?}: use 1-128 letters, digits, `_-.:`"),
        ));
    }
    if let Some(clock) = &body.test_clock {
        state.engine.now_for(workspace, Some(clock)).await?;
    }
    let now = state
        .engine
        .now_for(workspace, body.test_clock.as_deref())
        .await?;
    let record = CustomerRecord {
        workspace: workspace.to_owned(),
        id,
        name: body.name,
        email: body.email,
        suspended: false,
        has_payment_method: body.has_payment_method,
        test_clock: body.test_clock,
        metadata: serde_json::Value::Object(body.metadata.unwrap_or_default()),
        created_at: now,
        address: serde_json::Value::Null,
        tax_ids: serde_json::Value::Array(Vec::new()),
        archived_at: None,
    };
    state.engine.store().create_customer(&record).await?;
    Ok((StatusCode::CREATED, Json(record.into())))
}

/// The workspace's customers, oldest first, a page at a time.
#[utoipa::path(get, path = "/v1/customers", operation_id = "customers_list", params(crate::api::page::PageQuery),
    responses((status = 200, description = "A page of customers, oldest first", body = crate::api::page::Page<CustomerOut>), (status = 400, description = "Bad `limit` or `starting_after`", body = crate::api::error::Problem, content_type = "application/problem+json")))]
pub async fn list(
    State(state): State<AppState>,
    caller: Principal,
    crate::api::page::Params(page): crate::api::page::Params<crate::api::page::PageQuery>,
) -> ApiResult<Json<crate::api::page::Page<CustomerOut>>> {
    let workspace = WorkspaceId::from(caller.require_admin()?);
    let limit = page.limit()?;
    let store = state.engine.store();
    let after = match &page.starting_after {
        None => None,
        Some(id) => Some(
            store
                .get_customer(&workspace, id)
                .await?
                .ok_or_else(|| crate::api::page::unknown_cursor(id))?,
        ),
    };
    let cursor = after.as_ref().map(|c| tollgate_store::After {
        at: c.created_at,
        id: &c.id,
    });
    let rows = store
        .customers_page(
            &workspace,
            cursor,
            i64::try_from(limit + 1).unwrap_or(i64::MAX),
        )
        .await?;
    Ok(Json(
        crate::api::page::Page::from_rows(rows, limit).map(Into::into),
    ))
}

#[utoipa::path(get, path = "/v1/customers/{id}", operation_id = "customers_get", params(("id" = String, Path)),
    responses((status = 200, description = "OK", body = CustomerOut), (status = 404, description = "Not found", body = crate::api::error::Problem, content_type = "application/problem+json")))]
pub async fn get(
    State(state): State<AppState>,
    caller: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<CustomerOut>> {
    let workspace = caller.require_customer(&id)?;
    let record = state
        .engine
        .store()
        .get_customer(&WorkspaceId::from(workspace), &id)
        .await?
        .ok_or_else(|| ApiError::not_found("customer", &id))?;
    Ok(Json(record.into()))
}

async fn set_suspended(
    state: &AppState,
    caller: &Principal,
    id: &str,
    suspended: bool,
) -> ApiResult<Json<CustomerOut>> {
    let workspace = caller.require_admin()?;
    let record =
        crate::app::customers::set_suspended(&state.engine, workspace, id, suspended).await?;
    Ok(Json(record.into()))
}

/// Suspends a customer: its keys are refused and its checks denied at once.
#[utoipa::path(post, path = "/v1/customers/{id}/suspend", operation_id = "customers_suspend", params(("id" = String, Path)), responses((status = 200, description = "OK", body = CustomerOut)))]
pub async fn suspend(
    State(state): State<AppState>,
    caller: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<CustomerOut>> {
    set_suspended(&state, &caller, &id, true).await
}

#[utoipa::path(post, path = "/v1/customers/{id}/unsuspend", operation_id = "customers_unsuspend", params(("id" = String, Path)), responses((status = 200, description = "OK", body = CustomerOut)))]
pub async fn unsuspend(
    State(state): State<AppState>,
    caller: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<CustomerOut>> {
    set_suspended(&state, &caller, &id, false).await
}

/// `Some(None)` for an explicit `null`, `None` for an absent field (with `#[serde(default)]`).
fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// The fields to change; an absent field is left as it is, `null` clears it.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerPatchIn {
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub name: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub email: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Address>)]
    pub address: Option<Option<Address>>,
    /// Replaces the whole list (`[]` clears it).
    pub tax_ids: Option<Vec<TaxId>>,
    /// Replaces the whole object (`{}` clears it).
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
    /// Whether a payment method is on file (decides where a trial ends) until payment
    /// providers set it.
    pub has_payment_method: Option<bool>,
}

/// Changes a customer's name, email, address, tax ids, metadata or payment-method flag.
#[utoipa::path(patch, path = "/v1/customers/{id}", operation_id = "customers_update", params(("id" = String, Path)), request_body = CustomerPatchIn,
    description = "Only the fields given change; `null` clears name, email or address; `tax_ids` and `metadata` are replaced whole. An archived customer cannot be changed (409 `customer_archived`).",
    responses((status = 200, description = "OK", body = CustomerOut),
        (status = 400, description = "A field is invalid (`invalid_name`, `invalid_email`, `invalid_address`, `invalid_tax_id`, `invalid_metadata`)", body = crate::api::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "Not found", body = crate::api::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "The customer is archived", body = crate::api::error::Problem, content_type = "application/problem+json")))]
pub async fn update(
    State(state): State<AppState>,
    caller: Principal,
    Path(id): Path<String>,
    body: crate::api::body::JsonBody<CustomerPatchIn>,
) -> ApiResult<Json<CustomerOut>> {
    let workspace = caller.require_admin()?;
    let crate::api::body::JsonBody(body) = body;
    let patch = crate::app::customers::CustomerPatch {
        name: body.name,
        email: body.email,
        address: body.address,
        tax_ids: body.tax_ids,
        metadata: body.metadata,
        has_payment_method: body.has_payment_method,
    };
    let input = crate::app::customers::UpdateCustomer {
        workspace: workspace.to_owned(),
        customer: id,
        patch,
    };
    let record = crate::app::customers::update(&state.engine, input).await?;
    Ok(Json(record.into()))
}

/// Archives a customer: its keys are revoked, its subscriptions end now, its checks are denied
/// and its events refused with `customer_archived`; its invoices and usage stay readable.
#[utoipa::path(delete, path = "/v1/customers/{id}", operation_id = "customers_archive", params(("id" = String, Path)),
    description = "Customers are never deleted (their invoices keep their owner): archiving revokes every key, cancels live subscriptions at once on the customer's clock, and refuses changes, checks (`customer_archived`) and new events. Archiving again answers the archived customer unchanged.",
    responses((status = 200, description = "Archived", body = CustomerOut),
        (status = 404, description = "Not found", body = crate::api::error::Problem, content_type = "application/problem+json")))]
pub async fn archive(
    State(state): State<AppState>,
    caller: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<CustomerOut>> {
    let workspace = caller.require_admin()?;
    let record = crate::app::customers::archive(&state.engine, workspace, &id).await?;
    Ok(Json(record.into()))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsageQuery {
    /// Any time inside the period to report (RFC 3339); default: now on the customer's clock.
    /// Rolling windows are reported only for now.
    pub at: Option<String>,
    /// A subject (e.g. a user id): its per-subject rolling windows are reported too.
    pub subject: Option<String>,
}

#[utoipa::path(get, path = "/v1/customers/{id}/usage", operation_id = "customers_usage", params(("id" = String, Path), UsageQuery),
    responses((status = 200, description = "OK", body = UsageReport)))]
pub async fn usage(
    State(state): State<AppState>,
    caller: Principal,
    Path(id): Path<String>,
    Query(query): Query<UsageQuery>,
) -> ApiResult<Json<UsageReport>> {
    let workspace = caller.require_customer(&id)?;
    let at = match query.at {
        None => None,
        Some(text) => Some(text.parse::<Timestamp>().map_err(|e| {
            ApiError::bad_request(
                Code::InvalidTimestamp,
                format!("`at` {text:?} is not RFC 3339: {e}"),
            )
        })?),
    };
    Ok(Json(
        state
            .engine
            .usage(workspace, &id, at, query.subject.as_deref())
            .await?,
    ))
}

/// 404 unless the customer exists: a list under a customer that does not exist is an error,
/// not an empty list.
pub async fn must_exist(state: &AppState, workspace: &str, customer: &str) -> ApiResult<()> {
    state
        .engine
        .store()
        .get_customer(&WorkspaceId::from(workspace), customer)
        .await?
        .map(|_| ())
        .ok_or_else(|| ApiError::not_found("customer", customer))
}
