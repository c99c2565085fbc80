//! Retry policy for transient failures (INTERFACE; body to be implemented): capped exponential
//! backoff with full jitter.

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
        todo!("{attempt}")
    }
}
