//! The upload server's file I/O, off the loop (libuv's thread-pool pattern).
//!
//! **Contract.** The loop submits [`Job`]s; each upload has an id and all its
//! jobs go to the same thread (id modulo the pool size), so they run in
//! order. Every job is answered by a [`Reply`] posted through the upload
//! service's typed [`Remote`] (it arrives in `Service::on_message` as a
//! `Reply`, no downcast), which wakes the loop through its `mio::Waker`:
//!
//! * `Open` creates a temporary file `.netloop-upload-<128 random bits in
//!   hex>.part` in the upload directory with exclusive create (never
//!   following or replacing anything) and mode [`FILE_MODE`]. Clients cannot
//!   name it (names starting with `.` are refused) nor predict it. Failure →
//!   `Failed`. [`claim_dir`] locks the directory for one server and removes
//!   temporary files a previous run left.
//! * `Write` appends and feeds SHA-256; it is always answered with `Written`
//!   (so the loop's in-flight count goes down), or `Failed` on an error such
//!   as ENOSPC, after which the temporary file is already removed and later
//!   writes of that upload are dropped.
//! * `Finish` syncs the file (`fsync`), links it under the first free name of
//!   [`candidates`] (`link` fails if the name exists, so nothing is ever
//!   overwritten, even by a concurrent upload), removes the temporary name,
//!   syncs the directory, then answers `Done` with the stored name and
//!   digest: `completed` is sent only for data on disk.
//! * `Abort` removes the temporary file.
//!
//! Dropping the [`WorkerPool`] closes the queues and joins the threads, so
//! aborts queued at shutdown still remove their files before the process
//! exits.

use super::store_name::candidates;
use crate::Remote;
use bytes::Bytes;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

/// Worker threads: file writes are sequential per upload, and two threads
/// keep one slow fsync from stalling every other upload.
pub const DEFAULT_WORKERS: usize = 2;

/// Prefix of temporary upload files.
pub const TEMP_PREFIX: &str = ".netloop-upload-";

/// Work for a file thread.
#[derive(Debug)]
pub enum Job {
    /// Create the temporary file of upload `id`.
    Open {
        /// Upload id.
        id: u64,
        /// The name the client asked for (already validated).
        name: String,
    },
    /// Append bytes.
    Write {
        /// Upload id.
        id: u64,
        /// The bytes.
        data: Bytes,
    },
    /// Sync and store under a free name.
    Finish {
        /// Upload id.
        id: u64,
    },
    /// Remove the temporary file.
    Abort {
        /// Upload id.
        id: u64,
    },
}

impl Job {
    fn id(&self) -> u64 {
        match self {
            Job::Open { id, .. }
            | Job::Write { id, .. }
            | Job::Finish { id }
            | Job::Abort { id } => *id,
        }
    }
}

/// A worker's answer, posted to the loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `n` bytes of upload `id` were written (or dropped after a failure).
    Written {
        /// Upload id.
        id: u64,
        /// Bytes.
        n: usize,
    },
    /// Upload `id` failed; its temporary file is removed.
    Failed {
        /// Upload id.
        id: u64,
        /// What went wrong, for the client.
        error: String,
    },
    /// Upload `id` is stored and synced.
    Done {
        /// Upload id.
        id: u64,
        /// The name it is stored under.
        stored: String,
        /// Bytes written.
        size: u64,
        /// SHA-256, lower-case hex.
        sha256: String,
    },
}

struct OpenFile {
    file: File,
    tmp: PathBuf,
    name: String,
    hasher: Sha256,
    size: u64,
}

/// The file threads.
#[derive(Debug)]
pub struct WorkerPool {
    queues: Vec<Sender<Job>>,
    threads: Vec<JoinHandle<()>>,
}

impl WorkerPool {
    /// Start `n` threads (at least one) writing into `dir`, answering through
    /// `remote`. `write_delay` is slept before every write and every finish
    /// (fsync): a simulated slow
    /// disk for tests and demonstrations, zero otherwise.
    pub fn start(
        n: usize,
        dir: &Path,
        remote: Remote<Reply>,
        write_delay: Duration,
    ) -> io::Result<WorkerPool> {
        let mut queues = Vec::new();
        let mut threads = Vec::new();
        for i in 0..n.max(1) {
            let (tx, rx) = channel::<Job>();
            let dir = dir.to_path_buf();
            let remote = remote.clone();
            let t = std::thread::Builder::new()
                .name(format!("netloop-upload-{i}"))
                .spawn(move || {
                    let mut files = HashMap::new();
                    for job in rx {
                        // A slow disk is slow to write and to sync.
                        if !write_delay.is_zero()
                            && matches!(job, Job::Write { .. } | Job::Finish { .. })
                        {
                            std::thread::sleep(write_delay);
                        }
                        if let Some(reply) = run_job(&dir, &mut files, job) {
                            remote.post(reply);
                        }
                    }
                    // Queue closed: remove whatever was not finished.
                    for (_, f) in files.drain() {
                        let _ = std::fs::remove_file(&f.tmp);
                    }
                })?;
            queues.push(tx);
            threads.push(t);
        }
        Ok(WorkerPool { queues, threads })
    }

