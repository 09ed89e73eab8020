//! Launchers for shaders/analysis.wgsl: per-image Laplacian / gradient statistics and the
//! nearest-image search behind the limitations analysis.

use crate::error::{Error, Result};
use crate::gpu::WG;
use crate::gpu::{Ctx, Launch, View};
use crate::gpu_params;
use crate::ops::{LOOP_BUDGET, grid_groups, u};

gpu_params! {
    /// Keep in sync with `struct AnalysisParams` in shaders/analysis.wgsl.
    pub struct AnalysisParams {
        pub n: u32, pub h: u32, pub w: u32, pub offset: u32,
        pub count: u32, pub len: u32, pub min_with: u32, pub _pad1: u32,
    }
}

const FAMILY: &str = "analysis";
/// Most pixels of a query image the nearest-image search holds (its workgroup buffer).
pub const MAX_LEN: usize = 2048;

/// stats[2 (offset + i) + {0, 1}] = (RMS 4-neighbour Laplacian, mean central-difference gradient
/// magnitude) over the interior of images x [n, h, w] (h, w >= 3).
pub fn image_stats(ctx: &Ctx, x: &View, [n, h, w]: [usize; 3], stats: &View, offset: usize) -> Result<()> {
    if h < 3 || w < 3 || x.len() != n * h * w || 2 * (offset + n) > stats.len() {
        return Err(Error::shape(
            "image_stats",
            format!("images [{n}, {h}, {w}] (at least 3x3) of {} elements into slots {offset}..{} of {}", x.len(), offset + n, stats.len() / 2),
        ));
    }
    let p = AnalysisParams { n: u(n), h: u(h), w: u(w), offset: u(offset), ..Default::default() };
    ctx.dispatch(Launch {
        family: FAMILY,
        entry: "analysis_image_stats",
        overrides: &[],
        params: &p,
        bindings: &[(1, x), (4, stats)],
        groups: grid_groups(ctx, FAMILY, n)?,
    })
}

/// dist[offset + q] = the smallest L2 distance from query q of x [n, len] to the images idx of
/// the packed u8 `dataset` (len pixels each).
#[allow(clippy::too_many_arguments)]
pub fn nearest(ctx: &Ctx, x: &View, n: usize, len: usize, dataset: &View, idx: &View, count: usize, dist: &View, offset: usize) -> Result<()> {
    if len > MAX_LEN || x.len() != n * len || idx.len() < count || offset + n > dist.len() || count == 0 {
        return Err(Error::shape(
            "nearest",
            format!("{n} queries of {len} pixels (at most {MAX_LEN}) against {count} images into slots {offset}..{} of {}", offset + n, dist.len()),
        ));
    }
    // Each invocation scans every WG-th candidate, `len` pixels each: at most LOOP_BUDGET
    // iterations per dispatch, so a long list is searched in chunks (whole multiples of WG
    // candidates, which keeps each chunk of idx 256-byte aligned), each after the first keeping
    // the smaller of its distance and the one before (the minimum is exact: same bits).
    let wg = WG as usize;
    let chunk = ((LOOP_BUDGET / (len + 1)).max(1) * wg).min(count.div_ceil(wg) * wg);
    for (k, start) in (0..count).step_by(chunk).enumerate() {
        let m = chunk.min(count - start);
        let part = idx.slice(start, m)?;
        let p = AnalysisParams { n: u(n), offset: u(offset), count: u(m), len: u(len), min_with: u((k > 0) as usize), ..Default::default() };
        ctx.dispatch(Launch {
            family: FAMILY,
            entry: "analysis_nearest",
            overrides: &[],
            params: &p,
            bindings: &[(1, x), (2, dataset), (3, &part), (5, dist)],
            groups: grid_groups(ctx, FAMILY, n)?,
        })?;
    }
    Ok(())
}
