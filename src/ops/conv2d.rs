//! Launchers for shaders/conv2d.wgsl, and the graph ops conv2d and conv_transpose2d, which share
//! the three kernels (see the shader header for the mapping).

use crate::error::Result;
use crate::gpu::{Ctx, Launch, Overrides, View};
use crate::gpu_params;
use crate::ops::Sink;
use crate::ops::amp::{Operand, SavedInput, half_copy, operand, operand_of};
use crate::ops::kernels::{CONV_BLOCKINGS, ConvBlocking, ConvGrid, ConvRow, Kernels, WGRAD_BLOCKINGS, WgradBlocking};
use crate::ops::{Chans, LOOP_BUDGET, elementwise, flag, grid1d, nonzero, output, output_to, u};
use crate::tensor::{Handle, Tensor};

gpu_params! {
    /// Keep in sync with `struct Conv2dParams` in shaders/conv2d_common.wgsl (its header says
    /// which kernels read the fields past `accumulate`).
    pub struct Conv2dParams {
        pub n: u32, pub cin: u32, pub h: u32, pub w: u32,
        pub cout: u32, pub ho: u32, pub wo: u32, pub kh: u32,
        pub kw: u32, pub sh: u32, pub sw: u32, pub ph: u32,
        pub pw: u32, pub has_bias: u32, pub accumulate: u32, pub splits: u32,
        pub x_off: u32, pub x_total: u32, pub c_base: u32, pub mode: u32,
        pub tap_lo: u32, pub tap_hi: u32, pub row_lo: u32, pub row_hi: u32,
        pub pack_stride: u32, pub pad0: u32, pub pad1: u32, pub pad2: u32,
    }
}

const FAMILY: &str = "conv2d";

/// The family of the plain kernels: f32 operands, or f16 under half precision.
fn family(k: &Kernels) -> &'static str {
    if k.is_half() { "conv2d_h" } else { FAMILY }
}

/// The subgroup kernels' family, likewise.
fn sg_family(k: &Kernels) -> &'static str {
    if k.is_half() { "conv2d_sg_h" } else { "conv2d_sg" }
}

/// The geometry the kernels see once x is an operand: the f16 copy of a channel slice is plain.
fn half_geom(k: &Kernels, g: &ConvGeom) -> ConvGeom {
    if k.is_half() { ConvGeom { xs: Chans::PLAIN, ..*g } } else { *g }
}

/// The geometry of a convolution in conv terms: x [n,cin,h,w] * w [cout,cin,kh,kw] -> [n,cout,ho,wo].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGeom {
    pub n: usize,
    pub cin: usize,
    pub h: usize,
    pub w: usize,
    pub cout: usize,
    pub ho: usize,
    pub wo: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: (usize, usize),
    pub pad: (usize, usize),
    /// The input side's layout (x and dx in conv terms): a channel slice or plain.
    pub xs: Chans,
}

impl ConvGeom {
    fn params(&self, has_bias: bool, accumulate: bool) -> Conv2dParams {
        Conv2dParams {
            n: u(self.n),
            cin: u(self.cin),
            h: u(self.h),
            w: u(self.w),
            cout: u(self.cout),
            ho: u(self.ho),
            wo: u(self.wo),
            kh: u(self.kh),
            kw: u(self.kw),
            sh: u(self.stride.0),
            sw: u(self.stride.1),
            ph: u(self.pad.0),
            pw: u(self.pad.1),
            has_bias: flag(has_bias),
            accumulate: flag(accumulate),
            splits: 1,
            x_off: if self.xs == Chans::PLAIN { 0 } else { self.xs.off },
            x_total: if self.xs == Chans::PLAIN { u(self.cin) } else { self.xs.total },
            c_base: 0,
            mode: 0,
            tap_lo: 0,
            tap_hi: u(self.kh * self.kw),
            row_lo: 0,
            row_hi: 0,
            pack_stride: 0,
            pad0: 0,
            pad1: 0,
            pad2: 0,
        }
    }
}

fn run(ctx: &Ctx, kn: &Kernels, entry: &'static str, p: Conv2dParams, bindings: &[(u32, &View)], threads: usize) -> Result<()> {
    ctx.dispatch(Launch { family: family(kn), entry, overrides: &[], params: &p, bindings, groups: grid1d(ctx, entry, threads)? })
}

/// The blocked kernels of a forward or an input grad and the size of their grids: `items`
/// 4-pixel blocks (all images; the input grad's rows padded to whole stride phases) times `ncb`
/// 8-channel blocks.
struct Blocked {
    items: usize,
    ncb: usize,
    /// The weights' binding (2), and the pass: 0 forward, 1 input grad (the index into a
    /// blocking's entries, and the `_ubo` kernels' pack mode: blocks of output or input channels).
    wt: View,
    mode: u32,
    /// The summed channels (input channels for the forward, output channels for the input
    /// grad) and the taps: the `_ubo` kernels take at most 2048 channel x tap steps per dispatch,
    /// so up to 2048 summed channels, over as many tap ranges as that takes.
    summed: usize,
    taps: usize,
    /// Floats of the output as the `_ubo` kernels keep a tap range's raw sums ([n, C, H, W]).
    out_len: usize,
    /// The simple kernel of the same pass (one invocation per element of `out_len`): autotune's referee.
    simple: &'static str,
}

