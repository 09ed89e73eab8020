//! Reading and writing the gzip-compressed IDX files that MNIST and Fashion-MNIST ship as:
//! a big-endian u32 magic (0x0000_08NN: unsigned bytes, NN dimensions), one big-endian u32 per
//! dimension, then the raw bytes. Readers insist on the exact size the header declares so that
//! a cut or padded download fails here, with the file named, instead of skewing training.

use std::io::{self, Read, Write};
use std::path::Path;

use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;

use super::error::DataError;

const IMAGES_MAGIC: u32 = 0x0000_0803;
const LABELS_MAGIC: u32 = 0x0000_0801;

/// Largest label value: both data sets have ten classes.
pub const MAX_LABEL: u8 = 9;

/// Images of one IDX file, `pixels` row-major: image `i` is `pixels[i*rows*cols..][..rows*cols]`,
/// 0 = background, 255 = full ink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxImages {
    pub count: usize,
    pub rows: usize,
    pub cols: usize,
    pub pixels: Vec<u8>,
}

impl IdxImages {
    pub fn image_len(&self) -> usize {
        self.rows * self.cols
    }

    /// The pixels of image `i`; panics when `i >= count` like slice indexing does.
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.image_len();
        &self.pixels[i * n..(i + 1) * n]
    }
}

/// Reads a gzip-compressed IDX images file (3 dimensions: count, rows, cols).
pub fn read_images(path: &Path) -> Result<IdxImages, DataError> {
    let gz = read_gz_file(path)?;
    let mut r = MultiGzDecoder::new(&gz[..]);
    images_from(&mut r, path, &|e| DataError::CorruptGzip { path: path.to_path_buf(), source: e })
}

/// Reads a gzip-compressed IDX labels file (1 dimension) and checks every label is 0..=9.
pub fn read_labels(path: &Path) -> Result<Vec<u8>, DataError> {
    let gz = read_gz_file(path)?;
    let mut r = MultiGzDecoder::new(&gz[..]);
    labels_from(&mut r, path, &|e| DataError::CorruptGzip { path: path.to_path_buf(), source: e })
}

/// Reads an images file and its labels file and checks they hold the same number of items.
pub fn read_pair(images_path: &Path, labels_path: &Path) -> Result<(IdxImages, Vec<u8>), DataError> {
    let images = read_images(images_path)?;
    let labels = read_labels(labels_path)?;
    if images.count != labels.len() {
        return Err(DataError::CountMismatch {
            images_path: images_path.to_path_buf(),
            images: images.count,
            labels_path: labels_path.to_path_buf(),
            labels: labels.len(),
        });
    }
    Ok((images, labels))
}

/// Same checks as [`read_images`] on already-decompressed IDX bytes; `path` only names the
/// source in errors.
pub fn parse_images(bytes: &[u8], path: &Path) -> Result<IdxImages, DataError> {
    let mut r = bytes;
    images_from(&mut r, path, &|e| slice_error(path, e))
}

/// Same checks as [`read_labels`] on already-decompressed IDX bytes.
pub fn parse_labels(bytes: &[u8], path: &Path) -> Result<Vec<u8>, DataError> {
    let mut r = bytes;
    labels_from(&mut r, path, &|e| slice_error(path, e))
}

/// Writes images as a gzip-compressed IDX file (for test fixtures and tools). Not atomic: the
/// downloader, not this, is what guards the real data files.
pub fn write_images_gz(path: &Path, count: usize, rows: usize, cols: usize, pixels: &[u8]) -> Result<(), DataError> {
    let dims = [("count", count), ("rows", rows), ("cols", cols)];
    let header = header_bytes(path, IMAGES_MAGIC, &dims)?;
    let want = count.checked_mul(rows).and_then(|n| n.checked_mul(cols));
    if want != Some(pixels.len()) {
        return Err(DataError::BadDims {
            path: path.to_path_buf(),
            what: format!("{count} x {rows} x {cols} images need {count}*{rows}*{cols} pixels, got {}", pixels.len()),
        });
    }
    write_gz(path, &[&header, pixels])
}

