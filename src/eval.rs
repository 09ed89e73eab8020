//! Scoring a model on a set of images (the validation split during training, the test set in
//! `dae eval`): for each batch and each noise level, the noisy input made on the GPU (keyed by
//! each image's index in the set, so results do not depend on the batch size), the model's
//! forward in eval mode, and the per-image metric kernels writing into slots that stay on the
//! GPU for the whole pass; the host reads them back once at the end.

use crate::autograd::Graph;
use crate::config::{Config, NoiseKind};
use crate::error::Result;
use crate::feed::{IMAGE_HW, IMAGE_LEN, input_affine, pixel_terms};
use crate::gpu::{Ctx, View, block_on};
use crate::nn::lpips::Lpips;
use crate::nn::model::Fwd;
use crate::nn::{Model, Weights};
use crate::ops::data::{DataParams, data_gather, data_noise};
use crate::ops::loss::LossKind;
use crate::ops::metrics::{STAT_CHARBONNIER, STAT_MAE, STAT_MSE, STAT_PSNR, Slots, image_metrics};
use crate::tensor::Tensor;
use crate::util::events::Event;
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

pub use crate::feed::level_params;

/// Images of a set: the packed dataset on the GPU and a list of `n` indices into it.
pub struct EvalSet<'a> {
    pub dataset: &'a View,
    pub idx: &'a View,
    pub n: usize,
}

/// Per-image results of one level: [MSE, PSNR, MAE, Charbonnier] and SSIM, for the model's
/// reconstruction and for the noisy input itself; LPIPS of each when it was computed.
pub struct LevelScores {
    pub level: f32,
    pub recon: (Vec<[f32; 4]>, Vec<f32>),
    pub noisy: (Vec<[f32; 4]>, Vec<f32>),
    pub lpips: Option<(Vec<f32>, Vec<f32>)>,
}

/// LPIPS of the reconstructions and of the noisy inputs of one batch against its clean images,
/// into slots offset.. of `out` (recon, noisy), a chunk of images at a time so the backbone's
/// largest activation fits one storage binding. The clean features serve both.
#[allow(clippy::too_many_arguments)]
fn lpips_batch(
    ctx: &Ctx,
    lp: &Lpips,
    clean: &View,
    recon: &View,
    noisy: &View,
    noisy_affine: (f32, f32),
    nb: usize,
    out: &(View, View),
    offset: usize,
) -> Result<()> {
    let limit = ctx.gpu().limits.max_storage_buffer_binding_size as usize;
    // A multiple of 4 images keeps every chunk's views 256-byte aligned (784 floats per image).
    let chunk = (limit / lp.bytes_per_image()).clamp(4, 256) / 4 * 4;
    let mut s = 0;
    while s < nb {
        let m = chunk.min(nb - s);
        let t = |v: &View| -> Result<Tensor> { Ok(Tensor::wrap(ctx, vec![m, 1, IMAGE_HW, IMAGE_HW], v.slice(s * IMAGE_LEN, m * IMAGE_LEN)?)) };
        let fc = lp.features(&t(clean)?, (2.0, -1.0))?;
        let fr = lp.features(&t(recon)?, (2.0, -1.0))?;
        lp.distance(&fr, &fc, &out.0, offset + s)?;
        drop(fr);
        let fnz = lp.features(&t(noisy)?, noisy_affine)?;
        lp.distance(&fnz, &fc, &out.1, offset + s)?;
        s += m;
    }
    Ok(())
}

/// The forward of `model` (eval mode) on the noisy images of `clean` [nb, 1, 28, 28]: returns
/// (network input, reconstruction).
fn denoise(ctx: &Ctx, cfg: &Config, model: &Model, w: &Weights, clean: &View, dp: &DataParams, nb: usize) -> Result<(View, Tensor)> {
    denoise_named(ctx, cfg, model, w, clean, dp, nb, "noise")
}

