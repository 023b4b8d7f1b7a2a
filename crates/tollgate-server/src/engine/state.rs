//! One customer's enforcement state: who it is, what it is subscribed to, and its counters for
//! the current period and its rolling windows.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use tollgate_core::ids::{CustomerId, WorkspaceId};

use jiff::Timestamp;
use rust_decimal::Decimal;
use tollgate_core::catalog::{Aggregation, Plan};
use tollgate_core::duration::WindowLength;
use tollgate_core::limits::{FixedWindow, RollingWindow};
use tollgate_core::period::Period;
use tollgate_store::{
    AggregateOp, AggregateUpdate, CustomerRecord, Store, SubscriptionRecord, SubscriptionStatus,
};

use super::catalogs::{CompiledCatalog, FastMap};
use crate::error::AppResult;

/// `(meter, subject)`; subject `""` is the whole customer.
pub type UsageKey = (String, String);

/// Rolling-window histories by [`UsageKey`], looked up on every check of a rolling quota:
/// foldhash (why that is safe: `catalogs::FastHasher`; a subject is chosen by the customer for
/// itself, so colliding subjects slow only that customer).
pub type Windows = FastMap<UsageKey, RollingWindow>;

/// A [`UsageKey`] as borrowed text: counters are looked up by `(&str, &str)` on the hot path
/// instead of building two `String`s per lookup. It hashes and compares exactly as the tuple of
/// strings does (each string in turn), which is what `Borrow` requires.
pub trait UsageKeyRef {
    fn meter(&self) -> &str;
    fn subject(&self) -> &str;
}

impl UsageKeyRef for UsageKey {
    fn meter(&self) -> &str {
        &self.0
    }
    fn subject(&self) -> &str {
        &self.1
    }
}

impl UsageKeyRef for (&str, &str) {
    fn meter(&self) -> &str {
        self.0
    }
    fn subject(&self) -> &str {
        self.1
    }
}

impl<'a> Borrow<dyn UsageKeyRef + 'a> for UsageKey {
    fn borrow(&self) -> &(dyn UsageKeyRef + 'a) {
        self
    }
}

impl Hash for dyn UsageKeyRef + '_ {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.meter().hash(state);
        self.subject().hash(state);
    }
}

impl PartialEq for dyn UsageKeyRef + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.meter() == other.meter() && self.subject() == other.subject()
    }
}

impl Eq for dyn UsageKeyRef + '_ {}

pub struct CustomerState {
    pub record: CustomerRecord,
    pub subscription: Option<SubscriptionRecord>,
    /// The catalog version of the subscription, or the workspace's latest without one.
    pub catalog: Option<Arc<CompiledCatalog>>,
    /// The billing period counters are kept for.
    pub period: Period,
    /// Meter values in `period`, before unit conversion.
    pub period_usage: HashMap<UsageKey, Decimal>,
    /// Rolling-window history per meter and subject, kept for the meter's longest window.
    pub windows: Windows,
    /// Request rate-limit counters: per rate limit (the plan's index), per subject (`""` for the
    /// whole customer). Nested so that a lookup borrows the subject.
    pub rate_windows: Vec<FastMap<String, FixedWindow>>,
    /// Usage alerts of `period` known to have fired, `(meter, threshold)`: spares the store a
    /// write per event once a threshold is behind (the store's key is what makes them once).
    pub fired_alerts: std::collections::HashSet<(String, Decimal)>,
    /// When the progressive-billing check last enqueued for this customer is due: spares the
    /// store a write per event within the same minute (the job's key makes it once anyway).
    pub progressive_check_due: Option<Timestamp>,
    /// Set when an update could not be applied exactly in memory: reload before the next use.
    pub stale: bool,
}

impl CustomerState {
    /// Whether the state must be reloaded before answering at `now`.
    pub fn needs_reload(&self, now: Timestamp) -> bool {
        self.stale || !self.period.contains(now)
    }

