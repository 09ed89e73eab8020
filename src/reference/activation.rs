//! Pointwise activations and their derivatives, matching PyTorch: ReLU, LeakyReLU
//! (slope), GELU exact (erf) and tanh-approximate, SiLU and Sigmoid.
//! Layout-agnostic: x, y, dy, dx are flat slices of equal length.

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    Relu,
    LeakyRelu(f64),
    GeluErf,
    GeluTanh,
    Silu,
    Sigmoid,
}

/// sqrt(2/pi), the tanh-GELU inner scale.
const GELU_TANH_BETA: f64 = 0.797_884_560_802_865_4;
const GELU_TANH_KAPPA: f64 = 0.044_715;
/// 1/sqrt(2) and 1/sqrt(2*pi), for the exact GELU's normal cdf and pdf.
const FRAC_1_SQRT_2: f64 = std::f64::consts::FRAC_1_SQRT_2;
const FRAC_1_SQRT_2PI: f64 = 0.398_942_280_401_432_7;

/// Written so exp never overflows for large |x|: exp only sees non-positive values.
fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

fn forward_one(a: Activation, x: f64) -> f64 {
    match a {
        Activation::Relu => {
            if x > 0.0 {
                x
            } else {
                0.0
            }
        }
        Activation::LeakyRelu(slope) => {
            if x > 0.0 {
                x
            } else {
                slope * x
            }
        }
        Activation::GeluErf => 0.5 * x * (1.0 + libm::erf(x * FRAC_1_SQRT_2)),
        Activation::GeluTanh => {
            let inner = GELU_TANH_BETA * (x + GELU_TANH_KAPPA * x * x * x);
            0.5 * x * (1.0 + inner.tanh())
        }
        Activation::Silu => x * sigmoid(x),
        Activation::Sigmoid => sigmoid(x),
    }
}

fn derivative(a: Activation, x: f64) -> f64 {
    match a {
        // At exactly 0 PyTorch takes the "not positive" branch: relu'(0) = 0,
        // leaky'(0) = slope.
        Activation::Relu => {
            if x > 0.0 {
                1.0
            } else {
                0.0
            }
        }
        Activation::LeakyRelu(slope) => {
            if x > 0.0 {
                1.0
            } else {
                slope
            }
        }
        // d/dx [x * Phi(x)] = Phi(x) + x * phi(x).
        Activation::GeluErf => {
            let cdf = 0.5 * (1.0 + libm::erf(x * FRAC_1_SQRT_2));
            let pdf = FRAC_1_SQRT_2PI * (-0.5 * x * x).exp();
            cdf + x * pdf
        }
        // Same factoring as PyTorch's GeluBackward (approximate = "tanh").
        Activation::GeluTanh => {
            let inner = GELU_TANH_BETA * (x + GELU_TANH_KAPPA * x * x * x);
            let t = inner.tanh();
            let left_derivative = 0.5 * (1.0 + t);
            let right_derivative = 0.5 * x * (1.0 - t * t) * GELU_TANH_BETA * (1.0 + 3.0 * GELU_TANH_KAPPA * x * x);
            left_derivative + right_derivative
        }
        // d/dx [x * s] = s + x * s * (1 - s).
        Activation::Silu => {
            let s = sigmoid(x);
            s * (1.0 + x * (1.0 - s))
        }
        Activation::Sigmoid => {
            let s = sigmoid(x);
            s * (1.0 - s)
        }
    }
}

pub fn activation_forward(a: Activation, x: &[f64]) -> Vec<f64> {
    x.iter().map(|&v| forward_one(a, v)).collect()
}

pub fn activation_backward(a: Activation, x: &[f64], dy: &[f64]) -> Vec<f64> {
    assert_eq!(x.len(), dy.len(), "activation_backward: x and dy lengths differ");
    x.iter().zip(dy).map(|(&v, &g)| g * derivative(a, v)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::fd::{Rng, assert_close, check_grad, dot};

    const ALL: [Activation; 7] = [
        Activation::Relu,
        Activation::LeakyRelu(0.01),
        Activation::LeakyRelu(0.2),
        Activation::GeluErf,
        Activation::GeluTanh,
        Activation::Silu,
        Activation::Sigmoid,
    ];

    #[test]
    fn constants() {
        assert!((GELU_TANH_BETA - (2.0 / std::f64::consts::PI).sqrt()).abs() < 1e-16);
        assert!((FRAC_1_SQRT_2PI - 1.0 / (2.0 * std::f64::consts::PI).sqrt()).abs() < 1e-16);
    }

    #[test]
    fn forward_known_values() {
        let x = [-2.0, 0.0, 1.0];
        assert_close("relu", &activation_forward(Activation::Relu, &x), &[0.0, 0.0, 1.0], 0.0);
        assert_close("leaky", &activation_forward(Activation::LeakyRelu(0.1), &x), &[-0.2, 0.0, 1.0], 1e-16);
        // Reference values: x * Phi(x) and the tanh formula at 1 and -2.
        let gelu = activation_forward(Activation::GeluErf, &[1.0, -2.0]);
        assert_close("gelu erf", &gelu, &[0.841_344_746_068_542_9, -0.045_500_263_896_358_42], 1e-15);
        let gelu_t = activation_forward(Activation::GeluTanh, &[1.0, -2.0]);
        assert_close("gelu tanh", &gelu_t, &[0.841_191_990_608_276_8, -0.045_402_305_912_224_94], 1e-15);
        assert_close("silu", &activation_forward(Activation::Silu, &[1.0]), &[0.731_058_578_630_004_9], 1e-15);
        assert_close("sigmoid", &activation_forward(Activation::Sigmoid, &[0.0, 2.0]), &[0.5, 0.880_797_077_977_882_3], 1e-15);
    }

    #[test]
    fn extremes_stay_finite() {
        let x = [-1000.0, 1000.0];
        for a in ALL {
            let y = activation_forward(a, &x);
            let d = activation_backward(a, &x, &[1.0, 1.0]);
            assert!(y.iter().chain(&d).all(|v| v.is_finite()), "{a:?}: {y:?} {d:?}");
        }
        assert_eq!(activation_forward(Activation::Sigmoid, &x), vec![0.0, 1.0]);
    }

    #[test]
    fn derivative_at_zero_follows_pytorch() {
        assert_eq!(activation_backward(Activation::Relu, &[0.0], &[3.0]), vec![0.0]);
        assert_eq!(activation_backward(Activation::LeakyRelu(0.1), &[0.0], &[3.0]), vec![3.0 * 0.1]);
        assert_eq!(activation_backward(Activation::GeluErf, &[0.0], &[3.0]), vec![1.5]);
        assert_eq!(activation_backward(Activation::Silu, &[0.0], &[3.0]), vec![1.5]);
    }

    #[test]
    fn gradients_match_finite_differences() {
        let mut rng = Rng::new(1);
        // Spread over [-5, 5] and at least 5e-3 from the ReLU kink.
        let x: Vec<f64> = rng.vec_off_zero(257, 1e-3).iter().map(|v| 5.0 * v).collect();
        let g = rng.vec(x.len());
        for a in ALL {
            let dx = activation_backward(a, &x, &g);
            check_grad(&format!("{a:?}"), &x, &dx, |x| dot(&activation_forward(a, x), &g));
        }
    }
}
