//! The event loop: one `mio::Poll`, one thread, phases modelled on libuv.
//!
//! # One iteration
//!
//! | # | phase      | what runs                                              | libuv analogue            |
//! |---|------------|--------------------------------------------------------|---------------------------|
//! | 1 | timers     | due timers: `set_timeout`/`set_interval`, idle and connect timeouts, accept backoff, shutdown grace | timers (`uv__run_timers`) |
//! | 2 | ready      | connections and listeners parked on the ready list     | pending callbacks         |
//! | 3 | poll       | `epoll_wait`; timeout = 0 if any work is pending, else the next timer deadline rounded **up** to the ms, else infinite | poll (`uv__io_poll`) |
//! | 4 | dispatch   | the I/O events just returned: accept, connect, read, write | poll callbacks         |
//! | 5 | check      | callbacks queued with `set_immediate`                  | check (`setImmediate`)    |
//! | 6 | close      | `error` then `close` of connections closed this iteration; `close` of servers | closing handles |
//!
//! `now` is read once per iteration, when `poll` returns (libuv's
//! `uv_update_time`): every timestamp taken while dispatching, and the timers
//! of the next iteration, use that value. Timer ticks are milliseconds since
//! the loop started; deadlines round up, so a timer never fires early.
//!
//! # Edge triggering
//!
//! mio registers sockets edge-triggered. A connection is read until
//! `WouldBlock` or until its per-wakeup budget ([`config::READ_BUDGET_CALLS`],
//! [`config::READ_BUDGET_BYTES`]) is spent; in the second case it goes on the
//! [`ready_list`] and is served in phase 2 of the next iteration, with a zero
//! poll timeout meanwhile. Writes and the accept loop work the same way.
//! Readiness is cached per connection (`readable`, `writable`) so a paused
//! connection that is resumed can be read without waiting for an edge that
//! will never come (mio #1085, gnirehtet #208).
//!
//! # Who gets the events
//!
//! Every server and connection belongs to a [`Service`] ([`service`]): the
//! one that listened ([`Reactor::serve`], [`Cx::listen`]) or connected
//! ([`Reactor::connect_with`], [`Cx::connect`]). Its events, and the
//! service's own timers, immediates, watched descriptors and messages, go to
//! that service's callbacks with the connection's typed state.
//!
//! # What a callback may do
//!
//! Anything on the [`Reactor`] (a [`Cx`] dereferences to it): write to any
//! connection, end, destroy, pause, resume, close a server; and, through its
//! [`Cx`], what belongs to its service: listen, connect, arm and clear
//! timers, queue immediates, watch descriptors, hand out a [`Remote`].
//! Events those calls cause (`listening`, `drain`, the shutdown) are queued
//! and delivered after the callback returns, at its boundary
//! (`with_host`); a callback is never re-entered.
//!
//! # Counting
//!
//! The loop counts what it does in [`stats::LoopStats`] with plain field
//! increments, and times its phases with a clock read at the boundary of
//! each phase that did work (and always around `poll`).
//! The exporter (`metrics`, a layer above) turns that into a snapshot
//! (`Reactor::metrics`). `--trace-loop` ([`Reactor::set_trace_loop`]) logs one line per
//! iteration, rate-limited; `RUST_LOG=netloop::reactor=trace` logs every
//! event and iteration.

pub mod config;
pub mod conn;
pub mod histogram;
pub mod loopstats;
pub mod net;
pub mod ready_list;
pub mod remote;
pub mod service;
pub mod stats;
pub mod timers;
pub mod tls;
pub mod token;
pub mod trace;

mod api;
mod io;
mod prefetch;
mod read_buf;
mod shutdown;

use crate::reactor::conn::state::State;
use crate::reactor::conn::Conn;
use crate::reactor::net::server::Server;
use crate::timer::{Tick, Wheel};
use bytes::BytesMut;
use config::{ConnectOptions, ListenOptions};
use loopstats::{Callback, Observer, Site};
use mio::event::Event;
use mio::{Events, Poll, Token, Waker};
use ready_list::ReadyList;
use remote::Inbox;
use stats::{LoopStats, Phase, PhaseClock};
use std::collections::{HashMap, VecDeque};
use std::io as stdio;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};
use timers::{AppTimer, TimerEntry};
use token::{ConnId, GenCounter, GenSlab, Key, Kind, ServerId};

pub use prefetch::lines_of as prefetch_lines;
pub use remote::LoopHandle;
pub use service::{Cx, Remote, Service, ServiceId};
pub use timers::TimerId;

/// Where a connection's events go: its service, and the slot of its state.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Owner {
    pub(crate) service: Key,
    pub(crate) slot: u32,
}

/// An immediate queued for the check phase by a service: its key and the
/// slot of its tag.
#[derive(Copy, Clone, Debug)]
pub(crate) struct Immediate(pub(crate) Key, pub(crate) u32);

