//! Always-on observation of the loop: loop delay, slow callbacks, and the
//! time each service keeps the loop busy.
//!
//! # Loop delay without a sampling timer
//!
//! Node's `monitorEventLoopDelay` arms a timer and measures how late it
//! fires; the timer itself keeps an idle loop waking up and biases the count
//! towards idle iterations (nodejs/node #56064; Node moved to a per-iteration
//! measurement in nodejs/node #62935). Here nothing is armed. Two histograms
//! are fed from clock reads the loop already makes:
//!
//! * **iteration busy time**: from the return of one `poll` to the start of
//!   the next, i.e. everything the loop did in between. An event that
//!   became ready just after `poll` returned waited exactly this long before
//!   the loop could see it, so this is the worst delay an I/O event suffered
//!   in that iteration. One sample per iteration that polled; in
//!   nanoseconds.
//! * **timer delay**: how late *every* timer fired after its deadline,
//!   application timers and the loop's own (idle timeouts, connect
//!   timeouts, accept backoff, shutdown grace); in microseconds.
//!
//! # The callback boundary: one clock read
//!
//! Every service callback passes through `Reactor::with_host_raw`. After
//! the callback returns the loop reads the clock once and charges the time
//! since the previous boundary mark (the last callback's end, or the last
//! phase boundary the loop measured, or the return of `poll`) to the
//! callback's service. The charged time is therefore the callback plus the
//! loop's own work for the event that led to it (the `read` that delivered
//! the data, say): an upper bound of the callback's own time, and the right
//! figure for "which service keeps the loop busy". No second clock read is
//! made before the callback, so the cost when nothing is slow is one
//! `Instant::now()` (~25 ns with the vDSO), a subtraction, a compare and
//! three additions.
//!
//! A callback whose charged time reaches the slow-callback threshold
//! ([`DEFAULT_SLOW_CALLBACK`], `--slow-callback`) is counted by event and by
//! service, logged once (target `netloop::slow`) with its event, phase,
//! service, connection and peer, and kept among the [`SLOW_KEEP`] slowest of
//! the last [`SLOW_WINDOW`].
//!
//! # Contract
//!
//! Written by the loop thread only, read through `Reactor::observer()`.
//! Allocates only when a service is added and when a callback is slow.

use super::histogram::Histogram;
use super::stats::Phase;
use super::token::{ConnId, Key};
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

/// Default slow-callback threshold: a callback that holds the loop this
/// long delays every other connection by as much (Node's `blocked-at` and
/// most APM agents default to tens of milliseconds; 50 ms is well above any
/// healthy callback and well below what a user notices twice).
pub const DEFAULT_SLOW_CALLBACK: Duration = Duration::from_millis(50);

/// Slow callbacks kept for `/stats`: enough for a table on one screen.
pub const SLOW_KEEP: usize = 20;

/// Slow callbacks older than this leave the table (it shows what is slow
/// now, not since the start; the counters keep the totals).
pub const SLOW_WINDOW: Duration = Duration::from_secs(60);

/// Which callback of a service ran.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Callback {
    /// `on_connection` (a server accepted).
    Connection,
    /// `on_lookup`.
    Lookup,
    /// `on_connect`.
    Connect,
    /// `on_data`.
    Data,
    /// `on_end`.
    End,
    /// `on_drain`.
    Drain,
    /// `on_timeout` (idle timeout).
    Timeout,
    /// `on_error` and `on_close` of a connection (delivered together).
    Close,
    /// `on_error` of a connection outside the close phase.
    Error,
    /// `on_listening`, `on_drop`, `on_server_error`, `on_server_close`.
    Server,
    /// `on_timer`.
    Timer,
    /// `on_immediate`.
    Immediate,
    /// `on_fd_readable`.
    Fd,
    /// `on_message`.
    Message,
    /// `on_shutdown`.
    Shutdown,
}

/// Number of [`Callback`] kinds.
pub const CALLBACKS: usize = 15;

impl Callback {
    /// Every kind, in declaration order (index = `self as usize`).
    pub const ALL: [Callback; CALLBACKS] = [
        Callback::Connection,
        Callback::Lookup,
        Callback::Connect,
        Callback::Data,
        Callback::End,
        Callback::Drain,
        Callback::Timeout,
        Callback::Close,
        Callback::Error,
        Callback::Server,
        Callback::Timer,
        Callback::Immediate,
        Callback::Fd,
        Callback::Message,
        Callback::Shutdown,
    ];

