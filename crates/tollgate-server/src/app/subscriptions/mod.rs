//! Subscriptions: start one (with or without a trial), change its plan, pause and resume it,
//! cancel it.
//!
//! A subscription is pinned to the catalog version it was created on; a plan change moves it to
//! the latest version. Every change is pushed into the engine at once.

mod cancel;
mod change_plan;
mod create;
mod pause;

pub(crate) use cancel::expire_reached;
pub use cancel::{Cancel, cancel};
pub use change_plan::{ChangePlan, change_plan};
pub use create::{CreateSubscription, create};
pub(crate) use create::{new_subscription, open_now};
pub(crate) use pause::pause_reached;
pub use pause::{PauseOrResume, is_pausing, pause, resume};

use std::sync::Arc;
use tollgate_core::code::Code;
use tollgate_core::ids::{CustomerId, WorkspaceId};

use indexmap::IndexMap;
use jiff::Timestamp;
use tollgate_core::catalog::Plan;
use tollgate_core::period::Period;
use tollgate_store::SubscriptionRecord;

use crate::engine::{CompiledCatalog, Engine};
use crate::error::{AppResult, Error};

/// A subscription as its customer sees it now: the record, its current period, and a
/// downgrade waiting for the period end.
#[derive(Debug, Clone)]
pub struct SubscriptionView {
    pub record: SubscriptionRecord,
    pub current_period: Period,
    pub scheduled: Option<(String, Timestamp)>,
}

/// The view of `sub` at `now`, on its catalog version.
pub fn view(
    sub: SubscriptionRecord,
    catalog: &CompiledCatalog,
    now: Timestamp,
) -> SubscriptionView {
    let current_period = crate::billing::invoices::terms(&sub, &catalog.catalog).period_at(now);
    SubscriptionView {
        record: sub,
        current_period,
        scheduled: None,
    }
}

/// What a `subscription.*` domain event says about a subscription: its state after the change.
pub fn event_data(sub: &SubscriptionRecord) -> serde_json::Value {
    serde_json::json!({
        "subscription": sub.id,
        "plan": sub.plan,
        "status": sub.status.as_str(),
        "catalog_version": sub.catalog_version,
        "trial_end": sub.trial_end,
        "ends_at": sub.ends_at,
    })
}

/// `data` (an event's object) with one more field.
pub fn with_field(
    mut data: serde_json::Value,
    key: &str,
    value: serde_json::Value,
) -> serde_json::Value {
    if let Some(fields) = data.as_object_mut() {
        fields.insert(key.to_owned(), value);
    }
    data
}

/// Whether a subscription still runs at `now`: core's one rule (`lifecycle::is_live`).
pub fn is_live(sub: &SubscriptionRecord, now: Timestamp) -> bool {
    tollgate_core::lifecycle::is_live(sub.status, sub.ends_at, now)
}

/// Now on the customer's clock (its test clock, if it has one).
pub async fn customer_now(
    engine: &Engine,
    workspace: &str,
    customer: &str,
) -> AppResult<Timestamp> {
    let record = engine
        .store()
        .get_customer(&WorkspaceId::from(workspace), customer)
        .await?
        .ok_or_else(|| Error::not_found("customer", customer))?;
    engine
        .now_for(workspace, record.test_clock.as_deref())
        .await
}

/// Every subscription of a customer, newest terms first as stored, with pending downgrades.
pub async fn list(
    engine: &Engine,
    workspace: &str,
    customer: &str,
) -> AppResult<Vec<SubscriptionView>> {
    let now = customer_now(engine, workspace, customer).await?;
    let mut result = Vec::new();
    for sub in engine
        .store()
        .list_subscriptions(&WorkspaceId::from(workspace), &CustomerId::from(customer))
        .await?
    {
        let catalog = engine.catalog(workspace, sub.catalog_version).await?;
        let scheduled = engine
            .store()
            .scheduled_change(&WorkspaceId::from(workspace), &sub.id)
            .await?;
        let mut answer = view(sub, &catalog, now);
        answer.scheduled = scheduled.map(|c| (c.plan, c.effective_at));
        result.push(answer);
    }
    Ok(result)
}

async fn latest(engine: &Engine, workspace: &str) -> AppResult<Arc<CompiledCatalog>> {
    engine.latest_catalog(workspace).await?.ok_or_else(|| {
        Error::conflict(
            Code::NoCatalog,
            "apply a catalog before subscribing customers",
        )
    })
}

/// Refuses a plan that has no prices in the customer's currency (`plan_not_in_currency`), and
/// add-ons that have no amount in it (`addon_not_in_currency`).
async fn check_currency(
    engine: &Engine,
    catalog: &CompiledCatalog,
    workspace: &str,
    customer: &str,
    plan: &str,
    addons: &IndexMap<String, u32>,
) -> AppResult<()> {
    let catalog = &catalog.catalog;
    let profile =
        crate::billing::profiles::customer_profile(engine.store().as_ref(), workspace, customer)
            .await?;
    let currency = profile.currency(catalog)?;
    if !catalog.plan_priced_in(plan, currency) {
        return Err(Error::conflict(
            Code::PlanNotInCurrency,
            format!(
                "plan {plan:?} has no prices in {}, the customer's currency",
                currency.code()
            ),
        ));
    }
    if let Some((addon, _)) = addons
        .iter()
        .find(|(a, q)| **q > 0 && !catalog.addon_priced_in(a, currency))
    {
        return Err(Error::conflict(
            Code::AddonNotInCurrency,
            format!(
                "add-on {addon:?} has no amount in {}, the customer's currency",
                currency.code()
            ),
        ));
    }
    Ok(())
}

fn check_plan_and_addons(
    catalog: &CompiledCatalog,
    plan: &str,
    addons: &IndexMap<String, u32>,
) -> AppResult<()> {
    if !catalog.catalog.plans.contains_key(plan) {
        return Err(Error::invalid(
            Code::UnknownPlan,
            format!(
                "plan {plan:?} is not in catalog version {}",
                catalog.version
            ),
        ));
    }
    if let Some(bad) = addons
        .keys()
        .find(|a| !catalog.catalog.addons.contains_key(*a))
    {
        return Err(Error::invalid(
            Code::UnknownAddon,
            format!("add-on {bad:?} is not in the catalog"),
        ));
    }
    Ok(())
}

/// Where the periods of a subscription to `plan` starting at `start` count from: the calendar
/// boundary before the start (`billing: calendar`), or the start (`billing: anniversary`).
fn billing_anchor(plan: &Plan, start: Timestamp) -> Timestamp {
    plan.cadence().anchor(plan.anchor(), start)
}

async fn owned_subscription(
    engine: &Engine,
    workspace: &str,
    customer: &str,
    id: &str,
) -> AppResult<SubscriptionRecord> {
    engine
        .store()
        .get_subscription(&WorkspaceId::from(workspace), id)
        .await?
        .filter(|s| s.customer == customer)
        .ok_or_else(|| Error::not_found("subscription", id))
}
