//! The run configuration: strict YAML (an unknown key is an error naming it and the file),
//! defaults for every field, `--set key=value` overrides applied before parsing, and validation
//! whose messages name the field (`train.lr must be > 0, got -1`).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub seed: u64,
    /// Where logs, checkpoints and figures go (`--out-dir` overrides).
    pub out_dir: String,
    pub data: DataConfig,
    pub noise: NoiseConfig,
    pub model: ModelConfig,
    pub train: TrainConfig,
    pub eval: EvalConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            seed: 42,
            out_dir: "outputs".into(),
            data: DataConfig::default(),
            noise: NoiseConfig::default(),
            model: ModelConfig::default(),
            train: TrainConfig::default(),
            eval: EvalConfig::default(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dataset {
    Mnist,
    FashionMnist,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Normalize {
    /// Network input in [0, 1].
    ZeroOne,
    /// Network input in [-1, 1]; targets, outputs (sigmoid) and metrics stay in [0, 1].
    MinusOneOne,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    pub dataset: Dataset,
    /// Folder holding the four IDX .gz files (`--data-dir` and `DAE_DATA_DIR` override).
    pub root: String,
    pub normalize: Normalize,
    /// Held-out validation images taken from the training set (fixed by the seed).
    pub val_size: usize,
    /// Use only this many training images (after the validation split); null = all.
    pub train_limit: Option<usize>,
    /// Download missing files from the dataset's mirrors.
    pub download: bool,
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            dataset: Dataset::Mnist,
            root: "./data/mnist".into(),
            normalize: Normalize::ZeroOne,
            val_size: 5000,
            train_limit: None,
            download: true,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoiseKind {
    Gaussian,
    SaltPepper,
    Poisson,
    Speckle,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SigmaScheduleKind {
    Linear,
    Cosine,
}

/// A list of `count` training sigmas between `min` and `max` (replaces `train_sigmas`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigmaSchedule {
    pub kind: SigmaScheduleKind,
    pub min: f32,
    pub max: f32,
    pub count: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Curriculum {
    /// Sigmas are scaled by 0.5 + 0.5 * min(epoch / epochs, 1).
    pub epochs: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NoiseConfig {
    #[serde(rename = "type")]
    pub kind: NoiseKind,
    /// Per-sample training sigma drawn uniformly from this list ...
    pub train_sigmas: Vec<f32>,
    /// ... or uniformly from this [min, max] range when set.
    pub train_sigma_range: Option<[f32; 2]>,
    pub schedule: Option<SigmaSchedule>,
    pub curriculum: Option<Curriculum>,
    /// Clip the noisy image to this range; null = no clipping.
    pub clip_range: Option<[f32; 2]>,
    /// Evaluation sigmas (may include levels never seen in training). The sigma lists apply to
    /// gaussian and speckle noise; salt_pepper and poisson have no sigma and are trained and
    /// evaluated at `amount` / `peak` (the val CSV's sigma column then holds that value).
    pub test_sigmas: Vec<f32>,
    /// Salt-and-pepper: fraction of pixels replaced.
    pub amount: f32,
    /// Poisson: photons at full intensity (lower = noisier).
    pub peak: f32,
}

impl Default for NoiseConfig {
    fn default() -> Self {
        NoiseConfig {
            kind: NoiseKind::Gaussian,
            train_sigmas: vec![0.1, 0.2, 0.3, 0.5],
            train_sigma_range: None,
            schedule: None,
            curriculum: None,
            clip_range: Some([0.0, 1.0]),
            test_sigmas: vec![0.1, 0.3, 0.7, 1.0],
            amount: 0.1,
            peak: 30.0,
        }
    }
}

impl NoiseConfig {
    /// The training sigma list after the schedule (if any) is applied.
    pub fn sigma_list(&self) -> Vec<f32> {
        match &self.schedule {
            None => self.train_sigmas.clone(),
            Some(s) => (0..s.count)
                .map(|i| {
                    let t = if s.count > 1 { i as f32 / (s.count - 1) as f32 } else { 0.0 };
                    let t = match s.kind {
                        SigmaScheduleKind::Linear => t,
                        SigmaScheduleKind::Cosine => 0.5 - 0.5 * (std::f32::consts::PI * t).cos(),
                    };
                    s.min + t * (s.max - s.min)
                })
                .collect(),
        }
    }

    /// The smallest and largest sigma training draws (at the curriculum's full scale).
    pub fn trained_range(&self) -> (f32, f32) {
        match self.train_sigma_range {
            Some([a, b]) => (a, b),
            None => {
                let l = self.sigma_list();
                (l.iter().cloned().fold(f32::INFINITY, f32::min), l.iter().cloned().fold(0.0, f32::max))
            }
        }
    }

    /// The curriculum factor of `epoch` (0-based).
    pub fn level_scale(&self, epoch: usize) -> f32 {
        match &self.curriculum {
            Some(c) if c.epochs > 0 => 0.5 + 0.5 * (epoch as f32 / c.epochs as f32).min(1.0),
            _ => 1.0,
        }
    }
}

/// One term of `train.loss`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LossTerm {
    L2,
    L1,
    /// sqrt(d^2 + 1e-6), eps 1e-3.
    Charbonnier,
    /// VGG16 features (needs `train.perceptual`).
    Perceptual,
}

/// `train.loss`: a sum of optionally weighted terms, e.g. `l2`, `l1 + 0.1*perceptual`.
pub fn parse_loss(expr: &str) -> std::result::Result<Vec<(f32, LossTerm)>, String> {
    let mut out = Vec::new();
    for raw in expr.split('+') {
        let t = raw.trim();
        let (w, name) = match t.split_once('*') {
            Some((w, n)) => (w.trim().parse::<f32>().map_err(|_| format!("train.loss: bad weight {:?} in {expr:?}", w.trim()))?, n.trim()),
            None => (1.0, t),
        };
        let term = match name {
            "l2" | "mse" => LossTerm::L2,
            "l1" => LossTerm::L1,
            "charbonnier" => LossTerm::Charbonnier,
            "perceptual" => LossTerm::Perceptual,
            _ => return Err(format!("train.loss: unknown term {name:?} in {expr:?} (expected l2, l1, charbonnier, perceptual)")),
        };
        if !(w > 0.0 && w.is_finite()) {
            return Err(format!("train.loss: weights must be > 0, got {w} in {expr:?}"));
        }
        out.push((w, term));
    }
    Ok(out)
}

/// The perceptual loss's VGG16 weights: torchvision's `vgg16().features` as safetensors
/// (`tools/export_vgg16.py` writes it and prints its SHA-256).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerceptualConfig {
    pub weights: String,
    pub sha256: String,
    /// Indices into vgg16().features whose outputs are compared (default relu1_2, relu2_2, relu3_3).
    #[serde(default = "default_taps")]
    pub taps: Vec<usize>,
}

fn default_taps() -> Vec<usize> {
    vec![3, 8, 15]
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub optimizer: OptKind,
    pub lr: f64,
    pub weight_decay: f32,
    pub betas: [f32; 2],
    pub eps: f32,
    /// SGD momentum.
    pub momentum: f32,
    /// Global gradient-norm clip; null = off.
    pub grad_clip: Option<f32>,
    pub lr_schedule: ScheduleKind,
    pub warmup_epochs: f64,
    /// `step` schedule: multiply the lr by `gamma` every `step_epochs` epochs.
    pub step_epochs: usize,
    pub gamma: f64,
    /// `l2`, `l1`, `charbonnier`, `perceptual`, or a weighted sum like `l2 + 0.1*perceptual`.
    pub loss: String,
    pub perceptual: Option<PerceptualConfig>,
    pub ema_decay: f32,
    /// Mixed precision: the convolutions' GEMM operands (activations, weights, output
    /// gradients) in f16 with f32 accumulation, everything else in f32 (master weights,
    /// optimiser state, norms, loss), and dynamic loss scaling. Where the adapter lacks
    /// shader-f16: a warning and f32.
    pub amp: bool,
    /// The loss scale amp starts from (a power of two; torch's GradScaler: 65536).
    pub amp_init_scale: f32,
    /// Applied steps in a row after which amp doubles the loss scale (torch's: 2000).
    pub amp_growth_interval: u32,
    pub save_every: usize,
    pub viz_every: usize,
    /// Cap on optimiser steps per epoch (short runs, CI); null = the whole training split.
    pub max_steps_per_epoch: Option<usize>,
    /// Steps between loss readbacks / CSV rows / progress updates.
    pub log_every: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 20,
            batch_size: 128,
            optimizer: OptKind::Adamw,
            lr: 2e-4,
            weight_decay: 1e-4,
            betas: [0.9, 0.999],
            eps: 1e-8,
            momentum: 0.9,
            grad_clip: Some(1.0),
            lr_schedule: ScheduleKind::Cosine,
            warmup_epochs: 1.0,
            step_epochs: 10,
            gamma: 0.1,
            loss: "l2".into(),
            perceptual: None,
            ema_decay: 0.999,
            amp: false,
            amp_init_scale: 65536.0,
            amp_growth_interval: 2000,
            save_every: 5,
            viz_every: 5,
            max_steps_per_epoch: None,
            log_every: 10,
        }
    }
}

// ---- the model section (SPEC section 3) --------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    Conv,
    Unet,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NormType {
    Group,
    Instance,
    Batch,
    None,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActName {
    Relu,
    Leakyrelu,
    Gelu,
    Silu,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UpMode {
    Bilinear,
    Transposed,
}

/// How the output conv (the layer before the sigmoid) starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutInit {
    /// SPEC's rule for every conv: Kaiming-normal, fan_out (with one output channel the weights
    /// have std 1.41 and drive the sigmoid into saturation for many seeds).
    KaimingFanOut,
    /// Kaiming-normal, fan_in.
    KaimingFanIn,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    pub name: Arch,
    pub base_ch: usize,
    pub num_downs: usize,
    pub norm_type: NormType,
    pub activation: ActName,
    pub dropout: f32,
    pub up: UpMode,
    pub in_ch: usize,
    pub out_ch: usize,
    /// Initialisation of the output conv's weight ...
    pub out_init: OutInit,
    /// ... and its bias (0 per SPEC; sigmoid(bias) is the output the model starts from).
    pub out_bias: f32,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            name: Arch::Unet,
            base_ch: 64,
            num_downs: 3,
            norm_type: NormType::Group,
            activation: ActName::Relu,
            dropout: 0.0,
            up: UpMode::Bilinear,
            in_ch: 1,
            out_ch: 1,
            out_init: OutInit::KaimingFanOut,
            out_bias: 0.0,
        }
    }
}

