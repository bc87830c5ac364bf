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