/// Floats of one packed weight block (the `_ubo` kernels' `wu`: 4096 vec4, 64 KiB).
const UBO_FLOATS: usize = 16_384;

/// Lanes the subgroup kernels broadcast from (one per channel of a block).
const SG_LANES: u32 = 8;

/// Run a blocked forward or input grad in the blocking `kn` pins (where the adapter and the
/// shape allow it, else its fallback), or in autotune's pick for this entry and shape among the
/// blockings that run here (the candidates write a scratch copy of the output, the last binding).
/// Every blocking sums in the same order: identical bits.
fn run_blocked(ctx: &Ctx, kn: &Kernels, k: &Blocked, p: Conv2dParams, bindings: &[(u32, &View)]) -> Result<()> {
    let wg = crate::gpu::WG as usize;
    // A row runs where the adapter has what it needs and, for the uniform-weight kernels, the
    // summed channels fit one 64 KiB block of 8 channels.
    let runs = |r: &ConvRow| r.needs.met(ctx.gpu()) && (r.grid != ConvGrid::UniformDispatches || k.summed * 8 <= UBO_FLOATS);
    let launch = |how: ConvBlocking, bindings: &[(u32, &View)]| -> Result<()> {
        let r = how.row();
        let entry = r.entries[k.mode as usize];
        let (family, overrides, groups): (&str, Overrides, usize) = match r.grid {
            ConvGrid::Across => (family(kn), r.overrides, (k.items * k.ncb).div_ceil(wg)),
            ConvGrid::PerChannelBlock => (family(kn), r.overrides, k.items.div_ceil(wg) * k.ncb),
            ConvGrid::Subgroup => {
                // Workgroups no larger than the items (a 4x4 layer at batch 16 has 64).
                let i = sg_wg(k.items, SG_WGS.len() - 1);
                (sg_family(kn), sized_overrides(r, i), k.items.div_ceil(SG_WGS[i] as usize) * k.ncb.div_ceil(r.channels / 8))
            }
            ConvGrid::UniformDispatches => return run_ubo(ctx, kn, k, r, p, bindings),
        };
        ctx.dispatch(Launch { family, entry, overrides, params: &p, bindings, groups: ctx.grid(entry, groups as u64, 1)? })
    };
    let how = match kn.pin.conv {
        Some(b) if runs(b.row()) => b,
        Some(b) => b.row().fallback,
        None => {
            let tiled = CONV_BLOCKINGS[0].entries[k.mode as usize];
            let Some((&(slot, out), inputs)) = bindings.split_last() else { return launch(CONV_BLOCKINGS[0].blocking, bindings) };
            // The 16-channel blockings only where a layer has two channel blocks to pair.
            let candidates: Vec<&ConvRow> = CONV_BLOCKINGS.iter().filter(|r| runs(r) && (r.channels == 8 || k.ncb > 1)).collect();
            let labels: Vec<&'static str> = candidates.iter().map(|r| r.label).collect();
            // Each candidate, and the simple kernel, on a zeroed scratch copy of the output.
            let on_scratch = |f: &dyn Fn(&[(u32, &View)]) -> Result<()>| -> Result<Vec<View>> {
                let scratch = ctx.alloc("autotune scratch", out.len())?;
                crate::ops::elementwise::fill(ctx, &scratch, 0.0)?;
                let mut b = inputs.to_vec();
                b.push((slot, &scratch));
                f(&b)?;
                Ok(vec![scratch])
            };
            let mut simple = || on_scratch(&|b| run(ctx, kn, k.simple, p, b, k.out_len));
            let pick = ctx.tuned(tiled, &shape_key(kn, &p), &labels, |i| on_scratch(&|b| launch(candidates[i].blocking, b)), Some(&mut simple))?;
            candidates[pick].blocking
        }
    };
    launch(how, bindings)
}

/// The overrides of a blocking whose workgroup size is chosen per shape (`i` indexes its
/// sizes): its fixed overrides (a test checks they are there) with the size's.
fn sized_overrides(r: &ConvRow, i: usize) -> Overrides {
    match (r.grid, r.channels) {
        (ConvGrid::Subgroup, 16) => &SG_WIDE_OVERRIDES[i],
        (ConvGrid::Subgroup, _) => &SG_OVERRIDES[i],
        (ConvGrid::UniformDispatches, 16) => &UBO_OVERRIDES_WIDE[i],
        (ConvGrid::UniformDispatches, _) => &UBO_OVERRIDES[i],
        _ => r.overrides,
    }
}

