//! `netloop bench`: a load generator on our own reactor.
//!
//! # How a run goes
//!
//! 1. The target is resolved once; the descriptor limit is raised to the
//!    hard limit (idle needs one descriptor per connection); the server's
//!    `/proc` figures are read (`--server-pid`) before anything connects.
//! 2. `--threads N` loops each run one [`Reactor`] with their share of the
//!    connections (the first `C mod N` take one more). The first runs on
//!    the calling thread, in slices between the coordinator's checks
//!    ([`Reactor::run_until`]); the others on threads of their own. So
//!    `--threads 1` is a one-thread process, as a C or `echoload`
//!    generator is: a second thread alone makes every system call dearer.
//! 3. The coordinator waits until every connection is *ready* (connected;
//!    for idle, fan-out, heartbeat: past the first exchange in the
//!    service's protocol), bounded by `--setup-timeout`. A connection that
//!    fails first, or a server that never answers in the protocol, ends the
//!    run there with the cause (`ECONNREFUSED 127.0.0.1:1: ...`) and a
//!    non-zero exit. Then the warm-up, extended while operations stall
//!    (below).
//! 4. It opens the window (phase `Measure`), reads server and own CPU,
//!    waits `--duration` (printing a progress line on a terminal), closes
//!    the window, reads them again, and stops the loops.
//! 5. Thread results are merged into one [`report::Report`].
//!
//! Every echoed byte is compared with what was sent ([`pattern`]); latency
//! goes into an HDR histogram (ns, 3 significant digits).
//!
//! # Latency is closed-loop unless `--rate` is given
//!
//! By default each connection sends its next message when a reply is in:
//! a server that stalls for a second delays one message per connection by a
//! second, and the messages that would have been sent meanwhile are never
//! sent, so the percentiles understate what users of a stalled server see
//! (coordinated omission). `--rate N` (ping-pong) makes the load open-loop
//! and times each message from when it was due ([`echo_load::Schedule`]).
//!
//! # Stalls
//!
//! The coordinator samples the completed operations every
//! [`STALL_SAMPLE`]. The warm-up ends only once no [`STALL_MIN`] gap has
//! been seen for [`STEADY`] (a server's start-up stalls, seen at 4 s with
//! Node and a thousand connections, would otherwise fall into the window),
//! at most [`MAX_WARMUP_EXTENSION`] past `--warmup`; the longest gap in the
//! window is reported, and noted when it is a stall.

pub mod connect;
pub mod control;
pub mod echo_load;
pub mod fanout;
pub mod grid;
pub mod heartbeat;
pub mod idle;
pub mod pattern;
pub mod plot;
pub mod timers;
pub use crate::metrics::procstat;

pub mod report;
pub mod soak;

use crate::cli::units::{parse_duration, parse_size};
use crate::Remote;
use crate::{Reactor, Service};
use clap::{Args, ValueEnum};
use control::{Outbox, Phase, Shared, Stop, Stopper, ThreadStats};
use std::collections::BTreeMap;
use std::fmt;
use std::io::{IsTerminal, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// Default of `--setup-timeout`, the longest setup without one more
/// connection becoming ready: longer than the kernel's SYN retries into a
/// full listen queue (1, 2, 4 s apart), short enough that a script aimed at
/// a server of the wrong kind learns it quickly.
pub const SETUP_TIMEOUT: &str = "10s";

/// Longest setup in all, however steadily connections become ready.
pub const MAX_SETUP: Duration = Duration::from_secs(60);

/// How often the coordinator checks, during set-up, whether every
/// connection is ready.
const READY_SAMPLE: Duration = Duration::from_millis(5);

/// How often the coordinator samples progress to find stalls.
pub const STALL_SAMPLE: Duration = Duration::from_millis(10);

/// A gap this long with no completed operation is a stall: about ten
/// times the p99 round trip of ping-pong × 1000 (9–14 ms for every peer in
/// BENCHMARKS.md's full matrix), so queueing behind a thousand connections
/// does not count, while Node's start-up stalls (1.6–4 s there) do.
pub const STALL_MIN: Duration = Duration::from_millis(100);

/// The warm-up ends only after this long without a stall.
pub const STEADY: Duration = Duration::from_millis(500);

/// The warm-up is extended for stalls by at most this much; past it the
/// window opens anyway and the report says the server was still stalling.
pub const MAX_WARMUP_EXTENSION: Duration = Duration::from_secs(10);

/// Most messages in flight per connection or room: the fan-out's receipt
/// ring ([`fanout::RING`]) must outnumber them, and more than this many
/// 64-byte messages in flight per connection measures queueing, not the
/// server.
pub const MAX_PIPELINE: usize = 1024;

/// Descriptors kept free beyond one per connection (epoll, waker, stdio,
/// `/proc` reads).
const FD_MARGIN: u64 = 64;

/// An open-loop run that completes less than this share of the asked rate
/// says so: its latencies then include a growing backlog.
const OPEN_LOOP_SHORTFALL: f64 = 0.95;

/// Refresh period of the progress line.
pub const PROGRESS_EVERY: Duration = Duration::from_millis(500);

/// Largest message or chunk accepted (a message is queued whole).
pub const MAX_SIZE: usize = 16 << 20;

/// A workload's service, as one load thread runs it: it opens its
/// connections in `on_start` and leaves its figures in its [`Outbox`] when
/// the loop drops it.
pub trait Load: Service {
    /// Where the service leaves the thread's figures.
    fn outbox(&self) -> &Outbox;
}

/// What to measure.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Workload {
    /// C connections, S-byte messages, --pipeline in flight; round trips/s.
    /// Latency is closed-loop (a message goes out when a reply is in)
    /// unless --rate makes the load open-loop.
    Pingpong,
    /// C connections writing S-byte chunks and reading the echo; MB/s.
    Stream,
    /// C concurrent connectors: connect, S bytes, echo, close; connections/s.
    /// Against an IPv4 loopback target the connectors rotate over 64 source
    /// addresses of 127.0.0.0/8, so TIME_WAIT does not exhaust one port range.
    Connect,
    /// Hold C connections; with --server-pid, server RSS per connection.
    Idle,
    /// C members in one room of `netloop serve chat`, one sender, --pipeline
    /// messages in flight; deliveries/s. Each member checks it gets every
    /// message exactly once and in order.
    Fanout,
    /// C clients of `netloop serve heartbeat`; with --server-pid, its CPU share.
    Heartbeat,
    /// Up to C echo, chat and framed clients with faults and bad inputs,
    /// every byte verified (spawns the servers unless --echo/--chat/--framed).
    Soak,
    /// libuv's ping_pongs: one connection, 5-byte messages ("PING\n" in
    /// libuv), one in flight; round trips/s (pingpong with -c 1 -s 5).
    #[value(name = "ping_pongs", alias = "ping-pongs")]
    PingPongs,
    /// libuv's tcp4_pound_100 (-c 1000: _1000): C clients each connect,
    /// write 1 byte, close when the echo is in, and connect again;
    /// accepts/s and failures.
    Pound,
    /// libuv's million_timers: arm, fire and free --timers one-shot timers
    /// (10,000,000) whose timeouts rise 1 ms per 1,000; no target.
    #[value(name = "million_timers", alias = "million-timers")]
    MillionTimers,
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Workload::Pingpong => "pingpong",
            Workload::Stream => "stream",
            Workload::Connect => "connect",
            Workload::Idle => "idle",
            Workload::Fanout => "fanout",
            Workload::Heartbeat => "heartbeat",
            Workload::Soak => "soak",
            Workload::PingPongs => "ping_pongs",
            Workload::Pound => "pound",
            Workload::MillionTimers => "million_timers",
        })
    }
}

