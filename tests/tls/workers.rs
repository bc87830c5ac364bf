//! TLS with `--workers N`: every worker's listener takes the same
//! certificate, and the HTTPS metrics endpoint reports every worker.

use crate::common::*;
use std::io::{Read, Write};

#[test]
fn every_worker_serves_tls_and_the_https_metrics_count_them_all() {
    let certs = Certs::new("workers");
    let mport = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let metrics = format!("127.0.0.1:{mport}");
    let srv = serve_tls(
        &certs,
        "echo",
        &[
            "--workers",
            "3",
            "--metrics",
            &metrics,
            "--metrics-tls-cert",
            certs.cert(),
            "--metrics-tls-key",
            certs.key(),
        ],
    );
    // The endpoint opens on the last worker, after every worker listens.
    if !srv
        .startup
        .iter()
        .any(|l| l.contains("metrics endpoint at"))
    {
        srv.wait_log("metrics endpoint at");
    }
    const CONNS: usize = 60;
    let mut conns: Vec<TlsStream> = (0..CONNS).map(|_| tls_connect(srv.addr, &certs)).collect();
    for (i, s) in conns.iter_mut().enumerate() {
        let line = format!("hello {i}\n");
        s.write_all(line.as_bytes()).expect("send");
        assert_eq!(read_line(s), line);
    }
    let mut m = tls_connect(format!("127.0.0.1:{mport}").parse().unwrap(), &certs);
    m.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .expect("request");
    let mut text = String::new();
    let _ = m.read_to_string(&mut text);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let value = |series: &str| {
        text.lines()
            .find_map(|l| {
                l.strip_prefix(series)?
                    .strip_prefix(' ')?
                    .parse::<f64>()
                    .ok()
            })
            .unwrap_or_else(|| panic!("no {series} in the scrape"))
    };
    let per: Vec<f64> = (0..3)
        .map(|w| value(&format!("netloop_tls_handshakes_total{{worker=\"{w}\"}}")))
        .collect();
    let total = value("netloop_tls_handshakes_total");
    assert_eq!(total, per.iter().sum::<f64>(), "{per:?}");
    // The 60 echo connections, and the scrape's own handshake.
    assert_eq!(total, CONNS as f64 + 1.0, "{per:?}");
    assert!(
        per.iter().filter(|&&n| n > 0.0).count() >= 2,
        "60 connections all on one worker: {per:?}"
    );
}
