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

/// `bytes` into `path.tmp`, fsynced (the caller renames it).
pub fn write_tmp(path: &Path, bytes: &[u8]) -> Result<PathBuf> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| err(path, format!("cannot create folder: {e}")))?;
    }
    let tmp = tmp_path(path);
    let written = std::fs::File::create(&tmp).and_then(|mut f| {
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
