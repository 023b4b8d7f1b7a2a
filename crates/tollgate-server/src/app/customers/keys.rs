//! A customer's API keys: a new one (its secret returned once, stored as a hash) and revocation.

use jiff::Timestamp;
use tollgate_core::ids::{CustomerId, KeyId, WorkspaceId};
use tollgate_store::ApiKeyRecord;

use super::profile::ensure_not_archived;
use crate::auth::{CUSTOMER_KEY_PREFIX, generate_secret, hash_secret};
use crate::engine::Engine;
use crate::error::{AppResult, Error};
use crate::ids::new_id;

/// A key just made, with the secret that is never shown again.
pub struct NewKey {
    pub record: ApiKeyRecord,
    pub secret: String,
}

pub async fn create_key(
    engine: &Engine,
    workspace: &str,
    customer: &str,
    name: Option<String>,
) -> AppResult<NewKey> {
    let store = engine.store();
    let owner = store
        .get_customer(&WorkspaceId::from(workspace), &CustomerId::from(customer))
        .await?
        .ok_or_else(|| Error::not_found("customer", customer))?;
    ensure_not_archived(&owner)?;
    // On the customer's clock: a customer on a test clock sees its keys made at its time.
    let now = engine
        .now_for(workspace, owner.test_clock.as_deref())
        .await?;
    let record = new_key(workspace, customer, name, now);
    let announced = crate::app::outbox::event(
        engine,
        workspace,
        Some(customer),
        crate::app::outbox::types::API_KEY_CREATED,
        now,
        key_data(&record.record),
    );
    store
        .create_api_key_with_events(&record.record, &[announced])
        .await?;
    Ok(record)
}

/// What a key's domain event says of it: never the secret or its hash, only what a listing
/// shows (the id, the name, the visible prefix).
fn key_data(key: &ApiKeyRecord) -> serde_json::Value {
    serde_json::json!({
        "key": key.id,
        "customer": key.customer,
        "name": key.name,
        "prefix": key.prefix,
    })
}

/// A new key for `customer` made at `now`, not stored yet (a signup stores it with the
/// customer).
pub fn new_key(workspace: &str, customer: &str, name: Option<String>, now: Timestamp) -> NewKey {
    let secret = generate_secret(CUSTOMER_KEY_PREFIX);
    let record = ApiKeyRecord {
        workspace: workspace.to_owned(),
        id: new_id("key"),
        customer: customer.to_owned(),
        name,
        secret_hash: hash_secret(&secret),
        prefix: secret.chars().take(CUSTOMER_KEY_PREFIX.len() + 4).collect(),
        created_at: now,
        revoked_at: None,
    };
    NewKey { record, secret }
}

/// Revokes a key; it is refused from the next request on, on every node.
pub async fn revoke_key(
    engine: &Engine,
    workspace: &WorkspaceId,
    customer: &CustomerId,
    key: &KeyId,
) -> AppResult<ApiKeyRecord> {
    let now = crate::app::subscriptions::customer_now(engine, workspace, customer).await?;
    let announced = crate::app::outbox::event(
        engine,
        workspace.as_str(),
        Some(customer.as_str()),
        crate::app::outbox::types::API_KEY_REVOKED,
        now,
        serde_json::json!({ "key": key.as_str(), "customer": customer.as_str() }),
    );
    let record = engine
        .store()
        .revoke_api_key_with_events(workspace, customer, key, now, &[announced])
        .await?;
    engine.forget_key(&record.secret_hash);
    Ok(record)
}
