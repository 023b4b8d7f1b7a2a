//! Usage pushed to Stripe's Billing Meters, for workspaces where Stripe is the biller
//! (docs/PAYMENTS.md, "Stripe as the biller"). Tollgate still meters and enforces; Stripe
//! Billing invoices from the meter events.
//!
//! A `stripe.meter_push` job (wall clock, one chain per workspace: each run enqueues the next
//! one first, so a failing run never breaks the chain) reads the stored usage events after the
//! workspace's cursor `(received_at, id)`, in that order and in batches, up to
//! `PaymentsConfig::meter_settle` ago (so an ingest transaction still open is not passed by),
//! and sends one meter event per event and `count`/`sum` meter that reads it: `event_name` the
//! meter's Billing Meter, `payload[stripe_customer_id]` the customer's Stripe customer (made
//! when it has none), `payload[value]` what the event adds to the meter, `timestamp` when the
//! usage happened, and an `identifier` derived from the workspace, the event and the meter
//! (also the call's idempotency key), so a retried call or a pass repeated after a crash is
//! counted once by Stripe. The cursor moves after each batch, from where it was only.
//!
//! Not pushed (the cursor passes them): events of customers on a test clock (their time is not
//! Stripe's), values of zero or below (corrections), events older than Stripe's 35 days.

use std::collections::BTreeMap;

use jiff::SignedDuration;
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tollgate_core::code::Code;
use tollgate_core::ids::{CustomerId, WorkspaceId};
use tollgate_core::meter::{ContributionValue, contribution};
use tollgate_store::jobs::{JobRecord, NewJob};
use tollgate_store::outbox::OutboxEvent;

use super::stripe_client;
use super::stripe_sync::{meter_event_name, pushable};
use crate::engine::Engine;
use crate::error::AppResult;
use crate::ids::new_id;
use crate::providers::stripe::billing::MeterEventIn;

/// Batches read per pass at most (the next pass goes on where this one stopped).
const MAX_BATCHES: usize = 50;
/// Stripe takes meter events up to 35 days old.
const OLDEST: SignedDuration = SignedDuration::from_hours(35 * 24);

/// What a pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PushOutcome {
    /// Stored events read past the cursor.
    pub events: usize,
    /// Meter events sent to Stripe.
    pub pushed: i64,
    /// Events passed without a meter event (a test clock, nothing to add, too old).
    pub skipped: usize,
    pub batches: usize,
}

/// The identifier of the meter event of `event` for `meter`: the same on every pass.
fn identifier(workspace: &str, event: &str, meter: &str) -> String {
    let mut hash = Sha256::new();
    for part in [workspace, event, meter] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    format!("tg_{}", hex::encode(&hash.finalize()[..16]))
}

