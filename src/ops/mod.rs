//! Launchers, one file per `shaders/<family>.wgsl`: the Params twin, one launch fn per entry
//! point (arguments in binding order), and the differentiable graph functions built on them
//! (`conv2d(&x, &w, ..)`), each validating shapes into an error that names the op.

pub mod activation;
pub mod analysis;
pub mod batch_norm;
pub mod concat;
pub mod conv2d;
pub mod data;
pub mod dropout2d;
pub mod elementwise;
pub mod fft;
pub mod group_norm;
pub mod loss;
pub mod lpips;
pub mod maxpool2d;
pub mod metrics;
pub mod optim;
pub mod pad2d;
pub mod reduce;
pub mod resize_bilinear;

use crate::error::{Error, Result};
use crate::gpu::params::{ParamsInfo, info};
use crate::gpu::{Ctx, WG};
use crate::tensor::{Tensor, numel};

pub(crate) fn u(x: usize) -> u32 {
    x as u32
}

pub(crate) fn flag(b: bool) -> u32 {
    b as u32
}

/// A new output tensor of `shape` for `op`, wanting a gradient when the tape records `inputs`.
pub(crate) fn output(op: &'static str, shape: Vec<usize>, inputs: &[&Tensor]) -> Result<Tensor> {
    let ctx = inputs[0].ctx();
    for t in inputs {
        if !std::rc::Rc::ptr_eq(&t.ctx().0, &ctx.0) {
            return Err(Error::shape(op, "inputs live on different devices"));
        }
    }
    if shape.contains(&0) {
        return Err(Error::shape(op, format!("output shape {shape:?} has a zero-sized dimension")));
    }
    let view = ctx.alloc(op, numel(&shape))?;
    Ok(Tensor::wrap(ctx, shape, view, ctx.wants_grad(inputs)))
}

/// Reject zero-sized dimensions up front (a dispatch of zero elements would silently do nothing).
pub(crate) fn nonzero(op: &'static str, t: &Tensor) -> Result<()> {
    if t.shape().is_empty() || t.shape().contains(&0) {
        return Err(Error::shape(op, format!("input shape {:?} has a zero-sized dimension", t.shape())));
    }
    Ok(())
}

pub(crate) fn grid1d(ctx: &Ctx, op: &'static str, threads: usize) -> Result<[u32; 3]> {
    ctx.grid(op, threads as u64, WG)
}

/// One workgroup per item (channels, groups): the same folding, one "thread" per workgroup.
pub(crate) fn grid_groups(ctx: &Ctx, op: &'static str, groups: usize) -> Result<[u32; 3]> {
    ctx.grid(op, groups as u64, 1)
}

/// Every Params struct of the crate, for the layout test against naga's reflection.
pub fn all_params() -> Vec<ParamsInfo> {
    vec![
        info::<conv2d::Conv2dParams>(),
        info::<group_norm::GroupNormParams>(),
        info::<batch_norm::BatchNormParams>(),
        info::<activation::ActivationParams>(),
        info::<maxpool2d::MaxPool2dParams>(),
        info::<resize_bilinear::ResizeBilinearParams>(),
        info::<pad2d::Pad2dParams>(),
        info::<concat::ConcatParams>(),
        info::<dropout2d::Dropout2dParams>(),
        info::<elementwise::ElementwiseParams>(),
        info::<loss::LossParams>(),
        info::<reduce::ReduceParams>(),
        info::<optim::OptimParams>(),
        info::<data::DataParams>(),
        info::<metrics::MetricsParams>(),
        info::<lpips::LpipsParams>(),
        info::<fft::FftParams>(),
        info::<analysis::AnalysisParams>(),
    ]
}
