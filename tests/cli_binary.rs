//! Black-box checks of the binary's command line.

use std::process::Command;

fn netloop(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_netloop"))
        .args(args)
        .output()
        .expect("run netloop")
}

#[test]
fn help_everywhere() {
    for args in [
        &["--help"][..],
        &["serve", "--help"],
        &["serve", "echo", "--help"],
    ] {
        let out = netloop(args);
        assert!(out.status.success(), "{args:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Usage"), "{args:?}: {text}");
    }
    let text = String::from_utf8_lossy(&netloop(&["serve", "echo", "--help"]).stdout).to_string();
    for flag in [
        "--host",
        "--port",
        "--max-connections",
        "--idle-timeout",
        "--high-water-mark",
        "--max-write-buffer",
        "--grace",
    ] {
        assert!(text.contains(flag), "missing {flag}");
    }
}

#[test]
fn bad_units_are_refused_with_a_reason() {
    let out = netloop(&["serve", "echo", "--idle-timeout", "10x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown unit"));
    let out = netloop(&["serve", "echo", "--max-write-buffer", "lots"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn busy_port_is_a_clean_error() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port().to_string();
    let out = netloop(&["serve", "echo", "--port", &port]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("EADDRINUSE"), "{err}");
}
