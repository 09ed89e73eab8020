//! CPU twin of shaders/optim.wgsl: one optimiser step (AdamW / Adam / SGD with momentum, the
//! global-norm clip applied first) and the EMA update, in f64, as torch.optim computes them.

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Optimizer {
    AdamW,
    Adam,
    Sgd,
}

#[derive(Clone, Copy, Debug)]
pub struct Hyper {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    pub momentum: f64,
    /// None: no clipping.
    pub max_norm: Option<f64>,
}

/// torch.nn.utils.clip_grad_norm_'s coefficient for total norm `norm`.
pub fn clip_coef(norm: f64, max_norm: f64) -> f64 {
    (max_norm / (norm + 1e-6)).min(1.0)
}

/// Step `t` (1-based) on every element; `grad` is consumed (set to 0) like the kernel does.
pub fn optim_step(kind: Optimizer, h: &Hyper, t: u64, param: &mut [f64], grad: &mut [f64], m: &mut [f64], v: &mut [f64]) {
    let norm = grad.iter().map(|g| g * g).sum::<f64>().sqrt();
    let scale = h.max_norm.map_or(1.0, |mx| clip_coef(norm, mx));
    let bc1 = 1.0 - h.beta1.powi(t as i32);
    let bc2 = 1.0 - h.beta2.powi(t as i32);
    for i in 0..param.len() {
        let mut g = grad[i] * scale;
        grad[i] = 0.0;
        let mut w = param[i];
        match kind {
            Optimizer::Sgd => {
                g += h.weight_decay * w;
                m[i] = h.momentum * m[i] + g;
                param[i] = w - h.lr * m[i];
                continue;
            }
            Optimizer::AdamW => w *= 1.0 - h.lr * h.weight_decay,
            Optimizer::Adam => g += h.weight_decay * w,
        }
        m[i] = h.beta1 * m[i] + (1.0 - h.beta1) * g;
        v[i] = h.beta2 * v[i] + (1.0 - h.beta2) * g * g;
        param[i] = w - (h.lr / bc1) * m[i] / (v[i].sqrt() / bc2.sqrt() + h.eps);
    }
}

pub fn ema_update(decay: f64, ema: &mut [f64], param: &[f64]) {
    for (e, p) in ema.iter_mut().zip(param) {
        *e = decay * *e + (1.0 - decay) * p;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hand-computed first AdamW step: with bias correction the update is lr * sign(g) (for
    /// |g| >> eps), after the decoupled decay.
    #[test]
    fn first_adamw_step_is_lr_sign_g() {
        let h = Hyper { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.01, momentum: 0.0, max_norm: None };
        let (mut p, mut g, mut m, mut v) = (vec![1.0, -2.0], vec![0.5, -3.0], vec![0.0; 2], vec![0.0; 2]);
        optim_step(Optimizer::AdamW, &h, 1, &mut p, &mut g, &mut m, &mut v);
        assert!((p[0] - (1.0 * 0.999 - 0.1)).abs() < 1e-6, "{p:?}");
        assert!((p[1] - (-2.0 * 0.999 + 0.1)).abs() < 1e-6, "{p:?}");
        assert_eq!(g, vec![0.0, 0.0]);
    }

    #[test]
    fn clipping_scales_to_max_norm() {
        let h = Hyper { lr: 1.0, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0, momentum: 0.0, max_norm: Some(1.0) };
        let (mut p, mut g, mut m, mut v) = (vec![0.0, 0.0], vec![3.0, 4.0], vec![0.0; 2], vec![0.0; 2]);
        optim_step(Optimizer::Sgd, &h, 1, &mut p, &mut g, &mut m, &mut v);
        // norm 5 -> scaled to ~1: p = -g/5
        assert!((p[0] + 0.6).abs() < 1e-6 && (p[1] + 0.8).abs() < 1e-6, "{p:?}");
    }
}
