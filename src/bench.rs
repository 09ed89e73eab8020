//! The benchmark suite behind `dae bench` and `cargo bench`: the adapter's own ceilings (an
//! FMA chain and a large copy), every kernel family at the denoiser's shapes (batch 128), and
//! whole training steps of the SPEC models. Kernel times come from GPU timestamp queries around
//! the compute pass where the adapter has them, else from the wall clock around submit and wait
//! (the report says which); each is the median of `runs` after warm-up. A `fwd+bwd` row is the
//! median over the same runs of the passes' summed times (each pass submitted on its own, so the
//! suite times every run once instead of once more for the sequence). Every row says which
//! ceiling bounds it (the roofline: flops at the FMA ceiling or bytes at the copy ceiling,
//! whichever takes longer) and what % of that bound it reaches.

use std::time::Instant;

use serde::Serialize;

use crate::error::Result;
use crate::gpu::{Ctx, View};
use crate::ops::Chans;
use crate::ops::conv2d::{ConvGeom, conv2d_forward, conv2d_input_grad, conv2d_weight_grad};

/// How a timed unit is measured: the GPU's own timestamps or the host's clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timer {
    Gpu,
    Wall,
}

impl Timer {
    pub fn name(self) -> &'static str {
        match self {
            Timer::Gpu => "gpu timestamps",
            Timer::Wall => "wall clock (submit + wait)",
        }
    }
}

/// Median milliseconds of `f` (which encodes some work) over `runs`, after `warmup` runs.
fn time(ctx: &Ctx, timer: Timer, warmup: usize, runs: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    Ok(time_each(ctx, timer, warmup, runs, &mut [&mut f])?[0])
}

/// Each of `fs` timed on its own (submitted and waited for) in turn within every run: the median
/// milliseconds of each over `runs` after `warmup` runs, then the median of the runs' sums (a
/// sequence's time from the same runs, not from more).
fn time_each(ctx: &Ctx, timer: Timer, warmup: usize, runs: usize, fs: &mut [&mut dyn FnMut() -> Result<()>]) -> Result<Vec<f64>> {
    for _ in 0..warmup {
        for f in fs.iter_mut() {
            f()?;
        }
        ctx.flush()?;
        ctx.gpu().wait()?;
    }
    ctx.gpu_seconds()?;
    let mut ts = vec![Vec::with_capacity(runs); fs.len() + 1];
    for _ in 0..runs.max(1) {
        let mut sum = 0.0;
        for (i, f) in fs.iter_mut().enumerate() {
            let t0 = Instant::now();
            f()?;
            ctx.flush()?;
            ctx.gpu().wait()?;
            let wall = t0.elapsed().as_secs_f64();
            let (gpu, passes) = ctx.gpu_seconds()?;
            let ms = 1e3 * if timer == Timer::Gpu && passes > 0 { gpu } else { wall };
            ts[i].push(ms);
            sum += ms;
        }
        ts[fs.len()].push(sum);
    }
    Ok(ts
        .iter_mut()
        .map(|t| {
            t.sort_by(|a, b| a.total_cmp(b));
            t[t.len() / 2]
        })
        .collect())
}

fn rand_view(ctx: &Ctx, n: usize, seed: u64) -> Result<View> {
    ctx.upload("bench", &crate::util::rng::Rng::new(seed).vec(n))
}

/// The adapter's measured ceilings.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Ceilings {
    /// vec4 f32 FMA chains, 8 independent per invocation.
    pub gflops: f64,
    /// A copy of 2 x 128 MiB (read + write counted).
    pub gbps: f64,
}

