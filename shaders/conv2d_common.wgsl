// conv2d_common: the parameters, bindings and helpers shared by conv2d.wgsl and
// conv2d_subgroup.wgsl (the subgroup kernels live in their own module, which only an adapter
// with the subgroup feature compiles; naga 30 takes subgroup builtins without `enable
// subgroups`, which it does not parse yet).
//
// conv2d: direct 2-D convolution (cross-correlation, zero padding), NCHW f32 (f16 operands in the
// `_h` families), and its gradients.
// The same three kernels serve conv_transpose2d: its forward IS conv2d_input_grad, its input
// gradient IS conv2d_forward, its weight gradient is conv2d_weight_grad with x and dy swapped.
//
// Bindings: 0 params | 1 x [n,cin,h,w] | 2 wt [cout,cin,kh,kw] | 3 bias | 4 dy [n,cout,ho,wo]
//           (1, 2, 4: XT, f32 or f16; everything else f32)
//           | 5 y [n,cout,ho,wo] (rw) | 6 dx [n,cin,h,w] (rw) | 7 dw [cout,cin,kh,kw] (rw)
//           | 8 wu, 9 wv (uniform: packed 8-channel weight blocks, the `_ubo` kernels)
// Slices: the input side (x, and dx) may be channels [x_off, x_off + cin) of a buffer with
// x_total channels per image (conv_transpose2d writing its part of a UNet concat in place, and
// its backward reading that part of the gradient); x_total = cin, x_off = 0 when it is not.
// Accumulate rule: every entry writes `out = (accumulate ? out : 0) + result`; the launcher sets
// accumulate for parameter gradients and for activation gradients that already hold a term.
// Variants: the simple entries (one invocation per output element, `_naive` in the design's
// terms) and the register-blocked ones (`_tiled`, `_wgm`, `_sg`, `_ubo`; see each section); the bias is
// added by the forward (over cout) and the input grad (over cin, for conv_transpose2d).

struct Conv2dParams {
    n: u32, cin: u32, h: u32, w: u32,
    cout: u32, ho: u32, wo: u32, kh: u32,
    kw: u32, sh: u32, sw: u32, ph: u32,
    pw: u32, has_bias: u32, accumulate: u32, splits: u32,
    x_off: u32, x_total: u32, c_base: u32, mode: u32,
    tap_lo: u32, tap_hi: u32, row_lo: u32, row_hi: u32,
    pack_stride: u32, pad0: u32, pad1: u32, pad2: u32,
}
// splits: the split-K weight gradient's row slices. tap_lo, tap_hi: the taps a uniform-weight
// dispatch sums (and conv2d_pack_weights packs). row_lo, row_hi: the rows (n, oy) a uniform-dy
// weight-gradient dispatch sums. c_base: the first channel of a uniform dispatch's block.
// mode: what conv2d_pack_weights packs (0 forward, 1 input grad). pack_stride: floats per packed
// block of conv2d_pack_weights.

// The buffer plane of channel `ci` of image `b` on the input side.
fn xplane(b: u32, ci: u32) -> u32 {
    return b * p.x_total + p.x_off + ci;
}

const WG: u32 = 256u;

@group(0) @binding(0) var<uniform> p: Conv2dParams;
@group(0) @binding(1) var<storage, read> x: array<XT>;
@group(0) @binding(2) var<storage, read> wt: array<XT>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read> dy: array<XT>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;
@group(0) @binding(6) var<storage, read_write> dx: array<f32>;
@group(0) @binding(7) var<storage, read_write> dw: array<f32>;
// The weight gradient's split-K partials, [split][cout, cin, kh, kw] (conv2d_weight_grad_reduce
// sums them into dw).
@group(0) @binding(10) var<storage, read_write> partials: array<f32>;
// What the pack kernels write: weight or dy blocks, bound as uniforms (8, 9) by the next kernel.
@group(0) @binding(11) var<storage, read_write> packed: array<f32>;
// A uniform-weight kernel's raw sums of a tap range that does not end the taps, laid out as its
// dense output, for the next range to start from.
@group(0) @binding(12) var<storage, read_write> sums: array<f32>;
// The GEMM operands x, wt and dy are read through these, as f32: XT (declared by the module's
// head, gpu/shaders.rs) is f32, or f16 for the half-precision families (`train.amp`), whose
// operands are packed f16 copies (amp.wgsl's amp_cast_f16). A product of two f16 values is exact
// in f32, so a half family computes the f32 kernel's sums, in the same order, of f16-rounded
// operands: f16 operands, f32 accumulation and output.
fn lx(i: u32) -> f32 { return f32(x[i]); }
fn lwt(i: u32) -> f32 { return f32(wt[i]); }
fn ldy(i: u32) -> f32 { return f32(dy[i]); }

