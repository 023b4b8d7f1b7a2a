//! A customer's money outside the bill run: prepaid credit, coupons, one-time purchases, the
//! balance credit notes credit.

mod apply_coupon;
mod balance;
mod grant_credit;
mod progressive;
mod purchase;

pub use apply_coupon::{ApplyCoupon, apply_coupon};
pub use balance::{CustomerBalance, customer_balance};
pub use grant_credit::{GrantCredit, grant_credit};
pub use progressive::bill_progressive;
pub use purchase::{Purchase, Purchased, purchase};

use std::sync::Arc;

use tollgate_core::code::Code;
use tollgate_core::ids::{CustomerId, WorkspaceId};
use tollgate_store::CustomerRecord;

use crate::engine::{CompiledCatalog, Engine};
use crate::error::{AppResult, Error};

async fn existing_customer(
    engine: &Engine,
    workspace: &str,
    customer: &str,
) -> AppResult<CustomerRecord> {
    engine
        .store()
        .get_customer(&WorkspaceId::from(workspace), &CustomerId::from(customer))
        .await?
        .ok_or_else(|| Error::not_found("customer", customer))
}

async fn current_catalog(engine: &Engine, workspace: &str) -> AppResult<Arc<CompiledCatalog>> {
    engine
        .latest_catalog(workspace)
        .await?
        .ok_or_else(|| Error::conflict(Code::NoCatalog, "apply a catalog first"))
}