/// The FMA-chain and copy probes (pinned: vec4 f32, 8 chains per invocation, 256 Ki
/// invocations (1024 workgroups, enough to fill a large GPU) x 512 steps; the copy moves 256 MiB
/// per run).
pub fn ceilings(ctx: &Ctx, timer: Timer, runs: usize) -> Result<Ceilings> {
    use crate::ops::probe;
    let threads = 1 << 18;
    let steps = 512;
    let out = ctx.alloc("bench", 4 * threads)?;
    let ms = time(ctx, timer, 1, runs, || probe::fma_chain(ctx, threads, steps, &out))?;
    let gflops = (threads * steps * probe::FLOPS_PER_STEP) as f64 / ms / 1e6;
    let len = 16 << 20; // 64 MiB of f32
    let a = ctx.alloc("bench", len)?;
    let b = ctx.alloc("bench", len)?;
    crate::ops::elementwise::fill(ctx, &a, 1.0)?;
    let ms = time(ctx, timer, 1, runs, || {
        probe::copy_vec4(ctx, &a, &b)?;
        probe::copy_vec4(ctx, &b, &a)
    })?;
    let gbps = (4 * len * 4) as f64 / ms / 1e6;
    Ok(Ceilings { gflops, gbps })
}

/// One kernel measurement.
#[derive(Clone, Debug, Serialize)]
pub struct KernelRow {
    /// The family: conv2d, conv_transpose2d, group_norm, batch_norm, adamw, ema, fft2.
    pub name: String,
    /// tiled (the register-blocked kernels the engine runs) or naive.
    pub variant: String,
    /// forward, input_grad, weight_grad or fwd+bwd.
    pub pass: String,
    /// A conv's [N, Cin, Cout, H, W] (H, W of its input); a norm's [N, C, H, W]; a flat
    /// kernel's [elements].
    pub shape: Vec<usize>,
    pub median_ms: f64,
    pub gflops: f64,
    pub gbps: f64,
    /// The roofline bound's time over the measured time, in %.
    pub pct_of_bound: f64,
    /// "flops" or "bytes": which ceiling bounds the row.
    pub bound: String,
}

fn row(c: &Ceilings, name: &str, variant: &str, pass: &str, shape: Vec<usize>, ms: f64, flop: f64, bytes: f64) -> KernelRow {
    let (tf, tb) = (flop / (c.gflops * 1e6), bytes / (c.gbps * 1e6));
    KernelRow {
        name: name.into(),
        variant: variant.into(),
        pass: pass.into(),
        shape,
        median_ms: ms,
        gflops: flop / ms / 1e6,
        gbps: bytes / ms / 1e6,
        pct_of_bound: 100.0 * tf.max(tb) / ms,
        bound: if tf >= tb { "flops" } else { "bytes" }.into(),
    }
}

/// What the suite runs.
pub struct Suite {
    /// Only rows whose family (or model) contains this.
    pub filter: Option<String>,
    /// Also the channel-block conv variant and the naive variants (fewer runs).
    pub all: bool,
    /// Runs per kernel row (median); the naive variants get a quarter.
    pub runs: usize,
    /// Training steps: (model, batch); runs per model.
    pub models: Vec<(String, usize)>,
    pub model_runs: usize,
    /// Also the convs with f16 operands and the training steps under `train.amp` (adapters
    /// with shader-f16).
    pub amp: bool,
}

