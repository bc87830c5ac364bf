//! The upload server (the tutorial's upload program, with its defects
//! fixed), a [`Service`]: one [`Session`] per connection, the file I/O on
//! worker threads whose replies come back as typed messages.
//!
//! **Per connection**, a state machine (`Phase`, with stable `Display` names):
//!
//! `header` → (valid header) `receiving` → (exactly `Filesize` bytes taken)
//! `finishing` → (worker: synced and stored) `header` again, so several
//! uploads may follow each other on one connection. Any error → `closing`.
//!
//! * The header is decoded by [`HeaderDecoder`] (capped at 8 KiB, scanned
//!   once, parsed strictly; the file name checked by `validate_filename`, so
//!   a name cannot leave the upload directory). A bad header gets
//!   `{status:"error", message}` and the connection is ended.
//! * Exactly `Filesize` bytes go to the file; what follows stays in the
//!   buffer as the next header, never in this file. The bytes that came
//!   with the header, and a 0-byte file, complete like any other.
//! * File bytes are handed to the [`WorkerPool`] without a copy (`Bytes`
//!   split off the read buffer). Reading pauses while more than
//!   [`MAX_IN_FLIGHT`] bytes of this upload wait for the disk, and resumes
//!   below [`RESUME_IN_FLIGHT`], so a slow disk slows the client through TCP
//!   instead of growing our memory.
//! * While `finishing`, reading is paused too: the next upload's `receiving`
//!   never overtakes this one's `completed`.
//! * Replies, one JSON object per line: `receiving` {filename, total};
//!   `progress` {received, total, percentage} as the worker confirms bytes
//!   written, paced by [`ProgressPacer`]: at most one per [`progress_step`]
//!   (the larger of 1 % and 64 KiB, so at most 100 per file whatever the
//!   segmentation, and none for a file under 64 KiB) and never two within
//!   [`PROGRESS_MIN_GAP`]; `completed` {filename (the stored name), size, sha256} only after
//!   `fsync` and the link into place; `error` {message}.
//! * Deadlines: a header block must be complete [`HEADER_DEADLINE`] after
//!   its first byte (so trickling it byte by byte under the idle timeout
//!   does not hold a connection); with `--token`, a connection without a
//!   valid header block is closed after [`AUTH_DEADLINE`], as on the other
//!   servers. Failed tokens are limited per source address and in total
//!   ([`AuthLimiter`]). [`UploadConfig`] carries both deadlines so tests can
//!   shorten them.
//! * The idle timeout is ignored while `finishing`: the silence is ours
//!   (reading paused during `fsync`), and the file is about to be stored.
//! * Stored files have mode [`super::worker::FILE_MODE`] (0600); names
//!   starting with `.` are refused (hidden files, and our own temporary
//!   files' namespace); `crate::cli::upload::serve_upload` locks the directory for one server
//!   and removes temporary files an earlier run left.
//! * An upload that does not complete (disconnect, idle timeout, shutdown,
//!   disk error) is aborted: the worker removes its temporary file, so no
//!   partial file is left behind. A connection ended after an error is
//!   destroyed if the peer has not closed within [`CLOSE_GRACE`], so a peer
//!   that never answers our FIN cannot hold its descriptor.

use super::worker::{Job, Reply, WorkerPool, DEFAULT_WORKERS};
use crate::codec::{HeaderDecoder, DEFAULT_MAX_FILE_SIZE};
use crate::protocol::auth::{
    log_failure, log_limited, AuthLimiter, Token, AUTH_DEADLINE, AUTH_FAILURE_DELAY,
};
use crate::protocol::catalog::{Catalog, Lang};
use crate::protocol::json_reply::json_line as reply;
use crate::protocol::wall_clock::unix_ms;
use crate::{ConnId, Cx, ServerId, Service, TimerId};
use bytes::BytesMut;
use serde_json::json;
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Bytes of one upload queued for the disk before reading pauses.
pub const MAX_IN_FLIGHT: usize = 1024 * 1024;
/// Reading resumes when the disk queue is down to this.
pub const RESUME_IN_FLIGHT: usize = 256 * 1024;
/// Default idle timeout of an upload connection.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// After an error reply and `end()`, the peer has this long to close.
pub const CLOSE_GRACE: Duration = Duration::from_secs(5);
/// A header block (at most 8 KiB) must be complete this long after its first
/// byte: an honest client sends it in one write, and the idle timeout alone
/// let a peer trickle one byte every few seconds and hold the slot for days.
pub const HEADER_DEADLINE: Duration = Duration::from_secs(10);
/// Progress granularity floor in bytes (with 1 %): a reply per few bytes
/// of a small file tells the client nothing its `completed` does not.
pub const PROGRESS_MIN_BYTES: u64 = 64 * 1024;
/// Shortest time between two progress replies of one upload: faster than a
/// person can read, and on a fast link the byte step alone would still send
/// 100 replies in a few milliseconds.
pub const PROGRESS_MIN_GAP: Duration = Duration::from_millis(100);

