//! The clients of the `netloop` binary: the interactive line client
//! (`netloop connect`, the tutorial's `05-interactive-client.js`) and the
//! half-close demo client (`netloop halfclose`, the tutorial's
//! `08-half-close.js`), both on our own loop.

pub mod auth;
pub mod backoff;
pub mod editor;
pub mod framed;
pub mod halfclose;
pub mod heartbeat;
pub mod interactive;
pub mod reconnect;
pub mod server_lines;
pub mod stdin;
pub mod stdin_lines;
pub mod upload;

use crate::{Exit, Reactor};
use std::process::ExitCode;
use std::time::Duration;

/// How long SIGINT/SIGTERM leave a client to say goodbye before the loop
/// stops anyway.
pub const SIGNAL_GRACE: Duration = Duration::from_secs(1);

/// Whether a client's loop handles SIGINT/SIGTERM itself (`on_shutdown`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Signals {
    /// Default dispositions: a signal kills the process.
    Default,
    /// Handled on the loop; failing to install them is reported and ignored.
    Handled,
    /// Handled on the loop; failing to install them is fatal.
    Required,
}

/// A new event loop for a client, or the exit status once the reason was
/// printed on stderr. The one place every client (`connect`, `halfclose`,
/// `framed`, `heartbeat`, `upload`) creates its loop.
pub fn new_loop(signals: Signals) -> Result<Reactor, ExitCode> {
    let mut r = Reactor::new()
        .map_err(|e| crate::error::fatal(format_args!("cannot create the event loop: {e}")))?;
    if signals != Signals::Default {
        if let Err(e) = r.handle_signals(SIGNAL_GRACE) {
            if signals == Signals::Required {
                return Err(crate::error::fatal(format_args!(
                    "cannot install signal handlers: {e}"
                )));
            }
            eprintln!("warning: cannot install signal handlers: {e}");
        }
    }
    Ok(r)
}

/// Run the services on `r` until the loop ends; a loop failure is printed
/// and becomes the exit status.
pub fn run_loop(r: &mut Reactor) -> Result<Exit, ExitCode> {
    r.run()
        .map_err(|e| crate::error::fatal(format_args!("event loop failed: {e}")))
}
