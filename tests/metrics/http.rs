//! The `--metrics` endpoint of `netloop serve`: Prometheus text on
//! `GET /metrics`, errors for everything else, the application's own
//! connections undisturbed; `--trace-loop`, the trace detail, and the
//! summary at graceful shutdown.

use crate::util;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};
use util::*;

/// Start `netloop serve echo` with a metrics endpoint on a free port.
pub(crate) fn start(extra: &[&str]) -> (Server, SocketAddr) {
    let mut args = vec!["serve", "echo", "--port", "0", "--metrics", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let srv = Server::start(&args);
    let line = srv.wait_log("metrics endpoint at http://");
    let rest = line.split("http://").nth(1).expect("url");
    let addr = rest
        .trim_end_matches("/metrics")
        .parse()
        .expect("metrics addr");
    (srv, addr)
}

/// Send `req` raw, read the whole response (the server closes).
pub(crate) fn http(addr: SocketAddr, req: &[u8]) -> (u16, HashMap<String, String>, String) {
    let mut s = connect(addr);
    s.write_all(req).expect("send request");
    let raw = read_to_end(&mut s);
    let text = String::from_utf8(raw).expect("utf-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("head/body");
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap();
    assert!(status.starts_with("HTTP/1.1 "), "{status}");
    let code = status[9..12].parse().unwrap();
    let headers = lines
        .map(|l| {
            let (k, v) = l.split_once(": ").expect("header");
            (k.to_ascii_lowercase(), v.to_string())
        })
        .collect::<HashMap<_, _>>();
    assert_eq!(headers["content-length"], body.len().to_string());
    assert_eq!(headers["connection"], "close");
    (code, headers, body.to_string())
}

/// Parse Prometheus text (format 0.0.4) strictly, line by line: every
/// sample belongs to a family declared by `# HELP` and `# TYPE` just before
/// it, names and labels are well formed, values are numbers, counters end in
/// `_total`. Returns `name{labels}` → value.
pub(crate) fn parse_prometheus(text: &str) -> HashMap<String, f64> {
    fn is_name(s: &str) -> bool {
        let mut c = s.chars();
        c.next()
            .is_some_and(|f| f.is_ascii_alphabetic() || f == '_' || f == ':')
            && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == ':')
    }
    assert!(text.ends_with('\n'), "text ends with a newline");
    let mut out = HashMap::new();
    let mut family: Option<(String, String)> = None; // (name, type)
    let mut helped: Option<String> = None;
    for (n, line) in text.lines().enumerate() {
        let ctx = format!("line {}: {line:?}", n + 1);
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect(&ctx);
            assert!(is_name(name) && !help.is_empty(), "{ctx}");
            helped = Some(name.to_string());
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect(&ctx);
            assert_eq!(helped.as_deref(), Some(name), "HELP before TYPE, {ctx}");
            assert!(
                ["counter", "gauge", "summary", "histogram", "untyped"].contains(&kind),
                "{ctx}"
            );
            if kind == "counter" {
                assert!(name.ends_with("_total"), "counter name, {ctx}");
            }
            assert!(
                !out.keys()
                    .any(|k: &String| k.split('{').next() == Some(name)),
                "family declared twice, {ctx}"
            );
            family = Some((name.to_string(), kind.to_string()));
            continue;
        }
        assert!(!line.starts_with('#') && !line.is_empty(), "{ctx}");
        let (series, value) = line.rsplit_once(' ').expect(&ctx);
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("value, {ctx}"));
        let (name, labels) = match series.split_once('{') {
            Some((name, labels)) => {
                let labels = labels.strip_suffix('}').expect(&ctx);
                for pair in labels.split(',') {
                    let (k, v) = pair.split_once('=').expect(&ctx);
                    assert!(is_name(k), "label name, {ctx}");
                    assert!(
                        v.len() >= 2 && v.starts_with('"') && v.ends_with('"'),
                        "{ctx}"
                    );
                }
                (name, Some(labels))
            }
            None => (series, None),
        };
        assert!(is_name(name), "{ctx}");
        let (fam, kind) = family.as_ref().expect(&ctx);
        let ok = name == fam
            || (kind == "summary"
                && (name == format!("{fam}_sum") || name == format!("{fam}_count")));
        assert!(ok, "sample outside its family {fam}, {ctx}");
        if kind == "summary" && name == fam {
            assert!(labels.is_some_and(|l| l.starts_with("quantile=")), "{ctx}");
        }
        assert!(value >= 0.0 || value.is_nan(), "{ctx}");
        assert!(
            out.insert(series.to_string(), value).is_none(),
            "duplicate, {ctx}"
        );
    }
    out
}

const GET: &[u8] = b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nUser-Agent: test\r\n\r\n";

