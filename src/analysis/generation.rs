//! Generation from noise with a denoiser, measured. A denoiser D trained with Gaussian noise of
//! level sigma estimates the score of the noisy data, (D(x) - x) / sigma^2 (Tweedie; Vincent
//! 2011), so two samplers are tried from noise:
//! - annealed Langevin dynamics over a decreasing schedule of sigmas:
//!   `y = clip(x)`, `x <- y + a (D(y) - y) + sqrt(2 a) sigma z`, `steps` updates per level (a is
//!   NCSN's step eps = a sigma^2 in score units), then one last denoising, `D(clip(x))`;
//! - plainly iterated denoising: `x <- D(clip(x + sigma z))` over the same schedule.
//!
//! Both start from `clip(0.5 + sigma_max z)` (grey plus the schedule's largest noise, clipped to
//! the input range). dae's D has no sigma input and was trained on clipped inputs, so Tweedie is
//! a heuristic here: the schedule stays inside the training sigmas and x is clipped to the input
//! range before each call of D. The noise is Philox keyed by (seed, method, step, chain): a run
//! repeats.
//!
//! A sample counts as "digit-like" only if each of four features lies inside the window that
//! the test set's own images span (its q .. 1 - q quantiles, `eval.generation.window_quantile`):
//! the L2 distance to the nearest training image (alone it passes blanks and blurs: a blank
//! image sits closer to the training set than most test digits do), the class margin (how much
//! farther the nearest training image of the second-closest class is: a blend of strokes sits
//! between classes), the ink mass (mean pixel), the contrast (pixel standard deviation) and the
//! edge sharpness (mean gradient magnitude, which a blurred digit lacks). The formulas are host functions tested on hand-made inputs; the GPU gives the
//! nearest distances and the gradient statistics.

use serde::{Deserialize, Serialize};

use crate::autograd::Graph;
use crate::config::{Config, NoiseKind};
use crate::error::{Error, Result};
use crate::feed::{IMAGE_HW, IMAGE_LEN, input_affine, noise_params};
use crate::gpu::{Ctx, View, block_on};
use crate::nn::model::Fwd;
use crate::nn::{Model, Weights};
use crate::ops::data::{DataParams, data_noise};
use crate::ops::elementwise::{add, fill, scale};
use crate::tensor::Tensor;

/// The two samplers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    Langevin,
    Iterated,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Langevin => "annealed Langevin (Tweedie score)",
            Method::Iterated => "iterated denoising",
        }
    }

    fn tag(self) -> u32 {
        match self {
            Method::Langevin => 1,
            Method::Iterated => 2,
        }
    }
}

/// `levels` sigmas from `hi` down to `lo`, geometric (linear when `lo` is 0); one level is `hi`.
pub fn schedule(lo: f32, hi: f32, levels: usize) -> Vec<f32> {
    if levels <= 1 {
        return vec![hi];
    }
    (0..levels)
        .map(|i| {
            let t = i as f64 / (levels - 1) as f64;
            let (lo, hi) = (lo as f64, hi as f64);
            (if lo > 0.0 { hi * (lo / hi).powf(t) } else { hi + t * (lo - hi) }) as f32
        })
        .collect()
}

/// The noise keys of generation: `epoch` words with the top four bits set (training keys its
/// noise by epochs below 2^31, evaluation by 0x8000_0000 | level bits / 2, below 0xC000_0000).
pub fn key(method: Method, phase: u32) -> u32 {
    0xF000_0000 | (method.tag() << 8) | phase
}

/// The clip range of the sampler: the noise's `clip_range`, or [0, 1] when it is null.
pub fn clip_range(cfg: &Config) -> (f32, f32) {
    cfg.noise.clip_range.map_or((0.0, 1.0), |c| (c[0], c[1]))
}

/// Gaussian noise of level `sigma` keyed by (`epoch`, `step`), with an optional clip and an
/// affine map after it, for `n` images: the noise kernel's parameters.
fn gauss(cfg: &Config, n: usize, epoch: u32, step: u32, sigma: f32, clip: Option<(f32, f32)>, affine: (f32, f32)) -> DataParams {
    let mut c = cfg.clone();
    c.noise.kind = NoiseKind::Gaussian;
    c.noise.clip_range = clip.map(|(a, b)| [a, b]);
    let mut p = noise_params(&c, n * IMAGE_LEN, epoch, step, Some(sigma), 1.0);
    p.in_scale = affine.0;
    p.in_shift = affine.1;
    p
}

