//! Retry policy for transient failures: capped exponential backoff with full jitter.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts after the first one.
    pub max_retries: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
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
    /// Delay before retry number `attempt` (1-based), jittered.
    pub fn delay(&self, attempt: u32) -> Duration {
        let cap = self.cap(attempt);
        if cap.is_zero() {
            return cap;
        }
        // Full jitter: uniform in [0, cap].
        let ms = rand::random_range(0..=cap.as_millis().min(u64::MAX as u128) as u64);
        Duration::from_millis(ms)
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_grow_exponentially_and_stop_at_max() {
        let p = RetryPolicy {
            max_retries: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
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
    fn delays_are_jittered_within_the_cap() {
        let p = RetryPolicy {
            max_retries: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
        };
        for attempt in 1..12 {
            let samples: Vec<Duration> = (0..200).map(|_| p.delay(attempt)).collect();
            assert!(
                samples.iter().all(|d| *d <= p.cap(attempt)),
                "attempt {attempt}: {samples:?}"
            );
            let distinct: std::collections::HashSet<_> = samples.iter().collect();
            assert!(
                distinct.len() > 10,
                "attempt {attempt}: not jittered: {distinct:?}"
            );
        }
        // Full jitter: the lower half of the range is used too.
        let low = (0..500).filter(|_| p.delay(5) < p.cap(5) / 2).count();
        assert!(low > 100, "only {low} of 500 below half the cap");
    }

    #[test]
    fn zero_base_means_no_wait() {
        let p = RetryPolicy {
            max_retries: 3,
            base_delay: Duration::ZERO,
            max_delay: Duration::from_secs(1),
        };
        assert_eq!(p.delay(3), Duration::ZERO);
        assert_eq!(RetryPolicy::none().max_retries, 0);
    }
}
