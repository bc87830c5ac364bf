//! `million_timers`: libuv's `test/benchmark-million-timers.c` on our loop.
//!
//! # What is measured
//!
//! One [`Reactor`] with one service arms `N` one-shot timers in its
//! `on_start` (default [`DEFAULT_TIMERS`], libuv's count), timer `i` due
//! after `1 + i / 1000` ms: timeouts rise by a millisecond every
//! [`PER_MS`] timers, as in libuv's program. The loop then runs until it has
//! nothing left to do, which is when the last timer has fired. Three phases
//! are timed, as libuv prints them:
//!
//! * **init**: arming the `N` timers (libuv: `uv_timer_init` +
//!   `uv_timer_start` each, into its binary min-heap; here one insert each
//!   into the hierarchical wheel, `src/timer`);
//! * **dispatch**: `run()` until every timer has fired, each callback
//!   counting one;
//! * **cleanup**: dropping the loop (libuv: `uv_close` on every handle and
//!   one more `uv_run` for the close callbacks; a fired one-shot timer of
//!   ours holds nothing, so this is what is left to free).
//!
//! The run fails (non-zero exit) unless exactly `N` callbacks ran. The
//! figures are wall-clock times of this process alone; they are comparable
//! with libuv's only when both ran on the same machine in the same script
//! (`benches/compare/libuv.sh` does).
//!
//! Deadlines count from the loop's time when arming began (libuv's
//! `uv_now` is cached the same way), so init + dispatch cannot take less
//! than the last timeout (`N / 1000` ms, 10 s for libuv's count): that part
//! is waiting, identical for both loops, so the CPU time of the process is
//! reported beside the wall-clock times.

use super::procstat;
use crate::{ConnId, Cx, Reactor, Service, TimerId};
use bytes::BytesMut;
use serde::Serialize;
use std::cell::Cell;
use std::fmt::Write as _;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// libuv's `NUM_TIMERS`: ten million.
pub const DEFAULT_TIMERS: u64 = 10_000_000;

/// Timers per millisecond of timeout (libuv's `i % 1000 == 0` step).
pub const PER_MS: u64 = 1000;

/// Most timers one run may arm: each costs the wheel some tens of bytes,
/// so this bounds the run's memory to a few GB.
pub const MAX_TIMERS: u64 = 50_000_000;

/// Timeout of timer `i` (0-based), as libuv's loop computes it.
pub fn timeout_of(i: u64) -> Duration {
    Duration::from_millis(1 + i / PER_MS)
}

/// What a run measured.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct TimersReport {
    /// Always `"million_timers"`.
    pub workload: String,
    /// Timers armed.
    pub timers: u64,
    /// Callbacks that ran (must equal `timers`).
    pub fired: u64,
    /// Seconds arming them.
    pub init_s: f64,
    /// Seconds from `run()` until the last fired.
    pub dispatch_s: f64,
    /// Seconds dropping the loop.
    pub cleanup_s: f64,
    /// init + dispatch + cleanup.
    pub total_s: f64,
    /// CPU seconds (user + system) of the process over the three phases.
    pub cpu_s: f64,
    /// The largest timeout, seconds (a floor under `dispatch_s`).
    pub last_timeout_s: f64,
}

impl TimersReport {
    /// Did every timer fire exactly once?
    pub fn ok(&self) -> bool {
        self.fired == self.timers
    }

    /// The human table, in libuv's wording first.
    pub fn to_table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "netloop bench million_timers  ({} timers, timeouts 1 ms .. {:.0} ms rising 1 ms per {PER_MS})",
            super::report::group(self.timers),
            self.last_timeout_s * 1e3
        );
        let _ = writeln!(s, "  {:.2} seconds total", self.total_s);
        let _ = writeln!(s, "  {:.2} seconds init", self.init_s);
        let _ = writeln!(s, "  {:.2} seconds dispatch", self.dispatch_s);
        let _ = writeln!(s, "  {:.2} seconds cleanup", self.cleanup_s);
        let _ = writeln!(s, "  {:.2} seconds CPU", self.cpu_s);
        let _ = writeln!(
            s,
            "  fired {} of {}",
            super::report::group(self.fired),
            super::report::group(self.timers)
        );
        s
    }
}

