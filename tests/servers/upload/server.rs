//! The upload server over loopback: byte-exact files of 0 B, 1 B and
//! several MiB, pipelined uploads, hostile names, aborted uploads, name
//! clashes, the client binary, and the seed's client (07) when node exists.

use crate::util;
use netloop::servers::upload::server::{Upload, UploadConfig};
use netloop::{ListenOptions, SocketOptions};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use util::*;

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "netloop-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    fn entries(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn start_in(dir: &Path, idle: Option<Duration>) -> TestLoop {
    start_cfg(UploadConfig::new(dir.to_path_buf()), idle)
}

fn header(name: &str, size: usize) -> Vec<u8> {
    format!(
        "Filename: {name}\r\nFilesize: {size}\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes()
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
    fn read(&mut self) -> Option<Value> {
        let mut line = String::new();
        match self.r.read_line(&mut line) {
            Ok(0) => None,
            Ok(_) => Some(serde_json::from_str(&line).expect("JSON line")),
            Err(e) => panic!("read: {e}"),
        }
    }
    /// Read replies up to `completed`; returns it and the progress replies.
    fn until_completed(&mut self) -> (Value, Vec<Value>) {
        let mut progress = Vec::new();
        loop {
            let v = self.read().expect("a reply before EOF");
            match v["status"].as_str() {
                Some("receiving") => {}
                Some("progress") => progress.push(v),
                Some("completed") => return (v, progress),
                _ => panic!("unexpected reply {v}"),
            }
        }
    }
}

#[test]
fn zero_one_and_several_mib_byte_exact() {
    let dir = TempDir::new("upload-sizes");
    let l = start_in(&dir.0, None);
    for (name, data) in [
        ("empty.bin", Vec::new()),
        ("one.bin", vec![0x5a]),
        ("big.bin", random_bytes(5 << 20, 7)),
    ] {
        let mut p = Peer::connect(l.addr);
        // Header and the start of the body in one write.
        let mut first = header(name, data.len());
        let split = data.len().min(1000);
        first.extend_from_slice(&data[..split]);
        p.w.write_all(&first).unwrap();
        for chunk in data[split..].chunks(100_000) {
            p.w.write_all(chunk).unwrap();
        }
        let (done, progress) = p.until_completed();
        assert_eq!(done["filename"], name);
        assert_eq!(done["size"], data.len() as u64);
        assert_eq!(done["sha256"], sha_hex(&data).as_str());
        assert_eq!(std::fs::read(dir.0.join(name)).unwrap(), data, "{name}");
        assert!(progress.len() <= 100, "{} progress replies", progress.len());
        if data.len() < 64 * 1024 {
            assert!(progress.is_empty(), "{name}: {progress:?}");
        }
        // At most one per 1 % and per 64 KiB.
        let mut last = 0;
        for p in &progress {
            let got = p["received"].as_u64().unwrap();
            assert!(got >= last + 64 * 1024, "{last} then {got}");
            assert!(got - last >= data.len() as u64 / 100, "{last} then {got}");
            assert!(p["percentage"].as_u64().unwrap() <= 100, "{p}");
            last = got;
        }
    }
    assert_eq!(dir.entries(), ["big.bin", "empty.bin", "one.bin"]);
}

#[test]
fn two_uploads_on_one_connection_in_one_write() {
    let dir = TempDir::new("upload-two");
    let l = start_in(&dir.0, None);
    let mut p = Peer::connect(l.addr);
    let a = b"first file\n".to_vec();
    let b = random_bytes(300_000, 9);
    let mut all = header("a.txt", a.len());
    all.extend_from_slice(&a);
    all.extend(header("b.bin", b.len()));
    all.extend_from_slice(&b);
    p.w.write_all(&all).unwrap();
    let (d1, _) = p.until_completed();
    let (d2, _) = p.until_completed();
    assert_eq!(d1["filename"], "a.txt");
    assert_eq!(d2["filename"], "b.bin");
    assert_eq!(std::fs::read(dir.0.join("a.txt")).unwrap(), a);
    assert_eq!(std::fs::read(dir.0.join("b.bin")).unwrap(), b);
}

#[test]
fn traversal_and_invalid_names_are_refused_and_nothing_is_written() {
    let parent = TempDir::new("upload-traversal");
    let dir = parent.0.join("uploads");
    std::fs::create_dir(&dir).unwrap();
    let l = start_in(&dir, None);
    let long = "a".repeat(300);
    for name in ["../x", "/etc/x", "a/b", "..", "a\\b", "a\0b", long.as_str()] {
        let mut p = Peer::connect(l.addr);
        let mut req = header(name, 3);
        req.extend_from_slice(b"abc");
        p.w.write_all(&req).unwrap();
        let v = p.read().expect("an error reply");
        assert_eq!(v["status"], "error", "{name:?}: {v}");
        assert!(p.read().is_none(), "{name:?}: closed after the error");
    }
    assert!(std::fs::read_dir(&dir).unwrap().next().is_none());
    let mut up: Vec<String> = std::fs::read_dir(&parent.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    up.sort();
    assert_eq!(up, ["uploads"], "nothing outside the directory");
}

#[test]
fn bad_headers_get_an_error_and_a_close() {
    let dir = TempDir::new("upload-badheader");
    let l = start_in(&dir.0, None);
    for req in [
        &b"Filename: a\r\nFilesize: 12abc\r\n\r\n"[..],
        b"Filename: a\r\n\r\n",
        b"Filesize: 3\r\n\r\nabc",
        b"Filename: a\r\nFilesize: -1\r\n\r\n",
        b"no colon here\r\n\r\n",
    ] {
        let mut p = Peer::connect(l.addr);
        p.w.write_all(req).unwrap();
        let v = p.read().expect("an error reply");
        assert_eq!(v["status"], "error", "{v}");
        assert!(p.read().is_none());
    }
    // 8 KiB of header without a blank line.
    let mut p = Peer::connect(l.addr);
    let _ = p.w.write_all(&vec![b'x'; 9000]);
    assert_eq!(p.read().unwrap()["status"], "error");
    assert!(dir.entries().is_empty());
}

#[test]
fn a_disconnect_mid_upload_leaves_no_file() {
    let dir = TempDir::new("upload-abort");
    let l = start_in(&dir.0, None);
    let mut p = Peer::connect(l.addr);
    let mut req = header("partial.bin", 1 << 20);
    req.extend(random_bytes(400_000, 3));
    p.w.write_all(&req).unwrap();
    assert_eq!(p.read().unwrap()["status"], "receiving");
    assert_eq!(
        p.read().unwrap()["status"],
        "progress",
        "bytes reached the disk"
    );
    drop(p);
    wait_until("the partial upload is removed", || dir.entries().is_empty());
}

#[test]
fn an_idle_upload_times_out_and_leaves_no_file() {
    let dir = TempDir::new("upload-idle");
    let l = start_in(&dir.0, Some(Duration::from_millis(200)));
    let mut p = Peer::connect(l.addr);
    let mut req = header("slow.bin", 1000);
    req.extend_from_slice(&[1; 10]);
    p.w.write_all(&req).unwrap();
    let mut last = Value::Null;
    while let Some(v) = p.read() {
        last = v;
    }
    assert_eq!(last["status"], "error");
    assert_eq!(last["message"], "idle timeout");
    wait_until("the partial upload is removed", || dir.entries().is_empty());
}

#[test]
fn two_concurrent_uploads_with_one_name_keep_both_and_nothing_is_overwritten() {
    let dir = TempDir::new("upload-clash");
    std::fs::write(dir.0.join("keep.txt"), b"original").unwrap();
    let l = start_in(&dir.0, None);
    let a = random_bytes(700_000, 1);
    let b = random_bytes(500_000, 2);
    let mut pa = Peer::connect(l.addr);
    let mut pb = Peer::connect(l.addr);
    pa.w.write_all(&header("same.bin", a.len())).unwrap();
    pb.w.write_all(&header("same.bin", b.len())).unwrap();
    pa.w.write_all(&a[..300_000]).unwrap();
    pb.w.write_all(&b).unwrap();
    pa.w.write_all(&a[300_000..]).unwrap();
    let (da, _) = pa.until_completed();
    let (db, _) = pb.until_completed();
    let na = da["filename"].as_str().unwrap().to_string();
    let nb = db["filename"].as_str().unwrap().to_string();
    let mut names = vec![na.clone(), nb.clone()];
    names.sort();
    assert_eq!(names, ["same (1).bin", "same.bin"]);
    assert_eq!(std::fs::read(dir.0.join(&na)).unwrap(), a);
    assert_eq!(std::fs::read(dir.0.join(&nb)).unwrap(), b);
    let mut pk = Peer::connect(l.addr);
    let mut req = header("keep.txt", 3);
    req.extend_from_slice(b"new");
    pk.w.write_all(&req).unwrap();
    let (dk, _) = pk.until_completed();
    assert_eq!(dk["filename"], "keep (1).txt");
    assert_eq!(std::fs::read(dir.0.join("keep.txt")).unwrap(), b"original");
    assert_eq!(std::fs::read(dir.0.join("keep (1).txt")).unwrap(), b"new");
}

#[test]
fn the_client_binary_uploads_and_verifies() {
    let dir = TempDir::new("upload-client-dst");
    let src = TempDir::new("upload-client-src");
    let l = start_in(&dir.0, None);
    let f1 = src.0.join("one.bin");
    let f2 = src.0.join("two.bin");
    let f3 = src.0.join("empty");
    std::fs::write(&f1, random_bytes(3 << 20, 11)).unwrap();
    std::fs::write(&f2, b"hello").unwrap();
    std::fs::write(&f3, b"").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_netloop"))
        .arg("upload")
        .arg(l.addr.to_string())
        .args([&f1, &f2, &f3])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}\n{err}");
    assert_eq!(text.matches("uploaded ").count(), 3, "{text}");
    assert!(
        err.contains("receiving: two.bin (5 bytes)"),
        "plain lines on a pipe: {err}"
    );
    assert!(
        !err.contains("progress: 0%"),
        "a small file gets no progress replies: {err}"
    );
    for f in [&f1, &f2, &f3] {
        let name = f.file_name().unwrap();
        assert_eq!(
            std::fs::read(dir.0.join(name)).unwrap(),
            std::fs::read(f).unwrap()
        );
    }
    // A refused file makes the exit status non-zero.
    let bad = src.0.join("missing");
    let out = Command::new(env!("CARGO_BIN_EXE_netloop"))
        .arg("upload")
        .arg(l.addr.to_string())
        .arg(&bad)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn seed_client_07_against_our_server() {
    let seed = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/seed/07-binary-upload.js"
    );
    if Command::new("node").arg("--version").output().is_err() {
        println!("skipped: node is not installed");
        return;
    }
    if !Path::new(seed).exists() {
        println!("skipped: {seed} not found");
        return;
    }
    let dir = TempDir::new("upload-seed-dst");
    let src = TempDir::new("upload-seed-src");
    let data = random_bytes(1 << 20, 5);
    let f = src.0.join("seed.bin");
    std::fs::write(&f, &data).unwrap();
    let l = start_in(&dir.0, None);
    let out = Command::new("node")
        .arg(seed)
        .arg("client")
        .arg(&f)
        .env("PORT", l.addr.port().to_string())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_until("the seed's upload is stored", || {
        std::fs::read(dir.0.join("seed.bin")).is_ok_and(|d| d == data)
    });
}

#[test]
fn a_disk_error_is_reported_to_the_client() {
    let parent = TempDir::new("upload-diskerr");
    let dir = parent.0.join("gone");
    std::fs::create_dir(&dir).unwrap();
    let l = start_in(&dir, None);
    // The directory disappears: the worker cannot create the file.
    std::fs::remove_dir(&dir).unwrap();
    let mut p = Peer::connect(l.addr);
    let mut req = header("x.bin", 5);
    req.extend_from_slice(b"12345");
    p.w.write_all(&req).unwrap();
    let mut last = Value::Null;
    while let Some(v) = p.read() {
        last = v;
    }
    assert_eq!(last["status"], "error", "{last}");
    assert!(
        last["message"].as_str().unwrap().contains("cannot"),
        "{last}"
    );
    assert!(!dir.exists());
}

#[test]
fn two_hundred_pipelined_uploads_on_one_connection() {
    // All written before any reply is read: each upload's `completed` comes
    // before the next one's `receiving`, and every file is stored.
    let dir = TempDir::new("upload-pipeline");
    let l = start_in(&dir.0, None);
    let mut p = Peer::connect(l.addr);
    let mut all = Vec::new();
    for i in 0..200 {
        all.extend(header(&format!("f{i}"), 2));
        all.extend_from_slice(b"ok");
    }
    p.w.write_all(&all).unwrap();
    let mut done = 0;
    while done < 200 {
        if p.until_completed().0["status"] == "completed" {
            done += 1;
        }
    }
    assert_eq!(dir.entries().len(), 200);
}

#[test]
fn a_slow_disk_pauses_the_socket_instead_of_buffering() {
    let dir = TempDir::new("upload-slowdisk");
    let mut cfg = UploadConfig::new(dir.0.clone());
    // 1 ms per write of at most one 64 KiB read: about 0.4 s of "disk".
    cfg.write_delay = Duration::from_millis(1);
    let l = TestLoop::start_service(ListenOptions::default(), move || Upload::new(cfg));
    // Large against the kernel's socket buffers (several MiB on loopback,
    // which absorb data whatever the server does), so the measure is the
    // server's pause, not the buffers, on a loaded machine too.
    let total = 24 << 20;
    let data = random_bytes(total, 21);
    let mut p = Peer::connect(l.addr);
    let mut w = p.w.try_clone().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let body = data.clone();
    let writer = std::thread::spawn(move || {
        w.write_all(&header("slow.bin", body.len())).unwrap();
        for chunk in body.chunks(64 * 1024) {
            w.write_all(chunk).unwrap();
        }
        tx.send(()).unwrap();
    });
    // When the writer gets rid of its last byte, the server must already
    // have put most of the file on disk: without the pause it would have
    // read everything into memory at once and confirmed only a few writes.
    let mut written_when_sent = None;
    let mut last = 0;
    loop {
        let v = p.read().expect("reply");
        if written_when_sent.is_none() && rx.try_recv().is_ok() {
            written_when_sent = Some(last);
        }
        match v["status"].as_str() {
            Some("progress") => last = v["received"].as_u64().unwrap(),
            Some("completed") => break,
            _ => {}
        }
    }
    writer.join().unwrap();
    let at_send = written_when_sent.unwrap_or(last);
    eprintln!("on disk when the client had sent everything: {at_send} of {total}");
    assert!(
        at_send >= (total / 8) as u64,
        "only {at_send} of {total} bytes were on disk when the client had sent everything"
    );
    assert_eq!(std::fs::read(dir.0.join("slow.bin")).unwrap(), data);
}

#[test]
fn the_client_binary_prints_server_text_without_terminal_escapes() {
    // A hostile server: reads the header, answers with a non-JSON line, a
    // `receiving` naming a file with escapes, and an error whose message
    // carries them (OSC retitle, CSI clear, their C1 forms, a bidi override).
    const ESC: &str = "\u{1b}]0;pwned\u{7}\u{1b}[2J\u{9b}31m\u{9d}0;t\u{202e}";
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        let Ok((s, _)) = l.accept() else { return };
        s.set_read_timeout(Some(TIMEOUT)).unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut line = String::new();
        while r.read_line(&mut line).is_ok_and(|n| n > 2) {
            line.clear();
        }
        let mut body = [0u8; 5];
        let _ = std::io::Read::read_exact(&mut r, &mut body);
        let mut w = s;
        let name = serde_json::json!({"status": "receiving", "filename": ESC, "total": 5});
        let err = serde_json::json!({"status": "error", "message": ESC});
        let _ = write!(w, "plain {ESC}\n{name}\n{err}\n");
        // Hold the connection until the client closes it (no reset).
        let _ = std::io::Read::read_to_end(&mut r, &mut Vec::new());
    });
    let src = TempDir::new("upload-client-esc");
    let f = src.0.join("f.txt");
    std::fs::write(&f, b"hello").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_netloop"))
        .arg("upload")
        .arg(addr.to_string())
        .arg(&f)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("server: plain \u{fffd}]0;pwned"), "{err}");
    assert!(err.contains("error: server: \u{fffd}"), "{err}");
    for stream in [&out.stdout, &out.stderr] {
        let text = String::from_utf8_lossy(stream);
        assert!(
            !text
                .chars()
                .any(|c| matches!(c, '\u{1b}' | '\u{7}' | '\u{9b}' | '\u{9d}' | '\u{202e}')),
            "escape printed: {text:?}"
        );
    }
}