/// The progress step for a file of `total` bytes: the larger of 1 % and
/// 64 KiB (so at most 100 steps, and none below 64 KiB).
pub fn progress_step(total: u64) -> u64 {
    (total / 100).max(PROGRESS_MIN_BYTES)
}

/// When an upload reports progress. Sans-IO: the caller passes `now`.
///
/// A report is due when at least one [`progress_step`] was written since the
/// previous report (or since the start) and the previous report is at least
/// [`PROGRESS_MIN_GAP`] old; progress reached too soon is reported by the
/// first write after the gap, or not at all (`completed` follows).
#[derive(Clone, Debug)]
pub struct ProgressPacer {
    step: u64,
    next: u64,
    last: Option<Instant>,
}

impl ProgressPacer {
    /// A pacer for a file of `total` bytes.
    pub fn new(total: u64) -> ProgressPacer {
        let step = progress_step(total);
        ProgressPacer {
            step,
            next: step,
            last: None,
        }
    }

    /// The byte step (the server cuts writes at its multiples, so the
    /// worker's acknowledgements land on them whatever the segmentation).
    pub fn step(&self) -> u64 {
        self.step
    }

    /// `written` bytes are on disk at `now`: whether to report them.
    pub fn on_written(&mut self, written: u64, now: Instant) -> bool {
        if written < self.next {
            return false;
        }
        if self
            .last
            .is_some_and(|t| now.saturating_duration_since(t) < PROGRESS_MIN_GAP)
        {
            return false;
        }
        self.next = written.saturating_add(self.step);
        self.last = Some(now);
        true
    }
}

/// Percentage done, 100 for an empty file (no division by zero).
pub fn percentage(done: u64, total: u64) -> u64 {
    if total == 0 {
        100
    } else {
        ((done as u128 * 100) / total as u128) as u64
    }
}

/// Settings of the upload server.
#[derive(Clone, Debug)]
pub struct UploadConfig {
    /// Where files are stored.
    pub dir: PathBuf,
    /// Largest accepted `Filesize`.
    pub max_file_size: u64,
    /// File threads.
    pub workers: usize,
    /// Sleep before each file write and each finish (fsync): simulates a slow
    /// disk (tests, demos).
    pub write_delay: Duration,
    /// When set, every header block must carry `Token: <this>`; a missing or
    /// wrong one is answered with an `error` after [`AUTH_FAILURE_DELAY`]
    /// (reading paused, so guessing costs time) and the connection is closed.
    pub token: Option<Token>,
    /// With a token: a connection without a valid header block by then is
    /// closed ([`AUTH_DEADLINE`], as the other servers; tests shorten it).
    pub auth_deadline: Duration,
    /// A header block must be complete this long after its first byte
    /// ([`HEADER_DEADLINE`]; tests shorten it).
    pub header_deadline: Duration,
}

impl UploadConfig {
    /// Defaults for `dir`.
    pub fn new(dir: PathBuf) -> Self {
        UploadConfig {
            dir,
            max_file_size: DEFAULT_MAX_FILE_SIZE,
            workers: DEFAULT_WORKERS,
            write_delay: Duration::ZERO,
            token: None,
            auth_deadline: AUTH_DEADLINE,
            header_deadline: HEADER_DEADLINE,
        }
    }
}

