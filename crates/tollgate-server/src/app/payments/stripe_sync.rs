//! The catalog synced to Stripe Billing, for workspaces where Stripe is the biller
//! (`POST /v1/payments/stripe_sync`, `tollgate payments stripe-sync`; docs/PAYMENTS.md).
//!
//! From the workspace's current catalog:
//! - each `count` or `sum` meter is a Billing Meter (`event_name` `tollgate_<workspace>_<meter>`,
//!   summing the pushed values per Stripe customer); other meters stay Tollgate's alone;
//! - each plan is a Product with the id `tollgate_<workspace>_<plan>`;
//! - a plan's base fee is a licensed recurring Price, and each `per_unit` usage price (its
//!   `included` units a free first tier) a metered Price on the meter's Billing Meter, in the
//!   plan's interval; both carry the lookup key `tollgate_<workspace>_<plan>_base` or
//!   `..._usage_<meter>` and a fingerprint of what they charge in their metadata.
//!
//! A second sync finds each object and changes nothing; a product renamed is updated; a price
//! whose fingerprint differs is replaced (Stripe's Prices are immutable): a new Price takes the
//! lookup key and the old one is deactivated. A dry run reads Stripe and answers the same
//! actions without making any write call. Every write carries an idempotency key derived from
//! what it writes, so a sync retried after a failure makes nothing twice.

use serde::Serialize;
use sha2::{Digest, Sha256};
use tollgate_core::catalog::{Aggregation, Catalog, Interval, Plan, PriceModel};
use tollgate_core::money::Money;

use super::stripe_client;
use crate::engine::Engine;
use crate::error::{AppResult, Error};
use crate::providers::stripe::billing::unit_amount_decimal;
use crate::providers::stripe::{Stripe, to_stripe_amount};

/// At most this many pages of 100 Billing Meters are read.
const MAX_METER_PAGES: usize = 10;

/// What a sync did (or, in a dry run, would do) to one Stripe object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SyncAction {
    /// `meter`, `product` or `price`.
    pub object: String,
    /// Tollgate's name of it: the meter, the plan, `<plan>:base`, `<plan>:usage:<meter>`.
    pub key: String,
    /// `create`, `update`, `replace` (a new Price, the old one deactivated), `deactivate` (a
    /// Price Tollgate made that the plan no longer has), `unchanged` or `skip` (not expressible
    /// in Stripe Billing; `detail` says why).
    pub action: String,
    /// The Stripe object (after the sync; `None` for what a dry run would create).
    pub stripe_id: Option<String>,
    /// The Price a `replace` deactivates.
    pub replaces: Option<String>,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SyncReport {
    pub dry_run: bool,
    pub catalog_version: i64,
    pub actions: Vec<SyncAction>,
}

/// The Billing Meter's `event_name` of Tollgate meter `meter` (the usage push uses it too).
pub fn meter_event_name(workspace: &str, meter: &str) -> String {
    format!("tollgate_{}_{}", safe(workspace), safe(meter))
}

