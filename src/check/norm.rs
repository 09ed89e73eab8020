//! Checks of the normalisation kernels: group norm (instance norm is groups == channels) and batch norm.

use super::*;

/// The norms' reduction workgroup sizes (autotune's candidates, in their order) as row suffixes.
const GN_THREADS: [&str; 4] = ["", " (THREADS 32)", " (THREADS 16)", " (THREADS 8)"];
const BN_THREADS: [&str; 4] = ["", " (THREADS 64)", " (THREADS 32)", " (THREADS 16)"];

/// Run `f` once per workgroup size (`suffixes`), every tuned launch forced to that candidate.
async fn each_workgroup(c: &mut Checker<'_>, suffixes: &[&str], mut f: impl AsyncFnMut(&mut Checker<'_>, &str) -> Result<()>) -> Result<()> {
    let base = c.kn.clone();
    let mut r = Ok(());
    for (i, suffix) in suffixes.iter().enumerate() {
        c.set_kernels(Kernels { pin: Pin { norm: Some(i), ..base.pin }, ..base.clone() });
        r = f(c, suffix).await;
        if r.is_err() {
            break;
        }
    }
    c.set_kernels(base);
    r
}

pub(super) async fn check_group_norm(c: &mut Checker<'_>) -> Result<()> {
    // The last two split each channel's parameter gradient into two chunks: 1920 values, at an
    // image boundary, and 1725, the second chunk starting inside image 1.
    each_workgroup(c, &GN_THREADS, async |c, wg| {
        for (n, ch, h, w, groups) in [(1, 6, 7, 7, 3), (3, 5, 13, 11, 5), (2, 4, 3, 3, 1), (3, 64, 5, 5, 32), (4, 4, 24, 20, 2), (3, 2, 25, 23, 1)] {
            let (x, xr) = c.leaf(&[n, ch, h, w])?;
            let (gm, gr) = c.leaf_in(&[ch], 0.5, 1.5)?;
            let (bt, br) = c.leaf(&[ch])?;
            c.case("group_norm", format!("x{} groups {groups}", dims(&[n, ch, h, w])));
            let eps = 1e-5;
            let y = c.g.group_norm(&x, groups, &gm, &bt, eps as f32)?;
            let (yr, mr, sr) = r::group_norm::group_norm_forward(n, ch, h * w, groups, eps, &xr, &gr, &br);
            c.cmp_t(&format!("group_norm_forward{wg}"), &y, &yr).await?;
            let (grads, g) = c.backward(&y)?;
            let (dx, dg, db) = r::group_norm::group_norm_backward(n, ch, h * w, groups, &xr, &gr, &mr, &sr, &g);
            c.grad(&format!("group_norm_input_grad{wg}"), &grads, &x, &dx).await?;
            c.grad(&format!("group_norm_param_partial+group_norm_param_final{wg}"), &grads, &gm, &dg).await?;
            c.grad(&format!("group_norm_param_partial+group_norm_param_final{wg}"), &grads, &bt, &db).await?;
        }
        Ok(())
    })
    .await
}