/// The kernel rows at the denoiser's shapes, batch 128.
pub fn kernel_rows(ctx: &Ctx, c: &Ceilings, timer: Timer, s: &Suite) -> Result<Vec<KernelRow>> {
    let keep = |name: &str| s.filter.as_deref().is_none_or(|f| name.contains(f));
    let n = 128;
    let mut rows = Vec::new();
    use crate::ops::kernels::{Kernels, Pin};
    // The default runs what training runs (autotune's pick per shape unless DAE_KERNELS pins
    // one, listed under the table); --all also times each blocking of the kernel table pinned
    // (with the weight-gradient blocking the checks pair it with), and the simple kernels.
    let base = Pin::from_env()?;
    let mut pins: Vec<(Pin, String, usize)> =
        vec![(base, if base == Pin::AUTO { "tiled, autotuned".into() } else { format!("pinned {base:?}") }, s.runs)];
    if s.all {
        for pin in crate::ops::kernels::every_pin() {
            match (pin.conv, pin.wgrad) {
                (Some(b), Some(d)) => pins.push((pin, format!("{} / {}", b.row().label, d.row().label), s.runs)),
                _ => pins.push((pin, "naive".into(), (s.runs / 4).max(3))),
            }
        }
    }
    // (family, cin, cout, h, w, k, stride, pad, transposed)
    let convs = [
        ("conv2d", 1, 32, 28, 28, 3, 1, 1, false),
        ("conv2d", 32, 32, 28, 28, 3, 1, 1, false),
        ("conv2d", 64, 64, 16, 16, 3, 1, 1, false),
        ("conv2d", 128, 128, 8, 8, 3, 1, 1, false),
        ("conv2d", 32, 64, 32, 32, 4, 2, 1, false),
        ("conv_transpose2d", 64, 32, 8, 8, 4, 2, 1, true),
    ];
    for (name, cin, cout, h, w, k, st, pd, transposed) in convs {
        if !keep(name) {
            continue;
        }
        // In conv terms a transposed conv's output is the input side.
        let (ho, wo) =
            if transposed { ((h - 1) * st + k - 2 * pd, (w - 1) * st + k - 2 * pd) } else { ((h + 2 * pd - k) / st + 1, (w + 2 * pd - k) / st + 1) };
        let g = if transposed {
            ConvGeom { n, cin: cout, h: ho, w: wo, cout: cin, ho: h, wo: w, kh: k, kw: k, stride: (st, st), pad: (pd, pd), xs: Chans::PLAIN }
        } else {
            ConvGeom { n, cin, h, w, cout, ho, wo, kh: k, kw: k, stride: (st, st), pad: (pd, pd), xs: Chans::PLAIN }
        };
        let xin = rand_view(ctx, n * g.cin * g.h * g.w, 1)?;
        let wt = rand_view(ctx, g.cout * g.cin * k * k, 2)?;
        let dy = rand_view(ctx, n * g.cout * g.ho * g.wo, 3)?;
        let y = ctx.alloc("bench", n * g.cout * g.ho * g.wo)?;
        let dx = ctx.alloc("bench", n * g.cin * g.h * g.w)?;
        let dw = ctx.alloc("bench", g.cout * g.cin * k * k)?;
        let flop = 2.0 * (n * g.cout * g.ho * g.wo * g.cin * k * k) as f64;
        let (bx, bw, by) = ((4 * n * g.cin * g.h * g.w) as f64, (4 * g.cout * g.cin * k * k) as f64, (4 * n * g.cout * g.ho * g.wo) as f64);
        let shape = vec![n, cin, cout, h, w];
        // Under --amp, autotune's pick once more with f16 operands (the casts included: what
        // a training step pays; the flop and byte counts stay those of the f32 passes).
        let mut passes: Vec<(Kernels, String, usize)> = pins.iter().map(|(p, v, runs)| (Kernels::pinned(*p), v.clone(), *runs)).collect();
        if s.amp && ctx.gpu().has_f16() {
            passes.push((Kernels { half: Some(ctx.alloc("bench", 1)?), pin: base }, format!("{}, f16", pins[0].1), s.runs));
        }
        for (kn, v, runs) in passes {
            let (v, kn) = (v.as_str(), &kn);
            // The three kernels; for the transposed conv its forward is the conv input grad.
            // fwd+bwd: the three timed within the same runs, summed.
            let mut fwd = || {
                if transposed {
                    conv2d_input_grad(ctx, kn, &g, &wt, None, &dy, &dx, false)
                } else {
                    conv2d_forward(ctx, kn, &g, &xin, &wt, None, &y, false)
                }
            };
            let mut ig = || {
                if transposed {
                    conv2d_forward(ctx, kn, &g, &xin, &wt, None, &y, false)
                } else {
                    conv2d_input_grad(ctx, kn, &g, &wt, None, &dy, &dx, false)
                }
            };
            let mut wg = || conv2d_weight_grad(ctx, kn, &g, &xin, &dy, &dw, false);
            let (fb, ib) = if transposed { (by + bw + bx, bx + bw + by) } else { (bx + bw + by, by + bw + bx) };
            let ms = time_each(ctx, timer, 1, runs, &mut [&mut fwd, &mut ig, &mut wg])?;
            rows.push(row(c, name, v, "forward", shape.clone(), ms[0], flop, fb));
            rows.push(row(c, name, v, "input_grad", shape.clone(), ms[1], flop, ib));
            rows.push(row(c, name, v, "weight_grad", shape.clone(), ms[2], flop, bx + by + bw));
            rows.push(row(c, name, v, "fwd+bwd", shape.clone(), ms[3], 3.0 * flop, fb + ib + bx + by + bw));
        }
    }
    if keep("group_norm") {
        use crate::ops::amp::{half_copy, operand_of};
        use crate::ops::group_norm::{GroupNormParams, group_norm_forward, group_norm_input_grad, group_norm_param_grad};
        let (ch, hw, groups) = (32, 28 * 28, 8);
        let len = n * ch * hw;
        let (x, dy) = (rand_view(ctx, len, 4)?, rand_view(ctx, len, 5)?);
        let (gm, bt) = (rand_view(ctx, ch, 6)?, rand_view(ctx, ch, 7)?);
        let (y, dx, st, dg, db) = (
            ctx.alloc("bench", len)?,
            ctx.alloc("bench", len)?,
            ctx.alloc("bench", n * groups * 2)?,
            ctx.alloc("bench", ch)?,
            ctx.alloc("bench", ch)?,
        );
        let p =
            GroupNormParams { n: n as u32, c: ch as u32, hw: hw as u32, groups: groups as u32, eps: 1e-5, s_c: 1, s_total: 1, ..Default::default() };
        let shape = vec![n, ch, 28, 28];
        let e = len as f64;
        for (flag, v) in norm_passes(ctx, s.amp, "per group; 2-stage dparams")? {
            let kn = Kernels { half: flag, pin: base };
            // Under --amp the forward also makes the f16 copy the backward reads, as in a step.
            let x16 = std::cell::RefCell::new(None);
            let mut fwd = || -> Result<()> {
                group_norm_forward(ctx, &kn, None, p, &x, &gm, &bt, &st, &y)?;
                *x16.borrow_mut() = half_copy(ctx, kn.half.as_ref(), &x, n, ch, hw, Chans::PLAIN)?;
                Ok(())
            };
            let mut bwd = || -> Result<()> {
                let x16 = x16.borrow();
                group_norm_input_grad(ctx, &kn, None, p, operand_of(&x16, &x), &gm, &bt, &dy, &st, &dx)?;
                group_norm_param_grad(ctx, &kn, None, p, operand_of(&x16, &x), &gm, &bt, &dy, &st, &dg, &db)
            };
            let ms = time_each(ctx, timer, 1, s.runs, &mut [&mut fwd, &mut bwd])?;
            rows.push(row(c, "group_norm", &v, "forward", shape.clone(), ms[0], 8.0 * e, 8.0 * e));
            rows.push(row(c, "group_norm", &v, "fwd+bwd", shape.clone(), ms[2], 24.0 * e, 24.0 * e));
        }
    }
    if keep("batch_norm") {
        use crate::ops::amp::{half_copy, operand_of};
        use crate::ops::batch_norm::{BatchNormParams, batch_norm_backward, batch_norm_forward_train};
        let (ch, hw) = (64, 14 * 14);
        let len = n * ch * hw;
        let (x, dy) = (rand_view(ctx, len, 8)?, rand_view(ctx, len, 9)?);
        let (gm, bt) = (rand_view(ctx, ch, 10)?, rand_view(ctx, ch, 11)?);
        let (rm, rv) = (ctx.alloc("bench", ch)?, ctx.alloc("bench", ch)?);
        crate::ops::elementwise::fill(ctx, &rm, 0.0)?;
        crate::ops::elementwise::fill(ctx, &rv, 1.0)?;
        let (y, dx, st, dg, db) =
            (ctx.alloc("bench", len)?, ctx.alloc("bench", len)?, ctx.alloc("bench", ch * 2)?, ctx.alloc("bench", ch)?, ctx.alloc("bench", ch)?);
        let p = BatchNormParams {
            n: n as u32,
            c: ch as u32,
            hw: hw as u32,
            eps: 1e-5,
            momentum: 0.1,
            write_dx: 1,
            write_dparams: 1,
            s_c: 1,
            s_total: 1,
            ..Default::default()
        };
        let shape = vec![n, ch, 14, 14];
        let e = len as f64;
        for (flag, v) in norm_passes(ctx, s.amp, "2-stage (channel x chunk)")? {
            let kn = Kernels { half: flag, pin: base };
            let x16 = std::cell::RefCell::new(None);
            let mut fwd = || -> Result<()> {
                batch_norm_forward_train(ctx, &kn, None, p, &x, &gm, &bt, &st, &rm, &rv, &y)?;
                *x16.borrow_mut() = half_copy(ctx, kn.half.as_ref(), &x, n, ch, hw, Chans::PLAIN)?;
                Ok(())
            };
            let mut bwd = || batch_norm_backward(ctx, &kn, None, p, operand_of(&x16.borrow(), &x), &gm, &bt, &dy, &st, &dx, &dg, &db);
            let ms = time_each(ctx, timer, 1, s.runs, &mut [&mut fwd, &mut bwd])?;
            rows.push(row(c, "batch_norm", &v, "forward", shape.clone(), ms[0], 8.0 * e, 8.0 * e));
            rows.push(row(c, "batch_norm", &v, "fwd+bwd", shape.clone(), ms[2], 24.0 * e, 24.0 * e));
        }
    }
    let params = 4_281_089; // UNetDAE 64/3
    if keep("adamw") {
        use crate::optim::{Hyper, Optimizer};
        let (p, g) = (rand_view(ctx, params, 12)?, rand_view(ctx, params, 13)?);
        let hyper = Hyper {
            kind: crate::ops::optim::OptKind::Adamw,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 1e-4,
            momentum: 0.0,
            grad_clip: Some(1.0),
        };
        let mut opt = Optimizer::new(ctx, params, hyper)?;
        let ms = time(ctx, timer, 1, s.runs, || opt.step(ctx, &p, &g, 1e-4))?;
        // The gradient norm reads g; the fused update reads p, g, m, v and writes p, m, v.
        let e = params as f64;
        rows.push(row(c, "adamw", "grad norm + fused update", "step", vec![params], ms, 16.0 * e, 32.0 * e));
    }
    if keep("ema") {
        let (p, ema) = (rand_view(ctx, params, 14)?, rand_view(ctx, params, 15)?);
        let ms = time(ctx, timer, 1, s.runs, || crate::ops::optim::ema_update(ctx, 0.999, &p, &ema))?;
        let e = params as f64;
        rows.push(row(c, "ema", "fused", "step", vec![params], ms, 3.0 * e, 12.0 * e));
    }
    if keep("fft2") {
        use crate::ops::fft::{Fft2d, factors};
        // 2,000 images (an analysis runs the 10,000 of a test set: five times this) keep the
        // row's runs within seconds on a CPU adapter.
        let (b, hw) = (2_000usize, 28usize);
        let plan = Fft2d::new(ctx, hw, hw)?;
        let x = rand_view(ctx, b * hw * hw, 4)?;
        let spec = ctx.alloc("bench", 2 * b * hw * hw)?;
        // Mixed-radix stages as 8 n r flops per radix-r stage of length n (complex multiply-adds).
        let stage_flops: f64 = factors(hw).iter().map(|r| 8.0 * (hw * r) as f64).sum();
        let ms = time(ctx, timer, 1, s.runs.min(3), || plan.forward(ctx, &x, b, &spec))?;
        rows.push(row(
            c,
            "fft2",
            "mixed radix",
            "forward",
            vec![b, 1, hw, hw],
            ms,
            2.0 * (b * hw) as f64 * stage_flops,
            (4 * b * hw * hw * 3) as f64,
        ));
    }
    Ok(rows)
}

