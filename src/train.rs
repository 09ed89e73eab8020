//! `dae train`: the data on the GPU, the step loop (one submit per step, no host wait inside it),
//! per-epoch validation with the EMA weights, CSV logs, checkpoints, `--resume`, Ctrl-C and
//! NaN handling.
//!
//! One step: gather the batch from the dataset on the GPU through the epoch's permutation, make
//! the noisy input with Philox keyed by (seed, epoch, step), forward, loss, backward into the
//! gradient arena, the global grad norm, one fused optimiser dispatch, one EMA dispatch, and two
//! tiny copies of the loss and the grad norm into a log buffer that is read every `log_every`
//! steps. Every computation is deterministic (fixed reduction orders, counter-based RNG), so a
//! resumed run ends bit-identical to an uninterrupted one.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::autograd::Graph;
use crate::checkpoint::{self, HostWeights};
use crate::config::{Config, LossTerm, parse_loss};
use crate::error::{Error, Result};
use crate::eval::{self, ValRow};
use crate::feed::{IMAGE_HW, IMAGE_LEN, data_dir, load_images, noise_params, pack_u8, permutation, pixel_terms, spec, split};
use crate::gpu::Plan;
use crate::gpu::{Ctx, View, block_on};
use crate::nn::model::Fwd;
use crate::nn::{Layout, Model, Weights};
use crate::ops::data::{DataParams, data_gather, data_noise};
use crate::ops::dropout2d::Dropout2dParams;
use crate::ops::elementwise::{ElementwiseParams, copy_offset, fill};
use crate::ops::kernels::Kernels;
use crate::optim::schedule::Schedule;
use crate::optim::{Hyper, LossScaler, Optimizer, ema_update_unless_skipped, loss_seed};
use crate::tensor::Tensor;
use crate::util::csvlog::{self, TrainLogRow, ValLogRow, round, round_sig};
use crate::util::signal;

#[derive(Clone, Debug, Default)]
pub struct TrainOptions {
    /// Folder holding the IDX files (overrides DAE_DATA_DIR and data.root).
    pub data_dir: Option<PathBuf>,
    pub resume: bool,
    /// Validate and pick best_model with the raw weights instead of the EMA.
    pub no_ema: bool,
    /// Print progress (bar and per-epoch lines) to stderr.
    pub verbose: bool,
    /// Behave as if Ctrl-C came once this many steps are done (tests of the interrupt path).
    pub stop_after: Option<u64>,
    /// Delete the logs, checkpoints and figures a previous run left in out_dir and start over.
    pub overwrite: bool,
    /// Crash injection (tests): abort at the N-th checkpoint write point after epoch E's steps.
    pub crash_at: Option<(usize, u64)>,
    /// Encode every step anew instead of replaying the recorded plan (tests compare the two).
    pub direct: bool,
    /// Send this process a real SIGINT at a point of the last epoch's end (tests of late
    /// interrupts; the hidden `dae train --raise-at`).
    pub raise_at: Option<RaiseAt>,
}

pub use crate::util::events::Event;

/// Where `TrainOptions::raise_at` interrupts the last epoch's end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RaiseAt {
    /// After the first validation batch.
    Validation,
    /// Just before the checkpoint saves.
    Save,
}

#[derive(Clone, Debug)]
pub struct Summary {
    pub steps: u64,
    pub epochs_done: usize,
    /// The exit status of the interrupt that stopped the run (130 SIGINT, 143 SIGTERM).
    pub interrupted: Option<u8>,
    pub last_val: Vec<ValRow>,
    pub best_psnr: f64,
    pub images_per_s: f64,
    /// Under amp: the loss scale at the end and the steps the scaler skipped (whole run).
    pub amp: Option<(f32, u64)>,
    /// False when an interrupt cut the last epoch's validation short (`--resume` runs it).
    pub validated: bool,
    /// `--resume` found the run finished: nothing was trained.
    pub already_finished: bool,
}

/// The slots of the recorded training step (see [`Trainer::step_values`]).
const SLOT_BATCH: &str = "batch";
const SLOT_NOISE: &str = "noise";
const SLOT_LOG_LOSS: &str = "log: loss";
const SLOT_LOG_NORM: &str = "log: squared grad norm";

/// What changes from one training step to the next.
struct StepValues {
    /// The batch's first position in the epoch's permutation.
    start: usize,
    noise: DataParams,
    lr: f32,
    /// The log buffer's slots of the loss and of the squared grad norm.
    log_loss: usize,
    log_norm: usize,
}

/// Everything the run keeps on the GPU, and where it is in the run.
pub struct Trainer {
    pub ctx: Ctx,
    /// How the step's ops run their kernels: `DAE_KERNELS`'s pins, f16 operands under amp.
    pub kernels: Kernels,
    pub cfg: Config,
    pub model: Model,
    pub layout: Layout,
    pub params: View,
    pub grads: View,
    pub ema: View,
    pub buffers: View,
    /// EMA of the batch-norm running statistics, used with the EMA weights (as timm's ModelEma).
    pub ema_buffers: View,
    pub opt: Optimizer,
    train_w: Weights,
    ema_w: Weights,
    raw_w: Weights,
    dataset: View,
    train_idx: Vec<u32>,
    val_idx: View,
    val_len: usize,
    /// Optimiser steps done.
    pub step: u64,
    /// Epochs fully done.
    pub epoch: usize,
    /// Steps done inside the current epoch.
    pub step_in_epoch: usize,
    pub best_psnr: f64,
    pub batches_tracked: i64,
    schedule: Schedule,
    out: PathBuf,
    /// The perceptual loss's network and weight, when train.loss has that term.
    vgg: Option<(crate::nn::vgg::Vgg, f32)>,
    /// The training split's order this epoch (one buffer for the run: the step plan binds it).
    perm: View,
    /// The recorded training step, after the first step (recorded anew while autotune has
    /// shapes of it to time: `Ctx::retune`).
    plan: Option<Plan>,
    direct: bool,
    /// Whether the epochs done have been validated (false after an interrupt cut the last
    /// one's validation short; saved in the state file).
    validated: bool,
}

