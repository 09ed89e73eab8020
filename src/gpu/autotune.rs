//! Autotune as the runtime runs it: which candidate of a kernel runs at a shape (pinned,
//! cached, or timed now, each candidate alone on the GPU), and the cross-check of their bits.
//! The cache and the budget are `tune::Tuner`'s.

use std::cell::{Cell, RefCell};

use super::{Ctx, View, tune};
use crate::error::Result;

/// Autotune's part of the runtime.
pub struct Autotune {
    pub(super) tuner: RefCell<tune::Tuner>,
    /// The cross-check's findings ([`Autotune::miscompiles`]).
    pub(super) miscompiles: RefCell<Vec<String>>,
    pub(super) planted: Cell<Option<&'static str>>,
    /// "adapter | driver driver_info": the cache's device key.
    device: String,
}

impl Autotune {
    pub(super) fn new(info: &wgpu::AdapterInfo) -> Autotune {
        Autotune {
            tuner: RefCell::new(tune::Tuner::new(info)),
            miscompiles: RefCell::new(Vec::new()),
            planted: Cell::new(None),
            device: format!("{} | {} {}", info.name, info.driver, info.driver_info),
        }
    }

    /// Tests of the cross-check: the candidate `label` reports its outputs with one bit flipped,
    /// as a miscompiled kernel would.
    pub fn plant_miscompile(&self, label: Option<&'static str>) {
        self.planted.set(label);
    }

    /// Autotune from scratch: no cache file read or written, nothing known, `budget_s` seconds
    /// of timing.
    pub fn afresh(&self, budget_s: f64) {
        *self.tuner.borrow_mut() = tune::Tuner::at(None, &self.device, budget_s);
    }

    /// What the cross-check found wrong in this process (each also a warning).
    pub fn miscompiles(&self) -> Vec<String> {
        self.miscompiles.borrow().clone()
    }

    /// The choices this process used, "kernel | shape" -> label (checkpoints keep them).
    pub fn choices(&self) -> std::collections::BTreeMap<String, String> {
        self.tuner.borrow().used()
    }

    /// Every candidate this process timed, "kernel | shape" -> (label, ms).
    pub fn times(&self) -> std::collections::BTreeMap<String, Vec<(String, f64)>> {
        self.tuner.borrow().timed()
    }

    /// Whether autotune may still time in this process (its budget is not spent).
    pub fn budget_left(&self) -> bool {
        self.tuner.borrow().has_budget()
    }

    /// Allow at least `secs` of timing in this process (unless `DAE_TUNE_BUDGET` is set).
    pub fn widen_budget(&self, secs: f64) {
        self.tuner.borrow_mut().widen_budget(secs);
    }

    /// Use these choices (from a checkpoint) wherever they name a candidate, before any cache.
    pub fn pin(&self, choices: std::collections::BTreeMap<String, String>) {
        self.tuner.borrow_mut().pin(choices);
    }

    /// Uses of shapes the budget left untuned, so far in this process.
    pub(super) fn deferrals(&self) -> u64 {
        self.tuner.borrow().deferrals()
    }
}

