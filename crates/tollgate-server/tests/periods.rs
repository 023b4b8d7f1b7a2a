//! Billing periods end to end, on test clocks against a real server, on SQLite and PostgreSQL:
//! calendar and anniversary anchors over 14 months, a quarterly plan, an upgrade of a plan billed
//! in arrears, Lexecon case 7. Every expected amount is computed here from the catalog's prices
//! and day counts (docs/BILLING-PERIODS.md states the rules), never copied from the output.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

mod common;

use common::{TestServer, Workspace, backend_tests};
use jiff::{Timestamp, ToSpan, civil::Date, tz::TimeZone};
use reqwest::Method;
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{Value, json};

const CATALOG: &str = r#"
currency: USD
plans:
  monthly:
    base: { amount: "99.00", interval: month }
  monthly_anniversary:
    base: { amount: "99.00", interval: month }
    billing: anniversary
  quarterly:
    base: { amount: "270.00", interval: quarter }
  arrears_a:
    base: { amount: "100.00", interval: month, timing: in_arrears }
  arrears_b:
    base: { amount: "200.00", interval: month, timing: in_arrears }
    upgrades: always_invoice
  arrears_c:
    base: { amount: "200.00", interval: month, timing: in_arrears }
"#;

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn midnight(d: Date) -> Timestamp {
    d.to_zoned(TimeZone::UTC).unwrap().timestamp()
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn money(v: &Value) -> Decimal {
    dec(v.as_str().unwrap_or_else(|| panic!("not an amount: {v}")))
}

/// `fee x covered / whole` seconds, rounded toward zero to cents: the documented rule for a
/// prorated first period.
fn prorated(
    fee: Decimal,
    covered: (Timestamp, Timestamp),
    whole: (Timestamp, Timestamp),
) -> Decimal {
    let secs = |(a, b): (Timestamp, Timestamp)| Decimal::from(b.as_second() - a.as_second());
    (fee * secs(covered) / secs(whole)).round_dp_with_strategy(2, RoundingStrategy::ToZero)
}

async fn subscriber(ws: &Workspace<'_>, id: &str, plan: &str, start: &str) -> String {
    let clock = ws.test_clock(start).await;
    ws.post("/v1/customers", json!({"id": id, "test_clock": clock}))
        .await;
    ws.post(
        &format!("/v1/customers/{id}/subscriptions"),
        json!({"plan": plan, "trial": false}),
    )
    .await;
    clock
}

async fn bill_run(ws: &Workspace<'_>) -> Value {
    let report = ws.post("/v1/bill_runs", json!({})).await;
    assert_eq!(report["errors"], json!([]), "{report}");
    report
}

async fn invoices(ws: &Workspace<'_>, customer: &str) -> Vec<Value> {
    let (_, list) = ws
        .call(
            Method::GET,
            &format!("/v1/customers/{customer}/invoices?limit=100"),
            None,
        )
        .await;
    let mut all = list["data"].as_array().unwrap().clone();
    all.sort_by_key(|i| i["number"].as_str().unwrap().to_owned());
    all
}

fn period_of(invoice: &Value) -> (Timestamp, Timestamp) {
    (
        ts(invoice["period_start"].as_str().unwrap()),
        ts(invoice["period_end"].as_str().unwrap()),
    )
}

/// The base fee lines of an invoice, as (period start, period end, amount).
fn base_lines(invoice: &Value) -> Vec<(Timestamp, Timestamp, Decimal)> {
    invoice["lines"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["kind"]["type"] == "base")
        .map(|l| {
            (
                ts(l["period"]["start"].as_str().unwrap()),
                ts(l["period"]["end"].as_str().unwrap()),
                money(&l["amount"]),
            )
        })
        .collect()
}

async fn subscription_id(ws: &Workspace<'_>, customer: &str) -> String {
    let (_, subs) = ws
        .call(
            Method::GET,
            &format!("/v1/customers/{customer}/subscriptions"),
            None,
        )
        .await;
    subs["data"][0]["id"].as_str().unwrap().to_owned()
}

backend_tests! {
    /// Calendar billing, started on the 15th: the first invoice bills April 15 to May 1 only
    /// (16 of 30 days of 99.00), then one invoice on each 1st for the month ahead, 14 months.
    async fn calendar_monthly_started_mid_month_over_14_months(backend: Backend) {
        let server = TestServer::start(backend).await;
        let ws = server.workspace_with("periods", CATALOG).await;
        let start = ts("2026-04-15T00:00:00Z");
        let clock = subscriber(&ws, "cal", "monthly", "2026-04-15T00:00:00Z").await;
        bill_run(&ws).await;
        let first_of = |n: i32| midnight(Date::new(2026, 4, 1).unwrap().checked_add(n.months()).unwrap());
        for month in 1..=14 {
            ws.advance(&clock, &first_of(month).to_string()).await;
            bill_run(&ws).await;
        }
        let all = invoices(&ws, "cal").await;
        assert_eq!(all.len(), 15, "an opening invoice and 14 closings: {all:#?}");
        let fee = dec("99.00");
        // The first: April 15 to May 1, prorated; nothing before the start.
        let first = prorated(fee, (start, first_of(1)), (first_of(0), first_of(1)));
        assert_eq!(first, dec("52.80"), "16 of 30 days");
        assert_eq!(period_of(&all[0]), (start, first_of(1)));
        assert_eq!(base_lines(&all[0]), vec![(start, first_of(1), first)]);
        assert_eq!(money(&all[0]["total"]), first);
        // Each 1st: closes the month just gone, bills the next one whole in advance.
        for (i, invoice) in all.iter().enumerate().skip(1) {
            let month = i32::try_from(i).unwrap();
            let closing_start = if i == 1 { start } else { first_of(month - 1) };
            assert_eq!(period_of(invoice), (closing_start, first_of(month)), "{invoice:#}");
            assert_eq!(
                base_lines(invoice),
                vec![(first_of(month), first_of(month + 1), fee)],
                "{invoice:#}"
            );
            assert_eq!(money(&invoice["total"]), fee, "{invoice:#}");
        }
        let total: Decimal = all.iter().map(|i| money(&i["total"])).sum();
        assert_eq!(total, first + fee * Decimal::from(14));
    }

    /// Anniversary billing from January 31: periods end on the 28th of February, then on the
    /// last day of each month that has no 31st, and on the 31st again when it has one; every
    /// period is whole and bills 99.00.
    async fn anniversary_monthly_from_the_31st_over_14_months(backend: Backend) {
        let server = TestServer::start(backend).await;
        let ws = server.workspace_with("periods", CATALOG).await;
        let clock = subscriber(&ws, "ann", "monthly_anniversary", "2026-01-31T09:30:00Z").await;
        bill_run(&ws).await;
        let anchor = Date::new(2026, 1, 31).unwrap().at(9, 30, 0, 0);
        // Months added to the anchor itself (jiff's constrained arithmetic: Jan 31 + 1 month is
        // Feb 28), never to the previous boundary.
        let boundary = |n: i32| {
            anchor
                .checked_add(n.months())
                .unwrap()
                .to_zoned(TimeZone::UTC)
                .unwrap()
                .timestamp()
        };
        assert_eq!(boundary(1), ts("2026-02-28T09:30:00Z"));
        assert_eq!(boundary(2), ts("2026-03-31T09:30:00Z"));
        for n in 1..=14 {
            ws.advance(&clock, &boundary(n).to_string()).await;
            bill_run(&ws).await;
        }
        let all = invoices(&ws, "ann").await;
        assert_eq!(all.len(), 15, "{all:#?}");
        assert_eq!(
            base_lines(&all[0]),
            vec![(boundary(0), boundary(1), dec("99.00"))]
        );
        for (i, invoice) in all.iter().enumerate().skip(1) {
            let n = i32::try_from(i).unwrap();
            assert_eq!(period_of(invoice), (boundary(n - 1), boundary(n)));
            assert_eq!(
                base_lines(invoice),
                vec![(boundary(n), boundary(n + 1), dec("99.00"))],
                "{invoice:#}"
            );
            assert_eq!(money(&invoice["total"]), dec("99.00"));
        }
    }

    /// A quarterly plan on calendar billing started on November 20: the first invoice bills
    /// November 20 to January 1 as 42 of the 92 days of the quarter that began October 1, then
    /// one invoice per quarter (January, April, July).
    async fn quarterly_plan(backend: Backend) {
        let server = TestServer::start(backend).await;
        let ws = server.workspace_with("periods", CATALOG).await;
        let clock = subscriber(&ws, "q", "quarterly", "2026-11-20T00:00:00Z").await;
        bill_run(&ws).await;
        for at in ["2027-01-01", "2027-02-01", "2027-04-01", "2027-07-01"] {
            ws.advance(&clock, &format!("{at}T00:00:00Z")).await;
            bill_run(&ws).await;
        }
        let all = invoices(&ws, "q").await;
        assert_eq!(all.len(), 4, "February 1 is inside a quarter: {all:#?}");
        let fee = dec("270.00");
        let (start, q4, q1) = (
            ts("2026-11-20T00:00:00Z"),
            ts("2026-10-01T00:00:00Z"),
            ts("2027-01-01T00:00:00Z"),
        );
        let first = prorated(fee, (start, q1), (q4, q1));
        assert_eq!(first, dec("123.26"), "270.00 x 42 / 92, toward zero");
        assert_eq!(base_lines(&all[0]), vec![(start, q1, first)]);
        let quarters = ["2027-01-01", "2027-04-01", "2027-07-01", "2027-10-01"].map(|d| ts(&format!("{d}T00:00:00Z")));
        for (i, invoice) in all.iter().enumerate().skip(1) {
            assert_eq!(
                base_lines(invoice),
                vec![(quarters[i - 1], quarters[i], fee)],
                "{invoice:#}"
            );
            assert_eq!(money(&invoice["total"]), fee);
        }
    }

    /// Lago's documented example of an upgrade billed in arrears: Plan A (100.00/month in
    /// arrears, calendar billing) from January 1, upgraded on January 15 to Plan B (200.00/month)
    /// whose catalog says `upgrades: always_invoice`: an invoice at once for A's 14 of 31 days
    /// (45.16), and at the end of January B's fee for the 17 days after the upgrade.
    async fn in_arrears_upgrade_invoiced_at_once(backend: Backend) {
        let server = TestServer::start(backend).await;
        let ws = server.workspace_with("periods", CATALOG).await;
        let clock = subscriber(&ws, "up", "arrears_a", "2027-01-01T00:00:00Z").await;
        bill_run(&ws).await;
        let opening = invoices(&ws, "up").await;
        assert_eq!(opening.len(), 1);
        assert_eq!(money(&opening[0]["total"]), Decimal::ZERO, "nothing in advance");
        ws.advance(&clock, "2027-01-15T00:00:00Z").await;
        let sub = subscription_id(&ws, "up").await;
        ws.post(
            &format!("/v1/customers/up/subscriptions/{sub}/change"),
            json!({"plan": "arrears_b"}),
        )
        .await;
        let (jan, feb) = (ts("2027-01-01T00:00:00Z"), ts("2027-02-01T00:00:00Z"));
        let used_a = (dec("100.00") * Decimal::from(14) / Decimal::from(31)).round_dp(2);
        assert_eq!(used_a, dec("45.16"), "Lago's figure");
        let all = invoices(&ws, "up").await;
        assert_eq!(all.len(), 2, "the upgrade is invoiced at once: {all:#?}");
        assert_eq!(money(&all[1]["total"]), used_a, "{:#}", all[1]);
        assert_eq!(all[1]["created_at"], "2027-01-15T00:00:00Z", "on the customer's clock");

        ws.advance(&clock, "2027-02-01T00:00:00Z").await;
        bill_run(&ws).await;
        let all = invoices(&ws, "up").await;
        assert_eq!(all.len(), 3, "{all:#?}");
        let january = &all[2];
        assert_eq!(period_of(january), (jan, feb));
        let credit = -(dec("200.00") * Decimal::from(14) / Decimal::from(31)).round_dp(2);
        assert_eq!(base_lines(january), vec![(jan, feb, dec("200.00"))]);
        let b_after = dec("200.00") + credit;
        assert_eq!(
            b_after,
            (dec("200.00") * Decimal::from(17) / Decimal::from(31)).round_dp(2),
            "B for the 17 days after the upgrade"
        );
        assert_eq!(money(&january["total"]), b_after, "{january:#}");
    }

    /// The same upgrade to a plan without `always_invoice`: nothing at once, and the invoice
    /// that closes January carries A's used days, B's fee and the credit for B's days before
    /// the upgrade.
    async fn in_arrears_upgrade_on_the_next_invoice(backend: Backend) {
        let server = TestServer::start(backend).await;
        let ws = server.workspace_with("periods", CATALOG).await;
        let clock = subscriber(&ws, "up", "arrears_a", "2027-01-01T00:00:00Z").await;
        bill_run(&ws).await;
        ws.advance(&clock, "2027-01-15T00:00:00Z").await;
        let sub = subscription_id(&ws, "up").await;
        ws.post(
            &format!("/v1/customers/up/subscriptions/{sub}/change"),
            json!({"plan": "arrears_c"}),
        )
        .await;
        assert_eq!(invoices(&ws, "up").await.len(), 1, "nothing invoiced at once");
        ws.advance(&clock, "2027-02-01T00:00:00Z").await;
        bill_run(&ws).await;
        let all = invoices(&ws, "up").await;
        assert_eq!(all.len(), 2, "{all:#?}");
        let part = |fee: &str, days: i64| (dec(fee) * Decimal::from(days) / Decimal::from(31)).round_dp(2);
        let expected = part("100.00", 14) + dec("200.00") - part("200.00", 14);
        assert_eq!(money(&all[1]["total"]), expected, "{:#}", all[1]);
        assert_eq!(expected, dec("154.84"));
    }

    /// Lexecon case 7: the annual `enterprise_starter` from 2026-11-01 is one invoice of
    /// $10,000.00 covering 2026-11-01 to 2027-11-01, and nothing more within the year.
    async fn lexecon_7_annual_plan(backend: Backend) {
        let server = TestServer::start(backend).await;
        let ws = server.workspace("lexecon.yaml").await;
        let clock = subscriber(&ws, "bigco", "enterprise_starter", "2026-11-01T00:00:00Z").await;
        bill_run(&ws).await;
        ws.advance(&clock, "2027-10-31T23:59:59Z").await;
        bill_run(&ws).await;
        let all = invoices(&ws, "bigco").await;
        assert_eq!(all.len(), 1, "{all:#?}");
        assert_eq!(
            period_of(&all[0]),
            (ts("2026-11-01T00:00:00Z"), ts("2027-11-01T00:00:00Z"))
        );
        assert_eq!(all[0]["total"], "10000.00");
        assert_eq!(all[0]["amount_due"], "10000.00");
    }
}
