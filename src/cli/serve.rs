//! What every `netloop serve APP` shares: the listen options on the command
//! line, and running a service until shutdown.

use crate::cli::fatal;
use crate::cli::units::{format_size, parse_duration, parse_size};
use crate::metrics::http::MetricsAddr;
use crate::metrics::workers::WorkerBoard;
use crate::protocol::target::host_port;
use crate::reactor::config::{DEFAULT_HIGH_WATER_MARK, DEFAULT_MAX_WRITE_BUFFER};
use crate::workers::{self, Worker, WorkerCount, WorkersError};
use crate::{Exit, ListenOptions, Service, SocketOptions};
use clap::Args;
use std::process::ExitCode;
use std::sync::OnceLock;
use std::time::Duration;

/// Options every server takes.
#[derive(Args, Clone, Debug)]
pub struct ServerArgs {
    /// Address to bind. Anything but loopback is reachable from other hosts:
    /// use TLS there (--tls-cert, --tls-key).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on; 0 picks a free one.
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Accept at most this many connections; more are accepted and closed.
    #[arg(long)]
    pub max_connections: Option<usize>,
    /// Inactivity timeout per connection (e.g. 30s; a bare number is ms; 0 = off).
    #[arg(long, value_parser = parse_duration)]
    pub idle_timeout: Option<Duration>,
    /// write() reports backpressure at this many queued bytes (e.g. 64KiB).
    #[arg(long, value_parser = parse_size, default_value = format_size(DEFAULT_HIGH_WATER_MARK))]
    pub high_water_mark: usize,
    /// A connection whose write queue passes this is destroyed as a slow consumer.
    #[arg(long, value_parser = parse_size, default_value = format_size(DEFAULT_MAX_WRITE_BUFFER))]
    pub max_write_buffer: usize,
    /// Time given to connections to close on SIGINT/SIGTERM before they are destroyed.
    #[arg(long, value_parser = parse_duration, default_value = "5s")]
    pub grace: Duration,
    /// Serve loop metrics in the Prometheus text format on `GET /metrics`
    /// at HOST:PORT (e.g. 127.0.0.1:9100).
    #[arg(long, value_name = "HOST:PORT")]
    pub metrics: Option<MetricsAddr>,
    /// Log one line per loop iteration (phase timings, events, timers fired,
    /// ready-list length), at most 10 a second.
    #[arg(long)]
    pub trace_loop: bool,
    /// Event loops to run, each on its own thread with its own listening
    /// socket (SO_REUSEPORT): a number, or `auto` for one per core this
    /// process may use.
    #[arg(long, default_value = "1", value_name = "N|auto")]
    pub workers: WorkerCount,
    /// Log every callback that holds the loop this long or longer (event,
    /// phase, service, connection, peer), count them on /metrics and keep
    /// the 20 slowest of the last minute on /stats (0 = off).
    #[arg(long, value_parser = parse_duration, default_value = "50ms", value_name = "DURATION")]
    pub slow_callback: Duration,
    /// TLS for the service and for the metrics endpoint.
    #[command(flatten)]
    pub tls: crate::cli::tls_args::ServerTlsArgs,
}

impl ServerArgs {
    /// The listen options these arguments describe.
    pub fn listen_options(&self) -> ListenOptions {
        ListenOptions {
            host: self.host.clone(),
            port: self.port,
            max_connections: self.max_connections,
            socket: SocketOptions {
                high_water_mark: self.high_water_mark,
                max_write_buffer: self.max_write_buffer.max(self.high_water_mark),
                idle_timeout: self.idle_timeout.filter(|d| !d.is_zero()),
                ..SocketOptions::default()
            },
            ..ListenOptions::default()
        }
    }
}

/// Listen with `args` for the service `make` builds (one per worker), run
/// the loops until shutdown, map the outcome to an exit status.
pub fn serve_service<S: Service>(args: &ServerArgs, make: impl Fn(Worker) -> S + Sync) -> ExitCode {
    serve_service_with(args, |_| {}, make)
}

/// Like [`serve_service`], with the listen options adjusted by `adjust`
/// first (for example `allow_half_open` for the half-close demo).
///
/// With `--workers N` (N > 1) every worker listens on the same address with
/// `SO_REUSEPORT`; a port of 0 is picked by worker 0 and shared. The
/// `--metrics` endpoint runs on the last worker, so it listens only once
/// every worker's agent is on the board, and reports every worker
/// ([`crate::metrics::workers`]).
pub fn serve_service_with<S: Service>(
    args: &ServerArgs,
    adjust: impl Fn(&mut ListenOptions) + Sync,
    make: impl Fn(Worker) -> S + Sync,
) -> ExitCode {
    let tls = match args.tls.load() {
        Ok(t) => t,
        Err(code) => return code,
    };
    let metrics_tls = match args.tls.load_metrics() {
        Ok(t) => t,
        Err(code) => return code,
    };
    let count = args.workers.resolve();
    let port = OnceLock::new();
    let board = WorkerBoard::new(count);
    let outcome = workers::run(count, args.grace, |w, r| {
        let mut opts = args.listen_options();
        adjust(&mut opts);
        opts.tls = tls.clone();
        if w.count > 1 {
            opts.reuse_port = true;
            if let Some(p) = port.get() {
                opts.port = *p;
            }
        }
        let server = r.serve(opts, make(w)).map_err(|e| {
            let at = host_port(&args.host, args.port);
            format!("cannot listen on {at}: {}", e.cause())
        })?;
        if let Some(addr) = r.server_addr(server) {
            let _ = port.set(addr.port());
        }
        if w.count > 1 {
            board.join(w.index, r);
        }
        if w.index + 1 == w.count {
            if let Some(addr) = &args.metrics {
                let res = if w.count > 1 {
                    crate::metrics::http::listen_workers(
                        r,
                        addr,
                        board.clone(),
                        metrics_tls.clone(),
                    )
                } else {
                    crate::metrics::http::listen_tls(r, addr, metrics_tls.clone())
                };
                res.map_err(|e| format!("cannot serve metrics on {addr}: {}", e.cause()))?;
            }
        }
        r.set_trace_loop(args.trace_loop);
        r.set_slow_callback(Some(args.slow_callback));
        Ok(())
    });
    match outcome {
        Ok(Exit::Forced(sig)) => ExitCode::from(128u8.saturating_add(sig as u8)),
        Ok(_) => {
            log::info!("shut down");
            ExitCode::SUCCESS
        }
        Err(
            e @ (WorkersError::Setup { .. } | WorkersError::Loop(_) | WorkersError::Signals(_)),
        ) => fatal(format_args!("{e}")),
        Err(e) => {
            log::error!("{e}");
            ExitCode::FAILURE
        }
    }
}
