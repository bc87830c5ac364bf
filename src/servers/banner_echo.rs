//! `netloop serve echo --banner`: the seed's first server (program 01).
//!
//! On accept the welcome line; then every received line comes back with the
//! prefix (`Server received: `, zh `服务器收到: `). The seed answered per read
//! chunk and decoded each chunk on its own, so a character split between two
//! segments came back as two replies with U+FFFD; here the input is cut into
//! lines first ([`Framed`] over a [`LineDecoder`]) and decoded whole. Peer
//! text is sanitised, so an echo is always one line. A reply that reaches the
//! high-water mark pauses reading until the connection drains (the pipe rule,
//! [`crate::Reactor::pipe_write`]), so a peer that sends without reading
//! cannot grow our memory. Plain `serve echo` stays the raw byte echo
//! ([`super::echo`]) with its copy-free hot path; this is a separate service.

use crate::codec::lines::{LineDecoder, LineError};
use crate::framed::{Flow, Framed};
use crate::protocol::catalog::Catalog;
use crate::protocol::text::sanitize;
use crate::{ConnId, Cx, Reactor, ServerId, Service};
use bytes::BytesMut;

/// The banner echo service.
#[derive(Debug)]
pub struct BannerEcho {
    cat: Catalog,
    max_line: usize,
}

impl BannerEcho {
    /// A server speaking `cat`'s language, with lines of at most `max_line` bytes.
    pub fn new(cat: Catalog, max_line: usize) -> BannerEcho {
        BannerEcho { cat, max_line }
    }
}

/// The line servers' answer to a line that cannot be used: a line that is
/// not UTF-8 gets the catalogue's error line and the next line is read; an
/// overlong line gets its error line and the connection is ended (decoding
/// then stops by itself, as the connection no longer accepts writes).
pub(crate) fn answer_line_error(r: &mut Reactor, conn: ConnId, cat: &Catalog, err: LineError) {
    match err {
        LineError::InvalidUtf8 => {
            log::debug!("{conn} invalid UTF-8 line skipped");
            let _ = r.write(conn, cat.invalid_utf8());
        }
        LineError::TooLong { max } => {
            log::info!("{conn} line longer than {max} bytes: closing");
            let _ = r.end_with(conn, cat.line_too_long(max));
        }
    }
}

impl Service for BannerEcho {
    /// The connection's line framing.
    type Conn = Framed<LineDecoder>;
    /// No timers.
    type Tag = ();
    /// Nothing is posted to it.
    type Message = ();

    fn name(&self) -> &'static str {
        "echo-banner"
    }

    fn on_listening(&mut self, _: &mut Cx<'_, Self>, _: ServerId, addr: std::net::SocketAddr) {
        log::info!(
            "banner echo server listening on {addr} (lang {})",
            self.cat.lang
        );
    }

    fn on_connection(
        &mut self,
        cx: &mut Cx<'_, Self>,
        _: ServerId,
        conn: ConnId,
    ) -> Option<Framed<LineDecoder>> {
        let _ = cx.write(conn, self.cat.banner_welcome());
        Some(Framed::new(LineDecoder::new(self.max_line)))
    }

    fn on_data(
        &mut self,
        cx: &mut Cx<'_, Self>,
        conn: ConnId,
        lines: &mut Framed<LineDecoder>,
        data: &mut BytesMut,
    ) {
        let cat = self.cat;
        lines.decode_all(cx, conn, data, |cx, line| {
            match line {
                // At the high-water mark reading pauses until the drain,
                // which also stops decoding until then.
                Ok(text) => {
                    let _ = cx.pipe_write(conn, conn, cat.banner_echo(&sanitize(&text)));
                }
                Err(e) => answer_line_error(cx, conn, &cat, e),
            }
            Flow::Continue
        });
    }

    fn on_end(&mut self, cx: &mut Cx<'_, Self>, conn: ConnId, lines: &mut Framed<LineDecoder>) {
        // The last line may lack its terminator. Nothing more will be read,
        // so the replies are queued without pausing.
        let mut rest = cx.take_unread(conn);
        let cat = self.cat;
        lines.decode_eof(cx, conn, &mut rest, |cx, line| {
            match line {
                Ok(text) => {
                    let _ = cx.write(conn, cat.banner_echo(&sanitize(&text)));
                }
                Err(e) => answer_line_error(cx, conn, &cat, e),
            }
            Flow::Continue
        });
    }

    fn on_timeout(&mut self, cx: &mut Cx<'_, Self>, conn: ConnId, _: &mut Framed<LineDecoder>) {
        if cx.is_writable(conn) {
            let _ = cx.end(conn);
        } else {
            cx.destroy(conn);
        }
    }
}
