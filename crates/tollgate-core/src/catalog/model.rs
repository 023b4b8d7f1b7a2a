//! The catalog as data: what an operator sells and the rules that come with it.
//!
//! These types are the *validated* form. A catalog file is first read into loose values, checked
//! field by field (so every mistake is reported with its path, not only the first), and only then
//! turned into these types by [`crate::catalog::parse_yaml`]. Maps keep the order of the file: the
//! order of `plans` is the order of tiers, which breaks ties when looking for the cheapest plan.
//!
//! The serde form of these types is how catalog versions are stored; `Catalog` deserializes through
//! `catalog/wire.rs` so that entitlements come back as the kind their feature declares.

use indexmap::IndexMap;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::taxes::Taxes;
use crate::duration::WindowLength;
use crate::money::{Currency, Rounding};

/// A whole catalog: meters, features, plans, add-ons, one-time products, coupons.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "super::wire::CatalogWire")]
pub struct Catalog {
    pub currency: Currency,
    #[serde(default)]
    pub meters: IndexMap<String, Meter>,
    #[serde(default)]
    pub features: IndexMap<String, Feature>,
    /// Plans in tier order, with `extends` already resolved: each plan carries everything it has.
    #[serde(default)]
    pub plans: IndexMap<String, Plan>,
    #[serde(default)]
    pub addons: IndexMap<String, Addon>,
    #[serde(default)]
    pub products: IndexMap<String, Product>,
    /// How invoice lines are rounded to minor units; half away from zero unless the operator says
    /// otherwise.
    #[serde(default)]
    pub rounding: Rounding,
    /// Discounts that can be applied to a customer's invoices (referral rewards, promotions).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub coupons: IndexMap<String, Coupon>,
    /// The referral program, if the operator runs one (Apex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referrals: Option<ReferralProgram>,
    /// Usage alerts per meter: percentages of the plan's allowance for that meter (the `included`
    /// of its price on the meter, else its finite quota limit) at which the customer is notified,
    /// once per threshold per period (Levqor: `api_calls: [80, 100]`).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub alerts: IndexMap<String, Vec<Decimal>>,
    /// Operator policies that are numbers in the operator's terms rather than prices.
    #[serde(default, skip_serializing_if = "Policies::is_empty")]
    pub policies: Policies,
    /// Tax rates and the lines they apply to (`docs/INVOICES.md`).
    #[serde(default, skip_serializing_if = "Taxes::is_empty")]
    pub taxes: Taxes,
    /// What a unit of a meter costs the operator, by meter (`costs`, docs/CATALOG.md): only
    /// the margin report reads it.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub costs: IndexMap<String, super::costs::MeterCost>,
}

impl Default for Catalog {
    /// An empty USD catalog, handy as `Catalog { plans, ..Default::default() }` in tests.
    fn default() -> Self {
        Catalog {
            currency: Currency::USD,
            meters: IndexMap::new(),
            features: IndexMap::new(),
            plans: IndexMap::new(),
            addons: IndexMap::new(),
            products: IndexMap::new(),
            rounding: Rounding::default(),
            coupons: IndexMap::new(),
            referrals: None,
            alerts: IndexMap::new(),
            policies: Policies::default(),
            taxes: Taxes::default(),
            costs: IndexMap::new(),
        }
    }
}

/// How events become a number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Meter {
    /// Display name; defaults to the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The event type this meter reads, e.g. `decision.evaluated`.
    pub event: String,
    pub aggregation: Aggregation,
    /// The property aggregated (required for everything but `count`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub property: Option<String>,
    /// Only events whose properties equal all of these values count.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub filter: IndexMap<String, serde_json::Value>,
    /// Properties whose values split the aggregate into groups (e.g. `tier`, `model`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub group_by: Vec<String>,
    /// Unit conversion: the aggregated value is divided by this (e.g. 60000 for ms to minutes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub divide_by: Option<Decimal>,
    /// For `time_weighted`: the time unit of the result (`month` gives GB-month). Default `month`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per: Option<TimeUnit>,
    /// A `sum` meter that takes negative quantities as corrections (from admin keys only, never
    /// below zero). Everywhere else a negative quantity is refused.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub corrections: bool,
    /// What a second event with an id already stored does: nothing (the default), or replace
    /// the first one's value as an audited amendment (docs/INVOICES.md, "Repeated event ids").
    #[serde(default, skip_serializing_if = "OnDuplicate::is_first_wins")]
    pub on_duplicate: OnDuplicate,
}

