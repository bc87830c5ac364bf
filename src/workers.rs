//! One reactor per core: a process runs `N` single-threaded loops, as Node's
//! `cluster` module, nginx's `reuseport` and Netty's event-loop group do.
//!
//! # Algorithm
//!
//! * **One worker** ([`run`] with `count == 1`) is exactly the single loop:
//!   no extra thread, the loop itself handles SIGINT/SIGTERM
//!   ([`Reactor::handle_signals`]).
//! * **Several workers**: worker `i` is a thread named `netloop-worker-i`
//!   with its own [`Reactor`]. The caller's `setup` runs on that thread and
//!   opens the worker's listeners, each with `SO_REUSEPORT`
//!   ([`crate::ListenOptions::reuse_port`]), so every worker has its own
//!   accept queue and the kernel spreads new connections by a hash of their
//!   addresses and ports. Workers are set up one after the other: worker 0
//!   first, so a port of 0 can be resolved by worker 0 and reused by the
//!   rest (see [`Worker::index`]).
//! * **Signals are received once**, on the calling thread (signal-hook's
//!   iterator on its own thread), and forwarded to every loop through its
//!   [`LoopHandle`]: the first SIGINT/SIGTERM starts the graceful shutdown
//!   in every worker at the same time, a second makes every loop return at
//!   once. Each worker takes in what its accept queue holds before closing
//!   its listener, so no client whose handshake completed is reset
//!   ([`Reactor::shutdown`]).
//! * [`run`] returns when every worker's loop has returned.
//!
//! # Contract
//!
//! `setup` must only add services and servers to the reactor it is given;
//! state shared by workers (a chat backplane, a connection-id counter) is
//! the caller's, behind `Arc`s captured by `setup`. A setup error stops the
//! workers already started and is returned.

use crate::{Exit, LoopHandle, Reactor};
use std::fmt;
use std::io;
use std::str::FromStr;
use std::sync::mpsc;
use std::time::Duration;

/// The most workers a process may ask for: far above any core count this
/// code is meant for, low enough that a typo (`--workers 10000`) fails
/// with a clear error instead of starting ten thousand threads.
pub const MAX_WORKERS: usize = 256;

/// How many workers to run: `--workers N` or `--workers auto`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum WorkerCount {
    /// Exactly this many (1 ..= [`MAX_WORKERS`]).
    Fixed(usize),
    /// One per core this process may use ([`available_cores`]).
    Auto,
}

impl WorkerCount {
    /// The number of workers this count means on this machine.
    pub fn resolve(self) -> usize {
        match self {
            WorkerCount::Fixed(n) => n,
            WorkerCount::Auto => available_cores(),
        }
    }
}

impl Default for WorkerCount {
    fn default() -> Self {
        WorkerCount::Fixed(1)
    }
}

impl FromStr for WorkerCount {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "auto" {
            return Ok(WorkerCount::Auto);
        }
        match s.parse::<usize>() {
            Ok(n) if (1..=MAX_WORKERS).contains(&n) => Ok(WorkerCount::Fixed(n)),
            _ => Err(format!(
                "expected `auto` or a number of workers from 1 to {MAX_WORKERS}, got `{s}`"
            )),
        }
    }
}

impl fmt::Display for WorkerCount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WorkerCount::Fixed(n) => write!(f, "{n}"),
            WorkerCount::Auto => f.write_str("auto"),
        }
    }
}

/// The cores this process may run on: the size of its CPU affinity mask
/// (`taskset`, cgroup cpusets), which `std::thread::available_parallelism`
/// reads on Linux; 1 if it cannot be read.
pub fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Which worker `setup` is preparing.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Worker {
    /// 0 ..= count - 1. Worker 0 is set up before any other starts.
    pub index: usize,
    /// How many workers the process runs.
    pub count: usize,
}

/// Why [`run`] failed.
#[derive(Debug)]
pub enum WorkersError {
    /// The event loop (epoll instance, waker) could not be created.
    Loop(io::Error),
    /// The signal handlers could not be installed.
    Signals(io::Error),
    /// A worker thread could not be started.
    Spawn(io::Error),
    /// `setup` failed for this worker, with its message.
    Setup {
        /// The worker.
        worker: usize,
        /// What setup said.
        message: String,
    },
    /// A worker's loop failed while running.
    Run {
        /// The worker.
        worker: usize,
        /// The failure.
        error: io::Error,
    },
}

impl fmt::Display for WorkersError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WorkersError::Loop(e) => write!(f, "cannot create the event loop: {e}"),
            WorkersError::Signals(e) => write!(f, "cannot install signal handlers: {e}"),
            WorkersError::Spawn(e) => write!(f, "cannot start a worker thread: {e}"),
            WorkersError::Setup { message, .. } => f.write_str(message),
            WorkersError::Run { worker, error } => {
                write!(f, "event loop of worker {worker} failed: {error}")
            }
        }
    }
}

impl std::error::Error for WorkersError {}

/// What the calling thread waits for while workers run.
enum Event {
    Signal(i32),
    Done(usize, io::Result<Exit>),
}

