//! From an outbox event to an email: which template it sends ([`template_for`]), and the
//! variables and attachments of that template read from the store at send time ([`compose`]):
//! the brand, the customer, the invoice with its number and amounts, the invoice PDF.

use jiff::Timestamp;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use tollgate_core::ids::{CustomerId, WorkspaceId};
use tollgate_store::CustomerRecord;
use tollgate_store::billing::InvoiceRecord;
use tollgate_store::email::EmailSettingsRecord;
use tollgate_store::outbox::OutboxEvent;

use super::templates::{DEFAULT_COLOR, TemplateName, merge};
use crate::engine::Engine;
use crate::error::{AppResult, Error};

/// The template `event` sends, if any. Invoices of nothing (a trial's, a free plan's) send no
/// email; a usage alert below 100% is a warning, at or above it the limit.
pub fn template_for(event: &OutboxEvent) -> Option<TemplateName> {
    let total = || event.data.get("total_minor").and_then(Value::as_i64);
    match event.event_type.as_str() {
        super::CUSTOMER_SIGNED_UP => Some(TemplateName::Welcome),
        "subscription.trial_will_end" => Some(TemplateName::TrialEnding),
        "subscription.trial_ended" => Some(TemplateName::TrialEnded),
        "usage.alert" => {
            let percent: Decimal = text(&event.data, "threshold_percent")?.parse().ok()?;
            Some(if percent >= Decimal::ONE_HUNDRED {
                TemplateName::UsageLimit
            } else {
                TemplateName::UsageWarning
            })
        }
        "invoice.finalized" if total() != Some(0) => Some(TemplateName::InvoiceIssued),
        super::INVOICE_PAYMENT_FAILED => Some(TemplateName::PaymentFailed),
        "invoice.paid" if total() != Some(0) => Some(TemplateName::PaymentReceived),
        "credit_note.created" => Some(TemplateName::RefundIssued),
        "webhook_endpoint.disabled" => Some(TemplateName::WebhookEndpointDisabled),
        crate::app::users::magic_link::SIGN_IN_REQUESTED => Some(TemplateName::PortalSignIn),
        _ => None,
    }
}