impl Trainer {
    /// `figures/recon_epoch_NNN.png`: the first 8 validation images at the test sigma closest
    /// to 0.3, rows clean | noisy | reconstructed (EMA or raw weights as validation uses).
    fn recon_grid(&self, use_ema: bool) -> Result<()> {
        let w = if use_ema { &self.ema_w } else { &self.raw_w };
        let lv = eval::eval_levels(&self.cfg);
        let li = (0..lv.len()).min_by(|a, b| (lv[*a] - 0.3).abs().total_cmp(&(lv[*b] - 0.3).abs())).unwrap_or(0);
        let nb = 8.min(self.val_len);
        let set = eval::EvalSet { dataset: &self.dataset, idx: &self.val_idx, n: self.val_len };
        let [c, n, r] = eval::images_at(&self.ctx, &self.cfg, self.cfg.noise.kind, &self.model, w, &set, 0, nb, lv[li], 0)?;
        let path = self.out.join("figures").join(format!("recon_epoch_{:03}.png", self.epoch));
        let title = format!("epoch {}: validation images at {} {}", self.epoch, eval::level_name(self.cfg.noise.kind), lv[li]);
        crate::report::figures::recon_grid(&path, &title, [&c, &n, &r], nb, IMAGE_HW)
    }

    pub fn steps_per_epoch(&self) -> usize {
        steps_per_epoch(&self.cfg, self.train_idx.len())
    }

    /// Every epoch trained and validated.
    pub fn finished(&self) -> bool {
        self.epoch >= self.cfg.train.epochs && self.validated
    }
}

pub fn steps_per_epoch(cfg: &Config, n_train: usize) -> usize {
    let full = n_train / cfg.train.batch_size;
    cfg.train.max_steps_per_epoch.map_or(full, |m| m.min(full))
}

impl Trainer {
    /// Set up a run: data on the GPU, model, arenas, optimiser (and the `last` checkpoint when resuming).
    pub fn new(ctx: &Ctx, cfg: &Config, opts: &TrainOptions, events: &mut dyn FnMut(Event)) -> Result<Trainer> {
        if cfg.model.in_ch != 1 || cfg.model.out_ch != 1 {
            return Err(Error::Config(format!(
                "model.in_ch and model.out_ch must be 1 for {} (grey images), got {} and {}",
                spec(cfg.data.dataset).name,
                cfg.model.in_ch,
                cfg.model.out_ch
            )));
        }
        let dir = data_dir(cfg, opts.data_dir.as_deref());
        let images = load_images(cfg, &dir, true, &mut |m| events(Event::Note(m.to_string())))?;
        Trainer::on_images(ctx, cfg, opts, &images, events)
    }

    /// A run on images already in memory (split into training and validation as the config
    /// says): `dae train`'s, and the synthetic images `dae bench --models` times the step on.
    pub fn on_images(
        ctx: &Ctx,
        cfg: &Config,
        opts: &TrainOptions,
        images: &crate::data::IdxImages,
        events: &mut dyn FnMut(Event),
    ) -> Result<Trainer> {
        let (train_idx, val_idx) = split(cfg, images.count)?;
        let spe = steps_per_epoch(cfg, train_idx.len());
        if spe == 0 {
            return Err(Error::Config(format!(
                "train.batch_size {} is larger than the {} training images: no full batch",
                cfg.train.batch_size,
                train_idx.len()
            )));
        }
        let dataset = ctx.upload_u32("dataset", &pack_u8(&images.pixels))?;
        let perm = ctx.alloc("epoch permutation", train_idx.len())?;
        let val_len = val_idx.len();
        let val_v = ctx.upload_u32("val indices", &val_idx)?;

        let (model, layout) = Model::new(&cfg.model)?;
        fits_adapter(ctx, cfg, layout.param_len())?;
        let (p0, b0) = layout.init(cfg.seed);
        let params = ctx.upload("params", &p0)?;
        let ema = ctx.upload("ema", &p0)?;
        let buffers = ctx.upload("buffers", &b0)?;
        let ema_buffers = ctx.upload("ema buffers", &b0)?;
        let grads = ctx.alloc("grads", layout.param_len())?;
        fill(ctx, &grads, 0.0)?;
        let t = &cfg.train;
        let hyper = Hyper {
            kind: t.optimizer,
            beta1: t.betas[0],
            beta2: t.betas[1],
            eps: t.eps,
            weight_decay: t.weight_decay,
            momentum: t.momentum,
            grad_clip: t.grad_clip,
        };
        let mut opt = Optimizer::new(ctx, layout.param_len(), hyper)?;
        if t.amp && ctx.gpu().has_f16() {
            opt.scaler = Some(LossScaler::new(ctx, t.amp_init_scale, t.amp_growth_interval)?);
        }
        let train_w = Weights::views(ctx, &layout, &params, Some(&grads), &buffers)?;
        let ema_w = Weights::views(ctx, &layout, &ema, None, &ema_buffers)?;
        let raw_w = Weights::views(ctx, &layout, &params, None, &buffers)?;
        let total = (spe * t.epochs) as u64;
        let schedule = Schedule {
            kind: t.lr_schedule,
            base_lr: t.lr,
            warmup_steps: (t.warmup_epochs * spe as f64).round() as u64,
            total_steps: total,
            eta_min: 0.01 * t.lr,
            step_size: (t.step_epochs * spe) as u64,
            gamma: t.gamma,
        };
        let out = PathBuf::from(&cfg.out_dir);
        let vgg = match parse_loss(&t.loss).map_err(Error::Config)?.into_iter().find(|(_, k)| *k == LossTerm::Perceptual) {
            Some((w, _)) => {
                let pc = t.perceptual.as_ref().ok_or_else(|| Error::Config("train.loss uses perceptual but train.perceptual is not set".into()))?;
                Some((crate::nn::vgg::Vgg::load(ctx, pc)?, w))
            }
            None => None,
        };
        let mut tr = Trainer {
            ctx: ctx.clone(),
            kernels: Kernels::from_env()?,
            cfg: cfg.clone(),
            model,
            layout,
            params,
            grads,
            ema,
            buffers,
            ema_buffers,
            opt,
            train_w,
            ema_w,
            raw_w,
            dataset,
            train_idx,
            val_idx: val_v,
            val_len,
            step: 0,
            epoch: 0,
            step_in_epoch: 0,
            best_psnr: f64::NEG_INFINITY,
            batches_tracked: 0,
            schedule,
            out,
            vgg,
            perm,
            plan: None,
            direct: opts.direct,
            validated: true,
        };
        if opts.resume {
            tr.resume(events)?;
        }
        Ok(tr)
    }

