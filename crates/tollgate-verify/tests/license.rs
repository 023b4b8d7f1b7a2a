#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! License files and checkpoints: signing, reading, every refusal reason, and the golden files
//! shared with the Python verifier (`clients/python/tests/test_verify.py`).
//!
//! The golden files are made from a fixed test key (never used anywhere else); Ed25519 signatures
//! are deterministic, so they are rebuilt byte for byte here. `UPDATE_GOLDEN=1` rewrites them
//! after a deliberate format change (which also needs a new format version).

use std::collections::BTreeMap;
use std::path::PathBuf;

use jiff::Timestamp;
use serde_json::{Value, json};
use tollgate_verify::{
    Checkpoint, CheckpointError, Keyring, License, LicenseFile, NoteKey, Options, PublicKey,
    Reason, SigningKey, Status, merkle, verify,
};

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// The fixed test keys: the seed is the RFC 6962 leaf hash of a label, so nothing secret is in
/// the repository (and the Python tests need no key at all: they only verify).
fn test_key(label: &str) -> SigningKey {
    SigningKey::from_bytes(&merkle::leaf_hash(label.as_bytes()))
}

fn ts(text: &str) -> Timestamp {
    text.parse().unwrap()
}

fn sample_license() -> License {
    License {
        format: "tollgate-license/1".into(),
        id: "lic_0001".into(),
        issuer: "ws_golden".into(),
        customer: "cus_lexecon_acme".into(),
        plan: "onprem_enterprise".into(),
        features: vec!["audit_export".into(), "sso".into()],
        limits: BTreeMap::from([
            ("agents".to_owned(), 50),
            ("requests_per_month".to_owned(), 1_000_000),
            ("seats".to_owned(), 25),
        ]),
        issued: ts("2026-01-01T00:00:00Z"),
        expires: ts("2027-01-01T00:00:00Z"),
        grace_seconds: 14 * 86_400,
        machine: None,
    }
}

fn keyring() -> Keyring {
    Keyring::new().with(PublicKey::from(
        test_key("tollgate golden key 1").verifying_key(),
    ))
}

fn flip_payload_byte(armored: &str) -> String {
    let file = LicenseFile::parse(armored).unwrap();
    let mut payload = file.payload.clone();
    // Within the JSON: "seats": 25 -> "seats": 35 would be a real attack; flip one bit.
    let at = payload.windows(5).position(|w| w == b": 25\n").unwrap() + 2;
    payload[at] ^= 0x01;
    LicenseFile { payload, ..file }.to_armored()
}

/// Every golden file, rebuilt from its inputs.
fn golden_files() -> Vec<(&'static str, String)> {
    let key1 = test_key("tollgate golden key 1");
    let key2 = test_key("tollgate golden key 2");
    let valid = LicenseFile::issue(&sample_license(), &key1)
        .unwrap()
        .to_armored();
    let bound = LicenseFile::issue(
        &License {
            id: "lic_0002".into(),
            machine: Some("fp_5f0e1c".into()),
            ..sample_license()
        },
        &key1,
    )
    .unwrap()
    .to_armored();
    let other_key = LicenseFile::issue(&sample_license(), &key2)
        .unwrap()
        .to_armored();
    let tampered = flip_payload_byte(&valid);
    let leaves: Vec<_> = (0u8..7).map(|i| merkle::leaf_hash(&[i])).collect();
    let checkpoint = Checkpoint {
        origin: "tollgate/ws_golden".into(),
        size: 7,
        root: merkle::root(&leaves),
    }
    .sign("tollgate/ws_golden", &key1);
    let tampered_checkpoint = checkpoint.replacen("\n7\n", "\n8\n", 1);
    let keys = json!({
        "license_keys": [PublicKey::from(key1.verifying_key()).to_base64()],
        "checkpoint_keys": [{
            "name": "tollgate/ws_golden",
            "key": PublicKey::from(key1.verifying_key()).to_base64(),
        }],
    });
    let cases = json!([
        {"file": "license_valid.lic", "now": "2026-06-01T00:00:00Z", "expect": "active"},
        {"file": "license_valid.lic", "now": "2027-01-05T00:00:00Z", "expect": "grace"},
        {"file": "license_valid.lic", "now": "2027-01-15T00:00:00Z", "expect": "expired"},
        {"file": "license_valid.lic", "now": "2025-12-31T23:59:59Z", "expect": "not_yet_valid"},
        {"file": "license_tampered.lic", "now": "2026-06-01T00:00:00Z", "expect": "bad_signature"},
        {"file": "license_other_key.lic", "now": "2026-06-01T00:00:00Z", "expect": "unknown_key"},
        {"file": "license_bound.lic", "now": "2026-06-01T00:00:00Z", "machine": "fp_5f0e1c", "expect": "active"},
        {"file": "license_bound.lic", "now": "2026-06-01T00:00:00Z", "machine": "fp_other", "expect": "wrong_machine"},
        {"file": "checkpoint.txt", "expect": "valid", "size": 7, "root": hex::encode(merkle::root(&leaves))},
        {"file": "checkpoint_tampered.txt", "expect": "bad_signature"},
    ]);
    vec![
        ("license_valid.lic", valid),
        ("license_bound.lic", bound),
        ("license_other_key.lic", other_key),
        ("license_tampered.lic", tampered),
        ("checkpoint.txt", checkpoint),
        ("checkpoint_tampered.txt", tampered_checkpoint),
        (
            "keys.json",
            format!("{}\n", serde_json::to_string_pretty(&keys).unwrap()),
        ),
        (
            "cases.json",
            format!("{}\n", serde_json::to_string_pretty(&cases).unwrap()),
        ),
    ]
}

