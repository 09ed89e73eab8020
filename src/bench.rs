//! `dae bench`: kernel microbenchmarks and the whole training step, timed on the chosen adapter.
//! Wall clock around `n` submits of the same work, each followed by a wait (so timings include
//! the submit and the driver's dispatch cost, as a training step sees them). Median of `iters`.

use std::time::Instant;

use serde::Serialize;

use crate::error::Result;
use crate::gpu::{Ctx, View};
use crate::ops::Chans;
use crate::ops::conv2d::{ConvGeom, conv2d_forward, conv2d_input_grad, conv2d_weight_grad};

#[derive(Clone, Debug, Serialize)]
pub struct BenchRow {
    pub name: String,
    pub ms: f64,
    pub gflops: f64,
}

fn time(ctx: &Ctx, warmup: usize, iters: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    for _ in 0..warmup {
        f()?;
        ctx.flush()?;
        ctx.gpu().wait()?;
    }
    let mut ts = Vec::with_capacity(iters);
    for _ in 0..iters {
        let t0 = Instant::now();
        f()?;
        ctx.flush()?;
        ctx.gpu().wait()?;
        ts.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    ts.sort_by(|a, b| a.total_cmp(b));
    Ok(ts[ts.len() / 2])
}

fn rand_view(ctx: &Ctx, n: usize, seed: u64) -> Result<View> {
    ctx.upload("bench", &crate::util::rng::Rng::new(seed).vec(n))
}

/// The conv shapes of UNetDAE base 16 / 2 downs at 28x28 (cin, cout, hw).
pub const UNET16_CONVS: &[(usize, usize, usize)] = &[(1, 16, 28), (16, 16, 28), (16, 32, 14), (32, 32, 14), (32, 32, 7), (64, 32, 14), (32, 16, 14), (32, 16, 28)];

pub fn conv_rows(ctx: &Ctx, batch: usize, warmup: usize, iters: usize) -> Result<Vec<BenchRow>> {
    let mut rows = Vec::new();
    for &(cin, cout, hw) in UNET16_CONVS {
        let g = ConvGeom { n: batch, cin, h: hw, w: hw, cout, ho: hw, wo: hw, kh: 3, kw: 3, stride: (1, 1), pad: (1, 1), xs: Chans::PLAIN };
        let x = rand_view(ctx, batch * cin * hw * hw, 1)?;
        let w = rand_view(ctx, cout * cin * 9, 2)?;
        let dy = rand_view(ctx, batch * cout * hw * hw, 3)?;
        let y = ctx.alloc("bench", batch * cout * hw * hw)?;
        let dx = ctx.alloc("bench", batch * cin * hw * hw)?;
        let dw = ctx.alloc("bench", cout * cin * 9)?;
        let flop = 2.0 * (batch * cout * hw * hw * cin * 9) as f64;
        let name = format!("conv3x3 {cin}->{cout} @{hw} n{batch}");
        let prev = ctx.tiled();
        for tiled in [false, true] {
            ctx.set_tiled(tiled);
            let v = if tiled { "tiled" } else { "naive" };
            let ms = time(ctx, warmup, iters, || conv2d_forward(ctx, &g, &x, &w, None, &y, false))?;
            rows.push(BenchRow { name: format!("{name} forward {v}"), ms, gflops: flop / ms / 1e6 });
            let ms = time(ctx, warmup, iters, || conv2d_input_grad(ctx, &g, &w, None, &dy, &dx, false))?;
            rows.push(BenchRow { name: format!("{name} input_grad {v}"), ms, gflops: flop / ms / 1e6 });
            let ms = time(ctx, warmup, iters, || conv2d_weight_grad(ctx, &g, &x, &dy, &dw, false))?;
            rows.push(BenchRow { name: format!("{name} weight_grad {v}"), ms, gflops: flop / ms / 1e6 });
        }
        ctx.set_tiled(prev);
    }
    Ok(rows)
}

/// The FFT of 10,000 28x28 images (the test set): forward transform, then magnitude with
/// fftshift and the radial profiles. GFLOP/s counts the mixed-radix stages as 8 n r flops per
/// radix-r stage of length n (complex multiply-adds).
pub fn fft_rows(ctx: &Ctx, warmup: usize, iters: usize) -> Result<Vec<BenchRow>> {
    use crate::ops::fft::{Fft2d, factors};
    let (b, hw) = (10_000usize, 28usize);
    let plan = Fft2d::new(ctx, hw, hw)?;
    let x = rand_view(ctx, b * hw * hw, 4)?;
    let spec = ctx.alloc("bench", 2 * b * hw * hw)?;
    let mag = ctx.alloc("bench", b * hw * hw)?;
    let prof = ctx.alloc("bench", b * plan.bins())?;
    let stage_flops: f64 = factors(hw).iter().map(|r| 8.0 * (hw * r) as f64).sum();
    let flop = 2.0 * (b * hw) as f64 * stage_flops;
    let ms = time(ctx, warmup, iters, || plan.forward(ctx, &x, b, &spec))?;
    let mut rows = vec![BenchRow { name: format!("fft2 {b} x {hw}x{hw} (radix {:?})", factors(hw)), ms, gflops: flop / ms / 1e6 }];
    let ms = time(ctx, warmup, iters, || {
        plan.forward(ctx, &x, b, &spec)?;
        plan.magnitude(ctx, &spec, b, &mag)?;
        plan.radial(ctx, &mag, b, &prof, 0)
    })?;
    rows.push(BenchRow { name: format!("fft2 + magnitude + radial profile, {b} x {hw}x{hw}"), ms, gflops: 0.0 });
    Ok(rows)
}

pub fn table(rows: &[BenchRow]) -> String {
    let mut s = format!("{:<60} {:>10} {:>9}\n", "kernel / shape", "ms", "GFLOP/s");
    for r in rows {
        let g = if r.gflops > 0.0 { format!("{:.2}", r.gflops) } else { "-".into() };
        s += &format!("{:<60} {:>10.3} {:>9}\n", r.name, r.ms, g);
    }
    s
}

/// One row of `dae bench --models`: a whole training step of a SPEC model.
#[derive(Clone, Debug, Serialize)]
pub struct TrainRow {
    pub model: String,
    pub batch: usize,
    pub images_per_s: f64,
    /// The first step from a cold start: compiling the kernels and recording the plan.
    pub first_step_s: f64,
    /// Dispatches per step (the recorded plan's length).
    pub dispatches: usize,
    /// Bytes of every buffer the step's plan binds, in MiB: the GPU memory one step needs.
    pub peak_mem_mb: f64,
    /// The analytic minimum: parameters, gradients, two Adam moments and the EMA, plus what
    /// PyTorch saves for backward in the same model and batch (tests/fixtures/torch_saved_tensors.json,
    /// from tools/torch_saved_tensors.py); `None` for a (model, batch) the fixture lacks.
    pub min_mem_mb: Option<f64>,
}

/// PyTorch's saved-tensor counts for the analytic memory minimum.
const SAVED: &str = include_str!("../tests/fixtures/torch_saved_tensors.json");

fn min_bytes(spec: &str, batch: usize) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_str(SAVED).ok()?;
    v["rows"][format!("{spec}@{batch}")]["min_bytes"].as_u64()
}

