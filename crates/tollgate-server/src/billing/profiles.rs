//! Billing profiles as the server reads and checks them: the buyer's (a customer's legal name,
//! address, tax ids and tax treatment) and the seller's (the workspace's). The store keeps each
//! as a JSON document; these types are its shape.

use serde::{Deserialize, Serialize};
use tollgate_core::catalog::Catalog;
use tollgate_core::code::Code;
use tollgate_core::ids::{CustomerId, WorkspaceId};
use tollgate_core::pricing::{CustomerTax, InvoiceParties, Party, TaxTreatment};
use tollgate_store::Store;

use crate::error::{AppResult, Error, FieldError};

/// The longest text field of a profile, in characters.
const MAX_TEXT: usize = 200;
/// The most address lines, tax ids or payment instruction lines a profile keeps.
const MAX_LINES: usize = 8;

/// What invoices say about a customer (the buyer) and how it is taxed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerProfile {
    /// The name printed as the buyer; the customer's `name`, then its id, otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legal_name: Option<String>,
    /// Postal address, one line each (at most 8).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub address: Vec<String>,
    /// Tax ids as printed, e.g. `FR40303265045` (at most 8).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tax_ids: Vec<String>,
    /// `standard` (the catalog's rates, or `tax_rates`), `exempt` or `reverse_charge`.
    #[serde(default)]
    #[schema(value_type = String)]
    pub tax_treatment: TaxTreatment,
    /// Catalog tax rate keys that replace the catalog's rates for every line of this customer
    /// (e.g. the VAT of its country). Absent: the catalog decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax_rates: Option<Vec<String>>,
    /// The ISO 4217 code the customer is invoiced in (`EUR`): the catalog's currency when absent.
    /// Its plans must be priced in it (`currencies:` of a plan, docs/CATALOG.md); it cannot change
    /// once the customer has an invoice in another currency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
}

impl CustomerProfile {
    /// How pricing taxes this customer.
    pub fn tax(&self) -> CustomerTax {
        CustomerTax {
            treatment: self.tax_treatment,
            rates: self.tax_rates.clone(),
        }
    }

    /// The currency the customer is invoiced in: its own, else the catalog's.
    pub fn currency(&self, catalog: &Catalog) -> AppResult<tollgate_core::money::Currency> {
        match &self.currency {
            None => Ok(catalog.currency),
            Some(code) => code
                .parse()
                .map_err(|e| Error::internal(format!("a stored customer currency: {e}"))),
        }
    }

    /// Checks the sizes of every field, and that the tax rates exist in `catalog`.
    pub fn check(&self, catalog: Option<&Catalog>) -> AppResult<()> {
        let mut errors = Vec::new();
        text_field(&mut errors, "legal_name", self.legal_name.as_deref());
        if let Some(code) = &self.currency
            && let Err(e) = code.parse::<tollgate_core::money::Currency>()
        {
            errors.push(FieldError {
                path: "currency".into(),
                message: e.to_string(),
            });
        }
        lines_field(&mut errors, "address", &self.address);
        lines_field(&mut errors, "tax_ids", &self.tax_ids);
        if !errors.is_empty() {
            return Err(Error::validation(
                "the billing profile has mistakes",
                errors,
            ));
        }
        if let Some(rates) = &self.tax_rates {
            let known = |k: &str| catalog.is_some_and(|c| c.taxes.rates.contains_key(k));
            if let Some(unknown) = rates.iter().find(|k| !known(k)) {
                return Err(Error::invalid(
                    Code::UnknownTaxRate,
                    format!("`tax_rates`: the catalog has no tax rate {unknown:?}"),
                ));
            }
            let inclusive = rates
                .iter()
                .filter(|k| {
                    catalog
                        .and_then(|c| c.taxes.rates.get(k.as_str()))
                        .is_some_and(|r| r.inclusive)
                })
                .count();
            if inclusive != 0 && inclusive != rates.len() {
                return Err(Error::invalid(
                    Code::InvalidRequest,
                    "`tax_rates` must be all inclusive or all exclusive",
                ));
            }
        }
        Ok(())
    }
}

fn text_field(errors: &mut Vec<FieldError>, path: &str, value: Option<&str>) {
    match value {
        Some(v) if v.trim().is_empty() => errors.push(FieldError {
            path: path.to_owned(),
            message: "must not be empty".into(),
        }),
        Some(v) if v.chars().count() > MAX_TEXT => errors.push(FieldError {
            path: path.to_owned(),
            message: format!("at most {MAX_TEXT} characters"),
        }),
        _ => {}
    }
}

fn lines_field(errors: &mut Vec<FieldError>, path: &str, lines: &[String]) {
    if lines.len() > MAX_LINES {
        errors.push(FieldError {
            path: path.to_owned(),
            message: format!("at most {MAX_LINES} lines"),
        });
    }
    for (i, line) in lines.iter().enumerate() {
        text_field(errors, &format!("{path}[{i}]"), Some(line));
    }
}

