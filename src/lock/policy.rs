//! The lock's settings and timing, at the bottom of `lock/` (it uses none of its files):
//!
//! - `LockOptions`: the configuration (`locking.*`): lease length, renewal period, the
//!   predecessor's retries, the wait limit, how often a waiting process reports.
//! - `WaitPolicy`: how one acquisition waits — fail fast, the predecessor's retries, or a wait up
//!   to a limit naming the setting it came from. `WaitPolicy::resolve` is the one rule that turns
//!   the configuration and what a call asked for (`WaitRequest`) into a policy, for the library
//!   (`runner.migrate()`/`down()`, `runExclusive`) and the CLI (`migrate`, `down`) alike; the
//!   texts that describe it (the first wait line, the give-up message) are its methods.
//! - The pauses of the lock's loops, each the one backoff (`rtdb::retry::RetryPolicy`: capped
//!   exponential with jitter) bounded by the loop that uses it.

use std::time::Duration;

use crate::rtdb::RetryPolicy;
use crate::time::{human, ms};

#[derive(Debug, Clone)]
pub struct LockOptions {
    /// Lease length in ms (`locking.timeout`, default 600000).
    pub timeout_ms: u64,
    /// Predecessor's retries for `acquire` in the runner (0 = fail fast).
    pub retry_attempts: u32,
    pub retry_delay_ms: u64,
    /// Renew every this often while holding (default timeout/3).
    pub renew_interval: Option<Duration>,
    /// `locking.waitTimeout`: the longest wait for a held lock, when set.
    pub wait_timeout: Option<Duration>,
    /// `locking.waitLogInterval`: how often a waiting process reports that it still waits.
    pub wait_log_interval: Duration,
}

impl Default for LockOptions {
    fn default() -> Self {
        LockOptions {
            timeout_ms: 600_000,
            retry_attempts: 0,
            retry_delay_ms: 1000,
            renew_interval: None,
            wait_timeout: None,
            wait_log_interval: Duration::from_secs(30),
        }
    }
}

impl LockOptions {
    /// The renewal period: `renew_interval`, else a third of the timeout.
    pub fn renew_every(&self) -> Duration {
        self.renew_interval
            .unwrap_or_else(|| Duration::from_millis((self.timeout_ms / 3).max(1)))
    }
}

/// Polling the lock node while waiting, where its event stream is refused or reconnecting.
pub const WAIT_POLL: RetryPolicy =
    RetryPolicy::unbounded(Duration::from_millis(200), Duration::from_secs(5));
/// Reopening an event stream that ended or broke (from the first pause again after a stream
/// that lived `watch::HEALTHY`), so a flapping proxy costs little.
pub const STREAM_RECONNECT: RetryPolicy =
    RetryPolicy::unbounded(Duration::from_millis(500), Duration::from_secs(30));
/// Reading a live view's node where streams are refused: every 5 s, less often while reads fail.
pub const LIVE_POLL: RetryPolicy =
    RetryPolicy::unbounded(Duration::from_secs(5), Duration::from_secs(30));
/// Retrying a step that must not be lost (a proof of ownership, a history record, a release)
/// within the lease or a deadline (`lease::Within`).
pub const RIDE_OUT: RetryPolicy =
    RetryPolicy::unbounded(Duration::from_millis(100), Duration::from_secs(2));

/// How long "wait until the holder is done" is when nothing sets a limit: as long as the holder
/// keeps renewing (a crashed holder's lease expires and is taken over, so this never hangs on a
/// dead lock; Kubernetes' own deadlines still apply).
pub const UNBOUNDED_WAIT: Duration = Duration::from_secs(7 * 24 * 3600);

#[derive(Debug, Clone, PartialEq)]
pub enum WaitPolicy {
    /// One attempt; LOCK_HELD with the guide's message when held.
    FailFast,
    /// The predecessor's `retryAttempts` × `retryDelay`.
    Retry { attempts: u32, delay: Duration },
    /// Wait (following the lock node's event stream, or polling with `WAIT_POLL`) up to
    /// `max_wait` (`UNBOUNDED_WAIT`: until the holder is done); `set_by` names the setting the
    /// limit came from (for the give-up message).
    Wait {
        max_wait: Duration,
        set_by: &'static str,
    },
}

/// Where a wait limit came from, as the give-up message names it.
const BY_FLAG: &str = "--wait-timeout";
const BY_OPTION: &str = "the waitTimeout option";
const BY_CONFIG: &str = "locking.waitTimeout (MSR_LOCKING_WAIT_TIMEOUT)";
const BY_DEFAULT: &str = "the default of wait: true, twice locking.timeout";
const BY_NOTHING: &str = "no setting";

