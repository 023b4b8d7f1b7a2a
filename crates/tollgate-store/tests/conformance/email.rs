//! Cases for email: a workspace's settings (their first time kept) and replaced templates, and
//! messages made once per (event, recipient) by the fan-out's enqueue, which marks the events it
//! read in the same transaction, then claimed by one worker and finished, listed as the log.

use crate::Harness;
use crate::support::*;
use jiff::SignedDuration;
use serde_json::json;
use tollgate_core::ids::WorkspaceId;
use tollgate_store::TestClockRecord;
use tollgate_store::email::*;
use tollgate_store::outbox::OutboxEvent;

fn settings(ws: &str, at: &str) -> EmailSettingsRecord {
    EmailSettingsRecord {
        workspace: ws.to_owned(),
        from_address: "billing@acme.example".into(),
        from_name: Some("Acme Billing".into()),
        reply_to: None,
        brand_name: Some("Acme".into()),
        logo_url: Some("https://acme.example/logo.png".into()),
        brand_color: Some("#1a7f5a".into()),
        docs_url: None,
        operator_email: Some("ops@acme.example".into()),
        enabled: true,
        created_at: ts(at),
        updated_at: ts(at),
    }
}

fn event(ws: &str, customer: Option<&str>, kind: &str, at: &str) -> OutboxEvent {
    OutboxEvent {
        workspace: ws.to_owned(),
        id: fresh("evt"),
        customer: customer.map(str::to_owned),
        event_type: kind.to_owned(),
        occurred_at: ts(at),
        data: json!({"kind": kind}),
        created_at: ts(at),
        delivered_at: None,
        delivery_attempts: 0,
    }
}

fn message(ws: &str, e: &OutboxEvent, recipient: &str) -> EmailMessageRecord {
    EmailMessageRecord {
        workspace: ws.to_owned(),
        id: fresh("em"),
        event: e.id.clone(),
        event_type: e.event_type.clone(),
        template: "usage_warning".into(),
        recipient: recipient.to_owned(),
        customer: e.customer.clone(),
        test_clock: None,
        status: EmailStatus::Pending,
        attempts: 0,
        next_attempt_at: e.occurred_at,
        locked_until: None,
        subject: None,
        last_error: None,
        sent_at: None,
        created_at: e.created_at,
        updated_at: e.created_at,
    }
}

pub(crate) async fn email_settings_and_templates(h: &Harness) {
    let s = h.store.as_ref();
    let ws = WorkspaceId::from(h.ws.as_str());
    assert_eq!(s.get_email_settings(&ws).await.unwrap(), None);
    let first = settings(&h.ws, "2026-01-01T00:00:00.123456Z");
    s.put_email_settings(&first).await.unwrap();
    assert_eq!(
        s.get_email_settings(&ws).await.unwrap().as_ref(),
        Some(&first)
    );
    // Replaced: every field but the first time.
    let mut second = settings(&h.ws, "2026-02-01T00:00:00Z");
    second.brand_name = None;
    second.enabled = false;
    s.put_email_settings(&second).await.unwrap();
    let stored = s.get_email_settings(&ws).await.unwrap().unwrap();
    assert_eq!(stored.created_at, first.created_at);
    assert_eq!(stored.updated_at, second.updated_at);
    assert_eq!((stored.brand_name, stored.enabled), (None, false));

    assert!(s.list_email_templates(&ws).await.unwrap().is_empty());
    let mut t = EmailTemplateRecord {
        workspace: h.ws.clone(),
        template: "welcome".into(),
        subject: "Hi {{ customer.name }}".into(),
        text_body: "text".into(),
        html_body: "<p>html</p>".into(),
        updated_at: ts("2026-01-03T00:00:00Z"),
    };
    s.put_email_template(&t).await.unwrap();
    t.subject = "Hello".into();
    s.put_email_template(&t).await.unwrap();
    assert_eq!(
        s.get_email_template(&ws, "welcome").await.unwrap().as_ref(),
        Some(&t)
    );
    assert_eq!(s.list_email_templates(&ws).await.unwrap(), vec![t.clone()]);
    let other = WorkspaceId::from(h.other_workspace().await.as_str());
    assert_eq!(s.get_email_template(&other, "welcome").await.unwrap(), None);
    assert_eq!(s.get_email_settings(&other).await.unwrap(), None);
    assert!(s.delete_email_template(&ws, "welcome").await.unwrap());
    assert!(!s.delete_email_template(&ws, "welcome").await.unwrap());
    assert_eq!(s.get_email_template(&ws, "welcome").await.unwrap(), None);
}

