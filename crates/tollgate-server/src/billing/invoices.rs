//! Building invoices: from a subscription and the invoice it owes, the pricing request (usage,
//! add-ons, pending prorations, coupons, prepaid credit) and the finalized record.

use std::collections::BTreeMap;
use tollgate_core::ids::{CustomerId, WorkspaceId};

use jiff::Timestamp;
use rust_decimal::Decimal;
use serde::Serialize;
use tollgate_core::catalog::Catalog;
use tollgate_core::money::{Currency, Money};
use tollgate_core::pricing::{
    BillingPeriod, Charge, InvoiceDiscount, InvoiceDraft, InvoiceRequest, MeterUsage, assemble,
};
use tollgate_core::schedule::{DueInvoice, SubscriptionTerms};
use tollgate_store::billing::{InvoiceEffects, InvoiceRecord, InvoiceStatus};
use tollgate_store::{Store, SubscriptionRecord};

use crate::error::{AppResult, Error};

/// An invoice as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct InvoiceOut {
    pub id: String,
    /// `INV-000001`, or `LEX-2026-000001` under the seller's `invoice_prefix`; the number
    /// is gapless per workspace.
    pub number: Option<String>,
    pub customer: String,
    pub subscription: Option<String>,
    /// `draft` (a preview), `open`, `paid`, `void` or `uncollectible`.
    pub status: String,
    pub currency: String,
    pub period_start: Option<Timestamp>,
    pub period_end: Option<Timestamp>,
    /// Decimal strings in major units, e.g. `"164.00"`.
    pub total: String,
    /// The customer's balance (credit notes credited to it) used to pay `total`, before
    /// prepaid credit.
    pub balance_applied: String,
    pub credit_applied: String,
    /// `total - balance_applied - credit_applied`.
    pub amount_due: String,
    /// Sum of credit notes (refunds) against this invoice.
    pub credited: String,
    /// `refunded` or `partially_refunded` once credit notes exist.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refund_status: Option<&'static str>,
    /// The invoice's lines, in order: each with `kind` (an object whose `type` is `base_fee`,
    /// `usage`, `tax`, ...), `description`, `quantity`, `unit_price`, `period`, `exact` (before
    /// rounding) and `amount` (rounded once: the lines' amounts sum to `total`).
    #[schema(value_type = Vec<Object>)]
    pub lines: serde_json::Value,
    pub created_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paid_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub voided_at: Option<Timestamp>,
    /// Tax per rate (`tax`, `name`, `percent`, `inclusive`, `taxable`, `amount`); empty when
    /// no tax applies. Exclusive taxes are also lines; inclusive ones are inside the lines.
    #[schema(value_type = Vec<Object>)]
    #[serde(skip_serializing_if = "serde_json::Value::is_null")]
    pub taxes: serde_json::Value,
    /// The sum of `taxes`.
    pub tax_total: String,
    /// Why no tax was charged (an exempt customer, reverse charge).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tax_note: Option<String>,
    /// The seller, the buyer and the terms the invoice was issued with (`seller`, `buyer`,
    /// `net_terms_days`, `payment_instructions`, `number_prefix`, `footer`).
    #[schema(value_type = Object)]
    #[serde(skip_serializing_if = "serde_json::Value::is_null")]
    pub parties: serde_json::Value,
    /// When payment is due: the issue date plus the seller's net terms.
    pub due_at: Timestamp,
    /// What was paid (the amount due at issue, once paid).
    pub amount_paid: String,
    /// Where the customer pays (or authenticates the payment of) this open invoice: its
    /// payment link (docs/PAYMENTS.md); absent when it has none or is no longer open.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_url: Option<String>,
}

/// An amount of a stored invoice as text. Stored currencies come from validated catalogs (ISO
/// 4217); one that does not parse is corrupt data: said in the log, and shown in minor units.
pub(crate) fn money_text(minor: i64, currency: &str) -> String {
    match currency.parse::<Currency>() {
        Ok(c) => Decimal::new(minor, c.minor_digits()).to_string(),
        Err(error) => {
            tracing::error!(%error, currency, "a stored amount has an unknown currency");
            minor.to_string()
        }
    }
}

