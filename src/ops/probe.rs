//! Launchers for shaders/probe.wgsl: the FMA-chain and copy probes `dae bench` measures the
//! adapter's ceilings with.

use crate::error::Result;
use crate::gpu::{Ctx, Launch, View};
use crate::gpu_params;
use crate::ops::{grid1d, u};

gpu_params! {
    /// Keep in sync with `struct ProbeParams` in shaders/probe.wgsl.
    pub struct ProbeParams {
        pub n: u32, pub iters: u32, pub _pad0: u32, pub _pad1: u32,
    }
}

const FAMILY: &str = "probe";

/// Flops one `fma_chain` invocation does per step: 8 chains x vec4 x (multiply + add).
pub const FLOPS_PER_STEP: usize = 64;

/// `threads` invocations of 8 vec4 FMA chains, `iters` steps each; `out` holds 4 * threads.
pub fn fma_chain(ctx: &Ctx, threads: usize, iters: usize, out: &View) -> Result<()> {
    let p = ProbeParams { n: u(threads), iters: u(iters), ..Default::default() };
    ctx.dispatch(Launch {
        family: FAMILY,
        entry: "fma_chain",
        overrides: &[],
        params: &p,
        bindings: &[(2, out)],
        groups: grid1d(ctx, "fma_chain", threads)?,
    })
}

/// out = a (equal lengths, a multiple of 4 floats).
pub fn copy_vec4(ctx: &Ctx, a: &View, out: &View) -> Result<()> {
    let n = a.len() / 4;
    let p = ProbeParams { n: u(n), ..Default::default() };
    ctx.dispatch(Launch {
        family: FAMILY,
        entry: "copy_vec4",
        overrides: &[],
        params: &p,
        bindings: &[(1, a), (2, out)],
        groups: grid1d(ctx, "copy_vec4", n)?,
    })
}
