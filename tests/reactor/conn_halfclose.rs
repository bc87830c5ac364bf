//! Half-close in both modes, end() flushing, destroy() dropping, and exactly
//! one close(had_error) per connection.

use crate::util;
use netloop::{
    BytesMut, ConnId, Cx, ListenOptions, NetError, ServerId, Service, SocketOptions, TimerId,
};
use std::io::{Read, Write};
use std::net::Shutdown;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use util::*;

type Log = Arc<Mutex<Vec<String>>>;

fn log_of(log: &Log) -> Vec<String> {
    log.lock().unwrap().clone()
}

/// Records events; on `end` it writes "bye\n" (and, if half-open, a late
/// line 50 ms later followed by end()).
struct Recorder {
    log: Log,
    late: Option<ConnId>,
}

impl Service for Recorder {
    type Conn = ();
    type Tag = ();
    type Message = ();
    fn on_connection(&mut self, _r: &mut Cx<Self>, _s: ServerId, _c: ConnId) -> Option<()> {
        self.log.lock().unwrap().push("connection".into());
        Some(())
    }
    fn on_data(&mut self, _r: &mut Cx<Self>, _c: ConnId, _: &mut (), d: &mut BytesMut) {
        let s = String::from_utf8_lossy(&d.split()).to_string();
        self.log.lock().unwrap().push(format!("data:{s}"));
    }
    fn on_end(&mut self, r: &mut Cx<Self>, c: ConnId, _: &mut ()) {
        self.log
            .lock()
            .unwrap()
            .push(format!("end:{}", r.reactor().state(c).unwrap()));
        r.write(c, &b"bye\n"[..]).expect("write in end callback");
        self.late = Some(c);
        r.set_timeout(Duration::from_millis(50), ());
    }
    fn on_timer(&mut self, r: &mut Cx<Self>, _t: TimerId, _tag: ()) {
        let c = self.late.take().unwrap();
        let res = r.write(c, &b"late\n"[..]);
        self.log
            .lock()
            .unwrap()
            .push(format!("late-write:{}", res.is_ok()));
        if res.is_ok() {
            r.end(c).unwrap();
        }
    }
    fn on_error(&mut self, _r: &mut Cx<Self>, _c: ConnId, _: &mut (), e: &NetError) {
        self.log.lock().unwrap().push(format!("error:{}", e.code));
    }
    fn on_close(&mut self, _r: &mut Cx<Self>, _c: ConnId, _: (), had_error: bool) {
        self.log.lock().unwrap().push(format!("close:{had_error}"));
    }
}

fn opts(half_open: bool) -> ListenOptions {
    ListenOptions {
        socket: SocketOptions {
            allow_half_open: half_open,
            ..Default::default()
        },
        ..Default::default()
    }
}

#[test]
fn without_half_open_the_server_ends_after_the_peer_fin() {
    let log: Log = Default::default();
    let l2 = log.clone();
    let lp = TestLoop::start(opts(false), move || Recorder {
        log: l2,
        late: None,
    });
    let mut s = connect(lp.addr);
    s.write_all(b"hi").unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    // The server's reply written in `end`, then its FIN.
    assert_eq!(read_to_end(&mut s), b"bye\n");
    wait_until("close", || {
        log_of(&log).iter().any(|e| e.starts_with("close"))
    });
    let l = log_of(&log);
    assert_eq!(l[0], "connection");
    assert_eq!(l[1], "data:hi");
    assert_eq!(l[2], "end:read-closed");
    // The late write happens after our automatic end: refused, no panic.
    wait_until("late write", || {
        log_of(&log).iter().any(|e| e.starts_with("late-write"))
    });
    let l = log_of(&log);
    assert!(l.contains(&"late-write:false".to_string()), "{l:?}");
    assert_eq!(l.iter().filter(|e| e.starts_with("close")).count(), 1);
    assert!(l.contains(&"close:false".to_string()));
}

#[test]
fn with_half_open_the_server_keeps_writing_after_the_peer_fin() {
    let log: Log = Default::default();
    let l2 = log.clone();
    let lp = TestLoop::start(opts(true), move || Recorder {
        log: l2,
        late: None,
    });
    let mut s = connect(lp.addr);
    s.write_all(b"hi").unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_to_end(&mut s), b"bye\nlate\n");
    wait_until("close", || {
        log_of(&log).iter().any(|e| e.starts_with("close"))
    });
    let l = log_of(&log);
    assert!(l.contains(&"late-write:true".to_string()), "{l:?}");
    assert_eq!(
        l.iter()
            .filter(|e| e.starts_with("close"))
            .collect::<Vec<_>>(),
        ["close:false"]
    );
}

/// Writes `n` bytes on connection, then end() or destroy() at once.
struct Burst {
    n: usize,
    destroy: bool,
    log: Log,
}

