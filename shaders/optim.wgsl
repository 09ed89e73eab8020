// optim: one fused optimiser step over the whole flat parameter arena, and the EMA update.
// The global gradient-norm clip (torch.nn.utils.clip_grad_norm_: coef = min(1, max_norm /
// (norm + 1e-6))) is applied inside, from norm_sq = sum of squared gradients (reduce.wgsl).
// MODE (override): 0 AdamW (decoupled decay, as torch.optim.AdamW), 1 Adam (L2 decay added to
// the gradient), 2 SGD with momentum (torch's: buf = momentum * buf + g, first buf = g).
//
// Bindings: 0 params | 1 norm_sq [1] | 2 param (rw) | 3 grad (rw) | 4 m (rw) | 5 v (rw)
//           | 6 ema (rw) | 7 st: the loss scaler's state (amp.wgsl), read when `amp` is set:
//           a skipped step leaves the weights, the moments and the EMA alone (and still zeroes
//           the gradient); an applied one divides the gradient by the step's loss scale and
//           takes Adam's bias corrections from the scaler's applied-step count.
// Accumulate rule: the step consumes the gradient and writes it back to 0, so the next backward
// accumulates (+=) into a clean arena. Tiling: one invocation per element.

struct OptimParams {
    len: u32, has_clip: u32, amp: u32, _pad1: u32,
    lr: f32, beta1: f32, beta2: f32, eps: f32,
    weight_decay: f32, bias_c1: f32, bias_c2_sqrt: f32, momentum: f32,
    max_norm: f32, ema_decay: f32, _pad2: u32, _pad3: u32,
}

const WG: u32 = 256u;
override MODE: u32 = 0u;

@group(0) @binding(0) var<uniform> p: OptimParams;
@group(0) @binding(1) var<storage, read> norm_sq: array<f32>;
@group(0) @binding(2) var<storage, read_write> param: array<f32>;
@group(0) @binding(3) var<storage, read_write> grad: array<f32>;
@group(0) @binding(4) var<storage, read_write> m: array<f32>;
@group(0) @binding(5) var<storage, read_write> v: array<f32>;
@group(0) @binding(6) var<storage, read_write> ema: array<f32>;
@group(0) @binding(7) var<storage, read> st: array<f32>;

@compute @workgroup_size(WG)
fn optim_step(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if (i >= p.len) { return; }
    var bias_c1 = p.bias_c1;
    var bias_c2_sqrt = p.bias_c2_sqrt;
    var scale = 1.0;
    if (p.amp != 0u) {
        if (st[5] != 0.0) {
            grad[i] = 0.0;
            return;
        }
        bias_c1 = st[6];
        bias_c2_sqrt = st[7];
    }
    if (p.has_clip != 0u) {
        scale = min(1.0, p.max_norm / (sqrt(norm_sq[0]) + 1e-6));
    }
    if (p.amp != 0u) {
        scale *= st[1];
    }
    var g = grad[i] * scale;
    grad[i] = 0.0;
    var w = param[i];
    if (MODE == 2u) {
        g += p.weight_decay * w;
        let buf = p.momentum * m[i] + g;
        m[i] = buf;
        param[i] = w - p.lr * buf;
        return;
    }
    if (MODE == 0u) {
        w *= 1.0 - p.lr * p.weight_decay;
    } else {
        g += p.weight_decay * w;
    }
    let mi = p.beta1 * m[i] + (1.0 - p.beta1) * g;
    let vi = p.beta2 * v[i] + (1.0 - p.beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    param[i] = w - (p.lr / bias_c1) * mi / (sqrt(vi) / bias_c2_sqrt + p.eps);
}

@compute @workgroup_size(WG)
fn ema_update(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if (i >= p.len || (p.amp != 0u && st[5] != 0.0)) { return; }
    ema[i] = p.ema_decay * ema[i] + (1.0 - p.ema_decay) * param[i];
}
