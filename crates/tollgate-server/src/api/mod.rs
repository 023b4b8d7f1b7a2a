//! The HTTP API: JSON under `/v1`, one file per resource.

pub mod analytics;
pub mod auth;
pub mod billing;
pub mod body;
pub mod catalog;
pub mod check;
pub mod cloudevents;
pub mod customers;
pub mod domain_events;
pub mod downloads;
pub mod email;
pub mod error;
pub mod events;
pub mod health;
pub mod idempotency;
pub mod invoices;
pub mod jobs;
pub mod keys;
pub mod ledger;
pub mod licenses;
pub mod metrics;
pub mod openapi;
pub mod page;
pub mod payments;
pub mod portal_sessions;
pub mod profiles;
pub mod public_pages;
pub mod referrals;
pub mod request_log;
pub mod root;
pub mod signups;
pub mod stripe_webhooks;
pub mod subscriptions;
pub mod test_clocks;
pub mod users;
pub mod web;
pub mod webhooks;
pub mod workspaces;

use axum::Router;
use axum::routing::{delete, get, post, put};
use tollgate_core::code::Code;

use crate::state::AppState;

/// Every route of the service.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(root::index))
        .route("/healthz", get(health::healthz))
        .route("/metrics", get(metrics::render))
        .route("/openapi.json", get(openapi::serve))
        .route("/v1/workspaces", post(workspaces::create))
        .route("/v1/users", post(users::create).get(users::list))
        .route("/v1/analytics/mrr", get(analytics::mrr))
        .route("/v1/analytics/margins", get(analytics::margins))
        .route("/v1/analytics/retention", get(analytics::retention))
        .route("/v1/analytics/revenue", get(analytics::revenue))
        .route("/v1/analytics/simulations", post(analytics::simulate))
        .route(
            "/v1/customers/{id}/portal_sessions",
            post(portal_sessions::create),
        )
        .route("/assets/app.css", get(web::css))
        .route("/assets/uplot.js", get(web::uplot_js))
        .route("/assets/uplot.css", get(web::uplot_css))
        .route("/assets/htmx.js", get(web::htmx_js))
        .route("/assets/charts.js", get(web::charts_js))
        .route(
            "/admin/login",
            get(web::admin::login_form).post(web::admin::login),
        )
        .route("/admin/logout", post(web::admin::logout))
        .route("/admin", get(web::admin::home))
        .route("/admin/customers", get(web::admin::customers))
        .route("/admin/customers/{id}", get(web::admin::customer))
        .route("/admin/invoices", get(web::admin::invoices))
        .route("/admin/invoices/{id}", get(web::admin::invoice))
        .route("/admin/invoices/{id}/pdf", get(web::admin::invoice_pdf))
        .route(
            "/admin/invoices/{id}/credit_notes",
            post(web::admin::invoice_credit_note),
        )
        .route("/admin/users", get(web::users::users).post(web::users::add))
        .route("/admin/users/{id}/role", post(web::users::change_role))
        .route("/admin/users/{id}/remove", post(web::users::remove_user))
        .route(
            "/admin/invoices/{id}/{action}",
            post(web::admin::invoice_action),
        )
        .route("/admin/analytics", get(web::admin::analytics_page))
        .route("/admin/analytics.csv", get(web::admin::analytics_csv))
        .route("/admin/margins", get(web::reports::margins_page))
        .route("/admin/margins.csv", get(web::reports::margins_csv))
        .route("/admin/revenue", get(web::reports::revenue_page))
        .route("/admin/retention.csv", get(web::reports::retention_csv))
        .route("/admin/revenue.csv", get(web::reports::revenue_csv))
        .route("/admin/catalog", get(web::operations::catalog_page))
        .route("/admin/events", get(web::operations::events_page))
        .route("/admin/events/tail", get(web::operations::events_tail))
        .route("/admin/webhooks", get(web::operations::webhooks_page))
        .route("/admin/emails", get(web::operations::emails_page))
        .route("/admin/test_clocks", get(web::operations::test_clocks_page))
        .route(
            "/admin/simulation",
            get(web::reports::simulation_form).post(web::reports::simulation_run),
        )
        .route("/portal", get(web::portal::home))
        .route(
            "/portal/signin",
            get(web::public::sign_in_here).post(web::public::sign_in_post_here),
        )
        .route(
            "/portal/signin/{workspace}",
            get(web::public::sign_in_of).post(web::public::sign_in_post_of),
        )
        .route("/pricing", get(web::public::pricing_here))
        .route("/pricing/embed", get(web::public::embed_here))
        .route("/pricing/{workspace}", get(web::public::pricing_of))
        .route("/pricing/{workspace}/embed", get(web::public::embed_of))
        .route(
            "/signup",
            get(web::public::signup_here).post(web::public::signup_post_here),
        )
        .route(
            "/signup/{workspace}",
            get(web::public::signup_of).post(web::public::signup_post_of),
        )
        .route("/public/brand.css", get(web::public::brand_css))
        .route(
            "/admin/public",
            get(web::admin::public_settings_page).post(web::admin::public_settings_save),
        )
        .route(
            "/v1/public_pages",
            get(public_pages::get).put(public_pages::put),
        )
        .route(
            "/v1/domains",
            get(public_pages::list_domains).post(public_pages::add_domain),
        )
        .route(
            "/v1/domains/{hostname}",
            delete(public_pages::remove_domain),
        )
        .route("/portal/brand.css", get(web::portal::brand_css))
        .route("/portal/enter/{token}", get(web::portal::enter))
        .route("/portal/plan", post(web::portal::change_plan))
        .route("/portal/keys", post(web::portal::create_key))
        .route("/portal/keys/{id}/revoke", post(web::portal::revoke_key))
        .route("/portal/invoices/{id}/pdf", get(web::portal::invoice_pdf))
        .route("/v1/catalog", put(catalog::apply).get(catalog::current))
        .route(
            "/v1/customers",
            post(customers::create).get(customers::list),
        )
        .route("/v1/customers/{id}", get(customers::get))
        .route("/v1/customers/{id}/suspend", post(customers::suspend))
        .route("/v1/customers/{id}/unsuspend", post(customers::unsuspend))
        .route("/v1/customers/{id}/usage", get(customers::usage))
        .route("/v1/customers/{id}/referral", get(referrals::get))
        .route("/v1/ledger/seal", post(ledger::seal))
        .route("/v1/ledger/checkpoints", get(ledger::checkpoints))
        .route("/v1/ledger/proof", get(ledger::proof))
        .route("/v1/ledger/consistency", get(ledger::consistency))
        .route("/v1/ledger/verify", post(ledger::verify))
        .route("/v1/customers/{id}/evidence", get(ledger::evidence))
        .route("/v1/customers/{id}/evidence.pdf", get(ledger::evidence_pdf))
        .route("/v1/invoices/{id}/evidence", get(ledger::invoice_evidence))
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
            "/v1/customers/{id}/subscriptions/{sub}/pause",
            post(subscriptions::pause),
        )
        .route(
            "/v1/customers/{id}/subscriptions/{sub}/resume",
            post(subscriptions::resume),
        )
        .route(
            "/v1/customers/{id}/keys",
            post(keys::create).get(keys::list),
        )
        .route("/v1/customers/{id}/keys/{key}/revoke", post(keys::revoke))
        .route("/v1/events", post(events::ingest).get(events::list))
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
        .route("/v1/customers/{id}/balance", get(billing::customer_balance))
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
        .route("/v1/bill_runs/{id}", get(billing::get_run))
        .route("/v1/quotes", post(billing::quote))
        .route("/v1/test_clocks", post(test_clocks::create))
        .route("/v1/test_clocks/{id}", get(test_clocks::get))
        .route("/v1/test_clocks/{id}/advance", post(test_clocks::advance))
        .route("/v1/domain_events", get(domain_events::list_events))
        .route("/v1/jobs", get(jobs::list_jobs))
        .route("/v1/jobs/{id}/retry", post(jobs::retry_job))
        .route("/v1/jobs/{id}/cancel", post(jobs::cancel_job))
        .route(
            "/v1/customers/{id}",
            axum::routing::patch(customers::update).delete(customers::archive),
        )
        .route("/v1/signups", post(signups::create))
        .route(
            "/v1/customers/{id}/billing_profile",
            put(profiles::set).get(profiles::get),
        )
        .route(
            "/v1/billing_profile",
            put(profiles::set_seller).get(profiles::get_seller),
        )
        .route(
            "/v1/invoices/{id}/credit_notes/{note}",
            get(invoices::credit_note_pdf),
        )
        .route("/v1/events/export", get(events::export))
        .route("/v1/events/amendments", get(events::amendments))
        .route("/v1/customers/{id}/usage/export", get(events::usage_export))
        .route(
            "/v1/webhook_endpoints",
            post(webhooks::create).get(webhooks::list),
        )
        .route(
            "/v1/webhook_endpoints/{id}",
            get(webhooks::get)
                .patch(webhooks::update)
                .delete(webhooks::delete),
        )
        .route(
            "/v1/webhook_endpoints/{id}/rotate_secret",
            post(webhooks::rotate_secret),
        )
        .route(
            "/v1/webhook_endpoints/{id}/deliveries",
            get(webhooks::deliveries),
        )
        .route(
            "/v1/webhook_endpoints/{id}/deliveries/{delivery}/replay",
            post(webhooks::replay_delivery),
        )
        .route("/v1/webhook_endpoints/{id}/replay", post(webhooks::replay))
        .route(
            "/v1/workspaces/{id}/webhook_settings",
            put(webhooks::set_settings),
        )
        .route("/v1/license_keys", get(licenses::list_keys))
        .route("/v1/license_keys/rotate", post(licenses::rotate_key))
        .route("/v1/license_keys/{id}/retire", post(licenses::retire_key))
        .route("/v1/licenses", post(licenses::issue))
        .route("/v1/licenses/validate", post(licenses::validate))
        .route("/v1/licenses/{id}", get(licenses::get))
        .route("/v1/licenses/{id}/revoke", post(licenses::revoke))
        .route("/v1/licenses/{id}/machines", post(licenses::activate))
        .route(
            "/v1/licenses/{id}/machines/{fingerprint}/heartbeat",
            post(licenses::heartbeat),
        )
        .route(
            "/v1/licenses/{id}/machines/{fingerprint}/deactivate",
            post(licenses::deactivate),
        )
        .route("/v1/customers/{id}/licenses", get(licenses::list))
        .route(
            "/v1/customers/{id}/downloads/{product}",
            post(downloads::issue),
        )
        .route("/v1/downloads/{token}", get(downloads::open))
        .route(
            "/v1/email_settings",
            get(email::get_settings).put(email::set_settings),
        )
        .route("/v1/email_templates", get(email::list_templates))
        .route(
            "/v1/email_templates/{name}",
            get(email::get_template)
                .put(email::replace_template)
                .delete(email::reset_template),
        )
        .route(
            "/v1/email_templates/{name}/preview",
            post(email::preview_template),
        )
        .route("/v1/email_messages", get(email::list_messages))
        .route(
            "/v1/payment_settings",
            put(payments::set_settings).get(payments::get_settings),
        )
        .route(
            "/v1/invoices/{id}/payments",
            post(payments::record).get(payments::list),
        )
        .route("/v1/invoices/{id}/collect", post(payments::collect))
        .route(
            "/v1/invoices/{id}/payment_link",
            post(payments::payment_link),
        )
        .route("/v1/payments/reconciliation", get(payments::reconcile))
        .route("/v1/payments/stripe_sync", post(payments::stripe_sync))
        .route(
            "/v1/customers/{id}/payment_methods/checkout",
            post(payments::checkout),
        )
        .route("/v1/customers/{id}/billing_portal", post(payments::portal))
        .route(
            "/v1/stripe/webhooks/{workspace}",
            post(stripe_webhooks::receive),
        )
        .fallback(unknown_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            idempotency::idempotency,
        ))
        .layer(axum::middleware::from_fn(refuse_nul_in_uri))
        .layer(catch_panics())
        .layer(axum::middleware::from_fn(request_log::log_requests))
        .with_state(state)
}

