//! The web pages' people and sessions (docs/DASHBOARD.md): operator users of a workspace (email,
//! an argon2 password hash computed by the server, a role) and the sessions of the dashboard and of
//! the customer portal, each kept as the hash of its token only.
//!
//! A session is found from its token's hash before any workspace is known (the cookie names no
//! workspace), through the same narrow lookup as API keys.

use async_trait::async_trait;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tollgate_core::ids::WorkspaceId;

use crate::backend::{Backend, args, run_all, run_execute, run_optional};
use crate::codec::{Columns, insert_error};
use crate::{StoreResult, sql};

/// An operator who signs in to the dashboard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperatorUserRecord {
    pub workspace: String,
    pub id: String,
    /// Lower-cased; unique per workspace.
    pub email: String,
    /// The argon2 PHC string (`$argon2id$...`): never the password.
    pub password_hash: String,
    /// `admin`, `billing` or `read_only` (the server owns the meaning).
    pub role: String,
    pub created_at: Timestamp,
}

/// A session of the web pages. `kind` is `operator`, `portal_link` or `portal`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebSessionRecord {
    pub workspace: String,
    /// SHA-256 of the token the cookie or link carries, hex.
    pub token_hash: String,
    pub kind: String,
    /// The user id (operator sessions) or the customer id (portal sessions and links).
    pub subject: String,
    /// The token every form of this session carries back (CSRF).
    pub csrf: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    /// When a single-use link was used.
    pub used_at: Option<Timestamp>,
}

#[async_trait]
pub trait UserStore: Send + Sync {
    /// A new operator; `AlreadyExists` when the workspace has one with this email.
    async fn create_operator_user(&self, user: &OperatorUserRecord) -> StoreResult<()>;
    async fn operator_user_by_email(
        &self,
        workspace: &WorkspaceId,
        email: &str,
    ) -> StoreResult<Option<OperatorUserRecord>>;
    async fn operator_user(
        &self,
        workspace: &WorkspaceId,
        id: &str,
    ) -> StoreResult<Option<OperatorUserRecord>>;
    /// The workspace's operators, by email.
    async fn list_operator_users(
        &self,
        workspace: &WorkspaceId,
    ) -> StoreResult<Vec<OperatorUserRecord>>;
    /// Sets an operator's role; `false` when no such operator, or when it is the workspace's
    /// last admin and `role` is not `admin` (a workspace always keeps one admin).
    async fn set_operator_role(
        &self,
        workspace: &WorkspaceId,
        id: &str,
        role: &str,
    ) -> StoreResult<bool>;
    /// Removes an operator and ends its sessions; `false` when no such operator, or when it is
    /// the workspace's last admin.
    async fn delete_operator_user(&self, workspace: &WorkspaceId, id: &str) -> StoreResult<bool>;
    async fn create_web_session(&self, session: &WebSessionRecord) -> StoreResult<()>;
    /// The session whose token hashes to `token_hash`, in any workspace (expired ones too: the
    /// caller compares `expires_at` with its clock).
    async fn find_web_session(&self, token_hash: &str) -> StoreResult<Option<WebSessionRecord>>;
    /// Marks a single-use session used, once: `false` when it was used already (compare-and-set).
    async fn use_web_session(
        &self,
        workspace: &WorkspaceId,
        token_hash: &str,
        at: Timestamp,
    ) -> StoreResult<bool>;
    /// Ends a session (sign-out); ending one that is gone is no error.
    async fn delete_web_session(
        &self,
        workspace: &WorkspaceId,
        token_hash: &str,
    ) -> StoreResult<()>;
    /// Deletes the workspace's sessions that expired before `before`; how many.
    async fn prune_web_sessions(
        &self,
        workspace: &WorkspaceId,
        before: Timestamp,
    ) -> StoreResult<u64>;
}

fn user(r: &impl Columns) -> StoreResult<OperatorUserRecord> {
    Ok(OperatorUserRecord {
        workspace: r.text("workspace")?,
        id: r.text("id")?,
        email: r.text("email")?,
        password_hash: r.text("password_hash")?,
        role: r.text("role")?,
        created_at: r.time("created_at")?,
    })
}

