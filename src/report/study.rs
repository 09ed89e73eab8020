//! The study's sections beyond the limitations SPEC lists: generation from noise
//! (`dae compare generation`, and a section of `dae report`), the model on the other dataset of
//! the pair (out-of-distribution), and the noise-model mismatch table of
//! tools/eval_mismatch_noise.sh on a subset of the test split.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::figures;
use crate::analysis::generation::{self as sampling, Features, Generation, Method, Windows};
use crate::config::{Config, Dataset, NoiseKind};
use crate::error::{Error, Result};
use crate::eval::{EvalOptions, EvalSet, Pass, Session, images_at, noise_name, val_rows};
use crate::feed::{IMAGE_HW, IMAGE_LEN};
use crate::gpu::{Ctx, View};
use crate::util::events::Event;

fn out_path(cfg: &Config, sub: &str, file: &str) -> PathBuf {
    Path::new(&cfg.out_dir).join(sub).join(file)
}

/// The training file on the GPU (the nearest-image searches scan it, class by class) and its
/// mean image.
pub struct TrainSet {
    pub ds: View,
    pub idx: View,
    pub count: usize,
    pub classes: Vec<(View, usize)>,
    pub mean: Vec<f32>,
}

impl TrainSet {
    pub fn load(ctx: &Ctx, cfg: &Config, data_dir: Option<&Path>, events: &mut dyn FnMut(Event)) -> Result<TrainSet> {
        let dir = crate::feed::data_dir(cfg, data_dir);
        let (train, labels) = crate::feed::load_labelled(cfg, &dir, true, &mut |m| events(Event::Note(m.to_string())))?;
        let mut mean = vec![0f64; IMAGE_LEN];
        for img in train.pixels.chunks(IMAGE_LEN) {
            for (m, &p) in mean.iter_mut().zip(img) {
                *m += p as f64 / 255.0;
            }
        }
        let n = train.count.max(1) as f64;
        let mut classes = Vec::new();
        for c in 0..=labels.iter().copied().max().unwrap_or(0) {
            let idx: Vec<u32> = (0..train.count as u32).filter(|&i| labels[i as usize] == c).collect();
            if !idx.is_empty() {
                classes.push((ctx.upload_u32("training indices of a class", &idx)?, idx.len()));
            }
        }
        Ok(TrainSet {
            ds: ctx.upload_u32("training set", &crate::feed::pack_u8(&train.pixels))?,
            idx: ctx.upload_u32("training indices", &(0..train.count as u32).collect::<Vec<_>>())?,
            count: train.count,
            classes,
            mean: mean.into_iter().map(|m| (m / n) as f32).collect(),
        })
    }

    pub fn by_class(&self) -> sampling::TrainRef<'_> {
        sampling::TrainRef { ds: &self.ds, classes: &self.classes }
    }
}

fn pixels01(px: &[u8]) -> Vec<f32> {
    px.iter().map(|&p| p as f32 / 255.0).collect()
}

/// The real test images of the analyses (the first `eval.mode_images`, at most half the test
/// split so the held-out images of the generation study remain): their features.
pub fn reference_features(ctx: &Ctx, cfg: &Config, s: &Session, train: &TrainSet) -> Result<Vec<Features>> {
    let r = cfg.eval.mode_images.min(s.n / 2).max(1);
    sampling::features(ctx, &pixels01(&s.pixels[..r * IMAGE_LEN]), &train.by_class())
}

