//! The limitations analysis (SPEC section 5): what a denoising autoencoder does wrong and why it
//! is not a generative model. The GPU computes the per-image statistics during a scoring pass
//! ([`Collector`] hooks into `eval::score`); the formulas below turn them into the scores, and
//! are tested on hand-made inputs with known answers.
//! - over-smoothing: `hf_ratio` = RMS 4-neighbour Laplacian of the reconstruction / of the
//!   clean image, `grad_ratio` = mean central-difference gradient magnitude, same ratio (per
//!   image, then averaged), `smoothing_score = 1 - min(hf_ratio, grad_ratio)`, and paired
//!   t-tests of the per-image values (reconstruction against clean);
//! - frequency content: `high_freq_ratio` = sum of the last quarter of the radial profile of the
//!   reconstruction's spectrum / the same for the clean image (per image, then averaged);
//! - diversity collapse: N noise draws of the same image, mean pairwise MSE of the outputs,
//!   `diversity_score = mean / sigma^2`, `collapse = 1 - min(diversity_score, 1)`;
//! - mode averaging: the L2 distance from each output at a heavy noise level to its nearest
//!   training image, against the same distance for real test images (above 1: the outputs sit
//!   between the modes of the data);
//! - `overall_limitation_score` = mean of smoothing, collapse and 1 - high_freq_ratio.

pub mod generation;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::eval::BatchHook;
use crate::gpu::{Ctx, View, block_on};
use crate::ops::analysis::image_stats;
use crate::ops::fft::Fft2d;

/// GPU buffers filled during a scoring pass: per-image Laplacian / gradient statistics and
/// radial spectrum profiles of the clean images (once) and of the reconstructions (per level),
/// and the mean log-magnitude spectra.
pub struct Collector {
    plan: Fft2d,
    n: usize,
    clean_stats: View,
    clean_prof: View,
    clean_log: View,
    levels: Vec<(View, View, View)>,
    started: Vec<bool>,
}

/// What a [`Collector`] gathered, read back.
pub struct Collected {
    pub bins: usize,
    pub clean_stats: Vec<[f32; 2]>,
    pub clean_prof: Vec<f32>,
    pub clean_log: Vec<f32>,
    /// Per level: (stats, profiles [n, bins], mean log spectrum).
    pub levels: Vec<(Vec<[f32; 2]>, Vec<f32>, Vec<f32>)>,
}

impl Collector {
    pub fn new(ctx: &Ctx, n: usize, levels: usize, hw: usize) -> Result<Collector> {
        let plan = Fft2d::new(ctx, hw, hw)?;
        let bins = plan.bins();
        let mut lv = Vec::new();
        for _ in 0..levels {
            lv.push((ctx.alloc("analysis", 2 * n)?, ctx.alloc("analysis", n * bins)?, ctx.alloc("analysis", hw * hw)?));
        }
        Ok(Collector {
            n,
            clean_stats: ctx.alloc("analysis", 2 * n)?,
            clean_prof: ctx.alloc("analysis", n * bins)?,
            clean_log: ctx.alloc("analysis", hw * hw)?,
            levels: lv,
            started: vec![false; levels + 1],
            plan,
        })
    }

    /// Statistics, profile and log spectrum of images x [nb, hw, hw] at offset `start`.
    fn one(&mut self, ctx: &Ctx, which: usize, x: &View, start: usize, nb: usize) -> Result<()> {
        let hw = self.plan.h;
        let (stats, prof, log) = if which == 0 {
            (&self.clean_stats, &self.clean_prof, &self.clean_log)
        } else {
            (&self.levels[which - 1].0, &self.levels[which - 1].1, &self.levels[which - 1].2)
        };
        image_stats(ctx, x, [nb, hw, hw], stats, start)?;
        let spec = ctx.alloc("fft", 2 * nb * hw * hw)?;
        self.plan.forward(ctx, x, nb, &spec)?;
        let mag = ctx.alloc("fft", nb * hw * hw)?;
        self.plan.magnitude(ctx, &spec, nb, &mag)?;
        self.plan.radial(ctx, &mag, nb, prof, start)?;
        self.plan.mean_log(ctx, &mag, nb, 1.0 / self.n as f32, log, self.started[which])?;
        self.started[which] = true;
        Ok(())
    }

