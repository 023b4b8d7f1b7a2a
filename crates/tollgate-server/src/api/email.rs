//! Email settings, templates, previews and the email log (docs/EMAIL.md): thin handlers over
//! `app::email`. Every call needs the workspace's admin key.

use axum::Json;
use axum::extract::{Path, Query, State};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tollgate_store::email::{EmailMessageRecord, EmailSettingsRecord};

use crate::api::domain_events::parse_limit;
use crate::api::error::{ApiError, ApiResult};
use crate::app::email::messages::ListEmailMessages;
use crate::app::email::preview::Preview;
use crate::app::email::settings::EmailSettings;
use crate::app::email::templates::TemplateView;
use crate::app::email::{messages, preview, settings, templates};
use crate::auth::Principal;
use crate::notify::email::templates::Source;
use crate::state::AppState;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailSettingsIn {
    /// The sender of every message; required.
    pub from_address: String,
    /// The sender's name (default: `brand_name`).
    pub from_name: Option<String>,
    pub reply_to: Option<String>,
    /// The operator's or white-label partner's name in every message (default: the workspace's
    /// name).
    pub brand_name: Option<String>,
    /// An absolute http(s) URL of the logo shown at the top of HTML messages.
    pub logo_url: Option<String>,
    /// `#rgb` or `#rrggbb`: the bar and the name in HTML messages.
    pub brand_color: Option<String>,
    /// The link of the welcome email.
    pub docs_url: Option<String>,
    /// Where notices for the operator go (a webhook endpoint disabled after failing for days).
    pub operator_email: Option<String>,
    /// Default true; false stops email for the workspace (events meanwhile are not sent later).
    pub enabled: Option<bool>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct EmailSettingsOut {
    pub from_address: String,
    pub from_name: Option<String>,
    pub reply_to: Option<String>,
    pub brand_name: Option<String>,
    pub logo_url: Option<String>,
    pub brand_color: Option<String>,
    pub docs_url: Option<String>,
    pub operator_email: Option<String>,
    pub enabled: bool,
    /// Events written from this time on are emailed.
    #[schema(value_type = String)]
    pub created_at: Timestamp,
    #[schema(value_type = String)]
    pub updated_at: Timestamp,
}

impl From<EmailSettingsRecord> for EmailSettingsOut {
    fn from(s: EmailSettingsRecord) -> Self {
        EmailSettingsOut {
            from_address: s.from_address,
            from_name: s.from_name,
            reply_to: s.reply_to,
            brand_name: s.brand_name,
            logo_url: s.logo_url,
            brand_color: s.brand_color,
            docs_url: s.docs_url,
            operator_email: s.operator_email,
            enabled: s.enabled,
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailTemplateIn {
    /// minijinja (Jinja2) source of the subject line.
    pub subject: String,
    /// Source of the plain-text part.
    pub text: String,
    /// Source of the HTML part's body (auto-escaped; placed inside the branded layout).
    pub html: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct EmailTemplateOut {
    /// `welcome`, `trial_ending`, ...
    pub name: String,
    /// The outbox event type that sends it.
    pub event_type: String,
    /// The workspace's own (true) or the default compiled into the server (false).
    pub customized: bool,
    pub subject: String,
    pub text: String,
    pub html: String,
    #[schema(value_type = Option<String>)]
    pub updated_at: Option<Timestamp>,
}

impl From<TemplateView> for EmailTemplateOut {
    fn from(t: TemplateView) -> Self {
        EmailTemplateOut {
            name: t.name.as_str().to_owned(),
            event_type: t.name.event_type().to_owned(),
            customized: t.customized,
            subject: t.source.subject,
            text: t.source.text,
            html: t.source.html,
            updated_at: t.updated_at,
        }
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewIn {
    /// The customer whose data fills the template.
    pub customer: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PreviewOut {
    pub template: String,
    /// Where it would go.
    pub recipient: Option<String>,
    /// The event whose data it shows; null: the template's example values.
    pub event: Option<String>,
    pub subject: String,
    pub text: String,
    /// The whole HTML document (the template's body inside the branded layout).
    pub html: String,
    /// Files it would carry, by name.
    pub attachments: Vec<String>,
}

impl From<Preview> for PreviewOut {
    fn from(p: Preview) -> Self {
        PreviewOut {
            template: p.template.as_str().to_owned(),
            recipient: p.recipient,
            event: p.event,
            subject: p.rendered.subject,
            text: p.rendered.text,
            html: p.rendered.html,
            attachments: p.attachments,
        }
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct EmailMessagesQuery {
    /// Only messages about this customer.
    pub customer: Option<String>,
    /// `pending`, `sent` or `failed`.
    pub status: Option<String>,
    /// The id of the last message of the previous page.
    pub starting_after: Option<String>,
    /// 1 to 100 (default 20).
    pub limit: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct EmailMessageOut {
    pub id: String,
    /// The outbox event it tells about.
    pub event: String,
    pub event_type: String,
    pub template: String,
    pub recipient: String,
    pub customer: Option<String>,
    /// `pending`, `sent` or `failed` (retries exhausted).
    pub status: String,
    pub attempts: i64,
    /// On the customer's clock (its test clock, if it has one).
    #[schema(value_type = String)]
    pub next_attempt_at: Timestamp,
    /// As last rendered.
    pub subject: Option<String>,
    pub last_error: Option<String>,
    #[schema(value_type = Option<String>)]
    pub sent_at: Option<Timestamp>,
    #[schema(value_type = String)]
    pub created_at: Timestamp,
}

impl From<EmailMessageRecord> for EmailMessageOut {
    fn from(m: EmailMessageRecord) -> Self {
        EmailMessageOut {
            id: m.id,
            event: m.event,
            event_type: m.event_type,
            template: m.template,
            recipient: m.recipient,
            customer: m.customer,
            status: m.status.as_str().to_owned(),
            attempts: m.attempts,
            next_attempt_at: m.next_attempt_at,
            subject: m.subject,
            last_error: m.last_error,
            sent_at: m.sent_at,
            created_at: m.created_at,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct EmailMessageList {
    pub data: Vec<EmailMessageOut>,
    /// More messages follow the last one: ask again with `starting_after` set to its id.
    pub has_more: bool,
}

/// Get the workspace's email settings
///
/// 404 until they are set: the workspace sends no email then.
#[utoipa::path(get, path = "/v1/email_settings", operation_id = "email_settings_get",
    responses((status = 200, description = "OK", body = EmailSettingsOut), (status = 404, description = "Not set", body = crate::api::error::Problem, content_type = "application/problem+json")))]
pub async fn get_settings(
    State(state): State<AppState>,
    caller: Principal,
) -> ApiResult<Json<EmailSettingsOut>> {
    let workspace = caller.require_admin()?;
    let found = settings::get(&state.engine, workspace)
        .await?
        .ok_or_else(|| ApiError::not_found("email settings of workspace", workspace))?;
    Ok(Json(found.into()))
}

/// Set the workspace's email settings
///
/// Sender, reply-to and branding; every field is replaced (an absent one is cleared). The
/// workspace emails its customers from the events written after the first time this is set.
#[utoipa::path(put, path = "/v1/email_settings", operation_id = "email_settings_set", request_body = EmailSettingsIn,
    responses((status = 200, description = "OK", body = EmailSettingsOut), (status = 422, description = "A field is not valid (problem+json, `validation_failed`, with each field's path)", body = crate::api::error::Problem, content_type = "application/problem+json")))]
pub async fn set_settings(
    State(state): State<AppState>,
    caller: Principal,
    body: crate::api::body::JsonBody<EmailSettingsIn>,
) -> ApiResult<Json<EmailSettingsOut>> {
    let workspace = caller.require_admin()?;
    let crate::api::body::JsonBody(b) = body;
    let input = EmailSettings {
        from_address: b.from_address,
        from_name: b.from_name,
        reply_to: b.reply_to,
        brand_name: b.brand_name,
        logo_url: b.logo_url,
        brand_color: b.brand_color,
        docs_url: b.docs_url,
        operator_email: b.operator_email,
        enabled: b.enabled.unwrap_or(true),
    };
    Ok(Json(
        settings::set(&state.engine, workspace, input).await?.into(),
    ))
}

/// List email templates
///
/// Every template, the workspace's own or the default.
#[utoipa::path(get, path = "/v1/email_templates", operation_id = "email_templates_list",
    responses((status = 200, description = "OK", body = Vec<EmailTemplateOut>)))]
pub async fn list_templates(
    State(state): State<AppState>,
    caller: Principal,
) -> ApiResult<Json<Vec<EmailTemplateOut>>> {
    let workspace = caller.require_admin()?;
    let all = templates::list(&state.engine, workspace).await?;
    Ok(Json(all.into_iter().map(Into::into).collect()))
}

/// Get an email template
#[utoipa::path(get, path = "/v1/email_templates/{name}", operation_id = "email_templates_get", params(("name" = String, Path)),
    responses((status = 200, description = "OK", body = EmailTemplateOut), (status = 404, description = "No such template (`unknown_email_template`)", body = crate::api::error::Problem, content_type = "application/problem+json")))]
pub async fn get_template(
    State(state): State<AppState>,
    caller: Principal,
    Path(name): Path<String>,
) -> ApiResult<Json<EmailTemplateOut>> {
    let workspace = caller.require_admin()?;
    Ok(Json(
        templates::get(&state.engine, workspace, &name)
            .await?
            .into(),
    ))
}

/// Replace an email template
///
/// Checked before it is stored: syntax, sizes, and a render with the template's variables (an
/// unknown variable is refused).
#[utoipa::path(put, path = "/v1/email_templates/{name}", operation_id = "email_templates_replace", params(("name" = String, Path)), request_body = EmailTemplateIn,
    responses((status = 200, description = "OK", body = EmailTemplateOut), (status = 400, description = "Not a valid template (`email_template_invalid`)", body = crate::api::error::Problem, content_type = "application/problem+json"), (status = 404, description = "No such template (`unknown_email_template`)", body = crate::api::error::Problem, content_type = "application/problem+json")))]
pub async fn replace_template(
    State(state): State<AppState>,
    caller: Principal,
    Path(name): Path<String>,
    body: crate::api::body::JsonBody<EmailTemplateIn>,
) -> ApiResult<Json<EmailTemplateOut>> {
    let workspace = caller.require_admin()?;
    let crate::api::body::JsonBody(b) = body;
    let source = Source {
        subject: b.subject,
        text: b.text,
        html: b.html,
    };
    Ok(Json(
        templates::replace(&state.engine, workspace, &name, source)
            .await?
            .into(),
    ))
}

/// Reset an email template
///
/// Back to the default compiled into the server; answers it.
#[utoipa::path(delete, path = "/v1/email_templates/{name}", operation_id = "email_templates_reset", params(("name" = String, Path)),
    responses((status = 200, description = "The default", body = EmailTemplateOut), (status = 404, description = "No such template (`unknown_email_template`)", body = crate::api::error::Problem, content_type = "application/problem+json")))]
pub async fn reset_template(
    State(state): State<AppState>,
    caller: Principal,
    Path(name): Path<String>,
) -> ApiResult<Json<EmailTemplateOut>> {
    let workspace = caller.require_admin()?;
    Ok(Json(
        templates::reset(&state.engine, workspace, &name)
            .await?
            .into(),
    ))
}

/// Preview an email
///
/// The template rendered for a customer (its latest event of the template's kind, else the
/// template's example values), sending nothing.
#[utoipa::path(post, path = "/v1/email_templates/{name}/preview", operation_id = "email_templates_preview", params(("name" = String, Path)), request_body = PreviewIn,
    responses((status = 200, description = "OK", body = PreviewOut), (status = 404, description = "No such template or customer", body = crate::api::error::Problem, content_type = "application/problem+json")))]
