//! The `netloop` binary: runs the servers and clients of the tutorial.

use clap::{Parser, Subcommand};
use netloop::cli::auth_args::{serve_guarded, AuthArgs, ClientAuthArgs};
use netloop::cli::line_args::{LangArgs, LineArgs};
use netloop::cli::serve::{serve_service, serve_service_with, ServerArgs};
use netloop::cli::tls_args::ClientTlsArgs;
use netloop::cli::units::{parse_duration, parse_size};
use netloop::protocol::target::parse_target;
use netloop::servers::auth_guard::AuthWire;
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
    /// Interactive line client with auto-reconnect (reads standard input; a pipe works too).
    Connect(ConnectArgs),
    /// The half-close demo client: plays one scenario against `serve halfclose`.
    Halfclose {
        /// Server address.
        #[arg(value_name = "HOST:PORT", value_parser = parse_target)]
        addr: (String, u16),
        /// The scenario.
        #[arg(value_enum, default_value = "normal")]
        scenario: netloop::clients::halfclose::Scenario,
        /// Language of the client's last line (en, or zh as the seed).
        #[arg(long, value_enum, default_value = "en")]
        lang: netloop::protocol::catalog::Lang,
        #[command(flatten)]
        tls: ClientTlsArgs,
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
        #[command(flatten)]
        auth: ClientAuthArgs,
        #[command(flatten)]
        tls: ClientTlsArgs,
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
        #[command(flatten)]
        auth: ClientAuthArgs,
        #[command(flatten)]
        tls: ClientTlsArgs,
    },
    /// Client of `serve upload`: sends files, checks size and SHA-256.
    Upload {
        /// Server address.
        #[arg(value_parser = parse_target)]
        target: (String, u16),
        /// Files to send, one after the other on one connection.
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
        /// Longest silence of the server after the last byte of a file.
        #[arg(long, value_parser = parse_duration, default_value = "30s")]
        reply_timeout: Duration,
        #[command(flatten)]
        auth: ClientAuthArgs,
        #[command(flatten)]
        tls: ClientTlsArgs,
    },
    /// The live view of a server's loop in the terminal, from its `--metrics` endpoint.
    ///
    /// Polls `GET /stats` once a second: time per phase, utilisation, loop
    /// delay, connections by state, queues, busy time by service, slow
    /// callbacks. `q` or Esc quits.
    Top {
        /// The `--metrics` address of the server (e.g. 127.0.0.1:9100).
        #[arg(value_name = "HOST:PORT", value_parser = parse_target)]
        target: (String, u16),
        /// Print one frame as plain text (two polls one interval apart) and exit.
        #[arg(long)]
        once: bool,
        /// Time between polls.
        #[arg(long, value_parser = parse_duration, default_value = "1s")]
        interval: Duration,
    },
    /// Write a throw-away CA and a server certificate signed by it, for
    /// trying TLS (`--tls-cert`/`--tls-key` on a server, `--ca` on a client).
    Cert(netloop::cli::tls_args::CertArgs),
    /// Load a TCP server and measure it (pingpong, stream, connect, idle, fanout, heartbeat).
    ///
    /// Latency is closed-loop (each connection sends when its reply is in, so
    /// a stalled server's backlog is not timed) unless `pingpong --rate N`
    /// makes the load open-loop.
    Bench(netloop::bench::BenchArgs),
    /// Draw the bar charts of a `benches/compare/run.sh` run: per cell,
    /// operations/s and server CPU per operation of every peer (median bar,
    /// whisker over the rounds, a dot per round), as SVG files.
    BenchPlot {
        /// The raw reports (run.sh's OUT/results.jsonl).
        results: std::path::PathBuf,
        /// Directory to write CELL-throughput.svg and CELL-cpu.svg into.
        #[arg(long)]
        out: std::path::PathBuf,
        /// Prefix of every chart's caption (e.g. the run's date).
        #[arg(long, default_value = "")]
        title: String,
    },
    /// Print a shell completion script (e.g. `netloop completions bash >
    /// /etc/bash_completion.d/netloop`).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page, in roff (e.g. `netloop man > netloop.1; man -l
    /// netloop.1`), or write one page per subcommand into a directory.
    Man {
        /// Write netloop.1, netloop-serve.1, netloop-serve-echo.1, ... here
        /// instead of printing netloop.1.
        #[arg(long, value_name = "DIR")]
        out_dir: Option<std::path::PathBuf>,
    },
}

