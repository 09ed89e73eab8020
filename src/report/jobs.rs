//! The jobs after training: `dae viz <figure>`, `dae compare limitations`, `dae report`
//! (evaluation, every figure and the limitations analysis in one go) and `dae compare runs`.

use std::path::{Path, PathBuf};

use super::figures::{self, PanelColumn, TrainPoint, ValPoint};
use super::html;
use super::study::{self, TrainSet};
use crate::analysis::generation::{Features, Generation};
use crate::analysis::{self, Collected, Collector, Limitations};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::eval::{EvalOptions, EvalResults, LevelScores, Session, images_at};
use crate::feed::{IMAGE_HW, IMAGE_LEN};
use crate::gpu::{Ctx, block_on};
use crate::ops::metrics::STAT_PSNR;
use crate::util::csvlog::{self, TrainLogRow, ValLogRow};
use crate::util::events::Event;

/// The figures `dae viz` draws.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Figure {
    ReconGrid,
    SigmaPanel,
    Cases,
    Curves,
    Frequency,
    Diversity,
    /// The live denoiser page (reports/demo.html).
    Demo,
}

/// Images a grid shows.
const GRID_IMAGES: usize = 8;

fn out_path(cfg: &Config, sub: &str, file: &str) -> PathBuf {
    Path::new(&cfg.out_dir).join(sub).join(file)
}

/// "0.3" as a file-name part.
fn level_tag(l: f32) -> String {
    format!("{l}").replace('-', "m")
}

/// The level closest to 0.3 (or the middle one for amounts / peaks): the one a single figure
/// shows.
fn main_level(s: &Session) -> usize {
    if s.level_name() == "sigma" {
        (0..s.levels.len()).min_by(|a, b| (s.levels[*a] - 0.3).abs().total_cmp(&(s.levels[*b] - 0.3).abs())).unwrap_or(0)
    } else {
        s.levels.len() / 2
    }
}

/// `grids/recon_grid_<level>.png` for every level: the first 8 test images.
fn recon_grids(ctx: &Ctx, cfg: &Config, s: &Session) -> Result<Vec<PathBuf>> {
    let nb = GRID_IMAGES.min(s.n);
    let mut out = Vec::new();
    for &l in &s.levels {
        let [c, n, r] = images_at(ctx, cfg, s.kind, &s.gm.model, &s.gm.weights, &s.set(), 0, nb, l, 0)?;
        let p = out_path(cfg, "grids", &format!("recon_grid_{}_{}.png", s.level_name(), level_tag(l)));
        figures::recon_grid(&p, &format!("test images at {} {} (rows: clean, noisy, reconstructed)", s.level_name(), l), [&c, &n, &r], nb, IMAGE_HW)?;
        out.push(p);
    }
    Ok(out)
}

/// `panels/sigma_panel_<k>.png` for test images 0 and 1: each across every level.
fn sigma_panels(ctx: &Ctx, cfg: &Config, s: &Session) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for k in 0..2.min(s.n) {
        let mut cols = Vec::new();
        let mut clean = Vec::new();
        for &l in &s.levels {
            let [c, n, r] = images_at(ctx, cfg, s.kind, &s.gm.model, &s.gm.weights, &s.set(), k, 1, l, 0)?;
            let cap = crate::ops::metrics::PSNR_CAP as f64;
            cols.push(PanelColumn {
                level: l,
                psnr: crate::metrics::psnr(&r, &c, cap),
                noisy_psnr: crate::metrics::psnr(&n, &c, cap),
                noisy: n,
                recon: r,
            });
            clean = c;
        }
        let p = out_path(cfg, "panels", &format!("sigma_panel_{k}.png"));
        figures::sigma_panel(&p, &format!("test image {k} across the levels (PSNR under each)"), &clean, &cols, s.level_name(), IMAGE_HW)?;
        out.push(p);
    }
    Ok(out)
}

