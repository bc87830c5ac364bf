//! `netloop upload HOST:PORT FILE...`: the upload client (seed 07, defects fixed).
//!
//! Sends each file in turn on one connection: the header block
//! (`Filename`, `Filesize`, `Content-Type`, CRLF, blank line), then the bytes,
//! read [`CHUNK`] at a time. When `write()` reports the high-water mark the
//! client stops reading the file until `drain`, so the file is never read
//! into memory faster than the network takes it (D7.10: the seed queued the
//! whole file). It then waits for the server's `completed` and checks the
//! size and SHA-256 against what it sent, before the next file (the seed
//! resolved when the file had been *read*). Replies are framed as lines
//! (D7.10: the seed split each chunk).
//!
//! Progress shows what the server confirms written: an indicatif bar on
//! stderr when stderr is a terminal, plain lines on stderr otherwise. Results
//! go to stdout. Any error (refused header, mismatch, early close) makes the
//! exit status non-zero.
//!
//! File reads are plain blocking `read`s of at most [`CHUNK`] bytes on the
//! loop thread: this client has a single connection, so a read that waits on
//! the disk delays nothing else.

use super::worker::hex;
use crate::apps::text::{eprint_line, print_line};
use crate::codec::{parse_message, LineDecoder, DEFAULT_MAX_LINE};
use crate::reactor::{Handler, Reactor};
use crate::{ConnId, ConnectOptions, NetError};
use bytes::{Bytes, BytesMut};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::VecDeque;
use std::fs::File;
use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;

/// Bytes read from the file per write.
pub const CHUNK: usize = 64 * 1024;

struct Sending {
    path: PathBuf,
    file: File,
    size: u64,
    sent: u64,
    hasher: Sha256,
    digest: Option<String>,
    bar: Option<ProgressBar>,
}

/// The client handler.
pub struct UploadClient {
    queue: VecDeque<PathBuf>,
    current: Option<Sending>,
    conn: Option<ConnId>,
    decoder: LineDecoder,
    buf: Vec<u8>,
    tty: bool,
    failed: bool,
    completed: usize,
}

impl std::fmt::Debug for UploadClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UploadClient")
            .field("queue", &self.queue)
            .field("completed", &self.completed)
            .finish()
    }
}

impl UploadClient {
    /// A client that will send `files`.
    pub fn new(files: &[PathBuf]) -> Self {
        UploadClient {
            queue: files.iter().cloned().collect(),
            current: None,
            conn: None,
            decoder: LineDecoder::new(DEFAULT_MAX_LINE),
            buf: vec![0; CHUNK],
            tty: std::io::stderr().is_terminal(),
            failed: false,
            completed: 0,
        }
    }

    /// Did anything fail?
    pub fn failed(&self) -> bool {
        self.failed
    }

    /// Files confirmed by the server.
    pub fn completed(&self) -> usize {
        self.completed
    }

    fn fail(&mut self, r: &mut Reactor, msg: &str) {
        eprint_line(&format!("error: {msg}"));
        self.failed = true;
        if let Some(b) = self.current.take().and_then(|c| c.bar) {
            b.abandon();
        }
        if let Some(c) = self.conn {
            r.destroy(c);
        }
    }

