//! Launchers for shaders/lpips.wgsl: LPIPS's scaling layer and its per-tap distance.

use crate::error::{Error, Result};
use crate::gpu::{Ctx, Launch, View};
use crate::gpu_params;
use crate::ops::{flag, grid_groups, grid1d, u};

gpu_params! {
    /// Keep in sync with `struct LpipsParams` in shaders/lpips.wgsl.
    pub struct LpipsParams {
        pub n: u32, pub ch: u32, pub h: u32, pub w: u32,
        pub offset: u32, pub accumulate: u32, pub in_ch: u32, pub _pad0: u32,
        pub in_scale: f32, pub in_shift: f32, pub eps: f32, pub _pad1: f32,
        pub shift: [f32; 4],
        pub scale: [f32; 4],
    }
}

const FAMILY: &str = "lpips";
/// Added to each pixel's feature norm (the `lpips` package's normalize_tensor).
pub const EPS: f32 = 1e-10;

/// y [n, 3, h, w] = ((x * in_scale + in_shift) - shift[c]) / scale[c], x [n, in_ch, h, w] with
/// in_ch 1 (repeated to 3 channels) or 3.
#[allow(clippy::too_many_arguments)]
pub fn lpips_input(ctx: &Ctx, x: &View, [n, in_ch, h, w]: [usize; 4], affine: (f32, f32), shift: [f32; 3], scale: [f32; 3], y: &View) -> Result<()> {
    if in_ch != 1 && in_ch != 3 {
        return Err(Error::shape("lpips_input", format!("LPIPS takes 1- or 3-channel images, got {in_ch}")));
    }
    let p = LpipsParams {
        n: u(n),
        h: u(h),
        w: u(w),
        in_ch: u(in_ch),
        in_scale: affine.0,
        in_shift: affine.1,
        shift: [shift[0], shift[1], shift[2], 0.0],
        scale: [scale[0], scale[1], scale[2], 1.0],
        ..Default::default()
    };
    ctx.dispatch(Launch {
        family: FAMILY,
        entry: "lpips_input",
        overrides: &[],
        params: &p,
        bindings: &[(1, x), (5, y)],
        groups: grid1d(ctx, FAMILY, n * 3 * h * w)?,
    })
}

/// out[offset + i] (+)= mean over pixels of sum_c head[c] (f0/|f0| - f1/|f1|)^2, features
/// [n, ch, h, w], normalised over channels at each pixel.
#[allow(clippy::too_many_arguments)]
pub fn lpips_distance(
    ctx: &Ctx,
    f0: &View,
    f1: &View,
    head: &View,
    [n, ch, h, w]: [usize; 4],
    out: &View,
    offset: usize,
    accumulate: bool,
) -> Result<()> {
    if head.len() != ch || f0.len() != n * ch * h * w || f1.len() != f0.len() || offset + n > out.len() {
        return Err(Error::shape(
            "lpips_distance",
            format!(
                "features of {} and {} elements, head of {}, for [{n}, {ch}, {h}, {w}] into slots {offset}..{} of {}",
                f0.len(),
                f1.len(),
                head.len(),
                offset + n,
                out.len()
            ),
        ));
    }
    let p = LpipsParams { n: u(n), ch: u(ch), h: u(h), w: u(w), offset: u(offset), accumulate: flag(accumulate), eps: EPS, ..Default::default() };
    ctx.dispatch(Launch {
        family: FAMILY,
        entry: "lpips_distance",
        overrides: &[],
        params: &p,
        bindings: &[(2, f0), (3, f1), (4, head), (6, out)],
        groups: grid_groups(ctx, FAMILY, n)?,
    })
}
