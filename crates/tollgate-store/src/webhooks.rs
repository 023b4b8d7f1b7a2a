//! Webhooks: the operator's endpoints, one delivery per (outbox event, endpoint), and the log of
//! every attempt (docs/WEBHOOKS.md).
//!
//! The fan-out ([`WebhookStore::fan_out_webhooks`]) reads the outbox events not fanned out yet
//! and writes their deliveries and marks them (`delivered_at`) in one transaction; a delivery is
//! unique per (event, endpoint), so two workers fanning out the same events make each delivery
//! once. Deliveries are then claimed one at a time by compare-and-set (a lease in wall time),
//! and an attempt's log line, the delivery's new state, the endpoint's failure bookkeeping and
//! the event announcing a disabled endpoint (`webhook_endpoint.disabled`) commit together.

use async_trait::async_trait;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tollgate_core::ids::WorkspaceId;

use crate::backend::{Arg, Backend, Conn, args, run_all, run_execute, run_optional};
use crate::codec::{Columns, insert_error};
use crate::outbox::OutboxEvent;
use crate::{StoreError, StoreResult, sql};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookEndpointRecord {
    pub workspace: String,
    pub id: String,
    pub url: String,
    /// Empty: every event type.
    pub event_types: Vec<String>,
    pub description: Option<String>,
    pub enabled: bool,
    /// One customer's deliveries in order: a later one waits while an earlier one is pending.
    pub ordered: bool,
    /// `whsec_...`.
    pub secret: String,
    /// The secret before the last rotation, still signing until `previous_secret_until`.
    pub previous_secret: Option<String>,
    pub previous_secret_until: Option<Timestamp>,
    /// The first failure since the last success (on the failing delivery's clock).
    pub failing_since: Option<Timestamp>,
    pub disabled_reason: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl WebhookEndpointRecord {
    /// Whether this endpoint receives events of `event_type`.
    pub fn wants(&self, event_type: &str) -> bool {
        self.event_types.is_empty() || self.event_types.iter().any(|t| t == event_type)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Pending,
    Succeeded,
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Succeeded => "succeeded",
            DeliveryStatus::Failed => "failed",
        }
    }

    fn parse(s: &str) -> StoreResult<DeliveryStatus> {
        [
            DeliveryStatus::Pending,
            DeliveryStatus::Succeeded,
            DeliveryStatus::Failed,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown delivery status {s:?}")))
    }
}

/// One outbox event for one endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookDeliveryRecord {
    pub workspace: String,
    /// `whd_<event>_<endpoint>`: deterministic, so ordering by id is ordering by event.
    pub id: String,
    pub endpoint: String,
    /// The outbox event id: the `webhook-id` header of every attempt.
    pub event: String,
    pub event_type: String,
    pub customer: Option<String>,
    /// The customer's test clock: `next_attempt_at` is on that clock.
    pub test_clock: Option<String>,
    pub status: DeliveryStatus,
    /// Attempts claimed so far.
    pub attempts: i64,
    pub next_attempt_at: Timestamp,
    pub locked_until: Option<Timestamp>,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// One attempt's log line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookAttemptRecord {
    pub workspace: String,
    pub delivery: String,
    /// 1 for the first attempt.
    pub attempt: i64,
    pub endpoint: String,
    pub url: String,
    /// The `webhook-timestamp` header (unix seconds).
    pub webhook_timestamp: i64,
    pub request_body: String,
    pub response_status: Option<i64>,
    /// At most 1 KB of the response body.
    pub response_excerpt: Option<String>,
    pub duration_ms: i64,
    /// Why no answer came (refused address, timeout, connection error).
    pub error: Option<String>,
    /// Wall time.
    pub attempted_at: Timestamp,
}

/// What an attempt did, written in one transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptOutcome {
    pub attempt: WebhookAttemptRecord,
    pub status: DeliveryStatus,
    pub next_attempt_at: Timestamp,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    /// `None`: the attempt succeeded and the endpoint's failure record is cleared; `Some(t)`:
    /// it failed, and the record starts at `t` unless it runs already. Only these columns of the
    /// endpoint are written, so an operator's change made during the attempt stands.
    pub failing_since: Option<Timestamp>,
    /// Disable the endpoint (if it is still enabled and failing) and announce it.
    pub disable: Option<Disable>,
}

