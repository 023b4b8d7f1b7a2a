//! Usage events in batches: each accepted, counted as a duplicate, or rejected on its own;
//! stored events listed with filters and exported (CSV, NDJSON), and a customer's usage exported.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tollgate_core::code::Code;
use tollgate_core::ids::WorkspaceId;
use tollgate_store::{After, EventFilter, EventRecord};

use crate::api::error::{ApiError, ApiResult};
use crate::api::page::{Page, PageQuery, Params, unknown_cursor};
use crate::auth::Principal;
use crate::engine::{EventIn, IngestReport};
use crate::state::AppState;

/// Largest batch accepted in one request.
pub const MAX_BATCH: usize = 10_000;

#[derive(Deserialize, utoipa::ToSchema)]
pub struct EventsIn {
    pub events: Vec<EventIn>,
}

/// Ingests a batch. `200` when every event was accepted or a duplicate, `207` when some were
/// rejected (the others are stored all the same); after either, accepted events are durable.
///
/// CloudEvents are taken too (`application/cloudevents+json`, one event;
/// `application/cloudevents-batch+json`, an array): `subject` is the customer, `source` + `/` +
/// `id` the event's id, `data` its properties (docs/API.md, "CloudEvents"). The contract names
/// only the JSON body: with the CloudEvents types listed beside it, openapi-python-client
/// generates code Python refuses and openapi-generator types the body as one CloudEvent.
#[utoipa::path(post, path = "/v1/events", operation_id = "events_ingest",
    request_body(content((EventsIn = "application/json"))),
    responses((status = 200, description = "OK", body = IngestReport), (status = 207, description = "Some items were rejected; the others are stored", body = IngestReport), (status = 400, description = "Bad input (problem+json with a stable code)", body = crate::api::error::Problem, content_type = "application/problem+json")))]
pub async fn ingest(
    State(state): State<AppState>,
    caller: Principal,
    crate::api::cloudevents::IngestBody(events): crate::api::cloudevents::IngestBody,
) -> ApiResult<(StatusCode, Json<IngestReport>)> {
    if events.len() > MAX_BATCH {
        return Err(ApiError::bad_request(
            Code::BatchTooLarge,
            format!("send at most {MAX_BATCH} events per request"),
        ));
    }
    let started = std::time::Instant::now();
    let report = state.engine.ingest(&caller, events).await;
    metrics::histogram!(
        "tollgate_ingest_duration_seconds",
        "result" => if report.is_ok() { "ok" } else { "error" },
    )
    .record(started.elapsed().as_secs_f64());
    let report = report?;
    let status = if report.rejected > 0 {
        StatusCode::MULTI_STATUS
    } else {
        StatusCode::OK
    };
    Ok((status, Json(report)))
}

/// One stored event, as `GET /v1/events` and its export show it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventOut {
    pub id: String,
    pub customer: String,
    #[serde(rename = "type")]
    pub event_type: String,
    #[schema(value_type = String)]
    pub timestamp: Timestamp,
    pub subject: Option<String>,
    #[schema(value_type = Object)]
    pub properties: serde_json::Value,
    /// When the server accepted it.
    #[schema(value_type = String)]
    pub received_at: Timestamp,
}

impl From<EventRecord> for EventOut {
    fn from(e: EventRecord) -> Self {
        EventOut {
            id: e.id,
            customer: e.customer,
            event_type: e.event_type,
            timestamp: e.timestamp,
            subject: e.subject,
            properties: e.properties,
            received_at: e.received_at,
        }
    }
}

/// Which events to list or export; every filter is optional.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Only this customer's events (a customer key sees its own only).
    pub customer: Option<String>,
    /// Only events of this type.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub event_type: Option<String>,
    /// Only events of this subject.
    pub subject: Option<String>,
    /// Events at or after this time (RFC 3339).
    pub from: Option<String>,
    /// Events before this time (RFC 3339).
    pub to: Option<String>,
}

fn timestamp(name: &str, text: Option<&String>) -> ApiResult<Option<Timestamp>> {
    text.map(|t| {
        t.parse::<Timestamp>().map_err(|e| {
            ApiError::bad_request(
                Code::InvalidTimestamp,
                format!("`{name}` {t:?} is not RFC 3339: {e}"),
            )
        })
    })
    .transpose()
}

