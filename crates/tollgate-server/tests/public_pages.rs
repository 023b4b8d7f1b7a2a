//! The public pages against a real server (docs/DASHBOARD.md, "Public pages"): the opt-in, the
//! pricing table from the catalog and its embed, the hosted signup (customer, trial and key in
//! one step; token, duplicate email, bad input, rate limit), custom domains (Host routing, a
//! partner's domain never showing the operator), and the portal's sign-in by email (a
//! single-use link sent through a real SMTP listener, refused a second time and after expiry,
//! the same answer for an unknown email).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

mod common;
mod smtp;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use common::{Backend, TestServer, Workspace, backend_tests};
use reqwest::{Method, StatusCode};
use serde_json::json;
use smtp::SmtpReceiver;
use tollgate_server::app::public::limits::PublicLimits;
use tollgate_server::notify::email::smtp::{SmtpConfig, TlsMode};
use tollgate_server::notify::email::{self, EmailConfig};

/// The wall clock moved forward by what a test says.
#[derive(Default)]
struct ShiftedClock {
    seconds: AtomicI64,
}

impl tollgate_server::clock::Clock for ShiftedClock {
    fn now(&self) -> jiff::Timestamp {
        jiff::Timestamp::now()
            + jiff::SignedDuration::from_secs(self.seconds.load(Ordering::SeqCst))
    }
}

/// A browser of sorts: cookies kept by hand, no redirects, an optional Host header.
struct Browser {
    http: reqwest::Client,
    base: String,
    host: Option<String>,
    cookies: Vec<(String, String)>,
}

struct Answer {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Browser {
    fn new(server: &TestServer, host: Option<&str>) -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: server.base.clone(),
            host: host.map(str::to_owned),
            cookies: Vec::new(),
        }
    }

    async fn send(&mut self, method: Method, path: &str, form: Option<&[(&str, &str)]>) -> Answer {
        let cookie = self
            .cookies
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("cookie", cookie);
        if let Some(host) = &self.host {
            req = req.header("host", host);
        }
        if let Some(form) = form {
            let encode = |text: &str| {
                text.bytes()
                    .map(|b| match b {
                        b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                            char::from(b).to_string()
                        }
                        _ => format!("%{b:02X}"),
                    })
                    .collect::<String>()
            };
            let body = form
                .iter()
                .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
                .collect::<Vec<_>>()
                .join("&");
            req = req
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body);
        }
        let response = req.send().await.unwrap();
        for set in response.headers().get_all("set-cookie") {
            let set = set.to_str().unwrap();
            let (name, value) = set.split(';').next().unwrap().split_once('=').unwrap();
            self.cookies.retain(|(n, _)| n != name);
            if !value.is_empty() && !set.contains("Max-Age=0") {
                self.cookies.push((name.to_owned(), value.to_owned()));
            }
        }
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.text().await.unwrap().replace("&#x2f;", "/");
        assert!(
            !body.contains("serde_json"),
            "a number leaked as an object: {body}"
        );
        Answer {
            status,
            headers,
            body,
        }
    }

    async fn get(&mut self, path: &str) -> Answer {
        self.send(Method::GET, path, None).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Answer {
        self.send(Method::POST, path, Some(form)).await
    }
}

/// The value of the hidden field `name` in a page.
fn field(page: &str, name: &str) -> String {
    let at = page
        .find(&format!("name=\"{name}\" value=\""))
        .unwrap_or_else(|| panic!("no field {name} in {page}"));
    let rest = &page[at + name.len() + 15..];
    rest[..rest.find('"').unwrap()].to_owned()
}

async fn public_pages(ws: &Workspace<'_>, enabled: bool) {
    let (status, body) = ws
        .call(
            Method::PUT,
            "/v1/public_pages",
            Some(json!({"enabled": enabled})),
        )
        .await;
    assert_eq!(
        (status, body["enabled"].as_bool()),
        (StatusCode::OK, Some(enabled)),
        "{body}"
    );
}

fn limits(per_client: u32) -> PublicLimits {
    PublicLimits {
        per_client,
        per_workspace: 1000,
        window: Duration::from_secs(600),
    }
}

