//! BatchNorm2d as PyTorch computes it. Training normalises each channel with its
//! batch statistics over (n, h*w) (biased variance) and updates the running stats
//! with the unbiased variance; eval uses the running stats.
//! Layouts: x/y/dx/dy [n, c, hw], gamma/beta/running_*/mean/rstd/dgamma/dbeta [c].

fn check(what: &str, n: usize, c: usize, hw: usize, x: &[f64], gamma: &[f64], beta: &[f64]) {
    assert_eq!(x.len(), n * c * hw, "{what}: x length for n={n} c={c} hw={hw}");
    assert_eq!(gamma.len(), c, "{what}: gamma length for c={c}");
    assert_eq!(beta.len(), c, "{what}: beta length for c={c}");
}

pub fn batch_norm_forward_train(
    n: usize,
    c: usize,
    hw: usize,
    eps: f64,
    momentum: f64,
    x: &[f64],
    gamma: &[f64],
    beta: &[f64],
    running_mean: &mut [f64],
    running_var: &mut [f64],
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    check("batch_norm_forward_train", n, c, hw, x, gamma, beta);
    assert_eq!(running_mean.len(), c, "batch_norm_forward_train: running_mean length");
    assert_eq!(running_var.len(), c, "batch_norm_forward_train: running_var length");
    let m = n * hw;
    // PyTorch refuses too: the unbiased variance needs at least two values.
    assert!(m > 1, "batch_norm_forward_train: need more than 1 value per channel, got {m}");
    let mut y = vec![0.0; x.len()];
    let mut mean = vec![0.0; c];
    let mut rstd = vec![0.0; c];
    for ch in 0..c {
        let mut sum = 0.0;
        for ni in 0..n {
            for i in 0..hw {
                sum += x[(ni * c + ch) * hw + i];
            }
        }
        let mu = sum / m as f64;
        // Second pass around the mean avoids E[x^2] - E[x]^2 cancellation.
        let mut sq = 0.0;
        for ni in 0..n {
            for i in 0..hw {
                let d = x[(ni * c + ch) * hw + i] - mu;
                sq += d * d;
            }
        }
        let var = sq / m as f64;
        let r = 1.0 / (var + eps).sqrt();
        mean[ch] = mu;
        rstd[ch] = r;
        running_mean[ch] = (1.0 - momentum) * running_mean[ch] + momentum * mu;
        running_var[ch] = (1.0 - momentum) * running_var[ch] + momentum * (sq / (m - 1) as f64);
        for ni in 0..n {
            for i in 0..hw {
                let k = (ni * c + ch) * hw + i;
                y[k] = (x[k] - mu) * r * gamma[ch] + beta[ch];
            }
        }
    }
    (y, mean, rstd)
}

pub fn batch_norm_forward_eval(
    n: usize,
    c: usize,
    hw: usize,
    eps: f64,
    x: &[f64],
    gamma: &[f64],
    beta: &[f64],
    running_mean: &[f64],
    running_var: &[f64],
) -> Vec<f64> {
    check("batch_norm_forward_eval", n, c, hw, x, gamma, beta);
    assert_eq!(running_mean.len(), c, "batch_norm_forward_eval: running_mean length");
    assert_eq!(running_var.len(), c, "batch_norm_forward_eval: running_var length");
    let mut y = vec![0.0; x.len()];
    for ni in 0..n {
        for ch in 0..c {
            let r = 1.0 / (running_var[ch] + eps).sqrt();
            for i in 0..hw {
                let k = (ni * c + ch) * hw + i;
                y[k] = (x[k] - running_mean[ch]) * r * gamma[ch] + beta[ch];
            }
        }
    }
    y
}