/// Run `count` workers, each a loop prepared by `setup`, until all have
/// returned (see the module docs). SIGINT/SIGTERM start a graceful shutdown
/// with `grace` in every worker; the result is [`Exit::Forced`] if a second
/// signal cut it short.
pub fn run<F>(count: usize, grace: Duration, setup: F) -> Result<Exit, WorkersError>
where
    F: Fn(Worker, &mut Reactor) -> Result<(), String> + Sync,
{
    let count = count.clamp(1, MAX_WORKERS);
    if count == 1 {
        return run_one(grace, setup);
    }
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ])
    .map_err(WorkersError::Signals)?;
    let signal_handle = signals.handle();
    let setup = &setup;
    std::thread::scope(|scope| {
        let (events, inbox) = mpsc::channel::<Event>();
        let to_main = events.clone();
        let signal_thread = std::thread::Builder::new()
            .name("netloop-signals".into())
            .spawn_scoped(scope, move || {
                for sig in signals.forever() {
                    if to_main.send(Event::Signal(sig)).is_err() {
                        return;
                    }
                }
            })
            .map_err(WorkersError::Spawn)?;
        let mut handles: Vec<LoopHandle> = Vec::with_capacity(count);
        let mut started = Ok(());
        for index in 0..count {
            match start_worker(scope, Worker { index, count }, setup, events.clone()) {
                Ok(h) => handles.push(h),
                Err(e) => {
                    started = Err(e);
                    break;
                }
            }
        }
        drop(events);
        if started.is_err() {
            for h in &handles {
                h.force_exit(0);
            }
        }
        let outcome = wait(&inbox, &handles, grace, started);
        signal_handle.close();
        let _ = signal_thread.join();
        outcome
    })
}

/// The single loop, as `netloop serve` has always run it.
fn run_one<F>(grace: Duration, setup: F) -> Result<Exit, WorkersError>
where
    F: Fn(Worker, &mut Reactor) -> Result<(), String>,
{
    let mut r = Reactor::new().map_err(WorkersError::Loop)?;
    r.handle_signals(grace).map_err(WorkersError::Signals)?;
    setup(Worker { index: 0, count: 1 }, &mut r)
        .map_err(|message| WorkersError::Setup { worker: 0, message })?;
    let exit = r
        .run()
        .map_err(|error| WorkersError::Run { worker: 0, error })?;
    log::info!("{}", r.metrics().summary());
    Ok(exit)
}

/// Start worker `w` on its thread and wait until its setup is done: its
/// loop's handle, or why it could not start.
fn start_worker<'scope, 'env, F>(
    scope: &'scope std::thread::Scope<'scope, 'env>,
    w: Worker,
    setup: &'env F,
    done: mpsc::Sender<Event>,
) -> Result<LoopHandle, WorkersError>
where
    F: Fn(Worker, &mut Reactor) -> Result<(), String> + Sync,
{
    let (ready_tx, ready_rx) = mpsc::channel::<Result<LoopHandle, WorkersError>>();
    std::thread::Builder::new()
        .name(format!("netloop-worker-{}", w.index))
        .spawn_scoped(scope, move || {
            let mut r = match Reactor::new() {
                Ok(r) => r,
                Err(e) => {
                    let _ = ready_tx.send(Err(WorkersError::Loop(e)));
                    return;
                }
            };
            if let Err(message) = setup(w, &mut r) {
                let _ = ready_tx.send(Err(WorkersError::Setup {
                    worker: w.index,
                    message,
                }));
                return;
            }
            let _ = ready_tx.send(Ok(r.handle()));
            let res = r.run();
            if res.is_ok() {
                log::info!("worker {}: {}", w.index, r.metrics().summary());
            }
            let _ = done.send(Event::Done(w.index, res));
        })
        .map_err(WorkersError::Spawn)?;
    match ready_rx.recv() {
        Ok(res) => res,
        // The thread ended without a word: it panicked in setup.
        Err(_) => Err(WorkersError::Setup {
            worker: w.index,
            message: format!("worker {} stopped during setup", w.index),
        }),
    }
}

/// Forward signals to every worker until all have returned; the combined
/// outcome.
fn wait(
    inbox: &mpsc::Receiver<Event>,
    handles: &[LoopHandle],
    grace: Duration,
    started: Result<(), WorkersError>,
) -> Result<Exit, WorkersError> {
    let mut running = handles.len();
    let mut draining = false;
    let mut forced = None;
    let mut failure = started.err();
    while running > 0 {
        let Ok(ev) = inbox.recv() else {
            break;
        };
        match ev {
            Event::Signal(sig) if !draining => {
                draining = true;
                log::info!(
                    "signal {sig}: graceful shutdown of {} workers (grace {grace:?})",
                    handles.len()
                );
                for h in handles {
                    h.shutdown(grace);
                }
            }
            Event::Signal(sig) => {
                log::warn!("second signal {sig}: exiting now");
                forced = Some(sig);
                for h in handles {
                    h.force_exit(sig);
                }
            }
            Event::Done(worker, res) => {
                running -= 1;
                match res {
                    Ok(Exit::Forced(sig)) => forced = forced.or(Some(sig)),
                    Ok(_) => {}
                    Err(error) => {
                        log::error!("event loop of worker {worker} failed: {error}");
                        failure.get_or_insert(WorkersError::Run { worker, error });
                    }
                }
            }
        }
    }
    if let Some(e) = failure {
        return Err(e);
    }
    Ok(match forced {
        Some(sig) => Exit::Forced(sig),
        None if draining => Exit::Graceful,
        None => Exit::Idle,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_counts_parse_and_refuse_nonsense() {
        assert_eq!("auto".parse(), Ok(WorkerCount::Auto));
        assert_eq!("3".parse(), Ok(WorkerCount::Fixed(3)));
        for bad in ["0", "-1", "", "two", "257", "99999999999999999999999"] {
            assert!(bad.parse::<WorkerCount>().is_err(), "{bad}");
        }
        assert!(WorkerCount::Auto.resolve() >= 1);
        assert_eq!(WorkerCount::Fixed(4).to_string(), "4");
    }
}