/// [`denoise`] with the noise dispatch named `slot` (a recorded batch rewrites its keys).
fn denoise_named(
    ctx: &Ctx,
    cfg: &Config,
    model: &Model,
    w: &Weights,
    clean: &View,
    dp: &DataParams,
    nb: usize,
    slot: &str,
) -> Result<(View, Tensor)> {
    let input = ctx.alloc("eval batch", nb * IMAGE_LEN)?;
    ctx.named(slot, || data_noise(ctx, dp, clean, &input))?;
    let x = Tensor::wrap(ctx, vec![nb, 1, IMAGE_HW, IMAGE_HW], input.clone());
    let recon =
        model.forward(&mut Graph::inference(ctx).with_kernels(crate::ops::kernels::Kernels::from_env()?), &Fwd::gpu(w, false, cfg.seed, 0), &x)?;
    Ok((input, recon))
}

/// More work on every (batch, level) of a scoring pass, on the GPU buffers it already has: the
/// clean images, the reconstruction and the network input of images start..start + nb.
pub trait BatchHook {
    #[allow(clippy::too_many_arguments)]
    fn batch(&mut self, ctx: &Ctx, level_index: usize, level: f32, start: usize, nb: usize, clean: &View, recon: &View, input: &View) -> Result<()>;
}

/// What a scoring pass covers.
pub struct Pass<'a> {
    pub kind: NoiseKind,
    pub levels: &'a [f32],
    pub batch: usize,
    pub lpips: Option<&'a Lpips>,
    pub hook: Option<&'a mut dyn BatchHook>,
    /// Encode every batch anew instead of replaying one recorded batch (tests compare the two).
    pub direct: bool,
}

/// The slots of a recorded evaluation batch: the batch's first image, the noise of level `li`
/// (the only dispatch of `denoise` whose Params change), where the per-image metrics go.
const SLOT_BATCH: &str = "batch";
const SLOT_OFFSET: &str = "metrics offset";
fn noise_slot(li: usize) -> String {
    format!("noise of level {li}")
}

