//! [`TrustStore`]: license signing keys, licenses and their machine activations (the trust
//! issue, `docs/TRUST.md`), written once over the backends like the rest of the store.
//!
//! Private signing keys arrive here already sealed (AEAD under the operator's master key, by the
//! server): the store never sees one in the clear.

use async_trait::async_trait;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tollgate_core::ids::{CustomerId, WorkspaceId};

use crate::backend::{Backend, Conn, args, run_all, run_optional};
use crate::codec::{Columns, insert_error};
use crate::outbox::{OutboxEvent, append};
use crate::sql as q;
use crate::store::require_row;
use crate::{StoreError, StoreResult};

/// Where a signing key stands: `active` signs, `previous` still verifies (after a rotation),
/// `retired` no longer verifies and is no longer published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SigningKeyStatus {
    Active,
    Previous,
    Retired,
}

impl SigningKeyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SigningKeyStatus::Active => "active",
            SigningKeyStatus::Previous => "previous",
            SigningKeyStatus::Retired => "retired",
        }
    }

    fn parse(s: &str) -> StoreResult<Self> {
        match s {
            "active" => Ok(SigningKeyStatus::Active),
            "previous" => Ok(SigningKeyStatus::Previous),
            "retired" => Ok(SigningKeyStatus::Retired),
            other => Err(StoreError::Corrupt(format!(
                "unknown signing key status {other:?}"
            ))),
        }
    }
}

/// A workspace's Ed25519 signing key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKeyRecord {
    pub workspace: String,
    /// The key id (`tollgate_verify::PublicKey::id`).
    pub id: String,
    /// The public key, standard base64 of 32 bytes.
    pub public_key: String,
    /// The private key sealed under the master key (nonce and ciphertext, base64).
    pub sealed_private_key: String,
    pub status: SigningKeyStatus,
    pub created_at: Timestamp,
    pub retired_at: Option<Timestamp>,
}

/// An issued license: the armored file as signed, and what the server needs to find, renew and
/// revoke it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicenseRecord {
    pub workspace: String,
    pub id: String,
    pub customer: String,
    /// The subscription it follows, if it was issued from one.
    pub subscription: Option<String>,
    pub plan: String,
    pub key_id: String,
    /// The armored license file, exactly as issued.
    pub file: String,
    pub issued_at: Timestamp,
    pub expires_at: Timestamp,
    /// The most machines activated at once; `None`: no limit.
    pub max_machines: Option<i64>,
    pub revoked_at: Option<Timestamp>,
    pub revoke_reason: Option<String>,
}

/// A machine on which a license is activated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivationRecord {
    pub workspace: String,
    pub license: String,
    pub fingerprint: String,
    pub activated_at: Timestamp,
    pub last_heartbeat: Timestamp,
}

/// What an activation attempt found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Activation {
    /// Activated now, or already active and refreshed.
    Active(ActivationRecord),
    /// Every seat is held by a machine whose heartbeat is fresh.
    Full { active: i64 },
}

#[async_trait]
pub trait TrustStore: Send + Sync {
    /// Stores a new active key; the key active before becomes `previous` (it keeps verifying
    /// until retired). One transaction.
    async fn rotate_signing_key(&self, key: &SigningKeyRecord) -> StoreResult<()>;
    /// Every key of a workspace, newest first.
    async fn signing_keys(&self, workspace: &WorkspaceId) -> StoreResult<Vec<SigningKeyRecord>>;
    /// Retires a `previous` key: it no longer verifies. `Conflict` for the active key.
    async fn retire_signing_key(
        &self,
        workspace: &WorkspaceId,
        id: &str,
        at: Timestamp,
    ) -> StoreResult<SigningKeyRecord>;

    /// Stores an issued license and the events that announce it, in one transaction.
    async fn insert_license(
        &self,
        license: &LicenseRecord,
        events: &[OutboxEvent],
    ) -> StoreResult<()>;
    async fn get_license(
        &self,
        workspace: &WorkspaceId,
        id: &str,
    ) -> StoreResult<Option<LicenseRecord>>;
    /// A customer's licenses, newest first.
    async fn list_licenses(
        &self,
        workspace: &WorkspaceId,
        customer: &CustomerId,
    ) -> StoreResult<Vec<LicenseRecord>>;
    /// The unrevoked licenses that follow a subscription.
    async fn subscription_licenses(
        &self,
        workspace: &WorkspaceId,
        subscription: &str,
    ) -> StoreResult<Vec<LicenseRecord>>;
    /// Revokes a license (a second revocation keeps the first time and reason) and, when this
    /// call revoked it, appends `events` in the same transaction.
    async fn revoke_license(
        &self,
        workspace: &WorkspaceId,
        id: &str,
        at: Timestamp,
        reason: &str,
        events: &[OutboxEvent],
    ) -> StoreResult<LicenseRecord>;

