//! Lists page with cursors (`limit`, `starting_after`, `{data, has_more}`), events are queried
//! with filters and exported (CSV, NDJSON, streamed across store pages), usage is exported.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

mod common;

use common::{TestServer, Workspace, backend_tests};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Every item of a list, following `starting_after` with pages of `limit`; also how many pages.
async fn walk(ws: &Workspace<'_>, key: &str, path: &str, limit: usize) -> (Vec<Value>, usize) {
    let mut items = Vec::new();
    let mut pages = 0;
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut url = format!("{path}{sep}limit={limit}");
    loop {
        let (status, page) = ws.server.call(key, Method::GET, &url, None).await;
        assert_eq!(status, StatusCode::OK, "{url}: {page}");
        pages += 1;
        let data = page["data"].as_array().unwrap().clone();
        assert!(data.len() <= limit, "{page}");
        let more = page["has_more"].as_bool().unwrap();
        let last = data.last().map(|i| i["id"].as_str().unwrap().to_owned());
        items.extend(data);
        match (more, last) {
            (true, Some(last)) => url = format!("{path}{sep}limit={limit}&starting_after={last}"),
            (false, _) => return (items, pages),
            (true, None) => panic!("has_more on an empty page: {page}"),
        }
    }
}

fn ids(items: &[Value]) -> Vec<&str> {
    items.iter().map(|i| i["id"].as_str().unwrap()).collect()
}