/// The `_ubo` kernels' workgroup sizes (UBO_WG), widest first, and the workgroups a dispatch
/// should have at least.
const UBO_WGS: [u32; 6] = [256, 128, 64, 32, 16, 8];
const UBO_MIN_GROUPS: usize = 16;
static UBO_OVERRIDES: [[(&str, f64); 1]; 6] =
    [[("UBO_WG", 256.0)], [("UBO_WG", 128.0)], [("UBO_WG", 64.0)], [("UBO_WG", 32.0)], [("UBO_WG", 16.0)], [("UBO_WG", 8.0)]];
static UBO_OVERRIDES_WIDE: [[(&str, f64); 2]; 6] = [
    [("UBO_CH", 16.0), ("UBO_WG", 256.0)],
    [("UBO_CH", 16.0), ("UBO_WG", 128.0)],
    [("UBO_CH", 16.0), ("UBO_WG", 64.0)],
    [("UBO_CH", 16.0), ("UBO_WG", 32.0)],
    [("UBO_CH", 16.0), ("UBO_WG", 16.0)],
    [("UBO_CH", 16.0), ("UBO_WG", 8.0)],
];

/// The `_ubo` kernel: pack the weights into 256-byte-aligned blocks of 8 channels, then one
/// dispatch per block (`wide`: per two blocks, UBO_CH = 16) with its block bound as the uniform
/// `wu` (and the next as `wv`; the 8-channel kernel binds its own block there too). A binding
/// may run past the packed data into padding (one spare block), so every binding is a whole
/// 64 KiB. Where the summed channels x taps pass 2048 this runs once per range of taps, the
/// ranges before the last keeping their raw sums in a scratch copy of the output (binding 12, `sums`).
fn run_ubo(ctx: &Ctx, kn: &Kernels, k: &Blocked, r: &ConvRow, p: Conv2dParams, bindings: &[(u32, &View)]) -> Result<()> {
    let wide = r.channels == 16;
    let per = (UBO_FLOATS / 8 / k.summed).min(k.taps);
    let ranges = k.taps.div_ceil(per);
    let per = k.taps.div_ceil(ranges);
    let scratch = ctx.alloc("conv2d partial sums (uniform blocks)", if ranges > 1 { k.out_len } else { 1 })?;
    let step = if wide { 2 } else { 1 };
    // The widest workgroup that still gives the dispatch UBO_MIN_GROUPS workgroups (a 4x4
    // layer at batch 16 has 64 items: one workgroup of 256 would leave all but one core idle).
    let wgi = UBO_WGS.iter().position(|&wg| k.items.div_ceil(wg as usize) >= UBO_MIN_GROUPS).unwrap_or(UBO_WGS.len() - 1);
    let wg = UBO_WGS[wgi];
    let overrides = sized_overrides(r, wgi);
    let entry = r.entries[k.mode as usize];
    for range in 0..ranges {
        let (lo, hi) = (range * per, ((range + 1) * per).min(k.taps));
        let stride = (k.summed * (hi - lo) * 8).div_ceil(64) * 64;
        let packed = ctx.alloc("conv2d weights (uniform blocks)", k.ncb * stride + UBO_FLOATS)?;
        let pr = Conv2dParams { tap_lo: u(lo), tap_hi: u(hi), ..p };
        run(
            ctx,
            kn,
            "conv2d_pack_weights",
            Conv2dParams { pack_stride: u(stride), mode: k.mode, ..pr },
            &[(2, &k.wt), (11, &packed)],
            k.ncb * stride,
        )?;
        let per_block = bindings.iter().filter(|(slot, _)| *slot != 2);
        for cb in (0..k.ncb).step_by(step) {
            let block = packed.slice(cb * stride, UBO_FLOATS)?;
            let next = packed.slice((cb + step - 1) * stride, UBO_FLOATS)?;
            let mut b: Vec<(u32, &View)> = per_block.clone().copied().collect();
            b.extend([(12, &scratch), (8, &block), (9, &next)]);
            let pc = Conv2dParams { c_base: u(cb * 8), ..pr };
            ctx.dispatch(Launch {
                family: family(kn),
                entry,
                overrides,
                params: &pc,
                bindings: &b,
                groups: ctx.grid(entry, k.items.div_ceil(wg as usize) as u64, 1)?,
            })?;
        }
    }
    Ok(())
}

/// A conv's shape for the autotune cache (batch, channels, sizes, kernel, stride, padding, and
/// the channel-slice total where the input side is a slice; " f16" for the half kernels).
fn shape_key(kn: &Kernels, p: &Conv2dParams) -> String {
    let slice = if p.x_total != p.cin { format!(" of {}", p.x_total) } else { String::new() };
    let half = if kn.is_half() { " f16" } else { "" };
    format!(
        "n{} {}{slice}x{}x{} -> {}x{}x{} k{}x{} s{}x{} p{}x{}{half}",
        p.n, p.cin, p.h, p.w, p.cout, p.ho, p.wo, p.kh, p.kw, p.sh, p.sw, p.ph, p.pw
    )
}

/// y [n,cout,ho,wo] (+)= conv(x, w) + b[cout].
pub fn conv2d_forward(ctx: &Ctx, kn: &Kernels, g: &ConvGeom, x: &View, w: &View, b: Option<&View>, y: &View, accumulate: bool) -> Result<()> {
    forward_of(ctx, kn, g, Operand::F32(x), w, b, y, accumulate)
}