/// What one call asked for; `None` = not said. The library's options
/// `{ wait, waitTimeout, retryAttempts, retryDelay }`; the CLI's `--no-wait` (`wait: false`)
/// and `--wait-timeout`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WaitRequest {
    pub wait: Option<bool>,
    pub wait_timeout: Option<Duration>,
    pub retry_attempts: Option<u32>,
    pub retry_delay: Option<Duration>,
}

/// What happens when neither the call nor the configuration says: the library fails fast
/// (the guide's try/catch example relies on it); the CLI waits, so that every pod of a
/// Kubernetes rollout ends with exit 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitDefault {
    FailFast,
    Wait,
}

impl WaitPolicy {
    /// The one rule, in order:
    /// 1. `wait: false` fails fast.
    /// 2. `wait: true` waits up to the call's `waitTimeout`, else `locking.waitTimeout`, else
    ///    (library) twice the lock timeout / (CLI) until the holder is done.
    /// 3. A call's `waitTimeout` alone means: wait that long.
    /// 4. The CLI waits by default, up to `locking.waitTimeout` (else until the holder is done).
    /// 5. The library retries when the call's or the config's `retryAttempts` is above 0
    ///    (`retryDelay` from the call, else the config), else waits when `locking.waitTimeout`
    ///    is set, else fails fast.
    pub fn resolve(opts: &LockOptions, req: &WaitRequest, default: WaitDefault) -> WaitPolicy {
        let by_request = match default {
            WaitDefault::Wait => BY_FLAG,
            WaitDefault::FailFast => BY_OPTION,
        };
        let limit = req
            .wait_timeout
            .map(|t| (t, by_request))
            .or(opts.wait_timeout.map(|t| (t, BY_CONFIG)));
        let wait = |(max_wait, set_by)| WaitPolicy::Wait { max_wait, set_by };
        match (req.wait, default) {
            (Some(false), _) => WaitPolicy::FailFast,
            (Some(true), WaitDefault::FailFast) => wait(limit.unwrap_or((
                Duration::from_millis(opts.timeout_ms.saturating_mul(2)),
                BY_DEFAULT,
            ))),
            (Some(true), WaitDefault::Wait) | (None, WaitDefault::Wait) => {
                wait(limit.unwrap_or((UNBOUNDED_WAIT, BY_NOTHING)))
            }
            (None, WaitDefault::FailFast) => {
                if let Some(t) = req.wait_timeout {
                    return wait((t, BY_OPTION));
                }
                let attempts = req.retry_attempts.unwrap_or(opts.retry_attempts);
                if attempts > 0 {
                    WaitPolicy::Retry {
                        attempts,
                        delay: req
                            .retry_delay
                            .unwrap_or(Duration::from_millis(opts.retry_delay_ms)),
                    }
                } else if let Some(t) = opts.wait_timeout {
                    wait((t, BY_CONFIG))
                } else {
                    WaitPolicy::FailFast
                }
            }
        }
    }

    /// A wait of up to `max_wait` (`set_by` names where the limit came from).
    pub fn wait_up_to(max_wait: Duration, set_by: &'static str) -> WaitPolicy {
        WaitPolicy::Wait { max_wait, set_by }
    }

    fn is_unbounded(&self) -> bool {
        matches!(self, WaitPolicy::Wait { max_wait, .. } if *max_wait >= UNBOUNDED_WAIT)
    }

    /// What this wait will do, for the first "Waiting for the migration lock" line.
    pub fn plan_text(&self) -> String {
        match self {
            WaitPolicy::FailFast => "Not waiting (fail fast).".into(),
            WaitPolicy::Retry { attempts, delay } => format!(
                "Retrying up to {attempts} time(s), {} ms apart (retryAttempts / retryDelay).",
                delay.as_millis()
            ),
            _ if self.is_unbounded() => "Waiting until it is released or its lease runs out (no wait limit is set; --wait-timeout or locking.waitTimeout set one).".into(),
            WaitPolicy::Wait { max_wait, set_by } => {
                format!("Waiting up to {} (set by {set_by}).", human(*max_wait))
            }
        }
    }

    /// Why the wait ended, for the give-up message.
    pub fn limit_text(&self) -> String {
        match self {
            WaitPolicy::FailFast => "waiting is off".into(),
            WaitPolicy::Retry { attempts, delay } => format!(
                "out of attempts: retryAttempts is {attempts}, retryDelay {} ms",
                delay.as_millis()
            ),
            WaitPolicy::Wait { max_wait, set_by } => format!(
                "the wait limit is {}, set by {set_by}; raise it to wait longer",
                human(*max_wait)
            ),
        }
    }

