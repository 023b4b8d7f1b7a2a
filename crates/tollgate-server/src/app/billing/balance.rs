//! A customer's balance: what credit notes credited to it, less what invoices used, with its
//! movements. Invoices use it after taxes and before prepaid credit (docs/INVOICES.md).

use tollgate_core::ids::{CustomerId, WorkspaceId};
use tollgate_core::money::Currency;
use tollgate_store::billing::BalanceEntryRecord;

use super::{current_catalog, existing_customer};
use crate::engine::Engine;
use crate::error::{AppResult, Error};

/// The balance and its ledger.
#[derive(Debug, Clone)]
pub struct CustomerBalance {
    pub minor: i64,
    /// The currency of its movements; the catalog's when it has none yet.
    pub currency: Currency,
    /// Oldest first.
    pub movements: Vec<BalanceEntryRecord>,
}

/// The customer's balance and its movements.
pub async fn customer_balance(
    engine: &Engine,
    workspace: &str,
    customer: &str,
) -> AppResult<CustomerBalance> {
    existing_customer(engine, workspace, customer).await?;
    let (ws, cus) = (WorkspaceId::from(workspace), CustomerId::from(customer));
    let store = engine.store();
    let minor = store.customer_balance(&ws, &cus).await?;
    let movements = store.balance_entries(&ws, &cus).await?;
    let currency = match movements.first() {
        Some(entry) => entry.currency.parse().map_err(Error::internal)?,
        None => crate::billing::profiles::customer_profile(store.as_ref(), workspace, customer)
            .await?
            .currency(&current_catalog(engine, workspace).await?.catalog)?,
    };
    Ok(CustomerBalance {
        minor,
        currency,
        movements,
    })
}
