// activation: relu, leaky_relu(slope), gelu (erf or tanh form), silu, sigmoid and their
// derivatives (the functions are act.wgsl's, which the shader table puts before this file).
// ACT (override): 0 relu, 1 leaky_relu, 2 gelu (erf), 3 gelu (tanh), 4 silu, 5 sigmoid.
//
// Bindings: 0 params | 1 x | 2 dy | 3 y (rw) | 4 dx (rw)
// Slices (slice.wgsl): y and dy may be a channel slice (s_c, s_off, s_total; planes of hw).
// Accumulate rule: activation_backward writes `dx = (accumulate ? dx : 0) + dy * f'(x)`.
// Tiling: one invocation per element.

struct ActivationParams {
    len: u32, accumulate: u32, slope: f32, hw: u32,
    s_c: u32, s_off: u32, s_total: u32, _pad0: u32,
}

const WG: u32 = 256u;
override ACT: u32 = 0u;

@group(0) @binding(0) var<uniform> p: ActivationParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(WG)
fn activation_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if (i >= p.len) { return; }
    y[slice_at(Slice(p.s_c, p.s_off, p.s_total, 0u), i, p.hw)] = act_f(x[i], p.slope);
}

@compute @workgroup_size(WG)
fn activation_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if (i >= p.len) { return; }
    var g = dy[slice_at(Slice(p.s_c, p.s_off, p.s_total, 0u), i, p.hw)] * act_df(x[i], p.slope);
    if (p.accumulate != 0u) { g += dx[i]; }
    dx[i] = g;
}
