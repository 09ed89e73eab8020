//! Checks of the kernels that move pixels: maxpool, bilinear resize, padding, concat.

use super::*;

pub(super) async fn check_maxpool(c: &mut Checker<'_>) -> Result<()> {
    for (shape, k, s) in
        [([1, 3, 7, 7], (2, 2), (2, 2)), ([3, 5, 13, 11], (2, 2), (2, 2)), ([2, 6, 3, 3], (2, 2), (2, 2)), ([1, 2, 9, 8], (3, 3), (2, 2))]
    {
        let [n, ch, h, w] = shape;
        let (x, xr) = c.leaf(&shape)?;
        c.case("maxpool2d", format!("x{} k{k:?} s{s:?}", dims(&shape)));
        let y = c.g.max_pool2d(&x, k, s)?;
        let (yr, idx) = r::maxpool2d::maxpool2d_forward(n, ch, h, w, k, s, &xr);
        c.cmp_t("maxpool2d_forward", &y, &yr).await?;
        let (grads, g) = c.backward(&y)?;
        c.grad("maxpool2d_backward", &grads, &x, &r::maxpool2d::maxpool2d_backward(n, ch, h, w, k, s, &idx, &g)).await?;
    }
    Ok(())
}

pub(super) async fn check_resize(c: &mut Checker<'_>) -> Result<()> {
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
        c.cmp_t("resize_bilinear_forward", &y, &r::resize_bilinear::resize_bilinear_forward(n, ch, h, w, ho, wo, ac, &xr)).await?;
        let (grads, g) = c.backward(&y)?;
        c.grad("resize_bilinear_backward", &grads, &x, &r::resize_bilinear::resize_bilinear_backward(n, ch, h, w, ho, wo, ac, &g)).await?;
    }
    Ok(())
}

pub(super) async fn check_pad(c: &mut Checker<'_>) -> Result<()> {
    for (shape, pads) in [([1, 3, 7, 7], (0, 1, 0, 1)), ([3, 5, 13, 11], (1, 2, 3, 0)), ([2, 6, 3, 3], (2, 2, 2, 2))] {
        let [n, ch, h, w] = shape;
        let (x, xr) = c.leaf(&shape)?;
        c.case("pad2d", format!("x{} pads(l,r,t,b){pads:?}", dims(&shape)));
        let y = c.g.pad2d(&x, pads)?;
        c.cmp_t("pad2d_forward", &y, &r::pad2d::pad2d_forward(n, ch, h, w, pads, &xr)).await?;
        let (grads, g) = c.backward(&y)?;
        c.grad("pad2d_backward", &grads, &x, &r::pad2d::pad2d_backward(n, ch, h, w, pads, &g)).await?;
    }
    Ok(())
}

pub(super) async fn check_concat(c: &mut Checker<'_>) -> Result<()> {
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
        c.cmp_t("concat_forward", &y, &r::concat::concat_forward(n, h * w, &parts)).await?;
        let (grads, g) = c.backward(&y)?;
        let dr = r::concat::concat_backward(n, h * w, chans, &g);
        for (t, d) in ts.iter().zip(&dr) {
            c.grad("concat_backward", &grads, t, d).await?;
        }
    }
    Ok(())
}

/// The parts of a reference concat (channels `chans` of `cat`), each as its own tensor.
fn split(n: usize, hw: usize, chans: &[usize], cat: &[f64]) -> Vec<Vec<f64>> {
    r::concat::concat_backward(n, hw, chans, cat)
}

