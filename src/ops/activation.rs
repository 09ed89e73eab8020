//! Launchers for shaders/activation.wgsl and the graph ops relu, leaky_relu, gelu, silu, sigmoid.
//! The function is the override constant ACT, so each one is its own cached pipeline.

use crate::error::Result;
use crate::gpu::{Ctx, Launch, Overrides, View};
use crate::gpu_params;
use crate::ops::Sink;
use crate::ops::{Chans, flag, grid1d, nonzero, output_to, u};
use crate::tensor::{Handle, Tensor};

gpu_params! {
    /// Keep in sync with `struct ActivationParams` in shaders/activation.wgsl.
    pub struct ActivationParams {
        pub len: u32, pub accumulate: u32, pub slope: f32, pub hw: u32,
        pub s_c: u32, pub s_off: u32, pub s_total: u32, pub _pad0: u32,
    }
}

const FAMILY: &str = "activation";

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    Relu,
    LeakyRelu(f32),
    /// The exact (erf) form, PyTorch's default.
    GeluErf,
    /// The tanh approximation (`approximate="tanh"`).
    GeluTanh,
    Silu,
    Sigmoid,
}

impl Activation {
    fn overrides(self) -> Overrides {
        match self {
            Activation::Relu => &[("ACT", 0.0)],
            Activation::LeakyRelu(_) => &[("ACT", 1.0)],
            Activation::GeluErf => &[("ACT", 2.0)],
            Activation::GeluTanh => &[("ACT", 3.0)],
            Activation::Silu => &[("ACT", 4.0)],
            Activation::Sigmoid => &[("ACT", 5.0)],
        }
    }

    /// The override a norm kernel fuses this activation with (`None`: no activation).
    pub fn fused(a: Option<Activation>) -> Overrides {
        match a {
            Some(a) => a.overrides(),
            None => &[("ACT", 6.0)],
        }
    }

    pub fn slope(self) -> f32 {
        match self {
            Activation::LeakyRelu(s) => s,
            _ => 0.0,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::LeakyRelu(_) => "leaky_relu",
            Activation::GeluErf | Activation::GeluTanh => "gelu",
            Activation::Silu => "silu",
            Activation::Sigmoid => "sigmoid",
        }
    }
}

/// `hw`: elements per plane, for the layout `ys` of y and dy (a channel slice or plain).
fn params(a: Activation, len: usize, accumulate: bool, hw: usize, ys: Chans) -> ActivationParams {
    ActivationParams {
        len: u(len),
        accumulate: flag(accumulate),
        slope: a.slope(),
        hw: u(hw.max(1)),
        s_c: ys.c,
        s_off: ys.off,
        s_total: ys.total,
        _pad0: 0,
    }
}

/// Elements per plane of an NCHW tensor (any other shape is one plane: only a plain layout).
fn plane(t: &Tensor) -> usize {
    match t.shape() {
        [_, _, h, w] => h * w,
        _ => 1,
    }
}

/// y (laid out as `ys`) = act(x) over x's elements.
pub fn activation_forward(ctx: &Ctx, a: Activation, x: &View, y: &View, hw: usize, ys: Chans) -> Result<()> {
    let p = params(a, x.len(), false, hw, ys);
    let groups = grid1d(ctx, a.name(), x.len())?;
    ctx.dispatch(Launch { family: FAMILY, entry: "activation_forward", overrides: a.overrides(), params: &p, bindings: &[(1, x), (3, y)], groups })
}

/// dx (+)= dy * act'(x), dy laid out as `ys`.
#[allow(clippy::too_many_arguments)]
pub fn activation_backward(ctx: &Ctx, a: Activation, x: &View, dy: &View, dx: &View, accumulate: bool, hw: usize, ys: Chans) -> Result<()> {
    let p = params(a, x.len(), accumulate, hw, ys);
    let groups = grid1d(ctx, a.name(), x.len())?;
    ctx.dispatch(Launch {
        family: FAMILY,
        entry: "activation_backward",
        overrides: a.overrides(),
        params: &p,
        bindings: &[(1, x), (2, dy), (4, dx)],
        groups,
    })
}

/// Apply `a` elementwise; into `dest` (e.g. a channel slice of a concat) when given.
pub fn activation(x: &Tensor, a: Activation, dest: Option<&Tensor>) -> Result<Tensor> {
    nonzero(a.name(), x)?;
    let y = output_to(a.name(), x.shape().to_vec(), &[x], dest)?;
    activation_forward(x.ctx(), a, x.view(), y.view(), plane(x), Chans::of(&y))?;
    Ok(y)
}

/// What an activation's backward reads: x, and the layout of its output `y` (dy has it).
pub struct ActivationOp {
    a: Activation,
    x: Tensor,
    y: Chans,
}

impl ActivationOp {
    /// Saved by the graph after [`activation`] wrote `y` from `x`.
    pub fn saving(a: Activation, x: &Tensor, y: &Tensor) -> ActivationOp {
        ActivationOp { a, x: x.clone(), y: Chans::of(y) }
    }

    pub fn backward(&self, x: &Handle, dy: &View, sink: &mut dyn Sink) -> Result<()> {
        if let Some((dx, acc)) = sink.target(x)? {
            activation_backward(sink.ctx(), self.a, self.x.view(), dy, &dx, acc, plane(&self.x), self.y)?;
        }
        Ok(())
    }
}