/// One upload in progress.
#[derive(Debug)]
struct Active {
    job: u64,
    /// The file name the client sent (for the log).
    name: String,
    total: u64,
    /// Taken from the socket and queued for the worker.
    received: u64,
    /// Confirmed written by the worker.
    written: u64,
    progress: ProgressPacer,
}

/// Where a connection is.
#[derive(Debug)]
enum Phase {
    Header,
    Receiving(Active),
    Finishing(Active),
    Closing,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Header => "header",
            Phase::Receiving(_) => "receiving",
            Phase::Finishing(_) => "finishing",
            Phase::Closing => "closing",
        })
    }
}

/// A connection of the upload server. The loop lends it to the
/// connection's own callbacks; worker replies and deadlines, which arrive
/// through the service's `on_message` and `on_timer`, reach it through the
/// shared handle in the upload index and in the timer's tag.
#[derive(Debug)]
pub struct Session {
    decoder: HeaderDecoder,
    phase: Phase,
    in_flight: usize,
    close_timer: Option<TimerId>,
    /// A rejected token: the error sent when the auth delay ends.
    auth_error: Option<&'static str>,
    /// With a token, until the first valid header block: closes the
    /// connection at [`UploadConfig::auth_deadline`].
    auth_deadline: Option<TimerId>,
    /// From the first byte of a header block to its end.
    header_timer: Option<TimerId>,
    /// The peer's address, for the failure limiter.
    ip: std::net::IpAddr,
    /// A header block with the right token has been accepted.
    authenticated: bool,
    /// `conn (peer address)`, for the warnings about lost uploads.
    who: String,
}

/// A connection's state, shared with the upload index and the deadlines.
pub type Shared = Rc<RefCell<Session>>;

/// The upload server's timers.
#[derive(Clone, Debug)]
pub enum UploadTimer {
    /// With a token: no valid header block in time.
    AuthDeadline(ConnId, Shared),
    /// A refused token is answered after [`AUTH_FAILURE_DELAY`].
    AuthDelay(ConnId, Shared),
    /// A header block not complete in time.
    Header(ConnId, Shared),
    /// After an error reply and `end()`: the peer had [`CLOSE_GRACE`] to close.
    CloseGrace(ConnId),
}

/// The upload server.
#[derive(Debug)]
pub struct Upload {
    cfg: UploadConfig,
    pool: Option<WorkerPool>,
    /// Uploads in progress (receiving or finishing), by upload id: the
    /// worker's replies name the upload.
    jobs: HashMap<u64, (ConnId, Shared)>,
    next_job: u64,
    limiter: AuthLimiter,
}

/// The upload server's texts: English only (the seed had no wording for its
/// errors).
const CAT: Catalog = Catalog { lang: Lang::En };

impl Upload {
    /// A server for `cfg`. The directory must exist.
    pub fn new(cfg: UploadConfig) -> Self {
        Upload {
            cfg,
            pool: None,
            jobs: HashMap::new(),
            next_job: 1,
            limiter: AuthLimiter::new(),
        }
    }

    fn ensure_pool(&mut self, cx: &mut Cx<'_, Self>) {
        if self.pool.is_none() {
            match WorkerPool::start(
                self.cfg.workers,
                &self.cfg.dir,
                cx.remote(),
                self.cfg.write_delay,
            ) {
                Ok(p) => self.pool = Some(p),
                Err(e) => log::error!("cannot start the file workers: {e}"),
            }
        }
    }

    fn submit(&self, job: Job) -> bool {
        self.pool.as_ref().is_some_and(|p| p.submit(job))
    }

