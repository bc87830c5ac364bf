//! `netloop top HOST:PORT`: the live page's view in a terminal.
//!
//! # Algorithm
//!
//! Once a second, `GET /stats` from a `--metrics` endpoint (a plain
//! HTTP/1.1 request on a fresh connection, as the endpoint closes after one
//! answer), keep the previous snapshot, and draw from the difference of the
//! two: time per phase per second, utilisation over the last second,
//! iterations and events per second, busy time by service per second; and
//! from the latest one: loop delay, connections by state, queued bytes,
//! paused connections, timers pending, the slow-callback table. A sparkline
//! keeps the last minute of busy time.
//!
//! `--once` takes two snapshots one interval apart, renders one frame into
//! an off-screen buffer of [`ONCE_WIDTH`] × [`ONCE_HEIGHT`] and prints it as
//! plain text (for scripts and tests); without it the view runs full screen
//! until `q`, `Esc` or Ctrl-C.
//!
//! # Contract
//!
//! The peer is the user's own server, but its answer is still bounded: at
//! most [`MAX_RESPONSE`] bytes, each wait at most [`IO_TIMEOUT`]; a missing
//! field shows as 0. Errors are one line (`error: cannot reach ...`), exit 1.

use crate::cli::fatal;
use ratatui::backend::{Backend, TestBackend};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::Line;
use ratatui::widgets::{Bar, BarChart, BarGroup, Block, Paragraph, Row, Sparkline, Table};
use ratatui::{Frame, Terminal};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Largest `/stats` answer read: the snapshot is a few KiB (aggregates
/// only, at most 20 slow callbacks); 4 MiB leaves room for many services
/// and bounds what a wrong peer can make us buffer.
pub const MAX_RESPONSE: usize = 4 * 1024 * 1024;

/// Connect, write and read timeout of one poll: a stalled server shows as
/// an error line instead of a frozen screen.
pub const IO_TIMEOUT: Duration = Duration::from_secs(3);

/// Width of the `--once` frame (a common terminal's width is 80-120).
pub const ONCE_WIDTH: u16 = 110;
/// Height of the `--once` frame: every panel at its natural height.
pub const ONCE_HEIGHT: u16 = 44;

/// Points of busy time kept for the sparkline: one minute at 1/s.
const HISTORY: usize = 60;

/// The phases charted, as named in `/stats` (poll is idle time).
const PHASES: [&str; 5] = ["timers", "ready", "dispatch", "check", "close"];

/// Why a poll failed.
#[derive(Debug)]
pub enum TopError {
    /// Resolving or connecting failed.
    Connect(String),
    /// Sending or receiving failed, or the answer was not HTTP 200.
    Http(String),
    /// The answer was over [`MAX_RESPONSE`].
    TooLarge,
    /// The body was not JSON.
    Json(String),
}

impl std::fmt::Display for TopError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TopError::Connect(e) => write!(f, "cannot reach the metrics endpoint: {e}"),
            TopError::Http(e) => write!(f, "bad answer from the metrics endpoint: {e}"),
            TopError::TooLarge => write!(f, "answer over {MAX_RESPONSE} bytes"),
            TopError::Json(e) => write!(f, "/stats is not JSON: {e}"),
        }
    }
}

/// `GET /stats` from `host:port`.
pub fn fetch_stats(host: &str, port: u16) -> Result<Value, TopError> {
    let addr = (host, port)
        .to_socket_addrs()
        .map_err(|e| TopError::Connect(format!("{host}:{port}: {e}")))?
        .next()
        .ok_or_else(|| TopError::Connect(format!("{host}:{port}: no address")))?;
    let mut s = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
        .map_err(|e| TopError::Connect(format!("{addr}: {e}")))?;
    let io = |e: std::io::Error| TopError::Http(e.to_string());
    s.set_read_timeout(Some(IO_TIMEOUT)).map_err(io)?;
    s.set_write_timeout(Some(IO_TIMEOUT)).map_err(io)?;
    s.write_all(b"GET /stats HTTP/1.1\r\nHost: netloop\r\nConnection: close\r\n\r\n")
        .map_err(io)?;
    let mut raw = Vec::new();
    s.take(MAX_RESPONSE as u64 + 1)
        .read_to_end(&mut raw)
        .map_err(io)?;
    if raw.len() > MAX_RESPONSE {
        return Err(TopError::TooLarge);
    }
    parse_response(&raw)
}

