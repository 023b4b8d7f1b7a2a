//! The subscription lifecycle: trials, payment trouble, pauses, cancellation and the end.
//!
//! A subscription starts `trialing` or `active` ([`SubscriptionStatus::at_start`]). `canceled`
//! means a cancellation was asked for: the subscription still runs until its `ends_at` (the
//! period end, or now for an immediate cancellation), then `expire` makes it `expired`, the one
//! terminal state. This is what [`is_live`] reads.
//!
//! Every transition there is (any pair not listed is refused with
//! `invalid_subscription_transition`; the tests read this table and check it against [`apply`]
//! for every status and every update, each variant of `trial_ended` included):
//!
//! | from     | update               | to       |
//! |----------|----------------------|----------|
//! | trialing | trial_ended          | active   |
//! | trialing | activate             | active   |
//! | trialing | cancel_at_period_end | canceled |
//! | trialing | cancel_now           | canceled |
//! | active   | payment_failed       | past_due |
//! | active   | pause                | paused   |
//! | active   | cancel_at_period_end | canceled |
//! | active   | cancel_now           | canceled |
//! | past_due | payment_failed       | past_due |
//! | past_due | payment_recovered    | active   |
//! | past_due | cancel_at_period_end | canceled |
//! | past_due | cancel_now           | canceled |
//! | paused   | resume               | active   |
//! | paused   | cancel_now           | canceled |
//! | canceled | cancel_now           | canceled |
//! | canceled | expire               | expired  |
//!
//! Why these and no others:
//! - a trial ends into `active` whatever happens to the plan: with a payment method it converts,
//!   without one it moves to the catalog's fallback plan when there is one
//!   ([`trial_outcome`]), and without either it stays on its plan and is invoiced (what Stripe
//!   does by default, and what Tollgate did before these states existed);
//! - a failed payment can only be had where something is billed (`active`, `past_due`: each
//!   retry that fails keeps it past due); a trial or a pause bills nothing;
//! - a paused subscription has no running period to end with, so it is canceled at once or not
//!   at all;
//! - a `canceled` subscription can have its end brought forward to now, never pushed back, and
//!   nothing revives it: resuming, paying or pausing it is refused. `expired` accepts nothing.

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{TransitionError, UnknownStatus};

/// Where a subscription is in its lifecycle. Stored as [`SubscriptionStatus::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionStatus {
    /// In a free trial until `trial_end`.
    Trialing,
    Active,
    /// A payment failed; retries (dunning) are under way.
    PastDue,
    /// Billing and service are suspended until resumed.
    Paused,
    /// Ends at `ends_at` and is live until then.
    Canceled,
    /// Over. Terminal.
    Expired,
}

impl SubscriptionStatus {
    pub const ALL: [SubscriptionStatus; 6] = [
        SubscriptionStatus::Trialing,
        SubscriptionStatus::Active,
        SubscriptionStatus::PastDue,
        SubscriptionStatus::Paused,
        SubscriptionStatus::Canceled,
        SubscriptionStatus::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SubscriptionStatus::Trialing => "trialing",
            SubscriptionStatus::Active => "active",
            SubscriptionStatus::PastDue => "past_due",
            SubscriptionStatus::Paused => "paused",
            SubscriptionStatus::Canceled => "canceled",
            SubscriptionStatus::Expired => "expired",
        }
    }

    /// The status of a new subscription.
    pub fn at_start(trial: bool) -> SubscriptionStatus {
        if trial {
            SubscriptionStatus::Trialing
        } else {
            SubscriptionStatus::Active
        }
    }

    /// No update applies any more.
    pub fn is_terminal(self) -> bool {
        self == SubscriptionStatus::Expired
    }

    /// On its way out: only `canceled` and `expired` can follow.
    pub fn is_ending(self) -> bool {
        matches!(
            self,
            SubscriptionStatus::Canceled | SubscriptionStatus::Expired
        )
    }

    /// [`apply`] as a method.
    pub fn apply(self, update: SubscriptionUpdate) -> Result<SubscriptionStatus, TransitionError> {
        apply(self, update)
    }
}

impl fmt::Display for SubscriptionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SubscriptionStatus {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SubscriptionStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| UnknownStatus {
                kind: "subscription",
                value: s.to_owned(),
            })
    }
}

/// What can happen to a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubscriptionUpdate {
    /// The trial reached its end. Where the customer ends up is [`trial_outcome`] of these.
    TrialEnded {
        has_payment_method: bool,
        /// The plan names a fallback plan for trials that end without a payment method.
        fallback: bool,
    },
    /// The trial is ended early and the subscription paid from now on.
    Activate,
    /// A payment of one of its invoices failed.
    PaymentFailed,
    /// The overdue invoices were paid.
    PaymentRecovered,
    Pause,
    Resume,
    /// Ends at the end of the current period (the caller sets `ends_at` to it).
    CancelAtPeriodEnd,
    /// Ends now (the caller sets `ends_at` to now).
    CancelNow,
    /// `ends_at` has passed (see [`should_expire`]).
    Expire,
}

