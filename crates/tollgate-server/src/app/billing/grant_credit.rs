//! Grant prepaid credit: invoices use it before anything is charged.

use rust_decimal::Decimal;
use tollgate_core::code::Code;
use tollgate_core::money::Money;
use tollgate_store::billing::CreditEntryRecord;

use super::{current_catalog, existing_customer};
use crate::engine::Engine;
use crate::error::{AppResult, Error};
use crate::ids::new_id;

#[derive(Debug, Clone)]
pub struct GrantCredit {
    pub workspace: String,
    pub customer: String,
    /// In major units of the customer's currency; whole minor units only.
    pub amount: Decimal,
    pub reason: Option<String>,
}

/// Adds the credit to the customer's ledger; answers the stored entry.
pub async fn grant_credit(engine: &Engine, input: GrantCredit) -> AppResult<CreditEntryRecord> {
    let GrantCredit {
        workspace,
        customer,
        amount,
        reason,
    } = input;
    if amount <= Decimal::ZERO {
        return Err(Error::invalid(
            Code::InvalidAmount,
            "`amount` must be positive",
        ));
    }
    existing_customer(engine, &workspace, &customer).await?;
    let catalog = current_catalog(engine, &workspace).await?;
    // In the customer's currency, which its invoices are in.
    let profile =
        crate::billing::profiles::customer_profile(engine.store().as_ref(), &workspace, &customer)
            .await?;
    let amount = Money::exact(amount, profile.currency(&catalog.catalog)?)
        .map_err(|e| Error::invalid(e.code(), format!("`amount`: {e}")))?;
    let created_at = crate::app::subscriptions::customer_now(engine, &workspace, &customer).await?;
    let entry = CreditEntryRecord {
        workspace,
        id: new_id("cr"),
        customer,
        amount_minor: amount.minor(),
        currency: amount.currency().to_string(),
        reason: reason.unwrap_or_else(|| "prepaid credit".into()),
        invoice: None,
        created_at,
    };
    engine.store().add_credit_entry(&entry).await?;
    Ok(entry)
}
