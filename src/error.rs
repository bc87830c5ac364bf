//! Errors that reach the application, with Node's error codes.
//!
//! `io::Error` stays at the syscall boundary; what an application sees is a
//! [`NetError`]: a [`ErrorCode`] that matches Node's `err.code` (so a port of a
//! Node program can switch on the same names), the operation, and the address
//! involved.

use std::fmt;
use std::io;

/// Node-style error codes for socket errors.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// Nothing listens at the address.
    ConnRefused,
    /// The host name did not resolve.
    NotFound,
    /// Connect (or an operation) timed out.
    TimedOut,
    /// The peer reset the connection.
    ConnReset,
    /// Writing to a connection the peer has closed.
    BrokenPipe,
    /// The address is already in use (listen).
    AddrInUse,
    /// The address is not available on this host (listen).
    AddrNotAvail,
    /// Permission denied (a privileged port).
    Access,
    /// The write queue exceeded its hard cap: the peer does not read.
    SlowConsumer,
    /// The TLS layer failed: a bad certificate, a protocol violation, an
    /// alert from the peer. The detail says which, in one line.
    Tls,
    /// The peer closed TCP without TLS's `close_notify`: the stream may have
    /// been cut short by an attacker or a crash, so it is not a clean end.
    TlsTruncated,
    /// Any other OS error, by errno name where known.
    Other,
}

impl ErrorCode {
    /// The code as Node spells it.
    pub fn as_str(&self) -> &'static str {
        match self {
            ErrorCode::ConnRefused => "ECONNREFUSED",
            ErrorCode::NotFound => "ENOTFOUND",
            ErrorCode::TimedOut => "ETIMEDOUT",
            ErrorCode::ConnReset => "ECONNRESET",
            ErrorCode::BrokenPipe => "EPIPE",
            ErrorCode::AddrInUse => "EADDRINUSE",
            ErrorCode::AddrNotAvail => "EADDRNOTAVAIL",
            ErrorCode::Access => "EACCES",
            ErrorCode::SlowConsumer => "ERR_SLOW_CONSUMER",
            ErrorCode::Tls => "ERR_TLS",
            ErrorCode::TlsTruncated => "ERR_TLS_TRUNCATED",
            ErrorCode::Other => "EIO",
        }
    }

    /// A sentence a person can act on.
    pub fn describe(&self) -> &'static str {
        match self {
            ErrorCode::ConnRefused => "connection refused: is the server running on that port?",
            ErrorCode::NotFound => "host not found: check the host name",
            ErrorCode::TimedOut => "timed out: the host did not answer",
            ErrorCode::ConnReset => "connection reset by the peer",
            ErrorCode::BrokenPipe => "the peer closed the connection",
            ErrorCode::AddrInUse => "address already in use: pick another port",
            ErrorCode::AddrNotAvail => "address not available on this host",
            ErrorCode::Access => "permission denied",
            ErrorCode::SlowConsumer => "the peer does not read: its write queue hit the cap",
            ErrorCode::Tls => "TLS failure",
            ErrorCode::TlsTruncated => "TLS stream truncated: the peer closed without close_notify",
            ErrorCode::Other => "I/O error",
        }
    }

    /// Classify an OS error.
    pub fn from_io(e: &io::Error) -> ErrorCode {
        use io::ErrorKind::*;
        match e.kind() {
            ConnectionRefused => ErrorCode::ConnRefused,
            TimedOut => ErrorCode::TimedOut,
            ConnectionReset | ConnectionAborted => ErrorCode::ConnReset,
            BrokenPipe => ErrorCode::BrokenPipe,
            AddrInUse => ErrorCode::AddrInUse,
            AddrNotAvailable => ErrorCode::AddrNotAvail,
            PermissionDenied => ErrorCode::Access,
            _ => ErrorCode::Other,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error delivered to the application (`error` events, failed listen or
/// connect).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetError {
    /// Node-style code.
    pub code: ErrorCode,
    /// The operation: `connect`, `read`, `write`, `listen`, `getaddrinfo`, ...
    pub syscall: &'static str,
    /// Detail: the address, host or OS message.
    pub detail: String,
}

impl NetError {
    /// Build from parts.
    pub fn new(code: ErrorCode, syscall: &'static str, detail: impl Into<String>) -> Self {
        NetError {
            code,
            syscall,
            detail: detail.into(),
        }
    }

    /// Wrap an OS error from `syscall`.
    pub fn from_io(syscall: &'static str, e: &io::Error) -> Self {
        NetError::new(ErrorCode::from_io(e), syscall, e.to_string())
    }
    /// The cause in a few words, for a one-line message that already names
    /// the operation and the address (`cannot listen on 127.0.0.1:8080:
    /// address already in use`): the code's description without its advice,
    /// or the detail when the code is unclassified.
    pub fn cause(&self) -> String {
        match self.code {
            ErrorCode::Other | ErrorCode::Tls => self.detail.clone(),
            code => {
                let d = code.describe();
                d.split_once(':').map_or(d, |(cause, _)| cause).to_string()
            }
        }
    }
}

impl fmt::Display for NetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.syscall, self.code, self.detail)
    }
}

impl std::error::Error for NetError {}

/// Why `write()` or `end()` refused.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum WriteError {
    /// No such connection (closed and gone, or a stale id).
    NotFound,
    /// `end()` was already called: Node's `ERR_STREAM_WRITE_AFTER_END`.
    AfterEnd,
    /// The connection is closed (destroyed or both sides done).
    Closed,
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WriteError::NotFound => "no such connection",
            WriteError::AfterEnd => "write after end",
            WriteError::Closed => "connection closed",
        })
    }
}

impl std::error::Error for WriteError {}

/// Report a fatal start-up error as one plain line on stderr, `error: MSG`
/// (no log prefix, the cause said once), and return the failure status.
pub fn fatal(msg: impl fmt::Display) -> std::process::ExitCode {
    eprintln!("error: {msg}");
    std::process::ExitCode::FAILURE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cause_is_the_description_without_advice() {
        let e = NetError::new(
            ErrorCode::AddrInUse,
            "listen",
            "127.0.0.1:1: Address in use",
        );
        assert_eq!(e.cause(), "address already in use");
        let e = NetError::new(ErrorCode::Other, "listen", "Too many open files");
        assert_eq!(e.cause(), "Too many open files");
    }

    #[test]
    fn io_errors_map_to_node_codes() {
        let e = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(ErrorCode::from_io(&e).as_str(), "ECONNREFUSED");
        let e = io::Error::from(io::ErrorKind::ConnectionReset);
        assert_eq!(NetError::from_io("read", &e).code, ErrorCode::ConnReset);
    }
}
