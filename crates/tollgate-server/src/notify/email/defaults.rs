//! The default templates, compiled into the binary: what a workspace sends until its operator
//! replaces one (`PUT /v1/email_templates/{name}`), and what a reset brings back. Each is a
//! subject, a plain-text body and an HTML body (the HTML is placed inside the branded layout of
//! `templates::LAYOUT`). The variables are listed in docs/EMAIL.md.

use super::templates::TemplateName;

/// `(subject, text, html)` of a template's default.
pub fn default_of(name: TemplateName) -> (&'static str, &'static str, &'static str) {
    match name {
        TemplateName::Welcome => (WELCOME_SUBJECT, WELCOME_TEXT, WELCOME_HTML),
        TemplateName::TrialEnding => (TRIAL_ENDING_SUBJECT, TRIAL_ENDING_TEXT, TRIAL_ENDING_HTML),
        TemplateName::TrialEnded => (TRIAL_ENDED_SUBJECT, TRIAL_ENDED_TEXT, TRIAL_ENDED_HTML),
        TemplateName::UsageWarning => (
            USAGE_WARNING_SUBJECT,
            USAGE_WARNING_TEXT,
            USAGE_WARNING_HTML,
        ),
        TemplateName::UsageLimit => (USAGE_LIMIT_SUBJECT, USAGE_LIMIT_TEXT, USAGE_LIMIT_HTML),
        TemplateName::InvoiceIssued => (INVOICE_SUBJECT, INVOICE_TEXT, INVOICE_HTML),
        TemplateName::PaymentFailed => (FAILED_SUBJECT, FAILED_TEXT, FAILED_HTML),
        TemplateName::PaymentReceived => (PAID_SUBJECT, PAID_TEXT, PAID_HTML),
        TemplateName::RefundIssued => (REFUND_SUBJECT, REFUND_TEXT, REFUND_HTML),
        TemplateName::WebhookEndpointDisabled => (DISABLED_SUBJECT, DISABLED_TEXT, DISABLED_HTML),
        TemplateName::PortalSignIn => (SIGN_IN_SUBJECT, SIGN_IN_TEXT, SIGN_IN_HTML),
    }
}

const WELCOME_SUBJECT: &str = "Welcome to {{ brand.name }}";
const WELCOME_TEXT: &str = "Hello {{ customer.name or customer.id }},

Welcome to {{ brand.name }}! Your account is ready on the {{ plan }} plan.
{% if trial_end %}Your free trial runs until {{ trial_end | date }}.
{% endif %}
Your API key ending in {{ key_last4 }} was created. Keep it secret: we never send it by email.
{% if docs_url %}
Get started: {{ docs_url }}
{% endif %}
-- {{ brand.name }}
";
const WELCOME_HTML: &str = "<h1>Welcome to {{ brand.name }}</h1>
<p>Hello {{ customer.name or customer.id }}, your account is ready on the <strong>{{ plan }}</strong> plan.</p>
{% if trial_end %}<p>Your free trial runs until {{ trial_end | date }}.</p>{% endif %}
<p>Your API key ending in <code>{{ key_last4 }}</code> was created. Keep it secret: we never send it by email.</p>
{% if docs_url %}<p><a href=\"{{ docs_url }}\">Read the docs to get started</a></p>{% endif %}";

const TRIAL_ENDING_SUBJECT: &str =
    "Your {{ brand.name }} trial ends in {{ days }} day{{ '' if days == 1 else 's' }}";
const TRIAL_ENDING_TEXT: &str = "Hello {{ customer.name or customer.id }},

Your free trial of the {{ plan }} plan ends on {{ trial_end | date }} ({{ days }} day{{ '' if days == 1 else 's' }} from now).
{% if fallback_plan %}Without a payment method you will move to the {{ fallback_plan }} plan then.
{% else %}Your subscription continues on the {{ plan }} plan then.
{% endif %}
-- {{ brand.name }}
";
const TRIAL_ENDING_HTML: &str = "<h1>Your trial ends in {{ days }} day{{ '' if days == 1 else 's' }}</h1>
<p>Hello {{ customer.name or customer.id }}, your free trial of the <strong>{{ plan }}</strong> plan ends on {{ trial_end | date }}.</p>
{% if fallback_plan %}<p>Without a payment method you will move to the <strong>{{ fallback_plan }}</strong> plan then.</p>
{% else %}<p>Your subscription continues on the <strong>{{ plan }}</strong> plan then.</p>{% endif %}";

