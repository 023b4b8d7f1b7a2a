//! Portal sign-in by email (a "magic link"): a customer gives its email on the portal's sign-in
//! page; when the workspace has a customer with that email, an email carrying a single-use
//! portal link is sent to that address. The page answers the same whether or not the email is
//! known (no enumeration).
//!
//! The link's token is never stored in clear, not even in the outbox: the request writes a
//! domain event `portal.sign_in_requested` naming the customer and the origin the link must
//! point to, no token. The email worker mints the link when it sends the message
//! ([`sign_in_url`], called from `notify::email::compose`): a portal link like the operator's
//! (`portal::create_link`: only its SHA-256 is stored, it works once, for
//! [`super::portal::LINK_MINUTES`] from the moment it is sent). The token exists in the
//! worker's memory and in the email it sends, nowhere else; a retried send mints a new one.

use serde_json::json;
use tollgate_core::ids::WorkspaceId;

use crate::app::customers::profile::check_email;
use crate::engine::Engine;
use crate::error::AppResult;

/// The domain event of a sign-in request (the email's; no token in it).
pub const SIGN_IN_REQUESTED: &str = crate::app::outbox::types::PORTAL_SIGN_IN_REQUESTED;

/// Asks for a sign-in email for `email` in `workspace`, whose link will point to `origin`
/// (`https://billing.example.com`: a registered custom domain or the deployment's public URL,
/// never a Host header alone). Ok whether or not a customer has that email; an email that is not
/// an address is refused (that says nothing about any customer).
pub async fn request(engine: &Engine, workspace: &str, email: &str, origin: &str) -> AppResult<()> {
    let email = email.trim();
    check_email(email)?;
    let customer = engine
        .store()
        .customer_by_email(&WorkspaceId::from(workspace), email)
        .await?;
    let Some(customer) = customer.filter(|c| c.archived_at.is_none()) else {
        return Ok(());
    };
    let event = crate::app::outbox::event(
        engine,
        workspace,
        Some(&customer.id),
        SIGN_IN_REQUESTED,
        engine.now(),
        json!({"customer": customer.id, "origin": origin}),
    );
    engine
        .store()
        .append_events(&WorkspaceId::from(workspace), &[event])
        .await?;
    Ok(())
}

/// A fresh single-use sign-in link of `customer` on `origin` (the email worker's, at send time).
pub async fn sign_in_url(
    engine: &Engine,
    workspace: &str,
    customer: &str,
    origin: &str,
) -> AppResult<String> {
    let link = super::portal::create_link(engine, workspace, customer).await?;
    Ok(format!(
        "{}/portal/enter/{}",
        origin.trim_end_matches('/'),
        link.token
    ))
}
