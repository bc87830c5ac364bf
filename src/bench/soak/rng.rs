//! A small seeded generator for the soak's choices (xorshift64*), and the
//! deterministic payloads derived from it.
//!
//! Every random choice of a run comes from one [`Rng`] seeded by `--seed`,
//! so a run's client population (kinds, sizes, endings) is reproducible from
//! the seed printed in its report. Payloads are a pure function of
//! `(stream id, sequence number, length)` ([`payload`]), so a receiver can
//! check a message without the sender keeping a copy.

/// xorshift64* (Vigna): fast, 64 bits of state, good enough for test
/// choices (not for anything secret).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (0 is remapped: xorshift's state must not be 0).
    pub fn new(seed: u64) -> Rng {
        Rng(splitmix(seed) | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `lo..=hi` (`lo` if `hi < lo`).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        lo + self.next_u64() % (hi - lo + 1)
    }

    /// True with probability `pct` %.
    pub fn chance(&mut self, pct: u64) -> bool {
        self.next_u64() % 100 < pct
    }

    /// A size in `1..=max`, log-uniform: as many tiny messages as huge ones.
    pub fn size(&mut self, max: usize) -> usize {
        let bits = 64 - (max.max(1) as u64).leading_zeros() as u64;
        let b = self.range(0, bits.saturating_sub(1));
        let lo = 1u64 << b;
        let hi = ((lo << 1) - 1).min(max as u64);
        self.range(lo.min(hi), hi) as usize
    }
}

/// One splitmix64 step: spreads consecutive seeds over the state space.
pub fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Characters of text payloads: safe in a chat line (no spaces, controls or
/// brackets, so trimming and sanitising leave it unchanged) and in JSON.
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// The text payload of message `seq` of stream `sid`, `len` bytes long.
pub fn payload(sid: u64, seq: u64, len: usize) -> String {
    let mut rng = Rng::new(splitmix(sid) ^ seq.wrapping_mul(0xD6E8_FEB8_6659_FD93));
    let mut s = String::with_capacity(len);
    while s.len() < len {
        let mut x = rng.next_u64();
        for _ in 0..10 {
            if s.len() == len {
                break;
            }
            s.push(ALPHABET[(x & 63) as usize] as char);
            x >>= 6;
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_choices() {
        let mut a = Rng::new(42);
        let mut b = Rng::new(42);
        let mut c = Rng::new(43);
        let xs: Vec<u64> = (0..8).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..8).map(|_| b.next_u64()).collect();
        let zs: Vec<u64> = (0..8).map(|_| c.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(xs, zs);
        assert_ne!(Rng::new(0).next_u64(), 0);
    }

    #[test]
    fn ranges_and_sizes_stay_in_bounds() {
        let mut r = Rng::new(7);
        let mut small = 0;
        for _ in 0..10_000 {
            let v = r.range(3, 9);
            assert!((3..=9).contains(&v));
            let s = r.size(65_536);
            assert!((1..=65_536).contains(&s));
            if s < 256 {
                small += 1;
            }
        }
        // Log-uniform: about 8 of 17 octaves are below 256.
        assert!(small > 3_000, "{small}");
        assert_eq!(r.range(5, 5), 5);
        assert_eq!(r.range(5, 1), 5);
        assert_eq!(r.size(1), 1);
    }

    #[test]
    fn payloads_are_deterministic_and_distinct() {
        let p = payload(1, 2, 100);
        assert_eq!(p.len(), 100);
        assert_eq!(p, payload(1, 2, 100));
        assert_ne!(p, payload(1, 3, 100));
        assert_ne!(p, payload(2, 2, 100));
        assert!(p.bytes().all(|b| ALPHABET.contains(&b)));
        assert_eq!(payload(1, 2, 0), "");
        assert!(payload(9, 9, 50).starts_with(&payload(9, 9, 10)));
    }
}
