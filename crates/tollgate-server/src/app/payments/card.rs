//! Card capture: a Stripe customer for the Tollgate customer (made once), then a Checkout
//! Session in setup mode whose URL the customer opens to save a card. Completing it is
//! announced by Stripe's webhook (`stripe_events`), which makes the card the default and flips
//! the customer's `has_payment_method` (a trial then converts at its end). The Billing Portal
//! lets a customer with a Stripe customer replace its card.

use tollgate_core::code::Code;
use tollgate_core::ids::{CustomerId, WorkspaceId};
use tollgate_store::payments::ProviderCustomerRecord;

use super::{stripe_client, stripe_link};
use crate::engine::Engine;
use crate::error::{AppResult, Error};
use crate::ids::new_id;
use crate::providers::stripe::{self, CheckoutSetup, Stripe};

/// Start a card setup for a customer.
#[derive(Debug, Clone)]
pub struct CardSetup {
    pub workspace: String,
    pub customer: String,
    /// Where Stripe sends the customer after saving the card, and after giving up.
    pub success_url: String,
    pub cancel_url: String,
}

/// A started setup: the Checkout Session and the URL to send the customer to.
#[derive(Debug, Clone)]
pub struct CheckoutStarted {
    pub session: String,
    pub url: String,
    pub stripe_customer: String,
}

/// A redirect URL: absolute `https` (or `http`), printable, at most 2048 characters.
pub(super) fn check_url(field: &str, url: &str) -> AppResult<()> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    let ok = rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/'))
        && url.len() <= 2048
        && url.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            Code::InvalidRedirectUrl,
            format!("`{field}` must be an absolute http(s) URL of at most 2048 characters"),
        ))
    }
}

/// The customer's Stripe customer, made (once) when it has none.
pub(super) async fn ensure_stripe_customer(
    engine: &Engine,
    client: &Stripe,
    workspace: &str,
    customer: &str,
) -> AppResult<ProviderCustomerRecord> {
    if let Some(link) = stripe_link(engine, workspace, customer).await? {
        return Ok(link);
    }
    let record = engine
        .store()
        .get_customer(&WorkspaceId::from(workspace), &CustomerId::from(customer))
        .await?
        .ok_or_else(|| Error::not_found("customer", customer))?;
    crate::app::customers::profile::ensure_not_archived(&record)?;
    let created = client
        .create_customer(
            workspace,
            customer,
            record.email.as_deref(),
            record.name.as_deref(),
        )
        .await?;
    let now = engine.now();
    Ok(engine
        .store()
        .link_provider_customer(&ProviderCustomerRecord {
            workspace: workspace.to_owned(),
            customer: customer.to_owned(),
            provider: stripe::NAME.to_owned(),
            provider_customer: created.id,
            default_payment_method: None,
            created_at: now,
            updated_at: now,
        })
        .await?)
}

pub async fn checkout_setup(engine: &Engine, input: CardSetup) -> AppResult<CheckoutStarted> {
    check_url("success_url", &input.success_url)?;
    check_url("cancel_url", &input.cancel_url)?;
    let client = stripe_client(engine, &input.workspace).await?;
    let link = ensure_stripe_customer(engine, &client, &input.workspace, &input.customer).await?;
    let key = format!(
        "tollgate:{}:{}:{}",
        input.workspace,
        input.customer,
        new_id("checkout")
    );
    let session = client
        .checkout_setup(&CheckoutSetup {
            idempotency_key: &key,
            customer: &input.customer,
            stripe_customer: &link.provider_customer,
            success_url: &input.success_url,
            cancel_url: &input.cancel_url,
        })
        .await?;
    let url = session.url.ok_or_else(|| {
        Error::from(crate::providers::ProviderError::Unreadable {
            provider: stripe::NAME,
            detail: format!("checkout session {} has no url", session.id),
        })
    })?;
    Ok(CheckoutStarted {
        session: session.id,
        url,
        stripe_customer: link.provider_customer,
    })
}

/// A Billing Portal session for a customer that has a Stripe customer: its URL.
pub async fn portal(
    engine: &Engine,
    workspace: &str,
    customer: &str,
    return_url: &str,
) -> AppResult<String> {
    check_url("return_url", return_url)?;
    let client = stripe_client(engine, workspace).await?;
    let link = stripe_link(engine, workspace, customer)
        .await?
        .ok_or_else(|| {
            Error::conflict(
                Code::NoPaymentMethod,
                format!(
                    "customer {customer:?} has no Stripe customer yet: start a card setup first"
                ),
            )
        })?;
    let key = format!("tollgate:{workspace}:{customer}:{}", new_id("portal"));
    Ok(client
        .portal_session(&link.provider_customer, return_url, &key)
        .await?
        .url)
}
