//! Round-trip times that a peer cannot fake, and the client's RTT statistics.
//!
//! **Issued pings.** Whoever measures remembers every ping it sent: the
//! timestamp it put on the wire and the monotonic instant it sent it. A
//! `pong` counts only if it echoes a timestamp from that list, and the RTT is
//! `now - sent_at` on the monotonic clock, never `now - the_peer's_number`.
//! A peer therefore cannot claim an RTT shorter than its real reply time, or
//! push made-up samples (the tutorial's heartbeat server took
//! `now - msg.timestamp` from any `heartbeat`, with a number the client chose),
//! and a pong without a timestamp is ignored instead of giving an RTT of
//! ~1.8·10¹² ms (the tutorial's heartbeat client computed `now - 0`). Each
//! issued ping matches at most once. See docs/TUTORIAL-DEFECTS.md.
//!
//! **Statistics.** The client keeps the last [`RTT_WINDOW`] samples for the
//! average, plus the minimum and maximum of all samples.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Pings remembered while awaiting their pong; older ones are forgotten (a
/// pong that late is not a useful RTT sample). Bounds memory per peer.
pub const MAX_OUTSTANDING: usize = 8;

/// Samples in the moving average (the seed's 20).
pub const RTT_WINDOW: usize = 20;

/// Pings we sent and whose pong has not come back.
#[derive(Clone, Debug, Default)]
pub struct IssuedPings {
    sent: VecDeque<(u64, Instant)>,
}

impl IssuedPings {
    /// Remember a ping carrying wire timestamp `ts`, sent at `now`.
    pub fn issue(&mut self, ts: u64, now: Instant) {
        if self.sent.len() == MAX_OUTSTANDING {
            self.sent.pop_front();
        }
        self.sent.push_back((ts, now));
    }

    /// A pong echoing `ts` arrived at `now`: the RTT, if `ts` is one of ours.
    pub fn answer(&mut self, ts: u64, now: Instant) -> Option<Duration> {
        let pos = self.sent.iter().position(|&(t, _)| t == ts)?;
        let (_, at) = self.sent.remove(pos)?;
        Some(now.saturating_duration_since(at))
    }

    /// Pings still awaiting a pong.
    pub fn outstanding(&self) -> usize {
        self.sent.len()
    }
}

/// RTT statistics: moving average of the last [`RTT_WINDOW`], min, max.
#[derive(Clone, Debug, Default)]
pub struct RttStats {
    window: VecDeque<Duration>,
    min: Option<Duration>,
    max: Option<Duration>,
    count: u64,
}

impl RttStats {
    /// Add a sample.
    pub fn record(&mut self, rtt: Duration) {
        if self.window.len() == RTT_WINDOW {
            self.window.pop_front();
        }
        self.window.push_back(rtt);
        self.min = Some(self.min.map_or(rtt, |m| m.min(rtt)));
        self.max = Some(self.max.map_or(rtt, |m| m.max(rtt)));
        self.count += 1;
    }

    /// Average of the last [`RTT_WINDOW`] samples.
    pub fn average(&self) -> Option<Duration> {
        let n = self.window.len() as u32;
        (n > 0).then(|| self.window.iter().sum::<Duration>() / n)
    }

    /// Smallest sample.
    pub fn min(&self) -> Option<Duration> {
        self.min
    }

    /// Largest sample.
    pub fn max(&self) -> Option<Duration> {
        self.max
    }

    /// Samples recorded in total.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Samples in the window.
    pub fn window_len(&self) -> usize {
        self.window.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_issued_timestamps_give_an_rtt_once() {
        let t0 = Instant::now();
        let mut p = IssuedPings::default();
        p.issue(1000, t0);
        let later = t0 + Duration::from_millis(7);
        assert_eq!(p.answer(999, later), None, "a made-up timestamp");
        assert_eq!(p.answer(1000, later), Some(Duration::from_millis(7)));
        assert_eq!(p.answer(1000, later), None, "a replayed pong");
    }

    #[test]
    fn outstanding_is_bounded() {
        let t0 = Instant::now();
        let mut p = IssuedPings::default();
        for i in 0..100 {
            p.issue(i, t0);
        }
        assert_eq!(p.outstanding(), MAX_OUTSTANDING);
        assert_eq!(p.answer(0, t0), None);
        assert!(p.answer(99, t0).is_some());
    }

    #[test]
    fn stats_window_min_max() {
        let mut s = RttStats::default();
        assert_eq!(s.average(), None);
        for ms in 1..=30u64 {
            s.record(Duration::from_millis(ms));
        }
        assert_eq!(s.window_len(), RTT_WINDOW);
        // Last 20 samples: 11..=30, mean 20.5 ms.
        assert_eq!(s.average(), Some(Duration::from_micros(20_500)));
        assert_eq!(s.min(), Some(Duration::from_millis(1)));
        assert_eq!(s.max(), Some(Duration::from_millis(30)));
        assert_eq!(s.count(), 30);
    }
}
