//! The live page at `/` of the `--metrics` endpoint: the HTML and the JSON
//! over HTTP, then the page in headless Chromium against a loaded server
//! (skipped, with the reason printed, where Chromium is missing).

use crate::http::{http, start};
use crate::loop_delay::stats;
use crate::util;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use util::*;

#[test]
fn the_page_and_its_json_over_http() {
    let (srv, maddr) = start(&[]);
    let (code, headers, body) = http(maddr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(code, 200);
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    let csp = &headers["content-security-policy"];
    assert!(csp.contains("default-src 'none'") && csp.contains("connect-src 'self'"));
    assert!(body.starts_with("<!doctype html>"));
    for id in [
        "id=\"phases\"",
        "id=\"util-chart\"",
        "id=\"busy-hist\"",
        "id=\"tdelay-hist\"",
        "id=\"states\"",
        "id=\"queued\"",
        "id=\"conn-paused\"",
        "id=\"timers-pending\"",
        "id=\"services\"",
        "id=\"slow\"",
        "fetch('stats'",
    ] {
        assert!(body.contains(id), "the page has no {id}");
    }
    assert!(!body.contains("https://") && !body.contains("http://"));
    let mut h = connect(maddr);
    h.write_all(b"HEAD / HTTP/1.1\r\n\r\n").unwrap();
    let head = String::from_utf8(read_to_end(&mut h)).unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n") && head.ends_with("\r\n\r\n"));

    // Some traffic, then the JSON carries every field the page reads.
    let mut c = connect(srv.addr);
    c.write_all(b"hello").unwrap();
    assert_eq!(read_exact(&mut c, 5), b"hello");
    let s = stats(maddr);
    for path in [
        "/uptime_seconds",
        "/utilization",
        "/busy_seconds",
        "/idle_seconds",
        "/iterations",
        "/events",
        "/phase_seconds/dispatch",
        "/connections/live",
        "/connections/paused",
        "/connections/by_state/open",
        "/bytes/queued",
        "/bytes/queued_peak",
        "/timers/pending",
        "/ready_list_len",
        "/loop_delay/iteration_busy_ms/p99",
        "/loop_delay/timer_delay_ms/max",
        "/loop_delay/iteration_busy_buckets",
        "/loop_delay/timer_delay_buckets",
        "/services",
        "/slow_callbacks/threshold_ms",
        "/slow_callbacks/total",
        "/slow_callbacks/by_event/data",
        "/slow_callbacks/slowest",
    ] {
        assert!(s.pointer(path).is_some(), "/stats has no {path}: {s}");
    }
    // The echo connection and this scrape.
    assert!(s["connections"]["by_state"]["open"].as_u64().unwrap() >= 2);
    assert!(s["services"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["name"] == "echo"));

    // Aggregates only: 500 more connections do not make the JSON the page
    // reads any longer (beyond the digits of its counters).
    let before = http(maddr, b"GET /stats HTTP/1.1\r\n\r\n").2.len();
    let many: Vec<_> = (0..500).map(|_| connect(srv.addr)).collect();
    wait_until("500 connections open", || {
        stats(maddr)["connections"]["live"].as_u64().unwrap() >= 501
    });
    let after = http(maddr, b"GET /stats HTTP/1.1\r\n\r\n").2.len();
    assert!(
        after < before + 512,
        "/stats grew from {before} to {after} bytes"
    );
    drop(many);
}

/// The Chromium binary, if installed (Debian's package is `chromium`).
fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        for name in ["chromium", "chromium-browser", "google-chrome"] {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// Run headless Chromium with `args` on `url`; its standard output, or
/// `None` if it could not run (printed). Bounded: killed after 90 s.
fn headless(bin: &Path, args: &[String], url: &str) -> Option<String> {
    let profile = tempdir("chromium-profile");
    let mut child = Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| eprintln!("skipped: cannot start {}: {e}", bin.display()))
        .ok()?;
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within 90 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = reader.join().unwrap();
    let stderr = err_reader.join().unwrap();
    let _ = std::fs::remove_dir_all(&profile);
    assert!(status.success(), "chromium failed: {status}\n{stderr}");
    Some(stdout)
}

fn tempdir(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "{name}-{}-{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos()
    ));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// The value of attribute `attr` on the element with `id` in `dom`.
