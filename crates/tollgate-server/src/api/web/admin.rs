//! The operators' dashboard under `/admin`: sign-in, home (MRR), customers, invoices (pay and
//! void for the `billing` and `admin` roles), analytics. Every form carries the session's CSRF
//! token; a `read_only` operator sees no action buttons and is refused them if it posts anyway.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{Value, json};
use tollgate_core::analytics::{MrrMonth, month_label, month_of};
use tollgate_core::code::Code;
use tollgate_core::ids::{CustomerId, WorkspaceId};
use tollgate_store::billing::InvoiceRecord;

use super::{chart, cookie, money, page, same_secret, see_other, set_cookie};
use crate::app::analytics::mrr as analytics;
use crate::app::users::sessions::{self, Operator};
use crate::app::users::sign_in::{self, SESSION_HOURS};
use crate::auth::generate_secret;
use crate::billing::InvoiceOut;
use crate::error::Error;
use crate::state::AppState;

/// The operator's session cookie (path `/admin`).
pub const SESSION_COOKIE: &str = "tg_admin";
/// The sign-in form's CSRF cookie (double submit: no session exists yet).
const LOGIN_CSRF_COOKIE: &str = "tg_login_csrf";
/// At most this many rows in a list page.
const LIST_LIMIT: usize = 200;

/// A page for a signed-in operator, or the way to the sign-in page.
pub(super) async fn signed_in(state: &AppState, headers: &HeaderMap) -> Result<Operator, Response> {
    let Some(token) = cookie(headers, SESSION_COOKIE) else {
        return Err(see_other("/admin/login"));
    };
    match sessions::operator(&state.engine, token).await {
        Ok(Some(operator)) => Ok(operator),
        Ok(None) => Err(see_other("/admin/login")),
        Err(e) => Err(error_page(&e)),
    }
}

/// An error as a page: the status of its kind, its detail (never an internal cause).
pub fn error_page(e: &Error) -> Response {
    if let Some(cause) = &e.cause {
        tracing::error!(code = %e.code, cause, "a page failed");
    }
    let api = crate::api::error::ApiError::from(Error::new(e.kind, e.code, e.detail.clone()));
    page(
        api.status,
        "message.html",
        json!({"title": "Something went wrong", "message": api.detail, "back": "/admin"}),
    )
}

pub(super) fn base(operator: &Operator, nav: &str) -> Value {
    json!({
        "nav": nav,
        "user": {"email": operator.user.email, "role": operator.role.as_str()},
        "csrf": operator.session.csrf,
        "can_bill": operator.role.may_bill(),
        "is_admin": operator.role == crate::app::users::Role::Admin,
        "workspace": operator.user.workspace,
    })
}

pub(super) fn merge(mut a: Value, b: Value) -> Value {
    if let (Some(a), Value::Object(b)) = (a.as_object_mut(), b) {
        a.extend(b);
    }
    a
}

/// The refusal of a form whose CSRF token is not the session's, or `None` when it is.
pub(super) fn refuse_csrf(operator: &Operator, sent: &str) -> Option<Response> {
    (!same_secret(&operator.session.csrf, sent)).then(|| {
        error_page(
            &Error::forbidden(
                "the form's security token is missing or stale: reload the page and try again",
            )
            .with_code(Code::CsrfTokenInvalid),
        )
    })
}

// ---- sign-in ----

/// `GET /admin/login`.
pub async fn login_form(headers: HeaderMap) -> Response {
    login_page(&headers, StatusCode::OK, None, "", "")
}

fn login_page(
    headers: &HeaderMap,
    status: StatusCode,
    error: Option<&str>,
    workspace: &str,
    email: &str,
) -> Response {
    let csrf = generate_secret(sign_in::CSRF_PREFIX);
    let mut response = page(
        status,
        "login.html",
        json!({"csrf": csrf, "error": error, "workspace": workspace, "email": email}),
    );
    let (name, value) = set_cookie(headers, LOGIN_CSRF_COOKIE, &csrf, "/admin", 3600);
    response.headers_mut().append(name, value);
    response
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    workspace: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
}

