//! Email: each workspace's sender and branding, the templates its operator replaced, and one
//! message per (outbox event, recipient), which is also the workspace's email log
//! (docs/EMAIL.md).
//!
//! The fan-out is split in two because only the server knows which event becomes which email
//! and to whom: [`EmailStore::unemailed_events`] reads the outbox events not looked at yet, and
//! [`EmailStore::enqueue_emails`] writes their messages and marks them (`emailed_at`) in one
//! transaction. A message is unique per (event, recipient), so two workers fanning out the
//! same events make each message once. Messages are then claimed one at a time by
//! compare-and-set (a lease in wall time), like webhook deliveries.

use async_trait::async_trait;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tollgate_core::ids::WorkspaceId;

use crate::backend::{Backend, Conn, args, run_all, run_execute, run_optional};
use crate::codec::Columns;
use crate::outbox::OutboxEvent;
use crate::{StoreError, StoreResult, sql};

/// A workspace's sender and branding. Without it, the workspace sends no email.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmailSettingsRecord {
    pub workspace: String,
    pub from_address: String,
    pub from_name: Option<String>,
    pub reply_to: Option<String>,
    /// The operator's (or a white-label partner's) name, shown in every message.
    pub brand_name: Option<String>,
    pub logo_url: Option<String>,
    /// `#rrggbb`.
    pub brand_color: Option<String>,
    /// The link of the welcome email.
    pub docs_url: Option<String>,
    /// Where notices for the operator go (a webhook endpoint disabled).
    pub operator_email: Option<String>,
    pub enabled: bool,
    /// When email was first configured: events written before it are not emailed.
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A template the operator replaced; the others are the defaults compiled into the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmailTemplateRecord {
    pub workspace: String,
    /// `welcome`, `trial_ending`, ...
    pub template: String,
    pub subject: String,
    pub text_body: String,
    pub html_body: String,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmailStatus {
    Pending,
    Sent,
    Failed,
}

impl EmailStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            EmailStatus::Pending => "pending",
            EmailStatus::Sent => "sent",
            EmailStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<EmailStatus> {
        [EmailStatus::Pending, EmailStatus::Sent, EmailStatus::Failed]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

/// One email: an outbox event for one recipient, with its delivery state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmailMessageRecord {
    pub workspace: String,
    pub id: String,
    /// The outbox event it tells about.
    pub event: String,
    pub event_type: String,
    pub template: String,
    pub recipient: String,
    pub customer: Option<String>,
    /// The customer's test clock: `next_attempt_at` is on that clock (filled by the store).
    pub test_clock: Option<String>,
    pub status: EmailStatus,
    /// Attempts claimed so far.
    pub attempts: i64,
    pub next_attempt_at: Timestamp,
    pub locked_until: Option<Timestamp>,
    /// The subject as last rendered.
    pub subject: Option<String>,
    pub last_error: Option<String>,
    /// Wall time the SMTP server accepted it.
    pub sent_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// What an attempt did to a message.
#[derive(Debug, Clone, PartialEq)]
pub struct EmailOutcome {
    pub workspace: String,
    pub id: String,
    pub status: EmailStatus,
    pub next_attempt_at: Timestamp,
    pub subject: Option<String>,
    pub last_error: Option<String>,
    pub sent_at: Option<Timestamp>,
    /// Wall time of the attempt.
    pub at: Timestamp,
}

/// Which messages to list: oldest first, after `starting_after` (a message id), at most `limit`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EmailMessageFilter {
    pub customer: Option<String>,
    pub status: Option<EmailStatus>,
    pub starting_after: Option<String>,
    pub limit: i64,
}

fn settings(r: &impl Columns) -> StoreResult<EmailSettingsRecord> {
    Ok(EmailSettingsRecord {
        workspace: r.text("workspace")?,
        from_address: r.text("from_address")?,
        from_name: r.opt_text("from_name")?,
        reply_to: r.opt_text("reply_to")?,
        brand_name: r.opt_text("brand_name")?,
        logo_url: r.opt_text("logo_url")?,
        brand_color: r.opt_text("brand_color")?,
        docs_url: r.opt_text("docs_url")?,
        operator_email: r.opt_text("operator_email")?,
        enabled: r.flag("enabled")?,
        created_at: r.time("created_at")?,
        updated_at: r.time("updated_at")?,
    })
}

fn template(r: &impl Columns) -> StoreResult<EmailTemplateRecord> {
    Ok(EmailTemplateRecord {
        workspace: r.text("workspace")?,
        template: r.text("template")?,
        subject: r.text("subject")?,
        text_body: r.text("text_body")?,
        html_body: r.text("html_body")?,
        updated_at: r.time("updated_at")?,
    })
}

fn message(r: &impl Columns) -> StoreResult<EmailMessageRecord> {
    let status = r.text("status")?;
    Ok(EmailMessageRecord {
        workspace: r.text("workspace")?,
        id: r.text("id")?,
        event: r.text("event")?,
        event_type: r.text("event_type")?,
        template: r.text("template")?,
        recipient: r.text("recipient")?,
        customer: r.opt_text("customer")?,
        test_clock: r.opt_text("test_clock")?,
        status: EmailStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown email status {status:?}")))?,
        attempts: r.int("attempts")?,
        next_attempt_at: r.time("next_attempt_at")?,
        locked_until: r.opt_time("locked_until")?,
        subject: r.opt_text("subject")?,
        last_error: r.opt_text("last_error")?,
        sent_at: r.opt_time("sent_at")?,
        created_at: r.time("created_at")?,
        updated_at: r.time("updated_at")?,
    })
}

#[async_trait]
pub trait EmailStore: Send + Sync {
    async fn get_email_settings(
        &self,
        workspace: &WorkspaceId,
    ) -> StoreResult<Option<EmailSettingsRecord>>;
    /// Creates or replaces the settings; an existing row keeps its `created_at`.
    async fn put_email_settings(&self, settings: &EmailSettingsRecord) -> StoreResult<()>;
    async fn get_email_template(
        &self,
        workspace: &WorkspaceId,
        template: &str,
    ) -> StoreResult<Option<EmailTemplateRecord>>;
    /// The templates the operator replaced, by name.
    async fn list_email_templates(
        &self,
        workspace: &WorkspaceId,
    ) -> StoreResult<Vec<EmailTemplateRecord>>;
    async fn put_email_template(&self, template: &EmailTemplateRecord) -> StoreResult<()>;
    /// Back to the default; false when it was the default already.
    async fn delete_email_template(
        &self,
        workspace: &WorkspaceId,
        template: &str,
    ) -> StoreResult<bool>;
    /// Up to `limit` outbox events the email fan-out has not marked, oldest id first.
    async fn unemailed_events(
        &self,
        workspace: &WorkspaceId,
        limit: i64,
    ) -> StoreResult<Vec<OutboxEvent>>;
    /// Writes `messages` (each once per event and recipient: a second copy is ignored; the
    /// customer's test clock is filled in) and marks `events` looked at, in one transaction.
    /// Returns the messages made.
    async fn enqueue_emails(
        &self,
        workspace: &WorkspaceId,
        messages: &[EmailMessageRecord],
        events: &[String],
        now: Timestamp,
    ) -> StoreResult<u64>;
    /// Pending messages due on the wall clock at `now`, or on a test clock (the caller checks
    /// those against their clock), not claimed by a live worker; oldest due first.
    async fn pending_email_messages(
        &self,
        workspace: &WorkspaceId,
        now: Timestamp,
        limit: i64,
    ) -> StoreResult<Vec<EmailMessageRecord>>;
    /// Claims `id` until `lease_until` (wall time) and counts the attempt; false when another
    /// worker holds it or it is no longer pending.
    async fn claim_email_message(
        &self,
        workspace: &WorkspaceId,
        id: &str,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> StoreResult<bool>;
    /// Records an attempt's result and releases the claim.
    async fn finish_email_message(&self, outcome: &EmailOutcome) -> StoreResult<()>;
    async fn get_email_message(
        &self,
        workspace: &WorkspaceId,
        id: &str,
    ) -> StoreResult<Option<EmailMessageRecord>>;
    async fn list_email_messages(
        &self,
        workspace: &WorkspaceId,
        filter: &EmailMessageFilter,
    ) -> StoreResult<Vec<EmailMessageRecord>>;
}

#[async_trait]
impl<B: Backend> EmailStore for B {
    async fn get_email_settings(
        &self,
        workspace: &WorkspaceId,
    ) -> StoreResult<Option<EmailSettingsRecord>> {
        run_optional(
            self.read(workspace),
            sql::EMAIL_SETTINGS,
            args![workspace],
            settings,
        )
        .await
    }

    async fn put_email_settings(&self, s: &EmailSettingsRecord) -> StoreResult<()> {
        let values = args![
            &s.workspace,
            &s.from_address,
            &s.from_name,
            &s.reply_to,
            &s.brand_name,
            &s.logo_url,
            &s.brand_color,
            &s.docs_url,
            &s.operator_email,
            s.enabled,
            s.created_at,
            s.updated_at,
        ];
        run_execute(self.write(&s.workspace), sql::PUT_EMAIL_SETTINGS, values).await?;
        Ok(())
    }

    async fn get_email_template(
        &self,
        workspace: &WorkspaceId,
        name: &str,
    ) -> StoreResult<Option<EmailTemplateRecord>> {
        run_optional(
            self.read(workspace),
            sql::EMAIL_TEMPLATE,
            args![workspace, name],
            template,
        )
        .await
    }

    async fn list_email_templates(
        &self,
        workspace: &WorkspaceId,
    ) -> StoreResult<Vec<EmailTemplateRecord>> {
        run_all(
            self.read(workspace),
            sql::LIST_EMAIL_TEMPLATES,
            args![workspace],
            template,
        )
        .await
    }

    async fn put_email_template(&self, t: &EmailTemplateRecord) -> StoreResult<()> {
        let values = args![
            &t.workspace,
            &t.template,
            &t.subject,
            &t.text_body,
            &t.html_body,
            t.updated_at,
        ];
        run_execute(self.write(&t.workspace), sql::PUT_EMAIL_TEMPLATE, values).await?;
        Ok(())
    }

    async fn delete_email_template(
        &self,
        workspace: &WorkspaceId,
        name: &str,
    ) -> StoreResult<bool> {
        let rows = run_execute(
            self.write(workspace),
            sql::DELETE_EMAIL_TEMPLATE,
            args![workspace, name],
        )
        .await?;
        Ok(rows > 0)
    }

    async fn unemailed_events(
        &self,
        workspace: &WorkspaceId,
        limit: i64,
    ) -> StoreResult<Vec<OutboxEvent>> {
        run_all(
            self.read(workspace),
            sql::UNEMAILED_OUTBOX_EVENTS,
            args![workspace, limit],
            crate::outbox::decode_row,
        )
        .await
    }

    async fn enqueue_emails(
        &self,
        workspace: &WorkspaceId,
        messages: &[EmailMessageRecord],
        events: &[String],
        now: Timestamp,
    ) -> StoreResult<u64> {
        let mut tx = self.write(workspace).await?;
        let mut made = 0;
        for m in messages {
            let values = args![
                workspace,
                &m.id,
                &m.event,
                &m.event_type,
                &m.template,
                &m.recipient,
                &m.customer,
                m.next_attempt_at,
                now,
            ];
            made += tx.execute(sql::INSERT_EMAIL_MESSAGE, values).await?;
        }
        for event in events {
            tx.execute(sql::MARK_OUTBOX_EMAILED, args![workspace, event, now])
                .await?;
        }
        tx.commit().await?;
        Ok(made)
    }

    async fn pending_email_messages(
        &self,
        workspace: &WorkspaceId,
        now: Timestamp,
        limit: i64,
    ) -> StoreResult<Vec<EmailMessageRecord>> {
        run_all(
            self.read(workspace),
            sql::PENDING_EMAIL_MESSAGES,
            args![workspace, now, now, limit],
            message,
        )
        .await
    }

    async fn claim_email_message(
        &self,
        workspace: &WorkspaceId,
        id: &str,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> StoreResult<bool> {
        let rows = run_execute(
            self.write(workspace),
            sql::CLAIM_EMAIL_MESSAGE,
            args![workspace, id, lease_until, now],
        )
        .await?;
        Ok(rows == 1)
    }

    async fn finish_email_message(&self, o: &EmailOutcome) -> StoreResult<()> {
        let values = args![
            &o.workspace,
            &o.id,
            o.status.as_str(),
            o.next_attempt_at,
            &o.subject,
            &o.last_error,
            o.sent_at,
            o.at,
        ];
        let mut tx = self.write(&o.workspace).await?;
        if tx.execute(sql::FINISH_EMAIL_MESSAGE, values).await? == 0 {
            return Err(StoreError::NotFound {
                kind: "email message",
                id: o.id.clone(),
            });
        }
        Ok(tx.commit().await?)
    }

    async fn get_email_message(
        &self,
        workspace: &WorkspaceId,
        id: &str,
    ) -> StoreResult<Option<EmailMessageRecord>> {
        run_optional(
            self.read(workspace),
            sql::EMAIL_MESSAGE_BY_ID,
            args![workspace, id],
            message,
        )
        .await
    }

    async fn list_email_messages(
        &self,
        workspace: &WorkspaceId,
        f: &EmailMessageFilter,
    ) -> StoreResult<Vec<EmailMessageRecord>> {
        let values = args![
            workspace,
            &f.customer,
            f.status.map(EmailStatus::as_str),
            &f.starting_after,
            f.limit,
        ];
        run_all(
            self.read(workspace),
            sql::LIST_EMAIL_MESSAGES,
            values,
            message,
        )
        .await
    }
}
