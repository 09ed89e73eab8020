// data: make a training batch on the GPU. data_gather picks the epoch's shuffled images out of
// the dataset, kept on the GPU as packed u8 (4 pixels per u32), and writes clean pixels in
// [0, 1]. data_noise draws each sample's noise level and each pixel's noise from Philox keyed by
// (seed, epoch, step), so runs are reproducible and no noise crosses the bus; it writes the
// network input `noisy * in_scale + in_shift` (normalisation applies to the input only).
// Needs philox.wgsl before it.
//
// Noise (p.noise): 0 gaussian x + s*z, 1 salt-and-pepper (prob `amount`, half 0 half 1),
// 2 poisson Poisson(x*peak)/peak, 3 speckle x + x*s*z; then clip to [clip_lo, clip_hi] if set.
// The level s of sample b: levels[floor(u * n_levels)] or level_lo + u*(level_hi - level_lo)
// (use_range), times level_scale (the curriculum). In data_noise, `start` is the index of the
// batch's first image in a larger set (0 in training): the counters use the image's index in
// that set, so evaluation noise does not depend on how the set is cut into batches.
//
// Bindings: 0 params | 1 dataset (u32 words) | 2 perm (u32) | 3 clean | 4 out (rw) | 5 gathered (rw)
// Accumulate rule: none (both entries overwrite). Tiling: one invocation per pixel.

struct DataParams {
    len: u32, image_len: u32, start: u32, noise: u32,
    seed_lo: u32, seed_hi: u32, epoch: u32, step: u32,
    n_levels: u32, use_range: u32, has_clip: u32, _pad0: u32,
    level_lo: f32, level_hi: f32, level_scale: f32, amount: f32,
    peak: f32, clip_lo: f32, clip_hi: f32, in_scale: f32,
    in_shift: f32, _pad1: u32, _pad2: u32, _pad3: u32,
    levels: array<vec4<f32>, 4>,
}

const WG: u32 = 256u;
// The largest f32 not above pi (0x40490FDA; the f32 nearest pi, 0x40490FDB, is above it). For
// |v| <= 1 the product PI_BELOW * v rounds (up or down) to at most PI_BELOW in magnitude, so
// cos's argument stays inside [-pi, pi], the only interval on which WGSL states cos's accuracy
// (WGSL "Accuracy of Concrete Floating Point Expressions": absolute error at most 2^-11 there,
// undefined outside). src/check/noise.rs derives the check bounds from that table.
const PI_BELOW: f32 = 3.1415925;
// sqrt's accuracy is inherited from 1.0 / inverseSqrt(x), which is infinite at 0; and log(1.0)
// may be off by 2^-21 either way, so -2 log(1 - u1) can come out 0 or slightly negative.
const T_MIN: f32 = 1e-30;

@group(0) @binding(0) var<uniform> p: DataParams;
@group(0) @binding(1) var<storage, read> dataset: array<u32>;
@group(0) @binding(2) var<storage, read> perm: array<u32>;
@group(0) @binding(3) var<storage, read> clean: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read_write> gathered: array<f32>;

@compute @workgroup_size(WG)
fn data_gather(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if (i >= p.len) { return; }
    let img = perm[p.start + i / p.image_len];
    let byte = img * p.image_len + i % p.image_len;
    let v = (dataset[byte / 4u] >> (8u * (byte % 4u))) & 0xffu;
    gathered[i] = f32(v) / 255.0;
}

fn rng(i: u32, tag: u32) -> vec4<u32> {
    return philox4x32_10(vec4<u32>(i, p.step, p.epoch, tag), vec2<u32>(p.seed_lo, p.seed_hi));
}

fn level(b: u32) -> f32 {
    let r = rng(b, 0u).x;
    let u = philox_uniform(r);
    var s: f32;
    if (p.use_range != 0u) {
        s = p.level_lo + u * (p.level_hi - p.level_lo);
    } else {
        // floor(u * n_levels) in integers: exact for any count (u is 24 bits over 2^24; an f32
        // product could round up onto the next level for counts that are not powers of two).
        let k = min(((r >> 8u) * p.n_levels) >> 24u, p.n_levels - 1u);
        s = p.levels[k / 4u][k % 4u];
    }
    return s * p.level_scale;
}

// Box-Muller: z = sqrt(-2 ln(1 - u1)) * cos(2 pi u2), computed as -rad * cos(pi * (2 u2 - 1))
// (cos(a - pi) = -cos(a): the same value and distribution) so that cos's argument lies in
// [-pi, pi]. 1 - u1 and 2 u2 - 1 are exact (u1, u2 are multiples of 2^-24 in [0, 1)).
fn normal(r: vec4<u32>) -> f32 {
    let u1 = philox_uniform(r.x);
    let u2 = philox_uniform(r.y);
    let rad = sqrt(max(-2.0 * log(1.0 - u1), T_MIN));
    return -(rad * cos(PI_BELOW * (2.0 * u2 - 1.0)));
}

// Knuth's method below lambda 30 (bounded: at most 256 uniforms), a rounded normal above.
fn poisson(i: u32, lambda: f32) -> f32 {
    if (lambda >= 30.0) {
        return max(0.0, round(lambda + sqrt(lambda) * normal(rng(i, 1u))));
    }
    let limit = exp(-lambda);
    var prod = 1.0;
    var k = 0.0;
    for (var j = 0u; j < 64u; j++) {
        let r = rng(i, 2u + j);
        for (var c = 0u; c < 4u; c++) {
            prod *= philox_uniform(r[c]);
            if (prod <= limit) { return k; }
            k += 1.0;
        }
    }
    return k;
}

@compute @workgroup_size(WG)
fn data_noise(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if (i >= p.len) { return; }
    let x = clean[i];
    let k = i + p.start * p.image_len;
    var y = x;
    switch p.noise {
        case 1u: {
            let r = rng(k, 1u);
            if (philox_uniform(r.x) < p.amount) {
                y = select(1.0, 0.0, philox_uniform(r.y) < 0.5);
            }
        }
        case 2u: { y = poisson(k, max(x, 0.0) * p.peak) / p.peak; }
        case 3u: { y = x + x * level(k / p.image_len) * normal(rng(k, 1u)); }
        default: { y = x + level(k / p.image_len) * normal(rng(k, 1u)); }
    }
    if (p.has_clip != 0u) { y = clamp(y, p.clip_lo, p.clip_hi); }
    out[i] = y * p.in_scale + p.in_shift;
}
