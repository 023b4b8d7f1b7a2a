//! What the gateway needs from the engine beyond `check` and `ingest`: the plan a customer is
//! on (for the `X-Tollgate-Plan` header), and *in-flight reservations*.
//!
//! A consuming check writes its usage event before it answers, so the usage is billed whatever
//! happens next. The gateway must not bill a request whose upstream failed (unless configured),
//! and it only learns that after forwarding; yet limits must stay exact while the request is in
//! flight. So a metered request is admitted against `used + in flight + cost` under the
//! customer's state lock and its cost is held in [`InFlight`] (not in the customer's counters);
//! when the upstream answers, the [`UsageWriter`] writes the event (in batches) and moves the cost
//! from "in flight" to the counters under the same lock, or dropping the [`Reservation`] gives it
//! back. Holding the cost outside the counters keeps it counted even if the customer's state is
//! reloaded from the store meanwhile (plan change, suspension, period roll-over), which would
//! drop anything reserved in the counters themselves.
//!
//! With shared counters (Redis), the cost is also reserved there at admission, in the same
//! atomic script a consuming check uses, so requests in flight on every node and consuming
//! `POST /v1/check` calls see each other: several nodes together never admit more than a hard
//! quota. Recording the request keeps that reservation (and adds only what it did not cover);
//! dropping it gives the units back.

use std::collections::HashMap;
use std::sync::Arc;
use tollgate_core::code::Code;
use tollgate_core::ids::WorkspaceId;

use dashmap::DashMap;
use jiff::Timestamp;
use rust_decimal::Decimal;
use tollgate_core::catalog::{Enforcement, Limit, Quota, QuotaReset, Scope};
use tollgate_core::check::{Decision, Reason, quotas_for, upgrade_for_quota};
use tollgate_core::limits::seconds_until;
use tollgate_store::{EventRecord, IngestItem, IngestOutcome};

use super::Engine;
use super::ingest::updates_for;
use super::state::{CustomerState, UsageKey};
use crate::error::{AppResult, Error};

/// Units admitted by the gateway whose upstream has not answered yet, per customer and
/// `(meter, subject)` (subject `""`: the whole customer).
#[derive(Default)]
pub struct InFlight {
    held: DashMap<(String, String), HashMap<UsageKey, Decimal>>,
}

impl InFlight {
    fn held(&self, customer: &(String, String), key: &UsageKey) -> Decimal {
        self.held
            .get(customer)
            .and_then(|m| m.get(key).copied())
            .unwrap_or_default()
    }

    fn add(&self, customer: &(String, String), keys: &[UsageKey], quantity: Decimal) {
        let mut entry = self.held.entry(customer.clone()).or_default();
        for key in keys {
            *entry.entry(key.clone()).or_default() += quantity;
        }
    }

    fn remove(&self, customer: &(String, String), keys: &[UsageKey], quantity: Decimal) {
        let empty = {
            let Some(mut entry) = self.held.get_mut(customer) else {
                return;
            };
            for key in keys {
                if let Some(v) = entry.get_mut(key) {
                    *v -= quantity;
                    if v.is_zero() {
                        entry.remove(key);
                    }
                }
            }
            entry.is_empty()
        };
        if empty {
            self.held.remove_if(customer, |_, m| m.is_empty());
        }
    }
}

/// What the gateway wants to reserve: `quantity` of `meter` for one request.
#[derive(Debug, Clone)]
pub struct ReserveRequest {
    pub workspace: String,
    pub customer: String,
    pub meter: String,
    pub quantity: Decimal,
    pub subject: Option<String>,
    /// The id of the usage event written if the reservation is recorded.
    pub event_id: String,
    /// Extra properties of that event.
    pub properties: serde_json::Map<String, serde_json::Value>,
}

/// Units held in flight for one request. Dropping it without recording gives them back.
pub struct Reservation {
    req: ReserveRequest,
    /// When the request was admitted, on the customer's clock: the time of the usage event.
    at: Timestamp,
    keys: Vec<UsageKey>,
    inflight: Arc<InFlight>,
    settled: bool,
    /// The units reserved in the shared counters, with shared counters configured.
    shared: Option<super::shared::SharedHold>,
    /// The plan in force at admission, read under the same lock (saves the gateway a second
    /// look-up for its `X-Tollgate-Plan` header).
    plan: Option<String>,
}

