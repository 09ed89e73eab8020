//! CPU twin of shaders/metrics.wgsl (f64): per-image MSE, PSNR, MAE, Charbonnier and SSIM,
//! SSIM as scikit-image's `structural_similarity(gaussian_weights=True, sigma=1.5,
//! use_sample_covariance=False, data_range=1.0)` (tested against values skimage computed,
//! tests/fixtures/metrics_reference.safetensors from tools/metrics_reference.py).

pub const WIN: usize = 11;
pub const SIGMA: f64 = 1.5;
pub const C1: f64 = 0.01 * 0.01;
pub const C2: f64 = 0.03 * 0.03;

/// [MSE, PSNR (data range 1; `cap` when MSE <= `floor`), MAE, mean sqrt(d^2 + eps^2)] of one
/// image, with `pred` mapped by `pred * scale + shift` first.
pub fn metrics_pixel(pred: &[f64], clean: &[f64], scale: f64, shift: f64, eps: f64, floor: f64, cap: f64) -> [f64; 4] {
    let n = pred.len() as f64;
    let (mut sq, mut ab, mut ch) = (0.0, 0.0, 0.0);
    for (p, c) in pred.iter().zip(clean) {
        let d = p * scale + shift - c;
        sq += d * d;
        ab += d.abs();
        ch += (d * d + eps * eps).sqrt();
    }
    let mse = sq / n;
    [mse, if mse <= floor { cap } else { -10.0 * mse.log10() }, ab / n, ch / n]
}

/// The normalised 11-tap Gaussian (sigma 1.5), as scipy's gaussian_filter with truncate 3.5.
pub fn gauss() -> [f64; WIN] {
    let mut g = [0.0; WIN];
    let c = (WIN / 2) as f64;
    for (i, v) in g.iter_mut().enumerate() {
        *v = (-((i as f64 - c).powi(2)) / (2.0 * SIGMA * SIGMA)).exp();
    }
    let s: f64 = g.iter().sum();
    g.map(|v| v / s)
}

/// Separable Gaussian filter over the valid region (h - 10) x (w - 10). skimage filters with
/// reflected borders and then crops 5 pixels on each side, which leaves exactly these values.
fn filter(img: &[f64], h: usize, w: usize, g: &[f64; WIN]) -> Vec<f64> {
    let (oh, ow) = (h + 1 - WIN, w + 1 - WIN);
    let mut rows = vec![0.0; h * ow];
    for y in 0..h {
        for x in 0..ow {
            rows[y * ow + x] = (0..WIN).map(|k| g[k] * img[y * w + x + k]).sum();
        }
    }
    let mut out = vec![0.0; oh * ow];
    for y in 0..oh {
        for x in 0..ow {
            out[y * ow + x] = (0..WIN).map(|k| g[k] * rows[(y + k) * ow + x]).sum();
        }
    }
    out
}