fn start_cfg(cfg: UploadConfig, idle: Option<Duration>) -> TestLoop {
    let opts = ListenOptions {
        socket: SocketOptions {
            idle_timeout: idle,
            ..SocketOptions::default()
        },
        ..ListenOptions::default()
    };
    TestLoop::start_service(opts, move || Upload::new(cfg))
}

/// The last reply before EOF (the server closed), or `Null`.
fn last_reply_before_close(p: &mut Peer) -> Value {
    let mut last = Value::Null;
    while let Some(v) = p.read() {
        last = v;
    }
    last
}

#[test]
fn a_header_trickled_under_the_idle_timeout_is_closed_at_its_deadline() {
    // One byte every 150 ms keeps a 400 ms idle timeout from ever firing;
    // the header block's own deadline (shortened to 1 s here; 10 s by
    // default) closes the connection anyway.
    let dir = TempDir::new("upload-trickle");
    let mut cfg = UploadConfig::new(dir.0.clone());
    cfg.header_deadline = Duration::from_secs(1);
    let l = start_cfg(cfg, Some(Duration::from_millis(400)));
    let mut p = Peer::connect(l.addr);
    let mut w = p.w.try_clone().unwrap();
    let start = std::time::Instant::now();
    let trickler = std::thread::spawn(move || {
        // The attack itself is paced: 40 bytes over 6 s at most.
        for b in b"Filename: slow.txt\r\nFilesize: 1\r\nX: yyyy".iter() {
            if w.write_all(&[*b]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(150));
        }
    });
    let last = last_reply_before_close(&mut p);
    let took = start.elapsed();
    assert_eq!(last["status"], "error", "{last}");
    assert!(
        last["message"]
            .as_str()
            .unwrap()
            .contains("header block not complete"),
        "{last}"
    );
    assert!(took < Duration::from_secs(3), "closed after {took:?}");
    let _ = trickler.join();
    assert!(dir.entries().is_empty(), "{:?}", dir.entries());
}

