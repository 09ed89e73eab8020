//! Reconstruction losses with mean reduction over all elements: MSE, L1 and
//! Charbonnier sqrt(d^2 + eps^2), where d = pred - target.
//! Layouts: pred/target/dpred/dtarget are flat slices of equal length.

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Loss {
    Mse,
    L1,
    Charbonnier(f64),
}

pub fn loss_forward(kind: Loss, pred: &[f64], target: &[f64]) -> f64 {
    assert_eq!(pred.len(), target.len(), "loss_forward: pred and target lengths differ");
    let mut sum = 0.0;
    for (p, t) in pred.iter().zip(target) {
        let d = p - t;
        sum += match kind {
            Loss::Mse => d * d,
            Loss::L1 => d.abs(),
            Loss::Charbonnier(eps) => (d * d + eps * eps).sqrt(),
        };
    }
    // An empty input gives NaN, as PyTorch's mean does.
    sum / pred.len() as f64
}

/// Returns (dpred, dtarget); the loss depends only on d, so dtarget = -dpred.
pub fn loss_backward(kind: Loss, pred: &[f64], target: &[f64], dl: f64) -> (Vec<f64>, Vec<f64>) {
    assert_eq!(pred.len(), target.len(), "loss_backward: pred and target lengths differ");
    let scale = dl / pred.len() as f64;
    let dpred: Vec<f64> = pred
        .iter()
        .zip(target)
        .map(|(p, t)| {
            let d = p - t;
            scale
                * match kind {
                    Loss::Mse => 2.0 * d,
                    // sign(0) = 0, like torch.sign in L1Loss's backward.
                    Loss::L1 => {
                        if d > 0.0 {
                            1.0
                        } else if d < 0.0 {
                            -1.0
                        } else {
                            0.0
                        }
                    }
                    Loss::Charbonnier(eps) => d / (d * d + eps * eps).sqrt(),
                }
        })
        .collect();
    let dtarget = dpred.iter().map(|v| -v).collect();
    (dpred, dtarget)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::fd::{Rng, check_grad};

    #[test]
    fn forward_known_values() {
        let pred = [1.0, -2.0, 0.5];
        let target = [0.0, 0.0, 0.5];
        assert_eq!(loss_forward(Loss::Mse, &pred, &target), 5.0 / 3.0);
        assert_eq!(loss_forward(Loss::L1, &pred, &target), 1.0);
        let ch = loss_forward(Loss::Charbonnier(0.75), &pred, &target);
        let want = (1.5625f64.sqrt() + 4.5625f64.sqrt() + 0.75) / 3.0;
        assert!((ch - want).abs() < 1e-15, "{ch} vs {want}");
    }

    #[test]
    fn l1_sign_of_zero_is_zero() {
        let (dp, dt) = loss_backward(Loss::L1, &[1.0, 2.0, 0.0], &[1.0, 1.0, 3.0], 3.0);
        assert_eq!(dp, vec![0.0, 1.0, -1.0]);
        assert_eq!(dt, vec![-0.0, -1.0, 1.0]);
    }

    #[test]
    fn gradients_match_finite_differences() {
        let mut rng = Rng::new(1);
        let len = 5 * 7 * 3;
        let target = rng.vec(len);
        // Keep |d| >= 1e-3 so no L1 kink sits within an FD step.
        let d = rng.vec_off_zero(len, 1e-3);
        let pred: Vec<f64> = target.iter().zip(&d).map(|(t, d)| t + d).collect();
        let dl = 0.37;
        for kind in [Loss::Mse, Loss::L1, Loss::Charbonnier(1e-3), Loss::Charbonnier(0.5)] {
            let (dp, dt) = loss_backward(kind, &pred, &target, dl);
            check_grad(&format!("{kind:?} dpred"), &pred, &dp, |p| dl * loss_forward(kind, p, &target));
            check_grad(&format!("{kind:?} dtarget"), &target, &dt, |t| dl * loss_forward(kind, &pred, t));
        }
    }
}