const TRIAL_ENDED_SUBJECT: &str = "Your {{ brand.name }} trial has ended";
const TRIAL_ENDED_TEXT: &str = "Hello {{ customer.name or customer.id }},

Your free trial of the {{ trial_plan }} plan ended on {{ event.occurred_at | date }}.
{% if converted %}You are now subscribed to the {{ plan }} plan. Thank you!
{% else %}You are now on the {{ plan }} plan. Add a payment method to return to {{ trial_plan }}.
{% endif %}
-- {{ brand.name }}
";
const TRIAL_ENDED_HTML: &str = "<h1>Your trial has ended</h1>
<p>Hello {{ customer.name or customer.id }}, your free trial of the <strong>{{ trial_plan }}</strong> plan ended on {{ event.occurred_at | date }}.</p>
{% if converted %}<p>You are now subscribed to the <strong>{{ plan }}</strong> plan. Thank you!</p>
{% else %}<p>You are now on the <strong>{{ plan }}</strong> plan. Add a payment method to return to <strong>{{ trial_plan }}</strong>.</p>{% endif %}";

const USAGE_WARNING_SUBJECT: &str =
    "You have used {{ threshold_percent }}% of your {{ meter }} allowance";
const USAGE_WARNING_TEXT: &str = "Hello {{ customer.name or customer.id }},

You have used {{ used }} of the {{ allowance }} {{ meter }} included in your {{ plan }} plan this period ({{ threshold_percent }}%).
The period ends on {{ period_end | date }}.

-- {{ brand.name }}
";
const USAGE_WARNING_HTML: &str = "<h1>{{ threshold_percent }}% of your {{ meter }} used</h1>
<p>Hello {{ customer.name or customer.id }}, you have used <strong>{{ used }}</strong> of the {{ allowance }} {{ meter }} included in your <strong>{{ plan }}</strong> plan this period.</p>
<p>The period ends on {{ period_end | date }}.</p>";

const USAGE_LIMIT_SUBJECT: &str = "You have reached your {{ meter }} allowance";
const USAGE_LIMIT_TEXT: &str = "Hello {{ customer.name or customer.id }},

You have used {{ used }} of the {{ allowance }} {{ meter }} included in your {{ plan }} plan this period ({{ threshold_percent }}%).
The period ends on {{ period_end | date }}; consider upgrading your plan.

-- {{ brand.name }}
";
const USAGE_LIMIT_HTML: &str = "<h1>You have reached your {{ meter }} allowance</h1>
<p>Hello {{ customer.name or customer.id }}, you have used <strong>{{ used }}</strong> of the {{ allowance }} {{ meter }} included in your <strong>{{ plan }}</strong> plan this period ({{ threshold_percent }}%).</p>
<p>The period ends on {{ period_end | date }}; consider upgrading your plan.</p>";

const INVOICE_SUBJECT: &str = "Invoice {{ invoice.number }} from {{ brand.name }}";
const INVOICE_TEXT: &str = "Hello {{ customer.name or customer.id }},

Invoice {{ invoice.number }} for {{ invoice.total }} {{ invoice.currency }} has been issued{% if invoice.period_start %} for {{ invoice.period_start | date }} to {{ invoice.period_end | date }}{% endif %}.
Amount due: {{ invoice.amount_due }} {{ invoice.currency }}.

The invoice is attached as a PDF.

-- {{ brand.name }}
";
const INVOICE_HTML: &str = "<h1>Invoice {{ invoice.number }}</h1>
<p>Hello {{ customer.name or customer.id }}, invoice {{ invoice.number }} for <strong>{{ invoice.total }} {{ invoice.currency }}</strong> has been issued{% if invoice.period_start %} for {{ invoice.period_start | date }} to {{ invoice.period_end | date }}{% endif %}.</p>
<p>Amount due: <strong>{{ invoice.amount_due }} {{ invoice.currency }}</strong>. The invoice is attached as a PDF.</p>";