impl Workload {
    fn op_name(self) -> &'static str {
        match self {
            Workload::Pingpong => "round trips",
            Workload::Stream => "chunks",
            Workload::Connect => "connections",
            Workload::Idle => "connections",
            Workload::Fanout => "deliveries",
            Workload::Heartbeat => "pongs",
            Workload::Soak => "messages",
            Workload::PingPongs => "round trips",
            Workload::Pound => "accepts",
            Workload::MillionTimers => "timers",
        }
    }
}

/// `netloop bench` options.
#[derive(Args, Clone, Debug)]
pub struct BenchArgs {
    /// The workload.
    pub workload: Workload,
    /// Server to load (any TCP echo for pingpong/stream/connect/idle).
    #[arg(long, short = 't', default_value = "127.0.0.1:8080")]
    pub target: String,
    /// Connections (connectors for connect, members for fanout, clients for heartbeat).
    /// (Defaults: 50; ping_pongs 1; pound 100, libuv's tcp4_pound_100.)
    #[arg(long, short = 'c', default_value = "50",
          default_value_ifs([("workload", "ping_pongs", "1"), ("workload", "ping-pongs", "1"),
                             ("workload", "pound", "100")]))]
    pub connections: usize,
    /// Message or chunk size (e.g. 64, 64KiB; ping_pongs 5, pound 1, as libuv's).
    #[arg(long, short = 's', value_parser = parse_size, default_value = "64",
          default_value_ifs([("workload", "ping_pongs", "5"), ("workload", "ping-pongs", "5"),
                             ("workload", "pound", "1")]))]
    pub size: usize,
    /// Messages in flight per connection (pingpong) or in the room (fanout).
    #[arg(long, default_value_t = 1)]
    pub pipeline: usize,
    /// Open loop (pingpong): send N requests per second across all
    /// connections on a fixed schedule and time each from when it was due
    /// (as wrk2), instead of the default closed loop, whose latency leaves
    /// out the requests a stalled server holds back.
    #[arg(long, value_name = "N")]
    pub rate: Option<f64>,
    /// Give up when no further connection has become ready (connected and,
    /// for fanout and heartbeat, answered in the service's protocol) for this
    /// long (60 s in all at most).
    #[arg(long, value_parser = parse_duration, default_value = SETUP_TIMEOUT)]
    pub setup_timeout: Duration,
    /// Length of the measured window (soak: of the load phase, default 60s).
    #[arg(long, short = 'd', value_parser = parse_duration, default_value = "5s",
          default_value_if("workload", "soak", "60s"))]
    pub duration: Duration,
    /// Load before the window opens (after every connection is ready).
    #[arg(long, value_parser = parse_duration, default_value = "1s")]
    pub warmup: Duration,
    /// Load threads, one reactor each.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Also report this server process's CPU and RSS (from /proc).
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Chat room for fanout.
    #[arg(long, default_value = "bench")]
    pub room: String,
    /// fanout: the members connect to this server instead of `--target`
    /// (the sender's): another chat process joined to the target's, for
    /// example through `serve chat --redis`, so every delivery crosses
    /// between the two.
    #[arg(long, value_name = "HOST:PORT")]
    pub member_target: Option<String>,
    /// Ping period of each heartbeat client.
    #[arg(long, value_parser = parse_duration, default_value = "1s")]
    pub interval: Duration,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
    /// pingpong: run rust_echo_bench's grid (--grid-sizes × --grid-connections,
    /// 18 cells by default), one run per cell, and print one table.
    #[arg(long)]
    pub grid: bool,
    /// Message sizes of the grid.
    #[arg(long, value_delimiter = ',', value_parser = parse_size, default_value = "128,512,1000")]
    pub grid_sizes: Vec<usize>,
    /// Connection counts of the grid.
    #[arg(long, value_delimiter = ',', default_value = "1,50,150,300,500,1000")]
    pub grid_connections: Vec<usize>,
    /// Also write the latency distribution as an HDR percentile plot (SVG).
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<std::path::PathBuf>,
    /// million_timers: how many timers (libuv's count by default).
    #[arg(long, default_value_t = timers::DEFAULT_TIMERS)]
    pub timers: u64,
    /// Options of the soak workload.
    #[command(flatten)]
    pub soak: soak::SoakArgs,
    /// `--token FILE` (else `NETLOOP_TOKEN`): the fanout members and the
    /// heartbeat clients authenticate with it first, for a server started
    /// with a token. The echo workloads send none.
    #[command(flatten)]
    pub auth: crate::cli::auth_args::ClientAuthArgs,
    /// `--tls`, `--ca`, `--insecure`: load a TLS server. The certificate
    /// is checked against the target's host (an IP address needs an IP
    /// SAN, as `netloop cert` writes for 127.0.0.1).
    #[command(flatten)]
    pub tls: crate::cli::tls_args::ClientTlsArgs,
    /// With TLS: make every handshake a full one (no session resumption),
    /// to measure new-session handshakes.
    #[arg(long)]
    pub tls_no_resume: bool,
}

