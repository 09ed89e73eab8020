//! 2-D transposed convolution as PyTorch ConvTranspose2d computes it (no dilation,
//! groups = 1), written from its scatter definition rather than via conv2d.
//! Layouts, row-major: x/dx [n, cin, h, w], w/dw [cin, cout, kh, kw] (PyTorch's
//! order), b [cout], y/dy [n, cout, ho, wo].

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvTranspose2dShape {
    pub n: usize,
    pub cin: usize,
    pub h: usize,
    pub w: usize,
    pub cout: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: (usize, usize),
    pub pad: (usize, usize),
    pub output_pad: (usize, usize),
}

impl ConvTranspose2dShape {
    pub fn out_hw(&self) -> (usize, usize) {
        assert!(self.stride.0 > 0 && self.stride.1 > 0, "conv_transpose2d: stride must be positive: {self:?}");
        // PyTorch (dilation 1) rejects output_padding >= stride.
        assert!(
            self.output_pad.0 < self.stride.0 && self.output_pad.1 < self.stride.1,
            "conv_transpose2d: output_pad must be smaller than stride: {self:?}"
        );
        assert!(self.h > 0 && self.w > 0, "conv_transpose2d: empty input: {self:?}");
        let full_h = (self.h - 1) * self.stride.0 + self.kh + self.output_pad.0;
        let full_w = (self.w - 1) * self.stride.1 + self.kw + self.output_pad.1;
        assert!(full_h > 2 * self.pad.0 && full_w > 2 * self.pad.1, "conv_transpose2d: padding leaves no output: {self:?}");
        (full_h - 2 * self.pad.0, full_w - 2 * self.pad.1)
    }

    fn check_lens(&self, what: &str, x: Option<usize>, w: Option<usize>, y: Option<usize>) {
        let (ho, wo) = self.out_hw();
        if let Some(len) = x {
            assert_eq!(len, self.n * self.cin * self.h * self.w, "{what}: x/dx length for {self:?}");
        }
        if let Some(len) = w {
            assert_eq!(len, self.cin * self.cout * self.kh * self.kw, "{what}: w length for {self:?}");
        }
        if let Some(len) = y {
            assert_eq!(len, self.n * self.cout * ho * wo, "{what}: y/dy length for {self:?}");
        }
    }
}

/// Output coordinate that input `i` writes through kernel tap `k`, or None when
/// it falls outside the output (cropped by `pad`, or past the end).
fn out_index(i: usize, k: usize, stride: usize, pad: usize, out_len: usize) -> Option<usize> {
    (i * stride + k).checked_sub(pad).filter(|&o| o < out_len)
}

pub fn conv_transpose2d_forward(s: &ConvTranspose2dShape, x: &[f64], w: &[f64], b: Option<&[f64]>) -> Vec<f64> {
    s.check_lens("conv_transpose2d_forward", Some(x.len()), Some(w.len()), None);
    if let Some(b) = b {
        assert_eq!(b.len(), s.cout, "conv_transpose2d_forward: bias length for {s:?}");
    }
    let (ho, wo) = s.out_hw();
    let mut y = vec![0.0; s.n * s.cout * ho * wo];
    if let Some(b) = b {
        for n in 0..s.n {
            for co in 0..s.cout {
                let plane = (n * s.cout + co) * ho * wo;
                y[plane..plane + ho * wo].fill(b[co]);
            }
        }
    }
    // Every input pixel stamps its kernel, scaled by its value, onto the uncropped
    // canvas; `pad` crops top/left and bottom/right, output_pad gives back rows/cols
    // at the bottom/right only, so out_index just shifts by pad and bounds-checks.
    for n in 0..s.n {
        for ci in 0..s.cin {
            for iy in 0..s.h {
                for ix in 0..s.w {
                    let xv = x[((n * s.cin + ci) * s.h + iy) * s.w + ix];
                    for co in 0..s.cout {
                        for ky in 0..s.kh {
                            let Some(oy) = out_index(iy, ky, s.stride.0, s.pad.0, ho) else {
                                continue;
                            };
                            for kx in 0..s.kw {
                                let Some(ox) = out_index(ix, kx, s.stride.1, s.pad.1, wo) else {
                                    continue;
                                };
                                y[((n * s.cout + co) * ho + oy) * wo + ox] += xv * w[((ci * s.cout + co) * s.kh + ky) * s.kw + kx];
                            }
                        }
                    }
                }
            }
        }
    }
    y
}