    /// Stable lower-case name (log lines, metric labels, JSON).
    pub fn name(self) -> &'static str {
        match self {
            Callback::Connection => "connection",
            Callback::Lookup => "lookup",
            Callback::Connect => "connect",
            Callback::Data => "data",
            Callback::End => "end",
            Callback::Drain => "drain",
            Callback::Timeout => "timeout",
            Callback::Close => "close",
            Callback::Error => "error",
            Callback::Server => "server",
            Callback::Timer => "timer",
            Callback::Immediate => "immediate",
            Callback::Fd => "fd",
            Callback::Message => "message",
            Callback::Shutdown => "shutdown",
        }
    }
}

/// Where a callback runs: its kind and, for a connection's, the connection.
#[derive(Copy, Clone, Debug)]
pub(crate) struct Site {
    pub(crate) event: Callback,
    pub(crate) conn: Option<ConnId>,
}

impl Site {
    pub(crate) fn of(event: Callback) -> Site {
        Site { event, conn: None }
    }
    pub(crate) fn conn(event: Callback, conn: ConnId) -> Site {
        Site {
            event,
            conn: Some(conn),
        }
    }
}

/// One slow callback, as the log line and `/stats` show it.
#[derive(Clone, Debug)]
pub struct SlowCallback {
    /// Wall-clock time the callback ended.
    pub at: SystemTime,
    /// Loop time the callback ended (for the window).
    pub ended: Instant,
    /// Time charged to it (see the module docs).
    pub took: Duration,
    /// Which callback.
    pub event: Callback,
    /// The loop phase it ran in.
    pub phase: Phase,
    /// Its service's [`crate::Service::name`].
    pub service: &'static str,
    /// Its connection, for a connection's callback.
    pub conn: Option<ConnId>,
    /// That connection's peer, if known.
    pub peer: Option<SocketAddr>,
}

/// Time a service kept the loop busy.
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceTime {
    /// [`crate::Service::name`].
    pub name: &'static str,
    /// Time charged to its callbacks.
    pub busy: Duration,
    /// Callbacks run.
    pub callbacks: u64,
    /// Of which slow.
    pub slow: u64,
}

impl ServiceTime {
    fn new(name: &'static str) -> ServiceTime {
        ServiceTime {
            name,
            busy: Duration::ZERO,
            callbacks: 0,
            slow: 0,
        }
    }
    fn add(&mut self, o: &ServiceTime) {
        self.busy += o.busy;
        self.callbacks += o.callbacks;
        self.slow += o.slow;
    }
}

/// The loop's always-on observation (see the module docs).
#[derive(Debug)]
pub struct Observer {
    /// The last boundary at which the clock was read.
    pub(crate) mark: Instant,
    /// When the last `poll` returned.
    pub(crate) poll_end: Instant,
    /// The phase running now.
    pub(crate) phase: Phase,
    /// Slow-callback threshold; `None` = off.
    pub(crate) slow_threshold: Option<Duration>,
    /// Busy time of each iteration, in ns.
    pub iteration_busy_ns: Histogram,
    /// Lateness of every timer, in µs.
    pub timer_delay_us: Histogram,
    /// Slow callbacks since start, by [`Callback`] index.
    pub slow_by_event: [u64; CALLBACKS],
    /// Slow callbacks since start.
    pub slow_total: u64,
    /// The slowest recent ones, at most [`SLOW_KEEP`].
    recent: Vec<SlowCallback>,
    /// Per service, by the index of its key: its generation and figures.
    services: Vec<Option<(u32, ServiceTime)>>,
    /// Figures of services whose slot was reused by another.
    retired: Vec<ServiceTime>,
}

impl Observer {
    pub(crate) fn new(now: Instant) -> Observer {
        Observer {
            mark: now,
            poll_end: now,
            phase: Phase::Timers,
            slow_threshold: Some(DEFAULT_SLOW_CALLBACK),
            iteration_busy_ns: Histogram::new(),
            timer_delay_us: Histogram::new(),
            slow_by_event: [0; CALLBACKS],
            slow_total: 0,
            recent: Vec::new(),
            services: Vec::new(),
            retired: Vec::new(),
        }
    }