#[test]
fn get_metrics_is_prometheus_text_with_exact_counts() {
    let (srv, maddr) = start(&[]);
    let mut c = connect(srv.addr);
    c.write_all(&[1u8; 4321]).unwrap();
    assert_eq!(read_exact(&mut c, 4321).len(), 4321);

    let (code, headers, body) = http(maddr, GET);
    assert_eq!(code, 200);
    assert!(headers["content-type"].starts_with("text/plain; version=0.0.4"));
    let m = parse_prometheus(&body);
    // The endpoint's own traffic is counted too: our request was read, its
    // response not yet written.
    assert_eq!(m["netloop_bytes_read_total"], (4321 + GET.len()) as f64);
    assert_eq!(m["netloop_bytes_written_total"], 4321.0);
    assert_eq!(m["netloop_connections_accepted_total"], 2.0);
    assert_eq!(m["netloop_connections{state=\"open\"}"], 2.0);
    assert_eq!(m["netloop_connections_dropped_total"], 0.0);
    assert!(m["netloop_loop_iterations_total"] >= 1.0);
    assert!(m["netloop_loop_events_per_iteration_count"] >= 1.0);
    assert!(m.contains_key("netloop_timer_lateness_seconds{quantile=\"0.99\"}"));
    for phase in ["timers", "ready", "poll", "dispatch", "check", "close"] {
        assert!(m.contains_key(&format!(
            "netloop_loop_phase_seconds_total{{phase=\"{phase}\"}}"
        )));
    }
    let u = m["netloop_loop_utilization"];
    assert!((0.0..=1.0).contains(&u), "{u}");

    // HEAD: same headers, no body.
    let mut s = connect(maddr);
    s.write_all(b"HEAD /metrics HTTP/1.1\r\n\r\n").unwrap();
    let head = String::from_utf8(read_to_end(&mut s)).unwrap();
    assert!(
        head.starts_with("HTTP/1.1 200 OK\r\n") && head.ends_with("\r\n\r\n"),
        "{head}"
    );
    drop(srv);
}

