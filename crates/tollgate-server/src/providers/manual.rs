//! The manual provider: money that arrives outside Tollgate (a bank transfer, a cheque) and is
//! recorded by the operator with its reference (Lexecon's annual plans). Nothing is charged or
//! refunded automatically: the operator sends the invoice with the workspace's payment
//! instructions and records what arrives, in full or in parts.

use super::{
    ChargeOutcome, ChargeRequest, PaymentProvider, ProviderError, RefundOutcome, RefundRequest,
};

pub const NAME: &str = "manual";

/// How money arrived, as an operator may record it.
pub const METHODS: &[&str] = &["bank_transfer", "check", "cash", "other"];

/// The manual provider; it holds nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Manual;

impl PaymentProvider for Manual {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn charge(&self, _request: &ChargeRequest) -> Result<ChargeOutcome, ProviderError> {
        Ok(ChargeOutcome::Manual)
    }

    async fn refund(&self, _request: &RefundRequest) -> Result<RefundOutcome, ProviderError> {
        Ok(RefundOutcome::Manual)
    }
}

/// Why a recorded reference is refused, if it is: 1 to 128 printable characters, no control
/// characters (it is printed on documents and matched against bank statements).
pub fn reference_problem(reference: &str) -> Option<&'static str> {
    if reference.trim().is_empty() {
        return Some("`reference` must not be empty");
    }
    if reference.chars().count() > 128 {
        return Some("`reference` must be at most 128 characters");
    }
    if reference.chars().any(char::is_control) {
        return Some("`reference` must not hold control characters");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_printable_and_bounded() {
        assert_eq!(reference_problem("SEPA-2026-11-0042"), None);
        assert!(reference_problem("").is_some());
        assert!(reference_problem("   ").is_some());
        assert!(reference_problem(&"x".repeat(129)).is_some());
        assert!(reference_problem("a\nb").is_some());
    }
}
