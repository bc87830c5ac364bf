//! Node's classic ordering puzzle on our loop: `setTimeout(0)` vs
//! `setImmediate` vs I/O callbacks. Run: `cargo run --example timers`.
//!
//! Armed in the main program, before the loop runs, a 0 ms timeout and an
//! immediate have no fixed order, in Node as here: the timeout is due 1 ms
//! after the loop's cached time, and the first timers phase fires it only if
//! that 1 ms has already passed when the loop starts; otherwise the check
//! phase runs the immediate first. I/O callbacks (dispatch, after poll) run
//! before the check phase of the same iteration. Armed inside an I/O
//! callback, the immediate always comes first: check follows dispatch in the
//! same iteration, timers come only at the start of the next one.

use netloop::{BytesMut, ConnId, ConnectOptions, Cx, ListenOptions, Reactor, ServerId, Service};
use std::time::Duration;

/// Who armed what: the name of each timer and immediate.
#[derive(Copy, Clone)]
enum Armed {
    MainTimeout,
    MainImmediate,
    IoTimeout,
    IoImmediate,
}

impl Armed {
    fn name(self) -> &'static str {
        match self {
            Armed::MainTimeout => "main: setTimeout(0)",
            Armed::MainImmediate => "main: setImmediate",
            Armed::IoTimeout => "io: setTimeout(0)",
            Armed::IoImmediate => "io: setImmediate",
        }
    }
}

struct Puzzle;

fn say(r: &Reactor, what: &str) {
    println!("iteration {:>2}: {what}", r.stats().iterations);
}

impl Service for Puzzle {
    type Conn = (); // no per-connection state
    type Tag = Armed;
    type Message = (); // no messages from other threads
    /// Runs when the service is added, before the loop: the "main program".
    fn on_start(&mut self, cx: &mut Cx<Self>) {
        let server = cx.listen(ListenOptions::default()).expect("listen");
        let port = cx.server_addr(server).map_or(0, |a| a.port());
        cx.set_timeout(Duration::ZERO, Armed::MainTimeout); // either order is legal for these two
        cx.set_immediate(Armed::MainImmediate);
        cx.connect("127.0.0.1", port, ConnectOptions::default(), ());
    }
    fn on_data(&mut self, _: &mut Cx<Self>, _: ConnId, _: &mut (), _: &mut BytesMut) {}
    fn on_connection(&mut self, cx: &mut Cx<Self>, server: ServerId, conn: ConnId) -> Option<()> {
        say(
            cx,
            "I/O callback (accept): arms setTimeout(0), setImmediate",
        );
        cx.set_timeout(Duration::ZERO, Armed::IoTimeout);
        cx.set_immediate(Armed::IoImmediate);
        cx.destroy(conn);
        cx.close_server(server);
        Some(())
    }
    fn on_connect(&mut self, cx: &mut Cx<Self>, conn: ConnId, _: &mut ()) {
        cx.destroy(conn);
    }
    fn on_timer(&mut self, cx: &mut Cx<Self>, _: netloop::TimerId, tag: Armed) {
        say(cx, tag.name());
    }
    fn on_immediate(&mut self, cx: &mut Cx<Self>, tag: Armed) {
        say(cx, tag.name());
    }
}

fn main() -> std::io::Result<()> {
    let mut r = Reactor::new()?;
    r.add_service(Puzzle);
    r.run()?;
    println!("main: timeout first only if 1 ms passed before the first timers phase.");
    println!("io: immediate first, always: check follows dispatch in that iteration.");
    Ok(())
}