/// Group norm (then batch norm) under half precision (`train.amp`): the forward runs on x
/// itself, both backward kernels on the f16 copy of x the op saved (group_norm_h). Against the reference backward on
/// the f16-rounded x with the forward's statistics at the f32 bounds (the kernels' own error),
/// and, without a fused activation (whose derivative a rounded x may step across a kink of),
/// against the exact x at `F16_OPERANDS` (" vs exact": what the rounding costs).
pub(super) async fn check_norms_f16(c: &mut Checker<'_>) -> Result<()> {
    let Some(flag) = f16_flag(c, "norm")? else { return Ok(()) };
    let base = c.kn.clone();
    c.set_kernels(base.with_half(Some(flag)));
    let eps = 1e-5;
    let acts = fused_acts().map(|(a, ra, name)| (Some(a), Some(ra), name));
    let r = each_workgroup(c, &GN_THREADS, async |c, wg| {
        let shapes = [(1, 6, 7, 7, 3), (3, 5, 13, 11, 5), (3, 64, 5, 5, 32), (3, 2, 25, 23, 1), (2, 8, 5, 3, 2)];
        for ((n, ch, h, w, groups), (a, ra, name)) in shapes.into_iter().zip([(None, None, "none")].into_iter().chain(acts)) {
            let (x, xr) = c.leaf(&[n, ch, h, w])?;
            let (gm, gr) = c.leaf_in(&[ch], 0.5, 1.5)?;
            let (bt, br) = c.leaf(&[ch])?;
            c.case("group_norm", format!("x{} groups {groups}, fused {name}, f16 saved x", dims(&[n, ch, h, w])));
            let y = c.g.group_norm_act(&x, groups, &gm, &bt, eps as f32, a)?;
            let (pre, mr, sr) = r::group_norm::group_norm_forward(n, ch, h * w, groups, eps, &xr, &gr, &br);
            let act = |v: &[f64]| ra.map_or(v.to_vec(), |ra| r::activation::activation_forward(ra, v));
            c.cmp_t(&format!("group_norm_forward (ACT {name}){wg}"), &y, &act(&pre)).await?;
            let (grads, g) = c.backward(&y)?;
            let x16 = f16_rounded(&xr);
            let cpg = ch / groups;
            let hw = h * w;
            let pre16: Vec<f64> = (0..x16.len())
                .map(|i| {
                    let (b, k) = (i / (ch * hw), i / hw % ch);
                    let gi = b * groups + k / cpg;
                    (x16[i] - mr[gi]) * sr[gi] * gr[k] + br[k]
                })
                .collect();
            let back = |xs: &[f64], pre: &[f64]| {
                let dpre = ra.map_or(g.clone(), |ra| r::activation::activation_backward(ra, pre, &g));
                r::group_norm::group_norm_backward(n, ch, hw, groups, xs, &gr, &mr, &sr, &dpre)
            };
            let (dx, dg, db) = back(&x16, &pre16);
            c.grad(&format!("group_norm_input_grad f16 (ACT {name}){wg}"), &grads, &x, &dx).await?;
            c.grad(&format!("group_norm_param_partial+group_norm_param_final f16 (ACT {name}){wg}"), &grads, &gm, &dg).await?;
            c.grad(&format!("group_norm_param_partial+group_norm_param_final f16 (ACT {name}){wg}"), &grads, &bt, &db).await?;
            if a.is_none() {
                let (dx, dg, db) = back(&xr, &pre);
                let param = format!("group_norm_param_partial+group_norm_param_final f16{wg}");
                vs_exact(c, &grads, [(&format!("group_norm_input_grad f16{wg}"), &x, &dx), (&param, &gm, &dg), (&param, &bt, &db)]).await?;
            }
        }
        Ok(())
    })
    .await;
    let r = match r {
        Ok(()) => check_batch_norm_f16(c).await,
        e => e,
    };
    c.set_kernels(base);
    r
}

/// `x` rounded to f16, as the half kernels read it.
fn f16_rounded(x: &[f64]) -> Vec<f64> {
    x.iter().map(|&v| r::amp::round_f16(v as f32) as f64).collect()
}

/// Gradients (entry, tensor, reference on the exact input) at the f16 bound, as " vs exact"
/// rows: what rounding the saved input costs.
async fn vs_exact(c: &mut Checker<'_>, grads: &Grads, rows: [(&str, &Tensor, &[f64]); 3]) -> Result<()> {
    let tol = std::mem::replace(&mut c.tol, F16_OPERANDS);
    let mut r = Ok(());
    for (entry, t, reference) in rows {
        r = c.grad(&format!("{entry} vs exact"), grads, t, reference).await;
        if r.is_err() {
            break;
        }
    }
    c.tol = tol;
    r
}