/// Options of `netloop connect`.
#[derive(clap::Args)]
struct ConnectArgs {
    /// Server address.
    #[arg(value_name = "HOST:PORT", value_parser = parse_target)]
    addr: (String, u16),
    /// Reconnect attempts after a lost or failed connection before giving up.
    #[arg(long, default_value_t = netloop::clients::backoff::DEFAULT_MAX_ATTEMPTS)]
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
    #[command(flatten)]
    auth: ClientAuthArgs,
    #[command(flatten)]
    tls: ClientTlsArgs,
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
    #[command(mut_arg("idle_timeout", |a| a.default_value("30s")))]
    Command {
        #[command(flatten)]
        common: ServerArgs,
        #[command(flatten)]
        line: LineArgs,
        #[command(flatten)]
        auth: AuthArgs,
    },
    /// The multi-room chat (nicknames, rooms, whispers; idle timeout 60 s by default).
    #[command(mut_arg("idle_timeout", |a| a.default_value("60s")))]
    Chat {
        #[command(flatten)]
        common: ServerArgs,
        #[command(flatten)]
        line: LineArgs,
        #[command(flatten)]
        auth: AuthArgs,
        #[command(flatten)]
        redis: RedisArgs,
    },
    /// The half-close demo server (CLOSE_WRITE, SHUTDOWN; half-open on).
    Halfclose {
        #[command(flatten)]
        common: ServerArgs,
        #[command(flatten)]
        line: LineArgs,
    },
    /// Length-prefixed JSON messages: ping, echo, broadcast.
    Framed {
        #[command(flatten)]
        common: ServerArgs,
        /// Largest frame body accepted (checked on the length prefix).
        #[arg(long, value_parser = parse_size, default_value = "1MiB")]
        max_frame: usize,
        #[command(flatten)]
        lang: LangArgs,
        #[command(flatten)]
        auth: AuthArgs,
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
        #[command(flatten)]
        line: LineArgs,
        #[command(flatten)]
        auth: AuthArgs,
    },
    /// File upload: header block, then exactly Filesize bytes, stored durably.
    #[command(mut_arg("idle_timeout", |a| a.default_value("60s")))]
    Upload {
        #[command(flatten)]
        common: ServerArgs,
        /// Directory the files are stored in; must be writable. If missing, it is
        /// created when its parent exists (never a whole path).
        #[arg(long, default_value = "./uploads")]
        upload_dir: std::path::PathBuf,
        /// Largest accepted Filesize.
        #[arg(long, value_parser = parse_size, default_value = "1GiB")]
        max_file_size: usize,
        #[command(flatten)]
        auth: AuthArgs,
    },
}

/// Options of `serve chat` for chat across processes on Redis.
#[derive(clap::Args)]
struct RedisArgs {
    /// Join the chat processes using this Redis (redis://HOST:PORT[/DB]):
    /// rooms, nicknames, whispers, /list and /rooms span them all.
    #[arg(long, value_name = "URL")]
    redis: Option<netloop::servers::chat_redis::RedisAddr>,
    /// This process's id among them (letters, digits, . - _; default: host
    /// name and pid; with --workers N, worker i is ID.i).
    #[arg(long, requires = "redis", value_name = "NAME", value_parser = parse_node_id)]
    node_id: Option<String>,
    /// Expiry of a nickname claim in Redis (a killed process's names are
    /// free within it).
    #[arg(long, hide = true, value_parser = parse_duration, default_value = "30s")]
    redis_claim_ttl: Duration,
    /// A Redis reply later than this counts as Redis unreachable.
    #[arg(long, hide = true, value_parser = parse_duration, default_value = "3s")]
    redis_reply_timeout: Duration,
}

