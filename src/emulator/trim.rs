//! Giving memory back after a burst of traffic. A rewrite of a big namespace allocates and frees
//! many large buffers (request bodies, responses, chunks of the store that grow and are then
//! shrunk to fit) on several threads; glibc's allocator keeps what they freed in each thread's
//! arena, so the process's resident memory stays at the burst's peak although the store itself
//! grew only by what the data grew. The emulator asks the allocator to return its free pages to
//! the system (`malloc_trim`, on a blocking thread; on other allocators nothing is asked) after
//! every `EVERY_BYTES` of request and response bodies, and once more when the traffic stops
//! (`QUIET` without a body, at least `QUIET_BYTES` since memory was last given back), so what the
//! last bodies of a run freed is not kept either. It only gives back memory that is already free,
//! so it changes no data and no answer. Large blocks (a chunk's text) get pages of their own
//! (`own_pages_for_large_blocks`), so what a rewrite frees goes back whole.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Bytes of bodies after which free memory is given back.
pub const EVERY_BYTES: u64 = 16 << 20;
/// Time without a body after which the traffic has stopped.
pub const QUIET: Duration = Duration::from_millis(250);
/// Bytes of bodies since memory was last given back that are worth giving back for when the
/// traffic stops (below that, what they freed is too little to ask for).
pub const QUIET_BYTES: u64 = 1 << 20;

/// The bodies' bytes, counted to know when to give memory back.
#[derive(Debug, Default)]
pub struct Trim {
    counts: Arc<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    /// Bytes since memory was last given back.
    since: AtomicU64,
    /// Bytes ever (tells whether any body came during a quiet wait).
    total: AtomicU64,
    /// A wait for the traffic to stop is under way.
    waiting: AtomicBool,
}

impl Counts {
    /// `bytes` of a body went through: true (and the count starts again) when it is time to give
    /// memory back.
    fn passed(&self, bytes: u64) -> bool {
        self.total.fetch_add(bytes, Ordering::Relaxed);
        let since = self.since.fetch_add(bytes, Ordering::Relaxed) + bytes;
        since >= EVERY_BYTES && self.since.swap(0, Ordering::Relaxed) >= EVERY_BYTES
    }

    /// A quiet wait began when `total` bytes had gone through: true (and the count starts again)
    /// when no body came since and enough came before to give memory back for.
    fn settled(&self, total: u64) -> bool {
        self.total.load(Ordering::Relaxed) == total
            && self.since.load(Ordering::Relaxed) >= QUIET_BYTES
            && self.since.swap(0, Ordering::Relaxed) >= QUIET_BYTES
    }
}

impl Trim {
    /// `passed`, then the memory given back on a blocking thread when it is time; and a wait
    /// for the traffic to stop, unless one is under way.
    pub fn after(&self, bytes: u64) {
        if self.counts.passed(bytes) {
            tokio::task::spawn_blocking(give_back);
        }
        if !self.counts.waiting.swap(true, Ordering::AcqRel) {
            tokio::spawn(until_quiet(Arc::clone(&self.counts)));
        }
    }

    #[cfg(test)]
    fn passed(&self, bytes: u64) -> bool {
        self.counts.passed(bytes)
    }
}

/// Wait until no body came for `QUIET`, give memory back if enough came before, and end (the
/// next body starts another wait).
async fn until_quiet(counts: Arc<Counts>) {
    loop {
        let total = counts.total.load(Ordering::Relaxed);
        tokio::time::sleep(QUIET).await;
        if counts.total.load(Ordering::Relaxed) != total {
            continue;
        }
        if counts.settled(total) {
            tokio::task::spawn_blocking(give_back);
        }
        counts.waiting.store(false, Ordering::Release);
        // A body that came between the last look and now found a wait under way: wait for it.
        if counts.total.load(Ordering::Relaxed) == total
            || counts.waiting.swap(true, Ordering::AcqRel)
        {
            return;
        }
    }
}

/// Blocks of at least this many bytes get pages of their own (glibc's mmap threshold).
pub const OWN_PAGES_BYTES: i32 = 64 << 10;

/// At most this many blocks have pages of their own (each is a mapping, and the kernel allows
/// 65530 per process by default: about 2,600 per million records); past it, blocks go to the heap.
pub const OWN_PAGES_MAX: i32 = 32 << 10;

/// Give every block of `OWN_PAGES_BYTES` or more pages of its own (glibc; nothing elsewhere),
/// for the whole process, from the first emulator started. A chunk's text (tens of KB) moves to a
/// larger block while a write rewrites it and back to its size after: in glibc's heap, the blocks
/// it left were too small for the next chunk's and stayed as holes that `malloc_trim` cannot
/// return whole (rewriting every record of 1M users left the process 27 MB bigger for 13 MB of
/// data grown, 11 MB with this). With pages of their own, a freed text goes back to the system
/// at once and a growing one is remapped, not copied. glibc's default threshold starts at 128 KB
/// and rises to the largest block freed, so nearly every chunk lived in the heap. Past
/// `OWN_PAGES_MAX` such blocks, new ones go to the heap as before.
pub fn own_pages_for_large_blocks() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes the allocator's tuning; blocks already allocated keep theirs.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, OWN_PAGES_BYTES);
        libc::mallopt(libc::M_MMAP_MAX, OWN_PAGES_MAX);
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

    #[test]
    fn the_traffic_stopping_gives_back_what_came_since_the_last_time() {
        let c = Counts::default();
        c.passed(QUIET_BYTES / 2);
        let seen = c.total.load(Ordering::Relaxed);
        assert!(!c.settled(seen), "too little to give back for");
        c.passed(QUIET_BYTES / 2);
        assert!(!c.settled(seen), "a body came during the wait");
        let seen = c.total.load(Ordering::Relaxed);
        assert!(c.settled(seen), "quiet after a MB of bodies");
        assert!(!c.settled(seen), "given back once: nothing came since");
        assert!(
            !c.passed(EVERY_BYTES - 1),
            "the count started again when the traffic stopped"
        );
    }
}