/// `conv2d_forward` with x as an [`Operand`].
#[allow(clippy::too_many_arguments)]
fn forward_of(ctx: &Ctx, kn: &Kernels, g: &ConvGeom, x: Operand, w: &View, b: Option<&View>, y: &View, accumulate: bool) -> Result<()> {
    let half = kn.half.as_ref();
    let x = &operand(ctx, half, x, g.n, g.cin, g.h * g.w, g.xs)?;
    let w = &operand(ctx, half, Operand::F32(w), 1, g.cout * g.cin * g.kh * g.kw, 1, Chans::PLAIN)?;
    let g = &half_geom(kn, g);
    let dummy = ctx.dummy()?;
    let bias = b.unwrap_or(&dummy);
    let p = g.params(b.is_some(), accumulate);
    let bind = [(1, x), (2, w), (3, bias), (5, y)];
    if !kn.pin.simple {
        let items = g.n * g.ho * g.wo.div_ceil(4);
        let k = Blocked {
            items,
            ncb: g.cout.div_ceil(8),
            wt: w.clone(),
            mode: 0,
            summed: g.cin,
            taps: g.kh * g.kw,
            out_len: g.n * g.cout * g.ho * g.wo,
            simple: "conv2d_forward",
        };
        run_blocked(ctx, kn, &k, p, &bind)
    } else {
        run(ctx, kn, "conv2d_forward", p, &bind, g.n * g.cout * g.ho * g.wo)
    }
}

/// dx [n,cin,h,w] (+)= conv^T(dy, w) + b[cin] (the bias only for conv_transpose2d's forward).
#[allow(clippy::too_many_arguments)]
pub fn conv2d_input_grad(ctx: &Ctx, kn: &Kernels, g: &ConvGeom, w: &View, b: Option<&View>, dy: &View, dx: &View, accumulate: bool) -> Result<()> {
    input_grad_of(ctx, kn, g, w, b, Operand::F32(dy), dx, accumulate)
}

/// `conv2d_input_grad` with dy as an [`Operand`].
#[allow(clippy::too_many_arguments)]
fn input_grad_of(ctx: &Ctx, kn: &Kernels, g: &ConvGeom, w: &View, b: Option<&View>, dy: Operand, dx: &View, accumulate: bool) -> Result<()> {
    let half = kn.half.as_ref();
    let w = &operand(ctx, half, Operand::F32(w), 1, g.cout * g.cin * g.kh * g.kw, 1, Chans::PLAIN)?;
    let dy = &operand(ctx, half, dy, g.n, g.cout, g.ho * g.wo, Chans::PLAIN)?;
    let dummy = ctx.dummy()?;
    let bias = b.unwrap_or(&dummy);
    let p = g.params(b.is_some(), accumulate);
    let bind = [(2, w), (3, bias), (4, dy), (6, dx)];
    if !kn.pin.simple {
        // conv2d_common.wgsl's dx_items_per_plane: rows and 4-pixel blocks phase by phase.
        let items = g.n * g.stride.0 * g.h.div_ceil(g.stride.0) * g.stride.1 * g.w.div_ceil(g.stride.1).div_ceil(4);
        let k = Blocked {
            items,
            ncb: g.cin.div_ceil(8),
            wt: w.clone(),
            mode: 1,
            summed: g.cout,
            taps: g.kh * g.kw,
            out_len: g.n * g.cin * g.h * g.w,
            simple: "conv2d_input_grad",
        };
        run_blocked(ctx, kn, &k, p, &bind)
    } else {
        run(ctx, kn, "conv2d_input_grad", p, &bind, g.n * g.cin * g.h * g.w)
    }
}

/// Invocations the split-K weight gradient aims for: enough workgroups to fill a GPU (and both
/// of lavapipe's threads) even for layers with few weights.
const WEIGHT_GRAD_TARGET_THREADS: usize = 16_384;

/// Workgroups per grid dimension every adapter dae runs on has (gpu::device requires 65,535).
const MAX_GROUPS_PER_DIM: usize = 65_535;

/// The subgroup kernels' workgroup sizes (SG_WG), smallest first.
const SG_WGS: [u32; 6] = [8, 16, 32, 64, 128, 256];
static SG_OVERRIDES: [[(&str, f64); 1]; 6] =
    [[("SG_WG", 8.0)], [("SG_WG", 16.0)], [("SG_WG", 32.0)], [("SG_WG", 64.0)], [("SG_WG", 128.0)], [("SG_WG", 256.0)]];
static SGW4_OVERRIDES: [[(&str, f64); 2]; 4] =
    [[("SGW_CI", 4.0), ("SG_WG", 8.0)], [("SGW_CI", 4.0), ("SG_WG", 16.0)], [("SGW_CI", 4.0), ("SG_WG", 32.0)], [("SGW_CI", 4.0), ("SG_WG", 64.0)]];
