//! Signed, expiring download links for one-time products (Levqor case 6, `docs/TRUST.md`).
//!
//! A purchase of a product whose catalog entry `grants: [download]` is the customer's download
//! entitlement, once its invoice is paid. [`issue`] makes a link for it, valid for the catalog's
//! `policies.download_link_ttl` (24 hours without one) on the customer's clock; [`open`] checks
//! a link and answers what it grants. Links are stateless: nothing is stored when one is made.
//!
//! A link's token is `dl1.<payload>.<tag>`: `payload` is base64url (no padding) of a JSON object
//! (`w` workspace, `c` customer, `p` product, `i` the paid invoice, `exp` expiry in Unix
//! seconds), `tag` is base64url of HMAC-SHA256 over `dl1.<payload>` under the workspace's link
//! key, itself HMAC-SHA256(master key, `tollgate download links v1` + newline + workspace)
//! ([`crate::sealing::MasterKey::derive`]). Changing any byte of a token changes the payload or
//! the tag, and the tag no longer matches; tags are compared in constant time.

mod issue;
mod open;

pub use issue::{DownloadLink, IssueLink, issue};
pub use open::{Opened, open};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2_11::Sha256;
use tollgate_core::code::Code;
use tollgate_store::billing::{InvoiceRecord, InvoiceStatus};

use crate::engine::Engine;
use crate::error::{AppResult, Error};
use crate::sealing::MasterKey;
use tollgate_core::ids::WorkspaceId;

/// The grant that makes a product downloadable.
pub const DOWNLOAD: &str = "download";

/// How long a link lives when the catalog says nothing (`policies.download_link_ttl`).
pub const DEFAULT_TTL_SECONDS: u64 = 24 * 3600;

const PREFIX: &str = "dl1";

/// What a token carries (signed, not secret: anyone holding the link can read it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Claims {
    pub w: String,
    pub c: String,
    pub p: String,
    pub i: String,
    pub exp: i64,
}

fn link_key(master: &MasterKey, workspace: &str) -> [u8; 32] {
    master.derive(&format!("tollgate download links v1\n{workspace}"))
}

fn mac(master: &MasterKey, workspace: &str) -> Hmac<Sha256> {
    <Hmac<Sha256> as KeyInit>::new_from_slice(&link_key(master, workspace))
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"))
}

/// The token of `claims`.
pub(crate) fn sign(master: &MasterKey, claims: &Claims) -> AppResult<String> {
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).map_err(Error::internal)?);
    let signed = format!("{PREFIX}.{payload}");
    let mut mac = mac(master, &claims.w);
    mac.update(signed.as_bytes());
    let tag = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    Ok(format!("{signed}.{tag}"))
}

fn invalid() -> Error {
    Error::new(
        crate::error::Kind::Forbidden,
        Code::InvalidDownloadLink,
        "this download link is not one Tollgate issued, or it was altered",
    )
}

/// The claims of a token whose tag holds (not yet checked: expiry, entitlement).
pub(crate) fn verify(master: &MasterKey, token: &str) -> AppResult<Claims> {
    let mut parts = token.split('.');
    let (Some(PREFIX), Some(payload), Some(tag), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid());
    };
    let bytes = URL_SAFE_NO_PAD.decode(payload).map_err(|_| invalid())?;
    let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| invalid())?;
    let claims: Claims = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    let mut mac = mac(master, &claims.w);
    mac.update(format!("{PREFIX}.{payload}").as_bytes());
    mac.verify_slice(&tag).map_err(|_| invalid())?;
    Ok(claims)
}

/// Whether `invoice` is a purchase of `product` (a line of kind `product` for it).
pub(crate) fn buys(invoice: &InvoiceRecord, product: &str) -> bool {
    invoice.dedupe_key.starts_with("purchase:")
        && invoice.document["lines"]
            .as_array()
            .is_some_and(|lines| lines.iter().any(|l| is_product_line(l, product)))
}

fn is_product_line(line: &Value, product: &str) -> bool {
    line["kind"]["type"] == "product" && line["kind"]["product"] == product
}

/// A purchase grants its download while its invoice is paid and not refunded in full (credit
/// notes summing to its total).
pub(crate) async fn grants(engine: &Engine, invoice: &InvoiceRecord) -> AppResult<bool> {
    if invoice.status != InvoiceStatus::Paid {
        return Ok(false);
    }
    if invoice.total_minor <= 0 {
        return Ok(true);
    }
    let credited: i64 = engine
        .store()
        .list_credit_notes(&WorkspaceId::from(&invoice.workspace), &invoice.id)
        .await?
        .iter()
        .map(|n| n.amount_minor)
        .sum();
    Ok(credited < invoice.total_minor)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> Claims {
        Claims {
            w: "ws_1".into(),
            c: "acme".into(),
            p: "automation_pro".into(),
            i: "in_1".into(),
            exp: 1_796_169_600,
        }
    }

    #[test]
    fn a_token_verifies_only_unaltered_under_its_master_key() {
        let master = MasterKey::parse(&"ab".repeat(32)).unwrap();
        let token = sign(&master, &claims()).unwrap();
        assert!(token.starts_with("dl1."));
        assert_eq!(verify(&master, &token).unwrap(), claims());
        for i in 0..token.len() {
            let mut bytes = token.clone().into_bytes();
            bytes[i] ^= 0x01;
            let altered = String::from_utf8(bytes).unwrap();
            let err = verify(&master, &altered).unwrap_err();
            assert_eq!(err.code, Code::InvalidDownloadLink, "byte {i}: {altered}");
        }
        let other = MasterKey::parse(&"cd".repeat(32)).unwrap();
        assert!(verify(&other, &token).is_err());
        // Another workspace's claims under this one's tag do not verify either.
        let theirs = sign(
            &master,
            &Claims {
                w: "ws_2".into(),
                ..claims()
            },
        )
        .unwrap();
        let (head, _) = theirs.rsplit_once('.').unwrap();
        let (_, tag) = token.rsplit_once('.').unwrap();
        assert!(verify(&master, &format!("{head}.{tag}")).is_err());
    }
}
