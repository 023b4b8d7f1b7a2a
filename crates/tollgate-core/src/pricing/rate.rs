//! Rating: one meter's usage over one period, priced by one [`UsagePrice`].
//!
//! Rating is exact. Amounts stay `Decimal` with all their digits; rounding to minor units happens
//! once, later, when a line goes on an invoice. Every line says how it was computed, because the
//! customer reading it is the final test of a price: "decisions: 13 x 5.00 per started 1,000
//! (12,345 units)".

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::format::{percent, price as money, qty};
use super::{Group, MeterUsage, PricingError, checked_add, checked_div, checked_mul, checked_sub};
use crate::catalog::{
    AboveLastTier, Multiplier, PackageRounding, PercentTier, PriceModel, Tier, TransactionFees,
    UsagePrice,
};

/// One priced line of usage, before rounding.
///
/// Where the amount is a plain product, `quantity x unit_price == amount` exactly: for a package
/// price the quantity is the number of blocks and the unit price the block's price. Where it is
/// not (tiers with flat fees, a capped percentage) `unit_price` is `None` and the description
/// carries the arithmetic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RatedLine {
    pub meter: String,
    /// The dimension values this line prices (dimensional prices only; empty otherwise).
    #[serde(default, skip_serializing_if = "Group::is_empty")]
    pub group: Group,
    pub description: String,
    pub quantity: Decimal,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_price: Option<Decimal>,
    /// The exact amount, not yet rounded to minor units.
    pub amount: Decimal,
}

/// Prices `usage` of `price.meter` for one period.
///
/// `included` units are free and come off first; the model prices the rest. Non-dimensional
/// models give exactly one line (a `0.00` line when nothing is billable, so an invoice always
/// shows every priced meter); dimensional prices give one line per (dimension value, multiplier
/// value) group.
pub fn rate(price: &UsagePrice, usage: &MeterUsage) -> Result<Vec<RatedLine>, PricingError> {
    let included = price.included.unwrap_or(Decimal::ZERO);
    if included < Decimal::ZERO {
        return Err(invalid(price, "included units must not be negative"));
    }
    let label = price.description.as_deref().unwrap_or(&price.meter);
    let total = usage.total.max(Decimal::ZERO);
    let billable = checked_sub(total, included)?.max(Decimal::ZERO);
    let allowance = Allowance {
        total,
        included,
        billable,
    };
    let line = |description: String, quantity, unit_price, amount| RatedLine {
        meter: price.meter.clone(),
        group: Group::new(),
        description,
        quantity,
        unit_price,
        amount,
    };

    match &price.model {
        PriceModel::PerUnit { unit_amount } => {
            let amount = checked_mul(billable, *unit_amount)?;
            let description = format!(
                "{label}: {} x {}{}",
                qty(billable),
                money(*unit_amount),
                allowance.note(false)
            );
            Ok(vec![line(
                description,
                billable,
                Some(*unit_amount),
                amount,
            )])
        }
        PriceModel::Package {
            size,
            amount: block_price,
            rounding,
        } => {
            if *size <= Decimal::ZERO {
                return Err(invalid(price, "package size must be positive"));
            }
            let blocks = checked_div(billable, *size)?;
            let (blocks, started) = match rounding {
                PackageRounding::Up => (blocks.ceil(), "started"),
                PackageRounding::Down => (blocks.floor(), "full"),
            };
            let amount = checked_mul(blocks, *block_price)?;
            let description = format!(
                "{label}: {} x {} per {started} {}{}",
                qty(blocks),
                money(*block_price),
                qty(*size),
                allowance.note(true)
            );
            Ok(vec![line(description, blocks, Some(*block_price), amount)])
        }
        PriceModel::Graduated {
            tiers,
            flat_at_zero,
            above_last_tier,
        } => {
            let rules = TierRules {
                flat_at_zero: *flat_at_zero,
                above_last_tier: *above_last_tier,
            };
            let (amount, unit_price, explained) = graduated(price, tiers, rules, billable)?;
            let description = format!("{label}: {explained}{}", allowance.note(false));
            Ok(vec![line(description, billable, unit_price, amount)])
        }
        PriceModel::Volume {
            tiers,
            flat_at_zero,
            above_last_tier,
        } => {
            let rules = TierRules {
                flat_at_zero: *flat_at_zero,
                above_last_tier: *above_last_tier,
            };
            let (amount, unit_price, explained) = volume(price, tiers, rules, billable)?;
            let description = format!("{label}: {explained}{}", allowance.note(false));
            Ok(vec![line(description, billable, unit_price, amount)])
        }
        PriceModel::Percentage {
            percent: pct,
            floor,
            cap,
            per_transaction,
        } => {
            let rate = checked_div(*pct, Decimal::ONE_HUNDRED)?;
            let (quantity, share, mut explained) = if per_transaction.is_empty() {
                let share = checked_mul(billable, rate)?;
                let explained = format!(
                    "{} of {} = {}",
                    percent(*pct),
                    money(billable),
                    money(share)
                );
                (billable, share, explained)
            } else {
                if !included.is_zero() {
                    return Err(invalid(
                        price,
                        "a per-transaction price gives free value with `free_amount`, not `included`",
                    ));
                }
                let one = [total];
                let values: &[Decimal] = match &usage.transactions {
                    Some(values) => values.as_slice(),
                    None if total.is_zero() => &[],
                    None => &one,
                };
                let fees = transaction_fees(*pct, rate, per_transaction, values)?;
                (fees.charged_value, fees.amount, fees.explained)
            };
            let mut amount = share;
            if let Some(floor) = floor.filter(|f| amount < *f) {
                amount = floor;
                explained.push_str(&format!(", raised to the minimum of {}", money(floor)));
            }
            if let Some(cap) = cap.filter(|c| amount > *c) {
                amount = cap;
                explained.push_str(&format!(", capped at {}", money(cap)));
            }
            let unit_price = (amount == share && per_transaction.is_empty()).then_some(rate);
            let description = format!("{label}: {explained}{}", allowance.note(false));
            Ok(vec![line(description, quantity, unit_price, amount)])
        }
        PriceModel::GraduatedPercentage { tiers } => {
            let (amount, explained) = graduated_percentage(price, tiers, billable)?;
            let description = format!("{label}: {explained}{}", allowance.note(false));
            Ok(vec![line(description, billable, None, amount)])
        }
        PriceModel::Dimensional {
            dimension,
            rates,
            multiplier,
        } => dimensional(
            price,
            label,
            dimension,
            rates,
            multiplier.as_ref(),
            usage,
            included,
        ),
    }
}

