//! Delivery order on the read side: every byte that arrived before the
//! peer's FIN reaches `data` before `end`, whatever the application did with
//! pause, resume and drain in between; bytes left in the buffer by a paused
//! application are handed over again after `resume`, also when the resume
//! happens inside the same `data` callback.
//!
//! The bytes and the FIN are made to wait in the kernel together: the
//! handler pauses each connection as it is accepted, the client sends its
//! requests and shuts down its write side, and only then is the connection
//! resumed (a message to the loop). The first read then finds requests and
//! FIN at once, the situation where a FIN could overtake buffered requests.

use crate::util;
use netloop::Remote;
use netloop::{BytesMut, ConnId, Cx, ListenOptions, ServerId, Service, SocketOptions, TimerId};
use proptest::prelude::*;
use std::io::{Read, Write};
use std::net::Shutdown;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use util::{connect, ServiceLoop};

/// What the handler does after answering one request.
#[derive(Copy, Clone, Debug)]
enum Act {
    /// Go on with the next request; pause only if `write()` said false, and
    /// resume on `drain` (Node's pipe idiom).
    Go,
    /// Pause, resume from an immediate (`setImmediate`).
    PauseImmediate,
    /// Pause, resume from a 1 ms timer.
    PauseTimer,
    /// Pause and resume inside the same `data` callback, leaving the rest.
    PauseInline,
}

fn act() -> impl Strategy<Value = Act> {
    prop_oneof![
        Just(Act::Go),
        Just(Act::PauseImmediate),
        Just(Act::PauseTimer),
        Just(Act::PauseInline),
    ]
}

/// What the handler saw, for the test thread.
#[derive(Default, Debug)]
struct Seen {
    /// Requests answered when `end` came (`None`: no `end` yet).
    served_at_end: Option<usize>,
    /// Bytes still unread at `end`.
    unread_at_end: usize,
    /// A request arrived out of order or malformed.
    bad: Option<String>,
}

/// Answers `req N ...\n` with `ok N\n`, one request at a time, acting on the
/// schedule after each.
struct Stepper {
    acts: Vec<Act>,
    served: usize,
    conn: Option<ConnId>,
    waiting_drain: bool,
    seen: Arc<Mutex<Seen>>,
    /// Where `on_start` sends the handle the test posts [`Go`] through.
    remote: std::sync::mpsc::Sender<Remote<Go>>,
}

/// Posted by the test once its requests and FIN are sent.
struct Go;

impl Service for Stepper {
    type Conn = ();
    /// The immediate and the timer that resume: both just resume.
    type Tag = ();
    type Message = Go;

    fn on_start(&mut self, cx: &mut Cx<Self>) {
        self.remote.send(cx.remote()).expect("send remote");
    }

    fn on_connection(&mut self, r: &mut Cx<Self>, _s: ServerId, c: ConnId) -> Option<()> {
        r.pause(c);
        self.conn = Some(c);
        Some(())
    }

    fn on_message(&mut self, r: &mut Cx<Self>, _: Go) {
        if let Some(c) = self.conn {
            r.resume(c);
        }
    }

    fn on_data(&mut self, r: &mut Cx<Self>, c: ConnId, _: &mut (), data: &mut BytesMut) {
        loop {
            if r.is_paused(c) {
                return;
            }
            let Some(nl) = data.iter().position(|&b| b == b'\n') else {
                return;
            };
            let line = data.split_to(nl + 1);
            let want = format!("req {} ", self.served);
            if !line.starts_with(want.as_bytes()) {
                self.seen.lock().unwrap().bad = Some(String::from_utf8_lossy(&line).into());
                r.destroy(c);
                return;
            }
            let ok = r.write(c, format!("ok {}\n", self.served)).unwrap_or(false);
            let act = self.acts[self.served % self.acts.len()];
            self.served += 1;
            match act {
                Act::Go if ok => {}
                Act::Go => {
                    r.pause(c);
                    self.waiting_drain = true;
                }
                Act::PauseImmediate => {
                    r.pause(c);
                    r.set_immediate(());
                }
                Act::PauseTimer => {
                    r.pause(c);
                    r.set_timeout(Duration::from_millis(1), ());
                }
                Act::PauseInline => {
                    r.pause(c);
                    r.resume(c);
                    // The rest stays in `data`: it must come back.
                    return;
                }
            }
        }
    }

    fn on_drain(&mut self, r: &mut Cx<Self>, c: ConnId, _: &mut ()) {
        if std::mem::take(&mut self.waiting_drain) {
            r.resume(c);
        }
    }

    fn on_immediate(&mut self, r: &mut Cx<Self>, _tag: ()) {
        if let Some(c) = self.conn {
            r.resume(c);
        }
    }

    fn on_timer(&mut self, r: &mut Cx<Self>, _t: TimerId, _tag: ()) {
        if let Some(c) = self.conn {
            r.resume(c);
        }
    }

