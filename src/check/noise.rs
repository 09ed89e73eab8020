//! The noise kernel's check bounds (shaders/data.wgsl `data_noise`), derived from WGSL's stated
//! accuracy of the operations and builtins the kernel calls, not from one driver's results
//! (DESIGN.md, "Correctness chain"). Lavapipe's transcendentals are far better than WGSL
//! promises; SwiftShader's `cos` outside [-pi, pi] was not, which is why the kernel now keeps
//! cos's argument inside that interval.
//!
//! WGSL, "Floating Point Accuracy" (https://www.w3.org/TR/WGSL/#floating-point-accuracy) and
//! its table "Accuracy of Concrete Floating Point Expressions" (#concrete-float-accuracy),
//! f32 column, for what data_noise calls:
//! - `x + y`, `x - y`, `x * y`: correctly rounded, which WGSL defines as rounded up OR down (it
//!   fixes no rounding mode): below 1 ULP, and an f32 ULP is at most 2^-23 |v|, so each
//!   rounding is at most [`U`] = 2^-23 relative. A representable result is exact. Operations
//!   may be reassociated or fused ("Reassociation and Fusion"): where the order could change,
//!   one more rounding is counted.
//! - `x / y`: 2.5 ULP (|y| in [2^-126, 2^126]).
//! - `log(x)`: absolute error at most 2^-21 for x in [0.5, 2.0]; 3 ULP outside.
//! - `exp(x)`: 3 + 2|x| ULP.
//! - `sqrt(x)`: inherited from `1.0 / inverseSqrt(x)`; `inverseSqrt` 2 ULP.
//! - `cos(x)`: absolute error at most 2^-11 for x in [-pi, pi]; undefined outside.
//! - `max`, `min`, `clamp`, `round`, `<=`: correctly rounded / correct result, exact here.
//!
//! Exact by construction: the uniforms (24 bits over 2^24), 1 - u1, 2 u2 - 1, -2 log(..)
//! (a scaling by -2), the level's index (integers), the select of salt-and-pepper, the clamp.
//!
//! The standard normal z = -rad * c, rad = sqrt(max(-2 log(1 - u1), T_MIN)),
//! c = cos(PI_BELOW * (2 u2 - 1)); the reference (f64) has R = sqrt(-2 ln(1 - u1)),
//! C = cos(pi (2 u2 - 1)), Z = -R C:
//! - t = -2 ln(1 - u1) is off by dt = 2 * 2^-21 where 1 - u1 >= 0.5, else 2 * 3 * 2^-23 |ln(1 - u1)|;
//!   |sqrt(a) - sqrt(b)| = |a - b| / (sqrt a + sqrt b) <= min(dt / R, sqrt(dt)), plus sqrt(T_MIN)
//!   for the floor; sqrt itself adds a relative [`SQRT_REL`]: dr = SQRT_REL (R + d1) + d1.
//! - cos's argument PI_BELOW * v lies in [-PI_BELOW, PI_BELOW], inside [-pi, pi], and is
//!   within [`ARG_ERR`] of pi v; cos is 1-Lipschitz: dc = 2^-11 + ARG_ERR.
//! - dz = dr (|C| + dc) + R dc + U (R + dr)(|C| + dc) (the product's rounding).
//!
//! Then gaussian y = x + s z and speckle y = x + x s z, with the level s a relative
//! [`LEVEL_REL`] off (lo + u (hi - lo), times the curriculum scale: four roundings of
//! non-negative terms): |s z - S Z| <= S dz + LEVEL_REL S (|Z| + dz), plus one rounding per
//! product and one for the sum. The clamp cannot grow an error; the output affine
//! y * in_scale + in_shift multiplies it by |in_scale| and adds a rounding for the product
//! (none for a power-of-two scale) and one for the sum (none for a zero shift). Salt-and-pepper
//! picks 0, 1 or x exactly, so its bound is that affine rounding alone (0 for 1 and 0).
//!
//! Poisson draws are integers: a driver within WGSL's accuracy gives the reference's count, or
//! one count off where the reference sat within the error of a decision boundary ([`check_poisson`]).

use super::Checker;
use crate::reference::data::{self as rd, NoiseRef};

