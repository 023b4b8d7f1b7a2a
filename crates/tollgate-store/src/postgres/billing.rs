//! [`crate::billing::BillingStore`] on PostgreSQL: every statement under row-level security in a
//! transaction scoped to its workspace; only the list of workspaces runs unscoped.

use super::PostgresStore;

crate::billing::impl_billing_store!(
    PostgresStore,
    write: |store, workspace| store.scoped(workspace),
    read: |store, workspace| store.scoped(workspace),
    unscoped: |store| async { Ok::<_, crate::StoreError>(store.pool.begin().await?) },
);
