//! Clocks. `Clock` is the local wall clock, injectable so tests can run a process whose clock is
//! an hour off. `ServerClock` estimates the *server's* clock from what responses tell us, so that
//! lock expiry is judged in server time, never by comparing two machines' clocks (lock property L5).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Local wall clock in ms since the Unix epoch.
pub trait Clock: Send + Sync {
    fn now_ms(&self) -> i64;
}

/// The machine's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }
}

/// The system clock shifted by a fixed offset: a machine whose clock is wrong.
#[derive(Debug, Clone, Copy)]
pub struct SkewedClock(pub i64);

impl Clock for SkewedClock {
    fn now_ms(&self) -> i64 {
        SystemClock.now_ms() + self.0
    }
}

/// Reads `MSR_CLOCK_SKEW_MS` (a test lever, documented as such): a skewed clock when set.
pub fn clock_from_env() -> Arc<dyn Clock> {
    match std::env::var("MSR_CLOCK_SKEW_MS")
        .ok()
        .and_then(|v| v.trim().parse::<i64>().ok())
    {
        Some(skew) if skew != 0 => Arc::new(SkewedClock(skew)),
        _ => Arc::new(SystemClock),
    }
}

const UNKNOWN: i64 = i64::MIN;

/// Estimate of the server clock: `local now + offset`, where the offset is learned from server
/// timestamps in responses (`Date` headers, `{".sv":"timestamp"}` echoes).
///
/// Every sample is a *lower bound* of the server's time when the response arrived (a `Date` header
/// is truncated to the second; a server timestamp was taken before the response was sent), so the
/// estimate keeps the largest offset seen. It therefore never runs ahead of the server by more than
/// this machine's clock drift since the sample: a lock judged expired by it has really expired.
pub struct ServerClock {
    clock: Arc<dyn Clock>,
    offset_ms: AtomicI64,
}

impl ServerClock {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        ServerClock {
            clock,
            offset_ms: AtomicI64::new(UNKNOWN),
        }
    }

    /// The local wall clock this estimate is built on.
    pub fn local_now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Record that the server's clock read at least `server_ms` when a response arrived now.
    pub fn observe(&self, server_ms: i64) {
        let offset = server_ms - self.clock.now_ms();
        self.offset_ms.fetch_max(offset, Ordering::Relaxed);
    }

    /// True once at least one server timestamp was observed.
    pub fn is_known(&self) -> bool {
        self.offset_ms.load(Ordering::Relaxed) != UNKNOWN
    }

    /// Server time estimate in ms, or `None` before any observation.
    pub fn now_ms(&self) -> Option<i64> {
        match self.offset_ms.load(Ordering::Relaxed) {
            UNKNOWN => None,
            offset => Some(self.clock.now_ms() + offset),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skewed_local_clock_cancels_out() {
        let server = SystemClock.now_ms();
        let ahead = ServerClock::new(Arc::new(SkewedClock(3_600_000)));
        ahead.observe(server);
        let behind = ServerClock::new(Arc::new(SkewedClock(-3_600_000)));
        behind.observe(server);
        for est in [ahead.now_ms().unwrap(), behind.now_ms().unwrap()] {
            assert!(
                (est - server).abs() < 1_000,
                "estimate {est} vs server {server}"
            );
        }
    }

    #[test]
    fn keeps_the_largest_lower_bound() {
        let c = ServerClock::new(Arc::new(SystemClock));
        assert_eq!(c.now_ms(), None);
        let now = SystemClock.now_ms();
        c.observe(now - 5_000);
        c.observe(now);
        c.observe(now - 10_000);
        assert!(c.now_ms().unwrap() >= now);
    }
}
