//! Scoring a model on a set of images (the validation split during training, the test set in
//! `dae eval`): for each batch and each noise level, the noisy input made on the GPU (keyed by
//! each image's index in the set, so results do not depend on the batch size), the model's
//! forward in eval mode, and the per-image metric kernels writing into slots that stay on the
//! GPU for the whole pass; the host reads them back once at the end.

use crate::config::{Config, NoiseKind};
use crate::error::Result;
use crate::feed::{IMAGE_HW, IMAGE_LEN, input_affine, noise_params, pixel_terms};
use crate::gpu::{Ctx, View};
use crate::nn::model::Fwd;
use crate::nn::{Model, Weights};
use crate::ops::data::{DataParams, data_gather, data_noise};
use crate::ops::loss::LossKind;
use crate::ops::metrics::{STAT_CHARBONNIER, STAT_MAE, STAT_MSE, STAT_PSNR, Slots, image_metrics};
use crate::tensor::Tensor;
use crate::util::signal;

/// One row of val_metrics.csv: means over the images of one level.
#[derive(Clone, Debug)]
pub struct ValRow {
    pub sigma: f32,
    pub loss: f64,
    pub psnr: f64,
    pub ssim: f64,
    pub psnr_noisy: f64,
    pub ssim_noisy: f64,
}

/// The noise levels evaluation runs at by default: the test sigmas for gaussian and speckle
/// noise; the fixed `amount` (salt-and-pepper) or `peak` (poisson), which have no sigma.
pub fn eval_levels(cfg: &Config) -> Vec<f32> {
    match cfg.noise.kind {
        NoiseKind::Gaussian | NoiseKind::Speckle => cfg.noise.test_sigmas.clone(),
        NoiseKind::SaltPepper => vec![cfg.noise.amount],
        NoiseKind::Poisson => vec![cfg.noise.peak],
    }
}

/// Noise of `kind` at `level` (sigma; amount for salt-and-pepper; peak for poisson) for images
/// start..start + n of a set: the Philox counters are keyed by the level's index `stream` and
/// each image's index in the set.
pub fn level_params(cfg: &Config, kind: NoiseKind, level: f32, stream: u32, start: usize, n: usize) -> DataParams {
    let mut c = cfg.clone();
    c.noise.kind = kind;
    match kind {
        NoiseKind::SaltPepper => c.noise.amount = level,
        NoiseKind::Poisson => c.noise.peak = level,
        _ => {}
    }
    DataParams { start: start as u32, ..noise_params(&c, n * IMAGE_LEN, u32::MAX - stream, 0, Some(level), 1.0) }
}

/// Images of a set: the packed dataset on the GPU and a list of `n` indices into it.
pub struct EvalSet<'a> {
    pub dataset: &'a View,
    pub idx: &'a View,
    pub n: usize,
}

/// Per-image results of one level: [MSE, PSNR, MAE, Charbonnier] and SSIM, for the model's
/// reconstruction and for the noisy input itself.
pub struct LevelScores {
    pub level: f32,
    pub recon: (Vec<[f32; 4]>, Vec<f32>),
    pub noisy: (Vec<[f32; 4]>, Vec<f32>),
}

/// The forward of `model` (eval mode) on the noisy images of `clean` [nb, 1, 28, 28]: returns
/// (network input, reconstruction).
fn denoise(ctx: &Ctx, cfg: &Config, model: &Model, w: &Weights, clean: &View, dp: &DataParams, nb: usize) -> Result<(View, Tensor)> {
    ctx.no_grad(|| {
        let input = ctx.alloc("eval batch", nb * IMAGE_LEN)?;
        data_noise(ctx, dp, clean, &input)?;
        let x = Tensor::wrap(ctx, vec![nb, 1, IMAGE_HW, IMAGE_HW], input.clone(), false);
        let recon = model.forward(&Fwd::gpu(w, false, cfg.seed, 0), &x)?;
        Ok((input, recon))
    })
}