/// Channel slices, the UNet's in-place skip-concat: each producer that can writes its part of
/// a concat in place at channel offset 2 of a batch of 3 (a strided slice), beside a relu part
/// at offset 0 that maxpool also reads; the loss sum(cat^2) + sum(maxpool(a)^2) sends both a
/// gradient slice and maxpool's accumulation into the relu part. Forward, every gradient and
/// the absence of a copy (the concat is the reserved buffer) against the reference's copies.
pub(super) async fn check_slices(c: &mut Checker<'_>) -> Result<()> {
    use r::activation::Activation as R;
    let (n, h, w, ca, cb) = (3usize, 6usize, 6usize, 2usize, 4usize);
    let hw = h * w;
    // The transposed conv writing a slice in the simple kernels and every pinned blocking.
    let base = c.kn.clone();
    let mut cases: Vec<(String, Pin)> =
        ["relu", "group_norm+silu", "batch_norm+relu", "pad2d", "resize_bilinear"].iter().map(|w| (w.to_string(), base.pin)).collect();
    for pin in crate::ops::kernels::every_pin() {
        let name = match (pin.conv, pin.wgrad) {
            (Some(b), Some(d)) => format!("conv_transpose2d {}+{}", b.row().pin, d.row().pin),
            _ => "conv_transpose2d simple".to_string(),
        };
        cases.push((name, pin));
    }
    for (which, pin) in &cases {
        let which = which.as_str();
        c.set_kernels(Kernels::pinned(*pin));
        c.fresh();
        c.case("channel slices", format!("{which} into channels [{ca}, {}) of [{n},{},{h},{w}]", ca + cb, ca + cb));
        let slots = c.g.concat_slots(n, &[ca, cb], h, w)?;
        let (xa, xar) = c.leaf(&[n, ca, h, w])?;
        let a = c.g.activation_into(&xa, Activation::Relu, Some(&slots[0]))?;
        let ar = r::activation::activation_forward(R::Relu, &xar);
        let into = Some(&slots[1]);
        // The part's GPU tensor, its reference value, and a function of its reference gradient
        // giving (entry, leaf, reference gradient) rows.
        type Back = Box<dyn Fn(&[f64]) -> Vec<(String, usize, Vec<f64>)>>;
        let (b, br, leaves, back): (Tensor, Vec<f64>, Vec<Tensor>, Back) = match which {
            "relu" => {
                let (x, xr) = c.leaf(&[n, cb, h, w])?;
                let y = c.g.activation_into(&x, Activation::Relu, into)?;
                let yr = r::activation::activation_forward(R::Relu, &xr);
                (y, yr, vec![x], Box::new(move |g| vec![("activation_backward".into(), 0, r::activation::activation_backward(R::Relu, &xr, g))]))
            }
            "group_norm+silu" => {
                let (x, xr) = c.leaf(&[n, cb, h, w])?;
                let (gm, gr) = c.leaf_in(&[cb], 0.5, 1.5)?;
                let (bt, btr) = c.leaf(&[cb])?;
                let y = c.g.group_norm_act_into(&x, 2, &gm, &bt, 1e-5, Some(Activation::Silu), into)?;
                let (pre, mr, sr) = r::group_norm::group_norm_forward(n, cb, hw, 2, 1e-5, &xr, &gr, &btr);
                let yr = r::activation::activation_forward(R::Silu, &pre);
                let back: Back = Box::new(move |g| {
                    let (dx, dg, db) =
                        r::group_norm::group_norm_backward(n, cb, hw, 2, &xr, &gr, &mr, &sr, &r::activation::activation_backward(R::Silu, &pre, g));
                    vec![
                        ("group_norm_input_grad".into(), 0, dx),
                        ("group_norm_param_partial+group_norm_param_final".into(), 1, dg),
                        ("group_norm_param_partial+group_norm_param_final".into(), 2, db),
                    ]
                });
                (y, yr, vec![x, gm, bt], back)
            }
            "batch_norm+relu" => {
                let (x, xr) = c.leaf(&[n, cb, h, w])?;
                let (gm, gr) = c.leaf_in(&[cb], 0.5, 1.5)?;
                let (bt, btr) = c.leaf(&[cb])?;
                let (rm, rv) = (Tensor::zeros(c.ctx, &[cb])?, Tensor::full(c.ctx, &[cb], 1.0)?);
                let y = c.g.batch_norm_act_into(&x, &gm, &bt, &rm, &rv, true, 0.1, 1e-5, Some(Activation::Relu), into)?;
                let (mut rmr, mut rvr) = (vec![0.0; cb], vec![1.0; cb]);
                let (pre, mr, sr) =
                    r::batch_norm::batch_norm_forward_train(n, cb, hw, 1e-5f32 as f64, 0.1f32 as f64, &xr, &gr, &btr, &mut rmr, &mut rvr);
                let yr = r::activation::activation_forward(R::Relu, &pre);
                let back: Back = Box::new(move |g| {
                    let (dx, dg, db) = r::batch_norm::batch_norm_backward_train(
                        n,
                        cb,
                        hw,
                        &xr,
                        &gr,
                        &mr,
                        &sr,
                        &r::activation::activation_backward(R::Relu, &pre, g),
                    );
                    vec![
                        ("batch_norm_backward_apply".into(), 0, dx),
                        ("batch_norm_backward_final (dgamma)".into(), 1, dg),
                        ("batch_norm_backward_final (dbeta)".into(), 2, db),
                    ]
                });
                (y, yr, vec![x, gm, bt], back)
            }
            "pad2d" => {
                let pads = (1, 2, 1, 1);
                let (x, xr) = c.leaf(&[n, cb, 4, 3])?;
                let y = c.g.pad2d_into(&x, pads, into)?;
                let yr = r::pad2d::pad2d_forward(n, cb, 4, 3, pads, &xr);
                (y, yr, vec![x], Box::new(move |g| vec![("pad2d_backward".into(), 0, r::pad2d::pad2d_backward(n, cb, 4, 3, pads, g))]))
            }
            "resize_bilinear" => {
                let (x, xr) = c.leaf(&[n, cb, 3, 3])?;
                let y = c.g.resize_bilinear_into(&x, h, w, true, into)?;
                let yr = r::resize_bilinear::resize_bilinear_forward(n, cb, 3, 3, h, w, true, &xr);
                (
                    y,
                    yr,
                    vec![x],
                    Box::new(move |g| {
                        vec![("resize_bilinear_backward".into(), 0, r::resize_bilinear::resize_bilinear_backward(n, cb, 3, 3, h, w, true, g))]
                    }),
                )
            }
            _ => {
                let cin = 5;
                let (x, xr) = c.leaf(&[n, cin, 3, 3])?;
                let (wt, wr) = c.leaf(&[cin, cb, 2, 2])?;
                let (bs, bsr) = c.leaf(&[cb])?;
                let y = c.g.conv_transpose2d_into(&x, &wt, Some(&bs), (2, 2), (0, 0), (0, 0), into)?;
                let rs = r::conv_transpose2d::ConvTranspose2dShape {
                    n,
                    cin,
                    h: 3,
                    w: 3,
                    cout: cb,
                    kh: 2,
                    kw: 2,
                    stride: (2, 2),
                    pad: (0, 0),
                    output_pad: (0, 0),
                };
                let yr = r::conv_transpose2d::conv_transpose2d_forward(&rs, &xr, &wr, Some(&bsr));
                let back: Back = Box::new(move |g| {
                    vec![
                        ("conv2d_forward (input grad)".into(), 0, r::conv_transpose2d::conv_transpose2d_input_grad(&rs, &wr, g)),
                        ("conv2d_weight_grad".into(), 1, r::conv_transpose2d::conv_transpose2d_weight_grad(&rs, &xr, g)),
                        ("bias_grad_partial+bias_grad_final".into(), 2, r::elementwise::bias_add_backward(n, cb, hw, g)),
                    ]
                });
                (y, yr, vec![x, wt, bs], back)
            }
        };
        let in_place = a.is_slice() && b.is_slice();
        let cat = c.g.concat(&[&a, &b])?;
        let m = c.g.max_pool2d(&a, (2, 2), (2, 2))?;
        let (l1, l2) = (c.g.sum_sq(&cat)?, c.g.sum_sq(&m)?);
        let loss = c.g.add(&l1, &l2)?;
        c.push("written in place (no concat copy)", if in_place && cat.view().same(slots[0].view()) { 0.0 } else { 1.0 }, None);
        let catr = r::concat::concat_forward(n, hw, &[(&ar[..], ca), (&br[..], cb)]);
        c.cmp_t("concat (in place)", &cat, &catr).await?;
        let (mr, idx) = r::maxpool2d::maxpool2d_forward(n, ca, h, w, (2, 2), (2, 2), &ar);
        c.cmp_t("maxpool2d_forward (slice input)", &m, &mr).await?;
        let (grads, g) = c.backward(&loss)?;
        let dcat: Vec<f64> = catr.iter().map(|v| 2.0 * g[0] * v).collect();
        let parts = split(n, hw, &[ca, cb], &dcat);
        let dm: Vec<f64> = mr.iter().map(|v| 2.0 * g[0] * v).collect();
        let da: Vec<f64> =
            parts[0].iter().zip(r::maxpool2d::maxpool2d_backward(n, ca, h, w, (2, 2), (2, 2), &idx, &dm)).map(|(p, q)| p + q).collect();
        c.grad("maxpool2d_backward (slice output) + activation_backward", &grads, &xa, &r::activation::activation_backward(R::Relu, &xar, &da))
            .await?;
        for (entry, k, d) in back(&parts[1]) {
            c.grad(&format!("{entry} (slice dy)"), &grads, &leaves[k], &d).await?;
        }
    }
    c.set_kernels(base);
    // Batch norm's eval forward (an inference graph) writing a slice.
    c.fresh();
    c.case("channel slices", format!("batch_norm eval+relu into channels [{ca}, {}) of [{n},{},{h},{w}]", ca + cb, ca + cb));
    let mut gi = Graph::inference(c.ctx);
    let slots = gi.concat_slots(n, &[ca, cb], h, w)?;
    let (xa, xar) = c.leaf(&[n, ca, h, w])?;
    let (x, xr) = c.leaf(&[n, cb, h, w])?;
    let (gm, gr) = c.leaf_in(&[cb], 0.5, 1.5)?;
    let (bt, btr) = c.leaf(&[cb])?;
    let rm0 = c.rng.vec(cb);
    let rv0: Vec<f32> = c.rng.vec(cb).iter().map(|v| 1.0 + 0.5 * v).collect();
    let (rm, rv) = (Tensor::from_slice(c.ctx, &[cb], &rm0)?, Tensor::from_slice(c.ctx, &[cb], &rv0)?);
    let a = gi.activation_into(&xa, Activation::Relu, Some(&slots[0]))?;
    let b = gi.batch_norm_act_into(&x, &gm, &bt, &rm, &rv, false, 0.1, 1e-5, Some(Activation::Relu), Some(&slots[1]))?;
    let cat = gi.concat(&[&a, &b])?;
    c.push("written in place (no concat copy)", if cat.view().same(slots[0].view()) { 0.0 } else { 1.0 }, None);
    let pre = r::batch_norm::batch_norm_forward_eval(n, cb, hw, 1e-5f32 as f64, &xr, &gr, &btr, &f64s(&rm0), &f64s(&rv0));
    let ar = r::activation::activation_forward(R::Relu, &xar);
    let br = r::activation::activation_forward(R::Relu, &pre);
    c.cmp_t("batch_norm_forward_eval (slice output)", &cat, &r::concat::concat_forward(n, hw, &[(&ar[..], ca), (&br[..], cb)])).await?;
    Ok(())
}
