//! Getting the four `.gz` files of a data set into a folder: files already there are left as
//! they are (training checks the md5 of the two it reads; `verify` checks all four), missing
//! ones are fetched from the mirrors in order and checked against the published md5 before they
//! appear under their real name.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::Path;
use std::time::Duration;

use md5::{Digest, Md5};

use super::error::DataError;

/// A data set: its name for messages, its four files as (file name, md5 hex of the .gz) in the
/// order train images, train labels, test images, test labels, and its download mirrors
/// (file URL = mirror + file name).
#[derive(Debug, Clone, Copy)]
pub struct DatasetSpec {
    pub name: &'static str,
    pub files: [(&'static str, &'static str); 4],
    pub mirrors: &'static [&'static str],
}

pub const TRAIN_IMAGES: &str = "train-images-idx3-ubyte.gz";
pub const TRAIN_LABELS: &str = "train-labels-idx1-ubyte.gz";
pub const TEST_IMAGES: &str = "t10k-images-idx3-ubyte.gz";
pub const TEST_LABELS: &str = "t10k-labels-idx1-ubyte.gz";

pub const MNIST: DatasetSpec = DatasetSpec {
    name: "MNIST",
    files: [
        (TRAIN_IMAGES, "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
        (TRAIN_LABELS, "d53e105ee54ea40749a09fcbcd1e9432"),
        (TEST_IMAGES, "9fb629c4189551a2d022fa330f9573f3"),
        (TEST_LABELS, "ec29112dd5afa0611ce80d1b7f02629c"),
    ],
    mirrors: &["https://ossci-datasets.s3.amazonaws.com/mnist/", "https://storage.googleapis.com/cvdf-datasets/mnist/"],
};

pub const FASHION_MNIST: DatasetSpec = DatasetSpec {
    name: "Fashion-MNIST",
    files: [
        (TRAIN_IMAGES, "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
        (TRAIN_LABELS, "25c81989df183df01b3e8a0aad5dffbe"),
        (TEST_IMAGES, "bef4ecab320f06d8554ea6380940ec79"),
        (TEST_LABELS, "bb300cfdad3c16e7a12a480ee83cd310"),
    ],
    mirrors: &["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
};

/// Long enough for a slow mirror, short enough that a dead one does not look like a hang.
const TIMEOUT: Duration = Duration::from_secs(30);

/// The largest file is 26 MB; a mirror sending far more is broken and must not fill the disk.
const MAX_DOWNLOAD: u64 = 256 << 20;

/// md5 of a file as 32 lowercase hex digits.
pub fn md5_file(path: &Path) -> Result<String, DataError> {
    let io_err = |op| move |e| DataError::Io { op, path: path.to_path_buf(), source: e };
    let mut f = File::open(path).map_err(io_err("cannot open"))?;
    let mut h = Md5::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => h.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_err("cannot read")(e)),
        }
    }
    Ok(hex(&h.finalize()))
}

/// Checks the md5 of the four files in `dir` against the published ones.
pub fn verify(spec: &DatasetSpec, dir: &Path) -> Result<(), DataError> {
    for (name, _) in spec.files {
        verify_file(spec, dir, name)?;
    }
    Ok(())
}

/// Checks the md5 of one of `spec`'s files in `dir`. MNIST and Fashion-MNIST share file names,
/// so a file of the other set is named as such ([`DataError::OtherDataset`]).
pub fn verify_file(spec: &DatasetSpec, dir: &Path, name: &str) -> Result<(), DataError> {
    let path = dir.join(name);
    let got = md5_file(&path)?;
    let want = spec.files.iter().find(|(n, _)| *n == name).map_or("", |(_, m)| *m);
    if got.eq_ignore_ascii_case(want) {
        return Ok(());
    }
    let same_name = |o: &&DatasetSpec| o.files.iter().any(|(n, m)| *n == name && m.eq_ignore_ascii_case(&got));
    Err(match [&MNIST, &FASHION_MNIST].into_iter().find(same_name) {
        Some(other) => DataError::OtherDataset { path, found: other.name, wanted: spec.name },
        None => DataError::Checksum { path, expected: want.to_string(), got },
    })
}

