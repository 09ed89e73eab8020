//! Image-quality metrics on [0, 1] images, per image then averaged. These are the CPU versions
//! (f64); GPU kernels come with the evaluation work and will be checked against these.

/// PSNR with data range 1: 10 log10(1 / mse). An exact reconstruction (mse 0) is reported as
/// 100 dB rather than infinity so averages stay finite.
pub fn psnr(pred: &[f32], clean: &[f32]) -> f64 {
    let mse = mse(pred, clean);
    if mse <= 1e-10 { 100.0 } else { -10.0 * mse.log10() }
}

pub fn mse(pred: &[f32], clean: &[f32]) -> f64 {
    pred.iter().zip(clean).map(|(p, c)| (*p as f64 - *c as f64).powi(2)).sum::<f64>() / pred.len().max(1) as f64
}

const WIN: usize = 11;
const SIGMA: f64 = 1.5;
const C1: f64 = 0.01 * 0.01;
const C2: f64 = 0.03 * 0.03;

fn gauss() -> [f64; WIN] {
    let mut g = [0.0; WIN];
    let c = (WIN / 2) as f64;
    for (i, v) in g.iter_mut().enumerate() {
        *v = (-((i as f64 - c).powi(2)) / (2.0 * SIGMA * SIGMA)).exp();
    }
    let s: f64 = g.iter().sum();
    g.map(|v| v / s)
}

/// Separable Gaussian filter, "valid" region only (no padding), as pytorch_msssim computes it.
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

/// SSIM of one single-channel h x w image (Gaussian window 11, sigma 1.5, K1 0.01, K2 0.03,
/// data range 1), the mean of the SSIM map over the valid region. Images smaller than the
/// window are compared whole with a flat window.
pub fn ssim(pred: &[f32], clean: &[f32], h: usize, w: usize) -> f64 {
    let a: Vec<f64> = pred.iter().map(|&v| v as f64).collect();
    let b: Vec<f64> = clean.iter().map(|&v| v as f64).collect();
    if h < WIN || w < WIN {
        let n = (h * w) as f64;
        let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
        let va = a.iter().map(|x| (x - ma).powi(2)).sum::<f64>() / n;
        let vb = b.iter().map(|x| (x - mb).powi(2)).sum::<f64>() / n;
        let cov = a.iter().zip(&b).map(|(x, y)| (x - ma) * (y - mb)).sum::<f64>() / n;
        return ((2.0 * ma * mb + C1) * (2.0 * cov + C2)) / ((ma * ma + mb * mb + C1) * (va + vb + C2));
    }
    let g = gauss();
    let mu_a = filter(&a, h, w, &g);
    let mu_b = filter(&b, h, w, &g);
    let sq = |v: &[f64]| v.iter().map(|x| x * x).collect::<Vec<_>>();
    let ab: Vec<f64> = a.iter().zip(&b).map(|(x, y)| x * y).collect();
    let (saa, sbb, sab) = (filter(&sq(&a), h, w, &g), filter(&sq(&b), h, w, &g), filter(&ab, h, w, &g));
    let n = mu_a.len();
    let mut total = 0.0;
    for i in 0..n {
        let (ma, mb) = (mu_a[i], mu_b[i]);
        let va = saa[i] - ma * ma;
        let vb = sbb[i] - mb * mb;
        let cov = sab[i] - ma * mb;
        total += ((2.0 * ma * mb + C1) * (2.0 * cov + C2)) / ((ma * ma + mb * mb + C1) * (va + vb + C2));
    }
    total / n as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_images() {
        let img: Vec<f32> = (0..28 * 28).map(|i| ((i * 37) % 256) as f32 / 255.0).collect();
        assert!((ssim(&img, &img, 28, 28) - 1.0).abs() < 1e-12);
        assert_eq!(psnr(&img, &img), 100.0);
    }

    #[test]
    fn psnr_of_known_mse() {
        let a = vec![0.5f32; 100];
        let b = vec![0.6f32; 100];
        assert!((psnr(&a, &b) - 20.0).abs() < 1e-5);
    }

    #[test]
    fn ssim_drops_with_noise_and_is_symmetric() {
        let img: Vec<f32> = (0..28 * 28).map(|i| if (i / 28) % 7 < 3 { 0.9 } else { 0.1 }).collect();
        let noisy: Vec<f32> = img.iter().enumerate().map(|(i, v)| v + if i % 3 == 0 { 0.2 } else { -0.1 }).collect();
        let s = ssim(&noisy, &img, 28, 28);
        assert!(s < 0.95 && s > 0.0, "{s}");
        assert!((s - ssim(&img, &noisy, 28, 28)).abs() < 1e-12);
    }
}