/// What a repeated event id does to a meter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnDuplicate {
    /// The first copy counts; later copies are acknowledged as duplicates and change nothing.
    #[default]
    FirstWins,
    /// A later copy (same customer and type) replaces the first one's properties for rating;
    /// the event row stays as first written and the change is kept as an amendment.
    LatestReplaces,
}

impl OnDuplicate {
    /// Serde's `skip_serializing_if`: the default is not written, so catalogs without the
    /// setting keep their stored JSON.
    pub fn is_first_wins(&self) -> bool {
        *self == OnDuplicate::FirstWins
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregation {
    Count,
    Sum,
    Max,
    UniqueCount,
    /// The value of the most recent event in the period.
    Latest,
    /// Each event sets a level from its time on; the result is level x time (e.g. GB-month).
    TimeWeighted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeUnit {
    Second,
    Minute,
    Hour,
    Day,
    Month,
}

/// A capability a plan may grant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Feature {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub kind: FeatureKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeatureKind {
    /// On or off.
    Switch,
    /// A number the customer may not exceed (projects, seats, agents), or unlimited.
    Limit,
    /// A configuration value handed to the app (e.g. a retention period).
    Config,
}

/// The value a plan gives a feature.
///
/// Serialized bare (`true`, `"5"`, `"unlimited"`, `"30d"`), so on its own a string is ambiguous
/// between a limit and a config value; a whole [`Catalog`] deserializes each entitlement as the
/// kind its feature declares, so catalogs round-trip exactly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Entitlement {
    Switch(bool),
    Limit(Limit),
    Config(String),
}

/// A numeric limit that may be unlimited. Written as a number or the string `unlimited`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Limit {
    Finite(Decimal),
    #[serde(with = "unlimited")]
    Unlimited,
}

mod unlimited {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};
    pub fn serialize<S: Serializer>(s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("unlimited")
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<(), D::Error> {
        let s = String::deserialize(d)?;
        if s == "unlimited" {
            Ok(())
        } else {
            Err(D::Error::custom(format!(
                "{s:?} is not a number or \"unlimited\""
            )))
        }
    }
}

impl Limit {
    /// Whether `used + quantity` stays within the limit.
    pub fn admits(&self, used: Decimal, quantity: Decimal) -> bool {
        match self {
            Limit::Unlimited => true,
            Limit::Finite(max) => used.saturating_add(quantity) <= *max,
        }
    }

    /// What is left, `None` when unlimited. Never negative.
    pub fn remaining(&self, used: Decimal) -> Option<Decimal> {
        match self {
            Limit::Unlimited => None,
            Limit::Finite(max) => Some(max.saturating_sub(used).max(Decimal::ZERO)),
        }
    }
}