/// Off by default (404, the same as an unknown workspace); on, the pricing table is the
/// catalog's plans side by side, the embed may be framed, and the hosted signup makes the
/// customer, its trial and its key, refusing a stale form, a taken email and a bad one with the
/// form kept, and answering 429 past the per-client bound.
async fn pricing_and_signup(backend: Backend) {
    let server = TestServer::start_with(backend, |c| c.public_limits = limits(4)).await;
    let ws = server.workspace("qlp.yaml").await;
    let mut browser = Browser::new(&server, None);
    let pricing = format!("/pricing/{}", ws.id);
    let signup = format!("/signup/{}", ws.id);

    let (status, body) = ws.call(Method::GET, "/v1/public_pages", None).await;
    assert_eq!(
        (status, body["enabled"].as_bool()),
        (StatusCode::OK, Some(false))
    );
    assert_eq!(browser.get(&pricing).await.status, StatusCode::NOT_FOUND);
    assert_eq!(browser.get(&signup).await.status, StatusCode::NOT_FOUND);
    let unknown = browser.get("/pricing/ws_nobody_here").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);

    public_pages(&ws, true).await;
    let page = browser.get(&pricing).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    for needle in [
        "Free",
        "Starter",
        "Professional",
        "Enterprise",
        "Pay as you go",
        "99.00 USD / month",
        "499.00 USD / month",
        "2499.00 USD / month",
        "14 days",
        "Projects",
        "SSO/SAML",
        "unlimited",
        "storage_gb",
        "Start free trial",
        &format!("{signup}?plan=starter"),
        // Worded for a visitor, not the catalog's fields: a free plan, switches, quotas and
        // usage prices.
        "<td>Free</td>",
        "<td>No</td>",
        "<td>Yes</td>",
        "10 generations per billing period",
        "api_calls: 0.001 USD each",
        "storage_gb: 0.10 USD each, 10 included",
        "generations: by tier: T0 0.10, T1 0.25, T2 0.50, T3 1.00 USD each (gpt-4 ×2, claude-3 ×2), 100 included",
    ] {
        assert!(page.body.contains(needle), "{needle} not in {}", page.body);
    }
    for raw in ["meter:", "model:", "false", "true"] {
        assert!(!page.body.contains(raw), "{raw} in {}", page.body);
    }
    assert_eq!(page.headers["x-frame-options"], "DENY");
    let embed = browser.get(&format!("{pricing}/embed")).await;
    assert_eq!(embed.status, StatusCode::OK);
    assert!(embed.headers.get("x-frame-options").is_none());
    assert!(
        !embed.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors")
    );
    assert!(embed.body.contains("target=\"_top\"") && embed.body.contains("499.00 USD / month"));

    // The form: a token in a cookie and in the form.
    let form = browser.get(&format!("{signup}?plan=starter")).await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(
        form.body.contains("value=\"starter\" selected"),
        "{}",
        form.body
    );
    // Each option says its price and trial in words (never a number's serialized wrapper).
    assert!(
        form.body
            .contains("Starter: 99.00 USD / month, 14-day free trial</option>"),
        "{}",
        form.body
    );
    let token = field(&form.body, "token");
    let stale = browser
        .post(
            &signup,
            &[
                ("token", "tgf_forged"),
                ("name", "Ada"),
                ("email", "ada@example.com"),
                ("plan", "starter"),
            ],
        )
        .await;
    assert_eq!(stale.status, StatusCode::FORBIDDEN);
    assert!(stale.body.contains("The form expired") && stale.body.contains("ada@example.com"));

    let done = browser
        .post(
            &signup,
            &[
                ("token", &token),
                ("name", "Ada Lovelace"),
                ("email", "Ada@Example.com"),
                ("plan", "starter"),
            ],
        )
        .await;
    assert_eq!(done.status, StatusCode::CREATED, "{}", done.body);
    assert_eq!(done.headers["cache-control"], "no-store");
    let secret = {
        let at = done.body.find("data-secret>").unwrap() + "data-secret>".len();
        done.body[at..at + done.body[at..].find('<').unwrap()].to_owned()
    };
    assert!(secret.starts_with("tg_"), "{secret}");
    // The customer, its trial and its key, as the API sees them.
    let (_, customers) = ws.call(Method::GET, "/v1/customers", None).await;
    let customer = customers["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["email"] == "Ada@Example.com")
        .unwrap_or_else(|| panic!("{customers}"))
        .clone();
    assert_eq!(customer["name"], "Ada Lovelace");
    let id = customer["id"].as_str().unwrap();
    assert!(done.body.contains(id));
    let (_, subs) = ws
        .call(
            Method::GET,
            &format!("/v1/customers/{id}/subscriptions"),
            None,
        )
        .await;
    let sub = &subs["data"][0];
    assert_eq!(
        (sub["plan"].as_str(), sub["status"].as_str()),
        (Some("starter"), Some("trialing")),
        "{subs}"
    );
    assert!(sub["trial_end"].is_string());
    // The key works: a check with it answers for this customer.
    let check = server
        .http
        .post(format!("{}/v1/check", server.base))
        .bearer_auth(&secret)
        .json(&json!({"feature": "projects"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        check.status(),
        StatusCode::OK,
        "{}",
        check.text().await.unwrap()
    );

    // The same email again (any case): refused, the form kept.
    let twin = browser
        .post(
            &signup,
            &[
                ("token", &token),
                ("name", "Ada Again"),
                ("email", "ada@example.com"),
                ("plan", "professional"),
            ],
        )
        .await;
    assert_eq!(twin.status, StatusCode::CONFLICT);
    assert!(
        twin.body.contains("exists already") && twin.body.contains("Ada Again"),
        "{}",
        twin.body
    );
    assert!(twin.body.contains("value=\"professional\" selected"));
    // A bad email, and an unknown plan.
    let bad = browser
        .post(
            &signup,
            &[
                ("token", &token),
                ("name", "Bob"),
                ("email", "not-an-email"),
                ("plan", "starter"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(
        bad.body.contains("not an email address") && bad.body.contains("Bob"),
        "{}",
        bad.body
    );
    let plan = browser
        .post(
            &signup,
            &[
                ("token", &token),
                ("name", "Bob"),
                ("email", "bob@example.com"),
                ("plan", "platinum"),
            ],
        )
        .await;
    assert!(
        plan.status.is_client_error() && plan.body.contains("bob@example.com"),
        "{}",
        plan.body
    );
    // Four posts from this client: the fifth is refused until the window passes.
    let limited = browser
        .post(
            &signup,
            &[
                ("token", &token),
                ("name", "Cy"),
                ("email", "cy@example.com"),
                ("plan", "starter"),
            ],
        )
        .await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.headers["retry-after"], "600");
    assert!(limited.body.contains("cy@example.com"));
    let (_, customers) = ws.call(Method::GET, "/v1/customers", None).await;
    assert_eq!(
        customers["data"].as_array().unwrap().len(),
        1,
        "{customers}"
    );

    // Off again: gone.
    public_pages(&ws, false).await;
    assert_eq!(browser.get(&pricing).await.status, StatusCode::NOT_FOUND);
}
backend_tests!(pricing_and_signup);

/// A custom domain serves the partner's pages at `/pricing`, `/signup` and `/portal` with the
/// partner's brand only (Levqor case 7); unknown hosts behave as before; one hostname belongs to
/// one workspace.
async fn host_routing(backend: Backend) {
    let server = TestServer::start(backend).await;
    let partner = server.workspace("levqor.yaml").await;
    let other = server.workspace("qlp.yaml").await;
    let host = format!("billing-{}.northwind.test", &partner.id[3..15]);
    let (status, _) = partner
        .call(
            Method::PUT,
            "/v1/billing_profile",
            Some(json!({"legal_name": "Northwind Automations Ltd",
                "brand": {"name": "Northwind Automations", "color": "#0f766e", "logo_url": "https://northwind.example/logo.png"}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    public_pages(&partner, true).await;
    public_pages(&other, true).await;

    for bad in ["localhost", "a_b.test", "x.test:8080", "-x.test"] {
        let (status, body) = partner
            .call(Method::POST, "/v1/domains", Some(json!({"hostname": bad})))
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_hostname")),
            "{bad}"
        );
    }
    let (status, body) = partner
        .call(
            Method::POST,
            "/v1/domains",
            Some(json!({"hostname": host.to_uppercase()})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["hostname"], host.as_str());
    let (status, body) = other
        .call(Method::POST, "/v1/domains", Some(json!({"hostname": host})))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("already_exists"))
    );
    let (_, list) = partner.call(Method::GET, "/v1/domains", None).await;
    assert_eq!(list["data"][0]["hostname"], host.as_str());
    let (_, list) = other.call(Method::GET, "/v1/domains", None).await;
    assert_eq!(list["data"], json!([]));

    // On the partner's domain (with a port, as browsers send it): its plans and brand, no id.
    let mut b = Browser::new(&server, Some(&format!("{host}:443")));
    let pricing = b.get("/pricing").await;
    assert_eq!(pricing.status, StatusCode::OK, "{}", pricing.body);
    assert!(pricing.body.contains("Northwind Automations"));
    assert!(pricing.body.contains("https://northwind.example/logo.png"));
    assert!(pricing.body.contains("/signup?plan="), "{}", pricing.body);
    let signup = b.get("/signup").await;
    let sign_in = b.get("/portal/signin").await;
    let css = b.get("/public/brand.css").await;
    assert!(css.body.contains("--brand: #0f766e"), "{}", css.body);
    for page in [&pricing, &signup, &sign_in, &css] {
        assert_eq!(page.status, StatusCode::OK);
        let lower = page.body.to_lowercase();
        assert!(
            !lower.contains("levqor") && !lower.contains("tollgate"),
            "{}",
            page.body
        );
        assert!(!page.body.contains(&partner.id), "{}", page.body);
    }
    // Another workspace through the partner's domain: not found.
    assert_eq!(
        b.get(&format!("/pricing/{}", other.id)).await.status,
        StatusCode::NOT_FOUND
    );
    // A portal session of another workspace is refused on the partner's domain.
    other.post("/v1/customers", json!({"id": "cus_q"})).await;
    let (_, session) = other
        .call(Method::POST, "/v1/customers/cus_q/portal_sessions", None)
        .await;
    let url = session["url"].as_str().unwrap();
    let path = &url[url.find("/portal/enter/").unwrap()..];
    assert_eq!(b.get(path).await.status, StatusCode::GONE);
    // ...and still works where it was made (the refusal did not use it).
    assert_eq!(
        Browser::new(&server, None).get(path).await.status,
        StatusCode::OK
    );

    // Unknown hosts: as before (no `/pricing` without a workspace).
    let mut stranger = Browser::new(&server, Some("unknown.example.org"));
    assert_eq!(stranger.get("/pricing").await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        stranger.get(&format!("/pricing/{}", other.id)).await.status,
        StatusCode::OK
    );

    let (status, _) = other
        .call(Method::DELETE, &format!("/v1/domains/{host}"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = partner
        .call(Method::DELETE, &format!("/v1/domains/{host}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(b.get("/pricing").await.status, StatusCode::NOT_FOUND);
}
backend_tests!(host_routing);

/// Portal sign-in by email on the partner's domain: the link arrives through SMTP, opens the
/// portal once, is refused a second time and after 15 minutes; an unknown email gets the same
/// page and no email; no token is stored in clear (the outbox event holds none).
async fn magic_link(backend: Backend) {
    let relay = SmtpReceiver::start().await;
    let cfg = EmailConfig {
        smtp: SmtpConfig::parse(&relay.url(), Some(TlsMode::None), Duration::from_secs(5)).unwrap(),
        poll_interval: None,
    };
    let clock = Arc::new(ShiftedClock::default());
    let server = TestServer::start_with_clock(
        backend,
        |c| {
            c.email = Some(cfg.clone());
            c.public_limits = limits(5);
        },
        clock.clone(),
    )
    .await;
    let engine = &server.server.as_ref().unwrap().state.engine;
    let ws = server.workspace("levqor.yaml").await;
    let host = format!("portal-{}.northwind.test", &ws.id[3..15]);
    let (status, _) = ws
        .call(
            Method::PUT,
            "/v1/email_settings",
            Some(json!({"from_address": "billing@northwind.test", "brand_name": "Northwind Automations"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = ws
        .call(Method::POST, "/v1/domains", Some(json!({"hostname": host})))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = ws
        .call(
            Method::PUT,
            "/v1/billing_profile",
            Some(json!({"legal_name": "Northwind Automations Ltd", "brand": {"name": "Northwind Automations"}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    public_pages(&ws, true).await;
    ws.post(
        "/v1/customers",
        json!({"id": "cus_m", "name": "Mia", "email": "mia@example.com"}),
    )
    .await;

    let mut b = Browser::new(&server, Some(&host));
    let form = b.get("/portal/signin").await;
    assert_eq!(form.status, StatusCode::OK);
    let token = field(&form.body, "token");
    let known = b
        .post(
            "/portal/signin",
            &[("token", &token), ("email", "MIA@example.com")],
        )
        .await;
    let unknown = b
        .post(
            "/portal/signin",
            &[("token", &token), ("email", "nobody@example.com")],
        )
        .await;
    assert_eq!(
        (known.status, unknown.status),
        (StatusCode::OK, StatusCode::OK)
    );
    assert_eq!(
        known.body.replace("MIA@example.com", "E"),
        unknown.body.replace("nobody@example.com", "E"),
        "the answers differ"
    );
    assert!(known.body.contains("we have sent it a sign-in link"));
    // A malformed address is an error that says nothing about customers.
    let bad = b
        .post("/portal/signin", &[("token", &token), ("email", "nope")])
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);

    // The outbox event names the customer and the origin, never a token.
    let (_, events) = ws
        .call(
            Method::GET,
            "/v1/domain_events?type=portal.sign_in_requested",
            None,
        )
        .await;
    let data = &events["data"];
    assert_eq!(data.as_array().unwrap().len(), 1, "{events}");
    assert_eq!(
        data[0]["data"],
        json!({"customer": "cus_m", "origin": format!("http://{host}")})
    );
    assert!(!events.to_string().contains("tgs_"));

    let sent = email::run_workspace(engine, &cfg, &ws.id).await.unwrap();
    assert_eq!(sent, 1);
    let mails = relay.received();
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].to, vec!["mia@example.com".to_owned()]);
    assert!(
        mails[0]
            .subject()
            .contains("Sign in to Northwind Automations")
    );
    let text = mails[0].plain();
    let prefix = format!("http://{host}/portal/enter/");
    let at = text.find(&prefix).unwrap_or_else(|| panic!("{text}"));
    let link_token: String = text[at + prefix.len()..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    let path = format!("/portal/enter/{link_token}");
    // The email log keeps no link.
    let (_, log) = ws.call(Method::GET, "/v1/email_messages", None).await;
    assert!(!log.to_string().contains(&link_token), "{log}");

    let enter = b.get(&path).await;
    assert_eq!(enter.status, StatusCode::OK, "{}", enter.body);
    let portal = b.get("/portal").await;
    assert_eq!(portal.status, StatusCode::OK, "{}", portal.body);
    assert!(
        portal.body.contains("Northwind Automations"),
        "{}",
        portal.body
    );
    assert!(
        !portal.body.to_lowercase().contains("levqor"),
        "{}",
        portal.body
    );
    // Once only.
    assert_eq!(
        Browser::new(&server, Some(&host)).get(&path).await.status,
        StatusCode::GONE
    );

    // A second link, opened after 15 minutes: expired.
    let again = b
        .post(
            "/portal/signin",
            &[("token", &token), ("email", "mia@example.com")],
        )
        .await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(email::run_workspace(engine, &cfg, &ws.id).await.unwrap(), 1);
    let text = relay.received()[1].plain();
    let at = text.find(&prefix).unwrap();
    let late: String = text[at + prefix.len()..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    assert_ne!(late, link_token);
    clock.seconds.store(15 * 60 + 1, Ordering::SeqCst);
    let expired = Browser::new(&server, Some(&host))
        .get(&format!("/portal/enter/{late}"))
        .await;
    assert_eq!(expired.status, StatusCode::GONE);
    clock.seconds.store(0, Ordering::SeqCst);

    // Without a custom domain and without --public-url, no link is sent (a Host header alone
    // never says where a link points), and the page answers the same.
    let mut plain = Browser::new(&server, None);
    let form = plain.get(&format!("/portal/signin/{}", ws.id)).await;
    let plain_token = field(&form.body, "token");
    let answer = plain
        .post(
            &format!("/portal/signin/{}", ws.id),
            &[("token", &plain_token), ("email", "mia@example.com")],
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(answer.body.contains("we have sent it a sign-in link"));
    let (_, events) = ws
        .call(
            Method::GET,
            "/v1/domain_events?type=portal.sign_in_requested",
            None,
        )
        .await;
    assert_eq!(events["data"].as_array().unwrap().len(), 2, "{events}");
    // The sign-in form is bounded too: 5 posts from this client so far (known, unknown, bad,
    // again, and the one above), the 6th is refused.
    let sixth = b
        .post(
            "/portal/signin",
            &[("token", &token), ("email", "x@example.com")],
        )
        .await;
    assert_eq!(sixth.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(sixth.headers.contains_key("retry-after"));
}
backend_tests!(magic_link);
