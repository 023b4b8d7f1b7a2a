//! The scheduler end to end, on a real bound server, on SQLite and PostgreSQL: trials end,
//! reminders go out and subscriptions renew by advancing test clocks only (no bill run); a job
//! whose worker crashed is claimed again and has its effect once; a worker that was off
//! catches up in due order; operators list, cancel and retry jobs and read the outbox.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

mod common;

use std::time::Duration;

use common::{Backend, TestServer, Workspace, backend_tests};
use jiff::{SignedDuration, Timestamp};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tollgate_core::ids::WorkspaceId;
use tollgate_store::jobs::{Lease, NewJob};

/// Tests whose jobs are due on the wall clock run one at a time: a worker claims the due jobs
/// of every workspace of its database, and the PostgreSQL tests share one.
static WALL_CLOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn get(ws: &Workspace<'_>, path: &str) -> Value {
    let (status, body) = ws.call(Method::GET, path, None).await;
    assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
    body
}

async fn jobs_of(ws: &Workspace<'_>, customer: &str) -> Vec<Value> {
    get(ws, &format!("/v1/jobs?customer={customer}&limit=100")).await["data"]
        .as_array()
        .unwrap()
        .clone()
}

async fn domain_events(ws: &Workspace<'_>, query: &str) -> Vec<Value> {
    get(ws, &format!("/v1/domain_events?{query}&limit=100")).await["data"]
        .as_array()
        .unwrap()
        .clone()
}

async fn invoices(ws: &Workspace<'_>, customer: &str) -> Vec<Value> {
    let body = get(ws, &format!("/v1/customers/{customer}/invoices")).await;
    body.as_array()
        .or_else(|| body["data"].as_array())
        .unwrap()
        .clone()
}

async fn subscription(ws: &Workspace<'_>, customer: &str) -> Value {
    let body = get(ws, &format!("/v1/customers/{customer}/subscriptions")).await;
    body.as_array().or_else(|| body["data"].as_array()).unwrap()[0].clone()
}

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

