//! Standard input for the clients, as lines posted to the loop.
//!
//! A helper thread reads stdin with blocking reads and posts each line to a
//! service through its typed [`Remote`] (`Service::on_message` receives a
//! [`StdinEvent`]), then [`StdinEvent::Eof`] at end of input.
//!
//! Why a thread instead of `Cx::watch_fd(0, ..)`: watching needs the
//! descriptor non-blocking, and `O_NONBLOCK` is a flag of the *open file
//! description*, which stdin shares with the parent shell or the pipe's
//! writer. Setting it would leave the user's terminal non-blocking after we
//! exit (a classic source of `EAGAIN` in the shell), and doing it needs
//! `fcntl`, i.e. `unsafe` or another crate. One blocking reader thread costs
//! nothing and keeps the loop itself single-threaded: the thread only posts.
//! The thread never keeps the process alive: it is detached, and the loop's
//! liveness does not count it.

use crate::Remote;
use std::io::{BufRead, Read};

/// Longest line taken from stdin; longer input is cut into pieces of this size
/// so a runaway pipe cannot grow memory.
pub const MAX_STDIN_LINE: usize = 64 * 1024;

/// What the stdin thread posts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StdinEvent {
    /// One line, without its terminator.
    Line(String),
    /// End of input (or a read error).
    Eof,
}

/// Start the reader thread, posting to the service behind `remote`.
/// Returns false if the thread could not start.
pub fn spawn(remote: Remote<StdinEvent>) -> bool {
    std::thread::Builder::new()
        .name("netloop-stdin".into())
        .spawn(move || {
            let stdin = std::io::stdin();
            let mut lock = stdin.lock();
            let mut buf = Vec::new();
            loop {
                buf.clear();
                let mut limited = (&mut lock).take(MAX_STDIN_LINE as u64);
                match limited.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        while matches!(buf.last(), Some(b'\n' | b'\r')) {
                            buf.pop();
                        }
                        let line = String::from_utf8_lossy(&buf).into_owned();
                        if !remote.post(StdinEvent::Line(line)) {
                            return;
                        }
                    }
                }
            }
            remote.post(StdinEvent::Eof);
        })
        .is_ok()
}
