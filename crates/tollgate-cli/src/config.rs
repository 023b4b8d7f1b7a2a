//! Settings of `tollgate serve`: flags, `TOLLGATE_*` environment variables, a TOML config file,
//! and defaults, in that order of precedence.
//!
//! clap reads each flag and, when the flag is absent, its environment variable, so an `Option`
//! from clap already means "flag or env"; the config file only fills what both left empty. The
//! admin key is deliberately not a flag: a secret on the command line shows in `ps` and in shell
//! history, so it comes from `TOLLGATE_ADMIN_KEY` or the config file only.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, ValueEnum};
use serde::Deserialize;
use tollgate_server::gateway::GatewayConfig;
use tollgate_server::notify::email::smtp::{SmtpConfig, TlsMode};
use tollgate_server::{RedisFailureMode, ServerConfig};

/// Where the server listens when nothing says otherwise: port 8080 on loopback only, so a first
/// run never exposes an API to the network by accident.
pub const DEFAULT_PORT: u16 = 8080;
#[cfg(test)]
const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// The data dir (SQLite file) when nothing says otherwise.
pub const DEFAULT_DATA_DIR: &str = "./tollgate-data";
/// The log filter when neither `TOLLGATE_LOG` nor the config file sets one.
pub const DEFAULT_LOG: &str = "info";

