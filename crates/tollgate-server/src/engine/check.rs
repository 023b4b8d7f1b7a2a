//! The hot path: "may this customer do this now?", answered from memory.
//!
//! With `consume`, the check reserves the quantity under the customer's lock before answering,
//! so concurrent callers never overshoot a limit, then writes the usage as an event (durable and
//! idempotent by its id); a duplicate or a failed write gives the reservation back.

use jiff::Timestamp;
use rust_decimal::Decimal;
use serde::Deserialize;
use tollgate_core::catalog::{Catalog, Enforcement, Limit, Plan, Quota, QuotaReset, Scope};
use tollgate_core::check::{
    CheckWindow, Decision, FeatureVerdict, Reason, evaluate_entitlement, evaluate_feature,
    upgrade_for_feature, upgrade_for_quota, upgrade_for_rate_limit,
};
use tollgate_core::code::Code;
use tollgate_core::ids::WorkspaceId;
use tollgate_core::limits::seconds_until;
use tollgate_store::{AggregateUpdate, EventRecord, IngestItem, IngestOutcome};

use super::Engine;
use super::catalogs::{CompiledCatalog, PlanTable};
use super::ingest::updates_for;
use super::state::CustomerState;
use crate::error::{AppResult, Error};

/// What is being checked.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CheckTarget {
    Feature(String),
    Meter(String),
}

#[derive(Debug, Clone)]
pub struct CheckRequest {
    pub workspace: String,
    pub customer: String,
    pub target: CheckTarget,
    pub quantity: Decimal,
    pub subject: Option<String>,
    /// Record the quantity as usage if allowed, atomically with the check.
    pub consume: bool,
    /// The id of the usage event a consuming check records; retries with the same id count once.
    pub event_id: Option<String>,
    /// Extra properties for the recorded event.
    pub properties: serde_json::Map<String, serde_json::Value>,
}

/// A decision plus what the HTTP layer needs for rate-limit headers.
#[derive(Debug, Clone)]
pub struct CheckOutcome {
    pub decision: Decision,
    /// The tightest request rate limit: `(limit, remaining, window seconds, reset)`.
    pub rate_limit: Option<RateLimitState>,
    /// The answer to a consuming check whose event was counted before (a retry with the same
    /// `event_id`): nothing was counted again. The API says so with `Idempotent-Replayed: true`.
    pub replayed: bool,
}

#[derive(Debug, Clone, Copy)]
pub struct RateLimitState {
    pub limit: u64,
    pub remaining: u64,
    pub window_seconds: u64,
    pub reset_at: Timestamp,
    pub now: Timestamp,
}

/// A reservation made in memory, to be made durable or taken back.
struct Reservation {
    item: IngestItem,
}

/// How long this node replays a consuming check's decision to a retry with the same event id.
const REPLAY_FOR: std::time::Duration = std::time::Duration::from_secs(24 * 3600);
/// Past this many remembered decisions, expired ones are dropped.
const REPLAY_PRUNE_AT: usize = 100_000;

/// A consuming check's decision, kept so a retry with its event id gets the same answer.
#[derive(Default)]
pub(super) struct Remembered {
    outcome: Option<(std::time::Instant, CheckOutcome)>,
}

impl Engine {
    /// Decides `req`. Borrowed, so that a check of a loaded customer that records nothing
    /// allocates nothing (tests/check_alloc.rs counts it).
    pub async fn check(&self, req: &CheckRequest) -> AppResult<CheckOutcome> {
        if let Some(answer) = self.check_now(req) {
            return answer;
        }
        // Boxed: the general path's future (store writes, replays, Redis) is large, and moving
        // it through every `await` on the hot path cost more than the check itself.
        Box::pin(self.check_general(req)).await
    }

    /// The hot path, synchronous: a check that records nothing, on this node's counters, of a
    /// customer whose state is loaded and current. `None`: take the general path.
    fn check_now(&self, req: &CheckRequest) -> Option<AppResult<CheckOutcome>> {
        if req.consume || self.shared.is_some() {
            return None;
        }
        // `decide` reserves only for a consuming check, so there is nothing to write here.
        let decided = self
            .try_with_state(&req.workspace, &req.customer, |state, now| {
                decide(state, now, req).map(|(outcome, _)| outcome)
            })
            .ok()?;
        if let Ok(outcome) = &decided {
            count_check(outcome.decision.allowed);
        }
        Some(decided)
    }

