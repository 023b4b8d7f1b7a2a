//! Cases for payments: settings replaced, one provider customer per customer, a payment
//! recorded once per reference, partial payments settling the invoice only when they cover it
//! (and never beyond), the paid flag of a saved payment method, provider events claimed once,
//! dunning written with its events, refunds once per credit note and payment.

use crate::Harness;
use crate::support::*;
use serde_json::json;
use tollgate_core::ids::{CustomerId, WorkspaceId};
use tollgate_store::StoreError;
use tollgate_store::billing::{InvoiceEffects, InvoiceStatus};
use tollgate_store::outbox::{OutboxEvent, OutboxFilter};
use tollgate_store::payments::*;

fn event(ws: &str, kind: &str) -> OutboxEvent {
    OutboxEvent {
        workspace: ws.to_owned(),
        id: fresh("evt"),
        customer: Some("cus_pay".into()),
        event_type: kind.to_owned(),
        occurred_at: ts("2026-02-02T00:00:00Z"),
        data: json!({}),
        created_at: ts("2026-02-02T00:00:00Z"),
        delivered_at: None,
        delivery_attempts: 0,
    }
}

fn payment(ws: &str, reference: &str, amount_minor: i64, status: PaymentStatus) -> PaymentRecord {
    PaymentRecord {
        workspace: ws.to_owned(),
        id: fresh("pay"),
        invoice: "inv_pay".into(),
        customer: "cus_pay".into(),
        provider: "manual".into(),
        status,
        amount_minor,
        currency: "EUR".into(),
        reference: reference.to_owned(),
        method: Some("bank_transfer".into()),
        failure_code: None,
        failure_message: None,
        created_at: ts("2026-02-02T00:00:00Z"),
    }
}

async fn count(h: &Harness, kind: &str) -> usize {
    let filter = OutboxFilter {
        event_type: Some(kind.to_owned()),
        limit: 100,
        ..Default::default()
    };
    h.store
        .list_domain_events(&WorkspaceId::from(h.ws.as_str()), &filter)
        .await
        .unwrap()
        .len()
}

