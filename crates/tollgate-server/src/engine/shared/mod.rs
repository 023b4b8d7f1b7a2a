//! Checks on shared counters (Redis), for several nodes on one store.
//!
//! A check is prepared under the customer's lock from the cached state (plan, quotas, the keys
//! of its counters, the usage event a consuming check records), then decided by one Lua script
//! that counts rate limits, tests quotas and reserves the use atomically in Redis. A consuming
//! check then writes the event to the store, as the in-memory path does; a duplicate or a failed
//! write gives the reservation back. Uses written to the store by other paths (`/v1/events`, the
//! gateway) are added to the counters after the store's commit ([`Engine::apply_to_shared`]).
//!
//! Counters are created on first use from the store (aggregates for a period, window entries for
//! a rolling window) with "create unless it exists", so concurrent first uses on several nodes
//! agree. A committed use whose counter does not exist yet seeds it from the store (which holds
//! the use) instead of adding; if another node created it in between, the use is added. In that
//! race a use can be counted twice, never zero times: the error is on the safe side.
//!
//! Only count and sum meters are shared (a plain addition); quotas on other meters (max, latest,
//! unique, time-weighted) are decided from the node's cached state, which is exact at load.

mod prepare;
mod seed;
mod verdict;

use std::collections::HashMap;
use std::sync::Arc;
use tollgate_core::code::Code;
use tollgate_core::ids::WorkspaceId;

use jiff::Timestamp;
use rust_decimal::Decimal;
use tollgate_store::{IngestItem, IngestOutcome};

use super::Engine;
use super::check::{CheckOutcome, CheckRequest};
use crate::counters::{
    CheckReply, Counter, CounterError, FailureMode, Increment, QuotaProbe, RedisCounters, keys,
};
use crate::error::{AppResult, Error};

use prepare::{Preparation, Prepared, Source, Target, counter_input, prepare};
pub(super) use prepare::{SharedUse, uses_of};

/// How often a check re-runs after seeding counters that did not exist (each run seeds more).
const SEED_ROUNDS: usize = 3;

/// The answer to a check whose shared counters could not be reached, when configured to fail
/// closed.
fn unavailable() -> Error {
    Error::unavailable(
        Code::CounterUnavailable,
        "the shared limit counters are unreachable and this server is configured to fail closed",
    )
}

impl Engine {
    /// [`Engine::check`] with shared counters: see the module docs.
    pub(super) async fn check_shared(
        &self,
        counters: &Arc<RedisCounters>,
        req: &CheckRequest,
    ) -> AppResult<CheckOutcome> {
        let prefix = keys::customer_prefix(&req.workspace, &req.customer);
        let prepared = self
            .with_state(&req.workspace, &req.customer, |state, now| {
                prepare(state, now, req, &prefix)
            })
            .await??;
        let mut prepared = match prepared {
            Preparation::Shared(p) => p,
            Preparation::Answer(outcome) => return Ok(counted(outcome)),
        };
        let reply = if prepared.needs_redis() {
            match self.run_check(counters, req, &prepared).await? {
                Ok(reply) => reply,
                Err(_) => {
                    return match counters.mode() {
                        FailureMode::FailOpen => self.check_local(req).await,
                        FailureMode::FailClosed => Err(unavailable()),
                    };
                }
            }
        } else {
            prepared.decide_locally()
        };
        let (outcome, reserved) = prepared.outcome(&reply, req);
        let Target::Meter(m) = &mut prepared.target else {
            return Ok(counted(outcome));
        };
        let Some(item) = m.item.take().filter(|_| reserved) else {
            return Ok(counted(outcome));
        };
        let now = prepared.now;
        let written = self
            .store
            .ingest(
                &WorkspaceId::from(&req.workspace),
                std::slice::from_ref(&item),
            )
            .await;
        if matches!(written, Ok(ref o) if o.first() == Some(&IngestOutcome::Accepted)) {
            self.add_committed(
                counters,
                &req.workspace,
                &req.customer,
                now,
                std::mem::take(&mut m.later),
            )
            .await?;
            self.with_state(&req.workspace, &req.customer, |state, _| {
                state.apply(&item.updates, Decimal::ONE)
            })
            .await?;
        } else if counters
            .give_back(now.as_second(), &prepared.program.reserve)
            .await
            .is_err()
        {
            counters.needs_rebuild(prepared.program.reserve.iter().map(|i| i.counter.clone()));
        }
        let duplicate = written?.first() == Some(&IngestOutcome::Duplicate);
        let outcome = if duplicate {
            super::check::counted_once(outcome, req.quantity)
        } else {
            outcome
        };
        Ok(counted(outcome))
    }

