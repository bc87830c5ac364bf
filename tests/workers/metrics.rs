//! One `--metrics` endpoint for a process of several workers: every figure
//! per worker with a `worker` label, and the process totals.

use super::util::{connect, Server};
use super::{accepted_per_worker, free_port, sample, scrape};
use std::io::{Read, Write};

#[test]
fn metrics_show_one_series_per_worker_and_their_totals() {
    let mport = free_port();
    let metrics = format!("127.0.0.1:{mport}");
    let srv = Server::start(&[
        "serve",
        "echo",
        "--port",
        "0",
        "--workers",
        "3",
        "--metrics",
        &metrics,
    ]);
    let mut conns: Vec<_> = (0..60).map(|_| connect(srv.addr)).collect();
    for s in &mut conns {
        s.write_all(b"0123456789").expect("send");
        let mut b = [0u8; 10];
        s.read_exact(&mut b).expect("echo");
    }
    let text = scrape(mport);
    assert_eq!(
        sample(&text, "netloop_workers_answered"),
        Some(3.0),
        "{text}"
    );
    let per = accepted_per_worker(&text, 3);
    let total = sample(&text, "netloop_connections_accepted_total").expect("total");
    assert_eq!(total, per.iter().sum::<f64>(), "{per:?}");
    // 60 echo connections, and the scrape on worker 0.
    assert_eq!(total, 61.0);
    // Bytes: 600 read by the echo workers, plus the scrape's request.
    let read: f64 = (0..3)
        .map(|w| {
            sample(
                &text,
                &format!("netloop_bytes_read_total{{worker=\"{w}\"}}"),
            )
            .expect("bytes")
        })
        .sum();
    assert_eq!(sample(&text, "netloop_bytes_read_total"), Some(read));
    assert!(read >= 600.0, "{read}");
    // Help and type lines once per family, not once per worker.
    assert_eq!(
        text.matches("# TYPE netloop_bytes_read_total ").count(),
        1,
        "{text}"
    );
    // Quantiles have no process total.
    assert!(text
        .lines()
        .filter(|l| l.contains("quantile="))
        .all(|l| l.contains("worker=")));
}
