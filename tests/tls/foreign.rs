//! Our servers with TLS clients nobody here wrote (`openssl s_client`,
//! Python's `ssl`), and our clients against `openssl s_server`.

use crate::common::*;
use crate::util::{Proc, TIMEOUT};
use std::process::Command;

const PEER: &str = include_str!("tls_peer.py");

/// Run the Python peer in `mode` against `port`; its stdout line.
fn python(certs: &Certs, mode: &str, port: u16, arg: Option<&str>) -> String {
    let script = certs.dir.join("tls_peer.py");
    std::fs::write(&script, PEER).unwrap();
    let mut cmd = Command::new("timeout");
    cmd.arg(TIMEOUT.as_secs().to_string())
        .arg("python3")
        .arg(&script)
        .arg(mode)
        .arg(port.to_string())
        .arg(certs.ca());
    if let Some(a) = arg {
        cmd.arg(a);
    }
    let out = cmd.output().expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "python {mode}: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn python_echo_4_mib_byte_exact() {
    if !have("python3", "python_echo_4_mib_byte_exact") {
        return;
    }
    let certs = Certs::new("py-echo");
    let srv = serve_tls(&certs, "echo", &[]);
    let out = python(
        &certs,
        "echo",
        srv.addr.port(),
        Some(&(4 << 20).to_string()),
    );
    assert!(out.starts_with("OK echo 4194304 "), "{out}");
}

#[test]
fn python_framed() {
    if !have("python3", "python_framed") {
        return;
    }
    let certs = Certs::new("py-framed");
    let srv = serve_tls(&certs, "framed", &[]);
    let out = python(&certs, "framed", srv.addr.port(), None);
    assert_eq!(out.trim(), "OK framed from python");
}

#[test]
fn python_upload_sha256() {
    if !have("python3", "python_upload_sha256") {
        return;
    }
    let certs = Certs::new("py-upload");
    let store = tmpdir("py-upload-store");
    let srv = serve_tls(&certs, "upload", &["--upload-dir", store.to_str().unwrap()]);
    let out = python(
        &certs,
        "upload",
        srv.addr.port(),
        Some(&(2 << 20).to_string()),
    );
    assert!(out.starts_with("OK upload 2097152 "), "{out}");
    assert_eq!(
        std::fs::metadata(store.join("py.bin")).unwrap().len(),
        2 << 20
    );
    let _ = std::fs::remove_dir_all(&store);
}

/// Python sends a line and its close_notify; the half-close server still
/// answers, sends its line after the client's end, then its own
/// close_notify.
#[test]
fn python_half_close_via_close_notify() {
    if !have("python3", "python_half_close_via_close_notify") {
        return;
    }
    let certs = Certs::new("py-half");
    let srv = serve_tls(&certs, "halfclose", &[]);
    let out = python(&certs, "halfclose", srv.addr.port(), None);
    assert!(out.starts_with("OK halfclose "), "{out}");
    assert!(out.contains("Echo: hello"), "{out}");
    assert!(
        out.contains("Data the server sent after the client closed its write side"),
        "{out}"
    );
}

fn s_client(certs: &Certs, port: u16) -> Proc {
    let mut cmd = Command::new("openssl");
    cmd.args(["s_client", "-connect"])
        .arg(format!("127.0.0.1:{port}"))
        .args([
            "-servername",
            "localhost",
            "-verify_return_error",
            "-quiet",
            "-CAfile",
        ])
        .arg(certs.ca());
    Proc::spawn(cmd)
}

#[test]
fn openssl_s_client_echo() {
    if !have("openssl", "openssl_s_client_echo") {
        return;
    }
    let certs = Certs::new("ossl-echo");
    let srv = serve_tls(&certs, "echo", &[]);
    let mut c = s_client(&certs, srv.addr.port());
    c.send("hello from openssl\n");
    c.wait_out("hello from openssl");
}

#[test]
fn openssl_s_client_chat() {
    if !have("openssl", "openssl_s_client_chat") {
        return;
    }
    let certs = Certs::new("ossl-chat");
    let srv = serve_tls(&certs, "chat", &[]);
    let mut a = s_client(&certs, srv.addr.port());
    a.wait_out("Welcome");
    let mut b = s_client(&certs, srv.addr.port());
    b.wait_out("Welcome");
    a.send("/nick ossl\n");
    a.wait_out("ossl");
    a.send("via openssl\n");
    b.wait_out("via openssl");
}

fn s_server(certs: &Certs) -> (Proc, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cmd = Command::new("openssl");
    cmd.args(["s_server", "-accept"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["-naccept", "1", "-cert"])
        .arg(certs.cert())
        .arg("-key")
        .arg(certs.key());
    let mut p = Proc::spawn(cmd);
    // Printed once it listens.
    p.wait_out("ACCEPT");
    (p, port)
}

#[test]
fn our_connect_against_openssl_s_server() {
    if !have("openssl", "our_connect_against_openssl_s_server") {
        return;
    }
    let certs = Certs::new("ossl-server");
    let (mut server, port) = s_server(&certs);
    let mut c = Proc::netloop(&[
        "connect",
        &format!("localhost:{port}"),
        "--ca",
        certs.ca(),
        "--no-reconnect",
    ]);
    c.wait_err("connected");
    c.send("to openssl\n");
    server.wait_out("to openssl");
    server.send("from openssl\n");
    c.wait_out("from openssl");
}

#[test]
fn our_framed_client_against_openssl_s_server() {
    if !have("openssl", "our_framed_client_against_openssl_s_server") {
        return;
    }
    let certs = Certs::new("ossl-framed");
    let (mut server, port) = s_server(&certs);
    let mut c = Proc::netloop(&[
        "framed",
        &format!("localhost:{port}"),
        "--ping-interval",
        "0",
        "--ca",
        certs.ca(),
    ]);
    // A frame from s_server's standard input (4-byte length, then JSON;
    // the newline s_server appends only starts a frame never finished).
    let body = r#"{"type":"welcome","message":"hi from openssl","timestamp":1}"#;
    let frame = format!("\0\0\0{}{body}\n", char::from(body.len() as u8));
    server.send(&frame);
    c.wait_out("hi from openssl");
}
