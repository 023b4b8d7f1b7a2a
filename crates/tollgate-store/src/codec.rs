//! Encoding shared by both backends: timestamps as unix microseconds, decimals as text, JSON read
//! as text, and the decoding of rows into records. Both schemas name their columns alike (the
//! shared statements cast NUMERIC and JSONB to text), so each record is decoded in one place
//! and the backends cannot drift apart in how they read data.

use jiff::Timestamp;
use rust_decimal::Decimal;
use sqlx::Row;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use std::str::FromStr;

use crate::billing::{
    BalanceEntryRecord, CouponRedemptionRecord, CreditNoteMethod, CreditNoteRecord, InvoiceRecord,
    InvoiceStatus, PendingChargeRecord, ScheduledChangeRecord,
};
use crate::{
    AdminKeyRecord, AggregateRow, ApiKeyRecord, CatalogVersionRecord, CustomerRecord, EventRecord,
    LevelPoint, StoreError, StoreResult, SubscriptionRecord, SubscriptionStatus, TestClockRecord,
    WindowEntryRow, WorkspaceRecord,
};

/// The stored form of a timestamp. Sub-microsecond precision is dropped (both databases keep
/// microseconds at most).
pub(crate) fn micros(t: Timestamp) -> i64 {
    t.as_microsecond()
}

pub(crate) fn timestamp(us: i64) -> StoreResult<Timestamp> {
    Timestamp::from_microsecond(us)
        .map_err(|e| StoreError::Corrupt(format!("timestamp {us} µs out of range: {e}")))
}

pub(crate) fn opt_timestamp(us: Option<i64>) -> StoreResult<Option<Timestamp>> {
    us.map(timestamp).transpose()
}

pub(crate) fn decimal(s: &str) -> StoreResult<Decimal> {
    Decimal::from_str(s).map_err(|e| StoreError::Corrupt(format!("decimal {s:?}: {e}")))
}

pub(crate) fn json(s: &str) -> StoreResult<serde_json::Value> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("JSON column: {e}")))
}

/// Serialises a JSON document for binding as text.
pub(crate) fn json_text(v: &serde_json::Value) -> String {
    // Serialising a `Value` cannot fail: its map keys are strings.
    v.to_string()
}

/// Typed column access over either backend's rows, so that records decode in one place.
/// (`pub` only to be named by `backend::Conn`; the module is private.)
pub trait Columns {
    fn text(&self, col: &str) -> StoreResult<String>;
    fn opt_text(&self, col: &str) -> StoreResult<Option<String>>;
    fn int(&self, col: &str) -> StoreResult<i64>;
    fn opt_int(&self, col: &str) -> StoreResult<Option<i64>>;
    fn flag(&self, col: &str) -> StoreResult<bool>;

    fn time(&self, col: &str) -> StoreResult<Timestamp> {
        timestamp(self.int(col)?)
    }
    fn opt_time(&self, col: &str) -> StoreResult<Option<Timestamp>> {
        opt_timestamp(self.opt_int(col)?)
    }
    fn dec(&self, col: &str) -> StoreResult<Decimal> {
        decimal(&self.text(col)?)
    }
    fn json(&self, col: &str) -> StoreResult<serde_json::Value> {
        json(&self.text(col)?)
    }
}

macro_rules! impl_columns {
    ($row:ty) => {
        impl Columns for $row {
            fn text(&self, col: &str) -> StoreResult<String> {
                Ok(self.try_get(col)?)
            }
            fn opt_text(&self, col: &str) -> StoreResult<Option<String>> {
                Ok(self.try_get(col)?)
            }
            fn int(&self, col: &str) -> StoreResult<i64> {
                Ok(self.try_get(col)?)
            }
            fn opt_int(&self, col: &str) -> StoreResult<Option<i64>> {
                Ok(self.try_get(col)?)
            }
            fn flag(&self, col: &str) -> StoreResult<bool> {
                Ok(self.try_get(col)?)
            }
        }
    };
}

impl_columns!(SqliteRow);
impl_columns!(PgRow);

pub(crate) fn workspace(r: &impl Columns) -> StoreResult<WorkspaceRecord> {
    Ok(WorkspaceRecord {
        id: r.text("workspace")?,
        name: r.text("name")?,
        created_at: r.time("created_at")?,
    })
}

pub(crate) fn admin_key(r: &impl Columns) -> StoreResult<AdminKeyRecord> {
    Ok(AdminKeyRecord {
        workspace: r.text("workspace")?,
        id: r.text("id")?,
        secret_hash: r.text("secret_hash")?,
        created_at: r.time("created_at")?,
    })
}

