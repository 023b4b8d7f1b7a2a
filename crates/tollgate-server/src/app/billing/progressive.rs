//! Progressive billing (docs/INVOICES.md): as soon as a subscription's usage of the current
//! period reaches a threshold of its plan's `progressive_billing`, the usage so far is invoiced,
//! less what earlier invoices of the period billed. Run by the scheduler (a job the engine
//! enqueues after usage is counted, `jobs::handlers`); never by an API call.

use tollgate_core::ids::{CustomerId, WorkspaceId};
use tollgate_core::money::Money;
use tollgate_core::pricing::{
    BillingPeriod, InvoiceRequest, assemble, progressive_charges, total_of, usage_amounts,
};
use tollgate_store::billing::{InvoiceEffects, InvoiceInsert, InvoiceRecord};
use tollgate_store::{SubscriptionRecord, SubscriptionStatus};

use crate::billing::invoices::{progressive_billed, progressive_key, record, terms, usage_of};
use crate::engine::Engine;
use crate::error::{AppResult, Error};

/// Invoices the subscription's usage so far if it reached a threshold not yet invoiced this
/// period. `None`: nothing to invoice (no progressive billing, not active, no new threshold).
/// The invoice's key names the period and the threshold, so a re-run invoices nothing twice.
pub async fn bill_progressive(
    engine: &Engine,
    sub: &SubscriptionRecord,
) -> AppResult<Option<InvoiceRecord>> {
    let compiled = engine.catalog(&sub.workspace, sub.catalog_version).await?;
    let store = engine.store();
    // In the customer's currency (docs/CATALOG.md, "Prices in several currencies").
    let profile =
        crate::billing::profiles::customer_profile(store.as_ref(), &sub.workspace, &sub.customer)
            .await?;
    let priced = compiled
        .catalog
        .in_currency(profile.currency(&compiled.catalog)?);
    let catalog: &tollgate_core::catalog::Catalog = &priced;
    let Some(plan) = catalog.plans.get(&sub.plan) else {
        return Ok(None);
    };
    let Some(progressive) = &plan.progressive_billing else {
        return Ok(None);
    };
    let now =
        crate::app::subscriptions::customer_now(engine, &sub.workspace, &sub.customer).await?;
    let terms = terms(sub, catalog);
    if sub.status != SubscriptionStatus::Active
        || !crate::app::subscriptions::is_live(sub, now)
        || terms.activation() > now
    {
        return Ok(None);
    }
    let period = terms.paid_period_at(now);
    let usage = usage_of(store.as_ref(), sub, catalog, period).await?;
    let to_date = usage_amounts(catalog, plan, &usage).map_err(invalid)?;
    let Some(threshold) = progressive.reached(total_of(&to_date).map_err(invalid)?) else {
        return Ok(None);
    };
    let (billed, highest) = progressive_billed(store.as_ref(), sub, period.start).await?;
    if highest.is_some_and(|h| h >= threshold) {
        return Ok(None);
    }
    let billing_period =
        BillingPeriod::new(period.start, period.end).map_err(|e| Error::internal(e.to_string()))?;
    let charges =
        progressive_charges(catalog, &to_date, &billed, &billing_period).map_err(invalid)?;
    if charges.is_empty() {
        return Ok(None);
    }
    let (workspace, customer) = (
        WorkspaceId::from(&sub.workspace),
        CustomerId::from(&sub.customer),
    );
    let credit = store.credit_balance(&workspace, &customer).await?;
    let balance = store.customer_balance(&workspace, &customer).await?;
    let request = InvoiceRequest {
        plan: Some(sub.plan.clone()),
        adjustments: charges,
        credit_balance: (credit > 0).then(|| Money::from_minor(credit, catalog.currency)),
        customer_balance: (balance > 0).then(|| Money::from_minor(balance, catalog.currency)),
        tax: profile.tax(),
        parties: Some(
            crate::billing::profiles::invoice_parties(
                store.as_ref(),
                &sub.workspace,
                &sub.customer,
                &profile,
            )
            .await?,
        ),
        ..InvoiceRequest::default()
    };
    let draft = assemble(catalog, &request).map_err(invalid)?;
    let mut invoice = record(
        (&sub.workspace, &sub.customer, Some(&sub.id)),
        progressive_key(&sub.id, period.start, threshold),
        &draft,
        now,
    )?;
    // The period it bills the usage of, so far.
    invoice.period_start = Some(period.start);
    invoice.period_end = Some(period.end);
    let effects = InvoiceEffects {
        credit_used_minor: draft.credit_applied.minor(),
        balance_used_minor: draft.balance_applied.minor(),
        events: vec![crate::app::bill_run::finalized(engine, &invoice)],
        ..InvoiceEffects::default()
    };
    match store.insert_invoice(&invoice, &effects).await? {
        InvoiceInsert::Created(created) => {
            metrics::counter!("tollgate_progressive_invoices_total").increment(1);
            crate::app::payments::enqueue_collection(engine, &created).await?;
            Ok(Some(created))
        }
        InvoiceInsert::Exists(_) => Ok(None),
    }
}

fn invalid(e: tollgate_core::pricing::PricingError) -> Error {
    Error::invalid(e.code(), e.to_string())
}
