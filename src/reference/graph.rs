//! A CPU tape over the reference ops (f64), so whole models run on the CPU through the same
//! model code as on the GPU (`nn::model` is generic over a backend) and a training step can be
//! checked end to end: loss and every parameter gradient.

use super::activation::{self as act, Activation};
use super::{batch_norm as bn, concat, conv_transpose2d as ct, conv2d, dropout2d, group_norm as gn, loss, maxpool2d, pad2d, resize_bilinear as rb};

/// A value on the tape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct V(pub usize);

enum Op {
    Leaf,
    Conv(conv2d::Conv2dShape, bool),
    ConvT(ct::ConvTranspose2dShape, bool),
    GroupNorm { groups: usize, mean: Vec<f64>, rstd: Vec<f64> },
    BatchNorm { mean: Vec<f64>, rstd: Vec<f64> },
    Act(Activation),
    MaxPool { k: (usize, usize), s: (usize, usize), idx: Vec<u32> },
    Resize { ho: usize, wo: usize, ac: bool },
    Pad((usize, usize, usize, usize)),
    Concat(Vec<usize>),
    Dropout { p: f64, seed: u64, stream: u64 },
    Loss(loss::Loss),
}

struct Node {
    op: Op,
    inputs: Vec<V>,
    shape: Vec<usize>,
    data: Vec<f64>,
}

#[derive(Default)]
pub struct Graph {
    nodes: Vec<Node>,
}

fn nchw(s: &[usize]) -> [usize; 4] {
    [s[0], s[1], s[2], s[3]]
}

impl Graph {
    pub fn leaf(&mut self, shape: &[usize], data: Vec<f64>) -> V {
        assert_eq!(shape.iter().product::<usize>(), data.len(), "leaf: shape {shape:?} vs {} values", data.len());
        self.push(Op::Leaf, vec![], shape.to_vec(), data)
    }

    fn push(&mut self, op: Op, inputs: Vec<V>, shape: Vec<usize>, data: Vec<f64>) -> V {
        self.nodes.push(Node { op, inputs, shape, data });
        V(self.nodes.len() - 1)
    }

    pub fn shape(&self, v: V) -> &[usize] {
        &self.nodes[v.0].shape
    }

    pub fn data(&self, v: V) -> &[f64] {
        &self.nodes[v.0].data
    }

    /// Overwrite a leaf's values (batch-norm running statistics after a training forward).
    pub fn set(&mut self, v: V, data: Vec<f64>) {
        self.nodes[v.0].data = data;
    }

    pub fn conv2d(&mut self, x: V, w: V, b: Option<V>, stride: (usize, usize), pad: (usize, usize)) -> V {
        let [n, cin, h, wd] = nchw(self.shape(x));
        let [cout, _, kh, kw] = nchw(self.shape(w));
        let s = conv2d::Conv2dShape { n, cin, h, w: wd, cout, kh, kw, stride, pad };
        let y = conv2d::conv2d_forward(&s, self.data(x), self.data(w), b.map(|b| self.data(b)));
        let (ho, wo) = s.out_hw();
        let mut inputs = vec![x, w];
        inputs.extend(b);
        self.push(Op::Conv(s, b.is_some()), inputs, vec![n, cout, ho, wo], y)
    }

    pub fn conv_transpose2d(&mut self, x: V, w: V, b: Option<V>, stride: (usize, usize), pad: (usize, usize)) -> V {
        let [n, cin, h, wd] = nchw(self.shape(x));
        let [_, cout, kh, kw] = nchw(self.shape(w));
        let s = ct::ConvTranspose2dShape { n, cin, h, w: wd, cout, kh, kw, stride, pad, output_pad: (0, 0) };
        let y = ct::conv_transpose2d_forward(&s, self.data(x), self.data(w), b.map(|b| self.data(b)));
        let (ho, wo) = s.out_hw();
        let mut inputs = vec![x, w];
        inputs.extend(b);
        self.push(Op::ConvT(s, b.is_some()), inputs, vec![n, cout, ho, wo], y)
    }