fn noise_into(ctx: &Ctx, p: &DataParams, x: &View) -> Result<View> {
    let out = ctx.alloc("generation", x.len())?;
    data_noise(ctx, p, x, &out)?;
    Ok(out)
}

fn images(ctx: &Ctx, n: usize, v: View) -> Tensor {
    Tensor::wrap(ctx, vec![n, 1, IMAGE_HW, IMAGE_HW], v)
}

/// D(clip(x)) for n images x (pixel space): the network input is the clipped x mapped by the
/// config's normalisation.
pub fn denoise_clipped(ctx: &Ctx, cfg: &Config, model: &Model, w: &Weights, x: &View, n: usize) -> Result<Tensor> {
    let input = noise_into(ctx, &gauss(cfg, n, 0, 0, 0.0, Some(clip_range(cfg)), input_affine(cfg.data.normalize)), x)?;
    model.forward(&mut Graph::inference(ctx), &Fwd::gpu(w, false, cfg.seed, 0), &images(ctx, n, input))
}

/// The start of every chain: clip(0.5 + sigma z), keyed by (method, chain).
pub fn start(ctx: &Ctx, cfg: &Config, method: Method, n: usize, sigma: f32) -> Result<View> {
    let grey = ctx.alloc("generation", n * IMAGE_LEN)?;
    fill(ctx, &grey, 0.5)?;
    noise_into(ctx, &gauss(cfg, n, key(method, 0), 0, sigma, Some(clip_range(cfg)), (1.0, 0.0)), &grey)
}

/// One Langevin update of n chains x at level `sigma`, step `step` of the run:
/// y = clip(x), x' = y + a (D(y) - y) + sqrt(2 a) sigma z.
#[allow(clippy::too_many_arguments)]
pub fn langevin_step(ctx: &Ctx, cfg: &Config, model: &Model, w: &Weights, x: &View, n: usize, sigma: f32, a: f32, step: u32) -> Result<View> {
    let y = noise_into(ctx, &gauss(cfg, n, 0, 0, 0.0, Some(clip_range(cfg)), (1.0, 0.0)), x)?;
    let d = denoise_clipped(ctx, cfg, model, w, &y, n)?;
    let mix = add(&scale(&images(ctx, n, y), 1.0 - a)?, &scale(&d, a)?)?;
    noise_into(ctx, &gauss(cfg, n, key(Method::Langevin, 1), step, (2.0 * a).sqrt() * sigma, None, (1.0, 0.0)), mix.view())
}

/// One step of iterated denoising: x' = D(clip(x + sigma z)).
#[allow(clippy::too_many_arguments)]
pub fn denoise_step(ctx: &Ctx, cfg: &Config, model: &Model, w: &Weights, x: &View, n: usize, sigma: f32, step: u32) -> Result<View> {
    let input = noise_into(ctx, &gauss(cfg, n, key(Method::Iterated, 1), step, sigma, Some(clip_range(cfg)), input_affine(cfg.data.normalize)), x)?;
    Ok(model.forward(&mut Graph::inference(ctx), &Fwd::gpu(w, false, cfg.seed, 0), &images(ctx, n, input))?.view().clone())
}

/// A sampler's run: the chains' states at each snapshot (the start, after each level, the
/// final sample; pixels in [0, 1] for display) and the final samples.
pub struct Run {
    pub method: Method,
    /// (label, n images) per snapshot column.
    pub snapshots: Vec<(String, Vec<f32>)>,
    pub start: Vec<f32>,
    pub finals: Vec<f32>,
}

