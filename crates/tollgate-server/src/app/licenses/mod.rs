//! Licenses for self-hosted editions (`docs/TRUST.md`): per-workspace signing keys, issuing a
//! signed license file from a subscription's plan, online validation with revocation, machine
//! activations with heartbeats, and the hooks that make licenses follow subscriptions.
//!
//! Every use case here needs the operator's master key (it seals the signing keys); without it
//! they answer `master_key_missing` (503), and so does starting a subscription to a plan whose
//! licenses could not be issued.

mod follow;
mod issue;
mod keys;
mod machines;
mod revoke;
mod validate;

pub(crate) use follow::require_master_key_for;
pub use follow::{on_canceled, on_paid, on_plan_changed, on_subscribed, on_unpaid, renew};
pub use issue::{IssueLicense, issue};
pub(crate) use keys::active_signing_key;
pub use keys::{PublishedKey, keyring, opens, published_keys, retire_key, rotate_key};
pub use machines::{HEARTBEAT_TIMEOUT, activate, deactivate, heartbeat};
pub use revoke::revoke;
pub use validate::{Validation, validate};

use jiff::Timestamp;
use tollgate_core::code::Code;
use tollgate_core::ids::{CustomerId, WorkspaceId};
use tollgate_store::outbox::OutboxEvent;
use tollgate_store::trust::LicenseRecord;

use crate::app::outbox;
use crate::engine::Engine;
use crate::error::{AppResult, Error};
use crate::sealing::MasterKey;

/// The master key, or the clear refusal.
pub(crate) fn master_key(engine: &Engine) -> AppResult<&MasterKey> {
    engine.master_key().ok_or_else(|| {
        Error::unavailable(
            Code::MasterKeyMissing,
            "license features need the operator's master key: start the server with \
             TOLLGATE_MASTER_KEY (64 hex digits or base64 of 32 random bytes) or \
             TOLLGATE_MASTER_KEY_FILE (or `master_key_file` in the config file)",
        )
    })
}

/// A license of the workspace, by id.
pub async fn get(engine: &Engine, workspace: &str, id: &str) -> AppResult<LicenseRecord> {
    engine
        .store()
        .get_license(&WorkspaceId::from(workspace), id)
        .await?
        .ok_or_else(|| Error::not_found("license", id))
}

/// A customer's licenses, newest first.
pub async fn list(
    engine: &Engine,
    workspace: &str,
    customer: &str,
) -> AppResult<Vec<LicenseRecord>> {
    Ok(engine
        .store()
        .list_licenses(&WorkspaceId::from(workspace), &CustomerId::from(customer))
        .await?)
}

/// The `license.issued` / `license.revoked` event of `license` (never the file itself: the
/// customer fetches it with its key).
pub(crate) fn event(
    engine: &Engine,
    license: &LicenseRecord,
    event_type: &str,
    at: Timestamp,
) -> OutboxEvent {
    outbox::event(
        engine,
        &license.workspace,
        Some(&license.customer),
        event_type,
        at,
        serde_json::json!({
            "id": license.id,
            "customer": license.customer,
            "subscription": license.subscription,
            "plan": license.plan,
            "key_id": license.key_id,
            "issued_at": license.issued_at,
            "expires_at": license.expires_at,
            "max_machines": license.max_machines,
            "revoke_reason": license.revoke_reason,
        }),
    )
}

/// Revokes a license with its `license.revoked` event (one transaction; nothing is announced
/// when it was already revoked).
pub(crate) async fn revoke_with_event(
    engine: &Engine,
    license: &LicenseRecord,
    reason: &str,
    now: Timestamp,
) -> AppResult<LicenseRecord> {
    let announced = LicenseRecord {
        revoked_at: Some(now),
        revoke_reason: Some(reason.to_owned()),
        ..license.clone()
    };
    let revoked = event(engine, &announced, outbox::types::LICENSE_REVOKED, now);
    Ok(engine
        .store()
        .revoke_license(
            &WorkspaceId::from(&license.workspace),
            &license.id,
            now,
            reason,
            &[revoked],
        )
        .await?)
}
