//! `tollgate events import FILE`: usage events from a CSV or NDJSON file (a cloud provider's
//! cost export, a log extract) into a server, in batches, with progress on stderr and a report
//! of every rejected row.
//!
//! Each row becomes one event of `POST /v1/events`. Its fields come from the row through
//! `--map FIELD=COLUMN` (`id`, `customer`, `type`, `timestamp`, `subject`, `property.NAME`), or
//! from constants (`--customer`, `--type`). Without an `id` column, the id is derived from the
//! row's content (customer, type, timestamp, subject, properties) and how many identical rows
//! came before it in the file, so importing the same file again, or a file that repeats some of
//! its rows, counts nothing twice: the server answers those events `duplicate`.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Subcommand, ValueEnum};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use tollgate_client::{Client, Event};

use crate::InputError;
use crate::catalog_cmd::ServerArgs;

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Import usage events from a CSV or NDJSON file into a server.
    Import(ImportArgs),
    /// List the monthly partitions of the events table (PostgreSQL), offline against the store.
    Partitions(crate::partitions_cmd::ListArgs),
    /// Detach an ended month's partition of the events table (PostgreSQL): its events leave
    /// every read, their ids keep refusing duplicates; then archive and drop it.
    DetachPartition(crate::partitions_cmd::DetachArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Csv,
    Ndjson,
}

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The file: CSV with a header row, or NDJSON (one JSON object per line).
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// The file's format; by default from its extension (`.csv`, else NDJSON).
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// Where a field of the event comes from: `customer=account_id`, `timestamp=usage_date`,
    /// `property.amount_usd=cost`. A field not mapped is read from the column of its own name
    /// (`id`, `customer`, `type`, `timestamp`, `subject`); NDJSON rows without any mapping may
    /// also carry `properties` as an object, as `POST /v1/events` takes it.
    #[arg(long = "map", value_name = "FIELD=COLUMN")]
    map: Vec<String>,
    /// The customer of every row (instead of a column).
    #[arg(long)]
    customer: Option<String>,
    /// The event type of every row (instead of a column), e.g. `cloud.cost`.
    #[arg(long = "type", value_name = "TYPE")]
    event_type: Option<String>,
    /// Events per request (at most 10,000).
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Write the rejected rows here (NDJSON: line, id, code, message) instead of stderr.
    #[arg(long, value_name = "FILE")]
    rejects: Option<PathBuf>,
    #[command(flatten)]
    server: ServerArgs,
}

/// Where each field of an event is read from.
#[derive(Debug, Default, PartialEq)]
struct Mapping {
    id: Option<String>,
    customer: Option<String>,
    event_type: Option<String>,
    timestamp: Option<String>,
    subject: Option<String>,
    /// Property name -> column.
    properties: BTreeMap<String, String>,
    /// `--map` was given at all: NDJSON's `properties` object is then not read whole.
    explicit: bool,
}

fn parse_mapping(pairs: &[String]) -> anyhow::Result<Mapping> {
    let mut m = Mapping {
        explicit: !pairs.is_empty(),
        ..Mapping::default()
    };
    for pair in pairs {
        let Some((field, column)) = pair.split_once('=') else {
            bail!("--map {pair:?}: write FIELD=COLUMN, e.g. customer=account_id");
        };
        let column = column.trim().to_owned();
        if column.is_empty() {
            bail!("--map {pair:?}: the column name is empty");
        }
        match field.trim() {
            "id" => m.id = Some(column),
            "customer" => m.customer = Some(column),
            "type" => m.event_type = Some(column),
            "timestamp" => m.timestamp = Some(column),
            "subject" => m.subject = Some(column),
            other => match other.strip_prefix("property.") {
                Some(name) if !name.is_empty() => {
                    m.properties.insert(name.to_owned(), column);
                }
                _ => bail!(
                    "--map {pair:?}: FIELD is one of id, customer, type, timestamp, subject, property.NAME"
                ),
            },
        }
    }
    Ok(m)
}

/// One row of the file as named values, with its line number (1-based, the header is line 1
/// of a CSV file).
struct Row {
    line: usize,
    values: Map<String, Value>,
}

/// A row that could not become an event, or that the server rejected.
#[derive(Debug, serde::Serialize)]
struct Rejected {
    line: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    code: String,
    message: String,
}

/// Reads a text value of `row` (a string, or a number written as text).
fn text(row: &Map<String, Value>, column: &str) -> Option<String> {
    match row.get(column)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// RFC 3339, or a date (midnight UTC), or `YYYY-MM-DD HH:MM:SS` in UTC: how cost exports write
/// their times.
fn parse_time(s: &str) -> Option<jiff::Timestamp> {
    if let Ok(t) = s.parse::<jiff::Timestamp>() {
        return Some(t);
    }
    if let Ok(dt) = s.parse::<jiff::civil::DateTime>() {
        return dt
            .to_zoned(jiff::tz::TimeZone::UTC)
            .ok()
            .map(|z| z.timestamp());
    }
    s.parse::<jiff::civil::Date>()
        .ok()
        .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC).ok())
        .map(|z| z.timestamp())
}

