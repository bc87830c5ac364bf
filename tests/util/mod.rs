//! Shared helpers for the integration tests: an in-process loop on a thread,
//! the `netloop` binary as a child process, and bounded blocking clients.
#![allow(dead_code)]

use netloop::Remote;
use netloop::{ConnId, Cx, ListenOptions, Reactor, Service};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Upper bound for any single wait in a test.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// The loops of the tests are [`ServiceLoop`]s: `TestLoop::start_service`
/// (or `TestLoop::start`) serves a service on its own thread.
pub type TestLoop = ServiceLoop;

/// A connected blocking client with a read timeout.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s.set_write_timeout(Some(TIMEOUT)).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// Read until EOF (bounded by the read timeout).
pub fn read_to_end(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    s.read_to_end(&mut out).expect("read to end");
    out
}

/// Read exactly `n` bytes.
pub fn read_exact(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut out = vec![0; n];
    s.read_exact(&mut out).expect("read exact");
    out
}

/// Deterministic pseudo-random bytes (splitmix64).
pub fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed;
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        out.extend_from_slice(&z.to_le_bytes());
    }
    out.truncate(n);
    out
}

/// Send `data` on one thread while reading the echo on this one; returns
/// what came back (until EOF after our FIN).
pub fn echo_roundtrip(addr: SocketAddr, data: Vec<u8>) -> Vec<u8> {
    let mut s = connect(addr);
    let mut w = s.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        for chunk in data.chunks(16 * 1024) {
            w.write_all(chunk).expect("write");
        }
        w.shutdown(std::net::Shutdown::Write).expect("shutdown");
    });
    let got = read_to_end(&mut s);
    writer.join().unwrap();
    got
}

/// Poll `cond` until it holds or `TIMEOUT` passes.
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < TIMEOUT, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The `netloop` binary as a child, with stderr parsed for the listen line.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub log: mpsc::Receiver<String>,
    /// The log lines up to and including the "listening on" line.
    pub startup: Vec<String>,
}

