//! Simple elementwise ops: add, multiply, scale, and the per-channel bias add used
//! after convolutions (its backward is also the conv bias gradient).
//! Layouts: flat slices of equal length; bias_add x/y/dy [n, c, hw], b/db [c].

pub fn add_forward(a: &[f64], b: &[f64]) -> Vec<f64> {
    assert_eq!(a.len(), b.len(), "add_forward: length mismatch");
    a.iter().zip(b).map(|(x, y)| x + y).collect()
}

pub fn mul_forward(a: &[f64], b: &[f64]) -> Vec<f64> {
    assert_eq!(a.len(), b.len(), "mul_forward: length mismatch");
    a.iter().zip(b).map(|(x, y)| x * y).collect()
}

pub fn mul_backward(a: &[f64], b: &[f64], dy: &[f64]) -> (Vec<f64>, Vec<f64>) {
    assert!(a.len() == b.len() && a.len() == dy.len(), "mul_backward: length mismatch");
    (mul_forward(dy, b), mul_forward(dy, a))
}

/// Its backward is scale_forward(alpha, dy).
pub fn scale_forward(alpha: f64, x: &[f64]) -> Vec<f64> {
    x.iter().map(|v| alpha * v).collect()
}

pub fn bias_add_forward(n: usize, c: usize, hw: usize, x: &[f64], b: &[f64]) -> Vec<f64> {
    assert_eq!(x.len(), n * c * hw, "bias_add_forward: x length for n={n} c={c} hw={hw}");
    assert_eq!(b.len(), c, "bias_add_forward: b length for c={c}");
    let mut y = vec![0.0; x.len()];
    for ni in 0..n {
        for ch in 0..c {
            for i in 0..hw {
                let k = (ni * c + ch) * hw + i;
                y[k] = x[k] + b[ch];
            }
        }
    }
    y
}

/// dx is dy itself; only the broadcast bias needs a reduction.
pub fn bias_add_backward(n: usize, c: usize, hw: usize, dy: &[f64]) -> Vec<f64> {
    assert_eq!(dy.len(), n * c * hw, "bias_add_backward: dy length for n={n} c={c} hw={hw}");
    let mut db = vec![0.0; c];
    for ni in 0..n {
        for ch in 0..c {
            for i in 0..hw {
                db[ch] += dy[(ni * c + ch) * hw + i];
            }
        }
    }
    db
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::fd::{Rng, check_grad, dot};

    #[test]
    fn forward_known_values() {
        assert_eq!(add_forward(&[1.0, 2.0], &[10.0, -2.0]), vec![11.0, 0.0]);
        assert_eq!(mul_forward(&[1.5, 2.0], &[2.0, -3.0]), vec![3.0, -6.0]);
        assert_eq!(scale_forward(-0.5, &[4.0, 1.0]), vec![-2.0, -0.5]);
        // n=2, c=2, hw=2
        let y = bias_add_forward(2, 2, 2, &[0.0; 8], &[1.0, 2.0]);
        assert_eq!(y, vec![1.0, 1.0, 2.0, 2.0, 1.0, 1.0, 2.0, 2.0]);
        let db = bias_add_backward(2, 2, 2, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
        assert_eq!(db, vec![1.0 + 2.0 + 5.0 + 6.0, 3.0 + 4.0 + 7.0 + 8.0]);
    }

    #[test]
    fn gradients_match_finite_differences() {
        let mut rng = Rng::new(1);
        let a = rng.vec(3 * 5 * 7);
        let b = rng.vec(a.len());
        let g = rng.vec(a.len());
        let (da, db) = mul_backward(&a, &b, &g);
        check_grad("mul da", &a, &da, |a| dot(&mul_forward(a, &b), &g));
        check_grad("mul db", &b, &db, |b| dot(&mul_forward(&a, b), &g));
        let ds = scale_forward(0.7, &g);
        check_grad("scale", &a, &ds, |a| dot(&scale_forward(0.7, a), &g));

        for &(n, c, hw) in &[(1, 3, 49), (3, 5, 13 * 11), (2, 6, 1)] {
            let x = rng.vec(n * c * hw);
            let bias = rng.vec(c);
            let g = rng.vec(x.len());
            let dbias = bias_add_backward(n, c, hw, &g);
            check_grad(&format!("bias_add n={n} c={c} hw={hw}"), &bias, &dbias, |bs| dot(&bias_add_forward(n, c, hw, &x, bs), &g));
        }
    }
}
