//! The invoice lifecycle, and when a credit note may refund an invoice.
//!
//! An invoice is issued `open` (or `paid` when nothing is due, see [`InvoiceStatus::on_issue`]);
//! a payment, a void or giving up moves it on. Its amounts never change once issued: a refund
//! of a paid invoice is a credit note beside it, not a change of status.
//!
//! Every transition there is (any pair not listed is refused with
//! `invalid_invoice_transition`; the tests read this table and check it against [`apply`] for
//! every status and every update):
//!
//! | from          | update             | to            |
//! |---------------|--------------------|---------------|
//! | draft         | finalize           | open          |
//! | open          | pay                | paid          |
//! | open          | void               | void          |
//! | open          | mark_uncollectible | uncollectible |
//! | uncollectible | pay                | paid          |
//! | uncollectible | void               | void          |
//!
//! `paid` and `void` are terminal: nothing moves them, so a paid invoice never goes back to
//! open and a voided one is never collected. A draft is deleted rather than voided (nothing
//! was ever owed); `uncollectible` stays open to a late payment or a void, as at Stripe.

use crate::code::Code;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{TransitionError, UnknownStatus};

/// Where an invoice is in its lifecycle. Stored as [`InvoiceStatus::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceStatus {
    /// Being built; not yet owed.
    Draft,
    /// Issued and owed.
    Open,
    Paid,
    /// Cancelled: nothing is owed, the number stays used.
    Void,
    /// Owed, but collection was given up (a payment may still arrive).
    Uncollectible,
}

impl InvoiceStatus {
    pub const ALL: [InvoiceStatus; 5] = [
        InvoiceStatus::Draft,
        InvoiceStatus::Open,
        InvoiceStatus::Paid,
        InvoiceStatus::Void,
        InvoiceStatus::Uncollectible,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            InvoiceStatus::Draft => "draft",
            InvoiceStatus::Open => "open",
            InvoiceStatus::Paid => "paid",
            InvoiceStatus::Void => "void",
            InvoiceStatus::Uncollectible => "uncollectible",
        }
    }

    /// No update applies any more.
    pub fn is_terminal(self) -> bool {
        matches!(self, InvoiceStatus::Paid | InvoiceStatus::Void)
    }

    /// The status of an invoice as it is issued: with nothing to collect (zero due, e.g. all
    /// paid by prepaid credit) it is paid at once, otherwise open.
    pub fn on_issue(amount_due_minor: i64) -> InvoiceStatus {
        if amount_due_minor <= 0 {
            InvoiceStatus::Paid
        } else {
            InvoiceStatus::Open
        }
    }

    /// [`apply`] as a method.
    pub fn apply(self, update: InvoiceUpdate) -> Result<InvoiceStatus, TransitionError> {
        apply(self, update)
    }
}

impl fmt::Display for InvoiceStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for InvoiceStatus {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        InvoiceStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| UnknownStatus {
                kind: "invoice",
                value: s.to_owned(),
            })
    }
}

/// What can happen to an invoice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InvoiceUpdate {
    /// A draft is issued.
    Finalize,
    /// A payment for the whole amount due was received.
    Pay,
    /// The invoice is cancelled.
    Void,
    /// Collection is given up.
    MarkUncollectible,
}

impl InvoiceUpdate {
    pub const ALL: [InvoiceUpdate; 4] = [
        InvoiceUpdate::Finalize,
        InvoiceUpdate::Pay,
        InvoiceUpdate::Void,
        InvoiceUpdate::MarkUncollectible,
    ];

    /// The name used in the transition table (`mark_uncollectible`).
    pub fn as_str(self) -> &'static str {
        match self {
            InvoiceUpdate::Finalize => "finalize",
            InvoiceUpdate::Pay => "pay",
            InvoiceUpdate::Void => "void",
            InvoiceUpdate::MarkUncollectible => "mark_uncollectible",
        }
    }

    /// The status this update leads to wherever it applies.
    pub fn target(self) -> InvoiceStatus {
        match self {
            InvoiceUpdate::Finalize => InvoiceStatus::Open,
            InvoiceUpdate::Pay => InvoiceStatus::Paid,
            InvoiceUpdate::Void => InvoiceStatus::Void,
            InvoiceUpdate::MarkUncollectible => InvoiceStatus::Uncollectible,
        }
    }
}

impl fmt::Display for InvoiceUpdate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The next status of an invoice in `status` after `update`, or why not (the table above).
pub fn apply(
    status: InvoiceStatus,
    update: InvoiceUpdate,
) -> Result<InvoiceStatus, TransitionError> {
    use InvoiceStatus as S;
    use InvoiceUpdate as U;
    let allowed = matches!(
        (status, update),
        (S::Draft, U::Finalize)
            | (S::Open, U::Pay | U::Void | U::MarkUncollectible)
            | (S::Uncollectible, U::Pay | U::Void)
    );
    if allowed {
        Ok(update.target())
    } else {
        Err(TransitionError::Invoice {
            from: status,
            update,
        })
    }
}