impl Server {
    /// Start `netloop <args>` through `sh -c` (so a test can prefix
    /// `ulimit`), wait for its "listening on ADDR" log line.
    pub fn start_shell(prefix: &str, args: &[&str]) -> Server {
        let bin = env!("CARGO_BIN_EXE_netloop");
        let cmd = format!("{prefix} exec '{bin}' {}", args.join(" "));
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn netloop");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + TIMEOUT;
        let mut startup = Vec::new();
        let addr = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx.recv_timeout(left).expect("server printed its address");
            startup.push(line.clone());
            if let Some(pos) = line.find("listening on ") {
                let rest = &line[pos + "listening on ".len()..];
                let a = rest
                    .split_whitespace()
                    .next()
                    .unwrap()
                    .trim_end_matches(',');
                break a.parse().expect("address");
            }
        };
        Server {
            child,
            addr,
            log: rx,
            startup,
        }
    }

    /// Start `netloop <args>`.
    pub fn start(args: &[&str]) -> Server {
        Self::start_shell("", args)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Send a signal by name (`TERM`, `INT`).
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill -{sig} failed");
    }

    /// Wait for exit (bounded); returns the exit code.
    pub fn wait_exit(&mut self) -> Option<i32> {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                return st.code();
            }
            assert!(Instant::now() < deadline, "server did not exit");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Resident set size of the child in KiB (from /proc).
    pub fn rss_kib(&self) -> u64 {
        proc_status_kib(self.pid(), "VmRSS:")
    }

    /// User + system CPU time of the child, in clock ticks.
    pub fn cpu_ticks(&self) -> u64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap_or_default();
        // Fields after the command name, which is in parentheses.
        let after = stat.rsplit_once(')').map(|x| x.1).unwrap_or("");
        let f: Vec<&str> = after.split_whitespace().collect();
        // utime and stime are fields 14 and 15 overall: 12 and 13 here.
        f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
            + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
    }

    /// Wait for a log line containing `needle`.
    pub fn wait_log(&self, needle: &str) -> String {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .log
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no log line with {needle:?}"));
            if line.contains(needle) {
                return line;
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `/proc/PID/status` field in KiB.
pub fn proc_status_kib(pid: u32, field: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The lines of `r`, read on a thread.
pub fn lines_of(r: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(r).lines() {
            let Ok(l) = l else { break };
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    rx
}

/// A child process driven through its standard streams: input written as
/// the test goes, output lines awaited by content (never by sleeping).
pub struct Proc {
    pub child: Child,
    stdin: Option<std::process::ChildStdin>,
    out: mpsc::Receiver<String>,
    err: mpsc::Receiver<String>,
    /// Every stdout line seen so far.
    pub seen_out: Vec<String>,
    /// Every stderr line seen so far.
    pub seen_err: Vec<String>,
}

impl Proc {
    /// Spawn `cmd` with all three streams piped.
    pub fn spawn(mut cmd: Command) -> Proc {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let out = lines_of(child.stdout.take().unwrap());
        let err = lines_of(child.stderr.take().unwrap());
        Proc {
            stdin: child.stdin.take(),
            child,
            out,
            err,
            seen_out: Vec::new(),
            seen_err: Vec::new(),
        }
    }

    /// `netloop ARGS...`.
    pub fn netloop(args: &[&str]) -> Proc {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_netloop"));
        cmd.args(args).env_remove("NETLOOP_TOKEN");
        Proc::spawn(cmd)
    }

    /// Write `text` to its standard input.
    pub fn send(&mut self, text: &str) {
        let s = self.stdin.as_mut().expect("stdin open");
        s.write_all(text.as_bytes()).unwrap();
        s.flush().unwrap();
    }

    /// Close its standard input (end of input).
    pub fn close_stdin(&mut self) {
        self.stdin.take();
    }

    /// Wait for a stdout line containing `needle`; returns it.
    pub fn wait_out(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let l = self.out.recv_timeout(left).unwrap_or_else(|_| {
                panic!(
                    "no stdout line with {needle:?}; out {:?}; err {:?}",
                    self.seen_out, self.seen_err
                )
            });
            self.seen_out.push(l.clone());
            if l.contains(needle) {
                return l;
            }
        }
    }

    /// Wait for a stderr line containing `needle`; returns it.
    pub fn wait_err(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let l = self.err.recv_timeout(left).unwrap_or_else(|_| {
                panic!("no stderr line with {needle:?}; saw {:?}", self.seen_err)
            });
            self.seen_err.push(l.clone());
            if l.contains(needle) {
                return l;
            }
        }
    }

    /// Wait for a stdout line equal to `want` (long lines are cut in the
    /// failure message).
    pub fn wait_line(&mut self, want: &str) {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let l = self.out.recv_timeout(left).unwrap_or_else(|_| {
                let tail: Vec<String> = self
                    .seen_out
                    .iter()
                    .rev()
                    .take(3)
                    .map(|l| l.chars().take(80).collect())
                    .collect();
                panic!("no stdout line {want:?}; last seen {tail:?}")
            });
            let done = l == want;
            self.seen_out.push(l);
            if done {
                return;
            }
        }
    }

    /// Close standard input, then [`Proc::wait_exit_open`].
    pub fn wait_exit(&mut self) -> Option<i32> {
        self.close_stdin();
        self.wait_exit_open()
    }

    /// Wait for exit (bounded) with standard input left as it is (a client
    /// that must exit for another reason than end of input), then collect the
    /// rest of the output.
    pub fn wait_exit_open(&mut self) -> Option<i32> {
        let deadline = Instant::now() + TIMEOUT;
        let code = loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                break st.code();
            }
            assert!(
                Instant::now() < deadline,
                "did not exit; out {:?}; err {:?}",
                self.seen_out,
                self.seen_err
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        while let Ok(l) = self.out.recv_timeout(TIMEOUT) {
            self.seen_out.push(l);
        }
        while let Ok(l) = self.err.recv_timeout(TIMEOUT) {
            self.seen_err.push(l);
        }
        code
    }

    /// Everything printed on stdout so far, one string.
    pub fn out_text(&self) -> String {
        self.seen_out.join("\n")
    }

    /// Everything printed on stderr so far, one string.
    pub fn err_text(&self) -> String {
        self.seen_err.join("\n")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Stops a [`ServiceLoop`]'s loop on any message; hands its [`Remote`] over
/// when added.
struct StopService(mpsc::Sender<Remote<()>>);

impl Service for StopService {
    type Conn = ();
    type Tag = ();
    type Message = ();
    fn on_start(&mut self, cx: &mut Cx<Self>) {
        let _ = self.0.send(cx.remote());
    }
    fn on_data(&mut self, _: &mut Cx<Self>, _: ConnId, _: &mut (), d: &mut netloop::BytesMut) {
        d.clear();
    }
    fn on_message(&mut self, cx: &mut Cx<Self>, _: ()) {
        cx.stop();
    }
}

/// A loop on its own thread, running [`Reactor::run`], serving one service
/// on 127.0.0.1; stopped through a small control service's [`Remote`] when
/// dropped.
pub struct ServiceLoop {
    pub addr: SocketAddr,
    stop: Remote<()>,
    thread: Option<JoinHandle<()>>,
}

impl ServiceLoop {
    /// Serve the service made by `make` (on the loop thread) with `opts`.
    pub fn start<S, F>(opts: ListenOptions, make: F) -> ServiceLoop
    where
        S: Service,
        F: FnOnce() -> S + Send + 'static,
    {
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            let mut r = Reactor::new().expect("reactor");
            let (stx, srx) = mpsc::channel();
            r.add_service(StopService(stx));
            let stop = srx.recv().expect("stop remote");
            let sid = r.serve(opts, make()).expect("listen");
            let addr = r.server_addr(sid).expect("addr");
            tx.send((addr, stop)).expect("send addr");
            r.run().expect("run");
        });
        let (addr, stop) = rx.recv_timeout(TIMEOUT).expect("loop started");
        ServiceLoop {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    /// [`ServiceLoop::start`], under the name the tests of services use.
    pub fn start_service<S, F>(opts: ListenOptions, make: F) -> ServiceLoop
    where
        S: Service,
        F: FnOnce() -> S + Send + 'static,
    {
        Self::start(opts, make)
    }
}

impl Drop for ServiceLoop {
    fn drop(&mut self) {
        self.stop.post(());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
