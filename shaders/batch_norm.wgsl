// batch_norm: BatchNorm2d over NCHW. Training normalises with the batch statistics of each
// channel over (n, hw) (biased variance) and updates the running statistics in place with the
// unbiased variance, as PyTorch; evaluation normalises with the running statistics.
// Training: two-stage reductions over (channel, chunk) workgroups (below), then elementwise
// passes; eval: one invocation per element.
// The activation that follows it in a block is fused (ACT, act.wgsl; 6 = none): the forwards
// write act(pre), pre = xhat * gamma + beta; the backward recomputes pre and scales dy by
// act'(pre) first.
//
// x's type XT is f32, or f16 in the twin family batch_norm_h (`train.amp`): there the backward
// entries read the f16 copy of x the op saved (f16 activation storage); the forwards always run
// in the f32 family, on x itself.
//
// Bindings: 0 params | 1 x | 2 gamma | 3 beta | 4 dy | 5 stats [c*2] (rw: mean, rstd)
//           | 6 running_mean (rw) | 7 running_var (rw) | 8 y (rw) | 9 dx (rw) | 10 dgamma (rw)
//           | 11 dbeta (rw) | 12 partials (rw: per (channel, chunk) sums of the two-stage entries)
// Slices (slice.wgsl): y and dy may be a channel slice (s_c, s_off, s_total).
// Accumulate rule: batch_norm_backward_apply writes `dx = (accumulate ? dx : 0) + grad`;
// batch_norm_backward_final accumulates into dgamma/dbeta when param_accumulate is set.

struct BatchNormParams {
    n: u32, c: u32, hw: u32, accumulate: u32,
    eps: f32, momentum: f32, write_dx: u32, write_dparams: u32,
    param_accumulate: u32, slope: f32, s_c: u32, s_off: u32,
    s_total: u32, chunks: u32, chunk: u32, _pad2: u32,
}

fn ys(i: u32) -> u32 {
    return slice_at(Slice(p.s_c, p.s_off, p.s_total, 0u), i, p.hw);
}

// WG: the elementwise entries' workgroup size, and the number of slots (partial sums) of the
// two reductions, batch_norm_stats and batch_norm_backward_partial: slot k adds the chunk's
// elements k, k + WG, ... in turn, and wg_total adds the slots in one
// order. Those two run THREADS invocations (an override: 256, 64, 32 or 16, autotune's pick per
// shape), each filling the slots lid, lid + THREADS, ...: every size computes the same bits.
const WG: u32 = 256u;
override THREADS: u32 = 256u;
override ACT: u32 = 6u;

@group(0) @binding(0) var<uniform> p: BatchNormParams;
@group(0) @binding(1) var<storage, read> x: array<XT>;
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
@group(0) @binding(12) var<storage, read_write> partials: array<f32>;


// Training statistics in two stages, so that a large GPU gets many workgroups even with few
// channels: batch_norm_stats, one workgroup per (channel, chunk) of the channel's n*hw
// elements, writes its chunk's (count, mean, M2) (a two-pass mean and sum of squared
// deviations); batch_norm_stats_final, one invocation per channel, merges the chunks in order
// (Chan et al.'s pairwise update), writes (mean, rstd) and updates the running statistics;
// batch_norm_apply then normalises elementwise.
@compute @workgroup_size(THREADS)
fn batch_norm_stats(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(num_workgroups) nwg: vec3<u32>) {
    let gi = wid.x + wid.y * nwg.x;
    if (gi >= p.c * p.chunks) { return; }
    let ch = gi / p.chunks;
    let j0 = (gi % p.chunks) * p.chunk;
    let j1 = min(j0 + p.chunk, p.n * p.hw);
    let cnt = f32(j1 - j0);
    // Slot k walks j = j0 + k, j0 + k + WG, ... (image b, pixel q), stepping b and q without a
    // division per element.
    for (var k = lid; k < WG; k += THREADS) {
        var s = 0.0;
        var j = j0 + k;
        var q = j % p.hw;
        var xo = (j / p.hw * p.c + ch) * p.hw;
        while (j < j1) {
            s += f32(x[xo + q]);
            j += WG;
            q += WG;
            while (q >= p.hw) { q -= p.hw; xo += p.c * p.hw; }
        }
        wg_red[k] = s;
    }
    let mean = wg_total(lid) / cnt;
    workgroupBarrier();
    for (var k = lid; k < WG; k += THREADS) {
        var s2 = 0.0;
        var j = j0 + k;
        var q = j % p.hw;
        var xo = (j / p.hw * p.c + ch) * p.hw;
        while (j < j1) {
            let d = f32(x[xo + q]) - mean;
            s2 += d * d;
            j += WG;
            q += WG;
            while (q >= p.hw) { q -= p.hw; xo += p.c * p.hw; }
        }
        wg_red[k] = s2;
    }
    let m2 = wg_total(lid);
    if (lid == 0u) {
        partials[3u * gi] = cnt;
        partials[3u * gi + 1u] = mean;
        partials[3u * gi + 2u] = m2;
    }
}

