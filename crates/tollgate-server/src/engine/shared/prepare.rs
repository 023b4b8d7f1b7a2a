//! Preparing a shared check under the customer's lock: the plan, the counters it reads and the
//! uses it adds, as a [`CheckProgram`] for Redis.

use std::collections::HashSet;
use std::sync::Arc;
use tollgate_core::code::Code;

use jiff::Timestamp;
use rust_decimal::Decimal;
use tollgate_core::catalog::{Enforcement, Limit, Quota, QuotaReset, Scope};
use tollgate_core::check::{Decision, Reason, quotas_for};
use tollgate_core::period::Period;
use tollgate_store::{AggregateOp, AggregateUpdate, IngestItem};

use crate::counters::{CheckProgram, Counter, CounterError, Increment, QuotaProbe, RateHit, keys};
use crate::engine::catalogs::CompiledCatalog;
use crate::engine::check::{CheckOutcome, CheckRequest, CheckTarget, quota_state, usage_item};
use crate::engine::state::CustomerState;
use crate::error::{AppResult, Error};

/// Slack on a period counter's expiry past the period's end (late events, clock skew).
const PERIOD_SLACK_MS: u64 = 86_400_000;
/// Slack on a window's and a rate counter's expiry past their length.
const WINDOW_SLACK_MS: u64 = 60_000;

/// What a counter counts, to build it from the store when it does not exist.
#[derive(Debug, Clone)]
pub(in crate::engine) enum Source {
    Period {
        meter: String,
        subject: String,
        period_start: Timestamp,
    },
    Window {
        meter: String,
        subject: String,
        len: u64,
    },
}

/// A use to add to a shared counter, and where that counter's history is in the store.
#[derive(Debug, Clone)]
pub(in crate::engine) struct SharedUse {
    pub(super) increment: Increment,
    pub(super) source: Source,
}

/// A check prepared from the cached state, to be decided in Redis.
pub(in crate::engine) struct Prepared {
    pub(super) now: Timestamp,
    /// The catalog version and plan decided on (for upgrade hints).
    pub(super) catalog: Arc<CompiledCatalog>,
    pub(super) plan_key: String,
    pub(super) program: CheckProgram,
    /// Per rate limit of `program`: `(limit, window seconds, scope, reset)`.
    pub(super) rates: Vec<(u64, u64, Scope, Timestamp)>,
    /// Per quota probe of `program`: how to seed it.
    pub(super) sources: Vec<Option<Source>>,
    pub(super) target: Target,
}

pub(super) enum Target {
    /// The answer once the rate limits pass (features, unknown meters).
    Fixed(Decision),
    Meter(Box<MeterCheck>),
}

pub(super) struct MeterCheck {
    pub(super) meter: String,
    /// Per quota probe: the quota (`None`: a read-only probe for `used`), and for quotas decided
    /// from the cached state, their verdict.
    pub(super) quotas: Vec<(Option<Quota>, Option<CachedVerdict>)>,
    pub(super) period_end: Timestamp,
    /// Without any quota: the meter's value from the cached state.
    pub(super) cached_used: Decimal,
    pub(super) item: Option<IngestItem>,
    /// Uses of the event on counters the script does not reserve: added after the commit.
    pub(super) later: Vec<SharedUse>,
}

/// `(used, fits, reset)` of a quota decided from the cached state.
type CachedVerdict = (Decimal, bool, Timestamp);

/// A prepared check, or the answer when no counter is needed (suspended, no subscription).
pub(in crate::engine) enum Preparation {
    Shared(Prepared),
    Answer(CheckOutcome),
}

fn ttl_until(now: Timestamp, end: Timestamp) -> u64 {
    let ms = end
        .as_millisecond()
        .saturating_sub(now.as_millisecond())
        .max(0) as u64;
    (ms + PERIOD_SLACK_MS).max(3_600_000)
}

