//! Money: integer minor units that carry their currency, and exact decimal amounts that are
//! rounded to minor units exactly once, at the invoice line.

// Money paths: no `as` casts (they truncate or wrap silently); use checked conversions.
#![deny(clippy::as_conversions)]

use crate::code::Code;
use std::fmt;
use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An ISO 4217 currency with its minor unit (2 digits for USD, 0 for JPY, 3 for KWD).
///
/// Only codes that ISO 4217 lists with a minor unit can be made: an unknown code is an error,
/// never a guess of 2 decimals, since a wrong exponent bills 100 times too much or too little.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency {
    code: [u8; 3],
    minor_digits: u8,
}

/// Why a code is not a [`Currency`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnknownCurrency {
    /// Not in ISO 4217 at all (`XYZ`, or `usd`: the codes are upper case).
    #[error("{0:?} is not an ISO 4217 currency code")]
    NotIso(String),
    /// In ISO 4217 but without a minor unit (gold `XAU`, `XDR`, the testing code `XTS`, ...):
    /// nothing can be billed in it.
    #[error(
        "{0:?} is an ISO 4217 code without a minor unit (a metal, fund or special unit), not a currency to bill in"
    )]
    NoMinorUnit(String),
}

impl UnknownCurrency {
    /// A stable machine-readable code.
    pub fn code(&self) -> Code {
        Code::UnknownCurrency
    }

    /// The code that was refused.
    pub fn input(&self) -> &str {
        match self {
            UnknownCurrency::NotIso(s) | UnknownCurrency::NoMinorUnit(s) => s,
        }
    }
}

impl Currency {
    pub const USD: Currency = Currency {
        code: *b"USD",
        minor_digits: 2,
    };

    pub fn code(&self) -> &str {
        // Built only from an ISO 4217 alphabetic code, three ASCII capitals: always UTF-8, so
        // the default is never taken.
        std::str::from_utf8(&self.code).unwrap_or_default()
    }

    /// Digits after the decimal point in this currency (2 for USD, 0 for JPY, 3 for KWD), from
    /// ISO 4217's minor unit.
    pub fn minor_digits(&self) -> u32 {
        u32::from(self.minor_digits)
    }
}

impl FromStr for Currency {
    type Err = UnknownCurrency;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let iso = iso_currency::Currency::from_code(s)
            .ok_or_else(|| UnknownCurrency::NotIso(s.to_owned()))?;
        let no_minor_unit = || UnknownCurrency::NoMinorUnit(s.to_owned());
        let minor_digits = iso
            .exponent()
            .and_then(|e| u8::try_from(e).ok())
            .ok_or_else(no_minor_unit)?;
        let code: [u8; 3] = s.as_bytes().try_into().map_err(|_| no_minor_unit())?;
        Ok(Currency { code, minor_digits })
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
    pub fn code(&self) -> Code {
        match self {
            MoneyError::CurrencyMismatch(..) => Code::CurrencyMismatch,
            MoneyError::Overflow => Code::AmountOutOfRange,
            MoneyError::TooPrecise(..) => Code::AmountTooPrecise,
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
        let err = "XYZ".parse::<Currency>().unwrap_err();
        assert_eq!(err.to_string(), "\"XYZ\" is not an ISO 4217 currency code");
        assert_eq!(err.code(), "unknown_currency");
        assert!("usd".parse::<Currency>().is_err(), "codes are upper case");
        assert!("".parse::<Currency>().is_err());
        assert!("USDX".parse::<Currency>().is_err());
    }

    #[test]
    fn minor_units_come_from_iso_4217() {
        for (code, digits) in [
            ("USD", 2),
            ("EUR", 2),
            ("JPY", 0),
            ("KRW", 0),
            ("ISK", 0),
            ("KWD", 3),
            ("BHD", 3),
            ("TND", 3),
            ("CLF", 4),
        ] {
            let c: Currency = code.parse().unwrap();
            assert_eq!((c.code(), c.minor_digits()), (code, digits));
            assert_eq!(c.to_string(), code);
        }
        assert_eq!("USD".parse::<Currency>().unwrap(), Currency::USD);
    }

    #[test]
    fn codes_without_a_minor_unit_are_refused() {
        for code in ["XAU", "XDR", "XTS", "XXX"] {
            let err = code.parse::<Currency>().unwrap_err();
            assert!(matches!(err, UnknownCurrency::NoMinorUnit(_)), "{code}");
            assert_eq!(err.input(), code);
        }
    }

    #[test]
    fn amounts_have_the_currency_s_decimals() {
        let yen: Currency = "JPY".parse().unwrap();
        let dinar: Currency = "KWD".parse().unwrap();
        let y = Money::round(dec!(1234.5), yen, Rounding::default()).unwrap();
        assert_eq!(
            (y.minor(), y.to_decimal().to_string()),
            (1235, "1235".into())
        );
        let k = Money::round(dec!(12.3456), dinar, Rounding::default()).unwrap();
        assert_eq!(
            (k.minor(), k.to_decimal().to_string()),
            (12_346, "12.346".into())
        );
        assert_eq!(k.to_string(), "12.346 KWD");
        assert!(Money::exact(dec!(1.5), yen).is_err(), "no half yen");
        assert_eq!(Money::exact(dec!(0.001), dinar).unwrap().minor(), 1);
    }
}
