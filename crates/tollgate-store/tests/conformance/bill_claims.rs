//! Cases for the bill run's split of work (`BillingStore::begin_bill_pass` and the claims):
//! disjoint claims under concurrency, what a pass counts as billed, leases that run out, the
//! holder-only release, and a pending charge that is billed once even when two invoices take it.

use crate::Harness;
use crate::support::*;
use std::collections::BTreeSet;
use tollgate_core::ids::{CustomerId, WorkspaceId};
use tollgate_store::billing::*;
use tollgate_store::jobs::Lease;
use tollgate_store::*;

const NOW: &str = "2026-03-01T00:00:00Z";

fn lease(worker: &str, now: &str, minutes: i64) -> Lease {
    let now: jiff::Timestamp = now.parse().unwrap();
    Lease {
        worker: worker.into(),
        now,
        until: now + jiff::SignedDuration::from_mins(minutes),
    }
}

/// A pass splits the customers with a subscription between workers, counts those released
/// after a claim taken since it began as billed, and no more; a run that began later bills
/// everything again, a lease that ran out lets another worker take its customers, and only the
/// holder releases them. Another workspace's customers are never seen.
pub(crate) async fn bill_run_claims_split_a_pass(h: &Harness) {
    let s = h.store.as_ref();
    let ws = &h.ws;
    let wid = WorkspaceId::from(ws);
    let other = h.other_workspace().await;
    for c in ["cus_a", "cus_b", "cus_c", "cus_none"] {
        h.customer(ws, c).await;
    }
    h.customer(&other, "cus_a").await;
    for (id, c) in [
        ("sub_1", "cus_a"),
        ("sub_2", "cus_a"),
        ("sub_3", "cus_b"),
        ("sub_4", "cus_c"),
    ] {
        s.create_subscription(&subscription(ws, id, c, PERIOD))
            .await
            .unwrap();
    }
    s.create_subscription(&subscription(&other, "sub_1", "cus_a", PERIOD))
        .await
        .unwrap();

    let first = s.begin_bill_pass(&wid).await.unwrap();
    assert_eq!(
        first,
        BillPass {
            number: 1,
            subscriptions: 4
        }
    );
    let w1 = lease("w1", NOW, 2);
    let w2 = lease("w2", NOW, 2);
    let taken = s.claim_bill_customers(&wid, 1, &w1, "", 2).await.unwrap();
    assert_eq!(taken, ["cus_a", "cus_b"], "in id order, at most the limit");
    let rest = s.claim_bill_customers(&wid, 1, &w2, "", 10).await.unwrap();
    assert_eq!(rest, ["cus_c"], "held customers are not claimed twice");
    assert!(
        s.claim_bill_customers(&wid, 1, &w2, "", 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(s.bill_pass_remaining(&wid, 1).await.unwrap(), 3, "all held");
    let subs: Vec<String> = s
        .subscriptions_of_customers(&wid, &taken)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(subs, ["sub_1", "sub_2", "sub_3"], "by customer then id");

    s.release_bill_customers(&wid, "w2", &taken).await.unwrap();
    assert_eq!(
        s.bill_pass_remaining(&wid, 1).await.unwrap(),
        3,
        "only the holder releases"
    );
    s.release_bill_customers(&wid, "w1", &taken).await.unwrap();
    assert_eq!(s.bill_pass_remaining(&wid, 1).await.unwrap(), 1);
    s.release_bill_customers(&wid, "w2", &rest).await.unwrap();
    assert_eq!(s.bill_pass_remaining(&wid, 1).await.unwrap(), 0);
    assert!(
        s.claim_bill_customers(&wid, 1, &w1, "", 10)
            .await
            .unwrap()
            .is_empty(),
        "a pass bills each customer once"
    );

    // A later run bills everything again.
    let second = s.begin_bill_pass(&wid).await.unwrap();
    assert_eq!(second.number, 2);
    assert_eq!(s.bill_pass_remaining(&wid, 2).await.unwrap(), 3);
    let later_ones = s
        .claim_bill_customers(&wid, 2, &w1, "cus_a", 10)
        .await
        .unwrap();
    assert_eq!(
        later_ones,
        ["cus_b", "cus_c"],
        "after a customer: only later ones"
    );
    let first = s.claim_bill_customers(&wid, 2, &w1, "", 10).await.unwrap();
    assert_eq!(first, ["cus_a"], "from the first again");
    let all: Vec<String> = first.into_iter().chain(later_ones).collect();
    // w1 stops; once its lease is over, w2 takes its customers.
    let late = lease("w2", "2026-03-01T00:01:59Z", 2);
    assert!(
        s.claim_bill_customers(&wid, 2, &late, "", 10)
            .await
            .unwrap()
            .is_empty()
    );
    let later = lease("w2", "2026-03-01T00:02:01Z", 2);
    assert_eq!(
        s.claim_bill_customers(&wid, 2, &later, "", 10)
            .await
            .unwrap(),
        all,
        "a lease that ran out is taken over"
    );
    s.release_bill_customers(&wid, "w1", &all).await.unwrap();
    assert_eq!(
        s.bill_pass_remaining(&wid, 2).await.unwrap(),
        3,
        "the stopped worker no longer holds them"
    );
    s.release_bill_customers(&wid, "w2", &all).await.unwrap();
    assert_eq!(s.bill_pass_remaining(&wid, 2).await.unwrap(), 0);

    // Two runs at once: what the earlier one claims after the later one began counts for
    // both; what it claimed before, the later one bills again once it is released.
    let early = s.begin_bill_pass(&wid).await.unwrap().number;
    let before = s
        .claim_bill_customers(&wid, early, &w1, "", 1)
        .await
        .unwrap();
    assert_eq!(before, ["cus_a"]);
    let late_run = s.begin_bill_pass(&wid).await.unwrap().number;
    assert_eq!(late_run, early + 1);
    let after = s
        .claim_bill_customers(&wid, early, &w1, "", 10)
        .await
        .unwrap();
    assert_eq!(after, ["cus_b", "cus_c"]);
    assert!(
        s.claim_bill_customers(&wid, late_run, &w2, "", 10)
            .await
            .unwrap()
            .is_empty(),
        "the later run waits for what is held"
    );
    s.release_bill_customers(&wid, "w1", &before).await.unwrap();
    s.release_bill_customers(&wid, "w1", &after).await.unwrap();
    assert_eq!(s.bill_pass_remaining(&wid, early).await.unwrap(), 0);
    assert_eq!(s.bill_pass_remaining(&wid, late_run).await.unwrap(), 1);
    assert_eq!(
        s.claim_bill_customers(&wid, late_run, &w2, "", 10)
            .await
            .unwrap(),
        ["cus_a"],
        "claimed before the later run began: billed again by it"
    );

    // The other workspace has its own rows and counter.
    let theirs = WorkspaceId::from(other.as_str());
    assert_eq!(s.begin_bill_pass(&theirs).await.unwrap().number, 1);
    assert_eq!(
        s.claim_bill_customers(&theirs, 1, &w1, "", 10)
            .await
            .unwrap(),
        ["cus_a"]
    );
}

/// Workers claiming at the same moment take disjoint customers and, together, all of them.
pub(crate) async fn concurrent_bill_claims_are_disjoint(h: &Harness) {
    let ws = &h.ws;
    let wid = WorkspaceId::from(ws);
    let customers: Vec<String> = (0..120).map(|i| format!("cus_{i:03}")).collect();
    for c in &customers {
        h.customer(ws, c).await;
        h.store
            .create_subscription(&subscription(ws, &format!("sub_{c}"), c, PERIOD))
            .await
            .unwrap();
    }
    let pass = h.store.begin_bill_pass(&wid).await.unwrap().number;
    let mut tasks = Vec::new();
    for w in 0..6 {
        let store = h.store.clone();
        let wid = wid.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let l = lease(&format!("w{w}"), NOW, 2);
                let got = store
                    .claim_bill_customers(&wid, pass, &l, "", 7)
                    .await
                    .unwrap();
                if got.is_empty() {
                    return mine;
                }
                mine.extend(got);
            }
        }));
    }
    let mut seen = BTreeSet::new();
    let mut total = 0;
    for t in tasks {
        let mine = t.await.unwrap();
        total += mine.len();
        seen.extend(mine);
    }
    assert_eq!(total, customers.len(), "no customer claimed twice");
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), customers);
}

