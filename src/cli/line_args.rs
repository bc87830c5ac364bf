//! Options of the line-protocol servers (`serve command|chat|halfclose`,
//! `serve echo --banner`).

use crate::cli::units::{format_size, parse_size};
use crate::codec::lines::DEFAULT_MAX_LINE;
use crate::protocol::catalog::{Catalog, Lang};
use clap::Args;

/// Language and line limit.
#[derive(Args, Clone, Debug)]
pub struct LineArgs {
    /// Language of the server's messages: en, or zh (the seed's strings, byte for byte).
    #[arg(long, value_enum, default_value_t = Lang::En)]
    pub lang: Lang,
    /// Longest accepted line (terminator excluded); a longer one gets an error line and the
    /// connection is closed.
    #[arg(long, value_parser = parse_size, default_value = format_size(DEFAULT_MAX_LINE))]
    pub max_line: usize,
}

/// Language only: the framed JSON server (its frame limit is its own option).
#[derive(Args, Clone, Debug)]
pub struct LangArgs {
    /// Language of the server's message texts: en, or zh (the seed's strings where it had them).
    #[arg(long, value_enum, default_value_t = Lang::En)]
    pub lang: Lang,
}

impl LineArgs {
    /// The message catalogue for `--lang`.
    pub fn catalog(&self) -> Catalog {
        Catalog::new(self.lang)
    }
}
