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

async fn evidence(ws: &Workspace<'_>, path: &str) -> (StatusCode, Value) {
    ws.call(Method::GET, path, None).await
}

async fn evidence_pdf_text(server: &TestServer, ws: &Workspace<'_>, query: &str) -> String {
    let resp = server
        .http
        .get(format!(
            "{}/v1/customers/acme/evidence.pdf?{query}",
            server.base
        ))
        .bearer_auth(&ws.key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "application/pdf");
    let bytes = resp.bytes().await.unwrap();
    if let Ok(dir) = std::env::var("TOLLGATE_DOCS_PDF_DIR") {
        let name = if query.contains("limit") {
            "evidence-tampered"
        } else {
            "evidence"
        };
        std::fs::write(format!("{dir}/{name}.pdf"), &bytes).unwrap();
    }
    pdf_extract::extract_text_from_mem(&bytes).expect("pdf-extract reads the report")
}

/// Text extraction joins wrapped lines without spaces: compare with whitespace left out.
fn contains_words(text: &str, expected: &str) -> bool {
    let squeeze = |s: &str| s.split_whitespace().collect::<String>();
    squeeze(text).contains(&squeeze(expected))
}

/// Lexecon case 9: the operator exports a customer's evidence report for a period: the decision
/// log (time, actor, outcome), counts per meter, and the ledger's verification. One stored event
/// changed afterwards makes the next report fail and name it.
async fn lexecon_9_an_evidence_report_proves_a_period_and_names_a_tampered_event(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = server.workspace("lexecon.yaml").await;
    ws.customer("acme", "startup", None, false).await;
    ws.customer("beta", "startup", None, false).await;
    let (status, profile) = ws
        .call(
            Method::PUT,
            "/v1/billing_profile",
            Some(json!({"legal_name": "Lexecon Ltd", "address": ["1 Audit Street", "London"], "footer": "Lexecon keeps this report for seven years."})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{profile}");
    let decision = |id: &str, at: &str, actor: &str, outcome: &str| {
        json!({"id": id, "customer": "acme", "type": "decision.evaluated", "timestamp": at,
               "subject": actor, "properties": {"actor": actor, "outcome": outcome}})
    };
    let (status, report) = ws
        .events(json!([
            decision("d-1", "2026-11-02T09:00:00Z", "agent-a", "allow"),
            decision("d-2", "2026-11-03T10:30:00Z", "agent-b", "deny"),
            decision("d-3", "2026-11-04T11:00:00Z", "agent-a", "allow"),
            decision("d-4", "2026-11-05T12:15:00Z", "agent-c", "escalate"),
            // Outside the period, and another customer's: in neither the list nor the counts.
            decision("d-5", "2026-10-31T23:59:59Z", "agent-a", "allow"),
            {"id": "b-1", "customer": "beta", "type": "decision.evaluated", "timestamp": "2026-11-03T00:00:00Z", "properties": {"actor": "agent-z", "outcome": "allow"}},
        ]))
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let period = "from=2026-11-01T00:00:00Z&to=2026-12-01T00:00:00Z";

    // Before sealing, the report says so: no ledger index yet.
    let (status, early) = evidence(&ws, &format!("/v1/customers/acme/evidence?{period}")).await;
    assert_eq!(status, StatusCode::OK, "{early}");
    assert_eq!(early["events_in_period"], 4);
    assert_eq!(early["events_sealed"], 0);
    assert!(early["events"][0]["ledger_index"].is_null(), "{early}");

    seal(&ws).await;
    let (status, good) = evidence(&ws, &format!("/v1/customers/acme/evidence?{period}")).await;
    assert_eq!(status, StatusCode::OK, "{good}");
    assert_eq!(good["events_in_period"], 4);
    assert_eq!(good["events_sealed"], 4);
    let ids: Vec<&str> = good["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["d-1", "d-2", "d-3", "d-4"]);
    assert_eq!(good["events"][1]["properties"]["outcome"], "deny");
    assert_eq!(good["events"][1]["subject"], "agent-b");
    // Each listed index is the event's own entry: its inclusion proof agrees.
    let (_, proof) = ws
        .call(Method::GET, "/v1/ledger/proof?event=d-2", None)
        .await;
    assert_eq!(good["events"][1]["ledger_index"], proof["seq"]);
    let count = |report: &Value, meter: &str| {
        report["counts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["meter"] == meter)
            .unwrap_or_else(|| panic!("no count of {meter}: {report}"))["value"]
            .clone()
    };
    assert_eq!(count(&good, "decisions"), "4");
    assert_eq!(count(&good, "unique_actors"), "3");
    assert_eq!(count(&good, "api_calls"), "0");
    assert_eq!(good["verification"]["ok"], true, "{good}");
    assert!(
        good["checkpoint"]["note"]
            .as_str()
            .unwrap()
            .contains("tollgate.ledger/")
    );
    assert!(!good["public_keys"].as_array().unwrap().is_empty());

    let text = evidence_pdf_text(&server, &ws, period).await;
    for expected in [
        "Evidence report",
        "VERIFIED",
        "Lexecon Ltd",
        "1 Audit Street",
        "acme",
        "2026-11-01 00:00:00 to 2026-12-01 00:00:00 (UTC)",
        "4 in the period, 4 sealed in the ledger",
        "decision.evaluated",
        "agent-c",
        "outcome=escalate",
        "unique_actors 3",
        "The ledger verifies",
        "SIGNED CHECKPOINT",
        "HOW TO VERIFY",
        "Lexecon keeps this report for seven years.",
    ] {
        assert!(
            contains_words(&text, expected),
            "{expected:?} not in the PDF:\n{text}"
        );
    }
    assert!(
        !text.contains("agent-z"),
        "another customer's event in the report:\n{text}"
    );

    // One stored event changed behind the server's back: the next report fails and names it.
    let changed = tamper(
        &server,
        backend,
        "UPDATE events SET properties = '{\"actor\": \"agent-b\", \"outcome\": \"allow\"}' WHERE workspace = $1 AND id = $2",
        &[&ws.id, "d-2"],
    )
    .await;
    assert_eq!(changed, 1);
    let (status, bad) = evidence(&ws, &format!("/v1/customers/acme/evidence?{period}")).await;
    assert_eq!(status, StatusCode::OK, "{bad}");
    assert_eq!(bad["verification"]["ok"], false, "{bad}");
    assert_eq!(
        bad["verification"]["first_bad"]["problem"],
        "record_changed"
    );
    assert_eq!(bad["verification"]["first_bad"]["reference"], "d-2");
    assert_eq!(bad["verification"]["first_bad"]["seq"], proof["seq"]);
    let text = evidence_pdf_text(&server, &ws, &format!("{period}&limit=2")).await;
    let marked = format!("{} (FAILED)", proof["seq"]);
    for expected in [
        "FAILED",
        "record_changed",
        "d-2",
        &marked,
        "The first 2 of 4 events are listed",
    ] {
        assert!(
            contains_words(&text, expected),
            "{expected:?} not in the PDF:\n{text}"
        );
    }
    assert!(!text.contains("VERIFIED"), "{text}");

    // Bad requests: a clear 400 with its code, a 404 for an unknown customer.
    let (status, refused) = evidence(
        &ws,
        "/v1/customers/acme/evidence?from=2026-12-01T00:00:00Z&to=2026-11-01T00:00:00Z",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert_eq!(refused["code"], "invalid_range");
    let (status, refused) = evidence(
        &ws,
        &format!("/v1/customers/acme/evidence?{period}&limit=0"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    let (status, _) = evidence(&ws, &format!("/v1/customers/nobody/evidence?{period}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
backend_tests!(lexecon_9_an_evidence_report_proves_a_period_and_names_a_tampered_event);

/// An invoice's evidence (`GET /v1/invoices/{id}/evidence`): each usage line with the ledger
/// range of its events, the plan and catalog version it was rated with, and every event of the
/// period with an inclusion proof that checks offline under the signed checkpoint. The
/// customer's own key reads it; another customer's key gets 404. Recomputing the lines from the
/// proven events with core's `usage_lines` gives the invoice's lines.
async fn an_invoice_s_evidence_proves_the_events_it_was_rated_from(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = server.workspace("qlp.yaml").await;
    let clock = ws.test_clock("2026-11-01T00:00:00Z").await;
    let key = ws.customer("coder", "payg", Some(&clock), false).await;
    let other = ws.customer("other", "payg", Some(&clock), false).await;
    ws.advance(&clock, "2026-11-20T00:00:00Z").await;
    let mut events = Vec::new();
    for (n, tier) in [(3, "T0"), (2, "T1")] {
        for i in 0..n {
            for customer in ["coder", "other"] {
                events.push(json!({"id": format!("{customer}-{tier}-{i}"), "customer": customer, "type": "codegen.completed", "timestamp": format!("2026-11-1{i}T08:00:00Z"), "properties": {"tier": tier, "model": "standard"}}));
            }
        }
    }
    let (status, report) = ws.events(json!(events)).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    ws.advance(&clock, "2026-12-01T00:00:01Z").await;
    let (_, invoices) = ws
        .call(Method::GET, "/v1/customers/coder/invoices", None)
        .await;
    let invoice = invoices["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["total"] == "0.80")
        .unwrap_or_else(|| panic!("no 0.80 invoice (3 x 0.10 + 2 x 0.25): {invoices}"))
        .clone();
    let path = format!("/v1/invoices/{}/evidence", invoice["id"].as_str().unwrap());

    // Not sealed yet: the events are listed as unproven, never silently left out.
    let (status, early) = server.call(&key, Method::GET, &path, None).await;
    assert_eq!(status, StatusCode::OK, "{early}");
    assert_eq!(early["unproven"].as_array().unwrap().len(), 5, "{early}");

    seal(&ws).await;
    let (status, evidence) = server.call(&key, Method::GET, &path, None).await;
    assert_eq!(status, StatusCode::OK, "{evidence}");
    let (status, _) = server.call(&other, Method::GET, &path, None).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "another customer's invoice is not found"
    );
    assert_eq!(evidence["rated_with"]["plan"], "payg");
    assert_eq!(evidence["rated_with"]["recorded"], true);
    assert!(evidence["unproven"].as_array().unwrap().is_empty());

    let keys = published_keys(&ws).await;
    let signed = Checkpoint::verify(evidence["checkpoint"]["note"].as_str().unwrap(), &keys)
        .expect("signed by a published key");
    let proven = evidence["events"].as_array().unwrap();
    assert_eq!(
        proven.len(),
        5,
        "coder's five events, not other's: {evidence}"
    );
    let mut rebuilt = Vec::new();
    for event in proven {
        let text = event["entry"].as_str().unwrap();
        merkle::verify_inclusion(
            event["seq"].as_u64().unwrap(),
            signed.size,
            &merkle::leaf_hash(text.as_bytes()),
            &hashes(&event["proof"]),
            &signed.root,
        )
        .expect("each event is in the signed log");
        let entry: Value = serde_json::from_str(text).unwrap();
        assert_eq!(entry["customer"], "coder");
        rebuilt.push(tollgate_core::event::Event {
            event_type: entry["type"].as_str().unwrap().to_owned(),
            timestamp: entry["at"].as_str().unwrap().parse().unwrap(),
            subject: None,
            properties: entry["body"].as_object().unwrap().clone(),
        });
    }
    let seqs: Vec<i64> = proven.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    let generations: Vec<&Value> = evidence["lines"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["meter"] == "generations")
        .collect();
    assert_eq!(generations.len(), 2, "{evidence}");
    for line in &generations {
        assert_eq!(line["events"], 5);
        assert_eq!(line["first_seq"].as_i64(), seqs.iter().min().copied());
        assert_eq!(line["last_seq"].as_i64(), seqs.iter().max().copied());
    }

    let catalog: tollgate_core::catalog::Catalog =
        serde_json::from_value(evidence["catalog"].clone()).unwrap();
    let period = tollgate_core::pricing::BillingPeriod::new(
        evidence["period_start"].as_str().unwrap().parse().unwrap(),
        evidence["period_end"].as_str().unwrap().parse().unwrap(),
    )
    .unwrap();
    let lines = tollgate_core::pricing::usage_lines(&catalog, "payg", &rebuilt, &period).unwrap();
    let amounts: Vec<(String, String)> = lines
        .iter()
        .map(|l| {
            let json = serde_json::to_value(l).unwrap();
            (
                l.description.clone(),
                json["amount"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let invoiced: Vec<(String, String)> = evidence["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["description"].as_str().unwrap().to_owned(),
                l["amount"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(amounts, invoiced);
}
backend_tests!(an_invoice_s_evidence_proves_the_events_it_was_rated_from);

/// The operator's actions the issue names, each a domain event written with its change and so
/// an entry of the log: a catalog applied, a customer suspended and reinstated, a key created
/// and revoked. Each is proven by an inclusion proof under the signed checkpoint; the key's
/// entries never hold its secret.
async fn operator_actions_are_in_the_log(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = server.workspace("levqor.yaml").await;
    let key = ws.customer("acme", "developer", None, false).await;
    ws.post("/v1/customers/acme/suspend", json!({})).await;
    ws.post("/v1/customers/acme/suspend", json!({})).await; // already suspended: no new event
    ws.post("/v1/customers/acme/unsuspend", json!({})).await;
    let created = ws
        .post("/v1/customers/acme/keys", json!({"name": "ci"}))
        .await;
    let key_id = created["id"].as_str().unwrap().to_owned();
    ws.post(
        &format!("/v1/customers/acme/keys/{key_id}/revoke"),
        json!({}),
    )
    .await;
    seal(&ws).await;
    let keys = published_keys(&ws).await;

    let (status, page) = ws
        .call(Method::GET, "/v1/domain_events?limit=100", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let events = page["data"].as_array().unwrap();
    let of = |t: &str| -> Vec<&Value> { events.iter().filter(|e| e["type"] == t).collect() };
    assert_eq!(of("catalog.updated").len(), 1, "{page}");
    assert_eq!(of("catalog.updated")[0]["data"]["version"], 1);
    assert!(
        of("catalog.updated")[0]["data"]["plans"]
            .as_array()
            .unwrap()
            .contains(&json!("developer"))
    );
    assert_eq!(of("customer.suspended").len(), 1, "{page}");
    assert_eq!(of("customer.reinstated").len(), 1, "{page}");
    // The subscription's key and the one made here.
    assert_eq!(of("api_key.created").len(), 2, "{page}");
    assert_eq!(of("api_key.revoked").len(), 1, "{page}");
    assert_eq!(of("api_key.revoked")[0]["data"]["key"], key_id.as_str());

    for t in [
        "catalog.updated",
        "customer.suspended",
        "customer.reinstated",
        "api_key.created",
        "api_key.revoked",
    ] {
        let id = of(t)[0]["id"].as_str().unwrap().to_owned();
        let (status, proof) = ws
            .call(Method::GET, &format!("/v1/ledger/proof?action={id}"), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{t}: {proof}");
        let entry = proof["entry"].as_str().unwrap();
        assert!(entry.contains(&format!("\"type\":\"{t}\"")), "{entry}");
        assert!(
            !entry.contains(&key),
            "a key's secret is never logged: {entry}"
        );
        let signed = Checkpoint::verify(proof["checkpoint"].as_str().unwrap(), &keys).unwrap();
        merkle::verify_inclusion(
            proof["seq"].as_u64().unwrap(),
            signed.size,
            &merkle::leaf_hash(entry.as_bytes()),
            &hashes(&proof["proof"]),
            &signed.root,
        )
        .unwrap_or_else(|e| panic!("{t}: {e}"));
    }
    assert_eq!(verify(&ws).await["ok"], true);
}
backend_tests!(operator_actions_are_in_the_log);

/// A server started with another master key than the one that sealed the workspace's signing
/// key refuses to sign with a clear 503 `master_key_mismatch` (an operator's configuration,
/// not a server fault), and signs again once started with the right key.
async fn another_master_key_is_named_not_an_internal_error(backend: Backend) {
    let first = TestServer::start(backend).await;
    let ws = first.workspace("levqor.yaml").await;
    ws.customer("acme", "developer", None, false).await;
    calls(&ws, "acme", 0..2).await;
    seal(&ws).await; // signs a checkpoint: the workspace now has a sealed signing key
    let (workspace, key) = (ws.id.clone(), ws.key.clone());
    let data_dir = first.dir.path().to_owned();
    let other_master = "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";
    let second = TestServer::start_with(backend, |c| {
        c.data_dir = data_dir.clone();
        c.master_key = Some(tollgate_server::sealing::MasterKey::parse(other_master).unwrap());
    })
    .await;
    let on_second = Workspace {
        id: workspace,
        key,
        server: &second,
    };
    calls(&on_second, "acme", 2..3).await;
    let (status, body) = on_second.call(Method::POST, "/v1/ledger/seal", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["code"], "master_key_mismatch", "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("tollgate doctor"),
        "{body}"
    );
    drop(second);
    // The right key signs again.
    let sealed = seal(&ws).await;
    assert!(sealed["checkpoint"].is_string(), "{sealed}");
}
backend_tests!(another_master_key_is_named_not_an_internal_error);

/// A backlog longer than one sealing pass is sealed pass after pass by one call, in the order
/// it was written, and the log it leaves verifies: nothing is skipped or sealed twice where one
/// pass ends and the next begins.
async fn a_backlog_longer_than_a_pass_is_sealed_whole(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = server.workspace("levqor.yaml").await;
    ws.customer("acme", "developer", None, false).await;
    let pass = u32::try_from(tollgate_server::app::ledger::PASS_LIMIT).unwrap();
    let total = pass + 7;
    let mut from = 0;
    while from < total {
        let to = (from + 2_500).min(total);
        calls(&ws, "acme", from..to).await;
        from = to;
    }
    let sealed = seal(&ws).await;
    let appended = sealed["appended"].as_u64().unwrap();
    // The usage events and the signup's domain events, each once.
    assert!(appended > u64::from(total), "{sealed}");
    assert_eq!(sealed["appended"], sealed["size"], "{sealed}");
    assert_eq!(
        seal(&ws).await["appended"],
        0,
        "nothing left after one call"
    );
    let report = verify(&ws).await;
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["size"], sealed["size"], "{report}");
    // The first and the last event written are in the log, proven against the root.
    for id in ["acme-call-0", &format!("acme-call-{}", total - 1)] {
        let (status, proof) = ws
            .call(Method::GET, &format!("/v1/ledger/proof?event={id}"), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{proof}");
    }
}
backend_tests!(a_backlog_longer_than_a_pass_is_sealed_whole);