#[test]
fn with_a_token_an_unauthenticated_connection_is_closed_at_the_auth_deadline() {
    let dir = TempDir::new("upload-authdeadline");
    let mut cfg = UploadConfig::new(dir.0.clone());
    cfg.token = Some(netloop::protocol::auth::Token::from_text("tok").unwrap());
    cfg.auth_deadline = Duration::from_millis(300);
    // No idle timeout: only the authentication deadline can close it.
    let l = start_cfg(cfg, None);
    let mut p = Peer::connect(l.addr);
    let last = last_reply_before_close(&mut p);
    assert_eq!(last["status"], "error", "{last}");
    assert_eq!(last["message"], "authentication timeout", "{last}");
    // A client that authenticates in time is not closed by it.
    let mut p = Peer::connect(l.addr);
    let mut req = b"Filename: ok.txt\r\nFilesize: 2\r\nToken: tok\r\n\r\nhi".to_vec();
    p.w.write_all(&req).unwrap();
    p.until_completed();
    // Well past the deadline, the connection still serves a second upload.
    std::thread::sleep(Duration::from_millis(500));
    req = b"Filename: ok2.txt\r\nFilesize: 2\r\nToken: tok\r\n\r\nhi".to_vec();
    p.w.write_all(&req).unwrap();
    p.until_completed();
}

