//! `netloop serve echo`: a raw byte echo with pipe semantics.
//!
//! Every byte read is written back unchanged. The echo is a pipe from a
//! connection to itself, so it applies the pipe's backpressure rule: when
//! `write()` reports the queue at the high-water mark, reading from that
//! connection pauses until `drain`. A client that writes without reading
//! therefore fills its own socket buffers and is slowed by TCP flow control;
//! the server holds at most about one high-water mark plus one read
//! (`READ_CHUNK`, 256 KiB) of its data, and nothing is lost once the client
//! reads.
//!
//! With an idle timeout, a silent connection is ended (flush, FIN); if it is
//! still there one more timeout later, it is destroyed.

use crate::reactor::{Handler, Reactor};
use crate::{ConnId, ServerId};
use bytes::BytesMut;

/// The echo handler.
#[derive(Debug, Default)]
pub struct Echo;

impl Handler for Echo {
    fn on_listening(&mut self, _r: &mut Reactor, _s: ServerId, addr: std::net::SocketAddr) {
        log::info!("echo server listening on {addr}");
    }

    fn on_data(&mut self, r: &mut Reactor, conn: ConnId, data: &mut BytesMut) {
        // Straight from the read buffer: the kernel usually takes it all, and
        // the emptied buffer goes back to the loop for the next read, so a
        // small echo allocates nothing (a large unsent rest is handed over
        // without a copy).
        match r.write_from(conn, data) {
            Ok(true) => {}
            Ok(false) => r.pause(conn),
            // Ended (shutdown, or our own end after idle): nothing more is
            // echoed; the bytes are dropped, as Node's pipe would after end.
            Err(_) => {}
        }
    }

    fn on_drain(&mut self, r: &mut Reactor, conn: ConnId) {
        r.resume(conn);
    }

    fn on_timeout(&mut self, r: &mut Reactor, conn: ConnId) {
        if r.is_writable(conn) {
            log::debug!("{conn} idle: ending");
            let _ = r.end(conn);
            // The timeout is one-shot until activity and our FIN is none: re-arm it, or a
            // peer that never answers the FIN is kept forever (tests/regressions.rs).
            let after = r.idle_timeout(conn);
            r.set_idle_timeout(conn, after);
        } else {
            log::debug!("{conn} idle after end: destroying");
            r.destroy(conn);
        }
    }
}
