//! Checks of whole computations: a composed graph, dae's models against the CPU reference tape, and against PyTorch itself.

use super::*;

/// One training step of whole models, GPU against the CPU reference tape running the same model
/// code: the loss, every parameter gradient, and the batch-norm running statistics.
pub(super) async fn check_models(c: &mut Checker<'_>) -> Result<()> {
    c.tol = F32_CHAINED;
    use crate::nn::model::{Arch, Fwd, NormType, UpMode};
    use crate::nn::{Model, ModelConfig, Weights};
    let cfgs = [
        ("conv 4/3 group relu", ModelConfig { name: Arch::Conv, base_ch: 4, num_downs: 3, ..Default::default() }),
        (
            "conv 4/2 batch silu dropout",
            ModelConfig {
                name: Arch::Conv,
                base_ch: 4,
                num_downs: 2,
                norm_type: NormType::Batch,
                activation: crate::nn::model::ActName::Silu,
                dropout: 0.25,
                ..Default::default()
            },
        ),
        ("unet 4/2 group relu bilinear", ModelConfig { base_ch: 4, num_downs: 2, ..Default::default() }),
        (
            "unet 4/2 batch leakyrelu transposed dropout",
            ModelConfig {
                base_ch: 4,
                num_downs: 2,
                norm_type: NormType::Batch,
                activation: crate::nn::model::ActName::Leakyrelu,
                up: UpMode::Transposed,
                dropout: 0.25,
                ..Default::default()
            },
        ),
        (
            "unet 4/3 instance gelu bilinear",
            ModelConfig {
                base_ch: 4,
                num_downs: 3,
                norm_type: NormType::Instance,
                activation: crate::nn::model::ActName::Gelu,
                ..Default::default()
            },
        ),
        (
            "unet 4/1 none relu transposed",
            ModelConfig { base_ch: 4, num_downs: 1, norm_type: NormType::None, up: UpMode::Transposed, ..Default::default() },
        ),
    ];
    let (n, hw) = (2usize, 28usize);
    for (name, mc) in cfgs {
        c.case("model", format!("{name}, x[{n},1,{hw},{hw}], mse, training step"));
        let (model, layout) = Model::new(&mc)?;
        let (p0, b0) = layout.init(c.rng.next_u64());
        let xs: Vec<f32> = c.rng.vec(n * hw * hw).iter().map(|v| 0.5 + 0.5 * v).collect();
        let ts: Vec<f32> = c.rng.vec(n * hw * hw).iter().map(|v| 0.5 + 0.5 * v).collect();
        let (seed, step) = (77u64, 5u64);

        let params = c.ctx.upload("check", &p0)?;
        let buffers = c.ctx.upload("check", &b0)?;
        let grads = c.ctx.alloc("check", layout.param_len())?;
        crate::ops::elementwise::fill(c.ctx, &grads, 0.0)?;
        let w = Weights::views(c.ctx, &layout, &params, Some(&grads), &buffers)?;
        let x = Tensor::from_slice(c.ctx, &[n, 1, hw, hw], &xs)?;
        let t = Tensor::from_slice(c.ctx, &[n, 1, hw, hw], &ts)?;
        let mut g = Graph::new(c.ctx);
        w.attach(&mut g)?;
        let y = model.forward(&mut g, &Fwd::gpu(&w, true, seed, step), &x)?;
        let l = g.mse_loss(&y, &t)?;
        drop(g.backward(&l)?);
        let (gl, gg, gb) = (l.to_vec().await?, c.ctx.read(&grads).await?, c.ctx.read(&buffers).await?);

        let mut g = crate::reference::graph::Graph::default();
        let leaf = |g: &mut crate::reference::graph::Graph, e: &crate::nn::layout::Entry, src: &[f32]| {
            g.leaf(&e.shape, f64s(&src[e.offset..e.offset + e.numel()]))
        };
        let pv: Vec<_> = layout.params.iter().map(|e| leaf(&mut g, e, &p0)).collect();
        let bv: Vec<_> = layout.buffers.iter().map(|e| leaf(&mut g, e, &b0)).collect();
        let xv = g.leaf(&[n, 1, hw, hw], f64s(&xs));
        let tv = g.leaf(&[n, 1, hw, hw], f64s(&ts));
        let f = Fwd { params: &pv, buffers: &bv, training: true, seed, step };
        let yv = model.forward_on(&mut g, &f, &xv)?;
        let lv = g.loss(yv, tv, r::loss::Loss::Mse);
        let rg = g.backward(lv);
        c.cmp("loss", &gl, &[g.data(lv)[0]]);
        let want: Vec<Vec<f64>> = layout.params.iter().zip(&pv).map(|(e, v)| rg[v.0].clone().unwrap_or_else(|| vec![0.0; e.numel()])).collect();
        let want_buf: Vec<Vec<f64>> = bv.iter().map(|v| g.data(*v).to_vec()).collect();
        cmp_model_state(c, name, &layout, &gg, &want, &gb, &want_buf);
    }
    Ok(())
}

