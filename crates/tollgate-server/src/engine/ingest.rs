//! Durable, idempotent ingest: validate each event on its own, store the good ones in one
//! transaction with their aggregate updates, then apply them to the loaded counters.
//!
//! One bad event never loses the good ones: it is reported with its index, a code and a message.
//! After the store's commit the accepted events are durable; only then does the API answer 2xx.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use tollgate_core::code::Code;
use tollgate_core::ids::WorkspaceId;

use jiff::Timestamp;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use tollgate_core::event::Event;
use tollgate_core::meter::{ContributionValue, contribution};
use tollgate_store::{AggregateOp, AggregateUpdate, EventRecord, IngestItem, IngestOutcome};

use super::state::CustomerState;
use super::{CustomerSlot, Engine};
use crate::auth::Principal;
use crate::error::AppResult;

/// One event as sent to `POST /v1/events`.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
pub struct EventIn {
    /// Your id for the event: sending the same id again counts it once.
    pub id: Option<String>,
    pub customer: Option<String>,
    #[serde(rename = "type")]
    pub event_type: Option<String>,
    /// RFC 3339; defaults to now.
    pub timestamp: Option<String>,
    /// Who inside the customer did it (e.g. a user id); defaults to property `user`.
    pub subject: Option<String>,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub properties: serde_json::Map<String, serde_json::Value>,
}

/// What happened to one event of a batch.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct IngestResult {
    pub index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `accepted`, `duplicate`, `amended` (a duplicate that replaced the stored value) or
    /// `rejected`.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub code: Option<Code>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The answer to a batch.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct IngestReport {
    pub accepted: usize,
    pub duplicates: usize,
    /// Duplicates that replaced the stored event's value (`on_duplicate: latest_replaces`).
    pub amended: usize,
    pub rejected: usize,
    /// One entry per event, in order.
    pub results: Vec<IngestResult>,
}

/// Longest accepted event id, in bytes.
const MAX_ID_LEN: usize = 256;
/// How far ahead of the customer's clock an event may be stamped.
const FUTURE_TOLERANCE_SECONDS: i64 = 300;

pub(crate) struct Rejection {
    code: Code,
    message: String,
}

impl Rejection {
    pub(super) fn message(self) -> String {
        self.message
    }
}

pub(super) fn reject(code: Code, message: impl Into<String>) -> Rejection {
    Rejection {
        code,
        message: message.into(),
    }
}

/// The shape checks that need no state.
struct Parsed {
    id: String,
    customer: String,
    event: Event,
    explicit_time: bool,
}

fn parse(raw: &EventIn, caller: &Principal) -> Result<Parsed, Rejection> {
    let id = raw
        .id
        .clone()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| reject(Code::MissingId, "`id` is required"))?;
    if id.len() > MAX_ID_LEN {
        return Err(reject(
            Code::InvalidId,
            format!("`id` is longer than {MAX_ID_LEN} bytes"),
        ));
    }
    let customer = match (raw.customer.clone().filter(|s| !s.is_empty()), caller) {
        (Some(c), Principal::Customer { customer, .. }) if &c != customer => {
            return Err(reject(
                Code::UnknownCustomer,
                format!("customer {c:?} not found"),
            ));
        }
        (Some(c), _) => c,
        (None, Principal::Customer { customer, .. }) => customer.clone(),
        (None, Principal::Admin { .. }) => {
            return Err(reject(Code::MissingCustomer, "`customer` is required"));
        }
    };
    let event_type = raw
        .event_type
        .clone()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| reject(Code::MissingType, "`type` is required"))?;
    let (timestamp, explicit_time) = match &raw.timestamp {
        None => (Timestamp::UNIX_EPOCH, false),
        Some(text) => (
            text.parse::<Timestamp>().map_err(|e| {
                reject(
                    Code::InvalidTimestamp,
                    format!("`timestamp` {text:?} is not RFC 3339: {e}"),
                )
            })?,
            true,
        ),
    };
    let subject = raw
        .subject
        .clone()
        .or_else(|| match raw.properties.get("user") {
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            _ => None,
        });
    Ok(Parsed {
        id,
        customer,
        event: Event {
            event_type,
            timestamp,
            subject,
            properties: raw.properties.clone(),
        },
        explicit_time,
    })
}

