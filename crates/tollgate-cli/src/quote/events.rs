//! Usage from a JSON-lines file of events, aggregated the way the server aggregates them.
//!
//! Each line is one item of `POST /v1/events` (`{id, customer, type, timestamp, properties}`),
//! so a file exported from an app's event log (or written to try a price) can be quoted without
//! a server. What an event adds to a meter comes from the same core function the server's ingest
//! uses ([`tollgate_core::meter::contribution`]), and the period's value per group is built like
//! the server's bill run builds it ([`usage_from_events`]), so the quote and the invoice agree.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use anyhow::{Context, bail};
use jiff::Timestamp;
use serde::Deserialize;
use tollgate_core::catalog::Catalog;
use tollgate_core::event::Event;
use tollgate_core::pricing::{
    BillingPeriod, EventsUsage, EventsUsageError, MeterUsage, usage_from_events,
};

/// One line of the file, in the shape of a `POST /v1/events` item. Unknown fields are refused,
/// like the API refuses them, so a misspelt `propreties` is not silently an event without any.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    id: Option<String>,
    customer: Option<String>,
    #[serde(rename = "type")]
    event_type: Option<String>,
    timestamp: Option<String>,
    subject: Option<String>,
    #[serde(default)]
    properties: serde_json::Map<String, serde_json::Value>,
}

/// A parsed event with its place in the file (for error messages).
#[derive(Debug)]
pub struct FileEvent {
    pub line: usize,
    pub event: Event,
}

/// What reading the file found, besides the events themselves: reported as notes, because each
/// is a likely surprise in a quote (an event counted once, or not at all).
#[derive(Debug, Default)]
pub struct ReadStats {
    pub duplicates: usize,
    pub customers: BTreeSet<String>,
}

/// Parses the file's text; `now` stands in for a missing timestamp, as in the API. A line that
/// is not a valid event is an error naming its line number: a quote over a silently shortened
/// file would be wrong without anyone noticing.
pub fn parse(
    text: &str,
    customer: Option<&str>,
    now: Timestamp,
) -> anyhow::Result<(Vec<FileEvent>, ReadStats)> {
    let mut seen: HashSet<String> = HashSet::new();
    let mut stats = ReadStats::default();
    let mut events = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let number = index + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let line: Line = serde_json::from_str(raw).map_err(|e| {
            // serde_json says "at line 1 column 7" of the one line it saw: keep only the column.
            let message = e.to_string();
            let suffix = format!(" at line {} column {}", e.line(), e.column());
            let message = message.strip_suffix(&suffix).unwrap_or(&message);
            anyhow::anyhow!(
                "line {number}, column {}: not an event: {message}",
                e.column()
            )
        })?;
        let Some(id) = line.id.filter(|id| !id.is_empty()) else {
            bail!("line {number}: the event has no `id`");
        };
        let Some(event_type) = line.event_type.filter(|t| !t.is_empty()) else {
            bail!("line {number}: the event has no `type`");
        };
        let timestamp = match &line.timestamp {
            None => now,
            Some(text) => text.parse::<Timestamp>().with_context(|| {
                format!("line {number}: `timestamp` {text:?} is not an RFC 3339 time")
            })?,
        };
        // Duplicates count once, as on the server: the first one wins.
        if !seen.insert(id) {
            stats.duplicates += 1;
            continue;
        }
        if customer.is_some_and(|c| line.customer.as_deref() != Some(c)) {
            continue;
        }
        if let Some(c) = line.customer {
            stats.customers.insert(c);
        }
        let subject = line.subject.or_else(|| {
            line.properties
                .get("user")
                .and_then(|u| u.as_str())
                .map(Into::into)
        });
        events.push(FileEvent {
            line: number,
            event: Event {
                event_type,
                timestamp,
                subject,
                properties: line.properties,
            },
        });
    }
    Ok((events, stats))
}

/// The period's usage per meter, and how many events fell outside the period and so were not
/// counted (a level set before the period counts: the period starts at that level). The
/// computation is core's ([`usage_from_events`]); this names the file's line of a bad event.
pub fn aggregate(
    catalog: &Catalog,
    events: &[FileEvent],
    period: &BillingPeriod,
) -> anyhow::Result<(BTreeMap<String, MeterUsage>, usize)> {
    match usage_from_events(catalog, events.iter().map(|fe| &fe.event), period) {
        Ok(EventsUsage {
            usage,
            outside_period,
        }) => Ok((usage, outside_period)),
        Err(EventsUsageError::Event { index, source }) => {
            let line = events.get(index).map_or(0, |fe| fe.line);
            Err(anyhow::Error::new(source).context(format!("line {line}")))
        }
        Err(e) => Err(e.into()),
    }
}

