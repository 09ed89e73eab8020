//! Test-only helpers: a tiny deterministic RNG (splitmix64) and central-difference
//! gradient checks. Backward functions are checked through the scalar
//! L = sum(y * g) for a fixed random g, so g is the upstream gradient dL/dy.

/// Central-difference step; small enough that O(h^2) truncation stays far below
/// the tolerance, large enough that cancellation error (~1e-16 * |L| / h) does too.
pub(crate) const H: f64 = 1e-5;
/// Maximum accepted relative L2 error between numeric and analytic gradients.
pub(crate) const TOL: f64 = 1e-6;

/// The crate's splitmix64 stream (util::rng) with f64 draws for the reference tests.
pub(crate) struct Rng(crate::util::rng::Rng);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(crate::util::rng::Rng::new(seed))
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform in [-1, 1) from the top 53 bits.
    pub(crate) fn uniform(&mut self) -> f64 {
        self.0.uniform_f64()
    }

    pub(crate) fn vec(&mut self, len: usize) -> Vec<f64> {
        (0..len).map(|_| self.uniform()).collect()
    }

    /// Uniform magnitude in [min_abs, 1) with a random sign, so that an FD step
    /// never crosses a kink at zero.
    pub(crate) fn vec_off_zero(&mut self, len: usize, min_abs: f64) -> Vec<f64> {
        (0..len)
            .map(|_| {
                let u = self.uniform();
                let mag = min_abs + (1.0 - min_abs) * u.abs();
                if u < 0.0 { -mag } else { mag }
            })
            .collect()
    }

    /// A shuffled ramp in [-1, 1): all values distinct and spaced 2/len apart,
    /// far more than an FD step, so max/argmax never flips under perturbation.
    pub(crate) fn distinct(&mut self, len: usize) -> Vec<f64> {
        let mut v: Vec<f64> = (0..len).map(|i| 2.0 * i as f64 / len as f64 - 1.0).collect();
        for i in (1..len).rev() {
            let j = (self.next_u64() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
        v
    }
}

pub(crate) fn dot(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len(), "dot: length mismatch");
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Central differences of `f` with respect to every element of `x`.
pub(crate) fn numeric_grad(x: &[f64], h: f64, f: impl Fn(&[f64]) -> f64) -> Vec<f64> {
    let mut xp = x.to_vec();
    (0..x.len())
        .map(|i| {
            xp[i] = x[i] + h;
            let lp = f(&xp);
            xp[i] = x[i] - h;
            let lm = f(&xp);
            xp[i] = x[i];
            (lp - lm) / (2.0 * h)
        })
        .collect()
}

/// ||fd - analytic|| / ||analytic||.
pub(crate) fn rel_err(fd: &[f64], analytic: &[f64]) -> f64 {
    assert_eq!(fd.len(), analytic.len(), "rel_err: length mismatch");
    let diff: f64 = fd.iter().zip(analytic).map(|(a, b)| (a - b) * (a - b)).sum();
    let norm: f64 = analytic.iter().map(|a| a * a).sum();
    (diff / norm).sqrt()
}

/// Asserts the analytic gradient of `f` at `x` matches central differences.
pub(crate) fn check_grad(what: &str, x: &[f64], analytic: &[f64], f: impl Fn(&[f64]) -> f64) {
    assert_eq!(x.len(), analytic.len(), "{what}: gradient length mismatch");
    // A vanishing gradient would make the relative error meaningless.
    assert!(analytic.iter().any(|&a| a != 0.0), "{what}: analytic gradient is all zero");
    let fd = numeric_grad(x, H, f);
    let e = rel_err(&fd, analytic);
    assert!(e < TOL, "{what}: relative L2 error {e:e} >= {TOL:e}");
}

/// Elementwise |got - want| <= tol, for hand-computed expectations.
pub(crate) fn assert_close(what: &str, got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length mismatch");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= tol, "{what}[{i}]: got {g}, want {w}");
    }
}
