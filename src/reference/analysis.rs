//! CPU twin of shaders/analysis.wgsl (f64), and the limitation scores built on such statistics.

/// (RMS 4-neighbour Laplacian, mean central-difference gradient magnitude) over the interior of
/// one h x w image.
pub fn image_stats(x: &[f64], h: usize, w: usize) -> (f64, f64) {
    let (mut lap, mut grad, mut n) = (0.0, 0.0, 0.0);
    for y in 1..h - 1 {
        for xx in 1..w - 1 {
            let c = y * w + xx;
            let l = x[c - w] + x[c + w] + x[c - 1] + x[c + 1] - 4.0 * x[c];
            lap += l * l;
            let (gx, gy) = (0.5 * (x[c + 1] - x[c - 1]), 0.5 * (x[c + w] - x[c - w]));
            grad += (gx * gx + gy * gy).sqrt();
            n += 1.0;
        }
    }
    ((lap / n).sqrt(), grad / n)
}

/// The smallest L2 distance from `q` to the images `idx` of a u8 dataset (len pixels each).
pub fn nearest(q: &[f64], dataset: &[u8], idx: &[u32], len: usize) -> f64 {
    idx.iter()
        .map(|&t| {
            let img = &dataset[t as usize * len..(t as usize + 1) * len];
            img.iter().zip(q).map(|(&v, q)| (v as f64 / 255.0 - q).powi(2)).sum::<f64>()
        })
        .fold(f64::INFINITY, f64::min)
        .sqrt()
}