    /// The limit in ms (`None`: no time limit).
    pub fn max_wait_ms(&self) -> Option<u64> {
        match self {
            WaitPolicy::Wait { max_wait, .. } if !self.is_unbounded() => Some(ms(*max_wait)),
            _ => None,
        }
    }

    /// The setting the limit came from.
    pub fn set_by(&self) -> Option<&'static str> {
        match self {
            WaitPolicy::Wait { set_by, .. } => Some(set_by),
            WaitPolicy::Retry { .. } => Some("retryAttempts / retryDelay"),
            WaitPolicy::FailFast => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;
    const MS: fn(u64) -> Duration = Duration::from_millis;

    fn opts(retry_attempts: u32, wait_timeout: Option<Duration>) -> LockOptions {
        LockOptions {
            timeout_ms: 10_000,
            retry_attempts,
            retry_delay_ms: 250,
            wait_timeout,
            ..LockOptions::default()
        }
    }

    fn req(wait: Option<bool>, wait_timeout: Option<Duration>) -> WaitRequest {
        WaitRequest {
            wait,
            wait_timeout,
            ..WaitRequest::default()
        }
    }

    use WaitDefault::{FailFast as Lib, Wait as Cli};

    #[test]
    fn the_library_fails_fast_unless_told_to_wait() {
        let r = WaitPolicy::resolve;
        assert_eq!(
            r(&opts(0, None), &req(None, None), Lib),
            WaitPolicy::FailFast
        );
        assert_eq!(
            r(&opts(3, S(9).into()), &req(Some(false), None), Lib),
            WaitPolicy::FailFast
        );
        // wait: true -> call limit, else config limit, else twice the lock timeout.
        assert_eq!(
            r(&opts(0, None), &req(Some(true), MS(700).into()), Lib),
            WaitPolicy::wait_up_to(MS(700), BY_OPTION)
        );
        assert_eq!(
            r(&opts(0, S(9).into()), &req(Some(true), None), Lib),
            WaitPolicy::wait_up_to(S(9), BY_CONFIG)
        );
        assert_eq!(
            r(&opts(0, None), &req(Some(true), None), Lib),
            WaitPolicy::wait_up_to(S(20), BY_DEFAULT)
        );
        // Retries from the config, or from the call (which wins).
        assert_eq!(
            r(&opts(3, None), &req(None, None), Lib),
            WaitPolicy::Retry {
                attempts: 3,
                delay: MS(250)
            }
        );
        let call = WaitRequest {
            retry_attempts: Some(5),
            retry_delay: Some(MS(10)),
            ..WaitRequest::default()
        };
        assert_eq!(
            r(&opts(0, None), &call, Lib),
            WaitPolicy::Retry {
                attempts: 5,
                delay: MS(10)
            }
        );
        let none = WaitRequest {
            retry_attempts: Some(0),
            ..WaitRequest::default()
        };
        assert_eq!(r(&opts(3, None), &none, Lib), WaitPolicy::FailFast);
        // A configured waitTimeout waits; retries come first.
        assert_eq!(
            r(&opts(0, S(9).into()), &req(None, None), Lib),
            WaitPolicy::wait_up_to(S(9), BY_CONFIG)
        );
        assert_eq!(
            r(&opts(2, S(9).into()), &req(None, None), Lib),
            WaitPolicy::Retry {
                attempts: 2,
                delay: MS(250)
            }
        );
        // A waitTimeout on the call alone means wait that long.
        assert_eq!(
            r(&opts(2, S(9).into()), &req(None, MS(300).into()), Lib),
            WaitPolicy::wait_up_to(MS(300), BY_OPTION)
        );
    }

    #[test]
    fn the_cli_waits_by_default_up_to_the_configured_limit() {
        let r = WaitPolicy::resolve;
        assert_eq!(
            r(&opts(0, None), &req(None, None), Cli),
            WaitPolicy::wait_up_to(UNBOUNDED_WAIT, BY_NOTHING)
        );
        assert_eq!(
            r(&opts(0, S(9).into()), &req(None, None), Cli),
            WaitPolicy::wait_up_to(S(9), BY_CONFIG)
        );
        assert_eq!(
            r(&opts(0, S(9).into()), &req(None, MS(300).into()), Cli),
            WaitPolicy::wait_up_to(MS(300), BY_FLAG)
        );
        assert_eq!(
            r(&opts(0, S(9).into()), &req(Some(false), None), Cli),
            WaitPolicy::FailFast
        );
        // retryAttempts is a library setting: the CLI still waits.
        assert_eq!(
            r(&opts(3, None), &req(None, None), Cli),
            WaitPolicy::wait_up_to(UNBOUNDED_WAIT, BY_NOTHING)
        );
    }
}