/// The store updates one event brings to a customer's meters.
pub(super) fn updates_for(
    state: &CustomerState,
    event: &Event,
) -> Result<Vec<AggregateUpdate>, Rejection> {
    let Some(compiled) = state.catalog.as_ref() else {
        return Ok(Vec::new());
    };
    let Some(meters) = compiled.meters_by_event.get(&event.event_type) else {
        return Ok(Vec::new());
    };
    let period_start = state.period_at(event.timestamp).start;
    let mut updates = Vec::new();
    for meter_key in meters {
        let meter = &compiled.catalog.meters[meter_key];
        let Some(c) =
            contribution(meter_key, meter, event).map_err(|e| reject(e.code(), e.to_string()))?
        else {
            continue;
        };
        let mut subjects = vec![String::new()];
        if let Some(s) = event
            .subject
            .as_ref()
            .filter(|_| compiled.subject_meters.contains(meter_key))
        {
            subjects.push(s.clone());
        }
        for subject in subjects {
            let op = match &c.value {
                ContributionValue::Add(x) => AggregateOp::Add(*x),
                ContributionValue::Max(x) => AggregateOp::Max(*x),
                ContributionValue::Latest(x) => AggregateOp::Latest {
                    value: *x,
                    at: event.timestamp,
                },
                ContributionValue::Unique(v) => AggregateOp::Unique(v.clone()),
                ContributionValue::Level(x) => AggregateOp::Level {
                    value: *x,
                    at: event.timestamp,
                },
            };
            // A correction lowers period totals only: a rolling window keeps what it admitted.
            if let (Some(_), ContributionValue::Add(x)) =
                (compiled.rolling_meters.get(meter_key), &c.value)
                && !x.is_sign_negative()
            {
                updates.push(AggregateUpdate {
                    meter: meter_key.clone(),
                    period_start,
                    subject: subject.clone(),
                    group_key: c.group_key.clone(),
                    op: AggregateOp::WindowEntry {
                        quantity: *x,
                        at: event.timestamp,
                    },
                });
            }
            updates.push(AggregateUpdate {
                meter: meter_key.clone(),
                period_start,
                subject,
                group_key: c.group_key.clone(),
                op,
            });
        }
    }
    Ok(updates)
}

/// A customer's gate as one batch holds it.
enum Gate<'a> {
    /// Beside other batches of the customer: their commits may share one fsync.
    Shared {
        _held: tokio::sync::RwLockReadGuard<'a, ()>,
    },
    /// Alone: a batch with corrections (checked against the usage every earlier batch left) or
    /// with replacements of stored events.
    Exclusive {
        _held: tokio::sync::RwLockWriteGuard<'a, ()>,
    },
}

impl Gate<'_> {
    fn is_shared(&self) -> bool {
        matches!(self, Gate::Shared { .. })
    }
}

impl Engine {
    /// Ingests a batch: see the module docs. Batches of one customer run side by side (the store
    /// may commit them together); a batch that turns out to need the customer alone (a
    /// correction, a replacement) takes its gate exclusively.
    pub async fn ingest(&self, caller: &Principal, batch: Vec<EventIn>) -> AppResult<IngestReport> {
        if let Some(report) = self.ingest_gated(caller, &batch, false).await? {
            return Ok(report);
        }
        self.ingest_gated(caller, &batch, true)
            .await?
            .ok_or_else(|| crate::error::Error::internal("an exclusive ingest asked to retry"))
    }

