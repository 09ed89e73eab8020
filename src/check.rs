//! The kernel checks: every GPU entry point against the CPU reference (f64) on small random
//! shapes, forward and every gradient, through the real graph ops and autograd. Used by
//! `dae gradcheck` (on the user's adapter) and by `cargo test` (on lavapipe in CI).
//!
//! Output buffers are poisoned with NaN before each kernel writes them, so an element a kernel
//! forgets to write fails the check. A check passes when BOTH hold:
//! - the relative L2 error ||gpu - ref|| / ||ref|| is at most `rel_l2` (the reference is never
//!   all zeros in these cases), and
//! - every element is within |gpu - ref| <= atol * max|ref| + rtol * |ref| (as numpy's allclose,
//!   with the absolute term scaled by the tensor's largest value so that one bound serves a
//!   loss gradient of 1e-5 and a conv output of 30), so one wrong element in a large tensor
//!   cannot hide in the norm. A failing row names the first mismatching elements.

use serde::Serialize;

use crate::error::Result;
use crate::gpu::Ctx;
use crate::ops::activation::{self, Activation};
use crate::ops::loss::{self, LossKind};
use crate::ops::reduce::{self, ReduceKind};
use crate::ops::{batch_norm, concat, conv2d, dropout2d, elementwise, group_norm, maxpool2d, pad2d, resize_bilinear};
use crate::reference as r;
use crate::tensor::Tensor;
pub use crate::util::rng::Rng;

/// Relative L2 tolerance for f32 kernels against the f64 reference.
pub const TOL_F32: f64 = 1e-4;

/// The tolerances of one comparison: the relative L2 bound, and the per-element bound
/// |gpu - ref| <= atol * max|ref| + rtol * |ref|.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tol {
    pub rel_l2: f64,
    pub rtol: f64,
    pub atol: f64,
}

/// f32 kernels against the f64 reference, element by element.
pub const F32: Tol = Tol { rel_l2: TOL_F32, rtol: 1e-3, atol: 1e-5 };

/// Whole-model steps (tens of kernels chained: errors compound): the same relative L2 bound,
/// a looser per-element one.
pub const F32_CHAINED: Tol = Tol { rel_l2: TOL_F32, rtol: 1e-2, atol: 1e-4 };

#[derive(Clone, Debug, Serialize)]
pub struct CheckRow {
    pub op: String,
    pub entry: String,
    pub shape: String,
    pub rel_err: f64,
    pub tol: f64,
    pub pass: bool,
    /// The elements outside the per-element bound (count and the first few), when any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mismatches: Option<String>,
}

/// The elements of `gpu` outside |gpu - ref| <= atol * max|ref| + rtol * |ref|: how many, and a
/// description of the first few. A NaN or inf in `gpu` is always outside.
pub fn elementwise_mismatches(gpu: &[f32], reference: &[f64], tol: Tol) -> Option<String> {
    if gpu.len() != reference.len() {
        return Some(format!("{} elements, the reference has {}", gpu.len(), reference.len()));
    }
    let scale = reference.iter().fold(0.0f64, |m, r| m.max(r.abs()));
    let mut first = Vec::new();
    let mut count = 0usize;
    for (i, (g, r)) in gpu.iter().zip(reference).enumerate() {
        let g = *g as f64;
        let bound = tol.atol * scale + tol.rtol * r.abs();
        if !((g - r).abs() <= bound) {
            count += 1;
            if first.len() < 4 {
                first.push(format!("[{i}] {g:.6e} vs {r:.6e}"));
            }
        }
    }
    (count > 0).then(|| format!("{count} of {} elements outside {:e}*max|ref| + {:e}*|ref|: {}", gpu.len(), tol.atol, tol.rtol, first.join(", ")))
}

/// ||a - b|| / ||b||; infinite when `a` holds a NaN/inf (an unwritten, poisoned element) or the
/// lengths differ.
pub fn rel_l2(gpu: &[f32], reference: &[f64]) -> f64 {
    if gpu.len() != reference.len() || gpu.iter().any(|v| !v.is_finite()) {
        return f64::INFINITY;
    }
    let (mut num, mut den) = (0.0f64, 0.0f64);
    for (g, r) in gpu.iter().zip(reference) {
        num += (*g as f64 - r).powi(2);
        den += r * r;
    }
    if den == 0.0 { num.sqrt() } else { (num / den).sqrt() }
}

fn f64s(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

fn dims(s: &[usize]) -> String {
    format!("[{}]", s.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(","))
}

struct Checker<'a> {
    ctx: &'a Ctx,
    rng: Rng,
    rows: Vec<CheckRow>,
    op: &'static str,
    shape: String,
    tol: Tol,
}

impl Checker<'_> {
    /// A GPU leaf that wants a gradient, and the same values in f64 for the reference.
    fn leaf(&mut self, shape: &[usize]) -> Result<(Tensor, Vec<f64>)> {
        let d = self.rng.vec(shape.iter().product());
        Ok((Tensor::leaf(self.ctx, shape, &d)?, f64s(&d)))
    }

    /// Like `leaf` with values in [lo, hi).
    fn leaf_in(&mut self, shape: &[usize], lo: f32, hi: f32) -> Result<(Tensor, Vec<f64>)> {
        let d: Vec<f32> = self.rng.vec(shape.iter().product()).iter().map(|v| lo + (v + 1.0) * 0.5 * (hi - lo)).collect();
        Ok((Tensor::leaf(self.ctx, shape, &d)?, f64s(&d)))
    }

    fn case(&mut self, op: &'static str, shape: String) {
        self.op = op;
        self.shape = shape;
    }

    fn cmp(&mut self, entry: &str, gpu: &[f32], reference: &[f64]) {
        let e = rel_l2(gpu, reference);
        let mismatches = elementwise_mismatches(gpu, reference, self.tol);
        self.push(entry, e, mismatches);
    }

    fn push(&mut self, entry: &str, rel_err: f64, mismatches: Option<String>) {
        let tol = self.tol.rel_l2;
        let pass = rel_err <= tol && mismatches.is_none();
        self.rows.push(CheckRow { op: self.op.into(), entry: entry.into(), shape: self.shape.clone(), rel_err, tol, pass, mismatches });
    }

    fn cmp_t(&mut self, entry: &str, gpu: &Tensor, reference: &[f64]) -> Result<()> {
        let v = gpu.to_vec()?;
        self.cmp(entry, &v, reference);
        Ok(())
    }

    /// Backward from `y` with a random upstream gradient; returns the grads and that gradient.
    fn backward(&mut self, y: &Tensor) -> Result<(crate::autograd::Grads, Vec<f64>)> {
        let g = self.rng.vec(y.numel());
        let gt = Tensor::from_slice(self.ctx, y.shape(), &g)?;
        Ok((self.ctx.backward_with(y, &gt)?, f64s(&g)))
    }

    fn grad(&mut self, entry: &str, grads: &crate::autograd::Grads, t: &Tensor, reference: &[f64]) -> Result<()> {
        match grads.get(t) {
            Some(g) => self.cmp_t(entry, &g, reference),
            None => {
                self.cmp(entry, &[f32::NAN], reference);
                Ok(())
            }
        }
    }
}

/// The entry name of a conv kernel in the variant the context runs.
fn ce(c: &Checker, entry: &str) -> String {
    if c.ctx.tiled() { format!("{entry}_tiled") } else { entry.to_string() }
}

fn check_convs(c: &mut Checker) -> Result<()> {
    let prev = c.ctx.tiled();
    for tiled in [false, true] {
        c.ctx.set_tiled(tiled);
        let r = check_conv2d(c).and_then(|_| check_conv_transpose2d(c));
        if r.is_err() {
            c.ctx.set_tiled(prev);
            return r;
        }
    }
    c.ctx.set_tiled(prev);
    Ok(())
}

fn check_conv2d(c: &mut Checker) -> Result<()> {
    // (n, cin, h, w, cout, k, stride, pad, bias)
    let cases = [
        (1, 3, 7, 7, 5, (3, 3), (1, 1), (1, 1), true),
        (3, 2, 13, 11, 6, (3, 3), (2, 2), (1, 1), false),
        (2, 5, 3, 3, 3, (1, 1), (1, 1), (0, 0), true),
        (1, 3, 8, 9, 2, (4, 4), (2, 2), (1, 1), true),
        (2, 1, 7, 5, 3, (3, 2), (1, 2), (0, 1), false),
        // Several 8-channel blocks in the forward (19 outputs) and input grad (17 inputs); the
        // split-K weight gradient gives some splits more than one of the 84 rows.
        (3, 17, 28, 28, 19, (3, 3), (1, 1), (1, 1), true),
        // Split-K with about four rows per split (729 blocks -> 23 splits over 32 rows).
        (2, 33, 16, 16, 35, (3, 3), (1, 1), (1, 1), false),
    ];
    for (n, cin, h, w, cout, k, s, p, bias) in cases {
        let (x, xr) = c.leaf(&[n, cin, h, w])?;
        let (wt, wr) = c.leaf(&[cout, cin, k.0, k.1])?;
        let (b, br) = c.leaf(&[cout])?;
        c.case("conv2d", format!("x{} w{} s{:?} p{:?}{}", dims(&[n, cin, h, w]), dims(wt.shape()), s, p, if bias { " bias" } else { "" }));
        let y = conv2d::conv2d(&x, &wt, bias.then_some(&b), s, p)?;
        let rs = r::conv2d::Conv2dShape { n, cin, h, w, cout, kh: k.0, kw: k.1, stride: s, pad: p };
        let yr = r::conv2d::conv2d_forward(&rs, &xr, &wr, bias.then_some(&br[..]));
        c.cmp_t(&ce(c, "conv2d_forward"), &y, &yr)?;
        let (ho, wo) = rs.out_hw();
        let (grads, g) = c.backward(&y)?;
        c.grad(&ce(c, "conv2d_input_grad"), &grads, &x, &r::conv2d::conv2d_input_grad(&rs, &wr, &g))?;
        let wg = if c.ctx.tiled() { "conv2d_weight_grad_tiled+conv2d_weight_grad_reduce".to_string() } else { "conv2d_weight_grad".to_string() };
        c.grad(&wg, &grads, &wt, &r::conv2d::conv2d_weight_grad(&rs, &xr, &g))?;
        if bias {
            c.grad("bias_add_backward", &grads, &b, &r::elementwise::bias_add_backward(n, cout, ho * wo, &g))?;
        }
    }
    Ok(())
}

