// group_norm: GroupNorm over NCHW with per-channel affine; instance norm is groups == c; the
// activation that follows it in a block is fused (ACT, act.wgsl; 6 = none): the forward writes
// act(pre) with pre = xhat * gamma + beta, and both backward kernels recompute pre from x and
// the saved statistics and scale dy by act'(pre) before the norm's own gradient.
// A group's elements are contiguous (its channels are adjacent), so one workgroup per (n, group)
// walks [base, base + cpg*hw) with a two-pass mean/variance (biased, like PyTorch), then its
// channels one by one.
// Every sum over a group (or a chunk of a channel) has one order whatever the workgroup size:
// WG = 64 partial sums (slots), slot k adding the elements at offsets k, k + 64, ... in turn, then
// the slots added in four runs of 16 and the four run totals in order (wg_total). A workgroup
// of THREADS invocations (an override: 64, 32, 16 or 8) gives each invocation the slots lid,
// lid + THREADS, ...; so the candidates autotune picks among compute the same bits, and
// a choice can change no result. A CPU driver pays per invocation at each barrier (lavapipe:
// 8 ran 41 of the 42 group norms of unet16x2, unet64x3 and conv64x3 at batch 16 fastest, the
// other a tie, 1.1-3.2x faster than 64), a GPU wants its workgroups full; 64 where untuned.
//
// x's type XT is f32, or f16 in the twin family group_norm_h (`train.amp`): there the two
// backward kernels read the f16 copy of x the op saved instead of x (f16 activation storage;
// the forward always runs in the f32 family, on x itself).
//
// Bindings: 0 params | 1 x | 2 gamma [c] | 3 beta [c] | 4 dy | 5 stats [n*groups*2] (rw in
//           forward: mean, rstd per group) | 6 y (rw) | 7 dx (rw) | 8 dgamma (rw) | 9 dbeta (rw)
//           | 10 partials (rw: per (channel, chunk) sums of the parameter gradient)
// Slices (slice.wgsl): y and dy may be a channel slice (s_c, s_off, s_total).
// Accumulate rule: group_norm_input_grad and group_norm_param_final write
// `out = (accumulate ? out : 0) + grad`; the forward overwrites y and stats.

struct GroupNormParams {
    n: u32, c: u32, hw: u32, groups: u32,
    eps: f32, accumulate: u32, slope: f32, s_c: u32,
    s_off: u32, s_total: u32, chunks: u32, chunk: u32,
}

fn ys(i: u32) -> u32 {
    return slice_at(Slice(p.s_c, p.s_off, p.s_total, 0u), i, p.hw);
}

// Invocations per workgroup (autotune's candidates divide WG); WG (workgroup_sum.wgsl) is the
// number of slots.
override THREADS: u32 = 64u;
const WG: u32 = 64u;
override ACT: u32 = 6u;

@group(0) @binding(0) var<uniform> p: GroupNormParams;
@group(0) @binding(1) var<storage, read> x: array<XT>;
@group(0) @binding(2) var<storage, read> gamma: array<f32>;
@group(0) @binding(3) var<storage, read> beta: array<f32>;
@group(0) @binding(4) var<storage, read> dy: array<f32>;
@group(0) @binding(5) var<storage, read_write> stats: array<f32>;
@group(0) @binding(6) var<storage, read_write> y: array<f32>;
@group(0) @binding(7) var<storage, read_write> dx: array<f32>;
@group(0) @binding(8) var<storage, read_write> dgamma: array<f32>;
@group(0) @binding(9) var<storage, read_write> dbeta: array<f32>;
@group(0) @binding(10) var<storage, read_write> partials: array<f32>;

@compute @workgroup_size(THREADS)
fn group_norm_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(num_workgroups) nwg: vec3<u32>) {
    let gi = wid.x + wid.y * nwg.x;
    if (gi >= p.n * p.groups) { return; }
    let cpg = p.c / p.groups;
    let count = cpg * p.hw;
    let base = gi * count;
    let inv = 1.0 / f32(count);
    for (var k = lid; k < WG; k += THREADS) {
        var s = 0.0;
        for (var j = k; j < count; j += WG) { s += f32(x[base + j]); }
        wg_red[k] = s;
    }
    let mean = wg_total(lid) * inv;
    workgroupBarrier();
    for (var k = lid; k < WG; k += THREADS) {
        var s2 = 0.0;
        for (var j = k; j < count; j += WG) { let d = f32(x[base + j]) - mean; s2 += d * d; }
        wg_red[k] = s2;
    }
    let rstd = inverseSqrt(wg_total(lid) * inv + p.eps);
    if (lid == 0u) {
        stats[2u * gi] = mean;
        stats[2u * gi + 1u] = rstd;
    }
    // Channel by channel: gamma, beta and the slice's plane offset are the same for the whole
    // workgroup (one load each, not one per element).
    let c0 = (gi % p.groups) * cpg;
    for (var k = 0u; k < cpg; k++) {
        let gm = gamma[c0 + k];
        let bt = beta[c0 + k];
        let xo = base + k * p.hw;
        let yo = ys(xo);
        for (var q = lid; q < p.hw; q += THREADS) {
            y[yo + q] = act_f((f32(x[xo + q]) - mean) * rstd * gm + bt, p.slope);
        }
    }
}

