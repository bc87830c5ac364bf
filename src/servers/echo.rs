//! `netloop serve echo`: a raw byte echo with pipe semantics.
//!
//! Every byte read is written back unchanged. The echo is a pipe from a
//! connection to itself (Node's `socket.pipe(socket)`), so it applies the
//! pipe's backpressure rule through [`crate::Reactor::pipe_write_from`]:
//! when the write queue reaches the high-water mark, reading from that
//! connection pauses until it drains. A client that writes without reading
//! therefore fills its own socket buffers and is slowed by TCP flow control;
//! the server holds at most about one high-water mark plus one read
//! (`READ_CHUNK`, 256 KiB) of its data, and nothing is lost once the client
//! reads.
//!
//! With an idle timeout, a silent connection is ended (flush, FIN); if it is
//! still there one more timeout later, it is destroyed.

use crate::{ConnId, Cx, ServerId, Service};
use bytes::BytesMut;

/// The echo service. Connections carry no state of their own.
#[derive(Debug, Default)]
pub struct Echo;

impl Service for Echo {
    /// No per-connection state.
    type Conn = ();
    /// No timers: the idle timeout is the connection's own.
    type Tag = ();
    /// Nothing is posted to the echo.
    type Message = ();

    fn name(&self) -> &'static str {
        "echo"
    }

    fn on_listening(&mut self, _: &mut Cx<'_, Self>, _: ServerId, addr: std::net::SocketAddr) {
        log::info!("echo server listening on {addr}");
    }

    fn on_connection(&mut self, _: &mut Cx<'_, Self>, _: ServerId, _: ConnId) -> Option<()> {
        Some(())
    }

    fn on_data(&mut self, cx: &mut Cx<'_, Self>, conn: ConnId, _: &mut (), data: &mut BytesMut) {
        // Straight from the read buffer: the kernel usually takes it all, and
        // the emptied buffer goes back to the loop for the next read, so a
        // small echo allocates nothing (a large unsent rest is handed over
        // without a copy). At the high-water mark reading pauses until the
        // queue drains. An error means the connection is ended (shutdown, or
        // our own end after idle): nothing more is echoed and the bytes are
        // dropped, as Node's pipe would after end.
        let _ = cx.pipe_write_from(conn, conn, data);
    }

    fn on_timeout(&mut self, cx: &mut Cx<'_, Self>, conn: ConnId, _: &mut ()) {
        if cx.is_writable(conn) {
            log::debug!("{conn} idle: ending");
            let _ = cx.end(conn);
            // The idle timeout is one-shot until activity, and our FIN is no
            // activity: re-arm it, or a peer that never answers the FIN is
            // kept forever (tests/reactor/regressions.rs).
            let after = cx.idle_timeout(conn);
            cx.set_idle_timeout(conn, after);
        } else {
            log::debug!("{conn} idle after end: destroying");
            cx.destroy(conn);
        }
    }
}
