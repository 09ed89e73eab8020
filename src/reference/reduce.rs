//! Full reductions of a tensor to a scalar (sum, mean, sum of squares) and their
//! gradients broadcast back to every element.
//! Layouts: x/dx are flat slices of any length.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduce {
    Sum,
    Mean,
    SumSq,
}

pub fn reduce_forward(kind: Reduce, x: &[f64]) -> f64 {
    match kind {
        Reduce::Sum => x.iter().sum(),
        // An empty input gives NaN, as torch.mean does.
        Reduce::Mean => x.iter().sum::<f64>() / x.len() as f64,
        Reduce::SumSq => x.iter().map(|v| v * v).sum(),
    }
}

pub fn reduce_backward(kind: Reduce, x: &[f64], dl: f64) -> Vec<f64> {
    match kind {
        Reduce::Sum => vec![dl; x.len()],
        Reduce::Mean => vec![dl / x.len() as f64; x.len()],
        Reduce::SumSq => x.iter().map(|v| 2.0 * v * dl).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::fd::{Rng, check_grad};

    #[test]
    fn forward_known_values() {
        let x = [1.0, -2.0, 4.0];
        assert_eq!(reduce_forward(Reduce::Sum, &x), 3.0);
        assert_eq!(reduce_forward(Reduce::Mean, &x), 1.0);
        assert_eq!(reduce_forward(Reduce::SumSq, &x), 21.0);
        assert_eq!(reduce_forward(Reduce::Sum, &[]), 0.0);
        assert!(reduce_forward(Reduce::Mean, &[]).is_nan());
    }

    #[test]
    fn gradients_match_finite_differences() {
        let mut rng = Rng::new(1);
        let x = rng.vec(3 * 5 * 7);
        let dl = -1.3;
        for kind in [Reduce::Sum, Reduce::Mean, Reduce::SumSq] {
            let dx = reduce_backward(kind, &x, dl);
            check_grad(&format!("{kind:?}"), &x, &dx, |x| dl * reduce_forward(kind, x));
        }
    }
}