/// The customer's balance an invoice used, from its document (minor units; 0 when none).
pub(crate) fn balance_applied_minor(r: &InvoiceRecord) -> i64 {
    let Some(text) = r.document.get("balance_applied").and_then(|t| t.as_str()) else {
        return 0;
    };
    let parsed = text
        .parse::<Decimal>()
        .ok()
        .zip(r.currency.parse::<Currency>().ok())
        .and_then(|(amount, currency)| Money::exact(amount, currency).ok());
    match parsed {
        Some(m) => m.minor(),
        None => {
            tracing::error!(invoice = %r.id, text, "a stored balance_applied does not parse");
            0
        }
    }
}

impl InvoiceOut {
    pub fn from_record(r: &InvoiceRecord, credited_minor: i64) -> Self {
        let refund_status = match credited_minor {
            0 => None,
            c if c >= r.total_minor => Some("refunded"),
            _ => Some("partially_refunded"),
        };
        InvoiceOut {
            id: r.id.clone(),
            number: Some(super::documents::invoice_number(r)),
            customer: r.customer.clone(),
            subscription: r.subscription.clone(),
            status: r.status.as_str().to_owned(),
            currency: r.currency.clone(),
            period_start: r.period_start,
            period_end: r.period_end,
            total: money_text(r.total_minor, &r.currency),
            balance_applied: money_text(balance_applied_minor(r), &r.currency),
            credit_applied: money_text(r.credit_applied_minor, &r.currency),
            amount_due: money_text(r.amount_due_minor, &r.currency),
            credited: money_text(credited_minor, &r.currency),
            refund_status,
            lines: r.document.get("lines").cloned().unwrap_or_default(),
            created_at: r.created_at,
            paid_at: r.paid_at,
            voided_at: r.voided_at,
            taxes: r.document.get("taxes").cloned().unwrap_or_default(),
            tax_total: r
                .document
                .get("tax_total")
                .and_then(|t| t.as_str())
                .map_or_else(|| money_text(0, &r.currency), str::to_owned),
            tax_note: r
                .document
                .get("tax_note")
                .and_then(|t| t.as_str())
                .map(str::to_owned),
            parties: r.document.get("parties").cloned().unwrap_or_default(),
            due_at: super::documents::parties_of(r).due(r.created_at),
            amount_paid: money_text(
                if r.status == InvoiceStatus::Paid {
                    r.amount_due_minor
                } else {
                    0
                },
                &r.currency,
            ),
            payment_url: None,
        }
    }

    /// A preview that is not stored.
    pub fn from_draft(
        draft: &InvoiceDraft,
        customer: &str,
        subscription: Option<&str>,
        now: Timestamp,
    ) -> AppResult<Self> {
        let doc = serde_json::to_value(draft).map_err(Error::internal)?;
        let period = draft.closing.or(draft.opening);
        Ok(InvoiceOut {
            id: "upcoming".into(),
            number: None,
            customer: customer.to_owned(),
            subscription: subscription.map(str::to_owned),
            status: "draft".into(),
            currency: draft.currency.to_string(),
            period_start: period.map(|p| p.start),
            period_end: period.map(|p| p.end),
            total: draft.total.to_decimal().to_string(),
            balance_applied: draft.balance_applied.to_decimal().to_string(),
            credit_applied: draft.credit_applied.to_decimal().to_string(),
            amount_due: draft.amount_due.to_decimal().to_string(),
            credited: Money::zero(draft.currency).to_decimal().to_string(),
            refund_status: None,
            lines: doc.get("lines").cloned().unwrap_or_default(),
            created_at: now,
            paid_at: None,
            voided_at: None,
            taxes: doc.get("taxes").cloned().unwrap_or_default(),
            tax_total: draft.tax_total.to_decimal().to_string(),
            tax_note: draft.tax_note.clone(),
            parties: doc.get("parties").cloned().unwrap_or_default(),
            due_at: draft.parties.as_ref().map_or(now, |p| p.due(now)),
            amount_paid: Money::zero(draft.currency).to_decimal().to_string(),
            payment_url: None,
        })
    }
}

/// The billing terms of a subscription on its catalog.
pub fn terms(sub: &SubscriptionRecord, catalog: &Catalog) -> SubscriptionTerms {
    SubscriptionTerms {
        id: sub.id.clone(),
        anchor: sub.billing_anchor,
        cadence: catalog
            .plans
            .get(&sub.plan)
            .map_or(tollgate_core::period::Cadence::MONTH, |p| p.cadence()),
        started_at: sub.started_at,
        trial_end: sub.trial_end,
        ends_at: sub.ends_at,
    }
}