/// The JSON body of a complete `200` response.
pub fn parse_response(raw: &[u8]) -> Result<Value, TopError> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| TopError::Http("no end of the head".into()))?;
    let status = raw
        .split(|&b| b == b'\n')
        .next()
        .map(|l| String::from_utf8_lossy(l).trim_end().to_string())
        .unwrap_or_default();
    if !status.starts_with("HTTP/1.1 200") {
        return Err(TopError::Http(format!(
            "{status:?} (is it a --metrics endpoint?)"
        )));
    }
    serde_json::from_slice(&raw[end + 4..]).map_err(|e| TopError::Json(e.to_string()))
}

fn num(v: &Value, path: &[&str]) -> f64 {
    let mut v = v;
    for p in path {
        v = &v[*p];
    }
    v.as_f64().unwrap_or(0.0)
}

fn text(v: &Value, key: &str) -> String {
    match &v[key] {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// What one frame shows, computed from two snapshots.
#[derive(Clone, Debug, Default)]
pub struct View {
    /// The endpoint polled.
    pub target: String,
    /// Milliseconds per second in timers, ready, dispatch, check and close,
    /// over the last interval.
    pub phase_ms: [f64; 5],
    /// Utilisation over the last interval (0..1); `None` on the first poll.
    pub util: Option<f64>,
    /// Utilisation since start.
    pub util_total: f64,
    /// Iterations per second.
    pub iter_rate: f64,
    /// Events per second.
    pub event_rate: f64,
    /// Busy ms per second, last minute, oldest first.
    pub history: Vec<u64>,
    /// The latest snapshot.
    pub cur: Value,
    /// Busy ms per second by service: (name, ms/s, total s, callbacks, slow).
    pub services: Vec<(String, f64, f64, u64, u64)>,
}

impl View {
    /// Fold a new snapshot in, given the one before.
    pub fn update(&mut self, prev: Option<&Value>, cur: Value) {
        self.util_total = num(&cur, &["utilization"]);
        let mut services = Vec::new();
        if let Some(prev) = prev {
            let dt = num(&cur, &["uptime_seconds"]) - num(prev, &["uptime_seconds"]);
            if dt > 0.0 {
                for (i, p) in PHASES.iter().enumerate() {
                    let d = num(&cur, &["phase_seconds", p]) - num(prev, &["phase_seconds", p]);
                    self.phase_ms[i] = (d / dt * 1e3).max(0.0);
                }
                let busy = num(&cur, &["busy_seconds"]) - num(prev, &["busy_seconds"]);
                let idle = num(&cur, &["idle_seconds"]) - num(prev, &["idle_seconds"]);
                self.util = (busy + idle > 0.0).then(|| (busy / (busy + idle)).clamp(0.0, 1.0));
                self.iter_rate = (num(&cur, &["iterations"]) - num(prev, &["iterations"])) / dt;
                self.event_rate = (num(&cur, &["events"]) - num(prev, &["events"])) / dt;
                self.history.push((busy / dt * 1e3).max(0.0) as u64);
                if self.history.len() > HISTORY {
                    self.history.remove(0);
                }
                let before = |name: &str| {
                    prev["services"]
                        .as_array()
                        .and_then(|a| a.iter().find(|s| s["name"] == name))
                        .map(|s| num(s, &["busy_seconds"]))
                        .unwrap_or(0.0)
                };
                for s in cur["services"].as_array().into_iter().flatten() {
                    let name = text(s, "name");
                    let total = num(s, &["busy_seconds"]);
                    let per_s = ((total - before(&name)) / dt * 1e3).max(0.0);
                    services.push((
                        name,
                        per_s,
                        total,
                        num(s, &["callbacks"]) as u64,
                        num(s, &["slow_callbacks"]) as u64,
                    ));
                }
            }
        }
        self.services = services;
        self.cur = cur;
    }
}

fn ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}ms")
    } else if v >= 1.0 {
        format!("{v:.2}ms")
    } else {
        format!("{:.1}µs", v * 1e3)
    }
}

