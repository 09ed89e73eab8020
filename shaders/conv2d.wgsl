// conv2d: direct 2-D convolution (cross-correlation, zero padding), NCHW f32, and its gradients.
// The same three kernels serve conv_transpose2d: its forward IS conv2d_input_grad, its input
// gradient IS conv2d_forward, its weight gradient is conv2d_weight_grad with x and dy swapped.
//
// Bindings: 0 params | 1 x [n,cin,h,w] | 2 wt [cout,cin,kh,kw] | 3 bias | 4 dy [n,cout,ho,wo]
//           | 5 y [n,cout,ho,wo] (rw) | 6 dx [n,cin,h,w] (rw) | 7 dw [cout,cin,kh,kw] (rw)
// Accumulate rule: every entry writes `out = (accumulate ? out : 0) + result`; the launcher sets
// accumulate for parameter gradients and for activation gradients that already hold a term.
// Tiling: none (one invocation per output element, `_naive` in the design's terms); the bias is
// added by conv2d_forward (over cout) and conv2d_input_grad (over cin, for conv_transpose2d).

struct Conv2dParams {
    n: u32, cin: u32, h: u32, w: u32,
    cout: u32, ho: u32, wo: u32, kh: u32,
    kw: u32, sh: u32, sw: u32, ph: u32,
    pw: u32, has_bias: u32, accumulate: u32, _pad0: u32,
}

const WG: u32 = 256u;

@group(0) @binding(0) var<uniform> p: Conv2dParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> wt: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read> dy: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;
@group(0) @binding(6) var<storage, read_write> dx: array<f32>;
@group(0) @binding(7) var<storage, read_write> dw: array<f32>;

@compute @workgroup_size(WG)
fn conv2d_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if (i >= p.n * p.cout * p.ho * p.wo) { return; }
    let ox = i % p.wo;
    let oy = (i / p.wo) % p.ho;
    let co = (i / (p.wo * p.ho)) % p.cout;
    let b = i / (p.wo * p.ho * p.cout);
    var acc = 0.0;
    for (var ci = 0u; ci < p.cin; ci++) {
        let xbase = (b * p.cin + ci) * p.h;
        let wbase = (co * p.cin + ci) * p.kh;
        for (var ky = 0u; ky < p.kh; ky++) {
            let iy = i32(oy * p.sh + ky) - i32(p.ph);
            if (iy < 0 || iy >= i32(p.h)) { continue; }
            for (var kx = 0u; kx < p.kw; kx++) {
                let ix = i32(ox * p.sw + kx) - i32(p.pw);
                if (ix < 0 || ix >= i32(p.w)) { continue; }
                acc += x[(xbase + u32(iy)) * p.w + u32(ix)] * wt[(wbase + ky) * p.kw + kx];
            }
        }
    }
    if (p.has_bias != 0u) { acc += bias[co]; }
    if (p.accumulate != 0u) { acc += y[i]; }
    y[i] = acc;
}

@compute @workgroup_size(WG)
fn conv2d_input_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if (i >= p.n * p.cin * p.h * p.w) { return; }
    let ix = i % p.w;
    let iy = (i / p.w) % p.h;
    let ci = (i / (p.w * p.h)) % p.cin;
    let b = i / (p.w * p.h * p.cin);
    var acc = 0.0;
    for (var ky = 0u; ky < p.kh; ky++) {
        // oy * sh + ky - ph == iy  <=>  oy = (iy + ph - ky) / sh, exactly divisible
        let ty = i32(iy + p.ph) - i32(ky);
        if (ty < 0 || (u32(ty) % p.sh) != 0u) { continue; }
        let oy = u32(ty) / p.sh;
        if (oy >= p.ho) { continue; }
        for (var kx = 0u; kx < p.kw; kx++) {
            let tx = i32(ix + p.pw) - i32(kx);
            if (tx < 0 || (u32(tx) % p.sw) != 0u) { continue; }
            let ox = u32(tx) / p.sw;
            if (ox >= p.wo) { continue; }
            for (var co = 0u; co < p.cout; co++) {
                acc += dy[((b * p.cout + co) * p.ho + oy) * p.wo + ox] * wt[((co * p.cin + ci) * p.kh + ky) * p.kw + kx];
            }
        }
    }
    if (p.has_bias != 0u) { acc += bias[ci]; }
    if (p.accumulate != 0u) { acc += dx[i]; }
    dx[i] = acc;
}

@compute @workgroup_size(WG)
fn conv2d_weight_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if (i >= p.cout * p.cin * p.kh * p.kw) { return; }
    let kx = i % p.kw;
    let ky = (i / p.kw) % p.kh;
    let ci = (i / (p.kw * p.kh)) % p.cin;
    let co = i / (p.kw * p.kh * p.cin);
    var acc = 0.0;
    for (var b = 0u; b < p.n; b++) {
        for (var oy = 0u; oy < p.ho; oy++) {
            let iy = i32(oy * p.sh + ky) - i32(p.ph);
            if (iy < 0 || iy >= i32(p.h)) { continue; }
            let xrow = ((b * p.cin + ci) * p.h + u32(iy)) * p.w;
            let dyrow = ((b * p.cout + co) * p.ho + oy) * p.wo;
            for (var ox = 0u; ox < p.wo; ox++) {
                let ix = i32(ox * p.sw + kx) - i32(p.pw);
                if (ix < 0 || ix >= i32(p.w)) { continue; }
                acc += dy[dyrow + ox] * x[xrow + u32(ix)];
            }
        }
    }
    if (p.accumulate != 0u) { acc += dw[i]; }
    dw[i] = acc;
}