pub(crate) async fn payments_settle_once_and_never_beyond_the_amount_due(h: &Harness) {
    let s = h.store.as_ref();
    let ws = WorkspaceId::from(h.ws.as_str());
    let cus = CustomerId::from("cus_pay");
    let without_method = tollgate_store::CustomerRecord {
        has_payment_method: false,
        ..customer(&h.ws, "cus_pay")
    };
    s.create_customer(&without_method).await.unwrap();
    let inv = invoice(&h.ws, "inv_pay", "cus_pay", "sub_p:close:2026-01");
    s.insert_invoice(&inv, &InvoiceEffects::default())
        .await
        .unwrap();

    // Settings: replaced whole, read back as written (secrets arrive sealed).
    assert_eq!(s.payment_settings(&ws).await.unwrap(), None);
    let mut settings = PaymentSettingsRecord {
        workspace: h.ws.clone(),
        stripe_secret_key: Some("sealed-key".into()),
        stripe_key_hint: Some("4242".into()),
        stripe_webhook_secret: None,
        manual_instructions: Some("IBAN FR76 ...".into()),
        updated_at: ts("2026-02-01T00:00:00Z"),
    };
    s.put_payment_settings(&settings).await.unwrap();
    settings.stripe_webhook_secret = Some("sealed-whsec".into());
    s.put_payment_settings(&settings).await.unwrap();
    assert_eq!(s.payment_settings(&ws).await.unwrap(), Some(settings));

    // One provider customer per customer: the first link stands.
    let link = ProviderCustomerRecord {
        workspace: h.ws.clone(),
        customer: "cus_pay".into(),
        provider: "stripe".into(),
        provider_customer: "cus_STRIPE1".into(),
        default_payment_method: None,
        created_at: ts("2026-02-01T00:00:00Z"),
        updated_at: ts("2026-02-01T00:00:00Z"),
    };
    assert_eq!(s.link_provider_customer(&link).await.unwrap(), link);
    let second = ProviderCustomerRecord {
        provider_customer: "cus_STRIPE2".into(),
        ..link.clone()
    };
    assert_eq!(s.link_provider_customer(&second).await.unwrap(), link);
    assert_eq!(
        s.provider_customer_by_ref(&ws, "stripe", "cus_STRIPE1")
            .await
            .unwrap(),
        Some(link.clone())
    );
    assert!(
        !s.get_customer(&ws, "cus_pay")
            .await
            .unwrap()
            .unwrap()
            .has_payment_method
    );
    let saved = s
        .set_default_payment_method(&ws, &cus, "stripe", "pm_1", ts("2026-02-01T01:00:00Z"))
        .await
        .unwrap();
    assert_eq!(saved.default_payment_method.as_deref(), Some("pm_1"));
    assert!(
        s.get_customer(&ws, "cus_pay")
            .await
            .unwrap()
            .unwrap()
            .has_payment_method
    );
    assert_not_found(
        s.set_default_payment_method(
            &ws,
            &CustomerId::from("cus_nobody"),
            "stripe",
            "pm_1",
            ts("2026-02-01T01:00:00Z"),
        )
        .await,
        "provider customer",
    );

    // A failed attempt settles nothing; a partial payment leaves the invoice open.
    let settle = |events: Vec<OutboxEvent>| Settle {
        amount_due_minor: 1_000,
        from: InvoiceStatus::Open,
        at: ts("2026-02-03T00:00:00Z"),
        events,
    };
    let failed = payment(&h.ws, "pi_failed", 1_000, PaymentStatus::Failed);
    let outcome = s
        .record_payment(
            &failed,
            Some(&settle(vec![])),
            &[event(&h.ws, "payment.failed")],
        )
        .await
        .unwrap();
    assert!(matches!(
        outcome,
        PaymentOutcome::Recorded { paid: None, .. }
    ));
    let part = payment(&h.ws, "TRANSFER-1", 400, PaymentStatus::Succeeded);
    let outcome = s
        .record_payment(
            &part,
            Some(&settle(vec![event(&h.ws, "invoice.paid")])),
            &[],
        )
        .await
        .unwrap();
    assert!(matches!(
        outcome,
        PaymentOutcome::Recorded { paid: None, .. }
    ));
    assert_eq!(count(h, "invoice.paid").await, 0);
    // The same reference again: the stored payment, nothing written.
    let again = PaymentRecord {
        id: fresh("pay"),
        ..part.clone()
    };
    assert_eq!(
        s.record_payment(
            &again,
            Some(&settle(vec![])),
            &[event(&h.ws, "payment.succeeded")]
        )
        .await
        .unwrap(),
        PaymentOutcome::Duplicate(part.clone())
    );
    assert_eq!(count(h, "payment.succeeded").await, 0);
    // Beyond what is owed: refused, nothing written.
    let too_much = payment(&h.ws, "TRANSFER-2", 700, PaymentStatus::Succeeded);
    match s
        .record_payment(&too_much, Some(&settle(vec![])), &[])
        .await
    {
        Err(StoreError::Invalid { code, .. }) => {
            assert_eq!(code.as_str(), "payment_exceeds_amount_due")
        }
        other => panic!("expected payment_exceeds_amount_due, got {other:?}"),
    }
    // The rest: the invoice is paid with its event, in the same transaction.
    let rest = payment(&h.ws, "TRANSFER-3", 600, PaymentStatus::Succeeded);
    let outcome = s
        .record_payment(
            &rest,
            Some(&settle(vec![event(&h.ws, "invoice.paid")])),
            &[],
        )
        .await
        .unwrap();
    let PaymentOutcome::Recorded {
        paid: Some(paid), ..
    } = outcome
    else {
        panic!("expected the invoice paid, got {outcome:?}");
    };
    assert_eq!(paid.status, InvoiceStatus::Paid);
    assert_eq!(paid.paid_at, Some(ts("2026-02-03T00:00:00Z")));
    assert_eq!(count(h, "invoice.paid").await, 1);
    let all = s.list_payments(&ws, "inv_pay").await.unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(s.provider_payments(&ws, "manual").await.unwrap(), all);
    assert!(s.provider_payments(&ws, "stripe").await.unwrap().is_empty());
    assert_eq!(
        s.payment_by_reference(&ws, "manual", "TRANSFER-3")
            .await
            .unwrap(),
        Some(rest.clone())
    );
    // A payment of an unknown invoice.
    let orphan = PaymentRecord {
        invoice: "inv_nope".into(),
        ..payment(&h.ws, "TRANSFER-9", 1, PaymentStatus::Succeeded)
    };
    assert_not_found(s.record_payment(&orphan, None, &[]).await, "invoice");

    // Provider events: claimed once, claimable again once released.
    let at = ts("2026-02-03T00:00:00Z");
    assert!(
        s.claim_provider_event(&ws, "stripe", "evt_1", "charge.refunded", at)
            .await
            .unwrap()
    );
    assert!(
        !s.claim_provider_event(&ws, "stripe", "evt_1", "charge.refunded", at)
            .await
            .unwrap()
    );
    s.release_provider_event(&ws, "stripe", "evt_1")
        .await
        .unwrap();
    assert!(
        s.claim_provider_event(&ws, "stripe", "evt_1", "charge.refunded", at)
            .await
            .unwrap()
    );

    // Dunning: inserted, then replaced, with its events.
    let mut dunning = DunningRecord {
        workspace: h.ws.clone(),
        invoice: "inv_pay".into(),
        customer: "cus_pay".into(),
        subscription: Some("sub_p".into()),
        status: DunningStatus::Retrying,
        failures: 1,
        next_retry_at: Some(ts("2026-02-04T00:00:00Z")),
        suspended: false,
        started_at: at,
        updated_at: at,
    };
    s.put_dunning(&dunning, &[event(&h.ws, "invoice.payment_failed")])
        .await
        .unwrap();
    dunning.status = DunningStatus::Exhausted;
    dunning.failures = 4;
    dunning.next_retry_at = None;
    dunning.suspended = true;
    s.put_dunning(&dunning, &[]).await.unwrap();
    assert_eq!(s.dunning(&ws, "inv_pay").await.unwrap(), Some(dunning));
    assert_eq!(count(h, "invoice.payment_failed").await, 1);

    // Refunds: once per credit note and payment.
    let refund = RefundRecord {
        workspace: h.ws.clone(),
        id: fresh("rf"),
        credit_note: "cn_1".into(),
        invoice: "inv_pay".into(),
        payment: rest.id.clone(),
        provider: "manual".into(),
        status: RefundStatus::Succeeded,
        amount_minor: 600,
        currency: "EUR".into(),
        provider_refund: None,
        failure_message: None,
        created_at: at,
    };
    s.insert_refund(&refund, &[]).await.unwrap();
    let twice = RefundRecord {
        id: fresh("rf"),
        ..refund.clone()
    };
    assert_exists(s.insert_refund(&twice, &[]).await, "refund", "cn_1");
    assert_eq!(
        s.list_refunds(&ws, "inv_pay").await.unwrap(),
        vec![refund.clone()]
    );

    // A failed refund retried: replaced once with its events; a refund not failed (or not
    // there) is refused; listed per provider.
    let failed = RefundRecord {
        id: fresh("rf"),
        credit_note: "cn_2".into(),
        provider: "stripe".into(),
        status: RefundStatus::Failed,
        failure_message: Some("stripe could not be reached".into()),
        ..refund.clone()
    };
    s.insert_refund(&failed, &[]).await.unwrap();
    assert_eq!(
        s.get_refund(&ws, &failed.id).await.unwrap(),
        Some(failed.clone())
    );
    let retried = RefundRecord {
        status: RefundStatus::Succeeded,
        provider_refund: Some("re_1".into()),
        failure_message: None,
        ..failed.clone()
    };
    s.retry_refund(&retried, &[event(&h.ws, "payment.refunded")])
        .await
        .unwrap();
    assert_eq!(
        s.get_refund(&ws, &failed.id).await.unwrap(),
        Some(retried.clone())
    );
    assert_eq!(count(h, "payment.refunded").await, 1);
    assert!(matches!(
        s.retry_refund(&retried, &[event(&h.ws, "payment.refunded")])
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        count(h, "payment.refunded").await,
        1,
        "nothing written by a refused retry"
    );
    let ghost = RefundRecord {
        id: fresh("rf"),
        ..retried.clone()
    };
    assert!(matches!(
        s.retry_refund(&ghost, &[]).await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(
        s.provider_refunds(&ws, "stripe").await.unwrap(),
        vec![retried]
    );
    assert_eq!(
        s.provider_refunds(&ws, "manual").await.unwrap(),
        vec![refund]
    );

    // Another workspace sees none of it.
    let other = WorkspaceId::from(h.other_workspace().await.as_str());
    assert_eq!(s.payment_settings(&other).await.unwrap(), None);
    assert!(s.list_payments(&other, "inv_pay").await.unwrap().is_empty());
    assert_eq!(s.dunning(&other, "inv_pay").await.unwrap(), None);
    assert!(
        s.provider_refunds(&other, "stripe")
            .await
            .unwrap()
            .is_empty()
    );
}

/// Stripe as the biller: the switch made once with its cursor at that time (a later switch
/// keeps the cursor), the events after the cursor in `(received_at, id)` order up to `until`,
/// the cursor moved only from where it is (two passes never both move it), another workspace's
/// events never read; an invoice's payment link replaced by the next one.
pub(crate) async fn stripe_billing_cursor_moves_once_and_links_are_replaced(h: &Harness) {
    let s = h.store.as_ref();
    let ws = WorkspaceId::from(h.ws.as_str());
    assert_eq!(s.stripe_billing(&ws).await.unwrap(), None);
    let on = s
        .set_stripe_biller(&ws, true, ts("2026-01-02T00:00:00Z"))
        .await
        .unwrap();
    assert!(on.enabled);
    assert_eq!(on.cursor_received_at, ts("2026-01-02T00:00:00Z"));
    assert_eq!((on.cursor_event.as_str(), on.pushed), ("", 0));
    let off = s
        .set_stripe_biller(&ws, false, ts("2026-01-09T00:00:00Z"))
        .await
        .unwrap();
    assert!(!off.enabled);
    assert_eq!(
        off.cursor_received_at, on.cursor_received_at,
        "the cursor stays"
    );
    s.set_stripe_biller(&ws, true, ts("2026-01-10T00:00:00Z"))
        .await
        .unwrap();

    h.customer(&h.ws, "cus_meter").await;
    let mut batch = Vec::new();
    for (id, at) in [
        ("before", "2026-01-01T00:00:00Z"),
        ("b", "2026-01-03T00:00:00Z"),
        ("a", "2026-01-03T00:00:00Z"),
        ("c", "2026-01-04T00:00:00Z"),
        ("late", "2026-01-20T00:00:00Z"),
    ] {
        let mut it = item(&h.ws, id, "cus_meter", vec![]);
        it.event.received_at = ts(at);
        batch.push(it);
    }
    h.ingest(&h.ws, &batch).await;
    let other = h.other_workspace().await;
    h.customer(&other, "cus_meter").await;
    let mut stray = item(&other, "x", "cus_meter", vec![]);
    stray.event.received_at = ts("2026-01-03T00:00:00Z");
    h.ingest(&other, &[stray]).await;

    let start = (on.cursor_received_at, "");
    let until = ts("2026-01-10T00:00:00Z");
    let ids = |events: Vec<tollgate_store::EventRecord>| {
        events.into_iter().map(|e| e.id).collect::<Vec<_>>()
    };
    let page = s.usage_events_after(&ws, start, until, 2).await.unwrap();
    assert_eq!(ids(page), ["a", "b"]);
    let after_a = (ts("2026-01-03T00:00:00Z"), "a");
    let rest = s.usage_events_after(&ws, after_a, until, 10).await.unwrap();
    assert_eq!(
        ids(rest),
        ["b", "c"],
        "the same time, a later id; `late` is beyond `until`"
    );

    let to = (ts("2026-01-03T00:00:00Z"), "b");
    let at = ts("2026-01-10T00:00:01Z");
    assert!(s.advance_meter_cursor(&ws, start, to, 2, at).await.unwrap());
    assert!(
        !s.advance_meter_cursor(&ws, start, to, 2, at).await.unwrap(),
        "a second pass from the old cursor moves nothing"
    );
    let moved = s.stripe_billing(&ws).await.unwrap().unwrap();
    assert_eq!(
        (
            moved.cursor_received_at,
            moved.cursor_event.as_str(),
            moved.pushed
        ),
        (to.0, "b", 2)
    );
    let left = s.usage_events_after(&ws, to, until, 10).await.unwrap();
    assert_eq!(ids(left), ["c"]);

    // Payment links: one per invoice, replaced; an unknown invoice refused.
    let inv = invoice(&h.ws, "inv_link", "cus_meter", "sub_l:close:2026-01");
    s.insert_invoice(&inv, &InvoiceEffects::default())
        .await
        .unwrap();
    assert_eq!(s.payment_link(&ws, "inv_link").await.unwrap(), None);
    let mut link = PaymentLinkRecord {
        workspace: h.ws.clone(),
        invoice: "inv_link".into(),
        provider: "stripe".into(),
        kind: PaymentLinkKind::Authenticate,
        reference: "pi_1".into(),
        url: "https://hooks.stripe.com/3d_secure/pi_1".into(),
        created_at: ts("2026-01-10T00:00:00Z"),
    };
    s.put_payment_link(&link).await.unwrap();
    assert_eq!(
        s.payment_link(&ws, "inv_link").await.unwrap(),
        Some(link.clone())
    );
    link.kind = PaymentLinkKind::Checkout;
    link.reference = "cs_2".into();
    link.url = "https://checkout.stripe.com/c/pay/cs_2".into();
    s.put_payment_link(&link).await.unwrap();
    assert_eq!(
        s.payment_link(&ws, "inv_link").await.unwrap(),
        Some(link.clone())
    );
    let other_ws = WorkspaceId::from(other.as_str());
    assert_eq!(s.payment_link(&other_ws, "inv_link").await.unwrap(), None);
    link.invoice = "inv_none".into();
    assert!(s.put_payment_link(&link).await.is_err());
}
