//! Customers and their API keys: suspension, keys created with the secret shown once, revoked
//! at once on every node.

mod keys;
mod suspend;

pub use keys::{NewKey, create_key, revoke_key};
pub use suspend::set_suspended;
