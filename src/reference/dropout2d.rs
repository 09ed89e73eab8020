//! Dropout2d (channel dropout): one keep/drop decision per (sample, channel), drawn
//! from Philox4x32-10 so the GPU reproduces the same mask; kept channels are
//! scaled by 1/(1-p). Layouts: mask [n, c]; x/y/dx/dy [n, c, hw].

use super::philox::{philox4x32_10, uniform_from_u32};

/// The last counter word of every dropout draw ("DROP"): keeps dropout's counters apart from the
/// noise kernels', whose last word is a small tag (0..65). Same constant in dropout2d.wgsl.
pub const DROPOUT_TAG: u32 = 0x4452_4F50;

pub fn dropout2d_mask(n: usize, c: usize, p: f64, seed: u64, stream: u64) -> Vec<f64> {
    assert!((0.0..=1.0).contains(&p), "dropout2d_mask: p = {p} outside [0, 1]");
    assert!(n * c == 0 || u32::try_from(n * c - 1).is_ok(), "dropout2d_mask: n*c does not fit the u32 counter");
    let key = [seed as u32, (seed >> 32) as u32];
    let mut mask = vec![0.0; n * c];
    for (i, m) in mask.iter_mut().enumerate() {
        let r = philox4x32_10([i as u32, stream as u32, (stream >> 32) as u32, DROPOUT_TAG], key);
        // u >= 0 always, so p == 0 keeps everything with scale 1, and u < 1
        // always, so p == 1 drops everything (the 1/0 scale is never used).
        if uniform_from_u32(r[0]) >= p {
            *m = 1.0 / (1.0 - p);
        }
    }
    mask
}

fn apply(what: &str, n: usize, c: usize, hw: usize, p: f64, seed: u64, stream: u64, v: &[f64]) -> Vec<f64> {
    assert_eq!(v.len(), n * c * hw, "{what}: length for n={n} c={c} hw={hw}");
    let mask = dropout2d_mask(n, c, p, seed, stream);
    let mut out = vec![0.0; v.len()];
    for (plane, &m) in mask.iter().enumerate() {
        for i in 0..hw {
            out[plane * hw + i] = v[plane * hw + i] * m;
        }
    }
    out
}

pub fn dropout2d_forward(n: usize, c: usize, hw: usize, p: f64, seed: u64, stream: u64, x: &[f64]) -> Vec<f64> {
    apply("dropout2d_forward", n, c, hw, p, seed, stream, x)
}

/// The mask is regenerated from (seed, stream) rather than stored.
pub fn dropout2d_backward(n: usize, c: usize, hw: usize, p: f64, seed: u64, stream: u64, dy: &[f64]) -> Vec<f64> {
    apply("dropout2d_backward", n, c, hw, p, seed, stream, dy)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::fd::{Rng, check_grad, dot};

    #[test]
    fn mask_follows_the_documented_stream() {
        let (n, c, p) = (3, 5, 0.3);
        let (seed, stream) = (0x0123_4567_89ab_cdef_u64, 0xfeed_0000_0007_u64);
        let mask = dropout2d_mask(n, c, p, seed, stream);
        for ni in 0..n {
            for ci in 0..c {
                let i = ni * c + ci;
                let r = philox4x32_10([i as u32, 0x0000_0007, 0xfeed, DROPOUT_TAG], [0x89ab_cdef, 0x0123_4567]);
                let want = if uniform_from_u32(r[0]) >= p { 1.0 / 0.7 } else { 0.0 };
                assert_eq!(mask[i], want);
            }
        }
    }

    #[test]
    fn mask_statistics_and_edge_probabilities() {
        assert!(dropout2d_mask(4, 6, 0.0, 1, 2).iter().all(|&m| m == 1.0));
        assert!(dropout2d_mask(4, 6, 1.0, 1, 2).iter().all(|&m| m == 0.0));
        let p = 0.25;
        let mask = dropout2d_mask(100, 1000, p, 42, 0);
        assert!(mask.iter().all(|&m| m == 0.0 || m == 1.0 / (1.0 - p)));
        let dropped = mask.iter().filter(|&&m| m == 0.0).count() as f64 / mask.len() as f64;
        // 5 standard deviations of a binomial proportion over 1e5 draws.
        assert!((dropped - p).abs() < 5.0 * (p * (1.0 - p) / 1e5f64).sqrt(), "dropped fraction {dropped}");
        // Seed and stream both change the mask; the same pair repeats it.
        assert_eq!(mask, dropout2d_mask(100, 1000, p, 42, 0));
        assert_ne!(mask, dropout2d_mask(100, 1000, p, 43, 0));
        assert_ne!(mask, dropout2d_mask(100, 1000, p, 42, 1));
        assert_ne!(mask, dropout2d_mask(100, 1000, p, 42, 1 << 32));
    }

    #[test]
    fn forward_scales_whole_channels() {
        let (n, c, hw, p) = (2, 3, 4, 0.5);
        let x: Vec<f64> = (0..n * c * hw).map(|v| v as f64 + 1.0).collect();
        let y = dropout2d_forward(n, c, hw, p, 7, 3, &x);
        let mask = dropout2d_mask(n, c, p, 7, 3);
        for (plane, &m) in mask.iter().enumerate() {
            for i in 0..hw {
                assert_eq!(y[plane * hw + i], x[plane * hw + i] * m);
            }
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        let (n, c, hw, p) = (3, 5, 7 * 7, 0.4);
        let mut rng = Rng::new(1);
        let x = rng.vec(n * c * hw);
        let g = rng.vec(x.len());
        let dx = dropout2d_backward(n, c, hw, p, 11, 5, &g);
        check_grad("dropout2d", &x, &dx, |x| dot(&dropout2d_forward(n, c, hw, p, 11, 5, x), &g));
    }
}