/// Why a run could not be made.
#[derive(Debug)]
pub enum BenchError {
    /// The target did not resolve.
    Target(String),
    /// Options out of range.
    Options(String),
    /// Not enough descriptors for the connections asked.
    Descriptors {
        /// Descriptors needed.
        need: u64,
        /// Limit after raising it to the hard limit.
        have: u64,
    },
    /// A load thread could not start.
    Thread(String),
    /// `/proc/PID` of the server could not be read.
    Server(String),
    /// Connections failed before the window opened.
    Connect {
        /// How many failed.
        failed: usize,
        /// Out of.
        of: usize,
        /// The first error, as `ECONNREFUSED 127.0.0.1:1: ...`.
        cause: String,
    },
    /// Connections stopped becoming ready for `--setup-timeout` before all
    /// were.
    Setup {
        /// Ready.
        ready: usize,
        /// Needed.
        want: usize,
        /// Waited.
        waited: Duration,
        /// What is likely wrong.
        hint: String,
    },
}

impl fmt::Display for BenchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BenchError::Target(s) => write!(f, "bad target: {s}"),
            BenchError::Options(s) => write!(f, "bad options: {s}"),
            BenchError::Descriptors { need, have } => write!(
                f,
                "need {need} descriptors but the hard limit allows {have} (raise it: ulimit -Hn)"
            ),
            BenchError::Thread(s) => write!(f, "load thread: {s}"),
            BenchError::Server(s) => write!(f, "server process: {s}"),
            BenchError::Connect { failed, of, cause } => {
                write!(f, "{failed} of {of} connections failed: {cause}")
            }
            BenchError::Setup {
                ready,
                want,
                waited,
                hint,
            } => write!(
                f,
                "setup timed out: {ready} of {want} ready after {:.1} s; {hint}",
                waited.as_secs_f64()
            ),
        }
    }
}

impl std::error::Error for BenchError {}

