//! The `netloop` command line.

pub mod auth_args;
pub mod line_args;
pub mod serve;
pub mod target;
pub mod units;

/// Report a fatal start-up error as one plain line on stderr, `error: MSG`
/// (no log prefix, the cause said once), and return the failure status.
pub fn fatal(msg: impl std::fmt::Display) -> std::process::ExitCode {
    eprintln!("error: {msg}");
    std::process::ExitCode::FAILURE
}