/// Score `model` on `set` at each of the pass's levels, `batch` images at a time;
/// `progress(images done)` after each batch. `None` when interrupted (Ctrl-C / SIGTERM).
/// Without LPIPS or a hook, the first full batch (gather, and per level: noise, forward,
/// metrics) is recorded as a plan and every full batch replays it with its image offset and
/// noise keys patched in; the per-image results stay on the GPU until the pass ends.
pub fn score(
    ctx: &Ctx,
    cfg: &Config,
    model: &Model,
    w: &Weights,
    set: &EvalSet,
    pass: Pass,
    progress: &mut dyn FnMut(usize),
) -> Result<Option<Vec<LevelScores>>> {
    let Pass { kind, levels, batch, lpips, mut hook, direct } = pass;
    let planned = !direct && lpips.is_none() && hook.is_none();
    let mut plan: Option<crate::gpu::Plan> = None;
    let b = batch.min(set.n).max(1);
    let (sc, sh) = input_affine(cfg.data.normalize);
    // The network input mapped to [0, 1] (metrics) and to [-1, 1] (LPIPS).
    let noisy01 = (1.0 / sc, -sh / sc);
    let noisy_pm1 = (2.0 / sc, -2.0 * sh / sc - 1.0);
    let shape = |nb: usize| [nb, 1, IMAGE_HW, IMAGE_HW];
    let mut slots = Vec::new();
    let mut lp_slots = Vec::new();
    for _ in levels {
        slots.push((Slots::new(ctx, set.n)?, Slots::new(ctx, set.n)?));
        if lpips.is_some() {
            lp_slots.push((ctx.alloc("lpips", set.n)?, ctx.alloc("lpips", set.n)?));
        }
    }
    let mut start = 0;
    while start < set.n {
        if signal::interrupted().is_some() {
            return Ok(None);
        }
        let nb = b.min(set.n - start);
        let mut encode = |start: usize| -> Result<()> {
            let clean = ctx.alloc("eval batch", nb * IMAGE_LEN)?;
            ctx.named(SLOT_BATCH, || data_gather(ctx, set.dataset, set.idx, start, nb, IMAGE_LEN, &clean))?;
            for (li, &level) in levels.iter().enumerate() {
                let dp = level_params(cfg, kind, level, 0, start, nb);
                let (input, recon) = denoise_named(ctx, cfg, model, w, &clean, &dp, nb, &noise_slot(li))?;
                ctx.named(SLOT_OFFSET, || {
                    image_metrics(ctx, recon.view(), &clean, shape(nb), (1.0, 0.0), &slots[li].0, start)?;
                    // The noisy input scored in [0, 1]: the network input mapped back.
                    image_metrics(ctx, &input, &clean, shape(nb), noisy01, &slots[li].1, start)
                })?;
                if let Some(lp) = lpips {
                    lpips_batch(ctx, lp, &clean, recon.view(), &input, noisy_pm1, nb, &lp_slots[li], start)?;
                }
                if let Some(h) = hook.as_mut() {
                    h.batch(ctx, li, level, start, nb, &clean, recon.view(), &input)?;
                }
            }
            Ok(())
        };
        if planned && nb == b {
            if plan.is_none() {
                plan = Some(ctx.record(|| encode(start))?);
            }
            let p = plan.as_mut().ok_or_else(|| crate::error::Error::Msg("no eval plan".into()))?;
            p.set::<DataParams>(SLOT_BATCH, |_, d| d.start = start as u32)?;
            for (li, &level) in levels.iter().enumerate() {
                p.set::<DataParams>(&noise_slot(li), |_, d| *d = level_params(cfg, kind, level, 0, start, nb))?;
            }
            p.set::<crate::ops::metrics::MetricsParams>(SLOT_OFFSET, |_, m| m.offset = start as u32)?;
            ctx.replay(p)?;
            // Progressive autotune, as in training: record the batch anew while shapes of it
            // wait for timing.
            if ctx.retune(p) {
                plan = None;
            }
        } else {
            encode(start)?;
        }
        ctx.flush()?;
        // One batch queued behind the running one at most: an interrupt waits for two.
        ctx.pace()?;
        start += nb;
        progress(start);
    }
    let mut out = Vec::new();
    for (li, (&level, (r, n))) in levels.iter().zip(&slots).enumerate() {
        let lp = match lp_slots.get(li) {
            Some((a, b)) => Some((block_on(ctx.read(a))?, block_on(ctx.read(b))?)),
            None => None,
        };
        out.push(LevelScores { level, recon: block_on(r.read(ctx))?, noisy: block_on(n.read(ctx))?, lpips: lp });
    }
    Ok(Some(out))
}

/// Clean, noisy (in [0, 1]) and reconstructed pixels of images start..start + nb of `set` at
/// one level (noise draw `draw`; 0 is the draw `score` uses), read back for figures.
#[allow(clippy::too_many_arguments)]
pub fn images_at(
    ctx: &Ctx,
    cfg: &Config,
    kind: NoiseKind,
    model: &Model,
    w: &Weights,
    set: &EvalSet,
    start: usize,
    nb: usize,
    level: f32,
    draw: u32,
) -> Result<[Vec<f32>; 3]> {
    let (sc, sh) = input_affine(cfg.data.normalize);
    let (clean, input, recon) = denoise_at(ctx, cfg, kind, model, w, set, start, nb, level, draw)?;
    let noisy = block_on(ctx.read(&input))?.iter().map(|v| (v - sh) / sc).collect();
    Ok([block_on(ctx.read(&clean))?, noisy, block_on(recon.to_vec())?])
}