/// Run `method` on n chains over `sigmas`, `steps` updates per level, Langevin step `a`.
#[allow(clippy::too_many_arguments)]
pub fn run(ctx: &Ctx, cfg: &Config, model: &Model, w: &Weights, method: Method, n: usize, sigmas: &[f32], steps: usize, a: f32) -> Result<Run> {
    let (lo, hi) = clip_range(cfg);
    let shown = |v: Vec<f32>| v.into_iter().map(|p| p.clamp(lo, hi)).collect::<Vec<f32>>();
    let mut x = start(ctx, cfg, method, n, sigmas.first().copied().unwrap_or(0.0))?;
    let start = block_on(ctx.read(&x))?;
    let mut snapshots = vec![("start".to_string(), start.clone())];
    let mut t = 0u32;
    for &s in sigmas {
        for _ in 0..steps {
            if crate::util::signal::interrupted().is_some() {
                return Err(Error::Msg("interrupted".into()));
            }
            x = match method {
                Method::Langevin => langevin_step(ctx, cfg, model, w, &x, n, s, a, t)?,
                Method::Iterated => denoise_step(ctx, cfg, model, w, &x, n, s, t)?,
            };
            t += 1;
            ctx.flush()?;
        }
        snapshots.push((format!("sigma {s:.3}"), shown(block_on(ctx.read(&x))?)));
    }
    let finals = match method {
        Method::Langevin => block_on(denoise_clipped(ctx, cfg, model, w, &x, n)?.to_vec())?,
        Method::Iterated => block_on(ctx.read(&x))?,
    };
    snapshots.push(("final".to_string(), finals.clone()));
    Ok(Run { method, snapshots, start, finals })
}

// ---- measuring samples ---------------------------------------------------------------------

/// One image's features.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Features {
    /// L2 distance to the nearest training image.
    pub nn: f64,
    /// How much farther the nearest training image of the second-closest class is (a digit
    /// sits near one class; a blend of strokes sits between classes).
    pub margin: f64,
    /// Mean pixel value (ink mass per pixel).
    pub ink: f64,
    /// Pixel standard deviation.
    pub contrast: f64,
    /// Mean central-difference gradient magnitude over the interior.
    pub sharpness: f64,
}

/// (mean, standard deviation) of an image's pixels.
pub fn ink_contrast(img: &[f32]) -> (f64, f64) {
    let n = img.len().max(1) as f64;
    let m = img.iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = img.iter().map(|&v| (v as f64 - m).powi(2)).sum::<f64>() / n;
    (m, var.sqrt())
}

/// The `q` quantile of `v` (linear between order statistics, numpy's default).
pub fn quantile(v: &[f64], q: f64) -> f64 {
    let mut s: Vec<f64> = v.iter().cloned().filter(|x| x.is_finite()).collect();
    if s.is_empty() {
        return f64::NAN;
    }
    s.sort_by(|a, b| a.total_cmp(b));
    let pos = q.clamp(0.0, 1.0) * (s.len() - 1) as f64;
    let (i, f) = (pos.floor() as usize, pos - pos.floor());
    if i + 1 < s.len() { s[i] + f * (s[i + 1] - s[i]) } else { s[i] }
}

/// The window [lo, hi] a feature of real images spans.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Window {
    pub lo: f64,
    pub hi: f64,
}

impl Window {
    /// The q .. 1 - q quantiles of v.
    pub fn of(v: &[f64], q: f64) -> Window {
        Window { lo: quantile(v, q), hi: quantile(v, 1.0 - q) }
    }

    pub fn holds(&self, x: f64) -> bool {
        x >= self.lo && x <= self.hi
    }
}

/// The four windows of the reference images.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Windows {
    pub nn: Window,
    pub margin: Window,
    pub ink: Window,
    pub contrast: Window,
    pub sharpness: Window,
}

impl Windows {
    pub fn of(f: &[Features], q: f64) -> Windows {
        let col = |g: fn(&Features) -> f64| f.iter().map(g).collect::<Vec<f64>>();
        Windows {
            nn: Window::of(&col(|x| x.nn), q),
            margin: Window::of(&col(|x| x.margin), q),
            ink: Window::of(&col(|x| x.ink), q),
            contrast: Window::of(&col(|x| x.contrast), q),
            sharpness: Window::of(&col(|x| x.sharpness), q),
        }
    }

    /// Which of the five tests (nearest distance, class margin, ink, contrast, sharpness) an
    /// image passes.
    pub fn passes(&self, f: &Features) -> [bool; 5] {
        [self.nn.holds(f.nn), self.margin.holds(f.margin), self.ink.holds(f.ink), self.contrast.holds(f.contrast), self.sharpness.holds(f.sharpness)]
    }

    pub fn digit_like(&self, f: &Features) -> bool {
        self.passes(f).iter().all(|&b| b)
    }
}

