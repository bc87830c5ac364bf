//! `netloop serve APP --workers N`: one loop per worker on `SO_REUSEPORT`
//! listeners (`src/workers.rs`): the spread, echo and backpressure, the
//! shutdown, the metrics, and the state that spans connections kept for the
//! whole process (chat rooms, nicknames and whispers across workers,
//! command ids and `/list`, the heartbeat's client count, upload names).
//!
//! One module per part: `cargo test --test workers NAME` runs the tests
//! whose path contains NAME.

#[path = "../lineclient/mod.rs"]
mod lineclient;
#[path = "../util/mod.rs"]
mod util;

mod chat;
mod command;
mod echo;
mod heartbeat;
mod metrics;
mod shutdown;
mod spread;
mod upload;

use std::io::{Read, Write};
use std::net::TcpListener;

/// A port that was free a moment ago, for a flag that needs a fixed one
/// (`--metrics HOST:PORT`).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local address").port()
}

/// `netloop serve APP --port 0 --workers N --metrics 127.0.0.1:P EXTRA...`,
/// returned once the endpoint listens, which is after every worker does
/// (the last worker opens it): the server and P.
pub fn start_with_metrics(app: &str, workers: usize, extra: &[&str]) -> (util::Server, u16) {
    let port = free_port();
    let (w, m) = (workers.to_string(), format!("127.0.0.1:{port}"));
    let mut args = vec![
        "serve",
        app,
        "--port",
        "0",
        "--workers",
        &w,
        "--metrics",
        &m,
    ];
    args.extend_from_slice(extra);
    let srv = util::Server::start(&args);
    if !srv
        .startup
        .iter()
        .any(|l| l.contains("metrics endpoint at"))
    {
        srv.wait_log("metrics endpoint at");
    }
    (srv, port)
}

/// `GET /metrics` from the endpoint on `port`: the body.
pub fn scrape(port: u16) -> String {
    let mut s = util::connect(format!("127.0.0.1:{port}").parse().expect("address"));
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("send the request");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("read the response");
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    text.split_once("\r\n\r\n")
        .map(|x| x.1.to_string())
        .unwrap_or_default()
}

/// The value of the sample `series` (name with its labels, exactly as
/// printed) in `text`.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        let (name, v) = l.rsplit_once(' ')?;
        (name == series).then(|| v.parse().ok()).flatten()
    })
}

/// Accepted connections per worker, as the metrics endpoint reports them.
pub fn accepted_per_worker(text: &str, workers: usize) -> Vec<f64> {
    (0..workers)
        .map(|w| {
            sample(
                text,
                &format!("netloop_connections_accepted_total{{worker=\"{w}\"}}"),
            )
            .unwrap_or_else(|| panic!("no accepted count for worker {w} in\n{text}"))
        })
        .collect()
}
