//! Reconnect backoff: exponential with jitter, bounded attempts. Sans-IO.
//!
//! Algorithm: failure number `n` (1-based) waits `d = min(cap, base * 2^(n-1))`
//! with "equal jitter": a uniform time in `[d/2, d]`, so clients that lost the
//! same server do not come back in lock-step, yet never retry at once. After
//! `max_attempts` failures in a row [`Backoff::on_failure`] returns `None`:
//! give up. A successful connect calls [`Backoff::reset`].
//!
//! Caller's contract: call `on_failure` exactly once per lost or failed
//! connection (from `close`, never also from `end` or `error`: the tutorial's
//! interactive client reconnected from each of them, so one failure opened two
//! connections), arm one timer for the returned deadline and keep its id so a
//! quit can cancel it (the tutorial kept no id and could not cancel). See
//! docs/TUTORIAL-DEFECTS.md.

use std::time::{Duration, Instant};

/// Default first delay.
pub const DEFAULT_BASE: Duration = Duration::from_secs(1);
/// Default longest delay.
pub const DEFAULT_CAP: Duration = Duration::from_secs(5);
/// Default attempts before giving up (the seed's `maxReconnectAttempts`).
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;

/// Backoff parameters.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct BackoffConfig {
    /// Delay before the first retry (before jitter).
    pub base: Duration,
    /// Longest delay (before jitter).
    pub cap: Duration,
    /// Retries before giving up; 0 = never retry.
    pub max_attempts: u32,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        BackoffConfig {
            base: DEFAULT_BASE,
            cap: DEFAULT_CAP,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
        }
    }
}

/// The backoff state of one client.
#[derive(Clone, Debug)]
pub struct Backoff {
    cfg: BackoffConfig,
    attempts: u32,
    rng: u64,
}

impl Backoff {
    /// A fresh backoff; `seed` feeds the jitter (any value; tests fix it).
    pub fn new(cfg: BackoffConfig, seed: u64) -> Backoff {
        Backoff {
            cfg,
            attempts: 0,
            rng: seed,
        }
    }

    /// Retries scheduled since the last successful connect.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The configuration.
    pub fn config(&self) -> BackoffConfig {
        self.cfg
    }

    /// A connect succeeded: the next failure starts from `base` again.
    pub fn reset(&mut self) {
        self.attempts = 0;
    }

    /// A connection was lost or failed at `now`: the deadline of the next
    /// attempt, or `None` when the attempts are used up.
    pub fn on_failure(&mut self, now: Instant) -> Option<Instant> {
        if self.attempts >= self.cfg.max_attempts {
            return None;
        }
        self.attempts += 1;
        Some(now + self.delay(self.attempts))
    }

    /// The jittered delay of retry `n` (1-based).
    fn delay(&mut self, n: u32) -> Duration {
        let factor = 1u32 << (n - 1).min(20);
        let d = self.cfg.base.saturating_mul(factor).min(self.cfg.cap);
        let half = d / 2;
        let span = (d - half).as_nanos() as u64;
        let jitter = if span == 0 {
            0
        } else {
            self.next_u64() % (span + 1)
        };
        half + Duration::from_nanos(jitter)
    }

    /// splitmix64: a tiny, well-mixed generator; jitter needs no more.
    fn next_u64(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_the_cap_with_jitter_in_range() {
        let now = Instant::now();
        for seed in 0..200 {
            let mut b = Backoff::new(BackoffConfig::default(), seed);
            let want = [1000u64, 2000, 4000, 5000, 5000];
            for (i, full) in want.iter().enumerate() {
                let at = b.on_failure(now).expect("within max attempts");
                let ms = at.duration_since(now).as_millis() as u64;
                assert!(
                    ms >= full / 2 && ms <= *full,
                    "retry {} waited {ms} ms",
                    i + 1
                );
                assert_eq!(b.attempts(), i as u32 + 1);
            }
            assert_eq!(b.on_failure(now), None, "gives up after 5");
        }
    }

    #[test]
    fn reset_starts_over_and_zero_attempts_never_retries() {
        let now = Instant::now();
        let mut b = Backoff::new(BackoffConfig::default(), 7);
        b.on_failure(now);
        b.on_failure(now);
        b.reset();
        let at = b.on_failure(now).unwrap();
        assert!(at.duration_since(now) <= Duration::from_secs(1));
        let mut none = Backoff::new(
            BackoffConfig {
                max_attempts: 0,
                ..BackoffConfig::default()
            },
            1,
        );
        assert_eq!(none.on_failure(now), None);
    }

    /// A custom base and cap (the heartbeat client's 30 s cap): every delay
    /// within `[d/2, d]` of its ceiling, the ceilings never shrinking, `None`
    /// after the limit, and back near `base` after a reset.
    #[test]
    fn custom_base_and_cap_grow_within_jitter_bounds() {
        let now = Instant::now();
        let base = Duration::from_millis(100);
        let cap = Duration::from_millis(1000);
        let cfg = BackoffConfig {
            base,
            cap,
            max_attempts: 10,
        };
        let mut b = Backoff::new(cfg, 42);
        for n in 1..=10u32 {
            let d = b.on_failure(now).unwrap().duration_since(now);
            let ceiling = (base * 2u32.pow(n - 1)).min(cap);
            assert!(d >= ceiling / 2 && d <= ceiling, "attempt {n}: {d:?}");
        }
        assert_eq!(b.on_failure(now), None);
        b.reset();
        assert!(b.on_failure(now).unwrap().duration_since(now) <= base);
    }

    #[test]
    fn jitter_spreads_clients() {
        let now = Instant::now();
        let mut seen = std::collections::HashSet::new();
        for seed in 0..50 {
            let mut b = Backoff::new(BackoffConfig::default(), seed);
            seen.insert(b.on_failure(now).unwrap().duration_since(now).as_millis());
        }
        assert!(seen.len() > 20, "only {} distinct delays", seen.len());
    }
}
