//! The workspace's Ed25519 signing keys: made on first use, rotated (the previous key keeps
//! verifying until it is retired), published, and opened with the master key to sign.

use jiff::Timestamp;
use tollgate_core::code::Code;
use tollgate_core::ids::WorkspaceId;
use tollgate_store::trust::{SigningKeyRecord, SigningKeyStatus};
use tollgate_verify::{Keyring, PublicKey, SigningKey};

use super::master_key;
use crate::engine::Engine;
use crate::error::{AppResult, Error};

/// A public key as `GET /v1/license_keys` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedKey {
    pub id: String,
    pub public_key: String,
    pub status: SigningKeyStatus,
    pub created_at: Timestamp,
}

fn context(workspace: &str, id: &str) -> String {
    format!("tollgate license key/{workspace}/{id}")
}

/// Whether `master` opens the stored key (`tollgate doctor`: a server started with another
/// master key could not sign with it).
pub fn opens(master: &crate::sealing::MasterKey, key: &SigningKeyRecord) -> bool {
    master
        .open(&key.sealed_private_key, &context(&key.workspace, &key.id))
        .is_ok()
}

/// Makes a new key, sealed, and makes it the active one (the active one before becomes
/// `previous`).
pub async fn rotate_key(
    engine: &Engine,
    workspace: &str,
    now: Timestamp,
) -> AppResult<SigningKeyRecord> {
    let master = master_key(engine)?;
    let key = SigningKey::from_bytes(&rand::random::<[u8; 32]>());
    let public = PublicKey::from(key.verifying_key());
    let id = public.id();
    let sealed = master
        .seal(key.as_bytes(), &context(workspace, &id))
        .map_err(Error::internal)?;
    let record = SigningKeyRecord {
        workspace: workspace.to_owned(),
        id,
        public_key: public.to_base64(),
        sealed_private_key: sealed,
        status: SigningKeyStatus::Active,
        created_at: now,
        retired_at: None,
    };
    engine.store().rotate_signing_key(&record).await?;
    Ok(record)
}

/// Retires a previous key: licenses it signed no longer verify online, and it is no longer
/// published.
pub async fn retire_key(
    engine: &Engine,
    workspace: &str,
    id: &str,
    now: Timestamp,
) -> AppResult<SigningKeyRecord> {
    master_key(engine)?;
    Ok(engine
        .store()
        .retire_signing_key(&WorkspaceId::from(workspace), id, now)
        .await?)
}

/// The active and previous keys (retired ones are not published).
pub async fn published_keys(engine: &Engine, workspace: &str) -> AppResult<Vec<PublishedKey>> {
    master_key(engine)?;
    Ok(engine
        .store()
        .signing_keys(&WorkspaceId::from(workspace))
        .await?
        .into_iter()
        .filter(|k| k.status != SigningKeyStatus::Retired)
        .map(|k| PublishedKey {
            id: k.id,
            public_key: k.public_key,
            status: k.status,
            created_at: k.created_at,
        })
        .collect())
}

/// The keys that verify: active and previous.
pub async fn keyring(engine: &Engine, workspace: &str) -> AppResult<Keyring> {
    let mut ring = Keyring::new();
    for key in published_keys(engine, workspace).await? {
        ring.add(PublicKey::from_base64(&key.public_key).map_err(Error::internal)?);
    }
    Ok(ring)
}

/// The active signing key, opened; made on first use.
pub(crate) async fn active_signing_key(
    engine: &Engine,
    workspace: &str,
    now: Timestamp,
) -> AppResult<SigningKey> {
    let master = master_key(engine)?;
    let keys = engine
        .store()
        .signing_keys(&WorkspaceId::from(workspace))
        .await?;
    let record = match keys
        .into_iter()
        .find(|k| k.status == SigningKeyStatus::Active)
    {
        Some(record) => record,
        None => rotate_key(engine, workspace, now).await?,
    };
    let secret = master
        .open(&record.sealed_private_key, &context(workspace, &record.id))
        .map_err(|_| {
            // The operator's configuration, not the request: the server was started with
            // another master key than the one that sealed this workspace's signing key.
            Error::unavailable(
                Code::MasterKeyMismatch,
                format!(
                    "the master key does not open signing key {} of this workspace: the server \
                     was started with another master key than the one that sealed it (run \
                     `tollgate doctor` to see which keys open)",
                    record.id
                ),
            )
        })?;
    let secret: [u8; 32] = secret
        .as_slice()
        .try_into()
        .map_err(|_| Error::internal("a sealed signing key is not 32 bytes"))?;
    Ok(SigningKey::from_bytes(&secret))
}