fn bytes(b: f64) -> String {
    if b >= 1048576.0 {
        format!("{:.1}MiB", b / 1048576.0)
    } else if b >= 1024.0 {
        format!("{:.1}KiB", b / 1024.0)
    } else {
        format!("{b:.0}B")
    }
}

/// Draw `v` into `f`.
pub fn draw(f: &mut Frame<'_>, v: &View) {
    let c = &v.cur;
    let area = f.area();
    let rows = Layout::vertical([
        Constraint::Length(4),
        Constraint::Length(9),
        Constraint::Length(6),
        Constraint::Min(5),
        Constraint::Min(5),
    ])
    .split(area);
    let util = v
        .util
        .map(|u| format!("{:.1}%", u * 100.0))
        .unwrap_or_else(|| "-".into());
    let head = vec![
        Line::from(format!(
            "utilisation {util} (since start {:.1}%)   iterations/s {:.0}   events/s {:.0}   uptime {:.0}s",
            v.util_total * 100.0,
            v.iter_rate,
            v.event_rate,
            num(c, &["uptime_seconds"])
        )),
        Line::from(format!(
            "connections {}   paused {}   queued {} (peak {})   timers pending {}   ready list {}",
            num(c, &["connections", "live"]),
            num(c, &["connections", "paused"]),
            bytes(num(c, &["bytes", "queued"])),
            bytes(num(c, &["bytes", "queued_peak"])),
            num(c, &["timers", "pending"]),
            num(c, &["ready_list_len"]),
        )),
    ];
    f.render_widget(
        Paragraph::new(head).block(Block::bordered().title(format!(" netloop top {} ", v.target))),
        rows[0],
    );

    let mid =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).split(rows[1]);
    let bars: Vec<Bar> = PHASES
        .iter()
        .zip(v.phase_ms.iter())
        .map(|(p, m)| {
            Bar::default()
                .label(Line::from(*p))
                .value((m * 1000.0) as u64)
                .text_value(format!("{m:.1}"))
        })
        .collect();
    f.render_widget(
        BarChart::default()
            .block(Block::bordered().title(" ms per second, by phase "))
            .data(BarGroup::default().bars(&bars))
            .bar_width(8)
            .bar_gap(1)
            .bar_style(Style::default().fg(Color::Blue)),
        mid[0],
    );
    let states: Vec<Row> = c["connections"]["by_state"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, n)| Row::new(vec![k.clone(), n.to_string()]))
        .collect();
    f.render_widget(
        Table::new(states, [Constraint::Length(12), Constraint::Length(10)])
            .block(Block::bordered().title(" connections by state ")),
        mid[1],
    );

    let delay =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).split(rows[2]);
    let d = &c["loop_delay"];
    let sum = |key: &str| {
        vec![
            Line::from(format!(
                "p50 {}   p99 {}   max {}",
                ms(num(d, &[key, "p50"])),
                ms(num(d, &[key, "p99"])),
                ms(num(d, &[key, "max"]))
            )),
            Line::from(format!("samples {}", num(d, &[key, "count"]))),
        ]
    };
    let mut busy = sum("iteration_busy_ms");
    busy.push(Line::from("busy ms/s, last minute:"));
    f.render_widget(
        Paragraph::new(busy).block(Block::bordered().title(" iteration busy time (loop delay) ")),
        delay[0],
    );
    let spark = Rect {
        x: delay[0].x + 24,
        y: delay[0].y + 3,
        width: delay[0].width.saturating_sub(25),
        height: 1,
    };
    f.render_widget(Sparkline::default().data(&v.history), spark);
    f.render_widget(
        Paragraph::new(sum("timer_delay_ms"))
            .block(Block::bordered().title(" every timer's lateness ")),
        delay[1],
    );

    let services: Vec<Row> = v
        .services
        .iter()
        .map(|(n, per_s, total, cbs, slow)| {
            Row::new(vec![
                n.clone(),
                format!("{per_s:.2}"),
                format!("{total:.3}"),
                cbs.to_string(),
                slow.to_string(),
            ])
        })
        .collect();
    f.render_widget(
        Table::new(
            services,
            [
                Constraint::Length(24),
                Constraint::Length(10),
                Constraint::Length(10),
                Constraint::Length(12),
                Constraint::Length(6),
            ],
        )
        .header(Row::new(vec![
            "service",
            "ms/s",
            "total s",
            "callbacks",
            "slow",
        ]))
        .block(Block::bordered().title(" busy time by service ")),
        rows[3],
    );

    let sc = &c["slow_callbacks"];
    let slow: Vec<Row> = sc["slowest"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            Row::new(vec![
                format!("{:.1}", num(s, &["took_ms"])),
                text(s, "event"),
                text(s, "phase"),
                text(s, "service"),
                text(s, "conn"),
                text(s, "peer"),
            ])
        })
        .collect();
    let threshold = match sc["threshold_ms"].as_f64() {
        Some(t) => format!("threshold {t}ms"),
        None => "detection off".into(),
    };
    f.render_widget(
        Table::new(
            slow,
            [
                Constraint::Length(8),
                Constraint::Length(10),
                Constraint::Length(9),
                Constraint::Length(16),
                Constraint::Length(14),
                Constraint::Length(22),
            ],
        )
        .header(Row::new(vec![
            "ms",
            "event",
            "phase",
            "service",
            "connection",
            "peer",
        ]))
        .block(Block::bordered().title(format!(
            " slow callbacks: {} in all ({threshold}); slowest of the last minute ",
            num(sc, &["total"])
        ))),
        rows[4],
    );
}