#[test]
fn temp_names_cannot_be_squatted_and_stored_files_are_private() {
    let dir = TempDir::new("upload-squat");
    let l = start_in(&dir.0, None);
    // The server's own temporary namespace (and any hidden name) is refused.
    for name in [
        ".netloop-upload-1-1.part",
        ".netloop-upload-0a.part",
        ".bashrc",
    ] {
        let mut p = Peer::connect(l.addr);
        let mut req = header(name, 1);
        req.push(b'x');
        p.w.write_all(&req).unwrap();
        let last = last_reply_before_close(&mut p);
        assert_eq!(last["status"], "error", "{name}: {last}");
        assert!(
            last["message"]
                .as_str()
                .unwrap()
                .contains("must not start with '.'"),
            "{last}"
        );
    }
    // Uploads afterwards work, and are stored 0600 whatever the umask.
    use std::os::unix::fs::PermissionsExt;
    for i in 0..3 {
        let mut p = Peer::connect(l.addr);
        let mut req = header(&format!("f{i}.txt"), 2);
        req.extend_from_slice(b"ok");
        p.w.write_all(&req).unwrap();
        p.until_completed();
        let mode = std::fs::metadata(dir.0.join(format!("f{i}.txt")))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
    }
    assert_eq!(dir.entries(), ["f0.txt", "f1.txt", "f2.txt"]);
}

