// resize_bilinear: bilinear resize of NCHW f32 to any (ho, wo), matching PyTorch's
// F.interpolate(mode="bilinear") for both align_corners settings. The scales come from the
// launcher, computed in f32 as PyTorch does: align_corners ? (in-1)/(out-1) : in/out.
// The backward gathers: each input pixel scans the output rows/columns whose taps can reach it
// (a window found by inverting the source-coordinate map) and sums dy * tap weight.
//
// Bindings: 0 params | 1 x [planes,h,w] | 2 dy [planes,ho,wo] | 3 y (rw) | 4 dx (rw)
// Slices (slice.wgsl): y and dy may be a channel slice (s_c, s_off, s_total).
// Accumulate rule: resize_bilinear_backward writes `dx = (accumulate ? dx : 0) + grad`.

struct ResizeBilinearParams {
    planes: u32, h: u32, w: u32, ho: u32,
    wo: u32, align_corners: u32, accumulate: u32, s_c: u32,
    scale_h: f32, scale_w: f32, s_off: u32, s_total: u32,
}

const WG: u32 = 256u;

@group(0) @binding(0) var<uniform> p: ResizeBilinearParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;

struct Taps {
    i0: u32,
    i1: u32,
    l0: f32,
    l1: f32,
}

fn taps(dst: u32, scale: f32, len_in: u32) -> Taps {
    var src: f32;
    if (p.align_corners != 0u) {
        src = scale * f32(dst);
    } else {
        src = max(scale * (f32(dst) + 0.5) - 0.5, 0.0);
    }
    let i0 = min(u32(floor(src)), len_in - 1u);
    let i1 = min(i0 + 1u, len_in - 1u);
    let l1 = src - f32(i0);
    return Taps(i0, i1, 1.0 - l1, l1);
}

// Weight with which output coordinate `dst` reads input coordinate `src_i` along one axis.
fn weight_of(t: Taps, src_i: u32) -> f32 {
    return select(0.0, t.l0, t.i0 == src_i) + select(0.0, t.l1, t.i1 == src_i);
}

// The output coordinates whose taps may include input coordinate `i` (a superset; callers
// check the exact weight). Inverts src = scale*(dst + 0.5) - 0.5 (or scale*dst).
fn window(i: u32, scale: f32, len_out: u32) -> vec2<u32> {
    if (scale <= 0.0) { return vec2<u32>(0u, len_out - 1u); }
    var lo: f32;
    var hi: f32;
    if (p.align_corners != 0u) {
        lo = (f32(i) - 1.0) / scale;
        hi = (f32(i) + 1.0) / scale;
    } else {
        lo = (f32(i) - 0.5) / scale - 0.5;
        hi = (f32(i) + 1.5) / scale - 0.5;
    }
    let a = u32(max(floor(lo) - 1.0, 0.0));
    let b = u32(clamp(ceil(hi) + 1.0, 0.0, f32(len_out - 1u)));
    return vec2<u32>(a, b);
}

@compute @workgroup_size(WG)
fn resize_bilinear_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if (i >= p.planes * p.ho * p.wo) { return; }
    let ox = i % p.wo;
    let oy = (i / p.wo) % p.ho;
    let pl = i / (p.wo * p.ho);
    let ty = taps(oy, p.scale_h, p.h);
    let tx = taps(ox, p.scale_w, p.w);
    let base = pl * p.h * p.w;
    let r0 = base + ty.i0 * p.w;
    let r1 = base + ty.i1 * p.w;
    y[slice_plane(Slice(p.s_c, p.s_off, p.s_total, 0u), pl) * p.ho * p.wo + oy * p.wo + ox] = ty.l0 * (tx.l0 * x[r0 + tx.i0] + tx.l1 * x[r0 + tx.i1])
         + ty.l1 * (tx.l0 * x[r1 + tx.i0] + tx.l1 * x[r1 + tx.i1]);
}

@compute @workgroup_size(WG)
fn resize_bilinear_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if (i >= p.planes * p.h * p.w) { return; }
    let ix = i % p.w;
    let iy = (i / p.w) % p.h;
    let pl = i / (p.w * p.h);
    let dpl = slice_plane(Slice(p.s_c, p.s_off, p.s_total, 0u), pl);
    let wy = window(iy, p.scale_h, p.ho);
    let wx = window(ix, p.scale_w, p.wo);
    var g = 0.0;
    for (var oy = wy.x; oy <= wy.y; oy++) {
        let a = weight_of(taps(oy, p.scale_h, p.h), iy);
        if (a == 0.0) { continue; }
        for (var ox = wx.x; ox <= wx.y; ox++) {
            let b = weight_of(taps(ox, p.scale_w, p.w), ix);
            g += a * b * dy[(dpl * p.ho + oy) * p.wo + ox];
        }
    }
    if (p.accumulate != 0u) { g += dx[i]; }
    dx[i] = g;
}