    /// Queue `job` on its upload's thread. False if the thread is gone.
    pub fn submit(&self, job: Job) -> bool {
        let n = self.queues.len().max(1) as u64;
        match self.queues.get((job.id() % n) as usize) {
            Some(q) => q.send(job).is_ok(),
            None => false,
        }
    }
}

impl Drop for WorkerPool {
    fn drop(&mut self) {
        self.queues.clear();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Suffix of temporary upload files.
pub const TEMP_SUFFIX: &str = ".part";

/// Mode of stored uploads (set when the temporary file is created; the link
/// into place keeps it): owner read and write only. Uploads come from
/// network clients; whoever else should read them can be given access
/// explicitly (the umask can only remove bits from this).
pub const FILE_MODE: u32 = 0o600;

/// A fresh temporary name: 128 random bits, so a client cannot predict it
/// (and, names starting with `.` being refused, cannot upload one anyway).
fn temp_path(dir: &Path) -> io::Result<PathBuf> {
    let mut r = [0u8; 16];
    let n = rustix::rand::getrandom(&mut r, rustix::rand::GetRandomFlags::empty())?;
    if n != r.len() {
        return Err(io::Error::other("short read from getrandom"));
    }
    Ok(dir.join(format!("{TEMP_PREFIX}{}{TEMP_SUFFIX}", hex(&r))))
}

/// Whether `name` is one of our temporary files.
pub fn is_temp_name(name: &str) -> bool {
    name.starts_with(TEMP_PREFIX) && name.ends_with(TEMP_SUFFIX)
}

/// Exclusive use of an upload directory, held while the server runs (so
/// cleaning temporary files at start never removes a live upload's).
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

/// Take `dir` for this server (fails if another server holds it) and remove
/// the temporary files a previous run left behind (a crash, SIGKILL);
/// returns the lock and how many files were removed.
pub fn claim_dir(dir: &Path) -> io::Result<(DirLock, usize)> {
    // The lock is on the directory itself (flock works on a directory's
    // descriptor), so no lock file appears among the uploads.
    let file = File::open(dir)?;
    rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).map_err(
        |e| {
            io::Error::new(
                io::ErrorKind::WouldBlock,
                format!("another upload server uses this directory ({e})"),
            )
        },
    )?;
    let mut removed = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name().to_str().is_some_and(is_temp_name)
            && std::fs::remove_file(entry.path()).is_ok()
        {
            removed += 1;
        }
    }
    Ok((DirLock { _file: file }, removed))
}

fn run_job(dir: &Path, files: &mut HashMap<u64, OpenFile>, job: Job) -> Option<Reply> {
    match job {
        Job::Open { id, name } => {
            use std::os::unix::fs::OpenOptionsExt;
            let opened = temp_path(dir).and_then(|tmp| {
                File::options()
                    .write(true)
                    .create_new(true)
                    .mode(FILE_MODE)
                    .open(&tmp)
                    .map(|f| (tmp, f))
            });
            match opened {
                Ok((tmp, file)) => {
                    files.insert(
                        id,
                        OpenFile {
                            file,
                            tmp,
                            name,
                            hasher: Sha256::new(),
                            size: 0,
                        },
                    );
                    None
                }
                Err(e) => Some(Reply::Failed {
                    id,
                    error: format!("cannot create the file: {e}"),
                }),
            }
        }
        Job::Write { id, data } => {
            let n = data.len();
            let Some(f) = files.get_mut(&id) else {
                // Already failed: the bytes are dropped, the count still goes down.
                return Some(Reply::Written { id, n });
            };
            match f.file.write_all(&data) {
                Ok(()) => {
                    f.hasher.update(&data);
                    f.size += n as u64;
                    Some(Reply::Written { id, n })
                }
                Err(e) => {
                    if let Some(f) = files.remove(&id) {
                        drop(f.file);
                        let _ = std::fs::remove_file(&f.tmp);
                    }
                    Some(Reply::Failed {
                        id,
                        error: format!("cannot write the file: {e}"),
                    })
                }
            }
        }
        Job::Finish { id } => {
            let f = files.remove(&id)?;
            Some(match finish(dir, f) {
                Ok((stored, size, sha256)) => Reply::Done {
                    id,
                    stored,
                    size,
                    sha256,
                },
                Err(e) => Reply::Failed {
                    id,
                    error: format!("cannot store the file: {e}"),
                },
            })
        }
        Job::Abort { id } => {
            if let Some(f) = files.remove(&id) {
                drop(f.file);
                let _ = std::fs::remove_file(&f.tmp);
            }
            None
        }
    }
}

/// Sync, link under a free name, drop the temporary name, sync the directory.
fn finish(dir: &Path, f: OpenFile) -> io::Result<(String, u64, String)> {
    let OpenFile {
        file,
        tmp,
        name,
        hasher,
        size,
    } = f;
    let result = (|| {
        file.sync_all()?;
        drop(file);
        for cand in candidates(&name) {
            match std::fs::hard_link(&tmp, dir.join(&cand)) {
                Ok(()) => return Ok(cand),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "no free name left for this file",
        ))
    })();
    let _ = std::fs::remove_file(&tmp);
    let stored = result?;
    // The new directory entry must be durable too.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok((stored, size, hex(&hasher.finalize())))
}

pub use crate::protocol::upload::hex;
