//! Access control (tokens, src/protocol/auth.rs) over loopback, with the binary: for each of the
//! five servers started with `--token FILE`, no token and a wrong token are
//! refused (a wrong one only after `AUTH_FAILURE_DELAY`), repeated failures
//! close the connection, the right token gets the normal service, and the
//! token never appears in the server's log (captured at debug level).

use crate::util;
use netloop::protocol::auth::{AUTH_FAILURE_DELAY, MAX_AUTH_FAILURES};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::mpsc::RecvTimeoutError;
use std::time::Instant;
use util::{Server, TIMEOUT};

const TOKEN: &str = "s3cr3t-Tok3n-9f2a";
const WRONG: &str = "wr0ng-Guess-77";

/// A temporary directory with the token file, removed on drop.
struct Setup {
    dir: PathBuf,
}

impl Setup {
    fn new(name: &str) -> Setup {
        // No spaces: `Server::start_shell` joins the arguments for `sh -c`.
        let dir = std::env::temp_dir().join(format!("netloop-auth-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("token"), format!("{TOKEN}\n")).unwrap();
        Setup { dir }
    }

    fn token_path(&self) -> String {
        self.dir.join("token").display().to_string()
    }

    /// `netloop serve APP --port 0 --token FILE EXTRA...` at debug level.
    fn start(&self, app: &str, extra: &[&str]) -> Server {
        let tp = self.token_path();
        let mut args = vec![
            "serve", app, "--port", "0", "--grace", "200ms", "--token", &tp,
        ];
        args.extend_from_slice(extra);
        Server::start_shell("RUST_LOG=debug", &args)
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Stop the server, collect every log line left, assert no secret is there.
fn assert_log_clean(mut s: Server) {
    s.signal("TERM");
    s.wait_exit();
    let mut lines = Vec::new();
    loop {
        match s.log.recv_timeout(TIMEOUT) {
            Ok(l) => lines.push(l),
            Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => panic!("log reader did not finish"),
        }
    }
    assert!(
        lines.iter().any(|l| l.contains("authentication failed")),
        "failures are logged: {lines:#?}"
    );
    for l in &lines {
        assert!(!l.contains(TOKEN), "token in the log: {l}");
        assert!(!l.contains(WRONG), "presented token in the log: {l}");
    }
}

fn connect(s: &Server) -> TcpStream {
    let c = TcpStream::connect(s.addr).unwrap();
    c.set_read_timeout(Some(TIMEOUT)).unwrap();
    c
}

/// The peer closes: EOF (or a reset) within the timeout.
fn assert_closed(r: &mut impl Read) {
    let mut buf = [0u8; 256];
    loop {
        match r.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(_) => continue, // a reply still in flight
        }
    }
}

// ----- line servers ---------------------------------------------------------

struct Lines {
    w: TcpStream,
    r: BufReader<TcpStream>,
}

impl Lines {
    fn new(s: &Server) -> Lines {
        let w = connect(s);
        let r = BufReader::new(w.try_clone().unwrap());
        let mut l = Lines { w, r };
        assert!(l.line().contains("send /auth TOKEN"));
        l
    }
    fn send(&mut self, text: &str) {
        self.w.write_all(format!("{text}\n").as_bytes()).unwrap();
    }
    fn line(&mut self) -> String {
        let mut s = String::new();
        self.r.read_line(&mut s).unwrap();
        assert!(!s.is_empty(), "connection closed");
        s
    }
    fn until(&mut self, needle: &str) -> String {
        loop {
            let l = self.line();
            if l.contains(needle) {
                return l;
            }
        }
    }
}

fn line_server(app: &str, after_auth: &str, expect: &str) {
    let setup = Setup::new(app);
    let s = setup.start(app, &[]);
    // No token: only /auth and /quit are accepted.
    let mut c = Lines::new(&s);
    c.send("/list");
    assert!(c.line().contains("authentication required"));
    c.send("hello");
    assert!(c.line().contains("authentication required"));
    // Wrong tokens: each answered after the delay; the last closes.
    for i in 1..=MAX_AUTH_FAILURES {
        let t = Instant::now();
        c.send(&format!("/auth {WRONG}"));
        let l = c.line();
        assert!(t.elapsed() >= AUTH_FAILURE_DELAY, "{:?}", t.elapsed());
        if i < MAX_AUTH_FAILURES {
            assert!(
                l.contains(&format!("wrong token ({i}/{MAX_AUTH_FAILURES})")),
                "{l}"
            );
        } else {
            assert!(l.contains("too many"), "{l}");
        }
    }
    assert_closed(&mut c.r);
    // /quit before authentication.
    let mut q = Lines::new(&s);
    q.send("/quit");
    assert!(q.line().contains("Goodbye"));
    assert_closed(&mut q.r);
    // The right token: the normal service (a request pipelined behind it too).
    let mut ok = Lines::new(&s);
    ok.w.write_all(format!("/auth {TOKEN}\n{after_auth}\n").as_bytes())
        .unwrap();
    assert_eq!(ok.line(), "authenticated\n");
    ok.until(expect);
    drop(ok);
    assert_log_clean(s);
}

#[test]
fn command_server_requires_the_token() {
    line_server("command", "/info", "connectionId");
}

#[test]
fn chat_server_requires_the_token() {
    line_server("chat", "/nick alice", "Nickname changed to: alice");
}

// ----- framed ---------------------------------------------------------------

fn send_frame(c: &mut TcpStream, v: &Value) {
    let body = serde_json::to_vec(v).unwrap();
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(&body);
    c.write_all(&out).unwrap();
}

fn read_frame(c: &mut TcpStream) -> Value {
    let mut len = [0u8; 4];
    c.read_exact(&mut len).unwrap();
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    c.read_exact(&mut body).unwrap();
    serde_json::from_slice(&body).unwrap()
}

#[test]
fn framed_server_requires_the_token() {
    let setup = Setup::new("framed");
    let s = setup.start("framed", &[]);
    let mut c = connect(&s);
    // A first frame that is not `auth`: refused, counted, delayed.
    let t = Instant::now();
    send_frame(&mut c, &json!({"type": "ping"}));
    let v = read_frame(&mut c);
    assert!(t.elapsed() >= AUTH_FAILURE_DELAY);
    assert_eq!(v["type"], "error");
    assert_eq!(v["message"], "authentication required");
    let t = Instant::now();
    send_frame(&mut c, &json!({"type": "auth", "token": WRONG}));
    let v = read_frame(&mut c);
    assert!(t.elapsed() >= AUTH_FAILURE_DELAY);
    assert_eq!(v["message"], "wrong token");
    send_frame(&mut c, &json!({"type": "auth", "token": WRONG}));
    let v = read_frame(&mut c);
    assert_eq!(v["type"], "error");
    assert!(v["message"].as_str().unwrap().contains("too many"));
    assert_closed(&mut c);
    // The right token, then the service.
    let mut c = connect(&s);
    send_frame(&mut c, &json!({"type": "auth", "token": TOKEN}));
    assert_eq!(read_frame(&mut c)["type"], "auth_ok");
    assert_eq!(read_frame(&mut c)["type"], "welcome");
    send_frame(&mut c, &json!({"type": "ping"}));
    assert_eq!(read_frame(&mut c)["type"], "pong");
    drop(c);
    assert_log_clean(s);
}

// ----- heartbeat ------------------------------------------------------------

#[test]
fn heartbeat_server_requires_the_token() {
    let setup = Setup::new("heartbeat");
    // A short ping interval: a ping leaking before authentication would show.
    let s = setup.start("heartbeat", &["--heartbeat-interval", "100ms"]);
    let w = connect(&s);
    let mut r = BufReader::new(w.try_clone().unwrap());
    let mut w2 = w;
    let mut send = |v: Value| {
        w2.write_all(format!("{v}\n").as_bytes()).unwrap();
    };
    let mut read = || -> Value {
        let mut l = String::new();
        r.read_line(&mut l).unwrap();
        serde_json::from_str(&l).unwrap()
    };
    let t = Instant::now();
    send(json!({"type": "pong", "timestamp": 1}));
    let v = read();
    assert!(t.elapsed() >= AUTH_FAILURE_DELAY);
    // Nothing but the reply arrived meanwhile: no welcome, no ping.
    assert_eq!(v["type"], "error", "{v}");
    assert_eq!(v["message"], "authentication required");
    send(json!({"type": "auth", "token": WRONG}));
    assert_eq!(read()["message"], "wrong token");
    send(json!({"type": "auth"}));
    assert!(read()["message"].as_str().unwrap().contains("too many"));
    assert_closed(&mut r);
    // The right token: auth_ok, welcome, then pings.
    let w = connect(&s);
    let mut r = BufReader::new(w.try_clone().unwrap());
    let mut w = w;
    w.write_all(format!("{}\n", json!({"type": "auth", "token": TOKEN})).as_bytes())
        .unwrap();
    let mut kinds = Vec::new();
    while kinds.len() < 3 {
        let mut l = String::new();
        r.read_line(&mut l).unwrap();
        let v: Value = serde_json::from_str(&l).unwrap();
        kinds.push(v["type"].as_str().unwrap().to_owned());
    }
    assert_eq!(kinds, ["auth_ok", "welcome", "ping"]);
    drop((w, r));
    assert_log_clean(s);
}

// ----- upload ---------------------------------------------------------------

fn upload_reply(r: &mut BufReader<TcpStream>) -> Value {
    let mut l = String::new();
    r.read_line(&mut l).unwrap();
    assert!(!l.is_empty(), "connection closed");
    serde_json::from_str(&l).unwrap()
}

#[test]
fn upload_server_requires_the_token() {
    let setup = Setup::new("upload");
    let dir = setup.dir.join("files").display().to_string();
    let s = setup.start("upload", &["--upload-dir", &dir]);
    for (token_line, msg) in [
        (String::new(), "authentication required"),
        (format!("Token: {WRONG}\r\n"), "wrong token"),
    ] {
        let mut c = connect(&s);
        let mut r = BufReader::new(c.try_clone().unwrap());
        let t = Instant::now();
        c.write_all(format!("Filename: a.txt\r\nFilesize: 5\r\n{token_line}\r\nhello").as_bytes())
            .unwrap();
        let v = upload_reply(&mut r);
        assert!(t.elapsed() >= AUTH_FAILURE_DELAY);
        assert_eq!(v["status"], "error");
        assert_eq!(v["message"], msg);
        assert_closed(&mut r);
    }
    // The right token, in each header block: two files on one connection.
    let mut c = connect(&s);
    let mut r = BufReader::new(c.try_clone().unwrap());
    for name in ["a.txt", "b.txt"] {
        c.write_all(
            format!("Filename: {name}\r\nFilesize: 5\r\nToken: {TOKEN}\r\n\r\nhello").as_bytes(),
        )
        .unwrap();
        loop {
            let v = upload_reply(&mut r);
            assert_ne!(v["status"], "error", "{v}");
            if v["status"] == "completed" {
                break;
            }
        }
    }
    assert_eq!(
        std::fs::read(setup.dir.join("files").join("b.txt")).unwrap(),
        b"hello"
    );
    drop((c, r));
    assert_log_clean(s);
}

#[test]
fn a_bad_token_file_is_refused_clearly() {
    let setup = Setup::new("badfile");
    std::fs::write(setup.dir.join("empty"), "\n").unwrap();
    let bin = env!("CARGO_BIN_EXE_netloop");
    let empty = setup.dir.join("empty").display().to_string();
    let out = std::process::Command::new(bin)
        .args(["serve", "command", "--port", "0", "--token", &empty])
        .env_remove("NETLOOP_TOKEN")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("the token is empty"));
}

// ----- guessing across connections -------------------------------------------

/// A connection to `s` from the loopback address `src` (127.0.0.0/8 is all
/// local on Linux), with the usual read timeout.
fn connect_from(s: &Server, src: &str) -> TcpStream {
    use socket2::{Domain, Socket, Type};
    let sock = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    let from: std::net::SocketAddr = format!("{src}:0").parse().unwrap();
    sock.bind(&from.into()).unwrap();
    sock.connect(&s.addr.into()).unwrap();
    let c: TcpStream = sock.into();
    c.set_read_timeout(Some(TIMEOUT)).unwrap();
    c
}

/// `/auth TOKEN` from `src`; returns the answer line.
fn try_token(s: &Server, src: &str, token: &str) -> String {
    let mut c = connect_from(s, src);
    let mut r = BufReader::new(c.try_clone().unwrap());
    let mut prompt = String::new();
    r.read_line(&mut prompt).unwrap();
    c.write_all(format!("/auth {token}\n").as_bytes()).unwrap();
    let mut answer = String::new();
    r.read_line(&mut answer).unwrap();
    answer
}

#[test]
fn guessing_across_connections_is_limited_and_a_right_token_still_works() {
    use netloop::protocol::auth::{ADDRESS_BURST, ADDRESS_REFILL_PER_SEC};
    const GUESSES: usize = 60;
    let setup = Setup::new("guess");
    let s = setup.start("command", &[]);
    // The attack: a new connection per guess, closed as soon as the guess is
    // sent, never waiting for the (delayed) answer.
    let start = Instant::now();
    for i in 0..GUESSES {
        let mut c = connect_from(&s, "127.0.0.1");
        let mut r = BufReader::new(c.try_clone().unwrap());
        let mut prompt = String::new();
        r.read_line(&mut prompt).unwrap();
        c.write_all(format!("/auth guess-{i}\n").as_bytes())
            .unwrap();
        let _ = c.shutdown(std::net::Shutdown::Write);
    }
    let attack = start.elapsed();
    // The right token from another address is accepted at once.
    assert_eq!(try_token(&s, "127.0.0.2", TOKEN), "authenticated\n");
    // How many guesses were compared: each comparison logs one failure.
    let mut checked = 0;
    let mut refusals_logged = 0;
    loop {
        let l = s.log.recv_timeout(TIMEOUT).expect("log line");
        if l.contains("authentication failed") {
            checked += 1;
        }
        if l.contains("too many failed authentications from this address") {
            refusals_logged += 1;
        }
        if l.contains("(127.0.0.2") && l.contains(": authenticated") {
            break;
        }
    }
    let refills = (attack.as_secs_f64() * ADDRESS_REFILL_PER_SEC).ceil() as usize;
    let allowed = ADDRESS_BURST as usize + refills;
    assert!(
        checked <= allowed,
        "{checked} of {GUESSES} guesses compared in {attack:?} (allowed {allowed})"
    );
    assert!(checked >= ADDRESS_BURST as usize, "{checked}");
    // Refusals are logged once per burst, not once per attempt.
    assert!(
        (1..=1 + refills).contains(&refusals_logged),
        "{refusals_logged} refusal lines"
    );
    // Meanwhile the right token from the guessing address is refused too
    // (answering it would tell the guesser it guessed right)...
    let answer = try_token(&s, "127.0.0.1", TOKEN);
    assert!(answer.contains("too many failed"), "{answer}");
    // ...and accepted once the address's bucket has refilled (within
    // 1 / rate seconds; polled, each refused try costs nothing).
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let answer = try_token(&s, "127.0.0.1", TOKEN);
        if answer == "authenticated\n" {
            break;
        }
        assert!(Instant::now() < deadline, "never accepted again: {answer}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

#[test]
fn framed_guesses_are_limited_across_connections_too() {
    use netloop::protocol::auth::ADDRESS_BURST;
    let setup = Setup::new("framed-guess");
    let s = setup.start("framed", &[]);
    // One wrong `auth` frame per connection, closed at once.
    for i in 0..ADDRESS_BURST + 2 {
        let mut c = connect_from(&s, "127.0.0.4");
        send_frame(
            &mut c,
            &json!({"type": "auth", "token": format!("guess-{i}")}),
        );
        let _ = c.shutdown(std::net::Shutdown::Write);
    }
    // The guessing address is refused even the right token, as a JSON error.
    let mut c = connect_from(&s, "127.0.0.4");
    send_frame(&mut c, &json!({"type": "auth", "token": TOKEN}));
    let v = read_frame(&mut c);
    assert_eq!(v["type"], "error", "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("try again later"),
        "{v}"
    );
    assert_closed(&mut c);
    // Another address is served.
    let mut c = connect_from(&s, "127.0.0.5");
    send_frame(&mut c, &json!({"type": "auth", "token": TOKEN}));
    assert_eq!(read_frame(&mut c)["type"], "auth_ok");
}

/// Run a client subcommand of the binary with `stdin` as its input; (exit
/// code, stdout, stderr). `NETLOOP_TOKEN` is set to `env_token` (or unset).
fn run_client(
    args: &[&str],
    stdin: &str,
    env_token: Option<&str>,
) -> (Option<i32>, String, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_netloop"));
    cmd.args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    match env_token {
        Some(t) => cmd.env("NETLOOP_TOKEN", t),
        None => cmd.env_remove("NETLOOP_TOKEN"),
    };
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let deadline = Instant::now() + TIMEOUT;
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "client {args:?} did not exit");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `netloop framed --token FILE` (and `NETLOOP_TOKEN`) authenticates and
/// gets its replies; without a token, or with a wrong one, it says so in one
/// line and exits 1 (it used to exit 0 after "authentication required").
#[test]
fn framed_client_authenticates_with_its_token() {
    let setup = Setup::new("framed-client");
    let srv = setup.start("framed", &[]);
    let addr = srv.addr.to_string();
    let tp = setup.token_path();
    let (code, out, err) = run_client(
        &["framed", &addr, "--token", &tp, "--ping-interval", "0"],
        "echo hi\n",
        None,
    );
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("\"type\":\"auth_ok\""), "{out}");
    assert!(out.contains("\"data\":\"hi\""), "{out}");
    let (code, out, _) = run_client(
        &["framed", &addr, "--ping-interval", "0"],
        "echo env\n",
        Some(TOKEN),
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("\"data\":\"env\""), "{out}");

    let (code, _, err) = run_client(&["framed", &addr, "--ping-interval", "0"], "", None);
    assert_eq!(code, Some(1));
    assert_eq!(
        err.trim(),
        "error: authentication failed: authentication required"
    );
    let (code, _, err) = run_client(&["framed", &addr, "--ping-interval", "0"], "", Some(WRONG));
    assert_eq!(code, Some(1));
    assert_eq!(err.trim(), "error: authentication failed: wrong token");
    assert_log_clean(srv);
}

/// `netloop heartbeat --token FILE` authenticates and gets its welcome; a
/// wrong token is one line on stderr, no reconnect, exit 1.
#[test]
fn heartbeat_client_authenticates_with_its_token() {
    let setup = Setup::new("heartbeat-client");
    let srv = setup.start("heartbeat", &[]);
    let addr = srv.addr.to_string();
    let tp = setup.token_path();
    let (code, out, err) = run_client(
        &["heartbeat", &addr, "--token", &tp, "--duration", "300ms"],
        "",
        None,
    );
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("authenticated"), "{out}");
    assert!(out.contains("welcome: "), "{out}");
    let (code, out, err) = run_client(&["heartbeat", &addr, "--duration", "5s"], "", Some(WRONG));
    assert_eq!(code, Some(1), "{out}\n{err}");
    assert_eq!(err.trim(), "error: authentication failed: wrong token");
    assert!(!out.contains("reconnect"), "{out}");
    assert_log_clean(srv);
}

/// A client holding a token (here from `NETLOOP_TOKEN`, as a user's shell
/// may set it) against servers without access control: they never ask, the
/// client says so once and works as without a token.
#[test]
fn clients_with_a_token_work_with_servers_that_ask_for_none() {
    let cmd = Server::start(&["serve", "command", "--port", "0"]);
    let addr = cmd.addr.to_string();
    let (code, out, err) = run_client(&["connect", &addr], "hello\n", Some(TOKEN));
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("Echo: hello"), "{out}");
    assert!(err.contains("the server did not ask for a token"), "{err}");

    let framed = Server::start(&["serve", "framed", "--port", "0"]);
    let addr = framed.addr.to_string();
    let (code, out, err) = run_client(
        &["framed", &addr, "--ping-interval", "0"],
        "echo plain\n",
        Some(TOKEN),
    );
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("\"data\":\"plain\""), "{out}");
    assert!(err.contains("the server did not ask for a token"), "{err}");

