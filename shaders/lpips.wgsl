// lpips: the two LPIPS stages around its backbone (the `lpips` package, v0.1).
// - lpips_input: the scaling layer on images resized to the backbone's input: from x (one or
//   three channels; one is repeated to three) v = x * in_scale + in_shift (the image in
//   [-1, 1]), out[n, c] = (v - shift[c]) / scale[c].
// - lpips_distance: one workgroup per image: at each pixel both feature vectors are divided by
//   their channel norm (+1e-10), the squared difference is weighted by the linear head w[c]
//   and summed over channels; the spatial mean is written (or added, when accumulating over
//   the taps) to out[offset + n].
//
// Bindings: 0 params | 1 x | 2 f0 | 3 f1 | 4 head | 5 y (rw) | 6 out (rw)
// Accumulate rule: lpips_input writes (=); lpips_distance writes or adds (accumulate flag).

struct LpipsParams {
    n: u32, ch: u32, h: u32, w: u32,
    offset: u32, accumulate: u32, in_ch: u32, _pad0: u32,
    in_scale: f32, in_shift: f32, eps: f32, _pad1: f32,
    shift: vec4<f32>,
    scale: vec4<f32>,
}

const WG: u32 = 256u;

@group(0) @binding(0) var<uniform> p: LpipsParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> f0: array<f32>;
@group(0) @binding(3) var<storage, read> f1: array<f32>;
@group(0) @binding(4) var<storage, read> head: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;
@group(0) @binding(6) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn lpips_input(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    let plane = p.h * p.w;
    if (i >= p.n * 3u * plane) { return; }
    let px = i % plane;
    let c = (i / plane) % 3u;
    let img = i / (3u * plane);
    let src = (img * p.in_ch + min(c, p.in_ch - 1u)) * plane + px;
    let v = x[src] * p.in_scale + p.in_shift;
    y[i] = (v - p.shift[c]) / p.scale[c];
}

@compute @workgroup_size(WG)
fn lpips_distance(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(num_workgroups) nwg: vec3<u32>) {
    let img = wid.x + wid.y * nwg.x;
    if (img >= p.n) { return; }
    let plane = p.h * p.w;
    let base = img * p.ch * plane;
    var s = 0.0;
    for (var px = lid; px < plane; px += WG) {
        var n0 = 0.0;
        var n1 = 0.0;
        for (var c = 0u; c < p.ch; c++) {
            let a = f0[base + c * plane + px];
            let b = f1[base + c * plane + px];
            n0 += a * a;
            n1 += b * b;
        }
        let i0 = 1.0 / (sqrt(n0) + p.eps);
        let i1 = 1.0 / (sqrt(n1) + p.eps);
        var d = 0.0;
        for (var c = 0u; c < p.ch; c++) {
            let e = f0[base + c * plane + px] * i0 - f1[base + c * plane + px] * i1;
            d += head[c] * e * e;
        }
        s += d;
    }
    let t = wg_sum(lid, s);
    if (lid == 0u) {
        var v = t / f32(plane);
        if (p.accumulate != 0u) { v += out[p.offset + img]; }
        out[p.offset + img] = v;
    }
}
