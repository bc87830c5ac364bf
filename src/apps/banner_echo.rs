//! `netloop serve echo --banner`: the seed's first server (program 01).
//!
//! On accept the welcome line; then every received line comes back with the
//! prefix (`Server received: `, zh `服务器收到: `). The seed answered per read
//! chunk and decoded each chunk on its own, so a character split between two
//! segments came back as two replies with U+FFFD (D1.1); here the input is cut
//! into lines first and decoded whole. Peer text is sanitised, so an echo is
//! always one line. A reply that reaches the high-water mark pauses reading
//! until `drain` (D-X1). Plain `serve echo` stays the raw byte echo
//! ([`super::echo`]) with its copy-free hot path; this is a separate handler.

use super::catalog::Catalog;
use super::lines::LineReader;
use super::text::sanitize;
use crate::{ConnId, Handler, Reactor, ServerId};
use bytes::BytesMut;
use std::collections::HashMap;

/// The banner echo handler.
#[derive(Debug)]
pub struct BannerEcho {
    cat: Catalog,
    max_line: usize,
    readers: HashMap<ConnId, LineReader>,
}

impl BannerEcho {
    /// A server speaking `cat`'s language, with lines of at most `max_line` bytes.
    pub fn new(cat: Catalog, max_line: usize) -> BannerEcho {
        BannerEcho {
            cat,
            max_line,
            readers: HashMap::new(),
        }
    }

    fn reply(&self, r: &mut Reactor, conn: ConnId, text: &str) {
        if r.write(conn, self.cat.banner_echo(&sanitize(text))) == Ok(false) {
            r.pause(conn);
        }
    }
}

impl Handler for BannerEcho {
    fn on_listening(&mut self, _r: &mut Reactor, _s: ServerId, addr: std::net::SocketAddr) {
        log::info!(
            "banner echo server listening on {addr} (lang {})",
            self.cat.lang
        );
    }

    fn on_connection(&mut self, r: &mut Reactor, _s: ServerId, conn: ConnId) {
        self.readers.insert(conn, LineReader::new(self.max_line));
        let _ = r.write(conn, self.cat.banner_welcome());
    }

    fn on_data(&mut self, r: &mut Reactor, conn: ConnId, data: &mut BytesMut) {
        let cat = self.cat;
        loop {
            if !r.is_writable(conn) {
                data.clear();
                return;
            }
            if r.is_paused(conn) {
                return;
            }
            let Some(reader) = self.readers.get_mut(&conn) else {
                data.clear();
                return;
            };
            let Some(line) = reader.next(r, conn, data, &cat) else {
                return;
            };
            self.reply(r, conn, &line.text);
        }
    }

    fn on_end(&mut self, r: &mut Reactor, conn: ConnId) {
        let mut rest = r.take_unread(conn);
        let cat = self.cat;
        while r.is_writable(conn) {
            let Some(reader) = self.readers.get_mut(&conn) else {
                return;
            };
            let Some(line) = reader.finish(r, conn, &mut rest, &cat) else {
                return;
            };
            self.reply(r, conn, &line.text);
        }
    }

    fn on_drain(&mut self, r: &mut Reactor, conn: ConnId) {
        r.resume(conn);
    }

    fn on_timeout(&mut self, r: &mut Reactor, conn: ConnId) {
        if r.is_writable(conn) {
            let _ = r.end(conn);
        } else {
            r.destroy(conn);
        }
    }

    fn on_close(&mut self, _r: &mut Reactor, conn: ConnId, _had_error: bool) {
        self.readers.remove(&conn);
    }
}
