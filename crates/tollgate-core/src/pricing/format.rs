//! Numbers as they appear in line descriptions: `12,345` units, `5.00` per block, `2%`.
//!
//! Descriptions are part of the product (a customer reads them to understand a charge), so they
//! are deterministic and never show float artefacts or 28-digit decimals.

use rust_decimal::Decimal;

/// A quantity: trailing zeros dropped, thousands separated (`12,345`, `75.5`).
pub(crate) fn qty(value: Decimal) -> String {
    group_thousands(&value.normalize().to_string())
}

/// A price or amount: at least two decimals, more when the catalog wrote more (`5.00`, `0.001`,
/// `10,000.00`).
pub(crate) fn price(value: Decimal) -> String {
    let mut v = value.normalize();
    if v.scale() < 2 {
        v.rescale(2);
    }
    group_thousands(&v.to_string())
}

/// A percentage as written in the catalog (`2%`, `12.5%`).
pub(crate) fn percent(value: Decimal) -> String {
    format!("{}%", value.normalize())
}

/// A fraction of a period: `15 of 30 days` for whole days, seconds otherwise.
pub(crate) fn share_of_period(used_seconds: i64, period_seconds: i64) -> String {
    if used_seconds % 86_400 == 0 && period_seconds % 86_400 == 0 {
        format!(
            "{} of {} days",
            used_seconds / 86_400,
            period_seconds / 86_400
        )
    } else {
        format!(
            "{} of {} seconds",
            qty(Decimal::from(used_seconds)),
            qty(Decimal::from(period_seconds))
        )
    }
}

fn group_thousands(plain: &str) -> String {
    let (sign, rest) = match plain.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", plain),
    };
    let (int, frac) = match rest.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (rest, None),
    };
    let mut out = String::with_capacity(plain.len() + int.len() / 3);
    out.push_str(sign);
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
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
    use rust_decimal_macros::dec;

    #[test]
    fn formats_like_an_invoice() {
        assert_eq!(qty(dec!(12345)), "12,345");
        assert_eq!(qty(dec!(1000000.50)), "1,000,000.5");
        assert_eq!(qty(dec!(-1234)), "-1,234");
        assert_eq!(qty(dec!(999)), "999");
        assert_eq!(price(dec!(5)), "5.00");
        assert_eq!(price(dec!(0.001)), "0.001");
        assert_eq!(price(dec!(10000.000)), "10,000.00");
        assert_eq!(percent(dec!(2.0)), "2%");
        assert_eq!(share_of_period(15 * 86_400, 30 * 86_400), "15 of 30 days");
        assert_eq!(share_of_period(90, 3600), "90 of 3,600 seconds");
    }
}
