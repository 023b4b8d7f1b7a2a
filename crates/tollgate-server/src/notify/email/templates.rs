//! Email templates (minijinja, Jinja2 syntax): one per kind of message, each a subject, a
//! plain-text body and an HTML body. A workspace's operator may replace any of them; the
//! defaults are compiled in (`defaults.rs`). Rendering is strict (an unknown variable is an
//! error, so a typo is caught when the template is saved, against [`sample`]'s variables), HTML
//! bodies are auto-escaped, and every render runs on a fuel budget so a template cannot loop
//! for long.

use std::collections::BTreeMap;

use minijinja::{Environment, UndefinedBehavior, Value};
use serde_json::json;

use super::defaults::default_of;

/// The kinds of email Tollgate sends (docs/EMAIL.md says which event sends each).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TemplateName {
    Welcome,
    TrialEnding,
    TrialEnded,
    UsageWarning,
    UsageLimit,
    InvoiceIssued,
    PaymentFailed,
    PaymentReceived,
    RefundIssued,
    WebhookEndpointDisabled,
    PortalSignIn,
}

impl TemplateName {
    pub const ALL: &[TemplateName] = &[
        TemplateName::Welcome,
        TemplateName::TrialEnding,
        TemplateName::TrialEnded,
        TemplateName::UsageWarning,
        TemplateName::UsageLimit,
        TemplateName::InvoiceIssued,
        TemplateName::PaymentFailed,
        TemplateName::PaymentReceived,
        TemplateName::RefundIssued,
        TemplateName::WebhookEndpointDisabled,
        TemplateName::PortalSignIn,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TemplateName::Welcome => "welcome",
            TemplateName::TrialEnding => "trial_ending",
            TemplateName::TrialEnded => "trial_ended",
            TemplateName::UsageWarning => "usage_warning",
            TemplateName::UsageLimit => "usage_limit",
            TemplateName::InvoiceIssued => "invoice_issued",
            TemplateName::PaymentFailed => "payment_failed",
            TemplateName::PaymentReceived => "payment_received",
            TemplateName::RefundIssued => "refund_issued",
            TemplateName::WebhookEndpointDisabled => "webhook_endpoint_disabled",
            TemplateName::PortalSignIn => "portal_sign_in",
        }
    }

    pub fn parse(s: &str) -> Option<TemplateName> {
        Self::ALL.iter().copied().find(|t| t.as_str() == s)
    }

    /// The outbox event type that sends it.
    pub fn event_type(self) -> &'static str {
        match self {
            TemplateName::Welcome => super::CUSTOMER_SIGNED_UP,
            TemplateName::TrialEnding => "subscription.trial_will_end",
            TemplateName::TrialEnded => "subscription.trial_ended",
            TemplateName::UsageWarning | TemplateName::UsageLimit => "usage.alert",
            TemplateName::InvoiceIssued => "invoice.finalized",
            TemplateName::PaymentFailed => super::INVOICE_PAYMENT_FAILED,
            TemplateName::PaymentReceived => "invoice.paid",
            TemplateName::RefundIssued => "credit_note.created",
            TemplateName::WebhookEndpointDisabled => "webhook_endpoint.disabled",
            TemplateName::PortalSignIn => crate::app::users::magic_link::SIGN_IN_REQUESTED,
        }
    }

    /// `(subject, text, html)` compiled into the binary.
    pub fn defaults(self) -> (&'static str, &'static str, &'static str) {
        default_of(self)
    }
}

/// The three parts of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl Source {
    pub fn default_of(name: TemplateName) -> Source {
        let (subject, text, html) = name.defaults();
        Source {
            subject: subject.to_owned(),
            text: text.to_owned(),
            html: html.to_owned(),
        }
    }
}

/// A message's content, rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    /// The whole HTML document: the template's body inside the branded layout.
    pub html: String,
}