#[test]
fn a_slow_fsync_past_the_idle_timeout_still_completes() {
    // Every write and the final fsync take 500 ms; the idle timeout is
    // 200 ms. The connection is quiet only because the server is waiting
    // for its disk: the client gets `completed`, not an idle-timeout error
    // for a file that is stored anyway.
    let dir = TempDir::new("upload-slowsync");
    let mut cfg = UploadConfig::new(dir.0.clone());
    cfg.write_delay = Duration::from_millis(500);
    let l = start_cfg(cfg, Some(Duration::from_millis(200)));
    let mut p = Peer::connect(l.addr);
    let mut req = header("slow.txt", 3);
    req.extend_from_slice(b"abc");
    p.w.write_all(&req).unwrap();
    let (done, _) = p.until_completed();
    assert_eq!(done["size"], 3);
    assert_eq!(std::fs::read(dir.0.join("slow.txt")).unwrap(), b"abc");
}

#[test]
fn the_binary_claims_its_directory_and_removes_stale_temp_files() {
    let dir = TempDir::new("upload-stale");
    let stale = dir
        .0
        .join(".netloop-upload-0123456789abcdef0123456789abcdef.part");
    std::fs::write(&stale, b"left by a crash").unwrap();
    std::fs::write(dir.0.join("keep.txt"), b"kept").unwrap();
    let d = dir.0.display().to_string();
    let srv = Server::start(&["serve", "upload", "--port", "0", "--upload-dir", &d]);
    assert!(!stale.exists(), "stale temporary file still there");
    assert!(dir.0.join("keep.txt").exists());
    // A second server on the same directory is refused: its cleaning would
    // remove the first one's live temporary files.
    let out = Command::new(env!("CARGO_BIN_EXE_netloop"))
        .args(["serve", "upload", "--port", "0", "--upload-dir", &d])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("another upload server uses this directory"),
        "{err}"
    );
    drop(srv);
}