fn billing_period(p: tollgate_core::period::Period) -> AppResult<BillingPeriod> {
    BillingPeriod::new(p.start, p.end).map_err(|e| Error::internal(format!("period: {e}")))
}

/// What building an invoice reads about its customer, read beforehand by the caller for many
/// customers at once (the bill run, `BillingStore::billing_chunk`): the values the reads would
/// return at that moment, so the invoice is the one [`build_due_invoice`] would build.
#[derive(Debug, Clone, Copy)]
pub struct Known<'a> {
    pub customer: &'a tollgate_store::CustomerRecord,
    pub profile: Option<&'a serde_json::Value>,
    /// The workspace's seller profile (read once per run).
    pub seller: Option<&'a super::profiles::SellerProfile>,
    pub pending_charges: &'a [tollgate_store::billing::PendingChargeRecord],
    pub redemptions: &'a [tollgate_store::billing::CouponRedemptionRecord],
    pub credit_balance: i64,
    pub customer_balance: i64,
    /// The aggregate rows of the closing period, when they were read for it (else read here).
    pub aggregates: Option<&'a [tollgate_store::AggregateRow]>,
}

/// The pricing request for one due invoice of a subscription, and what finalizing it consumes.
pub async fn build_due_invoice(
    store: &dyn Store,
    sub: &SubscriptionRecord,
    catalog: &Catalog,
    due: &DueInvoice,
) -> AppResult<(InvoiceDraft, InvoiceEffects)> {
    build_due_invoice_with(store, sub, catalog, due, None).await
}