/// Batch norm under half precision, as group norm in `check_norms_f16`: the training forward on x, the
/// backward on the saved f16 copy (batch_norm_h).
async fn check_batch_norm_f16(c: &mut Checker<'_>) -> Result<()> {
    let acts = fused_acts().map(|(a, ra, name)| (Some(a), Some(ra), name));
    each_workgroup(c, &BN_THREADS, async |c, wg| {
        let shapes = [(3, 5, 7, 7), (1, 3, 13, 11), (2, 6, 3, 3), (4, 4, 5, 5), (3, 2, 25, 23)];
        for ((n, ch, h, w), (a, ra, name)) in shapes.into_iter().zip([(None, None, "none")].into_iter().chain(acts)) {
            let (x, xr) = c.leaf(&[n, ch, h, w])?;
            let (gm, gr) = c.leaf_in(&[ch], 0.5, 1.5)?;
            let (bt, br) = c.leaf(&[ch])?;
            let (rm, rv) = (Tensor::zeros(c.ctx, &[ch])?, Tensor::full(c.ctx, &[ch], 1.0)?);
            let (epsf, mom) = (1e-5f32, 0.1f32);
            c.case("batch_norm", format!("x{} train, fused {name}, f16 saved x", dims(&[n, ch, h, w])));
            let y = c.g.batch_norm_act(&x, &gm, &bt, &rm, &rv, true, mom, epsf, a)?;
            let (mut rmr, mut rvr) = (vec![0.0; ch], vec![1.0; ch]);
            let (pre, mr, sr) = r::batch_norm::batch_norm_forward_train(n, ch, h * w, epsf as f64, mom as f64, &xr, &gr, &br, &mut rmr, &mut rvr);
            let act = |v: &[f64]| ra.map_or(v.to_vec(), |ra| r::activation::activation_forward(ra, v));
            c.cmp_t(&format!("batch_norm_stats+batch_norm_stats_final+batch_norm_apply (ACT {name}){wg}"), &y, &act(&pre)).await?;
            let (grads, g) = c.backward(&y)?;
            let x16 = f16_rounded(&xr);
            let hw = h * w;
            let pre16: Vec<f64> = (0..x16.len())
                .map(|i| {
                    let k = i / hw % ch;
                    (x16[i] - mr[k]) * sr[k] * gr[k] + br[k]
                })
                .collect();
            let back = |xs: &[f64], pre: &[f64]| {
                let dpre = ra.map_or(g.clone(), |ra| r::activation::activation_backward(ra, pre, &g));
                r::batch_norm::batch_norm_backward_train(n, ch, hw, xs, &gr, &mr, &sr, &dpre)
            };
            let entry = "batch_norm_backward_partial+batch_norm_backward_final+batch_norm_backward_apply f16";
            let (dx, dg, db) = back(&x16, &pre16);
            c.grad(&format!("{entry} (ACT {name}){wg}"), &grads, &x, &dx).await?;
            c.grad(&format!("{entry} (ACT {name}){wg}"), &grads, &gm, &dg).await?;
            c.grad(&format!("{entry} (ACT {name}){wg}"), &grads, &bt, &db).await?;
            if a.is_none() {
                let (dx, dg, db) = back(&xr, &pre);
                let e = format!("{entry}{wg}");
                vs_exact(c, &grads, [(&e, &x, &dx), (&e, &gm, &dg), (&e, &bt, &db)]).await?;
            }
        }
        Ok(())
    })
    .await
}