    /// The end of an epoch whose steps are done: validate (EMA or raw weights), log the rows,
    /// keep best_model, save `last` (and `epoch_NNN`), draw the epoch's figure. `None` when an
    /// interrupt stopped the validation: `last` is saved marked unvalidated, and `--resume`
    /// validates this epoch before it trains on.
    fn end_epoch(&mut self, opts: &TrainOptions, ips: f64, events: &mut dyn FnMut(Event)) -> Result<Option<Vec<ValRow>>> {
        let cfg = self.cfg.clone();
        let hook = opts.raise_at == Some(RaiseAt::Validation) && self.epoch == cfg.train.epochs;
        let val =
            self.validate(!opts.no_ema, hook).map_err(|e| e.limit_in_terms_of("train.batch_size (validation batches)", cfg.train.batch_size))?;
        let Some(val) = val else {
            self.validated = false;
            self.save("last")?;
            events(Event::Note(format!(
                "interrupted during epoch {}'s validation: saved {} at step {}; --resume validates this epoch first",
                self.epoch,
                self.ckpt_dir().join("last.safetensors").display(),
                self.step
            )));
            return Ok(None);
        };
        self.validated = true;
        let mean_psnr = val.iter().map(|r| r.psnr).sum::<f64>() / val.len() as f64;
        let rows: Vec<ValLogRow> = val
            .iter()
            .map(|r| ValLogRow {
                epoch: self.epoch as u64,
                sigma: r.sigma,
                val_loss: round(r.loss, 6),
                psnr: round(r.psnr, 4),
                ssim: round(r.ssim, 5),
                psnr_noisy: round(r.psnr_noisy, 4),
                ssim_noisy: round(r.ssim_noisy, 5),
            })
            .collect();
        csvlog::append(&self.logs_dir().join(VAL_CSV), &rows)?;
        let line = val
            .iter()
            .map(|r| format!("s{}: {:.2} dB (noisy {:.2}) ssim {:.3}", r.sigma, r.psnr, r.psnr_noisy, r.ssim))
            .collect::<Vec<_>>()
            .join(" | ");
        let amp = match self.scaler_state()? {
            Some((scale, skipped)) => format!(" | amp: loss scale {scale}, {skipped} steps skipped"),
            None => String::new(),
        };
        events(Event::Note(format!("epoch {}/{} val {} | {:.0} img/s{amp}", self.epoch, cfg.train.epochs, line, ips)));
        if mean_psnr > self.best_psnr {
            self.best_psnr = mean_psnr;
            self.save_best(!opts.no_ema, mean_psnr)?;
        }
        if opts.raise_at == Some(RaiseAt::Save) && self.epoch == cfg.train.epochs {
            signal::raise_real();
        }
        self.save("last")?;
        if self.epoch.is_multiple_of(cfg.train.save_every) {
            self.save(&format!("epoch_{:03}", self.epoch))?;
        }
        if self.epoch.is_multiple_of(cfg.train.viz_every) || self.epoch == cfg.train.epochs {
            self.recon_grid(!opts.no_ema)?;
        }
        Ok(Some(val))
    }

    fn ckpt_dir(&self) -> PathBuf {
        self.out.join("ckpts")
    }

    fn logs_dir(&self) -> PathBuf {
        self.out.join("logs")
    }

    fn host_weights(&self, arena: &View, buffers: &View) -> Result<HostWeights> {
        Ok(HostWeights { params: block_on(self.ctx.read(arena))?, buffers: block_on(self.ctx.read(buffers))?, batches_tracked: self.batches_tracked })
    }

    fn meta(&self, kind: &str) -> std::collections::HashMap<String, String> {
        let mut m = checkpoint::base_meta(&self.cfg.to_yaml(), &self.ctx.gpu().info.name, self.step, kind);
        m.insert("epoch".into(), self.epoch.to_string());
        m.insert("step_in_epoch".into(), self.step_in_epoch.to_string());
        m.insert("num_params".into(), self.layout.num_params().to_string());
        // The autotune choices this run's kernels use; --resume pins them.
        if let Ok(k) = serde_json::to_string(&self.ctx.tuner().choices()) {
            m.insert("kernels".into(), k);
        }
        m
    }

    /// Write the `stem` checkpoint set (raw, EMA and optimiser state files, made visible
    /// together by its manifest).
    pub fn save(&self, stem: &str) -> Result<()> {
        let dir = self.ckpt_dir();
        let raw = self.host_weights(&self.params, &self.buffers)?;
        let ema = self.host_weights(&self.ema, &self.ema_buffers)?;
        let m = block_on(self.ctx.read(&self.opt.m))?;
        let v = block_on(self.ctx.read(&self.opt.v))?;
        // A finite loss does not prove finite weights (the last update of an epoch is checked by
        // no loss): never replace a good checkpoint with a broken one.
        self.refuse_non_finite(
            stem,
            &[
                ("weights", &raw.params),
                ("batch-norm running statistics", &raw.buffers),
                ("EMA weights", &ema.params),
                ("Adam moments", &m),
                ("Adam moments", &v),
            ],
        )?;
        let scaler = match &self.opt.scaler {
            Some(s) => Some(block_on(self.ctx.read(&s.state))?),
            None => None,
        };
        let mut arenas: Vec<(&str, &[f32])> = vec![("m", &m), ("v", &v)];
        if let Some(s) = &scaler {
            arenas.push(("amp_scaler", s));
        }
        let mut state_meta = self.meta("state");
        state_meta.insert("opt_t".into(), self.opt.t.to_string());
        state_meta.insert("best_psnr".into(), self.best_psnr.to_string());
        state_meta.insert("batches_tracked".into(), self.batches_tracked.to_string());
        if !self.validated {
            state_meta.insert("validated".into(), "false".into());
        }
        checkpoint::write_set(
            &dir,
            stem,
            self.step,
            [
                (checkpoint::weight_tensors(&self.layout, &raw), self.meta("raw")),
                (checkpoint::weight_tensors(&self.layout, &ema), self.meta("ema")),
                (checkpoint::arena_tensors(&arenas), state_meta),
            ],
        )
    }

    /// An error naming what became non-finite, when anything in `parts` did.
    fn refuse_non_finite(&self, stem: &str, parts: &[(&str, &Vec<f32>)]) -> Result<()> {
        let Some(what) = parts.iter().find(|(_, d)| d.iter().any(|x| !x.is_finite())).map(|(w, _)| *w) else { return Ok(()) };
        let dir = self.ckpt_dir();
        Err(Error::Msg(format!("the {what} became non-finite by step {}; stopping without writing {stem}. {}", self.step, intact_note(&dir))))
    }

    /// Write best_model (the EMA or raw weights) under the same non-finite guard as `last`.
    fn save_best(&self, use_ema: bool, mean_psnr: f64) -> Result<()> {
        let w = if use_ema { self.host_weights(&self.ema, &self.ema_buffers)? } else { self.host_weights(&self.params, &self.buffers)? };
        self.refuse_non_finite("best_model", &[("weights", &w.params), ("batch-norm running statistics", &w.buffers)])?;
        let mut meta = self.meta(if use_ema { "ema" } else { "raw" });
        meta.insert("val_psnr_mean".into(), format!("{mean_psnr:.4}"));
        checkpoint::write(&self.ckpt_dir().join("best_model.safetensors"), checkpoint::weight_tensors(&self.layout, &w), meta)
    }