/// A percentage priced per transaction: what it charged and how.
struct TransactionCharge {
    /// The value the percentage was charged on (free value left out).
    charged_value: Decimal,
    amount: Decimal,
    explained: String,
}

/// Prices each transaction of the period in time order (see [`TransactionFees`]): free ones
/// first, while both allowances that are set have room; then `rate` of the charged value plus
/// the fixed fee, bounded per transaction by `min` and `max`.
fn transaction_fees(
    pct: Decimal,
    rate: Decimal,
    fees: &TransactionFees,
    values: &[Decimal],
) -> Result<TransactionCharge, PricingError> {
    let fixed = fees.fixed_fee.unwrap_or(Decimal::ZERO);
    let mut free_units = fees.free_units;
    let mut free_amount = fees.free_amount;
    let mut free = fees.free_units.is_some() || fees.free_amount.is_some();
    let (mut free_count, mut free_value) = (0u64, Decimal::ZERO);
    let (mut charged_count, mut charged_value) = (0u64, Decimal::ZERO);
    let (mut raised, mut capped) = (0u64, 0u64);
    let mut amount = Decimal::ZERO;
    for value in values {
        let value = (*value).max(Decimal::ZERO);
        if free_units == Some(0) || free_amount.is_some_and(|left| left.is_zero()) {
            free = false;
        }
        let mut charged = value;
        if free {
            free_units = free_units.map(|n| n.saturating_sub(1));
            let covered = free_amount.map_or(value, |left| left.min(value));
            if let Some(left) = free_amount {
                free_amount = Some(checked_sub(left, covered)?);
            }
            charged = checked_sub(value, covered)?;
            free_value = checked_add(free_value, covered)?;
            if charged.is_zero() {
                free_count += 1;
                continue;
            }
        }
        charged_count += 1;
        charged_value = checked_add(charged_value, charged)?;
        let mut fee = checked_add(checked_mul(charged, rate)?, fixed)?;
        if let Some(min) = fees.min.filter(|m| fee < *m) {
            fee = min;
            raised += 1;
        }
        if let Some(max) = fees.max.filter(|m| fee > *m) {
            fee = max;
            capped += 1;
        }
        amount = checked_add(amount, fee)?;
    }
    let count = |n: u64| {
        if n == 1 {
            "1 transaction".to_owned()
        } else {
            format!("{} transactions", qty(Decimal::from(n)))
        }
    };
    let mut explained = count(charged_count);
    if free_count > 0 || !free_value.is_zero() {
        explained.push_str(&format!(
            " ({} free, {} of value free)",
            qty(Decimal::from(free_count)),
            money(free_value)
        ));
    }
    explained.push_str(&format!(": {} of {}", percent(pct), money(charged_value)));
    if !fixed.is_zero() {
        explained.push_str(&format!(
            " + {} x {} fixed",
            qty(Decimal::from(charged_count)),
            money(fixed)
        ));
    }
    if let Some(min) = fees.min.filter(|_| raised > 0) {
        explained.push_str(&format!(
            ", {} raised to the per-transaction minimum of {}",
            qty(Decimal::from(raised)),
            money(min)
        ));
    }
    if let Some(max) = fees.max.filter(|_| capped > 0) {
        explained.push_str(&format!(
            ", {} capped at the per-transaction maximum of {}",
            qty(Decimal::from(capped)),
            money(max)
        ));
    }
    explained.push_str(&format!(" = {}", money(amount)));
    Ok(TransactionCharge {
        charged_value,
        amount,
        explained,
    })
}

