//! The customer portal's way in: an operator's app asks for a portal session of one of its
//! customers (`POST /v1/customers/{id}/portal_sessions`) and sends the customer to the URL it
//! gets; the link works once and for [`LINK_MINUTES`], and becomes a portal session of
//! [`PORTAL_MINUTES`] held in a cookie.

use jiff::Timestamp;
use tollgate_core::code::Code;
use tollgate_core::ids::{CustomerId, WorkspaceId};
use tollgate_store::users::WebSessionRecord;

use super::kinds;
use super::sessions::live_session;
use super::sign_in::open_session;
use crate::auth::hash_secret;
use crate::engine::Engine;
use crate::error::{AppResult, Error};

/// How long a portal link can be opened.
pub const LINK_MINUTES: i64 = 15;
/// How long the portal session it opens lasts.
pub const PORTAL_MINUTES: i64 = 60;

pub struct PortalLink {
    /// The token of the link (`/portal/enter/{token}`), shown once.
    pub token: String,
    pub expires_at: Timestamp,
}

/// A single-use link for `customer` of `workspace`.
pub async fn create_link(
    engine: &Engine,
    workspace: &str,
    customer: &str,
) -> AppResult<PortalLink> {
    let owner = engine
        .store()
        .get_customer(&WorkspaceId::from(workspace), customer)
        .await?
        .ok_or_else(|| Error::not_found("customer", customer))?;
    crate::app::customers::profile::ensure_not_archived(&owner)?;
    let (token, record) = open_session(
        engine,
        workspace,
        kinds::PORTAL_LINK,
        customer,
        LINK_MINUTES,
    )
    .await?;
    Ok(PortalLink {
        token,
        expires_at: record.expires_at,
    })
}

/// Uses a link (once) and opens the portal session it stands for: its token and record.
pub async fn enter(engine: &Engine, link_token: &str) -> AppResult<(String, WebSessionRecord)> {
    let invalid = || {
        Error::gone(
            Code::PortalLinkInvalid,
            "this portal link is unknown, expired or used: ask for a new one",
        )
    };
    let link = live_session(engine, link_token, kinds::PORTAL_LINK)
        .await?
        .ok_or_else(invalid)?;
    let workspace = WorkspaceId::from(link.workspace.as_str());
    if !engine
        .store()
        .use_web_session(&workspace, &hash_secret(link_token), engine.now())
        .await?
    {
        return Err(invalid());
    }
    open_session(
        engine,
        &link.workspace,
        kinds::PORTAL,
        &link.subject,
        PORTAL_MINUTES,
    )
    .await
}

/// The customer whose portal session `token` is, with the session.
pub async fn customer_session(
    engine: &Engine,
    token: &str,
) -> AppResult<Option<(WebSessionRecord, CustomerId)>> {
    Ok(live_session(engine, token, kinds::PORTAL).await?.map(|s| {
        let customer = CustomerId::from(s.subject.as_str());
        (s, customer)
    }))
}