/// Generation from noise: both samplers from `eval.generation.chains` starts, measured against
/// the windows of the reference test images (`reference`, from [`reference_features`]) and
/// beside the baselines; writes `grids/generation_attempts.png`.
pub fn generation(
    ctx: &Ctx,
    cfg: &Config,
    s: &Session,
    train: &TrainSet,
    reference: &[Features],
    events: &mut dyn FnMut(Event),
) -> Result<(Generation, PathBuf)> {
    let g = &cfg.eval.generation;
    let n = g.chains;
    let (lo, hi) = s.gm.config.noise.trained_range();
    let sigmas = sampling::schedule(lo, hi, g.levels);
    events(Event::Note(format!(
        "generation: {n} chains x {} levels x {} steps per method (sigma {hi} down to {lo}, the training range)",
        g.levels, g.steps
    )));
    let mut runs = Vec::new();
    for m in [Method::Langevin, Method::Iterated] {
        runs.push(sampling::run(ctx, cfg, &s.gm.model, &s.gm.weights, m, n, &sigmas, g.steps, g.step_size)?);
    }
    // The reference images set the windows; the next `n` test images are held-out real images
    // scored like the samples.
    let r = reference.len();
    let windows = Windows::of(reference, g.window_quantile);
    let control_n = n.min(s.n.saturating_sub(r));
    let control = pixels01(&s.pixels[r * IMAGE_LEN..(r + control_n) * IMAGE_LEN]);
    let mut sets: Vec<(String, Vec<f32>)> = runs.iter().map(|run| (run.method.name().to_string(), run.finals.clone())).collect();
    sets.push(("real test images (held out)".into(), control.clone()));
    sets.push(("blurred test images (Gaussian, 1 px)".into(), sampling::blur(&control, IMAGE_HW, 1.0)));
    sets.push(("pure noise (the samplers' start)".into(), runs[0].start.clone()));
    sets.push(("blank (all 0)".into(), vec![0.0; IMAGE_LEN]));
    sets.push(("training mean image".into(), train.mean.clone()));
    sets.push(("uniform grey 0.1".into(), vec![0.1; IMAGE_LEN]));
    let mut scores = Vec::new();
    for (name, imgs) in &sets {
        let f = sampling::features(ctx, imgs, &train.by_class())?;
        scores.push(sampling::score_set(name, imgs, &f, &windows));
    }
    let (clo, chi) = sampling::clip_range(cfg);
    let res = Generation {
        item: match cfg.data.dataset {
            Dataset::Mnist => "digit",
            Dataset::FashionMnist => "garment",
        }
        .to_string(),
        chains: n,
        sigmas: sigmas.clone(),
        steps_per_level: g.steps,
        step_size: g.step_size,
        start: format!("clip(0.5 + {hi} z, [{clo}, {chi}]) per pixel, z ~ N(0, 1)"),
        clip: [clo, chi],
        train_images: train.count,
        reference_images: r,
        window_quantile: g.window_quantile,
        windows,
        reference_nn: crate::eval::mean(reference.iter().map(|f| f.nn)),
        reference_digit_like: reference.iter().filter(|f| windows.digit_like(f)).count() as f64 / r.max(1) as f64,
        sets: scores,
    };
    let p = out_path(cfg, "grids", "generation_attempts.png");
    let blocks: Vec<(String, Vec<(String, Vec<f32>)>)> = runs.iter().map(|run| (run.method.name().to_string(), run.snapshots.clone())).collect();
    let title = format!(
        "generation from noise: {} of {n} chains per method (rows), the state along the schedule (columns), {} steps per level",
        n.min(figures::GEN_ROWS),
        g.steps
    );
    figures::generation(&p, &title, &blocks, n, IMAGE_HW)?;
    Ok((res, p))
}

/// `dae compare generation`: the generation study alone, into `reports/generation.json` and
/// `grids/generation_attempts.png`. `None` when interrupted.
pub fn compare_generation(ctx: &Ctx, cfg: &Config, opts: &EvalOptions, events: &mut dyn FnMut(Event)) -> Result<Option<(Generation, Vec<PathBuf>)>> {
    let s = Session::open(ctx, cfg, opts, "dae compare generation", events)?;
    events(Event::Note(format!("dae compare generation: {}", s.describe())));
    crate::util::signal::reset();
    crate::util::signal::install();
    let train = TrainSet::load(ctx, cfg, opts.data_dir.as_deref(), events)?;
    let r = reference_features(ctx, cfg, &s, &train).and_then(|rf| generation(ctx, cfg, &s, &train, &rf, events));
    if crate::util::signal::interrupted().is_some() {
        return Ok(None);
    }
    let (g, fig) = r?;
    let jp = out_path(cfg, "reports", "generation.json");
    crate::eval::write_json(&jp, &g)?;
    Ok(Some((g, vec![fig, jp])))
}

// ---- out of distribution -------------------------------------------------------------------------

/// One level of the out-of-distribution table.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OodRow {
    pub sigma: f32,
    pub psnr: f64,
    pub noisy_psnr: f64,
    pub ssim: f64,
    pub noisy_ssim: f64,
    /// The same model on its own test set at this level (the report's evaluation), for contrast.
    pub in_dist_psnr: Option<f64>,
    pub in_dist_ssim: Option<f64>,
}

/// The model on the other dataset of the pair.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Ood {
    pub trained_on: String,
    pub dataset: String,
    pub folder: String,
    pub images: usize,
    pub noise: String,
    pub rows: Vec<OodRow>,
    /// Why the section has no numbers (the other dataset could not be had), else null.
    pub unavailable: Option<String>,
}

