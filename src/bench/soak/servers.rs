//! The three servers a soak loads: spawned as children of this executable
//! (`netloop serve echo|chat|framed --port 0`), or given by address; and
//! their `/proc` figures (RSS, open descriptors).
//!
//! A spawned server logs `... listening on ADDR` on stderr at `info`; the
//! address is taken from that line (as `tests/util` does), waiting at most
//! [`LISTEN_TIMEOUT`]. Its stderr is then drained on a thread for the rest
//! of its life, so a chatty server never blocks on a full pipe. Children are
//! killed when their [`Target`] is dropped.

use super::super::procstat;
use std::fmt;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Longest wait for a spawned server's "listening on" line.
pub const LISTEN_TIMEOUT: Duration = Duration::from_secs(20);

/// Which server.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// `netloop serve echo`.
    Echo,
    /// `netloop serve chat`.
    Chat,
    /// `netloop serve framed`.
    Framed,
}

impl Kind {
    /// All three, in report order.
    pub const ALL: [Kind; 3] = [Kind::Echo, Kind::Chat, Kind::Framed];
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Echo => "echo",
            Kind::Chat => "chat",
            Kind::Framed => "framed",
        })
    }
}

/// One server under load.
#[derive(Debug)]
pub struct Target {
    /// Which app it runs.
    pub kind: Kind,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its process, if known (spawned, or `--*-pid`).
    pub pid: Option<u32>,
    child: Option<Child>,
}

impl Target {
    /// A server someone else runs.
    pub fn external(kind: Kind, addr: SocketAddr, pid: Option<u32>) -> Target {
        Target {
            kind,
            addr,
            pid,
            child: None,
        }
    }

    /// Spawn `netloop serve KIND --port 0` and wait for its address.
    pub fn spawn(kind: Kind) -> Result<Target, String> {
        let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
        let mut child = Command::new(exe)
            .args([
                "serve",
                &kind.to_string(),
                "--host",
                "127.0.0.1",
                "--port",
                "0",
            ])
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("spawn serve {kind}: {e}"))?;
        let Some(stderr) = child.stderr.take() else {
            let _ = child.kill();
            return Err("no stderr pipe".into());
        };
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if !sent {
                    if let Some(addr) = listen_addr(&line) {
                        let _ = tx.send(addr);
                        sent = true;
                    }
                }
            }
        });
        match rx.recv_timeout(LISTEN_TIMEOUT) {
            Ok(addr) => Ok(Target {
                kind,
                addr,
                pid: Some(child.id()),
                child: Some(child),
            }),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(format!("serve {kind} printed no listening address"))
            }
        }
    }

    /// Is the server still running? (Unknown for an external server
    /// without a pid: assumed alive.)
    pub fn alive(&mut self) -> bool {
        match (&mut self.child, self.pid) {
            (Some(c), _) => matches!(c.try_wait(), Ok(None)),
            (None, Some(pid)) => std::path::Path::new(&format!("/proc/{pid}")).exists(),
            (None, None) => true,
        }
    }

    /// RSS and descriptor count now, if the pid is known and readable.
    pub fn sample(&self) -> Option<Usage> {
        let pid = self.pid?;
        let rss_kib = procstat::sample(&pid.to_string()).ok()?.rss_kib;
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64;
        Some(Usage { rss_kib, fds })
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// One reading of a server's resources.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Resident set, KiB.
    pub rss_kib: u64,
    /// Open descriptors.
    pub fds: u64,
}

/// The address in a `... listening on ADDR ...` log line.
pub fn listen_addr(line: &str) -> Option<SocketAddr> {
    let pos = line.find("listening on ")?;
    let rest = &line[pos + "listening on ".len()..];
    rest.split_whitespace()
        .next()?
        .trim_end_matches(',')
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_listen_address() {
        let l = "[2026-01-01T00:00:00Z INFO  netloop::servers::chat] chat server listening on 127.0.0.1:4321 (lang en)";
        assert_eq!(listen_addr(l), "127.0.0.1:4321".parse().ok());
        assert_eq!(
            listen_addr("echo server listening on 127.0.0.1:9,"),
            "127.0.0.1:9".parse().ok()
        );
        assert_eq!(listen_addr("client 1 connected"), None);
        assert_eq!(listen_addr("listening on nowhere"), None);
    }
}
