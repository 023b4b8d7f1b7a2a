//! Cases for the outbox (events written with the change they announce) and the scheduler's jobs
//! (enqueued once per key, claimed once, retried, finished only by their worker).

use crate::Harness;
use crate::support::*;
use jiff::SignedDuration;
use serde_json::json;
use std::collections::HashSet;
use std::sync::Arc;
use tollgate_core::ids::WorkspaceId;
use tollgate_store::jobs::{JobFilter, JobStatus, Lease, NewJob};
use tollgate_store::outbox::{OutboxEvent, OutboxFilter};
use tollgate_store::*;

fn domain_event(ws: &str, customer: &str, kind: &str, n: u32) -> OutboxEvent {
    OutboxEvent {
        workspace: ws.to_owned(),
        id: fresh("evt"),
        customer: Some(customer.to_owned()),
        event_type: kind.to_owned(),
        occurred_at: ts("2026-11-09T08:00:00Z"),
        data: json!({"n": n}),
        created_at: ts("2026-01-01T00:00:00Z"),
        delivered_at: None,
        delivery_attempts: 0,
    }
}

fn all(ws: &str) -> (WorkspaceId, OutboxFilter) {
    (
        WorkspaceId::from(ws),
        OutboxFilter {
            limit: 100,
            ..Default::default()
        },
    )
}

pub(crate) async fn outbox_events_commit_with_their_change(h: &Harness) {
    let s = h.store.as_ref();
    h.customer(&h.ws, "cus_a").await;
    h.customer(&h.ws, "cus_b").await;
    let sub = subscription(&h.ws, "sub_1", "cus_a", PERIOD);
    let created = domain_event(&h.ws, "cus_a", "subscription.created", 1);
    s.create_subscription_with_events(&sub, std::slice::from_ref(&created))
        .await
        .unwrap();
    // A write that fails writes none of its events.
    let again = domain_event(&h.ws, "cus_a", "subscription.created", 2);
    assert_exists(
        s.create_subscription_with_events(&sub, &[again]).await,
        "subscription",
        "sub_1",
    );
    let missing = subscription(&h.ws, "sub_9", "cus_a", PERIOD);
    let lost = domain_event(&h.ws, "cus_a", "subscription.updated", 3);
    assert_not_found(
        s.update_subscription_with_events(&missing, &[lost]).await,
        "subscription",
    );
    let updated = domain_event(&h.ws, "cus_a", "subscription.updated", 4);
    let other = domain_event(&h.ws, "cus_b", "subscription.trial_will_end", 5);
    s.update_subscription_with_events(&sub, std::slice::from_ref(&updated))
        .await
        .unwrap();
    s.append_events(&WorkspaceId::from(&h.ws), std::slice::from_ref(&other))
        .await
        .unwrap();

    let (ws, f) = all(&h.ws);
    let listed = s.list_domain_events(&ws, &f).await.unwrap();
    assert_eq!(
        listed,
        vec![created.clone(), updated.clone(), other.clone()],
        "oldest first"
    );
    let by_type = OutboxFilter {
        event_type: Some("subscription.updated".into()),
        ..f.clone()
    };
    assert_eq!(
        s.list_domain_events(&ws, &by_type).await.unwrap(),
        vec![updated.clone()]
    );
    let by_customer = OutboxFilter {
        customer: Some("cus_b".into()),
        ..f.clone()
    };
    assert_eq!(
        s.list_domain_events(&ws, &by_customer).await.unwrap(),
        vec![other.clone()]
    );
    let page = OutboxFilter {
        starting_after: Some(created.id.clone()),
        limit: 1,
        ..f.clone()
    };
    assert_eq!(
        s.list_domain_events(&ws, &page).await.unwrap(),
        vec![updated]
    );
    // An invoice's events are written when it is created, not when its key finds it again.
    let finalized = domain_event(&h.ws, "cus_a", "invoice.finalized", 6);
    let effects = billing::InvoiceEffects {
        balance_used_minor: 0,
        events: vec![finalized.clone()],
        ..Default::default()
    };
    s.insert_invoice(&invoice(&h.ws, "inv_1", "cus_a", "k1"), &effects)
        .await
        .unwrap();
    let twice = billing::InvoiceEffects {
        balance_used_minor: 0,
        events: vec![domain_event(&h.ws, "cus_a", "invoice.finalized", 7)],
        ..Default::default()
    };
    let again = s
        .insert_invoice(&invoice(&h.ws, "inv_2", "cus_a", "k1"), &twice)
        .await
        .unwrap();
    assert!(matches!(again, billing::InvoiceInsert::Exists(_)));
    let invoices = OutboxFilter {
        event_type: Some("invoice.finalized".into()),
        ..f.clone()
    };
    assert_eq!(
        s.list_domain_events(&ws, &invoices).await.unwrap(),
        vec![finalized]
    );
    // Another workspace sees none of them.
    let (other_ws, f) = all(&h.other_workspace().await);
    assert_eq!(s.list_domain_events(&other_ws, &f).await.unwrap(), vec![]);
}

