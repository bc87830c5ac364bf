//! The upload directory, checked at start: `--upload-dir` must be a
//! directory the server can create files in, found out before the first
//! client has sent a byte rather than on its first upload.
//!
//! A missing directory is created only if its parent exists, and the caller
//! says so: a typo in a parent path (`/srv/uplaods/in`) must not silently
//! create a tree somewhere unexpected, as `create_dir_all` would.

use std::fmt;
use std::fs::OpenOptions;
use std::io;
use std::path::{Path, PathBuf};

/// Name of the file created and removed to prove the directory writable; in
/// the server's own `.netloop-` namespace, with the pid so two servers
/// sharing a directory cannot collide.
fn probe_name() -> String {
    format!(".netloop-write-check-{}", std::process::id())
}

/// What [`prepare`] did.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Prepared {
    /// The directory was there already.
    Existing,
    /// It was missing and was created (its parent existed).
    Created,
}

/// Why the directory cannot be used.
#[derive(Debug)]
pub enum DirError {
    /// The path exists but is not a directory.
    NotADirectory,
    /// The path is missing and so is its parent.
    ParentMissing(PathBuf),
    /// Creating the missing directory failed.
    Create(io::Error),
    /// It cannot be inspected (permission on a parent, ...).
    Stat(io::Error),
    /// No file can be created in it.
    NotWritable(io::Error),
}

impl fmt::Display for DirError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DirError::NotADirectory => f.write_str("not a directory"),
            DirError::ParentMissing(p) => write!(
                f,
                "does not exist, nor does its parent {} (create it first; only the last component is created)",
                p.display()
            ),
            DirError::Create(e) => write!(f, "cannot create it: {e}"),
            DirError::Stat(e) => write!(f, "{e}"),
            DirError::NotWritable(e) => write!(f, "cannot create files in it: {e}"),
        }
    }
}

impl std::error::Error for DirError {}

/// Make sure `dir` is a writable directory: create it if only its last
/// component is missing, then create and remove a probe file in it.
pub fn prepare(dir: &Path) -> Result<Prepared, DirError> {
    let prepared = match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => Prepared::Existing,
        Ok(_) => return Err(DirError::NotADirectory),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let parent = match dir.parent() {
                Some(p) if p.as_os_str().is_empty() => Path::new("."),
                Some(p) => p,
                None => Path::new("/"),
            };
            if !parent.is_dir() {
                return Err(DirError::ParentMissing(parent.to_path_buf()));
            }
            std::fs::create_dir(dir).map_err(DirError::Create)?;
            Prepared::Created
        }
        Err(e) => return Err(DirError::Stat(e)),
    };
    // The real test: permission bits say nothing for root, nor about a
    // read-only mount or a full inode table.
    let probe = dir.join(probe_name());
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .map_err(DirError::NotWritable)?;
    let _ = std::fs::remove_file(&probe);
    Ok(prepared)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("netloop-dir-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        p
    }

    #[test]
    fn creates_only_the_last_component() {
        let base = scratch("last");
        std::fs::create_dir(&base).unwrap();
        let d = base.join("uploads");
        assert_eq!(prepare(&d).unwrap(), Prepared::Created);
        assert_eq!(prepare(&d).unwrap(), Prepared::Existing);
        assert!(
            std::fs::read_dir(&d).unwrap().next().is_none(),
            "probe removed"
        );
        let deep = base.join("missing").join("uploads");
        assert!(matches!(prepare(&deep), Err(DirError::ParentMissing(_))));
        assert!(!base.join("missing").exists());
        let file = base.join("file");
        std::fs::write(&file, b"x").unwrap();
        assert!(matches!(prepare(&file), Err(DirError::NotADirectory)));
        std::fs::remove_dir_all(&base).unwrap();
    }

    /// `/proc` refuses new files even to root.
    #[test]
    fn refuses_a_directory_without_room_for_files() {
        if !Path::new("/proc/self").is_dir() {
            eprintln!("SKIP: no /proc on this system");
            return;
        }
        assert!(matches!(
            prepare(Path::new("/proc")),
            Err(DirError::NotWritable(_))
        ));
    }
}