/// After a model's training step: every parameter gradient (as one vector in layout order, and
/// the worst single tensor) and the running statistics, against `want` / `want_buf` (one vector
/// per layout entry). The per-element bound applies tensor by tensor, each at its own scale.
pub(super) fn cmp_model_state(
    c: &mut Checker<'_>,
    name: &str,
    layout: &crate::nn::Layout,
    grads: &[f32],
    want: &[Vec<f64>],
    buffers: &[f32],
    want_buf: &[Vec<f64>],
) {
    let slice = |v: &[f32], e: &crate::nn::layout::Entry| v[e.offset..e.offset + e.numel()].to_vec();
    let (mut gpu_all, mut ref_all, mut worst) = (Vec::new(), Vec::new(), (0.0f64, String::new()));
    let mut bad = Vec::new();
    for (e, w) in layout.params.iter().zip(want) {
        let got = slice(grads, e);
        let err = rel_l2(&got, w);
        if err > worst.0 {
            worst = (err, e.name.clone());
        }
        if let Some(m) = elementwise_mismatches(&got, w, c.tol) {
            bad.push(format!("{}: {m}", e.name));
        }
        gpu_all.extend(got);
        ref_all.extend_from_slice(w);
    }
    let mismatches = (!bad.is_empty()).then(|| bad.join("; "));
    c.push("param grads (all)", rel_l2(&gpu_all, &ref_all), mismatches);
    c.shape = format!("{name}: worst tensor {}", worst.1);
    c.push("param grads (worst tensor)", worst.0, None);
    if !layout.buffers.is_empty() {
        c.shape = format!("{name}: running mean/var after the step");
        let got: Vec<f32> = layout.buffers.iter().flat_map(|e| slice(buffers, e)).collect();
        c.cmp("batch_norm running stats", &got, &want_buf.concat());
    }
}

/// Written by tools/torch_reference.py: small SPEC models' weights and batch, and what PyTorch
/// (float64) computes from them.
pub(super) const TORCH_REFERENCE: &[u8] = include_bytes!("../../tests/fixtures/torch_reference.safetensors");