/// One f32 rounding under WGSL ("correctly rounded" = up or down): at most 2^-23 |exact|; also
/// one ULP relative to the exact value, for the ULP-stated builtins.
pub const U: f64 = 1.0 / 8_388_608.0;
/// `cos`: absolute error at most 2^-11 on [-pi, pi].
pub const COS_ABS: f64 = 1.0 / 2048.0;
/// `log` on [0.5, 2.0]: absolute error at most 2^-21.
pub const LOG_ABS: f64 = 1.0 / 2_097_152.0;
/// `log` outside [0.5, 2.0]: 3 ULP.
pub const LOG_ULPS: f64 = 3.0;
/// `sqrt(x)` = `1.0 / inverseSqrt(x)`: inverseSqrt within 2 ULP of 1/sqrt(x), then a division
/// within 2.5 ULP: sqrt(x) (1 + 2.5 U) / (1 - 2 U) at worst.
pub const SQRT_REL: f64 = (1.0 + 2.5 * U) / (1.0 - 2.0 * U) - 1.0;
/// shaders/data.wgsl's PI_BELOW: the largest f32 not above pi.
pub const PI_BELOW: f64 = 3.1415925f32 as f64;
/// shaders/data.wgsl's T_MIN, the floor of sqrt's argument.
pub const T_MIN: f64 = 1e-30f32 as f64;
/// |PI_BELOW * v - pi v| for |v| <= 1: the constant's own shortfall and its product's rounding,
/// counted as three roundings at magnitude pi in case the product is rewritten as
/// 2 PI_BELOW u2 - PI_BELOW (which stays inside [-PI_BELOW, PI_BELOW] too: every step is
/// monotone and the ends are representable).
pub const ARG_ERR: f64 = (std::f64::consts::PI - PI_BELOW) + 3.0 * U * std::f64::consts::PI;
/// The level: lo + u (hi - lo) then times the curriculum scale, four roundings of non-negative
/// terms (a level from the list: one).
pub const LEVEL_REL: f64 = (1.0 + U) * (1.0 + U) * (1.0 + U) * (1.0 + U) - 1.0;
/// The probability, over random seeds, that a driver at the very edge of WGSL's accuracy fails
/// the Poisson flip-count row.
const FLIP_TAIL: f64 = 1e-6;

/// A bound on |z_gpu - Z| for the normal whose reference parts are (u1, R, C) (see the module
/// comment), and |Z|.
pub fn normal_err((u1, rad, c): (f64, f64, f64)) -> (f64, f64) {
    let a = 1.0 - u1;
    let ln_err = if a >= 0.5 { LOG_ABS } else { LOG_ULPS * U * a.ln().abs() };
    let dt = 2.0 * ln_err;
    let d1 = (if rad > 0.0 { (dt / rad).min(dt.sqrt()) } else { dt.sqrt() }) + T_MIN.sqrt();
    let dr = SQRT_REL * (rad + d1) + d1;
    let dc = COS_ABS + ARG_ERR;
    let cz = c.abs() + dc;
    (rad * c.abs(), dr * cz + rad * dc + U * (rad + dr) * cz)
}

/// How an error `dy` in y (|y| at most `y_mag`) reaches the output clamp(y) * in_scale +
/// in_shift: the clamp cannot grow it, the scale multiplies it, and the product and the sum
/// add a rounding each (none for a power-of-two scale, none for a zero shift).
fn affine_err(n: &NoiseRef, y_mag: f64, dy: f64) -> f64 {
    let y_mag = match n.clip {
        Some((lo, hi)) => lo.abs().max(hi.abs()),
        None => y_mag + dy,
    };
    let sc = n.in_scale.abs();
    let pow2 = sc > 0.0 && sc.to_bits() & ((1u64 << 52) - 1) == 0;
    let mut e = sc * dy;
    if !pow2 {
        e += U * sc * y_mag;
    }
    if n.in_shift != 0.0 {
        e += U * (sc * y_mag + n.in_shift.abs());
    }
    e
}

/// Per-element bounds on |gpu - ref| for gaussian (0), salt-and-pepper (1) and speckle (3) noise
/// on `clean`, as the module comment derives them.
pub fn bounds(n: &NoiseRef, clean: &[f64], image_len: usize) -> Vec<f64> {
    assert!(n.noise != 2, "poisson draws are checked by check_poisson");
    clean
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            let k = i as u32 + n.start * image_len as u32;
            let (y, dy) = match n.noise {
                1 => (x.abs().max(1.0), 0.0),
                _ => {
                    let parts = rd::normal_parts(rd::rng(n, k, 1));
                    let (z, dz) = normal_err(parts);
                    let s = rd::level(n, k / image_len as u32);
                    // s z (times x for speckle) against S Z: the level's and the normal's errors,
                    // one rounding per product (two for speckle, in either order), one for the sum.
                    let (m, products) = if n.noise == 3 { (x.abs(), 2.0) } else { (1.0, 1.0) };
                    let err = m * (s * dz + LEVEL_REL * s * (z + dz));
                    let mag = m * s * (1.0 + LEVEL_REL) * (z + dz);
                    let err = err + products * U * mag;
                    (x.abs() + mag, err + U * (x.abs() + mag))
                }
            };
            affine_err(n, y, dy)
        })
        .collect()
}

