//! `netloop serve upload --workers 3`: concurrent uploads of one file name
//! on several workers never overwrite each other (the filesystem's `link`
//! arbitrates), and every byte arrives.

use crate::spread;
use crate::util::{self, random_bytes};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("netloop-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn sha_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn concurrent_uploads_of_one_name_on_three_workers_never_collide() {
    const UPLOADS: usize = 24;
    let dir = TempDir::new("workers-upload");
    let path = dir.0.to_str().unwrap().to_string();
    let w = spread::start("upload", 3, &["--upload-dir", &path]);
    let addr = w.addr();
    let uploads: Vec<_> = (0..UPLOADS)
        .map(|i| {
            let data = random_bytes(100_000 + i * 7_919, i as u64 + 1);
            std::thread::spawn(move || {
                let s = util::connect(addr);
                let mut out = s.try_clone().unwrap();
                let mut r = BufReader::new(s);
                let head = format!(
                    "Filename: same.bin\r\nFilesize: {}\r\nContent-Type: application/octet-stream\r\n\r\n",
                    data.len()
                );
                out.write_all(head.as_bytes()).unwrap();
                for chunk in data.chunks(16 * 1024) {
                    out.write_all(chunk).unwrap();
                }
                loop {
                    let mut line = String::new();
                    let n = r.read_line(&mut line).expect("read a reply");
                    assert!(n > 0, "EOF before completed");
                    let v: Value = serde_json::from_str(&line).expect("a JSON line");
                    match v["status"].as_str() {
                        Some("receiving" | "progress") => {}
                        Some("completed") => return (data, v),
                        _ => panic!("unexpected reply {v}"),
                    }
                }
            })
        })
        .collect();
    let done: Vec<(Vec<u8>, Value)> = uploads.into_iter().map(|t| t.join().unwrap()).collect();
    let per_worker = w.accepted();
    eprintln!("uploads per worker: {per_worker:?}");
    assert_eq!(per_worker.iter().sum::<u64>(), UPLOADS as u64);
    assert!(spread::busy(&per_worker) >= 2, "spread: {per_worker:?}");

    let mut names = BTreeSet::new();
    for (data, v) in &done {
        let name = v["filename"].as_str().expect("a stored name").to_string();
        assert_eq!(v["size"], data.len() as u64, "{v}");
        assert_eq!(v["sha256"], sha_hex(data).as_str(), "{v}");
        assert_eq!(
            std::fs::read(dir.0.join(&name)).unwrap(),
            *data,
            "{name} holds its own upload"
        );
        assert!(names.insert(name.clone()), "{name} stored twice");
    }
    let mut want: BTreeSet<String> = (1..UPLOADS).map(|i| format!("same ({i}).bin")).collect();
    want.insert("same.bin".into());
    assert_eq!(names, want);
    let on_disk: BTreeSet<String> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(on_disk, want, "no temporary file left, nothing else");
}