fn check_conv_transpose2d(c: &mut Checker) -> Result<()> {
    // (n, cin, h, w, cout, k, stride, pad, output_pad, bias)
    let cases = [
        (1, 3, 7, 7, 5, (4, 4), (2, 2), (1, 1), (0, 0), true),
        (3, 2, 4, 5, 3, (3, 3), (2, 2), (1, 1), (1, 1), false),
        (2, 6, 3, 3, 3, (2, 2), (2, 2), (0, 0), (0, 0), true),
        (1, 5, 5, 4, 2, (3, 3), (1, 1), (1, 1), (0, 0), true),
        (3, 3, 13, 11, 2, (4, 4), (2, 2), (1, 1), (0, 0), false),
        (2, 3, 5, 4, 5, (3, 2), (2, 1), (1, 0), (1, 0), true),
        (1, 2, 4, 3, 3, (3, 5), (3, 2), (0, 2), (2, 1), false),
        // The UNet's up-conv geometry with several channel blocks each way and split-K rows.
        (3, 17, 14, 14, 19, (4, 4), (2, 2), (1, 1), (0, 0), true),
    ];
    for (n, cin, h, w, cout, k, s, p, op, bias) in cases {
        let (x, xr) = c.leaf(&[n, cin, h, w])?;
        let (wt, wr) = c.leaf(&[cin, cout, k.0, k.1])?;
        let (b, br) = c.leaf(&[cout])?;
        c.case(
            "conv_transpose2d",
            format!("x{} w{} s{:?} p{:?} op{:?}{}", dims(&[n, cin, h, w]), dims(wt.shape()), s, p, op, if bias { " bias" } else { "" }),
        );
        let y = conv2d::conv_transpose2d(&x, &wt, bias.then_some(&b), s, p, op)?;
        let rs = r::conv_transpose2d::ConvTranspose2dShape { n, cin, h, w, cout, kh: k.0, kw: k.1, stride: s, pad: p, output_pad: op };
        c.cmp_t(&ce(c, "conv2d_input_grad"), &y, &r::conv_transpose2d::conv_transpose2d_forward(&rs, &xr, &wr, bias.then_some(&br[..])))?;
        let (ho, wo) = rs.out_hw();
        let (grads, g) = c.backward(&y)?;
        c.grad(&ce(c, "conv2d_forward"), &grads, &x, &r::conv_transpose2d::conv_transpose2d_input_grad(&rs, &wr, &g))?;
        let wg = if c.ctx.tiled() { "conv2d_weight_grad_tiled+conv2d_weight_grad_reduce".to_string() } else { "conv2d_weight_grad".to_string() };
        c.grad(&wg, &grads, &wt, &r::conv_transpose2d::conv_transpose2d_weight_grad(&rs, &xr, &g))?;
        if bias {
            c.grad("bias_add_backward", &grads, &b, &r::elementwise::bias_add_backward(n, cout, ho * wo, &g))?;
        }
    }
    Ok(())
}

fn check_group_norm(c: &mut Checker) -> Result<()> {
    for (n, ch, h, w, groups) in [(1, 6, 7, 7, 3), (3, 5, 13, 11, 5), (2, 4, 3, 3, 1), (3, 64, 5, 5, 32)] {
        let (x, xr) = c.leaf(&[n, ch, h, w])?;
        let (gm, gr) = c.leaf_in(&[ch], 0.5, 1.5)?;
        let (bt, br) = c.leaf(&[ch])?;
        c.case("group_norm", format!("x{} groups {groups}", dims(&[n, ch, h, w])));
        let eps = 1e-5;
        let y = group_norm::group_norm(&x, groups, &gm, &bt, eps as f32)?;
        let (yr, mr, sr) = r::group_norm::group_norm_forward(n, ch, h * w, groups, eps, &xr, &gr, &br);
        c.cmp_t("group_norm_forward", &y, &yr)?;
        let (grads, g) = c.backward(&y)?;
        let (dx, dg, db) = r::group_norm::group_norm_backward(n, ch, h * w, groups, &xr, &gr, &mr, &sr, &g);
        c.grad("group_norm_input_grad", &grads, &x, &dx)?;
        c.grad("group_norm_param_grad", &grads, &gm, &dg)?;
        c.grad("group_norm_param_grad", &grads, &bt, &db)?;
    }
    Ok(())
}

fn check_batch_norm(c: &mut Checker) -> Result<()> {
    for (n, ch, h, w) in [(3, 5, 7, 7), (1, 3, 13, 11), (2, 6, 3, 3)] {
        let (x, xr) = c.leaf(&[n, ch, h, w])?;
        let (gm, gr) = c.leaf_in(&[ch], 0.5, 1.5)?;
        let (bt, br) = c.leaf(&[ch])?;
        let rm0 = c.rng.vec(ch);
        let rv0: Vec<f32> = c.rng.vec(ch).iter().map(|v| 1.0 + 0.5 * v).collect();
        let rm = Tensor::from_slice(c.ctx, &[ch], &rm0)?;
        let rv = Tensor::from_slice(c.ctx, &[ch], &rv0)?;
        let (eps, mom) = (1e-5f32, 0.1f32);
        c.case("batch_norm", format!("x{} train", dims(&[n, ch, h, w])));
        let y = batch_norm::batch_norm(&x, &gm, &bt, &rm, &rv, true, mom, eps)?;
        let (mut rmr, mut rvr) = (f64s(&rm0), f64s(&rv0));
        let (yr, mr, sr) = r::batch_norm::batch_norm_forward_train(n, ch, h * w, eps as f64, mom as f64, &xr, &gr, &br, &mut rmr, &mut rvr);
        c.cmp_t("batch_norm_forward_train", &y, &yr)?;
        c.cmp_t("batch_norm_forward_train", &rm, &rmr)?;
        c.cmp_t("batch_norm_forward_train", &rv, &rvr)?;
        let (grads, g) = c.backward(&y)?;
        let (dx, dg, db) = r::batch_norm::batch_norm_backward_train(n, ch, h * w, &xr, &gr, &mr, &sr, &g);
        c.grad("batch_norm_backward", &grads, &x, &dx)?;
        c.grad("batch_norm_backward", &grads, &gm, &dg)?;
        c.grad("batch_norm_backward", &grads, &bt, &db)?;
        c.case("batch_norm", format!("x{} eval", dims(&[n, ch, h, w])));
        let ye = c.ctx.no_grad(|| batch_norm::batch_norm(&x, &gm, &bt, &rm, &rv, false, mom, eps))?;
        c.cmp_t("batch_norm_forward_eval", &ye, &r::batch_norm::batch_norm_forward_eval(n, ch, h * w, eps as f64, &xr, &gr, &br, &rmr, &rvr))?;
    }
    Ok(())
}

fn check_activations(c: &mut Checker) -> Result<()> {
    let acts = [
        (Activation::Relu, r::activation::Activation::Relu),
        (Activation::LeakyRelu(0.2), r::activation::Activation::LeakyRelu(0.2f32 as f64)),
        (Activation::GeluErf, r::activation::Activation::GeluErf),
        (Activation::GeluTanh, r::activation::Activation::GeluTanh),
        (Activation::Silu, r::activation::Activation::Silu),
        (Activation::Sigmoid, r::activation::Activation::Sigmoid),
    ];
    for (a, ra) in acts {
        for shape in [[3, 5, 7, 7], [1, 3, 13, 11], [2, 6, 3, 3]] {
            let (x, xr) = c.leaf_in(&shape, -4.0, 4.0)?;
            let variant = match a {
                Activation::GeluErf => " erf",
                Activation::GeluTanh => " tanh",
                _ => "",
            };
            c.case(a.name(), format!("x{}{variant}", dims(&shape)));
            let y = activation::activation(&x, a)?;
            c.cmp_t("activation_forward", &y, &r::activation::activation_forward(ra, &xr))?;
            let (grads, g) = c.backward(&y)?;
            c.grad("activation_backward", &grads, &x, &r::activation::activation_backward(ra, &xr, &g))?;
        }
    }
    Ok(())
}