/// An endpoint disabled by the delivery worker.
#[derive(Debug, Clone, PartialEq)]
pub struct Disable {
    pub reason: String,
    /// `webhook_endpoint.disabled`, appended only when this attempt disabled it.
    pub event: OutboxEvent,
    pub at: Timestamp,
}

fn endpoint(r: &impl Columns) -> StoreResult<WebhookEndpointRecord> {
    let types = r.text("event_types")?;
    Ok(WebhookEndpointRecord {
        workspace: r.text("workspace")?,
        id: r.text("id")?,
        url: r.text("url")?,
        event_types: serde_json::from_str(&types)
            .map_err(|e| StoreError::Corrupt(format!("webhook event types {types:?}: {e}")))?,
        description: r.opt_text("description")?,
        enabled: r.flag("enabled")?,
        ordered: r.flag("ordered")?,
        secret: r.text("secret")?,
        previous_secret: r.opt_text("previous_secret")?,
        previous_secret_until: r.opt_time("previous_secret_until")?,
        failing_since: r.opt_time("failing_since")?,
        disabled_reason: r.opt_text("disabled_reason")?,
        created_at: r.time("created_at")?,
        updated_at: r.time("updated_at")?,
    })
}

fn delivery(r: &impl Columns) -> StoreResult<WebhookDeliveryRecord> {
    Ok(WebhookDeliveryRecord {
        workspace: r.text("workspace")?,
        id: r.text("id")?,
        endpoint: r.text("endpoint")?,
        event: r.text("event")?,
        event_type: r.text("event_type")?,
        customer: r.opt_text("customer")?,
        test_clock: r.opt_text("test_clock")?,
        status: DeliveryStatus::parse(&r.text("status")?)?,
        attempts: r.int("attempts")?,
        next_attempt_at: r.time("next_attempt_at")?,
        locked_until: r.opt_time("locked_until")?,
        last_status: r.opt_int("last_status")?,
        last_error: r.opt_text("last_error")?,
        created_at: r.time("created_at")?,
        updated_at: r.time("updated_at")?,
    })
}

fn attempt(r: &impl Columns) -> StoreResult<WebhookAttemptRecord> {
    Ok(WebhookAttemptRecord {
        workspace: r.text("workspace")?,
        delivery: r.text("delivery")?,
        attempt: r.int("attempt")?,
        endpoint: r.text("endpoint")?,
        url: r.text("url")?,
        webhook_timestamp: r.int("webhook_timestamp")?,
        request_body: r.text("request_body")?,
        response_status: r.opt_int("response_status")?,
        response_excerpt: r.opt_text("response_excerpt")?,
        duration_ms: r.int("duration_ms")?,
        error: r.opt_text("error")?,
        attempted_at: r.time("attempted_at")?,
    })
}

async fn write_endpoint<C: Conn>(
    tx: &mut C,
    e: &WebhookEndpointRecord,
    statement: &'static str,
) -> StoreResult<u64> {
    let types = serde_json::to_string(&e.event_types)
        .map_err(|err| StoreError::Corrupt(format!("webhook event types: {err}")))?;
    let values = args![
        &e.workspace,
        &e.id,
        &e.url,
        &types,
        &e.description,
        e.enabled,
        e.ordered,
        &e.secret,
        &e.previous_secret,
        e.previous_secret_until,
        e.failing_since,
        &e.disabled_reason,
        e.created_at,
        e.updated_at,
    ];
    Ok(tx.execute(statement, values).await?)
}