/// Score `model` on `set` at each of `levels` of noise `kind`, `batch` images at a time;
/// `progress(images done)` after each batch. `None` when interrupted (Ctrl-C / SIGTERM).
#[allow(clippy::too_many_arguments)]
pub fn score(ctx: &Ctx, cfg: &Config, kind: NoiseKind, model: &Model, w: &Weights, set: &EvalSet, levels: &[f32], batch: usize, progress: &mut dyn FnMut(usize)) -> Result<Option<Vec<LevelScores>>> {
    let b = batch.min(set.n).max(1);
    let (sc, sh) = input_affine(cfg.data.normalize);
    let shape = |nb: usize| [nb, 1, IMAGE_HW, IMAGE_HW];
    let mut slots = Vec::new();
    for _ in levels {
        slots.push((Slots::new(ctx, set.n)?, Slots::new(ctx, set.n)?));
    }
    let mut start = 0;
    while start < set.n {
        if signal::interrupted().is_some() {
            return Ok(None);
        }
        let nb = b.min(set.n - start);
        let clean = ctx.alloc("eval batch", nb * IMAGE_LEN)?;
        data_gather(ctx, set.dataset, set.idx, start, nb, IMAGE_LEN, &clean)?;
        for (li, &level) in levels.iter().enumerate() {
            let dp = level_params(cfg, kind, level, li as u32, start, nb);
            let (input, recon) = denoise(ctx, cfg, model, w, &clean, &dp, nb)?;
            image_metrics(ctx, recon.view(), &clean, shape(nb), (1.0, 0.0), &slots[li].0, start)?;
            // The noisy input scored in [0, 1]: the network input mapped back.
            image_metrics(ctx, &input, &clean, shape(nb), (1.0 / sc, -sh / sc), &slots[li].1, start)?;
        }
        ctx.flush()?;
        start += nb;
        progress(start);
    }
    let mut out = Vec::new();
    for (&level, (r, n)) in levels.iter().zip(&slots) {
        out.push(LevelScores { level, recon: r.read(ctx)?, noisy: n.read(ctx)? });
    }
    Ok(Some(out))
}

/// Clean, noisy (in [0, 1]) and reconstructed pixels of images start..start + nb of `set` at
/// one level (its stream index `stream`), read back for figures.
#[allow(clippy::too_many_arguments)]
pub fn images_at(ctx: &Ctx, cfg: &Config, kind: NoiseKind, model: &Model, w: &Weights, set: &EvalSet, start: usize, nb: usize, level: f32, stream: u32) -> Result<[Vec<f32>; 3]> {
    let (sc, sh) = input_affine(cfg.data.normalize);
    let clean = ctx.alloc("eval batch", nb * IMAGE_LEN)?;
    data_gather(ctx, set.dataset, set.idx, start, nb, IMAGE_LEN, &clean)?;
    let dp = level_params(cfg, kind, level, stream, start, nb);
    let (input, recon) = denoise(ctx, cfg, model, w, &clean, &dp, nb)?;
    let noisy = ctx.read(&input)?.iter().map(|v| (v - sh) / sc).collect();
    Ok([ctx.read(&clean)?, noisy, recon.to_vec()?])
}

/// Mean of `f` over the images.
pub fn mean(v: impl Iterator<Item = f64>) -> f64 {
    let (s, n) = v.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    if n == 0 { f64::NAN } else { s / n as f64 }
}

/// val_metrics.csv rows from the scores: the pixel terms of `train.loss` per image, PSNR and
/// SSIM, each averaged over images.
pub fn val_rows(cfg: &Config, scores: &[LevelScores]) -> Vec<ValRow> {
    let terms = pixel_terms(cfg);
    let loss = |s: &[f32; 4]| -> f64 {
        terms
            .iter()
            .map(|(w, k)| {
                *w as f64
                    * match k {
                        LossKind::Mse => s[STAT_MSE],
                        LossKind::L1 => s[STAT_MAE],
                        LossKind::Charbonnier(_) => s[STAT_CHARBONNIER],
                    } as f64
            })
            .sum()
    };
    scores
        .iter()
        .map(|l| ValRow {
            sigma: l.level,
            loss: mean(l.recon.0.iter().map(loss)),
            psnr: mean(l.recon.0.iter().map(|s| s[STAT_PSNR] as f64)),
            ssim: mean(l.recon.1.iter().map(|&v| v as f64)),
            psnr_noisy: mean(l.noisy.0.iter().map(|s| s[STAT_PSNR] as f64)),
            ssim_noisy: mean(l.noisy.1.iter().map(|&v| v as f64)),
        })
        .collect()
}
