//! `tollgate license issue | verify | show | revoke` against a real `tollgate serve` process:
//! Control plane case 6 from the command line. The operator issues an enterprise customer's
//! license with its agents and seats, the file verifies offline with the published key and
//! shows its limits; after `revoke`, online validation answers `revoked`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

mod common;

use common::{ADMIN_KEY, customer_on, serve_with, stdout, tollgate};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn a_license_is_issued_verified_and_revoked_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let master = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let (_server, base) = serve_with(
        &dir.path().join("data"),
        &dir.path().join("server.log"),
        &[("TOLLGATE_MASTER_KEY", master)],
    )
    .await;
    let yaml = std::fs::read_to_string(common::example("control-plane")).unwrap();
    customer_on(&base, &yaml, "bigco", "enterprise").await;

    let file = dir.path().join("bigco.license");
    let issued = tollgate()
        .args(["license", "issue", "--customer", "bigco"])
        .args(["--limit", "agents=50", "--limit", "seats=200", "--out"])
        .arg(&file)
        .args(["--server", &base, "--admin-key", ADMIN_KEY])
        .output()
        .unwrap();
    assert!(issued.status.success(), "{}", common::stderr(&issued));
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.starts_with("-----BEGIN"), "{text}");

    let shown = tollgate()
        .args(["license", "show"])
        .arg(&file)
        .output()
        .unwrap();
    let shown = stdout(&shown);
    let payload: serde_json::Value = serde_json::from_str(&shown[shown.find('{').unwrap()..])
        .unwrap_or_else(|e| panic!("{e}: {shown}"));
    assert_eq!(payload["customer"], "bigco", "{payload}");
    assert_eq!(payload["limits"]["agents"], 50, "{payload}");
    assert_eq!(payload["limits"]["seats"], 200, "{payload}");
    let id = payload["id"].as_str().unwrap().to_owned();

    let keys = common::admin(&base, Method::GET, "/v1/license_keys", json!({})).await;
    let key = keys[0]["public_key"].as_str().unwrap().to_owned();
    let verify = |key: &str| {
        tollgate()
            .args(["license", "verify"])
            .arg(&file)
            .args(["--key", key, "--at", payload["issued"].as_str().unwrap()])
            .output()
            .unwrap()
    };
    let verified = verify(&key);
    assert!(
        verified.status.success(),
        "{} {}",
        stdout(&verified),
        common::stderr(&verified)
    );
    // Trusting only a key that did not sign it: refused as signed by an unknown key.
    let stranger = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
    let refused = verify(stranger);
    assert!(!refused.status.success());
    assert!(
        common::stderr(&refused).contains("unknown_key"),
        "{}",
        common::stderr(&refused)
    );

    let revoked = tollgate()
        .args(["license", "revoke", &id, "--reason", "contract ended"])
        .args(["--server", &base, "--admin-key", ADMIN_KEY])
        .output()
        .unwrap();
    assert!(revoked.status.success(), "{}", common::stderr(&revoked));
    assert!(
        stdout(&revoked).contains("contract ended"),
        "{}",
        stdout(&revoked)
    );
    let validation = common::admin(
        &base,
        Method::POST,
        "/v1/licenses/validate",
        json!({ "license": text }),
    )
    .await;
    assert_eq!(validation["valid"], false, "{validation}");
    assert_eq!(validation["code"], "revoked", "{validation}");

    // A limit that is not NAME=N is refused before any call.
    let bad = tollgate()
        .args([
            "license",
            "issue",
            "--customer",
            "bigco",
            "--limit",
            "agents",
        ])
        .args(["--server", &base, "--admin-key", ADMIN_KEY])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(
        common::stderr(&bad).contains("expected NAME=N"),
        "{}",
        common::stderr(&bad)
    );
}
