//! Dunning: what follows a declined automatic payment, by the catalog's
//! `policies.dunning` (`retry_after_days: [1, 3, 5]`, `then: suspend | cancel | nothing`).
//!
//! The first decline makes the subscription `past_due` (core's `payment_failed`) and schedules
//! the retries, each a job on the customer's clock at that many days after the first failure.
//! When the last retry is declined the dunning is exhausted and `then` applies: the customer is
//! suspended, or the subscription canceled at once. A payment that succeeds at any step (a
//! retry, a card updated and charged, a bank transfer recorded) restores at once: the
//! subscription active again, a suspension made by the dunning lifted. Each step writes its
//! domain event. A decline is recorded once per provider reference, so a webhook announcing a
//! decline already seen is not a second failure.

use jiff::{SignedDuration, Timestamp};
use serde_json::json;
use tollgate_core::catalog::DunningEnd;
use tollgate_core::ids::WorkspaceId;
use tollgate_core::lifecycle::SubscriptionUpdate;
use tollgate_store::billing::InvoiceRecord;
use tollgate_store::payments::{
    DunningRecord, DunningStatus, PaymentOutcome, PaymentRecord, PaymentStatus,
};
use tollgate_store::{SubscriptionRecord, SubscriptionStatus};

use super::{kinds, payment_data};
use crate::app::outbox::{self, types};
use crate::engine::Engine;
use crate::error::{AppResult, Error};
use crate::ids::new_id;

/// A declined charge.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub provider: &'static str,
    /// The provider's payment (a PaymentIntent id): the same reference is one failure.
    pub reference: String,
    pub amount_minor: i64,
    pub code: String,
    pub message: String,
}

async fn subscription_of(
    engine: &Engine,
    invoice: &InvoiceRecord,
) -> AppResult<Option<SubscriptionRecord>> {
    let Some(id) = &invoice.subscription else {
        return Ok(None);
    };
    Ok(engine
        .store()
        .get_subscription(&WorkspaceId::from(&invoice.workspace), id)
        .await?)
}

/// Records a declined charge of `invoice` and takes the dunning one step: the failed payment
/// (the one recorded before, for a reference seen already) and the dunning.
pub(crate) async fn failed(
    engine: &Engine,
    invoice: &InvoiceRecord,
    failure: Failure,
) -> AppResult<(PaymentRecord, Option<DunningRecord>)> {
    let store = engine.store();
    let ws = WorkspaceId::from(&invoice.workspace);
    let now =
        crate::app::subscriptions::customer_now(engine, &invoice.workspace, &invoice.customer)
            .await?;
    let payment = PaymentRecord {
        workspace: invoice.workspace.clone(),
        id: new_id("pay"),
        invoice: invoice.id.clone(),
        customer: invoice.customer.clone(),
        provider: failure.provider.to_owned(),
        status: PaymentStatus::Failed,
        amount_minor: failure.amount_minor,
        currency: invoice.currency.clone(),
        reference: failure.reference.clone(),
        method: Some("card".into()),
        failure_code: Some(failure.code.clone()),
        failure_message: Some(failure.message.clone()),
        created_at: now,
    };
    let event = |kind: &str, data| {
        outbox::event(
            engine,
            &invoice.workspace,
            Some(&invoice.customer),
            kind,
            now,
            data,
        )
    };
    let previous = store.dunning(&ws, &invoice.id).await?;
    let failures = previous.as_ref().map_or(0, |d| d.failures) + 1;
    let started_at = previous.as_ref().map_or(now, |d| d.started_at);
    let sub = subscription_of(engine, invoice).await?;
    let policy = match &sub {
        Some(sub) => engine
            .catalog(&sub.workspace, sub.catalog_version)
            .await?
            .catalog
            .policies
            .dunning
            .clone(),
        None => engine
            .latest_catalog(&invoice.workspace)
            .await?
            .and_then(|c| c.catalog.policies.dunning.clone()),
    };
    let days = policy
        .as_ref()
        .map(|p| p.retry_after_days.clone())
        .unwrap_or_default();
    let retry_index = usize::try_from(failures - 1).unwrap_or(usize::MAX);
    let next_retry_at = days
        .get(retry_index)
        .map(|d| started_at + SignedDuration::from_hours(24 * i64::from(*d)));
    let mut data = payment_data(&payment);
    if let Some(fields) = data.as_object_mut() {
        fields.insert("attempt".into(), json!(failures));
        fields.insert("next_retry_at".into(), json!(next_retry_at));
    }
    let recorded = store
        .record_payment(&payment, None, &[event(types::PAYMENT_FAILED, data)])
        .await?;
    let payment = match recorded {
        PaymentOutcome::Duplicate(existing) => return Ok((existing, previous)),
        PaymentOutcome::Recorded { payment, .. } => payment,
    };
    // The subscription falls past due (once; a later decline keeps it there).
    if let Some(sub) = &sub
        && sub.status == SubscriptionStatus::Active
    {
        move_subscription(
            engine,
            sub,
            SubscriptionUpdate::PaymentFailed,
            types::SUBSCRIPTION_PAST_DUE,
            now,
        )
        .await?;
    }
    let mut dunning = DunningRecord {
        workspace: invoice.workspace.clone(),
        invoice: invoice.id.clone(),
        customer: invoice.customer.clone(),
        subscription: invoice.subscription.clone(),
        status: DunningStatus::Retrying,
        failures,
        next_retry_at,
        suspended: previous.as_ref().is_some_and(|d| d.suspended),
        started_at,
        updated_at: now,
    };
    let mut events = Vec::new();
    match next_retry_at {
        Some(at) => {
            super::collect::enqueue(engine, invoice, kinds::RETRY, Some((at, failures))).await?;
        }
        None => {
            dunning.status = DunningStatus::Exhausted;
            let then = policy.as_ref().map_or(DunningEnd::Nothing, |p| p.then);
            match then {
                DunningEnd::Suspend => {
                    crate::app::customers::set_suspended(
                        engine,
                        &invoice.workspace,
                        &invoice.customer,
                        true,
                    )
                    .await?;
                    dunning.suspended = true;
                }
                DunningEnd::Cancel => {
                    if let Some(sub) = sub.as_ref().filter(|s| !s.status.is_ending()) {
                        crate::app::subscriptions::cancel(
                            engine,
                            crate::app::subscriptions::Cancel {
                                workspace: sub.workspace.clone(),
                                customer: sub.customer.clone(),
                                subscription: sub.id.clone(),
                                immediately: true,
                            },
                        )
                        .await?;
                    }
                }
                DunningEnd::Nothing => {}
            }
            let then = match then {
                DunningEnd::Suspend => "suspend",
                DunningEnd::Cancel => "cancel",
                DunningEnd::Nothing => "nothing",
            };
            events.push(event(
                types::DUNNING_EXHAUSTED,
                json!({
                    "invoice": invoice.id,
                    "subscription": invoice.subscription,
                    "failures": failures,
                    "then": then,
                }),
            ));
        }
    }
    store.put_dunning(&dunning, &events).await?;
    Ok((payment, Some(dunning)))
}

