//! Launchers for shaders/reduce.wgsl and the graph ops sum, mean, sum_sq (to a scalar [1]).

use crate::error::Result;
use crate::gpu::{Ctx, Launch, Overrides, View, WG};
use crate::gpu_params;
use crate::ops::Sink;
use crate::ops::{flag, grid1d, nonzero, output, u};
use crate::tensor::{Handle, Tensor};

gpu_params! {
    /// Keep in sync with `struct ReduceParams` in shaders/reduce.wgsl.
    pub struct ReduceParams {
        pub len: u32, pub num_partials: u32, pub accumulate: u32, pub _pad0: u32,
        pub scale: f32, pub _pad1: u32, pub _pad2: u32, pub _pad3: u32,
    }
}

const FAMILY: &str = "reduce";
/// Upper bound on first-stage workgroups; each one grid-strides over the input.
pub const MAX_PARTIALS: usize = 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReduceKind {
    Sum,
    Mean,
    SumSq,
}

impl ReduceKind {
    fn overrides(self) -> Overrides {
        match self {
            ReduceKind::SumSq => &[("MODE", 1.0)],
            _ => &[("MODE", 0.0)],
        }
    }
    fn scale(self, len: usize) -> f32 {
        match self {
            ReduceKind::Mean => 1.0 / len as f32,
            _ => 1.0,
        }
    }
}

pub fn num_partials(len: usize) -> usize {
    len.div_ceil(WG as usize).clamp(1, MAX_PARTIALS)
}

pub fn reduce_partial(ctx: &Ctx, kind: ReduceKind, x: &View, partials: &View) -> Result<()> {
    let np = partials.len();
    let p = ReduceParams { len: u(x.len()), num_partials: u(np), ..Default::default() };
    ctx.dispatch(Launch {
        family: FAMILY,
        entry: "reduce_partial",
        overrides: kind.overrides(),
        params: &p,
        bindings: &[(1, x), (3, partials)],
        groups: [u(np), 1, 1],
    })
}

/// out[0] = scale * sum(partials) (also the second stage of the losses).
pub fn reduce_final(ctx: &Ctx, partials: &View, scale: f32, out: &View) -> Result<()> {
    let p = ReduceParams { num_partials: u(partials.len()), scale, ..Default::default() };
    ctx.dispatch(Launch {
        family: FAMILY,
        entry: "reduce_final",
        overrides: &[],
        params: &p,
        bindings: &[(3, partials), (4, out)],
        groups: [1, 1, 1],
    })
}

pub fn reduce_backward(ctx: &Ctx, kind: ReduceKind, x: &View, dl: &View, dx: &View, accumulate: bool) -> Result<()> {
    let p = ReduceParams { len: u(x.len()), scale: kind.scale(x.len()), accumulate: flag(accumulate), ..Default::default() };
    // x is bound for every mode: the shader reads it under `MODE == 1`, a static use.
    let bindings: &[(u32, &View)] = &[(1, x), (2, dl), (5, dx)];
    ctx.dispatch(Launch {
        family: FAMILY,
        entry: "reduce_backward",
        overrides: kind.overrides(),
        params: &p,
        bindings,
        groups: grid1d(ctx, FAMILY, x.len())?,
    })
}

/// Reduce all of `x` to a scalar tensor of shape [1].
pub fn reduce(x: &Tensor, kind: ReduceKind) -> Result<Tensor> {
    const OP: &str = "sum";
    nonzero(OP, x)?;
    let ctx = x.ctx();
    let y = output(OP, vec![1], &[x])?;
    let partials = ctx.alloc(OP, num_partials(x.numel()))?;
    reduce_partial(ctx, kind, x.view(), &partials)?;
    reduce_final(ctx, &partials, kind.scale(x.numel()), y.view())?;
    Ok(y)
}

/// What a reduction's backward reads: its input (the sum of squares' gradient is 2x dy).
pub struct ReduceOp {
    kind: ReduceKind,
    x: Tensor,
}

impl ReduceOp {
    pub fn saving(kind: ReduceKind, x: &Tensor) -> ReduceOp {
        ReduceOp { kind, x: x.clone() }
    }

    pub fn backward(&self, x: &Handle, dy: &View, sink: &mut dyn Sink) -> Result<()> {
        if let Some((dx, acc)) = sink.target(x)? {
            reduce_backward(sink.ctx(), self.kind, self.x.view(), dy, &dx, acc)?;
        }
        Ok(())
    }
}
