//! The ledger end to end, on a real server over SQLite and PostgreSQL: every usage event and
//! domain event sealed into an RFC 6962 log with signed checkpoints; inclusion and consistency
//! proofs checked offline with `tollgate-verify` (as a customer or an auditor would, with the
//! published keys only); and rows altered behind the server's back (an event, an entry, a
//! checkpoint), each caught by the verification and named.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

#[macro_use]
mod common;

use common::{Backend, TestServer, Workspace};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tollgate_verify::merkle::{self, Hash};
use tollgate_verify::{Checkpoint, NoteKey, PublicKey};

fn hash(hex_text: &Value) -> Hash {
    hex::decode(hex_text.as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap()
}

fn hashes(list: &Value) -> Vec<Hash> {
    list.as_array().unwrap().iter().map(hash).collect()
}

/// The workspace's published checkpoint keys, as an auditor fetches them once.
async fn published_keys(ws: &Workspace<'_>) -> Vec<NoteKey> {
    let (status, keys) = ws.call(Method::GET, "/v1/license_keys", None).await;
    assert_eq!(status, StatusCode::OK, "{keys}");
    keys.as_array()
        .unwrap()
        .iter()
        .map(|k| NoteKey {
            name: format!("tollgate.ledger/{}", ws.id),
            key: PublicKey::from_base64(k["public_key"].as_str().unwrap()).unwrap(),
        })
        .collect()
}

async fn calls(ws: &Workspace<'_>, customer: &str, ids: std::ops::Range<u32>) {
    let events: Vec<Value> = ids
        .map(|i| json!({"id": format!("{customer}-call-{i}"), "customer": customer, "type": "api.call", "properties": {"path": "/v1/decide", "n": i}}))
        .collect();
    let (status, report) = ws.events(json!(events)).await;
    assert_eq!(status, StatusCode::OK, "{report}");
}

async fn seal(ws: &Workspace<'_>) -> Value {
    let (status, sealed) = ws.call(Method::POST, "/v1/ledger/seal", None).await;
    assert_eq!(status, StatusCode::OK, "{sealed}");
    sealed
}

async fn verify(ws: &Workspace<'_>) -> Value {
    let (status, report) = ws
        .call(Method::POST, "/v1/ledger/verify", Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    report
}

/// Runs `sql` on the server's database with the owner's rights (no row-level security): what
/// an attacker with the database would do.
async fn tamper(server: &TestServer, backend: Backend, sql: &str, binds: &[&str]) -> u64 {
    // sqlx wants statements that live as long as its pool's connections may keep them.
    let sql: &'static str = Box::leak(sql.to_owned().into_boxed_str());
    match backend {
        Backend::Sqlite => {
            let url = format!(
                "sqlite://{}",
                server.dir.path().join("tollgate.db").display()
            );
            let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
            let mut q = sqlx::query(sql);
            for b in binds {
                q = q.bind(*b);
            }
            q.execute(&pool).await.unwrap().rows_affected()
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&common::database_url())
                .await
                .unwrap();
            let mut q = sqlx::query(sql);
            for b in binds {
                q = q.bind(*b);
            }
            q.execute(&pool).await.unwrap().rows_affected()
        }
    }
}

async fn proofs_verify_offline_and_a_changed_event_is_named(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = server.workspace("levqor.yaml").await;
    let acme = ws.customer("acme", "developer", None, false).await;
    ws.customer("beta", "developer", None, false).await;
    calls(&ws, "acme", 0..5).await;

    // Nothing sealed yet: no proof, a clear refusal.
    let (status, refused) = ws
        .call(Method::GET, "/v1/ledger/proof?event=acme-call-3", None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert_eq!(refused["code"], "ledger_not_sealed");

    let first = seal(&ws).await;
    // 5 usage events and the domain events of two signups (customer and subscription created,
    // invoices of the developer plan...): all of them, whatever their number.
    assert!(first["appended"].as_u64().unwrap() >= 5, "{first}");
    assert_eq!(first["appended"], first["size"]);
    let note = first["checkpoint"].as_str().expect("a signed checkpoint");
    let keys = published_keys(&ws).await;
    let checkpoint = Checkpoint::verify(note, &keys).expect("signed by a published key");
    assert_eq!(checkpoint.size, first["size"].as_u64().unwrap());
    assert_eq!(checkpoint.root, hash(&first["root_hash"]));

    // The proof of one event, checked with nothing but the published keys and the RFC 6962
    // algorithms: the entry is the event, its leaf is in the signed tree.
    let (status, proof) = ws
        .call(Method::GET, "/v1/ledger/proof?event=acme-call-3", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{proof}");
    let entry: Value = serde_json::from_str(proof["entry"].as_str().unwrap()).unwrap();
    assert_eq!(entry["id"], "acme-call-3");
    assert_eq!(entry["kind"], "usage");
    assert_eq!(entry["customer"], "acme");
    assert_eq!(entry["body"]["n"], 3);
    let leaf = merkle::leaf_hash(proof["entry"].as_str().unwrap().as_bytes());
    assert_eq!(leaf, hash(&proof["leaf_hash"]));
    let signed = Checkpoint::verify(proof["checkpoint"].as_str().unwrap(), &keys).unwrap();
    merkle::verify_inclusion(
        proof["seq"].as_u64().unwrap(),
        signed.size,
        &leaf,
        &hashes(&proof["proof"]),
        &signed.root,
    )
    .expect("the event is in the signed log");
    // A wrong leaf does not verify.
    assert!(
        merkle::verify_inclusion(
            proof["seq"].as_u64().unwrap(),
            signed.size,
            &merkle::leaf_hash(b"something else"),
            &hashes(&proof["proof"]),
            &signed.root,
        )
        .is_err()
    );

    // A customer key gets proofs of its own events, and nobody else's.
    let (status, own) = server
        .call(
            &acme,
            Method::GET,
            "/v1/ledger/proof?event=acme-call-1",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{own}");
    calls(&ws, "beta", 0..1).await;
    seal(&ws).await;
    let (status, other) = server
        .call(
            &acme,
            Method::GET,
            "/v1/ledger/proof?event=beta-call-0",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{other}");

    // Sealing again with nothing new appends nothing and signs nothing.
    let idle = seal(&ws).await;
    assert_eq!(idle["appended"], 0);
    assert!(idle["checkpoint"].is_null());

    // The log grows; the later checkpoint provably extends the first.
    calls(&ws, "acme", 5..9).await;
    let second = seal(&ws).await;
    assert_eq!(second["appended"], 4);
    let (from, to) = (
        first["size"].as_u64().unwrap(),
        second["size"].as_u64().unwrap(),
    );
    let (status, consistency) = ws
        .call(
            Method::GET,
            &format!("/v1/ledger/consistency?from={from}&to={to}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{consistency}");
    let old = Checkpoint::verify(consistency["from"]["note"].as_str().unwrap(), &keys).unwrap();
    let new = Checkpoint::verify(consistency["to"]["note"].as_str().unwrap(), &keys).unwrap();
    merkle::verify_consistency(
        old.size,
        new.size,
        &old.root,
        &new.root,
        &hashes(&consistency["proof"]),
    )
    .expect("the later log extends the earlier one");

    let clean = verify(&ws).await;
    assert_eq!(clean["ok"], true, "{clean}");
    assert_eq!(clean["size"], second["size"]);
    assert_eq!(clean["root_hash"], second["root_hash"]);
    assert_eq!(clean["checkpoints_verified"], 3);

    // One stored event changed (its quantity property): the next verification names it.
    let changed = tamper(
        &server,
        backend,
        "UPDATE events SET properties = '{\"path\": \"/v1/decide\", \"n\": 300}' WHERE workspace = $1 AND id = $2",
        &[&ws.id, "acme-call-3"],
    )
    .await;
    assert_eq!(changed, 1);
    let caught = verify(&ws).await;
    assert_eq!(caught["ok"], false, "{caught}");
    assert_eq!(caught["first_bad"]["problem"], "record_changed");
    assert_eq!(caught["first_bad"]["reference"], "acme-call-3");
    assert_eq!(caught["first_bad"]["seq"], proof["seq"]);
}
backend_tests!(proofs_verify_offline_and_a_changed_event_is_named);

async fn a_changed_entry_checkpoint_or_deleted_event_is_caught(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = server.workspace("levqor.yaml").await;
    ws.customer("acme", "developer", None, false).await;
    calls(&ws, "acme", 0..6).await;
    let sealed = seal(&ws).await;
    assert_eq!(verify(&ws).await["ok"], true);

    // One byte of an entry's text: its leaf no longer matches.
    let entry = |seq: &str| {
        format!(
            "UPDATE ledger_entries SET entry = replace(entry, '\"n\":2', '\"n\":3') \
             WHERE workspace = $1 AND seq = (SELECT seq FROM ledger_entries WHERE workspace = $1 AND ref = '{seq}')"
        )
    };
    assert_eq!(
        tamper(&server, backend, &entry("acme-call-2"), &[&ws.id]).await,
        1
    );
    let caught = verify(&ws).await;
    assert_eq!(
        caught["first_bad"]["problem"], "entry_hash_mismatch",
        "{caught}"
    );
    assert_eq!(caught["first_bad"]["reference"], "acme-call-2");

    // Undo it; then rewrite the entry *and* its leaf hash as a careful attacker would (and the
    // event to match): the signed checkpoint's root gives it away.
    let undo = "UPDATE ledger_entries SET entry = replace(entry, '\"n\":3', '\"n\":2') \
                WHERE workspace = $1 AND ref = 'acme-call-2'";
    tamper(&server, backend, undo, &[&ws.id]).await;
    assert_eq!(verify(&ws).await["ok"], true);
    let (_, proof) = ws
        .call(Method::GET, "/v1/ledger/proof?event=acme-call-2", None)
        .await;
    let forged = proof["entry"]
        .as_str()
        .unwrap()
        .replace("\"n\":2", "\"n\":3");
    let forged_leaf = hex::encode(merkle::leaf_hash(forged.as_bytes()));
    tamper(
        &server,
        backend,
        "UPDATE ledger_entries SET entry = $2, leaf_hash = $3 WHERE workspace = $1 AND ref = 'acme-call-2'",
        &[&ws.id, &forged, &forged_leaf],
    )
    .await;
    tamper(
        &server,
        backend,
        "UPDATE events SET properties = '{\"n\": 3, \"path\": \"/v1/decide\"}' WHERE workspace = $1 AND id = 'acme-call-2'",
        &[&ws.id],
    )
    .await;
    let caught = verify(&ws).await;
    assert_eq!(caught["ok"], false, "{caught}");
    assert_eq!(
        caught["first_bad"]["problem"], "checkpoint_root_mismatch",
        "{caught}"
    );
    assert_eq!(caught["first_bad"]["checkpoint"], sealed["size"]);

    // A checkpoint's signed note with one character changed: its signature fails.
    let server2 = TestServer::start(backend).await;
    let ws2 = server2.workspace("levqor.yaml").await;
    ws2.customer("acme", "developer", None, false).await;
    calls(&ws2, "acme", 0..3).await;
    seal(&ws2).await;
    let flipped = tamper(
        &server2,
        backend,
        "UPDATE ledger_checkpoints SET note = replace(note, 'tollgate.ledger/', 'tollgate.ledgeR/') WHERE workspace = $1",
        &[&ws2.id],
    )
    .await;
    assert_eq!(flipped, 1);
    let caught = verify(&ws2).await;
    assert_eq!(
        caught["first_bad"]["problem"], "checkpoint_bad_signature",
        "{caught}"
    );

    // A usage event deleted after it was sealed.
    let server3 = TestServer::start(backend).await;
    let ws3 = server3.workspace("levqor.yaml").await;
    ws3.customer("acme", "developer", None, false).await;
    calls(&ws3, "acme", 0..3).await;
    seal(&ws3).await;
    tamper(
        &server3,
        backend,
        "DELETE FROM events WHERE workspace = $1 AND id = 'acme-call-1'",
        &[&ws3.id],
    )
    .await;
    let caught = verify(&ws3).await;
    assert_eq!(caught["first_bad"]["problem"], "record_missing", "{caught}");
    assert_eq!(caught["first_bad"]["reference"], "acme-call-1");
}
backend_tests!(a_changed_entry_checkpoint_or_deleted_event_is_caught);