/// The shared uses an accepted event brings: its additive aggregate updates, as period
/// counters, and its window entries, once per rolling length of the meter. `tag` makes window
/// members unique per use.
pub(in crate::engine) fn uses_of(
    compiled: &CompiledCatalog,
    prefix: &str,
    now: Timestamp,
    period: &Period,
    updates: &[AggregateUpdate],
    tag: &str,
) -> Result<Vec<SharedUse>, CounterError> {
    let mut uses = Vec::new();
    for (i, u) in updates.iter().enumerate() {
        if !compiled.additive_meters.contains(&u.meter) {
            continue;
        }
        match &u.op {
            AggregateOp::Add(x) => uses.push(SharedUse {
                increment: Increment {
                    counter: Counter::Period {
                        key: keys::period(prefix, u.period_start.as_second(), &u.meter, &u.subject),
                        ttl_ms: ttl_until(
                            now,
                            if u.period_start == period.start {
                                period.end
                            } else {
                                now
                            },
                        ),
                    },
                    delta: keys::scale_up(*x)?,
                    at: 0,
                    member: String::new(),
                },
                source: Source::Period {
                    meter: u.meter.clone(),
                    subject: u.subject.clone(),
                    period_start: u.period_start,
                },
            }),
            AggregateOp::WindowEntry { quantity, at } => {
                let delta = keys::scale_up(*quantity)?;
                for &len in compiled.rolling_lengths.get(&u.meter).into_iter().flatten() {
                    let (zset, total) = keys::window(prefix, len, &u.meter, &u.subject);
                    uses.push(SharedUse {
                        increment: Increment {
                            counter: Counter::Window {
                                zset,
                                total,
                                len_seconds: len,
                                ttl_ms: len * 1000 + WINDOW_SLACK_MS,
                            },
                            delta,
                            at: at.as_second(),
                            member: keys::member(delta, &format!("{tag}.{i}")),
                        },
                        source: Source::Window {
                            meter: u.meter.clone(),
                            subject: u.subject.clone(),
                            len,
                        },
                    });
                }
            }
            _ => {}
        }
    }
    Ok(uses)
}

