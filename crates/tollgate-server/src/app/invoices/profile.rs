//! Billing profiles: a customer's (the buyer on its invoices and how it is taxed) and the
//! workspace's (the seller, its terms and numbering).

use tollgate_core::code::Code;
use tollgate_core::ids::{CustomerId, WorkspaceId};

use crate::billing::profiles::{CustomerProfile, SellerProfile, customer_profile, seller_profile};
use crate::engine::Engine;
use crate::error::{AppResult, Error};

#[derive(Debug, Clone)]
pub struct SetCustomerProfile {
    pub workspace: String,
    pub customer: String,
    pub profile: CustomerProfile,
}

/// Replaces the customer's billing profile. Tax rates must exist in the current catalog.
pub async fn set_customer_profile(
    engine: &Engine,
    input: SetCustomerProfile,
) -> AppResult<CustomerProfile> {
    let SetCustomerProfile {
        workspace,
        customer,
        profile,
    } = input;
    let ws = WorkspaceId::from(&workspace);
    let cus = CustomerId::from(&customer);
    existing(engine, &ws, &cus).await?;
    let catalog = engine.latest_catalog(&workspace).await?;
    profile.check(catalog.as_deref().map(|c| &c.catalog))?;
    // A customer keeps the currency it was invoiced in.
    if let Some(catalog) = catalog.as_deref() {
        let to = profile.currency(&catalog.catalog)?;
        let invoiced = engine.store().list_invoices(&ws, &cus).await?;
        if let Some(other) = invoiced.iter().find(|i| i.currency != to.code()) {
            return Err(Error::conflict(
                Code::CustomerCurrencyLocked,
                format!(
                    "the customer is invoiced in {} (invoice {}); its currency cannot become {}",
                    other.currency,
                    other.id,
                    to.code()
                ),
            ));
        }
    }
    let doc = serde_json::to_value(&profile).map_err(Error::internal)?;
    engine
        .store()
        .set_customer_profile(&ws, &cus, &doc, engine.now())
        .await?;
    Ok(profile)
}

/// The customer's billing profile (the default one when none was set).
pub async fn get_customer_profile(
    engine: &Engine,
    workspace: &str,
    customer: &str,
) -> AppResult<CustomerProfile> {
    existing(
        engine,
        &WorkspaceId::from(workspace),
        &CustomerId::from(customer),
    )
    .await?;
    customer_profile(engine.store().as_ref(), workspace, customer).await
}

async fn existing(engine: &Engine, ws: &WorkspaceId, cus: &CustomerId) -> AppResult<()> {
    engine
        .store()
        .get_customer(ws, cus)
        .await?
        .ok_or_else(|| Error::not_found("customer", cus.as_str()))
        .map(|_| ())
}

/// Replaces the workspace's seller profile.
pub async fn set_seller_profile(
    engine: &Engine,
    workspace: &str,
    profile: SellerProfile,
) -> AppResult<SellerProfile> {
    profile.check()?;
    let doc = serde_json::to_value(&profile).map_err(Error::internal)?;
    engine
        .store()
        .set_seller_profile(&WorkspaceId::from(workspace), &doc, engine.now())
        .await?;
    Ok(profile)
}

/// The workspace's seller profile; not found when none was set.
pub async fn get_seller_profile(engine: &Engine, workspace: &str) -> AppResult<SellerProfile> {
    seller_profile(engine.store().as_ref(), workspace)
        .await?
        .ok_or_else(|| Error::not_found("billing profile", workspace))
}
