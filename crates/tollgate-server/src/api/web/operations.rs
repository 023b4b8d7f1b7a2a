//! The dashboard's operations pages (docs/DASHBOARD.md, "Pages"): the catalog (current version,
//! its changes from the previous one, plans side by side), usage events with filters, webhook
//! deliveries, emails and test clocks. Read-only: each reads the store through the same rows as
//! the API's listings.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{Value, json};
use tollgate_core::catalog;
use tollgate_core::ids::WorkspaceId;
use tollgate_store::EventFilter;

use super::admin::{base, error_page, interval, merge, signed_in};
use super::page;
use crate::error::Error;
use crate::state::AppState;

/// At most this many rows on a page.
const ROWS: usize = 100;

/// A value of the catalog file written compactly: scalars as they are, maps as `k: v, ...`.
pub(super) fn compact(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "–".to_owned(),
        Value::Array(items) => items.iter().map(compact).collect::<Vec<_>>().join("; "),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| match v {
                Value::Object(_) => format!("{k}: {{{}}}", compact(v)),
                _ => format!("{k}: {}", compact(v)),
            })
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}

// ---- catalog ----

/// `GET /admin/catalog`: the current version, what changed from the previous one, and the
/// plans side by side.
pub async fn catalog_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let operator = match signed_in(&state, &headers).await {
        Ok(o) => o,
        Err(r) => return r,
    };
    let workspace = operator.user.workspace.as_str();
    let current = match state.engine.latest_catalog(workspace).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            return page(
                StatusCode::OK,
                "catalog.html",
                merge(base(&operator, "catalog"), json!({"none": true})),
            );
        }
        Err(e) => return error_page(&e),
    };
    let ws = WorkspaceId::from(workspace);
    let store = state.engine.store();
    let record = match store.catalog_version(&ws, current.version).await {
        Ok(r) => r,
        Err(e) => return error_page(&e.into()),
    };
    let previous = if current.version > 1 {
        match store.catalog_version(&ws, current.version - 1).await {
            Ok(Some(p)) => serde_json::from_value::<catalog::Catalog>(p.catalog).ok(),
            Ok(None) => None,
            Err(e) => return error_page(&e.into()),
        }
    } else {
        None
    };
    let changes: Vec<String> = previous
        .as_ref()
        .map(|p| {
            catalog::diff(p, &current.catalog)
                .iter()
                .map(ToString::to_string)
                .collect()
        })
        .unwrap_or_default();
    let cat = &current.catalog;
    let surface = catalog::to_json(cat);
    let plan_keys: Vec<&String> = cat.plans.keys().collect();
    let cell = |f: &dyn Fn(&str, &catalog::Plan) -> String| -> Vec<String> {
        cat.plans.iter().map(|(k, p)| f(k, p)).collect()
    };
    let mut rows: Vec<Value> = vec![
        json!({"label": "Base price", "cells": cell(&|_, p| p.base.as_ref().map_or_else(
            || "none (pay per use)".to_owned(),
            |b| format!("{} {} / {}", b.amount, cat.currency.code(), interval(b)),
        ))}),
        json!({"label": "Trial", "cells": cell(&|_, p| p.trial_days.map_or_else(|| "–".to_owned(), |d| format!("{d} days")))}),
        json!({"label": "Setup fee", "cells": cell(&|_, p| p.setup_fee.map_or_else(|| "–".to_owned(), |f| format!("{f} {}", cat.currency.code())))}),
        json!({"label": "Minimum", "cells": cell(&|_, p| p.minimum.map_or_else(|| "–".to_owned(), |f| format!("{f} {}", cat.currency.code())))}),
    ];
    for (key, feature) in &cat.features {
        let label = feature.name.clone().unwrap_or_else(|| key.clone());
        rows.push(json!({"label": label, "cells": cell(&|plan, _| {
            compact(&surface["plans"][plan]["features"][key.as_str()])
        })}));
    }
    rows.push(json!({"label": "Quotas", "cells": cell(&|plan, _| compact(&surface["plans"][plan]["quotas"]))}));
    rows.push(json!({"label": "Rate limits", "cells": cell(&|plan, _| compact(&surface["plans"][plan]["rate_limits"]))}));
    rows.push(json!({"label": "Usage prices", "cells": cell(&|plan, _| compact(&surface["plans"][plan]["prices"]))}));
    let names: Vec<String> = cat
        .plans
        .iter()
        .map(|(k, p)| p.name.clone().unwrap_or_else(|| k.clone()))
        .collect();
    page(
        StatusCode::OK,
        "catalog.html",
        merge(
            base(&operator, "catalog"),
            json!({
                "version": current.version.to_string(),
                "previous_version": (current.version - 1).to_string(),
                "created_at": record.map(|r| r.created_at.strftime("%Y-%m-%d %H:%M UTC").to_string()),
                "currency": cat.currency.code(),
                "previous": previous.is_some(),
                "changes": changes,
                "plan_keys": plan_keys,
                "plan_names": names,
                "rows": rows,
                "meters": cat.meters.iter().map(|(k, m)| json!({"key": k, "event": m.event, "aggregation": compact(&surface["meters"][k.as_str()]["aggregation"]), "group_by": m.group_by.join(", ")})).collect::<Vec<_>>(),
                "yaml": catalog::to_yaml(cat),
            }),
        ),
    )
}