/// `grids/best_cases.png` and `worst_cases.png` by per-image PSNR at the main level.
fn cases(ctx: &Ctx, cfg: &Config, s: &Session, scores: &[LevelScores]) -> Result<Vec<PathBuf>> {
    let li = main_level(s);
    let level = s.levels[li];
    let psnr: Vec<f32> = scores[li].recon.0.iter().map(|v| v[STAT_PSNR]).collect();
    let mut order: Vec<usize> = (0..psnr.len()).collect();
    order.sort_by(|a, b| psnr[*b].total_cmp(&psnr[*a]).then(a.cmp(b)));
    let k = cfg.eval.cases.min(order.len());
    let mut out = Vec::new();
    for (name, picks) in [("best", order[..k].to_vec()), ("worst", order[order.len() - k..].iter().rev().cloned().collect::<Vec<_>>())] {
        let (mut c, mut n, mut r) = (Vec::new(), Vec::new(), Vec::new());
        for &i in &picks {
            let [ci, ni, ri] = images_at(ctx, cfg, s.kind, &s.gm.model, &s.gm.weights, &s.set(), i, 1, level, 0)?;
            c.extend(ci);
            n.extend(ni);
            r.extend(ri);
        }
        let ps: Vec<f64> = picks.iter().map(|&i| psnr[i] as f64).collect();
        let p = out_path(cfg, "grids", &format!("{name}_cases.png"));
        figures::cases(
            &p,
            &format!(
                "the {k} {name} test images by PSNR at {} {level} (image {})",
                s.level_name(),
                picks.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(", ")
            ),
            [&c, &n, &r],
            &ps,
            IMAGE_HW,
        )?;
        out.push(p);
    }
    Ok(out)
}

/// A run's CSV logs: (train points, validation points, warnings about torn last lines). A log
/// with no training row is an error: there is nothing to draw.
pub fn read_logs(out_dir: &Path) -> Result<(Vec<TrainPoint>, Vec<ValPoint>, Vec<String>)> {
    let logs = out_dir.join("logs");
    let mut warnings = Vec::new();
    let tp = logs.join("train_metrics.csv");
    let train: Vec<TrainPoint> = csvlog::read::<TrainLogRow>(&tp, &mut warnings)?.into_iter().map(|r| (r.step as f64, r.loss, r.lr)).collect();
    if train.is_empty() {
        return Err(Error::Msg(format!("{} holds no training rows: the run logged no step", tp.display())));
    }
    let val = csvlog::read::<ValLogRow>(&logs.join("val_metrics.csv"), &mut warnings)?
        .into_iter()
        .map(|r| (r.epoch as f64, r.sigma, r.psnr, r.psnr_noisy))
        .collect();
    Ok((train, val, warnings))
}

fn curves(cfg: &Config, events: &mut dyn FnMut(Event)) -> Result<PathBuf> {
    let (train, val, warnings) = read_logs(Path::new(&cfg.out_dir))?;
    for w in warnings {
        events(Event::Warning(w));
    }
    let p = out_path(cfg, "reports", "training_curves.png");
    figures::training_curves(&p, &format!("training of {}", cfg.out_dir), &train, &val)?;
    Ok(p)
}

/// Mean radial profile over images (profiles [n, bins]).
fn mean_profile(prof: &[f32], bins: usize) -> Vec<f64> {
    let n = (prof.len() / bins).max(1) as f64;
    (0..bins).map(|k| prof.chunks(bins).map(|c| c[k] as f64).sum::<f64>() / n).collect()
}

fn frequency(cfg: &Config, s: &Session, col: &Collected) -> Result<PathBuf> {
    let recon_logs: Vec<(f32, Vec<f32>)> = s.levels.iter().zip(&col.levels).map(|(l, v)| (*l, v.2.clone())).collect();
    let recon_profs: Vec<(f32, Vec<f64>)> = s.levels.iter().zip(&col.levels).map(|(l, v)| (*l, mean_profile(&v.1, col.bins))).collect();
    let p = out_path(cfg, "reports", "frequency_analysis.png");
    figures::frequency(
        &p,
        &format!("spectra of {} test images: clean against reconstructed", s.n),
        &col.clean_log,
        &recon_logs,
        IMAGE_HW,
        &mean_profile(&col.clean_prof, col.bins),
        &recon_profs,
    )?;
    Ok(p)
}