fn check_maxpool(c: &mut Checker) -> Result<()> {
    for (shape, k, s) in [([1, 3, 7, 7], (2, 2), (2, 2)), ([3, 5, 13, 11], (2, 2), (2, 2)), ([2, 6, 3, 3], (2, 2), (2, 2)), ([1, 2, 9, 8], (3, 3), (2, 2))] {
        let [n, ch, h, w] = shape;
        let (x, xr) = c.leaf(&shape)?;
        c.case("maxpool2d", format!("x{} k{k:?} s{s:?}", dims(&shape)));
        let y = maxpool2d::max_pool2d(&x, k, s)?;
        let (yr, idx) = r::maxpool2d::maxpool2d_forward(n, ch, h, w, k, s, &xr);
        c.cmp_t("maxpool2d_forward", &y, &yr)?;
        let (grads, g) = c.backward(&y)?;
        c.grad("maxpool2d_backward", &grads, &x, &r::maxpool2d::maxpool2d_backward(n, ch, h, w, k, s, &idx, &g))?;
    }
    Ok(())
}

fn check_resize(c: &mut Checker) -> Result<()> {
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
        let y = resize_bilinear::resize_bilinear(&x, ho, wo, ac)?;
        c.cmp_t("resize_bilinear_forward", &y, &r::resize_bilinear::resize_bilinear_forward(n, ch, h, w, ho, wo, ac, &xr))?;
        let (grads, g) = c.backward(&y)?;
        c.grad("resize_bilinear_backward", &grads, &x, &r::resize_bilinear::resize_bilinear_backward(n, ch, h, w, ho, wo, ac, &g))?;
    }
    Ok(())
}

fn check_pad(c: &mut Checker) -> Result<()> {
    for (shape, pads) in [([1, 3, 7, 7], (0, 1, 0, 1)), ([3, 5, 13, 11], (1, 2, 3, 0)), ([2, 6, 3, 3], (2, 2, 2, 2))] {
        let [n, ch, h, w] = shape;
        let (x, xr) = c.leaf(&shape)?;
        c.case("pad2d", format!("x{} pads(l,r,t,b){pads:?}", dims(&shape)));
        let y = pad2d::pad2d(&x, pads)?;
        c.cmp_t("pad2d_forward", &y, &r::pad2d::pad2d_forward(n, ch, h, w, pads, &xr))?;
        let (grads, g) = c.backward(&y)?;
        c.grad("pad2d_backward", &grads, &x, &r::pad2d::pad2d_backward(n, ch, h, w, pads, &g))?;
    }
    Ok(())
}