/// dae's GPU models against PyTorch itself, on PyTorch's weights: eval and training outputs, the
/// MSE loss, every parameter gradient and the running statistics after the step. The CPU tape
/// of `check_models` runs dae's own model code; only this check sees a structural mistake the two
/// would share.
pub(super) async fn check_torch(c: &mut Checker<'_>) -> Result<()> {
    c.tol = F32_CHAINED;
    use crate::checkpoint::{self, Loaded};
    use crate::nn::model::Fwd;
    use crate::nn::{Model, ModelConfig, Weights};
    let path = std::path::Path::new("tests/fixtures/torch_reference.safetensors");
    let file = checkpoint::parse(TORCH_REFERENCE, path)?;
    let bad = |m: String| crate::error::Error::Msg(format!("{}: {m}", path.display()));
    let configs: std::collections::BTreeMap<String, ModelConfig> =
        serde_json::from_str(file.meta.get("configs").map_or("", |s| s.as_str())).map_err(|e| bad(format!("metadata `configs`: {e}")))?;
    // Tensors under `{prefix}` with the prefix stripped, as a file of their own.
    let part = |prefix: &str| Loaded {
        tensors: file.tensors.iter().filter_map(|(k, v)| k.strip_prefix(prefix).map(|n| (n.to_string(), v.clone()))).collect(),
        meta: Default::default(),
        path: path.join(prefix),
    };
    let values = |name: &str| -> Result<(Vec<usize>, Vec<f64>)> {
        let (_, shape, data) = file.tensors.get(name).ok_or_else(|| bad(format!("missing tensor {name}")))?;
        Ok((shape.clone(), bytemuck::pod_collect_to_vec::<u8, f32>(data).iter().map(|&v| v as f64).collect()))
    };
    for (id, mc) in configs {
        let (model, layout) = Model::new(&mc)?;
        let w0 = checkpoint::load_weights(&layout, &part(&format!("{id}.state.")))?;
        let (xs, xv) = values(&format!("{id}.x"))?;
        let (ts, tv) = values(&format!("{id}.t"))?;
        c.case("model_vs_torch", format!("{id}, x{}", dims(&xs)));
        let params = c.ctx.upload("check", &w0.params)?;
        let buffers = c.ctx.upload("check", &w0.buffers)?;
        let grads = c.ctx.alloc("check", layout.param_len())?;
        crate::ops::elementwise::fill(c.ctx, &grads, 0.0)?;
        let w = Weights::views(c.ctx, &layout, &params, Some(&grads), &buffers)?;
        let f32s = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
        let x = Tensor::from_slice(c.ctx, &xs, &f32s(&xv))?;
        let t = Tensor::from_slice(c.ctx, &ts, &f32s(&tv))?;
        let ye = model.forward(&mut Graph::inference(c.ctx), &Fwd::gpu(&w, false, 0, 0), &x)?;
        c.cmp_t("forward (eval)", &ye, &values(&format!("{id}.y_eval"))?.1).await?;
        let mut g = Graph::new(c.ctx);
        w.attach(&mut g)?;
        let y = model.forward(&mut g, &Fwd::gpu(&w, true, 0, 0), &x)?;
        let l = g.mse_loss(&y, &t)?;
        c.cmp_t("forward (train)", &y, &values(&format!("{id}.y_train"))?.1).await?;
        c.cmp_t("mse loss", &l, &values(&format!("{id}.loss"))?.1).await?;
        drop(g.backward(&l)?);
        let (gg, gb) = (c.ctx.read(&grads).await?, c.ctx.read(&buffers).await?);
        let want = layout.params.iter().map(|e| Ok(values(&format!("{id}.grad.{}", e.name))?.1)).collect::<Result<Vec<_>>>()?;
        let want_buf = layout.buffers.iter().map(|e| Ok(values(&format!("{id}.buffer_after.{}", e.name))?.1)).collect::<Result<Vec<_>>>()?;
        cmp_model_state(c, &id, &layout, &gg, &want, &gb, &want_buf);
    }
    Ok(())
}

/// The composed check's inputs (f64), shared by the GPU run, the reference chain and its
/// finite-difference test.
#[derive(Clone)]
pub struct Composed {
    pub x: Vec<f64>,
    pub w1: Vec<f64>,
    pub b1: Vec<f64>,
    pub gamma: Vec<f64>,
    pub beta: Vec<f64>,
    pub w2: Vec<f64>,
    pub w3: Vec<f64>,
    pub b3: Vec<f64>,
    pub target: Vec<f64>,
}

pub const COMPOSED_N: usize = 2;

pub const COMPOSED_HW: usize = 9;

pub(super) const C_IN: usize = 3;

pub(super) const C1: usize = 4;

pub(super) const C2: usize = 6;

pub(super) const GROUPS: usize = 2;