/// Adjoint of the scatter: each input pixel reads back exactly the outputs it wrote.
pub fn conv_transpose2d_input_grad(s: &ConvTranspose2dShape, w: &[f64], dy: &[f64]) -> Vec<f64> {
    s.check_lens("conv_transpose2d_input_grad", None, Some(w.len()), Some(dy.len()));
    let (ho, wo) = s.out_hw();
    let mut dx = vec![0.0; s.n * s.cin * s.h * s.w];
    for n in 0..s.n {
        for ci in 0..s.cin {
            for iy in 0..s.h {
                for ix in 0..s.w {
                    let mut acc = 0.0;
                    for co in 0..s.cout {
                        for ky in 0..s.kh {
                            let Some(oy) = out_index(iy, ky, s.stride.0, s.pad.0, ho) else {
                                continue;
                            };
                            for kx in 0..s.kw {
                                let Some(ox) = out_index(ix, kx, s.stride.1, s.pad.1, wo) else {
                                    continue;
                                };
                                acc += dy[((n * s.cout + co) * ho + oy) * wo + ox] * w[((ci * s.cout + co) * s.kh + ky) * s.kw + kx];
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

pub fn conv_transpose2d_weight_grad(s: &ConvTranspose2dShape, x: &[f64], dy: &[f64]) -> Vec<f64> {
    s.check_lens("conv_transpose2d_weight_grad", Some(x.len()), None, Some(dy.len()));
    let (ho, wo) = s.out_hw();
    let mut dw = vec![0.0; s.cin * s.cout * s.kh * s.kw];
    for ci in 0..s.cin {
        for co in 0..s.cout {
            for ky in 0..s.kh {
                for kx in 0..s.kw {
                    let mut acc = 0.0;
                    for n in 0..s.n {
                        for iy in 0..s.h {
                            let Some(oy) = out_index(iy, ky, s.stride.0, s.pad.0, ho) else {
                                continue;
                            };
                            for ix in 0..s.w {
                                let Some(ox) = out_index(ix, kx, s.stride.1, s.pad.1, wo) else {
                                    continue;
                                };
                                acc += x[((n * s.cin + ci) * s.h + iy) * s.w + ix] * dy[((n * s.cout + co) * ho + oy) * wo + ox];
                            }
                        }
                    }
                    dw[((ci * s.cout + co) * s.kh + ky) * s.kw + kx] = acc;
                }
            }
        }
    }
    dw
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::conv2d::{Conv2dShape, conv2d_input_grad};
    use crate::reference::elementwise::bias_add_backward;
    use crate::reference::fd::{Rng, assert_close, check_grad, dot};

    fn shape(
        n: usize,
        cin: usize,
        h: usize,
        w: usize,
        cout: usize,
        k: (usize, usize),
        stride: (usize, usize),
        pad: (usize, usize),
        output_pad: (usize, usize),
    ) -> ConvTranspose2dShape {
        ConvTranspose2dShape { n, cin, h, w, cout, kh: k.0, kw: k.1, stride, pad, output_pad }
    }

    fn configs() -> Vec<ConvTranspose2dShape> {
        vec![
            shape(1, 3, 7, 7, 5, (3, 3), (1, 1), (1, 1), (0, 0)),
            // The usual x2 decoder upsample: 3x3, stride 2, pad 1, output_pad 1.
            shape(3, 5, 6, 5, 6, (3, 3), (2, 2), (1, 1), (1, 1)),
            shape(2, 6, 5, 7, 3, (4, 4), (2, 2), (1, 1), (0, 0)),
            shape(1, 5, 4, 3, 3, (5, 3), (2, 3), (2, 0), (1, 2)),
            shape(3, 3, 3, 3, 5, (2, 2), (2, 2), (0, 0), (0, 0)),
            shape(1, 3, 7, 7, 3, (3, 3), (1, 1), (0, 0), (0, 0)),
        ]
    }

    #[test]
    fn out_hw_matches_pytorch_formula() {
        assert_eq!(configs()[0].out_hw(), (7, 7));
        assert_eq!(configs()[1].out_hw(), (12, 10));
        assert_eq!(configs()[2].out_hw(), (10, 14));
        assert_eq!(configs()[3].out_hw(), (3 * 2 + 5 + 1 - 4, 2 * 3 + 3 + 2));
        assert_eq!(configs()[4].out_hw(), (6, 6));
    }

    #[test]
    fn forward_known_values() {
        // Stride 1, no padding: the full (true) convolution of [[1,2],[3,4]] with itself.
        let x = [1.0, 2.0, 3.0, 4.0];
        let s = shape(1, 1, 2, 2, 1, (2, 2), (1, 1), (0, 0), (0, 0));
        let y = conv_transpose2d_forward(&s, &x, &x, None);
        assert_close("full conv", &y, &[1.0, 4.0, 4.0, 6.0, 20.0, 16.0, 9.0, 24.0, 16.0], 0.0);

        // pad 1 crops one pixel from every side.
        let s = shape(1, 1, 2, 2, 1, (2, 2), (1, 1), (1, 1), (0, 0));
        assert_close("cropped", &conv_transpose2d_forward(&s, &x, &x, None), &[20.0], 0.0);

        // Stride 2 with a 2x2 kernel of ones: each pixel becomes a 2x2 block.
        let s = shape(1, 1, 2, 2, 1, (2, 2), (2, 2), (0, 0), (0, 0));
        let y = conv_transpose2d_forward(&s, &x, &[1.0; 4], Some(&[0.5]));
        let want = [1.0, 1.0, 2.0, 2.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0, 3.0, 3.0, 4.0, 4.0];
        let want: Vec<f64> = want.iter().map(|v| v + 0.5).collect();
        assert_close("stride 2 blocks", &y, &want, 0.0);

        // output_pad adds a last row/col that no input reaches: bias only.
        let s = shape(1, 1, 1, 1, 1, (1, 1), (2, 2), (0, 0), (1, 1));
        assert_close("output_pad", &conv_transpose2d_forward(&s, &[3.0], &[2.0], Some(&[1.0])), &[7.0, 1.0, 1.0, 1.0], 0.0);
    }

    #[test]
    fn weight_layout_is_cin_cout() {
        // w[ci=1, co=0] = 5 must route input channel 1 to output channel 0.
        let s = shape(1, 2, 1, 1, 2, (1, 1), (1, 1), (0, 0), (0, 0));
        let w = [0.0, 0.0, 5.0, 0.0];
        let y = conv_transpose2d_forward(&s, &[1.0, 2.0], &w, None);
        assert_close("layout", &y, &[10.0, 0.0], 0.0);
    }

    #[test]
    fn forward_equals_conv2d_input_grad() {
        // ConvTranspose2d(cin -> cout) is the input gradient of Conv2d(cout -> cin)
        // with the very same weight buffer, which the GPU relies on.
        for (i, t) in configs().into_iter().enumerate() {
            let mut rng = Rng::new(100 + i as u64);
            let (ho, wo) = t.out_hw();
            let c = Conv2dShape { n: t.n, cin: t.cout, h: ho, w: wo, cout: t.cin, kh: t.kh, kw: t.kw, stride: t.stride, pad: t.pad };
            assert_eq!(c.out_hw(), (t.h, t.w), "shapes must line up for {t:?}");
            let x = rng.vec(t.n * t.cin * t.h * t.w);
            let w = rng.vec(t.cin * t.cout * t.kh * t.kw);
            let y = conv_transpose2d_forward(&t, &x, &w, None);
            let dx = conv2d_input_grad(&c, &w, &x);
            assert_close(&format!("identity {t:?}"), &y, &dx, 1e-12);
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        for (i, s) in configs().into_iter().enumerate() {
            let mut rng = Rng::new(i as u64 + 1);
            let (ho, wo) = s.out_hw();
            let x = rng.vec(s.n * s.cin * s.h * s.w);
            let w = rng.vec(s.cin * s.cout * s.kh * s.kw);
            let b = rng.vec(s.cout);
            let g = rng.vec(s.n * s.cout * ho * wo);

            let dx = conv_transpose2d_input_grad(&s, &w, &g);
            let dw = conv_transpose2d_weight_grad(&s, &x, &g);
            let db = bias_add_backward(s.n, s.cout, ho * wo, &g);
            let fwd = |x: &[f64], w: &[f64], b: &[f64]| dot(&conv_transpose2d_forward(&s, x, w, Some(b)), &g);
            check_grad(&format!("convT dx {s:?}"), &x, &dx, |x| fwd(x, &w, &b));
            check_grad(&format!("convT dw {s:?}"), &w, &dw, |w| fwd(&x, w, &b));
            check_grad(&format!("convT db {s:?}"), &b, &db, |b| fwd(&x, &w, b));
        }
    }
}
