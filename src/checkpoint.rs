//! Checkpoints: safetensors files readable by PyTorch's `safetensors` package, tensor names as
//! PyTorch's state_dict (so `load_state_dict(strict=True)` works), the resolved config and run
//! metadata in the header. Every file is written to `<name>.tmp` and renamed into place.
//!
//! A training checkpoint `<stem>` is a SET of three files: `<stem>.safetensors` (raw weights),
//! `<stem>.ema.safetensors` (EMA weights) and `<stem>.state.safetensors` (optimiser moments and
//! the position in the run), made visible together or not at all by a manifest
//! `<stem>.manifest.json` (each file's name, size and SHA-256):
//! 1. every file is written to `<file>.tmp` and fsynced;
//! 2. the manifest is written to a temp file, fsynced, renamed into place, and the folder fsynced:
//!    this rename is the commit point;
//! 3. each `.tmp` is renamed onto its file, and the folder fsynced.
//!
//! A crash before 2 leaves the previous set and its manifest intact (the `.tmp` files are stale
//! and removed on the next open); a crash during 3 leaves `.tmp` files that match the manifest,
//! and opening the set finishes their renames. Each weights file stays a plain safetensors file
//! with PyTorch's names. Sets written before the manifest existed (format `dae-checkpoint-1`)
//! still open when their three files carry the same step.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use safetensors::tensor::Dtype;
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::gpu::{Ctx, View};
use crate::nn::{Layout, Model, Weights};

/// A host copy of a model's tensors in its layout's arenas.
#[derive(Clone, Debug, PartialEq)]
pub struct HostWeights {
    pub params: Vec<f32>,
    pub buffers: Vec<f32>,
    /// Batch-norm num_batches_tracked (the same for every layer).
    pub batches_tracked: i64,
}

fn err(path: &Path, msg: impl std::fmt::Display) -> Error {
    Error::Msg(format!("{}: {msg}", path.display()))
}

pub use crate::util::files::{Loaded, TensorList, crash_after_writes, parse, read, sync_dir, write, write_file};
use crate::util::files::{rename, serialize, sha256_hex, tmp_path, write_tmp};

/// The format this code writes (metadata `format`); `dae-checkpoint-1` files still load.
pub const FORMAT: &str = "dae-checkpoint-2";
const FORMATS_READ: &[&str] = &["dae-checkpoint-1", FORMAT];

// ---- checkpoint sets ---------------------------------------------------------------------------

/// The files of a training checkpoint set, by suffix after the stem.
pub const SET_PARTS: [&str; 3] = ["", ".ema", ".state"];

fn part_path(dir: &Path, stem: &str, part: &str) -> PathBuf {
    dir.join(format!("{stem}{part}.safetensors"))
}

fn manifest_path(dir: &Path, stem: &str) -> PathBuf {
    dir.join(format!("{stem}.manifest.json"))
}

#[derive(Serialize, Deserialize)]
struct Manifest {
    format: String,
    stem: String,
    step: u64,
    files: Vec<ManifestFile>,
}

#[derive(Serialize, Deserialize)]
struct ManifestFile {
    name: String,
    bytes: u64,
    sha256: String,
}

/// Write the set `stem` in `dir`: one (tensors, metadata) per part of [`SET_PARTS`], in that
/// order, all at `step` (see the module header for the protocol).
pub fn write_set(dir: &Path, stem: &str, step: u64, parts: [(TensorList, HashMap<String, String>); 3]) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| err(dir, format!("cannot create folder: {e}")))?;
    let mut files = Vec::new();
    let mut tmps = Vec::new();
    for (part, (tensors, meta)) in SET_PARTS.iter().zip(parts) {
        let path = part_path(dir, stem, part);
        let bytes = serialize(&path, &tensors, meta)?;
        files.push(ManifestFile { name: file_name(&path), bytes: bytes.len() as u64, sha256: sha256_hex(&bytes) });
        tmps.push((write_tmp(&path, &bytes)?, path));
    }
    let manifest = Manifest { format: FORMAT.into(), stem: stem.into(), step, files };
    let mpath = manifest_path(dir, stem);
    let text = serde_json::to_vec_pretty(&manifest).map_err(|e| err(&mpath, e))?;
    let mtmp = write_tmp(&mpath, &text)?;
    rename(&mtmp, &mpath)?;
    sync_dir(dir)?;
    for (tmp, path) in &tmps {
        rename(tmp, path)?;
    }
    sync_dir(dir)
}

