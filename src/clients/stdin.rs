//! Standard input as a source on the loop.
//!
//! * A pipe, socket or terminal is registered with [`crate::Cx::watch_fd`]
//!   (edge-triggered) and read until it would block. A pipe or socket is made
//!   non-blocking (`O_NONBLOCK`); the old flags are restored on drop, since the
//!   open file description may be shared with the shell.
//! * A terminal is not made non-blocking (its file description is usually
//!   stdout's too, and a non-blocking stdout would fail writes). It is put in
//!   non-canonical mode without echo, `VMIN = 0, VTIME = 0`, so a read returns
//!   what is there, or 0 at once when nothing is; ISIG stays on so Ctrl-C is a
//!   signal. The old settings are restored on drop.
//! * A regular file or `/dev/null` cannot be registered with epoll (EPERM) but
//!   never blocks either: it is read on the loop directly when the client asks
//!   for input ([`StdinKind::File`]). No helper thread is needed.

use crate::{Cx, Reactor, Service};
use bytes::BytesMut;
use rustix::fs::OFlags;
use rustix::io::Errno;
use rustix::termios::{self, LocalModes, OptionalActions, SpecialCodeIndex, Termios};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

/// How standard input is read.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum StdinKind {
    /// A terminal, watched, in non-canonical mode.
    Tty,
    /// A pipe or socket, watched, non-blocking.
    Pipe,
    /// A regular file (or anything epoll refuses): read directly.
    File,
}

/// The result of one read.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ReadOutcome {
    /// This many bytes were appended.
    Data(usize),
    /// Nothing now; wait for the next readiness event.
    WouldBlock,
    /// End of input.
    Eof,
}

/// Standard input, registered on a loop.
#[derive(Debug)]
pub struct Stdin {
    kind: StdinKind,
    watch: Option<u64>,
    old_flags: Option<OFlags>,
    old_termios: Option<Termios>,
}

/// The process's standard input handle, kept for the life of the process.
static STDIN: std::sync::LazyLock<io::Stdin> = std::sync::LazyLock::new(io::stdin);

fn fd() -> BorrowedFd<'static> {
    STDIN.as_fd()
}

impl Stdin {
    /// Register standard input for the service of `cx`; readiness arrives
    /// as its `on_fd_readable(tag)`. A terminal gets the line editor's mode.
    pub fn open<S: Service>(cx: &mut Cx<'_, S>, tag: S::Tag) -> io::Result<Stdin> {
        let fd = fd();
        if termios::isatty(fd) {
            let old = termios::tcgetattr(fd)?;
            let mut raw = old.clone();
            raw.local_modes &= !(LocalModes::ICANON | LocalModes::ECHO);
            raw.special_codes[SpecialCodeIndex::VMIN] = 0;
            raw.special_codes[SpecialCodeIndex::VTIME] = 0;
            termios::tcsetattr(fd, OptionalActions::Now, &raw)?;
            let mut s = Stdin {
                kind: StdinKind::Tty,
                watch: None,
                old_flags: None,
                old_termios: Some(old),
            };
            s.watch = Some(cx.watch_fd(fd.as_raw_fd(), tag)?);
            return Ok(s);
        }
        match cx.watch_fd(fd.as_raw_fd(), tag) {
            Ok(watch) => {
                let old = rustix::fs::fcntl_getfl(fd)?;
                rustix::fs::fcntl_setfl(fd, old | OFlags::NONBLOCK)?;
                Ok(Stdin {
                    kind: StdinKind::Pipe,
                    watch: Some(watch),
                    old_flags: Some(old),
                    old_termios: None,
                })
            }
            Err(e) if e.raw_os_error() == Some(Errno::PERM.raw_os_error()) => Ok(Stdin {
                kind: StdinKind::File,
                watch: None,
                old_flags: None,
                old_termios: None,
            }),
            Err(e) => Err(e),
        }
    }

    /// How input is read.
    pub fn kind(&self) -> StdinKind {
        self.kind
    }

    /// Read at most `max` bytes, appending to `buf`.
    pub fn read(&mut self, buf: &mut BytesMut, max: usize) -> ReadOutcome {
        let mut tmp = [0u8; 16 * 1024];
        let n = max.min(tmp.len());
        let Some(dst) = tmp.get_mut(..n) else {
            return ReadOutcome::WouldBlock;
        };
        loop {
            match rustix::io::read(fd(), &mut *dst) {
                Ok(0) if self.kind == StdinKind::Tty => return ReadOutcome::WouldBlock,
                Ok(0) => return ReadOutcome::Eof,
                Ok(k) => {
                    buf.extend_from_slice(dst.get(..k).unwrap_or_default());
                    return ReadOutcome::Data(k);
                }
                Err(Errno::INTR) => continue,
                Err(Errno::AGAIN) => return ReadOutcome::WouldBlock,
                Err(e) => {
                    log::warn!("reading standard input: {e}");
                    return ReadOutcome::Eof;
                }
            }
        }
    }

    /// Stop watching and restore the descriptor's settings.
    pub fn close(&mut self, r: &mut Reactor) {
        if let Some(w) = self.watch.take() {
            r.unwatch_fd(w);
        }
        self.restore();
    }

    fn restore(&mut self) {
        if let Some(old) = self.old_flags.take() {
            let _ = rustix::fs::fcntl_setfl(fd(), old);
        }
        if let Some(old) = self.old_termios.take() {
            let _ = termios::tcsetattr(fd(), OptionalActions::Now, &old);
        }
    }
}

impl Drop for Stdin {
    fn drop(&mut self) {
        self.restore();
    }
}
