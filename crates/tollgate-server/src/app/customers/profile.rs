//! A customer's descriptive fields (name, email, postal address, tax ids, metadata) and the
//! rules they are checked by, shared by a patch and a signup. Each mistake has its own stable
//! code, naming the field.

use serde::{Deserialize, Serialize};
use tollgate_core::code::Code;

use crate::error::{AppResult, Error};

/// Longest name, email and address line accepted (characters).
pub const MAX_NAME: usize = 256;
pub const MAX_EMAIL: usize = 254;
pub const MAX_ADDRESS_FIELD: usize = 200;
/// At most this many tax ids per customer.
pub const MAX_TAX_IDS: usize = 10;
/// Metadata: at most this many keys, keys of at most 40 characters, values of at most 500
/// characters once written as JSON (Stripe's limits).
pub const MAX_METADATA_KEYS: usize = 50;
pub const MAX_METADATA_KEY: usize = 40;
pub const MAX_METADATA_VALUE: usize = 500;

/// A postal address. Every field is optional; `country` is an ISO 3166-1 alpha-2 code.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Address {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line1: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line2: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    /// ISO 3166-1 alpha-2, upper case (`FR`, `US`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
}

/// A tax id: its kind (`eu_vat`, `gb_vat`, `us_ein`, ...: lower-case letters, digits and `_`)
/// and its value as the tax office writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaxId {
    #[serde(rename = "type")]
    pub kind: String,
    pub value: String,
}

pub type Metadata = serde_json::Map<String, serde_json::Value>;

fn too_long(text: &str, max: usize) -> bool {
    text.chars().count() > max
}

pub fn check_name(name: &str) -> AppResult<()> {
    if name.trim().is_empty() || too_long(name, MAX_NAME) || name.chars().any(char::is_control) {
        return Err(Error::invalid(
            Code::InvalidName,
            format!("`name` must be 1-{MAX_NAME} characters without control characters"),
        ));
    }
    Ok(())
}

/// A plausible address: one `@`, a non-empty local part, a domain with a dot, no spaces.
/// Deliverability is the mail server's business.
pub fn check_email(email: &str) -> AppResult<()> {
    let bad = || {
        Error::invalid(
            Code::InvalidEmail,
            format!("`email` {email:?} is not an email address (`name@example.com`)"),
        )
    };
    if too_long(email, MAX_EMAIL) || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad());
    }
    let Some((local, domain)) = email.split_once('@') else {
        return Err(bad());
    };
    let domain_ok = !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..");
    if local.is_empty() || !domain_ok {
        return Err(bad());
    }
    Ok(())
}

pub fn check_address(address: &Address) -> AppResult<()> {
    let fields = [
        ("line1", &address.line1),
        ("line2", &address.line2),
        ("city", &address.city),
        ("state", &address.state),
        ("postal_code", &address.postal_code),
    ];
    for (field, value) in fields {
        if let Some(v) = value
            && (too_long(v, MAX_ADDRESS_FIELD) || v.chars().any(char::is_control))
        {
            return Err(Error::invalid(
                Code::InvalidAddress,
                format!(
                    "`address.{field}` must be at most {MAX_ADDRESS_FIELD} characters without control characters"
                ),
            ));
        }
    }
    if let Some(country) = &address.country
        && !(country.len() == 2 && country.bytes().all(|b| b.is_ascii_uppercase()))
    {
        return Err(Error::invalid(
            Code::InvalidAddress,
            format!("`address.country` {country:?} is not an ISO 3166-1 alpha-2 code (`FR`)"),
        ));
    }
    Ok(())
}

pub fn check_tax_ids(tax_ids: &[TaxId]) -> AppResult<()> {
    if tax_ids.len() > MAX_TAX_IDS {
        return Err(Error::invalid(
            Code::InvalidTaxId,
            format!("at most {MAX_TAX_IDS} `tax_ids`"),
        ));
    }
    for (i, id) in tax_ids.iter().enumerate() {
        let kind_ok = (2..=32).contains(&id.kind.len())
            && id
                .kind
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !kind_ok {
            return Err(Error::invalid(
                Code::InvalidTaxId,
                format!(
                    "`tax_ids[{i}].type` {:?}: use 2-32 lower-case letters, digits or `_` (`eu_vat`)",
                    id.kind
                ),
            ));
        }
        let value_ok = (1..=64).contains(&id.value.len())
            && id
                .value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-. /".contains(&b));
        if !value_ok {
            return Err(Error::invalid(
                Code::InvalidTaxId,
                format!(
                    "`tax_ids[{i}].value` {:?}: use 1-64 letters, digits, spaces, `-`, `.` or `/`",
                    id.value
                ),
            ));
        }
    }
    Ok(())
}

pub fn check_metadata(metadata: &Metadata) -> AppResult<()> {
    if metadata.len() > MAX_METADATA_KEYS {
        return Err(Error::invalid(
            Code::InvalidMetadata,
            format!("`metadata` has more than {MAX_METADATA_KEYS} keys"),
        ));
    }
    for (key, value) in metadata {
        if key.is_empty() || too_long(key, MAX_METADATA_KEY) {
            return Err(Error::invalid(
                Code::InvalidMetadata,
                format!("`metadata` key {key:?} must be 1-{MAX_METADATA_KEY} characters"),
            ));
        }
        if too_long(&value.to_string(), MAX_METADATA_VALUE) {
            return Err(Error::invalid(
                Code::InvalidMetadata,
                format!("`metadata.{key}` is longer than {MAX_METADATA_VALUE} characters as JSON"),
            ));
        }
    }
    Ok(())
}

/// The stored form of an address (`null` for none).
pub fn address_json(address: Option<&Address>) -> AppResult<serde_json::Value> {
    serde_json::to_value(address).map_err(Error::internal)
}

/// The stored form of tax ids.
pub fn tax_ids_json(tax_ids: &[TaxId]) -> AppResult<serde_json::Value> {
    serde_json::to_value(tax_ids).map_err(Error::internal)
}

/// Refuses changes to an archived customer.
pub fn ensure_not_archived(customer: &tollgate_store::CustomerRecord) -> AppResult<()> {
    match customer.archived_at {
        Some(at) => Err(Error::conflict(
            Code::CustomerArchived,
            format!("customer {:?} was archived at {at}", customer.id),
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn emails() {
        for good in ["a@b.co", "first.last+tag@example.com"] {
            assert!(check_email(good).is_ok(), "{good}");
        }
        for bad in [
            "", "a", "@b.co", "a@b", "a@.b", "a@b.", "a@@b.co", "a b@c.de", "a@b..c",
        ] {
            assert_eq!(
                check_email(bad).unwrap_err().code,
                Code::InvalidEmail,
                "{bad}"
            );
        }
    }

    #[test]
    fn addresses_and_tax_ids() {
        let fr = Address {
            country: Some("FR".into()),
            ..Address::default()
        };
        assert!(check_address(&fr).is_ok());
        let bad = Address {
            country: Some("France".into()),
            ..Address::default()
        };
        assert_eq!(check_address(&bad).unwrap_err().code, Code::InvalidAddress);
        let vat = |kind: &str, value: &str| TaxId {
            kind: kind.into(),
            value: value.into(),
        };
        assert!(check_tax_ids(&[vat("eu_vat", "FR12345678901")]).is_ok());
        assert_eq!(
            check_tax_ids(&[vat("EU VAT", "x")]).unwrap_err().code,
            Code::InvalidTaxId
        );
        assert_eq!(
            check_tax_ids(&[vat("eu_vat", "")]).unwrap_err().code,
            Code::InvalidTaxId
        );
    }
}
