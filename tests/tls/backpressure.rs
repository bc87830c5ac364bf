//! Backpressure over TLS: plaintext written before the handshake is done
//! counts toward the high-water mark (`write()` returns false, the buffer
//! size shows it), and `drain` follows once the client has read it.

use crate::common::*;
use crate::util::{TestLoop, TIMEOUT};
use netloop::{ConnId, Cx, ListenOptions, ServerId, Service, SocketOptions};
use std::io::Read;
use std::sync::mpsc;

const HWM: usize = 64 * 1024;
const BURST: usize = 3 * HWM;

/// On connection, writes `BURST` bytes at once (before the handshake);
/// reports what `write()` returned, the buffer size, and the `drain`.
struct Burst(mpsc::Sender<String>);

impl Service for Burst {
    type Conn = ();
    type Tag = ();
    type Message = ();
    fn on_connection(&mut self, cx: &mut Cx<'_, Self>, _: ServerId, c: ConnId) -> Option<()> {
        let below = cx.write(c, vec![7u8; BURST]);
        let _ = self
            .0
            .send(format!("write {below:?} size {}", cx.buffer_size(c)));
        let _ = self
            .0
            .send(format!("established {:?}", cx.tls_established(c)));
        Some(())
    }
    fn on_data(&mut self, _: &mut Cx<'_, Self>, _: ConnId, _: &mut (), d: &mut netloop::BytesMut) {
        d.clear();
    }
    fn on_drain(&mut self, cx: &mut Cx<'_, Self>, c: ConnId, _: &mut ()) {
        let _ = self.0.send(format!("drain size {}", cx.buffer_size(c)));
        let _ = cx.end(c);
    }
}

#[test]
fn held_plaintext_counts_and_drain_follows() {
    let certs = Certs::new("backpressure");
    let (tx, rx) = mpsc::channel();
    let opts = ListenOptions {
        tls: Some(certs.server_tls()),
        socket: SocketOptions {
            high_water_mark: HWM,
            ..SocketOptions::default()
        },
        ..ListenOptions::default()
    };
    let srv = TestLoop::start(opts, move || Burst(tx));
    let mut s = tls_connect(srv.addr, &certs);
    assert_eq!(
        rx.recv_timeout(TIMEOUT).unwrap(),
        format!("write Ok(false) size {BURST}")
    );
    assert_eq!(rx.recv_timeout(TIMEOUT).unwrap(), "established Some(false)");
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    while got.len() < BURST {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
    assert!(got.iter().all(|&b| b == 7));
    let drain = rx.recv_timeout(TIMEOUT).unwrap();
    let size: usize = drain.trim_start_matches("drain size ").parse().unwrap();
    assert!(size < HWM / 2, "{drain}");
    // end() after drain: close_notify arrives.
    assert_eq!(read_to_close_notify(&mut s).unwrap(), b"");
}
