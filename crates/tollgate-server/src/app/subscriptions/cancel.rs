//! Cancel a subscription: at the end of the current period, or at once.

use tollgate_store::SubscriptionStatus;

use super::{SubscriptionView, customer_now, owned_subscription, view};
use crate::engine::Engine;
use crate::error::AppResult;

#[derive(Debug, Clone)]
pub struct Cancel {
    pub workspace: String,
    pub customer: String,
    pub subscription: String,
    /// End now instead of at the end of the current period.
    pub immediately: bool,
}

pub async fn cancel(engine: &Engine, input: Cancel) -> AppResult<SubscriptionView> {
    let Cancel {
        workspace,
        customer,
        subscription,
        immediately,
    } = input;
    let now = customer_now(engine, &workspace, &customer).await?;
    let mut sub = owned_subscription(engine, &workspace, &customer, &subscription).await?;
    let catalog = engine.catalog(&workspace, sub.catalog_version).await?;
    sub.status = SubscriptionStatus::Canceled;
    sub.canceled_at = Some(now);
    let period_end = crate::billing::invoices::terms(&sub, &catalog.catalog)
        .period_at(now)
        .end;
    sub.ends_at = Some(if immediately { now } else { period_end });
    engine.store().update_subscription(&sub).await?;
    engine.refresh_customer(&workspace, &customer).await?;
    Ok(view(sub, &catalog, now))
}
