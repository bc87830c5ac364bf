//! The `netloop` binary: runs the servers and clients of the tutorial.

use clap::{Parser, Subcommand};
use netloop::cli::line_args::LineArgs;
use netloop::cli::serve::{serve, serve_with, ServerArgs};
use std::process::ExitCode;

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
    /// Interactive line client with auto-reconnect (reads standard input; a pipe works too).
    Connect(ConnectArgs),
    /// The half-close demo client: plays one scenario against `serve halfclose`.
    Halfclose {
        /// Server address.
        #[arg(value_name = "HOST:PORT", value_parser = netloop::client::parse_host_port)]
        addr: (String, u16),
        /// The scenario.
        #[arg(value_enum, default_value = "normal")]
        scenario: netloop::client::halfclose::Scenario,
        /// Language of the client's last line (en, or zh as the seed).
        #[arg(long, value_enum, default_value = "en")]
        lang: netloop::apps::catalog::Lang,
    },
}

/// Options of `netloop connect`.
#[derive(clap::Args)]
struct ConnectArgs {
    /// Server address.
    #[arg(value_name = "HOST:PORT", value_parser = netloop::client::parse_host_port)]
    addr: (String, u16),
    /// Reconnect attempts after a lost or failed connection before giving up.
    #[arg(long, default_value_t = netloop::client::backoff::DEFAULT_MAX_ATTEMPTS)]
    max_attempts: u32,
    /// Do not reconnect.
    #[arg(long)]
    no_reconnect: bool,
    /// First reconnect delay (doubles per attempt, with jitter).
    #[arg(long, value_parser = netloop::cli::units::parse_duration, default_value = "1s")]
    reconnect_delay: std::time::Duration,
    /// Longest reconnect delay.
    #[arg(long, value_parser = netloop::cli::units::parse_duration, default_value = "5s")]
    reconnect_max_delay: std::time::Duration,
    /// After end of input or /quit, close if the server stays silent this long (e.g. 500ms).
    #[arg(long, value_parser = netloop::cli::units::parse_duration, default_value = "1s")]
    linger: std::time::Duration,
    /// Connect timeout of each attempt.
    #[arg(long, value_parser = netloop::cli::units::parse_duration, default_value = "10s")]
    connect_timeout: std::time::Duration,
}

#[derive(Subcommand)]
enum ServeApp {
    /// Raw byte echo with pipe backpressure (the benchmark server).
    Echo {
        #[command(flatten)]
        common: ServerArgs,
        /// The seed's first server instead: a welcome line, then each line echoed with a prefix
        /// (takes --lang and --max-line).
        #[arg(long)]
        banner: bool,
        #[command(flatten)]
        line: LineArgs,
    },
    /// The command server (/info, /list, /quit; idle timeout 30 s by default).
    Command {
        #[command(flatten)]
        common: ServerArgs,
        #[command(flatten)]
        line: LineArgs,
    },
    /// The multi-room chat (nicknames, rooms, whispers; idle timeout 60 s by default).
    Chat {
        #[command(flatten)]
        common: ServerArgs,
        #[command(flatten)]
        line: LineArgs,
    },
    /// The half-close demo server (CLOSE_WRITE, SHUTDOWN; half-open on).
    Halfclose {
        #[command(flatten)]
        common: ServerArgs,
        #[command(flatten)]
        line: LineArgs,
    },
}

/// `common` with `default` as its idle timeout unless one was given.
fn with_idle(mut common: ServerArgs, default: std::time::Duration) -> ServerArgs {
    common.idle_timeout.get_or_insert(default);
    common
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    match cli.cmd {
        Command::Connect(a) => {
            netloop::client::interactive::run(netloop::client::interactive::ClientOptions {
                host: a.addr.0,
                port: a.addr.1,
                reconnect: !a.no_reconnect,
                backoff: netloop::client::backoff::BackoffConfig {
                    base: a.reconnect_delay,
                    cap: a.reconnect_max_delay.max(a.reconnect_delay),
                    max_attempts: a.max_attempts,
                },
                linger: a.linger,
                connect_timeout: a.connect_timeout,
            })
        }
        Command::Halfclose {
            addr,
            scenario,
            lang,
        } => netloop::client::halfclose::run(&addr.0, addr.1, scenario, lang),
        Command::Serve { app } => match app {
            ServeApp::Echo {
                common,
                banner: false,
                ..
            } => serve(&common, netloop::apps::echo::Echo),
            ServeApp::Echo {
                common,
                banner: true,
                line,
            } => serve(
                &common,
                netloop::apps::banner_echo::BannerEcho::new(line.catalog(), line.max_line),
            ),
            ServeApp::Command { common, line } => serve(
                &with_idle(common, std::time::Duration::from_secs(30)),
                netloop::apps::command::CommandServer::new(line.catalog(), line.max_line),
            ),
            ServeApp::Chat { common, line } => serve(
                &with_idle(common, std::time::Duration::from_secs(60)),
                netloop::apps::chat::ChatServer::new(line.catalog(), line.max_line),
            ),
            ServeApp::Halfclose { common, line } => serve_with(
                &common,
                |o| o.socket.allow_half_open = true,
                netloop::apps::halfclose::HalfCloseServer::new(line.catalog(), line.max_line),
            ),
        },
    }
}
