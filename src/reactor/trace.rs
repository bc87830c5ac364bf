//! `--trace-loop`: one compact line per iteration, rate-limited.
//!
//! Under load the loop turns thousands of times a second; a line for each
//! would flood the terminal and slow the loop down with it. The limiter lets
//! at most [`MAX_LINES_PER_SEC`] lines through per one-second window and
//! counts the rest; the next line printed says how many were suppressed.
//! It is sans-IO: the caller passes the time.

use crate::reactor::stats::{IterationSample, Phase};
use std::fmt::Write;
use std::time::{Duration, Instant};

/// Lines printed per second at most: readable by a human, harmless under load.
pub const MAX_LINES_PER_SEC: u32 = 10;

/// Length of the rate-limit window.
const WINDOW: Duration = Duration::from_secs(1);

/// Fixed-window rate limiter for the per-iteration line, and for any log
/// line whose volume a peer controls (repeated warnings of a server).
#[derive(Debug)]
pub struct TraceLimiter {
    window_start: Option<Instant>,
    in_window: u32,
    suppressed: u64,
    per_window: u32,
}

impl Default for TraceLimiter {
    fn default() -> Self {
        TraceLimiter::with_limit(MAX_LINES_PER_SEC)
    }
}

impl TraceLimiter {
    /// A limiter letting `per_second` lines through per one-second window.
    pub fn with_limit(per_second: u32) -> TraceLimiter {
        TraceLimiter {
            window_start: None,
            in_window: 0,
            suppressed: 0,
            per_window: per_second,
        }
    }

    /// May a line be printed at `now`? `Some(n)`: yes, and `n` lines were
    /// suppressed since the last one printed. `None`: suppressed (counted).
    pub fn admit(&mut self, now: Instant) -> Option<u64> {
        let fresh = match self.window_start {
            None => true,
            Some(start) => now.saturating_duration_since(start) >= WINDOW,
        };
        if fresh {
            self.window_start = Some(now);
            self.in_window = 0;
        }
        if self.in_window >= self.per_window {
            self.suppressed += 1;
            return None;
        }
        self.in_window += 1;
        Some(std::mem::take(&mut self.suppressed))
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The line for one iteration, e.g.
/// `iter=12 timers=0.004ms/1 ready=0.000ms/0 poll=9.871ms dispatch=0.031ms/2ev check=0.000ms close=0.000ms ready_len=0`.
pub fn format_line(s: &IterationSample, suppressed: u64) -> String {
    let t = |p: Phase| ms(s.phase_time[p as usize]);
    let mut line = format!(
        "iter={} timers={:.3}ms/{} ready={:.3}ms/{} poll={:.3}ms dispatch={:.3}ms/{}ev check={:.3}ms close={:.3}ms ready_len={}",
        s.iteration,
        t(Phase::Timers),
        s.timers_fired,
        t(Phase::Ready),
        s.ready_served,
        t(Phase::Poll),
        t(Phase::Dispatch),
        s.events,
        t(Phase::Check),
        t(Phase::Close),
        s.ready_len,
    );
    if suppressed > 0 {
        let _ = write!(line, " (+{suppressed} lines suppressed)");
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_max_lines_per_window_and_the_rest_counted() {
        let mut l = TraceLimiter::default();
        let t0 = Instant::now();
        let mut printed = 0;
        for i in 0..1000 {
            if l.admit(t0 + Duration::from_micros(i)).is_some() {
                printed += 1;
            }
        }
        assert_eq!(printed, MAX_LINES_PER_SEC);
        // Next window: the first line reports the suppressed count.
        let n = l.admit(t0 + Duration::from_millis(1500));
        assert_eq!(n, Some(1000 - MAX_LINES_PER_SEC as u64));
        assert_eq!(l.admit(t0 + Duration::from_millis(1501)), Some(0));
    }

    #[test]
    fn line_names_every_phase() {
        let s = IterationSample {
            iteration: 7,
            events: 3,
            ..Default::default()
        };
        let line = format_line(&s, 5);
        for p in Phase::ALL {
            assert!(line.contains(p.name()), "{line}");
        }
        assert!(line.starts_with("iter=7 "));
        assert!(line.contains("/3ev"));
        assert!(line.ends_with("(+5 lines suppressed)"));
    }
}
