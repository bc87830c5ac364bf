//! What every `netloop serve APP` shares: the listen options on the command
//! line, and running a service until shutdown.

use crate::cli::fatal;
use crate::cli::units::{format_size, parse_duration, parse_size};
use crate::metrics::http::MetricsAddr;
use crate::protocol::target::host_port;
use crate::reactor::config::{DEFAULT_HIGH_WATER_MARK, DEFAULT_MAX_WRITE_BUFFER};
use crate::{Exit, ListenOptions, Reactor, Service, SocketOptions};
use clap::Args;
use std::process::ExitCode;
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

/// Listen with `args` for `service`, run the loop until shutdown, map the
/// outcome to an exit status.
pub fn serve_service<S: Service>(args: &ServerArgs, service: S) -> ExitCode {
    serve_service_with(args, |_| {}, service)
}

/// Like [`serve_service`], with the listen options adjusted by `adjust`
/// first (for example `allow_half_open` for the half-close demo).
pub fn serve_service_with<S: Service>(
    args: &ServerArgs,
    adjust: impl FnOnce(&mut ListenOptions),
    service: S,
) -> ExitCode {
    let mut opts = args.listen_options();
    adjust(&mut opts);
    opts.tls = match args.tls.load() {
        Ok(t) => t,
        Err(code) => return code,
    };
    let metrics_tls = match args.tls.load_metrics() {
        Ok(t) => t,
        Err(code) => return code,
    };
    let mut r = match Reactor::new() {
        Ok(r) => r,
        Err(e) => return fatal(format_args!("cannot create the event loop: {e}")),
    };
    if let Err(e) = r.handle_signals(args.grace) {
        return fatal(format_args!("cannot install signal handlers: {e}"));
    }
    if let Err(e) = r.serve(opts, service) {
        let at = host_port(&args.host, args.port);
        return fatal(format_args!("cannot listen on {at}: {}", e.cause()));
    }
    if let Some(addr) = &args.metrics {
        if let Err(e) = crate::metrics::http::listen_tls(&mut r, addr, metrics_tls) {
            return fatal(format_args!(
                "cannot serve metrics on {addr}: {}",
                e.cause()
            ));
        }
    }
    r.set_trace_loop(args.trace_loop);
    let outcome = r.run();
    if outcome.is_ok() {
        log::info!("{}", r.metrics().summary());
    }
    match outcome {
        Ok(Exit::Forced(sig)) => ExitCode::from(128u8.saturating_add(sig as u8)),
        Ok(_) => {
            log::info!("shut down");
            ExitCode::SUCCESS
        }
        Err(e) => {
            log::error!("event loop failed: {e}");
            ExitCode::FAILURE
        }
    }
}
