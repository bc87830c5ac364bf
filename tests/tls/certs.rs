//! Certificate problems on the client side: an unknown CA, a certificate
//! for another host, an expired certificate: each a clear one-line error
//! and a non-zero exit. Also `--insecure` (loud), and a server that
//! requires client certificates (`--tls-client-ca`).

use crate::common::*;
use crate::util::Proc;
use std::time::{Duration, SystemTime};

const DAY: Duration = Duration::from_secs(86_400);

/// `netloop connect` to `addr` with `extra`; expects failure with `want`
/// in one stderr line.
fn connect_fails(addr: &str, extra: &[&str], want: &str) {
    let mut args = vec!["connect", addr, "--no-reconnect"];
    args.extend_from_slice(extra);
    let mut c = Proc::netloop(&args);
    let code = c.wait_exit();
    assert_ne!(code, Some(0), "must fail; out {}", c.out_text());
    let all = format!("{}\n{}", c.out_text(), c.err_text());
    let line = all
        .lines()
        .find(|l| l.contains(want))
        .unwrap_or_else(|| panic!("no line with {want:?} in {all}"));
    assert!(line.contains("TLS"), "{line}");
    assert!(!all.contains("reconnecting in"), "no retry: {all}");
}

#[test]
fn unknown_ca() {
    let certs = Certs::new("unknown-ca");
    let other = Certs::new("other-ca");
    let srv = serve_tls(&certs, "echo", &[]);
    connect_fails(
        &localhost(srv.addr),
        &["--ca", other.ca()],
        "invalid peer certificate: UnknownIssuer",
    );
    // The public roots do not know our throw-away CA either.
    connect_fails(&localhost(srv.addr), &["--tls"], "UnknownIssuer");
}

#[test]
fn wrong_host_name() {
    let now = SystemTime::now();
    let certs = Certs::generated("wrong-host", &["example.test"], now - DAY, now + DAY);
    let srv = serve_tls(&certs, "echo", &[]);
    connect_fails(
        &localhost(srv.addr),
        &["--ca", certs.ca()],
        "certificate not valid for name \"localhost\"",
    );
}

#[test]
fn expired_certificate() {
    let now = SystemTime::now();
    let certs = Certs::generated("expired", &["localhost"], now - 30 * DAY, now - DAY);
    let srv = serve_tls(&certs, "echo", &[]);
    connect_fails(
        &localhost(srv.addr),
        &["--ca", certs.ca()],
        "certificate expired",
    );
}

#[test]
fn other_clients_report_certificate_errors_too() {
    let certs = Certs::new("clients-ca");
    let other = Certs::new("clients-other");
    let srv = serve_tls(&certs, "framed", &[]);
    let addr = localhost(srv.addr);
    for args in [
        vec!["framed", &addr, "--ping-interval", "0", "--ca", other.ca()],
        vec!["heartbeat", &addr, "--duration", "5s", "--ca", other.ca()],
        vec!["halfclose", &addr, "normal", "--ca", other.ca()],
    ] {
        let mut c = Proc::netloop(&args);
        let code = c.wait_exit();
        assert_ne!(code, Some(0), "{args:?}: {}", c.out_text());
        let all = format!("{}\n{}", c.out_text(), c.err_text());
        assert!(all.contains("UnknownIssuer"), "{args:?}: {all}");
    }
    let f = tmpdir("clients-upload").join("f.txt");
    std::fs::write(&f, b"x").unwrap();
    let mut c = Proc::netloop(&["upload", &addr, f.to_str().unwrap(), "--ca", other.ca()]);
    assert_ne!(c.wait_exit(), Some(0));
    assert!(c.err_text().contains("UnknownIssuer"), "{}", c.err_text());
}

#[test]
fn insecure_connects_and_says_so_loudly() {
    let certs = Certs::new("insecure");
    let srv = serve_tls(&certs, "echo", &[]);
    let mut c = Proc::netloop(&[
        "connect",
        &localhost(srv.addr),
        "--insecure",
        "--no-reconnect",
    ]);
    c.wait_err("WARNING: --insecure");
    c.wait_err("connected");
    c.send("anyway\n");
    c.wait_out("anyway");
    assert_eq!(c.wait_exit(), Some(0));
}

#[test]
fn client_certificate_required() {
    let certs = Certs::new("mtls");
    let srv = serve_tls(&certs, "echo", &["--tls-client-ca", certs.ca()]);
    let addr = localhost(srv.addr);
    // Without a certificate: refused. In TLS 1.3 the client learns it
    // from the server's alert after its own Finished.
    let mut c = Proc::netloop(&["connect", &addr, "--ca", certs.ca(), "--no-reconnect"]);
    c.send("hello\n");
    assert_ne!(c.wait_exit(), Some(0), "{}", c.err_text());
    assert!(
        c.err_text()
            .contains("error: TLS: received fatal alert: CertificateRequired"),
        "{}",
        c.err_text()
    );
    // With the certificate the CA signed (netloop cert marks it for
    // client use too): served.
    let mut c = Proc::netloop(&[
        "connect",
        &addr,
        "--ca",
        certs.ca(),
        "--tls-cert",
        certs.cert(),
        "--tls-key",
        certs.key(),
        "--no-reconnect",
    ]);
    c.wait_err("connected");
    c.send("mutual\n");
    c.wait_out("mutual");
    assert_eq!(c.wait_exit(), Some(0), "{}", c.err_text());
}

#[test]
fn cert_refuses_to_overwrite_and_bad_files_are_one_line() {
    let certs = Certs::new("cert-twice");
    let mut again = Proc::netloop(&["cert", "--out", certs.dir.to_str().unwrap()]);
    assert_ne!(again.wait_exit(), Some(0));
    assert!(again.err_text().contains("exists"), "{}", again.err_text());
    let bad = certs.dir.join("bad.pem");
    write_file(&bad, "not a pem file\n");
    let mut s = Proc::netloop(&[
        "serve",
        "echo",
        "--port",
        "0",
        "--tls-cert",
        bad.to_str().unwrap(),
        "--tls-key",
        certs.key(),
    ]);
    assert_ne!(s.wait_exit(), Some(0));
    let err = s.err_text();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("bad.pem"), "{err}");
}