fn check_concat(c: &mut Checker) -> Result<()> {
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
        let y = concat::concat(&refs)?;
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

fn check_dropout(c: &mut Checker) -> Result<()> {
    for (shape, p, seed, stream) in [([3, 5, 7, 7], 0.3f32, 7u64, 0u64), ([1, 3, 13, 11], 0.5, 0x1234_5678_9abc, 41), ([4, 6, 3, 3], 0.1, 99, 1 << 33)] {
        let [n, ch, h, w] = shape;
        let (x, xr) = c.leaf(&shape)?;
        c.case("dropout2d", format!("x{} p{p} seed {seed} stream {stream}", dims(&shape)));
        let y = dropout2d::dropout2d(&x, p, seed, stream)?;
        // The kernel compares against p rounded to f32; the reference gets the same value.
        c.cmp_t("dropout2d_forward", &y, &r::dropout2d::dropout2d_forward(n, ch, h * w, p as f64, seed, stream, &xr))?;
        let (grads, g) = c.backward(&y)?;
        c.grad("dropout2d_backward", &grads, &x, &r::dropout2d::dropout2d_backward(n, ch, h * w, p as f64, seed, stream, &g))?;
    }
    Ok(())
}

fn check_elementwise(c: &mut Checker) -> Result<()> {
    for shape in [[3, 5, 7, 7], [1, 3, 13, 11], [2, 6, 3, 3]] {
        let [n, ch, h, w] = shape;
        let (a, ar) = c.leaf(&shape)?;
        let (b, br) = c.leaf(&shape)?;
        c.case("add", format!("x{}", dims(&shape)));
        let y = elementwise::add(&a, &b)?;
        c.cmp_t("add_forward", &y, &r::elementwise::add_forward(&ar, &br))?;
        let (grads, g) = c.backward(&y)?;
        c.grad("add_backward", &grads, &a, &g)?;
        c.grad("add_backward", &grads, &b, &g)?;

        c.case("mul", format!("x{}", dims(&shape)));
        let y = elementwise::mul(&a, &b)?;
        c.cmp_t("mul_forward", &y, &r::elementwise::mul_forward(&ar, &br))?;
        let (grads, g) = c.backward(&y)?;
        let (da, db) = r::elementwise::mul_backward(&ar, &br, &g);
        c.grad("mul_backward", &grads, &a, &da)?;
        c.grad("mul_backward", &grads, &b, &db)?;

        c.case("fill", format!("x{} value 0.625", dims(&shape)));
        let f = Tensor::full(c.ctx, &shape, 0.625)?;
        c.cmp_t("fill", &f, &vec![0.625; f.numel()])?;

        c.case("copy_offset", format!("x{} into a buffer of {} at 13", dims(&shape), a.numel() + 20));
        let dst = c.ctx.alloc("check", a.numel() + 20)?;
        crate::ops::elementwise::fill(c.ctx, &dst, 0.0)?;
        crate::ops::elementwise::copy_offset(c.ctx, a.view(), &dst, 13)?;
        let mut want = vec![0.0; a.numel() + 20];
        want[13..13 + a.numel()].copy_from_slice(&ar);
        c.cmp("copy_offset", &c.ctx.read(&dst)?, &want);

        let alpha = 0.37f32;
        c.case("scale", format!("x{} alpha {alpha}", dims(&shape)));
        let y = elementwise::scale(&a, alpha)?;
        c.cmp_t("scale_forward", &y, &r::elementwise::scale_forward(alpha as f64, &ar))?;
        let (grads, g) = c.backward(&y)?;
        c.grad("scale_backward", &grads, &a, &r::elementwise::scale_forward(alpha as f64, &g))?;

        let (bias, biasr) = c.leaf(&[ch])?;
        c.case("bias_add", format!("x{} b[{ch}]", dims(&shape)));
        let y = elementwise::bias_add(&a, &bias)?;
        c.cmp_t("bias_add_forward", &y, &r::elementwise::bias_add_forward(n, ch, h * w, &ar, &biasr))?;
        let (grads, g) = c.backward(&y)?;
        c.grad("add_backward", &grads, &a, &g)?;
        c.grad("bias_add_backward", &grads, &bias, &r::elementwise::bias_add_backward(n, ch, h * w, &g))?;
    }
    Ok(())
}

fn check_losses(c: &mut Checker) -> Result<()> {
    let kinds = [
        (LossKind::Mse, r::loss::Loss::Mse),
        (LossKind::L1, r::loss::Loss::L1),
        (LossKind::Charbonnier(1e-3), r::loss::Loss::Charbonnier(1e-3f32 as f64)),
    ];
    for (k, rk) in kinds {
        for shape in [[3, 5, 7, 7], [1, 3, 13, 11], [2, 6, 3, 3]] {
            let (p, pr) = c.leaf(&shape)?;
            let (t, tr) = c.leaf(&shape)?;
            c.case(k.name(), format!("x{}", dims(&shape)));
            let y = loss::loss(&p, &t, k)?;
            c.cmp_t("loss_partial+reduce_final", &y, &[r::loss::loss_forward(rk, &pr, &tr)])?;
            let (grads, g) = c.backward(&y)?;
            let (dp, dt) = r::loss::loss_backward(rk, &pr, &tr, g[0]);
            c.grad("loss_backward", &grads, &p, &dp)?;
            c.grad("loss_backward", &grads, &t, &dt)?;
        }
    }
    Ok(())
}

fn check_reduce(c: &mut Checker) -> Result<()> {
    let kinds = [(ReduceKind::Sum, r::reduce::Reduce::Sum), (ReduceKind::Mean, r::reduce::Reduce::Mean), (ReduceKind::SumSq, r::reduce::Reduce::SumSq)];
    for (k, rk) in kinds {
        // 300_007 > 1024 partials * 256 threads: the first stage must grid-stride.
        for len in [1757usize, 735, 1, 300_007] {
            // Offset from zero so a sum is not a near-cancellation that f32 cannot resolve.
            let (x, xr) = c.leaf_in(&[len], 0.0, 1.0)?;
            c.case("sum", format!("len {len} {k:?}"));
            let y = reduce::reduce(&x, k)?;
            c.cmp_t("reduce_partial+reduce_final", &y, &[r::reduce::reduce_forward(rk, &xr)])?;
            let (grads, g) = c.backward(&y)?;
            c.grad("reduce_backward", &grads, &x, &r::reduce::reduce_backward(rk, &xr, g[0]))?;
        }
    }
    Ok(())
}

fn check_optim(c: &mut Checker) -> Result<()> {
    use crate::ops::optim::OptKind;
    use crate::optim::{Hyper, Optimizer};
    use r::optim as ro;
    let kinds = [(OptKind::Adamw, ro::Optimizer::AdamW), (OptKind::Adam, ro::Optimizer::Adam), (OptKind::Sgd, ro::Optimizer::Sgd)];
    for (kind, rk) in kinds {
        for (len, clip) in [(1000usize, Some(0.5f32)), (1757, None), (300, Some(100.0))] {
            c.case(if kind == OptKind::Sgd { "sgd" } else if kind == OptKind::Adam { "adam" } else { "adamw" }, format!("len {len} clip {clip:?} 3 steps"));
            let h = Hyper { kind, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.01, momentum: 0.9, grad_clip: clip };
            let rh = ro::Hyper {
                lr: 0.01f32 as f64,
                beta1: 0.9f32 as f64,
                beta2: 0.999f32 as f64,
                eps: 1e-8f32 as f64,
                weight_decay: 0.01f32 as f64,
                momentum: 0.9f32 as f64,
                max_norm: clip.map(|x| x as f64),
            };
            let p0 = c.rng.vec(len);
            let param = c.ctx.upload("check", &p0)?;
            let ema = c.ctx.upload("check", &p0)?;
            let mut opt = Optimizer::new(c.ctx, len, h)?;
            let (mut rp, mut rm, mut rv, mut rema) = (f64s(&p0), vec![0.0; len], vec![0.0; len], f64s(&p0));
            for t in 1..=3u64 {
                let g = c.rng.vec(len);
                let grad = c.ctx.upload("check", &g)?;
                opt.step(c.ctx, &param, &grad, 0.01)?;
                crate::optim::ema_update(c.ctx, 0.9, &param, &ema)?;
                let mut rg = f64s(&g);
                ro::optim_step(rk, &rh, t, &mut rp, &mut rg, &mut rm, &mut rv);
                ro::ema_update(0.9f32 as f64, &mut rema, &rp);
                if t == 3 {
                    let gz = c.ctx.read(&grad)?;
                    c.cmp("optim_step", &gz.iter().map(|v| v + 1.0).collect::<Vec<_>>(), &vec![1.0; len]);
                }
            }
            c.cmp("optim_step", &c.ctx.read(&param)?, &rp);
            c.cmp("optim_step", &c.ctx.read(&opt.m)?, &rm);
            if kind != OptKind::Sgd {
                c.cmp("optim_step", &c.ctx.read(&opt.v)?, &rv);
            }
            c.cmp("ema_update", &c.ctx.read(&ema)?, &rema);
        }
    }
    Ok(())
}

fn check_data(c: &mut Checker) -> Result<()> {
    use crate::ops::data::{self as d, DataParams};
    let image_len = 49;
    let n_images = 11;
    let bytes: Vec<u8> = (0..n_images * image_len).map(|_| (c.rng.next_u64() >> 56) as u8).collect();
    let mut words = vec![0u32; bytes.len().div_ceil(4)];
    for (k, b) in bytes.iter().enumerate() {
        words[k / 4] |= (*b as u32) << (8 * (k % 4));
    }
    let dataset = c.ctx.upload_u32("check", &words)?;
    let perm: Vec<u32> = vec![3, 9, 0, 10, 5, 7, 1];
    let perm_v = c.ctx.upload_u32("check", &perm)?;
    let (start, batch) = (2usize, 4usize);
    c.case("data", format!("gather {batch} of {n_images} images of {image_len} px from perm offset {start}"));
    let clean = c.ctx.alloc("check", batch * image_len)?;
    d::data_gather(c.ctx, &dataset, &perm_v, start, batch, image_len, &clean)?;
    let clean_ref = r::data::data_gather(&bytes, &perm, start, batch, image_len);
    c.cmp("data_gather", &c.ctx.read(&clean)?, &clean_ref);
    let levels = [0.1f32, 0.2, 0.3, 0.5];
    // (noise, range, clip, amount, peak, in_scale, in_shift, label)
    let cases = [
        (0u32, None, Some((0.0f32, 1.0f32)), 0.0f32, 0.0f32, 1.0f32, 0.0f32, "gaussian levels clip"),
        (0, Some((0.05f32, 0.6f32)), None, 0.0, 0.0, 2.0, -1.0, "gaussian range no-clip minus_one_one"),
        (1, None, Some((0.0, 1.0)), 0.2, 0.0, 1.0, 0.0, "salt_pepper 0.2"),
        (2, None, Some((0.0, 1.0)), 0.0, 10.0, 1.0, 0.0, "poisson peak 10"),
        (2, None, None, 0.0, 100.0, 1.0, 0.0, "poisson peak 100"),
        (3, None, Some((0.0, 1.0)), 0.0, 0.0, 1.0, 0.0, "speckle"),
    ];
    for (noise, range, clip, amount, peak, in_scale, in_shift, label) in cases {
        let (seed, epoch, step) = (0xABCD_EF01_2345u64, 3u32, 17u32);
        c.case("data", format!("noise {label}, {batch}x{image_len}"));
        let mut lv = [0f32; 16];
        lv[..levels.len()].copy_from_slice(&levels);
        let p = DataParams {
            len: (batch * image_len) as u32,
            image_len: image_len as u32,
            noise,
            seed_lo: seed as u32,
            seed_hi: (seed >> 32) as u32,
            epoch,
            step,
            n_levels: levels.len() as u32,
            use_range: range.is_some() as u32,
            has_clip: clip.is_some() as u32,
            level_lo: range.map_or(0.0, |r| r.0),
            level_hi: range.map_or(0.0, |r| r.1),
            level_scale: 0.75,
            amount,
            peak,
            clip_lo: clip.map_or(0.0, |c| c.0),
            clip_hi: clip.map_or(0.0, |c| c.1),
            in_scale,
            in_shift,
            levels: lv,
            ..Default::default()
        };
        let out = c.ctx.alloc("check", batch * image_len)?;
        d::data_noise(c.ctx, &p, &clean, &out)?;
        let nr = r::data::NoiseRef {
            noise,
            seed,
            epoch,
            step,
            start: 0,
            levels: levels.iter().map(|&l| l as f64).collect(),
            range: range.map(|(a, b)| (a as f64, b as f64)),
            level_scale: 0.75,
            amount: amount as f64,
            peak: peak as f64,
            clip: clip.map(|(a, b)| (a as f64, b as f64)),
            in_scale: in_scale as f64,
            in_shift: in_shift as f64,
        };
        // The reference gets the GPU's clean pixels (f32) so only the noise is compared.
        let clean_gpu = f64s(&c.ctx.read(&clean)?);
        c.cmp("data_noise", &c.ctx.read(&out)?, &r::data::data_noise(&nr, &clean_gpu, image_len));
    }
    // Evaluation keys the noise by each image's index in the set (`start`): image 7 gets the
    // same noise in a batch of 4 from image 5 as in a batch of 1.
    c.case("data", format!("noise keyed by image index: batch of {batch} from image 5 vs image 7 alone"));
    let p = DataParams { len: (batch * image_len) as u32, image_len: image_len as u32, start: 5, seed_lo: 9, epoch: 1, n_levels: 1, levels: [0.4; 16], level_scale: 1.0, in_scale: 1.0, ..Default::default() };
    let out = c.ctx.alloc("check", batch * image_len)?;
    d::data_noise(c.ctx, &p, &clean, &out)?;
    let nr = r::data::NoiseRef {
        noise: 0,
        seed: 9,
        epoch: 1,
        step: 0,
        start: 5,
        levels: vec![0.4f32 as f64],
        range: None,
        level_scale: 1.0,
        amount: 0.0,
        peak: 0.0,
        clip: None,
        in_scale: 1.0,
        in_shift: 0.0,
    };
    let clean_gpu = f64s(&c.ctx.read(&clean)?);
    let want = r::data::data_noise(&nr, &clean_gpu, image_len);
    let got = c.ctx.read(&out)?;
    c.cmp("data_noise", &got, &want);
    let one_clean = c.ctx.upload("check", &c.ctx.read(&clean)?[2 * image_len..3 * image_len])?;
    let one = c.ctx.alloc("check", image_len)?;
    d::data_noise(c.ctx, &DataParams { len: image_len as u32, start: 7, ..p }, &one_clean, &one)?;
    c.cmp("data_noise", &c.ctx.read(&one)?, &f64s(&got[2 * image_len..3 * image_len]));
    Ok(())
}

/// Per-image metrics (MSE, PSNR, MAE, Charbonnier, SSIM) into result slots at an offset, the
/// prediction optionally mapped by an affine first (the noisy input in [-1, 1]).
fn check_metrics(c: &mut Checker) -> Result<()> {
    use crate::ops::metrics::{self as m, Slots};
    // (shape, slot offset, slots, affine)
    let cases = [([3, 1, 28, 28], 2usize, 6usize, (1.0f32, 0.0f32)), ([1, 1, 23, 19], 0, 1, (1.0, 0.0)), ([3, 2, 13, 17], 1, 4, (0.5, 0.5))];
    for (shape, offset, n_slots, (sc, sh)) in cases {
        let [n, ch, h, w] = shape;
        let len = n * ch * h * w;
        // A prediction near the clean image, so SSIM is far from 0 and the comparison relative.
        let clean: Vec<f32> = c.rng.vec(len).iter().map(|v| 0.5 + 0.4 * v).collect();
        let pred: Vec<f32> = clean.iter().zip(c.rng.vec(len)).map(|(x, e)| ((x + 0.1 * e) - sh) / sc).collect();
        c.case("metrics", format!("x{} slots {offset}..{} of {n_slots}, pred*{sc}+{sh}", dims(&shape), offset + n));
        let slots = Slots::new(c.ctx, n_slots)?;
        let pv = c.ctx.upload("check", &pred)?;
        let cv = c.ctx.upload("check", &clean)?;
        m::image_metrics(c.ctx, &pv, &cv, shape, (sc, sh), &slots, offset)?;
        let (stats, ssim) = slots.read(c.ctx)?;
        let (pr, cr) = (f64s(&pred), f64s(&clean));
        let per = ch * h * w;
        let (mut want_stats, mut want_ssim, mut got_stats, mut got_ssim) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for i in 0..n {
            let r = i * per..(i + 1) * per;
            let w4 = r::metrics::metrics_pixel(&pr[r.clone()], &cr[r.clone()], sc as f64, sh as f64, m::CHARBONNIER_EPS as f64, m::MSE_FLOOR as f64, m::PSNR_CAP as f64);
            want_stats.extend(w4);
            want_ssim.push(r::metrics::ssim(&pr[r.clone()], &cr[r], ch, h, w, sc as f64, sh as f64));
            got_stats.extend(stats[offset + i]);
            got_ssim.push(ssim[offset + i]);
        }
        c.cmp("metrics_pixel", &got_stats, &want_stats);
        c.cmp("ssim_rows+ssim_image", &got_ssim, &want_ssim);
    }
    Ok(())
}

/// The 2-D FFT (mixed-radix Stockham) against the DFT by definition: the whole spectrum at
/// relative L2 below 1e-5 (and the per-element bound), then magnitude with fftshift, radial
/// profile and batch mean of log-magnitude; sizes with radix 4, 2, 3, 7, a prime (31, 251) and
/// the degenerate 1x1, batches 1 and 3.
fn check_fft(c: &mut Checker) -> Result<()> {
    use crate::ops::fft::Fft2d;
    let sizes = [(28, 28, 3), (28, 28, 1), (32, 32, 1), (27, 31, 3), (64, 64, 1), (1, 1, 3), (1, 1, 1), (7, 251, 1), (256, 2, 1)];
    for (h, w, b) in sizes {
        let x: Vec<f32> = c.rng.vec(b * h * w).iter().map(|v| 0.5 + 0.5 * v).collect();
        c.case("fft", format!("x[{b},{h},{w}] factors {:?} x {:?}", crate::ops::fft::factors(h), crate::ops::fft::factors(w)));
        let plan = Fft2d::new(c.ctx, h, w)?;
        let xv = c.ctx.upload("check", &x)?;
        let spec = c.ctx.alloc("check", 2 * b * h * w)?;
        plan.forward(c.ctx, &xv, b, &spec)?;
        let (re, im) = r::fft::dft2(&f64s(&x), b, h, w);
        let want: Vec<f64> = re.iter().zip(&im).flat_map(|(a, b)| [*a, *b]).collect();
        let prev = std::mem::replace(&mut c.tol, Tol { rel_l2: 1e-5, ..F32 });
        c.cmp("fft_rows+fft_cols", &c.ctx.read(&spec)?, &want);
        c.tol = prev;
        let mag = c.ctx.alloc("check", b * h * w)?;
        plan.magnitude(c.ctx, &spec, b, &mag)?;
        // The later stages read the GPU's spectrum, so only their own work is compared.
        let spec_gpu = f64s(&c.ctx.read(&spec)?);
        let (gr, gi): (Vec<f64>, Vec<f64>) = spec_gpu.chunks(2).map(|p| (p[0], p[1])).unzip();
        c.cmp("fft_magnitude", &c.ctx.read(&mag)?, &r::fft::magnitude(&gr, &gi, b, h, w));
        let mag_gpu = f64s(&c.ctx.read(&mag)?);
        let prof = c.ctx.alloc("check", (b + 1) * plan.bins())?;
        plan.radial(c.ctx, &mag, b, &prof, 1)?;
        c.cmp("fft_radial", &c.ctx.read(&prof)?[plan.bins()..], &r::fft::radial(&mag_gpu, b, h, w));
        let acc = c.ctx.alloc("check", h * w)?;
        plan.mean_log(c.ctx, &mag, b, 0.5, &acc, false)?;
        plan.mean_log(c.ctx, &mag, b, 0.25, &acc, true)?;
        c.cmp("fft_mean_log", &c.ctx.read(&acc)?, &r::fft::mean_log(&mag_gpu, b, h * w, 0.75));
    }
    Ok(())
}

/// The limitations analysis's kernels: Laplacian / gradient statistics per image at offsets, and
/// the nearest-image search over a packed u8 dataset through an index list.
fn check_analysis(c: &mut Checker) -> Result<()> {
    use crate::ops::analysis as a;
    for (n, h, w, offset, slots) in [(3usize, 28usize, 28usize, 1usize, 5usize), (1, 13, 11, 0, 1), (2, 3, 5, 2, 4)] {
        let x: Vec<f32> = c.rng.vec(n * h * w).iter().map(|v| 0.5 + 0.5 * v).collect();
        c.case("analysis", format!("image stats x[{n},{h},{w}] slots {offset}.. of {slots}"));
        let xv = c.ctx.upload("check", &x)?;
        let stats = c.ctx.alloc("check", 2 * slots)?;
        a::image_stats(c.ctx, &xv, [n, h, w], &stats, offset)?;
        let xr = f64s(&x);
        let want: Vec<f64> = (0..n).flat_map(|i| {
            let (l, g) = r::analysis::image_stats(&xr[i * h * w..(i + 1) * h * w], h, w);
            [l, g]
        }).collect();
        c.cmp("analysis_image_stats", &c.ctx.read(&stats)?[2 * offset..2 * (offset + n)], &want);
    }
    for (q, len, count, n_images) in [(3usize, 49usize, 300usize, 400usize), (1, 784, 17, 20), (5, 13, 1, 3)] {
        let bytes: Vec<u8> = (0..n_images * len).map(|_| (c.rng.next_u64() >> 56) as u8).collect();
        let idx: Vec<u32> = (0..count).map(|_| (c.rng.next_u64() % n_images as u64) as u32).collect();
        let x: Vec<f32> = c.rng.vec(q * len).iter().map(|v| 0.5 + 0.5 * v).collect();
        c.case("analysis", format!("nearest: {q} queries of {len} px against {count} of {n_images} images"));
        let ds = c.ctx.upload_u32("check", &crate::feed::pack_u8(&bytes))?;
        let iv = c.ctx.upload_u32("check", &idx)?;
        let xv = c.ctx.upload("check", &x)?;
        let dist = c.ctx.alloc("check", q + 1)?;
        a::nearest(c.ctx, &xv, q, len, &ds, &iv, count, &dist, 1)?;
        let xr = f64s(&x);
        let want: Vec<f64> = (0..q).map(|k| r::analysis::nearest(&xr[k * len..(k + 1) * len], &bytes, &idx, len)).collect();
        c.cmp("analysis_nearest", &c.ctx.read(&dist)?[1..], &want);
    }
    Ok(())
}

/// LPIPS: its two kernels against their CPU twins, then both whole networks against the `lpips`
/// package itself (tests/fixtures/lpips_reference.safetensors, tools/export_lpips.py --fixture):
/// the backbones are regenerated from the splitmix64 stream (seed 1234) the fixture script used,
/// the linear heads are the package's own.
/// The `lpips` package's scaling layer (its weights files carry the same values).
const LPIPS_SHIFT: [f32; 3] = [-0.030, -0.088, -0.188];
const LPIPS_SCALE: [f32; 3] = [0.458, 0.448, 0.450];

fn check_lpips(c: &mut Checker) -> Result<()> {
    use crate::ops::lpips as k;
    let (shift, scale) = (LPIPS_SHIFT, LPIPS_SCALE);
    let wide = |v: [f32; 3]| v.map(|x| x as f64);
    for (shape, affine) in [([3, 1, 13, 11], (2.0f32, -1.0f32)), ([1, 3, 7, 9], (1.0, 0.0)), ([2, 1, 64, 64], (2.0, -1.0))] {
        let [n, ch, h, w] = shape;
        let x = c.rng.vec(n * ch * h * w).iter().map(|v| 0.5 + 0.5 * v).collect::<Vec<f32>>();
        c.case("lpips", format!("input x{} affine {affine:?}", dims(&shape)));
        let xv = c.ctx.upload("check", &x)?;
        let y = c.ctx.alloc("check", n * 3 * h * w)?;
        k::lpips_input(c.ctx, &xv, shape, affine, shift, scale, &y)?;
        let want = r::lpips::lpips_input(&f64s(&x), n, ch, h * w, affine.0 as f64, affine.1 as f64, wide(shift), wide(scale));
        c.cmp("lpips_input", &c.ctx.read(&y)?, &want);
    }
    for (shape, offset, slots) in [([3, 5, 7, 7], 1usize, 5usize), ([1, 64, 3, 3], 0, 1), ([2, 17, 15, 15], 2, 4)] {
        let [n, ch, h, w] = shape;
        let len = n * ch * h * w;
        let a = c.rng.vec(len);
        let b: Vec<f32> = a.iter().zip(c.rng.vec(len)).map(|(x, e)| x + 0.3 * e).collect();
        let head: Vec<f32> = c.rng.vec(ch).iter().map(|v| 0.5 + 0.5 * v).collect();
        c.case("lpips", format!("distance x{} slots {offset}.. of {slots}, then accumulated", dims(&shape)));
        let (av, bv, hv) = (c.ctx.upload("check", &a)?, c.ctx.upload("check", &b)?, c.ctx.upload("check", &head)?);
        let out = c.ctx.alloc("check", slots)?;
        k::lpips_distance(c.ctx, &av, &bv, &hv, shape, &out, offset, false)?;
        let want = r::lpips::lpips_distance(&f64s(&a), &f64s(&b), &f64s(&head), n, ch, h * w, k::EPS as f64);
        c.cmp("lpips_distance", &c.ctx.read(&out)?[offset..offset + n], &want);
        k::lpips_distance(c.ctx, &av, &bv, &hv, shape, &out, offset, true)?;
        c.cmp("lpips_distance", &c.ctx.read(&out)?[offset..offset + n], &want.iter().map(|v| 2.0 * v).collect::<Vec<_>>());
    }
    check_lpips_package(c)
}

const LPIPS_REFERENCE: &[u8] = include_bytes!("../tests/fixtures/lpips_reference.safetensors");

fn check_lpips_package(c: &mut Checker) -> Result<()> {
    use crate::config::LpipsNet;
    use crate::nn::lpips::{Lpips, net_name, tensor_specs};
    let path = std::path::Path::new("tests/fixtures/lpips_reference.safetensors");
    let file = crate::checkpoint::parse(LPIPS_REFERENCE, path)?;
    let bad = |m: String| crate::error::Error::Msg(format!("{}: {m}", path.display()));
    let get = |name: &str| -> Result<(Vec<usize>, Vec<f64>)> {
        let (dt, shape, data) = file.tensors.get(name).ok_or_else(|| bad(format!("missing {name}")))?;
        let v = match dt {
            safetensors::Dtype::F64 => bytemuck::pod_collect_to_vec::<u8, f64>(data),
            _ => bytemuck::pod_collect_to_vec::<u8, f32>(data).iter().map(|&x| x as f64).collect(),
        };
        Ok((shape.clone(), v))
    };
    let (xs, x0) = get("x0")?;
    let (_, x1) = get("x1")?;
    let f32s = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
    let t0 = Tensor::from_slice(c.ctx, &xs, &f32s(&x0))?;
    let t1 = Tensor::from_slice(c.ctx, &xs, &f32s(&x1))?;
    for net in [LpipsNet::Alex, LpipsNet::Vgg] {
        let name = net_name(net);
        // The fixture's backbone: one splitmix64 stream, each conv's weight (u * sqrt(6 /
        // fan_in), in f32) then its bias (0.1 * u), in forward order.
        let mut rng = crate::util::rng::Rng::new(1234);
        let mut values = std::collections::HashMap::new();
        for (t, shape) in tensor_specs(net) {
            let n: usize = shape.iter().product();
            let v: Vec<f32> = if t.starts_with("net.") && t.ends_with(".weight") {
                let bound = (6.0f64 / (shape[1] * shape[2] * shape[3]) as f64).sqrt() as f32;
                (0..n).map(|_| rng.uniform() * bound).collect()
            } else if t.starts_with("net.") {
                (0..n).map(|_| 0.1f32 * rng.uniform()).collect()
            } else if t == "scaling_layer.shift" {
                LPIPS_SHIFT.to_vec()
            } else if t == "scaling_layer.scale" {
                LPIPS_SCALE.to_vec()
            } else {
                f32s(&get(&format!("{name}.{t}"))?.1)
            };
            values.insert(t, v);
        }
        let lp = Lpips::from_tensors(c.ctx, net, &|t: &str, _: &[usize]| values.get(t).cloned().ok_or_else(|| bad(format!("no values for {t}"))))?;
        c.case("lpips", format!("LPIPS {name} (lpips package, random backbone) x{} -> 64x64", dims(&xs)));
        let out = c.ctx.alloc("check", xs[0])?;
        let (fa, fb) = (lp.features(&t0, (2.0, -1.0))?, lp.features(&t1, (2.0, -1.0))?);
        lp.distance(&fa, &fb, &out, 0)?;
        let prev = std::mem::replace(&mut c.tol, F32_CHAINED);
        c.cmp("lpips (whole network)", &c.ctx.read(&out)?, &get(&format!("{name}.lpips"))?.1);
        c.tol = prev;
    }
    Ok(())
}

/// One training step of whole models, GPU against the CPU reference tape running the same model
/// code: the loss, every parameter gradient, and the batch-norm running statistics.
fn check_models(c: &mut Checker) -> Result<()> {
    c.tol = F32_CHAINED;
    use crate::nn::model::{Arch, Fwd, NormType, UpMode};
    use crate::nn::{Model, ModelConfig, Weights};
    let cfgs = [
        ("conv 4/3 group relu", ModelConfig { name: Arch::Conv, base_ch: 4, num_downs: 3, ..Default::default() }),
        ("conv 4/2 batch silu dropout", ModelConfig { name: Arch::Conv, base_ch: 4, num_downs: 2, norm_type: NormType::Batch, activation: crate::nn::model::ActName::Silu, dropout: 0.25, ..Default::default() }),
        ("unet 4/2 group relu bilinear", ModelConfig { base_ch: 4, num_downs: 2, ..Default::default() }),
        ("unet 4/2 batch leakyrelu transposed dropout", ModelConfig { base_ch: 4, num_downs: 2, norm_type: NormType::Batch, activation: crate::nn::model::ActName::Leakyrelu, up: UpMode::Transposed, dropout: 0.25, ..Default::default() }),
        ("unet 4/3 instance gelu bilinear", ModelConfig { base_ch: 4, num_downs: 3, norm_type: NormType::Instance, activation: crate::nn::model::ActName::Gelu, ..Default::default() }),
        ("unet 4/1 none relu transposed", ModelConfig { base_ch: 4, num_downs: 1, norm_type: NormType::None, up: UpMode::Transposed, ..Default::default() }),
    ];
    let (n, hw) = (2usize, 28usize);
    for (name, mc) in cfgs {
        c.case("model", format!("{name}, x[{n},1,{hw},{hw}], mse, training step"));
        let (model, layout) = Model::new(&mc)?;
        let (p0, b0) = layout.init(c.rng.next_u64());
        let xs: Vec<f32> = c.rng.vec(n * hw * hw).iter().map(|v| 0.5 + 0.5 * v).collect();
        let ts: Vec<f32> = c.rng.vec(n * hw * hw).iter().map(|v| 0.5 + 0.5 * v).collect();
        let (seed, step) = (77u64, 5u64);

        let params = c.ctx.upload("check", &p0)?;
        let buffers = c.ctx.upload("check", &b0)?;
        let grads = c.ctx.alloc("check", layout.param_len())?;
        crate::ops::elementwise::fill(c.ctx, &grads, 0.0)?;
        let w = Weights::views(c.ctx, &layout, &params, Some(&grads), &buffers)?;
        let x = Tensor::from_slice(c.ctx, &[n, 1, hw, hw], &xs)?;
        let t = Tensor::from_slice(c.ctx, &[n, 1, hw, hw], &ts)?;
        let y = model.forward(&Fwd::gpu(&w, true, seed, step), &x)?;
        let l = loss::mse_loss(&y, &t)?;
        drop(c.ctx.backward(&l)?);
        let (gl, gg, gb) = (l.to_vec()?, c.ctx.read(&grads)?, c.ctx.read(&buffers)?);

        let mut g = crate::reference::graph::Graph::default();
        let leaf = |g: &mut crate::reference::graph::Graph, e: &crate::nn::layout::Entry, src: &[f32]| g.leaf(&e.shape, f64s(&src[e.offset..e.offset + e.numel()]));
        let pv: Vec<_> = layout.params.iter().map(|e| leaf(&mut g, e, &p0)).collect();
        let bv: Vec<_> = layout.buffers.iter().map(|e| leaf(&mut g, e, &b0)).collect();
        let xv = g.leaf(&[n, 1, hw, hw], f64s(&xs));
        let tv = g.leaf(&[n, 1, hw, hw], f64s(&ts));
        let f = Fwd { params: &pv, buffers: &bv, training: true, seed, step };
        let yv = model.forward_on(&mut g, &f, &xv)?;
        let lv = g.loss(yv, tv, r::loss::Loss::Mse);
        let rg = g.backward(lv);
        c.cmp("loss", &gl, &[g.data(lv)[0]]);
        let want: Vec<Vec<f64>> = layout.params.iter().zip(&pv).map(|(e, v)| rg[v.0].clone().unwrap_or_else(|| vec![0.0; e.numel()])).collect();
        let want_buf: Vec<Vec<f64>> = bv.iter().map(|v| g.data(*v).to_vec()).collect();
        cmp_model_state(c, name, &layout, &gg, &want, &gb, &want_buf);
        c.ctx.clear_tape();
    }
    Ok(())
}

/// After a model's training step: every parameter gradient (as one vector in layout order, and
/// the worst single tensor) and the running statistics, against `want` / `want_buf` (one vector
/// per layout entry). The per-element bound applies tensor by tensor, each at its own scale.
fn cmp_model_state(c: &mut Checker, name: &str, layout: &crate::nn::Layout, grads: &[f32], want: &[Vec<f64>], buffers: &[f32], want_buf: &[Vec<f64>]) {
    let slice = |v: &[f32], e: &crate::nn::layout::Entry| v[e.offset..e.offset + e.numel()].to_vec();
    let (mut gpu_all, mut ref_all, mut worst) = (Vec::new(), Vec::new(), (0.0f64, String::new()));
    let mut bad = Vec::new();
    for (e, w) in layout.params.iter().zip(want) {
        let got = slice(grads, e);
        let err = rel_l2(&got, w);
        if err > worst.0 {
            worst = (err, e.name.clone());
        }
        if let Some(m) = elementwise_mismatches(&got, w, c.tol) {
            bad.push(format!("{}: {m}", e.name));
        }
        gpu_all.extend(got);
        ref_all.extend_from_slice(w);
    }
    let mismatches = (!bad.is_empty()).then(|| bad.join("; "));
    c.push("param grads (all)", rel_l2(&gpu_all, &ref_all), mismatches);
    c.shape = format!("{name}: worst tensor {}", worst.1);
    c.push("param grads (worst tensor)", worst.0, None);
    if !layout.buffers.is_empty() {
        c.shape = format!("{name}: running mean/var after the step");
        let got: Vec<f32> = layout.buffers.iter().flat_map(|e| slice(buffers, e)).collect();
        c.cmp("batch_norm running stats", &got, &want_buf.concat());
    }
}

/// Written by tools/torch_reference.py: small SPEC models' weights and batch, and what PyTorch
/// (float64) computes from them.
const TORCH_REFERENCE: &[u8] = include_bytes!("../tests/fixtures/torch_reference.safetensors");

/// dae's GPU models against PyTorch itself, on PyTorch's weights: eval and training outputs, the
/// MSE loss, every parameter gradient and the running statistics after the step. The CPU tape
/// of `check_models` runs dae's own model code; only this check sees a structural mistake the two
/// would share.
fn check_torch(c: &mut Checker) -> Result<()> {
    c.tol = F32_CHAINED;
    use crate::checkpoint::{self, Loaded};
    use crate::nn::model::Fwd;
    use crate::nn::{Model, ModelConfig, Weights};
    let path = std::path::Path::new("tests/fixtures/torch_reference.safetensors");
    let file = checkpoint::parse(TORCH_REFERENCE, path)?;
    let bad = |m: String| crate::error::Error::Msg(format!("{}: {m}", path.display()));
    let configs: std::collections::BTreeMap<String, ModelConfig> =
        serde_json::from_str(file.meta.get("configs").map_or("", |s| s.as_str())).map_err(|e| bad(format!("metadata `configs`: {e}")))?;
    // Tensors under `{prefix}` with the prefix stripped, as a file of their own.
    let part = |prefix: &str| Loaded {
        tensors: file.tensors.iter().filter_map(|(k, v)| k.strip_prefix(prefix).map(|n| (n.to_string(), v.clone()))).collect(),
        meta: Default::default(),
        path: path.join(prefix),
    };
    let values = |name: &str| -> Result<(Vec<usize>, Vec<f64>)> {
        let (_, shape, data) = file.tensors.get(name).ok_or_else(|| bad(format!("missing tensor {name}")))?;
        Ok((shape.clone(), bytemuck::pod_collect_to_vec::<u8, f32>(data).iter().map(|&v| v as f64).collect()))
    };
    for (id, mc) in configs {
        let (model, layout) = Model::new(&mc)?;
        let w0 = checkpoint::load_weights(&layout, &part(&format!("{id}.state.")))?;
        let (xs, xv) = values(&format!("{id}.x"))?;
        let (ts, tv) = values(&format!("{id}.t"))?;
        c.case("model_vs_torch", format!("{id}, x{}", dims(&xs)));
        let params = c.ctx.upload("check", &w0.params)?;
        let buffers = c.ctx.upload("check", &w0.buffers)?;
        let grads = c.ctx.alloc("check", layout.param_len())?;
        crate::ops::elementwise::fill(c.ctx, &grads, 0.0)?;
        let w = Weights::views(c.ctx, &layout, &params, Some(&grads), &buffers)?;
        let f32s = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
        let x = Tensor::from_slice(c.ctx, &xs, &f32s(&xv))?;
        let t = Tensor::from_slice(c.ctx, &ts, &f32s(&tv))?;
        let ye = c.ctx.no_grad(|| model.forward(&Fwd::gpu(&w, false, 0, 0), &x))?;
        c.cmp_t("forward (eval)", &ye, &values(&format!("{id}.y_eval"))?.1)?;
        let y = model.forward(&Fwd::gpu(&w, true, 0, 0), &x)?;
        let l = loss::mse_loss(&y, &t)?;
        c.cmp_t("forward (train)", &y, &values(&format!("{id}.y_train"))?.1)?;
        c.cmp_t("mse loss", &l, &values(&format!("{id}.loss"))?.1)?;
        drop(c.ctx.backward(&l)?);
        let (gg, gb) = (c.ctx.read(&grads)?, c.ctx.read(&buffers)?);
        let want = layout.params.iter().map(|e| Ok(values(&format!("{id}.grad.{}", e.name))?.1)).collect::<Result<Vec<_>>>()?;
        let want_buf = layout.buffers.iter().map(|e| Ok(values(&format!("{id}.buffer_after.{}", e.name))?.1)).collect::<Result<Vec<_>>>()?;
        cmp_model_state(c, &id, &layout, &gg, &want, &gb, &want_buf);
        c.ctx.clear_tape();
    }
    Ok(())
}

/// Every op family the checks cover, in report order, with the function that checks it.
const FAMILIES: &[(&str, fn(&mut Checker) -> Result<()>)] = &[
    ("conv2d+conv_transpose2d", check_convs),
    ("group_norm", check_group_norm),
    ("batch_norm", check_batch_norm),
    ("activation", check_activations),
    ("maxpool2d", check_maxpool),
    ("resize_bilinear", check_resize),
    ("pad2d", check_pad),
    ("concat", check_concat),
    ("dropout2d", check_dropout),
    ("elementwise", check_elementwise),
    ("loss", check_losses),
    ("sum", check_reduce),
    ("composed", check_composed),
    ("optim", check_optim),
    ("data", check_data),
    ("metrics", check_metrics),
    ("lpips", check_lpips),
    ("fft", check_fft),
    ("analysis", check_analysis),
    ("model", check_models),
    ("torch", check_torch),
];

/// The names `run` filters on.
pub fn families() -> Vec<&'static str> {
    FAMILIES.iter().map(|(n, _)| *n).collect()
}

