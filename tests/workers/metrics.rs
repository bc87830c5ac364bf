//! One `--metrics` endpoint for a process of several workers: every figure
//! per worker with a `worker` label, and the process totals.

use super::util::connect;
use super::{accepted_per_worker, sample, scrape, start_with_metrics};
use std::io::{Read, Write};

#[test]
fn metrics_show_one_series_per_worker_and_their_totals() {
    let (srv, mport) = start_with_metrics("echo", 3, &[]);
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
    // 60 echo connections, and the scrape on the last worker.
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

#[test]
fn stats_json_holds_every_worker_and_the_process_totals() {
    let (srv, mport) = start_with_metrics("echo", 3, &[]);
    let mut conns: Vec<_> = (0..30).map(|_| connect(srv.addr)).collect();
    // An echo on each: every one has been accepted by its worker.
    for c in &mut conns {
        c.write_all(b"x").expect("send");
        let mut b = [0u8; 1];
        c.read_exact(&mut b).expect("echo");
    }
    let mut s = connect(format!("127.0.0.1:{mport}").parse().expect("address"));
    s.write_all(b"GET /stats HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("send the request");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("read the response");
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let body = text.split_once("\r\n\r\n").map(|x| x.1).unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(body).expect("JSON");
    let workers = v["workers"].as_array().expect("a workers array");
    assert_eq!(workers.len(), 3);
    let per: u64 = workers
        .iter()
        .map(|w| w["connections"]["accepted"].as_u64().expect("accepted"))
        .sum();
    assert_eq!(v["connections"]["accepted"].as_u64(), Some(per));
    assert!(per >= 30, "{per}");
    drop(conns);
}
