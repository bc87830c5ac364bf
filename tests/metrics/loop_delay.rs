//! Always-on loop delay and busy time by service: a plain echo server under
//! ping-pong load reports iteration busy time, every timer's lateness
//! (internal ones included), and a loop running chat, echo and the metrics
//! endpoint says which one keeps it busy.

use crate::http::{http, parse_prometheus, start};
use crate::util;
use std::io::{Read, Write};
use std::net::SocketAddr;
use util::*;

/// `rounds` 64-byte round trips on each of `conns` connections, in parallel.
pub(crate) fn pingpong(addr: SocketAddr, conns: usize, rounds: usize) {
    let threads: Vec<_> = (0..conns)
        .map(|i| {
            std::thread::spawn(move || {
                let mut s = connect(addr);
                let msg = [i as u8; 64];
                for _ in 0..rounds {
                    s.write_all(&msg).expect("write");
                    assert_eq!(read_exact(&mut s, 64), msg);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("load thread");
    }
}

/// `GET /stats` as JSON.
pub(crate) fn stats(maddr: SocketAddr) -> serde_json::Value {
    let (code, headers, body) = http(maddr, b"GET /stats HTTP/1.1\r\n\r\n");
    assert_eq!(code, 200, "{body}");
    assert_eq!(headers["content-type"], "application/json");
    serde_json::from_str(&body).expect("/stats is JSON")
}

#[test]
fn a_plain_echo_reports_loop_delay_and_internal_timer_lateness() {
    let (mut srv, maddr) = start(&["--idle-timeout", "100ms"]);
    pingpong(srv.addr, 4, 300);
    // A silent connection: the loop's own idle timer fires and the echo
    // ends it; no application timer is involved.
    let mut idle = connect(srv.addr);
    let mut buf = [0u8; 16];
    assert_eq!(idle.read(&mut buf).expect("EOF after the idle timeout"), 0);

    let s = stats(maddr);
    let d = &s["loop_delay"];
    let busy = &d["iteration_busy_ms"];
    assert!(busy["count"].as_u64().unwrap() > 0, "{d}");
    assert!(busy["sum"].as_f64().unwrap() > 0.0, "{d}");
    assert!(busy["max"].as_f64().unwrap() >= busy["p50"].as_f64().unwrap());
    let buckets = d["iteration_busy_buckets"].as_array().unwrap();
    let in_buckets: u64 = buckets.iter().map(|b| b["count"].as_u64().unwrap()).sum();
    assert_eq!(in_buckets, busy["count"].as_u64().unwrap());
    // Internal timers only: the application-timer histogram stays empty,
    // the every-timer one does not.
    assert_eq!(s["timers"]["app_fired"], 0, "{}", s["timers"]);
    assert_eq!(s["timer_lateness_ms"]["count"], 0);
    let td = &d["timer_delay_ms"];
    assert!(td["count"].as_u64().unwrap() >= 1, "{d}");
    assert!(s["timers"]["fired"].as_u64().unwrap() >= td["count"].as_u64().unwrap());

    let (_, _, text) = http(maddr, b"GET /metrics HTTP/1.1\r\n\r\n");
    let m = parse_prometheus(&text);
    assert!(m["netloop_loop_iteration_busy_seconds_count"] > 0.0);
    assert!(m["netloop_loop_timer_delay_seconds_count"] >= 1.0);
    assert!(m["netloop_service_busy_seconds_total{service=\"echo\"}"] > 0.0);
    assert!(m["netloop_service_callbacks_total{service=\"echo\"}"] >= 1200.0);
    assert_eq!(m["netloop_slow_callbacks_total{event=\"data\"}"], 0.0);
    assert_eq!(m["netloop_slow_callback_threshold_seconds"], 0.05);

    srv.signal("TERM");
    srv.wait_log("loop delay: iteration busy p50");
    assert_eq!(srv.wait_exit(), Some(0));
}

#[test]
fn busy_time_goes_to_the_service_that_works() {
    use netloop::protocol::catalog::{Catalog, Lang};
    use netloop::servers::{chat::ChatServer, echo::Echo};
    use netloop::{ListenOptions, Reactor};
    let (tx, rx) = std::sync::mpsc::channel();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    let thread = std::thread::spawn(move || {
        let mut r = Reactor::new().expect("reactor");
        let echo = r.serve(ListenOptions::port(0), Echo).expect("echo");
        let chat = r
            .serve(
                ListenOptions::port(0),
                ChatServer::new(Catalog::new(Lang::En), 64 * 1024),
            )
            .expect("chat");
        let addr = "127.0.0.1:0".parse().unwrap();
        let m = netloop::metrics::http::listen(&mut r, &addr).expect("metrics");
        tx.send((
            r.server_addr(echo).unwrap(),
            r.server_addr(chat).unwrap(),
            r.server_addr(m).unwrap(),
        ))
        .unwrap();
        // Stopped by the test through a flag checked by a timer.
        struct Watch(std::sync::Arc<std::sync::atomic::AtomicBool>);
        impl netloop::Service for Watch {
            type Conn = ();
            type Tag = ();
            type Message = ();
            fn name(&self) -> &'static str {
                "watch"
            }
            fn on_start(&mut self, cx: &mut netloop::Cx<'_, Self>) {
                cx.set_interval(std::time::Duration::from_millis(20), ());
            }
            fn on_data(
                &mut self,
                _: &mut netloop::Cx<'_, Self>,
                _: netloop::ConnId,
                _: &mut (),
                _: &mut netloop::BytesMut,
            ) {
            }
            fn on_timer(&mut self, cx: &mut netloop::Cx<'_, Self>, _: netloop::TimerId, _: ()) {
                if self.0.load(std::sync::atomic::Ordering::Relaxed) {
                    cx.stop();
                }
            }
        }
        r.add_service(Watch(stop2));
        r.run().expect("run");
    });
    let (echo, chat, maddr) = rx.recv_timeout(TIMEOUT).expect("started");
    // A little chat, a lot of echo.
    let mut c = connect(chat);
    c.write_all(b"/nick alice\n").unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains("alice") {
        let n = c.read(&mut buf).expect("chat answers");
        assert!(n > 0, "chat closed");
        got.extend_from_slice(&buf[..n]);
    }
    pingpong(echo, 4, 500);

    let s = stats(maddr);
    let services = s["services"].as_array().expect("services");
    let busy = |name: &str| {
        services
            .iter()
            .find(|x| x["name"] == name)
            .unwrap_or_else(|| panic!("{name} missing from {services:?}"))["busy_seconds"]
            .as_f64()
            .unwrap()
    };
    let calls = |name: &str| {
        services.iter().find(|x| x["name"] == name).unwrap()["callbacks"]
            .as_u64()
            .unwrap()
    };
    assert!(busy("echo") > busy("chat"), "{services:?}");
    assert!(calls("echo") >= 2000, "{services:?}");
    assert!(calls("chat") >= 2, "{services:?}");
    assert!(calls("metrics") >= 1, "{services:?}");
    // Busiest first.
    assert_eq!(services[0]["name"], "echo", "{services:?}");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    thread.join().expect("loop thread");
}