/// The longest subject and bodies a template may have (characters of source).
pub const MAX_SUBJECT: usize = 1_000;
pub const MAX_BODY: usize = 100_000;
/// A render's budget of template instructions: plenty for a message, too little for a loop
/// meant to hold a worker.
const FUEL: u64 = 200_000;
/// The largest rendered part.
const MAX_OUTPUT: usize = 1_000_000;

/// The branded frame around every HTML body: the logo (or the brand's name), a bar in the
/// brand's colour, the body, and the brand's name below.
const LAYOUT: &str = r#"<!DOCTYPE html>
<html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>{{ subject }}</title></head>
<body style="margin:0;padding:0;background:#f4f4f5;font-family:Helvetica,Arial,sans-serif;color:#18181b;">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="background:#f4f4f5;"><tr><td align="center" style="padding:24px 12px;">
<table role="presentation" width="600" cellpadding="0" cellspacing="0" style="max-width:600px;background:#ffffff;border-top:4px solid {{ brand.color }};">
<tr><td style="padding:24px 32px 8px;">{% if brand.logo_url %}<img src="{{ brand.logo_url }}" alt="{{ brand.name }}" height="40" style="height:40px;">{% else %}<strong style="font-size:20px;color:{{ brand.color }};">{{ brand.name }}</strong>{% endif %}</td></tr>
<tr><td style="padding:8px 32px 24px;font-size:15px;line-height:1.5;">{{ body }}</td></tr>
<tr><td style="padding:16px 32px;font-size:12px;color:#71717a;border-top:1px solid #e4e4e7;">{{ brand.name }}</td></tr>
</table></td></tr></table></body></html>
"#;

/// The colour of the layout when the workspace has none.
pub const DEFAULT_COLOR: &str = "#2563eb";

/// `"2026-11-09T08:00:00Z" | date` -> `November 9, 2026`; anything that is not a timestamp is
/// shown as it is.
fn date(value: String) -> String {
    match value.parse::<jiff::Timestamp>() {
        Ok(t) => t.strftime("%B %-d, %Y").to_string(),
        Err(_) => value,
    }
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(FUEL));
    env.add_filter("date", date);
    env
}

/// A JSON document as template values. (Numbers are read from their text: the workspace's
/// `serde_json` keeps numbers as text, which minijinja's serde path would see as a map.)
pub fn value_of(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::from(()),
        serde_json::Value::Bool(b) => Value::from(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::from(i),
            None => Value::from(n.to_string()),
        },
        serde_json::Value::String(s) => Value::from(s.as_str()),
        serde_json::Value::Array(items) => {
            Value::from(items.iter().map(value_of).collect::<Vec<_>>())
        }
        serde_json::Value::Object(fields) => Value::from(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), value_of(v)))
                .collect::<BTreeMap<_, _>>(),
        ),
    }
}

/// Why a template did not render (or compile): the part and minijinja's message with its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    /// `subject`, `text` or `html`.
    pub part: &'static str,
    pub message: String,
}

impl std::fmt::Display for TemplateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.part, self.message)
    }
}

fn describe(e: &minijinja::Error) -> String {
    let mut text = e.to_string();
    if let Some(line) = e.line() {
        text = format!("{text} (line {line})");
    }
    text
}

fn render_part(
    env: &Environment<'_>,
    part: &'static str,
    name: &str,
    source: &str,
    context: &Value,
) -> Result<String, TemplateError> {
    let failed = |e: minijinja::Error| TemplateError {
        part,
        message: describe(&e),
    };
    let template = env.template_from_named_str(name, source).map_err(failed)?;
    let out = template.render(context).map_err(failed)?;
    if out.len() > MAX_OUTPUT {
        return Err(TemplateError {
            part,
            message: format!("renders to more than {MAX_OUTPUT} bytes"),
        });
    }
    Ok(out)
}

