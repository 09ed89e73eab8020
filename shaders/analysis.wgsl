// analysis: per-image statistics behind the limitations analysis.
// - analysis_image_stats: one workgroup per image (h x w, one channel): over the interior pixels
//   (1 <= y < h-1, 1 <= x < w-1, the region where both stencils are whole):
//   stats[2 (offset + i)]     = RMS of the 4-neighbour Laplacian x[y-1,x] + x[y+1,x] + x[y,x-1]
//                               + x[y,x+1] - 4 x[y,x] (high-frequency energy),
//   stats[2 (offset + i) + 1] = mean gradient magnitude from central differences
//                               sqrt(((x[y,x+1] - x[y,x-1]) / 2)^2 + ((x[y+1,x] - x[y-1,x]) / 2)^2).
// - analysis_nearest: one workgroup per query image: the smallest squared L2 distance from the
//   query (f32, `len` pixels) to the images idx[0..count) of the packed u8 dataset (pixel / 255),
//   dist[q] = sqrt(min) (with min_with, the smaller of that and dist[q]: the launcher searches a
//   long list in chunks, each invocation's loops staying within ops::LOOP_BUDGET iterations). The
//   query sits in workgroup memory; each invocation scans every WG-th candidate.
//
// Bindings: 0 params | 1 x | 2 dataset (u32 words) | 3 idx | 4 stats (rw) | 5 dist (rw)
// Accumulate rule: none (every output slot is written once per dispatch; under min_with the
// nearest search keeps the smaller of its result and what the slot holds).

struct AnalysisParams {
    n: u32, h: u32, w: u32, offset: u32,
    count: u32, len: u32, min_with: u32, _pad1: u32,
}

const WG: u32 = 256u;
const MAX_LEN: u32 = 2048u;

@group(0) @binding(0) var<uniform> p: AnalysisParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dataset: array<u32>;
@group(0) @binding(3) var<storage, read> idx: array<u32>;
@group(0) @binding(4) var<storage, read_write> stats: array<f32>;
@group(0) @binding(5) var<storage, read_write> dist: array<f32>;

var<workgroup> query: array<f32, MAX_LEN>;
var<workgroup> best: array<f32, WG>;

@compute @workgroup_size(WG)
fn analysis_image_stats(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(num_workgroups) nwg: vec3<u32>) {
    let img = wid.x + wid.y * nwg.x;
    if (img >= p.n) { return; }
    let iw = p.w - 2u;
    let inner = (p.h - 2u) * iw;
    let base = img * p.h * p.w;
    var lap = 0.0;
    var grad = 0.0;
    for (var i = lid; i < inner; i += WG) {
        let y = 1u + i / iw;
        let xx = 1u + i % iw;
        let c = base + y * p.w + xx;
        let l = x[c - p.w] + x[c + p.w] + x[c - 1u] + x[c + 1u] - 4.0 * x[c];
        lap += l * l;
        let gx = 0.5 * (x[c + 1u] - x[c - 1u]);
        let gy = 0.5 * (x[c + p.w] - x[c - p.w]);
        grad += sqrt(gx * gx + gy * gy);
    }
    let s = wg_sum2(lid, vec2<f32>(lap, grad));
    if (lid == 0u) {
        stats[2u * (p.offset + img)] = sqrt(s.x / f32(inner));
        stats[2u * (p.offset + img) + 1u] = s.y / f32(inner);
    }
}

@compute @workgroup_size(WG)
fn analysis_nearest(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(num_workgroups) nwg: vec3<u32>) {
    let q = wid.x + wid.y * nwg.x;
    if (q >= p.n) { return; }
    for (var i = lid; i < p.len; i += WG) { query[i] = x[q * p.len + i]; }
    workgroupBarrier();
    var m = 3.4e38;
    for (var t = lid; t < p.count; t += WG) {
        let start = idx[t] * p.len;
        var d = 0.0;
        for (var i = 0u; i < p.len; i++) {
            let byte = start + i;
            let v = f32((dataset[byte / 4u] >> (8u * (byte % 4u))) & 0xffu) / 255.0;
            let e = v - query[i];
            d += e * e;
        }
        m = min(m, d);
    }
    best[lid] = m;
    workgroupBarrier();
    if (lid == 0u) {
        var b = best[0];
        for (var k = 1u; k < WG; k++) { b = min(b, best[k]); }
        var r = sqrt(b);
        if (p.min_with != 0u) { r = min(r, dist[p.offset + q]); }
        dist[p.offset + q] = r;
    }
}