/// Run the checks of the families whose name contains `filter` (all when `None`).
pub fn run(ctx: &Ctx, filter: Option<&str>) -> Result<Vec<CheckRow>> {
    let mut c = Checker { ctx, rng: Rng::new(0x5EED), rows: Vec::new(), op: "", shape: String::new(), tol: F32 };
    ctx.set_poison(true);
    let result = (|| {
        for (name, f) in FAMILIES {
            if filter.is_none_or(|w| name.contains(w)) {
                c.tol = F32;
                f(&mut c)?;
                ctx.clear_tape();
            }
        }
        Ok(())
    })();
    ctx.set_poison(false);
    result.map(|_| c.rows)
}

// ---- the composed graph --------------------------------------------------------------------

/// The composed check's inputs (f64), shared by the GPU run, the reference chain and its
/// finite-difference test.
#[derive(Clone)]
pub struct Composed {
    pub x: Vec<f64>,
    pub w1: Vec<f64>,
    pub b1: Vec<f64>,
    pub gamma: Vec<f64>,
    pub beta: Vec<f64>,
    pub w2: Vec<f64>,
    pub w3: Vec<f64>,
    pub b3: Vec<f64>,
    pub target: Vec<f64>,
}

pub const COMPOSED_N: usize = 2;
pub const COMPOSED_HW: usize = 9;
const C_IN: usize = 3;
const C1: usize = 4;
const C2: usize = 6;
const GROUPS: usize = 2;

