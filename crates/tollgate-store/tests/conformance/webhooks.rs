//! Cases for webhooks: deliveries made once per (event, endpoint) by the fan-out, claimed by
//! one worker, an attempt's log and effects written together, per-customer order for an ordered
//! endpoint, the SSRF setting per workspace, replay and pruning.

use crate::Harness;
use crate::support::*;
use jiff::SignedDuration;
use serde_json::json;
use tollgate_core::ids::WorkspaceId;
use tollgate_store::outbox::{OutboxEvent, OutboxFilter};
use tollgate_store::webhooks::*;

fn endpoint(ws: &str, id: &str, types: &[&str], created: &str) -> WebhookEndpointRecord {
    WebhookEndpointRecord {
        workspace: ws.to_owned(),
        id: id.to_owned(),
        url: format!("https://hooks.example.com/{id}"),
        event_types: types.iter().map(|t| t.to_string()).collect(),
        description: Some("ops".into()),
        enabled: true,
        ordered: false,
        secret: "whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0".into(),
        previous_secret: None,
        previous_secret_until: None,
        failing_since: None,
        disabled_reason: None,
        created_at: ts(created),
        updated_at: ts(created),
    }
}

fn event(ws: &str, customer: &str, kind: &str, at: &str) -> OutboxEvent {
    OutboxEvent {
        workspace: ws.to_owned(),
        id: fresh("evt"),
        customer: Some(customer.to_owned()),
        event_type: kind.to_owned(),
        occurred_at: ts(at),
        data: json!({"kind": kind}),
        created_at: ts(at),
        delivered_at: None,
        delivery_attempts: 0,
    }
}

