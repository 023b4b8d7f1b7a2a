//! Notifications: delivers what the outbox holds, as webhooks (docs/WEBHOOKS.md, this module)
//! and as email ([`email`], docs/EMAIL.md).
//!
//! One pass ([`run_once`]) visits every workspace ([`run_workspace`]): fans new outbox events
//! out to the endpoints that want them (exactly once per event and endpoint, in the store),
//! drops log lines past their
//! retention, then attempts every pending delivery that is due on its customer's clock (a test
//! clock's time, or the wall clock), one worker per delivery by a compare-and-set claim. A
//! failed attempt is retried on [`RETRY_SCHEDULE`] with jitter; an endpoint failing for longer
//! than [`NotifyConfig::disable_after`] is disabled and `webhook_endpoint.disabled` written to
//! the outbox with that change.
//!
//! Outbound requests go only to addresses the SSRF rule allows ([`ssrf`]): private, loopback and
//! link-local ones only for a workspace the operator allowed them for (or every workspace, with
//! the server-wide [`NotifyConfig::allow_private_addresses`] of local development).

pub mod email;
pub mod signature;
pub mod ssrf;

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde_json::json;
use tollgate_core::ids::WorkspaceId;
use tollgate_store::outbox::OutboxEvent;
use tollgate_store::webhooks::{
    AttemptOutcome, DeliveryStatus, Disable, WebhookAttemptRecord, WebhookDeliveryRecord,
    WebhookEndpointRecord,
};

use crate::engine::Engine;
use crate::error::AppResult;

/// The wait after the n-th failed attempt (before jitter): over three days in all, then the
/// delivery fails.
pub const RETRY_SCHEDULE: &[SignedDuration] = &[
    SignedDuration::from_secs(5),
    SignedDuration::from_secs(5 * 60),
    SignedDuration::from_secs(30 * 60),
    SignedDuration::from_hours(2),
    SignedDuration::from_hours(5),
    SignedDuration::from_hours(10),
    SignedDuration::from_hours(10),
    SignedDuration::from_hours(10),
    SignedDuration::from_hours(10),
    SignedDuration::from_hours(10),
    SignedDuration::from_hours(10),
    SignedDuration::from_hours(10),
];

/// The wait after failed attempt number `attempt` (1-based), stretched by `jitter_permille`
/// (900..=1100: ±10 %); `None` after the last one.
pub fn retry_delay(attempt: i64, jitter_permille: i64) -> Option<SignedDuration> {
    let index = usize::try_from(attempt.checked_sub(1)?).ok()?;
    let base = RETRY_SCHEDULE.get(index)?;
    let millis = i64::try_from(base.as_millis()).ok()?;
    Some(SignedDuration::from_millis(
        millis.checked_mul(jitter_permille)? / 1000,
    ))
}

/// The largest response excerpt kept in the log.
pub const EXCERPT_BYTES: usize = 1024;

/// How webhooks are delivered (serve flags, docs/WEBHOOKS.md).
#[derive(Debug, Clone)]
pub struct NotifyConfig {
    /// Let the endpoints of every workspace name private, loopback, link-local and unique-local
    /// addresses (local development only; one workspace is allowed with
    /// `PUT /v1/workspaces/{id}/webhook_settings`).
    pub allow_private_addresses: bool,
    /// Per-request timeout (connect to last byte).
    pub request_timeout: Duration,
    /// An endpoint failing without a success for this long is disabled.
    pub disable_after: SignedDuration,
    /// How long attempt log lines are kept (wall time).
    pub log_retention: SignedDuration,
    /// How long the previous secret keeps signing after a rotation.
    pub secret_overlap: SignedDuration,
    /// How often this node's worker looks for work; `None`: no worker on this node.
    pub poll_interval: Option<Duration>,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            allow_private_addresses: false,
            request_timeout: Duration::from_secs(10),
            disable_after: SignedDuration::from_hours(5 * 24),
            log_retention: SignedDuration::from_hours(30 * 24),
            secret_overlap: SignedDuration::from_hours(24),
            poll_interval: Some(Duration::from_secs(1)),
        }
    }
}

/// `t + d`, held at the ends of time instead of overflowing.
pub fn later(t: Timestamp, d: SignedDuration) -> Timestamp {
    t.saturating_add(d).unwrap_or(if d.is_negative() {
        Timestamp::MIN
    } else {
        Timestamp::MAX
    })
}

/// A claim outlives the slowest attempt.
fn lease(config: &NotifyConfig) -> SignedDuration {
    SignedDuration::try_from(config.request_timeout)
        .unwrap_or(SignedDuration::from_secs(60))
        .saturating_add(SignedDuration::from_secs(60))
}

