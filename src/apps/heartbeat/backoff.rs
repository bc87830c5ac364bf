//! Reconnect delays for the heartbeat client: exponential backoff with
//! jitter, a cap and an attempt limit (sans-IO).
//!
//! Attempt `n` (1-based) waits a delay drawn uniformly from
//! `[d/2, d]`, where `d = min(cap, base × 2^(n-1))` ("equal jitter"): the
//! delay grows, never collapses to zero, and clients dropped together by one
//! server restart do not come back in lock step. After `max_attempts`
//! failures in a row [`Backoff::next_delay`] returns `None`; a session that
//! got as far as the server's `welcome` calls [`Backoff::reset`].
//!
//! The caller asks for one delay per *failure*, i.e. once per `close` (D10.3:
//! the seed scheduled a reconnect from both `error` and `close`).

use std::time::Duration;

/// Longest reconnect delay.
pub const DEFAULT_CAP: Duration = Duration::from_secs(30);

/// Backoff state.
#[derive(Clone, Debug)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    max_attempts: u32,
    attempt: u32,
    rng: u64,
}

impl Backoff {
    /// Delays start near `base`, double per failure up to `cap`; at most
    /// `max_attempts` in a row. `seed` feeds the jitter (any value).
    pub fn new(base: Duration, cap: Duration, max_attempts: u32, seed: u64) -> Self {
        Backoff {
            base: base.max(Duration::from_millis(1)),
            cap: cap.max(base),
            max_attempts,
            attempt: 0,
            // xorshift must not start at 0.
            rng: seed | 1,
        }
    }

    /// The delay before the next attempt, or `None` when attempts are used up.
    pub fn next_delay(&mut self) -> Option<Duration> {
        if self.attempt >= self.max_attempts {
            return None;
        }
        self.attempt += 1;
        let shift = (self.attempt - 1).min(20);
        let d = self.base.saturating_mul(1 << shift).min(self.cap);
        let half = d / 2;
        let span = (d - half).as_micros() as u64;
        let jitter = if span == 0 {
            0
        } else {
            self.next_random() % (span + 1)
        };
        Some(half + Duration::from_micros(jitter))
    }

    /// Attempts made since the last reset.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// The attempt limit.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// A session succeeded: start again from `base`.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// xorshift64*: enough for jitter, no dependency.
    fn next_random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_within_jitter_bounds_and_caps() {
        let base = Duration::from_millis(100);
        let cap = Duration::from_millis(1000);
        let mut b = Backoff::new(base, cap, 10, 42);
        let mut prev_ceiling = Duration::ZERO;
        for n in 1..=10u32 {
            let d = b.next_delay().unwrap();
            let ceiling = (base * 2u32.pow(n - 1)).min(cap);
            assert!(d >= ceiling / 2 && d <= ceiling, "attempt {n}: {d:?}");
            assert!(ceiling >= prev_ceiling);
            prev_ceiling = ceiling;
        }
        assert_eq!(b.next_delay(), None);
        b.reset();
        assert!(b.next_delay().unwrap() <= base);
    }

    #[test]
    fn jitter_differs_between_seeds() {
        let mk = |s| Backoff::new(Duration::from_secs(1), DEFAULT_CAP, 5, s).next_delay();
        assert_ne!(mk(1), mk(2));
    }

    #[test]
    fn zero_attempts_never_reconnects() {
        let mut b = Backoff::new(Duration::from_secs(1), DEFAULT_CAP, 0, 7);
        assert_eq!(b.next_delay(), None);
    }
}