fn file_name(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// A complete set: its three files (in [`SET_PARTS`] order) and its step.
pub struct Set {
    pub stem: String,
    pub step: u64,
    pub files: [Loaded; 3],
}

/// Open the set `stem` in `dir` if it is complete, finishing renames a crash interrupted after
/// the commit point and removing stale `.tmp` files. `Ok(None)` when there is no set of that
/// name; `Err` names what is missing or inconsistent.
pub fn open_set(dir: &Path, stem: &str) -> Result<Option<Set>> {
    let mpath = manifest_path(dir, stem);
    let paths: Vec<PathBuf> = SET_PARTS.iter().map(|p| part_path(dir, stem, p)).collect();
    let set = if mpath.is_file() {
        let text = std::fs::read(&mpath).map_err(|e| err(&mpath, e))?;
        let m: Manifest = serde_json::from_slice(&text).map_err(|e| err(&mpath, format!("unreadable manifest: {e}")))?;
        if !FORMATS_READ.contains(&m.format.as_str()) {
            return Err(err(
                &mpath,
                format!("format {:?} is not one this dae reads ({}); it was written by a newer dae", m.format, FORMATS_READ.join(", ")),
            ));
        }
        let mut loaded = Vec::new();
        for (path, want) in paths.iter().zip(&m.files) {
            if file_name(path) != want.name {
                return Err(err(&mpath, format!("lists {} where {} belongs", want.name, file_name(path))));
            }
            let matches = |p: &Path| std::fs::read(p).ok().filter(|b| b.len() as u64 == want.bytes && sha256_hex(b) == want.sha256);
            let bytes = match matches(path) {
                Some(b) => b,
                None => {
                    // Committed but not yet renamed: the `.tmp` holds the listed bytes.
                    let tmp = tmp_path(path);
                    let b = matches(&tmp).ok_or_else(|| {
                        err(
                            path,
                            format!(
                                "does not match {} (step {}), and no complete {} is there: the set is incomplete",
                                file_name(&mpath),
                                m.step,
                                file_name(&tmp)
                            ),
                        )
                    })?;
                    rename(&tmp, path)?;
                    sync_dir(dir)?;
                    b
                }
            };
            loaded.push(parse(&bytes, path)?);
        }
        let files: [Loaded; 3] = loaded.try_into().map_err(|_| err(&mpath, "lists fewer than three files"))?;
        Set { stem: stem.into(), step: m.step, files }
    } else {
        if !paths.iter().any(|p| p.is_file()) {
            remove_stale_tmps(dir, stem);
            return Ok(None);
        }
        // A set written before manifests (dae-checkpoint-1): complete when all three files are
        // there at one step.
        let loaded = paths.iter().map(|p| read(p)).collect::<Result<Vec<_>>>()?;
        let steps: Vec<String> = loaded.iter().map(|f| f.meta.get("step").cloned().unwrap_or_default()).collect();
        if steps.iter().any(|s| *s != steps[0]) {
            return Err(err(
                &paths[0],
                format!("the three `{stem}` files are from different steps ({}): the run was cut off while saving", steps.join(", ")),
            ));
        }
        let step = steps[0].parse().map_err(|_| err(&paths[0], "no step in the metadata"))?;
        let files: [Loaded; 3] = loaded.try_into().map_err(|_| err(&paths[0], "fewer than three files"))?;
        Set { stem: stem.into(), step, files }
    };
    for f in &set.files {
        let format = f.meta.get("format").map(String::as_str).unwrap_or("");
        if !FORMATS_READ.contains(&format) {
            return Err(err(&f.path, format!("format {format:?} is not one this dae reads ({})", FORMATS_READ.join(", "))));
        }
    }
    remove_stale_tmps(dir, stem);
    Ok(Some(set))
}

/// `.tmp` files of `stem`'s set that an interrupted save left behind.
fn remove_stale_tmps(dir: &Path, stem: &str) {
    let mut paths: Vec<PathBuf> = SET_PARTS.iter().map(|p| tmp_path(&part_path(dir, stem, p))).collect();
    paths.push(tmp_path(&manifest_path(dir, stem)));
    for p in paths {
        if p.is_file() {
            let _ = std::fs::remove_file(&p);
        }
    }
}

/// Every f32 tensor of the set's files finite: a set that passes its manifest can still hold
/// a NaN (written by a dae before the non-finite guard, or edited), and training from it would
/// only spread it.
pub fn all_finite(set: &Set) -> Result<()> {
    for f in &set.files {
        let mut names: Vec<&String> = f.tensors.keys().collect();
        names.sort();
        for name in names {
            let (dt, _, data) = &f.tensors[name];
            if *dt == Dtype::F32 {
                finite(&f.path, name, &bytemuck::pod_collect_to_vec::<u8, f32>(data))?;
            }
        }
    }
    Ok(())
}

/// The newest complete checkpoint set in `dir` (see [`newest_usable`]).
pub fn newest_set(dir: &Path) -> Result<(Set, Option<String>)> {
    newest_usable(dir, &mut |_| Ok(()))
}

/// The newest complete checkpoint set in `dir` that `usable` accepts: `last`, or the newest
/// `epoch_NNN` when `last` is missing, incomplete, older, or refused by `usable` (a NaN in
/// weights whose manifest matches: written by a dae that did not check), with a note saying
/// why it is not `last`.
pub fn newest_usable(dir: &Path, usable: &mut dyn FnMut(&Set) -> Result<()>) -> Result<(Set, Option<String>)> {
    let mut problems = Vec::new();
    let last = match open_set(dir, "last") {
        Ok(s) => s,
        Err(e) => {
            problems.push(e.to_string());
            None
        }
    };
    let last_missing = last.is_none() && problems.is_empty();
    // Every epoch stem with any file (a set, a manifest or only a stale `.tmp`): opening each
    // finishes or cleans up what a crash left.
    let mut epochs: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().to_str().and_then(|n| n.split('.').next()).map(str::to_string))
                .filter(|stem| stem.starts_with("epoch_"))
                .collect()
        })
        .unwrap_or_default();
    epochs.sort();
    epochs.dedup();
    // A single file's rename is its commit: a `.tmp` beside it is always stale.
    let _ = std::fs::remove_file(tmp_path(&dir.join("best_model.safetensors")));
    let mut sets: Vec<Set> = Vec::new();
    for stem in epochs.iter().rev() {
        match open_set(dir, stem) {
            Ok(Some(s)) => sets.push(s),
            Ok(None) => {}
            Err(e) => problems.push(e.to_string()),
        }
    }
    // Newest first; `last` ahead of an epoch set of the same step.
    sets.sort_by_key(|s| std::cmp::Reverse(s.step));
    let last_step = last.as_ref().map(|l| l.step);
    if let Some(l) = last {
        let at = sets.iter().position(|s| s.step <= l.step).unwrap_or(sets.len());
        sets.insert(at, l);
    }
    let mut last_refused = None;
    for set in sets {
        match usable(&set) {
            Ok(()) if set.stem == "last" => return Ok((set, None)),
            Ok(()) => {
                let why = if let Some(r) = &last_refused {
                    format!("cannot be used ({r})")
                } else if last_step.is_some() {
                    "is older".to_string()
                } else if last_missing {
                    "is missing".to_string()
                } else {
                    format!("is incomplete ({})", problems[0])
                };
                let note = format!("`last` {why}; continuing from {} (step {})", set.stem, set.step);
                return Ok((set, Some(note)));
            }
            Err(e) => {
                if set.stem == "last" {
                    last_refused = Some(e.to_string());
                }
                problems.push(e.to_string());
            }
        }
    }
    Err(Error::Msg(format!(
        "--resume: no complete checkpoint in {}{}; start over with --overwrite",
        dir.display(),
        if problems.is_empty() { String::new() } else { format!(" ({})", problems.join("; ")) }
    )))
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    bytemuck::cast_slice(v).to_vec()
}

