//! The `--metrics HOST:PORT` responder: a tiny HTTP/1.1 server on the same
//! loop that answers `GET /metrics` with [`super::prometheus::render`],
//! `GET /stats` with the same snapshot as JSON, and `GET /` with the live
//! page ([`super::live`]), which polls `/stats`.
//!
//! # Protocol
//!
//! One request per connection, one response, then `end()` (flush, FIN):
//! the connection is closed by us, as `Connection: close` announces. The
//! request head must end (`\r\n\r\n`, or `\n\n` from hand-typed clients)
//! within [`MAX_REQUEST_BYTES`]; a longer head gets `431`, a malformed
//! request line `400`, a method other than `GET`/`HEAD` `405` (with
//! `Allow`), a path other than `/metrics`, `/stats` and `/` `404`. Headers are not
//! interpreted: nothing in them changes the answer. A scraper that opens a
//! connection and sends nothing is destroyed after [`IDLE_TIMEOUT`]; a head
//! not complete within [`HEAD_DEADLINE`] of the accept gets `408` and the
//! close (a byte every few seconds no longer holds a connection for ever).
//! At most [`MAX_PENDING_HEADS`] connections may still be sending a head:
//! the oldest is shed for a newer one, so a scrape gets through while slow
//! peers hold every other connection. At most [`MAX_CONNECTIONS`] are open
//! at once (more are dropped), so the endpoint cannot starve the
//! application of descriptors.
//!
//! # Design
//!
//! [`MetricsEndpoint`] is a service of its own: [`listen`] starts its server
//! in the application's loop, and its connections' events go to it alone,
//! so the application never sees the scrape connections and pays nothing
//! for them on its hot path (the loop's connection counts include them).

use super::prometheus;
use super::workers::{Snapshot, SnapshotRequest, WorkerBoard, GATHER_TIMEOUT};
use super::LoopMetrics;
use crate::net::error::NetError;
use crate::reactor::config::{ListenOptions, SocketOptions, ACCEPT_BUDGET};
use crate::{BytesMut, ConnId, Cx, Reactor, ServerId, Service, TimerId};
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

/// Largest request head accepted: a scrape request is a few hundred bytes;
/// 8 KiB is what common servers allow per header line.
pub const MAX_REQUEST_BYTES: usize = 8 * 1024;

/// Scrape connections open at once (descriptors), counting those shed and
/// not yet closed: a connection ends in the loop's close phase, so a shed one
/// holds its slot until the end of the iteration, in which the loop accepts
/// at most [`ACCEPT_BUDGET`] more. With this many, even a burst of that many
/// newcomers sheds the slow heads instead of being dropped by the listener,
/// so a scrape in the same burst still gets in; and the endpoint still holds
/// a small, fixed number of descriptors.
pub const MAX_CONNECTIONS: usize = MAX_PENDING_HEADS + ACCEPT_BUDGET;

/// A scrape connection silent for this long is destroyed (slowloris).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// The whole request head must arrive within this long of the accept: a
/// scraper sends it in one write, while a peer trickling a byte every few
/// seconds reset the idle timeout for ever.
pub const HEAD_DEADLINE: Duration = Duration::from_secs(5);

/// Connections still sending their request head that may be open at once
/// (Prometheus opens one per scrape, and sends the head at once); when a new
/// connection would exceed it, the oldest is shed, so slow peers can never
/// hold the endpoint against a scrape.
pub const MAX_PENDING_HEADS: usize = 16;

/// `HOST:PORT` of the metrics endpoint (`[::1]:9100` for IPv6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetricsAddr {
    /// Host or IP.
    pub host: String,
    /// Port; 0 picks a free one.
    pub port: u16,
}

impl FromStr for MetricsAddr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (host, port) = s
            .rsplit_once(':')
            .ok_or_else(|| format!("{s:?}: expected HOST:PORT, e.g. 127.0.0.1:9100"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(format!("{s:?}: empty host"));
        }
        let port = port
            .parse()
            .map_err(|_| format!("{s:?}: port must be a number 0-65535"))?;
        Ok(MetricsAddr {
            host: host.to_string(),
            port,
        })
    }
}