#[async_trait]
pub trait WebhookStore: Send + Sync {
    async fn create_webhook_endpoint(&self, endpoint: &WebhookEndpointRecord) -> StoreResult<()>;
    async fn get_webhook_endpoint(
        &self,
        workspace: &WorkspaceId,
        id: &str,
    ) -> StoreResult<Option<WebhookEndpointRecord>>;
    async fn list_webhook_endpoints(
        &self,
        workspace: &WorkspaceId,
    ) -> StoreResult<Vec<WebhookEndpointRecord>>;
    /// Writes every field but `created_at`; `NotFound` when it is gone.
    async fn update_webhook_endpoint(&self, endpoint: &WebhookEndpointRecord) -> StoreResult<()>;
    /// The endpoint, its deliveries and their log; false when there was none.
    async fn delete_webhook_endpoint(&self, workspace: &WorkspaceId, id: &str)
    -> StoreResult<bool>;
    /// Turns up to `limit` outbox events not fanned out yet into deliveries for the enabled
    /// endpoints that want them (and existed when the event was written), due at the event's
    /// time, and marks the events fanned out, in one transaction. Returns the deliveries made.
    async fn fan_out_webhooks(
        &self,
        workspace: &WorkspaceId,
        limit: i64,
        now: Timestamp,
    ) -> StoreResult<u64>;
    /// Pending deliveries of enabled endpoints due on the wall clock at `now`, or on a test
    /// clock (the caller checks those against their clock), not claimed by a live worker;
    /// oldest due first. A disabled endpoint's deliveries wait for it to be enabled again.
    async fn pending_webhook_deliveries(
        &self,
        workspace: &WorkspaceId,
        now: Timestamp,
        limit: i64,
    ) -> StoreResult<Vec<WebhookDeliveryRecord>>;
    /// Claims `id` until `lease_until` (wall time) and counts the attempt; false when another
    /// worker holds it or it is no longer pending.
    async fn claim_webhook_delivery(
        &self,
        workspace: &WorkspaceId,
        id: &str,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> StoreResult<bool>;
    async fn record_webhook_attempt(&self, outcome: &AttemptOutcome) -> StoreResult<()>;
    async fn get_webhook_delivery(
        &self,
        workspace: &WorkspaceId,
        id: &str,
    ) -> StoreResult<Option<WebhookDeliveryRecord>>;
    async fn list_webhook_deliveries(
        &self,
        workspace: &WorkspaceId,
        endpoint: &str,
        limit: i64,
    ) -> StoreResult<Vec<WebhookDeliveryRecord>>;
    async fn list_webhook_attempts(
        &self,
        workspace: &WorkspaceId,
        delivery: &str,
    ) -> StoreResult<Vec<WebhookAttemptRecord>>;
    /// Pending again and due at once on any clock; false when there is no such delivery.
    async fn replay_webhook_delivery(
        &self,
        workspace: &WorkspaceId,
        id: &str,
        now: Timestamp,
    ) -> StoreResult<bool>;
    /// Every delivery of `endpoint` whose event occurred at or after `since`, pending again;
    /// how many.
    async fn replay_webhook_deliveries_since(
        &self,
        workspace: &WorkspaceId,
        endpoint: &str,
        since: Timestamp,
        now: Timestamp,
    ) -> StoreResult<u64>;
    /// One outbox event (what a delivery sends).
    async fn get_domain_event(
        &self,
        workspace: &WorkspaceId,
        id: &str,
    ) -> StoreResult<Option<OutboxEvent>>;
    /// Whether the workspace's endpoints may name private, loopback and link-local addresses
    /// (false until the operator says otherwise).
    async fn webhook_private_addresses_allowed(&self, workspace: &WorkspaceId)
    -> StoreResult<bool>;
    async fn set_webhook_private_addresses_allowed(
        &self,
        workspace: &WorkspaceId,
        allowed: bool,
        now: Timestamp,
    ) -> StoreResult<()>;
    /// Drops log lines older than `before` (wall time); how many.
    async fn prune_webhook_attempts(
        &self,
        workspace: &WorkspaceId,
        before: Timestamp,
    ) -> StoreResult<u64>;
}

#[async_trait]
impl<B: Backend> WebhookStore for B {
    async fn create_webhook_endpoint(&self, e: &WebhookEndpointRecord) -> StoreResult<()> {
        let mut tx = self.write(&e.workspace).await?;
        write_endpoint(&mut tx, e, sql::INSERT_WEBHOOK_ENDPOINT)
            .await
            .map_err(|err| {
                insert_error(err, "webhook endpoint", &e.id, "workspace", &e.workspace)
            })?;
        Ok(tx.commit().await?)
    }

    async fn get_webhook_endpoint(
        &self,
        workspace: &WorkspaceId,
        id: &str,
    ) -> StoreResult<Option<WebhookEndpointRecord>> {
        run_optional(
            self.read(workspace),
            sql::WEBHOOK_ENDPOINT_BY_ID,
            args![workspace, id],
            endpoint,
        )
        .await
    }

    async fn list_webhook_endpoints(
        &self,
        workspace: &WorkspaceId,
    ) -> StoreResult<Vec<WebhookEndpointRecord>> {
        run_all(
            self.read(workspace),
            sql::LIST_WEBHOOK_ENDPOINTS,
            args![workspace],
            endpoint,
        )
        .await
    }