impl Reservation {
    /// The key of the plan the customer was on when the units were reserved.
    pub fn plan(&self) -> Option<&str> {
        self.plan.as_deref()
    }

    fn customer_key(&self) -> (String, String) {
        (self.req.workspace.clone(), self.req.customer.clone())
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if !self.settled {
            self.inflight
                .remove(&self.customer_key(), &self.keys, self.req.quantity);
        }
    }
}

impl Engine {
    /// The key of the plan in force for a customer now (`None` without a live subscription).
    pub async fn plan_of(&self, workspace: &str, customer: &str) -> AppResult<Option<String>> {
        self.with_state(workspace, customer, |state, now| {
            state.effective_plan(now).map(|(k, _)| k.to_owned())
        })
        .await
    }

    /// Whether every hard quota on `meter` has room for `quantity` more, counting the gateway's
    /// in-flight units: `None` if so, else the denial. Reserves nothing and counts no rate limit.
    pub async fn quota_headroom(
        &self,
        inflight: &InFlight,
        workspace: &str,
        customer: &str,
        meter: &str,
        subject: Option<&str>,
        quantity: Decimal,
    ) -> AppResult<Option<Decision>> {
        let key = (workspace.to_owned(), customer.to_owned());
        self.with_state(workspace, customer, |state, now| {
            quota_denial(
                state,
                now,
                meter,
                subject.unwrap_or_default(),
                quantity,
                |k| inflight.held(&key, k),
            )
        })
        .await
    }

    /// Admits `req.quantity` of `req.meter` against every hard quota, counting in-flight units,
    /// and holds it in flight: `Ok(Err(decision))` when a quota has no room. The caller checked
    /// the meter with [`Engine::check`] first (which counts the rate limit); this only closes the
    /// gap between that check and the upstream's answer.
    pub async fn reserve_in_flight(
        &self,
        inflight: &Arc<InFlight>,
        req: ReserveRequest,
    ) -> AppResult<Result<Reservation, Box<Decision>>> {
        let key = (req.workspace.clone(), req.customer.clone());
        let subject = req.subject.clone().unwrap_or_default();
        let mut keys = vec![(req.meter.clone(), String::new())];
        if !subject.is_empty() {
            keys.push((req.meter.clone(), subject.clone()));
        }
        let admitted = self
            .with_state(&req.workspace, &req.customer, |state, now| {
                if let Some(denied) =
                    quota_denial(state, now, &req.meter, &subject, req.quantity, |k| {
                        inflight.held(&key, k)
                    })
                {
                    return Err(Box::new(denied));
                }
                // Still under the state lock: no other request can be admitted in between.
                inflight.add(&key, &keys, req.quantity);
                Ok((now, state.effective_plan(now).map(|(k, _)| k.to_owned())))
            })
            .await?;
        let mut reservation = match admitted {
            Ok((at, plan)) => Reservation {
                req,
                at,
                keys,
                inflight: inflight.clone(),
                settled: false,
                shared: None,
                plan,
            },
            Err(denied) => return Ok(Err(denied)),
        };
        if let Some(counters) = &self.shared {
            let check = super::CheckRequest {
                workspace: reservation.req.workspace.clone(),
                customer: reservation.req.customer.clone(),
                target: super::CheckTarget::Meter(reservation.req.meter.clone()),
                quantity: reservation.req.quantity,
                subject: reservation.req.subject.clone(),
                consume: true,
                event_id: Some(reservation.req.event_id.clone()),
                properties: reservation.req.properties.clone(),
            };
            // Dropping `reservation` on a denial gives back the local in-flight units.
            match self.reserve_shared(counters, check).await? {
                Ok(hold) => reservation.shared = hold,
                Err(denied) => return Ok(Err(denied)),
            }
        }
        Ok(Ok(reservation))
    }
}

