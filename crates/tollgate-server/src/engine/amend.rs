//! "Latest copy replaces" (docs/INVOICES.md, "Repeated event ids"): a later copy of a stored
//! event id, on a meter with `on_duplicate: latest_replaces`, replaces the first one's properties
//! for rating, as an audited amendment.
//!
//! Only ids that `ingest`'s insert already reported as duplicates come here, so a batch without
//! duplicates pays nothing. The event row stays as first written; the store records the
//! amendment, the aggregate difference and an `event.amended` domain event (sealed by the
//! ledger) in one transaction, and the counters then move by the same difference.

use std::collections::{BTreeMap, HashMap};

use rust_decimal::Decimal;
use serde_json::json;
use tollgate_core::catalog::OnDuplicate;
use tollgate_core::code::Code;
use tollgate_core::event::Event;
use tollgate_core::ids::WorkspaceId;
use tollgate_store::amendments::{AmendableEvent, EventAmendment};
use tollgate_store::{AggregateOp, AggregateUpdate, IngestItem, StoreError};

use super::Engine;
use super::ingest::{Rejection, corrections_allowed, reject, updates_for};
use super::state::CustomerState;
use crate::auth::Principal;
use crate::error::AppResult;

/// The type of the domain event an amendment writes (`app::outbox::types::EVENT_AMENDED`).
pub const EVENT_AMENDED_EVENT: &str = "event.amended";

/// Whether a copy of this event type replaces the stored one (its meters say
/// `latest_replaces`; the catalog makes all meters of one type agree).
pub(super) fn replaces(state: &CustomerState, event_type: &str) -> bool {
    let Some(compiled) = state.catalog.as_ref() else {
        return false;
    };
    compiled
        .meters_by_event
        .get(event_type)
        .is_some_and(|keys| {
            keys.iter().any(|k| {
                compiled
                    .catalog
                    .meters
                    .get(k)
                    .is_some_and(|m| m.on_duplicate == OnDuplicate::LatestReplaces)
            })
        })
}

/// What a replacing copy did.
pub(super) enum Replaced {
    /// Same value as what is rated now (a plain retry): nothing changed.
    Unchanged,
    /// Amended (the amendment's `seq`): the aggregate difference, already committed, to apply
    /// to the counters.
    Amended(Box<IngestItem>, i64),
}

/// A replacement worked out under the customer's state lock, before the store writes it.
struct Plan {
    amendment: EventAmendment,
    change: IngestItem,
}

impl Engine {
    /// Replaces the stored event `copy.event.id` with `copy`'s properties. The customer's gate
    /// is held by the caller (ingest), so the value read here is the one amended on this node;
    /// across nodes the amendment's `seq` key makes a concurrent replacement conflict.
    pub(super) async fn replace_event(
        &self,
        caller: &Principal,
        slot: &super::CustomerSlot,
        copy: &IngestItem,
        pending: &mut HashMap<(String, String, String), Decimal>,
    ) -> AppResult<Result<Replaced, Rejection>> {
        let workspace = WorkspaceId::from(caller.workspace());
        let Some(stored) = self
            .store
            .amendable_event(&workspace, &copy.event.id)
            .await?
        else {
            return Ok(Ok(Replaced::Unchanged));
        };
        let plan = {
            let guard = slot.lock_state();
            let Some(state) = guard.as_ref() else {
                return Ok(Ok(Replaced::Unchanged));
            };
            match self.plan_replacement(caller, state, &stored, copy, pending) {
                Ok(Some(plan)) => plan,
                Ok(None) => return Ok(Ok(Replaced::Unchanged)),
                Err(r) => return Ok(Err(r)),
            }
        };
        let data = json!({
            "event": plan.amendment.event_id,
            "type": plan.amendment.event_type,
            "seq": plan.amendment.seq,
            "old_properties": plan.amendment.old_properties,
            "new_properties": plan.amendment.new_properties,
            "amended_by": plan.amendment.amended_by,
            "difference": difference_json(&plan.change.updates),
        });
        let event = self.domain_event(
            caller.workspace(),
            Some(&plan.amendment.customer),
            EVENT_AMENDED_EVENT,
            plan.amendment.amended_at,
            data,
        );
        match self
            .store
            .amend_event(&plan.amendment, &plan.change, &[event])
            .await
        {
            Ok(()) => Ok(Ok(Replaced::Amended(
                Box::new(plan.change),
                plan.amendment.seq,
            ))),
            Err(StoreError::AlreadyExists { .. }) => Ok(Err(reject(
                Code::Conflict,
                "another copy of this event was applied at the same time; send it again",
            ))),
            Err(e) => Err(e.into()),
        }
    }

