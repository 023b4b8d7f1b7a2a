//! The loose value tree a catalog file is read into before it is checked.
//!
//! YAML and JSON both land here, so one walker checks both. Numbers keep their text: a price of
//! `0.001` must become exactly the decimal 0.001, never a float near it.

/// One value of a catalog file, untyped.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    Null,
    Bool(bool),
    Number(Number),
    Str(String),
    Seq(Vec<Node>),
    /// Entries in the order of the file (the order of plans is the order of tiers).
    Map(Vec<(String, Node)>),
    /// A YAML value with an explicit tag (`!foo`), which catalogs do not use.
    Tagged(String),
}

/// A number as written, with whether its text is exact.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Number {
    pub text: String,
    /// `false` when the parser had already turned the number into a float and the float cannot
    /// be trusted to give the written digits back (more than 15 significant digits).
    pub exact: bool,
}

/// Significant digits an `f64` always gives back exactly in its shortest form.
const F64_EXACT_DIGITS: usize = 15;

impl Number {
    fn integer(text: String) -> Self {
        Number { text, exact: true }
    }

    /// A float as the shortest text that reads back as the same float: for every literal of up
    /// to 15 significant digits that text *is* the literal, so `0.001` stays `0.001`.
    fn float(text: String) -> Self {
        let exact = significant_digits(&text) <= F64_EXACT_DIGITS;
        Number { text, exact }
    }
}

/// Counts the significant digits of a number's text (`0.00120` has 2, `1.5e-7` has 2).
fn significant_digits(text: &str) -> usize {
    let mantissa = text.split(['e', 'E']).next().unwrap_or_default();
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    digits.trim_start_matches('0').trim_end_matches('0').len()
}

impl Node {
    /// Converts a parsed YAML document. Merge keys (`<<`) are applied by the caller beforehand.
    pub(crate) fn from_yaml(value: serde_norway::Value) -> Node {
        use serde_norway::Value;
        match value {
            Value::Null => Node::Null,
            Value::Bool(b) => Node::Bool(b),
            Value::Number(n) => {
                if n.is_f64() {
                    Node::Number(Number::float(n.to_string()))
                } else {
                    Node::Number(Number::integer(n.to_string()))
                }
            }
            Value::String(s) => Node::Str(s),
            Value::Sequence(items) => Node::Seq(items.into_iter().map(Node::from_yaml).collect()),
            Value::Mapping(map) => Node::Map(
                map.into_iter()
                    .map(|(k, v)| (yaml_key(k), Node::from_yaml(v)))
                    .collect(),
            ),
            Value::Tagged(tagged) => Node::Tagged(tagged.tag.to_string()),
        }
    }

    /// Converts a JSON value.
    pub(crate) fn from_json(value: serde_json::Value) -> Node {
        use serde_json::Value;
        match value {
            Value::Null => Node::Null,
            Value::Bool(b) => Node::Bool(b),
            Value::Number(n) => {
                if n.is_f64() {
                    Node::Number(Number::float(n.to_string()))
                } else {
                    Node::Number(Number::integer(n.to_string()))
                }
            }
            Value::String(s) => Node::Str(s),
            Value::Array(items) => Node::Seq(items.into_iter().map(Node::from_json).collect()),
            Value::Object(map) => Node::Map(
                map.into_iter()
                    .map(|(k, v)| (k, Node::from_json(v)))
                    .collect(),
            ),
        }
    }

    /// What this value is, for "expected X, found Y" messages.
    pub(crate) fn describe(&self) -> String {
        match self {
            Node::Null => "nothing (null)".to_owned(),
            Node::Bool(b) => format!("the boolean {b}"),
            Node::Number(n) => format!("the number {}", n.text),
            Node::Str(s) => format!("the string {s:?}"),
            Node::Seq(_) => "a list".to_owned(),
            Node::Map(_) => "a map".to_owned(),
            Node::Tagged(tag) => format!("a value tagged {tag} (tags are not supported)"),
        }
    }

    /// The value as JSON, for event-property filters (which compare with event properties).
    pub(crate) fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            Node::Null | Node::Tagged(_) => Value::Null,
            Node::Bool(b) => Value::Bool(*b),
            Node::Number(n) => serde_json::from_str(&n.text).unwrap_or(Value::Null),
            Node::Str(s) => Value::String(s.clone()),
            Node::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            Node::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_json()))
                    .collect(),
            ),
        }
    }
}

/// A YAML mapping key as text. Keys that are not strings (`1:`, `true:`) keep their written
/// form, so the key check can name them.
fn yaml_key(key: serde_norway::Value) -> String {
    use serde_norway::Value;
    match key {
        Value::String(s) => s,
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".to_owned(),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_numbers_keep_their_digits() {
        let value: serde_norway::Value =
            serde_norway::from_str("[0.001, 99.00, 12345678.12, 10000, 1.0e-7]").unwrap();
        let Node::Seq(items) = Node::from_yaml(value) else {
            panic!("a list")
        };
        let texts: Vec<_> = items
            .iter()
            .map(|n| match n {
                Node::Number(n) => (n.text.as_str(), n.exact),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            texts,
            [
                ("0.001", true),
                ("99.0", true),
                ("12345678.12", true),
                ("10000", true),
                ("1e-7", true)
            ]
        );
    }

    #[test]
    fn floats_beyond_fifteen_digits_are_flagged() {
        let value: serde_norway::Value = serde_norway::from_str("1234567890.1234567").unwrap();
        let Node::Number(n) = Node::from_yaml(value) else {
            panic!("a number")
        };
        assert!(!n.exact, "{n:?}");
        assert_eq!(significant_digits("0.00120"), 2);
    }
}
