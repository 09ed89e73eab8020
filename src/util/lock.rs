//! Exclusive locks on an output folder, through the OS's file locks (`flock` / `LockFileEx`,
//! via std's `File::try_lock`): a lock dies with its process, so a killed run never leaves the
//! folder blocked. The lock file holds who took it, for the error the next taker sees.

use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// Held for as long as the value lives.
#[derive(Debug)]
pub struct FolderLock {
    _file: std::fs::File,
    pub path: PathBuf,
}

/// Why a lock was not taken: someone holds it (their note), or the file could not be used.
#[derive(Debug)]
pub enum LockError {
    Held {
        path: PathBuf,
        holder: String,
    },
    Io {
        path: PathBuf,
        message: String,
    },
    /// The folder or the lock file's name is unusable (a file where the folder should be, a
    /// symbolic link at the lock's name): the message says which.
    Refused(String),
}

impl std::fmt::Display for LockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LockError::Held { path, holder } => write!(f, "{} is locked by {holder}", path.display()),
            LockError::Io { path, message } => write!(f, "cannot lock {}: {message}", path.display()),
            LockError::Refused(m) => write!(f, "{m}"),
        }
    }
}

/// Take the lock `<dir>/.dae-<name>.lock` (creating `dir`), writing `note` (what holds it) into
/// the file.
pub fn lock(dir: &Path, name: &str, note: &str) -> Result<FolderLock, LockError> {
    let path = dir.join(format!(".dae-{name}.lock"));
    let io = |e: std::io::Error| LockError::Io { path: path.clone(), message: e.to_string() };
    let refused = |e: crate::error::Error| LockError::Refused(e.to_string());
    crate::util::files::create_dir(dir).map_err(refused)?;
    crate::util::files::refuse_link(&path).map_err(refused)?;
    let mut o = std::fs::OpenOptions::new();
    o.read(true).write(true).create(true).truncate(false);
    // Never through a link (one could point at a user's file, which the note would replace).
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut o, libc::O_NOFOLLOW);
    let mut file = o.open(&path).map_err(io)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            return Err(LockError::Held {
                path: path.clone(),
                holder: if holder.is_empty() { "another process".into() } else { holder.to_string() },
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
    }
    file.set_len(0).and_then(|_| file.seek(std::io::SeekFrom::Start(0))).and_then(|_| file.write_all(note.as_bytes())).map_err(io)?;
    let _ = file.sync_all();
    Ok(FolderLock { _file: file, path })
}

/// "pid 123 (dae train), since 2026-12-02T08:00:00Z": who holds a lock.
pub fn holder_note(what: &str) -> String {
    format!("pid {} ({what}), since {}", std::process::id(), humantime::format_rfc3339_seconds(std::time::SystemTime::now()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_fails_naming_the_holder_and_a_dropped_one_frees() {
        let dir = std::env::temp_dir().join(format!("dae-lock-test-{}", std::process::id()));
        let a = lock(&dir, "train", "pid 1 (test)").unwrap();
        match lock(&dir, "train", "pid 2 (test)") {
            Err(LockError::Held { holder, .. }) => assert_eq!(holder, "pid 1 (test)"),
            other => panic!("expected the lock to be held, got {other:?}"),
        }
        // Another name is another lock.
        let b = lock(&dir, "eval", "pid 3 (test)").unwrap();
        drop(a);
        lock(&dir, "train", "pid 2 (test)").unwrap();
        drop(b);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[cfg(unix)]
    #[test]
    fn a_lock_file_that_is_a_link_is_refused_and_its_target_untouched() {
        let dir = std::env::temp_dir().join(format!("dae-lock-link-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mine = dir.join("my-config.yaml");
        std::fs::write(&mine, "seed: 1\n").unwrap();
        std::os::unix::fs::symlink(&mine, dir.join(".dae-eval.lock")).unwrap();
        let e = lock(&dir, "eval", "pid 1 (test)").unwrap_err().to_string();
        assert!(e.contains("symbolic link"), "{e}");
        assert_eq!(std::fs::read_to_string(&mine).unwrap(), "seed: 1\n");
        // A file where the folder should be is named as such.
        let e = lock(&mine, "eval", "pid 1 (test)").unwrap_err().to_string();
        assert!(e.contains("is a file, not a folder"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
