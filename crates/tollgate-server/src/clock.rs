//! Where "now" comes from. Everything time-dependent reads a [`Clock`]; customers attached to a
//! test clock read that clock's frozen time instead (see `engine`).

use jiff::Timestamp;

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}
