//! Launchers for shaders/fft.wgsl: the exact 2-D DFT of a batch of images (mixed-radix Stockham,
//! any H, W up to 256), fftshifted magnitudes, radial profiles, the batch mean of log-magnitude.

use crate::error::{Error, Result};
use crate::gpu::{Ctx, Launch, View};
use crate::gpu_params;
use crate::ops::{flag, grid_groups, u};

gpu_params! {
    /// Keep in sync with `struct FftParams` in shaders/fft.wgsl.
    pub struct FftParams {
        pub lines: u32, pub n: u32, pub per_plane: u32, pub plane_len: u32,
        pub inner_stride: u32, pub elem_stride: u32, pub n_factors: u32, pub tw_off: u32,
        pub batch: u32, pub h: u32, pub w: u32, pub bins: u32,
        pub accumulate: u32, pub offset: u32, pub _pad1: u32, pub scale: f32,
        pub factors: [u32; 8],
    }
}

const FAMILY: &str = "fft";
/// Threads per workgroup (`const WG` in fft.wgsl).
const WG: u32 = 64;

fn grid(ctx: &Ctx, threads: usize) -> Result<[u32; 3]> {
    ctx.grid(FAMILY, threads as u64, WG)
}
/// The longest side the kernel transforms (its workgroup buffer).
pub const MAX_SIDE: usize = 256;

/// n as a product of radices: 4s, a 2, 3s, 5s, 7s, then any primes (most 8 factors for n <= 256).
pub fn factors(mut n: usize) -> Vec<usize> {
    let mut f = Vec::new();
    for p in [4, 2, 3, 5, 7] {
        while n > 1 && n.is_multiple_of(p) {
            f.push(p);
            n /= p;
        }
    }
    let mut p = 11;
    while n > 1 {
        while n.is_multiple_of(p) {
            f.push(p);
            n /= p;
        }
        p += 2;
    }
    f
}

/// The plan of a batch's 2-D transform at h x w: the twiddle tables (w^e for the width, then
/// the height, computed in f64) and the buffers the stages write.
pub struct Fft2d {
    pub h: usize,
    pub w: usize,
    tw: View,
}

impl Fft2d {
    pub fn new(ctx: &Ctx, h: usize, w: usize) -> Result<Fft2d> {
        if h == 0 || w == 0 || h > MAX_SIDE || w > MAX_SIDE {
            return Err(Error::shape("fft", format!("image sides must be 1..={MAX_SIDE}, got {h}x{w}")));
        }
        let mut t = Vec::with_capacity(2 * (w + h));
        for n in [w, h] {
            for e in 0..n {
                let a = -2.0 * std::f64::consts::PI * e as f64 / n as f64;
                t.extend([a.cos() as f32, a.sin() as f32]);
            }
        }
        Ok(Fft2d { h, w, tw: ctx.upload("fft twiddles", &t)? })
    }

    /// The number of radial bins (unit width, up to the farthest corner from (h/2, w/2)).
    pub fn bins(&self) -> usize {
        let (cy, cx) = (self.h / 2, self.w / 2);
        ((cy * cy + cx * cx) as f64).sqrt().floor() as usize + 1
    }

    fn params(&self, n: usize, lines: usize, tw_off: usize) -> FftParams {
        let f = factors(n);
        let mut factors = [0u32; 8];
        for (d, s) in factors.iter_mut().zip(&f) {
            *d = u(*s);
        }
        FftParams { lines: u(lines), n: u(n), n_factors: u(f.len()), tw_off: u(tw_off), factors, ..Default::default() }
    }

    /// spec [b, h, w] (complex, 2 floats each) = fft2(x [b, h, w]).
    pub fn forward(&self, ctx: &Ctx, x: &View, batch: usize, spec: &View) -> Result<()> {
        let (h, w) = (self.h, self.w);
        if x.len() != batch * h * w || spec.len() != 2 * batch * h * w {
            return Err(Error::shape(
                "fft",
                format!(
                    "x has {} elements and spec {}, batch {batch} of {h}x{w} needs {} and {}",
                    x.len(),
                    spec.len(),
                    batch * h * w,
                    2 * batch * h * w
                ),
            ));
        }
        let rows = FftParams { per_plane: u(h), plane_len: u(h * w), inner_stride: u(w), elem_stride: 1, ..self.params(w, batch * h, 0) };
        ctx.dispatch(Launch {
            family: FAMILY,
            entry: "fft_rows",
            overrides: &[],
            params: &rows,
            bindings: &[(1, x), (2, &self.tw), (4, spec)],
            groups: grid_groups(ctx, FAMILY, batch * h)?,
        })?;
        let cols = FftParams { per_plane: u(w), plane_len: u(h * w), inner_stride: 1, elem_stride: u(w), ..self.params(h, batch * w, w) };
        ctx.dispatch(Launch {
            family: FAMILY,
            entry: "fft_cols",
            overrides: &[],
            params: &cols,
            bindings: &[(2, &self.tw), (4, spec)],
            groups: grid_groups(ctx, FAMILY, batch * w)?,
        })
    }

    fn shape_params(&self, batch: usize) -> FftParams {
        FftParams { batch: u(batch), h: u(self.h), w: u(self.w), bins: u(self.bins()), ..Default::default() }
    }

    /// mag [b, h, w] = |spec| with fftshift.
    pub fn magnitude(&self, ctx: &Ctx, spec: &View, batch: usize, mag: &View) -> Result<()> {
        let p = self.shape_params(batch);
        ctx.dispatch(Launch {
            family: FAMILY,
            entry: "fft_magnitude",
            overrides: &[],
            params: &p,
            bindings: &[(4, spec), (5, mag)],
            groups: grid(ctx, batch * self.h * self.w)?,
        })
    }

    /// prof [offset + b, bins] = mean magnitude per unit-width ring around the centre.
    pub fn radial(&self, ctx: &Ctx, mag: &View, batch: usize, prof: &View, offset: usize) -> Result<()> {
        if (offset + batch) * self.bins() > prof.len() {
            return Err(Error::shape(
                "fft",
                format!("profiles {offset}..{} of {} bins do not fit {} elements", offset + batch, self.bins(), prof.len()),
            ));
        }
        let p = FftParams { offset: u(offset), ..self.shape_params(batch) };
        ctx.dispatch(Launch {
            family: FAMILY,
            entry: "fft_radial",
            overrides: &[],
            params: &p,
            bindings: &[(3, mag), (5, prof)],
            groups: grid(ctx, batch * self.bins())?,
        })
    }

    /// acc [h, w] (+)= scale * sum over the batch of log(1 + mag).
    pub fn mean_log(&self, ctx: &Ctx, mag: &View, batch: usize, scale: f32, acc: &View, accumulate: bool) -> Result<()> {
        let p = FftParams { scale, accumulate: flag(accumulate), ..self.shape_params(batch) };
        ctx.dispatch(Launch {
            family: FAMILY,
            entry: "fft_mean_log",
            overrides: &[],
            params: &p,
            bindings: &[(3, mag), (5, acc)],
            groups: grid(ctx, self.h * self.w)?,
        })
    }
}