static SG_WIDE_OVERRIDES: [[(&str, f64); 2]; 6] = [
    [("SG_CH", 16.0), ("SG_WG", 8.0)],
    [("SG_CH", 16.0), ("SG_WG", 16.0)],
    [("SG_CH", 16.0), ("SG_WG", 32.0)],
    [("SG_CH", 16.0), ("SG_WG", 64.0)],
    [("SG_CH", 16.0), ("SG_WG", 128.0)],
    [("SG_CH", 16.0), ("SG_WG", 256.0)],
];

/// The smallest subgroup-kernel workgroup (index into SG_WGS) that holds `lanes` invocations, at
/// most SG_WGS[max].
fn sg_wg(lanes: usize, max: usize) -> usize {
    SG_WGS[..=max].iter().position(|&w| w as usize >= lanes).unwrap_or(max)
}

/// Pixels of one 16-channel dy block the uniform binding holds (64 KiB).
const UBO_DY_PIXELS: usize = UBO_FLOATS / 16;

/// dw [cout,cin,kh,kw] (+)= sum over n, ho, wo of dy * x: split-K partials over slices of the
/// (n, oy) rows (4 x 4, 8 x 4 or 8 x 8 output x input channels of one tap per invocation, or
/// dy in uniform blocks; autotuned), then a reduce.
pub fn conv2d_weight_grad(ctx: &Ctx, kn: &Kernels, g: &ConvGeom, x: &View, dy: &View, dw: &View, accumulate: bool) -> Result<()> {
    weight_grad_of(ctx, kn, g, Operand::F32(x), Operand::F32(dy), dw, accumulate)
}

/// `conv2d_weight_grad` with x and dy as [`Operand`]s.
#[allow(clippy::too_many_arguments)]
fn weight_grad_of(ctx: &Ctx, kn: &Kernels, g: &ConvGeom, x: Operand, dy: Operand, dw: &View, accumulate: bool) -> Result<()> {
    let half = kn.half.as_ref();
    let (x, dy) = (&operand(ctx, half, x, g.n, g.cin, g.h * g.w, g.xs)?, &operand(ctx, half, dy, g.n, g.cout, g.ho * g.wo, Chans::PLAIN)?);
    let g = &half_geom(kn, g);
    // The simple kernel loops over every (n, oy, ox) for each weight.
    let simple_fits = g.n * g.ho * g.wo <= LOOP_BUDGET;
    if kn.pin.simple {
        if !simple_fits {
            return Err(crate::error::Error::Msg(format!(
                "the simple conv weight gradient (DAE_KERNELS=naive) would loop {} times per weight, past the {LOOP_BUDGET} a kernel may \
                 (lavapipe stops longer loops without an error): use the blocked kernels, a smaller batch or smaller images",
                g.n * g.ho * g.wo
            )));
        }
        return run(ctx, kn, "conv2d_weight_grad", g.params(false, accumulate), &[(1, x), (4, dy), (7, dw)], g.cout * g.cin * g.kh * g.kw);
    }
    let blocks = g.cout.div_ceil(4) * g.cin.div_ceil(4) * g.kh * g.kw;
    let rows = g.n * g.ho;
    // Enough slices to fill the GPU, and short enough that an invocation's loops (each row of
    // its slice: the row and its pixels) stay within LOOP_BUDGET iterations.
    let rows_fit = (LOOP_BUDGET / (g.wo + 1)).max(1);
    let splits = WEIGHT_GRAD_TARGET_THREADS.div_ceil(blocks).max(rows.div_ceil(rows_fit)).clamp(1, rows);
    let wsz = g.cout * g.cin * g.kh * g.kw;
    let partials = ctx.alloc("conv2d_weight_grad", splits * wsz)?;
    let p = Conv2dParams { splits: u(splits), ..g.params(false, accumulate) };
    // The slices stay those of the 4 x 4 blocking whatever runs, so all sum in the same order.
    let entry = "conv2d_weight_grad_tiled";
    let wop = g.wo.div_ceil(4) * 4;
    let uniform_dy =
        wop <= UBO_DY_PIXELS && uniform_dy_ranges(g).1 <= UNIFORM_DY_MAX_DISPATCHES && ctx.gpu().has_uniform_binding_of(4 * UBO_FLOATS as u64);
    let sg = ctx.gpu().has_subgroups_of(SG_LANES) && g.cout.div_ceil(8) * splits <= MAX_GROUPS_PER_DIM;
    // Whether a blocking runs here, at this shape (a pinned one that does not runs its fallback).
    let runs = |b: WgradBlocking| match b {
        WgradBlocking::UniformDy => uniform_dy,
        WgradBlocking::Subgroup(_) => sg,
        WgradBlocking::Split(..) => true,
    };
    let launch = |how: WgradBlocking, out: &View| -> Result<()> {
        let (co, ci) = match how {
            WgradBlocking::Split(co, ci) => (co, ci),
            WgradBlocking::UniformDy => return weight_grad_uniform_dy(ctx, kn, g, p, x, dy, out),
            WgradBlocking::Subgroup(ci) => {
                // An invocation per `ci` input channels, workgroups of at most 64.
                let nib = g.cin.div_ceil(ci);
                let wgs = sg_wg(nib, 3);
                let groups = [u(nib.div_ceil(SG_WGS[wgs] as usize)), u(g.kh * g.kw), u(g.cout.div_ceil(8) * splits)];
                let overrides: crate::gpu::Overrides = if ci == 4 { &SGW4_OVERRIDES[wgs] } else { &SG_OVERRIDES[wgs] };
                let entry = "conv2d_weight_grad_sg";
                return ctx.dispatch(Launch { family: sg_family(kn), entry, overrides, params: &p, bindings: &[(1, x), (4, dy), (10, out)], groups });
            }
        };
        let threads = splits * g.cout.div_ceil(co) * g.cin.div_ceil(ci) * g.kh * g.kw;
        let overrides: crate::gpu::Overrides = match (co, ci) {
            (8, 8) => &[("WGRAD_CO", 8.0), ("WGRAD_CI", 8.0)],
            (8, _) => &[("WGRAD_CO", 8.0)],
            _ => &[],
        };
        ctx.dispatch(Launch {
            family: family(kn),
            entry,
            overrides,
            params: &p,
            bindings: &[(1, x), (4, dy), (10, out)],
            groups: grid1d(ctx, entry, threads)?,
        })
    };
    let blocking = match kn.pin.wgrad {
        Some(b) if runs(b) => b,
        Some(b) => b.row().fallback,
        None => {
            let offered: Vec<WgradBlocking> = WGRAD_BLOCKINGS.iter().map(|r| r.blocking).filter(|&b| runs(b)).collect();
            let labels: Vec<&'static str> = offered.iter().map(|b| b.row().label).collect();
            // Each candidate with the reduce after it, and the simple kernel, into a zeroed
            // scratch dw (the candidates' partials are theirs to lay out).
            let zeroed = |len: usize| -> Result<View> {
                let v = ctx.alloc("autotune scratch", len)?;
                crate::ops::elementwise::fill(ctx, &v, 0.0)?;
                Ok(v)
            };
            let mut simple = || -> Result<Vec<View>> {
                let out = zeroed(wsz)?;
                run(ctx, kn, "conv2d_weight_grad", g.params(false, false), &[(1, x), (4, dy), (7, &out)], wsz)?;
                Ok(vec![out])
            };
            let candidate = |i: usize| -> Result<Vec<View>> {
                let (scratch, out) = (zeroed(partials.len())?, zeroed(wsz)?);
                launch(offered[i], &scratch)?;
                run(ctx, kn, "conv2d_weight_grad_reduce", Conv2dParams { accumulate: 0, ..p }, &[(10, &scratch), (7, &out)], wsz)?;
                Ok(vec![out])
            };
            // The simple kernel referees only where its loops fit (else the majority decides).
            let referee: Option<&mut dyn FnMut() -> Result<Vec<View>>> = if simple_fits { Some(&mut simple) } else { None };
            let pick = ctx.tuned(entry, &shape_key(kn, &p), &labels, candidate, referee)?;
            offered[pick]
        }
    };
    launch(blocking, &partials)?;
    run(ctx, kn, "conv2d_weight_grad_reduce", p, &[(10, &partials), (7, dw)], wsz)
}

