//! `--token FILE`: access control of the servers that support it, serving a
//! handler behind an [`AuthGuard`] when a token is configured, and the same
//! option on the clients ([`ClientAuthArgs`]: `connect`, `framed`,
//! `heartbeat`, `upload`), which send the token the server expects.

use crate::apps::auth::{Token, TOKEN_ENV};
use crate::apps::auth_guard::{AuthGuard, AuthWire};
use crate::apps::catalog::Catalog;
use crate::cli::serve::{serve, ServerArgs};
use crate::Handler;
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
    /// logged, without the token.
    pub fn load(&self) -> Result<Option<Token>, ExitCode> {
        Token::configured(self.token.as_deref()).map_err(|e| {
            match &self.token {
                Some(p) => log::error!("--token {}: {e}", p.display()),
                None => log::error!("{TOKEN_ENV}: {e}"),
            }
            ExitCode::FAILURE
        })
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
        Token::configured(self.token.as_deref()).map_err(|e| {
            match &self.token {
                Some(p) => eprintln!("error: --token {}: {e}", p.display()),
                None => eprintln!("error: {TOKEN_ENV}: {e}"),
            }
            ExitCode::FAILURE
        })
    }
}

/// [`serve`] `handler`, behind an [`AuthGuard`] speaking `wire` when a token
/// is configured, exactly as before otherwise.
pub fn serve_guarded<H: Handler>(
    common: &ServerArgs,
    auth: &AuthArgs,
    wire: AuthWire,
    cat: Catalog,
    handler: H,
) -> ExitCode {
    match auth.load() {
        Err(code) => code,
        Ok(None) => serve(common, handler),
        Ok(Some(token)) => serve(common, AuthGuard::new(handler, token, wire, cat)),
    }
}
