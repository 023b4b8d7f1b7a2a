//! Apply a catalog coupon to a customer's next invoices (for the coupon's duration).

use tollgate_core::code::Code;
use tollgate_store::billing::CouponRedemptionRecord;

use super::{current_catalog, existing_customer};
use crate::engine::Engine;
use crate::error::{AppResult, Error};
use crate::ids::new_id;

#[derive(Debug, Clone)]
pub struct ApplyCoupon {
    pub workspace: String,
    pub customer: String,
    pub coupon: String,
}

pub async fn apply_coupon(
    engine: &Engine,
    input: ApplyCoupon,
) -> AppResult<CouponRedemptionRecord> {
    let ApplyCoupon {
        workspace,
        customer,
        coupon,
    } = input;
    existing_customer(engine, &workspace, &customer).await?;
    let catalog = current_catalog(engine, &workspace).await?;
    if !catalog.catalog.coupons.contains_key(&coupon) {
        return Err(Error::invalid(
            Code::UnknownCoupon,
            format!("coupon {coupon:?} is not in the catalog"),
        ));
    }
    // An amount off needs an amount in the customer's currency; a percentage has one in all.
    let profile =
        crate::billing::profiles::customer_profile(engine.store().as_ref(), &workspace, &customer)
            .await?;
    let currency = profile.currency(&catalog.catalog)?;
    if !catalog.catalog.coupon_priced_in(&coupon, currency) {
        return Err(Error::conflict(
            Code::CouponNotInCurrency,
            format!(
                "coupon {coupon:?} takes an amount off with no amount in {}, the customer's currency",
                currency.code()
            ),
        ));
    }
    let created_at = crate::app::subscriptions::customer_now(engine, &workspace, &customer).await?;
    let redemption = CouponRedemptionRecord {
        workspace,
        id: new_id("red"),
        customer,
        coupon,
        applied: 0,
        created_at,
    };
    engine.store().add_coupon_redemption(&redemption).await?;
    Ok(redemption)
}
