//! Launchers for shaders/elementwise.wgsl: add, mul, scale, bias_add, fill, copy.

use crate::error::Result;
use crate::gpu::{Ctx, Launch, View};
use crate::gpu_params;
use crate::ops::Sink;
use crate::ops::{Chans, flag, grid_groups, grid1d, nonzero, output, u};
use crate::tensor::{Handle, Tensor};

gpu_params! {
    /// Keep in sync with `struct ElementwiseParams` in shaders/elementwise.wgsl.
    pub struct ElementwiseParams {
        pub len: u32, pub c: u32, pub hw: u32, pub accumulate: u32,
        pub alpha: f32, pub c_off: u32, pub c_total: u32, pub chunks: u32,
        pub chunk: u32, pub offset: u32, pub _pad1: u32, pub _pad2: u32,
    }
}

const FAMILY: &str = "elementwise";

fn run(ctx: &Ctx, entry: &'static str, p: ElementwiseParams, bindings: &[(u32, &View)], groups: [u32; 3]) -> Result<()> {
    ctx.dispatch(Launch { family: FAMILY, entry, overrides: &[], params: &p, bindings, groups })
}

fn flat(len: usize, accumulate: bool, alpha: f32) -> ElementwiseParams {
    ElementwiseParams { len: u(len), accumulate: flag(accumulate), alpha, ..Default::default() }
}

pub fn fill(ctx: &Ctx, out: &View, value: f32) -> Result<()> {
    run(ctx, "fill", flat(out.len(), false, value), &[(3, out)], grid1d(ctx, "fill", out.len())?)
}

/// `dst (+)= src` (the add_backward kernel: a pass-through of the gradient).
pub fn copy(ctx: &Ctx, src: &View, dst: &View, accumulate: bool) -> Result<()> {
    run(ctx, "add_backward", flat(src.len(), accumulate, 1.0), &[(1, src), (3, dst)], grid1d(ctx, "add_backward", src.len())?)
}

/// dst[offset..offset + src.len()] = src (a scalar into a log buffer, without aligned views).
pub fn copy_offset(ctx: &Ctx, src: &View, dst: &View, offset: usize) -> Result<()> {
    crate::ensure!(offset + src.len() <= dst.len(), "copy_offset", "{} elements at {offset} overrun a buffer of {}", src.len(), dst.len());
    let p = ElementwiseParams { len: u(src.len()), offset: u(offset), ..Default::default() };
    run(ctx, "copy_offset", p, &[(1, src), (3, dst)], grid1d(ctx, "copy_offset", src.len())?)
}

fn same_shape(op: &'static str, a: &Tensor, b: &Tensor) -> Result<()> {
    nonzero(op, a)?;
    crate::ensure!(a.shape() == b.shape(), op, "shapes differ: {:?} vs {:?}", a.shape(), b.shape());
    Ok(())
}

pub fn add(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    same_shape("add", a, b)?;
    let y = output("add", a.shape().to_vec(), &[a, b])?;
    let ctx = a.ctx();
    run(ctx, "add_forward", flat(a.numel(), false, 1.0), &[(1, a.view()), (2, b.view()), (3, y.view())], grid1d(ctx, "add", a.numel())?)?;
    Ok(y)
}

pub fn add_backward(x: &[Handle], dy: &View, sink: &mut dyn Sink) -> Result<()> {
    for t in x {
        if let Some((g, acc)) = sink.target(t)? {
            copy(sink.ctx(), dy, &g, acc)?;
        }
    }
    Ok(())
}

pub fn mul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    same_shape("mul", a, b)?;
    let y = output("mul", a.shape().to_vec(), &[a, b])?;
    let ctx = a.ctx();
    run(ctx, "mul_forward", flat(a.numel(), false, 1.0), &[(1, a.view()), (2, b.view()), (3, y.view())], grid1d(ctx, "mul", a.numel())?)?;
    Ok(y)
}

/// What mul's backward reads: both factors (each one's gradient is dy times the other).
pub struct MulOp {
    factors: [Tensor; 2],
}

impl MulOp {
    pub fn saving(a: &Tensor, b: &Tensor) -> MulOp {
        MulOp { factors: [a.clone(), b.clone()] }
    }

