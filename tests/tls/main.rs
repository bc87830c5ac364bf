//! TLS on every server and client (`src/reactor/tls`, the `--tls*` options,
//! `netloop cert`): our servers with our clients, with clients nobody here
//! wrote (`openssl s_client`, Python's `ssl`), our clients against
//! `openssl s_server`, hostile peers, and certificate problems.
//!
//! Tests that need `openssl` or `python3` print why they skip when it is
//! missing (`.ci/run` installs both).

#[path = "../util/mod.rs"]
mod util;

mod backpressure;
mod certs;
mod common;
mod foreign;
mod hostile;
mod ours;
mod workers;
