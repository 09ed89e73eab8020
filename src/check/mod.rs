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

//!
//! One file per group of families (conv, norm, pointwise, shape, reduce, train, model, eval);
//! this one holds the harness: tolerances, the comparison, the [`Checker`], the family table.

mod amp;
mod conv;
mod eval;
mod model;
mod noise;
mod norm;
mod pointwise;
mod reduce;
mod shape;
mod train;

pub use model::{COMPOSED_HW, COMPOSED_N, Composed, composed_reference};

use serde::{Deserialize, Serialize};

use crate::autograd::{Grads, Graph};
use crate::error::Result;
use crate::gpu::Ctx;
use crate::ops::activation::Activation;
use crate::ops::kernels::{Kernels, Pin};
use crate::ops::loss::LossKind;
use crate::ops::reduce::ReduceKind;
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

/// A GEMM of f16-rounded operands (`train.amp`'s convs) against the reference on the exact
/// f32 operands: each operand carries a relative rounding error up to 2^-11.
pub const F16_OPERANDS: Tol = Tol { rel_l2: 2e-3, rtol: 2e-2, atol: 2e-3 };

/// Whole-model steps (tens of kernels chained: errors compound): the same relative L2 bound,
/// a looser per-element one.
pub const F32_CHAINED: Tol = Tol { rel_l2: TOL_F32, rtol: 1e-2, atol: 1e-4 };

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CheckRow {
    pub op: String,
    pub entry: String,
    pub shape: String,
    /// JSON has no infinity or NaN: such a value is written as null and read back as infinity.
    #[serde(deserialize_with = "null_is_infinite")]
    pub rel_err: f64,
    pub tol: f64,
    pub pass: bool,
    /// The elements outside the per-element bound (count and the first few), when any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mismatches: Option<String>,
}

