//! The HTTP API: JSON under `/v1`, one file per resource.

pub mod billing;
pub mod catalog;
pub mod check;
pub mod customers;
pub mod events;
pub mod health;
pub mod invoices;
pub mod keys;
pub mod metrics;
pub mod openapi;
pub mod subscriptions;
pub mod test_clocks;
pub mod workspaces;

use axum::Router;
use axum::routing::{get, post, put};

use crate::state::AppState;

/// Every route of the service.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/metrics", get(metrics::render))
        .route("/openapi.json", get(openapi::serve))
        .route("/v1/workspaces", post(workspaces::create))
        .route("/v1/catalog", put(catalog::apply).get(catalog::current))
        .route(
            "/v1/customers",
            post(customers::create).get(customers::list),
        )
        .route("/v1/customers/{id}", get(customers::get))
        .route("/v1/customers/{id}/suspend", post(customers::suspend))
        .route("/v1/customers/{id}/unsuspend", post(customers::unsuspend))
        .route("/v1/customers/{id}/usage", get(customers::usage))
        .route(
            "/v1/customers/{id}/subscriptions",
            post(subscriptions::create).get(subscriptions::list),
        )
        .route(
            "/v1/customers/{id}/subscriptions/{sub}/change",
            post(subscriptions::change_plan),
        )
        .route(
            "/v1/customers/{id}/subscriptions/{sub}/cancel",
            post(subscriptions::cancel),
        )
        .route(
            "/v1/customers/{id}/keys",
            post(keys::create).get(keys::list),
        )
        .route("/v1/customers/{id}/keys/{key}/revoke", post(keys::revoke))
        .route("/v1/events", post(events::ingest))
        .route("/v1/check", post(check::check))
        .route("/v1/customers/{id}/invoices", get(invoices::list))
        .route(
            "/v1/customers/{id}/invoices/upcoming",
            get(invoices::upcoming),
        )
        .route(
            "/v1/customers/{id}/recommendation",
            get(billing::recommendation),
        )
        .route(
            "/v1/customers/{id}/credits",
            post(billing::grant_credit).get(billing::credit_balance),
        )
        .route("/v1/customers/{id}/coupons", post(billing::apply_coupon))
        .route("/v1/customers/{id}/purchases", post(billing::purchase))
        .route("/v1/invoices/{id}", get(invoices::get))
        .route("/v1/invoices/{id}/pay", post(invoices::pay))
        .route("/v1/invoices/{id}/void", post(invoices::void))
        .route(
            "/v1/invoices/{id}/mark_uncollectible",
            post(invoices::mark_uncollectible),
        )
        .route(
            "/v1/invoices/{id}/credit_notes",
            post(invoices::credit_note),
        )
        .route("/v1/bill_runs", post(billing::run))
        .route("/v1/quotes", post(billing::quote))
        .route("/v1/test_clocks", post(test_clocks::create))
        .route("/v1/test_clocks/{id}", get(test_clocks::get))
        .route("/v1/test_clocks/{id}/advance", post(test_clocks::advance))
        .with_state(state)
}

/// A fresh id with a prefix that says what it is (`cus_`, `sub_`, `key_`, `clock_`).
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

/// Operator-chosen ids: letters, digits, `_ - . :`, 1 to 128 characters.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
}
