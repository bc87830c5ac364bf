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
//! # What a callback may do
//!
//! Anything on the [`Reactor`]: write to any connection, end, destroy,
//! pause, listen, connect, arm timers. Events those calls cause are queued and
//! delivered after the callback returns; a callback is never re-entered.
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
pub mod handler;
pub mod histogram;
pub mod net;
pub mod ready_list;
pub mod remote;
pub mod service;
pub mod stats;
pub mod timers;
pub mod token;
pub mod trace;

mod api;
mod io;
mod read_buf;
mod shutdown;

use crate::conn::state::State;
use crate::conn::Conn;
use crate::net::server::Server;
use crate::timer::{Tick, Wheel};
use bytes::BytesMut;
use config::{ConnectOptions, ListenOptions};
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

pub use handler::Handler;
pub use remote::Remote;
pub use service::{Cx, Service, ServiceId};
pub use timers::TimerId;

/// Where a connection's events go: its service, and the slot of its state.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Owner {
    pub(crate) service: Key,
    pub(crate) slot: u32,
}

/// An immediate queued for the check phase.
#[derive(Copy, Clone, Debug)]
pub(crate) enum Immediate {
    /// Queued by `Reactor::set_immediate` for the loop-wide handler.
    Legacy(u64),
    /// Queued by a service: its key and the slot of its tag.
    Service(Key, u32),
}

/// Who hears about a watched descriptor.
#[derive(Copy, Clone, Debug)]
pub(crate) enum Target {
    /// The loop-wide handler, with its tag.
    Legacy(u64),
    /// A service: its key and the slot of its tag.
    Service(Key, u32),
}

/// System token index of the cross-thread waker.
const WAKER_INDEX: u32 = 0;
/// System token index of the signal source.
const SIGNAL_INDEX: u32 = 1;
/// System token indices from here on are watched descriptors.
const WATCH_BASE: u32 = 2;

/// The loop-wide handler of a loop whose every event has a service.
struct NoHandler;

impl Handler for NoHandler {
    fn on_data(&mut self, _: &mut Reactor, _: ConnId, data: &mut BytesMut) {
        data.clear();
    }
}

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