fn null_is_infinite<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::INFINITY))
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
    /// The graph the current case records into; each backward consumes it and starts a new one
    /// in which the leaves made so far want gradients again.
    g: Graph,
    /// How the current case's ops run their kernels (every graph the checker makes runs so).
    kn: Kernels,
    leaves: Vec<Tensor>,
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
        self.leaf_of(shape, &d)
    }

    /// Like `leaf` with values in [lo, hi).
    fn leaf_in(&mut self, shape: &[usize], lo: f32, hi: f32) -> Result<(Tensor, Vec<f64>)> {
        let d: Vec<f32> = self.rng.vec(shape.iter().product()).iter().map(|v| lo + (v + 1.0) * 0.5 * (hi - lo)).collect();
        self.leaf_of(shape, &d)
    }

    fn leaf_of(&mut self, shape: &[usize], d: &[f32]) -> Result<(Tensor, Vec<f64>)> {
        let t = Tensor::from_slice(self.ctx, shape, d)?;
        self.leaves.push(t.clone());
        Ok((self.g.leaf(&t), f64s(d)))
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
        self.push_value(entry, rel_err, tol, mismatches);
    }

    /// A row whose value (`rel_err`) passes at most `tol` when there are no mismatches.
    fn push_value(&mut self, entry: &str, value: f64, tol: f64, mismatches: Option<String>) {
        let pass = value <= tol && mismatches.is_none();
        self.rows.push(CheckRow { op: self.op.into(), entry: entry.into(), shape: self.shape.clone(), rel_err: value, tol, pass, mismatches });
    }

    /// `gpu` against `reference` within a bound per element (`bound[i]`, derived for the kernel
    /// from WGSL's stated accuracy; zero where it is exact). The row's relative L2 tolerance is
    /// ||bound|| / ||ref||, the largest relative L2 error those bounds allow: implied by them,
    /// printed so the row shows how much of WGSL's allowance the driver used.
    fn cmp_bounded(&mut self, entry: &str, gpu: &[f32], reference: &[f64], bound: &[f64]) {
        let e = rel_l2(gpu, reference);
        let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
        let tol = if norm(reference) == 0.0 { norm(bound) } else { norm(bound) / norm(reference) };
        let mut first = Vec::new();
        let mut count = 0usize;
        for (i, ((g, r), b)) in gpu.iter().zip(reference).zip(bound).enumerate() {
            let g = *g as f64;
            if !((g - r).abs() <= *b) {
                count += 1;
                if first.len() < 4 {
                    first.push(format!("[{i}] {g:.6e} vs {r:.6e} (bound {b:.3e})"));
                }
            }
        }
        let mismatches = if gpu.len() != reference.len() || bound.len() != reference.len() {
            Some(format!("{} elements, the reference has {} and the bounds {}", gpu.len(), reference.len(), bound.len()))
        } else {
            (count > 0).then(|| format!("{count} of {} elements outside their WGSL-accuracy bound: {}", gpu.len(), first.join(", ")))
        };
        self.push_value(entry, e, tol, mismatches);
    }

    async fn cmp_t(&mut self, entry: &str, gpu: &Tensor, reference: &[f64]) -> Result<()> {
        let v = gpu.to_vec().await?;
        self.cmp(entry, &v, reference);
        Ok(())
    }

    /// Backward from `y` with a random upstream gradient (consuming the case's graph); returns
    /// the grads and that gradient.
    fn backward(&mut self, y: &Tensor) -> Result<(Grads, Vec<f64>)> {
        let g = self.rng.vec(y.numel());
        let gt = Tensor::from_slice(self.ctx, y.shape(), &g)?;
        let graph = std::mem::replace(&mut self.g, Graph::new(self.ctx).with_kernels(self.kn.clone()));
        for t in &self.leaves {
            self.g.leaf(t);
        }
        Ok((graph.backward_with(y, &gt)?, f64s(&g)))
    }

    /// A fresh graph (the previous one, and what it saved, dropped).
    fn fresh(&mut self) {
        self.g = Graph::new(self.ctx).with_kernels(self.kn.clone());
        self.leaves.clear();
    }

    /// Run the ops recorded from now on as `k` says.
    fn set_kernels(&mut self, k: Kernels) {
        self.g.set_kernels(k.clone());
        self.kn = k;
    }

    /// A two-operand kernel's output against `reference(a, b)`. Under half precision
    /// (the checker's `Kernels` has a half flag) twice: against the reference on the f16-rounded operands at the current
    /// bounds, and on the exact operands at `F16_OPERANDS` (entry + " vs exact").
    async fn cmp_q(&mut self, entry: &str, gpu: &Tensor, ops: [&[f64]; 2], reference: impl Fn(&[f64], &[f64]) -> Vec<f64>) -> Result<()> {
        let v = gpu.to_vec().await?;
        self.cmp_q_vec(entry, &v, ops, reference);
        Ok(())
    }

    fn cmp_q_vec(&mut self, entry: &str, gpu: &[f32], [a, b]: [&[f64]; 2], reference: impl Fn(&[f64], &[f64]) -> Vec<f64>) {
        if !self.kn.is_half() {
            return self.cmp(entry, gpu, &reference(a, b));
        }
        let q = |v: &[f64]| -> Vec<f64> { v.iter().map(|&x| r::amp::round_f16(x as f32) as f64).collect() };
        self.cmp(entry, gpu, &reference(&q(a), &q(b)));
        let tol = std::mem::replace(&mut self.tol, F16_OPERANDS);
        self.cmp(&format!("{entry} vs exact"), gpu, &reference(a, b));
        self.tol = tol;
    }

    /// `grad` for a two-operand kernel, as `cmp_q`.
    async fn grad_q(
        &mut self,
        entry: &str,
        grads: &Grads,
        t: &Tensor,
        ops: [&[f64]; 2],
        reference: impl Fn(&[f64], &[f64]) -> Vec<f64>,
    ) -> Result<()> {
        let v = match grads.get(t) {
            Some(g) => g.to_vec().await?,
            None => vec![f32::NAN],
        };
        self.cmp_q_vec(entry, &v, ops, reference);
        Ok(())
    }

    async fn grad(&mut self, entry: &str, grads: &Grads, t: &Tensor, reference: &[f64]) -> Result<()> {
        match grads.get(t) {
            Some(g) => self.cmp_t(entry, &g, reference).await,
            None => {
                self.cmp(entry, &[f32::NAN], reference);
                Ok(())
            }
        }
    }
}

