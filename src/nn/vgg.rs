//! The perceptual loss: VGG16 feature maps (torchvision's `vgg16().features`, weights supplied by
//! the user as safetensors and checked against their SHA-256; never downloaded) of the
//! reconstruction against those of the clean image, mean of the per-layer MSEs.
//!
//! Grey images become VGG's normalised RGB through one fixed 1x1 conv (1 -> 3 channels, weight
//! 1/std, bias -mean/std): exact, since a 1x1 conv has no padding to disagree about.

use std::path::Path;

use sha2::Digest;

use crate::autograd::Graph;
use crate::config::PerceptualConfig;
use crate::error::{Error, Result};
use crate::gpu::Ctx;
use crate::tensor::Tensor;
use crate::util::files;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layer {
    Conv(usize, usize),
    Relu,
    Pool,
}

/// torchvision's vgg16().features, index by index.
fn vgg16() -> Vec<Layer> {
    use Layer::*;
    let mut v = Vec::new();
    let mut cin = 3;
    for (block, &(cout, convs)) in [(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)].iter().enumerate() {
        let _ = block;
        for _ in 0..convs {
            v.push(Conv(cin, cout));
            v.push(Relu);
            cin = cout;
        }
        v.push(Pool);
    }
    v
}

const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const STD: [f32; 3] = [0.229, 0.224, 0.225];

pub fn sha256_file(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| Error::Msg(format!("cannot read {}: {e}", path.display())))?;
    Ok(sha2::Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect())
}

pub struct Vgg {
    layers: Vec<Layer>,
    /// (weight, bias) per conv index of `layers`.
    convs: Vec<Option<(Tensor, Tensor)>>,
    taps: Vec<usize>,
    to_rgb: (Tensor, Tensor),
}

impl Vgg {
    /// Load the conv weights up to the deepest tap; every one must be present with its shape.
    pub fn load(ctx: &Ctx, cfg: &PerceptualConfig) -> Result<Vgg> {
        let path = Path::new(&cfg.weights);
        let got = sha256_file(path)?;
        if !got.eq_ignore_ascii_case(cfg.sha256.trim()) {
            return Err(Error::Msg(format!(
                "train.perceptual.sha256 does not match {}: expected {}, the file has {got}",
                path.display(),
                cfg.sha256
            )));
        }
        let all = vgg16();
        let deepest = *cfg.taps.iter().max().ok_or_else(|| Error::Msg("train.perceptual.taps must not be empty".into()))?;
        if deepest >= all.len() {
            return Err(Error::Msg(format!("train.perceptual.taps: VGG16 features have indices 0..{}, got {deepest}", all.len() - 1)));
        }
        let layers = all[..=deepest].to_vec();
        let file = files::read(path)?;
        let mut convs = Vec::new();
        for (i, l) in layers.iter().enumerate() {
            let Layer::Conv(cin, cout) = *l else {
                convs.push(None);
                continue;
            };
            let get = |suffix: &str, shape: Vec<usize>| -> Result<Tensor> {
                let name = format!("features.{i}.{suffix}");
                match file.tensors.get(&name) {
                    Some((safetensors::Dtype::F32, s, d)) if *s == shape => {
                        Tensor::from_slice(ctx, &shape, &bytemuck::pod_collect_to_vec::<u8, f32>(d))
                    }
                    Some((dt, s, _)) => Err(Error::Msg(format!("{}: {name} is {dt:?}{s:?}, VGG16 needs F32{shape:?}", path.display()))),
                    None => Err(Error::Msg(format!(
                        "{}: missing {name} (a partial VGG16 is refused; export it with tools/export_vgg16.py)",
                        path.display()
                    ))),
                }
            };
            convs.push(Some((get("weight", vec![cout, cin, 3, 3])?, get("bias", vec![cout])?)));
        }
        let w: Vec<f32> = STD.iter().map(|s| 1.0 / s).collect();
        let b: Vec<f32> = MEAN.iter().zip(&STD).map(|(m, s)| -m / s).collect();
        let to_rgb = (Tensor::from_slice(ctx, &[3, 1, 1, 1], &w)?, Tensor::from_slice(ctx, &[3], &b)?);
        Ok(Vgg { layers, convs, taps: cfg.taps.clone(), to_rgb })
    }

    /// Feature maps at the taps of grey images `x` [n, 1, h, w] in [0, 1], recorded in `g`
    /// (the VGG weights are constants: only what flows from `x` is differentiated).
    pub fn features(&self, g: &mut Graph, x: &Tensor) -> Result<Vec<Tensor>> {
        let mut h = g.conv2d(x, &self.to_rgb.0, Some(&self.to_rgb.1), (1, 1), (0, 0))?;
        let mut out = Vec::new();
        for (i, l) in self.layers.iter().enumerate() {
            h = match (l, &self.convs[i]) {
                (Layer::Conv(..), Some((w, b))) => g.conv2d(&h, w, Some(b), (1, 1), (1, 1))?,
                (Layer::Relu, _) => g.relu(&h)?,
                (Layer::Pool, _) => g.max_pool2d(&h, (2, 2), (2, 2))?,
                (Layer::Conv(..), None) => return Err(Error::Msg(format!("vgg: conv {i} has no weights"))),
            };
            if self.taps.contains(&i) {
                out.push(h.clone());
            }
        }
        Ok(out)
    }

    /// Mean over the taps of MSE(features(recon), features(clean)); the clean side is a
    /// constant (nothing of it is recorded: no input of its ops wants a gradient).
    pub fn loss(&self, g: &mut Graph, recon: &Tensor, clean: &Tensor) -> Result<Tensor> {
        let fr = self.features(g, recon)?;
        let fc = self.features(g, clean)?;
        let mut total: Option<Tensor> = None;
        for (a, b) in fr.iter().zip(&fc) {
            let l = g.mse_loss(a, b)?;
            total = Some(match total {
                None => l,
                Some(t) => g.add(&t, &l)?,
            });
        }
        let t = total.ok_or_else(|| Error::Msg("vgg: no taps".into()))?;
        g.scale(&t, 1.0 / fr.len() as f32)
    }
}
