//! The `--metrics HOST:PORT` responder: a tiny HTTP/1.1 server on the same
//! loop that answers `GET /metrics` with [`super::prometheus::render`].
//!
//! # Protocol
//!
//! One request per connection, one response, then `end()` (flush, FIN):
//! the connection is closed by us, as `Connection: close` announces. The
//! request head must end (`\r\n\r\n`, or `\n\n` from hand-typed clients)
//! within [`MAX_REQUEST_BYTES`]; a longer head gets `431`, a malformed
//! request line `400`, a method other than `GET`/`HEAD` `405` (with
//! `Allow`), a path other than `/metrics` `404`. Headers are not
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
//! [`WithMetrics`] wraps the application's handler. It owns the metrics
//! server's id and the set of its connections; every event that belongs to
//! them it handles itself, every other event goes to the application
//! unchanged. The application never sees the scrape connections (but
//! `Reactor::connection_ids` and the loop's connection counts include
//! them). On the hot path the only cost is an emptiness check of that set.

use super::prometheus;
use crate::net::error::NetError;
use crate::reactor::config::{ListenOptions, SocketOptions, ACCEPT_BUDGET};
use crate::{BytesMut, ConnId, Handler, Reactor, ServerId, TimerId};
use std::any::Any;
use std::collections::HashMap;
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
    /// `400`: the request line is not `METHOD TARGET HTTP/1.x`.
    BadRequest,
    /// `404`: a path other than `/metrics`.
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
    if path != "/metrics" {
        return Some(Reply::NotFound);
    }
    Some(Reply::Metrics { head_only })
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