/// The other dataset of the pair.
pub fn other(d: Dataset) -> Dataset {
    match d {
        Dataset::Mnist => Dataset::FashionMnist,
        Dataset::FashionMnist => Dataset::Mnist,
    }
}

fn folder_name(d: Dataset) -> &'static str {
    match d {
        Dataset::Mnist => "mnist",
        Dataset::FashionMnist => "fashion-mnist",
    }
}

/// The other dataset's folder: `--ood-data-dir`, else `eval.ood_root`, else the folder named
/// after it beside the data folder.
pub fn ood_dir(cfg: &Config, opts: &EvalOptions) -> PathBuf {
    if let Some(d) = &opts.ood_data_dir {
        return d.clone();
    }
    if let Some(r) = &cfg.eval.ood_root {
        return PathBuf::from(r);
    }
    let data = crate::feed::data_dir(cfg, opts.data_dir.as_deref());
    let name = folder_name(other(cfg.data.dataset));
    match data.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.join(name),
        _ => Path::new("data").join(name),
    }
}

/// Score the session's model on the first `eval.ood_images` test images of the other dataset
/// at every level; writes `grids/ood_recon_grid.png` (first 8 images, clean and per level noisy
/// and reconstructed). The section is kept, saying why, when that dataset cannot be had.
pub fn ood(
    ctx: &Ctx,
    cfg: &Config,
    opts: &EvalOptions,
    s: &Session,
    in_dist: Option<&[crate::eval::ValRow]>,
    events: &mut dyn FnMut(Event),
) -> Result<(Ood, Option<PathBuf>)> {
    let mut ocfg = cfg.clone();
    ocfg.data.dataset = other(cfg.data.dataset);
    let dir = ood_dir(cfg, opts);
    let mut res = Ood {
        trained_on: crate::feed::spec(cfg.data.dataset).name.to_string(),
        dataset: crate::feed::spec(ocfg.data.dataset).name.to_string(),
        folder: dir.display().to_string(),
        images: 0,
        noise: noise_name(s.kind).to_string(),
        rows: Vec::new(),
        unavailable: None,
    };
    let images = match crate::feed::load_images(&ocfg, &dir, false, &mut |m| events(Event::Note(m.to_string()))) {
        Ok(i) => i,
        Err(e) => {
            events(Event::Warning(format!("out-of-distribution section: {} is unavailable: {e}", res.dataset)));
            res.unavailable = Some(e.to_string());
            return Ok((res, None));
        }
    };
    let n = cfg.eval.ood_images.min(images.count);
    events(Event::Note(format!("out of distribution: {n} {} test images at {} {}", res.dataset, s.level_name(), crate::config::list(&s.levels))));
    let ds = ctx.upload_u32("ood test set", &crate::feed::pack_u8(&images.pixels))?;
    let idx = ctx.upload_u32("ood indices", &(0..n as u32).collect::<Vec<_>>())?;
    let set = EvalSet { dataset: &ds, idx: &idx, n };
    let pass = Pass { kind: s.kind, levels: &s.levels, batch: s.batch, lpips: None, hook: None, direct: false };
    let Some(scores) = crate::eval::score(ctx, cfg, &s.gm.model, &s.gm.weights, &set, pass, &mut |_| {})? else {
        return Err(Error::Msg("interrupted".into()));
    };
    res.images = n;
    for r in val_rows(cfg, &scores) {
        let own = in_dist.and_then(|v| v.iter().find(|x| x.sigma == r.sigma));
        res.rows.push(OodRow {
            sigma: r.sigma,
            psnr: r.psnr,
            noisy_psnr: r.psnr_noisy,
            ssim: r.ssim,
            noisy_ssim: r.ssim_noisy,
            in_dist_psnr: own.map(|x| x.psnr),
            in_dist_ssim: own.map(|x| x.ssim),
        });
    }
    let nb = 8.min(n);
    let mut rows: Vec<(String, Vec<f32>)> = Vec::new();
    for &l in &s.levels {
        let [c, no, r] = images_at(ctx, cfg, s.kind, &s.gm.model, &s.gm.weights, &set, 0, nb, l, 0)?;
        if rows.is_empty() {
            rows.push(("clean".into(), c));
        }
        rows.push((format!("noisy {l}"), no));
        rows.push((format!("recon. {l}"), r));
    }
    let p = out_path(cfg, "grids", "ood_recon_grid.png");
    let title =
        format!("a {} model on {} test images (rows: clean, then noisy and reconstructed per {})", res.trained_on, res.dataset, s.level_name());
    figures::image_rows(&p, &title, &rows, nb, IMAGE_HW)?;
    Ok((res, Some(p)))
}

