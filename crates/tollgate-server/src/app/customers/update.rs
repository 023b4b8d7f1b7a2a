//! Update a customer's fields (`PATCH /v1/customers/{id}`): only the fields given change; a
//! field given as `null` is cleared. Each value is checked by `profile`'s rules first, so a
//! bad patch changes nothing.

use tollgate_core::ids::{CustomerId, WorkspaceId};
use tollgate_store::CustomerRecord;

use super::profile::{
    Address, Metadata, TaxId, address_json, check_address, check_email, check_metadata, check_name,
    check_tax_ids, ensure_not_archived, tax_ids_json,
};
use crate::engine::Engine;
use crate::error::{AppResult, Error};

/// What a patch changes: `None` leaves a field as it is; `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct CustomerPatch {
    pub name: Option<Option<String>>,
    pub email: Option<Option<String>>,
    pub address: Option<Option<Address>>,
    /// Replaces the whole list.
    pub tax_ids: Option<Vec<TaxId>>,
    /// Replaces the whole object.
    pub metadata: Option<Metadata>,
    /// Whether a payment method is on file (until payment providers set it themselves).
    pub has_payment_method: Option<bool>,
}

#[derive(Debug, Clone)]
pub struct UpdateCustomer {
    pub workspace: String,
    pub customer: String,
    pub patch: CustomerPatch,
}

/// Checks every value of the patch (nothing is written if one is wrong).
pub fn check_patch(patch: &CustomerPatch) -> AppResult<()> {
    if let Some(Some(name)) = &patch.name {
        check_name(name)?;
    }
    if let Some(Some(email)) = &patch.email {
        check_email(email)?;
    }
    if let Some(Some(address)) = &patch.address {
        check_address(address)?;
    }
    if let Some(tax_ids) = &patch.tax_ids {
        check_tax_ids(tax_ids)?;
    }
    if let Some(metadata) = &patch.metadata {
        check_metadata(metadata)?;
    }
    Ok(())
}

pub async fn update(engine: &Engine, input: UpdateCustomer) -> AppResult<CustomerRecord> {
    let UpdateCustomer {
        workspace,
        customer,
        patch,
    } = input;
    check_patch(&patch)?;
    let store = engine.store();
    let mut record = store
        .get_customer(&WorkspaceId::from(&workspace), &CustomerId::from(&customer))
        .await?
        .ok_or_else(|| Error::not_found("customer", &customer))?;
    ensure_not_archived(&record)?;
    if let Some(name) = patch.name {
        record.name = name;
    }
    if let Some(email) = patch.email {
        record.email = email;
    }
    if let Some(address) = patch.address {
        record.address = address_json(address.as_ref())?;
    }
    if let Some(tax_ids) = patch.tax_ids {
        record.tax_ids = tax_ids_json(&tax_ids)?;
    }
    if let Some(metadata) = patch.metadata {
        record.metadata = serde_json::Value::Object(metadata);
    }
    if let Some(has) = patch.has_payment_method {
        record.has_payment_method = has;
    }
    store.update_customer(&record).await?;
    // The payment method decides where a trial ends: the engine's copy follows at once.
    engine.refresh_customer(&workspace, &customer).await?;
    Ok(record)
}