// One 8-channel block of packed weights (conv2d_pack_weights), 64 KiB: the `_ubo` kernels read
// their weights from a uniform buffer, whose loads a CPU driver does once per workgroup step
// where a storage load is done per invocation.
@group(0) @binding(8) var<uniform> wu: array<vec4<f32>, 4096>;
// The next 8-channel block, for the 16-channel `_ubo` kernels (UBO_CH = 16); the 8-channel ones
// bind `wu`'s block here too.
@group(0) @binding(9) var<uniform> wv: array<vec4<f32>, 4096>;


// The blocked forward kernels' write: an 8-channel x 4-pixel block (channels co0 .., row oy,
// pixels ox0 .. ox0 + 3), bias and accumulate rule applied, out-of-range channels and pixels
// skipped. Unrolled with constant indices: a CPU driver keeps an array indexed by a loop
// counter in memory and reads each element lane by lane.
fn store_y(acc: array<vec4<f32>, 8>, b: u32, co0: u32, oy: u32, ox0: u32) {
    store_y4(acc[0], b, co0, oy, ox0);
    store_y4(acc[1], b, co0 + 1u, oy, ox0);
    store_y4(acc[2], b, co0 + 2u, oy, ox0);
    store_y4(acc[3], b, co0 + 3u, oy, ox0);
    store_y4(acc[4], b, co0 + 4u, oy, ox0);
    store_y4(acc[5], b, co0 + 5u, oy, ox0);
    store_y4(acc[6], b, co0 + 6u, oy, ox0);
    store_y4(acc[7], b, co0 + 7u, oy, ox0);
}

// One channel's 4 pixels of store_y.
fn store_y4(v: vec4<f32>, b: u32, co: u32, oy: u32, ox0: u32) {
    if (co >= p.cout || ox0 >= p.wo) { return; }
    var bv = 0.0;
    if (p.has_bias != 0u) { bv = bias[co]; }
    let t = v + vec4<f32>(bv);
    let i = ((b * p.cout + co) * p.ho + oy) * p.wo + ox0;
    let n = p.wo - ox0;
    put_y(i, t.x);
    if (n > 1u) { put_y(i + 1u, t.y); }
    if (n > 2u) { put_y(i + 2u, t.z); }
    if (n > 3u) { put_y(i + 3u, t.w); }
}

fn put_y(i: u32, v: f32) {
    var u = v;
    if (p.accumulate != 0u) { u += y[i]; }
    y[i] = u;
}

// The blocked input-grad kernels' items: each computes 4 pixels one stride apart (ix0, ix0 + sw,
// ..) of one row, so every tap feeds all four or none. Items are numbered stride phase by stride
// phase over the whole batch: (row phase, column phase) outermost, then image, row within the
// phase, 4-pixel block. Consecutive items (the lanes of a SIMD vector or subgroup) then share
// both phases and skip the same taps (with a stride-2, 4x4 kernel 12 of the 16; numbered image
// by image and row by row, the lanes mixed the phases and all ran every tap). A phase has
// ceil(h / sh) rows, so a plane has sh * ceil(h / sh) rows; items whose row iy passes h compute
// nothing. Returns (image, iy, ix0).
fn dx_item(it: u32) -> vec3<u32> {
    let rpp = dx_phase().x;
    let bpp = dx_phase().y;
    let per_phase = p.n * rpp * bpp;
    let ph = it / per_phase;
    let r = it % per_phase;
    return vec3<u32>(r / (rpp * bpp), ph / p.sw + ((r / bpp) % rpp) * p.sh, ph % p.sw + (r % bpp) * 4u * p.sw);
}

// Rows per row phase and 4-pixel blocks per column phase.
fn dx_phase() -> vec2<u32> {
    return vec2<u32>((p.h + p.sh - 1u) / p.sh, ((p.w + p.sw - 1u) / p.sw + 3u) / 4u);
}

fn dx_items_per_plane() -> u32 {
    return p.sh * dx_phase().x * p.sw * dx_phase().y;
}

