//! The summary the demo prints once it is ready: URLs, keys, and `curl` lines that work as
//! pasted, aligned in columns so a key is easy to pick out and copy.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::json;
use tollgate_server::DEFAULT_WORKSPACE;

use super::{DB_FILE, DemoState, STATE_FILE};

/// Lays out rows in columns two spaces apart, each line indented by two.
fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        let _ = writeln!(out, "  {}", cells.join("  ").trim_end());
    }
    out
}

/// A `curl` line for a JSON POST.
fn curl_post(base: &str, path: &str, key: &str, body: &serde_json::Value) -> String {
    format!(
        "curl -s {base}{path} -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' -d '{body}'"
    )
}

/// Everything a user needs to start poking at the demo, with real keys.
pub fn summary(base: &str, dir: &Path, state: &DemoState) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nTollgate demo is running (SQLite in {})\n",
        dir.join(DB_FILE).display()
    );
    let links = [
        ("Base URL", base.to_string()),
        ("Health", format!("{base}/healthz")),
        ("OpenAPI", format!("{base}/openapi.json")),
        ("Metrics", format!("{base}/metrics")),
    ];
    for (label, url) in links {
        let _ = writeln!(out, "  {label:<10}{url}");
    }
    let _ = writeln!(
        out,
        "\nWorkspaces (admin keys manage catalogs, customers and keys)"
    );
    let mut rows = vec![vec![
        DEFAULT_WORKSPACE.to_string(),
        "Default (creates workspaces)".into(),
        "-".into(),
        state.admin_key.clone(),
    ]];
    rows.extend(state.workspaces.iter().map(|w| {
        vec![
            w.id.clone(),
            w.name.clone(),
            format!("{} v{}", w.catalog, w.catalog_version),
            w.admin_key.clone(),
        ]
    }));
    out.push_str(&table(
        &["WORKSPACE", "NAME", "CATALOG", "ADMIN KEY"],
        &rows,
    ));

    let _ = writeln!(out, "\nCustomers (each key sees only its own customer)");
    let rows: Vec<Vec<String>> = state
        .customers
        .iter()
        .map(|c| {
            let plan = if c.trial {
                format!("{} (trial)", c.plan)
            } else {
                c.plan.clone()
            };
            vec![c.workspace.clone(), c.id.clone(), plan, c.key.clone()]
        })
        .collect();
    out.push_str(&table(&["WORKSPACE", "CUSTOMER", "PLAN", "API KEY"], &rows));

    let _ = writeln!(out, "\nTry it");
    for (comment, line) in examples(base, state) {
        let _ = writeln!(out, "  # {comment}\n  {line}\n");
    }
    let _ = writeln!(
        out,
        "Keys are kept in {}; `tollgate demo --reset` starts from a clean slate.",
        dir.join(STATE_FILE).display()
    );
    let _ = writeln!(out, "Press Ctrl-C to stop.");
    out
}

/// Copy-pasteable calls with real keys, skipping any whose customer is missing from the state.
fn examples(base: &str, state: &DemoState) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(c) = state.customer("ws_apex", "initech") {
        out.push((
            "Feature check with a customer's own key (Apex `early` in trial: allowed)".to_string(),
            curl_post(
                base,
                "/v1/check",
                &c.key,
                &json!({"feature": "advanced_optimization"}),
            ),
        ));
    }
    if let Some(c) = state.customer("ws_apex", "globex") {
        out.push((
            "Consuming check: a supervisor run for user u1 on Apex `free` (3 per rolling 5 h; \
             repeat it and the denial names the reset time and the upgrade)"
                .to_string(),
            curl_post(
                base,
                "/v1/check",
                &c.key,
                &json!({"meter": "agent_runs", "subject": "u1", "consume": true}),
            ),
        ));
    }
    if let Some(ws) = state.workspace("ws_levqor") {
        let body = json!({"events": [
            {"id": "evt-1", "customer": "hooli", "type": "api.call", "properties": {"endpoint": "/runs"}},
            {"id": "evt-2", "customer": "hooli", "type": "api.call", "properties": {"endpoint": "/runs"}}
        ]});
        out.push((
            "Send a batch of usage events with the workspace admin key (send it twice: counted once)".to_string(),
            curl_post(base, "/v1/events", &ws.admin_key, &body),
        ));
    }
    if let Some(c) = state.customer("ws_levqor", "hooli") {
        out.push((
            "Usage against the plan's limits, as the customer sees it".to_string(),
            format!(
                "curl -s {base}/v1/customers/{}/usage -H 'Authorization: Bearer {}'",
                c.id, c.key
            ),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::{CustomerState, WorkspaceState};

    fn sample_state() -> DemoState {
        let ws = |id: &str| WorkspaceState {
            id: id.into(),
            name: id.into(),
            catalog: "x.yaml".into(),
            catalog_version: 1,
            admin_key: format!("tg_admin_{id}"),
        };
        let cust = |workspace: &str, id: &str, plan: &str| CustomerState {
            workspace: workspace.into(),
            id: id.into(),
            name: id.into(),
            plan: plan.into(),
            trial: plan == "early",
            key_id: format!("key_{id}"),
            key: format!("tg_live_{id}"),
        };
        DemoState {
            admin_key: "tg_admin_root".into(),
            workspaces: vec![ws("ws_apex"), ws("ws_levqor")],
            customers: vec![
                cust("ws_apex", "globex", "free"),
                cust("ws_apex", "initech", "early"),
                cust("ws_levqor", "hooli", "developer"),
            ],
        }
    }

    #[test]
    fn the_summary_lists_urls_keys_and_four_examples() {
        let text = summary("http://127.0.0.1:8080", Path::new("d"), &sample_state());
        for needle in [
            "http://127.0.0.1:8080/healthz",
            "http://127.0.0.1:8080/openapi.json",
            "http://127.0.0.1:8080/metrics",
            "tg_admin_root",
            "tg_admin_ws_apex",
            "early (trial)",
            "tg_live_hooli",
            "/v1/customers/hooli/usage",
        ] {
            assert!(text.contains(needle), "missing {needle} in\n{text}");
        }
        assert_eq!(text.matches("curl -s").count(), 4, "{text}");
    }

    #[test]
    fn tables_align_columns() {
        let t = table(
            &["A", "B"],
            &[
                vec!["long-cell".into(), "x".into()],
                vec!["s".into(), "y".into()],
            ],
        );
        let lines: Vec<&str> = t.lines().collect();
        let col = |l: &str, c: &str| l.find(c).unwrap();
        assert_eq!(col(lines[0], "B"), col(lines[1], "x"));
        assert_eq!(col(lines[1], "x"), col(lines[2], "y"));
    }
}