/// The full response bytes for `reply`; `body` renders the metrics.
pub fn response(reply: Reply, body: impl FnOnce() -> String) -> Vec<u8> {
    let (status, ctype, body, head_only, extra) = match reply {
        Reply::Metrics { head_only } => ("200 OK", prometheus::CONTENT_TYPE, body(), head_only, ""),
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
            "not found: try /metrics\n".into(),
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

/// Listen for scrapes on `addr` with the endpoint's limits.
pub fn listen(r: &mut Reactor, addr: &MetricsAddr) -> Result<ServerId, NetError> {
    r.listen(ListenOptions {
        host: addr.host.clone(),
        port: addr.port,
        max_connections: Some(MAX_CONNECTIONS),
        socket: SocketOptions {
            idle_timeout: Some(IDLE_TIMEOUT),
            ..SocketOptions::default()
        },
        ..ListenOptions::default()
    })
}

/// A scrape connection still sending its request head.
#[derive(Debug)]
struct Head {
    scanner: RequestScanner,
    /// Accept order, for shedding the oldest.
    seq: u64,
    deadline: TimerId,
}

/// The application's handler plus the metrics endpoint (see the module docs).
#[derive(Debug)]
pub struct WithMetrics<H> {
    inner: H,
    server: Option<ServerId>,
    /// Scrape connections: the head being read, then `None` once answered.
    conns: HashMap<ConnId, Option<Head>>,
    /// Our head-deadline timers (every other timer is the application's).
    timers: HashMap<TimerId, ConnId>,
    next_seq: u64,
}

impl<H: Handler> WithMetrics<H> {
    /// Wrap `inner`; `server` is the metrics listener (from [`listen`]), or
    /// `None` to forward everything.
    pub fn new(inner: H, server: Option<ServerId>) -> Self {
        WithMetrics {
            inner,
            server,
            conns: HashMap::new(),
            timers: HashMap::new(),
            next_seq: 0,
        }
    }

    /// The application's handler.
    pub fn inner(&self) -> &H {
        &self.inner
    }

    /// The application's handler, mutably.
    pub fn inner_mut(&mut self) -> &mut H {
        &mut self.inner
    }

    fn is_server(&self, s: ServerId) -> bool {
        self.server == Some(s)
    }

    #[inline]
    fn is_ours(&self, c: ConnId) -> bool {
        !self.conns.is_empty() && self.conns.contains_key(&c)
    }

    /// Answer `c` with `reply` and end it; its head is done.
    fn answer(&mut self, r: &mut Reactor, c: ConnId, reply: Reply) {
        self.head_done(r, c);
        if reply != (Reply::Metrics { head_only: false }) {
            log::debug!("metrics: {c} {reply:?}");
        }
        let bytes = response(reply, || {
            // The loop's figures, then the process's own (`process_*`,
            // `netloop_build_info`).
            let mut text = prometheus::render(&r.metrics());
            text.push_str(&super::process::render(
                &super::process::ProcessMetrics::read(),
            ));
            text
        });
        let _ = r.end_with(c, bytes);
    }

    /// `c` is no longer reading a head: forget its scanner and deadline.
    fn head_done(&mut self, r: &mut Reactor, c: ConnId) {
        if let Some(Some(h)) = self.conns.insert(c, None) {
            r.clear_timer(h.deadline);
            self.timers.remove(&h.deadline);
        }
    }

    /// Keep at most [`MAX_PENDING_HEADS`] connections reading a head:
    /// destroy the oldest beyond that (never `newest`).
    fn shed(&mut self, r: &mut Reactor, newest: ConnId) {
        let pending = self.conns.values().filter(|h| h.is_some()).count();
        if pending <= MAX_PENDING_HEADS {
            return;
        }
        let oldest = self
            .conns
            .iter()
            .filter(|(&c, h)| c != newest && h.is_some())
            .min_by_key(|(_, h)| h.as_ref().map_or(u64::MAX, |h| h.seq))
            .map(|(&c, _)| c);
        if let Some(c) = oldest {
            log::debug!("metrics: {MAX_PENDING_HEADS} slow request heads open, shedding {c}");
            // No longer pending from now on: the close comes in the loop's
            // close phase, and the next accept of this iteration must shed
            // another head, not count this one again.
            self.head_done(r, c);
            r.destroy(c);
        }
    }
}

impl<H: Handler> Handler for WithMetrics<H> {
    fn on_listening(&mut self, r: &mut Reactor, s: ServerId, addr: SocketAddr) {
        if self.is_server(s) {
            log::info!("metrics endpoint at http://{addr}/metrics");
        } else {
            self.inner.on_listening(r, s, addr)
        }
    }
    fn on_connection(&mut self, r: &mut Reactor, s: ServerId, c: ConnId) {
        if self.is_server(s) {
            let deadline = r.set_timeout(HEAD_DEADLINE, c.to_u64());
            self.timers.insert(deadline, c);
            self.next_seq += 1;
            let head = Head {
                scanner: RequestScanner::default(),
                seq: self.next_seq,
                deadline,
            };
            self.conns.insert(c, Some(head));
            self.shed(r, c);
        } else {
            self.inner.on_connection(r, s, c)
        }
    }
    fn on_drop(&mut self, r: &mut Reactor, s: ServerId, peer: SocketAddr) {
        if self.is_server(s) {
            log::debug!("metrics: over {MAX_CONNECTIONS} scrapes, dropped {peer}");
        } else {
            self.inner.on_drop(r, s, peer)
        }
    }
    fn on_server_error(&mut self, r: &mut Reactor, s: ServerId, err: &NetError) {
        if self.is_server(s) {
            log::warn!("metrics endpoint: {err}");
        } else {
            self.inner.on_server_error(r, s, err)
        }
    }
    fn on_server_close(&mut self, r: &mut Reactor, s: ServerId) {
        if !self.is_server(s) {
            self.inner.on_server_close(r, s)
        }
    }
    fn on_lookup(&mut self, r: &mut Reactor, c: ConnId, res: Result<SocketAddr, &NetError>) {
        self.inner.on_lookup(r, c, res)
    }
    fn on_connect(&mut self, r: &mut Reactor, c: ConnId) {
        self.inner.on_connect(r, c)
    }
    fn on_ready(&mut self, r: &mut Reactor, c: ConnId) {
        self.inner.on_ready(r, c)
    }
    fn on_data(&mut self, r: &mut Reactor, c: ConnId, data: &mut BytesMut) {
        if !self.is_ours(c) {
            return self.inner.on_data(r, c, data);
        }
        let Some(Some(head)) = self.conns.get_mut(&c) else {
            data.clear(); // after the answer: ignored
            return;
        };
        let Some(reply) = head.scanner.feed(data) else {
            return; // incomplete head, under the limit: wait for more
        };
        data.clear();
        self.answer(r, c, reply);
    }
    fn on_end(&mut self, r: &mut Reactor, c: ConnId) {
        if !self.is_ours(c) {
            self.inner.on_end(r, c)
        }
    }
    fn on_drain(&mut self, r: &mut Reactor, c: ConnId) {
        if !self.is_ours(c) {
            self.inner.on_drain(r, c)
        }
    }
    fn on_timeout(&mut self, r: &mut Reactor, c: ConnId) {
        if self.is_ours(c) {
            r.destroy(c);
        } else {
            self.inner.on_timeout(r, c)
        }
    }
    fn on_error(&mut self, r: &mut Reactor, c: ConnId, err: &NetError) {
        if self.is_ours(c) {
            log::debug!("metrics: {c}: {err}");
        } else {
            self.inner.on_error(r, c, err)
        }
    }
    fn on_close(&mut self, r: &mut Reactor, c: ConnId, had_error: bool) {
        if self.is_ours(c) {
            self.head_done(r, c);
            self.conns.remove(&c);
        } else {
            self.inner.on_close(r, c, had_error)
        }
    }
    fn on_timer(&mut self, r: &mut Reactor, t: TimerId, tag: u64) {
        let ours = if self.timers.is_empty() {
            None
        } else {
            self.timers.remove(&t)
        };
        match ours {
            Some(c) => {
                if r.is_writable(c) {
                    self.answer(r, c, Reply::Timeout);
                } else {
                    r.destroy(c);
                }
            }
            None => self.inner.on_timer(r, t, tag),
        }
    }
    fn on_immediate(&mut self, r: &mut Reactor, tag: u64) {
        self.inner.on_immediate(r, tag)
    }
    fn on_shutdown(&mut self, r: &mut Reactor) {
        self.inner.on_shutdown(r)
    }
    fn on_message(&mut self, r: &mut Reactor, msg: Box<dyn Any + Send>) {
        self.inner.on_message(r, msg)
    }
    fn on_fd_readable(&mut self, r: &mut Reactor, tag: u64) {
        self.inner.on_fd_readable(r, tag)
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
            (b"GET / HTTP/1.1\r\n\r\n", Some(Reply::NotFound)),
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
