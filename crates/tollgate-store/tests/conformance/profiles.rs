//! Cases for `ProfileStore`: a customer's and the workspace's billing profiles.

use crate::Harness;
use tollgate_core::ids::{CustomerId, WorkspaceId};
use tollgate_store::StoreError;

pub(crate) async fn billing_profiles_are_replaced_and_scoped(h: &Harness) {
    let s = h.store.as_ref();
    let ws = WorkspaceId::from(&h.ws);
    let cus = CustomerId::from("cus_p");
    h.customer(&h.ws, "cus_p").await;
    let at = jiff::Timestamp::from_second(1_790_000_000).unwrap();

    assert_eq!(s.customer_profile(&ws, &cus).await.unwrap(), None);
    assert_eq!(s.seller_profile(&ws).await.unwrap(), None);

    let first = serde_json::json!({"legal_name": "Acme SAS", "tax": {"treatment": "exempt"}});
    s.set_customer_profile(&ws, &cus, &first, at).await.unwrap();
    assert_eq!(s.customer_profile(&ws, &cus).await.unwrap(), Some(first));
    let second = serde_json::json!({"legal_name": "Acme SA", "tax_ids": ["FR12345678901"]});
    s.set_customer_profile(&ws, &cus, &second, at)
        .await
        .unwrap();
    assert_eq!(
        s.customer_profile(&ws, &cus).await.unwrap(),
        Some(second.clone()),
        "a second write replaces the first"
    );

    // A profile needs its customer.
    match s
        .set_customer_profile(&ws, &CustomerId::from("cus_none"), &second, at)
        .await
    {
        Err(StoreError::NotFound { .. }) => {}
        other => panic!("expected NotFound, got {other:?}"),
    }

    let seller = serde_json::json!({"legal_name": "Lexecon GmbH", "invoice_prefix": "LEX"});
    s.set_seller_profile(&ws, &seller, at).await.unwrap();
    let seller2 = serde_json::json!({"legal_name": "Lexecon AG"});
    s.set_seller_profile(&ws, &seller2, at).await.unwrap();
    assert_eq!(s.seller_profile(&ws).await.unwrap(), Some(seller2));

    // Another workspace sees none of it.
    let other = WorkspaceId::from(h.other_workspace().await);
    assert_eq!(s.seller_profile(&other).await.unwrap(), None);
    assert_eq!(s.customer_profile(&other, &cus).await.unwrap(), None);
}