/// Something a customer subscribes to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The plan this one was declared to extend (already merged in; kept for display).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extends: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<BasePrice>,
    /// Days of free trial when a subscription starts with a trial.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trial_days: Option<u32>,
    /// Where a trial ends up when the customer has no payment method (e.g. Apex: `free`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trial_fallback: Option<String>,
    #[serde(default)]
    pub features: IndexMap<String, Entitlement>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quotas: Vec<Quota>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rate_limits: Vec<RateLimit>,
    /// Usage charges, rated by the pricing engine.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prices: Vec<UsagePrice>,
    /// Add-ons this plan may carry, with quantities included for free.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub addons: IndexMap<String, AddonTerms>,
    /// A one-time fee on the first invoice (e.g. white-label setup).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub setup_fee: Option<Decimal>,
    /// A minimum charge per period: the invoice is topped up to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum: Option<Decimal>,
    /// Payment collection: `automatic` (card) or `send_invoice` (bank transfer).
    #[serde(default)]
    pub collection: Collection,
    /// Whether upgrade hints and recommendations may offer this plan. `false` for plans that are
    /// not a step on the tier ladder, e.g. QLP's pay-as-you-go plan: it has no base fee, so it
    /// would otherwise always be "the cheapest plan that allows it".
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub upgrade_target: bool,
    /// Where billing periods start: `calendar` boundaries or the subscription's start
    /// (`anniversary`). `None`: the default of the plan's cadence, see [`Plan::anchor`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing: Option<Anchor>,
    /// When the prorations of an upgrade to this plan are invoiced.
    #[serde(default, skip_serializing_if = "UpgradeInvoicing::is_default")]
    pub upgrades: UpgradeInvoicing,
    /// A signed license issued with each subscription to this plan (self-hosted editions,
    /// `docs/TRUST.md`); `None`: no license.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<LicenseTerms>,
    /// Progressive billing: an invoice as soon as the period's usage amount reaches a threshold
    /// (docs/INVOICES.md, "Progressive billing"); `None`: usage is billed at the period end only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progressive_billing: Option<ProgressiveBilling>,
    /// The plan's prices in currencies other than the catalog's, by ISO 4217 code: a customer
    /// whose currency is one of them is invoiced with these (docs/CATALOG.md, "Prices in
    /// several currencies").
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub currencies: IndexMap<String, PlanPrices>,
}

/// Every amount of a plan in one more currency: the base fee's amount (its interval and timing
/// are the plan's), the setup fee, the minimum and the usage prices, for the same meters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanPrices {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub setup_fee: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prices: Vec<UsagePrice>,
}

/// The usage amounts of a period at which a plan invoices the usage so far: each of `thresholds`
/// (ascending), then every `every` above the last one (or from zero, without thresholds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgressiveBilling {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub thresholds: Vec<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every: Option<Decimal>,
}

impl ProgressiveBilling {
    /// The highest threshold at or below `amount`, if any.
    pub fn reached(&self, amount: Decimal) -> Option<Decimal> {
        let fixed = self
            .thresholds
            .iter()
            .rev()
            .find(|t| **t <= amount)
            .copied();
        let last = self.thresholds.last().copied().unwrap_or(Decimal::ZERO);
        match self.every {
            Some(every) if every > Decimal::ZERO && amount >= last.checked_add(every)? => {
                let steps = amount.checked_sub(last)?.checked_div(every)?.floor();
                last.checked_add(steps.checked_mul(every)?)
            }
            _ => fixed,
        }
    }
}

/// What a plan's licenses carry beyond its features: named integer limits, the grace period
/// after the term, and how many machines may be activated at once.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LicenseTerms {
    /// Days a license keeps working after its term ends, flagged as in grace.
    #[serde(default)]
    pub grace_days: u32,
    /// The most machines activated at once; `None`: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_machines: Option<u32>,
    /// Named limits written into the license (`agents`, `seats`, `requests_per_month`).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub limits: IndexMap<String, u64>,
}

fn yes() -> bool {
    true
}

fn is_true(value: &bool) -> bool {
    *value
}

impl Default for Plan {
    /// A plan that grants nothing and costs nothing, offered in upgrade hints.
    fn default() -> Self {
        Plan {
            name: None,
            extends: None,
            base: None,
            trial_days: None,
            trial_fallback: None,
            features: IndexMap::new(),
            quotas: Vec::new(),
            rate_limits: Vec::new(),
            prices: Vec::new(),
            addons: IndexMap::new(),
            setup_fee: None,
            minimum: None,
            collection: Collection::default(),
            upgrade_target: true,
            billing: None,
            upgrades: UpgradeInvoicing::default(),
            license: None,
            progressive_billing: None,
            currencies: IndexMap::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Collection {
    #[default]
    Automatic,
    SendInvoice,
}

/// A recurring fee.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BasePrice {
    pub amount: Decimal,
    pub interval: Interval,
    #[serde(default)]
    pub timing: Timing,
    /// Periods of `every` intervals (`interval: month, every: 3`: quarterly); `amount` is the
    /// fee of one such period (Stripe's `interval_count`). 1 unless written.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub every: u32,
}

fn one() -> u32 {
    1
}

fn is_one(value: &u32) -> bool {
    *value == 1
}

/// Where a plan's billing periods start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Anchor {
    /// On calendar boundaries in UTC (midnight, Monday, the 1st of the month, of the quarter, of
    /// the year); a subscription that starts between two pays a prorated first period.
    Calendar,
    /// On the subscription's start: every period is whole.
    Anniversary,
}

/// When the prorations of an upgrade are invoiced (Stripe's `proration_behavior`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpgradeInvoicing {
    /// On the subscription's next invoice (Stripe's `create_prorations`).
    #[default]
    NextInvoice,
    /// On an invoice of their own, issued at the change (Stripe's `always_invoice`).
    AlwaysInvoice,
}