    /// The slow-callback threshold (`None` = off).
    pub fn slow_threshold(&self) -> Option<Duration> {
        self.slow_threshold
    }

    /// A `poll` starts at `t`: the iteration's busy time is known.
    #[inline]
    pub(crate) fn poll_start(&mut self, t: Instant) {
        let busy = t.saturating_duration_since(self.poll_end);
        self.iteration_busy_ns
            .record(busy.as_nanos().min(u64::MAX as u128) as u64);
    }

    /// A timer due at `deadline` fired at `now`.
    #[inline]
    pub(crate) fn timer_fired(&mut self, late: Duration) {
        self.timer_delay_us
            .record(late.as_micros().min(u64::MAX as u128) as u64);
    }

    /// A callback of `svc` ended at `t`: charge it. `name` is asked only
    /// the first time a service is seen. Returns the time charged when it
    /// is slow.
    #[inline]
    pub(crate) fn charge(
        &mut self,
        svc: Key,
        name: impl FnOnce() -> &'static str,
        t: Instant,
    ) -> Option<Duration> {
        let took = t.saturating_duration_since(self.mark);
        self.mark = t;
        let i = svc.index as usize;
        if i >= self.services.len() {
            self.services.resize(i + 1, None);
        }
        let entry = &mut self.services[i];
        match entry {
            Some((gen, _)) if *gen == svc.gen => {}
            _ => {
                if let Some((_, old)) = entry.take() {
                    self.retired.push(old);
                }
                *entry = Some((svc.gen, ServiceTime::new(name())));
            }
        }
        let (_, st) = entry.as_mut()?;
        st.busy += took;
        st.callbacks += 1;
        match self.slow_threshold {
            Some(limit) if took >= limit => {
                st.slow += 1;
                Some(took)
            }
            _ => None,
        }
    }

    /// Count and keep a slow callback.
    pub(crate) fn record_slow(&mut self, s: SlowCallback) {
        self.slow_total += 1;
        self.slow_by_event[s.event as usize] += 1;
        let now = s.ended;
        self.recent
            .retain(|r| now.saturating_duration_since(r.ended) < SLOW_WINDOW);
        self.recent.push(s);
        if self.recent.len() > SLOW_KEEP {
            if let Some((i, _)) = self.recent.iter().enumerate().min_by_key(|(_, r)| r.took) {
                self.recent.swap_remove(i);
            }
        }
    }

    /// The slowest callbacks of the last [`SLOW_WINDOW`] before `now`,
    /// slowest first.
    pub fn slowest(&self, now: Instant) -> Vec<SlowCallback> {
        let mut v: Vec<SlowCallback> = self
            .recent
            .iter()
            .filter(|r| now.saturating_duration_since(r.ended) < SLOW_WINDOW)
            .cloned()
            .collect();
        v.sort_by_key(|r| std::cmp::Reverse(r.took));
        v
    }

    /// Busy time by service name (services of one name added up), busiest
    /// first.
    pub fn services(&self) -> Vec<ServiceTime> {
        let mut out: Vec<ServiceTime> = Vec::new();
        let all = self
            .services
            .iter()
            .filter_map(|e| e.as_ref().map(|(_, s)| s))
            .chain(self.retired.iter());
        for s in all {
            match out.iter_mut().find(|o| o.name == s.name) {
                Some(o) => o.add(s),
                None => out.push(s.clone()),
            }
        }
        out.sort_by(|a, b| b.busy.cmp(&a.busy).then(a.name.cmp(b.name)));
        out
    }
}

impl super::Reactor {
    /// Log callbacks that hold the loop `threshold` or longer (`None` or
    /// zero: off), count them and keep the slowest
    /// ([`DEFAULT_SLOW_CALLBACK`] until set).
    pub fn set_slow_callback(&mut self, threshold: Option<Duration>) {
        self.observe.slow_threshold = threshold.filter(|d| !d.is_zero());
    }

    /// Loop delay, slow callbacks and busy time by service.
    pub fn observer(&self) -> &Observer {
        &self.observe
    }

