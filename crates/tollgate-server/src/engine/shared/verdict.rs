//! The decision for a shared check, from the Redis script's reply: the same rules as the
//! in-memory path (`engine::check`), with the counters' values read in Redis.

use jiff::{SignedDuration, Timestamp};
use rust_decimal::Decimal;
use tollgate_core::catalog::{Limit, Quota, QuotaReset, RateLimit};
use tollgate_core::check::{Decision, Reason, upgrade_for_quota, upgrade_for_rate_limit};
use tollgate_core::limits::seconds_until;

use super::prepare::{Prepared, Target};
use crate::counters::{CheckReply, QuotaProbe, keys};
use crate::engine::check::{CheckOutcome, CheckRequest, RateLimitState, quota_decision};

impl Prepared {
    pub(super) fn needs_redis(&self) -> bool {
        !self.program.rates.is_empty()
            || self
                .program
                .quotas
                .iter()
                .any(|q| matches!(q, QuotaProbe::Counter { .. }))
    }

    /// The script's answer when no counter is involved: the cached verdicts in order.
    pub(super) fn decide_locally(&self) -> CheckReply {
        let used = vec![None; self.program.quotas.len()];
        for (index, q) in self.program.quotas.iter().enumerate() {
            if let QuotaProbe::Fixed {
                fits: false,
                hard: true,
            } = q
            {
                return CheckReply::QuotaDenied {
                    index,
                    counts: Vec::new(),
                    used,
                    frees_at: None,
                };
            }
        }
        CheckReply::Admitted {
            counts: Vec::new(),
            used,
        }
    }

    /// The decision for the script's reply, and whether the use was reserved.
    pub(super) fn outcome(&self, reply: &CheckReply, req: &CheckRequest) -> (CheckOutcome, bool) {
        let now = self.now;
        let (counts, used, denied, frees_at) = match reply {
            CheckReply::RateLimited { counts, .. } => (counts, &Vec::new(), None, None),
            CheckReply::QuotaDenied {
                index,
                counts,
                used,
                frees_at,
            } => (counts, used, Some(*index), *frees_at),
            CheckReply::Admitted { counts, used } => (counts, used, None, None),
            CheckReply::NeedSeed(_) => unreachable!("seeding is handled before"),
        };
        let mut rate_limit: Option<RateLimitState> = None;
        for (&count, &(limit, window_seconds, _, reset_at)) in counts.iter().zip(&self.rates) {
            let current = RateLimitState {
                limit,
                remaining: limit.saturating_sub(count),
                window_seconds,
                reset_at,
                now,
            };
            if rate_limit.is_none_or(|r| current.remaining < r.remaining) {
                rate_limit = Some(current);
            }
        }
        let answer = |decision| CheckOutcome {
            decision,
            rate_limit,
            replayed: false,
        };
        if let CheckReply::RateLimited { index, .. } = reply {
            let (limit, window_seconds, scope, reset_at) = self.rates[*index];
            let mut d = Decision::from_reason(Reason::RateLimited);
            d.limit = Some(Limit::Finite(Decimal::from(limit)));
            d.remaining = Some(Decimal::ZERO);
            d.window = tollgate_core::duration::WindowLength::from_seconds(window_seconds)
                .map(tollgate_core::check::CheckWindow::Length);
            d.scope = Some(scope);
            d.reset_at = Some(reset_at);
            d.retry_after = Some(seconds_until(now, reset_at).max(1));
            d.upgrade = tollgate_core::duration::WindowLength::from_seconds(window_seconds)
                .and_then(|per| {
                    upgrade_for_rate_limit(
                        &self.catalog.catalog,
                        &self.plan_key,
                        &RateLimit { limit, per, scope },
                    )
                });
            return (answer(d), false);
        }
        let m = match &self.target {
            Target::Fixed(d) => return (answer(d.clone()), false),
            Target::Meter(m) => m,
        };
        let meter_def = &self.catalog.catalog.meters[&m.meter];
        let mut binding: Option<(&Quota, Decimal, Timestamp, bool)> = None;
        let mut probe_used = None;
        for (i, (quota, cached)) in m.quotas.iter().enumerate() {
            let shared_used = used.get(i).copied().flatten().map(keys::unscale);
            let Some(quota) = quota else {
                probe_used = shared_used.map(|raw| tollgate_core::meter::convert(meter_def, raw));
                continue;
            };
            let (used, fits, reset_at) = match (cached, quota.reset) {
                (Some(c), _) => *c,
                (None, QuotaReset::Period) => {
                    let used =
                        tollgate_core::meter::convert(meter_def, shared_used.unwrap_or_default());
                    (used, quota.limit.admits(used, req.quantity), m.period_end)
                }
                (None, QuotaReset::Rolling(len)) => {
                    let used = shared_used.unwrap_or_default();
                    let fits = quota.limit.admits(used, req.quantity);
                    let len = SignedDuration::from_secs(len.seconds() as i64);
                    let frees = frees_at
                        .and_then(|s| Timestamp::from_second(s).ok())
                        .map_or(now, |t| t + len);
                    (used, fits, if fits { now + len } else { frees })
                }
            };
            if denied == Some(i) {
                let mut d = quota_decision(Reason::QuotaExceeded, quota, used, reset_at, now);
                d.upgrade = upgrade_for_quota(
                    &self.catalog.catalog,
                    &self.plan_key,
                    quota,
                    used,
                    req.quantity,
                );
                d.retry_after = Some(seconds_until(now, reset_at).max(1));
                return (answer(d), false);
            }
            let tighter = binding.as_ref().is_none_or(|(q, u, _, _)| {
                quota.limit.remaining(used) < q.limit.remaining(*u) || q.limit == Limit::Unlimited
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
        let mut d = match binding {
            Some((q, used, reset_at, fits)) => {
                let reason = if fits {
                    Reason::Allowed
                } else {
                    Reason::SoftLimitExceeded
                };
                quota_decision(reason, q, used.saturating_add(consumed), reset_at, now)
            }
            None => {
                let mut d = Decision::from_reason(Reason::Allowed);
                d.used = Some(probe_used.unwrap_or(m.cached_used).saturating_add(consumed));
                d.reset_at = Some(m.period_end);
                d
            }
        };
        d.allowed = true;
        (answer(d), req.consume)
    }
}
