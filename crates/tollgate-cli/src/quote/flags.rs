//! `--usage METER=QTY`, `--usage 'METER[dim=value,...]=QTY'`, `--quantity ADDON=N` and
//! `--period YYYY-MM`, checked against the catalog so a typo is an error that lists what the
//! catalog has, never a meter silently priced at zero.

use std::collections::BTreeMap;
use std::str::FromStr;

use anyhow::{Context, bail};
use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use rust_decimal::Decimal;
use tollgate_core::catalog::Catalog;
use tollgate_core::pricing::{BillingPeriod, Group, MeterUsage};

/// One `--usage` flag: a meter, an optional group, a quantity.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageFlag {
    pub meter: String,
    pub group: Group,
    pub quantity: Decimal,
}

impl FromStr for UsageFlag {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (head, quantity) = s
            .rsplit_once('=')
            .ok_or_else(|| format!("{s:?} is not METER=QUANTITY"))?;
        let (meter, group) = match head.split_once('[') {
            None => (head, Group::new()),
            Some((meter, rest)) => {
                let inner = rest
                    .strip_suffix(']')
                    .ok_or_else(|| format!("{s:?}: a group is written METER[dim=value,...]"))?;
                let mut group = Group::new();
                for pair in inner.split(',').filter(|p| !p.trim().is_empty()) {
                    let (dim, value) = pair
                        .split_once('=')
                        .ok_or_else(|| format!("{s:?}: {pair:?} is not dim=value"))?;
                    group.insert(dim.trim().to_owned(), value.trim().to_owned());
                }
                (meter, group)
            }
        };
        if meter.trim().is_empty() {
            return Err(format!("{s:?} names no meter"));
        }
        Ok(UsageFlag {
            meter: meter.trim().to_owned(),
            group,
            quantity: quantity_of(quantity)?,
        })
    }
}

/// One `--quantity` flag: an add-on and how many.
#[derive(Debug, Clone, PartialEq)]
pub struct AddonFlag {
    pub addon: String,
    pub quantity: Decimal,
}

impl FromStr for AddonFlag {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (addon, quantity) = s
            .split_once('=')
            .ok_or_else(|| format!("{s:?} is not ADDON=QUANTITY"))?;
        if addon.trim().is_empty() {
            return Err(format!("{s:?} names no add-on"));
        }
        Ok(AddonFlag {
            addon: addon.trim().to_owned(),
            quantity: quantity_of(quantity)?,
        })
    }
}

/// An exact, non-negative decimal; `1_250_000` and `1,250,000` read as one and a quarter million
/// because that is how people copy numbers from a scenario or an invoice.
fn quantity_of(text: &str) -> Result<Decimal, String> {
    let plain: String = text
        .trim()
        .chars()
        .filter(|c| *c != '_' && *c != ',')
        .collect();
    let value = Decimal::from_str(&plain)
        .or_else(|_| Decimal::from_scientific(&plain))
        .map_err(|_| format!("{text:?} is not a number"))?;
    if value.is_sign_negative() && !value.is_zero() {
        return Err(format!("{text:?} is negative"));
    }
    Ok(value)
}

/// `"a, b, c"`: what to choose from, for an error message.
fn names<'a>(keys: impl Iterator<Item = &'a String>) -> String {
    let all: Vec<&str> = keys.map(String::as_str).collect();
    if all.is_empty() {
        "none".into()
    } else {
        all.join(", ")
    }
}

/// Checks that the plan exists.
pub fn check_plan(catalog: &Catalog, plan: &str) -> anyhow::Result<()> {
    if !catalog.plans.contains_key(plan) {
        bail!(
            "unknown plan {plan:?}; the catalog's plans: {}",
            names(catalog.plans.keys())
        );
    }
    Ok(())
}

/// The `--usage` flags as usage per meter. Flags of the same meter and group add up; a meter
/// given here replaces what `--events` counted for it.
pub fn usage(
    catalog: &Catalog,
    flags: &[UsageFlag],
) -> anyhow::Result<BTreeMap<String, MeterUsage>> {
    let mut by_meter: BTreeMap<&str, BTreeMap<&Group, Decimal>> = BTreeMap::new();
    for flag in flags {
        let Some(meter) = catalog.meters.get(&flag.meter) else {
            bail!(
                "unknown meter {:?}; the catalog's meters: {}",
                flag.meter,
                names(catalog.meters.keys())
            );
        };
        if let Some(dim) = flag.group.keys().find(|d| !meter.group_by.contains(d)) {
            bail!(
                "meter {:?} is not grouped by {dim:?} (its group_by: {})",
                flag.meter,
                names(meter.group_by.iter())
            );
        }
        let slot = by_meter
            .entry(&flag.meter)
            .or_default()
            .entry(&flag.group)
            .or_default();
        *slot = slot
            .checked_add(flag.quantity)
            .context("usage out of range")?;
    }
    let mut usage = BTreeMap::new();
    for (meter, groups) in by_meter {
        let value = if groups.keys().all(|g| g.is_empty()) {
            MeterUsage::total(groups.values().copied().sum())
        } else {
            MeterUsage::grouped(groups.into_iter().map(|(g, v)| (g.clone(), v)))
                .with_context(|| format!("meter {meter}"))?
        };
        usage.insert(meter.to_owned(), value);
    }
    Ok(usage)
}