impl Composed {
    pub fn shapes() -> [(&'static str, Vec<usize>); 9] {
        let (n, s) = (COMPOSED_N, COMPOSED_HW);
        [
            ("x", vec![n, C_IN, s, s]),
            ("w1", vec![C1, C_IN, 3, 3]),
            ("b1", vec![C1]),
            ("gamma", vec![C1]),
            ("beta", vec![C1]),
            ("w2", vec![C2, C1, 3, 3]),
            ("w3", vec![1, C1 + C2, 3, 3]),
            ("b3", vec![1]),
            ("target", vec![n, 1, s, s]),
        ]
    }

    pub fn random(rng: &mut Rng) -> Composed {
        let sh = Composed::shapes();
        let mut v = |i: usize, scale: f32| -> Vec<f64> { rng.vec(sh[i].1.iter().product()).iter().map(|x| (x * scale) as f64).collect() };
        Composed {
            x: v(0, 1.0),
            w1: v(1, 0.5),
            b1: v(2, 0.1),
            gamma: v(3, 0.3).iter().map(|g| (1.0 + g) as f32 as f64).collect(),
            beta: v(4, 0.1),
            w2: v(5, 0.3),
            w3: v(6, 0.3),
            b3: v(7, 0.1),
            target: v(8, 0.5).iter().map(|t| (0.5 + t) as f32 as f64).collect(),
        }
    }

    pub fn params_mut(&mut self) -> [&mut Vec<f64>; 8] {
        [&mut self.x, &mut self.w1, &mut self.b1, &mut self.gamma, &mut self.beta, &mut self.w2, &mut self.w3, &mut self.b3]
    }
}

/// The composed graph on the CPU reference: conv -> group_norm -> silu -> maxpool -> conv ->
/// resize x2 -> pad -> concat with the skip -> conv -> sigmoid -> mse. Returns the loss and the
/// gradients of x, w1, b1, gamma, beta, w2, w3, b3 (in that order).
pub fn composed_reference(p: &Composed) -> (f64, [Vec<f64>; 8]) {
    use r::activation::Activation as A;
    let (n, s) = (COMPOSED_N, COMPOSED_HW);
    let hw = s * s;
    let c1 = r::conv2d::Conv2dShape { n, cin: C_IN, h: s, w: s, cout: C1, kh: 3, kw: 3, stride: (1, 1), pad: (1, 1) };
    let h1 = r::conv2d::conv2d_forward(&c1, &p.x, &p.w1, Some(&p.b1));
    let (h2, mean, rstd) = r::group_norm::group_norm_forward(n, C1, hw, GROUPS, 1e-5, &h1, &p.gamma, &p.beta);
    let skip = r::activation::activation_forward(A::Silu, &h2);
    let (pooled, idx) = r::maxpool2d::maxpool2d_forward(n, C1, s, s, (2, 2), (2, 2), &skip);
    let ps = s / 2;
    let c2 = r::conv2d::Conv2dShape { n, cin: C1, h: ps, w: ps, cout: C2, kh: 3, kw: 3, stride: (1, 1), pad: (1, 1) };
    let h3 = r::conv2d::conv2d_forward(&c2, &pooled, &p.w2, None);
    let us = 2 * ps;
    let up = r::resize_bilinear::resize_bilinear_forward(n, C2, ps, ps, us, us, true, &h3);
    let pads = (0, s - us, 0, s - us);
    let padded = r::pad2d::pad2d_forward(n, C2, us, us, pads, &up);
    let cat = r::concat::concat_forward(n, hw, &[(&skip, C1), (&padded, C2)]);
    let c3 = r::conv2d::Conv2dShape { n, cin: C1 + C2, h: s, w: s, cout: 1, kh: 3, kw: 3, stride: (1, 1), pad: (1, 1) };
    let h4 = r::conv2d::conv2d_forward(&c3, &cat, &p.w3, Some(&p.b3));
    let out = r::activation::activation_forward(A::Sigmoid, &h4);
    let loss = r::loss::loss_forward(r::loss::Loss::Mse, &out, &p.target);

    let (d_out, _) = r::loss::loss_backward(r::loss::Loss::Mse, &out, &p.target, 1.0);
    let d_h4 = r::activation::activation_backward(A::Sigmoid, &h4, &d_out);
    let d_cat = r::conv2d::conv2d_input_grad(&c3, &p.w3, &d_h4);
    let g_w3 = r::conv2d::conv2d_weight_grad(&c3, &cat, &d_h4);
    let g_b3 = r::elementwise::bias_add_backward(n, 1, hw, &d_h4);
    let parts = r::concat::concat_backward(n, hw, &[C1, C2], &d_cat);
    let d_up = r::pad2d::pad2d_backward(n, C2, us, us, pads, &parts[1]);
    let d_h3 = r::resize_bilinear::resize_bilinear_backward(n, C2, ps, ps, us, us, true, &d_up);
    let g_w2 = r::conv2d::conv2d_weight_grad(&c2, &pooled, &d_h3);
    let d_pooled = r::conv2d::conv2d_input_grad(&c2, &p.w2, &d_h3);
    let mut d_skip = r::maxpool2d::maxpool2d_backward(n, C1, s, s, (2, 2), (2, 2), &idx, &d_pooled);
    for (a, b) in d_skip.iter_mut().zip(&parts[0]) {
        *a += b;
    }
    let d_h2 = r::activation::activation_backward(A::Silu, &h2, &d_skip);
    let (d_h1, g_gamma, g_beta) = r::group_norm::group_norm_backward(n, C1, hw, GROUPS, &h1, &p.gamma, &mean, &rstd, &d_h2);
    let g_x = r::conv2d::conv2d_input_grad(&c1, &p.w1, &d_h1);
    let g_w1 = r::conv2d::conv2d_weight_grad(&c1, &p.x, &d_h1);
    let g_b1 = r::elementwise::bias_add_backward(n, C1, hw, &d_h1);
    (loss, [g_x, g_w1, g_b1, g_gamma, g_beta, g_w2, g_w3, g_b3])
}

pub(super) async fn check_composed(c: &mut Checker<'_>) -> Result<()> {
    let p = Composed::random(&mut c.rng);
    let sh = Composed::shapes();
    let ctx = c.ctx;
    let up = |v: &[f64], i: usize| -> Result<Tensor> {
        let d: Vec<f32> = v.iter().map(|&x| x as f32).collect();
        Tensor::from_slice(ctx, &sh[i].1, &d)
    };
    let leaves = [up(&p.x, 0)?, up(&p.w1, 1)?, up(&p.b1, 2)?, up(&p.gamma, 3)?, up(&p.beta, 4)?, up(&p.w2, 5)?, up(&p.w3, 6)?, up(&p.b3, 7)?];
    for t in &leaves {
        c.g.leaf(t);
    }
    let target = up(&p.target, 8)?;
    let [x, w1, b1, gamma, beta, w2, w3, b3] = &leaves;
    c.case("composed", "conv>gn>silu>pool>conv>up2x>pad>cat>conv>sigmoid>mse, x[2,3,9,9]".into());

    let h1 = c.g.conv2d(x, w1, Some(b1), (1, 1), (1, 1))?;
    let h2 = c.g.group_norm(&h1, GROUPS, gamma, beta, 1e-5)?;
    let skip = c.g.silu(&h2)?;
    let pooled = c.g.max_pool2d(&skip, (2, 2), (2, 2))?;
    let h3 = c.g.conv2d(&pooled, w2, None, (1, 1), (1, 1))?;
    let up2 = c.g.upsample2x(&h3, true)?;
    let [_, _, uh, uw] = up2.nchw("composed")?;
    let padded = c.g.pad2d(&up2, (0, COMPOSED_HW - uw, 0, COMPOSED_HW - uh))?;
    let cat = c.g.concat(&[&skip, &padded])?;
    let h4 = c.g.conv2d(&cat, w3, Some(b3), (1, 1), (1, 1))?;
    let out = c.g.sigmoid(&h4)?;
    let l = c.g.mse_loss(&out, &target)?;
    let grads = std::mem::replace(&mut c.g, Graph::new(c.ctx)).backward(&l)?;

    let (lr, gr) = composed_reference(&p);
    c.cmp_t("loss", &l, &[lr]).await?;
    for ((name, _), (t, g)) in sh.iter().zip(leaves.iter().zip(gr.iter())) {
        c.grad(&format!("grad {name}"), &grads, t, g).await?;
    }
    Ok(())
}