impl ModelConfig {
    /// Field-named validation errors (`model.base_ch must be ...`).
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(m));
        if !(1..=1024).contains(&self.base_ch) {
            return bad(format!("model.base_ch must be in 1..=1024, got {}", self.base_ch));
        }
        if !(1..=4).contains(&self.num_downs) {
            return bad(format!("model.num_downs must be in 1..=4, got {}", self.num_downs));
        }
        if !self.out_bias.is_finite() || self.out_bias.abs() > 20.0 {
            return bad(format!("model.out_bias must be finite and within [-20, 20], got {}", self.out_bias));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return bad(format!("model.dropout must be in [0, 1), got {}", self.dropout));
        }
        if !(1..=64).contains(&self.in_ch) || !(1..=64).contains(&self.out_ch) {
            return bad(format!("model.in_ch and model.out_ch must be in 1..=64, got {} and {}", self.in_ch, self.out_ch));
        }
        if self.name == Arch::Unet && self.up == UpMode::Bilinear && !self.base_ch.is_multiple_of(2) {
            return bad(format!("model.base_ch must be even for a bilinear unet (channels are halved), got {}", self.base_ch));
        }
        if self.norm_type == NormType::Group {
            // GroupNorm(min(32, c), c) needs 32 | c for every c >= 32 the model makes
            // (base * 2^i, and their halves in the bilinear unet's up path).
            for i in 0..=self.num_downs {
                for c in [self.base_ch << i, (self.base_ch << i) / 2] {
                    if c >= 32 && c % 32 != 0 {
                        return bad(format!(
                            "model.base_ch {} with norm_type group makes a layer of {c} channels, which min(32, {c}) = 32 groups do not divide; use a power of two or a multiple of 32",
                            self.base_ch
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// "unet base 64, 3 downs, group norm, relu, bilinear up": the model in the config's words.
    /// The fields in which two models differ ("model.base_ch: 8 vs 4"), leaving out the ones
    /// that only set the initial weights (`out_init`, `out_bias`): trained weights fit either.
    pub fn differences(&self, other: &ModelConfig) -> Vec<String> {
        const INIT_ONLY: [&str; 2] = ["out_init", "out_bias"];
        let (ya, yb) = (serde_yaml::to_value(self).unwrap_or_default(), serde_yaml::to_value(other).unwrap_or_default());
        let (Some(ma), Some(mb)) = (ya.as_mapping(), yb.as_mapping()) else { return vec!["(unreadable)".into()] };
        let s = |v: &serde_yaml::Value| serde_yaml::to_string(v).unwrap_or_default().trim().to_string();
        ma.iter()
            .filter(|(k, _)| !INIT_ONLY.contains(&s(k).as_str()))
            .filter_map(|(k, va)| {
                let vb = mb.get(k)?;
                (va != vb).then(|| format!("model.{}: {} vs {}", s(k), s(va), s(vb)))
            })
            .collect()
    }

    pub fn describe(&self) -> String {
        let mut s = format!(
            "{} base {}, {} downs, {} norm, {}",
            word(&self.name),
            self.base_ch,
            self.num_downs,
            word(&self.norm_type),
            word(&self.activation)
        );
        if self.name == Arch::Unet {
            s += &format!(", {} up", word(&self.up));
        }
        if self.dropout > 0.0 {
            s += &format!(", dropout {}", self.dropout);
        }
        if self.in_ch != 1 || self.out_ch != 1 {
            s += &format!(", {} -> {} channels", self.in_ch, self.out_ch);
        }
        s
    }
}

/// The word a config uses for a unit enum value (what serde writes).
fn word<T: Serialize>(v: &T) -> String {
    serde_yaml::to_string(v).map(|s| s.trim().to_string()).unwrap_or_default()
}

/// LPIPS weights: the `lpips` package's state_dict as safetensors (`tools/export_lpips.py`
/// writes it and prints these lines).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LpipsConfig {
    pub net: LpipsNet,
    pub weights: String,
    pub sha256: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LpipsNet {
    Alex,
    Vgg,
}

/// `dae eval`, `dae report` and the analyses.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalConfig {
    /// Images per forward pass (`--batch` overrides).
    pub batch_size: usize,
    /// Evaluate only the first this-many test images; null = the whole test split.
    pub test_limit: Option<usize>,
    /// LPIPS weights; null = LPIPS reported as unavailable.
    pub lpips: Option<LpipsConfig>,
    /// Diversity collapse: this many test images, each with `diversity_draws` noise draws at
    /// `diversity_sigma`.
    pub diversity_images: usize,
    pub diversity_draws: usize,
    pub diversity_sigma: f32,
    /// Mode averaging: this many test images at `mode_sigma`, each output's nearest training
    /// image (a search over the whole training split).
    pub mode_images: usize,
    pub mode_sigma: f32,
    /// Best and worst cases shown (by PSNR).
    pub cases: usize,
    /// Out-of-distribution section of `dae report`: the folder of the other dataset of the pair
    /// (Fashion-MNIST for an MNIST model and the other way round; `--ood-data-dir` overrides);
    /// null = the folder of that name beside the data folder (`./data/fashion-mnist` beside
    /// `./data/mnist`). Fetched and md5-checked like the training data when `data.download`.
    pub ood_root: Option<String>,
    /// Test images of the other dataset scored at every test level.
    pub ood_images: usize,
    /// The noise-model mismatch table of `dae report` (the levels of
    /// tools/eval_mismatch_noise.sh): this many test images per noise model.
    pub mismatch_images: usize,
    /// Generation from noise (`dae compare generation`, and a section of `dae report`).
    pub generation: GenerationConfig,
}

/// Generation from noise with the denoiser: annealed Langevin dynamics with the Tweedie score
/// and plainly iterated denoising, over a geometric schedule of `levels` sigmas spanning the
/// training sigmas, `steps` updates per level, `chains` chains per method.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GenerationConfig {
    pub chains: usize,
    pub levels: usize,
    pub steps: usize,
    /// Langevin's step a in x <- x + a (D(x) - x) + sqrt(2 a) sigma z (the step in score units
    /// is a sigma^2, NCSN's schedule), in (0, 1].
    pub step_size: f32,
    /// A sample is "digit-like" when each of its features lies between these quantiles (q and
    /// 1 - q) of the same feature over the real test images of the mode-averaging analysis
    /// (`eval.mode_images`), in (0, 0.25).
    pub window_quantile: f64,
}

impl Default for GenerationConfig {
    fn default() -> Self {
        GenerationConfig { chains: 32, levels: 8, steps: 4, step_size: 0.2, window_quantile: 0.025 }
    }
}

impl Default for EvalConfig {
    fn default() -> Self {
        EvalConfig {
            batch_size: 250,
            test_limit: None,
            lpips: None,
            diversity_images: 8,
            diversity_draws: 16,
            diversity_sigma: 0.5,
            mode_images: 500,
            mode_sigma: 1.0,
            cases: 8,
            ood_root: None,
            ood_images: 500,
            mismatch_images: 250,
            generation: GenerationConfig::default(),
        }
    }
}

/// For a field that takes one of a few names (an enum) given a mapping or a list, serde says
/// "expected a Value::Tagged enum": ask the field with a name it cannot know, and return the
/// names it expects instead.
fn names_hint(v: &serde_yaml::Value, path: &str) -> Option<String> {
    let given = path.split('.').try_fold(v, |cur, k| cur.get(k))?;
    if !(given.is_mapping() || given.is_sequence()) {
        return None;
    }
    let mut probe = v.clone();
    let slot = path.split('.').try_fold(&mut probe, |cur, k| cur.get_mut(k))?;
    *slot = serde_yaml::Value::String("\u{1}".into());
    let e = serde_path_to_error::deserialize::<_, Config>(probe).err()?.into_inner().to_string();
    // serde's "unknown variant `?`, expected `a` or `b`" (or "expected one of `a`, `b`, `c`").
    let at = e.find("unknown variant").and_then(|u| e[u..].find("expected").map(|x| u + x))?;
    Some(format!("got a {}, {}", if given.is_mapping() { "mapping" } else { "list" }, &e[at..]))
}

fn yaml_err(file: &str, e: impl std::fmt::Display) -> Error {
    Error::Config(format!("config {file}: {e}"))
}

/// The config's sections: a null or empty one is an error (it would silently mean every default,
/// e.g. the full model).
const SECTIONS: [&str; 5] = ["data", "noise", "model", "train", "eval"];

fn empty_section(v: &serde_yaml::Value) -> bool {
    v.is_null() || v.as_mapping().is_some_and(|m| m.is_empty())
}

/// `new` laid over `old`: mappings merge key by key (so `--set 'train={lr: 1e-3}'` changes
/// train.lr and keeps the rest of the section); anything else replaces.
fn merge(old: &mut serde_yaml::Value, new: serde_yaml::Value) {
    match (old.as_mapping_mut(), new) {
        (Some(o), serde_yaml::Value::Mapping(n)) => {
            for (k, v) in n {
                match o.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        o.insert(k, v);
                    }
                }
            }
        }
        (_, n) => *old = n,
    }
}

/// Set `path` (dotted, e.g. `train.lr`) in `root` to `value` parsed as YAML.
fn set_path(root: &mut serde_yaml::Value, path: &str, value: &str) -> Result<()> {
    let v: serde_yaml::Value = serde_yaml::from_str(value).map_err(|e| Error::Config(format!("--set {path}={value}: {e}")))?;
    if SECTIONS.contains(&path) && empty_section(&v) {
        return Err(Error::Config(format!(
            "--set {path}={value}: an empty section would mean every default of `{path}`; set its fields (--set {path}.FIELD=VALUE) instead"
        )));
    }
    let mut cur = root;
    let parts: Vec<&str> = path.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        if part.is_empty() {
            return Err(Error::Config(format!("--set {path}: empty key segment")));
        }
        if cur.is_null() {
            *cur = serde_yaml::Value::Mapping(Default::default());
        }
        let map = cur.as_mapping_mut().ok_or_else(|| Error::Config(format!("--set {path}: {} is not a section", parts[..i].join("."))))?;
        let key = serde_yaml::Value::String(part.to_string());
        if i + 1 == parts.len() {
            match map.get_mut(&key) {
                Some(old) => merge(old, v),
                None => {
                    map.insert(key, v);
                }
            }
            return Ok(());
        }
        cur = map.entry(key).or_insert(serde_yaml::Value::Null);
    }
    Ok(())
}