/// Diversity collapse over eval.diversity_images test images (and its demo figure of image 0).
fn diversity(ctx: &Ctx, cfg: &Config, s: &Session, draw_figure: bool) -> Result<(analysis::Diversity, Option<PathBuf>)> {
    let e = &cfg.eval;
    let (sigma, draws) = (e.diversity_sigma, e.diversity_draws);
    let (mut out_mse, mut in_mse) = (Vec::new(), Vec::new());
    let mut fig = None;
    for k in 0..e.diversity_images.min(s.n) {
        let (mut noisy, mut recon, mut clean) = (Vec::new(), Vec::new(), Vec::new());
        for d in 0..draws {
            let [c, n, r] = images_at(ctx, cfg, s.kind, &s.gm.model, &s.gm.weights, &s.set(), k, 1, sigma, d as u32)?;
            noisy.extend(n);
            recon.extend(r);
            clean = c;
        }
        out_mse.push(analysis::mean_pairwise_mse(&recon, draws, IMAGE_LEN));
        in_mse.push(analysis::mean_pairwise_mse(&noisy, draws, IMAGE_LEN));
        if k == 0 && draw_figure {
            let p = out_path(cfg, "grids", "diversity_collapse_demo.png");
            let title = format!(
                "one test image, {draws} noise draws at {} {sigma}, {draws} reconstructions (mean pairwise MSE {:.1e})",
                s.level_name(),
                out_mse[0]
            );
            figures::diversity(&p, &title, &clean, &noisy, &recon, draws, IMAGE_HW)?;
            fig = Some(p);
        }
    }
    Ok((analysis::diversity(sigma, draws, &out_mse, &in_mse), fig))
}

/// Mode averaging: outputs at eval.mode_sigma against the real test images (`reference`, the
/// first eval.mode_images), each by its distance to the nearest image of the training file
/// (searched class by class).
fn mode_averaging(
    ctx: &Ctx,
    cfg: &Config,
    s: &Session,
    train: &TrainSet,
    reference: &[Features],
    events: &mut dyn FnMut(Event),
) -> Result<analysis::ModeAveraging> {
    let m = reference.len();
    events(Event::Note(format!("mode averaging: {m} outputs at {} {} against {} training images", s.level_name(), cfg.eval.mode_sigma, train.count)));
    let mut outs = Vec::with_capacity(m * IMAGE_LEN);
    let b = 64;
    let mut start = 0;
    while start < m {
        if crate::util::signal::interrupted().is_some() {
            return Err(Error::Msg("interrupted".into()));
        }
        let nb = b.min(m - start);
        let (_, _, recon) = crate::eval::denoise_at(ctx, cfg, s.kind, &s.gm.model, &s.gm.weights, &s.set(), start, nb, cfg.eval.mode_sigma, 0)?;
        outs.extend(block_on(recon.to_vec())?);
        start += nb;
    }
    let out_f = crate::analysis::generation::features(ctx, &outs, &train.by_class())?;
    let nn = |f: &[Features]| f.iter().map(|x| x.nn as f32).collect::<Vec<f32>>();
    Ok(analysis::mode_averaging(cfg.eval.mode_sigma, train.count, &nn(&out_f), &nn(reference)))
}

/// What `dae report` / `dae compare limitations` wrote.
pub struct Written {
    pub eval: Option<EvalResults>,
    pub limitations: Limitations,
    pub generation: Option<Generation>,
    pub files: Vec<PathBuf>,
    /// Seconds each section beyond SPEC's limitations took (generation, out of distribution,
    /// noise mismatch).
    pub study_secs: Vec<(String, f64)>,
}