    /// A slow callback of service `name` just ended: log it, count it,
    /// keep it. Off the hot path (only when a callback was slow).
    #[cold]
    #[inline(never)]
    pub(crate) fn slow_callback(&mut self, name: &'static str, site: Site, took: Duration) {
        let peer = site.conn.and_then(|c| self.conns.get(c.0)?.peer);
        let rec = SlowCallback {
            at: SystemTime::now(),
            ended: self.observe.mark,
            took,
            event: site.event,
            phase: self.observe.phase,
            service: name,
            conn: site.conn,
            peer,
        };
        log::warn!(target: "netloop::slow", "{}", format_slow(&rec));
        self.observe.record_slow(rec);
    }
}

/// The log line of a slow callback.
pub fn format_slow(s: &SlowCallback) -> String {
    use std::fmt::Write;
    let mut o = format!(
        "slow callback: {} took {:.1}ms in phase {}, service {}",
        s.event.name(),
        s.took.as_secs_f64() * 1e3,
        s.phase.name(),
        s.service
    );
    if let Some(c) = s.conn {
        let _ = write!(o, ", {c}");
    }
    if let Some(p) = s.peer {
        let _ = write!(o, ", peer {p}");
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(index: u32, gen: u32) -> Key {
        Key { index, gen }
    }

    #[test]
    fn callbacks_are_charged_from_the_last_mark() {
        let t0 = Instant::now();
        let mut o = Observer::new(t0);
        o.slow_threshold = Some(Duration::from_millis(10));
        assert_eq!(
            o.charge(key(3, 1), || "a", t0 + Duration::from_millis(2)),
            None
        );
        let slow = o.charge(key(3, 1), || "a", t0 + Duration::from_millis(20));
        assert_eq!(slow, Some(Duration::from_millis(18)));
        assert_eq!(
            o.charge(key(1, 1), || "b", t0 + Duration::from_millis(21)),
            None
        );
        let s = o.services();
        assert_eq!(s[0].name, "a");
        assert_eq!(s[0].busy, Duration::from_millis(20));
        assert_eq!((s[0].callbacks, s[0].slow), (2, 1));
        assert_eq!(s[1].busy, Duration::from_millis(1));
        // A reused slot keeps the old service's figures under its name.
        o.charge(key(3, 2), || "c", t0 + Duration::from_millis(22));
        let names: Vec<_> = o.services().iter().map(|s| s.name).collect();
        assert_eq!(names, ["a", "b", "c"]);
        o.slow_threshold = None;
        assert_eq!(
            o.charge(key(1, 1), || "b", t0 + Duration::from_secs(1)),
            None
        );
    }

    #[test]
    fn the_table_keeps_the_slowest_of_the_window() {
        let t0 = Instant::now();
        let mut o = Observer::new(t0);
        let rec = |ms: u64, at: Duration| SlowCallback {
            at: SystemTime::now(),
            ended: t0 + at,
            took: Duration::from_millis(ms),
            event: Callback::Data,
            phase: Phase::Dispatch,
            service: "s",
            conn: None,
            peer: None,
        };
        o.record_slow(rec(1000, Duration::ZERO));
        for i in 0..30u64 {
            o.record_slow(rec(50 + i, Duration::from_secs(61)));
        }
        assert_eq!(o.slow_total, 31);
        assert_eq!(o.slow_by_event[Callback::Data as usize], 31);
        let table = o.slowest(t0 + Duration::from_secs(62));
        assert_eq!(table.len(), SLOW_KEEP);
        // The 1000 ms one is older than the window: gone.
        assert_eq!(table[0].took, Duration::from_millis(79));
        assert_eq!(table[SLOW_KEEP - 1].took, Duration::from_millis(60));
        assert!(o.slowest(t0 + Duration::from_secs(200)).is_empty());
    }

    #[test]
    fn busy_time_runs_from_poll_end_to_poll_start() {
        let t0 = Instant::now();
        let mut o = Observer::new(t0);
        o.poll_start(t0 + Duration::from_micros(7));
        assert_eq!(o.iteration_busy_ns.count(), 1);
        assert_eq!(o.iteration_busy_ns.max(), 7_000);
        o.timer_fired(Duration::from_micros(1500));
        assert_eq!(o.timer_delay_us.max(), 1500);
    }
}