// ---- events ----

#[derive(Deserialize, Default, Clone)]
pub struct EventsQuery {
    customer: Option<String>,
    #[serde(rename = "type")]
    event_type: Option<String>,
    from: Option<String>,
    to: Option<String>,
    starting_after: Option<String>,
}

fn some(text: Option<String>) -> Option<String> {
    text.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty())
}

/// At most this many new rows per poll of the live tail (the next poll brings the rest).
const TAIL_ROWS: usize = 50;

/// The events pages' filters, parsed: customer, type and the time range (by default the last
/// 24 hours of the wall clock).
struct EventsView {
    customer: Option<String>,
    event_type: Option<String>,
    from_text: Option<String>,
    to_text: Option<String>,
    from: Option<Timestamp>,
    to: Option<Timestamp>,
}

impl EventsView {
    fn parse(state: &AppState, query: &EventsQuery) -> Result<EventsView, Error> {
        let parse = |name: &str, text: &Option<String>| -> Result<Option<Timestamp>, Error> {
            match text {
                None => Ok(None),
                Some(t) => t.parse::<Timestamp>().map(Some).map_err(|e| {
                    Error::invalid(
                        tollgate_core::code::Code::InvalidTimestamp,
                        format!("`{name}` {t:?} is not RFC 3339 (2026-11-30T12:00:00Z): {e}"),
                    )
                }),
            }
        };
        let (customer, event_type) = (some(query.customer.clone()), some(query.event_type.clone()));
        let (from_text, to_text) = (some(query.from.clone()), some(query.to.clone()));
        let default_from = (from_text.is_none() && to_text.is_none())
            .then(|| state.engine.now() - jiff::SignedDuration::from_hours(24));
        let from = parse("from", &from_text)?.or(default_from);
        let to = parse("to", &to_text)?;
        Ok(EventsView {
            customer,
            event_type,
            from_text,
            to_text,
            from,
            to,
        })
    }

    fn filter(&self) -> EventFilter {
        EventFilter {
            customer: self.customer.clone(),
            event_type: self.event_type.clone(),
            subject: None,
            from: self.from,
            to: self.to,
        }
    }

    /// `path?` these filters (the effective `from`, so a link means the same later) and `extra`.
    fn link(&self, path: &str, extra: Option<(&str, &str)>) -> String {
        let mut params: Vec<(&str, String)> =
            extra.map(|(k, v)| (k, v.to_owned())).into_iter().collect();
        for (k, v) in [("customer", &self.customer), ("type", &self.event_type)] {
            if let Some(v) = v {
                params.push((k, v.clone()));
            }
        }
        if let Some(f) = self.from {
            params.push(("from", f.to_string()));
        }
        if let Some(t) = self.to {
            params.push(("to", t.to_string()));
        }
        let query: Vec<String> = params
            .iter()
            .map(|(k, v)| format!("{k}={}", super::urlencode(v)))
            .collect();
        format!("{path}?{}", query.join("&"))
    }
}

fn event_row(e: &tollgate_store::EventRecord) -> Value {
    json!({
        "id": e.id, "customer": e.customer, "type": e.event_type,
        "at": e.timestamp.strftime("%Y-%m-%d %H:%M:%S").to_string(),
        "subject": e.subject,
        "properties": compact(&e.properties),
    })
}