    fn start_next(&mut self, r: &mut Reactor) {
        let Some(conn) = self.conn else { return };
        let Some(path) = self.queue.pop_front() else {
            let _ = r.end(conn);
            return;
        };
        let opened = File::open(&path).and_then(|f| Ok((f.metadata()?.len(), f)));
        let (size, file) = match opened {
            Ok(x) => x,
            Err(e) => return self.fail(r, &format!("{}: {e}", path.display())),
        };
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            return self.fail(r, &format!("{}: not a UTF-8 file name", path.display()));
        };
        let header =
            format!("Filename: {name}\r\nFilesize: {size}\r\nContent-Type: application/octet-stream\r\n\r\n");
        let bar = self.tty.then(|| {
            let b = ProgressBar::with_draw_target(Some(size), ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            ) {
                b.set_style(style.progress_chars("=> "));
            }
            b.set_message(name.to_string());
            b
        });
        self.current = Some(Sending {
            path,
            file,
            size,
            sent: 0,
            hasher: Sha256::new(),
            digest: None,
            bar,
        });
        if r.write(conn, header.into_bytes()).is_err() {
            return self.fail(r, "connection closed");
        }
        self.pump(r);
    }

    /// Send file bytes until the write queue is full or the file is done.
    fn pump(&mut self, r: &mut Reactor) {
        let Some(conn) = self.conn else { return };
        loop {
            let Some(cur) = self.current.as_mut() else {
                return;
            };
            if cur.sent == cur.size {
                if cur.digest.is_none() {
                    cur.digest = Some(hex(&cur.hasher.finalize_reset()));
                }
                return;
            }
            let want = (cur.size - cur.sent).min(CHUNK as u64) as usize;
            let n = match cur.file.read(&mut self.buf[..want]) {
                Ok(0) => {
                    let msg = format!("{}: file shrank while sending", cur.path.display());
                    return self.fail(r, &msg);
                }
                Ok(n) => n,
                Err(e) => {
                    let msg = format!("{}: {e}", cur.path.display());
                    return self.fail(r, &msg);
                }
            };
            let chunk = &self.buf[..n];
            cur.hasher.update(chunk);
            cur.sent += n as u64;
            match r.write(conn, Bytes::copy_from_slice(chunk)) {
                Ok(true) => {}
                Ok(false) => return, // resume on drain
                Err(e) => return self.fail(r, &format!("write failed: {e}")),
            }
        }
    }

    fn on_reply(&mut self, r: &mut Reactor, v: serde_json::Map<String, Value>) {
        let status = v.get("status").and_then(Value::as_str).unwrap_or("");
        let num = |k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
        match status {
            "receiving" => {
                if !self.tty {
                    eprint_line(&format!(
                        "receiving: {} ({} bytes)",
                        v.get("filename").and_then(Value::as_str).unwrap_or("?"),
                        num("total")
                    ));
                }
            }
            "progress" => {
                if let Some(cur) = &self.current {
                    match &cur.bar {
                        Some(b) => b.set_position(num("received")),
                        None => eprintln!(
                            "progress: {}% ({}/{})",
                            num("percentage"),
                            num("received"),
                            num("total")
                        ),
                    }
                }
            }
            "completed" => {
                let Some(cur) = self.current.take() else {
                    return self.fail(r, "unexpected 'completed'");
                };
                if let Some(b) = &cur.bar {
                    b.finish_and_clear();
                }
                let stored = v.get("filename").and_then(Value::as_str).unwrap_or("?");
                let sha = v.get("sha256").and_then(Value::as_str).unwrap_or("");
                let size = num("size");
                let ours = cur.digest.as_deref().unwrap_or("");
                if size != cur.size || sha != ours {
                    let msg = format!(
                        "{}: server stored {size} bytes with sha256 {sha}, we sent {} bytes with sha256 {ours}",
                        cur.path.display(),
                        cur.size
                    );
                    return self.fail(r, &msg);
                }
                print_line(&format!(
                    "uploaded {} as {stored} ({size} bytes, sha256 {sha})",
                    cur.path.display()
                ));
                self.completed += 1;
                self.start_next(r);
            }
            "error" => {
                let msg = v.get("message").and_then(Value::as_str).unwrap_or("?");
                self.fail(r, &format!("server: {msg}"));
            }
            _ => eprint_line(&format!("server: {}", Value::Object(v))),
        }
    }
}

impl Handler for UploadClient {
    fn on_ready(&mut self, r: &mut Reactor, _c: ConnId) {
        self.start_next(r);
    }

    fn on_data(&mut self, r: &mut Reactor, conn: ConnId, data: &mut BytesMut) {
        loop {
            match self.decoder.decode(data) {
                Ok(Some(line)) => match parse_message_or_status(&line) {
                    Some(v) => self.on_reply(r, v),
                    None => eprint_line(&format!("server: {line}")),
                },
                Ok(None) => return,
                Err(e) => {
                    data.clear();
                    self.fail(r, &format!("bad reply: {e}"));
                    r.destroy(conn);
                    return;
                }
            }
        }
    }

    fn on_drain(&mut self, r: &mut Reactor, _c: ConnId) {
        self.pump(r);
    }

    fn on_error(&mut self, _r: &mut Reactor, _c: ConnId, err: &NetError) {
        eprintln!("error: {err}");
        self.failed = true;
    }

    fn on_close(&mut self, r: &mut Reactor, _c: ConnId, _had_error: bool) {
        self.conn = None;
        if self.current.is_some() || !self.queue.is_empty() {
            if !self.failed {
                eprintln!("error: the connection closed before every file was confirmed");
            }
            self.failed = true;
        }
        r.stop();
    }
}

/// A reply line as a JSON object (the replies have `status`, not `type`).
fn parse_message_or_status(line: &str) -> Option<serde_json::Map<String, Value>> {
    if let Ok((_, m)) = parse_message(line.as_bytes()) {
        return Some(m);
    }
    match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(m)) => Some(m),
        _ => None,
    }
}

/// Send `files` to `host:port`; non-zero exit on any error.
pub fn run(host: &str, port: u16, files: &[PathBuf]) -> ExitCode {
    let mut r = match crate::client::new_loop(crate::client::Signals::Default) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let mut client = UploadClient::new(files);
    client.conn = Some(r.connect(host, port, ConnectOptions::default()));
    match crate::client::run_loop(&mut r, &mut client) {
        Ok(_) if !client.failed() && client.completed() == files.len() => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(code) => code,
    }
}
