//! Autotune: which variant of a kernel runs fastest at a shape on this adapter. A launcher asks
//! [`Ctx::tuned`](super::Ctx::tuned) with its candidates' labels and a closure that times one;
//! the tuner times each once per (adapter, driver, kernel, shape), within a time budget per
//! process, and keeps the winner in a JSON file:
//! `DAE_TUNE_CACHE` (a file path) or the platform cache dir (`~/.cache/dae/tune.json` on Linux).
//! A corrupt cache is ignored with a warning and rewritten. Choices a run must reuse (the ones a
//! checkpoint recorded) are pinned and win over the cache. The tuner knows no op: keys and labels
//! are the launcher's strings.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Seconds of timing one process may spend before the rest run their first candidate untuned
/// (and are tuned by a later run). `DAE_TUNE_BUDGET` overrides; 0 turns tuning off.
const DEFAULT_BUDGET_S: f64 = 1.0;

pub struct Tuner {
    path: Option<PathBuf>,
    /// "adapter | driver", the first part of every cache key.
    device: String,
    /// "adapter | driver | kernel | shape" -> winning label.
    cache: BTreeMap<String, String>,
    /// "kernel | shape" -> label, from a checkpoint: used as is, never timed.
    pinned: BTreeMap<String, String>,
    /// "kernel | shape" -> label, what this process used (written into checkpoints).
    used: BTreeMap<String, String>,
    /// "kernel | shape" -> (label, ms) of every candidate timed by this process.
    timed: BTreeMap<String, Vec<(String, f64)>>,
    spent: f64,
    budget: f64,
    /// The budget one process starts with, and what `extend` grants again.
    slice: f64,
    /// "kernel | shape" of the shapes the budget left untuned (or cut short) so far; a later
    /// `extend` lets them be timed (see `known`).
    deferred: std::collections::BTreeSet<String>,
    /// Uses of a deferred shape so far (each untuned use counts).
    deferrals: u64,
    /// What the caller should tell the user (a corrupt cache, a bad DAE_TUNE_BUDGET), until taken.
    warnings: Vec<String>,
}

/// The cache file: `DAE_TUNE_CACHE`, else `<platform cache dir>/dae/tune.json`; none in the
/// browser (which has no files, and no timed autotune).
pub fn cache_path() -> Option<PathBuf> {
    match std::env::var_os("DAE_TUNE_CACHE") {
        Some(p) if !p.is_empty() => Some(PathBuf::from(p)),
        #[cfg(not(target_arch = "wasm32"))]
        _ => dirs::cache_dir().map(|d| d.join("dae").join("tune.json")),
        #[cfg(target_arch = "wasm32")]
        _ => None,
    }
}

fn budget_from_env(warnings: &mut Vec<String>) -> f64 {
    match std::env::var("DAE_TUNE_BUDGET") {
        Ok(v) => match v.trim().parse::<f64>() {
            Ok(b) if b.is_finite() && b >= 0.0 => b,
            _ => {
                warnings.push(format!("DAE_TUNE_BUDGET={v:?} is not a number of seconds >= 0; using {DEFAULT_BUDGET_S}"));
                DEFAULT_BUDGET_S
            }
        },
        Err(_) => DEFAULT_BUDGET_S,
    }
}