/// Run `netloop bench` and print its report; the exit status is failure if
/// the run could not be made or any echoed byte was wrong.
pub fn run(args: &BenchArgs) -> ExitCode {
    if args.workload == Workload::Soak {
        return soak::run(args);
    }
    if args.workload == Workload::MillionTimers {
        return run_timers(args);
    }
    if args.grid {
        if args.workload != Workload::Pingpong {
            eprintln!("netloop bench: bad options: --grid is for pingpong only");
            return ExitCode::FAILURE;
        }
        return grid::run(args);
    }
    match execute(args) {
        Ok(rep) => {
            if args.json {
                println!("{}", rep.to_json());
            } else {
                print!("{}", rep.to_table(std::io::stdout().is_terminal()));
            }
            if let Some(path) = &args.plot {
                let series = [plot::Series {
                    name: format!("{} {} B × {}", rep.workload, rep.size, rep.connections),
                    points: rep.percentiles.clone(),
                }];
                let title = format!("netloop bench {}: latency by percentile", rep.workload);
                if let Err(e) = plot::latency_svg(path, &title, &series) {
                    eprintln!("netloop bench: --plot {}: {e}", path.display());
                    return ExitCode::FAILURE;
                }
            }
            if rep.mismatched_bytes > 0 {
                eprintln!(
                    "netloop bench: {} echoed bytes were wrong",
                    rep.mismatched_bytes
                );
            }
            if rep.delivery_errors > 0 {
                eprintln!(
                    "netloop bench: {} deliveries were duplicated, missing or out of order",
                    rep.delivery_errors
                );
            }
            if rep.ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("netloop bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `netloop bench million_timers`: measure, print, exit status.
fn run_timers(args: &BenchArgs) -> ExitCode {
    match timers::measure(args.timers) {
        Ok(rep) => {
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string(&rep)
                        .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
                );
            } else {
                print!("{}", rep.to_table());
            }
            if rep.ok() {
                ExitCode::SUCCESS
            } else {
                eprintln!(
                    "netloop bench: {} of {} timers fired",
                    rep.fired, rep.timers
                );
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("netloop bench: million_timers: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Share `total` over `threads`: the first `total % threads` get one more.
pub fn share(total: usize, threads: usize, i: usize) -> usize {
    total / threads + usize::from(i < total % threads)
}

/// Raise the soft descriptor limit to the hard limit; the new soft limit.
pub fn raise_nofile() -> u64 {
    rlimit::increase_nofile_limit(u64::MAX).unwrap_or_else(|_| {
        rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft)
    })
}

/// The load threads of a run: the first share runs on the calling thread
/// ([`Pump`]), the others on spawned threads stopped through their
/// remotes.
struct Running {
    remotes: Vec<Remote<Stop>>,
    handles: Vec<std::thread::JoinHandle<ThreadStats>>,
    pump: Pump,
}

/// The calling thread's share of the load: its loop runs while the
/// coordinator waits ([`Pump::run_for`]), so a one-thread run is a
/// one-thread process. A second thread, even a sleeping one, costs every
/// system call: the kernel takes a reference on the socket's file for each
/// (`fdget`, not its lock-free single-thread case) and libc wraps `send`
/// in its cancellation-point calls. Measured with `echoload` and one idle
/// extra thread: 3 % more CPU per round trip, at ping-pong × 1000.
#[derive(Default)]
struct Pump {
    local: Option<(Reactor, Outbox)>,
    /// The local loop returned (every connection closed, or it failed):
    /// it is kept for its figures, not run again.
    ended: bool,
}

impl Pump {
    /// Run the local loop for `d` (or sleep, if there is none or it has
    /// ended).
    fn run_for(&mut self, d: Duration) {
        let until = Instant::now() + d;
        if let Some((r, _)) = self.local.as_mut().filter(|_| !self.ended) {
            match r.run_until(until) {
                Ok(None) => return,
                Ok(Some(exit)) => log::debug!("bench loop returned: {exit:?}"),
                Err(e) => log::error!("bench loop failed: {e}"),
            }
            self.ended = true;
        }
        std::thread::sleep(until.saturating_duration_since(Instant::now()));
    }

    /// Close the local loop and take its figures.
    fn finish(&mut self) -> Option<ThreadStats> {
        let (r, out) = self.local.take()?;
        // Dropping the loop drops the service, which leaves its figures.
        drop(r);
        Some(out.take())
    }
}

/// What every load thread of a run shares.
struct LoadPlan {
    args: BenchArgs,
    target: SocketAddr,
    member_target: SocketAddr,
    shared: Arc<Shared>,
    fan: Arc<fanout::FanoutShared>,
    token: Option<crate::protocol::auth::Token>,
}

/// Add thread `i`'s workload service (`count` connections, seeds from
/// `seed`) to `r`; returns where it leaves its figures.
fn add_load(r: &mut Reactor, plan: &LoadPlan, i: usize, count: usize, seed: u64) -> Outbox {
    let args = &plan.args;
    let (shared, target) = (plan.shared.clone(), plan.target);
    let size = args.size;
    match args.workload {
        Workload::Pingpong | Workload::PingPongs => {
            let mode = echo_load::Mode::PingPong {
                pipeline: args.pipeline,
            };
            let schedule = args.rate.map(|rate| echo_load::Schedule {
                epoch: shared.epoch,
                period_ns: 1e9 * args.connections as f64 / rate,
                connections: args.connections,
            });
            let load = echo_load::EchoLoad::new(shared, i, target, mode, size, count, seed);
            match schedule {
                Some(s) => add(r, load.with_schedule(s)),
                None => add(r, load),
            }
        }
        Workload::Stream => {
            let mode = echo_load::Mode::Stream;
            add(
                r,
                echo_load::EchoLoad::new(shared, i, target, mode, size, count, seed),
            )
        }
        Workload::Connect | Workload::Pound => {
            add(r, connect::ConnectLoad::new(shared, i, target, size, count))
        }
        Workload::Idle => add(r, idle::IdleLoad::new(shared, i, target, count)),
        Workload::Fanout => add(
            r,
            fanout::FanoutLoad::new(
                shared,
                plan.fan.clone(),
                i,
                target,
                &args.room,
                count,
                args.pipeline,
            )
            .with_token(plan.token.as_ref())
            .with_member_target(plan.member_target),
        ),
        Workload::Heartbeat => add(
            r,
            heartbeat::HeartbeatLoad::new(shared, i, target, count, args.interval)
                .with_token(plan.token.as_ref()),
        ),
        // Run their own coordinators (soak::run, run_timers); never reach
        // here.
        Workload::Soak | Workload::MillionTimers => Outbox::default(),
    }
}

/// Start the run's loops: the first share on this thread (run by the
/// coordinator's waits), each other share on a thread of its own.
fn spawn_threads(
    args: &BenchArgs,
    target: SocketAddr,
    shared: &Arc<Shared>,
    token: Option<crate::protocol::auth::Token>,
) -> Result<Running, BenchError> {
    let plan = Arc::new(LoadPlan {
        args: args.clone(),
        target,
        member_target: match &args.member_target {
            Some(t) => resolve(t)?,
            None => target,
        },
        shared: shared.clone(),
        fan: Arc::new(fanout::FanoutShared::new(args.connections)),
        token,
    });
    let mut local = Reactor::new().map_err(|e| BenchError::Thread(e.to_string()))?;
    let first = share(args.connections, args.threads, 0);
    let out = add_load(&mut local, &plan, 0, first, 0);
    let mut remotes = Vec::new();
    let mut handles = Vec::new();
    let mut first_seed = first as u64;
    for i in 1..args.threads {
        let count = share(args.connections, args.threads, i);
        let (tx, rx) = mpsc::channel::<Result<Remote<Stop>, String>>();
        let plan = plan.clone();
        let seed = first_seed;
        first_seed += count as u64;
        let h = std::thread::Builder::new()
            .name(format!("bench-{i}"))
            .spawn(move || {
                let mut r = match Reactor::new() {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                        return ThreadStats::default();
                    }
                };
                // Hands the coordinator its remote at once.
                r.add_service(Stopper::new(tx));
                let out = add_load(&mut r, &plan, i, count, seed);
                if let Err(e) = r.run() {
                    log::error!("bench loop failed: {e}");
                }
                // Dropping the loop drops the service, which leaves its
                // figures.
                drop(r);
                out.take()
            })
            .map_err(|e| BenchError::Thread(e.to_string()))?;
        match rx.recv() {
            Ok(Ok(remote)) => remotes.push(remote),
            Ok(Err(e)) => return Err(BenchError::Thread(e)),
            Err(_) => return Err(BenchError::Thread("exited at start".into())),
        }
        handles.push(h);
    }
    Ok(Running {
        remotes,
        handles,
        pump: Pump {
            local: Some((local, out)),
            ended: false,
        },
    })
}

/// The run's TLS configuration from `--tls`/`--ca`/`--insecure`.
fn bench_tls(args: &BenchArgs) -> Result<Option<crate::reactor::tls::ClientTls>, BenchError> {
    let host = crate::protocol::target::parse_target(&args.target)
        .map(|(h, _)| h)
        .map_err(|e| BenchError::Options(format!("--target: {e}")))?;
    let Some(mut tls) = args.tls.build(&host).map_err(BenchError::Options)? else {
        return Ok(None);
    };
    if args.tls_no_resume {
        let mut cfg = (*tls.config).clone();
        cfg.resumption = rustls::client::Resumption::disabled();
        tls.config = Arc::new(cfg);
    }
    Ok(Some(tls))
}

/// Add a workload service to its loop; returns where it leaves its figures.
fn add<L: Load>(r: &mut Reactor, load: L) -> Outbox {
    let out = load.outbox().clone();
    r.add_service(load);
    out
}

fn check(args: &BenchArgs) -> Result<SocketAddr, BenchError> {
    if args.threads == 0 || args.connections == 0 {
        return Err(BenchError::Options(
            "--threads and --connections must be at least 1".into(),
        ));
    }
    if args.size == 0 || args.size > MAX_SIZE {
        return Err(BenchError::Options(format!(
            "--size must be 1 B ..= {MAX_SIZE} B"
        )));
    }
    if args.duration.is_zero() {
        return Err(BenchError::Options("--duration must be positive".into()));
    }
    if args.setup_timeout.is_zero() {
        return Err(BenchError::Options(
            "--setup-timeout must be positive".into(),
        ));
    }
    if args.pipeline == 0 || args.pipeline > MAX_PIPELINE {
        return Err(BenchError::Options(format!(
            "--pipeline must be 1 ..= {MAX_PIPELINE} messages in flight"
        )));
    }
    if args.workload == Workload::Heartbeat && args.interval.is_zero() {
        return Err(BenchError::Options("--interval must be positive".into()));
    }
    if let Some(rate) = args.rate {
        if args.workload != Workload::Pingpong {
            return Err(BenchError::Options(
                "--rate (open loop) is for pingpong only".into(),
            ));
        }
        if !(rate.is_finite() && rate >= 1.0) {
            return Err(BenchError::Options(
                "--rate must be at least 1 request per second".into(),
            ));
        }
    }
    if args.member_target.is_some() && args.workload != Workload::Fanout {
        return Err(BenchError::Options(
            "--member-target is for the fanout workload".into(),
        ));
    }
    resolve(&args.target)
}

fn resolve(target: &str) -> Result<SocketAddr, BenchError> {
    target
        .to_socket_addrs()
        .map_err(|e| BenchError::Target(format!("{target}: {e}")))?
        .next()
        .ok_or_else(|| BenchError::Target(target.to_string()))
}

fn sample_server(pid: Option<u32>) -> Result<Option<procstat::ProcSample>, BenchError> {
    pid.map(|p| {
        procstat::sample(&p.to_string()).map_err(|e| BenchError::Server(format!("pid {p}: {e}")))
    })
    .transpose()
}

/// Make the run and return its report (nothing printed but the progress line).
pub fn execute(args: &BenchArgs) -> Result<report::Report, BenchError> {
    let target = check(args)?;
    let need = args.connections as u64 + 1 + FD_MARGIN;
    let have = raise_nofile();
    if need > have {
        return Err(BenchError::Descriptors { need, have });
    }
    let server_start = sample_server(args.server_pid)?;
    let token = crate::protocol::auth::Token::configured(args.auth.token.as_deref())
        .map_err(|e| BenchError::Options(format!("--token: {e}")))?;
    let mut shared = Shared::new(args.threads);
    shared.tls = bench_tls(args)?;
    let shared = Arc::new(shared);
    let mut running = spawn_threads(args, target, &shared, token)?;
    let progress = show_progress(args.json);
    let mut notes = Vec::new();
    if let Err(e) = await_ready(args, target, &shared, &mut running.pump) {
        stop_threads(running, &mut notes);
        return Err(e);
    }
    let ready = shared.ready.load(Relaxed);
    // Operations arrive continuously in these workloads, so a gap with none
    // is a stall; heartbeat beats once per --interval and idle has none.
    let stall_min = match (args.workload, args.rate) {
        (Workload::Idle | Workload::Heartbeat, _) => None,
        // Open loop at a low rate: ten intervals between sends is a stall.
        (_, Some(rate)) => Some(STALL_MIN.max(Duration::from_secs_f64(10.0 / rate))),
        _ => Some(STALL_MIN),
    };
    if args.workload != Workload::Idle {
        let w = wait(
            &shared,
            &mut running.pump,
            args.warmup,
            progress,
            "warm-up",
            stall_min,
            MAX_WARMUP_EXTENSION,
        );
        if w.extended > Duration::ZERO {
            notes.push(format!(
                "warm-up extended by {:.1} s: no operation completed for {:.0} ms (a start-up stall){}",
                w.extended.as_secs_f64(),
                w.longest.as_secs_f64() * 1e3,
                if w.gave_up {
                    "; still stalling when the window opened"
                } else {
                    ""
                }
            ));
        }
    }

    let own0 = procstat::sample("self").unwrap_or_default();
    let srv0 = sample_server(args.server_pid)?;
    let t0 = Instant::now();
    shared.set_phase(Phase::Measure);
    let window = wait(
        &shared,
        &mut running.pump,
        args.duration,
        progress,
        "measure",
        None,
        Duration::ZERO,
    );
    shared.set_phase(Phase::Done);
    let elapsed = t0.elapsed();
    let own1 = procstat::sample("self").unwrap_or_default();
    let srv1 = sample_server(args.server_pid)?;
    if progress {
        eprint!("\r\x1b[K");
    }
    let longest_stall = stall_min.map(|min| {
        if window.longest >= min {
            notes.push(format!(
                "no operation completed for {:.0} ms in the window (a stall: the latency percentiles include it)",
                window.longest.as_secs_f64() * 1e3
            ));
        }
        window.longest
    });

    let total = stop_threads(running, &mut notes);
    let failed = shared.failed.load(Relaxed);
    if total.errors > 0 {
        if let Some(e) = shared.first_error() {
            notes.push(format!("first connection error: {e}"));
        }
    }
    Ok(build_report(
        args,
        target,
        Window {
            elapsed,
            own: own1.cpu.saturating_sub(own0.cpu),
            server: match (server_start, srv0, srv1) {
                (Some(s), Some(a), Some(b)) => Some((s, a, b)),
                _ => None,
            },
            longest_stall,
        },
        ready,
        failed,
        total,
        notes,
    ))
}

/// Stop every load thread and merge what they measured.
fn stop_threads(mut running: Running, notes: &mut Vec<String>) -> ThreadStats {
    for r in &running.remotes {
        r.post(Stop);
    }
    let mut total = running.pump.finish().unwrap_or_default();
    for h in running.handles {
        match h.join() {
            Ok(s) => total.merge(s),
            Err(_) => notes.push("a load thread panicked".into()),
        }
    }
    total
}

/// Wait until every connection is ready (connect: one cycle complete); fail
/// at the first connection that fails before, or at `--setup-timeout`.
fn await_ready(
    args: &BenchArgs,
    target: SocketAddr,
    shared: &Shared,
    pump: &mut Pump,
) -> Result<(), BenchError> {
    let want = match args.workload {
        Workload::Connect | Workload::Pound => 1,
        _ => args.connections,
    };
    // A heartbeat client's first ping goes out within one --interval (they
    // are staggered over it): give the answer at least two.
    let quiet_limit = match args.workload {
        Workload::Heartbeat => args.setup_timeout.max(args.interval * 2),
        _ => args.setup_timeout,
    };
    let t = Instant::now();
    let mut last_ready = 0;
    let mut last_progress = t;
    loop {
        let failed = shared.failed.load(Relaxed);
        if failed > 0 {
            return Err(BenchError::Connect {
                failed,
                of: args.connections,
                cause: shared
                    .first_error()
                    .unwrap_or_else(|| format!("{target} closed the connection")),
            });
        }
        let ready = shared.ready.load(Relaxed);
        if ready >= want {
            return Ok(());
        }
        if ready != last_ready {
            last_ready = ready;
            last_progress = Instant::now();
        }
        // Give up after --setup-timeout without one more connection ready,
        // not after --setup-timeout in all: a thousand connects into a full
        // listen queue complete in bursts as the kernel retries their SYNs
        // (after 1, 3, 7 s), each burst well within the limit, while a
        // server of the wrong kind makes no connection ready at all.
        if last_progress.elapsed() >= quiet_limit || t.elapsed() >= MAX_SETUP {
            let missing = want - ready;
            let hint = match args.workload {
                Workload::Fanout => format!(
                    "{missing} member(s) got no message relayed: is {target} a chat server (netloop serve chat)?"
                ),
                Workload::Heartbeat => format!(
                    "{missing} client(s) got no ping or pong back: is {target} a heartbeat server (netloop serve heartbeat)?"
                ),
                _ => format!("{missing} connection(s) not ready: is {target} an echo server?"),
            };
            return Err(BenchError::Setup {
                ready,
                want,
                waited: t.elapsed(),
                hint,
            });
        }
        pump.run_for(READY_SAMPLE);
    }
}

/// Figures taken at the window's edges.
struct Window {
    elapsed: Duration,
    own: Duration,
    /// Server: before connecting, window start, window end.
    server: Option<(
        procstat::ProcSample,
        procstat::ProcSample,
        procstat::ProcSample,
    )>,
    /// Longest time without a completed operation, where that is a stall.
    longest_stall: Option<Duration>,
}

fn build_report(
    args: &BenchArgs,
    target: SocketAddr,
    w: Window,
    ready: usize,
    failed: usize,
    total: ThreadStats,
    mut notes: Vec<String>,
) -> report::Report {
    let secs = w.elapsed.as_secs_f64().max(1e-9);
    // available_parallelism reads the affinity mask (sched_getaffinity), so
    // `taskset -c 1` counts as one core.
    let allowed = std::thread::available_parallelism().map_or(1, |n| n.get());
    if args.threads > allowed {
        notes.push(format!(
            "--threads {} exceeds the {allowed} core(s) this process may run on (affinity mask): \
             the threads take turns on a core, which adds their waits to the latency",
            args.threads
        ));
    }
    let cores = allowed.min(args.threads).max(1);
    let gen_pct = 100.0 * w.own.as_secs_f64() / secs / cores as f64;
    // Said once, in the report's generator row (and its JSON flag).
    let saturated = gen_pct >= report::SATURATED_PCT;
    let h = &total.latency;
    let percentiles = plot::quantiles(h.len())
        .into_iter()
        .filter(|_| !h.is_empty())
        .map(|q| (q, h.value_at_quantile(q) as f64 / 1e3))
        .collect();
    let latency = (!h.is_empty()).then(|| report::Latency {
        p50: h.value_at_quantile(0.50) as f64 / 1e3,
        p99: h.value_at_quantile(0.99) as f64 / 1e3,
        p999: h.value_at_quantile(0.999) as f64 / 1e3,
        max: h.max() as f64 / 1e3,
        mean: h.mean() / 1e3,
    });
    // Idle counts connections made ready, whenever they became so.
    let ops = total.ops;
    let held = total.extra.iter().find(|(k, _)| *k == "held").map(|x| x.1);
    let server = w.server.zip(args.server_pid).map(|((start, a, b), pid)| {
        let cpu = b.cpu.saturating_sub(a.cpu).as_secs_f64();
        let per_op_base = match args.workload {
            Workload::Idle => held.unwrap_or(ops),
            _ => ops,
        };
        report::Server {
            pid,
            cpu_s: cpu,
            cpu_pct: 100.0 * cpu / secs,
            cpu_us_per_op: (per_op_base > 0).then(|| cpu * 1e6 / per_op_base as f64),
            // Per MB only where bytes are the work: ping-pong's 64-byte
            // messages make it a restatement of CPU per round trip.
            cpu_us_per_mb: (total.bytes > 0 && args.workload == Workload::Stream)
                .then(|| cpu * 1e6 / (total.bytes as f64 / 1e6)),
            rss_kib_start: start.rss_kib,
            rss_kib_end: b.rss_kib,
            rss_bytes_per_conn: match (args.workload, held) {
                (Workload::Idle, Some(n)) if n > 0 => {
                    Some((b.rss_kib as f64 - start.rss_kib as f64) * 1024.0 / n as f64)
                }
                _ => None,
            },
        }
    });
    let extra: BTreeMap<String, u64> = total
        .extra
        .iter()
        .map(|(k, v)| (k.to_string(), *v))
        .collect();
    let rate_ops = match args.workload {
        // Idle: connections made ready per second is not a throughput; the
        // count is what matters.
        Workload::Idle => 0.0,
        _ => ops as f64 / secs,
    };
    if let Some(rate) = args.rate {
        if rate_ops < OPEN_LOOP_SHORTFALL * rate {
            notes.push(format!(
                "only {rate_ops:.0} of the {rate:.0} requests/s asked were completed: the backlog's waiting is in the latency"
            ));
        }
    }
    let delivery_errors = [fanout::DUPLICATED, fanout::MISSING, fanout::REORDERED]
        .iter()
        .filter_map(|k| extra.get(*k))
        .sum();
    report::Report {
        workload: args.workload.to_string(),
        op: args.workload.op_name().to_string(),
        target: target.to_string(),
        threads: args.threads,
        connections: args.connections,
        size: args.size,
        pipeline: args.pipeline,
        load: match (args.workload, args.rate) {
            (_, Some(_)) => "open-loop",
            // Pings go out on each client's timer, answered or not.
            (Workload::Heartbeat, None) => "paced",
            (Workload::Idle, None) => "none",
            _ => "closed-loop",
        }
        .into(),
        rate_target: args.rate,
        duration_s: secs,
        ready,
        failed,
        ops,
        ops_per_sec: rate_ops,
        bytes: total.bytes,
        mb_per_sec: total.bytes as f64 / 1e6 / secs,
        errors: total.errors,
        mismatched_bytes: total.mismatched,
        delivery_errors,
        longest_stall_ms: w.longest_stall.map(|d| d.as_secs_f64() * 1e3),
        latency_us: latency,
        percentiles,
        generator: report::Generator {
            cpu_s: w.own.as_secs_f64(),
            cpu_pct: gen_pct,
            saturated,
        },
        server,
        extra,
        notes,
    }
}

/// Whether to draw the progress line: only for a person watching, i.e.
/// when both stdout and stderr are terminals and the output is not JSON
/// (a script that captures either gets no carriage returns in it).
pub fn show_progress(json: bool) -> bool {
    !json && std::io::stderr().is_terminal() && std::io::stdout().is_terminal()
}

/// The progress line: phase, elapsed / total, operations so far, and the
/// current rate (over the last [`PROGRESS_EVERY`], so a stall shows at once
/// instead of being averaged away).
pub fn progress_line(
    what: &str,
    elapsed: Duration,
    total: Duration,
    done: u64,
    rate: f64,
) -> String {
    format!(
        "{what} {:.1}/{:.1} s  {} ops  {}/s now",
        elapsed.as_secs_f64(),
        total.as_secs_f64(),
        report::group(done),
        report::group(rate.max(0.0).round() as u64)
    )
}

/// What [`wait`] saw.
#[derive(Debug, Default)]
struct Waited {
    /// Longest gap without a completed operation.
    longest: Duration,
    /// Time added to the asked duration because of stalls.
    extended: Duration,
    /// The extension reached [`MAX_WARMUP_EXTENSION`] while still stalling.
    gave_up: bool,
}

/// Wait `d`, sampling progress every [`STALL_SAMPLE`] (and printing it on a
/// terminal). With `steady_after` (the warm-up), go on past `d` until no
/// gap of that length has been seen for [`STEADY`], for at most `cap` more.
fn wait(
    shared: &Shared,
    pump: &mut Pump,
    d: Duration,
    progress: bool,
    what: &str,
    steady_after: Option<Duration>,
    cap: Duration,
) -> Waited {
    let start = Instant::now();
    let base = shared.progress_total();
    let mut out = Waited::default();
    let mut last_count = base;
    let mut last_change = start;
    let mut last_stall_end: Option<Instant> = None;
    let mut last_print = start;
    let mut printed = base;
    loop {
        let now = Instant::now();
        let t = now - start;
        // Steady: no gap open now, and none ended within the last STEADY.
        let steady = match steady_after {
            Some(min) => {
                now - last_change < min && last_stall_end.is_none_or(|end| now - end >= STEADY)
            }
            None => true,
        };
        if t >= d && steady {
            break;
        }
        if t >= d + cap {
            out.gave_up = true;
            break;
        }
        pump.run_for(STALL_SAMPLE);
        let now = Instant::now();
        let count = shared.progress_total();
        if count != last_count {
            let gap = now - last_change;
            if steady_after.is_some_and(|min| gap >= min) {
                last_stall_end = Some(now);
            }
            out.longest = out.longest.max(gap);
            last_count = count;
            last_change = now;
        }
        if progress && now - last_print >= PROGRESS_EVERY {
            let recent = (count - printed) as f64 / (now - last_print).as_secs_f64();
            last_print = now;
            printed = count;
            eprint!(
                "\r\x1b[K{}",
                progress_line(what, now - start, d, count - base, recent)
            );
            let _ = std::io::stderr().flush();
        }
    }
    // A gap still open at the end counts too.
    out.longest = out.longest.max(Instant::now() - last_change);
    // Extended only for a stall: one that ended, or one still open when the
    // extension ran out (a server stalled from the start).
    let stalled = out.gave_up || last_stall_end.is_some();
    if steady_after.is_some() && stalled {
        out.extended = start.elapsed().saturating_sub(d);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_warm_up_stalled_throughout_is_extended_to_its_cap_and_says_so() {
        // No load thread: nothing ever completes, as with a server that
        // stalls from the start.
        let shared = Shared::new(1);
        let cap = Duration::from_millis(150);
        let w = wait(
            &shared,
            &mut Pump::default(),
            Duration::from_millis(50),
            false,
            "warm-up",
            Some(Duration::from_millis(20)),
            cap,
        );
        assert!(w.gave_up);
        assert!(w.extended >= cap, "{w:?}");
        assert!(w.longest >= Duration::from_millis(200), "{w:?}");
        // The measured window is never extended.
        let w = wait(
            &shared,
            &mut Pump::default(),
            Duration::from_millis(30),
            false,
            "m",
            None,
            cap,
        );
        assert!(!w.gave_up && w.extended.is_zero(), "{w:?}");
    }

    #[test]
    fn progress_line_gives_elapsed_of_total_and_the_current_rate() {
        let line = progress_line(
            "measure",
            Duration::from_millis(1500),
            Duration::from_secs(5),
            123_456,
            80_000.4,
        );
        assert_eq!(line, "measure 1.5/5.0 s  123,456 ops  80,000/s now");
        // Not a terminal under `cargo test` (captured output), and never with --json.
        assert!(!show_progress(true));
    }

    #[test]
    fn shares_add_up() {
        for total in [1usize, 7, 50, 1000] {
            for threads in 1..5 {
                let sum: usize = (0..threads).map(|i| share(total, threads, i)).sum();
                assert_eq!(sum, total);
            }
        }
        assert_eq!(share(7, 2, 0), 4);
        assert_eq!(share(7, 2, 1), 3);
    }
}
