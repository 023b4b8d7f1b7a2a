#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Signed download links end to end on a real server, on both backends: Levqor case 6
//! (`shared/scenarios/levqor.md`): buying `automation_pro` produces a paid $99.00 invoice and a
//! download link that works for 24 hours and fails after, or when altered.

mod common;

use common::{TestServer, Workspace, backend_tests};
use jiff::{SignedDuration, Timestamp};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// GET without an API key and without following redirects: (status, Location, body).
async fn open(server: &TestServer, url: &str) -> (StatusCode, Option<String>, Value) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = client
        .get(format!("{}{url}", server.base))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let location = response
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, location, body)
}

async fn link(ws: &Workspace<'_>, customer: &str, product: &str) -> (StatusCode, Value) {
    ws.call(
        Method::POST,
        &format!("/v1/customers/{customer}/downloads/{product}"),
        None,
    )
    .await
}

fn plus(t: &str, seconds: i64) -> String {
    (t.parse::<Timestamp>().unwrap() + SignedDuration::from_secs(seconds)).to_string()
}

backend_tests! {
    /// Levqor case 6, on a test clock: paid $99.00 invoice, a link valid 24 hours (works at
    /// 23:59:59 after issue, fails at 24:00:01), refused when one byte is altered or for a
    /// product not bought.
    async fn levqor_case_6_download_links(backend: Backend) {
        let server = TestServer::start(backend).await;
        let ws = server.workspace("levqor.yaml").await;
        let start = "2026-11-10T09:00:00Z";
        let clock = ws.test_clock(start).await;
        ws.post("/v1/customers", json!({"id": "maker", "test_clock": clock})).await;
        let key = ws.post("/v1/customers/maker/keys", json!({})).await["secret"]
            .as_str()
            .unwrap()
            .to_owned();
        let invoice = ws
            .post("/v1/customers/maker/purchases", json!({"product": "automation_pro"}))
            .await;
        assert_eq!((invoice["total"].as_str(), invoice["status"].as_str()), (Some("99.00"), Some("open")));
        // Not paid yet: no link.
        let (status, body) = link(&ws, "maker", "automation_pro").await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert_eq!(body["code"], "purchase_not_paid");
        let paid = ws
            .post(&format!("/v1/invoices/{}/pay", invoice["id"].as_str().unwrap()), json!({}))
            .await;
        assert_eq!((paid["total"].as_str(), paid["status"].as_str()), (Some("99.00"), Some("paid")));

        // The customer's own key asks for its link.
        let (status, issued) = server
            .call(&key, Method::POST, "/v1/customers/maker/downloads/automation_pro", None)
            .await;
        assert_eq!(status, StatusCode::CREATED, "{issued}");
        assert_eq!(issued["expires_at"], plus(start, 24 * 3600));
        assert_eq!(issued["invoice"], invoice["id"]);
        let url = issued["url"].as_str().unwrap().to_owned();
        assert!(url.starts_with("/v1/downloads/dl1."), "{url}");

        let (status, _, body) = open(&server, &url).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["product"], "automation_pro");
        assert_eq!(body["name"], "Automation Pro template pack");
        assert_eq!(body["customer"], "maker");
        assert_eq!(body["grants"], json!(["download"]));

        // One byte altered, anywhere: refused.
        let token_at = url.len() - issued["token"].as_str().unwrap().len();
        for i in token_at..url.len() {
            let mut bytes = url.clone().into_bytes();
            bytes[i] ^= 0x01;
            let altered = String::from_utf8(bytes).unwrap();
            let (status, _, body) = open(&server, &altered).await;
            assert_ne!(status, StatusCode::OK, "byte {i} altered: {altered}");
            // (`.` turned into `/` makes another path: 404 `unknown_route`.)
            if !altered[token_at..].contains('/') {
                assert_eq!(status, StatusCode::FORBIDDEN, "{altered}: {body}");
                assert_eq!(body["code"], "invalid_download_link");
            }
        }

        // 23:59:59 after issue it works; at 24:00:01 it is expired.
        ws.advance(&clock, &plus(start, 24 * 3600 - 1)).await;
        let (status, _, body) = open(&server, &url).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        ws.advance(&clock, &plus(start, 24 * 3600 + 1)).await;
        let (status, _, body) = open(&server, &url).await;
        assert_eq!(status, StatusCode::GONE, "{body}");
        assert_eq!(body["code"], "download_link_expired");
        // A new link works again for another 24 hours.
        let (status, again) = link(&ws, "maker", "automation_pro").await;
        assert_eq!(status, StatusCode::CREATED, "{again}");
        assert_eq!(open(&server, again["url"].as_str().unwrap()).await.0, StatusCode::OK);

        // A product not bought, one the catalog does not have, another customer's key.
        let (status, body) = link(&ws, "maker", "enterprise_pack").await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert_eq!(body["code"], "not_purchased");
        let (status, body) = link(&ws, "maker", "nope").await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        assert_eq!(body["code"], "unknown_product");
        ws.post("/v1/customers", json!({"id": "other"})).await;
        let other = ws.post("/v1/customers/other/keys", json!({})).await["secret"]
            .as_str()
            .unwrap()
            .to_owned();
        let (status, _) = server
            .call(&other, Method::POST, "/v1/customers/maker/downloads/automation_pro", None)
            .await;
        assert!(status == StatusCode::NOT_FOUND || status == StatusCode::FORBIDDEN, "{status}");
        let (status, body) = link(&ws, "other", "automation_pro").await;
        assert_eq!(body["code"], "not_purchased", "{status}");
        // A free pack's invoice is paid at once: its link works at once.
        ws.post("/v1/customers/other/purchases", json!({"product": "starter_pack"})).await;
        let (status, free) = link(&ws, "other", "starter_pack").await;
        assert_eq!(status, StatusCode::CREATED, "{free}");
        assert_eq!(open(&server, free["url"].as_str().unwrap()).await.0, StatusCode::OK);
    }

    /// A product with a `download_url` redirects there; a product that grants no download has
    /// no link; a refunded purchase's link stops working.
    async fn download_links_redirect_and_follow_the_purchase(backend: Backend) {
        let server = TestServer::start(backend).await;
        let yaml = std::fs::read_to_string(format!(
            "{}/../../examples/catalogs/levqor.yaml",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
        .replace(
            "automation_pro: { name: Automation Pro template pack, amount: \"99.00\", grants: [download] }",
            "automation_pro: { name: Automation Pro template pack, amount: \"99.00\", grants: [download], download_url: \"https://cdn.example.com/packs/automation-pro.zip\" }\n  sticker: { name: Sticker, amount: \"1.00\" }",
        );
        assert!(yaml.contains("cdn.example.com"));
        let ws = server.workspace_with("levqor", &yaml).await;
        ws.post("/v1/customers", json!({"id": "maker"})).await;
        let invoice = ws
            .post("/v1/customers/maker/purchases", json!({"product": "automation_pro"}))
            .await;
        let id = invoice["id"].as_str().unwrap().to_owned();
        ws.post(&format!("/v1/invoices/{id}/pay"), json!({})).await;
        let (status, issued) = link(&ws, "maker", "automation_pro").await;
        assert_eq!(status, StatusCode::CREATED, "{issued}");
        let url = issued["url"].as_str().unwrap();
        let (status, location, _) = open(&server, url).await;
        assert_eq!(status, StatusCode::FOUND);
        assert_eq!(location.as_deref(), Some("https://cdn.example.com/packs/automation-pro.zip"));
        ws.post("/v1/customers/maker/purchases", json!({"product": "sticker"})).await;
        let (status, body) = link(&ws, "maker", "sticker").await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert_eq!(body["code"], "not_downloadable");
        // Refunded in full: the link no longer works, and no new one is issued.
        ws.post(&format!("/v1/invoices/{id}/credit_notes"), json!({"amount": "99.00", "reason": "refund"})).await;
        let (status, _, body) = open(&server, url).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert_eq!(body["code"], "invalid_download_link");
        let (status, body) = link(&ws, "maker", "automation_pro").await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert_eq!(body["code"], "not_purchased");
    }

    /// Without a master key, links are refused clearly.
    async fn download_links_need_the_master_key(backend: Backend) {
        let server = TestServer::start_configured(backend, |c| c.master_key = None).await;
        let ws = server.workspace("levqor.yaml").await;
        ws.post("/v1/customers", json!({"id": "maker"})).await;
        ws.post("/v1/customers/maker/purchases", json!({"product": "starter_pack"})).await;
        let (status, body) = link(&ws, "maker", "starter_pack").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(body["code"], "master_key_missing");
        let (status, _, body) = open(&server, "/v1/downloads/dl1.e30.AAAA").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    }
}
