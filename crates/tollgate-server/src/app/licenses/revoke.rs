//! Revoke a license: online validation answers `revoked` from then on.

use tollgate_store::trust::LicenseRecord;

use crate::app::subscriptions::customer_now;
use crate::engine::Engine;
use crate::error::{AppResult, Error};

/// Revokes a license at the customer's now (a second revocation keeps the first time and
/// reason) and announces it (`license.revoked`).
pub async fn revoke(
    engine: &Engine,
    workspace: &str,
    id: &str,
    reason: &str,
) -> AppResult<LicenseRecord> {
    super::master_key(engine)?;
    if reason.is_empty() || reason.chars().count() > 200 || reason.chars().any(char::is_control) {
        let message = "a revocation `reason` is 1 to 200 characters, without control characters";
        return Err(Error::validation(
            message,
            vec![crate::error::FieldError {
                path: "reason".into(),
                message: message.into(),
            }],
        ));
    }
    let license = super::get(engine, workspace, id).await?;
    let now = customer_now(engine, workspace, &license.customer).await?;
    super::revoke_with_event(engine, &license, reason, now).await
}