/// The event loop and everything it owns except the application handler.
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
    pub(crate) app_timers: HashMap<u64, AppTimer>,
    pub(crate) next_timer_id: u64,
    pub(crate) waker: Arc<Waker>,
    pub(crate) inbox_tx: Sender<Inbox>,
    pub(crate) inbox_rx: Receiver<Inbox>,
    pub(crate) resolver: Option<Sender<crate::net::connect::LookupJob>>,
    pub(crate) pending_lookups: usize,
    pub(crate) signals: Option<signal_hook_mio::v1_0::Signals>,
    pub(crate) signal_grace: Duration,
    pub(crate) draining: bool,
    pub(crate) stop: Option<Exit>,
    pub(crate) spare_fd: Option<std::fs::File>,
    pub(crate) watched: slab::Slab<(std::os::fd::RawFd, Target)>,
    pub(crate) stats: LoopStats,
    pub(crate) clock: PhaseClock,
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
            app_timers: HashMap::new(),
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
            polled: 0,
            trace: None,
        })
    }

    /// Run until there is nothing left to do, [`Reactor::stop`] is called, or
    /// a graceful shutdown completes. Events go to the services that own
    /// the servers and connections ([`Reactor::serve`],
    /// [`Reactor::connect_with`]).
    pub fn run(&mut self) -> stdio::Result<Exit> {
        self.run_with(&mut NoHandler)
    }

    /// [`Reactor::run`] with a loop-wide [`Handler`] for what no service
    /// owns (servers from [`Reactor::listen`], connections from
    /// [`Reactor::connect`], timers from [`Reactor::set_timeout`]).
    pub fn run_with<H: Handler>(&mut self, h: &mut H) -> stdio::Result<Exit> {
        self.update_now();
        self.clock.mark = self.now;
        self.clock.measure_all = self.trace.is_some()
            || log::log_enabled!(target: "netloop::reactor", log::Level::Trace);
        loop {
            if let Some(exit) = self.exit_reason(h) {
                return Ok(exit);
            }
            self.begin_iteration();
            let fired = self.phase(h, Phase::Timers, Self::run_timers); // 1
            let ready = self.phase(h, Phase::Ready, Self::run_ready); // 2
            let Some(events) = self.poll_io()? else {
                // Nothing left to wait for, or stop(): back to the top.
                self.end_iteration(fired, ready, 0);
                continue;
            }; // 3
            self.phase(h, Phase::Dispatch, Self::dispatch_events); // 4
            self.phase(h, Phase::Check, Self::run_immediates); // 5
            self.phase(h, Phase::Close, Self::run_closing); // 6
            self.end_iteration(fired, ready, events);
        }
    }

    /// Why the loop should return now, if it should: deferred callbacks of
    /// the last iteration are delivered (and what they wrote flushed) first.
    fn exit_reason<H: Handler>(&mut self, h: &mut H) -> Option<Exit> {
        self.deliver_pending(h);
        self.flush_written(h);
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
    fn phase<H: Handler>(
        &mut self,
        h: &mut H,
        p: Phase,
        run: fn(&mut Reactor, &mut H) -> u64,
    ) -> u64 {
        let worked = run(self, h);
        self.flush_written(h);
        // The ready phase is charged by the clock read that starts the poll.
        if p != Phase::Ready {
            self.phase_done(p, worked > 0);
        }
        worked
    }

    /// Phase 3: wait for I/O, unless the phases before finished the last
    /// work (an infinite poll with nothing registered would never return).
    /// Timeout: 0 if anything is pending, else the next timer deadline
    /// rounded up to the ms, else infinite. Returns the number of events,
    /// or `None` when the poll was skipped.
    fn poll_io(&mut self) -> stdio::Result<Option<u64>> {
        let t0 = Instant::now();
        self.phase_at(Phase::Ready, t0);
        if !self.is_alive() || self.stop.is_some() {
            return Ok(None);
        }
        let timeout = self.poll_timeout();
        match self.poll.poll(&mut self.events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == stdio::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        self.update_now();
        self.stats.poll_blocked += self.now.saturating_duration_since(t0);
        self.phase_at(Phase::Poll, self.now);
        self.polled = self.events.iter().count() as u64;
        Ok(Some(self.polled))
    }

    /// Phase 4: the I/O events the poll returned.
    fn dispatch_events<H: Handler>(&mut self, h: &mut H) -> u64 {
        if self.polled == 0 {
            return 0;
        }
        let events = std::mem::replace(&mut self.events, Events::with_capacity(0));
        for event in events.iter() {
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
            self.dispatch(h, event);
            self.deliver_pending(h);
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
            // Writing the line is not the next iteration's timers phase.
            self.clock.mark = Instant::now();
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

    fn dispatch<H: Handler>(&mut self, h: &mut H, event: &mio::event::Event) {
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
                self.conn_event(h, key, readable, writable, fin_hint);
            }
            Kind::Listener => self.accept(h, key),
            Kind::System => match key.index {
                WAKER_INDEX => self.drain_inbox(h),
                SIGNAL_INDEX => self.handle_signals_event(),
                i => {
                    let slot = (i - WATCH_BASE) as usize;
                    match self.watched.get(slot).map(|w| w.1) {
                        Some(Target::Legacy(tag)) => h.on_fd_readable(self, tag),
                        Some(Target::Service(svc, slot)) => {
                            self.with_host(h, svc, |host, r| host.fd_readable(r, slot));
                        }
                        None => {}
                    }
                }
            },
        }
    }

    fn conn_event<H: Handler>(
        &mut self,
        h: &mut H,
        key: Key,
        readable: bool,
        writable: bool,
        fin_hint: bool,
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
                self.finish_connect(h, key);
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
                self.read(h, key);
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

    fn run_ready<H: Handler>(&mut self, h: &mut H) -> u64 {
        if self.ready.is_empty() {
            return 0;
        }
        let n = self.ready.len() as u64;
        let mut batch = self.ready.take_batch();
        while let Some((kind, key)) = batch.pop_front() {
            match kind {
                Kind::Conn => self.serve_ready_conn(h, key),
                Kind::Listener => {
                    if let Some(s) = self.servers.get_mut(key) {
                        s.in_ready = false;
                        self.accept(h, key);
                    }
                }
                Kind::System => {}
            }
            self.deliver_pending(h);
        }
        self.ready.recycle(batch);
        n
    }

    fn serve_ready_conn<H: Handler>(&mut self, h: &mut H, key: Key) {
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
        self.read(h, key);
    }

    fn run_immediates<H: Handler>(&mut self, h: &mut H) -> u64 {
        // Immediates queued while this phase runs wait for the next
        // iteration, as in Node.
        let n = self.immediates.len();
        for _ in 0..n {
            match self.immediates.pop_front() {
                Some(Immediate::Legacy(tag)) => {
                    h.on_immediate(self, tag);
                    self.deliver_pending(h);
                }
                Some(Immediate::Service(svc, slot)) => {
                    self.with_host(h, svc, |host, r| host.immediate(r, slot));
                }
                None => break,
            }
        }
        n as u64
    }

    fn run_closing<H: Handler>(&mut self, h: &mut H) -> u64 {
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
                        self.with_host_raw(o.service, |host, r| {
                            if let Some(e) = err {
                                host.conn_event(r, id, o.slot, service::ConnEvent::Error(&e));
                            }
                            host.close(r, id, o.slot, had_error);
                        });
                    }
                    None => {
                        if let Some(e) = err {
                            h.on_error(self, id, &e);
                        }
                        h.on_close(self, id, had_error);
                    }
                }
                self.stats.closed += 1;
                n += 1;
                if let Some(c) = self.conns.remove(key) {
                    if let Some(sid) = c.server {
                        self.server_conn_closed(sid.0);
                    }
                }
                self.deliver_pending(h);
            }
            for key in std::mem::take(&mut self.closing_servers) {
                if let Some(s) = self.servers.remove(key) {
                    n += 1;
                    self.server_event(h, s.owner, ServerId(key), service::ServerEvent::Close);
                }
            }
        }
        n
    }

    /// Run the deferred callbacks (`listening`, `drain`, shutdown) queued by
    /// API calls, so they never re-enter the handler from inside one.
    #[inline]
    pub(crate) fn deliver_pending<H: Handler>(&mut self, h: &mut H) {
        // Called after every event and every delivery: the empty case must
        // cost a compare, not a call.
        if !self.pending.is_empty() {
            self.deliver_pending_slow(h);
        }
    }

    #[inline(never)]
    fn deliver_pending_slow<H: Handler>(&mut self, h: &mut H) {
        while let Some(p) = self.pending.pop_front() {
            match p {
                Pending::Listening(sid, addr) => {
                    let owner = self.servers.get(sid.0).and_then(|s| s.owner);
                    self.server_event(h, owner, sid, service::ServerEvent::Listening(addr));
                }
                Pending::Drain(id) => {
                    if let Some(c) = self.conns.get_mut(id.0) {
                        c.need_drain = false;
                        if c.state != State::Closed {
                            if let Some(src) = c.resume_on_drain.take() {
                                self.resume(ConnId(src));
                            }
                            self.emit_conn(h, id.0, service::ConnEvent::Drain);
                        }
                    }
                }
                Pending::Shutdown => self.begin_drain(h),
            }
        }
    }

    /// The callback boundary: lend `svc` its record, run `f`, take the
    /// record back, then deliver what the callback caused. Every event a
    /// service receives passes here.
    pub(crate) fn with_host<H: Handler, R>(
        &mut self,
        h: &mut H,
        svc: Key,
        f: impl FnOnce(&mut dyn service::Host, &mut Reactor) -> R,
    ) -> Option<R> {
        let out = self.with_host_raw(svc, f);
        self.deliver_pending(h);
        out
    }

    /// [`Reactor::with_host`] without delivering the deferred events, for
    /// a caller that has more to do first.
    #[inline]
    pub(crate) fn with_host_raw<R>(
        &mut self,
        svc: Key,
        f: impl FnOnce(&mut dyn service::Host, &mut Reactor) -> R,
    ) -> Option<R> {
        let mut host = self.services.get_mut(svc)?.take()?;
        let out = f(&mut *host, self);
        if let Some(entry) = self.services.get_mut(svc) {
            *entry = Some(host);
        }
        Some(out)
    }

    /// Deliver a connection event to whoever owns the connection.
    pub(crate) fn emit_conn<H: Handler>(
        &mut self,
        h: &mut H,
        key: Key,
        ev: service::ConnEvent<'_>,
    ) {
        let Some(c) = self.conns.get(key) else {
            return;
        };
        let id = ConnId(key);
        match c.owner {
            Some(o) => {
                self.with_host(h, o.service, |host, r| host.conn_event(r, id, o.slot, ev));
            }
            None => {
                match ev {
                    service::ConnEvent::Lookup(res) => h.on_lookup(self, id, res),
                    service::ConnEvent::Connect => {
                        h.on_connect(self, id);
                        h.on_ready(self, id);
                    }
                    service::ConnEvent::Data(d) => h.on_data(self, id, d),
                    service::ConnEvent::End => h.on_end(self, id),
                    service::ConnEvent::Drain => h.on_drain(self, id),
                    service::ConnEvent::Timeout => h.on_timeout(self, id),
                    service::ConnEvent::Error(e) => h.on_error(self, id, e),
                }
                self.deliver_pending(h);
            }
        }
    }

    /// Deliver a server event to the server's service (or the loop-wide
    /// handler).
    pub(crate) fn server_event<H: Handler>(
        &mut self,
        h: &mut H,
        owner: Option<Key>,
        sid: ServerId,
        ev: service::ServerEvent<'_>,
    ) {
        match owner {
            Some(svc) => {
                self.with_host(h, svc, |host, r| host.server_event(r, sid, ev));
            }
            None => {
                match ev {
                    service::ServerEvent::Listening(a) => h.on_listening(self, sid, a),
                    service::ServerEvent::Drop(p) => h.on_drop(self, sid, p),
                    service::ServerEvent::Error(e) => h.on_server_error(self, sid, e),
                    service::ServerEvent::Close => h.on_server_close(self, sid),
                }
                self.deliver_pending(h);
            }
        }
    }

    /// Add a service to the loop: its `on_start` runs now. It receives the
    /// events of the servers and connections it opens.
    pub fn add_service<S: Service>(&mut self, service: S) -> ServiceId {
        self.add_hosted(service, |_, _| {}).0
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
    ) -> Result<ServerId, crate::net::error::NetError> {
        let svc = self.add_service(service);
        let res = self.listen_owned(opts, Some(svc.0));
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

    /// Queue `tag` for the check phase (Node's `setImmediate`).
    pub fn set_immediate(&mut self, tag: u64) {
        self.immediates.push_back(Immediate::Legacy(tag));
    }

    /// Watch a descriptor for readability (edge-triggered): `on_fd_readable`
    /// fires with `tag`. The caller makes the descriptor non-blocking and
    /// reads it until `WouldBlock`. A watched descriptor keeps the loop alive
    /// until [`Reactor::unwatch_fd`].
    pub fn watch_fd(&mut self, fd: std::os::fd::RawFd, tag: u64) -> stdio::Result<u64> {
        self.watch_target(fd, Target::Legacy(tag))
    }

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

    /// Stop watching a descriptor registered with [`Reactor::watch_fd`].
    pub fn unwatch_fd(&mut self, watch: u64) {
        if let Some((fd, target)) = self.watched.try_remove(watch as usize) {
            if let Target::Service(svc, slot) = target {
                if let Some(Some(host)) = self.services.get_mut(svc) {
                    host.forget_tag(slot);
                }
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