#[test]
fn token_guesses_are_limited_per_address_across_connections() {
    use netloop::protocol::auth::ADDRESS_BURST;
    let dir = TempDir::new("upload-guess");
    let mut cfg = UploadConfig::new(dir.0.clone());
    cfg.token = Some(netloop::protocol::auth::Token::from_text("right").unwrap());
    let l = start_cfg(cfg, None);
    let from = |src: &str| {
        use socket2::{Domain, Socket, Type};
        let sock = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        let a: SocketAddr = format!("{src}:0").parse().unwrap();
        sock.bind(&a.into()).unwrap();
        sock.connect(&l.addr.into()).unwrap();
        let s: TcpStream = sock.into();
        s.set_read_timeout(Some(TIMEOUT)).unwrap();
        Peer {
            w: s.try_clone().unwrap(),
            r: BufReader::new(s),
        }
    };
    let upload = |p: &mut Peer, token: &str| {
        let req = format!("Filename: g.txt\r\nFilesize: 1\r\nToken: {token}\r\n\r\nx");
        p.w.write_all(req.as_bytes()).unwrap();
    };
    // A client of that address authenticates first and keeps its connection.
    let mut kept = from("127.0.0.1");
    upload(&mut kept, "right");
    kept.until_completed();
    // Guesses on new connections, each closed at once, more than a burst.
    for i in 0..ADDRESS_BURST + 3 {
        let mut p = from("127.0.0.1");
        upload(&mut p, &format!("guess{i}"));
        let _ = p.w.shutdown(std::net::Shutdown::Write);
    }
    // Now even the right token from that address is refused...
    let mut p = from("127.0.0.1");
    upload(&mut p, "right");
    let last = last_reply_before_close(&mut p);
    assert!(
        last["message"]
            .as_str()
            .unwrap()
            .contains("too many failed"),
        "{last}"
    );
    // ...while another address is served, and so is the connection that
    // proved itself before the guessing began.
    let mut p = from("127.0.0.3");
    upload(&mut p, "right");
    p.until_completed();
    upload(&mut kept, "right");
    kept.until_completed();
}

