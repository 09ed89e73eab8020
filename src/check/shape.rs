//! Checks of the kernels that move pixels: maxpool, bilinear resize, padding, concat.

use super::*;

pub(super) fn check_maxpool(c: &mut Checker) -> Result<()> {
    for (shape, k, s) in [([1, 3, 7, 7], (2, 2), (2, 2)), ([3, 5, 13, 11], (2, 2), (2, 2)), ([2, 6, 3, 3], (2, 2), (2, 2)), ([1, 2, 9, 8], (3, 3), (2, 2))] {
        let [n, ch, h, w] = shape;
        let (x, xr) = c.leaf(&shape)?;
        c.case("maxpool2d", format!("x{} k{k:?} s{s:?}", dims(&shape)));
        let y = c.g.max_pool2d(&x, k, s)?;
        let (yr, idx) = r::maxpool2d::maxpool2d_forward(n, ch, h, w, k, s, &xr);
        c.cmp_t("maxpool2d_forward", &y, &yr)?;
        let (grads, g) = c.backward(&y)?;
        c.grad("maxpool2d_backward", &grads, &x, &r::maxpool2d::maxpool2d_backward(n, ch, h, w, k, s, &idx, &g))?;
    }
    Ok(())
}

pub(super) fn check_resize(c: &mut Checker) -> Result<()> {
    let cases = [
        ([1, 3, 7, 7], (14, 14), true),
        ([3, 5, 13, 11], (26, 22), false),
        ([2, 2, 3, 3], (7, 5), false),
        ([1, 3, 32, 32], (28, 28), false),
        ([1, 2, 7, 7], (3, 3), true),
        ([2, 1, 1, 4], (3, 8), true),
    ];
    for (shape, (ho, wo), ac) in cases {
        let [n, ch, h, w] = shape;
        let (x, xr) = c.leaf(&shape)?;
        c.case("resize_bilinear", format!("x{} -> {ho}x{wo} align_corners={ac}", dims(&shape)));
        let y = c.g.resize_bilinear(&x, ho, wo, ac)?;
        c.cmp_t("resize_bilinear_forward", &y, &r::resize_bilinear::resize_bilinear_forward(n, ch, h, w, ho, wo, ac, &xr))?;
        let (grads, g) = c.backward(&y)?;
        c.grad("resize_bilinear_backward", &grads, &x, &r::resize_bilinear::resize_bilinear_backward(n, ch, h, w, ho, wo, ac, &g))?;
    }
    Ok(())
}

pub(super) fn check_pad(c: &mut Checker) -> Result<()> {
    for (shape, pads) in [([1, 3, 7, 7], (0, 1, 0, 1)), ([3, 5, 13, 11], (1, 2, 3, 0)), ([2, 6, 3, 3], (2, 2, 2, 2))] {
        let [n, ch, h, w] = shape;
        let (x, xr) = c.leaf(&shape)?;
        c.case("pad2d", format!("x{} pads(l,r,t,b){pads:?}", dims(&shape)));
        let y = c.g.pad2d(&x, pads)?;
        c.cmp_t("pad2d_forward", &y, &r::pad2d::pad2d_forward(n, ch, h, w, pads, &xr))?;
        let (grads, g) = c.backward(&y)?;
        c.grad("pad2d_backward", &grads, &x, &r::pad2d::pad2d_backward(n, ch, h, w, pads, &g))?;
    }
    Ok(())
}

pub(super) fn check_concat(c: &mut Checker) -> Result<()> {
    let cases: [(usize, usize, usize, &[usize]); 3] = [(1, 7, 7, &[3, 5]), (3, 13, 11, &[2, 3, 1]), (2, 3, 3, &[6, 4])];
    for (n, h, w, chans) in cases {
        let mut ts = Vec::new();
        let mut rs = Vec::new();
        for &ch in chans {
            let (t, tr) = c.leaf(&[n, ch, h, w])?;
            ts.push(t);
            rs.push(tr);
        }
        c.case("concat", format!("n{n} {h}x{w} channels {chans:?}"));
        let refs: Vec<&Tensor> = ts.iter().collect();
        let y = c.g.concat(&refs)?;
        let parts: Vec<(&[f64], usize)> = rs.iter().zip(chans).map(|(r, &ch)| (&r[..], ch)).collect();
        c.cmp_t("concat_forward", &y, &r::concat::concat_forward(n, h * w, &parts))?;
        let (grads, g) = c.backward(&y)?;
        let dr = r::concat::concat_backward(n, h * w, chans, &g);
        for (t, d) in ts.iter().zip(&dr) {
            c.grad("concat_backward", &grads, t, d)?;
        }
    }
    Ok(())
}