    fn resume(&mut self, events: &mut dyn FnMut(Event)) -> Result<()> {
        let dir = self.ckpt_dir();
        if let Some(why) = crate::util::files::not_a_folder(&dir) {
            return Err(Error::Msg(format!("--resume: {why} (the run's checkpoints folder)")));
        }
        let (set, note) = checkpoint::newest_usable(&dir, &mut checkpoint::all_finite)?;
        if let Some(n) = note {
            events(Event::Warning(format!("--resume: {n}")));
        }
        let [raw, ema, state] = &set.files;
        let saved: Config = serde_yaml::from_str(raw.meta.get("config").map(String::as_str).unwrap_or(""))
            .map_err(|e| Error::Msg(format!("--resume: config in {} unreadable: {e}", raw.path.display())))?;
        let diff = saved.model.differences(&self.cfg.model);
        if !diff.is_empty() {
            return Err(Error::Config(format!(
                "--resume: the checkpoint's model ({}) differs from the config's: {} (checkpoint vs config); resume with the config the run started with ({})",
                saved.model.describe(),
                diff.join(", "),
                self.out.join("config.resolved.yaml").display()
            )));
        }
        let c = &self.cfg;
        let changed: Vec<&str> =
            [("seed", saved.seed != c.seed), ("data", saved.data != c.data), ("noise", saved.noise != c.noise), ("train", saved.train != c.train)]
                .iter()
                .filter(|(_, d)| *d)
                .map(|(n, _)| *n)
                .collect();
        if !changed.is_empty() {
            events(Event::Warning(format!(
                "--resume with a config that differs from the checkpoint's in: {}; the run continues with the new settings and will not match an uninterrupted run",
                changed.join(", ")
            )));
        }
        let num = |f: &checkpoint::Loaded, k: &str| -> Result<u64> {
            f.meta.get(k).and_then(|v| v.parse().ok()).ok_or_else(|| Error::Msg(format!("--resume: {} lacks {k}", f.path.display())))
        };
        // The kernel variants the run used (autotune's choices), so the resumed run computes
        // what an uninterrupted one would; a checkpoint without them resumes with today's picks.
        if let Some(k) = raw.meta.get("kernels") {
            match serde_json::from_str(k) {
                Ok(choices) => self.ctx.tuner().pin(choices),
                Err(e) => events(Event::Warning(format!(
                    "--resume: the kernel choices in {} are unreadable ({e}); autotune picks again",
                    raw.path.display()
                ))),
            }
        }
        let w = checkpoint::load_weights(&self.layout, raw)?;
        let e = checkpoint::load_weights(&self.layout, ema)?;
        self.ctx.write(&self.params, &w.params)?;
        self.ctx.write(&self.ema, &e.params)?;
        self.ctx.write(&self.buffers, &w.buffers)?;
        self.ctx.write(&self.ema_buffers, &e.buffers)?;
        let len = self.layout.param_len();
        self.ctx.write(&self.opt.m, &checkpoint::arena(state, "m", len)?)?;
        self.ctx.write(&self.opt.v, &checkpoint::arena(state, "v", len)?)?;
        self.opt.t = num(state, "opt_t")?;
        if let Some(s) = &self.opt.scaler {
            if state.tensors.contains_key("amp_scaler") {
                self.ctx.write(&s.state, &checkpoint::arena(state, "amp_scaler", crate::ops::amp::STATE_LEN)?)?;
            } else {
                events(Event::Warning(format!(
                    "--resume: {} has no loss-scaler state (saved without train.amp); amp starts from train.amp_init_scale",
                    state.path.display()
                )));
            }
        }
        self.step = num(state, "step")?;
        self.epoch = num(state, "epoch")? as usize;
        self.step_in_epoch = num(state, "step_in_epoch")? as usize;
        self.batches_tracked = w.batches_tracked;
        self.best_psnr = state.meta.get("best_psnr").and_then(|v| v.parse().ok()).unwrap_or(f64::NEG_INFINITY);
        self.validated = state.meta.get("validated").is_none_or(|v| v != "false");
        // Drop log rows past the checkpoint (written after it, before the run died).
        let (step, epoch, mut warnings) = (self.step, self.epoch as u64, Vec::new());
        csvlog::retain::<TrainLogRow>(&self.logs_dir().join(TRAIN_CSV), |r| r.step <= step, &mut warnings)?;
        csvlog::retain::<ValLogRow>(&self.logs_dir().join(VAL_CSV), |r| r.epoch <= epoch, &mut warnings)?;
        for w in warnings {
            events(Event::Warning(format!("--resume: {w}")));
        }
        // Leave the folder as an uninterrupted run would have: `last` at this state, and the
        // epoch set of this boundary when a crash cut it off after `last` was saved.
        if set.stem != "last" {
            self.save("last")?;
        }
        let epoch_stem = format!("epoch_{:03}", self.epoch);
        if self.step_in_epoch == 0
            && self.epoch > 0
            && self.epoch.is_multiple_of(self.cfg.train.save_every)
            && !matches!(checkpoint::open_set(&dir, &epoch_stem), Ok(Some(_)))
        {
            self.save(&epoch_stem)?;
        }
        Ok(())
    }

