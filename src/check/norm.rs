//! Checks of the normalisation kernels: group norm (instance norm is groups == channels) and batch norm.

use super::*;

pub(super) fn check_group_norm(c: &mut Checker) -> Result<()> {
    for (n, ch, h, w, groups) in [(1, 6, 7, 7, 3), (3, 5, 13, 11, 5), (2, 4, 3, 3, 1), (3, 64, 5, 5, 32)] {
        let (x, xr) = c.leaf(&[n, ch, h, w])?;
        let (gm, gr) = c.leaf_in(&[ch], 0.5, 1.5)?;
        let (bt, br) = c.leaf(&[ch])?;
        c.case("group_norm", format!("x{} groups {groups}", dims(&[n, ch, h, w])));
        let eps = 1e-5;
        let y = c.g.group_norm(&x, groups, &gm, &bt, eps as f32)?;
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

pub(super) fn check_batch_norm(c: &mut Checker) -> Result<()> {
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
        let y = c.g.batch_norm(&x, &gm, &bt, &rm, &rv, true, mom, eps)?;
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
        let ye = Graph::inference(c.ctx).batch_norm(&x, &gm, &bt, &rm, &rv, false, mom, eps)?;
        c.cmp_t("batch_norm_forward_eval", &ye, &r::batch_norm::batch_norm_forward_eval(n, ch, h * w, eps as f64, &xr, &gr, &br, &rmr, &rvr))?;
    }
    Ok(())
}
