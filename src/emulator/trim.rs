//! Giving memory back after a burst of traffic. A rewrite of a big namespace allocates and frees
//! many large buffers (request bodies, responses, chunks of the store that grow and are then
//! shrunk to fit) on several threads; glibc's allocator keeps what they freed in each thread's
//! arena, so the process's resident memory stays at the burst's peak although the store itself
//! grew only by what the data grew. After every `EVERY_BYTES` of request and response bodies the
//! emulator asks the allocator to return its free pages to the system (`malloc_trim`, on a
//! blocking thread; on other allocators nothing is asked). It only gives back memory that is
//! already free, so it changes no data and no answer.

use std::sync::atomic::{AtomicU64, Ordering};

/// Bytes of bodies after which free memory is given back.
pub const EVERY_BYTES: u64 = 16 << 20;

/// The bodies' bytes since memory was last given back.
#[derive(Debug, Default)]
pub struct Trim {
    since: AtomicU64,
}

impl Trim {
    /// `bytes` of a body went through: true (and the count starts again) when it is time to give
    /// memory back.
    pub fn passed(&self, bytes: u64) -> bool {
        let total = self.since.fetch_add(bytes, Ordering::Relaxed) + bytes;
        total >= EVERY_BYTES && self.since.swap(0, Ordering::Relaxed) >= EVERY_BYTES
    }

    /// `passed`, then the memory given back on a blocking thread when it is time.
    pub fn after(&self, bytes: u64) {
        if self.passed(bytes) {
            tokio::task::spawn_blocking(give_back);
        }
    }
}

/// Return the allocator's free pages to the system (glibc); nothing elsewhere.
pub fn give_back() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases memory the allocator holds as free; it takes its own locks.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_is_time_once_per_every_bytes() {
        let t = Trim::default();
        let step = EVERY_BYTES / 4;
        let due: Vec<bool> = (0..9).map(|_| t.passed(step)).collect();
        assert_eq!(
            due,
            [false, false, false, true, false, false, false, true, false]
        );
        assert!(t.passed(EVERY_BYTES), "one body as big as the interval");
    }
}
