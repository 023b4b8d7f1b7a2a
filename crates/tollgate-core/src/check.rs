//! The answer to "may this customer do this now?": pure evaluation of plan entitlements and the
//! upgrade hint. Counters live with the caller; this module decides from what it is given.
//!
//! A denial is an answer, not an error: it carries the reason, the limit, what remains, when it
//! resets and the cheapest plan that would allow the action.

use jiff::Timestamp;
use rust_decimal::Decimal;
use serde::Serialize;

use crate::catalog::{Catalog, Entitlement, Limit, Plan, Quota, QuotaReset, RateLimit, Scope};
use crate::duration::WindowLength;

/// Why a check was answered the way it was. Stable codes, serialized in snake_case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Allowed, within every limit.
    Allowed,
    /// Allowed, but past a soft limit (overage).
    SoftLimitExceeded,
    /// The plan does not include the feature.
    FeatureNotInPlan,
    /// A numeric feature limit (projects, seats) would be exceeded.
    FeatureLimitExceeded,
    /// A usage quota (period or rolling window) would be exceeded.
    QuotaExceeded,
    /// A request rate limit was hit.
    RateLimited,
    /// The operator suspended the customer.
    CustomerSuspended,
    /// The customer has no active subscription.
    NoSubscription,
    /// The catalog has no such feature or meter.
    UnknownTarget,
    /// The operator archived (deleted) the customer.
    CustomerArchived,
    /// The customer's subscription is paused: no service until it is resumed.
    SubscriptionPaused,
}

impl Reason {
    pub fn allows(self) -> bool {
        matches!(self, Reason::Allowed | Reason::SoftLimitExceeded)
    }
}

/// The cheapest plan that would allow what was denied.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UpgradeHint {
    pub plan: String,
    /// The plan's limit for what was checked (`None` for switches).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<Limit>,
}

/// The outcome of evaluating a feature against a plan.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureVerdict {
    pub reason: Reason,
    pub limit: Option<Limit>,
    pub value: Option<Entitlement>,
}

/// Evaluates a feature of `plan` for `quantity` (for limit features: the total wanted, e.g. the
/// number of projects the customer would have). `extra` raises a limit feature (add-on grants).
pub fn evaluate_feature(
    catalog: &Catalog,
    plan: &Plan,
    feature: &str,
    quantity: Decimal,
    extra: Decimal,
) -> FeatureVerdict {
    if !catalog.features.contains_key(feature) {
        return FeatureVerdict {
            reason: Reason::UnknownTarget,
            limit: None,
            value: None,
        };
    }
    evaluate_entitlement(plan.features.get(feature), quantity, extra)
}

/// [`evaluate_feature`] for a feature the catalog has, given the plan's entitlement to it
/// (`None`: not in the plan): for callers that looked the entitlement up themselves (the
/// server's per-plan table).
pub fn evaluate_entitlement(
    entitlement: Option<&Entitlement>,
    quantity: Decimal,
    extra: Decimal,
) -> FeatureVerdict {
    let value = entitlement.cloned();
    let (reason, limit) = match &value {
        None | Some(Entitlement::Switch(false)) => (Reason::FeatureNotInPlan, None),
        Some(Entitlement::Switch(true)) | Some(Entitlement::Config(_)) => (Reason::Allowed, None),
        Some(Entitlement::Limit(limit)) => {
            let limit = match limit {
                Limit::Finite(n) => Limit::Finite(n.saturating_add(extra)),
                Limit::Unlimited => Limit::Unlimited,
            };
            if matches!(limit, Limit::Finite(n) if n.is_zero()) {
                (Reason::FeatureNotInPlan, Some(limit))
            } else if limit.admits(Decimal::ZERO, quantity) {
                (Reason::Allowed, Some(limit))
            } else {
                (Reason::FeatureLimitExceeded, Some(limit))
            }
        }
    };
    FeatureVerdict {
        reason,
        limit,
        value,
    }
}

/// The cheapest plan other than `current` that grants `feature` for `quantity`.
pub fn upgrade_for_feature(
    catalog: &Catalog,
    current: &str,
    feature: &str,
    quantity: Decimal,
) -> Option<UpgradeHint> {
    catalog
        .plans_cheapest_first()
        .into_iter()
        .filter(|(key, _)| *key != current)
        .find_map(|(key, plan)| {
            let verdict = evaluate_feature(catalog, plan, feature, quantity, Decimal::ZERO);
            verdict.reason.allows().then(|| UpgradeHint {
                plan: key.to_owned(),
                limit: verdict.limit,
            })
        })
}