/// [`build_due_invoice`], with what the caller already read about the customer (`known`).
pub async fn build_due_invoice_with(
    store: &dyn Store,
    sub: &SubscriptionRecord,
    catalog: &Catalog,
    due: &DueInvoice,
    known: Option<Known<'_>>,
) -> AppResult<(InvoiceDraft, InvoiceEffects)> {
    // Priced in the customer's currency (docs/CATALOG.md, "Prices in several currencies").
    let profile = match known {
        Some(k) => super::profiles::profile_of(k.profile, &sub.customer)?,
        None => super::profiles::customer_profile(store, &sub.workspace, &sub.customer).await?,
    };
    let priced = catalog.in_currency(profile.currency(catalog)?);
    let catalog: &Catalog = &priced;
    let (closing, opening, first) = match due {
        DueInvoice::Opening { period } => (None, Some(*period), true),
        DueInvoice::Closing { closing, opening } => (Some(*closing), *opening, false),
    };
    // A first period shorter than a whole one (a start between calendar boundaries): its fees
    // are prorated to the whole period they are part of.
    let terms = terms(sub, catalog);
    let whole_of = |p: Option<tollgate_core::period::Period>| {
        p.and_then(|p| terms.prorated_from(p))
            .map(billing_period)
            .transpose()
    };
    let (closing_full, opening_full) = (whole_of(closing)?, whole_of(opening)?);
    // A plan minimum is prorated as the base fee is on a prorated first period, and also on a
    // last period a cancellation cut short (it commits to a whole period's spend).
    let minimum_full = match (closing_full, closing) {
        (Some(full), _) => Some(full),
        (None, Some(p)) if sub.ends_at == Some(p.end) => {
            let whole =
                tollgate_core::period::Period::containing(terms.anchor, terms.cadence, p.start);
            (whole != p).then(|| billing_period(whole)).transpose()?
        }
        _ => None,
    };
    let usage = match closing {
        Some(p) => usage_of_from(store, sub, catalog, p, known.and_then(|k| k.aggregates)).await?,
        None => BTreeMap::new(),
    };
    let addons: BTreeMap<String, Decimal> = sub
        .addons
        .as_object()
        .map(|o| {
            o.iter()
                .filter_map(|(k, v)| Some((k.clone(), Decimal::from(v.as_u64()?))))
                .collect()
        })
        .unwrap_or_default();
    let mut effects = InvoiceEffects::default();
    let mut adjustments = match known {
        Some(k) => charges_of(k.pending_charges, &mut effects)?,
        None => pending_charges(store, sub, &mut effects).await?,
    };
    // The usage the period's progressive invoices billed is subtracted, so the period's usage is
    // billed once in all (docs/INVOICES.md, "Progressive billing").
    if let Some(period) = closing
        && catalog
            .plans
            .get(&sub.plan)
            .is_some_and(|p| p.progressive_billing.is_some())
    {
        let (billed, _) = progressive_billed(store, sub, period.start).await?;
        adjustments.extend(tollgate_core::pricing::already_billed(
            catalog,
            &billed,
            &billing_period(period)?,
        ));
    }
    let mut discounts = Vec::new();
    let redemptions = match known {
        Some(k) => k.redemptions.to_vec(),
        None => {
            store
                .coupon_redemptions(
                    &WorkspaceId::from(&sub.workspace),
                    &CustomerId::from(&sub.customer),
                )
                .await?
        }
    };
    for redemption in redemptions {
        let Some(coupon) = catalog.coupons.get(&redemption.coupon) else {
            continue;
        };
        if coupon
            .duration
            .covers(u32::try_from(redemption.applied).unwrap_or(u32::MAX))
        {
            discounts.push(InvoiceDiscount::from_coupon(&redemption.coupon, coupon));
            effects.coupon_redemptions.push(redemption.id);
        }
    }
    let (balance, customer_balance) = match known {
        Some(k) => (k.credit_balance, k.customer_balance),
        None => (
            store
                .credit_balance(
                    &WorkspaceId::from(&sub.workspace),
                    &CustomerId::from(&sub.customer),
                )
                .await?,
            store
                .customer_balance(
                    &WorkspaceId::from(&sub.workspace),
                    &CustomerId::from(&sub.customer),
                )
                .await?,
        ),
    };
    let parties = match known {
        // As `invoice_parties` names the buyer: its legal name, its name, else its id.
        Some(k) => super::profiles::parties_of(
            profile
                .legal_name
                .clone()
                .or_else(|| k.customer.name.clone())
                .unwrap_or_else(|| sub.customer.clone()),
            &profile,
            k.seller.cloned(),
        ),
        None => {
            super::profiles::invoice_parties(store, &sub.workspace, &sub.customer, &profile).await?
        }
    };
    let request = InvoiceRequest {
        plan: Some(sub.plan.clone()),
        closing: closing.map(billing_period).transpose()?,
        opening: opening.map(billing_period).transpose()?,
        usage,
        addons,
        products: BTreeMap::new(),
        first_invoice: first,
        adjustments,
        discounts,
        credit_balance: (balance > 0).then(|| Money::from_minor(balance, catalog.currency)),
        opening_full,
        closing_full,
        minimum_full,
        customer_balance: (customer_balance > 0)
            .then(|| Money::from_minor(customer_balance, catalog.currency)),
        tax: profile.tax(),
        parties: Some(parties),
    };
    let draft = assemble(catalog, &request).map_err(|e| Error::invalid(e.code(), e.to_string()))?;
    effects.credit_used_minor = draft.credit_applied.minor();
    effects.balance_used_minor = draft.balance_applied.minor();
    // A coupon counts the invoices it discounted: an invoice of nothing uses none of it.
    if draft.subtotal.is_zero() {
        effects.coupon_redemptions.clear();
    }
    Ok((draft, effects))
}

/// A subscription's usage of `period` per meter, from the aggregates; a price charged per
/// transaction rates each event of the period (so far, for a period still running).
pub async fn usage_of(
    store: &dyn Store,
    sub: &SubscriptionRecord,
    catalog: &Catalog,
    period: tollgate_core::period::Period,
) -> AppResult<BTreeMap<String, MeterUsage>> {
    usage_of_from(store, sub, catalog, period, None).await
}