#[test]
fn golden_files_are_what_the_code_writes() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    for (name, text) in golden_files() {
        let path = golden_dir().join(name);
        if update {
            std::fs::write(&path, &text).unwrap();
        }
        let stored = std::fs::read_to_string(&path).unwrap();
        if name.ends_with(".json") {
            // The same document: key order follows serde_json's features, which the rest of
            // the workspace decides (`preserve_order`), so JSON is compared as JSON.
            let parse = |t: &str| serde_json::from_str::<Value>(t).unwrap();
            assert_eq!(
                parse(&stored),
                parse(&text),
                "{name} differs from what the code writes"
            );
        } else {
            assert_eq!(stored, text, "{name} differs from what the code writes");
        }
    }
}

fn load_keys() -> (Keyring, Vec<NoteKey>) {
    let keys: Value =
        serde_json::from_str(&std::fs::read_to_string(golden_dir().join("keys.json")).unwrap())
            .unwrap();
    let mut ring = Keyring::new();
    for k in keys["license_keys"].as_array().unwrap() {
        ring.add(PublicKey::from_base64(k.as_str().unwrap()).unwrap());
    }
    let notes = keys["checkpoint_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| NoteKey {
            name: k["name"].as_str().unwrap().into(),
            key: PublicKey::from_base64(k["key"].as_str().unwrap()).unwrap(),
        })
        .collect();
    (ring, notes)
}

/// The cases the Python verifier runs too, from the stored files.
#[test]
fn golden_cases_give_their_expected_outcome() {
    let (ring, notes) = load_keys();
    let cases: Value =
        serde_json::from_str(&std::fs::read_to_string(golden_dir().join("cases.json")).unwrap())
            .unwrap();
    for case in cases.as_array().unwrap() {
        let file = case["file"].as_str().unwrap();
        let text = std::fs::read_to_string(golden_dir().join(file)).unwrap();
        let expect = case["expect"].as_str().unwrap();
        let got = if file.ends_with(".lic") {
            let options = Options {
                now: ts(case["now"].as_str().unwrap()),
                machine: case.get("machine").and_then(Value::as_str),
            };
            match verify(&text, &ring, options) {
                Ok(v) if v.status == Status::Active => "active".to_owned(),
                Ok(_) => "grace".to_owned(),
                Err(reason) => reason.code().to_owned(),
            }
        } else {
            match Checkpoint::verify(&text, &notes) {
                Ok(c) => {
                    assert_eq!(c.size, case["size"].as_u64().unwrap());
                    assert_eq!(hex::encode(c.root), case["root"].as_str().unwrap());
                    "valid".to_owned()
                }
                Err(e) => e.code().to_owned(),
            }
        };
        assert_eq!(got, expect, "{file} at {:?}", case.get("now"));
    }
}

#[test]
fn a_verified_license_reads_features_limits_and_grace() {
    let key = test_key("tollgate golden key 1");
    let text = LicenseFile::issue(&sample_license(), &key)
        .unwrap()
        .to_armored();
    let v = verify(
        &text,
        &keyring(),
        Options {
            now: ts("2027-01-10T00:00:00Z"),
            machine: None,
        },
    )
    .unwrap();
    assert!(v.has_feature("sso"));
    assert!(!v.has_feature("white_label"));
    assert_eq!(v.limit("seats"), Some(25));
    assert_eq!(v.limit("agents"), Some(50));
    assert_eq!(
        v.status,
        Status::Grace {
            ends: ts("2027-01-15T00:00:00Z")
        }
    );
    assert_eq!(v.key_id, PublicKey::from(key.verifying_key()).id());
    // The expiry instant itself is already past the term.
    let at_expiry = verify(
        &text,
        &keyring(),
        Options {
            now: ts("2027-01-15T00:00:00Z"),
            machine: None,
        },
    );
    assert!(matches!(at_expiry, Err(Reason::Expired { .. })));
}

