//! Route matching: method and path pattern, first match in config order.
//!
//! Patterns are compiled to segments once, at start; a request is matched by walking its path's
//! segments, with no allocation. Config order decides between overlapping routes, as in a
//! firewall rule list, so an operator can put `/v1/admin/*` before `/v1/*` and read the result
//! off the file.

use std::fmt;

use axum::http::Method;
use serde::{Deserialize, Deserializer};

use super::config::Route;

/// A compiled path pattern.
#[derive(Clone, PartialEq, Eq)]
pub struct PathPattern {
    text: String,
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    /// `{name}` or `*` in the middle: exactly one non-empty segment.
    One,
    /// `*` as the last segment: everything below, including nothing.
    Rest,
}

impl PathPattern {
    pub fn parse(text: &str) -> Result<Self, String> {
        let Some(body) = text.strip_prefix('/') else {
            return Err(format!("path pattern {text:?} must start with `/`"));
        };
        if text.contains('?') {
            return Err(format!("path pattern {text:?} must not have a query"));
        }
        let parts: Vec<&str> = body.split('/').collect();
        let last = parts.len() - 1;
        let mut segments = Vec::with_capacity(parts.len());
        for (i, part) in parts.iter().enumerate() {
            let segment = match *part {
                "*" if i == last => Segment::Rest,
                "*" => Segment::One,
                p if p.starts_with('{') && p.ends_with('}') && p.len() > 2 => Segment::One,
                p if p.contains(['{', '}', '*']) => {
                    return Err(format!(
                        "path pattern {text:?}: `{p}` mixes text with `*` or `{{}}`; a wildcard is a whole segment"
                    ));
                }
                p => Segment::Literal(p.to_owned()),
            };
            segments.push(segment);
        }
        Ok(PathPattern {
            text: text.to_owned(),
            segments,
        })
    }

    /// Whether `path` (no query) matches.
    pub fn matches(&self, path: &str) -> bool {
        let Some(body) = path.strip_prefix('/') else {
            return false;
        };
        let mut parts = body.split('/');
        for segment in &self.segments {
            match segment {
                Segment::Rest => return true,
                Segment::One => match parts.next() {
                    Some(p) if !p.is_empty() => {}
                    _ => return false,
                },
                Segment::Literal(l) => match parts.next() {
                    Some(p) if p == l => {}
                    _ => return false,
                },
            }
        }
        parts.next().is_none()
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Debug for PathPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.text)
    }
}

impl<'de> Deserialize<'de> for PathPattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        PathPattern::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// The first route matching `method` and `path`.
pub fn find<'r>(routes: &'r [Route], method: &Method, path: &str) -> Option<&'r Route> {
    routes
        .iter()
        .find(|r| r.method.as_ref().is_none_or(|m| m == method) && r.path.matches(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, path: &str) -> bool {
        PathPattern::parse(pattern).unwrap().matches(path)
    }

    #[test]
    fn literals_params_and_wildcards() {
        assert!(m("/v1/chat/completions", "/v1/chat/completions"));
        assert!(!m("/v1/chat/completions", "/v1/chat/completions/"));
        assert!(!m("/v1/chat/completions", "/v1/chat"));
        assert!(m("/v1/projects/{id}", "/v1/projects/p1"));
        assert!(!m("/v1/projects/{id}", "/v1/projects/"));
        assert!(!m("/v1/projects/{id}", "/v1/projects/p1/runs"));
        assert!(m("/v1/*/runs", "/v1/p1/runs"));
        assert!(m("/v1/*", "/v1/a/b/c"));
        assert!(m("/v1/*", "/v1/"));
        assert!(!m("/v1/*", "/v2/a"));
        assert!(m("/*", "/anything/at/all"));
        assert!(m("/", "/"));
    }

    #[test]
    fn bad_patterns_are_refused() {
        assert!(PathPattern::parse("v1/x").is_err());
        assert!(PathPattern::parse("/v1/x*").is_err());
        assert!(PathPattern::parse("/v1/{id").is_err());
        assert!(PathPattern::parse("/v1?x=1").is_err());
    }
}