    /// Activates a machine (or refreshes its heartbeat) unless `max` machines with a heartbeat
    /// at or after `fresh_since` hold every seat: machines whose heartbeats stopped give their
    /// seat up. One transaction, so two machines never take the last seat together.
    async fn activate_machine(
        &self,
        workspace: &WorkspaceId,
        license: &str,
        fingerprint: &str,
        at: Timestamp,
        max: Option<i64>,
        fresh_since: Timestamp,
    ) -> StoreResult<Activation>;
    /// Records a heartbeat; `NotFound` when the machine is not activated.
    async fn heartbeat_machine(
        &self,
        workspace: &WorkspaceId,
        license: &str,
        fingerprint: &str,
        at: Timestamp,
    ) -> StoreResult<ActivationRecord>;
    /// Releases a machine's seat; `NotFound` when it is not activated.
    async fn deactivate_machine(
        &self,
        workspace: &WorkspaceId,
        license: &str,
        fingerprint: &str,
    ) -> StoreResult<()>;
    /// A license's machines, oldest activation first.
    async fn activations(
        &self,
        workspace: &WorkspaceId,
        license: &str,
    ) -> StoreResult<Vec<ActivationRecord>>;
}

fn signing_key(r: &impl Columns) -> StoreResult<SigningKeyRecord> {
    Ok(SigningKeyRecord {
        workspace: r.text("workspace")?,
        id: r.text("id")?,
        public_key: r.text("public_key")?,
        sealed_private_key: r.text("sealed_private_key")?,
        status: SigningKeyStatus::parse(&r.text("status")?)?,
        created_at: r.time("created_at")?,
        retired_at: r.opt_time("retired_at")?,
    })
}

fn license(r: &impl Columns) -> StoreResult<LicenseRecord> {
    Ok(LicenseRecord {
        workspace: r.text("workspace")?,
        id: r.text("id")?,
        customer: r.text("customer")?,
        subscription: r.opt_text("subscription")?,
        plan: r.text("plan")?,
        key_id: r.text("key_id")?,
        file: r.text("file")?,
        issued_at: r.time("issued_at")?,
        expires_at: r.time("expires_at")?,
        max_machines: r.opt_int("max_machines")?,
        revoked_at: r.opt_time("revoked_at")?,
        revoke_reason: r.opt_text("revoke_reason")?,
    })
}

fn activation(r: &impl Columns) -> StoreResult<ActivationRecord> {
    Ok(ActivationRecord {
        workspace: r.text("workspace")?,
        license: r.text("license")?,
        fingerprint: r.text("fingerprint")?,
        activated_at: r.time("activated_at")?,
        last_heartbeat: r.time("last_heartbeat")?,
    })
}

#[async_trait]
impl<B: Backend> TrustStore for B {
    async fn rotate_signing_key(&self, k: &SigningKeyRecord) -> StoreResult<()> {
        let mut tx = self.write(&k.workspace).await?;
        tx.execute(q::DEMOTE_ACTIVE_SIGNING_KEY, args![&k.workspace])
            .await?;
        let values = args![
            &k.workspace,
            &k.id,
            &k.public_key,
            &k.sealed_private_key,
            k.status.as_str(),
            k.created_at,
            k.retired_at,
        ];
        tx.execute(q::INSERT_SIGNING_KEY, values)
            .await
            .map_err(|e| insert_error(e, "signing_key", &k.id, "workspace", &k.workspace))?;
        tx.commit().await?;
        Ok(())
    }

    async fn signing_keys(&self, workspace: &WorkspaceId) -> StoreResult<Vec<SigningKeyRecord>> {
        run_all(
            self.read(workspace),
            q::SIGNING_KEYS,
            args![workspace],
            signing_key,
        )
        .await
    }

    async fn retire_signing_key(
        &self,
        workspace: &WorkspaceId,
        id: &str,
        at: Timestamp,
    ) -> StoreResult<SigningKeyRecord> {
        let mut tx = self.write(workspace).await?;
        let row = tx
            .fetch_optional(q::GET_SIGNING_KEY, args![workspace, id])
            .await?
            .ok_or_else(|| StoreError::NotFound {
                kind: "signing_key",
                id: id.to_owned(),
            })?;
        let key = signing_key(&row)?;
        if key.status == SigningKeyStatus::Active {
            return Err(StoreError::Conflict(
                "the active signing key cannot be retired; rotate first".into(),
            ));
        }
        tx.execute(q::RETIRE_SIGNING_KEY, args![workspace, id, at])
            .await?;
        let row = tx
            .fetch_optional(q::GET_SIGNING_KEY, args![workspace, id])
            .await?;
        tx.commit().await?;
        row.as_ref()
            .map(signing_key)
            .transpose()?
            .ok_or_else(|| StoreError::Corrupt("a retired key vanished".into()))
    }

