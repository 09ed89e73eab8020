//! Launchers for shaders/group_norm.wgsl and the graph op group_norm (instance norm is
//! groups == channels).

use crate::error::Result;
use crate::gpu::{Ctx, Launch, View};
use crate::gpu_params;
use crate::ops::Sink;
use crate::ops::activation::Activation;
use crate::ops::amp::{Operand, SavedInput, half_copy};
use crate::ops::kernels::Kernels;
use crate::ops::{Chans, NormThreads, flag, grid_groups, nonzero, output_to, u};
use crate::tensor::{Handle, Tensor};

gpu_params! {
    /// Keep in sync with `struct GroupNormParams` in shaders/group_norm.wgsl.
    pub struct GroupNormParams {
        pub n: u32, pub c: u32, pub hw: u32, pub groups: u32,
        pub eps: f32, pub accumulate: u32, pub slope: f32, pub s_c: u32,
        pub s_off: u32, pub s_total: u32, pub chunks: u32, pub chunk: u32,
    }
}

const FAMILY: &str = "group_norm";

/// Group norm's reductions sum over 64 slots; workgroups of 64, 32, 16 or 8 invocations fill them.
static THREADS: NormThreads = NormThreads::new([64, 32, 16, 8], ["64 per workgroup", "32 per workgroup", "16 per workgroup", "8 per workgroup"]);

/// One launch of a reduction entry at the workgroup size autotune chose for the shape; x (binding
/// 1) as `x`: f32, or the saved f16 copy (the twin family group_norm_h).
#[allow(clippy::too_many_arguments)]
fn run_tuned(
    ctx: &Ctx,
    kn: &Kernels,
    entry: &'static str,
    act: Option<Activation>,
    p: GroupNormParams,
    x: Operand,
    inputs: &[(u32, &View)],
    out: &[(u32, &View)],
    groups: usize,
) -> Result<()> {
    let (family, x, half) = match x {
        Operand::F32(v) => (FAMILY, v, ""),
        Operand::F16(v) => ("group_norm_h", v, " f16"),
    };
    let shape = format!("n{} {}x{} groups {}{half}", p.n, p.c, p.hw, p.groups);
    let inputs: Vec<(u32, &View)> = std::iter::once((1, x)).chain(inputs.iter().copied()).collect();
    THREADS.launch(ctx, &kn.pin, entry, &shape, &inputs, out, |i, bindings| {
        ctx.dispatch(Launch { family, entry, overrides: THREADS.overrides(act, i), params: &p, bindings, groups: grid_groups(ctx, entry, groups)? })
    })
}

/// y = act((x - mean) * rstd * gamma + beta) per group; stats [n*groups*2] receives (mean, rstd).
#[allow(clippy::too_many_arguments)]
pub fn group_norm_forward(
    ctx: &Ctx,
    kn: &Kernels,
    act: Option<Activation>,
    p: GroupNormParams,
    x: &View,
    gamma: &View,
    beta: &View,
    stats: &View,
    y: &View,
) -> Result<()> {
    run_tuned(ctx, kn, "group_norm_forward", act, p, Operand::F32(x), &[(2, gamma), (3, beta)], &[(5, stats), (6, y)], (p.n * p.groups) as usize)
}

#[allow(clippy::too_many_arguments)]
pub fn group_norm_input_grad(
    ctx: &Ctx,
    kn: &Kernels,
    act: Option<Activation>,
    p: GroupNormParams,
    x: Operand,
    gamma: &View,
    beta: &View,
    dy: &View,
    stats: &View,
    dx: &View,
) -> Result<()> {
    run_tuned(ctx, kn, "group_norm_input_grad", act, p, x, &[(2, gamma), (3, beta), (4, dy), (5, stats)], &[(7, dx)], (p.n * p.groups) as usize)
}

/// dgamma, dbeta (+)= the sums over (n, hw), in two stages over (channel, chunk) workgroups.
#[allow(clippy::too_many_arguments)]
pub fn group_norm_param_grad(
    ctx: &Ctx,
    kn: &Kernels,
    act: Option<Activation>,
    p: GroupNormParams,
    x: Operand,
    gamma: &View,
    beta: &View,
    dy: &View,
    stats: &View,
    dgamma: &View,
    dbeta: &View,
) -> Result<()> {
    let (chunks, chunk) = crate::ops::reduction_chunks(p.c as usize, (p.n * p.hw) as usize);
    let p = GroupNormParams { chunks: u(chunks), chunk: u(chunk), ..p };
    let partials = ctx.alloc(FAMILY, 2 * p.c as usize * chunks)?;
    run_tuned(
        ctx,
        kn,
        "group_norm_param_partial",
        act,
        p,
        x,
        &[(2, gamma), (3, beta), (4, dy), (5, stats)],
        &[(10, &partials)],
        p.c as usize * chunks,
    )?;
    let groups = ctx.grid(FAMILY, p.c as u64, 64)?;
    ctx.dispatch(Launch {
        family: FAMILY,
        entry: "group_norm_param_final",
        overrides: THREADS.overrides(act, 0),
        params: &p,
        bindings: &[(8, dgamma), (9, dbeta), (10, &partials)],
        groups,
    })
}

