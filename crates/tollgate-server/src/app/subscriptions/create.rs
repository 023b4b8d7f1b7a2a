//! Start a subscription, with the plan's trial or without.

use indexmap::IndexMap;
use jiff::{SignedDuration, Timestamp};
use tollgate_core::code::Code;
use tollgate_core::ids::{CustomerId, WorkspaceId};
use tollgate_store::{SubscriptionRecord, SubscriptionStatus};

use super::{
    SubscriptionView, billing_anchor, check_plan_and_addons, customer_now, is_live, latest, view,
};
use crate::app::outbox;
use crate::engine::{CompiledCatalog, Engine};
use crate::error::{AppResult, Error};
use crate::ids::new_id;

#[derive(Debug, Clone)]
pub struct CreateSubscription {
    pub workspace: String,
    pub customer: String,
    pub plan: String,
    /// Start with the plan's free trial; `None`: when the plan has one.
    pub trial: Option<bool>,
    pub addons: IndexMap<String, u32>,
}

/// Subscribes a customer to a plan of the latest catalog. One live subscription per customer.
pub async fn create(engine: &Engine, input: CreateSubscription) -> AppResult<SubscriptionView> {
    let CreateSubscription {
        workspace,
        customer,
        plan: plan_key,
        trial,
        addons,
    } = input;
    let owner = engine
        .store()
        .get_customer(&WorkspaceId::from(&workspace), &CustomerId::from(&customer))
        .await?
        .ok_or_else(|| Error::not_found("customer", &customer))?;
    crate::app::customers::profile::ensure_not_archived(&owner)?;
    let now = customer_now(engine, &workspace, &customer).await?;
    let catalog = latest(engine, &workspace).await?;
    check_plan_and_addons(&catalog, &plan_key, &addons)?;
    super::check_currency(engine, &catalog, &workspace, &customer, &plan_key, &addons).await?;
    crate::app::licenses::require_master_key_for(engine, &workspace, catalog.version, &plan_key)
        .await?;
    let store = engine.store();
    if store
        .list_subscriptions(&WorkspaceId::from(&workspace), &CustomerId::from(&customer))
        .await?
        .iter()
        .any(|s| is_live(s, now))
    {
        return Err(Error::conflict(
            Code::SubscriptionExists,
            "the customer already has a live subscription; change its plan instead",
        ));
    }
    let record = new_subscription(
        &catalog, &workspace, &customer, &plan_key, trial, &addons, now,
    )?;
    let created = outbox::event(
        engine,
        &workspace,
        Some(&customer),
        outbox::types::SUBSCRIPTION_CREATED,
        now,
        super::event_data(&record),
    );
    store
        .create_subscription_with_events(&record, &[created])
        .await?;
    engine.refresh_customer(&workspace, &customer).await?;
    open_now(engine, &record).await?;
    crate::app::jobs::schedule_subscription(engine, &record, now).await?;
    crate::app::licenses::on_subscribed(engine, &record, now).await?;
    Ok(view(record, &catalog, now))
}

/// The record of a new subscription starting at `now` (not stored): the plan's trial if asked
/// for or by default, the billing anchor of its interval. Shared with the self-serve signup,
/// which stores it with the customer in one transaction.
pub(crate) fn new_subscription(
    catalog: &CompiledCatalog,
    workspace: &str,
    customer: &str,
    plan_key: &str,
    trial: Option<bool>,
    addons: &IndexMap<String, u32>,
    now: Timestamp,
) -> AppResult<SubscriptionRecord> {
    check_plan_and_addons(catalog, plan_key, addons)?;
    let plan = &catalog.catalog.plans[plan_key];
    let trial_days = match (trial, plan.trial_days) {
        (Some(true), None) => {
            return Err(Error::invalid(
                Code::NoTrial,
                format!("plan {plan_key:?} has no trial"),
            ));
        }
        (Some(false), _) | (None, None) => None,
        (_, Some(days)) => Some(days),
    };
    let trial_end = trial_days.map(|d| now + SignedDuration::from_hours(24 * i64::from(d)));
    Ok(SubscriptionRecord {
        workspace: workspace.to_owned(),
        id: new_id("sub"),
        customer: customer.to_owned(),
        plan: plan_key.to_owned(),
        catalog_version: catalog.version,
        status: if trial_end.is_some() {
            SubscriptionStatus::Trialing
        } else {
            SubscriptionStatus::Active
        },
        addons: serde_json::to_value(addons).map_err(Error::internal)?,
        started_at: now,
        // Periods count from when the subscription becomes paid (the end of its trial).
        billing_anchor: billing_anchor(plan, trial_end.unwrap_or(now)),
        trial_end,
        canceled_at: None,
        ends_at: None,
    })
}

/// Bills what a new subscription owes from its first second: the opening invoice (fees in
/// advance, a setup fee) of one paid from now. A trial owes nothing yet (its end bills it).
pub(crate) async fn open_now(engine: &Engine, sub: &SubscriptionRecord) -> AppResult<()> {
    let report = crate::app::bill_run::bill_one(engine, sub.clone()).await?;
    match report.errors.first() {
        None => Ok(()),
        Some(error) => Err(Error::internal(format!(
            "billing the opening invoice of {}: {}: {}",
            sub.id, error.code, error.message
        ))),
    }
}