/// Writes labels as a gzip-compressed IDX file. Values are written as given, even above 9, so
/// tests can build the bad files the reader must refuse.
pub fn write_labels_gz(path: &Path, labels: &[u8]) -> Result<(), DataError> {
    let header = header_bytes(path, LABELS_MAGIC, &[("count", labels.len())])?;
    write_gz(path, &[&header, labels])
}

fn header_bytes(path: &Path, magic: u32, dims: &[(&str, usize)]) -> Result<Vec<u8>, DataError> {
    let mut h = magic.to_be_bytes().to_vec();
    for &(name, d) in dims {
        // The reader refuses zero dimensions, so the writer must not produce them either.
        let d32 = u32::try_from(d)
            .ok()
            .filter(|&v| v > 0)
            .ok_or_else(|| DataError::BadDims { path: path.to_path_buf(), what: format!("{name} is {d}; it must be 1..=4294967295") })?;
        h.extend_from_slice(&d32.to_be_bytes());
    }
    Ok(h)
}

fn write_gz(path: &Path, parts: &[&[u8]]) -> Result<(), DataError> {
    let io_err = |op: &'static str| move |e| DataError::Io { op, path: path.to_path_buf(), source: e };
    // Created anew, never through a link left at its name.
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(io_err("cannot create")(e)),
        _ => {}
    }
    let file = std::fs::OpenOptions::new().write(true).create_new(true).open(path).map_err(io_err("cannot create"))?;
    let mut enc = GzEncoder::new(file, Compression::default());
    for p in parts {
        enc.write_all(p).map_err(io_err("cannot write"))?;
    }
    enc.finish().map_err(io_err("cannot write"))?;
    Ok(())
}

/// Reads the whole compressed file up front so that I/O errors (named as such) are kept apart
/// from decompression errors (a corrupt file), which a streaming decoder would mix up.
fn read_gz_file(path: &Path) -> Result<Vec<u8>, DataError> {
    let bytes = std::fs::read(path).map_err(|e| DataError::Io { op: "cannot read", path: path.to_path_buf(), source: e })?;
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return Err(DataError::NotGzip { path: path.to_path_buf() });
    }
    Ok(bytes)
}

/// Reading from a slice cannot fail; this only keeps the error type honest if it ever did.
fn slice_error(path: &Path, e: io::Error) -> DataError {
    DataError::Io { op: "cannot read", path: path.to_path_buf(), source: e }
}

type OnErr<'a> = &'a dyn Fn(io::Error) -> DataError;

fn images_from(r: &mut dyn Read, path: &Path, on_err: OnErr) -> Result<IdxImages, DataError> {
    let dims = read_header(r, path, IMAGES_MAGIC, on_err)?;
    let (count, rows, cols) = (dims[0], dims[1], dims[2]);
    let len = count
        .checked_mul(rows)
        .and_then(|n| n.checked_mul(cols))
        .ok_or_else(|| DataError::BadDims { path: path.to_path_buf(), what: format!("{count} x {rows} x {cols} pixels do not fit in memory") })?;
    let pixels = read_data(r, path, "image data", header_len(IMAGES_MAGIC), len, on_err)?;
    Ok(IdxImages { count, rows, cols, pixels })
}

fn labels_from(r: &mut dyn Read, path: &Path, on_err: OnErr) -> Result<Vec<u8>, DataError> {
    let dims = read_header(r, path, LABELS_MAGIC, on_err)?;
    let labels = read_data(r, path, "label data", header_len(LABELS_MAGIC), dims[0], on_err)?;
    if let Some((index, &value)) = labels.iter().enumerate().find(|&(_, &v)| v > MAX_LABEL) {
        return Err(DataError::BadLabel { path: path.to_path_buf(), index, value });
    }
    Ok(labels)
}

fn header_len(magic: u32) -> u64 {
    4 + 4 * u64::from(magic & 0xff)
}

