//! What each kind of job does, through the use cases of `app/`.

use jiff::Timestamp;
use serde_json::{Value, json};
use tollgate_core::code::Code;
use tollgate_core::ids::WorkspaceId;
use tollgate_store::jobs::JobRecord;
use tollgate_store::outbox::OutboxEvent;
use tollgate_store::{SubscriptionRecord, SubscriptionStatus};

use crate::app::jobs::{kinds, schedule_subscription};
use crate::app::outbox::{self, types};
use crate::app::subscriptions::{customer_now, event_data};
use crate::engine::Engine;
use crate::error::{AppResult, Error};

/// What a job that succeeded leaves: its result, and the events committed with its completion.
pub(crate) struct Done {
    pub result: Value,
    pub events: Vec<OutboxEvent>,
}

fn done(result: Value) -> Done {
    Done {
        result,
        events: Vec::new(),
    }
}

pub(crate) async fn handle(engine: &Engine, job: &JobRecord) -> AppResult<Done> {
    // Payment jobs name an invoice (`app::payments`: collection and dunning retries).
    if crate::app::payments::kinds::ALL.contains(&job.kind.as_str()) {
        let (result, events) = crate::app::payments::run_job(engine, job).await?;
        return Ok(Done { result, events });
    }
    let Some(id) = job.payload.get("subscription").and_then(Value::as_str) else {
        return Err(Error::invalid(
            Code::ValidationFailed,
            format!("job {} has no `subscription` in its payload", job.id),
        ));
    };
    let Some(sub) = engine
        .store()
        .get_subscription(&WorkspaceId::from(&job.workspace), id)
        .await?
    else {
        return Ok(done(json!({"skipped": "the subscription does not exist"})));
    };
    match job.kind.as_str() {
        kinds::TRIAL_REMINDER => remind(engine, sub, job.due_at).await,
        kinds::TRIAL_END | kinds::PERIOD_END => bill(engine, sub).await,
        kinds::PROGRESSIVE_CHECK => {
            let invoice = crate::app::billing::bill_progressive(engine, &sub).await?;
            Ok(done(json!({"invoice": invoice.map(|i| i.id)})))
        }
        other => Err(Error::invalid(
            Code::ValidationFailed,
            format!("no handler for jobs of kind {other:?}"),
        )),
    }
}

/// `subscription.trial_will_end`, written with the job's completion (so once), while the
/// trial still runs.
async fn remind(engine: &Engine, sub: SubscriptionRecord, due_at: Timestamp) -> AppResult<Done> {
    let now = customer_now(engine, &sub.workspace, &sub.customer).await?;
    let trialing = sub.status == SubscriptionStatus::Trialing;
    match sub.trial_end {
        Some(end) if trialing && end > now => {
            let mut data = event_data(&sub);
            if let Some(fields) = data.as_object_mut() {
                fields.insert("due_at".into(), json!(due_at));
            }
            let event = outbox::event(
                engine,
                &sub.workspace,
                Some(&sub.customer),
                types::SUBSCRIPTION_TRIAL_WILL_END,
                now,
                data,
            );
            Ok(Done {
                result: json!({"reminded": true, "trial_end": end}),
                events: vec![event],
            })
        }
        _ => Ok(done(json!({"skipped": "the trial is not running"}))),
    }
}

/// The subscription billed up to now as the bill run bills it (trial end, renewal invoices, a
/// scheduled downgrade), then its next job enqueued.
async fn bill(engine: &Engine, sub: SubscriptionRecord) -> AppResult<Done> {
    let (workspace, id) = (sub.workspace.clone(), sub.id.clone());
    let report = crate::app::bill_run::bill_one(engine, sub).await?;
    if let Some(error) = report.errors.first() {
        return Err(Error::internal(format!(
            "billing {id}: {}: {}",
            error.code, error.message
        )));
    }
    let sub = engine
        .store()
        .get_subscription(&WorkspaceId::from(&workspace), &id)
        .await?
        .ok_or_else(|| Error::not_found("subscription", &id))?;
    let now = customer_now(engine, &workspace, &sub.customer).await?;
    // Licenses follow the new term (and a plan changed at the period end).
    crate::app::licenses::renew(engine, &sub, now).await?;
    let next = schedule_subscription(engine, &sub, now).await?;
    Ok(done(json!({
        "invoices_created": report.created,
        "trials_ended": report.trials_ended,
        "plan": sub.plan,
        "status": sub.status.as_str(),
        "next": next.iter().map(|j| json!({"kind": j.kind, "due_at": j.due_at})).collect::<Vec<_>>(),
    })))
}
