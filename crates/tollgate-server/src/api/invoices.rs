//! Invoices: the live preview, the list, one invoice, its lifecycle and its credit notes.
//!
//! Finalized invoices are immutable; only their status moves: open -> paid | void |
//! uncollectible, uncollectible -> paid | void. A refund is a credit note, never an edit.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use tollgate_core::code::Code;
use tollgate_core::ids::{CustomerId, WorkspaceId};
use tollgate_store::billing::InvoiceRecord;

use crate::api::error::{ApiError, ApiResult};
use crate::app::invoices as app;
use crate::auth::Principal;
use crate::billing::{InvoiceOut, upcoming_invoice};
use crate::state::AppState;

async fn credited(state: &AppState, invoice: &InvoiceRecord) -> ApiResult<i64> {
    Ok(app::credited(&state.engine, invoice).await?)
}

async fn present(state: &AppState, invoice: &InvoiceRecord) -> ApiResult<InvoiceOut> {
    let mut out = InvoiceOut::from_record(invoice, credited(state, invoice).await?);
    out.payment_url = crate::app::payments::payment_url(&state.engine, invoice).await?;
    Ok(out)
}

/// Now on the customer's clock, and its live subscription (or, when none is live, its newest).
pub(crate) async fn customer_subscription(
    state: &AppState,
    workspace: &str,
    customer: &str,
) -> ApiResult<(jiff::Timestamp, tollgate_store::SubscriptionRecord)> {
    let now = super::subscriptions::customer_now(state, workspace, customer).await?;
    let mut subs = state
        .engine
        .store()
        .list_subscriptions(&WorkspaceId::from(workspace), &CustomerId::from(customer))
        .await?;
    let live = subs
        .iter()
        .position(|s| s.ends_at.is_none_or(|e| e > now))
        .unwrap_or(0);
    if subs.is_empty() {
        return Err(ApiError::not_found("subscription", customer).with_code(Code::NoSubscription));
    }
    Ok((now, subs.swap_remove(live)))
}

/// The invoice the customer's current period will close with, priced from usage so far.
#[utoipa::path(get, path = "/v1/customers/{id}/invoices/upcoming", operation_id = "invoices_upcoming", params(("id" = String, Path)),
    responses((status = 200, description = "OK", body = InvoiceOut), (status = 404, description = "Not found", body = crate::api::error::Problem, content_type = "application/problem+json")))]
pub async fn upcoming(
    State(state): State<AppState>,
    caller: Principal,
    Path(customer): Path<String>,
) -> ApiResult<Json<InvoiceOut>> {
    let workspace = caller.require_customer(&customer)?;
    let store = state.engine.store();
    let (now, sub) = customer_subscription(&state, workspace, &customer).await?;
    if sub.ends_at.is_some_and(|e| e <= now) {
        return Err(ApiError::not_found("subscription", &customer).with_code(Code::NoSubscription));
    }
    let catalog = state.engine.catalog(workspace, sub.catalog_version).await?;
    let draft = upcoming_invoice(store.as_ref(), &sub, &catalog.catalog, now).await?;
    Ok(Json(InvoiceOut::from_draft(
        &draft,
        &customer,
        Some(&sub.id),
        now,
    )?))
}

#[utoipa::path(get, path = "/v1/customers/{id}/invoices", operation_id = "invoices_list", params(("id" = String, Path), crate::api::page::PageQuery),
    responses((status = 200, description = "A page of the customer's invoices, in number order", body = crate::api::page::Page<InvoiceOut>), (status = 400, description = "Bad `limit` or `starting_after`", body = crate::api::error::Problem, content_type = "application/problem+json")))]
pub async fn list(
    State(state): State<AppState>,
    caller: Principal,
    Path(customer): Path<String>,
    crate::api::page::Params(page): crate::api::page::Params<crate::api::page::PageQuery>,
) -> ApiResult<Json<crate::api::page::Page<InvoiceOut>>> {
    let workspace = caller.require_customer(&customer)?;
    super::customers::must_exist(&state, workspace, &customer).await?;
    let invoices = state
        .engine
        .store()
        .list_invoices(&WorkspaceId::from(workspace), &CustomerId::from(&customer))
        .await?;
    // Only the page's invoices are presented (each reads its credit notes).
    let invoices = crate::api::page::page_of(invoices, |i| i.id.as_str(), &page)?;
    let mut data = Vec::with_capacity(invoices.data.len());
    for invoice in &invoices.data {
        data.push(present(&state, invoice).await?);
    }
    Ok(Json(crate::api::page::Page {
        data,
        has_more: invoices.has_more,
    }))
}

/// An invoice the caller may see: an admin's workspace, or the customer's own.
pub(crate) async fn visible_invoice(
    state: &AppState,
    caller: &Principal,
    id: &str,
) -> ApiResult<InvoiceRecord> {
    let invoice = state
        .engine
        .store()
        .get_invoice(&WorkspaceId::from(caller.workspace()), id)
        .await?
        .ok_or_else(|| ApiError::not_found("invoice", id))?;
    caller
        .require_customer(&invoice.customer)
        .map_err(|_| ApiError::not_found("invoice", id))?;
    Ok(invoice)
}