/// At most this many dispatches for one uniform-dy weight gradient (a recorded step holds at
/// most 4096; a batch-128 layer at 28x28 would otherwise take hundreds).
const UNIFORM_DY_MAX_DISPATCHES: usize = 64;

/// The uniform-dy weight gradient's rows per dispatch (as many as a 64 KiB block of 16 channels
/// holds) and dispatches (row ranges x 16-channel blocks).
fn uniform_dy_ranges(g: &ConvGeom) -> (usize, usize) {
    let chunk = (UBO_DY_PIXELS / (g.wo.div_ceil(4) * 4)).max(1);
    (chunk, (g.n * g.ho).div_ceil(chunk) * g.cout.div_ceil(16))
}

/// The uniform-dy weight gradient's partials into `out` ([splits][cout, cin, kh, kw]): dy packed
/// into 16-channel blocks, then per block one dispatch per range of at most 1024 pixels' rows
/// (the kernel stores a slice's partial at each slice boundary and continues one a range starts
/// inside).
fn weight_grad_uniform_dy(ctx: &Ctx, kn: &Kernels, g: &ConvGeom, p: Conv2dParams, x: &View, dy: &View, out: &View) -> Result<()> {
    let rows = g.n * g.ho;
    let wop = g.wo.div_ceil(4) * 4;
    let nb = g.cout.div_ceil(16);
    let packed_len = nb * rows * wop * 16;
    let packed = ctx.alloc("conv2d dy (uniform blocks)", packed_len + UBO_FLOATS)?;
    run(ctx, kn, "conv2d_pack_dy", p, &[(4, dy), (11, &packed)], packed_len)?;
    let (chunk, _) = uniform_dy_ranges(g);
    // An invocation per 4 input channels; workgroups of at most 64 (fewer for few channels).
    let lanes = g.cin.div_ceil(4);
    let wgi = UBO_WGS.iter().position(|&wg| (wg as usize) < 2 * lanes.max(8) && wg <= 64).unwrap_or(UBO_WGS.len() - 1);
    let wg = UBO_WGS[wgi] as usize;
    let entry = "conv2d_weight_grad_ubo";
    let groups = [u(lanes.div_ceil(wg)), u(g.kh * g.kw), 1];
    for ra in (0..rows).step_by(chunk) {
        let rb = (ra + chunk).min(rows);
        for cb in 0..nb {
            let block = packed.slice((cb * rows + ra) * wop * 16, UBO_FLOATS)?;
            let pc = Conv2dParams { c_base: u(cb * 16), row_lo: u(ra), row_hi: u(rb), ..p };
            ctx.dispatch(Launch {
                family: family(kn),
                entry,
                overrides: &UBO_OVERRIDES[wgi],
                params: &pc,
                bindings: &[(1, x), (10, out), (8, &block)],
                groups,
            })?;
        }
    }
    Ok(())
}

