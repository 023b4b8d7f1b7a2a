//! The OpenAPI 3.1 document, generated from the handlers' annotations and served at
//! `/openapi.json`.

use axum::Json;
use utoipa::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};

use super::{
    billing, catalog, check, customers, events, health, invoices, keys, metrics, subscriptions,
    test_clocks, workspaces,
};

#[derive(OpenApi)]
#[openapi(
    info(title = "Tollgate", description = "Metering, plan limits and feature gates. Errors are application/problem+json with a stable `code`."),
    paths(
        health::healthz, metrics::render, workspaces::create, catalog::apply, catalog::current,
        customers::create, customers::list, customers::get, customers::suspend, customers::unsuspend, customers::usage,
        subscriptions::create, subscriptions::list, subscriptions::change_plan, subscriptions::cancel,
        keys::create, keys::list, keys::revoke, events::ingest, check::check,
        test_clocks::create, test_clocks::get, test_clocks::advance,
        invoices::upcoming, invoices::list, invoices::get, invoices::pay, invoices::void, invoices::mark_uncollectible,
        invoices::credit_note, billing::run, billing::get_run, billing::quote, billing::recommendation, billing::grant_credit,
        billing::credit_balance, billing::apply_coupon, billing::purchase,
    ),
    modifiers(&BearerAuth),
    security(("bearer" = []), ("api_key" = []))
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        );
    }
}

/// The document as committed in `docs/openapi.json` (pretty JSON, trailing newline).
pub fn document() -> String {
    let mut text = ApiDoc::openapi().to_pretty_json().unwrap_or_default();
    text.push('\n');
    text
}

pub async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
