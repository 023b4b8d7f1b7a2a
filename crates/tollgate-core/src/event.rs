//! A usage event as the core sees it: already parsed, its customer resolved by the caller.

use jiff::Timestamp;
use serde_json::{Map, Value};

/// One thing that happened, to be metered.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub event_type: String,
    pub timestamp: Timestamp,
    /// Who inside the customer did it (a user), if anyone.
    pub subject: Option<String>,
    pub properties: Map<String, Value>,
}
