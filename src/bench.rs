//! `dae bench`: kernel microbenchmarks and the whole training step, timed on the chosen adapter.
//! Wall clock around `n` submits of the same work, each followed by a wait (so timings include
//! the submit and the driver's dispatch cost, as a training step sees them). Median of `iters`.

use std::time::Instant;

use serde::Serialize;

use crate::error::Result;
use crate::gpu::{Ctx, View};
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
    ctx.upload("bench", &crate::check::Rng::new(seed).vec(n))
}

/// The conv shapes of UNetDAE base 16 / 2 downs at 28x28 (cin, cout, hw).
pub const UNET16_CONVS: &[(usize, usize, usize)] = &[(1, 16, 28), (16, 16, 28), (16, 32, 14), (32, 32, 14), (32, 32, 7), (64, 32, 14), (32, 16, 14), (32, 16, 28)];

pub fn conv_rows(ctx: &Ctx, batch: usize, warmup: usize, iters: usize) -> Result<Vec<BenchRow>> {
    let mut rows = Vec::new();
    for &(cin, cout, hw) in UNET16_CONVS {
        let g = ConvGeom { n: batch, cin, h: hw, w: hw, cout, ho: hw, wo: hw, kh: 3, kw: 3, stride: (1, 1), pad: (1, 1) };
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

pub fn table(rows: &[BenchRow]) -> String {
    let mut s = format!("{:<52} {:>10} {:>9}\n", "kernel / shape", "ms", "GFLOP/s");
    for r in rows {
        s += &format!("{:<52} {:>10.3} {:>9.2}\n", r.name, r.ms, r.gflops);
    }
    s
}