    /// The plan in force at `now`: the subscribed plan, or its trial fallback once a trial ended
    /// without a payment method. `None` without a live subscription.
    pub fn effective_plan(&self, now: Timestamp) -> Option<(&str, &Plan)> {
        let i = self.effective_plan_index(now)?;
        let (key, plan) = self.catalog.as_ref()?.catalog.plans.get_index(i)?;
        Some((key.as_str(), plan))
    }

    /// [`CustomerState::effective_plan`] as an index in the catalog version's plans (and its
    /// `plan_tables`): looked up in the version's foldhash index, not the `IndexMap`'s SipHash.
    pub fn effective_plan_index(&self, now: Timestamp) -> Option<usize> {
        let sub = self.subscription.as_ref()?;
        let compiled = self.catalog.as_ref()?;
        if sub.ends_at.is_some_and(|end| end <= now) {
            return None;
        }
        let i = *compiled.plan_index.get(sub.plan.as_str())?;
        let trial_over = sub.status == SubscriptionStatus::Trialing
            && sub.trial_end.is_some_and(|end| end <= now);
        if trial_over && !self.record.has_payment_method {
            let (_, plan) = compiled.catalog.plans.get_index(i)?;
            if let Some(fallback) = plan.trial_fallback.as_deref() {
                return compiled.plan_index.get(fallback).copied();
            }
        }
        Some(i)
    }

    /// Whether the customer's subscription is paused (no service until resumed).
    pub fn paused(&self) -> bool {
        self.subscription
            .as_ref()
            .is_some_and(|s| s.status == SubscriptionStatus::Paused)
    }

    /// Whether the customer is in a free trial at `now`.
    pub fn in_trial(&self, now: Timestamp) -> bool {
        self.subscription.as_ref().is_some_and(|s| {
            s.status == SubscriptionStatus::Trialing && s.trial_end.is_some_and(|end| now < end)
        })
    }

    /// The billing period containing `at` for this customer.
    pub fn period_at(&self, at: Timestamp) -> Period {
        billing_period(self.subscription.as_ref(), self.catalog.as_deref(), at)
    }

    /// Applies updates of an accepted event (or a reservation) to the counters.
    pub fn apply(&mut self, updates: &[AggregateUpdate], sign: Decimal) {
        for update in updates {
            let key = (update.meter.clone(), update.subject.clone());
            match &update.op {
                AggregateOp::Add(x) if update.period_start == self.period.start => {
                    let slot = self.period_usage.entry(key).or_default();
                    *slot = slot.saturating_add(x.saturating_mul(sign));
                }
                AggregateOp::WindowEntry { quantity, at } => {
                    let retention = self.window_retention(&update.meter);
                    let window = self
                        .windows
                        .entry(key)
                        .or_insert_with(|| RollingWindow::new(retention));
                    if sign.is_sign_positive() {
                        window.record(*at, *quantity);
                    } else {
                        window.unrecord(*at, *quantity);
                    }
                }
                AggregateOp::Add(_) => {}
                // Max, latest, unique and levels need the stored rows to stay exact.
                _ if update.period_start == self.period.start => self.stale = true,
                _ => {}
            }
        }
    }

    fn window_retention(&self, meter: &str) -> WindowLength {
        self.catalog
            .as_ref()
            .and_then(|c| c.rolling_meters.get(meter).copied())
            .and_then(WindowLength::from_seconds)
            .unwrap_or(WindowLength::DAY)
    }

    /// The rolling-window history of a meter and subject, if it has any use.
    pub fn window_mut(&mut self, meter: &str, subject: &str) -> Option<&mut RollingWindow> {
        self.windows.get_mut(&(meter, subject) as &dyn UsageKeyRef)
    }