/// limitations_analysis.json: the limitations, and in `dae report` the study's sections.
#[derive(serde::Serialize)]
struct ReportJson<'a> {
    #[serde(flatten)]
    limitations: &'a Limitations,
    #[serde(skip_serializing_if = "Option::is_none")]
    generation: Option<&'a Generation>,
    #[serde(skip_serializing_if = "Option::is_none")]
    out_of_distribution: Option<&'a study::Ood>,
    #[serde(skip_serializing_if = "Option::is_none")]
    noise_mismatch: Option<&'a study::Mismatch>,
}

/// `dae report` (everything: `full`) or `dae compare limitations` (the analysis and the figures
/// its page embeds). `None` when interrupted; nothing half-written is left (each file appears
/// whole or not at all).
pub fn analyse(ctx: &Ctx, cfg: &Config, opts: &EvalOptions, full: bool, events: &mut dyn FnMut(Event)) -> Result<Option<Written>> {
    // The passes after scoring (mode averaging, the study's sections) stop with an error at an
    // interrupt: that is an interrupted job, not a failed one.
    match analyse_all(ctx, cfg, opts, full, events) {
        Err(_) if crate::util::signal::interrupted().is_some() => Ok(None),
        r => r,
    }
}

fn analyse_all(ctx: &Ctx, cfg: &Config, opts: &EvalOptions, full: bool, events: &mut dyn FnMut(Event)) -> Result<Option<Written>> {
    let job = if full { "dae report" } else { "dae compare limitations" };
    let s = Session::open(ctx, cfg, opts, job, events)?;
    events(Event::Note(format!("{job}: {}", s.describe())));
    let mut col = Collector::new(ctx, s.n, s.levels.len(), IMAGE_HW)?;
    let Some((scores, secs)) = s.score(ctx, cfg, events, full, Some(&mut col))? else { return Ok(None) };
    let collected = col.finish(ctx)?;
    let mut files = Vec::new();
    let eval = if full {
        let res = s.results(cfg, &scores, secs);
        let p = out_path(cfg, "logs", "evaluation_results.json");
        crate::eval::write_json(&p, &res)?;
        files.push(p);
        Some(res)
    } else {
        None
    };
    events(Event::Note("figures and the limitations analysis...".into()));
    let mut figs: Vec<(String, PathBuf, String)> = Vec::new();
    if full {
        for p in recon_grids(ctx, cfg, &s)? {
            figs.push(("Reconstructions".into(), p, "Rows: clean, noisy, reconstructed; the first test images.".into()));
        }
        for p in sigma_panels(ctx, cfg, &s)? {
            figs.push(("One image across the noise levels".into(), p, "Noisy above reconstructed, PSNR under each.".into()));
        }
        for p in cases(ctx, cfg, &s, &scores)? {
            figs.push(("Best and worst cases".into(), p, "By the reconstruction's PSNR at the level nearest sigma 0.3.".into()));
        }
        match curves(cfg, events) {
            Ok(p) => figs.push((
                "Training curves".into(),
                p,
                "Training loss and learning rate by step; validation PSNR by epoch (dashed: the noisy input).".into(),
            )),
            Err(e) => events(Event::Note(format!("no training curves: {e}"))),
        }
    }
    let fp = frequency(cfg, &s, &collected)?;
    figs.push(("Frequency analysis".into(), fp, "Mean log-magnitude spectra (zero frequency at the centre) and radial profiles.".into()));
    let (div, dfig) = diversity(ctx, cfg, &s, true)?;
    if let Some(p) = dfig {
        figs.push(("Diversity collapse".into(), p, "Different noise draws of one image all map to nearly the same output.".into()));
    }
    let train = TrainSet::load(ctx, cfg, opts.data_dir.as_deref(), events)?;
    let reference = study::reference_features(ctx, cfg, &s, &train)?;
    let mode = mode_averaging(ctx, cfg, &s, &train, &reference, events)?;
    let smoothing: Vec<analysis::Smoothing> =
        s.levels.iter().zip(&collected.levels).map(|(l, lv)| analysis::smoothing(*l, &lv.0, &collected.clean_stats)).collect();
    let frequency: Vec<(f32, f64)> =
        s.levels.iter().zip(&collected.levels).map(|(l, lv)| (*l, analysis::high_freq_ratio(&lv.1, &collected.clean_prof, collected.bins))).collect();
    let mean_of = |v: &mut dyn Iterator<Item = f64>| crate::eval::mean(v);
    let smoothing_score = mean_of(&mut smoothing.iter().map(|x| x.smoothing_score));
    let high_freq_ratio = mean_of(&mut frequency.iter().map(|x| x.1));
    let vr = crate::eval::val_rows(cfg, &scores);
    let lim = Limitations {
        checkpoint: s.path.display().to_string(),
        weights: s.weights.clone(),
        dataset: crate::feed::spec(cfg.data.dataset).name.to_string(),
        noise: crate::eval::noise_name(s.kind).to_string(),
        n_images: s.n,
        overall_limitation_score: analysis::overall(smoothing_score, div.collapse, high_freq_ratio),
        smoothing,
        smoothing_score,
        frequency,
        high_freq_ratio,
        diversity: div,
        mode_averaging: mode,
        baseline: vr
            .iter()
            .map(|r| analysis::Baseline { sigma: r.sigma, psnr: r.psnr, noisy_psnr: r.psnr_noisy, ssim: r.ssim, noisy_ssim: r.ssim_noisy })
            .collect(),
    };
    let mut page = html::Study::default();
    let mut study_secs = Vec::new();
    if full {
        let t = std::time::Instant::now();
        let (g, gp) = study::generation(ctx, cfg, &s, &train, &reference, events)?;
        study_secs.push(("generation from noise".to_string(), t.elapsed().as_secs_f64()));
        page.generation = Some((g, read_png(&gp)?));
        files.push(gp);
        let t = std::time::Instant::now();
        let (o, op) = study::ood(ctx, cfg, opts, &s, Some(&vr), events)?;
        study_secs.push(("out of distribution".to_string(), t.elapsed().as_secs_f64()));
        page.ood = Some((o, op.as_deref().map(read_png).transpose()?));
        files.extend(op);
        let t = std::time::Instant::now();
        page.mismatch = Some(study::mismatch(ctx, cfg, &s, events)?);
        study_secs.push(("noise-model mismatch".to_string(), t.elapsed().as_secs_f64()));
    }
    let jp = out_path(cfg, "reports", "limitations_analysis.json");
    let doc = ReportJson {
        limitations: &lim,
        generation: page.generation.as_ref().map(|g| &g.0),
        out_of_distribution: page.ood.as_ref().map(|o| &o.0),
        noise_mismatch: page.mismatch.as_ref(),
    };
    crate::eval::write_json(&jp, &doc)?;
    let mut embedded = Vec::new();
    for (t, p, c) in &figs {
        embedded.push((t.clone(), read_png(p)?, c.clone()));
    }
    if full {
        files.push(super::demo::write(cfg, &s)?);
        page.demo = true;
    }
    let hp = out_path(cfg, "reports", "limitations_analysis.html");
    crate::checkpoint::write_file(&hp, html::page(&lim, eval.as_ref(), &embedded, &page).as_bytes())?;
    files.extend(figs.into_iter().map(|f| f.1));
    files.push(jp);
    files.push(hp);
    Ok(Some(Written { eval, limitations: lim, generation: page.generation.map(|g| g.0), files, study_secs }))
}

