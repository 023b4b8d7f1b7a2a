//! Resolving a session from the token a cookie carries, and ending it.

use tollgate_core::ids::WorkspaceId;
use tollgate_store::users::{OperatorUserRecord, WebSessionRecord};

use super::Role;
use super::kinds;
use crate::auth::hash_secret;
use crate::engine::Engine;
use crate::error::{AppResult, Error};

/// A signed-in operator.
pub struct Operator {
    pub session: WebSessionRecord,
    pub user: OperatorUserRecord,
    pub role: Role,
}

/// The live session of `kind` the token names, or `None` (unknown, expired, another kind, or a
/// single-use link already used).
pub async fn live_session(
    engine: &Engine,
    token: &str,
    kind: &str,
) -> AppResult<Option<WebSessionRecord>> {
    let Some(session) = engine.store().find_web_session(&hash_secret(token)).await? else {
        return Ok(None);
    };
    let live =
        session.kind == kind && session.expires_at > engine.now() && session.used_at.is_none();
    Ok(live.then_some(session))
}

/// The operator signed in with `token`, if the session is live and the user still exists.
pub async fn operator(engine: &Engine, token: &str) -> AppResult<Option<Operator>> {
    let Some(session) = live_session(engine, token, kinds::OPERATOR).await? else {
        return Ok(None);
    };
    let workspace = WorkspaceId::from(session.workspace.as_str());
    let Some(user) = engine
        .store()
        .operator_user(&workspace, &session.subject)
        .await?
    else {
        return Ok(None);
    };
    let role = Role::parse(&user.role).map_err(|_| {
        Error::internal(format!(
            "user {} has the unknown role {:?}",
            user.id, user.role
        ))
    })?;
    Ok(Some(Operator {
        session,
        user,
        role,
    }))
}

/// Ends the session `token` names (sign-out); an unknown token is no error.
pub async fn sign_out(engine: &Engine, token: &str) -> AppResult<()> {
    let hash = hash_secret(token);
    if let Some(session) = engine.store().find_web_session(&hash).await? {
        engine
            .store()
            .delete_web_session(&WorkspaceId::from(session.workspace.as_str()), &hash)
            .await?;
    }
    Ok(())
}
