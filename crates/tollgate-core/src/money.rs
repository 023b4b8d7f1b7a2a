//! Money: integer minor units that carry their currency, and exact decimal amounts that are
//! rounded to minor units exactly once, at the invoice line.

use std::fmt;
use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An ISO 4217 currency this system knows the minor unit of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency {
    code: [u8; 3],
    minor_digits: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a supported ISO 4217 currency code")]
pub struct UnknownCurrency(pub String);

/// Currencies with their number of minor digits. Deliberately explicit: no silent fallback.
const CURRENCIES: &[(&str, u8)] = &[
    ("USD", 2),
    ("EUR", 2),
    ("GBP", 2),
    ("CHF", 2),
    ("CAD", 2),
    ("AUD", 2),
    ("NZD", 2),
    ("SEK", 2),
    ("NOK", 2),
    ("DKK", 2),
    ("PLN", 2),
    ("INR", 2),
    ("BRL", 2),
    ("MXN", 2),
    ("SGD", 2),
    ("HKD", 2),
    ("CNY", 2),
    ("ZAR", 2),
    ("JPY", 0),
    ("KRW", 0),
    ("BHD", 3),
    ("KWD", 3),
];

impl Currency {
    pub const USD: Currency = Currency {
        code: *b"USD",
        minor_digits: 2,
    };

    pub fn code(&self) -> &str {
        std::str::from_utf8(&self.code).expect("currency codes are ASCII")
    }

    /// Digits after the decimal point in this currency (2 for USD, 0 for JPY).
    pub fn minor_digits(&self) -> u32 {
        u32::from(self.minor_digits)
    }
}

impl FromStr for Currency {
    type Err = UnknownCurrency;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CURRENCIES
            .iter()
            .find(|(code, _)| *code == s)
            .map(|(code, digits)| Currency {
                code: code.as_bytes().try_into().expect("three letters"),
                minor_digits: *digits,
            })
            .ok_or_else(|| UnknownCurrency(s.to_owned()))
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// How an exact amount becomes whole minor units.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rounding {
    /// 0.5 cent goes away from zero (the default everywhere).
    #[default]
    HalfAwayFromZero,
    /// Banker's rounding.
    HalfEven,
    Up,
    Down,
}

impl Rounding {
    fn strategy(self) -> RoundingStrategy {
        match self {
            Rounding::HalfAwayFromZero => RoundingStrategy::MidpointAwayFromZero,
            Rounding::HalfEven => RoundingStrategy::MidpointNearestEven,
            Rounding::Up => RoundingStrategy::AwayFromZero,
            Rounding::Down => RoundingStrategy::ToZero,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("cannot combine {0} with {1}")]
    CurrencyMismatch(Currency, Currency),
    #[error("amount out of range")]
    Overflow,
    #[error("{0} has more decimals than {1} has minor units")]
    TooPrecise(Decimal, Currency),
}

impl MoneyError {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            MoneyError::CurrencyMismatch(..) => "currency_mismatch",
            MoneyError::Overflow => "amount_out_of_range",
            MoneyError::TooPrecise(..) => "amount_too_precise",
        }
    }
}

/// An amount in integer minor units of a currency (cents for USD).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Money {
    minor: i64,
    currency: Currency,
}

impl Money {
    pub fn from_minor(minor: i64, currency: Currency) -> Self {
        Money { minor, currency }
    }

    pub fn zero(currency: Currency) -> Self {
        Money { minor: 0, currency }
    }

    /// Rounds an exact amount to minor units: the one place where rounding happens.
    pub fn round(
        amount: Decimal,
        currency: Currency,
        rounding: Rounding,
    ) -> Result<Self, MoneyError> {
        let scaled = amount
            .round_dp_with_strategy(currency.minor_digits(), rounding.strategy())
            .checked_mul(Decimal::from(10i64.pow(currency.minor_digits())))
            .ok_or(MoneyError::Overflow)?;
        let minor = i64::try_from(scaled.trunc()).map_err(|_| MoneyError::Overflow)?;
        Ok(Money { minor, currency })
    }

    /// An amount someone typed (a credit, a refund): it must be whole minor units, so nothing
    /// is silently rounded away (a credit of 0.001 USD is refused, not stored as 0.00).
    pub fn exact(amount: Decimal, currency: Currency) -> Result<Self, MoneyError> {
        if amount.normalize().scale() > currency.minor_digits() {
            return Err(MoneyError::TooPrecise(amount, currency));
        }
        Money::round(amount, currency, Rounding::HalfAwayFromZero)
    }

    pub fn minor(&self) -> i64 {
        self.minor
    }

    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// The amount as an exact decimal in major units (e.g. `465.00`).
    pub fn to_decimal(&self) -> Decimal {
        Decimal::new(self.minor, self.currency.minor_digits())
    }

    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        if self.currency != other.currency {
            return Err(MoneyError::CurrencyMismatch(self.currency, other.currency));
        }
        let minor = self
            .minor
            .checked_add(other.minor)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money {
            minor,
            currency: self.currency,
        })
    }

    pub fn checked_sub(self, other: Money) -> Result<Money, MoneyError> {
        self.checked_add(Money {
            minor: other.minor.checked_neg().ok_or(MoneyError::Overflow)?,
            ..other
        })
    }

    pub fn is_zero(&self) -> bool {
        self.minor == 0
    }
}

/// Serialized as its exact decimal in major units with the currency's digits (`"465.00"`); the
/// currency travels beside it (an invoice or quote carries one `currency` for all its amounts).
impl Serialize for Money {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.to_decimal())
    }
}

impl fmt::Display for Money {
    /// `465.00 USD`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.to_decimal(), self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn rounds_half_away_from_zero_by_default() {
        let m = Money::round(dec!(12345.675), Currency::USD, Rounding::default()).unwrap();
        assert_eq!(m.minor(), 1_234_568);
        assert_eq!(m.to_decimal().to_string(), "12345.68");
        let neg = Money::round(dec!(-0.005), Currency::USD, Rounding::default()).unwrap();
        assert_eq!(neg.minor(), -1);
    }

    #[test]
    fn keeps_trailing_zeros_in_major_units() {
        let m = Money::round(dec!(465), Currency::USD, Rounding::default()).unwrap();
        assert_eq!(m.to_decimal().to_string(), "465.00");
        let yen: Currency = "JPY".parse().unwrap();
        assert_eq!(
            Money::round(dec!(10.5), yen, Rounding::default())
                .unwrap()
                .minor(),
            11
        );
    }

    #[test]
    fn refuses_to_mix_currencies() {
        let eur: Currency = "EUR".parse().unwrap();
        let err = Money::zero(Currency::USD)
            .checked_add(Money::zero(eur))
            .unwrap_err();
        assert_eq!(err, MoneyError::CurrencyMismatch(Currency::USD, eur));
    }

    #[test]
    fn unknown_currency_is_an_error() {
        assert!("XYZ".parse::<Currency>().is_err());
    }
}