impl UpgradeInvoicing {
    fn is_default(&self) -> bool {
        *self == UpgradeInvoicing::default()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Interval {
    Month,
    Year,
    Day,
    Week,
    Quarter,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Timing {
    #[default]
    InAdvance,
    InArrears,
}

/// A limit on a meter's value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quota {
    pub meter: String,
    pub limit: Limit,
    pub reset: QuotaReset,
    /// Whether the limit counts per customer or per subject (the `subject` of a check, e.g. a user).
    #[serde(default)]
    pub per: Scope,
    #[serde(default)]
    pub enforcement: Enforcement,
}

/// When a quota's usage starts again from zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuotaReset {
    /// The subscription's billing period (calendar months or years in UTC).
    Period,
    /// An exact rolling window: at most `limit` within *any* window of this length.
    Rolling(WindowLength),
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    #[default]
    Customer,
    Subject,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Enforcement {
    /// Denied once the limit is reached.
    #[default]
    Hard,
    /// Allowed, but the answer says the limit is exceeded (overage is billed).
    Soft,
}

/// A request rate limit, applied to every check of the customer (or subject).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RateLimit {
    pub limit: u64,
    pub per: WindowLength,
    #[serde(default)]
    pub scope: Scope,
}

/// A usage charge on a plan. `included` units are free before the model applies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsagePrice {
    pub meter: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub included: Option<Decimal>,
    pub model: PriceModel,
    /// A minimum amount of this charge per period: an invoice that closes a period tops the
    /// charge up to it (prorated on a partial period, as the plan minimum is).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum: Option<Decimal>,
}

/// How a quantity becomes an amount. Amounts here are exact decimals; rounding happens once, at
/// the invoice line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PriceModel {
    PerUnit {
        unit_amount: Decimal,
    },
    /// `amount` per block of `size` units; partial blocks rounded as `rounding` says.
    Package {
        size: Decimal,
        amount: Decimal,
        #[serde(default)]
        rounding: PackageRounding,
    },
    /// Each tier's units at that tier's price.
    Graduated {
        tiers: Vec<Tier>,
        /// Charge the first tier's flat amount even when nothing is billable.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        flat_at_zero: bool,
        /// What units above a bounded last tier cost; `None`: the last tier is open-ended.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        above_last_tier: Option<AboveLastTier>,
    },
    /// All units at the price of the tier the total falls in.
    Volume {
        tiers: Vec<Tier>,
        /// Charge the first tier's flat amount even when nothing is billable.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        flat_at_zero: bool,
        /// What units above a bounded last tier cost; `None`: the last tier is open-ended.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        above_last_tier: Option<AboveLastTier>,
    },
    /// A percentage of the meter's value (e.g. of AI spend), with an optional floor and cap of
    /// the period's charge; with [`TransactionFees`], a fee per event (a payment, a sale).
    Percentage {
        percent: Decimal,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        floor: Option<Decimal>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cap: Option<Decimal>,
        /// Fixed fee, bounds and free allowances per transaction; empty: the percentage of the
        /// period's value, as one amount.
        #[serde(default, skip_serializing_if = "TransactionFees::is_empty")]
        per_transaction: TransactionFees,
    },
    /// Percentage tiers on the period's value: each tier's part of the value at that tier's
    /// percent, plus the tier's `flat_amount` once when the value first enters it.
    GraduatedPercentage {
        tiers: Vec<PercentTier>,
    },
    /// A unit price per value of one group-by dimension, times multipliers by another.
    Dimensional {
        dimension: String,
        rates: IndexMap<String, Decimal>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        multiplier: Option<Multiplier>,
    },
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PackageRounding {
    /// A started block is a whole block ("$5 per started 1,000").
    #[default]
    Up,
    Down,
}

