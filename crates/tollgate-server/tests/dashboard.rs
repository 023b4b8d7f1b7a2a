//! The web pages against a real server: operators and their sessions, roles, the MRR report
//! (hand-computed on QLP's catalog, case 5's refund included) and the dashboard showing the same
//! numbers as the API, and the customer portal (single-use links, branding, plan change).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

mod common;

use common::{Backend, TestServer, Workspace, backend_tests};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// A browser of sorts: no redirects followed, cookies kept by hand.
struct Browser {
    http: reqwest::Client,
    base: String,
    cookies: Vec<(String, String)>,
    last_set_cookies: Vec<String>,
}

impl Browser {
    fn new(server: &TestServer) -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: server.base.clone(),
            cookies: Vec::new(),
            last_set_cookies: Vec::new(),
        }
    }

    fn keep(&mut self, response: &reqwest::Response) {
        self.last_set_cookies = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        for set in &self.last_set_cookies {
            let pair = set.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            self.cookies.retain(|(n, _)| n != name);
            if !value.is_empty() && !set.contains("Max-Age=0") {
                self.cookies.push((name.to_owned(), value.to_owned()));
            }
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn get(&mut self, path: &str) -> (StatusCode, String, reqwest::header::HeaderMap) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.keep(&response);
        let status = response.status();
        let headers = response.headers().clone();
        // minijinja's HTML escaping writes `/` as `&#x2f;`: read it back as a browser does.
        let text = response.text().await.unwrap().replace("&#x2f;", "/");
        assert!(
            !text.contains("serde_json"),
            "a number leaked as an object: {text}"
        );
        (status, text, headers)
    }

    async fn get_bytes(&mut self, path: &str) -> (StatusCode, Vec<u8>, reqwest::header::HeaderMap) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        (status, response.bytes().await.unwrap().to_vec(), headers)
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> (StatusCode, String, String) {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(encode_form(form))
            .send()
            .await
            .unwrap();
        self.keep(&response);
        let status = response.status();
        let location = response
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (status, response.text().await.unwrap(), location)
    }

    /// Signs in (reading the form's CSRF token first); the status of the answer.
    async fn sign_in(
        &mut self,
        workspace: &str,
        email: &str,
        password: &str,
    ) -> (StatusCode, String) {
        let (status, html, _) = self.get("/admin/login").await;
        assert_eq!(status, StatusCode::OK);
        let csrf = csrf_of(&html);
        let (status, body, location) = self
            .post(
                "/admin/login",
                &[
                    ("workspace", workspace),
                    ("email", email),
                    ("password", password),
                    ("csrf", &csrf),
                ],
            )
            .await;
        (status, if location.is_empty() { body } else { location })
    }
}