/// `POST /admin/login`.
pub async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let expected = cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or_default();
    if expected.is_empty() || !same_secret(expected, &form.csrf) {
        return login_page(
            &headers,
            StatusCode::FORBIDDEN,
            Some("The form expired: please sign in again."),
            &form.workspace,
            &form.email,
        );
    }
    let outcome = sign_in::sign_in(
        &state.engine,
        &state.sign_in_throttle,
        sign_in::SignIn {
            workspace: form.workspace.clone(),
            email: form.email.clone(),
            password: form.password,
        },
    )
    .await;
    match outcome {
        Ok(open) => {
            let mut response = see_other("/admin");
            let (name, value) = set_cookie(
                &headers,
                SESSION_COOKIE,
                &open.token,
                "/admin",
                SESSION_HOURS * 3600,
            );
            response.headers_mut().append(name, value);
            let (name, value) = set_cookie(&headers, LOGIN_CSRF_COOKIE, "", "/admin", 0);
            response.headers_mut().append(name, value);
            response
        }
        Err(e) if e.code == Code::TooManyAttempts => login_page(
            &headers,
            StatusCode::TOO_MANY_REQUESTS,
            Some(&e.detail),
            &form.workspace,
            &form.email,
        ),
        Err(e) if e.code == Code::InvalidCredentials => login_page(
            &headers,
            StatusCode::UNAUTHORIZED,
            Some("The workspace, email or password is wrong."),
            &form.workspace,
            &form.email,
        ),
        Err(e) => error_page(&e),
    }
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /admin/logout`.
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    let operator = match signed_in(&state, &headers).await {
        Ok(o) => o,
        Err(r) => return r,
    };
    if let Some(r) = refuse_csrf(&operator, &form.csrf) {
        return r;
    }
    if let Some(token) = cookie(&headers, SESSION_COOKIE)
        && let Err(e) = sessions::sign_out(&state.engine, token).await
    {
        return error_page(&e);
    }
    let mut response = see_other("/admin/login");
    let (name, value) = set_cookie(&headers, SESSION_COOKIE, "", "/admin", 0);
    response.headers_mut().append(name, value);
    response
}

// ---- home and analytics ----

/// The last `n` months up to this one, as `YYYY-MM` (from, to).
pub(super) fn recent_months(now: Timestamp, n: i32) -> (String, String) {
    let this = month_of(now);
    let first = this
        .checked_sub(jiff::Span::new().months(n - 1))
        .unwrap_or(this);
    (month_label(first), month_label(this))
}

/// A report's months as template rows, amounts formatted.
fn month_rows(report: &analytics::MrrReport) -> Vec<Value> {
    currency_rows(report.currency, &report.months)
}

/// The months of one currency as template rows.
fn currency_rows(c: tollgate_core::money::Currency, months: &[MrrMonth]) -> Vec<Value> {
    months
        .iter()
        .map(|m| {
            json!({
                "month": m.month,
                "start": money(m.start_minor, c),
                "new": money(m.new_minor, c),
                "expansion": money(m.expansion_minor, c),
                "contraction": money(m.contraction_minor, c),
                "churn": money(m.churn_minor, c),
                "reactivation": money(m.reactivation_minor, c),
                "end": money(m.end_minor, c),
                "arr": money(m.arr_minor, c),
                // Counts as text: serde_json's exact numbers reach templates as objects.
                "customers": m.customers_end.to_string(),
                "new_customers": m.new_customers.to_string(),
                "churned_customers": m.churned_customers.to_string(),
                "arpu": money(m.arpu_minor, c),
            })
        })
        .collect()
}

/// `GET /admin`.
pub async fn home(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let operator = match signed_in(&state, &headers).await {
        Ok(o) => o,
        Err(r) => return r,
    };
    let (from, to) = recent_months(state.engine.now(), 6);
    let report = match analytics::mrr(
        &state.engine,
        &operator.user.workspace,
        analytics::MrrQuery { from, to },
    )
    .await
    {
        Ok(r) => r,
        Err(e) => return error_page(&e),
    };
    let rows = month_rows(&report);
    let current = rows.last().cloned().unwrap_or(Value::Null);
    page(
        StatusCode::OK,
        "home.html",
        merge(
            base(&operator, "home"),
            json!({"current": current, "months": rows}),
        ),
    )
}

#[derive(Deserialize)]
pub struct AnalyticsQuery {
    pub(super) from: Option<String>,
    pub(super) to: Option<String>,
}

impl AnalyticsQuery {
    /// The months asked for, the last 12 by default (an empty field counts as not given).
    pub(super) fn months(self, now: Timestamp) -> (String, String) {
        let (default_from, default_to) = recent_months(now, 12);
        (
            self.from.filter(|f| !f.is_empty()).unwrap_or(default_from),
            self.to.filter(|t| !t.is_empty()).unwrap_or(default_to),
        )
    }
}

/// `GET /admin/analytics?from=YYYY-MM&to=YYYY-MM` (the last 12 months by default).
pub async fn analytics_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<AnalyticsQuery>,
) -> Response {
    let operator = match signed_in(&state, &headers).await {
        Ok(o) => o,
        Err(r) => return r,
    };
    let (from, to) = query.months(state.engine.now());
    let report = match analytics::mrr(
        &state.engine,
        &operator.user.workspace,
        analytics::MrrQuery {
            from: from.clone(),
            to: to.clone(),
        },
    )
    .await
    {
        Ok(r) => r,
        Err(e) => return error_page(&e),
    };
    let bars: Vec<chart::Bar> = report
        .months
        .iter()
        .map(|m| chart::Bar {
            label: m.month.clone(),
            value: m.end_minor,
            shown: money(m.end_minor, report.currency),
        })
        .collect();
    let svg = chart::bars("MRR at the close of each month", &bars);
    page(
        StatusCode::OK,
        "analytics.html",
        merge(
            base(&operator, "analytics"),
            json!({
                "from": from,
                "to": to,
                "months": month_rows(&report),
                "chart": svg,
                // The same figures for the uPlot chart drawn over the SVG when scripts run.
                "chart_months": serde_json::to_string(&report.months.iter().map(|m| m.month.as_str()).collect::<Vec<_>>()).unwrap_or_default(),
                "chart_values": serde_json::to_string(&report.months.iter().map(|m| m.end_minor).collect::<Vec<_>>()).unwrap_or_default(),
                "currency": report.currency.code(),
                // Customers billed in other currencies: their own tables, never added in.
                "other_currencies": report.currencies.iter().skip(1).map(|(c, months)| json!({
                    "currency": c.code(),
                    "months": currency_rows(*c, months),
                })).collect::<Vec<_>>(),
                "csv": format!("/admin/analytics.csv?from={from}&to={to}"),
            }),
        ),
    )
}

/// `GET /admin/analytics.csv`: the same CSV as the API's.
pub async fn analytics_csv(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<AnalyticsQuery>,
) -> Response {
    let operator = match signed_in(&state, &headers).await {
        Ok(o) => o,
        Err(r) => return r,
    };
    let report = analytics::mrr(
        &state.engine,
        &operator.user.workspace,
        analytics::MrrQuery {
            from: query.from.unwrap_or_default(),
            to: query.to.unwrap_or_default(),
        },
    )
    .await;
    match report {
        Ok(report) => (
            [
                (axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    axum::http::header::CONTENT_DISPOSITION,
                    "attachment; filename=\"mrr.csv\"",
                ),
            ],
            crate::api::analytics::csv(&report),
        )
            .into_response(),
        Err(e) => error_page(&e),
    }
}

// ---- customers ----

#[derive(Deserialize)]
pub struct SearchQuery {
    q: Option<String>,
}

/// `GET /admin/customers?q=`: search by id, name or email (contains, any case).
pub async fn customers(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<SearchQuery>,
) -> Response {
    let operator = match signed_in(&state, &headers).await {
        Ok(o) => o,
        Err(r) => return r,
    };
    let ws = WorkspaceId::from(operator.user.workspace.as_str());
    let all = match state.engine.store().list_customers(&ws).await {
        Ok(all) => all,
        Err(e) => return error_page(&e.into()),
    };
    let q = query.q.unwrap_or_default();
    let needle = q.trim().to_lowercase();
    let matches: Vec<Value> = all
        .iter()
        .filter(|c| {
            needle.is_empty()
                || c.id.to_lowercase().contains(&needle)
                || c.name
                    .as_deref()
                    .is_some_and(|n| n.to_lowercase().contains(&needle))
                || c.email
                    .as_deref()
                    .is_some_and(|n| n.to_lowercase().contains(&needle))
        })
        .take(LIST_LIMIT)
        .map(|c| {
            json!({
                "id": c.id, "name": c.name, "email": c.email, "suspended": c.suspended,
                "archived": c.archived_at.is_some(), "created_at": c.created_at.to_string(),
            })
        })
        .collect();
    page(
        StatusCode::OK,
        "customers.html",
        merge(
            base(&operator, "customers"),
            json!({
                "q": q,
                "truncated": matches.len() == LIST_LIMIT,
                "shown": matches.len().to_string(),
                "customers": matches,
                "total": all.len().to_string(),
                "limit": LIST_LIMIT.to_string(),
            }),
        ),
    )
}

fn invoice_row(invoice: &InvoiceRecord) -> Value {
    let c = super::currency_of(&invoice.currency);
    json!({
        "id": invoice.id,
        "number": crate::billing::documents::invoice_number(invoice),
        "customer": invoice.customer,
        "status": invoice.status.as_str(),
        "total": money(invoice.total_minor, c),
        "amount_due": money(invoice.amount_due_minor, c),
        "created_at": invoice.created_at.to_string(),
        "period_start": invoice.period_start.map(|t| t.to_string()),
        "period_end": invoice.period_end.map(|t| t.to_string()),
    })
}

/// `GET /admin/customers/{id}`: plan, usage against limits, invoices, keys.
pub async fn customer(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let operator = match signed_in(&state, &headers).await {
        Ok(o) => o,
        Err(r) => return r,
    };
    let workspace = operator.user.workspace.clone();
    match customer_context(&state, &workspace, &id).await {
        Ok(context) => page(
            StatusCode::OK,
            "customer.html",
            merge(base(&operator, "customers"), context),
        ),
        Err(e) => error_page(&e),
    }
}

/// What the customer pages (the dashboard's and the portal) show of one customer.
pub async fn customer_context(state: &AppState, workspace: &str, id: &str) -> Result<Value, Error> {
    let store = state.engine.store();
    let ws = WorkspaceId::from(workspace);
    let cus = CustomerId::from(id);
    let customer = store
        .get_customer(&ws, id)
        .await?
        .ok_or_else(|| Error::not_found("customer", id))?;
    let subscriptions = store.list_subscriptions(&ws, &cus).await?;
    let mut subs = Vec::new();
    for s in &subscriptions {
        let catalog = state.engine.catalog(workspace, s.catalog_version).await?;
        let plan = catalog.catalog.plans.get(&s.plan);
        let name = plan
            .and_then(|p| p.name.clone())
            .unwrap_or_else(|| s.plan.clone());
        let price = plan.and_then(|p| p.base.as_ref()).map(|b| {
            format!(
                "{} {} / {}",
                b.amount,
                catalog.catalog.currency.code(),
                interval(b)
            )
        });
        subs.push(json!({
            "id": s.id, "plan": s.plan, "plan_name": name, "price": price,
            "status": s.status.as_str(), "started_at": s.started_at.to_string(),
            "trial_end": s.trial_end.map(|t| t.to_string()),
            "ends_at": s.ends_at.map(|t| t.to_string()),
        }));
    }
    // No usage for a customer without a live subscription: an empty table, not an error.
    let usage = match state.engine.usage(workspace, id, None, None).await {
        Ok(report) => usage_rows(&report),
        Err(_) => Vec::new(),
    };
    let invoices: Vec<Value> = store
        .list_invoices(&ws, &cus)
        .await?
        .iter()
        .rev()
        .map(invoice_row)
        .collect();
    let keys: Vec<Value> = store
        .list_api_keys(&ws, &cus)
        .await?
        .iter()
        .map(|k| {
            json!({
                "id": k.id, "name": k.name, "prefix": k.prefix,
                "last4": k.prefix.chars().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect::<String>(),
                "created_at": k.created_at.to_string(),
                "revoked_at": k.revoked_at.map(|t| t.to_string()),
            })
        })
        .collect();
    let timeline = subscription_timeline(state, &ws, id).await?;
    Ok(json!({
        "timeline": timeline,
        "customer": {
            "id": customer.id, "name": customer.name, "email": customer.email,
            "suspended": customer.suspended, "archived": customer.archived_at.is_some(),
        },
        "subscriptions": subs,
        "usage": usage,
        "invoices": invoices,
        "keys": keys,
    }))
}

/// The customer's subscription events (created, plan changes, trial, pause, cancellation...),
/// oldest first, from the outbox: the same domain events webhooks deliver. At most 200.
async fn subscription_timeline(
    state: &AppState,
    ws: &WorkspaceId,
    customer: &str,
) -> Result<Vec<Value>, Error> {
    let filter = tollgate_store::outbox::OutboxFilter {
        event_type: None,
        customer: Some(customer.to_owned()),
        starting_after: None,
        limit: 1000,
    };
    let events = state.engine.store().list_domain_events(ws, &filter).await?;
    let mut rows: Vec<(Timestamp, Value)> = events
        .iter()
        .filter(|e| e.event_type.starts_with("subscription."))
        .map(|e| {
            let field = |k: &str| e.data.get(k).and_then(|v| v.as_str()).map(str::to_owned);
            (
                e.occurred_at,
                json!({
                    "at": e.occurred_at.strftime("%Y-%m-%d %H:%M UTC").to_string(),
                    "type": e.event_type.trim_start_matches("subscription."),
                    "subscription": field("subscription"),
                    "plan": field("plan"),
                    "status": field("status"),
                }),
            )
        })
        .collect();
    rows.sort_by_key(|(at, _)| *at);
    Ok(rows.into_iter().take(200).map(|(_, v)| v).collect())
}

pub fn interval(base: &tollgate_core::catalog::BasePrice) -> String {
    let unit = match base.interval {
        tollgate_core::catalog::Interval::Month => "month",
        tollgate_core::catalog::Interval::Year => "year",
        tollgate_core::catalog::Interval::Quarter => "quarter",
        tollgate_core::catalog::Interval::Week => "week",
        tollgate_core::catalog::Interval::Day => "day",
    };
    if base.every > 1 {
        format!("{} {unit}s", base.every)
    } else {
        unit.to_owned()
    }
}

/// Usage rows: meter, used, limit, remaining, resets at.
pub fn usage_rows(report: &crate::engine::UsageReport) -> Vec<Value> {
    report
        .meters
        .iter()
        .map(|m| {
            let limit = match &m.limit {
                Some(tollgate_core::catalog::Limit::Finite(d)) => d.normalize().to_string(),
                Some(tollgate_core::catalog::Limit::Unlimited) => "unlimited".to_owned(),
                None => "none".to_owned(),
            };
            json!({
                "meter": m.meter,
                "used": m.used.normalize().to_string(),
                "limit": limit,
                "limit_kind": m.limit_kind,
                "remaining": m.remaining.map(|r| r.normalize().to_string()),
                "resets_at": m.resets_at.to_string(),
            })
        })
        .collect()
}

// ---- invoices ----

/// `GET /admin/invoices`: every customer's invoices, newest first.
pub async fn invoices(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let operator = match signed_in(&state, &headers).await {
        Ok(o) => o,
        Err(r) => return r,
    };
    let ws = WorkspaceId::from(operator.user.workspace.as_str());
    let store = state.engine.store();
    let customers = match store.list_customers(&ws).await {
        Ok(c) => c,
        Err(e) => return error_page(&e.into()),
    };
    let mut all = Vec::new();
    for c in customers {
        match store
            .list_invoices(&ws, &CustomerId::from(c.id.as_str()))
            .await
        {
            Ok(list) => all.extend(list),
            Err(e) => return error_page(&e.into()),
        }
    }
    all.sort_by_key(|i| std::cmp::Reverse(i.number));
    let rows: Vec<Value> = all.iter().take(LIST_LIMIT).map(invoice_row).collect();
    page(
        StatusCode::OK,
        "invoices.html",
        merge(
            base(&operator, "invoices"),
            json!({"shown": rows.len().to_string(), "invoices": rows, "total": all.len().to_string()}),
        ),
    )
}

async fn load_invoice(state: &AppState, workspace: &str, id: &str) -> Result<InvoiceRecord, Error> {
    state
        .engine
        .store()
        .get_invoice(&WorkspaceId::from(workspace), id)
        .await?
        .ok_or_else(|| Error::not_found("invoice", id))
}

#[derive(Deserialize, Default)]
pub struct InvoiceQuery {
    /// The credit note just issued (after the form's redirect).
    credit_note: Option<String>,
}

/// `GET /admin/invoices/{id}`.
pub async fn invoice(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): Query<InvoiceQuery>,
) -> Response {
    let operator = match signed_in(&state, &headers).await {
        Ok(o) => o,
        Err(r) => return r,
    };
    let issued = query.credit_note.filter(|c| !c.is_empty());
    invoice_view(
        &state,
        &operator,
        &id,
        StatusCode::OK,
        issued,
        CreditNoteForm::default(),
        None,
    )
    .await
}

/// The invoice page: lines and totals, its credit notes, and the forms the role may use; a
/// refused credit note comes back with its message and what was typed.
async fn invoice_view(
    state: &AppState,
    operator: &Operator,
    id: &str,
    status: StatusCode,
    issued: Option<String>,
    form: CreditNoteForm,
    error: Option<String>,
) -> Response {
    let invoice = match load_invoice(state, &operator.user.workspace, id).await {
        Ok(i) => i,
        Err(e) => return error_page(&e),
    };
    let credited = match crate::app::invoices::credited(&state.engine, &invoice).await {
        Ok(c) => c,
        Err(e) => return error_page(&e),
    };
    let ws = WorkspaceId::from(operator.user.workspace.as_str());
    let notes = match state
        .engine
        .store()
        .list_credit_notes(&ws, &invoice.id)
        .await
    {
        Ok(n) => n,
        Err(e) => return error_page(&e.into()),
    };
    let c = super::currency_of(&invoice.currency);
    let notes: Vec<Value> = notes
        .iter()
        .map(|n| {
            json!({
                "id": n.id,
                "number": crate::billing::documents::credit_note_number(&invoice, n),
                "amount": money(n.amount_minor, c),
                "method": n.method.as_str(),
                "reason": n.reason,
                "created_at": n.created_at.strftime("%Y-%m-%d %H:%M UTC").to_string(),
            })
        })
        .collect();
    let issued = issued.and_then(|i| notes.iter().find(|n| n["id"] == i.as_str()).cloned());
    let out = InvoiceOut::from_record(&invoice, credited);
    let open = matches!(invoice.status.as_str(), "open" | "uncollectible");
    let creditable = matches!(invoice.status.as_str(), "open" | "paid" | "uncollectible");
    let method = if form.method.is_empty() {
        if invoice.status.as_str() == "paid" {
            "refund"
        } else {
            "credit"
        }
    } else {
        form.method.as_str()
    };
    page(
        status,
        "invoice.html",
        merge(
            base(operator, "invoices"),
            json!({
                "invoice": out, "summary": invoice_row(&invoice), "actionable": open,
                "creditable": creditable, "credit_notes": notes, "issued": issued,
                "form": {"amount": form.amount, "reason": form.reason, "method": method,
                         "outside_refund_window": form.outside_refund_window.is_some()},
                "credit_error": error,
            }),
        ),
    )
}

#[derive(Deserialize, Default)]
pub struct CreditNoteForm {
    #[serde(default)]
    csrf: String,
    /// Major units; empty: everything still creditable.
    #[serde(default)]
    amount: String,
    #[serde(default)]
    reason: String,
    /// `refund` or `credit`.
    #[serde(default)]
    method: String,
    outside_refund_window: Option<String>,
}

/// `POST /admin/invoices/{id}/credit_notes`: a credit note through the use case of
/// `POST /v1/invoices/{id}/credit_notes` (`billing` and `admin` only). A refusal re-renders the
/// invoice with its message and the form as typed; success redirects to the invoice.
pub async fn invoice_credit_note(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<CreditNoteForm>,
) -> Response {
    let operator = match signed_in(&state, &headers).await {
        Ok(o) => o,
        Err(r) => return r,
    };
    if let Some(r) = refuse_csrf(&operator, &form.csrf) {
        return r;
    }
    if let Err(e) = operator.role.require_billing() {
        return error_page(&e);
    }
    let amount = match form.amount.trim() {
        "" => Ok(None),
        text => text.parse::<rust_decimal::Decimal>().map(Some).map_err(|_| {
            Error::invalid(
                Code::InvalidAmount,
                format!("the amount {text:?} is not a number (write 12.50, or leave it empty for everything still creditable)"),
            )
        }),
    };
    let method = match form.method.as_str() {
        "refund" => Ok(tollgate_store::billing::CreditNoteMethod::Refund),
        "credit" => Ok(tollgate_store::billing::CreditNoteMethod::Credit),
        _ => Err(Error::invalid(
            Code::InvalidRequest,
            "choose a refund or a credit to the customer's balance",
        )),
    };
    let reason = form.reason.trim();
    let issued = match (amount, method) {
        (Ok(amount), Ok(method)) => {
            crate::app::invoices::issue_credit_note(
                &state.engine,
                crate::app::invoices::IssueCreditNote {
                    workspace: operator.user.workspace.clone(),
                    invoice: id.clone(),
                    amount,
                    reason: (!reason.is_empty()).then(|| reason.to_owned()),
                    outside_refund_window: form.outside_refund_window.is_some(),
                    method,
                },
            )
            .await
        }
        (Err(e), _) | (_, Err(e)) => Err(e),
    };
    match issued {
        Ok((note, _)) => see_other(&format!(
            "/admin/invoices/{}?credit_note={}",
            super::urlencode(&id),
            super::urlencode(&note.id)
        )),
        Err(e) => {
            let api =
                crate::api::error::ApiError::from(Error::new(e.kind, e.code, e.detail.clone()));
            if api.status.is_server_error() || api.status == StatusCode::NOT_FOUND {
                return error_page(&e);
            }
            invoice_view(
                &state,
                &operator,
                &id,
                api.status,
                None,
                form,
                Some(e.detail),
            )
            .await
        }
    }
}

/// `GET /admin/invoices/{id}/pdf`.
pub async fn invoice_pdf(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let operator = match signed_in(&state, &headers).await {
        Ok(o) => o,
        Err(r) => return r,
    };
    pdf(&state, &operator.user.workspace, &id, None).await
}

/// An invoice of `workspace` (of `customer` when given) as a PDF download.
pub async fn pdf(state: &AppState, workspace: &str, id: &str, customer: Option<&str>) -> Response {
    let invoice = match load_invoice(state, workspace, id).await {
        Ok(i) if customer.is_none_or(|c| c == i.customer) => i,
        Ok(_) => return error_page(&Error::not_found("invoice", id)),
        Err(e) => return error_page(&e),
    };
    let credited = match crate::app::invoices::credited(&state.engine, &invoice).await {
        Ok(c) => c,
        Err(e) => return error_page(&e),
    };
    match crate::api::invoices::invoice_pdf_response(state, &invoice, credited).await {
        Ok(mut response) => {
            let name = format!(
                "attachment; filename=\"{}.pdf\"",
                crate::billing::documents::invoice_number(&invoice)
            );
            if let Ok(value) = axum::http::HeaderValue::from_str(&name) {
                response
                    .headers_mut()
                    .insert(axum::http::header::CONTENT_DISPOSITION, value);
            }
            response
        }
        Err(e) => e.into_response(),
    }
}

/// `POST /admin/invoices/{id}/pay` and `/void`: the `billing` and `admin` roles only.
pub async fn invoice_action(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    Form(form): Form<CsrfForm>,
) -> Response {
    let operator = match signed_in(&state, &headers).await {
        Ok(o) => o,
        Err(r) => return r,
    };
    if let Some(r) = refuse_csrf(&operator, &form.csrf) {
        return r;
    }
    if let Err(e) = operator.role.require_billing() {
        return error_page(&e);
    }
    let workspace = operator.user.workspace.as_str();
    let done = match action.as_str() {
        "pay" => crate::app::invoices::pay(&state.engine, workspace, &id).await,
        "void" => crate::app::invoices::void(&state.engine, workspace, &id).await,
        _ => Err(Error::not_found("action", &action)),
    };
    match done {
        Ok(_) => see_other(&format!("/admin/invoices/{id}")),
        Err(e) => error_page(&e),
    }
}

// ---- public pages ----

/// `GET /admin/public`: whether the pricing table and hosted signup are shown, their addresses
/// and the embed snippet, and the workspace's custom domains.
pub async fn public_settings_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let operator = match signed_in(&state, &headers).await {
        Ok(o) => o,
        Err(r) => return r,
    };
    let workspace = operator.user.workspace.clone();
    let enabled = match crate::app::public::settings::enabled(&state.engine, &workspace).await {
        Ok(e) => e,
        Err(e) => return error_page(&e),
    };
    let domains = match crate::app::public::domains::list(&state.engine, &workspace).await {
        Ok(d) => d,
        Err(e) => return error_page(&e),
    };
    let w = super::urlencode(&workspace);
    page(
        StatusCode::OK,
        "public_settings.html",
        merge(
            base(&operator, "public"),
            json!({
                "enabled": enabled,
                "is_admin": operator.role == crate::app::users::Role::Admin,
                "pricing": format!("/pricing/{w}"),
                "embed": format!("/pricing/{w}/embed"),
                "signup": format!("/signup/{w}"),
                "sign_in": format!("/portal/signin/{w}"),
                "domains": domains.iter().map(|d| d.hostname.clone()).collect::<Vec<_>>(),
            }),
        ),
    )
}

#[derive(Deserialize)]
pub struct PublicSettingsForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    enabled: String,
}

/// `POST /admin/public`: turns the public pages on or off (admins only).
pub async fn public_settings_save(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<PublicSettingsForm>,
) -> Response {
    let operator = match signed_in(&state, &headers).await {
        Ok(o) => o,
        Err(r) => return r,
    };
    if let Some(r) = refuse_csrf(&operator, &form.csrf) {
        return r;
    }
    if operator.role != crate::app::users::Role::Admin {
        return error_page(&Error::forbidden(
            "only admins turn the public pages on or off",
        ));
    }
    let on = form.enabled == "on";
    match crate::app::public::settings::set(&state.engine, &operator.user.workspace, on).await {
        Ok(_) => see_other("/admin/public"),
        Err(e) => error_page(&e),
    }
}