/// Renders `source` with `context` (a JSON object: [`sample`] shows each template's). The
/// subject is one line; the HTML body is auto-escaped and placed in the branded layout.
pub fn render(source: &Source, context: &serde_json::Value) -> Result<Rendered, TemplateError> {
    let env = environment();
    let ctx = value_of(context);
    let subject = render_part(&env, "subject", "subject.txt", &source.subject, &ctx)?
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let text = render_part(&env, "text", "body.txt", &source.text, &ctx)?;
    let body = render_part(&env, "html", "body.html", &source.html, &ctx)?;
    let mut fields: BTreeMap<String, Value> = context
        .as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), value_of(v))).collect())
        .unwrap_or_default();
    fields.insert("subject".into(), Value::from(subject.as_str()));
    // The body was rendered with auto-escaping: it goes into the layout as it is.
    fields.insert("body".into(), Value::from_safe_string(body));
    let frame = Value::from(fields);
    let html = render_part(&env, "html", "layout.html", LAYOUT, &frame)?;
    Ok(Rendered {
        subject,
        text,
        html,
    })
}

/// Checks a template an operator saves: sizes, syntax, and a render against the variables
/// `name` is given ([`sample`]), so an unknown variable or a bad filter is refused now rather
/// than failing a send later.
pub fn validate(name: TemplateName, source: &Source) -> Result<(), TemplateError> {
    for (part, text, max) in [
        ("subject", &source.subject, MAX_SUBJECT),
        ("text", &source.text, MAX_BODY),
        ("html", &source.html, MAX_BODY),
    ] {
        if text.chars().count() > max {
            return Err(TemplateError {
                part,
                message: format!("longer than {max} characters"),
            });
        }
        if text.contains('\0') {
            return Err(TemplateError {
                part,
                message: "contains the NUL character".into(),
            });
        }
    }
    if source.subject.trim().is_empty() {
        return Err(TemplateError {
            part: "subject",
            message: "is empty".into(),
        });
    }
    render(source, &sample(name)).map(|_| ())
}

/// The variables every message has: the brand, the customer (absent in the operator's notice),
/// the event.
fn common(customer: bool) -> serde_json::Value {
    json!({
        "brand": {
            "name": "Acme",
            "logo_url": "https://acme.example/logo.png",
            "color": DEFAULT_COLOR,
            "docs_url": "https://docs.acme.example",
        },
        "customer": if customer {
            json!({"id": "cus_sample", "name": "Ada Lovelace", "email": "ada@example.com"})
        } else {
            json!(null)
        },
        "event": {
            "id": "evt_sample",
            "type": "sample",
            "occurred_at": "2026-11-07T08:00:00Z",
            "data": {},
        },
    })
}

fn invoice_sample() -> serde_json::Value {
    json!({
        "id": "in_sample",
        "number": "INV-2026-000042",
        "status": "open",
        "currency": "USD",
        "total": "38.00",
        "amount_due": "38.00",
        "period_start": "2026-11-01T00:00:00Z",
        "period_end": "2026-12-01T00:00:00Z",
    })
}