fn session(r: &impl Columns) -> StoreResult<WebSessionRecord> {
    Ok(WebSessionRecord {
        workspace: r.text("workspace")?,
        token_hash: r.text("token_hash")?,
        kind: r.text("kind")?,
        subject: r.text("subject")?,
        csrf: r.text("csrf")?,
        created_at: r.time("created_at")?,
        expires_at: r.time("expires_at")?,
        used_at: r.opt_time("used_at")?,
    })
}

#[async_trait]
impl<B: Backend> UserStore for B {
    async fn create_operator_user(&self, u: &OperatorUserRecord) -> StoreResult<()> {
        let values = args![
            &u.workspace,
            &u.id,
            &u.email,
            &u.password_hash,
            &u.role,
            u.created_at
        ];
        run_execute(self.write(&u.workspace), sql::CREATE_OPERATOR_USER, values)
            .await
            .map_err(|e| insert_error(e, "user", &u.email, "workspace", &u.workspace))?;
        Ok(())
    }

    async fn operator_user_by_email(
        &self,
        workspace: &WorkspaceId,
        email: &str,
    ) -> StoreResult<Option<OperatorUserRecord>> {
        let values = args![workspace, email];
        run_optional(
            self.read(workspace),
            sql::OPERATOR_USER_BY_EMAIL,
            values,
            user,
        )
        .await
    }

    async fn operator_user(
        &self,
        workspace: &WorkspaceId,
        id: &str,
    ) -> StoreResult<Option<OperatorUserRecord>> {
        let values = args![workspace, id];
        run_optional(self.read(workspace), sql::OPERATOR_USER, values, user).await
    }

    async fn list_operator_users(
        &self,
        workspace: &WorkspaceId,
    ) -> StoreResult<Vec<OperatorUserRecord>> {
        let values = args![workspace];
        run_all(self.read(workspace), sql::LIST_OPERATOR_USERS, values, user).await
    }

    async fn set_operator_role(
        &self,
        workspace: &WorkspaceId,
        id: &str,
        role: &str,
    ) -> StoreResult<bool> {
        let values = args![workspace, id, role];
        let changed = run_execute(self.write(workspace), sql::SET_OPERATOR_ROLE, values).await?;
        Ok(changed == 1)
    }

    async fn delete_operator_user(&self, workspace: &WorkspaceId, id: &str) -> StoreResult<bool> {
        let values = args![workspace, id];
        let removed = run_execute(self.write(workspace), sql::DELETE_OPERATOR_USER, values).await?;
        if removed == 1 {
            let values = args![workspace, id];
            run_execute(self.write(workspace), sql::DELETE_OPERATOR_SESSIONS, values).await?;
        }
        Ok(removed == 1)
    }

    async fn create_web_session(&self, s: &WebSessionRecord) -> StoreResult<()> {
        let values = args![
            &s.workspace,
            &s.token_hash,
            &s.kind,
            &s.subject,
            &s.csrf,
            s.created_at,
            s.expires_at,
            s.used_at
        ];
        run_execute(self.write(&s.workspace), sql::CREATE_WEB_SESSION, values)
            .await
            .map_err(|e| insert_error(e, "session", &s.kind, "workspace", &s.workspace))?;
        Ok(())
    }

    async fn find_web_session(&self, token_hash: &str) -> StoreResult<Option<WebSessionRecord>> {
        let session_of = self.key_lookup(token_hash);
        run_optional(
            session_of,
            sql::FIND_WEB_SESSION,
            args![token_hash],
            session,
        )
        .await
    }

    async fn use_web_session(
        &self,
        workspace: &WorkspaceId,
        token_hash: &str,
        at: Timestamp,
    ) -> StoreResult<bool> {
        let values = args![workspace, token_hash, at];
        let changed = run_execute(self.write(workspace), sql::USE_WEB_SESSION, values).await?;
        Ok(changed == 1)
    }

    async fn delete_web_session(
        &self,
        workspace: &WorkspaceId,
        token_hash: &str,
    ) -> StoreResult<()> {
        let values = args![workspace, token_hash];
        run_execute(self.write(workspace), sql::DELETE_WEB_SESSION, values).await?;
        Ok(())
    }

    async fn prune_web_sessions(
        &self,
        workspace: &WorkspaceId,
        before: Timestamp,
    ) -> StoreResult<u64> {
        let values = args![workspace, before];
        run_execute(self.write(workspace), sql::PRUNE_WEB_SESSIONS, values).await
    }
}
