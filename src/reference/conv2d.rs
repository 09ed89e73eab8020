//! 2-D convolution as PyTorch Conv2d computes it (cross-correlation, zero padding,
//! no dilation, groups = 1) and its gradients with respect to input and weights.
//! Layouts, row-major: x/dx [n, cin, h, w], w/dw [cout, cin, kh, kw], b [cout],
//! y/dy [n, cout, ho, wo]. The bias gradient is `elementwise::bias_add_backward`.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dShape {
    pub n: usize,
    pub cin: usize,
    pub h: usize,
    pub w: usize,
    pub cout: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: (usize, usize),
    pub pad: (usize, usize),
}

impl Conv2dShape {
    pub fn out_hw(&self) -> (usize, usize) {
        assert!(self.stride.0 > 0 && self.stride.1 > 0, "conv2d: stride must be positive: {self:?}");
        assert!(
            self.kh > 0 && self.kw > 0 && self.h + 2 * self.pad.0 >= self.kh && self.w + 2 * self.pad.1 >= self.kw,
            "conv2d: kernel does not fit the padded input: {self:?}"
        );
        ((self.h + 2 * self.pad.0 - self.kh) / self.stride.0 + 1, (self.w + 2 * self.pad.1 - self.kw) / self.stride.1 + 1)
    }

    fn check_lens(&self, what: &str, x: Option<usize>, w: Option<usize>, y: Option<usize>) {
        let (ho, wo) = self.out_hw();
        if let Some(len) = x {
            assert_eq!(len, self.n * self.cin * self.h * self.w, "{what}: x/dx length for {self:?}");
        }
        if let Some(len) = w {
            assert_eq!(len, self.cout * self.cin * self.kh * self.kw, "{what}: w length for {self:?}");
        }
        if let Some(len) = y {
            assert_eq!(len, self.n * self.cout * ho * wo, "{what}: y/dy length for {self:?}");
        }
    }
}

/// Input coordinate read by output `o` through kernel tap `k`, or None when the
/// tap lands in the zero padding.
fn src_index(o: usize, k: usize, stride: usize, pad: usize, len: usize) -> Option<usize> {
    (o * stride + k).checked_sub(pad).filter(|&i| i < len)
}

/// Output coordinate that reads input `i` through kernel tap `k`, if any: the
/// inverse of `src_index`, which only exists when the stride divides evenly.
fn dst_index(i: usize, k: usize, stride: usize, pad: usize, out_len: usize) -> Option<usize> {
    let p = (i + pad).checked_sub(k)?;
    if p % stride != 0 {
        return None;
    }
    Some(p / stride).filter(|&o| o < out_len)
}

pub fn conv2d_forward(s: &Conv2dShape, x: &[f64], w: &[f64], b: Option<&[f64]>) -> Vec<f64> {
    s.check_lens("conv2d_forward", Some(x.len()), Some(w.len()), None);
    if let Some(b) = b {
        assert_eq!(b.len(), s.cout, "conv2d_forward: bias length for {s:?}");
    }
    let (ho, wo) = s.out_hw();
    let mut y = vec![0.0; s.n * s.cout * ho * wo];
    for n in 0..s.n {
        for co in 0..s.cout {
            for oy in 0..ho {
                for ox in 0..wo {
                    let mut acc = 0.0;
                    for ci in 0..s.cin {
                        for ky in 0..s.kh {
                            let Some(iy) = src_index(oy, ky, s.stride.0, s.pad.0, s.h) else {
                                continue;
                            };
                            for kx in 0..s.kw {
                                let Some(ix) = src_index(ox, kx, s.stride.1, s.pad.1, s.w) else {
                                    continue;
                                };
                                acc += x[((n * s.cin + ci) * s.h + iy) * s.w + ix] * w[((co * s.cin + ci) * s.kh + ky) * s.kw + kx];
                            }
                        }
                    }
                    y[((n * s.cout + co) * ho + oy) * wo + ox] = acc + b.map_or(0.0, |b| b[co]);
                }
            }
        }
    }
    y
}

/// Gather form: each dx element sums the dy elements whose windows covered it.
/// This is deliberately not the scatter loop of conv_transpose2d_forward, so the
/// two formulations check each other.
pub fn conv2d_input_grad(s: &Conv2dShape, w: &[f64], dy: &[f64]) -> Vec<f64> {
    s.check_lens("conv2d_input_grad", None, Some(w.len()), Some(dy.len()));
    let (ho, wo) = s.out_hw();
    let mut dx = vec![0.0; s.n * s.cin * s.h * s.w];
    for n in 0..s.n {
        for ci in 0..s.cin {
            for iy in 0..s.h {
                for ix in 0..s.w {
                    let mut acc = 0.0;
                    for co in 0..s.cout {
                        for ky in 0..s.kh {
                            let Some(oy) = dst_index(iy, ky, s.stride.0, s.pad.0, ho) else {
                                continue;
                            };
                            for kx in 0..s.kw {
                                let Some(ox) = dst_index(ix, kx, s.stride.1, s.pad.1, wo) else {
                                    continue;
                                };
                                acc += dy[((n * s.cout + co) * ho + oy) * wo + ox] * w[((co * s.cin + ci) * s.kh + ky) * s.kw + kx];
                            }
                        }
                    }
                    dx[((n * s.cin + ci) * s.h + iy) * s.w + ix] = acc;
                }
            }
        }
    }
    dx
}

