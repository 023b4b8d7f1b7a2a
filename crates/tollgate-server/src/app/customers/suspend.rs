//! Suspend or reinstate a customer: its keys are refused (or accepted again) from the next
//! request on, on every node.

use tollgate_core::ids::{CustomerId, WorkspaceId};
use tollgate_store::CustomerRecord;

use crate::engine::Engine;
use crate::error::{AppResult, Error};

pub async fn set_suspended(
    engine: &Engine,
    workspace: &str,
    customer: &str,
    suspended: bool,
) -> AppResult<CustomerRecord> {
    let store = engine.store();
    let mut record = store
        .get_customer(&WorkspaceId::from(workspace), &CustomerId::from(customer))
        .await?
        .ok_or_else(|| Error::not_found("customer", customer))?;
    super::profile::ensure_not_archived(&record)?;
    if record.suspended == suspended {
        return Ok(record);
    }
    record.suspended = suspended;
    let now = engine
        .now_for(workspace, record.test_clock.as_deref())
        .await?;
    let event_type = if suspended {
        crate::app::outbox::types::CUSTOMER_SUSPENDED
    } else {
        crate::app::outbox::types::CUSTOMER_REINSTATED
    };
    let announced = crate::app::outbox::event(
        engine,
        workspace,
        Some(customer),
        event_type,
        now,
        serde_json::json!({ "customer": customer }),
    );
    store
        .update_customer_with_events(&record, &[announced])
        .await?;
    engine.refresh_customer(workspace, customer).await?;
    Ok(record)
}