/// On the GPU: (clean, network input, reconstruction) of images start..start + nb of `set` at
/// one level and noise draw.
#[allow(clippy::too_many_arguments)]
pub fn denoise_at(
    ctx: &Ctx,
    cfg: &Config,
    kind: NoiseKind,
    model: &Model,
    w: &Weights,
    set: &EvalSet,
    start: usize,
    nb: usize,
    level: f32,
    draw: u32,
) -> Result<(View, View, Tensor)> {
    let clean = ctx.alloc("eval batch", nb * IMAGE_LEN)?;
    data_gather(ctx, set.dataset, set.idx, start, nb, IMAGE_LEN, &clean)?;
    let dp = level_params(cfg, kind, level, draw, start, nb);
    let (input, recon) = denoise(ctx, cfg, model, w, &clean, &dp, nb)?;
    Ok((clean, input, recon))
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

// ---- `dae eval` ----------------------------------------------------------------------------------

pub use crate::checkpoint::GpuModel;

/// What `dae eval` was asked for.
#[derive(Clone, Debug, Default)]
pub struct EvalOptions {
    /// The weights file; default `<out_dir>/ckpts/best_model.safetensors` (EMA weights), or the
    /// raw weights of `last` with `no_ema`.
    pub ckpt: Option<std::path::PathBuf>,
    pub no_ema: bool,
    /// Noise levels (sigmas; amounts for salt_pepper; peaks for poisson); default the config's.
    pub levels: Option<Vec<f32>>,
    pub noise: Option<NoiseKind>,
    pub batch: Option<usize>,
    pub data_dir: Option<std::path::PathBuf>,
    /// The other dataset's folder for the report's out-of-distribution section (overrides
    /// `eval.ood_root`).
    pub ood_data_dir: Option<std::path::PathBuf>,
    pub verbose: bool,
    /// Skip LPIPS even when eval.lpips names weights.
    pub no_lpips: bool,
}

/// One row of evaluation_results.json: one noise level, means over the images (PSNR per image
/// then averaged), the noisy input's figures beside the model's.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct EvalRow {
    pub noise: String,
    pub sigma: f32,
    pub mse: f64,
    pub psnr: f64,
    pub ssim: f64,
    pub lpips: Option<f64>,
    pub noisy_mse: f64,
    pub noisy_psnr: f64,
    pub noisy_ssim: f64,
    pub noisy_lpips: Option<f64>,
    pub psnr_std: f64,
    pub ssim_std: f64,
}

/// outputs/logs/evaluation_results.json.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct EvalResults {
    pub checkpoint: String,
    pub weights: String,
    pub dataset: String,
    pub split: String,
    pub n_images: usize,
    pub seed: u64,
    pub psnr_mode: String,
    /// The PSNR an exact reconstruction gets (finite so means stay finite).
    pub psnr_cap_db: f64,
    /// LPIPS compares images resized to this size (AlexNet cannot run on 28x28).
    pub lpips_input: [usize; 2],
    pub lpips_net: Option<String>,
    pub results: Vec<EvalRow>,
    pub images_per_s: f64,
}

/// The word a config uses for a noise kind.
pub fn noise_name(k: NoiseKind) -> &'static str {
    match k {
        NoiseKind::Gaussian => "gaussian",
        NoiseKind::SaltPepper => "salt_pepper",
        NoiseKind::Poisson => "poisson",
        NoiseKind::Speckle => "speckle",
    }
}

/// The checkpoint `dae eval` reads by default, and which weights it holds.
pub fn default_checkpoint(cfg: &Config, no_ema: bool) -> std::path::PathBuf {
    let ck = std::path::Path::new(&cfg.out_dir).join("ckpts");
    if no_ema { ck.join("last.safetensors") } else { ck.join("best_model.safetensors") }
}