/// Each tier's part of the value at the tier's percent, plus the tier's flat amount once when
/// the value enters it (no value enters no tier).
fn graduated_percentage(
    price: &UsagePrice,
    tiers: &[PercentTier],
    value: Decimal,
) -> Result<(Decimal, String), PricingError> {
    if tiers.is_empty() {
        return Err(invalid(price, "a tiered price needs at least one tier"));
    }
    let mut lower = Decimal::ZERO;
    for (i, tier) in tiers.iter().enumerate() {
        match tier.up_to {
            None if i + 1 < tiers.len() => {
                return Err(invalid(price, "only the last tier may be unbounded"));
            }
            Some(_) if i + 1 == tiers.len() => {
                return Err(invalid(price, "the last tier must be unbounded"));
            }
            Some(up) if up <= lower => {
                return Err(invalid(price, "tier bounds must be positive and ascending"));
            }
            Some(up) => lower = up,
            None => {}
        }
    }
    if value.is_zero() {
        return Ok((Decimal::ZERO, "no billable value".to_owned()));
    }
    let mut lower = Decimal::ZERO;
    let mut amount = Decimal::ZERO;
    let mut parts = Vec::new();
    for tier in tiers {
        if value <= lower {
            break;
        }
        let upper = tier.up_to.map_or(value, |up| up.min(value));
        let part = checked_sub(upper, lower)?;
        let share = checked_mul(part, checked_div(tier.percent, Decimal::ONE_HUNDRED)?)?;
        amount = checked_add(checked_add(amount, share)?, tier.flat_amount)?;
        let mut text = format!(
            "{} of {} ({})",
            percent(tier.percent),
            money(part),
            range(lower, tier.up_to)
        );
        if !tier.flat_amount.is_zero() {
            text.push_str(&format!(" + {} flat", money(tier.flat_amount)));
        }
        parts.push(text);
        lower = tier.up_to.unwrap_or(value);
    }
    Ok((amount, format!("{} = {}", parts.join(" + "), money(amount))))
}

/// What the allowance did, for the description.
struct Allowance {
    total: Decimal,
    included: Decimal,
    billable: Decimal,
}