/// The activations a norm fuses, with their reference twins and a label for the rows.
fn fused_acts() -> [(Activation, r::activation::Activation, &'static str); 4] {
    use r::activation::Activation as R;
    [
        (Activation::Relu, R::Relu, "relu"),
        (Activation::LeakyRelu(0.2), R::LeakyRelu(0.2f32 as f64), "leaky_relu"),
        (Activation::GeluErf, R::GeluErf, "gelu"),
        (Activation::Silu, R::Silu, "silu"),
    ]
}

/// Group norm and batch norm with the activation after them fused in: forward act(norm(x)),
/// backward through both, against the reference chain norm then activation.
pub(super) async fn check_norm_act(c: &mut Checker<'_>) -> Result<()> {
    let eps = 1e-5;
    for ((n, ch, h, w, groups), (a, ra, name)) in
        [(1, 6, 7, 7, 3), (3, 5, 13, 11, 5), (2, 8, 5, 3, 2), (3, 32, 5, 5, 32)].into_iter().zip(fused_acts())
    {
        let (x, xr) = c.leaf(&[n, ch, h, w])?;
        let (gm, gr) = c.leaf_in(&[ch], 0.5, 1.5)?;
        let (bt, br) = c.leaf(&[ch])?;
        c.case("group_norm", format!("x{} groups {groups}, fused {name}", dims(&[n, ch, h, w])));
        let y = c.g.group_norm_act(&x, groups, &gm, &bt, eps as f32, Some(a))?;
        let (pre, mr, sr) = r::group_norm::group_norm_forward(n, ch, h * w, groups, eps, &xr, &gr, &br);
        c.cmp_t(&format!("group_norm_forward (ACT {name})"), &y, &r::activation::activation_forward(ra, &pre)).await?;
        let (grads, g) = c.backward(&y)?;
        let dpre = r::activation::activation_backward(ra, &pre, &g);
        let (dx, dg, db) = r::group_norm::group_norm_backward(n, ch, h * w, groups, &xr, &gr, &mr, &sr, &dpre);
        c.grad(&format!("group_norm_input_grad (ACT {name})"), &grads, &x, &dx).await?;
        c.grad(&format!("group_norm_param_partial+group_norm_param_final (ACT {name})"), &grads, &gm, &dg).await?;
        c.grad(&format!("group_norm_param_partial+group_norm_param_final (ACT {name})"), &grads, &bt, &db).await?;
    }
    for ((n, ch, h, w), (a, ra, name)) in [(3, 5, 7, 7), (1, 3, 13, 11), (2, 6, 3, 3), (4, 4, 5, 5)].into_iter().zip(fused_acts()) {
        let (x, xr) = c.leaf(&[n, ch, h, w])?;
        let (gm, gr) = c.leaf_in(&[ch], 0.5, 1.5)?;
        let (bt, br) = c.leaf(&[ch])?;
        let rm0 = c.rng.vec(ch);
        let rv0: Vec<f32> = c.rng.vec(ch).iter().map(|v| 1.0 + 0.5 * v).collect();
        let (rm, rv) = (Tensor::from_slice(c.ctx, &[ch], &rm0)?, Tensor::from_slice(c.ctx, &[ch], &rv0)?);
        let (epsf, mom) = (1e-5f32, 0.1f32);
        c.case("batch_norm", format!("x{} train, fused {name}", dims(&[n, ch, h, w])));
        let y = c.g.batch_norm_act(&x, &gm, &bt, &rm, &rv, true, mom, epsf, Some(a))?;
        let (mut rmr, mut rvr) = (f64s(&rm0), f64s(&rv0));
        let (pre, mr, sr) = r::batch_norm::batch_norm_forward_train(n, ch, h * w, epsf as f64, mom as f64, &xr, &gr, &br, &mut rmr, &mut rvr);
        c.cmp_t(&format!("batch_norm_stats+batch_norm_stats_final+batch_norm_apply (ACT {name})"), &y, &r::activation::activation_forward(ra, &pre))
            .await?;
        let (grads, g) = c.backward(&y)?;
        let dpre = r::activation::activation_backward(ra, &pre, &g);
        let (dx, dg, db) = r::batch_norm::batch_norm_backward_train(n, ch, h * w, &xr, &gr, &mr, &sr, &dpre);
        c.grad(&format!("batch_norm_backward_partial+batch_norm_backward_final+batch_norm_backward_apply (ACT {name})"), &grads, &x, &dx).await?;
        c.grad(&format!("batch_norm_backward_partial+batch_norm_backward_final+batch_norm_backward_apply (ACT {name})"), &grads, &gm, &dg).await?;
        c.grad(&format!("batch_norm_backward_partial+batch_norm_backward_final+batch_norm_backward_apply (ACT {name})"), &grads, &bt, &db).await?;
        c.case("batch_norm", format!("x{} eval, fused {name}", dims(&[n, ch, h, w])));
        let ye = Graph::inference(c.ctx).batch_norm_act(&x, &gm, &bt, &rm, &rv, false, mom, epsf, Some(a))?;
        let pre_e = r::batch_norm::batch_norm_forward_eval(n, ch, h * w, epsf as f64, &xr, &gr, &br, &rmr, &rvr);
        c.cmp_t(&format!("batch_norm_forward_eval (ACT {name})"), &ye, &r::activation::activation_forward(ra, &pre_e)).await?;
    }
    Ok(())
}

pub(super) async fn check_batch_norm(c: &mut Checker<'_>) -> Result<()> {
    // The last two split each channel into several chunks for the two-stage reductions (3 of
    // 729, 729, 727 elements; 8 of 1024), so the merge of chunk statistics is exercised.
    each_workgroup(c, &BN_THREADS, async |c, wg| {
        for (n, ch, h, w) in [(3, 5, 7, 7), (1, 3, 13, 11), (2, 6, 3, 3), (5, 3, 19, 23), (8, 2, 32, 32)] {
            let (x, xr) = c.leaf(&[n, ch, h, w])?;
            let (gm, gr) = c.leaf_in(&[ch], 0.5, 1.5)?;
            let (bt, br) = c.leaf(&[ch])?;
            let rm0 = c.rng.vec(ch);
            let rv0: Vec<f32> = c.rng.vec(ch).iter().map(|v| 1.0 + 0.5 * v).collect();
            let rm = Tensor::from_slice(c.ctx, &[ch], &rm0)?;
            let rv = Tensor::from_slice(c.ctx, &[ch], &rv0)?;
            let (eps, mom) = (1e-5f32, 0.1f32);
            c.case("batch_norm", format!("x{} train", dims(&[n, ch, h, w])));
            let y = c.g.batch_norm(&x, &gm, &bt, &rm, &rv, true, mom, eps)?;
            let (mut rmr, mut rvr) = (f64s(&rm0), f64s(&rv0));
            let (yr, mr, sr) = r::batch_norm::batch_norm_forward_train(n, ch, h * w, eps as f64, mom as f64, &xr, &gr, &br, &mut rmr, &mut rvr);
            c.cmp_t(&format!("batch_norm_stats+batch_norm_stats_final+batch_norm_apply{wg}"), &y, &yr).await?;
            c.cmp_t(&format!("batch_norm_stats+batch_norm_stats_final (running mean){wg}"), &rm, &rmr).await?;
            c.cmp_t(&format!("batch_norm_stats+batch_norm_stats_final (running var){wg}"), &rv, &rvr).await?;
            let (grads, g) = c.backward(&y)?;
            let (dx, dg, db) = r::batch_norm::batch_norm_backward_train(n, ch, h * w, &xr, &gr, &mr, &sr, &g);
            c.grad(&format!("batch_norm_backward_partial+batch_norm_backward_final+batch_norm_backward_apply{wg}"), &grads, &x, &dx).await?;
            c.grad(&format!("batch_norm_backward_partial+batch_norm_backward_final (dgamma){wg}"), &grads, &gm, &dg).await?;
            c.grad(&format!("batch_norm_backward_partial+batch_norm_backward_final (dbeta){wg}"), &grads, &bt, &db).await?;
            c.case("batch_norm", format!("x{} eval", dims(&[n, ch, h, w])));
            let ye = Graph::inference(c.ctx).batch_norm(&x, &gm, &bt, &rm, &rv, false, mom, eps)?;
            c.cmp_t("batch_norm_forward_eval", &ye, &r::batch_norm::batch_norm_forward_eval(n, ch, h * w, eps as f64, &xr, &gr, &br, &rmr, &rvr))
                .await?;
        }
        Ok(())
    })
    .await
}