fn attr(dom: &str, id: &str, attr: &str) -> String {
    let at = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in the DOM"));
    let tag_start = dom[..at].rfind('<').unwrap();
    let tag_end = at + dom[at..].find('>').unwrap();
    let tag = &dom[tag_start..tag_end];
    let key = format!("{attr}=\"");
    let v = tag
        .find(&key)
        .unwrap_or_else(|| panic!("#{id} has no {attr}: {tag}"));
    let rest = &tag[v + key.len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

/// The text of the element with `id` (no nested tags).
fn text_of(dom: &str, id: &str) -> String {
    let at = dom.find(&format!("id=\"{id}\"")).unwrap();
    let start = at + dom[at..].find('>').unwrap() + 1;
    let end = start + dom[start..].find('<').unwrap();
    dom[start..end].to_string()
}

/// Keep `conns` connections doing round trips until `stop`.
fn load(addr: SocketAddr, conns: usize, stop: Arc<AtomicBool>) -> Vec<std::thread::JoinHandle<()>> {
    (0..conns)
        .map(|i| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut s = connect(addr);
                let msg = [i as u8; 64];
                while !stop.load(Ordering::Relaxed) {
                    s.write_all(&msg).expect("write");
                    assert_eq!(read_exact(&mut s, 64), msg);
                }
            })
        })
        .collect()
}

#[test]
fn the_page_draws_live_figures_in_headless_chromium() {
    let Some(bin) = chromium() else {
        eprintln!(
            "skipped: chromium is not installed (Debian package chromium; .ci/run installs it)"
        );
        return;
    };
    let (srv, maddr) = start(&["--idle-timeout", "200ms"]);
    let stop = Arc::new(AtomicBool::new(false));
    let threads = load(srv.addr, 4, stop.clone());
    // The page polls once a second; 6 s of virtual time is 6 or 7 polls.
    let url = format!("http://{maddr}/");
    let budget = "--virtual-time-budget=6000".to_string();
    let Some(dom) = headless(&bin, &["--dump-dom".into(), budget.clone()], &url) else {
        stop.store(true, Ordering::Relaxed);
        return;
    };
    let polls: u32 = attr(&dom, "netloop", "data-polls")
        .parse()
        .expect("polls is a number");
    assert!(polls >= 3, "the page polled {polls} times");
    let points: u32 = attr(&dom, "phases", "data-points").parse().unwrap();
    assert!(points >= 2, "phase chart drew {points} points");
    let last: f64 = attr(&dom, "phases", "data-last").parse().unwrap();
    assert!(last > 0.0, "the phase chart's last point is {last} ms/s");
    let upoints: u32 = attr(&dom, "util-chart", "data-points").parse().unwrap();
    assert!(upoints >= 2);
    let hist: u32 = attr(&dom, "busy-hist", "data-points").parse().unwrap();
    assert!(hist >= 1, "the busy-time histogram drew no bar");
    let live: u32 = text_of(&dom, "conn-live").parse().expect("live count");
    assert!(live >= 4, "{live} connections shown");
    assert!(text_of(&dom, "util").ends_with('%'));
    assert!(
        dom.contains("<td>echo</td>"),
        "no echo row in the services table"
    );
    assert!(dom.contains("<td>open</td>"), "no state table");

    // The screenshot, for people (target/tmp/live-page.png).
    let png = Path::new(env!("CARGO_TARGET_TMPDIR")).join("live-page.png");
    let _ = std::fs::remove_file(&png);
    headless(
        &bin,
        &[
            format!("--screenshot={}", png.display()),
            "--window-size=1280,1600".into(),
            "--hide-scrollbars".into(),
            budget,
        ],
        &url,
    );
    let bytes = std::fs::read(&png).expect("screenshot written");
    assert!(bytes.starts_with(b"\x89PNG"), "not a PNG");
    assert!(bytes.len() > 10_000, "screenshot of {} bytes", bytes.len());
    eprintln!("screenshot of the live page: {}", png.display());
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().expect("load thread");
    }
}