    pub fn finish(self, ctx: &Ctx) -> Result<Collected> {
        let pairs = |v: Vec<f32>| v.chunks(2).map(|c| [c[0], c[1]]).collect::<Vec<_>>();
        let mut levels = Vec::new();
        for (s, p, l) in &self.levels {
            levels.push((pairs(block_on(ctx.read(s))?), block_on(ctx.read(p))?, block_on(ctx.read(l))?));
        }
        Ok(Collected {
            bins: self.plan.bins(),
            clean_stats: pairs(block_on(ctx.read(&self.clean_stats))?),
            clean_prof: block_on(ctx.read(&self.clean_prof))?,
            clean_log: block_on(ctx.read(&self.clean_log))?,
            levels,
        })
    }
}

impl BatchHook for Collector {
    fn batch(
        &mut self,
        ctx: &Ctx,
        level_index: usize,
        _level: f32,
        start: usize,
        nb: usize,
        clean: &View,
        recon: &View,
        _input: &View,
    ) -> Result<()> {
        if level_index == 0 {
            self.one(ctx, 0, clean, start, nb)?;
        }
        self.one(ctx, level_index + 1, recon, start, nb)
    }
}

/// Over-smoothing at one level.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Smoothing {
    pub sigma: f32,
    pub hf_ratio: f64,
    pub grad_ratio: f64,
    pub smoothing_score: f64,
    /// Mean per-image RMS Laplacian of the reconstructions and of the clean images.
    pub recon_hf: f64,
    pub clean_hf: f64,
    pub recon_grad: f64,
    pub clean_grad: f64,
    /// Paired t-tests of the per-image values (reconstruction against clean).
    pub hf_t: f64,
    pub hf_p: f64,
    pub grad_t: f64,
    pub grad_p: f64,
    /// Images used (a blank clean image has no edges to compare and is left out).
    pub images: usize,
}

/// Over-smoothing from per-image (RMS Laplacian, mean gradient) of reconstructions and clean.
pub fn smoothing(sigma: f32, recon: &[[f32; 2]], clean: &[[f32; 2]]) -> Smoothing {
    let keep: Vec<usize> = (0..clean.len()).filter(|&i| clean[i][0] > 0.0 && clean[i][1] > 0.0).collect();
    let col = |v: &[[f32; 2]], k: usize| keep.iter().map(|&i| v[i][k] as f64).collect::<Vec<f64>>();
    let (rh, ch, rg, cg) = (col(recon, 0), col(clean, 0), col(recon, 1), col(clean, 1));
    let ratio = |a: &[f64], b: &[f64]| crate::metrics::mean_std(&a.iter().zip(b).map(|(x, y)| x / y).collect::<Vec<_>>()).0;
    let (hf_ratio, grad_ratio) = (ratio(&rh, &ch), ratio(&rg, &cg));
    let (hf_t, hf_p) = crate::metrics::paired_t_test(&rh, &ch);
    let (grad_t, grad_p) = crate::metrics::paired_t_test(&rg, &cg);
    let m = |v: &[f64]| crate::metrics::mean_std(v).0;
    Smoothing {
        sigma,
        hf_ratio,
        grad_ratio,
        smoothing_score: 1.0 - hf_ratio.min(grad_ratio),
        recon_hf: m(&rh),
        clean_hf: m(&ch),
        recon_grad: m(&rg),
        clean_grad: m(&cg),
        hf_t,
        hf_p,
        grad_t,
        grad_p,
        images: keep.len(),
    }
}

/// The bins of the last quarter of a radial profile of `bins` bins (at least the last one).
pub fn last_quarter(bins: usize) -> std::ops::Range<usize> {
    bins - (bins / 4).max(1)..bins
}

