//! The data feed shared by training and evaluation: the dataset's files (downloaded and
//! checked), the seeded train / validation split, the images packed for the GPU, the pixel
//! terms of the loss, and the noise parameters of the GPU noise kernel.

#[cfg(not(target_arch = "wasm32"))]
use std::path::{Path, PathBuf};

use crate::config::{Config, LossTerm, NoiseKind, Normalize, parse_loss};
#[cfg(not(target_arch = "wasm32"))]
use crate::data::{self, DatasetSpec, IdxImages};
use crate::error::{Error, Result};
use crate::ops::data::DataParams;
use crate::ops::loss::LossKind;

pub const IMAGE_HW: usize = 28;
pub const IMAGE_LEN: usize = IMAGE_HW * IMAGE_HW;

#[cfg(not(target_arch = "wasm32"))]
pub fn spec(d: crate::config::Dataset) -> &'static DatasetSpec {
    use crate::config::Dataset;
    match d {
        Dataset::Mnist => &data::MNIST,
        Dataset::FashionMnist => &data::FASHION_MNIST,
    }
}

#[cfg(not(target_arch = "wasm32"))]
/// `--data-dir`, else `DAE_DATA_DIR`, else `data.root`.
pub fn data_dir(cfg: &Config, flag: Option<&Path>) -> PathBuf {
    if let Some(d) = flag {
        return d.to_path_buf();
    }
    match std::env::var_os("DAE_DATA_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => PathBuf::from(&cfg.data.root),
    }
}

#[cfg(not(target_arch = "wasm32"))]
/// Make sure the files are there (downloading when allowed), then read one split.
pub fn load_images(cfg: &Config, dir: &Path, train: bool, log: &mut dyn FnMut(&str)) -> Result<IdxImages> {
    Ok(load_labelled(cfg, dir, train, log)?.0)
}

#[cfg(not(target_arch = "wasm32"))]
/// [`load_images`] with the split's labels.
pub fn load_labelled(cfg: &Config, dir: &Path, train: bool, log: &mut dyn FnMut(&str)) -> Result<(IdxImages, Vec<u8>)> {
    let s = spec(cfg.data.dataset);
    if let Some(why) = crate::util::files::not_a_folder(dir) {
        return Err(crate::error::Error::Config(format!("the data folder {}: {why}", dir.display())));
    }
    if cfg.data.download {
        data::ensure_files(s, dir, s.mirrors, log)?;
    }
    let (img, lab) =
        if train { (data::download::TRAIN_IMAGES, data::download::TRAIN_LABELS) } else { (data::download::TEST_IMAGES, data::download::TEST_LABELS) };
    let missing: Vec<String> = s.files.iter().map(|(f, _)| f.to_string()).filter(|f| !dir.join(f).is_file()).collect();
    if !missing.is_empty() {
        return Err(Error::Msg(format!(
            "dataset {} not found in {}: missing {} (data.download is false; put the four files {} there, or point --data-dir / DAE_DATA_DIR at them)",
            s.name,
            dir.display(),
            missing.join(", "),
            s.files.iter().map(|(f, _)| *f).collect::<Vec<_>>().join(", ")
        )));
    }
    // MNIST and Fashion-MNIST share file names: the md5 of the two files read (tens of ms)
    // keeps a folder of the other set from loading silently.
    for f in [img, lab] {
        data::verify_file(s, dir, f)?;
    }
    let (images, labels) = data::idx::read_pair(&dir.join(img), &dir.join(lab))?;
    if images.rows != IMAGE_HW || images.cols != IMAGE_HW {
        return Err(Error::Msg(format!("{}: images are {}x{}, dae's models expect 28x28", dir.join(img).display(), images.rows, images.cols)));
    }
    Ok((images, labels))
}

/// A permutation of 0..n from `seed` (Fisher-Yates on the crate's splitmix64).
pub fn permutation(n: usize, seed: u64) -> Vec<u32> {
    crate::util::rng::Rng::new(seed).permutation(n)
}