/// The full report (`dae bench --json`).
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub adapter: String,
    pub backend: String,
    pub driver: String,
    pub timer: String,
    pub ceilings: Ceilings,
    pub kernels: Vec<KernelRow>,
    pub train: Vec<TrainRow>,
    /// Every kernel and shape autotune timed in this run, with each candidate's time.
    pub tuned: Vec<TunedRow>,
}

/// One autotune decision of this run: the kernel and shape, each candidate's time (ms, median
/// of two runs after a warm-up) and the winner.
#[derive(Clone, Debug, Serialize)]
pub struct TunedRow {
    pub kernel: String,
    pub candidates: Vec<(String, f64)>,
    pub chosen: String,
}

/// The autotune decisions `ctx` timed so far.
pub fn tuned_rows(ctx: &Ctx) -> Vec<TunedRow> {
    ctx.tuner()
        .times()
        .into_iter()
        .map(|(kernel, candidates)| {
            let chosen = candidates.iter().min_by(|a, b| a.1.total_cmp(&b.1)).map(|c| c.0.clone()).unwrap_or_default();
            TunedRow { kernel, candidates, chosen }
        })
        .collect()
}

/// The autotune table: what was timed in this run and what won (empty when all came from the
/// cache).
pub fn tuned_table(rows: &[TunedRow]) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let mut s =
        format!("\nautotune (timed in this run; cache: {}):\n", crate::gpu::tune::cache_path().map_or("none".into(), |p| p.display().to_string()));
    for r in rows {
        let c: Vec<String> = r.candidates.iter().map(|(l, ms)| format!("{l} {ms:.2} ms")).collect();
        s += &format!("  {:<70} {:<16} ({})\n", r.kernel, r.chosen, c.join(", "));
    }
    s
}