/// Flags of `tollgate serve`.
#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// Address to listen on, `IP:PORT` [default: 127.0.0.1:8080].
    #[arg(long, env = "TOLLGATE_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Directory of the embedded SQLite database [default: ./tollgate-data].
    #[arg(long, env = "TOLLGATE_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Use PostgreSQL instead of SQLite: `postgres://user:pass@host/db`.
    #[arg(
        long,
        env = "TOLLGATE_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// Share limit counters with other nodes through Redis: `redis://host:6379`.
    #[arg(
        long,
        env = "TOLLGATE_REDIS_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub redis_url: Option<String>,
    /// What checks do while Redis is unreachable [default: fail_open].
    #[arg(long, env = "TOLLGATE_REDIS_FAILURE_MODE", value_name = "MODE")]
    pub redis_failure_mode: Option<FailureMode>,
    /// A TOML config file (keys: listen, data_dir, database_url, admin_key, redis_url,
    /// redis_failure_mode, log; a [gateway] section also starts the metering gateway).
    #[arg(long, env = "TOLLGATE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Run no scheduled jobs on this node (renewals, trial ends, reminders); other nodes, or
    /// this one restarted without the flag, catch up in due order.
    #[arg(long, env = "TOLLGATE_NO_JOBS")]
    pub no_jobs: bool,
    /// How often the ledger seals new events and signs a checkpoint, in seconds (0: only on
    /// `POST /v1/ledger/seal`) [default: 10].
    #[arg(long, env = "TOLLGATE_LEDGER_INTERVAL_SECONDS", value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub ledger_interval_seconds: Option<u64>,
    /// How long a customer's loaded state may go unused before this node forgets it, in
    /// seconds (reloaded from the store on its next use; 0: never) [default: 3600].
    #[arg(long, env = "TOLLGATE_EVICT_IDLE_SECONDS", value_name = "SECONDS", value_parser = parse_evict_idle)]
    pub evict_idle_seconds: Option<u64>,
    /// Workers of a bill run (`POST /v1/bill_runs`, `tollgate bill-run`) on PostgreSQL, 1 to 8:
    /// each claims chunks of customers (`FOR UPDATE SKIP LOCKED`) and writes one chunk while
    /// it reads and rates the next, on up to two of the pool's connections. SQLite has one
    /// writer: only 1 [default: 1].
    #[arg(long, env = "TOLLGATE_BILL_RUN_WORKERS", value_name = "N", value_parser = clap::value_parser!(u16).range(1..=8))]
    pub bill_run_workers: Option<u16>,
    /// How often the job worker looks for due jobs, in milliseconds [default: 1000].
    #[arg(long, env = "TOLLGATE_JOBS_POLL_MS", value_name = "MS", value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub jobs_poll_ms: Option<u64>,
    /// Let the webhook endpoints of every workspace name private, loopback, link-local and
    /// unique-local addresses (local development only; one workspace is allowed them with
    /// `PUT /v1/workspaces/{id}/webhook_settings`; docs/WEBHOOKS.md).
    #[arg(long, env = "TOLLGATE_WEBHOOKS_ALLOW_PRIVATE_ADDRESSES")]
    pub webhooks_allow_private_addresses: bool,
    /// Timeout of one webhook request, in seconds [default: 10].
    #[arg(long, env = "TOLLGATE_WEBHOOKS_TIMEOUT_SECONDS", value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=300))]
    pub webhooks_timeout_seconds: Option<u64>,
    /// Disable a webhook endpoint failing without a success for this many hours [default: 120].
    #[arg(long, env = "TOLLGATE_WEBHOOKS_DISABLE_AFTER_HOURS", value_name = "HOURS", value_parser = clap::value_parser!(i64).range(1..=8760))]
    pub webhooks_disable_after_hours: Option<i64>,
    /// Keep the webhook delivery log this many days [default: 30].
    #[arg(long, env = "TOLLGATE_WEBHOOKS_LOG_DAYS", value_name = "DAYS", value_parser = clap::value_parser!(i64).range(1..=3650))]
    pub webhooks_log_days: Option<i64>,
    /// After a secret rotation the old secret signs too for this many hours [default: 24].
    #[arg(long, env = "TOLLGATE_WEBHOOKS_SECRET_OVERLAP_HOURS", value_name = "HOURS", value_parser = clap::value_parser!(i64).range(0..=720))]
    pub webhooks_secret_overlap_hours: Option<i64>,
    /// A file holding the master key that seals license signing keys and signs download links
    /// (32 random bytes as 64 hex digits or base64; `openssl rand -hex 32`). The key itself may
    /// come from TOLLGATE_MASTER_KEY instead, never from a flag. Without one, license and
    /// download-link calls answer 503 `master_key_missing`.
    #[arg(long, env = "TOLLGATE_MASTER_KEY_FILE", value_name = "FILE")]
    pub master_key_file: Option<PathBuf>,
    /// Send email through this SMTP relay: `smtp://user@host:587` (STARTTLS) or
    /// `smtps://user@host:465` (TLS); the password in the URL or in TOLLGATE_SMTP_PASSWORD.
    /// Without it this deployment sends no email (docs/EMAIL.md).
    #[arg(
        long,
        env = "TOLLGATE_SMTP_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub smtp_url: Option<String>,
    /// Where this server is reached from outside (`https://billing.example.com`): the origin of
    /// the customer portal's sign-in links sent by email for requests that came through no
    /// custom domain (docs/DASHBOARD.md, "Sign-in by email").
    #[arg(long, env = "TOLLGATE_PUBLIC_URL", value_name = "URL", value_parser = public_origin)]
    pub public_url: Option<String>,
    /// How the SMTP connection is protected [default: starttls for smtp://, tls for smtps://];
    /// `none` sends credentials only to a relay on this host.
    #[arg(long, env = "TOLLGATE_SMTP_TLS", value_name = "MODE")]
    pub smtp_tls: Option<SmtpTls>,
    /// Timeout of each SMTP step (connect, greeting, each command), in seconds [default: 30].
    #[arg(long, env = "TOLLGATE_SMTP_TIMEOUT_SECONDS", value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=300))]
    pub smtp_timeout_seconds: Option<u64>,
    /// PEM certificates to trust beside the system's roots for the SMTP relay's TLS (a relay
    /// with a private CA).
    #[arg(long, env = "TOLLGATE_SMTP_CA_FILE", value_name = "FILE")]
    pub smtp_ca_file: Option<PathBuf>,
}