    async fn insert_license(&self, l: &LicenseRecord, events: &[OutboxEvent]) -> StoreResult<()> {
        let values = args![
            &l.workspace,
            &l.id,
            &l.customer,
            &l.subscription,
            &l.plan,
            &l.key_id,
            &l.file,
            l.issued_at,
            l.expires_at,
            crate::backend::Arg::OptInt(l.max_machines),
            l.revoked_at,
            &l.revoke_reason,
        ];
        let mut tx = self.write(&l.workspace).await?;
        tx.execute(q::INSERT_LICENSE, values)
            .await
            .map_err(|e| insert_error(e, "license", &l.id, "customer", &l.customer))?;
        append(&mut tx, events).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn get_license(
        &self,
        workspace: &WorkspaceId,
        id: &str,
    ) -> StoreResult<Option<LicenseRecord>> {
        run_optional(
            self.read(workspace),
            q::GET_LICENSE,
            args![workspace, id],
            license,
        )
        .await
    }

    async fn list_licenses(
        &self,
        workspace: &WorkspaceId,
        customer: &CustomerId,
    ) -> StoreResult<Vec<LicenseRecord>> {
        run_all(
            self.read(workspace),
            q::CUSTOMER_LICENSES,
            args![workspace, customer],
            license,
        )
        .await
    }

    async fn subscription_licenses(
        &self,
        workspace: &WorkspaceId,
        subscription: &str,
    ) -> StoreResult<Vec<LicenseRecord>> {
        run_all(
            self.read(workspace),
            q::SUBSCRIPTION_LICENSES,
            args![workspace, subscription],
            license,
        )
        .await
    }

    async fn revoke_license(
        &self,
        workspace: &WorkspaceId,
        id: &str,
        at: Timestamp,
        reason: &str,
        events: &[OutboxEvent],
    ) -> StoreResult<LicenseRecord> {
        let mut tx = self.write(workspace).await?;
        let rows = tx
            .execute(q::REVOKE_LICENSE, args![workspace, id, at, reason])
            .await?;
        if rows > 0 {
            append(&mut tx, events).await?;
        }
        let row = tx
            .fetch_optional(q::GET_LICENSE, args![workspace, id])
            .await?;
        tx.commit().await?;
        match row {
            Some(row) => license(&row),
            None => {
                require_row(rows, "license", id)?;
                Err(StoreError::NotFound {
                    kind: "license",
                    id: id.to_owned(),
                })
            }
        }
    }

    async fn activate_machine(
        &self,
        workspace: &WorkspaceId,
        license: &str,
        fingerprint: &str,
        at: Timestamp,
        max: Option<i64>,
        fresh_since: Timestamp,
    ) -> StoreResult<Activation> {
        let mut tx = self.write(workspace).await?;
        // Seats of machines whose heartbeats stopped are released first.
        tx.execute(
            q::RELEASE_STALE_ACTIVATIONS,
            args![workspace, license, fresh_since],
        )
        .await?;
        let refreshed = tx
            .execute(q::HEARTBEAT, args![workspace, license, fingerprint, at])
            .await?;
        if refreshed == 0 {
            let active = tx
                .fetch_optional(q::COUNT_ACTIVATIONS, args![workspace, license])
                .await?
                .map(|r| r.int("n"))
                .transpose()?
                .unwrap_or(0);
            if let Some(max) = max
                && active >= max
            {
                return Ok(Activation::Full { active });
            }
            tx.execute(
                q::INSERT_ACTIVATION,
                args![workspace, license, fingerprint, at, at],
            )
            .await
            .map_err(|e| insert_error(e, "activation", fingerprint, "license", license))?;
        }
        let row = tx
            .fetch_optional(q::GET_ACTIVATION, args![workspace, license, fingerprint])
            .await?
            .ok_or_else(|| StoreError::Corrupt("an activation vanished".into()))?;
        let record = activation(&row)?;
        tx.commit().await?;
        Ok(Activation::Active(record))
    }

    async fn heartbeat_machine(
        &self,
        workspace: &WorkspaceId,
        license: &str,
        fingerprint: &str,
        at: Timestamp,
    ) -> StoreResult<ActivationRecord> {
        let mut tx = self.write(workspace).await?;
        let rows = tx
            .execute(q::HEARTBEAT, args![workspace, license, fingerprint, at])
            .await?;
        require_row(rows, "activation", fingerprint)?;
        let row = tx
            .fetch_optional(q::GET_ACTIVATION, args![workspace, license, fingerprint])
            .await?
            .ok_or_else(|| StoreError::Corrupt("an activation vanished".into()))?;
        let record = activation(&row)?;
        tx.commit().await?;
        Ok(record)
    }

    async fn deactivate_machine(
        &self,
        workspace: &WorkspaceId,
        license: &str,
        fingerprint: &str,
    ) -> StoreResult<()> {
        let rows = crate::backend::run_execute(
            self.write(workspace),
            q::DELETE_ACTIVATION,
            args![workspace, license, fingerprint],
        )
        .await?;
        require_row(rows, "activation", fingerprint)
    }

    async fn activations(
        &self,
        workspace: &WorkspaceId,
        license: &str,
    ) -> StoreResult<Vec<ActivationRecord>> {
        run_all(
            self.read(workspace),
            q::ACTIVATIONS,
            args![workspace, license],
            activation,
        )
        .await
    }
}
