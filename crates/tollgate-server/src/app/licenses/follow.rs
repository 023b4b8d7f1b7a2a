//! Licenses follow subscriptions: issued when a subscription to a plan with a `license` block
//! starts, renewed for each new term, reissued for the new plan on a plan change, revoked when
//! the subscription is canceled at once (a cancellation at the period end needs nothing: the
//! license's term ends then) or when an invoice of the subscription is marked uncollectible
//! (non-payment), and issued again once that invoice is paid.

use std::collections::BTreeMap;

use jiff::Timestamp;
use tollgate_core::ids::WorkspaceId;
use tollgate_store::SubscriptionRecord;
use tollgate_store::billing::InvoiceRecord;
use tollgate_store::trust::LicenseRecord;
use tollgate_verify::LicenseFile;

use super::issue::issue_for;
use crate::app::subscriptions::{is_live, view};
use crate::engine::Engine;
use crate::error::AppResult;

/// The reason kept with licenses revoked for an uncollectible invoice.
pub const NON_PAYMENT: &str = "non_payment";

/// Refuses, before anything is written, a subscription to a plan that issues licenses when the
/// master key is missing: the license could not be issued.
pub(crate) async fn require_master_key_for(
    engine: &Engine,
    workspace: &str,
    catalog_version: i64,
    plan: &str,
) -> AppResult<()> {
    let catalog = engine.catalog(workspace, catalog_version).await?;
    if catalog
        .catalog
        .plans
        .get(plan)
        .is_some_and(|p| p.license.is_some())
    {
        super::master_key(engine)?;
    }
    Ok(())
}

async fn issues_license(engine: &Engine, sub: &SubscriptionRecord) -> AppResult<bool> {
    let catalog = engine.catalog(&sub.workspace, sub.catalog_version).await?;
    Ok(catalog
        .catalog
        .plans
        .get(&sub.plan)
        .is_some_and(|p| p.license.is_some()))
}

async fn live_licenses(engine: &Engine, sub: &SubscriptionRecord) -> AppResult<Vec<LicenseRecord>> {
    Ok(engine
        .store()
        .subscription_licenses(&WorkspaceId::from(&sub.workspace), &sub.id)
        .await?)
}

async fn revoke_all(
    engine: &Engine,
    licenses: &[LicenseRecord],
    reason: &str,
    now: Timestamp,
) -> AppResult<()> {
    for license in licenses {
        super::revoke_with_event(engine, license, reason, now).await?;
    }
    Ok(())
}

/// A subscription started: its license, if its plan issues one.
pub async fn on_subscribed(
    engine: &Engine,
    sub: &SubscriptionRecord,
    now: Timestamp,
) -> AppResult<()> {
    if issues_license(engine, sub).await? {
        issue_for(engine, sub, None, &BTreeMap::new(), now).await?;
    }
    Ok(())
}

/// The plan changed: the old plan's licenses are revoked, the new plan's issued.
pub async fn on_plan_changed(
    engine: &Engine,
    sub: &SubscriptionRecord,
    now: Timestamp,
) -> AppResult<()> {
    let old = live_licenses(engine, sub).await?;
    revoke_all(engine, &old, "plan_changed", now).await?;
    on_subscribed(engine, sub, now).await
}

/// The subscription was canceled: at once, its licenses are revoked.
pub async fn on_canceled(
    engine: &Engine,
    sub: &SubscriptionRecord,
    immediately: bool,
    now: Timestamp,
) -> AppResult<()> {
    if immediately {
        let live = live_licenses(engine, sub).await?;
        revoke_all(engine, &live, "subscription_canceled", now).await?;
    }
    Ok(())
}

/// A new term (the scheduler's period-end job, after billing): a live subscription whose
/// licenses all end before the current term gets a license for it, with the limits and machine
/// binding of its newest license; a plan that changed at the period end (a scheduled downgrade,
/// a trial's fallback) revokes the old plan's licenses and issues the new one's. Licenses the
/// operator revoked are not renewed. Without a master key nothing is done (the subscription
/// could not have a license to renew).
pub async fn renew(engine: &Engine, sub: &SubscriptionRecord, now: Timestamp) -> AppResult<()> {
    if engine.master_key().is_none() || !is_live(sub, now) {
        return Ok(());
    }
    let live = live_licenses(engine, sub).await?;
    let Some(newest) = live.last() else {
        return Ok(());
    };
    if live.iter().any(|l| l.plan != sub.plan) {
        let old: Vec<_> = live
            .iter()
            .filter(|l| l.plan != sub.plan)
            .cloned()
            .collect();
        revoke_all(engine, &old, "plan_changed", now).await?;
        if live.iter().all(|l| l.plan != sub.plan) {
            on_subscribed(engine, sub, now).await?;
        }
        return Ok(());
    }
    if !issues_license(engine, sub).await? {
        return Ok(());
    }
    let catalog = engine.catalog(&sub.workspace, sub.catalog_version).await?;
    let term = view(sub.clone(), &catalog, now).current_period;
    if live.iter().any(|l| l.expires_at >= term.end) {
        return Ok(());
    }
    // The newest license's own limits and binding carry over (they were chosen per customer).
    let (limits, machine) = match LicenseFile::parse(&newest.file)
        .ok()
        .and_then(|f| serde_json::from_slice::<tollgate_verify::License>(&f.payload).ok())
    {
        Some(l) => (l.limits, l.machine),
        None => (BTreeMap::new(), None),
    };
    issue_for(engine, sub, machine, &limits, now).await?;
    Ok(())
}

/// An invoice of a subscription was marked uncollectible: its licenses are revoked
/// (`non_payment`).
pub async fn on_unpaid(engine: &Engine, invoice: &InvoiceRecord, now: Timestamp) -> AppResult<()> {
    let Some(sub) = subscription_of(engine, invoice).await? else {
        return Ok(());
    };
    let live = live_licenses(engine, &sub).await?;
    if !live.is_empty() {
        super::master_key(engine)?;
    }
    revoke_all(engine, &live, NON_PAYMENT, now).await
}

/// An invoice was paid: a live subscription whose licenses were revoked for non-payment (and
/// that has none left) gets its license again.
pub async fn on_paid(engine: &Engine, invoice: &InvoiceRecord, now: Timestamp) -> AppResult<()> {
    let Some(sub) = subscription_of(engine, invoice).await? else {
        return Ok(());
    };
    if engine.master_key().is_none() || !is_live(&sub, now) {
        return Ok(());
    }
    if !live_licenses(engine, &sub).await?.is_empty() {
        return Ok(());
    }
    let all = super::list(engine, &sub.workspace, &sub.customer).await?;
    let newest = all
        .iter()
        .find(|l| l.subscription.as_deref() == Some(&sub.id));
    if newest.is_some_and(|l| l.revoke_reason.as_deref() == Some(NON_PAYMENT)) {
        on_subscribed(engine, &sub, now).await?;
    }
    Ok(())
}

async fn subscription_of(
    engine: &Engine,
    invoice: &InvoiceRecord,
) -> AppResult<Option<SubscriptionRecord>> {
    let Some(id) = &invoice.subscription else {
        return Ok(None);
    };
    Ok(engine
        .store()
        .get_subscription(&WorkspaceId::from(&invoice.workspace), id)
        .await?)
}