/// Make sure the four files are in `dir`: files present are left as they are (their md5 is
/// checked where they are read, or by [`verify`]); missing ones are downloaded
/// from `mirrors` in order (first that works), each checked against its md5 BEFORE it is moved
/// into place: it is written to `<file>.part` in the same dir and renamed, so a half file never
/// appears under the real name (a stale `.part` is overwritten). `log` receives one line per
/// action. When a file cannot be had from any mirror the error is [`DataError::Missing`],
/// which says where to get the files by hand; a local failure (the folder cannot be created,
/// the disk is full) is returned as the [`DataError::Io`] it is, since another mirror would
/// not help.
pub fn ensure_files(spec: &DatasetSpec, dir: &Path, mirrors: &[&str], log: &mut dyn FnMut(&str)) -> Result<(), DataError> {
    let missing: Vec<(&str, &str)> = spec.files.iter().copied().filter(|(name, _)| !dir.join(name).is_file()).collect();
    if missing.is_empty() {
        return Ok(());
    }
    fs::create_dir_all(dir).map_err(|e| DataError::Io { op: "cannot create the data folder", path: dir.to_path_buf(), source: e })?;
    log(&format!("{}: {} of 4 files missing in {}", spec.name, missing.len(), dir.display()));

    let mut reasons = Vec::new();
    let mut failed = Vec::new();
    // A mirror that cannot even be connected to is skipped for the remaining files, so an
    // offline machine fails in one round of timeouts instead of one round per file.
    let mut dead = vec![false; mirrors.len()];
    for (name, md5) in missing {
        let final_path = dir.join(name);
        let part = dir.join(format!("{name}.part"));
        let mut done = false;
        for (i, mirror) in mirrors.iter().enumerate() {
            if dead[i] {
                continue;
            }
            let url = join_url(mirror, name);
            log(&format!("downloading {name} from {url}"));
            match fetch(&url, &part, md5) {
                Ok(()) => {
                    fs::rename(&part, &final_path).map_err(|e| {
                        let _ = fs::remove_file(&part);
                        DataError::Io { op: "cannot move the finished download into place at", path: final_path.clone(), source: e }
                    })?;
                    log(&format!("{name} ok (md5 {md5})"));
                    done = true;
                    break;
                }
                Err(f) => {
                    // Whatever went wrong, a partial or wrong file must not linger.
                    let _ = fs::remove_file(&part);
                    match f {
                        Failure::Local(e) => return Err(e),
                        Failure::Remote { unreachable, err } => {
                            dead[i] |= unreachable;
                            let line = err.to_string();
                            log(&line);
                            reasons.push(line);
                        }
                    }
                }
            }
        }
        if !done {
            failed.push(name.to_string());
        }
    }
    if failed.is_empty() {
        return Ok(());
    }
    Err(DataError::Missing {
        dataset: spec.name,
        dir: dir.to_path_buf(),
        files: failed,
        mirrors: mirrors.iter().map(|m| m.to_string()).collect(),
        reasons,
    })
}

enum Failure {
    /// The mirror's fault: try the next one. `unreachable` when no HTTP answer came at all.
    Remote { unreachable: bool, err: DataError },
    /// Our side's fault (cannot write the .part): no mirror can fix it.
    Local(DataError),
}

/// Streams `url` into `part` while hashing it; Ok only if the md5 matches.
fn fetch(url: &str, part: &Path, want_md5: &str) -> Result<(), Failure> {
    let remote = |unreachable, message: String| Failure::Remote { unreachable, err: DataError::Download { url: url.to_string(), message } };
    let local = |op| move |e| Failure::Local(DataError::Io { op, path: part.to_path_buf(), source: e });

    let resp = agent(is_loopback(url)).get(url).call().map_err(|e| remote(true, e.to_string()))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(remote(false, format!("HTTP {status}")));
    }
    // ureq decodes a Content-Encoding it knows, which would change the bytes being hashed;
    // we ask for identity, but name it if a server sends it anyway.
    let encoding = resp
        .headers()
        .get("content-encoding")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.eq_ignore_ascii_case("identity"))
        .map(|v| format!(" (the server sent Content-Encoding: {v})"))
        .unwrap_or_default();
    let mut body = resp.into_body().into_with_config().limit(MAX_DOWNLOAD).reader();

    // Created anew: a stale `.part` (or a link left at its name) is removed, never written through.
    match fs::remove_file(part) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(local("cannot create")(e)),
        _ => {}
    }
    let mut file = fs::OpenOptions::new().write(true).create_new(true).open(part).map_err(local("cannot create"))?;
    let mut h = Md5::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(remote(false, format!("reading the response: {e}"))),
        };
        h.update(&buf[..n]);
        file.write_all(&buf[..n]).map_err(local("cannot write"))?;
    }
    // Flushed to disk before the rename so a crash cannot leave a renamed but empty file.
    file.sync_all().map_err(local("cannot write"))?;
    drop(file);

    let got = hex(&h.finalize());
    if !got.eq_ignore_ascii_case(want_md5) {
        return Err(remote(false, format!("md5 of the download is {got}, expected {want_md5}{encoding}")));
    }
    Ok(())
}