/// The earliest event's time: the default period is the month it falls in.
pub fn earliest(events: &[FileEvent]) -> Option<Timestamp> {
    events.iter().map(|e| e.event.timestamp).min()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;

    const CATALOG: &str = r#"
currency: USD
meters:
  gens: { event: gen, aggregation: count, group_by: [tier] }
  peak: { event: load, aggregation: max, property: n }
  last: { event: load, aggregation: latest, property: n }
  users: { event: gen, aggregation: unique_count, property: user }
  gb: { event: snap, aggregation: time_weighted, property: gb, per: month }
  minutes: { event: job, aggregation: sum, property: ms, divide_by: 60000 }
plans:
  free: {}
"#;

    fn november() -> BillingPeriod {
        BillingPeriod::new(
            "2026-11-01T00:00:00Z".parse().unwrap(),
            "2026-12-01T00:00:00Z".parse().unwrap(),
        )
        .unwrap()
    }

    fn usage(text: &str) -> (BTreeMap<String, MeterUsage>, usize) {
        let catalog = tollgate_core::catalog::parse_yaml(CATALOG).unwrap();
        let now = "2026-11-20T00:00:00Z".parse().unwrap();
        let (events, _) = parse(text, None, now).unwrap();
        aggregate(&catalog, &events, &november()).unwrap()
    }

    fn line(id: &str, kind: &str, at: &str, props: &str) -> String {
        format!(r#"{{"id":"{id}","type":"{kind}","timestamp":"{at}","properties":{props}}}"#)
    }

    #[test]
    fn every_aggregation_matches_the_server() {
        let text = [
            line(
                "1",
                "gen",
                "2026-11-02T00:00:00Z",
                r#"{"tier":"T0","user":"a"}"#,
            ),
            line(
                "2",
                "gen",
                "2026-11-03T00:00:00Z",
                r#"{"tier":"T0","user":"b"}"#,
            ),
            line(
                "3",
                "gen",
                "2026-11-03T00:00:00Z",
                r#"{"tier":"T2","user":"a"}"#,
            ),
            line("4", "load", "2026-11-05T00:00:00Z", r#"{"n":7}"#),
            line("5", "load", "2026-11-04T00:00:00Z", r#"{"n":9}"#),
            line("6", "snap", "2026-10-20T00:00:00Z", r#"{"gb":30}"#),
            line("7", "snap", "2026-11-16T00:00:00Z", r#"{"gb":60}"#),
            line("8", "job", "2026-11-06T00:00:00Z", r#"{"ms":5400000}"#),
            line(
                "9",
                "gen",
                "2026-12-01T00:00:00Z",
                r#"{"tier":"T0","user":"z"}"#,
            ),
        ]
        .join("\n");
        let (u, outside) = usage(&text);
        assert_eq!(
            outside, 1,
            "the December event; the October level carries in"
        );
        assert_eq!(u["gens"].total, Decimal::from(3));
        assert_eq!(u["gens"].groups.len(), 2);
        assert_eq!(u["peak"].total, Decimal::from(9));
        assert_eq!(
            u["last"].total,
            Decimal::from(7),
            "latest by time, not by line"
        );
        assert_eq!(u["users"].total, Decimal::from(2));
        assert_eq!(
            u["gb"].total,
            Decimal::from(45),
            "30 GB half the month, 60 GB the other"
        );
        assert_eq!(u["minutes"].total, Decimal::from(90));
    }

    #[test]
    fn duplicates_count_once_and_bad_lines_name_their_number() {
        let text = [
            line("a", "gen", "2026-11-02T00:00:00Z", r#"{"tier":"T0"}"#),
            line("a", "gen", "2026-11-02T00:00:00Z", r#"{"tier":"T0"}"#),
        ]
        .join("\n");
        let now = "2026-11-20T00:00:00Z".parse().unwrap();
        let (events, stats) = parse(&text, None, now).unwrap();
        assert_eq!((events.len(), stats.duplicates), (1, 1));

        let bad = format!(
            "{}\n\n{{not json",
            line("a", "gen", "2026-11-02T00:00:00Z", "{}")
        );
        let err = format!("{:#}", parse(&bad, None, now).unwrap_err());
        assert!(
            err.starts_with("line 3, column 2: not an event: key must be a string"),
            "{err}"
        );
        let err = format!("{:#}", parse(r#"{"type":"gen"}"#, None, now).unwrap_err());
        assert_eq!(err, "line 1: the event has no `id`");
        let nan = line("b", "load", "2026-11-02T00:00:00Z", r#"{"n":"lots"}"#);
        let catalog = tollgate_core::catalog::parse_yaml(CATALOG).unwrap();
        let (events, _) = parse(&nan, None, now).unwrap();
        let err = format!(
            "{:#}",
            aggregate(&catalog, &events, &november()).unwrap_err()
        );
        assert!(
            err.starts_with(
                "line 1: property `n` of meter `peak`: \"lots\" is not a decimal number"
            ),
            "{err}"
        );
    }

    #[test]
    fn a_customer_filter_keeps_only_that_customers_events() {
        let text = r#"{"id":"1","customer":"acme","type":"gen","properties":{"tier":"T0"}}
{"id":"2","customer":"initech","type":"gen","properties":{"tier":"T0"}}"#;
        let now = "2026-11-20T00:00:00Z".parse().unwrap();
        let (events, stats) = parse(text, Some("acme"), now).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].line, 1);
        assert_eq!(stats.customers.into_iter().collect::<Vec<_>>(), ["acme"]);
    }
}