    /// Runs the check script, seeding counters it finds missing. `Ok(Err(_))`: Redis failed.
    async fn run_check(
        &self,
        counters: &RedisCounters,
        req: &CheckRequest,
        prepared: &Prepared,
    ) -> AppResult<Result<CheckReply, CounterError>> {
        for _ in 0..SEED_ROUNDS {
            let missing = match counters.check(&prepared.program).await {
                Ok(CheckReply::NeedSeed(missing)) => missing,
                Ok(reply) => return Ok(Ok(reply)),
                Err(e) => return Ok(Err(e)),
            };
            let to_seed: Vec<(Counter, Source)> = missing
                .iter()
                .filter_map(
                    |&i| match (prepared.program.quotas.get(i), prepared.sources.get(i)) {
                        (Some(QuotaProbe::Counter { counter, .. }), Some(Some(source))) => {
                            Some((counter.clone(), source.clone()))
                        }
                        _ => None,
                    },
                )
                .collect();
            if let Err(e) = self
                .seed(
                    counters,
                    &req.workspace,
                    &req.customer,
                    prepared.now,
                    &to_seed,
                )
                .await?
            {
                return Ok(Err(e));
            }
        }
        Err(Error::internal(
            "shared counters vanished right after they were seeded",
        ))
    }

    /// Adds uses committed to the store to their shared counters; counters that do not exist are
    /// seeded from the store (which holds the uses). Failures leave the counters to be rebuilt.
    pub(super) async fn add_committed(
        &self,
        counters: &RedisCounters,
        workspace: &str,
        customer: &str,
        now: Timestamp,
        uses: Vec<SharedUse>,
    ) -> AppResult<()> {
        if uses.is_empty() {
            return Ok(());
        }
        let increments: Vec<Increment> = uses.iter().map(|u| u.increment.clone()).collect();
        let rebuild =
            |incs: &[Increment]| counters.needs_rebuild(incs.iter().map(|i| i.counter.clone()));
        let missing = match counters.apply(now.as_second(), &increments).await {
            Ok(m) => m,
            Err(_) => {
                rebuild(&increments);
                return Ok(());
            }
        };
        if missing.is_empty() {
            return Ok(());
        }
        // Each missing counter once (a batch may bring several uses of one counter).
        let mut targets: Vec<(Counter, Source)> = Vec::new();
        let mut target_of: HashMap<&Counter, usize> = HashMap::new();
        for &i in &missing {
            let counter = &uses[i].increment.counter;
            if !target_of.contains_key(counter) {
                target_of.insert(counter, targets.len());
                targets.push((counter.clone(), uses[i].source.clone()));
            }
        }
        match self
            .seed(counters, workspace, customer, now, &targets)
            .await?
        {
            Ok(written) => {
                // A counter seeded here holds these uses (the store has them). One another node
                // created in between may not: add them to it.
                let again: Vec<Increment> = missing
                    .iter()
                    .filter(|&&i| !written[target_of[&uses[i].increment.counter]])
                    .map(|&i| increments[i].clone())
                    .collect();
                if !again.is_empty() && counters.apply(now.as_second(), &again).await.is_err() {
                    rebuild(&again);
                }
            }
            Err(_) => counters.needs_rebuild(targets.into_iter().map(|(c, _)| c)),
        }
        Ok(())
    }