/// The most distinct training noise levels (the noise kernel's uniform array holds 16).
pub const MAX_LEVELS: usize = 16;

/// The optimiser (`train.optimizer`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptKind {
    Adamw,
    Adam,
    Sgd,
}

/// The learning-rate schedule (`train.lr_schedule`), stepped per optimiser step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScheduleKind {
    Cosine,
    Step,
    None,
}

/// The largest noise sigma a field accepts: 100 times the data range is already pure noise;
/// more is a typo, not an experiment.
pub const MAX_SIGMA: f32 = 100.0;
/// The largest Poisson peak (photons at full intensity) a field accepts.
pub const MAX_PEAK: f32 = 1e6;

/// `[0.1, 0.3]`: a list as the config writes it (not Rust's debug form).
pub fn list<T: std::fmt::Display>(v: &[T]) -> String {
    format!("[{}]", v.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(", "))
}

/// An optional value as the config writes it (`null` for none).
pub fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or("null".into(), |x| x.to_string())
}

impl Config {
    /// Parse YAML text (`file` names it in errors), apply `sets` (`key=value`), validate.
    pub fn from_yaml(text: &str, file: &str, sets: &[String]) -> Result<Config> {
        let mut v: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| yaml_err(file, e))?;
        if v.is_null() {
            v = serde_yaml::Value::Mapping(Default::default());
        }
        if !v.is_mapping() {
            let kind = match &v {
                serde_yaml::Value::Sequence(_) => "a list",
                serde_yaml::Value::String(_) => "a string",
                serde_yaml::Value::Number(_) => "a number",
                serde_yaml::Value::Bool(_) => "a boolean",
                _ => "not a mapping",
            };
            return Err(yaml_err(
                file,
                format!("the file is {kind}; a config is a mapping of sections (seed, out_dir, data, noise, model, train, eval)"),
            ));
        }
        if let Some(m) = v.as_mapping() {
            for sec in SECTIONS {
                if m.get(sec).is_some_and(empty_section) {
                    return Err(yaml_err(
                        file,
                        format!("section `{sec}` is empty (null or {{}}); remove the line to take every default of `{sec}`, or give its fields"),
                    ));
                }
            }
        }
        for s in sets {
            let (k, val) = s.split_once('=').ok_or_else(|| Error::Config(format!("--set expects key=value, got {s:?}")))?;
            set_path(&mut v, k.trim(), val.trim())?;
        }
        let what = if sets.is_empty() { file.to_string() } else { format!("{file} (with --set {})", sets.join(", ")) };
        // serde_yaml's own errors carry no field path once the text is a Value (the --set
        // overrides need that step): serde_path_to_error puts `train.lr` back in the message.
        let cfg: Config = serde_path_to_error::deserialize(v.clone()).map_err(|e| {
            let p = e.path().to_string();
            let inner = e.into_inner().to_string();
            match p.as_str() {
                "." => yaml_err(&what, inner),
                _ => yaml_err(&what, format!("{p}: {}", names_hint(&v, &p).unwrap_or(inner))),
            }
        })?;
        cfg.validate().map_err(|e| Error::Config(format!("config {what}: {e}")))?;
        Ok(cfg)
    }

    pub fn load(path: &Path, sets: &[String]) -> Result<Config> {
        if path.is_dir() {
            return Err(Error::Config(format!("--config {} is a folder, not a config file", path.display())));
        }
        let text = std::fs::read_to_string(path).map_err(|e| Error::Config(format!("cannot read config {}: {e}", path.display())))?;
        // A byte-order mark (some editors on Windows write one) is not YAML.
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        if text.trim().is_empty() {
            return Err(Error::Config(format!(
                "config {} is empty; a config is a mapping of sections (see configs/quick.yaml for a small model, configs/mnist.yaml for the full one)",
                path.display()
            )));
        }
        Config::from_yaml(text, &path.display().to_string(), sets)
    }

    pub fn to_yaml(&self) -> String {
        serde_yaml::to_string(self).unwrap_or_default()
    }

    pub fn validate(&self) -> Result<()> {
        let t = &self.train;
        let n = &self.noise;
        let mut errs = Vec::new();
        let mut need = |ok: bool, msg: String| {
            if !ok {
                errs.push(msg);
            }
        };
        need(t.lr > 0.0 && t.lr.is_finite(), format!("train.lr must be > 0, got {}", t.lr));
        need((1..=1_000_000).contains(&t.epochs), format!("train.epochs must be in 1..=1000000, got {}", t.epochs));
        need(
            t.warmup_epochs.is_nan() || t.warmup_epochs <= t.epochs as f64,
            format!(
                "train.warmup_epochs {} is longer than train.epochs {}: the learning rate would never reach train.lr ({})",
                t.warmup_epochs, t.epochs, t.lr
            ),
        );
        need((1..=65_536).contains(&t.batch_size), format!("train.batch_size must be in 1..=65536, got {}", t.batch_size));
        need(t.weight_decay >= 0.0 && t.weight_decay.is_finite(), format!("train.weight_decay must be >= 0 and finite, got {}", t.weight_decay));
        need(t.betas.iter().all(|b| (0.0..1.0).contains(b)), format!("train.betas must be in [0, 1), got {}", list(&t.betas)));
        need(t.eps > 0.0 && t.eps.is_finite(), format!("train.eps must be > 0 and finite, got {}", t.eps));
        need((0.0..1.0).contains(&t.momentum), format!("train.momentum must be in [0, 1), got {}", t.momentum));
        need(
            t.amp_init_scale >= 1.0 && t.amp_init_scale <= 4294967296.0 && (t.amp_init_scale.log2().fract() == 0.0),
            format!("train.amp_init_scale must be a power of two from 1 to 2^32, got {}", t.amp_init_scale),
        );
        need(t.amp_growth_interval > 0, "train.amp_growth_interval must be at least 1".to_string());
        need(
            t.grad_clip.is_none_or(|c| c > 0.0 && c.is_finite()),
            format!("train.grad_clip must be > 0 and finite, or null, got {}", opt(t.grad_clip)),
        );
        need(t.warmup_epochs >= 0.0 && t.warmup_epochs.is_finite(), format!("train.warmup_epochs must be >= 0 and finite, got {}", t.warmup_epochs));
        need(t.gamma > 0.0 && t.gamma.is_finite(), format!("train.gamma must be > 0 and finite, got {}", t.gamma));
        need(t.step_epochs > 0, format!("train.step_epochs must be > 0, got {}", t.step_epochs));
        need((0.0..1.0).contains(&t.ema_decay), format!("train.ema_decay must be in [0, 1), got {}", t.ema_decay));
        need(t.save_every > 0, format!("train.save_every must be > 0, got {}", t.save_every));
        match parse_loss(&t.loss) {
            Err(e) => need(false, e),
            Ok(terms) => {
                need(
                    !terms.iter().any(|(_, k)| *k == LossTerm::Perceptual) || t.perceptual.is_some(),
                    "train.loss uses perceptual but train.perceptual (weights, sha256) is not set; tools/export_vgg16.py writes the weights and prints the hash".into(),
                );
                need(
                    terms.iter().any(|(_, k)| *k != LossTerm::Perceptual),
                    "train.loss needs a pixel term (l2, l1 or charbonnier) besides perceptual".into(),
                );
            }
        }
        need(t.viz_every > 0, format!("train.viz_every must be > 0, got {}", t.viz_every));
        need(t.log_every > 0, format!("train.log_every must be > 0, got {}", t.log_every));
        need(t.max_steps_per_epoch.is_none_or(|m| m > 0), "train.max_steps_per_epoch must be > 0 or null".into());
        let sig = n.sigma_list();
        need(!sig.is_empty() && sig.len() <= MAX_LEVELS, format!("noise.train_sigmas must hold 1 to 16 values, got {}", sig.len()));
        need(sig.iter().all(|s| (0.0..=MAX_SIGMA).contains(s)), format!("noise.train_sigmas must be in [0, {MAX_SIGMA}], got {}", list(&sig)));
        need(
            n.train_sigma_range.is_none_or(|[a, b]| 0.0 <= a && a <= b && b <= MAX_SIGMA),
            format!(
                "noise.train_sigma_range must be [min, max] with 0 <= min <= max <= {MAX_SIGMA}, got {}",
                n.train_sigma_range.map_or("null".into(), |r| list(&r))
            ),
        );
        need(
            !n.test_sigmas.is_empty() && n.test_sigmas.len() <= 64 && n.test_sigmas.iter().all(|s| (0.0..=MAX_SIGMA).contains(s)),
            format!("noise.test_sigmas must be a list of 1 to 64 values in [0, {MAX_SIGMA}], got {}", list(&n.test_sigmas)),
        );
        need(
            n.clip_range.is_none_or(|[a, b]| a < b && a.is_finite() && b.is_finite()),
            format!("noise.clip_range must be [lo, hi] with lo < hi, both finite, or null, got {}", n.clip_range.map_or("null".into(), |r| list(&r))),
        );
        need((0.0..=1.0).contains(&n.amount), format!("noise.amount must be in [0, 1], got {}", n.amount));
        need(n.peak > 0.0 && n.peak <= MAX_PEAK, format!("noise.peak must be in (0, {MAX_PEAK}], got {}", n.peak));
        need(
            n.schedule.as_ref().is_none_or(|s| (1..=MAX_LEVELS).contains(&s.count) && 0.0 <= s.min && s.min <= s.max && s.max <= MAX_SIGMA),
            format!("noise.schedule needs count in 1..=16 and 0 <= min <= max <= {MAX_SIGMA}"),
        );
        need(self.data.val_size > 0, "data.val_size must be > 0".into());
        let e = &self.eval;
        need((1..=65_536).contains(&e.batch_size), format!("eval.batch_size must be in 1..=65536, got {}", e.batch_size));
        need((1..=64).contains(&e.diversity_images), format!("eval.diversity_images must be in 1..=64, got {}", e.diversity_images));
        need((2..=64).contains(&e.diversity_draws), format!("eval.diversity_draws must be in 2..=64, got {}", e.diversity_draws));
        need(
            e.diversity_sigma > 0.0 && e.diversity_sigma <= MAX_SIGMA,
            format!("eval.diversity_sigma must be in (0, {MAX_SIGMA}], got {}", e.diversity_sigma),
        );
        need(e.test_limit.is_none_or(|l| l > 0), format!("eval.test_limit must be > 0 or null, got {}", opt(e.test_limit)));
        need(e.mode_images > 0, format!("eval.mode_images must be > 0, got {}", e.mode_images));
        need((0.0..=MAX_SIGMA).contains(&e.mode_sigma), format!("eval.mode_sigma must be in [0, {MAX_SIGMA}], got {}", e.mode_sigma));
        need((1..=64).contains(&e.cases), format!("eval.cases must be in 1..=64, got {}", e.cases));
        need(e.ood_images > 0, format!("eval.ood_images must be > 0, got {}", e.ood_images));
        need(e.mismatch_images > 0, format!("eval.mismatch_images must be > 0, got {}", e.mismatch_images));
        need(e.ood_root.as_ref().is_none_or(|r| !r.trim().is_empty()), "eval.ood_root must name a folder or be null".into());
        let g = &e.generation;
        need((2..=256).contains(&g.chains), format!("eval.generation.chains must be in 2..=256, got {}", g.chains));
        need((1..=64).contains(&g.levels), format!("eval.generation.levels must be in 1..=64, got {}", g.levels));
        need((1..=100).contains(&g.steps), format!("eval.generation.steps must be in 1..=100, got {}", g.steps));
        need(g.step_size > 0.0 && g.step_size <= 1.0, format!("eval.generation.step_size must be in (0, 1], got {}", g.step_size));
        need(
            g.window_quantile > 0.0 && g.window_quantile < 0.25,
            format!("eval.generation.window_quantile must be in (0, 0.25), got {}", g.window_quantile),
        );
        if let Some(l) = &e.lpips {
            need(
                l.sha256.trim().len() == 64 && l.sha256.trim().chars().all(|c| c.is_ascii_hexdigit()),
                format!("eval.lpips.sha256 must be 64 hex digits, got {:?}", l.sha256),
            );
        }
        need(self.data.train_limit.is_none_or(|l| l > 0), "data.train_limit must be > 0 or null".into());
        if let Err(e) = self.model.validate() {
            errs.push(e.to_string());
        }
        if errs.is_empty() { Ok(()) } else { Err(Error::Config(errs.join("; "))) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let c = Config::from_yaml("train:\n  lr: 0.001\n", "t.yaml", &["model.base_ch=16".into(), "noise.clip_range=null".into()]).unwrap();
        assert_eq!(c.train.lr, 0.001);
        assert_eq!(c.model.base_ch, 16);
        assert_eq!(c.noise.clip_range, None);
        assert_eq!(c.train.batch_size, 128);
    }

    #[test]
    fn unknown_key_names_key_and_file() {
        let e = Config::from_yaml("train:\n  lrr: 0.1\n", "cfg/x.yaml", &[]).unwrap_err().to_string();
        assert!(e.contains("cfg/x.yaml") && e.contains("lrr"), "{e}");
        let e = Config::from_yaml("", "x.yaml", &["train.nope=1".into()]).unwrap_err().to_string();
        assert!(e.contains("nope") && e.contains("--set"), "{e}");
    }

    #[test]
    fn bad_values_name_the_field() {
        let e = Config::from_yaml("train:\n  lr: -1\n", "x.yaml", &[]).unwrap_err().to_string();
        assert!(e.contains("train.lr must be > 0, got -1"), "{e}");
        let e = Config::from_yaml("model:\n  num_downs: 7\n", "x.yaml", &[]).unwrap_err().to_string();
        assert!(e.contains("model.num_downs"), "{e}");
        let e = Config::from_yaml("model:\n  base_ch: 48\n", "x.yaml", &[]).unwrap_err().to_string();
        assert!(e.contains("model.base_ch 48") && e.contains("groups"), "{e}");
        let e = Config::from_yaml("noise:\n  type: pink\n", "x.yaml", &[]).unwrap_err().to_string();
        assert!(e.contains("pink") && e.contains("x.yaml") && e.contains("noise.type"), "{e}");
        let e = Config::from_yaml("train:\n  lr: abc\n", "x.yaml", &[]).unwrap_err().to_string();
        assert!(e.contains("train.lr") && e.contains("abc"), "{e}");
        let e = Config::from_yaml("", "x.yaml", &["train.batch_size=-3".into()]).unwrap_err().to_string();
        assert!(e.contains("train.batch_size") && e.contains("--set"), "{e}");
        let e = Config::from_yaml("", "x.yaml", &["model.name={a: 1}".into()]).unwrap_err().to_string();
        assert!(e.contains("model.name") && e.contains("got a mapping") && e.contains("unet") && !e.contains("Tagged"), "{e}");
        let e = Config::from_yaml("train:\n  epochs: 1\n  warmup_epochs: 50\n", "x.yaml", &[]).unwrap_err().to_string();
        assert!(e.contains("train.warmup_epochs 50"), "{e}");
    }

    /// A null or empty section is an error naming it (not the whole default model); a
    /// `--set` mapping merges into its section; an empty file or one with only a byte-order
    /// mark is an error, a byte-order mark before YAML is not.
    #[test]
    fn empty_sections_and_files_are_errors_and_set_mappings_merge() {
        for (text, sets) in
            [("model: ~\n", vec![]), ("model: {}\n", vec![]), ("", vec!["model=null".to_string()]), ("", vec!["model={}".to_string()])]
        {
            let e = Config::from_yaml(text, "x.yaml", &sets).unwrap_err().to_string();
            assert!(e.contains("model") && e.contains("empty"), "{text:?} {sets:?}: {e}");
        }
        let c = Config::from_yaml("train:\n  batch_size: 8\n", "x.yaml", &["train={lr: 0.0005}".into()]).unwrap();
        assert_eq!((c.train.lr, c.train.batch_size), (0.0005, 8));
        let dir = std::env::temp_dir().join(format!("dae-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (name, text, ok) in
            [("empty.yaml", "", false), ("blank.yaml", " \n\n", false), ("bom-only.yaml", "\u{feff}", false), ("bom.yaml", "\u{feff}seed: 3\n", true)]
        {
            let p = dir.join(name);
            std::fs::write(&p, text).unwrap();
            let r = Config::load(&p, &[]);
            assert_eq!(r.is_ok(), ok, "{name}: {:?}", r.err().map(|e| e.to_string()));
            if let Err(e) = r {
                assert!(e.to_string().contains("is empty"), "{name}: {e}");
            }
        }
        std::fs::remove_dir_all(&dir).ok();
    }

    /// Thousands of damaged configs (bytes of configs/*.yaml mutated, then read as text the way
    /// `Config::load` does) and random --set overrides: every one parses or is an error, never a
    /// panic.
    #[test]
    fn fuzzed_yaml_never_panics() {
        let mut rng = crate::util::rng::Rng::new(0xF023);
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
        let bases: Vec<Vec<u8>> = std::fs::read_dir(&root).unwrap().filter_map(|e| std::fs::read(e.ok()?.path()).ok()).collect();
        assert!(!bases.is_empty());
        let keys = ["train.lr", "train.batch_size", "noise.test_sigmas", "model", "seed", "", ".", "a.b.c", "train", "noise.clip_range"];
        for i in 0..3000 {
            let bytes = crate::util::rng::mutate(&mut rng, &bases[i % bases.len()]);
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let k = keys[i % keys.len()];
            let v = String::from_utf8_lossy(&crate::util::rng::mutate(&mut rng, b"[0.1, .inf, -3, ~, {a: 1}]")).into_owned();
            let sets = if i % 2 == 0 { vec![format!("{k}={v}")] } else { Vec::new() };
            let r = std::panic::catch_unwind(|| {
                let _ = Config::from_yaml(&text, "fuzz.yaml", &sets);
            });
            assert!(r.is_ok(), "input {i} panicked: {text:?} with {sets:?}");
        }
    }

    #[test]
    fn loss_expressions() {
        assert_eq!(parse_loss("l2").unwrap(), vec![(1.0, LossTerm::L2)]);
        assert_eq!(parse_loss(" l1 + 0.1*perceptual ").unwrap(), vec![(1.0, LossTerm::L1), (0.1, LossTerm::Perceptual)]);
        assert!(parse_loss("l3").unwrap_err().contains("l3"));
        let e = Config::from_yaml("train:\n  loss: l2 + 0.1*perceptual\n", "x.yaml", &[]).unwrap_err().to_string();
        assert!(e.contains("train.perceptual"), "{e}");
    }

    #[test]
    fn schedule_and_curriculum() {
        let c = Config::from_yaml("noise:\n  schedule: {kind: linear, min: 0.1, max: 0.5, count: 5}\n  curriculum: {epochs: 4}\n", "x", &[]).unwrap();
        let s = c.noise.sigma_list();
        assert_eq!(s.len(), 5);
        assert!((s[2] - 0.3).abs() < 1e-6);
        assert_eq!(c.noise.level_scale(0), 0.5);
        assert_eq!(c.noise.level_scale(2), 0.75);
        assert_eq!(c.noise.level_scale(9), 1.0);
        let c = Config::from_yaml("noise:\n  schedule: {kind: cosine, min: 0.1, max: 0.5, count: 3}\n", "x", &[]).unwrap();
        let s = c.noise.sigma_list();
        assert!((s[0] - 0.1).abs() < 1e-6 && (s[1] - 0.3).abs() < 1e-6 && (s[2] - 0.5).abs() < 1e-6, "{s:?}");
    }
}
