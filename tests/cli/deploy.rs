//! Packaging: `deploy/netloop-chat.service` parses (`systemd-analyze
//! verify`, where installed) and its stop signal gives our graceful stop
//! within its stop timeout; the `Dockerfile` is multi-stage, runs as a
//! non-root user, builds with the toolchain of `rust-version`, and builds
//! where a Docker daemon answers. What cannot run here says why it skipped.

use crate::util;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use util::Server;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn unit_text() -> String {
    std::fs::read_to_string(repo().join("deploy/netloop-chat.service")).unwrap()
}

/// The values of `key=` in the unit, in order (comments skipped).
fn unit_values(text: &str, key: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .map(str::to_string)
        .collect()
}

/// The unit's command line, with our freshly built binary in place of the
/// installed path.
fn exec_start(text: &str) -> Vec<String> {
    let starts = unit_values(text, "ExecStart");
    assert_eq!(starts.len(), 1, "one active ExecStart: {starts:?}");
    let mut argv: Vec<String> = starts[0].split_whitespace().map(str::to_string).collect();
    assert_eq!(
        argv[0], "/usr/local/bin/netloop",
        "the README's install path"
    );
    argv[0] = env!("CARGO_BIN_EXE_netloop").to_string();
    argv
}

#[test]
fn systemd_unit_parses() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        println!("skipped: systemd-analyze is not installed (Debian package systemd)");
        return;
    }
    let text = unit_text();
    let bin = env!("CARGO_BIN_EXE_netloop");
    let dir = std::env::temp_dir().join(format!("netloop-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let unit = dir.join("netloop-chat.service");
    std::fs::write(&unit, text.replace("/usr/local/bin/netloop", bin)).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&unit)
        .current_dir(&dir)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    // verify exits 0 after an unknown key or a bad value ("ignoring"): any
    // line about our unit is a defect.
    let ours: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("netloop-chat.service"))
        .collect();
    assert!(ours.is_empty(), "{ours:?}");
}

/// The unit's KillSignal starts our graceful stop: the server ends its
/// connections and exits 0 well within TimeoutStopSec, which is longer than
/// the --grace it passes.
#[test]
fn systemd_unit_stop_signal_is_graceful() {
    let text = unit_text();
    assert_eq!(unit_values(&text, "KillSignal"), ["SIGTERM"]);
    let timeout = unit_values(&text, "TimeoutStopSec");
    let timeout = netloop::cli::units::parse_duration(&timeout[0]).unwrap();
    let mut argv = exec_start(&text);
    let grace_at = argv.iter().position(|a| a == "--grace").expect("--grace");
    let grace = netloop::cli::units::parse_duration(&argv[grace_at + 1]).unwrap();
    assert!(
        timeout > grace,
        "TimeoutStopSec {timeout:?} <= --grace {grace:?}"
    );
    let port_at = argv.iter().position(|a| a == "--port").expect("--port");
    argv[port_at + 1] = "0".into();
    let args: Vec<&str> = argv[1..].iter().map(String::as_str).collect();
    let mut srv = Server::start(&args);
    let mut c = util::connect(srv.addr);
    let started = Instant::now();
    srv.signal("TERM");
    // The client is told and closed: EOF after the server's goodbye.
    let got = util::read_to_end(&mut c);
    assert!(!got.is_empty(), "the client got the server's last words");
    drop(c);
    assert_eq!(srv.wait_exit(), Some(0));
    assert!(started.elapsed() < timeout, "{:?}", started.elapsed());
    srv.wait_log("shut down");
}

/// What the Dockerfile says, checked without Docker: two stages, the build
/// one on the toolchain of `rust-version`, the final one as a non-root
/// user, the graceful stop signal, and every COPY source present.
#[test]
fn dockerfile_is_multi_stage_non_root_and_on_our_toolchain() {
    let text = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let froms: Vec<&str> = lines
        .iter()
        .filter(|l| l.starts_with("FROM "))
        .copied()
        .collect();
    assert_eq!(froms.len(), 2, "{froms:?}");
    let manifest = std::fs::read_to_string(repo().join("Cargo.toml")).unwrap();
    let rust_version = manifest
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = "))
        .unwrap()
        .trim_matches('"');
    assert!(
        froms[0].starts_with(&format!("FROM rust:{rust_version}-")),
        "{} vs rust-version {rust_version}",
        froms[0]
    );
    let final_stage = lines
        .iter()
        .skip_while(|l| **l != froms[1])
        .copied()
        .collect::<Vec<_>>();
    let user = final_stage
        .iter()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("a USER in the final stage");
    let uid = user.split(':').next().unwrap();
    assert!(uid != "0" && uid != "root", "{user}");
    assert!(final_stage.contains(&"STOPSIGNAL SIGTERM"));
    assert!(final_stage
        .iter()
        .any(|l| l.starts_with("COPY --from=build")));
    for l in lines
        .iter()
        .filter(|l| l.starts_with("COPY ") && !l.contains("--from"))
    {
        let words: Vec<&str> = l.split_whitespace().collect();
        for src in &words[1..words.len() - 1] {
            assert!(Path::new(&repo().join(src)).exists(), "{l}: {src} missing");
        }
    }
}

/// `docker build` where a daemon answers (bounded: the release build inside
/// takes minutes); otherwise skipped with the reason.
#[test]
fn dockerfile_builds() {
    let info = Command::new("docker")
        .arg("info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    match info {
        Err(e) => {
            println!("skipped: cannot run docker: {e}");
            return;
        }
        Ok(s) if !s.success() => {
            println!("skipped: docker is installed but no daemon answers (docker info failed)");
            return;
        }
        Ok(_) => {}
    }
    let tag = format!("netloop-test-{}", std::process::id());
    let mut child = Command::new("docker")
        .args(["build", "--quiet", "-t", &tag, "."])
        .current_dir(repo())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15 * 60);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("docker build took more than 15 minutes");
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(status.success(), "docker build failed");
    let out = Command::new("docker")
        .args(["run", "--rm", &tag, "--version"])
        .output()
        .unwrap();
    let _ = Command::new("docker").args(["rmi", "-f", &tag]).output();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
}
