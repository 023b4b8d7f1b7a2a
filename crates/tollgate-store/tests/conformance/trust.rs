//! License signing keys, licenses and machine activations (`TrustStore`).

use jiff::{SignedDuration, Timestamp};
use tollgate_core::ids::{CustomerId, WorkspaceId};
use tollgate_store::trust::{Activation, LicenseRecord, SigningKeyRecord, SigningKeyStatus};

use super::Harness;

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn key(ws: &str, id: &str, at: &str) -> SigningKeyRecord {
    SigningKeyRecord {
        workspace: ws.into(),
        id: id.into(),
        public_key: format!("pub-{id}"),
        sealed_private_key: format!("sealed-{id}"),
        status: SigningKeyStatus::Active,
        created_at: t(at),
        retired_at: None,
    }
}

fn license(ws: &str, id: &str, customer: &str, sub: Option<&str>) -> LicenseRecord {
    LicenseRecord {
        workspace: ws.into(),
        id: id.into(),
        customer: customer.into(),
        subscription: sub.map(Into::into),
        plan: "enterprise".into(),
        key_id: "k1".into(),
        file: "-----BEGIN TOLLGATE LICENSE-----\n...".into(),
        issued_at: t("2026-11-01T00:00:00Z"),
        expires_at: t("2027-11-01T00:00:00Z"),
        max_machines: Some(2),
        revoked_at: None,
        revoke_reason: None,
    }
}

pub(crate) async fn signing_keys_rotate_and_retire(h: &Harness) {
    let ws = WorkspaceId::from(h.ws.as_str());
    let s = h.store.as_ref();
    s.rotate_signing_key(&key(&h.ws, "k1", "2026-01-01T00:00:00Z"))
        .await
        .unwrap();
    s.rotate_signing_key(&key(&h.ws, "k2", "2026-02-01T00:00:00Z"))
        .await
        .unwrap();
    let keys = s.signing_keys(&ws).await.unwrap();
    let states: Vec<_> = keys.iter().map(|k| (k.id.as_str(), k.status)).collect();
    assert_eq!(
        states,
        [
            ("k2", SigningKeyStatus::Active),
            ("k1", SigningKeyStatus::Previous)
        ]
    );
    assert_eq!(keys[1].sealed_private_key, "sealed-k1");
    // The active key cannot be retired; the previous one can, once.
    assert!(
        s.retire_signing_key(&ws, "k2", t("2026-03-01T00:00:00Z"))
            .await
            .is_err()
    );
    let retired = s
        .retire_signing_key(&ws, "k1", t("2026-03-01T00:00:00Z"))
        .await
        .unwrap();
    assert_eq!(retired.status, SigningKeyStatus::Retired);
    assert_eq!(retired.retired_at, Some(t("2026-03-01T00:00:00Z")));
    assert!(
        s.retire_signing_key(&ws, "nope", t("2026-03-01T00:00:00Z"))
            .await
            .is_err()
    );
    // Another workspace sees none of them.
    let other = h.other_workspace().await;
    assert!(
        s.signing_keys(&WorkspaceId::from(other.as_str()))
            .await
            .unwrap()
            .is_empty()
    );
}

