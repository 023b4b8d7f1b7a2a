//! A customer's usage against its plan: per meter, used, limit, remaining, reset time. Read from
//! aggregates (the loaded counters for the current period, stored rows for another one).

use jiff::Timestamp;
use rust_decimal::Decimal;
use serde::Serialize;
use tollgate_core::catalog::{Aggregation, Limit, QuotaReset, Scope};
use tollgate_core::ids::{CustomerId, WorkspaceId};
use tollgate_core::meter::convert;
use tollgate_core::period::Period;

use super::Engine;
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
}

impl Engine {
    /// Usage of a customer in the period containing `at` (default: now on its clock).
    pub async fn usage(
        &self,
        workspace: &str,
        customer: &str,
        at: Option<Timestamp>,
    ) -> AppResult<UsageReport> {
        let (plan, catalog, period, current) = self
            .with_state(workspace, customer, |state, now| {
                let at = at.unwrap_or(now);
                let plan = state.effective_plan(now).map(|(k, _)| k.to_owned());
                let period = state.period_at(at);
                // With shared counters other nodes' usage is in the store, not in this node's
                // cached counters: read the store.
                let current = (period == state.period && self.shared.is_none())
                    .then(|| state.period_usage.clone());
                (plan, state.catalog.clone(), period, current)
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
                MeterUsage {
                    meter: key.clone(),
                    used,
                    limit,
                    limit_kind,
                    remaining: limit.and_then(|l| l.remaining(used)),
                    resets_at: period.end,
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

    async fn stored_totals(
        &self,
        workspace: &str,
        customer: &str,
        period: &Period,
        catalog: &tollgate_core::catalog::Catalog,
    ) -> AppResult<std::collections::HashMap<(String, String), Decimal>> {
        let mut totals = std::collections::HashMap::new();
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