/// Per image: high-frequency energy of the reconstruction's profile over the clean one's,
/// averaged over the images whose clean profile has any (profiles [n, bins]).
pub fn high_freq_ratio(recon_prof: &[f32], clean_prof: &[f32], bins: usize) -> f64 {
    let q = last_quarter(bins);
    let ratios: Vec<f64> = recon_prof
        .chunks(bins)
        .zip(clean_prof.chunks(bins))
        .filter_map(|(r, c)| {
            let (a, b) = (r[q.clone()].iter().map(|&v| v as f64).sum::<f64>(), c[q.clone()].iter().map(|&v| v as f64).sum::<f64>());
            (b > 0.0).then(|| a / b)
        })
        .collect();
    crate::metrics::mean_std(&ratios).0
}

/// Diversity collapse of one clean image's `draws` outputs (each `len` pixels).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Diversity {
    pub sigma: f32,
    pub images: usize,
    pub draws: usize,
    pub mean_pairwise_mse: f64,
    /// The noisy inputs' own mean pairwise MSE (about 2 sigma^2 without clipping).
    pub input_pairwise_mse: f64,
    pub diversity_score: f64,
    pub collapse: f64,
}

/// Mean pairwise MSE over all pairs of `outputs` (draws of one image, `len` pixels each).
pub fn mean_pairwise_mse(outputs: &[f32], draws: usize, len: usize) -> f64 {
    let mut s = 0.0;
    let mut n = 0usize;
    for a in 0..draws {
        for b in a + 1..draws {
            let (x, y) = (&outputs[a * len..(a + 1) * len], &outputs[b * len..(b + 1) * len]);
            s += x.iter().zip(y).map(|(p, q)| (*p as f64 - *q as f64).powi(2)).sum::<f64>() / len as f64;
            n += 1;
        }
    }
    if n == 0 { 0.0 } else { s / n as f64 }
}

/// From the per-image mean pairwise MSEs of outputs and of inputs.
pub fn diversity(sigma: f32, draws: usize, outputs_mse: &[f64], inputs_mse: &[f64]) -> Diversity {
    let m = crate::metrics::mean_std(outputs_mse).0;
    let score = m / (sigma as f64 * sigma as f64);
    Diversity {
        sigma,
        images: outputs_mse.len(),
        draws,
        mean_pairwise_mse: m,
        input_pairwise_mse: crate::metrics::mean_std(inputs_mse).0,
        diversity_score: score,
        collapse: 1.0 - score.min(1.0),
    }
}

/// Mode averaging at one noise level.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ModeAveraging {
    pub sigma: f32,
    pub images: usize,
    pub train_images: usize,
    /// Mean L2 distance from each output (and from each real test image) to its nearest
    /// training image.
    pub output_nn_distance: f64,
    pub real_nn_distance: f64,
    pub ratio: f64,
}

pub fn mode_averaging(sigma: f32, train_images: usize, out_dist: &[f32], real_dist: &[f32]) -> ModeAveraging {
    let m = |v: &[f32]| crate::metrics::mean_std(&v.iter().map(|&x| x as f64).collect::<Vec<_>>()).0;
    let (o, r) = (m(out_dist), m(real_dist));
    ModeAveraging { sigma, images: out_dist.len(), train_images, output_nn_distance: o, real_nn_distance: r, ratio: o / r }
}

/// The noisy input's figures at one level, beside the model's (the baseline of the report).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Baseline {
    pub sigma: f32,
    pub psnr: f64,
    pub noisy_psnr: f64,
    pub ssim: f64,
    pub noisy_ssim: f64,
}

/// outputs/reports/limitations_analysis.json.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Limitations {
    pub checkpoint: String,
    pub weights: String,
    pub dataset: String,
    pub noise: String,
    pub n_images: usize,
    pub smoothing: Vec<Smoothing>,
    /// Means over the levels.
    pub smoothing_score: f64,
    pub frequency: Vec<(f32, f64)>,
    pub high_freq_ratio: f64,
    pub diversity: Diversity,
    pub mode_averaging: ModeAveraging,
    pub overall_limitation_score: f64,
    pub baseline: Vec<Baseline>,
}

