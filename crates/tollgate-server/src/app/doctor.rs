//! `tollgate doctor` (docs/OPERATIONS.md): checks a deployment's configuration against what it
//! points at, the way an operator would by hand before a release or after an incident: the
//! database and its migrations, the database's clock, the master key and the signing keys it
//! must open, Redis, the SMTP relay and the payment provider. Each check says ok, warn, fail or
//! skipped with one sentence of why; nothing is changed (the database is inspected read-only
//! and migrated by nobody). The report prints as text, JSON, or a PDF (Levqor's integrity pack).

use std::time::{Duration, Instant};

use jiff::Timestamp;
use serde::Serialize;
use tollgate_core::ids::WorkspaceId;
use tollgate_store::inspect::{DatabaseInfo, inspect_postgres, inspect_sqlite};
use tollgate_store::trust::SigningKeyStatus;

use crate::ServerConfig;
use crate::error::{AppResult, Error};

/// How long one outside service may take to answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// Clock skew up to this is fine...
const SKEW_OK: Duration = Duration::from_secs(2);
/// ...up to this a warning (trials, windows and periods end a little early or late), beyond it
/// a failure.
const SKEW_FAIL: Duration = Duration::from_secs(30);

/// A check's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Ok,
    /// Works, but something is missing or about to matter.
    Warn,
    Fail,
    /// Not run, because something it needs failed first.
    Skipped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
            Status::Skipped => "skipped",
        }
    }
}

/// One check.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub status: Status,
    pub detail: String,
    /// How long it took.
    pub millis: u64,
}

/// Everything checked.
#[derive(Debug, Clone, Serialize)]
pub struct DoctorReport {
    /// This binary's version.
    pub version: String,
    pub checked_at: Timestamp,
    /// `sqlite <path>` or `postgres <url without password>`.
    pub store: String,
    pub checks: Vec<Check>,
    /// No check failed (warnings allowed).
    pub ok: bool,
}

struct Checks(Vec<Check>);

impl Checks {
    fn push(&mut self, name: &'static str, started: Instant, outcome: (Status, String)) {
        self.0.push(Check {
            name,
            status: outcome.0,
            detail: outcome.1,
            millis: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        });
    }

    fn skip(&mut self, name: &'static str, why: &str) {
        self.0.push(Check {
            name,
            status: Status::Skipped,
            detail: why.to_owned(),
            millis: 0,
        });
    }
}

/// Runs every check against `config`; `prior` are the caller's own (the configuration's
/// sources), listed first.
pub async fn doctor(config: &ServerConfig, prior: Vec<Check>) -> DoctorReport {
    let mut checks = Checks(prior);
    let store = match &config.database_url {
        Some(url) => format!("postgres {}", redact(url)),
        None => format!("sqlite {}", config.data_dir.join("tollgate.db").display()),
    };

    let started = Instant::now();
    let info = database(config).await;
    match &info {
        Ok(info) => checks.push(
            "database",
            started,
            (Status::Ok, format!("{} answers", info.server)),
        ),
        Err(e) => checks.push("database", started, (Status::Fail, e.clone())),
    }
    let mut store_usable = false;
    match &info {
        Ok(info) => {
            let started = Instant::now();
            let outcome = migrations(info);
            store_usable = outcome.0 == Status::Ok;
            checks.push("migrations", started, outcome);
            let started = Instant::now();
            checks.push("clock", started, clock(info));
        }
        Err(_) => {
            checks.skip("migrations", "the database did not answer");
            checks.skip("clock", "the database did not answer");
        }
    }

    let started = Instant::now();
    match (&config.master_key, store_usable) {
        (None, _) => checks.push(
            "signing_keys",
            started,
            (
                Status::Warn,
                "no master key (TOLLGATE_MASTER_KEY): licenses, download links, sealed \
                 payment secrets and signed ledger checkpoints are unavailable"
                    .to_owned(),
            ),
        ),
        (Some(_), false) => checks.skip(
            "signing_keys",
            "the database is not at this binary's schema; its keys are not read",
        ),
        (Some(master), true) => {
            let outcome = signing_keys(config, master)
                .await
                .unwrap_or_else(|e| (Status::Fail, e.describe()));
            checks.push("signing_keys", started, outcome);
        }
    }

    let started = Instant::now();
    let outcome = match &config.redis_url {
        None => (
            Status::Ok,
            "not configured: limits are counted in this process (one node)".to_owned(),
        ),
        Some(url) => redis(url).await,
    };
    checks.push("redis", started, outcome);

    let started = Instant::now();
    let outcome = match &config.email {
        None => (
            Status::Ok,
            "not configured: no email is sent (webhooks still are)".to_owned(),
        ),
        Some(email) => match tokio::time::timeout(PROBE_TIMEOUT, email.smtp.check()).await {
            Ok(Ok(())) => (
                Status::Ok,
                format!(
                    "{}:{} greets and accepts a session ({:?})",
                    email.smtp.host, email.smtp.port, email.smtp.tls
                ),
            ),
            Ok(Err(e)) => (Status::Fail, e),
            Err(_) => (
                Status::Fail,
                format!(
                    "{}:{} did not answer within {}s",
                    email.smtp.host,
                    email.smtp.port,
                    PROBE_TIMEOUT.as_secs()
                ),
            ),
        },
    };
    checks.push("smtp", started, outcome);

    let started = Instant::now();
    if store_usable {
        let outcome = payments(config)
            .await
            .unwrap_or_else(|e| (Status::Fail, e.describe()));
        checks.push("payments", started, outcome);
    } else {
        checks.skip(
            "payments",
            "the database is not at this binary's schema; its payment settings are not read",
        );
    }

    let ok = checks.0.iter().all(|c| c.status != Status::Fail);
    DoctorReport {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        checked_at: Timestamp::now(),
        store,
        checks: checks.0,
        ok,
    }
}

