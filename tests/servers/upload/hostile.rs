//! Hostile peers against `netloop serve upload` (the binary, storing into a temporary
//! directory), part of the reliability suite (RELIABILITY.md), after `tests/servers/echo/hostile.rs`:
//!
//! * traversal and invalid names end to end (`../x`, an absolute path, `a/b`, `..`, NUL, a
//!   300-byte name, ...), 20 peers at once: an error each, nothing created anywhere;
//! * `Filesize` lies: a shorter body then FIN (error, no file left), a longer body (the file
//!   is exactly the declared size, the extra bytes are refused as the next header);
//! * 20 peers that reset mid-upload: no partial or temporary file left;
//! * 50 concurrent uploads of 2 MiB: all byte-exact, RSS bounded by the per-upload disk
//!   queue, not by the file sizes;
//! * name collisions, with an existing file and between concurrent uploads: nothing
//!   overwritten;
//! * SIGTERM while 20 uploads are in flight: exit 0, every client told, no partial file.
//!
//! `tests/servers/upload/server.rs` covers each on an idle in-process server; this file runs them
//! against the binary, in bulk.

use crate::{hostile_common, util};
use hostile_common::*;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use util::*;

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "netloop-hostile-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Sorted names in `dir`.
fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// `netloop serve upload` storing into `dir`.
fn server(dir: &Path, extra: &[&str]) -> Server {
    let d = dir.to_str().unwrap().to_string();
    let mut args = vec!["serve", "upload", "--port", "0", "--upload-dir", &d];
    args.extend_from_slice(extra);
    Server::start(&args)
}

fn header(name: &[u8], size: usize) -> Vec<u8> {
    let mut h = b"Filename: ".to_vec();
    h.extend_from_slice(name);
    h.extend_from_slice(format!("\r\nFilesize: {size}\r\n\r\n").as_bytes());
    h
}

fn sha_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

struct Peer {
    w: TcpStream,
    r: BufReader<TcpStream>,
}

impl Peer {
    fn connect(addr: SocketAddr) -> Peer {
        let s = connect(addr);
        Peer {
            w: s.try_clone().unwrap(),
            r: BufReader::new(s),
        }
    }
    /// The next reply, or `None` at EOF or reset.
    fn read(&mut self) -> Option<Value> {
        let mut line = String::new();
        match self.r.read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(serde_json::from_str(&line).expect("JSON line")),
        }
    }
    /// Replies until a final one (`completed` or `error`).
    fn outcome(&mut self) -> Value {
        loop {
            let v = self.read().expect("a reply before EOF");
            match v["status"].as_str() {
                Some("receiving") | Some("progress") => {}
                _ => return v,
            }
        }
    }
    /// Send a whole upload; returns its final reply.
    fn upload(&mut self, name: &[u8], data: &[u8]) -> Value {
        let mut w = self.w.try_clone().unwrap();
        let mut all = header(name, data.len());
        all.extend_from_slice(data);
        let writer = std::thread::spawn(move || {
            for c in all.chunks(64 * 1024) {
                if w.write_all(c).is_err() {
                    break; // refused early: the reply says why
                }
            }
        });
        let v = self.outcome();
        writer.join().unwrap();
        v
    }
}

#[test]
fn traversal_and_invalid_names_create_nothing_anywhere() {
    let _serial = serial();
    let root = TempDir::new("names");
    let dir = root.0.join("up");
    let outside = root.0.join("outside");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    let srv = server(&dir, &[]);
    let abs = format!("{}/abs", outside.display());
    let long = "n".repeat(300);
    let names: Vec<Vec<u8>> = vec![
        b"../x".to_vec(),
        b"../outside/x".to_vec(),
        abs.into_bytes(),
        b"/etc/netloop-hostile-x".to_vec(),
        b"a/b".to_vec(),
        b"a\\b".to_vec(),
        b"..".to_vec(),
        b".".to_vec(),
        b"x\0y".to_vec(),
        b"\0".to_vec(),
        b"x\x1by".to_vec(),
        long.into_bytes(),
        b"".to_vec(),
        b"up/../../x".to_vec(),
        b"\xff\xfe.bin".to_vec(),
    ];
    // 20 peers at once, each trying every name on a connection of its own.
    let t0 = Instant::now();
    let peers: Vec<_> = (0..20)
        .map(|_| {
            let names = names.clone();
            let addr = srv.addr;
            std::thread::spawn(move || {
                for n in &names {
                    let mut p = Peer::connect(addr);
                    let v = p.upload(n, b"0123456789");
                    assert_eq!(
                        v["status"],
                        "error",
                        "{:?}: {v}",
                        String::from_utf8_lossy(n)
                    );
                    assert!(p.read().is_none(), "closed after the error");
                }
            })
        })
        .collect();
    for p in peers {
        p.join().unwrap();
    }
    let took = t0.elapsed();
    assert_eq!(
        entries(&dir),
        Vec::<String>::new(),
        "something created in the dir"
    );
    assert_eq!(
        entries(&outside),
        Vec::<String>::new(),
        "something created outside"
    );
    assert_eq!(
        entries(&root.0),
        ["outside", "up"],
        "something created next to the dir"
    );
    assert!(!Path::new("/etc/netloop-hostile-x").exists());
    // The server is fine.
    let mut p = Peer::connect(srv.addr);
    assert_eq!(p.upload(b"ok.bin", b"fine")["status"], "completed");
    eprintln!(
        "upload names: 20 peers x {} hostile names refused in {took:?}; nothing created in, \
         next to or outside the directory",
        names.len()
    );
}