/// SPEC's overall score: the mean of smoothing, collapse and 1 - high_freq_ratio.
pub fn overall(smoothing_score: f64, collapse: f64, high_freq_ratio: f64) -> f64 {
    (smoothing_score + collapse + (1.0 - high_freq_ratio)) / 3.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::analysis::image_stats as stats;

    fn blur(x: &[f64], h: usize, w: usize) -> Vec<f64> {
        let mut y = x.to_vec();
        for r in 1..h - 1 {
            for c in 1..w - 1 {
                y[r * w + c] = (x[r * w + c] * 4.0 + x[(r - 1) * w + c] + x[(r + 1) * w + c] + x[r * w + c - 1] + x[r * w + c + 1]) / 8.0;
            }
        }
        y
    }

    /// A blurred image scores more smoothing than a sharp one; the clean image itself scores 0.
    #[test]
    fn blur_scores_more_smoothing_than_sharp() {
        let (h, w) = (28, 28);
        let sharp: Vec<f64> = (0..h * w).map(|i| if (i / w) % 6 < 3 && (i % w) % 5 < 2 { 1.0 } else { 0.0 }).collect();
        let soft = blur(&sharp, h, w);
        let softer = blur(&soft, h, w);
        let st = |x: &[f64]| {
            let (a, b) = stats(x, h, w);
            [a as f32, b as f32]
        };
        let clean = vec![st(&sharp); 4];
        let s0 = smoothing(0.3, &clean, &clean);
        let s1 = smoothing(0.3, &[st(&soft); 4], &clean);
        let s2 = smoothing(0.3, &[st(&softer); 4], &clean);
        assert!(s0.smoothing_score.abs() < 1e-9, "{s0:?}");
        assert!(s1.smoothing_score > 0.1 && s2.smoothing_score > s1.smoothing_score, "{s1:?} {s2:?}");
        assert!(s1.hf_ratio < 1.0 && s1.grad_ratio < 1.0);
    }

    /// Identical outputs give collapse 1; outputs as spread as the noise give collapse 0.
    #[test]
    fn identical_outputs_collapse_fully() {
        let len = 16;
        let same: Vec<f32> = (0..4).flat_map(|_| (0..len).map(|i| i as f32 / 16.0)).collect();
        assert_eq!(mean_pairwise_mse(&same, 4, len), 0.0);
        let d = diversity(0.5, 4, &[0.0, 0.0], &[0.5, 0.5]);
        assert_eq!(d.collapse, 1.0);
        let d = diversity(0.5, 4, &[0.3, 0.3], &[0.5, 0.5]);
        assert_eq!(d.collapse, 0.0);
        // Two outputs one constant 0.5 apart: MSE 0.25.
        let two: Vec<f32> = [vec![0.0; len], vec![0.5; len]].concat();
        assert!((mean_pairwise_mse(&two, 2, len) - 0.25).abs() < 1e-12);
    }

    /// An all-pass model (output = clean) keeps every frequency: ratio 1; a low-pass one less.
    #[test]
    fn all_pass_keeps_high_frequencies() {
        let prof: Vec<f32> = (0..3).flat_map(|k| (0..20).map(move |b| 1.0 / (1.0 + b as f32 + k as f32))).collect();
        assert!((high_freq_ratio(&prof, &prof, 20) - 1.0).abs() < 1e-12);
        let low: Vec<f32> = prof.iter().enumerate().map(|(i, v)| if i % 20 >= 15 { v * 0.5 } else { *v }).collect();
        assert!((high_freq_ratio(&low, &prof, 20) - 0.5).abs() < 1e-6);
        assert_eq!(last_quarter(20), 15..20);
        assert_eq!(last_quarter(1), 0..1);
        assert!((overall(0.0, 0.0, 1.0)).abs() < 1e-12);
    }

    #[test]
    fn mode_ratio() {
        let m = mode_averaging(1.0, 100, &[2.0, 4.0], &[1.0, 2.0]);
        assert!((m.ratio - 2.0).abs() < 1e-12);
    }
}
