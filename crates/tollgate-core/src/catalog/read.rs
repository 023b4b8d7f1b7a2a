//! Typed reading of loose values, collecting every mistake with its path.
//!
//! Each reader takes the path of the value and the value, and returns `None` after recording an
//! error when the value is wrong, so a caller reads all fields of an entry before deciding whether
//! the entry as a whole is usable: one bad field never hides the next one.

use std::str::FromStr;

use rust_decimal::Decimal;

use super::error::CatalogError;
use super::model::Limit;
use super::node::Node;
use crate::duration::WindowLength;

/// Where errors are collected while a catalog is checked.
#[derive(Debug, Default)]
pub(crate) struct Cx {
    pub errors: Vec<CatalogError>,
}

/// `plans` + `early` -> `plans.early`; the root has the empty path.
pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// `plans.early.quotas` + 0 -> `plans.early.quotas[0]`.
pub(crate) fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

/// The fields of one map entry, checked against the names it may have.
pub(crate) struct Fields<'n> {
    pub path: String,
    pub entries: &'n [(String, Node)],
}

impl<'n> Fields<'n> {
    pub fn path_of(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// The value of `key`, `None` when absent or written as null.
    pub fn get(&self, key: &str) -> Option<&'n Node> {
        self.raw(key).filter(|n| **n != Node::Null)
    }

    /// The value of `key` as written, null included.
    pub fn raw(&self, key: &str) -> Option<&'n Node> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Whether `key` is written at all (a null counts: it means "clear" where inheritance applies).
    pub fn has(&self, key: &str) -> bool {
        self.raw(key).is_some()
    }

    /// An optional field: `None` when absent, null, or wrong (the last one recorded).
    pub fn opt<T>(
        &self,
        cx: &mut Cx,
        key: &str,
        read: impl FnOnce(&mut Cx, &str, &'n Node) -> Option<T>,
    ) -> Option<T> {
        let node = self.get(key)?;
        read(cx, &self.path_of(key), node)
    }

    /// A required field: a missing one is recorded at the field's own path.
    pub fn req<T>(
        &self,
        cx: &mut Cx,
        key: &str,
        read: impl FnOnce(&mut Cx, &str, &'n Node) -> Option<T>,
    ) -> Option<T> {
        match self.get(key) {
            Some(node) => read(cx, &self.path_of(key), node),
            None => {
                cx.error(&self.path_of(key), "required field is missing");
                None
            }
        }
    }
}

/// Lists names the way serde does: `` `a`, `b`, `c` ``.
pub(crate) fn backticked(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The written name of an enum value in a `(name, value)` table.
pub(crate) fn name_of<T: PartialEq + Copy>(table: &[(&'static str, T)], value: T) -> &'static str {
    table
        .iter()
        .find(|(_, v)| *v == value)
        .map_or("?", |(n, _)| n)
}

impl Cx {
    pub fn error(&mut self, path: &str, message: impl Into<String>) {
        self.errors.push(CatalogError::new(path, message));
    }

    /// How many errors so far; an entry is usable when reading it added none.
    pub fn count(&self) -> usize {
        self.errors.len()
    }

    fn expected<T>(&mut self, path: &str, what: &str, node: &Node) -> Option<T> {
        self.error(path, format!("expected {what}, found {}", node.describe()));
        None
    }

    pub fn map<'n>(&mut self, path: &str, node: &'n Node) -> Option<&'n [(String, Node)]> {
        match node {
            Node::Map(entries) => Some(entries),
            other => self.expected(path, "a map", other),
        }
    }

    pub fn seq<'n>(&mut self, path: &str, node: &'n Node) -> Option<&'n [Node]> {
        match node {
            Node::Seq(items) => Some(items),
            other => self.expected(path, "a list", other),
        }
    }

    /// A map whose keys are all among `allowed`; an unknown key is reported at its own path, in
    /// serde's words, so a typo names the field it meant to be.
    pub fn fields<'n>(
        &mut self,
        path: &str,
        node: &'n Node,
        allowed: &[&str],
    ) -> Option<Fields<'n>> {
        let entries = self.map(path, node)?;
        for (key, _) in entries {
            if !allowed.contains(&key.as_str()) {
                self.error(
                    &join(path, key),
                    format!(
                        "unknown field `{key}`, expected one of {}",
                        backticked(allowed)
                    ),
                );
            }
        }
        Some(Fields {
            path: path.to_owned(),
            entries,
        })
    }