    /// The epoch's shuffled order, written into the one permutation buffer the step plan reads.
    pub fn write_perm(&self, epoch: usize) -> Result<()> {
        let p = permutation(self.train_idx.len(), self.cfg.seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let perm: Vec<u32> = p.iter().map(|&i| self.train_idx[i as usize]).collect();
        self.ctx.write_u32(&self.perm, &perm)
    }

    /// Encode one whole training step (gather, noise, forward, loss, backward, clip, optimiser,
    /// EMA, the log copies) with the values of the current step; `log` receives (loss, squared
    /// grad norm) at slot 0 (patched per step).
    fn encode_step(&mut self, log: &View, slot: usize) -> Result<()> {
        let ctx = self.ctx.clone();
        let b = self.cfg.train.batch_size;
        let n = b * IMAGE_LEN;
        let v = self.step_values(slot);
        let clean = ctx.alloc("batch", n)?;
        ctx.named(SLOT_BATCH, || data_gather(&ctx, &self.dataset, &self.perm, v.start, b, IMAGE_LEN, &clean))?;
        let input = ctx.alloc("batch", n)?;
        ctx.named(SLOT_NOISE, || data_noise(&ctx, &v.noise, &clean, &input))?;
        let shape = vec![b, 1, IMAGE_HW, IMAGE_HW];
        let x = Tensor::wrap(&ctx, shape.clone(), input);
        let y = Tensor::wrap(&ctx, shape, clean);
        let fwd = Fwd::gpu(&self.train_w, true, self.cfg.seed, self.step);
        // Under amp the convs take f16 operands (forward and backward), and the backward starts
        // from the loss scale. The step's graph: dropped (with everything it saved) on any early
        // return.
        let mut g = Graph::new(&ctx).with_kernels(self.kernels.with_half(self.opt.scaler.as_ref().map(|s| s.flag.clone())));
        self.train_w.attach(&mut g)?;
        let recon = self.model.forward(&mut g, &fwd, &x)?;
        let mut terms = Vec::new();
        for (w, kind) in pixel_terms(&self.cfg) {
            terms.push((g.loss(&recon, &y, kind)?, w));
        }
        if let Some((vgg, w)) = &self.vgg {
            terms.push((vgg.loss(&mut g, &recon, &y)?, *w));
        }
        let mut l: Option<Tensor> = None;
        for (t, w) in terms {
            let t = if w == 1.0 { t } else { g.scale(&t, w)? };
            l = Some(match l.take() {
                None => t,
                Some(a) => g.add(&a, &t)?,
            });
        }
        let l = l.ok_or_else(|| Error::Msg("train.loss has no terms".into()))?;
        drop(g.backward_with(&l, &loss_seed(&ctx, self.opt.scaler.as_ref())?)?);
        self.opt.step(&ctx, &self.params, &self.grads, v.lr)?;
        let scaler = self.opt.scaler.as_ref().map(|s| &s.state);
        ema_update_unless_skipped(&ctx, self.cfg.train.ema_decay, &self.params, &self.ema, scaler)?;
        if !self.layout.buffers.is_empty() {
            ema_update_unless_skipped(&ctx, self.cfg.train.ema_decay, &self.buffers, &self.ema_buffers, scaler)?;
        }
        ctx.named(SLOT_LOG_LOSS, || copy_offset(&ctx, l.view(), log, v.log_loss))?;
        ctx.named(SLOT_LOG_NORM, || copy_offset(&ctx, &self.opt.norm_sq, log, v.log_norm))
    }

    /// The values of the current step that a recorded step does not fix: the batch's place in
    /// the permutation, the noise keys and curriculum, the learning rate, the log slots (the
    /// dropout streams and Adam's bias corrections follow the step count: `restep`,
    /// `Optimizer::patch`). Encoding and replay both take them from here.
    fn step_values(&self, slot: usize) -> StepValues {
        let b = self.cfg.train.batch_size;
        StepValues {
            start: self.step_in_epoch * b,
            noise: noise_params(&self.cfg, b * IMAGE_LEN, self.epoch as u32, self.step as u32, None, self.cfg.noise.level_scale(self.epoch)),
            lr: self.schedule.lr(self.step) as f32,
            log_loss: 2 * slot,
            log_norm: 2 * slot + 1,
        }
    }

    /// Write the current step's values into the recorded plan, slot by slot.
    fn patch_step(&mut self, slot: usize) -> Result<()> {
        let v = self.step_values(slot);
        let step = self.step;
        let plan = self.plan.as_mut().ok_or_else(|| Error::Msg("no step plan".into()))?;
        plan.set::<DataParams>(SLOT_BATCH, |_, p| p.start = v.start as u32)?;
        plan.set::<DataParams>(SLOT_NOISE, |_, p| *p = v.noise)?;
        if plan.has_slot(crate::ops::dropout2d::SLOT) {
            plan.set::<Dropout2dParams>(crate::ops::dropout2d::SLOT, |_, p| p.restep(step))?;
        }
        self.opt.patch(plan, v.lr)?;
        plan.set::<ElementwiseParams>(SLOT_LOG_LOSS, |_, p| p.offset = v.log_loss as u32)?;
        plan.set::<ElementwiseParams>(SLOT_LOG_NORM, |_, p| p.offset = v.log_norm as u32)
    }

    /// One optimiser step on batch `s` of the epoch: the first records the whole step as a plan;
    /// every step (the first included) patches its per-step values into the plan and submits it
    /// (one submit, nothing created, nothing waited for).
    pub fn train_step(&mut self, s: usize, log: &View, slot: usize) -> Result<()> {
        debug_assert_eq!(s, self.step_in_epoch);
        if self.direct {
            self.encode_step(log, slot)?;
            self.ctx.flush()?;
        } else {
            if self.plan.is_none() {
                let ctx = self.ctx.clone();
                self.plan = Some(ctx.record(|| self.encode_step(log, slot))?);
            } else {
                self.opt.t += 1;
            }
            self.patch_step(slot)?;
            let plan = self.plan.as_ref().ok_or_else(|| Error::Msg("no step plan".into()))?;
            self.ctx.replay(plan)?;
            // Progressive autotune: a first run on an empty cache times what its budget allows
            // and runs the rest untuned; each later step grants another slice and records the
            // plan anew until every shape is timed.
            if self.ctx.retune(plan) {
                self.plan = None;
            }
        }
        self.step += 1;
        self.step_in_epoch += 1;
        if self.layout.counters.is_empty() {
            self.batches_tracked = 0;
        } else {
            self.batches_tracked += 1;
        }
        Ok(())
    }

    /// Under amp, the loss scale and how many optimiser steps the scaler has dropped for overflow
    /// so far (reads the scaler's state back from the GPU; once per epoch).
    pub fn scaler_state(&self) -> Result<Option<(f32, u64)>> {
        use crate::ops::amp::{SCALE, SKIPPED};
        let Some(s) = &self.opt.scaler else { return Ok(None) };
        let st = block_on(self.ctx.read(&s.state))?;
        Ok(Some((st[SCALE], st[SKIPPED] as u64)))
    }

    /// Whether a coming step records the plan anew (none recorded yet, or the last recording
    /// ran kernels still waiting for autotune); after that, steps only replay it.
    pub fn retuning(&self) -> bool {
        self.plan.as_ref().is_none_or(Plan::untuned)
    }

    /// One step as `dae train` runs it, for `dae bench --models`: the epoch's end starts the
    /// next epoch (its permutation written) without validation or checkpoints; `log` holds two
    /// values.
    pub fn bench_step(&mut self, log: &View) -> Result<()> {
        if self.step == 0 && self.step_in_epoch == 0 {
            self.write_perm(self.epoch)?;
        }
        if self.step_in_epoch == self.steps_per_epoch() {
            self.epoch += 1;
            self.step_in_epoch = 0;
            self.write_perm(self.epoch)?;
        }
        self.train_step(self.step_in_epoch, log, 0)
    }

    /// Dispatches per training step and the bytes of GPU memory its plan binds (after the first
    /// step).
    pub fn plan_stats(&self) -> Option<(usize, u64)> {
        self.plan.as_ref().map(|p| (p.len(), p.peak_bytes))
    }

    /// Validation metrics per evaluation level on the held-out split, with the EMA (or raw)
    /// weights; None when interrupted.
    pub fn validate(&self, use_ema: bool, raise_after_first_batch: bool) -> Result<Option<Vec<ValRow>>> {
        let w = if use_ema { &self.ema_w } else { &self.raw_w };
        let set = eval::EvalSet { dataset: &self.dataset, idx: &self.val_idx, n: self.val_len };
        let levels = eval::eval_levels(&self.cfg);
        let pass =
            eval::Pass { kind: self.cfg.noise.kind, levels: &levels, batch: self.cfg.train.batch_size, lpips: None, hook: None, direct: self.direct };
        let mut raise = raise_after_first_batch;
        let scores = eval::score(&self.ctx, &self.cfg, &self.model, w, &set, pass, &mut |_| {
            if std::mem::take(&mut raise) {
                signal::raise_real();
            }
        })?;
        Ok(scores.map(|s| eval::val_rows(&self.cfg, &s)))
    }
}

/// The parameters live in one buffer each (weights, gradients, EMA, Adam's two moments): a model
/// whose parameters exceed the adapter's largest buffer is refused before anything is built on
/// the host (a base of 1024 channels is gigabytes of initialisation).
fn fits_adapter(ctx: &Ctx, cfg: &Config, params: usize) -> Result<()> {
    let (limit, name) = ctx.largest_buffer();
    let bytes = params as u64 * 4;
    if bytes > limit {
        return Err(Error::Config(format!(
            "the model ({}) has {params} parameters, {} MiB in one buffer, over this adapter's {name} of {} MiB: lower model.base_ch (or model.num_downs)",
            cfg.model.describe(),
            bytes >> 20,
            limit >> 20
        )));
    }
    Ok(())
}

/// The config fields that can make a loss non-finite, when they are set that way.
fn suspects(cfg: &Config) -> String {
    let mut s = Vec::new();
    if cfg.train.lr > 0.05 {
        s.push(format!("train.lr is {} (a step this large diverges; the configs use 2e-4 to 2e-3)", cfg.train.lr));
    }
    if cfg.train.grad_clip.is_none() {
        s.push("train.grad_clip is null (no clipping of large gradients)".to_string());
    }
    let most = cfg.noise.sigma_list().into_iter().chain(cfg.noise.train_sigma_range.map(|r| r[1])).fold(0.0f32, f32::max);
    if cfg.noise.clip_range.is_none() && most > 10.0 {
        s.push(format!("noise sigmas up to {most} with noise.clip_range null feed the network inputs of that size"));
    }
    if s.is_empty() { String::new() } else { format!(". Likely cause: {}", s.join("; ")) }
}

/// What a stopped run leaves behind, for its error message: the checkpoint that is intact, or
/// that there is none yet.
fn intact_note(dir: &Path) -> String {
    match checkpoint::open_set(dir, "last") {
        Ok(Some(s)) => {
            format!("The checkpoint `last` in {} (step {}) is from before it and intact; --resume continues from it", dir.display(), s.step)
        }
        _ => format!("No checkpoint was written before it (none in {})", dir.display()),
    }
}

const TRAIN_CSV: &str = "train_metrics.csv";
const VAL_CSV: &str = "val_metrics.csv";
/// Skipped amp steps in a row that stop a run: from the default scale 2^16 they take it below
/// 2^-20, where the overflow no longer comes from the scaling.
const MAX_SKIPS_IN_A_ROW: usize = 37;

/// Whether a new run (not --resume) finds an earlier one in `out`: an error without
/// --overwrite; with it `true`, and the earlier run's files go only once the new run's first
/// step has run ([`start_files`]), so a run that cannot start (bad data, a model too large for
/// the adapter, ...) leaves the earlier one whole.
fn earlier_run(out: &Path, opts: &TrainOptions) -> Result<bool> {
    if opts.resume {
        return Ok(false);
    }
    let stale: Vec<PathBuf> =
        [out.join("logs").join(TRAIN_CSV), out.join("logs").join(VAL_CSV), out.join("ckpts").join("last.safetensors"), out.join(RESOLVED)]
            .into_iter()
            .filter(|p| p.exists())
            .collect();
    if stale.is_empty() {
        return Ok(false);
    }
    if !opts.overwrite {
        // Suggest --resume only where it would work.
        let resume = match checkpoint::newest_set(&out.join("ckpts")) {
            Ok((set, _)) => format!("continue it from its checkpoint {} (step {}) with --resume, ", set.stem, set.step),
            Err(_) => "it has no complete checkpoint to resume from; ".to_string(),
        };
        return Err(Error::Config(format!(
            "{} already holds a run ({}): {resume}start over with --overwrite (once the new run has started, removes the logs, checkpoints, figures and reports dae wrote there; other files are kept), or pick another --out-dir",
            out.display(),
            stale.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        )));
    }
    Ok(true)
}

const RESOLVED: &str = "config.resolved.yaml";

/// The run's folders and its resolved config; first, with `clear`, the earlier run's files
/// (dae's own only: anything else in the folder is kept and listed).
fn start_files(out: &Path, cfg: &Config, clear: bool, events: &mut dyn FnMut(Event)) -> Result<()> {
    if clear {
        let (n, kept) = crate::util::outputs::remove_earlier_run(out)?;
        events(Event::Note(format!("--overwrite: removed the {n} files of the earlier run in {}", out.display())));
        if !kept.is_empty() {
            // A warning, so shown even under --quiet: these are the user's files.
            events(Event::Warning(format!(
                "--overwrite: kept {} file(s) dae did not write: {}",
                kept.len(),
                kept.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
            )));
        }
    }
    for d in ["logs", "ckpts"] {
        crate::util::files::create_dir(&out.join(d))?;
    }
    crate::util::files::write_file(&out.join(RESOLVED), cfg.to_yaml().as_bytes())
}

/// Run (or continue) training to `train.epochs`, discarding the run's events.
pub fn train(ctx: &Ctx, cfg: &Config, opts: &TrainOptions) -> Result<Summary> {
    train_with(ctx, cfg, opts, &mut |_| {})
}

/// The per-step log: the steps of a window of `log_every` copy (loss, squared grad norm) into
/// a GPU buffer, read a step or two later without a wait in the loop, then written as CSV rows,
/// reported as progress and checked: a non-finite loss stops the run, and under amp so does a
/// long run of steps the loss scaler skipped (a finite loss with an infinite norm).
struct StepLog {
    buf: View,
    every: usize,
    /// The steps of the window being filled: (step, learning rate).
    window: Vec<(u64, f64)>,
    /// The last full window's read in flight, its steps and its images/s.
    pending: Option<(crate::gpu::PendingRead, Vec<(u64, f64)>, f64)>,
    t0: Instant,
    images_per_s: f64,
    skips_in_a_row: usize,
    amp: bool,
    csv: PathBuf,
}

impl StepLog {
    fn new(ctx: &Ctx, every: usize, amp: bool, csv: PathBuf) -> Result<StepLog> {
        Ok(StepLog {
            buf: ctx.alloc("step log", 2 * every)?,
            every,
            window: Vec::new(),
            pending: None,
            t0: Instant::now(),
            images_per_s: 0.0,
            skips_in_a_row: 0,
            amp,
            csv,
        })
    }

