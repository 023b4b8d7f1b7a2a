//! MRR by month with its movements, for one workspace.
//!
//! Each subscription is a span of recurring revenue, split where its plan changed (its domain
//! events say which plan and catalog version it was on from when): each plan's base price
//! normalised to a month, from the end of its trial (or its start) until it
//! ends (`ends_at`, else `canceled_at`, for canceled and expired ones; a scheduled cancellation's
//! `ends_at` for live ones). A subscription with an invoice credit-noted in full (refunded) stops
//! counting when the notes reach the invoice's total (QLP case 5). Paused subscriptions do not
//! count. Plans without a base price (pay as you go) bring no MRR.
//!
//! Each subscription counts in its customer's currency (its billing profile's, else the
//! catalog's), at the plan's price in that currency: one report per currency, never added
//! together.

use std::collections::{BTreeMap, HashMap};

use jiff::Timestamp;
use tollgate_core::analytics::{self, MrrMonth, Span};
use tollgate_core::catalog::Catalog;
use tollgate_core::ids::{CustomerId, WorkspaceId};
use tollgate_core::money::Currency;
use tollgate_store::SubscriptionStatus;
use tollgate_store::outbox::OutboxFilter;

use crate::engine::Engine;
use crate::error::{AppResult, Error};

pub struct MrrQuery {
    /// `YYYY-MM`.
    pub from: String,
    pub to: String,
}

pub struct MrrReport {
    /// The catalog's currency, and the months in it (as before several currencies).
    pub currency: Currency,
    pub months: Vec<MrrMonth>,
    /// Every currency with recurring revenue, the catalog's first, each with its own months.
    pub currencies: Vec<(Currency, Vec<MrrMonth>)>,
}

fn analytics_error(e: analytics::AnalyticsError) -> Error {
    Error::invalid(e.code(), e.to_string())
}

/// The report; `from` and `to` are months (`YYYY-MM`), at most 120 of them.
pub async fn mrr(engine: &Engine, workspace: &str, query: MrrQuery) -> AppResult<MrrReport> {
    let from = analytics::parse_month(&query.from).map_err(analytics_error)?;
    let to = analytics::parse_month(&query.to).map_err(analytics_error)?;
    let (currency, by_currency) = spans(engine, workspace).await?;
    let mut currencies = Vec::with_capacity(by_currency.len().max(1));
    let mut months = Vec::new();
    for (code, spans) in by_currency {
        let m = analytics::mrr_by_month(&spans, from, to).map_err(analytics_error)?;
        if code == currency {
            months = m.clone();
            currencies.insert(0, (code, m));
        } else {
            currencies.push((code, m));
        }
    }
    if currencies.first().is_none_or(|(c, _)| *c != currency) {
        months = analytics::mrr_by_month(&[], from, to).map_err(analytics_error)?;
        currencies.insert(0, (currency, months.clone()));
    }
    Ok(MrrReport {
        currency,
        months,
        currencies,
    })
}

/// The workspace's spans of recurring revenue per currency (each subscription in its
/// customer's), and the currency of its latest catalog.
pub async fn spans(
    engine: &Engine,
    workspace: &str,
) -> AppResult<(Currency, BTreeMap<Currency, Vec<Span>>)> {
    let store = engine.store();
    let ws = WorkspaceId::from(workspace);
    let Some(latest) = store.latest_catalog(&ws).await? else {
        return Ok((Currency::USD, BTreeMap::new()));
    };
    let latest = parse(&latest.catalog)?;
    let mut catalogs: HashMap<i64, Option<Catalog>> = HashMap::new();
    let mut customer_currency: HashMap<String, Currency> = HashMap::new();
    let subscriptions = store.list_workspace_subscriptions(&ws).await?;
    let refunds = refunds(
        engine,
        &ws,
        subscriptions.iter().map(|s| s.customer.as_str()),
    )
    .await?;
    let history = plan_history(engine, &ws).await?;
    let mut spans: BTreeMap<Currency, Vec<Span>> = BTreeMap::new();
    for sub in subscriptions {
        if sub.status == SubscriptionStatus::Paused {
            continue;
        }
        let currency = match customer_currency.get(&sub.customer) {
            Some(c) => *c,
            None => {
                let profile = crate::billing::profiles::customer_profile(
                    store.as_ref(),
                    workspace,
                    &sub.customer,
                )
                .await?;
                let c = profile.currency(&latest)?;
                customer_currency.insert(sub.customer.clone(), c);
                c
            }
        };
        let from = sub
            .trial_end
            .map_or(sub.started_at, |t| t.max(sub.started_at));
        let mut to = match sub.status {
            SubscriptionStatus::Canceled | SubscriptionStatus::Expired => {
                Some(sub.ends_at.or(sub.canceled_at).unwrap_or(sub.started_at))
            }
            _ => sub.ends_at,
        };
        if let Some(refunded) = refunds.get(&sub.id) {
            to = Some(to.map_or(*refunded, |t| t.min(*refunded)));
        }
        // The plans it was on, oldest first; without recorded history, its current plan.
        let current = [(sub.started_at, sub.plan.clone(), sub.catalog_version)];
        let steps = match history.get(&sub.id) {
            Some(steps) if !steps.is_empty() => steps.as_slice(),
            _ => &current[..],
        };
        let mut amounts = Vec::with_capacity(steps.len());
        for (at, plan, version) in steps {
            let amount = monthly(engine, &ws, &mut catalogs, currency, plan, *version).await?;
            amounts.push((*at, amount));
        }
        // The plan in effect at `from`: the last step at or before it, else the first.
        let first = amounts
            .iter()
            .rev()
            .find(|(at, _)| *at <= from)
            .or(amounts.first())
            .map_or(0, |(_, amount)| *amount);
        spans.entry(currency).or_default().extend(
            analytics::spans_with_changes(&sub.customer, from, to, first, &amounts)
                .into_iter()
                .filter(|s| s.monthly_minor != 0),
        );
    }
    spans.retain(|_, s| !s.is_empty());
    Ok((latest.currency, spans))
}