/// The rule for units above a bounded last tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AboveLastTier {
    /// Priced at the last tier's unit price (no second flat amount).
    LastRate,
    /// Not charged: the charge stops growing at the last bound.
    Free,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tier {
    /// Upper bound of the tier, inclusive; `None` for the last tier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub up_to: Option<Decimal>,
    #[serde(default)]
    pub unit_amount: Decimal,
    #[serde(default)]
    pub flat_amount: Decimal,
}

/// What a percentage price charges per transaction (each event of the meter, in time order).
///
/// A transaction is free while both free allowances that are set still have room when it
/// arrives: it uses one of `free_units` and up to its value of `free_amount`; a value above what
/// is left of `free_amount` is charged. Once either allowance is used up, every later
/// transaction is charged in full. A charged transaction pays `percent` of its charged value
/// plus `fixed_fee`, raised to `min` and capped at `max`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransactionFees {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed_fee: Option<Decimal>,
    /// The least one charged transaction pays.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<Decimal>,
    /// The most one transaction pays.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<Decimal>,
    /// The first transactions of the period that are free, by count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub free_units: Option<u64>,
    /// The value of the period's first transactions that is free.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub free_amount: Option<Decimal>,
}

impl TransactionFees {
    /// No per-transaction rule: the price rates the period's value.
    pub fn is_empty(&self) -> bool {
        *self == TransactionFees::default()
    }
}

/// One tier of a graduated percentage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PercentTier {
    /// Upper bound of the tier's value, inclusive; `None` for the last tier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub up_to: Option<Decimal>,
    pub percent: Decimal,
    /// Charged once in a period, when the value first enters the tier.
    #[serde(default)]
    pub flat_amount: Decimal,
}

impl PriceModel {
    /// Whether rating needs each transaction's value, not only the period's total.
    pub fn per_transaction(&self) -> bool {
        matches!(self, PriceModel::Percentage { per_transaction, .. } if !per_transaction.is_empty())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Multiplier {
    pub dimension: String,
    /// Factor per dimension value; values not listed use 1.
    pub values: IndexMap<String, Decimal>,
}

/// Something sold in quantities on top of a plan (seats, packs, modules).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Addon {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub amount: Decimal,
    pub interval: Interval,
    /// Features this add-on raises, per unit (e.g. a `policy_pack` raises `policy_packs` by 1).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub grants: IndexMap<String, Decimal>,
    /// Feature values this add-on sets while the subscription carries it, overriding the plan's
    /// (e.g. `audit_retention_1y` sets `audit_retention: "1y"`). Not multiplied by the quantity.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub sets: IndexMap<String, Entitlement>,
    /// `amount` in other currencies than the catalog's (ISO 4217 code to amount): a customer
    /// in a currency not listed cannot take the add-on.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub currencies: IndexMap<String, Decimal>,
}

/// How a plan treats an add-on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AddonTerms {
    /// Units included in the plan at no charge.
    #[serde(default)]
    pub included: Decimal,
}

/// A one-time purchase (a pack, a template bundle).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Product {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub amount: Decimal,
    /// Entitlements a purchase grants, e.g. `download`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grants: Vec<String>,
    /// Where a valid download link redirects (`https://...`), for a product that grants
    /// `download`; without it, the link answers what was granted as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download_url: Option<String>,
    /// `amount` in other currencies than the catalog's: a customer in a currency not listed
    /// cannot buy the product.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub currencies: IndexMap<String, Decimal>,
}

