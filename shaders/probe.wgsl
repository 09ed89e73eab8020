// probe: the adapter's own ceilings, for `dae bench` to put each kernel's speed beside.
// fma_chain: 8 independent vec4 FMA chains per invocation (enough independent work to hide the
// FMA latency), `iters` steps each, one store at the end: 64 flops per step per invocation.
// copy_vec4: out = a, vec4 at a time (bandwidth: every element read once and written once).
//
// Bindings: 0 params | 1 a (vec4) | 2 out (rw, vec4)

struct ProbeParams {
    n: u32, iters: u32, _pad0: u32, _pad1: u32,
}

const WG: u32 = 256u;

@group(0) @binding(0) var<uniform> p: ProbeParams;
@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> out: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn fma_chain(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if (i >= p.n) { return; }
    let s = f32(i & 1023u) * 1e-6;
    let m = vec4<f32>(0.9999, 0.9998, 0.9997, 0.9996);
    let c = vec4<f32>(1e-4, 2e-4, 3e-4, 4e-4);
    var x0 = vec4<f32>(s);
    var x1 = vec4<f32>(s + 0.1);
    var x2 = vec4<f32>(s + 0.2);
    var x3 = vec4<f32>(s + 0.3);
    var x4 = vec4<f32>(s + 0.4);
    var x5 = vec4<f32>(s + 0.5);
    var x6 = vec4<f32>(s + 0.6);
    var x7 = vec4<f32>(s + 0.7);
    for (var k = 0u; k < p.iters; k++) {
        x0 = fma(x0, m, c);
        x1 = fma(x1, m, c);
        x2 = fma(x2, m, c);
        x3 = fma(x3, m, c);
        x4 = fma(x4, m, c);
        x5 = fma(x5, m, c);
        x6 = fma(x6, m, c);
        x7 = fma(x7, m, c);
    }
    out[i] = x0 + x1 + x2 + x3 + x4 + x5 + x6 + x7;
}

@compute @workgroup_size(WG)
fn copy_vec4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if (i >= p.n) { return; }
    out[i] = a[i];
}