    async fn update_webhook_endpoint(&self, e: &WebhookEndpointRecord) -> StoreResult<()> {
        let mut tx = self.write(&e.workspace).await?;
        let rows = write_endpoint(&mut tx, e, sql::UPDATE_WEBHOOK_ENDPOINT).await?;
        if rows == 0 {
            return Err(StoreError::NotFound {
                kind: "webhook endpoint",
                id: e.id.clone(),
            });
        }
        Ok(tx.commit().await?)
    }

    async fn delete_webhook_endpoint(
        &self,
        workspace: &WorkspaceId,
        id: &str,
    ) -> StoreResult<bool> {
        let mut tx = self.write(workspace).await?;
        tx.execute(sql::DELETE_WEBHOOK_ENDPOINT_ATTEMPTS, args![workspace, id])
            .await?;
        tx.execute(
            sql::DELETE_WEBHOOK_ENDPOINT_DELIVERIES,
            args![workspace, id],
        )
        .await?;
        let rows = tx
            .execute(sql::DELETE_WEBHOOK_ENDPOINT, args![workspace, id])
            .await?;
        tx.commit().await?;
        Ok(rows > 0)
    }

    async fn fan_out_webhooks(
        &self,
        workspace: &WorkspaceId,
        limit: i64,
        now: Timestamp,
    ) -> StoreResult<u64> {
        let mut tx = self.write(workspace).await?;
        let events = tx
            .fetch_all(sql::UNFANNED_OUTBOX_EVENTS, args![workspace, limit])
            .await?
            .iter()
            .map(crate::outbox::decode_row)
            .collect::<StoreResult<Vec<_>>>()?;
        if events.is_empty() {
            return Ok(0);
        }
        let endpoints = tx
            .fetch_all(sql::LIST_WEBHOOK_ENDPOINTS, args![workspace])
            .await?
            .iter()
            .map(endpoint)
            .collect::<StoreResult<Vec<_>>>()?;
        let mut made = 0;
        for event in &events {
            for e in endpoints
                .iter()
                .filter(|e| e.enabled && e.wants(&event.event_type))
                .filter(|e| e.created_at <= event.created_at)
            {
                let id = format!("whd_{}_{}", event.id, e.id);
                let values = args![
                    workspace,
                    &id,
                    &e.id,
                    &event.id,
                    &event.event_type,
                    &event.customer,
                    event.occurred_at,
                    now,
                ];
                made += tx.execute(sql::INSERT_WEBHOOK_DELIVERY, values).await?;
            }
            tx.execute(
                sql::MARK_OUTBOX_FANNED_OUT,
                args![workspace, &event.id, now],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(made)
    }

    async fn pending_webhook_deliveries(
        &self,
        workspace: &WorkspaceId,
        now: Timestamp,
        limit: i64,
    ) -> StoreResult<Vec<WebhookDeliveryRecord>> {
        run_all(
            self.read(workspace),
            sql::PENDING_WEBHOOK_DELIVERIES,
            args![workspace, now, now, limit, true],
            delivery,
        )
        .await
    }

    async fn claim_webhook_delivery(
        &self,
        workspace: &WorkspaceId,
        id: &str,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> StoreResult<bool> {
        let rows = run_execute(
            self.write(workspace),
            sql::CLAIM_WEBHOOK_DELIVERY,
            args![workspace, id, lease_until, now],
        )
        .await?;
        Ok(rows == 1)
    }

    async fn record_webhook_attempt(&self, o: &AttemptOutcome) -> StoreResult<()> {
        let a = &o.attempt;
        let mut tx = self.write(&a.workspace).await?;
        let values = args![
            &a.workspace,
            &a.delivery,
            a.attempt,
            &a.endpoint,
            &a.url,
            a.webhook_timestamp,
            &a.request_body,
            Arg::OptInt(a.response_status),
            &a.response_excerpt,
            a.duration_ms,
            &a.error,
            a.attempted_at,
        ];
        tx.execute(sql::INSERT_WEBHOOK_ATTEMPT, values)
            .await
            .map_err(|e| {
                insert_error(e, "webhook attempt", &a.delivery, "workspace", &a.workspace)
            })?;
        let values = args![
            &a.workspace,
            &a.delivery,
            o.status.as_str(),
            o.next_attempt_at,
            Arg::OptInt(o.last_status),
            &o.last_error,
            a.attempted_at,
        ];
        tx.execute(sql::FINISH_WEBHOOK_ATTEMPT, values).await?;
        match o.failing_since {
            None => {
                tx.execute(sql::CLEAR_WEBHOOK_FAILING, args![&a.workspace, &a.endpoint])
                    .await?;
            }
            Some(since) => {
                tx.execute(
                    sql::MARK_WEBHOOK_FAILING,
                    args![&a.workspace, &a.endpoint, since],
                )
                .await?;
            }
        }
        if let Some(d) = &o.disable {
            let values = args![&a.workspace, &a.endpoint, false, &d.reason, d.at, true];
            if tx.execute(sql::DISABLE_WEBHOOK_ENDPOINT, values).await? > 0 {
                crate::outbox::append(&mut tx, std::slice::from_ref(&d.event)).await?;
            }
        }
        Ok(tx.commit().await?)
    }

    async fn get_webhook_delivery(
        &self,
        workspace: &WorkspaceId,
        id: &str,
    ) -> StoreResult<Option<WebhookDeliveryRecord>> {
        run_optional(
            self.read(workspace),
            sql::WEBHOOK_DELIVERY_BY_ID,
            args![workspace, id],
            delivery,
        )
        .await
    }

    async fn list_webhook_deliveries(
        &self,
        workspace: &WorkspaceId,
        endpoint: &str,
        limit: i64,
    ) -> StoreResult<Vec<WebhookDeliveryRecord>> {
        run_all(
            self.read(workspace),
            sql::LIST_WEBHOOK_DELIVERIES,
            args![workspace, endpoint, limit],
            delivery,
        )
        .await
    }

    async fn list_webhook_attempts(
        &self,
        workspace: &WorkspaceId,
        delivery: &str,
    ) -> StoreResult<Vec<WebhookAttemptRecord>> {
        run_all(
            self.read(workspace),
            sql::LIST_WEBHOOK_ATTEMPTS,
            args![workspace, delivery],
            attempt,
        )
        .await
    }

    async fn replay_webhook_delivery(
        &self,
        workspace: &WorkspaceId,
        id: &str,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let rows = run_execute(
            self.write(workspace),
            sql::REPLAY_WEBHOOK_DELIVERY,
            args![workspace, id, Timestamp::UNIX_EPOCH, now],
        )
        .await?;
        Ok(rows > 0)
    }

    async fn replay_webhook_deliveries_since(
        &self,
        workspace: &WorkspaceId,
        endpoint: &str,
        since: Timestamp,
        now: Timestamp,
    ) -> StoreResult<u64> {
        run_execute(
            self.write(workspace),
            sql::REPLAY_WEBHOOK_DELIVERIES_SINCE,
            args![workspace, endpoint, since, now, Timestamp::UNIX_EPOCH],
        )
        .await
    }

    async fn get_domain_event(
        &self,
        workspace: &WorkspaceId,
        id: &str,
    ) -> StoreResult<Option<OutboxEvent>> {
        run_optional(
            self.read(workspace),
            sql::OUTBOX_EVENT_BY_ID,
            args![workspace, id],
            crate::outbox::decode_row,
        )
        .await
    }

    async fn webhook_private_addresses_allowed(
        &self,
        workspace: &WorkspaceId,
    ) -> StoreResult<bool> {
        let found = run_optional(
            self.read(workspace),
            sql::WEBHOOK_SETTINGS,
            args![workspace],
            |r| r.flag("allow_private_addresses"),
        )
        .await?;
        Ok(found.unwrap_or(false))
    }

    async fn set_webhook_private_addresses_allowed(
        &self,
        workspace: &WorkspaceId,
        allowed: bool,
        now: Timestamp,
    ) -> StoreResult<()> {
        run_execute(
            self.write(workspace),
            sql::SET_WEBHOOK_SETTINGS,
            args![workspace, allowed, now],
        )
        .await?;
        Ok(())
    }

    async fn prune_webhook_attempts(
        &self,
        workspace: &WorkspaceId,
        before: Timestamp,
    ) -> StoreResult<u64> {
        run_execute(
            self.write(workspace),
            sql::PRUNE_WEBHOOK_ATTEMPTS,
            args![workspace, before],
        )
        .await
    }
}
