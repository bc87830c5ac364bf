//! netloop: a single-threaded mio reactor modelled on Node.js `net`.
//!
//! Applications are [`Service`]s: a handler per server
//! ([`Reactor::serve`]) or per outbound connection
//! ([`Reactor::connect_with`]), with typed per-connection state, typed timer
//! tags and typed messages ([`Remote`]), run by [`Reactor::run`].
//!
//! * [`reactor`]: the event loop (phases, ready list, tokens, timers, signals)
//!   and its services;
//! * [`conn`]: a connection's lifecycle state machine and write queue;
//! * [`net`]: listening, accepting, connecting, errors;
//! * [`timer`]: the hierarchical timing wheel;
//! * [`metrics`]: loop metrics (JSON, Prometheus endpoint, trace lines);
//! * [`codec`]: sans-IO decoders (lines, length-prefixed frames, upload headers);
//! * [`apps`]: the servers the `netloop` binary runs;
//! * [`client`]: the clients the `netloop` binary runs;
//! * [`cli`]: command-line parsing helpers (durations, sizes);
//! * [`mod@bench`]: the load generator (`netloop bench`).
#![deny(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "tools")]
pub mod apps;
#[cfg(feature = "tools")]
pub mod bench;
#[cfg(feature = "tools")]
pub mod cli;
#[cfg(feature = "tools")]
pub mod client;
pub mod codec;
pub mod error;
pub mod framed;
pub mod metrics;
pub mod reactor;
pub mod timer;

// The connection and the listen/connect code are part of the loop's core
// (`reactor/`); these paths stay for code written against them.
pub use reactor::{conn, net};

pub use bytes::{Bytes, BytesMut};
pub use conn::state::State;
pub use error::{ErrorCode, NetError, WriteError};
pub use reactor::config::{ConnectOptions, ListenOptions, SocketOptions};
pub use reactor::token::{ConnId, ServerId};
pub use reactor::{Cx, Exit, Reactor, Remote, Service, ServiceId, TimerId};