/// [`usage_of`] from the period's aggregate rows when the caller read them (`None`: read here).
async fn usage_of_from(
    store: &dyn Store,
    sub: &SubscriptionRecord,
    catalog: &Catalog,
    period: tollgate_core::period::Period,
    rows: Option<&[tollgate_store::AggregateRow]>,
) -> AppResult<BTreeMap<String, MeterUsage>> {
    let mut usage = super::usage::period_usage_from(
        store,
        &sub.workspace,
        &sub.customer,
        catalog,
        period,
        rows,
    )
    .await?;
    if let Some(plan) = catalog.plans.get(&sub.plan) {
        for price in plan.prices.iter().filter(|p| p.model.per_transaction()) {
            let Some(meter) = catalog.meters.get(&price.meter) else {
                continue;
            };
            let values = super::usage::transactions(
                store,
                &sub.workspace,
                &sub.customer,
                &price.meter,
                meter,
                period,
            )
            .await?;
            let rated = MeterUsage::transactions(values)
                .map_err(|e| Error::invalid(e.code(), e.to_string()))?;
            usage.insert(price.meter.clone(), rated);
        }
    }
    Ok(usage)
}

/// The dedupe key of a subscription's progressive invoice of the period starting at `start`, for
/// `threshold`: `<subscription>:progressive:<period start>:<threshold>`, so each threshold of a
/// period is invoiced once.
pub fn progressive_key(sub: &str, start: Timestamp, threshold: Decimal) -> String {
    format!("{sub}:progressive:{start}:{}", threshold.normalize())
}

/// What the progressive invoices of the period starting at `start` billed, per meter (a void one
/// billed nothing), and the highest threshold invoiced (a void one's included: its key is taken).
pub async fn progressive_billed(
    store: &dyn Store,
    sub: &SubscriptionRecord,
    start: Timestamp,
) -> AppResult<(BTreeMap<String, Decimal>, Option<Decimal>)> {
    let prefix = format!("{}:progressive:{start}:", sub.id);
    let mut billed: BTreeMap<String, Decimal> = BTreeMap::new();
    let mut highest: Option<Decimal> = None;
    let invoices = store
        .list_invoices(
            &WorkspaceId::from(&sub.workspace),
            &CustomerId::from(&sub.customer),
        )
        .await?;
    for invoice in invoices {
        let Some(threshold) = invoice.dedupe_key.strip_prefix(&prefix) else {
            continue;
        };
        let threshold: Decimal = threshold
            .parse()
            .map_err(|e| Error::internal(format!("invoice key {}: {e}", invoice.dedupe_key)))?;
        highest = Some(highest.map_or(threshold, |h| h.max(threshold)));
        if invoice.status == InvoiceStatus::Void {
            continue;
        }
        let lines = invoice.document.get("lines").and_then(|l| l.as_array());
        for line in lines.into_iter().flatten() {
            let (Some("usage"), Some(meter)) = (
                line["kind"]["type"].as_str(),
                line["kind"]["meter"].as_str(),
            ) else {
                continue;
            };
            let amount: Decimal = line["amount"]
                .as_str()
                .and_then(|a| a.parse().ok())
                .ok_or_else(|| {
                    Error::internal(format!("invoice {}: a line's amount", invoice.id))
                })?;
            let sum = billed.entry(meter.to_owned()).or_default();
            *sum = sum
                .checked_add(amount)
                .ok_or_else(|| Error::internal("progressive amounts overflow"))?;
        }
    }
    Ok((billed, highest))
}

/// The customer's charges waiting for an invoice (prorations), marked as consumed in `effects`.
async fn pending_charges(
    store: &dyn Store,
    sub: &SubscriptionRecord,
    effects: &mut InvoiceEffects,
) -> AppResult<Vec<Charge>> {
    let pending = store
        .pending_charges(
            &WorkspaceId::from(&sub.workspace),
            &CustomerId::from(&sub.customer),
        )
        .await?;
    charges_of(&pending, effects)
}

/// [`pending_charges`] from the customer's pending charges as read.
fn charges_of(
    pending: &[tollgate_store::billing::PendingChargeRecord],
    effects: &mut InvoiceEffects,
) -> AppResult<Vec<Charge>> {
    let mut adjustments = Vec::new();
    for pending in pending {
        let charge: Charge = serde_json::from_value(pending.charge.clone())
            .map_err(|e| Error::internal(format!("pending charge {}: {e}", pending.id)))?;
        adjustments.push(charge);
        effects.pending_charges.push(pending.id.clone());
    }
    Ok(adjustments)
}