    pub fn string(&mut self, path: &str, node: &Node) -> Option<String> {
        match node {
            Node::Str(s) if !s.trim().is_empty() => Some(s.clone()),
            Node::Str(_) => {
                self.error(path, "must not be empty");
                None
            }
            other => self.expected(path, "a string", other),
        }
    }

    pub fn boolean(&mut self, path: &str, node: &Node) -> Option<bool> {
        match node {
            Node::Bool(b) => Some(*b),
            other => self.expected(path, "true or false", other),
        }
    }

    /// An exact decimal, written as a number or a string (`99.00`, `"0.001"`).
    pub fn decimal(&mut self, path: &str, node: &Node) -> Option<Decimal> {
        let text = match node {
            Node::Number(n) if !n.exact => {
                self.error(
                    path,
                    format!(
                        "{} has more digits than a YAML or JSON number keeps exactly; \
                         write it as a string",
                        n.text
                    ),
                );
                return None;
            }
            Node::Number(n) => n.text.as_str(),
            Node::Str(s) => s.trim(),
            other => return self.expected(path, "a decimal number", other),
        };
        match crate::quantity::parse_exact(text) {
            Ok(value) => Some(value),
            Err(crate::quantity::QuantityError::TooPrecise(_)) => {
                self.error(
                    path,
                    format!(
                        "{text} has more than the 28 decimal digits kept exactly; it would round"
                    ),
                );
                None
            }
            Err(_) => {
                self.error(path, format!("{text:?} is not a decimal number"));
                None
            }
        }
    }

    /// A decimal that is zero or more: amounts, included units.
    pub fn amount(&mut self, path: &str, node: &Node) -> Option<Decimal> {
        let value = self.decimal(path, node)?;
        if value.is_sign_negative() && !value.is_zero() {
            self.error(path, format!("must not be negative, found {value}"));
            return None;
        }
        Some(value)
    }

    /// A decimal above zero: sizes, divisors.
    pub fn positive(&mut self, path: &str, node: &Node) -> Option<Decimal> {
        let value = self.decimal(path, node)?;
        if value <= Decimal::ZERO {
            self.error(path, format!("must be greater than 0, found {value}"));
            return None;
        }
        Some(value)
    }

    /// A percentage from 0 to 100 inclusive.
    pub fn percent(&mut self, path: &str, node: &Node) -> Option<Decimal> {
        let value = self.decimal(path, node)?;
        if value < Decimal::ZERO || value > Decimal::ONE_HUNDRED {
            self.error(path, format!("must be between 0 and 100, found {value}"));
            return None;
        }
        Some(value)
    }

    /// A whole number of at least `min` that fits `T`.
    pub fn integer<T: TryFrom<u64>>(&mut self, path: &str, node: &Node, min: u64) -> Option<T> {
        let Node::Number(n) = node else {
            return self.expected(path, "a whole number", node);
        };
        let Ok(value) = n.text.parse::<u64>() else {
            let message = if n.text.parse::<i64>().is_ok() {
                format!("must be at least {min}, found {}", n.text)
            } else {
                format!("expected a whole number, found {}", n.text)
            };
            self.error(path, message);
            return None;
        };
        if value < min {
            self.error(path, format!("must be at least {min}, found {value}"));
            return None;
        }
        match T::try_from(value) {
            Ok(v) => Some(v),
            Err(_) => {
                self.error(path, format!("{value} is too large"));
                None
            }
        }
    }

