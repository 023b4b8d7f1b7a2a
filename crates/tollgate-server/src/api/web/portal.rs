//! The customer portal under `/portal` (white label): entered through a single-use link the
//! operator's app asks for (`POST /v1/customers/{id}/portal_sessions`), it shows the customer's
//! plan, usage against limits with reset times, the other plans with their prices (and changes
//! plan), invoices with their PDFs, and API keys (create, revoke, last four characters).
//!
//! Branding comes from the workspace's seller profile (`brand`: name, colour, logo URL; else its
//! legal name): never the workspace's name, nor Tollgate's, so a white-label partner's portal
//! shows the partner only (Levqor case 7).

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use tollgate_core::ids::{CustomerId, KeyId, WorkspaceId};
use tollgate_store::users::WebSessionRecord;

use super::admin::{customer_context, error_page, interval};
use super::{cookie, page, same_secret, see_other, set_cookie};
use crate::app::users::portal::{self as app, PORTAL_MINUTES};
use crate::error::Error;
use crate::state::AppState;

/// The portal session's cookie (path `/portal`).
pub const PORTAL_COOKIE: &str = "tg_portal";
/// Carries a new key's secret across the redirect after `POST /portal/keys`, once.
const NEW_KEY_COOKIE: &str = "tg_portal_new_key";
const NEW_KEY_SECONDS: i64 = 120;

struct Visitor {
    session: WebSessionRecord,
    customer: CustomerId,
}

async fn visitor(state: &AppState, headers: &HeaderMap) -> Result<Visitor, Response> {
    let expired = || {
        page(
            StatusCode::UNAUTHORIZED,
            "message.html",
            json!({"title": "Your session has ended", "message": "Open the portal again from the application you came from, or ask for a sign-in link by email on the sign-in page."}),
        )
    };
    let Some(token) = cookie(headers, PORTAL_COOKIE) else {
        return Err(expired());
    };
    match app::customer_session(&state.engine, token).await {
        // On a custom domain, only its workspace's sessions: a partner's domain never shows
        // another workspace's portal.
        Ok(Some((session, _)))
            if super::public::domain_workspace(state, headers)
                .await
                .is_some_and(|w| w != session.workspace) =>
        {
            Err(expired())
        }
        Ok(Some((session, customer))) => Ok(Visitor { session, customer }),
        Ok(None) => Err(expired()),
        Err(e) => Err(error_page(&e)),
    }
}

/// The portal's brand: the seller profile's `brand`, else its legal name, else a neutral title.
pub(super) async fn brand(state: &AppState, workspace: &str) -> Value {
    let profile =
        crate::billing::profiles::seller_profile(state.engine.store().as_ref(), workspace)
            .await
            .ok()
            .flatten();
    let brand = profile.as_ref().and_then(|p| p.brand.clone());
    let name = brand
        .as_ref()
        .map(|b| b.name.clone())
        .or_else(|| profile.as_ref().map(|p| p.legal_name.clone()))
        .unwrap_or_else(|| "Customer portal".to_owned());
    json!({
        "name": name,
        "logo_url": brand.as_ref().and_then(|b| b.logo_url.clone()),
        "has_color": brand.as_ref().is_some_and(|b| b.color.is_some()),
    })
}