backend_tests! {
    async fn every_list_pages_with_a_cursor(backend: Backend) {
        let server = TestServer::start(backend).await;
        let ws = server.workspace("apex.yaml").await;
        let names: Vec<String> = (0..7).map(|i| format!("c{i}")).collect();
        for name in &names {
            ws.post("/v1/customers", json!({"id": name})).await;
        }
        let (all, pages) = walk(&ws, &ws.key, "/v1/customers", 3).await;
        assert_eq!(ids(&all), names, "creation order, each once");
        assert_eq!(pages, 3);
        // The default page is 20; a page exactly full says whether more follow.
        let (status, page) = ws.call(Method::GET, "/v1/customers", None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(page["data"].as_array().unwrap().len(), 7);
        assert_eq!(page["has_more"], false);
        let (_, page) = ws.call(Method::GET, "/v1/customers?limit=7", None).await;
        assert_eq!(page["has_more"], false, "{page}");
        let (_, page) = ws.call(Method::GET, "/v1/customers?limit=6", None).await;
        assert_eq!(page["has_more"], true, "{page}");

        for (query, code) in [
            ("limit=0", "invalid_limit"),
            ("limit=101", "invalid_limit"),
            ("limit=ten", "invalid_limit"),
            ("starting_after=nobody", "invalid_cursor"),
            ("limit=1&limit=2", "invalid_request"),
        ] {
            let (status, body) = ws
                .call(Method::GET, &format!("/v1/customers?{query}"), None)
                .await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
            assert_eq!(body["code"], code, "{query}: {body}");
        }

        // Keys, subscriptions and invoices of one customer page the same way.
        let mut keys = Vec::new();
        for _ in 0..5 {
            keys.push(ws.post("/v1/customers/c0/keys", json!({})).await["id"].as_str().unwrap().to_owned());
        }
        let (listed, pages) = walk(&ws, &ws.key, "/v1/customers/c0/keys", 2).await;
        assert_eq!(ids(&listed), keys);
        assert_eq!(pages, 3);
        assert!(listed.iter().all(|k| k.get("secret").is_none()));
        let (status, body) = ws
            .call(Method::GET, "/v1/customers/c0/keys?starting_after=c1", None)
            .await;
        assert_eq!((status, body["code"].clone()), (StatusCode::BAD_REQUEST, json!("invalid_cursor")));

        ws.post("/v1/customers/c0/subscriptions", json!({"plan": "mid"})).await;
        let (subs, _) = walk(&ws, &ws.key, "/v1/customers/c0/subscriptions", 1).await;
        assert_eq!(subs.len(), 1);
        assert_eq!(subs[0]["plan"], "mid");
        let (invoices, _) = walk(&ws, &ws.key, "/v1/customers/c1/invoices", 5).await;
        assert!(invoices.is_empty());

        // A customer key pages its own lists, and only those.
        let secret = ws.post("/v1/customers/c0/keys", json!({})).await["secret"].as_str().unwrap().to_owned();
        let (own, _) = walk(&ws, &secret, "/v1/customers/c0/keys", 4).await;
        assert_eq!(own.len(), 6);
        let (status, _) = server.call(&secret, Method::GET, "/v1/customers/c1/keys", None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    async fn events_are_queried_by_filter_and_page(backend: Backend) {
        let server = TestServer::start(backend).await;
        let ws = server.workspace("apex.yaml").await;
        let clock = ws.test_clock("2026-11-10T12:00:00Z").await;
        let key_a = ws.customer("a", "mid", Some(&clock), false).await;
        ws.customer("b", "mid", Some(&clock), false).await;
        let (status, report) = ws
            .events(json!([
                {"id": "e1", "customer": "a", "type": "cloud.cost", "timestamp": "2026-11-10T09:00:00Z", "subject": "ann", "properties": {"amount_usd": "1.5"}},
                {"id": "e2", "customer": "b", "type": "cloud.cost", "timestamp": "2026-11-10T10:00:00Z", "properties": {"amount_usd": 2}},
                {"id": "e3", "customer": "a", "type": "agent.run", "timestamp": "2026-11-10T10:00:00Z", "subject": "bob", "properties": {"level": "supervisor", "tokens": 7}},
                {"id": "e4", "customer": "a", "type": "cloud.cost", "timestamp": "2026-11-10T11:00:00Z", "subject": "ann", "properties": {"amount_usd": "0.25", "note": "a, \"quoted\"\nvalue"}}
            ]))
            .await;
        assert_eq!(status, StatusCode::OK, "{report}");

        let (all, _) = walk(&ws, &ws.key, "/v1/events", 2).await;
        assert_eq!(ids(&all), ["e1", "e2", "e3", "e4"]);
        assert_eq!(all[0]["customer"], "a");
        assert_eq!(all[0]["type"], "cloud.cost");
        assert_eq!(all[0]["timestamp"], "2026-11-10T09:00:00Z");
        assert_eq!(all[0]["subject"], "ann");
        assert_eq!(all[0]["properties"]["amount_usd"], "1.5");
        for (query, want) in [
            ("customer=a", vec!["e1", "e3", "e4"]),
            ("type=cloud.cost", vec!["e1", "e2", "e4"]),
            ("subject=ann", vec!["e1", "e4"]),
            ("customer=a&type=cloud.cost&from=2026-11-10T10:00:00Z", vec!["e4"]),
            ("from=2026-11-10T10:00:00Z&to=2026-11-10T11:00:00Z", vec!["e2", "e3"]),
            ("customer=nobody", vec![]),
        ] {
            let (got, _) = walk(&ws, &ws.key, &format!("/v1/events?{query}"), 1).await;
            assert_eq!(ids(&got), want, "{query}");
        }
        for (query, code) in [
            ("from=yesterday", "invalid_timestamp"),
            ("from=2026-11-10T11:00:00Z&to=2026-11-10T10:00:00Z", "invalid_timestamp"),
            ("starting_after=nope", "invalid_cursor"),
            ("limit=500", "invalid_limit"),
        ] {
            let (status, body) = ws.call(Method::GET, &format!("/v1/events?{query}"), None).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
            assert_eq!(body["code"], code, "{query}");
        }

        // A customer key sees its own events; another's are a 404, their ids no cursor.
        let (own, _) = walk(&ws, &key_a, "/v1/events", 10).await;
        assert_eq!(ids(&own), ["e1", "e3", "e4"]);
        let (status, _) = server.call(&key_a, Method::GET, "/v1/events?customer=b", None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, body) = server
            .call(&key_a, Method::GET, "/v1/events?starting_after=e2", None)
            .await;
        assert_eq!((status, body["code"].clone()), (StatusCode::BAD_REQUEST, json!("invalid_cursor")));

        // The exports hold the same events.
        let (status, headers, text) = export(&ws, &ws.key, "/v1/events/export?format=ndjson&customer=a").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers["content-type"], "application/x-ndjson");
        let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines, own, "NDJSON lines are the listed events");
        let (status, headers, text) = export(&ws, &ws.key, "/v1/events/export?format=csv&type=cloud.cost").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers["content-type"], "text/csv; charset=utf-8");
        assert!(headers["content-disposition"].to_str().unwrap().contains("events.csv"));
        let mut rows = text.split_inclusive('\n');
        assert_eq!(rows.next().unwrap(), "id,customer,type,timestamp,subject,properties,received_at\n");
        let rest: String = rows.collect();
        assert!(rest.starts_with("e1,a,cloud.cost,2026-11-10T09:00:00Z,ann,"), "{rest}");
        // PostgreSQL's JSONB orders an object's keys its own way: each field is looked for.
        for field in [r#"""amount_usd"":""0.25"""#, r#"""note"":""a, \""quoted\""\nvalue"""#] {
            assert!(
                rest.contains(field),
                "a field with commas, quotes and a newline is quoted: {rest}"
            );
        }
        let (status, _, text) = export(&ws, &key_a, "/v1/events/export?customer=b").await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{text}");
        let (status, _, text) = export(&ws, &ws.key, "/v1/events/export?format=xml").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(text.contains("invalid_format"), "{text}");
    }

    async fn an_export_streams_across_store_pages(backend: Backend) {
        let server = TestServer::start(backend).await;
        let ws = server.workspace("apex.yaml").await;
        let clock = ws.test_clock("2026-11-10T12:00:00Z").await;
        ws.customer("big", "mid", Some(&clock), false).await;
        // 2,500 events: the export reads them in three store pages of at most 1,000.
        let events: Vec<Value> = (0..2_500)
            .map(|i| json!({"id": format!("ev{i:05}"), "customer": "big", "type": "cloud.cost",
                "timestamp": format!("2026-11-10T{:02}:{:02}:{:02}Z", i / 3600, (i / 60) % 60, i % 60),
                "properties": {"amount_usd": 1}}))
            .collect();
        let (status, report) = ws.events(json!(events)).await;
        assert_eq!(status, StatusCode::OK, "{report}");
        let (status, _, text) = export(&ws, &ws.key, "/v1/events/export").await;
        assert_eq!(status, StatusCode::OK);
        let got: Vec<String> = text
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap()["id"].as_str().unwrap().to_owned())
            .collect();
        let want: Vec<String> = (0..2_500).map(|i| format!("ev{i:05}")).collect();
        assert_eq!(got, want, "every event once, in time order");
        let (_, _, csv) = export(&ws, &ws.key, "/v1/events/export?format=csv").await;
        assert_eq!(csv.lines().count(), 2_501, "one header, one row per event");
    }

    async fn usage_is_exported_per_customer_and_period(backend: Backend) {
        let server = TestServer::start(backend).await;
        let ws = server.workspace("apex.yaml").await;
        let clock = ws.test_clock("2026-11-10T12:00:00Z").await;
        let key = ws.customer("u", "mid", Some(&clock), false).await;
        let (status, _) = ws
            .events(json!([{"id": "s1", "customer": "u", "type": "cloud.cost", "properties": {"amount_usd": "12.5"}}]))
            .await;
        assert_eq!(status, StatusCode::OK);
        let (_, report) = ws.call(Method::GET, "/v1/customers/u/usage", None).await;
        let (status, headers, text) = export(&ws, &key, "/v1/customers/u/usage/export?format=csv").await;
        assert_eq!(status, StatusCode::OK, "{text}");
        assert!(headers["content-disposition"].to_str().unwrap().contains("usage.csv"));
        let mut lines = text.lines();
        assert_eq!(
            lines.next().unwrap(),
            "customer,plan,period_start,period_end,meter,used,limit,limit_kind,remaining,resets_at"
        );
        let rows: Vec<&str> = lines.collect();
        assert_eq!(rows.len(), report["meters"].as_array().unwrap().len());
        let spend = rows.iter().find(|r| r.contains(",ai_spend,")).unwrap();
        assert!(spend.starts_with(&format!("u,mid,{},", report["period_start"].as_str().unwrap())), "{spend}");
        assert!(spend.contains(",ai_spend,12.5,"), "{spend}");
        let (_, _, text) = export(&ws, &ws.key, "/v1/customers/u/usage/export").await;
        let records: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        let spend = records.iter().find(|r| r["meter"] == "ai_spend").unwrap();
        let reported = report["meters"].as_array().unwrap().iter().find(|m| m["meter"] == "ai_spend").unwrap();
        assert_eq!(spend["used"], reported["used"]);
        assert_eq!(spend["period_end"], report["period_end"]);
        let (status, _, _) = export(&ws, &ws.key, "/v1/customers/ghost/usage/export").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}

