//! `netloop upload HOST:PORT FILE...`: the upload client (the tutorial's
//! upload program, with its defects fixed).
//!
//! Sends each file in turn on one connection: the header block
//! (`Filename`, `Filesize`, `Content-Type`, CRLF, blank line), then the bytes,
//! read [`CHUNK`] at a time. When `write()` reports the high-water mark the
//! client stops reading the file until `drain`, so the file is never read
//! into memory faster than the network takes it (the seed queued the whole
//! file). It then waits for the server's `completed` and checks the
//! size and SHA-256 against what it sent, before the next file (the seed
//! resolved when the file had been *read*). Replies are framed as lines
//! (the seed parsed each chunk as it came, so a reply split over two reads
//! was lost).
//!
//! A `completed` reply without `sha256` (the tutorial's own server sends
//! none) is checked by size only, and the result line says that no checksum
//! was compared. After the last byte of a file the server must answer
//! within the reply timeout (`--reply-timeout`, [`DEFAULT_REPLY_TIMEOUT`];
//! any reply restarts it): the tutorial's server never answers a file whose
//! bytes arrive with the header, and the client must not wait for ever.
//!
//! Every file is checked (exists, is a regular file, can be opened, has a
//! UTF-8 name) before the client connects, so a wrong name sends nothing.
//! With a token (`--token FILE` or `NETLOOP_TOKEN`) each header block
//! carries `Token: TOKEN`; a refusal is one line and exit status 1.
//!
//! Progress shows what the server confirms written: an indicatif bar on
//! stderr when stderr is a terminal, plain lines on stderr otherwise. Results
//! go to stdout. Any error (refused header, mismatch, early close) makes the
//! exit status non-zero.
//!
//! File reads are plain blocking `read`s of at most [`CHUNK`] bytes on the
//! loop thread: this client has a single connection, so a read that waits on
//! the disk delays nothing else.

use crate::clients::auth::is_auth_refusal;
use crate::codec::{parse_message, LineDecoder, DEFAULT_MAX_LINE};
use crate::protocol::auth::Token;
use crate::protocol::text::{eprint_line, print_line, sanitize};
use crate::protocol::upload::hex;
use crate::{ConnId, ConnectOptions, Cx, NetError, Service, TimerId};
use bytes::{Bytes, BytesMut};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::cell::Cell;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::rc::Rc;
use std::time::Duration;

/// Bytes read from the file per write.
pub const CHUNK: usize = 64 * 1024;

/// How long the server may stay silent after the last byte of a file before
/// the client gives up: generous for an `fsync` of a large file on a slow
/// disk (our server also sends `progress` meanwhile, and every reply
/// restarts the wait), short enough that a server that never answers is
/// reported within a minute.
pub const DEFAULT_REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// The one timer of the client: the wait for the server's answer after
/// the last byte of a file.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ReplyWait;

/// How a run ended, read after the loop has returned.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
struct Outcome {
    failed: bool,
    completed: usize,
}

/// Settings of the upload client.
#[derive(Clone, Debug)]
pub struct UploadClientConfig {
    /// Server host.
    pub host: String,
    /// Server port.
    pub port: u16,
    /// Files to send, in order, on one connection.
    pub files: Vec<PathBuf>,
    /// Longest silence of the server after the last byte of a file.
    pub reply_timeout: Duration,
    /// The token each header block carries, if any.
    pub token: Option<Token>,
    /// TLS, if any.
    pub tls: Option<crate::reactor::tls::ClientTls>,
}

impl UploadClientConfig {
    /// Defaults for sending `files` to `host:port`.
    pub fn new(host: &str, port: u16, files: &[PathBuf]) -> Self {
        UploadClientConfig {
            host: host.to_string(),
            port,
            files: files.to_vec(),
            reply_timeout: DEFAULT_REPLY_TIMEOUT,
            token: None,
            tls: None,
        }
    }
}

/// Why a file cannot be sent, found before connecting.
#[derive(Debug)]
pub enum FileCheckError {
    /// It cannot be inspected (missing, no permission on a directory).
    Stat(std::io::Error),
    /// It is a directory, a device, a socket...
    NotRegular,
    /// It cannot be opened for reading.
    Open(std::io::Error),
    /// Its name is not UTF-8 (the `Filename` header is text).
    NameNotUtf8,
}

impl std::fmt::Display for FileCheckError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FileCheckError::Stat(e) => write!(f, "{e}"),
            FileCheckError::NotRegular => f.write_str("not a regular file"),
            FileCheckError::Open(e) => write!(f, "cannot open: {e}"),
            FileCheckError::NameNotUtf8 => f.write_str("the file name is not UTF-8"),
        }
    }
}

/// Check that `path` can be sent: an existing regular file, readable, with
/// a UTF-8 name.
pub fn check_file(path: &Path) -> Result<(), FileCheckError> {
    let meta = std::fs::metadata(path).map_err(FileCheckError::Stat)?;
    if !meta.is_file() {
        return Err(FileCheckError::NotRegular);
    }
    File::open(path).map_err(FileCheckError::Open)?;
    match path.file_name().and_then(|n| n.to_str()) {
        Some(_) => Ok(()),
        None => Err(FileCheckError::NameNotUtf8),
    }
}

