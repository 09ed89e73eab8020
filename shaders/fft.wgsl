// fft: the exact 2-D discrete Fourier transform of a batch of real images at their own size
// (any H, W up to 256: no zero-padding, so spectra match numpy.fft.fft2), then magnitude with
// fftshift, the radial profile and the batch mean of log(1 + magnitude).
// - fft_rows / fft_cols: one workgroup per line (a row of the real input, then a column of the
//   complex rows' output, in place). Stockham autosort in workgroup memory, mixed radix: the
//   line length n is split into the factors in p.factors (4, 2, 3, 5, 7, then any prime), and a
//   stage of radix R with ns = product of the earlier factors computes every output o directly:
//     k = o % ns, q = (o / ns) % R, j = (o / (ns R)) ns + k,
//     y[o] = sum_r x[j + r n/R] w^(r (k n/(ns R) + q n/R)),   w = exp(-2 pi i / n),
//   which is the twiddle and the R-point DFT of that butterfly in one sum. Twiddles come from
//   a table (computed in f64 on the host): tw[tw_off + e] = w^e.
// - fft_magnitude: mag[b, y, x] = |X[b, (y + ceil(H/2)) % H, (x + ceil(W/2)) % W]| (fftshift:
//   the zero frequency at (H/2, W/2)).
// - fft_radial: prof[offset + b, k] = mean of mag[b] over the pixels whose distance to (H/2, W/2) lies in
//   [k, k + 1) (unit-width bins, k^2 <= d^2 < (k+1)^2 in integers; 0 for an empty bin).
// - fft_mean_log: acc[y, x] (+)= scale * sum over b of log(1 + mag[b, y, x]).
//
// Bindings: 0 params | 1 x (real) | 2 tw | 3 mag (read) | 4 spec (rw) | 5 out (rw)
// Accumulate rule: fft_mean_log adds when p.accumulate; the others write (=).

struct FftParams {
    lines: u32, n: u32, per_plane: u32, plane_len: u32,
    inner_stride: u32, elem_stride: u32, n_factors: u32, tw_off: u32,
    batch: u32, h: u32, w: u32, bins: u32,
    accumulate: u32, offset: u32, _pad1: u32, scale: f32,
    factors: array<vec4<u32>, 2>,
}

const WG: u32 = 64u;
const MAXN: u32 = 256u;

@group(0) @binding(0) var<uniform> p: FftParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> tw: array<vec2<f32>>;
@group(0) @binding(3) var<storage, read> mag: array<f32>;
@group(0) @binding(4) var<storage, read_write> spec: array<vec2<f32>>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

var<workgroup> buf: array<vec2<f32>, 512>;

fn cmul(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
    return vec2<f32>(a.x * b.x - a.y * b.y, a.x * b.y + a.y * b.x);
}

fn factor(s: u32) -> u32 {
    return p.factors[s / 4u][s % 4u];
}

// The Stockham stages over buf[0..n); returns the half (0 or MAXN) that holds the result.
fn stages(lid: u32) -> u32 {
    let n = p.n;
    var src = 0u;
    var ns = 1u;
    for (var s = 0u; s < p.n_factors; s++) {
        let r_ = factor(s);
        let m = n / r_;
        let l = n / (ns * r_);
        let dst = MAXN - src;
        for (var o = lid; o < n; o += WG) {
            let k = o % ns;
            let q = (o / ns) % r_;
            let j = (o / (ns * r_)) * ns + k;
            let step = (k * l + q * m) % n;
            var e = 0u;
            var acc = vec2<f32>(0.0);
            for (var r = 0u; r < r_; r++) {
                acc += cmul(buf[src + j + r * m], tw[p.tw_off + e]);
                e = (e + step) % n;
            }
            buf[dst + o] = acc;
        }
        workgroupBarrier();
        src = dst;
        ns *= r_;
    }
    return src;
}

fn line_base(l: u32) -> u32 {
    return (l / p.per_plane) * p.plane_len + (l % p.per_plane) * p.inner_stride;
}

@compute @workgroup_size(WG)
fn fft_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(num_workgroups) nwg: vec3<u32>) {
    let l = wid.x + wid.y * nwg.x;
    if (l >= p.lines) { return; }
    let base = line_base(l);
    for (var e = lid; e < p.n; e += WG) { buf[e] = vec2<f32>(x[base + e * p.elem_stride], 0.0); }
    workgroupBarrier();
    let src = stages(lid);
    for (var e = lid; e < p.n; e += WG) { spec[base + e * p.elem_stride] = buf[src + e]; }
}

@compute @workgroup_size(WG)
fn fft_cols(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(num_workgroups) nwg: vec3<u32>) {
    let l = wid.x + wid.y * nwg.x;
    if (l >= p.lines) { return; }
    let base = line_base(l);
    for (var e = lid; e < p.n; e += WG) { buf[e] = spec[base + e * p.elem_stride]; }
    workgroupBarrier();
    let src = stages(lid);
    for (var e = lid; e < p.n; e += WG) { spec[base + e * p.elem_stride] = buf[src + e]; }
}

@compute @workgroup_size(WG)
fn fft_magnitude(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    let plane = p.h * p.w;
    if (i >= p.batch * plane) { return; }
    let b = i / plane;
    let y = (i % plane) / p.w;
    let xx = i % p.w;
    let sy = (y + p.h - p.h / 2u) % p.h;
    let sx = (xx + p.w - p.w / 2u) % p.w;
    out[i] = length(spec[b * plane + sy * p.w + sx]);
}

@compute @workgroup_size(WG)
fn fft_radial(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if (i >= p.batch * p.bins) { return; }
    let b = i / p.bins;
    let k = i % p.bins;
    let cy = i32(p.h / 2u);
    let cx = i32(p.w / 2u);
    var s = 0.0;
    var c = 0.0;
    for (var y = 0u; y < p.h; y++) {
        for (var xx = 0u; xx < p.w; xx++) {
            // Squared distances compared in integers: a bin edge is never misjudged by sqrt.
            let dy = i32(y) - cy;
            let dx = i32(xx) - cx;
            let d2 = u32(dy * dy + dx * dx);
            if (d2 >= k * k && d2 < (k + 1u) * (k + 1u)) {
                s += mag[(b * p.h + y) * p.w + xx];
                c += 1.0;
            }
        }
    }
    out[p.offset * p.bins + i] = select(0.0, s / max(c, 1.0), c > 0.0);
}

@compute @workgroup_size(WG)
fn fft_mean_log(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    let plane = p.h * p.w;
    if (i >= plane) { return; }
    var s = 0.0;
    for (var b = 0u; b < p.batch; b++) { s += log(1.0 + mag[b * plane + i]); }
    var v = p.scale * s;
    if (p.accumulate != 0u) { v += out[i]; }
    out[i] = v;
}