/// A customer's stored profile; the default (no name, standard tax) when it has none.
pub async fn customer_profile(
    store: &dyn Store,
    workspace: &str,
    customer: &str,
) -> AppResult<CustomerProfile> {
    let stored = store
        .customer_profile(&WorkspaceId::from(workspace), &CustomerId::from(customer))
        .await?;
    profile_of(stored.as_ref(), customer)
}

/// A customer's profile from its stored document (`None`: it has none).
pub fn profile_of(
    stored: Option<&serde_json::Value>,
    customer: &str,
) -> AppResult<CustomerProfile> {
    match stored {
        None => Ok(CustomerProfile::default()),
        Some(doc) => CustomerProfile::deserialize(doc)
            .map_err(|e| Error::internal(format!("customer profile of {customer}: {e}"))),
    }
}

/// The longest footer, in characters.
const MAX_FOOTER: usize = 1000;
/// The longest net terms, in days.
const MAX_NET_TERMS_DAYS: u32 = 365;

/// What invoices say about the workspace (the seller), how they are numbered and paid.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SellerProfile {
    /// The seller's legal name, printed at the top of every invoice.
    pub legal_name: String,
    /// Postal address, one line each (at most 8).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub address: Vec<String>,
    /// Tax ids as printed, e.g. `DE811907980` (at most 8).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tax_ids: Vec<String>,
    /// Days from issue to due date (0 to 365); absent: due on issue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub net_terms_days: Option<u32>,
    /// How to pay, one line each: bank name, IBAN, BIC, reference (at most 8).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub payment_instructions: Vec<String>,
    /// Invoice numbers become `<prefix>-<year>-<number>` (`LEX-2026-000123`), credit notes
    /// `<prefix>-CN-<year>-<number>`: 1 to 12 of `A-Z`, `0-9`. Applies to invoices issued
    /// from now on; absent: `INV-000123`, `CN-000001`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoice_prefix: Option<String>,
    /// Printed at the bottom of every invoice (at most 1000 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub footer: Option<String>,
    /// The logo drawn at the top of invoices and credit notes: a PNG or JPEG image as a data
    /// URL (`data:image/png;base64,...`) or as its bytes in base64, at most 256 KiB of image.
    /// Documents draw the logo the profile has when they are rendered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo: Option<String>,
    /// How the customer portal looks (docs/DASHBOARD.md): a white-label partner's own name,
    /// colour and logo. The portal shows this name (else the legal name), never the workspace's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brand: Option<Brand>,
}

/// The customer portal's branding.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Brand {
    /// The name the portal shows (1 to 200 characters).
    pub name: String,
    /// The accent colour, `#rrggbb`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
    /// An `https://` URL of the logo image (at most 2000 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_url: Option<String>,
}

impl Brand {
    fn check(&self, errors: &mut Vec<FieldError>) {
        text_field(errors, "brand.name", Some(&self.name));
        if let Some(color) = &self.color {
            let ok = color.len() == 7
                && color.starts_with('#')
                && color[1..].bytes().all(|b| b.is_ascii_hexdigit());
            if !ok {
                errors.push(FieldError {
                    path: "brand.color".into(),
                    message: "a colour is written #rrggbb".into(),
                });
            }
        }
        if let Some(url) = &self.logo_url {
            let ok = url.starts_with("https://")
                && url.len() <= 2000
                && !url
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || c == '"');
            if !ok {
                errors.push(FieldError {
                    path: "brand.logo_url".into(),
                    message: "an https:// URL without spaces or quotes, at most 2000 characters"
                        .into(),
                });
            }
        }
    }
}

impl SellerProfile {
    /// Checks every field; all mistakes are reported together.
    pub fn check(&self) -> AppResult<()> {
        let mut errors = Vec::new();
        text_field(&mut errors, "legal_name", Some(&self.legal_name));
        lines_field(&mut errors, "address", &self.address);
        lines_field(&mut errors, "tax_ids", &self.tax_ids);
        lines_field(
            &mut errors,
            "payment_instructions",
            &self.payment_instructions,
        );
        if self.net_terms_days.is_some_and(|d| d > MAX_NET_TERMS_DAYS) {
            errors.push(FieldError {
                path: "net_terms_days".into(),
                message: format!("at most {MAX_NET_TERMS_DAYS}"),
            });
        }
        if let Some(prefix) = &self.invoice_prefix {
            let ok = (1..=12).contains(&prefix.len())
                && prefix
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
            if !ok {
                errors.push(FieldError {
                    path: "invoice_prefix".into(),
                    message: "1 to 12 characters of A-Z and 0-9".into(),
                });
            }
        }
        if let Some(footer) = &self.footer {
            if footer.trim().is_empty() {
                errors.push(FieldError {
                    path: "footer".into(),
                    message: "must not be empty".into(),
                });
            } else if footer.chars().count() > MAX_FOOTER {
                errors.push(FieldError {
                    path: "footer".into(),
                    message: format!("at most {MAX_FOOTER} characters"),
                });
            }
        }
        if let Some(brand) = &self.brand {
            brand.check(&mut errors);
        }
        if let Some(logo) = &self.logo
            && let Err(message) = decode_logo(logo)
        {
            errors.push(FieldError {
                path: "logo".into(),
                message,
            });
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Error::validation("the seller profile has mistakes", errors))
        }
    }
}