impl Ctx {
    /// Which of `labels` (a kernel's candidates at one shape, first = the default) to run: pinned
    /// by a checkpoint, else cached for this adapter and driver, else timed now: `run(i)` encodes
    /// candidate i once on scratch outputs it initialises the same way each time, and returns
    /// them; each runs alone on the GPU, once to warm up (compile) and twice timed; the fastest
    /// wins and is cached. Past the process's tuning budget the first label runs, untuned and not
    /// cached, and the shape waits for [`Ctx::retune`]. A plan being recorded is set aside while
    /// candidates run, so nothing of the tuning enters it.
    ///
    /// The candidates compute the same bits by design, so the warm-up outputs are compared: a
    /// candidate that disagrees is judged against `simple()` (the family's simple kernel on the
    /// same scratch outputs) where there is one, by majority where not, and the wrong ones are
    /// dropped with a warning naming kernel, shape and adapter ([`Ctx::miscompiles`]): a
    /// miscompile check on every adapter dae tunes on.
    // In the browser nothing is timed: `run` and `simple` go unused there.
    #[cfg_attr(target_arch = "wasm32", allow(unused_mut, unused_variables))]
    pub fn tuned(
        &self,
        kernel: &str,
        shape: &str,
        labels: &[&'static str],
        mut run: impl FnMut(usize) -> Result<Vec<View>>,
        simple: Option<&mut dyn FnMut() -> Result<Vec<View>>>,
    ) -> Result<usize> {
        let short = format!("{kernel} | {shape}");
        let known = self.0.tune.tuner.borrow().known(&short, labels);
        let pick = match known {
            Some(i) => {
                // A shape the budget left untuned: with budget again it was known after all (the
                // cache: another process timed it), without, one more untuned use.
                let mut t = self.0.tune.tuner.borrow_mut();
                if t.is_deferred(&short) {
                    if t.has_budget() { t.undefer(&short) } else { t.defer(&short) }
                }
                i
            }
            None if labels.len() < 2 => 0,
            None if !self.0.tune.tuner.borrow().has_budget() => {
                self.0.tune.tuner.borrow_mut().defer(&short);
                0
            }
            // The browser cannot wait for the GPU to time a candidate: its first (or pinned) one.
            #[cfg(target_arch = "wasm32")]
            None => 0,
            #[cfg(not(target_arch = "wasm32"))]
            None => {
                let t0 = web_time::Instant::now();
                // A warm-up run of each candidate (its pipeline compiled), then two timed rounds
                // over all of them in turn: a drift of the adapter's speed (a CPU host's other
                // load) then touches every candidate alike instead of favouring the ones timed
                // in a fast moment. The best of each candidate's two runs counts.
                let mut warm = 0;
                // A shape cut short before is timed whole now, however long that takes: a
                // shape longer than one slice would otherwise never finish.
                let whole = self.0.tune.tuner.borrow().is_deferred(&short);
                let mut outputs = Vec::new();
                for (i, label) in labels.iter().enumerate() {
                    // A candidate whose three runs would go past the budget is not started: the
                    // shape uses the best so far this time and is tuned whole by a later run.
                    let e = t0.elapsed().as_secs_f64();
                    if i > 0 && !whole && !self.0.tune.tuner.borrow().fits(3.0 * e / i as f64 * (i + 1) as f64) {
                        break;
                    }
                    // Read inside: a plan being recorded is set aside there.
                    let mut bits = Vec::new();
                    self.run_alone(|| {
                        bits = self.output_bits(&run(i)?, label)?;
                        Ok(())
                    })?;
                    outputs.push(bits);
                    warm += 1;
                }
                let wrong = self.cross_check(kernel, shape, &labels[..warm], &outputs, simple)?;
                let mut best_s = vec![f64::INFINITY; warm];
                for _ in 0..2 {
                    for (i, b) in best_s.iter_mut().enumerate() {
                        if !wrong.contains(&i) {
                            *b = b.min(self.run_alone(|| run(i).map(drop))?);
                        }
                    }
                }
                let times: Vec<(String, f64)> = labels.iter().zip(&best_s).map(|(l, t)| (l.to_string(), t * 1e3)).collect();
                let best = times.iter().enumerate().min_by(|a, b| a.1.1.total_cmp(&b.1.1)).map_or(0, |(i, _)| i);
                let spent = t0.elapsed().as_secs_f64();
                if times.len() == labels.len() {
                    self.0.tune.tuner.borrow_mut().record(&short, times, spent);
                } else {
                    self.0.tune.tuner.borrow_mut().spend(spent);
                    self.0.tune.tuner.borrow_mut().defer(&short);
                }
                best
            }
        };
        self.0.tune.tuner.borrow_mut().note_used(&short, labels[pick]);
        Ok(pick)
    }

    /// The bits of a candidate's outputs (its scratch views, read back), for [`Ctx::cross_check`]
    /// (a planted miscompile flips the lowest bit of its candidate's first value).
    #[cfg(not(target_arch = "wasm32"))]
    pub(super) fn output_bits(&self, views: &[View], label: &str) -> Result<Vec<u32>> {
        let mut bits = Vec::new();
        for v in views {
            bits.extend(super::block_on(self.read(v))?.iter().map(|x| x.to_bits()));
        }
        if self.0.tune.planted.get() == Some(label)
            && let Some(b) = bits.first_mut()
        {
            *b ^= 1;
        }
        Ok(bits)
    }

    /// The candidates (by index into `labels`) whose outputs are wrong, each reported. All
    /// agreeing: none. Otherwise the candidates fall into groups of identical bits; with a
    /// simple kernel, the group nearest its output (relative max difference) is right; without,
    /// the largest group, and a tie drops nothing but is reported.
    #[cfg(not(target_arch = "wasm32"))]
    pub(super) fn cross_check(
        &self,
        kernel: &str,
        shape: &str,
        labels: &[&str],
        outputs: &[Vec<u32>],
        simple: Option<&mut dyn FnMut() -> Result<Vec<View>>>,
    ) -> Result<Vec<usize>> {
        let mut groups: Vec<Vec<usize>> = Vec::new();
        for (i, o) in outputs.iter().enumerate() {
            match groups.iter_mut().find(|g| outputs[g[0]] == *o) {
                Some(g) => g.push(i),
                None => groups.push(vec![i]),
            }
        }
        if groups.len() < 2 {
            return Ok(Vec::new());
        }
        let names = |g: &[usize]| g.iter().map(|&i| labels[i]).collect::<Vec<_>>().join(", ");
        let (right, how) = match simple {
            Some(f) => {
                let mut want: Vec<f32> = Vec::new();
                self.run_alone(|| {
                    want = self.output_bits(&f()?, "")?.into_iter().map(f32::from_bits).collect();
                    Ok(())
                })?;
                let scale = want.iter().fold(0f32, |m, v| m.max(v.abs())).max(f32::MIN_POSITIVE);
                let dist = |g: &Vec<usize>| {
                    outputs[g[0]].iter().zip(&want).fold(0f32, |m, (b, w)| {
                        let d = (f32::from_bits(*b) - w).abs() / scale;
                        if d.is_nan() { f32::INFINITY } else { m.max(d) }
                    })
                };
                let best = groups.iter().min_by(|a, b| dist(a).total_cmp(&dist(b))).cloned().unwrap_or_default();
                (best.clone(), format!("the simple kernel agrees with {} (max difference {:.1e} of its largest value)", names(&best), dist(&best)))
            }
            None => {
                let most = groups.iter().map(Vec::len).max().unwrap_or(0);
                let top: Vec<&Vec<usize>> = groups.iter().filter(|g| g.len() == most).collect();
                if top.len() > 1 {
                    let msg = format!(
                        "{kernel} at {shape} on {}: its candidates disagree ({}) and no majority decides which are right; none dropped",
                        self.0.gpu.info.name,
                        groups.iter().map(|g| format!("[{}]", names(g))).collect::<Vec<_>>().join(" vs ")
                    );
                    self.0.warnings.borrow_mut().push(format!("autotune: {msg}"));
                    self.0.tune.miscompiles.borrow_mut().push(msg);
                    return Ok(Vec::new());
                }
                (top[0].clone(), format!("the majority ({}) agrees", names(top[0])))
            }
        };
        let wrong: Vec<usize> = (0..outputs.len()).filter(|i| !right.contains(i)).collect();
        let msg = format!(
            "{kernel} at {shape} on {} ({}): {} computed other bits than the rest ({how}); dropped for this shape. Please report this adapter and driver",
            self.0.gpu.info.name,
            self.0.gpu.info.driver_info,
            names(&wrong)
        );
        self.0.warnings.borrow_mut().push(format!("autotune: {msg}"));
        self.0.tune.miscompiles.borrow_mut().push(msg);
        Ok(wrong)
    }

    /// Run `f`'s dispatches on their own (any open recording and GPU timer set aside, earlier
    /// work submitted and finished first) and return their wall time in seconds.
    #[cfg(not(target_arch = "wasm32"))]
    pub(super) fn run_alone(&self, f: impl FnOnce() -> Result<()>) -> Result<f64> {
        let rec = self.0.enc.recording.borrow_mut().take();
        let timer = self.0.prof.timer.borrow_mut().take();
        let r = (|| {
            self.flush()?;
            self.0.gpu.wait()?;
            let t0 = web_time::Instant::now();
            f()?;
            self.flush()?;
            self.0.gpu.wait()?;
            Ok(t0.elapsed().as_secs_f64())
        })();
        *self.0.enc.recording.borrow_mut() = rec;
        *self.0.prof.timer.borrow_mut() = timer;
        r
    }
}