impl SubscriptionUpdate {
    /// Every update, each combination of `trial_ended`'s fields included.
    pub const ALL: [SubscriptionUpdate; 12] = [
        SubscriptionUpdate::TrialEnded {
            has_payment_method: true,
            fallback: true,
        },
        SubscriptionUpdate::TrialEnded {
            has_payment_method: true,
            fallback: false,
        },
        SubscriptionUpdate::TrialEnded {
            has_payment_method: false,
            fallback: true,
        },
        SubscriptionUpdate::TrialEnded {
            has_payment_method: false,
            fallback: false,
        },
        SubscriptionUpdate::Activate,
        SubscriptionUpdate::PaymentFailed,
        SubscriptionUpdate::PaymentRecovered,
        SubscriptionUpdate::Pause,
        SubscriptionUpdate::Resume,
        SubscriptionUpdate::CancelAtPeriodEnd,
        SubscriptionUpdate::CancelNow,
        SubscriptionUpdate::Expire,
    ];

    /// The name used in the transition table (`cancel_at_period_end`).
    pub fn as_str(self) -> &'static str {
        match self {
            SubscriptionUpdate::TrialEnded { .. } => "trial_ended",
            SubscriptionUpdate::Activate => "activate",
            SubscriptionUpdate::PaymentFailed => "payment_failed",
            SubscriptionUpdate::PaymentRecovered => "payment_recovered",
            SubscriptionUpdate::Pause => "pause",
            SubscriptionUpdate::Resume => "resume",
            SubscriptionUpdate::CancelAtPeriodEnd => "cancel_at_period_end",
            SubscriptionUpdate::CancelNow => "cancel_now",
            SubscriptionUpdate::Expire => "expire",
        }
    }

    /// What the update does, for "a subscription that is paused cannot ...".
    pub fn action(self) -> &'static str {
        match self {
            SubscriptionUpdate::TrialEnded { .. } => "end a trial",
            SubscriptionUpdate::Activate => "be activated",
            SubscriptionUpdate::PaymentFailed => "fail a payment",
            SubscriptionUpdate::PaymentRecovered => "recover from a failed payment",
            SubscriptionUpdate::Pause => "be paused",
            SubscriptionUpdate::Resume => "be resumed",
            SubscriptionUpdate::CancelAtPeriodEnd => "be canceled at the end of its period",
            SubscriptionUpdate::CancelNow => "be canceled",
            SubscriptionUpdate::Expire => "expire",
        }
    }
}

impl fmt::Display for SubscriptionUpdate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The next status of a subscription in `status` after `update`, or why not (the table above).
pub fn apply(
    status: SubscriptionStatus,
    update: SubscriptionUpdate,
) -> Result<SubscriptionStatus, TransitionError> {
    use SubscriptionStatus as S;
    use SubscriptionUpdate as U;
    let next = match (status, update) {
        (S::Trialing, U::TrialEnded { .. } | U::Activate) => S::Active,
        (S::Active, U::PaymentFailed) | (S::PastDue, U::PaymentFailed) => S::PastDue,
        (S::PastDue, U::PaymentRecovered) | (S::Paused, U::Resume) => S::Active,
        (S::Active, U::Pause) => S::Paused,
        (S::Trialing | S::Active | S::PastDue, U::CancelAtPeriodEnd) => S::Canceled,
        (S::Trialing | S::Active | S::PastDue | S::Paused | S::Canceled, U::CancelNow) => {
            S::Canceled
        }
        (S::Canceled, U::Expire) => S::Expired,
        _ => {
            return Err(TransitionError::Subscription {
                from: status,
                update,
            });
        }
    };
    Ok(next)
}

/// Where a trial that ended leaves the customer's plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrialOutcome {
    /// Stays on the plan it trialed, now paid.
    Convert,
    /// Moves to the plan's fallback (Apex: `early` -> `free`): no payment method to charge.
    Fallback,
}

/// The rule for a trial's end: without a payment method, the fallback plan if the plan names
/// one; otherwise (a payment method, or no fallback to go to) the trialed plan.
pub fn trial_outcome(has_payment_method: bool, has_fallback: bool) -> TrialOutcome {
    if !has_payment_method && has_fallback {
        TrialOutcome::Fallback
    } else {
        TrialOutcome::Convert
    }
}

/// Whether the subscription is the customer's current one at `now` (a customer has at most one
/// live subscription): not expired, and not past its `ends_at`. A canceled subscription is live
/// until its `ends_at` and not at all without one.
pub fn is_live(status: SubscriptionStatus, ends_at: Option<Timestamp>, now: Timestamp) -> bool {
    match status {
        SubscriptionStatus::Expired => false,
        SubscriptionStatus::Canceled => ends_at.is_some_and(|end| end > now),
        _ => ends_at.is_none_or(|end| end > now),
    }
}

/// Whether a canceled subscription has reached its end and is due to [`SubscriptionUpdate::Expire`].
pub fn should_expire(
    status: SubscriptionStatus,
    ends_at: Option<Timestamp>,
    now: Timestamp,
) -> bool {
    status == SubscriptionStatus::Canceled && !is_live(status, ends_at, now)
}

/// Whether the subscription is in its free trial at `now`.
pub fn in_trial(status: SubscriptionStatus, trial_end: Option<Timestamp>, now: Timestamp) -> bool {
    status == SubscriptionStatus::Trialing && trial_end.is_some_and(|end| now < end)
}

/// Whether a trial has reached its end at `now` and is due to [`SubscriptionUpdate::TrialEnded`].
pub fn trial_is_over(
    status: SubscriptionStatus,
    trial_end: Option<Timestamp>,
    now: Timestamp,
) -> bool {
    status == SubscriptionStatus::Trialing && trial_end.is_some_and(|end| end <= now)
}
