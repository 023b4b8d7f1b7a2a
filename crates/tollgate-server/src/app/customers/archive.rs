//! Archive a customer (`DELETE /v1/customers/{id}`): Tollgate never deletes a customer that may
//! have invoices, usage or credit notes, it archives it. In one store transaction its keys are
//! revoked and its live subscriptions are canceled at once (core's `cancel_now`, ending now on
//! its clock); from then on its checks are denied with `customer_archived`, its events refused
//! with the same code, and changes to it (patch, new keys, new subscriptions) refused. What it
//! had (invoices, usage, credit notes, keys) stays readable. Archiving twice changes nothing.

use tollgate_core::ids::{CustomerId, WorkspaceId};
use tollgate_core::lifecycle::{SubscriptionUpdate, is_live, subscription};
use tollgate_store::CustomerRecord;

use crate::app::subscriptions::customer_now;
use crate::engine::Engine;
use crate::error::{AppResult, Error};

pub async fn archive(
    engine: &Engine,
    workspace: &str,
    customer: &str,
) -> AppResult<CustomerRecord> {
    let store = engine.store();
    let ws = WorkspaceId::from(workspace);
    let id = CustomerId::from(customer);
    let record = store
        .get_customer(&ws, &id)
        .await?
        .ok_or_else(|| Error::not_found("customer", customer))?;
    if record.archived_at.is_some() {
        return Ok(record);
    }
    let now = customer_now(engine, workspace, customer).await?;
    let mut ended = Vec::new();
    for mut sub in store.list_subscriptions(&ws, &id).await? {
        if !is_live(sub.status, sub.ends_at, now) {
            continue;
        }
        sub.status = subscription::apply(sub.status, SubscriptionUpdate::CancelNow)
            .map_err(|e| Error::conflict(e.code(), e.to_string()))?;
        sub.canceled_at = sub.canceled_at.or(Some(now));
        sub.ends_at = Some(now);
        ended.push(sub);
    }
    let revoked = store.archive_customer(&ws, &id, now, &ended).await?;
    for key in &revoked {
        engine.forget_key(&key.secret_hash);
    }
    engine.refresh_customer(workspace, customer).await?;
    store
        .get_customer(&ws, &id)
        .await?
        .ok_or_else(|| Error::not_found("customer", customer))
}