/// The event of one row, or why not. `seen` counts identical rows so far (derived ids).
fn event_of(
    row: &Row,
    map: &Mapping,
    args: &ImportArgs,
    seen: &mut HashMap<String, usize>,
) -> Result<Event, Rejected> {
    let reject = |code: &str, message: String| Rejected {
        line: row.line,
        id: None,
        code: code.to_owned(),
        message,
    };
    let column = |mapped: &Option<String>, own: &str| mapped.clone().unwrap_or_else(|| own.into());
    let customer = match &args.customer {
        Some(c) => c.clone(),
        None => text(&row.values, &column(&map.customer, "customer")).ok_or_else(|| {
            reject(
                "missing_customer",
                format!("no value in column {:?}", column(&map.customer, "customer")),
            )
        })?,
    };
    let kind = match &args.event_type {
        Some(t) => t.clone(),
        None => text(&row.values, &column(&map.event_type, "type")).ok_or_else(|| {
            reject(
                "missing_type",
                format!(
                    "no value in column {:?} (or pass --type)",
                    column(&map.event_type, "type")
                ),
            )
        })?,
    };
    let timestamp = match text(&row.values, &column(&map.timestamp, "timestamp")) {
        None => None,
        Some(s) => Some(parse_time(&s).ok_or_else(|| {
            reject(
                "invalid_timestamp",
                format!("{s:?} is not RFC 3339, a date, or YYYY-MM-DD HH:MM:SS"),
            )
        })?),
    };
    let subject = text(&row.values, &column(&map.subject, "subject"));
    let mut properties = Map::new();
    if !map.explicit
        && let Some(Value::Object(p)) = row.values.get("properties")
    {
        properties = p.clone();
    }
    for (name, col) in &map.properties {
        if let Some(v) = row.values.get(col).filter(|v| !v.is_null()) {
            let v = match v {
                Value::String(s) => Value::String(s.trim().to_owned()),
                other => other.clone(),
            };
            properties.insert(name.clone(), v);
        }
    }
    if let Some(subject) = &subject {
        properties
            .entry("subject")
            .or_insert_with(|| Value::String(subject.clone()));
    }
    let id = match text(&row.values, &column(&map.id, "id")) {
        Some(id) => id,
        None => {
            let content =
                serde_json::json!([customer, kind, timestamp, subject, properties]).to_string();
            let n = seen.entry(content.clone()).or_insert(0);
            *n += 1;
            let digest = Sha256::digest(format!("{content}#{n}").as_bytes());
            let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
            format!("imp_{hex}")
        }
    };
    Ok(Event {
        id,
        customer,
        kind,
        timestamp,
        properties,
    })
}

/// Every row of the file, or the first reason it cannot be read at all.
fn read_rows(path: &Path, format: Format) -> anyhow::Result<Vec<Row>> {
    let file = std::fs::File::open(path).map_err(|source| InputError {
        path: path.to_owned(),
        source,
    })?;
    let mut rows = Vec::new();
    match format {
        Format::Csv => {
            let mut reader = csv::ReaderBuilder::new()
                .trim(csv::Trim::Headers)
                .flexible(false)
                .from_reader(file);
            let headers = reader
                .headers()
                .with_context(|| format!("{}: cannot read the header row", path.display()))?
                .clone();
            for (i, record) in reader.records().enumerate() {
                let record =
                    record.with_context(|| format!("{}: line {}", path.display(), i + 2))?;
                let values = headers
                    .iter()
                    .zip(record.iter())
                    .map(|(h, v)| (h.to_owned(), Value::String(v.to_owned())))
                    .collect();
                rows.push(Row {
                    line: i + 2,
                    values,
                });
            }
        }
        Format::Ndjson => {
            for (i, line) in BufReader::new(file).lines().enumerate() {
                let line = line.with_context(|| format!("{}: line {}", path.display(), i + 1))?;
                if line.trim().is_empty() {
                    continue;
                }
                let values = match serde_json::from_str::<Value>(&line) {
                    Ok(Value::Object(o)) => o,
                    // Kept as a row with nothing in it: reported as rejected with its line.
                    _ => {
                        let mut o = Map::new();
                        o.insert("__unreadable".into(), Value::Bool(true));
                        o
                    }
                };
                rows.push(Row {
                    line: i + 1,
                    values,
                });
            }
        }
    }
    Ok(rows)
}

