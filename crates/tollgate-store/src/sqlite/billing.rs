//! [`crate::billing::BillingStore`] on SQLite: writes on the single writer with `BEGIN
//! IMMEDIATE` (which serializes invoice numbering), reads on the read pool.

use super::SqliteStore;

crate::billing::impl_billing_store!(
    SqliteStore,
    write: |store, _workspace| store.begin_write(),
    read: |store, _workspace| store.read.begin(),
    unscoped: |store| store.read.begin(),
);