/// `GET /portal/enter/{token}`: uses the link once and sets the portal cookie. Answers a page
/// that links on to `/portal` rather than a redirect: the link arrives from another site, and a
/// `SameSite=Strict` cookie is only sent once the browser navigates from this one.
pub async fn enter(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Response {
    // A custom domain opens only its own workspace's links (checked before the link is used).
    if let Some(domain_ws) = super::public::domain_workspace(&state, &headers).await {
        let link = crate::app::users::sessions::live_session(
            &state.engine,
            &token,
            crate::app::users::kinds::PORTAL_LINK,
        )
        .await;
        if !matches!(&link, Ok(Some(l)) if l.workspace == domain_ws) {
            return page(
                StatusCode::GONE,
                "message.html",
                json!({"title": "This link cannot be used", "message": "this portal link is unknown, expired or used: ask for a new one"}),
            );
        }
    }
    match app::enter(&state.engine, &token).await {
        Ok((token, session)) => {
            let brand = brand(&state, &session.workspace).await;
            let mut response = page(StatusCode::OK, "portal_enter.html", json!({"brand": brand}));
            let (name, value) = set_cookie(
                &headers,
                PORTAL_COOKIE,
                &token,
                "/portal",
                PORTAL_MINUTES * 60,
            );
            response.headers_mut().append(name, value);
            response
        }
        Err(e) => page(
            crate::api::error::status_of(e.kind),
            "message.html",
            json!({"title": "This link cannot be used", "message": e.detail}),
        ),
    }
}

/// `GET /portal/brand.css`: the brand's colour as a CSS variable (a stylesheet of our own, so
/// the pages' content security policy needs no inline style).
pub async fn brand_css(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let mut css = String::new();
    if let Ok(v) = visitor(&state, &headers).await {
        let profile = crate::billing::profiles::seller_profile(
            state.engine.store().as_ref(),
            &v.session.workspace,
        )
        .await
        .ok()
        .flatten();
        // The colour was checked to be #rrggbb when the profile was stored.
        if let Some(color) = profile.and_then(|p| p.brand).and_then(|b| b.color) {
            css = format!(":root {{ --brand: {color}; }}\n");
        }
    }
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        css,
    )
        .into_response()
}

/// `GET /portal`.
pub async fn home(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let v = match visitor(&state, &headers).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    // A key created just before (see `create_key`): shown once, its cookie cleared.
    let secret = cookie(&headers, NEW_KEY_COOKIE)
        .filter(|s| {
            s.starts_with("tg_") && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        })
        .map(str::to_owned);
    let clear = secret.is_some();
    let mut response = render_home(&state, &v, secret).await;
    if clear {
        let (name, value) = set_cookie(&headers, NEW_KEY_COOKIE, "", "/portal", 0);
        response.headers_mut().append(name, value);
    }
    response
}

async fn render_home(state: &AppState, v: &Visitor, new_secret: Option<String>) -> Response {
    let workspace = v.session.workspace.as_str();
    let context = match customer_context(state, workspace, v.customer.as_str()).await {
        Ok(c) => c,
        Err(e) => return error_page(&e),
    };
    let plans = match plan_choices(state, workspace, v.customer.as_str()).await {
        Ok(p) => p,
        Err(e) => return error_page(&e),
    };
    let brand = brand(state, workspace).await;
    let mut context = context;
    if let Some(obj) = context.as_object_mut() {
        obj.insert("brand".into(), brand);
        obj.insert("plans".into(), Value::Array(plans));
        obj.insert("csrf".into(), json!(v.session.csrf));
        obj.insert("new_secret".into(), json!(new_secret));
    }
    page(StatusCode::OK, "portal.html", context)
}

/// The catalog's plans a customer may move to, with their prices (the current one marked).
async fn plan_choices(
    state: &AppState,
    workspace: &str,
    customer: &str,
) -> Result<Vec<Value>, Error> {
    let store = state.engine.store();
    let ws = WorkspaceId::from(workspace);
    let subs = store
        .list_subscriptions(&ws, &CustomerId::from(customer))
        .await?;
    let current = subs.first().map(|s| s.plan.clone());
    let Some(latest) = store.latest_catalog(&ws).await? else {
        return Ok(Vec::new());
    };
    let catalog = state.engine.catalog(workspace, latest.version).await?;
    let currency = catalog.catalog.currency;
    Ok(catalog
        .catalog
        .plans
        .iter()
        .filter(|(_, p)| p.upgrade_target || p.base.is_some())
        .map(|(key, p)| {
            let price = p.base.as_ref().map_or_else(
                || "usage only".to_owned(),
                |b| format!("{} {} / {}", b.amount, currency.code(), interval(b)),
            );
            json!({
                "key": key,
                "name": p.name.clone().unwrap_or_else(|| key.clone()),
                "price": price,
                "current": current.as_deref() == Some(key.as_str()),
            })
        })
        .collect())
}

