//! Launchers for shaders/amp.wgsl: the f16 cast that feeds the half conv kernels, and the
//! dynamic loss scaler's update (`train.amp`).

use crate::error::Result;
use crate::gpu::{Ctx, Launch, View};
use crate::gpu_params;
use crate::ops::{Chans, grid1d, u};

gpu_params! {
    /// Keep in sync with `struct AmpParams` in shaders/amp.wgsl.
    pub struct AmpParams {
        pub n: u32, pub c: u32, pub hw: u32, pub off: u32,
        pub total: u32, pub growth_interval: u32, pub beta1: f32, pub beta2: f32,
    }
}

const FAMILY: &str = "amp";

/// The loss scaler's state (`st` in amp.wgsl), 8 floats: what a checkpoint saves.
pub const STATE_LEN: usize = 8;
/// Indices into the state.
pub const SCALE: usize = 0;
pub const SKIPPED: usize = 3;
pub const APPLIED: usize = 4;

/// The state of a fresh scaler at loss scale `init`.
pub fn initial_state(init: f32) -> Vec<f32> {
    let mut s = vec![0.0; STATE_LEN];
    s[SCALE] = init;
    s[1] = 1.0 / init;
    s
}

/// An operand as a launcher receives it: f32 values (which it casts to f16 under half
/// precision), or the packed f16 copy an op already made (under half precision only), e.g. the
/// input a conv or a group norm saved for its backward (f16 activation storage).
#[derive(Clone, Copy)]
pub enum Operand<'a> {
    F32(&'a View),
    F16(&'a View),
}

/// `v` as the half kernels read it: under half precision the packed f16 copy of `v` (`n`
/// images of `c` channels of `hw` values, laid out as `chans`), else `v` itself.
/// `half`: the overflow flag under half precision ([`crate::ops::kernels::Kernels::half`]).
pub fn operand(ctx: &Ctx, half: Option<&View>, v: Operand, n: usize, c: usize, hw: usize, chans: Chans) -> Result<View> {
    match (v, half) {
        (Operand::F32(v), Some(flag)) => cast_f16(ctx, v, n, c, hw, chans, flag),
        (Operand::F32(v), None) | (Operand::F16(v), Some(_)) => Ok(v.clone()),
        (Operand::F16(_), None) => Err(crate::error::Error::Msg("an f16 operand for a launch in f32 (its Kernels has no half flag)".into())),
    }
}

/// `v` as an operand: its f16 copy when there is one.
pub fn operand_of<'a>(half: &'a Option<View>, v: &'a View) -> Operand<'a> {
    match half {
        Some(h) => Operand::F16(h),
        None => Operand::F32(v),
    }
}

/// The input an op keeps for its backward: x itself, or under half precision the f16 copy its
/// forward made (then x's f32 buffer returns to the pool once the forward is done with it: f16
/// activation storage).
pub enum SavedInput {
    F32(crate::tensor::Tensor),
    F16(View),
}

impl SavedInput {
    /// `half` (from [`half_copy`]) when there is one, else x.
    pub fn of(x: &crate::tensor::Tensor, half: Option<View>) -> SavedInput {
        match half {
            Some(h) => SavedInput::F16(h),
            None => SavedInput::F32(x.clone()),
        }
    }

    pub fn operand(&self) -> Operand<'_> {
        match self {
            SavedInput::F32(x) => Operand::F32(x.view()),
            SavedInput::F16(h) => Operand::F16(h),
        }
    }
}

/// The f16 copy of `x` (`n` images of `c` channels of `hw` values, laid out as `chans`) under
/// half precision, None otherwise: what an op saves for its backward instead of x.
pub fn half_copy(ctx: &Ctx, half: Option<&View>, x: &View, n: usize, c: usize, hw: usize, chans: Chans) -> Result<Option<View>> {
    if half.is_none() {
        return Ok(None);
    }
    operand(ctx, half, Operand::F32(x), n, c, hw, chans).map(Some)
}

/// The packed f16 copy (2 per 32-bit word) of `x`, an NCHW-like tensor of `n` images of `c`
/// channels of `hw` values stored with layout `chans` (a channel slice or plain; for a plain
/// tensor of any shape pass n = 1, c = its length, hw = 1). Rounded to nearest even; a value
/// outside f16's range raises `flag`.
pub fn cast_f16(ctx: &Ctx, x: &View, n: usize, c: usize, hw: usize, chans: Chans, flag: &View) -> Result<View> {
    let len = n * c * hw;
    let out = ctx.alloc("f16 copy", len.div_ceil(2))?;
    let (off, total) = if chans == Chans::PLAIN { (0, u(c)) } else { (chans.off, chans.total) };
    let p = AmpParams { n: u(len), c: u(c), hw: u(hw), off, total, ..Default::default() };
    let groups = grid1d(ctx, "amp_cast_f16", len.div_ceil(2))?;
    ctx.dispatch(Launch { family: FAMILY, entry: "amp_cast_f16", overrides: &[], params: &p, bindings: &[(1, x), (2, &out), (3, flag)], groups })?;
    Ok(out)
}

/// The scaler's step (after the gradient norm `norm_sq` of the scaled gradients, before the
/// optimiser): skip or apply, the next scale, `norm_sq` unscaled. `beta1`, `beta2`: Adam's, for
/// the bias corrections of an applied step.
pub fn update(ctx: &Ctx, growth_interval: u32, beta1: f32, beta2: f32, flag: &View, norm_sq: &View, state: &View) -> Result<()> {
    let p = AmpParams { growth_interval, beta1, beta2, ..Default::default() };
    ctx.dispatch(Launch {
        family: FAMILY,
        entry: "amp_update",
        overrides: &[],
        params: &p,
        bindings: &[(3, flag), (4, norm_sq), (5, state)],
        groups: [1, 1, 1],
    })
}