/// Levels for `kind`: given (checked) or the config's defaults for that kind.
pub fn resolve_levels(cfg: &Config, kind: NoiseKind, given: Option<&[f32]>) -> Result<Vec<f32>> {
    let (name, ok, what): (&str, fn(f32) -> bool, &str) = match kind {
        NoiseKind::Gaussian | NoiseKind::Speckle => ("sigmas", |v| (0.0..=crate::config::MAX_SIGMA).contains(&v), "in [0, 100]"),
        NoiseKind::SaltPepper => ("amounts", |v| (0.0..=1.0).contains(&v), "in [0, 1]"),
        NoiseKind::Poisson => ("peaks", |v| v > 0.0 && v <= crate::config::MAX_PEAK, "in (0, 1e6]"),
    };
    let levels = match given {
        Some(v) => v.to_vec(),
        None => {
            let mut c = cfg.clone();
            c.noise.kind = kind;
            eval_levels(&c)
        }
    };
    if levels.is_empty() || levels.len() > 64 {
        return Err(crate::error::Error::Config(format!("--sigmas: give 1 to 64 {name} for {} noise, got {}", noise_name(kind), levels.len())));
    }
    if let Some(bad) = levels.iter().find(|v| !ok(**v)) {
        return Err(crate::error::Error::Config(format!("--sigmas: {} noise takes {name} {what}, got {bad}", noise_name(kind))));
    }
    Ok(levels)
}

/// Differences between two model configs, as `field: a vs b`.
/// What every job after training opens: the checkpoint's model on the GPU (its config checked
/// against the given one), the test split on the GPU, the levels, LPIPS when configured, and the
/// evaluation lock of the output folder (training may go on beside it).
pub struct Session {
    pub path: std::path::PathBuf,
    /// "ema" or "raw" (the checkpoint's metadata).
    pub weights: String,
    pub gm: GpuModel,
    pub kind: NoiseKind,
    pub levels: Vec<f32>,
    pub batch: usize,
    pub lpips: Option<Lpips>,
    pub dataset: View,
    pub idx: View,
    pub n: usize,
    /// The test images (u8, 28 x 28 each), for figures and the nearest-image baseline.
    pub pixels: Vec<u8>,
    _lock: crate::util::lock::FolderLock,
}

impl Session {
    pub fn open(ctx: &Ctx, cfg: &Config, opts: &EvalOptions, job: &str, events: &mut dyn FnMut(Event)) -> Result<Session> {
        use crate::error::Error;
        let path = opts.ckpt.clone().unwrap_or_else(|| default_checkpoint(cfg, opts.no_ema));
        if opts.ckpt.is_some() && path.is_dir() {
            let inside = path.join("best_model.safetensors");
            return Err(Error::Config(format!(
                "--ckpt {} is a folder; name a weights file{}",
                path.display(),
                if inside.is_file() { format!(", e.g. {}", inside.display()) } else { " (a .safetensors file dae train wrote)".to_string() }
            )));
        }
        if let Some(why) = path.parent().and_then(crate::util::files::not_a_folder) {
            return Err(Error::Config(format!("no checkpoint at {}: {why}", path.display())));
        }
        if !path.is_file() {
            return Err(Error::Config(format!(
                "no checkpoint at {}: train one first (dae train --config ...), or name one with --ckpt",
                path.display()
            )));
        }
        let file = crate::checkpoint::load_model(&path)?;
        let diff = file.config.model.differences(&cfg.model);
        if !diff.is_empty() {
            return Err(Error::Config(format!(
                "the model section of the config differs from the checkpoint's ({}): {}; use the config the model was trained with (its out_dir holds config.resolved.yaml)",
                path.display(),
                diff.join(", ")
            )));
        }
        let kind = opts.noise.unwrap_or(cfg.noise.kind);
        let levels = resolve_levels(cfg, kind, opts.levels.as_deref())?;
        let batch = opts.batch.unwrap_or(cfg.eval.batch_size);
        if !(1..=65_536).contains(&batch) {
            return Err(Error::Config(format!("--batch must be in 1..=65536, got {batch}")));
        }
        let out = std::path::Path::new(&cfg.out_dir);
        let lock = crate::util::lock::lock(out, "eval", &crate::util::lock::holder_note(job)).map_err(|e| match e {
            crate::util::lock::LockError::Held { holder, .. } => {
                Error::Msg(format!("{} is being evaluated by another dae eval or report ({holder}); wait for it", out.display()))
            }
            e => Error::Msg(e.to_string()),
        })?;
        let weights = file.meta.get("kind").cloned().unwrap_or_else(|| "unknown".into());
        let gm = GpuModel::upload(ctx, &file)?;
        let lpips = match (&cfg.eval.lpips, opts.no_lpips) {
            (Some(l), false) => Some(Lpips::load(ctx, l)?),
            _ => None,
        };
        let dir = crate::feed::data_dir(cfg, opts.data_dir.as_deref());
        let images = crate::feed::load_images(cfg, &dir, false, &mut |m| events(Event::Note(m.to_string())))?;
        let n = cfg.eval.test_limit.map_or(images.count, |l| l.min(images.count));
        let dataset = ctx.upload_u32("test set", &crate::feed::pack_u8(&images.pixels))?;
        let idx = ctx.upload_u32("test indices", &(0..n as u32).collect::<Vec<_>>())?;
        Ok(Session { path, weights, gm, kind, levels, batch, lpips, dataset, idx, n, pixels: images.pixels, _lock: lock })
    }

