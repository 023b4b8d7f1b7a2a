//! The ledger over HTTP (docs/TRUST.md, "The ledger"): seal now, the head and its checkpoints,
//! inclusion and consistency proofs, and a full verification. The HTTP face of `app::ledger`.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use tollgate_core::code::Code;
use tollgate_core::ids::WorkspaceId;
use tollgate_store::ledger::EntryKind;

use crate::api::error::{ApiError, ApiResult};
use crate::api::page::Params;
use crate::app::ledger::{self, verify::VerifyOptions};
use crate::auth::Principal;
use crate::state::AppState;

/// What a sealing pass did.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SealOut {
    /// Entries appended by this call.
    pub appended: u64,
    pub size: u64,
    /// Hex SHA-256.
    pub root_hash: String,
    /// The checkpoint signed by this call (a signed note), if the log grew and a master key is
    /// configured.
    pub checkpoint: Option<String>,
}

/// Seals at once what the background pass would seal within `ledger_interval`, and signs a
/// checkpoint of the new size.
#[utoipa::path(post, path = "/v1/ledger/seal", operation_id = "ledger_seal",
    responses((status = 200, description = "Sealed", body = SealOut),
        (status = 403, description = "Not an admin key", body = crate::api::error::Problem, content_type = "application/problem+json")))]