/// SSIM of one image of `ch` channels of h x w (h, w >= 11): the mean of the SSIM map over the
/// valid region, averaged over channels (skimage's `channel_axis`), `a` mapped by scale/shift.
pub fn ssim(a: &[f64], b: &[f64], ch: usize, h: usize, w: usize, scale: f64, shift: f64) -> f64 {
    assert!(h >= WIN && w >= WIN, "ssim needs at least {WIN}x{WIN}");
    let g = gauss();
    let plane = h * w;
    let mut total = 0.0;
    for c in 0..ch {
        let a: Vec<f64> = a[c * plane..(c + 1) * plane].iter().map(|v| v * scale + shift).collect();
        let b = &b[c * plane..(c + 1) * plane];
        let sq = |v: &[f64]| v.iter().map(|x| x * x).collect::<Vec<_>>();
        let ab: Vec<f64> = a.iter().zip(b).map(|(x, y)| x * y).collect();
        let (mu_a, mu_b) = (filter(&a, h, w, &g), filter(b, h, w, &g));
        let (saa, sbb, sab) = (filter(&sq(&a), h, w, &g), filter(&sq(b), h, w, &g), filter(&ab, h, w, &g));
        let mut s = 0.0;
        for i in 0..mu_a.len() {
            let (ma, mb) = (mu_a[i], mu_b[i]);
            let (va, vb, cov) = (saa[i] - ma * ma, sbb[i] - mb * mb, sab[i] - ma * mb);
            s += ((2.0 * ma * mb + C1) * (2.0 * cov + C2)) / ((ma * ma + mb * mb + C1) * (va + vb + C2));
        }
        total += s / mu_a.len() as f64;
    }
    total / ch as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> crate::checkpoint::Loaded {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/metrics_reference.safetensors");
        crate::checkpoint::read(&path).expect("tests/fixtures/metrics_reference.safetensors (tools/metrics_reference.py writes it)")
    }

    fn f64s(f: &crate::checkpoint::Loaded, name: &str) -> (Vec<usize>, Vec<f64>) {
        let (dt, shape, data) = f.tensors.get(name).unwrap_or_else(|| panic!("fixture lacks {name}"));
        assert_eq!(*dt, safetensors::Dtype::F64, "{name}");
        (shape.clone(), bytemuck::pod_collect_to_vec(data))
    }

    /// SSIM, PSNR and MSE against the values scikit-image computed on the same images.
    #[test]
    fn matches_scikit_image() {
        let f = fixture();
        for prefix in ["ssim", "ssim_odd"] {
            let (shape, clean) = f64s(&f, &format!("{prefix}.clean"));
            let (_, dist) = f64s(&f, &format!("{prefix}.distorted"));
            let (_, want) = f64s(&f, &format!("{prefix}.value"));
            let (h, w) = (shape[2], shape[3]);
            for (k, want) in want.iter().enumerate() {
                let r = k * h * w..(k + 1) * h * w;
                let got = ssim(&dist[r.clone()], &clean[r], 1, h, w, 1.0, 0.0);
                assert!((got - want).abs() < 1e-9, "{prefix} pair {k}: ssim {got} vs skimage {want}");
            }
        }
        let (shape, clean) = f64s(&f, "ssim.clean");
        let (_, dist) = f64s(&f, "ssim.distorted");
        let (_, psnr) = f64s(&f, "psnr.value");
        let (_, mse) = f64s(&f, "mse.value");
        let hw = shape[2] * shape[3];
        for k in 0..psnr.len() {
            let r = k * hw..(k + 1) * hw;
            let m = metrics_pixel(&dist[r.clone()], &clean[r], 1.0, 0.0, 1e-3, 1e-10, 100.0);
            assert!((m[0] - mse[k]).abs() <= 1e-12 * mse[k].max(1e-3), "pair {k}: mse {} vs {}", m[0], mse[k]);
            assert!((m[1] - psnr[k]).abs() < 1e-9, "pair {k}: psnr {} vs skimage {}", m[1], psnr[k]);
        }
    }

    #[test]
    fn identical_images_and_known_values() {
        let img: Vec<f64> = (0..28 * 28).map(|i| ((i * 37) % 256) as f64 / 255.0).collect();
        assert!((ssim(&img, &img, 1, 28, 28, 1.0, 0.0) - 1.0).abs() < 1e-12);
        assert_eq!(metrics_pixel(&img, &img, 1.0, 0.0, 1e-3, 1e-10, 100.0)[1], 100.0);
        let a = vec![0.5; 100];
        let b = vec![0.6; 100];
        let m = metrics_pixel(&a, &b, 1.0, 0.0, 0.0, 1e-10, 100.0);
        assert!((m[1] - 20.0).abs() < 1e-9 && (m[2] - 0.1).abs() < 1e-12 && (m[3] - 0.1).abs() < 1e-12);
        // The affine maps a [-1, 1] input back to [0, 1] before scoring.
        let c: Vec<f64> = a.iter().map(|v| 2.0 * v - 1.0).collect();
        assert_eq!(metrics_pixel(&c, &a, 0.5, 0.5, 0.0, 1e-10, 100.0)[1], 100.0);
    }
}
