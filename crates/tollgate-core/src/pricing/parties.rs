//! Who an invoice is from and to, and its terms: what the document prints beside the lines.
//!
//! The caller reads them from the seller's (workspace's) and buyer's (customer's) billing
//! profiles when the invoice is built; they are kept in the invoice as it was issued, so a later
//! change of address or prefix never changes an invoice already sent.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

/// A seller or a buyer as printed: its name, postal address and tax ids.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Party {
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub address: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tax_ids: Vec<String>,
}

/// The parties and terms of one invoice.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceParties {
    /// The workspace's legal identity; `None` when it has no billing profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seller: Option<Party>,
    pub buyer: Party,
    /// Days between issue and due date (net terms); `None`: due on issue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub net_terms_days: Option<u32>,
    /// How to pay, one line each (bank details for an invoiced annual plan).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub payment_instructions: Vec<String>,
    /// The numbering prefix: invoice 123 of 2026 with `LEX` is `LEX-2026-000123`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number_prefix: Option<String>,
    /// Text the operator prints at the bottom of every invoice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub footer: Option<String>,
}

impl InvoiceParties {
    /// The due date of an invoice issued at `issued`.
    pub fn due(&self, issued: Timestamp) -> Timestamp {
        let days = i64::from(self.net_terms_days.unwrap_or(0));
        issued
            .checked_add(SignedDuration::from_hours(days.saturating_mul(24)))
            .unwrap_or(issued)
    }
}

/// A document number: `INV-000012` without a prefix, `LEX-2026-000012` with one (the year of
/// issue in UTC). `kind` is the default prefix (`INV`, `CN`).
pub fn document_number(kind: &str, prefix: Option<&str>, number: i64, issued: Timestamp) -> String {
    match prefix {
        Some(p) => format!(
            "{p}-{}-{number:06}",
            issued.to_zoned(jiff::tz::TimeZone::UTC).year()
        ),
        None => format!("{kind}-{number:06}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_due_dates() {
        let issued: Timestamp = "2026-11-30T10:00:00Z".parse().unwrap_or_default();
        assert_eq!(document_number("INV", None, 12, issued), "INV-000012");
        assert_eq!(
            document_number("INV", Some("LEX"), 123, issued),
            "LEX-2026-000123"
        );
        let terms = InvoiceParties {
            net_terms_days: Some(30),
            ..Default::default()
        };
        assert_eq!(terms.due(issued).to_string(), "2026-12-30T10:00:00Z");
        assert_eq!(InvoiceParties::default().due(issued), issued);
    }
}
