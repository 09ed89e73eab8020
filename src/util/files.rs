//! Files that appear whole or not at all: every write goes to `<file>.tmp`, is fsynced, renamed
//! into place, and the folder is fsynced; and safetensors reading / writing (PyTorch's
//! `safetensors` package reads what this writes). Crash injection for the tests counts every
//! write point (a file written, a rename, a folder sync).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, TensorView};

use crate::error::{Error, Result};

fn err(path: &Path, msg: impl std::fmt::Display) -> Error {
    Error::Msg(format!("{}: {msg}", path.display()))
}

/// Named tensors as (name, shape, little-endian bytes, dtype).
pub type TensorList = Vec<(String, Vec<usize>, Vec<u8>, Dtype)>;

// ---- crash injection (tests) -----------------------------------------------------------------

static CRASH_AT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
static CRASH_COUNT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Abort the process (as a SIGKILL would leave it) at the `n`-th checkpoint write point counted
/// from now: after each file written, each rename and each folder sync. 0 turns it off. Only
/// the hidden `dae train --crash-at` flag sets it, for the crash-injection test.
pub fn crash_after_writes(n: u64) {
    CRASH_COUNT.store(0, std::sync::atomic::Ordering::SeqCst);
    CRASH_AT.store(n, std::sync::atomic::Ordering::SeqCst);
}

fn write_point(what: &Path) {
    let at = CRASH_AT.load(std::sync::atomic::Ordering::SeqCst);
    if at == 0 {
        return;
    }
    let k = CRASH_COUNT.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
    if k == at {
        eprintln!("crash injection: aborting after write point {k} ({})", what.display());
        std::process::abort();
    }
}

// ---- single files ------------------------------------------------------------------------------

/// The safetensors bytes of `tensors` with `meta`.
pub fn serialize(path: &Path, tensors: &TensorList, meta: HashMap<String, String>) -> Result<Vec<u8>> {
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .map(|(n, s, d, t)| TensorView::new(*t, s.clone(), d).map(|v| (n.clone(), v)))
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| err(path, e))?;
    safetensors::serialize(views, Some(meta)).map_err(|e| err(path, e))
}

/// `bytes` into `path.tmp`, fsynced (the caller renames it). The temp file is created anew
/// (`create_new`: a stale one, or a symbolic link left at its name, is removed first, never
/// written through), and the rename that follows replaces a link at `path` itself, not the
/// file it points to: no file dae writes is written through a symbolic link.
pub fn write_tmp(path: &Path, bytes: &[u8]) -> Result<PathBuf> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        create_dir(dir)?;
    }
    let tmp = tmp_path(path);
    let written = create_new(&tmp).and_then(|mut f| {
        use std::io::Write;
        f.write_all(bytes)?;
        f.sync_all()
    });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(err(path, format!("cannot write {}: {e}", tmp.display())));
    }
    write_point(&tmp);
    Ok(tmp)
}

/// A new file at `path` for writing: whatever was at that name (a stale file or a symbolic
/// link) is removed first, and `create_new` refuses to follow a link that appears meanwhile.
pub fn create_new(path: &Path) -> std::io::Result<std::fs::File> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    std::fs::OpenOptions::new().write(true).create_new(true).open(path)
}

/// An error when `path` is a symbolic link: dae appends to or locks only files it owns, and
/// writing through a link would change the file it points to.
pub fn refuse_link(path: &Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            let to = std::fs::read_link(path).map(|t| format!(" (to {})", t.display())).unwrap_or_default();
            Err(err(
                path,
                format!(
                    "is a symbolic link{to}; dae does not write through links (that would change the file it points to): remove the link or pick another folder"
                ),
            ))
        }
        _ => Ok(()),
    }
}

/// Open `path` for appending (created when missing) without following a symbolic link.
pub fn open_append(path: &Path) -> Result<std::fs::File> {
    refuse_link(path)?;
    let mut o = std::fs::OpenOptions::new();
    o.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut o, libc::O_NOFOLLOW);
    o.open(path).map_err(|e| err(path, format!("cannot write: {e}")))
}