/// Prepares a check under the customer's lock.
pub(in crate::engine) fn prepare(
    state: &mut CustomerState,
    now: Timestamp,
    req: &CheckRequest,
    prefix: &str,
) -> AppResult<Preparation> {
    let answer = |reason| {
        Preparation::Answer(CheckOutcome {
            decision: Decision::from_reason(reason),
            rate_limit: None,
            replayed: false,
        })
    };
    if state.record.suspended {
        return Ok(answer(Reason::CustomerSuspended));
    }
    if state.record.archived_at.is_some() {
        return Ok(answer(Reason::CustomerArchived));
    }
    if state.paused() {
        return Ok(answer(Reason::SubscriptionPaused));
    }
    let Some(compiled) = state.catalog.clone() else {
        return Ok(answer(Reason::NoSubscription));
    };
    let Some((plan_key, plan)) = state
        .effective_plan(now)
        .map(|(k, p)| (k.to_owned(), p.clone()))
    else {
        return Ok(answer(Reason::NoSubscription));
    };
    let subject = req.subject.as_deref().unwrap_or_default();
    let mut program = CheckProgram {
        now: now.as_second(),
        ..CheckProgram::default()
    };
    let mut rates = Vec::with_capacity(plan.rate_limits.len());
    for (i, rl) in plan.rate_limits.iter().enumerate() {
        let who = if rl.scope == Scope::Subject {
            subject
        } else {
            ""
        };
        let len = rl.per.seconds();
        let start = now.as_second().div_euclid(len as i64) * len as i64;
        let key = keys::rate(prefix, i, len, start, who);
        program.rates.push(RateHit {
            key,
            limit: rl.limit,
            ttl_ms: len * 1000 + WINDOW_SLACK_MS,
        });
        let reset = Timestamp::from_second(start + len as i64).unwrap_or(Timestamp::MAX);
        rates.push((rl.limit, len, rl.scope, reset));
    }
    let mut sources = Vec::new();
    let meter = match &req.target {
        CheckTarget::Feature(feature) => {
            let d = crate::engine::check::feature_decision(
                state,
                &compiled,
                &plan_key,
                &plan,
                feature,
                req.quantity,
            );
            return Ok(Preparation::Shared(Prepared {
                now,
                catalog: compiled,
                plan_key,
                program,
                rates,
                sources,
                target: Target::Fixed(d),
            }));
        }
        CheckTarget::Meter(m) if !compiled.catalog.meters.contains_key(m) => {
            let d = Decision::from_reason(Reason::UnknownTarget);
            return Ok(Preparation::Shared(Prepared {
                now,
                catalog: compiled,
                plan_key,
                program,
                rates,
                sources,
                target: Target::Fixed(d),
            }));
        }
        CheckTarget::Meter(m) => m.clone(),
    };
    let additive = compiled.additive_meters.contains(&meter);
    let divide_by = compiled.catalog.meters[&meter]
        .divide_by
        .filter(|d| !d.is_zero());
    let mut quotas = Vec::new();
    for quota in quotas_for(&plan, &meter) {
        let who = if quota.per == Scope::Subject {
            subject
        } else {
            ""
        };
        let hard = quota.enforcement == Enforcement::Hard;
        if !additive {
            let (used, fits, reset) = quota_state(state, now, quota, who, req.quantity);
            program.quotas.push(QuotaProbe::Fixed { fits, hard });
            sources.push(None);
            quotas.push((Some(quota.clone()), Some((used, fits, reset))));
            continue;
        }
        let (counter, source, ceiling) = match quota.reset {
            QuotaReset::Period => {
                let key = keys::period(prefix, state.period.start.as_second(), &meter, who);
                let counter = Counter::Period {
                    key,
                    ttl_ms: ttl_until(now, state.period.end),
                };
                let source = Source::Period {
                    meter: meter.clone(),
                    subject: who.to_owned(),
                    period_start: state.period.start,
                };
                // used / divide_by + quantity <= limit, on the raw counter: used <= (limit - quantity) * divide_by.
                let ceiling = match quota.limit {
                    Limit::Finite(max) => Some(keys::scale_down(
                        (max - req.quantity) * divide_by.unwrap_or(Decimal::ONE),
                    )),
                    Limit::Unlimited => None,
                };
                (counter, source, ceiling)
            }
            QuotaReset::Rolling(len) => {
                let (zset, total) = keys::window(prefix, len.seconds(), &meter, who);
                let counter = Counter::Window {
                    zset,
                    total,
                    len_seconds: len.seconds(),
                    ttl_ms: len.seconds() * 1000 + WINDOW_SLACK_MS,
                };
                let source = Source::Window {
                    meter: meter.clone(),
                    subject: who.to_owned(),
                    len: len.seconds(),
                };
                let ceiling = match quota.limit {
                    Limit::Finite(max) => Some(keys::scale_down(max - req.quantity)),
                    Limit::Unlimited => None,
                };
                (counter, source, ceiling)
            }
        };
        program.quotas.push(QuotaProbe::Counter {
            counter,
            ceiling,
            hard,
        });
        sources.push(Some(source));
        quotas.push((Some(quota.clone()), None));
    }
    if quotas.is_empty() && additive {
        // No quota: read the shared value anyway, so `used` is the same on every node.
        let key = keys::period(prefix, state.period.start.as_second(), &meter, "");
        let counter = Counter::Period {
            key,
            ttl_ms: ttl_until(now, state.period.end),
        };
        program.quotas.push(QuotaProbe::Counter {
            counter,
            ceiling: None,
            hard: false,
        });
        sources.push(Some(Source::Period {
            meter: meter.clone(),
            subject: String::new(),
            period_start: state.period.start,
        }));
        quotas.push((None, None));
    }
    let (item, later) = if req.consume {
        let item = usage_item(state, now, req, &meter)?;
        let tag = format!("c{}", uuid::Uuid::now_v7().simple());
        let uses = uses_of(&compiled, prefix, now, &state.period, &item.updates, &tag)
            .map_err(counter_input)?;
        let probed: HashSet<&Counter> = program
            .quotas
            .iter()
            .filter_map(|q| match q {
                QuotaProbe::Counter { counter, .. } => Some(counter),
                QuotaProbe::Fixed { .. } => None,
            })
            .collect();
        let (reserve, later): (Vec<SharedUse>, Vec<SharedUse>) = uses
            .into_iter()
            .partition(|u| probed.contains(&u.increment.counter));
        program.reserve = reserve.into_iter().map(|u| u.increment).collect();
        (Some(item), later)
    } else {
        (None, Vec::new())
    };
    let target = Target::Meter(Box::new(MeterCheck {
        cached_used: state.period_value(&meter, ""),
        meter,
        quotas,
        period_end: state.period.end,
        item,
        later,
    }));
    Ok(Preparation::Shared(Prepared {
        now,
        catalog: compiled,
        plan_key,
        program,
        rates,
        sources,
        target,
    }))
}

pub(super) fn counter_input(e: CounterError) -> Error {
    Error::invalid(Code::QuantityOutOfRange, e.to_string())
}
