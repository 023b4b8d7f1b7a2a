//! `tollgate email preview TEMPLATE --customer ID` and `POST /v1/email_templates/{name}/preview`:
//! a template rendered for a customer, sending nothing. The customer's latest event of the
//! template's kind gives the variables (its invoice, its trial, its alert); a customer without
//! one is shown the template's example values with its own name and the workspace's brand.

use tollgate_core::ids::{CustomerId, WorkspaceId};
use tollgate_store::outbox::{OutboxEvent, OutboxFilter};

use super::template_name;
use crate::engine::Engine;
use crate::error::{AppResult, Error};
use crate::notify::email::compose::{self, brand, customer_value};
use crate::notify::email::templates::{self, Rendered, TemplateName, merge, sample};

#[derive(Debug, Clone)]
pub struct Preview {
    pub template: TemplateName,
    /// Where it would go: the customer's email (the operator's, for the operator's notice).
    pub recipient: Option<String>,
    /// The event whose data it shows; `None`: the example values.
    pub event: Option<String>,
    pub rendered: Rendered,
    /// Files the message would carry (the invoice PDF), by name.
    pub attachments: Vec<String>,
}

/// The customer's latest event that sends `template` (the operator's notice: the workspace's
/// latest).
async fn latest_event(
    engine: &Engine,
    workspace: &str,
    template: TemplateName,
    customer: &str,
) -> AppResult<Option<OutboxEvent>> {
    let mut filter = OutboxFilter {
        event_type: Some(template.event_type().to_owned()),
        customer: (template != TemplateName::WebhookEndpointDisabled).then(|| customer.to_owned()),
        starting_after: None,
        limit: 100,
    };
    let mut latest = None;
    loop {
        let page = engine
            .store()
            .list_domain_events(&WorkspaceId::from(workspace), &filter)
            .await?;
        let full = page.len() == 100;
        filter.starting_after = page.last().map(|e| e.id.clone());
        if let Some(e) = page
            .into_iter()
            .rev()
            .find(|e| compose::template_for(e) == Some(template))
        {
            latest = Some(e);
        }
        if !full {
            return Ok(latest);
        }
    }
}

/// Renders `template` for `customer` with the workspace's own template (or the default).
pub async fn preview(
    engine: &Engine,
    workspace: &str,
    template: &str,
    customer: &str,
) -> AppResult<Preview> {
    let name = template_name(template)?;
    let owner = engine
        .store()
        .get_customer(&WorkspaceId::from(workspace), &CustomerId::from(customer))
        .await?
        .ok_or_else(|| Error::not_found("customer", customer))?;
    let settings = super::settings::get(engine, workspace).await?;
    let event = latest_event(engine, workspace, name, customer).await?;
    let context = match &event {
        Some(e) => {
            compose::compose(engine, settings.as_ref(), e, name, false)
                .await?
                .context
        }
        None => merge(
            sample(name),
            serde_json::json!({
                "brand": brand(engine, workspace, settings.as_ref()).await?,
                "customer": (name != TemplateName::WebhookEndpointDisabled).then(|| customer_value(&owner)),
            }),
        ),
    };
    let source = crate::notify::email::source_of(engine, workspace, name).await?;
    let rendered = templates::render(&source, &context).map_err(|e| {
        Error::invalid(
            tollgate_core::code::Code::EmailTemplateInvalid,
            format!("the {} template's {e}", name.as_str()),
        )
    })?;
    let attachments = match (name, context["invoice"]["number"].as_str()) {
        (TemplateName::InvoiceIssued, Some(number)) => vec![format!("{number}.pdf")],
        _ => Vec::new(),
    };
    let recipient = if name == TemplateName::WebhookEndpointDisabled {
        settings.and_then(|s| s.operator_email)
    } else {
        owner.email
    };
    Ok(Preview {
        template: name,
        recipient,
        event: event.map(|e| e.id),
        rendered,
        attachments,
    })
}