async fn database(config: &ServerConfig) -> Result<DatabaseInfo, String> {
    match &config.database_url {
        Some(url) => tokio::time::timeout(PROBE_TIMEOUT * 2, inspect_postgres(url))
            .await
            .map_err(|_| format!("{} did not answer within 10s", redact(url)))?
            .map_err(|e| format!("{}: {e}", redact(url))),
        None => {
            let path = config.data_dir.join("tollgate.db");
            if !path.exists() {
                return Err(format!(
                    "no database at {} (`tollgate serve` creates it; or pass --data-dir / \
                     --database-url)",
                    path.display()
                ));
            }
            inspect_sqlite(&path)
                .await
                .map_err(|e| format!("{}: {e}", path.display()))
        }
    }
}

fn migrations(info: &DatabaseInfo) -> (Status, String) {
    let m = &info.migrations;
    let list = |v: &[i64]| {
        v.iter()
            .map(|n| format!("{n:04}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !m.unknown.is_empty() {
        return (
            Status::Fail,
            format!(
                "the database has migrations this binary does not know ({}): a newer release \
                 migrated it; run that release",
                list(&m.unknown)
            ),
        );
    }
    if !m.changed.is_empty() || !m.failed.is_empty() {
        return (
            Status::Fail,
            format!(
                "migrations edited after they ran: [{}]; recorded as failed: [{}]",
                list(&m.changed),
                list(&m.failed)
            ),
        );
    }
    if !m.pending.is_empty() {
        return (
            Status::Warn,
            format!(
                "{} of {} applied; pending {}: `tollgate serve` applies them when it starts",
                m.applied,
                m.applied + m.pending.len(),
                list(&m.pending)
            ),
        );
    }
    (
        Status::Ok,
        format!(
            "all {} applied (latest {:04}), none unknown or edited",
            m.applied, m.latest_known
        ),
    )
}

fn clock(info: &DatabaseInfo) -> (Status, String) {
    let Some(db) = info.clock else {
        return (
            Status::Ok,
            "SQLite runs in this process and reads this machine's clock".to_owned(),
        );
    };
    let skew = Timestamp::now().duration_since(db);
    let abs = skew.unsigned_abs();
    let text = format!(
        "this machine's clock is {:.3}s {} the database's",
        abs.as_secs_f64(),
        if skew.is_negative() {
            "behind"
        } else {
            "ahead of"
        }
    );
    if abs <= SKEW_OK {
        (Status::Ok, text)
    } else if abs <= SKEW_FAIL {
        (
            Status::Warn,
            format!("{text}: trials, windows and periods end early or late by as much"),
        )
    } else {
        (Status::Fail, format!("{text}: synchronise both with NTP"))
    }
}

async fn open(config: &ServerConfig) -> AppResult<std::sync::Arc<dyn tollgate_store::Store>> {
    crate::open_store(config)
        .await
        .map_err(|e| Error::internal(format!("opening the store: {e}")))
}

async fn signing_keys(
    config: &ServerConfig,
    master: &crate::sealing::MasterKey,
) -> AppResult<(Status, String)> {
    let store = open(config).await?;
    let mut workspaces = 0;
    let mut keys = 0;
    for ws in store.list_workspaces().await? {
        workspaces += 1;
        for key in store
            .signing_keys(&WorkspaceId::from(ws.id.as_str()))
            .await?
        {
            if key.status == SigningKeyStatus::Retired {
                continue;
            }
            keys += 1;
            if !crate::app::licenses::opens(master, &key) {
                return Ok((
                    Status::Fail,
                    format!(
                        "workspace {}: key {} does not open with this master key (another key \
                         sealed it); licenses and checkpoints cannot be signed",
                        ws.id, key.id
                    ),
                ));
            }
        }
    }
    Ok((
        Status::Ok,
        format!("the master key opens all {keys} signing keys in use, in {workspaces} workspaces"),
    ))
}

async fn redis(url: &str) -> (Status, String) {
    let shown = redact(url);
    match tokio::time::timeout(PROBE_TIMEOUT, crate::counters::ping(url)).await {
        Ok(Ok(pong)) => (Status::Ok, format!("{shown} answers PING with {pong}")),
        Ok(Err(e)) => (Status::Fail, format!("{shown}: {e}")),
        Err(_) => (
            Status::Fail,
            format!("{shown} did not answer within {}s", PROBE_TIMEOUT.as_secs()),
        ),
    }
}

async fn payments(config: &ServerConfig) -> AppResult<(Status, String)> {
    let store = open(config).await?;
    let mut using = Vec::new();
    for ws in store.list_workspaces().await? {
        let settings = store
            .payment_settings(&WorkspaceId::from(ws.id.as_str()))
            .await?;
        if settings.is_some_and(|s| s.stripe_secret_key.is_some()) {
            using.push(ws.id);
        }
    }
    if using.is_empty() {
        return Ok((
            Status::Ok,
            "no workspace has Stripe set up (manual payments need no provider)".to_owned(),
        ));
    }
    let base = config.payments.stripe_api_base.trim_end_matches('/');
    let client = reqwest::Client::builder()
        .timeout(PROBE_TIMEOUT)
        .build()
        .map_err(Error::internal)?;
    Ok(
        match client.get(format!("{base}/v1/balance")).send().await {
            Ok(resp) => (
                Status::Ok,
                format!(
                    "{base} answers (HTTP {}) for the {} workspace(s) that use Stripe; their keys \
                 are not tried",
                    resp.status().as_u16(),
                    using.len()
                ),
            ),
            Err(e) => (
                Status::Fail,
                format!(
                    "{base} is unreachable ({e}); {} workspace(s) use Stripe",
                    using.len()
                ),
            ),
        },
    )
}

/// A URL with its password replaced by `***`.
pub fn redact(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

/// The report as a printable document.
pub fn document(report: &DoctorReport) -> tollgate_pdf::ChecksDocument {
    tollgate_pdf::ChecksDocument {
        issuer: "Tollgate".to_owned(),
        title: "Deployment check".to_owned(),
        reference: format!(
            "tollgate {} · {}",
            report.version,
            report.checked_at.strftime("%Y-%m-%d %H:%M:%S UTC")
        ),
        passed: report.ok,
        facts: vec![
            ("Version".to_owned(), report.version.clone()),
            (
                "Checked".to_owned(),
                report
                    .checked_at
                    .strftime("%Y-%m-%d %H:%M:%S UTC")
                    .to_string(),
            ),
            ("Store".to_owned(), report.store.clone()),
            (
                "Result".to_owned(),
                if report.ok {
                    "no check failed".to_owned()
                } else {
                    "at least one check failed".to_owned()
                },
            ),
        ],
        rows: report
            .checks
            .iter()
            .map(|c| {
                [
                    c.name.to_owned(),
                    c.status.as_str().to_owned(),
                    c.detail.clone(),
                    format!("{} ms", c.millis),
                ]
            })
            .collect(),
    }
}

/// The document as PDF bytes.
pub fn render(doc: &tollgate_pdf::ChecksDocument) -> AppResult<Vec<u8>> {
    tollgate_pdf::render_checks(doc).map_err(|e| Error::internal(format!("doctor PDF: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate_store::inspect::MigrationStatus;

    fn info(migrations: MigrationStatus, clock: Option<Timestamp>) -> DatabaseInfo {
        DatabaseInfo {
            server: "PostgreSQL 15".into(),
            migrations,
            clock,
        }
    }

    #[test]
    fn migrations_pending_warn_unknown_or_edited_fail() {
        let ok = MigrationStatus {
            latest_known: 17,
            applied: 16,
            ..Default::default()
        };
        assert_eq!(migrations(&info(ok.clone(), None)).0, Status::Ok);
        let pending = MigrationStatus {
            pending: vec![17],
            ..ok.clone()
        };
        let (status, text) = migrations(&info(pending, None));
        assert_eq!(status, Status::Warn);
        assert!(text.contains("pending 0017"), "{text}");
        let unknown = MigrationStatus {
            unknown: vec![18],
            ..ok.clone()
        };
        assert_eq!(migrations(&info(unknown, None)).0, Status::Fail);
        let changed = MigrationStatus {
            changed: vec![3],
            ..ok
        };
        assert_eq!(migrations(&info(changed, None)).0, Status::Fail);
    }

    #[test]
    fn clock_skew_is_graded() {
        let now = Timestamp::now();
        let at = |secs: i64| {
            Some(
                now.checked_sub(jiff::SignedDuration::from_secs(secs))
                    .unwrap(),
            )
        };
        let m = MigrationStatus::default();
        assert_eq!(clock(&info(m.clone(), at(0))).0, Status::Ok);
        assert_eq!(clock(&info(m.clone(), at(10))).0, Status::Warn);
        let (status, text) = clock(&info(m.clone(), at(-120)));
        assert_eq!(status, Status::Fail);
        assert!(text.contains("behind"), "{text}");
        assert_eq!(clock(&info(m, None)).0, Status::Ok);
    }

    #[test]
    fn passwords_never_print() {
        assert_eq!(
            redact("postgres://tollgate:s3cret@db:5432/billing"),
            "postgres://tollgate:***@db:5432/billing"
        );
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    }
}