/// `--smtp-tls` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SmtpTls {
    /// A plain connection upgraded with STARTTLS, which the relay must offer.
    #[value(name = "starttls")]
    StartTls,
    /// TLS from the first byte (SMTPS).
    #[value(name = "tls")]
    Tls,
    /// No encryption (a relay on this host, or a test's).
    #[value(name = "none")]
    None,
}

impl From<SmtpTls> for TlsMode {
    fn from(mode: SmtpTls) -> Self {
        match mode {
            SmtpTls::StartTls => TlsMode::StartTls,
            SmtpTls::Tls => TlsMode::Tls,
            SmtpTls::None => TlsMode::None,
        }
    }
}

/// The email of this deployment from `--smtp-url`, `--smtp-tls`, `--smtp-timeout-seconds` and
/// `TOLLGATE_SMTP_PASSWORD` (`password`). Refused: settings that would do nothing (a TLS mode, a
/// timeout or a password without a URL; a password twice) and what `SmtpConfig::parse` refuses.
pub fn email(
    args: &ServeArgs,
    password: Option<String>,
) -> anyhow::Result<Option<tollgate_server::notify::email::EmailConfig>> {
    let Some(url) = &args.smtp_url else {
        if args.smtp_tls.is_some()
            || args.smtp_timeout_seconds.is_some()
            || args.smtp_ca_file.is_some()
            || password.is_some()
        {
            anyhow::bail!(
                "--smtp-tls, --smtp-timeout-seconds, --smtp-ca-file and TOLLGATE_SMTP_PASSWORD do \
                 nothing without --smtp-url (TOLLGATE_SMTP_URL)"
            );
        }
        return Ok(None);
    };
    let timeout = std::time::Duration::from_secs(args.smtp_timeout_seconds.unwrap_or(30));
    let mut smtp = SmtpConfig::parse(url, args.smtp_tls.map(Into::into), timeout)
        .map_err(|e| anyhow::anyhow!("--smtp-url: {e}"))?;
    if smtp.username.is_some() && !smtp.has_password() && password.is_none() {
        anyhow::bail!(
            "--smtp-url names a user but no password: put it in the URL or in TOLLGATE_SMTP_PASSWORD"
        );
    }
    if let Some(password) = password {
        smtp = smtp
            .with_password(password)
            .map_err(|e| anyhow::anyhow!("TOLLGATE_SMTP_PASSWORD: {e}"))?;
    }
    if let Some(path) = &args.smtp_ca_file {
        let pem = std::fs::read(path)
            .with_context(|| format!("cannot read the SMTP CA file {}", path.display()))?;
        smtp = smtp
            .with_root_certificates(pem)
            .map_err(|e| anyhow::anyhow!("--smtp-ca-file {}: {e}", path.display()))?;
    }
    Ok(Some(tollgate_server::notify::email::EmailConfig::new(smtp)))
}

/// [`RedisFailureMode`] as flag and file values, spelt the same in both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureMode {
    /// Answer from this node's own counters until Redis is back.
    #[value(name = "fail_open")]
    FailOpen,
    /// Refuse checks that need a shared counter (503).
    #[value(name = "fail_closed")]
    FailClosed,
}

impl From<FailureMode> for RedisFailureMode {
    fn from(mode: FailureMode) -> Self {
        match mode {
            FailureMode::FailOpen => RedisFailureMode::FailOpen,
            FailureMode::FailClosed => RedisFailureMode::FailClosed,
        }
    }
}

/// The config file. Unknown keys are rejected: a misspelt `data-dir` silently falling back to
/// the default would put the database somewhere the operator never looks.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub admin_key: Option<String>,
    pub redis_url: Option<String>,
    pub redis_failure_mode: Option<FailureMode>,
    /// A tracing filter, e.g. `info` or `tollgate_server=debug,info`.
    pub log: Option<String>,
    /// The file of the master key (see `--master-key-file`).
    pub master_key_file: Option<PathBuf>,
    /// The `[gateway]` section, kept raw here: the server crate owns its format and reads it
    /// from the file's text ([`GatewayConfig::from_toml`]), so its errors carry file lines.
    pub gateway: Option<toml::Table>,
}

