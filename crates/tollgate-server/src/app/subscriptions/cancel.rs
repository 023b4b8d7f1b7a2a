//! Cancel a subscription: at the end of the current period, or at once.
//!
//! At once, the catalog's refund rule applies (`policies.refund_window_days`, QLP: "full refund
//! within 30 days of payment, as a credit note"): each paid invoice of the subscription paid
//! inside the window is refunded in full by a credit note. Without the policy nothing is
//! refunded; a cancellation at the period end refunds nothing either (the period was served).

use tollgate_core::lifecycle::SubscriptionUpdate;
use tollgate_store::SubscriptionStatus;

use super::{SubscriptionView, customer_now, owned_subscription, view};
use crate::engine::Engine;
use crate::error::AppResult;

#[derive(Debug, Clone)]
pub struct Cancel {
    pub workspace: String,
    pub customer: String,
    pub subscription: String,
    /// End now instead of at the end of the current period.
    pub immediately: bool,
}

pub async fn cancel(engine: &Engine, input: Cancel) -> AppResult<SubscriptionView> {
    let Cancel {
        workspace,
        customer,
        subscription,
        immediately,
    } = input;
    let now = customer_now(engine, &workspace, &customer).await?;
    let mut sub = owned_subscription(engine, &workspace, &customer, &subscription).await?;
    let catalog = engine.catalog(&workspace, sub.catalog_version).await?;
    let was_paused = sub.status == SubscriptionStatus::Paused;
    let update = if immediately {
        SubscriptionUpdate::CancelNow
    } else {
        SubscriptionUpdate::CancelAtPeriodEnd
    };
    // Core's table: a paused subscription is canceled at once or not at all, an expired one
    // not at all, and a canceled one's end only comes closer.
    sub.status = sub
        .status
        .apply(update)
        .map_err(|e| crate::error::Error::conflict(e.code(), e.to_string()))?;
    sub.canceled_at = sub.canceled_at.or(Some(now));
    let period_end = crate::billing::invoices::terms(&sub, &catalog.catalog)
        .period_at(now)
        .end;
    let end = if was_paused {
        // Paused, it owes nothing after its pause (its `started_at`): it ends there.
        sub.started_at
    } else if immediately {
        now
    } else {
        period_end
    };
    // Canceling again never pushes the end back.
    sub.ends_at = Some(
        sub.ends_at
            .filter(|e| *e < end && !was_paused)
            .unwrap_or(end),
    );
    let canceled = crate::app::outbox::event(
        engine,
        &workspace,
        Some(&customer),
        crate::app::outbox::types::SUBSCRIPTION_CANCELED,
        now,
        super::event_data(&sub),
    );
    engine
        .store()
        .update_subscription_with_events(&sub, &[canceled])
        .await?;
    engine.refresh_customer(&workspace, &customer).await?;
    crate::app::jobs::schedule_subscription(engine, &sub, now).await?;
    if immediately {
        // Its last invoice (the period so far) now, and it expires.
        super::open_now(engine, &sub).await?;
        refund_within_window(engine, &sub, now).await?;
        sub = owned_subscription(engine, &workspace, &customer, &subscription).await?;
    }
    crate::app::licenses::on_canceled(engine, &sub, immediately, now).await?;
    Ok(view(sub, &catalog, now))
}

/// Refunds in full each paid invoice of `sub` still inside the latest catalog's refund window.
async fn refund_within_window(
    engine: &Engine,
    sub: &tollgate_store::SubscriptionRecord,
    now: jiff::Timestamp,
) -> AppResult<()> {
    let Some(days) = engine
        .latest_catalog(&sub.workspace)
        .await?
        .and_then(|c| c.catalog.policies.refund_window_days)
    else {
        return Ok(());
    };
    let invoices = engine
        .store()
        .list_invoices(
            &tollgate_core::ids::WorkspaceId::from(&sub.workspace),
            &tollgate_core::ids::CustomerId::from(&sub.customer),
        )
        .await?;
    for invoice in invoices {
        let refundable = invoice.subscription.as_deref() == Some(sub.id.as_str())
            && invoice.status == tollgate_store::billing::InvoiceStatus::Paid
            && invoice.total_minor > 0
            && invoice.paid_at.is_some()
            && tollgate_core::lifecycle::invoice::within_refund_window(
                invoice.paid_at,
                now,
                Some(days),
            );
        if !refundable
            || crate::app::invoices::credited(engine, &invoice).await? >= invoice.total_minor
        {
            continue;
        }
        crate::app::invoices::issue_credit_note(
            engine,
            crate::app::invoices::IssueCreditNote {
                workspace: sub.workspace.clone(),
                invoice: invoice.id.clone(),
                amount: None,
                reason: Some(format!(
                    "subscription canceled within the {days}-day refund window"
                )),
                outside_refund_window: false,
                method: tollgate_store::billing::CreditNoteMethod::Refund,
            },
        )
        .await?;
    }
    Ok(())
}

/// A canceled subscription reached its end: it expires (the bill run calls this once the
/// invoices up to the end are written). Answers the expired record, stored with its event.
pub(crate) async fn expire_reached(
    engine: &Engine,
    mut sub: tollgate_store::SubscriptionRecord,
    now: jiff::Timestamp,
) -> AppResult<tollgate_store::SubscriptionRecord> {
    let at = sub.ends_at.unwrap_or(now);
    sub.status = sub
        .status
        .apply(SubscriptionUpdate::Expire)
        .map_err(|e| crate::error::Error::conflict(e.code(), e.to_string()))?;
    let event = crate::app::outbox::event(
        engine,
        &sub.workspace,
        Some(&sub.customer),
        crate::app::outbox::types::SUBSCRIPTION_EXPIRED,
        at,
        super::event_data(&sub),
    );
    engine
        .store()
        .update_subscription_with_events(&sub, &[event])
        .await?;
    engine
        .refresh_customer(&sub.workspace, &sub.customer)
        .await?;
    Ok(sub)
}
