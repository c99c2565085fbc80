//! Retry policy for transient failures: capped exponential backoff with equal jitter, bounded
//! by a number of retries and by a time window.
//!
//! The default rides out an outage of about 5 s for every request (the pauses of its 6 retries
//! add up to 5.1–10.2 s) and never spends more than `window` (30 s) retrying one request: with
//! the 10 s response deadline (`ClientOptions::request_timeout`), a black-holed endpoint is
//! reported within 40 s (`worst_case` below).

use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts after the first one.
    pub max_retries: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// No retry starts once this long has passed since the first attempt (`None`: no bound).
    pub window: Option<Duration>,
}

/// The default retry window (`network.retryWindow`).
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(30);

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 6,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(4),
            window: Some(DEFAULT_WINDOW),
        }
    }
}

impl RetryPolicy {
    pub fn none() -> Self {
        RetryPolicy {
            max_retries: 0,
            ..Default::default()
        }
    }

    /// The same backoff (`delay`) without a bound of its own, for a loop bounded by something
    /// else: a lease, a deadline, a wait limit, or a task that lives as long as its owner.
    pub const fn unbounded(base_delay: Duration, max_delay: Duration) -> Self {
        RetryPolicy {
            max_retries: u32::MAX,
            base_delay,
            max_delay,
            window: None,
        }
    }
    /// Delay before retry number `attempt` (1-based), jittered: uniform in `[cap/2, cap]`.
    pub fn delay(&self, attempt: u32) -> Duration {
        let cap = self.cap(attempt);
        let ms = cap.as_millis().min(u64::MAX as u128) as u64;
        if ms == 0 {
            return Duration::ZERO;
        }
        Duration::from_millis(rand::random_range(ms / 2..=ms))
    }

    /// The un-jittered upper bound of the delay before retry `attempt` (1-based):
    /// `min(max_delay, base_delay * 2^(attempt-1))`.
    pub fn cap(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1).min(31);
        let factor = 1u32 << exp;
        self.base_delay
            .checked_mul(factor)
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
    }

    /// Whether retry number `attempt` (1-based) may start, `elapsed` after the first attempt,
    /// after a pause of `delay`.
    pub fn allows(&self, attempt: u32, elapsed: Duration, delay: Duration) -> bool {
        attempt <= self.max_retries && self.window.is_none_or(|w| elapsed + delay < w)
    }

    /// The longest one request can take before its failure is reported, when each attempt is
    /// bounded by `attempt_limit`.
    pub fn worst_case(&self, attempt_limit: Duration) -> Duration {
        let pauses: Duration = (1..=self.max_retries).map(|a| self.cap(a)).sum();
        let attempts = attempt_limit * (self.max_retries + 1);
        let unbounded = attempts + pauses;
        match self.window {
            // The last retry starts before the window closes and takes at most one attempt.
            Some(w) => unbounded.min(w + attempt_limit),
            None => unbounded,
        }
    }

    /// The least time the pauses of all retries add up to: the outage a request rides out.
    pub fn rides_out(&self) -> Duration {
        (1..=self.max_retries).map(|a| self.cap(a) / 2).sum()
    }
}

/// One retry about to happen, for whoever reports it (the CLI prints a line on stderr).
#[derive(Debug, Clone)]
pub struct RetryNotice {
    /// `host:port` of the database.
    pub host: String,
    /// What failed (never contains a token).
    pub why: String,
    /// The retry about to start (1-based).
    pub retry: u32,
    /// The pause before it.
    pub pause: Duration,
    /// Since the first attempt.
    pub elapsed: Duration,
}

pub type RetryObserver = Arc<dyn Fn(&RetryNotice) + Send + Sync>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_grow_exponentially_and_stop_at_max() {
        let p = RetryPolicy {
            max_retries: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            window: None,
        };
        assert_eq!(p.cap(1), Duration::from_millis(100));
        assert_eq!(p.cap(2), Duration::from_millis(200));
        assert_eq!(p.cap(3), Duration::from_millis(400));
        assert_eq!(p.cap(4), Duration::from_millis(800));
        assert_eq!(p.cap(5), Duration::from_secs(1));
        assert_eq!(p.cap(40), Duration::from_secs(1));
        assert_eq!(p.cap(u32::MAX), Duration::from_secs(1));
        assert_eq!(p.cap(0), Duration::from_millis(100));
    }

    #[test]
    fn delays_are_jittered_in_the_upper_half_of_the_cap() {
        let p = RetryPolicy {
            max_retries: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
            window: None,
        };
        for attempt in 1..12 {
            let samples: Vec<Duration> = (0..200).map(|_| p.delay(attempt)).collect();
            assert!(
                samples
                    .iter()
                    .all(|d| *d <= p.cap(attempt) && *d >= p.cap(attempt) / 2),
                "attempt {attempt}: {samples:?}"
            );
            let distinct: std::collections::HashSet<_> = samples.iter().collect();
            assert!(
                distinct.len() > 10,
                "attempt {attempt}: not jittered: {distinct:?}"
            );
        }
    }

    #[test]
    fn zero_base_means_no_wait() {
        let p = RetryPolicy {
            max_retries: 3,
            base_delay: Duration::ZERO,
            max_delay: Duration::from_secs(1),
            window: None,
        };
        assert_eq!(p.delay(3), Duration::ZERO);
        assert_eq!(RetryPolicy::none().max_retries, 0);
    }

    #[test]
    fn the_default_rides_out_5_s_and_reports_a_black_hole_within_60_s() {
        let p = RetryPolicy::default();
        assert!(
            p.rides_out() >= Duration::from_secs(5),
            "{:?}",
            p.rides_out()
        );
        // Each attempt is bounded by the default response deadline (ClientOptions).
        let worst = p.worst_case(crate::rtdb::client::DEFAULT_RESPONSE_TIMEOUT);
        assert!(worst < Duration::from_secs(60), "{worst:?}");
        // The window stops retries; the count does too.
        assert!(!p.allows(1, Duration::from_secs(29), Duration::from_secs(2)));
        assert!(p.allows(6, Duration::from_secs(1), Duration::from_secs(1)));
        assert!(!p.allows(7, Duration::ZERO, Duration::ZERO));
    }
}