/// "X is a file, not a folder" when `dir` or a folder above it is a file (where a folder is
/// needed, the OS's own "File exists" or "Not a directory" says little).
pub fn not_a_folder(dir: &Path) -> Option<String> {
    dir.ancestors().find(|a| !a.as_os_str().is_empty() && a.is_file()).map(|f| format!("{} is a file, not a folder", f.display()))
}

/// Create the folder `dir` (and its parents), naming a file that stands where a folder should.
pub fn create_dir(dir: &Path) -> Result<()> {
    if let Some(why) = not_a_folder(dir) {
        return Err(Error::Msg(format!("{why} (needed for {})", dir.display())));
    }
    std::fs::create_dir_all(dir).map_err(|e| err(dir, format!("cannot create folder: {e}")))
}

pub fn rename(from: &Path, to: &Path) -> Result<()> {
    std::fs::rename(from, to).map_err(|e| err(to, format!("rename from {}: {e}", from.display())))?;
    write_point(to);
    Ok(())
}

/// Make the renames in `dir` durable (a rename is a change to the folder, not to the file).
pub fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        std::fs::File::open(dir).and_then(|f| f.sync_all()).map_err(|e| Error::Msg(format!("cannot sync folder {}: {e}", dir.display())))?;
    }
    write_point(dir);
    Ok(())
}

/// Write raw bytes to `path` atomically: `<path>.tmp`, fsync, rename, folder fsync.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = write_tmp(path, bytes)?;
    rename(&tmp, path)?;
    sync_dir(parent(path))
}

/// Write one safetensors file atomically: `<path>.tmp`, fsync, rename, folder fsync.
pub fn write(path: &Path, tensors: TensorList, meta: HashMap<String, String>) -> Result<()> {
    let bytes = serialize(path, &tensors, meta)?;
    write_file(path, &bytes)
}

pub fn parent(path: &Path) -> &Path {
    path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

pub fn tmp_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".tmp");
    PathBuf::from(s)
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Named tensors of a file, as raw little-endian bytes with dtype and shape, plus metadata.
pub struct Loaded {
    pub tensors: HashMap<String, (Dtype, Vec<usize>, Vec<u8>)>,
    pub meta: HashMap<String, String>,
    pub path: PathBuf,
}

pub fn read(path: &Path) -> Result<Loaded> {
    let bytes = std::fs::read(path).map_err(|e| err(path, e))?;
    parse(&bytes, path)
}

/// A safetensors file already in memory; `path` names it in errors.
pub fn parse(bytes: &[u8], path: &Path) -> Result<Loaded> {
    let st = safetensors::SafeTensors::deserialize(bytes).map_err(|e| err(path, format!("not a safetensors file: {e}")))?;
    let (_, md) = safetensors::SafeTensors::read_metadata(bytes).map_err(|e| err(path, e))?;
    let tensors = st.tensors().into_iter().map(|(n, v)| (n, (v.dtype(), v.shape().to_vec(), v.data().to_vec()))).collect();
    Ok(Loaded { tensors, meta: md.metadata().clone().unwrap_or_default(), path: path.to_path_buf() })
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn writes_replace_links_and_appends_refuse_them() {
        let dir = std::env::temp_dir().join(format!("dae-files-link-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mine = dir.join("mine.txt");
        std::fs::write(&mine, "mine").unwrap();
        for name in ["a.csv", "b.json", "b.json.tmp"] {
            std::os::unix::fs::symlink(&mine, dir.join(name)).unwrap();
        }
        let e = open_append(&dir.join("a.csv")).unwrap_err().to_string();
        assert!(e.contains("symbolic link"), "{e}");
        // b.json.tmp, a stale temp file that is a link, and b.json itself are replaced.
        write_file(&dir.join("b.json"), b"dae's").unwrap();
        assert_eq!(std::fs::read_to_string(&mine).unwrap(), "mine");
        assert_eq!(std::fs::read_to_string(dir.join("b.json")).unwrap(), "dae's");
        assert!(std::fs::symlink_metadata(dir.join("b.json")).unwrap().file_type().is_file());
        std::fs::remove_dir_all(&dir).ok();
    }
}
