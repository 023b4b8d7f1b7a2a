//! Pause and resume a subscription.
//!
//! A pause takes effect at the end of the current period, the period's fees having been billed
//! for all of it (Paddle's default; nothing is prorated or refunded): until then the
//! subscription is `active` with `ends_at` set to that end, and the invoice closing the period
//! opens no next one. At the end (the scheduler's period-end job, or a bill run) the closing
//! invoice is written first, then the subscription becomes `paused` with no `ends_at`: no
//! invoices, and checks are denied with `subscription_paused` (events are still accepted and
//! kept, not billed); its `started_at` is the pause time, the start of a billing run that owes
//! nothing (a cancellation while paused ends it there). Resuming a paused subscription restarts
//! its billing from that moment, as
//! a new start would: `started_at` and the billing anchor move to the resume time (a prorated
//! first period under calendar billing), and the opening invoice (fees in advance) is billed
//! at once. Resuming before the pause took effect only withdraws the pause.

use jiff::Timestamp;
use tollgate_core::lifecycle::SubscriptionUpdate;
use tollgate_store::{SubscriptionRecord, SubscriptionStatus};

use super::{SubscriptionView, billing_anchor, customer_now, event_data, owned_subscription, view};
use crate::app::outbox::{self, types};
use crate::engine::Engine;
use crate::error::{AppResult, Error};

#[derive(Debug, Clone)]
pub struct PauseOrResume {
    pub workspace: String,
    pub customer: String,
    pub subscription: String,
}

/// Whether `sub` is an active subscription waiting for its pause at `ends_at`.
pub fn is_pausing(sub: &SubscriptionRecord) -> bool {
    sub.status == SubscriptionStatus::Active && sub.ends_at.is_some()
}

fn refused(e: tollgate_core::lifecycle::TransitionError) -> Error {
    Error::conflict(e.code(), e.to_string())
}

/// Asks for a pause at the end of the current period.
pub async fn pause(engine: &Engine, input: PauseOrResume) -> AppResult<SubscriptionView> {
    let PauseOrResume {
        workspace,
        customer,
        subscription,
    } = input;
    let now = customer_now(engine, &workspace, &customer).await?;
    let mut sub = owned_subscription(engine, &workspace, &customer, &subscription).await?;
    // Only an active subscription pauses (core's table); one already pausing stays as it is.
    sub.status
        .apply(SubscriptionUpdate::Pause)
        .map_err(refused)?;
    let catalog = engine.catalog(&workspace, sub.catalog_version).await?;
    if sub.ends_at.is_none() {
        let terms = crate::billing::invoices::terms(&sub, &catalog.catalog);
        sub.ends_at = Some(terms.paid_period_at(now).end);
        let mut data = event_data(&sub);
        if let Some(fields) = data.as_object_mut() {
            fields.insert("pauses_at".into(), serde_json::json!(sub.ends_at));
        }
        let event = outbox::event(
            engine,
            &workspace,
            Some(&customer),
            types::SUBSCRIPTION_UPDATED,
            now,
            data,
        );
        engine
            .store()
            .update_subscription_with_events(&sub, &[event])
            .await?;
        engine.refresh_customer(&workspace, &customer).await?;
        crate::app::jobs::schedule_subscription(engine, &sub, now).await?;
    }
    Ok(view(sub, &catalog, now))
}

/// Resumes a paused subscription from now (or withdraws a pause not yet in effect).
pub async fn resume(engine: &Engine, input: PauseOrResume) -> AppResult<SubscriptionView> {
    let PauseOrResume {
        workspace,
        customer,
        subscription,
    } = input;
    let now = customer_now(engine, &workspace, &customer).await?;
    let mut sub = owned_subscription(engine, &workspace, &customer, &subscription).await?;
    let catalog = engine.catalog(&workspace, sub.catalog_version).await?;
    if is_pausing(&sub) && sub.ends_at.is_some_and(|end| end > now) {
        sub.ends_at = None;
        let event = outbox::event(
            engine,
            &workspace,
            Some(&customer),
            types::SUBSCRIPTION_UPDATED,
            now,
            event_data(&sub),
        );
        engine
            .store()
            .update_subscription_with_events(&sub, &[event])
            .await?;
        engine.refresh_customer(&workspace, &customer).await?;
        crate::app::jobs::schedule_subscription(engine, &sub, now).await?;
        return Ok(view(sub, &catalog, now));
    }
    sub.status = sub
        .status
        .apply(SubscriptionUpdate::Resume)
        .map_err(refused)?;
    let plan = catalog
        .catalog
        .plans
        .get(&sub.plan)
        .ok_or_else(|| Error::internal(format!("plan {:?} is not in its catalog", sub.plan)))?;
    sub.started_at = now;
    sub.billing_anchor = billing_anchor(plan, now);
    sub.trial_end = None;
    sub.ends_at = None;
    let event = outbox::event(
        engine,
        &workspace,
        Some(&customer),
        types::SUBSCRIPTION_RESUMED,
        now,
        event_data(&sub),
    );
    engine
        .store()
        .update_subscription_with_events(&sub, &[event])
        .await?;
    engine.refresh_customer(&workspace, &customer).await?;
    // The opening invoice of the restarted billing, now; then the next period end.
    super::open_now(engine, &sub).await?;
    crate::app::jobs::schedule_subscription(engine, &sub, now).await?;
    Ok(view(sub, &catalog, now))
}

/// The pause of `sub` takes effect: called by the bill run once `ends_at` has passed and the
/// invoices up to it are written. Answers the paused record, stored with its event.
pub(crate) async fn pause_reached(
    engine: &Engine,
    mut sub: SubscriptionRecord,
    now: Timestamp,
) -> AppResult<SubscriptionRecord> {
    let at = sub.ends_at.unwrap_or(now);
    sub.status = sub
        .status
        .apply(SubscriptionUpdate::Pause)
        .map_err(refused)?;
    sub.ends_at = None;
    // Its billing stops here: its terms start again at the pause, with nothing billed while it
    // is paused (a cancellation while paused ends it at this start, owing nothing more).
    let catalog = engine.catalog(&sub.workspace, sub.catalog_version).await?;
    if let Some(plan) = catalog.catalog.plans.get(&sub.plan) {
        sub.billing_anchor = billing_anchor(plan, at);
    }
    sub.started_at = at;
    sub.trial_end = None;
    let mut data = event_data(&sub);
    if let Some(fields) = data.as_object_mut() {
        fields.insert("paused_at".into(), serde_json::json!(at));
    }
    let event = outbox::event(
        engine,
        &sub.workspace,
        Some(&sub.customer),
        types::SUBSCRIPTION_PAUSED,
        at,
        data,
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