pub(crate) async fn webhook_deliveries_are_made_once_and_claimed_once(h: &Harness) {
    let s = h.store.as_ref();
    let ws = WorkspaceId::from(h.ws.as_str());
    h.customer(&h.ws, "cus_clock").await;
    let all = endpoint(&h.ws, "we_all", &[], "2026-01-01T00:00:00Z");
    let paid = endpoint(&h.ws, "we_paid", &["invoice.paid"], "2026-01-01T00:00:00Z");
    let later = endpoint(&h.ws, "we_later", &[], "2026-06-01T00:00:00Z");
    for e in [&all, &paid, &later] {
        s.create_webhook_endpoint(e).await.unwrap();
    }
    assert_exists(
        s.create_webhook_endpoint(&all).await,
        "webhook endpoint",
        "we_all",
    );
    let e1 = event(&h.ws, "cus_clock", "invoice.paid", "2026-02-01T00:00:00Z");
    let e2 = event(&h.ws, "cus_clock", "invoice.voided", "2026-02-02T00:00:00Z");
    s.append_events(&ws, &[e1.clone(), e2.clone()])
        .await
        .unwrap();
    // e1 to both older endpoints, e2 to the one taking every type; none to the later one.
    let now = ts("2026-02-03T00:00:00Z");
    assert_eq!(s.fan_out_webhooks(&ws, 100, now).await.unwrap(), 3);
    assert_eq!(s.fan_out_webhooks(&ws, 100, now).await.unwrap(), 0, "once");
    let due = s.pending_webhook_deliveries(&ws, now, 100).await.unwrap();
    assert_eq!(due.len(), 3);
    assert!(
        due.iter()
            .all(|d| d.status == DeliveryStatus::Pending && d.attempts == 0)
    );
    assert_eq!(
        s.pending_webhook_deliveries(&ws, ts("2026-01-15T00:00:00Z"), 100)
            .await
            .unwrap()
            .len(),
        0,
        "not due before their event"
    );
    // Claimed once; the claim hides it until its lease ends.
    let d = due
        .iter()
        .find(|d| d.event == e1.id && d.endpoint == "we_all")
        .unwrap();
    let lease = now + SignedDuration::from_secs(60);
    assert!(
        s.claim_webhook_delivery(&ws, &d.id, now, lease)
            .await
            .unwrap()
    );
    assert!(
        !s.claim_webhook_delivery(&ws, &d.id, now, lease)
            .await
            .unwrap()
    );
    assert_eq!(
        s.pending_webhook_deliveries(&ws, now, 100)
            .await
            .unwrap()
            .len(),
        2
    );
    // A failed attempt: its log, the retry time, the endpoint's record and an event, together.
    // Meanwhile the operator changed the endpoint's description: the attempt keeps that.
    let mut renamed = all.clone();
    renamed.description = Some("renamed".into());
    s.update_webhook_endpoint(&renamed).await.unwrap();
    let mut failing = renamed.clone();
    failing.failing_since = Some(now);
    failing.enabled = false;
    failing.disabled_reason = Some("failing".into());
    failing.updated_at = now;
    let disabled = event(
        &h.ws,
        "cus_clock",
        "webhook_endpoint.disabled",
        "2026-02-03T00:00:00Z",
    );
    let outcome = AttemptOutcome {
        attempt: WebhookAttemptRecord {
            workspace: h.ws.clone(),
            delivery: d.id.clone(),
            attempt: 1,
            endpoint: "we_all".into(),
            url: all.url.clone(),
            webhook_timestamp: 1_770_076_800,
            request_body: "{}".into(),
            response_status: Some(500),
            response_excerpt: Some("boom".into()),
            duration_ms: 12,
            error: None,
            attempted_at: now,
        },
        status: DeliveryStatus::Pending,
        next_attempt_at: now + SignedDuration::from_secs(5),
        last_status: Some(500),
        last_error: Some("the receiver answered 500".into()),
        failing_since: Some(now),
        disable: Some(Disable {
            reason: "failing".into(),
            event: disabled.clone(),
            at: now,
        }),
    };
    s.record_webhook_attempt(&outcome).await.unwrap();
    let stored = s.get_webhook_delivery(&ws, &d.id).await.unwrap().unwrap();
    assert_eq!(stored.attempts, 1);
    assert_eq!(stored.last_status, Some(500));
    assert_eq!(stored.locked_until, None);
    assert_eq!(stored.next_attempt_at, now + SignedDuration::from_secs(5));
    let log = s.list_webhook_attempts(&ws, &d.id).await.unwrap();
    assert_eq!(log, vec![outcome.attempt.clone()]);
    assert_eq!(
        s.get_webhook_endpoint(&ws, "we_all")
            .await
            .unwrap()
            .unwrap(),
        failing
    );
    let written = s
        .list_domain_events(
            &ws,
            &OutboxFilter {
                event_type: Some("webhook_endpoint.disabled".into()),
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(written, vec![disabled]);
    let fanned = OutboxEvent {
        delivered_at: Some(now),
        ..e1.clone()
    };
    assert_eq!(
        s.get_domain_event(&ws, &e1.id).await.unwrap().unwrap(),
        fanned,
        "marked fanned out"
    );
    // A second log line for the same attempt number is refused (the transaction rolls back).
    assert_exists(
        s.record_webhook_attempt(&outcome).await,
        "webhook attempt",
        &d.id,
    );
    // Success clears the failure record; an endpoint disabled already announces nothing again.
    let mut again = outcome.clone();
    again.attempt.attempt = 2;
    s.record_webhook_attempt(&again).await.unwrap();
    let mut success = outcome.clone();
    success.attempt.attempt = 3;
    success.failing_since = None;
    success.disable = None;
    s.record_webhook_attempt(&success).await.unwrap();
    let stored = s
        .get_webhook_endpoint(&ws, "we_all")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.failing_since, None);
    assert!(!stored.enabled);
    let written = s
        .list_domain_events(
            &ws,
            &OutboxFilter {
                event_type: Some("webhook_endpoint.disabled".into()),
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(written.len(), 1, "one event, not one per attempt");
    let mut on = stored.clone();
    on.enabled = true;
    s.update_webhook_endpoint(&on).await.unwrap();
    // Replay: due at once on any clock; replay since a time takes the endpoint's later events.
    assert!(s.replay_webhook_delivery(&ws, &d.id, now).await.unwrap());
    assert!(
        !s.replay_webhook_delivery(&ws, "whd_none", now)
            .await
            .unwrap()
    );
    let replayed = s
        .replay_webhook_deliveries_since(&ws, "we_all", ts("2026-02-02T00:00:00Z"), now)
        .await
        .unwrap();
    assert_eq!(replayed, 1, "only e2 occurred since");
    // Disabled endpoints' deliveries wait.
    let mut off = paid.clone();
    off.enabled = false;
    s.update_webhook_endpoint(&off).await.unwrap();
    let due = s.pending_webhook_deliveries(&ws, now, 100).await.unwrap();
    assert!(due.iter().all(|d| d.endpoint == "we_all"), "{due:?}");
    assert_eq!(due.len(), 2);
    // Pruning the log, and deleting an endpoint with its deliveries.
    assert_eq!(
        s.prune_webhook_attempts(&ws, now + SignedDuration::from_secs(1))
            .await
            .unwrap(),
        3
    );
    assert!(s.delete_webhook_endpoint(&ws, "we_all").await.unwrap());
    assert!(!s.delete_webhook_endpoint(&ws, "we_all").await.unwrap());
    assert_eq!(
        s.list_webhook_deliveries(&ws, "we_all", 10).await.unwrap(),
        vec![]
    );
    assert_eq!(s.list_webhook_endpoints(&ws).await.unwrap().len(), 2);
    // Another workspace sees none of it.
    let other = WorkspaceId::from(h.other_workspace().await.as_str());
    assert!(s.list_webhook_endpoints(&other).await.unwrap().is_empty());
    assert_eq!(s.get_webhook_delivery(&other, &d.id).await.unwrap(), None);
}

pub(crate) async fn webhook_order_and_settings(h: &Harness) {
    let s = h.store.as_ref();
    let ws = WorkspaceId::from(h.ws.as_str());
    h.customer(&h.ws, "cus_a").await;
    h.customer(&h.ws, "cus_b").await;
    let mut ordered = endpoint(&h.ws, "we_ordered", &[], "2026-01-01T00:00:00Z");
    ordered.ordered = true;
    let loose = endpoint(&h.ws, "we_loose", &[], "2026-01-01T00:00:00Z");
    s.create_webhook_endpoint(&ordered).await.unwrap();
    s.create_webhook_endpoint(&loose).await.unwrap();
    let a1 = event(&h.ws, "cus_a", "invoice.paid", "2026-02-01T00:00:00Z");
    let a2 = event(&h.ws, "cus_a", "invoice.paid", "2026-02-01T00:00:01Z");
    let b1 = event(&h.ws, "cus_b", "invoice.paid", "2026-02-01T00:00:02Z");
    s.append_events(&ws, &[a1.clone(), a2.clone(), b1.clone()])
        .await
        .unwrap();
    let now = ts("2026-02-03T00:00:00Z");
    assert_eq!(s.fan_out_webhooks(&ws, 100, now).await.unwrap(), 6);
    // The events are marked fanned out, in the outbox.
    let marked = s.get_domain_event(&ws, &a1.id).await.unwrap().unwrap();
    assert_eq!(marked.delivered_at, Some(now));
    let due = s.pending_webhook_deliveries(&ws, now, 100).await.unwrap();
    let of = |endpoint: &str| -> Vec<String> {
        due.iter()
            .filter(|d| d.endpoint == endpoint)
            .map(|d| d.event.clone())
            .collect()
    };
    // The ordered endpoint holds a2 back behind a1; the other sends all three.
    assert_eq!(of("we_ordered"), vec![a1.id.clone(), b1.id.clone()]);
    assert_eq!(of("we_loose").len(), 3);
    // The SSRF setting: false until the operator sets it, per workspace.
    assert!(!s.webhook_private_addresses_allowed(&ws).await.unwrap());
    s.set_webhook_private_addresses_allowed(&ws, true, now)
        .await
        .unwrap();
    assert!(s.webhook_private_addresses_allowed(&ws).await.unwrap());
    let other = WorkspaceId::from(h.other_workspace().await.as_str());
    assert!(!s.webhook_private_addresses_allowed(&other).await.unwrap());
    s.set_webhook_private_addresses_allowed(&ws, false, now)
        .await
        .unwrap();
    assert!(!s.webhook_private_addresses_allowed(&ws).await.unwrap());
}