const FAILED_SUBJECT: &str = "Payment for invoice {{ invoice.number }} failed";
const FAILED_TEXT: &str = "Hello {{ customer.name or customer.id }},

We could not collect {{ invoice.amount_due }} {{ invoice.currency }} for invoice {{ invoice.number }}.
{% if retry_at %}We will try again on {{ retry_at | date }}.
{% endif %}Please check your payment method.

-- {{ brand.name }}
";
const FAILED_HTML: &str = "<h1>Your payment failed</h1>
<p>Hello {{ customer.name or customer.id }}, we could not collect <strong>{{ invoice.amount_due }} {{ invoice.currency }}</strong> for invoice {{ invoice.number }}.</p>
{% if retry_at %}<p>We will try again on {{ retry_at | date }}.</p>{% endif %}
<p>Please check your payment method.</p>";

const PAID_SUBJECT: &str = "Payment received for invoice {{ invoice.number }}";
const PAID_TEXT: &str = "Hello {{ customer.name or customer.id }},

We received your payment of {{ invoice.total }} {{ invoice.currency }} for invoice {{ invoice.number }}. Thank you!

-- {{ brand.name }}
";
const PAID_HTML: &str = "<h1>Payment received</h1>
<p>Hello {{ customer.name or customer.id }}, we received your payment of <strong>{{ invoice.total }} {{ invoice.currency }}</strong> for invoice {{ invoice.number }}. Thank you!</p>";

const REFUND_SUBJECT: &str = "Refund of {{ credit_note.amount }} {{ credit_note.currency }} issued";
const REFUND_TEXT: &str = "Hello {{ customer.name or customer.id }},

We issued credit note {{ credit_note.number }}: a refund of {{ credit_note.amount }} {{ credit_note.currency }} on invoice {{ invoice.number }}.
{% if credit_note.reason %}Reason: {{ credit_note.reason }}
{% endif %}
-- {{ brand.name }}
";
const REFUND_HTML: &str = "<h1>Refund issued</h1>
<p>Hello {{ customer.name or customer.id }}, we issued credit note {{ credit_note.number }}: a refund of <strong>{{ credit_note.amount }} {{ credit_note.currency }}</strong> on invoice {{ invoice.number }}.</p>
{% if credit_note.reason %}<p>Reason: {{ credit_note.reason }}</p>{% endif %}";

const DISABLED_SUBJECT: &str = "Webhook endpoint disabled: {{ endpoint.url }}";
const DISABLED_TEXT: &str = "Hello,

Tollgate disabled the webhook endpoint {{ endpoint.id }} ({{ endpoint.url }}) of {{ brand.name }}:
{{ reason }}.

Its deliveries wait. Fix the receiver, then enable the endpoint again
(PATCH /v1/webhook_endpoints/{{ endpoint.id }} with {\"enabled\": true}) to resume them.

-- Tollgate
";
const DISABLED_HTML: &str = "<h1>Webhook endpoint disabled</h1>
<p>Tollgate disabled the webhook endpoint <code>{{ endpoint.id }}</code> ({{ endpoint.url }}): {{ reason }}.</p>
<p>Its deliveries wait. Fix the receiver, then enable the endpoint again (<code>PATCH /v1/webhook_endpoints/{{ endpoint.id }}</code> with <code>{\"enabled\": true}</code>) to resume them.</p>";

const SIGN_IN_SUBJECT: &str = "Sign in to {{ brand.name }}";
const SIGN_IN_TEXT: &str = "Hello {{ customer.name or customer.id }},

Open this link to sign in to your {{ brand.name }} account:

{{ sign_in_url }}

It works once, for {{ minutes }} minutes. If you did not ask to sign in, ignore this email.

-- {{ brand.name }}
";
const SIGN_IN_HTML: &str = "<h1>Sign in to {{ brand.name }}</h1>
<p>Hello {{ customer.name or customer.id }}, open this link to sign in to your account:</p>
<p><a href=\"{{ sign_in_url }}\">Sign in</a></p>
<p>It works once, for {{ minutes }} minutes. If you did not ask to sign in, ignore this email.</p>";