    pub fn set(&self) -> EvalSet<'_> {
        EvalSet { dataset: &self.dataset, idx: &self.idx, n: self.n }
    }

    /// "CKPT (ema weights, unet base 16, ...) on N test images at gaussian sigma [0.1, 0.3]".
    pub fn describe(&self) -> String {
        format!(
            "{} ({} weights, {}) on {} test images at {} {} {}",
            self.path.display(),
            self.weights,
            self.gm.config.model.describe(),
            self.n,
            noise_name(self.kind),
            self.level_name(),
            crate::config::list(&self.levels)
        )
    }

    /// "sigma", or "amount" / "peak" for the noises that have no sigma.
    pub fn level_name(&self) -> &'static str {
        level_name(self.kind)
    }

    /// A scoring pass over the whole test split, its progress told to `events`; `None` when
    /// interrupted.
    pub fn score<'a>(
        &'a self,
        ctx: &Ctx,
        cfg: &Config,
        events: &mut dyn FnMut(Event),
        lpips: bool,
        hook: Option<&'a mut dyn BatchHook>,
    ) -> Result<Option<(Vec<LevelScores>, f64)>> {
        signal::reset();
        signal::set_note("stopping after this batch; nothing half-written is left");
        if let Some(w) = signal::install() {
            events(Event::Warning(w));
        }
        events(Event::Start { what: format!("test set x {} levels", self.levels.len()), total: self.n, done: 0 });
        let t0 = std::time::Instant::now();
        let pass = Pass {
            kind: self.kind,
            levels: &self.levels,
            batch: self.batch,
            lpips: if lpips { self.lpips.as_ref() } else { None },
            hook,
            direct: false,
        };
        let r = score(ctx, cfg, &self.gm.model, &self.gm.weights, &self.set(), pass, &mut |done| {
            for w in ctx.take_warnings() {
                events(Event::Warning(w));
            }
            events(Event::Progress { done, msg: String::new() })
        });
        events(Event::End { finished: matches!(r, Ok(Some(_))) });
        let r = r.map_err(|e| e.limit_in_terms_of("eval.batch_size (--batch)", self.batch))?;
        Ok(r.map(|s| (s, t0.elapsed().as_secs_f64())))
    }

    /// evaluation_results.json's content from a pass.
    pub fn results(&self, cfg: &Config, scores: &[LevelScores], secs: f64) -> EvalResults {
        let f64s = |v: &[f32]| v.iter().map(|&x| x as f64).collect::<Vec<_>>();
        let col = |v: &[[f32; 4]], k: usize| v.iter().map(|s| s[k] as f64).collect::<Vec<_>>();
        let results = scores
            .iter()
            .map(|l| {
                let (psnr, psnr_std) = crate::metrics::mean_std(&col(&l.recon.0, STAT_PSNR));
                let (ssim, ssim_std) = crate::metrics::mean_std(&f64s(&l.recon.1));
                EvalRow {
                    noise: noise_name(self.kind).into(),
                    sigma: l.level,
                    mse: mean(col(&l.recon.0, STAT_MSE).into_iter()),
                    psnr,
                    ssim,
                    lpips: l.lpips.as_ref().map(|(r, _)| mean(r.iter().map(|&v| v as f64))),
                    noisy_mse: mean(col(&l.noisy.0, STAT_MSE).into_iter()),
                    noisy_psnr: mean(col(&l.noisy.0, STAT_PSNR).into_iter()),
                    noisy_ssim: mean(f64s(&l.noisy.1).into_iter()),
                    noisy_lpips: l.lpips.as_ref().map(|(_, n)| mean(n.iter().map(|&v| v as f64))),
                    psnr_std,
                    ssim_std,
                }
            })
            .collect();
        let with_lpips = scores.first().is_some_and(|s| s.lpips.is_some());
        EvalResults {
            checkpoint: self.path.display().to_string(),
            weights: self.weights.clone(),
            dataset: crate::feed::spec(cfg.data.dataset).name.to_string(),
            split: "test".into(),
            n_images: self.n,
            seed: cfg.seed,
            psnr_mode: "per_image_mean".into(),
            psnr_cap_db: crate::ops::metrics::PSNR_CAP as f64,
            lpips_input: [crate::nn::lpips::INPUT_SIDE, crate::nn::lpips::INPUT_SIDE],
            lpips_net: self.lpips.as_ref().filter(|_| with_lpips).map(|l| crate::nn::lpips::net_name(l.net).to_string()),
            results,
            images_per_s: (self.n * self.levels.len()) as f64 / secs.max(1e-9),
        }
    }
}

