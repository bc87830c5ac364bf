//! The `netloop` binary: runs the servers and clients of the tutorial.

use clap::{Parser, Subcommand};
use netloop::cli::serve::{serve, ServerArgs};
use netloop::cli::target::parse_target;
use netloop::cli::units::{parse_duration, parse_size};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "netloop",
    version,
    about = "Node's net module and event loop, as a hand-written mio reactor"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one of the servers.
    Serve {
        #[command(subcommand)]
        app: ServeApp,
    },
    /// Client of `serve framed`: pings, and commands from stdin.
    Framed {
        /// Server address.
        #[arg(value_parser = parse_target)]
        target: (String, u16),
        /// Interval of the automatic pings (0 = off).
        #[arg(long, value_parser = parse_duration, default_value = "30s")]
        ping_interval: Duration,
        /// Largest frame body accepted or sent.
        #[arg(long, value_parser = parse_size, default_value = "1MiB")]
        max_frame: usize,
    },
    /// Client of `serve heartbeat`: answers pings, measures RTT, reconnects.
    Heartbeat {
        /// Server address.
        #[arg(value_parser = parse_target)]
        target: (String, u16),
        /// Print the statistics and exit after this long (e.g. 10s).
        #[arg(long, value_parser = parse_duration)]
        duration: Option<Duration>,
        /// Ping interval until the server announces its own.
        #[arg(long, value_parser = parse_duration, default_value = "30s")]
        interval: Duration,
        /// First reconnect delay; doubles per failure, with jitter.
        #[arg(long, value_parser = parse_duration, default_value = "1s")]
        reconnect_delay: Duration,
        /// Reconnect attempts in a row before giving up (0 = never).
        #[arg(long, default_value_t = 5)]
        max_reconnects: u32,
    },
    /// Client of `serve upload`: sends files, checks size and SHA-256.
    Upload {
        /// Server address.
        #[arg(value_parser = parse_target)]
        target: (String, u16),
        /// Files to send, one after the other on one connection.
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
    },
}

#[derive(Subcommand)]
enum ServeApp {
    /// Raw byte echo with pipe backpressure (the benchmark server).
    Echo {
        #[command(flatten)]
        common: ServerArgs,
    },
    /// Length-prefixed JSON messages: ping, echo, broadcast.
    Framed {
        #[command(flatten)]
        common: ServerArgs,
        /// Largest frame body accepted (checked on the length prefix).
        #[arg(long, value_parser = parse_size, default_value = "1MiB")]
        max_frame: usize,
    },
    /// JSON-lines heartbeat: pings every client, drops silent ones.
    Heartbeat {
        #[command(flatten)]
        common: ServerArgs,
        /// Interval between pings to each client.
        #[arg(long, value_parser = parse_duration, default_value = "10s")]
        heartbeat_interval: Duration,
        /// Silence after which a client gets up to 3 urgent pings, then is dropped.
        #[arg(long, value_parser = parse_duration, default_value = "30s")]
        heartbeat_timeout: Duration,
        /// Interval of the server_status broadcast (0 = off).
        #[arg(long, value_parser = parse_duration, default_value = "60s")]
        status_interval: Duration,
    },
    /// File upload: header block, then exactly Filesize bytes, stored durably.
    Upload {
        #[command(flatten)]
        common: ServerArgs,
        /// Directory the files are stored in (created if missing).
        #[arg(long, default_value = "./uploads")]
        upload_dir: std::path::PathBuf,
        /// Largest accepted Filesize.
        #[arg(long, value_parser = parse_size, default_value = "1GiB")]
        max_file_size: usize,
    },
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    match cli.cmd {
        Command::Serve { app } => match app {
            ServeApp::Echo { common } => serve(&common, netloop::apps::echo::Echo),
            ServeApp::Framed { common, max_frame } => {
                let cfg = netloop::apps::framed::FramedConfig { max_frame };
                serve(&common, netloop::apps::framed::Framed::new(cfg))
            }
            ServeApp::Heartbeat {
                common,
                heartbeat_interval,
                heartbeat_timeout,
                status_interval,
            } => {
                use netloop::apps::heartbeat::server::{HeartbeatConfig, HeartbeatServer};
                let cfg = HeartbeatConfig {
                    interval: heartbeat_interval,
                    timeout: heartbeat_timeout,
                    status_interval,
                    ..HeartbeatConfig::default()
                };
                serve(&common, HeartbeatServer::new(cfg))
            }
            ServeApp::Upload {
                common,
                upload_dir,
                max_file_size,
            } => netloop::apps::upload::server::serve_upload(
                common,
                upload_dir,
                max_file_size as u64,
            ),
        },
        Command::Framed {
            target,
            ping_interval,
            max_frame,
        } => {
            use netloop::apps::framed_client::{run, FramedClientConfig};
            let mut cfg = FramedClientConfig::new(&target.0, target.1);
            cfg.ping_interval = ping_interval;
            cfg.max_frame = max_frame;
            run(cfg)
        }
        Command::Heartbeat {
            target,
            duration,
            interval,
            reconnect_delay,
            max_reconnects,
        } => {
            use netloop::apps::heartbeat::client::{run, HeartbeatClientConfig};
            let mut cfg = HeartbeatClientConfig::new(&target.0, target.1);
            cfg.duration = duration;
            cfg.interval = interval;
            cfg.reconnect_delay = reconnect_delay;
            cfg.max_reconnects = max_reconnects;
            run(cfg)
        }
        Command::Upload { target, files } => {
            netloop::apps::upload::client::run(&target.0, target.1, &files)
        }
    }
}
