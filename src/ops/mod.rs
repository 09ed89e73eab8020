//! Launchers, one file per `shaders/<family>.wgsl`: the Params twin, one launch fn per entry
//! point (arguments in binding order), and the tensor-level forward of each op (`conv2d(&x, &w,
//! ..)`), which validates shapes into an error naming the op, runs the kernels and returns the
//! output with what its backward needs; the backward functions write into a [`Sink`]. Recording
//! the graph is the autograd's business (`autograd::Graph`), a layer above.

pub mod activation;
pub mod amp;
pub mod analysis;
pub mod batch_norm;
pub mod concat;
pub mod conv2d;
pub mod data;
pub mod dropout2d;
pub mod elementwise;
pub mod fft;
pub mod group_norm;
pub mod kernels;
pub mod loss;
pub mod lpips;
pub mod maxpool2d;
pub mod metrics;
pub mod optim;
pub mod pad2d;
pub mod probe;
pub mod reduce;
pub mod resize_bilinear;

use crate::error::{Error, Result};
use crate::gpu::params::{ParamsInfo, info};
use crate::gpu::{Ctx, View, WG};
use crate::tensor::{Handle, Tensor, numel};

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
    fn target(&mut self, t: &Handle) -> Result<Option<(View, bool)>>;
    /// Whether `t` wants a gradient.
    fn wants(&self, t: &Handle) -> bool;
    /// Make `g` itself `t`'s gradient, with no copy (an in-place concat hands each part the
    /// concat's gradient, which has the part's layout). False when `t` already has a gradient
    /// or a slot: the caller then accumulates into `target(t)`.
    fn alias(&mut self, t: &Handle, g: &View) -> bool;
    fn ctx(&self) -> &Ctx;
}