/// Fans out, prunes and attempts every due delivery of every workspace once; the number of
/// attempts made.
pub async fn run_once(engine: &Engine, config: &NotifyConfig) -> AppResult<usize> {
    let mut attempts = 0;
    for ws in engine.store().list_workspaces().await? {
        // One workspace's failure (its database rows, say) does not stop the others'.
        match run_workspace(engine, config, &ws.id).await {
            Ok(n) => attempts += n,
            Err(e) => {
                tracing::warn!(workspace = %ws.id, error = %e.describe(), "webhook delivery pass failed");
            }
        }
    }
    Ok(attempts)
}

/// [`run_once`] for one workspace: fan-out, prune, then every due delivery; the attempts made.
pub async fn run_workspace(
    engine: &Engine,
    config: &NotifyConfig,
    workspace: &str,
) -> AppResult<usize> {
    let store = engine.store();
    let ws = WorkspaceId::from(workspace);
    let wall = engine.now();
    store.fan_out_webhooks(&ws, 1000, wall).await?;
    let allow_private = allow_private_addresses(engine, config, &ws).await?;
    store
        .prune_webhook_attempts(&ws, later(wall, -config.log_retention))
        .await?;
    let mut attempts = 0;
    for d in store.pending_webhook_deliveries(&ws, wall, 200).await? {
        let now = engine.now_for(workspace, d.test_clock.as_deref()).await?;
        if d.next_attempt_at > now {
            continue;
        }
        let wall = engine.now();
        let until = later(wall, lease(config));
        if !store
            .claim_webhook_delivery(&ws, &d.id, wall, until)
            .await?
        {
            continue;
        }
        attempt(engine, config, allow_private, &ws, d, now).await?;
        attempts += 1;
    }
    Ok(attempts)
}

/// Whether `workspace`'s endpoints may name private addresses: the server allows them for all,
/// or the operator for this one.
pub async fn allow_private_addresses(
    engine: &Engine,
    config: &NotifyConfig,
    workspace: &WorkspaceId,
) -> AppResult<bool> {
    Ok(config.allow_private_addresses
        || engine
            .store()
            .webhook_private_addresses_allowed(workspace)
            .await?)
}

/// Runs [`run_once`] every `interval` until the task is dropped.
pub async fn run_forever(engine: std::sync::Arc<Engine>, config: NotifyConfig, interval: Duration) {
    loop {
        if let Err(e) = run_once(&engine, &config).await {
            tracing::warn!(error = %e.describe(), "webhook delivery pass failed");
        }
        tokio::time::sleep(interval).await;
    }
}

/// What the receiver answered, or why it did not.
struct Answer {
    status: Option<u16>,
    excerpt: Option<String>,
    error: Option<String>,
}

/// The JSON body of a delivery.
pub fn body(event: &OutboxEvent) -> String {
    json!({
        "type": event.event_type,
        "timestamp": event.occurred_at.to_string(),
        "data": event.data,
    })
    .to_string()
}

/// The secrets signing at `wall`: the current one, and the previous one during its overlap.
pub fn signing_keys(endpoint: &WebhookEndpointRecord, wall: Timestamp) -> Vec<Vec<u8>> {
    let previous = endpoint
        .previous_secret
        .as_deref()
        .filter(|_| endpoint.previous_secret_until.is_some_and(|t| t > wall));
    [Some(endpoint.secret.as_str()), previous]
        .into_iter()
        .flatten()
        .filter_map(signature::secret_key)
        .collect()
}