/// A discount on a customer's invoices.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Coupon {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub discount: Discount,
    #[serde(default)]
    pub duration: CouponDuration,
    /// An `amount_off` in other currencies than the catalog's. A percentage needs none; an
    /// amount-off coupon cannot be applied to a customer in a currency not listed.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub currencies: IndexMap<String, Decimal>,
}

/// What a coupon takes off an invoice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Discount {
    /// A percentage of the invoice total, 0 to 100 (Apex referrals: 20, and 100 for a free month).
    PercentOff(Decimal),
    /// A fixed amount, never taking the invoice below zero.
    AmountOff(Decimal),
}

/// For how many invoices a coupon applies, counted from the first invoice it is applied to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CouponDuration {
    /// The next invoice only.
    #[default]
    Once,
    /// The next `n` invoices (Apex: the referred customer's first 3).
    Invoices(u32),
    Forever,
}

/// A referral program: the coupons given when one customer brings another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReferralProgram {
    /// Coupon applied to the referred customer when it signs up with a referral.
    pub referred: String,
    /// Coupon granted to the referrer, once for each referred customer who becomes paying.
    pub referrer: String,
}

/// Operator policies the engine needs as numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policies {
    /// Days before a trial ends when the customer is reminded (Apex: 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trial_reminder_days: Option<u32>,
    /// How long a signed download link stays valid (Levqor: 24h).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download_link_ttl: Option<WindowLength>,
    /// Days after payment within which a full refund is granted as a credit note (QLP: 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_window_days: Option<u32>,
    /// What happens when an automatic payment fails (docs/PAYMENTS.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dunning: Option<Dunning>,
}

/// Dunning: the retries of a failed automatic payment, then what happens to the customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dunning {
    /// Days after the first failure at which the payment is tried again, ascending (1, 3, 5).
    pub retry_after_days: Vec<u32>,
    /// What the last failed retry does.
    pub then: DunningEnd,
}

/// The end of a dunning that never got paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DunningEnd {
    /// The customer is suspended (its keys refused) until a payment succeeds.
    Suspend,
    /// The subscription is canceled at once.
    Cancel,
    /// The subscription stays past due; nothing else happens.
    Nothing,
}

impl Policies {
    /// Whether no policy is set (nothing to store).
    pub fn is_empty(&self) -> bool {
        *self == Policies::default()
    }
}

impl Catalog {
    /// The plans that upgrade hints may offer, cheapest base first.
    ///
    /// "Cheapest" compares the monthly equivalent of the base fee; ties keep the file's order, so
    /// tiers of equal base price (usage-priced tiers) are offered in the order the operator wrote.
    /// Plans with `upgrade_target: false` (e.g. pay-as-you-go) are left out.
    pub fn plans_cheapest_first(&self) -> Vec<(&str, &Plan)> {
        let mut plans: Vec<(usize, &str, &Plan)> = self
            .plans
            .iter()
            .filter(|(_, p)| p.upgrade_target)
            .enumerate()
            .map(|(i, (k, p))| (i, k.as_str(), p))
            .collect();
        plans.sort_by(|a, b| {
            a.2.monthly_base()
                .cmp(&b.2.monthly_base())
                .then(a.0.cmp(&b.0))
        });
        plans.into_iter().map(|(_, k, p)| (k, p)).collect()
    }
}

impl Plan {
    /// The base fee per month (a yearly fee divided by 12), zero when there is none.
    pub fn monthly_base(&self) -> Decimal {
        match &self.base {
            None => Decimal::ZERO,
            Some(b) => crate::period::Cadence::of(b).monthly(b.amount),
        }
    }

    /// The billing interval: the base fee's, or monthly when the plan has no base fee.
    pub fn interval(&self) -> Interval {
        self.base.as_ref().map_or(Interval::Month, |b| b.interval)
    }

    /// The length of the plan's billing periods: the base fee's interval times its `every`, or
    /// one month when the plan has no base fee.
    pub fn cadence(&self) -> crate::period::Cadence {
        self.base
            .as_ref()
            .map_or(crate::period::Cadence::MONTH, crate::period::Cadence::of)
    }