/// Seconds of autotune timing the suite allows itself (training's default is 1 s per slice,
/// which batch-128 shapes on a CPU adapter spend on the first shape).
const BENCH_TUNE_BUDGET_S: f64 = 300.0;

/// Ceilings, kernel rows and training steps, in one run on `ctx`.
/// The kernel families the suite times (the rows' first column), for `--filter`.
pub const KERNELS: [&str; 7] = ["conv2d", "conv_transpose2d", "group_norm", "batch_norm", "adamw", "ema", "fft2"];

pub fn suite(ctx: &Ctx, s: &Suite, progress: &mut dyn FnMut(&str)) -> Result<Report> {
    if let Some(f) = &s.filter {
        let names: Vec<&str> = KERNELS.iter().copied().chain(s.models.iter().map(|(m, _)| m.as_str())).collect();
        if !names.iter().any(|n| n.contains(f.as_str())) {
            return Err(crate::error::Error::Config(format!("--filter {f:?} matches no kernel or model of the suite: {}", names.join(", "))));
        }
    }
    // Rows of untuned shapes would time the first blocking, not what training runs once tuned.
    ctx.tuner().widen_budget(BENCH_TUNE_BUDGET_S);
    let timer = if ctx.set_gpu_timer(true)? { Timer::Gpu } else { Timer::Wall };
    let result = (|| -> Result<Report> {
        progress("ceilings");
        let c = ceilings(ctx, timer, s.runs)?;
        progress("kernels");
        let kernels = kernel_rows(ctx, &c, timer, s)?;
        let mut train = Vec::new();
        for (m, b) in &s.models {
            if s.filter.as_deref().is_none_or(|f| m.contains(f)) {
                progress(m);
                // The cold first step (timed on its own) is the warm-up.
                train.push(model_step_timed(ctx, timer, m, *b, 0, s.model_runs, false, false)?.0);
                if s.amp && ctx.gpu().has_f16() {
                    progress(&format!("{m} (amp)"));
                    train.push(model_step_timed(ctx, timer, m, *b, 0, s.model_runs, false, true)?.0);
                }
            }
        }
        let info = &ctx.gpu().info;
        Ok(Report {
            adapter: info.name.clone(),
            backend: format!("{:?}", info.backend),
            driver: format!("{} {}", info.driver, info.driver_info),
            timer: timer.name().into(),
            ceilings: c,
            kernels,
            train,
            tuned: tuned_rows(ctx),
        })
    })();
    ctx.set_gpu_timer(false)?;
    result
}

