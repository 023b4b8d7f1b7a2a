//! Forgetting idle customers' state (issue 11): a loaded customer costs about a kilobyte of
//! memory (docs/SCALING.md), so a node that has seen millions of customers would keep
//! gigabytes for customers who stopped calling long ago.
//!
//! What a slot holds is a cache of the store (the customer, its subscription, its period and
//! rolling-window usage: every accepted use is committed before it is answered) except the
//! request rate limits' fixed windows, which live in memory only. So a slot is forgotten only
//! when nothing could tell: unused for at least the idle time, held by no request (its `Arc`
//! is the map's alone, checked under the map's shard lock, so no request can take it meanwhile),
//! its loading gate free, not on a test clock, and every rate window of it empty at `now`. The next use reloads it
//! from the store, as after a restart.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{CustomerSlot, Engine};

impl Engine {
    /// Marks the slot used at `now` (the engine clock's time).
    pub(super) fn touch(&self, slot: &CustomerSlot, now: jiff::Timestamp) {
        slot.last_used
            .store(now.as_millisecond(), Ordering::Relaxed);
    }

    /// How many customers' state this node holds.
    pub fn loaded_customers(&self) -> usize {
        self.customers.iter().map(|ws| ws.len()).sum()
    }

    /// Forgets the state of every customer unused for `idle` or longer that can be forgotten
    /// without changing a decision (see the module's doc); how many were forgotten.
    pub fn evict_idle(&self, idle: Duration) -> usize {
        let now = self.clock.now();
        let now_ms = now.as_millisecond();
        let idle_ms = i64::try_from(idle.as_millis()).unwrap_or(i64::MAX);
        let mut evicted = 0;
        for workspace in self.customers.iter() {
            workspace.retain(|_, slot| {
                let forget = now_ms.saturating_sub(slot.last_used.load(Ordering::Relaxed))
                    >= idle_ms
                    && Arc::strong_count(slot) == 1
                    && slot.gate.try_write().is_ok()
                    && slot.state.try_lock().is_ok_and(|state| {
                        state.as_ref().is_none_or(|s| {
                            // A test clock's windows are not on the system clock's time.
                            s.record.test_clock.is_none()
                                && s.rate_windows.iter().all(|by_subject| {
                                    by_subject.values().all(|w| w.is_empty_at(now))
                                })
                        })
                    });
                if forget {
                    evicted += 1;
                }
                !forget
            });
        }
        evicted
    }

    /// Evicts idle customers' state every `every` until the task is dropped.
    pub async fn evict_idle_forever(self: Arc<Self>, idle: Duration, every: Duration) {
        loop {
            tokio::time::sleep(every).await;
            let evicted = self.evict_idle(idle);
            if evicted > 0 {
                tracing::debug!(
                    evicted,
                    loaded = self.loaded_customers(),
                    "forgot idle customers' state"
                );
            }
        }
    }
}