#[test]
fn a_rotated_keyring_keeps_verifying_the_previous_keys_licenses() {
    let old = test_key("tollgate golden key 1");
    let new = test_key("tollgate golden key 2");
    let by_old = LicenseFile::issue(&sample_license(), &old)
        .unwrap()
        .to_armored();
    let by_new = LicenseFile::issue(&sample_license(), &new)
        .unwrap()
        .to_armored();
    let both = keyring().with(PublicKey::from(new.verifying_key()));
    let now = Options {
        now: ts("2026-06-01T00:00:00Z"),
        machine: None,
    };
    verify(&by_old, &both, now).unwrap();
    verify(&by_new, &both, now).unwrap();
    // Retired: the old key removed from the ring.
    let retired = Keyring::new().with(PublicKey::from(new.verifying_key()));
    assert_eq!(
        verify(&by_old, &retired, now).unwrap_err().code(),
        "unknown_key"
    );
}

#[test]
fn every_single_byte_flip_in_the_payload_or_signature_is_caught() {
    let key = test_key("tollgate golden key 1");
    let file = LicenseFile::issue(&sample_license(), &key).unwrap();
    let now = Options {
        now: ts("2026-06-01T00:00:00Z"),
        machine: None,
    };
    for i in 0..file.payload.len() {
        let mut payload = file.payload.clone();
        payload[i] ^= 0x20;
        let text = LicenseFile {
            payload,
            ..file.clone()
        }
        .to_armored();
        assert_eq!(
            verify(&text, &keyring(), now).unwrap_err(),
            Reason::BadSignature
        );
    }
    for i in 0..64 {
        let mut signature = file.signature;
        signature[i] ^= 0x01;
        let text = LicenseFile {
            signature,
            ..file.clone()
        }
        .to_armored();
        assert_eq!(
            verify(&text, &keyring(), now).unwrap_err(),
            Reason::BadSignature
        );
    }
}

#[test]
fn armor_survives_mail_and_windows_line_ends_and_refuses_damage() {
    let key = test_key("tollgate golden key 1");
    let text = LicenseFile::issue(&sample_license(), &key)
        .unwrap()
        .to_armored();
    let now = Options {
        now: ts("2026-06-01T00:00:00Z"),
        machine: None,
    };
    let mailed = format!(
        "Hello,\r\nyour license:\r\n\r\n{}\r\nRegards\r\n",
        text.replace('\n', "\r\n    ")
    );
    verify(&mailed, &keyring(), now).unwrap();
    for (damaged, code) in [
        (
            text.replace("-----END TOLLGATE LICENSE-----", ""),
            "malformed",
        ),
        (text.replace("-----BEGIN", "----BEGIN"), "malformed"),
        (
            text.replace("tollgate-license/1", "tollgate-license/2"),
            "unsupported_format",
        ),
        (text.replace("Signature: ", "Signature: !"), "malformed"),
        (text.replace("Key: ", "Key: 00"), "unknown_key"),
        ("".to_owned(), "malformed"),
    ] {
        assert_eq!(verify(&damaged, &keyring(), now).unwrap_err().code(), code);
    }
    let show = LicenseFile::parse(&text).unwrap();
    assert_eq!(show.payload, sample_license().to_payload().unwrap());
    assert!(
        String::from_utf8(show.payload)
            .unwrap()
            .contains("\"seats\": 25")
    );
}

#[test]
fn checkpoints_verify_and_every_flipped_byte_is_caught() {
    let key = test_key("tollgate golden key 1");
    let leaves: Vec<_> = (0u8..5).map(|i| merkle::leaf_hash(&[i])).collect();
    let cp = Checkpoint {
        origin: "tollgate/ws_1".into(),
        size: 5,
        root: merkle::root(&leaves),
    };
    let note = cp.sign("tollgate/ws_1", &key);
    let trusted = [NoteKey {
        name: "tollgate/ws_1".into(),
        key: PublicKey::from(key.verifying_key()),
    }];
    assert_eq!(Checkpoint::verify(&note, &trusted).unwrap(), cp);
    let body_len = cp.body().len();
    let bytes = note.as_bytes();
    for i in 0..body_len {
        let mut b = bytes.to_vec();
        b[i] ^= 0x01;
        let Ok(text) = String::from_utf8(b) else {
            continue;
        };
        assert!(
            Checkpoint::verify(&text, &trusted).is_err(),
            "flipping byte {i} went unnoticed"
        );
    }
    let other = [NoteKey {
        name: "tollgate/ws_1".into(),
        key: PublicKey::from(test_key("tollgate golden key 2").verifying_key()),
    }];
    assert_eq!(
        Checkpoint::verify(&note, &other),
        Err(CheckpointError::UnknownKey)
    );
    assert!(trusted[0].verifier_key().starts_with("tollgate/ws_1+"));
}
