//! Launchers for shaders/analysis.wgsl: per-image Laplacian / gradient statistics and the
//! nearest-image search behind the limitations analysis.

use crate::error::{Error, Result};
use crate::gpu::{Ctx, Launch, View};
use crate::gpu_params;
use crate::ops::{grid_groups, u};

gpu_params! {
    /// Keep in sync with `struct AnalysisParams` in shaders/analysis.wgsl.
    pub struct AnalysisParams {
        pub n: u32, pub h: u32, pub w: u32, pub offset: u32,
        pub count: u32, pub len: u32, pub _pad0: u32, pub _pad1: u32,
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
    let p = AnalysisParams { n: u(n), offset: u(offset), count: u(count), len: u(len), ..Default::default() };
    ctx.dispatch(Launch {
        family: FAMILY,
        entry: "analysis_nearest",
        overrides: &[],
        params: &p,
        bindings: &[(1, x), (2, dataset), (3, idx), (5, dist)],
        groups: grid_groups(ctx, FAMILY, n)?,
    })
}
