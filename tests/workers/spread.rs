//! Start a server with several workers and its `--metrics` endpoint, and
//! tell from `netloop_connections_accepted_total{worker="i"}` which worker
//! accepted what: the only outside view of how the kernel spread the
//! connections.

use crate::util::{self, Server, TIMEOUT};
use std::cell::Cell;
use std::io::Write;
use std::net::SocketAddr;

/// A `netloop serve APP --workers N --metrics 127.0.0.1:0` child.
pub struct Workers {
    pub srv: Server,
    pub metrics: SocketAddr,
    pub count: usize,
    /// Scrapes so far: each is a connection accepted by the last worker (the
    /// endpoint's loop), to take out of its count.
    scrapes: Cell<u64>,
}

fn metrics_addr(line: &str) -> Option<SocketAddr> {
    let rest = line.split("metrics endpoint at http://").nth(1)?;
    rest.split('/').next()?.parse().ok()
}

/// Start `netloop serve APP --port 0 --workers COUNT --metrics 127.0.0.1:0
/// EXTRA...` and wait until every worker has logged its listener (so the
/// kernel spreads from the first connection on) and the endpoint its
/// address.
pub fn start(app: &str, count: usize, extra: &[&str]) -> Workers {
    let n = count.to_string();
    let mut args = vec![
        "serve",
        app,
        "--port",
        "0",
        "--workers",
        &n,
        "--metrics",
        "127.0.0.1:0",
    ];
    args.extend_from_slice(extra);
    let srv = Server::start(&args);
    let mut listening = 0;
    let mut metrics = None;
    for l in &srv.startup {
        listening += usize::from(l.contains(" listening on "));
        metrics = metrics.or_else(|| metrics_addr(l));
    }
    while listening < count || metrics.is_none() {
        let l = srv.log.recv_timeout(TIMEOUT).unwrap_or_else(|_| {
            panic!("{listening} of {count} workers listening, metrics at {metrics:?}")
        });
        listening += usize::from(l.contains(" listening on "));
        metrics = metrics.or_else(|| metrics_addr(&l));
    }
    Workers {
        srv,
        metrics: metrics.unwrap(),
        count,
        scrapes: Cell::new(0),
    }
}

impl Workers {
    /// The clients' address (every worker's).
    pub fn addr(&self) -> SocketAddr {
        self.srv.addr
    }

    /// One `GET /metrics`: the body.
    pub fn scrape(&self) -> String {
        let mut s = util::connect(self.metrics);
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .unwrap();
        self.scrapes.set(self.scrapes.get() + 1);
        let resp = String::from_utf8(util::read_to_end(&mut s)).expect("UTF-8");
        let (head, body) = resp.split_once("\r\n\r\n").expect("an HTTP response");
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        body.to_string()
    }

    /// Client connections accepted by each worker so far (the scrapes
    /// taken out); every worker must have answered.
    pub fn accepted(&self) -> Vec<u64> {
        let text = self.scrape();
        let answered = format!("netloop_workers_answered {}", self.count);
        assert!(text.lines().any(|l| l == answered), "{text}");
        let mut out = vec![None; self.count];
        for l in text.lines() {
            let Some(rest) = l.strip_prefix("netloop_connections_accepted_total{worker=\"") else {
                continue;
            };
            let (w, rest) = rest.split_once('"').unwrap();
            let v = rest.rsplit(' ').next().unwrap();
            let w: usize = w.parse().unwrap();
            out[w] = Some(v.parse::<f64>().unwrap() as u64);
        }
        let mut out: Vec<u64> = out
            .into_iter()
            .map(|v| v.expect("a series per worker"))
            .collect();
        let last = self.count - 1;
        out[last] = out[last]
            .checked_sub(self.scrapes.get())
            .expect("the last worker counts the scrapes");
        out
    }

    /// Run `connect` (which must return once the server has accepted, for
    /// example after the welcome) and return its result and the worker
    /// that accepted the connection.
    pub fn tracked<T>(&self, connect: impl FnOnce() -> T) -> (T, usize) {
        let before = self.accepted();
        let t = connect();
        let after = self.accepted();
        let grew: Vec<usize> = (0..self.count).filter(|&i| after[i] > before[i]).collect();
        assert_eq!(
            after.iter().sum::<u64>(),
            before.iter().sum::<u64>() + 1,
            "one connection: {before:?} -> {after:?}"
        );
        (t, grew[0])
    }
}

/// How many workers accepted at least one connection.
pub fn busy(per_worker: &[u64]) -> usize {
    per_worker.iter().filter(|&&n| n > 0).count()
}