    /// One of a fixed set of words.
    pub fn choice<T: Copy>(
        &mut self,
        path: &str,
        node: &Node,
        table: &[(&'static str, T)],
    ) -> Option<T> {
        let names: Vec<&str> = table.iter().map(|(n, _)| *n).collect();
        let Node::Str(s) = node else {
            return self.expected(path, &format!("one of {}", names.join(", ")), node);
        };
        match table.iter().find(|(n, _)| n == s) {
            Some((_, value)) => Some(*value),
            None => {
                self.error(path, format!("{s:?} is not one of {}", names.join(", ")));
                None
            }
        }
    }

    /// A limit: a number of at least zero, or `unlimited`.
    pub fn limit(&mut self, path: &str, node: &Node) -> Option<Limit> {
        match node {
            Node::Str(s) if s == "unlimited" => Some(Limit::Unlimited),
            Node::Number(_) => self.amount(path, node).map(Limit::Finite),
            Node::Str(s) if Decimal::from_str(s.trim()).is_ok() => {
                self.amount(path, node).map(Limit::Finite)
            }
            other => self.expected(path, "a number or \"unlimited\"", other),
        }
    }

    /// A window length such as `5h` or `30s`.
    pub fn duration(&mut self, path: &str, node: &Node) -> Option<WindowLength> {
        let Node::Str(s) = node else {
            return self.expected(path, "a duration such as \"5h\"", node);
        };
        match s.parse::<WindowLength>() {
            Ok(length) => Some(length),
            Err(e) => {
                self.error(path, e.to_string());
                None
            }
        }
    }

    /// A key of meters, features, plans, add-ons, products and coupons: these are written in
    /// code, URLs and API answers, so they are kept to one safe shape.
    pub fn key(&mut self, path: &str, key: &str) -> bool {
        let mut chars = key.chars();
        let ok = chars.next().is_some_and(|c| c.is_ascii_lowercase())
            && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !ok {
            self.error(
                path,
                format!(
                    "invalid key {key:?}: use lowercase letters, digits and `_`, starting with a \
                     letter (^[a-z][a-z0-9_]*$)"
                ),
            );
        }
        ok
    }

    /// An event type: dot-separated words (`decision.evaluated`), each of lowercase letters,
    /// digits, `_` and `-`, the first starting with a letter.
    pub fn event_type(&mut self, path: &str, node: &Node) -> Option<String> {
        let text = self.string(path, node)?;
        let ok = text.starts_with(|c: char| c.is_ascii_lowercase())
            && text.split('.').all(|part| {
                !part.is_empty()
                    && part.chars().all(|c| {
                        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-'
                    })
            });
        if !ok {
            self.error(
                path,
                format!(
                    "invalid event type {text:?}: use dot-separated lowercase words such as \
                     \"decision.evaluated\""
                ),
            );
            return None;
        }
        Some(text)
    }

    /// The name of an event property: any text without spaces.
    pub fn property(&mut self, path: &str, node: &Node) -> Option<String> {
        let text = self.string(path, node)?;
        if text.chars().any(char::is_whitespace) {
            self.error(path, format!("invalid property name {text:?}: no spaces"));
            return None;
        }
        Some(text)
    }

    /// A reference to an entry of another section, which must exist.
    pub fn reference(
        &mut self,
        path: &str,
        node: &Node,
        what: &str,
        exists: impl Fn(&str) -> bool,
    ) -> Option<String> {
        let name = self.string(path, node)?;
        if !exists(&name) {
            self.error(path, format!("unknown {what} `{name}`"));
            return None;
        }
        Some(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_have_one_shape() {
        let mut cx = Cx::default();
        for good in ["a", "free", "enterprise_api", "t0"] {
            assert!(cx.key("k", good), "{good}");
        }
        for bad in ["", "Free", "1st", "_x", "a-b", "a.b", "é"] {
            assert!(!cx.key("k", bad), "{bad}");
        }
        assert_eq!(cx.errors.len(), 7);
    }

    #[test]
    fn event_types_are_dotted_words() {
        let mut cx = Cx::default();
        for good in ["api.call", "decision.evaluated", "a.b-c.d_2", "run"] {
            assert!(
                cx.event_type("e", &Node::Str(good.into())).is_some(),
                "{good}"
            );
        }
        for bad in ["Api.call", "api..call", "api.", ".api", "api call", "1.x"] {
            assert!(
                cx.event_type("e", &Node::Str(bad.into())).is_none(),
                "{bad}"
            );
        }
    }

    #[test]
    fn limits_are_numbers_or_unlimited() {
        let mut cx = Cx::default();
        let num = |t: &str| {
            Node::Number(super::super::node::Number {
                text: t.into(),
                exact: true,
            })
        };
        assert_eq!(
            cx.limit("l", &Node::Str("unlimited".into())),
            Some(Limit::Unlimited)
        );
        assert_eq!(
            cx.limit("l", &num("5")),
            Some(Limit::Finite(Decimal::from(5)))
        );
        assert_eq!(
            cx.limit("l", &Node::Str("2.5".into())),
            Some(Limit::Finite(Decimal::new(25, 1)))
        );
        assert_eq!(cx.limit("l", &num("-1")), None);
        assert_eq!(cx.limit("l", &Node::Bool(true)), None);
        let messages: Vec<&str> = cx.errors.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "must not be negative, found -1",
                "expected a number or \"unlimited\", found the boolean true"
            ]
        );
    }
}
