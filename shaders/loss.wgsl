// loss: mean-reduced regression losses between pred and tgt, and their gradient.
// LOSS (override): 0 mse (d^2), 1 l1 (|d|), 2 charbonnier (sqrt(d^2 + eps^2)), d = pred - tgt.
// loss_partial writes one partial sum per workgroup (the reduce.wgsl layout); reduce_final then
// sums them with scale 1/len. loss_backward: dout = sign * dl * f'(d) / len, sign = +1 for the
// prediction and -1 for the tgt.
//
// Bindings: 0 params | 1 pred | 2 tgt | 3 dl (upstream scalar) | 4 partials (rw) | 5 dout (rw)
// Accumulate rule: loss_backward writes `dout = (accumulate ? dout : 0) + ...`.

struct LossParams {
    len: u32, num_partials: u32, accumulate: u32, _pad0: u32,
    eps: f32, inv_len: f32, sign: f32, _pad1: u32,
}

const WG: u32 = 256u;
override LOSS: u32 = 0u;

@group(0) @binding(0) var<uniform> p: LossParams;
@group(0) @binding(1) var<storage, read> pred: array<f32>;
@group(0) @binding(2) var<storage, read> tgt: array<f32>;
@group(0) @binding(3) var<storage, read> dl: array<f32>;
@group(0) @binding(4) var<storage, read_write> partials: array<f32>;
@group(0) @binding(5) var<storage, read_write> dout: array<f32>;

fn value(d: f32) -> f32 {
    if (LOSS == 1u) { return abs(d); }
    if (LOSS == 2u) { return sqrt(d * d + p.eps * p.eps); }
    return d * d;
}

fn slope(d: f32) -> f32 {
    if (LOSS == 1u) { return sign(d); }
    if (LOSS == 2u) { return d / sqrt(d * d + p.eps * p.eps); }
    return 2.0 * d;
}

@compute @workgroup_size(WG)
fn loss_partial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    var s = 0.0;
    for (var i = wid.x * WG + lid; i < p.len; i += p.num_partials * WG) {
        s += value(pred[i] - tgt[i]);
    }
    let t = wg_sum(lid, s);
    if (lid == 0u) { partials[wid.x] = t; }
}

@compute @workgroup_size(WG)
fn loss_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if (i >= p.len) { return; }
    var g = p.sign * dl[0] * p.inv_len * slope(pred[i] - tgt[i]);
    if (p.accumulate != 0u) { g += dout[i]; }
    dout[i] = g;
}
