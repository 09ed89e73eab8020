// reduce: sum / mean / sum of squares of a flat f32 buffer to one scalar, in two stages so the
// result is deterministic for any length: reduce_partial (one partial per workgroup, grid-stride
// over the input) then reduce_final (one workgroup sums the partials and scales).
// loss.wgsl writes partials in the same layout and reuses reduce_final.
//
// Bindings: 0 params | 1 x | 2 dl (the upstream scalar gradient) | 3 partials (rw) | 4 out (rw)
//           | 5 dx (rw)
// Accumulate rule: reduce_backward writes `dx = (accumulate ? dx : 0) + ...`; the forward
// stages overwrite. MODE (override): 0 sum (mean = sum with scale 1/len), 1 sum of squares.

struct ReduceParams {
    len: u32, num_partials: u32, accumulate: u32, _pad0: u32,
    scale: f32, _pad1: u32, _pad2: u32, _pad3: u32,
}

const WG: u32 = 256u;
override MODE: u32 = 0u;

@group(0) @binding(0) var<uniform> p: ReduceParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dl: array<f32>;
@group(0) @binding(3) var<storage, read_write> partials: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(WG)
fn reduce_partial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    var s = 0.0;
    for (var i = wid.x * WG + lid; i < p.len; i += p.num_partials * WG) {
        let v = x[i];
        if (MODE == 1u) { s += v * v; } else { s += v; }
    }
    let t = wg_sum(lid, s);
    if (lid == 0u) { partials[wid.x] = t; }
}

@compute @workgroup_size(WG)
fn reduce_final(@builtin(local_invocation_index) lid: u32) {
    var s = 0.0;
    for (var i = lid; i < p.num_partials; i += WG) {
        s += partials[i];
    }
    let t = wg_sum(lid, s);
    if (lid == 0u) { out[0] = p.scale * t; }
}

@compute @workgroup_size(WG)
fn reduce_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if (i >= p.len) { return; }
    var g = dl[0] * p.scale;
    if (MODE == 1u) { g *= 2.0 * x[i]; }
    if (p.accumulate != 0u) { g += dx[i]; }
    dx[i] = g;
}
