//! Launchers for shaders/resize_bilinear.wgsl and the graph ops resize_bilinear / upsample2x.

use crate::error::Result;
use crate::gpu::{Ctx, Launch, View};
use crate::gpu_params;
use crate::ops::Sink;
use crate::ops::{Chans, flag, grid1d, nonzero, output_to, u};
use crate::tensor::{Handle, Tensor};

gpu_params! {
    /// Keep in sync with `struct ResizeBilinearParams` in shaders/resize_bilinear.wgsl.
    pub struct ResizeBilinearParams {
        pub planes: u32, pub h: u32, pub w: u32, pub ho: u32,
        pub wo: u32, pub align_corners: u32, pub accumulate: u32, pub s_c: u32,
        pub scale_h: f32, pub scale_w: f32, pub s_off: u32, pub s_total: u32,
    }
}

const FAMILY: &str = "resize_bilinear";

/// PyTorch's source-index scale, in f32 as PyTorch computes it for f32 tensors.
fn scale(len_in: usize, len_out: usize, align_corners: bool) -> f32 {
    if align_corners { if len_out > 1 { (len_in as f32 - 1.0) / (len_out as f32 - 1.0) } else { 0.0 } } else { len_in as f32 / len_out as f32 }
}

pub fn resize_bilinear_forward(ctx: &Ctx, p: ResizeBilinearParams, x: &View, y: &View) -> Result<()> {
    let groups = grid1d(ctx, FAMILY, (p.planes * p.ho * p.wo) as usize)?;
    ctx.dispatch(Launch { family: FAMILY, entry: "resize_bilinear_forward", overrides: &[], params: &p, bindings: &[(1, x), (3, y)], groups })
}

pub fn resize_bilinear_backward(ctx: &Ctx, p: ResizeBilinearParams, dy: &View, dx: &View) -> Result<()> {
    let groups = grid1d(ctx, FAMILY, (p.planes * p.h * p.w) as usize)?;
    ctx.dispatch(Launch { family: FAMILY, entry: "resize_bilinear_backward", overrides: &[], params: &p, bindings: &[(2, dy), (4, dx)], groups })
}

pub struct ResizeOp {
    p: ResizeBilinearParams,
}

/// F.interpolate(x, size=(ho, wo), mode="bilinear", align_corners=...). Into `dest` (e.g. a
/// channel slice of a concat) when given; the backward reads dy in the output's layout.
pub fn resize_bilinear(x: &Tensor, ho: usize, wo: usize, align_corners: bool, dest: Option<&Tensor>) -> Result<(Tensor, ResizeOp)> {
    const OP: &str = "resize_bilinear";
    let [n, c, h, w] = x.nchw(OP)?;
    nonzero(OP, x)?;
    crate::ensure!(ho > 0 && wo > 0, OP, "output size {ho}x{wo} must be positive");
    let y = output_to(OP, vec![n, c, ho, wo], &[x], dest)?;
    let ys = Chans::of(&y);
    let p = ResizeBilinearParams {
        s_c: ys.c,
        s_off: ys.off,
        s_total: ys.total,
        planes: u(n * c),
        h: u(h),
        w: u(w),
        ho: u(ho),
        wo: u(wo),
        align_corners: flag(align_corners),
        scale_h: scale(h, ho, align_corners),
        scale_w: scale(w, wo, align_corners),
        ..Default::default()
    };
    resize_bilinear_forward(x.ctx(), p, x.view(), y.view())?;
    Ok((y, ResizeOp { p }))
}

impl ResizeOp {
    pub fn backward(&self, x: &Handle, dy: &View, sink: &mut dyn Sink) -> Result<()> {
        if let Some((dx, acc)) = sink.target(x)? {
            resize_bilinear_backward(sink.ctx(), ResizeBilinearParams { accumulate: flag(acc), ..self.p }, dy, &dx)?;
        }
        Ok(())
    }
}