/// Why a credit note is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CreditNoteError {
    /// Only money received can be given back; an open invoice is voided instead.
    #[error("only a paid invoice can be refunded; void an open one instead")]
    NotPaid { status: InvoiceStatus },
    /// A credit to the customer's balance needs an issued invoice that was not voided.
    #[error("only a finalized invoice (open, paid or uncollectible) can be credited")]
    NotFinalized { status: InvoiceStatus },
    #[error("a credit note amount must be positive, not {amount_minor} minor units")]
    InvalidAmount { amount_minor: i64 },
    /// The notes of an invoice together never exceed its total (a sum beyond 64 bits
    /// certainly does).
    #[error("the credit notes would exceed the invoice total")]
    ExceedsInvoice {
        total_minor: i64,
        already_credited_minor: i64,
        amount_minor: i64,
    },
}

impl CreditNoteError {
    /// A stable machine-readable code.
    pub fn code(&self) -> Code {
        match self {
            CreditNoteError::NotPaid { .. } => Code::InvoiceNotPaid,
            CreditNoteError::NotFinalized { .. } => Code::InvoiceNotFinalized,
            CreditNoteError::InvalidAmount { .. } => Code::InvalidAmount,
            CreditNoteError::ExceedsInvoice { .. } => Code::RefundExceedsInvoice,
        }
    }
}

/// Whether a refund at `now` of an invoice paid at `paid_at` is inside a refund window of
/// `days` days (QLP: 30; paid 2026-11-02, refunded 2026-11-20: inside). The window's last
/// instant is `paid_at` plus exactly `days` days; no window (`None`) is always open.
pub fn within_refund_window(
    paid_at: Option<jiff::Timestamp>,
    now: jiff::Timestamp,
    days: Option<u32>,
) -> bool {
    let (Some(paid_at), Some(days)) = (paid_at, days) else {
        return true;
    };
    let closes = paid_at
        .as_second()
        .saturating_add(i64::from(days).saturating_mul(86_400));
    now.as_second() <= closes
}

/// Whether a credit note of `amount_minor` may refund an invoice in `status` with
/// `total_minor`, given the notes it already has. Checked arithmetic: an amount near
/// `i64::MAX` cannot wrap around the limit.
pub fn credit_note_allowed(
    status: InvoiceStatus,
    total_minor: i64,
    already_credited_minor: i64,
    amount_minor: i64,
) -> Result<(), CreditNoteError> {
    if status != InvoiceStatus::Paid {
        return Err(CreditNoteError::NotPaid { status });
    }
    if amount_minor <= 0 {
        return Err(CreditNoteError::InvalidAmount { amount_minor });
    }
    let within = already_credited_minor
        .checked_add(amount_minor)
        .is_some_and(|after| after <= total_minor);
    if within {
        Ok(())
    } else {
        Err(CreditNoteError::ExceedsInvoice {
            total_minor,
            already_credited_minor,
            amount_minor,
        })
    }
}

/// What a credit note without an amount refunds: everything not refunded yet. Refused when the
/// invoice is not paid or nothing is left (`refund_exceeds_invoice`, as a note of that amount
/// would be).
pub fn credit_note_remaining(
    status: InvoiceStatus,
    total_minor: i64,
    already_credited_minor: i64,
) -> Result<i64, CreditNoteError> {
    if status != InvoiceStatus::Paid {
        return Err(CreditNoteError::NotPaid { status });
    }
    match total_minor.checked_sub(already_credited_minor) {
        Some(left) if left > 0 => Ok(left),
        left => Err(CreditNoteError::ExceedsInvoice {
            total_minor,
            already_credited_minor,
            amount_minor: left.unwrap_or(0),
        }),
    }
}

/// Whether an invoice in `status` may be credited to the customer's balance: any issued invoice
/// that was not voided (open, paid, uncollectible).
fn creditable(status: InvoiceStatus) -> Result<(), CreditNoteError> {
    match status {
        InvoiceStatus::Open | InvoiceStatus::Paid | InvoiceStatus::Uncollectible => Ok(()),
        InvoiceStatus::Draft | InvoiceStatus::Void => Err(CreditNoteError::NotFinalized { status }),
    }
}

/// [`credit_note_allowed`] for a credit note credited to the customer's balance: allowed on any
/// finalized invoice, up to what its notes have not credited yet.
pub fn balance_credit_allowed(
    status: InvoiceStatus,
    total_minor: i64,
    already_credited_minor: i64,
    amount_minor: i64,
) -> Result<(), CreditNoteError> {
    creditable(status)?;
    credit_note_allowed(
        InvoiceStatus::Paid,
        total_minor,
        already_credited_minor,
        amount_minor,
    )
}

/// [`credit_note_remaining`] for a credit note credited to the customer's balance.
pub fn balance_credit_remaining(
    status: InvoiceStatus,
    total_minor: i64,
    already_credited_minor: i64,
) -> Result<i64, CreditNoteError> {
    creditable(status)?;
    credit_note_remaining(InvoiceStatus::Paid, total_minor, already_credited_minor)
}

/// What a credit note of `amount_minor` to the balance leaves due on its invoice (Stripe's rule,
/// docs/INVOICES.md): on an unpaid invoice (open or uncollectible) it lowers the amount due first,
/// never below zero, and only the rest goes to the customer's balance; on a paid invoice it all
/// goes to the balance. `None` when the amount due does not change.
pub fn amount_due_after_credit(
    status: InvoiceStatus,
    amount_due_minor: i64,
    amount_minor: i64,
) -> Option<i64> {
    let unpaid = matches!(status, InvoiceStatus::Open | InvoiceStatus::Uncollectible);
    (unpaid && amount_due_minor > 0 && amount_minor > 0)
        .then(|| amount_due_minor.saturating_sub(amount_minor).max(0))
}