pub(crate) async fn email_messages_are_enqueued_once_and_claimed_once(h: &Harness) {
    let s = h.store.as_ref();
    let ws = WorkspaceId::from(h.ws.as_str());
    s.create_test_clock(&TestClockRecord {
        workspace: h.ws.clone(),
        id: "clock_mail".into(),
        name: None,
        frozen_time: ts("2026-03-01T00:00:00Z"),
        created_at: ts("2026-03-01T00:00:00Z"),
    })
    .await
    .unwrap();
    let mut clocked = customer(&h.ws, "cus_clocked");
    clocked.test_clock = Some("clock_mail".into());
    s.create_customer(&clocked).await.unwrap();
    h.customer(&h.ws, "cus_wall").await;
    let first = event(
        &h.ws,
        Some("cus_clocked"),
        "usage.alert",
        "2026-03-01T00:00:00Z",
    );
    let second = event(
        &h.ws,
        Some("cus_wall"),
        "invoice.paid",
        "2026-03-01T00:00:01Z",
    );
    let third = event(
        &h.ws,
        None,
        "webhook_endpoint.disabled",
        "2026-03-01T00:00:02Z",
    );
    s.append_events(&ws, &[first.clone(), second.clone(), third.clone()])
        .await
        .unwrap();

    let unread = s.unemailed_events(&ws, 2).await.unwrap();
    assert_eq!(
        unread.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        vec![first.id.as_str(), second.id.as_str()],
        "oldest first, at most the limit"
    );
    let now = ts("2026-03-01T00:01:00Z");
    let mut m1 = message(&h.ws, &first, "cus_clocked@example.com");
    let m2 = message(&h.ws, &second, "cus_wall@example.com");
    let made = s
        .enqueue_emails(
            &ws,
            &[m1.clone(), m2.clone()],
            &[first.id.clone(), second.id.clone()],
            now,
        )
        .await
        .unwrap();
    assert_eq!(made, 2);
    // The same (event, recipient) again, under another id, by a second worker: nothing.
    let again = message(&h.ws, &first, "cus_clocked@example.com");
    assert_eq!(
        s.enqueue_emails(&ws, &[again], std::slice::from_ref(&first.id), now)
            .await
            .unwrap(),
        0
    );
    let unread = s.unemailed_events(&ws, 10).await.unwrap();
    assert_eq!(
        unread.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        vec![third.id.as_str()]
    );
    // An event read but emailed to nobody is marked all the same.
    s.enqueue_emails(&ws, &[], std::slice::from_ref(&third.id), now)
        .await
        .unwrap();
    assert!(s.unemailed_events(&ws, 10).await.unwrap().is_empty());

    let stored = s.get_email_message(&ws, &m1.id).await.unwrap().unwrap();
    assert_eq!(
        stored.test_clock.as_deref(),
        Some("clock_mail"),
        "the customer's clock"
    );
    assert_eq!((stored.status, stored.attempts), (EmailStatus::Pending, 0));
    assert_eq!(stored.created_at, now);
    m1.test_clock = Some("clock_mail".into());

    // Pending: the wall-clock one when due, the test-clock one always (its clock decides).
    let early = ts("2026-02-01T00:00:00Z");
    let pending = s.pending_email_messages(&ws, early, 10).await.unwrap();
    assert_eq!(
        pending.iter().map(|m| &m.id).collect::<Vec<_>>(),
        vec![&m1.id]
    );
    let pending = s.pending_email_messages(&ws, now, 10).await.unwrap();
    assert_eq!(pending.len(), 2);

    let lease = now + SignedDuration::from_secs(60);
    assert!(
        s.claim_email_message(&ws, &m2.id, now, lease)
            .await
            .unwrap()
    );
    assert!(
        !s.claim_email_message(&ws, &m2.id, now, lease)
            .await
            .unwrap(),
        "claimed once"
    );
    assert_eq!(
        s.pending_email_messages(&ws, now, 10).await.unwrap().len(),
        1
    );
    let retry_at = ts("2026-03-01T00:05:00Z");
    s.finish_email_message(&EmailOutcome {
        workspace: h.ws.clone(),
        id: m2.id.clone(),
        status: EmailStatus::Pending,
        next_attempt_at: retry_at,
        subject: Some("Payment received".into()),
        last_error: Some("451 try again".into()),
        sent_at: None,
        at: now,
    })
    .await
    .unwrap();
    let failed_once = s.get_email_message(&ws, &m2.id).await.unwrap().unwrap();
    assert_eq!(failed_once.attempts, 1);
    assert_eq!(failed_once.locked_until, None);
    assert_eq!(failed_once.next_attempt_at, retry_at);
    assert_eq!(failed_once.last_error.as_deref(), Some("451 try again"));
    // A lease that ran out lets another worker claim it again.
    let later = ts("2026-03-01T00:06:00Z");
    assert!(
        s.claim_email_message(&ws, &m2.id, later, later)
            .await
            .unwrap()
    );
    s.finish_email_message(&EmailOutcome {
        workspace: h.ws.clone(),
        id: m2.id.clone(),
        status: EmailStatus::Sent,
        next_attempt_at: retry_at,
        subject: None,
        last_error: None,
        sent_at: Some(later),
        at: later,
    })
    .await
    .unwrap();
    let sent = s.get_email_message(&ws, &m2.id).await.unwrap().unwrap();
    assert_eq!((sent.status, sent.attempts), (EmailStatus::Sent, 2));
    assert_eq!(sent.subject.as_deref(), Some("Payment received"), "kept");
    assert_eq!((sent.last_error, sent.sent_at), (None, Some(later)));
    assert!(
        !s.claim_email_message(&ws, &m2.id, later, lease)
            .await
            .unwrap(),
        "not pending"
    );

    let all = |customer: Option<&str>, status: Option<EmailStatus>, after: Option<&str>| {
        EmailMessageFilter {
            customer: customer.map(str::to_owned),
            status,
            starting_after: after.map(str::to_owned),
            limit: 10,
        }
    };
    let listed = s
        .list_email_messages(&ws, &all(None, None, None))
        .await
        .unwrap();
    assert_eq!(
        listed.iter().map(|m| &m.id).collect::<Vec<_>>(),
        vec![&m1.id, &m2.id]
    );
    let listed = s
        .list_email_messages(&ws, &all(Some("cus_wall"), None, None))
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    let listed = s
        .list_email_messages(&ws, &all(None, Some(EmailStatus::Pending), None))
        .await
        .unwrap();
    assert_eq!(
        listed.iter().map(|m| &m.id).collect::<Vec<_>>(),
        vec![&m1.id]
    );
    let listed = s
        .list_email_messages(&ws, &all(None, None, Some(&m1.id)))
        .await
        .unwrap();
    assert_eq!(
        listed.iter().map(|m| &m.id).collect::<Vec<_>>(),
        vec![&m2.id]
    );
    let other = WorkspaceId::from(h.other_workspace().await.as_str());
    assert!(
        s.list_email_messages(&other, &all(None, None, None))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(s.get_email_message(&other, &m1.id).await.unwrap(), None);
    assert_not_found(
        s.finish_email_message(&EmailOutcome {
            workspace: h.ws.clone(),
            id: "em_missing".into(),
            status: EmailStatus::Sent,
            next_attempt_at: now,
            subject: None,
            last_error: None,
            sent_at: Some(now),
            at: now,
        })
        .await,
        "email message",
    );
}
