//! Email: tells customers (and the operator) what happened, from the outbox, like the webhooks
//! (docs/EMAIL.md).
//!
//! One pass ([`run_once`]) visits every workspace ([`run_workspace`]): the fan-out turns new
//! outbox events into messages, one per (event, recipient), exactly once (the store's unique
//! key; the events are marked in the same transaction); then every pending message due on its
//! customer's clock is claimed by compare-and-set, composed from the store (`compose`),
//! rendered with the workspace's template or the default (`templates`) and handed to the
//! deployment's SMTP relay (`smtp`). A failure is retried on the webhooks' schedule with jitter
//! (over three days), then the message is `failed`; every message keeps its status, attempts
//! and last error (the email log).
//!
//! A workspace sends email once its operator set a from-address (`PUT /v1/email_settings`),
//! and only for events written after that (and at most [`MAX_EVENT_AGE`] before the fan-out),
//! so turning email on never mails out the past.

pub mod compose;
pub mod defaults;
pub mod smtp;
pub mod templates;

use std::collections::HashMap;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tollgate_core::ids::{CustomerId, WorkspaceId};
use tollgate_store::email::{EmailMessageRecord, EmailOutcome, EmailSettingsRecord, EmailStatus};

use self::smtp::{Outgoing, SmtpConfig};
use self::templates::{Source, TemplateName};
use crate::engine::Engine;
use crate::error::{AppResult, Error};

/// The outbox event of a self-serve signup (`POST /v1/signups`): the welcome email's. Its data
/// holds the first key's last four characters, never the key.
pub const CUSTOMER_SIGNED_UP: &str = crate::app::outbox::types::CUSTOMER_SIGNED_UP;
/// A failed charge (app/payments/dunning.rs): the payment failed email's event, with the next
/// retry's time when the catalog's dunning plans one.
pub const INVOICE_PAYMENT_FAILED: &str = crate::app::outbox::types::PAYMENT_FAILED;

/// Events older than this (wall time) when the fan-out first sees them are not emailed: a
/// worker that was off for a week does not send last week's reminders.
pub const MAX_EVENT_AGE: SignedDuration = SignedDuration::from_hours(72);

/// How email is sent on this deployment (`tollgate serve --smtp-url`, docs/EMAIL.md).
#[derive(Debug, Clone)]
pub struct EmailConfig {
    pub smtp: SmtpConfig,
    /// How often this node's worker looks for work; `None`: no worker on this node.
    pub poll_interval: Option<Duration>,
}

impl EmailConfig {
    pub fn new(smtp: SmtpConfig) -> Self {
        EmailConfig {
            smtp,
            poll_interval: Some(Duration::from_secs(1)),
        }
    }
}

/// A claim outlives the slowest attempt.
fn lease(config: &EmailConfig) -> SignedDuration {
    SignedDuration::try_from(config.smtp.timeout.saturating_mul(4))
        .unwrap_or(SignedDuration::from_secs(120))
        .saturating_add(SignedDuration::from_secs(60))
}

/// Fans out and sends every due message of every workspace once; the attempts made.
pub async fn run_once(engine: &Engine, config: &EmailConfig) -> AppResult<usize> {
    let mut attempts = 0;
    for ws in engine.store().list_workspaces().await? {
        match run_workspace(engine, config, &ws.id).await {
            Ok(n) => attempts += n,
            Err(e) => {
                tracing::warn!(workspace = %ws.id, error = %e.describe(), "email pass failed");
            }
        }
    }
    Ok(attempts)
}

/// Runs [`run_once`] every `interval` until the task is dropped.
pub async fn run_forever(engine: std::sync::Arc<Engine>, config: EmailConfig, interval: Duration) {
    loop {
        if let Err(e) = run_once(&engine, &config).await {
            tracing::warn!(error = %e.describe(), "email pass failed");
        }
        tokio::time::sleep(interval).await;
    }
}

/// [`run_once`] for one workspace: the fan-out, then every due message; the attempts made.
pub async fn run_workspace(
    engine: &Engine,
    config: &EmailConfig,
    workspace: &str,
) -> AppResult<usize> {
    let store = engine.store();
    let ws = WorkspaceId::from(workspace);
    let settings = store.get_email_settings(&ws).await?;
    fan_out(engine, &ws, settings.as_ref()).await?;
    let mut attempts = 0;
    for m in store.pending_email_messages(&ws, engine.now(), 200).await? {
        let now = engine.now_for(workspace, m.test_clock.as_deref()).await?;
        if m.next_attempt_at > now {
            continue;
        }
        let wall = engine.now();
        if !store
            .claim_email_message(&ws, &m.id, wall, crate::notify::later(wall, lease(config)))
            .await?
        {
            continue;
        }
        attempt(engine, config, settings.as_ref(), m, now).await?;
        attempts += 1;
    }
    Ok(attempts)
}

