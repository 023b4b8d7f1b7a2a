//! Issue a signed download link for a product the customer bought (and paid for).

use jiff::{SignedDuration, Timestamp};
use tollgate_core::code::Code;
use tollgate_core::ids::{CustomerId, WorkspaceId};
use tollgate_store::billing::InvoiceStatus;

use super::{Claims, DEFAULT_TTL_SECONDS, DOWNLOAD, buys, grants, sign};
use crate::app::licenses::master_key;
use crate::app::subscriptions::customer_now;
use crate::engine::Engine;
use crate::error::{AppResult, Error, Kind};

#[derive(Debug, Clone)]
pub struct IssueLink {
    pub workspace: String,
    pub customer: String,
    pub product: String,
}

/// A link, as handed to the customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadLink {
    /// The link's credential: `GET /v1/downloads/{token}`.
    pub token: String,
    pub customer: String,
    pub product: String,
    /// The paid invoice of the purchase that grants it.
    pub invoice: String,
    /// The link works before this instant (on the customer's clock), not at or after it.
    pub expires_at: Timestamp,
}

/// A link for `product`, valid for the catalog's `download_link_ttl` from now on the customer's
/// clock. Refused for a product that grants no download (`not_downloadable`), one the customer
/// never bought (`not_purchased`) or whose purchase is not paid yet (`purchase_not_paid`).
pub async fn issue(engine: &Engine, input: IssueLink) -> AppResult<DownloadLink> {
    let IssueLink {
        workspace,
        customer,
        product,
    } = input;
    let master = master_key(engine)?;
    let now = customer_now(engine, &workspace, &customer).await?;
    let catalog = engine.latest_catalog(&workspace).await?.ok_or_else(|| {
        Error::conflict(
            Code::NoCatalog,
            "the workspace has no catalog: nothing to sell",
        )
    })?;
    let item = catalog.catalog.products.get(&product).ok_or_else(|| {
        Error::new(
            Kind::NotFound,
            Code::UnknownProduct,
            format!("the catalog has no product {product:?}"),
        )
    })?;
    if !item.grants.iter().any(|g| g == DOWNLOAD) {
        return Err(Error::conflict(
            Code::NotDownloadable,
            format!(
                "product {product:?} grants no download (its catalog entry has no `grants: [download]`)"
            ),
        ));
    }
    let purchases: Vec<_> = engine
        .store()
        .list_invoices(&WorkspaceId::from(&workspace), &CustomerId::from(&customer))
        .await?
        .into_iter()
        .filter(|i| buys(i, &product))
        .collect();
    // The newest purchase that is paid (and not refunded) grants it.
    let mut paid = None;
    for purchase in purchases.iter().rev() {
        if grants(engine, purchase).await? {
            paid = Some(purchase);
            break;
        }
    }
    let Some(paid) = paid else {
        return Err(
            if purchases
                .iter()
                .any(|i| matches!(i.status, InvoiceStatus::Open | InvoiceStatus::Uncollectible))
            {
                Error::conflict(
                    Code::PurchaseNotPaid,
                    format!("the purchase of {product:?} is not paid yet: pay its invoice first"),
                )
            } else {
                Error::conflict(
                    Code::NotPurchased,
                    format!(
                        "customer {customer:?} has not bought {product:?} (or it was refunded)"
                    ),
                )
            },
        );
    };
    let ttl = catalog
        .catalog
        .policies
        .download_link_ttl
        .map_or(DEFAULT_TTL_SECONDS, |t| t.seconds());
    let ttl = SignedDuration::from_secs(i64::try_from(ttl).map_err(Error::internal)?);
    // Whole seconds: the token carries Unix seconds.
    let issued = Timestamp::from_second(now.as_second()).map_err(Error::internal)?;
    let expires_at = issued.checked_add(ttl).map_err(Error::internal)?;
    let claims = Claims {
        w: workspace,
        c: customer,
        p: product,
        i: paid.id.clone(),
        exp: expires_at.as_second(),
    };
    let token = sign(master, &claims)?;
    Ok(DownloadLink {
        token,
        customer: claims.c,
        product: claims.p,
        invoice: claims.i,
        expires_at,
    })
}