pub async fn preview_template(
    State(state): State<AppState>,
    caller: Principal,
    Path(name): Path<String>,
    body: crate::api::body::JsonBody<PreviewIn>,
) -> ApiResult<Json<PreviewOut>> {
    let workspace = caller.require_admin()?;
    let crate::api::body::JsonBody(b) = body;
    Ok(Json(
        preview::preview(&state.engine, workspace, &name, &b.customer)
            .await?
            .into(),
    ))
}

/// List emails (the email log)
///
/// Every message, oldest first, with its status, attempts and last error.
#[utoipa::path(get, path = "/v1/email_messages", operation_id = "email_messages_list", params(EmailMessagesQuery),
    responses((status = 200, description = "OK", body = EmailMessageList), (status = 400, description = "Bad `limit` or `status` (problem+json)", body = crate::api::error::Problem, content_type = "application/problem+json")))]
pub async fn list_messages(
    State(state): State<AppState>,
    caller: Principal,
    Query(query): Query<EmailMessagesQuery>,
) -> ApiResult<Json<EmailMessageList>> {
    let workspace = caller.require_admin()?;
    let (all, has_more) = messages::list(
        &state.engine,
        ListEmailMessages {
            workspace: workspace.to_owned(),
            customer: query.customer,
            status: query.status,
            starting_after: query.starting_after,
            limit: parse_limit(query.limit.as_deref())?,
        },
    )
    .await?;
    Ok(Json(EmailMessageList {
        data: all.into_iter().map(Into::into).collect(),
        has_more,
    }))
}