/// What the service leaves behind: callbacks run, and when arming ended.
type Tally = Rc<Cell<(u64, Option<Instant>)>>;

/// The service: arms every timer at start, counts callbacks.
struct Arm {
    n: u64,
    fired: u64,
    out: Tally,
}

impl Service for Arm {
    type Conn = ();
    type Tag = ();
    type Message = ();

    fn on_start(&mut self, cx: &mut Cx<'_, Self>) {
        for i in 0..self.n {
            cx.set_timeout(timeout_of(i), ());
        }
        self.out.set((0, Some(Instant::now())));
    }

    fn on_data(&mut self, _: &mut Cx<'_, Self>, _: ConnId, _: &mut (), data: &mut BytesMut) {
        // No connection is ever opened.
        data.clear();
    }

    fn on_timer(&mut self, _cx: &mut Cx<'_, Self>, _t: TimerId, _tag: ()) {
        self.fired += 1;
    }
}

impl Drop for Arm {
    fn drop(&mut self) {
        let (_, armed_at) = self.out.get();
        self.out.set((self.fired, armed_at));
    }
}

/// Arm, fire and free `n` timers on a fresh loop.
pub fn measure(n: u64) -> std::io::Result<TimersReport> {
    if n == 0 || n > MAX_TIMERS {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("--timers must be 1 ..= {MAX_TIMERS}"),
        ));
    }
    let cpu0 = procstat::sample("self").map(|s| s.cpu).unwrap_or_default();
    let out: Tally = Rc::new(Cell::new((0, None)));
    let mut r = Reactor::new()?;
    // on_start (the arming) runs within add_service.
    let start = Instant::now();
    r.add_service(Arm {
        n,
        fired: 0,
        out: out.clone(),
    });
    r.run()?;
    let ran = Instant::now();
    drop(r);
    let end = Instant::now();
    let cpu1 = procstat::sample("self").map(|s| s.cpu).unwrap_or_default();
    let (fired, armed_at) = out.get();
    let armed_at = armed_at.unwrap_or(start);
    Ok(TimersReport {
        workload: "million_timers".into(),
        timers: n,
        fired,
        init_s: (armed_at - start).as_secs_f64(),
        dispatch_s: (ran - armed_at).as_secs_f64(),
        cleanup_s: (end - ran).as_secs_f64(),
        total_s: (end - start).as_secs_f64(),
        cpu_s: cpu1.saturating_sub(cpu0).as_secs_f64(),
        last_timeout_s: timeout_of(n - 1).as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_rise_one_ms_per_thousand_as_in_libuv() {
        assert_eq!(timeout_of(0), Duration::from_millis(1));
        assert_eq!(timeout_of(999), Duration::from_millis(1));
        assert_eq!(timeout_of(1000), Duration::from_millis(2));
        assert_eq!(
            timeout_of(DEFAULT_TIMERS - 1),
            Duration::from_millis(10_000)
        );
    }

    #[test]
    fn every_timer_fires_once() {
        let rep = measure(5_000).expect("run");
        assert!(rep.ok(), "{rep:?}");
        assert_eq!(rep.fired, 5_000);
        // The last timer is due 5 ms after the loop's time when arming
        // began (as in libuv, deadlines count from the loop's cached time):
        // arming and dispatch together cannot be shorter, give or take the
        // millisecond a deadline is rounded to.
        assert!(rep.init_s + rep.dispatch_s >= 0.004, "{rep:?}");
        assert!(measure(0).is_err() && measure(MAX_TIMERS + 1).is_err());
    }
}