/// The model's tensors under their PyTorch names.
pub fn weight_tensors(layout: &Layout, w: &HostWeights) -> TensorList {
    let mut out = Vec::new();
    for e in &layout.params {
        out.push((e.name.clone(), e.shape.clone(), f32_bytes(&w.params[e.offset..e.offset + e.numel()]), Dtype::F32));
    }
    for e in &layout.buffers {
        out.push((e.name.clone(), e.shape.clone(), f32_bytes(&w.buffers[e.offset..e.offset + e.numel()]), Dtype::F32));
    }
    for c in &layout.counters {
        out.push((c.clone(), vec![], w.batches_tracked.to_le_bytes().to_vec(), Dtype::I64));
    }
    out
}

/// Load `layout`'s tensors strictly: every name present with its shape and dtype, and no extra
/// names (a partial or foreign load is an error naming the tensor).
pub fn load_weights(layout: &Layout, file: &Loaded) -> Result<HostWeights> {
    let mut w = HostWeights { params: vec![0.0; layout.param_len()], buffers: vec![0.0; layout.buffer_len()], batches_tracked: 0 };
    let mut seen = 0;
    let mut take = |name: &str, shape: &[usize], dst: &mut [f32]| -> Result<()> {
        let (dt, s, data) = file.tensors.get(name).ok_or_else(|| err(&file.path, format!("missing tensor {name}")))?;
        if *dt != Dtype::F32 || s != shape {
            return Err(err(&file.path, format!("tensor {name} is {dt:?}{s:?}, the model needs F32{shape:?}")));
        }
        dst.copy_from_slice(&bytemuck::pod_collect_to_vec::<u8, f32>(data));
        finite(&file.path, name, dst)?;
        seen += 1;
        Ok(())
    };
    for e in &layout.params {
        take(&e.name, &e.shape, &mut w.params[e.offset..e.offset + e.numel()])?;
    }
    for e in &layout.buffers {
        take(&e.name, &e.shape, &mut w.buffers[e.offset..e.offset + e.numel()])?;
    }
    for c in &layout.counters {
        let (dt, _, data) = file.tensors.get(c).ok_or_else(|| err(&file.path, format!("missing tensor {c}")))?;
        if *dt != Dtype::I64 || data.len() != 8 {
            return Err(err(&file.path, format!("tensor {c} must be an I64 scalar")));
        }
        w.batches_tracked = i64::from_le_bytes(data[..8].try_into().unwrap_or([0; 8]));
        seen += 1;
    }
    if seen != file.tensors.len() {
        let known: std::collections::HashSet<&str> =
            layout.params.iter().chain(&layout.buffers).map(|e| e.name.as_str()).chain(layout.counters.iter().map(|s| s.as_str())).collect();
        let extra: Vec<&String> = file.tensors.keys().filter(|k| !known.contains(k.as_str())).collect();
        return Err(err(&file.path, format!("tensors the model does not have: {extra:?}")));
    }
    Ok(w)
}