@compute @workgroup_size(WG)
fn batch_norm_stats_final(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let ch = gid.x + gid.y * nwg.x * WG;
    if (ch >= p.c) { return; }
    var n_a = 0.0;
    var mean = 0.0;
    var m2 = 0.0;
    for (var k = 0u; k < p.chunks; k++) {
        let q = 3u * (ch * p.chunks + k);
        let n_b = partials[q];
        let delta = partials[q + 1u] - mean;
        let n_ab = n_a + n_b;
        mean += delta * n_b / n_ab;
        m2 += partials[q + 2u] + delta * delta * n_a * n_b / n_ab;
        n_a = n_ab;
    }
    let var_b = m2 / n_a;
    stats[2u * ch] = mean;
    stats[2u * ch + 1u] = inverseSqrt(var_b + p.eps);
    let unbiased = m2 / (n_a - 1.0);
    running_mean[ch] = (1.0 - p.momentum) * running_mean[ch] + p.momentum * mean;
    running_var[ch] = (1.0 - p.momentum) * running_var[ch] + p.momentum * unbiased;
}

@compute @workgroup_size(WG)
fn batch_norm_apply(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if (i >= p.n * p.c * p.hw) { return; }
    let ch = (i / p.hw) % p.c;
    y[ys(i)] = act_f((f32(x[i]) - stats[2u * ch]) * stats[2u * ch + 1u] * gamma[ch] + beta[ch], p.slope);
}

@compute @workgroup_size(WG)
fn batch_norm_forward_eval(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if (i >= p.n * p.c * p.hw) { return; }
    let ch = (i / p.hw) % p.c;
    y[ys(i)] = act_f((f32(x[i]) - running_mean[ch]) * inverseSqrt(running_var[ch] + p.eps) * gamma[ch] + beta[ch], p.slope);
}

// Training-mode backward: dx = gamma * rstd / M * (M d - sum(d) - xhat * sum(d xhat)),
// d = dy * act'(pre), dgamma = sum(d xhat), dbeta = sum(d); sums over the channel's M = n*hw
// elements. Three stages like the statistics: batch_norm_backward_partial, one workgroup per
// (channel, chunk), writes its chunk's (sum d, sum d xhat); batch_norm_backward_final, one
// invocation per channel, adds the chunks in order, writes dgamma / dbeta and leaves the two
// sums in the channel's first partial slot; batch_norm_backward_apply writes dx elementwise.
// (d, xhat) of element i of x (dy's element at j).
fn d_and_xhat(ch: u32, i: u32, j: u32) -> vec2<f32> {
    let xhat = (f32(x[i]) - stats[2u * ch]) * stats[2u * ch + 1u];
    return vec2<f32>(dy[j] * act_df(xhat * gamma[ch] + beta[ch], p.slope), xhat);
}

@compute @workgroup_size(THREADS)
fn batch_norm_backward_partial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(num_workgroups) nwg: vec3<u32>) {
    let gi = wid.x + wid.y * nwg.x;
    if (gi >= p.c * p.chunks) { return; }
    let ch = gi / p.chunks;
    let j0 = (gi % p.chunks) * p.chunk;
    let j1 = min(j0 + p.chunk, p.n * p.hw);
    // As batch_norm_stats; dy's plane (a channel slice: s_c divides c) steps by ystep.
    let ystep = p.c / p.s_c * p.s_total * p.hw;
    for (var k = lid; k < WG; k += THREADS) {
        var s = vec2<f32>(0.0, 0.0);
        var j = j0 + k;
        var q = j % p.hw;
        var xo = (j / p.hw * p.c + ch) * p.hw;
        var yo = ys(xo);
        while (j < j1) {
            let dx_ = d_and_xhat(ch, xo + q, yo + q);
            s += vec2<f32>(dx_.x, dx_.x * dx_.y);
            j += WG;
            q += WG;
            while (q >= p.hw) { q -= p.hw; xo += p.c * p.hw; yo += ystep; }
        }
        wg_red[k] = s.x;
        wg_red2[k] = s.y;
    }
    let t = wg_total2(lid);
    if (lid == 0u) {
        partials[2u * gi] = t.x;
        partials[2u * gi + 1u] = t.y;
    }
}

@compute @workgroup_size(WG)
fn batch_norm_backward_final(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let ch = gid.x + gid.y * nwg.x * WG;
    if (ch >= p.c) { return; }
    var t = vec2<f32>(0.0, 0.0);
    for (var k = 0u; k < p.chunks; k++) {
        let q = 2u * (ch * p.chunks + k);
        t += vec2<f32>(partials[q], partials[q + 1u]);
    }
    partials[2u * ch * p.chunks] = t.x;
    partials[2u * ch * p.chunks + 1u] = t.y;
    if (p.write_dparams != 0u) {
        if (p.param_accumulate != 0u) {
            dgamma[ch] += t.y;
            dbeta[ch] += t.x;
        } else {
            dgamma[ch] = t.y;
            dbeta[ch] = t.x;
        }
    }
}

@compute @workgroup_size(WG)
fn batch_norm_backward_apply(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if (i >= p.n * p.c * p.hw) { return; }
    let ch = (i / p.hw) % p.c;
    let count = f32(p.n * p.hw);
    let q = 2u * ch * p.chunks;
    let dxh = d_and_xhat(ch, i, ys(i));
    var v = gamma[ch] * stats[2u * ch + 1u] / count * (count * dxh.x - partials[q] - dxh.y * partials[q + 1u]);
    if (p.accumulate != 0u) { v += dx[i]; }
    dx[i] = v;
}
