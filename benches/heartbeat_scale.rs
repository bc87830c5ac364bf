//! Heartbeat at scale: N clients (default 10,000) on one server loop, pinged
//! every second, each answering with a `pong`. Reports the server's CPU and
//! its timer figures over a measurement window.
//!
//! The server is the `netloop` binary (`serve heartbeat --heartbeat-interval
//! 1s`), so its CPU time is read from `/proc/PID/stat` without counting the
//! load generator. The load generator is a netloop loop in this process: it
//! connects in batches (so the listen backlog does not overflow into SYN
//! retries), answers every ping, and reads the loop figures from the
//! server's own `server_status` broadcasts, which come every `WINDOW`
//! seconds: the window is the span between two of them.
//!
//! Run: `cargo bench --bench heartbeat_scale` (env `HB_CLIENTS`, `HB_WINDOW`
//! in seconds). Needs about N + 100 descriptors in each process.

use netloop::codec::LineDecoder;
use netloop::framed::{Flow, Framed};
use netloop::{BytesMut, ConnId, ConnectOptions, Cx, Reactor, Service, TimerId};
use serde_json::{json, Value};
use std::cell::RefCell;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Connections opened per batch, one batch per `BATCH_EVERY`.
const BATCH: usize = 250;
const BATCH_EVERY: Duration = Duration::from_millis(5);

struct Sample {
    at: Instant,
    cpu_ticks: u64,
    status: Value,
}

/// What the run measured, read by `main` once the loop has stopped (the
/// loop keeps the service).
#[derive(Default)]
struct Figures {
    closed: usize,
    pings: u64,
    pings_at_first: u64,
    samples: Vec<Sample>,
}

struct Load {
    port: u16,
    total: usize,
    started: usize,
    welcomed: usize,
    last_status_ts: u64,
    server_pid: u32,
    figures: Rc<RefCell<Figures>>,
}

/// The load's timer.
#[derive(Clone, Copy)]
enum Timer {
    /// Open the next batch of connections.
    Batch,
}

fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
}

impl Load {
    fn on_line(&mut self, cx: &mut Cx<'_, Self>, conn: ConnId, l: &str) {
        let Ok(v) = serde_json::from_str::<Value>(l) else {
            return;
        };
        match v["type"].as_str() {
            Some("ping") => {
                self.figures.borrow_mut().pings += 1;
                let pong = json!({"type": "pong", "timestamp": v["timestamp"]});
                let _ = cx.write(conn, format!("{pong}\n").into_bytes());
            }
            Some("welcome") => {
                self.welcomed += 1;
                if self.welcomed == self.total {
                    eprintln!("all {} clients welcomed", self.total);
                }
            }
            Some("server_status") => {
                let ts = v["timestamp"].as_u64().unwrap_or(0);
                if ts != self.last_status_ts {
                    self.last_status_ts = ts;
                    let full = v["connectedClients"].as_u64() == Some(self.total as u64);
                    if full {
                        let mut f = self.figures.borrow_mut();
                        if f.samples.is_empty() {
                            f.pings_at_first = f.pings;
                        }
                        f.samples.push(Sample {
                            at: Instant::now(),
                            cpu_ticks: cpu_ticks(self.server_pid),
                            status: v,
                        });
                        if f.samples.len() == 2 {
                            cx.stop();
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

impl Service for Load {
    type Conn = Framed<LineDecoder>;
    type Tag = Timer;
    type Message = ();

    fn on_start(&mut self, cx: &mut Cx<'_, Self>) {
        cx.set_timeout(Duration::from_millis(1), Timer::Batch);
    }

    fn on_timer(&mut self, cx: &mut Cx<'_, Self>, _t: TimerId, tag: Timer) {
        let Timer::Batch = tag;
        let n = BATCH.min(self.total - self.started);
        for _ in 0..n {
            let lines = Framed::new(LineDecoder::new(64 * 1024));
            cx.connect("127.0.0.1", self.port, ConnectOptions::default(), lines);
        }
        self.started += n;
        if self.started < self.total {
            cx.set_timeout(BATCH_EVERY, Timer::Batch);
        }
    }

    fn on_data(
        &mut self,
        cx: &mut Cx<'_, Self>,
        conn: ConnId,
        lines: &mut Framed<LineDecoder>,
        data: &mut BytesMut,
    ) {
        lines.decode_all(cx, conn, data, |cx, line| match line {
            Ok(l) => {
                self.on_line(cx, conn, &l);
                Flow::Continue
            }
            Err(_) => Flow::Stop,
        });
    }

    fn on_close(&mut self, _: &mut Cx<'_, Self>, _: ConnId, _: Framed<LineDecoder>, _: bool) {
        self.figures.borrow_mut().closed += 1;
    }
}

fn main() {
    let total: usize = std::env::var("HB_CLIENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let window: u64 = std::env::var("HB_WINDOW")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let mut server = Command::new(env!("CARGO_BIN_EXE_netloop"))
        .args([
            "serve",
            "heartbeat",
            "--port",
            "0",
            "--heartbeat-interval",
            "1s",
            "--heartbeat-timeout",
            "3s",
            "--status-interval",
            &format!("{window}s"),
        ])
        .env("RUST_LOG", "warn,netloop::apps=info")
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the server");
    let stderr = server.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let port: u16 = loop {
        let line = lines.next().expect("server log").expect("server log");
        if let Some(pos) = line.find("listening on ") {
            let addr = line[pos + 13..].split_whitespace().next().unwrap_or("");
            break addr.rsplit(':').next().unwrap().parse().expect("port");
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let mut r = Reactor::new().expect("loop");
    let figures = Rc::new(RefCell::new(Figures::default()));
    r.add_service(Load {
        port,
        total,
        started: 0,
        welcomed: 0,
        last_status_ts: 0,
        server_pid: server.id(),
        figures: figures.clone(),
    });
    r.run().expect("run");
    let load = figures.borrow();
    let _ = server.kill();
    let _ = server.wait();

    let (a, b) = (&load.samples[0], &load.samples[1]);
    let secs = b.at.duration_since(a.at).as_secs_f64();
    let hz = 100.0; // USER_HZ on Linux
    let cpu = (b.cpu_ticks - a.cpu_ticks) as f64 / hz;
    let d = |k: &str| {
        b.status["loop"][k].as_u64().unwrap_or(0) - a.status["loop"][k].as_u64().unwrap_or(0)
    };
    let pings = load.pings - load.pings_at_first;
    println!("heartbeat_scale: {total} clients, 1 s interval, window {secs:.1} s");
    println!("  clients closed during the run: {}", load.closed);
    println!(
        "  pings received by the clients: {pings} ({:.0}/s)",
        pings as f64 / secs
    );
    println!(
        "  server CPU: {cpu:.2} s in {secs:.1} s = {:.1} % of one core",
        100.0 * cpu / secs
    );
    println!(
        "  server timers fired: {} ({:.0}/s); max timer lateness (whole run): {} ms",
        d("timersFired"),
        d("timersFired") as f64 / secs,
        b.status["loop"]["maxTimerLatenessMs"]
    );
    println!(
        "  server loop iterations: {} ({:.0}/s); events: {}; armed timers now: {}",
        d("iterations"),
        d("iterations") as f64 / secs,
        d("events"),
        b.status["loop"]["timersArmed"]
    );
    if pings > 0 {
        println!(
            "  server CPU per ping+pong: {:.1} µs",
            cpu * 1e6 / pings as f64
        );
    }
}
