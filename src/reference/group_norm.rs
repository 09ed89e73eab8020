//! GroupNorm as PyTorch computes it: channels split into `groups` contiguous groups,
//! statistics over (channels in group) x (h*w) per sample with biased variance,
//! rstd = 1/sqrt(var + eps), then a per-channel affine.
//! Layouts: x/y/dx/dy [n, c, hw], gamma/beta/dgamma/dbeta [c], mean/rstd [n, groups].

fn check(what: &str, n: usize, c: usize, hw: usize, groups: usize, x: &[f64], gamma: &[f64]) {
    assert!(groups > 0 && c.is_multiple_of(groups), "{what}: c = {c} not divisible by groups = {groups}");
    assert_eq!(x.len(), n * c * hw, "{what}: x length for n={n} c={c} hw={hw}");
    assert_eq!(gamma.len(), c, "{what}: gamma length for c={c}");
}

pub fn group_norm_forward(
    n: usize,
    c: usize,
    hw: usize,
    groups: usize,
    eps: f64,
    x: &[f64],
    gamma: &[f64],
    beta: &[f64],
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    check("group_norm_forward", n, c, hw, groups, x, gamma);
    assert_eq!(beta.len(), c, "group_norm_forward: beta length for c={c}");
    let cg = c / groups;
    // A group's channels are contiguous, so the group is one contiguous run of x.
    let m = cg * hw;
    let mut y = vec![0.0; x.len()];
    let mut mean = vec![0.0; n * groups];
    let mut rstd = vec![0.0; n * groups];
    for ni in 0..n {
        for g in 0..groups {
            let start = (ni * c + g * cg) * hw;
            let xs = &x[start..start + m];
            // Two passes: the variance must not suffer E[x^2] - E[x]^2 cancellation.
            let mu = xs.iter().sum::<f64>() / m as f64;
            let var = xs.iter().map(|v| (v - mu) * (v - mu)).sum::<f64>() / m as f64;
            let r = 1.0 / (var + eps).sqrt();
            mean[ni * groups + g] = mu;
            rstd[ni * groups + g] = r;
            for j in 0..cg {
                let ch = g * cg + j;
                for i in 0..hw {
                    let k = start + j * hw + i;
                    y[k] = (x[k] - mu) * r * gamma[ch] + beta[ch];
                }
            }
        }
    }
    (y, mean, rstd)
}

