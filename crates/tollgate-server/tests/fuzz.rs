//! Property-based fuzzing of the paths hostile input reaches first: event batches, checks and
//! catalogs, as arbitrary JSON (and arbitrary text for YAML catalogs) sent to a real server.
//! Whatever arrives, the answer is a 2xx or a 4xx problem with a code, never a 5xx or a
//! dropped connection, and the server keeps answering. `PROPTEST_CASES` sets the number of
//! cases per path (CI runs the default, 96).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

mod common;

use common::{Backend, TestServer, Workspace};
use proptest::prelude::*;
use reqwest::{Method, StatusCode};
use serde_json::{Map, Value, json};

/// Any JSON value, nested a few levels, with strings and keys drawn from what the API reads.
fn any_json() -> impl Strategy<Value = Value> {
    let word = prop_oneof![
        Just("id".to_owned()),
        Just("customer".to_owned()),
        Just("type".to_owned()),
        Just("api.call".to_owned()),
        Just("llm.tokens".to_owned()),
        Just("n".to_owned()),
        Just("meter".to_owned()),
        Just("tokens".to_owned()),
        Just("calls".to_owned()),
        Just("quantity".to_owned()),
        Just("tollgate.quantity".to_owned()),
        Just("-1e400".to_owned()),
        Just("79228162514264337593543950335".to_owned()),
        "\\PC{0,12}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        word.clone().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((word.clone(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// An event batch that is mostly well formed, so the fuzzing gets past the shape checks.
fn event_batch() -> impl Strategy<Value = Value> {
    let event = (
        any_json(),
        any_json(),
        prop::option::of("\\PC{0,30}"),
        any::<u8>(),
    )
        .prop_map(|(n, props, timestamp, pick)| {
            let ty = ["api.call", "llm.tokens", "llm.fix", "other"][pick as usize % 4];
            let mut properties = props.as_object().cloned().unwrap_or_default();
            properties.insert("n".into(), n);
            json!({"id": format!("f{pick}"), "customer": "fz", "type": ty,
                   "timestamp": timestamp, "properties": properties})
        });
    prop_oneof![
        prop::collection::vec(event, 0..8).prop_map(|events| json!({"events": events})),
        any_json(),
    ]
}

fn check_body() -> impl Strategy<Value = Value> {
    prop_oneof![
        (
            any_json(),
            any::<bool>(),
            prop::option::of("\\PC{0,10}"),
            any_json()
        )
            .prop_map(|(quantity, consume, event_id, subject)| json!({
                "customer": "fz", "meter": "calls", "quantity": quantity,
                "consume": consume, "event_id": event_id, "subject": subject
            })),
        any_json(),
    ]
}

fn catalog_body() -> impl Strategy<Value = Value> {
    prop_oneof![
        any_json(),
        "\\PC{0,200}".prop_map(|yaml| json!({"yaml": yaml})),
        "[\\[\\]{}:,\\- a-z0-9\n]{0,300}".prop_map(|yaml| json!({"yaml": yaml})),
    ]
}

const CATALOG: &str = r#"
currency: USD
meters:
  tokens: { event: llm.tokens, aggregation: sum, property: n }
  fixes: { event: llm.fix, aggregation: sum, property: n, corrections: true }
  calls: { event: api.call, aggregation: count }
plans:
  basic:
    quotas:
      - { meter: tokens, limit: 1000, period: billing }
      - { meter: calls, limit: 100, window: 1h }
"#;

async fn setup(server: &TestServer) -> Workspace<'_> {
    let ws = server.workspace_with("fuzz", CATALOG).await;
    ws.customer("fz", "basic", None, false).await;
    ws
}

/// Sends every generated body to `path` and holds the server to "no 5xx, still alive".
fn fuzz_path(
    backend: Backend,
    method: Method,
    path: &'static str,
    strategy: impl Strategy<Value = Value>,
) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(TestServer::start(backend));
    let ws = runtime.block_on(setup(&server));
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(96);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    runner
        .run(&strategy, |body| {
            let (status, answer) =
                runtime.block_on(ws.call(method.clone(), path, Some(body.clone())));
            prop_assert!(
                !status.is_server_error(),
                "{path} {body}: {status} {answer}"
            );
            if !status.is_success() {
                prop_assert!(
                    answer["code"].is_string(),
                    "{path} {body}: {status} {answer}"
                );
            }
            Ok(())
        })
        .unwrap();
    let (status, _) = runtime.block_on(ws.call(Method::GET, "/healthz", None));
    assert_eq!(status, StatusCode::OK);
}

mod arbitrary_event_batches_never_answer_5xx {
    use super::*;

    #[test]
    fn sqlite() {
        fuzz_path(Backend::Sqlite, Method::POST, "/v1/events", event_batch());
    }

    #[test]
    #[cfg_attr(
        not(tollgate_pg),
        ignore = "set TOLLGATE_TEST_DATABASE_URL to run on PostgreSQL"
    )]
    fn postgres() {
        fuzz_path(Backend::Postgres, Method::POST, "/v1/events", event_batch());
    }
}

mod arbitrary_checks_never_answer_5xx {
    use super::*;

    #[test]
    fn sqlite() {
        fuzz_path(Backend::Sqlite, Method::POST, "/v1/check", check_body());
    }

    #[test]
    #[cfg_attr(
        not(tollgate_pg),
        ignore = "set TOLLGATE_TEST_DATABASE_URL to run on PostgreSQL"
    )]
    fn postgres() {
        fuzz_path(Backend::Postgres, Method::POST, "/v1/check", check_body());
    }
}

mod arbitrary_catalogs_never_answer_5xx {
    use super::*;

    #[test]
    fn sqlite() {
        fuzz_path(Backend::Sqlite, Method::PUT, "/v1/catalog", catalog_body());
    }

    #[test]
    #[cfg_attr(
        not(tollgate_pg),
        ignore = "set TOLLGATE_TEST_DATABASE_URL to run on PostgreSQL"
    )]
    fn postgres() {
        fuzz_path(
            Backend::Postgres,
            Method::PUT,
            "/v1/catalog",
            catalog_body(),
        );
    }
}
