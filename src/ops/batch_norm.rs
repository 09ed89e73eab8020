//! Launchers for shaders/batch_norm.wgsl and the graph op batch_norm (training: batch
//! statistics and running-stat update; eval: running statistics).

use crate::error::Result;
use crate::gpu::{Ctx, Launch, View};
use crate::gpu_params;
use crate::ops::Sink;
use crate::ops::activation::Activation;
use crate::ops::amp::{Operand, SavedInput, half_copy};
use crate::ops::kernels::Kernels;
use crate::ops::{Chans, NormThreads, flag, grid_groups, grid1d, nonzero, output_to, u};
use crate::tensor::{Handle, Tensor};

gpu_params! {
    /// Keep in sync with `struct BatchNormParams` in shaders/batch_norm.wgsl.
    pub struct BatchNormParams {
        pub n: u32, pub c: u32, pub hw: u32, pub accumulate: u32,
        pub eps: f32, pub momentum: f32, pub write_dx: u32, pub write_dparams: u32,
        pub param_accumulate: u32, pub slope: f32, pub s_c: u32, pub s_off: u32,
        pub s_total: u32, pub chunks: u32, pub chunk: u32, pub _pad2: u32,
    }
}

const FAMILY: &str = "batch_norm";

/// The two reductions sum over 256 slots; workgroups of 256, 64, 32 or 16 invocations fill them
/// (wg_total wants at least 16).
static THREADS: NormThreads = NormThreads::new([256, 64, 32, 16], ["256 per workgroup", "64 per workgroup", "32 per workgroup", "16 per workgroup"]);

fn run(ctx: &Ctx, entry: &'static str, act: Option<Activation>, p: BatchNormParams, bindings: &[(u32, &View)], groups: [u32; 3]) -> Result<()> {
    run_in(ctx, FAMILY, entry, act, p, bindings, groups)
}

fn run_in(
    ctx: &Ctx,
    family: &'static str,
    entry: &'static str,
    act: Option<Activation>,
    p: BatchNormParams,
    bindings: &[(u32, &View)],
    groups: [u32; 3],
) -> Result<()> {
    ctx.dispatch(Launch { family, entry, overrides: THREADS.overrides(act, 0), params: &p, bindings, groups })
}

/// A reduction entry, one workgroup per (channel, chunk), at the workgroup size autotune chose
/// (`family`: batch_norm, or batch_norm_h on the saved f16 x).
fn run_tuned(
    ctx: &Ctx,
    kn: &Kernels,
    family: &'static str,
    entry: &'static str,
    act: Option<Activation>,
    p: BatchNormParams,
    inputs: &[(u32, &View)],
    out: &[(u32, &View)],
) -> Result<()> {
    let half = if family == FAMILY { "" } else { " f16" };
    let shape = format!("n{} {}x{}{half}", p.n, p.c, p.hw);
    let groups = grid_groups(ctx, family, (p.c * p.chunks) as usize)?;
    THREADS.launch(ctx, &kn.pin, entry, &shape, inputs, out, |i, bindings| {
        ctx.dispatch(Launch { family, entry, overrides: THREADS.overrides(act, i), params: &p, bindings, groups })
    })
}

#[allow(clippy::too_many_arguments)]
pub fn batch_norm_forward_train(
    ctx: &Ctx,
    kn: &Kernels,
    act: Option<Activation>,
    p: BatchNormParams,
    x: &View,
    gamma: &View,
    beta: &View,
    stats: &View,
    running_mean: &View,
    running_var: &View,
    y: &View,
) -> Result<()> {
    let p = chunked(p);
    let partials = ctx.alloc(FAMILY, 3 * (p.c * p.chunks) as usize)?;
    run_tuned(ctx, kn, FAMILY, "batch_norm_stats", act, p, &[(1, x)], &[(12, &partials)])?;
    run(
        ctx,
        "batch_norm_stats_final",
        act,
        p,
        &[(5, stats), (6, running_mean), (7, running_var), (12, &partials)],
        grid1d(ctx, FAMILY, p.c as usize)?,
    )?;
    let bindings = [(1, x), (2, gamma), (3, beta), (5, stats), (8, y)];
    run(ctx, "batch_norm_apply", act, p, &bindings, grid1d(ctx, FAMILY, (p.n * p.c * p.hw) as usize)?)
}

fn chunked(p: BatchNormParams) -> BatchNormParams {
    let (chunks, chunk) = crate::ops::reduction_chunks(p.c as usize, (p.n * p.hw) as usize);
    BatchNormParams { chunks: u(chunks), chunk: u(chunk), ..p }
}

#[allow(clippy::too_many_arguments)]
pub fn batch_norm_forward_eval(
    ctx: &Ctx,
    act: Option<Activation>,
    p: BatchNormParams,
    x: &View,
    gamma: &View,
    beta: &View,
    running_mean: &View,
    running_var: &View,
    y: &View,
) -> Result<()> {
    let bindings = [(1, x), (2, gamma), (3, beta), (6, running_mean), (7, running_var), (8, y)];
    run(ctx, "batch_norm_forward_eval", act, p, &bindings, grid1d(ctx, FAMILY, (p.n * p.c * p.hw) as usize)?)
}