/// The workspace's stored seller profile, if it has one.
pub async fn seller_profile(
    store: &dyn Store,
    workspace: &str,
) -> AppResult<Option<SellerProfile>> {
    let stored = store.seller_profile(&WorkspaceId::from(workspace)).await?;
    stored
        .map(|doc| {
            serde_json::from_value(doc)
                .map_err(|e| Error::internal(format!("seller profile of {workspace}: {e}")))
        })
        .transpose()
}

/// A logo as the seller profile holds it (a PNG or JPEG data URL, or base64 bytes), checked.
fn decode_logo(text: &str) -> Result<tollgate_pdf::Logo, String> {
    use base64::Engine as _;
    let encoded = match text.strip_prefix("data:") {
        Some(url) => {
            let (head, data) = url
                .split_once(',')
                .ok_or("a data URL is `data:image/png;base64,<data>`")?;
            if !matches!(
                head,
                "image/png;base64" | "image/jpeg;base64" | "image/jpg;base64"
            ) {
                return Err("a data URL of a PNG or JPEG image in base64".into());
            }
            data
        }
        None => text,
    };
    // Bounded before decoding: base64 takes 4 characters per 3 bytes.
    if encoded.len() > tollgate_pdf::MAX_LOGO_BYTES / 3 * 4 + 4 {
        return Err(format!(
            "a logo is at most {} bytes",
            tollgate_pdf::MAX_LOGO_BYTES
        ));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|e| format!("not base64: {e}"))?;
    tollgate_pdf::Logo::from_bytes(bytes).map_err(|e| e.to_string())
}

/// The logo documents draw: the workspace's seller profile's, if it has a readable one (a
/// logo stored by an older version that no longer reads is left out, never failing a document).
pub async fn document_logo(
    store: &dyn Store,
    workspace: &str,
) -> AppResult<Option<tollgate_pdf::Logo>> {
    let Some(text) = seller_profile(store, workspace).await?.and_then(|p| p.logo) else {
        return Ok(None);
    };
    // Decoding checks the pixels (a one-page render): off the async threads.
    let logo = tokio::task::spawn_blocking(move || decode_logo(&text))
        .await
        .map_err(Error::internal)?;
    Ok(logo
        .inspect_err(
            |e| tracing::warn!(workspace, error = %e, "the seller profile's logo is not drawn"),
        )
        .ok())
}

/// Who a document shows as its issuer when the invoice carries no seller (issued before the
/// workspace had a seller profile): the seller profile's legal name now, else nothing. Never the
/// workspace's name: a white-label partner's workspace is often named after the operator
/// (docs/DASHBOARD.md), and its customers must not see it.
pub async fn document_issuer(store: &dyn Store, workspace: &str) -> AppResult<String> {
    Ok(seller_profile(store, workspace)
        .await?
        .map(|p| p.legal_name)
        .unwrap_or_default())
}

/// The parties and terms of an invoice to `customer`, as its and the workspace's profiles say
/// now. The buyer's name is its legal name, else its name, else its id.
pub async fn invoice_parties(
    store: &dyn Store,
    workspace: &str,
    customer: &str,
    profile: &CustomerProfile,
) -> AppResult<InvoiceParties> {
    let name = match &profile.legal_name {
        Some(name) => name.clone(),
        None => store
            .get_customer(&WorkspaceId::from(workspace), &CustomerId::from(customer))
            .await?
            .and_then(|c| c.name)
            .unwrap_or_else(|| customer.to_owned()),
    };
    let seller = seller_profile(store, workspace).await?;
    Ok(parties_of(name, profile, seller))
}

/// The parties of an invoice from what [`invoice_parties`] reads: the buyer's printed `name`, its
/// profile, and the seller's profile.
pub fn parties_of(
    name: String,
    profile: &CustomerProfile,
    seller: Option<SellerProfile>,
) -> InvoiceParties {
    let buyer = Party {
        name,
        address: profile.address.clone(),
        tax_ids: profile.tax_ids.clone(),
    };
    match seller {
        None => InvoiceParties {
            buyer,
            ..Default::default()
        },
        Some(s) => InvoiceParties {
            seller: Some(Party {
                name: s.legal_name,
                address: s.address,
                tax_ids: s.tax_ids,
            }),
            buyer,
            net_terms_days: s.net_terms_days,
            payment_instructions: s.payment_instructions,
            number_prefix: s.invoice_prefix,
            footer: s.footer,
        },
    }
}