/// The overflow flag half precision needs (cleared), or None with a note where the adapter has
/// no shader-f16 and the f16 checks of `what` do not apply.
fn f16_flag(c: &Checker, what: &str) -> Result<Option<crate::gpu::View>> {
    if !c.ctx.gpu().has_f16() {
        eprintln!("note: this adapter has no shader-f16: the f16 {what} checks do not apply (train.amp trains in f32 here)");
        return Ok(None);
    }
    let flag = c.ctx.alloc("check", 1)?;
    crate::ops::elementwise::fill(c.ctx, &flag, 0.0)?;
    Ok(Some(flag))
}

/// One family's checks: an async function of the checker (its readbacks resolve in the
/// browser's event loop), boxed so that the families fit one table.
type Family = for<'a, 'b> fn(&'a mut Checker<'b>) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<()>> + 'a>>;

macro_rules! family {
    ($f:path) => {
        |c| Box::pin($f(c))
    };
}

/// Every op family the checks cover, in report order, with the function that checks it.
const FAMILIES: &[(&str, Family)] = &[
    ("conv2d+conv_transpose2d", family!(conv::check_convs)),
    ("conv2d+conv_transpose2d f16 (amp)", family!(conv::check_convs_f16)),
    ("loss scaler+f16 cast (amp)", family!(amp::check_amp)),
    ("group_norm", family!(norm::check_group_norm)),
    ("group_norm+batch_norm f16 (amp)", family!(norm::check_norms_f16)),
    ("batch_norm", family!(norm::check_batch_norm)),
    ("group_norm+batch_norm fused activation", family!(norm::check_norm_act)),
    ("activation", family!(pointwise::check_activations)),
    ("maxpool2d", family!(shape::check_maxpool)),
    ("resize_bilinear", family!(shape::check_resize)),
    ("pad2d", family!(shape::check_pad)),
    ("concat", family!(shape::check_concat)),
    ("channel slices", family!(shape::check_slices)),
    ("dropout2d", family!(pointwise::check_dropout)),
    ("elementwise", family!(pointwise::check_elementwise)),
    ("loss", family!(reduce::check_losses)),
    ("sum", family!(reduce::check_reduce)),
    ("composed", family!(model::check_composed)),
    ("optim", family!(train::check_optim)),
    ("data", family!(train::check_data)),
    ("metrics", family!(eval::check_metrics)),
    ("lpips", family!(eval::check_lpips)),
    ("fft", family!(eval::check_fft)),
    ("analysis", family!(eval::check_analysis)),
    ("probe", family!(pointwise::check_probe)),
    ("model", family!(model::check_models)),
    ("torch", family!(model::check_torch)),
];

/// The names `run` filters on.
pub fn families() -> Vec<&'static str> {
    FAMILIES.iter().map(|(n, _)| *n).collect()
}

/// Run the checks of the families whose name contains `filter` (all when `None`).
/// Every buffer the checks allocate is filled with NaN first. The families that do not run
/// every blocking run the ones `DAE_KERNELS` pins.
pub async fn run(ctx: &Ctx, filter: Option<&str>) -> Result<Vec<CheckRow>> {
    let ctx = &ctx.poisoning();
    let kn = Kernels::pinned(Pin::from_env()?);
    let mut c = Checker {
        ctx,
        g: Graph::new(ctx).with_kernels(kn.clone()),
        kn,
        leaves: Vec::new(),
        rng: Rng::new(0x5EED),
        rows: Vec::new(),
        op: "",
        shape: String::new(),
        tol: F32,
    };
    for (name, f) in FAMILIES {
        if filter.is_none_or(|w| name.contains(w)) {
            c.tol = F32;
            c.fresh();
            f(&mut c).await?;
        }
    }
    Ok(c.rows)
}

/// A fixed-width table of the rows, for the terminal.
pub fn table(rows: &[CheckRow]) -> String {
    let mut out = format!("{:<17} {:<28} {:<58} {:>10} {:>8}  {}\n", "op", "entry", "shape", "rel_err", "tol", "pass");
    for r in rows {
        out +=
            &format!("{:<17} {:<28} {:<58} {:>10.2e} {:>8.0e}  {}\n", r.op, r.entry, r.shape, r.rel_err, r.tol, if r.pass { "ok" } else { "FAIL" });
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
