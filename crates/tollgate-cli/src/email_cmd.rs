//! `tollgate email preview TEMPLATE --customer ID`: one email rendered for a customer, offline
//! against the store, through the same use case as `POST /v1/email_templates/{name}/preview`;
//! nothing is sent and no SMTP relay is needed.

use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use tollgate_server::app::email::preview::{Preview, preview};

use crate::jobs::{StoreArgs, engine};

#[derive(Debug, Subcommand)]
pub enum EmailCommand {
    /// Render a template for a customer (its latest event of the template's kind, else the
    /// template's example values) without sending it.
    Preview(PreviewArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Part {
    /// The headers and the plain-text part.
    Text,
    /// The HTML document.
    Html,
    /// Everything, as one JSON object.
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct PreviewArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// The template: welcome, trial_ending, trial_ended, usage_warning, usage_limit,
    /// invoice_issued, payment_failed, payment_received, refund_issued,
    /// webhook_endpoint_disabled.
    template: String,
    /// The customer whose data fills it.
    #[arg(long, value_name = "ID")]
    customer: String,
    /// What to print.
    #[arg(long, value_enum, default_value_t = Part::Text)]
    part: Part,
}

fn text(p: &Preview) -> String {
    let mut out = format!(
        "To: {}\nSubject: {}\nTemplate: {} ({})\n",
        p.recipient.as_deref().unwrap_or("(no email address)"),
        p.rendered.subject,
        p.template.as_str(),
        p.event
            .as_deref()
            .map_or_else(|| "example values".to_owned(), |e| format!("event {e}")),
    );
    if !p.attachments.is_empty() {
        out.push_str(&format!("Attachments: {}\n", p.attachments.join(", ")));
    }
    out.push('\n');
    out.push_str(&p.rendered.text);
    out
}

fn json(p: &Preview) -> anyhow::Result<String> {
    Ok(serde_json::to_string_pretty(&serde_json::json!({
        "template": p.template.as_str(),
        "recipient": p.recipient,
        "event": p.event,
        "subject": p.rendered.subject,
        "text": p.rendered.text,
        "html": p.rendered.html,
        "attachments": p.attachments,
    }))?)
}

pub async fn run(command: EmailCommand) -> anyhow::Result<ExitCode> {
    match command {
        EmailCommand::Preview(args) => {
            let engine = engine(&args.store).await?;
            let shown = preview(
                &engine,
                &args.store.workspace,
                &args.template,
                &args.customer,
            )
            .await
            .map_err(|e| anyhow::anyhow!("{}: {}", e.code, e.describe()))?;
            match args.part {
                Part::Text => print!("{}", text(&shown)),
                Part::Html => print!("{}", shown.rendered.html),
                Part::Json => println!("{}", json(&shown)?),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
