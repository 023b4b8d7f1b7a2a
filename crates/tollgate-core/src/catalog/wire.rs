//! How a stored [`Catalog`] is read back.
//!
//! Entitlements are serialized bare (`true`, `"5"`, `"30d"`), and a bare string cannot tell a
//! limit from a config value: a config feature set to `"90"` would come back as the limit 90.
//! The catalog knows each feature's kind, so it reads entitlements as loose values first and
//! converts them by kind once the features are known. Everything else deserializes as derived.

use indexmap::IndexMap;
use rust_decimal::Decimal;
use serde::Deserialize;

use super::model::{
    Addon, Catalog, Coupon, Entitlement, Feature, FeatureKind, Meter, Plan, Policies, Product,
    ReferralProgram,
};
use super::taxes::Taxes;
use crate::money::{Currency, Rounding};

/// The stored form of a [`Catalog`], with entitlements not yet typed.
#[derive(Deserialize)]
pub(crate) struct CatalogWire {
    currency: Currency,
    #[serde(default)]
    meters: IndexMap<String, Meter>,
    #[serde(default)]
    features: IndexMap<String, Feature>,
    #[serde(default)]
    plans: IndexMap<String, PlanWire>,
    #[serde(default)]
    addons: IndexMap<String, AddonWire>,
    #[serde(default)]
    products: IndexMap<String, Product>,
    #[serde(default)]
    rounding: Rounding,
    #[serde(default)]
    coupons: IndexMap<String, Coupon>,
    #[serde(default)]
    referrals: Option<ReferralProgram>,
    #[serde(default)]
    alerts: IndexMap<String, Vec<Decimal>>,
    #[serde(default)]
    policies: Policies,
    #[serde(default)]
    taxes: Taxes,
    #[serde(default)]
    costs: IndexMap<String, super::costs::MeterCost>,
}

#[derive(Deserialize)]
struct PlanWire {
    #[serde(default)]
    features: IndexMap<String, serde_json::Value>,
    #[serde(flatten)]
    plan: Plan,
}

#[derive(Deserialize)]
struct AddonWire {
    #[serde(default)]
    sets: IndexMap<String, serde_json::Value>,
    #[serde(flatten)]
    addon: Addon,
}

impl TryFrom<CatalogWire> for Catalog {
    type Error = String;

    fn try_from(wire: CatalogWire) -> Result<Self, Self::Error> {
        let features = wire.features;
        let typed = |values: IndexMap<String, serde_json::Value>| {
            values
                .into_iter()
                .map(|(key, value)| {
                    let kind = features.get(&key).map(|f| f.kind);
                    let entitlement = entitlement(kind, value)
                        .map_err(|e| format!("entitlement `{key}`: {e}"))?;
                    Ok((key, entitlement))
                })
                .collect::<Result<IndexMap<_, _>, String>>()
        };
        let mut plans = IndexMap::with_capacity(wire.plans.len());
        for (key, PlanWire { features, mut plan }) in wire.plans {
            plan.features = typed(features).map_err(|e| format!("plan `{key}`: {e}"))?;
            plans.insert(key, plan);
        }
        let mut addons = IndexMap::with_capacity(wire.addons.len());
        for (key, AddonWire { sets, mut addon }) in wire.addons {
            addon.sets = typed(sets).map_err(|e| format!("addon `{key}`: {e}"))?;
            addons.insert(key, addon);
        }
        // Listing every field keeps this conversion honest when `Catalog` grows one.
        Ok(Catalog {
            currency: wire.currency,
            meters: wire.meters,
            features,
            plans,
            addons,
            products: wire.products,
            rounding: wire.rounding,
            coupons: wire.coupons,
            referrals: wire.referrals,
            alerts: wire.alerts,
            policies: wire.policies,
            taxes: wire.taxes,
            costs: wire.costs,
        })
    }
}

/// Reads one entitlement as the kind of its feature; an unknown feature falls back to the bare
/// guess (boolean, then limit, then config).
fn entitlement(
    kind: Option<FeatureKind>,
    value: serde_json::Value,
) -> Result<Entitlement, serde_json::Error> {
    match (kind, value) {
        (Some(FeatureKind::Switch), serde_json::Value::Bool(on)) => Ok(Entitlement::Switch(on)),
        (Some(FeatureKind::Config), serde_json::Value::String(text)) => {
            Ok(Entitlement::Config(text))
        }
        (Some(FeatureKind::Limit), value) => serde_json::from_value(value).map(Entitlement::Limit),
        (_, value) => serde_json::from_value(value),
    }
}
