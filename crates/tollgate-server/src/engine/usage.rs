//! A customer's usage against its plan: per meter, used, limit, remaining, reset time. Read from
//! aggregates (the loaded counters for the current period, stored rows for another one), and for
//! rolling-window quotas the headroom now: what the window holds and when room frees up.

use std::collections::HashMap;

use jiff::Timestamp;
use rust_decimal::Decimal;
use serde::Serialize;
use tollgate_core::catalog::{Aggregation, Limit, Plan, Quota, QuotaReset, Scope};
use tollgate_core::duration::WindowLength;
use tollgate_core::ids::{CustomerId, WorkspaceId};
use tollgate_core::limits::RollingWindow;
use tollgate_core::meter::convert;
use tollgate_core::period::Period;

use super::Engine;
use super::state::Windows;
use crate::error::AppResult;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UsageReport {
    pub customer: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    pub period_start: Timestamp,
    pub period_end: Timestamp,
    pub meters: Vec<MeterUsage>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MeterUsage {
    pub meter: String,
    /// The meter's value in the period, in its unit.
    #[schema(value_type = String)]
    pub used: Decimal,
    /// The hard or soft quota on the meter for the period, or the units included in the price.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub limit: Option<Limit>,
    /// `quota` or `included`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit_kind: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub remaining: Option<Decimal>,
    pub resets_at: Timestamp,
    /// The plan's rolling-window quotas on the meter, as they stand now (only when the report is
    /// for the current time): the customer's, and with `subject` that subject's.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub windows: Vec<WindowUsage>,
}

/// A rolling-window quota ("3 per 5 hours per user") as it stands at the report's time.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WindowUsage {
    /// The window's length, e.g. `5h`.
    pub window: String,
    /// `customer`, or `subject` for the subject the report was asked for.
    #[schema(value_type = String)]
    pub scope: Scope,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[schema(value_type = String)]
    pub limit: Limit,
    /// Used within the window ending now.
    #[schema(value_type = String)]
    pub used: Decimal,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub remaining: Option<Decimal>,
    /// When one more unit fits: now when it already does.
    pub next_unit_at: Timestamp,
    /// When the oldest use still in the window leaves it (usage starts to fall); absent when the
    /// window is empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eases_at: Option<Timestamp>,
}

impl Engine {
    /// Usage of a customer in the period containing `at` (default: now on its clock); with
    /// `subject`, that subject's rolling windows too.
    pub async fn usage(
        &self,
        workspace: &str,
        customer: &str,
        at: Option<Timestamp>,
        subject: Option<&str>,
    ) -> AppResult<UsageReport> {
        let (plan, catalog, period, current, now, local_windows) = self
            .with_state(workspace, customer, |state, now| {
                let plan = state.effective_plan(now).map(|(k, _)| k.to_owned());
                let period = state.period_at(at.unwrap_or(now));
                // With shared counters other nodes' usage is in the store, not in this node's
                // cached counters: read the store.
                let current = (period == state.period && self.shared.is_none())
                    .then(|| state.period_usage.clone());
                let windows = (self.shared.is_none()).then(|| state.windows.clone());
                (plan, state.catalog.clone(), period, current, now, windows)
            })
            .await?;
        let Some(compiled) = catalog else {
            return Ok(UsageReport {
                customer: customer.to_owned(),
                plan,
                period_start: period.start,
                period_end: period.end,
                meters: vec![],
            });
        };
        let totals = match current {
            Some(t) => t,
            None => {
                self.stored_totals(workspace, customer, &period, &compiled.catalog)
                    .await?
            }
        };
        let plan_def = plan.as_ref().and_then(|p| compiled.catalog.plans.get(p));
        // Rolling windows describe the present: reported when `at` is absent or is now.
        let report_windows = at.is_none_or(|at| at == now) && compiled.longest_window() > 0;
        let mut windows = match (report_windows, local_windows) {
            (false, _) => Windows::default(),
            (true, Some(w)) => w,
            (true, None) => {
                self.stored_windows(workspace, customer, now, &compiled)
                    .await?
            }
        };
        let meters = compiled
            .catalog
            .meters
            .iter()
            .map(|(key, meter)| {
                let raw = totals
                    .get(&(key.clone(), String::new()))
                    .copied()
                    .unwrap_or_default();
                let used = convert(meter, raw);
                let quota = plan_def.and_then(|p| {
                    p.quotas.iter().find(|q| {
                        &q.meter == key && q.reset == QuotaReset::Period && q.per == Scope::Customer
                    })
                });
                let included = plan_def
                    .and_then(|p| p.prices.iter().find(|pr| &pr.meter == key))
                    .and_then(|pr| pr.included)
                    .map(Limit::Finite);
                let (limit, limit_kind) = match (quota, included) {
                    (Some(q), _) => (Some(q.limit), Some("quota")),
                    (None, Some(l)) => (Some(l), Some("included")),
                    (None, None) => (None, None),
                };
                let windows = match plan_def {
                    Some(p) if report_windows => window_usage(p, key, subject, now, &mut windows),
                    _ => Vec::new(),
                };
                MeterUsage {
                    meter: key.clone(),
                    used,
                    limit,
                    limit_kind,
                    remaining: limit.and_then(|l| l.remaining(used)),
                    resets_at: period.end,
                    windows,
                }
            })
            .collect();
        Ok(UsageReport {
            customer: customer.to_owned(),
            plan,
            period_start: period.start,
            period_end: period.end,
            meters,
        })
    }