/// A tensor with NaN or infinite values is a damaged checkpoint (training never saves one: its
/// non-finite guard stops first).
fn finite(path: &Path, name: &str, v: &[f32]) -> Result<()> {
    let bad = v.iter().filter(|x| !x.is_finite()).count();
    match v.iter().position(|x| !x.is_finite()) {
        None => Ok(()),
        Some(i) => Err(err(path, format!("tensor {name} holds {bad} NaN or infinite value(s), the first at flat index {i}: the file is damaged"))),
    }
}

/// A model checkpoint file opened for inference: the config it was trained with (from its
/// metadata), its weights in that model's layout, and its metadata.
pub struct ModelFile {
    pub config: crate::config::Config,
    pub weights: HostWeights,
    pub meta: HashMap<String, String>,
    pub path: PathBuf,
}

/// Open a weights file (`best_model`, `last`, `last.ema`, `epoch_NNN`, ...): a format this dae
/// reads, the config in its metadata, every tensor of that model present with its shape.
pub fn load_model(path: &Path) -> Result<ModelFile> {
    model_of(read(path)?)
}

/// A weights file already read (its bytes parsed: [`parse`]) as a model, as [`load_model`].
pub fn model_of(file: Loaded) -> Result<ModelFile> {
    let path = file.path.clone();
    let path = path.as_path();
    let format = file.meta.get("format").map(String::as_str).unwrap_or("");
    if !FORMATS_READ.contains(&format) {
        return Err(err(path, format!("format {format:?} is not a dae checkpoint this version reads ({})", FORMATS_READ.join(", "))));
    }
    if file.meta.get("kind").map(String::as_str) == Some("state") {
        return Err(err(
            path,
            "this is the optimiser state of a checkpoint set, not weights; use the .safetensors or .ema.safetensors file beside it",
        ));
    }
    let yaml = file.meta.get("config").ok_or_else(|| err(path, "no config in the metadata"))?;
    // A damaged file, not a usage error: exit status 1 like every other damaged checkpoint.
    let config = crate::config::Config::from_yaml(yaml, &format!("{} (metadata)", path.display()), &[]).map_err(|e| match e {
        Error::Config(m) => Error::Msg(format!("{m} (the checkpoint's metadata is damaged)")),
        e => e,
    })?;
    let (_, layout) = crate::nn::Model::new(&config.model)?;
    let weights = load_weights(&layout, &file)?;
    Ok(ModelFile { config, weights, meta: file.meta, path: path.to_path_buf() })
}

