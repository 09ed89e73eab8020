//! 2-D max pooling as PyTorch MaxPool2d computes it with no padding, no dilation and
//! floor mode. Ties keep the first maximum in row-major window order (a later value
//! must be strictly greater), and a NaN takes over like PyTorch's `val > max || isnan(val)`.
//! Layouts: x/dx [n, c, h, w], y/dy/idx [n, c, ho, wo]; idx = iy * w + ix within the plane.

fn out_hw(h: usize, w: usize, k: (usize, usize), stride: (usize, usize)) -> (usize, usize) {
    assert!(stride.0 > 0 && stride.1 > 0, "maxpool2d: stride must be positive");
    assert!(k.0 > 0 && k.1 > 0 && k.0 <= h && k.1 <= w, "maxpool2d: kernel {k:?} does not fit {h}x{w}");
    ((h - k.0) / stride.0 + 1, (w - k.1) / stride.1 + 1)
}

pub fn maxpool2d_forward(n: usize, c: usize, h: usize, w: usize, k: (usize, usize), stride: (usize, usize), x: &[f64]) -> (Vec<f64>, Vec<u32>) {
    assert_eq!(x.len(), n * c * h * w, "maxpool2d_forward: x length for n={n} c={c} h={h} w={w}");
    assert!(h * w <= u32::MAX as usize, "maxpool2d_forward: plane too large for u32 indices");
    let (ho, wo) = out_hw(h, w, k, stride);
    let mut y = vec![0.0; n * c * ho * wo];
    let mut idx = vec![0u32; n * c * ho * wo];
    for plane in 0..n * c {
        let xp = &x[plane * h * w..(plane + 1) * h * w];
        for oy in 0..ho {
            for ox in 0..wo {
                let (y0, x0) = (oy * stride.0, ox * stride.1);
                let mut best = f64::NEG_INFINITY;
                let mut best_i = y0 * w + x0;
                for ky in 0..k.0 {
                    for kx in 0..k.1 {
                        let i = (y0 + ky) * w + x0 + kx;
                        if xp[i] > best || xp[i].is_nan() {
                            best = xp[i];
                            best_i = i;
                        }
                    }
                }
                let o = (plane * ho + oy) * wo + ox;
                y[o] = best;
                idx[o] = best_i as u32;
            }
        }
    }
    (y, idx)
}

/// Routes each dy to its recorded argmax; overlapping windows (stride < kernel)
/// can pick the same input, so contributions accumulate.
pub fn maxpool2d_backward(n: usize, c: usize, h: usize, w: usize, k: (usize, usize), stride: (usize, usize), idx: &[u32], dy: &[f64]) -> Vec<f64> {
    let (ho, wo) = out_hw(h, w, k, stride);
    assert_eq!(dy.len(), n * c * ho * wo, "maxpool2d_backward: dy length");
    assert_eq!(idx.len(), dy.len(), "maxpool2d_backward: idx length");
    let mut dx = vec![0.0; n * c * h * w];
    for plane in 0..n * c {
        for o in 0..ho * wo {
            let i = idx[plane * ho * wo + o] as usize;
            assert!(i < h * w, "maxpool2d_backward: index {i} outside a {h}x{w} plane");
            dx[plane * h * w + i] += dy[plane * ho * wo + o];
        }
    }
    dx
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::fd::{Rng, check_grad, dot};

    #[test]
    fn forward_known_values() {
        let x: Vec<f64> = (0..16).map(|v| v as f64).collect();
        let (y, idx) = maxpool2d_forward(1, 1, 4, 4, (2, 2), (2, 2), &x);
        assert_eq!(y, vec![5.0, 7.0, 13.0, 15.0]);
        assert_eq!(idx, vec![5, 7, 13, 15]);

        // Floor mode: a 5x5 input with 2x2/2 drops the last row and column.
        let x: Vec<f64> = (0..25).map(|v| -(v as f64)).collect();
        let (y, idx) = maxpool2d_forward(1, 1, 5, 5, (2, 2), (2, 2), &x);
        assert_eq!(y, vec![0.0, -2.0, -10.0, -12.0]);
        assert_eq!(idx, vec![0, 2, 10, 12]);
    }

    #[test]
    fn ties_pick_first_in_row_major_order() {
        // Window values [1, 3; 3, 3]: the first 3 (flat index 1) wins.
        let x = [1.0, 3.0, 3.0, 3.0];
        let (_, idx) = maxpool2d_forward(1, 1, 2, 2, (2, 2), (2, 2), &x);
        assert_eq!(idx, vec![1]);
        let (_, idx) = maxpool2d_forward(1, 1, 2, 2, (2, 2), (1, 1), &[-1.0; 4]);
        assert_eq!(idx, vec![0]);
        let (y, idx) = maxpool2d_forward(1, 1, 2, 2, (2, 2), (1, 1), &[1.0, f64::NAN, 5.0, 2.0]);
        assert!(y[0].is_nan() && idx == vec![1]);
    }

    #[test]
    fn overlapping_windows_accumulate() {
        // 1x3 input, 1x2 kernel, stride 1: the centre max is picked twice.
        let (_, idx) = maxpool2d_forward(1, 1, 1, 3, (1, 2), (1, 1), &[0.0, 9.0, 1.0]);
        let dx = maxpool2d_backward(1, 1, 1, 3, (1, 2), (1, 1), &idx, &[2.0, 5.0]);
        assert_eq!(dx, vec![0.0, 7.0, 0.0]);
    }

    fn grad_check(n: usize, c: usize, h: usize, w: usize, k: (usize, usize), stride: (usize, usize), seed: u64) {
        let mut rng = Rng::new(seed);
        let x = rng.distinct(n * c * h * w);
        let (y, idx) = maxpool2d_forward(n, c, h, w, k, stride, &x);
        let g = rng.vec(y.len());
        let dx = maxpool2d_backward(n, c, h, w, k, stride, &idx, &g);
        check_grad(&format!("maxpool n={n} c={c} {h}x{w} k={k:?} s={stride:?}"), &x, &dx, |x| {
            dot(&maxpool2d_forward(n, c, h, w, k, stride, x).0, &g)
        });
    }

    #[test]
    fn gradients_match_finite_differences() {
        grad_check(1, 3, 8, 8, (2, 2), (2, 2), 1);
        grad_check(3, 5, 7, 7, (2, 2), (2, 2), 2);
        grad_check(3, 5, 13, 11, (3, 3), (2, 2), 3);
        grad_check(1, 6, 7, 7, (3, 2), (1, 2), 4);
    }
}
