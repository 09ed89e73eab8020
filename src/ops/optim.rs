//! Launchers for shaders/optim.wgsl: the fused optimiser step and the EMA update.

use crate::error::Result;
use crate::gpu::{Ctx, Launch, Overrides, View};
use crate::gpu_params;
use crate::ops::grid1d;

gpu_params! {
    /// Keep in sync with `struct OptimParams` in shaders/optim.wgsl.
    pub struct OptimParams {
        pub len: u32, pub has_clip: u32, pub amp: u32, pub _pad1: u32,
        pub lr: f32, pub beta1: f32, pub beta2: f32, pub eps: f32,
        pub weight_decay: f32, pub bias_c1: f32, pub bias_c2_sqrt: f32, pub momentum: f32,
        pub max_norm: f32, pub ema_decay: f32, pub _pad2: u32, pub _pad3: u32,
    }
}

const FAMILY: &str = "optim";

pub use crate::config::OptKind;

impl OptKind {
    fn overrides(self) -> Overrides {
        match self {
            OptKind::Adamw => &[("MODE", 0.0)],
            OptKind::Adam => &[("MODE", 1.0)],
            OptKind::Sgd => &[("MODE", 2.0)],
        }
    }
}

/// One step over `param` (all arenas the same length); consumes `grad` (writes it to 0).
/// `v` is bound for SGD too (the shader's static use) but not touched. `scaler`: the loss
/// scaler's state (amp.wgsl), which `p.amp` says to read.
#[allow(clippy::too_many_arguments)]
pub fn optim_step(
    ctx: &Ctx,
    kind: OptKind,
    p: OptimParams,
    norm_sq: &View,
    param: &View,
    grad: &View,
    m: &View,
    v: &View,
    scaler: Option<&View>,
) -> Result<()> {
    let dummy = ctx.dummy()?;
    let p = OptimParams { amp: scaler.is_some() as u32, ..p };
    let bindings = [(1, norm_sq), (2, param), (3, grad), (4, m), (5, v), (7, scaler.unwrap_or(&dummy))];
    let groups = grid1d(ctx, FAMILY, p.len as usize)?;
    ctx.dispatch(Launch { family: FAMILY, entry: "optim_step", overrides: kind.overrides(), params: &p, bindings: &bindings, groups })
}

/// ema = decay * ema + (1 - decay) * param.
pub fn ema_update(ctx: &Ctx, decay: f32, param: &View, ema: &View) -> Result<()> {
    ema_update_unless_skipped(ctx, decay, param, ema, None)
}

/// `ema_update`, except on a step the loss scaler (its state `scaler`, when given) skipped.
pub fn ema_update_unless_skipped(ctx: &Ctx, decay: f32, param: &View, ema: &View, scaler: Option<&View>) -> Result<()> {
    let dummy = ctx.dummy()?;
    let p = OptimParams { len: param.len() as u32, ema_decay: decay, amp: scaler.is_some() as u32, ..Default::default() };
    let groups = grid1d(ctx, FAMILY, param.len())?;
    ctx.dispatch(Launch {
        family: FAMILY,
        entry: "ema_update",
        overrides: &[],
        params: &p,
        bindings: &[(2, param), (6, ema), (7, scaler.unwrap_or(&dummy))],
        groups,
    })
}
