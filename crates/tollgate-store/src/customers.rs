//! Customer lifecycle writes that touch several tables at once: a self-serve signup (customer,
//! subscription and first key together) and an archive (the customer marked, its keys revoked,
//! its subscriptions ended). Each is one transaction, so a crash leaves all of it or none.
//!
//! The rules (which subscriptions end, how) are the caller's: it hands in the records as they
//! must be stored, as for every other method of the store.

use async_trait::async_trait;
use jiff::Timestamp;
use tollgate_core::ids::{CustomerId, WorkspaceId};

use crate::backend::{Backend, Conn, args};
use crate::codec::{self, insert_error};
use crate::sql;
use crate::store::{require_row, subscription_args};
use crate::{ApiKeyRecord, CustomerRecord, StoreResult, SubscriptionRecord};

/// What a self-serve signup writes, all or nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct Signup {
    pub customer: CustomerRecord,
    pub subscription: SubscriptionRecord,
    pub key: ApiKeyRecord,
    /// Who referred the customer, with its welcome coupon.
    pub referral: Option<(
        crate::growth::ReferralRecord,
        Option<crate::billing::CouponRedemptionRecord>,
    )>,
    /// The events announcing the signup (`subscription.created`).
    pub events: Vec<crate::outbox::OutboxEvent>,
}

#[async_trait]
pub trait CustomerStore {
    /// Stores a new customer with its first subscription and API key in one transaction;
    /// `AlreadyExists` (customer) if the id is taken, and then nothing is written.
    async fn signup(&self, signup: &Signup) -> StoreResult<()>;
    /// Archives a customer in one transaction: sets `archived_at` (the first archive time is
    /// kept), revokes every key not yet revoked and stores `subscriptions` as given (the caller
    /// has ended them). Returns the keys this call revoked, for the caller's key caches.
    /// `NotFound` if there is no such customer.
    async fn archive_customer(
        &self,
        workspace: &WorkspaceId,
        customer: &CustomerId,
        at: Timestamp,
        subscriptions: &[SubscriptionRecord],
    ) -> StoreResult<Vec<ApiKeyRecord>>;
}

#[async_trait]
impl<B: Backend> CustomerStore for B {
    async fn signup(&self, s: &Signup) -> StoreResult<()> {
        let c = &s.customer;
        let mut tx = self.write(&c.workspace).await?;
        let values = args![
            &c.workspace,
            &c.id,
            &c.name,
            &c.email,
            c.suspended,
            c.has_payment_method,
            &c.test_clock,
            &c.metadata,
            c.created_at,
            &c.address,
            &c.tax_ids,
            c.archived_at,
        ];
        tx.execute(sql::INSERT_CUSTOMER, values)
            .await
            .map_err(|e| insert_error(e, "customer", &c.id, "workspace", &c.workspace))?;
        let sub = &s.subscription;
        tx.execute(sql::INSERT_SUBSCRIPTION, &subscription_args(sub))
            .await
            .map_err(|e| insert_error(e, "subscription", &sub.id, "customer", &sub.customer))?;
        let k = &s.key;
        let values = args![
            &k.workspace,
            &k.id,
            &k.customer,
            &k.name,
            &k.secret_hash,
            &k.prefix,
            k.created_at,
            k.revoked_at,
        ];
        tx.execute(sql::INSERT_API_KEY, values)
            .await
            .map_err(|e| insert_error(e, "api_key", &k.id, "customer", &k.customer))?;
        if let Some((referral, welcome)) = &s.referral {
            crate::growth::insert_referral(&mut tx, referral, welcome.as_ref()).await?;
        }
        crate::outbox::append(&mut tx, &s.events).await?;
        Ok(tx.commit().await?)
    }

    async fn archive_customer(
        &self,
        workspace: &WorkspaceId,
        customer: &CustomerId,
        at: Timestamp,
        subscriptions: &[SubscriptionRecord],
    ) -> StoreResult<Vec<ApiKeyRecord>> {
        let mut tx = self.write(workspace).await?;
        let rows = tx
            .execute(sql::ARCHIVE_CUSTOMER, args![workspace, customer, at])
            .await?;
        require_row(rows, "customer", customer.as_str())?;
        let revoked = tx
            .fetch_all(sql::REVOKE_CUSTOMER_KEYS, args![workspace, customer, at])
            .await?;
        let revoked = revoked
            .iter()
            .map(codec::api_key)
            .collect::<StoreResult<Vec<_>>>()?;
        for sub in subscriptions
            .iter()
            .filter(|s| s.customer == customer.as_str())
        {
            let rows = tx
                .execute(sql::UPDATE_SUBSCRIPTION, &subscription_args(sub))
                .await?;
            require_row(rows, "subscription", &sub.id)?;
        }
        tx.commit().await?;
        Ok(revoked)
    }
}