/// A SPEC model from `unet16x2` / `conv64x3`.
fn spec_model(spec: &str) -> Result<crate::nn::ModelConfig> {
    use crate::nn::model::Arch;
    let bad = || crate::error::Error::Config(format!("--models: {spec:?} is not like unet16x2 or conv64x3"));
    let (arch, rest) = if let Some(r) = spec.strip_prefix("unet") {
        (Arch::Unet, r)
    } else if let Some(r) = spec.strip_prefix("conv") {
        (Arch::Conv, r)
    } else {
        return Err(bad());
    };
    let (b, d) = rest.split_once('x').ok_or_else(bad)?;
    let mc = crate::nn::ModelConfig { name: arch, base_ch: b.parse().map_err(|_| bad())?, num_downs: d.parse().map_err(|_| bad())?, ..Default::default() };
    mc.validate()?;
    Ok(mc)
}

/// One full training step of a SPEC model as `dae train` runs it (forward, MSE, backward, global
/// clip, AdamW, EMA) on random [0, 1) data, recorded once as a plan and replayed; `spec` like
/// `unet16x2` or `conv64x3`. With `profile`, one more step follows with every dispatch timed on
/// its own: (entry point, calls, seconds), slowest first.
pub fn model_step(ctx: &Ctx, spec: &str, batch: usize, warmup: usize, iters: usize, profile: bool) -> Result<(TrainRow, Vec<(&'static str, u64, f64)>)> {
    use crate::nn::model::Fwd;
    use crate::nn::{Model, Weights};
    use crate::ops::optim::OptKind;
    use crate::optim::{Hyper, Optimizer, ema_update};
    use crate::tensor::Tensor;
    let mc = spec_model(spec)?;
    let t_cold = Instant::now();
    let (model, layout) = Model::new(&mc)?;
    let (p0, b0) = layout.init(1);
    let params = ctx.upload("bench", &p0)?;
    let ema = ctx.upload("bench", &p0)?;
    let buffers = ctx.upload("bench", &b0)?;
    let grads = ctx.alloc("bench", layout.param_len())?;
    crate::ops::elementwise::fill(ctx, &grads, 0.0)?;
    let w = Weights::views(ctx, &layout, &params, Some(&grads), &buffers)?;
    let hyper = Hyper { kind: OptKind::Adamw, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 1e-4, momentum: 0.0, grad_clip: Some(1.0) };
    let mut opt = Optimizer::new(ctx, layout.param_len(), hyper)?;
    let mut rng = crate::util::rng::Rng::new(9);
    let n = batch * 28 * 28;
    let x = Tensor::from_slice(ctx, &[batch, 1, 28, 28], &rng.vec(n).iter().map(|v| 0.5 + 0.5 * v).collect::<Vec<_>>())?;
    let y = Tensor::from_slice(ctx, &[batch, 1, 28, 28], &rng.vec(n).iter().map(|v| 0.5 + 0.5 * v).collect::<Vec<_>>())?;
    ctx.begin_plan()?;
    let encoded = (|| -> Result<()> {
        let mut g = crate::autograd::Graph::new(ctx);
        w.attach(&mut g)?;
        let out = model.forward(&mut g, &Fwd::gpu(&w, true, 1, 0), &x)?;
        let l = g.mse_loss(&out, &y)?;
        drop(g.backward(&l)?);
        opt.step(ctx, &params, &grads, 2e-4)?;
        ema_update(ctx, 0.999, &params, &ema)
    })();
    let mut plan = ctx.end_plan()?;
    encoded.map_err(|e| e.limit_in_terms_of("--batch", batch))?;
    ctx.replay(&plan)?;
    ctx.gpu().wait()?;
    let first_step_s = t_cold.elapsed().as_secs_f64();
    let mut step = || -> Result<()> {
        opt.t += 1;
        opt.patch(&mut plan, 2e-4);
        ctx.replay(&plan)
    };
    let ms = time(ctx, warmup, iters, &mut step)?;
    let mut prof = Vec::new();
    if profile {
        ctx.set_profile(true)?;
        let r = step();
        prof = ctx.profile();
        ctx.set_profile(false)?;
        r?;
    }
    let mib = |b: u64| b as f64 / (1u64 << 20) as f64;
    let row = TrainRow {
        model: spec.to_string(),
        batch,
        images_per_s: batch as f64 * 1e3 / ms,
        first_step_s,
        dispatches: plan.len(),
        peak_mem_mb: mib(plan.peak_bytes),
        min_mem_mb: min_bytes(spec, batch).map(mib),
    };
    Ok((row, prof))
}

/// The terminal table of training steps (and profiles).
pub fn train_table(rows: &[(TrainRow, Vec<(&'static str, u64, f64)>)]) -> String {
    let mut s = format!("{:<12} {:>6} {:>10} {:>14} {:>11} {:>10} {:>10} {:>9}\n", "model", "batch", "images/s", "first step s", "dispatches", "peak MiB", "min MiB", "peak/min");
    for (r, prof) in rows {
        let (min, ratio) = match r.min_mem_mb {
            Some(m) => (format!("{m:.1}"), format!("{:.2}", r.peak_mem_mb / m)),
            None => ("-".into(), "-".into()),
        };
        s += &format!("{:<12} {:>6} {:>10.2} {:>14.2} {:>11} {:>10.1} {:>10} {:>9}\n", r.model, r.batch, r.images_per_s, r.first_step_s, r.dispatches, r.peak_mem_mb, min, ratio);
        let total: f64 = prof.iter().map(|p| p.2).sum();
        for (entry, calls, secs) in prof {
            s += &format!("    {entry:<34} x{calls:<4} {:>9.2} ms {:>5.1}%\n", secs * 1e3, 100.0 * secs / total);
        }
    }
    s
}