/// The first hard quota on `meter` that `quantity` more would break, as a denial.
fn quota_denial(
    state: &mut CustomerState,
    now: Timestamp,
    meter: &str,
    subject: &str,
    quantity: Decimal,
    held: impl Fn(&UsageKey) -> Decimal,
) -> Option<Decision> {
    if state.record.suspended {
        return Some(Decision::from_reason(Reason::CustomerSuspended));
    }
    if state.record.archived_at.is_some() {
        return Some(Decision::from_reason(Reason::CustomerArchived));
    }
    if state.paused() {
        return Some(Decision::from_reason(Reason::SubscriptionPaused));
    }
    let Some((plan_key, quotas)) = state.effective_plan(now).map(|(k, p)| {
        let hard: Vec<Quota> = quotas_for(p, meter)
            .filter(|q| q.enforcement == Enforcement::Hard)
            .cloned()
            .collect();
        (k.to_owned(), hard)
    }) else {
        return Some(Decision::from_reason(Reason::NoSubscription));
    };
    let compiled = state.catalog.clone()?;
    let meter_def = compiled.catalog.meters.get(meter)?;
    for quota in &quotas {
        let who = if quota.per == Scope::Subject {
            subject
        } else {
            ""
        };
        let in_flight = held(&(meter.to_owned(), who.to_owned()));
        let (used, reset_at) = match quota.reset {
            QuotaReset::Period => {
                let raw = state
                    .period_usage
                    .get(&(meter.to_owned(), who.to_owned()))
                    .copied()
                    .unwrap_or_default();
                (
                    tollgate_core::meter::convert(meter_def, raw.saturating_add(in_flight)),
                    state.period.end,
                )
            }
            QuotaReset::Rolling(len) => {
                match state.windows.get_mut(&(meter.to_owned(), who.to_owned())) {
                    Some(window) => {
                        let frees = match quota.limit {
                            Limit::Finite(max) => window.next_fit_in(
                                now,
                                quantity.saturating_add(in_flight),
                                max,
                                len,
                            ),
                            Limit::Unlimited => None,
                        };
                        (
                            window.used_in(now, len).saturating_add(in_flight),
                            frees.unwrap_or(now),
                        )
                    }
                    None => (in_flight, now),
                }
            }
        };
        if quota.limit.admits(used, quantity) {
            continue;
        }
        let mut d = Decision::from_reason(Reason::QuotaExceeded);
        d.limit = Some(quota.limit);
        d.used = Some(used);
        d.remaining = quota.limit.remaining(used);
        d.window = Some(tollgate_core::check::CheckWindow::of_quota(quota));
        d.scope = Some(quota.per);
        d.reset_at = Some(reset_at);
        d.retry_after = Some(seconds_until(now, reset_at).max(1));
        d.upgrade = upgrade_for_quota(&compiled.catalog, &plan_key, quota, used, quantity);
        return Some(d);
    }
    None
}

/// The event a reservation stands for and its aggregate updates: the meter's event type with its
/// filter values and `quantity` in its property, as a consuming check records it.
fn usage_item(
    state: &CustomerState,
    req: &ReserveRequest,
    at: Timestamp,
    received_at: Timestamp,
) -> AppResult<IngestItem> {
    let compiled = state
        .catalog
        .clone()
        .ok_or_else(|| Error::internal("no catalog"))?;
    let meter =
        compiled.catalog.meters.get(&req.meter).ok_or_else(|| {
            Error::internal(format!("meter {:?} is not in the catalog", req.meter))
        })?;
    let event = tollgate_core::meter::usage_event(
        meter,
        req.quantity,
        req.subject.clone(),
        req.properties.clone(),
        at,
    );
    let updates =
        updates_for(state, &event).map_err(|r| Error::invalid(Code::InvalidUsage, r.message()))?;
    Ok(IngestItem {
        event: EventRecord {
            workspace: req.workspace.clone(),
            id: req.event_id.clone(),
            customer: req.customer.clone(),
            event_type: event.event_type,
            timestamp: at,
            subject: event.subject,
            properties: serde_json::Value::Object(event.properties),
            received_at,
        },
        updates,
    })
}

/// Writes the usage of answered gateway requests in batches: one store transaction (one fsync)
/// for everything queued, instead of one per request, so the writes keep up with the proxy and
/// the usage not yet durable stays bounded by the queue (what a crash can lose).
#[derive(Clone)]
pub struct UsageWriter {
    queue: tokio::sync::mpsc::Sender<Reservation>,
}

/// Reservations waiting to be written; past this the gateway's settle waits in a task.
const USAGE_QUEUE: usize = 65_536;
/// Most reservations written in one transaction.
const USAGE_BATCH: usize = 2_048;

