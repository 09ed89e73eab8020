//! CPU twin of shaders/lpips.wgsl (f64): LPIPS's scaling layer and its per-tap distance.

/// y [n, 3, h, w] from x [n, in_ch, h, w] (in_ch 1 is repeated): ((x * a + b) - shift[c]) / scale[c].
pub fn lpips_input(x: &[f64], n: usize, in_ch: usize, hw: usize, a: f64, b: f64, shift: [f64; 3], scale: [f64; 3]) -> Vec<f64> {
    let mut y = Vec::with_capacity(n * 3 * hw);
    for img in 0..n {
        for c in 0..3 {
            let src = (img * in_ch + c.min(in_ch - 1)) * hw;
            y.extend(x[src..src + hw].iter().map(|v| (v * a + b - shift[c]) / scale[c]));
        }
    }
    y
}

/// Per image: the mean over pixels of sum_c head[c] (f0/(|f0|+eps) - f1/(|f1|+eps))^2.
pub fn lpips_distance(f0: &[f64], f1: &[f64], head: &[f64], n: usize, ch: usize, hw: usize, eps: f64) -> Vec<f64> {
    (0..n)
        .map(|img| {
            let at = |f: &[f64], c: usize, px: usize| f[(img * ch + c) * hw + px];
            let mut s = 0.0;
            for px in 0..hw {
                let n0 = (0..ch).map(|c| at(f0, c, px).powi(2)).sum::<f64>().sqrt() + eps;
                let n1 = (0..ch).map(|c| at(f1, c, px).powi(2)).sum::<f64>().sqrt() + eps;
                s += (0..ch).map(|c| head[c] * (at(f0, c, px) / n0 - at(f1, c, px) / n1).powi(2)).sum::<f64>();
            }
            s / hw as f64
        })
        .collect()
}
