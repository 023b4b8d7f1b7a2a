//! Usage alerts and referrals: the two ways the store remembers that something already happened
//! once, so that it never happens twice however many nodes race to do it.
//!
//! An alert is fired by inserting its row; the primary key (customer, meter, period, threshold)
//! makes the second insert a no-op, and its domain event is written only with the first. A
//! referral reward is granted by moving `rewarded_at` from NULL to a time, with the referrer's
//! coupon and the event in the same transaction.

use async_trait::async_trait;
use jiff::Timestamp;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use tollgate_core::ids::{CustomerId, WorkspaceId};

use crate::backend::{Backend, Conn, args, run_all, run_optional};
use crate::billing::CouponRedemptionRecord;
use crate::codec::{Columns, insert_error};
use crate::outbox::{OutboxEvent, append};
use crate::{StoreResult, sql};

/// A usage alert that fired: `value` of `meter` reached `threshold` percent of the allowance in
/// the period starting at `period_start`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageAlertRecord {
    pub workspace: String,
    pub customer: String,
    pub meter: String,
    pub period_start: Timestamp,
    pub threshold: Decimal,
    /// The meter's value when the alert fired.
    pub value: Decimal,
    pub fired_at: Timestamp,
}

/// One customer brought by another through its referral code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReferralRecord {
    pub workspace: String,
    pub referred: String,
    pub referrer: String,
    pub code: String,
    pub created_at: Timestamp,
    /// When the referrer was rewarded (the referred customer became paying); once.
    pub rewarded_at: Option<Timestamp>,
}

#[async_trait]
pub trait GrowthStore: Send + Sync {
    /// Fires an alert: stores it with its events and answers `true`, or answers `false` and
    /// writes nothing when the same alert already fired.
    async fn fire_usage_alert(
        &self,
        alert: &UsageAlertRecord,
        events: &[OutboxEvent],
    ) -> StoreResult<bool>;
    /// The alerts a customer has had, oldest first.
    async fn usage_alerts(
        &self,
        workspace: &WorkspaceId,
        customer: &CustomerId,
    ) -> StoreResult<Vec<UsageAlertRecord>>;
    /// The customer's referral code, giving it `proposed` if it has none yet (a customer keeps
    /// one code for good).
    async fn referral_code(
        &self,
        workspace: &WorkspaceId,
        customer: &CustomerId,
        proposed: &str,
        at: Timestamp,
    ) -> StoreResult<String>;
    /// The customer whose code this is.
    async fn referrer_by_code(
        &self,
        workspace: &WorkspaceId,
        code: &str,
    ) -> StoreResult<Option<String>>;
    /// Records who referred whom, with the referred customer's welcome coupon, in one
    /// transaction. A customer is referred at most once (a second one is a conflict).
    async fn add_referral(
        &self,
        referral: &ReferralRecord,
        welcome: Option<&CouponRedemptionRecord>,
    ) -> StoreResult<()>;
    async fn referral_of(
        &self,
        workspace: &WorkspaceId,
        referred: &CustomerId,
    ) -> StoreResult<Option<ReferralRecord>>;
    /// The referrals a customer made, oldest first.
    async fn referrals_by(
        &self,
        workspace: &WorkspaceId,
        referrer: &CustomerId,
    ) -> StoreResult<Vec<ReferralRecord>>;
    /// Rewards the referrer of `referred` once: marks the referral rewarded and stores `reward`
    /// (the referrer's coupon) and `events`, answering `true`; `false` and nothing written if it
    /// was rewarded already or there is no referral.
    async fn reward_referral(
        &self,
        workspace: &WorkspaceId,
        referred: &CustomerId,
        at: Timestamp,
        reward: &CouponRedemptionRecord,
        events: &[OutboxEvent],
    ) -> StoreResult<bool>;
}

fn alert(r: &impl Columns) -> StoreResult<UsageAlertRecord> {
    Ok(UsageAlertRecord {
        workspace: r.text("workspace")?,
        customer: r.text("customer")?,
        meter: r.text("meter")?,
        period_start: r.time("period_start")?,
        threshold: r.dec("threshold")?,
        value: r.dec("value")?,
        fired_at: r.time("fired_at")?,
    })
}

fn referral(r: &impl Columns) -> StoreResult<ReferralRecord> {
    Ok(ReferralRecord {
        workspace: r.text("workspace")?,
        referred: r.text("referred")?,
        referrer: r.text("referrer")?,
        code: r.text("code")?,
        created_at: r.time("created_at")?,
        rewarded_at: r.opt_time("rewarded_at")?,
    })
}