/// The terminal table of a report.
pub fn table(r: &Report) -> String {
    let mut s = format!(
        "adapter: {} ({}, {}); times: {}\nceilings: {:.1} GFLOP/s (vec4 FMA chains), {:.1} GB/s (copy)\n\n",
        r.adapter, r.backend, r.driver, r.timer, r.ceilings.gflops, r.ceilings.gbps
    );
    s += &format!(
        "{:<17} {:<38} {:<11} {:<22} {:>10} {:>9} {:>8} {:>10}\n",
        "kernel", "variant", "pass", "shape", "median ms", "GFLOP/s", "GB/s", "% of bound"
    );
    for k in &r.kernels {
        let shape = format!("{:?}", k.shape);
        s += &format!(
            "{:<17} {:<38} {:<11} {:<22} {:>10.3} {:>9.2} {:>8.2} {:>7.1}% {}\n",
            k.name, k.variant, k.pass, shape, k.median_ms, k.gflops, k.gbps, k.pct_of_bound, k.bound
        );
    }
    if !r.train.is_empty() {
        s += "\n";
        s += &train_table(&r.train.iter().map(|t| (t.clone(), Vec::new())).collect::<Vec<_>>());
    }
    s += &tuned_table(&r.tuned);
    s
}

/// One row of `dae bench --models`: a whole training step of a SPEC model.
#[derive(Clone, Debug, Serialize)]
pub struct TrainRow {
    pub model: String,
    pub batch: usize,
    /// Under `train.amp` (f16 conv operands, loss scaling).
    pub amp: bool,
    pub images_per_s: f64,
    /// The first step from a cold start: compiling the kernels and recording the plan (and
    /// autotune within the process's budget).
    pub first_step_s: f64,
    /// After the first step, the seconds spent recording the step anew while autotune timed the
    /// shapes the first one left untimed (0 when the tune cache knew them all).
    pub tune_s: f64,
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
    let mc =
        crate::nn::ModelConfig { name: arch, base_ch: b.parse().map_err(|_| bad())?, num_downs: d.parse().map_err(|_| bad())?, ..Default::default() };
    mc.validate()?;
    Ok(mc)
}