    /// The slot the next step writes, once its (step, lr) is noted.
    fn next(&mut self, step: u64, lr: f64) -> usize {
        self.window.push((step, lr));
        self.window.len() - 1
    }

    /// After a step: at a window's end (or the epoch's, or a stop) queue the window's read and
    /// take the previous one (in by now); otherwise take the pending read if it is in.
    fn after_step(&mut self, ctx: &Ctx, tr: &Trainer, last: bool, events: &mut dyn FnMut(Event)) -> Result<()> {
        if self.window.len() == self.every || last {
            self.images_per_s = (self.window.len() * tr.cfg.train.batch_size) as f64 / self.t0.elapsed().as_secs_f64().max(1e-9);
            self.t0 = Instant::now();
            if let Some((p, w, i)) = self.pending.take() {
                self.rows(&block_on(ctx.take(p))?, &w, i, tr, events)?;
            }
            self.pending = Some((ctx.read_async(&self.buf)?, std::mem::take(&mut self.window), self.images_per_s));
            if last && let Some((p, w, i)) = self.pending.take() {
                self.rows(&block_on(ctx.take(p))?, &w, i, tr, events)?;
            }
        } else if let Some((p, _, _)) = &mut self.pending
            && let Some(vals) = ctx.try_take(p)?
            && let Some((_, w, i)) = self.pending.take()
        {
            self.rows(&vals, &w, i, tr, events)?;
        }
        Ok(())
    }