async fn apex_6_trial_ends_into_the_fallback_plan_without_a_bill_run(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = server.workspace("apex.yaml").await;
    let clock = ws.test_clock("2026-11-02T08:00:00Z").await;
    ws.post(
        "/v1/customers",
        json!({"id": "trialist", "test_clock": clock}),
    )
    .await;
    ws.post(
        "/v1/customers/trialist/subscriptions",
        json!({"plan": "early", "trial": true}),
    )
    .await;
    // Enqueued with the subscription: the reminder 2 days before the end (policies), the end.
    let jobs = jobs_of(&ws, "trialist").await;
    let due: Vec<(&str, &str, &str)> = jobs
        .iter()
        .map(|j| {
            (
                j["kind"].as_str().unwrap(),
                j["due_at"].as_str().unwrap(),
                j["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        due,
        vec![
            (
                "subscription.trial_reminder",
                "2026-11-07T08:00:00Z",
                "scheduled"
            ),
            (
                "subscription.trial_end",
                "2026-11-09T08:00:00Z",
                "scheduled"
            ),
        ]
    );
    assert!(jobs.iter().all(|j| j["test_clock"] == clock.as_str()));
    let created = domain_events(&ws, "type=subscription.created&customer=trialist").await;
    assert_eq!(created.len(), 1);
    assert_eq!(created[0]["occurred_at"], "2026-11-02T08:00:00Z");

    ws.advance(&clock, "2026-11-07T07:59:59Z").await;
    let reminders = "type=subscription.trial_will_end&customer=trialist";
    assert_eq!(domain_events(&ws, reminders).await, Vec::<Value>::new());
    ws.advance(&clock, "2026-11-07T12:00:00Z").await;
    let reminded = domain_events(&ws, reminders).await;
    assert_eq!(reminded.len(), 1, "{reminded:#?}");
    assert_eq!(reminded[0]["occurred_at"], "2026-11-07T08:00:00Z");
    assert_eq!(reminded[0]["data"]["trial_end"], "2026-11-09T08:00:00Z");

    ws.advance(&clock, "2026-11-09T07:59:59Z").await;
    let feature = json!({"customer": "trialist", "feature": "advanced_optimization"});
    let before = ws.check(feature.clone()).await;
    assert_eq!(before["allowed"], true, "the second before: {before}");
    assert_eq!(subscription(&ws, "trialist").await["plan"], "early");

    ws.advance(&clock, "2026-11-09T08:00:00Z").await;
    let after = ws.check(feature).await;
    assert_eq!(after["allowed"], false, "from that second: {after}");
    assert_eq!(after["reason"], "feature_not_in_plan");
    let sub = subscription(&ws, "trialist").await;
    assert_eq!(
        (sub["plan"].as_str(), sub["status"].as_str()),
        (Some("free"), Some("active"))
    );
    let ended = domain_events(&ws, "type=subscription.trial_ended&customer=trialist").await;
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0]["occurred_at"], "2026-11-09T08:00:00Z");
    assert_eq!(ended[0]["data"]["plan"], "free");

    // The trial's jobs ran once each; the next one is the free plan's period end.
    let jobs = jobs_of(&ws, "trialist").await;
    let states: Vec<(&str, &str, i64)> = jobs
        .iter()
        .map(|j| {
            (
                j["kind"].as_str().unwrap(),
                j["status"].as_str().unwrap(),
                j["attempts"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        states,
        vec![
            ("subscription.trial_reminder", "succeeded", 1),
            ("subscription.trial_end", "succeeded", 1),
            ("subscription.period_end", "scheduled", 0),
        ]
    );

    // The outbox pages with a cursor, oldest first.
    let first = get(&ws, "/v1/domain_events?customer=trialist&limit=1").await;
    assert_eq!(first["has_more"], true);
    let after_first = first["data"][0]["id"].as_str().unwrap();
    let rest = get(
        &ws,
        &format!("/v1/domain_events?customer=trialist&starting_after={after_first}"),
    )
    .await;
    assert_eq!(rest["has_more"], false);
    let types: Vec<&str> = std::iter::once(&first["data"][0])
        .chain(rest["data"].as_array().unwrap())
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        vec![
            "subscription.created",
            "subscription.trial_will_end",
            "subscription.trial_ended",
            "invoice.finalized",
        ]
    );
    let (status, body) = ws
        .call(Method::GET, "/v1/domain_events?limit=0", None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "invalid_limit");
}
backend_tests!(apex_6_trial_ends_into_the_fallback_plan_without_a_bill_run);

async fn a_monthly_subscription_renews_at_each_period_end_by_advancing_the_clock(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = server.workspace("lexecon.yaml").await;
    let clock = ws.test_clock("2026-11-01T00:00:00Z").await;
    ws.post(
        "/v1/customers",
        json!({"id": "renews", "test_clock": clock}),
    )
    .await;
    ws.post(
        "/v1/customers/renews/subscriptions",
        json!({"plan": "startup", "trial": false}),
    )
    .await;
    ws.advance(&clock, "2026-12-01T00:00:00Z").await;
    assert_eq!(
        invoices(&ws, "renews").await.len(),
        2,
        "November's opening and closing"
    );
    ws.advance(&clock, "2027-01-01T00:00:00Z").await;
    // Two period ends in one advance: each runs at its own time, in order.
    ws.advance(&clock, "2027-03-01T12:00:00Z").await;
    let all = invoices(&ws, "renews").await;
    assert_eq!(all.len(), 5, "{all:#?}");
    let closings: Vec<(&str, &str, &str)> = all[1..]
        .iter()
        .map(|i| {
            (
                i["period_start"].as_str().unwrap(),
                i["period_end"].as_str().unwrap(),
                i["created_at"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        closings,
        vec![
            (
                "2026-11-01T00:00:00Z",
                "2026-12-01T00:00:00Z",
                "2026-12-01T00:00:00Z"
            ),
            (
                "2026-12-01T00:00:00Z",
                "2027-01-01T00:00:00Z",
                "2027-01-01T00:00:00Z"
            ),
            (
                "2027-01-01T00:00:00Z",
                "2027-02-01T00:00:00Z",
                "2027-02-01T00:00:00Z"
            ),
            (
                "2027-02-01T00:00:00Z",
                "2027-03-01T00:00:00Z",
                "2027-03-01T00:00:00Z"
            ),
        ],
        "each invoice issued at its period end"
    );
    for invoice in &all[1..] {
        assert_eq!(invoice["total"], "99.00", "{invoice:#}");
    }
    let finalized = domain_events(&ws, "type=invoice.finalized&customer=renews").await;
    assert_eq!(finalized.len(), 5, "one event per invoice");
    let jobs = jobs_of(&ws, "renews").await;
    let renewals: Vec<(&str, &str)> = jobs
        .iter()
        .map(|j| (j["due_at"].as_str().unwrap(), j["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        renewals,
        vec![
            ("2026-12-01T00:00:00Z", "succeeded"),
            ("2027-01-01T00:00:00Z", "succeeded"),
            ("2027-02-01T00:00:00Z", "succeeded"),
            ("2027-03-01T00:00:00Z", "succeeded"),
            ("2027-04-01T00:00:00Z", "scheduled"),
        ]
    );
}
backend_tests!(a_monthly_subscription_renews_at_each_period_end_by_advancing_the_clock);

async fn a_job_whose_worker_crashed_is_claimed_again_and_bills_once(backend: Backend) {
    let server = TestServer::start(backend).await;
    let engine = server.server.as_ref().unwrap().state.engine.clone();
    let store = engine.store().clone();
    let ws = server.workspace("lexecon.yaml").await;
    let wid = WorkspaceId::from(&ws.id);
    let clock = ws.test_clock("2026-11-01T00:00:00Z").await;
    ws.post("/v1/customers", json!({"id": "crash", "test_clock": clock}))
        .await;
    ws.post(
        "/v1/customers/crash/subscriptions",
        json!({"plan": "startup", "trial": false}),
    )
    .await;
    // A worker claims the renewal with a one-second lease, bills, and dies before recording it.
    let now = Timestamp::now();
    let lease = Lease {
        worker: "doomed".into(),
        now,
        until: now + SignedDuration::from_secs(1),
    };
    let claimed = store
        .claim_clock_job(&wid, &clock, ts("2026-12-01T00:00:00Z"), &lease)
        .await
        .unwrap()
        .expect("the renewal is due");
    assert_eq!(claimed.kind, "subscription.period_end");
    store
        .set_test_clock_time(&wid, &clock, ts("2026-12-01T00:00:00Z"))
        .await
        .unwrap();
    engine.set_test_clock(&ws.id, &clock, ts("2026-12-01T00:00:00Z"));
    let sub = store
        .get_subscription(&wid, claimed.payload["subscription"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    let report = tollgate_server::app::bill_run::bill_one(&engine, sub)
        .await
        .unwrap();
    // November's opening invoice was billed when the subscription started; this is the one
    // closing November and opening December.
    assert_eq!(report.invoices_created, 1, "{report:?}");
    // While its lease holds, nobody else runs it.
    ws.advance(&clock, "2026-12-01T00:00:00Z").await;
    let job = &jobs_of(&ws, "crash").await[0];
    assert_eq!(
        (job["status"].as_str(), job["attempts"].as_i64()),
        (Some("running"), Some(1))
    );

    tokio::time::sleep(Duration::from_millis(1100)).await;
    ws.advance(&clock, "2026-12-01T00:00:01Z").await;
    let jobs = jobs_of(&ws, "crash").await;
    assert_eq!(jobs[0]["status"], "succeeded", "{:#}", jobs[0]);
    assert_eq!(
        jobs[0]["attempts"], 2,
        "claimed again after the lease ran out"
    );
    assert_eq!(
        jobs[0]["result"]["invoices_created"],
        json!([]),
        "nothing billed twice"
    );
    assert_eq!(jobs[1]["due_at"], "2027-01-01T00:00:00Z");
    assert_eq!(invoices(&ws, "crash").await.len(), 2, "its effect once");
    assert_eq!(
        domain_events(&ws, "type=invoice.finalized&customer=crash")
            .await
            .len(),
        2
    );
}
backend_tests!(a_job_whose_worker_crashed_is_claimed_again_and_bills_once);

async fn a_worker_that_was_off_catches_up_in_due_order(backend: Backend) {
    let _one_at_a_time = WALL_CLOCK.lock().await;
    let server = TestServer::start(backend).await;
    let engine = server.server.as_ref().unwrap().state.engine.clone();
    let ws = server.workspace("apex.yaml").await;
    ws.post("/v1/customers", json!({"id": "waits"})).await;
    ws.post(
        "/v1/customers/waits/subscriptions",
        json!({"plan": "early", "trial": true}),
    )
    .await;
    let sub_id = subscription(&ws, "waits").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Three reminders that fell due while no worker ran, enqueued out of order.
    let now = Timestamp::now();
    for hours in [1, 3, 2] {
        let job = NewJob {
            workspace: ws.id.clone(),
            id: format!("job_catchup_{hours}_{}", uuid::Uuid::now_v7().simple()),
            kind: "subscription.trial_reminder".into(),
            key: format!("{sub_id}:catchup:{hours}"),
            customer: Some("waits".into()),
            test_clock: None,
            due_at: now - SignedDuration::from_hours(hours),
            payload: json!({"subscription": sub_id}),
            max_attempts: 3,
            created_at: now,
        };
        engine.store().enqueue_job(&job).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let waiting = get(
        &ws,
        "/v1/jobs?kind=subscription.trial_reminder&status=scheduled",
    )
    .await;
    // The three, and the real reminder 5 days ahead: this node runs no jobs.
    assert_eq!(waiting["data"].as_array().unwrap().len(), 4, "{waiting:#}");

    let worker = tollgate_server::jobs::spawn(
        engine.clone(),
        tollgate_server::jobs::JobsConfig {
            poll_interval: Duration::from_millis(50),
            ..Default::default()
        },
    );
    let mut done = Vec::new();
    for _ in 0..200 {
        done = get(
            &ws,
            "/v1/jobs?kind=subscription.trial_reminder&status=succeeded",
        )
        .await["data"]
            .as_array()
            .unwrap()
            .clone();
        if done.len() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    worker.abort();
    assert_eq!(done.len(), 3, "{done:#?}");
    let reminders = domain_events(&ws, "type=subscription.trial_will_end&customer=waits").await;
    let order: Vec<&str> = reminders
        .iter()
        .map(|e| e["data"]["due_at"].as_str().unwrap())
        .collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order.len(), 3);
    assert_eq!(order, sorted, "run in due order, earliest first");
}
backend_tests!(a_worker_that_was_off_catches_up_in_due_order);

async fn operators_cancel_and_retry_jobs(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = server.workspace("apex.yaml").await;
    let clock = ws.test_clock("2026-11-02T08:00:00Z").await;
    ws.post("/v1/customers", json!({"id": "ops", "test_clock": clock}))
        .await;
    ws.post(
        "/v1/customers/ops/subscriptions",
        json!({"plan": "early", "trial": true}),
    )
    .await;
    let reminder = jobs_of(&ws, "ops").await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let canceled = ws
        .post(&format!("/v1/jobs/{reminder}/cancel"), json!({}))
        .await;
    assert_eq!(canceled["status"], "canceled");
    let (status, body) = ws
        .call(
            Method::POST,
            &format!("/v1/jobs/{reminder}/cancel"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["code"], "invalid_job_transition");
    // Canceled: the clock passes its time and it does not run.
    ws.advance(&clock, "2026-11-08T00:00:00Z").await;
    assert_eq!(
        domain_events(&ws, "type=subscription.trial_will_end&customer=ops")
            .await
            .len(),
        0
    );
    let retried = ws
        .post(&format!("/v1/jobs/{reminder}/retry"), json!({}))
        .await;
    assert_eq!(
        (retried["status"].as_str(), retried["attempts"].as_i64()),
        (Some("scheduled"), Some(0))
    );
    ws.advance(&clock, "2026-11-08T01:00:00Z").await;
    let reminded = domain_events(&ws, "type=subscription.trial_will_end&customer=ops").await;
    assert_eq!(reminded.len(), 1, "retried, it runs once");
    let (status, body) = ws
        .call(
            Method::POST,
            &format!("/v1/jobs/{reminder}/retry"),
            Some(json!({})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "a job that succeeded is not run twice: {body}"
    );
    let (status, _) = ws
        .call(Method::POST, "/v1/jobs/job_nope/retry", Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = ws.call(Method::GET, "/v1/jobs?status=lost", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "unknown_status");
}
backend_tests!(operators_cancel_and_retry_jobs);

/// Pause at the period end, nothing billed while paused, checks denied; resume restarts the
/// billing from the resume (a prorated first period under calendar billing), all on the clock.
async fn pause_takes_effect_at_the_period_end_and_resume_restarts_billing(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = server.workspace("levqor.yaml").await;
    let clock = ws.test_clock("2026-11-01T00:00:00Z").await;
    ws.customer("p", "developer", Some(&clock), false).await;
    let sub = subscription(&ws, "p").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let totals = |list: Vec<Value>| -> Vec<(String, String)> {
        let mut t: Vec<(String, String)> = list
            .iter()
            .map(|i| {
                (
                    i["created_at"].as_str().unwrap().to_owned(),
                    i["total"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        t.sort();
        t
    };
    // Paid from its first second: November's $29.00 in advance is billed at once.
    assert_eq!(
        totals(invoices(&ws, "p").await),
        vec![("2026-11-01T00:00:00Z".to_owned(), "29.00".to_owned())]
    );

    ws.advance(&clock, "2026-11-10T00:00:00Z").await;
    let paused = ws
        .post(
            &format!("/v1/customers/p/subscriptions/{sub}/pause"),
            json!({}),
        )
        .await;
    assert_eq!(
        (paused["status"].as_str(), paused["ends_at"].as_str()),
        (Some("active"), Some("2026-12-01T00:00:00Z")),
        "{paused}"
    );
    let meter = json!({"customer": "p", "meter": "api_calls"});
    ws.advance(&clock, "2026-11-30T23:59:59Z").await;
    assert_eq!(
        ws.check(meter.clone()).await["allowed"],
        true,
        "served to the end"
    );

    // The period end: November closes (no usage) and opens nothing; the subscription pauses.
    ws.advance(&clock, "2026-12-01T00:00:00Z").await;
    let now = subscription(&ws, "p").await;
    assert_eq!(
        (now["status"].as_str(), now["ends_at"].as_str()),
        (Some("paused"), None),
        "{now}"
    );
    let denied = ws.check(meter.clone()).await;
    assert_eq!(
        (denied["allowed"].as_bool(), denied["reason"].as_str()),
        (Some(false), Some("subscription_paused")),
        "{denied}"
    );
    let events = domain_events(&ws, "type=subscription.paused&customer=p").await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["occurred_at"], "2026-12-01T00:00:00Z");
    // Pausing again is refused by the state machine.
    let (status, body) = ws
        .call(
            Method::POST,
            &format!("/v1/customers/p/subscriptions/{sub}/pause"),
            Some(json!({})),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (
            StatusCode::CONFLICT,
            Some("invalid_subscription_transition")
        )
    );

    // Six weeks paused: no invoice.
    ws.advance(&clock, "2027-01-15T00:00:00Z").await;
    let before_resume = totals(invoices(&ws, "p").await);
    assert_eq!(
        before_resume,
        vec![
            ("2026-11-01T00:00:00Z".to_owned(), "29.00".to_owned()),
            ("2026-12-01T00:00:00Z".to_owned(), "0.00".to_owned()),
        ]
    );
    assert!(
        jobs_of(&ws, "p")
            .await
            .iter()
            .all(|j| j["status"] != "scheduled")
    );

    // Resume on Jan 15: January's rest, 17 of 31 days of $29.00, at once; then whole months.
    let resumed = ws
        .post(
            &format!("/v1/customers/p/subscriptions/{sub}/resume"),
            json!({}),
        )
        .await;
    assert_eq!(resumed["status"], "active", "{resumed}");
    assert_eq!(resumed["started_at"], "2027-01-15T00:00:00Z");
    assert_eq!(resumed["current_period_end"], "2027-02-01T00:00:00Z");
    assert_eq!(ws.check(meter).await["allowed"], true);
    ws.advance(&clock, "2027-02-01T00:00:00Z").await;
    let all = totals(invoices(&ws, "p").await);
    assert_eq!(
        all[2..],
        [
            ("2027-01-15T00:00:00Z".to_owned(), "15.90".to_owned()),
            ("2027-02-01T00:00:00Z".to_owned(), "29.00".to_owned()),
        ],
        "{all:?}"
    );
    assert_eq!(
        domain_events(&ws, "type=subscription.resumed&customer=p")
            .await
            .len(),
        1
    );
}
backend_tests!(pause_takes_effect_at_the_period_end_and_resume_restarts_billing);

/// A pause asked for and withdrawn before the period end changes nothing.
async fn resume_before_the_pause_withdraws_it(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = server.workspace("levqor.yaml").await;
    let clock = ws.test_clock("2026-11-01T00:00:00Z").await;
    ws.customer("w", "developer", Some(&clock), false).await;
    let sub = subscription(&ws, "w").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    ws.post(
        &format!("/v1/customers/w/subscriptions/{sub}/pause"),
        json!({}),
    )
    .await;
    let back = ws
        .post(
            &format!("/v1/customers/w/subscriptions/{sub}/resume"),
            json!({}),
        )
        .await;
    assert_eq!(
        (
            back["status"].as_str(),
            back["ends_at"].as_str(),
            back["started_at"].as_str()
        ),
        (Some("active"), None, Some("2026-11-01T00:00:00Z"))
    );
    ws.advance(&clock, "2026-12-01T00:00:00Z").await;
    assert_eq!(subscription(&ws, "w").await["status"], "active");
    let totals: Vec<String> = invoices(&ws, "w")
        .await
        .iter()
        .map(|i| i["total"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        totals.iter().filter(|t| *t == "29.00").count(),
        2,
        "{totals:?}"
    );
    // Resuming an active subscription that is not pausing is refused.
    let (status, body) = ws
        .call(
            Method::POST,
            &format!("/v1/customers/w/subscriptions/{sub}/resume"),
            Some(json!({})),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (
            StatusCode::CONFLICT,
            Some("invalid_subscription_transition")
        )
    );
}
backend_tests!(resume_before_the_pause_withdraws_it);

/// Canceled at the period end: served to the end, closed by its last invoice at the end, then
/// `expired` (with its event), by the clock alone. Canceled at once: the period so far is
/// billed now, and it is over now.
async fn cancellations_end_in_expiry_with_their_last_invoice(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = server.workspace("levqor.yaml").await;
    let clock = ws.test_clock("2026-11-01T00:00:00Z").await;
    for id in ["later", "now"] {
        ws.customer(id, "developer", Some(&clock), false).await;
    }
    ws.advance(&clock, "2026-11-20T12:00:00Z").await;
    let (_, calls) = ws
        .events(json!([{"id": "c1", "customer": "now", "type": "api.call"}]))
        .await;
    assert_eq!(calls["accepted"], 1);
    for (id, immediately) in [("later", false), ("now", true)] {
        let sub = subscription(&ws, id).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        ws.post(
            &format!("/v1/customers/{id}/subscriptions/{sub}/cancel"),
            json!({"immediately": immediately}),
        )
        .await;
    }
    let now = subscription(&ws, "now").await;
    assert_eq!(now["status"], "expired", "{now}");
    let last = invoices(&ws, "now").await;
    let closing: Vec<&Value> = last
        .iter()
        .filter(|i| i["period_end"] == "2026-11-20T12:00:00Z")
        .collect();
    assert_eq!(closing.len(), 1, "{last:#?}");
    assert_eq!(
        closing[0]["total"], "0.00",
        "usage within the included calls"
    );

    let later = subscription(&ws, "later").await;
    assert_eq!(
        (later["status"].as_str(), later["ends_at"].as_str()),
        (Some("canceled"), Some("2026-12-01T00:00:00Z"))
    );
    ws.advance(&clock, "2026-12-01T00:00:00Z").await;
    assert_eq!(subscription(&ws, "later").await["status"], "expired");
    let expired = domain_events(&ws, "type=subscription.expired&customer=later").await;
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0]["occurred_at"], "2026-12-01T00:00:00Z");
    // Its last invoice closes November and opens nothing.
    let totals: Vec<(String, String)> = invoices(&ws, "later")
        .await
        .iter()
        .map(|i| {
            (
                i["period_end"].as_str().unwrap_or_default().to_owned(),
                i["total"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        totals.contains(&("2026-12-01T00:00:00Z".to_owned(), "0.00".to_owned())),
        "{totals:?}"
    );
    ws.advance(&clock, "2027-02-01T00:00:00Z").await;
    assert_eq!(
        invoices(&ws, "later").await.len(),
        2,
        "nothing after the end"
    );
}
backend_tests!(cancellations_end_in_expiry_with_their_last_invoice);

/// A paused subscription canceled months later owes nothing for the months it was paused:
/// it expires at once, and a bill run afterwards bills nothing either.
async fn a_paused_subscription_canceled_owes_nothing_more(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = server.workspace("levqor.yaml").await;
    let clock = ws.test_clock("2026-11-01T00:00:00Z").await;
    ws.customer("gone", "developer", Some(&clock), false).await;
    let sub = subscription(&ws, "gone").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    ws.post(
        &format!("/v1/customers/gone/subscriptions/{sub}/pause"),
        json!({}),
    )
    .await;
    ws.advance(&clock, "2027-03-10T00:00:00Z").await;
    assert_eq!(subscription(&ws, "gone").await["status"], "paused");
    let before = invoices(&ws, "gone").await.len();
    // Canceling at the period end is refused (a paused one has no running period) ...
    let (status, body) = ws
        .call(
            Method::POST,
            &format!("/v1/customers/gone/subscriptions/{sub}/cancel"),
            Some(json!({})),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (
            StatusCode::CONFLICT,
            Some("invalid_subscription_transition")
        )
    );
    // ... at once it ends where its billing stopped.
    let ended = ws
        .post(
            &format!("/v1/customers/gone/subscriptions/{sub}/cancel"),
            json!({"immediately": true}),
        )
        .await;
    assert_eq!(ended["status"], "expired", "{ended}");
    ws.post("/v1/bill_runs", json!({})).await;
    assert_eq!(
        invoices(&ws, "gone").await.len(),
        before,
        "nothing for the paused months"
    );
    // An expired subscription cannot be canceled again.
    let (status, _) = ws
        .call(
            Method::POST,
            &format!("/v1/customers/gone/subscriptions/{sub}/cancel"),
            Some(json!({"immediately": true})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
}
backend_tests!(a_paused_subscription_canceled_owes_nothing_more);
