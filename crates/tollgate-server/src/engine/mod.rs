//! The enforcement engine: in-memory state per customer, so that a check makes no database
//! round trip, kept exact by applying every accepted event to it after the store committed.
//!
//! Per customer there is a [`CustomerSlot`]: an async `gate` that keeps loading the state from
//! the store apart from ingest commits (so a load never sees an event that is then applied a
//! second time), and the state itself behind a plain mutex that checks hold for microseconds.
//! Ingest batches share the gate (so the store can commit concurrent batches of one customer
//! together), loads take it alone.

pub(crate) mod alerts;
mod amend;
mod catalogs;
pub mod check;
mod eviction;
pub mod gateway_support;
mod ingest;
mod progressive;
mod propagation;
mod shared;
mod state;
mod usage;

use std::sync::{Arc, Mutex};
use tollgate_core::code::Code;
use tollgate_core::ids::{CustomerId, WorkspaceId};

use dashmap::DashMap;
use jiff::Timestamp;
use tollgate_core::catalog::Catalog;
use tollgate_store::Store;

use crate::auth::{Principal, hash_secret_into};
use crate::clock::Clock;
use crate::counters::RedisCounters;
use crate::counters::bus::Invalidation;
use crate::error::{AppResult, Error};

pub use alerts::USAGE_ALERT_EVENT;
pub use amend::EVENT_AMENDED_EVENT;

/// The domain event of a catalog version applied (the ledger records it as an operator action).
pub const CATALOG_UPDATED_EVENT: &str = "catalog.updated";
pub use catalogs::CompiledCatalog;
pub use check::{CheckOutcome, CheckRequest, CheckTarget};
pub use ingest::{EventIn, IngestReport, IngestResult};
pub use progressive::PROGRESSIVE_CHECK_JOB;
pub use state::CustomerState;
pub use usage::{MeterUsage, UsageReport};

/// A cached answer of the key lookup.
#[derive(Debug, Clone)]
enum CachedKey {
    Admin {
        workspace: String,
    },
    Customer {
        workspace: String,
        customer: String,
        key_id: String,
    },
    Revoked,
}

/// One workspace's customers' slots.
type CustomerSlots = DashMap<String, Arc<CustomerSlot>, catalogs::FastHasher>;

/// The per-customer home of enforcement state.
#[derive(Default)]
pub struct CustomerSlot {
    /// Shared by ingest batches (whose updates commute), exclusive for loads, corrections and
    /// replacements.
    gate: tokio::sync::RwLock<()>,
    state: Mutex<Option<CustomerState>>,
    /// When the state was last used, in milliseconds since the epoch on the engine's clock
    /// (the time the check read anyway): what [`Engine::evict_idle`] reads.
    last_used: std::sync::atomic::AtomicI64,
}

impl CustomerSlot {
    /// The state under its lock. If a request panicked while holding it, the state it left may
    /// be half updated: it is dropped (reloaded from the store on next use) instead of poisoning
    /// the customer until a restart.
    pub(crate) fn lock_state(&self) -> std::sync::MutexGuard<'_, Option<CustomerState>> {
        match self.state.lock() {
            Ok(guard) => guard,
            Err(poisoned) => {
                let mut guard = poisoned.into_inner();
                *guard = None;
                self.state.clear_poison();
                tracing::warn!("a request panicked holding a customer's state; it is reloaded");
                guard
            }
        }
    }
}

/// The engine: the store, the clock, and everything cached in front of them.
pub struct Engine {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    /// By the SHA-256 of the secret (so foldhash, `catalogs::FastHasher`, hashes a digest the
    /// caller cannot choose).
    keys: DashMap<String, CachedKey, catalogs::FastHasher>,
    /// `(workspace, version)` to compiled catalog; versions never change once stored.
    catalogs: DashMap<(String, i64), Arc<CompiledCatalog>>,
    latest_catalog: DashMap<String, i64>,
    /// Workspace, then customer: two maps so a lookup borrows `&str` and allocates nothing;
    /// foldhash, as the check path's other tables (why it is safe: `catalogs::FastHasher`).
    customers: DashMap<String, Arc<CustomerSlots>, catalogs::FastHasher>,
    test_clocks: DashMap<(String, String), Timestamp>,
    /// Counters shared by every node (Redis); `None`: this node's memory decides alone.
    shared: Option<Arc<RedisCounters>>,
    /// This process among the nodes: it ignores its own invalidation messages.
    node_id: String,
    /// Consuming checks' decisions by `(workspace, customer, event id)`, replayed to retries.
    replays: DashMap<(String, String, String), Arc<tokio::sync::Mutex<check::Remembered>>>,
    /// The operator's master key, which seals license signing keys; `None`: licenses refused.
    master_key: Option<Arc<crate::sealing::MasterKey>>,
    /// How payment providers are called (`ServerConfig::payments`).
    payments: Arc<crate::providers::PaymentsConfig>,
}

