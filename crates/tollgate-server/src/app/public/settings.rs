//! A workspace's public pages are off until its operator turns them on (`PUT
//! /v1/public_pages`, or the dashboard's "Public pages"): a catalog is often applied long before
//! its prices should be public.

use tollgate_core::ids::WorkspaceId;
use tollgate_store::public::PublicPagesRecord;

use crate::engine::Engine;
use crate::error::AppResult;

/// Whether `workspace` shows its pricing table and hosted signup.
pub async fn enabled(engine: &Engine, workspace: &str) -> AppResult<bool> {
    Ok(engine
        .store()
        .get_public_pages(&WorkspaceId::from(workspace))
        .await?
        .is_some_and(|p| p.enabled))
}

/// Turns them on or off; the stored setting.
pub async fn set(engine: &Engine, workspace: &str, enabled: bool) -> AppResult<PublicPagesRecord> {
    let record = PublicPagesRecord {
        workspace: workspace.to_owned(),
        enabled,
        updated_at: engine.now(),
    };
    engine.store().put_public_pages(&record).await?;
    Ok(record)
}
