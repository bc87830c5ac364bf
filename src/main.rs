//! The `netloop` binary: runs the servers and clients of the tutorial.

use clap::{Parser, Subcommand};
use netloop::cli::serve::{serve, ServerArgs};
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
    /// Load a TCP server and measure it (pingpong, stream, connect, idle, fanout, heartbeat).
    Bench(netloop::bench::BenchArgs),
}

#[derive(Subcommand)]
enum ServeApp {
    /// Raw byte echo with pipe backpressure (the benchmark server).
    Echo {
        #[command(flatten)]
        common: ServerArgs,
    },
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    match cli.cmd {
        Command::Serve { app } => match app {
            ServeApp::Echo { common } => serve(&common, netloop::apps::echo::Echo),
        },
        Command::Bench(args) => netloop::bench::run(&args),
    }
}