async fn insert_redemption<C: Conn>(tx: &mut C, r: &CouponRedemptionRecord) -> StoreResult<()> {
    let values = args![
        &r.workspace,
        &r.id,
        &r.customer,
        &r.coupon,
        r.applied,
        r.created_at,
    ];
    tx.execute(sql::INSERT_REDEMPTION, values)
        .await
        .map_err(|e| insert_error(e, "coupon redemption", &r.id, "workspace", &r.workspace))?;
    Ok(())
}

/// Inserts a referral and the referred customer's welcome coupon inside `tx`.
pub(crate) async fn insert_referral<C: Conn>(
    tx: &mut C,
    r: &ReferralRecord,
    welcome: Option<&CouponRedemptionRecord>,
) -> StoreResult<()> {
    let values = args![
        &r.workspace,
        &r.referred,
        &r.referrer,
        &r.code,
        r.created_at,
    ];
    tx.execute(sql::INSERT_REFERRAL, values)
        .await
        .map_err(|e| insert_error(e, "referral", &r.referred, "customer", &r.referrer))?;
    if let Some(welcome) = welcome {
        insert_redemption(tx, welcome).await?;
    }
    Ok(())
}

#[async_trait]
impl<B: Backend> GrowthStore for B {
    async fn fire_usage_alert(
        &self,
        a: &UsageAlertRecord,
        events: &[OutboxEvent],
    ) -> StoreResult<bool> {
        let threshold = a.threshold.normalize().to_string();
        let value = a.value.to_string();
        let values = args![
            &a.workspace,
            &a.customer,
            &a.meter,
            a.period_start,
            &threshold,
            &value,
            a.fired_at,
        ];
        let mut tx = self.write(&a.workspace).await?;
        let inserted = tx
            .execute(sql::INSERT_USAGE_ALERT, values)
            .await
            .map_err(|e| insert_error(e, "usage alert", &a.meter, "customer", &a.customer))?;
        if inserted == 0 {
            return Ok(false);
        }
        append(&mut tx, events).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn usage_alerts(
        &self,
        workspace: &WorkspaceId,
        customer: &CustomerId,
    ) -> StoreResult<Vec<UsageAlertRecord>> {
        let values = args![workspace, customer];
        run_all(self.read(workspace), sql::USAGE_ALERTS, values, alert).await
    }

    async fn referral_code(
        &self,
        workspace: &WorkspaceId,
        customer: &CustomerId,
        proposed: &str,
        at: Timestamp,
    ) -> StoreResult<String> {
        let mut tx = self.write(workspace).await?;
        tx.execute(
            sql::INSERT_REFERRAL_CODE,
            args![workspace, proposed, customer, at],
        )
        .await
        .map_err(|e| insert_error(e, "referral code", proposed, "customer", customer.as_str()))?;
        let row = tx
            .fetch_optional(sql::REFERRAL_CODE_OF, args![workspace, customer])
            .await?;
        tx.commit().await?;
        match row {
            Some(r) => r.text("code"),
            None => Err(crate::StoreError::NotFound {
                kind: "customer",
                id: customer.to_string(),
            }),
        }
    }

    async fn referrer_by_code(
        &self,
        workspace: &WorkspaceId,
        code: &str,
    ) -> StoreResult<Option<String>> {
        let values = args![workspace, code];
        run_optional(self.read(workspace), sql::REFERRER_BY_CODE, values, |r| {
            r.text("customer")
        })
        .await
    }

    async fn add_referral(
        &self,
        r: &ReferralRecord,
        welcome: Option<&CouponRedemptionRecord>,
    ) -> StoreResult<()> {
        let mut tx = self.write(&r.workspace).await?;
        insert_referral(&mut tx, r, welcome).await?;
        Ok(tx.commit().await?)
    }

    async fn referral_of(
        &self,
        workspace: &WorkspaceId,
        referred: &CustomerId,
    ) -> StoreResult<Option<ReferralRecord>> {
        let values = args![workspace, referred];
        run_optional(self.read(workspace), sql::REFERRAL_OF, values, referral).await
    }

    async fn referrals_by(
        &self,
        workspace: &WorkspaceId,
        referrer: &CustomerId,
    ) -> StoreResult<Vec<ReferralRecord>> {
        let values = args![workspace, referrer];
        run_all(self.read(workspace), sql::REFERRALS_BY, values, referral).await
    }

    async fn reward_referral(
        &self,
        workspace: &WorkspaceId,
        referred: &CustomerId,
        at: Timestamp,
        reward: &CouponRedemptionRecord,
        events: &[OutboxEvent],
    ) -> StoreResult<bool> {
        let mut tx = self.write(workspace).await?;
        let moved = tx
            .execute(sql::REWARD_REFERRAL, args![workspace, referred, at])
            .await?;
        if moved == 0 {
            return Ok(false);
        }
        insert_redemption(&mut tx, reward).await?;
        append(&mut tx, events).await?;
        tx.commit().await?;
        Ok(true)
    }
}