/// A model from a checkpoint file, on the GPU, ready for eval-mode forwards.
pub struct GpuModel {
    pub model: Model,
    pub layout: crate::nn::Layout,
    pub weights: Weights,
    /// The config the model was trained with (its checkpoint's metadata).
    pub config: Config,
    _params: View,
    _buffers: View,
}

impl GpuModel {
    pub fn upload(ctx: &Ctx, file: &ModelFile) -> Result<GpuModel> {
        let (model, layout) = Model::new(&file.config.model)?;
        let params = ctx.upload("params", &file.weights.params)?;
        let buffers = ctx.upload("buffers", &file.weights.buffers)?;
        let weights = Weights::views(ctx, &layout, &params, None, &buffers)?;
        Ok(GpuModel { model, layout, weights, config: file.config.clone(), _params: params, _buffers: buffers })
    }
}

/// Flat f32 arenas (optimiser moments) under fixed names.
pub fn arena_tensors(named: &[(&str, &[f32])]) -> TensorList {
    named.iter().map(|(n, v)| (n.to_string(), vec![v.len()], f32_bytes(v), Dtype::F32)).collect()
}

pub fn arena(file: &Loaded, name: &str, len: usize) -> Result<Vec<f32>> {
    match file.tensors.get(name) {
        Some((Dtype::F32, s, d)) if s == &[len] => {
            let v = bytemuck::pod_collect_to_vec(d);
            finite(&file.path, name, &v)?;
            Ok(v)
        }
        Some((dt, s, _)) => Err(err(&file.path, format!("{name} is {dt:?}{s:?}, expected F32[{len}]"))),
        None => Err(err(&file.path, format!("missing tensor {name}"))),
    }
}