fn agent(direct: bool) -> ureq::Agent {
    let t = Some(TIMEOUT);
    let mut cfg = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .accept_encoding("identity")
        .user_agent(concat!("dae/", env!("CARGO_PKG_VERSION")))
        .timeout_resolve(t)
        .timeout_connect(t)
        .timeout_send_request(t)
        .timeout_recv_response(t)
        .timeout_per_read(t);
    if direct {
        // An HTTP(S)_PROXY from the environment cannot reach this machine's loopback.
        cfg = cfg.proxy(None);
    }
    cfg.build().new_agent()
}

fn is_loopback(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or("");
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if host.starts_with('[') { host.split_once(']').map_or(host, |(h, _)| &h[1..]) } else { host.split(':').next().unwrap_or(host) };
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn join_url(mirror: &str, name: &str) -> String {
    if mirror.ends_with('/') { format!("{mirror}{name}") } else { format!("{mirror}/{name}") }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::idx::test_util::{TempDir, real_data_dir};
    use crate::data::idx::{read_labels, write_images_gz, write_labels_gz};
    use std::io::{BufRead, BufReader};
    use std::net::{SocketAddr, TcpListener, TcpStream};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use std::thread::JoinHandle;
    use std::time::Instant;

    /// A minimal HTTP/1.1 server on 127.0.0.1 serving fixed bodies by path (404 otherwise).
    /// It stops when dropped, and on its own after 10 s so a failed test cannot leave it behind.
    struct Server {
        addr: SocketAddr,
        hits: Arc<Mutex<Vec<String>>>,
        stop: Arc<AtomicBool>,
        thread: Option<JoinHandle<()>>,
    }

    impl Server {
        fn start(routes: Vec<(String, Vec<u8>)>) -> Server {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            listener.set_nonblocking(true).unwrap();
            let addr = listener.local_addr().unwrap();
            let hits = Arc::new(Mutex::new(Vec::new()));
            let stop = Arc::new(AtomicBool::new(false));
            let (h, s) = (hits.clone(), stop.clone());
            let thread = std::thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(10);
                while !s.load(Ordering::Relaxed) && Instant::now() < deadline {
                    match listener.accept() {
                        Ok((conn, _)) => serve(conn, &routes, &h),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(2)),
                        Err(_) => break,
                    }
                }
            });
            Server { addr, hits, stop, thread: Some(thread) }
        }

        fn url(&self) -> String {
            format!("http://{}/data/", self.addr)
        }

        fn hits(&self) -> Vec<String> {
            self.hits.lock().unwrap().clone()
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::Relaxed);
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }

    fn serve(conn: TcpStream, routes: &[(String, Vec<u8>)], hits: &Mutex<Vec<String>>) {
        let _ = conn.set_nonblocking(false);
        let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
        let mut reader = BufReader::new(&conn);
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).is_err() {
            return;
        }
        // Drain the headers so the client is not cut off mid-request.
        let mut line = String::new();
        while reader.read_line(&mut line).map(|n| n > 2).unwrap_or(false) {
            line.clear();
        }
        let path = request_line.split_whitespace().nth(1).unwrap_or("").to_string();
        hits.lock().unwrap().push(path.clone());
        let mut w = &conn;
        let _ = match routes.iter().find(|(p, _)| *p == path) {
            Some((_, body)) => w
                .write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\
                         Content-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    )
                    .as_bytes(),
                )
                .and_then(|_| w.write_all(body)),
            None => w.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found"),
        };
        let _ = w.flush();
    }

    /// A tiny data set in the real file layout, with its spec (md5s computed here).
    struct Fixture {
        spec: DatasetSpec,
        bytes: Vec<(&'static str, Vec<u8>)>,
    }

    fn fixture() -> Fixture {
        let dir = TempDir::new("dl-fixture");
        let p = |n: &str| dir.path().join(n);
        write_images_gz(&p(TRAIN_IMAGES), 3, 2, 2, &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]).unwrap();
        write_labels_gz(&p(TRAIN_LABELS), &[3, 1, 4]).unwrap();
        write_images_gz(&p(TEST_IMAGES), 2, 2, 2, &[9, 8, 7, 6, 5, 4, 3, 2]).unwrap();
        write_labels_gz(&p(TEST_LABELS), &[5, 9]).unwrap();
        let names = [TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS];
        let bytes: Vec<_> = names.iter().map(|&n| (n, fs::read(p(n)).unwrap())).collect();
        let md5 = |n: &str| -> &'static str { Box::leak(md5_file(&p(n)).unwrap().into_boxed_str()) };
        let spec = DatasetSpec { name: "Tiny", files: names.map(|n| (n, md5(n))), mirrors: &[] };
        Fixture { spec, bytes }
    }

    fn routes(bytes: &[(&'static str, Vec<u8>)]) -> Vec<(String, Vec<u8>)> {
        bytes.iter().map(|(n, b)| (format!("/data/{n}"), b.clone())).collect()
    }

    fn closed_port_url() -> String {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        format!("http://{addr}/data/")
    }

    fn no_part_files(dir: &Path) {
        for e in fs::read_dir(dir).unwrap() {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            assert!(!name.ends_with(".part"), "left behind: {name}");
        }
    }

    #[test]
    fn md5_of_known_inputs() {
        let dir = TempDir::new("dl-md5");
        let p = dir.path().join("abc");
        fs::write(&p, b"abc").unwrap();
        assert_eq!(md5_file(&p).unwrap(), "900150983cd24fb0d6963f7d28e17f72");
        fs::write(&p, b"").unwrap();
        assert_eq!(md5_file(&p).unwrap(), "d41d8cd98f00b204e9800998ecf8427e");
        let e = md5_file(&dir.path().join("absent")).unwrap_err();
        assert!(e.to_string().contains("absent"), "{e}");
    }

    #[test]
    fn specs_are_well_formed() {
        for spec in [MNIST, FASHION_MNIST] {
            for (name, md5) in spec.files {
                assert!(name.ends_with("-ubyte.gz"));
                assert!(md5.len() == 32 && md5.bytes().all(|b| b.is_ascii_hexdigit()), "{md5}");
            }
            assert!(!spec.mirrors.is_empty() && spec.mirrors.iter().all(|m| m.ends_with('/')));
        }
    }

    #[test]
    fn url_helpers() {
        assert_eq!(join_url("http://a/b", "f"), "http://a/b/f");
        assert_eq!(join_url("http://a/b/", "f"), "http://a/b/f");
        assert!(is_loopback("http://127.0.0.1:8080/x"));
        assert!(is_loopback("http://localhost/x"));
        assert!(is_loopback("http://[::1]:80/x"));
        assert!(!is_loopback("https://ossci-datasets.s3.amazonaws.com/mnist/"));
        assert!(!is_loopback("http://127.0.0.1.evil.example/"));
    }

    #[test]
    fn downloads_verifies_and_then_uses_present_files() {
        let fx = fixture();
        let server = Server::start(routes(&fx.bytes));
        let dir = TempDir::new("dl-ok");
        let data = dir.path().join("nested/data");
        // A stale .part from an interrupted run must simply be overwritten.
        fs::create_dir_all(&data).unwrap();
        fs::write(data.join(format!("{TRAIN_LABELS}.part")), b"stale junk").unwrap();

        let mut lines = Vec::new();
        ensure_files(&fx.spec, &data, &[&server.url()], &mut |l| lines.push(l.to_string())).unwrap();
        for (name, bytes) in &fx.bytes {
            assert_eq!(&fs::read(data.join(name)).unwrap(), bytes, "{name}");
        }
        no_part_files(&data);
        verify(&fx.spec, &data).unwrap();
        assert_eq!(read_labels(&data.join(TRAIN_LABELS)).unwrap(), vec![3, 1, 4]);
        assert!(lines.iter().any(|l| l.contains("downloading") && l.contains(TEST_IMAGES)), "{lines:?}");
        assert_eq!(lines.iter().filter(|l| l.ends_with(')') && l.contains(" ok ")).count(), 4, "{lines:?}");
        assert_eq!(server.hits().len(), 4);

        // Present files are used as they are: no request, no hashing, even of a wrong file.
        fs::write(data.join(TEST_LABELS), b"not the real thing").unwrap();
        let mut lines = Vec::new();
        ensure_files(&fx.spec, &data, &[&server.url()], &mut |l| lines.push(l.to_string())).unwrap();
        assert!(lines.is_empty(), "{lines:?}");
        assert_eq!(server.hits().len(), 4);
        // ...which is what `verify` is for.
        let e = verify(&fx.spec, &data).unwrap_err();
        assert!(matches!(e, DataError::Checksum { .. }), "{e:?}");
        assert!(e.to_string().contains(&data.join(TEST_LABELS).display().to_string()), "{e}");

        // Only the missing file is fetched again.
        fs::remove_file(data.join(TEST_LABELS)).unwrap();
        ensure_files(&fx.spec, &data, &[&server.url()], &mut |_| {}).unwrap();
        assert_eq!(server.hits().last().map(String::as_str), Some(&*format!("/data/{TEST_LABELS}")));
        assert_eq!(server.hits().len(), 5);
        verify(&fx.spec, &data).unwrap();
    }

    #[test]
    fn corrupt_download_is_rejected() {
        let fx = fixture();
        let mut bytes = fx.bytes.clone();
        bytes[0].1[20] ^= 0x55;
        let server = Server::start(routes(&bytes));
        let dir = TempDir::new("dl-corrupt");
        let e = ensure_files(&fx.spec, dir.path(), &[&server.url()], &mut |_| {}).unwrap_err();
        let msg = e.to_string();
        match &e {
            DataError::Missing { files, .. } => assert_eq!(files, &vec![TRAIN_IMAGES.to_string()]),
            other => panic!("{other:?}"),
        }
        assert!(msg.contains("md5"), "{msg}");
        assert!(!dir.path().join(TRAIN_IMAGES).exists());
        no_part_files(dir.path());
        // The good files were still fetched and are usable.
        assert!(dir.path().join(TRAIN_LABELS).is_file());
    }

    #[test]
    fn falls_back_to_the_next_mirror() {
        let fx = fixture();
        let empty = Server::start(Vec::new());
        let good = Server::start(routes(&fx.bytes));
        let dir = TempDir::new("dl-fallback");
        let mut lines = Vec::new();
        // The second mirror has no trailing slash, which must not matter.
        let good_url = good.url().trim_end_matches('/').to_string();
        ensure_files(&fx.spec, dir.path(), &[&empty.url(), &good_url], &mut |l| lines.push(l.to_string())).unwrap();
        assert_eq!(empty.hits().len(), 4, "a 404 mirror stays in use for the next file");
        assert_eq!(good.hits().len(), 4);
        assert!(lines.iter().any(|l| l.contains("404")), "{lines:?}");
        verify(&fx.spec, dir.path()).unwrap();
        no_part_files(dir.path());
    }

    #[test]
    fn all_mirrors_failing_names_every_file() {
        let fx = fixture();
        let dir = TempDir::new("dl-fail");
        let data = dir.path().join("d");
        let (a, b) = (closed_port_url(), closed_port_url());
        let mut lines = Vec::new();
        let e = ensure_files(&fx.spec, &data, &[&a, &b], &mut |l| lines.push(l.to_string())).unwrap_err();
        let msg = e.to_string();
        let DataError::Missing { files, reasons, .. } = &e else { panic!("{e:?}") };
        assert_eq!(files.len(), 4);
        // Unreachable mirrors are tried once, not once per file.
        assert_eq!(reasons.len(), 2, "{reasons:?}");
        for (name, _) in fx.spec.files {
            assert!(msg.contains(name), "{msg}");
        }
        for needle in [&a, &b, "Tiny", "DAE_DATA_DIR", "--data-dir", &data.display().to_string()] {
            assert!(msg.contains(needle), "{needle} not in: {msg}");
        }
        no_part_files(&data);

        let e = ensure_files(&fx.spec, &data, &[], &mut |_| {}).unwrap_err();
        assert!(matches!(e, DataError::Missing { .. }), "{e:?}");
    }

    #[test]
    fn unwritable_folder_is_a_local_error() {
        let fx = fixture();
        let dir = TempDir::new("dl-local");
        let blocker = dir.path().join("file");
        fs::write(&blocker, b"x").unwrap();
        let e = ensure_files(&fx.spec, &blocker.join("sub"), &[&closed_port_url()], &mut |_| {}).unwrap_err();
        assert!(matches!(e, DataError::Io { .. }), "{e:?}");
        assert!(e.to_string().contains(&blocker.display().to_string()), "{e}");
    }

    #[test]
    fn real_data_verifies() {
        for (sub, spec, other) in [("mnist", MNIST, FASHION_MNIST), ("fashion-mnist", FASHION_MNIST, MNIST)] {
            let dir = real_data_dir(sub);
            verify(&spec, &dir).unwrap();
            // The same file names, so the other set's files are named as that set's.
            assert!(matches!(
                verify(&other, &dir),
                Err(DataError::OtherDataset { found, .. }) if found == spec.name
            ));
            // Everything present: nothing to do, and no network touched.
            let mut lines = Vec::new();
            ensure_files(&spec, &dir, &[], &mut |l| lines.push(l.to_string())).unwrap();
            assert!(lines.is_empty());
        }
    }
}
