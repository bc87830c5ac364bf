//! What the coordinating thread and the load threads share: the phase of the
//! run, readiness counts, progress counters, and per-thread results.
//!
//! The coordinator moves the phase `Warmup → Measure → Done`; load threads
//! count an operation only while it reads `Measure`, so the window the
//! coordinator times (and samples CPU over) is the window that is counted.
//! Everything is a relaxed atomic: a count that lands a microsecond on the
//! wrong side of a phase change is noise far below the figures' precision.

use crate::Remote;
use crate::{Cx, Service};
use bytes::BytesMut;
use hdrhistogram::Histogram;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering::Relaxed};
use std::sync::{mpsc, Mutex};
use std::time::Instant;

/// Highest latency the histogram records (longer ones saturate): 60 s in ns.
const MAX_LATENCY_NS: u64 = 60_000_000_000;
/// Significant digits of the histogram (0.1 % relative error).
const SIGFIGS: u8 = 3;

/// Phase of a run.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    /// Connecting and warming up: nothing is counted.
    Warmup = 0,
    /// The timed window: operations are counted.
    Measure = 1,
    /// Finished: nothing more is counted; threads are being stopped.
    Done = 2,
}

/// A counter alone on its cache line (threads do not false-share).
#[derive(Default, Debug)]
#[repr(align(64))]
pub struct Padded(pub AtomicU64);

/// State shared by the coordinator and all load threads.
#[derive(Debug)]
pub struct Shared {
    phase: AtomicU8,
    /// Connections (or members, clients) ready: connected and, where the
    /// workload has one, past their first exchange.
    pub ready: AtomicUsize,
    /// Connections that failed before becoming ready.
    pub failed: AtomicUsize,
    /// Operations per thread since the start (for the progress line).
    pub progress: Box<[Padded]>,
    /// Common time origin of all threads (fan-out stamps messages with it).
    pub epoch: Instant,
    /// The first connection error of the run, as `ECONNREFUSED 127.0.0.1:1:
    /// ...`: what a failed setup reports as its cause.
    first_error: Mutex<Option<String>>,
    /// TLS for every connection of the run (`--tls`), one configuration so
    /// connections resume each other's sessions unless disabled.
    pub tls: Option<crate::reactor::tls::ClientTls>,
}

impl Shared {
    /// Shared state for `threads` load threads.
    pub fn new(threads: usize) -> Shared {
        Shared {
            phase: AtomicU8::new(Phase::Warmup as u8),
            ready: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            progress: (0..threads).map(|_| Padded::default()).collect(),
            epoch: Instant::now(),
            first_error: Mutex::new(None),
            tls: None,
        }
    }

    /// Count a connection that failed before becoming ready, and keep its
    /// error if it is the run's first.
    pub fn fail(&self, err: Option<&crate::NetError>) {
        self.failed.fetch_add(1, Relaxed);
        if let Some(e) = err {
            self.note_error(e);
        }
    }

    /// Keep `err` if it is the run's first connection error.
    pub fn note_error(&self, err: &crate::NetError) {
        // A poisoned lock only means another thread panicked while holding
        // it; the string inside is still whole.
        let mut first = self.first_error.lock().unwrap_or_else(|p| p.into_inner());
        if first.is_none() {
            *first = Some(format!("{} {}", err.code, err.detail));
        }
    }

    /// The run's first connection error, if any.
    pub fn first_error(&self) -> Option<String> {
        self.first_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Move to `p`.
    pub fn set_phase(&self, p: Phase) {
        self.phase.store(p as u8, Relaxed);
    }

    /// Is the timed window open?
    pub fn measuring(&self) -> bool {
        self.phase.load(Relaxed) == Phase::Measure as u8
    }

    /// Operations counted by all threads so far (any phase).
    pub fn progress_total(&self) -> u64 {
        self.progress.iter().map(|p| p.0.load(Relaxed)).sum()
    }
}

/// The message that stops a load thread's loop.
#[derive(Debug)]
pub struct Stop;

/// The service through which the coordinator stops a load thread's loop:
/// it hands its [`Remote`] over when added, and stops the loop when
/// [`Stop`] arrives. Keeping it apart from the workload's service leaves
/// the workloads' messages to the workloads (fan-out's receipts).
#[derive(Debug)]
pub struct Stopper {
    to: Option<mpsc::Sender<Result<Remote<Stop>, String>>>,
}

impl Stopper {
    /// A stopper that sends its remote through `to` when added to a loop.
    pub fn new(to: mpsc::Sender<Result<Remote<Stop>, String>>) -> Stopper {
        Stopper { to: Some(to) }
    }
}

impl Service for Stopper {
    type Conn = ();
    type Tag = ();
    type Message = Stop;

