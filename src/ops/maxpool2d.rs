//! Launchers for shaders/maxpool2d.wgsl and the graph op max_pool2d (no padding, floor mode).

use crate::error::Result;
use crate::gpu::{Ctx, Launch, View};
use crate::gpu_params;
use crate::ops::Sink;
use crate::ops::{Chans, flag, grid1d, nonzero, output_any, u};
use crate::tensor::{Handle, Tensor};

gpu_params! {
    /// Keep in sync with `struct MaxPool2dParams` in shaders/maxpool2d.wgsl.
    pub struct MaxPool2dParams {
        pub planes: u32, pub h: u32, pub w: u32, pub ho: u32,
        pub wo: u32, pub kh: u32, pub kw: u32, pub sh: u32,
        pub sw: u32, pub accumulate: u32, pub s_c: u32, pub s_off: u32,
        pub s_total: u32, pub _pad0: u32, pub _pad1: u32, pub _pad2: u32,
    }
}

const FAMILY: &str = "maxpool2d";

/// y and idx [planes,ho,wo]: window maximum and its flat index in the input plane.
pub fn maxpool2d_forward(ctx: &Ctx, p: MaxPool2dParams, x: &View, idx: &View, y: &View) -> Result<()> {
    let groups = grid1d(ctx, FAMILY, (p.planes * p.ho * p.wo) as usize)?;
    ctx.dispatch(Launch { family: FAMILY, entry: "maxpool2d_forward", overrides: &[], params: &p, bindings: &[(1, x), (3, idx), (4, y)], groups })
}

pub fn maxpool2d_backward(ctx: &Ctx, p: MaxPool2dParams, dy: &View, idx: &View, dx: &View) -> Result<()> {
    let groups = grid1d(ctx, FAMILY, (p.planes * p.h * p.w) as usize)?;
    ctx.dispatch(Launch { family: FAMILY, entry: "maxpool2d_backward", overrides: &[], params: &p, bindings: &[(2, dy), (3, idx), (5, dx)], groups })
}

pub struct MaxPool2dOp {
    p: MaxPool2dParams,
    idx: View,
}

/// PyTorch's F.max_pool2d(x, kernel, stride) with no padding and floor mode. `x` may be a
/// channel slice (a UNet skip living in its concat); the backward writes dx in x's layout.
pub fn max_pool2d(x: &Tensor, kernel: (usize, usize), stride: (usize, usize)) -> Result<(Tensor, MaxPool2dOp)> {
    const OP: &str = "maxpool2d";
    let [n, c, h, w] = x.nchw(OP)?;
    nonzero(OP, x)?;
    crate::ensure!(kernel.0 > 0 && kernel.1 > 0 && stride.0 > 0 && stride.1 > 0, OP, "kernel {kernel:?} and stride {stride:?} must be positive");
    crate::ensure!(h >= kernel.0 && w >= kernel.1, OP, "kernel {kernel:?} is larger than the input {h}x{w}");
    let (ho, wo) = ((h - kernel.0) / stride.0 + 1, (w - kernel.1) / stride.1 + 1);
    let ctx = x.ctx();
    let y = output_any(OP, vec![n, c, ho, wo], &[x], None)?;
    let xs = Chans::of(x);
    let idx = ctx.alloc(OP, n * c * ho * wo)?;
    let p = MaxPool2dParams {
        planes: u(n * c),
        h: u(h),
        w: u(w),
        ho: u(ho),
        wo: u(wo),
        kh: u(kernel.0),
        kw: u(kernel.1),
        sh: u(stride.0),
        sw: u(stride.1),
        s_c: xs.c,
        s_off: xs.off,
        s_total: xs.total,
        ..Default::default()
    };
    maxpool2d_forward(ctx, p, x.view(), &idx, y.view())?;
    Ok((y, MaxPool2dOp { p, idx }))
}

impl MaxPool2dOp {
    pub fn backward(&self, x: &Handle, dy: &View, sink: &mut dyn Sink) -> Result<()> {
        if let Some((dx, acc)) = sink.target(x)? {
            maxpool2d_backward(sink.ctx(), MaxPool2dParams { accumulate: flag(acc), ..self.p }, dy, &self.idx, &dx)?;
        }
        Ok(())
    }
}
