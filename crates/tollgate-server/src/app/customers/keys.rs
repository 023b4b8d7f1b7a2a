//! A customer's API keys: a new one (its secret returned once, stored as a hash) and revocation.

use tollgate_core::ids::{CustomerId, KeyId, WorkspaceId};
use tollgate_store::ApiKeyRecord;

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
    store
        .get_customer(&WorkspaceId::from(workspace), &CustomerId::from(customer))
        .await?
        .ok_or_else(|| Error::not_found("customer", customer))?;
    let secret = generate_secret(CUSTOMER_KEY_PREFIX);
    let record = ApiKeyRecord {
        workspace: workspace.to_owned(),
        id: new_id("key"),
        customer: customer.to_owned(),
        name,
        secret_hash: hash_secret(&secret),
        prefix: secret.chars().take(CUSTOMER_KEY_PREFIX.len() + 4).collect(),
        created_at: engine.now(),
        revoked_at: None,
    };
    store.create_api_key(&record).await?;
    Ok(NewKey { record, secret })
}

/// Revokes a key; it is refused from the next request on, on every node.
pub async fn revoke_key(
    engine: &Engine,
    workspace: &WorkspaceId,
    customer: &CustomerId,
    key: &KeyId,
) -> AppResult<ApiKeyRecord> {
    let record = engine
        .store()
        .revoke_api_key(workspace, customer, key, engine.now())
        .await?;
    engine.forget_key(&record.secret_hash);
    Ok(record)
}