/// Checks the magic and returns the dimensions, all nonzero, as many as the magic declares.
fn read_header(r: &mut dyn Read, path: &Path, magic: u32, on_err: OnErr) -> Result<Vec<usize>, DataError> {
    let ndims = (magic & 0xff) as usize;
    let truncated = |got: usize| DataError::Truncated { path: path.to_path_buf(), what: "IDX header", expected: header_len(magic), got: got as u64 };
    let mut head = [0u8; 4];
    let n = fill(r, &mut head).map_err(on_err)?;
    if n < head.len() {
        return Err(truncated(n));
    }
    let got = u32::from_be_bytes(head);
    if got != magic {
        // Same element type, other dimension count: "wrong dims" says more than "bad magic";
        // but the other kind dae reads gets the magic error, whose hint names the mix-up.
        let other_kind = got == IMAGES_MAGIC || got == LABELS_MAGIC;
        if got >> 8 == magic >> 8 && !other_kind {
            return Err(DataError::BadDims {
                path: path.to_path_buf(),
                what: format!("magic 0x{got:08x} declares {} dimensions, expected {ndims}", got & 0xff),
            });
        }
        return Err(DataError::BadMagic { path: path.to_path_buf(), expected: magic, got });
    }
    let mut raw = vec![0u8; 4 * ndims];
    let n = fill(r, &mut raw).map_err(on_err)?;
    if n < raw.len() {
        return Err(truncated(4 + n));
    }
    let dims: Vec<usize> = raw.chunks_exact(4).map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize).collect();
    if let Some(i) = dims.iter().position(|&d| d == 0) {
        let names: &[&str] = if ndims == 3 { &["image count", "rows", "cols"] } else { &["label count"] };
        let name = names.get(i).copied().unwrap_or("a dimension");
        return Err(DataError::BadDims { path: path.to_path_buf(), what: format!("{name} is 0") });
    }
    Ok(dims)
}

/// Reads exactly `len` data bytes and then requires the end of the stream.
fn read_data(r: &mut dyn Read, path: &Path, what: &'static str, header_len: u64, len: usize, on_err: OnErr) -> Result<Vec<u8>, DataError> {
    // The header is not trusted for the allocation: a corrupt one could ask for terabytes, so
    // reserve at most 64 MiB up front and let the data that is really there grow the rest.
    let mut data = Vec::with_capacity(len.min(64 << 20));
    r.take(len as u64).read_to_end(&mut data).map_err(on_err)?;
    if data.len() < len {
        return Err(DataError::Truncated { path: path.to_path_buf(), what, expected: len as u64, got: data.len() as u64 });
    }
    let extra = io::copy(r, &mut io::sink()).map_err(on_err)?;
    if extra > 0 {
        return Err(DataError::TrailingBytes { path: path.to_path_buf(), expected: header_len + len as u64, extra });
    }
    Ok(data)
}

