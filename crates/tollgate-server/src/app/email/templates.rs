//! A workspace's email templates: each is the operator's own once replaced, else the default
//! compiled into the server. A replacement is checked before it is stored (syntax, sizes, and a
//! render against the template's variables), and a reset brings the default back.

use jiff::Timestamp;
use tollgate_core::code::Code;
use tollgate_core::ids::WorkspaceId;
use tollgate_store::email::EmailTemplateRecord;

use super::template_name;
use crate::engine::Engine;
use crate::error::{AppResult, Error};
use crate::notify::email::templates::{Source, TemplateName, validate};

/// A template as the workspace uses it.
#[derive(Debug, Clone)]
pub struct TemplateView {
    pub name: TemplateName,
    /// The operator's own (true) or the default.
    pub customized: bool,
    pub source: Source,
    pub updated_at: Option<Timestamp>,
}

fn view(name: TemplateName, stored: Option<EmailTemplateRecord>) -> TemplateView {
    match stored {
        Some(t) => TemplateView {
            name,
            customized: true,
            source: Source {
                subject: t.subject,
                text: t.text_body,
                html: t.html_body,
            },
            updated_at: Some(t.updated_at),
        },
        None => TemplateView {
            name,
            customized: false,
            source: Source::default_of(name),
            updated_at: None,
        },
    }
}

/// Every template, in [`TemplateName::ALL`]'s order.
pub async fn list(engine: &Engine, workspace: &str) -> AppResult<Vec<TemplateView>> {
    let mut stored = engine
        .store()
        .list_email_templates(&WorkspaceId::from(workspace))
        .await?;
    Ok(TemplateName::ALL
        .iter()
        .map(|&name| {
            let own = stored
                .iter()
                .position(|t| t.template == name.as_str())
                .map(|i| stored.swap_remove(i));
            view(name, own)
        })
        .collect())
}

pub async fn get(engine: &Engine, workspace: &str, name: &str) -> AppResult<TemplateView> {
    let name = template_name(name)?;
    let stored = engine
        .store()
        .get_email_template(&WorkspaceId::from(workspace), name.as_str())
        .await?;
    Ok(view(name, stored))
}

/// Replaces a template after checking it (`400 email_template_invalid` naming the part and the
/// line).
pub async fn replace(
    engine: &Engine,
    workspace: &str,
    name: &str,
    source: Source,
) -> AppResult<TemplateView> {
    let name = template_name(name)?;
    validate(name, &source).map_err(|e| {
        Error::invalid(
            Code::EmailTemplateInvalid,
            format!("the {} template's {e}", name.as_str()),
        )
    })?;
    let record = EmailTemplateRecord {
        workspace: workspace.to_owned(),
        template: name.as_str().to_owned(),
        subject: source.subject,
        text_body: source.text,
        html_body: source.html,
        updated_at: engine.now(),
    };
    engine.store().put_email_template(&record).await?;
    Ok(view(name, Some(record)))
}

/// Back to the default (nothing to do when it is the default already).
pub async fn reset(engine: &Engine, workspace: &str, name: &str) -> AppResult<TemplateView> {
    let name = template_name(name)?;
    engine
        .store()
        .delete_email_template(&WorkspaceId::from(workspace), name.as_str())
        .await?;
    Ok(view(name, None))
}