/// The passes of a norm's rows: f32, and under `amp` (where the adapter has shader-f16) once
/// more with half precision on (an overflow flag) and the backward on the saved f16 copy of x.
fn norm_passes(ctx: &Ctx, amp: bool, variant: &str) -> Result<Vec<(Option<View>, String)>> {
    let mut v = vec![(None, variant.to_string())];
    if amp && ctx.gpu().has_f16() {
        v.push((Some(ctx.alloc("bench", 1)?), format!("{variant}; f16 saved x")));
    }
    Ok(v)
}

/// One training step of a SPEC model as `dae train` runs it, by `dae train`'s own code
/// (`Trainer`: the batch gathered from a dataset on the GPU through the epoch's permutation, the
/// noise, forward, the loss, backward, global clip, AdamW, the EMA of weights and buffers, the
/// log copies) on synthetic images, recorded once as a plan and replayed; `spec` like `unet16x2`
/// or `conv64x3`; the default config otherwise. The first step is timed from a cold start
/// (compile, and autotune within the process's budget); then, as in training, the step is
/// recorded anew until autotune has timed all its shapes (within `BENCH_TUNE_BUDGET_S` for the
/// process), and the timed steps replay that plan. With `profile`, one more step follows with
/// every dispatch timed on its own: (entry point, calls, seconds), slowest first. `amp`: as
/// under `train.amp` (an error where the adapter lacks shader-f16).
#[allow(clippy::type_complexity)]
pub fn model_step(
    ctx: &Ctx,
    spec: &str,
    batch: usize,
    warmup: usize,
    iters: usize,
    profile: bool,
    amp: bool,
) -> Result<(TrainRow, Vec<(&'static str, u64, f64)>)> {
    model_step_timed(ctx, Timer::Wall, spec, batch, warmup, iters, profile, amp)
}

/// The run `model_step` times: the default config with `spec`'s model at `batch`, on 4 batches
/// of synthetic images (and one validation image, which the bench never scores).
fn bench_config(spec: &str, batch: usize, amp: bool) -> Result<crate::config::Config> {
    let mut cfg = crate::config::Config { model: spec_model(spec)?, ..Default::default() };
    cfg.train.batch_size = batch;
    cfg.train.amp = amp;
    cfg.data.val_size = 1;
    cfg.validate()?;
    Ok(cfg)
}

/// `model_step` with the step timed by `timer`.
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
pub fn model_step_timed(
    ctx: &Ctx,
    timer: Timer,
    spec: &str,
    batch: usize,
    warmup: usize,
    iters: usize,
    profile: bool,
    amp: bool,
) -> Result<(TrainRow, Vec<(&'static str, u64, f64)>)> {
    if amp && !ctx.gpu().has_f16() {
        return Err(crate::error::Error::Msg("--amp: this adapter has no shader-f16 (train.amp would train in f32)".into()));
    }
    let cfg = bench_config(spec, batch, amp)?;
    let t_cold = Instant::now();
    let mut rng = crate::util::rng::Rng::new(9);
    let count = 4 * batch + cfg.data.val_size;
    let pixels: Vec<u8> = rng.vec(count * 784).iter().map(|v| ((0.5 + 0.5 * v).clamp(0.0, 1.0) * 255.0) as u8).collect();
    let images = crate::data::IdxImages { count, rows: 28, cols: 28, pixels };
    let mut tr = crate::train::Trainer::on_images(ctx, &cfg, &crate::train::TrainOptions::default(), &images, &mut |_| {})
        .map_err(|e| e.limit_in_terms_of("--batch", batch))?;
    let log = ctx.alloc("step log", 2)?;
    let step = |tr: &mut crate::train::Trainer| tr.bench_step(&log).map_err(|e| e.limit_in_terms_of("--batch", batch));
    step(&mut tr)?;
    ctx.gpu().wait()?;
    let first_step_s = t_cold.elapsed().as_secs_f64();
    // As `dae train` does, the step is recorded anew while autotune has shapes of it to time,
    // so the timed steps run what training settles on; within the suite's budget rather than
    // in training's 1 s slices (a re-recording per slice: about one shape a minute for unet64x3
    // at batch 16 on lavapipe). Shapes past that budget run untuned, as they did before.
    let t_tune = Instant::now();
    ctx.tuner().widen_budget(BENCH_TUNE_BUDGET_S);
    while tr.retuning() && ctx.tuner().budget_left() {
        step(&mut tr)?;
    }
    // The plan of the timed steps is recorded (a last re-recording, if any, happens here).
    step(&mut tr)?;
    ctx.gpu().wait()?;
    let tune_s = t_tune.elapsed().as_secs_f64();
    let ms = time(ctx, timer, warmup, iters, &mut || step(&mut tr))?;
    let mut prof = Vec::new();
    if profile {
        ctx.set_profile(true)?;
        let r = step(&mut tr);
        prof = ctx.profile();
        ctx.set_profile(false)?;
        r?;
    }
    let (dispatches, peak) = tr.plan_stats().unwrap_or((0, 0));
    let mib = |b: u64| b as f64 / (1u64 << 20) as f64;
    let row = TrainRow {
        model: spec.to_string(),
        batch,
        amp,
        images_per_s: batch as f64 * 1e3 / ms,
        first_step_s,
        tune_s,
        dispatches,
        peak_mem_mb: mib(peak),
        min_mem_mb: min_bytes(spec, batch).map(mib),
    };
    Ok((row, prof))
}

/// The terminal table of training steps (and profiles).
pub fn train_table(rows: &[(TrainRow, Vec<(&'static str, u64, f64)>)]) -> String {
    let mut s = format!(
        "{:<16} {:>6} {:>10} {:>14} {:>8} {:>11} {:>10} {:>10} {:>9}\n",
        "model", "batch", "images/s", "first step s", "tune s", "dispatches", "peak MiB", "min MiB", "peak/min"
    );
    for (r, prof) in rows {
        let (min, ratio) = match r.min_mem_mb {
            Some(m) => (format!("{m:.1}"), format!("{:.2}", r.peak_mem_mb / m)),
            None => ("-".into(), "-".into()),
        };
        let model = if r.amp { format!("{} amp", r.model) } else { r.model.clone() };
        s += &format!(
            "{:<16} {:>6} {:>10.2} {:>14.2} {:>8.1} {:>11} {:>10.1} {:>10} {:>9}\n",
            model, r.batch, r.images_per_s, r.first_step_s, r.tune_s, r.dispatches, r.peak_mem_mb, min, ratio
        );
        let total: f64 = prof.iter().map(|p| p.2).sum();
        for (entry, calls, secs) in prof {
            s += &format!("    {entry:<34} x{calls:<4} {:>9.2} ms {:>5.1}%\n", secs * 1e3, 100.0 * secs / total);
        }
    }
    s
}
