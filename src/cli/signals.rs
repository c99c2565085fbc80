//! SIGINT/SIGTERM delivered by bin/msr-firebase.js (`cliSignal()`): migrations stop after the
//! current step, a wait for the lock or a config module's load ends, the emulator shuts down.

use std::sync::LazyLock;

use tokio::sync::Notify;

use crate::runner::StopFlag;

/// The stop request, and a wake-up for whoever waits on a signal alone (the emulator).
pub struct Signals {
    pub stop: StopFlag,
    pub notify: Notify,
}

pub static SIGNALS: LazyLock<Signals> = LazyLock::new(|| Signals {
    stop: StopFlag::default(),
    notify: Notify::new(),
});

/// A signal arrived.
pub fn signal() {
    SIGNALS.stop.request();
    SIGNALS.notify.notify_waiters();
    SIGNALS.notify.notify_one();
}