/// Knuth's method: a bound on |ln(prod_gpu / limit_gpu) - ln(prod_ref / limit_ref)| at step `j`
/// (after j uniforms) at rate `lambda`: j product roundings, lambda's own rounding (x * peak)
/// through exp, exp's 3 + 2|x| ULP, and the reference's own f64 roundings.
fn knuth_err(j: f64, lambda: f64) -> f64 {
    let per = -(-U).ln_1p();
    j * per + U * lambda * (1.0 + U) - (-(3.0 + 2.0 * lambda * (1.0 + U)) * U).ln_1p() + (j + 2.0 + lambda) * f64::EPSILON
}

/// Above lambda 30: a bound on |v_gpu - v| for v = lambda + sqrt(lambda) z (counts).
fn rounded_normal_err(parts: (f64, f64, f64), lambda: f64) -> f64 {
    let (z, dz) = normal_err(parts);
    let sq = lambda.sqrt();
    // sqrt of lambda (1 +- U): the rounding of x * peak halves under sqrt, then sqrt's own error.
    let dsq = sq * (SQRT_REL + U);
    let err = sq * dz + dsq * (z + dz);
    let mag = (sq + dsq) * (z + dz);
    err + U * mag + U * lambda + U * (lambda + mag + err)
}

/// The allowed number of flipped Poisson draws when `expected` flips are the sum of the draws'
/// flip probabilities at WGSL's worst accuracy: the largest count whose Chernoff tail
/// P(N >= t) <= e^-E (e E / t)^t (a sum of independent Bernoulli draws of mean E) is above
/// [`FLIP_TAIL`], i.e. the count a driver at the edge of WGSL's accuracy reaches on fewer
/// than one in a million seeds.
pub fn allowed_flips(expected: f64) -> usize {
    let mut t = expected.floor() as usize + 1;
    loop {
        let tf = t as f64;
        if -expected + tf * (1.0 + (expected / tf).ln()) <= FLIP_TAIL.ln() {
            return t - 1;
        }
        t += 1;
    }
}