pub async fn run(command: EventsCommand) -> anyhow::Result<ExitCode> {
    match command {
        EventsCommand::Import(args) => import(args).await,
        EventsCommand::Partitions(args) => crate::partitions_cmd::list(args).await,
        EventsCommand::DetachPartition(args) => crate::partitions_cmd::detach(args).await,
    }
}

async fn import(args: ImportArgs) -> anyhow::Result<ExitCode> {
    if !(1..=10_000).contains(&args.batch) {
        bail!("--batch must be between 1 and 10000, not {}", args.batch);
    }
    let map = parse_mapping(&args.map)?;
    let format = args.format.unwrap_or_else(|| {
        let csv = args
            .file
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
        if csv { Format::Csv } else { Format::Ndjson }
    });
    let client = args.server.client()?;
    let rows = read_rows(&args.file, format)?;
    let total = rows.len();

    let mut rejected: Vec<Rejected> = Vec::new();
    let mut events: Vec<(usize, Event)> = Vec::with_capacity(total);
    let mut seen = HashMap::new();
    for row in &rows {
        if row.values.contains_key("__unreadable") {
            rejected.push(Rejected {
                line: row.line,
                id: None,
                code: "invalid_json".into(),
                message: "the line is not a JSON object".into(),
            });
            continue;
        }
        match event_of(row, &map, &args, &mut seen) {
            Ok(e) => events.push((row.line, e)),
            Err(r) => rejected.push(r),
        }
    }

    let (mut accepted, mut duplicates) = (0usize, 0usize);
    let progress = std::io::stderr().is_terminal();
    let mut sent = 0usize;
    for chunk in events.chunks(args.batch) {
        let batch: Vec<Event> = chunk.iter().map(|(_, e)| e.clone()).collect();
        let report = send(&client, &batch).await?;
        accepted += report.accepted;
        duplicates += report.duplicates;
        for r in report.results.iter().filter(|r| r.status == "rejected") {
            let line = chunk.get(r.index).map_or(0, |(line, _)| *line);
            rejected.push(Rejected {
                line,
                id: r.id.clone(),
                code: r.code.clone().unwrap_or_default(),
                message: r.message.clone().unwrap_or_default(),
            });
        }
        sent += chunk.len();
        if progress {
            eprint!("\r{sent}/{} events sent", events.len());
        }
    }
    if progress {
        eprintln!();
    }
    rejected.sort_by_key(|r| r.line);
    report_rejects(&args, &rejected)?;
    println!(
        "{}: {total} rows, {accepted} accepted, {duplicates} duplicates, {} rejected",
        args.file.display(),
        rejected.len()
    );
    Ok(if rejected.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn send(client: &Client, batch: &[Event]) -> anyhow::Result<tollgate_client::IngestReport> {
    Ok(client.send_events(batch).await?)
}

fn report_rejects(args: &ImportArgs, rejected: &[Rejected]) -> anyhow::Result<()> {
    if rejected.is_empty() {
        return Ok(());
    }
    match &args.rejects {
        Some(path) => {
            let mut out = std::io::BufWriter::new(
                std::fs::File::create(path)
                    .with_context(|| format!("cannot write {}", path.display()))?,
            );
            for r in rejected {
                serde_json::to_writer(&mut out, r)?;
                out.write_all(b"\n")?;
            }
            out.flush()?;
            eprintln!(
                "{} rejected rows written to {}",
                rejected.len(),
                path.display()
            );
        }
        None => {
            for r in rejected {
                eprintln!("line {}: {} [{}]", r.line, r.message, r.code);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mappings_name_fields_and_properties_and_refuse_the_rest() {
        let m =
            parse_mapping(&["customer=account".into(), "property.amount_usd=cost".into()]).unwrap();
        assert_eq!(m.customer.as_deref(), Some("account"));
        assert_eq!(m.properties["amount_usd"], "cost");
        assert!(parse_mapping(&["colour=x".into()]).is_err());
        assert!(parse_mapping(&["customer".into()]).is_err());
        assert!(parse_mapping(&["property.=x".into()]).is_err());
    }

    #[test]
    fn times_as_cost_exports_write_them() {
        let t = |s: &str| parse_time(s).map(|t| t.to_string());
        assert_eq!(
            t("2026-11-05T10:00:00Z").as_deref(),
            Some("2026-11-05T10:00:00Z")
        );
        assert_eq!(t("2026-11-05").as_deref(), Some("2026-11-05T00:00:00Z"));
        assert_eq!(
            t("2026-11-05 10:30:00").as_deref(),
            Some("2026-11-05T10:30:00Z")
        );
        assert_eq!(t("05/11/2026"), None);
    }
}