impl Allowance {
    /// ` (12,500 units, 10,000 included: 2,500 over)`; ` (12,345 units)` only when `always`.
    fn note(&self, always: bool) -> String {
        if self.included > Decimal::ZERO {
            format!(
                " ({} units, {} included: {} over)",
                qty(self.total),
                qty(self.included),
                qty(self.billable)
            )
        } else if always {
            format!(" ({} units)", qty(self.total))
        } else {
            String::new()
        }
    }
}

/// The options of a tiered price beside its tiers.
#[derive(Debug, Clone, Copy)]
struct TierRules {
    flat_at_zero: bool,
    above_last_tier: Option<AboveLastTier>,
}

/// Zero billable usage: nothing, or the first tier's flat amount when the price says so.
fn at_zero(tiers: &[Tier], rules: TierRules) -> (Decimal, Option<Decimal>, String) {
    match tiers.first().filter(|_| rules.flat_at_zero) {
        Some(first) if !first.flat_amount.is_zero() => (
            first.flat_amount,
            None,
            format!(
                "no billable usage; the first tier's {} flat fee = {}",
                money(first.flat_amount),
                money(first.flat_amount)
            ),
        ),
        _ => (Decimal::ZERO, None, "no billable usage".to_owned()),
    }
}

/// Each tier's units at that tier's unit price, plus the tier's flat amount when usage reaches it.
///
/// Tiers are bounded by inclusive `up_to` values over the billable quantity (after the
/// allowance). No usage reaches no tier, so no flat amount is charged for zero usage, unless the
/// price says `flat_at_zero` (the first tier's flat amount is then charged). Units above a
/// bounded last tier follow `above_last_tier`.
fn graduated(
    price: &UsagePrice,
    tiers: &[Tier],
    rules: TierRules,
    billable: Decimal,
) -> Result<(Decimal, Option<Decimal>, String), PricingError> {
    check_tiers(price, tiers, rules)?;
    if billable.is_zero() {
        return Ok(at_zero(tiers, rules));
    }
    let mut lower = Decimal::ZERO;
    let mut amount = Decimal::ZERO;
    let mut parts = Vec::new();
    let mut unit_prices = Vec::new();
    for tier in tiers {
        if billable <= lower {
            break;
        }
        let upper = tier.up_to.map_or(billable, |up| up.min(billable));
        let units = checked_sub(upper, lower)?;
        let tier_amount = checked_add(checked_mul(units, tier.unit_amount)?, tier.flat_amount)?;
        amount = checked_add(amount, tier_amount)?;
        let mut part = format!(
            "{} x {} ({})",
            qty(units),
            money(tier.unit_amount),
            range(lower, tier.up_to)
        );
        if !tier.flat_amount.is_zero() {
            part.push_str(&format!(" + {} flat", money(tier.flat_amount)));
        }
        parts.push(part);
        unit_prices.push((tier.unit_amount, tier.flat_amount));
        lower = tier.up_to.unwrap_or(billable);
    }
    if billable > lower {
        let above = checked_sub(billable, lower)?;
        match (rules.above_last_tier, tiers.last()) {
            (Some(AboveLastTier::LastRate), Some(last)) => {
                amount = checked_add(amount, checked_mul(above, last.unit_amount)?)?;
                parts.push(format!(
                    "{} x {} (over {}, at the last tier's rate)",
                    qty(above),
                    money(last.unit_amount),
                    qty(lower)
                ));
                unit_prices.push((last.unit_amount, Decimal::ZERO));
            }
            (Some(AboveLastTier::Free), _) => {
                parts.push(format!("{} free (over {})", qty(above), qty(lower)));
                unit_prices.push((Decimal::ZERO, Decimal::ZERO));
            }
            _ => {
                return Err(invalid(
                    price,
                    "usage exceeds the last tier; make the last tier unbounded",
                ));
            }
        }
    }
    let unit_price = match unit_prices.as_slice() {
        [(unit, flat)] if flat.is_zero() => Some(*unit),
        _ => None,
    };
    Ok((
        amount,
        unit_price,
        format!("{} = {}", parts.join(" + "), money(amount)),
    ))
}

