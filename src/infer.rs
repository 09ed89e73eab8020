//! `dae infer`: run a checkpoint on the user's own images: a safetensors file holding `input`
//! [n, c, h, w] in [0, 1] (written back as `output`), a PNG file, or a folder of PNG files
//! (grey or RGB as the model expects; the denoised PNGs keep their names). Any number of images:
//! they go through the GPU in chunks that fit the adapter. Input with NaN or inf is refused.

use std::path::{Path, PathBuf};

use crate::autograd::Graph;
use crate::checkpoint;
use crate::error::{Error, Result};
use crate::eval::GpuModel;
use crate::feed::input_affine;
use crate::gpu::{Ctx, block_on};
use crate::nn::model::Fwd;
use crate::tensor::Tensor;

/// An error naming the first non-finite value of `v` (shape [n, c, h, w]) and how many there are.
pub fn check_finite(what: &Path, v: &[f32], shape: &[usize]) -> Result<()> {
    let bad = v.iter().filter(|x| !x.is_finite()).count();
    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
        let mut rest = i;
        let mut idx = vec![0; shape.len()];
        for (k, d) in shape.iter().enumerate().rev() {
            idx[k] = rest % d;
            rest /= d;
        }
        return Err(Error::Msg(format!(
            "{}: {bad} of {} input values are NaN or infinite, the first {} at index {:?}; dae refuses to denoise them (a network would turn them into plausible-looking numbers)",
            what.display(),
            v.len(),
            v[i],
            idx
        )));
    }
    Ok(())
}