/// What a conv's backward reads, saved by its forward: the input (conv2d's x, or the
/// transposed conv's x: its "dy" in conv terms; under half precision the f16 copy) for the
/// weight gradient, and the weights for the input gradient. The bias only receives a gradient.
pub struct Conv2dOp {
    g: ConvGeom,
    /// How the forward ran: the backward runs the same way.
    kn: Kernels,
    x: SavedInput,
    w: Tensor,
}

fn check_common(op: &'static str, x: &Tensor, w: &Tensor, stride: (usize, usize)) -> Result<([usize; 4], [usize; 4])> {
    let xs = x.nchw(op)?;
    nonzero(op, x)?;
    let ws = match w.shape() {
        [a, b, c, d] => [*a, *b, *c, *d],
        s => return Err(crate::error::Error::shape(op, format!("weight must be 4-D, got {s:?}"))),
    };
    nonzero(op, w)?;
    crate::ensure!(stride.0 > 0 && stride.1 > 0, op, "stride must be positive, got {stride:?}");
    Ok((xs, ws))
}

/// PyTorch's F.conv2d: x [n,cin,h,w], w [cout,cin,kh,kw], optional b [cout], zero padding.
pub fn conv2d(kn: &Kernels, x: &Tensor, w: &Tensor, b: Option<&Tensor>, stride: (usize, usize), pad: (usize, usize)) -> Result<(Tensor, Conv2dOp)> {
    const OP: &str = "conv2d";
    let ([n, cin, h, wd], [cout, wcin, kh, kw]) = check_common(OP, x, w, stride)?;
    crate::ensure!(wcin == cin, OP, "weight {:?} expects {wcin} input channels, input {:?} has {cin}", w.shape(), x.shape());
    crate::ensure!(
        h + 2 * pad.0 >= kh && wd + 2 * pad.1 >= kw,
        OP,
        "kernel {kh}x{kw} is larger than the padded input {}x{} (input {:?}, padding {pad:?})",
        h + 2 * pad.0,
        wd + 2 * pad.1,
        x.shape()
    );
    if let Some(b) = b {
        crate::ensure!(b.shape() == [cout], OP, "bias shape {:?} does not match {cout} output channels", b.shape());
    }
    let g = ConvGeom {
        n,
        cin,
        h,
        w: wd,
        cout,
        ho: (h + 2 * pad.0 - kh) / stride.0 + 1,
        wo: (wd + 2 * pad.1 - kw) / stride.1 + 1,
        kh,
        kw,
        stride,
        pad,
        xs: Chans::PLAIN,
    };
    let mut inputs = vec![x, w];
    inputs.extend(b);
    let y = output(OP, vec![n, cout, g.ho, g.wo], &inputs)?;
    let x_half = half_copy(x.ctx(), kn.half.as_ref(), x.view(), n, cin, h * wd, Chans::of(x))?;
    forward_of(x.ctx(), kn, &g, operand_of(&x_half, x.view()), w.view(), b.map(|b| b.view()), y.view(), false)?;
    Ok((y, Conv2dOp { g, kn: kn.clone(), x: SavedInput::of(x, x_half), w: w.clone() }))
}