/// Metadata every checkpoint carries.
pub fn base_meta(config_yaml: &str, adapter: &str, step: u64, kind: &str) -> HashMap<String, String> {
    HashMap::from([
        ("format".to_string(), FORMAT.to_string()),
        ("kind".to_string(), kind.to_string()),
        ("config".to_string(), config_yaml.to_string()),
        ("adapter".to_string(), adapter.to_string()),
        ("git".to_string(), env!("DAE_GIT_HASH").to_string()),
        ("step".to_string(), step.to_string()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::{Model, ModelConfig};

    /// Thousands of damaged checkpoints (a real one's bytes mutated): parsing, the strict load
    /// into the model and opening them as a checkpoint set are errors or loads, never panics.
    #[test]
    fn fuzzed_safetensors_never_panic() {
        let cfg = ModelConfig { base_ch: 4, num_downs: 1, norm_type: crate::nn::model::NormType::Batch, ..Default::default() };
        let (_, l) = Model::new(&cfg).unwrap();
        let (p, b) = l.init(3);
        let w = HostWeights { params: p, buffers: b, batches_tracked: 2 };
        let meta = base_meta(&crate::config::Config { model: cfg.clone(), ..Default::default() }.to_yaml(), "test", 5, "raw");
        let good = serialize(Path::new("x"), &weight_tensors(&l, &w), meta).unwrap();
        let dir = std::env::temp_dir().join(format!("dae-st-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut rng = crate::util::rng::Rng::new(0xF024);
        for i in 0..3000 {
            let bytes = crate::util::rng::mutate(&mut rng, &good);
            let path = dir.join("last.safetensors");
            let r = std::panic::catch_unwind(|| {
                if let Ok(f) = parse(&bytes, &path) {
                    let _ = load_weights(&l, &f);
                }
                if i % 10 == 0 {
                    for part in SET_PARTS {
                        std::fs::write(dir.join(format!("last{part}.safetensors")), &bytes).unwrap();
                    }
                    let _ = open_set(&dir, "last");
                    let _ = load_model(&path);
                }
            });
            assert!(r.is_ok(), "input {i} ({} bytes) panicked", bytes.len());
        }
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn round_trip_and_strict_load() {
        let cfg = ModelConfig { base_ch: 8, num_downs: 2, norm_type: crate::nn::model::NormType::Batch, ..Default::default() };
        let (_, l) = Model::new(&cfg).unwrap();
        let (p, b) = l.init(3);
        let w = HostWeights { params: p, buffers: b, batches_tracked: 7 };
        let dir = std::env::temp_dir().join(format!("dae-ckpt-test-{}", std::process::id()));
        let path = dir.join("m.safetensors");
        write(&path, weight_tensors(&l, &w), base_meta("x: 1\n", "test", 5, "raw")).unwrap();
        assert!(!tmp_path(&path).exists());
        let f = read(&path).unwrap();
        assert_eq!(f.meta["step"], "5");
        let back = load_weights(&l, &f).unwrap();
        // Alignment gaps are not stored; compare the stored elements.
        for e in &l.params {
            assert_eq!(&back.params[e.offset..e.offset + e.numel()], &w.params[e.offset..e.offset + e.numel()]);
        }
        assert_eq!(back.batches_tracked, 7);
        // A model of another shape refuses it, naming a tensor.
        let (_, l2) =
            Model::new(&ModelConfig { base_ch: 16, num_downs: 2, norm_type: crate::nn::model::NormType::Batch, ..Default::default() }).unwrap();
        let e = load_weights(&l2, &f).unwrap_err().to_string();
        assert!(e.contains("inc.double_conv.0.weight"), "{e}");
        // A NaN in a weight is a damaged file, named with the tensor (never loaded silently).
        let mut bad = w.clone();
        let e1 = &l.params[1];
        bad.params[e1.offset + 2] = f32::NAN;
        write(&path, weight_tensors(&l, &bad), base_meta("x: 1\n", "test", 5, "raw")).unwrap();
        let e = load_weights(&l, &read(&path).unwrap()).unwrap_err().to_string();
        assert!(e.contains(&e1.name) && e.contains("NaN") && e.contains("index 2"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