pub(crate) fn catalog_version(r: &impl Columns) -> StoreResult<CatalogVersionRecord> {
    Ok(CatalogVersionRecord {
        workspace: r.text("workspace")?,
        version: r.int("version")?,
        catalog: r.json("catalog")?,
        created_at: r.time("created_at")?,
    })
}

pub(crate) fn customer(r: &impl Columns) -> StoreResult<CustomerRecord> {
    Ok(CustomerRecord {
        workspace: r.text("workspace")?,
        id: r.text("id")?,
        name: r.opt_text("name")?,
        email: r.opt_text("email")?,
        suspended: r.flag("suspended")?,
        has_payment_method: r.flag("has_payment_method")?,
        test_clock: r.opt_text("test_clock")?,
        metadata: r.json("metadata")?,
        created_at: r.time("created_at")?,
        address: r.json("address")?,
        tax_ids: r.json("tax_ids")?,
        archived_at: r.opt_time("archived_at")?,
    })
}

/// A stored subscription status; an unknown one means the row is corrupt (the schema's CHECK
/// lists the same statuses).
pub(crate) fn subscription_status(s: &str) -> StoreResult<SubscriptionStatus> {
    s.parse()
        .map_err(|e: tollgate_core::lifecycle::UnknownStatus| StoreError::Corrupt(e.to_string()))
}

/// A stored invoice status, `None` if it is none of the known ones.
pub(crate) fn invoice_status(s: &str) -> Option<InvoiceStatus> {
    s.parse().ok()
}

pub(crate) fn subscription(r: &impl Columns) -> StoreResult<SubscriptionRecord> {
    Ok(SubscriptionRecord {
        workspace: r.text("workspace")?,
        id: r.text("id")?,
        customer: r.text("customer")?,
        plan: r.text("plan")?,
        catalog_version: r.int("catalog_version")?,
        status: subscription_status(&r.text("status")?)?,
        addons: r.json("addons")?,
        started_at: r.time("started_at")?,
        billing_anchor: r.time("billing_anchor")?,
        trial_end: r.opt_time("trial_end")?,
        canceled_at: r.opt_time("canceled_at")?,
        ends_at: r.opt_time("ends_at")?,
    })
}

pub(crate) fn api_key(r: &impl Columns) -> StoreResult<ApiKeyRecord> {
    Ok(ApiKeyRecord {
        workspace: r.text("workspace")?,
        id: r.text("id")?,
        customer: r.text("customer")?,
        name: r.opt_text("name")?,
        secret_hash: r.text("secret_hash")?,
        prefix: r.text("prefix")?,
        created_at: r.time("created_at")?,
        revoked_at: r.opt_time("revoked_at")?,
    })
}

pub(crate) fn test_clock(r: &impl Columns) -> StoreResult<TestClockRecord> {
    Ok(TestClockRecord {
        workspace: r.text("workspace")?,
        id: r.text("id")?,
        name: r.opt_text("name")?,
        frozen_time: r.time("frozen_time")?,
        created_at: r.time("created_at")?,
    })
}

pub(crate) fn event(r: &impl Columns) -> StoreResult<EventRecord> {
    Ok(EventRecord {
        workspace: r.text("workspace")?,
        id: r.text("id")?,
        customer: r.text("customer")?,
        event_type: r.text("event_type")?,
        timestamp: r.time("ts")?,
        subject: r.opt_text("subject")?,
        properties: r.json("properties")?,
        received_at: r.time("received_at")?,
    })
}

pub(crate) fn aggregate(r: &impl Columns) -> StoreResult<AggregateRow> {
    Ok(AggregateRow {
        meter: r.text("meter")?,
        period_start: r.time("period_start")?,
        subject: r.text("subject")?,
        group_key: r.text("group_key")?,
        value: r.dec("value")?,
        updated_at: r.opt_time("updated_at")?,
    })
}

pub(crate) fn window_entry(r: &impl Columns) -> StoreResult<WindowEntryRow> {
    Ok(WindowEntryRow {
        meter: r.text("meter")?,
        subject: r.text("subject")?,
        group_key: r.text("group_key")?,
        at: r.time("at")?,
        quantity: r.dec("quantity")?,
    })
}

pub(crate) fn level_point(r: &impl Columns) -> StoreResult<LevelPoint> {
    Ok(LevelPoint {
        meter: r.text("meter")?,
        subject: r.text("subject")?,
        group_key: r.text("group_key")?,
        at: r.time("at")?,
        value: r.dec("value")?,
    })
}

