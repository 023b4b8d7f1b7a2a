//! Cases for the customer lifecycle writes: signup (customer, subscription and key in one
//! transaction) and archive (customer marked, keys revoked, subscriptions ended together).

use crate::Harness;
use crate::support::*;
use tollgate_core::ids::{CustomerId, WorkspaceId};
use tollgate_store::customers::Signup;
use tollgate_store::*;

pub(crate) async fn signup_is_all_or_nothing(h: &Harness) {
    let s = h.store.as_ref();
    let ws = WorkspaceId::from(&h.ws);
    let signup = Signup {
        customer: customer(&h.ws, "cus_new"),
        subscription: subscription(&h.ws, "sub_new", "cus_new", "2026-11-03T10:00:00Z"),
        key: api_key(&h.ws, "key_new", "cus_new", "2026-11-03T10:00:00Z"),
        referral: None,
        events: Vec::new(),
    };
    s.signup(&signup).await.unwrap();
    assert_eq!(
        s.get_customer(&ws, "cus_new").await.unwrap(),
        Some(signup.customer.clone())
    );
    assert_eq!(
        s.get_subscription(&ws, "sub_new").await.unwrap(),
        Some(signup.subscription.clone())
    );
    assert_eq!(
        s.find_api_key(&signup.key.secret_hash).await.unwrap(),
        Some(signup.key.clone())
    );

    // The same customer id again: refused, and the other rows of the attempt are not written.
    let again = Signup {
        customer: customer(&h.ws, "cus_new"),
        subscription: subscription(&h.ws, "sub_other", "cus_new", "2026-11-03T10:00:00Z"),
        key: api_key(&h.ws, "key_other", "cus_new", "2026-11-03T10:00:00Z"),
        referral: None,
        events: Vec::new(),
    };
    assert_exists(s.signup(&again).await, "customer", "cus_new");
    assert_eq!(s.get_subscription(&ws, "sub_other").await.unwrap(), None);
    assert_eq!(s.find_api_key(&again.key.secret_hash).await.unwrap(), None);

    // A key that collides fails the whole signup: no customer is left behind.
    let mut clash = Signup {
        customer: customer(&h.ws, "cus_clash"),
        subscription: subscription(&h.ws, "sub_clash", "cus_clash", "2026-11-03T10:00:00Z"),
        key: api_key(&h.ws, "key_new", "cus_clash", "2026-11-03T10:00:00Z"),
        referral: None,
        events: Vec::new(),
    };
    clash.key.secret_hash = fresh("hash");
    assert_exists(s.signup(&clash).await, "api_key", "key_new");
    assert_eq!(s.get_customer(&ws, "cus_clash").await.unwrap(), None);
    assert_eq!(s.get_subscription(&ws, "sub_clash").await.unwrap(), None);
}

pub(crate) async fn archive_revokes_keys_and_ends_subscriptions(h: &Harness) {
    let s = h.store.as_ref();
    let ws = WorkspaceId::from(&h.ws);
    let cus = CustomerId::from("cus_a");
    h.customer(&h.ws, "cus_a").await;
    h.customer(&h.ws, "cus_b").await;
    let sub = subscription(&h.ws, "sub_a", "cus_a", "2026-01-01T00:00:00Z");
    s.create_subscription(&sub).await.unwrap();
    let k1 = api_key(&h.ws, "key_1", "cus_a", "2026-01-01T00:00:00Z");
    let k2 = api_key(&h.ws, "key_2", "cus_a", "2026-01-01T00:00:01Z");
    let kb = api_key(&h.ws, "key_b", "cus_b", "2026-01-01T00:00:00Z");
    for k in [&k1, &k2, &kb] {
        s.create_api_key(k).await.unwrap();
    }
    let early = ts("2026-01-05T00:00:00Z");
    s.revoke_api_key(&ws, &cus, &k2.id.as_str().into(), early)
        .await
        .unwrap();

    let at = ts("2026-01-10T12:00:00Z");
    let ended = SubscriptionRecord {
        status: SubscriptionStatus::Canceled,
        canceled_at: Some(at),
        ends_at: Some(at),
        ..sub.clone()
    };
    let revoked = s
        .archive_customer(&ws, &cus, at, std::slice::from_ref(&ended))
        .await
        .unwrap();
    // Only the key that was still valid is revoked now; the earlier revocation keeps its time.
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0].id, "key_1");
    assert_eq!(revoked[0].revoked_at, Some(at));
    let keys = s.list_api_keys(&ws, &cus).await.unwrap();
    let times: Vec<_> = keys.iter().map(|k| (k.id.as_str(), k.revoked_at)).collect();
    assert_eq!(times, vec![("key_1", Some(at)), ("key_2", Some(early))]);
    assert_eq!(s.get_subscription(&ws, "sub_a").await.unwrap(), Some(ended));
    let archived = s.get_customer(&ws, "cus_a").await.unwrap().unwrap();
    assert_eq!(archived.archived_at, Some(at));
    // The other customer is untouched.
    assert_eq!(
        s.find_api_key(&kb.secret_hash)
            .await
            .unwrap()
            .unwrap()
            .revoked_at,
        None
    );
    assert_eq!(
        s.get_customer(&ws, "cus_b")
            .await
            .unwrap()
            .unwrap()
            .archived_at,
        None
    );

    // Archiving again keeps the first time and revokes nothing more.
    let later = ts("2026-02-01T00:00:00Z");
    assert!(
        s.archive_customer(&ws, &cus, later, &[])
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        s.get_customer(&ws, "cus_a")
            .await
            .unwrap()
            .unwrap()
            .archived_at,
        Some(at)
    );
    assert_not_found(
        s.archive_customer(&ws, &CustomerId::from("cus_zz"), at, &[])
            .await,
        "customer",
    );
}