    pub fn group_norm(&mut self, x: V, groups: usize, g: V, b: V, eps: f64) -> V {
        let [n, c, h, w] = nchw(self.shape(x));
        let (y, mean, rstd) = gn::group_norm_forward(n, c, h * w, groups, eps, self.data(x), self.data(g), self.data(b));
        self.push(Op::GroupNorm { groups, mean, rstd }, vec![x, g, b], vec![n, c, h, w], y)
    }

    /// Training mode updates the running-statistic leaves `rm`, `rv` in place.
    #[allow(clippy::too_many_arguments)]
    pub fn batch_norm(&mut self, x: V, g: V, b: V, rm: V, rv: V, training: bool, momentum: f64, eps: f64) -> V {
        let [n, c, h, w] = nchw(self.shape(x));
        let (mut m, mut v) = (self.data(rm).to_vec(), self.data(rv).to_vec());
        if !training {
            let y = bn::batch_norm_forward_eval(n, c, h * w, eps, self.data(x), self.data(g), self.data(b), &m, &v);
            return self.push(Op::Leaf, vec![], vec![n, c, h, w], y);
        }
        let (y, mean, rstd) = bn::batch_norm_forward_train(n, c, h * w, eps, momentum, self.data(x), self.data(g), self.data(b), &mut m, &mut v);
        self.set(rm, m);
        self.set(rv, v);
        self.push(Op::BatchNorm { mean, rstd }, vec![x, g, b], vec![n, c, h, w], y)
    }

    pub fn act(&mut self, x: V, a: Activation) -> V {
        let y = act::activation_forward(a, self.data(x));
        let s = self.shape(x).to_vec();
        self.push(Op::Act(a), vec![x], s, y)
    }

    pub fn maxpool2d(&mut self, x: V, k: (usize, usize), s: (usize, usize)) -> V {
        let [n, c, h, w] = nchw(self.shape(x));
        let (y, idx) = maxpool2d::maxpool2d_forward(n, c, h, w, k, s, self.data(x));
        let (ho, wo) = ((h - k.0) / s.0 + 1, (w - k.1) / s.1 + 1);
        self.push(Op::MaxPool { k, s, idx }, vec![x], vec![n, c, ho, wo], y)
    }

    pub fn resize(&mut self, x: V, ho: usize, wo: usize, ac: bool) -> V {
        let [n, c, h, w] = nchw(self.shape(x));
        let y = rb::resize_bilinear_forward(n, c, h, w, ho, wo, ac, self.data(x));
        self.push(Op::Resize { ho, wo, ac }, vec![x], vec![n, c, ho, wo], y)
    }

    pub fn pad(&mut self, x: V, pads: (usize, usize, usize, usize)) -> V {
        let [n, c, h, w] = nchw(self.shape(x));
        let y = pad2d::pad2d_forward(n, c, h, w, pads, self.data(x));
        self.push(Op::Pad(pads), vec![x], vec![n, c, h + pads.2 + pads.3, w + pads.0 + pads.1], y)
    }

    pub fn concat(&mut self, parts: &[V]) -> V {
        let [n, _, h, w] = nchw(self.shape(parts[0]));
        let chans: Vec<usize> = parts.iter().map(|p| self.shape(*p)[1]).collect();
        let y = {
            let ps: Vec<(&[f64], usize)> = parts.iter().zip(&chans).map(|(p, c)| (self.data(*p), *c)).collect();
            concat::concat_forward(n, h * w, &ps)
        };
        let ct: usize = chans.iter().sum();
        self.push(Op::Concat(chans), parts.to_vec(), vec![n, ct, h, w], y)
    }

    pub fn dropout2d(&mut self, x: V, p: f64, seed: u64, stream: u64) -> V {
        let [n, c, h, w] = nchw(self.shape(x));
        let y = dropout2d::dropout2d_forward(n, c, h * w, p, seed, stream, self.data(x));
        self.push(Op::Dropout { p, seed, stream }, vec![x], vec![n, c, h, w], y)
    }