pub(crate) fn invoice(r: &impl Columns) -> StoreResult<InvoiceRecord> {
    let status = r.text("status")?;
    Ok(InvoiceRecord {
        workspace: r.text("workspace")?,
        id: r.text("id")?,
        number: r.int("number")?,
        customer: r.text("customer")?,
        subscription: r.opt_text("subscription")?,
        dedupe_key: r.text("dedupe_key")?,
        status: invoice_status(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown invoice status {status:?}")))?,
        currency: r.text("currency")?,
        period_start: r.opt_time("period_start")?,
        period_end: r.opt_time("period_end")?,
        total_minor: r.int("total_minor")?,
        credit_applied_minor: r.int("credit_applied_minor")?,
        amount_due_minor: r.int("amount_due_minor")?,
        document: r.json("document")?,
        created_at: r.time("created_at")?,
        paid_at: r.opt_time("paid_at")?,
        voided_at: r.opt_time("voided_at")?,
    })
}

pub(crate) fn credit_note(r: &impl Columns) -> StoreResult<CreditNoteRecord> {
    Ok(CreditNoteRecord {
        workspace: r.text("workspace")?,
        id: r.text("id")?,
        number: r.int("number")?,
        invoice: r.text("invoice")?,
        customer: r.text("customer")?,
        amount_minor: r.int("amount_minor")?,
        currency: r.text("currency")?,
        reason: r.opt_text("reason")?,
        created_at: r.time("created_at")?,
        method: {
            let method = r.text("method")?;
            CreditNoteMethod::parse(&method).ok_or_else(|| {
                StoreError::Corrupt(format!("unknown credit note method {method:?}"))
            })?
        },
    })
}

pub(crate) fn balance_entry(r: &impl Columns) -> StoreResult<BalanceEntryRecord> {
    Ok(BalanceEntryRecord {
        workspace: r.text("workspace")?,
        id: r.text("id")?,
        customer: r.text("customer")?,
        amount_minor: r.int("amount_minor")?,
        currency: r.text("currency")?,
        kind: r.text("kind")?,
        credit_note: r.opt_text("credit_note")?,
        invoice: r.opt_text("invoice")?,
        created_at: r.time("created_at")?,
    })
}

pub(crate) fn pending_charge(r: &impl Columns) -> StoreResult<PendingChargeRecord> {
    Ok(PendingChargeRecord {
        workspace: r.text("workspace")?,
        id: r.text("id")?,
        customer: r.text("customer")?,
        subscription: r.opt_text("subscription")?,
        charge: r.json("charge")?,
        created_at: r.time("created_at")?,
        invoice: r.opt_text("invoice")?,
    })
}

pub(crate) fn scheduled_change(r: &impl Columns) -> StoreResult<ScheduledChangeRecord> {
    Ok(ScheduledChangeRecord {
        workspace: r.text("workspace")?,
        id: r.text("id")?,
        subscription: r.text("subscription")?,
        customer: r.text("customer")?,
        plan: r.text("plan")?,
        addons: r.json("addons")?,
        effective_at: r.time("effective_at")?,
        created_at: r.time("created_at")?,
        applied_at: r.opt_time("applied_at")?,
    })
}

pub(crate) fn redemption(r: &impl Columns) -> StoreResult<CouponRedemptionRecord> {
    Ok(CouponRedemptionRecord {
        workspace: r.text("workspace")?,
        id: r.text("id")?,
        customer: r.text("customer")?,
        coupon: r.text("coupon")?,
        applied: r.int("applied")?,
        created_at: r.time("created_at")?,
    })
}

/// Maps a failed insert to the trait's typed errors: a unique violation means the record exists,
/// a foreign-key violation means its parent (`parent_kind` `parent_id`) does not.
pub(crate) fn insert_error(
    err: impl Into<StoreError>,
    kind: &'static str,
    id: &str,
    parent_kind: &'static str,
    parent_id: &str,
) -> StoreError {
    let err = err.into();
    if let StoreError::Database(sqlx::Error::Database(db)) = &err {
        match db.kind() {
            sqlx::error::ErrorKind::UniqueViolation => {
                return StoreError::AlreadyExists {
                    kind,
                    id: id.to_owned(),
                };
            }
            sqlx::error::ErrorKind::ForeignKeyViolation => {
                return StoreError::NotFound {
                    kind: parent_kind,
                    id: parent_id.to_owned(),
                };
            }
            _ => {}
        }
    }
    err
}