/// Mean L2 distance over all pairs of `n` images of `len` pixels (0 for fewer than 2).
pub fn mean_pairwise_l2(imgs: &[f32], n: usize, len: usize) -> f64 {
    let (mut s, mut k) = (0.0, 0usize);
    for a in 0..n {
        for b in a + 1..n {
            let (x, y) = (&imgs[a * len..(a + 1) * len], &imgs[b * len..(b + 1) * len]);
            s += x.iter().zip(y).map(|(p, q)| (*p as f64 - *q as f64).powi(2)).sum::<f64>().sqrt();
            k += 1;
        }
    }
    if k == 0 { 0.0 } else { s / k as f64 }
}

/// The measures of one set of images (a sampler's final samples or a baseline).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SetScore {
    pub name: String,
    pub images: usize,
    /// Mean L2 distance to the nearest training image.
    pub mean_nn: f64,
    /// Mean class margin.
    pub mean_margin: f64,
    /// Mean L2 distance between two of the set's images (0: all the same).
    pub mean_pairwise: f64,
    /// Fraction inside all four windows.
    pub digit_like: f64,
    /// Fraction inside each window: nearest distance, ink, contrast, sharpness.
    pub pass_nn: f64,
    pub pass_margin: f64,
    pub pass_ink: f64,
    pub pass_contrast: f64,
    pub pass_sharpness: f64,
}

/// Score a set from its images (for the pairwise distance) and features.
pub fn score_set(name: &str, imgs: &[f32], feats: &[Features], w: &Windows) -> SetScore {
    let n = feats.len();
    let frac = |k: Option<usize>| {
        if n == 0 {
            return f64::NAN;
        }
        feats
            .iter()
            .filter(|f| {
                let p = w.passes(f);
                match k {
                    Some(k) => p[k],
                    None => p.iter().all(|&b| b),
                }
            })
            .count() as f64
            / n as f64
    };
    let mean = |g: fn(&Features) -> f64| crate::eval::mean(feats.iter().map(g));
    SetScore {
        name: name.to_string(),
        images: n,
        mean_nn: mean(|f| f.nn),
        mean_margin: mean(|f| f.margin),
        mean_pairwise: mean_pairwise_l2(imgs, n, imgs.len() / n.max(1)),
        digit_like: frac(None),
        pass_nn: frac(Some(0)),
        pass_margin: frac(Some(1)),
        pass_ink: frac(Some(2)),
        pass_contrast: frac(Some(3)),
        pass_sharpness: frac(Some(4)),
    }
}

/// A Gaussian blur (standard deviation `s` pixels, radius 3 s, zero outside) of hw x hw images.
pub fn blur(imgs: &[f32], hw: usize, s: f64) -> Vec<f32> {
    let r = (3.0 * s).ceil() as isize;
    let k: Vec<f64> = (-r..=r).map(|i| (-(i * i) as f64 / (2.0 * s * s)).exp()).collect();
    let ks: f64 = k.iter().sum();
    let pass = |src: &[f64], horizontal: bool| -> Vec<f64> {
        let mut out = vec![0.0; src.len()];
        for (img, o) in src.chunks(hw * hw).zip(out.chunks_mut(hw * hw)) {
            for y in 0..hw as isize {
                for x in 0..hw as isize {
                    let mut acc = 0.0;
                    for (j, kv) in k.iter().enumerate() {
                        let d = j as isize - r;
                        let (yy, xx) = if horizontal { (y, x + d) } else { (y + d, x) };
                        if (0..hw as isize).contains(&yy) && (0..hw as isize).contains(&xx) {
                            acc += kv * img[(yy * hw as isize + xx) as usize];
                        }
                    }
                    o[(y * hw as isize + x) as usize] = acc / ks;
                }
            }
        }
        out
    };
    let x: Vec<f64> = imgs.iter().map(|&v| v as f64).collect();
    pass(&pass(&x, true), false).into_iter().map(|v| v as f32).collect()
}

/// What the generation study found (in `reports/generation.json` and the report's JSON).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Generation {
    /// What the data's images are ("digit", "garment"): the page's word for "looks real".
    pub item: String,
    pub chains: usize,
    pub sigmas: Vec<f32>,
    pub steps_per_level: usize,
    pub step_size: f32,
    pub start: String,
    pub clip: [f32; 2],
    pub train_images: usize,
    /// Test images whose features set the windows (the real images of mode averaging).
    pub reference_images: usize,
    pub window_quantile: f64,
    pub windows: Windows,
    /// Mean nearest-training distance of the reference images.
    pub reference_nn: f64,
    /// Fraction of the reference images inside all five windows (what "digit-like" costs real
    /// digits; the held-out real images below are the fair comparison).
    pub reference_digit_like: f64,
    /// The samplers' final samples, then the baselines.
    pub sets: Vec<SetScore>,
}