    async fn check_general(&self, req: &CheckRequest) -> AppResult<CheckOutcome> {
        let outcome = self.check_once(req).await?;
        if req.consume && outcome.decision.allowed {
            self.evaluate_alerts(&req.workspace, &req.customer).await;
        }
        Ok(outcome)
    }

    /// A check, answered once per consuming event id.
    async fn check_once(&self, req: &CheckRequest) -> AppResult<CheckOutcome> {
        let Some(event_id) = req.event_id.as_ref().filter(|_| req.consume) else {
            return self.decide_check(req).await;
        };
        // Idempotent like a POST with an idempotency key: the first request with this event id
        // decides; a retry, concurrent or later, waits for it and gets the same answer, so
        // retries never hold reservations that turn others away.
        let key = (
            req.workspace.clone(),
            req.customer.clone(),
            event_id.clone(),
        );
        let cell = self.replays.entry(key.clone()).or_default().clone();
        let mut remembered = cell.lock().await;
        if let Some((at, outcome)) = &remembered.outcome
            && at.elapsed() < REPLAY_FOR
        {
            return Ok(CheckOutcome {
                replayed: true,
                ..outcome.clone()
            });
        }
        let (workspace, customer, event_id) = key.clone();
        let mut outcome = self.decide_check(req).await?;
        // A retry after this node forgot the decision (restart, another node, expiry): the
        // event is stored, so the original check was admitted; answer so, counted once.
        if !outcome.decision.allowed
            && outcome.decision.reason != Reason::RateLimited
            && self
                .store
                .get_event(&WorkspaceId::from(&workspace), &event_id)
                .await?
                .is_some_and(|e| e.customer == customer)
        {
            outcome = admitted_before(outcome);
        }
        if outcome.decision.allowed {
            remembered.outcome = Some((std::time::Instant::now(), outcome.clone()));
        } else {
            drop(remembered);
            self.replays.remove(&key);
        }
        if self.replays.len() > REPLAY_PRUNE_AT {
            self.replays.retain(|_, cell| {
                cell.try_lock()
                    .map(|r| {
                        r.outcome
                            .as_ref()
                            .is_some_and(|(at, _)| at.elapsed() < REPLAY_FOR)
                    })
                    .unwrap_or(true)
            });
        }
        Ok(outcome)
    }

    async fn decide_check(&self, req: &CheckRequest) -> AppResult<CheckOutcome> {
        match &self.shared {
            None => self.check_local(req).await,
            Some(counters) => self.check_shared(counters, req).await,
        }
    }

    /// The check on this node's in-memory counters (the one-node path, and the fail-open path
    /// when shared counters are unreachable).
    pub(super) async fn check_local(&self, req: &CheckRequest) -> AppResult<CheckOutcome> {
        let (outcome, reservation) = self
            .with_state(&req.workspace, &req.customer, |state, now| {
                decide(state, now, req)
            })
            .await??;
        let Some(reservation) = reservation else {
            count_check(outcome.decision.allowed);
            return Ok(outcome);
        };
        let written = self
            .store
            .ingest(
                &WorkspaceId::from(&req.workspace),
                std::slice::from_ref(&reservation.item),
            )
            .await;
        let give_back =
            !matches!(written, Ok(ref o) if o.first() == Some(&IngestOutcome::Accepted));
        if give_back {
            let updates: &[AggregateUpdate] = &reservation.item.updates;
            self.with_state(&req.workspace, &req.customer, |state, _| {
                state.apply(updates, Decimal::NEGATIVE_ONE)
            })
            .await?;
        }
        let duplicate = written?.first() == Some(&IngestOutcome::Duplicate);
        count_check(true);
        Ok(if duplicate {
            counted_once(outcome, req.quantity)
        } else {
            outcome
        })
    }
}

/// Counts a check in `tollgate_checks_total`. The label values are literals, so the metric's key
/// is a static (no allocation per check).
pub(super) fn count_check(allowed: bool) {
    if allowed {
        metrics::counter!("tollgate_checks_total", "allowed" => "true").increment(1);
    } else {
        metrics::counter!("tollgate_checks_total", "allowed" => "false").increment(1);
    }
}

