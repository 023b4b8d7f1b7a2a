//! Cases for workspaces, keys, catalogs, customers, subscriptions and test clocks.

use crate::Harness;
use crate::support::*;
use jiff::Timestamp;
use serde_json::json;
use std::collections::BTreeSet;
use tollgate_core::ids::{CustomerId, KeyId, WorkspaceId};
use tollgate_store::*;

pub(crate) async fn workspaces_and_admin_keys(h: &Harness) {
    let s = h.store.as_ref();
    let w = s.get_workspace(&h.ws).await.unwrap().unwrap();
    assert_eq!(w.id, h.ws);
    assert_eq!(w.name, format!("Workspace {}", h.ws));
    assert_eq!(w.created_at, ts("2026-01-01T00:00:00.123456Z"));
    assert_eq!(s.get_workspace(&fresh("missing")).await.unwrap(), None);
    let again = s
        .create_workspace(&WorkspaceRecord {
            id: h.ws.clone(),
            name: "again".into(),
            created_at: Timestamp::UNIX_EPOCH,
        })
        .await;
    assert_exists(again, "workspace", &h.ws);

    let hash = fresh("hash");
    let key = AdminKeyRecord {
        workspace: h.ws.clone(),
        id: "admin_1".into(),
        secret_hash: hash.clone(),
        created_at: ts("2026-01-03T00:00:00Z"),
    };
    s.put_admin_key(&key).await.unwrap();
    assert_eq!(s.find_admin_key(&hash).await.unwrap(), Some(key.clone()));
    // Same hash again: left as it is.
    let twin = AdminKeyRecord {
        id: "admin_2".into(),
        created_at: ts("2026-02-03T00:00:00Z"),
        ..key.clone()
    };
    s.put_admin_key(&twin).await.unwrap();
    assert_eq!(s.find_admin_key(&hash).await.unwrap(), Some(key.clone()));
    assert_eq!(s.find_admin_key(&fresh("nope")).await.unwrap(), None);
    // The same id with a new secret: rotated (the old secret opens nothing any more).
    let rotated = AdminKeyRecord {
        secret_hash: fresh("hash"),
        created_at: ts("2026-03-03T00:00:00Z"),
        ..key.clone()
    };
    s.put_admin_key(&rotated).await.unwrap();
    assert_eq!(s.find_admin_key(&hash).await.unwrap(), None);
    assert_eq!(
        s.find_admin_key(&rotated.secret_hash).await.unwrap(),
        Some(rotated.clone())
    );
    let key = AdminKeyRecord {
        secret_hash: fresh("hash"),
        ..key
    };

    let orphan = AdminKeyRecord {
        workspace: fresh("missing"),
        secret_hash: fresh("hash"),
        ..key
    };
    assert_not_found(s.put_admin_key(&orphan).await, "workspace");
}

pub(crate) async fn catalog_versions(h: &Harness) {
    let s = h.store.as_ref();
    assert_eq!(
        s.latest_catalog(&WorkspaceId::from(&h.ws)).await.unwrap(),
        None
    );
    let at = ts("2026-01-04T00:00:00.000001Z");
    for n in 1..=3 {
        let v = s
            .add_catalog_version(
                &WorkspaceId::from(&h.ws),
                &json!({"plans": [{"key": format!("p{n}")}]}),
                at,
            )
            .await
            .unwrap();
        assert_eq!(v, n);
    }
    let latest = s
        .latest_catalog(&WorkspaceId::from(&h.ws))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(latest.version, 3);
    assert_eq!(latest.workspace, h.ws);
    assert_eq!(latest.catalog, json!({"plans": [{"key": "p3"}]}));
    assert_eq!(latest.created_at, at);
    let v2 = s
        .catalog_version(&WorkspaceId::from(&h.ws), 2)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v2.catalog, json!({"plans": [{"key": "p2"}]}));
    assert_eq!(
        s.catalog_version(&WorkspaceId::from(&h.ws), 9)
            .await
            .unwrap(),
        None
    );
    assert_not_found(
        s.add_catalog_version(&WorkspaceId::from(&fresh("missing")), &json!({}), at)
            .await,
        "workspace",
    );
}

