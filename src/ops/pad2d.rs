//! Launchers for shaders/pad2d.wgsl and the graph op pad2d (zero padding).

use crate::error::Result;
use crate::gpu::{Ctx, Launch, View};
use crate::gpu_params;
use crate::ops::Sink;
use crate::ops::{Chans, flag, grid1d, nonzero, output_to, u};
use crate::tensor::{Handle, Tensor};

gpu_params! {
    /// Keep in sync with `struct Pad2dParams` in shaders/pad2d.wgsl.
    pub struct Pad2dParams {
        pub planes: u32, pub h: u32, pub w: u32, pub ho: u32,
        pub wo: u32, pub left: u32, pub top: u32, pub accumulate: u32,
        pub s_c: u32, pub s_off: u32, pub s_total: u32, pub _pad0: u32,
    }
}

const FAMILY: &str = "pad2d";

pub fn pad2d_forward(ctx: &Ctx, p: Pad2dParams, x: &View, y: &View) -> Result<()> {
    let groups = grid1d(ctx, FAMILY, (p.planes * p.ho * p.wo) as usize)?;
    ctx.dispatch(Launch { family: FAMILY, entry: "pad2d_forward", overrides: &[], params: &p, bindings: &[(1, x), (3, y)], groups })
}

pub fn pad2d_backward(ctx: &Ctx, p: Pad2dParams, dy: &View, dx: &View) -> Result<()> {
    let groups = grid1d(ctx, FAMILY, (p.planes * p.h * p.w) as usize)?;
    ctx.dispatch(Launch { family: FAMILY, entry: "pad2d_backward", overrides: &[], params: &p, bindings: &[(2, dy), (4, dx)], groups })
}

pub struct Pad2dOp {
    p: Pad2dParams,
}

/// F.pad(x, (left, right, top, bottom)) with zeros; all pads >= 0. Into `dest` (e.g. a channel
/// slice of a concat) when given; the backward reads dy in the output's layout.
pub fn pad2d(x: &Tensor, pads: (usize, usize, usize, usize), dest: Option<&Tensor>) -> Result<(Tensor, Pad2dOp)> {
    const OP: &str = "pad2d";
    let [n, c, h, w] = x.nchw(OP)?;
    nonzero(OP, x)?;
    let (l, r, t, b) = pads;
    let (ho, wo) = (h + t + b, w + l + r);
    let y = output_to(OP, vec![n, c, ho, wo], &[x], dest)?;
    let ys = Chans::of(&y);
    let p = Pad2dParams {
        planes: u(n * c),
        h: u(h),
        w: u(w),
        ho: u(ho),
        wo: u(wo),
        left: u(l),
        top: u(t),
        accumulate: 0,
        s_c: ys.c,
        s_off: ys.off,
        s_total: ys.total,
        _pad0: 0,
    };
    pad2d_forward(x.ctx(), p, x.view(), y.view())?;
    Ok((y, Pad2dOp { p }))
}

impl Pad2dOp {
    pub fn backward(&self, x: &Handle, dy: &View, sink: &mut dyn Sink) -> Result<()> {
        if let Some((dx, acc)) = sink.target(x)? {
            pad2d_backward(sink.ctx(), Pad2dParams { accumulate: flag(acc), ..self.p }, dy, &dx)?;
        }
        Ok(())
    }
}