/// Example values of every variable `name` is given: the context templates are validated
/// against, and what a preview without data uses.
pub fn sample(name: TemplateName) -> serde_json::Value {
    let specific = match name {
        TemplateName::Welcome => json!({
            "plan": "developer",
            "trial_end": "2026-11-09T08:00:00Z",
            "key_last4": "x7Qz",
            "docs_url": "https://docs.acme.example",
        }),
        TemplateName::TrialEnding => json!({
            "plan": "early",
            "trial_end": "2026-11-09T08:00:00Z",
            "days": 2,
            "fallback_plan": "free",
        }),
        TemplateName::TrialEnded => json!({
            "plan": "free",
            "trial_plan": "early",
            "converted": false,
        }),
        TemplateName::UsageWarning | TemplateName::UsageLimit => json!({
            "meter": "api_calls",
            "plan": "developer",
            "threshold_percent": if name == TemplateName::UsageLimit { "100" } else { "80" },
            "allowance": "10000",
            "used": if name == TemplateName::UsageLimit { "10000" } else { "8000" },
            "period_start": "2026-11-01T00:00:00Z",
            "period_end": "2026-12-01T00:00:00Z",
        }),
        TemplateName::InvoiceIssued | TemplateName::PaymentReceived => {
            json!({"invoice": invoice_sample()})
        }
        TemplateName::PaymentFailed => json!({
            "invoice": invoice_sample(),
            "retry_at": "2026-11-12T08:00:00Z",
        }),
        TemplateName::RefundIssued => json!({
            "invoice": invoice_sample(),
            "credit_note": {
                "id": "cn_sample",
                "number": "CN-2026-000007",
                "amount": "38.00",
                "currency": "USD",
                "reason": "requested by the customer",
            },
        }),
        TemplateName::WebhookEndpointDisabled => json!({
            "endpoint": {"id": "we_sample", "url": "https://hooks.acme.example/tollgate"},
            "failing_since": "2026-11-02T08:00:00Z",
            "reason": "failing since 2026-11-02T08:00:00Z (more than 120h)",
        }),
        TemplateName::PortalSignIn => json!({
            "sign_in_url": "https://billing.acme.example/portal/enter/tgs_sample",
            "minutes": 15,
        }),
    };
    merge(
        common(name != TemplateName::WebhookEndpointDisabled),
        specific,
    )
}

/// `base` with the fields of `extra` added (both objects).
pub fn merge(mut base: serde_json::Value, extra: serde_json::Value) -> serde_json::Value {
    if let (Some(base), serde_json::Value::Object(extra)) = (base.as_object_mut(), extra) {
        base.extend(extra);
    }
    base
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_default_renders_its_sample() {
        for &name in TemplateName::ALL {
            let out = render(&Source::default_of(name), &sample(name))
                .unwrap_or_else(|e| panic!("{}: {e}", name.as_str()));
            assert!(!out.subject.is_empty(), "{}", name.as_str());
            assert!(!out.subject.contains('\n'));
            assert!(out.html.contains("<!DOCTYPE html>"));
            assert!(validate(name, &Source::default_of(name)).is_ok());
        }
        let welcome = render(
            &Source::default_of(TemplateName::Welcome),
            &sample(TemplateName::Welcome),
        )
        .unwrap();
        assert!(welcome.text.contains("ending in x7Qz"), "{}", welcome.text);
        assert!(
            welcome.text.contains("November 9, 2026"),
            "{}",
            welcome.text
        );
        // `/` is escaped in attributes (`&#x2f;`), which browsers read back.
        assert!(
            welcome.html.contains("acme.example&#x2f;logo.png"),
            "{}",
            welcome.html
        );
    }

    #[test]
    fn html_is_escaped_and_unknown_variables_are_refused() {
        let mut ctx = sample(TemplateName::Welcome);
        ctx["customer"]["name"] = json!("<script>x</script>");
        let out = render(&Source::default_of(TemplateName::Welcome), &ctx).unwrap();
        assert!(!out.html.contains("<script>"), "{}", out.html);
        assert!(out.text.contains("<script>"), "plain text is not escaped");
        let bad = Source {
            subject: "Hi {{ custmer.name }}".into(),
            ..Source::default_of(TemplateName::Welcome)
        };
        let e = validate(TemplateName::Welcome, &bad).unwrap_err();
        assert_eq!(e.part, "subject");
        let broken = Source {
            html: "{% if %}".into(),
            ..Source::default_of(TemplateName::Welcome)
        };
        assert_eq!(
            validate(TemplateName::Welcome, &broken).unwrap_err().part,
            "html"
        );
        let endless = Source {
            text: "{% for a in range(10000) %}{% for b in range(10000) %}x{% endfor %}{% endfor %}"
                .into(),
            ..Source::default_of(TemplateName::Welcome)
        };
        assert_eq!(
            validate(TemplateName::Welcome, &endless).unwrap_err().part,
            "text"
        );
    }
}
