//! Move a subscription to another plan (and add-on quantities) of the latest catalog.
//!
//! An upgrade applies at once with prorations for the rest of the paid period, written with
//! the new terms in one transaction (all or nothing); a downgrade of a paid subscription waits
//! for the period end unless asked `immediately`. The prorations go on the next invoice, or on an
//! invoice of their own at once when the new plan says `upgrades: always_invoice`.

use indexmap::IndexMap;
use jiff::Timestamp;
use rust_decimal::Decimal;
use tollgate_core::catalog::{Timing, UpgradeInvoicing};
use tollgate_core::code::Code;
use tollgate_core::pricing::{
    BillingPeriod, Charge, PricingError, addon_quantity_change, plan_change_within,
};
use tollgate_store::SubscriptionRecord;
use tollgate_store::billing::{PendingChargeRecord, ScheduledChangeRecord};

use super::{
    SubscriptionView, billing_anchor, check_plan_and_addons, customer_now, is_live, latest,
    owned_subscription, view,
};
use crate::engine::{CompiledCatalog, Engine};
use crate::error::{AppResult, Error};
use crate::ids::new_id;

#[derive(Debug, Clone)]
pub struct ChangePlan {
    pub workspace: String,
    pub customer: String,
    pub subscription: String,
    pub plan: String,
    /// New add-on quantities; `None`: keep the current ones.
    pub addons: Option<IndexMap<String, u32>>,
    /// Apply a downgrade at once instead of at the end of the current period.
    pub immediately: bool,
}

pub async fn change_plan(engine: &Engine, input: ChangePlan) -> AppResult<SubscriptionView> {
    let ChangePlan {
        workspace,
        customer,
        subscription,
        plan,
        addons,
        immediately,
    } = input;
    let now = customer_now(engine, &workspace, &customer).await?;
    let mut sub = owned_subscription(engine, &workspace, &customer, &subscription).await?;
    if !is_live(&sub, now) {
        return Err(Error::conflict(
            Code::SubscriptionEnded,
            "the subscription has ended",
        ));
    }
    let catalog = latest(engine, &workspace).await?;
    let addons =
        addons.unwrap_or_else(|| serde_json::from_value(sub.addons.clone()).unwrap_or_default());
    check_plan_and_addons(&catalog, &plan, &addons)?;
    super::check_currency(engine, &catalog, &workspace, &customer, &plan, &addons).await?;
    crate::app::licenses::require_master_key_for(engine, &workspace, catalog.version, &plan)
        .await?;
    let downgrade = downgrade_at(engine, &sub, &catalog, &plan, now).await?;
    if let Some(effective_at) = downgrade.filter(|_| !immediately) {
        engine
            .store()
            .schedule_change(&ScheduledChangeRecord {
                workspace: workspace.clone(),
                id: new_id("sch"),
                subscription: sub.id.clone(),
                customer: customer.clone(),
                plan: plan.clone(),
                addons: serde_json::to_value(&addons).map_err(Error::internal)?,
                effective_at,
                created_at: now,
                applied_at: None,
            })
            .await?;
        let mut answer = view(sub, &catalog, now);
        answer.scheduled = Some((plan, effective_at));
        return Ok(answer);
    }
    let prorations = prorations(engine, &sub, &catalog, &plan, &addons, now).await?;
    let new_plan = &catalog.catalog.plans[&plan];
    let invoice_now = downgrade.is_none() && new_plan.upgrades == UpgradeInvoicing::AlwaysInvoice;
    let old_cadence = engine
        .catalog(&workspace, sub.catalog_version)
        .await?
        .catalog
        .plans
        .get(&sub.plan)
        .map(|p| p.cadence());
    if old_cadence != Some(new_plan.cadence()) {
        sub.billing_anchor = billing_anchor(new_plan, now);
    }
    sub.plan = plan;
    sub.catalog_version = catalog.version;
    sub.addons = serde_json::to_value(&addons).map_err(Error::internal)?;
    let mut charges = Vec::with_capacity(prorations.len());
    let mut at_once = Vec::new();
    for (charge, closing_only) in prorations {
        let id = new_id("pc");
        if invoice_now && !closing_only {
            at_once.push(id.clone());
        }
        charges.push(PendingChargeRecord {
            workspace: workspace.clone(),
            id,
            customer: customer.clone(),
            subscription: Some(sub.id.clone()),
            charge: serde_json::to_value(&charge).map_err(Error::internal)?,
            created_at: now,
            invoice: None,
        });
    }
    let updated = crate::app::outbox::event(
        engine,
        &workspace,
        Some(&customer),
        crate::app::outbox::types::SUBSCRIPTION_UPDATED,
        now,
        super::event_data(&sub),
    );
    engine
        .store()
        .change_subscription_with_events(&sub, &charges, &[updated])
        .await?;
    if !at_once.is_empty() {
        crate::billing::invoices::invoice_pending_charges(
            engine.store().as_ref(),
            &sub,
            &catalog.catalog,
            &at_once,
            now,
        )
        .await?;
    }
    engine.refresh_customer(&workspace, &customer).await?;
    crate::app::jobs::schedule_subscription(engine, &sub, now).await?;
    crate::app::licenses::on_plan_changed(engine, &sub, now).await?;
    Ok(view(sub, &catalog, now))
}

