//! `tollgate quote`: what one period of a plan would cost for some usage, offline.
//!
//! It prices with the same pure core the bill run uses (`tollgate_core::pricing::quote`), from a
//! catalog file, so a salesperson, a CI job or a pricing change review can answer "what would
//! this cost" with no server and no customer. Usage comes from `--usage` flags, from a file of
//! events in the API's shape (aggregated as the server aggregates them), or both.

mod events;
mod flags;

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use serde::Serialize;
use tollgate_core::catalog::{self, Catalog};
use tollgate_core::pricing::{self, Quote};

use self::flags::{AddonFlag, UsageFlag};
use crate::InputError;

/// Flags of `tollgate quote`.
#[derive(Debug, Clone, Args)]
#[command(after_help = "Examples:
  tollgate quote --catalog examples/catalogs/control-plane.yaml --plan starter \\
      --usage requests=130000 --quantity seat=3 --quantity policy_pack=1
  tollgate quote --catalog qlp.yaml --plan payg --usage 'generations[tier=T3,model=gpt-4]=2'
  tollgate quote --catalog qlp.yaml --plan starter --events usage.jsonl --period 2026-11 --json")]
pub struct QuoteArgs {
    /// The catalog file (YAML).
    #[arg(long, value_name = "FILE")]
    catalog: PathBuf,
    /// The plan to price.
    #[arg(long, value_name = "KEY")]
    plan: String,
    /// Usage of a meter for the period, in the unit it is billed in (after `divide_by`;
    /// GB-months for a time-weighted meter); `METER[dim=value,...]=QTY` for one group of a
    /// grouped meter. Repeatable; replaces what --events counted for that meter.
    #[arg(long = "usage", value_name = "METER=QTY")]
    usage: Vec<UsageFlag>,
    /// Quantity of an add-on (total units; the plan's included units are free). Repeatable.
    #[arg(long = "quantity", value_name = "ADDON=N")]
    quantity: Vec<AddonFlag>,
    /// Events, one JSON object per line, as items of `POST /v1/events`
    /// (`{"id", "customer", "type", "timestamp", "properties"}`); duplicate ids count once.
    #[arg(long, value_name = "FILE.jsonl")]
    events: Option<PathBuf>,
    /// Only count the events of this customer (default: every event in the file).
    #[arg(long, value_name = "ID", requires = "events")]
    customer: Option<String>,
    /// The billing period, a calendar month in UTC [default: the month of the earliest event,
    /// else the current month].
    #[arg(long, value_name = "YYYY-MM")]
    period: Option<String>,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
}

/// Runs the quote and prints it.
pub fn run(args: QuoteArgs) -> anyhow::Result<()> {
    let catalog = load_catalog(&args.catalog)?;
    flags::check_plan(&catalog, &args.plan)?;
    let addons = flags::addons(&catalog, &args.quantity)?;
    let explicit = flags::usage(&catalog, &args.usage)?;

    let now = jiff::Timestamp::now();
    let file_events = match &args.events {
        None => None,
        Some(path) => {
            let text = read(path)?;
            let (parsed, stats) = events::parse(&text, args.customer.as_deref(), now)
                .with_context(|| format!("{}", path.display()))?;
            Some((path, parsed, stats))
        }
    };
    let period = match (&args.period, &file_events) {
        (Some(text), _) => flags::month(text)?,
        (None, Some((_, parsed, _))) => flags::month_of(events::earliest(parsed).unwrap_or(now))?,
        (None, None) => flags::month_of(now)?,
    };

    let mut usage = Default::default();
    if let Some((path, parsed, stats)) = &file_events {
        let (counted, outside) = events::aggregate(&catalog, parsed, &period)
            .with_context(|| format!("{}", path.display()))?;
        usage = counted;
        // Notes go to stderr: stdout stays the quote (and valid JSON with --json).
        if stats.duplicates > 0 {
            eprintln!(
                "note: {} duplicate event id(s) counted once",
                stats.duplicates
            );
        }
        if outside > 0 {
            eprintln!("note: {outside} event(s) outside {period} not counted");
        }
        if args.customer.is_none() && stats.customers.len() > 1 {
            eprintln!(
                "note: events of {} customers counted together (--customer ID picks one)",
                stats.customers.len()
            );
        }
    }
    usage.extend(explicit);

    let quote = pricing::quote(&catalog, &args.plan, &usage, &addons, &period)
        .map_err(|e| explain(e, &usage))?;
    if args.json {
        let text = serde_json::to_string_pretty(&QuoteJson::from(&quote))
            .context("the quote does not serialize")?;
        println!("{text}");
    } else {
        print!("{}", table(&quote, &catalog, &args.catalog));
    }
    Ok(())
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).map_err(|source| {
        InputError {
            path: path.to_owned(),
            source,
        }
        .into()
    })
}

/// Reads and validates the catalog; every mistake is listed, as `catalog validate` does.
fn load_catalog(path: &Path) -> anyhow::Result<Catalog> {
    let text = read(path)?;
    catalog::parse_yaml(&text).map_err(|errors| {
        let list: Vec<String> = errors
            .0
            .iter()
            .map(|e| format!("\n  {}: {}", e.path, e.message))
            .collect();
        anyhow::anyhow!(
            "{} is not a valid catalog (`tollgate catalog validate` shows why):{}",
            path.display(),
            list.concat()
        )
    })
}

