//! Bilinear resize exactly as PyTorch F.interpolate(mode='bilinear', size=(ho, wo))
//! computes it, for both align_corners settings, and its adjoint.
//! Layouts: x/dx [n, c, h, w], y/dy [n, c, ho, wo].

/// Source taps along one axis for one output coordinate: (i0, i1, l0, l1) with
/// out = l0 * in[i0] + l1 * in[i1].
fn taps(dst: usize, in_len: usize, out_len: usize, align_corners: bool) -> (usize, usize, f64, f64) {
    let src = if align_corners {
        // A single output pixel samples the first input pixel.
        let scale = if out_len > 1 { (in_len - 1) as f64 / (out_len - 1) as f64 } else { 0.0 };
        dst as f64 * scale
    } else {
        // Half-pixel centres; the clamp keeps the first output half-pixel from
        // extrapolating to a negative coordinate.
        let scale = in_len as f64 / out_len as f64;
        ((dst as f64 + 0.5) * scale - 0.5).max(0.0)
    };
    let i0 = (src.floor() as usize).min(in_len - 1);
    let i1 = (i0 + 1).min(in_len - 1);
    // PyTorch also clamps the weight to [0, 1] (guard_index_and_lambda).
    let l1 = (src - i0 as f64).clamp(0.0, 1.0);
    (i0, i1, 1.0 - l1, l1)
}

fn check(what: &str, h: usize, w: usize, ho: usize, wo: usize) {
    assert!(h > 0 && w > 0 && ho > 0 && wo > 0, "{what}: empty size {h}x{w} -> {ho}x{wo}");
}

pub fn resize_bilinear_forward(n: usize, c: usize, h: usize, w: usize, ho: usize, wo: usize, align_corners: bool, x: &[f64]) -> Vec<f64> {
    check("resize_bilinear_forward", h, w, ho, wo);
    assert_eq!(x.len(), n * c * h * w, "resize_bilinear_forward: x length");
    let mut y = vec![0.0; n * c * ho * wo];
    for plane in 0..n * c {
        let xp = &x[plane * h * w..(plane + 1) * h * w];
        for oy in 0..ho {
            let (y0, y1, ly0, ly1) = taps(oy, h, ho, align_corners);
            for ox in 0..wo {
                let (x0, x1, lx0, lx1) = taps(ox, w, wo, align_corners);
                y[(plane * ho + oy) * wo + ox] =
                    ly0 * (lx0 * xp[y0 * w + x0] + lx1 * xp[y0 * w + x1]) + ly1 * (lx0 * xp[y1 * w + x0] + lx1 * xp[y1 * w + x1]);
            }
        }
    }
    y
}