    /// The counter of request rate limit `index` for `subject` (created on its first use).
    pub fn rate_window(
        &mut self,
        index: usize,
        subject: &str,
        length: WindowLength,
    ) -> &mut FixedWindow {
        if self.rate_windows.len() <= index {
            self.rate_windows.resize_with(index + 1, FastMap::default);
        }
        let windows = &mut self.rate_windows[index];
        if !windows.contains_key(subject) {
            windows.insert(subject.to_owned(), FixedWindow::new(length));
        }
        windows
            .get_mut(subject)
            .unwrap_or_else(|| unreachable!("inserted above"))
    }

    /// The meter's value in the current period, converted to its unit.
    pub fn period_value(&self, meter: &str, subject: &str) -> Decimal {
        let raw = self
            .period_usage
            .get(&(meter, subject) as &dyn UsageKeyRef)
            .copied()
            .unwrap_or_default();
        match self
            .catalog
            .as_ref()
            .and_then(|c| c.catalog.meters.get(meter))
        {
            Some(m) => tollgate_core::meter::convert(m, raw),
            None => raw,
        }
    }
}

/// Billing periods: the subscription's anchor and interval; calendar months without one.
pub fn billing_period(
    sub: Option<&SubscriptionRecord>,
    catalog: Option<&CompiledCatalog>,
    at: Timestamp,
) -> Period {
    match sub {
        Some(sub) => {
            let cadence = catalog
                .and_then(|c| c.catalog.plans.get(&sub.plan))
                .map_or(tollgate_core::period::Cadence::MONTH, Plan::cadence);
            tollgate_core::period::subscription_period(
                sub.billing_anchor,
                cadence,
                sub.started_at,
                sub.trial_end,
                at,
            )
        }
        None => Period::calendar_month(at),
    }
}

/// Builds a customer's state from the store: the period's aggregates and the rolling windows'
/// recent entries. Never reads raw events.
pub async fn load(
    store: &dyn Store,
    record: CustomerRecord,
    subscription: Option<SubscriptionRecord>,
    catalog: Option<Arc<CompiledCatalog>>,
    now: Timestamp,
) -> AppResult<CustomerState> {
    let period = billing_period(subscription.as_ref(), catalog.as_deref(), now);
    let workspace = record.workspace.clone();
    let mut period_usage: HashMap<UsageKey, Decimal> = HashMap::new();
    for row in store
        .aggregates(
            &WorkspaceId::from(&workspace),
            &CustomerId::from(&record.id),
            period.start,
        )
        .await?
    {
        let aggregation = catalog
            .as_ref()
            .and_then(|c| c.catalog.meters.get(&row.meter))
            .map(|m| m.aggregation);
        let slot = period_usage.entry((row.meter, row.subject)).or_default();
        *slot = match aggregation {
            Some(Aggregation::Max) => (*slot).max(row.value),
            Some(Aggregation::Latest | Aggregation::TimeWeighted) => row.value,
            // Saturating: a value stored before ingest bounded quantities must not make every
            // later read of the customer fail; such a customer is over any limit instead.
            _ => slot.saturating_add(row.value),
        };
    }
    let mut windows = Windows::default();
    if let Some(compiled) = catalog.as_ref().filter(|c| c.longest_window() > 0) {
        let since = Timestamp::from_second(now.as_second() - compiled.longest_window() as i64)
            .unwrap_or(now);
        for entry in store
            .window_entries(
                &WorkspaceId::from(&workspace),
                &CustomerId::from(&record.id),
                since,
            )
            .await?
        {
            let Some(retention) = compiled
                .rolling_meters
                .get(&entry.meter)
                .copied()
                .and_then(WindowLength::from_seconds)
            else {
                continue;
            };
            windows
                .entry((entry.meter, entry.subject))
                .or_insert_with(|| RollingWindow::new(retention))
                .record(entry.at, entry.quantity);
        }
    }
    Ok(CustomerState {
        record,
        subscription,
        catalog,
        period,
        period_usage,
        windows,
        rate_windows: Vec::new(),
        fired_alerts: std::collections::HashSet::new(),
        progressive_check_due: None,
        stale: false,
    })
}