    fn on_start(&mut self, cx: &mut Cx<'_, Self>) {
        if let Some(to) = self.to.take() {
            let _ = to.send(Ok(cx.remote()));
        }
    }

    fn on_data(&mut self, _: &mut Cx<'_, Self>, _: crate::ConnId, _: &mut (), d: &mut BytesMut) {
        d.clear(); // it opens no connection
    }

    fn on_message(&mut self, cx: &mut Cx<'_, Self>, _: Stop) {
        cx.stop();
    }
}

/// Where a load service leaves its figures for its thread.
///
/// The loop owns the services added to it and gives none back, so a load
/// service puts its [`ThreadStats`] here when the loop drops it (its `Drop`
/// calls [`Outbox::put`]): that covers a loop stopped by [`Stop`] as well
/// as one that ran out of connections by itself.
#[derive(Debug)]
pub struct Outbox<T = ThreadStats>(Rc<RefCell<Option<T>>>);

impl<T> Default for Outbox<T> {
    fn default() -> Self {
        Outbox(Rc::default())
    }
}

impl<T> Clone for Outbox<T> {
    fn clone(&self) -> Self {
        Outbox(self.0.clone())
    }
}

impl<T: Default> Outbox<T> {
    /// Leave the figures.
    pub fn put(&self, stats: T) {
        *self.0.borrow_mut() = Some(stats);
    }

    /// The figures left, or empty ones if none were.
    pub fn take(&self) -> T {
        self.0.borrow_mut().take().unwrap_or_default()
    }
}

/// What one load thread measured.
#[derive(Debug)]
pub struct ThreadStats {
    /// Operations completed in the window (round trips, connections, ...).
    pub ops: u64,
    /// Payload bytes echoed back (and verified) in the window.
    pub bytes: u64,
    /// Connection errors and unexpected closes (any phase).
    pub errors: u64,
    /// Echoed bytes that differed from what was sent (any phase).
    pub mismatched: u64,
    /// Latencies of the window's operations, in ns.
    pub latency: Histogram<u64>,
    /// Workload-specific counters.
    pub extra: Vec<(&'static str, u64)>,
    /// Operations of this thread in any phase, published to
    /// [`Shared::progress`] with a plain store: only this thread writes its
    /// slot, so a locked read-modify-write per operation is not needed.
    done: u64,
}

impl ThreadStats {
    /// Move the figures out, leaving empty ones (for a `Drop` that hands
    /// them to an [`Outbox`]).
    pub fn take(&mut self) -> ThreadStats {
        std::mem::take(self)
    }
}

impl Default for ThreadStats {
    fn default() -> Self {
        ThreadStats {
            ops: 0,
            bytes: 0,
            errors: 0,
            mismatched: 0,
            latency: new_histogram(),
            extra: Vec::new(),
            done: 0,
        }
    }
}

impl ThreadStats {
    /// Record one completed operation that took `ns`, if measuring.
    pub fn op(&mut self, shared: &Shared, thread: usize, ns: u64) {
        self.done += 1;
        if let Some(p) = shared.progress.get(thread) {
            p.0.store(self.done, Relaxed);
        }
        if shared.measuring() {
            self.ops += 1;
            self.latency.saturating_record(ns.max(1));
        }
    }

    /// Add to a workload-specific counter.
    pub fn add_extra(&mut self, name: &'static str, n: u64) {
        match self.extra.iter_mut().find(|(k, _)| *k == name) {
            Some((_, v)) => *v += n,
            None => self.extra.push((name, n)),
        }
    }

    /// Fold another thread's figures into these.
    pub fn merge(&mut self, other: ThreadStats) {
        self.ops += other.ops;
        self.bytes += other.bytes;
        self.errors += other.errors;
        self.mismatched += other.mismatched;
        let _ = self.latency.add(&other.latency);
        for (k, v) in other.extra {
            self.add_extra(k, v);
        }
    }
}

/// An empty latency histogram (1 ns .. 60 s, 3 significant digits).
pub fn new_histogram() -> Histogram<u64> {
    // Constant, valid bounds: this cannot fail.
    Histogram::new_with_bounds(1, MAX_LATENCY_NS, SIGFIGS).expect("valid histogram bounds")
}

/// Nanoseconds since `t`.
pub fn ns_since(t: Instant) -> u64 {
    ns_between(t, Instant::now())
}

/// Nanoseconds from `t` to `now` (0 if `now` is earlier): lets a callback
/// read the clock once per event and use it for every message it completes.
pub fn ns_between(t: Instant, now: Instant) -> u64 {
    now.saturating_duration_since(t)
        .as_nanos()
        .min(u64::MAX as u128) as u64
}

/// Drop whatever is in a read buffer (the workload has checked it).
pub fn consume(data: &mut BytesMut) {
    data.clear();
}