/// One pass: the workspace's usage after its cursor pushed to Stripe.
pub async fn push_usage(engine: &Engine, workspace: &str) -> AppResult<PushOutcome> {
    let store = engine.store();
    let ws = WorkspaceId::from(workspace);
    let mut outcome = PushOutcome::default();
    let Some(billing) = store.stripe_billing(&ws).await?.filter(|b| b.enabled) else {
        return Ok(outcome);
    };
    let Some(catalog) = engine.latest_catalog(workspace).await? else {
        return Ok(outcome);
    };
    let meters: Vec<_> = catalog
        .catalog
        .meters
        .iter()
        .filter(|(_, m)| pushable(m).is_ok())
        .collect();
    let client = stripe_client(engine, workspace).await?;
    let config = engine.payments();
    let now = engine.now();
    let until = now
        .checked_sub(SignedDuration::try_from(config.meter_settle).unwrap_or(SignedDuration::ZERO))
        .unwrap_or(now);
    let oldest = now.checked_sub(OLDEST).unwrap_or(now);
    // Per customer: its Stripe customer, or `None` when its events are not pushed.
    let mut customers: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut cursor = (billing.cursor_received_at, billing.cursor_event.clone());
    for _ in 0..MAX_BATCHES {
        let events = store
            .usage_events_after(&ws, (cursor.0, &cursor.1), until, config.meter_batch)
            .await?;
        let Some(last) = events.last() else {
            break;
        };
        let to = (last.received_at, last.id.clone());
        let full = i64::try_from(events.len()).is_ok_and(|n| n >= config.meter_batch);
        let mut pushed = 0;
        for event in &events {
            outcome.events += 1;
            let core_event = tollgate_core::event::Event {
                event_type: event.event_type.clone(),
                timestamp: event.timestamp,
                subject: event.subject.clone(),
                properties: event.properties.as_object().cloned().unwrap_or_default(),
            };
            let mut sent = false;
            for (key, meter) in &meters {
                let value = match contribution(key, meter, &core_event) {
                    Ok(Some(c)) => match c.value {
                        ContributionValue::Add(v) if v.is_sign_positive() && !v.is_zero() => v,
                        _ => continue,
                    },
                    _ => continue,
                };
                if event.timestamp < oldest {
                    continue;
                }
                if !customers.contains_key(&event.customer) {
                    let link = stripe_customer(engine, &client, workspace, &event.customer).await?;
                    customers.insert(event.customer.clone(), link);
                }
                let Some(Some(stripe_customer)) = customers.get(&event.customer) else {
                    continue;
                };
                let value = value.normalize().to_string();
                let id = identifier(workspace, &event.id, key);
                let name = meter_event_name(workspace, key);
                client
                    .meter_event(&MeterEventIn {
                        event_name: &name,
                        stripe_customer,
                        value: &value,
                        identifier: &id,
                        timestamp: event.timestamp.as_second(),
                    })
                    .await?;
                pushed += 1;
                sent = true;
            }
            if !sent {
                outcome.skipped += 1;
            }
        }
        let moved = store
            .advance_meter_cursor(
                &ws,
                (cursor.0, &cursor.1),
                (to.0, &to.1),
                pushed,
                engine.now(),
            )
            .await?;
        outcome.pushed += pushed;
        outcome.batches += 1;
        if !moved {
            // Another pass moved the cursor meanwhile: it goes on from there.
            break;
        }
        cursor = to;
        if !full {
            break;
        }
    }
    Ok(outcome)
}

/// The Stripe customer whose meter events a customer's usage becomes (made when it has none),
/// `None` when its usage is not pushed (a customer on a test clock, or archived).
async fn stripe_customer(
    engine: &Engine,
    client: &crate::providers::stripe::Stripe,
    workspace: &str,
    customer: &str,
) -> AppResult<Option<String>> {
    let record = engine
        .store()
        .get_customer(&WorkspaceId::from(workspace), &CustomerId::from(customer))
        .await?;
    if record.as_ref().is_none_or(|c| c.test_clock.is_some()) {
        return Ok(None);
    }
    match super::card::ensure_stripe_customer(engine, client, workspace, customer).await {
        Ok(link) => Ok(Some(link.provider_customer)),
        Err(e) if e.code == Code::CustomerArchived => Ok(None),
        Err(e) => Err(e),
    }
}

/// Enqueues the workspace's next push at `due_at` (wall clock), once per due time.
pub(crate) async fn enqueue_push(
    engine: &Engine,
    workspace: &str,
    due_at: jiff::Timestamp,
) -> AppResult<()> {
    let job = NewJob {
        workspace: workspace.to_owned(),
        id: new_id("job"),
        kind: super::kinds::METER_PUSH.to_owned(),
        key: format!("{}:{due_at}", super::kinds::METER_PUSH),
        customer: None,
        test_clock: None,
        due_at,
        payload: json!({}),
        max_attempts: crate::app::jobs::MAX_ATTEMPTS,
        created_at: engine.now(),
    };
    engine.store().enqueue_job(&job).await?;
    Ok(())
}

/// The `stripe.meter_push` job: the next run enqueued first (while Stripe is the biller), then
/// a pass.
pub(crate) async fn run_job(
    engine: &Engine,
    job: &JobRecord,
) -> AppResult<(Value, Vec<OutboxEvent>)> {
    let enabled = engine
        .store()
        .stripe_billing(&WorkspaceId::from(&job.workspace))
        .await?
        .is_some_and(|b| b.enabled);
    if !enabled {
        return Ok((json!({"skipped": "Stripe is not the biller"}), Vec::new()));
    }
    let every = SignedDuration::try_from(engine.payments().meter_push_interval)
        .unwrap_or(SignedDuration::from_mins(1));
    let now = engine.now();
    enqueue_push(
        engine,
        &job.workspace,
        now.checked_add(every).unwrap_or(now),
    )
    .await?;
    let outcome = push_usage(engine, &job.workspace).await?;
    Ok((json!(outcome), Vec::new()))
}
