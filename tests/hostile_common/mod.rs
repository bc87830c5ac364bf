//! Helpers shared by the `hostile_*` suites (after `tests/servers/echo/hostile.rs`): the serial lock,
//! latency statistics, descriptor counts of the child, sockets with small buffers or a
//! reset-on-close linger.
#![allow(dead_code)]

use std::io::{ErrorKind, Read};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::util::TIMEOUT;

/// The tests of one file run one at a time: each measures latency and memory.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Take the file's serial lock (a failed test does not poison it for the others).
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Median and 99th percentile of `v` (sorted in place).
pub fn p50_p99(v: &mut [Duration]) -> (Duration, Duration) {
    assert!(!v.is_empty(), "no samples");
    v.sort();
    (v[v.len() / 2], v[(v.len() * 99 / 100).min(v.len() - 1)])
}

/// Asserts that the loaded median is within 10x of the unloaded one, or under 50 ms (the
/// bound of `hostile_echo.rs`).
pub fn assert_latency_ok(what: &str, unloaded: Duration, loaded: Duration) {
    assert!(
        loaded <= unloaded * 10 || loaded < Duration::from_millis(50),
        "{what}: healthy p50 {loaded:?} under load vs {unloaded:?} unloaded"
    );
}

/// Number of open descriptors of a process.
pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// True once the server has closed `s` (EOF or reset); data before it is discarded.
/// Bounded by the socket's read timeout.
pub fn closed_by_server(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 64 * 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut => {
                return false
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return true, // reset
        }
    }
}

/// A connection whose receive buffer is tiny (4 KiB asked; the kernel doubles it), so that
/// what the server sends to a peer that never reads piles up on the server's side.
pub fn connect_small(addr: SocketAddr) -> TcpStream {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.set_recv_buffer_size(4 * 1024).unwrap();
    sock.set_send_buffer_size(16 * 1024).unwrap();
    sock.connect_timeout(&addr.into(), TIMEOUT)
        .expect("connect");
    let s: TcpStream = sock.into();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s.set_write_timeout(Some(TIMEOUT)).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// Close `s` with a reset (SO_LINGER 0) instead of a FIN.
pub fn reset(s: TcpStream) {
    let sock = socket2::Socket::from(s);
    sock.set_linger(Some(Duration::ZERO)).unwrap();
    drop(sock);
}
