//! Launchers for shaders/concat.wgsl and the graph op concat (channel concatenation).

use crate::error::Result;
use crate::gpu::{Ctx, Launch, View};
use crate::gpu_params;
use crate::ops::Sink;
use crate::ops::{flag, grid1d, nonzero, output, u};
use crate::tensor::{Handle, Tensor};

gpu_params! {
    /// Keep in sync with `struct ConcatParams` in shaders/concat.wgsl.
    pub struct ConcatParams {
        pub n: u32, pub hw: u32, pub c_part: u32, pub c_total: u32,
        pub c_offset: u32, pub accumulate: u32, pub _pad0: u32, pub _pad1: u32,
    }
}

const FAMILY: &str = "concat";

/// Copy part x [n,c_part,hw] into channels [c_offset, c_offset + c_part) of y [n,c_total,hw].
pub fn concat_forward(ctx: &Ctx, p: ConcatParams, x: &View, y: &View) -> Result<()> {
    let groups = grid1d(ctx, FAMILY, (p.n * p.c_part * p.hw) as usize)?;
    ctx.dispatch(Launch { family: FAMILY, entry: "concat_forward", overrides: &[], params: &p, bindings: &[(1, x), (3, y)], groups })
}

/// dx [n,c_part,hw] (+)= that channel slice of dy.
pub fn concat_backward(ctx: &Ctx, p: ConcatParams, dy: &View, dx: &View) -> Result<()> {
    let groups = grid1d(ctx, FAMILY, (p.n * p.c_part * p.hw) as usize)?;
    ctx.dispatch(Launch { family: FAMILY, entry: "concat_backward", overrides: &[], params: &p, bindings: &[(2, dy), (4, dx)], groups })
}

pub struct ConcatOp {
    parts: Vec<ConcatParams>,
}

/// torch.cat(parts, dim=1) of NCHW tensors with equal n, h, w.
pub fn concat(parts: &[&Tensor]) -> Result<(Tensor, ConcatOp)> {
    const OP: &str = "concat";
    crate::ensure!(!parts.is_empty(), OP, "needs at least one tensor");
    let [n, _, h, w] = parts[0].nchw(OP)?;
    let mut c_total = 0;
    for t in parts {
        let [tn, tc, th, tw] = t.nchw(OP)?;
        nonzero(OP, t)?;
        crate::ensure!((tn, th, tw) == (n, h, w), OP, "all parts need the same batch and spatial size: {:?} vs {:?}", t.shape(), parts[0].shape());
        c_total += tc;
    }
    let y = output(OP, vec![n, c_total, h, w], parts)?;
    let mut ps = Vec::with_capacity(parts.len());
    let mut off = 0;
    for t in parts {
        let c = t.shape()[1];
        let p = ConcatParams { n: u(n), hw: u(h * w), c_part: u(c), c_total: u(c_total), c_offset: u(off), ..Default::default() };
        concat_forward(t.ctx(), p, t.view(), y.view())?;
        ps.push(p);
        off += c;
    }
    Ok((y, ConcatOp { parts: ps }))
}

impl ConcatOp {
    pub fn backward(&self, x: &[Handle], dy: &View, sink: &mut dyn Sink) -> Result<()> {
        for (t, p) in x.iter().zip(&self.parts) {
            if let Some((dx, acc)) = sink.target(t)? {
                concat_backward(sink.ctx(), ConcatParams { accumulate: flag(acc), ..*p }, dy, &dx)?;
            }
        }
        Ok(())
    }
}