    fn plan_replacement(
        &self,
        caller: &Principal,
        state: &CustomerState,
        stored: &AmendableEvent,
        copy: &IngestItem,
        pending: &mut HashMap<(String, String, String), Decimal>,
    ) -> Result<Option<Plan>, Rejection> {
        let first = &stored.event;
        let new = &copy.event;
        if first.customer != new.customer
            || first.event_type != new.event_type
            || first.subject != new.subject
        {
            return Err(reject(
                Code::DuplicateIdMismatch,
                "this id belongs to a stored event of another customer, type or subject; a replacing copy must match them",
            ));
        }
        let old_properties = stored.current_properties();
        if *old_properties == new.properties {
            return Ok(None);
        }
        // The event stays where it happened: the replacement is rated at the first copy's time.
        if state.period_at(first.timestamp).start != state.period.start {
            return Err(reject(
                Code::EventAlreadyInvoiced,
                "the event belongs to a closed billing period, invoiced from its usage at the close; correct it with a credit note",
            ));
        }
        let as_event = |properties: &serde_json::Value| Event {
            event_type: first.event_type.clone(),
            timestamp: first.timestamp,
            subject: first.subject.clone(),
            properties: properties.as_object().cloned().unwrap_or_default(),
        };
        let before = updates_for(state, &as_event(old_properties))?;
        let after = updates_for(state, &as_event(&new.properties))?;
        let rolling = |meter: &str| {
            state
                .catalog
                .as_ref()
                .is_some_and(|c| c.rolling_meters.contains_key(meter))
        };
        let delta = difference(&before, &after, rolling, first.timestamp);
        let lowers = delta
            .iter()
            .any(|u| matches!(u.op, AggregateOp::Add(x) if x.is_sign_negative() && !x.is_zero()));
        let amended_by = match caller {
            Principal::Admin { .. } => "admin".to_owned(),
            Principal::Customer { key_id, .. } if !lowers => key_id.clone(),
            Principal::Customer { .. } => {
                return Err(reject(
                    Code::ReplacementLowersUsage,
                    "a replacement that lowers usage is a correction, which only an admin key may send",
                ));
            }
        };
        // The difference is taken from the stored value, so a total that held the old value
        // holds the difference without going below zero, whatever this node's counters say
        // (another node may have counted the usage). Only a replacing copy that is itself a
        // correction (a negative quantity) passes the corrections' rules as well.
        let negative = after
            .iter()
            .any(|u| matches!(u.op, AggregateOp::Add(x) if x.is_sign_negative() && !x.is_zero()));
        if negative {
            corrections_allowed(caller, state, &delta, pending)?;
        }
        Ok(Some(Plan {
            amendment: EventAmendment {
                workspace: first.workspace.clone(),
                event_id: first.id.clone(),
                seq: stored.next_seq(),
                customer: first.customer.clone(),
                event_type: first.event_type.clone(),
                old_properties: old_properties.clone(),
                new_properties: new.properties.clone(),
                amended_by,
                // On the customer's clock, like `received_at`.
                amended_at: new.received_at,
            },
            change: IngestItem {
                event: first.clone(),
                updates: delta,
            },
        }))
    }
}

