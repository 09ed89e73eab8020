// metrics: per-image image-quality metrics of a batch of reconstructions against clean images,
// written into per-image slots of result buffers that live for a whole evaluation pass (the
// host reads them back once at the end).
// - metrics_pixel: one workgroup per image; with p' = pred * pred_scale + pred_shift (the
//   network input mapped back to [0, 1] when the noisy input is scored) and d = p' - clean:
//   stats[4 * (offset + i) + {0,1,2,3}] = mean d^2 (MSE), PSNR = -10 log10(MSE) with data range
//   1 (psnr_cap when MSE <= mse_floor: an exact image), mean |d|, mean sqrt(d^2 + eps^2).
// - ssim_rows, ssim_image: SSIM as scikit-image's structural_similarity(gaussian_weights=True,
//   sigma=1.5, use_sample_covariance=False, data_range=1): an 11-tap Gaussian (weights
//   exp(-(k-5)^2 / 4.5) * inv_gsum), K1 0.01, K2 0.03; skimage filters with reflected borders
//   and then drops 5 pixels on each side, which leaves exactly the "valid" region used here.
//   ssim_rows filters each row of a, b, a^2, b^2, ab horizontally into tmp
//   [img, ch, 5, h, w - 10]; ssim_image (one workgroup per image) filters tmp vertically,
//   evaluates the SSIM map and writes its mean over channels and the valid region to
//   ssim[offset + i].
//
// Bindings: 0 params | 1 pred | 2 clean | 3 tmp (read) | 4 tmp (rw) | 5 stats (rw) | 6 ssim (rw)
// Accumulate rule: every output slot is written (=), never accumulated.

struct MetricsParams {
    n: u32, ch: u32, h: u32, w: u32,
    offset: u32, _pad0: u32, _pad1: u32, _pad2: u32,
    pred_scale: f32, pred_shift: f32, eps: f32, mse_floor: f32,
    psnr_cap: f32, inv_gsum: f32, c1: f32, c2: f32,
}

const WG: u32 = 256u;
const WIN: u32 = 11u;

@group(0) @binding(0) var<uniform> p: MetricsParams;
@group(0) @binding(1) var<storage, read> pred: array<f32>;
@group(0) @binding(2) var<storage, read> clean: array<f32>;
@group(0) @binding(3) var<storage, read> tmp_in: array<f32>;
@group(0) @binding(4) var<storage, read_write> tmp_out: array<f32>;
@group(0) @binding(5) var<storage, read_write> stats: array<f32>;
@group(0) @binding(6) var<storage, read_write> ssim: array<f32>;

@compute @workgroup_size(WG)
fn metrics_pixel(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(num_workgroups) nwg: vec3<u32>) {
    let img = wid.x + wid.y * nwg.x;
    if (img >= p.n) { return; }
    let len = p.ch * p.h * p.w;
    let base = img * len;
    var sq = 0.0;
    var ab = 0.0;
    for (var i = lid; i < len; i += WG) {
        let d = pred[base + i] * p.pred_scale + p.pred_shift - clean[base + i];
        sq += d * d;
        ab += abs(d);
    }
    var ch = 0.0;
    for (var i = lid; i < len; i += WG) {
        let d = pred[base + i] * p.pred_scale + p.pred_shift - clean[base + i];
        ch += sqrt(d * d + p.eps * p.eps);
    }
    let s = wg_sum2(lid, vec2<f32>(sq, ab));
    let c = wg_sum(lid, ch);
    if (lid == 0u) {
        let inv = 1.0 / f32(len);
        let mse = s.x * inv;
        var psnr = p.psnr_cap;
        if (mse > p.mse_floor) { psnr = -10.0 * log2(mse) / log2(10.0); }
        let o = 4u * (p.offset + img);
        stats[o] = mse;
        stats[o + 1u] = psnr;
        stats[o + 2u] = s.y * inv;
        stats[o + 3u] = c * inv;
    }
}

fn gauss(k: u32) -> f32 {
    let d = f32(k) - 5.0;
    return exp(-d * d / 4.5) * p.inv_gsum;
}

@compute @workgroup_size(WG)
fn ssim_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let wo = p.w - (WIN - 1u);
    let i = gid.x + gid.y * nwg.x * WG;
    if (i >= p.n * p.ch * p.h * wo) { return; }
    let xo = i % wo;
    let y = (i / wo) % p.h;
    let plane = i / (wo * p.h);
    let src = plane * p.h * p.w + y * p.w + xo;
    var f = array<f32, 5>(0.0, 0.0, 0.0, 0.0, 0.0);
    for (var k = 0u; k < WIN; k++) {
        let g = gauss(k);
        let a = pred[src + k] * p.pred_scale + p.pred_shift;
        let b = clean[src + k];
        f[0] += g * a;
        f[1] += g * b;
        f[2] += g * a * a;
        f[3] += g * b * b;
        f[4] += g * a * b;
    }
    let plane_len = p.h * wo;
    for (var q = 0u; q < 5u; q++) {
        tmp_out[(plane * 5u + q) * plane_len + y * wo + xo] = f[q];
    }
}

@compute @workgroup_size(WG)
fn ssim_image(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(num_workgroups) nwg: vec3<u32>) {
    let img = wid.x + wid.y * nwg.x;
    if (img >= p.n) { return; }
    let wo = p.w - (WIN - 1u);
    let ho = p.h - (WIN - 1u);
    let plane_len = p.h * wo;
    let per_ch = ho * wo;
    var s = 0.0;
    for (var i = lid; i < p.ch * per_ch; i += WG) {
        let c = i / per_ch;
        let yo = (i % per_ch) / wo;
        let xo = i % wo;
        let plane = img * p.ch + c;
        var f = array<f32, 5>(0.0, 0.0, 0.0, 0.0, 0.0);
        for (var k = 0u; k < WIN; k++) {
            let g = gauss(k);
            let at = (yo + k) * wo + xo;
            for (var q = 0u; q < 5u; q++) {
                f[q] += g * tmp_in[(plane * 5u + q) * plane_len + at];
            }
        }
        let va = f[2] - f[0] * f[0];
        let vb = f[3] - f[1] * f[1];
        let cov = f[4] - f[0] * f[1];
        s += ((2.0 * f[0] * f[1] + p.c1) * (2.0 * cov + p.c2)) / ((f[0] * f[0] + f[1] * f[1] + p.c1) * (va + vb + p.c2));
    }
    let t = wg_sum(lid, s);
    if (lid == 0u) { ssim[p.offset + img] = t / f32(p.ch * per_ch); }
}