    /// Where the plan's periods start: as written, else `anniversary` for cadences of whole years
    /// and `calendar` for all others (what catalogs without the key always meant: calendar
    /// months, and years from the start).
    pub fn anchor(&self) -> Anchor {
        self.billing.unwrap_or(if self.cadence().is_whole_years() {
            Anchor::Anniversary
        } else {
            Anchor::Calendar
        })
    }
}

impl Catalog {
    /// Whether `plan` can be billed in `currency`: the catalog's own, or one of its `currencies`.
    pub fn plan_priced_in(&self, plan: &str, currency: Currency) -> bool {
        self.plans.get(plan).is_some_and(|p| {
            currency == self.currency || p.currencies.contains_key(currency.code())
        })
    }

    /// Whether add-on `addon` has an amount in `currency` (the catalog's, or its `currencies`).
    pub fn addon_priced_in(&self, addon: &str, currency: Currency) -> bool {
        self.addons.get(addon).is_some_and(|a| {
            currency == self.currency || a.currencies.contains_key(currency.code())
        })
    }

    /// Whether product `product` has an amount in `currency`.
    pub fn product_priced_in(&self, product: &str, currency: Currency) -> bool {
        self.products.get(product).is_some_and(|p| {
            currency == self.currency || p.currencies.contains_key(currency.code())
        })
    }

    /// Whether coupon `coupon` can discount an invoice in `currency`: a percentage always, an
    /// amount off in the catalog's currency or one of its `currencies`.
    pub fn coupon_priced_in(&self, coupon: &str, currency: Currency) -> bool {
        self.coupons.get(coupon).is_some_and(|c| {
            currency == self.currency
                || matches!(c.discount, Discount::PercentOff(_))
                || c.currencies.contains_key(currency.code())
        })
    }

    /// The catalog as a customer paying in `currency` is invoiced from it: the catalog itself in
    /// its own currency; in another, each plan, add-on, product and amount-off coupon priced in
    /// it with those amounts, and nothing that has no amount in it.
    pub fn in_currency(&self, currency: Currency) -> std::borrow::Cow<'_, Catalog> {
        if currency == self.currency {
            return std::borrow::Cow::Borrowed(self);
        }
        let code = currency.code();
        let mut view = self.clone();
        view.currency = currency;
        // Add-ons, products and amount-off coupons keep only those priced in the currency, at
        // that price; a percentage coupon is the same in every currency.
        view.addons = self
            .addons
            .iter()
            .filter_map(|(key, addon)| {
                let amount = *addon.currencies.get(code)?;
                Some((
                    key.clone(),
                    Addon {
                        amount,
                        ..addon.clone()
                    },
                ))
            })
            .collect();
        view.products = self
            .products
            .iter()
            .filter_map(|(key, product)| {
                let amount = *product.currencies.get(code)?;
                Some((
                    key.clone(),
                    Product {
                        amount,
                        ..product.clone()
                    },
                ))
            })
            .collect();
        view.coupons = self
            .coupons
            .iter()
            .filter_map(|(key, coupon)| {
                let discount = match coupon.discount {
                    Discount::PercentOff(p) => Discount::PercentOff(p),
                    Discount::AmountOff(_) => Discount::AmountOff(*coupon.currencies.get(code)?),
                };
                Some((
                    key.clone(),
                    Coupon {
                        discount,
                        ..coupon.clone()
                    },
                ))
            })
            .collect();
        let priced_addons = &view.addons;
        view.plans = self
            .plans
            .iter()
            .filter_map(|(key, plan)| {
                let priced = plan.currencies.get(currency.code())?;
                let mut plan = plan.clone();
                if let (Some(base), Some(amount)) = (plan.base.as_mut(), priced.base) {
                    base.amount = amount;
                }
                plan.setup_fee = priced.setup_fee;
                plan.minimum = priced.minimum;
                plan.prices = priced.prices.clone();
                plan.addons
                    .retain(|addon, _| priced_addons.contains_key(addon));
                Some((key.clone(), plan))
            })
            .collect();
        std::borrow::Cow::Owned(view)
    }
}
