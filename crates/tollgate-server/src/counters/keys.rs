//! Key names and the integer scale of shared counters.
//!
//! Every key of one customer carries the customer as a Redis Cluster hash tag
//! (`tollgate:<workspace>:{<customer>}:...`), so all keys one check touches live in one slot and
//! one Lua script can update them atomically, in Redis Cluster as on a single Redis. Workspace
//! and customer ids cannot contain braces (the API validates them), so the tag is always the
//! customer. Subjects are free text and therefore always the last part of a key.

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

use super::CounterError;

/// Quantities are stored in Redis as integers of millionths (6 decimal places): Redis integers
/// are exact 64-bit, Lua numbers are doubles, and decisions must not depend on float rounding.
/// The largest value a counter holds is `i64::MAX` millionths, about 9.2 x 10^12 units.
pub const SCALE_DIGITS: u32 = 6;
const SCALE: i64 = 1_000_000;

/// A quantity as scaled integer, rounded *up* to the scale: a use with more decimals than the
/// scale counts a little more, never less (the safe side for a limit).
pub fn scale_up(quantity: Decimal) -> Result<i64, CounterError> {
    quantity
        .checked_mul(Decimal::from(SCALE))
        .map(|d| d.ceil())
        .and_then(|d| d.to_i64())
        .ok_or(CounterError::OutOfRange { quantity })
}

/// A ceiling (the most a counter may hold for a use to fit) as scaled integer, rounded *down*;
/// ceilings past the range are clamped (no counter can reach them).
pub fn scale_down(ceiling: Decimal) -> i64 {
    match ceiling.checked_mul(Decimal::from(SCALE)).map(|d| d.floor()) {
        Some(d) => d.to_i64().unwrap_or(if d.is_sign_negative() {
            i64::MIN
        } else {
            i64::MAX
        }),
        None if ceiling.is_sign_negative() => i64::MIN,
        None => i64::MAX,
    }
}

/// A scaled integer back as a quantity.
pub fn unscale(value: i64) -> Decimal {
    Decimal::new(value, SCALE_DIGITS).normalize()
}

/// The key prefix of one customer: `tollgate:<workspace>:{<customer>}:`.
pub fn customer_prefix(workspace: &str, customer: &str) -> String {
    format!("tollgate:{workspace}:{{{customer}}}:")
}

/// The hash tag of a key (what is between its first `{` and the next `}`, as Redis Cluster reads
/// it): the customer for every counter key; the whole key when it has none.
pub fn hash_tag(key: &str) -> &str {
    key.find('{')
        .and_then(|open| {
            let rest = &key[open + 1..];
            rest.find('}')
                .filter(|&close| close > 0)
                .map(|close| &rest[..close])
        })
        .unwrap_or(key)
}

/// A request rate-limit counter for one aligned window (the window start is in the key, so the
/// count restarts with every window and a test clock moves it).
pub fn rate(
    prefix: &str,
    index: usize,
    window_seconds: u64,
    window_start: i64,
    subject: &str,
) -> String {
    format!("{prefix}r:{index}:{window_seconds}:{window_start}:{subject}")
}

/// The raw value of a meter in one billing period (all group keys together).
pub fn period(prefix: &str, period_start: i64, meter: &str, subject: &str) -> String {
    format!("{prefix}p:{period_start}:{meter}:{subject}")
}

/// The uses of a meter inside a rolling window of `len` seconds: the sorted set, and its total.
pub fn window(prefix: &str, len: u64, meter: &str, subject: &str) -> (String, String) {
    (
        format!("{prefix}w:{len}:{meter}:{subject}"),
        format!("{prefix}wt:{len}:{meter}:{subject}"),
    )
}

/// A window member: `<scaled quantity>|<tag>`. The quantity is in the member so that expiry can
/// take it off the total; the tag makes each use unique (`c<nonce>` for a check's reservation,
/// `e<event id>` for an ingested event, `s<n>` for an entry seeded from the store).
pub fn member(delta: i64, tag: &str) -> String {
    format!("{delta}|{tag}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaling_rounds_to_the_safe_side() {
        assert_eq!(scale_up(Decimal::new(15, 1)).unwrap(), 1_500_000);
        assert_eq!(scale_up(Decimal::new(1, 7)).unwrap(), 1);
        assert_eq!(scale_down(Decimal::new(19_999_999, 7)), 1_999_999);
        assert_eq!(scale_down(Decimal::MAX), i64::MAX);
        assert_eq!(unscale(2_500_000), Decimal::new(25, 1));
        assert!(scale_up(Decimal::MAX).is_err());
    }

    #[test]
    fn every_key_of_a_customer_shares_its_hash_tag() {
        let p = customer_prefix("ws_1", "acme");
        for key in [
            rate(&p, 0, 60, 120, "u{1}"),
            period(&p, 0, "runs", ""),
            window(&p, 5, "runs", "u").1,
        ] {
            assert!(key.starts_with("tollgate:ws_1:{acme}:"), "{key}");
            assert_eq!(hash_tag(&key), "acme");
        }
    }
}