#[utoipa::path(get, path = "/v1/invoices/{id}", operation_id = "invoices_get", params(("id" = String, Path, description = "Invoice id; append `.pdf` for the PDF")),
    responses((status = 200, description = "OK", body = InvoiceOut), (status = 404, description = "Not found", body = crate::api::error::Problem, content_type = "application/problem+json")))]
pub async fn get(
    State(state): State<AppState>,
    caller: Principal,
    Path(id): Path<String>,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    if let Some(plain) = id.strip_suffix(".pdf") {
        let invoice = visible_invoice(&state, &caller, plain).await?;
        let credited = credited(&state, &invoice).await?;
        return invoice_pdf_response(&state, &invoice, credited).await;
    }
    let invoice = visible_invoice(&state, &caller, &id).await?;
    Ok(Json(present(&state, &invoice).await?).into_response())
}

/// Records a payment received outside Tollgate (bank transfer, manual).
#[utoipa::path(post, path = "/v1/invoices/{id}/pay", operation_id = "invoices_pay", params(("id" = String, Path)), responses((status = 200, description = "OK", body = InvoiceOut), (status = 409, description = "Conflicts with the stored state (`invoice_not_paid`, `refund_exceeds_invoice`, `refund_window_closed`)", body = crate::api::error::Problem, content_type = "application/problem+json")))]
pub async fn pay(
    State(state): State<AppState>,
    caller: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<InvoiceOut>> {
    let invoice = app::pay(&state.engine, caller.require_admin()?, &id).await?;
    Ok(Json(present(&state, &invoice).await?))
}

#[utoipa::path(post, path = "/v1/invoices/{id}/void", operation_id = "invoices_void", params(("id" = String, Path)), responses((status = 200, description = "OK", body = InvoiceOut), (status = 409, description = "Conflicts with the stored state", body = crate::api::error::Problem, content_type = "application/problem+json")))]
pub async fn void(
    State(state): State<AppState>,
    caller: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<InvoiceOut>> {
    let invoice = app::void(&state.engine, caller.require_admin()?, &id).await?;
    Ok(Json(present(&state, &invoice).await?))
}

#[utoipa::path(post, path = "/v1/invoices/{id}/mark_uncollectible", operation_id = "invoices_mark_uncollectible", params(("id" = String, Path)), responses((status = 200, description = "OK", body = InvoiceOut), (status = 409, description = "Conflicts with the stored state", body = crate::api::error::Problem, content_type = "application/problem+json")))]
pub async fn mark_uncollectible(
    State(state): State<AppState>,
    caller: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<InvoiceOut>> {
    let invoice = app::mark_uncollectible(&state.engine, caller.require_admin()?, &id).await?;
    Ok(Json(present(&state, &invoice).await?))
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreditNoteIn {
    /// Amount to refund, a decimal string; default: everything not yet refunded.
    #[schema(value_type = Option<String>)]
    pub amount: Option<Decimal>,
    pub reason: Option<String>,
    /// Refund even after the catalog's `policies.refund_window_days` (an operator's exception).
    #[serde(default)]
    pub outside_refund_window: bool,
    /// `refund` (default: money back, paid invoices only) or `credit` (to the customer's
    /// balance, which pays its next invoices; any finalized invoice).
    #[serde(default)]
    pub method: CreditNoteMethodIn,
}

/// What a credit note does with its amount.
#[derive(Deserialize, Serialize, Default, Clone, Copy, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CreditNoteMethodIn {
    #[default]
    Refund,
    Credit,
}

impl From<CreditNoteMethodIn> for tollgate_store::billing::CreditNoteMethod {
    fn from(m: CreditNoteMethodIn) -> Self {
        match m {
            CreditNoteMethodIn::Refund => tollgate_store::billing::CreditNoteMethod::Refund,
            CreditNoteMethodIn::Credit => tollgate_store::billing::CreditNoteMethod::Credit,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CreditNoteOut {
    pub id: String,
    /// `CN-000001` (or `LEX-CN-2026-000001` under the invoice's prefix); gapless per
    /// workspace. Its PDF: `GET /v1/invoices/{invoice}/credit_notes/{id}.pdf`.
    pub number: String,
    pub invoice: String,
    pub amount: String,
    pub currency: String,
    pub reason: Option<String>,
    /// `refund` or `credit` (to the customer's balance).
    pub method: String,
    pub created_at: jiff::Timestamp,
}

/// Issues a credit note: a refund, or a credit to the customer's balance.
///
/// `method: refund` (default) gives back all or part of a paid invoice; `method: credit` adds
/// all or part of any finalized invoice to the customer's balance, which pays its next invoices
/// first. The invoice itself never changes.
#[utoipa::path(post, path = "/v1/invoices/{id}/credit_notes", operation_id = "invoices_credit_note", params(("id" = String, Path)), request_body = CreditNoteIn,
    responses((status = 201, description = "Created", body = CreditNoteOut), (status = 409, description = "Conflicts with the stored state", body = crate::api::error::Problem, content_type = "application/problem+json")))]
pub async fn credit_note(
    State(state): State<AppState>,
    caller: Principal,
    Path(id): Path<String>,
    body: crate::api::body::OptionalJsonBody<CreditNoteIn>,
) -> ApiResult<(StatusCode, Json<CreditNoteOut>)> {
    let workspace = caller.require_admin()?.to_owned();
    let body = body.0.unwrap_or_default();
    let (stored, currency) = app::issue_credit_note(
        &state.engine,
        app::IssueCreditNote {
            workspace,
            invoice: id,
            amount: body.amount,
            reason: body.reason,
            outside_refund_window: body.outside_refund_window,
            method: body.method.into(),
        },
    )
    .await?;
    let invoice = state
        .engine
        .store()
        .get_invoice(&WorkspaceId::from(&stored.workspace), &stored.invoice)
        .await?
        .ok_or_else(|| ApiError::not_found("invoice", &stored.invoice))?;
    Ok((
        StatusCode::CREATED,
        Json(CreditNoteOut {
            number: crate::billing::documents::credit_note_number(&invoice, &stored),
            id: stored.id,
            invoice: stored.invoice,
            amount: Decimal::new(stored.amount_minor, currency.minor_digits()).to_string(),
            currency: stored.currency,
            reason: stored.reason,
            method: stored.method.as_str().to_owned(),
            created_at: stored.created_at,
        }),
    ))
}

/// `GET /v1/invoices/{id}.pdf`.
pub(crate) async fn invoice_pdf_response(
    state: &AppState,
    invoice: &InvoiceRecord,
    credited_minor: i64,
) -> ApiResult<axum::response::Response> {
    let issuer = issuer_name(state, invoice).await?;
    let mut doc = crate::billing::documents::invoice_document(&issuer, invoice, credited_minor);
    doc.logo =
        crate::billing::profiles::document_logo(state.engine.store().as_ref(), &invoice.workspace)
            .await?;
    pdf_response(doc).await
}

/// Gets a credit note as PDF
///
/// The credit note `note` of invoice `id`, rendered as a PDF document (`note` ends in `.pdf`):
/// the invoice's seller and buyer, the amount credited and what all notes credited so far.
#[utoipa::path(get, path = "/v1/invoices/{id}/credit_notes/{note}", operation_id = "invoices_credit_note_pdf",
    params(("id" = String, Path, description = "Invoice id"), ("note" = String, Path, description = "Credit note id followed by `.pdf`")),
    responses(
        (status = 200, description = "The credit note as PDF", content_type = "application/pdf"),
        (status = 404, description = "No such invoice or credit note", body = crate::api::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn credit_note_pdf(
    State(state): State<AppState>,
    caller: Principal,
    Path((id, note)): Path<(String, String)>,
) -> ApiResult<axum::response::Response> {
    let invoice = visible_invoice(&state, &caller, &id).await?;
    let wanted = note
        .strip_suffix(".pdf")
        .ok_or_else(|| ApiError::not_found("credit note", &note))?;
    let notes = state
        .engine
        .store()
        .list_credit_notes(&WorkspaceId::from(&invoice.workspace), &invoice.id)
        .await?;
    let found = notes
        .into_iter()
        .find(|n| n.id == wanted)
        .ok_or_else(|| ApiError::not_found("credit note", wanted))?;
    let credited = credited(&state, &invoice).await?;
    let issuer = issuer_name(&state, &invoice).await?;
    // What of it went to the customer's balance (a credit on an unpaid invoice lowered its amount
    // due first).
    let to_balance = state
        .engine
        .store()
        .balance_entries(
            &WorkspaceId::from(&invoice.workspace),
            &CustomerId::from(&invoice.customer),
        )
        .await?
        .iter()
        .find(|e| e.credit_note.as_deref() == Some(found.id.as_str()))
        .map_or(0, |e| e.amount_minor);
    let mut doc = crate::billing::documents::credit_note_document(
        &issuer, &invoice, &found, credited, to_balance,
    );
    doc.logo =
        crate::billing::profiles::document_logo(state.engine.store().as_ref(), &invoice.workspace)
            .await?;
    pdf_response(doc).await
}

async fn issuer_name(state: &AppState, invoice: &InvoiceRecord) -> ApiResult<String> {
    Ok(
        crate::billing::profiles::document_issuer(
            state.engine.store().as_ref(),
            &invoice.workspace,
        )
        .await?,
    )
}

async fn pdf_response(doc: tollgate_pdf::InvoiceDocument) -> ApiResult<axum::response::Response> {
    let bytes = tokio::task::spawn_blocking(move || tollgate_pdf::render_invoice(&doc))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    let mut response = axum::response::IntoResponse::into_response(bytes);
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/pdf"),
    );
    Ok(response)
}
