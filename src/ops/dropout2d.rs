//! Launchers for shaders/dropout2d.wgsl and the graph op dropout2d (a per-channel Philox mask).

use crate::error::Result;
use crate::gpu::{Ctx, Launch, View};
use crate::gpu_params;
use crate::ops::Sink;
use crate::ops::{flag, grid1d, nonzero, output, u};
use crate::tensor::{Handle, Tensor};

gpu_params! {
    /// Keep in sync with `struct Dropout2dParams` in shaders/dropout2d.wgsl.
    pub struct Dropout2dParams {
        pub len: u32, pub hw: u32, pub accumulate: u32, pub _pad0: u32,
        pub prob: f32, pub scale: f32, pub seed_lo: u32, pub seed_hi: u32,
        pub stream_lo: u32, pub stream_hi: u32, pub layer: u32, pub _pad2: u32,
    }
}

const FAMILY: &str = "dropout2d";

/// The slot of a recorded training step that holds every dropout dispatch (forward and
/// backward): a replay gives each the stream of its step and layer ([`Dropout2dParams::restep`]).
pub const SLOT: &str = "dropout";

/// The Philox stream of dropout layer `layer` at training step `step`: distinct for every
/// (step, layer) with up to 64 dropout layers.
pub fn stream(step: u64, layer: u32) -> u64 {
    step.wrapping_mul(64).wrapping_add(layer as u64)
}

impl Dropout2dParams {
    /// The same dispatch at training step `step` (its layer kept; `layer` is carried in the
    /// Params for this, the kernel does not read it).
    pub fn restep(&mut self, step: u64) {
        let s = stream(step, self.layer);
        (self.stream_lo, self.stream_hi) = (s as u32, (s >> 32) as u32);
    }
}

pub fn dropout2d_forward(ctx: &Ctx, p: Dropout2dParams, x: &View, y: &View) -> Result<()> {
    let groups = grid1d(ctx, FAMILY, p.len as usize)?;
    ctx.named(SLOT, || {
        ctx.dispatch(Launch { family: FAMILY, entry: "dropout2d_forward", overrides: &[], params: &p, bindings: &[(1, x), (2, y)], groups })
    })
}

pub fn dropout2d_backward(ctx: &Ctx, p: Dropout2dParams, dy: &View, dx: &View) -> Result<()> {
    let groups = grid1d(ctx, FAMILY, p.len as usize)?;
    ctx.named(SLOT, || {
        ctx.dispatch(Launch { family: FAMILY, entry: "dropout2d_backward", overrides: &[], params: &p, bindings: &[(1, dy), (2, dx)], groups })
    })
}

pub struct Dropout2dOp {
    p: Dropout2dParams,
}

/// Dropout2d in training mode: zero whole channels with probability `p`, scale the rest by
/// 1/(1-p). The mask is Philox(counter = (n*c index, stream), key = seed), reproducible on the
/// CPU (`reference::dropout2d`), with the stream of (`step`, `layer`) ([`stream`]).
pub fn dropout2d(x: &Tensor, p: f32, seed: u64, step: u64, layer: u32) -> Result<(Tensor, Dropout2dOp)> {
    let stream = stream(step, layer);
    const OP: &str = "dropout2d";
    let [_, _, h, w] = x.nchw(OP)?;
    nonzero(OP, x)?;
    crate::ensure!((0.0..1.0).contains(&p), OP, "p must be in [0, 1), got {p}");
    let y = output(OP, x.shape().to_vec(), &[x])?;
    let prm = Dropout2dParams {
        len: u(x.numel()),
        hw: u(h * w),
        prob: p,
        scale: 1.0 / (1.0 - p),
        seed_lo: seed as u32,
        seed_hi: (seed >> 32) as u32,
        stream_lo: stream as u32,
        stream_hi: (stream >> 32) as u32,
        layer,
        ..Default::default()
    };
    dropout2d_forward(x.ctx(), prm, x.view(), y.view())?;
    Ok((y, Dropout2dOp { p: prm }))
}

impl Dropout2dOp {
    pub fn backward(&self, x: &Handle, dy: &View, sink: &mut dyn Sink) -> Result<()> {
        if let Some((dx, acc)) = sink.target(x)? {
            dropout2d_backward(sink.ctx(), Dropout2dParams { accumulate: flag(acc), ..self.p }, dy, &dx)?;
        }
        Ok(())
    }
}