struct Sending {
    path: PathBuf,
    file: File,
    size: u64,
    sent: u64,
    hasher: Sha256,
    digest: Option<String>,
    bar: Option<ProgressBar>,
}

/// The client: a service owning its one outbound connection.
pub struct UploadClient {
    queue: VecDeque<PathBuf>,
    current: Option<Sending>,
    conn: Option<ConnId>,
    decoder: LineDecoder,
    buf: Vec<u8>,
    tty: bool,
    failed: bool,
    completed: usize,
    reply_timeout: Duration,
    reply_timer: Option<TimerId>,
    token: Option<Token>,
    /// Shared with [`run`], set when the connection closes.
    outcome: Rc<Cell<Outcome>>,
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
    /// A client that will send the files of `cfg`.
    pub fn new(cfg: &UploadClientConfig) -> Self {
        UploadClient {
            queue: cfg.files.iter().cloned().collect(),
            current: None,
            conn: None,
            decoder: LineDecoder::new(DEFAULT_MAX_LINE),
            buf: vec![0; CHUNK],
            tty: std::io::stderr().is_terminal(),
            failed: false,
            completed: 0,
            reply_timeout: cfg.reply_timeout,
            reply_timer: None,
            token: cfg.token.clone(),
            outcome: Rc::default(),
        }
    }

    /// (Re)start the wait for the server's answer after the last byte.
    fn arm_reply_timer(&mut self, cx: &mut Cx<'_, Self>) {
        self.clear_reply_timer(cx);
        self.reply_timer = Some(cx.set_timeout(self.reply_timeout, ReplyWait));
    }

    fn clear_reply_timer(&mut self, cx: &mut Cx<'_, Self>) {
        if let Some(t) = self.reply_timer.take() {
            cx.clear_timer(t);
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

    fn fail(&mut self, cx: &mut Cx<'_, Self>, msg: &str) {
        eprint_line(&format!("error: {msg}"));
        self.failed = true;
        self.clear_reply_timer(cx);
        if let Some(b) = self.current.take().and_then(|c| c.bar) {
            b.abandon();
        }
        if let Some(c) = self.conn {
            cx.destroy(c);
        }
    }

    fn start_next(&mut self, cx: &mut Cx<'_, Self>) {
        let Some(conn) = self.conn else { return };
        let Some(path) = self.queue.pop_front() else {
            let _ = cx.end(conn);
            return;
        };
        let opened = File::open(&path).and_then(|f| Ok((f.metadata()?.len(), f)));
        let (size, file) = match opened {
            Ok(x) => x,
            Err(e) => return self.fail(cx, &format!("{}: {e}", path.display())),
        };
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            return self.fail(cx, &format!("{}: not a UTF-8 file name", path.display()));
        };
        let token = match &self.token {
            Some(t) => format!("Token: {}\r\n", t.secret()),
            None => String::new(),
        };
        let header = format!(
            "Filename: {name}\r\nFilesize: {size}\r\n{token}Content-Type: application/octet-stream\r\n\r\n"
        );
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
        if cx.write(conn, header.into_bytes()).is_err() {
            return self.fail(cx, "connection closed");
        }
        self.pump(cx);
    }

    /// Send file bytes until the write queue is full or the file is done.
    fn pump(&mut self, cx: &mut Cx<'_, Self>) {
        let Some(conn) = self.conn else { return };
        loop {
            let Some(cur) = self.current.as_mut() else {
                return;
            };
            if cur.sent == cur.size {
                if cur.digest.is_none() {
                    cur.digest = Some(hex(&cur.hasher.finalize_reset()));
                    self.arm_reply_timer(cx);
                }
                return;
            }
            let want = (cur.size - cur.sent).min(CHUNK as u64) as usize;
            let n = match cur.file.read(&mut self.buf[..want]) {
                Ok(0) => {
                    let msg = format!("{}: file shrank while sending", cur.path.display());
                    return self.fail(cx, &msg);
                }
                Ok(n) => n,
                Err(e) => {
                    let msg = format!("{}: {e}", cur.path.display());
                    return self.fail(cx, &msg);
                }
            };
            let chunk = &self.buf[..n];
            cur.hasher.update(chunk);
            cur.sent += n as u64;
            match cx.write(conn, Bytes::copy_from_slice(chunk)) {
                Ok(true) => {}
                Ok(false) => return, // resume on drain
                Err(e) => return self.fail(cx, &format!("write failed: {e}")),
            }
        }
    }

    fn on_reply(&mut self, cx: &mut Cx<'_, Self>, v: serde_json::Map<String, Value>) {
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
                    return self.fail(cx, "unexpected 'completed'");
                };
                if let Some(b) = &cur.bar {
                    b.finish_and_clear();
                }
                self.clear_reply_timer(cx);
                let stored = sanitize(v.get("filename").and_then(Value::as_str).unwrap_or("?"));
                let size = num("size");
                let ours = cur.digest.as_deref().unwrap_or("");
                // The tutorial's server sends no checksum: then only the
                // size can be compared, and the result line says so.
                let sha = v.get("sha256").and_then(Value::as_str);
                if size != cur.size || sha.is_some_and(|sha| sha != ours) {
                    let msg = format!(
                        "{}: server stored {size} bytes with sha256 {}, we sent {} bytes with sha256 {ours}",
                        cur.path.display(),
                        sanitize(sha.unwrap_or("(none)")),
                        cur.size
                    );
                    return self.fail(cx, &msg);
                }
                match sha {
                    Some(sha) => print_line(&format!(
                        "uploaded {} as {stored} ({size} bytes, sha256 {sha})",
                        cur.path.display()
                    )),
                    None => print_line(&format!(
                        "uploaded {} as {stored} ({size} bytes; the server sent no checksum, so only the size was checked)",
                        cur.path.display()
                    )),
                }
                self.completed += 1;
                self.start_next(cx);
            }
            "error" => {
                let msg = sanitize(v.get("message").and_then(Value::as_str).unwrap_or("?"));
                if is_auth_refusal(&msg) {
                    self.fail(cx, &format!("authentication failed: {msg}"));
                } else {
                    self.fail(cx, &format!("server: {msg}"));
                }
            }
            _ => eprint_line(&format!("server: {}", Value::Object(v))),
        }
    }
}