/// A raw GET: status, headers, body text.
async fn export(
    ws: &Workspace<'_>,
    key: &str,
    path: &str,
) -> (StatusCode, reqwest::header::HeaderMap, String) {
    let resp = reqwest::Client::new()
        .get(format!("{}{}", ws.server.base, path))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    (status, headers, resp.text().await.unwrap())
}

/// What the request log wrote, for the test below (one global subscriber per test binary).
#[derive(Clone, Default)]
struct LogBuffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn each_request_is_logged_once_with_its_id_and_no_secret() {
    let buffer = LogBuffer::default();
    let sink = buffer.clone();
    // This thread's subscriber (the test runtime runs the server on this thread too): another
    // test of this binary may have set the global one.
    let _logs = tracing::subscriber::set_default(
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("tollgate::request=info"))
            .with_ansi(false)
            .with_writer(move || sink.clone())
            .finish(),
    );
    let server = TestServer::start(common::Backend::Sqlite).await;
    let ws = server.workspace("apex.yaml").await;
    let resp = reqwest::Client::new()
        .get(format!("{}/v1/customers/ghost-42", server.base))
        .bearer_auth(&ws.key)
        .header("X-Request-Id", "trace-me-1")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(resp.headers()["x-request-id"], "trace-me-1");
    // Without an id of the caller's (or with one that is not an id), one is made.
    let resp = reqwest::Client::new()
        .get(format!("{}/healthz", server.base))
        .header("X-Request-Id", "no spaces allowed")
        .send()
        .await
        .unwrap();
    let made = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(made.starts_with("req_"), "{made}");
    ws.customer("m", "mid", None, false).await;
    ws.check(json!({"customer": "m", "feature": "basic_chat"}))
        .await;

    let logs = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = logs.lines().filter(|l| l.contains("trace-me-1")).collect();
    assert_eq!(lines.len(), 1, "one line per request: {logs}");
    let line = lines[0];
    for part in [
        "request_id=trace-me-1",
        "method=GET",
        "route=/v1/customers/{id}",
        "status=404",
        "outcome=\"client_error\"",
        "code=\"not_found\"",
        "latency_ms=",
    ] {
        assert!(line.contains(part), "{part} in {line}");
    }
    assert!(
        !line.contains("ghost-42"),
        "the route template, not the id: {line}"
    );
    assert!(logs.contains(&made), "{logs}");
    assert!(!logs.contains(&ws.key), "no key is ever logged");
    assert!(!logs.contains("Bearer"), "no Authorization is ever logged");

    let (status, text) = server.call(&ws.key, Method::GET, "/metrics", None).await;
    assert_eq!(status, StatusCode::OK);
    let text = text.as_str().unwrap();
    for metric in [
        "tollgate_http_request_duration_seconds_bucket{method=\"GET\",route=\"/v1/customers/{id}\",le=\"0.001\"}",
        "tollgate_http_requests_total{method=\"GET\",route=\"/v1/customers/{id}\",status=\"404\",outcome=\"client_error\"}",
        "tollgate_check_duration_seconds_bucket{consume=\"false\",result=\"allowed\"",
        "process_resident_memory_bytes ",
        "process_open_fds ",
        "process_cpu_seconds_total ",
    ] {
        assert!(text.contains(metric), "{metric} in /metrics:\n{text}");
    }
}