/// PyTorch's F.conv_transpose2d: x [n,cin,h,w], w [cin,cout,kh,kw], optional b [cout];
/// output (h-1)*s - 2p + k + output_padding. Into `dest` (e.g. a channel slice of a concat)
/// when given; the backward reads dy in the output's layout.
#[allow(clippy::too_many_arguments)]
pub fn conv_transpose2d(
    kn: &Kernels,
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    stride: (usize, usize),
    pad: (usize, usize),
    output_pad: (usize, usize),
    dest: Option<&Tensor>,
) -> Result<(Tensor, Conv2dOp)> {
    const OP: &str = "conv_transpose2d";
    let ([n, cin, h, wd], [wcin, cout, kh, kw]) = check_common(OP, x, w, stride)?;
    crate::ensure!(wcin == cin, OP, "weight {:?} expects {wcin} input channels, input {:?} has {cin}", w.shape(), x.shape());
    crate::ensure!(
        output_pad.0 < stride.0 && output_pad.1 < stride.1,
        OP,
        "output_padding {output_pad:?} must be smaller than the stride {stride:?}"
    );
    let full_h = (h - 1) * stride.0 + kh + output_pad.0;
    let full_w = (wd - 1) * stride.1 + kw + output_pad.1;
    crate::ensure!(full_h > 2 * pad.0 && full_w > 2 * pad.1, OP, "padding {pad:?} removes the whole output ({full_h}x{full_w} before cropping)");
    if let Some(b) = b {
        crate::ensure!(b.shape() == [cout], OP, "bias shape {:?} does not match {cout} output channels", b.shape());
    }
    let (ho, wo) = (full_h - 2 * pad.0, full_w - 2 * pad.1);
    // In conv terms the transposed conv's output is the input: conv(y) would give back x's size.
    let mut inputs = vec![x, w];
    inputs.extend(b);
    let y = output_to(OP, vec![n, cout, ho, wo], &inputs, dest)?;
    let g = ConvGeom { n, cin: cout, h: ho, w: wo, cout: cin, ho: h, wo: wd, kh, kw, stride, pad, xs: Chans::of(&y) };
    let x_half = half_copy(x.ctx(), kn.half.as_ref(), x.view(), n, cin, h * wd, Chans::of(x))?;
    input_grad_of(x.ctx(), kn, &g, w.view(), b.map(|b| b.view()), operand_of(&x_half, x.view()), y.view(), false)?;
    Ok((y, Conv2dOp { g, kn: kn.clone(), x: SavedInput::of(x, x_half), w: w.clone() }))
}

/// The upstream gradient (`n` x `c` x `hw`, laid out as `chans`) as both GEMMs of a backward
/// read it: under half precision cast once for the two, when either runs.
#[allow(clippy::too_many_arguments)]
fn grad_operand(sink: &dyn Sink, kn: &Kernels, x: &[Handle], dy: &View, n: usize, c: usize, hw: usize, chans: Chans) -> Result<Option<View>> {
    if !(sink.wants(&x[0]) || sink.wants(&x[1])) {
        return Ok(None);
    }
    half_copy(sink.ctx(), kn.half.as_ref(), dy, n, c, hw, chans)
}

impl Conv2dOp {
    /// `x`: the graph's handles of the input, the weights and the bias.
    pub fn backward_conv(&self, x: &[Handle], dy: &View, sink: &mut dyn Sink) -> Result<()> {
        let g = &self.g;
        let kn = &self.kn;
        let dy_half = grad_operand(sink, kn, x, dy, g.n, g.cout, g.ho * g.wo, Chans::PLAIN)?;
        if let Some((dx, acc)) = sink.target(&x[0])? {
            input_grad_of(sink.ctx(), kn, g, self.w.view(), None, operand_of(&dy_half, dy), &dx, acc)?;
        }
        if let Some((dw, acc)) = sink.target(&x[1])? {
            weight_grad_of(sink.ctx(), kn, g, self.x.operand(), operand_of(&dy_half, dy), &dw, acc)?;
        }
        if let Some(b) = x.get(2)
            && let Some((db, acc)) = sink.target(b)?
        {
            elementwise::bias_grad(sink.ctx(), g.n, g.cout, g.ho * g.wo, dy, Chans::PLAIN, &db, acc)?;
        }
        Ok(())
    }

    /// dy lives in conv "input" space (the transposed conv's output), x in conv "output" space.
    pub fn backward_conv_transpose(&self, x: &[Handle], dy: &View, sink: &mut dyn Sink) -> Result<()> {
        let g = &self.g;
        let kn = &self.kn;
        let dy_half = grad_operand(sink, kn, x, dy, g.n, g.cin, g.h * g.w, g.xs)?;
        if let Some((dx, acc)) = sink.target(&x[0])? {
            forward_of(sink.ctx(), kn, g, operand_of(&dy_half, dy), self.w.view(), None, &dx, acc)?;
        }
        if let Some((dw, acc)) = sink.target(&x[1])? {
            weight_grad_of(sink.ctx(), kn, g, operand_of(&dy_half, dy), self.x.operand(), &dw, acc)?;
        }
        if let Some(b) = x.get(2)
            && let Some((db, acc)) = sink.target(b)?
        {
            elementwise::bias_grad(sink.ctx(), g.n, g.cin, g.h * g.w, dy, g.xs, &db, acc)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A blocking whose workgroup size is chosen per shape still gets its fixed overrides.
    #[test]
    fn sized_overrides_keep_the_tables_fixed_ones() {
        for r in &CONV_BLOCKINGS {
            for i in 0..SG_WGS.len() {
                let o = sized_overrides(r, i);
                for fixed in r.overrides {
                    assert!(o.contains(fixed), "{}: size {i} lacks {fixed:?}", r.pin);
                }
            }
        }
    }
}