    pub fn backward(&self, x: &[Handle], dy: &View, sink: &mut dyn Sink) -> Result<()> {
        mul_backward(&self.factors, x, dy, sink)
    }
}

fn mul_backward(factors: &[Tensor; 2], x: &[Handle], dy: &View, sink: &mut dyn Sink) -> Result<()> {
    for (i, t) in x.iter().enumerate() {
        if let Some((g, acc)) = sink.target(t)? {
            let other = &factors[1 - i];
            let ctx = sink.ctx();
            run(ctx, "mul_backward", flat(dy.len(), acc, 1.0), &[(1, dy), (2, other.view()), (3, &g)], grid1d(ctx, "mul", dy.len())?)?;
        }
    }
    Ok(())
}

pub fn scale(x: &Tensor, alpha: f32) -> Result<Tensor> {
    nonzero("scale", x)?;
    let y = output("scale", x.shape().to_vec(), &[x])?;
    let ctx = x.ctx();
    run(ctx, "scale_forward", flat(x.numel(), false, alpha), &[(1, x.view()), (3, y.view())], grid1d(ctx, "scale", x.numel())?)?;
    Ok(y)
}

pub fn scale_backward(alpha: f32, x: &Handle, dy: &View, sink: &mut dyn Sink) -> Result<()> {
    if let Some((g, acc)) = sink.target(x)? {
        let ctx = sink.ctx();
        run(ctx, "scale_backward", flat(dy.len(), acc, alpha), &[(1, dy), (3, &g)], grid1d(ctx, "scale", dy.len())?)?;
    }
    Ok(())
}

/// y = x + b[c] for NCHW x and b of shape [c].
pub fn bias_add(x: &Tensor, b: &Tensor) -> Result<Tensor> {
    let [n, c, h, w] = x.nchw("bias_add")?;
    nonzero("bias_add", x)?;
    crate::ensure!(b.shape() == [c], "bias_add", "bias shape {:?} does not match {c} channels of {:?}", b.shape(), x.shape());
    let y = output("bias_add", x.shape().to_vec(), &[x, b])?;
    let ctx = x.ctx();
    let p = ElementwiseParams { len: u(n * c * h * w), c: u(c), hw: u(h * w), ..Default::default() };
    run(ctx, "bias_add_forward", p, &[(1, x.view()), (2, b.view()), (3, y.view())], grid1d(ctx, "bias_add", x.numel())?)?;
    Ok(y)
}

/// db[c] (+)= sum over n, hw of dy (dy is [n, c, hw]); also the bias gradient of the convs.
/// db (+)= dy summed over (n, hw) per channel; dy laid out as `dys` (a channel slice or plain).
#[allow(clippy::too_many_arguments)]
pub fn bias_grad(ctx: &Ctx, n: usize, c: usize, hw: usize, dy: &View, dys: Chans, db: &View, accumulate: bool) -> Result<()> {
    let (c_off, c_total) = if dys == Chans::PLAIN { (0, u(c)) } else { (dys.off, dys.total) };
    let (chunks, chunk) = crate::ops::reduction_chunks(c, n * hw);
    let p = ElementwiseParams {
        len: u(n * c * hw),
        c: u(c),
        hw: u(hw),
        accumulate: flag(accumulate),
        c_off,
        c_total,
        chunks: u(chunks),
        chunk: u(chunk),
        ..Default::default()
    };
    let partials = ctx.alloc("bias_add", c * chunks)?;
    run(ctx, "bias_grad_partial", ElementwiseParams { accumulate: 0, ..p }, &[(1, dy), (3, &partials)], grid_groups(ctx, "bias_add", c * chunks)?)?;
    run(ctx, "bias_grad_final", p, &[(1, &partials), (3, db)], grid1d(ctx, "bias_add", c)?)
}

pub fn bias_add_backward(x: &[Handle], dy: &View, sink: &mut dyn Sink) -> Result<()> {
    if let Some((g, acc)) = sink.target(&x[0])? {
        copy(sink.ctx(), dy, &g, acc)?;
    }
    if let Some((g, acc)) = sink.target(&x[1])? {
        let [n, c, h, w] = x[0].nchw("bias_add")?;
        bias_grad(sink.ctx(), n, c, h * w, dy, Chans::PLAIN, &g, acc)?;
    }
    Ok(())
}
