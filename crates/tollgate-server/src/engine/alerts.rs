//! Usage alerts (`alerts:` in the catalog): after usage is counted (ingest, consuming checks,
//! the gateway), each threshold of the plan's allowance that the customer's usage of the period
//! has reached fires once, as a `usage.alert` domain event in the outbox.
//!
//! The store makes "once" hold across retries, restarts and nodes (the alert's key is customer,
//! meter, period start and threshold); the customer state remembers what fired this period so
//! that events past a threshold cost no store write. The next period starts clean because its
//! start is part of the key. Usage is read from this node's counters, which include every event
//! it accepted and what the store held when it loaded the customer: with several nodes, a
//! threshold crossed by another node's events fires with this node's next event for the
//! customer, or on that node.

use jiff::Timestamp;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use tollgate_core::alerts;
use tollgate_core::period::Period;
use tollgate_store::growth::UsageAlertRecord;
use tollgate_store::outbox::OutboxEvent;

use super::Engine;
use crate::error::AppResult;
use crate::ids::new_id;

/// The type of the domain event an alert writes (`app::outbox::types::USAGE_ALERT`).
pub const USAGE_ALERT_EVENT: &str = "usage.alert";

/// A threshold reached and not yet known to have fired.
struct Reached {
    meter: String,
    plan: String,
    threshold: Decimal,
    allowance: Decimal,
    used: Decimal,
    period: Period,
    now: Timestamp,
}

impl Engine {
    /// A domain event of `workspace` about `customer`, that happened at `occurred_at` on the
    /// customer's clock; the wall clock says when it was written.
    pub fn domain_event(
        &self,
        workspace: &str,
        customer: Option<&str>,
        event_type: &str,
        occurred_at: Timestamp,
        data: Value,
    ) -> OutboxEvent {
        OutboxEvent {
            workspace: workspace.to_owned(),
            id: new_id("evt"),
            customer: customer.map(str::to_owned),
            event_type: event_type.to_owned(),
            occurred_at,
            data,
            created_at: self.now(),
            delivered_at: None,
            delivery_attempts: 0,
        }
    }

    /// Fires the customer's usage alerts that its usage now reaches. Never fails the usage that
    /// was counted: a store error is logged, and the alert fires with the customer's next usage.
    pub(crate) async fn evaluate_alerts(&self, workspace: &str, customer: &str) {
        self.schedule_progressive_check(workspace, customer).await;
        if let Err(e) = self.fire_reached_alerts(workspace, customer).await {
            metrics::counter!("tollgate_alert_failures_total").increment(1);
            tracing::error!(code = e.code.as_str(), detail = %e.detail, workspace, customer, "evaluating usage alerts failed");
        }
    }

    async fn fire_reached_alerts(&self, workspace: &str, customer: &str) -> AppResult<()> {
        let reached = self
            .with_state(workspace, customer, |state, now| {
                let mut out = Vec::new();
                let Some(compiled) = state.catalog.clone() else {
                    return out;
                };
                if compiled.catalog.alerts.is_empty() {
                    return out;
                }
                let Some((plan_key, plan)) = state.effective_plan(now) else {
                    return out;
                };
                let plan_key = plan_key.to_owned();
                for (meter, thresholds) in &compiled.catalog.alerts {
                    let Some(allowance) = alerts::allowance(plan, meter) else {
                        continue;
                    };
                    let used = state.period_value(meter, "");
                    for threshold in alerts::reached(thresholds, allowance, used) {
                        if !state.fired_alerts.contains(&(meter.clone(), threshold)) {
                            out.push(Reached {
                                meter: meter.clone(),
                                plan: plan_key.clone(),
                                threshold,
                                allowance,
                                used,
                                period: state.period,
                                now,
                            });
                        }
                    }
                }
                out
            })
            .await?;
        for r in reached {
            let record = UsageAlertRecord {
                workspace: workspace.to_owned(),
                customer: customer.to_owned(),
                meter: r.meter.clone(),
                period_start: r.period.start,
                threshold: r.threshold,
                value: r.used,
                fired_at: r.now,
            };
            let event = self.domain_event(
                workspace,
                Some(customer),
                USAGE_ALERT_EVENT,
                r.now,
                json!({
                    "meter": r.meter,
                    "plan": r.plan,
                    "threshold_percent": r.threshold.normalize().to_string(),
                    "allowance": r.allowance.normalize().to_string(),
                    "used": r.used.normalize().to_string(),
                    "period_start": r.period.start,
                    "period_end": r.period.end,
                }),
            );
            let fired = self.store.fire_usage_alert(&record, &[event]).await?;
            if fired {
                metrics::counter!("tollgate_usage_alerts_total").increment(1);
            }
            let key = (r.meter, r.threshold);
            self.with_state(workspace, customer, move |state, _| {
                if state.period.start == r.period.start {
                    state.fired_alerts.insert(key);
                }
            })
            .await?;
        }
        Ok(())
    }
}