impl Service for UploadClient {
    /// The client's one connection keeps its state in the service.
    type Conn = ();
    /// The wait for the server's answer after the last byte of a file.
    type Tag = ReplyWait;
    type Message = ();

    fn on_connect(&mut self, cx: &mut Cx<'_, Self>, conn: ConnId, _: &mut ()) {
        self.conn = Some(conn);
        self.start_next(cx);
    }

    fn on_data(&mut self, cx: &mut Cx<'_, Self>, conn: ConnId, _: &mut (), data: &mut BytesMut) {
        if self.reply_timer.is_some() {
            self.arm_reply_timer(cx); // the server is still answering
        }
        loop {
            match self.decoder.decode(data) {
                Ok(Some(line)) => match parse_message_or_status(&line) {
                    Some(v) => self.on_reply(cx, v),
                    None => eprint_line(&format!("server: {line}")),
                },
                Ok(None) => return,
                Err(e) => {
                    data.clear();
                    self.fail(cx, &format!("bad reply: {e}"));
                    cx.destroy(conn);
                    return;
                }
            }
        }
    }

    fn on_drain(&mut self, cx: &mut Cx<'_, Self>, _c: ConnId, _: &mut ()) {
        self.pump(cx);
    }

    fn on_timer(&mut self, cx: &mut Cx<'_, Self>, timer: TimerId, _: ReplyWait) {
        if self.reply_timer != Some(timer) {
            return;
        }
        self.reply_timer = None;
        let name = self
            .current
            .as_ref()
            .map(|c| c.path.display().to_string())
            .unwrap_or_default();
        let msg = format!(
            "{name}: no reply from the server within {:?} after the last byte (the file may or may not be stored)",
            self.reply_timeout
        );
        self.fail(cx, &msg);
    }

    fn on_error(&mut self, _: &mut Cx<'_, Self>, _c: ConnId, _: &mut (), err: &NetError) {
        eprintln!("error: {err}");
        self.failed = true;
    }

    fn on_close(&mut self, cx: &mut Cx<'_, Self>, _c: ConnId, _: (), _had_error: bool) {
        self.conn = None;
        self.clear_reply_timer(cx);
        if self.current.is_some() || !self.queue.is_empty() {
            if !self.failed {
                eprintln!("error: the connection closed before every file was confirmed");
            }
            self.failed = true;
        }
        self.outcome.set(Outcome {
            failed: self.failed,
            completed: self.completed,
        });
        cx.stop();
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

/// Send the files of `cfg`; non-zero exit on any error. Every file is
/// checked first: one that cannot be sent fails the run before connecting.
pub fn run(cfg: &UploadClientConfig) -> ExitCode {
    let mut bad = false;
    for f in &cfg.files {
        if let Err(e) = check_file(f) {
            eprintln!("error: {}: {e}", f.display());
            bad = true;
        }
    }
    if bad {
        eprintln!("error: nothing was sent");
        return ExitCode::FAILURE;
    }
    let mut r = match crate::clients::new_loop(crate::clients::Signals::Default) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let client = UploadClient::new(cfg);
    let outcome = client.outcome.clone();
    let opts = ConnectOptions {
        tls: cfg.tls.clone(),
        ..ConnectOptions::default()
    };
    r.connect_with(&cfg.host, cfg.port, opts, client, ());
    match r.run() {
        Ok(_) if !outcome.get().failed && outcome.get().completed == cfg.files.len() => {
            ExitCode::SUCCESS
        }
        Ok(_) => ExitCode::FAILURE,
        Err(e) => crate::error::fatal(format_args!("event loop failed: {e}")),
    }
}
