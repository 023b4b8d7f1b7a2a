//! Quantities as the outside world writes them: read from their text, exactly, and bounded.
//!
//! Every quantity that enters Tollgate (an event's property, a check's `quantity`, a gateway
//! cost) passes through [`parse`], so one hostile number cannot overflow a counter, disappear
//! by rounding, or lift a quota by being negative. The bounds are part of the API contract
//! (docs/API.md, "Limits").

// Money paths: no `as` casts (they truncate or wrap silently); use checked conversions.
#![deny(clippy::as_conversions)]

use crate::code::Code;
use rust_decimal::Decimal;

/// The largest magnitude of one quantity: 10^12. Shared counters hold scaled integers (six
/// decimals in an `i64`, about 9.2 x 10^12 units), and every aggregate stays far inside the
/// decimal range (7.9 x 10^28) for as many events as a period can hold.
pub const MAX_QUANTITY: Decimal = Decimal::from_parts(0xD4A5_1000, 0xE8, 0, false, 0);

/// Why a quantity was refused. Each has a stable code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    #[error("{0:?} is not a decimal number")]
    NotANumber(String),
    #[error("{0} is outside the accepted range (at most 1000000000000 in magnitude)")]
    OutOfRange(String),
    #[error("{0} has more precision than the engine keeps (28 decimal digits); it would round")]
    TooPrecise(String),
    #[error("{0} is negative; only corrections on a meter that allows them may be negative")]
    Negative(String),
}

impl QuantityError {
    /// A stable machine-readable code.
    pub fn code(&self) -> Code {
        match self {
            QuantityError::NotANumber(_) => Code::InvalidProperty,
            QuantityError::OutOfRange(_) => Code::QuantityOutOfRange,
            QuantityError::TooPrecise(_) => Code::QuantityTooPrecise,
            QuantityError::Negative(_) => Code::NegativeQuantity,
        }
    }
}

/// Reads a quantity from its text (`"12.5"`, `"1e3"`), exactly: a value that would round (more
/// than 28 decimal digits) or that lies beyond [`MAX_QUANTITY`] is refused, never clamped.
/// The sign is returned as written; callers decide whether a negative is allowed.
pub fn parse(text: &str) -> Result<Decimal, QuantityError> {
    bounded(parse_exact(text)?)
}

/// Reads a decimal from its text exactly, refusing what would round, with no bound on its
/// size beyond the decimal type's (prices, amounts).
pub fn parse_exact(text: &str) -> Result<Decimal, QuantityError> {
    let text = text.trim();
    let parsed = if text.contains(['e', 'E']) {
        scientific(text)
    } else {
        Decimal::from_str_exact(text).map_err(|e| match e {
            rust_decimal::Error::Underflow => QuantityError::TooPrecise(text.to_owned()),
            rust_decimal::Error::ExceedsMaximumPossibleValue
            | rust_decimal::Error::LessThanMinimumPossibleValue => {
                QuantityError::OutOfRange(text.to_owned())
            }
            _ if plain_digits(text) => QuantityError::OutOfRange(text.to_owned()),
            _ => QuantityError::NotANumber(text.to_owned()),
        })
    }?;
    Ok(parsed)
}

/// `123.45` with an optional sign: a number too long for the decimal type, not a typo.
fn plain_digits(text: &str) -> bool {
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    digits.bytes().any(|b| b.is_ascii_digit())
        && digits.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && digits.bytes().filter(|b| *b == b'.').count() <= 1
}

/// Refuses a quantity beyond [`MAX_QUANTITY`] in magnitude.
pub fn bounded(value: Decimal) -> Result<Decimal, QuantityError> {
    if value.abs() > MAX_QUANTITY {
        return Err(QuantityError::OutOfRange(value.to_string()));
    }
    Ok(value)
}

/// Scientific notation, exactly: `from_scientific` errs rather than rounds when the scale does
/// not fit, but an exponent it cannot hold tells nothing about which way: decide by its sign.
fn scientific(text: &str) -> Result<Decimal, QuantityError> {
    let Some((mantissa, exponent)) = text.split_once(['e', 'E']) else {
        return Err(QuantityError::NotANumber(text.to_owned()));
    };
    let Ok(exponent) = exponent.trim_start_matches('+').parse::<i64>() else {
        return Err(QuantityError::NotANumber(text.to_owned()));
    };
    let Ok(mantissa) = Decimal::from_str_exact(mantissa) else {
        return Err(QuantityError::NotANumber(text.to_owned()));
    };
    if mantissa.is_zero() {
        return Ok(Decimal::ZERO);
    }
    Decimal::from_scientific(text).map_err(|_| {
        if exponent < 0 {
            QuantityError::TooPrecise(text.to_owned())
        } else {
            QuantityError::OutOfRange(text.to_owned())
        }
    })
}

/// A JSON value as a quantity: numbers and numeric strings, read from their text.
pub fn from_json(value: &serde_json::Value) -> Result<Decimal, QuantityError> {
    match value {
        serde_json::Value::Number(n) => parse(&n.to_string()),
        serde_json::Value::String(s) => parse(s),
        other => Err(QuantityError::NotANumber(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_maximum_is_ten_to_the_twelfth() {
        assert_eq!(MAX_QUANTITY, Decimal::from(1_000_000_000_000_i64));
    }

    #[test]
    fn exact_values_pass_and_hostile_ones_are_refused() {
        assert_eq!(parse("12.5").unwrap(), Decimal::new(125, 1));
        assert_eq!(parse(" 1e3 ").unwrap(), Decimal::from(1000));
        assert_eq!(parse("-3").unwrap(), Decimal::from(-3));
        assert_eq!(parse("1000000000000").unwrap(), MAX_QUANTITY);
        let code = |t: &str| parse(t).unwrap_err().code();
        assert_eq!(code("1000000000000.1"), "quantity_out_of_range");
        assert_eq!(
            code("79228162514264337593543950335"),
            "quantity_out_of_range"
        );
        assert_eq!(
            code("792281625142643375935439503350"),
            "quantity_out_of_range"
        );
        assert_eq!(code("-1e13"), "quantity_out_of_range");
        assert_eq!(code("1e400"), "quantity_out_of_range");
        assert_eq!(code("1e-40"), "quantity_too_precise");
        assert_eq!(
            code("0.00000000000000000000000000000000000001"),
            "quantity_too_precise"
        );
        assert_eq!(code("lots"), "invalid_property");
        assert_eq!(code("NaN"), "invalid_property");
        assert_eq!(code(""), "invalid_property");
        assert_eq!(parse("0e-99999").unwrap(), Decimal::ZERO);
    }

    #[test]
    fn json_numbers_are_read_from_their_text() {
        assert_eq!(
            from_json(&serde_json::json!(0.1)).unwrap(),
            Decimal::new(1, 1)
        );
        assert_eq!(
            from_json(&serde_json::json!(1e-40)).unwrap_err().code(),
            "quantity_too_precise"
        );
        assert_eq!(
            from_json(&serde_json::json!(true)).unwrap_err().code(),
            "invalid_property"
        );
    }
}
