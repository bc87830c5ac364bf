//! `netloop bench soak` as a black box: a short run must lose nothing,
//! corrupt nothing, inject every kind of fault, try bad inputs, and leave
//! the servers alive and back at their baseline.

use crate::util;
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use util::*;

/// Run `netloop bench soak ARGS --json`, bounded; the exit code and report.
fn soak(args: &[&str]) -> (Option<i32>, Value) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_netloop"))
        .args(["bench", "soak", "--json"])
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn netloop bench soak");
    // duration + drain + settle, with room for a loaded debug machine.
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("soak did not finish in time");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut out = String::new();
    use std::io::Read;
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut out)
        .expect("read report");
    let v: Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"));
    (status.code(), v)
}

fn n(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(u64::MAX)
}

fn sum(v: &Value, key: &str) -> u64 {
    v.get(key)
        .and_then(Value::as_object)
        .map_or(0, |m| m.values().filter_map(Value::as_u64).sum())
}

fn assert_clean(code: Option<i32>, rep: &Value) {
    let show = serde_json::to_string_pretty(rep).unwrap_or_default();
    assert_eq!(code, Some(0), "{show}");
    assert_eq!(n(rep, "bytes_lost"), 0, "{show}");
    assert_eq!(n(rep, "messages_lost"), 0, "{show}");
    assert_eq!(n(rep, "mismatches"), 0, "{show}");
    assert_eq!(n(rep, "bad_input_failures"), 0, "{show}");
    assert_eq!(n(rep, "stuck"), 0, "{show}");
    assert!(n(rep, "messages") > 0, "{show}");
    assert!(n(rep, "chat_deliveries_owed") > 0, "{show}");
    assert!(sum(rep, "bad_inputs") > 0, "{show}");
    let faults = rep.get("faults").cloned().unwrap_or_default();
    assert!(n(&faults, "half_close") > 0, "{show}");
    assert!(n(&faults, "reset") > 0, "{show}");
    let servers = rep.get("servers").and_then(Value::as_array).cloned();
    let servers = servers.unwrap_or_default();
    assert_eq!(servers.len(), 3, "{show}");
    for s in &servers {
        assert_eq!(s.get("alive"), Some(&Value::Bool(true)), "{show}");
        assert_eq!(
            s.get("returned_to_baseline"),
            Some(&Value::Bool(true)),
            "{show}"
        );
    }
    // The once-a-second samples saw the load.
    assert!(
        servers
            .iter()
            .any(|s| n(s, "fds_peak") > n(s, "fds_baseline")),
        "{show}"
    );
    assert_eq!(
        rep.get("returned_to_baseline"),
        Some(&Value::Bool(true)),
        "{show}"
    );
}

#[test]
fn soak_spawning_its_own_servers_loses_nothing() {
    let (code, rep) = soak(&["--duration", "3s", "--connections", "16", "--seed", "7"]);
    assert_eq!(n(&rep, "seed"), 7);
    assert_clean(code, &rep);
}

#[test]
fn soak_against_given_servers_loses_nothing() {
    let echo = Server::start(&["serve", "echo", "--port", "0"]);
    let chat = Server::start(&["serve", "chat", "--port", "0"]);
    let framed = Server::start(&["serve", "framed", "--port", "0"]);
    let (e, c, f) = (
        echo.addr.to_string(),
        chat.addr.to_string(),
        framed.addr.to_string(),
    );
    let (ep, cp, fp) = (
        echo.pid().to_string(),
        chat.pid().to_string(),
        framed.pid().to_string(),
    );
    let (code, rep) = soak(&[
        "--duration",
        "2s",
        "--connections",
        "12",
        "--echo",
        &e,
        "--chat",
        &c,
        "--framed",
        &f,
        "--echo-pid",
        &ep,
        "--chat-pid",
        &cp,
        "--framed-pid",
        &fp,
    ]);
    assert_clean(code, &rep);
    let servers = rep.get("servers").and_then(Value::as_array).cloned();
    let addrs: Vec<String> = servers
        .unwrap_or_default()
        .iter()
        .filter_map(|s| s.get("addr").and_then(Value::as_str).map(str::to_string))
        .collect();
    assert_eq!(addrs, vec![e, c, f]);
}