pub fn conv2d_weight_grad(s: &Conv2dShape, x: &[f64], dy: &[f64]) -> Vec<f64> {
    s.check_lens("conv2d_weight_grad", Some(x.len()), None, Some(dy.len()));
    let (ho, wo) = s.out_hw();
    let mut dw = vec![0.0; s.cout * s.cin * s.kh * s.kw];
    for co in 0..s.cout {
        for ci in 0..s.cin {
            for ky in 0..s.kh {
                for kx in 0..s.kw {
                    let mut acc = 0.0;
                    for n in 0..s.n {
                        for oy in 0..ho {
                            let Some(iy) = src_index(oy, ky, s.stride.0, s.pad.0, s.h) else {
                                continue;
                            };
                            for ox in 0..wo {
                                let Some(ix) = src_index(ox, kx, s.stride.1, s.pad.1, s.w) else {
                                    continue;
                                };
                                acc += dy[((n * s.cout + co) * ho + oy) * wo + ox] * x[((n * s.cin + ci) * s.h + iy) * s.w + ix];
                            }
                        }
                    }
                    dw[((co * s.cin + ci) * s.kh + ky) * s.kw + kx] = acc;
                }
            }
        }
    }
    dw
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::elementwise::bias_add_backward;
    use crate::reference::fd::{Rng, assert_close, check_grad, dot};

    fn shape(n: usize, cin: usize, h: usize, w: usize, cout: usize, k: (usize, usize), stride: (usize, usize), pad: (usize, usize)) -> Conv2dShape {
        Conv2dShape { n, cin, h, w, cout, kh: k.0, kw: k.1, stride, pad }
    }

    #[test]
    fn out_hw_matches_pytorch_formula() {
        assert_eq!(shape(1, 1, 7, 7, 1, (3, 3), (1, 1), (1, 1)).out_hw(), (7, 7));
        assert_eq!(shape(1, 1, 13, 11, 1, (3, 3), (2, 2), (1, 1)).out_hw(), (7, 6));
        assert_eq!(shape(1, 1, 8, 8, 1, (4, 4), (2, 2), (1, 1)).out_hw(), (4, 4));
        assert_eq!(shape(1, 1, 5, 5, 1, (5, 5), (1, 1), (0, 0)).out_hw(), (1, 1));
    }

    #[test]
    fn forward_known_sobel() {
        // Not flipped: PyTorch conv is cross-correlation.
        let x: Vec<f64> = (1..=9).map(|v| v as f64).collect();
        let w = [1.0, 0.0, -1.0, 2.0, 0.0, -2.0, 1.0, 0.0, -1.0];
        let s = shape(1, 1, 3, 3, 1, (3, 3), (1, 1), (1, 1));
        let y = conv2d_forward(&s, &x, &w, Some(&[0.5]));
        let want = [-8.5, -5.5, 9.5, -19.5, -7.5, 20.5, -20.5, -5.5, 21.5];
        assert_close("sobel stride 1", &y, &want, 1e-12);

        let s2 = shape(1, 1, 3, 3, 1, (3, 3), (2, 2), (1, 1));
        let y2 = conv2d_forward(&s2, &x, &w, Some(&[0.5]));
        assert_close("sobel stride 2", &y2, &[-8.5, 9.5, -20.5, 21.5], 1e-12);
    }

    #[test]
    fn forward_sums_over_input_channels() {
        // Two input channels with 1x1 weights (2, -1) and two output channels.
        let s = shape(1, 2, 1, 2, 2, (1, 1), (1, 1), (0, 0));
        let x = [1.0, 2.0, 10.0, 20.0];
        let w = [2.0, -1.0, 0.0, 1.0];
        let y = conv2d_forward(&s, &x, &w, None);
        assert_close("channel sum", &y, &[-8.0, -16.0, 10.0, 20.0], 0.0);
    }

    fn grad_check(s: Conv2dShape, seed: u64) {
        let mut rng = Rng::new(seed);
        let (ho, wo) = s.out_hw();
        let x = rng.vec(s.n * s.cin * s.h * s.w);
        let w = rng.vec(s.cout * s.cin * s.kh * s.kw);
        let b = rng.vec(s.cout);
        let g = rng.vec(s.n * s.cout * ho * wo);

        let dx = conv2d_input_grad(&s, &w, &g);
        let dw = conv2d_weight_grad(&s, &x, &g);
        let db = bias_add_backward(s.n, s.cout, ho * wo, &g);
        check_grad(&format!("conv2d dx {s:?}"), &x, &dx, |x| dot(&conv2d_forward(&s, x, &w, Some(&b)), &g));
        check_grad(&format!("conv2d dw {s:?}"), &w, &dw, |w| dot(&conv2d_forward(&s, &x, w, Some(&b)), &g));
        check_grad(&format!("conv2d db {s:?}"), &b, &db, |b| dot(&conv2d_forward(&s, &x, &w, Some(b)), &g));
    }

    #[test]
    fn gradients_match_finite_differences() {
        grad_check(shape(1, 3, 7, 7, 5, (3, 3), (1, 1), (1, 1)), 1);
        grad_check(shape(3, 5, 13, 11, 6, (3, 3), (2, 2), (1, 1)), 2);
        grad_check(shape(3, 3, 7, 7, 5, (3, 3), (2, 2), (0, 0)), 3);
        grad_check(shape(2, 6, 9, 8, 3, (4, 4), (2, 2), (1, 1)), 4);
        grad_check(shape(1, 5, 13, 11, 3, (5, 3), (2, 1), (2, 1)), 5);
        grad_check(shape(3, 5, 3, 3, 6, (1, 1), (1, 1), (0, 0)), 6);
        grad_check(shape(1, 3, 7, 7, 3, (3, 3), (1, 1), (2, 2)), 7);
    }
}