    pub fn loss(&mut self, pred: V, target: V, kind: loss::Loss) -> V {
        let l = loss::loss_forward(kind, self.data(pred), self.data(target));
        self.push(Op::Loss(kind), vec![pred, target], vec![1], vec![l])
    }

    /// Gradients of scalar `out` with respect to every value (None where it does not depend).
    pub fn backward(&self, out: V) -> Vec<Option<Vec<f64>>> {
        let mut g: Vec<Option<Vec<f64>>> = vec![None; self.nodes.len()];
        g[out.0] = Some(vec![1.0]);
        for i in (0..=out.0).rev() {
            let Some(dy) = g[i].take() else { continue };
            let node = &self.nodes[i];
            let inp = &node.inputs;
            let d = |v: V| self.data(v);
            let contribs: Vec<(V, Vec<f64>)> = match &node.op {
                Op::Leaf => {
                    g[i] = Some(dy);
                    continue;
                }
                Op::Conv(s, has_b) => {
                    let mut c = vec![(inp[0], conv2d::conv2d_input_grad(s, d(inp[1]), &dy)), (inp[1], conv2d::conv2d_weight_grad(s, d(inp[0]), &dy))];
                    if *has_b {
                        let (ho, wo) = s.out_hw();
                        c.push((inp[2], super::elementwise::bias_add_backward(s.n, s.cout, ho * wo, &dy)));
                    }
                    c
                }
                Op::ConvT(s, has_b) => {
                    let mut c = vec![
                        (inp[0], ct::conv_transpose2d_input_grad(s, d(inp[1]), &dy)),
                        (inp[1], ct::conv_transpose2d_weight_grad(s, d(inp[0]), &dy)),
                    ];
                    if *has_b {
                        let (ho, wo) = s.out_hw();
                        c.push((inp[2], super::elementwise::bias_add_backward(s.n, s.cout, ho * wo, &dy)));
                    }
                    c
                }
                Op::GroupNorm { groups, mean, rstd } => {
                    let [n, c, h, w] = nchw(self.shape(inp[0]));
                    let (dx, dg, db) = gn::group_norm_backward(n, c, h * w, *groups, d(inp[0]), d(inp[1]), mean, rstd, &dy);
                    vec![(inp[0], dx), (inp[1], dg), (inp[2], db)]
                }
                Op::BatchNorm { mean, rstd } => {
                    let [n, c, h, w] = nchw(self.shape(inp[0]));
                    let (dx, dg, db) = bn::batch_norm_backward_train(n, c, h * w, d(inp[0]), d(inp[1]), mean, rstd, &dy);
                    vec![(inp[0], dx), (inp[1], dg), (inp[2], db)]
                }
                Op::Act(a) => vec![(inp[0], act::activation_backward(*a, d(inp[0]), &dy))],
                Op::MaxPool { k, s, idx } => {
                    let [n, c, h, w] = nchw(self.shape(inp[0]));
                    vec![(inp[0], maxpool2d::maxpool2d_backward(n, c, h, w, *k, *s, idx, &dy))]
                }
                Op::Resize { ho, wo, ac } => {
                    let [n, c, h, w] = nchw(self.shape(inp[0]));
                    vec![(inp[0], rb::resize_bilinear_backward(n, c, h, w, *ho, *wo, *ac, &dy))]
                }
                Op::Pad(p) => {
                    let [n, c, h, w] = nchw(self.shape(inp[0]));
                    vec![(inp[0], pad2d::pad2d_backward(n, c, h, w, *p, &dy))]
                }
                Op::Concat(chans) => {
                    let [n, _, h, w] = nchw(&node.shape);
                    inp.iter().copied().zip(concat::concat_backward(n, h * w, chans, &dy)).collect()
                }
                Op::Dropout { p, seed, stream } => {
                    let [n, c, h, w] = nchw(&node.shape);
                    vec![(inp[0], dropout2d::dropout2d_backward(n, c, h * w, *p, *seed, *stream, &dy))]
                }
                Op::Loss(k) => {
                    let (dp, dt) = loss::loss_backward(*k, d(inp[0]), d(inp[1]), dy[0]);
                    vec![(inp[0], dp), (inp[1], dt)]
                }
            };
            for (v, c) in contribs {
                match &mut g[v.0] {
                    Some(acc) => acc.iter_mut().zip(&c).for_each(|(a, b)| *a += b),
                    slot => *slot = Some(c),
                }
            }
        }
        g
    }
}