/// An invoice that would bill a pending charge another invoice billed since it was built is
/// refused, with nothing of it written and no number used: the charge is billed once.
pub(crate) async fn a_pending_charge_is_billed_once(h: &Harness) {
    let s = h.store.as_ref();
    let ws = &h.ws;
    h.customer(ws, "cus_a").await;
    s.add_pending_charge(&pending_charge(ws, "pc_1", "cus_a", "2026-01-03T00:00:00Z"))
        .await
        .unwrap();
    let takes = InvoiceEffects {
        pending_charges: vec!["pc_1".into()],
        ..Default::default()
    };
    let first = s
        .insert_invoice(&invoice(ws, "inv_1", "cus_a", "k1"), &takes)
        .await
        .unwrap();
    assert!(matches!(first, InvoiceInsert::Created(ref i) if i.number == 1));
    match s
        .insert_invoice(&invoice(ws, "inv_2", "cus_a", "k2"), &takes)
        .await
    {
        Err(StoreError::Conflict(_)) => {}
        other => panic!("expected Conflict, got {other:?}"),
    }
    let wid = WorkspaceId::from(ws);
    assert!(s.get_invoice(&wid, "inv_2").await.unwrap().is_none());
    let next = s
        .insert_invoice(
            &invoice(ws, "inv_3", "cus_a", "k3"),
            &InvoiceEffects::default(),
        )
        .await
        .unwrap();
    assert!(
        matches!(next, InvoiceInsert::Created(ref i) if i.number == 2),
        "gapless: {next:?}"
    );
    let invoices = s
        .list_invoices(&wid, &CustomerId::from("cus_a"))
        .await
        .unwrap();
    assert_eq!(invoices.len(), 2);
}
