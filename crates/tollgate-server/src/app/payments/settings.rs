//! A workspace's payment settings: the Stripe secret key and webhook secret (sealed under the
//! master key before they reach the store, never answered back: only whether each is set and
//! the key's last four characters), and the payment instructions of manual payments.

use serde::Serialize;
use tollgate_core::code::Code;
use tollgate_core::ids::WorkspaceId;
use tollgate_store::payments::{PaymentSettingsRecord, StripeBillingRecord};

use super::{SECRET_KEY, WEBHOOK_SECRET, context, master_key};
use crate::engine::Engine;
use crate::error::{AppResult, Error};
use crate::providers::Secret;

/// A change of the settings: an absent field is kept, an empty one removed.
#[derive(Debug, Clone, Default)]
pub struct SetPaymentSettings {
    pub workspace: String,
    /// `sk_...` or a restricted `rk_...` key.
    pub stripe_secret_key: Option<Secret>,
    /// The webhook endpoint's signing secret, `whsec_...`.
    pub stripe_webhook_secret: Option<Secret>,
    pub manual_instructions: Option<String>,
    /// Stripe as the biller (Stripe Billing charges the customers, Tollgate pushes usage to its
    /// meters and charges no invoice itself).
    pub stripe_billing: Option<bool>,
}

/// The settings as the API shows them: never a secret.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PaymentSettingsView {
    /// Whether a Stripe secret key is stored (sealed).
    pub stripe_secret_key_set: bool,
    /// The key's last four characters, to tell keys apart.
    pub stripe_secret_key_last4: Option<String>,
    pub stripe_webhook_secret_set: bool,
    pub manual_instructions: Option<String>,
    /// Whether Stripe is the biller: Stripe Billing charges, Tollgate charges no invoice.
    pub stripe_billing: bool,
    /// Meter events pushed to Stripe so far (while Stripe is the biller).
    pub meter_events_pushed: i64,
}

fn view(
    r: Option<PaymentSettingsRecord>,
    billing: Option<StripeBillingRecord>,
) -> PaymentSettingsView {
    let r = r.as_ref();
    PaymentSettingsView {
        stripe_billing: billing.as_ref().is_some_and(|b| b.enabled),
        meter_events_pushed: billing.as_ref().map_or(0, |b| b.pushed),
        stripe_secret_key_set: r.is_some_and(|r| r.stripe_secret_key.is_some()),
        stripe_secret_key_last4: r.and_then(|r| r.stripe_key_hint.clone()),
        stripe_webhook_secret_set: r.is_some_and(|r| r.stripe_webhook_secret.is_some()),
        manual_instructions: r.and_then(|r| r.manual_instructions.clone()),
    }
}

fn refused(detail: &str) -> Error {
    Error::invalid(Code::InvalidProviderSettings, detail)
}

/// Why a secret is refused (never echoing it).
fn check(secret: &str, prefixes: &[&str], field: &str) -> AppResult<()> {
    let shaped = prefixes.iter().any(|p| secret.starts_with(p))
        && secret.len() <= 255
        && secret.len() > 8
        && secret.bytes().all(|b| b.is_ascii_graphic());
    if shaped {
        Ok(())
    } else {
        Err(refused(&format!(
            "`{field}` must start with {} and be 9-255 printable characters",
            prefixes.join(" or ")
        )))
    }
}

pub async fn get_settings(engine: &Engine, workspace: &str) -> AppResult<PaymentSettingsView> {
    let ws = WorkspaceId::from(workspace);
    let store = engine.store();
    Ok(view(
        store.payment_settings(&ws).await?,
        store.stripe_billing(&ws).await?,
    ))
}

pub async fn set_settings(
    engine: &Engine,
    input: SetPaymentSettings,
) -> AppResult<PaymentSettingsView> {
    let SetPaymentSettings {
        workspace,
        stripe_secret_key,
        stripe_webhook_secret,
        manual_instructions,
        stripe_billing,
    } = input;
    let store = engine.store();
    let mut record = store
        .payment_settings(&WorkspaceId::from(&workspace))
        .await?
        .unwrap_or(PaymentSettingsRecord {
            workspace: workspace.clone(),
            stripe_secret_key: None,
            stripe_key_hint: None,
            stripe_webhook_secret: None,
            manual_instructions: None,
            updated_at: engine.now(),
        });
    let seal = |secret: &Secret, field: &str| -> AppResult<String> {
        master_key(engine)?
            .seal(secret.expose().as_bytes(), &context(&workspace, field))
            .map_err(Error::internal)
    };
    if let Some(key) = stripe_secret_key {
        if key.expose().is_empty() {
            record.stripe_secret_key = None;
            record.stripe_key_hint = None;
        } else {
            check(key.expose(), &["sk_", "rk_"], "stripe_secret_key")?;
            record.stripe_secret_key = Some(seal(&key, SECRET_KEY)?);
            let chars: Vec<char> = key.expose().chars().collect();
            record.stripe_key_hint = Some(chars[chars.len().saturating_sub(4)..].iter().collect());
        }
    }
    if let Some(secret) = stripe_webhook_secret {
        if secret.expose().is_empty() {
            record.stripe_webhook_secret = None;
        } else {
            check(secret.expose(), &["whsec_"], "stripe_webhook_secret")?;
            record.stripe_webhook_secret = Some(seal(&secret, WEBHOOK_SECRET)?);
        }
    }
    if let Some(text) = manual_instructions {
        if text.chars().count() > 2000 || text.contains('\0') {
            return Err(refused(
                "`manual_instructions` must be at most 2000 characters, without NUL",
            ));
        }
        record.manual_instructions = (!text.is_empty()).then_some(text);
    }
    if stripe_billing == Some(true) && record.stripe_secret_key.is_none() {
        return Err(refused(
            "`stripe_billing` needs the Stripe secret key (`stripe_secret_key`)",
        ));
    }
    record.updated_at = engine.now();
    store.put_payment_settings(&record).await?;
    let ws = WorkspaceId::from(&workspace);
    let billing = match stripe_billing {
        Some(enabled) => {
            let was = store.stripe_billing(&ws).await?.is_some_and(|b| b.enabled);
            let billing = store.set_stripe_biller(&ws, enabled, engine.now()).await?;
            if enabled && !was {
                // The push chain starts now; while it runs, each run enqueues the next (a
                // chain still running after a quick off-and-on is harmless: the cursor moves
                // from where it is only, and Stripe keeps each identifier once).
                super::meter_push::enqueue_push(engine, &workspace, engine.now()).await?;
            }
            Some(billing)
        }
        None => store.stripe_billing(&ws).await?,
    };
    Ok(view(Some(record), billing))
}