fn parse_node_id(s: &str) -> Result<String, String> {
    netloop::servers::chat_redis::validate_node_id(s).map(|()| s.to_string())
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    match cli.cmd {
        Command::Connect(a) => {
            let token = match a.auth.load() {
                Ok(t) => t,
                Err(code) => return code,
            };
            let tls = match a.tls.load(&a.addr.0) {
                Ok(t) => t,
                Err(code) => return code,
            };
            netloop::clients::interactive::run(netloop::clients::interactive::ClientOptions {
                host: a.addr.0,
                port: a.addr.1,
                reconnect: !a.no_reconnect,
                backoff: netloop::clients::backoff::BackoffConfig {
                    base: a.reconnect_delay,
                    cap: a.reconnect_max_delay.max(a.reconnect_delay),
                    max_attempts: a.max_attempts,
                },
                linger: a.linger,
                connect_timeout: a.connect_timeout,
                token,
                tls,
            })
        }
        Command::Halfclose {
            addr,
            scenario,
            lang,
            tls,
        } => match tls.load(&addr.0) {
            Ok(tls) => netloop::clients::halfclose::run(&addr.0, addr.1, scenario, lang, tls),
            Err(code) => code,
        },
        Command::Serve { app } => match app {
            ServeApp::Echo {
                common,
                banner: false,
                ..
            } => serve_service(&common, |_| netloop::servers::echo::Echo),
            ServeApp::Echo {
                common,
                banner: true,
                line,
            } => serve_service(&common, |_| {
                netloop::servers::banner_echo::BannerEcho::new(line.catalog(), line.max_line)
            }),
            ServeApp::Command { common, line, auth } => {
                serve_guarded(&common, &auth, AuthWire::Line, line.catalog(), {
                    use netloop::servers::command::{CommandServer, SessionRegistry};
                    let registry = std::sync::Arc::new(SessionRegistry::default());
                    move |w: netloop::workers::Worker| {
                        if w.count > 1 {
                            CommandServer::with_registry(
                                line.catalog(),
                                line.max_line,
                                registry.clone(),
                            )
                        } else {
                            CommandServer::new(line.catalog(), line.max_line)
                        }
                    }
                })
            }
            ServeApp::Chat {
                common,
                line,
                auth,
                redis,
            } => {
                serve_guarded(&common, &auth, AuthWire::Line, line.catalog(), {
                    use netloop::servers::chat::ChatServer;
                    use netloop::servers::chat_backplane::{Backplane, InProcess};
                    use netloop::servers::chat_redis::{RedisConfig, RedisPlane};
                    let plane: std::sync::Arc<dyn Backplane> =
                        std::sync::Arc::new(InProcess::new());
                    let node = redis
                        .node_id
                        .clone()
                        .unwrap_or_else(netloop::servers::chat_redis::default_node_id);
                    move |w: netloop::workers::Worker| {
                        if let Some(addr) = &redis.redis {
                            // Each worker is a node of its own on Redis.
                            let node = if w.count > 1 {
                                format!("{node}.{}", w.index)
                            } else {
                                node.clone()
                            };
                            let cfg = RedisConfig {
                                addr: addr.clone(),
                                node,
                                claim_ttl: redis.redis_claim_ttl.max(Duration::from_millis(30)),
                                reply_timeout: redis.redis_reply_timeout,
                            };
                            ChatServer::with_backplane(
                                line.catalog(),
                                line.max_line,
                                std::sync::Arc::new(RedisPlane::new(cfg)),
                                w.index,
                            )
                        } else if w.count > 1 {
                            ChatServer::with_backplane(
                                line.catalog(),
                                line.max_line,
                                plane.clone(),
                                w.index,
                            )
                        } else {
                            ChatServer::new(line.catalog(), line.max_line)
                        }
                    }
                })
            }
            ServeApp::Halfclose { common, line } => serve_service_with(
                &common,
                |o| o.socket.allow_half_open = true,
                |_| {
                    netloop::servers::halfclose::HalfCloseServer::new(line.catalog(), line.max_line)
                },
            ),
            ServeApp::Framed {
                common,
                max_frame,
                lang,
                auth,
            } => {
                let cfg = netloop::servers::framed::FramedConfig {
                    max_frame,
                    lang: lang.lang,
                };
                let cat = netloop::protocol::catalog::Catalog::new(cfg.lang);
                serve_guarded(&common, &auth, AuthWire::Frame, cat, |_| {
                    netloop::servers::framed::Framed::new(cfg.clone())
                })
            }
            ServeApp::Heartbeat {
                common,
                heartbeat_interval,
                heartbeat_timeout,
                status_interval,
                line,
                auth,
            } => {
                use netloop::servers::heartbeat::server::{HeartbeatConfig, HeartbeatServer};
                let cfg = HeartbeatConfig {
                    interval: heartbeat_interval,
                    timeout: heartbeat_timeout,
                    status_interval,
                    max_line: line.max_line,
                    lang: line.lang,
                };
                let cat = line.catalog();
                serve_guarded(&common, &auth, AuthWire::JsonLine, cat, {
                    let shared = std::sync::Arc::new(
                        netloop::servers::heartbeat::server::SharedClients::default(),
                    );
                    move |w: netloop::workers::Worker| {
                        if w.count > 1 {
                            HeartbeatServer::with_shared(cfg.clone(), shared.clone())
                        } else {
                            HeartbeatServer::new(cfg.clone())
                        }
                    }
                })
            }
            ServeApp::Upload {
                common,
                upload_dir,
                max_file_size,
                auth,
            } => match auth.load() {
                Err(code) => code,
                Ok(token) => netloop::cli::upload::serve_upload(
                    common,
                    upload_dir,
                    max_file_size as u64,
                    token,
                ),
            },
        },
        Command::Framed {
            target,
            ping_interval,
            max_frame,
            auth,
            tls,
        } => {
            use netloop::clients::framed::{run, FramedClientConfig};
            let mut cfg = FramedClientConfig::new(&target.0, target.1);
            cfg.tls = match tls.load(&target.0) {
                Ok(t) => t,
                Err(code) => return code,
            };
            cfg.token = match auth.load() {
                Ok(t) => t,
                Err(code) => return code,
            };
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
            auth,
            tls,
        } => {
            use netloop::clients::heartbeat::{run, HeartbeatClientConfig};
            let mut cfg = HeartbeatClientConfig::new(&target.0, target.1);
            cfg.tls = match tls.load(&target.0) {
                Ok(t) => t,
                Err(code) => return code,
            };
            cfg.token = match auth.load() {
                Ok(t) => t,
                Err(code) => return code,
            };
            cfg.duration = duration;
            cfg.interval = interval;
            cfg.reconnect_delay = reconnect_delay;
            cfg.max_reconnects = max_reconnects;
            run(cfg)
        }
        Command::Upload {
            target,
            files,
            reply_timeout,
            auth,
            tls,
        } => {
            use netloop::clients::upload::{run, UploadClientConfig};
            let mut cfg = UploadClientConfig::new(&target.0, target.1, &files);
            cfg.tls = match tls.load(&target.0) {
                Ok(t) => t,
                Err(code) => return code,
            };
            cfg.reply_timeout = reply_timeout;
            cfg.token = match auth.load() {
                Ok(t) => t,
                Err(code) => return code,
            };
            run(&cfg)
        }
        Command::Top {
            target,
            once,
            interval,
        } => netloop::cli::top::run(&target.0, target.1, once, interval),
        Command::Bench(args) => netloop::bench::run(&args),
        Command::Cert(args) => netloop::cli::tls_args::run_cert(&args),
        Command::BenchPlot {
            results,
            out,
            title,
        } => match netloop::bench::plot::compare_dir(&results, &out, &title) {
            Ok(w) => {
                for f in &w.files {
                    println!("{}", f.display());
                }
                eprintln!(
                    "netloop bench-plot: {} charts from {} reports ({} lines skipped)",
                    w.files.len(),
                    w.reports,
                    w.skipped
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("netloop bench-plot: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "netloop", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
        Command::Man { out_dir } => {
            let cmd = <Cli as clap::CommandFactory>::command();
            let res = match &out_dir {
                Some(dir) => {
                    std::fs::create_dir_all(dir).and_then(|()| clap_mangen::generate_to(cmd, dir))
                }
                None => clap_mangen::Man::new(cmd).render(&mut std::io::stdout()),
            };
            match res {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => netloop::cli::fatal(format_args!("cannot write the manual page: {e}")),
            }
        }
    }
}