    /// Reply with an error, abort the upload, end the connection.
    fn fail(&mut self, cx: &mut Cx<'_, Self>, conn: ConnId, s: &mut Session, message: &str) {
        for t in [s.auth_deadline.take(), s.header_timer.take()]
            .into_iter()
            .flatten()
        {
            cx.clear_timer(t);
        }
        let old = std::mem::replace(&mut s.phase, Phase::Closing);
        if let Phase::Receiving(a) | Phase::Finishing(a) = old {
            log::warn!(
                "{}: upload of {:?} aborted after {} of {} bytes: {message}",
                s.who,
                a.name,
                a.received,
                a.total
            );
            self.jobs.remove(&a.job);
            if let Some(p) = self.pool.as_ref() {
                p.submit(Job::Abort { id: a.job });
            }
        }
        log::debug!("{conn}: upload error: {message}");
        if cx.is_writable(conn) {
            let _ = cx.write(conn, reply(&json!({"status": "error", "message": message})));
            let _ = cx.end(conn);
        }
        cx.resume(conn); // see the peer's FIN
        if s.close_timer.is_none() {
            s.close_timer = Some(cx.set_timeout(CLOSE_GRACE, UploadTimer::CloseGrace(conn)));
        }
    }

    /// Consume what the current phase can use from `data`.
    fn process(
        &mut self,
        cx: &mut Cx<'_, Self>,
        conn: ConnId,
        shared: &Shared,
        s: &mut Session,
        data: &mut BytesMut,
    ) {
        loop {
            match &mut s.phase {
                Phase::Closing => {
                    data.clear();
                    return;
                }
                Phase::Finishing(_) => {
                    cx.pause(conn);
                    return;
                }
                Phase::Header => match s.decoder.decode(data) {
                    Ok(None) => {
                        if !data.is_empty() && s.header_timer.is_none() {
                            let d = self.cfg.header_deadline;
                            let tag = UploadTimer::Header(conn, shared.clone());
                            s.header_timer = Some(cx.set_timeout(d, tag));
                        }
                        return;
                    }
                    Err(e) => {
                        data.clear();
                        return self.fail(cx, conn, s, &e.to_string());
                    }
                    Ok(Some(h)) => {
                        if let Some(t) = s.header_timer.take() {
                            cx.clear_timer(t);
                        }
                        if let Some(token) = &self.cfg.token {
                            // Failures are limited per address and in total
                            // across connections; a refused attempt is not
                            // compared at all.
                            let now = cx.now();
                            // A connection that has presented the right
                            // token once is not subject to the limiter (a
                            // guesser on its address must not stop its next
                            // upload); its tokens are still compared.
                            let admitted = if s.authenticated {
                                Ok(())
                            } else {
                                self.limiter.admit(s.ip, now)
                            };
                            let refusal = match admitted {
                                Err(l) => {
                                    log_limited(&conn.to_string(), l);
                                    Some(CAT.auth_limited())
                                }
                                Ok(()) => match &h.token {
                                    Some(t) if token.matches(t.as_bytes()) => None,
                                    Some(_) => Some(CAT.auth_wrong()),
                                    None => Some(CAT.auth_required()),
                                },
                            };
                            if let Some(msg) = refusal {
                                if msg != CAT.auth_limited() {
                                    self.limiter.failed(s.ip, now);
                                    log_failure(&conn.to_string(), 1);
                                }
                                // Answered after the delay, reading paused, so
                                // guessing costs time; then closed.
                                s.phase = Phase::Closing;
                                s.auth_error = Some(msg);
                                data.clear();
                                cx.pause(conn);
                                let tag = UploadTimer::AuthDelay(conn, shared.clone());
                                cx.set_timeout(AUTH_FAILURE_DELAY, tag);
                                return;
                            }
                            s.authenticated = true;
                            if let Some(t) = s.auth_deadline.take() {
                                cx.clear_timer(t);
                            }
                        }
                        let job = self.next_job;
                        self.next_job += 1;
                        s.phase = Phase::Receiving(Active {
                            job,
                            name: h.filename.clone(),
                            total: h.filesize,
                            received: 0,
                            written: 0,
                            progress: ProgressPacer::new(h.filesize),
                        });
                        self.jobs.insert(job, (conn, shared.clone()));
                        log::info!("{conn}: receiving {:?} ({} bytes)", h.filename, h.filesize);
                        let _ = cx.write(
                            conn,
                            reply(&json!({"status": "receiving", "filename": h.filename, "total": h.filesize, "timestamp": unix_ms()})),
                        );
                        if !self.submit(Job::Open {
                            id: job,
                            name: h.filename,
                        }) {
                            return self.fail(cx, conn, s, CAT.upload_workers_unavailable());
                        }
                    }
                },
                Phase::Receiving(a) => {
                    // Cut at progress boundaries, so the worker's acks land
                    // exactly on them whatever the segmentation (progress
                    // then does not depend on how the bytes arrived).
                    let left = a.total - a.received;
                    let step = a.progress.step();
                    let to_boundary = step - a.received % step;
                    let take = left.min(to_boundary).min(data.len() as u64) as usize;
                    let job = a.job;
                    let complete = a.received + take as u64 == a.total;
                    if take > 0 {
                        a.received += take as u64;
                        s.in_flight += take;
                        let chunk = data.split_to(take).freeze();
                        if !self.submit(Job::Write {
                            id: job,
                            data: chunk,
                        }) {
                            return self.fail(cx, conn, s, CAT.upload_workers_unavailable());
                        }
                    }
                    if complete {
                        let Phase::Receiving(a) = std::mem::replace(&mut s.phase, Phase::Header)
                        else {
                            return;
                        };
                        s.phase = Phase::Finishing(a);
                        if !self.submit(Job::Finish { id: job }) {
                            return self.fail(cx, conn, s, CAT.upload_workers_unavailable());
                        }
                        continue; // pauses above
                    }
                    if s.in_flight > MAX_IN_FLIGHT {
                        cx.pause(conn);
                        return;
                    }
                    if data.is_empty() {
                        return;
                    }
                }
            }
        }
    }