/// The workgroup sizes (override THREADS) of the norms' reduction kernels, which sum over a
/// fixed number of slots in one order whatever the size: autotune may pick any of the four per
/// shape with no effect on the results. The first runs where untuned.
pub(crate) struct NormThreads {
    labels: [&'static str; 4],
    /// (ACT, THREADS) override pairs, index act * 4 + candidate.
    table: [[(&'static str, f64); 2]; 28],
}

impl NormThreads {
    pub(crate) const fn new(threads: [u32; 4], labels: [&'static str; 4]) -> NormThreads {
        let mut table = [[("ACT", 0.0), ("THREADS", 0.0)]; 28];
        let mut i = 0;
        while i < table.len() {
            table[i] = [("ACT", (i / 4) as f64), ("THREADS", threads[i % 4] as f64)];
            i += 1;
        }
        NormThreads { labels, table }
    }

    /// Candidate `i`'s overrides with `act` fused.
    pub(crate) fn overrides(&'static self, act: Option<activation::Activation>, i: usize) -> crate::gpu::Overrides {
        let a = activation::Activation::fused(act).iter().find(|o| o.0 == "ACT").map_or(6, |o| o.1 as usize);
        &self.table[a * 4 + i]
    }

    /// Run `launch(i, bindings)` with the chosen candidate i: the one `pin` names, the first
    /// under the simple kernels, else autotune's, which times each (`kernel`, `shape`) once on
    /// scratch copies of the outputs `out`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn launch(
        &self,
        ctx: &Ctx,
        pin: &kernels::Pin,
        kernel: &str,
        shape: &str,
        inputs: &[(u32, &View)],
        out: &[(u32, &View)],
        launch: impl Fn(usize, &[(u32, &View)]) -> Result<()>,
    ) -> Result<()> {
        let pick = if let Some(i) = pin.norm {
            i.min(self.labels.len() - 1)
        } else if pin.simple {
            0
        } else {
            // Each candidate on zeroed scratch copies of the outputs; no simple kernel here: the
            // cross-check goes by majority.
            ctx.tuned(
                kernel,
                shape,
                &self.labels,
                |i| {
                    let scratch: Vec<(u32, View)> = out
                        .iter()
                        .map(|(b, v)| {
                            let s = ctx.alloc("autotune scratch", v.len())?;
                            elementwise::fill(ctx, &s, 0.0)?;
                            Ok((*b, s))
                        })
                        .collect::<Result<_>>()?;
                    let mut b = inputs.to_vec();
                    b.extend(scratch.iter().map(|(k, v)| (*k, v)));
                    launch(i, &b)?;
                    Ok(scratch.into_iter().map(|(_, v)| v).collect())
                },
                None,
            )?
        };
        let mut b = inputs.to_vec();
        b.extend_from_slice(out);
        launch(pick, &b)
    }
}

/// A new output tensor of `shape` for `op` (all inputs on one device, none a channel slice).
pub(crate) fn output(op: &'static str, shape: Vec<usize>, inputs: &[&Tensor]) -> Result<Tensor> {
    output_to(op, shape, inputs, None)
}

/// `output`, or `dest` when given: a channel slice or plain tensor of exactly `shape`, which
/// the op then writes in place (its kernels take the output's layout).
pub(crate) fn output_to(op: &'static str, shape: Vec<usize>, inputs: &[&Tensor], dest: Option<&Tensor>) -> Result<Tensor> {
    if let Some(t) = inputs.iter().find(|t| t.is_slice()) {
        return Err(Error::shape(op, format!("takes no channel slice (an in-place concat part) as input, got {t:?}")));
    }
    output_any(op, shape, inputs, dest)
}

/// `output_to` for the ops whose kernels also read channel slices.
pub(crate) fn output_any(op: &'static str, shape: Vec<usize>, inputs: &[&Tensor], dest: Option<&Tensor>) -> Result<Tensor> {
    let ctx = inputs[0].ctx();
    for t in inputs.iter().chain(dest.as_ref()) {
        if !t.ctx().same_runtime(ctx) {
            return Err(Error::shape(op, "inputs live on different devices"));
        }
    }
    if shape.contains(&0) {
        return Err(Error::shape(op, format!("output shape {shape:?} has a zero-sized dimension")));
    }
    if let Some(d) = dest {
        if d.shape() != shape {
            return Err(Error::shape(op, format!("the destination is {:?}, the output {shape:?}", d.shape())));
        }
        return Ok(d.clone());
    }
    let view = ctx.alloc(op, numel(&shape))?;
    Ok(Tensor::wrap(ctx, shape, view))
}

/// A tensor's channel layout as the kernels' `Slice` (slice.wgsl): channels [off, off + c) of
/// `total` per image; (1, 0, 1) is a plain tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chans {
    pub c: u32,
    pub off: u32,
    pub total: u32,
}

impl Chans {
    pub const PLAIN: Chans = Chans { c: 1, off: 0, total: 1 };

    pub fn of(t: &Tensor) -> Chans {
        match t.slice() {
            Some(s) => Chans { c: u(t.shape()[1]), off: u(s.off), total: u(s.total) },
            None => Chans::PLAIN,
        }
    }
}

/// Reject zero-sized dimensions up front (a dispatch of zero elements would silently do nothing).
pub(crate) fn nonzero(op: &'static str, t: &Tensor) -> Result<()> {
    if t.shape().is_empty() || t.shape().contains(&0) {
        return Err(Error::shape(op, format!("input shape {:?} has a zero-sized dimension", t.shape())));
    }
    Ok(())
}

/// Loop iterations one invocation may run in one dispatch, all its loops together. Mesa's
/// llvmpipe (lavapipe) ends a shader's loops after 65,535 iterations shared between all of them
/// (gallivm's `LP_MAX_TGSI_LOOP_ITERATIONS`, a counter per SIMD vector of invocations), without
/// an error, so a kernel whose loops run longer computes wrong results there (measured: the
/// nearest-image search, 785 iterations per candidate, failed from 84 candidates per invocation
/// on: 21,249 MNIST images). Launchers whose loops grow with the data split their work so that no
/// invocation runs more than this, half the limit.
pub const LOOP_BUDGET: usize = 32_768;

pub(crate) fn grid1d(ctx: &Ctx, op: &'static str, threads: usize) -> Result<[u32; 3]> {
    ctx.grid(op, threads as u64, WG)
}

/// One workgroup per item (channels, groups): the same folding, one "thread" per workgroup.
pub(crate) fn grid_groups(ctx: &Ctx, op: &'static str, groups: usize) -> Result<[u32; 3]> {
    ctx.grid(op, groups as u64, 1)
}

/// (chunks, chunk length) a channel's `count` values are split into for the two-stage
/// per-channel reductions (batch norm, the group-norm parameter gradient, the bias gradient):
/// enough for 256 workgroups in all, a large GPU's worth, with no chunk under 1024 values.
pub fn reduction_chunks(c: usize, count: usize) -> (usize, usize) {
    let want = 256usize.div_ceil(c.max(1)).clamp(1, count.div_ceil(1024).max(1));
    let chunk = count.div_ceil(want).max(1);
    (count.div_ceil(chunk), chunk)
}

/// Every Params struct of the crate, for the layout test against naga's reflection.
pub fn all_params() -> Vec<ParamsInfo> {
    vec![
        info::<conv2d::Conv2dParams>(),
        info::<amp::AmpParams>(),
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
        info::<probe::ProbeParams>(),
    ]
}

#[cfg(test)]
mod tests {
    /// Every chunk holds values, the chunks cover the channel, and a channel is split only as
    /// far as 256 workgroups in all and chunks of at least 1024 values allow.
    #[test]
    fn reduction_chunks_cover_every_value() {
        for c in [1, 2, 3, 19, 64, 300] {
            for count in [1, 2, 147, 1023, 1024, 1025, 2185, 25088, 100_352] {
                let (chunks, chunk) = super::reduction_chunks(c, count);
                assert!(
                    chunks >= 1 && chunk >= 1 && (chunks - 1) * chunk < count && chunks * chunk >= count,
                    "c {c} count {count}: {chunks} x {chunk}"
                );
                assert!(chunks == 1 || chunk >= 1024 || c * chunks <= 256, "c {c} count {count}: {chunks} x {chunk}");
                assert!(c * chunks < 256 + c, "c {c} count {count}: {chunks} chunks");
            }
        }
    }
}