/// Scatters each dy into its four taps with the forward weights. At the border
/// i0 == i1, and both weights land on the same pixel.
pub fn resize_bilinear_backward(n: usize, c: usize, h: usize, w: usize, ho: usize, wo: usize, align_corners: bool, dy: &[f64]) -> Vec<f64> {
    check("resize_bilinear_backward", h, w, ho, wo);
    assert_eq!(dy.len(), n * c * ho * wo, "resize_bilinear_backward: dy length");
    let mut dx = vec![0.0; n * c * h * w];
    for plane in 0..n * c {
        let dxp = &mut dx[plane * h * w..(plane + 1) * h * w];
        for oy in 0..ho {
            let (y0, y1, ly0, ly1) = taps(oy, h, ho, align_corners);
            for ox in 0..wo {
                let (x0, x1, lx0, lx1) = taps(ox, w, wo, align_corners);
                let g = dy[(plane * ho + oy) * wo + ox];
                dxp[y0 * w + x0] += ly0 * lx0 * g;
                dxp[y0 * w + x1] += ly0 * lx1 * g;
                dxp[y1 * w + x0] += ly1 * lx0 * g;
                dxp[y1 * w + x1] += ly1 * lx1 * g;
            }
        }
    }
    dx
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::fd::{Rng, assert_close, check_grad, dot};

    const X22: [f64; 4] = [1.0, 2.0, 3.0, 4.0];

    #[test]
    fn upsample_x2_align_corners_true() {
        let y = resize_bilinear_forward(1, 1, 2, 2, 4, 4, true, &X22);
        let t = 1.0 / 3.0;
        let row = |a: f64| [a, a + t, a + 2.0 * t, a + 1.0];
        let want: Vec<f64> = [1.0, 1.0 + 2.0 * t, 1.0 + 4.0 * t, 3.0].iter().flat_map(|&a| row(a)).collect();
        assert_close("align true", &y, &want, 1e-15);
        assert_close("row0", &y[0..4], &[1.0, 1.333_333_333_333_333_3, 1.666_666_666_666_666_7, 2.0], 1e-14);
        assert_close("row3", &y[12..16], &[3.0, 3.333_333_333_333_333_5, 3.666_666_666_666_666_5, 4.0], 1e-14);
    }

    #[test]
    fn upsample_x2_align_corners_false() {
        // PyTorch: [[1, 1.25, 1.75, 2], [1.5, 1.75, 2.25, 2.5], [2.5, 2.75, 3.25, 3.5], [3, 3.25, 3.75, 4]].
        let y = resize_bilinear_forward(1, 1, 2, 2, 4, 4, false, &X22);
        let want = [1.0, 1.25, 1.75, 2.0, 1.5, 1.75, 2.25, 2.5, 2.5, 2.75, 3.25, 3.5, 3.0, 3.25, 3.75, 4.0];
        assert_close("align false", &y, &want, 1e-15);
    }

    #[test]
    fn downsample_and_degenerate_sizes() {
        // 4x4 -> 2x2 half-pixel: sources land at 0.5 and 2.5, i.e. 2x2 averages.
        let x: Vec<f64> = (0..16).map(|v| v as f64).collect();
        let y = resize_bilinear_forward(1, 1, 4, 4, 2, 2, false, &x);
        assert_close("down false", &y, &[2.5, 4.5, 10.5, 12.5], 1e-15);
        // align_corners keeps the corners: sources at 0 and 3.
        let y = resize_bilinear_forward(1, 1, 4, 4, 2, 2, true, &x);
        assert_close("down true", &y, &[0.0, 3.0, 12.0, 15.0], 1e-15);
        // Same size is the identity in both modes.
        let x: Vec<f64> = Rng::new(3).vec(2 * 5 * 3);
        for ac in [false, true] {
            assert_close("identity", &resize_bilinear_forward(2, 1, 5, 3, 5, 3, ac, &x), &x, 1e-15);
        }
        // One output pixel: align_corners takes the first pixel, half-pixel the centre.
        let x: Vec<f64> = (0..9).map(|v| v as f64).collect();
        assert_close("1x1 true", &resize_bilinear_forward(1, 1, 3, 3, 1, 1, true, &x), &[0.0], 0.0);
        assert_close("1x1 false", &resize_bilinear_forward(1, 1, 3, 3, 1, 1, false, &x), &[4.0], 1e-15);
        // A 1x1 input broadcasts.
        assert_close("from 1x1", &resize_bilinear_forward(1, 1, 1, 1, 2, 3, false, &[7.0]), &[7.0; 6], 0.0);
    }

    #[test]
    fn gradients_match_finite_differences() {
        let cases = [
            (1, 3, 7, 7, 14, 14), // x2 upsample
            (3, 5, 5, 6, 13, 11), // to an odd size
            (3, 5, 13, 11, 4, 5), // downsample
            (1, 6, 4, 4, 8, 8),
            (1, 3, 3, 3, 1, 1),
            (1, 3, 1, 4, 3, 7),
        ];
        for (i, &(n, c, h, w, ho, wo)) in cases.iter().enumerate() {
            for ac in [false, true] {
                let mut rng = Rng::new(10 * i as u64 + ac as u64);
                let x = rng.vec(n * c * h * w);
                let g = rng.vec(n * c * ho * wo);
                let dx = resize_bilinear_backward(n, c, h, w, ho, wo, ac, &g);
                check_grad(&format!("bilinear {h}x{w}->{ho}x{wo} align={ac}"), &x, &dx, |x| {
                    dot(&resize_bilinear_forward(n, c, h, w, ho, wo, ac, x), &g)
                });
            }
        }
    }
}
