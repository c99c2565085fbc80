//! Push ids as Firebase makes them: 20 characters of the alphabet `-0-9A-Z_a-z` (which sorts in
//! ASCII order): 8 characters of millisecond timestamp, then 12 random characters. Within the
//! same millisecond (or if the clock goes back) the random part is incremented, so ids made by
//! one generator are strictly increasing.

use rand::Rng;

pub const PUSH_CHARS: &[u8; 64] =
    b"-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz";

#[derive(Debug, Default)]
pub struct PushIdGenerator {
    last_ms: i64,
    last_rand: [u8; 12],
}

impl PushIdGenerator {
    pub fn new() -> Self {
        Self::default()
    }

    /// The next id for the clock reading `now_ms`.
    pub fn next_id(&mut self, now_ms: i64) -> String {
        if now_ms > self.last_ms {
            self.last_ms = now_ms;
            let mut rng = rand::rng();
            for r in self.last_rand.iter_mut() {
                *r = rng.random_range(0..64);
            }
        } else {
            // Same millisecond or the clock went back: keep the old time, bump the random part.
            let mut i = 11;
            loop {
                if self.last_rand[i] == 63 {
                    self.last_rand[i] = 0;
                    if i == 0 {
                        self.last_ms += 1;
                        break;
                    }
                    i -= 1;
                } else {
                    self.last_rand[i] += 1;
                    break;
                }
            }
        }
        let mut id = [0u8; 20];
        let mut t = self.last_ms.max(0) as u64;
        for i in (0..8).rev() {
            id[i] = PUSH_CHARS[(t % 64) as usize];
            t /= 64;
        }
        for (i, r) in self.last_rand.iter().enumerate() {
            id[8 + i] = PUSH_CHARS[*r as usize];
        }
        String::from_utf8(id.to_vec()).expect("push id alphabet is ASCII")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_and_monotonic() {
        let mut g = PushIdGenerator::new();
        let mut prev = String::new();
        for i in 0..2000 {
            let id = g.next_id(1_700_000_000_000 + i / 100);
            assert_eq!(id.len(), 20);
            assert!(id.bytes().all(|b| PUSH_CHARS.contains(&b)));
            assert!(id > prev, "{id} <= {prev}");
            prev = id;
        }
        // The clock going back still gives increasing ids.
        let id = g.next_id(1_600_000_000_000);
        assert!(id > prev);
    }

    #[test]
    fn time_prefix_orders_across_milliseconds() {
        let mut g = PushIdGenerator::new();
        let a = g.next_id(1000);
        let b = g.next_id(1001);
        assert!(a[..8] < b[..8]);
        assert_eq!(&PushIdGenerator::new().next_id(0)[..8], "--------");
    }
}
