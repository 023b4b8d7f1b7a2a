//! The smaller sections of a catalog: coupons, the referral program, usage alerts, policies.

use indexmap::IndexMap;
use rust_decimal::Decimal;

use super::model::{Coupon, CouponDuration, Discount, Meter, Policies, ReferralProgram};
use super::node::Node;
use super::parse::Section;
use super::read::{Cx, index, join};

pub(crate) fn coupon(cx: &mut Cx, path: &str, node: &Node) -> Option<Coupon> {
    let start = cx.count();
    let f = cx.fields(
        path,
        node,
        &[
            "name",
            "percent_off",
            "amount_off",
            "duration",
            "currencies",
        ],
    )?;
    let name = f.opt(cx, "name", Cx::string);
    let percent = f.opt(cx, "percent_off", Cx::percent);
    let amount = f.opt(cx, "amount_off", Cx::amount);
    let duration = f.opt(cx, "duration", coupon_duration).unwrap_or_default();
    let discount = match (f.has("percent_off"), f.has("amount_off")) {
        (true, true) => {
            cx.error(path, "give `percent_off` or `amount_off`, not both");
            None
        }
        (false, false) => {
            cx.error(path, "give the discount: `percent_off` or `amount_off`");
            None
        }
        _ => percent
            .map(Discount::PercentOff)
            .or(amount.map(Discount::AmountOff)),
    };
    let currencies = f
        .opt(cx, "currencies", super::parse::currency_amounts)
        .unwrap_or_default();
    if f.has("currencies") && f.has("percent_off") {
        cx.error(
            &f.path_of("currencies"),
            "a percentage is the same in every currency: only an `amount_off` coupon has `currencies`",
        );
    }
    (cx.count() == start).then_some(())?;
    Some(Coupon {
        name,
        discount: discount?,
        duration,
        currencies,
    })
}

/// `once`, `forever`, or a number of invoices.
fn coupon_duration(cx: &mut Cx, path: &str, node: &Node) -> Option<CouponDuration> {
    match node {
        Node::Number(_) => cx.integer(path, node, 1).map(CouponDuration::Invoices),
        _ => cx.choice(
            path,
            node,
            &[
                ("once", CouponDuration::Once),
                ("forever", CouponDuration::Forever),
            ],
        ),
    }
}

pub(crate) fn referrals(
    cx: &mut Cx,
    path: &str,
    node: &Node,
    coupons: &Section<Coupon>,
) -> Option<ReferralProgram> {
    let start = cx.count();
    let f = cx.fields(path, node, &["referred", "referrer"])?;
    let exists = |k: &str| coupons.contains_key(k);
    let referred = f.req(cx, "referred", |cx, p, n| {
        cx.reference(p, n, "coupon", exists)
    });
    let referrer = f.req(cx, "referrer", |cx, p, n| {
        cx.reference(p, n, "coupon", exists)
    });
    (cx.count() == start).then_some(())?;
    Some(ReferralProgram {
        referred: referred?,
        referrer: referrer?,
    })
}

/// `alerts: { api_calls: [80, 100] }`: ascending percentages of the plan's allowance.
pub(crate) fn alerts(
    cx: &mut Cx,
    path: &str,
    node: &Node,
    meters: &Section<Meter>,
) -> Option<IndexMap<String, Vec<Decimal>>> {
    let entries = cx.map(path, node)?;
    let mut out = IndexMap::new();
    for (meter, value) in entries {
        let p = join(path, meter);
        if !meters.contains_key(meter) {
            cx.error(&p, format!("unknown meter `{meter}`"));
        }
        let Some(items) = cx.seq(&p, value) else {
            continue;
        };
        let mut thresholds: Vec<Decimal> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let ip = index(&p, i);
            let Some(percent) = cx.positive(&ip, item) else {
                continue;
            };
            if let Some(last) = thresholds.last().filter(|last| **last >= percent) {
                cx.error(
                    &ip,
                    format!("thresholds must ascend: {percent} is not above {last}"),
                );
            }
            thresholds.push(percent);
        }
        out.insert(meter.clone(), thresholds);
    }
    Some(out)
}

pub(crate) fn policies(cx: &mut Cx, path: &str, node: &Node) -> Option<Policies> {
    let f = cx.fields(
        path,
        node,
        &[
            "trial_reminder_days",
            "download_link_ttl",
            "refund_window_days",
            "dunning",
        ],
    )?;
    Some(Policies {
        trial_reminder_days: f.opt(cx, "trial_reminder_days", |cx, p, n| cx.integer(p, n, 1)),
        download_link_ttl: f.opt(cx, "download_link_ttl", Cx::duration),
        refund_window_days: f.opt(cx, "refund_window_days", |cx, p, n| cx.integer(p, n, 0)),
        dunning: f.opt(cx, "dunning", dunning),
    })
}

/// `dunning: {retry_after_days: [1, 3, 5], then: suspend}`: at most 10 retries, ascending days
/// from 1 to 60.
fn dunning(cx: &mut Cx, path: &str, node: &Node) -> Option<super::model::Dunning> {
    use super::model::{Dunning, DunningEnd};
    let f = cx.fields(path, node, &["retry_after_days", "then"])?;
    let days = f.req(cx, "retry_after_days", |cx, p, n| {
        let items = cx.seq(p, n)?;
        if items.len() > 10 {
            cx.error(p, "at most 10 retries");
        }
        let mut days: Vec<u32> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let ip = index(p, i);
            let Some(day) = cx.integer::<u32>(&ip, item, 1) else {
                continue;
            };
            if day > 60 {
                cx.error(&ip, "a retry is at most 60 days after the first failure");
            }
            if let Some(last) = days.last().filter(|last| **last >= day) {
                cx.error(&ip, format!("days must ascend: {day} is not after {last}"));
            }
            days.push(day);
        }
        Some(days)
    });
    let then = f.req(cx, "then", |cx, p, n| {
        cx.choice(
            p,
            n,
            &[
                ("suspend", DunningEnd::Suspend),
                ("cancel", DunningEnd::Cancel),
                ("nothing", DunningEnd::Nothing),
            ],
        )
    });
    Some(Dunning {
        retry_after_days: days?,
        then: then?,
    })
}