/// The caller's workspace and the store filter of a query; a customer key is held to its own
/// events (asking for another customer's is a 404, as everywhere).
fn filter_of(caller: &Principal, query: EventsQuery) -> ApiResult<(WorkspaceId, EventFilter)> {
    let customer = match (caller, query.customer) {
        (Principal::Admin { .. }, customer) => customer,
        (Principal::Customer { customer: own, .. }, None) => Some(own.clone()),
        (Principal::Customer { .. }, Some(customer)) => {
            caller.require_customer(&customer)?;
            Some(customer)
        }
    };
    let from = timestamp("from", query.from.as_ref())?;
    let to = timestamp("to", query.to.as_ref())?;
    if let (Some(from), Some(to)) = (from, to)
        && from >= to
    {
        return Err(ApiError::bad_request(
            Code::InvalidTimestamp,
            "`from` must be before `to`",
        ));
    }
    let filter = EventFilter {
        customer,
        event_type: query.event_type,
        subject: query.subject,
        from,
        to,
    };
    Ok((WorkspaceId::from(caller.workspace()), filter))
}

/// Stored events matching the filters, oldest first (by time, then id), a page at a time.
#[utoipa::path(get, path = "/v1/events", operation_id = "events_list", params(EventsQuery, PageQuery),
    responses((status = 200, description = "A page of events, oldest first", body = Page<EventOut>), (status = 400, description = "Bad filter, `limit` or `starting_after`", body = crate::api::error::Problem, content_type = "application/problem+json")))]
pub async fn list(
    State(state): State<AppState>,
    caller: Principal,
    Params(query): Params<EventsQuery>,
    Params(page): Params<PageQuery>,
) -> ApiResult<Json<Page<EventOut>>> {
    let (workspace, filter) = filter_of(&caller, query)?;
    let limit = page.limit()?;
    let store = state.engine.store();
    let after = match &page.starting_after {
        None => None,
        Some(id) => Some(
            store
                .get_event(&workspace, id)
                .await?
                .filter(|e| filter.customer.as_ref().is_none_or(|c| *c == e.customer))
                .ok_or_else(|| unknown_cursor(id))?,
        ),
    };
    let cursor = after.as_ref().map(|e| After {
        at: e.timestamp,
        id: &e.id,
    });
    let rows = store
        .query_events(
            &workspace,
            &filter,
            cursor,
            i64::try_from(limit + 1).unwrap_or(i64::MAX),
        )
        .await?;
    Ok(Json(Page::from_rows(rows, limit).map(EventOut::from)))
}

/// Which event's history to show.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AmendmentsQuery {
    /// The event's id (a query parameter: ids may hold `/`).
    pub event: String,
}

/// One replacement of an event's value (`on_duplicate: latest_replaces`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AmendmentOut {
    /// 1 for the first replacement of the event, then 2, ...
    pub seq: i64,
    #[schema(value_type = Object)]
    pub old_properties: serde_json::Value,
    #[schema(value_type = Object)]
    pub new_properties: serde_json::Value,
    /// `admin`, or the id of the customer key that sent the replacing copy.
    pub amended_by: String,
    /// On the customer's clock.
    #[schema(value_type = String)]
    pub amended_at: Timestamp,
}

/// An event as first written, what it is rated with now, and every amendment between.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventHistoryOut {
    pub event: EventOut,
    /// The properties usage is rated with: the newest amendment's, else the event's own.
    #[schema(value_type = Object)]
    pub current_properties: serde_json::Value,
    pub amendments: Vec<AmendmentOut>,
}

/// An event's amendments, oldest first, with the event as first written (docs/INVOICES.md,
/// "Repeated event ids"). A customer key sees its own events only.
#[utoipa::path(get, path = "/v1/events/amendments", operation_id = "events_amendments", params(AmendmentsQuery),
    responses((status = 200, description = "The event and its amendments", body = EventHistoryOut), (status = 404, description = "No such event (or another customer's)", body = crate::api::error::Problem, content_type = "application/problem+json")))]
pub async fn amendments(
    State(state): State<AppState>,
    caller: Principal,
    Params(query): Params<AmendmentsQuery>,
) -> ApiResult<Json<EventHistoryOut>> {
    let history = crate::app::event_history::history(&state.engine, &caller, &query.event).await?;
    let current_properties = history.current().clone();
    Ok(Json(EventHistoryOut {
        current_properties,
        amendments: history
            .amendments
            .into_iter()
            .map(|a| AmendmentOut {
                seq: a.seq,
                old_properties: a.old_properties,
                new_properties: a.new_properties,
                amended_by: a.amended_by,
                amended_at: a.amended_at,
            })
            .collect(),
        event: history.event.into(),
    }))
}