/// Same algebra as GroupNorm with the statistics taken per channel over (n, hw):
/// dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)), dxhat = dy * gamma.
/// The running-stat update is not differentiated (it is a side effect in PyTorch).
pub fn batch_norm_backward_train(
    n: usize,
    c: usize,
    hw: usize,
    x: &[f64],
    gamma: &[f64],
    mean: &[f64],
    rstd: &[f64],
    dy: &[f64],
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    assert_eq!(x.len(), n * c * hw, "batch_norm_backward_train: x length for n={n} c={c} hw={hw}");
    assert_eq!(dy.len(), x.len(), "batch_norm_backward_train: dy length");
    assert_eq!(gamma.len(), c, "batch_norm_backward_train: gamma length");
    assert_eq!(mean.len(), c, "batch_norm_backward_train: mean length");
    assert_eq!(rstd.len(), c, "batch_norm_backward_train: rstd length");
    let m = (n * hw) as f64;
    let mut dx = vec![0.0; x.len()];
    let mut dgamma = vec![0.0; c];
    let mut dbeta = vec![0.0; c];
    for ch in 0..c {
        let (mu, r) = (mean[ch], rstd[ch]);
        for ni in 0..n {
            for i in 0..hw {
                let k = (ni * c + ch) * hw + i;
                dgamma[ch] += dy[k] * (x[k] - mu) * r;
                dbeta[ch] += dy[k];
            }
        }
        // sum(dxhat) = gamma * dbeta and sum(dxhat * xhat) = gamma * dgamma.
        let mean_dxhat = gamma[ch] * dbeta[ch] / m;
        let mean_dxhat_xhat = gamma[ch] * dgamma[ch] / m;
        for ni in 0..n {
            for i in 0..hw {
                let k = (ni * c + ch) * hw + i;
                let xhat = (x[k] - mu) * r;
                dx[k] = r * (dy[k] * gamma[ch] - mean_dxhat - xhat * mean_dxhat_xhat);
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
    fn train_stats_and_running_update() {
        // Channel 0 holds [1, 2] from sample 0 and [3, 4] from sample 1.
        let x = [1.0, 2.0, 3.0, 4.0];
        let mut rm = [0.0];
        let mut rv = [1.0];
        let (y, mean, rstd) = batch_norm_forward_train(2, 1, 2, 0.0, 0.1, &x, &[1.0], &[0.0], &mut rm, &mut rv);
        let r = 1.0 / 1.25f64.sqrt(); // biased var 1.25 normalises
        assert_close("mean", &mean, &[2.5], 1e-15);
        assert_close("rstd", &rstd, &[r], 1e-15);
        assert_close("y", &y, &[-1.5 * r, -0.5 * r, 0.5 * r, 1.5 * r], 1e-14);
        assert_close("running_mean", &rm, &[0.25], 1e-15);
        // unbiased var 5/3 feeds the running estimate
        assert_close("running_var", &rv, &[0.9 + 0.1 * 5.0 / 3.0], 1e-15);
    }

    #[test]
    fn channels_are_independent() {
        // n=2, c=2, hw=1: channel 0 gets [x0, x2], channel 1 gets [x1, x3].
        let x = [0.0, 10.0, 2.0, 30.0];
        let mut rm = [0.0; 2];
        let mut rv = [0.0; 2];
        let (_, mean, rstd) = batch_norm_forward_train(2, 2, 1, 0.0, 1.0, &x, &[1.0; 2], &[0.0; 2], &mut rm, &mut rv);
        assert_close("mean", &mean, &[1.0, 20.0], 1e-15);
        assert_close("rstd", &rstd, &[1.0, 0.1], 1e-15);
        assert_close("running_mean (momentum 1)", &rm, &[1.0, 20.0], 1e-15);
        assert_close("running_var (momentum 1)", &rv, &[2.0, 200.0], 1e-12);
    }

    #[test]
    fn eval_uses_running_stats() {
        let y = batch_norm_forward_eval(1, 1, 2, 0.0, &[1.0, 3.0], &[3.0], &[1.0], &[2.0], &[4.0]);
        assert_close("eval", &y, &[-0.5, 2.5], 1e-15);
        let y = batch_norm_forward_eval(1, 1, 1, 1e-5, &[5.0], &[1.0], &[0.0], &[0.0], &[1.0]);
        assert_close("eval eps", &y, &[5.0 / (1.0f64 + 1e-5).sqrt()], 1e-15);
    }

    fn grad_check(n: usize, c: usize, hw: usize, seed: u64) {
        let mut rng = Rng::new(seed);
        let eps = 1e-5;
        let x = rng.vec(n * c * hw);
        let gamma = rng.vec(c);
        let beta = rng.vec(c);
        let g = rng.vec(n * c * hw);
        let l = |x: &[f64], gamma: &[f64], beta: &[f64]| {
            let (mut rm, mut rv) = (vec![0.0; c], vec![1.0; c]);
            dot(&batch_norm_forward_train(n, c, hw, eps, 0.1, x, gamma, beta, &mut rm, &mut rv).0, &g)
        };
        let (mut rm, mut rv) = (vec![0.0; c], vec![1.0; c]);
        let (_, mean, rstd) = batch_norm_forward_train(n, c, hw, eps, 0.1, &x, &gamma, &beta, &mut rm, &mut rv);
        let (dx, dgamma, dbeta) = batch_norm_backward_train(n, c, hw, &x, &gamma, &mean, &rstd, &g);
        let what = format!("n={n} c={c} hw={hw}");
        check_grad(&format!("batch_norm dx {what}"), &x, &dx, |x| l(x, &gamma, &beta));
        check_grad(&format!("batch_norm dgamma {what}"), &gamma, &dgamma, |gm| l(&x, gm, &beta));
        check_grad(&format!("batch_norm dbeta {what}"), &beta, &dbeta, |bt| l(&x, &gamma, bt));
    }

    #[test]
    fn gradients_match_finite_differences() {
        grad_check(3, 5, 7 * 7, 1);
        grad_check(1, 3, 3 * 3, 2);
        grad_check(2, 6, 13 * 11, 3);
        grad_check(3, 5, 1, 4); // spatially 1x1: statistics over the batch only
    }
}
