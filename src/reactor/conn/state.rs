//! The connection lifecycle, as an explicit state machine.
//!
//! A TCP connection has two directions that close independently: the peer's
//! FIN closes our *read* side, our `end()` (flush, then `shutdown(Write)`)
//! closes our *write* side. Node folds both into one socket object with
//! `readableEnded`/`writableEnded` flags; we make every legal combination a
//! variant so illegal ones cannot be represented (smoltcp's `State` enum is
//! the model).
//!
//! ```text
//!             connect ok                 peer FIN (allow_half_open)
//! Connecting ───────────► Open ───────────────────────────────► ReadClosed
//!     │                    │  │ end()                                │ end()
//!     │ error/destroy      │  ▼                                      ▼
//!     │                    │ Ending{read_closed: false} ──FIN──► Ending{read_closed: true}
//!     │                    │  │ queue flushed, shutdown(Write)       │ queue flushed, shutdown(Write)
//!     │                    │  ▼                                      ▼
//!     │                    │ WriteShut ─────────── peer FIN ──────► Closed
//!     └────────────────────┴──────── destroy() / error (any state) ─► Closed
//! ```
//!
//! With `allow_half_open = false` (the default, as in Node) the reactor calls
//! `end()` itself right after the peer's FIN, so `ReadClosed` is only seen
//! inside the `end` callback.
//!
//! The transitions here are pure functions of the current state; the reactor
//! performs the matching syscalls. `read() == 0` is the only evidence of a FIN
//! that the reactor feeds in: mio's `is_read_closed` is a hint (mio PR #1110).

use std::fmt;

/// Where a connection is in its life. `Display` gives the stable names used
/// in logs, metrics labels and tests.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// Outbound connection: `connect()` issued, not yet established.
    Connecting,
    /// Both directions open.
    Open,
    /// The peer sent FIN; we may still write (half-open).
    ReadClosed,
    /// `end()` was called: the write queue is flushing, FIN follows.
    Ending {
        /// Whether the peer's FIN has arrived too.
        read_closed: bool,
    },
    /// Our FIN is sent; still reading until the peer's FIN.
    WriteShut,
    /// Both directions done, or destroyed. The socket is closed.
    Closed,
}

/// A transition the current state does not allow.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum TransitionError {
    /// `end()` was already called (or the connection is closed).
    AlreadyEnded,
    /// A FIN was reported in a state where the read side is already closed.
    ReadAlreadyClosed,
}

impl fmt::Display for TransitionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransitionError::AlreadyEnded => f.write_str("the write side was already ended"),
            TransitionError::ReadAlreadyClosed => f.write_str("the read side was already closed"),
        }
    }
}

impl std::error::Error for TransitionError {}