/// The export's formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Ndjson,
}

impl Format {
    fn parse(text: Option<&str>) -> ApiResult<Format> {
        match text {
            None | Some("ndjson") => Ok(Format::Ndjson),
            Some("csv") => Ok(Format::Csv),
            Some(other) => Err(ApiError::bad_request(
                Code::InvalidFormat,
                format!("`format` {other:?}: use `csv` or `ndjson`"),
            )),
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8",
            Format::Ndjson => "application/x-ndjson",
        }
    }

    fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Ndjson => "ndjson",
        }
    }
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FormatQuery {
    /// `ndjson` (one JSON object a line, the default) or `csv` (a header row, then one row a
    /// record; nested values as JSON text).
    pub format: Option<String>,
}

/// Rows read from the store per query while exporting: the export holds one such page in
/// memory, whatever the number of events.
const EXPORT_PAGE: i64 = 1000;

const EVENT_COLUMNS: &str = "id,customer,type,timestamp,subject,properties,received_at\n";

/// One CSV field: quoted when it holds a comma, a quote or a line break (quotes doubled).
fn csv_field(out: &mut String, text: &str) {
    if text.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&text.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(text);
    }
}

fn csv_row(out: &mut String, fields: &[&str]) {
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        csv_field(out, field);
    }
    out.push('\n');
}

fn event_line(out: &mut String, format: Format, event: EventRecord) {
    match format {
        Format::Csv => csv_row(
            out,
            &[
                &event.id,
                &event.customer,
                &event.event_type,
                &event.timestamp.to_string(),
                event.subject.as_deref().unwrap_or(""),
                &event.properties.to_string(),
                &event.received_at.to_string(),
            ],
        ),
        Format::Ndjson => {
            // Serializing plain strings and JSON values cannot fail.
            out.push_str(&serde_json::to_string(&EventOut::from(event)).unwrap_or_default());
            out.push('\n');
        }
    }
}

struct Export {
    store: std::sync::Arc<dyn tollgate_store::Store>,
    workspace: WorkspaceId,
    filter: EventFilter,
    format: Format,
    /// The sort key of the last event written; `None` before the first page.
    after: Option<(Timestamp, String)>,
    header: bool,
    done: bool,
}

/// The next chunk of the export: one page of events as text, or the end.
async fn next_chunk(mut export: Export) -> Result<Option<(Bytes, Export)>, std::io::Error> {
    if export.done {
        return Ok(None);
    }
    let after = export.after.as_ref().map(|(at, id)| After { at: *at, id });
    let rows = export
        .store
        .query_events(&export.workspace, &export.filter, after, EXPORT_PAGE)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "event export failed mid-stream");
            std::io::Error::other("the export failed; see the server log")
        })?;
    let mut out = String::new();
    if export.header {
        out.push_str(EVENT_COLUMNS);
        export.header = false;
    }
    export.done = i64::try_from(rows.len()).unwrap_or(i64::MAX) < EXPORT_PAGE;
    if let Some(last) = rows.last() {
        export.after = Some((last.timestamp, last.id.clone()));
    }
    for event in rows {
        event_line(&mut out, export.format, event);
    }
    Ok(Some((Bytes::from(out), export)))
}

fn attachment(format: Format, name: &str, body: Body) -> Response {
    Response::builder()
        .header(header::CONTENT_TYPE, format.content_type())
        .header(
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}.{}\"", format.extension()),
        )
        .body(body)
        .unwrap_or_else(|_| ApiError::internal("cannot build the export answer").into_response())
}

/// Every event matching the filters, oldest first, as CSV or NDJSON. Streamed: the server
/// reads the store a page at a time while sending, so an export of any size holds one page in
/// memory. A failure after the first bytes cuts the transfer short (the body ends in an error).
#[utoipa::path(get, path = "/v1/events/export", operation_id = "events_export", params(EventsQuery, FormatQuery),
    responses((status = 200, description = "The events, streamed", content(
        (String = "application/x-ndjson"),
        (String = "text/csv"),
    )), (status = 400, description = "Bad filter or format", body = crate::api::error::Problem, content_type = "application/problem+json")))]