fn read_png(p: &Path) -> Result<Vec<u8>> {
    std::fs::read(p).map_err(|e| Error::Msg(format!("cannot read back {}: {e}", p.display())))
}

/// `dae viz <figure>`: one figure. `None` when interrupted.
pub fn viz(ctx: &Ctx, cfg: &Config, opts: &EvalOptions, fig: Figure, events: &mut dyn FnMut(Event)) -> Result<Option<Vec<PathBuf>>> {
    if fig == Figure::Curves {
        return Ok(Some(vec![curves(cfg, events)?]));
    }
    let s = Session::open(ctx, cfg, opts, "dae viz", events)?;
    Ok(Some(match fig {
        Figure::ReconGrid => recon_grids(ctx, cfg, &s)?,
        Figure::SigmaPanel => sigma_panels(ctx, cfg, &s)?,
        Figure::Diversity => diversity(ctx, cfg, &s, true)?.1.into_iter().collect(),
        Figure::Demo => vec![super::demo::write(cfg, &s)?],
        Figure::Cases => {
            let Some((scores, _)) = s.score(ctx, cfg, events, false, None)? else { return Ok(None) };
            cases(ctx, cfg, &s, &scores)?
        }
        Figure::Frequency => {
            let mut col = Collector::new(ctx, s.n, s.levels.len(), IMAGE_HW)?;
            let Some(_) = s.score(ctx, cfg, events, false, Some(&mut col))? else { return Ok(None) };
            vec![frequency(cfg, &s, &col.finish(ctx)?)?]
        }
        Figure::Curves => unreachable!("handled above"),
    }))
}