/// "sigma", or "amount" / "peak" for the noises that have no sigma.
pub fn level_name(kind: NoiseKind) -> &'static str {
    match kind {
        NoiseKind::SaltPepper => "amount",
        NoiseKind::Poisson => "peak",
        _ => "sigma",
    }
}

/// `dae eval`: the whole test split at every level, written to
/// `<out_dir>/logs/evaluation_results.json` (atomically, only when the pass completes). `None`
/// when an interrupt stopped it (nothing written).
pub fn run(ctx: &Ctx, cfg: &Config, opts: &EvalOptions, events: &mut dyn FnMut(Event)) -> Result<Option<EvalResults>> {
    let s = Session::open(ctx, cfg, opts, "dae eval", events)?;
    events(Event::Note(format!("dae eval: {}", s.describe())));
    let Some((scores, secs)) = s.score(ctx, cfg, events, true, None)? else { return Ok(None) };
    let res = s.results(cfg, &scores, secs);
    write_json(&std::path::Path::new(&cfg.out_dir).join("logs").join("evaluation_results.json"), &res)?;
    Ok(Some(res))
}

/// Write `value` as pretty JSON to `path` atomically (temp file, fsync, rename).
pub fn write_json<T: serde::Serialize>(path: &std::path::Path, value: &T) -> Result<()> {
    let text = serde_json::to_vec_pretty(value).map_err(|e| crate::error::Error::Msg(format!("{}: {e}", path.display())))?;
    crate::checkpoint::write_file(path, &text)
}

/// The terminal table of an evaluation: the model beside the noisy input at each level.
pub fn table(r: &EvalResults) -> String {
    let lp = |v: Option<f64>| v.map_or("unavailable".to_string(), |x| format!("{x:.4}"));
    let mut s = format!(
        "{:<12} {:>6} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8} {:>12} {:>12} {:>10}\n",
        "noise", "level", "PSNR dB", "noisy dB", "gain dB", "SSIM", "noisy", "PSNR sd", "LPIPS", "noisy LPIPS", "MSE"
    );
    for x in &r.results {
        s += &format!(
            "{:<12} {:>6} {:>9.2} {:>9.2} {:>+8.2} {:>8.4} {:>8.4} {:>8.2} {:>12} {:>12} {:>10.6}\n",
            x.noise,
            x.sigma,
            x.psnr,
            x.noisy_psnr,
            x.psnr - x.noisy_psnr,
            x.ssim,
            x.noisy_ssim,
            x.psnr_std,
            lp(x.lpips),
            lp(x.noisy_lpips),
            x.mse
        );
    }
    s
}
