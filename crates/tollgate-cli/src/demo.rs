//! `tollgate demo`: a running server with the five field businesses loaded, in one command.
//!
//! The server runs in-process on the embedded SQLite default; everything is loaded through the
//! real HTTP API (the same calls an operator makes), so the demo doubles as a smoke test of the
//! API. The keys it generates are kept in `demo.json` in the data dir: secrets are only ever
//! shown once by the API, and a demo whose keys change on every run would break the `curl` lines
//! a user pasted into another terminal. `--reset` deletes the data dir and starts over.

mod fixtures;
mod summary;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use serde::{Deserialize, Serialize};
use tollgate_server::ServerConfig;

use self::fixtures::{WORKSPACES, sample_events};
use crate::serve;
use tollgate_client::{Client, Event, NewCustomer, NewSubscription};

/// Name of the file in the data dir that remembers the demo's keys.
const STATE_FILE: &str = "demo.json";
/// The SQLite file the server creates in the data dir (and its WAL companions).
const DB_FILE: &str = "tollgate.db";

/// Flags of `tollgate demo`.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Delete the demo's data dir first and load everything again.
    #[arg(long)]
    pub reset: bool,
    /// Address to listen on, `IP:PORT` (the same variable as `serve`'s).
    #[arg(
        long,
        env = "TOLLGATE_LISTEN",
        default_value = "127.0.0.1:8080",
        value_name = "ADDR"
    )]
    pub listen: SocketAddr,
    /// Directory of the demo's database and keys.
    #[arg(long, default_value = "./tollgate-demo", value_name = "DIR")]
    pub data_dir: PathBuf,
}

/// What the demo remembers between runs (secrets included: it is a local demo).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct DemoState {
    admin_key: String,
    workspaces: Vec<WorkspaceState>,
    customers: Vec<CustomerState>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct WorkspaceState {
    id: String,
    name: String,
    catalog: String,
    catalog_version: u64,
    admin_key: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct CustomerState {
    workspace: String,
    id: String,
    name: String,
    plan: String,
    trial: bool,
    /// The key's id (to list or revoke it) and its secret.
    key_id: String,
    key: String,
}

impl DemoState {
    fn load(dir: &Path) -> anyhow::Result<Option<Self>> {
        let path = dir.join(STATE_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        serde_json::from_str(&text)
            .map(Some)
            .with_context(|| format!("{} is damaged; run `tollgate demo --reset`", path.display()))
    }

    fn save(&self, dir: &Path) -> anyhow::Result<()> {
        let path = dir.join(STATE_FILE);
        let text =
            serde_json::to_string_pretty(self).context("the demo state does not serialize")?;
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
    }

    fn customer(&self, workspace: &str, id: &str) -> Option<&CustomerState> {
        self.customers
            .iter()
            .find(|c| c.workspace == workspace && c.id == id)
    }

    fn workspace(&self, id: &str) -> Option<&WorkspaceState> {
        self.workspaces.iter().find(|w| w.id == id)
    }
}

/// Runs the demo until Ctrl-C.
pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let dir = &args.data_dir;
    if args.reset {
        reset(dir)?;
    }
    let mut state = DemoState::load(dir)?;
    if state.is_some() && !dir.join(DB_FILE).exists() {
        println!(
            "{} has keys but no database: loading the demo again",
            dir.display()
        );
        state = None;
    } else if state.is_none() && dir.join(DB_FILE).exists() {
        bail!(
            "{} holds a database but no {STATE_FILE} (an interrupted first run, or not a demo dir); \
             run `tollgate demo --reset` to start over, or pick another --data-dir",
            dir.display()
        );
    }
    let admin_key = match &state {
        Some(s) => s.admin_key.clone(),
        None => tollgate_server::auth::generate_secret(tollgate_server::auth::ADMIN_KEY_PREFIX),
    };
    let config = ServerConfig {
        admin_key: Some(admin_key.clone()),
        ..ServerConfig::new(args.listen, dir.clone())
    };
    let server = serve::start(config).await?;
    let base = base_url(server.addr);

    let state = match state {
        Some(state) => {
            println!(
                "Reusing the demo in {} (--reset for a clean slate)",
                dir.display()
            );
            state
        }
        None => {
            println!("Loading the demo into {} ...", dir.display());
            match load(&base, &admin_key).await {
                Ok(state) => {
                    state.save(dir)?;
                    state
                }
                Err(e) => {
                    let _ = server.stop().await;
                    return Err(
                        e.context("loading the demo failed (`tollgate demo --reset` starts over)")
                    );
                }
            }
        }
    };
    print!("{}", summary::summary(&base, dir, &state));
    serve::shutdown_signal().await?;
    serve::stop(server).await?;
    println!("Stopped. `tollgate demo` picks up where this left off.");
    Ok(())
}

/// Deletes the data dir, but only if everything in it is the demo's own: `--reset` with a
/// mistyped `--data-dir` must never wipe someone's files.
fn reset(dir: &Path) -> anyhow::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", dir.display())),
    };
    for entry in entries {
        let name = entry
            .with_context(|| format!("cannot read {}", dir.display()))?
            .file_name();
        let name = name.to_string_lossy();
        if name != STATE_FILE && !name.starts_with(DB_FILE) {
            bail!(
                "refusing to reset {}: it holds {name:?}, which the demo did not create",
                dir.display()
            );
        }
    }
    std::fs::remove_dir_all(dir).with_context(|| format!("cannot delete {}", dir.display()))?;
    println!("Reset: deleted {}", dir.display());
    Ok(())
}

