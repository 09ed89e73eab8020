// concat: channel concatenation of NCHW f32 tensors. concat_forward copies one part into its
// channel slice of the output (the launcher dispatches once per part); concat_backward copies
// the slice of dy back out (the split).
//
// Bindings: 0 params | 1 x (a part) [n,c_part,hw] | 2 dy [n,c_total,hw] | 3 y (rw) | 4 dx (rw)
// Accumulate rule: concat_backward writes `dx = (accumulate ? dx : 0) + dy[slice]`.

struct ConcatParams {
    n: u32, hw: u32, c_part: u32, c_total: u32,
    c_offset: u32, accumulate: u32, _pad0: u32, _pad1: u32,
}

const WG: u32 = 256u;

@group(0) @binding(0) var<uniform> p: ConcatParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;

fn slice_index(i: u32) -> u32 {
    let s = i % p.hw;
    let c = (i / p.hw) % p.c_part;
    let b = i / (p.hw * p.c_part);
    return (b * p.c_total + p.c_offset + c) * p.hw + s;
}

@compute @workgroup_size(WG)
fn concat_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if (i >= p.n * p.c_part * p.hw) { return; }
    y[slice_index(i)] = x[i];
}

@compute @workgroup_size(WG)
fn concat_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if (i >= p.n * p.c_part * p.hw) { return; }
    var g = dy[slice_index(i)];
    if (p.accumulate != 0u) { g += dx[i]; }
    dx[i] = g;
}
