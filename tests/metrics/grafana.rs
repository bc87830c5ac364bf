//! `docs/grafana/netloop.json`: valid JSON, and every metric its panels
//! query is one the endpoint serves (a renamed metric breaks this test, not
//! a user's dashboard).

use crate::http::{http, parse_prometheus, start};
use std::collections::BTreeSet;

#[test]
fn every_metric_the_dashboard_queries_exists() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/grafana/netloop.json");
    let dash: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("dashboard")).expect("JSON");
    let (_srv, maddr) = start(&[]);
    let (_, _, text) = http(maddr, b"GET /metrics HTTP/1.1\r\n\r\n");
    let served: BTreeSet<String> = parse_prometheus(&text)
        .keys()
        .map(|k| k.split('{').next().unwrap().to_string())
        .collect();
    let mut used = BTreeSet::new();
    let panels = dash["panels"].as_array().expect("panels");
    assert!(panels.len() >= 6);
    for p in panels {
        let targets = p["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{} has no query", p["title"]);
        for t in targets {
            let expr = t["expr"].as_str().expect("expr");
            let mut rest = expr;
            while let Some(i) = rest.find("netloop_") {
                let name: String = rest[i..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                rest = &rest[i + name.len()..];
                used.insert(name);
            }
        }
    }
    for family in [
        "netloop_loop_phase_seconds_total",
        "netloop_loop_iteration_busy_seconds",
        "netloop_loop_timer_delay_seconds",
        "netloop_connections",
        "netloop_write_queue_bytes",
        "netloop_slow_callbacks_total",
        "netloop_service_busy_seconds_total",
    ] {
        assert!(
            used.contains(family),
            "the dashboard does not chart {family}"
        );
    }
    for name in &used {
        assert!(
            served.contains(name),
            "{name} is not served; served: {served:?}"
        );
    }
}
