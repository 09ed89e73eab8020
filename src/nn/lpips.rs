//! LPIPS as the `lpips` Python package (v0.1) computes it, `net='alex'` or `net='vgg'`: the
//! scaling layer, the backbone's five ReLU taps, unit-normalised channels, the learned 1x1
//! linear heads, the spatial mean, the sum over taps. Images are first resized bilinearly
//! (align_corners=false) to 64x64 for both nets: AlexNet cannot run on 28x28 (its second pool
//! has nothing left). Weights are the package's state_dict as safetensors, supplied by the user
//! (`tools/export_lpips.py`) and checked against their SHA-256; never downloaded; every tensor
//! required.

use std::path::Path;

use crate::config::{LpipsConfig, LpipsNet};
use crate::error::{Error, Result};
use crate::gpu::{Ctx, View};
use crate::ops::kernels::Kernels;
use crate::ops::{activation, conv2d, lpips as k, maxpool2d, resize_bilinear};
use crate::tensor::Tensor;

/// The side LPIPS resizes every image to.
pub const INPUT_SIDE: usize = 64;

#[derive(Clone, Debug, PartialEq)]
enum Layer {
    /// state_dict prefix, cin, cout, kernel, stride, padding (every conv has a bias and a ReLU).
    Conv(&'static str, usize, usize, usize, usize, usize),
    Pool(usize, usize),
    Tap,
}

/// The backbone as lpips builds it (torchvision's features up to the last tapped ReLU).
fn layers(net: LpipsNet) -> Vec<Layer> {
    use Layer::*;
    match net {
        LpipsNet::Alex => vec![
            Conv("net.slice1.0", 3, 64, 11, 4, 2),
            Tap,
            Pool(3, 2),
            Conv("net.slice2.3", 64, 192, 5, 1, 2),
            Tap,
            Pool(3, 2),
            Conv("net.slice3.6", 192, 384, 3, 1, 1),
            Tap,
            Conv("net.slice4.8", 384, 256, 3, 1, 1),
            Tap,
            Conv("net.slice5.10", 256, 256, 3, 1, 1),
            Tap,
        ],
        LpipsNet::Vgg => {
            let mut v = Vec::new();
            let blocks: [(&[&'static str], usize); 5] = [
                (&["net.slice1.0", "net.slice1.2"], 64),
                (&["net.slice2.5", "net.slice2.7"], 128),
                (&["net.slice3.10", "net.slice3.12", "net.slice3.14"], 256),
                (&["net.slice4.17", "net.slice4.19", "net.slice4.21"], 512),
                (&["net.slice5.24", "net.slice5.26", "net.slice5.28"], 512),
            ];
            let mut cin = 3;
            for (b, (names, cout)) in blocks.iter().enumerate() {
                if b > 0 {
                    v.push(Pool(2, 2));
                }
                for name in *names {
                    v.push(Conv(name, cin, *cout, 3, 1, 1));
                    cin = *cout;
                }
                v.push(Tap);
            }
            v
        }
    }
}

/// Every tensor the network reads, with its shape, in forward order: the scaling layer, each
/// conv's weight then bias, the five heads.
pub fn tensor_specs(net: LpipsNet) -> Vec<(String, Vec<usize>)> {
    let mut out = vec![("scaling_layer.shift".to_string(), vec![1, 3, 1, 1]), ("scaling_layer.scale".to_string(), vec![1, 3, 1, 1])];
    let mut taps = Vec::new();
    let mut ch = 3;
    for l in layers(net) {
        match l {
            Layer::Conv(name, cin, cout, kk, ..) => {
                out.push((format!("{name}.weight"), vec![cout, cin, kk, kk]));
                out.push((format!("{name}.bias"), vec![cout]));
                ch = cout;
            }
            Layer::Tap => taps.push(ch),
            Layer::Pool(..) => {}
        }
    }
    for (i, c) in taps.iter().enumerate() {
        out.push((format!("lin{i}.model.1.weight"), vec![1, *c, 1, 1]));
    }
    out
}

pub fn net_name(net: LpipsNet) -> &'static str {
    match net {
        LpipsNet::Alex => "alex",
        LpipsNet::Vgg => "vgg",
    }
}

pub struct Lpips {
    pub net: LpipsNet,
    layers: Vec<Layer>,
    /// (weight, bias) per conv, in order.
    convs: Vec<(Tensor, Tensor)>,
    heads: Vec<View>,
    shift: [f32; 3],
    scale: [f32; 3],
    /// How its convs run (`DAE_KERNELS`'s pins, f32).
    kernels: Kernels,
}

impl Lpips {
    /// Load the user's weights file: its SHA-256 must match, every tensor must be there.
    pub fn load(ctx: &Ctx, cfg: &LpipsConfig) -> Result<Lpips> {
        let path = Path::new(&cfg.weights);
        if !path.is_file() {
            return Err(Error::Config(format!(
                "eval.lpips.weights: no file at {} (tools/export_lpips.py --net {} OUT writes one and prints the config lines)",
                path.display(),
                net_name(cfg.net)
            )));
        }
        let got = crate::nn::vgg::sha256_file(path)?;
        if !got.eq_ignore_ascii_case(cfg.sha256.trim()) {
            return Err(Error::Config(format!("eval.lpips.sha256 does not match {}: expected {}, the file has {got}", path.display(), cfg.sha256)));
        }
        let file = crate::util::files::read(path)?;
        Lpips::from_tensors(ctx, cfg.net, &|name: &str, shape: &[usize]| match file.tensors.get(name) {
            Some((safetensors::Dtype::F32, s, d)) if s == shape => Ok(bytemuck::pod_collect_to_vec::<u8, f32>(d)),
            Some((dt, s, _)) => Err(Error::Msg(format!("{}: {name} is {dt:?}{s:?}, LPIPS {} needs F32{shape:?}", path.display(), net_name(cfg.net)))),
            None => Err(Error::Msg(format!(
                "{}: missing tensor {name} (a partial LPIPS file is refused; tools/export_lpips.py --net {} writes a whole one)",
                path.display(),
                net_name(cfg.net)
            ))),
        })
    }

    /// Build from a tensor source: `get(name, shape)` returns the values (see [`tensor_specs`]).
    pub fn from_tensors(ctx: &Ctx, net: LpipsNet, get: &dyn Fn(&str, &[usize]) -> Result<Vec<f32>>) -> Result<Lpips> {
        let layers = layers(net);
        let shift = get("scaling_layer.shift", &[1, 3, 1, 1])?;
        let scale = get("scaling_layer.scale", &[1, 3, 1, 1])?;
        let mut convs = Vec::new();
        let mut heads = Vec::new();
        let mut ch = 3;
        for l in &layers {
            match *l {
                Layer::Conv(name, cin, cout, kk, ..) => {
                    let w = Tensor::from_slice(ctx, &[cout, cin, kk, kk], &get(&format!("{name}.weight"), &[cout, cin, kk, kk])?)?;
                    let b = Tensor::from_slice(ctx, &[cout], &get(&format!("{name}.bias"), &[cout])?)?;
                    convs.push((w, b));
                    ch = cout;
                }
                Layer::Tap => {
                    let i = heads.len();
                    heads.push(ctx.upload("lpips head", &get(&format!("lin{i}.model.1.weight"), &[1, ch, 1, 1])?)?);
                }
                Layer::Pool(..) => {}
            }
        }
        Ok(Lpips {
            net,
            layers,
            convs,
            heads,
            shift: [shift[0], shift[1], shift[2]],
            scale: [scale[0], scale[1], scale[2]],
            kernels: Kernels::from_env()?,
        })
    }

    /// The five tapped feature maps of images `x` [n, c, h, w] (c 1 or 3) whose values map to
    /// [-1, 1] by `x * affine.0 + affine.1`.
    pub fn features(&self, x: &Tensor, affine: (f32, f32)) -> Result<Vec<Tensor>> {
        // Evaluation only: the ops run without a graph.
        let ctx = x.ctx();
        let [n, c, ..] = x.nchw("lpips")?;
        let r = resize_bilinear::resize_bilinear(x, INPUT_SIDE, INPUT_SIDE, false, None)?.0;
        let v = ctx.alloc("lpips", n * 3 * INPUT_SIDE * INPUT_SIDE)?;
        k::lpips_input(ctx, r.view(), [n, c, INPUT_SIDE, INPUT_SIDE], affine, self.shift, self.scale, &v)?;
        let mut h = Tensor::wrap(ctx, vec![n, 3, INPUT_SIDE, INPUT_SIDE], v);
        let mut out = Vec::new();
        let mut convs = self.convs.iter();
        for l in &self.layers {
            match *l {
                Layer::Conv(_, _, _, _, s, p) => {
                    let (w, b) = convs.next().ok_or_else(|| Error::Msg("lpips: fewer convs than layers".into()))?;
                    h = activation::activation(
                        &conv2d::conv2d(&self.kernels, &h, w, Some(b), (s, s), (p, p))?.0,
                        activation::Activation::Relu,
                        None,
                    )?;
                }
                Layer::Pool(kk, s) => h = maxpool2d::max_pool2d(&h, (kk, kk), (s, s))?.0,
                Layer::Tap => out.push(h.clone()),
            }
        }
        Ok(out)
    }

    /// out[offset + i] = LPIPS between image i of two feature sets (from [`Lpips::features`]).
    pub fn distance(&self, a: &[Tensor], b: &[Tensor], out: &View, offset: usize) -> Result<()> {
        for (i, ((fa, fb), head)) in a.iter().zip(b).zip(&self.heads).enumerate() {
            let shape = fa.nchw("lpips")?;
            k::lpips_distance(fa.ctx(), fa.view(), fb.view(), head, shape, out, offset, i > 0)?;
        }
        Ok(())
    }

    /// Bytes of the largest activation per image (how many images fit one storage binding).
    pub fn bytes_per_image(&self) -> usize {
        let mut side = INPUT_SIDE;
        let mut most = 3 * side * side;
        for l in &self.layers {
            match *l {
                Layer::Conv(_, _, cout, kk, s, p) => {
                    side = (side + 2 * p - kk) / s + 1;
                    most = most.max(cout * side * side);
                }
                Layer::Pool(kk, s) => side = (side - kk) / s + 1,
                Layer::Tap => {}
            }
        }
        most * 4
    }
}