impl Generation {
    pub fn set(&self, name: &str) -> Option<&SetScore> {
        self.sets.iter().find(|s| s.name == name)
    }
}

/// Images [n, IMAGE_LEN] as a View (for the GPU measures).
pub fn upload_images(ctx: &Ctx, imgs: &[f32]) -> Result<View> {
    ctx.upload("generation images", imgs)
}

/// A packed training set on the GPU: the dataset words and, per class, its images' indices
/// and their count.
pub struct TrainRef<'a> {
    pub ds: &'a View,
    pub classes: &'a [(View, usize)],
}

/// Features of n images (pixels in [0, 1]); the nearest distances are searched on the GPU, one
/// class of `train` at a time (the nearest image overall is the nearest of the class minima).
pub fn features(ctx: &Ctx, imgs: &[f32], train: &TrainRef) -> Result<Vec<Features>> {
    let n = imgs.len() / IMAGE_LEN;
    if n == 0 {
        return Ok(Vec::new());
    }
    let x = upload_images(ctx, imgs)?;
    let stats = ctx.alloc("generation", 2 * n)?;
    let mut per_class = Vec::new();
    for (idx, count) in train.classes.iter().filter(|c| c.1 > 0) {
        let dist = ctx.alloc("generation", n)?;
        // The nearest-image search, a chunk of queries per submit (each scans the whole class).
        for s in (0..n).step_by(64) {
            if crate::util::signal::interrupted().is_some() {
                return Err(Error::Msg("interrupted".into()));
            }
            let m = 64.min(n - s);
            crate::ops::analysis::nearest(ctx, &x.slice(s * IMAGE_LEN, m * IMAGE_LEN)?, m, IMAGE_LEN, train.ds, idx, *count, &dist, s)?;
            ctx.flush()?;
        }
        per_class.push(dist);
    }
    crate::ops::analysis::image_stats(ctx, &x, [n, IMAGE_HW, IMAGE_HW], &stats, 0)?;
    let mut d = Vec::new();
    for v in &per_class {
        d.push(block_on(ctx.read(v))?);
    }
    let st = block_on(ctx.read(&stats))?;
    Ok((0..n)
        .map(|i| {
            let (ink, contrast) = ink_contrast(&imgs[i * IMAGE_LEN..(i + 1) * IMAGE_LEN]);
            let (nn, margin) = two_smallest(d.iter().map(|c| c[i] as f64));
            Features { nn, margin, ink, contrast, sharpness: st[2 * i + 1] as f64 }
        })
        .collect())
}