impl Composed {
    pub fn shapes() -> [(&'static str, Vec<usize>); 9] {
        let (n, s) = (COMPOSED_N, COMPOSED_HW);
        [
            ("x", vec![n, C_IN, s, s]),
            ("w1", vec![C1, C_IN, 3, 3]),
            ("b1", vec![C1]),
            ("gamma", vec![C1]),
            ("beta", vec![C1]),
            ("w2", vec![C2, C1, 3, 3]),
            ("w3", vec![1, C1 + C2, 3, 3]),
            ("b3", vec![1]),
            ("target", vec![n, 1, s, s]),
        ]
    }

    pub fn random(rng: &mut Rng) -> Composed {
        let sh = Composed::shapes();
        let mut v = |i: usize, scale: f32| -> Vec<f64> { rng.vec(sh[i].1.iter().product()).iter().map(|x| (x * scale) as f32 as f64).collect() };
        Composed {
            x: v(0, 1.0),
            w1: v(1, 0.5),
            b1: v(2, 0.1),
            gamma: v(3, 0.3).iter().map(|g| (1.0 + g) as f32 as f64).collect(),
            beta: v(4, 0.1),
            w2: v(5, 0.3),
            w3: v(6, 0.3),
            b3: v(7, 0.1),
            target: v(8, 0.5).iter().map(|t| (0.5 + t) as f32 as f64).collect(),
        }
    }

    pub fn params_mut(&mut self) -> [&mut Vec<f64>; 8] {
        [&mut self.x, &mut self.w1, &mut self.b1, &mut self.gamma, &mut self.beta, &mut self.w2, &mut self.w3, &mut self.b3]
    }
}

/// The composed graph on the CPU reference: conv -> group_norm -> silu -> maxpool -> conv ->
/// resize x2 -> pad -> concat with the skip -> conv -> sigmoid -> mse. Returns the loss and the
/// gradients of x, w1, b1, gamma, beta, w2, w3, b3 (in that order).
pub fn composed_reference(p: &Composed) -> (f64, [Vec<f64>; 8]) {
    use r::activation::Activation as A;
    let (n, s) = (COMPOSED_N, COMPOSED_HW);
    let hw = s * s;
    let c1 = r::conv2d::Conv2dShape { n, cin: C_IN, h: s, w: s, cout: C1, kh: 3, kw: 3, stride: (1, 1), pad: (1, 1) };
    let h1 = r::conv2d::conv2d_forward(&c1, &p.x, &p.w1, Some(&p.b1));
    let (h2, mean, rstd) = r::group_norm::group_norm_forward(n, C1, hw, GROUPS, 1e-5, &h1, &p.gamma, &p.beta);
    let skip = r::activation::activation_forward(A::Silu, &h2);
    let (pooled, idx) = r::maxpool2d::maxpool2d_forward(n, C1, s, s, (2, 2), (2, 2), &skip);
    let ps = s / 2;
    let c2 = r::conv2d::Conv2dShape { n, cin: C1, h: ps, w: ps, cout: C2, kh: 3, kw: 3, stride: (1, 1), pad: (1, 1) };
    let h3 = r::conv2d::conv2d_forward(&c2, &pooled, &p.w2, None);
    let us = 2 * ps;
    let up = r::resize_bilinear::resize_bilinear_forward(n, C2, ps, ps, us, us, true, &h3);
    let pads = (0, s - us, 0, s - us);
    let padded = r::pad2d::pad2d_forward(n, C2, us, us, pads, &up);
    let cat = r::concat::concat_forward(n, hw, &[(&skip, C1), (&padded, C2)]);
    let c3 = r::conv2d::Conv2dShape { n, cin: C1 + C2, h: s, w: s, cout: 1, kh: 3, kw: 3, stride: (1, 1), pad: (1, 1) };
    let h4 = r::conv2d::conv2d_forward(&c3, &cat, &p.w3, Some(&p.b3));
    let out = r::activation::activation_forward(A::Sigmoid, &h4);
    let loss = r::loss::loss_forward(r::loss::Loss::Mse, &out, &p.target);

    let (d_out, _) = r::loss::loss_backward(r::loss::Loss::Mse, &out, &p.target, 1.0);
    let d_h4 = r::activation::activation_backward(A::Sigmoid, &h4, &d_out);
    let d_cat = r::conv2d::conv2d_input_grad(&c3, &p.w3, &d_h4);
    let g_w3 = r::conv2d::conv2d_weight_grad(&c3, &cat, &d_h4);
    let g_b3 = r::elementwise::bias_add_backward(n, 1, hw, &d_h4);
    let parts = r::concat::concat_backward(n, hw, &[C1, C2], &d_cat);
    let d_up = r::pad2d::pad2d_backward(n, C2, us, us, pads, &parts[1]);
    let d_h3 = r::resize_bilinear::resize_bilinear_backward(n, C2, ps, ps, us, us, true, &d_up);
    let g_w2 = r::conv2d::conv2d_weight_grad(&c2, &pooled, &d_h3);
    let d_pooled = r::conv2d::conv2d_input_grad(&c2, &p.w2, &d_h3);
    let mut d_skip = r::maxpool2d::maxpool2d_backward(n, C1, s, s, (2, 2), (2, 2), &idx, &d_pooled);
    for (a, b) in d_skip.iter_mut().zip(&parts[0]) {
        *a += b;
    }
    let d_h2 = r::activation::activation_backward(A::Silu, &h2, &d_skip);
    let (d_h1, g_gamma, g_beta) = r::group_norm::group_norm_backward(n, C1, hw, GROUPS, &h1, &p.gamma, &mean, &rstd, &d_h2);
    let g_x = r::conv2d::conv2d_input_grad(&c1, &p.w1, &d_h1);
    let g_w1 = r::conv2d::conv2d_weight_grad(&c1, &p.x, &d_h1);
    let g_b1 = r::elementwise::bias_add_backward(n, C1, hw, &d_h1);
    (loss, [g_x, g_w1, g_b1, g_gamma, g_beta, g_w2, g_w3, g_b3])
}

fn check_composed(c: &mut Checker) -> Result<()> {
    let p = Composed::random(&mut c.rng);
    let sh = Composed::shapes();
    let up = |v: &[f64], i: usize| -> Result<Tensor> {
        let d: Vec<f32> = v.iter().map(|&x| x as f32).collect();
        Tensor::leaf(c.ctx, &sh[i].1, &d)
    };
    let leaves = [up(&p.x, 0)?, up(&p.w1, 1)?, up(&p.b1, 2)?, up(&p.gamma, 3)?, up(&p.beta, 4)?, up(&p.w2, 5)?, up(&p.w3, 6)?, up(&p.b3, 7)?];
    let target = up(&p.target, 8)?.detach();
    let [x, w1, b1, gamma, beta, w2, w3, b3] = &leaves;
    c.case("composed", "conv>gn>silu>pool>conv>up2x>pad>cat>conv>sigmoid>mse, x[2,3,9,9]".into());

    let h1 = conv2d::conv2d(x, w1, Some(b1), (1, 1), (1, 1))?;
    let h2 = group_norm::group_norm(&h1, GROUPS, gamma, beta, 1e-5)?;
    let skip = activation::silu(&h2)?;
    let pooled = maxpool2d::max_pool2d(&skip, (2, 2), (2, 2))?;
    let h3 = conv2d::conv2d(&pooled, w2, None, (1, 1), (1, 1))?;
    let up2 = resize_bilinear::upsample2x(&h3, true)?;
    let [_, _, uh, uw] = up2.nchw("composed")?;
    let padded = pad2d::pad2d(&up2, (0, COMPOSED_HW - uw, 0, COMPOSED_HW - uh))?;
    let cat = concat::concat(&[&skip, &padded])?;
    let h4 = conv2d::conv2d(&cat, w3, Some(b3), (1, 1), (1, 1))?;
    let out = activation::sigmoid(&h4)?;
    let l = loss::mse_loss(&out, &target)?;
    let grads = c.ctx.backward(&l)?;

    let (lr, gr) = composed_reference(&p);
    c.cmp_t("loss", &l, &[lr])?;
    for ((name, _), (t, g)) in sh.iter().zip(leaves.iter().zip(gr.iter())) {
        c.grad(&format!("grad {name}"), &grads, t, g)?;
    }
    Ok(())
}

/// A fixed-width table of the rows, for the terminal.
pub fn table(rows: &[CheckRow]) -> String {
    let mut out = format!("{:<17} {:<28} {:<58} {:>10} {:>8}  {}\n", "op", "entry", "shape", "rel_err", "tol", "pass");
    for r in rows {
        out += &format!(
            "{:<17} {:<28} {:<58} {:>10.2e} {:>8.0e}  {}\n",
            r.op,
            r.entry,
            r.shape,
            r.rel_err,
            r.tol,
            if r.pass { "ok" } else { "FAIL" }
        );
        if let Some(m) = &r.mismatches {
            out += &format!("    mismatches: {m}\n");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The composed reference chain against central differences in f64: every input's gradient.
    #[test]
    fn composed_reference_matches_finite_differences() {
        let mut rng = Rng::new(11);
        let p = Composed::random(&mut rng);
        let (_, grads) = composed_reference(&p);
        let h = 1e-6;
        for (k, g) in grads.iter().enumerate() {
            let mut fd = vec![0.0; g.len()];
            for (i, slot) in fd.iter_mut().enumerate() {
                let mut a = p.clone();
                a.params_mut()[k][i] += h;
                let mut b = p.clone();
                b.params_mut()[k][i] -= h;
                *slot = (composed_reference(&a).0 - composed_reference(&b).0) / (2.0 * h);
            }
            let num: f64 = fd.iter().zip(g).map(|(a, b)| (a - b).powi(2)).sum::<f64>().sqrt();
            let den: f64 = g.iter().map(|b| b * b).sum::<f64>().sqrt();
            assert!(den > 0.0, "input {k}: gradient is all zeros");
            assert!(num / den < 1e-6, "input {k} ({}): rel err {}", Composed::shapes()[k].0, num / den);
        }
    }

    /// One element 0.5% off in a 10k-element tensor passes the relative L2 bound but not the
    /// per-element one; the message names the element.
    #[test]
    fn one_wrong_element_cannot_hide_in_the_norm() {
        let mut rng = Rng::new(5);
        let r: Vec<f64> = rng.vec(10_000).iter().map(|&v| v as f64).collect();
        let mut g: Vec<f32> = r.iter().map(|&v| v as f32).collect();
        assert!(elementwise_mismatches(&g, &r, F32).is_none());
        let k = (0..r.len()).find(|&i| r[i].abs() > 0.5).unwrap();
        g[k] *= 1.005;
        assert!(rel_l2(&g, &r) < TOL_F32, "the norm alone would pass it");
        let m = elementwise_mismatches(&g, &r, F32).expect("the per-element bound catches it");
        assert!(m.starts_with("1 of 10000") && m.contains(&format!("[{k}]")), "{m}");
        g[k] = f32::NAN;
        assert!(elementwise_mismatches(&g, &r, F32).is_some());
    }

    #[test]
    fn rel_l2_flags_nan_and_length() {
        assert!(rel_l2(&[f32::NAN], &[1.0]).is_infinite());
        assert!(rel_l2(&[1.0, 2.0], &[1.0]).is_infinite());
        assert!(rel_l2(&[1.0, 2.0], &[1.0, 2.0]) < 1e-12);
    }
}
