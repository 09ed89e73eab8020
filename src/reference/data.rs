//! CPU twin of shaders/data.wgsl: the batch gather and the Philox noise, same streams.

use super::philox::{philox4x32_10, uniform_from_u32};

#[derive(Clone, Debug)]
pub struct NoiseRef {
    /// 0 gaussian, 1 salt-and-pepper, 2 poisson, 3 speckle.
    pub noise: u32,
    pub seed: u64,
    pub epoch: u32,
    pub step: u32,
    /// Index of the first image in a larger set (0 in training): the counters use it.
    pub start: u32,
    pub levels: Vec<f64>,
    pub range: Option<(f64, f64)>,
    pub level_scale: f64,
    pub amount: f64,
    pub peak: f64,
    pub clip: Option<(f64, f64)>,
    pub in_scale: f64,
    pub in_shift: f64,
}

/// Pixels of `perm[start..start + batch]` from `dataset` (u8, image_len per image), in [0, 1].
pub fn data_gather(dataset: &[u8], perm: &[u32], start: usize, batch: usize, image_len: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(batch * image_len);
    for b in 0..batch {
        let img = perm[start + b] as usize;
        out.extend(dataset[img * image_len..(img + 1) * image_len].iter().map(|&v| v as f64 / 255.0));
    }
    out
}

/// The Philox draw `tag` of counter `i` (the kernel's `rng`).
pub fn rng(n: &NoiseRef, i: u32, tag: u32) -> [u32; 4] {
    philox4x32_10([i, n.step, n.epoch, tag], [n.seed as u32, (n.seed >> 32) as u32])
}

/// The noise level of sample `b` (the counter of its first pixel divided by the image length).
pub fn level(n: &NoiseRef, b: u32) -> f64 {
    let u = uniform_from_u32(rng(n, b, 0)[0]);
    let s = match n.range {
        Some((lo, hi)) => lo + u * (hi - lo),
        // u * len is exact in f64 (24 bits times at most 16), so this floor is the kernel's
        // integer one.
        None => n.levels[((u * n.levels.len() as f64) as usize).min(n.levels.len() - 1)],
    };
    s * n.level_scale
}

/// The parts of the kernel's standard normal from one draw: (u1, radius, cosine), where
/// radius = sqrt(-2 ln(1 - u1)), cosine = cos(pi (2 u2 - 1)) = -cos(2 pi u2), and the normal is
/// -radius * cosine (= radius * cos(2 pi u2), the textbook Box-Muller value).
pub fn normal_parts(r: [u32; 4]) -> (f64, f64, f64) {
    let (u1, u2) = (uniform_from_u32(r[0]), uniform_from_u32(r[1]));
    (u1, (-2.0 * (1.0 - u1).ln()).sqrt(), (std::f64::consts::PI * (2.0 * u2 - 1.0)).cos())
}

fn normal(r: [u32; 4]) -> f64 {
    let (_, rad, c) = normal_parts(r);
    -(rad * c)
}

/// One Poisson draw of the kernel and how near it came to the neighbouring counts.
#[derive(Clone, Copy, Debug)]
pub struct PoissonDraw {
    pub k: f64,
    /// How far the decision that would have made the draw k + 1 (`up`) or k - 1 (`down`) was
    /// from going the other way. Knuth's method (lambda below 30): |ln(prod / exp(-lambda))| at
    /// the step that decides it (the stopping step k + 1 for up, step k for down). Above:
    /// the distance of lambda + sqrt(lambda) z from the rounding boundary k + 1/2 (k - 1/2), in
    /// counts. Infinite where no decision can move it that way (k = 0 downwards).
    pub margin_up: f64,
    pub margin_down: f64,
    /// Above lambda 30 the normal's parts ([`normal_parts`]); None for Knuth's method.
    pub normal: Option<(f64, f64, f64)>,
}

/// The Poisson draw of counter `i` at rate `lambda`, as the kernel draws it.
pub fn poisson_draw(n: &NoiseRef, i: u32, lambda: f64) -> PoissonDraw {
    if lambda >= 30.0 {
        let parts = normal_parts(rng(n, i, 1));
        let v = lambda + lambda.sqrt() * -(parts.1 * parts.2);
        let k = v.round().max(0.0);
        let down = if k >= 1.0 { v - (k - 0.5) } else { f64::INFINITY };
        return PoissonDraw { k, margin_up: (k + 0.5) - v, margin_down: down, normal: Some(parts) };
    }
    let limit = (-lambda).exp();
    let (mut prod, mut k) = (1.0f64, 0.0);
    for j in 0..64 {
        let r = rng(n, i, 2 + j);
        for c in r {
            let before = prod;
            prod *= uniform_from_u32(c);
            if prod <= limit {
                let down = if k >= 1.0 { (before / limit).ln() } else { f64::INFINITY };
                return PoissonDraw { k, margin_up: (limit / prod).ln(), margin_down: down, normal: None };
            }
            k += 1.0;
        }
    }
    PoissonDraw { k, margin_up: f64::INFINITY, margin_down: (prod / limit).ln(), normal: None }
}

fn poisson(n: &NoiseRef, i: u32, lambda: f64) -> f64 {
    poisson_draw(n, i, lambda).k
}

/// The network input for `clean` [batch, image_len] under noise `n`.
pub fn data_noise(n: &NoiseRef, clean: &[f64], image_len: usize) -> Vec<f64> {
    clean
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            let i32_ = i as u32 + n.start * image_len as u32;
            let b = i32_ / image_len as u32;
            let mut y = match n.noise {
                1 => {
                    let r = rng(n, i32_, 1);
                    if uniform_from_u32(r[0]) < n.amount { if uniform_from_u32(r[1]) < 0.5 { 0.0 } else { 1.0 } } else { x }
                }
                2 => poisson(n, i32_, x.max(0.0) * n.peak) / n.peak,
                3 => x + x * level(n, b) * normal(rng(n, i32_, 1)),
                _ => x + level(n, b) * normal(rng(n, i32_, 1)),
            };
            if let Some((lo, hi)) = n.clip {
                y = y.clamp(lo, hi);
            }
            y * n.in_scale + n.in_shift
        })
        .collect()
}