    /// For paths that write usage to the store themselves (the gateway): adds an accepted item
    /// to the shared counters after the store's commit. Does nothing without shared counters.
    pub async fn apply_to_shared(
        &self,
        workspace: &str,
        customer: &str,
        item: &IngestItem,
    ) -> AppResult<()> {
        let Some(counters) = &self.shared else {
            return Ok(());
        };
        let prefix = keys::customer_prefix(workspace, customer);
        let tag = format!("e{}", item.event.id);
        let (now, uses) = self
            .with_state(workspace, customer, |state, now| {
                let Some(compiled) = state.catalog.clone() else {
                    return Ok((now, Vec::new()));
                };
                let period = state.period_at(item.event.timestamp);
                uses_of(&compiled, &prefix, now, &period, &item.updates, &tag).map(|u| (now, u))
            })
            .await?
            .map_err(counter_input)?;
        self.add_committed(counters, workspace, customer, now, uses)
            .await
    }
}

/// A gateway request's cost held in the shared counters from admission until its upstream
/// answers: recorded, its event is written and only the uses the script did not reserve are
/// added; dropped unrecorded (upstream failed), the reserved units are given back.
pub struct SharedHold {
    counters: Arc<RedisCounters>,
    now: Timestamp,
    reserve: Vec<Increment>,
    later: Vec<SharedUse>,
    settled: bool,
}

impl SharedHold {
    /// Adds what the admission did not reserve, after the event was committed.
    pub(in crate::engine) async fn commit(
        mut self,
        engine: &Engine,
        workspace: &str,
        customer: &str,
    ) -> AppResult<()> {
        self.settled = true;
        let later = std::mem::take(&mut self.later);
        engine
            .add_committed(&self.counters, workspace, customer, self.now, later)
            .await
    }
}

impl Drop for SharedHold {
    fn drop(&mut self) {
        if self.settled || self.reserve.is_empty() {
            return;
        }
        let counters = self.counters.clone();
        let reserve = std::mem::take(&mut self.reserve);
        let now = self.now.as_second();
        let give_back = async move {
            if counters.give_back(now, &reserve).await.is_err() {
                counters.needs_rebuild(reserve.iter().map(|i| i.counter.clone()));
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(give_back);
            }
            Err(_) => tracing::warn!("a gateway reservation could not be given back: no runtime"),
        }
    }
}

impl Engine {
    /// Reserves a gateway request's cost in the shared counters at admission, so that requests
    /// in flight on every node and consuming checks see each other (no rate limit is counted:
    /// the gateway's check did). `Ok(Err(decision))` when a hard quota has no room across the
    /// nodes; `Ok(Ok(None))` when nothing needed reserving or Redis failed open.
    pub(in crate::engine) async fn reserve_shared(
        &self,
        counters: &Arc<RedisCounters>,
        req: CheckRequest,
    ) -> AppResult<Result<Option<SharedHold>, Box<tollgate_core::check::Decision>>> {
        let prefix = keys::customer_prefix(&req.workspace, &req.customer);
        let prepared = self
            .with_state(&req.workspace, &req.customer, |state, now| {
                prepare(state, now, &req, &prefix)
            })
            .await??;
        let mut prepared = match prepared {
            Preparation::Shared(p) => p,
            Preparation::Answer(outcome) if outcome.decision.allowed => return Ok(Ok(None)),
            Preparation::Answer(outcome) => return Ok(Err(Box::new(outcome.decision))),
        };
        prepared.program.rates.clear();
        prepared.rates.clear();
        let reply = if prepared.needs_redis() {
            match self.run_check(counters, &req, &prepared).await? {
                Ok(reply) => reply,
                Err(_) => {
                    return match counters.mode() {
                        FailureMode::FailOpen => Ok(Ok(None)),
                        FailureMode::FailClosed => Err(unavailable()),
                    };
                }
            }
        } else {
            prepared.decide_locally()
        };
        let (outcome, reserved) = prepared.outcome(&reply, &req);
        if !outcome.decision.allowed {
            return Ok(Err(Box::new(outcome.decision)));
        }
        let Target::Meter(m) = &mut prepared.target else {
            return Ok(Ok(None));
        };
        if !reserved {
            return Ok(Ok(None));
        }
        Ok(Ok(Some(SharedHold {
            counters: counters.clone(),
            now: prepared.now,
            reserve: std::mem::take(&mut prepared.program.reserve),
            later: std::mem::take(&mut m.later),
            settled: false,
        })))
    }
}

fn counted(outcome: CheckOutcome) -> CheckOutcome {
    super::check::count_check(outcome.decision.allowed);
    outcome
}