// The blocked input-grad kernels' write: 8 channels (ci0 ..) x 4 pixels one stride apart
// (ix0, ix0 + sw, ..) of row iy, unrolled as store_y.
fn store_dx(acc: array<vec4<f32>, 8>, b: u32, ci0: u32, iy: u32, ix0: u32) {
    store_dx4(acc[0], b, ci0, iy, ix0);
    store_dx4(acc[1], b, ci0 + 1u, iy, ix0);
    store_dx4(acc[2], b, ci0 + 2u, iy, ix0);
    store_dx4(acc[3], b, ci0 + 3u, iy, ix0);
    store_dx4(acc[4], b, ci0 + 4u, iy, ix0);
    store_dx4(acc[5], b, ci0 + 5u, iy, ix0);
    store_dx4(acc[6], b, ci0 + 6u, iy, ix0);
    store_dx4(acc[7], b, ci0 + 7u, iy, ix0);
}

// One channel's 4 pixels of store_dx.
fn store_dx4(v: vec4<f32>, b: u32, ci: u32, iy: u32, ix0: u32) {
    if (ci >= p.cin || ix0 >= p.w) { return; }
    var bv = 0.0;
    if (p.has_bias != 0u) { bv = bias[ci]; }
    let t = v + vec4<f32>(bv);
    let i = (xplane(b, ci) * p.h + iy) * p.w + ix0;
    let s = p.sw;
    put_dx(i, t.x);
    if (ix0 + s < p.w) { put_dx(i + s, t.y); }
    if (ix0 + 2u * s < p.w) { put_dx(i + 2u * s, t.z); }
    if (ix0 + 3u * s < p.w) { put_dx(i + 3u * s, t.w); }
}

fn put_dx(i: u32, v: f32) {
    var u = v;
    if (p.accumulate != 0u) { u += dx[i]; }
    dx[i] = u;
}

// The partial weights (co, ci0 .. ci0 + 3) of the tap at `at0`: partials[at0 + (co * cin + ci) * kk],
// channels past the ends skipped.
fn put_w4(at0: u32, co: u32, ci0: u32, v: vec4<f32>) {
    if (co >= p.cout || ci0 >= p.cin) { return; }
    let kk = p.kh * p.kw;
    let i = at0 + (co * p.cin + ci0) * kk;
    partials[i] = v.x;
    if (ci0 + 1u < p.cin) { partials[i + kk] = v.y; }
    if (ci0 + 2u < p.cin) { partials[i + 2u * kk] = v.z; }
    if (ci0 + 3u < p.cin) { partials[i + 3u * kk] = v.w; }
}

// Partial weights acc[c] of (co0 + c, ci0 .. ci0 + 3) at `at0`, c = 0 .. 7 (constant indices).
fn store_w8(at0: u32, co0: u32, ci0: u32, acc: array<vec4<f32>, 8>) {
    put_w4(at0, co0, ci0, acc[0]);
    put_w4(at0, co0 + 1u, ci0, acc[1]);
    put_w4(at0, co0 + 2u, ci0, acc[2]);
    put_w4(at0, co0 + 3u, ci0, acc[3]);
    put_w4(at0, co0 + 4u, ci0, acc[4]);
    put_w4(at0, co0 + 5u, ci0, acc[5]);
    put_w4(at0, co0 + 6u, ci0, acc[6]);
    put_w4(at0, co0 + 7u, ci0, acc[7]);
}

// The weight gradients' output columns [x, y) whose input column ox * sw + kx - pw lies inside
// [0, w), for tap column kx.
fn wgrad_cols(kx: u32) -> vec2<u32> {
    let lo = i32(p.pw) - i32(kx);
    let hi = i32(p.w) - 1 + i32(p.pw) - i32(kx);
    return vec2<u32>(select(0u, u32((lo + i32(p.sw) - 1) / i32(p.sw)), lo > 0), select(0u, min(p.wo, u32(hi / i32(p.sw)) + 1u), hi >= 0));
}

// Row r = (image, oy) of a weight gradient at tap row ky: (1 if its input row lies inside the
// image, else 0; the input row's offset in x at channel 0; dy's offset of (image, channel 0, oy)).
fn wgrad_row(r: u32, ky: u32) -> vec3<u32> {
    let b = r / p.ho;
    let oy = r % p.ho;
    let iy = i32(oy * p.sh + ky) - i32(p.ph);
    let ok = iy >= 0 && iy < i32(p.h);
    return vec3<u32>(select(0u, 1u, ok), xplane(b, 0u) * p.h * p.w + u32(max(iy, 0)) * p.w, b * p.cout * p.ho * p.wo + oy * p.wo);
}