/// Who hears about a watched descriptor: a service's key and the slot of
/// its tag.
#[derive(Copy, Clone, Debug)]
pub(crate) struct Target(pub(crate) Key, pub(crate) u32);

/// System token index of the cross-thread waker.
const WAKER_INDEX: u32 = 0;
/// System token index of the signal source.
const SIGNAL_INDEX: u32 = 1;
/// System token indices from here on are watched descriptors.
const WATCH_BASE: u32 = 2;

/// Why [`Reactor::run`] returned.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Nothing was left to do: no server, connection, timer or lookup.
    Idle,
    /// [`Reactor::stop`] was called.
    Stopped,
    /// A graceful shutdown finished: every connection closed.
    Graceful,
    /// A second signal arrived during a graceful shutdown.
    Forced(i32),
}

/// Events queued by reactor operations, delivered after the current callback.
#[derive(Debug)]
pub(crate) enum Pending {
    Listening(ServerId, std::net::SocketAddr),
    Drain(ConnId),
    Shutdown,
}

/// The event loop and everything it owns except the services' own state.
pub struct Reactor {
    pub(crate) poll: Poll,
    pub(crate) events: Events,
    pub(crate) conns: GenSlab<Conn>,
    pub(crate) servers: GenSlab<Server>,
    /// Services added to the loop; an entry is `None` while its callback runs.
    pub(crate) services: GenSlab<Option<Box<dyn service::Host>>>,
    pub(crate) gens: GenCounter,
    pub(crate) wheel: Wheel<TimerEntry>,
    pub(crate) epoch: Instant,
    pub(crate) now: Instant,
    pub(crate) now_tick: Tick,
    pub(crate) ready: ReadyList,
    pub(crate) pending: VecDeque<Pending>,
    pub(crate) immediates: VecDeque<Immediate>,
    pub(crate) closing: Vec<Key>,
    pub(crate) closing_servers: Vec<Key>,
    /// Connections with bytes queued by callbacks of the current phase,
    /// written at the end of the phase ([`Reactor::flush_written`]).
    pub(crate) flush_list: Vec<Key>,
    /// The connection whose `data` callback is running: a write to it may
    /// go to the socket at once (a reply); writes to any other connection
    /// wait for the end of the phase.
    pub(crate) current: Option<Key>,
    /// The loop's read buffer: `read()` lands here, in uninitialised
    /// capacity (no zeroing, no copy), and the filled buffer is handed to the
    /// connection whole when its own buffer is empty, the common case. An
    /// emptied connection buffer comes back as the next one (at most
    /// [`config::SPARE_READ_BUFFER_MAX`]), so idle connections hold no read
    /// memory and a small echo allocates nothing.
    pub(crate) read_buf: BytesMut,
    /// TLS connections decrypt into this spare buffer and hand it over, as
    /// plain ones hand over `read_buf` (which keeps the ciphertext): no
    /// allocation (and, above malloc's mmap threshold, no mmap) per read.
    pub(crate) plain_spare: BytesMut,
    pub(crate) app_timers: slab::Slab<AppTimer>,
    pub(crate) next_timer_id: u64,
    pub(crate) waker: Arc<Waker>,
    pub(crate) inbox_tx: Sender<Inbox>,
    pub(crate) inbox_rx: Receiver<Inbox>,
    pub(crate) resolver: Option<Sender<crate::reactor::net::connect::LookupJob>>,
    pub(crate) pending_lookups: usize,
    pub(crate) signals: Option<signal_hook_mio::v1_0::Signals>,
    pub(crate) signal_grace: Duration,
    pub(crate) draining: bool,
    pub(crate) stop: Option<Exit>,
    pub(crate) spare_fd: Option<std::fs::File>,
    pub(crate) watched: slab::Slab<(std::os::fd::RawFd, Target)>,
    pub(crate) stats: LoopStats,
    pub(crate) clock: PhaseClock,
    /// Loop delay, slow callbacks, busy time by service ([`loopstats`]).
    pub(crate) observe: Observer,
    /// Pipes waiting for a drain: destination -> the source
    /// [`Reactor::pipe_write`] paused, resumed at the destination's `drain`.
    pub(crate) piped: HashMap<Key, Key>,
    /// Events returned by the last poll (dispatched in phase 4).
    pub(crate) polled: u64,
    pub(crate) trace: Option<trace::TraceLimiter>,
}

impl std::fmt::Debug for Reactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reactor")
            .field("conns", &self.conns.len())
            .field("servers", &self.servers.len())
            .field("timers", &self.wheel.len())
            .field("ready", &self.ready.len())
            .finish()
    }
}

