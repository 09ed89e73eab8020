//! Errors of the dataset layer. `main` prints only the top-level message, so every message
//! carries the file (or URL) it is about, what is wrong with it, and the underlying OS / HTTP
//! reason inline rather than only through `source()`.

use std::fmt::Write as _;
use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// `op` is a short phrase such as "cannot open" so the message reads naturally.
    #[error("{op} {}: {source}", .path.display())]
    Io { op: &'static str, path: PathBuf, source: io::Error },

    #[error(
        "{} is not a gzip file (it does not start with the gzip bytes 1f 8b); dae reads the \
         original gzip-compressed IDX files (*-ubyte.gz)",
        .path.display()
    )]
    NotGzip { path: PathBuf },

    #[error(
        "{}: the gzip data is corrupt or cut short ({source}); delete the file so that it is \
         downloaded again",
        .path.display()
    )]
    CorruptGzip { path: PathBuf, source: io::Error },

    #[error("{}: truncated {what}: expected {expected} bytes, got only {got}", .path.display())]
    Truncated { path: PathBuf, what: &'static str, expected: u64, got: u64 },

    #[error(
        "{}: {extra} unexpected bytes after the {expected} bytes that the IDX header describes",
        .path.display()
    )]
    TrailingBytes { path: PathBuf, expected: u64, extra: u64 },

    #[error(
        "{}: IDX magic number is 0x{got:08x}, expected 0x{expected:08x}{}",
        .path.display(),
        magic_hint(*.expected, *.got)
    )]
    BadMagic { path: PathBuf, expected: u32, got: u32 },

    #[error("{}: bad IDX dimensions: {what}", .path.display())]
    BadDims { path: PathBuf, what: String },

    #[error("{}: label at index {index} is {value}; labels must be 0..=9", .path.display())]
    BadLabel { path: PathBuf, index: usize, value: u8 },

    #[error(
        "{} holds {images} images but {} holds {labels} labels; they must be the same split \
         of the same dataset",
        .images_path.display(),
        .labels_path.display()
    )]
    CountMismatch { images_path: PathBuf, images: usize, labels_path: PathBuf, labels: usize },

    #[error(
        "{} is {found}'s file, but data.dataset is {wanted}: point --data-dir / DAE_DATA_DIR \
         (or data.root) at a folder of {wanted} files",
        .path.display()
    )]
    OtherDataset { path: PathBuf, found: &'static str, wanted: &'static str },

    #[error(
        "{}: md5 is {got}, expected {expected}: the file is corrupt or not the published \
         version; delete it and dae will download it again",
        .path.display()
    )]
    Checksum { path: PathBuf, expected: String, got: String },

    #[error("{}", missing_message(.dataset, .dir, .files, .mirrors, .reasons))]
    Missing {
        dataset: &'static str,
        dir: PathBuf,
        /// The files that were absent and could not be downloaded (all four on a fresh setup).
        files: Vec<String>,
        mirrors: Vec<String>,
        /// One line per failed attempt (URL and reason), in the order they were tried.
        reasons: Vec<String>,
    },

    #[error("download of {url} failed: {message}")]
    Download { url: String, message: String },
}

/// The two IDX kinds dae reads are easy to swap on a command line, and gzip bytes fed to the
/// raw parser are a likely slip in tools, so name them when the magic gives them away.
fn magic_hint(expected: u32, got: u32) -> &'static str {
    match got {
        0x0000_0801 if expected != got => " (this is an IDX labels file, not an images file)",
        0x0000_0803 if expected != got => " (this is an IDX images file, not a labels file)",
        g if g >> 16 == 0x1f8b => " (these are still gzip-compressed bytes)",
        g if g >> 16 != 0 => " (not an IDX file: the first two bytes of an IDX file are zero)",
        _ => "",
    }
}

fn missing_message(dataset: &str, dir: &std::path::Path, files: &[String], mirrors: &[String], reasons: &[String]) -> String {
    let mut m = String::new();
    // Writing into a String cannot fail, hence the ignored results.
    let _ = write!(
        m,
        "the {dataset} data set is incomplete in {}: {} missing and could not be downloaded: {}",
        dir.display(),
        if files.len() == 1 { "1 file is" } else { "these files are" },
        files.join(", "),
    );
    if !reasons.is_empty() {
        m.push_str("\nDownload attempts:");
        for r in reasons {
            let _ = write!(m, "\n  {r}");
        }
    }
    if mirrors.is_empty() {
        m.push_str("\nNo download mirror was given.");
    } else {
        m.push_str("\nGet them (file URL = mirror + file name) from any of:");
        for u in mirrors {
            let _ = write!(m, "\n  {u}");
        }
    }
    let _ = write!(
        m,
        "\nand put them, still gzip-compressed, into {}; or point dae at a folder that holds \
         them with --data-dir or the DAE_DATA_DIR environment variable.",
        dir.display()
    );
    m
}
