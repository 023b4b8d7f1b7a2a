//! What changes between two catalog versions, for the operator to read before applying one.
//!
//! Both catalogs are compared in the shape of the file (see [`super::surface`]), so the paths are
//! the ones the operator writes and the validation errors use. Plans are compared resolved: if a
//! parent's price changes, every plan that inherits it shows the change, because every such plan
//! is billed differently.

use std::fmt;

use super::model::Catalog;
use super::node::Node;
use super::read::{index, join};
use super::surface::surface;

/// Whether something was added, removed or changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Added,
    Removed,
    Changed,
}

/// One difference between two catalogs.
///
/// Displayed as `+ plans.mid`, `- meters.tokens`, `+ plans.early.trial_days: 7`, or
/// `~ plans.early.base.amount: 99.00 -> 89.00`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogChange {
    pub kind: ChangeKind,
    pub path: String,
    /// The value before, for a removed or changed field (not for a whole entry).
    pub old: Option<String>,
    /// The value after, for an added or changed field (not for a whole entry).
    pub new: Option<String>,
}

impl fmt::Display for CatalogChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = match self.kind {
            ChangeKind::Added => '+',
            ChangeKind::Removed => '-',
            ChangeKind::Changed => '~',
        };
        write!(f, "{sign} {}", self.path)?;
        match (&self.old, &self.new) {
            (Some(old), Some(new)) => write!(f, ": {old} -> {new}"),
            (Some(value), None) | (None, Some(value)) => write!(f, ": {value}"),
            (None, None) => Ok(()),
        }
    }
}

/// Sections whose entries are reported whole when added or removed.
const SECTIONS: &[&str] = &[
    "meters", "features", "plans", "addons", "products", "coupons",
];

/// The differences from `old` to `new`, section by section in file order.
pub fn diff(old: &Catalog, new: &Catalog) -> Vec<CatalogChange> {
    let old = Node::from_yaml(surface(old));
    let new = Node::from_yaml(surface(new));
    let (Node::Map(old), Node::Map(new)) = (old, new) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for key in union(&old, &new) {
        let (a, b) = (get(&old, &key), get(&new, &key));
        if SECTIONS.contains(&key.as_str()) {
            section(&key, a, b, &mut out);
        } else {
            value(&key, a, b, &mut out);
        }
    }
    out
}

fn get<'a>(entries: &'a [(String, Node)], key: &str) -> Option<&'a Node> {
    entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

/// The keys of `a` in order, then those only in `b`.
fn union(a: &[(String, Node)], b: &[(String, Node)]) -> Vec<String> {
    let mut keys: Vec<String> = a.iter().map(|(k, _)| k.clone()).collect();
    keys.extend(
        b.iter()
            .filter(|(k, _)| get(a, k).is_none())
            .map(|(k, _)| k.clone()),
    );
    keys
}

fn entries(node: Option<&Node>) -> &[(String, Node)] {
    match node {
        Some(Node::Map(entries)) => entries,
        _ => &[],
    }
}

fn section(name: &str, a: Option<&Node>, b: Option<&Node>, out: &mut Vec<CatalogChange>) {
    let (a, b) = (entries(a), entries(b));
    for key in union(a, b) {
        let path = join(name, &key);
        match (get(a, &key), get(b, &key)) {
            (Some(_), None) => out.push(change(ChangeKind::Removed, path, None, None)),
            (None, Some(_)) => out.push(change(ChangeKind::Added, path, None, None)),
            (Some(x), Some(y)) => value(&path, Some(x), Some(y), out),
            (None, None) => {}
        }
    }
    // The order of plans is the order of tiers: reordering changes upgrade hints.
    let order = |entries: &[(String, Node)], other: &[(String, Node)]| -> Vec<String> {
        entries
            .iter()
            .filter(|(k, _)| get(other, k).is_some())
            .map(|(k, _)| k.clone())
            .collect()
    };
    let (before, after) = (order(a, b), order(b, a));
    if name == "plans" && before != after {
        let path = "plans (order)".to_owned();
        out.push(change(
            ChangeKind::Changed,
            path,
            Some(before.join(", ")),
            Some(after.join(", ")),
        ));
    }
}

fn value(path: &str, a: Option<&Node>, b: Option<&Node>, out: &mut Vec<CatalogChange>) {
    match (a, b) {
        (Some(x), None) => out.push(change(
            ChangeKind::Removed,
            path.to_owned(),
            Some(render(x)),
            None,
        )),
        (None, Some(y)) => out.push(change(
            ChangeKind::Added,
            path.to_owned(),
            None,
            Some(render(y)),
        )),
        (Some(Node::Map(x)), Some(Node::Map(y))) => {
            for key in union(x, y) {
                value(&join(path, &key), get(x, &key), get(y, &key), out);
            }
        }
        (Some(Node::Seq(x)), Some(Node::Seq(y))) => {
            for i in 0..x.len().max(y.len()) {
                value(&index(path, i), x.get(i), y.get(i), out);
            }
        }
        (Some(x), Some(y)) if x != y => {
            out.push(change(
                ChangeKind::Changed,
                path.to_owned(),
                Some(render(x)),
                Some(render(y)),
            ));
        }
        _ => {}
    }
}

fn change(
    kind: ChangeKind,
    path: String,
    old: Option<String>,
    new: Option<String>,
) -> CatalogChange {
    CatalogChange {
        kind,
        path,
        old,
        new,
    }
}

/// A value on one line: scalars as written, lists and maps inline.
fn render(node: &Node) -> String {
    match node {
        Node::Null => "null".to_owned(),
        Node::Bool(b) => b.to_string(),
        Node::Number(n) => n.text.clone(),
        Node::Str(s) => s.clone(),
        Node::Tagged(tag) => tag.clone(),
        Node::Seq(items) => format!(
            "[{}]",
            items.iter().map(render).collect::<Vec<_>>().join(", ")
        ),
        Node::Map(entries) => format!(
            "{{{}}}",
            entries
                .iter()
                .map(|(k, v)| format!("{k}: {}", render(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}
