//! A workspace's sender and branding: the from-address (without one the workspace sends no
//! email), reply-to, the operator's or white-label partner's name, logo and colour, the docs
//! link of the welcome email, and the operator's address for its own notices.

use tollgate_core::ids::WorkspaceId;
use tollgate_store::email::EmailSettingsRecord;

use crate::app::customers::profile::check_email;
use crate::engine::Engine;
use crate::error::{AppResult, Error, FieldError};

/// What `PUT /v1/email_settings` sets: every field, each absent one cleared.
#[derive(Debug, Clone, Default)]
pub struct EmailSettings {
    pub from_address: String,
    pub from_name: Option<String>,
    pub reply_to: Option<String>,
    pub brand_name: Option<String>,
    pub logo_url: Option<String>,
    /// `#rgb` or `#rrggbb`.
    pub brand_color: Option<String>,
    pub docs_url: Option<String>,
    pub operator_email: Option<String>,
    pub enabled: bool,
}

/// Longest name a header or the layout shows.
const MAX_NAME: usize = 200;
const MAX_URL: usize = 2048;

fn check(input: &EmailSettings) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut bad = |path: &str, message: String| {
        errors.push(FieldError {
            path: path.to_owned(),
            message,
        })
    };
    for (path, value) in [
        ("from_address", Some(&input.from_address)),
        ("reply_to", input.reply_to.as_ref()),
        ("operator_email", input.operator_email.as_ref()),
    ] {
        if let Some(v) = value
            && check_email(v).is_err()
        {
            bad(
                path,
                format!("{v:?} is not an email address (`name@example.com`)"),
            );
        }
    }
    for (path, value) in [
        ("from_name", input.from_name.as_ref()),
        ("brand_name", input.brand_name.as_ref()),
    ] {
        if let Some(v) = value
            && (v.trim().is_empty()
                || v.chars().count() > MAX_NAME
                || v.chars().any(char::is_control))
        {
            bad(
                path,
                format!("must be 1 to {MAX_NAME} characters without control characters"),
            );
        }
    }
    for (path, value) in [
        ("logo_url", input.logo_url.as_ref()),
        ("docs_url", input.docs_url.as_ref()),
    ] {
        if let Some(v) = value {
            let ok = v.len() <= MAX_URL
                && reqwest::Url::parse(v)
                    .is_ok_and(|u| matches!(u.scheme(), "https" | "http") && u.has_host());
            if !ok {
                bad(path, format!("{v:?} is not an absolute http(s) URL"));
            }
        }
    }
    if let Some(c) = &input.brand_color {
        let hex = c.strip_prefix('#').unwrap_or("");
        if !matches!(hex.len(), 3 | 6) || !hex.chars().all(|d| d.is_ascii_hexdigit()) {
            bad(
                "brand_color",
                format!("{c:?} is not a colour like `#1a7f5a`"),
            );
        }
    }
    errors
}

pub async fn get(engine: &Engine, workspace: &str) -> AppResult<Option<EmailSettingsRecord>> {
    Ok(engine
        .store()
        .get_email_settings(&WorkspaceId::from(workspace))
        .await?)
}

/// Sets the workspace's settings, checked field by field (`422 validation_failed` naming each
/// bad one). Email starts with the events written from the first time this is set.
pub async fn set(
    engine: &Engine,
    workspace: &str,
    input: EmailSettings,
) -> AppResult<EmailSettingsRecord> {
    let errors = check(&input);
    if !errors.is_empty() {
        return Err(Error::validation(
            "the email settings are not valid",
            errors,
        ));
    }
    let now = engine.now();
    let created_at = get(engine, workspace)
        .await?
        .map_or(now, |existing| existing.created_at);
    let record = EmailSettingsRecord {
        workspace: workspace.to_owned(),
        from_address: input.from_address,
        from_name: input.from_name,
        reply_to: input.reply_to,
        brand_name: input.brand_name,
        logo_url: input.logo_url,
        brand_color: input.brand_color,
        docs_url: input.docs_url,
        operator_email: input.operator_email,
        enabled: input.enabled,
        created_at,
        updated_at: now,
    };
    engine.store().put_email_settings(&record).await?;
    Ok(record)
}