    /// The rolling windows' recent entries from the store (as a customer's state is loaded):
    /// with shared counters, the uses admitted on every node.
    async fn stored_windows(
        &self,
        workspace: &str,
        customer: &str,
        now: Timestamp,
        compiled: &super::catalogs::CompiledCatalog,
    ) -> AppResult<Windows> {
        let since = Timestamp::from_second(now.as_second() - compiled.longest_window() as i64)
            .unwrap_or(now);
        let mut windows: Windows = Windows::default();
        for entry in self
            .store
            .window_entries(
                &WorkspaceId::from(workspace),
                &CustomerId::from(customer),
                since,
            )
            .await?
        {
            let Some(retention) = compiled
                .rolling_meters
                .get(&entry.meter)
                .copied()
                .and_then(WindowLength::from_seconds)
            else {
                continue;
            };
            windows
                .entry((entry.meter, entry.subject))
                .or_insert_with(|| RollingWindow::new(retention))
                .record(entry.at, entry.quantity);
        }
        Ok(windows)
    }

    async fn stored_totals(
        &self,
        workspace: &str,
        customer: &str,
        period: &Period,
        catalog: &tollgate_core::catalog::Catalog,
    ) -> AppResult<HashMap<(String, String), Decimal>> {
        let mut totals = HashMap::new();
        for row in self
            .store
            .aggregates(
                &WorkspaceId::from(workspace),
                &CustomerId::from(customer),
                period.start,
            )
            .await?
        {
            let aggregation = catalog.meters.get(&row.meter).map(|m| m.aggregation);
            let slot: &mut Decimal = totals.entry((row.meter, row.subject)).or_default();
            *slot = match aggregation {
                Some(Aggregation::Max) => (*slot).max(row.value),
                Some(Aggregation::Latest | Aggregation::TimeWeighted) => row.value,
                _ => slot.saturating_add(row.value),
            };
        }
        Ok(totals)
    }
}

/// The plan's rolling-window quotas on `meter` as they stand at `now`: customer-scoped ones, and
/// subject-scoped ones for `subject` when given; the same figures a check reads.
fn window_usage(
    plan: &Plan,
    meter: &str,
    subject: Option<&str>,
    now: Timestamp,
    windows: &mut Windows,
) -> Vec<WindowUsage> {
    plan.quotas
        .iter()
        .filter(|q| q.meter == meter)
        .filter_map(|q: &Quota| {
            let QuotaReset::Rolling(len) = q.reset else {
                return None;
            };
            let who = match q.per {
                Scope::Customer => "",
                Scope::Subject => subject?,
            };
            let window = windows.get_mut(&(meter.to_owned(), who.to_owned()));
            let (used, next_unit_at, eases_at) = match window {
                None => (Decimal::ZERO, now, None),
                Some(w) => {
                    let used = w.used_in(now, len);
                    let horizon = now.as_second() - len.seconds() as i64;
                    let eases_at = w
                        .entries()
                        .map(|(at, _)| at)
                        .find(|at| *at > horizon)
                        .and_then(|oldest| {
                            Timestamp::from_second(oldest + len.seconds() as i64).ok()
                        });
                    let next = match q.limit {
                        Limit::Finite(max) => {
                            w.next_fit_in(now, Decimal::ONE, max, len).unwrap_or(now)
                        }
                        Limit::Unlimited => now,
                    };
                    (used, next, eases_at)
                }
            };
            Some(WindowUsage {
                window: len.to_string(),
                scope: q.per,
                subject: (q.per == Scope::Subject).then(|| who.to_owned()),
                limit: q.limit,
                used,
                remaining: q.limit.remaining(used),
                next_unit_at,
                eases_at,
            })
        })
        .collect()
}