/// Letters, digits and `_` only (Stripe's ids in paths).
fn safe(key: &str) -> String {
    key.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// Whether Tollgate meter `meter` is pushed to Stripe: `Err` says why not.
pub(crate) fn pushable(meter: &tollgate_core::catalog::Meter) -> Result<(), String> {
    if !matches!(meter.aggregation, Aggregation::Count | Aggregation::Sum) {
        return Err(format!(
            "a {:?} meter has no Stripe Billing Meter (Stripe sums or counts events): it stays \
             Tollgate's",
            meter.aggregation
        )
        .to_lowercase());
    }
    if meter.divide_by.is_some() {
        return Err(
            "a meter with `divide_by` is not pushed (Stripe would sum the raw values)".into(),
        );
    }
    Ok(())
}

fn action(object: &str, key: &str, action: &str) -> SyncAction {
    SyncAction {
        object: object.to_owned(),
        key: key.to_owned(),
        action: action.to_owned(),
        stripe_id: None,
        replaces: None,
        detail: None,
    }
}

fn skip(object: &str, key: &str, detail: impl Into<String>) -> SyncAction {
    SyncAction {
        detail: Some(detail.into()),
        ..action(object, key, "skip")
    }
}

/// A Price as the catalog wants it.
struct WantedPrice {
    key: String,
    lookup_key: String,
    product: String,
    /// The Tollgate meter of a metered price.
    meter: Option<String>,
    form: Vec<(String, String)>,
    fingerprint: String,
}

fn pair(k: &str, v: impl Into<String>) -> (String, String) {
    (k.to_owned(), v.into())
}

/// Stripe's `recurring[interval]` and `[interval_count]` of a plan (month when it has no base).
fn recurring(plan: &Plan) -> (&'static str, u32) {
    let Some(base) = &plan.base else {
        return ("month", 1);
    };
    let every = base.every.max(1);
    match base.interval {
        Interval::Day => ("day", every),
        Interval::Week => ("week", every),
        Interval::Month => ("month", every),
        Interval::Quarter => ("month", every.saturating_mul(3)),
        Interval::Year => ("year", every),
    }
}

fn fingerprint(form: &[(String, String)]) -> String {
    let mut hash = Sha256::new();
    for (k, v) in form {
        hash.update(k.as_bytes());
        hash.update([0]);
        hash.update(v.as_bytes());
        hash.update([0]);
    }
    hex::encode(&hash.finalize()[..8])
}

/// The Prices of `plan`, or why each one is skipped.
fn plan_prices(
    workspace: &str,
    catalog: &Catalog,
    plan_key: &str,
    plan: &Plan,
    actions: &mut Vec<SyncAction>,
) -> Vec<WantedPrice> {
    let currency = catalog.currency;
    let code = currency.to_string();
    let product = format!("tollgate_{}_{}", safe(workspace), safe(plan_key));
    let (interval, count) = recurring(plan);
    let mut wanted = Vec::new();
    let mut metered = std::collections::BTreeSet::new();
    let mut push = |key: String, suffix: String, meter: Option<String>, mut form: Vec<_>| {
        form.splice(
            0..0,
            [
                pair("currency", code.to_ascii_lowercase()),
                pair("recurring[interval]", interval),
                pair("recurring[interval_count]", count.to_string()),
            ],
        );
        let print = fingerprint(&form);
        wanted.push(WantedPrice {
            lookup_key: format!("{product}_{suffix}"),
            key,
            product: product.clone(),
            meter,
            form,
            fingerprint: print,
        });
    };
    if let Some(base) = &plan.base {
        let key = format!("{plan_key}:base");
        let amount = Money::exact(base.amount, currency)
            .map_err(|e| e.to_string())
            .and_then(|m| to_stripe_amount(&code, m.minor()).map_err(|e| e.to_string()));
        match amount {
            Ok(amount) => push(
                key,
                "base".into(),
                None,
                vec![
                    pair("unit_amount", amount.to_string()),
                    pair("recurring[usage_type]", "licensed"),
                ],
            ),
            Err(e) => actions.push(skip("price", &key, e)),
        }
    }
    for price in &plan.prices {
        let key = format!("{plan_key}:usage:{}", price.meter);
        let Some(meter) = catalog.meters.get(&price.meter) else {
            continue;
        };
        if let Err(why) = pushable(meter) {
            actions.push(skip("price", &key, why));
            continue;
        }
        if !metered.insert(price.meter.clone()) {
            actions.push(skip(
                "price",
                &key,
                "a second price on the same meter in one plan",
            ));
            continue;
        }
        let PriceModel::PerUnit { unit_amount } = &price.model else {
            actions.push(skip(
                "price",
                &key,
                "only per_unit usage prices are synced to Stripe (tiers, packages, \
                 percentages and dimensional prices stay Tollgate's)",
            ));
            continue;
        };
        let Some(decimal) = unit_amount_decimal(&code, *unit_amount, currency.minor_digits())
        else {
            actions.push(skip(
                "price",
                &key,
                "the unit price needs more than Stripe's 12 decimal places",
            ));
            continue;
        };
        let mut form = vec![
            pair("recurring[usage_type]", "metered"),
            pair(
                "tollgate_meter_event",
                meter_event_name(workspace, &price.meter),
            ),
        ];
        match price.included.filter(|i| !i.is_zero()) {
            None => form.push(pair("unit_amount_decimal", decimal)),
            Some(included) if included.fract().is_zero() && included.is_sign_positive() => {
                form.extend([
                    pair("billing_scheme", "tiered"),
                    pair("tiers_mode", "graduated"),
                    pair("tiers[0][up_to]", included.normalize().to_string()),
                    pair("tiers[0][unit_amount_decimal]", "0"),
                    pair("tiers[1][up_to]", "inf"),
                    pair("tiers[1][unit_amount_decimal]", decimal),
                ]);
            }
            Some(_) => {
                actions.push(skip(
                    "price",
                    &key,
                    "`included` must be a whole number of units for Stripe's tiers",
                ));
                continue;
            }
        }
        push(
            key,
            format!("usage_{}", safe(&price.meter)),
            Some(price.meter.clone()),
            form,
        );
    }
    wanted
}

/// Syncs the workspace's current catalog to Stripe (or, with `dry_run`, says what a sync would
/// do without writing anything at Stripe).
pub async fn stripe_sync(engine: &Engine, workspace: &str, dry_run: bool) -> AppResult<SyncReport> {
    let compiled = engine.latest_catalog(workspace).await?.ok_or_else(|| {
        Error::conflict(
            tollgate_core::code::Code::NoCatalog,
            "the workspace has no catalog to sync: PUT /v1/catalog first",
        )
    })?;
    let catalog = &compiled.catalog;
    let client = stripe_client(engine, workspace).await?;
    let mut actions = Vec::new();

    // Meters first: the metered Prices name them.
    let existing = client.meters(MAX_METER_PAGES).await?;
    let mut meter_ids = std::collections::BTreeMap::new();
    for (key, meter) in &catalog.meters {
        if let Err(why) = pushable(meter) {
            actions.push(skip("meter", key, why));
            continue;
        }
        let event_name = meter_event_name(workspace, key);
        if let Some(found) = existing.iter().find(|m| m.event_name == event_name) {
            meter_ids.insert(key.clone(), found.id.clone());
            actions.push(SyncAction {
                stripe_id: Some(found.id.clone()),
                ..action("meter", key, "unchanged")
            });
            continue;
        }
        let mut done = action("meter", key, "create");
        if !dry_run {
            let form = vec![
                pair(
                    "display_name",
                    meter.name.clone().unwrap_or_else(|| key.clone()),
                ),
                pair("event_name", event_name.as_str()),
                pair("default_aggregation[formula]", "sum"),
                pair("customer_mapping[type]", "by_id"),
                pair("customer_mapping[event_payload_key]", "stripe_customer_id"),
                pair("value_settings[event_payload_key]", "value"),
            ];
            let made = client
                .create_meter(&form, &format!("tollgate:sync:meter:{event_name}"))
                .await?;
            meter_ids.insert(key.clone(), made.id.clone());
            done.stripe_id = Some(made.id);
        }
        actions.push(done);
    }

    for (plan_key, plan) in &catalog.plans {
        let wanted = plan_prices(workspace, catalog, plan_key, plan, &mut actions);
        if wanted.is_empty() {
            continue;
        }
        let product = sync_product(&client, workspace, plan_key, plan, dry_run).await?;
        actions.push(product);
        let mut kept = Vec::new();
        for price in &wanted {
            let done = sync_price(&client, workspace, price, &meter_ids, dry_run).await?;
            kept.extend(done.stripe_id.clone());
            actions.push(done);
        }
        // Prices Tollgate made for this plan that no longer hold a lookup key Tollgate uses
        // (a replacement interrupted before the old one was deactivated, a price removed
        // from the plan) are deactivated.
        let product = format!("tollgate_{}_{}", safe(workspace), safe(plan_key));
        for stale in client.active_prices_of(&product).await? {
            let ours =
                stale.metadata.get("tollgate_workspace").map(String::as_str) == Some(workspace);
            let replaced = actions
                .iter()
                .any(|a| a.replaces.as_deref() == Some(stale.id.as_str()));
            if !ours || kept.contains(&stale.id) || replaced {
                continue;
            }
            if !dry_run {
                client.deactivate_price(&stale.id).await?;
            }
            let key = stale
                .metadata
                .get("tollgate_price")
                .cloned()
                .unwrap_or_else(|| plan_key.clone());
            actions.push(SyncAction {
                stripe_id: Some(stale.id),
                detail: Some("no longer one of the plan's prices".into()),
                ..action("price", &key, "deactivate")
            });
        }
    }
    Ok(SyncReport {
        dry_run,
        catalog_version: compiled.version,
        actions,
    })
}

async fn sync_product(
    client: &Stripe,
    workspace: &str,
    plan_key: &str,
    plan: &Plan,
    dry_run: bool,
) -> AppResult<SyncAction> {
    let id = format!("tollgate_{}_{}", safe(workspace), safe(plan_key));
    let name = plan.name.clone().unwrap_or_else(|| plan_key.to_owned());
    let found = client.product(&id).await?;
    let mut done = action("product", plan_key, "unchanged");
    done.stripe_id = Some(id.clone());
    let update = match &found {
        None => {
            done.action = "create".into();
            None
        }
        Some(p) if p.name != name || !p.active => {
            done.action = "update".into();
            Some(id.as_str())
        }
        Some(_) => return Ok(done),
    };
    if dry_run {
        if update.is_none() {
            done.stripe_id = None;
        }
        return Ok(done);
    }
    let mut form = vec![pair("name", name.as_str()), pair("active", "true")];
    if update.is_none() {
        form.extend([
            pair("id", id.as_str()),
            pair("metadata[tollgate_workspace]", workspace),
            pair("metadata[tollgate_plan]", plan_key),
        ]);
    }
    let key = format!("tollgate:sync:product:{id}:{}", fingerprint(&form));
    client.write_product(update, &form, &key).await?;
    Ok(done)
}

async fn sync_price(
    client: &Stripe,
    workspace: &str,
    price: &WantedPrice,
    meter_ids: &std::collections::BTreeMap<String, String>,
    dry_run: bool,
) -> AppResult<SyncAction> {
    let found = client.prices_by_lookup_key(&price.lookup_key).await?;
    let current = found.first();
    let mut done = action("price", &price.key, "create");
    if let Some(current) = current {
        if current.metadata.get("tollgate_fingerprint") == Some(&price.fingerprint) {
            done.action = "unchanged".into();
            done.stripe_id = Some(current.id.clone());
            return Ok(done);
        }
        done.action = "replace".into();
        done.replaces = Some(current.id.clone());
    }
    if dry_run {
        return Ok(done);
    }
    let mut form: Vec<(String, String)> = price
        .form
        .iter()
        .filter(|(k, _)| k != "tollgate_meter_event")
        .cloned()
        .collect();
    if let Some(meter) = &price.meter {
        let Some(id) = meter_ids.get(meter) else {
            return Err(Error::internal(format!(
                "the Billing Meter of {meter} was neither found nor made"
            )));
        };
        form.push(pair("recurring[meter]", id.as_str()));
    }
    form.extend([
        pair("product", price.product.as_str()),
        pair("lookup_key", price.lookup_key.as_str()),
        pair("transfer_lookup_key", "true"),
        pair("nickname", price.key.as_str()),
        pair("metadata[tollgate_workspace]", workspace),
        pair("metadata[tollgate_price]", price.key.as_str()),
        pair("metadata[tollgate_fingerprint]", price.fingerprint.as_str()),
    ]);
    let key = format!(
        "tollgate:sync:price:{}:{}",
        price.lookup_key, price.fingerprint
    );
    let made = client.create_price(&form, &key).await?;
    if let Some(old) = &done.replaces {
        client.deactivate_price(old).await?;
    }
    done.stripe_id = Some(made.id);
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog(yaml: &str) -> Catalog {
        tollgate_core::catalog::parse_yaml(yaml).unwrap()
    }

    #[test]
    fn prices_follow_the_plan_and_skip_what_stripe_cannot_express() {
        let c = catalog(
            r#"
currency: EUR
meters:
  calls: { event: api.call, aggregation: count }
  minutes: { event: run, aggregation: sum, property: ms, divide_by: 60000 }
  bytes: { event: up, aggregation: sum, property: n }
plans:
  team:
    base: { amount: "90.00", interval: quarter }
    prices:
      - { meter: calls, model: per_unit, included: 10.5, unit_amount: "0.01" }
      - { meter: minutes, model: per_unit, unit_amount: "0.10" }
      - { meter: bytes, model: package, size: 1000, amount: "1.00" }
"#,
        );
        let mut actions = Vec::new();
        let plan = &c.plans["team"];
        let wanted = plan_prices("ws_1", &c, "team", plan, &mut actions);
        assert_eq!(wanted.len(), 1, "only the base fee is expressible");
        let base = &wanted[0];
        assert_eq!(base.lookup_key, "tollgate_ws_1_team_base");
        let field = |k: &str| {
            base.form
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(field("currency"), Some("eur"));
        assert_eq!(field("unit_amount"), Some("9000"));
        assert_eq!(field("recurring[interval]"), Some("month"));
        assert_eq!(field("recurring[interval_count]"), Some("3"), "a quarter");
        let skipped: Vec<&str> = actions.iter().map(|a| a.key.as_str()).collect();
        assert_eq!(
            skipped,
            ["team:usage:calls", "team:usage:minutes", "team:usage:bytes"]
        );
        assert!(
            actions
                .iter()
                .all(|a| a.action == "skip" && a.detail.is_some())
        );
        // The same catalog, the same fingerprint; another amount, another one.
        let again = plan_prices("ws_1", &c, "team", plan, &mut Vec::new());
        assert_eq!(again[0].fingerprint, base.fingerprint);
        let dearer = catalog(&c_yaml_with("95.00"));
        let other = plan_prices(
            "ws_1",
            &dearer,
            "team",
            &dearer.plans["team"],
            &mut Vec::new(),
        );
        assert_ne!(other[0].fingerprint, base.fingerprint);
        assert_eq!(
            meter_event_name("ws-1", "api.calls"),
            "tollgate_ws_1_api_calls"
        );
    }

    fn c_yaml_with(amount: &str) -> String {
        format!(
            "currency: EUR\nplans:\n  team:\n    base: {{ amount: \"{amount}\", interval: quarter }}\n"
        )
    }
}
