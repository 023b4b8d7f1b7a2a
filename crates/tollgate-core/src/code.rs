//! Every stable error code Tollgate answers, as one enum the compiler checks.
//!
//! Callers match on these codes (they are the `code` of every problem+json answer, of rejected
//! events and of refused checks), so each is written once here and documented in
//! docs/API.md; a test holds the two together. Adding a variant is adding an API promise.

macro_rules! codes {
    ($($variant:ident => $text:literal,)*) => {
        /// A stable, machine-readable error code.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Code {
            $($variant,)*
        }

        impl Code {
            /// Every code, for documentation checks.
            pub const ALL: &[Code] = &[$(Code::$variant,)*];

            /// The code as it appears on the wire (`quota_exceeded`).
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Code::$variant => $text,)*
                }
            }
        }
    };
}

codes! {
    AddonNotOnPlan => "addon_not_on_plan",
    AlreadyExists => "already_exists",
    AmountOutOfRange => "amount_out_of_range",
    AmountOverflow => "amount_overflow",
    AmountTooPrecise => "amount_too_precise",
    ArrearsProration => "arrears_proration",
    BatchTooLarge => "batch_too_large",
    BodyTooLarge => "body_too_large",
    ClockBackwards => "clock_backwards",
    Conflict => "conflict",
    CorrectionBelowZero => "correction_below_zero",
    CorrectionOutsidePeriod => "correction_outside_period",
    CounterUnavailable => "counter_unavailable",
    CurrencyMismatch => "currency_mismatch",
    CustomerSuspended => "customer_suspended",
    DivisionByZero => "division_by_zero",
    FeatureLimitExceeded => "feature_limit_exceeded",
    FeatureNotInPlan => "feature_not_in_plan",
    Forbidden => "forbidden",
    IdempotencyKeyInUse => "idempotency_key_in_use",
    IdempotencyKeyReused => "idempotency_key_reused",
    Internal => "internal",
    InvalidAmount => "invalid_amount",
    InvalidBody => "invalid_body",
    InvalidCatalog => "invalid_catalog",
    InvalidCheck => "invalid_check",
    InvalidId => "invalid_id",
    InvalidIdempotencyKey => "invalid_idempotency_key",
    InvalidInvoiceTransition => "invalid_invoice_transition",
    InvalidJson => "invalid_json",
    InvalidPath => "invalid_path",
    InvalidPeriod => "invalid_period",
    InvalidPrice => "invalid_price",
    InvalidProperty => "invalid_property",
    InvalidQuantity => "invalid_quantity",
    InvalidRequest => "invalid_request",
    InvalidSubscriptionTransition => "invalid_subscription_transition",
    InvalidTarget => "invalid_target",
    InvalidTimestamp => "invalid_timestamp",
    InvalidUsage => "invalid_usage",
    InvoiceNotFinalized => "invoice_not_finalized",
    InvoiceNotPaid => "invoice_not_paid",
    MethodNotAllowed => "method_not_allowed",
    MissingCustomer => "missing_customer",
    MissingId => "missing_id",
    MissingType => "missing_type",
    NegativeQuantity => "negative_quantity",
    NoCatalog => "no_catalog",
    NoPlanFits => "no_plan_fits",
    NoSubscription => "no_subscription",
    NoTrial => "no_trial",
    NotFound => "not_found",
    NulByte => "nul_byte",
    Overflow => "overflow",
    QuantityOutOfRange => "quantity_out_of_range",
    QuantityTooPrecise => "quantity_too_precise",
    QuotaExceeded => "quota_exceeded",
    RateLimited => "rate_limited",
    RefundExceedsInvoice => "refund_exceeds_invoice",
    RouteNotFound => "route_not_found",
    RouteTargetUnknown => "route_target_unknown",
    SubscriptionEnded => "subscription_ended",
    SubscriptionExists => "subscription_exists",
    TimestampInFuture => "timestamp_in_future",
    Unauthorized => "unauthorized",
    UnknownAddon => "unknown_addon",
    UnknownCoupon => "unknown_coupon",
    UnknownCurrency => "unknown_currency",
    UnknownCustomer => "unknown_customer",
    UnknownMeter => "unknown_meter",
    UnknownPlan => "unknown_plan",
    UnknownProduct => "unknown_product",
    UnknownRoute => "unknown_route",
    UnknownStatus => "unknown_status",
    UnpricedDimension => "unpriced_dimension",
    UnsupportedMediaType => "unsupported_media_type",
    UpstreamTimeout => "upstream_timeout",
    UpstreamUnavailable => "upstream_unavailable",
    ValidationFailed => "validation_failed",
    InvalidLimit => "invalid_limit",
    InvalidJobTransition => "invalid_job_transition",
    CustomerArchived => "customer_archived",
    InvalidAddress => "invalid_address",
    InvalidEmail => "invalid_email",
    InvalidMetadata => "invalid_metadata",
    InvalidName => "invalid_name",
    InvalidTaxId => "invalid_tax_id",
    UnknownTaxRate => "unknown_tax_rate",
    InvalidCursor => "invalid_cursor",
    InvalidFormat => "invalid_format",
    UnknownReferralCode => "unknown_referral_code",
    NoReferralProgram => "no_referral_program",
    SubscriptionPaused => "subscription_paused",
    RefundWindowClosed => "refund_window_closed",
    WebhookUrlInvalid => "webhook_url_invalid",
    WebhookUrlForbidden => "webhook_url_forbidden",
    UnknownEventType => "unknown_event_type",
    MasterKeyMissing => "master_key_missing",
    MasterKeyMismatch => "master_key_mismatch",
    PlanHasNoLicense => "plan_has_no_license",
    MachineLimitReached => "machine_limit_reached",
    LicenseRevoked => "license_revoked",
    LicenseExpired => "license_expired",
    InvalidFingerprint => "invalid_fingerprint",
    NotDownloadable => "not_downloadable",
    NotPurchased => "not_purchased",
    PurchaseNotPaid => "purchase_not_paid",
    InvalidDownloadLink => "invalid_download_link",
    DownloadLinkExpired => "download_link_expired",
    LedgerNotSealed => "ledger_not_sealed",
    InvalidRange => "invalid_range",
    EmailTemplateInvalid => "email_template_invalid",
    UnknownEmailTemplate => "unknown_email_template",
    PaymentProviderMissing => "payment_provider_missing",
    PaymentProviderError => "payment_provider_error",
    InvalidProviderSettings => "invalid_provider_settings",
    InvalidPaymentReference => "invalid_payment_reference",
    PaymentExceedsAmountDue => "payment_exceeds_amount_due",
    InvoiceNotOpen => "invoice_not_open",
    NoPaymentMethod => "no_payment_method",
    InvalidRedirectUrl => "invalid_redirect_url",
    EventsNotPartitioned => "events_not_partitioned",
    PartitionMonthOpen => "partition_month_open",
    InvalidWebhookSignature => "invalid_webhook_signature",
    PeriodTooLarge => "period_too_large",
    InvalidMonth => "invalid_month",
    InvalidRole => "invalid_role",
    InvalidPassword => "invalid_password",
    InvalidCredentials => "invalid_credentials",
    TooManyAttempts => "too_many_attempts",
    CsrfTokenInvalid => "csrf_token_invalid",
    PortalLinkInvalid => "portal_link_invalid",
    StripeIsBiller => "stripe_is_biller",
    PlanNotInCurrency => "plan_not_in_currency",
    CustomerCurrencyLocked => "customer_currency_locked",
    InvalidHostname => "invalid_hostname",
    EmailTaken => "email_taken",
    DuplicateIdMismatch => "duplicate_id_mismatch",
    ReplacementLowersUsage => "replacement_lowers_usage",
    EventAlreadyInvoiced => "event_already_invoiced",
    AddonNotInCurrency => "addon_not_in_currency",
    ProductNotInCurrency => "product_not_in_currency",
    CouponNotInCurrency => "coupon_not_in_currency",
    LastAdmin => "last_admin",
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Core's own tests compare codes with their text.
#[cfg(test)]
impl PartialEq<&str> for Code {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl serde::Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}