/// A denial turned into the answer to a check admitted earlier (its event is stored): allowed,
/// with the usage as it is now, which already counts it.
fn admitted_before(denied: CheckOutcome) -> CheckOutcome {
    let d = denied.decision;
    let mut allowed = Decision::from_reason(Reason::Allowed);
    allowed.limit = d.limit;
    allowed.used = d.used;
    allowed.remaining = d.remaining;
    allowed.window = d.window;
    allowed.scope = d.scope;
    allowed.reset_at = d.reset_at;
    CheckOutcome {
        decision: allowed,
        rate_limit: denied.rate_limit,
        replayed: true,
    }
}

/// The answer to a consuming check whose event was already stored: allowed (it was admitted
/// when first recorded) and counted once, so `used` does not include this request a second time.
pub(super) fn counted_once(mut outcome: CheckOutcome, quantity: Decimal) -> CheckOutcome {
    outcome.replayed = true;
    let d = &mut outcome.decision;
    d.used = d.used.map(|u| u.saturating_sub(quantity));
    if let (Some(remaining), Some(Limit::Finite(max))) = (d.remaining, d.limit) {
        d.remaining = Some(remaining.saturating_add(quantity).min(max));
    }
    outcome
}

fn decide(
    state: &mut CustomerState,
    now: Timestamp,
    req: &CheckRequest,
) -> AppResult<(CheckOutcome, Option<Reservation>)> {
    let subject = req.subject.as_deref().unwrap_or("");
    let answer = |decision: Decision, rate_limit: Option<RateLimitState>| CheckOutcome {
        decision,
        rate_limit,
        replayed: false,
    };
    if state.record.suspended {
        return Ok((
            answer(Decision::from_reason(Reason::CustomerSuspended), None),
            None,
        ));
    }
    if state.record.archived_at.is_some() {
        return Ok((
            answer(Decision::from_reason(Reason::CustomerArchived), None),
            None,
        ));
    }
    if state.paused() {
        return Ok((
            answer(Decision::from_reason(Reason::SubscriptionPaused), None),
            None,
        ));
    }
    let Some(compiled) = state.catalog.clone() else {
        return Ok((
            answer(Decision::from_reason(Reason::NoSubscription), None),
            None,
        ));
    };
    // The plan is borrowed from this (shared, immutable) catalog version rather than from the
    // state, so the state stays free for the counters without cloning the plan on every check;
    // by index, so neither lookup hashes the plan's key again.
    let Some(((plan_key, plan), table)) = state.effective_plan_index(now).and_then(|i| {
        Some((
            compiled.catalog.plans.get_index(i)?,
            compiled.plan_tables.get(i)?,
        ))
    }) else {
        return Ok((
            answer(Decision::from_reason(Reason::NoSubscription), None),
            None,
        ));
    };
    let catalog = &compiled.catalog;

    // Request rate limits count every check.
    let mut rate_limit: Option<RateLimitState> = None;
    for (i, rl) in plan.rate_limits.iter().enumerate() {
        let who = if rl.scope == Scope::Subject {
            subject
        } else {
            ""
        };
        let hit = state.rate_window(i, who, rl.per).hit(now, rl.limit);
        let current = RateLimitState {
            limit: rl.limit,
            remaining: hit.remaining,
            window_seconds: rl.per.seconds(),
            reset_at: hit.reset_at,
            now,
        };
        if rate_limit.is_none_or(|r| current.remaining < r.remaining) {
            rate_limit = Some(current);
        }
        if !hit.allowed {
            let mut d = Decision::from_reason(Reason::RateLimited);
            d.limit = Some(Limit::Finite(Decimal::from(rl.limit)));
            d.remaining = Some(Decimal::ZERO);
            d.window = Some(CheckWindow::Length(rl.per));
            d.scope = Some(rl.scope);
            d.reset_at = Some(hit.reset_at);
            d.retry_after = Some(seconds_until(now, hit.reset_at).max(1));
            d.upgrade = upgrade_for_rate_limit(catalog, plan_key, rl);
            return Ok((answer(d, Some(current)), None));
        }
    }

    match &req.target {
        CheckTarget::Feature(feature) => {
            let d =
                feature_decision_in(state, catalog, plan_key, plan, table, feature, req.quantity);
            Ok((answer(d, rate_limit), None))
        }
        CheckTarget::Meter(meter) => {
            // The plan's quotas on the meter, from the version's table (`None`: no such meter).
            let Some(quotas) = table.meters.get(meter.as_str()) else {
                return Ok((
                    answer(Decision::from_reason(Reason::UnknownTarget), rate_limit),
                    None,
                ));
            };
            let mut binding: Option<(&Quota, Decimal, Timestamp, bool)> = None;
            for quota in quotas.iter().filter_map(|&i| plan.quotas.get(i)) {
                let who = if quota.per == Scope::Subject {
                    subject
                } else {
                    ""
                };
                let (used, fits, reset_at) = quota_state(state, now, quota, who, req.quantity);
                let denied = !fits && quota.enforcement == Enforcement::Hard;
                if denied {
                    let mut d = quota_decision(Reason::QuotaExceeded, quota, used, reset_at, now);
                    d.upgrade = upgrade_for_quota(catalog, plan_key, quota, used, req.quantity);
                    d.retry_after = Some(seconds_until(now, reset_at).max(1));
                    return Ok((answer(d, rate_limit), None));
                }
                let tighter = binding.as_ref().is_none_or(|(q, u, _, _)| {
                    quota.limit.remaining(used) < q.limit.remaining(*u)
                        || q.limit == Limit::Unlimited
                });
                if tighter {
                    binding = Some((quota, used, reset_at, fits));
                }
            }
            let consumed = if req.consume {
                req.quantity
            } else {
                Decimal::ZERO
            };
            let mut d = match &binding {
                Some((q, used, reset_at, fits)) => {
                    let reason = if *fits {
                        Reason::Allowed
                    } else {
                        Reason::SoftLimitExceeded
                    };
                    quota_decision(reason, q, used.saturating_add(consumed), *reset_at, now)
                }
                None => {
                    let mut d = Decision::from_reason(Reason::Allowed);
                    d.used = Some(state.period_value(meter, "").saturating_add(consumed));
                    d.reset_at = Some(state.period.end);
                    d
                }
            };
            d.allowed = true;
            let reservation = if req.consume {
                Some(reserve(state, now, req, meter)?)
            } else {
                None
            };
            Ok((answer(d, rate_limit), reservation))
        }
    }
}