// (g, xhat) of element i of x (dy's element at j): g = dy * act'(pre) * gamma.
fn g_xhat(i: u32, j: u32, mean: f32, rstd: f32, gm: f32, bt: f32) -> vec2<f32> {
    let xhat = (f32(x[i]) - mean) * rstd;
    return vec2<f32>(dy[j] * act_df(xhat * gm + bt, p.slope) * gm, xhat);
}

// dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dy * gamma, means over the group.
@compute @workgroup_size(THREADS)
fn group_norm_input_grad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(num_workgroups) nwg: vec3<u32>) {
    let gi = wid.x + wid.y * nwg.x;
    if (gi >= p.n * p.groups) { return; }
    let cpg = p.c / p.groups;
    let count = cpg * p.hw;
    let base = gi * count;
    let c0 = (gi % p.groups) * cpg;
    let mean = stats[2u * gi];
    let rstd = stats[2u * gi + 1u];
    // Channel by channel, as in the forward; slot sl adds the pixels sl, sl + WG, ... of each.
    for (var sl = lid; sl < WG; sl += THREADS) {
        var s = vec2<f32>(0.0, 0.0);
        for (var k = 0u; k < cpg; k++) {
            let gm = gamma[c0 + k];
            let bt = beta[c0 + k];
            let xo = base + k * p.hw;
            let yo = ys(xo);
            for (var q = sl; q < p.hw; q += WG) {
                let gx = g_xhat(xo + q, yo + q, mean, rstd, gm, bt);
                s += vec2<f32>(gx.x, gx.x * gx.y);
            }
        }
        wg_red[sl] = s.x;
        wg_red2[sl] = s.y;
    }
    let m = wg_total2(lid) / f32(count);
    for (var k = 0u; k < cpg; k++) {
        let gm = gamma[c0 + k];
        let bt = beta[c0 + k];
        let xo = base + k * p.hw;
        let yo = ys(xo);
        for (var q = lid; q < p.hw; q += THREADS) {
            let gx = g_xhat(xo + q, yo + q, mean, rstd, gm, bt);
            var v = rstd * (gx.x - m.x - gx.y * m.y);
            if (p.accumulate != 0u) { v += dx[xo + q]; }
            dx[xo + q] = v;
        }
    }
}

// dgamma[c] = sum d * xhat, dbeta[c] = sum d over (n, hw), d = dy * act'(pre), in two stages
// so a large GPU gets many workgroups: group_norm_param_partial, one workgroup per (channel,
// chunk) of the channel's n*hw elements, writes the chunk's two sums; group_norm_param_final,
// one invocation per channel, adds the chunks in order.
@compute @workgroup_size(THREADS)
fn group_norm_param_partial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(num_workgroups) nwg: vec3<u32>) {
    let gi = wid.x + wid.y * nwg.x;
    if (gi >= p.c * p.chunks) { return; }
    let ch = gi / p.chunks;
    let j0 = (gi % p.chunks) * p.chunk;
    let j1 = min(j0 + p.chunk, p.n * p.hw);
    let g = ch / (p.c / p.groups);
    let gm = gamma[ch];
    let bt = beta[ch];
    // Image by image: the image's statistics and plane offsets are the same for the whole
    // workgroup (one load each, no division per element); slot sl adds the pixels q0 + sl,
    // q0 + sl + WG, ... of each image's part of the chunk.
    for (var sl = lid; sl < WG; sl += THREADS) {
        var s = vec2<f32>(0.0, 0.0);
        var j = j0;
        while (j < j1) {
            let b = j / p.hw;
            let q0 = j - b * p.hw;
            let q1 = min(j1 - b * p.hw, p.hw);
            let gi2 = b * p.groups + g;
            let mean = stats[2u * gi2];
            let rstd = stats[2u * gi2 + 1u];
            let xo = (b * p.c + ch) * p.hw;
            let yo = ys(xo);
            for (var q = q0 + sl; q < q1; q += WG) {
                let xhat = (f32(x[xo + q]) - mean) * rstd;
                let d = dy[yo + q] * act_df(xhat * gm + bt, p.slope);
                s += vec2<f32>(d * xhat, d);
            }
            j = b * p.hw + q1;
        }
        wg_red[sl] = s.x;
        wg_red2[sl] = s.y;
    }
    let t = wg_total2(lid);
    if (lid == 0u) {
        partials[2u * gi] = t.x;
        partials[2u * gi + 1u] = t.y;
    }
}

@compute @workgroup_size(THREADS)
fn group_norm_param_final(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let ch = gid.x + gid.y * nwg.x * THREADS;
    if (ch >= p.c) { return; }
    var t = vec2<f32>(0.0, 0.0);
    for (var k = 0u; k < p.chunks; k++) {
        let q = 2u * (ch * p.chunks + k);
        t += vec2<f32>(partials[q], partials[q + 1u]);
    }
    if (p.accumulate != 0u) {
        dgamma[ch] += t.x;
        dbeta[ch] += t.y;
    } else {
        dgamma[ch] = t.x;
        dbeta[ch] = t.y;
    }
}