/// The events of `view` after the event `after` (by time, then id), at most `limit` + 1 read so
/// the caller knows whether more follow.
async fn events_after(
    state: &AppState,
    ws: &WorkspaceId,
    view: &EventsView,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<tollgate_store::EventRecord>, Error> {
    let store = state.engine.store();
    let after = match after {
        None => None,
        Some(id) => Some(store.get_event(ws, id).await?.ok_or_else(|| {
            Error::invalid(
                tollgate_core::code::Code::InvalidRequest,
                format!("no event {id:?} to continue after"),
            )
        })?),
    };
    let cursor = after.as_ref().map(|e| tollgate_store::After {
        at: e.timestamp,
        id: &e.id,
    });
    Ok(store
        .query_events(
            ws,
            &view.filter(),
            cursor,
            i64::try_from(limit + 1).unwrap_or(101),
        )
        .await?)
}

/// `GET /admin/events?customer=&type=&from=&to=`: usage events, oldest first, 100 a page; by
/// default the last 24 hours. The last page carries the live tail (`/admin/events/tail`).
pub async fn events_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<EventsQuery>,
) -> Response {
    let operator = match signed_in(&state, &headers).await {
        Ok(o) => o,
        Err(r) => return r,
    };
    let ws = WorkspaceId::from(operator.user.workspace.as_str());
    let view = match EventsView::parse(&state, &query) {
        Ok(v) => v,
        Err(e) => return error_page(&e),
    };
    let after = some(query.starting_after.clone());
    let rows = match events_after(&state, &ws, &view, after.as_deref(), ROWS).await {
        Ok(r) => r,
        Err(e) => return error_page(&e),
    };
    let more = rows.len() > ROWS;
    let shown: Vec<Value> = rows.iter().take(ROWS).map(event_row).collect();
    let last = rows[..rows.len().min(ROWS)]
        .last()
        .map(|e| e.id.clone())
        .or(after);
    let next = more.then(|| {
        view.link(
            "/admin/events",
            last.as_deref().map(|l| ("starting_after", l)),
        )
    });
    // Only the last page follows new events: a page with a next one is not the end.
    let tail =
        (!more).then(|| view.link("/admin/events/tail", last.as_deref().map(|l| ("after", l))));
    let refresh = view.link("/admin/events", after_param(&query));
    page(
        StatusCode::OK,
        "events.html",
        merge(
            base(&operator, "events"),
            json!({
                "customer": view.customer, "type": view.event_type,
                "from": view.from_text.clone().or_else(|| view.from.map(|f| f.to_string())),
                "to": view.to_text,
                "events": shown, "next": next, "tail": tail, "refresh": refresh,
            }),
        ),
    )
}

/// The page's own cursor, kept by its refresh link.
fn after_param(query: &EventsQuery) -> Option<(&'static str, &str)> {
    query
        .starting_after
        .as_deref()
        .filter(|s| !s.trim().is_empty())
        .map(|s| ("starting_after", s))
}

#[derive(Deserialize, Default)]
pub struct TailQuery {
    #[serde(flatten)]
    events: EventsQuery,
    after: Option<String>,
}

/// `GET /admin/events/tail?customer=&type=&from=&to=&after=`: the live tail's fragment, polled
/// by htmx every 2 seconds from the events page: the rows of the page's filters newer than
/// `after` (at most 50), then the poller again with the newest row as its cursor.
pub async fn events_tail(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<TailQuery>,
) -> Response {
    let operator = match signed_in(&state, &headers).await {
        Ok(o) => o,
        Err(r) => return r,
    };
    let ws = WorkspaceId::from(operator.user.workspace.as_str());
    let view = match EventsView::parse(&state, &query.events) {
        Ok(v) => v,
        Err(e) => return error_page(&e),
    };
    let after = some(query.after);
    let rows = match events_after(&state, &ws, &view, after.as_deref(), TAIL_ROWS).await {
        Ok(r) => r,
        Err(e) => return error_page(&e),
    };
    let shown: Vec<Value> = rows.iter().take(TAIL_ROWS).map(event_row).collect();
    let last = rows[..rows.len().min(TAIL_ROWS)]
        .last()
        .map(|e| e.id.clone())
        .or(after);
    let tail = view.link("/admin/events/tail", last.as_deref().map(|l| ("after", l)));
    page(
        StatusCode::OK,
        "events_tail.html",
        json!({"events": shown, "tail": tail}),
    )
}

// ---- webhooks, emails, test clocks ----