/// The quotas of `plan` on `meter`: the ones a check of that meter must pass.
pub fn quotas_for<'p>(plan: &'p Plan, meter: &str) -> impl Iterator<Item = &'p Quota> {
    plan.quotas.iter().filter(move |q| q.meter == meter)
}

/// The cheapest plan other than `current` whose quota for `meter` (same scope and reset as the
/// one that denied) admits `used + quantity`. A plan with no hard quota on the meter admits
/// anything.
pub fn upgrade_for_quota(
    catalog: &Catalog,
    current: &str,
    denied_by: &Quota,
    used: Decimal,
    quantity: Decimal,
) -> Option<UpgradeHint> {
    catalog
        .plans_cheapest_first()
        .into_iter()
        .filter(|(key, _)| *key != current)
        .find_map(|(key, plan)| {
            let quota = plan.quotas.iter().find(|q| {
                q.meter == denied_by.meter && q.per == denied_by.per && q.reset == denied_by.reset
            });
            match quota {
                None => Some(UpgradeHint {
                    plan: key.to_owned(),
                    limit: Some(Limit::Unlimited),
                }),
                Some(q)
                    if q.limit.admits(used, quantity)
                        || q.enforcement == crate::catalog::Enforcement::Soft =>
                {
                    Some(UpgradeHint {
                        plan: key.to_owned(),
                        limit: Some(q.limit),
                    })
                }
                Some(_) => None,
            }
        })
}

/// The cheapest plan other than `current` whose request rate limits of the denied one's scope
/// all admit more calls than it does over its window: a plan with no such limit admits any rate.
/// Limits over other windows are compared as rates (`limit / window`), exactly, in integers.
/// The hint's `limit` is the plan's limit over the same window (unlimited without any), and
/// absent when the plan only limits other windows.
pub fn upgrade_for_rate_limit(
    catalog: &Catalog,
    current: &str,
    denied_by: &RateLimit,
) -> Option<UpgradeHint> {
    let denied_seconds = u128::from(denied_by.per.seconds());
    let denied_limit = u128::from(denied_by.limit);
    catalog
        .plans_cheapest_first()
        .into_iter()
        .filter(|(key, _)| *key != current)
        .find_map(|(key, plan)| {
            let mut same_scope = plan
                .rate_limits
                .iter()
                .filter(|r| r.scope == denied_by.scope)
                .peekable();
            if same_scope.peek().is_none() {
                return Some(UpgradeHint {
                    plan: key.to_owned(),
                    limit: Some(Limit::Unlimited),
                });
            }
            let mut same_window = None;
            for r in same_scope {
                // r.limit / r.seconds > denied.limit / denied.seconds, cross-multiplied.
                let more = u128::from(r.limit) * denied_seconds
                    > denied_limit * u128::from(r.per.seconds());
                if !more {
                    return None;
                }
                if r.per == denied_by.per {
                    same_window = Some(Limit::Finite(Decimal::from(r.limit)));
                }
            }
            Some(UpgradeHint {
                plan: key.to_owned(),
                limit: same_window,
            })
        })
}

/// The window a check's binding limit counts in: the billing period, or a length (`5h`, `1m`).
/// A value, not text, so that answering a check builds no string (it is written out only when
/// the answer is serialized).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckWindow {
    /// The billing period (`period`).
    Period,
    /// A rolling window or a rate limit's window, e.g. `5h`.
    Length(WindowLength),
}

impl CheckWindow {
    /// The window of a quota.
    pub fn of_quota(quota: &Quota) -> Self {
        match quota.reset {
            QuotaReset::Period => CheckWindow::Period,
            QuotaReset::Rolling(len) => CheckWindow::Length(len),
        }
    }
}

impl std::fmt::Display for CheckWindow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CheckWindow::Period => f.write_str("period"),
            CheckWindow::Length(len) => len.fmt(f),
        }
    }
}

