// dropout2d: Dropout2d (training only): one keep/drop draw per (n, c) channel from Philox
// (counter = (n*c index, stream lo, stream hi, DROPOUT_TAG), key = seed; the tag keeps these
// counters apart from data.wgsl's noise, whose last word is 0..65), kept channels scaled by
// 1/(1-p). Nothing is stored: the backward redraws the same mask. Needs philox.wgsl before it.
//
// Bindings: 0 params | 1 x (or dy) [n,c,hw] | 2 y (rw) (or dx)
// Accumulate rule: dropout2d_backward writes `dx = (accumulate ? dx : 0) + dy * mask`.

struct Dropout2dParams {
    len: u32, hw: u32, accumulate: u32, _pad0: u32,
    prob: f32, scale: f32, seed_lo: u32, seed_hi: u32,
    stream_lo: u32, stream_hi: u32, layer: u32, _pad2: u32,
}

const WG: u32 = 256u;
const DROPOUT_TAG: u32 = 0x44524F50u;

@group(0) @binding(0) var<uniform> p: Dropout2dParams;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

fn mask(channel: u32) -> f32 {
    let r = philox4x32_10(vec4<u32>(channel, p.stream_lo, p.stream_hi, DROPOUT_TAG), vec2<u32>(p.seed_lo, p.seed_hi));
    return select(0.0, p.scale, philox_uniform(r.x) >= p.prob);
}

@compute @workgroup_size(WG)
fn dropout2d_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if (i >= p.len) { return; }
    dst[i] = src[i] * mask(i / p.hw);
}

@compute @workgroup_size(WG)
fn dropout2d_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if (i >= p.len) { return; }
    var g = src[i] * mask(i / p.hw);
    if (p.accumulate != 0u) { g += dst[i]; }
    dst[i] = g;
}