/// `dae compare runs DIR...`: the evaluation tables of several runs side by side (from each
/// DIR/logs/evaluation_results.json) and their validation curves overlaid in `out`.
pub fn compare_runs(dirs: &[PathBuf], out: &Path) -> Result<String> {
    if dirs.len() < 2 {
        return Err(Error::Config(format!("compare runs needs at least two run folders, got {}", dirs.len())));
    }
    let mut evals = Vec::new();
    let mut curves = Vec::new();
    for d in dirs {
        let p = d.join("logs/evaluation_results.json");
        let text =
            std::fs::read_to_string(&p).map_err(|e| Error::Msg(format!("cannot read {}: {e} (run dae eval on that folder first)", p.display())))?;
        let r: EvalResults = serde_json::from_str(&text).map_err(|e| Error::Msg(format!("{}: not an evaluation result: {e}", p.display())))?;
        evals.push((d.display().to_string(), r));
        if let Ok((_, val, _)) = read_logs(d) {
            curves.push((d.display().to_string(), val));
        }
    }
    let mut levels: Vec<(String, f32)> = evals.iter().flat_map(|(_, r)| r.results.iter().map(|x| (x.noise.clone(), x.sigma))).collect();
    levels.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
    levels.dedup();
    let mut t = format!("{:<12} {:>6}", "noise", "level");
    for (name, _) in &evals {
        t += &format!(" | {:>28}", trim_left(name, 28));
    }
    t += "\n";
    t += &format!("{:<12} {:>6}", "", "");
    for _ in &evals {
        t += &format!(" | {:>9} {:>9} {:>8}", "PSNR dB", "noisy dB", "SSIM");
    }
    t += "\n";
    for (noise, l) in &levels {
        t += &format!("{:<12} {:>6}", noise, l);
        for (_, r) in &evals {
            match r.results.iter().find(|x| &x.noise == noise && x.sigma == *l) {
                Some(x) => t += &format!(" | {:>9.2} {:>9.2} {:>8.4}", x.psnr, x.noisy_psnr, x.ssim),
                None => t += &format!(" | {:>28}", "-"),
            }
        }
        t += "\n";
    }
    if curves.len() >= 2 {
        let p = out.join("compare_runs_curves.png");
        figures::compare_curves(&p, &curves)?;
        t += &format!("validation curves overlaid: {}\n", p.display());
    }
    Ok(t)
}

fn trim_left(s: &str, n: usize) -> String {
    let c: Vec<char> = s.chars().collect();
    if c.len() <= n { s.to_string() } else { format!("...{}", c[c.len() - (n - 3)..].iter().collect::<String>()) }
}
