//! The demo's content: the five field businesses of `scenarios/`, the customers each starts
//! with, and a few events each so that usage views are not empty on first look.

use serde_json::json;

/// One field business: its workspace, catalog and sample customers.
pub struct WorkspaceSpec {
    pub id: &'static str,
    pub name: &'static str,
    pub file: &'static str,
    /// Embedded so the binary works from any directory.
    pub yaml: &'static str,
    pub customers: &'static [CustomerSpec],
}

/// A sample customer: its plan, whether it starts in a trial, and add-on quantities.
pub struct CustomerSpec {
    pub id: &'static str,
    pub name: &'static str,
    pub plan: &'static str,
    pub trial: bool,
    pub addons: &'static [(&'static str, u32)],
}

const fn customer(id: &'static str, name: &'static str, plan: &'static str) -> CustomerSpec {
    CustomerSpec {
        id,
        name,
        plan,
        trial: false,
        addons: &[],
    }
}

/// The five businesses of `scenarios/`, each on the plans its scenario exercises first.
pub const WORKSPACES: &[WorkspaceSpec] = &[
    WorkspaceSpec {
        id: "ws_lexecon",
        name: "Lexecon",
        file: "lexecon.yaml",
        yaml: include_str!("../../../../examples/catalogs/lexecon.yaml"),
        customers: &[CustomerSpec {
            trial: true,
            ..customer("acme-legal", "Acme Legal AI", "startup")
        }],
    },
    WorkspaceSpec {
        id: "ws_apex",
        name: "Netra Apex",
        file: "apex.yaml",
        yaml: include_str!("../../../../examples/catalogs/apex.yaml"),
        customers: &[
            customer("globex", "Globex", "free"),
            CustomerSpec {
                trial: true,
                ..customer("initech", "Initech", "early")
            },
        ],
    },
    WorkspaceSpec {
        id: "ws_control_plane",
        name: "AI Control Plane",
        file: "control-plane.yaml",
        yaml: include_str!("../../../../examples/catalogs/control-plane.yaml"),
        customers: &[
            customer("oss-lab", "OSS Lab", "open_source"),
            CustomerSpec {
                addons: &[("seat", 3), ("policy_pack", 1)],
                ..customer("umbrella", "Umbrella Corp", "starter")
            },
        ],
    },
    WorkspaceSpec {
        id: "ws_levqor",
        name: "Levqor",
        file: "levqor.yaml",
        yaml: include_str!("../../../../examples/catalogs/levqor.yaml"),
        customers: &[customer("hooli", "Hooli", "developer")],
    },
    WorkspaceSpec {
        id: "ws_qlp",
        name: "Quantum Layer Platform",
        file: "qlp.yaml",
        yaml: include_str!("../../../../examples/catalogs/qlp.yaml"),
        customers: &[
            customer("pied-piper", "Pied Piper", "free"),
            customer("stark", "Stark Industries", "payg"),
        ],
    },
];

/// A few events per workspace, so usage views start non-empty: `(customer, type, properties)`.
pub fn sample_events(workspace: &str) -> Vec<(&'static str, &'static str, serde_json::Value)> {
    match workspace {
        "ws_lexecon" => vec![
            (
                "acme-legal",
                "decision.evaluated",
                json!({"actor": "a", "outcome": "approved"}),
            ),
            (
                "acme-legal",
                "decision.evaluated",
                json!({"actor": "b", "outcome": "denied"}),
            ),
            (
                "acme-legal",
                "decision.evaluated",
                json!({"actor": "a", "outcome": "approved"}),
            ),
            ("acme-legal", "api.call", json!({})),
        ],
        "ws_apex" => vec![
            (
                "globex",
                "agent.run",
                json!({"level": "supervisor", "user": "u1", "tokens": 1200}),
            ),
            (
                "initech",
                "agent.run",
                json!({"level": "supervisor", "user": "u7", "tokens": 800}),
            ),
            // Decimal amounts go as strings so they stay exact.
            ("initech", "cloud.cost", json!({"amount_usd": "3000.00"})),
        ],
        "ws_control_plane" => vec![
            ("oss-lab", "ai.request", json!({})),
            ("oss-lab", "ai.request", json!({})),
            ("umbrella", "ai.request", json!({})),
        ],
        "ws_levqor" => vec![
            ("hooli", "api.call", json!({})),
            ("hooli", "api.call", json!({})),
        ],
        "ws_qlp" => vec![
            (
                "pied-piper",
                "codegen.completed",
                json!({"tier": "T0", "model": "gpt-4o-mini"}),
            ),
            (
                "stark",
                "codegen.completed",
                json!({"tier": "T2", "model": "claude-3"}),
            ),
            ("stark", "api.call", json!({})),
            ("stark", "job.finished", json!({"duration_ms": 90000})),
            ("stark", "storage.snapshot", json!({"gb": 12})),
        ],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sample_event_belongs_to_a_demo_customer() {
        for spec in WORKSPACES {
            for (customer, _, _) in sample_events(spec.id) {
                assert!(
                    spec.customers.iter().any(|c| c.id == customer),
                    "{customer} in {}",
                    spec.id
                );
            }
        }
    }
}