    /// `None` if the batch holds a correction and `exclusive` is false: nothing was stored, and
    /// the batch must run again with `exclusive`.
    async fn ingest_gated(
        &self,
        caller: &Principal,
        batch: &[EventIn],
        exclusive: bool,
    ) -> AppResult<Option<IngestReport>> {
        let workspace = caller.workspace().to_owned();
        let mut results: Vec<Option<IngestResult>> = vec![None; batch.len()];
        let mut parsed: Vec<(usize, Parsed)> = Vec::with_capacity(batch.len());
        for (index, raw) in batch.iter().enumerate() {
            match parse(raw, caller) {
                Ok(p) => parsed.push((index, p)),
                Err(r) => results[index] = Some(rejected(index, raw.id.clone(), r)),
            }
        }

        // Load every customer of the batch, then hold their gates (in a fixed order) across the
        // commit, so no concurrent load can see these events before they are applied.
        let mut slots: BTreeMap<String, Arc<CustomerSlot>> = BTreeMap::new();
        for (_, p) in &parsed {
            if !slots.contains_key(&p.customer) {
                match self.slot(&workspace, &p.customer).await {
                    Ok(slot) => {
                        slots.insert(p.customer.clone(), slot);
                    }
                    Err(e) if e.code == Code::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
        }
        let mut gates = Vec::with_capacity(slots.len());
        for slot in slots.values() {
            gates.push(if exclusive {
                Gate::Exclusive {
                    _held: slot.gate.write().await,
                }
            } else {
                Gate::Shared {
                    _held: slot.gate.read().await,
                }
            });
        }

        // Each customer's now (its test clock's, if it has one), read before any state lock.
        let mut clocks: HashMap<String, Timestamp> = HashMap::with_capacity(slots.len());
        for (customer, slot) in &slots {
            let test_clock = slot
                .lock_state()
                .as_ref()
                .and_then(|s| s.record.test_clock.clone());
            clocks.insert(
                customer.clone(),
                self.now_for(&workspace, test_clock.as_deref()).await?,
            );
        }

        // Corrections accepted so far in this batch, per (customer, meter, subject).
        let mut corrections: HashMap<(String, String, String), Decimal> = HashMap::new();
        let mut items: Vec<IngestItem> = Vec::with_capacity(parsed.len());
        let mut item_index: Vec<(usize, String)> = Vec::with_capacity(parsed.len());
        for (index, mut p) in parsed {
            let Some(slot) = slots.get(&p.customer) else {
                let r = reject(
                    Code::UnknownCustomer,
                    format!("customer {:?} not found", p.customer),
                );
                results[index] = Some(rejected(index, Some(p.id), r));
                continue;
            };
            let guard = slot.lock_state();
            let Some(state) = guard.as_ref() else {
                continue;
            };
            let now = clocks
                .get(&p.customer)
                .copied()
                .unwrap_or_else(|| self.now());
            if state.record.archived_at.is_some() {
                let r = reject(
                    Code::CustomerArchived,
                    "the customer is archived; its usage is kept but takes no new events",
                );
                results[index] = Some(rejected(index, Some(p.id), r));
                continue;
            }
            if !p.explicit_time {
                p.event.timestamp = now;
            } else if p.event.timestamp.as_second() > now.as_second() + FUTURE_TOLERANCE_SECONDS {
                let r = reject(
                    Code::TimestampInFuture,
                    "`timestamp` is more than 5 minutes in the future",
                );
                results[index] = Some(rejected(index, Some(p.id), r));
                continue;
            }
            let checked = updates_for(state, &p.event);
            if !exclusive
                && checked
                    .as_ref()
                    .is_ok_and(|updates| updates.iter().any(is_correction))
            {
                return Ok(None);
            }
            let checked = checked.and_then(|updates| {
                corrections_allowed(caller, state, &updates, &mut corrections)?;
                Ok(updates)
            });
            match checked {
                Err(r) => results[index] = Some(rejected(index, Some(p.id), r)),
                Ok(updates) => {
                    items.push(IngestItem {
                        event: EventRecord {
                            workspace: workspace.clone(),
                            id: p.id.clone(),
                            customer: p.customer.clone(),
                            event_type: p.event.event_type,
                            timestamp: p.event.timestamp,
                            subject: p.event.subject,
                            properties: serde_json::Value::Object(p.event.properties),
                            // On the customer's clock, like the timestamp.
                            received_at: now,
                        },
                        updates,
                    });
                    item_index.push((index, p.customer));
                }
            }
        }

        let outcomes = if items.is_empty() {
            Vec::new()
        } else {
            self.store
                .ingest(&WorkspaceId::from(&workspace), &items)
                .await?
        };
        // With shared counters: the accepted uses to add to them, per customer.
        let mut shared_uses: BTreeMap<&str, Vec<super::shared::SharedUse>> = BTreeMap::new();
        let mut replacing: Vec<usize> = Vec::new();
        for (n, ((item, outcome), (index, customer))) in
            items.iter().zip(&outcomes).zip(&item_index).enumerate()
        {
            if *outcome == IngestOutcome::Accepted
                && let Some(state) = slots[customer].lock_state().as_mut()
            {
                state.apply(&item.updates, Decimal::ONE);
                if self.shared.is_some()
                    && let Some(uses) = self.shared_uses(
                        &workspace,
                        customer,
                        state,
                        item,
                        clocks[customer],
                        &format!("e{}", item.event.id),
                    )
                {
                    shared_uses.entry(customer).or_default().extend(uses);
                }
            }
            if *outcome == IngestOutcome::Duplicate
                && slots[customer]
                    .lock_state()
                    .as_ref()
                    .is_some_and(|s| super::amend::replaces(s, &item.event.event_type))
            {
                replacing.push(n);
                continue;
            }
            let status = match outcome {
                IngestOutcome::Accepted => "accepted",
                IngestOutcome::Duplicate => "duplicate",
            };
            results[*index] = Some(IngestResult {
                index: *index,
                id: Some(item.event.id.clone()),
                status,
                code: None,
                message: None,
            });
        }
        // Duplicates of `latest_replaces` meters, one at a time in batch order (a later copy in
        // the same batch replaces an earlier one), under the gates held alone: a replacement
        // reads the stored event and writes its amendment, which no other batch may interleave.
        // This batch's own events are committed and applied by now, so letting the gates go for
        // a moment loses nothing.
        if !replacing.is_empty() && gates.iter().any(Gate::is_shared) {
            gates.clear();
            for slot in slots.values() {
                gates.push(Gate::Exclusive {
                    _held: slot.gate.write().await,
                });
            }
        }
        let mut amended_customers: Vec<&str> = Vec::new();
        for n in replacing {
            let (item, (index, customer)) = (&items[n], &item_index[n]);
            let slot = &slots[customer];
            let status = match self
                .replace_event(caller, slot, item, &mut corrections)
                .await?
            {
                Ok(super::amend::Replaced::Unchanged) => "duplicate",
                Ok(super::amend::Replaced::Amended(change, seq)) => {
                    if let Some(state) = slot.lock_state().as_mut() {
                        state.apply(&change.updates, Decimal::ONE);
                        if self.shared.is_some()
                            && let Some(uses) = self.shared_uses(
                                &workspace,
                                customer,
                                state,
                                &change,
                                clocks[customer],
                                // Its own members: the first copy's window entries stay.
                                &format!("a{}.{seq}", change.event.id),
                            )
                        {
                            shared_uses.entry(customer).or_default().extend(uses);
                        }
                    }
                    amended_customers.push(customer);
                    "amended"
                }
                Err(r) => {
                    results[*index] = Some(rejected(*index, Some(item.event.id.clone()), r));
                    continue;
                }
            };
            results[*index] = Some(IngestResult {
                index: *index,
                id: Some(item.event.id.clone()),
                status,
                code: None,
                message: None,
            });
        }
        drop(gates);
        if let Some(counters) = &self.shared {
            for (customer, uses) in shared_uses {
                self.add_committed(counters, &workspace, customer, clocks[customer], uses)
                    .await?;
            }
        }
        let mut counted: Vec<&str> = item_index
            .iter()
            .zip(&outcomes)
            .filter(|(_, o)| **o == IngestOutcome::Accepted)
            .map(|((_, customer), _)| customer.as_str())
            .chain(amended_customers)
            .collect();
        counted.sort_unstable();
        counted.dedup();
        for customer in counted {
            self.evaluate_alerts(&workspace, customer).await;
        }
        metrics::counter!("tollgate_events_total", "outcome" => "accepted").increment(
            outcomes
                .iter()
                .filter(|o| **o == IngestOutcome::Accepted)
                .count() as u64,
        );

        let results: Vec<IngestResult> = results.into_iter().flatten().collect();
        let count = |s: &str| results.iter().filter(|r| r.status == s).count();
        Ok(Some(IngestReport {
            accepted: count("accepted"),
            duplicates: count("duplicate"),
            amended: count("amended"),
            rejected: count("rejected"),
            results,
        }))
    }
}

/// A negative quantity: checked against the usage all earlier batches left, so its batch runs
/// alone.
fn is_correction(update: &AggregateUpdate) -> bool {
    matches!(update.op, AggregateOp::Add(x) if x.is_sign_negative() && !x.is_zero())
}

impl Engine {
    /// The shared-counter uses of an accepted event (`None` if it has none it can count).
    fn shared_uses(
        &self,
        workspace: &str,
        customer: &str,
        state: &CustomerState,
        item: &IngestItem,
        now: Timestamp,
        tag: &str,
    ) -> Option<Vec<super::shared::SharedUse>> {
        let compiled = state.catalog.as_ref()?;
        let prefix = crate::counters::keys::customer_prefix(workspace, customer);
        let period = state.period_at(item.event.timestamp);
        match super::shared::uses_of(compiled, &prefix, now, &period, &item.updates, tag) {
            Ok(uses) => Some(uses),
            Err(error) => {
                tracing::warn!(%error, event = %item.event.id, "an event's quantity does not fit a shared counter");
                None
            }
        }
    }
}

/// Negative quantities are corrections: only an admin key sends them, only in the current
/// period, and never taking a total below zero (so no correction can make room beyond what a
/// limit admitted). `pending` carries the corrections of the batch accepted so far.
pub(super) fn corrections_allowed(
    caller: &Principal,
    state: &CustomerState,
    updates: &[AggregateUpdate],
    pending: &mut HashMap<(String, String, String), Decimal>,
) -> Result<(), Rejection> {
    let negatives: Vec<(&AggregateUpdate, Decimal)> = updates
        .iter()
        .filter_map(|u| match u.op {
            AggregateOp::Add(x) if x.is_sign_negative() && !x.is_zero() => Some((u, x)),
            _ => None,
        })
        .collect();
    if negatives.is_empty() {
        return Ok(());
    }
    if !matches!(caller, Principal::Admin { .. }) {
        return Err(reject(
            Code::NegativeQuantity,
            "negative quantities are corrections, which only an admin key may send",
        ));
    }
    let mut staged = Vec::with_capacity(negatives.len());
    for (update, x) in negatives {
        if update.period_start != state.period.start {
            return Err(reject(
                Code::CorrectionOutsidePeriod,
                "a correction applies to the customer's current billing period only",
            ));
        }
        let key = (
            state.record.id.clone(),
            update.meter.clone(),
            update.subject.clone(),
        );
        let before = state
            .period_usage
            .get(&(update.meter.clone(), update.subject.clone()))
            .copied()
            .unwrap_or_default()
            .saturating_add(pending.get(&key).copied().unwrap_or_default());
        if before.saturating_add(x).is_sign_negative() {
            return Err(reject(
                Code::CorrectionBelowZero,
                format!(
                    "the correction of {x} would take meter `{}` below zero (it is at {before})",
                    update.meter
                ),
            ));
        }
        staged.push((key, x));
    }
    for (key, x) in staged {
        let slot = pending.entry(key).or_default();
        *slot = slot.saturating_add(x);
    }
    Ok(())
}

fn rejected(index: usize, id: Option<String>, r: Rejection) -> IngestResult {
    IngestResult {
        index,
        id,
        status: "rejected",
        code: Some(r.code),
        message: Some(r.message),
    }
}