impl Service for Burst {
    type Conn = ();
    type Tag = ();
    type Message = ();
    fn on_connection(&mut self, r: &mut Cx<Self>, _s: ServerId, c: ConnId) -> Option<()> {
        let data = random_bytes(self.n, 9);
        let mut ok = true;
        for chunk in data.chunks(64 * 1024) {
            ok = r.write(c, chunk.to_vec()).is_ok();
        }
        self.log
            .lock()
            .unwrap()
            .push(format!("queued:{}:{ok}", r.buffer_size(c)));
        if self.destroy {
            r.destroy(c);
        } else {
            r.end(c).unwrap();
            let again = r.write(c, &b"x"[..]);
            self.log
                .lock()
                .unwrap()
                .push(format!("write-after-end:{again:?}"));
            assert!(r.end(c).is_err(), "second end() must be refused");
        }
        Some(())
    }
    fn on_data(&mut self, _r: &mut Cx<Self>, _c: ConnId, _: &mut (), d: &mut BytesMut) {
        d.clear();
    }
    fn on_close(&mut self, _r: &mut Cx<Self>, _c: ConnId, _: (), had_error: bool) {
        self.log.lock().unwrap().push(format!("close:{had_error}"));
    }
}

fn big_cap() -> ListenOptions {
    ListenOptions {
        socket: SocketOptions {
            max_write_buffer: 64 << 20,
            ..Default::default()
        },
        ..Default::default()
    }
}

#[test]
fn end_delivers_everything_queued_before_the_fin() {
    let log: Log = Default::default();
    let l2 = log.clone();
    let n = 8 << 20;
    let lp = TestLoop::start(big_cap(), move || Burst {
        n,
        destroy: false,
        log: l2,
    });
    let mut s = connect(lp.addr);
    let got = read_to_end(&mut s);
    assert_eq!(got.len(), n);
    assert!(got == random_bytes(n, 9));
    s.shutdown(Shutdown::Write).unwrap();
    wait_until("close", || {
        log_of(&log).iter().any(|e| e.starts_with("close"))
    });
    let l = log_of(&log);
    assert!(
        l.contains(&"write-after-end:Err(AfterEnd)".to_string()),
        "{l:?}"
    );
    assert_eq!(
        l.iter()
            .filter(|e| e.starts_with("close"))
            .collect::<Vec<_>>(),
        ["close:false"]
    );
}

#[test]
fn destroy_drops_what_is_queued() {
    let log: Log = Default::default();
    let l2 = log.clone();
    let n = 32 << 20;
    let lp = TestLoop::start(big_cap(), move || Burst {
        n,
        destroy: true,
        log: l2,
    });
    let mut s = connect(lp.addr);
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got); // EOF or reset, either is fine
    assert!(
        got.len() < n,
        "destroy() should drop queued data, got all {n} bytes"
    );
    wait_until("close", || {
        log_of(&log).iter().any(|e| e.starts_with("close"))
    });
    let l = log_of(&log);
    let queued: usize = l[0].split(':').nth(1).unwrap().parse().unwrap();
    assert!(queued > 0, "{l:?}");
    assert_eq!(
        l.iter()
            .filter(|e| e.starts_with("close"))
            .collect::<Vec<_>>(),
        ["close:false"]
    );
}

/// Keeps writing until the peer resets; counts error and close events.
struct Flood {
    log: Log,
}

impl Service for Flood {
    type Conn = ();
    type Tag = ConnId;
    type Message = ();
    fn on_connection(&mut self, r: &mut Cx<Self>, _s: ServerId, c: ConnId) -> Option<()> {
        r.set_interval(Duration::from_millis(2), c);
        Some(())
    }
    fn on_timer(&mut self, r: &mut Cx<Self>, t: TimerId, c: ConnId) {
        if r.write(c, vec![1u8; 16 * 1024]).is_err() && r.reactor().state(c).is_none() {
            r.clear_timer(t);
        }
    }
    fn on_data(&mut self, _r: &mut Cx<Self>, _c: ConnId, _: &mut (), d: &mut BytesMut) {
        d.clear();
    }
    fn on_error(&mut self, _r: &mut Cx<Self>, _c: ConnId, _: &mut (), e: &NetError) {
        self.log.lock().unwrap().push(format!("error:{}", e.code));
    }
    fn on_close(&mut self, _r: &mut Cx<Self>, _c: ConnId, _: (), had_error: bool) {
        self.log.lock().unwrap().push(format!("close:{had_error}"));
    }
}

#[test]
fn reset_mid_write_gives_error_then_exactly_one_close() {
    let log: Log = Default::default();
    let l2 = log.clone();
    let lp = TestLoop::start(ListenOptions::default(), move || Flood { log: l2 });
    let mut s = connect(lp.addr);
    let mut buf = [0u8; 4096];
    s.read_exact(&mut buf).unwrap();
    // SO_LINGER 0 then close: the kernel sends RST.
    socket2::SockRef::from(&s)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(s);
    wait_until("close", || {
        log_of(&log).iter().any(|e| e.starts_with("close"))
    });
    std::thread::sleep(Duration::from_millis(50));
    let l = log_of(&log);
    assert_eq!(l.len(), 2, "{l:?}");
    assert!(l[0] == "error:ECONNRESET" || l[0] == "error:EPIPE", "{l:?}");
    assert_eq!(l[1], "close:true");
}
