//! Launchers for shaders/data.wgsl: the batch gather and the noise.

use crate::error::Result;
use crate::gpu::{Ctx, Launch, View};
use crate::gpu_params;
use crate::ops::grid1d;

gpu_params! {
    /// Keep in sync with `struct DataParams` in shaders/data.wgsl.
    pub struct DataParams {
        pub len: u32, pub image_len: u32, pub start: u32, pub noise: u32,
        pub seed_lo: u32, pub seed_hi: u32, pub epoch: u32, pub step: u32,
        pub n_levels: u32, pub use_range: u32, pub has_clip: u32, pub _pad0: u32,
        pub level_lo: f32, pub level_hi: f32, pub level_scale: f32, pub amount: f32,
        pub peak: f32, pub clip_lo: f32, pub clip_hi: f32, pub in_scale: f32,
        pub in_shift: f32, pub _pad1: u32, pub _pad2: u32, pub _pad3: u32,
        pub levels: [f32; 16],
    }
}

const FAMILY: &str = "data";
pub use crate::config::MAX_LEVELS;

/// Pixels (u8) four to a u32, lowest byte first: the dataset layout `data_gather` reads.
pub fn pack_u8(bytes: &[u8]) -> Vec<u32> {
    bytes.chunks(4).map(|c| c.iter().enumerate().fold(0u32, |w, (k, b)| w | (*b as u32) << (8 * k))).collect()
}

/// gathered [batch*image_len] = pixels of images perm[start..start+batch] / 255.
pub fn data_gather(ctx: &Ctx, dataset: &View, perm: &View, start: usize, batch: usize, image_len: usize, gathered: &View) -> Result<()> {
    let p = DataParams { len: (batch * image_len) as u32, image_len: image_len as u32, start: start as u32, ..Default::default() };
    let groups = grid1d(ctx, FAMILY, batch * image_len)?;
    ctx.dispatch(Launch {
        family: FAMILY,
        entry: "data_gather",
        overrides: &[],
        params: &p,
        bindings: &[(1, dataset), (2, perm), (5, gathered)],
        groups,
    })
}

/// out = noisy(clean) * in_scale + in_shift; `p.len`, `p.image_len` and the noise fields set by the caller.
pub fn data_noise(ctx: &Ctx, p: &DataParams, clean: &View, out: &View) -> Result<()> {
    let groups = grid1d(ctx, FAMILY, p.len as usize)?;
    ctx.dispatch(Launch { family: FAMILY, entry: "data_noise", overrides: &[], params: p, bindings: &[(3, clean), (4, out)], groups })
}