/// New outbox events into messages: one per event and recipient (the customer's email, or the
/// operator's for its notices), exactly once; every event read is marked, emailed or not.
async fn fan_out(
    engine: &Engine,
    ws: &WorkspaceId,
    settings: Option<&EmailSettingsRecord>,
) -> AppResult<u64> {
    let store = engine.store();
    let events = store.unemailed_events(ws, 500).await?;
    if events.is_empty() {
        return Ok(0);
    }
    let wall = engine.now();
    let oldest = crate::notify::later(wall, -MAX_EVENT_AGE);
    let mut emails: HashMap<String, Option<String>> = HashMap::new();
    let mut messages = Vec::new();
    let mut marked = Vec::with_capacity(events.len());
    for event in &events {
        marked.push(event.id.clone());
        let Some(s) = settings.filter(|s| s.enabled) else {
            continue;
        };
        if event.created_at < s.created_at || event.created_at < oldest {
            continue;
        }
        let Some(template) = compose::template_for(event) else {
            continue;
        };
        let recipient = match (template, &event.customer) {
            (TemplateName::WebhookEndpointDisabled, _) => s.operator_email.clone(),
            (_, Some(customer)) => {
                if !emails.contains_key(customer) {
                    let email = store
                        .get_customer(ws, &CustomerId::from(customer.as_str()))
                        .await?
                        .and_then(|c| c.email);
                    emails.insert(customer.clone(), email);
                }
                emails.get(customer).cloned().flatten()
            }
            (_, None) => None,
        };
        let Some(recipient) = recipient else {
            continue;
        };
        messages.push(EmailMessageRecord {
            workspace: ws.to_string(),
            id: crate::ids::new_id("em"),
            event: event.id.clone(),
            event_type: event.event_type.clone(),
            template: template.as_str().to_owned(),
            recipient,
            customer: event.customer.clone(),
            test_clock: None,
            status: EmailStatus::Pending,
            attempts: 0,
            next_attempt_at: event.occurred_at,
            locked_until: None,
            subject: None,
            last_error: None,
            sent_at: None,
            created_at: wall,
            updated_at: wall,
        });
    }
    Ok(store.enqueue_emails(ws, &messages, &marked, wall).await?)
}

/// The template a workspace uses for `name`: its own, or the default.
pub async fn source_of(engine: &Engine, workspace: &str, name: TemplateName) -> AppResult<Source> {
    Ok(engine
        .store()
        .get_email_template(&WorkspaceId::from(workspace), name.as_str())
        .await?
        .map_or_else(
            || Source::default_of(name),
            |t| Source {
                subject: t.subject,
                text: t.text_body,
                html: t.html_body,
            },
        ))
}

/// Composes, renders and builds a message (everything but sending).
async fn prepare(
    engine: &Engine,
    settings: &EmailSettingsRecord,
    m: &EmailMessageRecord,
) -> Result<(String, lettre::Message), String> {
    let ws = WorkspaceId::from(m.workspace.as_str());
    let describe = |e: Error| e.describe();
    let name = TemplateName::parse(&m.template)
        .ok_or_else(|| format!("unknown template {:?}", m.template))?;
    let event = engine
        .store()
        .get_domain_event(&ws, &m.event)
        .await
        .map_err(|e| Error::from(e).describe())?
        .ok_or_else(|| format!("the event {} is gone", m.event))?;
    let composed = compose::compose(engine, Some(settings), &event, name, true)
        .await
        .map_err(describe)?;
    let source = source_of(engine, &m.workspace, name)
        .await
        .map_err(describe)?;
    let rendered = templates::render(&source, &composed.context)
        .map_err(|e| format!("template {}: {e}", name.as_str()))?;
    let outgoing = Outgoing {
        from_address: settings.from_address.clone(),
        from_name: settings
            .from_name
            .clone()
            .or_else(|| settings.brand_name.clone()),
        reply_to: settings.reply_to.clone(),
        to: m.recipient.clone(),
        subject: rendered.subject.clone(),
        text: rendered.text,
        html: rendered.html,
        attachments: composed.attachments,
        message_id: format!("{}@tollgate", m.id),
    };
    Ok((rendered.subject, smtp::build(&outgoing)?))
}

async fn attempt(
    engine: &Engine,
    config: &EmailConfig,
    settings: Option<&EmailSettingsRecord>,
    m: EmailMessageRecord,
    now: Timestamp,
) -> AppResult<()> {
    // The subject once rendered (kept in the log even when the relay refuses the message).
    let (subject, result) = match settings.filter(|s| s.enabled) {
        None => (
            None,
            Err("email is not configured or is disabled for the workspace".to_owned()),
        ),
        Some(s) => match prepare(engine, s, &m).await {
            Err(e) => (None, Err(e)),
            Ok((subject, message)) => (Some(subject), smtp::send(&config.smtp, message).await),
        },
    };
    let wall = engine.now();
    let number = m.attempts + 1;
    let outcome = match result {
        Ok(()) => {
            metrics::counter!("tollgate_emails_total", "outcome" => "sent").increment(1);
            EmailOutcome {
                workspace: m.workspace.clone(),
                id: m.id.clone(),
                status: EmailStatus::Sent,
                next_attempt_at: m.next_attempt_at,
                subject,
                last_error: None,
                sent_at: Some(wall),
                at: wall,
            }
        }
        Err(error) => {
            tracing::warn!(workspace = %m.workspace, message = %m.id, attempt = number, %error, "email not sent");
            let jitter = 900 + i64::from(rand::random::<u8>()) * 200 / 255;
            let (status, next) = match crate::notify::retry_delay(number, jitter) {
                Some(wait) => (EmailStatus::Pending, crate::notify::later(now, wait)),
                None => (EmailStatus::Failed, now),
            };
            let outcome = if status == EmailStatus::Failed {
                "failed"
            } else {
                "retry"
            };
            metrics::counter!("tollgate_emails_total", "outcome" => outcome).increment(1);
            EmailOutcome {
                workspace: m.workspace.clone(),
                id: m.id.clone(),
                status,
                next_attempt_at: next,
                subject,
                last_error: Some(error),
                sent_at: None,
                at: wall,
            }
        }
    };
    engine.store().finish_email_message(&outcome).await?;
    Ok(())
}
