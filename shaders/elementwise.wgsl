// elementwise: add, mul, scale, bias_add and fill over flat f32 buffers (NCHW where it matters).
//
// Bindings: 0 params | 1 a | 2 b | 3 out (rw)
// Accumulate rule: backward entries write `out = (accumulate ? out : 0) + result`; forward
// entries overwrite. Tiling: one invocation per element, except the bias gradient, a two-stage
// reduction (workgroups over (channel, chunk), then one invocation per channel).

struct ElementwiseParams {
    len: u32, c: u32, hw: u32, accumulate: u32,
    alpha: f32, c_off: u32, c_total: u32, chunks: u32,
    chunk: u32, offset: u32, _pad1: u32, _pad2: u32,
}

const WG: u32 = 256u;

@group(0) @binding(0) var<uniform> p: ElementwiseParams;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

fn index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * WG;
}

fn put(i: u32, v: f32) {
    if (p.accumulate != 0u) { out[i] = out[i] + v; } else { out[i] = v; }
}

@compute @workgroup_size(WG)
fn add_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if (i >= p.len) { return; }
    out[i] = a[i] + b[i];
}

// The gradient of either addend: dy passed through (a = dy).
@compute @workgroup_size(WG)
fn add_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if (i >= p.len) { return; }
    put(i, a[i]);
}

@compute @workgroup_size(WG)
fn mul_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if (i >= p.len) { return; }
    out[i] = a[i] * b[i];
}

// d(a*b)/da = dy * b: called with a = dy and b = the other factor.
@compute @workgroup_size(WG)
fn mul_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if (i >= p.len) { return; }
    put(i, a[i] * b[i]);
}

@compute @workgroup_size(WG)
fn scale_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if (i >= p.len) { return; }
    out[i] = p.alpha * a[i];
}

@compute @workgroup_size(WG)
fn scale_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if (i >= p.len) { return; }
    put(i, p.alpha * a[i]);
}

// y = x + b[channel]; x is [n, c, hw].
@compute @workgroup_size(WG)
fn bias_add_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if (i >= p.len) { return; }
    out[i] = a[i] + b[(i / p.hw) % p.c];
}

// db[c] = sum over n, hw of dy, in two stages so a large GPU gets many workgroups:
// bias_grad_partial, one workgroup per (channel, chunk) of the channel's n*hw values, writes the
// chunk's sum to out[(c * chunks + chunk)] (a = dy, which may be channels [c_off, c_off + c) of a
// buffer with c_total channels: a channel slice; c_total = c if not); bias_grad_final, one
// invocation per channel, adds the chunks in order (a = the partial sums) into out = db.
@compute @workgroup_size(WG)
fn bias_grad_partial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(num_workgroups) nwg: vec3<u32>) {
    let gi = wid.x + wid.y * nwg.x;
    if (gi >= p.c * p.chunks) { return; }
    let ch = gi / p.chunks;
    let j0 = (gi % p.chunks) * p.chunk;
    let j1 = min(j0 + p.chunk, p.len / p.c);
    var s = 0.0;
    for (var j = j0 + lid; j < j1; j += WG) {
        let bi = j / p.hw;
        s += a[(bi * p.c_total + p.c_off + ch) * p.hw + j % p.hw];
    }
    let t = wg_sum(lid, s);
    if (lid == 0u) { out[gi] = t; }
}

@compute @workgroup_size(WG)
fn bias_grad_final(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let ch = index(gid, nwg);
    if (ch >= p.c) { return; }
    var t = 0.0;
    for (var k = 0u; k < p.chunks; k++) { t += a[ch * p.chunks + k]; }
    put(ch, t);
}

// out[offset + i] = a[i]: a value copied to a position of a log buffer.
@compute @workgroup_size(WG)
fn copy_offset(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if (i >= p.len) { return; }
    out[p.offset + i] = a[i];
}

// out = alpha everywhere (NaN poisoning in the checks, ones for a backward seed).
@compute @workgroup_size(WG)
fn fill(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if (i >= p.len) { return; }
    out[i] = p.alpha;
}
