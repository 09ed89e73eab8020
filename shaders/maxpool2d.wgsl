// maxpool2d: max pooling without padding, floor mode, NCHW f32. The forward keeps the argmax
// (flat index iy*w+ix inside the input plane; the first maximum in row-major window order wins,
// as PyTorch). The backward gathers: each input element sums dy over the windows that chose it,
// so there are no atomics and overlapping windows (stride < kernel) work too.
//
// Bindings: 0 params | 1 x [planes,h,w] | 2 dy [planes,ho,wo] | 3 idx [planes,ho,wo] (rw, u32)
//           | 4 y (rw) | 5 dx (rw)
// Slices (slice.wgsl): x and dx may be a channel slice (s_c, s_off, s_total).
// Accumulate rule: maxpool2d_backward writes `dx = (accumulate ? dx : 0) + grad`.

struct MaxPool2dParams {
    planes: u32, h: u32, w: u32, ho: u32,
    wo: u32, kh: u32, kw: u32, sh: u32,
    sw: u32, accumulate: u32, s_c: u32, s_off: u32,
    s_total: u32, _pad0: u32, _pad1: u32, _pad2: u32,
}

const WG: u32 = 256u;

@group(0) @binding(0) var<uniform> p: MaxPool2dParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> idx: array<u32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(WG)
fn maxpool2d_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if (i >= p.planes * p.ho * p.wo) { return; }
    let ox = i % p.wo;
    let oy = (i / p.wo) % p.ho;
    let pl = i / (p.wo * p.ho);
    let base = slice_plane(Slice(p.s_c, p.s_off, p.s_total, 0u), pl) * p.h * p.w;
    var best_i = (oy * p.sh) * p.w + ox * p.sw;
    var best = x[base + best_i];
    for (var ky = 0u; ky < p.kh; ky++) {
        for (var kx = 0u; kx < p.kw; kx++) {
            let k = (oy * p.sh + ky) * p.w + ox * p.sw + kx;
            let v = x[base + k];
            if (v > best) {
                best = v;
                best_i = k;
            }
        }
    }
    y[i] = best;
    idx[i] = best_i;
}

@compute @workgroup_size(WG)
fn maxpool2d_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if (i >= p.planes * p.h * p.w) { return; }
    let k = i % (p.h * p.w);
    let ix = k % p.w;
    let iy = k / p.w;
    let pl = i / (p.h * p.w);
    // Windows oy with oy*sh <= iy < oy*sh + kh, clipped to the output.
    let oy_lo = select(0u, (iy + 1u - p.kh + p.sh - 1u) / p.sh, iy + 1u >= p.kh);
    let oy_hi = min(iy / p.sh, p.ho - 1u);
    let ox_lo = select(0u, (ix + 1u - p.kw + p.sw - 1u) / p.sw, ix + 1u >= p.kw);
    let ox_hi = min(ix / p.sw, p.wo - 1u);
    var g = 0.0;
    for (var oy = oy_lo; oy <= oy_hi; oy++) {
        for (var ox = ox_lo; ox <= ox_hi; ox++) {
            let o = (pl * p.ho + oy) * p.wo + ox;
            if (idx[o] == k) { g += dy[o]; }
        }
    }
    let di = slice_plane(Slice(p.s_c, p.s_off, p.s_total, 0u), pl) * p.h * p.w + k;
    if (p.accumulate != 0u) { g += dx[di]; }
    dx[di] = g;
}
