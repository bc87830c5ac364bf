//! netloop: a single-threaded mio reactor modelled on Node.js `net`.
//!
//! * [`reactor`]: the event loop (phases, ready list, tokens, timers, signals);
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

pub mod apps;
pub mod bench;
pub mod cli;
pub mod client;
pub mod codec;
pub mod conn;
pub mod framed;
pub mod metrics;
pub mod net;
pub mod reactor;
pub mod timer;

pub use bytes::{Bytes, BytesMut};
pub use conn::state::State;
pub use net::error::{ErrorCode, NetError, WriteError};
pub use reactor::config::{ConnectOptions, ListenOptions, SocketOptions};
pub use reactor::token::{ConnId, ServerId};
pub use reactor::{Cx, Exit, Handler, Reactor, Remote, Service, ServiceId, TimerId};