impl Reactor {
    /// A new loop. Nothing is registered yet.
    pub fn new() -> stdio::Result<Reactor> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(
            poll.registry(),
            Key {
                index: WAKER_INDEX,
                gen: 0,
            }
            .token(Kind::System),
        )?);
        let (inbox_tx, inbox_rx) = std::sync::mpsc::channel();
        let now = Instant::now();
        Ok(Reactor {
            poll,
            events: Events::with_capacity(config::EVENTS_CAPACITY),
            conns: GenSlab::default(),
            servers: GenSlab::default(),
            services: GenSlab::default(),
            gens: GenCounter::default(),
            wheel: Wheel::new(),
            epoch: now,
            now,
            now_tick: 0,
            ready: ReadyList::default(),
            pending: VecDeque::new(),
            immediates: VecDeque::new(),
            closing: Vec::new(),
            closing_servers: Vec::new(),
            flush_list: Vec::new(),
            current: None,
            read_buf: BytesMut::with_capacity(config::READ_CHUNK),
            plain_spare: BytesMut::new(),
            app_timers: slab::Slab::new(),
            next_timer_id: 1,
            waker,
            inbox_tx,
            inbox_rx,
            resolver: None,
            pending_lookups: 0,
            signals: None,
            signal_grace: config::DEFAULT_GRACE,
            draining: false,
            stop: None,
            // Reserve descriptor for the EMFILE trick (libuv uv__emfile_trick).
            spare_fd: std::fs::File::open("/dev/null").ok(),
            watched: slab::Slab::new(),
            stats: LoopStats::default(),
            clock: PhaseClock::new(now),
            observe: Observer::new(now),
            polled: 0,
            piped: HashMap::new(),
            trace: None,
        })
    }

    /// Run until there is nothing left to do, [`Reactor::stop`] is called, or
    /// a graceful shutdown completes. Events go to the services that own
    /// the servers and connections ([`Reactor::serve`],
    /// [`Reactor::connect_with`]).
    pub fn run(&mut self) -> stdio::Result<Exit> {
        loop {
            if let Some(exit) = self.run_loop(None)? {
                return Ok(exit);
            }
        }
    }

    /// [`Reactor::run`] until `deadline` at the latest: `Ok(None)` when the
    /// deadline came first (the loop can be run again later; nothing is
    /// lost meanwhile, the kernel keeps what arrives), else why it returned.
    /// The poll never waits past the deadline (rounded up to the ms).
    ///
    /// For a caller with its own periodic work on the loop's thread, instead
    /// of a second thread: `netloop bench` runs its first share of the load
    /// this way and samples its counters between slices, so a one-thread
    /// run is a one-thread process (libc and the kernel skip the locking a
    /// second thread forces on every system call).
    pub fn run_until(&mut self, deadline: Instant) -> stdio::Result<Option<Exit>> {
        self.run_loop(Some(deadline))
    }

    /// The loop of [`Reactor::run`]: one line per phase, as `uv_run`.
    fn run_loop(&mut self, deadline: Option<Instant>) -> stdio::Result<Option<Exit>> {
        self.update_now();
        self.clock.mark = self.now;
        self.observe.mark = self.now;
        self.observe.poll_end = self.now;
        self.clock.measure_all = self.trace.is_some()
            || log::log_enabled!(target: "netloop::reactor", log::Level::Trace);
        loop {
            if let Some(exit) = self.exit_reason() {
                return Ok(Some(exit));
            }
            if deadline.is_some_and(|d| self.now >= d) {
                return Ok(None);
            }
            self.begin_iteration();
            let fired = self.phase(Phase::Timers, Self::run_timers); // 1
            let ready = self.phase(Phase::Ready, Self::run_ready); // 2
            let Some(events) = self.poll_io(deadline)? else {
                // Nothing left to wait for, or stop(): back to the top.
                self.end_iteration(fired, ready, 0);
                continue;
            }; // 3
            self.phase(Phase::Dispatch, Self::dispatch_events); // 4
            self.phase(Phase::Check, Self::run_immediates); // 5
            self.phase(Phase::Close, Self::run_closing); // 6
            self.end_iteration(fired, ready, events);
        }
    }

    /// Why the loop should return now, if it should: deferred callbacks of
    /// the last iteration are delivered (and what they wrote flushed) first.
    fn exit_reason(&mut self) -> Option<Exit> {
        self.deliver_pending();
        self.flush_written();
        if let Some(exit) = self.stop.take() {
            return Some(exit);
        }
        if self.draining && self.conns.is_empty() && self.closing_servers.is_empty() {
            self.servers = GenSlab::default();
            return Some(Exit::Graceful);
        }
        if !self.is_alive() {
            return Some(Exit::Idle);
        }
        None
    }

    #[inline]
    fn begin_iteration(&mut self) {
        self.stats.iterations += 1;
        self.polled = 0;
        if self.clock.measure_all {
            self.stats.last.phase_time = [Duration::ZERO; 6];
        }
    }

    /// Run one phase: its callbacks, then the writes they queued leave
    /// (one `writev` per connection), then its time is charged to it if it
    /// did work. Returns how much work it did.
    #[inline]
    fn phase(&mut self, p: Phase, run: fn(&mut Reactor) -> u64) -> u64 {
        self.observe.phase = p;
        let worked = run(self);
        self.flush_written();
        // The ready phase is charged by the clock read that starts the poll.
        if p != Phase::Ready {
            self.phase_done(p, worked > 0);
        }
        worked
    }

    /// Phase 3: wait for I/O, unless the phases before finished the last
    /// work (an infinite poll with nothing registered would never return).
    /// Timeout: 0 if anything is pending, else the next timer deadline
    /// rounded up to the ms, else infinite; never past `deadline`. Returns
    /// the number of events, or `None` when the poll was skipped.
    fn poll_io(&mut self, deadline: Option<Instant>) -> stdio::Result<Option<u64>> {
        let t0 = Instant::now();
        self.phase_at(Phase::Ready, t0);
        if !self.is_alive() || self.stop.is_some() {
            return Ok(None);
        }
        self.observe.poll_start(t0);
        let mut timeout = self.poll_timeout();
        if let Some(d) = deadline {
            let left = d.saturating_duration_since(t0);
            let left = Duration::from_millis(left.as_nanos().div_ceil(1_000_000) as u64);
            timeout = Some(timeout.map_or(left, |t| t.min(left)));
        }
        match self.poll.poll(&mut self.events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == stdio::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        self.update_now();
        self.stats.poll_blocked += self.now.saturating_duration_since(t0);
        self.phase_at(Phase::Poll, self.now);
        self.observe.poll_end = self.now;
        self.polled = self.events.iter().count() as u64;
        Ok(Some(self.polled))
    }

    /// Phase 4: the I/O events the poll returned.
    fn dispatch_events(&mut self) -> u64 {
        if self.polled == 0 {
            return 0;
        }
        let events = std::mem::replace(&mut self.events, Events::with_capacity(0));
        // Fetch ahead ([`prefetch`]): the entry of the event three on, the
        // state slot of the one two on, what the next one's state refers to.
        // A batch of one (a lightly loaded server) has nothing ahead.
        let mut ahead = (self.polled > 1).then(|| (events.iter().skip(3), events.iter().skip(2)));
        // The owner of the next event, looked up one event ago.
        let mut next_owner = None;
        for event in events.iter() {
            if let Some((entry, slot)) = ahead.as_mut() {
                next_owner = self.prefetch_conns(entry.next(), slot.next(), next_owner);
            }
            // One relaxed atomic load unless trace is on.
            log::trace!(
                target: "netloop::reactor",
                "event token={} readable={} writable={} error={} read_closed={}",
                event.token().0,
                event.is_readable(),
                event.is_writable(),
                event.is_error(),
                event.is_read_closed()
            );
            self.dispatch(event);
            // Callbacks deliver what they caused at their boundary
            // (`with_host`); this is for what an event caused without one: a
            // writable socket flushed below its mark (`drain`), a signal
            // (the shutdown). An empty queue costs a compare.
            self.deliver_pending();
        }
        self.events = events;
        let n = self.polled;
        self.stats.events += n;
        self.stats.events_per_iteration.record(n);
        n
    }

    /// A phase ended: charge the time since the last boundary to it, if it
    /// did work or every boundary is measured (see [`stats`]).
    #[inline]
    fn phase_done(&mut self, p: Phase, worked: bool) {
        if worked || self.clock.measure_all {
            self.phase_at(p, Instant::now());
        }
    }

    #[inline]
    fn phase_at(&mut self, p: Phase, t: Instant) {
        let d = t.saturating_duration_since(self.clock.mark);
        self.stats.phase_time[p as usize] += d;
        if self.clock.measure_all {
            self.stats.last.phase_time[p as usize] += d;
        }
        self.clock.mark = t;
        self.observe.mark = t;
    }

    /// Bookkeeping after an iteration: the `--trace-loop` line and the
    /// `trace` detail.
    #[inline]
    fn end_iteration(&mut self, fired: u64, ready_served: u64, events: u64) {
        if !self.clock.measure_all {
            return;
        }
        let last = &mut self.stats.last;
        last.iteration = self.stats.iterations;
        last.events = events;
        last.timers_fired = fired;
        last.ready_served = ready_served as usize;
        last.ready_len = self.ready.len();
        let mut logged = false;
        if let Some(t) = self.trace.as_mut() {
            if let Some(suppressed) = t.admit(self.clock.mark) {
                log::info!(
                    target: "netloop::trace",
                    "{}",
                    trace::format_line(&self.stats.last, suppressed)
                );
                logged = true;
            }
        }
        if log::log_enabled!(target: "netloop::reactor", log::Level::Trace) {
            log::trace!(
                target: "netloop::reactor",
                "iteration {} done: conns={} timers={} immediates={} {}",
                self.stats.iterations,
                self.conns.len(),
                self.wheel.len(),
                self.immediates.len(),
                trace::format_line(&self.stats.last, 0)
            );
            logged = true;
        }
        if logged {
            // Writing the line is not the next iteration's timers phase,
            // nor its first callback.
            self.clock.mark = Instant::now();
            self.observe.mark = self.clock.mark;
        }
    }

    /// Print one line per iteration (at most
    /// [`trace::MAX_LINES_PER_SEC`] a second; the rest are
    /// counted and the count is shown on the next line printed). Takes
    /// effect at the next [`Reactor::run`].
    pub fn set_trace_loop(&mut self, on: bool) {
        self.trace = on.then(trace::TraceLimiter::default);
    }

    /// Make [`Reactor::run`] return after the current callback.
    pub fn stop(&mut self) {
        self.stop = Some(Exit::Stopped);
    }

    /// The loop's cached time (read once per iteration).
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Counters kept by the loop.
    pub fn stats(&self) -> &LoopStats {
        &self.stats
    }

    /// Number of live connections (including ones closing this iteration).
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// Ids of all live connections.
    pub fn connection_ids(&self) -> Vec<ConnId> {
        self.conns.keys().map(ConnId).collect()
    }

    /// Connections paused (reading stopped) now, by `pause()`.
    pub fn paused_count(&self) -> usize {
        self.conns.iter().filter(|(_, c)| c.paused).count()
    }

    /// Servers whose accepting is paused now (descriptor exhaustion backoff).
    pub fn accept_paused_count(&self) -> usize {
        self.servers.iter().filter(|(_, s)| s.accept_paused).count()
    }

    /// Application timers armed now.
    pub fn app_timer_count(&self) -> usize {
        self.app_timers.len()
    }

    /// Connections by lifecycle state, indexed like [`State::NAMES`].
    pub fn connections_by_state(&self) -> [usize; 6] {
        let mut counts = [0; 6];
        for (_, c) in self.conns.iter() {
            counts[c.state.index()] += 1;
        }
        counts
    }

    /// Bytes queued for writing across all connections now (kept as a
    /// running total by `write`, `flush` and `close`).
    pub fn queued_bytes(&self) -> usize {
        self.stats.queued_bytes as usize
    }

    /// Length of the ready list now.
    pub fn ready_len(&self) -> usize {
        self.ready.len()
    }

    /// Armed timers of every kind.
    pub fn timer_count(&self) -> usize {
        self.wheel.len()
    }

    fn update_now(&mut self) {
        self.now = Instant::now();
        self.now_tick = self.now.saturating_duration_since(self.epoch).as_millis() as Tick;
    }

    /// Tick at which something `after` from now is due, rounded up, and never
    /// the current tick (so it fires in a later iteration, as Node clamps
    /// `setTimeout(0)` to 1 ms).
    pub(crate) fn deadline_after(&self, after: Duration) -> Tick {
        let at = self
            .now
            .saturating_duration_since(self.epoch)
            .saturating_add(after);
        let ms = timers::ms_ceil(at);
        ms.max(self.now_tick + 1)
    }

    fn is_alive(&self) -> bool {
        !self.conns.is_empty()
            || !self.servers.is_empty()
            || !self.app_timers.is_empty()
            || !self.immediates.is_empty()
            || !self.pending.is_empty()
            || !self.closing.is_empty()
            || !self.closing_servers.is_empty()
            || self.pending_lookups > 0
            || !self.watched.is_empty()
    }

    fn poll_timeout(&self) -> Option<Duration> {
        if !self.ready.is_empty()
            || !self.flush_list.is_empty()
            || !self.immediates.is_empty()
            || !self.closing.is_empty()
            || !self.closing_servers.is_empty()
            || !self.pending.is_empty()
            || self.stop.is_some()
        {
            return Some(Duration::ZERO);
        }
        let deadline = self.wheel.next_deadline()?;
        let target = Duration::from_millis(deadline);
        let since = self.now.saturating_duration_since(self.epoch);
        let wait = target.saturating_sub(since);
        // Round up to whole ms: a sub-ms timeout truncated to 0 busy-loops
        // (mio PRs #1615/#1616).
        Some(Duration::from_millis(
            wait.as_nanos().div_ceil(1_000_000) as u64
        ))
    }

    fn dispatch(&mut self, event: &mio::event::Event) {
        let Some((kind, key)) = Key::from_token(event.token()) else {
            return;
        };
        match kind {
            Kind::Conn => {
                // Errors and hang-ups are reported as both: the read or the
                // write that follows surfaces the real error. The closed
                // flags are hints only (mio PR #1110).
                let err = event.is_error();
                let readable = event.is_readable() || event.is_read_closed() || err;
                let writable = event.is_writable() || event.is_write_closed() || err;
                let fin_hint = event.is_read_closed() || err;
                // Write readiness with no error or hang-up flag: for a
                // connecting socket, the handshake finished (tcp_poll sets
                // EPOLLERR with every failed connect).
                let clean_write = event.is_writable() && !err && !event.is_write_closed();
                self.conn_event(key, readable, writable, fin_hint, clean_write);
            }
            Kind::Listener => self.accept(key),
            Kind::System => match key.index {
                WAKER_INDEX => self.drain_inbox(),
                SIGNAL_INDEX => self.handle_signals_event(),
                i => {
                    let slot = (i - WATCH_BASE) as usize;
                    if let Some(&(_, Target(svc, slot))) = self.watched.get(slot) {
                        self.with_host(svc, Site::of(Callback::Fd), |host, r| {
                            host.fd_readable(r, slot)
                        });
                    }
                }
            },
        }
    }

    /// Start fetching, for events still to come, the connection entry of
    /// `entry`, the owning service's state slot of `slot` (whose entry was
    /// asked for one event earlier) and, for the event whose owner is
    /// `state` (looked up one event earlier, its slot asked for then), what
    /// its state refers to ([`Service::prefetch`]). Returns the owner of
    /// `slot`, to pass as `state` with the next event: each owner is looked
    /// up once. Hints only: see [`prefetch`]; an owner gone stale since
    /// costs a useless fetch.
    #[inline]
    fn prefetch_conns(
        &self,
        entry: Option<&Event>,
        slot: Option<&Event>,
        state: Option<Owner>,
    ) -> Option<Owner> {
        if let Some((Kind::Conn, key)) = entry.and_then(|e| Key::from_token(e.token())) {
            self.conns.prefetch(key.index, conn::HOT_LINES);
        }
        let host = |o: Owner| self.services.get(o.service)?.as_deref();
        if let Some(o) = state {
            if let Some(h) = host(o) {
                h.prefetch_state(o.slot);
            }
        }
        let owner = match slot.and_then(|e| Key::from_token(e.token())) {
            Some((Kind::Conn, key)) => self.conns.get(key)?.owner?,
            _ => return None,
        };
        host(owner)?.prefetch_slot(owner.slot);
        Some(owner)
    }

    fn conn_event(
        &mut self,
        key: Key,
        readable: bool,
        writable: bool,
        fin_hint: bool,
        clean_write: bool,
    ) {
        let Some(c) = self.conns.get_mut(key) else {
            return; // stale token: the slot was freed (mio #219)
        };
        c.fin_hint = fin_hint;
        if c.state == State::Closed {
            return;
        }
        if c.state == State::Connecting {
            if c.stream.is_some() && (readable || writable) {
                self.finish_connect(key, clean_write, readable);
            }
            return;
        }
        if writable {
            c.writable = true;
            if !c.wq.is_empty() {
                self.flush(key);
            }
        }
        if readable {
            if let Some(c) = self.conns.get_mut(key) {
                c.readable = true;
                self.read(key);
            }
        }
    }

    /// Put a connection or listener on the ready list (once).
    pub(crate) fn park(&mut self, kind: Kind, key: Key) {
        let flag = match kind {
            Kind::Conn => self.conns.get_mut(key).map(|c| &mut c.in_ready),
            Kind::Listener => self.servers.get_mut(key).map(|s| &mut s.in_ready),
            Kind::System => None,
        };
        if let Some(flag) = flag {
            if !*flag {
                *flag = true;
                self.ready.push(kind, key);
                self.stats.ready_parks += 1;
            }
        }
    }

    fn run_ready(&mut self) -> u64 {
        if self.ready.is_empty() {
            return 0;
        }
        let n = self.ready.len() as u64;
        let mut batch = self.ready.take_batch();
        while let Some((kind, key)) = batch.pop_front() {
            match kind {
                Kind::Conn => self.serve_ready_conn(key),
                Kind::Listener => {
                    if let Some(s) = self.servers.get_mut(key) {
                        s.in_ready = false;
                        self.accept(key);
                    }
                }
                Kind::System => {}
            }
            // A parked connection's flush may have caused a `drain`
            // without any callback running (see `dispatch_events`).
            self.deliver_pending();
        }
        self.ready.recycle(batch);
        n
    }

    fn serve_ready_conn(&mut self, key: Key) {
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        c.in_ready = false;
        if c.state == State::Closed || c.state == State::Connecting {
            return;
        }
        if c.writable && !c.wq.is_empty() {
            self.flush(key);
        }
        // Redelivery after resume() first, then the socket (see `read`).
        self.read(key);
    }

    fn run_immediates(&mut self) -> u64 {
        // Immediates queued while this phase runs wait for the next
        // iteration, as in Node.
        let n = self.immediates.len();
        for _ in 0..n {
            let Some(Immediate(svc, slot)) = self.immediates.pop_front() else {
                break;
            };
            self.with_host(svc, Site::of(Callback::Immediate), |host, r| {
                host.immediate(r, slot)
            });
        }
        n as u64
    }

    fn run_closing(&mut self) -> u64 {
        let mut n = 0;
        while !self.closing.is_empty() || !self.closing_servers.is_empty() {
            for key in std::mem::take(&mut self.closing) {
                let Some(c) = self.conns.get_mut(key) else {
                    continue;
                };
                let err = c.error.take();
                let had_error = c.had_error;
                let id = ConnId(key);
                let owner = c.owner;
                log::debug!("{id} closed (had_error: {had_error})");
                match owner {
                    Some(o) => {
                        self.with_host_raw(
                            o.service,
                            Site::conn(Callback::Close, id),
                            |host, r| {
                                if let Some(e) = err {
                                    host.conn_event(r, id, o.slot, service::ConnEvent::Error(&e));
                                }
                                host.close(r, id, o.slot, had_error);
                            },
                        );
                    }
                    None => log::debug!("{id} has no service: its close is dropped"),
                }
                self.stats.closed += 1;
                n += 1;
                if !self.piped.is_empty() {
                    self.piped.remove(&key);
                }
                if let Some(c) = self.conns.remove(key) {
                    if let Some(sid) = c.server {
                        self.server_conn_closed(sid.0);
                    }
                }
                // The boundary of the `error`/`close` callbacks, after the
                // connection is gone.
                self.deliver_pending();
            }
            for key in std::mem::take(&mut self.closing_servers) {
                if let Some(s) = self.servers.remove(key) {
                    n += 1;
                    self.server_event(s.owner, ServerId(key), service::ServerEvent::Close);
                }
            }
        }
        n
    }

    /// Run the deferred callbacks (`listening`, `drain`, shutdown) queued by
    /// API calls, so they never re-enter a service from inside one.
    #[inline]
    pub(crate) fn deliver_pending(&mut self) {
        // Called after every callback: the empty case must cost a compare,
        // not a call.
        if !self.pending.is_empty() {
            self.deliver_pending_slow();
        }
    }

    #[inline(never)]
    fn deliver_pending_slow(&mut self) {
        while let Some(p) = self.pending.pop_front() {
            match p {
                Pending::Listening(sid, addr) => {
                    if let Some(owner) = self.servers.get(sid.0).map(|s| s.owner) {
                        self.server_event(owner, sid, service::ServerEvent::Listening(addr));
                    }
                }
                Pending::Drain(id) => {
                    if let Some(c) = self.conns.get_mut(id.0) {
                        c.need_drain = false;
                        if c.state != State::Closed {
                            if let Some(src) = self.piped.remove(&id.0) {
                                self.resume(ConnId(src));
                            }
                            self.emit_conn(id.0, service::ConnEvent::Drain);
                        }
                    }
                }
                Pending::Shutdown => self.begin_drain(),
            }
        }
    }

    /// The callback boundary: lend `svc` its record, run `f`, take the
    /// record back, then deliver what the callback caused. Every event a
    /// service receives passes here.
    pub(crate) fn with_host<R>(
        &mut self,
        svc: Key,
        site: Site,
        f: impl FnOnce(&mut dyn service::Host, &mut Reactor) -> R,
    ) -> Option<R> {
        let out = self.with_host_raw(svc, site, f);
        self.deliver_pending();
        out
    }

    /// [`Reactor::with_host`] without delivering the deferred events, for
    /// a caller that has more to do first. `site` says which callback runs,
    /// for the busy time by service and the slow-callback report: one
    /// clock read after the callback ([`loopstats`]).
    #[inline]
    pub(crate) fn with_host_raw<R>(
        &mut self,
        svc: Key,
        site: Site,
        f: impl FnOnce(&mut dyn service::Host, &mut Reactor) -> R,
    ) -> Option<R> {
        let mut host = self.services.get_mut(svc)?.take()?;
        let out = f(&mut *host, self);
        if let Some(took) = self.observe.charge(svc, || host.name(), Instant::now()) {
            self.slow_callback(host.name(), site, took);
        }
        if let Some(entry) = self.services.get_mut(svc) {
            *entry = Some(host);
        }
        Some(out)
    }

    /// Deliver a connection event to the service that owns the connection.
    pub(crate) fn emit_conn(&mut self, key: Key, ev: service::ConnEvent<'_>) {
        let Some(c) = self.conns.get(key) else {
            return;
        };
        let id = ConnId(key);
        match c.owner {
            Some(o) => {
                let site = Site::conn(ev.callback(), id);
                self.with_host(o.service, site, |host, r| {
                    host.conn_event(r, id, o.slot, ev)
                });
            }
            // Only between `connect_unowned` and the end of the callback
            // that gives it its service: nothing to tell.
            None => log::debug!("{id} has no service: event dropped"),
        }
    }

    /// Deliver a server event to the server's service.
    pub(crate) fn server_event(&mut self, owner: Key, sid: ServerId, ev: service::ServerEvent<'_>) {
        self.with_host(owner, Site::of(Callback::Server), |host, r| {
            host.server_event(r, sid, ev)
        });
    }

    /// Add a service to the loop: its `on_start` runs now. It receives the
    /// events of the servers and connections it opens.
    pub fn add_service<S: Service>(&mut self, service: S) -> ServiceId {
        self.add_hosted(service, |_, _| {}).0
    }

    /// [`Reactor::add_service`], returning also a [`Remote`] that posts to
    /// the new service's `on_message` from any thread (how the other
    /// workers of a process reach this one).
    pub fn add_service_with_remote<S: Service>(
        &mut self,
        service: S,
    ) -> (ServiceId, Remote<S::Message>) {
        self.add_hosted(service, |r, hosted| hosted.remote(r))
    }

    /// Add a service; `first` runs before its `on_start` (to give it a
    /// connection, say).
    fn add_hosted<S: Service, T>(
        &mut self,
        service: S,
        first: impl FnOnce(&mut Reactor, &mut service::Hosted<S>) -> T,
    ) -> (ServiceId, T) {
        let key = self.services.insert(&mut self.gens, None);
        let mut hosted = service::Hosted::new(service, key);
        let t = first(self, &mut hosted);
        hosted.call(self, |s, cx| s.on_start(cx));
        if let Some(entry) = self.services.get_mut(key) {
            *entry = Some(Box::new(hosted));
        }
        (ServiceId(key), t)
    }

    /// `net.createServer(service).listen(opts)`: add `service` and start
    /// a server whose connections it handles. `on_listening` follows from
    /// the loop; the address is known at once ([`Reactor::server_addr`]).
    pub fn serve<S: Service>(
        &mut self,
        opts: ListenOptions,
        service: S,
    ) -> Result<ServerId, crate::reactor::net::error::NetError> {
        let svc = self.add_service(service);
        let res = self.listen_owned(opts, svc.0);
        if res.is_err() {
            self.services.remove(svc.0);
        }
        res
    }

    /// `net.connect(opts, listener)`: add `service` and open one outbound
    /// connection it handles, with state `st`. Returns both ids; the
    /// service's callbacks can open more with [`Cx::connect`].
    pub fn connect_with<S: Service>(
        &mut self,
        host: &str,
        port: u16,
        opts: ConnectOptions,
        service: S,
        st: S::Conn,
    ) -> (ServiceId, ConnId) {
        self.add_hosted(service, |r, hosted| {
            let id = r.connect_unowned(host, port, opts);
            hosted.own.adopted.push((id.0, st));
            id
        })
    }

    /// Route `conn`'s events to `svc`, whose state for it is in `slot`.
    pub(crate) fn set_owner(&mut self, conn: Key, svc: Key, slot: u32) {
        if let Some(c) = self.conns.get_mut(conn) {
            c.owner = Some(Owner { service: svc, slot });
        }
    }

    /// Register a descriptor watched by a service ([`Cx::watch_fd`]).
    pub(crate) fn watch_target(
        &mut self,
        fd: std::os::fd::RawFd,
        target: Target,
    ) -> stdio::Result<u64> {
        let slot = self.watched.vacant_entry();
        let index = slot.key();
        let token = Key {
            index: WATCH_BASE + index as u32,
            gen: 0,
        }
        .token(Kind::System);
        self.poll.registry().register(
            &mut mio::unix::SourceFd(&fd),
            token,
            mio::Interest::READABLE,
        )?;
        slot.insert((fd, target));
        Ok(index as u64)
    }

    /// Stop watching a descriptor registered with [`Cx::watch_fd`].
    pub fn unwatch_fd(&mut self, watch: u64) {
        if let Some((fd, Target(svc, slot))) = self.watched.try_remove(watch as usize) {
            if let Some(Some(host)) = self.services.get_mut(svc) {
                host.forget_tag(slot);
            }
            let _ = self
                .poll
                .registry()
                .deregister(&mut mio::unix::SourceFd(&fd));
        }
    }

    pub(crate) fn token_of(kind: Kind, key: Key) -> Token {
        key.token(kind)
    }
}
