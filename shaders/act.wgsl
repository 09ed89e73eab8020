// act: the activations, for the kernels that apply one: activation.wgsl, and the norms, which
// fuse theirs so it costs no dispatch of its own. ACT is an override each family declares:
// 0 relu, 1 leaky_relu(slope), 2 gelu (erf), 3 gelu (tanh), 4 silu, 5 sigmoid, 6 none; every
// function is its own cached pipeline.

const ACT_SQRT_1_2: f32 = 0.7071067811865476;
const ACT_INV_SQRT_2PI: f32 = 0.3989422804014327;
const ACT_SQRT_2_PI: f32 = 0.7978845608028654;

// Abramowitz & Stegun 7.1.26: |error| < 1.5e-7, below f32 resolution of gelu's output.
fn act_erf(v: f32) -> f32 {
    let a = abs(v);
    let t = 1.0 / (1.0 + 0.3275911 * a);
    let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    return sign(v) * (1.0 - poly * exp(-a * a));
}

fn act_sigmoid(v: f32) -> f32 {
    return 1.0 / (1.0 + exp(-v));
}

fn act_tanh(v: f32) -> f32 {
    // tanh saturates to +-1 in f32 well before 10; clamping keeps exp-based lowerings finite.
    return tanh(clamp(v, -10.0, 10.0));
}

fn act_f(v: f32, slope: f32) -> f32 {
    switch ACT {
        case 0u: { return max(v, 0.0); }
        case 1u: { return select(slope * v, v, v > 0.0); }
        case 2u: { return 0.5 * v * (1.0 + act_erf(v * ACT_SQRT_1_2)); }
        case 3u: { return 0.5 * v * (1.0 + act_tanh(ACT_SQRT_2_PI * (v + 0.044715 * v * v * v))); }
        case 4u: { return v * act_sigmoid(v); }
        case 5u: { return act_sigmoid(v); }
        default: { return v; }
    }
}

fn act_df(v: f32, slope: f32) -> f32 {
    switch ACT {
        case 0u: { return select(0.0, 1.0, v > 0.0); }
        case 1u: { return select(slope, 1.0, v > 0.0); }
        case 2u: { return 0.5 * (1.0 + act_erf(v * ACT_SQRT_1_2)) + v * ACT_INV_SQRT_2PI * exp(-0.5 * v * v); }
        case 3u: {
            let u = ACT_SQRT_2_PI * (v + 0.044715 * v * v * v);
            let t = act_tanh(u);
            return 0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * ACT_SQRT_2_PI * (1.0 + 3.0 * 0.044715 * v * v);
        }
        case 4u: { let s = act_sigmoid(v); return s * (1.0 + v * (1.0 - s)); }
        case 5u: { let s = act_sigmoid(v); return s * (1.0 - s); }
        default: { return 1.0; }
    }
}
