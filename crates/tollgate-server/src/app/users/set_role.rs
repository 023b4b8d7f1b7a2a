//! Changing an operator's role (an admin's act on the dashboard). A workspace always keeps one
//! admin: demoting the last one is refused (`last_admin`), the admin's own role included.

use tollgate_core::code::Code;
use tollgate_core::ids::WorkspaceId;
use tollgate_store::users::OperatorUserRecord;

use super::Role;
use crate::engine::Engine;
use crate::error::{AppResult, Error};

/// The operator with its new role.
pub async fn set_role(
    engine: &Engine,
    workspace: &str,
    id: &str,
    role: &str,
) -> AppResult<OperatorUserRecord> {
    let role = Role::parse(role)?;
    let ws = WorkspaceId::from(workspace);
    let store = engine.store();
    let user = store
        .operator_user(&ws, id)
        .await?
        .ok_or_else(|| Error::not_found("user", id))?;
    // The store checks the last admin in the same statement as the change.
    if !store.set_operator_role(&ws, id, role.as_str()).await? {
        return Err(Error::conflict(
            Code::LastAdmin,
            format!(
                "{} is the workspace's last admin: make another operator an admin first",
                user.email
            ),
        ));
    }
    Ok(OperatorUserRecord {
        role: role.as_str().to_owned(),
        ..user
    })
}