/// What group norm's backward reads, saved by its forward: x (under half precision its f16
/// copy), gamma, beta and the statistics.
pub struct GroupNormOp {
    p: GroupNormParams,
    stats: View,
    act: Option<Activation>,
    /// How the forward ran: the backward runs the same way.
    kn: Kernels,
    x: SavedInput,
    gamma: Tensor,
    beta: Tensor,
}

/// PyTorch's F.group_norm with affine gamma/beta of shape [c], then `act` (fused) when given;
/// written into `dest` (e.g. a channel slice of a concat) when given. The backward reads dy in
/// the output's layout.
pub fn group_norm(
    kn: &Kernels,
    x: &Tensor,
    groups: usize,
    gamma: &Tensor,
    beta: &Tensor,
    eps: f32,
    act: Option<Activation>,
    dest: Option<&Tensor>,
) -> Result<(Tensor, GroupNormOp)> {
    const OP: &str = "group_norm";
    let [n, c, h, w] = x.nchw(OP)?;
    nonzero(OP, x)?;
    crate::ensure!(groups > 0 && c % groups == 0, OP, "{c} channels cannot be split into {groups} groups");
    crate::ensure!(gamma.shape() == [c] && beta.shape() == [c], OP, "gamma {:?} and beta {:?} must both be [{c}]", gamma.shape(), beta.shape());
    crate::ensure!(eps >= 0.0, OP, "eps must be >= 0, got {eps}");
    let ctx = x.ctx();
    let y = output_to(OP, x.shape().to_vec(), &[x, gamma, beta], dest)?;
    let stats = ctx.alloc(OP, n * groups * 2)?;
    let ys = Chans::of(&y);
    let p = GroupNormParams {
        n: u(n),
        c: u(c),
        hw: u(h * w),
        groups: u(groups),
        eps,
        slope: act.map_or(0.0, |a| a.slope()),
        s_c: ys.c,
        s_off: ys.off,
        s_total: ys.total,
        ..Default::default()
    };
    group_norm_forward(ctx, kn, act, p, x.view(), gamma.view(), beta.view(), &stats, y.view())?;
    let x_half = half_copy(ctx, kn.half.as_ref(), x.view(), n, c, h * w, Chans::PLAIN)?;
    Ok((y, GroupNormOp { p, stats, act, kn: kn.clone(), x: SavedInput::of(x, x_half), gamma: gamma.clone(), beta: beta.clone() }))
}

impl GroupNormOp {
    /// `x`: the graph's handles of x, gamma and beta.
    pub fn backward(&self, x: &[Handle], dy: &View, sink: &mut dyn Sink) -> Result<()> {
        if let Some((dx, acc)) = sink.target(&x[0])? {
            let p = GroupNormParams { accumulate: flag(acc), ..self.p };
            group_norm_input_grad(sink.ctx(), &self.kn, self.act, p, self.x.operand(), self.gamma.view(), self.beta.view(), dy, &self.stats, &dx)?;
        }
        let dg = sink.target(&x[1])?;
        let db = sink.target(&x[2])?;
        if dg.is_some() || db.is_some() {
            // The kernel writes both; a side that wants no gradient gets a scratch buffer.
            let ctx = sink.ctx().clone();
            let scratch = |t: Option<(View, bool)>| -> Result<(View, bool)> {
                match t {
                    Some(t) => Ok(t),
                    None => Ok((ctx.alloc(FAMILY, self.p.c as usize)?, false)),
                }
            };
            let (dg, acc_g) = scratch(dg)?;
            let (db, acc_b) = scratch(db)?;
            // One flag serves both outputs; the two are either both fresh or both accumulating
            // for parameters. If they differ, zero the fresh one first.
            let acc = acc_g || acc_b;
            if acc && !acc_g {
                crate::ops::elementwise::fill(&ctx, &dg, 0.0)?;
            }
            if acc && !acc_b {
                crate::ops::elementwise::fill(&ctx, &db, 0.0)?;
            }
            let p = GroupNormParams { accumulate: flag(acc), ..self.p };
            group_norm_param_grad(&ctx, &self.kn, self.act, p, self.x.operand(), self.gamma.view(), self.beta.view(), dy, &self.stats, &dg, &db)?;
        }
        Ok(())
    }
}