// ---- noise-model mismatch ------------------------------------------------------------------------

/// The noise models and levels of tools/eval_mismatch_noise.sh (keep the two in step).
pub const MISMATCH: [(NoiseKind, &[f32]); 4] = [
    (NoiseKind::Gaussian, &[0.05, 0.1, 0.3, 0.5, 0.7, 1.0, 1.5]),
    (NoiseKind::Speckle, &[0.1, 0.3, 0.5, 1.0]),
    (NoiseKind::SaltPepper, &[0.02, 0.05, 0.1, 0.2, 0.4]),
    (NoiseKind::Poisson, &[100.0, 30.0, 10.0, 3.0]),
];

/// One row of the mismatch table.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MismatchRow {
    pub noise: String,
    /// sigma (gaussian, speckle), amount (salt_pepper) or peak (poisson).
    pub level_name: String,
    pub level: f32,
    pub psnr: f64,
    pub noisy_psnr: f64,
    pub ssim: f64,
    pub noisy_ssim: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Mismatch {
    pub images: usize,
    pub trained_noise: String,
    pub trained_sigmas: [f32; 2],
    pub rows: Vec<MismatchRow>,
}

/// The model against every noise model on the first `eval.mismatch_images` test images.
pub fn mismatch(ctx: &Ctx, cfg: &Config, s: &Session, events: &mut dyn FnMut(Event)) -> Result<Mismatch> {
    let n = cfg.eval.mismatch_images.min(s.n);
    events(Event::Note(format!("noise-model mismatch: {n} test images, 4 noise models")));
    let set = EvalSet { dataset: &s.dataset, idx: &s.idx, n };
    let mut rows = Vec::new();
    for (kind, levels) in MISMATCH {
        let pass = Pass { kind, levels, batch: s.batch, lpips: None, hook: None, direct: false };
        let Some(scores) = crate::eval::score(ctx, cfg, &s.gm.model, &s.gm.weights, &set, pass, &mut |_| {})? else {
            return Err(Error::Msg("interrupted".into()));
        };
        for r in val_rows(cfg, &scores) {
            rows.push(MismatchRow {
                noise: noise_name(kind).into(),
                level_name: crate::eval::level_name(kind).into(),
                level: r.sigma,
                psnr: r.psnr,
                noisy_psnr: r.psnr_noisy,
                ssim: r.ssim,
                noisy_ssim: r.ssim_noisy,
            });
        }
    }
    let (lo, hi) = s.gm.config.noise.trained_range();
    Ok(Mismatch { images: n, trained_noise: noise_name(s.gm.config.noise.kind).into(), trained_sigmas: [lo, hi], rows })
}

/// The terminal table of a generation study.
pub fn generation_table(g: &Generation) -> String {
    let mut t = format!(
        "{:<40} {:>6} {:>8} {:>7} {:>9} {:>10} {:>6} {:>7} {:>6} {:>8} {:>8}\n",
        "set", "images", "nearest", "margin", "pairwise", "digit-like", "nn ok", "marg ok", "ink ok", "contr ok", "sharp ok"
    );
    let pct = |x: f64| format!("{:.0}%", 100.0 * x);
    for s in &g.sets {
        t += &format!(
            "{:<40} {:>6} {:>8.3} {:>7.3} {:>9.3} {:>10} {:>6} {:>7} {:>6} {:>8} {:>8}\n",
            s.name,
            s.images,
            s.mean_nn,
            s.mean_margin,
            s.mean_pairwise,
            pct(s.digit_like),
            pct(s.pass_nn),
            pct(s.pass_margin),
            pct(s.pass_ink),
            pct(s.pass_contrast),
            pct(s.pass_sharpness)
        );
    }
    t += &format!(
        "the {} reference test images: mean nearest-training distance {:.3}, {:.0}% digit-like; windows ({:.1}%..{:.1}% quantiles): nearest {:.2}..{:.2}, margin {:.2}..{:.2}, ink {:.3}..{:.3}, contrast {:.3}..{:.3}, sharpness {:.3}..{:.3}\n",
        g.reference_images,
        g.reference_nn,
        100.0 * g.reference_digit_like,
        100.0 * g.window_quantile,
        100.0 * (1.0 - g.window_quantile),
        g.windows.nn.lo,
        g.windows.nn.hi,
        g.windows.margin.lo,
        g.windows.margin.hi,
        g.windows.ink.lo,
        g.windows.ink.hi,
        g.windows.contrast.lo,
        g.windows.contrast.hi,
        g.windows.sharpness.lo,
        g.windows.sharpness.hi
    );
    t
}
