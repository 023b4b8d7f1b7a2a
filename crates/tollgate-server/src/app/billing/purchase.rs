//! Buy a one-time product: an invoice of its own, finalized at once, idempotent by key.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use tollgate_core::pricing::{self, InvoiceRequest};
use tollgate_store::billing::{InvoiceEffects, InvoiceInsert, InvoiceRecord};

use super::{current_catalog, existing_customer};
use crate::billing::profiles::{customer_profile, invoice_parties};
use crate::engine::Engine;
use crate::error::{AppResult, Error};
use crate::ids::new_id;

#[derive(Debug, Clone)]
pub struct Purchase {
    pub workspace: String,
    pub customer: String,
    pub product: String,
    pub quantity: u32,
    /// The caller's idempotency key: the same key buys once.
    pub idempotency_key: Option<String>,
}

/// The purchase's invoice, and whether this call created it (`false`: an earlier call with the
/// same idempotency key did).
pub struct Purchased {
    pub invoice: InvoiceRecord,
    pub created: bool,
}

pub async fn purchase(engine: &Engine, input: Purchase) -> AppResult<Purchased> {
    let Purchase {
        workspace,
        customer,
        product,
        quantity,
        idempotency_key,
    } = input;
    let record = existing_customer(engine, &workspace, &customer).await?;
    let now = engine
        .now_for(&workspace, record.test_clock.as_deref())
        .await?;
    let catalog = current_catalog(engine, &workspace).await?;
    let profile = customer_profile(engine.store().as_ref(), &workspace, &customer).await?;
    // A product is bought in the customer's currency, at its amount there.
    let currency = profile.currency(&catalog.catalog)?;
    if catalog.catalog.products.contains_key(&product)
        && !catalog.catalog.product_priced_in(&product, currency)
    {
        return Err(Error::conflict(
            tollgate_core::code::Code::ProductNotInCurrency,
            format!(
                "product {product:?} has no amount in {}, the customer's currency",
                currency.code()
            ),
        ));
    }
    let priced = catalog.catalog.in_currency(currency);
    let request = InvoiceRequest {
        products: BTreeMap::from([(product, Decimal::from(quantity))]),
        tax: profile.tax(),
        parties: Some(
            invoice_parties(engine.store().as_ref(), &workspace, &customer, &profile).await?,
        ),
        ..Default::default()
    };
    let draft = pricing::assemble(&priced, &request)
        .map_err(|e| Error::invalid(e.code(), e.to_string()))?;
    let key = match idempotency_key {
        Some(k) => format!("purchase:{customer}:{k}"),
        None => format!("purchase:{}", new_id("p")),
    };
    let invoice =
        crate::billing::invoices::record((&workspace, &customer, None), key, &draft, now)?;
    let effects = InvoiceEffects::default();
    Ok(
        match engine.store().insert_invoice(&invoice, &effects).await? {
            InvoiceInsert::Created(invoice) => Purchased {
                invoice,
                created: true,
            },
            InvoiceInsert::Exists(invoice) => Purchased {
                invoice,
                created: false,
            },
        },
    )
}