impl FileConfig {
    /// Reads and parses a config file, with its `[gateway]` section if it has one; errors name
    /// the file and, for TOML errors, the line.
    pub fn load(path: &Path) -> anyhow::Result<(Self, Option<GatewayConfig>)> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        let invalid = || format!("invalid config file {}", path.display());
        let file = Self::parse(&text).with_context(invalid)?;
        let gateway = match file.gateway {
            None => None,
            Some(_) => Some(GatewayConfig::from_toml(&text).with_context(invalid)?),
        };
        Ok((file, gateway))
    }

    fn parse(text: &str) -> anyhow::Result<Self> {
        // toml's message already carries the line, the column and a caret under the mistake.
        toml::from_str(text).map_err(|e| anyhow::anyhow!("{}", e.to_string().trim_end()))
    }
}

/// Everything `serve` needs once the sources are merged.
#[derive(Debug, Clone)]
pub struct ServeSettings {
    pub server: ServerConfig,
    pub log: String,
    /// The metering gateway to run beside the API, from the file's `[gateway]` section.
    pub gateway: Option<GatewayConfig>,
}

/// The environment variables read outside clap (clap handles the ones that mirror a flag).
#[derive(Debug, Default, Clone)]
pub struct Env {
    pub admin_key: Option<String>,
    pub log: Option<String>,
}

impl Env {
    fn from_process() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
        Env {
            admin_key: var("TOLLGATE_ADMIN_KEY"),
            log: var("TOLLGATE_LOG"),
        }
    }
}

/// Merges flags/env, the config file named by `--config` (if any) and the defaults.
/// `--public-url`: an `http(s)://host[:port]` origin, kept without a trailing slash.
fn public_origin(text: &str) -> Result<String, String> {
    let url = text.trim().trim_end_matches('/');
    let host = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .unwrap_or_default();
    let ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    if ok {
        Ok(url.to_owned())
    } else {
        Err(format!(
            "{text:?} is not an origin: give one such as https://billing.example.com"
        ))
    }
}

pub fn resolve_from_env(args: &ServeArgs) -> anyhow::Result<ServeSettings> {
    let (file, gateway) = match &args.config {
        Some(path) => FileConfig::load(path)?,
        None => (FileConfig::default(), None),
    };
    let key_file = args
        .master_key_file
        .clone()
        .or(file.master_key_file.clone());
    let mut settings = resolve(args, file, Env::from_process());
    settings.gateway = gateway;
    bill_run_workers_fit(&settings.server)?;
    let key = std::env::var("TOLLGATE_MASTER_KEY")
        .ok()
        .filter(|v| !v.is_empty());
    settings.server.master_key = master_key(key, key_file.as_deref())?;
    let smtp_password = std::env::var("TOLLGATE_SMTP_PASSWORD")
        .ok()
        .filter(|v| !v.is_empty());
    settings.server.email = email(args, smtp_password)?;
    Ok(settings)
}

/// The master key that seals license signing keys and signs download links (`docs/TRUST.md`):
/// `TOLLGATE_MASTER_KEY` (64 hex digits or base64 of 32 bytes), or the file named by
/// `--master-key-file` / `TOLLGATE_MASTER_KEY_FILE` / `master_key_file`. `None`: those features
/// answer `master_key_missing`; there is no default key. A key that is given but unreadable
/// stops the server at start.
pub fn master_key(
    key: Option<String>,
    file: Option<&Path>,
) -> anyhow::Result<Option<tollgate_server::sealing::MasterKey>> {
    let text = match (key, file) {
        (Some(_), Some(_)) => {
            anyhow::bail!("set TOLLGATE_MASTER_KEY or a master key file, not both")
        }
        (Some(key), None) => key,
        (None, Some(path)) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the master key file {}", path.display()))?,
        (None, None) => return Ok(None),
    };
    let key = tollgate_server::sealing::MasterKey::parse(&text)
        .context("the master key (TOLLGATE_MASTER_KEY or its file) is not a master key")?;
    Ok(Some(key))
}

