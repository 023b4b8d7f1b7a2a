//! Window lengths written the way people write them: `5h`, `1m`, `30s`, `7d`, `5 hours`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A positive length of time in whole seconds, used for rolling windows and rate limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WindowLength {
    seconds: u64,
}

/// Why a text is not a window length.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a duration (write e.g. \"30s\", \"1m\", \"5h\", \"7d\")")]
pub struct NotADuration {
    pub text: String,
}

impl WindowLength {
    pub const SECOND: WindowLength = WindowLength { seconds: 1 };
    pub const MINUTE: WindowLength = WindowLength { seconds: 60 };
    pub const HOUR: WindowLength = WindowLength { seconds: 3600 };
    pub const DAY: WindowLength = WindowLength { seconds: 86_400 };

    /// A window of `seconds` seconds; `None` for zero.
    pub fn from_seconds(seconds: u64) -> Option<Self> {
        (seconds > 0).then_some(WindowLength { seconds })
    }

    pub fn seconds(self) -> u64 {
        self.seconds
    }

    /// The window in the shape people read: `5h`, `1m`, `90s`.
    fn unit_form(self) -> (u64, &'static str) {
        for (size, unit) in [(86_400, "d"), (3600, "h"), (60, "m")] {
            if self.seconds.is_multiple_of(size) {
                return (self.seconds / size, unit);
            }
        }
        (self.seconds, "s")
    }
}

impl FromStr for WindowLength {
    type Err = NotADuration;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = || NotADuration {
            text: text.to_owned(),
        };
        let trimmed = text.trim();
        let digits_end = trimmed
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(trimmed.len());
        let (number, unit) = trimmed.split_at(digits_end);
        let number: u64 = number.parse().map_err(|_| err())?;
        let unit_seconds = match unit.trim() {
            "s" | "sec" | "second" | "seconds" => 1,
            "m" | "min" | "minute" | "minutes" => 60,
            "h" | "hour" | "hours" => 3600,
            "d" | "day" | "days" => 86_400,
            _ => return Err(err()),
        };
        number
            .checked_mul(unit_seconds)
            .and_then(WindowLength::from_seconds)
            .ok_or_else(err)
    }
}

impl fmt::Display for WindowLength {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (n, unit) = self.unit_form();
        write!(f, "{n}{unit}")
    }
}

impl Serialize for WindowLength {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for WindowLength {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_usual_forms() {
        assert_eq!("5h".parse::<WindowLength>().unwrap().seconds(), 18_000);
        assert_eq!("1m".parse::<WindowLength>().unwrap().seconds(), 60);
        assert_eq!("5 hours".parse::<WindowLength>().unwrap().seconds(), 18_000);
        assert_eq!("30s".parse::<WindowLength>().unwrap().to_string(), "30s");
        assert_eq!("120m".parse::<WindowLength>().unwrap().to_string(), "2h");
    }

    #[test]
    fn rejects_what_is_not_a_duration() {
        for bad in ["5 hrs", "", "h", "0s", "-1m", "1.5h", "5y"] {
            let err = bad.parse::<WindowLength>().unwrap_err();
            assert!(err.to_string().contains("is not a duration"), "{bad}");
        }
    }
}