impl UsageWriter {
    /// Starts the writer task for `engine`; it ends when every `UsageWriter` clone is dropped
    /// and the queue is drained.
    pub fn start(engine: Arc<Engine>) -> Self {
        let (queue, mut rx) = tokio::sync::mpsc::channel::<Reservation>(USAGE_QUEUE);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(USAGE_BATCH);
            while rx.recv_many(&mut batch, USAGE_BATCH).await > 0 {
                engine.record_reservations(std::mem::take(&mut batch)).await;
            }
        });
        UsageWriter { queue }
    }

    /// Queues a reservation for writing.
    pub fn record(&self, reservation: Reservation) {
        match self.queue.try_send(reservation) {
            Ok(()) => {}
            Err(tokio::sync::mpsc::error::TrySendError::Full(r)) => {
                let queue = self.queue.clone();
                tokio::spawn(async move {
                    let _ = queue.send(r).await;
                });
            }
            // The writer is gone (shutdown): dropping the reservation gives its units back.
            Err(tokio::sync::mpsc::error::TrySendError::Closed(r)) => drop(r),
        }
    }
}

impl Engine {
    /// Writes many reservations: per workspace, one store transaction; then the counters and the
    /// in-flight units are settled under each customer's lock.
    pub async fn record_reservations(&self, reservations: Vec<Reservation>) {
        let mut by_workspace: HashMap<String, Vec<Reservation>> = HashMap::new();
        for r in reservations {
            by_workspace
                .entry(r.req.workspace.clone())
                .or_default()
                .push(r);
        }
        for (workspace, group) in by_workspace {
            if let Err(e) = self.record_workspace_reservations(&workspace, group).await {
                metrics::counter!("tollgate_gateway_metering_failures_total").increment(1);
                tracing::error!(code = e.code.as_str(), detail = %e.detail, "recording gateway usage failed");
            }
        }
    }

    async fn record_workspace_reservations(
        &self,
        workspace: &str,
        group: Vec<Reservation>,
    ) -> AppResult<()> {
        let mut slots: std::collections::BTreeMap<String, Arc<super::CustomerSlot>> =
            std::collections::BTreeMap::new();
        for r in &group {
            if !slots.contains_key(&r.req.customer) {
                slots.insert(
                    r.req.customer.clone(),
                    self.slot(workspace, &r.req.customer).await?,
                );
            }
        }
        let mut gates = Vec::with_capacity(slots.len());
        for slot in slots.values() {
            gates.push(slot.gate.write().await);
        }
        let now = self.now();
        // Two parallel vectors, so the items go to the store without a copy.
        let mut pending: Vec<Reservation> = Vec::with_capacity(group.len());
        let mut items: Vec<IngestItem> = Vec::with_capacity(group.len());
        for r in group {
            let slot = &slots[&r.req.customer];
            let item = {
                let guard = slot.lock_state();
                match guard.as_ref() {
                    Some(state) => usage_item(state, &r.req, r.at, now),
                    None => Err(Error::not_found("customer", &r.req.customer)),
                }
            };
            match item {
                Ok(item) => {
                    pending.push(r);
                    items.push(item);
                }
                Err(e) => {
                    tracing::error!(code = e.code.as_str(), detail = %e.detail, "gateway usage not recorded")
                }
            }
        }
        let written = self
            .store
            .ingest(&WorkspaceId::from(workspace), &items)
            .await;
        let mut accepted_items = Vec::new();
        let mut holds = Vec::new();
        for (i, (mut r, item)) in pending.into_iter().zip(items).enumerate() {
            let accepted = matches!(&written, Ok(o) if o.get(i) == Some(&IngestOutcome::Accepted));
            let slot = &slots[&r.req.customer];
            let mut guard = slot.lock_state();
            if let (true, Some(state)) = (accepted, guard.as_mut()) {
                state.apply(&item.updates, Decimal::ONE);
            }
            r.inflight
                .remove(&r.customer_key(), &r.keys, r.req.quantity);
            r.settled = true;
            match (accepted, r.shared.take()) {
                // Reserved in the shared counters at admission: only the rest is added.
                (true, Some(hold)) => holds.push((r.req.customer.clone(), hold)),
                (true, None) => accepted_items.push((r.req.customer.clone(), item)),
                // Not written (duplicate or failure): dropping the hold gives its units back.
                (false, hold) => drop(hold),
            }
        }
        drop(gates);
        for (customer, hold) in holds {
            hold.commit(self, workspace, &customer).await?;
        }
        for (customer, item) in &accepted_items {
            self.apply_to_shared(workspace, customer, item).await?;
        }
        if written.is_ok() {
            for customer in slots.keys() {
                self.evaluate_alerts(workspace, customer).await;
            }
        }
        written.map(|_| ()).map_err(Error::from)
    }
}