impl Serialize for CheckWindow {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// The full answer of a check, as the API returns it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    pub allowed: bool,
    pub reason: Reason,
    /// The binding limit, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<Limit>,
    /// What the binding limit leaves after this check (and its consumption).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remaining: Option<Decimal>,
    /// Used so far in the binding limit's window or period, after this check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub used: Option<Decimal>,
    /// The binding limit's window, e.g. `5h`, or `period` for the billing period.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<CheckWindow>,
    /// Whether the limit counts per customer or per subject.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    /// When the binding limit resets (period end, or when a rolling window frees enough).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reset_at: Option<Timestamp>,
    /// Seconds until the action could be allowed, on denials that time will lift.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// The cheapest plan that would allow the action, on denials a plan change would lift.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upgrade: Option<UpgradeHint>,
    /// A config feature's value, for the app to use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<Entitlement>,
}

impl Decision {
    /// An answer with just a reason.
    pub fn from_reason(reason: Reason) -> Self {
        Decision {
            allowed: reason.allows(),
            reason,
            limit: None,
            remaining: None,
            used: None,
            window: None,
            scope: None,
            reset_at: None,
            retry_after: None,
            upgrade: None,
            value: None,
        }
    }
}

#[cfg(test)]
mod rate_limit_upgrade_tests {
    use super::*;

    fn catalog(yaml: &str) -> Catalog {
        crate::catalog::parse_yaml(yaml).expect("catalog")
    }

    const PLANS: &str = r#"
currency: USD
meters:
  calls: { event: call, aggregation: count }
plans:
  free:
    base: { amount: "0.00", interval: month, timing: in_advance }
    rate_limits: [{ limit: 10, per: 1m }]
  starter:
    base: { amount: "9.00", interval: month, timing: in_advance }
    rate_limits: [{ limit: 10, per: 1s }]
  slow:
    base: { amount: "5.00", interval: month, timing: in_advance }
    rate_limits: [{ limit: 300, per: 1h }]
  team:
    base: { amount: "49.00", interval: month, timing: in_advance }
    rate_limits: [{ limit: 100, per: 1m }, { limit: 5, per: 1m, scope: subject }]
  scale:
    base: { amount: "99.00", interval: month, timing: in_advance }
"#;

    #[test]
    fn the_cheapest_plan_with_a_higher_rate_is_the_hint() {
        let c = catalog(PLANS);
        let free = &c.plans["free"].rate_limits[0];
        // slow (300/h = 5/min) is cheaper but slower; starter (10/s) is the cheapest faster one,
        // and it limits another window: no same-window limit to show.
        let hint = upgrade_for_rate_limit(&c, "free", free).expect("a hint");
        assert_eq!(hint.plan, "starter");
        assert_eq!(hint.limit, None);
    }

    #[test]
    fn a_same_window_limit_is_shown_and_no_limit_is_unlimited() {
        let c = catalog(PLANS);
        let starter = &c.plans["starter"].rate_limits[0];
        // 10/s = 600/min: team's 100/min is slower; scale has no limit at all.
        let hint = upgrade_for_rate_limit(&c, "starter", starter).expect("a hint");
        assert_eq!(hint.plan, "scale");
        assert_eq!(hint.limit, Some(Limit::Unlimited));
        let subject = &c.plans["team"].rate_limits[1];
        // Only team limits subjects: every other plan (cheapest first: free) has no such limit.
        let hint = upgrade_for_rate_limit(&c, "team", subject).expect("a hint");
        assert_eq!(hint.plan, "free");
        assert_eq!(hint.limit, Some(Limit::Unlimited));
        let slow_hint = upgrade_for_rate_limit(&c, "slow", &c.plans["slow"].rate_limits[0]);
        assert_eq!(slow_hint.map(|h| h.plan), Some("free".to_owned()));
    }

    #[test]
    fn no_plan_is_faster_no_hint() {
        let c = catalog(
            r#"
currency: USD
meters:
  calls: { event: call, aggregation: count }
plans:
  only:
    base: { amount: "0.00", interval: month, timing: in_advance }
    rate_limits: [{ limit: 10, per: 1m }]
  same:
    base: { amount: "1.00", interval: month, timing: in_advance }
    rate_limits: [{ limit: 10, per: 1m }]
"#,
        );
        let only = &c.plans["only"].rate_limits[0];
        assert_eq!(upgrade_for_rate_limit(&c, "only", only), None);
    }
}