/// A pricing error, with a way out where one is known.
fn explain(
    error: pricing::PricingError,
    usage: &std::collections::BTreeMap<String, pricing::MeterUsage>,
) -> anyhow::Error {
    if let pricing::PricingError::UnpricedDimension {
        meter, dimension, ..
    } = &error
        && usage.get(meter).is_some_and(|u| u.groups.is_empty())
    {
        return anyhow::anyhow!(
            "meter {meter:?} is priced per {dimension}: give its usage per group, e.g. \
             --usage '{meter}[{dimension}=VALUE]=QTY', or use --events"
        );
    }
    anyhow::Error::new(error).context("cannot price the quote")
}

/// The `--json` output: amounts and quantities as decimal strings, so no consumer reads money
/// through a float.
#[derive(Debug, Serialize)]
struct QuoteJson {
    plan: String,
    currency: String,
    period: PeriodJson,
    total: String,
    lines: Vec<LineJson>,
}

#[derive(Debug, Serialize)]
struct PeriodJson {
    start: String,
    end: String,
}

#[derive(Debug, Serialize)]
struct LineJson {
    description: String,
    quantity: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    unit_price: Option<String>,
    amount: String,
}

impl From<&Quote> for QuoteJson {
    fn from(q: &Quote) -> Self {
        QuoteJson {
            plan: q.plan.clone(),
            currency: q.currency.to_string(),
            period: PeriodJson {
                start: q.period.start.to_string(),
                end: q.period.end.to_string(),
            },
            total: q.total.to_decimal().to_string(),
            lines: q
                .lines
                .iter()
                .map(|l| LineJson {
                    description: l.description.clone(),
                    quantity: l.quantity.normalize().to_string(),
                    unit_price: l.unit_price.map(|p| p.to_string()),
                    amount: l.amount.to_decimal().to_string(),
                })
                .collect(),
        }
    }
}

/// The human form: a heading, an aligned table of lines, the total with its currency.
fn table(q: &Quote, catalog: &Catalog, file: &Path) -> String {
    let name = catalog
        .plans
        .get(&q.plan)
        .and_then(|p| p.name.as_deref())
        .map(|n| format!(" ({n})"))
        .unwrap_or_default();
    let rows: Vec<[String; 3]> = q
        .lines
        .iter()
        .map(|l| {
            [
                l.description.clone(),
                thousands(&l.quantity.normalize().to_string()),
                thousands(&l.amount.to_decimal().to_string()),
            ]
        })
        .collect();
    let total = thousands(&q.total.to_decimal().to_string());
    let header = ["Description", "Quantity", "Amount"].map(String::from);
    let width = |i: usize, min: usize| {
        rows.iter()
            .chain([&header])
            .map(|r| r[i].chars().count())
            .max()
            .unwrap_or(0)
            .max(min)
    };
    let (w0, w1, w2) = (width(0, 5), width(1, 0), width(2, total.len()));
    let mut out = format!(
        "Quote: plan {}{name}, {} ({}), {}\n\n",
        q.plan,
        q.period,
        q.currency,
        file.display()
    );
    let row = |r: &[String; 3]| format!("  {:<w0$}  {:>w1$}  {:>w2$}\n", r[0], r[1], r[2]);
    out.push_str(&row(&header));
    for r in &rows {
        out.push_str(&row(r));
    }
    if rows.is_empty() {
        out.push_str("  (no charges)\n");
    }
    out.push_str(&format!("  {}\n", "-".repeat(w0 + w1 + w2 + 4)));
    out.push_str(&format!(
        "  {:<w0$}  {:>w1$}  {total:>w2$} {}\n",
        "Total", "", q.currency
    ));
    out
}

/// `1234567.5` as `1,234,567.5`: a table is read by people.
pub(crate) fn thousands(plain: &str) -> String {
    let (sign, rest) = plain
        .strip_prefix('-')
        .map_or(("", plain), |rest| ("-", rest));
    let (int, frac) = rest
        .split_once('.')
        .map_or((rest, None), |(i, f)| (i, Some(f)));
    let mut out = String::from(sign);
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if let Some(f) = frac {
        out.push('.');
        out.push_str(f);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands("1234567.50"), "1,234,567.50");
        assert_eq!(thousands("-1000"), "-1,000");
        assert_eq!(thousands("999"), "999");
    }

    #[test]
    fn the_control_plane_quote_reads_as_a_table_and_as_json() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../examples/catalogs/control-plane.yaml");
        let catalog = load_catalog(&path).unwrap();
        let usage = [(
            "requests".to_string(),
            pricing::MeterUsage::total(Decimal::from(130_000)),
        )]
        .into();
        let addons = [
            ("seat".to_string(), Decimal::from(3)),
            ("policy_pack".to_string(), Decimal::ONE),
        ]
        .into();
        let period = flags::month("2026-11").unwrap();
        let q = pricing::quote(&catalog, "starter", &usage, &addons, &period).unwrap();
        let text = table(&q, &catalog, &path);
        assert!(text.starts_with("Quote: plan starter (Starter), 2026-11-01 to 2026-11-30 (USD)"));
        let total = text.lines().last().unwrap();
        assert!(
            total.trim_start().starts_with("Total") && total.ends_with("465.00 USD"),
            "{text}"
        );
        let json = serde_json::to_value(QuoteJson::from(&q)).unwrap();
        assert_eq!(json["total"], "465.00");
        assert_eq!(json["period"]["start"], "2026-11-01T00:00:00Z");
    }
}