/// (train indices, validation indices) of the training images, fixed by the seed.
pub fn split(cfg: &Config, n: usize) -> Result<(Vec<u32>, Vec<u32>)> {
    if cfg.data.val_size >= n {
        return Err(Error::Config(format!("data.val_size must be smaller than the {n} training images, got {}", cfg.data.val_size)));
    }
    let p = permutation(n, cfg.seed ^ 0x5EED_DA7A);
    let val = p[..cfg.data.val_size].to_vec();
    let mut train = p[cfg.data.val_size..].to_vec();
    if let Some(l) = cfg.data.train_limit {
        train.truncate(l);
    }
    Ok((train, val))
}

pub use crate::ops::data::pack_u8;

/// The pixel terms of `train.loss` (weight, kind); perceptual is handled by the trainer.
pub fn pixel_terms(cfg: &Config) -> Vec<(f32, LossKind)> {
    parse_loss(&cfg.train.loss)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(w, t)| match t {
            LossTerm::L2 => Some((w, LossKind::Mse)),
            LossTerm::L1 => Some((w, LossKind::L1)),
            LossTerm::Charbonnier => Some((w, LossKind::Charbonnier(1e-3))),
            LossTerm::Perceptual => None,
        })
        .collect()
}

pub fn noise_code(k: NoiseKind) -> u32 {
    match k {
        NoiseKind::Gaussian => 0,
        NoiseKind::SaltPepper => 1,
        NoiseKind::Poisson => 2,
        NoiseKind::Speckle => 3,
    }
}

/// (scale, shift) from [0, 1] pixels to the network input.
pub fn input_affine(n: Normalize) -> (f32, f32) {
    match n {
        Normalize::ZeroOne => (1.0, 0.0),
        Normalize::MinusOneOne => (2.0, -1.0),
    }
}

/// Noise parameters for `len` pixels: training draws per-sample levels from the config; `fixed`
/// (validation, evaluation) uses one level for every sample.
pub fn noise_params(cfg: &Config, len: usize, epoch: u32, step: u32, fixed: Option<f32>, level_scale: f32) -> DataParams {
    let n = &cfg.noise;
    let (sc, sh) = input_affine(cfg.data.normalize);
    let mut levels = [0f32; 16];
    let list = match fixed {
        Some(s) => vec![s],
        None => n.sigma_list(),
    };
    levels[..list.len()].copy_from_slice(&list);
    let range = if fixed.is_none() { n.train_sigma_range } else { None };
    DataParams {
        len: len as u32,
        image_len: IMAGE_LEN as u32,
        noise: noise_code(n.kind),
        seed_lo: cfg.seed as u32,
        seed_hi: (cfg.seed >> 32) as u32,
        epoch,
        step,
        n_levels: list.len() as u32,
        use_range: range.is_some() as u32,
        has_clip: n.clip_range.is_some() as u32,
        level_lo: range.map_or(0.0, |r| r[0]),
        level_hi: range.map_or(0.0, |r| r[1]),
        level_scale,
        amount: n.amount,
        peak: n.peak,
        clip_lo: n.clip_range.map_or(0.0, |c| c[0]),
        clip_hi: n.clip_range.map_or(0.0, |c| c[1]),
        in_scale: sc,
        in_shift: sh,
        levels,
        ..Default::default()
    }
}

/// Noise of `kind` at `level` (sigma; amount for salt-and-pepper; peak for poisson) for images
/// start..start + n of a set: the Philox counters are keyed by the level itself (so a level's
/// noise does not depend on which other levels are evaluated), the draw (0, or 0..N for the
/// diversity demo) and each image's index in the set. Training keys its noise by epochs below
/// 2^31; these keys have the top bit set.
pub fn level_params(cfg: &Config, kind: NoiseKind, level: f32, draw: u32, start: usize, n: usize) -> DataParams {
    let mut c = cfg.clone();
    c.noise.kind = kind;
    match kind {
        NoiseKind::SaltPepper => c.noise.amount = level,
        NoiseKind::Poisson => c.noise.peak = level,
        _ => {}
    }
    let key = 0x8000_0000 | (level.to_bits() >> 1);
    DataParams { start: start as u32, ..noise_params(&c, n * IMAGE_LEN, key, draw, Some(level), 1.0) }
}
