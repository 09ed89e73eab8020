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

fn rng(n: &NoiseRef, i: u32, tag: u32) -> [u32; 4] {
    philox4x32_10([i, n.step, n.epoch, tag], [n.seed as u32, (n.seed >> 32) as u32])
}

fn level(n: &NoiseRef, b: u32) -> f64 {
    let u = uniform_from_u32(rng(n, b, 0)[0]);
    let s = match n.range {
        Some((lo, hi)) => lo + u * (hi - lo),
        None => n.levels[((u * n.levels.len() as f64) as usize).min(n.levels.len() - 1)],
    };
    s * n.level_scale
}

fn normal(r: [u32; 4]) -> f64 {
    let (u1, u2) = (uniform_from_u32(r[0]), uniform_from_u32(r[1]));
    (-2.0 * (1.0 - u1).ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

fn poisson(n: &NoiseRef, i: u32, lambda: f64) -> f64 {
    if lambda >= 30.0 {
        return (lambda + lambda.sqrt() * normal(rng(n, i, 1))).round().max(0.0);
    }
    let limit = (-lambda).exp();
    let (mut prod, mut k) = (1.0, 0.0);
    for j in 0..64 {
        let r = rng(n, i, 2 + j);
        for c in r {
            prod *= uniform_from_u32(c);
            if prod <= limit {
                return k;
            }
            k += 1.0;
        }
    }
    k
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