// ---- the models on the reference tape ------------------------------------------------------------

use crate::error::{Error, Result};
use crate::nn::model::Backend;
use crate::ops::activation::Activation as GpuActivation;

fn reference_act(a: GpuActivation) -> Activation {
    match a {
        GpuActivation::Relu => Activation::Relu,
        GpuActivation::LeakyRelu(s) => Activation::LeakyRelu(s as f64),
        GpuActivation::GeluErf => Activation::GeluErf,
        GpuActivation::GeluTanh => Activation::GeluTanh,
        GpuActivation::Silu => Activation::Silu,
        GpuActivation::Sigmoid => Activation::Sigmoid,
    }
}

/// The CPU reference tape (f64); the f32 hyper-parameters are widened exactly.
impl Backend for Graph {
    type T = V;
    fn dims(&self, t: &V) -> Result<[usize; 4]> {
        match self.shape(*t) {
            [n, c, h, w] => Ok([*n, *c, *h, *w]),
            s => Err(Error::shape("model", format!("expects NCHW, got {s:?}"))),
        }
    }
    fn conv2d(&mut self, x: &V, w: &V, b: Option<&V>, s: (usize, usize), p: (usize, usize)) -> Result<V> {
        Ok(Graph::conv2d(self, *x, *w, b.copied(), s, p))
    }
    fn conv_transpose2d(&mut self, x: &V, w: &V, b: Option<&V>, s: (usize, usize), p: (usize, usize), _into: Option<&V>) -> Result<V> {
        Ok(Graph::conv_transpose2d(self, *x, *w, b.copied(), s, p))
    }
    fn group_norm(&mut self, x: &V, groups: usize, g: &V, b: &V, eps: f32) -> Result<V> {
        Ok(Graph::group_norm(self, *x, groups, *g, *b, eps as f64))
    }
    fn batch_norm(&mut self, x: &V, g: &V, b: &V, rm: &V, rv: &V, training: bool, momentum: f32, eps: f32) -> Result<V> {
        Ok(Graph::batch_norm(self, *x, *g, *b, *rm, *rv, training, momentum as f64, eps as f64))
    }
    fn act(&mut self, x: &V, a: GpuActivation, _into: Option<&V>) -> Result<V> {
        Ok(Graph::act(self, *x, reference_act(a)))
    }
    fn maxpool2d(&mut self, x: &V) -> Result<V> {
        let [_, _, h, w] = self.dims(x)?;
        if h < 2 || w < 2 {
            return Err(Error::shape("maxpool2d", format!("input {h}x{w} is smaller than the 2x2 window")));
        }
        Ok(Graph::maxpool2d(self, *x, (2, 2), (2, 2)))
    }
    fn resize(&mut self, x: &V, ho: usize, wo: usize, ac: bool, _into: Option<&V>) -> Result<V> {
        Ok(Graph::resize(self, *x, ho, wo, ac))
    }
    fn pad(&mut self, x: &V, pads: (usize, usize, usize, usize), _into: Option<&V>) -> Result<V> {
        Ok(Graph::pad(self, *x, pads))
    }
    fn concat(&mut self, a: &V, b: &V) -> Result<V> {
        Ok(Graph::concat(self, &[*a, *b]))
    }
    fn dropout2d(&mut self, x: &V, p: f32, seed: u64, step: u64, layer: u32) -> Result<V> {
        Ok(Graph::dropout2d(self, *x, p as f64, seed, crate::ops::dropout2d::stream(step, layer)))
    }
}
