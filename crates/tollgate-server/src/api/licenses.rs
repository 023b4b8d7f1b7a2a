//! Licenses (`docs/TRUST.md`): the workspace's public keys, issuing, reading and revoking
//! licenses, online validation, and machine activations.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tollgate_store::trust::{ActivationRecord, LicenseRecord, SigningKeyRecord, SigningKeyStatus};

use crate::api::error::{ApiResult, Problem};
use crate::app::licenses as app;
use crate::auth::Principal;
use crate::state::AppState;

#[derive(Serialize, utoipa::ToSchema)]
pub struct LicenseKeyOut {
    /// The key id license files name (`Key:` header).
    pub id: String,
    /// The Ed25519 public key, standard base64 of 32 bytes: embed it in your product.
    pub public_key: String,
    /// `active` (signs new licenses), `previous` (still verifies) or `retired`.
    pub status: String,
    #[schema(value_type = String)]
    pub created_at: Timestamp,
}

fn status_text(status: SigningKeyStatus) -> String {
    status.as_str().to_owned()
}

impl From<SigningKeyRecord> for LicenseKeyOut {
    fn from(k: SigningKeyRecord) -> Self {
        LicenseKeyOut {
            id: k.id,
            public_key: k.public_key,
            status: status_text(k.status),
            created_at: k.created_at,
        }
    }
}

/// The public keys that verify this workspace's licenses.
///
/// The active key and the previous ones not yet retired. Any key of the workspace may read
/// them (a customer embeds them to verify offline).
#[utoipa::path(get, path = "/v1/license_keys", operation_id = "license_keys_list",
    responses((status = 200, description = "The published keys, newest first", body = Vec<LicenseKeyOut>),
        (status = 503, description = "No master key configured (`master_key_missing`)", body = Problem, content_type = "application/problem+json")))]
pub async fn list_keys(
    State(state): State<AppState>,
    caller: Principal,
) -> ApiResult<Json<Vec<LicenseKeyOut>>> {
    let keys = app::published_keys(&state.engine, caller.workspace()).await?;
    Ok(Json(
        keys.into_iter()
            .map(|k| LicenseKeyOut {
                id: k.id,
                public_key: k.public_key,
                status: status_text(k.status),
                created_at: k.created_at,
            })
            .collect(),
    ))
}

/// Rotate the signing key.
///
/// A new key signs from now on; the key active before becomes `previous` and keeps verifying
/// the licenses it signed until it is retired.
#[utoipa::path(post, path = "/v1/license_keys/rotate", operation_id = "license_keys_rotate",
    responses((status = 201, description = "The new active key", body = LicenseKeyOut),
        (status = 503, description = "No master key configured (`master_key_missing`)", body = Problem, content_type = "application/problem+json")))]
pub async fn rotate_key(
    State(state): State<AppState>,
    caller: Principal,
) -> ApiResult<(StatusCode, Json<LicenseKeyOut>)> {
    let workspace = caller.require_admin()?;
    let key = app::rotate_key(&state.engine, workspace, state.engine.now()).await?;
    Ok((StatusCode::CREATED, Json(key.into())))
}

