//! netloop: a single-threaded mio reactor modelled on Node.js `net`.
//!
//! Applications are [`Service`]s: a handler per server
//! ([`Reactor::serve`]) or per outbound connection
//! ([`Reactor::connect_with`]), with typed per-connection state, typed timer
//! tags and typed messages ([`Remote`]), run by [`Reactor::run`].
//!
//! Layers, bottom up (each imports only those below it; see
//! `docs/ARCHITECTURE.md`):
//!
//! * [`error`]: Node-style error codes, at the bottom;
//! * [`timer`]: the hierarchical timing wheel (sans-IO);
//! * [`reactor`]: the event loop: phases, tokens, ready list, connections
//!   ([`reactor::conn`]: state machine, write queue), listen/accept/connect
//!   ([`reactor::net`]), services ([`reactor::service`]), loop statistics;
//! * [`codec`]: sans-IO decoders (lines, length-prefixed frames, upload
//!   headers); [`framed`]: a decoder driven over a connection;
//! * [`metrics`]: the loop's figures as JSON, Prometheus text and an HTTP
//!   endpoint;
//!
//! and with the default `tools` feature, the tutorial's programs:
//!
//! * [`protocol`]: what servers and clients share (catalogue, sanitising,
//!   tokens, the heartbeat wire);
//! * [`servers`]: the servers the `netloop` binary runs, each a [`Service`];
//! * [`clients`]: the clients it runs;
//! * [`cli`]: command-line glue; [`mod@bench`]: the load generator.
#![deny(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "tools")]
pub mod bench;
#[cfg(feature = "tools")]
pub mod cli;
#[cfg(feature = "tools")]
pub mod clients;
pub mod codec;
pub mod error;
pub mod framed;
pub mod metrics;
#[cfg(feature = "tools")]
pub mod protocol;
pub mod reactor;
#[cfg(feature = "tools")]
pub mod servers;
pub mod timer;
pub mod workers;

// The connection and the listen/connect code are part of the loop's core
// (`reactor/`); these paths stay for code written against them.
pub use reactor::{conn, net};

pub use bytes::{Bytes, BytesMut};
pub use conn::state::State;
pub use error::{ErrorCode, NetError, WriteError};
pub use reactor::config::{ConnectOptions, ListenOptions, SocketOptions};
pub use reactor::token::{ConnId, ServerId};
pub use reactor::{Cx, Exit, LoopHandle, Reactor, Remote, Service, ServiceId, TimerId};