/// A plan's base price in `currency` normalised to a month (0 without a base, or without a
/// price in that currency in that catalog version).
async fn monthly(
    engine: &Engine,
    ws: &WorkspaceId,
    catalogs: &mut HashMap<i64, Option<Catalog>>,
    currency: Currency,
    plan: &str,
    version: i64,
) -> AppResult<i64> {
    if let std::collections::hash_map::Entry::Vacant(slot) = catalogs.entry(version) {
        let record = engine.store().catalog_version(ws, version).await?;
        slot.insert(record.map(|r| parse(&r.catalog)).transpose()?);
    }
    let Some(Some(catalog)) = catalogs.get(&version) else {
        return Ok(0);
    };
    let Some(plan) = catalog.plans.get(plan) else {
        return Ok(0);
    };
    let base = if catalog.currency == currency {
        plan.base.clone()
    } else {
        let priced = plan.currencies.get(currency.code()).and_then(|p| p.base);
        plan.base.clone().zip(priced).map(|(mut b, amount)| {
            b.amount = amount;
            b
        })
    };
    let Some(base) = base else {
        return Ok(0);
    };
    analytics::monthly_minor(&base, currency).map_err(analytics_error)
}

/// Each subscription's plans over time, from its domain events (`subscription.created`,
/// `.updated`, `.trial_ended`: each says the plan and catalog version from its time on), oldest
/// first.
async fn plan_history(
    engine: &Engine,
    ws: &WorkspaceId,
) -> AppResult<HashMap<String, Vec<(Timestamp, String, i64)>>> {
    use crate::app::outbox::types;
    const PAGE: i64 = 1000;
    let mut out: HashMap<String, Vec<(Timestamp, String, i64)>> = HashMap::new();
    for event_type in [
        types::SUBSCRIPTION_CREATED,
        types::SUBSCRIPTION_UPDATED,
        types::SUBSCRIPTION_TRIAL_ENDED,
    ] {
        let mut after: Option<String> = None;
        loop {
            let filter = OutboxFilter {
                event_type: Some(event_type.to_owned()),
                customer: None,
                starting_after: after.clone(),
                limit: PAGE,
            };
            let page = engine.store().list_domain_events(ws, &filter).await?;
            for event in &page {
                let data = &event.data;
                let (Some(sub), Some(plan), Some(version)) = (
                    data.get("subscription").and_then(|v| v.as_str()),
                    data.get("plan").and_then(|v| v.as_str()),
                    data.get("catalog_version").and_then(|v| v.as_i64()),
                ) else {
                    continue;
                };
                out.entry(sub.to_owned()).or_default().push((
                    event.occurred_at,
                    plan.to_owned(),
                    version,
                ));
            }
            if i64::try_from(page.len()).unwrap_or(i64::MAX) < PAGE {
                break;
            }
            after = page.last().map(|e| e.id.clone());
        }
    }
    for steps in out.values_mut() {
        steps.sort_by_key(|(at, _, _)| *at);
    }
    Ok(out)
}

fn parse(catalog: &serde_json::Value) -> AppResult<Catalog> {
    serde_json::from_value(catalog.clone())
        .map_err(|e| Error::internal(format!("a stored catalog does not read back: {e}")))
}

/// For each subscription with an invoice credit-noted in full: when its notes reached the total.
async fn refunds<'a>(
    engine: &Engine,
    ws: &WorkspaceId,
    customers: impl Iterator<Item = &'a str>,
) -> AppResult<BTreeMap<String, Timestamp>> {
    let store = engine.store();
    let mut customers: Vec<&str> = customers.collect();
    customers.sort_unstable();
    customers.dedup();
    let mut out: BTreeMap<String, Timestamp> = BTreeMap::new();
    for customer in customers {
        for invoice in store.list_invoices(ws, &CustomerId::from(customer)).await? {
            let Some(sub) = invoice.subscription.as_ref() else {
                continue;
            };
            if invoice.total_minor <= 0 {
                continue;
            }
            let mut notes = store.list_credit_notes(ws, &invoice.id).await?;
            notes.sort_by_key(|n| n.created_at);
            let mut credited: i64 = 0;
            for note in notes {
                credited = credited.saturating_add(note.amount_minor);
                if credited >= invoice.total_minor {
                    let at = note.created_at;
                    out.entry(sub.clone())
                        .and_modify(|t| *t = (*t).min(at))
                        .or_insert(at);
                    break;
                }
            }
        }
    }
    Ok(out)
}