/// Retire a previous signing key.
///
/// Licenses it signed no longer validate online, and it is no longer published. The active key
/// cannot be retired (`conflict`): rotate first.
#[utoipa::path(post, path = "/v1/license_keys/{id}/retire", operation_id = "license_keys_retire", params(("id" = String, Path)),
    responses((status = 200, description = "The retired key", body = LicenseKeyOut),
        (status = 404, description = "No such key", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The active key", body = Problem, content_type = "application/problem+json")))]
pub async fn retire_key(
    State(state): State<AppState>,
    caller: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<LicenseKeyOut>> {
    let workspace = caller.require_admin()?;
    let key = app::retire_key(&state.engine, workspace, &id, state.engine.now()).await?;
    Ok(Json(key.into()))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LicenseIn {
    pub customer: String,
    /// The subscription the license follows; the customer's live one if absent.
    pub subscription: Option<String>,
    /// Bind the license to one machine's fingerprint.
    pub machine: Option<String>,
    /// Limits for this customer over the plan's (`{"agents": 50, "seats": 200}`): whole
    /// numbers, names of `a-z 0-9 _`.
    #[serde(default)]
    pub limits: BTreeMap<String, u64>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct LicenseOut {
    pub id: String,
    pub customer: String,
    pub subscription: Option<String>,
    pub plan: String,
    pub key_id: String,
    #[schema(value_type = String)]
    pub issued_at: Timestamp,
    #[schema(value_type = String)]
    pub expires_at: Timestamp,
    pub max_machines: Option<i64>,
    #[schema(value_type = Option<String>)]
    pub revoked_at: Option<Timestamp>,
    pub revoke_reason: Option<String>,
    /// The armored license file, exactly as signed: hand it to the customer.
    pub file: String,
}

impl From<LicenseRecord> for LicenseOut {
    fn from(l: LicenseRecord) -> Self {
        LicenseOut {
            id: l.id,
            customer: l.customer,
            subscription: l.subscription,
            plan: l.plan,
            key_id: l.key_id,
            issued_at: l.issued_at,
            expires_at: l.expires_at,
            max_machines: l.max_machines,
            revoked_at: l.revoked_at,
            revoke_reason: l.revoke_reason,
            file: l.file,
        }
    }
}

/// Issue a license.
///
/// From the subscription's plan (its `license` block in the catalog): the plan's features and
/// limits, valid for the subscription's current term plus the plan's grace period, signed with
/// the workspace's active key.
#[utoipa::path(post, path = "/v1/licenses", operation_id = "licenses_issue", request_body = LicenseIn,
    responses((status = 201, description = "Issued", body = LicenseOut),
        (status = 404, description = "No such customer or subscription", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The plan issues no license (`plan_has_no_license`) or the subscription has ended", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "No master key configured (`master_key_missing`)", body = Problem, content_type = "application/problem+json")))]
pub async fn issue(
    State(state): State<AppState>,
    caller: Principal,
    body: crate::api::body::JsonBody<LicenseIn>,
) -> ApiResult<(StatusCode, Json<LicenseOut>)> {
    let workspace = caller.require_admin()?;
    let LicenseIn {
        customer,
        subscription,
        machine,
        limits,
    } = body.0;
    let license = app::issue(
        &state.engine,
        app::IssueLicense {
            workspace: workspace.to_owned(),
            customer,
            subscription,
            machine,
            limits,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(license.into())))
}

/// A license.
#[utoipa::path(get, path = "/v1/licenses/{id}", operation_id = "licenses_get", params(("id" = String, Path)),
    responses((status = 200, description = "OK", body = LicenseOut),
        (status = 404, description = "No such license", body = Problem, content_type = "application/problem+json")))]
pub async fn get(
    State(state): State<AppState>,
    caller: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<LicenseOut>> {
    let license = app::get(&state.engine, caller.workspace(), &id).await?;
    caller.require_customer(&license.customer)?;
    Ok(Json(license.into()))
}

/// A customer's licenses, newest first (revoked ones included).
#[utoipa::path(get, path = "/v1/customers/{id}/licenses", operation_id = "licenses_list", params(("id" = String, Path), crate::api::page::PageQuery),
    responses((status = 200, description = "A page of the customer's licenses, newest first", body = crate::api::page::Page<LicenseOut>),
        (status = 400, description = "Bad `limit` or `starting_after`", body = Problem, content_type = "application/problem+json")))]
pub async fn list(
    State(state): State<AppState>,
    caller: Principal,
    Path(customer): Path<String>,
    crate::api::page::Params(page): crate::api::page::Params<crate::api::page::PageQuery>,
) -> ApiResult<Json<crate::api::page::Page<LicenseOut>>> {
    let workspace = caller.require_customer(&customer)?;
    super::customers::must_exist(&state, workspace, &customer).await?;
    let licenses = app::list(&state.engine, workspace, &customer).await?;
    let licenses = crate::api::page::page_of(licenses, |l| l.id.as_str(), &page)?;
    Ok(Json(licenses.map(LicenseOut::from)))
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeIn {
    /// Why (kept with the license); `revoked` if absent.
    pub reason: Option<String>,
}

/// Revoke a license.
///
/// Online validation answers `revoked` from then on; the file itself still verifies offline
/// until it expires.
#[utoipa::path(post, path = "/v1/licenses/{id}/revoke", operation_id = "licenses_revoke", params(("id" = String, Path)), request_body = RevokeIn,
    responses((status = 200, description = "Revoked", body = LicenseOut),
        (status = 404, description = "No such license", body = Problem, content_type = "application/problem+json")))]
pub async fn revoke(
    State(state): State<AppState>,
    caller: Principal,
    Path(id): Path<String>,
    body: crate::api::body::OptionalJsonBody<RevokeIn>,
) -> ApiResult<Json<LicenseOut>> {
    let workspace = caller.require_admin()?;
    let reason = body
        .0
        .and_then(|b| b.reason)
        .unwrap_or_else(|| "revoked".into());
    let license = app::revoke(&state.engine, workspace, &id, &reason).await?;
    Ok(Json(license.into()))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ValidateIn {
    /// The armored license file.
    pub license: String,
    /// This machine's fingerprint (needed for a license with a machine limit or binding).
    pub fingerprint: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ValidationOut {
    pub valid: bool,
    /// Why not: `expired`, `not_yet_valid`, `bad_signature`, `unknown_key`, `wrong_machine`,
    /// `malformed`, `unsupported_format`, `revoked`, `not_activated`.
    pub code: Option<String>,
    /// `active` or `grace` when valid.
    pub status: Option<String>,
    #[schema(value_type = Option<String>)]
    pub grace_ends: Option<Timestamp>,
    pub license_id: Option<String>,
    pub customer: Option<String>,
    pub plan: Option<String>,
    pub features: Vec<String>,
    #[schema(value_type = Object)]
    pub limits: serde_json::Value,
    #[schema(value_type = Option<String>)]
    pub expires: Option<Timestamp>,
}

/// Validate a license online.
///
/// The offline checks (signature by a key of this workspace that is not retired, validity on the
/// customer's clock, machine binding), then revocation and machine activation. A refused
/// license is an answer (200, `valid: false` with a `code`), not an error.
#[utoipa::path(post, path = "/v1/licenses/validate", operation_id = "licenses_validate", request_body = ValidateIn,
    responses((status = 200, description = "The verdict", body = ValidationOut),
        (status = 404, description = "A license of another workspace or customer", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "No master key configured (`master_key_missing`)", body = Problem, content_type = "application/problem+json")))]
pub async fn validate(
    State(state): State<AppState>,
    caller: Principal,
    body: crate::api::body::JsonBody<ValidateIn>,
) -> ApiResult<Json<ValidationOut>> {
    let customer = match &caller {
        Principal::Admin { .. } => None,
        Principal::Customer { customer, .. } => Some(customer.as_str()),
    };
    let v = app::validate(
        &state.engine,
        caller.workspace(),
        customer,
        &body.0.license,
        body.0.fingerprint.as_deref(),
    )
    .await?;
    let license = v.license;
    Ok(Json(ValidationOut {
        valid: v.valid,
        code: v.code.map(str::to_owned),
        status: v.status.map(str::to_owned),
        grace_ends: v.grace_ends,
        license_id: license.as_ref().map(|l| l.id.clone()),
        customer: license.as_ref().map(|l| l.customer.clone()),
        plan: license.as_ref().map(|l| l.plan.clone()),
        features: license
            .as_ref()
            .map(|l| l.features.clone())
            .unwrap_or_default(),
        limits: license
            .as_ref()
            .map(|l| serde_json::json!(l.limits))
            .unwrap_or_else(|| serde_json::json!({})),
        expires: license.as_ref().map(|l| l.expires),
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MachineIn {
    /// The machine's fingerprint: 1 to 128 letters, digits or `_ - . :`.
    pub fingerprint: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct MachineOut {
    pub license: String,
    pub fingerprint: String,
    #[schema(value_type = String)]
    pub activated_at: Timestamp,
    #[schema(value_type = String)]
    pub last_heartbeat: Timestamp,
}

impl From<ActivationRecord> for MachineOut {
    fn from(a: ActivationRecord) -> Self {
        MachineOut {
            license: a.license,
            fingerprint: a.fingerprint,
            activated_at: a.activated_at,
            last_heartbeat: a.last_heartbeat,
        }
    }
}

async fn own_license(state: &AppState, caller: &Principal, id: &str) -> ApiResult<()> {
    let license = app::get(&state.engine, caller.workspace(), id).await?;
    caller.require_customer(&license.customer)?;
    Ok(())
}

/// Activate a machine on a license.
///
/// Takes one of the license's seats (`max_machines`); activating a machine that holds one
/// refreshes it. A machine that sends no heartbeat for 30 minutes gives its seat up.
#[utoipa::path(post, path = "/v1/licenses/{id}/machines", operation_id = "licenses_activate", params(("id" = String, Path)), request_body = MachineIn,
    responses((status = 201, description = "Activated", body = MachineOut),
        (status = 409, description = "Every seat is held (`machine_limit_reached`), or the license is revoked or expired", body = Problem, content_type = "application/problem+json")))]
pub async fn activate(
    State(state): State<AppState>,
    caller: Principal,
    Path(id): Path<String>,
    body: crate::api::body::JsonBody<MachineIn>,
) -> ApiResult<(StatusCode, Json<MachineOut>)> {
    own_license(&state, &caller, &id).await?;
    let machine =
        app::activate(&state.engine, caller.workspace(), &id, &body.0.fingerprint).await?;
    Ok((StatusCode::CREATED, Json(machine.into())))
}

/// A machine's heartbeat: it keeps its seat.
#[utoipa::path(post, path = "/v1/licenses/{id}/machines/{fingerprint}/heartbeat", operation_id = "licenses_heartbeat",
    params(("id" = String, Path), ("fingerprint" = String, Path)),
    responses((status = 200, description = "OK", body = MachineOut),
        (status = 404, description = "The machine holds no seat (activate it again)", body = Problem, content_type = "application/problem+json")))]
pub async fn heartbeat(
    State(state): State<AppState>,
    caller: Principal,
    Path((id, fingerprint)): Path<(String, String)>,
) -> ApiResult<Json<MachineOut>> {
    own_license(&state, &caller, &id).await?;
    let machine = app::heartbeat(&state.engine, caller.workspace(), &id, &fingerprint).await?;
    Ok(Json(machine.into()))
}

/// Deactivate a machine: its seat is free at once.
#[utoipa::path(post, path = "/v1/licenses/{id}/machines/{fingerprint}/deactivate", operation_id = "licenses_deactivate",
    params(("id" = String, Path), ("fingerprint" = String, Path)),
    responses((status = 204, description = "Released"),
        (status = 404, description = "The machine holds no seat", body = Problem, content_type = "application/problem+json")))]
pub async fn deactivate(
    State(state): State<AppState>,
    caller: Principal,
    Path((id, fingerprint)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    own_license(&state, &caller, &id).await?;
    app::deactivate(&state.engine, caller.workspace(), &id, &fingerprint).await?;
    Ok(StatusCode::NO_CONTENT)
}