/// Like `read_exact`, but reports how much was there when the stream ends early.
fn fill(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
pub(crate) mod test_util {
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A fresh folder under the system temp dir, removed on drop; unique per process and call
    /// so parallel tests never share files.
    pub struct TempDir(PathBuf);

    impl TempDir {
        pub fn new(tag: &str) -> Self {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let p = std::env::temp_dir().join(format!("dae-data-{tag}-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// The real files of `sub` ("mnist" or "fashion-mnist") for the tests that read them:
    /// `DAE_DATA_DIR` (MNIST) or `DAE_FASHION_DATA_DIR`, else the `sub` folder beside
    /// `DAE_DATA_DIR`, else `target/test-data/<sub>`, downloaded there when missing. A test never
    /// skips: without the files and without a network it fails saying how to provide them.
    pub fn real_data_dir(sub: &str) -> PathBuf {
        let var = if sub == "mnist" { "DAE_DATA_DIR" } else { "DAE_FASHION_DATA_DIR" };
        let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
        let spec = if sub == "mnist" { &crate::data::MNIST } else { &crate::data::FASHION_MNIST };
        let has_all = |d: &Path| spec.files.iter().all(|(f, _)| d.join(f).is_file());
        if let Some(d) = env(var) {
            return d;
        }
        if let Some(d) = env("DAE_DATA_DIR").and_then(|m| m.parent().map(|p| p.join(sub))).filter(|d| has_all(d)) {
            return d;
        }
        let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-data").join(sub);
        if let Err(e) = crate::data::ensure_files(spec, &d, spec.mirrors, &mut |l| eprintln!("{l}")) {
            panic!("the data tests need {} ({var}, or a network to download it into {}): {e}", spec.name, d.display());
        }
        d
    }

    pub fn gzip(bytes: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::test_util::{TempDir, gzip, real_data_dir};
    use super::*;
    use std::path::PathBuf;

    fn raw(magic: u32, dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut v = magic.to_be_bytes().to_vec();
        for d in dims {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v.extend_from_slice(data);
        v
    }

    fn put(dir: &TempDir, name: &str, bytes: &[u8]) -> PathBuf {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    /// Every error must name the file, or the user cannot tell which of four files is bad.
    fn err_names(e: &DataError, path: &Path) -> String {
        let msg = e.to_string();
        assert!(msg.contains(&path.display().to_string()), "message lacks the path: {msg}");
        msg
    }

    #[test]
    fn round_trip_images_and_labels() {
        let dir = TempDir::new("idx-rt");
        let pixels: Vec<u8> = (0..3 * 4 * 5).map(|i| (i * 7) as u8).collect();
        let ip = dir.path().join("img.gz");
        write_images_gz(&ip, 3, 4, 5, &pixels).unwrap();
        let img = read_images(&ip).unwrap();
        assert_eq!((img.count, img.rows, img.cols), (3, 4, 5));
        assert_eq!(img.pixels, pixels);
        assert_eq!(img.image(2), &pixels[40..60]);

        let lp = dir.path().join("lab.gz");
        write_labels_gz(&lp, &[0, 9, 3]).unwrap();
        assert_eq!(read_labels(&lp).unwrap(), vec![0, 9, 3]);
        let (i2, l2) = read_pair(&ip, &lp).unwrap();
        assert_eq!((i2.count, l2.len()), (3, 3));
    }

    #[test]
    fn parse_on_plain_bytes() {
        let p = Path::new("in-memory.idx");
        let img = parse_images(&raw(IMAGES_MAGIC, &[2, 1, 2], &[1, 2, 3, 4]), p).unwrap();
        assert_eq!(img.pixels, vec![1, 2, 3, 4]);
        assert_eq!(parse_labels(&raw(LABELS_MAGIC, &[2], &[5, 6]), p).unwrap(), vec![5, 6]);
        let e = parse_images(&raw(IMAGES_MAGIC, &[2, 1, 2], &[1, 2, 3]), p).unwrap_err();
        err_names(&e, p);
    }

    #[test]
    fn truncated_data_and_header() {
        let dir = TempDir::new("idx-trunc");
        let p = put(&dir, "img.gz", &gzip(&raw(IMAGES_MAGIC, &[2, 2, 2], &[0; 7])));
        let e = read_images(&p).unwrap_err();
        assert!(matches!(e, DataError::Truncated { expected: 8, got: 7, .. }), "{e:?}");
        err_names(&e, &p);

        let p = put(&dir, "lab.gz", &gzip(&[0, 0, 8, 1, 0, 0]));
        let e = read_labels(&p).unwrap_err();
        assert!(matches!(e, DataError::Truncated { expected: 8, got: 6, .. }), "{e:?}");
        err_names(&e, &p);
    }

    #[test]
    fn cut_gzip_stream_is_corrupt() {
        let dir = TempDir::new("idx-cutgz");
        let pixels: Vec<u8> = (0..2000u32).map(|i| (i.wrapping_mul(2654435761) >> 24) as u8).collect();
        let gz = gzip(&raw(IMAGES_MAGIC, &[20, 10, 10], &pixels));
        let p = put(&dir, "img.gz", &gz[..gz.len() / 2]);
        let e = read_images(&p).unwrap_err();
        assert!(matches!(e, DataError::CorruptGzip { .. } | DataError::Truncated { .. }), "{e:?}");
        err_names(&e, &p);
    }

    #[test]
    fn wrong_magic() {
        let dir = TempDir::new("idx-magic");
        // A labels file handed to the images reader, and vice versa.
        let lp = put(&dir, "lab.gz", &gzip(&raw(LABELS_MAGIC, &[1], &[1])));
        let e = read_images(&lp).unwrap_err();
        assert!(matches!(e, DataError::BadMagic { got: LABELS_MAGIC, .. }), "{e:?}");
        assert!(err_names(&e, &lp).contains("labels file"));

        let ip = put(&dir, "img.gz", &gzip(&raw(IMAGES_MAGIC, &[1, 1, 1], &[1])));
        let e = read_labels(&ip).unwrap_err();
        assert!(matches!(e, DataError::BadMagic { got: IMAGES_MAGIC, .. }), "{e:?}");
        assert!(err_names(&e, &ip).contains("images file"));

        let gp = put(&dir, "junk.gz", &gzip(b"PK\x03\x04 not idx at all"));
        let e = read_images(&gp).unwrap_err();
        assert!(matches!(e, DataError::BadMagic { .. }), "{e:?}");
        err_names(&e, &gp);
    }

    #[test]
    fn wrong_dims_and_count() {
        let dir = TempDir::new("idx-dims");
        let p = put(&dir, "img.gz", &gzip(&raw(0x0000_0802, &[1, 4], &[0; 4])));
        let e = read_images(&p).unwrap_err();
        assert!(matches!(e, DataError::BadDims { .. }), "{e:?}");
        assert!(err_names(&e, &p).contains("2 dimensions"));

        let p = put(&dir, "zero.gz", &gzip(&raw(IMAGES_MAGIC, &[0, 28, 28], &[])));
        let e = read_images(&p).unwrap_err();
        assert!(matches!(e, DataError::BadDims { .. }), "{e:?}");
        assert!(err_names(&e, &p).contains("image count is 0"));

        let ip = dir.path().join("i.gz");
        let lp = dir.path().join("l.gz");
        write_images_gz(&ip, 3, 2, 2, &[0; 12]).unwrap();
        write_labels_gz(&lp, &[1, 2]).unwrap();
        let e = read_pair(&ip, &lp).unwrap_err();
        assert!(matches!(e, DataError::CountMismatch { images: 3, labels: 2, .. }), "{e:?}");
        let msg = err_names(&e, &ip);
        assert!(msg.contains(&lp.display().to_string()));

        // A header whose sizes cannot be backed by the data must not allocate them up front.
        let p = put(&dir, "huge.gz", &gzip(&raw(IMAGES_MAGIC, &[u32::MAX, u32::MAX, 2], &[1, 2])));
        let e = read_images(&p).unwrap_err();
        assert!(matches!(e, DataError::Truncated { got: 2, .. } | DataError::BadDims { .. }), "{e:?}");
    }

    #[test]
    fn trailing_bytes() {
        let dir = TempDir::new("idx-trail");
        let p = put(&dir, "lab.gz", &gzip(&raw(LABELS_MAGIC, &[2], &[1, 2, 3, 4, 5])));
        let e = read_labels(&p).unwrap_err();
        assert!(matches!(e, DataError::TrailingBytes { expected: 10, extra: 3, .. }), "{e:?}");
        err_names(&e, &p);
    }

    #[test]
    fn not_gzip_and_missing() {
        let dir = TempDir::new("idx-nogz");
        let p = put(&dir, "img", &raw(IMAGES_MAGIC, &[1, 1, 1], &[1]));
        let e = read_images(&p).unwrap_err();
        assert!(matches!(e, DataError::NotGzip { .. }), "{e:?}");
        err_names(&e, &p);

        let p = put(&dir, "empty.gz", &[]);
        assert!(matches!(read_labels(&p), Err(DataError::NotGzip { .. })));

        let p = dir.path().join("absent.gz");
        let e = read_labels(&p).unwrap_err();
        assert!(matches!(e, DataError::Io { .. }), "{e:?}");
        err_names(&e, &p);
    }

    #[test]
    fn label_above_nine() {
        let dir = TempDir::new("idx-label");
        let p = dir.path().join("lab.gz");
        write_labels_gz(&p, &[0, 9, 4, 10, 255]).unwrap();
        let e = read_labels(&p).unwrap_err();
        assert!(matches!(e, DataError::BadLabel { index: 3, value: 10, .. }), "{e:?}");
        err_names(&e, &p);
    }

    #[test]
    fn writer_rejects_inconsistent_input() {
        let dir = TempDir::new("idx-writer");
        let p = dir.path().join("img.gz");
        assert!(matches!(write_images_gz(&p, 2, 2, 2, &[0; 7]), Err(DataError::BadDims { .. })));
        assert!(matches!(write_images_gz(&p, 0, 2, 2, &[]), Err(DataError::BadDims { .. })));
        assert!(matches!(write_labels_gz(&p, &[]), Err(DataError::BadDims { .. })));
    }

    /// Thousands of damaged and random IDX inputs (plain and gzip): every one an error or a
    /// parse, never a panic.
    #[test]
    fn fuzzed_idx_never_panics() {
        let mut rng = crate::util::rng::Rng::new(0xF022);
        let dir = TempDir::new("idx-fuzz");
        let img = dir.path().join("i.gz");
        write_images_gz(&img, 3, 4, 5, &(0..60).map(|i| i as u8).collect::<Vec<_>>()).unwrap();
        let gz_images = std::fs::read(&img).unwrap();
        let lab = dir.path().join("l.gz");
        write_labels_gz(&lab, &[1, 2, 3]).unwrap();
        let gz_labels = std::fs::read(&lab).unwrap();
        let plain_images = {
            let mut d = MultiGzDecoder::new(&gz_images[..]);
            let mut v = Vec::new();
            d.read_to_end(&mut v).unwrap();
            v
        };
        let path = dir.path().join("fuzz.gz");
        for i in 0..3000 {
            let (base, gz) = match i % 3 {
                0 => (&plain_images, false),
                1 => (&gz_images, true),
                _ => (&gz_labels, true),
            };
            let bytes = crate::util::rng::mutate(&mut rng, base);
            let r = std::panic::catch_unwind(|| {
                if gz {
                    std::fs::write(&path, &bytes).unwrap();
                    let _ = read_images(&path);
                    let _ = read_labels(&path);
                } else {
                    let _ = parse_images(&bytes, &path);
                    let _ = parse_labels(&bytes, &path);
                }
            });
            assert!(
                r.is_ok(),
                "input {i} ({} bytes, from {}) panicked: {:02x?}",
                bytes.len(),
                if gz { "gzip" } else { "plain" },
                &bytes[..bytes.len().min(64)]
            );
        }
    }

    /// The real files, when this checkout has them: full counts and a sane content check.
    #[test]
    fn real_data_parses() {
        for (sub, per_class) in [("mnist", None), ("fashion-mnist", Some((6000, 1000)))] {
            let dir = real_data_dir(sub);
            for (split, n, per) in [("train", 60000, per_class.map(|p| p.0)), ("t10k", 10000, per_class.map(|p| p.1))] {
                let (img, lab) =
                    read_pair(&dir.join(format!("{split}-images-idx3-ubyte.gz")), &dir.join(format!("{split}-labels-idx1-ubyte.gz"))).unwrap();
                assert_eq!((img.count, img.rows, img.cols, lab.len()), (n, 28, 28, n));
                assert_eq!(img.pixels.len(), n * 784);
                assert_eq!(img.pixels.iter().copied().max(), Some(255));
                let mut hist = [0usize; 10];
                lab.iter().for_each(|&l| hist[l as usize] += 1);
                assert!(hist.iter().all(|&h| h > 0), "{sub} {split}: {hist:?}");
                if let Some(per) = per {
                    assert!(hist.iter().all(|&h| h == per), "{sub} {split}: {hist:?}");
                }
            }
        }
    }
}