async fn unknown_route(uri: axum::http::Uri) -> error::ApiError {
    error::ApiError::new(
        axum::http::StatusCode::NOT_FOUND,
        Code::UnknownRoute,
        format!("no route {}; see /openapi.json", uri.path()),
    )
}

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> error::ApiError {
    error::ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        Code::MethodNotAllowed,
        format!("{} does not answer {method}; see /openapi.json", uri.path()),
    )
}

/// `%00` in a path or query would reach the store as a NUL character, which PostgreSQL refuses
/// in text: refuse it here, the same on both backends.
async fn refuse_nul_in_uri(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    // The URI's parts as they came (its text without building it, once per request).
    let uri = request.uri();
    let parts = [
        uri.authority().map(|a| a.as_str()),
        uri.path_and_query().map(|p| p.as_str()),
    ];
    if parts.iter().flatten().any(|part| {
        part.as_bytes()
            .windows(3)
            .any(|w| w.eq_ignore_ascii_case(b"%00"))
    }) {
        return axum::response::IntoResponse::into_response(error::ApiError::bad_request(
            Code::NulByte,
            "the URL must not contain the NUL character (%00)",
        ));
    }
    next.run(request).await
}

/// The layer that turns a panic in a handler into a 500 problem (the router uses it; tests
/// check it on a handler that panics).
pub fn catch_panics() -> tower_http::catch_panic::CatchPanicLayer<
    fn(Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response,
> {
    tower_http::catch_panic::CatchPanicLayer::custom(
        panicked as fn(Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response,
    )
}

/// A panic in one request answers a 500 and is logged; the server, and every other customer,
/// go on (a customer state whose lock a panic poisoned is dropped and reloaded).
fn panicked(cause: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    let detail = cause
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| cause.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    axum::response::IntoResponse::into_response(error::ApiError::internal(format!(
        "panic while answering: {detail}"
    )))
}

pub use crate::ids::new_id;

/// Operator-chosen ids: letters, digits, `_ - . :`, 1 to 128 characters.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
}