    /// The CSV rows of one window (slot k holds step window[k]'s loss and squared grad norm),
    /// the progress event, and the stop on a non-finite value.
    fn rows(&mut self, vals: &[f32], window: &[(u64, f64)], ips: f64, tr: &Trainer, events: &mut dyn FnMut(Event)) -> Result<()> {
        let (cfg, e) = (&tr.cfg, tr.epoch);
        let mut rows = Vec::new();
        for (k, (st, lr)) in window.iter().enumerate() {
            let (lv, nsq) = (vals[2 * k], vals[2 * k + 1]);
            let skipped = self.amp && lv.is_finite() && nsq == f32::INFINITY;
            self.skips_in_a_row = if skipped { self.skips_in_a_row + 1 } else { 0 };
            let stop = if self.skips_in_a_row >= MAX_SKIPS_IN_A_ROW {
                Some(format!(
                    "amp: {MAX_SKIPS_IN_A_ROW} steps in a row overflowed (up to step {}, epoch {}), the loss scale halving each time: the gradients are not finite even unscaled; stopping",
                    st + 1,
                    e + 1
                ))
            } else if !skipped && (!lv.is_finite() || !nsq.is_finite()) {
                Some(format!(
                    "the loss became {} at step {} (epoch {}); stopping",
                    if lv.is_finite() { format!("finite but the gradient norm {nsq}") } else { lv.to_string() },
                    st + 1,
                    e + 1
                ))
            } else {
                None
            };
            if let Some(why) = stop {
                csvlog::append(&self.csv, &rows)?;
                events(Event::End { finished: false });
                return Err(Error::Msg(format!("{why}. {}{}", intact_note(&tr.ckpt_dir()), suspects(cfg))));
            }
            rows.push(TrainLogRow {
                step: st + 1,
                epoch: e as u64 + 1,
                loss: round(lv as f64, 6),
                lr: round_sig(*lr, 6),
                grad_norm: round((nsq as f64).sqrt(), 6),
                images_per_s: round(ips, 1),
            });
        }
        csvlog::append(&self.csv, &rows)?;
        if let Some((st, lr)) = window.last() {
            let loss = vals[2 * (window.len() - 1)];
            events(Event::Progress { done: tr.step_in_epoch, msg: format!("step {} loss {loss:.5} lr {lr:.2e} {ips:.0} img/s", st + 1) });
        }
        Ok(())
    }
}

/// The run-time estimate, said once: a step that only replays the settled plan is timed on its
/// own (the first steps compile the kernels and, on an empty tune cache, time them while the
/// plan is recorded anew); two waits per run, outside the steady loop, and none unless asked.
struct Estimate {
    on: bool,
    on_cpu: bool,
    steps: u32,
    mark: Instant,
}

impl Estimate {
    fn after_step(&mut self, ctx: &Ctx, tr: &Trainer, events: &mut dyn FnMut(Event)) -> Result<()> {
        let cfg = &tr.cfg;
        let total = (tr.steps_per_epoch() * cfg.train.epochs) as u64;
        if self.steps > 0 || !tr.retuning() {
            self.steps += 1;
        }
        if !self.on || !(1..=2).contains(&self.steps) || tr.step >= total {
            return Ok(());
        }
        ctx.gpu().wait()?;
        if self.steps == 1 {
            self.mark = Instant::now();
            return Ok(());
        }
        let per_step = self.mark.elapsed().as_secs_f64();
        // Validation: a forward per image and level, about a third of a step's work.
        let val = ((cfg.train.epochs - tr.epoch) * tr.val_len * eval::eval_levels(cfg).len()) as f64 / cfg.train.batch_size as f64 / 3.0;
        let secs = ((total - tr.step) as f64 + val) * per_step;
        if self.on_cpu || secs > 3600.0 {
            let hint = if secs > 3600.0 { "; for a first try, configs/quick.yaml trains a small model in minutes" } else { "" };
            events(Event::Note(format!(
                "estimated time for the rest of the run: {}{hint}",
                humantime::format_duration(std::time::Duration::from_secs(secs as u64))
            )));
        }
        Ok(())
    }
}

/// Take the output folder's lock, refuse to mix with an earlier run, set the run up, and say
/// what it is.
fn start(ctx: &Ctx, cfg: &Config, opts: &TrainOptions, events: &mut dyn FnMut(Event)) -> Result<(crate::util::lock::FolderLock, Trainer, bool)> {
    // One training run per folder for its whole life: a second one would interleave the logs
    // and overwrite the checkpoints. (Evaluation takes its own lock and may run beside it.)
    let lock = crate::util::lock::lock(Path::new(&cfg.out_dir), "train", &crate::util::lock::holder_note("dae train")).map_err(|e| match e {
        crate::util::lock::LockError::Held { holder, .. } => {
            Error::Msg(format!("{} is in use by another training run ({holder}); wait for it to finish, or pick another --out-dir", cfg.out_dir))
        }
        e => Error::Msg(e.to_string()),
    })?;
    let clear = earlier_run(Path::new(&cfg.out_dir), opts)?;
    let tr = Trainer::new(ctx, cfg, opts, events)?;
    if !clear {
        start_files(&tr.out, cfg, false, events)?;
    }
    let info = &ctx.gpu().info;
    events(Event::Note(format!("adapter: {} ({:?}, {:?})", info.name, info.backend, info.device_type)));
    if info.device_type == wgpu::DeviceType::Cpu {
        events(Event::Note(
            "note: this adapter is a CPU (e.g. Mesa's lavapipe), not a GPU: training works but is slow; the run time is estimated after the first steps".into(),
        ));
    }
    events(Event::Note(format!(
        "model: {} -> {} parameters; {} train / {} val images, {} steps per epoch of {}",
        cfg.model.describe(),
        tr.layout.num_params(),
        tr.train_idx.len(),
        tr.val_len,
        tr.steps_per_epoch(),
        cfg.train.batch_size
    )));
    if cfg.train.amp {
        if tr.opt.scaler.is_some() {
            events(Event::Note(format!(
                "amp: f16 conv operands with f32 accumulation, f32 elsewhere; dynamic loss scale from {} (doubling after {} clean steps)",
                cfg.train.amp_init_scale, cfg.train.amp_growth_interval
            )));
        } else {
            events(Event::Warning("train.amp is set but this adapter has no shader-f16; training in f32".into()));
        }
    }
    // A finished run has nothing to resume (its checkpoint sets were completed above if a crash
    // cut the last saves short); the caller says so.
    if opts.resume && !tr.finished() {
        events(Event::Note(format!("resumed at step {} (epoch {}, step {} of it)", tr.step, tr.epoch + 1, tr.step_in_epoch)));
    }
    Ok((lock, tr, clear))
}

/// Run (or continue) training to `train.epochs`, telling `events` what happens: set up, then
/// epoch by epoch its steps (each logged, the earlier run's files cleared after the first when
/// overwriting, an interrupt checked), then the epoch's end (validation, checkpoints, figure).
pub fn train_with(ctx: &Ctx, cfg: &Config, opts: &TrainOptions, events: &mut dyn FnMut(Event)) -> Result<Summary> {
    signal::reset();
    let (_lock, mut tr, mut clear) = start(ctx, cfg, opts, events)?;
    for w in ctx.take_warnings() {
        events(Event::Warning(w));
    }
    let already_finished = tr.finished();
    signal::set_note("stopping after this step (or validation batch) and saving `last`");
    if let Some(w) = signal::install() {
        events(Event::Warning(w));
    }
    let spe = tr.steps_per_epoch();
    let mut log = StepLog::new(ctx, cfg.train.log_every.min(spe).max(1), tr.opt.scaler.is_some(), tr.logs_dir().join(TRAIN_CSV))?;
    let mut estimate = Estimate { on: opts.verbose, on_cpu: ctx.gpu().info.device_type == wgpu::DeviceType::Cpu, steps: 0, mark: Instant::now() };
    let mut last_val = Vec::new();
    let mut interrupted: Option<u8> = None;
    // A run stopped during an epoch's validation validates that epoch first.
    if !tr.validated {
        match tr.end_epoch(opts, 0.0, events)? {
            Some(val) => last_val = val,
            None => interrupted = Some(signal::interrupted().unwrap_or(130)),
        }
    }
    while tr.epoch < cfg.train.epochs && interrupted.is_none() {
        tr.write_perm(tr.epoch)?;
        events(Event::Start { what: format!("epoch {}/{}", tr.epoch + 1, cfg.train.epochs), total: spe, done: tr.step_in_epoch });
        while tr.step_in_epoch < spe {
            let slot = log.next(tr.step, tr.schedule.lr(tr.step));
            tr.train_step(tr.step_in_epoch, &log.buf, slot).map_err(|e| e.limit_in_terms_of("train.batch_size", cfg.train.batch_size))?;
            if clear {
                // The new run has started (its first step ran): now the earlier one may go.
                ctx.gpu().wait()?;
                start_files(&tr.out, cfg, true, events)?;
                clear = false;
            }
            // At most one step queued behind the running one: an interrupt waits for two steps
            // at most.
            ctx.pace()?;
            for w in ctx.take_warnings() {
                events(Event::Warning(w));
            }
            estimate.after_step(ctx, &tr, events)?;
            // stop_after (tests) acts as a Ctrl-C without touching the process-wide flag.
            let stop = signal::interrupted().or(opts.stop_after.filter(|n| tr.step >= *n).map(|_| 130));
            log.after_step(ctx, &tr, tr.step_in_epoch == spe || stop.is_some(), events)?;
            if stop.is_some() {
                interrupted = stop;
                break;
            }
        }
        events(Event::End { finished: interrupted.is_none() });
        if let Some(code) = interrupted {
            tr.save("last")?;
            events(Event::Note(format!("{}: saved {} at step {}", signal::name(code), tr.ckpt_dir().join("last.safetensors").display(), tr.step)));
            break;
        }
        tr.epoch += 1;
        tr.step_in_epoch = 0;
        if let Some((_, n)) = opts.crash_at.filter(|(ce, _)| *ce == tr.epoch) {
            checkpoint::crash_after_writes(n);
        }
        let Some(val) = tr.end_epoch(opts, log.images_per_s, events)? else {
            interrupted = Some(signal::interrupted().unwrap_or(130));
            break;
        };
        last_val = val;
        // A signal during the saves above (or after validation's last batch) stops here, at
        // the epoch boundary, with `last` just written.
        if let Some(code) = signal::interrupted() {
            events(Event::Note(format!("{}: stopped after epoch {}'s checkpoints; `last` is at step {}", signal::name(code), tr.epoch, tr.step)));
            interrupted = Some(code);
            break;
        }
    }
    let amp = tr.scaler_state()?;
    Ok(Summary {
        steps: tr.step,
        epochs_done: tr.epoch,
        interrupted,
        last_val,
        best_psnr: tr.best_psnr,
        images_per_s: log.images_per_s,
        amp,
        validated: tr.validated,
        already_finished,
    })
}
