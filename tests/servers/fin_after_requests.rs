//! Every service that answers requests answers all of a pipelined batch
//! that arrives together with the client's FIN.
//!
//! The server process is stopped (SIGSTOP) while the client connects, sends
//! its batch and shuts down its write side, then continued (SIGCONT): the
//! first read finds requests and FIN waiting together, the situation in
//! which a FIN acted on too early would close the connection with requests
//! still in the read buffer. The client then reads to EOF and counts the
//! answers.

use crate::util;
use std::io::{Read, Write};
use std::net::Shutdown;
use std::time::Duration;
use util::*;

/// Requests per batch: about 100 to 200 KB, more than one read's worth for
/// some services, so pausing on backpressure happens mid-batch.
const N: usize = 200;

/// Start `args`, stop it, send `batch` and FIN, continue it, and return
/// everything the server sent until EOF.
fn batch_with_fin(args: &[&str], batch: Vec<u8>) -> Vec<u8> {
    let srv = Server::start(args);
    srv.signal("STOP");
    let mut s = connect(srv.addr);
    let mut w = s.try_clone().expect("clone");
    // On its own thread: a batch larger than the socket buffers blocks
    // until the server runs again.
    let writer = std::thread::spawn(move || {
        w.write_all(&batch).expect("send batch");
        w.shutdown(Shutdown::Write).expect("shutdown");
    });
    // Give the writer the chance to put batch and FIN in the kernel before
    // the server runs; the property must hold either way.
    let t0 = std::time::Instant::now();
    while !writer.is_finished() && t0.elapsed() < Duration::from_millis(500) {
        std::thread::sleep(Duration::from_millis(5));
    }
    srv.signal("CONT");
    let mut got = Vec::new();
    s.read_to_end(&mut got).expect("read to EOF");
    writer.join().expect("writer");
    got
}

fn count(hay: &[u8], needle: &str) -> usize {
    let n = needle.as_bytes();
    hay.windows(n.len()).filter(|w| *w == n).count()
}

fn pad(i: usize) -> String {
    format!("{i:04}-{}", "p".repeat(480))
}

#[test]
fn framed_answers_every_echo_before_closing() {
    let mut batch = Vec::new();
    for i in 0..N {
        let body = serde_json::json!({"type": "echo", "data": pad(i)}).to_string();
        batch.extend_from_slice(&(body.len() as u32).to_be_bytes());
        batch.extend_from_slice(body.as_bytes());
    }
    let got = batch_with_fin(&["serve", "framed", "--port", "0"], batch);
    assert_eq!(count(&got, "\"echo_response\""), N, "echo replies");
}

#[test]
fn heartbeat_answers_every_message_before_closing() {
    let mut batch = Vec::new();
    for i in 0..N {
        let line = serde_json::json!({"type": "hello", "n": pad(i)}).to_string();
        batch.extend_from_slice(line.as_bytes());
        batch.push(b'\n');
    }
    let got = batch_with_fin(&["serve", "heartbeat", "--port", "0"], batch);
    assert_eq!(count(&got, "\"type\":\"echo\""), N, "echo replies");
}

#[test]
fn command_answers_every_line_before_closing() {
    let batch: String = (0..N).map(|i| format!("{}\n", pad(i))).collect();
    let got = batch_with_fin(&["serve", "command", "--port", "0"], batch.into_bytes());
    assert_eq!(count(&got, "Echo: "), N, "echo replies");
    assert!(got.ends_with(format!("Echo: {}\n", pad(N - 1)).as_bytes()));
}

#[test]
fn banner_echo_answers_every_line_before_closing() {
    let batch: String = (0..N).map(|i| format!("{}\n", pad(i))).collect();
    let got = batch_with_fin(
        &["serve", "echo", "--port", "0", "--banner"],
        batch.into_bytes(),
    );
    assert_eq!(count(&got, "-pppp"), N, "echoed lines");
    assert!(count(&got, &pad(N - 1)) == 1, "the last line came back");
}

#[test]
fn chat_answers_every_command_before_closing() {
    let batch: String = (0..N).map(|i| format!("/w nobody{i} hi\n")).collect();
    let got = batch_with_fin(&["serve", "chat", "--port", "0"], batch.into_bytes());
    for i in [0, N / 2, N - 1] {
        assert_eq!(
            count(&got, &format!("nobody{i}\"")),
            1,
            "reply to request {i}"
        );
    }
    assert_eq!(count(&got, "nobody"), N, "one reply per whisper");
}

#[test]
fn upload_stores_every_file_before_closing() {
    let dir = std::env::temp_dir().join(format!("netloop-finbatch-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("upload dir");
    const FILES: usize = 40;
    let mut batch = Vec::new();
    for i in 0..FILES {
        let body = pad(i).into_bytes();
        batch.extend_from_slice(
            format!(
                "Filename: f{i}.bin\r\nFilesize: {}\r\nContent-Type: application/octet-stream\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        );
        batch.extend_from_slice(&body);
    }
    let d = dir.to_str().expect("utf-8 temp dir");
    let got = batch_with_fin(
        &["serve", "upload", "--port", "0", "--upload-dir", d],
        batch,
    );
    assert_eq!(count(&got, "\"completed\""), FILES, "completed replies");
    for i in 0..FILES {
        let stored = std::fs::read(dir.join(format!("f{i}.bin"))).expect("stored file");
        assert_eq!(stored, pad(i).into_bytes());
    }
    let _ = std::fs::remove_dir_all(&dir);
}