fn job(ws: &str, key: &str, due: &str) -> NewJob {
    NewJob {
        workspace: ws.to_owned(),
        id: fresh("job"),
        kind: "test.kind".into(),
        key: key.to_owned(),
        customer: Some("cus_a".into()),
        test_clock: None,
        due_at: ts(due),
        payload: json!({"key": key}),
        max_attempts: 2,
        created_at: ts("2026-01-01T00:00:00Z"),
    }
}

fn lease(worker: &str, now: &str) -> Lease {
    let now = ts(now);
    Lease {
        worker: worker.to_owned(),
        now,
        until: now + SignedDuration::from_secs(60),
    }
}

/// The claims of `lease` that belong to workspace `ws` (the claim spans every workspace, and
/// other cases run at the same time on PostgreSQL).
async fn claim_in(h: &Harness, ws: &str, lease: &Lease) -> Vec<jobs::JobRecord> {
    let claimed = h.store.claim_due_jobs(lease, 1000).await.unwrap();
    claimed.into_iter().filter(|j| j.workspace == ws).collect()
}

pub(crate) async fn jobs_are_enqueued_once_claimed_in_due_order_and_retried(h: &Harness) {
    let s = h.store.as_ref();
    let ws = WorkspaceId::from(&h.ws);
    // Claims span workspaces, and PostgreSQL cases share one database: these jobs are due in
    // 2200, so no server on the wall clock claims them, and each phase below claims only up to
    // its own "now" (the concurrent phase, in 2100, takes nothing of this one).
    let (late, made) = s
        .enqueue_job(&job(&h.ws, "late", "2200-01-03T00:00:00Z"))
        .await
        .unwrap();
    assert!(made);
    let (again, made) = s
        .enqueue_job(&job(&h.ws, "late", "2200-01-09T00:00:00Z"))
        .await
        .unwrap();
    assert!(!made, "the same key makes one job");
    assert_eq!(again, late);
    let (early, _) = s
        .enqueue_job(&job(&h.ws, "early", "2200-01-02T00:00:00Z"))
        .await
        .unwrap();
    let (future, _) = s
        .enqueue_job(&job(&h.ws, "future", "2200-02-01T00:00:00Z"))
        .await
        .unwrap();
    let on_clock = NewJob {
        test_clock: Some("clock_1".into()),
        ..job(&h.ws, "clock", "2200-01-01T00:00:00Z")
    };
    let (clocked, _) = s.enqueue_job(&on_clock).await.unwrap();
    assert_eq!(late.status, JobStatus::Scheduled);

    // Due ones only, earliest first; the test clock's job is not the wall clock's to run.
    let claimed = claim_in(h, &h.ws, &lease("w1", "2200-01-05T00:00:00Z")).await;
    let ids: Vec<&str> = claimed.iter().map(|j| j.id.as_str()).collect();
    assert_eq!(ids, vec![early.id.as_str(), late.id.as_str()]);
    assert!(claimed.iter().all(|j| j.status == JobStatus::Running
        && j.attempts == 1
        && j.locked_by.as_deref() == Some("w1")));
    // Claimed: nobody else gets them while the lease runs.
    assert_eq!(
        claim_in(h, &h.ws, &lease("w2", "2200-01-05T00:00:30Z")).await,
        vec![]
    );

    // Finished only by its worker, with its events in the same transaction.
    let done = domain_event(&h.ws, "cus_a", "test.done", 1);
    let stranger = s
        .complete_job(
            &ws,
            &early.id,
            "w2",
            &json!({}),
            std::slice::from_ref(&done),
            ts("2200-01-05T00:00:01Z"),
        )
        .await;
    assert!(
        matches!(stranger, Err(StoreError::Conflict(_))),
        "{stranger:?}"
    );
    s.complete_job(
        &ws,
        &early.id,
        "w1",
        &json!({"ok": true}),
        std::slice::from_ref(&done),
        ts("2200-01-05T00:00:01Z"),
    )
    .await
    .unwrap();
    let (_, f) = all(&h.ws);
    assert_eq!(s.list_domain_events(&ws, &f).await.unwrap(), vec![done]);
    let finished = s.get_job(&ws, &early.id).await.unwrap().unwrap();
    assert_eq!(finished.status, JobStatus::Succeeded);
    assert_eq!(finished.result, Some(json!({"ok": true})));

    // A failure: back to scheduled after the backoff, then failed after the last attempt.
    let retry_at = ts("2200-01-05T00:10:00Z");
    let failed = s
        .fail_job(
            &ws,
            &late.id,
            "w1",
            "boom",
            retry_at,
            ts("2200-01-05T00:00:02Z"),
        )
        .await
        .unwrap();
    assert_eq!(failed.status, JobStatus::Scheduled);
    assert_eq!(failed.last_error.as_deref(), Some("boom"));
    assert_eq!(
        claim_in(h, &h.ws, &lease("w1", "2200-01-05T00:05:00Z")).await,
        vec![],
        "not before its backoff"
    );
    // The worker crashes: its lease runs out and the job is claimed again, its attempt counted.
    let second = claim_in(h, &h.ws, &lease("w1", "2200-01-05T00:10:00Z")).await;
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].attempts, 2);
    assert_eq!(
        claim_in(h, &h.ws, &lease("w2", "2200-01-05T00:20:00Z")).await,
        vec![],
        "a crash after the last attempt is not claimed again"
    );
    let abandoned = s.get_job(&ws, &late.id).await.unwrap().unwrap();
    assert_eq!(abandoned.status, JobStatus::Failed);
    assert!(abandoned.last_error.unwrap().contains("stopped"));

    // Operators: retry a failed job, cancel a scheduled one; other moves are conflicts.
    let retried = s
        .retry_job(&ws, &late.id, ts("2200-01-06T00:00:00Z"))
        .await
        .unwrap();
    assert_eq!(
        (retried.status, retried.attempts),
        (JobStatus::Scheduled, 0)
    );
    assert!(matches!(
        s.retry_job(&ws, &early.id, ts("2200-01-06T00:00:00Z"))
            .await,
        Err(StoreError::Conflict(_))
    ));
    let canceled = s
        .cancel_job(&ws, &future.id, ts("2200-01-06T00:00:00Z"))
        .await
        .unwrap();
    assert_eq!(canceled.status, JobStatus::Canceled);
    assert!(matches!(
        s.cancel_job(&ws, &future.id, ts("2200-01-06T00:00:00Z"))
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        s.cancel_job(&ws, "job_missing", ts("2200-01-06T00:00:00Z"))
            .await,
        Err(StoreError::NotFound { .. })
    ));

    // The test clock's job runs when its clock reaches it, in its workspace only.
    let other = WorkspaceId::from(h.other_workspace().await);
    let none = s
        .claim_clock_job(
            &other,
            "clock_1",
            ts("2201-01-01T00:00:00Z"),
            &lease("w3", "2200-01-06T00:00:00Z"),
        )
        .await
        .unwrap();
    assert_eq!(none, None);
    let mine = s
        .claim_clock_job(
            &ws,
            "clock_1",
            ts("2200-01-01T00:00:00Z"),
            &lease("w3", "2200-01-06T00:00:00Z"),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(mine.id, clocked.id);

    let listed = s
        .list_jobs(
            &ws,
            &JobFilter {
                status: Some(JobStatus::Scheduled),
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        listed.iter().map(|j| j.id.as_str()).collect::<Vec<_>>(),
        vec![late.id.as_str()]
    );
    let page = s
        .list_jobs(
            &ws,
            &JobFilter {
                starting_after: Some(late.id.clone()),
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        page.len(),
        3,
        "early, future and the clock's job come after"
    );

    concurrent_claims_take_each_job_once(h).await;
}

/// Four workers claiming at once take each job exactly once (a phase of the case above, so that
/// no other case claims at the same time).
async fn concurrent_claims_take_each_job_once(h: &Harness) {
    let ws = WorkspaceId::from(&h.ws);
    let mut ids = HashSet::new();
    for n in 0..200 {
        let (j, _) = h
            .store
            .enqueue_job(&job(&h.ws, &format!("many_{n}"), "2100-03-01T00:00:00Z"))
            .await
            .unwrap();
        ids.insert(j.id);
    }
    let mut tasks = Vec::new();
    for w in 0..4 {
        let store = Arc::clone(&h.store);
        let ws_id = h.ws.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let l = lease(&format!("w{w}"), "2100-03-02T00:00:00Z");
                let claimed = store.claim_due_jobs(&l, 7).await.unwrap();
                if claimed.is_empty() {
                    break;
                }
                mine.extend(
                    claimed
                        .into_iter()
                        .filter(|j| j.workspace == ws_id)
                        .map(|j| j.id),
                );
            }
            mine
        }));
    }
    let mut seen = Vec::new();
    for t in tasks {
        seen.extend(t.await.unwrap());
    }
    let unique: HashSet<String> = seen.iter().cloned().collect();
    assert_eq!(seen.len(), unique.len(), "no job claimed twice");
    assert_eq!(unique, ids, "every job claimed");
    let listed = h
        .store
        .list_jobs(
            &ws,
            &JobFilter {
                status: Some(JobStatus::Running),
                limit: 1000,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let many: Vec<_> = listed
        .iter()
        .filter(|j| j.key.starts_with("many_"))
        .collect();
    assert_eq!(many.len(), 200, "the clock's job claimed above runs too");
    assert!(many.iter().all(|j| j.attempts == 1));
}
