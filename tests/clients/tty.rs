//! `netloop connect` on a terminal (a pseudo-terminal made by the test): a
//! server line that arrives while the user is typing is printed above the
//! prompt, and the partial input is redrawn after it; the terminal's settings
//! are restored at exit.

use crate::util;
use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
use rustix::termios::{tcgetattr, LocalModes};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use util::{Server, TIMEOUT};

struct Pty {
    master: File,
    out: Arc<Mutex<Vec<u8>>>,
}

impl Pty {
    fn wait_for(&self, needle: &str) {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let text = String::from_utf8_lossy(&self.out.lock().unwrap()).into_owned();
            if text.contains(needle) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no {needle:?} in terminal output:\n{text:?}"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    fn type_keys(&mut self, keys: &[u8]) {
        self.master.write_all(keys).unwrap();
    }
}

#[test]
fn server_lines_do_not_mangle_the_input_line() {
    let srv = Server::start(&["serve", "chat", "--port", "0"]);
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).expect("openpt");
    grantpt(&master).unwrap();
    unlockpt(&master).unwrap();
    let name = ptsname(&master, Vec::new()).unwrap();
    let slave = OpenOptions::new()
        .read(true)
        .write(true)
        .open(name.to_str().unwrap())
        .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_netloop"))
        .args(["connect", &srv.addr.to_string()])
        .stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let master = File::from(master);
    let out = Arc::new(Mutex::new(Vec::new()));
    let mut reader = master.try_clone().unwrap();
    let sink = out.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    let mut pty = Pty { master, out };
    pty.wait_for("Your ID: 1");
    pty.wait_for("[connected] > ");

    // A second member, raw.
    let b = std::net::TcpStream::connect(srv.addr).unwrap();
    b.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut b_w = b.try_clone().unwrap();
    let mut b_r = BufReader::new(b);
    let mut line = String::new();
    while line != "╚══════════════════════════════════╝\n"
    {
        line.clear();
        b_r.read_line(&mut line).unwrap();
    }
    b_r.read_line(&mut line).unwrap();

    pty.type_keys(b"hel");
    pty.wait_for("[connected] > hel");
    b_w.write_all(b"hi there\n").unwrap();
    // Cleared, printed, prompt and the partial input redrawn.
    pty.wait_for("\r\x1b[K[user2]: hi there\r\n[connected] > hel");
    pty.type_keys(b"lo\r");
    line.clear();
    b_r.read_line(&mut line).unwrap();
    assert_eq!(line, "[user1]: hello\n", "the whole line was sent once");
    pty.type_keys(b"/quit\r");
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < deadline, "client did not exit");
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    assert!(status.success());
    let t = tcgetattr(&slave).unwrap();
    assert!(
        t.local_modes
            .contains(LocalModes::ICANON | LocalModes::ECHO),
        "terminal settings restored"
    );
}
