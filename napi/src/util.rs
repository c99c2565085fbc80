//! Small pure helpers the JS layer needs: push ids, RTDB key order, executor ids, redaction.

use std::sync::Mutex;

use napi_derive::napi;

use msr_firebase::rtdb::PushIdGenerator;
use msr_firebase::rtdb::{Clock, SystemClock};

static PUSH_IDS: Mutex<Option<PushIdGenerator>> = Mutex::new(None);

/// A new 20-character, time-ordered push id (strictly increasing within this process).
#[napi]
pub fn new_push_id() -> String {
    let mut g = PUSH_IDS.lock().unwrap_or_else(|p| p.into_inner());
    g.get_or_insert_with(PushIdGenerator::new)
        .next_id(SystemClock.now_ms())
}

/// Keys sorted in RTDB's `$key` order (integer keys first, numerically).
#[napi]
pub fn sort_keys(mut keys: Vec<String>) -> Vec<String> {
    keys.sort_by(|a, b| msr_firebase::rtdb::order::compare_keys(a, b));
    keys
}

/// `hostname-pid-uuid`
#[napi]
pub fn default_executor_id() -> String {
    msr_firebase::lock::default_executor_id()
}

/// `text` without secrets (`msr_firebase::redact`), for the errors JS makes itself.
#[napi]
pub fn redact_secrets(text: String) -> String {
    msr_firebase::redact::secrets_owned(text)
}