/// With xhat = (x - mean) * rstd and dxhat = dy * gamma, the mean and variance
/// both depend on every element of the group, giving
/// dx = rstd * (dxhat - mean_group(dxhat) - xhat * mean_group(dxhat * xhat)).
pub fn group_norm_backward(
    n: usize,
    c: usize,
    hw: usize,
    groups: usize,
    x: &[f64],
    gamma: &[f64],
    mean: &[f64],
    rstd: &[f64],
    dy: &[f64],
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    check("group_norm_backward", n, c, hw, groups, x, gamma);
    assert_eq!(dy.len(), x.len(), "group_norm_backward: dy length");
    assert_eq!(mean.len(), n * groups, "group_norm_backward: mean length");
    assert_eq!(rstd.len(), n * groups, "group_norm_backward: rstd length");
    let cg = c / groups;
    let m = (cg * hw) as f64;
    let mut dx = vec![0.0; x.len()];
    let mut dgamma = vec![0.0; c];
    let mut dbeta = vec![0.0; c];
    for ni in 0..n {
        for g in 0..groups {
            let mu = mean[ni * groups + g];
            let r = rstd[ni * groups + g];
            let start = (ni * c + g * cg) * hw;
            let mut sum_dxhat = 0.0;
            let mut sum_dxhat_xhat = 0.0;
            for j in 0..cg {
                let ch = g * cg + j;
                for i in 0..hw {
                    let k = start + j * hw + i;
                    let xhat = (x[k] - mu) * r;
                    dgamma[ch] += dy[k] * xhat;
                    dbeta[ch] += dy[k];
                    sum_dxhat += dy[k] * gamma[ch];
                    sum_dxhat_xhat += dy[k] * gamma[ch] * xhat;
                }
            }
            let mean_dxhat = sum_dxhat / m;
            let mean_dxhat_xhat = sum_dxhat_xhat / m;
            for j in 0..cg {
                let ch = g * cg + j;
                for i in 0..hw {
                    let k = start + j * hw + i;
                    let xhat = (x[k] - mu) * r;
                    dx[k] = r * (dy[k] * gamma[ch] - mean_dxhat - xhat * mean_dxhat_xhat);
                }
            }
        }
    }
    (dx, dgamma, dbeta)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::fd::{Rng, assert_close, check_grad, dot};

    #[test]
    fn forward_known_values() {
        // One group over [1,2,3,4]: mean 2.5, biased var 1.25.
        let x = [1.0, 2.0, 3.0, 4.0];
        let (y, mean, rstd) = group_norm_forward(1, 2, 2, 1, 0.0, &x, &[2.0, 1.0], &[0.0, 1.0]);
        let r = 1.0 / 1.25f64.sqrt();
        assert_close("mean", &mean, &[2.5], 1e-15);
        assert_close("rstd", &rstd, &[r], 1e-15);
        assert_close("y", &y, &[-1.5 * r * 2.0, -0.5 * r * 2.0, 0.5 * r + 1.0, 1.5 * r + 1.0], 1e-14);

        // Two groups of one channel each normalise separately.
        let (_, mean, rstd) = group_norm_forward(1, 2, 2, 2, 0.0, &[1.0, 3.0, 10.0, 14.0], &[1.0; 2], &[0.0; 2]);
        assert_close("mean per group", &mean, &[2.0, 12.0], 1e-15);
        assert_close("rstd per group", &rstd, &[1.0, 0.5], 1e-15);
    }

    #[test]
    fn normalised_groups_have_zero_mean_unit_variance() {
        let (n, c, hw, groups) = (3, 6, 13 * 11, 3);
        let x: Vec<f64> = Rng::new(9).vec(n * c * hw).iter().map(|v| 3.0 * v + 0.7).collect();
        let (y, _, _) = group_norm_forward(n, c, hw, groups, 0.0, &x, &[1.0; 6], &[0.0; 6]);
        for run in y.chunks(c / groups * hw) {
            let mu = run.iter().sum::<f64>() / run.len() as f64;
            let var = run.iter().map(|v| (v - mu) * (v - mu)).sum::<f64>() / run.len() as f64;
            assert!(mu.abs() < 1e-12 && (var - 1.0).abs() < 1e-12, "mean {mu} var {var}");
        }
    }

    fn grad_check(n: usize, c: usize, hw: usize, groups: usize, seed: u64) {
        let mut rng = Rng::new(seed);
        let eps = 1e-5;
        let x = rng.vec(n * c * hw);
        let gamma = rng.vec(c);
        let beta = rng.vec(c);
        let g = rng.vec(n * c * hw);
        let (_, mean, rstd) = group_norm_forward(n, c, hw, groups, eps, &x, &gamma, &beta);
        let (dx, dgamma, dbeta) = group_norm_backward(n, c, hw, groups, &x, &gamma, &mean, &rstd, &g);
        let l = |x: &[f64], gamma: &[f64], beta: &[f64]| dot(&group_norm_forward(n, c, hw, groups, eps, x, gamma, beta).0, &g);
        let what = format!("n={n} c={c} hw={hw} groups={groups}");
        check_grad(&format!("group_norm dx {what}"), &x, &dx, |x| l(x, &gamma, &beta));
        check_grad(&format!("group_norm dgamma {what}"), &gamma, &dgamma, |gm| l(&x, gm, &beta));
        check_grad(&format!("group_norm dbeta {what}"), &beta, &dbeta, |bt| l(&x, &gamma, bt));
    }

    #[test]
    fn gradients_match_finite_differences() {
        grad_check(1, 6, 7 * 7, 1, 1);
        grad_check(3, 6, 13 * 11, 2, 2);
        grad_check(2, 6, 5 * 3, 3, 3);
        grad_check(3, 5, 3 * 3, 5, 4); // one group per channel
        grad_check(1, 3, 7 * 7, 3, 5);
    }
}