async fn send(
    config: &NotifyConfig,
    allow_private: bool,
    url: &str,
    headers: [(&'static str, String); 4],
    body: String,
) -> Answer {
    let failed = |error: String| Answer {
        status: None,
        excerpt: None,
        error: Some(error),
    };
    let url = match ssrf::parse_url(url) {
        Ok(url) => url,
        Err(e) => return failed(e.detail),
    };
    let addr = match ssrf::resolve(&url, allow_private, config.request_timeout).await {
        Ok(addr) => addr,
        Err(e) => return failed(e),
    };
    let host = url.host_str().unwrap_or_default().to_owned();
    let client = match reqwest::Client::builder()
        .timeout(config.request_timeout)
        .redirect(reqwest::redirect::Policy::none())
        // A proxy from the environment would make the connection itself, to an address nobody
        // checked: the request goes straight to the checked one.
        .no_proxy()
        .resolve(&host, addr)
        .user_agent(concat!("Tollgate-Webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(e) => return failed(format!("HTTP client: {e}")),
    };
    let mut request = client
        .post(url)
        .header("content-type", "application/json")
        .body(body);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let mut response = match request.send().await {
        Ok(r) => r,
        Err(e) if e.is_timeout() => return failed(format!("timed out: {e}")),
        Err(e) => return failed(format!("request failed: {e}")),
    };
    let status = response.status().as_u16();
    let mut bytes = Vec::new();
    let mut error = None;
    while bytes.len() < EXCERPT_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            Ok(None) => break,
            Err(e) => {
                error = Some(format!("reading the answer: {e}"));
                break;
            }
        }
    }
    bytes.truncate(EXCERPT_BYTES);
    let mut excerpt = String::from_utf8_lossy(&bytes).into_owned();
    while excerpt.len() > EXCERPT_BYTES {
        excerpt.pop();
    }
    Answer {
        status: Some(status),
        excerpt: Some(excerpt),
        error,
    }
}

async fn attempt(
    engine: &Engine,
    config: &NotifyConfig,
    allow_private: bool,
    workspace: &WorkspaceId,
    d: WebhookDeliveryRecord,
    now: Timestamp,
) -> AppResult<()> {
    let store = engine.store();
    let Some(endpoint) = store.get_webhook_endpoint(workspace, &d.endpoint).await? else {
        return Ok(());
    };
    let Some(event) = store.get_domain_event(workspace, &d.event).await? else {
        return Ok(());
    };
    let body = body(&event);
    let wall = engine.now();
    let timestamp = wall.as_second();
    let keys = signing_keys(&endpoint, wall);
    let headers = [
        ("webhook-id", d.event.clone()),
        ("webhook-timestamp", timestamp.to_string()),
        (
            "webhook-signature",
            signature::header(&keys, &d.event, timestamp, &body),
        ),
        ("tollgate-delivery-attempt", (d.attempts + 1).to_string()),
    ];
    let started = std::time::Instant::now();
    let answer = send(config, allow_private, &endpoint.url, headers, body.clone()).await;
    let duration_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    let number = d.attempts + 1;
    let ok = answer.error.is_none() && answer.status.is_some_and(|s| (200..300).contains(&s));
    let mut failing_since = None;
    let mut disable = None;
    let (status, next) = if ok {
        (DeliveryStatus::Succeeded, d.next_attempt_at)
    } else {
        let since = endpoint.failing_since.unwrap_or(now);
        failing_since = Some(since);
        if endpoint.enabled && now.duration_since(since) >= config.disable_after {
            let reason = format!(
                "failing since {since} (more than {:#})",
                config.disable_after
            );
            let event = engine.domain_event(
                workspace.as_str(),
                None,
                crate::app::outbox::types::WEBHOOK_ENDPOINT_DISABLED,
                now,
                json!({
                    "id": endpoint.id,
                    "url": endpoint.url,
                    "failing_since": since.to_string(),
                    "reason": reason,
                }),
            );
            disable = Some(Disable {
                reason,
                event,
                at: wall,
            });
        }
        let jitter = 900 + i64::from(rand::random::<u8>()) * 200 / 255;
        match retry_delay(number, jitter) {
            Some(wait) => (DeliveryStatus::Pending, later(now, wait)),
            None => (DeliveryStatus::Failed, now),
        }
    };
    let last_error = answer.error.clone().or_else(|| {
        answer
            .status
            .filter(|_| !ok)
            .map(|s| format!("the receiver answered {s}"))
    });
    let outcome = AttemptOutcome {
        attempt: WebhookAttemptRecord {
            workspace: workspace.to_string(),
            delivery: d.id.clone(),
            attempt: number,
            endpoint: endpoint.id.clone(),
            url: endpoint.url.clone(),
            webhook_timestamp: timestamp,
            request_body: body,
            response_status: answer.status.map(i64::from),
            response_excerpt: answer.excerpt,
            duration_ms,
            error: answer.error,
            attempted_at: wall,
        },
        status,
        next_attempt_at: next,
        last_status: answer.status.map(i64::from),
        last_error,
        failing_since,
        disable,
    };
    store.record_webhook_attempt(&outcome).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn retries_span_more_than_three_days_then_stop() {
        let total: SignedDuration = (1..=i64::try_from(RETRY_SCHEDULE.len()).unwrap())
            .map(|n| retry_delay(n, 1000).unwrap())
            .fold(SignedDuration::ZERO, |a, b| a + b);
        assert!(total > SignedDuration::from_hours(72), "{total:?}");
        assert_eq!(retry_delay(13, 1000), None);
        assert_eq!(retry_delay(0, 1000), None);
        assert_eq!(retry_delay(1, 900), Some(SignedDuration::from_millis(4500)));
        assert_eq!(retry_delay(2, 1100), Some(SignedDuration::from_secs(330)));
    }
}