/// `netloop upload` with `args`; (success, stdout, stderr).
fn upload_client(args: &[&std::ffi::OsStr]) -> (bool, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_netloop"))
        .arg("upload")
        .args(args)
        .env_remove("NETLOOP_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + TIMEOUT;
    while child.try_wait().unwrap().is_none() {
        assert!(std::time::Instant::now() < deadline, "client did not exit");
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A one-connection server on a thread: reads one header block and its
/// `Filesize` bytes, then writes `reply(size)` (nothing if `None`) and
/// keeps the connection open until the client closes.
fn fake_upload_server(
    reply: impl FnOnce(usize) -> Option<String> + Send + 'static,
) -> (SocketAddr, std::thread::JoinHandle<()>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let t = std::thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(TIMEOUT)).unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut size = 0usize;
        loop {
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.strip_prefix("Filesize: ") {
                size = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; size];
        std::io::Read::read_exact(&mut r, &mut body).unwrap();
        if let Some(text) = reply(size) {
            (&s).write_all(text.as_bytes()).unwrap();
        }
        let mut rest = Vec::new();
        let _ = std::io::Read::read_to_end(&mut r, &mut rest);
    });
    (addr, t)
}

/// The tutorial's server answers `completed` without `sha256`: the size is
/// checked, the client says no checksum was compared, and succeeds; a wrong
/// size still fails.
#[test]
fn client_accepts_a_completed_reply_without_checksum() {
    let src = TempDir::new("upload-nosha");
    let f = src.0.join("data.bin");
    std::fs::write(&f, random_bytes(200_000, 3)).unwrap();
    let (addr, t) = fake_upload_server(|n| {
        Some(format!(
            "{{\"status\":\"completed\",\"filename\":\"data.bin\",\"size\":{n}}}\n"
        ))
    });
    let a = addr.to_string();
    let (ok, out, err) = upload_client(&[a.as_ref(), f.as_os_str()]);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("the server sent no checksum"), "{out}");
    t.join().unwrap();

    let (addr, t) = fake_upload_server(|n| {
        Some(format!(
            "{{\"status\":\"completed\",\"filename\":\"data.bin\",\"size\":{}}}\n",
            n - 1
        ))
    });
    let a = addr.to_string();
    let (ok, _, err) = upload_client(&[a.as_ref(), f.as_os_str()]);
    assert!(!ok);
    assert!(err.contains("server stored 199999 bytes"), "{err}");
    t.join().unwrap();
}

