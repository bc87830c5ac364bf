//! The core: connections, backpressure, half-close, timers, the ready list, services.
//!
//! One test binary for `src/reactor`, one module per part: `cargo test
//! --test reactor NAME` runs the tests whose path contains NAME.

#[path = "../util/mod.rs"]
mod util;

mod conn_backpressure;
mod conn_coalesce;
mod conn_cork;
mod conn_delivery;
mod conn_halfclose;
mod conn_idle_timeout;
mod conn_write_from;
mod connect;
mod prefetch;
mod read_short;
mod ready_list;
mod regressions;
mod run_until;
mod server_limits;
mod services;
mod shutdown;
mod slow_callbacks;
mod timers;