/// When a change to `new_plan` is a downgrade (a lower monthly base on the same interval) of a
/// paid subscription: the end of the current period, when it takes effect.
async fn downgrade_at(
    engine: &Engine,
    sub: &SubscriptionRecord,
    catalog: &CompiledCatalog,
    new_plan: &str,
    now: Timestamp,
) -> AppResult<Option<Timestamp>> {
    let old_catalog = engine.catalog(&sub.workspace, sub.catalog_version).await?;
    let (Some(old), Some(new)) = (
        old_catalog.catalog.plans.get(&sub.plan),
        catalog.catalog.plans.get(new_plan),
    ) else {
        return Ok(None);
    };
    let terms = crate::billing::invoices::terms(sub, &old_catalog.catalog);
    let paid = terms.activation() <= now;
    let downgrade = new.monthly_base() < old.monthly_base() && new.cadence() == old.cadence();
    Ok((paid && downgrade).then(|| terms.paid_period_at(now).end))
}

/// Charges (or credits) for the rest of the current paid period when the plan or add-on
/// quantities change mid-period, to the second; billed on the next invoice. Each comes with
/// whether it belongs on the invoice that closes the period whatever the catalog says: the credit
/// for the time before the change of a new base fee billed in arrears, which offsets that
/// invoice's base fee (Lago: the new plan is billed for the days after the upgrade). Nothing during a
/// trial (nothing was billed), and nothing across a change of billing period length. Shares are
/// of the whole period (a prorated first period is a part of one).
async fn prorations(
    engine: &Engine,
    sub: &SubscriptionRecord,
    catalog: &CompiledCatalog,
    new_plan: &str,
    new_addons: &IndexMap<String, u32>,
    now: Timestamp,
) -> AppResult<Vec<(Charge, bool)>> {
    let old_catalog = engine.catalog(&sub.workspace, sub.catalog_version).await?;
    let terms = crate::billing::invoices::terms(sub, &old_catalog.catalog);
    if terms.activation() > now || !catalog.catalog.plans.contains_key(&sub.plan) {
        return Ok(Vec::new());
    }
    let billed = terms.paid_period_at(now);
    let full = terms.prorated_from(billed).unwrap_or(billed);
    let internal = |e: PricingError| Error::internal(e.to_string());
    let billed = BillingPeriod::new(billed.start, billed.end).map_err(internal)?;
    let full = BillingPeriod::new(full.start, full.end).map_err(internal)?;
    let period = full;
    let pricing_error = |e: PricingError| Error::invalid(e.code(), e.to_string());
    let mut charges = Vec::new();
    if sub.plan != new_plan
        && catalog.catalog.plans[&sub.plan].cadence() == catalog.catalog.plans[new_plan].cadence()
    {
        // In the customer's currency (both plans are priced in it: `check_currency`).
        let profile = crate::billing::profiles::customer_profile(
            engine.store().as_ref(),
            &sub.workspace,
            &sub.customer,
        )
        .await?;
        let priced = catalog
            .catalog
            .in_currency(profile.currency(&catalog.catalog)?);
        let lines = plan_change_within(&priced, &sub.plan, new_plan, now, &billed, &full)
            .map_err(pricing_error)?;
        let new_in_arrears = catalog.catalog.plans[new_plan]
            .base
            .as_ref()
            .is_some_and(|b| b.timing == Timing::InArrears);
        let last = lines.len().saturating_sub(1);
        charges.extend(
            lines
                .into_iter()
                .enumerate()
                .map(|(i, c)| (c, new_in_arrears && i == last)),
        );
    }
    let old_addons: IndexMap<String, u32> =
        serde_json::from_value(sub.addons.clone()).unwrap_or_default();
    let keys: std::collections::BTreeSet<&String> =
        old_addons.keys().chain(new_addons.keys()).collect();
    for key in keys {
        let from = old_addons.get(key).copied().unwrap_or(0);
        let to = new_addons.get(key).copied().unwrap_or(0);
        if from != to {
            let charge = addon_quantity_change(
                &catalog.catalog,
                new_plan,
                key,
                Decimal::from(from),
                Decimal::from(to),
                now,
                &period,
            )
            .map_err(pricing_error)?;
            charges.push((charge, false));
        }
    }
    Ok(charges)
}