/// The URL clients use: a wildcard listen address is reached on loopback.
fn base_url(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, addr.port()))
}

/// Creates the workspaces, catalogs, customers, keys and events through the HTTP API.
async fn load(base: &str, admin_key: &str) -> anyhow::Result<DemoState> {
    let root = Client::new(base, admin_key)?;
    let mut state = DemoState {
        admin_key: admin_key.to_string(),
        workspaces: Vec::new(),
        customers: Vec::new(),
    };
    for spec in WORKSPACES {
        let created = root
            .create_workspace(spec.id, spec.name)
            .await
            .with_context(|| format!("cannot create workspace {}", spec.id))?;
        let ws = root.with_key(&created.admin_key);
        let applied = ws
            .put_catalog_yaml(spec.yaml)
            .await
            .with_context(|| format!("cannot apply {} to {}", spec.file, spec.id))?;
        for c in spec.customers {
            let email = format!("billing@{}.example", c.id);
            ws.create_customer(&NewCustomer {
                id: c.id,
                name: Some(c.name),
                email: Some(&email),
                test_clock: None,
                has_payment_method: false,
            })
            .await
            .with_context(|| format!("cannot create customer {} in {}", c.id, spec.id))?;
            let subscription = NewSubscription {
                plan: c.plan,
                trial: c.trial,
                addons: c.addons.iter().copied().collect(),
            };
            ws.subscribe(c.id, &subscription).await.with_context(|| {
                format!("cannot subscribe {} to {} in {}", c.id, c.plan, spec.id)
            })?;
            let key = ws
                .create_key(c.id, "demo")
                .await
                .with_context(|| format!("cannot create a key for {} in {}", c.id, spec.id))?;
            state.customers.push(CustomerState {
                workspace: spec.id.into(),
                id: c.id.into(),
                name: c.name.into(),
                plan: c.plan.into(),
                trial: c.trial,
                key_id: key.id,
                key: key.secret,
            });
        }
        let now = jiff::Timestamp::now();
        let events: Vec<Event> = sample_events(spec.id)
            .into_iter()
            .enumerate()
            .map(|(i, (customer, kind, properties))| Event {
                id: format!("demo-{}-{}", spec.id, i + 1),
                customer: customer.into(),
                kind: kind.into(),
                timestamp: Some(now),
                properties: match properties {
                    serde_json::Value::Object(fields) => fields,
                    _ => serde_json::Map::new(),
                },
            })
            .collect();
        let report = ws
            .send_events(&events)
            .await
            .with_context(|| format!("cannot send events to {}", spec.id))?;
        if report.rejected > 0 {
            // Worth seeing, not worth failing the demo over: the rest is loaded.
            let why: Vec<String> = report
                .results
                .iter()
                .filter(|r| r.status == "rejected")
                .map(|r| {
                    format!(
                        "#{} {}: {}",
                        r.index,
                        r.code.as_deref().unwrap_or("?"),
                        r.message.as_deref().unwrap_or("")
                    )
                })
                .collect();
            eprintln!(
                "warning: {} rejected {} sample event(s): {}",
                spec.id,
                report.rejected,
                why.join("; ")
            );
        }
        println!(
            "  {:<18} {:<24} catalog v{} from {}, {} customer{}, {} events",
            spec.id,
            spec.name,
            applied.version,
            spec.file,
            spec.customers.len(),
            if spec.customers.len() == 1 { "" } else { "s" },
            report.accepted + report.duplicates,
        );
        state.workspaces.push(WorkspaceState {
            id: spec.id.into(),
            name: spec.name.into(),
            catalog: spec.file.into(),
            catalog_version: applied.version,
            admin_key: created.admin_key,
        });
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_addresses_are_reached_on_loopback() {
        assert_eq!(
            base_url("0.0.0.0:9000".parse().unwrap()),
            "http://127.0.0.1:9000"
        );
        assert_eq!(base_url("[::]:9000".parse().unwrap()), "http://[::1]:9000");
        assert_eq!(
            base_url("10.0.0.5:80".parse().unwrap()),
            "http://10.0.0.5:80"
        );
    }

    #[test]
    fn reset_refuses_a_dir_with_foreign_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("thesis.tex"), "precious").unwrap();
        let err = reset(dir.path()).unwrap_err().to_string();
        assert!(err.contains("thesis.tex"), "{err}");
        assert!(dir.path().join("thesis.tex").exists());
    }

    #[test]
    fn reset_deletes_a_demo_dir() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("demo");
        std::fs::create_dir(&dir).unwrap();
        for f in [STATE_FILE, DB_FILE, "tollgate.db-wal"] {
            std::fs::write(dir.join(f), "").unwrap();
        }
        reset(&dir).unwrap();
        assert!(!dir.exists());
        reset(&dir).unwrap();
    }
}