/// All billable units at the unit price of the tier the billable quantity falls in, plus that
/// tier's flat amount. Zero usage is not charged (as with graduated tiers, so both agree whenever
/// usage stays in the first tier), unless the price says `flat_at_zero`. Above a bounded last
/// tier, `last_rate` prices every unit at the last tier; `free` charges what the last bound would.
fn volume(
    price: &UsagePrice,
    tiers: &[Tier],
    rules: TierRules,
    billable: Decimal,
) -> Result<(Decimal, Option<Decimal>, String), PricingError> {
    check_tiers(price, tiers, rules)?;
    if billable.is_zero() {
        return Ok(at_zero(tiers, rules));
    }
    let last_bound = tiers.last().and_then(|t| t.up_to);
    let (charged, free_above) = match (last_bound, rules.above_last_tier) {
        (Some(bound), Some(AboveLastTier::Free)) if billable > bound => {
            (bound, Some(checked_sub(billable, bound)?))
        }
        _ => (billable, None),
    };
    let billable = charged;
    let mut lower = Decimal::ZERO;
    for (i, tier) in tiers.iter().enumerate() {
        let beyond_last =
            i + 1 == tiers.len() && rules.above_last_tier == Some(AboveLastTier::LastRate);
        if beyond_last || tier.up_to.is_none_or(|up| billable <= up) {
            let amount = checked_add(checked_mul(billable, tier.unit_amount)?, tier.flat_amount)?;
            let mut explained = format!(
                "{} x {} (all units at the tier {})",
                qty(billable),
                money(tier.unit_amount),
                range(lower, tier.up_to)
            );
            if !tier.flat_amount.is_zero() {
                explained.push_str(&format!(" + {} flat", money(tier.flat_amount)));
            }
            if let Some(free) = free_above {
                explained.push_str(&format!(", {} more free above the last tier", qty(free)));
            }
            explained.push_str(&format!(" = {}", money(amount)));
            let unit_price =
                (tier.flat_amount.is_zero() && free_above.is_none()).then_some(tier.unit_amount);
            return Ok((amount, unit_price, explained));
        }
        lower = tier.up_to.unwrap_or(lower);
    }
    Err(invalid(
        price,
        "usage exceeds the last tier; make the last tier unbounded",
    ))
}

/// Tiers must be non-empty, ascending, and only the last may be unbounded; a rule for units above
/// the last tier needs a bounded last tier (without one, usage above it is an error).
fn check_tiers(price: &UsagePrice, tiers: &[Tier], rules: TierRules) -> Result<(), PricingError> {
    let bounded_last = tiers.last().is_some_and(|t| t.up_to.is_some());
    if rules.above_last_tier.is_some() && !bounded_last {
        return Err(invalid(
            price,
            "`above_last_tier` needs a bounded last tier",
        ));
    }
    if tiers.is_empty() {
        return Err(invalid(price, "a tiered price needs at least one tier"));
    }
    let mut lower = Decimal::ZERO;
    for (i, tier) in tiers.iter().enumerate() {
        match tier.up_to {
            None if i + 1 < tiers.len() => {
                return Err(invalid(price, "only the last tier may be unbounded"));
            }
            Some(up) if up <= lower => {
                return Err(invalid(price, "tier bounds must be positive and ascending"));
            }
            Some(up) => lower = up,
            None => {}
        }
    }
    Ok(())
}

/// `up to 1,000`, `over 1,000 up to 10,000`, `over 10,000`: honest for fractional units too.
fn range(lower: Decimal, upper: Option<Decimal>) -> String {
    match (lower.is_zero(), upper) {
        (_, None) if lower.is_zero() => "all units".to_owned(),
        (_, None) => format!("over {}", qty(lower)),
        (true, Some(up)) => format!("up to {}", qty(up)),
        (false, Some(up)) => format!("over {} up to {}", qty(lower), qty(up)),
    }
}