    fn on_end(&mut self, r: &mut Cx<Self>, c: ConnId, _: &mut ()) {
        let mut seen = self.seen.lock().unwrap();
        seen.served_at_end = Some(self.served);
        seen.unread_at_end = r.take_unread(c).len();
    }
}

/// Requests `req 0 <pad>\n` .. `req n-1 <pad>\n`, padded to about `size`.
fn requests(n: usize, size: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..n {
        let head = format!("req {i} ");
        out.extend_from_slice(head.as_bytes());
        out.extend(std::iter::repeat_n(
            b'x',
            size.saturating_sub(head.len() + 1),
        ));
        out.push(b'\n');
    }
    out
}

fn expected_replies(n: usize) -> Vec<u8> {
    (0..n)
        .flat_map(|i| format!("ok {i}\n").into_bytes())
        .collect()
}

/// Run one schedule: `n` requests of about `size` bytes, high-water mark
/// `hwm`; with `fin`, the client half-closes after its requests and reads to
/// EOF, else it reads exactly the replies. Returns what the server saw.
fn run(n: usize, size: usize, hwm: usize, acts: Vec<Act>, fin: bool) -> (Vec<u8>, Seen) {
    let seen: Arc<Mutex<Seen>> = Default::default();
    let s2 = seen.clone();
    let opts = ListenOptions {
        socket: SocketOptions {
            high_water_mark: hwm,
            ..SocketOptions::default()
        },
        ..ListenOptions::default()
    };
    let (rtx, rrx) = std::sync::mpsc::channel();
    let lp = ServiceLoop::start(opts, move || Stepper {
        acts,
        served: 0,
        conn: None,
        waiting_drain: false,
        seen: s2,
        remote: rtx,
    });
    let go = rrx.recv_timeout(util::TIMEOUT).expect("remote");
    let mut s = connect(lp.addr);
    let reqs = requests(n, size);
    let mut w = s.try_clone().unwrap();
    // On another thread: with large batches the server's replies fill the
    // client's receive buffer before all requests are written.
    let writer = std::thread::spawn(move || {
        w.write_all(&reqs).expect("write requests");
        if fin {
            w.shutdown(Shutdown::Write).expect("shutdown");
        }
    });
    // Requests and FIN now wait in the kernel; let the server read them.
    // (With very large batches the writer may still be sending: then the
    // FIN follows later, which the schedule must survive too.)
    go.post(Go);
    let got = if fin {
        let mut got = Vec::new();
        s.read_to_end(&mut got).expect("read to EOF");
        got
    } else {
        let want = expected_replies(n).len();
        let mut got = vec![0; want];
        s.read_exact(&mut got).expect("all replies");
        got
    };
    writer.join().unwrap();
    drop(lp);
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    (got, seen)
}

fn check(n: usize, got: &[u8], seen: &Seen, fin: bool) {
    assert_eq!(seen.bad, None);
    let want = expected_replies(n);
    assert!(
        got == want.as_slice(),
        "{} of {} reply bytes; last: {:?}",
        got.len(),
        want.len(),
        String::from_utf8_lossy(&got[got.len().saturating_sub(20)..])
    );
    if fin {
        assert_eq!(seen.served_at_end, Some(n), "`end` before the last `data`");
        assert_eq!(seen.unread_at_end, 0);
    }
}

/// The pipe idiom with a FIN in the same batch as 200 requests of 1 KB: a
/// zero high-water mark makes every write report backpressure, so the
/// handler pauses after each request and resumes on `drain`.
#[test]
fn pipelined_requests_and_fin_are_all_answered_before_end() {
    for hwm in [0, 1, 64 * 1024] {
        let (got, seen) = run(200, 1000, hwm, vec![Act::Go], true);
        check(200, &got, &seen, true);
    }
}

/// `resume()` inside the same `data` callback: the bytes the callback left
/// are handed over again, without new bytes or a FIN to wake the
/// connection.
#[test]
fn resume_inside_data_redelivers_the_rest() {
    let (got, seen) = run(50, 40, 64 * 1024, vec![Act::PauseInline], false);
    check(50, &got, &seen, false);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// Generated schedules of pause, resume (immediate, timer, inline) and
    /// drain over request batches with and without a FIN: every request is
    /// answered, in order, and `end` comes after the last one.
    #[test]
    fn every_byte_before_fin_is_delivered_before_end(
        n in 1usize..300,
        size in 8usize..3000,
        hwm in prop_oneof![Just(0usize), Just(1), Just(100), Just(4096), Just(65536)],
        acts in proptest::collection::vec(act(), 1..8),
        fin in any::<bool>(),
    ) {
        let (got, seen) = run(n, size, hwm, acts, fin);
        check(n, &got, &seen, fin);
    }
}