impl fmt::Display for MetricsAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// What a request gets.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// `200` with the metrics; `head_only` for `HEAD`.
    Metrics {
        /// Headers without the body.
        head_only: bool,
    },
    /// `200` with the metrics as JSON (`/stats`).
    Stats {
        /// Headers without the body.
        head_only: bool,
    },
    /// `200` with the live page (`/`).
    Page {
        /// Headers without the body.
        head_only: bool,
    },
    /// `400`: the request line is not `METHOD TARGET HTTP/1.x`.
    BadRequest,
    /// `404`: a path other than `/metrics`, `/stats`, `/`.
    NotFound,
    /// `405`: a method other than `GET`/`HEAD`.
    MethodNotAllowed,
    /// `431`: no end of the head within [`MAX_REQUEST_BYTES`].
    TooLarge,
    /// `408`: no end of the head within [`HEAD_DEADLINE`].
    Timeout,
}

/// Decide what `buf` (the bytes received so far) gets: `None` while the
/// head is incomplete and under the limit.
pub fn parse_request(buf: &[u8]) -> Option<Reply> {
    let window = &buf[..buf.len().min(MAX_REQUEST_BYTES)];
    let end = find(window, b"\r\n\r\n").or_else(|| find(window, b"\n\n"));
    let Some(_end) = end else {
        return (buf.len() >= MAX_REQUEST_BYTES).then_some(Reply::TooLarge);
    };
    let line_end = window
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(window.len());
    let line = window[..line_end]
        .strip_suffix(b"\r")
        .unwrap_or(&window[..line_end]);
    let Ok(line) = std::str::from_utf8(line) else {
        return Some(Reply::BadRequest);
    };
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Some(Reply::BadRequest);
    };
    if !version.starts_with("HTTP/1.") || method.is_empty() || !target.starts_with('/') {
        return Some(Reply::BadRequest);
    }
    let head_only = match method {
        "GET" => false,
        "HEAD" => true,
        _ => return Some(Reply::MethodNotAllowed),
    };
    let path = target.split('?').next().unwrap_or(target);
    match path {
        "/metrics" => Some(Reply::Metrics { head_only }),
        "/stats" => Some(Reply::Stats { head_only }),
        "/" => Some(Reply::Page { head_only }),
        _ => Some(Reply::NotFound),
    }
}

/// [`parse_request`] for a buffer that only grows between calls (the reads
/// of one connection): each call looks for the end of the head only in the
/// bytes it has not scanned yet (plus 3 back, for a terminator split across
/// reads), and runs the full parse once, when the end is there. Without it a
/// head trickled in byte by byte cost a rescan of up to 8 KiB per byte.
#[derive(Clone, Debug, Default)]
pub struct RequestScanner {
    scanned: usize,
}

