//! Constant-zero 2-D padding (F.pad(x, (left, right, top, bottom))) and its adjoint,
//! which crops the gradient back to the interior.
//! Layouts: x/dx [n, c, h, w], y/dy [n, c, h + top + bottom, w + left + right].

fn out_hw(h: usize, w: usize, pads: (usize, usize, usize, usize)) -> (usize, usize) {
    let (left, right, top, bottom) = pads;
    (h + top + bottom, w + left + right)
}

pub fn pad2d_forward(n: usize, c: usize, h: usize, w: usize, pads: (usize, usize, usize, usize), x: &[f64]) -> Vec<f64> {
    assert_eq!(x.len(), n * c * h * w, "pad2d_forward: x length for n={n} c={c} h={h} w={w}");
    let (left, _, top, _) = pads;
    let (ho, wo) = out_hw(h, w, pads);
    let mut y = vec![0.0; n * c * ho * wo];
    for plane in 0..n * c {
        for iy in 0..h {
            for ix in 0..w {
                y[(plane * ho + iy + top) * wo + ix + left] = x[(plane * h + iy) * w + ix];
            }
        }
    }
    y
}

pub fn pad2d_backward(n: usize, c: usize, h: usize, w: usize, pads: (usize, usize, usize, usize), dy: &[f64]) -> Vec<f64> {
    let (left, _, top, _) = pads;
    let (ho, wo) = out_hw(h, w, pads);
    assert_eq!(dy.len(), n * c * ho * wo, "pad2d_backward: dy length for n={n} c={c} {ho}x{wo}");
    let mut dx = vec![0.0; n * c * h * w];
    for plane in 0..n * c {
        for iy in 0..h {
            for ix in 0..w {
                dx[(plane * h + iy) * w + ix] = dy[(plane * ho + iy + top) * wo + ix + left];
            }
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
        // (left, right, top, bottom) = (1, 0, 0, 2) on [[1, 2], [3, 4]].
        let y = pad2d_forward(1, 1, 2, 2, (1, 0, 0, 2), &[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(y, vec![0.0, 1.0, 2.0, 0.0, 3.0, 4.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
        // Second plane starts right after the first padded plane.
        let y = pad2d_forward(2, 1, 1, 1, (0, 1, 1, 0), &[5.0, 6.0]);
        assert_eq!(y, vec![0.0, 0.0, 5.0, 0.0, 0.0, 0.0, 6.0, 0.0]);
    }

    #[test]
    fn gradients_match_finite_differences() {
        for (i, &(n, c, h, w, pads)) in [(1, 3, 7, 7, (1, 1, 1, 1)), (3, 5, 13, 11, (0, 2, 1, 0)), (1, 6, 3, 3, (2, 0, 0, 1))].iter().enumerate() {
            let mut rng = Rng::new(i as u64);
            let x = rng.vec(n * c * h * w);
            let (ho, wo) = out_hw(h, w, pads);
            let g = rng.vec(n * c * ho * wo);
            let dx = pad2d_backward(n, c, h, w, pads, &g);
            check_grad(&format!("pad2d {h}x{w} {pads:?}"), &x, &dx, |x| dot(&pad2d_forward(n, c, h, w, pads, x), &g));
        }
    }
}
