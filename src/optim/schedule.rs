//! Learning-rate schedules, stepped per optimiser step (smooth within an epoch).

pub use crate::config::ScheduleKind;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Schedule {
    pub kind: ScheduleKind,
    pub base_lr: f64,
    /// Linear warm-up from 0 (exclusive) to base_lr over this many steps.
    pub warmup_steps: u64,
    pub total_steps: u64,
    /// Cosine floor: 0.01 * base_lr per SPEC.
    pub eta_min: f64,
    /// Step schedule: multiply by gamma every step_size steps.
    pub step_size: u64,
    pub gamma: f64,
}

impl Schedule {
    /// The learning rate of optimiser step `step` (0-based).
    pub fn lr(&self, step: u64) -> f64 {
        if step < self.warmup_steps {
            return self.base_lr * (step + 1) as f64 / self.warmup_steps as f64;
        }
        match self.kind {
            ScheduleKind::None => self.base_lr,
            ScheduleKind::Step => self.base_lr * self.gamma.powi((step / self.step_size.max(1)) as i32),
            ScheduleKind::Cosine => {
                let span = self.total_steps.saturating_sub(self.warmup_steps).max(1) as f64;
                let prog = ((step - self.warmup_steps) as f64 / span).min(1.0);
                self.eta_min + 0.5 * (self.base_lr - self.eta_min) * (1.0 + (std::f64::consts::PI * prog).cos())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_with_warmup() {
        let s = Schedule { kind: ScheduleKind::Cosine, base_lr: 1.0, warmup_steps: 10, total_steps: 110, eta_min: 0.01, step_size: 0, gamma: 0.0 };
        assert!((s.lr(0) - 0.1).abs() < 1e-12);
        assert!((s.lr(9) - 1.0).abs() < 1e-12);
        assert!((s.lr(10) - 1.0).abs() < 1e-12);
        assert!((s.lr(60) - 0.505).abs() < 1e-12);
        assert!((s.lr(110) - 0.01).abs() < 1e-12);
        assert!((s.lr(500) - 0.01).abs() < 1e-12);
    }

    #[test]
    fn step_decay() {
        let s = Schedule { kind: ScheduleKind::Step, base_lr: 1.0, warmup_steps: 0, total_steps: 100, eta_min: 0.0, step_size: 10, gamma: 0.5 };
        assert_eq!(s.lr(9), 1.0);
        assert_eq!(s.lr(10), 0.5);
        assert_eq!(s.lr(25), 0.25);
    }
}