/// The model's reconstruction of images `pixels` [n, c, h, w] in [0, 1], `chunk` images per
/// forward at most (halved whenever a chunk does not fit the adapter).
pub fn denoise(ctx: &Ctx, gm: &GpuModel, pixels: &[f32], shape: [usize; 4], chunk: usize) -> Result<Vec<f32>> {
    let [n, c, h, w] = shape;
    let per = c * h * w;
    let (sc, sh) = input_affine(gm.config.data.normalize);
    let mut out = Vec::with_capacity(pixels.len());
    let mut chunk = chunk.clamp(1, n.max(1));
    let mut start = 0;
    while start < n {
        let nb = chunk.min(n - start);
        let x: Vec<f32> = pixels[start * per..(start + nb) * per].iter().map(|v| v * sc + sh).collect();
        let r = (|| -> Result<Vec<f32>> {
            let xt = Tensor::from_slice(ctx, &[nb, c, h, w], &x)?;
            let y = gm.model.forward(
                &mut Graph::inference(ctx).with_kernels(crate::ops::kernels::Kernels::from_env()?),
                &Fwd::gpu(&gm.weights, false, gm.config.seed, 0),
                &xt,
            )?;
            block_on(y.to_vec())
        })();
        match r {
            Ok(y) => {
                out.extend(y);
                start += nb;
            }
            Err(Error::Limit { .. }) if nb > 1 => chunk = nb / 2,
            Err(Error::Limit { op, what, need, limit, limit_name }) => {
                // Buffers grow with the pixels: the side of a square image that would fit.
                let side = ((h * w) as f64 * limit as f64 / need.max(1) as f64).sqrt() as usize;
                return Err(Error::Config(format!(
                    "one image of {h} x {w} pixels is too large for this adapter even alone: {op} needs {what} of {need} bytes, over its {limit_name} of {limit} bytes; scale it down (with this model, images up to about {side} x {side} fit)"
                )));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// Read a PNG as [c, h, w] in [0, 1] with `c` channels (grey from RGB by luma, RGB repeated
/// from grey); what the conversion dropped goes into `notes`.
pub fn read_png(path: &Path, c: usize, notes: &mut Vec<String>) -> Result<(Vec<f32>, usize, usize)> {
    let img = image::open(path).map_err(|e| Error::Msg(format!("{}: not a readable image: {e}", path.display())))?;
    let color = img.color();
    if c == 1 && (color.has_color() || color.has_alpha()) {
        let what = match (color.has_color(), color.has_alpha()) {
            (true, true) => "colour (turned grey by luma) and transparency (dropped)",
            (true, false) => "colour (turned grey by luma)",
            _ => "transparency (dropped)",
        };
        notes.push(format!("{}: the model takes grey images; this one has {what}", path.display()));
    } else if c == 3 && color.has_alpha() {
        notes.push(format!("{}: transparency dropped (the model takes RGB)", path.display()));
    }
    let (w, h) = (img.width() as usize, img.height() as usize);
    let data = match c {
        1 => img.to_luma8().into_raw().iter().map(|&v| v as f32 / 255.0).collect(),
        3 => {
            let rgb = img.to_rgb8().into_raw();
            (0..3).flat_map(|ch| (0..h * w).map(move |i| (ch, i))).map(|(ch, i)| rgb[i * 3 + ch] as f32 / 255.0).collect()
        }
        _ => return Err(Error::Config(format!("PNG input needs a model with 1 or 3 input channels, this one has {c}"))),
    };
    Ok((data, h, w))
}

/// Write [c, h, w] in [0, 1] (clamped) as a grey or RGB PNG, atomically.
pub fn write_png(path: &Path, v: &[f32], c: usize, h: usize, w: usize) -> Result<()> {
    let px = |x: f32| (x.clamp(0.0, 1.0) * 255.0).round() as u8;
    let mut bytes = std::io::Cursor::new(Vec::new());
    let enc = if c == 1 {
        image::GrayImage::from_raw(w as u32, h as u32, v.iter().map(|&x| px(x)).collect()).map(image::DynamicImage::ImageLuma8)
    } else {
        let hw = h * w;
        image::RgbImage::from_raw(w as u32, h as u32, (0..hw).flat_map(|i| (0..3).map(move |ch| (ch, i))).map(|(ch, i)| px(v[ch * hw + i])).collect())
            .map(image::DynamicImage::ImageRgb8)
    }
    .ok_or_else(|| Error::Msg(format!("{}: image buffer size", path.display())))?;
    enc.write_to(&mut bytes, image::ImageFormat::Png).map_err(|e| Error::Msg(format!("{}: {e}", path.display())))?;
    checkpoint::write_file(path, &bytes.into_inner())
}

fn is_png(p: &Path) -> bool {
    has_ext(p, "png")
}

fn has_ext(p: &Path, ext: &str) -> bool {
    p.extension().is_some_and(|e| e.eq_ignore_ascii_case(ext))
}

/// Whether `a` and `b` name one existing file (through links, hard links or `..`).
fn same_file(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(x), Ok(y)) = (std::fs::metadata(a), std::fs::metadata(b)) {
            return x.dev() == y.dev() && x.ino() == y.ino();
        }
        false
    }
    #[cfg(not(unix))]
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

/// Refuse outputs that would replace an input (`dae infer --input a.png --output a.png`, or
/// the input folder given as the output folder): the user's originals are never overwritten.
fn refuse_in_place(inputs: &[PathBuf], outputs: &[PathBuf]) -> Result<()> {
    for o in outputs {
        if let Some(i) = inputs.iter().find(|i| same_file(i, o)) {
            return Err(Error::Config(format!(
                "--output {} would replace the input {}: dae infer never overwrites its input; pick another output file or folder",
                o.display(),
                i.display()
            )));
        }
    }
    Ok(())
}

/// What `dae infer` did: images written, where, and what the caller should tell the user
/// about the input (colour dropped, values outside [0, 1]).
pub struct Inferred {
    pub images: usize,
    pub output: PathBuf,
    pub warnings: Vec<String>,
}

/// `dae infer`: returns how many images were written and where.
pub fn run(ctx: &Ctx, ckpt: &Path, input: &Path, output: &Path, chunk: usize) -> Result<Inferred> {
    if !ckpt.is_file() {
        return Err(Error::Config(format!("--ckpt: no weights file at {}", ckpt.display())));
    }
    let mut warnings = Vec::new();
    let pngs = input.is_dir() || is_png(input);
    // The output's kind follows the input's: PNG files for PNG input, safetensors for
    // safetensors; decided before any work.
    if pngs && !input.is_dir() && !output.is_dir() && !is_png(output) {
        return Err(Error::Config(format!(
            "--output {}: PNG input is written as PNG; name the output file .png, or give an existing folder",
            output.display()
        )));
    }
    if pngs && input.is_dir() && output.is_file() {
        return Err(Error::Config(format!("--output {} is a file, not a folder (the input is a folder of PNG files)", output.display())));
    }
    if !pngs && !has_ext(output, "safetensors") {
        return Err(Error::Config(format!(
            "--output {}: safetensors input is written as safetensors (tensor `output`); name the output file .safetensors",
            output.display()
        )));
    }
    let file = checkpoint::load_model(ckpt)?;
    let gm = GpuModel::upload(ctx, &file)?;
    let c = gm.config.model.in_ch;
    if pngs {
        let files: Vec<PathBuf> = if input.is_dir() {
            let mut v: Vec<PathBuf> = std::fs::read_dir(input)
                .map_err(|e| Error::Msg(format!("{}: {e}", input.display())))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| is_png(p))
                .collect();
            v.sort();
            if v.is_empty() {
                return Err(Error::Config(format!("--input {}: a folder without .png files", input.display())));
            }
            v
        } else {
            vec![input.to_path_buf()]
        };
        let one = !input.is_dir() && (is_png(output) || !output.is_dir());
        let dsts: Vec<PathBuf> =
            files.iter().map(|f| if one { output.to_path_buf() } else { output.join(f.file_name().unwrap_or_default()) }).collect();
        refuse_in_place(&files, &dsts)?;
        for (f, dst) in files.iter().zip(&dsts) {
            let (px, h, w) = read_png(f, c, &mut warnings)?;
            let y = denoise(ctx, &gm, &px, [1, c, h, w], 1)?;
            write_png(dst, &y, gm.config.model.out_ch, h, w)?;
        }
        return Ok(Inferred { images: files.len(), output: output.to_path_buf(), warnings });
    }
    if !input.is_file() {
        return Err(Error::Config(format!("--input: no file or folder at {}", input.display())));
    }
    let inp = checkpoint::read(input)?;
    let (dt, shape, data) = inp.tensors.get("input").ok_or_else(|| {
        Error::Msg(format!("{}: no tensor named `input` (a safetensors file with input [n, c, h, w], or PNG files)", input.display()))
    })?;
    if *dt != safetensors::Dtype::F32 || shape.len() != 4 {
        return Err(Error::Msg(format!("{}: `input` must be F32 [n, c, h, w], got {dt:?} of shape {shape:?}", input.display())));
    }
    if shape[1] != c {
        return Err(Error::Msg(format!("{}: `input` has {} channels, the model takes {c}", input.display(), shape[1])));
    }
    refuse_in_place(&[input.to_path_buf()], &[output.to_path_buf()])?;
    let px: Vec<f32> = bytemuck::pod_collect_to_vec(data);
    check_finite(input, &px, shape)?;
    let outside = px.iter().filter(|v| !(0.0..=1.0).contains(*v)).count();
    if outside > 0 {
        let (lo, hi) = px.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
        warnings.push(format!(
            "{}: {outside} of {} input values lie outside [0, 1] (min {lo}, max {hi}); the model was trained on images in [0, 1], so its output for them means little",
            input.display(),
            px.len()
        ));
    }
    let s = [shape[0], shape[1], shape[2], shape[3]];
    let y = denoise(ctx, &gm, &px, s, chunk)?;
    let out_shape = vec![s[0], gm.config.model.out_ch, s[2], s[3]];
    checkpoint::write(output, vec![("output".into(), out_shape, bytemuck::cast_slice(&y).to_vec(), safetensors::Dtype::F32)], Default::default())?;
    Ok(Inferred { images: s[0], output: output.to_path_buf(), warnings })
}