/// The `--quantity` flags as add-on quantities; the same add-on twice adds up.
pub fn addons(catalog: &Catalog, flags: &[AddonFlag]) -> anyhow::Result<BTreeMap<String, Decimal>> {
    let mut out: BTreeMap<String, Decimal> = BTreeMap::new();
    for flag in flags {
        if !catalog.addons.contains_key(&flag.addon) {
            bail!(
                "unknown add-on {:?}; the catalog's add-ons: {}",
                flag.addon,
                names(catalog.addons.keys())
            );
        }
        let slot = out.entry(flag.addon.clone()).or_default();
        *slot = slot
            .checked_add(flag.quantity)
            .context("quantity out of range")?;
    }
    Ok(out)
}

/// A calendar month in UTC from `YYYY-MM`.
pub fn month(text: &str) -> anyhow::Result<BillingPeriod> {
    let first: Date = format!("{}-01", text.trim())
        .parse()
        .with_context(|| format!("--period {text:?} is not a month like 2026-11"))?;
    month_from(first)
}

/// The calendar month in UTC containing `at`.
pub fn month_of(at: Timestamp) -> anyhow::Result<BillingPeriod> {
    month_from(at.to_zoned(TimeZone::UTC).date().first_of_month())
}

fn month_from(first: Date) -> anyhow::Result<BillingPeriod> {
    let next = first
        .checked_add(jiff::Span::new().months(1))
        .context("month out of range")?;
    let at = |d: Date| -> anyhow::Result<Timestamp> {
        Ok(d.to_zoned(TimeZone::UTC)
            .context("month out of range")?
            .timestamp())
    };
    Ok(BillingPeriod::new(at(first)?, at(next)?)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_flags_read_plain_and_grouped_quantities() {
        let f: UsageFlag = "requests=1,250,000".parse().unwrap();
        assert_eq!(
            (f.meter.as_str(), f.quantity),
            ("requests", Decimal::from(1_250_000))
        );
        assert!(f.group.is_empty());
        let g: UsageFlag = "generations[tier=T3, model=gpt-4]=2".parse().unwrap();
        assert_eq!(g.meter, "generations");
        assert_eq!(g.group["tier"], "T3");
        assert_eq!(g.group["model"], "gpt-4");
        assert_eq!(g.quantity, Decimal::from(2));
        for bad in [
            "requests",
            "=3",
            "requests=-1",
            "requests=lots",
            "g[tier]=1",
            "g[tier=T0=1",
        ] {
            assert!(bad.parse::<UsageFlag>().is_err(), "{bad}");
        }
        assert_eq!(
            "seat=3".parse::<AddonFlag>().unwrap().quantity,
            Decimal::from(3)
        );
    }

    #[test]
    fn months_are_calendar_months_in_utc() {
        let p = month("2026-11").unwrap();
        assert_eq!(p.start.to_string(), "2026-11-01T00:00:00Z");
        assert_eq!(p.end.to_string(), "2026-12-01T00:00:00Z");
        let d = month_of("2026-12-31T23:59:59Z".parse().unwrap()).unwrap();
        assert_eq!(d.end.to_string(), "2027-01-01T00:00:00Z");
        assert!(month("November").is_err());
        assert!(month("2026-13").is_err());
    }

    #[test]
    fn unknown_names_list_what_the_catalog_has() {
        let catalog = tollgate_core::catalog::parse_yaml(
            "currency: USD\nmeters:\n  runs: { event: run, aggregation: count }\nplans:\n  free: {}\n",
        )
        .unwrap();
        let err = check_plan(&catalog, "pro").unwrap_err().to_string();
        assert_eq!(err, "unknown plan \"pro\"; the catalog's plans: free");
        let flag: UsageFlag = "walks=1".parse().unwrap();
        let err = usage(&catalog, &[flag]).unwrap_err().to_string();
        assert_eq!(err, "unknown meter \"walks\"; the catalog's meters: runs");
        let flag: AddonFlag = "seat=1".parse().unwrap();
        let err = addons(&catalog, &[flag]).unwrap_err().to_string();
        assert_eq!(err, "unknown add-on \"seat\"; the catalog's add-ons: none");
    }
}