impl State {
    /// Stable lower-case name, as printed by `Display`.
    pub fn name(&self) -> &'static str {
        match self {
            State::Connecting => "connecting",
            State::Open => "open",
            State::ReadClosed => "read-closed",
            State::Ending { .. } => "ending",
            State::WriteShut => "write-shut",
            State::Closed => "closed",
        }
    }

    /// All variants' names, in lifecycle order (for metrics that count
    /// connections by state).
    pub const NAMES: [&'static str; 6] = [
        "connecting",
        "open",
        "read-closed",
        "ending",
        "write-shut",
        "closed",
    ];

    /// Index of this state in [`State::NAMES`].
    pub fn index(&self) -> usize {
        match self {
            State::Connecting => 0,
            State::Open => 1,
            State::ReadClosed => 2,
            State::Ending { .. } => 3,
            State::WriteShut => 4,
            State::Closed => 5,
        }
    }

    /// May the application still queue data (`write()`)? Writes while
    /// connecting are queued and flushed once connected, as in Node.
    pub fn accepts_writes(&self) -> bool {
        matches!(self, State::Connecting | State::Open | State::ReadClosed)
    }

    /// Is the read side still open (the reactor should read)?
    pub fn reads_open(&self) -> bool {
        matches!(
            self,
            State::Open | State::Ending { read_closed: false } | State::WriteShut
        )
    }

    /// Is data still to be flushed to the socket in this state?
    pub fn flushes(&self) -> bool {
        matches!(self, State::Open | State::ReadClosed | State::Ending { .. })
    }

    /// The connection is established (not connecting, not closed).
    pub fn is_established(&self) -> bool {
        !matches!(self, State::Connecting | State::Closed)
    }

    /// The peer's FIN arrived (`read() == 0`).
    pub fn on_peer_fin(self) -> Result<State, TransitionError> {
        match self {
            State::Open => Ok(State::ReadClosed),
            State::Ending { read_closed: false } => Ok(State::Ending { read_closed: true }),
            State::WriteShut => Ok(State::Closed),
            _ => Err(TransitionError::ReadAlreadyClosed),
        }
    }

    /// The application called `end()`.
    pub fn on_end(self) -> Result<State, TransitionError> {
        match self {
            State::Connecting | State::Open => Ok(State::Ending { read_closed: false }),
            State::ReadClosed => Ok(State::Ending { read_closed: true }),
            _ => Err(TransitionError::AlreadyEnded),
        }
    }

    /// The write queue is empty and `shutdown(Write)` was issued. Only
    /// meaningful in `Ending`; other states are returned unchanged.
    pub fn on_flushed(self) -> State {
        match self {
            State::Ending { read_closed: false } => State::WriteShut,
            State::Ending { read_closed: true } => State::Closed,
            other => other,
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_close_initiated_locally() {
        let s = State::Open.on_end().unwrap();
        assert_eq!(s, State::Ending { read_closed: false });
        assert!(s.reads_open());
        assert!(!s.accepts_writes());
        let s = s.on_flushed();
        assert_eq!(s, State::WriteShut);
        assert!(s.reads_open());
        assert_eq!(s.on_peer_fin().unwrap(), State::Closed);
    }

    #[test]
    fn full_close_initiated_by_peer() {
        let s = State::Open.on_peer_fin().unwrap();
        assert_eq!(s, State::ReadClosed);
        assert!(s.accepts_writes(), "half-open: we may still write");
        assert!(!s.reads_open());
        let s = s.on_end().unwrap();
        assert_eq!(s, State::Ending { read_closed: true });
        assert_eq!(s.on_flushed(), State::Closed);
    }

    #[test]
    fn fin_while_ending() {
        let s = State::Open.on_end().unwrap().on_peer_fin().unwrap();
        assert_eq!(s, State::Ending { read_closed: true });
        assert_eq!(s.on_flushed(), State::Closed);
    }

    #[test]
    fn double_end_and_double_fin_are_errors() {
        let s = State::Open.on_end().unwrap();
        assert_eq!(s.on_end(), Err(TransitionError::AlreadyEnded));
        assert_eq!(
            State::WriteShut.on_end(),
            Err(TransitionError::AlreadyEnded)
        );
        assert_eq!(State::Closed.on_end(), Err(TransitionError::AlreadyEnded));
        assert_eq!(
            State::ReadClosed.on_peer_fin(),
            Err(TransitionError::ReadAlreadyClosed)
        );
        assert_eq!(
            State::Closed.on_peer_fin(),
            Err(TransitionError::ReadAlreadyClosed)
        );
    }

    #[test]
    fn flushed_outside_ending_is_identity() {
        for s in [
            State::Open,
            State::ReadClosed,
            State::WriteShut,
            State::Closed,
        ] {
            assert_eq!(s.on_flushed(), s);
        }
    }

    #[test]
    fn display_names_are_stable() {
        let all = [
            State::Connecting,
            State::Open,
            State::ReadClosed,
            State::Ending { read_closed: true },
            State::WriteShut,
            State::Closed,
        ];
        for s in all {
            assert_eq!(s.to_string(), State::NAMES[s.index()]);
        }
        assert_eq!(State::Ending { read_closed: false }.to_string(), "ending");
    }
}