/// The usual `process_*` figures and `netloop_build_info`, checked against
/// what `/proc` says of the server process.
#[test]
fn process_figures_and_build_info() {
    let (srv, maddr) = start(&[]);
    let held: Vec<TcpStream> = (0..5).map(|_| connect(srv.addr)).collect();
    wait_until("5 connections open", || {
        let (_, _, body) = http(maddr, GET);
        parse_prometheus(&body)["netloop_connections{state=\"open\"}"] >= 6.0
    });
    let (_, _, body) = http(maddr, GET);
    let m = parse_prometheus(&body);
    let rss = m["process_resident_memory_bytes"];
    let proc_rss = (srv.rss_kib() * 1024) as f64;
    assert!(
        rss > 1e6 && (rss - proc_rss).abs() < 8e6,
        "{rss} vs {proc_rss}"
    );
    // stdin, stdout, stderr, the listeners, epoll, 5 held + 1 scrape.
    let fds = m["process_open_fds"];
    assert!(fds >= 11.0, "{fds}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let start = m["process_start_time_seconds"];
    assert!(
        start <= now + 1.0 && start > now - 120.0,
        "{start} vs {now}"
    );
    assert!(m["process_cpu_seconds_total"] >= 0.0);
    let version = format!(
        "netloop_build_info{{version=\"{}\",",
        env!("CARGO_PKG_VERSION")
    );
    let info: Vec<_> = m.iter().filter(|(k, _)| k.starts_with(&version)).collect();
    assert_eq!(info.len(), 1, "{body}");
    assert_eq!(*info[0].1, 1.0);
    drop(held);
}

#[test]
fn bad_requests_get_errors_and_the_app_is_undisturbed() {
    let (srv, maddr) = start(&[]);
    let mut app = connect(srv.addr);
    let mut round = 0u8;
    let mut echo_ok = |app: &mut TcpStream| {
        round += 1;
        let msg = [round; 3000];
        app.write_all(&msg).unwrap();
        assert_eq!(read_exact(app, msg.len()), msg);
    };
    echo_ok(&mut app);

    let cases: &[(&[u8], u16)] = &[
        (
            b"POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
            405,
        ),
        (b"GET /other HTTP/1.1\r\n\r\n", 404),
        (b"GET /metrics\r\n\r\n", 400),
        (b"\x00\x01\x02 garbage \xff\r\n\r\n", 400),
    ];
    for (req, want) in cases {
        let (code, headers, _) = http(maddr, req);
        assert_eq!(code, *want, "{:?}", String::from_utf8_lossy(req));
        if *want == 405 {
            assert_eq!(headers["allow"], "GET, HEAD");
        }
        echo_ok(&mut app);
    }
    // Oversized: 64 KiB of header without an end.
    let mut big = b"GET /metrics HTTP/1.1\r\nX-Fill: ".to_vec();
    big.resize(64 * 1024, b'a');
    let mut s = connect(maddr);
    // The server answers at 8 KiB and closes: the rest of our write may fail.
    let _ = s.write_all(&big);
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let resp = String::from_utf8_lossy(&resp);
    assert!(resp.starts_with("HTTP/1.1 431 "), "{resp}");
    echo_ok(&mut app);
    // A scraper that connects and says nothing, and one that resets
    // mid-request: neither blocks the app nor the next scrape.
    let _silent = connect(maddr);
    {
        let r = connect(maddr);
        let _ = (&r).write_all(b"GET /met");
        socket2::SockRef::from(&r)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
    }
    echo_ok(&mut app);
    let (code, _, body) = http(maddr, GET);
    assert_eq!(code, 200);
    let m = parse_prometheus(&body);
    assert_eq!(m["netloop_connections_dropped_total"], 0.0);
    echo_ok(&mut app);
    drop(srv);
}

#[test]
fn trace_loop_lines_are_rate_limited_and_shutdown_logs_a_summary() {
    let (mut srv, _maddr) = start(&["--trace-loop"]);
    let mut c = connect(srv.addr);
    // Many iterations in a short time: at most 10 lines a second get out.
    let t0 = Instant::now();
    for i in 0..300u32 {
        c.write_all(&i.to_le_bytes()).unwrap();
        read_exact(&mut c, 4);
    }
    let first = srv.wait_log("iter=");
    for p in [
        "timers=",
        "ready=",
        "poll=",
        "dispatch=",
        "check=",
        "close=",
        "ready_len=",
    ] {
        assert!(first.contains(p), "{first}");
    }
    // Ping every 50 ms until a line reports suppressed ones (next window).
    let deadline = Instant::now() + TIMEOUT;
    let mut lines = 1;
    let suppressed = loop {
        assert!(Instant::now() < deadline, "no suppressed count reported");
        c.write_all(b"ping").unwrap();
        read_exact(&mut c, 4);
        let mut found = None;
        while let Ok(l) = srv.log.recv_timeout(Duration::from_millis(50)) {
            if l.contains("iter=") {
                lines += 1;
                if l.contains("lines suppressed") {
                    found = Some(l);
                    break;
                }
            }
        }
        if let Some(l) = found {
            break l;
        }
    };
    let secs = t0.elapsed().as_secs_f64();
    assert!(
        (lines as f64) <= 10.0 * (secs.ceil() + 1.0),
        "{lines} trace lines in {secs:.1}s"
    );
    assert!(suppressed.contains("(+"), "{suppressed}");

    drop(c);
    srv.signal("TERM");
    srv.wait_log("loop summary after");
    srv.wait_log("iterations");
    srv.wait_log("bytes read");
    assert_eq!(srv.wait_exit(), Some(0));
}

#[test]
fn rust_log_trace_shows_every_event() {
    let srv = Server::start_shell(
        "RUST_LOG=info,netloop::reactor=trace",
        &["serve", "echo", "--port", "0"],
    );
    let mut c = connect(srv.addr);
    c.write_all(b"x").unwrap();
    read_exact(&mut c, 1);
    srv.wait_log("event token=");
    srv.wait_log("iteration ");
}

#[test]
fn a_scrape_gets_through_while_slow_heads_hold_every_connection() {
    use netloop::metrics::http::MAX_PENDING_HEADS;
    let (_srv, addr) = start(&[]);
    // Three times as many slow peers as the endpoint lets read a head at once
    // (16, before this fix its whole connection limit), each with half a
    // request head and no end in sight.
    let slow: Vec<TcpStream> = (0..3 * MAX_PENDING_HEADS)
        .map(|_| {
            let mut s = connect(addr);
            // A shed peer may see a reset here; the attack goes on.
            let _ = s.write_all(b"GET /metr");
            s
        })
        .collect();
    // A scrape is answered now, not when the slow peers time out: the
    // oldest slow head was shed to make room.
    let t = Instant::now();
    let (code, _, body) = http(addr, b"GET /metrics HTTP/1.1\r\n\r\n");
    assert_eq!(code, 200);
    assert!(body.contains("netloop_"), "{body}");
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    drop(slow);
}

#[test]
fn a_trickled_request_head_is_closed_at_its_deadline() {
    use netloop::metrics::http::{HEAD_DEADLINE, IDLE_TIMEOUT};
    let (_srv, addr) = start(&[]);
    let mut s = connect(addr);
    let mut r = s.try_clone().unwrap();
    let t = Instant::now();
    // One byte every 500 ms: the idle timeout (10 s) never fires; the head
    // deadline does. The pace is the attack itself, not a synchronisation.
    let trickler = std::thread::spawn(move || {
        for b in b"GET /metrics HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaa".iter() {
            if s.write_all(&[*b]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    });
    let raw = read_to_end(&mut r);
    let took = t.elapsed();
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 408 "), "{text}");
    assert!(
        took >= HEAD_DEADLINE && took < IDLE_TIMEOUT,
        "closed after {took:?}"
    );
    let _ = trickler.join();
}
