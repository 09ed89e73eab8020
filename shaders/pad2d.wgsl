// pad2d: zero padding of NCHW f32 by (left, right, top, bottom) >= 0; the backward is the crop.
//
// Bindings: 0 params | 1 x [planes,h,w] | 2 dy [planes,ho,wo] | 3 y (rw) | 4 dx (rw)
// Slices (slice.wgsl): y and dy may be a channel slice (s_c, s_off, s_total).
// Accumulate rule: pad2d_backward writes `dx = (accumulate ? dx : 0) + dy[crop]`.

struct Pad2dParams {
    planes: u32, h: u32, w: u32, ho: u32,
    wo: u32, left: u32, top: u32, accumulate: u32,
    s_c: u32, s_off: u32, s_total: u32, _pad0: u32,
}

const WG: u32 = 256u;

@group(0) @binding(0) var<uniform> p: Pad2dParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(WG)
fn pad2d_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if (i >= p.planes * p.ho * p.wo) { return; }
    let ox = i % p.wo;
    let oy = (i / p.wo) % p.ho;
    let pl = i / (p.wo * p.ho);
    var v = 0.0;
    if (oy >= p.top && oy < p.top + p.h && ox >= p.left && ox < p.left + p.w) {
        v = x[(pl * p.h + oy - p.top) * p.w + ox - p.left];
    }
    y[slice_plane(Slice(p.s_c, p.s_off, p.s_total, 0u), pl) * p.ho * p.wo + oy * p.wo + ox] = v;
}

@compute @workgroup_size(WG)
fn pad2d_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if (i >= p.planes * p.h * p.w) { return; }
    let ix = i % p.w;
    let iy = (i / p.w) % p.h;
    let pl = i / (p.w * p.h);
    var g = dy[(slice_plane(Slice(p.s_c, p.s_off, p.s_total, 0u), pl) * p.ho + iy + p.top) * p.wo + ix + p.left];
    if (p.accumulate != 0u) { g += dx[i]; }
    dx[i] = g;
}