/// A unit price per value of one dimension, times a factor per value of another: one line per
/// (dimension value, multiplier value).
///
/// The allowance goes to the most expensive units first, so a customer with "100 generations
/// included" never pays for an expensive generation while a cheap one was free. Ties keep the
/// catalog's order. A group without a rate is an error rather than a free or guessed price.
fn dimensional(
    price: &UsagePrice,
    label: &str,
    dimension: &str,
    rates: &indexmap::IndexMap<String, Decimal>,
    multiplier: Option<&Multiplier>,
    usage: &MeterUsage,
    included: Decimal,
) -> Result<Vec<RatedLine>, PricingError> {
    let unpriced = |value: &str| PricingError::UnpricedDimension {
        meter: price.meter.clone(),
        dimension: dimension.to_owned(),
        value: value.to_owned(),
    };
    if usage.groups.is_empty() && usage.total > Decimal::ZERO {
        return Err(unpriced(""));
    }
    // (rate index in catalog order, multiplier value) -> units
    let mut buckets: BTreeMap<(usize, String), Decimal> = BTreeMap::new();
    for g in &usage.groups {
        let value = g.group.get(dimension).map(String::as_str).unwrap_or("");
        let index = rates.get_index_of(value).ok_or_else(|| unpriced(value))?;
        let by = multiplier
            .map(|m| g.group.get(&m.dimension).cloned().unwrap_or_default())
            .unwrap_or_default();
        let units = buckets.entry((index, by)).or_default();
        *units = checked_add(*units, g.value)?;
    }

    struct Bucket {
        group: Group,
        /// `tier T3, model gpt-4`: the priced dimension first, then the multiplier's.
        who: String,
        units: Decimal,
        rate: Decimal,
        factor: Decimal,
        unit_price: Decimal,
        free: Decimal,
    }
    let mut lines = Vec::with_capacity(buckets.len());
    for ((index, by), units) in buckets {
        let Some((value, rate)) = rates.get_index(index) else {
            continue; // indices come from this map: never taken
        };
        let mut group = Group::from([(dimension.to_owned(), value.clone())]);
        let mut who = format!("{dimension} {value}");
        let factor = match multiplier {
            Some(m) => {
                group.insert(m.dimension.clone(), by.clone());
                who.push_str(&format!(", {} {by}", m.dimension));
                m.values.get(&by).copied().unwrap_or(Decimal::ONE)
            }
            None => Decimal::ONE,
        };
        let unit_price = checked_mul(*rate, factor)?;
        lines.push(Bucket {
            group,
            who,
            units: units.max(Decimal::ZERO),
            rate: *rate,
            factor,
            unit_price,
            free: Decimal::ZERO,
        });
    }

    let mut order: Vec<usize> = (0..lines.len()).collect();
    order.sort_by(|a, b| {
        lines[*b]
            .unit_price
            .cmp(&lines[*a].unit_price)
            .then(a.cmp(b))
    });
    let mut left = included;
    for i in order {
        let free = left.min(lines[i].units);
        lines[i].free = free;
        left = checked_sub(left, free)?;
    }

    if lines.is_empty() {
        let description = format!("{label}: no usage");
        return Ok(vec![RatedLine {
            meter: price.meter.clone(),
            group: Group::new(),
            description,
            quantity: Decimal::ZERO,
            unit_price: None,
            amount: Decimal::ZERO,
        }]);
    }
    lines
        .into_iter()
        .map(|b| {
            let billable = checked_sub(b.units, b.free)?;
            let amount = checked_mul(billable, b.unit_price)?;
            let mut description =
                format!("{label}, {}: {} x {}", b.who, qty(billable), money(b.rate));
            if b.factor != Decimal::ONE {
                description.push_str(&format!(" x {}", qty(b.factor)));
            }
            description.push_str(&format!(" = {}", money(amount)));
            if !b.free.is_zero() {
                description.push_str(&format!(
                    " ({} units, {} included)",
                    qty(b.units),
                    qty(b.free)
                ));
            }
            Ok(RatedLine {
                meter: price.meter.clone(),
                group: b.group,
                description,
                quantity: billable,
                unit_price: Some(b.unit_price),
                amount,
            })
        })
        .collect()
}

fn invalid(price: &UsagePrice, reason: &str) -> PricingError {
    PricingError::InvalidPrice {
        meter: price.meter.clone(),
        reason: reason.to_owned(),
    }
}
