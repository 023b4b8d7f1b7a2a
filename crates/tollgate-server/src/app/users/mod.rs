//! The people of the web pages (docs/DASHBOARD.md): operators who sign in to the dashboard with a
//! password and a role, their sessions, and the customer portal's links and sessions.
//!
//! `create` mints an operator (an admin key's call), `sign_in` checks a password (bounded
//! attempts, one answer for an unknown email and a wrong password) and opens a session,
//! `sessions` resolves and ends sessions, `portal` makes the single-use portal link an operator's
//! app hands to its customer and exchanges it for a portal session, `magic_link` sends such a link
//! by email to a customer who signs in with its email. `set_role` and `remove` are an admin's
//! management of the workspace's operators (never leaving it without an admin).

pub mod create;
pub mod magic_link;
pub mod portal;
pub mod remove;
pub mod sessions;
pub mod set_role;
pub mod sign_in;

use tollgate_core::code::Code;

use crate::error::Error;

/// What an operator may do. `read_only` sees everything and changes nothing; `billing` may also
/// act on invoices (pay, void, credit notes); `admin` may do everything, users included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    ReadOnly,
    Billing,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::ReadOnly => "read_only",
            Role::Billing => "billing",
            Role::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Result<Role, Error> {
        match text {
            "read_only" => Ok(Role::ReadOnly),
            "billing" => Ok(Role::Billing),
            "admin" => Ok(Role::Admin),
            other => Err(Error::invalid(
                Code::InvalidRole,
                format!("role {other:?} is not one of admin, billing, read_only"),
            )),
        }
    }

    /// Whether this role may move money documents (pay, void, credit notes).
    pub fn may_bill(self) -> bool {
        self >= Role::Billing
    }

    /// Fails unless this role may move money documents.
    pub fn require_billing(self) -> Result<(), Error> {
        if self.may_bill() {
            Ok(())
        } else {
            Err(Error::forbidden(
                "this action needs the billing or admin role; read_only operators only look",
            ))
        }
    }
}

/// Session kinds, as stored.
pub mod kinds {
    pub const OPERATOR: &str = "operator";
    pub const PORTAL_LINK: &str = "portal_link";
    pub const PORTAL: &str = "portal";
}