/// The Poisson rows: every draw is the reference's count, or one count off where the
/// reference's deciding quantity sat within the error WGSL allows of the boundary (Knuth's
/// running product against exp(-lambda), or lambda + sqrt(lambda) z against k +- 1/2), each
/// output within the division's 2.5 ULP and the affine's roundings of that count (row
/// `data_noise`: its value is the largest count difference, tolerance 1); and the number of
/// one-count flips at most [`allowed_flips`] of their expected number (row `data_noise flips`).
///
/// The expected number: Knuth's method flips a draw only if some ln(1/prod_j) lies within
/// the error of lambda; those points are a rate-1 Poisson process (-ln u is Exp(1)), so the
/// chance is at most 2 knuth_err at the deciding step. Above lambda 30 it flips only if v lies
/// within its error of a half-integer; v's sd is sqrt(lambda) >= 5.4, so its fractional part is
/// uniform to within 1e-100 and the chance is at most 2 rounded_normal_err.
pub(super) fn check_poisson(c: &mut Checker<'_>, n: &NoiseRef, clean: &[f64], image_len: usize, gpu: &[f32]) {
    assert_eq!(n.noise, 2);
    let out = |count: f64| {
        let mut y = count / n.peak;
        if let Some((lo, hi)) = n.clip {
            y = y.clamp(lo, hi);
        }
        y * n.in_scale + n.in_shift
    };
    let (mut worst, mut flips, mut expected) = (0.0f64, 0usize, 0.0f64);
    let mut bad = Vec::new();
    for (i, (&x, &g)) in clean.iter().zip(gpu).enumerate() {
        let k = i as u32 + n.start * image_len as u32;
        let lambda = x.max(0.0) * n.peak;
        let d = rd::poisson_draw(n, k, lambda);
        if (lambda - 30.0).abs() <= 2.0 * U * lambda {
            bad.push(format!("[{i}] lambda {lambda} is within rounding of 30: the kernel may take either path; pick other inputs"));
            continue;
        }
        let (up, down) = match d.normal {
            Some(parts) => {
                let e = rounded_normal_err(parts, lambda);
                expected += (2.0 * e).min(1.0);
                (e, e)
            }
            None => {
                expected += (2.0 * knuth_err(d.k + 1.0, lambda)).min(1.0);
                (knuth_err(d.k + 1.0, lambda), knuth_err(d.k, lambda))
            }
        };
        let g = g as f64;
        // Within the division's 2.5 ULP and the affine's roundings of count k + dk.
        let near = |dk: f64| {
            let q = (d.k + dk) / n.peak;
            (g - out(d.k + dk)).abs() <= affine_err(n, q, 2.5 * U * q)
        };
        if near(0.0) {
            continue;
        }
        let (dk, margin, allowed) = if near(1.0) {
            (1.0, d.margin_up, up)
        } else if d.k >= 1.0 && near(-1.0) {
            (-1.0, d.margin_down, down)
        } else {
            worst = f64::INFINITY;
            bad.push(format!("[{i}] {g:.6e} vs {:.6e}: not within one count ({} at lambda {lambda:.4})", out(d.k), d.k));
            continue;
        };
        worst = worst.max(1.0);
        flips += 1;
        if margin > allowed {
            bad.push(format!(
                "[{i}] {g:.6e} vs {:.6e}: count {} vs {}, but the reference's decision was {margin:.3e} from the boundary, beyond the {allowed:.3e} WGSL allows",
                out(d.k),
                d.k + dk,
                d.k
            ));
        }
    }
    let mismatches =
        (!bad.is_empty()).then(|| format!("{} of {} draws: {}", bad.len(), gpu.len(), bad.iter().take(4).cloned().collect::<Vec<_>>().join("; ")));
    let n_ok = gpu.len() == clean.len();
    c.push_value("data_noise", if n_ok { worst } else { f64::INFINITY }, 1.0, mismatches);
    let allowed = allowed_flips(expected);
    c.push_value("data_noise flips", flips as f64, allowed as f64, None);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PI_BELOW is the f32 just below pi, and the shader declares the same literal.
    #[test]
    fn pi_below_is_the_largest_f32_not_above_pi() {
        let p = 3.1415925f32;
        assert_eq!(p.to_bits(), 0x4049_0FDA);
        assert!((p as f64) < std::f64::consts::PI);
        assert!(f32::from_bits(p.to_bits() + 1) as f64 > std::f64::consts::PI);
        let src = crate::gpu::shaders::source("data").expect("the data shader");
        assert!(src.contains("const PI_BELOW: f32 = 3.1415925;"), "shaders/data.wgsl's PI_BELOW differs from the check's");
        assert!(src.contains("const T_MIN: f32 = 1e-30;"), "shaders/data.wgsl's T_MIN differs from the check's");
    }

    /// The flip allowance: none expected allows none; the tail at the allowance + 1 is below
    /// 1e-6 and at the allowance above it.
    #[test]
    fn flip_allowance_is_the_chernoff_quantile() {
        assert_eq!(allowed_flips(0.0), 0);
        let tail = |e: f64, t: f64| (-e + t * (1.0 + (e / t).ln())).exp();
        for e in [1e-4, 1e-3, 0.05, 0.5, 2.0, 10.0] {
            let a = allowed_flips(e) as f64;
            assert!(tail(e, a + 1.0) <= FLIP_TAIL, "E {e}: allowance {a}");
            assert!(a < e.floor() + 1.0 || tail(e, a) > FLIP_TAIL, "E {e}: allowance {a} not the smallest");
        }
        assert_eq!(allowed_flips(1e-3), 2);
    }

    /// The bounds are the WGSL-derived sizes: about 2^-11 R per unit level for the normal,
    /// and exactly zero for salt-and-pepper through the identity affine.
    #[test]
    fn normal_bound_is_dominated_by_cos() {
        let (z, dz) = normal_err((0.3, (-2.0 * 0.7f64.ln()).sqrt(), 0.5));
        let r = (-2.0 * 0.7f64.ln()).sqrt();
        assert!((z - 0.5 * r).abs() < 1e-15);
        assert!(dz > r * COS_ABS && dz < r * COS_ABS * 1.01 + 1e-5, "{dz}");
        let n = NoiseRef {
            noise: 1,
            seed: 1,
            epoch: 0,
            step: 0,
            start: 0,
            levels: vec![0.1],
            range: None,
            level_scale: 1.0,
            amount: 0.5,
            peak: 0.0,
            clip: None,
            in_scale: 1.0,
            in_shift: 0.0,
        };
        assert!(bounds(&n, &[0.2, 0.7, 0.0], 3).iter().all(|&b| b == 0.0));
    }
}
