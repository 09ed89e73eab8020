//! Launchers for shaders/loss.wgsl and the graph ops mse_loss, l1_loss, charbonnier_loss
//! (mean reduction; the second stage is reduce.wgsl's reduce_final).

use crate::error::Result;
use crate::gpu::{Ctx, Launch, Overrides, View};
use crate::gpu_params;
use crate::ops::Sink;
use crate::ops::reduce::{num_partials, reduce_final};
use crate::ops::{flag, grid1d, nonzero, output, u};
use crate::tensor::{Handle, Tensor};

gpu_params! {
    /// Keep in sync with `struct LossParams` in shaders/loss.wgsl.
    pub struct LossParams {
        pub len: u32, pub num_partials: u32, pub accumulate: u32, pub _pad0: u32,
        pub eps: f32, pub inv_len: f32, pub sign: f32, pub _pad1: u32,
    }
}

const FAMILY: &str = "loss";

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LossKind {
    Mse,
    L1,
    /// mean(sqrt(d^2 + eps^2)).
    Charbonnier(f32),
}

impl LossKind {
    fn overrides(self) -> Overrides {
        match self {
            LossKind::Mse => &[("LOSS", 0.0)],
            LossKind::L1 => &[("LOSS", 1.0)],
            LossKind::Charbonnier(_) => &[("LOSS", 2.0)],
        }
    }
    fn eps(self) -> f32 {
        match self {
            LossKind::Charbonnier(e) => e,
            _ => 0.0,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            LossKind::Mse => "mse_loss",
            LossKind::L1 => "l1_loss",
            LossKind::Charbonnier(_) => "charbonnier_loss",
        }
    }
}

pub fn loss_partial(ctx: &Ctx, kind: LossKind, pred: &View, target: &View, partials: &View) -> Result<()> {
    let np = partials.len();
    let p = LossParams { len: u(pred.len()), num_partials: u(np), eps: kind.eps(), ..Default::default() };
    let bindings = [(1, pred), (2, target), (4, partials)];
    ctx.dispatch(Launch {
        family: FAMILY,
        entry: "loss_partial",
        overrides: kind.overrides(),
        params: &p,
        bindings: &bindings,
        groups: [u(np), 1, 1],
    })
}

/// dout (+)= sign * dl * f'(pred - target) / len.
#[allow(clippy::too_many_arguments)]
pub fn loss_backward(ctx: &Ctx, kind: LossKind, pred: &View, target: &View, dl: &View, dout: &View, sign: f32, accumulate: bool) -> Result<()> {
    let len = pred.len();
    let p = LossParams { len: u(len), eps: kind.eps(), inv_len: 1.0 / len as f32, sign, accumulate: flag(accumulate), ..Default::default() };
    let bindings = [(1, pred), (2, target), (3, dl), (5, dout)];
    ctx.dispatch(Launch {
        family: FAMILY,
        entry: "loss_backward",
        overrides: kind.overrides(),
        params: &p,
        bindings: &bindings,
        groups: grid1d(ctx, FAMILY, len)?,
    })
}

/// The mean loss between `pred` and `target` (same shape), as a scalar tensor [1].
pub fn loss(pred: &Tensor, target: &Tensor, kind: LossKind) -> Result<Tensor> {
    let op = kind.name();
    nonzero(op, pred)?;
    crate::ensure!(pred.shape() == target.shape(), op, "prediction {:?} and target {:?} differ in shape", pred.shape(), target.shape());
    if let LossKind::Charbonnier(e) = kind {
        crate::ensure!(e > 0.0, op, "eps must be > 0, got {e}");
    }
    let ctx = pred.ctx();
    let y = output(op, vec![1], &[pred, target])?;
    let partials = ctx.alloc(op, num_partials(pred.numel()))?;
    loss_partial(ctx, kind, pred.view(), target.view(), &partials)?;
    reduce_final(ctx, &partials, 1.0 / pred.numel() as f32, y.view())?;
    Ok(y)
}

/// What a loss's backward reads: the prediction and the target.
pub struct LossOp {
    kind: LossKind,
    pred: Tensor,
    target: Tensor,
}

impl LossOp {
    pub fn saving(kind: LossKind, pred: &Tensor, target: &Tensor) -> LossOp {
        LossOp { kind, pred: pred.clone(), target: target.clone() }
    }

    /// `x`: the graph's handles of the prediction and the target.
    pub fn backward(&self, x: &[Handle], dy: &View, sink: &mut dyn Sink) -> Result<()> {
        for (t, sign) in [(&x[0], 1.0), (&x[1], -1.0)] {
            if let Some((d, acc)) = sink.target(t)? {
                loss_backward(sink.ctx(), self.kind, self.pred.view(), self.target.view(), dy, &d, sign, acc)?;
            }
        }
        Ok(())
    }
}
