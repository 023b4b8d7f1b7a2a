//! The lifecycles of invoices and subscriptions, as pure transition functions.
//!
//! Each lifecycle is a status enum, an update enum (what can happen to it) and an `apply`
//! function from the two to the next status or a [`TransitionError`]. Nothing here reads the
//! clock or a store: the HTTP handlers, the bill run and the scheduler ask the same functions, so
//! a rule is written once and property-tested once (see the tables in [`invoice`] and
//! [`subscription`], which the tests read and check exhaustively).
//!
//! Errors carry a stable `code()` and no HTTP status: mapping them to one is the HTTP edge's job.

use crate::code::Code;

pub mod invoice;
pub mod subscription;

#[cfg(test)]
mod tests;

pub use invoice::{
    CreditNoteError, InvoiceStatus, InvoiceUpdate, credit_note_allowed, credit_note_remaining,
};
pub use subscription::{
    SubscriptionStatus, SubscriptionUpdate, TrialOutcome, in_trial, is_live, should_expire,
    trial_is_over, trial_outcome,
};

/// A refused transition: the update does not apply to the current status. Nothing changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("an invoice that is {from} cannot become {}", .update.target())]
    Invoice {
        from: InvoiceStatus,
        update: InvoiceUpdate,
    },
    #[error("a subscription that is {from} cannot {}", .update.action())]
    Subscription {
        from: SubscriptionStatus,
        update: SubscriptionUpdate,
    },
}

impl TransitionError {
    /// A stable machine-readable code.
    pub fn code(&self) -> Code {
        match self {
            TransitionError::Invoice { .. } => Code::InvalidInvoiceTransition,
            TransitionError::Subscription { .. } => Code::InvalidSubscriptionTransition,
        }
    }
}

/// A stored or typed status that is none of the known ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} status {value:?}")]
pub struct UnknownStatus {
    /// `invoice` or `subscription`.
    pub kind: &'static str,
    pub value: String,
}

impl UnknownStatus {
    /// A stable machine-readable code.
    pub fn code(&self) -> Code {
        Code::UnknownStatus
    }
}