pub(crate) async fn catalog_versions_are_gapless_under_concurrency(h: &Harness) {
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let store = h.store.clone();
            let ws = h.ws.clone();
            tokio::spawn(async move {
                store
                    .add_catalog_version(
                        &WorkspaceId::from(&ws),
                        &json!({ "n": i }),
                        Timestamp::UNIX_EPOCH,
                    )
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut versions = BTreeSet::new();
    for t in tasks {
        assert!(
            versions.insert(t.await.unwrap()),
            "a version was handed out twice"
        );
    }
    assert_eq!(versions, (1..=16).collect::<BTreeSet<i64>>());
    let latest = h
        .store
        .latest_catalog(&WorkspaceId::from(&h.ws))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(latest.version, 16);
}

pub(crate) async fn customers(h: &Harness) {
    let s = h.store.as_ref();
    let mut a = customer(&h.ws, "cus_a");
    a.test_clock = Some("clock_1".into());
    s.create_customer(&a).await.unwrap();
    let mut b = customer(&h.ws, "cus_b");
    b.name = None;
    b.email = None;
    b.created_at = ts("2026-01-03T00:00:00Z");
    s.create_customer(&b).await.unwrap();

    assert_eq!(
        s.get_customer(&WorkspaceId::from(&h.ws), "cus_a")
            .await
            .unwrap(),
        Some(a.clone())
    );
    assert_eq!(
        s.get_customer(&WorkspaceId::from(&h.ws), "cus_b")
            .await
            .unwrap(),
        Some(b.clone())
    );
    assert_eq!(
        s.get_customer(&WorkspaceId::from(&h.ws), "cus_zz")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        s.list_customers(&WorkspaceId::from(&h.ws)).await.unwrap(),
        vec![a.clone(), b.clone()]
    );
    assert_exists(s.create_customer(&a).await, "customer", "cus_a");

    let updated = CustomerRecord {
        name: Some("Renamed".into()),
        email: None,
        suspended: true,
        has_payment_method: false,
        metadata: json!({"note": "moved"}),
        address: serde_json::Value::Null,
        tax_ids: json!([]),
        ..a.clone()
    };
    s.update_customer(&updated).await.unwrap();
    assert_eq!(
        s.get_customer(&WorkspaceId::from(&h.ws), "cus_a")
            .await
            .unwrap(),
        Some(updated)
    );
    assert_not_found(
        s.update_customer(&customer(&h.ws, "cus_zz")).await,
        "customer",
    );
    assert_not_found(
        s.create_customer(&customer(&fresh("missing"), "cus_a"))
            .await,
        "workspace",
    );
}

pub(crate) async fn subscriptions(h: &Harness) {
    let s = h.store.as_ref();
    h.customer(&h.ws, "cus_a").await;
    let first = subscription(&h.ws, "sub_1", "cus_a", "2026-01-01T00:00:00Z");
    let second = subscription(&h.ws, "sub_2", "cus_a", "2026-03-01T00:00:00Z");
    s.create_subscription(&first).await.unwrap();
    s.create_subscription(&second).await.unwrap();
    assert_eq!(
        s.get_subscription(&WorkspaceId::from(&h.ws), "sub_1")
            .await
            .unwrap(),
        Some(first.clone())
    );
    assert_eq!(
        s.get_subscription(&WorkspaceId::from(&h.ws), "sub_9")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        s.list_subscriptions(&WorkspaceId::from(&h.ws), &CustomerId::from("cus_a"))
            .await
            .unwrap(),
        vec![second.clone(), first.clone()],
        "newest first"
    );
    assert_eq!(
        s.list_subscriptions(&WorkspaceId::from(&h.ws), &CustomerId::from("cus_b"))
            .await
            .unwrap(),
        vec![]
    );
    assert_exists(s.create_subscription(&first).await, "subscription", "sub_1");
    assert_not_found(
        s.create_subscription(&subscription(&h.ws, "sub_3", "cus_zz", PERIOD))
            .await,
        "customer",
    );

    let canceled = SubscriptionRecord {
        plan: "team".into(),
        catalog_version: 2,
        status: SubscriptionStatus::Canceled,
        addons: json!({}),
        trial_end: None,
        canceled_at: Some(ts("2026-01-20T10:00:00.5Z")),
        ends_at: Some(ts("2026-02-01T00:00:00Z")),
        ..first.clone()
    };
    s.update_subscription(&canceled).await.unwrap();
    assert_eq!(
        s.get_subscription(&WorkspaceId::from(&h.ws), "sub_1")
            .await
            .unwrap(),
        Some(canceled)
    );
    assert_not_found(
        s.update_subscription(&subscription(&h.ws, "sub_9", "cus_a", PERIOD))
            .await,
        "subscription",
    );
    // The owner is not among what an update may change.
    let moved = SubscriptionRecord {
        customer: "cus_b".into(),
        ..first.clone()
    };
    assert_not_found(s.update_subscription(&moved).await, "subscription");
    assert_eq!(
        s.get_subscription(&WorkspaceId::from(&h.ws), "sub_1")
            .await
            .unwrap()
            .unwrap()
            .customer,
        "cus_a"
    );
}

pub(crate) async fn api_keys(h: &Harness) {
    let s = h.store.as_ref();
    h.customer(&h.ws, "cus_a").await;
    h.customer(&h.ws, "cus_b").await;
    let k1 = api_key(&h.ws, "key_1", "cus_a", "2026-01-01T00:00:00Z");
    let k2 = api_key(&h.ws, "key_2", "cus_a", "2026-01-02T00:00:00Z");
    s.create_api_key(&k1).await.unwrap();
    s.create_api_key(&k2).await.unwrap();
    assert_eq!(
        s.find_api_key(&k1.secret_hash).await.unwrap(),
        Some(k1.clone())
    );
    assert_eq!(s.find_api_key(&fresh("nope")).await.unwrap(), None);
    assert_eq!(
        s.list_api_keys(&WorkspaceId::from(&h.ws), &CustomerId::from("cus_a"))
            .await
            .unwrap(),
        vec![k1.clone(), k2.clone()]
    );
    assert_eq!(
        s.list_api_keys(&WorkspaceId::from(&h.ws), &CustomerId::from("cus_b"))
            .await
            .unwrap(),
        vec![]
    );

    assert_exists(s.create_api_key(&k1).await, "api_key", "key_1");
    let same_hash = ApiKeyRecord {
        id: "key_3".into(),
        ..k1.clone()
    };
    assert_exists(s.create_api_key(&same_hash).await, "api_key", "key_3");
    assert_not_found(
        s.create_api_key(&api_key(&h.ws, "key_4", "cus_zz", PERIOD))
            .await,
        "customer",
    );

    let at = ts("2026-01-10T12:00:00.000007Z");
    let revoked = s
        .revoke_api_key(
            &WorkspaceId::from(&h.ws),
            &CustomerId::from("cus_a"),
            &KeyId::from("key_1"),
            at,
        )
        .await
        .unwrap();
    assert_eq!(
        revoked,
        ApiKeyRecord {
            revoked_at: Some(at),
            ..k1.clone()
        }
    );
    assert_eq!(
        s.find_api_key(&k1.secret_hash).await.unwrap(),
        Some(revoked.clone())
    );
    // Revoking again keeps the first time.
    let again = s
        .revoke_api_key(
            &WorkspaceId::from(&h.ws),
            &CustomerId::from("cus_a"),
            &KeyId::from("key_1"),
            ts("2026-02-01T00:00:00Z"),
        )
        .await
        .unwrap();
    assert_eq!(again.revoked_at, Some(at));
    // Another customer's key, or no key at all.
    assert_not_found(
        s.revoke_api_key(
            &WorkspaceId::from(&h.ws),
            &CustomerId::from("cus_b"),
            &KeyId::from("key_2"),
            at,
        )
        .await,
        "api_key",
    );
    assert_not_found(
        s.revoke_api_key(
            &WorkspaceId::from(&h.ws),
            &CustomerId::from("cus_a"),
            &KeyId::from("key_9"),
            at,
        )
        .await,
        "api_key",
    );
    assert_eq!(
        s.find_api_key(&k2.secret_hash)
            .await
            .unwrap()
            .unwrap()
            .revoked_at,
        None
    );
}

pub(crate) async fn test_clocks(h: &Harness) {
    let s = h.store.as_ref();
    let clock = TestClockRecord {
        workspace: h.ws.clone(),
        id: "clock_1".into(),
        name: Some("trial run".into()),
        frozen_time: ts("2026-01-01T00:00:00Z"),
        created_at: ts("2025-12-31T23:59:59.999999Z"),
    };
    s.create_test_clock(&clock).await.unwrap();
    assert_eq!(
        s.get_test_clock(&WorkspaceId::from(&h.ws), "clock_1")
            .await
            .unwrap(),
        Some(clock.clone())
    );
    assert_eq!(
        s.get_test_clock(&WorkspaceId::from(&h.ws), "clock_9")
            .await
            .unwrap(),
        None
    );
    assert_exists(s.create_test_clock(&clock).await, "test_clock", "clock_1");

    let later = ts("2026-03-15T08:30:00.25Z");
    s.set_test_clock_time(&WorkspaceId::from(&h.ws), "clock_1", later)
        .await
        .unwrap();
    assert_eq!(
        s.get_test_clock(&WorkspaceId::from(&h.ws), "clock_1")
            .await
            .unwrap()
            .unwrap()
            .frozen_time,
        later
    );
    assert_not_found(
        s.set_test_clock_time(&WorkspaceId::from(&h.ws), "clock_9", later)
            .await,
        "test_clock",
    );
}

/// Every state of the subscription lifecycle (tollgate-core's, `past_due`, `paused` and
/// `expired` included) is stored and read back as it was, by create and by update, in a get and
/// in both listings; and each transition of core's table can be stored.
pub(crate) async fn subscription_statuses_round_trip(h: &Harness) {
    use tollgate_core::lifecycle::{SubscriptionUpdate, subscription};
    let s = h.store.as_ref();
    h.customer(&h.ws, "cus_a").await;
    for (i, status) in SubscriptionStatus::ALL.into_iter().enumerate() {
        let record = SubscriptionRecord {
            status,
            ..subscription(&h.ws, &format!("sub_{status}"), "cus_a", PERIOD)
        };
        s.create_subscription(&record).await.unwrap();
        let got = s
            .get_subscription(&WorkspaceId::from(&h.ws), &record.id)
            .await
            .unwrap();
        assert_eq!(got, Some(record.clone()), "{status}");
        let listed = s
            .list_subscriptions(&WorkspaceId::from(&h.ws), &CustomerId::from("cus_a"))
            .await
            .unwrap();
        assert_eq!(listed.len(), i + 1);
        assert!(listed.contains(&record), "{status}");
        let all = s
            .list_workspace_subscriptions(&WorkspaceId::from(&h.ws))
            .await
            .unwrap();
        assert!(all.contains(&record), "{status}");
    }

    // Walk one subscription along every row of the table that leaves its status.
    let mut record = subscription(&h.ws, "sub_walk", "cus_a", PERIOD);
    s.create_subscription(&record).await.unwrap();
    for from in SubscriptionStatus::ALL {
        for update in SubscriptionUpdate::ALL {
            let Ok(to) = subscription::apply(from, update) else {
                continue;
            };
            record.status = from;
            s.update_subscription(&record).await.unwrap();
            record.status = to;
            s.update_subscription(&record).await.unwrap();
            let got = s
                .get_subscription(&WorkspaceId::from(&h.ws), "sub_walk")
                .await
                .unwrap()
                .unwrap();
            assert_eq!(got.status, to, "{from} --{update}--> {to}");
        }
    }
}

/// An idempotency key is claimed once; its answer is kept for retries; a failed request gives
/// the claim back; an old claim expires; keys are per workspace.
pub(crate) async fn idempotency_keys_are_claimed_once(h: &Harness) {
    let s = h.store.as_ref();
    let ws = WorkspaceId::from(&h.ws);
    let t = |x: &str| ts(x);
    let long_ago = t("2000-01-01T00:00:00Z");
    let claim = |key: &'static str, hash: &'static str, at: &'static str| {
        let ws = ws.clone();
        async move {
            s.claim_idempotency_key(&ws, key, hash, t(at), long_ago)
                .await
                .unwrap()
        }
    };
    assert_eq!(claim("k1", "h1", "2026-01-01T00:00:00Z").await, None);
    let running = claim("k1", "h1", "2026-01-01T00:00:01Z").await.unwrap();
    assert_eq!(
        (running.request_hash.as_str(), running.status),
        ("h1", None)
    );
    s.complete_idempotency_key(&ws, "k1", 201, r#"{"id":"x"}"#)
        .await
        .unwrap();
    let done = claim("k1", "h2", "2026-01-01T00:00:02Z").await.unwrap();
    assert_eq!(
        done,
        IdempotencyRecord {
            request_hash: "h1".into(),
            status: Some(201),
            body: Some(r#"{"id":"x"}"#.into()),
        }
    );
    // A failed request releases its claim: the retry claims it again.
    assert_eq!(claim("k2", "h1", "2026-01-01T00:00:00Z").await, None);
    s.release_idempotency_key(&ws, "k2").await.unwrap();
    assert_eq!(claim("k2", "h1", "2026-01-01T00:00:05Z").await, None);
    // A completed answer is not released by mistake.
    s.release_idempotency_key(&ws, "k1").await.unwrap();
    assert!(claim("k1", "h1", "2026-01-01T00:00:06Z").await.is_some());
    // Expired claims are forgotten.
    let fresh = s
        .claim_idempotency_key(
            &ws,
            "k1",
            "h9",
            t("2026-01-03T00:00:00Z"),
            t("2026-01-02T00:00:00Z"),
        )
        .await
        .unwrap();
    assert_eq!(fresh, None);
    // Another workspace has keys of its own.
    let other = WorkspaceId::from(h.other_workspace().await);
    assert_eq!(
        s.claim_idempotency_key(&other, "k1", "h1", t("2026-01-01T00:00:00Z"), long_ago)
            .await
            .unwrap(),
        None
    );
}
