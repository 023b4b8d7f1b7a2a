//! The OpenAPI 3.1 document, generated from the handlers' annotations and served at
//! `/openapi.json`.

use axum::Json;
use utoipa::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};

use super::{
    analytics, billing, catalog, check, customers, domain_events, downloads, email, events, health,
    invoices, jobs, keys, ledger, licenses, metrics, payments, portal_sessions, profiles,
    public_pages, referrals, signups, stripe_webhooks, subscriptions, test_clocks, users, webhooks,
    workspaces,
};

#[derive(OpenApi)]
#[openapi(
    info(title = "Tollgate", description = "Metering, plan limits and feature gates. Errors are application/problem+json with a stable `code`."),
    paths(
        health::healthz, metrics::render, workspaces::create, catalog::apply, catalog::current,
        customers::create, customers::list, customers::get, customers::suspend, customers::unsuspend, customers::usage,
        subscriptions::create, subscriptions::list, subscriptions::change_plan, subscriptions::cancel, subscriptions::pause, subscriptions::resume,
        keys::create, keys::list, keys::revoke, events::ingest, check::check,
        test_clocks::create, test_clocks::get, test_clocks::advance,
        invoices::upcoming, invoices::list, invoices::get, invoices::pay, invoices::void, invoices::mark_uncollectible,
        invoices::credit_note, billing::run, billing::get_run, billing::quote, billing::recommendation, billing::grant_credit,
        billing::credit_balance, billing::customer_balance, billing::apply_coupon, billing::purchase,
        domain_events::list_events, jobs::list_jobs, jobs::retry_job, jobs::cancel_job,
        customers::update, customers::archive, signups::create,
        profiles::set, profiles::get, profiles::set_seller, profiles::get_seller,
        invoices::credit_note_pdf,
        events::list, events::export, events::amendments, events::usage_export, referrals::get,
        webhooks::create, webhooks::list, webhooks::get, webhooks::update, webhooks::delete,
        webhooks::rotate_secret, webhooks::deliveries, webhooks::replay_delivery, webhooks::replay,
        webhooks::set_settings,
        licenses::list_keys, licenses::rotate_key, licenses::retire_key, licenses::issue, licenses::get,
        licenses::list, licenses::revoke, licenses::validate, licenses::activate, licenses::heartbeat,
        licenses::deactivate, downloads::issue, downloads::open,
        ledger::seal, ledger::checkpoints, ledger::proof, ledger::consistency, ledger::verify, ledger::evidence, ledger::evidence_pdf, ledger::invoice_evidence,
        email::get_settings, email::set_settings, email::list_templates, email::get_template,
        email::replace_template, email::reset_template, email::preview_template, email::list_messages,
        payments::set_settings, payments::get_settings, payments::record, payments::list,
        payments::collect, payments::checkout, payments::portal, payments::reconcile,
        payments::stripe_sync, payments::payment_link,
        users::create, users::list, analytics::mrr, portal_sessions::create,
        stripe_webhooks::receive,
        analytics::margins,
        analytics::retention,
        analytics::revenue,
        analytics::simulate,
        public_pages::get, public_pages::put, public_pages::add_domain, public_pages::list_domains,
        public_pages::remove_domain,
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
        // Every mutating operation takes an Idempotency-Key (api/idempotency.rs).
        for item in openapi.paths.paths.values_mut() {
            for operation in [
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ]
            .into_iter()
            .flatten()
            {
                operation
                    .parameters
                    .get_or_insert_with(Vec::new)
                    .push(utoipa::openapi::RefOr::T(idempotency_key()));
            }
        }
    }
}

/// The document as committed in `docs/openapi.json` (pretty JSON, trailing newline).
pub fn document() -> String {
    let mut text = ApiDoc::openapi().to_pretty_json().unwrap_or_default();
    text.push('\n');
    text
}

fn idempotency_key() -> utoipa::openapi::path::Parameter {
    use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
    use utoipa::openapi::{ObjectBuilder, Required, Type};
    ParameterBuilder::new()
        .name("Idempotency-Key")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(
            "Retries with the same key and request get the first answer (kept 24 h); \
             the same key with another request is 422 idempotency_key_reused.",
        ))
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(255)),
        ))
        .build()
}

pub async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
