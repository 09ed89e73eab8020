//! Checkpoints: safetensors files readable by PyTorch's `safetensors` package, tensor names as
//! PyTorch's state_dict (so `load_state_dict(strict=True)` works), the resolved config and run
//! metadata in the header. Every file is written to `<name>.tmp` and renamed into place.
//!
//! A training checkpoint `<stem>` is three files: `<stem>.safetensors` (raw weights),
//! `<stem>.ema.safetensors` (EMA weights) and `<stem>.state.safetensors` (optimiser moments and
//! the position in the run). All three carry the same `step`; a mismatch is an error on resume.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, TensorView};

use crate::error::{Error, Result};
use crate::nn::Layout;

/// A host copy of a model's tensors in its layout's arenas.
#[derive(Clone, Debug, PartialEq)]
pub struct HostWeights {
    pub params: Vec<f32>,
    pub buffers: Vec<f32>,
    /// Batch-norm num_batches_tracked (the same for every layer).
    pub batches_tracked: i64,
}

fn err(path: &Path, msg: impl std::fmt::Display) -> Error {
    Error::Msg(format!("checkpoint {}: {msg}", path.display()))
}

/// Write tensors (name, shape, little-endian bytes, dtype) and metadata atomically.
pub fn write(path: &Path, tensors: Vec<(String, Vec<usize>, Vec<u8>, Dtype)>, meta: HashMap<String, String>) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| err(path, format!("cannot create folder: {e}")))?;
    }
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .map(|(n, s, d, t)| TensorView::new(*t, s.clone(), d).map(|v| (n.clone(), v)))
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| err(path, e))?;
    let bytes = safetensors::serialize(views, Some(meta)).map_err(|e| err(path, e))?;
    let tmp = tmp_path(path);
    let written = std::fs::File::create(&tmp).and_then(|mut f| {
        use std::io::Write;
        f.write_all(&bytes)?;
        f.sync_all()
    });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(err(path, format!("cannot write {}: {e}", tmp.display())));
    }
    std::fs::rename(&tmp, path).map_err(|e| err(path, format!("rename from {}: {e}", tmp.display())))
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".tmp");
    PathBuf::from(s)
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

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    bytemuck::cast_slice(v).to_vec()
}

/// The model's tensors under their PyTorch names.
pub fn weight_tensors(layout: &Layout, w: &HostWeights) -> Vec<(String, Vec<usize>, Vec<u8>, Dtype)> {
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

/// Flat f32 arenas (optimiser moments) under fixed names.
pub fn arena_tensors(named: &[(&str, &[f32])]) -> Vec<(String, Vec<usize>, Vec<u8>, Dtype)> {
    named.iter().map(|(n, v)| (n.to_string(), vec![v.len()], f32_bytes(v), Dtype::F32)).collect()
}

pub fn arena(file: &Loaded, name: &str, len: usize) -> Result<Vec<f32>> {
    match file.tensors.get(name) {
        Some((Dtype::F32, s, d)) if s == &[len] => Ok(bytemuck::pod_collect_to_vec(d)),
        Some((dt, s, _)) => Err(err(&file.path, format!("{name} is {dt:?}{s:?}, expected F32[{len}]"))),
        None => Err(err(&file.path, format!("missing tensor {name}"))),
    }
}

/// Metadata every checkpoint carries.
pub fn base_meta(config_yaml: &str, adapter: &str, step: u64, kind: &str) -> HashMap<String, String> {
    HashMap::from([
        ("format".to_string(), "dae-checkpoint-1".to_string()),
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
        let (_, l2) = Model::new(&ModelConfig { base_ch: 16, num_downs: 2, norm_type: crate::nn::model::NormType::Batch, ..Default::default() }).unwrap();
        let e = load_weights(&l2, &f).unwrap_err().to_string();
        assert!(e.contains("inc.double_conv.0.weight"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
