//! Stripe Billing, for workspaces where Stripe is the biller (docs/PAYMENTS.md, "Stripe as the
//! biller"): the catalog as Products, Prices and Billing Meters, and usage as meter events.
//!
//! Stripe's Prices are immutable: a changed price is a new Price that takes the old one's
//! `lookup_key` (`transfer_lookup_key=true`), then the old one is deactivated. Products are
//! made with Tollgate's own id, Prices found by their lookup key, Meters by their
//! `event_name`, so a second sync finds what the first one made. A meter event carries an
//! `identifier` Stripe keeps once; it is also the call's idempotency key.

use rust_decimal::Decimal;
use serde::Deserialize;

use super::{ProviderError, Stripe, encode_form, pair, path_segment, unreadable};

/// What Stripe answers about Billing, as Tollgate reads it.
pub mod wire {
    use std::collections::BTreeMap;

    use serde::Deserialize;
    use serde_json::Value;

    #[derive(Debug, Clone, Deserialize)]
    pub struct Product {
        pub id: String,
        pub name: String,
        pub active: bool,
        #[serde(default)]
        pub metadata: BTreeMap<String, String>,
    }

    #[derive(Debug, Clone, Deserialize)]
    pub struct Recurring {
        pub interval: String,
        pub interval_count: i64,
        #[serde(default)]
        pub usage_type: Option<String>,
        #[serde(default)]
        pub meter: Option<String>,
    }

    #[derive(Debug, Clone, Deserialize)]
    pub struct Price {
        pub id: String,
        pub active: bool,
        pub currency: String,
        #[serde(default)]
        pub unit_amount: Option<i64>,
        #[serde(default)]
        pub unit_amount_decimal: Option<String>,
        #[serde(default)]
        pub lookup_key: Option<String>,
        #[serde(default)]
        pub product: Option<Value>,
        #[serde(default)]
        pub recurring: Option<Recurring>,
        #[serde(default)]
        pub metadata: BTreeMap<String, String>,
    }

    #[derive(Debug, Clone, Deserialize)]
    pub struct Meter {
        pub id: String,
        pub event_name: String,
        pub display_name: String,
        pub status: String,
    }

    #[derive(Debug, Clone, Deserialize)]
    pub struct MeterEvent {
        pub event_name: String,
        pub identifier: String,
        pub timestamp: i64,
        #[serde(default)]
        pub payload: BTreeMap<String, String>,
    }
}

/// A decimal price in major units as Stripe's `unit_amount_decimal`: minor units (ISK and UGX
/// times 100, as [`super::to_stripe_amount`]), at most 12 decimal places, exact (never a float).
/// `None` when it needs more places than Stripe keeps.
pub fn unit_amount_decimal(currency: &str, major: Decimal, minor_digits: u32) -> Option<String> {
    let mut scale = Decimal::from(10_i64.checked_pow(minor_digits)?);
    if super::TWO_DECIMAL_IN_STRIPE.contains(&currency.to_ascii_uppercase().as_str()) {
        scale = scale.checked_mul(Decimal::from(100))?;
    }
    let minor = major.checked_mul(scale)?.normalize();
    (minor.scale() <= 12).then(|| minor.to_string())
}

/// A meter event to push.
#[derive(Debug, Clone)]
pub struct MeterEventIn<'a> {
    pub event_name: &'a str,
    pub stripe_customer: &'a str,
    /// A decimal string (Tollgate's exact quantity).
    pub value: &'a str,
    /// Unique per event and meter: Stripe keeps one event per identifier.
    pub identifier: &'a str,
    /// Unix seconds: when the usage happened.
    pub timestamp: i64,
}

fn list_path(base: &str, query: &[(String, String)]) -> String {
    format!("{base}?{}", encode_form(query))
}

#[derive(Deserialize)]
struct Page<T> {
    data: Vec<T>,
    has_more: bool,
}

