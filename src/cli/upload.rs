//! `netloop serve upload`: prepare and lock the upload directory, then
//! serve [`crate::servers::upload::server::Upload`].

use crate::cli::serve::{serve_service, ServerArgs};
use crate::protocol::auth::Token;
use crate::servers::upload::server::{Upload, UploadConfig, DEFAULT_IDLE_TIMEOUT};
use crate::servers::upload::worker::claim_dir;
use std::path::PathBuf;
use std::process::ExitCode;

/// `netloop serve upload`: check the directory (creating its last component
/// if missing, see [`crate::servers::upload::dir::prepare`]), default the idle timeout
/// to [`DEFAULT_IDLE_TIMEOUT`], serve.
pub fn serve_upload(
    mut args: ServerArgs,
    dir: PathBuf,
    max_file_size: u64,
    token: Option<Token>,
) -> ExitCode {
    match crate::servers::upload::dir::prepare(&dir) {
        Ok(crate::servers::upload::dir::Prepared::Existing) => {}
        Ok(crate::servers::upload::dir::Prepared::Created) => {
            log::warn!("created the upload directory {}", dir.display());
        }
        Err(e) => return crate::error::fatal(format_args!("--upload-dir {}: {e}", dir.display())),
    }
    // Held until serve() returns, i.e. for the life of the server.
    let _lock = match claim_dir(&dir) {
        Ok((lock, removed)) => {
            if removed > 0 {
                log::info!("removed {removed} temporary file(s) left by an earlier run");
            }
            lock
        }
        Err(e) => {
            log::error!("cannot use the upload directory {}: {e}", dir.display());
            return ExitCode::FAILURE;
        }
    };
    if args.idle_timeout.is_none() {
        args.idle_timeout = Some(DEFAULT_IDLE_TIMEOUT);
    }
    serve_service(&args, |_| {
        let mut cfg = UploadConfig::new(dir.clone());
        cfg.max_file_size = max_file_size;
        cfg.token = token.clone();
        Upload::new(cfg)
    })
}