async fn move_subscription(
    engine: &Engine,
    sub: &SubscriptionRecord,
    update: SubscriptionUpdate,
    event_type: &str,
    now: Timestamp,
) -> AppResult<()> {
    let mut moved = sub.clone();
    moved.status = sub
        .status
        .apply(update)
        .map_err(|e| Error::conflict(e.code(), e.to_string()))?;
    let event = outbox::event(
        engine,
        &sub.workspace,
        Some(&sub.customer),
        event_type,
        now,
        crate::app::subscriptions::event_data(&moved),
    );
    engine
        .store()
        .update_subscription_with_events(&moved, &[event])
        .await?;
    engine.refresh_customer(&sub.workspace, &sub.customer).await
}

/// `paid` was just paid: its dunning, if any, ends at once (the subscription active again, a
/// suspension the dunning made lifted). Retries still scheduled find the invoice paid and do
/// nothing.
pub(crate) async fn recovered(engine: &Engine, paid: &InvoiceRecord) -> AppResult<()> {
    let store = engine.store();
    let Some(mut dunning) = store
        .dunning(&WorkspaceId::from(&paid.workspace), &paid.id)
        .await?
    else {
        return Ok(());
    };
    if dunning.status == DunningStatus::Recovered {
        return Ok(());
    }
    let now =
        crate::app::subscriptions::customer_now(engine, &paid.workspace, &paid.customer).await?;
    if let Some(sub) = subscription_of(engine, paid).await?
        && sub.status == SubscriptionStatus::PastDue
    {
        move_subscription(
            engine,
            &sub,
            SubscriptionUpdate::PaymentRecovered,
            types::SUBSCRIPTION_RECOVERED,
            now,
        )
        .await?;
    }
    if dunning.suspended {
        crate::app::customers::set_suspended(engine, &paid.workspace, &paid.customer, false)
            .await?;
        dunning.suspended = false;
    }
    dunning.status = DunningStatus::Recovered;
    dunning.next_retry_at = None;
    dunning.updated_at = now;
    store.put_dunning(&dunning, &[]).await?;
    Ok(())
}