    fn worker_reply(&mut self, cx: &mut Cx<'_, Self>, rep: Reply) {
        let id = match &rep {
            Reply::Written { id, .. } | Reply::Failed { id, .. } | Reply::Done { id, .. } => *id,
        };
        let Some((conn, shared)) = self.jobs.get(&id).cloned() else {
            return; // the connection went away; the worker cleaned up
        };
        let mut s = shared.borrow_mut();
        match rep {
            Reply::Written { n, .. } => {
                s.in_flight = s.in_flight.saturating_sub(n);
                let mut progress = None;
                let now = cx.now();
                if let Phase::Receiving(a) | Phase::Finishing(a) = &mut s.phase {
                    a.written += n as u64;
                    if a.progress.on_written(a.written, now) {
                        progress = Some(json!({
                            "status": "progress",
                            "received": a.written,
                            "total": a.total,
                            "percentage": percentage(a.written, a.total),
                        }));
                    }
                }
                let resume =
                    matches!(s.phase, Phase::Receiving(_)) && s.in_flight <= RESUME_IN_FLIGHT;
                if let Some(p) = progress {
                    let _ = cx.write(conn, reply(&p));
                }
                if resume {
                    cx.resume(conn);
                }
            }
            Reply::Failed { error, .. } => {
                self.jobs.remove(&id);
                // The worker already removed the file; no abort needed.
                if let Phase::Receiving(a) | Phase::Finishing(a) = &s.phase {
                    log::warn!("{}: storing {:?} failed: {error}", s.who, a.name);
                }
                if let Phase::Receiving(_) | Phase::Finishing(_) = s.phase {
                    s.phase = Phase::Header;
                }
                self.fail(cx, conn, &mut s, &error);
            }
            Reply::Done {
                stored,
                size,
                sha256,
                ..
            } => {
                self.jobs.remove(&id);
                if matches!(s.phase, Phase::Finishing(_)) {
                    s.phase = Phase::Header;
                    log::info!("{conn}: stored {stored:?} ({size} bytes)");
                    let _ = cx.write(
                        conn,
                        reply(&json!({"status": "completed", "filename": stored, "size": size, "sha256": sha256})),
                    );
                    // Buffered bytes (the next header) are delivered again.
                    cx.resume(conn);
                }
            }
        }
    }
}

impl Service for Upload {
    type Conn = Shared;
    type Tag = UploadTimer;
    /// The file workers' answers.
    type Message = Reply;

