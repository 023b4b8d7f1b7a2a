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
    let canceled = crate::app::outbox::event(
        engine,
        &workspace,
        Some(&customer),
        crate::app::outbox::types::SUBSCRIPTION_CANCELED,
        now,
        super::event_data(&sub),
    );
    engine
        .store()
        .update_subscription_with_events(&sub, &[canceled])
        .await?;
    engine.refresh_customer(&workspace, &customer).await?;
    crate::app::jobs::schedule_subscription(engine, &sub, now).await?;
    Ok(view(sub, &catalog, now))
}
