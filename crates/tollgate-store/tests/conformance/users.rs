//! Cases for `UserStore`: operator users and web sessions.

use crate::Harness;
use tollgate_core::ids::WorkspaceId;
use tollgate_store::StoreError;
use tollgate_store::users::{OperatorUserRecord, WebSessionRecord};

pub(crate) async fn operator_users_and_web_sessions(h: &Harness) {
    let s = h.store.as_ref();
    let ws = WorkspaceId::from(&h.ws);
    let at = jiff::Timestamp::from_second(1_790_000_000).unwrap();
    let user = OperatorUserRecord {
        workspace: h.ws.clone(),
        id: "usr_1".into(),
        email: "ops@example.com".into(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        role: "billing".into(),
        created_at: at,
    };
    s.create_operator_user(&user).await.unwrap();
    // One email per workspace.
    let twin = OperatorUserRecord {
        id: "usr_2".into(),
        ..user.clone()
    };
    match s.create_operator_user(&twin).await {
        Err(StoreError::AlreadyExists { .. }) => {}
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
    assert_eq!(
        s.operator_user_by_email(&ws, "ops@example.com")
            .await
            .unwrap(),
        Some(user.clone())
    );
    assert_eq!(
        s.operator_user(&ws, "usr_1").await.unwrap(),
        Some(user.clone())
    );
    assert_eq!(
        s.list_operator_users(&ws).await.unwrap(),
        vec![user.clone()]
    );

    // The same email in another workspace is another user; neither sees the other.
    let other = WorkspaceId::from(h.other_workspace().await);
    assert_eq!(
        s.operator_user_by_email(&other, "ops@example.com")
            .await
            .unwrap(),
        None
    );
    s.create_operator_user(&OperatorUserRecord {
        workspace: other.as_str().to_owned(),
        ..user.clone()
    })
    .await
    .unwrap();

    // Sessions are found by their hash alone, used once, and deleted.
    let session = WebSessionRecord {
        workspace: h.ws.clone(),
        token_hash: format!("hash_{}", h.ws),
        kind: "portal_link".into(),
        subject: "cus_1".into(),
        csrf: "csrf_1".into(),
        created_at: at,
        expires_at: at + jiff::SignedDuration::from_mins(15),
        used_at: None,
    };
    s.create_web_session(&session).await.unwrap();
    assert_eq!(
        s.find_web_session(&session.token_hash).await.unwrap(),
        Some(session.clone())
    );
    assert_eq!(s.find_web_session("hash_unknown").await.unwrap(), None);
    // Another workspace cannot use or end it.
    assert!(
        !s.use_web_session(&other, &session.token_hash, at)
            .await
            .unwrap()
    );
    assert!(
        s.use_web_session(&ws, &session.token_hash, at)
            .await
            .unwrap()
    );
    assert!(
        !s.use_web_session(&ws, &session.token_hash, at)
            .await
            .unwrap(),
        "a single-use session is used once"
    );
    assert_eq!(
        s.find_web_session(&session.token_hash)
            .await
            .unwrap()
            .unwrap()
            .used_at,
        Some(at)
    );
    s.delete_web_session(&other, &session.token_hash)
        .await
        .unwrap();
    assert!(
        s.find_web_session(&session.token_hash)
            .await
            .unwrap()
            .is_some()
    );
    s.delete_web_session(&ws, &session.token_hash)
        .await
        .unwrap();
    assert_eq!(s.find_web_session(&session.token_hash).await.unwrap(), None);

    // Pruning deletes the workspace's expired sessions only: not live ones, not another
    // workspace's.
    let expired = WebSessionRecord {
        token_hash: format!("hash_expired_{}", h.ws),
        expires_at: at - jiff::SignedDuration::from_mins(1),
        ..session.clone()
    };
    let live = WebSessionRecord {
        token_hash: format!("hash_live_{}", h.ws),
        ..session.clone()
    };
    s.create_web_session(&expired).await.unwrap();
    s.create_web_session(&live).await.unwrap();
    assert_eq!(s.prune_web_sessions(&other, at).await.unwrap(), 0);
    assert_eq!(s.prune_web_sessions(&ws, at).await.unwrap(), 1);
    assert_eq!(s.find_web_session(&expired.token_hash).await.unwrap(), None);
    assert!(
        s.find_web_session(&live.token_hash)
            .await
            .unwrap()
            .is_some()
    );

    // Roles change, and the workspace never loses its last admin (demoted or removed).
    assert!(s.set_operator_role(&ws, "usr_1", "admin").await.unwrap());
    assert!(
        !s.set_operator_role(&ws, "usr_1", "read_only")
            .await
            .unwrap(),
        "the last admin stays an admin"
    );
    assert!(!s.delete_operator_user(&ws, "usr_1").await.unwrap());
    assert!(!s.set_operator_role(&ws, "usr_none", "admin").await.unwrap());
    let second = OperatorUserRecord {
        id: "usr_3".into(),
        email: "second@example.com".into(),
        ..user.clone()
    };
    s.create_operator_user(&second).await.unwrap();
    assert!(s.set_operator_role(&ws, "usr_3", "admin").await.unwrap());
    // Another workspace's admin does not count, nor can it be changed from here.
    assert!(!s.delete_operator_user(&other, "usr_3").await.unwrap());
    assert!(s.set_operator_role(&ws, "usr_1", "billing").await.unwrap());
    assert_eq!(
        s.operator_user(&ws, "usr_1").await.unwrap().unwrap().role,
        "billing"
    );
    assert!(!s.delete_operator_user(&ws, "usr_3").await.unwrap());
    // Removing an operator ends its sessions.
    let operator_session = WebSessionRecord {
        token_hash: format!("hash_operator_{}", h.ws),
        kind: "operator".into(),
        subject: "usr_1".into(),
        ..session.clone()
    };
    s.create_web_session(&operator_session).await.unwrap();
    assert!(s.delete_operator_user(&ws, "usr_1").await.unwrap());
    assert_eq!(s.operator_user(&ws, "usr_1").await.unwrap(), None);
    assert_eq!(
        s.find_web_session(&operator_session.token_hash)
            .await
            .unwrap(),
        None
    );
    assert!(!s.delete_operator_user(&ws, "usr_1").await.unwrap());
}
