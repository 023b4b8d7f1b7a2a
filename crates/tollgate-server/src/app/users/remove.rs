//! Removing an operator (an admin's act on the dashboard): its row and its sessions go, so it is
//! signed out at once. The workspace's last admin is never removed (`last_admin`).

use tollgate_core::code::Code;
use tollgate_core::ids::WorkspaceId;
use tollgate_store::users::OperatorUserRecord;

use crate::engine::Engine;
use crate::error::{AppResult, Error};

/// The removed operator.
pub async fn remove(engine: &Engine, workspace: &str, id: &str) -> AppResult<OperatorUserRecord> {
    let ws = WorkspaceId::from(workspace);
    let store = engine.store();
    let user = store
        .operator_user(&ws, id)
        .await?
        .ok_or_else(|| Error::not_found("user", id))?;
    if !store.delete_operator_user(&ws, id).await? {
        return Err(Error::conflict(
            Code::LastAdmin,
            format!(
                "{} is the workspace's last admin: make another operator an admin first",
                user.email
            ),
        ));
    }
    Ok(user)
}