/// The precedence rule, kept free of I/O so it can be tested directly.
pub fn resolve(args: &ServeArgs, file: FileConfig, env: Env) -> ServeSettings {
    let default_listen = SocketAddr::from(([127, 0, 0, 1], DEFAULT_PORT));
    let listen = args.listen.or(file.listen).unwrap_or(default_listen);
    let data_dir = args
        .data_dir
        .clone()
        .or(file.data_dir)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
    let mut server = ServerConfig::new(listen, data_dir);
    server.database_url = args.database_url.clone().or(file.database_url);
    server.admin_key = env.admin_key.or(file.admin_key);
    server.redis_url = args.redis_url.clone().or(file.redis_url);
    if let Some(mode) = args.redis_failure_mode.or(file.redis_failure_mode) {
        server.redis_failure_mode = mode.into();
    }
    if args.no_jobs {
        server.jobs = None;
    } else if let (Some(ms), Some(jobs)) = (args.jobs_poll_ms, server.jobs.as_mut()) {
        jobs.poll_interval = std::time::Duration::from_millis(ms);
    }
    server.public_url = args.public_url.clone();
    if let Some(workers) = args
        .bill_run_workers
        .and_then(|n| std::num::NonZeroUsize::new(usize::from(n)))
    {
        server.bill_run.workers = workers;
    }
    if let Some(seconds) = args.evict_idle_seconds {
        server.evict_idle_after = (seconds > 0).then(|| std::time::Duration::from_secs(seconds));
    }
    if let Some(seconds) = args.ledger_interval_seconds {
        server.ledger_interval = (seconds > 0).then(|| std::time::Duration::from_secs(seconds));
    }
    let hooks = &mut server.webhooks;
    hooks.allow_private_addresses = args.webhooks_allow_private_addresses;
    if let Some(s) = args.webhooks_timeout_seconds {
        hooks.request_timeout = std::time::Duration::from_secs(s);
    }
    if let Some(h) = args.webhooks_disable_after_hours {
        hooks.disable_after = jiff::SignedDuration::from_hours(h);
    }
    if let Some(d) = args.webhooks_log_days {
        hooks.log_retention = jiff::SignedDuration::from_hours(d.saturating_mul(24));
    }
    if let Some(h) = args.webhooks_secret_overlap_hours {
        hooks.secret_overlap = jiff::SignedDuration::from_hours(h);
    }
    ServeSettings {
        server,
        log: env.log.or(file.log).unwrap_or_else(|| DEFAULT_LOG.into()),
        gateway: None,
    }
}

/// Several bill-run workers need PostgreSQL: SQLite has one writer, so the setting would do
/// nothing there, and is refused rather than ignored.
fn bill_run_workers_fit(server: &ServerConfig) -> anyhow::Result<()> {
    let workers = server.bill_run.workers.get();
    if workers > 1 && server.database_url.is_none() {
        anyhow::bail!(
            "--bill-run-workers {workers} needs PostgreSQL (--database-url): SQLite has one \
             writer, so its bill run has one worker"
        );
    }
    Ok(())
}

