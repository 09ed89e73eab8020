//! `reports/demo.html`: the live denoiser. One self-contained page (the engine built for the
//! browser, the checkpoint's weights and the first test images, inline) where a person picks or
//! draws a digit, chooses the noise and its level, and sees the model denoise it with the same
//! WGSL kernels on their browser's WebGPU adapter.

use std::path::{Path, PathBuf};

use base64::Engine;

use crate::config::{Config, NoiseKind};
use crate::error::{Error, Result};
use crate::eval::{Session, noise_name};
use crate::feed::{IMAGE_HW, IMAGE_LEN};

/// Test images the page carries.
const IMAGES: usize = 32;

/// The page's data: the test images (base64 of their u8 pixels), each noise model's typical
/// levels (the config's where it trained on that noise) and the captions.
pub fn data(cfg: &Config, s: &Session) -> serde_json::Value {
    let n = IMAGES.min(s.n);
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let images: Vec<String> = (0..n).map(|i| b64(&s.pixels[i * IMAGE_LEN..(i + 1) * IMAGE_LEN])).collect();
    let nc = &s.gm.config.noise;
    let sigmas = |k: NoiseKind| if nc.kind == k { nc.test_sigmas.clone() } else { vec![0.1, 0.3, 0.5, 0.7] };
    let trained = match nc.kind {
        NoiseKind::Gaussian | NoiseKind::Speckle => match nc.train_sigma_range {
            Some([lo, hi]) => format!("{}, sigma {lo} to {hi}", noise_name(nc.kind)),
            None => format!("{}, sigma {}", noise_name(nc.kind), crate::config::list(&nc.sigma_list())),
        },
        NoiseKind::SaltPepper => format!("salt_pepper, {} of the pixels", nc.amount),
        NoiseKind::Poisson => format!("poisson, peak {}", nc.peak),
    };
    serde_json::json!({
        "h": IMAGE_HW, "w": IMAGE_HW, "c": 1,
        "images": images,
        "noise": noise_name(s.kind),
        "levels": {
            "gaussian": sigmas(NoiseKind::Gaussian),
            "speckle": sigmas(NoiseKind::Speckle),
            "salt_pepper": [if nc.kind == NoiseKind::SaltPepper { nc.amount } else { 0.1 }],
            "poisson": [if nc.kind == NoiseKind::Poisson { nc.peak } else { 30.0 }],
        },
        "trained": trained,
        "model": s.gm.config.model.describe(),
        "checkpoint": format!("{} ({} weights)", s.path.display(), s.weights),
        "adapter_note": "",
        "dataset": crate::feed::spec(cfg.data.dataset).name,
    })
}

/// Write `<out_dir>/reports/demo.html` for the session's checkpoint.
pub fn write(cfg: &Config, s: &Session) -> Result<PathBuf> {
    let model = std::fs::read(&s.path).map_err(|e| Error::Msg(format!("cannot read {}: {e}", s.path.display())))?;
    let page = crate::bundle::demo_page(&model, &data(cfg, s))?;
    let p = Path::new(&cfg.out_dir).join("reports").join("demo.html");
    crate::checkpoint::write_file(&p, page.as_bytes())?;
    Ok(p)
}