#[test]
fn filesize_lies_and_resets_leave_no_partial_file() {
    let _serial = serial();
    let dir = TempDir::new("lies");
    let srv = server(&dir.0, &[]);
    // Shorter body, then FIN: an error, and no file.
    let mut p = Peer::connect(srv.addr);
    let mut b = header(b"short.bin", 100_000);
    b.extend_from_slice(&random_bytes(50_000, 1));
    p.w.write_all(&b).unwrap();
    p.w.shutdown(std::net::Shutdown::Write).unwrap();
    let v = p.outcome();
    assert_eq!(v["status"], "error", "{v}");
    assert!(p.read().is_none());
    // Longer body: the file is exactly the declared size; the extra bytes are read as the
    // next header, which they are not: an error and a close.
    let data = random_bytes(1000, 2);
    let mut p = Peer::connect(srv.addr);
    let mut b = header(b"long.bin", data.len());
    b.extend_from_slice(&data);
    b.extend_from_slice(b"EXTRA BYTES, NOT A HEADER\r\n\r\n");
    p.w.write_all(&b).unwrap();
    let v = p.outcome();
    assert_eq!(v["status"], "completed", "{v}");
    assert_eq!(v["size"], 1000);
    assert_eq!(v["sha256"], sha_hex(&data).as_str());
    let v = p.outcome();
    assert_eq!(v["status"], "error", "{v}");
    assert!(p.read().is_none());
    assert_eq!(std::fs::read(dir.0.join("long.bin")).unwrap(), data);
    // Longer body without anything header-like after it, then FIN: the file is complete,
    // the rest is dropped.
    let mut p = Peer::connect(srv.addr);
    let mut b = header(b"long2.bin", data.len());
    b.extend_from_slice(&data);
    b.extend_from_slice(&[b'z'; 500]);
    p.w.write_all(&b).unwrap();
    p.w.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(p.outcome()["status"], "completed");
    while p.read().is_some() {}
    assert_eq!(std::fs::read(dir.0.join("long2.bin")).unwrap(), data);

    // 20 peers reset mid-upload, each after a different amount of a 1 MiB body.
    let base_fds = open_fds(srv.pid());
    let body = random_bytes(1 << 20, 3);
    for i in 0..20 {
        let mut s = connect(srv.addr);
        s.write_all(&header(format!("reset{i}.bin").as_bytes(), body.len()))
            .unwrap();
        s.write_all(&body[..(i + 1) * 40_000]).unwrap();
        // Wait for `receiving` so the upload really started, then reset.
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        assert!(line.contains("receiving"), "{line}");
        drop(r);
        reset(s);
    }
    wait_until("reset uploads cleaned up", || {
        entries(&dir.0) == ["long.bin", "long2.bin"] && open_fds(srv.pid()) <= base_fds
    });
    eprintln!(
        "upload lies: a shorter body + FIN got an error and left no file; a longer body stored \
         exactly its 1000 declared bytes, the extra refused as a header; 20 resets mid-upload \
         left no partial or temporary file"
    );
}