/// Invoices the customer's pending charges `ids` at once, on an invoice of their own (an upgrade
/// to a plan with `upgrades: always_invoice`, Stripe's `always_invoice`); prepaid credit pays it
/// first. Named `<subscription>:change:<now>`, so it is written once.
pub async fn invoice_pending_charges(
    store: &dyn Store,
    sub: &SubscriptionRecord,
    catalog: &Catalog,
    ids: &[String],
    now: Timestamp,
) -> AppResult<()> {
    let mut all = InvoiceEffects::default();
    let pending = pending_charges(store, sub, &mut all).await?;
    let mut effects = InvoiceEffects::default();
    let mut adjustments = Vec::new();
    for (id, charge) in all.pending_charges.into_iter().zip(pending) {
        if ids.contains(&id) {
            effects.pending_charges.push(id);
            adjustments.push(charge);
        }
    }
    if adjustments.is_empty() {
        return Ok(());
    }
    let profile = super::profiles::customer_profile(store, &sub.workspace, &sub.customer).await?;
    let priced = catalog.in_currency(profile.currency(catalog)?);
    let catalog: &Catalog = &priced;
    let balance = store
        .credit_balance(
            &WorkspaceId::from(&sub.workspace),
            &CustomerId::from(&sub.customer),
        )
        .await?;
    let customer_balance = store
        .customer_balance(
            &WorkspaceId::from(&sub.workspace),
            &CustomerId::from(&sub.customer),
        )
        .await?;
    let request = InvoiceRequest {
        adjustments,
        credit_balance: (balance > 0).then(|| Money::from_minor(balance, catalog.currency)),
        customer_balance: (customer_balance > 0)
            .then(|| Money::from_minor(customer_balance, catalog.currency)),
        ..InvoiceRequest::default()
    };
    let draft = assemble(catalog, &request).map_err(|e| Error::invalid(e.code(), e.to_string()))?;
    effects.credit_used_minor = draft.credit_applied.minor();
    effects.balance_used_minor = draft.balance_applied.minor();
    let invoice = record(
        (&sub.workspace, &sub.customer, Some(&sub.id)),
        format!("{}:change:{now}", sub.id),
        &draft,
        now,
    )?;
    store.insert_invoice(&invoice, &effects).await?;
    Ok(())
}

/// The record of a finalized invoice (numbered by the store on insert).
pub fn record(
    sub_or_customer: (&str, &str, Option<&str>),
    dedupe_key: String,
    draft: &InvoiceDraft,
    now: Timestamp,
) -> AppResult<InvoiceRecord> {
    let (workspace, customer, subscription) = sub_or_customer;
    let period = match (draft.closing, draft.opening) {
        (Some(c), _) => Some((c.start, c.end)),
        (None, Some(o)) => Some((o.start, o.end)),
        (None, None) => None,
    };
    let paid = draft.amount_due.is_zero();
    Ok(InvoiceRecord {
        workspace: workspace.to_owned(),
        id: crate::ids::new_id("in"),
        number: 0,
        customer: customer.to_owned(),
        subscription: subscription.map(str::to_owned),
        dedupe_key,
        status: if paid {
            InvoiceStatus::Paid
        } else {
            InvoiceStatus::Open
        },
        currency: draft.currency.to_string(),
        period_start: period.map(|p| p.0),
        period_end: period.map(|p| p.1),
        total_minor: draft.total.minor(),
        credit_applied_minor: draft.credit_applied.minor(),
        amount_due_minor: draft.amount_due.minor(),
        document: serde_json::to_value(draft).map_err(Error::internal)?,
        created_at: now,
        paid_at: paid.then_some(now),
        voided_at: None,
    })
}

/// The next invoice of a subscription as it stands now: the opening invoice during a trial, else
/// the one that will close the current period, with the usage so far.
pub async fn upcoming_invoice(
    store: &dyn Store,
    sub: &SubscriptionRecord,
    catalog: &Catalog,
    now: Timestamp,
) -> AppResult<InvoiceDraft> {
    let terms = terms(sub, catalog);
    let due = if terms.activation() > now {
        DueInvoice::Opening {
            period: terms.paid_period_at(now),
        }
    } else {
        let current = terms.paid_period_at(now);
        let next = terms.paid_period_at(current.end);
        let ends = sub.ends_at.is_some_and(|e| e <= current.end);
        DueInvoice::Closing {
            closing: current,
            opening: (!ends).then_some(next),
        }
    };
    Ok(build_due_invoice(store, sub, catalog, &due).await?.0)
}