/// `GET /admin/webhooks`: the endpoints and each one's latest deliveries.
pub async fn webhooks_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let operator = match signed_in(&state, &headers).await {
        Ok(o) => o,
        Err(r) => return r,
    };
    let ws = WorkspaceId::from(operator.user.workspace.as_str());
    let store = state.engine.store();
    let endpoints = match store.list_webhook_endpoints(&ws).await {
        Ok(e) => e,
        Err(e) => return error_page(&e.into()),
    };
    let mut out = Vec::new();
    for endpoint in endpoints {
        let deliveries = match store.list_webhook_deliveries(&ws, &endpoint.id, 20).await {
            Ok(d) => d,
            Err(e) => return error_page(&e.into()),
        };
        out.push(json!({
            "id": endpoint.id, "url": endpoint.url, "enabled": endpoint.enabled,
            "types": if endpoint.event_types.is_empty() { "every type".to_owned() } else { endpoint.event_types.join(", ") },
            "deliveries": deliveries.iter().map(|d| json!({
                "event": d.event, "type": d.event_type, "customer": d.customer,
                "status": d.status.as_str(), "attempts": d.attempts.to_string(),
                "last_status": d.last_status.map(|s| s.to_string()),
                "next": d.next_attempt_at.strftime("%Y-%m-%d %H:%M:%S").to_string(),
            })).collect::<Vec<_>>(),
        }));
    }
    page(
        StatusCode::OK,
        "webhooks.html",
        merge(base(&operator, "webhooks"), json!({"endpoints": out})),
    )
}

#[derive(Deserialize, Default)]
pub struct EmailsQuery {
    status: Option<String>,
    customer: Option<String>,
}

/// `GET /admin/emails?status=&customer=`: the email log, oldest first, 100 shown.
pub async fn emails_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<EmailsQuery>,
) -> Response {
    let operator = match signed_in(&state, &headers).await {
        Ok(o) => o,
        Err(r) => return r,
    };
    let (status, customer) = (some(query.status), some(query.customer));
    let listed = crate::app::email::messages::list(
        &state.engine,
        crate::app::email::messages::ListEmailMessages {
            workspace: operator.user.workspace.clone(),
            customer: customer.clone(),
            status: status.clone(),
            starting_after: None,
            limit: Some(100),
        },
    )
    .await;
    let (messages, more) = match listed {
        Ok(m) => m,
        Err(e) => return error_page(&e),
    };
    let rows: Vec<Value> = messages
        .iter()
        .map(|m| {
            json!({
                "id": m.id, "type": m.event_type, "template": m.template, "recipient": m.recipient,
                "customer": m.customer, "status": m.status.as_str(),
                "attempts": m.attempts.to_string(), "subject": m.subject,
                "error": m.last_error,
                "sent": m.sent_at.map(|t| t.strftime("%Y-%m-%d %H:%M:%S").to_string()),
            })
        })
        .collect();
    page(
        StatusCode::OK,
        "emails.html",
        merge(
            base(&operator, "emails"),
            json!({"status": status, "customer": customer, "messages": rows, "more": more}),
        ),
    )
}

/// `GET /admin/test_clocks`: the test clocks customers follow, their time and customers.
pub async fn test_clocks_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let operator = match signed_in(&state, &headers).await {
        Ok(o) => o,
        Err(r) => return r,
    };
    let ws = WorkspaceId::from(operator.user.workspace.as_str());
    let store = state.engine.store();
    let customers = match store.list_customers(&ws).await {
        Ok(c) => c,
        Err(e) => return error_page(&e.into()),
    };
    let mut by_clock: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for c in customers {
        if let Some(clock) = c.test_clock {
            by_clock.entry(clock).or_default().insert(c.id);
        }
    }
    let mut clocks = Vec::new();
    for (id, customers) in by_clock {
        let clock = match store.get_test_clock(&ws, &id).await {
            Ok(c) => c,
            Err(e) => return error_page(&e.into()),
        };
        clocks.push(json!({
            "id": id,
            "name": clock.as_ref().and_then(|c| c.name.clone()),
            "time": clock.as_ref().map(|c| c.frozen_time.strftime("%Y-%m-%d %H:%M:%S UTC").to_string()),
            "customers": customers.into_iter().collect::<Vec<_>>(),
        }));
    }
    page(
        StatusCode::OK,
        "test_clocks.html",
        merge(base(&operator, "test_clocks"), json!({"clocks": clocks})),
    )
}
