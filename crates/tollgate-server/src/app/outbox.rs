//! The outbox as the use cases write and read it: domain events built here and handed to the
//! store with the write they announce (one transaction), and the listing operators read.

use jiff::Timestamp;
use serde_json::Value;
use tollgate_core::code::Code;
use tollgate_core::ids::WorkspaceId;
use tollgate_store::outbox::{OutboxEvent, OutboxFilter};

use crate::engine::Engine;
use crate::error::{AppResult, Error};

/// The event types Tollgate writes (`docs/LIFECYCLE.md` lists what each one's `data` holds).
pub mod types {
    pub const SUBSCRIPTION_CREATED: &str = "subscription.created";
    pub const SUBSCRIPTION_UPDATED: &str = "subscription.updated";
    pub const SUBSCRIPTION_TRIAL_WILL_END: &str = "subscription.trial_will_end";
    pub const SUBSCRIPTION_TRIAL_ENDED: &str = "subscription.trial_ended";
    pub const SUBSCRIPTION_RENEWED: &str = "subscription.renewed";
    pub const SUBSCRIPTION_CANCELED: &str = "subscription.canceled";
    pub const SUBSCRIPTION_EXPIRED: &str = "subscription.expired";
    pub const INVOICE_FINALIZED: &str = "invoice.finalized";
    pub const INVOICE_PAID: &str = "invoice.paid";
    pub const INVOICE_VOIDED: &str = "invoice.voided";
    pub const INVOICE_UNCOLLECTIBLE: &str = "invoice.marked_uncollectible";
    pub const CREDIT_NOTE_CREATED: &str = "credit_note.created";
    /// Written by the engine as usage is counted (`engine::alerts`).
    pub const USAGE_ALERT: &str = crate::engine::USAGE_ALERT_EVENT;
    pub const CATALOG_UPDATED: &str = crate::engine::CATALOG_UPDATED_EVENT;
    /// Written by ingest when a repeated event id replaces the stored value (`engine::amend`).
    pub const EVENT_AMENDED: &str = crate::engine::EVENT_AMENDED_EVENT;
    pub const CUSTOMER_SUSPENDED: &str = "customer.suspended";
    pub const CUSTOMER_REINSTATED: &str = "customer.reinstated";
    pub const API_KEY_CREATED: &str = "api_key.created";
    pub const API_KEY_REVOKED: &str = "api_key.revoked";
    pub const REFERRAL_REWARDED: &str = "referral.rewarded";
    pub const SUBSCRIPTION_PAUSED: &str = "subscription.paused";
    pub const SUBSCRIPTION_RESUMED: &str = "subscription.resumed";
    /// Written by the webhook worker when it disables a failing endpoint (docs/WEBHOOKS.md).
    pub const WEBHOOK_ENDPOINT_DISABLED: &str = "webhook_endpoint.disabled";
    pub const LICENSE_ISSUED: &str = "license.issued";
    pub const LICENSE_REVOKED: &str = "license.revoked";
    /// A self-serve signup (customer, subscription, first key): the welcome email's event.
    pub const CUSTOMER_SIGNED_UP: &str = "customer.signed_up";
    /// Payments (docs/PAYMENTS.md).
    pub const PAYMENT_SUCCEEDED: &str = "payment.succeeded";
    pub const PAYMENT_FAILED: &str = "payment.failed";
    pub const PAYMENT_REFUNDED: &str = "payment.refunded";
    pub const PAYMENT_DISPUTED: &str = "payment.disputed";
    /// A charge waits for the customer's authentication (3-D Secure): where, in `url`.
    pub const PAYMENT_ACTION_REQUIRED: &str = "payment.action_required";
    pub const SUBSCRIPTION_PAST_DUE: &str = "subscription.past_due";
    pub const SUBSCRIPTION_RECOVERED: &str = "subscription.recovered";
    pub const DUNNING_EXHAUSTED: &str = "dunning.exhausted";
    /// A customer asked to sign in to the portal by email (`app/users/magic_link.rs`): the
    /// sign-in email's event. Its data names the customer and the link's origin, never a token.
    pub const PORTAL_SIGN_IN_REQUESTED: &str = "portal.sign_in_requested";

    /// The types something writes today: what a webhook endpoint may subscribe to. (Renewed
    /// is named above but nothing writes it yet; add a type here when a use case starts
    /// writing it.)
    pub const ALL: &[&str] = &[
        SUBSCRIPTION_CREATED,
        SUBSCRIPTION_UPDATED,
        SUBSCRIPTION_TRIAL_WILL_END,
        SUBSCRIPTION_TRIAL_ENDED,
        SUBSCRIPTION_CANCELED,
        SUBSCRIPTION_EXPIRED,
        SUBSCRIPTION_PAUSED,
        SUBSCRIPTION_RESUMED,
        INVOICE_FINALIZED,
        INVOICE_PAID,
        INVOICE_VOIDED,
        INVOICE_UNCOLLECTIBLE,
        CREDIT_NOTE_CREATED,
        USAGE_ALERT,
        EVENT_AMENDED,
        REFERRAL_REWARDED,
        WEBHOOK_ENDPOINT_DISABLED,
        LICENSE_ISSUED,
        LICENSE_REVOKED,
        CUSTOMER_SIGNED_UP,
        PAYMENT_SUCCEEDED,
        PAYMENT_FAILED,
        PAYMENT_REFUNDED,
        PAYMENT_DISPUTED,
        PAYMENT_ACTION_REQUIRED,
        SUBSCRIPTION_PAST_DUE,
        SUBSCRIPTION_RECOVERED,
        DUNNING_EXHAUSTED,
        CATALOG_UPDATED,
        CUSTOMER_SUSPENDED,
        CUSTOMER_REINSTATED,
        API_KEY_CREATED,
        API_KEY_REVOKED,
        PORTAL_SIGN_IN_REQUESTED,
    ];
}

/// One event of `workspace` about `customer`, that happened at `occurred_at` on the customer's
/// clock; `engine.now()` (the wall clock) says when it was written.
pub fn event(
    engine: &Engine,
    workspace: &str,
    customer: Option<&str>,
    event_type: &str,
    occurred_at: Timestamp,
    data: Value,
) -> OutboxEvent {
    engine.domain_event(workspace, customer, event_type, occurred_at, data)
}

/// The largest page of [`list`].
pub const MAX_LIMIT: i64 = 100;

#[derive(Debug, Clone, Default)]
pub struct ListDomainEvents {
    pub workspace: String,
    pub event_type: Option<String>,
    pub customer: Option<String>,
    pub starting_after: Option<String>,
    /// 1..=100; `None`: 20.
    pub limit: Option<i64>,
}

/// A page of events, oldest first, and whether more follow.
pub async fn list(engine: &Engine, input: ListDomainEvents) -> AppResult<(Vec<OutboxEvent>, bool)> {
    let limit = input.limit.unwrap_or(20);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(Error::invalid(
            Code::InvalidLimit,
            format!("`limit` must be between 1 and {MAX_LIMIT}, not {limit}"),
        ));
    }
    let filter = OutboxFilter {
        event_type: input.event_type,
        customer: input.customer,
        starting_after: input.starting_after,
        limit: limit + 1,
    };
    let mut events = engine
        .store()
        .list_domain_events(&WorkspaceId::from(&input.workspace), &filter)
        .await?;
    let has_more = events.len() > usize::try_from(limit).unwrap_or(usize::MAX);
    events.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    Ok((events, has_more))
}