/// The additive rows `after` holds minus those `before` held, one update per row that moves.
/// A raise is also a rolling-window entry at the event's time; a cut leaves windows as they
/// are (they keep what they admitted, as corrections do).
fn difference(
    before: &[AggregateUpdate],
    after: &[AggregateUpdate],
    rolling: impl Fn(&str) -> bool,
    at: jiff::Timestamp,
) -> Vec<AggregateUpdate> {
    type Row = (String, jiff::Timestamp, String, String);
    let mut rows: BTreeMap<Row, Decimal> = BTreeMap::new();
    for (updates, sign) in [(before, Decimal::NEGATIVE_ONE), (after, Decimal::ONE)] {
        for u in updates {
            if let AggregateOp::Add(x) = u.op {
                let key = (
                    u.meter.clone(),
                    u.period_start,
                    u.subject.clone(),
                    u.group_key.clone(),
                );
                let slot = rows.entry(key).or_default();
                *slot = slot.saturating_add(x.saturating_mul(sign));
            }
        }
    }
    let mut out = Vec::new();
    for ((meter, period_start, subject, group_key), x) in rows {
        if x.is_zero() {
            continue;
        }
        if x.is_sign_positive() && rolling(&meter) {
            out.push(AggregateUpdate {
                meter: meter.clone(),
                period_start,
                subject: subject.clone(),
                group_key: group_key.clone(),
                op: AggregateOp::WindowEntry { quantity: x, at },
            });
        }
        out.push(AggregateUpdate {
            meter,
            period_start,
            subject,
            group_key,
            op: AggregateOp::Add(x),
        });
    }
    out
}

/// The difference as the domain event shows it: one entry per meter row that moved.
fn difference_json(updates: &[AggregateUpdate]) -> serde_json::Value {
    updates
        .iter()
        .filter_map(|u| match u.op {
            AggregateOp::Add(x) => Some(json!({
                "meter": u.meter,
                "subject": u.subject,
                "group": u.group_key,
                "quantity": x.normalize().to_string(),
            })),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::Timestamp;

    fn add(meter: &str, group: &str, x: i64) -> AggregateUpdate {
        AggregateUpdate {
            meter: meter.into(),
            period_start: Timestamp::UNIX_EPOCH,
            subject: String::new(),
            group_key: group.into(),
            op: AggregateOp::Add(Decimal::from(x)),
        }
    }

    /// A move to another group takes the quantity out of the old one and into the new one;
    /// a raise on a rolling meter is also a window entry, a cut is not.
    #[test]
    fn difference_moves_groups_and_raises_windows_only() {
        let at = Timestamp::UNIX_EPOCH;
        let d = difference(
            &[add("tokens", "model=a", 10), add("calls", "", 5)],
            &[add("tokens", "model=b", 4), add("calls", "", 8)],
            |m| m == "calls" || m == "tokens",
            at,
        );
        let adds: Vec<(String, String, Decimal)> = d
            .iter()
            .filter_map(|u| match u.op {
                AggregateOp::Add(x) => Some((u.meter.clone(), u.group_key.clone(), x)),
                _ => None,
            })
            .collect();
        assert_eq!(
            adds,
            vec![
                ("calls".into(), String::new(), Decimal::from(3)),
                ("tokens".into(), "model=a".into(), Decimal::from(-10)),
                ("tokens".into(), "model=b".into(), Decimal::from(4)),
            ]
        );
        let windows: Vec<(String, Decimal)> = d
            .iter()
            .filter_map(|u| match u.op {
                AggregateOp::WindowEntry { quantity, .. } => Some((u.meter.clone(), quantity)),
                _ => None,
            })
            .collect();
        assert_eq!(
            windows,
            vec![
                ("calls".into(), Decimal::from(3)),
                ("tokens".into(), Decimal::from(4))
            ]
        );
        assert!(
            difference(&[add("calls", "", 2)], &[add("calls", "", 2)], |_| true, at).is_empty()
        );
    }
}