pub async fn seal(State(state): State<AppState>, caller: Principal) -> ApiResult<Json<SealOut>> {
    let workspace = caller.require_admin()?;
    let report = ledger::seal(&state.engine, workspace, state.engine.now()).await?;
    Ok(Json(SealOut {
        appended: report.appended,
        size: report.size,
        root_hash: report.root_hash,
        checkpoint: report.checkpoint,
    }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CheckpointOut {
    pub size: i64,
    pub root_hash: String,
    /// The signed note: origin, size, base64 root, then the signature lines.
    pub note: String,
    pub created_at: jiff::Timestamp,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CheckpointList {
    pub data: Vec<CheckpointOut>,
}

/// Every signed checkpoint of the workspace's log, smallest first.
#[utoipa::path(get, path = "/v1/ledger/checkpoints", operation_id = "ledger_checkpoints",
    responses((status = 200, description = "OK", body = CheckpointList),
        (status = 403, description = "Not an admin key", body = crate::api::error::Problem, content_type = "application/problem+json")))]
pub async fn checkpoints(
    State(state): State<AppState>,
    caller: Principal,
) -> ApiResult<Json<CheckpointList>> {
    let workspace = caller.require_admin()?;
    let data = state
        .engine
        .store()
        .checkpoints(&WorkspaceId::from(workspace))
        .await?
        .into_iter()
        .map(|c| CheckpointOut {
            size: c.size,
            root_hash: c.root_hash,
            note: c.note,
            created_at: c.created_at,
        })
        .collect();
    Ok(Json(CheckpointList { data }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProofQuery {
    /// A usage event's id...
    pub event: Option<String>,
    /// ...or a domain event's `evt_` id (`GET /v1/domain_events`).
    pub action: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct InclusionOut {
    /// The entry's index in the log.
    pub seq: i64,
    /// The entry's exact text (canonical JSON); its leaf is SHA-256(0x00 || entry).
    pub entry: String,
    pub leaf_hash: String,
    /// The newest checkpoint, which the proof leads to.
    pub tree_size: i64,
    pub root_hash: String,
    pub checkpoint: String,
    /// Hex hashes, leaf side first (RFC 6962 section 2.1.1).
    pub proof: Vec<String>,
}

/// The inclusion proof of one record under the newest signed checkpoint. A customer key may ask
/// for its own records.
#[utoipa::path(get, path = "/v1/ledger/proof", operation_id = "ledger_proof", params(ProofQuery),
    responses((status = 200, description = "OK", body = InclusionOut),
        (status = 400, description = "Neither or both of `event` and `action`", body = crate::api::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "Not the caller's record", body = crate::api::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not sealed or not under a checkpoint yet: `ledger_not_sealed`", body = crate::api::error::Problem, content_type = "application/problem+json")))]
pub async fn proof(
    State(state): State<AppState>,
    caller: Principal,
    Params(query): Params<ProofQuery>,
) -> ApiResult<Json<InclusionOut>> {
    let (kind, reference) = match (query.event, query.action) {
        (Some(e), None) => (EntryKind::Usage, e),
        (None, Some(a)) => (EntryKind::Action, a),
        _ => {
            return Err(ApiError::bad_request(
                Code::InvalidRequest,
                "give exactly one of `event` and `action`",
            ));
        }
    };
    let workspace = caller.workspace();
    if let Principal::Customer { customer, .. } = &caller {
        // A customer sees proofs of its own records only: anything else is not found.
        let entry = state
            .engine
            .store()
            .ledger_entry_of(&WorkspaceId::from(workspace), kind, &reference)
            .await?;
        if entry.is_some_and(|e| e.customer.as_deref() != Some(customer.as_str())) {
            return Err(ApiError::not_found(kind.as_str(), &reference));
        }
    }
    let p = ledger::inclusion(&state.engine, workspace, kind, &reference).await?;
    Ok(Json(InclusionOut {
        seq: p.seq,
        entry: p.entry,
        leaf_hash: p.leaf_hash,
        tree_size: p.tree_size,
        root_hash: p.root_hash,
        checkpoint: p.checkpoint,
        proof: p.proof,
    }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConsistencyQuery {
    /// The earlier checkpoint's size.
    pub from: i64,
    /// The later checkpoint's size.
    pub to: i64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ConsistencyOut {
    pub from: CheckpointRef,
    pub to: CheckpointRef,
    /// Hex hashes (RFC 6962 section 2.1.2).
    pub proof: Vec<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CheckpointRef {
    pub size: i64,
    pub root_hash: String,
    pub note: String,
}

/// The consistency proof between two checkpoints: the later log extends the earlier one.
#[utoipa::path(get, path = "/v1/ledger/consistency", operation_id = "ledger_consistency", params(ConsistencyQuery),
    responses((status = 200, description = "OK", body = ConsistencyOut),
        (status = 400, description = "`from` after `to`", body = crate::api::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No checkpoint of that size", body = crate::api::error::Problem, content_type = "application/problem+json")))]
pub async fn consistency(
    State(state): State<AppState>,
    caller: Principal,
    Params(query): Params<ConsistencyQuery>,
) -> ApiResult<Json<ConsistencyOut>> {
    let workspace = caller.require_admin()?;
    if query.from < 0 || query.to < 0 {
        return Err(ApiError::bad_request(
            Code::InvalidRange,
            "`from` and `to` are checkpoint sizes, 0 or more",
        ));
    }
    let p = ledger::consistency(&state.engine, workspace, query.from, query.to).await?;
    let out = |c: ledger::proof::CheckpointOut| CheckpointRef {
        size: c.size,
        root_hash: c.root_hash,
        note: c.note,
    };
    Ok(Json(ConsistencyOut {
        from: out(p.from),
        to: out(p.to),
        proof: p.proof,
    }))
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyIn {
    /// Compare records from this entry on (every leaf is still hashed).
    pub from: Option<i64>,
    /// ...up to this entry (excluded).
    pub to: Option<i64>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct FindingOut {
    pub seq: Option<i64>,
    pub reference: Option<String>,
    pub checkpoint: Option<i64>,
    /// `entry_hash_mismatch`, `record_changed`, `record_missing`, `entries_missing`,
    /// `checkpoint_root_mismatch`, `checkpoint_bad_signature` or `head_root_mismatch`.
    pub problem: String,
    pub detail: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct VerifyOut {
    pub workspace: String,
    pub size: u64,
    pub root_hash: String,
    pub records_checked: u64,
    pub checkpoints_verified: u64,
    /// `true` when nothing is wrong; otherwise `first_bad` names the first problem.
    pub ok: bool,
    pub first_bad: Option<FindingOut>,
}

/// Recomputes the whole log and compares every entry with its record as stored now (what
/// `tollgate ledger verify` does offline). A tampered log is an answer (`ok: false`), not an
/// error.
#[utoipa::path(post, path = "/v1/ledger/verify", operation_id = "ledger_verify", request_body = VerifyIn,
    responses((status = 200, description = "The verification's findings", body = VerifyOut),
        (status = 400, description = "A bad range", body = crate::api::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin key", body = crate::api::error::Problem, content_type = "application/problem+json")))]
pub async fn verify(
    State(state): State<AppState>,
    caller: Principal,
    crate::api::body::OptionalJsonBody(body): crate::api::body::OptionalJsonBody<VerifyIn>,
) -> ApiResult<Json<VerifyOut>> {
    let workspace = caller.require_admin()?;
    let body = body.unwrap_or_default();
    if body.from.is_some_and(|f| f < 0)
        || body.to.is_some_and(|t| t < 0)
        || matches!((body.from, body.to), (Some(f), Some(t)) if f > t)
    {
        return Err(ApiError::bad_request(
            Code::InvalidRange,
            "`from` and `to` are entry indexes, 0 or more, `from` not after `to`",
        ));
    }
    let options = VerifyOptions {
        from: body.from,
        to: body.to,
        keys: None,
    };
    let r = ledger::verify(&state.engine, workspace, &options).await?;
    Ok(Json(VerifyOut {
        workspace: r.workspace,
        size: r.size,
        root_hash: r.root_hash,
        records_checked: r.records_checked,
        checkpoints_verified: r.checkpoints_verified,
        ok: r.ok,
        first_bad: r.first_bad.map(|f| FindingOut {
            seq: f.seq,
            reference: f.reference,
            checkpoint: f.checkpoint,
            problem: f.problem.to_owned(),
            detail: f.detail,
        }),
    }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EvidenceQuery {
    /// Start of the period (RFC 3339), included.
    #[param(value_type = String)]
    pub from: jiff::Timestamp,
    /// End of the period (RFC 3339), excluded.
    #[param(value_type = String)]
    pub to: jiff::Timestamp,
    /// Events to list, 1 to 20,000 (default 1,000); counts and verification cover them all.
    pub limit: Option<usize>,
}

fn evidence_request(
    workspace: &str,
    customer: String,
    q: EvidenceQuery,
) -> ledger::EvidenceRequest {
    ledger::EvidenceRequest {
        workspace: workspace.to_owned(),
        customer,
        from: q.from,
        to: q.to,
        limit: q.limit.unwrap_or(ledger::evidence::DEFAULT_LIMIT),
    }
}

/// The evidence report of one customer's period: its events with their ledger entries, usage
/// per meter recomputed from them, and a verification of the whole log run now (docs/TRUST.md,
/// "Evidence reports"). A tampered log is an answer (`verification.ok: false` naming the first
/// bad entry), not an error.
#[utoipa::path(get, path = "/v1/customers/{id}/evidence", operation_id = "customers_evidence",
    params(("id" = String, Path, description = "Customer id"), EvidenceQuery),
    responses((status = 200, description = "The report", body = ledger::EvidenceReport),
        (status = 400, description = "`from` not before `to` (`invalid_range`), a bad `limit`, or more than 200,000 events (`period_too_large`)", body = crate::api::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin key", body = crate::api::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such customer", body = crate::api::error::Problem, content_type = "application/problem+json")))]
pub async fn evidence(
    State(state): State<AppState>,
    caller: Principal,
    axum::extract::Path(id): axum::extract::Path<String>,
    Params(query): Params<EvidenceQuery>,
) -> ApiResult<Json<ledger::EvidenceReport>> {
    let workspace = caller.require_admin()?;
    let request = evidence_request(workspace, id, query);
    Ok(Json(ledger::evidence(&state.engine, &request).await?))
}

/// The same report as a PDF for an auditor, under the workspace's seller profile.
#[utoipa::path(get, path = "/v1/customers/{id}/evidence.pdf", operation_id = "customers_evidence_pdf",
    params(("id" = String, Path, description = "Customer id"), EvidenceQuery),
    responses((status = 200, description = "The report as PDF", content_type = "application/pdf"),
        (status = 400, description = "As for the JSON report", body = crate::api::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin key", body = crate::api::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such customer", body = crate::api::error::Problem, content_type = "application/problem+json")))]
pub async fn evidence_pdf(
    State(state): State<AppState>,
    caller: Principal,
    axum::extract::Path(id): axum::extract::Path<String>,
    Params(query): Params<EvidenceQuery>,
) -> ApiResult<axum::response::Response> {
    let workspace = caller.require_admin()?;
    let request = evidence_request(workspace, id, query);
    let report = ledger::evidence(&state.engine, &request).await?;
    let doc = ledger::evidence::document(&state.engine, &report).await?;
    let bytes = tokio::task::spawn_blocking(move || ledger::evidence::render(&doc))
        .await
        .map_err(ApiError::internal)??;
    let mut response = axum::response::IntoResponse::into_response(bytes);
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/pdf"),
    );
    Ok(response)
}

/// What a customer needs to recompute one of its invoices offline (docs/TRUST.md, "Recomputing
/// an invoice"): the usage lines with the ledger range of their events, the plan and catalog
/// version they were rated with, each event's ledger entry and inclusion proof under the newest
/// signed checkpoint, and the checkpoint keys. `tollgate ledger recompute-invoice` checks it.
/// A customer key sees its own invoices only.
#[utoipa::path(get, path = "/v1/invoices/{id}/evidence", operation_id = "invoices_evidence",
    params(("id" = String, Path, description = "Invoice id")),
    responses((status = 200, description = "The evidence", body = ledger::InvoiceEvidence),
        (status = 400, description = "More than 200,000 events in the period (`period_too_large`)", body = crate::api::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such invoice (or not the caller's)", body = crate::api::error::Problem, content_type = "application/problem+json")))]
pub async fn invoice_evidence(
    State(state): State<AppState>,
    caller: Principal,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> ApiResult<Json<ledger::InvoiceEvidence>> {
    let invoice = crate::api::invoices::visible_invoice(&state, &caller, &id).await?;
    Ok(Json(
        ledger::invoice_evidence(&state.engine, caller.workspace(), &invoice.id).await?,
    ))
}
