//! Issue a license from a subscription: the plan's features and limits (and limits chosen for
//! this customer), the subscription's current term as its validity, the plan's grace period,
//! signed with the workspace's key.

use std::collections::BTreeMap;

use jiff::Timestamp;
use rust_decimal::prelude::ToPrimitive;
use tollgate_core::catalog::{Entitlement, Limit};
use tollgate_core::code::Code;
use tollgate_core::ids::{CustomerId, WorkspaceId};
use tollgate_store::SubscriptionRecord;
use tollgate_store::trust::LicenseRecord;
use tollgate_verify::{License, LicenseFile, PublicKey};

use super::keys::active_signing_key;
use crate::app::subscriptions::{customer_now, is_live, view};
use crate::engine::Engine;
use crate::error::{AppResult, Error};
use crate::ids::new_id;

#[derive(Debug, Clone)]
pub struct IssueLicense {
    pub workspace: String,
    pub customer: String,
    /// The subscription it follows; `None`: the customer's live subscription.
    pub subscription: Option<String>,
    /// Binds the license to one machine's fingerprint.
    pub machine: Option<String>,
    /// Limits for this customer (Control plane: agents 50, seats 200), over the plan's.
    pub limits: BTreeMap<String, u64>,
}

/// Issues a license for the subscription's plan, valid for its current term.
pub async fn issue(engine: &Engine, input: IssueLicense) -> AppResult<LicenseRecord> {
    let IssueLicense {
        workspace,
        customer,
        subscription,
        machine,
        limits,
    } = input;
    super::master_key(engine)?;
    if let Some(fp) = &machine {
        super::machines::check_fingerprint(fp)?;
    }
    let now = customer_now(engine, &workspace, &customer).await?;
    let subs = engine
        .store()
        .list_subscriptions(&WorkspaceId::from(&workspace), &CustomerId::from(&customer))
        .await?;
    let sub = match &subscription {
        Some(id) => subs.into_iter().find(|s| &s.id == id),
        None => subs.into_iter().find(|s| is_live(s, now)),
    }
    .ok_or_else(|| match &subscription {
        Some(id) => Error::not_found("subscription", id),
        None => Error::conflict(
            Code::SubscriptionEnded,
            "the customer has no live subscription to issue a license from",
        ),
    })?;
    if !is_live(&sub, now) {
        return Err(Error::conflict(
            Code::SubscriptionEnded,
            "the subscription has ended; a license follows a live subscription",
        ));
    }
    for name in limits.keys() {
        check_limit_name(name)?;
    }
    issue_for(engine, &sub, machine, &limits, now).await
}

/// Limit names as license files carry them: 1 to 64 of `a-z 0-9 _`.
fn check_limit_name(name: &str) -> AppResult<()> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if valid {
        Ok(())
    } else {
        let message = format!("license limit {name:?}: names are 1 to 64 of `a-z 0-9 _`");
        Err(Error::validation(
            message.clone(),
            vec![crate::error::FieldError {
                path: format!("limits.{name}"),
                message,
            }],
        ))
    }
}

/// Issues the license of `sub` at `now` (the hooks call this directly), with `extra_limits`
/// over the plan's.
pub(crate) async fn issue_for(
    engine: &Engine,
    sub: &SubscriptionRecord,
    machine: Option<String>,
    extra_limits: &BTreeMap<String, u64>,
    now: Timestamp,
) -> AppResult<LicenseRecord> {
    let catalog = engine.catalog(&sub.workspace, sub.catalog_version).await?;
    let plan = catalog
        .catalog
        .plans
        .get(&sub.plan)
        .ok_or_else(|| Error::internal(format!("plan {} vanished", sub.plan)))?;
    let terms = plan.license.clone().ok_or_else(|| {
        Error::conflict(
            Code::PlanHasNoLicense,
            format!(
                "plan {:?} issues no license: add a `license` block to it in the catalog",
                sub.plan
            ),
        )
    })?;
    let mut features = Vec::new();
    let mut limits = BTreeMap::new();
    for (name, entitlement) in &plan.features {
        match entitlement {
            Entitlement::Switch(true) => features.push(name.clone()),
            Entitlement::Limit(Limit::Unlimited) => features.push(name.clone()),
            Entitlement::Limit(Limit::Finite(n)) => {
                if let Some(n) = n.to_u64().filter(|v| rust_decimal::Decimal::from(*v) == *n) {
                    features.push(name.clone());
                    limits.insert(name.clone(), n);
                }
            }
            Entitlement::Switch(false) | Entitlement::Config(_) => {}
        }
    }
    for (name, value) in terms.limits.iter().chain(extra_limits) {
        limits.insert(name.clone(), *value);
    }
    features.sort();
    // The term: the subscription's current period, and no longer than the subscription runs.
    let term = view(sub.clone(), &catalog, now).current_period;
    let expires = match sub.ends_at {
        Some(end) if end < term.end => end,
        _ => term.end,
    };
    // Whole seconds: the file is read by people and by other languages' verifiers.
    let issued = Timestamp::from_second(now.as_second()).map_err(Error::internal)?;
    let id = new_id("lic");
    let license = License {
        format: tollgate_verify::license::FORMAT.to_owned(),
        id: id.clone(),
        issuer: sub.workspace.clone(),
        customer: sub.customer.clone(),
        plan: sub.plan.clone(),
        features,
        limits,
        issued,
        expires,
        grace_seconds: u64::from(terms.grace_days) * 86_400,
        machine,
    };
    let key = active_signing_key(engine, &sub.workspace, now).await?;
    let file = LicenseFile::issue(&license, &key).map_err(Error::internal)?;
    let record = LicenseRecord {
        workspace: sub.workspace.clone(),
        id,
        customer: sub.customer.clone(),
        subscription: Some(sub.id.clone()),
        plan: sub.plan.clone(),
        key_id: PublicKey::from(key.verifying_key()).id(),
        file: file.to_armored(),
        issued_at: issued,
        expires_at: expires,
        max_machines: terms.max_machines.map(i64::from),
        revoked_at: None,
        revoke_reason: None,
    };
    let announced = super::event(
        engine,
        &record,
        crate::app::outbox::types::LICENSE_ISSUED,
        now,
    );
    engine.store().insert_license(&record, &[announced]).await?;
    Ok(record)
}