/// A POST of `body` with `Content-Type: kind`.
async fn post_as(ws: &Workspace<'_>, key: &str, kind: &str, body: &Value) -> (StatusCode, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/events", ws.server.base))
        .bearer_auth(key)
        .header("Content-Type", kind)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap())
}

backend_tests! {
    async fn cloudevents_are_ingested_in_structured_and_batch_mode(backend: Backend) {
        let server = TestServer::start(backend).await;
        let ws = server.workspace("apex.yaml").await;
        let clock = ws.test_clock("2026-11-10T12:00:00Z").await;
        let key = ws.customer("ce", "mid", Some(&clock), false).await;
        let one = json!({"specversion": "1.0", "id": "1", "source": "//cost/exporter",
            "type": "cloud.cost", "subject": "ce", "time": "2026-11-10T10:00:00Z",
            "datacontenttype": "application/json", "data": {"amount_usd": "2.5"}});
        let (status, report) = post_as(&ws, &ws.key, "application/cloudevents+json", &one).await;
        assert_eq!(status, StatusCode::OK, "{report}");
        assert_eq!(report["accepted"], 1, "{report}");
        // The same CloudEvent again, inside a batch: a duplicate; another source, another event.
        let batch = json!([
            one,
            {"specversion": "1.0", "id": "1", "source": "//cost/other", "type": "cloud.cost",
             "subject": "ce", "data": {"amount_usd": 1}},
            {"specversion": "1.0", "id": "2", "source": "//cost/other", "type": "cloud.cost",
             "subject": "nobody", "data": {"amount_usd": 1}}
        ]);
        let (status, report) =
            post_as(&ws, &ws.key, "application/cloudevents-batch+json; charset=utf-8", &batch).await;
        assert_eq!(status, StatusCode::MULTI_STATUS, "{report}");
        assert_eq!((report["accepted"].clone(), report["duplicates"].clone(), report["rejected"].clone()), (json!(1), json!(1), json!(1)), "{report}");
        assert_eq!(report["results"][2]["code"], "unknown_customer");

        let (_, events) = ws.call(Method::GET, "/v1/events?customer=ce&type=cloud.cost", None).await;
        let listed = events["data"].as_array().unwrap();
        assert_eq!(ids(listed), ["//cost/exporter/1", "//cost/other/1"]);
        assert_eq!(listed[0]["timestamp"], "2026-11-10T10:00:00Z");
        assert_eq!(listed[0]["properties"]["amount_usd"], "2.5");
        let (_, usage) = ws.call(Method::GET, "/v1/customers/ce/usage", None).await;
        let spend = usage["meters"].as_array().unwrap().iter().find(|m| m["meter"] == "ai_spend").unwrap();
        assert_eq!(spend["used"], "3.5", "{usage}");

        // A customer key's CloudEvents may leave the subject out.
        let mine = json!({"specversion": "1.0", "id": "3", "source": "app", "type": "cloud.cost", "data": {"amount_usd": 1}});
        let (status, report) = post_as(&ws, &key, "application/cloudevents+json", &mine).await;
        assert_eq!((status, report["accepted"].clone()), (StatusCode::OK, json!(1)), "{report}");

        for bad in [
            json!({"specversion": "0.3", "id": "9", "source": "s", "type": "t", "subject": "ce"}),
            json!({"specversion": "1.0", "id": "9", "source": "s", "type": "t", "subject": "ce", "data": "text"}),
            json!({"specversion": "1.0", "source": "s", "type": "t", "subject": "ce"}),
        ] {
            let (status, body) = post_as(&ws, &ws.key, "application/cloudevents+json", &bad).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
            assert_eq!(body["code"], "invalid_json");
        }
    }
}