#[allow(clippy::too_many_arguments)]
pub fn batch_norm_backward(
    ctx: &Ctx,
    kn: &Kernels,
    act: Option<Activation>,
    p: BatchNormParams,
    x: Operand,
    gamma: &View,
    beta: &View,
    dy: &View,
    stats: &View,
    dx: &View,
    dgamma: &View,
    dbeta: &View,
) -> Result<()> {
    let (family, x) = match x {
        Operand::F32(v) => (FAMILY, v),
        Operand::F16(v) => ("batch_norm_h", v),
    };
    let p = chunked(p);
    let partials = ctx.alloc(FAMILY, 2 * (p.c * p.chunks) as usize)?;
    let inputs = [(1, x), (2, gamma), (3, beta), (4, dy), (5, stats)];
    run_tuned(ctx, kn, family, "batch_norm_backward_partial", act, p, &inputs, &[(12, &partials)])?;
    let common = [(1, x), (2, gamma), (3, beta), (4, dy), (5, stats), (12, &partials)];
    run(ctx, "batch_norm_backward_final", act, p, &[(10, dgamma), (11, dbeta), (12, &partials)], grid1d(ctx, FAMILY, p.c as usize)?)?;
    if p.write_dx != 0 {
        let mut b = common.to_vec();
        b.push((9, dx));
        run_in(ctx, family, "batch_norm_backward_apply", act, p, &b, grid1d(ctx, family, (p.n * p.c * p.hw) as usize)?)?;
    }
    Ok(())
}

/// What batch norm's backward reads, saved by its forward (training mode): x (under half
/// precision its f16 copy), gamma, beta and the batch statistics.
pub struct BatchNormOp {
    p: BatchNormParams,
    stats: View,
    act: Option<Activation>,
    /// How the forward ran: the backward runs the same way.
    kn: Kernels,
    x: SavedInput,
    gamma: Tensor,
    beta: Tensor,
}

/// PyTorch's F.batch_norm over NCHW with affine gamma/beta [c] and running stats [c] (updated in
/// place when `training`; momentum as PyTorch, 0.1 by default), then `act` (fused) when given;
/// written into `dest` (e.g. a channel slice of a concat) when given.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm(
    kn: &Kernels,
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    running_mean: &Tensor,
    running_var: &Tensor,
    training: bool,
    momentum: f32,
    eps: f32,
    act: Option<Activation>,
    dest: Option<&Tensor>,
) -> Result<(Tensor, Option<BatchNormOp>)> {
    const OP: &str = "batch_norm";
    let [n, c, h, w] = x.nchw(OP)?;
    nonzero(OP, x)?;
    for (name, t) in [("gamma", gamma), ("beta", beta), ("running_mean", running_mean), ("running_var", running_var)] {
        crate::ensure!(t.shape() == [c], OP, "{name} shape {:?} must be [{c}]", t.shape());
    }
    crate::ensure!(!training || n * h * w > 1, OP, "training needs more than one value per channel, got input {:?}", x.shape());
    let ctx = x.ctx();
    let y = output_to(OP, x.shape().to_vec(), &[x, gamma, beta, running_mean, running_var], dest)?;
    let ys = Chans::of(&y);
    let p = BatchNormParams {
        n: u(n),
        c: u(c),
        hw: u(h * w),
        eps,
        momentum,
        slope: act.map_or(0.0, |a| a.slope()),
        s_c: ys.c,
        s_off: ys.off,
        s_total: ys.total,
        ..Default::default()
    };
    if !training {
        batch_norm_forward_eval(ctx, act, p, x.view(), gamma.view(), beta.view(), running_mean.view(), running_var.view(), y.view())?;
        return Ok((y, None));
    }
    let stats = ctx.alloc(OP, c * 2)?;
    batch_norm_forward_train(ctx, kn, act, p, x.view(), gamma.view(), beta.view(), &stats, running_mean.view(), running_var.view(), y.view())?;
    let x_half = half_copy(ctx, kn.half.as_ref(), x.view(), n, c, h * w, Chans::PLAIN)?;
    Ok((y, Some(BatchNormOp { p, stats, act, kn: kn.clone(), x: SavedInput::of(x, x_half), gamma: gamma.clone(), beta: beta.clone() })))
}

impl BatchNormOp {
    /// `x`: the graph's handles of x, gamma and beta.
    pub fn backward(&self, x: &[Handle], dy: &View, sink: &mut dyn Sink) -> Result<()> {
        let ctx = sink.ctx().clone();
        let dx = sink.target(&x[0])?;
        let dg = sink.target(&x[1])?;
        let db = sink.target(&x[2])?;
        let c = self.p.c as usize;
        let write_dparams = dg.is_some() || db.is_some();
        let param_acc = dg.as_ref().is_some_and(|t| t.1) || db.as_ref().is_some_and(|t| t.1);
        let fill_or_scratch = |t: Option<(View, bool)>| -> Result<View> {
            match t {
                Some((v, acc)) => {
                    if param_acc && !acc {
                        crate::ops::elementwise::fill(&ctx, &v, 0.0)?;
                    }
                    Ok(v)
                }
                None => ctx.alloc(FAMILY, c),
            }
        };
        let dg = fill_or_scratch(dg)?;
        let db = fill_or_scratch(db)?;
        let (dxv, acc) = match dx {
            Some(t) => (t.0, t.1),
            None => (ctx.alloc(FAMILY, 4)?, false),
        };
        let p = BatchNormParams {
            accumulate: flag(acc),
            write_dx: flag(sink.wants(&x[0])),
            write_dparams: flag(write_dparams),
            param_accumulate: flag(param_acc),
            ..self.p
        };
        batch_norm_backward(&ctx, &self.kn, self.act, p, self.x.operand(), self.gamma.view(), self.beta.view(), dy, &self.stats, &dxv, &dg, &db)
    }
}
