//! State changes made on one node, applied on every node: the engine publishes an
//! [`Invalidation`] after each change it caches (customer reload, key revocation, test clock
//! move, new catalog version) and a background task applies other nodes' messages here.
//!
//! Pub/sub is fire-and-forget: a node that was disconnected may have missed messages, so after
//! every reconnection it drops all its caches (keys, customer states, clocks, latest catalogs)
//! and reloads them from the store on next use. Without shared counters nothing is published.

use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_util::StreamExt;

use super::Engine;
use crate::counters::bus::{self, Invalidation};

/// Pause between subscription attempts while Redis is unreachable.
const RESUBSCRIBE_AFTER: Duration = Duration::from_millis(250);
/// How often an idle listener checks whether its engine still exists.
const LIVENESS_EVERY: Duration = Duration::from_secs(1);

impl Engine {
    /// Tells the other nodes about a change (no-op without shared counters).
    pub(super) async fn publish(&self, what: Invalidation) {
        if let Some(counters) = &self.shared {
            bus::publish(counters, &self.node_id, what).await;
        }
    }

    /// [`Engine::publish`] from synchronous code: sent by a task, moments later.
    pub(super) fn publish_soon(&self, what: Invalidation) {
        let Some(counters) = self.shared.clone() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let node = self.node_id.clone();
        runtime.spawn(async move { bus::publish(&counters, &node, what).await });
    }

    /// Starts listening to other nodes' invalidations (no-op without shared counters). The task
    /// ends when the engine is dropped.
    pub fn start_propagation(self: &Arc<Self>) {
        let Some(counters) = self.shared.clone() else {
            return;
        };
        let engine = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut first = true;
            // The node to try first: moves on after a subscription ends or fails (a cluster's
            // nodes all hear every message).
            let mut node = 0;
            while engine.strong_count() > 0 {
                match bus::subscribe(counters.subscriber_clients(), node).await {
                    Ok(stream) => {
                        if !first && let Some(e) = engine.upgrade() {
                            e.forget_everything();
                        }
                        tracing::info!("listening for invalidations from other nodes");
                        if !listen(&engine, stream).await {
                            return;
                        }
                        tracing::warn!("the invalidation subscription ended; resubscribing");
                    }
                    Err(error) => counters.report("subscribe", &error),
                }
                node += 1;
                first = false;
                tokio::time::sleep(RESUBSCRIBE_AFTER).await;
            }
        });
    }

    /// Applies another node's change to this node's caches.
    pub async fn apply_invalidation(&self, what: Invalidation) {
        metrics::counter!("tollgate_invalidations_received_total").increment(1);
        let result = match &what {
            Invalidation::Customer {
                workspace,
                customer,
            } => self.reload_customer(workspace, customer).await,
            Invalidation::Key { hash } => {
                self.keys.remove(hash);
                Ok(())
            }
            Invalidation::Clock {
                workspace,
                clock,
                at,
            } => match jiff::Timestamp::from_second(*at) {
                Ok(t) => {
                    self.set_test_clock(workspace, clock, t);
                    self.reload_clock_customers(workspace, clock).await
                }
                Err(_) => Ok(()),
            },
            Invalidation::Catalog { workspace, version } => {
                self.latest_catalog
                    .entry(workspace.clone())
                    .and_modify(|v| *v = (*v).max(*version))
                    .or_insert(*version);
                Ok(())
            }
        };
        if let Err(error) = result {
            // The reload failed (e.g. the store is briefly unreachable): drop the cached state
            // instead, so the next use loads it afresh.
            tracing::warn!(?what, error = %error.detail, "could not apply an invalidation; dropping the cached state");
            if let Invalidation::Customer {
                workspace,
                customer,
            } = &what
            {
                self.workspace_customers(workspace).remove(customer);
            }
        }
    }

    /// Drops every cache that another node may have changed: after a gap in the subscription.
    fn forget_everything(&self) {
        tracing::warn!(
            "invalidations may have been missed; dropping cached keys and customer states"
        );
        self.keys.clear();
        self.test_clocks.clear();
        self.latest_catalog.clear();
        for workspace in self.customers.iter() {
            for slot in workspace.value().iter() {
                if let Some(state) = slot.value().lock_state().as_mut() {
                    state.stale = true;
                }
            }
        }
    }
}

/// Applies messages until the stream ends (`true`) or the engine is gone (`false`).
async fn listen(
    engine: &Weak<Engine>,
    stream: impl futures_util::Stream<Item = bus::Envelope>,
) -> bool {
    let mut stream = std::pin::pin!(stream);
    loop {
        let next = tokio::time::timeout(LIVENESS_EVERY, stream.next()).await;
        let Some(engine) = engine.upgrade() else {
            return false;
        };
        match next {
            Err(_) => continue,
            Ok(None) => return true,
            Ok(Some(envelope)) if envelope.node == engine.node_id => continue,
            Ok(Some(envelope)) => engine.apply_invalidation(envelope.what).await,
        }
    }
}