/// `--evict-idle-seconds`: 0 (never) or at least 60. A shorter idle time would forget state
/// between one request's decision and its commit, which only the idle time keeps apart.
fn parse_evict_idle(text: &str) -> Result<u64, String> {
    let seconds: u64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    match seconds {
        0 | 60..=2_592_000 => Ok(seconds),
        _ => Err("use 0 (never) or 60 to 2592000 seconds".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let s = resolve(&ServeArgs::default(), FileConfig::default(), Env::default());
        assert_eq!(s.server.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(s.server.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
        assert_eq!(s.server.database_url, None);
        assert_eq!(s.server.admin_key, None);
        assert_eq!(s.server.redis_url, None);
        assert_eq!(s.server.redis_failure_mode, RedisFailureMode::default());
        assert_eq!(s.log, DEFAULT_LOG);
    }

    #[test]
    fn flags_and_env_beat_the_file_which_beats_defaults() {
        let file = FileConfig::parse(
            r#"
            listen = "0.0.0.0:9000"
            data_dir = "/var/lib/tollgate"
            database_url = "postgres://file"
            admin_key = "tg_admin_from_file_0123456789"
            redis_url = "redis://file"
            redis_failure_mode = "fail_closed"
            log = "debug"
            "#,
        )
        .unwrap();
        let args = ServeArgs {
            listen: Some("127.0.0.1:7000".parse().unwrap()),
            data_dir: None,
            database_url: Some("postgres://flag".into()),
            ..ServeArgs::default()
        };
        let env = Env {
            admin_key: Some("tg_admin_from_env_0123456789".into()),
            log: None,
        };
        let s = resolve(&args, file, env);
        assert_eq!(s.server.listen.to_string(), "127.0.0.1:7000");
        assert_eq!(s.server.data_dir, PathBuf::from("/var/lib/tollgate"));
        assert_eq!(s.server.database_url.as_deref(), Some("postgres://flag"));
        assert_eq!(
            s.server.admin_key.as_deref(),
            Some("tg_admin_from_env_0123456789")
        );
        assert_eq!(s.server.redis_url.as_deref(), Some("redis://file"));
        assert_eq!(s.server.redis_failure_mode, RedisFailureMode::FailClosed);
        assert_eq!(s.log, "debug");
    }

    #[test]
    fn the_master_key_comes_from_the_environment_or_a_file_and_is_never_made_up() {
        assert!(master_key(None, None).unwrap().is_none());
        let hex = "00".repeat(32);
        assert!(master_key(Some(hex.clone()), None).unwrap().is_some());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        std::fs::write(&path, format!("{hex}\n")).unwrap();
        assert!(master_key(None, Some(&path)).unwrap().is_some());
        assert!(master_key(Some(hex), Some(&path)).is_err(), "both");
        std::fs::write(&path, "too short").unwrap();
        let err = format!("{:#}", master_key(None, Some(&path)).unwrap_err());
        assert!(err.contains("not a master key"), "{err}");
        assert!(master_key(None, Some(&dir.path().join("missing"))).is_err());
    }

    #[test]
    fn unknown_keys_are_rejected_with_their_name() {
        let err = FileConfig::parse("data-dir = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("data-dir"), "{err}");
    }

    #[test]
    fn a_bad_address_is_rejected() {
        assert!(FileConfig::parse("listen = \"localhost\"\n").is_err());
    }

    #[test]
    fn the_example_config_parses_with_every_setting_uncommented() {
        let text = include_str!("../../../examples/tollgate.toml");
        assert_eq!(FileConfig::parse(text).unwrap(), FileConfig::default());
        // Settings are commented out as `#key = value`; prose comments have a space after `#`.
        let uncommented: String = text
            .lines()
            .map(|line| {
                line.strip_prefix('#')
                    .filter(|rest| !rest.starts_with([' ', '#']))
                    .unwrap_or(line)
            })
            .collect::<Vec<_>>()
            .join("\n");
        let all = FileConfig::parse(&uncommented).unwrap();
        assert!(all.listen.is_some() && all.data_dir.is_some() && all.database_url.is_some());
        assert!(all.admin_key.is_some() && all.log.is_some());
        assert!(all.redis_url.is_some() && all.redis_failure_mode.is_some());
        assert!(all.master_key_file.is_some());
        assert!(all.gateway.is_some());
        let gateway = GatewayConfig::from_toml(&uncommented).unwrap();
        assert!(!gateway.routes.is_empty());
    }

    #[test]
    fn a_gateway_section_is_read_with_the_gateways_own_rules() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tollgate.toml");
        let good = "listen = \"127.0.0.1:0\"\n[gateway]\nlisten = \"127.0.0.1:0\"\n\
                    upstream = \"http://127.0.0.1:9000\"\n\
                    [[gateway.routes]]\npath = \"/v1/*\"\nmeter = \"api_calls\"\n";
        std::fs::write(&path, good).unwrap();
        let (file, gateway) = FileConfig::load(&path).unwrap();
        assert!(file.listen.is_some());
        assert_eq!(gateway.unwrap().routes.len(), 1);

        std::fs::write(&path, good.replace("meter =", "metre =")).unwrap();
        let err = format!("{:#}", FileConfig::load(&path).unwrap_err());
        assert!(
            err.contains("invalid config file") && err.contains("metre"),
            "{err}"
        );

        std::fs::write(&path, "listen = \"127.0.0.1:0\"\n").unwrap();
        assert!(FileConfig::load(&path).unwrap().1.is_none());
    }

    #[test]
    fn smtp_settings_that_would_do_nothing_or_leak_are_refused() {
        let with = |url: Option<&str>, tls: Option<SmtpTls>, timeout: Option<u64>| ServeArgs {
            smtp_url: url.map(str::to_owned),
            smtp_tls: tls,
            smtp_timeout_seconds: timeout,
            ..ServeArgs::default()
        };
        assert!(email(&with(None, None, None), None).unwrap().is_none());
        for (args, password) in [
            (with(None, Some(SmtpTls::Tls), None), None),
            (with(None, None, Some(5)), None),
            (with(None, None, None), Some("pw".to_owned())),
            (with(Some("https://mail.example"), None, None), None),
            (
                with(Some("smtp://u:p@mail.example"), Some(SmtpTls::None), None),
                None,
            ),
            (
                with(Some("smtp://u:p@mail.example"), None, None),
                Some("pw".to_owned()),
            ),
            (
                with(Some("smtp://mail.example"), None, None),
                Some("pw".to_owned()),
            ),
            (with(Some("smtp://u@mail.example"), None, None), None),
        ] {
            assert!(email(&args, password).is_err(), "{args:?}");
        }
        let ok = email(
            &with(Some("smtp://u@mail.example"), None, Some(5)),
            Some("pw".into()),
        )
        .unwrap()
        .unwrap();
        assert_eq!((ok.smtp.port, ok.smtp.tls), (587, TlsMode::StartTls));
        assert_eq!(ok.smtp.timeout, std::time::Duration::from_secs(5));
        assert!(!format!("{ok:?}").contains("pw"));
    }

    #[test]
    fn several_bill_run_workers_need_postgres() {
        let args = ServeArgs {
            bill_run_workers: Some(4),
            ..ServeArgs::default()
        };
        let s = resolve(&args, FileConfig::default(), Env::default());
        assert_eq!(s.server.bill_run.workers.get(), 4);
        assert!(
            bill_run_workers_fit(&s.server).is_err(),
            "SQLite refuses it"
        );
        let on_postgres = ServeArgs {
            database_url: Some("postgres://db/tollgate".into()),
            ..args
        };
        let s = resolve(&on_postgres, FileConfig::default(), Env::default());
        assert!(bill_run_workers_fit(&s.server).is_ok());
        let s = resolve(&ServeArgs::default(), FileConfig::default(), Env::default());
        assert_eq!(s.server.bill_run.workers.get(), 1, "one by default");
        assert!(bill_run_workers_fit(&s.server).is_ok());
    }

    #[test]
    fn idle_eviction_is_never_or_at_least_a_minute() {
        assert_eq!(parse_evict_idle("0"), Ok(0));
        assert_eq!(parse_evict_idle("60"), Ok(60));
        assert_eq!(parse_evict_idle("3600"), Ok(3600));
        assert!(parse_evict_idle("59").is_err());
        assert!(parse_evict_idle("1").is_err());
        assert!(parse_evict_idle("soon").is_err());
    }
}
