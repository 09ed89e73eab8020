//! Launchers for shaders/metrics.wgsl: per-image MSE / PSNR / MAE / Charbonnier and SSIM of a
//! batch, written into per-image slots of buffers that live for a whole evaluation pass.

use crate::error::{Error, Result};
use crate::gpu::{Ctx, Launch, View};
use crate::gpu_params;
use crate::ops::{grid_groups, grid1d, u};

gpu_params! {
    /// Keep in sync with `struct MetricsParams` in shaders/metrics.wgsl.
    pub struct MetricsParams {
        pub n: u32, pub ch: u32, pub h: u32, pub w: u32,
        pub offset: u32, pub _pad0: u32, pub _pad1: u32, pub _pad2: u32,
        pub pred_scale: f32, pub pred_shift: f32, pub eps: f32, pub mse_floor: f32,
        pub psnr_cap: f32, pub inv_gsum: f32, pub c1: f32, pub c2: f32,
    }
}

const FAMILY: &str = "metrics";

/// PSNR reported for an exact image (MSE at or below [`MSE_FLOOR`]): finite, so averages stay
/// finite; the evaluation JSON names it.
pub const PSNR_CAP: f32 = 100.0;
pub const MSE_FLOOR: f32 = 1e-10;
/// The Charbonnier loss's epsilon (as `train.loss: charbonnier`).
pub const CHARBONNIER_EPS: f32 = 1e-3;
/// SSIM window (11 taps, sigma 1.5) and constants (K1 0.01, K2 0.03, data range 1).
pub const SSIM_WIN: usize = 11;
pub const SSIM_SIGMA: f64 = 1.5;
pub const SSIM_K1: f64 = 0.01;
pub const SSIM_K2: f64 = 0.03;

/// Per-image statistics in a [`Slots`] row, in order.
pub const STAT_MSE: usize = 0;
pub const STAT_PSNR: usize = 1;
pub const STAT_MAE: usize = 2;
pub const STAT_CHARBONNIER: usize = 3;

/// Result slots for `n` images: `stats` [n, 4] (MSE, PSNR, MAE, Charbonnier) and `ssim` [n].
pub struct Slots {
    pub stats: View,
    pub ssim: View,
    pub n: usize,
}

impl Slots {
    pub fn new(ctx: &Ctx, n: usize) -> Result<Slots> {
        Ok(Slots { stats: ctx.alloc("metrics", 4 * n)?, ssim: ctx.alloc("metrics", n)?, n })
    }

    /// Read back (one wait): per image [MSE, PSNR, MAE, Charbonnier] and SSIM.
    pub async fn read(&self, ctx: &Ctx) -> Result<(Vec<[f32; 4]>, Vec<f32>)> {
        let s = ctx.read(&self.stats).await?;
        Ok((s.chunks(4).map(|c| [c[0], c[1], c[2], c[3]]).collect(), ctx.read(&self.ssim).await?))
    }
}

fn gauss_sum() -> f64 {
    (0..SSIM_WIN).map(|k| (-((k as f64 - 5.0).powi(2)) / (2.0 * SSIM_SIGMA * SSIM_SIGMA)).exp()).sum()
}

/// Score `pred` [n, ch, h, w] (mapped by `pred * scale + shift` first: (1, 0) for a
/// reconstruction in [0, 1]) against `clean` of the same shape into slots[offset..offset + n].
pub fn image_metrics(ctx: &Ctx, pred: &View, clean: &View, shape: [usize; 4], affine: (f32, f32), slots: &Slots, offset: usize) -> Result<()> {
    let [n, ch, h, w] = shape;
    let len = n * ch * h * w;
    if pred.len() != len || clean.len() != len || n == 0 || len == 0 {
        return Err(Error::shape("metrics", format!("pred has {} elements and clean {}, shape {shape:?} needs {len}", pred.len(), clean.len())));
    }
    if h < SSIM_WIN || w < SSIM_WIN {
        return Err(Error::shape("metrics", format!("SSIM needs images of at least {SSIM_WIN}x{SSIM_WIN} (its Gaussian window), got {h}x{w}")));
    }
    if offset + n > slots.n {
        return Err(Error::shape("metrics", format!("images {offset}..{} do not fit {} result slots", offset + n, slots.n)));
    }
    let p = MetricsParams {
        n: u(n),
        ch: u(ch),
        h: u(h),
        w: u(w),
        offset: u(offset),
        pred_scale: affine.0,
        pred_shift: affine.1,
        eps: CHARBONNIER_EPS,
        mse_floor: MSE_FLOOR,
        psnr_cap: PSNR_CAP,
        inv_gsum: (1.0 / gauss_sum()) as f32,
        c1: (SSIM_K1 * SSIM_K1) as f32,
        c2: (SSIM_K2 * SSIM_K2) as f32,
        ..Default::default()
    };
    let per_image = grid_groups(ctx, "metrics", n)?;
    ctx.dispatch(Launch {
        family: FAMILY,
        entry: "metrics_pixel",
        overrides: &[],
        params: &p,
        bindings: &[(1, pred), (2, clean), (5, &slots.stats)],
        groups: per_image,
    })?;
    let wo = w - (SSIM_WIN - 1);
    let tmp = ctx.alloc("ssim", n * ch * 5 * h * wo)?;
    let rows = n * ch * h * wo;
    ctx.dispatch(Launch {
        family: FAMILY,
        entry: "ssim_rows",
        overrides: &[],
        params: &p,
        bindings: &[(1, pred), (2, clean), (4, &tmp)],
        groups: grid1d(ctx, "ssim", rows)?,
    })?;
    ctx.dispatch(Launch {
        family: FAMILY,
        entry: "ssim_image",
        overrides: &[],
        params: &p,
        bindings: &[(3, &tmp), (6, &slots.ssim)],
        groups: per_image,
    })
}
