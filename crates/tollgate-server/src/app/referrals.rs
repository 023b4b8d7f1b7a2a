//! The referral program (`referrals:` in the catalog, Apex case 7): each customer has a code to
//! share; a customer who signs up with it gets the program's `referred` coupon at once, and its
//! referrer gets the `referrer` coupon once, when the referred customer becomes paying (its
//! first invoice with a total above zero is paid).

use jiff::Timestamp;
use serde_json::json;
use tollgate_core::code::Code;
use tollgate_core::ids::{CustomerId, WorkspaceId};
use tollgate_store::StoreError;
use tollgate_store::billing::{CouponRedemptionRecord, InvoiceRecord, InvoiceStatus};
use tollgate_store::growth::ReferralRecord;

use crate::app::outbox::{self, types};
use crate::engine::{CompiledCatalog, Engine};
use crate::error::{AppResult, Error};
use crate::ids::new_id;

/// Letters and digits that cannot be misread for one another (no 0/O, 1/I).
const CODE_ALPHABET: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// A fresh 8-character code (40 random bits).
fn propose_code() -> String {
    let bits: u64 = rand::random();
    (0..8)
        .map(|i| char::from(CODE_ALPHABET[usize::try_from((bits >> (5 * i)) & 31).unwrap_or(0)]))
        .collect()
}

/// The customer's referral code, made on first asking and the same ever after.
pub async fn referral_code(engine: &Engine, workspace: &str, customer: &str) -> AppResult<String> {
    let ws = WorkspaceId::from(workspace);
    let id = CustomerId::from(customer);
    engine
        .store()
        .get_customer(&ws, customer)
        .await?
        .ok_or_else(|| Error::not_found("customer", customer))?;
    let now = crate::app::subscriptions::customer_now(engine, workspace, customer).await?;
    // A proposal that is another customer's code inserts nothing: propose again.
    for _ in 0..5 {
        match engine
            .store()
            .referral_code(&ws, &id, &propose_code(), now)
            .await
        {
            Ok(code) => return Ok(code),
            Err(StoreError::NotFound { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::internal("no free referral code after 5 tries"))
}

/// The referral of a customer signing up with `code`, with its welcome coupon; checked before
/// anything is written.
pub(crate) async fn referral_for(
    engine: &Engine,
    catalog: &CompiledCatalog,
    workspace: &str,
    referred: &str,
    code: &str,
    now: Timestamp,
) -> AppResult<(ReferralRecord, Option<CouponRedemptionRecord>)> {
    let Some(program) = &catalog.catalog.referrals else {
        return Err(Error::conflict(
            Code::NoReferralProgram,
            "the catalog has no `referrals:` program; signups cannot take a referral code",
        ));
    };
    let referrer = engine
        .store()
        .referrer_by_code(&WorkspaceId::from(workspace), code)
        .await?
        .ok_or_else(|| {
            Error::invalid(
                Code::UnknownReferralCode,
                format!("no customer has the referral code {code:?}"),
            )
        })?;
    let referral = ReferralRecord {
        workspace: workspace.to_owned(),
        referred: referred.to_owned(),
        referrer,
        code: code.to_owned(),
        created_at: now,
        rewarded_at: None,
    };
    let welcome = CouponRedemptionRecord {
        workspace: workspace.to_owned(),
        id: new_id("red"),
        customer: referred.to_owned(),
        coupon: program.referred.clone(),
        applied: 0,
        created_at: now,
    };
    Ok((referral, Some(welcome)))
}

/// Rewards the referrer of the invoice's customer if this paid invoice makes it a paying
/// customer. Once per referral however often it is called (the store's compare-and-set).
pub async fn reward_if_paying(
    engine: &Engine,
    workspace: &str,
    invoice: &InvoiceRecord,
) -> AppResult<bool> {
    if invoice.status != InvoiceStatus::Paid || invoice.total_minor <= 0 {
        return Ok(false);
    }
    let ws = WorkspaceId::from(workspace);
    let referred = CustomerId::from(&invoice.customer);
    let Some(referral) = engine.store().referral_of(&ws, &referred).await? else {
        return Ok(false);
    };
    if referral.rewarded_at.is_some() {
        return Ok(false);
    }
    let Some(program) = engine
        .latest_catalog(workspace)
        .await?
        .and_then(|c| c.catalog.referrals.clone())
    else {
        return Ok(false);
    };
    let now =
        crate::app::subscriptions::customer_now(engine, workspace, &referral.referrer).await?;
    let reward = CouponRedemptionRecord {
        workspace: workspace.to_owned(),
        id: new_id("red"),
        customer: referral.referrer.clone(),
        coupon: program.referrer.clone(),
        applied: 0,
        created_at: now,
    };
    let event = outbox::event(
        engine,
        workspace,
        Some(&referral.referrer),
        types::REFERRAL_REWARDED,
        now,
        json!({
            "referrer": referral.referrer,
            "referred": referral.referred,
            "coupon": program.referrer,
            "invoice": invoice.id,
        }),
    );
    Ok(engine
        .store()
        .reward_referral(&ws, &referred, now, &reward, &[event])
        .await?)
}

#[cfg(test)]
mod tests {
    #[test]
    fn codes_are_8_unambiguous_characters() {
        for _ in 0..100 {
            let code = super::propose_code();
            assert_eq!(code.len(), 8);
            assert!(
                code.bytes().all(|b| super::CODE_ALPHABET.contains(&b)),
                "{code}"
            );
        }
    }
}
