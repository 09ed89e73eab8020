// batch_norm: BatchNorm2d over NCHW. Training normalises with the batch statistics of each
// channel over (n, hw) (biased variance) and updates the running statistics in place with the
// unbiased variance, as PyTorch; evaluation normalises with the running statistics.
// One workgroup per channel for the training entries, one invocation per element for eval.
// The activation that follows it in a block is fused (ACT, act.wgsl; 6 = none): the forwards
// write act(pre), pre = xhat * gamma + beta; the backward recomputes pre and scales dy by
// act'(pre) first.
//
// Bindings: 0 params | 1 x | 2 gamma | 3 beta | 4 dy | 5 stats [c*2] (rw: mean, rstd)
//           | 6 running_mean (rw) | 7 running_var (rw) | 8 y (rw) | 9 dx (rw) | 10 dgamma (rw)
//           | 11 dbeta (rw)
// Slices (slice.wgsl): y and dy may be a channel slice (s_c, s_off, s_total).
// Accumulate rule: batch_norm_backward writes `out = (accumulate ? out : 0) + grad` for dx, and
// always accumulates into dgamma/dbeta when param_accumulate is set.

struct BatchNormParams {
    n: u32, c: u32, hw: u32, accumulate: u32,
    eps: f32, momentum: f32, write_dx: u32, write_dparams: u32,
    param_accumulate: u32, slope: f32, s_c: u32, s_off: u32,
    s_total: u32, _pad0: u32, _pad1: u32, _pad2: u32,
}

fn ys(i: u32) -> u32 {
    return slice_at(Slice(p.s_c, p.s_off, p.s_total, 0u), i, p.hw);
}

const WG: u32 = 256u;
override ACT: u32 = 6u;

@group(0) @binding(0) var<uniform> p: BatchNormParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> gamma: array<f32>;
@group(0) @binding(3) var<storage, read> beta: array<f32>;
@group(0) @binding(4) var<storage, read> dy: array<f32>;
@group(0) @binding(5) var<storage, read_write> stats: array<f32>;
@group(0) @binding(6) var<storage, read_write> running_mean: array<f32>;
@group(0) @binding(7) var<storage, read_write> running_var: array<f32>;
@group(0) @binding(8) var<storage, read_write> y: array<f32>;
@group(0) @binding(9) var<storage, read_write> dx: array<f32>;
@group(0) @binding(10) var<storage, read_write> dgamma: array<f32>;
@group(0) @binding(11) var<storage, read_write> dbeta: array<f32>;

fn at(ch: u32, j: u32) -> u32 {
    return ((j / p.hw) * p.c + ch) * p.hw + j % p.hw;
}

@compute @workgroup_size(WG)
fn batch_norm_forward_train(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(num_workgroups) nwg: vec3<u32>) {
    let ch = wid.x + wid.y * nwg.x;
    if (ch >= p.c) { return; }
    let count = p.n * p.hw;
    let inv = 1.0 / f32(count);
    var s = 0.0;
    for (var j = lid; j < count; j += WG) { s += x[at(ch, j)]; }
    let mean = wg_sum(lid, s) * inv;
    var s2 = 0.0;
    for (var j = lid; j < count; j += WG) { let d = x[at(ch, j)] - mean; s2 += d * d; }
    let var_b = wg_sum(lid, s2) * inv;
    let rstd = inverseSqrt(var_b + p.eps);
    if (lid == 0u) {
        stats[2u * ch] = mean;
        stats[2u * ch + 1u] = rstd;
        let unbiased = var_b * f32(count) / f32(count - 1u);
        running_mean[ch] = (1.0 - p.momentum) * running_mean[ch] + p.momentum * mean;
        running_var[ch] = (1.0 - p.momentum) * running_var[ch] + p.momentum * unbiased;
    }
    let gm = gamma[ch];
    let bt = beta[ch];
    for (var j = lid; j < count; j += WG) {
        let idx = at(ch, j);
        y[ys(idx)] = act_f((x[idx] - mean) * rstd * gm + bt, p.slope);
    }
}

@compute @workgroup_size(WG)
fn batch_norm_forward_eval(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if (i >= p.n * p.c * p.hw) { return; }
    let ch = (i / p.hw) % p.c;
    y[ys(i)] = act_f((x[i] - running_mean[ch]) * inverseSqrt(running_var[ch] + p.eps) * gamma[ch] + beta[ch], p.slope);
}

// Training-mode backward: dx = gamma * rstd / M * (M dy - sum(dy) - xhat * sum(dy xhat)),
// dgamma = sum(dy xhat), dbeta = sum(dy); sums over the channel's M = n*hw elements.
@compute @workgroup_size(WG)
fn batch_norm_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(num_workgroups) nwg: vec3<u32>) {
    let ch = wid.x + wid.y * nwg.x;
    if (ch >= p.c) { return; }
    let count = p.n * p.hw;
    let mean = stats[2u * ch];
    let rstd = stats[2u * ch + 1u];
    let gm = gamma[ch];
    let bt = beta[ch];
    var s = vec2<f32>(0.0, 0.0);
    for (var j = lid; j < count; j += WG) {
        let idx = at(ch, j);
        let xhat = (x[idx] - mean) * rstd;
        let d = dy[ys(idx)] * act_df(xhat * gm + bt, p.slope);
        s += vec2<f32>(d, d * xhat);
    }
    let t = wg_sum2(lid, s);
    if (p.write_dx != 0u) {
        let k = gm * rstd / f32(count);
        for (var j = lid; j < count; j += WG) {
            let idx = at(ch, j);
            let xhat = (x[idx] - mean) * rstd;
            let d = dy[ys(idx)] * act_df(xhat * gm + bt, p.slope);
            var v = k * (f32(count) * d - t.x - xhat * t.y);
            if (p.accumulate != 0u) { v += dx[idx]; }
            dx[idx] = v;
        }
    }
    if (p.write_dparams != 0u && lid == 0u) {
        if (p.param_accumulate != 0u) {
            dgamma[ch] += t.y;
            dbeta[ch] += t.x;
        } else {
            dgamma[ch] = t.y;
            dbeta[ch] = t.x;
        }
    }
}