    fn name(&self) -> &'static str {
        "upload"
    }

    fn on_listening(&mut self, cx: &mut Cx<'_, Self>, _s: ServerId, addr: std::net::SocketAddr) {
        log::info!(
            "upload server listening on {addr}, storing in {}",
            self.cfg.dir.display()
        );
        self.ensure_pool(cx);
    }

    fn on_connection(
        &mut self,
        cx: &mut Cx<'_, Self>,
        _s: ServerId,
        conn: ConnId,
    ) -> Option<Shared> {
        self.ensure_pool(cx);
        let ip = cx
            .peer_addr(conn)
            .map_or(std::net::Ipv4Addr::UNSPECIFIED.into(), |a| a.ip());
        let shared = Rc::new(RefCell::new(Session {
            decoder: HeaderDecoder::new(self.cfg.max_file_size),
            phase: Phase::Header,
            in_flight: 0,
            close_timer: None,
            auth_error: None,
            auth_deadline: None,
            header_timer: None,
            ip,
            authenticated: false,
            who: match cx.peer_addr(conn) {
                Some(peer) => format!("{conn} ({peer})"),
                None => conn.to_string(),
            },
        }));
        if self.cfg.token.is_some() {
            let tag = UploadTimer::AuthDeadline(conn, shared.clone());
            let t = cx.set_timeout(self.cfg.auth_deadline, tag);
            shared.borrow_mut().auth_deadline = Some(t);
        }
        Some(shared)
    }

    fn on_data(
        &mut self,
        cx: &mut Cx<'_, Self>,
        conn: ConnId,
        st: &mut Shared,
        data: &mut BytesMut,
    ) {
        let shared = st.clone();
        let mut s = shared.borrow_mut();
        self.process(cx, conn, &shared, &mut s, data);
    }

    fn on_end(&mut self, cx: &mut Cx<'_, Self>, conn: ConnId, st: &mut Shared) {
        // A FIN in the middle of a body is an aborted upload; the close
        // that follows cleans up.
        let mut s = st.borrow_mut();
        if matches!(s.phase, Phase::Receiving(_)) {
            self.fail(cx, conn, &mut s, CAT.upload_incomplete());
        }
    }

    fn on_message(&mut self, cx: &mut Cx<'_, Self>, rep: Reply) {
        self.worker_reply(cx, rep);
    }

    fn on_timer(&mut self, cx: &mut Cx<'_, Self>, t: TimerId, tag: UploadTimer) {
        let (conn, shared) = match &tag {
            UploadTimer::CloseGrace(conn) => {
                // Cleared at close: the connection is still there.
                cx.destroy(*conn);
                return;
            }
            UploadTimer::AuthDeadline(c, s) | UploadTimer::AuthDelay(c, s) => (*c, s),
            UploadTimer::Header(c, s) => (*c, s),
        };
        if cx.reactor().state(conn).is_none() {
            return; // closed meanwhile (the auth delay is not cleared at close)
        }
        let mut s = shared.borrow_mut();
        match tag {
            UploadTimer::AuthDeadline(..) if s.auth_deadline == Some(t) => {
                s.auth_deadline = None;
                log::info!(
                    "{conn}: no authentication within {:?}, closing",
                    self.cfg.auth_deadline
                );
                self.fail(cx, conn, &mut s, CAT.auth_timeout());
            }
            UploadTimer::AuthDelay(..) => {
                if let Some(msg) = s.auth_error.take() {
                    self.fail(cx, conn, &mut s, msg);
                }
            }
            UploadTimer::Header(..) if s.header_timer == Some(t) => {
                s.header_timer = None;
                log::info!(
                    "{conn}: header block not complete within {:?}, closing",
                    self.cfg.header_deadline
                );
                let msg = format!(
                    "header block not complete within {} ms",
                    self.cfg.header_deadline.as_millis()
                );
                self.fail(cx, conn, &mut s, &msg);
            }
            _ => {}
        }
    }

    fn on_timeout(&mut self, cx: &mut Cx<'_, Self>, conn: ConnId, st: &mut Shared) {
        let mut s = st.borrow_mut();
        // While finishing, the connection is quiet because we are: reading is
        // paused while our fsync runs. Failing then would tell the client
        // "idle timeout" for a file that is stored a moment later. The reply
        // that follows is activity, which re-arms the idle timer.
        if let Phase::Finishing(_) = s.phase {
            log::debug!("{conn}: idle while our disk finishes the upload; waiting");
            return;
        }
        self.fail(cx, conn, &mut s, CAT.idle_timeout());
    }

    fn on_shutdown(&mut self, cx: &mut Cx<'_, Self>) {
        let busy: Vec<(ConnId, Shared)> = self
            .jobs
            .values()
            .filter(|(_, s)| matches!(s.borrow().phase, Phase::Receiving(_)))
            .cloned()
            .collect();
        for (conn, shared) in busy {
            self.fail(cx, conn, &mut shared.borrow_mut(), CAT.upload_shutdown());
        }
    }

    fn on_close(&mut self, cx: &mut Cx<'_, Self>, _conn: ConnId, st: Shared, _had_error: bool) {
        let mut s = st.borrow_mut();
        for t in [s.close_timer, s.auth_deadline, s.header_timer]
            .into_iter()
            .flatten()
        {
            cx.clear_timer(t);
        }
        let phase = std::mem::replace(&mut s.phase, Phase::Closing);
        if let Phase::Receiving(a) | Phase::Finishing(a) = phase {
            // A finishing upload has all its bytes; it is stored anyway, but
            // nobody is told. A receiving one is removed.
            self.jobs.remove(&a.job);
            if a.received < a.total {
                log::warn!(
                    "{}: connection closed during the upload of {:?} ({} of {} bytes): aborted",
                    s.who,
                    a.name,
                    a.received,
                    a.total
                );
                self.submit(Job::Abort { id: a.job });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_step_bounds() {
        assert_eq!(progress_step(0), 64 * 1024);
        assert_eq!(progress_step(13), 64 * 1024); // no report for 13 bytes
        assert_eq!(progress_step(4 << 20), 64 * 1024); // 64 KiB over 1 %
        assert_eq!(progress_step(1 << 30), (1 << 30) / 100); // 1 %
        for total in [1u64, 99, 12345, 1 << 20, 7 << 20, 1 << 30] {
            let reports = total / progress_step(total);
            assert!(reports <= 100, "{total}: {reports}");
            assert!(progress_step(total) >= PROGRESS_MIN_BYTES);
        }
    }

    /// Byte by byte, a small file gets no progress report at all.
    #[test]
    fn pacer_is_silent_for_a_13_byte_file() {
        let t0 = Instant::now();
        let mut p = ProgressPacer::new(13);
        let reports = (1..=13)
            .filter(|&w| p.on_written(w, t0 + Duration::from_secs(w)))
            .count();
        assert_eq!(reports, 0);
    }

    /// A 1 GiB file written in 64 KiB pieces: once per 1 % when the writes
    /// are slow, and no two reports within 100 ms when they are fast.
    #[test]
    fn pacer_keeps_one_per_percent_and_the_time_gap() {
        let total = 1u64 << 30;
        let piece = 64 * 1024;
        let t0 = Instant::now();
        // Slow: 10 ms per piece, so 1 % (164 pieces) takes 1.6 s.
        let mut p = ProgressPacer::new(total);
        let mut at = Vec::new();
        for i in 1..=total / piece {
            if p.on_written(i * piece, t0 + Duration::from_millis(10 * i)) {
                at.push(i * piece);
            }
        }
        // Each report may overshoot its 1 % by up to one piece.
        assert!((95..=100).contains(&at.len()), "{}", at.len());
        assert!(at.windows(2).all(|w| w[1] - w[0] >= total / 100));
        // Fast: 0.1 ms per piece; the whole file in 1.6 s gives at most 17.
        let mut p = ProgressPacer::new(total);
        let mut times = Vec::new();
        for i in 1..=total / piece {
            let now = t0 + Duration::from_micros(100 * i);
            if p.on_written(i * piece, now) {
                times.push(now);
            }
        }
        assert!(times.len() <= 17, "{}", times.len());
        assert!(times.len() >= 10, "{}", times.len());
        assert!(times
            .windows(2)
            .all(|w| w[1].duration_since(w[0]) >= PROGRESS_MIN_GAP));
    }

    #[test]
    fn percentage_never_divides_by_zero() {
        assert_eq!(percentage(0, 0), 100);
        assert_eq!(percentage(50, 200), 25);
        assert_eq!(percentage(u64::MAX, u64::MAX), 100);
    }
}
