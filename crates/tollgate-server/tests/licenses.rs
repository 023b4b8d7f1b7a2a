#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Licenses end to end on a real server, on both backends: Lexecon case 8 and Control plane
//! case 6 (`shared/scenarios`), licenses following subscriptions (plan change, cancellation,
//! renewal, non-payment), key rotation, machine seats, and the clear refusal without a master
//! key.

mod common;

use common::{TestServer, Workspace, backend_tests};
use jiff::Timestamp;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tollgate_verify::{Keyring, LicenseFile, Options, PublicKey, Reason, Status, verify};

/// An example catalog with `from` replaced by `to` (once).
fn catalog_with(file: &str, from: &str, to: &str) -> String {
    let yaml = std::fs::read_to_string(format!(
        "{}/../../examples/catalogs/{file}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    assert_eq!(yaml.matches(from).count(), 1, "{from} is unique in {file}");
    yaml.replace(from, to)
}

/// Lexecon's catalog with 14 days of grace after a license's term.
fn lexecon_with_grace() -> String {
    catalog_with(
        "lexecon.yaml",
        "    license: {}\n",
        "    license: { grace_days: 14 }\n",
    )
}

/// Control plane's catalog with 7 days of grace and two machines per license.
fn control_plane_with_seats() -> String {
    catalog_with(
        "control-plane.yaml",
        "    license: {}\n",
        "    license: { grace_days: 7, max_machines: 2 }\n",
    )
}

async fn keyring(ws: &Workspace<'_>) -> Keyring {
    let (status, keys) = ws.call(Method::GET, "/v1/license_keys", None).await;
    assert_eq!(status, StatusCode::OK, "{keys}");
    let mut ring = Keyring::new();
    for k in keys.as_array().unwrap() {
        ring.add(PublicKey::from_base64(k["public_key"].as_str().unwrap()).unwrap());
    }
    ring
}

async fn licenses(ws: &Workspace<'_>, customer: &str) -> Vec<Value> {
    let (status, body) = ws
        .call(
            Method::GET,
            &format!("/v1/customers/{customer}/licenses"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"].as_array().unwrap().clone()
}

async fn validate(ws: &Workspace<'_>, file: &str, fingerprint: Option<&str>) -> Value {
    ws.post(
        "/v1/licenses/validate",
        json!({"license": file, "fingerprint": fingerprint}),
    )
    .await
}

async fn subscription_id(ws: &Workspace<'_>, customer: &str) -> String {
    let (_, subs) = ws
        .call(
            Method::GET,
            &format!("/v1/customers/{customer}/subscriptions"),
            None,
        )
        .await;
    subs["data"][0]["id"].as_str().unwrap().to_owned()
}

async fn domain_events(ws: &Workspace<'_>, event_type: &str) -> Vec<Value> {
    let (status, body) = ws
        .call(
            Method::GET,
            &format!("/v1/domain_events?type={event_type}&limit=100"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"].as_array().unwrap().clone()
}

fn at(s: &str) -> Options<'static> {
    Options {
        now: s.parse::<Timestamp>().unwrap(),
        machine: None,
    }
}

fn flip_one_payload_byte(file: &str) -> String {
    let parsed = LicenseFile::parse(file).unwrap();
    let mut payload = parsed.payload.clone();
    let i = payload.len() / 2;
    payload[i] ^= 0x01;
    LicenseFile { payload, ..parsed }.to_armored()
}

backend_tests! {
    /// Lexecon case 8: an `enterprise_starter` customer receives a signed license file; it
    /// verifies offline with the public key, lists `sso` and `self_hosted`, expires with the
    /// subscription year; changing one byte of it makes verification fail.
    async fn lexecon_case_8_self_hosted_license(backend: Backend) {
        let server = TestServer::start(backend).await;
        let ws = server.workspace("lexecon.yaml").await;
        let clock = ws.test_clock("2026-11-01T00:00:00Z").await;
        ws.customer("acme", "enterprise_starter", Some(&clock), false).await;
        let issued = licenses(&ws, "acme").await;
        assert_eq!(issued.len(), 1, "issued with the subscription: {issued:?}");
        assert_eq!(issued[0]["plan"], "enterprise_starter");
        assert_eq!(issued[0]["expires_at"], "2027-11-01T00:00:00Z");
        let file = issued[0]["file"].as_str().unwrap();
        assert!(file.starts_with("-----BEGIN TOLLGATE LICENSE-----"), "{file}");
        let announced = domain_events(&ws, "license.issued").await;
        assert_eq!(announced.len(), 1);
        assert_eq!(announced[0]["data"]["id"], issued[0]["id"]);

        // Offline, with nothing but the published public key.
        let ring = keyring(&ws).await;
        let v = verify(file, &ring, at("2027-06-01T00:00:00Z")).unwrap();
        assert!(v.has_feature("sso") && v.has_feature("self_hosted"));
        assert!(!v.has_feature("dedicated_store"));
        assert_eq!(v.license.customer, "acme");
        assert_eq!(v.license.plan, "enterprise_starter");
        assert_eq!(v.status, Status::Active);
        // Expires with the subscription year (no grace in Lexecon's catalog).
        assert_eq!(
            verify(file, &ring, at("2027-10-31T23:59:59Z")).unwrap().status,
            Status::Active
        );
        assert_eq!(
            verify(file, &ring, at("2027-11-01T00:00:01Z")).unwrap_err().code(),
            "expired"
        );
        // One byte changed, anywhere in the file: refused offline.
        let tampered = flip_one_payload_byte(file);
        assert_eq!(
            verify(&tampered, &ring, at("2027-06-01T00:00:00Z")).unwrap_err(),
            Reason::BadSignature
        );
        for i in 0..file.len() {
            let mut bytes = file.as_bytes().to_vec();
            bytes[i] ^= 0x01;
            let Ok(changed) = String::from_utf8(bytes) else { continue };
            let verdict = verify(&changed, &ring, at("2027-06-01T00:00:00Z"));
            // Trailing whitespace is not part of the file (`\n` to `\x0b` at the very end).
            if changed.trim_end() == file.trim_end() {
                continue;
            }
            assert!(verdict.is_err(), "byte {i} changed and still verifies:\n{changed}");
        }
        // And online.
        let online = validate(&ws, &tampered, None).await;
        assert_eq!(online["valid"], false);
        assert_eq!(online["code"], "bad_signature");
        let online = validate(&ws, file, None).await;
        assert_eq!(online["valid"], true, "{online}");
        assert_eq!(online["status"], "active");
        assert_eq!(online["features"], json!(["self_hosted", "sso"]));
        // Online on the customer's clock: past the subscription year it is expired (the yearly
        // renewal issues the next year's license).
        ws.advance(&clock, "2027-11-01T00:00:01Z").await;
        let online = validate(&ws, file, None).await;
        assert_eq!((online["valid"].clone(), online["code"].clone()), (json!(false), json!("expired")));
        let all = licenses(&ws, "acme").await;
        assert_eq!(all.len(), 2, "renewed for the second year: {all:?}");
        assert_eq!(all[0]["expires_at"], "2028-11-01T00:00:00Z");
        assert_eq!(validate(&ws, all[0]["file"].as_str().unwrap(), None).await["valid"], true);
        // A plan without a license block issues none.
        ws.customer("small", "startup", None, false).await;
        assert!(licenses(&ws, "small").await.is_empty());
        let (status, body) = ws
            .call(Method::POST, "/v1/licenses", Some(json!({"customer": "small"})))
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert_eq!(body["code"], "plan_has_no_license");
    }

    /// Control plane case 6: an `enterprise` license with limits (agents 50, seats 200) verifies
    /// offline; a feature it lacks is absent; after revocation online validation says revoked; an
    /// expired license fails with a clear reason. Plus machine seats with heartbeats.
    async fn control_plane_case_6_license_limits_revocation_and_seats(backend: Backend) {
        let server = TestServer::start(backend).await;
        let ws = server.workspace_with("control-plane", &control_plane_with_seats()).await;
        let clock = ws.test_clock("2026-11-10T00:00:00Z").await;
        let key = ws.customer("corp", "enterprise", Some(&clock), false).await;
        assert_eq!(licenses(&ws, "corp").await.len(), 1, "issued with the subscription");
        // The operator issues the customer's license with the limits it bought.
        let license = ws
            .post(
                "/v1/licenses",
                json!({"customer": "corp", "limits": {"agents": 50, "seats": 200}}),
            )
            .await;
        let file = license["file"].as_str().unwrap();
        let id = license["id"].as_str().unwrap();
        assert_eq!(license["expires_at"], "2026-12-01T00:00:00Z", "the monthly term");
        assert_eq!(license["max_machines"], 2);
        let ring = keyring(&ws).await;
        let v = verify(file, &ring, at("2026-11-20T00:00:00Z")).unwrap();
        assert_eq!(v.limit("agents"), Some(50));
        assert_eq!(v.limit("seats"), Some(200));
        assert!(v.has_feature("sso") && v.has_feature("on_premises"));
        assert!(v.has_feature("policy_packs"), "unlimited counts as enabled");
        // A feature it lacks: not there, offline.
        assert!(!v.has_feature("white_label"));
        assert_eq!(v.limit("white_label_domains"), None);
        // An expired license: a clear reason offline (after the term and its 7 days of grace).
        assert!(matches!(
            verify(file, &ring, at("2026-12-05T00:00:00Z")).unwrap().status,
            Status::Grace { .. }
        ));
        assert_eq!(
            verify(file, &ring, at("2026-12-09T00:00:00Z")).unwrap_err().code(),
            "expired"
        );
        let (status, body) = ws
            .call(
                Method::POST,
                "/v1/licenses",
                Some(json!({"customer": "corp", "limits": {"Bad Name": 1}})),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(body["code"], "validation_failed");

        // Seats: at most 2 machines; a machine that stops its heartbeats gives its seat up.
        let path = format!("/v1/licenses/{id}/machines");
        let machine = |fp: &str| json!({"fingerprint": fp});
        ws.post(&path, machine("m1")).await;
        // The customer's own key may activate its machines.
        let (status, body) = server
            .call(&key, Method::POST, &path, Some(machine("m2")))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let (status, body) = ws.call(Method::POST, &path, Some(machine("m3"))).await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert_eq!(body["code"], "machine_limit_reached");
        let (status, body) = ws.call(Method::POST, &path, Some(machine("bad fp!"))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["code"], "invalid_fingerprint");
        // Online validation needs an activated machine for a license with seats.
        let v = validate(&ws, file, None).await;
        assert_eq!(v["code"], "not_activated");
        let v = validate(&ws, file, Some("m1")).await;
        assert_eq!(v["valid"], true, "{v}");
        assert_eq!(v["limits"]["agents"], 50);
        ws.advance(&clock, "2026-11-10T00:20:00Z").await;
        ws.post(&format!("{path}/m1/heartbeat"), json!({})).await;
        ws.advance(&clock, "2026-11-10T00:40:00Z").await;
        // m2 has been silent for 40 minutes: its seat is free for m3.
        let (status, body) = ws.call(Method::POST, &path, Some(machine("m3"))).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let (status, _) = ws
            .call(Method::POST, &format!("{path}/m2/heartbeat"), Some(json!({})))
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "m2 lost its seat");
        assert_eq!(validate(&ws, file, Some("m2")).await["code"], "not_activated");
        let (status, _) = ws
            .call(Method::POST, &format!("{path}/m3/deactivate"), None)
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);

        // Revoked: online validation says so (the file itself still verifies offline).
        let revoked = ws
            .post(&format!("/v1/licenses/{id}/revoke"), json!({"reason": "non-payment"}))
            .await;
        assert_eq!(revoked["revoke_reason"], "non-payment");
        let v = validate(&ws, file, Some("m1")).await;
        assert_eq!((v["valid"].clone(), v["code"].clone()), (json!(false), json!("revoked")));
        verify(file, &ring, at("2026-11-20T00:00:00Z")).unwrap();
        let (status, body) = ws.call(Method::POST, &path, Some(machine("m4"))).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(body["code"], "license_revoked");
        assert_eq!(domain_events(&ws, "license.revoked").await.len(), 1);
        // Another customer's key cannot read or validate it.
        let other = ws.customer("other", "starter", None, false).await;
        let (status, _) = server
            .call(&other, Method::GET, &format!("/v1/licenses/{id}"), None)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _) = server
            .call(
                &other,
                Method::POST,
                "/v1/licenses/validate",
                Some(json!({"license": file})),
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        // The license of the subscription's start was never revoked: the new month renews it.
        ws.advance(&clock, "2026-12-01T00:00:01Z").await;
        let all = licenses(&ws, "corp").await;
        assert_eq!(all.len(), 3, "{all:?}");
        assert_eq!(all[0]["expires_at"], "2027-01-01T00:00:00Z");
        assert_eq!(validate(&ws, all[0]["file"].as_str().unwrap(), None).await["code"], "not_activated");
        // November's license is in its 7 days of grace: it still takes a machine, not after.
        let november = all
            .iter()
            .find(|l| l["expires_at"] == "2026-12-01T00:00:00Z" && l["revoked_at"].is_null())
            .unwrap();
        let path = format!("/v1/licenses/{}/machines", november["id"].as_str().unwrap());
        let (status, body) = ws.call(Method::POST, &path, Some(machine("m9"))).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let v = validate(&ws, november["file"].as_str().unwrap(), Some("m9")).await;
        assert_eq!((v["valid"].clone(), v["status"].clone()), (json!(true), json!("grace")), "{v}");
        ws.advance(&clock, "2026-12-08T00:00:01Z").await;
        let (status, body) = ws.call(Method::POST, &path, Some(machine("m10"))).await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert_eq!(body["code"], "license_expired");
    }

    /// Licenses follow subscriptions: a plan change revokes the old plan's license and issues
    /// the new one's; an uncollectible invoice revokes it and paying issues it again; an
    /// immediate cancellation revokes. Grace, offline and online.
    async fn licenses_follow_plan_changes_payment_and_cancellation(backend: Backend) {
        let server = TestServer::start(backend).await;
        let ws = server.workspace_with("lexecon", &lexecon_with_grace()).await;
        let clock = ws.test_clock("2026-11-01T00:00:00Z").await;
        ws.customer("acme", "enterprise_starter", Some(&clock), false).await;
        let first = licenses(&ws, "acme").await.remove(0);
        let ring = keyring(&ws).await;
        let file = first["file"].as_str().unwrap();
        assert!(matches!(
            verify(file, &ring, at("2027-11-05T00:00:00Z")).unwrap().status,
            Status::Grace { .. }
        ));
        assert_eq!(
            verify(file, &ring, at("2027-11-15T00:00:01Z")).unwrap_err().code(),
            "expired"
        );
        let sub = subscription_id(&ws, "acme").await;
        // enterprise_platform extends enterprise_starter and inherits its license block.
        ws.post(
            &format!("/v1/customers/acme/subscriptions/{sub}/change"),
            json!({"plan": "enterprise_platform"}),
        )
        .await;
        let all = licenses(&ws, "acme").await;
        assert_eq!(all.len(), 2, "{all:?}");
        assert_eq!(all[0]["plan"], "enterprise_platform");
        assert_eq!(all[0]["revoked_at"], Value::Null);
        assert_eq!(all[1]["revoke_reason"], "plan_changed");
        assert!(verify(all[0]["file"].as_str().unwrap(), &ring, at("2027-01-01T00:00:00Z"))
            .unwrap()
            .has_feature("dedicated_store"));

        // Non-payment: the open invoice marked uncollectible revokes; paying it reissues.
        let run = ws.post("/v1/bill_runs", json!({})).await;
        assert_eq!(run["errors"], json!([]), "{run}");
        let (_, invoices) = ws.call(Method::GET, "/v1/customers/acme/invoices", None).await;
        let open = invoices["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["status"] == "open")
            .unwrap_or_else(|| panic!("an open invoice: {invoices}"))["id"]
            .as_str()
            .unwrap()
            .to_owned();
        ws.post(&format!("/v1/invoices/{open}/mark_uncollectible"), json!({})).await;
        let all = licenses(&ws, "acme").await;
        assert_eq!(all[0]["revoke_reason"], "non_payment");
        assert_eq!(validate(&ws, all[0]["file"].as_str().unwrap(), None).await["code"], "revoked");
        ws.post(&format!("/v1/invoices/{open}/pay"), json!({})).await;
        let all = licenses(&ws, "acme").await;
        assert_eq!(all.len(), 3, "{all:?}");
        assert_eq!(all[0]["revoked_at"], Value::Null);
        assert_eq!(validate(&ws, all[0]["file"].as_str().unwrap(), None).await["valid"], true);

        ws.post(
            &format!("/v1/customers/acme/subscriptions/{sub}/cancel"),
            json!({"immediately": true}),
        )
        .await;
        let all = licenses(&ws, "acme").await;
        assert_eq!(all[0]["revoke_reason"], "subscription_canceled");
        let v = validate(&ws, all[0]["file"].as_str().unwrap(), None).await;
        assert_eq!(v["code"], "revoked");
        let (status, body) = ws
            .call(Method::POST, "/v1/licenses", Some(json!({"customer": "acme"})))
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert_eq!(body["code"], "subscription_ended");
    }

    /// Rotation: licenses signed by the previous key keep verifying until it is retired.
    async fn rotated_keys_verify_until_retired(backend: Backend) {
        let server = TestServer::start(backend).await;
        let ws = server.workspace("lexecon.yaml").await;
        ws.customer("acme", "enterprise_starter", None, false).await;
        let old = licenses(&ws, "acme").await.remove(0);
        let old_file = old["file"].as_str().unwrap();
        let (status, new_key) = ws.call(Method::POST, "/v1/license_keys/rotate", None).await;
        assert_eq!(status, StatusCode::CREATED, "{new_key}");
        assert_ne!(new_key["id"], old["key_id"]);
        let (_, keys) = ws.call(Method::GET, "/v1/license_keys", None).await;
        let states: Vec<_> = keys
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["status"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(states, ["active", "previous"]);
        assert_eq!(validate(&ws, old_file, None).await["valid"], true);
        let fresh = ws.post("/v1/licenses", json!({"customer": "acme"})).await;
        assert_eq!(fresh["key_id"], new_key["id"]);
        let (status, body) = ws
            .call(
                Method::POST,
                &format!("/v1/license_keys/{}/retire", new_key["id"].as_str().unwrap()),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "the active key: {body}");
        ws.post(
            &format!("/v1/license_keys/{}/retire", old["key_id"].as_str().unwrap()),
            json!({}),
        )
        .await;
        assert_eq!(validate(&ws, old_file, None).await["code"], "unknown_key");
        assert_eq!(
            validate(&ws, fresh["file"].as_str().unwrap(), None).await["valid"],
            true
        );
        // A customer key can read the public keys but not rotate them.
        let customer_key = ws.customer("c2", "startup", None, false).await;
        let (status, _) = server
            .call(&customer_key, Method::GET, "/v1/license_keys", None)
            .await;
        assert_eq!(status, StatusCode::OK);
        let (status, _) = server
            .call(&customer_key, Method::POST, "/v1/license_keys/rotate", None)
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }

    /// Without a master key the license features refuse, clearly, and a subscription to a plan
    /// that issues licenses is refused before anything is written.
    async fn without_a_master_key_licenses_are_refused(backend: Backend) {
        let server = TestServer::start_configured(backend, |c| c.master_key = None).await;
        let ws = server.workspace("lexecon.yaml").await;
        let (status, body) = ws.call(Method::GET, "/v1/license_keys", None).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(body["code"], "master_key_missing");
        assert!(body["detail"].as_str().unwrap().contains("TOLLGATE_MASTER_KEY"));
        ws.post("/v1/customers", json!({"id": "acme"})).await;
        let (status, body) = ws
            .call(
                Method::POST,
                "/v1/customers/acme/subscriptions",
                Some(json!({"plan": "enterprise_starter"})),
            )
            .await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(body["code"], "master_key_missing");
        let (_, subs) = ws
            .call(Method::GET, "/v1/customers/acme/subscriptions", None)
            .await;
        assert_eq!(subs["data"], json!([]), "nothing was written");
        // Plans without licenses are not affected.
        ws.post(
            "/v1/customers/acme/subscriptions",
            json!({"plan": "startup", "trial": false}),
        )
        .await;
    }
}
