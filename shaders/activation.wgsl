// activation: relu, leaky_relu(slope), gelu (erf or tanh form), silu, sigmoid and their
// derivatives. ACT (override): 0 relu, 1 leaky_relu, 2 gelu (erf), 3 gelu (tanh), 4 silu,
// 5 sigmoid, so every function is its own cached pipeline with no branch at run time.
//
// Bindings: 0 params | 1 x | 2 dy | 3 y (rw) | 4 dx (rw)
// Accumulate rule: activation_backward writes `dx = (accumulate ? dx : 0) + dy * f'(x)`.
// Tiling: one invocation per element.

struct ActivationParams {
    len: u32, accumulate: u32, slope: f32, _pad0: u32,
}

const WG: u32 = 256u;
override ACT: u32 = 0u;

@group(0) @binding(0) var<uniform> p: ActivationParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;

const SQRT_1_2: f32 = 0.7071067811865476;
const INV_SQRT_2PI: f32 = 0.3989422804014327;
const SQRT_2_PI: f32 = 0.7978845608028654;

// Abramowitz & Stegun 7.1.26: |error| < 1.5e-7, below f32 resolution of gelu's output.
fn erf_approx(v: f32) -> f32 {
    let a = abs(v);
    let t = 1.0 / (1.0 + 0.3275911 * a);
    let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    return sign(v) * (1.0 - poly * exp(-a * a));
}

fn sigmoid(v: f32) -> f32 {
    return 1.0 / (1.0 + exp(-v));
}

fn tanh_safe(v: f32) -> f32 {
    // tanh saturates to +-1 in f32 well before 10; clamping keeps exp-based lowerings finite.
    return tanh(clamp(v, -10.0, 10.0));
}

fn f(v: f32) -> f32 {
    switch ACT {
        case 1u: { return select(p.slope * v, v, v > 0.0); }
        case 2u: { return 0.5 * v * (1.0 + erf_approx(v * SQRT_1_2)); }
        case 3u: { return 0.5 * v * (1.0 + tanh_safe(SQRT_2_PI * (v + 0.044715 * v * v * v))); }
        case 4u: { return v * sigmoid(v); }
        case 5u: { return sigmoid(v); }
        default: { return max(v, 0.0); }
    }
}

fn df(v: f32) -> f32 {
    switch ACT {
        case 1u: { return select(p.slope, 1.0, v > 0.0); }
        case 2u: { return 0.5 * (1.0 + erf_approx(v * SQRT_1_2)) + v * INV_SQRT_2PI * exp(-0.5 * v * v); }
        case 3u: {
            let u = SQRT_2_PI * (v + 0.044715 * v * v * v);
            let t = tanh_safe(u);
            return 0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * SQRT_2_PI * (1.0 + 3.0 * 0.044715 * v * v);
        }
        case 4u: { let s = sigmoid(v); return s * (1.0 + v * (1.0 - s)); }
        case 5u: { let s = sigmoid(v); return s * (1.0 - s); }
        default: { return select(0.0, 1.0, v > 0.0); }
    }
}

@compute @workgroup_size(WG)
fn activation_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if (i >= p.len) { return; }
    y[i] = f(x[i]);
}

@compute @workgroup_size(WG)
fn activation_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if (i >= p.len) { return; }
    var g = dy[i] * df(x[i]);
    if (p.accumulate != 0u) { g += dx[i]; }
    dx[i] = g;
}