/// Render `v` as plain text, `width` × `height`, trailing spaces trimmed.
pub fn render_text(v: &View, width: u16, height: u16) -> String {
    let mut t = match Terminal::new(TestBackend::new(width, height)) {
        Ok(t) => t,
        Err(e) => match e {},
    };
    let _ = t.draw(|f| draw(f, v));
    let buf = t.backend().buffer();
    let mut out = String::new();
    for y in 0..height {
        let mut line = String::new();
        for x in 0..width {
            line.push_str(buf[(x, y)].symbol());
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Run `netloop top`.
pub fn run(host: &str, port: u16, once: bool, interval: Duration) -> ExitCode {
    let mut view = View {
        target: crate::protocol::target::host_port(host, port),
        ..View::default()
    };
    let first = match fetch_stats(host, port) {
        Ok(v) => v,
        Err(e) => return fatal(format_args!("{e}")),
    };
    if once {
        std::thread::sleep(interval);
        let second = match fetch_stats(host, port) {
            Ok(v) => v,
            Err(e) => return fatal(format_args!("{e}")),
        };
        view.update(Some(&first), second);
        print!("{}", render_text(&view, ONCE_WIDTH, ONCE_HEIGHT));
        return ExitCode::SUCCESS;
    }
    view.update(None, first);
    let mut terminal = ratatui::init();
    let result = live(&mut terminal, &mut view, host, port, interval);
    ratatui::restore();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fatal(format_args!("{e}")),
    }
}

/// The full-screen loop: draw, wait for a key or the next poll.
fn live<B: Backend>(
    terminal: &mut Terminal<B>,
    view: &mut View,
    host: &str,
    port: u16,
    interval: Duration,
) -> Result<(), String> {
    use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
    let mut next = Instant::now() + interval;
    loop {
        terminal
            .draw(|f| draw(f, view))
            .map_err(|e| format!("cannot draw: {e:?}"))?;
        let wait = next.saturating_duration_since(Instant::now());
        if event::poll(wait).map_err(|e| e.to_string())? {
            if let Event::Key(k) = event::read().map_err(|e| e.to_string())? {
                let ctrl_c =
                    k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL);
                if k.kind == KeyEventKind::Press
                    && (ctrl_c || matches!(k.code, KeyCode::Char('q') | KeyCode::Esc))
                {
                    return Ok(());
                }
            }
            continue;
        }
        next = Instant::now() + interval;
        let prev = view.cur.clone();
        match fetch_stats(host, port) {
            Ok(cur) => view.update(Some(&prev), cur),
            Err(e) => return Err(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(t: f64, dispatch: f64, busy: f64) -> Value {
        serde_json::json!({
            "uptime_seconds": t, "utilization": 0.5, "iterations": t * 100.0, "events": t * 10.0,
            "busy_seconds": busy, "idle_seconds": t - busy,
            "phase_seconds": {"timers": 0.0, "ready": 0.0, "dispatch": dispatch, "check": 0.0, "close": 0.0},
            "connections": {"live": 3, "paused": 1, "by_state": {"open": 3}},
            "bytes": {"queued": 2048, "queued_peak": 4096},
            "timers": {"pending": 2}, "ready_list_len": 0,
            "loop_delay": {"iteration_busy_ms": {"count": 5, "p50": 0.02, "p99": 0.5, "max": 1.5},
                           "timer_delay_ms": {"count": 1, "p50": 1.0, "p99": 1.0, "max": 1.0}},
            "services": [{"name": "chat", "busy_seconds": busy, "callbacks": 7, "slow_callbacks": 1}],
            "slow_callbacks": {"threshold_ms": 50.0, "total": 1, "slowest": [
                {"took_ms": 61.5, "event": "data", "phase": "dispatch", "service": "chat",
                 "conn": "conn#3.1", "peer": "127.0.0.1:5000"}]}
        })
    }

    #[test]
    fn a_frame_shows_rates_from_two_snapshots() {
        let mut v = View {
            target: "127.0.0.1:9100".into(),
            ..View::default()
        };
        let a = snap(10.0, 1.0, 2.0);
        v.update(None, a.clone());
        assert_eq!(v.util, None);
        v.update(Some(&a), snap(12.0, 1.5, 3.0));
        assert!((v.phase_ms[2] - 250.0).abs() < 1e-6, "{:?}", v.phase_ms);
        assert_eq!(v.util, Some(0.5));
        assert_eq!(v.services[0].0, "chat");
        assert!((v.services[0].1 - 500.0).abs() < 1e-6);
        let text = render_text(&v, ONCE_WIDTH, ONCE_HEIGHT);
        for want in [
            "utilisation 50.0%",
            "iterations/s 100",
            "queued 2.0KiB",
            "conn#3.1",
            "61.5",
            "chat",
            "dispatch",
            "250.0",
            "threshold 50ms",
        ] {
            assert!(text.contains(want), "{want:?} missing from\n{text}");
        }
    }

    #[test]
    fn responses_are_checked() {
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n\r\n{\"a\":1}").is_ok());
        assert!(matches!(
            parse_response(b"HTTP/1.1 404 Not Found\r\n\r\nx"),
            Err(TopError::Http(_))
        ));
        assert!(matches!(
            parse_response(b"HTTP/1.1 200 OK\r\n\r\nnot json"),
            Err(TopError::Json(_))
        ));
        assert!(matches!(
            parse_response(b"HTTP/1.1 200"),
            Err(TopError::Http(_))
        ));
    }
}
