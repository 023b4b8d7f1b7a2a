//! Machine activations: a license with `max_machines` runs on at most that many machines at
//! once, each named by a fingerprint and kept by heartbeats. A machine whose last heartbeat is
//! older than [`HEARTBEAT_TIMEOUT`] gives its seat up (floating seats).

use jiff::SignedDuration;
use tollgate_core::code::Code;
use tollgate_core::ids::WorkspaceId;
use tollgate_store::trust::{Activation, ActivationRecord};

use crate::app::subscriptions::customer_now;
use crate::engine::Engine;
use crate::error::{AppResult, Error};

/// How long a machine keeps its seat without a heartbeat.
pub const HEARTBEAT_TIMEOUT: SignedDuration = SignedDuration::from_mins(30);

/// Fingerprints: 1 to 128 characters of letters, digits, `_ - . :`.
pub(crate) fn check_fingerprint(fp: &str) -> AppResult<()> {
    let valid = !fp.is_empty()
        && fp.len() <= 128
        && fp
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'));
    if valid {
        Ok(())
    } else {
        Err(Error::invalid(
            Code::InvalidFingerprint,
            "a machine fingerprint is 1 to 128 letters, digits or `_ - . :`",
        ))
    }
}

/// Activates a machine on a license (or refreshes it), unless every seat is held.
pub async fn activate(
    engine: &Engine,
    workspace: &str,
    license: &str,
    fingerprint: &str,
) -> AppResult<ActivationRecord> {
    check_fingerprint(fingerprint)?;
    let record = super::get(engine, workspace, license).await?;
    let now = customer_now(engine, workspace, &record.customer).await?;
    if record.revoked_at.is_some() {
        return Err(Error::conflict(
            Code::LicenseRevoked,
            "the license is revoked",
        ));
    }
    // A license in its grace period still takes machines (online validation accepts it too).
    let grace_ends = tollgate_verify::LicenseFile::parse(&record.file)
        .ok()
        .and_then(|f| serde_json::from_slice::<tollgate_verify::License>(&f.payload).ok())
        .map_or(record.expires_at, |l| l.grace_ends());
    if now >= grace_ends {
        return Err(Error::conflict(
            Code::LicenseExpired,
            "the license's term and grace period have ended",
        ));
    }
    match engine
        .store()
        .activate_machine(
            &WorkspaceId::from(workspace),
            license,
            fingerprint,
            now,
            record.max_machines,
            now - HEARTBEAT_TIMEOUT,
        )
        .await?
    {
        Activation::Active(a) => Ok(a),
        Activation::Full { active } => Err(Error::conflict(
            Code::MachineLimitReached,
            format!(
                "{active} machines hold every seat of this license; deactivate one or wait for \
                 one to stop sending heartbeats"
            ),
        )),
    }
}

/// Keeps a machine's seat.
pub async fn heartbeat(
    engine: &Engine,
    workspace: &str,
    license: &str,
    fingerprint: &str,
) -> AppResult<ActivationRecord> {
    let record = super::get(engine, workspace, license).await?;
    let now = customer_now(engine, workspace, &record.customer).await?;
    let ws = WorkspaceId::from(workspace);
    // A machine whose seat lapsed must activate again (its seat may be taken).
    let lapsed = engine
        .store()
        .activations(&ws, license)
        .await?
        .into_iter()
        .any(|a| a.fingerprint == fingerprint && a.last_heartbeat < now - HEARTBEAT_TIMEOUT);
    if lapsed {
        return Err(Error::not_found("activation", fingerprint));
    }
    Ok(engine
        .store()
        .heartbeat_machine(&ws, license, fingerprint, now)
        .await?)
}

/// Releases a machine's seat.
pub async fn deactivate(
    engine: &Engine,
    workspace: &str,
    license: &str,
    fingerprint: &str,
) -> AppResult<()> {
    super::get(engine, workspace, license).await?;
    Ok(engine
        .store()
        .deactivate_machine(&WorkspaceId::from(workspace), license, fingerprint)
        .await?)
}
