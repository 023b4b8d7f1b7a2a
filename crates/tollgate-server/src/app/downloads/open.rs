//! Open a download link: the link is the credential (no API key), checked for its tag, its
//! expiry on the customer's clock and the purchase still being paid.

use jiff::Timestamp;
use tollgate_core::code::Code;
use tollgate_core::ids::WorkspaceId;

use super::{grants, verify};
use crate::app::licenses::master_key;
use crate::app::subscriptions::customer_now;
use crate::engine::Engine;
use crate::error::{AppResult, Error};

/// What a valid link grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    pub workspace: String,
    pub customer: String,
    pub product: String,
    /// The product's name in the latest catalog, if it still has the product.
    pub name: Option<String>,
    pub invoice: String,
    pub expires_at: Timestamp,
    /// The product's `download_url`, where the link redirects.
    pub download_url: Option<String>,
}

/// Checks `token`: `invalid_download_link` (403) when it is malformed, altered or its purchase
/// is no longer paid (voided), `download_link_expired` (410) at or after its expiry.
pub async fn open(engine: &Engine, token: &str) -> AppResult<Opened> {
    let master = master_key(engine)?;
    let claims = verify(master, token)?;
    let expires_at = Timestamp::from_second(claims.exp).map_err(Error::internal)?;
    let now = customer_now(engine, &claims.w, &claims.c).await?;
    if now >= expires_at {
        return Err(Error::gone(
            Code::DownloadLinkExpired,
            format!("this download link expired at {expires_at}: ask for a new one"),
        ));
    }
    let invoice = engine
        .store()
        .get_invoice(&WorkspaceId::from(&claims.w), &claims.i)
        .await?;
    let invoice = match invoice {
        Some(invoice) if grants(engine, &invoice).await? => invoice,
        _ => {
            return Err(Error::new(
                crate::error::Kind::Forbidden,
                Code::InvalidDownloadLink,
                "the purchase behind this download link is no longer paid (voided or refunded)",
            ));
        }
    };
    let product = match engine.latest_catalog(&claims.w).await? {
        Some(catalog) => catalog.catalog.products.get(&claims.p).cloned(),
        None => None,
    };
    Ok(Opened {
        workspace: claims.w,
        customer: claims.c,
        name: product.as_ref().and_then(|p| p.name.clone()),
        download_url: product.and_then(|p| p.download_url),
        product: claims.p,
        invoice: invoice.id,
        expires_at,
    })
}