impl Stripe {
    /// A Product by id: `None` when Stripe has none.
    pub async fn product(&self, id: &str) -> Result<Option<wire::Product>, ProviderError> {
        let path = format!("/v1/products/{}", path_segment(id)?);
        match self.call::<wire::Product>(&path, None).await {
            Ok(product) => Ok(Some(product)),
            Err(ProviderError::Refused(r)) if r.status == 404 => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates a Product (`form` holds its `id`), or updates Product `update` with `form`.
    pub async fn write_product(
        &self,
        update: Option<&str>,
        form: &[(String, String)],
        idempotency_key: &str,
    ) -> Result<wire::Product, ProviderError> {
        let path = match update {
            Some(id) => format!("/v1/products/{}", path_segment(id)?),
            None => "/v1/products".to_owned(),
        };
        self.post(&path, form, idempotency_key).await
    }

    /// The active Prices holding `lookup_key` (at most one, as Stripe keeps lookup keys unique).
    pub async fn prices_by_lookup_key(
        &self,
        lookup_key: &str,
    ) -> Result<Vec<wire::Price>, ProviderError> {
        let query = [pair("lookup_keys[]", lookup_key), pair("active", "true")];
        let page: Page<wire::Price> = self.call(&list_path("/v1/prices", &query), None).await?;
        Ok(page.data)
    }

    /// The active Prices of a Product (at most 100).
    pub async fn active_prices_of(&self, product: &str) -> Result<Vec<wire::Price>, ProviderError> {
        let query = [
            pair("product", path_segment(product)?),
            pair("active", "true"),
            pair("limit", "100"),
        ];
        let page: Page<wire::Price> = self.call(&list_path("/v1/prices", &query), None).await?;
        Ok(page.data)
    }

    pub async fn create_price(
        &self,
        form: &[(String, String)],
        idempotency_key: &str,
    ) -> Result<wire::Price, ProviderError> {
        self.post("/v1/prices", form, idempotency_key).await
    }

    /// Deactivates a Price (Prices cannot be changed or deleted; subscriptions on it keep it).
    pub async fn deactivate_price(&self, id: &str) -> Result<wire::Price, ProviderError> {
        let path = format!("/v1/prices/{}", path_segment(id)?);
        let key = format!("tollgate:deactivate:{id}");
        self.post(&path, &[pair("active", "false")], &key).await
    }

    /// The account's active Billing Meters (at most `max_pages` pages of 100).
    pub async fn meters(&self, max_pages: usize) -> Result<Vec<wire::Meter>, ProviderError> {
        let mut all = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..max_pages {
            let mut query = vec![pair("status", "active"), pair("limit", "100")];
            if let Some(id) = &after {
                query.push(pair("starting_after", path_segment(id)?));
            }
            let page: Page<wire::Meter> = self
                .call(&list_path("/v1/billing/meters", &query), None)
                .await?;
            after = page.data.last().map(|m| m.id.clone());
            all.extend(page.data);
            if !page.has_more || after.is_none() {
                break;
            }
        }
        Ok(all)
    }

    pub async fn create_meter(
        &self,
        form: &[(String, String)],
        idempotency_key: &str,
    ) -> Result<wire::Meter, ProviderError> {
        self.post("/v1/billing/meters", form, idempotency_key).await
    }

    /// Pushes one meter event; its identifier is the idempotency key too, so a retried call is
    /// answered as the first one was. An identifier Stripe already holds (a push repeated after
    /// its answer was lost beyond the idempotency window) counts as pushed.
    pub async fn meter_event(&self, event: &MeterEventIn<'_>) -> Result<(), ProviderError> {
        let form = vec![
            pair("event_name", event.event_name),
            pair("payload[stripe_customer_id]", event.stripe_customer),
            pair("payload[value]", event.value),
            pair("identifier", event.identifier),
            pair("timestamp", event.timestamp.to_string()),
        ];
        match self
            .post::<wire::MeterEvent>("/v1/billing/meter_events", &form, event.identifier)
            .await
        {
            Ok(answer) if answer.identifier == event.identifier => Ok(()),
            Ok(answer) => Err(unreadable(format!(
                "meter event {} answered as {}",
                event.identifier, answer.identifier
            ))),
            Err(ProviderError::Refused(r))
                if r.status == 400 && r.code.as_deref() == Some("resource_already_exists") =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_prices_are_exact_minor_unit_decimals() {
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        assert_eq!(
            unit_amount_decimal("USD", d("0.002"), 2).as_deref(),
            Some("0.2")
        );
        assert_eq!(
            unit_amount_decimal("USD", d("20.00"), 2).as_deref(),
            Some("2000")
        );
        assert_eq!(unit_amount_decimal("JPY", d("3"), 0).as_deref(), Some("3"));
        assert_eq!(
            unit_amount_decimal("ISK", d("1.5"), 0).as_deref(),
            Some("150")
        );
        assert_eq!(
            unit_amount_decimal("KWD", d("0.0015"), 3).as_deref(),
            Some("1.5")
        );
        assert_eq!(
            unit_amount_decimal("USD", d("0.000000000000001"), 2),
            None,
            "beyond Stripe's 12 places"
        );
    }
}