#[test]
fn fifty_concurrent_uploads_and_name_collisions() {
    let _serial = serial();
    const N: usize = 50;
    const SIZE: usize = 2 << 20;
    let dir = TempDir::new("many");
    std::fs::write(dir.0.join("keep.txt"), b"original").unwrap();
    let srv = server(&dir.0, &[]);
    let rss0 = srv.rss_kib();
    let t0 = Instant::now();
    // 50 distinct files, 2 MiB each, plus 10 uploads all named keep.txt, all at once.
    let uploads: Vec<_> = (0..N + 10)
        .map(|i| {
            let addr = srv.addr;
            std::thread::spawn(move || {
                let (name, data) = if i < N {
                    (format!("f{i}.bin"), random_bytes(SIZE, 100 + i as u64))
                } else {
                    ("keep.txt".to_string(), format!("copy {i}").into_bytes())
                };
                let mut p = Peer::connect(addr);
                let v = p.upload(name.as_bytes(), &data);
                assert_eq!(v["status"], "completed", "{name}: {v}");
                assert_eq!(v["size"], data.len()); // contents: compared on disk below
                (v["filename"].as_str().unwrap().to_string(), data)
            })
        })
        .collect();
    let mut peak = rss0;
    while !uploads.iter().all(|u| u.is_finished()) {
        peak = peak.max(srv.rss_kib());
        std::thread::sleep(Duration::from_millis(10)); // sampling interval
        assert!(t0.elapsed() < TIMEOUT * 2, "uploads never finished");
    }
    let took = t0.elapsed();
    let mut stored = Vec::new();
    for u in uploads {
        let (name, data) = u.join().unwrap();
        assert_eq!(std::fs::read(dir.0.join(&name)).unwrap(), data, "{name}");
        stored.push(name);
    }
    // Nothing overwritten: the original is intact, the ten copies got ten other names.
    assert_eq!(std::fs::read(dir.0.join("keep.txt")).unwrap(), b"original");
    let copies: std::collections::BTreeSet<&String> =
        stored.iter().filter(|n| n.starts_with("keep (")).collect();
    assert_eq!(copies.len(), 10, "{stored:?}");
    assert_eq!(entries(&dir.0).len(), N + 11, "no temporary file left");
    eprintln!(
        "upload concurrency: {N} uploads of {} MiB + 10 colliding names in {took:?}, all \
         byte-exact; the existing keep.txt untouched, copies stored as keep (1..10).txt; \
         server RSS {rss0} KiB -> peak {peak} KiB",
        SIZE >> 20
    );
    // Each upload holds at most MAX_IN_FLIGHT (1 MiB) for the disk plus one read budget
    // (256 KiB): 50 x 1.25 MiB by design, against 100 MiB of files.
    assert!(
        peak < rss0 + 64 * 1024 + 16 * 1024,
        "RSS {rss0} KiB -> {peak} KiB"
    );
}

#[test]
fn sigterm_with_uploads_in_flight_exits_0_and_leaves_no_partial_file() {
    let _serial = serial();
    let dir = TempDir::new("term");
    let mut srv = server(&dir.0, &["--grace", "2s"]);
    // Two complete uploads first: they must survive.
    let mut p = Peer::connect(srv.addr);
    let done = random_bytes(300_000, 9);
    assert_eq!(p.upload(b"done.bin", &done)["status"], "completed");
    drop(p);
    // 20 uploads of 4 MiB, each with 1 MiB sent and a writer still pushing.
    let mut peers = Vec::new();
    for i in 0..20 {
        let mut p = Peer::connect(srv.addr);
        p.w.write_all(&header(format!("inflight{i}.bin").as_bytes(), 4 << 20))
            .unwrap();
        p.w.write_all(&random_bytes(1 << 20, i)).unwrap();
        let v = p.read().expect("receiving");
        assert_eq!(v["status"], "receiving");
        let mut w = p.w.try_clone().unwrap();
        let writer = std::thread::spawn(move || {
            let chunk = vec![b'k'; 16 * 1024];
            // Until the server closes: slow, like a real client on a real network.
            while w.write_all(&chunk).is_ok() {
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        peers.push((p, writer));
    }
    let t0 = Instant::now();
    srv.signal("TERM");
    for (p, writer) in &mut peers {
        let v = p.outcome();
        assert_eq!(v["status"], "error", "{v}");
        while p.read().is_some() {}
        let _ = writer;
    }
    let code = srv.wait_exit();
    let took = t0.elapsed();
    for (_, w) in peers {
        w.join().unwrap();
    }
    assert_eq!(code, Some(0));
    assert_eq!(
        entries(&dir.0),
        ["done.bin"],
        "partial or temporary files left"
    );
    assert_eq!(std::fs::read(dir.0.join("done.bin")).unwrap(), done);
    eprintln!(
        "upload SIGTERM: 20 uploads in flight (1 MiB of 4 MiB each, writers still pushing) \
         all told and closed, exit 0 after {took:?}; only the completed file remains"
    );
}
