//! `--token FILE`: access control of the servers that support it, serving a
//! service behind an [`AuthGuard`] when a token is configured, and the same
//! option on the clients ([`ClientAuthArgs`]: `connect`, `framed`,
//! `heartbeat`, `upload`), which send the token the server expects.

use crate::cli::serve::{serve_service, ServerArgs};
use crate::protocol::auth::{Token, TOKEN_ENV};
use crate::protocol::catalog::Catalog;
use crate::servers::auth_guard::{AuthGuard, AuthWire};
use crate::workers::Worker;
use crate::Service;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

/// The token option.
#[derive(Args, Clone, Debug, Default)]
pub struct AuthArgs {
    /// Require clients to authenticate with the token in FILE (one trailing
    /// newline is ignored; at most 4 KiB). Without it, the NETLOOP_TOKEN
    /// environment variable is used if set; otherwise anyone may connect.
    #[arg(long, value_name = "FILE")]
    pub token: Option<PathBuf>,
}

impl AuthArgs {
    /// The configured token, or `None` (access control off); the error is
    /// printed as one line (without the token).
    pub fn load(&self) -> Result<Option<Token>, ExitCode> {
        load_token(self.token.as_deref())
    }
}

/// The token option of the clients: the token a client presents.
#[derive(Args, Clone, Debug, Default)]
pub struct ClientAuthArgs {
    /// Authenticate with the token in FILE (one trailing newline is ignored;
    /// at most 4 KiB). Without it, the NETLOOP_TOKEN environment variable is
    /// used if set.
    #[arg(long, value_name = "FILE")]
    pub token: Option<PathBuf>,
}

impl ClientAuthArgs {
    /// The token to present, or `None`; the error is printed as one line on
    /// stderr (without the token).
    pub fn load(&self) -> Result<Option<Token>, ExitCode> {
        load_token(self.token.as_deref())
    }
}

/// `--token FILE`, else `NETLOOP_TOKEN`, else none; a bad one is one line on
/// stderr naming where it came from (never the token) and the failure status.
fn load_token(file: Option<&std::path::Path>) -> Result<Option<Token>, ExitCode> {
    Token::configured(file).map_err(|e| match file {
        Some(p) => crate::cli::fatal(format_args!("--token {}: {e}", p.display())),
        None => crate::cli::fatal(format_args!("{TOKEN_ENV}: {e}")),
    })
}

/// [`serve_service`] `service`, behind an [`AuthGuard`] speaking `wire` when
/// a token is configured, on its own otherwise.
pub fn serve_guarded<S: Service>(
    common: &ServerArgs,
    auth: &AuthArgs,
    wire: AuthWire,
    cat: Catalog,
    make: impl Fn(Worker) -> S + Sync,
) -> ExitCode {
    match auth.load() {
        Err(code) => code,
        Ok(None) => serve_service(common, make),
        Ok(Some(token)) => serve_service(common, |w| {
            AuthGuard::new(make(w), token.clone(), wire, cat)
        }),
    }
}