/// Read a cache file; a missing file is an empty cache, a corrupt one too (with a warning into
/// `warnings` when given, which the first read of a process does: it is rewritten at the next
/// tuning).
fn load(path: &Path, warnings: Option<&mut Vec<String>>) -> BTreeMap<String, String> {
    let problem = match std::fs::read(path) {
        Ok(bytes) => match serde_json::from_slice::<BTreeMap<String, String>>(&bytes) {
            Ok(m) => return m,
            Err(e) => format!("autotune cache {} is corrupt ({e}); ignoring it, it will be rewritten", path.display()),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return BTreeMap::new(),
        Err(e) => format!("autotune cache {} unreadable ({e}); tuning again", path.display()),
    };
    if let Some(w) = warnings {
        w.push(problem);
    }
    BTreeMap::new()
}

impl Tuner {
    pub fn new(info: &wgpu::AdapterInfo) -> Tuner {
        let mut warnings = Vec::new();
        let budget = budget_from_env(&mut warnings);
        let mut t = Tuner::at(cache_path(), &format!("{} | {} {}", info.name, info.driver, info.driver_info), budget);
        t.warnings.splice(0..0, warnings);
        t
    }

    /// A tuner for `device` keeping its cache in `path` (none: this process only).
    pub fn at(path: Option<PathBuf>, device: &str, budget: f64) -> Tuner {
        let mut warnings = Vec::new();
        let cache = path.as_deref().map(|p| load(p, Some(&mut warnings))).unwrap_or_default();
        Tuner {
            path,
            device: device.to_string(),
            cache,
            pinned: BTreeMap::new(),
            used: BTreeMap::new(),
            timed: BTreeMap::new(),
            spent: 0.0,
            budget,
            slice: budget,
            deferred: Default::default(),
            deferrals: 0,
            warnings,
        }
    }

    /// The cache key: the device, "kernel | shape" and the candidates, so that a winner chosen
    /// among other candidates (an older build's) is timed again against the current ones.
    fn full_key(&self, short: &str, labels: &[&str]) -> String {
        format!("{} | {short} | of {}", self.device, labels.join(", "))
    }

    /// The label to use for `short` ("kernel | shape") among `labels`, if already known (pinned,
    /// then what this process used before, then cached); `None` means: time the candidates.
    /// What this process used comes before the cache so a shape keeps one choice while the
    /// budget lasts: one whose timing the budget cut short runs its best-so-far every time, not
    /// that once and the first candidate after, until `extend` grants budget again and it is
    /// timed whole.
    pub fn known(&self, short: &str, labels: &[&str]) -> Option<usize> {
        let find = |l: &String| labels.iter().position(|c| c == l);
        let retime = self.deferred.contains(short) && self.has_budget();
        self.pinned
            .get(short)
            .and_then(find)
            .or_else(|| if retime { None } else { self.used.get(short).and_then(find) })
            .or_else(|| self.cache.get(&self.full_key(short, labels)).and_then(find))
    }

    /// A use of a shape the budget left untuned or cut short (it runs its first or best-so-far
    /// label).
    pub fn defer(&mut self, short: &str) {
        self.deferred.insert(short.to_string());
        self.deferrals += 1;
    }

    pub fn undefer(&mut self, short: &str) {
        self.deferred.remove(short);
    }

    pub fn is_deferred(&self, short: &str) -> bool {
        self.deferred.contains(short)
    }

    /// Uses of untuned shapes so far: work encoded while this grew ran some shape untuned.
    pub fn deferrals(&self) -> u64 {
        self.deferrals
    }

    /// Another slice of budget when shapes wait for timing (and tuning is on): true when the
    /// caller should encode its work anew so that they get timed (`dae train` re-records its
    /// step plan; every candidate computes the same bits, so a changed choice changes no
    /// result).
    pub fn extend(&mut self) -> bool {
        if self.deferred.is_empty() || self.slice <= 0.0 {
            return false;
        }
        self.budget = self.budget.max(self.spent + self.slice);
        true
    }

    /// Raise the budget to at least `secs` unless `DAE_TUNE_BUDGET` set it (the benchmark suite,
    /// whose point is the tuned kernels, tunes every shape it meets).
    pub fn widen_budget(&mut self, secs: f64) {
        if std::env::var_os("DAE_TUNE_BUDGET").is_none() {
            self.budget = self.budget.max(secs);
        }
    }

    pub fn has_budget(&self) -> bool {
        self.spent < self.budget
    }

    pub fn note_used(&mut self, short: &str, label: &str) {
        self.used.insert(short.to_string(), label.to_string());
    }

    /// Record a timing result: the winner goes into the cache and the file.
    /// Count `seconds` of timing that decided nothing for the cache (a shape whose candidates the
    /// budget cut short: a later run times them all).
    pub fn spend(&mut self, seconds: f64) {
        self.spent += seconds;
    }

    /// Whether `seconds` more of timing stay within the budget.
    pub fn fits(&self, seconds: f64) -> bool {
        self.spent + seconds < self.budget
    }

    pub fn record(&mut self, short: &str, times: Vec<(String, f64)>, seconds: f64) {
        self.spent += seconds;
        self.undefer(short);
        let Some((best, _)) = times.iter().min_by(|a, b| a.1.total_cmp(&b.1)) else { return };
        let labels: Vec<&str> = times.iter().map(|(l, _)| l.as_str()).collect();
        let key = self.full_key(short, &labels);
        self.cache.insert(key, best.clone());
        self.timed.insert(short.to_string(), times);
        self.save();
    }

    fn save(&mut self) {
        let Some(path) = &self.path else { return };
        // Another process may have tuned other keys meanwhile: merge, ours win.
        let mut merged = load(path, None);
        merged.extend(self.cache.iter().map(|(k, v)| (k.clone(), v.clone())));
        let bytes = match serde_json::to_vec_pretty(&merged) {
            Ok(b) => b,
            Err(_) => return,
        };
        let write = || -> std::io::Result<()> {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            // Unique per process and per save: contexts in several threads may save at once.
            static SAVES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let n = SAVES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let tmp = path.with_extension(format!("json.{}.{n}.tmp", std::process::id()));
            std::io::Write::write_all(&mut crate::util::files::create_new(&tmp)?, &bytes)?;
            std::fs::rename(&tmp, path)
        };
        if let Err(e) = write() {
            self.warnings.push(format!("autotune cache {} not written ({e}); the choices hold for this run only", path.display()));
            self.path = None;
        }
    }

    /// The warnings so far, taken.
    pub fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }

    pub fn pin(&mut self, choices: BTreeMap<String, String>) {
        self.pinned = choices;
    }

    pub fn used(&self) -> BTreeMap<String, String> {
        self.used.clone()
    }

    pub fn timed(&self) -> BTreeMap<String, Vec<(String, f64)>> {
        self.timed.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("dae-tune-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d.join("tune.json")
    }

    #[test]
    fn the_winner_is_cached_per_device_and_a_pin_wins() {
        let path = tmp("cache");
        let mut t = Tuner::at(Some(path.clone()), "gpu A | drv 1", 10.0);
        assert_eq!(t.known("conv | n1", &["tiled", "cb"]), None);
        t.record("conv | n1", vec![("tiled".into(), 2.0), ("cb".into(), 1.0)], 0.1);
        assert_eq!(t.known("conv | n1", &["tiled", "cb"]), Some(1));
        // A new process on the same device reads it; another device does not.
        assert_eq!(Tuner::at(Some(path.clone()), "gpu A | drv 1", 10.0).known("conv | n1", &["tiled", "cb"]), Some(1));
        assert_eq!(Tuner::at(Some(path.clone()), "gpu B | drv 1", 10.0).known("conv | n1", &["tiled", "cb"]), None);
        // A label that is no longer a candidate is not used.
        assert_eq!(t.known("conv | n1", &["tiled", "other"]), None);
        // Nor a winner chosen among other candidates: a new candidate gets its chance.
        assert_eq!(t.known("conv | n1", &["tiled", "cb", "new"]), None);
        // A checkpoint's pin wins over the cache.
        t.pin(BTreeMap::from([("conv | n1".to_string(), "tiled".to_string())]));
        assert_eq!(t.known("conv | n1", &["tiled", "cb"]), Some(0));
        std::fs::remove_dir_all(path.parent().unwrap()).ok();
    }

    #[test]
    fn a_corrupt_cache_is_ignored_and_rewritten() {
        let path = tmp("corrupt");
        std::fs::write(&path, b"{\"truncated").unwrap();
        let mut t = Tuner::at(Some(path.clone()), "gpu | drv", 10.0);
        assert_eq!(t.known("k | s", &["a", "b"]), None);
        t.record("k | s", vec![("a".into(), 3.0), ("b".into(), 4.0)], 0.1);
        let back: BTreeMap<String, String> = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(back.get("gpu | drv | k | s | of a, b").map(String::as_str), Some("a"));
        std::fs::remove_dir_all(path.parent().unwrap()).ok();
    }

    #[test]
    fn the_budget_bounds_the_timing() {
        let mut t = Tuner::at(None, "gpu | drv", 1.0);
        assert!(t.has_budget());
        t.record("k | s", vec![("a".into(), 3.0)], 1.5);
        assert!(!t.has_budget());
        // Timing cut short by the budget counts, but caches nothing.
        let mut t = Tuner::at(None, "gpu | drv", 1.0);
        assert!(t.fits(0.5) && !t.fits(1.5));
        t.spend(0.6);
        assert!(!t.fits(0.5) && t.known("k | s", &["a"]).is_none());
        // What the process used, best-so-far of a cut timing included, it uses again.
        t.note_used("k | s", "b");
        assert_eq!(t.known("k | s", &["a", "b"]), Some(1));
    }

    #[test]
    fn a_deferred_shape_keeps_its_choice_until_another_slice_times_it() {
        let mut t = Tuner::at(None, "gpu | drv", 1.0);
        assert!(!t.extend(), "nothing waits: no new slice");
        t.record("k | a", vec![("x".into(), 1.0), ("y".into(), 2.0)], 1.0);
        // Out of budget: shape b runs its first label, untuned, as often as it is met.
        t.note_used("k | b", "x");
        t.defer("k | b");
        assert_eq!(t.known("k | b", &["x", "y"]), Some(0));
        t.defer("k | b");
        assert_eq!(t.deferrals(), 2);
        // Another slice: b is timed (known gives None) and, once recorded, waits no more.
        assert!(t.extend() && t.has_budget());
        assert_eq!(t.known("k | b", &["x", "y"]), None);
        t.record("k | b", vec![("x".into(), 2.0), ("y".into(), 1.0)], 0.5);
        t.note_used("k | b", "y");
        assert!(!t.is_deferred("k | b") && !t.extend());
        assert_eq!(t.known("k | b", &["x", "y"]), Some(1));
        // DAE_TUNE_BUDGET=0 (tuning off) never grants a slice.
        let mut off = Tuner::at(None, "gpu | drv", 0.0);
        off.defer("k | c");
        assert!(!off.extend());
    }
}