fn text(data: &Value, key: &str) -> Option<String> {
    match data.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// A template's variables and the files attached to its message.
pub struct Composed {
    pub context: Value,
    /// `(file name, content type, bytes)`.
    pub attachments: Vec<(String, String, Vec<u8>)>,
}

/// The brand of a workspace's messages: its settings, else the workspace's name.
pub async fn brand(
    engine: &Engine,
    workspace: &str,
    settings: Option<&EmailSettingsRecord>,
) -> AppResult<Value> {
    let fallback = engine
        .store()
        .get_workspace(workspace)
        .await?
        .map_or_else(|| workspace.to_owned(), |w| w.name);
    let s = settings;
    Ok(json!({
        "name": s.and_then(|s| s.brand_name.clone()).unwrap_or(fallback),
        "logo_url": s.and_then(|s| s.logo_url.clone()),
        "color": s.and_then(|s| s.brand_color.clone()).unwrap_or_else(|| DEFAULT_COLOR.to_owned()),
        "docs_url": s.and_then(|s| s.docs_url.clone()),
    }))
}

pub fn customer_value(c: &CustomerRecord) -> Value {
    json!({"id": c.id, "name": c.name, "email": c.email})
}

async fn customer(engine: &Engine, workspace: &str, id: &str) -> AppResult<CustomerRecord> {
    engine
        .store()
        .get_customer(&WorkspaceId::from(workspace), &CustomerId::from(id))
        .await?
        .ok_or_else(|| Error::not_found("customer", id))
}

async fn invoice(engine: &Engine, workspace: &str, data: &Value) -> AppResult<InvoiceRecord> {
    let id = text(data, "invoice").unwrap_or_default();
    engine
        .store()
        .get_invoice(&WorkspaceId::from(workspace), &id)
        .await?
        .ok_or_else(|| Error::not_found("invoice", &id))
}

fn invoice_value(i: &InvoiceRecord) -> Value {
    let money = |minor| crate::billing::invoices::money_text(minor, &i.currency);
    json!({
        "id": i.id,
        "number": crate::billing::documents::invoice_number(i),
        "status": i.status.as_str(),
        "currency": i.currency,
        "total": money(i.total_minor),
        "amount_due": money(i.amount_due_minor),
        "period_start": i.period_start,
        "period_end": i.period_end,
    })
}

async fn invoice_pdf(engine: &Engine, i: &InvoiceRecord) -> AppResult<(String, String, Vec<u8>)> {
    let issuer =
        crate::billing::profiles::document_issuer(engine.store().as_ref(), &i.workspace).await?;
    let credited = crate::app::invoices::credited(engine, i).await?;
    let mut doc = crate::billing::documents::invoice_document(&issuer, i, credited);
    doc.logo =
        crate::billing::profiles::document_logo(engine.store().as_ref(), &i.workspace).await?;
    let bytes = tokio::task::spawn_blocking(move || tollgate_pdf::render_invoice(&doc))
        .await
        .map_err(Error::internal)?
        .map_err(Error::internal)?;
    let name = format!("{}.pdf", crate::billing::documents::invoice_number(i));
    Ok((name, "application/pdf".to_owned(), bytes))
}

/// Whole days from `from` to `to`, rounded up (a reminder 2 days before says 2).
fn days_until(from: Timestamp, to: Timestamp) -> i64 {
    let seconds = to.duration_since(from).as_secs();
    (seconds.max(0) + 86_399) / 86_400
}

/// The variables of `template` for `event`, read from the store now. `attach` is set when the
/// message is being sent (not previewed): the invoice PDF of an issued invoice is attached, and a
/// sign-in email's single-use link is minted.
pub async fn compose(
    engine: &Engine,
    settings: Option<&EmailSettingsRecord>,
    event: &OutboxEvent,
    template: TemplateName,
    attach: bool,
) -> AppResult<Composed> {
    let ws = event.workspace.as_str();
    let data = &event.data;
    let owner = match &event.customer {
        Some(id) => Some(customer(engine, ws, id).await?),
        None => None,
    };
    let common = json!({
        "brand": brand(engine, ws, settings).await?,
        "customer": owner.as_ref().map(customer_value),
        "event": {
            "id": event.id,
            "type": event.event_type,
            "occurred_at": event.occurred_at,
            "data": data,
        },
    });
    let mut attachments = Vec::new();
    let specific = match template {
        TemplateName::Welcome => json!({
            "plan": text(data, "plan"),
            "trial_end": text(data, "trial_end"),
            "key_last4": text(data, "key_last4").unwrap_or_default(),
            "docs_url": settings.and_then(|s| s.docs_url.clone()),
        }),
        TemplateName::TrialEnding => {
            let trial_end: Option<Timestamp> = text(data, "trial_end").and_then(|t| t.parse().ok());
            let version = data.get("catalog_version").and_then(Value::as_i64);
            let plan = text(data, "plan").unwrap_or_default();
            let mut fallback = None;
            if let (Some(version), Some(c)) = (version, &owner)
                && !c.has_payment_method
            {
                let catalog = engine.catalog(ws, version).await?;
                fallback = catalog
                    .catalog
                    .plans
                    .get(&plan)
                    .and_then(|p| p.trial_fallback.clone());
            }
            json!({
                "plan": plan,
                "trial_end": trial_end,
                "days": trial_end.map_or(0, |end| days_until(event.occurred_at, end)),
                "fallback_plan": fallback,
            })
        }
        TemplateName::TrialEnded => {
            let plan = text(data, "plan").unwrap_or_default();
            let trial_plan = text(data, "trial_plan").unwrap_or_else(|| plan.clone());
            json!({
                "converted": plan == trial_plan,
                "plan": plan,
                "trial_plan": trial_plan,
            })
        }
        TemplateName::UsageWarning | TemplateName::UsageLimit => json!({
            "meter": text(data, "meter"),
            "plan": text(data, "plan"),
            "threshold_percent": text(data, "threshold_percent"),
            "allowance": text(data, "allowance"),
            "used": text(data, "used"),
            "period_start": text(data, "period_start"),
            "period_end": text(data, "period_end"),
        }),
        TemplateName::InvoiceIssued | TemplateName::PaymentReceived => {
            let i = invoice(engine, ws, data).await?;
            if attach && template == TemplateName::InvoiceIssued {
                attachments.push(invoice_pdf(engine, &i).await?);
            }
            json!({"invoice": invoice_value(&i)})
        }
        TemplateName::PaymentFailed => {
            let i = invoice(engine, ws, data).await?;
            // `next_retry_at` as dunning writes it (the other names: Stripe's, older events).
            let retry_at = ["next_retry_at", "next_payment_attempt", "retry_at"]
                .iter()
                .find_map(|k| text(data, k));
            json!({"invoice": invoice_value(&i), "retry_at": retry_at})
        }
        TemplateName::RefundIssued => {
            let i = invoice(engine, ws, data).await?;
            let id = text(data, "credit_note").unwrap_or_default();
            let notes = engine
                .store()
                .list_credit_notes(&WorkspaceId::from(ws), &i.id)
                .await?;
            let note = notes
                .iter()
                .find(|n| n.id == id)
                .ok_or_else(|| Error::not_found("credit note", &id))?;
            json!({
                "invoice": invoice_value(&i),
                "credit_note": {
                    "id": note.id,
                    "number": crate::billing::documents::credit_note_number(&i, note),
                    "amount": crate::billing::invoices::money_text(note.amount_minor, &note.currency),
                    "currency": note.currency,
                    "reason": note.reason,
                },
            })
        }
        TemplateName::WebhookEndpointDisabled => json!({
            "endpoint": {"id": text(data, "id"), "url": text(data, "url")},
            "failing_since": text(data, "failing_since"),
            "reason": text(data, "reason"),
        }),
        // The link is minted now, when the message is sent (`attach`), never stored in clear
        // (app/users/magic_link.rs); a preview shows where it would go, with no working token.
        TemplateName::PortalSignIn => {
            let origin = text(data, "origin").unwrap_or_default();
            let url = match (&owner, attach) {
                (Some(c), true) => {
                    crate::app::users::magic_link::sign_in_url(engine, ws, &c.id, &origin).await?
                }
                _ => format!(
                    "{}/portal/enter/(a new link at send time)",
                    origin.trim_end_matches('/')
                ),
            };
            json!({"sign_in_url": url, "minutes": crate::app::users::portal::LINK_MINUTES})
        }
    };
    Ok(Composed {
        context: merge(common, specific),
        attachments,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_round_up() {
        let t = |s: &str| s.parse::<Timestamp>().unwrap_or(Timestamp::UNIX_EPOCH);
        assert_eq!(
            days_until(t("2026-11-07T08:00:00Z"), t("2026-11-09T08:00:00Z")),
            2
        );
        assert_eq!(
            days_until(t("2026-11-07T09:00:00Z"), t("2026-11-09T08:00:00Z")),
            2
        );
        assert_eq!(
            days_until(t("2026-11-09T09:00:00Z"), t("2026-11-09T08:00:00Z")),
            0
        );
    }
}