#[derive(Deserialize)]
pub struct PlanForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    plan: String,
}

#[derive(Deserialize)]
pub struct KeyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
}

/// The refusal of a form whose CSRF token is not the session's, or `None` when it is.
fn refuse_csrf(v: &Visitor, sent: &str) -> Option<Response> {
    (!same_secret(&v.session.csrf, sent)).then(|| {
        error_page(
            &Error::forbidden("the form's security token is missing or stale: reload the page")
                .with_code(tollgate_core::code::Code::CsrfTokenInvalid),
        )
    })
}

/// `POST /portal/plan`: moves the customer's subscription to another plan of the catalog
/// (upgrades at once, downgrades at the period end, as the API's change does).
pub async fn change_plan(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<PlanForm>,
) -> Response {
    let v = match visitor(&state, &headers).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    if let Some(r) = refuse_csrf(&v, &form.csrf) {
        return r;
    }
    let workspace = v.session.workspace.clone();
    let subs = match state
        .engine
        .store()
        .list_subscriptions(&WorkspaceId::from(workspace.as_str()), &v.customer)
        .await
    {
        Ok(s) => s,
        Err(e) => return error_page(&e.into()),
    };
    let Some(sub) = subs.first() else {
        return error_page(&Error::not_found("subscription", v.customer.as_str()));
    };
    let changed = crate::app::subscriptions::change_plan(
        &state.engine,
        crate::app::subscriptions::ChangePlan {
            workspace,
            customer: v.customer.as_str().to_owned(),
            subscription: sub.id.clone(),
            plan: form.plan,
            addons: None,
            immediately: false,
        },
    )
    .await;
    match changed {
        Ok(_) => see_other("/portal"),
        Err(e) => error_page(&e),
    }
}

/// `POST /portal/keys`: a new API key, its secret shown once on the page that answers.
pub async fn create_key(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<KeyForm>,
) -> Response {
    let v = match visitor(&state, &headers).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    if let Some(r) = refuse_csrf(&v, &form.csrf) {
        return r;
    }
    let name = Some(form.name.trim().to_owned()).filter(|n| !n.is_empty());
    match crate::app::customers::create_key(
        &state.engine,
        &v.session.workspace,
        v.customer.as_str(),
        name,
    )
    .await
    {
        // Post/redirect/get: a refresh of the page that follows creates nothing. The secret
        // crosses the redirect in a short-lived cookie of its own, read (and cleared) once.
        Ok(key) => {
            let mut response = see_other("/portal");
            let (name, value) = set_cookie(
                &headers,
                NEW_KEY_COOKIE,
                &key.secret,
                "/portal",
                NEW_KEY_SECONDS,
            );
            response.headers_mut().append(name, value);
            response
        }
        Err(e) => error_page(&e),
    }
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

/// `POST /portal/keys/{id}/revoke`.
pub async fn revoke_key(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(key): Path<String>,
    Form(form): Form<CsrfOnly>,
) -> Response {
    let v = match visitor(&state, &headers).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    if let Some(r) = refuse_csrf(&v, &form.csrf) {
        return r;
    }
    match crate::app::customers::revoke_key(
        &state.engine,
        &WorkspaceId::from(v.session.workspace.as_str()),
        &v.customer,
        &KeyId::from(key),
    )
    .await
    {
        Ok(_) => see_other("/portal"),
        Err(e) => error_page(&e),
    }
}

/// `GET /portal/invoices/{id}/pdf`: the customer's own invoices only.
pub async fn invoice_pdf(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let v = match visitor(&state, &headers).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    super::admin::pdf(&state, &v.session.workspace, &id, Some(v.customer.as_str())).await
}