/// (smallest, second smallest - smallest) of per-class distances (margin NaN with one class).
pub fn two_smallest(v: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut a, mut b) = (f64::INFINITY, f64::INFINITY);
    for x in v {
        if x < a {
            b = a;
            a = x;
        } else if x < b {
            b = x;
        }
    }
    (a, if b.is_finite() { b - a } else { f64::NAN })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(nn: f64, margin: f64, ink: f64, contrast: f64, sharpness: f64) -> Features {
        Features { nn, margin, ink, contrast, sharpness }
    }

    #[test]
    fn quantiles_and_windows() {
        let v: Vec<f64> = (0..=100).map(|i| i as f64).collect();
        assert_eq!(quantile(&v, 0.0), 0.0);
        assert_eq!(quantile(&v, 1.0), 100.0);
        assert!((quantile(&v, 0.01) - 1.0).abs() < 1e-12);
        assert!((quantile(&[0.0, 10.0], 0.25) - 2.5).abs() < 1e-12);
        assert!(quantile(&[], 0.5).is_nan());
        let w = Window::of(&v, 0.025);
        assert!((w.lo - 2.5).abs() < 1e-12 && (w.hi - 97.5).abs() < 1e-12, "{w:?}");
        assert!(w.holds(50.0) && w.holds(2.5) && !w.holds(2.0) && !w.holds(98.0));
        assert_eq!(two_smallest([3.0, 1.0, 2.0, 5.0].into_iter()), (1.0, 1.0));
        let (a, m) = two_smallest([4.0].into_iter());
        assert!(a == 4.0 && m.is_nan());
    }

    /// Pairwise distances: three images 0, 3 and 4 apart along two pixels (a 3-4-5 triangle).
    #[test]
    fn pairwise_distances_have_known_answers() {
        let imgs = [0.0f32, 0.0, 3.0, 0.0, 3.0, 4.0];
        // pairs: (0,0)-(3,0) = 3, (0,0)-(3,4) = 5, (3,0)-(3,4) = 4 -> mean 4.
        assert!((mean_pairwise_l2(&imgs, 3, 2) - 4.0).abs() < 1e-12);
        assert_eq!(mean_pairwise_l2(&imgs[..2], 1, 2), 0.0);
        assert_eq!(mean_pairwise_l2(&[0.5; 8], 4, 2), 0.0);
        let (m, s) = ink_contrast(&[0.0, 1.0, 0.0, 1.0]);
        assert!((m - 0.5).abs() < 1e-12 && (s - 0.5).abs() < 1e-12);
    }

    /// The digit-like fraction: windows from hand-made reference features; an image passes
    /// only inside all five; a blank, a mean-like image and a blurred one fail.
    #[test]
    fn digit_like_fraction_has_known_answers() {
        // Reference features spread evenly over [4, 6] (nn), [0.5, 2.5] (margin), [0.1, 0.2]
        // (ink), [0.3, 0.4] (contrast), [0.1, 0.2] (sharpness): 101 points, 1%..99% windows.
        let r: Vec<Features> =
            (0..=100).map(|i| i as f64 / 100.0).map(|t| f(4.0 + 2.0 * t, 0.5 + 2.0 * t, 0.1 + 0.1 * t, 0.3 + 0.1 * t, 0.1 + 0.1 * t)).collect();
        let w = Windows::of(&r, 0.01);
        assert!((w.nn.lo - 4.02).abs() < 1e-9 && (w.nn.hi - 5.98).abs() < 1e-9, "{w:?}");
        let good = f(5.0, 1.5, 0.15, 0.35, 0.15);
        let blank = f(3.5, 1.0, 0.0, 0.0, 0.0);
        let mean_image = f(5.2, 0.02, 0.13, 0.12, 0.02);
        let blurred = f(4.5, 0.9, 0.15, 0.25, 0.05);
        assert!(w.digit_like(&good));
        assert_eq!(w.passes(&blank), [false, true, false, false, false]);
        assert_eq!(w.passes(&mean_image), [true, false, true, false, false]);
        assert_eq!(w.passes(&blurred), [true, true, true, false, false]);
        assert!(!w.digit_like(&blank) && !w.digit_like(&mean_image) && !w.digit_like(&blurred));
        let imgs = vec![0.0f32; 4 * 2];
        let s = score_set("x", &imgs, &[good, blank, mean_image, good], &w);
        assert_eq!(
            (s.images, s.digit_like, s.pass_nn, s.pass_margin, s.pass_ink, s.pass_contrast, s.pass_sharpness),
            (4, 0.5, 0.75, 0.75, 0.75, 0.5, 0.5)
        );
        assert!((s.mean_nn - (5.0 + 3.5 + 5.2 + 5.0) / 4.0).abs() < 1e-12);
    }

    #[test]
    fn schedules_and_blur() {
        let s = schedule(0.1, 0.5, 3);
        assert!((s[0] - 0.5).abs() < 1e-6 && (s[1] - (0.05f64).sqrt() as f32).abs() < 1e-6 && (s[2] - 0.1).abs() < 1e-6, "{s:?}");
        assert_eq!(schedule(0.1, 0.5, 1), vec![0.5]);
        assert_eq!(schedule(0.0, 0.4, 3), vec![0.4, 0.2, 0.0]);
        // A blur keeps a constant image's interior and the mass of a centred dot.
        let c = blur(&vec![1.0; 28 * 28], 28, 1.0);
        assert!((c[14 * 28 + 14] - 1.0).abs() < 1e-6);
        let mut dot = vec![0.0f32; 28 * 28];
        dot[14 * 28 + 14] = 1.0;
        let b = blur(&dot, 28, 1.0);
        assert!((b.iter().map(|&v| v as f64).sum::<f64>() - 1.0).abs() < 1e-6 && b[14 * 28 + 14] < 0.2);
        assert!(key(Method::Langevin, 0) >= 0xC000_0000 && key(Method::Langevin, 1) != key(Method::Iterated, 1));
    }
}
