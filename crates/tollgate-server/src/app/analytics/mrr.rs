//! MRR by month with its movements, for one workspace.
//!
//! Each subscription is one span of recurring revenue: its plan's base price (from the catalog
//! version it is on) normalised to a month, from the end of its trial (or its start) until it
//! ends (`ends_at`, else `canceled_at`, for canceled and expired ones; a scheduled cancellation's
//! `ends_at` for live ones). A subscription with an invoice credit-noted in full (refunded) stops
//! counting when the notes reach the invoice's total (QLP case 5). Paused subscriptions do not
//! count. Plans without a base price (pay as you go) bring no MRR.

use std::collections::{BTreeMap, HashMap};

use jiff::Timestamp;
use tollgate_core::analytics::{self, MrrMonth, Span};
use tollgate_core::catalog::Catalog;
use tollgate_core::ids::{CustomerId, WorkspaceId};
use tollgate_core::money::Currency;
use tollgate_store::SubscriptionStatus;

use crate::engine::Engine;
use crate::error::{AppResult, Error};

pub struct MrrQuery {
    /// `YYYY-MM`.
    pub from: String,
    pub to: String,
}

pub struct MrrReport {
    pub currency: Currency,
    pub months: Vec<MrrMonth>,
}

fn analytics_error(e: analytics::AnalyticsError) -> Error {
    Error::invalid(e.code(), e.to_string())
}

/// The report; `from` and `to` are months (`YYYY-MM`), at most 120 of them.
pub async fn mrr(engine: &Engine, workspace: &str, query: MrrQuery) -> AppResult<MrrReport> {
    let from = analytics::parse_month(&query.from).map_err(analytics_error)?;
    let to = analytics::parse_month(&query.to).map_err(analytics_error)?;
    let (currency, spans) = spans(engine, workspace).await?;
    let months = analytics::mrr_by_month(&spans, from, to).map_err(analytics_error)?;
    Ok(MrrReport { currency, months })
}

/// The workspace's spans of recurring revenue, in the currency of its latest catalog.
pub async fn spans(engine: &Engine, workspace: &str) -> AppResult<(Currency, Vec<Span>)> {
    let store = engine.store();
    let ws = WorkspaceId::from(workspace);
    let Some(latest) = store.latest_catalog(&ws).await? else {
        return Ok((Currency::USD, Vec::new()));
    };
    let latest = parse(&latest.catalog)?;
    let currency = latest.currency;
    let mut catalogs: HashMap<i64, Catalog> = HashMap::new();
    let subscriptions = store.list_workspace_subscriptions(&ws).await?;
    let refunds = refunds(
        engine,
        &ws,
        subscriptions.iter().map(|s| s.customer.as_str()),
    )
    .await?;
    let mut spans = Vec::new();
    for sub in subscriptions {
        if sub.status == SubscriptionStatus::Paused {
            continue;
        }
        if let std::collections::hash_map::Entry::Vacant(slot) = catalogs.entry(sub.catalog_version)
        {
            let Some(record) = store.catalog_version(&ws, sub.catalog_version).await? else {
                continue;
            };
            slot.insert(parse(&record.catalog)?);
        }
        let Some(catalog) = catalogs.get(&sub.catalog_version) else {
            continue;
        };
        if catalog.currency != currency {
            continue;
        }
        let Some(base) = catalog.plans.get(&sub.plan).and_then(|p| p.base.as_ref()) else {
            continue;
        };
        let monthly_minor = analytics::monthly_minor(base, currency).map_err(analytics_error)?;
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
        spans.push(Span {
            customer: sub.customer.clone(),
            from,
            to,
            monthly_minor,
        });
    }
    Ok((currency, spans))
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
