//! Webhook endpoints: register, change, rotate the secret, replay, and the operator's SSRF
//! setting per workspace (docs/WEBHOOKS.md). Delivery itself is `notify`'s.

use jiff::Timestamp;
use tollgate_core::code::Code;
use tollgate_core::ids::WorkspaceId;
use tollgate_store::webhooks::WebhookEndpointRecord;

use crate::app::outbox::types;
use crate::engine::Engine;
use crate::error::{AppResult, Error};
use crate::notify::{NotifyConfig, signature, ssrf};

/// A new endpoint.
#[derive(Debug, Clone)]
pub struct NewEndpoint {
    pub url: String,
    /// Empty: every type.
    pub event_types: Vec<String>,
    pub description: Option<String>,
    pub enabled: bool,
    /// Deliver each customer's events in order (a later one waits for an earlier one).
    pub ordered: bool,
}

/// Changes to an endpoint; `None` keeps a field.
#[derive(Debug, Clone, Default)]
pub struct EndpointChanges {
    pub url: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub description: Option<String>,
    pub enabled: Option<bool>,
    pub ordered: Option<bool>,
}

async fn check_url(
    engine: &Engine,
    config: &NotifyConfig,
    workspace: &str,
    url: &str,
) -> AppResult<()> {
    let parsed = ssrf::parse_url(url)?;
    let allowed =
        crate::notify::allow_private_addresses(engine, config, &WorkspaceId::from(workspace))
            .await?;
    ssrf::check_literal(&parsed, allowed)
}

fn check_types(wanted: &[String]) -> AppResult<()> {
    match wanted.iter().find(|t| !types::ALL.contains(&t.as_str())) {
        Some(t) => Err(Error::invalid(
            Code::UnknownEventType,
            format!("{t:?} is not an event type Tollgate sends; see docs/WEBHOOKS.md"),
        )),
        None => Ok(()),
    }
}

/// Registers an endpoint with a fresh secret (returned once, in the record).
pub async fn create(
    engine: &Engine,
    config: &NotifyConfig,
    workspace: &str,
    input: NewEndpoint,
) -> AppResult<WebhookEndpointRecord> {
    check_url(engine, config, workspace, &input.url).await?;
    check_types(&input.event_types)?;
    let now = engine.now();
    let record = WebhookEndpointRecord {
        workspace: workspace.to_owned(),
        id: crate::ids::new_id("we"),
        url: input.url,
        event_types: input.event_types,
        description: input.description,
        enabled: input.enabled,
        ordered: input.ordered,
        secret: signature::new_secret(),
        previous_secret: None,
        previous_secret_until: None,
        failing_since: None,
        disabled_reason: None,
        created_at: now,
        updated_at: now,
    };
    engine.store().create_webhook_endpoint(&record).await?;
    Ok(record)
}

async fn load(engine: &Engine, workspace: &str, id: &str) -> AppResult<WebhookEndpointRecord> {
    engine
        .store()
        .get_webhook_endpoint(&WorkspaceId::from(workspace), id)
        .await?
        .ok_or_else(|| Error::not_found("webhook endpoint", id))
}

/// Applies `changes`; enabling an endpoint clears its failure record.
pub async fn update(
    engine: &Engine,
    config: &NotifyConfig,
    workspace: &str,
    id: &str,
    changes: EndpointChanges,
) -> AppResult<WebhookEndpointRecord> {
    let mut record = load(engine, workspace, id).await?;
    if let Some(url) = changes.url {
        check_url(engine, config, workspace, &url).await?;
        record.url = url;
    }
    if let Some(types) = changes.event_types {
        check_types(&types)?;
        record.event_types = types;
    }
    if let Some(description) = changes.description {
        record.description = Some(description).filter(|d| !d.is_empty());
    }
    if let Some(enabled) = changes.enabled {
        if enabled && !record.enabled {
            record.failing_since = None;
            record.disabled_reason = None;
        }
        record.enabled = enabled;
    }
    if let Some(ordered) = changes.ordered {
        record.ordered = ordered;
    }
    record.updated_at = engine.now();
    engine.store().update_webhook_endpoint(&record).await?;
    Ok(record)
}

/// A new secret; the old one keeps signing for `config.secret_overlap` (or `overlap`).
pub async fn rotate_secret(
    engine: &Engine,
    config: &NotifyConfig,
    workspace: &str,
    id: &str,
    overlap: Option<jiff::SignedDuration>,
) -> AppResult<WebhookEndpointRecord> {
    let mut record = load(engine, workspace, id).await?;
    let overlap = overlap.unwrap_or(config.secret_overlap);
    if overlap.is_negative() {
        return Err(Error::invalid(
            Code::InvalidRequest,
            "the overlap of the old secret cannot be negative",
        ));
    }
    let now = engine.now();
    let old = std::mem::replace(&mut record.secret, signature::new_secret());
    record.previous_secret = Some(old);
    record.previous_secret_until = Some(crate::notify::later(now, overlap));
    record.updated_at = now;
    engine.store().update_webhook_endpoint(&record).await?;
    Ok(record)
}

/// Sends one delivery again (due at once, keeping its `webhook-id`).
pub async fn replay_one(
    engine: &Engine,
    workspace: &str,
    endpoint: &str,
    delivery: &str,
) -> AppResult<()> {
    let ws = WorkspaceId::from(workspace);
    let found = engine.store().get_webhook_delivery(&ws, delivery).await?;
    if found.is_none_or(|d| d.endpoint != endpoint) {
        return Err(Error::not_found("webhook delivery", delivery));
    }
    engine
        .store()
        .replay_webhook_delivery(&ws, delivery, engine.now())
        .await?;
    Ok(())
}

/// Sends again every delivery of `endpoint` whose event occurred at or after `since`.
pub async fn replay_since(
    engine: &Engine,
    workspace: &str,
    endpoint: &str,
    since: Timestamp,
) -> AppResult<u64> {
    load(engine, workspace, endpoint).await?;
    Ok(engine
        .store()
        .replay_webhook_deliveries_since(
            &WorkspaceId::from(workspace),
            endpoint,
            since,
            engine.now(),
        )
        .await?)
}

/// Lets `workspace`'s endpoints name private, loopback and link-local addresses, or stops it
/// (the SSRF rule). Only the server's operator, the default workspace's admin, decides: a
/// workspace's own admin could otherwise point webhooks at the operator's internal network.
pub async fn set_private_addresses_allowed(
    engine: &Engine,
    caller: &str,
    workspace: &str,
    allowed: bool,
) -> AppResult<()> {
    if caller != crate::DEFAULT_WORKSPACE {
        return Err(Error::forbidden(
            "only the default workspace's admin (the server's operator) changes the SSRF rule",
        ));
    }
    let ws = WorkspaceId::from(workspace);
    if engine.store().get_workspace(workspace).await?.is_none() {
        return Err(Error::not_found("workspace", workspace));
    }
    engine
        .store()
        .set_webhook_private_addresses_allowed(&ws, allowed, engine.now())
        .await?;
    Ok(())
}
