//! Cases for the money documents of `BillingStore`: invoices with gapless numbers and their
//! effects, status changes, credit notes, prepaid credit, coupons, pending charges (prorations),
//! scheduled plan changes, and the bill run's worklists.

use crate::Harness;
use crate::support::*;
use std::collections::BTreeSet;
use tollgate_core::ids::{CustomerId, WorkspaceId};
use tollgate_store::billing::*;
use tollgate_store::*;

fn created(outcome: InvoiceInsert) -> InvoiceRecord {
    match outcome {
        InvoiceInsert::Created(inv) => inv,
        other => panic!("expected Created, got {other:?}"),
    }
}

fn assert_conflict<T: std::fmt::Debug>(r: Result<T, StoreError>) {
    match r {
        Err(StoreError::Conflict(_)) => {}
        other => panic!("expected Conflict, got {other:?}"),
    }
}

fn assert_invalid<T: std::fmt::Debug>(r: Result<T, StoreError>, want_code: &str) {
    match r {
        Err(StoreError::Invalid { code, .. }) => assert_eq!(code.as_str(), want_code),
        other => panic!("expected Invalid {{ code: {want_code:?} }}, got {other:?}"),
    }
}

pub(crate) async fn invoices_are_numbered_gapless_and_deduped(h: &Harness) {
    let s = h.store.as_ref();
    let ws = &h.ws;
    h.customer(ws, "cus_a").await;
    h.customer(ws, "cus_b").await;
    let none = InvoiceEffects::default();

    let first = invoice(ws, "inv_1", "cus_a", "sub_1:close:2026-01");
    let stored = created(s.insert_invoice(&first, &none).await.unwrap());
    assert_eq!(stored.number, 1, "the number given is ignored and assigned");
    assert_eq!(
        s.get_invoice(&WorkspaceId::from(ws), "inv_1")
            .await
            .unwrap(),
        Some(stored.clone())
    );

    // The same dedupe key again: the stored invoice, untouched, and no number used up.
    let again = InvoiceRecord {
        id: "inv_again".into(),
        total_minor: 1,
        ..first.clone()
    };
    assert_eq!(
        s.insert_invoice(&again, &none).await.unwrap(),
        InvoiceInsert::Exists(stored.clone())
    );
    assert_eq!(
        s.get_invoice(&WorkspaceId::from(ws), "inv_again")
            .await
            .unwrap(),
        None
    );

    // A refused insert gives its number back.
    let orphan = invoice(ws, "inv_x", "cus_missing", "orphan");
    assert_not_found(s.insert_invoice(&orphan, &none).await, "customer");
    let twin_id = invoice(ws, "inv_1", "cus_a", "another key");
    assert_exists(s.insert_invoice(&twin_id, &none).await, "invoice", "inv_1");

    let second = created(
        s.insert_invoice(&invoice(ws, "inv_2", "cus_b", "sub_2:close:2026-01"), &none)
            .await
            .unwrap(),
    );
    let third = created(
        s.insert_invoice(&invoice(ws, "inv_3", "cus_a", "sub_1:close:2026-02"), &none)
            .await
            .unwrap(),
    );
    assert_eq!((second.number, third.number), (2, 3));

    assert_eq!(
        s.list_invoices(&WorkspaceId::from(ws), &CustomerId::from("cus_a"))
            .await
            .unwrap(),
        vec![stored, third]
    );
    assert_eq!(
        s.list_invoices(&WorkspaceId::from(ws), &CustomerId::from("cus_none"))
            .await
            .unwrap(),
        vec![]
    );
    assert_eq!(
        s.invoice_keys(&WorkspaceId::from(ws), "sub_1")
            .await
            .unwrap(),
        vec!["sub_1:close:2026-01", "sub_1:close:2026-02"]
    );
    assert_eq!(
        s.invoice_keys(&WorkspaceId::from(ws), "sub_none")
            .await
            .unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(
        s.get_invoice(&WorkspaceId::from(ws), "inv_none")
            .await
            .unwrap(),
        None
    );
}

pub(crate) async fn invoice_batches_are_one_transaction(h: &Harness) {
    let s = h.store.as_ref();
    let ws = &h.ws;
    h.customer(ws, "cus_a").await;
    let none = InvoiceEffects::default();
    let existing = created(
        s.insert_invoice(&invoice(ws, "inv_0", "cus_a", "k0"), &none)
            .await
            .unwrap(),
    );

    let batch: Vec<_> = ["k1", "k0", "k2"]
        .iter()
        .enumerate()
        .map(|(i, key)| {
            (
                invoice(ws, &format!("inv_b{i}"), "cus_a", key),
                none.clone(),
            )
        })
        .collect();
    let outcomes = s
        .insert_invoices(&WorkspaceId::from(ws), &batch)
        .await
        .unwrap();
    assert_eq!(outcomes.len(), 3);
    assert_eq!(created(outcomes[0].clone()).number, 2);
    assert_eq!(outcomes[1], InvoiceInsert::Exists(existing));
    assert_eq!(created(outcomes[2].clone()).number, 3);
    assert_eq!(
        s.insert_invoices(&WorkspaceId::from(ws), &[])
            .await
            .unwrap(),
        vec![]
    );

    // One invoice of a batch fails (its credit is not there): none of the batch is stored, no
    // number is used up.
    let broke = InvoiceEffects {
        balance_used_minor: 0,
        credit_used_minor: 500,
        ..none.clone()
    };
    let batch = vec![
        (invoice(ws, "inv_c1", "cus_a", "k3"), none.clone()),
        (invoice(ws, "inv_c2", "cus_a", "k4"), broke),
    ];
    assert_conflict(s.insert_invoices(&WorkspaceId::from(ws), &batch).await);
    assert_eq!(
        s.get_invoice(&WorkspaceId::from(ws), "inv_c1")
            .await
            .unwrap(),
        None
    );
    let next = created(
        s.insert_invoice(&invoice(ws, "inv_4", "cus_a", "k3"), &none)
            .await
            .unwrap(),
    );
    assert_eq!(next.number, 4);
    let numbers: Vec<i64> = s
        .list_invoices(&WorkspaceId::from(ws), &CustomerId::from("cus_a"))
        .await
        .unwrap()
        .iter()
        .map(|i| i.number)
        .collect();
    assert_eq!(numbers, vec![1, 2, 3, 4]);
}

pub(crate) async fn invoice_numbers_are_gapless_under_concurrency(h: &Harness) {
    h.customer(&h.ws, "cus_a").await;
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let store = h.store.clone();
            let ws = h.ws.clone();
            tokio::spawn(async move {
                // Every other task races for the same key as its neighbour.
                let key = format!("k{}", i / 2);
                let inv = invoice(&ws, &format!("inv_{i}"), "cus_a", &key);
                store
                    .insert_invoice(&inv, &InvoiceEffects::default())
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut numbers = BTreeSet::new();
    for t in tasks {
        if let InvoiceInsert::Created(inv) = t.await.unwrap() {
            assert!(numbers.insert(inv.number), "number {} twice", inv.number);
        }
    }
    assert_eq!(numbers, (1..=8).collect::<BTreeSet<i64>>());
    assert_eq!(
        h.store
            .list_invoices(&WorkspaceId::from(&h.ws), &CustomerId::from("cus_a"))
            .await
            .unwrap()
            .len(),
        8
    );
}

pub(crate) async fn invoice_effects_are_applied_with_it(h: &Harness) {
    let s = h.store.as_ref();
    let ws = &h.ws;
    h.customer(ws, "cus_a").await;
    s.add_credit_entry(&credit(ws, "cr_1", "cus_a", 1_000))
        .await
        .unwrap();
    for id in ["pc_1", "pc_2"] {
        s.add_pending_charge(&pending_charge(ws, id, "cus_a", "2026-01-03T00:00:00Z"))
            .await
            .unwrap();
    }
    s.add_coupon_redemption(&redemption(ws, "red_1", "cus_a"))
        .await
        .unwrap();

    let effects = InvoiceEffects {
        balance_used_minor: 0,
        credit_used_minor: 400,
        pending_charges: vec!["pc_1".into()],
        coupon_redemptions: vec!["red_1".into()],
        events: vec![],
    };
    let inv = created(
        s.insert_invoice(&invoice(ws, "inv_1", "cus_a", "k1"), &effects)
            .await
            .unwrap(),
    );
    assert_eq!(
        s.credit_balance(&WorkspaceId::from(ws), &CustomerId::from("cus_a"))
            .await
            .unwrap(),
        600
    );
    let left: Vec<String> = s
        .pending_charges(&WorkspaceId::from(ws), &CustomerId::from("cus_a"))
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(left, vec!["pc_2"], "the billed charge is no longer pending");
    assert_eq!(
        s.coupon_redemptions(&WorkspaceId::from(ws), &CustomerId::from("cus_a"))
            .await
            .unwrap()[0]
            .applied,
        1
    );

    // Not enough credit: refused, and nothing of it is written.
    let greedy = InvoiceEffects {
        balance_used_minor: 0,
        credit_used_minor: 601,
        pending_charges: vec!["pc_2".into()],
        coupon_redemptions: vec!["red_1".into()],
        events: vec![],
    };
    assert_conflict(
        s.insert_invoice(&invoice(ws, "inv_2", "cus_a", "k2"), &greedy)
            .await,
    );
    assert_eq!(
        s.credit_balance(&WorkspaceId::from(ws), &CustomerId::from("cus_a"))
            .await
            .unwrap(),
        600
    );
    assert_eq!(
        s.pending_charges(&WorkspaceId::from(ws), &CustomerId::from("cus_a"))
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        s.coupon_redemptions(&WorkspaceId::from(ws), &CustomerId::from("cus_a"))
            .await
            .unwrap()[0]
            .applied,
        1
    );
    assert_eq!(
        s.get_invoice(&WorkspaceId::from(ws), "inv_2")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        s.get_invoice(&WorkspaceId::from(ws), "inv_1")
            .await
            .unwrap(),
        Some(inv)
    );
}

pub(crate) async fn invoice_status_moves_by_compare_and_set(h: &Harness) {
    let s = h.store.as_ref();
    let ws = &h.ws;
    h.customer(ws, "cus_a").await;
    let none = InvoiceEffects::default();
    for (id, key) in [("inv_1", "k1"), ("inv_2", "k2")] {
        s.insert_invoice(&invoice(ws, id, "cus_a", key), &none)
            .await
            .unwrap();
    }
    let paid_at = ts("2026-02-03T04:05:06.000007Z");
    let paid = s
        .set_invoice_status(
            &WorkspaceId::from(ws),
            "inv_1",
            InvoiceStatus::Open,
            InvoiceStatus::Paid,
            paid_at,
        )
        .await
        .unwrap();
    assert_eq!(paid.status, InvoiceStatus::Paid);
    assert_eq!(paid.paid_at, Some(paid_at));
    assert_eq!(paid.voided_at, None);
    assert_eq!(
        s.get_invoice(&WorkspaceId::from(ws), "inv_1")
            .await
            .unwrap(),
        Some(paid)
    );

    // Not in the expected status any more: a conflict, and nothing changes.
    assert_conflict(
        s.set_invoice_status(
            &WorkspaceId::from(ws),
            "inv_1",
            InvoiceStatus::Open,
            InvoiceStatus::Void,
            paid_at,
        )
        .await,
    );
    assert_not_found(
        s.set_invoice_status(
            &WorkspaceId::from(ws),
            "inv_none",
            InvoiceStatus::Open,
            InvoiceStatus::Paid,
            paid_at,
        )
        .await,
        "invoice",
    );
    let voided_at = ts("2026-02-04T00:00:00Z");
    let void = s
        .set_invoice_status(
            &WorkspaceId::from(ws),
            "inv_2",
            InvoiceStatus::Open,
            InvoiceStatus::Void,
            voided_at,
        )
        .await
        .unwrap();
    assert_eq!((void.paid_at, void.voided_at), (None, Some(voided_at)));
    let bad = s
        .set_invoice_status(
            &WorkspaceId::from(ws),
            "inv_2",
            InvoiceStatus::Void,
            InvoiceStatus::Uncollectible,
            voided_at,
        )
        .await
        .unwrap();
    assert_eq!(bad.status, InvoiceStatus::Uncollectible);
    assert_eq!(bad.voided_at, Some(voided_at), "earlier times are kept");
}

pub(crate) async fn credit_notes_are_numbered_and_bounded(h: &Harness) {
    let s = h.store.as_ref();
    let ws = &h.ws;
    h.customer(ws, "cus_a").await;
    let none = InvoiceEffects::default();
    for (id, key) in [("inv_1", "k1"), ("inv_2", "k2")] {
        s.insert_invoice(&invoice(ws, id, "cus_a", key), &none)
            .await
            .unwrap();
    }
    let total = 1_000;
    let a = s
        .insert_credit_note(&credit_note(ws, "cn_1", "inv_1", 600), total)
        .await
        .unwrap();
    let b = s
        .insert_credit_note(&credit_note(ws, "cn_2", "inv_2", 50), total)
        .await
        .unwrap();
    assert_eq!((a.number, b.number), (1, 2), "one sequence per workspace");
    // Beyond the invoice total: refused, and its number is not used up.
    assert_conflict(
        s.insert_credit_note(&credit_note(ws, "cn_3", "inv_1", 401), total)
            .await,
    );
    let c = s
        .insert_credit_note(&credit_note(ws, "cn_4", "inv_1", 400), total)
        .await
        .unwrap();
    assert_eq!(c.number, 3);
    assert_eq!(
        s.list_credit_notes(&WorkspaceId::from(ws), "inv_1")
            .await
            .unwrap(),
        vec![a, c]
    );
    assert_eq!(
        s.list_credit_notes(&WorkspaceId::from(ws), "inv_2")
            .await
            .unwrap(),
        vec![b]
    );
    assert_eq!(
        s.list_credit_notes(&WorkspaceId::from(ws), "inv_none")
            .await
            .unwrap(),
        vec![]
    );
    assert_not_found(
        s.insert_credit_note(&credit_note(ws, "cn_5", "inv_none", 1), total)
            .await,
        "invoice",
    );
    assert_invalid(
        s.insert_credit_note(&credit_note(ws, "cn_6", "inv_2", 0), total)
            .await,
        "invalid_amount",
    );
}

/// An amount near `i64::MAX` must not wrap around the limit: the sum of the notes is checked,
/// and its overflow is an error of its own.
pub(crate) async fn credit_note_sums_do_not_overflow(h: &Harness) {
    let s = h.store.as_ref();
    let ws = &h.ws;
    h.customer(ws, "cus_a").await;
    s.insert_invoice(
        &invoice(ws, "inv_1", "cus_a", "k1"),
        &InvoiceEffects::default(),
    )
    .await
    .unwrap();
    let total = 1_000;
    s.insert_credit_note(&credit_note(ws, "cn_1", "inv_1", 100), total)
        .await
        .unwrap();
    assert_invalid(
        s.insert_credit_note(&credit_note(ws, "cn_2", "inv_1", i64::MAX), total)
            .await,
        "amount_overflow",
    );
    assert_invalid(
        s.insert_credit_note(&credit_note(ws, "cn_3", "inv_1", i64::MAX - 50), total)
            .await,
        "amount_overflow",
    );
    let notes = s
        .list_credit_notes(&WorkspaceId::from(ws), "inv_1")
        .await
        .unwrap();
    assert_eq!(notes.len(), 1, "nothing stored: {notes:?}");
}

/// Concurrent credit notes of one invoice cannot together exceed its total: each sees the notes
/// committed before it.
pub(crate) async fn concurrent_credit_notes_stay_within_the_total(h: &Harness) {
    h.customer(&h.ws, "cus_a").await;
    h.store
        .insert_invoice(
            &invoice(&h.ws, "inv_1", "cus_a", "k1"),
            &InvoiceEffects::default(),
        )
        .await
        .unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = h.store.clone();
            let ws = h.ws.clone();
            tokio::spawn(async move {
                let note = credit_note(&ws, &format!("cn_{i}"), "inv_1", 400);
                store.insert_credit_note(&note, 1_000).await
            })
        })
        .collect();
    let mut accepted = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => accepted += 1,
            Err(StoreError::Conflict(_)) => {}
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!(
        accepted, 2,
        "two notes of 400 fit in 1,000, a third does not"
    );
    let notes = h
        .store
        .list_credit_notes(&WorkspaceId::from(&h.ws), "inv_1")
        .await
        .unwrap();
    let numbers: Vec<i64> = notes.iter().map(|n| n.number).collect();
    assert_eq!(numbers, vec![1, 2], "refused notes give their numbers back");
}

pub(crate) async fn credit_ledger_and_balance(h: &Harness) {
    let s = h.store.as_ref();
    let ws = &h.ws;
    assert_eq!(
        s.credit_balance(&WorkspaceId::from(ws), &CustomerId::from("cus_a"))
            .await
            .unwrap(),
        0
    );
    s.add_credit_entry(&credit(ws, "cr_1", "cus_a", 700))
        .await
        .unwrap();
    s.add_credit_entry(&credit(ws, "cr_2", "cus_a", -200))
        .await
        .unwrap();
    s.add_credit_entry(&credit(ws, "cr_3", "cus_b", 5))
        .await
        .unwrap();
    assert_eq!(
        s.credit_balance(&WorkspaceId::from(ws), &CustomerId::from("cus_a"))
            .await
            .unwrap(),
        500
    );
    assert_eq!(
        s.credit_balance(&WorkspaceId::from(ws), &CustomerId::from("cus_b"))
            .await
            .unwrap(),
        5
    );
    assert_exists(
        s.add_credit_entry(&credit(ws, "cr_1", "cus_a", 1)).await,
        "credit entry",
        "cr_1",
    );
    // A balance beyond 64 bits is refused before it is stored.
    s.add_credit_entry(&credit(ws, "cr_big", "cus_b", i64::MAX - 5))
        .await
        .unwrap();
    assert_invalid(
        s.add_credit_entry(&credit(ws, "cr_more", "cus_b", 1)).await,
        "amount_overflow",
    );
    assert_eq!(
        s.credit_balance(&WorkspaceId::from(ws), &CustomerId::from("cus_b"))
            .await
            .unwrap(),
        i64::MAX
    );
}

/// Concurrent grants cannot together take a balance beyond 64 bits, nor concurrent invoices
/// use the same credit twice: each sees the ledger entries committed before it.
pub(crate) async fn concurrent_credit_stays_in_range(h: &Harness) {
    h.customer(&h.ws, "cus_a").await;
    let quarter = i64::MAX / 4 + 1;
    let grants: Vec<_> = (0..8)
        .map(|i| {
            let store = h.store.clone();
            let ws = h.ws.clone();
            tokio::spawn(async move {
                let entry = credit(&ws, &format!("cr_{i}"), "cus_b", quarter);
                store.add_credit_entry(&entry).await
            })
        })
        .collect();
    let mut accepted = 0;
    for t in grants {
        match t.await.unwrap() {
            Ok(()) => accepted += 1,
            Err(StoreError::Invalid { .. }) => {}
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!(
        accepted, 3,
        "three quarters fit in an i64, a fourth does not"
    );
    assert_eq!(
        h.store
            .credit_balance(&WorkspaceId::from(&h.ws), &CustomerId::from("cus_b"))
            .await
            .unwrap(),
        3 * quarter
    );

    h.store
        .add_credit_entry(&credit(&h.ws, "cr_a", "cus_a", 1_000))
        .await
        .unwrap();
    let uses: Vec<_> = (0..8)
        .map(|i| {
            let store = h.store.clone();
            let ws = h.ws.clone();
            tokio::spawn(async move {
                let inv = invoice(&ws, &format!("inv_{i}"), "cus_a", &format!("k{i}"));
                let effects = InvoiceEffects {
                    balance_used_minor: 0,
                    credit_used_minor: 400,
                    ..InvoiceEffects::default()
                };
                store.insert_invoice(&inv, &effects).await
            })
        })
        .collect();
    let mut billed = 0;
    for t in uses {
        match t.await.unwrap() {
            Ok(_) => billed += 1,
            Err(StoreError::Conflict(_)) => {}
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!(billed, 2, "1,000 of credit covers two uses of 400");
    assert_eq!(
        h.store
            .credit_balance(&WorkspaceId::from(&h.ws), &CustomerId::from("cus_a"))
            .await
            .unwrap(),
        200
    );
}

pub(crate) async fn coupon_redemptions(h: &Harness) {
    let s = h.store.as_ref();
    let ws = &h.ws;
    let mut later = redemption(ws, "red_2", "cus_a");
    later.created_at = ts("2026-01-09T00:00:00Z");
    later.applied = 2;
    s.add_coupon_redemption(&later).await.unwrap();
    let first = redemption(ws, "red_1", "cus_a");
    s.add_coupon_redemption(&first).await.unwrap();
    s.add_coupon_redemption(&redemption(ws, "red_3", "cus_b"))
        .await
        .unwrap();
    assert_eq!(
        s.coupon_redemptions(&WorkspaceId::from(ws), &CustomerId::from("cus_a"))
            .await
            .unwrap(),
        vec![first.clone(), later],
        "oldest first"
    );
    assert_eq!(
        s.coupon_redemptions(&WorkspaceId::from(ws), &CustomerId::from("cus_none"))
            .await
            .unwrap(),
        vec![]
    );
    assert_exists(
        s.add_coupon_redemption(&first).await,
        "coupon redemption",
        "red_1",
    );
}

pub(crate) async fn pending_charges_wait_for_an_invoice(h: &Harness) {
    let s = h.store.as_ref();
    let ws = &h.ws;
    h.customer(ws, "cus_a").await;
    let late = pending_charge(ws, "pc_late", "cus_a", "2026-01-20T00:00:00Z");
    let early = pending_charge(ws, "pc_early", "cus_a", "2026-01-10T00:00:00.000001Z");
    let other = pending_charge(ws, "pc_b", "cus_b", "2026-01-10T00:00:00Z");
    for c in [&late, &early, &other] {
        s.add_pending_charge(c).await.unwrap();
    }
    let billed = PendingChargeRecord {
        invoice: Some("inv_old".into()),
        ..pending_charge(ws, "pc_billed", "cus_a", "2026-01-01T00:00:00Z")
    };
    s.add_pending_charge(&billed).await.unwrap();
    assert_eq!(
        s.pending_charges(&WorkspaceId::from(ws), &CustomerId::from("cus_a"))
            .await
            .unwrap(),
        vec![early.clone(), late],
        "oldest first, billed ones left out"
    );
    assert_exists(
        s.add_pending_charge(&early).await,
        "pending charge",
        "pc_early",
    );
    assert_eq!(
        s.pending_charges(&WorkspaceId::from(ws), &CustomerId::from("cus_b"))
            .await
            .unwrap(),
        vec![other]
    );
}

/// A plan change writes the subscription and its prorations together or not at all: a charge
/// that cannot be written (its id is taken) leaves the subscription as it was.
pub(crate) async fn plan_changes_are_all_or_nothing(h: &Harness) {
    let s = h.store.as_ref();
    let ws = &h.ws;
    h.customer(ws, "cus_a").await;
    let before = subscription(ws, "sub_1", "cus_a", "2026-01-01T00:00:00Z");
    s.create_subscription(&before).await.unwrap();
    let taken = pending_charge(ws, "pc_taken", "cus_a", "2026-01-05T00:00:00Z");
    s.add_pending_charge(&taken).await.unwrap();
    let after = SubscriptionRecord {
        plan: "enterprise".into(),
        catalog_version: 2,
        status: SubscriptionStatus::Active,
        ..before.clone()
    };
    let fresh = pending_charge(ws, "pc_new", "cus_a", "2026-01-15T00:00:00Z");
    assert_exists(
        s.change_subscription(&after, &[fresh.clone(), taken.clone()])
            .await,
        "pending charge",
        "pc_taken",
    );
    assert_eq!(
        s.get_subscription(&WorkspaceId::from(ws), "sub_1")
            .await
            .unwrap(),
        Some(before)
    );
    assert_eq!(
        s.pending_charges(&WorkspaceId::from(ws), &CustomerId::from("cus_a"))
            .await
            .unwrap(),
        vec![taken.clone()]
    );
    s.change_subscription(&after, std::slice::from_ref(&fresh))
        .await
        .unwrap();
    assert_eq!(
        s.get_subscription(&WorkspaceId::from(ws), "sub_1")
            .await
            .unwrap(),
        Some(after.clone())
    );
    assert_eq!(
        s.pending_charges(&WorkspaceId::from(ws), &CustomerId::from("cus_a"))
            .await
            .unwrap(),
        vec![taken, fresh]
    );
    let ghost = SubscriptionRecord {
        id: "sub_ghost".into(),
        ..after
    };
    assert_not_found(s.change_subscription(&ghost, &[]).await, "subscription");
}

pub(crate) async fn scheduled_changes(h: &Harness) {
    let s = h.store.as_ref();
    let ws = &h.ws;
    assert_eq!(
        s.scheduled_change(&WorkspaceId::from(ws), "sub_1")
            .await
            .unwrap(),
        None
    );
    let first = scheduled(ws, "chg_1", "sub_1", "basic");
    s.schedule_change(&first).await.unwrap();
    assert_eq!(
        s.scheduled_change(&WorkspaceId::from(ws), "sub_1")
            .await
            .unwrap(),
        Some(first.clone())
    );
    // A second change replaces the one not yet applied.
    let second = scheduled(ws, "chg_2", "sub_1", "free");
    s.schedule_change(&second).await.unwrap();
    assert_eq!(
        s.scheduled_change(&WorkspaceId::from(ws), "sub_1")
            .await
            .unwrap(),
        Some(second.clone())
    );
    s.schedule_change(&scheduled(ws, "chg_3", "sub_2", "basic"))
        .await
        .unwrap();

    s.mark_change_applied(&WorkspaceId::from(ws), "chg_2", ts("2026-02-01T00:00:00Z"))
        .await
        .unwrap();
    assert_eq!(
        s.scheduled_change(&WorkspaceId::from(ws), "sub_1")
            .await
            .unwrap(),
        None
    );
    // An applied change is history: a new one for the subscription leaves it be.
    let third = scheduled(ws, "chg_4", "sub_1", "pro");
    s.schedule_change(&third).await.unwrap();
    assert_eq!(
        s.scheduled_change(&WorkspaceId::from(ws), "sub_1")
            .await
            .unwrap(),
        Some(third.clone())
    );
    // An id taken already: refused, and the pending change it would replace stays.
    assert_exists(
        s.schedule_change(&second).await,
        "scheduled change",
        "chg_2",
    );
    assert_eq!(
        s.scheduled_change(&WorkspaceId::from(ws), "sub_1")
            .await
            .unwrap(),
        Some(third)
    );
    assert_eq!(
        s.scheduled_change(&WorkspaceId::from(ws), "sub_2")
            .await
            .unwrap()
            .unwrap()
            .id,
        "chg_3"
    );
}

pub(crate) async fn bill_run_worklists(h: &Harness) {
    let s = h.store.as_ref();
    let ws = &h.ws;
    let other = h.other_workspace().await;
    h.customer(ws, "cus_a").await;
    h.customer(ws, "cus_b").await;
    h.customer(&other, "cus_a").await;
    let subs = [
        subscription(ws, "sub_b", "cus_a", "2026-01-01T00:00:00Z"),
        subscription(ws, "sub_a", "cus_b", "2026-01-02T00:00:00Z"),
        subscription(ws, "sub_c", "cus_a", "2026-01-03T00:00:00Z"),
    ];
    for sub in &subs {
        s.create_subscription(sub).await.unwrap();
    }
    s.create_subscription(&subscription(&other, "sub_x", "cus_a", PERIOD))
        .await
        .unwrap();
    assert_eq!(
        s.list_workspace_subscriptions(&WorkspaceId::from(ws))
            .await
            .unwrap(),
        vec![subs[1].clone(), subs[0].clone(), subs[2].clone()],
        "every subscription of the workspace, by id"
    );
    let listed = s.list_workspaces().await.unwrap();
    let mine: Vec<&WorkspaceRecord> = listed
        .iter()
        .filter(|w| w.id == *ws || w.id == other)
        .collect();
    assert_eq!(mine.len(), 2, "both workspaces are listed");
    assert_eq!(mine[0].name, format!("Workspace {}", mine[0].id));
}

/// The bill run's chunked reads return what the per-customer and per-subscription reads
/// return, for chunks longer than one query's list (customers past the first 200 of a list),
/// and nothing of another workspace.
pub(crate) async fn billing_chunks_read_what_single_reads_do(h: &Harness) {
    let s = h.store.as_ref();
    let ws = &h.ws;
    let other = h.other_workspace().await;
    let wid = WorkspaceId::from(ws);
    for c in ["cus_a", "cus_b", "cus_c"] {
        h.customer(ws, c).await;
    }
    h.customer(&other, "cus_a").await;
    for (id, c) in [("sub_1", "cus_a"), ("sub_2", "cus_a"), ("sub_3", "cus_b")] {
        s.create_subscription(&subscription(ws, id, c, PERIOD))
            .await
            .unwrap();
    }
    s.create_subscription(&subscription(&other, "sub_1", "cus_a", PERIOD))
        .await
        .unwrap();
    let none = InvoiceEffects::default();
    for (id, key) in [("inv_2", "sub_1:close:b"), ("inv_1", "sub_1:open:a")] {
        let mut inv = invoice(ws, id, "cus_a", key);
        inv.subscription = Some("sub_1".into());
        s.insert_invoice(&inv, &none).await.unwrap();
    }
    let mut theirs = invoice(&other, "inv_x", "cus_a", "sub_1:open:x");
    theirs.subscription = Some("sub_1".into());
    s.insert_invoice(&theirs, &none).await.unwrap();
    s.schedule_change(&scheduled(ws, "chg_1", "sub_1", "pro"))
        .await
        .unwrap();
    s.schedule_change(&scheduled(&other, "chg_x", "sub_1", "pro"))
        .await
        .unwrap();
    for (id, c, at) in [
        ("pc_2", "cus_b", "2026-01-20T00:00:00Z"),
        ("pc_1", "cus_b", "2026-01-10T00:00:00Z"),
        ("pc_3", "cus_a", "2026-01-10T00:00:00Z"),
    ] {
        s.add_pending_charge(&pending_charge(ws, id, c, at))
            .await
            .unwrap();
    }
    s.add_pending_charge(&pending_charge(
        &other,
        "pc_x",
        "cus_b",
        "2026-01-10T00:00:00Z",
    ))
    .await
    .unwrap();
    s.add_coupon_redemption(&redemption(ws, "red_1", "cus_b"))
        .await
        .unwrap();
    s.add_coupon_redemption(&redemption(&other, "red_x", "cus_b"))
        .await
        .unwrap();
    for (id, c, amount) in [
        ("cr_1", "cus_a", 700),
        ("cr_2", "cus_a", -200),
        ("cr_3", "cus_b", 5),
    ] {
        s.add_credit_entry(&credit(ws, id, c, amount))
            .await
            .unwrap();
    }
    s.add_credit_entry(&credit(&other, "cr_x", "cus_b", 9))
        .await
        .unwrap();
    s.set_customer_profile(
        &wid,
        &CustomerId::from("cus_b"),
        &serde_json::json!({"legal_name": "B Ltd"}),
        ts(PERIOD),
    )
    .await
    .unwrap();

    // cus_b and sub_3 come after 200 unknown names: in a second query of each kind.
    let filler: Vec<String> = (0..230).map(|i| format!("nobody_{i}")).collect();
    let mut customers: Vec<&str> = vec!["cus_a"];
    customers.extend(filler.iter().map(String::as_str));
    customers.extend(["cus_b", "cus_c"]);
    let mut subs: Vec<&str> = vec!["sub_1", "sub_2"];
    subs.extend(filler.iter().map(String::as_str));
    subs.push("sub_3");
    let chunk = s.billing_chunk(&wid, &subs, &customers).await.unwrap();

    let mut ids: Vec<&str> = chunk.customers.iter().map(|c| c.id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["cus_a", "cus_b", "cus_c"]);
    for c in &chunk.customers {
        let single = s.get_customer(&wid, &CustomerId::from(c.id.as_str())).await;
        assert_eq!(Some(c.clone()), single.unwrap());
    }
    assert_eq!(
        chunk.profiles,
        vec![(
            "cus_b".to_owned(),
            serde_json::json!({"legal_name": "B Ltd"})
        )]
    );
    assert_eq!(
        chunk.invoice_keys,
        vec![
            ("sub_1".to_owned(), "sub_1:close:b".to_owned()),
            ("sub_1".to_owned(), "sub_1:open:a".to_owned()),
        ],
        "in number order, as invoice_keys"
    );
    assert_eq!(
        s.invoice_keys(&wid, "sub_1").await.unwrap(),
        ["sub_1:close:b", "sub_1:open:a"]
    );
    assert_eq!(
        chunk.scheduled,
        vec![s.scheduled_change(&wid, "sub_1").await.unwrap().unwrap()]
    );
    let mut pending = s
        .pending_charges(&wid, &CustomerId::from("cus_a"))
        .await
        .unwrap();
    pending.extend(
        s.pending_charges(&wid, &CustomerId::from("cus_b"))
            .await
            .unwrap(),
    );
    assert_eq!(chunk.pending_charges, pending, "by customer, oldest first");
    assert_eq!(
        chunk.redemptions,
        s.coupon_redemptions(&wid, &CustomerId::from("cus_b"))
            .await
            .unwrap()
    );
    let mut credit = chunk.credit_balances.clone();
    credit.sort();
    assert_eq!(credit, [("cus_a".to_owned(), 500), ("cus_b".to_owned(), 5)]);
    assert_eq!(
        chunk.customer_balances,
        Vec::<(String, i64)>::new(),
        "no balance entries: no rows (0)"
    );

    // Another workspace's chunk sees only its own rows.
    let theirs = s
        .billing_chunk(
            &WorkspaceId::from(&other),
            &["sub_1", "sub_3"],
            &["cus_a", "cus_b"],
        )
        .await
        .unwrap();
    assert_eq!(
        theirs.invoice_keys,
        [("sub_1".to_owned(), "sub_1:open:x".to_owned())]
    );
    assert_eq!(theirs.scheduled.len(), 1);
    assert_eq!(theirs.scheduled[0].id, "chg_x");
    assert_eq!(theirs.pending_charges.len(), 1);
    assert_eq!(theirs.redemptions.len(), 1);
    assert_eq!(theirs.credit_balances, [("cus_b".to_owned(), 9)]);
    assert_eq!(theirs.customers.len(), 1);
}

/// Workspace B sees none of A's money documents and cannot change them.
pub(crate) async fn billing_isolation(h: &Harness) {
    let s = h.store.as_ref();
    let a = &h.ws;
    let b = &h.other_workspace().await;
    h.customer(a, "cus_a").await;
    s.create_subscription(&subscription(a, "sub_1", "cus_a", PERIOD))
        .await
        .unwrap();
    s.add_credit_entry(&credit(a, "cr_1", "cus_a", 100))
        .await
        .unwrap();
    s.add_pending_charge(&pending_charge(a, "pc_1", "cus_a", PERIOD))
        .await
        .unwrap();
    s.add_coupon_redemption(&redemption(a, "red_1", "cus_a"))
        .await
        .unwrap();
    s.schedule_change(&scheduled(a, "chg_1", "sub_1", "basic"))
        .await
        .unwrap();
    let inv = invoice(a, "inv_1", "cus_a", "sub_1:k");
    s.insert_invoice(&inv, &InvoiceEffects::default())
        .await
        .unwrap();
    s.insert_credit_note(&credit_note(a, "cn_1", "inv_1", 10), 1_000)
        .await
        .unwrap();

    assert_eq!(
        s.get_invoice(&WorkspaceId::from(b), "inv_1").await.unwrap(),
        None
    );
    assert_eq!(
        s.list_invoices(&WorkspaceId::from(b), &CustomerId::from("cus_a"))
            .await
            .unwrap(),
        vec![]
    );
    assert_eq!(
        s.invoice_keys(&WorkspaceId::from(b), "sub_1")
            .await
            .unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(
        s.list_credit_notes(&WorkspaceId::from(b), "inv_1")
            .await
            .unwrap(),
        vec![]
    );
    assert_eq!(
        s.credit_balance(&WorkspaceId::from(b), &CustomerId::from("cus_a"))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        s.pending_charges(&WorkspaceId::from(b), &CustomerId::from("cus_a"))
            .await
            .unwrap(),
        vec![]
    );
    assert_eq!(
        s.coupon_redemptions(&WorkspaceId::from(b), &CustomerId::from("cus_a"))
            .await
            .unwrap(),
        vec![]
    );
    assert_eq!(
        s.scheduled_change(&WorkspaceId::from(b), "sub_1")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        s.list_workspace_subscriptions(&WorkspaceId::from(b))
            .await
            .unwrap(),
        vec![]
    );
    assert_not_found(
        s.set_invoice_status(
            &WorkspaceId::from(b),
            "inv_1",
            InvoiceStatus::Open,
            InvoiceStatus::Paid,
            ts(PERIOD),
        )
        .await,
        "invoice",
    );
    s.mark_change_applied(&WorkspaceId::from(b), "chg_1", ts(PERIOD))
        .await
        .unwrap();
    assert!(
        s.scheduled_change(&WorkspaceId::from(a), "sub_1")
            .await
            .unwrap()
            .is_some()
    );

    // Numbers and dedupe keys are per workspace.
    h.customer(b, "cus_a").await;
    let theirs = created(
        s.insert_invoice(
            &invoice(b, "inv_1", "cus_a", "sub_1:k"),
            &InvoiceEffects::default(),
        )
        .await
        .unwrap(),
    );
    assert_eq!(theirs.number, 1);
    assert_eq!(
        s.get_invoice(&WorkspaceId::from(a), "inv_1")
            .await
            .unwrap()
            .unwrap()
            .number,
        1
    );
}

/// Every invoice status is stored and read back as it was.
pub(crate) async fn invoice_statuses_round_trip(h: &Harness) {
    let s = h.store.as_ref();
    let ws = &h.ws;
    h.customer(ws, "cus_a").await;
    for status in InvoiceStatus::ALL {
        let record = InvoiceRecord {
            status,
            ..invoice(
                ws,
                &format!("inv_{status}"),
                "cus_a",
                &format!("sub_1:{status}"),
            )
        };
        let stored = created(
            s.insert_invoice(&record, &InvoiceEffects::default())
                .await
                .unwrap(),
        );
        assert_eq!(stored.status, status);
        let got = s
            .get_invoice(&WorkspaceId::from(ws), &record.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got, stored, "{status}");
    }
    let listed: Vec<InvoiceStatus> = s
        .list_invoices(&WorkspaceId::from(ws), &CustomerId::from("cus_a"))
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.status)
        .collect();
    assert_eq!(listed, InvoiceStatus::ALL, "oldest first, each as stored");
}

/// A credit note credited to the customer's balance adds a movement in the same transaction; an
/// invoice that uses the balance takes it out with its insert, never more than there is.
pub(crate) async fn customer_balance_ledger(h: &Harness) {
    let s = h.store.as_ref();
    let ws = &h.ws;
    h.customer(ws, "cus_a").await;
    h.customer(ws, "cus_b").await;
    let (wid, cus) = (WorkspaceId::from(ws), CustomerId::from("cus_a"));
    let none = InvoiceEffects::default();
    s.insert_invoice(&invoice(ws, "inv_1", "cus_a", "k1"), &none)
        .await
        .unwrap();
    let credited = CreditNoteRecord {
        method: CreditNoteMethod::Credit,
        ..credit_note(ws, "cn_1", "inv_1", 300)
    };
    s.insert_credit_note(&credited, 1_000).await.unwrap();
    // A refund moves no balance.
    s.insert_credit_note(&credit_note(ws, "cn_2", "inv_1", 50), 1_000)
        .await
        .unwrap();
    assert_eq!(s.customer_balance(&wid, &cus).await.unwrap(), 300);
    let methods: Vec<_> = s
        .list_credit_notes(&wid, "inv_1")
        .await
        .unwrap()
        .into_iter()
        .map(|n| n.method)
        .collect();
    assert_eq!(
        methods,
        [CreditNoteMethod::Credit, CreditNoteMethod::Refund]
    );

    let uses = |minor: i64| InvoiceEffects {
        balance_used_minor: minor,
        ..InvoiceEffects::default()
    };
    s.insert_invoice(&invoice(ws, "inv_2", "cus_a", "k2"), &uses(200))
        .await
        .unwrap();
    assert_eq!(s.customer_balance(&wid, &cus).await.unwrap(), 100);
    // More than is left: refused, nothing written.
    assert_conflict(
        s.insert_invoice(&invoice(ws, "inv_3", "cus_a", "k3"), &uses(101))
            .await,
    );
    assert!(s.get_invoice(&wid, "inv_3").await.unwrap().is_none());
    let entries = s.balance_entries(&wid, &cus).await.unwrap();
    let moves: Vec<(String, i64, Option<String>, Option<String>)> = entries
        .into_iter()
        .map(|e| (e.kind, e.amount_minor, e.credit_note, e.invoice))
        .collect();
    assert_eq!(
        moves,
        [
            (
                "credit_note".to_owned(),
                300,
                Some("cn_1".to_owned()),
                Some("inv_1".to_owned())
            ),
            ("invoice".to_owned(), -200, None, Some("inv_2".to_owned())),
        ]
    );
    // Another customer's balance is its own.
    assert_eq!(
        s.customer_balance(&wid, &CustomerId::from("cus_b"))
            .await
            .unwrap(),
        0
    );
    assert!(
        s.balance_entries(&wid, &CustomerId::from("cus_b"))
            .await
            .unwrap()
            .is_empty()
    );
}

/// A credit note to the balance on an unpaid invoice lowers its amount due (compare-and-set, paid
/// at zero) and only the rest reaches the balance; voiding an invoice gives back the balance and
/// prepaid credit it used, once.
pub(crate) async fn a_credit_lowers_the_amount_due_and_a_void_gives_back(h: &Harness) {
    let s = h.store.as_ref();
    let ws = &h.ws;
    h.customer(ws, "cus_a").await;
    let (wid, cus) = (WorkspaceId::from(ws), CustomerId::from("cus_a"));
    let at = ts("2026-02-03T00:00:00Z");
    let credit_of = |id: &str, invoice: &str, minor: i64| CreditNoteRecord {
        method: CreditNoteMethod::Credit,
        ..credit_note(ws, id, invoice, minor)
    };
    let lower = |from_minor: i64, to_minor: i64| {
        Some(AmountDueChange {
            status: InvoiceStatus::Open,
            from_minor,
            to_minor,
            at,
        })
    };
    // inv_1: 1,000 total, 200 paid by prepaid credit, 800 due.
    s.add_credit_entry(&credit(ws, "cr_1", "cus_a", 200))
        .await
        .unwrap();
    let first = InvoiceRecord {
        credit_applied_minor: 200,
        amount_due_minor: 800,
        ..invoice(ws, "inv_1", "cus_a", "k1")
    };
    let uses_credit = InvoiceEffects {
        credit_used_minor: 200,
        ..InvoiceEffects::default()
    };
    s.insert_invoice(&first, &uses_credit).await.unwrap();
    s.insert_credit_note_lowering_due(
        &credit_of("cn_1", "inv_1", 300),
        1_000,
        lower(800, 500),
        &[],
    )
    .await
    .unwrap();
    let inv = s.get_invoice(&wid, "inv_1").await.unwrap().unwrap();
    assert_eq!(
        (inv.status, inv.amount_due_minor),
        (InvoiceStatus::Open, 500)
    );
    assert_eq!(s.customer_balance(&wid, &cus).await.unwrap(), 0);
    // A stale amount due: refused, nothing written.
    assert_conflict(
        s.insert_credit_note_lowering_due(
            &credit_of("cn_2", "inv_1", 100),
            1_000,
            lower(800, 700),
            &[],
        )
        .await,
    );
    assert_eq!(s.list_credit_notes(&wid, "inv_1").await.unwrap().len(), 1);
    // A change that takes off more than the note: refused.
    assert_invalid(
        s.insert_credit_note_lowering_due(
            &credit_of("cn_2", "inv_1", 100),
            1_000,
            lower(500, 300),
            &[],
        )
        .await,
        "invalid_amount",
    );
    // The rest of the total: 500 settles it (paid at `at`), 200 reaches the balance.
    s.insert_credit_note_lowering_due(&credit_of("cn_3", "inv_1", 700), 1_000, lower(500, 0), &[])
        .await
        .unwrap();
    let inv = s.get_invoice(&wid, "inv_1").await.unwrap().unwrap();
    assert_eq!(
        (inv.status, inv.amount_due_minor, inv.paid_at),
        (InvoiceStatus::Paid, 0, Some(at))
    );
    assert_eq!(s.customer_balance(&wid, &cus).await.unwrap(), 200);

    // inv_2 uses the 200 of balance and 50 of prepaid credit; voided, both come back.
    s.add_credit_entry(&credit(ws, "cr_2", "cus_a", 50))
        .await
        .unwrap();
    let second = InvoiceRecord {
        credit_applied_minor: 50,
        amount_due_minor: 750,
        ..invoice(ws, "inv_2", "cus_a", "k2")
    };
    let uses_both = InvoiceEffects {
        credit_used_minor: 50,
        balance_used_minor: 200,
        ..InvoiceEffects::default()
    };
    s.insert_invoice(&second, &uses_both).await.unwrap();
    assert_eq!(s.customer_balance(&wid, &cus).await.unwrap(), 0);
    assert_eq!(s.credit_balance(&wid, &cus).await.unwrap(), 0);
    s.set_invoice_status(&wid, "inv_2", InvoiceStatus::Open, InvoiceStatus::Void, at)
        .await
        .unwrap();
    assert_eq!(s.customer_balance(&wid, &cus).await.unwrap(), 200);
    assert_eq!(s.credit_balance(&wid, &cus).await.unwrap(), 50);
    let last = s.balance_entries(&wid, &cus).await.unwrap().pop().unwrap();
    assert_eq!(
        (
            last.kind.as_str(),
            last.amount_minor,
            last.invoice.as_deref()
        ),
        ("invoice_void", 200, Some("inv_2"))
    );
    // A second void is refused and gives nothing back again.
    assert_conflict(
        s.set_invoice_status(&wid, "inv_2", InvoiceStatus::Open, InvoiceStatus::Void, at)
            .await,
    );
    assert_eq!(s.customer_balance(&wid, &cus).await.unwrap(), 200);
    assert_eq!(s.credit_balance(&wid, &cus).await.unwrap(), 50);
    // An invoice that used nothing voids without a movement.
    s.insert_invoice(
        &invoice(ws, "inv_3", "cus_a", "k3"),
        &InvoiceEffects::default(),
    )
    .await
    .unwrap();
    s.set_invoice_status(&wid, "inv_3", InvoiceStatus::Open, InvoiceStatus::Void, at)
        .await
        .unwrap();
    assert_eq!(s.balance_entries(&wid, &cus).await.unwrap().len(), 3);
}