pub async fn export(
    State(state): State<AppState>,
    caller: Principal,
    Params(query): Params<EventsQuery>,
    Params(format): Params<FormatQuery>,
) -> ApiResult<Response> {
    let format = Format::parse(format.format.as_deref())?;
    let (workspace, filter) = filter_of(&caller, query)?;
    let export = Export {
        store: state.engine.store().clone(),
        workspace,
        filter,
        format,
        after: None,
        header: format == Format::Csv,
        done: false,
    };
    let stream = futures_util::stream::try_unfold(export, next_chunk);
    Ok(attachment(format, "events", Body::from_stream(stream)))
}

/// Which period a usage export is for (rolling windows, a point-in-time figure, are not exported).
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PeriodQuery {
    /// Any time inside the period to export (RFC 3339); default: now on the customer's clock.
    pub at: Option<String>,
}

const USAGE_COLUMNS: &str =
    "customer,plan,period_start,period_end,meter,used,limit,limit_kind,remaining,resets_at\n";

/// A customer's usage of each meter in one period (the period containing `at`, default now on
/// the customer's clock), as CSV or NDJSON: the figures of `GET /v1/customers/{id}/usage`, one
/// record per meter.
#[utoipa::path(get, path = "/v1/customers/{id}/usage/export", operation_id = "customers_usage_export", params(("id" = String, Path), PeriodQuery, FormatQuery),
    responses((status = 200, description = "One record per meter", content(
        (String = "application/x-ndjson"),
        (String = "text/csv"),
    )), (status = 400, description = "Bad `at` or format", body = crate::api::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such customer", body = crate::api::error::Problem, content_type = "application/problem+json")))]
pub async fn usage_export(
    State(state): State<AppState>,
    caller: Principal,
    Path(id): Path<String>,
    Params(query): Params<PeriodQuery>,
    Params(format): Params<FormatQuery>,
) -> ApiResult<Response> {
    let format = Format::parse(format.format.as_deref())?;
    let workspace = caller.require_customer(&id)?;
    let at = timestamp("at", query.at.as_ref())?;
    let report = state.engine.usage(workspace, &id, at, None).await?;
    let mut out = String::new();
    if format == Format::Csv {
        out.push_str(USAGE_COLUMNS);
    }
    for meter in &report.meters {
        let limit = meter.limit.map(|limit| match limit {
            tollgate_core::catalog::Limit::Finite(max) => max.to_string(),
            tollgate_core::catalog::Limit::Unlimited => "unlimited".to_owned(),
        });
        let remaining = meter.remaining.map(|r| r.to_string());
        match format {
            Format::Csv => csv_row(
                &mut out,
                &[
                    &report.customer,
                    report.plan.as_deref().unwrap_or(""),
                    &report.period_start.to_string(),
                    &report.period_end.to_string(),
                    &meter.meter,
                    &meter.used.to_string(),
                    limit.as_deref().unwrap_or(""),
                    meter.limit_kind.unwrap_or(""),
                    remaining.as_deref().unwrap_or(""),
                    &meter.resets_at.to_string(),
                ],
            ),
            Format::Ndjson => {
                let line = serde_json::json!({
                    "customer": report.customer,
                    "plan": report.plan,
                    "period_start": report.period_start,
                    "period_end": report.period_end,
                    "meter": meter.meter,
                    "used": meter.used.to_string(),
                    "limit": limit,
                    "limit_kind": meter.limit_kind,
                    "remaining": remaining,
                    "resets_at": meter.resets_at,
                });
                out.push_str(&line.to_string());
                out.push('\n');
            }
        }
    }
    Ok(attachment(format, "usage", Body::from(out)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_when_needed() {
        let mut out = String::new();
        csv_row(&mut out, &["plain", "a,b", "say \"hi\"", "two\nlines", ""]);
        assert_eq!(out, "plain,\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",\n");
    }

    #[test]
    fn formats_parse() {
        assert_eq!(Format::parse(None).unwrap(), Format::Ndjson);
        assert_eq!(Format::parse(Some("csv")).unwrap(), Format::Csv);
        assert_eq!(
            Format::parse(Some("xml")).unwrap_err().code,
            Code::InvalidFormat
        );
    }
}
