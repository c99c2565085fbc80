//! The progress seam of backups and restores: the core counts into a `Progress` (atomics, cheap
//! to update from any task), whoever runs the operation reads `snapshot()` when it likes (the CLI
//! draws a line on a terminal) and marks it `finish()`ed when the operation is over; one
//! `Progress` can be `restart()`ed for the next operation. The core never prints.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::time::{Duration, Instant};

/// What an operation is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Reading the database into a backup.
    Backup,
    /// Reading the database for another use (a rehearsal's copy).
    Read,
    /// Checking a backup file before anything is written.
    Validate,
    /// Writing a backup back.
    Restore,
}

/// Counters of a running backup or restore.
#[derive(Debug)]
pub struct Progress {
    phase: AtomicU8,
    bytes: AtomicU64,
    total_bytes: AtomicU64,
    nodes: AtomicU64,
    requests: AtomicU64,
    writes: AtomicU64,
    base: Instant,
    /// When the operation started, in ns after `base`.
    started: AtomicU64,
    done: AtomicBool,
}

/// A consistent-enough reading of `Progress`.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub phase: Phase,
    /// JSON bytes read from the database (backup) or from the file (validate, restore).
    pub bytes: u64,
    /// The file size (validate, restore); unknown for a backup.
    pub total_bytes: Option<u64>,
    /// Keys seen so far (every stored value under an object).
    pub nodes: u64,
    /// Requests sent (reads and writes).
    pub requests: u64,
    /// Writes sent (restore).
    pub writes: u64,
    pub elapsed: Duration,
    /// The operation is over.
    pub done: bool,
}

impl Default for Progress {
    fn default() -> Self {
        Progress::new(Phase::Backup)
    }
}

impl Progress {
    pub fn new(phase: Phase) -> Progress {
        Progress {
            phase: AtomicU8::new(phase as u8),
            bytes: AtomicU64::new(0),
            total_bytes: AtomicU64::new(0),
            nodes: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            base: Instant::now(),
            started: AtomicU64::new(0),
            done: AtomicBool::new(false),
        }
    }

    /// Count a new operation from zero (counters, clock, not done).
    pub fn restart(&self, phase: Phase) {
        self.phase(phase, None);
        self.requests.store(0, Ordering::Relaxed);
        self.writes.store(0, Ordering::Relaxed);
        let now = u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.started.store(now, Ordering::Relaxed);
        self.done.store(false, Ordering::Relaxed);
    }

    /// The operation is over (whatever its outcome).
    pub fn finish(&self) {
        self.done.store(true, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> Snapshot {
        let total = self.total_bytes.load(Ordering::Relaxed);
        Snapshot {
            phase: match self.phase.load(Ordering::Relaxed) {
                0 => Phase::Backup,
                1 => Phase::Read,
                2 => Phase::Validate,
                _ => Phase::Restore,
            },
            bytes: self.bytes.load(Ordering::Relaxed),
            total_bytes: (total > 0).then_some(total),
            nodes: self.nodes.load(Ordering::Relaxed),
            requests: self.requests.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
            elapsed: self
                .base
                .elapsed()
                .saturating_sub(Duration::from_nanos(self.started.load(Ordering::Relaxed))),
            done: self.done.load(Ordering::Relaxed),
        }
    }

    /// Start a new phase: bytes and nodes count from zero again.
    pub(crate) fn phase(&self, phase: Phase, total_bytes: Option<u64>) {
        self.phase.store(phase as u8, Ordering::Relaxed);
        self.bytes.store(0, Ordering::Relaxed);
        self.nodes.store(0, Ordering::Relaxed);
        self.total_bytes
            .store(total_bytes.unwrap_or(0), Ordering::Relaxed);
    }
    pub(crate) fn bytes(&self, n: u64) {
        self.bytes.fetch_add(n, Ordering::Relaxed);
    }
    pub(crate) fn set_bytes(&self, n: u64) {
        self.bytes.store(n, Ordering::Relaxed);
    }
    pub(crate) fn nodes(&self, n: u64) {
        self.nodes.fetch_add(n, Ordering::Relaxed);
    }
    pub(crate) fn request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn write(&self) {
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.request();
    }
}

/// Counts the keys in a JSON text fed in pieces (a `:` outside strings is one key).
#[derive(Debug, Default)]
pub(crate) struct KeyCounter {
    in_str: bool,
    escaped: bool,
}

impl KeyCounter {
    pub(crate) fn feed(&mut self, bytes: &[u8]) -> u64 {
        let mut n = 0;
        for &b in bytes {
            if self.in_str {
                if self.escaped {
                    self.escaped = false;
                } else if b == b'\\' {
                    self.escaped = true;
                } else if b == b'"' {
                    self.in_str = false;
                }
            } else if b == b'"' {
                self.in_str = true;
            } else if b == b':' {
                n += 1;
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_keys_across_pieces() {
        let mut c = KeyCounter::default();
        let text = br#"{"a":{"b:":"x\":y","c":[1,{"d":2}]},"e":"f"}"#;
        let n: u64 = text.chunks(3).map(|p| c.feed(p)).sum();
        assert_eq!(n, 5);
    }

    #[test]
    fn phases_reset_the_counters() {
        let p = Progress::new(Phase::Validate);
        p.bytes(10);
        p.nodes(2);
        p.write();
        p.phase(Phase::Restore, Some(100));
        let s = p.snapshot();
        assert_eq!(
            (s.phase, s.bytes, s.nodes, s.total_bytes),
            (Phase::Restore, 0, 0, Some(100))
        );
        assert_eq!((s.requests, s.writes), (1, 1));
    }
}
