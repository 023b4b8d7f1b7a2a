//! Workspace B never sees, nor changes, workspace A's rows.

use crate::Harness;
use crate::support::*;
use IngestOutcome::Accepted;
use jiff::Timestamp;
use serde_json::json;
use tollgate_core::ids::{CustomerId, KeyId, WorkspaceId};
use tollgate_store::*;

pub(crate) async fn workspace_isolation(h: &Harness) {
    let s = h.store.as_ref();
    let a = &h.ws;
    let b = &h.other_workspace().await;
    h.customer(a, "cus_a").await;
    s.create_subscription(&subscription(a, "sub_1", "cus_a", PERIOD))
        .await
        .unwrap();
    let key = api_key(a, "key_1", "cus_a", PERIOD);
    s.create_api_key(&key).await.unwrap();
    s.create_test_clock(&TestClockRecord {
        workspace: a.clone(),
        id: "clock_1".into(),
        name: None,
        frozen_time: ts(PERIOD),
        created_at: ts(PERIOD),
    })
    .await
    .unwrap();
    s.add_catalog_version(&WorkspaceId::from(a), &json!({"a": 1}), ts(PERIOD))
        .await
        .unwrap();
    let every_op = vec![
        add("calls", "1"),
        update("peak", AggregateOp::Max(dec("2"))),
        update("users", AggregateOp::Unique("u1".into())),
        update(
            "seats",
            AggregateOp::Level {
                value: dec("3"),
                at: ts("2026-01-02T00:00:00Z"),
            },
        ),
        update(
            "runs",
            AggregateOp::WindowEntry {
                quantity: dec("1"),
                at: ts("2026-01-02T00:00:00Z"),
            },
        ),
    ];
    h.ingest(a, &[item(a, "evt_1", "cus_a", every_op.clone())])
        .await;

    // B sees none of it.
    let far = ts("2030-01-01T00:00:00Z");
    assert_eq!(
        s.get_customer(&WorkspaceId::from(b), "cus_a")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        s.list_customers(&WorkspaceId::from(b)).await.unwrap(),
        vec![]
    );
    assert_eq!(
        s.get_subscription(&WorkspaceId::from(b), "sub_1")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        s.list_subscriptions(&WorkspaceId::from(b), &CustomerId::from("cus_a"))
            .await
            .unwrap(),
        vec![]
    );
    assert_eq!(
        s.list_api_keys(&WorkspaceId::from(b), &CustomerId::from("cus_a"))
            .await
            .unwrap(),
        vec![]
    );
    assert_eq!(
        s.get_test_clock(&WorkspaceId::from(b), "clock_1")
            .await
            .unwrap(),
        None
    );
    assert_eq!(s.latest_catalog(&WorkspaceId::from(b)).await.unwrap(), None);
    assert_eq!(
        s.catalog_version(&WorkspaceId::from(b), 1).await.unwrap(),
        None
    );
    assert_eq!(h.aggregates(b, "cus_a", ts(PERIOD)).await, vec![]);
    assert_eq!(
        s.window_entries(
            &WorkspaceId::from(b),
            &CustomerId::from("cus_a"),
            Timestamp::UNIX_EPOCH
        )
        .await
        .unwrap(),
        vec![]
    );
    assert_eq!(
        s.level_points(
            &WorkspaceId::from(b),
            &CustomerId::from("cus_a"),
            Timestamp::UNIX_EPOCH,
            far
        )
        .await
        .unwrap(),
        vec![]
    );
    assert_eq!(
        s.events(
            &WorkspaceId::from(b),
            &CustomerId::from("cus_a"),
            Timestamp::UNIX_EPOCH,
            far,
            10
        )
        .await
        .unwrap(),
        vec![]
    );
    // ... and cannot change it.
    assert_not_found(s.update_customer(&customer(b, "cus_a")).await, "customer");
    assert_not_found(
        s.update_subscription(&subscription(b, "sub_1", "cus_a", PERIOD))
            .await,
        "subscription",
    );
    assert_not_found(
        s.revoke_api_key(
            &WorkspaceId::from(b),
            &CustomerId::from("cus_a"),
            &KeyId::from("key_1"),
            far,
        )
        .await,
        "api_key",
    );
    assert_not_found(
        s.set_test_clock_time(&WorkspaceId::from(b), "clock_1", far)
            .await,
        "test_clock",
    );
    assert_not_found(
        s.create_subscription(&subscription(b, "sub_2", "cus_a", PERIOD))
            .await,
        "customer",
    );
    assert_eq!(
        s.prune_window_entries(&WorkspaceId::from(b), far)
            .await
            .unwrap(),
        0
    );

    // Ids are per workspace: the same customer and event ids are new in B.
    h.customer(b, "cus_a").await;
    assert_eq!(
        h.ingest(b, &[item(b, "evt_1", "cus_a", every_op)]).await,
        vec![Accepted]
    );
    assert_eq!(value_of(h, b, "cus_a", "users").await, Some(dec("1")));
    assert_eq!(value_of(h, a, "cus_a", "calls").await, Some(dec("1")));
    assert_eq!(
        s.list_customers(&WorkspaceId::from(a)).await.unwrap().len(),
        1
    );
    // The key lookup still names the key's own workspace.
    assert_eq!(s.find_api_key(&key.secret_hash).await.unwrap(), Some(key));
    assert_eq!(
        s.window_entries(
            &WorkspaceId::from(a),
            &CustomerId::from("cus_a"),
            Timestamp::UNIX_EPOCH
        )
        .await
        .unwrap()
        .len(),
        1
    );
}