impl Engine {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        Engine {
            store,
            clock,
            keys: DashMap::default(),
            catalogs: DashMap::new(),
            latest_catalog: DashMap::new(),
            customers: DashMap::default(),
            test_clocks: DashMap::new(),
            shared: None,
            node_id: format!("node_{:016x}", rand::random::<u64>()),
            replays: DashMap::new(),
            master_key: None,
            payments: Arc::default(),
        }
    }

    /// Calls payment providers as `config` says (Stripe's base URL, retries).
    pub fn with_payments(mut self, config: crate::providers::PaymentsConfig) -> Self {
        self.payments = Arc::new(config);
        self
    }

    pub fn payments(&self) -> &crate::providers::PaymentsConfig {
        &self.payments
    }

    /// Decides limits on counters shared with other nodes, and propagates invalidations to them
    /// (start the listener with [`Engine::start_propagation`]).
    pub fn with_shared_counters(mut self, counters: RedisCounters) -> Self {
        self.shared = Some(Arc::new(counters));
        self
    }

    /// The shared counters, if configured.
    pub fn shared_counters(&self) -> Option<&Arc<RedisCounters>> {
        self.shared.as_ref()
    }

    /// Turns the license features on with the operator's master key.
    pub fn with_master_key(mut self, key: crate::sealing::MasterKey) -> Self {
        self.master_key = Some(Arc::new(key));
        self
    }

    /// The master key, when the license features are on.
    pub fn master_key(&self) -> Option<&crate::sealing::MasterKey> {
        self.master_key.as_deref()
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Wall-clock now (or the server's injected clock).
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Now as the customer sees it: its test clock's time if it has one.
    pub async fn now_for(&self, workspace: &str, test_clock: Option<&str>) -> AppResult<Timestamp> {
        let Some(clock) = test_clock else {
            return Ok(self.clock.now());
        };
        let key = (workspace.to_owned(), clock.to_owned());
        if let Some(t) = self.test_clocks.get(&key) {
            return Ok(*t);
        }
        let record = self
            .store
            .get_test_clock(&WorkspaceId::from(workspace), clock)
            .await?
            .ok_or_else(|| Error::not_found("test clock", clock))?;
        self.test_clocks.insert(key, record.frozen_time);
        Ok(record.frozen_time)
    }

    /// Moves a test clock (already stored) for every customer on it.
    pub fn set_test_clock(&self, workspace: &str, clock: &str, time: Timestamp) {
        self.test_clocks
            .insert((workspace.to_owned(), clock.to_owned()), time);
    }

    // --- keys -------------------------------------------------------------------------------

    /// Finds who a secret belongs to. Suspended customers' keys are refused here, at once.
    pub async fn authenticate(&self, secret: &str) -> AppResult<Principal> {
        let mut buf = [0; 64];
        let hash = hash_secret_into(secret, &mut buf);
        let cached = match self.keys.get(hash) {
            Some(hit) => hit.clone(),
            None => match self.lookup_key(hash).await? {
                // Only keys the store holds are cached: caching every unknown secret would let
                // any caller grow this map without bound by sending random keys.
                Some(found) => {
                    self.keys.insert(hash.to_owned(), found.clone());
                    found
                }
                None => {
                    return Err(Error::unauthenticated("unknown or revoked API key"));
                }
            },
        };
        match cached {
            CachedKey::Admin { workspace } => Ok(Principal::Admin { workspace }),
            CachedKey::Revoked => Err(Error::unauthenticated("unknown or revoked API key")),
            CachedKey::Customer {
                workspace,
                customer,
                key_id,
            } => {
                // Through `with_state`, so a state marked stale (e.g. after invalidations may
                // have been missed) is reloaded before its suspension is trusted.
                // A loaded, current state answers without waiting (the common case).
                let suspended =
                    match self.try_with_state(&workspace, &customer, |s, _| s.record.suspended) {
                        Ok(suspended) => suspended,
                        Err(_) => {
                            self.with_state(&workspace, &customer, |s, _| s.record.suspended)
                                .await?
                        }
                    };
                if suspended {
                    return Err(Error::forbidden(
                        "the customer is suspended; its keys are refused",
                    )
                    .with_code(Code::CustomerSuspended));
                }
                Ok(Principal::Customer {
                    workspace,
                    customer,
                    key_id,
                })
            }
        }
    }

    /// The key the store holds under `hash`; `None` if it holds none.
    async fn lookup_key(&self, hash: &str) -> AppResult<Option<CachedKey>> {
        if let Some(admin) = self.store.find_admin_key(hash).await? {
            return Ok(Some(CachedKey::Admin {
                workspace: admin.workspace,
            }));
        }
        Ok(self.store.find_api_key(hash).await?.map(|key| {
            if key.revoked_at.is_none() {
                CachedKey::Customer {
                    workspace: key.workspace,
                    customer: key.customer,
                    key_id: key.id,
                }
            } else {
                CachedKey::Revoked
            }
        }))
    }

    /// How many keys this node has cached (known keys only, revoked ones included).
    pub fn cached_keys(&self) -> usize {
        self.keys.len()
    }

    /// Forgets a key at once (after revocation), so the next use looks it up again; other
    /// nodes forget it too.
    pub fn forget_key(&self, secret_hash: &str) {
        self.keys.insert(secret_hash.to_owned(), CachedKey::Revoked);
        self.publish_soon(Invalidation::Key {
            hash: secret_hash.to_owned(),
        });
    }

    // --- catalogs ---------------------------------------------------------------------------

    /// Stores a new catalog version and makes it the workspace's latest.
    pub async fn apply_catalog(
        &self,
        workspace: &str,
        catalog: Catalog,
    ) -> AppResult<Arc<CompiledCatalog>> {
        let json = serde_json::to_value(&catalog).map_err(Error::internal)?;
        // The store adds the new `version` to the event's data.
        let announced = self.domain_event(
            workspace,
            None,
            CATALOG_UPDATED_EVENT,
            self.now(),
            serde_json::json!({
                "meters": catalog.meters.keys().collect::<Vec<_>>(),
                "plans": catalog.plans.keys().collect::<Vec<_>>(),
            }),
        );
        let version = self
            .store
            .add_catalog_version_with_events(
                &WorkspaceId::from(workspace),
                &json,
                self.now(),
                &[announced],
            )
            .await?;
        let compiled = CompiledCatalog::new(version, catalog);
        self.catalogs
            .insert((workspace.to_owned(), version), compiled.clone());
        self.latest_catalog.insert(workspace.to_owned(), version);
        self.publish(Invalidation::Catalog {
            workspace: workspace.to_owned(),
            version,
        })
        .await;
        Ok(compiled)
    }

    /// The latest catalog of a workspace, if one was applied.
    pub async fn latest_catalog(&self, workspace: &str) -> AppResult<Option<Arc<CompiledCatalog>>> {
        if let Some(version) = self.latest_catalog.get(workspace).map(|v| *v) {
            return self.catalog(workspace, version).await.map(Some);
        }
        let Some(record) = self
            .store
            .latest_catalog(&WorkspaceId::from(workspace))
            .await?
        else {
            return Ok(None);
        };
        let compiled = self.compile(workspace, record.version, record.catalog)?;
        self.latest_catalog
            .insert(workspace.to_owned(), record.version);
        Ok(Some(compiled))
    }

    /// One catalog version of a workspace.
    pub async fn catalog(&self, workspace: &str, version: i64) -> AppResult<Arc<CompiledCatalog>> {
        if let Some(hit) = self.catalogs.get(&(workspace.to_owned(), version)) {
            return Ok(hit.clone());
        }
        let record = self
            .store
            .catalog_version(&WorkspaceId::from(workspace), version)
            .await?
            .ok_or_else(|| Error::not_found("catalog version", &version.to_string()))?;
        self.compile(workspace, version, record.catalog)
    }

    fn compile(
        &self,
        workspace: &str,
        version: i64,
        json: serde_json::Value,
    ) -> AppResult<Arc<CompiledCatalog>> {
        let catalog: Catalog = serde_json::from_value(json)
            .map_err(|e| Error::internal(format!("stored catalog {version} does not load: {e}")))?;
        let compiled = CompiledCatalog::new(version, catalog);
        self.catalogs
            .insert((workspace.to_owned(), version), compiled.clone());
        Ok(compiled)
    }

    // --- customer state ---------------------------------------------------------------------

    fn workspace_customers(&self, workspace: &str) -> Arc<CustomerSlots> {
        if let Some(map) = self.customers.get(workspace) {
            return map.clone();
        }
        self.customers
            .entry(workspace.to_owned())
            .or_default()
            .clone()
    }

    /// The customer's slot with its state loaded. `NotFound` if there is no such customer.
    pub async fn slot(&self, workspace: &str, customer: &str) -> AppResult<Arc<CustomerSlot>> {
        let customers = self.workspace_customers(workspace);
        if let Some(slot) = customers.get(customer)
            && slot.lock_state().is_some()
        {
            self.touch(&slot, self.clock.now());
            return Ok(slot.clone());
        }
        let slot = customers.entry(customer.to_owned()).or_default().clone();
        let loaded = {
            let _gate = slot.gate.write().await;
            if slot.lock_state().is_some() {
                Ok(())
            } else {
                self.load_state(workspace, customer)
                    .await
                    .map(|state| *slot.lock_state() = Some(state))
            }
        };
        match loaded {
            Ok(()) => {
                self.touch(&slot, self.clock.now());
                Ok(slot)
            }
            Err(err) => {
                customers.remove(customer);
                Err(err)
            }
        }
    }

    /// Reloads a customer's record, subscription and counters from the store, e.g. after a plan
    /// change or suspension; every later check sees the change at once, on every node.
    pub async fn refresh_customer(&self, workspace: &str, customer: &str) -> AppResult<()> {
        let reloaded = self.reload_customer(workspace, customer).await;
        self.publish(Invalidation::Customer {
            workspace: workspace.to_owned(),
            customer: customer.to_owned(),
        })
        .await;
        reloaded
    }

    /// Reloads a customer's cached state on this node only (if it is cached).
    async fn reload_customer(&self, workspace: &str, customer: &str) -> AppResult<()> {
        let Some(slot) = self
            .workspace_customers(workspace)
            .get(customer)
            .map(|s| s.clone())
        else {
            return Ok(());
        };
        let _gate = slot.gate.write().await;
        let state = self.load_state(workspace, customer).await?;
        *slot.lock_state() = Some(state);
        Ok(())
    }

    /// Drops the cached state of every customer on a test clock that moved, so windows and
    /// periods are recomputed for the new time; other nodes move the clock too.
    pub async fn refresh_clock_customers(&self, workspace: &str, clock: &str) -> AppResult<()> {
        let reloaded = self.reload_clock_customers(workspace, clock).await;
        if let Some(at) = self
            .test_clocks
            .get(&(workspace.to_owned(), clock.to_owned()))
            .map(|t| t.as_second())
        {
            self.publish(Invalidation::Clock {
                workspace: workspace.to_owned(),
                clock: clock.to_owned(),
                at,
            })
            .await;
        }
        reloaded
    }

    async fn reload_clock_customers(&self, workspace: &str, clock: &str) -> AppResult<()> {
        let on_clock: Vec<String> = self
            .workspace_customers(workspace)
            .iter()
            .filter(|e| {
                e.value()
                    .lock_state()
                    .as_ref()
                    .is_some_and(|s| s.record.test_clock.as_deref() == Some(clock))
            })
            .map(|e| e.key().clone())
            .collect();
        for customer in on_clock {
            self.reload_customer(workspace, &customer).await?;
        }
        Ok(())
    }

    async fn load_state(&self, workspace: &str, customer: &str) -> AppResult<CustomerState> {
        let record = self
            .store
            .get_customer(&WorkspaceId::from(workspace), customer)
            .await?
            .ok_or_else(|| Error::not_found("customer", customer))?;
        let now = self
            .now_for(workspace, record.test_clock.as_deref())
            .await?;
        let subscription = self
            .store
            .list_subscriptions(&WorkspaceId::from(workspace), &CustomerId::from(customer))
            .await?
            .into_iter()
            .find(|s| tollgate_core::lifecycle::is_live(s.status, s.ends_at, now));
        let catalog = match &subscription {
            Some(sub) => Some(self.catalog(workspace, sub.catalog_version).await?),
            None => self.latest_catalog(workspace).await?,
        };
        state::load(self.store.as_ref(), record, subscription, catalog, now).await
    }

    /// Runs `f` on the customer's state if it is loaded and current, without waiting (the hot
    /// path of a check); gives `f` back otherwise, for [`Engine::with_state`]. Takes no `Arc`
    /// and builds no key: two map lookups and the state's lock.
    pub(crate) fn try_with_state<T, F>(&self, workspace: &str, customer: &str, f: F) -> Result<T, F>
    where
        F: FnOnce(&mut CustomerState, Timestamp) -> T,
    {
        let Some(customers) = self.customers.get(workspace) else {
            return Err(f);
        };
        let Some(slot) = customers.get(customer) else {
            return Err(f);
        };
        let mut guard = slot.lock_state();
        let Some(state) = guard.as_mut() else {
            return Err(f);
        };
        let now = match &state.record.test_clock {
            None => self.clock.now(),
            // A customer on a test clock takes the general path (its clock's key is built).
            Some(_) => return Err(f),
        };
        // The clock was read for the check anyway: marking the slot used costs one store.
        self.touch(&slot, now);
        if state.needs_reload(now) {
            return Err(f);
        }
        Ok(f(state, now))
    }

    /// Runs `f` on the loaded state of a customer, reloading first if its period has passed.
    pub async fn with_state<T>(
        &self,
        workspace: &str,
        customer: &str,
        f: impl FnOnce(&mut CustomerState, Timestamp) -> T,
    ) -> AppResult<T> {
        let slot = self.slot(workspace, customer).await?;
        // Fast path: loaded, current, on the wall clock (or a cached test clock): one lock.
        {
            let mut guard = slot.lock_state();
            if let Some(state) = guard.as_mut() {
                let now = match &state.record.test_clock {
                    None => Some(self.clock.now()),
                    Some(c) => self
                        .test_clocks
                        .get(&(workspace.to_owned(), c.clone()))
                        .map(|t| *t),
                };
                if let Some(now) = now.filter(|now| !state.needs_reload(*now)) {
                    return Ok(f(state, now));
                }
            }
        }
        let test_clock = slot
            .lock_state()
            .as_ref()
            .and_then(|s| s.record.test_clock.clone());
        let now = self.now_for(workspace, test_clock.as_deref()).await?;
        let stale = slot
            .lock_state()
            .as_ref()
            .is_none_or(|s| s.needs_reload(now));
        if stale {
            self.reload_customer(workspace, customer).await?;
        }
        let mut guard = slot.lock_state();
        let state = guard
            .as_mut()
            .ok_or_else(|| Error::not_found("customer", customer))?;
        Ok(f(state, now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A panic while a request holds a customer's state must not poison that customer: the
    /// next use finds no state (so it is reloaded from the store) instead of panicking forever.
    #[test]
    fn a_panic_holding_a_customer_state_does_not_poison_it() {
        let slot = Arc::new(CustomerSlot::default());
        let poisoner = slot.clone();
        let crashed = std::thread::spawn(move || {
            let _guard = poisoner.lock_state();
            panic!("a bug in one request");
        })
        .join();
        assert!(crashed.is_err(), "the thread panicked");
        assert!(slot.state.is_poisoned());
        assert!(
            slot.lock_state().is_none(),
            "the half-updated state was dropped"
        );
        assert!(!slot.state.is_poisoned(), "and the lock works again");
    }
}
