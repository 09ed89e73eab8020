//! The optimiser around shaders/optim.wgsl: Adam moments in arenas laid out like the parameters,
//! the global gradient norm (two-stage sum of squares on the GPU, never read back to step), one
//! fused step dispatch, the EMA, and the learning-rate schedules (computed on the host per step).

pub mod schedule;

use crate::error::Result;
use crate::gpu::{Ctx, View};
use crate::ops::amp as k_amp;
use crate::ops::optim::{self as k, OptKind, OptimParams};
use crate::ops::reduce::{self, ReduceKind};

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hyper {
    pub kind: OptKind,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
    pub momentum: f32,
    /// Global gradient-norm clip; None = off.
    pub grad_clip: Option<f32>,
}

pub struct Optimizer {
    pub hyper: Hyper,
    /// Adam's first moment, or SGD's momentum buffer.
    pub m: View,
    pub v: View,
    /// Sum of squared gradients of the last step (its square root is the logged grad norm).
    pub norm_sq: View,
    partials: View,
    /// Steps taken (Adam's t after the next step is t + 1).
    pub t: u64,
    /// Mixed precision's dynamic loss scaler, when on.
    pub scaler: Option<LossScaler>,
}

/// The dynamic loss scaler of `train.amp` (amp.wgsl): its state on the GPU, the overflow flag
/// the f16 casts raise, and how many clean steps in a row double the scale.
pub struct LossScaler {
    pub state: View,
    pub flag: View,
    pub growth_interval: u32,
}

/// The gradient a backward starts from: the loss scale under a scaler (read by the GPU when
/// the step runs, so a recorded plan follows the scale), else 1.
pub fn loss_seed(ctx: &Ctx, scaler: Option<&LossScaler>) -> Result<crate::tensor::Tensor> {
    match scaler {
        Some(s) => Ok(crate::tensor::Tensor::wrap(ctx, vec![1], s.state.slice(k_amp::SCALE, 1)?)),
        None => crate::tensor::Tensor::full(ctx, &[1], 1.0),
    }
}

impl LossScaler {
    pub fn new(ctx: &Ctx, init_scale: f32, growth_interval: u32) -> Result<LossScaler> {
        let state = ctx.upload("loss scaler", &k_amp::initial_state(init_scale))?;
        let flag = ctx.alloc("loss scaler", 1)?;
        crate::ops::elementwise::fill(ctx, &flag, 0.0)?;
        Ok(LossScaler { state, flag, growth_interval })
    }
}

impl Optimizer {
    pub fn new(ctx: &Ctx, len: usize, hyper: Hyper) -> Result<Optimizer> {
        let zeros = |n| -> Result<View> {
            let v = ctx.alloc("optimizer", n)?;
            crate::ops::elementwise::fill(ctx, &v, 0.0)?;
            Ok(v)
        };
        Ok(Optimizer {
            hyper,
            m: zeros(len)?,
            v: zeros(len)?,
            norm_sq: zeros(1)?,
            partials: ctx.alloc("optimizer", reduce::num_partials(len))?,
            t: 0,
            scaler: None,
        })
    }

    /// Clip (if on) and update `param` from `grad` (consumed) at learning rate `lr`. With a
    /// loss scaler, `grad` holds scaled gradients: the scaler's update decides (on the GPU)
    /// whether the step is applied and unscales the norm.
    pub fn step(&mut self, ctx: &Ctx, param: &View, grad: &View, lr: f32) -> Result<()> {
        reduce::reduce_partial(ctx, ReduceKind::SumSq, grad, &self.partials)?;
        reduce::reduce_final(ctx, &self.partials, 1.0, &self.norm_sq)?;
        if let Some(s) = &self.scaler {
            k_amp::update(ctx, s.growth_interval, self.hyper.beta1, self.hyper.beta2, &s.flag, &self.norm_sq, &s.state)?;
        }
        self.t += 1;
        let h = &self.hyper;
        let mut p = OptimParams {
            len: param.len() as u32,
            has_clip: h.grad_clip.is_some() as u32,
            beta1: h.beta1,
            beta2: h.beta2,
            eps: h.eps,
            weight_decay: h.weight_decay,
            momentum: h.momentum,
            max_norm: h.grad_clip.unwrap_or(0.0),
            ..Default::default()
        };
        self.per_step(&mut p, lr);
        ctx.named(Self::SLOT, || k::optim_step(ctx, h.kind, p, &self.norm_sq, param, grad, &self.m, &self.v, self.scaler.as_ref().map(|s| &s.state)))
    }

    /// The slot of a recorded step that holds the update's per-step values ([`Optimizer::patch`]).
    pub const SLOT: &'static str = "optimizer step";

    /// The values of a step that change with it: the learning rate and Adam's bias corrections
    /// at step `t`.
    fn per_step(&self, p: &mut OptimParams, lr: f32) {
        let t = self.t as i32;
        p.lr = lr;
        p.bias_c1 = 1.0 - (self.hyper.beta1 as f64).powi(t) as f32;
        p.bias_c2_sqrt = (1.0 - (self.hyper.beta2 as f64).powi(t)).sqrt() as f32;
    }

    /// Set this step's values (at `self.t`) in a recorded plan's optimiser dispatch.
    pub fn patch(&self, plan: &mut crate::gpu::Plan, lr: f32) -> Result<()> {
        plan.set::<OptimParams>(Self::SLOT, |_, p| self.per_step(p, lr))
    }
}

pub use k::{ema_update, ema_update_unless_skipped};