/// A feature check: the plan's entitlement (plus add-on grants), with the upgrade hint.
pub(super) fn feature_decision(
    state: &CustomerState,
    compiled: &CompiledCatalog,
    plan_key: &str,
    plan: &Plan,
    feature: &str,
    quantity: Decimal,
) -> Decision {
    match compiled.plan(plan_key) {
        Some((_, _, _, table)) => feature_decision_in(
            state,
            &compiled.catalog,
            plan_key,
            plan,
            table,
            feature,
            quantity,
        ),
        None => {
            let extra = addon_grants(state, feature);
            let verdict = evaluate_feature(&compiled.catalog, plan, feature, quantity, extra);
            decision_of(&compiled.catalog, plan_key, feature, quantity, verdict)
        }
    }
}

/// [`feature_decision`] with the plan's table at hand: the entitlement in one foldhash lookup of
/// the feature, where the catalog's `IndexMap`s would hash it twice with SipHash.
fn feature_decision_in(
    state: &CustomerState,
    catalog: &Catalog,
    plan_key: &str,
    plan: &Plan,
    table: &PlanTable,
    feature: &str,
    quantity: Decimal,
) -> Decision {
    let extra = addon_grants(state, feature);
    let verdict = match table.features.get(feature) {
        Some(index) => {
            let entitlement = index
                .and_then(|i| plan.features.get_index(i))
                .map(|(_, e)| e);
            evaluate_entitlement(entitlement, quantity, extra)
        }
        // Not in the table: an unknown feature, which the general evaluation answers.
        None => evaluate_feature(catalog, plan, feature, quantity, extra),
    };
    decision_of(catalog, plan_key, feature, quantity, verdict)
}

fn decision_of(
    catalog: &Catalog,
    plan_key: &str,
    feature: &str,
    quantity: Decimal,
    verdict: FeatureVerdict,
) -> Decision {
    let mut d = Decision::from_reason(verdict.reason);
    d.limit = verdict.limit;
    d.remaining = verdict.limit.and_then(|l| l.remaining(quantity));
    if let Some(tollgate_core::catalog::Entitlement::Config(v)) = verdict.value {
        d.value = Some(tollgate_core::catalog::Entitlement::Config(v));
    }
    if matches!(
        verdict.reason,
        Reason::FeatureNotInPlan | Reason::FeatureLimitExceeded
    ) {
        d.upgrade = upgrade_for_feature(catalog, plan_key, feature, quantity);
    }
    d
}

