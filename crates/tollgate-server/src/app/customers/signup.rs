//! Self-serve signup in one call (`POST /v1/signups`): a new customer, its subscription to a
//! plan (the plan's free trial when it has one, else paid from now) and its first API key, all
//! written in one store transaction, so a failure leaves no customer without its key or
//! subscription. The key's secret is in the answer and nowhere else: the store keeps its hash.

use indexmap::IndexMap;
use tollgate_core::code::Code;
use tollgate_store::CustomerRecord;
use tollgate_store::SubscriptionRecord;
use tollgate_store::customers::Signup as SignupRows;

use super::keys::{NewKey, new_key};
use super::profile::{
    Address, Metadata, TaxId, address_json, check_address, check_email, check_metadata, check_name,
    check_tax_ids, tax_ids_json,
};
use crate::app::subscriptions::new_subscription;
use crate::engine::{CompiledCatalog, Engine};
use crate::error::{AppResult, Error};
use std::sync::Arc;

#[derive(Debug, Clone, Default)]
pub struct Signup {
    pub workspace: String,
    /// The customer's id (checked by the caller); generated when the caller has none.
    pub customer: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub address: Option<Address>,
    pub tax_ids: Vec<TaxId>,
    pub metadata: Metadata,
    pub has_payment_method: bool,
    pub test_clock: Option<String>,
    pub plan: String,
    /// The first key's name.
    pub key_name: Option<String>,
    /// Another customer's referral code: the catalog's referral program's welcome coupon is
    /// applied, and that customer is rewarded when this one becomes paying.
    pub referral_code: Option<String>,
}

/// What a signup made; `key.secret` is shown once.
pub struct SignupOutcome {
    pub customer: CustomerRecord,
    pub subscription: SubscriptionRecord,
    pub catalog: Arc<CompiledCatalog>,
    pub key: NewKey,
}

pub async fn signup(engine: &Engine, input: Signup) -> AppResult<SignupOutcome> {
    let Signup {
        workspace,
        customer,
        name,
        email,
        address,
        tax_ids,
        metadata,
        has_payment_method,
        test_clock,
        plan,
        key_name,
        referral_code,
    } = input;
    if let Some(name) = &name {
        check_name(name)?;
    }
    if let Some(email) = &email {
        check_email(email)?;
    }
    if let Some(address) = &address {
        check_address(address)?;
    }
    check_tax_ids(&tax_ids)?;
    check_metadata(&metadata)?;
    // A test clock that does not exist is a 404 here, before anything is written.
    let now = engine.now_for(&workspace, test_clock.as_deref()).await?;
    let catalog = engine.latest_catalog(&workspace).await?.ok_or_else(|| {
        Error::conflict(
            Code::NoCatalog,
            "apply a catalog before signing customers up",
        )
    })?;
    // The plan's trial when it has one (`None`), else paid at once.
    let subscription = new_subscription(
        &catalog,
        &workspace,
        &customer,
        &plan,
        None,
        &IndexMap::new(),
        now,
    )?;
    crate::app::licenses::require_master_key_for(engine, &workspace, catalog.version, &plan)
        .await?;
    let record = CustomerRecord {
        workspace: workspace.clone(),
        id: customer.clone(),
        name,
        email,
        suspended: false,
        has_payment_method,
        test_clock,
        metadata: serde_json::Value::Object(metadata),
        created_at: now,
        address: address_json(address.as_ref())?,
        tax_ids: tax_ids_json(&tax_ids)?,
        archived_at: None,
    };
    let referral = match referral_code {
        Some(code) => Some(
            crate::app::referrals::referral_for(
                engine, &catalog, &workspace, &customer, &code, now,
            )
            .await?,
        ),
        None => None,
    };
    let key = new_key(&workspace, &customer, key_name, now);
    let created = crate::app::outbox::event(
        engine,
        &workspace,
        Some(&customer),
        crate::app::outbox::types::SUBSCRIPTION_CREATED,
        now,
        crate::app::subscriptions::event_data(&subscription),
    );
    // The welcome email's event: the key's last four characters, never the key.
    let signed_up = crate::app::outbox::event(
        engine,
        &workspace,
        Some(&customer),
        crate::app::outbox::types::CUSTOMER_SIGNED_UP,
        now,
        serde_json::json!({
            "customer": customer,
            "email": record.email,
            "plan": subscription.plan,
            "subscription": subscription.id,
            "trial_end": subscription.trial_end,
            "key": key.record.id,
            "key_last4": last4(&key.secret),
        }),
    );
    let rows = SignupRows {
        customer: record,
        subscription,
        key: key.record.clone(),
        referral,
        events: vec![created, signed_up],
    };
    engine.store().signup(&rows).await?;
    engine.refresh_customer(&workspace, &customer).await?;
    // A plan without a trial is billed its opening invoice now.
    crate::app::subscriptions::open_now(engine, &rows.subscription).await?;
    // Its trial ends, and its periods renew, by themselves.
    crate::app::jobs::schedule_subscription(engine, &rows.subscription, now).await?;
    crate::app::licenses::on_subscribed(engine, &rows.subscription, now).await?;
    Ok(SignupOutcome {
        customer: rows.customer,
        subscription: rows.subscription,
        catalog,
        key,
    })
}

/// The last four characters of a key's secret: enough to recognise it, useless to use it.
fn last4(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    chars[chars.len().saturating_sub(4)..].iter().collect()
}
