//! What the wasm module exports to JavaScript (wasm-bindgen): the kernel checks, and the
//! denoiser of the report's demo page. Every call opens or uses the browser's WebGPU adapter;
//! errors reach JavaScript as `Error`s with dae's message.

use std::path::Path;
use std::rc::Rc;

use wasm_bindgen::prelude::*;

use crate::autograd::Graph;
use crate::checkpoint::{self, GpuModel};
use crate::config::NoiseKind;
use crate::error::{Error, Result};
use crate::feed::{IMAGE_HW, IMAGE_LEN, input_affine, level_params};
use crate::gpu::Ctx;
use crate::nn::model::Fwd;
use crate::ops::data::data_noise;
use crate::ops::kernels::Kernels;
use crate::ops::metrics::{STAT_PSNR, Slots, image_metrics};
use crate::tensor::Tensor;

fn js(e: Error) -> JsError {
    JsError::new(&e.to_string())
}

/// "name (backend, driver)" of the context's adapter.
fn adapter_name(ctx: &Ctx) -> String {
    let i = &ctx.gpu().info;
    format!("{} ({:?}{})", i.name, i.backend, if i.driver.is_empty() { String::new() } else { format!(", {}", i.driver) })
}

/// Every kernel check whose family contains `filter` (all when absent) on the browser's
/// adapter: JSON text `{"adapter", "seconds", "rows": [{op, entry, shape, rel_err, tol, pass,
/// mismatches?}]}`, the rows `dae gradcheck --json` prints.
#[wasm_bindgen]
pub async fn run_checks(filter: Option<String>) -> std::result::Result<String, JsError> {
    let ctx = Ctx::browser().await.map_err(js)?;
    let t0 = web_time::Instant::now();
    let rows = crate::check::run(&ctx, filter.as_deref()).await.map_err(js)?;
    let out = serde_json::json!({ "adapter": adapter_name(&ctx), "seconds": t0.elapsed().as_secs_f64(), "rows": rows });
    Ok(out.to_string())
}

/// A checkpoint's model on the browser's adapter, denoising one 28 x 28 image at a time (a call
/// made while another is in flight is refused).
#[wasm_bindgen]
pub struct Demo(Rc<Loaded>);

struct Loaded {
    ctx: Ctx,
    gm: GpuModel,
    /// A denoise is in flight: the staging buffers it reads through are shared, so a second
    /// call must wait for it (the page queues its calls).
    busy: std::cell::Cell<bool>,
}

#[wasm_bindgen]
impl Demo {
    /// Open the adapter and upload the weights of `model` (the bytes of a dae weights file).
    pub async fn create(model: Vec<u8>) -> std::result::Result<Demo, JsError> {
        let ctx = Ctx::browser().await.map_err(js)?;
        let file = checkpoint::model_of(checkpoint::parse(&model, Path::new("the page's model")).map_err(js)?).map_err(js)?;
        let gm = GpuModel::upload(&ctx, &file).map_err(js)?;
        Ok(Demo(Rc::new(Loaded { ctx, gm, busy: std::cell::Cell::new(false) })))
    }

    pub fn adapter(&self) -> String {
        adapter_name(&self.0.ctx)
    }

    /// `clean` (1 x 28 x 28 in [0, 1]) under `noise` ("gaussian", "speckle", "salt_pepper",
    /// "poisson") at `level` (sigma; the fraction of pixels for salt_pepper; the peak for
    /// poisson) drawn from `seed`, and the model's output on it: a promise of `{noisy, denoised,
    /// psnr, ssim}` (the arrays in pixel units, the metrics of denoised against clean).
    pub fn denoise(&self, clean: Vec<f32>, noise: String, level: f32, seed: u32) -> js_sys::Promise {
        let m = self.0.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            if m.busy.replace(true) {
                return Err(js(Error::Msg("one denoise at a time: await the previous call's promise first".into())).into());
            }
            let r = m.denoise(&clean, &noise, level, seed).await;
            m.busy.set(false);
            let (noisy, denoised, psnr, ssim) = r.map_err(|e| JsValue::from(js(e)))?;
            let out = js_sys::Object::new();
            let set = |k: &str, v: JsValue| js_sys::Reflect::set(&out, &k.into(), &v).map(drop);
            set("noisy", js_sys::Float32Array::from(&noisy[..]).into())?;
            set("denoised", js_sys::Float32Array::from(&denoised[..]).into())?;
            set("psnr", psnr.into())?;
            set("ssim", ssim.into())?;
            Ok(out.into())
        })
    }
}

impl Loaded {
    async fn denoise(&self, clean: &[f32], noise: &str, level: f32, seed: u32) -> Result<(Vec<f32>, Vec<f32>, f64, f64)> {
        let ctx = &self.ctx;
        let cfg = &self.gm.config;
        let c = cfg.model.in_ch;
        if clean.len() != c * IMAGE_LEN {
            return Err(Error::Msg(format!("the image has {} values; this model takes {c} x {IMAGE_HW} x {IMAGE_HW}", clean.len())));
        }
        let kind: NoiseKind = serde_json::from_value(serde_json::Value::String(noise.into()))
            .map_err(|_| Error::Msg(format!("noise {noise:?}: one of gaussian, speckle, salt_pepper, poisson")))?;
        let (ok, what) = match kind {
            NoiseKind::Gaussian | NoiseKind::Speckle => ((0.0..=crate::config::MAX_SIGMA).contains(&level), "a sigma in [0, 100]"),
            NoiseKind::SaltPepper => ((0.0..=1.0).contains(&level), "a fraction of the pixels in [0, 1]"),
            NoiseKind::Poisson => (level > 0.0 && level <= crate::config::MAX_PEAK, "a peak in (0, 1e6]"),
        };
        if !ok {
            return Err(Error::Msg(format!("{noise} noise at level {level}: the level must be {what}")));
        }
        if let Some(i) = clean.iter().position(|v| !v.is_finite()) {
            return Err(Error::Msg(format!("pixel {i} of the image is {}; dae refuses to denoise non-finite values", clean[i])));
        }
        // The noisy image in pixel units (what `dae infer` would be given), then the model's
        // input from it as `dae infer` makes it.
        let mut with_seed = cfg.clone();
        with_seed.seed = seed as u64;
        let dp = crate::ops::data::DataParams { in_scale: 1.0, in_shift: 0.0, ..level_params(&with_seed, kind, level, 0, 0, 1) };
        let clean_t = ctx.upload("demo clean", clean)?;
        let noisy_v = ctx.alloc("demo noisy", clean.len())?;
        data_noise(ctx, &dp, &clean_t, &noisy_v)?;
        let noisy = ctx.read(&noisy_v).await?;
        let (sc, sh) = input_affine(cfg.data.normalize);
        let x: Vec<f32> = noisy.iter().map(|v| v * sc + sh).collect();
        let xt = Tensor::from_slice(ctx, &[1, c, IMAGE_HW, IMAGE_HW], &x)?;
        let y = self.gm.model.forward(
            &mut Graph::inference(ctx).with_kernels(Kernels::default()),
            &Fwd::gpu(&self.gm.weights, false, cfg.seed, 0),
            &xt,
        )?;
        let slots = Slots::new(ctx, 1)?;
        image_metrics(ctx, y.view(), &clean_t, [1, c, IMAGE_HW, IMAGE_HW], (1.0, 0.0), &slots, 0)?;
        let denoised = y.to_vec().await?;
        let (stats, ssim) = slots.read(ctx).await?;
        Ok((noisy, denoised, stats[0][STAT_PSNR] as f64, ssim[0] as f64))
    }
}