/// A server that never answers after the last byte: a clear error after
/// `--reply-timeout`, exit 1.
#[test]
fn client_times_out_waiting_for_the_reply() {
    let src = TempDir::new("upload-silent");
    let f = src.0.join("small.txt");
    std::fs::write(&f, b"hello").unwrap();
    let (addr, t) = fake_upload_server(|_| None);
    let a = addr.to_string();
    let started = std::time::Instant::now();
    let (ok, _, err) = upload_client(&[
        "--reply-timeout".as_ref(),
        "300ms".as_ref(),
        a.as_ref(),
        f.as_os_str(),
    ]);
    assert!(!ok);
    assert!(
        err.contains("no reply from the server within 300ms after the last byte"),
        "{err}"
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
    t.join().unwrap();
}

/// Every file is checked before connecting: a missing one, a directory, and
/// nothing reaches the server (it never sees a connection).
#[test]
fn client_checks_every_file_before_connecting() {
    let src = TempDir::new("upload-check");
    let good = src.0.join("good.txt");
    std::fs::write(&good, b"fine").unwrap();
    let missing = src.0.join("missing");
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let a = l.local_addr().unwrap().to_string();
    let (ok, _, err) = upload_client(&[
        a.as_ref(),
        good.as_os_str(),
        missing.as_os_str(),
        src.0.as_os_str(),
    ]);
    assert!(!ok);
    assert!(err.contains("missing: No such file"), "{err}");
    assert!(err.contains("not a regular file"), "{err}");
    assert!(err.contains("nothing was sent"), "{err}");
    assert_eq!(
        l.accept().map(|_| ()).unwrap_err().kind(),
        std::io::ErrorKind::WouldBlock,
        "the client connected"
    );
}

/// `upload --token FILE` against `serve upload --token`: the right token
/// stores the file, a wrong one is one line and exit 1.
#[test]
fn client_token_is_sent_in_the_header() {
    let dir = TempDir::new("upload-token-dst");
    let src = TempDir::new("upload-token-src");
    let good = src.0.join("good.token");
    let bad = src.0.join("bad.token");
    std::fs::write(&good, "upload-secret\n").unwrap();
    std::fs::write(&bad, "guess\n").unwrap();
    let f = src.0.join("doc.txt");
    std::fs::write(&f, b"authenticated upload").unwrap();
    let srv = Server::start(&[
        "serve",
        "upload",
        "--port",
        "0",
        "--upload-dir",
        dir.0.to_str().unwrap(),
        "--token",
        good.to_str().unwrap(),
    ]);
    let a = srv.addr.to_string();
    let (ok, out, err) = upload_client(&[
        a.as_ref(),
        f.as_os_str(),
        "--token".as_ref(),
        good.as_os_str(),
    ]);
    assert!(ok, "{out}\n{err}");
    assert_eq!(
        std::fs::read(dir.0.join("doc.txt")).unwrap(),
        b"authenticated upload"
    );
    let (ok, _, err) = upload_client(&[
        a.as_ref(),
        f.as_os_str(),
        "--token".as_ref(),
        bad.as_os_str(),
    ]);
    assert!(!ok);
    assert_eq!(
        err.trim(),
        "error: authentication failed: wrong token",
        "one line"
    );
}

/// `netloop serve upload --upload-dir DIR --port 0`: (exit code, stderr)
/// when it refuses to start within the timeout.
fn refused_start(dir: &Path) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_netloop"))
        .args(["serve", "upload", "--port", "0", "--upload-dir"])
        .arg(dir)
        .env_remove("NETLOOP_TOKEN")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `--upload-dir` is checked at start: a directory without room for files
/// and a path whose parent is missing are refused in one line; a missing
/// last component is created, and the log says so.
#[test]
fn upload_dir_is_checked_at_start() {
    if Path::new("/proc/self").is_dir() {
        let (code, err) = refused_start(Path::new("/proc"));
        assert_eq!(code, Some(1));
        assert!(
            err.starts_with("error: --upload-dir /proc: cannot create files in it:"),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
    } else {
        println!("skipped the unwritable case: no /proc here");
    }
    let base = TempDir::new("upload-dir-check");
    let deep = base.0.join("typo").join("uploads");
    let (code, err) = refused_start(&deep);
    assert_eq!(code, Some(1));
    assert!(err.contains("nor does its parent"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(!base.0.join("typo").exists(), "no parent created");
    let file = base.0.join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    let (code, err) = refused_start(&file);
    assert_eq!(code, Some(1));
    assert!(err.contains("not a directory"), "{err}");

    let fresh = base.0.join("uploads");
    let srv = Server::start(&[
        "serve",
        "upload",
        "--port",
        "0",
        "--upload-dir",
        fresh.to_str().unwrap(),
    ]);
    assert!(fresh.is_dir());
    let said = srv
        .startup
        .iter()
        .any(|l| l.contains("WARN") && l.contains("created the upload directory"));
    assert!(said, "{:?}", srv.startup);
    drop(srv);
}

/// An aborted upload and a storage error are logged at warn level with the
/// peer's address and the file name.
#[test]
fn lost_uploads_are_logged_with_peer_and_name() {
    let base = TempDir::new("upload-warn");
    let dir = base.0.join("store");
    std::fs::create_dir(&dir).unwrap();
    let srv = Server::start(&[
        "serve",
        "upload",
        "--port",
        "0",
        "--upload-dir",
        dir.to_str().unwrap(),
    ]);
    let mut p = Peer::connect(srv.addr);
    let peer = p.w.local_addr().unwrap().to_string();
    let mut req = header("half.bin", 1000);
    req.extend_from_slice(&[7u8; 300]);
    p.w.write_all(&req).unwrap();
    assert_eq!(p.read().unwrap()["status"], "receiving");
    drop(p);
    let line = srv.wait_log("aborted");
    assert!(line.contains("WARN"), "{line}");
    assert!(line.contains(&peer), "{line}");
    assert!(
        line.contains("\"half.bin\" aborted after 300 of 1000 bytes"),
        "{line}"
    );

    // The directory disappears under the server: storing fails. (The
    // server's file thread may still be removing the aborted upload's
    // temporary file, so a first attempt can find the directory not yet
    // empty: retry until it is gone.)
    wait_until("the upload directory removed", || {
        std::fs::remove_dir_all(&dir).is_ok() || !dir.exists()
    });
    let mut p = Peer::connect(srv.addr);
    let peer = p.w.local_addr().unwrap().to_string();
    let mut req = header("lost.bin", 5);
    req.extend_from_slice(b"12345");
    p.w.write_all(&req).unwrap();
    let line = srv.wait_log("storing \"lost.bin\" failed");
    assert!(line.contains("WARN"), "{line}");
    assert!(line.contains(&peer), "{line}");
}
