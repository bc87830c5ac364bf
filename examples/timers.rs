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

use netloop::{BytesMut, ConnId, ConnectOptions, Handler, ListenOptions, Reactor, ServerId};
use std::time::Duration;

const NAMES: [&str; 5] = [
    "",
    "main: setTimeout(0)",
    "main: setImmediate",
    "io: setTimeout(0)",
    "io: setImmediate",
];

struct Puzzle;

fn say(r: &Reactor, what: &str) {
    println!("iteration {:>2}: {what}", r.stats().iterations);
}

impl Handler for Puzzle {
    fn on_data(&mut self, _r: &mut Reactor, _c: ConnId, _d: &mut BytesMut) {}
    fn on_connection(&mut self, r: &mut Reactor, server: ServerId, conn: ConnId) {
        say(r, "I/O callback (accept): arms setTimeout(0), setImmediate");
        r.set_timeout(Duration::ZERO, 3);
        r.set_immediate(4);
        r.destroy(conn);
        r.close_server(server);
    }
    fn on_connect(&mut self, r: &mut Reactor, conn: ConnId) {
        r.destroy(conn);
    }
    fn on_timer(&mut self, r: &mut Reactor, _t: netloop::TimerId, tag: u64) {
        say(r, NAMES[tag as usize]);
    }
    fn on_immediate(&mut self, r: &mut Reactor, tag: u64) {
        say(r, NAMES[tag as usize]);
    }
}

fn main() -> std::io::Result<()> {
    let mut r = Reactor::new()?;
    let server = r.listen(ListenOptions::default()).expect("listen");
    let port = r.server_addr(server).map_or(0, |a| a.port());
    r.set_timeout(Duration::ZERO, 1); // either order is legal for these two
    r.set_immediate(2);
    r.connect("127.0.0.1", port, ConnectOptions::default());
    r.run_with(&mut Puzzle)?;
    println!("main: timeout first only if 1 ms passed before the first timers phase.");
    println!("io: immediate first, always: check follows dispatch in that iteration.");
    Ok(())
}
