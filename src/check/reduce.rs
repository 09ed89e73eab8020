//! Checks of the reductions: the losses and sum / mean / sum of squares.

use super::*;

pub(super) async fn check_losses(c: &mut Checker<'_>) -> Result<()> {
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
            let y = c.g.loss(&p, &t, k)?;
            c.cmp_t("loss_partial+reduce_final", &y, &[r::loss::loss_forward(rk, &pr, &tr)]).await?;
            let (grads, g) = c.backward(&y)?;
            let (dp, dt) = r::loss::loss_backward(rk, &pr, &tr, g[0]);
            c.grad("loss_backward", &grads, &p, &dp).await?;
            c.grad("loss_backward", &grads, &t, &dt).await?;
        }
    }
    Ok(())
}

pub(super) async fn check_reduce(c: &mut Checker<'_>) -> Result<()> {
    let kinds =
        [(ReduceKind::Sum, r::reduce::Reduce::Sum), (ReduceKind::Mean, r::reduce::Reduce::Mean), (ReduceKind::SumSq, r::reduce::Reduce::SumSq)];
    for (k, rk) in kinds {
        // 300_007 > 1024 partials * 256 threads: the first stage must grid-stride.
        for len in [1757usize, 735, 1, 300_007] {
            // Offset from zero so a sum is not a near-cancellation that f32 cannot resolve.
            let (x, xr) = c.leaf_in(&[len], 0.0, 1.0)?;
            c.case("sum", format!("len {len} {k:?}"));
            let y = c.g.reduce(&x, k)?;
            c.cmp_t("reduce_partial+reduce_final", &y, &[r::reduce::reduce_forward(rk, &xr)]).await?;
            let (grads, g) = c.backward(&y)?;
            c.grad("reduce_backward", &grads, &x, &r::reduce::reduce_backward(rk, &xr, g[0])).await?;
        }
    }
    Ok(())
}
