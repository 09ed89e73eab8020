//! Launchers, one file per `shaders/<family>.wgsl`: the Params twin, one launch fn per entry
//! point (arguments in binding order), and the tensor-level forward of each op (`conv2d(&x, &w,
//! ..)`), which validates shapes into an error naming the op, runs the kernels and returns the
//! output with what its backward needs; the backward functions write into a [`Sink`]. Recording
//! the graph is the autograd's business (`autograd::Graph`), a layer above.

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
use crate::gpu::{Ctx, View, WG};
use crate::tensor::{Tensor, numel};

pub(crate) fn u(x: usize) -> u32 {
    x as u32
}

pub(crate) fn flag(b: bool) -> u32 {
    b as u32
}

/// Where a backward kernel writes the gradient of one input. The autograd implements it; the
/// ops only ask (the dependency points up through this trait, not through an import).
pub trait Sink {
    /// `None` when `t` wants no gradient; else the buffer and whether to accumulate into it
    /// (`+=`) or write it (`=`).
    fn target(&mut self, t: &Tensor) -> Result<Option<(View, bool)>>;
    /// Whether `t` wants a gradient.
    fn wants(&self, t: &Tensor) -> bool;
    fn ctx(&self) -> &Ctx;
}

/// A new output tensor of `shape` for `op` (all inputs on one device).
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
    Ok(Tensor::wrap(ctx, shape, view))
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
