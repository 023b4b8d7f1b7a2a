//! Two `tollgate serve` processes on one PostgreSQL database run 1,000 due jobs, each exactly
//! once: claims are `FOR UPDATE SKIP LOCKED` with a lease, and each job's effect (a
//! `subscription.trial_will_end` event naming the job's due time) commits with its completion.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

mod common;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use common::{ChildGuard, tollgate, wait_healthy};
use jiff::{SignedDuration, Timestamp};
use serde_json::json;
use std::process::Stdio;
use tollgate_core::ids::WorkspaceId;
use tollgate_store::jobs::{JobFilter, JobStatus, JobStore as _, NewJob};
use tollgate_store::outbox::{OutboxFilter, OutboxStore as _};
use tollgate_store::{
    CustomerRecord, PostgresStore, Store as _, SubscriptionRecord, SubscriptionStatus,
    WorkspaceRecord,
};

const JOBS: usize = 1000;

async fn serve_postgres(url: &str, log: &std::path::Path) -> (ChildGuard, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = ChildGuard(
        tollgate()
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--database-url", url, "--jobs-poll-ms", "50"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap(),
    );
    wait_healthy(&base, &mut child, log).await;
    (child, base)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(tollgate_pg),
    ignore = "set TOLLGATE_TEST_DATABASE_URL to run on PostgreSQL"
)]
async fn two_serve_processes_on_one_postgres_run_1000_due_jobs_once_each() {
    let url = std::env::var("TOLLGATE_TEST_DATABASE_URL")
        .expect("built with TOLLGATE_TEST_DATABASE_URL set: set it to run this test");
    let store = PostgresStore::connect_with(&url, 4).await.unwrap();
    let ws = format!("ws_jobs_{}", uuid::Uuid::now_v7().simple());
    let wid = WorkspaceId::from(&ws);
    let now = Timestamp::now();
    store
        .create_workspace(&WorkspaceRecord {
            id: ws.clone(),
            name: "two nodes".into(),
            created_at: now,
        })
        .await
        .unwrap();
    store
        .create_customer(&CustomerRecord {
            workspace: ws.clone(),
            id: "many".into(),
            name: None,
            email: None,
            suspended: false,
            has_payment_method: false,
            test_clock: None,
            metadata: json!({}),
            created_at: now,
            address: json!(null),
            tax_ids: json!([]),
            archived_at: None,
        })
        .await
        .unwrap();
    store
        .create_subscription(&SubscriptionRecord {
            workspace: ws.clone(),
            id: "sub_many".into(),
            customer: "many".into(),
            plan: "early".into(),
            catalog_version: 1,
            status: SubscriptionStatus::Trialing,
            addons: json!({}),
            started_at: now,
            billing_anchor: now,
            trial_end: Some(now + SignedDuration::from_hours(24 * 7)),
            canceled_at: None,
            ends_at: None,
        })
        .await
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let (mut a, _) = serve_postgres(&url, &dir.path().join("a.log")).await;
    let (mut b, _) = serve_postgres(&url, &dir.path().join("b.log")).await;

    // 1,000 reminders, each due at its own past microsecond.
    let started = Instant::now();
    for n in 0..JOBS {
        let due = now - SignedDuration::from_micros(i64::try_from(n).unwrap() + 1);
        store
            .enqueue_job(&NewJob {
                workspace: ws.clone(),
                id: format!("job_{n:04}_{}", uuid::Uuid::now_v7().simple()),
                kind: "subscription.trial_reminder".into(),
                key: format!("sub_many:reminder:{n}"),
                customer: Some("many".into()),
                test_clock: None,
                due_at: due,
                payload: json!({"subscription": "sub_many"}),
                max_attempts: 3,
                created_at: now,
            })
            .await
            .unwrap();
    }
    let succeeded = JobFilter {
        status: Some(JobStatus::Succeeded),
        limit: 10_000,
        ..Default::default()
    };
    let mut done = Vec::new();
    for _ in 0..1200 {
        done = store.list_jobs(&wid, &succeeded).await.unwrap();
        if done.len() == JOBS {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let took = started.elapsed();
    a.terminate();
    b.terminate();
    assert_eq!(done.len(), JOBS, "every job ran");
    assert!(
        done.iter().all(|j| j.attempts == 1),
        "each claimed once: {:?}",
        done.iter().find(|j| j.attempts != 1)
    );
    // Both processes ran some (the worker name starts with its process id).
    let mut per_process: HashMap<String, usize> = HashMap::new();
    for job in &done {
        let worker = job.result.as_ref().unwrap()["worker"].as_str().unwrap();
        let pid = worker.split('_').nth(1).unwrap().to_owned();
        *per_process.entry(pid).or_default() += 1;
    }
    assert_eq!(per_process.len(), 2, "{per_process:?}");
    // Each job's effect exactly once: one event per job, naming its own due time.
    let events = store
        .list_domain_events(
            &wid,
            &OutboxFilter {
                event_type: Some("subscription.trial_will_end".into()),
                limit: 10_000,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(events.len(), JOBS);
    let distinct: HashSet<String> = events
        .iter()
        .map(|e| e.data["due_at"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(distinct.len(), JOBS);
    println!(
        "{JOBS} jobs by two processes in {:.2} s ({per_process:?})",
        took.as_secs_f64()
    );
}