/// Used so far, whether `quantity` more fits, and when the quota frees up.
pub(super) fn quota_state(
    state: &mut CustomerState,
    now: Timestamp,
    quota: &Quota,
    who: &str,
    quantity: Decimal,
) -> (Decimal, bool, Timestamp) {
    match quota.reset {
        QuotaReset::Period => {
            let used = state.period_value(&quota.meter, who);
            (used, quota.limit.admits(used, quantity), state.period.end)
        }
        QuotaReset::Rolling(len) => {
            let Some(window) = state.window_mut(&quota.meter, who) else {
                let eases =
                    Timestamp::from_second(now.as_second() + len.seconds() as i64).unwrap_or(now);
                return (
                    Decimal::ZERO,
                    quota.limit.admits(Decimal::ZERO, quantity),
                    eases,
                );
            };
            let used = window.used_in(now, len);
            let fits = quota.limit.admits(used, quantity);
            let frees = match quota.limit {
                Limit::Finite(max) => window.next_fit_in(now, quantity, max, len).unwrap_or(now),
                Limit::Unlimited => now,
            };
            // Allowed: when the oldest use still in the window leaves it (usage starts to fall),
            // in whole seconds like the denial's time.
            let horizon = now.as_second() - len.seconds() as i64;
            let oldest = window
                .entries()
                .map(|(at, _)| at)
                .find(|at| *at > horizon)
                .unwrap_or(now.as_second());
            let eases = Timestamp::from_second(oldest + len.seconds() as i64).unwrap_or(now);
            (used, fits, if fits { eases } else { frees })
        }
    }
}

pub(super) fn quota_decision(
    reason: Reason,
    quota: &Quota,
    used: Decimal,
    reset_at: Timestamp,
    _now: Timestamp,
) -> Decision {
    let mut d = Decision::from_reason(reason);
    d.limit = Some(quota.limit);
    d.used = Some(used);
    d.remaining = quota.limit.remaining(used);
    d.window = Some(CheckWindow::of_quota(quota));
    d.scope = Some(quota.per);
    d.reset_at = Some(reset_at);
    d
}

/// Units of a limit feature added by the subscription's add-ons.
pub(super) fn addon_grants(state: &CustomerState, feature: &str) -> Decimal {
    let (Some(sub), Some(compiled)) = (&state.subscription, &state.catalog) else {
        return Decimal::ZERO;
    };
    let Some(quantities) = sub.addons.as_object() else {
        return Decimal::ZERO;
    };
    quantities
        .iter()
        .filter_map(|(addon, qty)| {
            let grant = compiled.catalog.addons.get(addon)?.grants.get(feature)?;
            let qty: Decimal = qty
                .as_i64()
                .map(Decimal::from)
                .or_else(|| qty.as_str()?.parse().ok())?;
            Some(*grant * qty)
        })
        .sum()
}

/// Applies the consumption to memory now and returns the event that makes it durable.
fn reserve(
    state: &mut CustomerState,
    now: Timestamp,
    req: &CheckRequest,
    meter_key: &str,
) -> AppResult<Reservation> {
    let item = usage_item(state, now, req, meter_key)?;
    state.apply(&item.updates, Decimal::ONE);
    Ok(Reservation { item })
}

/// The usage event a consuming check records, with its aggregate updates.
pub(super) fn usage_item(
    state: &CustomerState,
    now: Timestamp,
    req: &CheckRequest,
    meter_key: &str,
) -> AppResult<IngestItem> {
    let compiled = state
        .catalog
        .clone()
        .ok_or_else(|| Error::internal("no catalog"))?;
    let meter = &compiled.catalog.meters[meter_key];
    let event = tollgate_core::meter::usage_event(
        meter,
        req.quantity,
        req.subject.clone(),
        req.properties.clone(),
        now,
    );
    let updates =
        updates_for(state, &event).map_err(|r| Error::invalid(Code::InvalidCheck, r.message()))?;
    let id = req
        .event_id
        .clone()
        .unwrap_or_else(|| format!("chk_{}", uuid::Uuid::now_v7().simple()));
    Ok(IngestItem {
        event: EventRecord {
            workspace: req.workspace.clone(),
            id,
            customer: req.customer.clone(),
            event_type: event.event_type,
            timestamp: now,
            subject: event.subject,
            properties: serde_json::Value::Object(event.properties),
            received_at: now,
        },
        updates,
    })
}