impl RequestScanner {
    /// What `buf` gets, exactly as [`parse_request`] would say.
    pub fn feed(&mut self, buf: &[u8]) -> Option<Reply> {
        let window_end = buf.len().min(MAX_REQUEST_BYTES);
        // A terminator (at most 4 bytes) wholly inside the scanned part
        // would have been found by an earlier call.
        let from = self.scanned.saturating_sub(3).min(window_end);
        let fresh = &buf[from..window_end];
        if find(fresh, b"\r\n\r\n").is_none() && find(fresh, b"\n\n").is_none() {
            self.scanned = window_end;
            return (buf.len() >= MAX_REQUEST_BYTES).then_some(Reply::TooLarge);
        }
        parse_request(buf)
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// `Content-Type` of `/stats`.
pub const JSON_CONTENT_TYPE: &str = "application/json";

/// The full response bytes for `reply`; `body` renders the body of a `200`
/// (metrics, JSON or page, as `reply` says).
pub fn response(reply: Reply, body: impl FnOnce() -> String) -> Vec<u8> {
    let (status, ctype, body, head_only, extra) = match reply {
        Reply::Metrics { head_only } => ("200 OK", prometheus::CONTENT_TYPE, body(), head_only, ""),
        Reply::Stats { head_only } => (
            "200 OK",
            JSON_CONTENT_TYPE,
            body(),
            head_only,
            "Cache-Control: no-store\r\n",
        ),
        Reply::Page { head_only } => (
            "200 OK",
            super::live::CONTENT_TYPE,
            body(),
            head_only,
            super::live::EXTRA_HEADERS,
        ),
        Reply::BadRequest => (
            "400 Bad Request",
            "text/plain",
            "bad request\n".into(),
            false,
            "",
        ),
        Reply::NotFound => (
            "404 Not Found",
            "text/plain",
            "not found: try /metrics, /stats or /\n".into(),
            false,
            "",
        ),
        Reply::MethodNotAllowed => (
            "405 Method Not Allowed",
            "text/plain",
            "method not allowed\n".into(),
            false,
            "Allow: GET, HEAD\r\n",
        ),
        Reply::TooLarge => (
            "431 Request Header Fields Too Large",
            "text/plain",
            "request too large\n".into(),
            false,
            "",
        ),
        Reply::Timeout => (
            "408 Request Timeout",
            "text/plain",
            "request head not complete in time\n".into(),
            false,
            "",
        ),
    };
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if !head_only {
        out.extend_from_slice(body.as_bytes());
    }
    out
}

/// Listen for scrapes on `addr` with the endpoint's limits: a server of
/// its own, beside whatever else the loop runs.
pub fn listen(r: &mut Reactor, addr: &MetricsAddr) -> Result<ServerId, NetError> {
    listen_tls(r, addr, None)
}

/// [`listen`], over HTTPS when `tls` is given.
pub fn listen_tls(
    r: &mut Reactor,
    addr: &MetricsAddr,
    tls: Option<crate::reactor::tls::ServerTls>,
) -> Result<ServerId, NetError> {
    r.serve(endpoint_options(addr, tls), MetricsEndpoint::default())
}

fn endpoint_options(
    addr: &MetricsAddr,
    tls: Option<crate::reactor::tls::ServerTls>,
) -> ListenOptions {
    ListenOptions {
        tls,
        host: addr.host.clone(),
        port: addr.port,
        max_connections: Some(MAX_CONNECTIONS),
        socket: SocketOptions {
            idle_timeout: Some(IDLE_TIMEOUT),
            ..SocketOptions::default()
        },
        ..ListenOptions::default()
    }
}

/// [`listen`] for a process of several workers: each scrape gathers every
/// worker's figures through `board` ([`super::workers`]).
pub fn listen_workers(
    r: &mut Reactor,
    addr: &MetricsAddr,
    board: WorkerBoard,
    tls: Option<crate::reactor::tls::ServerTls>,
) -> Result<ServerId, NetError> {
    let endpoint = MetricsEndpoint {
        board: Some(board),
        ..MetricsEndpoint::default()
    };
    r.serve(endpoint_options(addr, tls), endpoint)
}

/// A scrape connection: the request head being read, then `None` once
/// answered.
#[derive(Debug)]
pub struct Scrape {
    head: Option<Head>,
}

/// A scrape connection still sending its request head.
#[derive(Debug)]
struct Head {
    scanner: RequestScanner,
    /// Accept order, for shedding the oldest.
    seq: u64,
    deadline: TimerId,
}

/// The metrics endpoint: answers `GET /metrics` with the loop's figures
/// (see the module docs).
#[derive(Debug, Default)]
pub struct MetricsEndpoint {
    /// Connections still reading a head, by accept order (to shed the
    /// oldest).
    heads: BTreeMap<u64, ConnId>,
    next_seq: u64,
    /// With several workers: where their figures are asked for.
    board: Option<WorkerBoard>,
    /// Scrapes waiting for the workers' figures, by gather id.
    gathers: BTreeMap<u64, Gather>,
    next_gather: u64,
}

/// A scrape waiting for the workers' answers.
#[derive(Debug)]
struct Gather {
    conn: ConnId,
    /// `/metrics` or `/stats`.
    reply: Reply,
    asked: usize,
    got: Vec<(usize, LoopMetrics)>,
    deadline: TimerId,
}

/// What the endpoint's timers are for.
#[derive(Copy, Clone, Debug)]
pub enum EndpointTimer {
    /// A connection's request head is late.
    Head(ConnId),
    /// A gather of the workers' figures is late.
    Gather(u64),
}

impl MetricsEndpoint {
    /// Answer `c` with `reply` and end it; its head is done.
    fn answer(&mut self, cx: &mut Cx<'_, Self>, c: ConnId, st: &mut Scrape, reply: Reply) {
        self.head_done(cx, st);
        if !matches!(
            reply,
            Reply::Metrics { .. } | Reply::Stats { .. } | Reply::Page { .. }
        ) {
            log::debug!("metrics: {c} {reply:?}");
        }
        if let (Reply::Metrics { .. } | Reply::Stats { .. }, Some(board)) = (reply, &self.board) {
            let agents: Vec<_> = board.agents().into_iter().flatten().collect();
            self.next_gather += 1;
            let gather = self.next_gather;
            let me = cx.remote();
            for agent in &agents {
                agent.post(SnapshotRequest {
                    gather,
                    reply: me.clone(),
                });
            }
            let deadline = cx.set_timeout(GATHER_TIMEOUT, EndpointTimer::Gather(gather));
            self.gathers.insert(
                gather,
                Gather {
                    conn: c,
                    reply,
                    asked: agents.len(),
                    got: Vec::with_capacity(agents.len()),
                    deadline,
                },
            );
            return;
        }
        let bytes = response(reply, || match reply {
            Reply::Stats { .. } => super::live::stats_json(&cx.metrics()),
            Reply::Page { .. } => super::live::PAGE.to_string(),
            _ => {
                // The loop's figures, then the process's own (`process_*`,
                // `netloop_build_info`).
                let mut text = prometheus::render(&cx.metrics());
                text.push_str(&super::process::render(
                    &super::process::ProcessMetrics::read(),
                ));
                text.push_str(&super::app::render());
                text
            }
        });
        let _ = cx.end_with(c, bytes);
    }

    /// Answer a gather with the figures that arrived.
    fn finish_gather(&mut self, cx: &mut Cx<'_, Self>, gather: u64) {
        let Some(mut g) = self.gathers.remove(&gather) else {
            return;
        };
        cx.clear_timer(g.deadline);
        if g.got.len() < g.asked {
            log::warn!(
                "metrics: {} of {} workers answered within {GATHER_TIMEOUT:?}",
                g.got.len(),
                g.asked
            );
        }
        if !cx.is_writable(g.conn) {
            return;
        }
        g.got.sort_by_key(|(w, _)| *w);
        let bytes = response(g.reply, || match g.reply {
            Reply::Stats { .. } => super::workers::stats_json(&g.got),
            _ => {
                let mut text = super::workers::render(&g.got);
                text.push_str(&super::process::render(
                    &super::process::ProcessMetrics::read(),
                ));
                text.push_str(&super::app::render());
                text
            }
        });
        let _ = cx.end_with(g.conn, bytes);
    }

    /// `st` is no longer reading a head: forget its scanner and deadline.
    fn head_done(&mut self, cx: &mut Cx<'_, Self>, st: &mut Scrape) {
        if let Some(h) = st.head.take() {
            cx.clear_timer(h.deadline);
            self.heads.remove(&h.seq);
        }
    }
}

impl Service for MetricsEndpoint {
    type Conn = Scrape;
    type Tag = EndpointTimer;
    type Message = Snapshot;

    fn name(&self) -> &'static str {
        "metrics"
    }

    fn on_listening(&mut self, _: &mut Cx<'_, Self>, _: ServerId, addr: SocketAddr) {
        log::info!("metrics endpoint at http://{addr}/metrics");
        log::info!("live page at http://{addr}/ (JSON at http://{addr}/stats)");
    }

    fn on_connection(&mut self, cx: &mut Cx<'_, Self>, _: ServerId, c: ConnId) -> Option<Scrape> {
        // Keep at most MAX_PENDING_HEADS connections reading a head:
        // destroy the oldest beyond that (its close comes in the close
        // phase; it is no longer counted from now on).
        if self.heads.len() >= MAX_PENDING_HEADS {
            if let Some((_, oldest)) = self.heads.pop_first() {
                log::debug!(
                    "metrics: {MAX_PENDING_HEADS} slow request heads open, shedding {oldest}"
                );
                cx.destroy(oldest);
            }
        }
        self.next_seq += 1;
        let seq = self.next_seq;
        self.heads.insert(seq, c);
        let deadline = cx.set_timeout(HEAD_DEADLINE, EndpointTimer::Head(c));
        Some(Scrape {
            head: Some(Head {
                scanner: RequestScanner::default(),
                seq,
                deadline,
            }),
        })
    }

    fn on_drop(&mut self, _: &mut Cx<'_, Self>, _: ServerId, peer: SocketAddr) {
        log::debug!("metrics: over {MAX_CONNECTIONS} scrapes, dropped {peer}");
    }

    fn on_server_error(&mut self, _: &mut Cx<'_, Self>, _: ServerId, err: &NetError) {
        log::warn!("metrics endpoint: {err}");
    }

    fn on_data(&mut self, cx: &mut Cx<'_, Self>, c: ConnId, st: &mut Scrape, data: &mut BytesMut) {
        let Some(head) = st.head.as_mut() else {
            data.clear(); // after the answer: ignored
            return;
        };
        let Some(reply) = head.scanner.feed(data) else {
            return; // incomplete head, under the limit: wait for more
        };
        data.clear();
        self.answer(cx, c, st, reply);
    }

    fn on_timeout(&mut self, cx: &mut Cx<'_, Self>, c: ConnId, _: &mut Scrape) {
        cx.destroy(c);
    }

    fn on_error(&mut self, _: &mut Cx<'_, Self>, c: ConnId, _: &mut Scrape, err: &NetError) {
        log::debug!("metrics: {c}: {err}");
    }

    fn on_close(&mut self, cx: &mut Cx<'_, Self>, _: ConnId, mut st: Scrape, _: bool) {
        self.head_done(cx, &mut st);
    }

    fn on_message(&mut self, cx: &mut Cx<'_, Self>, snap: Snapshot) {
        let Some(g) = self.gathers.get_mut(&snap.gather) else {
            return; // answered late: the scrape already went out
        };
        g.got.push((snap.worker, *snap.metrics));
        if g.got.len() >= g.asked {
            self.finish_gather(cx, snap.gather);
        }
    }

    fn on_timer(&mut self, cx: &mut Cx<'_, Self>, _: TimerId, t: EndpointTimer) {
        let c = match t {
            EndpointTimer::Head(c) => c,
            EndpointTimer::Gather(g) => return self.finish_gather(cx, g),
        };
        // The head did not complete in time. The timer is cleared with the
        // head, so `c` is still reading one; answer it if it can be.
        if let Some(seq) = self.heads.iter().find(|(_, &v)| v == c).map(|(&k, _)| k) {
            self.heads.remove(&seq);
        }
        if cx.is_writable(c) {
            let bytes = response(Reply::Timeout, String::new);
            let _ = cx.end_with(c, bytes);
        } else {
            cx.destroy(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scanner_answers_as_the_parser_in_any_split() {
        let heads: [&[u8]; 5] = [
            b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
            b"HEAD /metrics?x=1 HTTP/1.0\n\n",
            b"POST /metrics HTTP/1.1\r\n\r\nbody",
            b"GET /other HTTP/1.1\r\na: b\r\n\r",
            b"garbage\n\n",
        ];
        for head in heads {
            for step in 1..=5 {
                let mut scanner = RequestScanner::default();
                let mut buf = Vec::new();
                for chunk in head.chunks(step) {
                    buf.extend_from_slice(chunk);
                    assert_eq!(
                        scanner.feed(&buf),
                        parse_request(&buf),
                        "{head:?} by {step}"
                    );
                }
            }
        }
        // Trickled past the limit with no end: TooLarge, as the parser says.
        let mut scanner = RequestScanner::default();
        let mut buf = b"GET /metrics HTTP/1.1\r\n".to_vec();
        while buf.len() < MAX_REQUEST_BYTES + 2 {
            buf.extend_from_slice(b"a\r\n");
            assert_eq!(scanner.feed(&buf), parse_request(&buf));
        }
        assert_eq!(scanner.feed(&buf), Some(Reply::TooLarge));
    }

    #[test]
    fn requests_and_their_replies() {
        let cases: &[(&[u8], Option<Reply>)] = &[
            (
                b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
                Some(Reply::Metrics { head_only: false }),
            ),
            (
                b"GET /metrics?x=1 HTTP/1.0\n\n",
                Some(Reply::Metrics { head_only: false }),
            ),
            (
                b"HEAD /metrics HTTP/1.1\r\n\r\n",
                Some(Reply::Metrics { head_only: true }),
            ),
            (
                b"GET / HTTP/1.1\r\n\r\n",
                Some(Reply::Page { head_only: false }),
            ),
            (
                b"GET /stats?t=1 HTTP/1.1\r\n\r\n",
                Some(Reply::Stats { head_only: false }),
            ),
            (b"GET /index.html HTTP/1.1\r\n\r\n", Some(Reply::NotFound)),
            (
                b"POST /metrics HTTP/1.1\r\n\r\n",
                Some(Reply::MethodNotAllowed),
            ),
            (b"GET /metrics\r\n\r\n", Some(Reply::BadRequest)),
            (b"GET  /metrics HTTP/1.1\r\n\r\n", Some(Reply::BadRequest)),
            (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", Some(Reply::BadRequest)),
            (
                b"\xff\xfe /metrics HTTP/1.1\r\n\r\n",
                Some(Reply::BadRequest),
            ),
            (b"GET /metrics HTTP/1.1\r\nHost: x\r\n", None),
            (b"", None),
        ];
        for (req, want) in cases {
            assert_eq!(
                parse_request(req),
                *want,
                "{:?}",
                String::from_utf8_lossy(req)
            );
        }
    }

    #[test]
    fn oversized_heads_are_refused_at_the_limit() {
        let mut req = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
        req.resize(MAX_REQUEST_BYTES - 1, b'a');
        assert_eq!(parse_request(&req), None);
        req.push(b'a');
        assert_eq!(parse_request(&req), Some(Reply::TooLarge));
        // A terminator past the limit does not count.
        req.extend_from_slice(b"\r\n\r\n");
        assert_eq!(parse_request(&req), Some(Reply::TooLarge));
    }

    #[test]
    fn responses_carry_length_and_close() {
        let r = String::from_utf8(response(Reply::Metrics { head_only: false }, || {
            "a 1\n".into()
        }))
        .unwrap();
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(r.contains("Content-Length: 4\r\n"));
        assert!(r.contains("Connection: close\r\n"));
        assert!(r.ends_with("\r\n\r\na 1\n"));
        let h = String::from_utf8(response(Reply::Metrics { head_only: true }, || {
            "a 1\n".into()
        }))
        .unwrap();
        assert!(h.ends_with("Content-Length: 4\r\nConnection: close\r\n\r\n"));
        let m = String::from_utf8(response(Reply::MethodNotAllowed, String::new)).unwrap();
        assert!(m.starts_with("HTTP/1.1 405 ") && m.contains("Allow: GET, HEAD\r\n"));
    }

    #[test]
    fn metrics_addr_parses() {
        assert_eq!(
            "127.0.0.1:9100".parse::<MetricsAddr>(),
            Ok(MetricsAddr {
                host: "127.0.0.1".into(),
                port: 9100
            })
        );
        assert_eq!(
            "[::1]:0".parse::<MetricsAddr>().map(|a| a.host),
            Ok("::1".into())
        );
        assert!("9100".parse::<MetricsAddr>().is_err());
        assert!(":9100".parse::<MetricsAddr>().is_err());
        assert!("h:99999".parse::<MetricsAddr>().is_err());
    }
}
