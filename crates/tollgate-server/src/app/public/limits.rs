//! How often the public forms (the hosted signup, the portal's sign-in by email) may be posted:
//! per client address and per workspace, in fixed windows, on this node's memory (like the
//! dashboard's sign-in throttle: a restart or another node starts from zero; bounded in size).
//! Anyone may post them, so they are the one place where a stranger makes Tollgate write rows
//! and send email.

use std::time::{Duration, Instant};

/// The bounds of the public forms (`ServerConfig::public_limits`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicLimits {
    /// Posts one client address may make in a window, per form.
    pub per_client: u32,
    /// Posts all clients together may make to one workspace's form in a window.
    pub per_workspace: u32,
    pub window: Duration,
}

impl Default for PublicLimits {
    fn default() -> Self {
        PublicLimits {
            per_client: 10,
            per_workspace: 200,
            window: Duration::from_secs(10 * 60),
        }
    }
}

/// The limiter forgets finished windows beyond this many entries (memory stays bounded).
const MAX_TRACKED: usize = 100_000;

/// Fixed-window counters per key.
#[derive(Default)]
pub struct Limiter {
    windows: dashmap::DashMap<String, (u32, Instant)>,
}

impl Limiter {
    /// Counts one post of `form` to `workspace` from `client`; `false` (and nothing counted)
    /// when either bound is reached.
    pub fn admit(&self, limits: &PublicLimits, form: &str, workspace: &str, client: &str) -> bool {
        let by_client = format!("{form}\u{1f}{workspace}\u{1f}{client}");
        let by_workspace = format!("{form}\u{1f}{workspace}");
        if self.windows.len() >= MAX_TRACKED {
            self.windows.retain(|_, e| e.1.elapsed() < limits.window);
        }
        if self.full(&by_client, limits.per_client, limits.window)
            || self.full(&by_workspace, limits.per_workspace, limits.window)
        {
            return false;
        }
        self.count(by_client, limits.window);
        self.count(by_workspace, limits.window);
        true
    }

    fn full(&self, key: &str, bound: u32, window: Duration) -> bool {
        self.windows
            .get(key)
            .is_some_and(|e| e.0 >= bound && e.1.elapsed() < window)
    }

    fn count(&self, key: String, window: Duration) {
        let mut entry = self.windows.entry(key).or_insert((0, Instant::now()));
        if entry.1.elapsed() >= window {
            *entry = (0, Instant::now());
        }
        entry.0 = entry.0.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_per_client_and_per_workspace() {
        let limits = PublicLimits {
            per_client: 2,
            per_workspace: 3,
            window: Duration::from_secs(60),
        };
        let l = Limiter::default();
        assert!(l.admit(&limits, "signup", "ws", "a"));
        assert!(l.admit(&limits, "signup", "ws", "a"));
        assert!(!l.admit(&limits, "signup", "ws", "a"));
        // Another form and another workspace count apart.
        assert!(l.admit(&limits, "sign_in", "ws", "a"));
        assert!(l.admit(&limits, "signup", "ws2", "a"));
        assert!(l.admit(&limits, "signup", "ws", "b"));
        // The workspace's bound is reached (a, a, b): a new client is refused too.
        assert!(!l.admit(&limits, "signup", "ws", "c"));
    }
}