/// `application/x-www-form-urlencoded`, as a browser sends a form.
fn encode_form(form: &[(&str, &str)]) -> String {
    let encode = |text: &str| {
        text.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                    char::from(b).to_string()
                }
                b' ' => "+".to_owned(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    form.iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The value of the first `name="csrf"` hidden field of a page.
fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    html[at..].split('"').next().unwrap().to_owned()
}

async fn user(ws: &Workspace<'_>, email: &str, role: &str) -> Value {
    let (status, body) = ws
        .call(
            Method::POST,
            "/v1/users",
            Some(json!({"email": email, "password": "correct horse battery", "role": role})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

async fn users_and_sessions(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = server.workspace("qlp.yaml").await;
    let created = user(&ws, "Admin@Example.com", "admin").await;
    assert_eq!(created["email"], "admin@example.com");
    assert_eq!(created["role"], "admin");
    assert!(created.get("password_hash").is_none());

    // Bad input is refused with stable codes.
    for (body, code) in [
        (
            json!({"email": "x@example.com", "password": "correct horse battery", "role": "owner"}),
            "invalid_role",
        ),
        (
            json!({"email": "x@example.com", "password": "short", "role": "admin"}),
            "invalid_password",
        ),
        (
            json!({"email": "not an email", "password": "correct horse battery", "role": "admin"}),
            "invalid_email",
        ),
    ] {
        let (status, problem) = ws.call(Method::POST, "/v1/users", Some(body)).await;
        assert_eq!(
            (status, problem["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some(code))
        );
    }
    let (status, problem) = ws
        .call(
            Method::POST,
            "/v1/users",
            Some(json!({"email": "admin@example.com", "password": "another long password", "role": "billing"})),
        )
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::CONFLICT, Some("already_exists"))
    );
    // A customer key cannot mint users.
    let key = ws.customer("c1", "free", None, false).await;
    let (status, _) = server
        .call(
            &key,
            Method::POST,
            "/v1/users",
            Some(json!({"email": "y@example.com", "password": "correct horse battery", "role": "admin"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, list) = ws.call(Method::GET, "/v1/users", None).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);

    let mut browser = Browser::new(&server);
    // Pages need a session.
    let (status, _, headers) = browser.get("/admin").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers["location"], "/admin/login");
    // The login form labels its fields.
    let (_, form, _) = browser.get("/admin/login").await;
    for field in ["workspace", "email", "password"] {
        assert!(form.contains(&format!("<label for=\"{field}\">")), "{form}");
        assert!(form.contains(&format!("id=\"{field}\"")));
    }
    // A post without the form's token is refused.
    let (status, _, _) = Browser::new(&server)
        .post(
            "/admin/login",
            &[
                ("workspace", &ws.id),
                ("email", "admin@example.com"),
                ("password", "correct horse battery"),
                ("csrf", "forged"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // An unknown email and a wrong password get the same answer.
    let (s1, unknown) = browser
        .sign_in(&ws.id, "nobody@example.com", "correct horse battery")
        .await;
    let (s2, wrong) = browser
        .sign_in(&ws.id, "admin@example.com", "wrong password!!")
        .await;
    assert_eq!(
        (s1, s2),
        (StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED)
    );
    let message = |html: &str| {
        html.split("role=\"alert\">")
            .nth(1)
            .unwrap()
            .split('<')
            .next()
            .unwrap()
            .to_owned()
    };
    assert_eq!(message(&unknown), message(&wrong));

    // The right password opens a session in an HttpOnly, SameSite=Strict cookie.
    let (status, location) = browser
        .sign_in(&ws.id, "admin@example.com", "correct horse battery")
        .await;
    assert_eq!(
        (status, location.as_str()),
        (StatusCode::SEE_OTHER, "/admin")
    );
    let session = browser
        .last_set_cookies
        .iter()
        .find(|c| c.starts_with("tg_admin="))
        .unwrap()
        .clone();
    assert!(
        session.contains("HttpOnly")
            && session.contains("SameSite=Strict")
            && session.contains("Path=/admin"),
        "{session}"
    );
    assert!(
        !session.contains("Secure"),
        "plain http: no Secure flag, or the browser drops it"
    );
    let (status, home, headers) = browser.get("/admin").await;
    assert_eq!(status, StatusCode::OK, "{home}");
    assert!(home.contains("MRR") && home.contains("admin@example.com"));
    assert_eq!(headers["cache-control"], "no-store");

    // Sign-out needs the token too, then ends the session.
    let (status, _, _) = browser.post("/admin/logout", &[("csrf", "forged")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let csrf = csrf_of(&home);
    let (status, _, location) = browser.post("/admin/logout", &[("csrf", &csrf)]).await;
    assert_eq!(
        (status, location.as_str()),
        (StatusCode::SEE_OTHER, "/admin/login")
    );
    let (status, _, _) = browser.get("/admin").await;
    assert_eq!(status, StatusCode::SEE_OTHER);

    // Failed attempts are bounded: after five, even the right password waits.
    let mut browser = Browser::new(&server);
    for _ in 0..5 {
        let (status, _) = browser
            .sign_in(&ws.id, "admin@example.com", "wrong password!!")
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, page) = browser
        .sign_in(&ws.id, "admin@example.com", "correct horse battery")
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{page}");
}
backend_tests!(users_and_sessions);

/// Customer `id` on `plan` from `start` on its own test clock, without trial; the clock.
async fn subscriber(ws: &Workspace<'_>, id: &str, plan: &str, start: &str) -> (String, String) {
    let clock = ws.test_clock(start).await;
    ws.post("/v1/customers", json!({"id": id, "test_clock": clock}))
        .await;
    let sub = ws
        .post(
            &format!("/v1/customers/{id}/subscriptions"),
            json!({"plan": plan, "trial": false}),
        )
        .await;
    (clock, sub["id"].as_str().unwrap().to_owned())
}

async fn mrr(ws: &Workspace<'_>, from: &str, to: &str) -> Value {
    let (status, body) = ws
        .call(
            Method::GET,
            &format!("/v1/analytics/mrr?from={from}&to={to}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// month, start, new, expansion, contraction, churn, reactivation, end.
type Movements = (String, i64, i64, i64, i64, i64, i64, i64);

fn movements(report: &Value) -> Vec<Movements> {
    report["months"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let n = |k: &str| m[k].as_i64().unwrap();
            (
                m["month"].as_str().unwrap().to_owned(),
                n("start_minor"),
                n("new_minor"),
                n("expansion_minor"),
                n("contraction_minor"),
                n("churn_minor"),
                n("reactivation_minor"),
                n("end_minor"),
            )
        })
        .collect()
}

/// QLP, hand-computed: `b` on professional ($499.00) from 2026-09-10; `d` on starter ($99.00)
/// from 2026-09-01, cancelled at its period end (2026-10-01); `a` on starter from 2026-10-15;
/// `c` on starter from 2026-11-01, its $99.00 invoice paid and refunded in full on 2026-11-20
/// (case 5): MRR no longer counts `c`.
async fn mrr_movements_by_hand(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = server.workspace("qlp.yaml").await;
    subscriber(&ws, "b", "professional", "2026-09-10T00:00:00Z").await;
    let (_, d_sub) = subscriber(&ws, "d", "starter", "2026-09-01T00:00:00Z").await;
    ws.post(
        &format!("/v1/customers/d/subscriptions/{d_sub}/cancel"),
        json!({}),
    )
    .await;
    subscriber(&ws, "a", "starter", "2026-10-15T00:00:00Z").await;
    let (c_clock, _) = subscriber(&ws, "c", "starter", "2026-11-01T00:00:00Z").await;
    // Payg brings no MRR.
    subscriber(&ws, "p", "payg", "2026-09-01T00:00:00Z").await;

    let m = |month: &str, v: [i64; 7]| (month.to_owned(), v[0], v[1], v[2], v[3], v[4], v[5], v[6]);
    let before = mrr(&ws, "2026-09", "2026-11").await;
    assert_eq!(before["currency"], "USD");
    assert_eq!(
        movements(&before),
        vec![
            // start, new, expansion, contraction, churn, reactivation, end
            m("2026-09", [0, 59_800, 0, 0, 0, 0, 59_800]),
            m("2026-10", [59_800, 9_900, 0, 0, 9_900, 0, 59_800]),
            m("2026-11", [59_800, 9_900, 0, 0, 0, 0, 69_700]),
        ]
    );
    assert_eq!(before["months"][2]["arr_minor"], 69_700 * 12);
    assert_eq!(before["months"][2]["customers_end"], 3);

    // Case 5: c's $99.00 invoice paid, then refunded in full on 2026-11-20.
    ws.post("/v1/bill_runs", json!({})).await;
    let (_, list) = ws.call(Method::GET, "/v1/customers/c/invoices", None).await;
    let invoice = list["data"][0].clone();
    assert_eq!(invoice["total"], "99.00", "{list}");
    let id = invoice["id"].as_str().unwrap();
    ws.post(&format!("/v1/invoices/{id}/pay"), json!({})).await;
    ws.advance(&c_clock, "2026-11-20T00:00:00Z").await;
    ws.post(
        &format!("/v1/invoices/{id}/credit_notes"),
        json!({"reason": "refund"}),
    )
    .await;
    let after = mrr(&ws, "2026-09", "2026-11").await;
    assert_eq!(
        movements(&after)[2],
        m("2026-11", [59_800, 0, 0, 0, 0, 0, 59_800]),
        "a refunded customer stops counting"
    );
    assert_eq!(after["months"][2]["customers_end"], 2);

    // The same figures as CSV, by parameter and by Accept.
    let (status, csv) = ws
        .call(
            Method::GET,
            "/v1/analytics/mrr?from=2026-09&to=2026-11&format=csv",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let csv = csv.as_str().unwrap().to_owned();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 4, "{csv}");
    assert!(lines[0].starts_with("currency,month,start_minor,new_minor"));
    assert!(
        lines[3].starts_with("USD,2026-11,59800,0,0,0,0,0,59800,717600,"),
        "{csv}"
    );
    let response = server
        .http
        .get(format!(
            "{}/v1/analytics/mrr?from=2026-09&to=2026-11",
            server.base
        ))
        .bearer_auth(&ws.key)
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    assert_eq!(response.text().await.unwrap(), csv);

    // Bad months are a 400 with a stable code.
    for query in [
        "from=2026-13&to=2026-14",
        "from=2026-11&to=2026-09",
        "from=2000-01&to=2026-01",
        "from=x&to=y",
    ] {
        let (status, problem) = ws
            .call(Method::GET, &format!("/v1/analytics/mrr?{query}"), None)
            .await;
        assert_eq!(
            (status, problem["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_month")),
            "{query}"
        );
    }

    // The dashboard shows the API's numbers, month by month.
    user(&ws, "ops@example.com", "read_only").await;
    let mut browser = Browser::new(&server);
    browser
        .sign_in(&ws.id, "ops@example.com", "correct horse battery")
        .await;
    let (status, page, _) = browser
        .get("/admin/analytics?from=2026-09&to=2026-11")
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("<svg class=\"chart\""));
    for month in after["months"].as_array().unwrap() {
        let label = month["month"].as_str().unwrap();
        let row = page
            .split(&format!("<tr data-month=\"{label}\">"))
            .nth(1)
            .unwrap_or_else(|| panic!("no row {label} in {page}"))
            .split("</tr>")
            .next()
            .unwrap();
        for key in ["start_minor", "new_minor", "churn_minor", "end_minor"] {
            let minor = month[key].as_i64().unwrap();
            let shown = format!("{}.{:02} USD", minor / 100, minor % 100);
            assert!(row.contains(&shown), "{label} {key}: {shown} not in {row}");
        }
    }
    let (_, csv_page, headers) = browser
        .get("/admin/analytics.csv?from=2026-09&to=2026-11")
        .await;
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    assert_eq!(csv_page, csv);
}
backend_tests!(mrr_movements_by_hand);

/// Customers and invoices pages; a read_only operator cannot pay or void, a billing one can.
async fn pages_and_roles(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = server.workspace("qlp.yaml").await;
    subscriber(&ws, "acme", "starter", "2026-11-02T00:00:00Z").await;
    ws.post(
        "/v1/customers",
        json!({"id": "globex", "name": "Globex Corp"}),
    )
    .await;
    ws.post("/v1/customers/acme/keys", json!({"name": "ci"}))
        .await;
    ws.post("/v1/bill_runs", json!({})).await;
    let (_, list) = ws
        .call(Method::GET, "/v1/customers/acme/invoices", None)
        .await;
    let id = list["data"][0]["id"].as_str().unwrap().to_owned();
    user(&ws, "viewer@example.com", "read_only").await;
    user(&ws, "billing@example.com", "billing").await;

    let mut viewer = Browser::new(&server);
    viewer
        .sign_in(&ws.id, "viewer@example.com", "correct horse battery")
        .await;
    let (status, page, _) = viewer.get("/admin/customers?q=GLOBEX").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("globex") && !page.contains(">acme<"),
        "{page}"
    );
    let (status, page, _) = viewer.get("/admin/customers/acme").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    for needle in [
        "Starter",
        "99.00 USD / month",
        "generations",
        "tg_live_",
        &id[..],
    ] {
        assert!(page.contains(needle), "{needle} not in {page}");
    }
    let (status, _, _) = viewer.get("/admin/customers/nobody").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, page, _) = viewer.get("/admin/invoices").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(&id));
    let (status, page, _) = viewer.get(&format!("/admin/invoices/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("99.00") && !page.contains("Mark paid"),
        "{page}"
    );
    let csrf = csrf_of(&page);
    let (status, _, _) = viewer
        .post(&format!("/admin/invoices/{id}/pay"), &[("csrf", &csrf)])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, invoice) = ws
        .call(Method::GET, &format!("/v1/invoices/{id}"), None)
        .await;
    assert_eq!(invoice["status"], "open");
    let (status, pdf, headers) = viewer.get_bytes(&format!("/admin/invoices/{id}/pdf")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/pdf");
    assert!(pdf.starts_with(b"%PDF"));

    let mut billing = Browser::new(&server);
    billing
        .sign_in(&ws.id, "billing@example.com", "correct horse battery")
        .await;
    let (_, page, _) = billing.get(&format!("/admin/invoices/{id}")).await;
    assert!(page.contains("Mark paid"));
    // Another session's token is not this one's.
    let (status, _, _) = billing
        .post(&format!("/admin/invoices/{id}/pay"), &[("csrf", &csrf)])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let csrf = csrf_of(&page);
    let (status, _, location) = billing
        .post(&format!("/admin/invoices/{id}/pay"), &[("csrf", &csrf)])
        .await;
    assert_eq!(
        (status, location),
        (StatusCode::SEE_OTHER, format!("/admin/invoices/{id}"))
    );
    let (_, invoice) = ws
        .call(Method::GET, &format!("/v1/invoices/{id}"), None)
        .await;
    assert_eq!(invoice["status"], "paid");
}
backend_tests!(pages_and_roles);

/// The portal: a single-use link, the partner's brand only (Levqor case 7), plan change, keys,
/// invoice PDF, and nothing of another customer.
async fn portal(backend: Backend) {
    let server = TestServer::start(backend).await;
    // The agency's workspace, as the operator (Levqor) names it internally.
    let ws = server.workspace("levqor.yaml").await;
    let (status, _) = ws
        .call(
            Method::PUT,
            "/v1/billing_profile",
            Some(json!({
                "legal_name": "Northwind Automations Ltd",
                "brand": {"name": "Northwind Automations", "color": "#0f766e", "logo_url": "https://northwind.example/logo.png"}
            })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // A bad brand is refused.
    let (status, problem) = ws
        .call(
            Method::PUT,
            "/v1/billing_profile",
            Some(json!({"legal_name": "X", "brand": {"name": "X", "color": "teal"}})),
        )
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("validation_failed"))
    );
    subscriber(&ws, "cus_a", "developer", "2026-11-02T00:00:00Z").await;
    ws.post("/v1/bill_runs", json!({})).await;
    ws.post("/v1/customers", json!({"id": "cus_b"})).await;

    let (status, session) = ws
        .call(Method::POST, "/v1/customers/cus_a/portal_sessions", None)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{session}");
    let url = session["url"].as_str().unwrap();
    let path = &url[url.find("/portal/enter/").unwrap()..];
    let (status, _) = ws
        .call(Method::POST, "/v1/customers/nobody/portal_sessions", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let mut browser = Browser::new(&server);
    let (status, _, _) = browser.get("/portal").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, welcome, _) = browser.get(path).await;
    assert_eq!(status, StatusCode::OK, "{welcome}");
    assert!(browser.last_set_cookies[0].contains("SameSite=Strict"));
    // The link works once.
    let (status, _, _) = Browser::new(&server).get(path).await;
    assert_eq!(status, StatusCode::GONE);

    let (status, page, _) = browser.get("/portal").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    for needle in [
        "Northwind Automations",
        "https://northwind.example/logo.png",
        "Developer",
        "api_calls",
        "Resets",
        "Professional",
        "99.00 USD / month",
    ] {
        assert!(page.contains(needle), "{needle} not in {page}");
    }
    let (_, css, _) = browser.get("/portal/brand.css").await;
    assert!(css.contains("--brand: #0f766e"), "{css}");
    // Never the operator's name: not the workspace's (it says levqor.yaml), nor Tollgate's.
    let (_, welcome_again, _) = (StatusCode::OK, welcome.clone(), ());
    for text in [&page, &welcome_again, &css] {
        let lower = text.to_lowercase();
        assert!(
            !lower.contains("levqor") && !lower.contains("tollgate"),
            "{text}"
        );
    }

    // Keys: create (the secret shown once), revoke.
    let csrf = csrf_of(&page);
    // Post/redirect/get: the secret is shown once on the page the redirect leads to, and a
    // refresh of that page neither shows it again nor creates a second key.
    let (status, _, location) = browser
        .post("/portal/keys", &[("csrf", &csrf), ("name", "laptop")])
        .await;
    assert_eq!(
        (status, location.as_str()),
        (StatusCode::SEE_OTHER, "/portal")
    );
    let (status, created, _) = browser.get("/portal").await;
    assert_eq!(status, StatusCode::OK);
    assert!(created.contains("class=\"secret\">tg_live_"), "{created}");
    let (_, refreshed, _) = browser.get("/portal").await;
    assert!(!refreshed.contains("class=\"secret\""), "{refreshed}");
    // Human-readable times: `01 Dec 2026, 00:00 UTC`, not RFC 3339.
    assert!(refreshed.contains(" UTC</td>"), "{refreshed}");
    let (_, keys) = ws.call(Method::GET, "/v1/customers/cus_a/keys", None).await;
    assert_eq!(
        keys["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|k| k["name"] == "laptop")
            .count(),
        1,
        "{keys}"
    );
    let key = keys["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "laptop")
        .unwrap()
        .clone();
    let (status, _, _) = browser
        .post(
            &format!("/portal/keys/{}/revoke", key["id"].as_str().unwrap()),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, keys) = ws.call(Method::GET, "/v1/customers/cus_a/keys", None).await;
    assert!(
        keys["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["name"] == "laptop" && !k["revoked_at"].is_null())
    );
    let (status, _, _) = browser
        .post("/portal/keys", &[("csrf", "forged"), ("name", "x")])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Change plan: an upgrade takes effect at once.
    let (status, _, location) = browser
        .post("/portal/plan", &[("csrf", &csrf), ("plan", "professional")])
        .await;
    assert_eq!(
        (status, location.as_str()),
        (StatusCode::SEE_OTHER, "/portal")
    );
    let (_, subs) = ws
        .call(Method::GET, "/v1/customers/cus_a/subscriptions", None)
        .await;
    assert_eq!(subs["data"][0]["plan"], "professional", "{subs}");

    // Invoice PDFs: its own, not another customer's.
    let (_, list) = ws
        .call(Method::GET, "/v1/customers/cus_a/invoices", None)
        .await;
    let id = list["data"][0]["id"].as_str().unwrap();
    let (status, pdf, _) = browser
        .get_bytes(&format!("/portal/invoices/{id}/pdf"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(pdf.starts_with(b"%PDF"));
    let other = subscriber(&ws, "cus_c", "developer", "2026-11-02T00:00:00Z").await;
    drop(other);
    ws.post("/v1/bill_runs", json!({})).await;
    let (_, list) = ws
        .call(Method::GET, "/v1/customers/cus_c/invoices", None)
        .await;
    let theirs = list["data"][0]["id"].as_str().unwrap();
    let (status, _, _) = browser
        .get_bytes(&format!("/portal/invoices/{theirs}/pdf"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // A portal session opens no dashboard.
    let (status, _, _) = browser.get("/admin").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
}
backend_tests!(portal);

/// Plan changes inside MRR history, hand-computed on QLP: `up` on starter ($99.00) from
/// 2026-10-15 upgrades to professional ($499.00) on 2026-11-15 (expansion in November);
/// `down` on professional from 2026-10-10 asks on 2026-11-20 for starter, which waits for its
/// period end, 2026-12-10 (contraction in December, not November). Case 5 through the payment
/// endpoints: `c` on starter from 2026-11-01, its $99.00 invoice paid by bank transfer
/// (a manual payment) on 2026-11-02 and refunded in full by a credit note on 2026-11-20: MRR no
/// longer counts `c` in November.
async fn mrr_follows_plan_changes(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = server.workspace("qlp.yaml").await;
    let (up_clock, up_sub) = subscriber(&ws, "up", "starter", "2026-10-15T00:00:00Z").await;
    let (down_clock, down_sub) =
        subscriber(&ws, "down", "professional", "2026-10-10T00:00:00Z").await;
    let (c_clock, _) = subscriber(&ws, "c", "starter", "2026-11-01T00:00:00Z").await;

    ws.advance(&up_clock, "2026-11-15T00:00:00Z").await;
    ws.post(
        &format!("/v1/customers/up/subscriptions/{up_sub}/change"),
        json!({"plan": "professional"}),
    )
    .await;
    ws.advance(&down_clock, "2026-11-20T00:00:00Z").await;
    let scheduled = ws
        .post(
            &format!("/v1/customers/down/subscriptions/{down_sub}/change"),
            json!({"plan": "starter"}),
        )
        .await;
    assert_eq!(scheduled["plan"], "professional", "{scheduled}");

    // Case 5: paid by transfer on 2026-11-02, refunded on 2026-11-20.
    ws.post("/v1/bill_runs", json!({})).await;
    let (_, list) = ws.call(Method::GET, "/v1/customers/c/invoices", None).await;
    let invoice = list["data"][0].clone();
    assert_eq!(invoice["total"], "99.00", "{list}");
    let id = invoice["id"].as_str().unwrap().to_owned();
    ws.advance(&c_clock, "2026-11-02T00:00:00Z").await;
    let (status, payment) = ws
        .call(
            Method::POST,
            &format!("/v1/invoices/{id}/payments"),
            Some(json!({"reference": "TRANSFER-C-1", "method": "bank_transfer"})),
        )
        .await;
    assert!(status.is_success(), "{status} {payment}");
    let (_, paid) = ws
        .call(Method::GET, &format!("/v1/invoices/{id}"), None)
        .await;
    assert_eq!(paid["status"], "paid", "{paid}");

    let m = |month: &str, v: [i64; 7]| (month.to_owned(), v[0], v[1], v[2], v[3], v[4], v[5], v[6]);
    let before = mrr(&ws, "2026-10", "2026-12").await;
    assert_eq!(
        movements(&before),
        vec![
            // start, new, expansion, contraction, churn, reactivation, end
            // October: up 99 + down 499.
            m("2026-10", [0, 59_800, 0, 0, 0, 0, 59_800]),
            // November: up +400 (expansion), c new at 99; down's change waits.
            m("2026-11", [59_800, 9_900, 40_000, 0, 0, 0, 109_700]),
            // December: nothing has happened yet on down's clock.
            m("2026-12", [109_700, 0, 0, 0, 0, 0, 109_700]),
        ]
    );

    ws.advance(&c_clock, "2026-11-20T00:00:00Z").await;
    ws.post(
        &format!("/v1/invoices/{id}/credit_notes"),
        json!({"reason": "refund"}),
    )
    .await;
    // The downgrade takes effect at down's period end.
    ws.advance(&down_clock, "2026-12-10T00:00:01Z").await;
    ws.post("/v1/bill_runs", json!({})).await;
    let (_, subs) = ws
        .call(Method::GET, "/v1/customers/down/subscriptions", None)
        .await;
    assert_eq!(subs["data"][0]["plan"], "starter", "{subs}");

    let after = mrr(&ws, "2026-10", "2026-12").await;
    assert_eq!(
        movements(&after),
        vec![
            m("2026-10", [0, 59_800, 0, 0, 0, 0, 59_800]),
            // c refunded in full on 2026-11-20: never counted at November's close.
            m("2026-11", [59_800, 0, 40_000, 0, 0, 0, 99_800]),
            // down moves from 499 to 99 on 2026-12-10.
            m("2026-12", [99_800, 0, 0, 40_000, 0, 0, 59_800]),
        ]
    );
    assert_eq!(after["months"][1]["customers_end"], 2);
    assert_eq!(after["months"][2]["arr_minor"], 59_800 * 12);
    assert_eq!(after["months"][2]["arpu_minor"], 29_900);
}
backend_tests!(mrr_follows_plan_changes);

/// QLP case 6 on case 1, by hand: with a cost of $0.03 per T0 and $0.12 per T3 generation
/// (and $0.0004 per API call), November's payg invoice (10 T0, 4 T2, 2 T3 on gpt-4: $7.00;
/// 1,000 API calls: $1.00) gives generations: revenue 7.00, cost 10 x 0.03 + 2 x 0.12 = 0.54,
/// margin 6.46 (92.29 %); api_calls: 1.00, 0.40, 0.60 (60.00 %); total 8.00, 0.94, 7.06
/// (88.25 %). The API, its CSV and the dashboard page agree.
async fn margins_by_hand(backend: Backend) {
    let server = TestServer::start(backend).await;
    let yaml = std::fs::read_to_string(format!(
        "{}/../../examples/catalogs/qlp.yaml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let yaml = format!(
        "{yaml}\ncosts:\n  generations: {{ dimension: tier, rates: {{ T0: \"0.03\", T3: \"0.12\" }} }}\n  api_calls: {{ unit_amount: \"0.0004\" }}\n"
    );
    let ws = server.workspace_with("qlp.yaml", &yaml).await;
    let (clock, _) = subscriber(&ws, "payg", "payg", "2026-11-01T00:00:00Z").await;
    ws.advance(&clock, "2026-11-10T00:00:00Z").await;
    let mut events = Vec::new();
    for (tier, model, n) in [
        ("T0", "standard", 10),
        ("T2", "standard", 4),
        ("T3", "gpt-4", 2),
    ] {
        for _ in 0..n {
            let i = events.len();
            events.push(json!({"id": format!("g{i}"), "customer": "payg", "type": "codegen.completed", "properties": {"tier": tier, "model": model}}));
        }
    }
    for i in 0..1000 {
        events.push(json!({"id": format!("a{i}"), "customer": "payg", "type": "api.call"}));
    }
    let (status, report) = ws.events(Value::Array(events)).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    ws.advance(&clock, "2026-12-01T00:00:00Z").await;
    ws.post("/v1/bill_runs", json!({})).await;
    let (_, list) = ws
        .call(Method::GET, "/v1/customers/payg/invoices", None)
        .await;
    // The opening invoice (nothing to bill in advance on payg), then November's.
    assert_eq!(list["data"][1]["total"], "8.00", "{list}");

    let (status, body) = ws
        .call(
            Method::GET,
            "/v1/analytics/margins?from=2026-11&to=2026-11",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["currency"], "USD");
    assert_eq!(body["invoices"], 1);
    let row = |meter: &str| {
        body["meters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["meter"] == meter)
            .unwrap_or_else(|| panic!("no {meter} in {body}"))
            .clone()
    };
    assert_eq!(
        row("generations"),
        json!({"meter": "generations", "units": "16", "revenue_minor": 700, "cost_minor": 54,
               "margin_minor": 646, "margin_percent": "92.29"})
    );
    assert_eq!(
        row("api_calls"),
        json!({"meter": "api_calls", "units": "1000", "revenue_minor": 100, "cost_minor": 40,
               "margin_minor": 60, "margin_percent": "60.00"})
    );
    // Priced meters without usage: 0.00 lines, no cost, no percentage.
    assert_eq!(row("compute_minutes")["revenue_minor"], 0);
    assert_eq!(row("compute_minutes")["margin_percent"], Value::Null);
    assert_eq!(
        body["total"],
        json!({"meter": "total", "units": "0", "revenue_minor": 800, "cost_minor": 94,
               "margin_minor": 706, "margin_percent": "88.25"})
    );
    // Another month has no invoice; bad months are refused.
    let (_, empty) = ws
        .call(
            Method::GET,
            "/v1/analytics/margins?from=2026-12&to=2026-12",
            None,
        )
        .await;
    assert_eq!(empty["invoices"], 0);
    assert_eq!(empty["meters"], json!([]));
    for query in [
        "from=2026-12&to=2026-11",
        "from=2000-01&to=2026-01",
        "from=x&to=y",
    ] {
        let (status, problem) = ws
            .call(Method::GET, &format!("/v1/analytics/margins?{query}"), None)
            .await;
        assert_eq!(
            (status, problem["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_month")),
            "{query}"
        );
    }

    let (_, csv) = ws
        .call(
            Method::GET,
            "/v1/analytics/margins?from=2026-11&to=2026-11&format=csv",
            None,
        )
        .await;
    let csv = csv.as_str().unwrap().to_owned();
    assert!(
        csv.starts_with(
            "currency,meter,units,revenue_minor,cost_minor,margin_minor,margin_percent\n"
        ),
        "{csv}"
    );
    assert!(
        csv.contains("\nUSD,generations,16,700,54,646,92.29\n"),
        "{csv}"
    );
    assert!(csv.ends_with("\nUSD,total,,800,94,706,88.25\n"), "{csv}");

    user(&ws, "ops@example.com", "read_only").await;
    let mut browser = Browser::new(&server);
    browser
        .sign_in(&ws.id, "ops@example.com", "correct horse battery")
        .await;
    let (status, page, _) = browser.get("/admin/margins?from=2026-11&to=2026-11").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let shown = page
        .split("<tr data-meter=\"generations\">")
        .nth(1)
        .unwrap_or_else(|| panic!("{page}"))
        .split("</tr>")
        .next()
        .unwrap();
    for needle in ["7.00 USD", "0.54 USD", "6.46 USD", "92.29 %"] {
        assert!(shown.contains(needle), "{needle} not in {shown}");
    }
    let (_, page_csv, _) = browser
        .get("/admin/margins.csv?from=2026-11&to=2026-11")
        .await;
    assert_eq!(page_csv, csv);
}
backend_tests!(margins_by_hand);

/// Retention and invoiced revenue, by hand on QLP: `a` (starter, $99.00), `b` (professional,
/// $499.00) and `c` (starter, cancelled at its period end) from 2026-10-01; `a` upgrades to
/// professional on 2026-11-16; `p` on payg from 2026-11-01 runs QLP case 1 ($7.00).
/// November: 3 customers at the start, `c` churns: logo churn 1/3 = 33.33 %; revenue churn
/// 99/697 = 14.20 %; NRR (697 + 400 - 99) / 697 = 143.19 %. Invoiced: October 99 + 499 + 99 =
/// 697.00 (starter 198, professional 499); November 99 (a's opening invoice, before its upgrade)
/// + 499 + 7.00 of generations = 605.00.
async fn retention_and_revenue_by_hand(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = server.workspace("qlp.yaml").await;
    let (a_clock, a_sub) = subscriber(&ws, "a", "starter", "2026-10-01T00:00:00Z").await;
    let (b_clock, _) = subscriber(&ws, "b", "professional", "2026-10-01T00:00:00Z").await;
    let (c_clock, c_sub) = subscriber(&ws, "c", "starter", "2026-10-01T00:00:00Z").await;
    ws.post(
        &format!("/v1/customers/c/subscriptions/{c_sub}/cancel"),
        json!({}),
    )
    .await;
    let (p_clock, _) = subscriber(&ws, "p", "payg", "2026-11-01T00:00:00Z").await;
    ws.post("/v1/bill_runs", json!({})).await;
    for clock in [&a_clock, &b_clock, &c_clock] {
        ws.advance(clock, "2026-11-01T00:00:00Z").await;
    }
    ws.post("/v1/bill_runs", json!({})).await;
    ws.advance(&a_clock, "2026-11-16T00:00:00Z").await;
    ws.post(
        &format!("/v1/customers/a/subscriptions/{a_sub}/change"),
        json!({"plan": "professional"}),
    )
    .await;
    ws.advance(&p_clock, "2026-11-10T00:00:00Z").await;
    let mut events = Vec::new();
    for (tier, model, n) in [
        ("T0", "standard", 10),
        ("T2", "standard", 4),
        ("T3", "gpt-4", 2),
    ] {
        for _ in 0..n {
            let i = events.len();
            events.push(json!({"id": format!("g{i}"), "customer": "p", "type": "codegen.completed", "properties": {"tier": tier, "model": model}}));
        }
    }
    let (status, report) = ws.events(Value::Array(events)).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    ws.advance(&p_clock, "2026-12-01T00:00:00Z").await;
    ws.post("/v1/bill_runs", json!({})).await;

    let (status, retention) = ws
        .call(
            Method::GET,
            "/v1/analytics/retention?from=2026-10&to=2026-11",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{retention}");
    assert_eq!(
        retention["months"],
        json!([
            {"month": "2026-10", "customers_start": 0, "churned_customers": 0,
             "logo_churn_percent": null, "start_minor": 0, "lost_minor": 0,
             "revenue_churn_percent": null, "retained_minor": 0,
             "net_revenue_retention_percent": null},
            {"month": "2026-11", "customers_start": 3, "churned_customers": 1,
             "logo_churn_percent": "33.33", "start_minor": 69_700, "lost_minor": 9_900,
             "revenue_churn_percent": "14.20", "retained_minor": 99_800,
             "net_revenue_retention_percent": "143.19"}
        ])
    );

    let (status, revenue) = ws
        .call(
            Method::GET,
            "/v1/analytics/revenue?from=2026-10&to=2026-12",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{revenue}");
    let months = revenue["months"].as_array().unwrap();
    assert_eq!(months.len(), 3, "{revenue}");
    assert_eq!(months[0]["month"], "2026-10");
    assert_eq!(months[0]["total_minor"], 69_700, "{revenue}");
    assert_eq!(
        months[0]["by_plan"],
        json!({"professional": 49_900, "starter": 19_800})
    );
    assert_eq!(months[0]["by_meter"]["generations"], 0);
    assert_eq!(months[1]["total_minor"], 60_500, "{revenue}");
    assert_eq!(
        months[1]["by_plan"],
        json!({"payg": 700, "professional": 49_900, "starter": 9_900})
    );
    assert_eq!(months[1]["by_meter"]["generations"], 700);
    assert_eq!(months[1]["by_meter"]["api_calls"], 0);
    assert_eq!(months[2]["total_minor"], 0);

    // CSV, by parameter.
    let (_, csv) = ws
        .call(
            Method::GET,
            "/v1/analytics/retention?from=2026-10&to=2026-11&format=csv",
            None,
        )
        .await;
    let csv = csv.as_str().unwrap().to_owned();
    assert!(
        csv.ends_with("\nUSD,2026-11,3,1,33.33,69700,9900,14.20,99800,143.19\n"),
        "{csv}"
    );
    assert!(csv.contains("\nUSD,2026-10,0,0,,0,0,,0,\n"), "{csv}");
    let (_, revenue_csv) = ws
        .call(
            Method::GET,
            "/v1/analytics/revenue?from=2026-10&to=2026-12&format=csv",
            None,
        )
        .await;
    let revenue_csv = revenue_csv.as_str().unwrap().to_owned();
    for line in [
        "USD,2026-11,total,,60500",
        "USD,2026-11,plan,payg,700",
        "USD,2026-11,meter,generations,700",
        "USD,2026-10,plan,starter,19800",
    ] {
        assert!(
            revenue_csv.contains(&format!("\n{line}\n")),
            "{line} not in {revenue_csv}"
        );
    }

    // The page shows the same.
    user(&ws, "ops@example.com", "read_only").await;
    let mut browser = Browser::new(&server);
    browser
        .sign_in(&ws.id, "ops@example.com", "correct horse battery")
        .await;
    let (status, page, _) = browser.get("/admin/revenue?from=2026-10&to=2026-12").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let row = |marker: &str| {
        page.split(marker)
            .nth(1)
            .unwrap_or_else(|| panic!("no {marker} in {page}"))
            .split("</tr>")
            .next()
            .unwrap()
            .to_owned()
    };
    let nov = row("<tr data-month=\"2026-11\">");
    for needle in ["33.33 %", "14.20 %", "143.19 %", "697.00 USD", "99.00 USD"] {
        assert!(nov.contains(needle), "{needle} not in {nov}");
    }
    let nov = row("<tr data-plan-month=\"2026-11\">");
    for needle in ["7.00 USD", "499.00 USD", "99.00 USD", "605.00 USD"] {
        assert!(nov.contains(needle), "{needle} not in {nov}");
    }
    let (_, page_csv, _) = browser
        .get("/admin/revenue.csv?from=2026-10&to=2026-12")
        .await;
    assert_eq!(page_csv, revenue_csv);
    let (_, page_csv, _) = browser
        .get("/admin/retention.csv?from=2026-10&to=2026-11")
        .await;
    assert_eq!(page_csv, csv);
}
backend_tests!(retention_and_revenue_by_hand);

/// Price simulation, by hand on QLP. October, each on its own clock: `s1` on starter uses 120
/// T1 generations (100 included: 20 x 0.25 = 5.00, with the base 99.00: 104.00); `s2` on
/// professional uses nothing (499.00); `p1` on payg runs case 1 (7.00); `fresh` starts in
/// November (no closed period: left out). The draft raises starter to 109.00, T1 to 0.30 and T0
/// to 0.12: `s1` 109 + 20 x 0.30 = 115.00 (+11.00), `s2` +0, `p1` 10 x 0.12 + 2 + 4 = 7.20
/// (+0.20); in total 610.00 -> 621.20, +11.20. Nothing is applied.
async fn price_simulation_by_hand(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = server.workspace("qlp.yaml").await;
    let (s1, _) = subscriber(&ws, "s1", "starter", "2026-10-01T00:00:00Z").await;
    let (s2, _) = subscriber(&ws, "s2", "professional", "2026-10-01T00:00:00Z").await;
    let (p1, _) = subscriber(&ws, "p1", "payg", "2026-10-01T00:00:00Z").await;
    subscriber(&ws, "fresh", "starter", "2026-11-15T00:00:00Z").await;
    ws.advance(&s1, "2026-10-10T00:00:00Z").await;
    ws.advance(&p1, "2026-10-10T00:00:00Z").await;
    let mut events = Vec::new();
    let mut push = |customer: &str, tier: &str, model: &str, n: usize| {
        for _ in 0..n {
            let i = events.len();
            events.push(json!({"id": format!("e{i}"), "customer": customer, "type": "codegen.completed", "properties": {"tier": tier, "model": model}}));
        }
    };
    push("s1", "T1", "standard", 120);
    push("p1", "T0", "standard", 10);
    push("p1", "T2", "standard", 4);
    push("p1", "T3", "gpt-4", 2);
    let (status, report) = ws.events(Value::Array(events)).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    for clock in [&s1, &s2, &p1] {
        ws.advance(clock, "2026-11-01T00:00:00Z").await;
    }
    ws.post("/v1/bill_runs", json!({})).await;

    let yaml = std::fs::read_to_string(format!(
        "{}/../../examples/catalogs/qlp.yaml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let draft = yaml
        .replace(
            "base: { amount: \"99.00\", interval: month }",
            "base: { amount: \"109.00\", interval: month }",
        )
        .replace("T1: \"0.25\"", "T1: \"0.30\"")
        .replace("T0: \"0.10\"", "T0: \"0.12\"");
    assert_ne!(draft, yaml);
    let (status, body) = ws
        .call(
            Method::POST,
            "/v1/analytics/simulations",
            Some(json!({"yaml": draft})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["currency"], "USD");
    let row = |customer: &str| {
        body["subscriptions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["customer"] == customer)
            .unwrap_or_else(|| panic!("no {customer} in {body}"))
            .clone()
    };
    let figures = |r: &Value| {
        (
            r["current_minor"].as_i64().unwrap(),
            r["draft_minor"].as_i64().unwrap(),
            r["difference_minor"].as_i64().unwrap(),
        )
    };
    assert_eq!(figures(&row("s1")), (10_400, 11_500, 1_100));
    assert_eq!(row("s1")["period_start"], "2026-10-01T00:00:00Z");
    assert_eq!(row("s1")["period_end"], "2026-11-01T00:00:00Z");
    assert_eq!(figures(&row("s2")), (49_900, 49_900, 0));
    assert_eq!(figures(&row("p1")), (700, 720, 20));
    assert_eq!(
        body["plans"],
        json!([
            {"plan": "payg", "subscriptions": 1, "current_minor": 700, "draft_minor": 720, "difference_minor": 20},
            {"plan": "professional", "subscriptions": 1, "current_minor": 49_900, "draft_minor": 49_900, "difference_minor": 0},
            {"plan": "starter", "subscriptions": 1, "current_minor": 10_400, "draft_minor": 11_500, "difference_minor": 1_100}
        ])
    );
    assert_eq!(
        body["total"],
        json!({"plan": "total", "subscriptions": 3, "current_minor": 61_000, "draft_minor": 62_120, "difference_minor": 1_120})
    );
    assert_eq!(body["skipped"][0]["customer"], "fresh", "{body}");
    assert_eq!(body["skipped"][0]["reason"], "no closed period yet");
    // Nothing was applied.
    let (_, current) = ws.call(Method::GET, "/v1/catalog", None).await;
    assert_eq!(current["version"], 1);
    assert_eq!(
        current["catalog"]["plans"]["starter"]["base"]["amount"],
        "99.00"
    );

    // The same catalog changes nothing; a bad draft or another currency is refused.
    let (_, same) = ws
        .call(
            Method::POST,
            "/v1/analytics/simulations",
            Some(json!({"yaml": yaml})),
        )
        .await;
    assert_eq!(same["total"]["difference_minor"], 0, "{same}");
    for bad in [
        yaml.replace("currency: USD", "currency: EUR"),
        yaml.replace("aggregation: count", "aggregation: total"),
    ] {
        let (status, problem) = ws
            .call(
                Method::POST,
                "/v1/analytics/simulations",
                Some(json!({"yaml": bad})),
            )
            .await;
        assert_eq!(
            (status, problem["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_catalog")),
            "{problem}"
        );
    }

    // The page: the current catalog in the form, the draft simulated under it.
    user(&ws, "ops@example.com", "read_only").await;
    let mut browser = Browser::new(&server);
    browser
        .sign_in(&ws.id, "ops@example.com", "correct horse battery")
        .await;
    let (status, form, _) = browser.get("/admin/simulation").await;
    assert_eq!(status, StatusCode::OK, "{form}");
    assert!(
        form.contains("professional:") && form.contains("99.00"),
        "{form}"
    );
    let csrf = csrf_of(&form);
    let (status, page, _) = browser
        .post("/admin/simulation", &[("csrf", &csrf), ("yaml", &draft)])
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let page = page.replace("&#x2f;", "/");
    let total = page
        .split("<tr data-plan=\"total\">")
        .nth(1)
        .unwrap_or_else(|| panic!("{page}"))
        .split("</tr>")
        .next()
        .unwrap();
    for needle in ["610.00 USD", "621.20 USD", "+11.20 USD"] {
        assert!(total.contains(needle), "{needle} not in {total}");
    }
    let (status, _, _) = browser
        .post("/admin/simulation", &[("csrf", "forged"), ("yaml", &draft)])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, page, _) = browser
        .post(
            "/admin/simulation",
            &[("csrf", &csrf), ("yaml", "currency: [")],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("role=\"alert\""), "{page}");
}
backend_tests!(price_simulation_by_hand);

/// The operations pages: the catalog (version, changes from the previous one, plans side by
/// side), events with filters, webhook deliveries, emails, test clocks, and the subscription
/// timeline on the customer page.
async fn operations_pages(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = server.workspace("qlp.yaml").await;
    let (status, endpoint) = ws
        .call(
            Method::POST,
            "/v1/webhook_endpoints",
            Some(json!({"url": "https://hooks.example.com/tollgate", "event_types": ["subscription.created", "subscription.updated"]})),
        )
        .await;
    assert!(status.is_success(), "{endpoint}");
    let (clock, sub) = subscriber(&ws, "acme", "starter", "2026-11-02T00:00:00Z").await;
    ws.advance(&clock, "2026-11-10T00:00:00Z").await;
    ws.post(
        &format!("/v1/customers/acme/subscriptions/{sub}/change"),
        json!({"plan": "professional"}),
    )
    .await;
    let (status, report) = ws
        .events(json!([
            {"id": "ev-1", "customer": "acme", "type": "api.call"},
            {"id": "ev-2", "customer": "acme", "type": "codegen.completed", "properties": {"tier": "T0", "model": "standard"}},
        ]))
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let yaml = std::fs::read_to_string(format!(
        "{}/../../examples/catalogs/qlp.yaml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
    .replace(
        "base: { amount: \"99.00\", interval: month }",
        "base: { amount: \"109.00\", interval: month }",
    );
    let (status, applied) = ws
        .call(Method::PUT, "/v1/catalog", Some(json!({"yaml": yaml})))
        .await;
    assert_eq!(status, StatusCode::OK, "{applied}");

    user(&ws, "ops@example.com", "read_only").await;
    let mut browser = Browser::new(&server);
    browser
        .sign_in(&ws.id, "ops@example.com", "correct horse battery")
        .await;

    let (status, page, _) = browser.get("/admin/catalog").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    for needle in [
        "data-figure=\"version\">2<",
        "Changes from version 1",
        "~ plans.starter.base.amount: 99.00 -&gt; 109.00",
        "data-plan=\"enterprise\"",
        "109.00 USD / month",
        "2499.00 USD / month",
        "none (pay per use)",
        "14 days",
        "codegen.completed",
    ] {
        assert!(page.contains(needle), "{needle} not in {page}");
    }

    // Events: by customer and time (they are on the customer's clock, not in the last 24 hours).
    let (status, page, _) = browser.get("/admin/events").await;
    assert_eq!(status, StatusCode::OK);
    assert!(!page.contains("data-event=\"ev-1\""), "{page}");
    let (_, page, _) = browser
        .get("/admin/events?customer=acme&from=2026-11-01T00:00:00Z")
        .await;
    assert!(
        page.contains("data-event=\"ev-1\"") && page.contains("data-event=\"ev-2\""),
        "{page}"
    );
    assert!(page.contains("tier: T0"), "{page}");
    let (_, page, _) = browser
        .get("/admin/events?customer=acme&type=api.call&from=2026-11-01T00:00:00Z")
        .await;
    assert!(
        page.contains("data-event=\"ev-1\"") && !page.contains("data-event=\"ev-2\""),
        "{page}"
    );
    let (status, _, _) = browser.get("/admin/events?from=yesterday").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Webhooks: the endpoint and its deliveries (subscription.created, .updated), fanned out
    // by one pass of the worker (the host does not answer: the attempts fail and wait).
    let cfg = tollgate_server::notify::NotifyConfig {
        request_timeout: std::time::Duration::from_millis(300),
        ..tollgate_server::notify::NotifyConfig::default()
    };
    let engine = &server.server.as_ref().unwrap().state.engine;
    tollgate_server::notify::run_workspace(engine, &cfg, &ws.id)
        .await
        .unwrap();
    let (status, page, _) = browser.get("/admin/webhooks").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(
        page.contains("https://hooks.example.com/tollgate"),
        "{page}"
    );
    assert!(
        page.contains(">subscription.created<") && page.contains(">subscription.updated<"),
        "{page}"
    );

    // Emails: none sent in this workspace; a bad status filter is refused.
    let (status, page, _) = browser.get("/admin/emails").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("No email."), "{page}");
    let (status, _, _) = browser.get("/admin/emails?status=lost").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Test clocks: the clock, its time and its customer.
    let (status, page, _) = browser.get("/admin/test_clocks").await;
    assert_eq!(status, StatusCode::OK);
    let row = page
        .split(&format!("<tr data-clock=\"{clock}\">"))
        .nth(1)
        .unwrap_or_else(|| panic!("{page}"))
        .split("</tr>")
        .next()
        .unwrap();
    assert!(
        row.contains("2026-11-10 00:00:00 UTC") && row.contains(">acme<"),
        "{row}"
    );

    // The customer's subscription timeline: created on starter, then updated to professional.
    let (_, page, _) = browser.get("/admin/customers/acme").await;
    let created = page.find("data-timeline=\"created\"").expect("created");
    let updated = page.find("data-timeline=\"updated\"").expect("updated");
    assert!(created < updated, "{page}");
    assert!(page[created..updated].contains(">starter<"), "{page}");
    assert!(page[updated..].contains(">professional<"), "{page}");
    assert!(page.contains("2026-11-10 00:00 UTC"), "{page}");
}
backend_tests!(operations_pages);

/// The vendored scripts are served from the binary (no CDN), scripts run only from this
/// server (CSP), and the analytics page hands uPlot the same figures as its table.
async fn scripts_are_embedded(backend: Backend) {
    let server = TestServer::start(backend).await;
    for (path, kind, needle) in [
        ("/assets/uplot.js", "text/javascript", "uPlot"),
        ("/assets/uplot.css", "text/css", ".uplot"),
        ("/assets/htmx.js", "text/javascript", "htmx"),
        ("/assets/charts.js", "text/javascript", "data-uplot"),
    ] {
        let response = server
            .http
            .get(format!("{}{path}", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(kind),
            "{path}"
        );
        assert!(response.text().await.unwrap().contains(needle), "{path}");
    }
    let ws = server.workspace("qlp.yaml").await;
    subscriber(&ws, "b", "professional", "2026-09-10T00:00:00Z").await;
    user(&ws, "ops@example.com", "read_only").await;
    let mut browser = Browser::new(&server);
    browser
        .sign_in(&ws.id, "ops@example.com", "correct horse battery")
        .await;
    let (status, page, headers) = browser
        .get("/admin/analytics?from=2026-09&to=2026-10")
        .await;
    assert_eq!(status, StatusCode::OK);
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(!page.contains("<script>"), "no inline script: {page}");
    assert!(
        page.contains("data-months=\"[&quot;2026-09&quot;,&quot;2026-10&quot;]\"")
            && page.contains("data-values=\"[49900,49900]\""),
        "{page}"
    );
    // Without scripts the server's SVG is the chart.
    assert!(
        page.contains("<div id=\"mrr-svg\"><svg class=\"chart\""),
        "{page}"
    );
}
backend_tests!(scripts_are_embedded);

const TWO_CURRENCIES: &str = r#"
currency: USD
plans:
  pro:
    base: { amount: 100, interval: month }
    currencies:
      EUR: { base: 92 }
"#;

/// A customer billed in EUR counts in an MRR of its own, on the API and the analytics page,
/// never added to the USD figures.
async fn mrr_per_currency_on_the_analytics_page(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = server
        .workspace_with("mrr_currencies", TWO_CURRENCIES)
        .await;
    subscriber(&ws, "us", "pro", "2026-11-01T00:00:00Z").await;
    let clock = ws.test_clock("2026-11-01T00:00:00Z").await;
    ws.post("/v1/customers", json!({"id": "eu", "test_clock": clock}))
        .await;
    let (status, body) = ws
        .call(
            Method::PUT,
            "/v1/customers/eu/billing_profile",
            Some(json!({"currency": "EUR"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    ws.post(
        "/v1/customers/eu/subscriptions",
        json!({"plan": "pro", "trial": false}),
    )
    .await;
    let report = mrr(&ws, "2026-11", "2026-11").await;
    assert_eq!(report["months"][0]["end_minor"], 10_000, "{report:#}");
    assert_eq!(report["currencies"][1]["currency"], "EUR", "{report:#}");
    assert_eq!(report["currencies"][1]["months"][0]["end_minor"], 9_200);

    user(&ws, "ops@example.com", "read_only").await;
    let mut browser = Browser::new(&server);
    browser
        .sign_in(&ws.id, "ops@example.com", "correct horse battery")
        .await;
    let (status, page, _) = browser
        .get("/admin/analytics?from=2026-11&to=2026-11")
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let (usd, eur) = page
        .split_once("<table class=\"wide\" data-currency=\"EUR\">")
        .unwrap_or_else(|| panic!("no EUR table in {page}"));
    assert!(
        usd.contains("100.00 USD") && !usd.contains("192.00"),
        "{usd}"
    );
    assert!(eur.contains("92.00 EUR"), "{eur}");
}
backend_tests!(mrr_per_currency_on_the_analytics_page);

/// The `hx-get` of the events page's live tail (the poller row), as a path.
fn tail_of(html: &str) -> String {
    let row = html
        .split("<tr id=\"events-tail\"")
        .nth(1)
        .unwrap_or_else(|| panic!("no live tail in {html}"));
    assert!(
        row.split('>')
            .next()
            .unwrap()
            .contains("hx-trigger=\"every 2s\""),
        "{row}"
    );
    let at = row.find("hx-get=\"").unwrap() + 8;
    row[at..].split('"').next().unwrap().replace("&amp;", "&")
}

fn event_ids(html: &str) -> Vec<String> {
    html.split("data-event=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap().to_owned())
        .collect()
}

/// The events page's live tail: the poller carries the page's filters and its newest row as a
/// cursor, the fragment brings only newer matching events (at most 50 a poll) and the next
/// poller; without scripts the page has a refresh link.
async fn live_tail_of_events(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = server.workspace("qlp.yaml").await;
    ws.customer("tail", "starter", None, false).await;
    ws.customer("other", "starter", None, false).await;
    let (status, report) = ws
        .events(json!([{"id": "ev-a1", "customer": "tail", "type": "api.call"}]))
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    user(&ws, "viewer@example.com", "read_only").await;
    let mut browser = Browser::new(&server);

    // Signed out, the fragment is no one's.
    let (status, _, headers) = browser.get("/admin/events/tail?customer=tail").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers["location"], "/admin/login");

    browser
        .sign_in(&ws.id, "viewer@example.com", "correct horse battery")
        .await;
    let (status, page, _) = browser
        .get("/admin/events?customer=tail&type=api.call")
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(event_ids(&page), ["ev-a1"]);
    let tail = tail_of(&page);
    assert!(
        tail.starts_with("/admin/events/tail?after=ev-a1&customer=tail&type=api.call&from="),
        "{tail}"
    );
    assert!(
        page.contains("href=\"/admin/events?customer=tail&amp;type=api.call&amp;from="),
        "a refresh link: {page}"
    );

    // Newer events: only those of the page's filters come, after its newest row.
    let (status, report) = ws
        .events(json!([
            {"id": "ev-a2", "customer": "tail", "type": "api.call"},
            {"id": "ev-b1", "customer": "other", "type": "api.call"},
            {"id": "ev-a3", "customer": "tail", "type": "codegen.completed", "properties": {"tier": "T0", "model": "standard"}},
        ]))
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let (status, fragment, headers) = browser.get(&tail).await;
    assert_eq!(status, StatusCode::OK, "{fragment}");
    assert_eq!(headers["cache-control"], "no-store");
    assert!(!fragment.contains("<html"), "a fragment: {fragment}");
    assert_eq!(event_ids(&fragment), ["ev-a2"]);
    let next = tail_of(&fragment);
    assert!(
        next.starts_with("/admin/events/tail?after=ev-a2&customer=tail&type=api.call"),
        "{next}"
    );
    // Nothing newer: no row, the same cursor.
    let (_, fragment, _) = browser.get(&next).await;
    assert!(event_ids(&fragment).is_empty(), "{fragment}");
    assert_eq!(tail_of(&fragment), next);

    // Bounded: 60 new events come 50, then 10.
    let burst: Vec<Value> = (0..60)
        .map(|i| json!({"id": format!("ev-c{i:02}"), "customer": "tail", "type": "api.call"}))
        .collect();
    let (status, report) = ws.events(Value::Array(burst)).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let (_, fragment, _) = browser.get(&next).await;
    let first = event_ids(&fragment);
    assert_eq!(first.len(), 50, "{fragment}");
    let (_, fragment, _) = browser.get(&tail_of(&fragment)).await;
    let second = event_ids(&fragment);
    assert_eq!(second.len(), 10, "{fragment}");
    let mut all: Vec<String> = first.into_iter().chain(second).collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 60, "no event twice, none lost");

    // A cursor that names no event is refused, not read from the start.
    let (status, _, _) = browser.get("/admin/events/tail?after=ev-none").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // A page that is not the last has no tail (its end is the next page's): 103 events of
    // `tail` make a page of 100 and one of 3.
    let more: Vec<Value> = (0..40)
        .map(|i| json!({"id": format!("ev-d{i:02}"), "customer": "tail", "type": "api.call"}))
        .collect();
    let (status, report) = ws.events(Value::Array(more)).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let (_, page, _) = browser.get("/admin/events?customer=tail").await;
    assert_eq!(event_ids(&page).len(), 100);
    assert!(
        page.contains("Next page") && !page.contains("events-tail"),
        "{page}"
    );
    let next_page = page
        .split("<a href=\"")
        .find(|s| s.starts_with("/admin/events?starting_after="))
        .unwrap();
    let next_page = next_page.split('"').next().unwrap().replace("&amp;", "&");
    let (_, page, _) = browser.get(&next_page).await;
    assert_eq!(event_ids(&page).len(), 3, "{page}");
    assert!(tail_of(&page).contains("after="), "{page}");
}
backend_tests!(live_tail_of_events);

/// The field `name`'s `value="..."` on a page.
fn value_of_field(html: &str, id: &str) -> String {
    let input = html
        .split(&format!("id=\"{id}\""))
        .nth(1)
        .unwrap_or_else(|| panic!("no {id} in {html}"));
    let input = input.split('>').next().unwrap();
    let at = input.find("value=\"").unwrap() + 7;
    input[at..].split('"').next().unwrap().to_owned()
}

/// Credit notes from the invoice page: the billing role's form calls the API's use case; a
/// refusal comes back with its message and the form as typed; read-only sees no form and is
/// refused a post.
async fn credit_notes_from_the_dashboard(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = server.workspace("qlp.yaml").await;
    subscriber(&ws, "acme", "starter", "2026-11-02T00:00:00Z").await;
    ws.post("/v1/bill_runs", json!({})).await;
    let (_, list) = ws
        .call(Method::GET, "/v1/customers/acme/invoices", None)
        .await;
    let id = list["data"][0]["id"].as_str().unwrap().to_owned();
    let path = format!("/admin/invoices/{id}");
    let post_path = format!("/admin/invoices/{id}/credit_notes");
    user(&ws, "viewer@example.com", "read_only").await;
    user(&ws, "billing@example.com", "billing").await;

    let mut viewer = Browser::new(&server);
    viewer
        .sign_in(&ws.id, "viewer@example.com", "correct horse battery")
        .await;
    let (_, page, _) = viewer.get(&path).await;
    assert!(!page.contains("Issue a credit note"), "{page}");
    let csrf = csrf_of(&page);
    let (status, _, _) = viewer
        .post(
            &post_path,
            &[("csrf", &csrf), ("amount", "1.00"), ("method", "credit")],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let mut billing = Browser::new(&server);
    billing
        .sign_in(&ws.id, "billing@example.com", "correct horse battery")
        .await;
    let (_, page, _) = billing.get(&path).await;
    assert!(page.contains("Issue a credit note"), "{page}");
    let csrf = csrf_of(&page);
    // Without the session's token: refused.
    let (status, _, _) = billing
        .post(&post_path, &[("amount", "1.00"), ("method", "credit")])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Refusals: the page again, its message, nothing typed lost.
    for (amount, method, status, message) in [
        (
            "200.00",
            "credit",
            StatusCode::CONFLICT,
            "exceed the invoice total",
        ),
        ("ten", "credit", StatusCode::BAD_REQUEST, "is not a number"),
        ("-1", "credit", StatusCode::BAD_REQUEST, "must be positive"),
        (
            "5.00",
            "refund",
            StatusCode::CONFLICT,
            "only a paid invoice can be refunded",
        ),
        (
            "5.00",
            "",
            StatusCode::BAD_REQUEST,
            "choose a refund or a credit",
        ),
    ] {
        let (got, page, _) = billing
            .post(
                &post_path,
                &[
                    ("csrf", &csrf),
                    ("amount", amount),
                    ("reason", "Outage <b>"),
                    ("method", method),
                ],
            )
            .await;
        assert_eq!(got, status, "{amount} {method}: {page}");
        assert!(
            page.contains("role=\"alert\"") && page.contains(message),
            "{message}: {page}"
        );
        assert_eq!(value_of_field(&page, "cn-amount"), amount);
        assert_eq!(value_of_field(&page, "cn-reason"), "Outage &lt;b&gt;");
        if !method.is_empty() {
            assert!(
                page.contains(&format!("value=\"{method}\" checked")),
                "{method}: {page}"
            );
        }
    }
    let (_, invoice) = ws
        .call(Method::GET, &format!("/v1/invoices/{id}"), None)
        .await;
    assert_eq!(invoice["credited"], "0.00", "nothing issued: {invoice}");

    // A credit of 10.00: redirect (post/redirect/get), the note on the page, the API agrees.
    let (status, _, location) = billing
        .post(
            &post_path,
            &[
                ("csrf", &csrf),
                ("amount", "10.00"),
                ("reason", "Goodwill"),
                ("method", "credit"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(
        location.starts_with(&format!("{path}?credit_note=cn_")),
        "{location}"
    );
    let note = location.rsplit('=').next().unwrap().to_owned();
    let (_, invoice) = ws
        .call(Method::GET, &format!("/v1/invoices/{id}"), None)
        .await;
    assert_eq!(
        (invoice["credited"].as_str(), invoice["amount_due"].as_str()),
        (Some("10.00"), Some("85.70")),
        "{invoice}"
    );
    let (status, page, _) = billing.get(&location).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("id=\"credit-note-issued\""), "{page}");
    assert!(page.contains("10.00 USD (credit)"), "{page}");
    let row = page
        .split(&format!("data-credit-note=\"{note}\""))
        .nth(1)
        .unwrap_or_else(|| panic!("{page}"))
        .split("</tr>")
        .next()
        .unwrap();
    assert!(
        row.contains(">Goodwill<") && row.contains(">credit<"),
        "{row}"
    );
    // The rest, left empty: everything still creditable; then nothing is.
    let (status, _, _) = billing
        .post(
            &post_path,
            &[("csrf", &csrf), ("amount", ""), ("method", "credit")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, invoice) = ws
        .call(Method::GET, &format!("/v1/invoices/{id}"), None)
        .await;
    assert_eq!(
        (invoice["status"].as_str(), invoice["credited"].as_str()),
        (Some("paid"), Some("95.70")),
        "{invoice}"
    );
}
backend_tests!(credit_notes_from_the_dashboard);

/// Operators from the dashboard: admins list, add, re-role and remove them; the workspace never
/// loses its last admin; other roles see no such page and are refused its forms.
async fn operator_management(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = server.workspace("qlp.yaml").await;
    user(&ws, "admin@example.com", "admin").await;
    let viewer = user(&ws, "viewer@example.com", "read_only").await;
    user(&ws, "billing@example.com", "billing").await;
    let viewer_id = viewer["id"].as_str().unwrap();

    for email in ["viewer@example.com", "billing@example.com"] {
        let mut other = Browser::new(&server);
        other.sign_in(&ws.id, email, "correct horse battery").await;
        let (status, page, _) = other.get("/admin").await;
        assert_eq!(status, StatusCode::OK);
        assert!(!page.contains("/admin/users"), "{email}: {page}");
        let csrf = csrf_of(&page);
        let (status, _, _) = other.get("/admin/users").await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{email}");
        let (status, _, _) = other
            .post(
                "/admin/users",
                &[
                    ("csrf", &csrf),
                    ("email", "sneaky@example.com"),
                    ("role", "admin"),
                    ("password", "correct horse battery"),
                ],
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{email}");
        let (status, _, _) = other
            .post(
                &format!("/admin/users/{viewer_id}/role"),
                &[("csrf", &csrf), ("role", "admin")],
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{email}");
        let (status, _, _) = other
            .post(
                &format!("/admin/users/{viewer_id}/remove"),
                &[("csrf", &csrf)],
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{email}");
    }
    let (_, list) = ws.call(Method::GET, "/v1/users", None).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 3, "{list}");

    let mut admin = Browser::new(&server);
    admin
        .sign_in(&ws.id, "admin@example.com", "correct horse battery")
        .await;
    let (status, page, _) = admin.get("/admin/users").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    for email in [
        "admin@example.com",
        "viewer@example.com",
        "billing@example.com",
    ] {
        assert!(
            page.contains(&format!("data-user=\"{email}\"")),
            "{email}: {page}"
        );
    }
    assert!(
        page.contains("href=\"/admin/users\" aria-current=\"page\""),
        "{page}"
    );
    let csrf = csrf_of(&page);
    let (_, list) = ws.call(Method::GET, "/v1/users", None).await;
    let id_of = |email: &str| {
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["email"] == email)
            .map(|u| u["id"].as_str().unwrap().to_owned())
            .unwrap()
    };
    let admin_id = id_of("admin@example.com");
    let billing_id = id_of("billing@example.com");

    // Adding: refusals keep the email and role typed.
    for (email, password, status, message) in [
        (
            "not an email",
            "correct horse battery",
            StatusCode::BAD_REQUEST,
            "is not an email address",
        ),
        (
            "new@example.com",
            "short",
            StatusCode::BAD_REQUEST,
            "at least 12 characters",
        ),
        (
            "Viewer@Example.com",
            "correct horse battery",
            StatusCode::CONFLICT,
            "already",
        ),
    ] {
        let (got, page, _) = admin
            .post(
                "/admin/users",
                &[
                    ("csrf", &csrf),
                    ("email", email),
                    ("role", "billing"),
                    ("password", password),
                ],
            )
            .await;
        assert_eq!(got, status, "{email}: {page}");
        assert!(
            page.contains("role=\"alert\"") && page.contains(message),
            "{message}: {page}"
        );
        assert_eq!(value_of_field(&page, "new-email"), email);
        assert!(
            page.contains("<option value=\"billing\" selected>"),
            "{page}"
        );
        assert!(
            !page.contains(password) || password == "short",
            "a password is never echoed"
        );
    }
    let (status, _, location) = admin
        .post(
            "/admin/users",
            &[
                ("csrf", &csrf),
                ("email", "New@Example.com"),
                ("role", "billing"),
                ("password", "another long phrase"),
            ],
        )
        .await;
    assert_eq!(
        (status, location.as_str()),
        (StatusCode::SEE_OTHER, "/admin/users?done=added")
    );
    let mut newcomer = Browser::new(&server);
    let (status, location) = newcomer
        .sign_in(&ws.id, "new@example.com", "another long phrase")
        .await;
    assert_eq!(
        (status, location.as_str()),
        (StatusCode::SEE_OTHER, "/admin")
    );
    let (_, page, _) = newcomer.get("/admin").await;
    assert!(page.contains("new@example.com (billing)"), "{page}");

    // Roles: the viewer becomes billing; the last admin cannot demote itself nor be removed.
    let (status, _, location) = admin
        .post(
            &format!("/admin/users/{viewer_id}/role"),
            &[("csrf", &csrf), ("role", "billing")],
        )
        .await;
    assert_eq!(
        (status, location.as_str()),
        (StatusCode::SEE_OTHER, "/admin/users?done=role")
    );
    let (status, page, _) = admin
        .post(
            &format!("/admin/users/{viewer_id}/role"),
            &[("csrf", &csrf), ("role", "owner")],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
    let (status, page, _) = admin
        .post(
            &format!("/admin/users/{admin_id}/role"),
            &[("csrf", &csrf), ("role", "read_only")],
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{page}");
    assert!(
        page.contains("last admin") && page.contains("role=\"alert\""),
        "{page}"
    );
    let (status, page, _) = admin
        .post(
            &format!("/admin/users/{admin_id}/remove"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{page}");
    let (status, _, _) = admin
        .post("/admin/users/usr_nobody/remove", &[("csrf", &csrf)])
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, list) = ws.call(Method::GET, "/v1/users", None).await;
    let role_of = |email: &str| {
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["email"] == email)
            .map(|u| u["role"].as_str().unwrap().to_owned())
    };
    assert_eq!(role_of("viewer@example.com").as_deref(), Some("billing"));
    assert_eq!(role_of("admin@example.com").as_deref(), Some("admin"));

    // Removing signs the operator out at once.
    let new_id = {
        let (_, list) = ws.call(Method::GET, "/v1/users", None).await;
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["email"] == "new@example.com")
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (status, _, location) = admin
        .post(&format!("/admin/users/{new_id}/remove"), &[("csrf", &csrf)])
        .await;
    assert_eq!(
        (status, location.as_str()),
        (StatusCode::SEE_OTHER, "/admin/users?done=removed")
    );
    let (status, _, headers) = newcomer.get("/admin").await;
    assert_eq!(
        (status, &headers["location"]),
        (
            StatusCode::SEE_OTHER,
            &"/admin/login"
                .parse::<reqwest::header::HeaderValue>()
                .unwrap()
        )
    );

    // With a second admin, the first may step down, and then no longer manages operators.
    let (status, _, _) = admin
        .post(
            &format!("/admin/users/{billing_id}/role"),
            &[("csrf", &csrf), ("role", "admin")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _, location) = admin
        .post(
            &format!("/admin/users/{admin_id}/role"),
            &[("csrf", &csrf), ("role", "read_only")],
        )
        .await;
    assert_eq!(
        (status, location.as_str()),
        (StatusCode::SEE_OTHER, "/admin")
    );
    let (status, _, _) = admin.get("/admin/users").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}
backend_tests!(operator_management);