    let hb = Server::start(&["serve", "heartbeat", "--port", "0"]);
    let addr = hb.addr.to_string();
    let (code, out, err) = run_client(
        &["heartbeat", &addr, "--duration", "300ms"],
        "",
        Some(TOKEN),
    );
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("welcome: "), "{out}");
    assert!(out.contains("the server did not ask for a token"), "{out}");
}

// ----- the load generator against guarded servers ----------------------------

/// `netloop bench WORKLOAD --token FILE` against a server started with the
/// token: the fan-out members and the heartbeat clients present it first,
/// and the run succeeds; without it (or with a wrong one) the run fails.
#[test]
fn bench_fanout_and_heartbeat_present_the_token() {
    let setup = Setup::new("bench");
    let wrong = setup.dir.join("wrong");
    std::fs::write(&wrong, "not-the-token\n").unwrap();
    let bench = |workload: &str, addr: std::net::SocketAddr, token: Option<&std::path::Path>| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_netloop"));
        cmd.args([
            "bench",
            workload,
            "-c",
            "3",
            "--duration",
            "400ms",
            "--warmup",
            "100ms",
        ])
        .args(["--interval", "100ms", "--setup-timeout", "2s", "--json"])
        .arg("--target")
        .arg(addr.to_string())
        .env_remove(netloop::protocol::auth::TOKEN_ENV);
        if let Some(t) = token {
            cmd.arg("--token").arg(t);
        }
        let out = cmd.output().expect("bench runs");
        let report: serde_json::Value =
            serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
        (out.status.success(), report["ops"].as_u64().unwrap_or(0))
    };
    let right = std::path::PathBuf::from(setup.token_path());
    for workload in ["fanout", "heartbeat"] {
        let app = if workload == "fanout" {
            "chat"
        } else {
            "heartbeat"
        };
        let s = setup.start(app, &[]);
        let (ok, ops) = bench(workload, s.addr, Some(&right));
        assert!(
            ok && ops > 0,
            "{workload} with the token: ok {ok}, ops {ops}"
        );
        let (ok, _) = bench(workload, s.addr, Some(&wrong));
        assert!(!ok, "{workload} with a wrong token succeeded");
        let (ok, _) = bench(workload, s.addr, None);
        assert!(!ok, "{workload} without a token succeeded");
    }
}
