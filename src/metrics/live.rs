//! The live page: one self-contained HTML document served at `GET /` by
//! the `--metrics` endpoint ([`super::http`]).
//!
//! The page is compiled into the binary (`include_str!` of `live.html`):
//! no build step, no CDN, no request to anything but its own origin (its
//! `Content-Security-Policy` forbids any other). Its script polls `GET
//! /stats` once a second and draws, from the difference of two snapshots,
//! the time per phase per second (a stacked chart of the last minute),
//! utilisation, the loop-delay histograms, connections by lifecycle state,
//! bytes queued and paused connections, timers pending, busy time by service
//! and the slow-callback table. Every figure is an aggregate of the loop, so
//! the page costs the same with ten connections or ten thousand.
//!
//! For tests and scripts the page also writes what it drew into the DOM:
//! `<body data-polls>` counts the snapshots received and each chart carries
//! `data-points` (samples drawn) and `data-last` (its latest value).

use super::LoopMetrics;

/// The page.
pub const PAGE: &str = include_str!("live.html");

/// `Content-Type` of the page.
pub const CONTENT_TYPE: &str = "text/html; charset=utf-8";

/// Extra response headers of the page: never cached, and a policy that
/// lets it talk to its own origin only (inline script and style, `fetch`
/// to `/stats`; nothing else, no external request possible).
pub const EXTRA_HEADERS: &str = "Cache-Control: no-store\r\nContent-Security-Policy: default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:\r\n";

/// The JSON body of `GET /stats`: the loop snapshot.
pub fn stats_json(m: &LoopMetrics) -> String {
    // Serialising plain structs of numbers and strings cannot fail; keep a
    // valid document if it ever did.
    serde_json::to_string(m).unwrap_or_else(|_| "{}".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_is_self_contained() {
        assert!(PAGE.starts_with("<!doctype html>"));
        assert!(PAGE.contains("fetch('stats'"));
        // No external resource of any kind.
        for bad in [
            "http://",
            "https://",
            "src=\"//",
            "@import",
            "<link rel=\"stylesheet\"",
        ] {
            assert!(!PAGE.contains(bad), "the page refers to {bad}");
        }
    }

    #[test]
    fn stats_json_is_the_snapshot() {
        let v: serde_json::Value =
            serde_json::from_str(&stats_json(&LoopMetrics::default())).unwrap();
        assert!(v["loop_delay"]["iteration_busy_ms"]["count"].is_u64());
        assert!(v["phase_seconds"]["dispatch"].is_f64());
        assert!(v["slow_callbacks"]["slowest"].is_array());
    }
}
