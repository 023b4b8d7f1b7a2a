//! Customers and their API keys: updates, archiving, suspension, keys created with the secret
//! shown once, revoked at once on every node, and the self-serve signup that makes all three.

mod archive;
mod keys;
pub mod profile;
mod signup;
mod suspend;
mod update;

pub use archive::archive;
pub use keys::{NewKey, create_key, new_key, revoke_key};
pub use signup::{Signup, SignupOutcome, signup};
pub use suspend::set_suspended;
pub use update::{CustomerPatch, UpdateCustomer, check_patch, update};