pub(crate) async fn licenses_issue_list_and_revoke(h: &Harness) {
    let ws = WorkspaceId::from(h.ws.as_str());
    let s = h.store.as_ref();
    h.customer(&h.ws, "acme").await;
    let l1 = license(&h.ws, "lic_1", "acme", Some("sub_1"));
    s.insert_license(&l1, &[]).await.unwrap();
    assert!(s.insert_license(&l1, &[]).await.is_err(), "ids are unique");
    assert!(
        s.insert_license(&license(&h.ws, "lic_x", "ghost", None), &[])
            .await
            .is_err(),
        "the customer must exist"
    );
    let mut l2 = license(&h.ws, "lic_2", "acme", Some("sub_1"));
    l2.issued_at = t("2027-11-01T00:00:00Z");
    s.insert_license(&l2, &[]).await.unwrap();
    assert_eq!(s.get_license(&ws, "lic_1").await.unwrap(), Some(l1.clone()));
    let listed = s
        .list_licenses(&ws, &CustomerId::from("acme"))
        .await
        .unwrap();
    assert_eq!(
        listed.iter().map(|l| l.id.as_str()).collect::<Vec<_>>(),
        ["lic_2", "lic_1"]
    );
    let revoked = s
        .revoke_license(&ws, "lic_1", t("2026-12-01T00:00:00Z"), "canceled", &[])
        .await
        .unwrap();
    assert_eq!(revoked.revoked_at, Some(t("2026-12-01T00:00:00Z")));
    assert_eq!(revoked.revoke_reason.as_deref(), Some("canceled"));
    // A second revocation keeps the first.
    let again = s
        .revoke_license(&ws, "lic_1", t("2027-01-01T00:00:00Z"), "other", &[])
        .await
        .unwrap();
    assert_eq!(again.revoke_reason.as_deref(), Some("canceled"));
    let live = s.subscription_licenses(&ws, "sub_1").await.unwrap();
    assert_eq!(
        live.iter().map(|l| l.id.as_str()).collect::<Vec<_>>(),
        ["lic_2"]
    );
    assert!(
        s.revoke_license(&ws, "nope", t("2027-01-01T00:00:00Z"), "x", &[])
            .await
            .is_err()
    );
    let other = h.other_workspace().await;
    assert_eq!(
        s.get_license(&WorkspaceId::from(other.as_str()), "lic_1")
            .await
            .unwrap(),
        None
    );
}

pub(crate) async fn activations_hold_seats_until_heartbeats_stop(h: &Harness) {
    let ws = WorkspaceId::from(h.ws.as_str());
    let s = h.store.as_ref();
    h.customer(&h.ws, "acme").await;
    s.insert_license(&license(&h.ws, "lic_1", "acme", None), &[])
        .await
        .unwrap();
    let t0 = t("2026-11-01T00:00:00Z");
    let stale = SignedDuration::from_mins(30);
    let activate = |fp: &'static str, at: Timestamp| {
        let ws = ws.clone();
        async move {
            s.activate_machine(&ws, "lic_1", fp, at, Some(2), at - stale)
                .await
                .unwrap()
        }
    };
    assert!(matches!(activate("m1", t0).await, Activation::Active(_)));
    assert!(matches!(activate("m2", t0).await, Activation::Active(_)));
    assert_eq!(activate("m3", t0).await, Activation::Full { active: 2 });
    // Re-activating a machine that holds a seat refreshes it.
    let Activation::Active(again) = activate("m1", t0 + SignedDuration::from_mins(10)).await else {
        panic!("m1 holds a seat")
    };
    assert_eq!(again.activated_at, t0);
    assert_eq!(again.last_heartbeat, t0 + SignedDuration::from_mins(10));
    // m1 keeps beating, m2 stops: 40 minutes later m2's seat is free for m3.
    let beat = s
        .heartbeat_machine(&ws, "lic_1", "m1", t0 + SignedDuration::from_mins(35))
        .await
        .unwrap();
    assert_eq!(beat.last_heartbeat, t0 + SignedDuration::from_mins(35));
    assert!(matches!(
        activate("m3", t0 + SignedDuration::from_mins(40)).await,
        Activation::Active(_)
    ));
    let machines: Vec<_> = s
        .activations(&ws, "lic_1")
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.fingerprint)
        .collect();
    assert_eq!(machines, ["m1", "m3"]);
    assert!(
        s.heartbeat_machine(&ws, "lic_1", "m2", t0 + SignedDuration::from_mins(41))
            .await
            .is_err(),
        "a released machine must activate again"
    );
    s.deactivate_machine(&ws, "lic_1", "m3").await.unwrap();
    assert!(s.deactivate_machine(&ws, "lic_1", "m3").await.is_err());
    // Unlimited licenses take any number of machines.
    for fp in ["a", "b", "c"] {
        assert!(matches!(
            s.activate_machine(&ws, "lic_1", fp, t0, None, t0 - stale)
                .await
                .unwrap(),
            Activation::Active(_)
        ));
    }
}
