//! Host-side statistics over per-image metric values (the values themselves come from the GPU
//! kernels of shaders/metrics.wgsl): means, standard deviations, paired t-tests.

/// Mean and (population) standard deviation; NaN for an empty list.
pub fn mean_std(v: &[f64]) -> (f64, f64) {
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / n;
    (m, var.sqrt())
}

/// PSNR (data range 1) of one image already on the host, for captions (the evaluation's own
/// per-image values come from the GPU kernels): `cap` when the MSE is at most 1e-10.
pub fn psnr(a: &[f32], b: &[f32], cap: f64) -> f64 {
    let mse = a.iter().zip(b).map(|(x, y)| (*x as f64 - *y as f64).powi(2)).sum::<f64>() / a.len().max(1) as f64;
    if mse <= 1e-10 { cap } else { -10.0 * mse.log10() }
}

/// A paired two-sided t-test of `a` against `b` (same length): (t statistic, p-value). With no
/// spread in the differences the statistic is infinite (p 0) unless the means agree (t 0, p 1).
#[cfg(not(target_arch = "wasm32"))]
pub fn paired_t_test(a: &[f64], b: &[f64]) -> (f64, f64) {
    use statrs::distribution::{ContinuousCDF, StudentsT};
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    let n = d.len();
    if n < 2 {
        return (f64::NAN, f64::NAN);
    }
    let m = d.iter().sum::<f64>() / n as f64;
    let sd = (d.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt();
    if sd == 0.0 {
        return if m == 0.0 { (0.0, 1.0) } else { (m.signum() * f64::INFINITY, 0.0) };
    }
    let t = m / (sd / (n as f64).sqrt());
    let p = match StudentsT::new(0.0, 1.0, (n - 1) as f64) {
        Ok(dist) => 2.0 * (1.0 - dist.cdf(t.abs())),
        Err(_) => f64::NAN,
    };
    (t, p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_std() {
        let (m, s) = mean_std(&[1.0, 2.0, 3.0, 4.0]);
        assert!((m - 2.5).abs() < 1e-12 && (s - 1.25f64.sqrt()).abs() < 1e-12);
    }

    /// Values from scipy.stats.ttest_rel([1.1, 2.3, 2.9, 4.2, 5.1], [1.0, 2.0, 3.0, 4.0, 5.0]):
    /// t = 1.8090680674665802, p = 0.14470399860633068.
    #[test]
    fn paired_t_test_matches_scipy() {
        let (t, p) = paired_t_test(&[1.1, 2.3, 2.9, 4.2, 5.1], &[1.0, 2.0, 3.0, 4.0, 5.0]);
        assert!((t - 1.8090680674665802).abs() < 1e-9, "{t}");
        assert!((p - 0.14470399860633068).abs() < 1e-6, "{p}");
        assert_eq!(paired_t_test(&[1.0, 2.0], &[1.0, 2.0]), (0.0, 1.0));
    }
}
